/* util/dl.h - the one dlopen loader: a table of function pointers filled
 * from a list of shared libraries, once, the first time a feature needs
 * them (util/curl.h: libcurl; images/dl.h: libarchive; server/dl.h:
 * libmicrohttpd), so
 * that they cost nothing to the runs that never use them.
 *
 * A module describes its libraries and functions with a cbl_dl_lib (static
 * storage, CBL_DL_LIB_INIT) and calls cbl_dl_load; each function pointer is
 * taken from the first library of the list that has it.
 *
 * Thread safety: cbl_dl_load may be called from any thread, any number of
 * times; the first call does the work, the others wait for it.  The
 * pointers are read-only once it has returned. */
#ifndef CBL_DL_H
#define CBL_DL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/array.h"
#include "util/error.h"

typedef struct cbl_dl_sym {
	const char *name;
	void **slot; /* where the address goes (a function pointer's storage) */
} cbl_dl_sym;

typedef struct cbl_dl_lib {
	const char *const *sonames; /* e.g. "libcurl.so.4" */
	size_t n_sonames;
	const cbl_dl_sym *syms;
	size_t n_syms;
	/* private: the outcome of the one load */
	pthread_mutex_t lock;
	bool done;
	char failure[512];
} cbl_dl_lib;

#define CBL_DL_LIB_INIT(sonames, syms) \
	{(sonames), ARRAY_SIZE(sonames), (syms), ARRAY_SIZE(syms), PTHREAD_MUTEX_INITIALIZER, false, ""}

/* Loads lib's libraries (dlopen, RTLD_NOW | RTLD_LOCAL) and fills every
 * slot.  CBL_EIO naming the library that cannot be loaded or the function
 * that none of them has; the same answer on every later call. */
int cbl_dl_load(cbl_dl_lib *lib, cbl_error **err);

#endif
