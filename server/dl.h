/* server/dl.h - libmicrohttpd (and through it GnuTLS and its dependencies),
 * loaded when `serve` starts rather than at every start of the program.  A
 * .c file that includes this header calls it by its usual names. */
#ifndef SERVER_DL_H
#define SERVER_DL_H

#include <microhttpd.h>

#include "util/error.h"

#define SERVER_DL_FUNCTIONS(X) \
	X(MHD_add_response_header) \
	X(MHD_create_response_from_buffer) \
	X(MHD_create_response_from_callback) \
	X(MHD_create_response_from_fd64) \
	X(MHD_create_post_processor) \
	X(MHD_post_process) \
	X(MHD_destroy_post_processor) \
	X(MHD_http_unescape) \
	X(MHD_destroy_response) \
	X(MHD_get_connection_info) \
	X(MHD_get_connection_values) \
	X(MHD_lookup_connection_value) \
	X(MHD_queue_response) \
	X(MHD_quiesce_daemon) \
	X(MHD_start_daemon) \
	X(MHD_stop_daemon) \

typedef struct server_dl_fns {
#define SERVER_DL_FIELD(f) __typeof__(f) *f;
	SERVER_DL_FUNCTIONS(SERVER_DL_FIELD)
#undef SERVER_DL_FIELD
} server_dl_fns;

/* The table, filled once by server_dl_load (then read-only). */
extern server_dl_fns server_dl_table;

/* Loads libmicrohttpd (dlopen) and fills the table; safe to call from any thread,
 * any number of times: the first call does the work.  CBL_EIO naming the
 * library when it cannot be loaded. */
int server_dl_load(cbl_error **err);

/* the usual names call through the table (not in the loader itself) */
#ifndef SERVER_DL_LOADER
#undef MHD_add_response_header
#define MHD_add_response_header (server_dl_table.MHD_add_response_header)
#undef MHD_create_response_from_buffer
#define MHD_create_response_from_buffer (server_dl_table.MHD_create_response_from_buffer)
#undef MHD_destroy_response
#define MHD_destroy_response (server_dl_table.MHD_destroy_response)
#undef MHD_get_connection_info
#define MHD_get_connection_info (server_dl_table.MHD_get_connection_info)
#undef MHD_get_connection_values
#define MHD_get_connection_values (server_dl_table.MHD_get_connection_values)
#undef MHD_lookup_connection_value
#define MHD_lookup_connection_value (server_dl_table.MHD_lookup_connection_value)
#undef MHD_queue_response
#define MHD_queue_response (server_dl_table.MHD_queue_response)
#undef MHD_quiesce_daemon
#define MHD_quiesce_daemon (server_dl_table.MHD_quiesce_daemon)
#undef MHD_start_daemon
#define MHD_start_daemon (server_dl_table.MHD_start_daemon)
#undef MHD_stop_daemon
#define MHD_stop_daemon (server_dl_table.MHD_stop_daemon)
#undef MHD_create_response_from_callback
#define MHD_create_response_from_callback (server_dl_table.MHD_create_response_from_callback)
#undef MHD_create_post_processor
#define MHD_create_post_processor (server_dl_table.MHD_create_post_processor)
#undef MHD_post_process
#define MHD_post_process (server_dl_table.MHD_post_process)
#undef MHD_destroy_post_processor
#define MHD_destroy_post_processor (server_dl_table.MHD_destroy_post_processor)
#undef MHD_http_unescape
#define MHD_http_unescape (server_dl_table.MHD_http_unescape)
#undef MHD_create_response_from_fd64
#define MHD_create_response_from_fd64 (server_dl_table.MHD_create_response_from_fd64)
#endif /* SERVER_DL_LOADER */

#endif
