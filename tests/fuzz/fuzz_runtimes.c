/* tests/fuzz/fuzz_runtimes.c - libFuzzer entry for the images' runtimes.yml
 * parser (spec/runtimes.c): a pulled image supplies that file, so it is
 * untrusted input.  Every version of every runtime is read and selected
 * with the agent's version forms; a failed parse must leave no result. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "util/error.h"

#include "util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	spec_runtimes *r = NULL;
	cbl_error *e = NULL;
	int rc = spec_runtimes_parse(&r, "runtimes.yml", (const char *)data, size, &e);
	CHECK((rc == 0) == (r != NULL));
	CHECK((rc == 0) == (e == NULL));
	size_t total = 0;
	for (size_t i = 0; r && i < r->n; i++) {
		const spec_runtime *rt = &r->items[i];
		CHECK(spec_runtimes_find(r, rt->name) != NULL);
		static const char *const forms[] = {"latest", "1.x", "3.x", "18", "corretto17", ""};
		for (size_t f = 0; f < sizeof(forms) / sizeof(*forms); f++) {
			const spec_runtime_version *v = spec_runtime_select(rt, forms[f]);
			total += v ? strlen(v->key) : 0;
		}
		for (size_t j = 0; j < rt->n; j++) {
			total += strlen(rt->versions[j].key);
			for (size_t k = 0; k < rt->versions[j].commands.n; k++)
				total += strlen(rt->versions[j].commands.items[k].s);
			CHECK(spec_runtime_select(rt, rt->versions[j].key) != NULL);
		}
	}
	(void)total;
	spec_runtimes_free(r);
	cbl_error_free(e);
	return 0;
}
