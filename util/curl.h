/* util/curl.h - libcurl, the one table of it for every module that talks
 * HTTP (images/registry.c: registry pulls; remote/client.c: replay
 * --from-aws, run --remote; server/events.c: the events outbox and SNS-to-URL
 * deliveries of serve).  Loaded with dlopen (util/dl.h) the first time one
 * of them needs it rather than at every start of the program.  A .c file
 * that includes this header calls libcurl by its usual names, after a
 * successful cbl_curl_load.
 *
 * Thread safety: cbl_curl_load may be called from any thread, any number of
 * times; the first call loads the library and runs curl_global_init once
 * (libcurl's one call that is not thread-safe), the others wait for it. */
#ifndef CBL_CURL_H
#define CBL_CURL_H

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "util/error.h"

#define CBL_CURL_FUNCTIONS(X) \
	X(curl_easy_cleanup) \
	X(curl_easy_escape) \
	X(curl_easy_getinfo) \
	X(curl_easy_init) \
	X(curl_easy_perform) \
	X(curl_easy_reset) \
	X(curl_easy_setopt) \
	X(curl_easy_strerror) \
	X(curl_free) \
	X(curl_global_init) \
	X(curl_multi_add_handle) \
	X(curl_multi_cleanup) \
	X(curl_multi_info_read) \
	X(curl_multi_init) \
	X(curl_multi_perform) \
	X(curl_multi_poll) \
	X(curl_multi_remove_handle) \
	X(curl_multi_setopt) \
	X(curl_multi_strerror) \
	X(curl_slist_append) \
	X(curl_slist_free_all) \

typedef struct cbl_curl_fns {
#define CBL_CURL_FIELD(f) __typeof__(f) *f;
	CBL_CURL_FUNCTIONS(CBL_CURL_FIELD)
#undef CBL_CURL_FIELD
} cbl_curl_fns;

/* The table, filled once by cbl_curl_load (then read-only). */
extern cbl_curl_fns cbl_curl_table;

/* Loads libcurl (dlopen), fills the table and initialises libcurl
 * (curl_global_init).  CBL_EIO naming the library or the function that
 * cannot be loaded, the same answer on every later call. */
int cbl_curl_load(cbl_error **err);

/* the usual names call through the table (not in the loader itself) */
#ifndef CBL_CURL_LOADER
#undef curl_easy_cleanup
#define curl_easy_cleanup (cbl_curl_table.curl_easy_cleanup)
#undef curl_easy_escape
#define curl_easy_escape (cbl_curl_table.curl_easy_escape)
#undef curl_easy_getinfo
#define curl_easy_getinfo (cbl_curl_table.curl_easy_getinfo)
#undef curl_easy_init
#define curl_easy_init (cbl_curl_table.curl_easy_init)
#undef curl_easy_perform
#define curl_easy_perform (cbl_curl_table.curl_easy_perform)
#undef curl_easy_reset
#define curl_easy_reset (cbl_curl_table.curl_easy_reset)
#undef curl_easy_setopt
#define curl_easy_setopt (cbl_curl_table.curl_easy_setopt)
#undef curl_easy_strerror
#define curl_easy_strerror (cbl_curl_table.curl_easy_strerror)
#undef curl_free
#define curl_free (cbl_curl_table.curl_free)
#undef curl_global_init
#define curl_global_init (cbl_curl_table.curl_global_init)
#undef curl_multi_add_handle
#define curl_multi_add_handle (cbl_curl_table.curl_multi_add_handle)
#undef curl_multi_cleanup
#define curl_multi_cleanup (cbl_curl_table.curl_multi_cleanup)
#undef curl_multi_info_read
#define curl_multi_info_read (cbl_curl_table.curl_multi_info_read)
#undef curl_multi_init
#define curl_multi_init (cbl_curl_table.curl_multi_init)
#undef curl_multi_perform
#define curl_multi_perform (cbl_curl_table.curl_multi_perform)
#undef curl_multi_poll
#define curl_multi_poll (cbl_curl_table.curl_multi_poll)
#undef curl_multi_remove_handle
#define curl_multi_remove_handle (cbl_curl_table.curl_multi_remove_handle)
#undef curl_multi_setopt
#define curl_multi_setopt (cbl_curl_table.curl_multi_setopt)
#undef curl_multi_strerror
#define curl_multi_strerror (cbl_curl_table.curl_multi_strerror)
#undef curl_slist_append
#define curl_slist_append (cbl_curl_table.curl_slist_append)
#undef curl_slist_free_all
#define curl_slist_free_all (cbl_curl_table.curl_slist_free_all)
#endif

#endif
