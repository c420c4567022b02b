/* server/events.h - serve's deliveries: a thread that evaluates the alarms
 * (store_alarms_evaluate) and delivers the outbox (store/store.h) in order,
 * each destination's items one after another: the builds' events to
 * --events-webhook, an alarm's notification to what its SNS topic ARN maps
 * to (--sns-topic ARN=URL, or ARN=exec:COMMAND).  A delivery is an HTTP POST
 * of the JSON (libcurl, 10 s), or the command run by /bin/sh with the JSON
 * on its stdin and in $CODEBUILD_LOCAL_NOTIFICATION (without serve's AWS_*
 * variables); anything but a 2xx or an exit 0 is retried after 1, 2, 4 ...
 * 60 s, and the item
 * stays in the store meanwhile, so a restart loses nothing. */
#ifndef SERVER_EVENTS_H
#define SERVER_EVENTS_H

#include <stddef.h>

#include "server/server.h"
#include "util/error.h"

typedef struct server_events server_events;

typedef struct server_events_opts {
	const char *home;
	const char *events_url;         /* NULL: the builds' events stay queued */
	const char *const *topics;      /* "ARN=URL" or "ARN=exec:COMMAND" entries */
	size_t n_topics;
	int interval_ms;                /* 0 = 1000 */
	server_log_fn log;              /* one line per delivery problem */
	void *log_payload;
} server_events_opts;

/* Checks the mapping (CBL_EINVAL naming a bad entry), loads libcurl when
 * there is somewhere to deliver, starts the thread. */
int server_events_start(const server_events_opts *o, server_events **out, cbl_error **err);
/* Stops the thread (after its current delivery).  NULL is fine. */
void server_events_stop(server_events *e);

#endif
