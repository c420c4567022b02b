/* util/dl.c - see util/dl.h. */
#include "util/dl.h"
#include "util/alloc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/banned.h"

static void load(cbl_dl_lib *lib)
{
	void **h = cbl_xcalloc(lib->n_sonames ? lib->n_sonames : 1, sizeof(*h));
	for (size_t i = 0; i < lib->n_sonames; i++) {
		h[i] = dlopen(lib->sonames[i], RTLD_NOW | RTLD_LOCAL);
		if (!h[i]) {
			const char *m = dlerror();
			snprintf(lib->failure, sizeof(lib->failure), "cannot load %s: %s", lib->sonames[i],
				 m ? m : "unknown error");
			goto out;
		}
	}
	/* each function from whichever of the libraries has it */
	for (size_t k = 0; k < lib->n_syms; k++) {
		const cbl_dl_sym *s = &lib->syms[k];
		for (size_t i = 0; i < lib->n_sonames && !*s->slot; i++)
			*s->slot = dlsym(h[i], s->name);
		if (!*s->slot && !lib->failure[0])
			snprintf(lib->failure, sizeof(lib->failure), "%s cannot be used: it has no %s",
				 lib->sonames[0], s->name);
	}
out:
	free(h);
}

int cbl_dl_load(cbl_dl_lib *lib, cbl_error **err)
{
	pthread_mutex_lock(&lib->lock);
	if (!lib->done) {
		load(lib);
		lib->done = true;
	}
	pthread_mutex_unlock(&lib->lock);
	if (lib->failure[0])
		return cbl_error_set(err, CBL_EIO, "%s", lib->failure);
	return 0;
}
