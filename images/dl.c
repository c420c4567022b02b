/* images/dl.c - see images/dl.h. */
#define IMAGES_DL_LOADER
#include "images/dl.h"
#include "util/array.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util/banned.h"

images_dl_fns images_dl_table;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512]; /* set by the one load, read after it */

static void load(void)
{
	static const char *const sonames[] = {"libcurl.so.4", "libarchive.so.13"};
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
	for (size_t i = 0; i < ARRAY_SIZE(h) && !images_dl_table.f; i++)            \
		*(void **)(&images_dl_table.f) = dlsym(h[i], #f);                              \
	if (!images_dl_table.f && !failure[0])                                                 \
		snprintf(failure, sizeof(failure), "%s cannot be used: it has no %s", sonames[0], #f);
	IMAGES_DL_FUNCTIONS(LOAD)
#undef LOAD
}

int images_dl_load(cbl_error **err)
{
	pthread_once(&once, load);
	if (failure[0])
		return cbl_error_set(err, CBL_EIO, "%s", failure);
	return 0;
}
