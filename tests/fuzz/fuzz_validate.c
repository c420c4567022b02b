/* tests/fuzz/fuzz_validate.c - libFuzzer entry for the request validator
 * (store/validate.c): every API request body reaches it before any
 * operation, so it is untrusted input.  The first byte picks the operation
 * of the models, the rest is the JSON body.  A refusal must carry the
 * service's wording; nothing may crash, leak or recurse without bound. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store/api.h"
#include "store/store_internal.h"

#include "util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const store_mop *op = &store_model_ops[data[0] % store_model_nops];
	json_t *req = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
	if (!req)
		return 0;
	cbl_error *e = NULL;
	int rc = store_api_validate(op->target, req, &e);
	CHECK((rc == 0) == (e == NULL));
	if (rc) {
		CHECK(rc == CBL_EINVAL);
		CHECK(strstr(e->msg, " validation error") && strstr(e->msg, " detected: Value "));
	}
	cbl_error_free(e);
	json_decref(req);
	return 0;
}
