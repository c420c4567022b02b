/* remote/dl.h - libcurl, loaded when a remote call is made rather than at
 * every start of the program.  A .c file that includes this header calls it
 * by its usual names. */
#ifndef REMOTE_DL_H
#define REMOTE_DL_H

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "util/error.h"

#define REMOTE_DL_FUNCTIONS(X) \
	X(curl_easy_cleanup) \
	X(curl_easy_getinfo) \
	X(curl_easy_init) \
	X(curl_easy_perform) \
	X(curl_easy_setopt) \
	X(curl_easy_strerror) \
	X(curl_global_init) \
	X(curl_slist_append) \
	X(curl_slist_free_all) \

typedef struct remote_dl_fns {
#define REMOTE_DL_FIELD(f) __typeof__(f) *f;
	REMOTE_DL_FUNCTIONS(REMOTE_DL_FIELD)
#undef REMOTE_DL_FIELD
} remote_dl_fns;

/* The table, filled once by remote_dl_load (then read-only). */
extern remote_dl_fns remote_dl_table;

/* Loads libcurl (dlopen) and fills the table; any thread, any number of
 * times.  CBL_EIO naming the library when it cannot be loaded. */
int remote_dl_load(cbl_error **err);

#ifndef REMOTE_DL_LOADER
#undef curl_easy_cleanup
#define curl_easy_cleanup (remote_dl_table.curl_easy_cleanup)
#undef curl_easy_getinfo
#define curl_easy_getinfo (remote_dl_table.curl_easy_getinfo)
#undef curl_easy_init
#define curl_easy_init (remote_dl_table.curl_easy_init)
#undef curl_easy_perform
#define curl_easy_perform (remote_dl_table.curl_easy_perform)
#undef curl_easy_setopt
#define curl_easy_setopt (remote_dl_table.curl_easy_setopt)
#undef curl_easy_strerror
#define curl_easy_strerror (remote_dl_table.curl_easy_strerror)
#undef curl_global_init
#define curl_global_init (remote_dl_table.curl_global_init)
#undef curl_slist_append
#define curl_slist_append (remote_dl_table.curl_slist_append)
#undef curl_slist_free_all
#define curl_slist_free_all (remote_dl_table.curl_slist_free_all)
#endif

#endif
