/* util/curl.c - see util/curl.h; the loading is util/dl.c's. */
#define CBL_CURL_LOADER
#include "util/curl.h"
#include "util/dl.h"

#include <pthread.h>

#include "util/banned.h"

cbl_curl_fns cbl_curl_table;

static const char *const sonames[] = {"libcurl.so.4"};

static const cbl_dl_sym syms[] = {
#define SYM(f) {#f, (void **)&cbl_curl_table.f},
	CBL_CURL_FUNCTIONS(SYM)
#undef SYM
};

static cbl_dl_lib lib = CBL_DL_LIB_INIT(sonames, syms);

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

/* curl_global_init is not thread-safe and must come before any other call;
 * curl_easy_init would otherwise run it on its own, unguarded. */
static void global_init(void) { cbl_curl_table.curl_global_init(CURL_GLOBAL_DEFAULT); }

int cbl_curl_load(cbl_error **err)
{
	int rc = cbl_dl_load(&lib, err);
	if (rc < 0)
		return rc;
	pthread_once(&global_once, global_init);
	return 0;
}
