/* server/dl.c - see server/dl.h. */
#define SERVER_DL_LOADER
#include "server/dl.h"
#include "util/array.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util/banned.h"

server_dl_fns server_dl_table;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512]; /* set by the one load, read after it */

static void load(void)
{
	static const char *const sonames[] = {"libmicrohttpd.so.12"};
	void *h[ARRAY_SIZE(sonames)];
	for (size_t i = 0; i < ARRAY_SIZE(sonames); i++) {
		h[i] = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
		if (!h[i]) {
			const char *m = dlerror();
			snprintf(failure, sizeof(failure), "cannot load %s: %s", sonames[i], m ? m : "unknown error");
			return;
		}
	}
	/* each function from whichever of the libraries has it */
#define LOAD(f)                                                                              \
	for (size_t i = 0; i < ARRAY_SIZE(h) && !server_dl_table.f; i++)            \
		*(void **)(&server_dl_table.f) = dlsym(h[i], #f);                              \
	if (!server_dl_table.f && !failure[0])                                                 \
		snprintf(failure, sizeof(failure), "%s cannot be used: it has no %s", sonames[0], #f);
	SERVER_DL_FUNCTIONS(LOAD)
#undef LOAD
}

int server_dl_load(cbl_error **err)
{
	pthread_once(&once, load);
	if (failure[0])
		return cbl_error_set(err, CBL_EIO, "%s", failure);
	return 0;
}
