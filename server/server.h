/* server/server.h - the HTTP API server: AWS JSON 1.1 over libmicrohttpd.
 *
 * Every operation is `POST /` with an `X-Amz-Target: <Prefix>.<Op>` header
 * and a JSON object body; CodeBuild (CodeBuild_20161006.*) and CloudWatch
 * Logs (Logs_20140328.*) share one port.  The server authenticates the
 * request (SigV4, server/sigv4.h, against a server_creds set), parses the
 * body with jansson and hands (target, request) to a dispatch callback; it
 * has no operation logic of its own.  Replies are
 * `application/x-amz-json-1.1` with an `x-amzn-RequestId` header; errors are
 * `{"__type": "<Code>", "message": "..."}` with an `x-amzn-ErrorType` header,
 * HTTP 400 for everything the client did wrong (clients retry 5xx, see
 * ../shared/reference/api.md section 5) and 500 only for internal faults:
 *
 *   no/garbled signature   400 MissingAuthenticationTokenException,
 *                              IncompleteSignatureException
 *   unknown access key     400 UnrecognizedClientException
 *   bad signature, scope,  400 InvalidSignatureException
 *     clock skew > 15 min
 *   body over max_body     413 RequestEntityTooLargeException
 *   bodies over the budget 400 ThrottlingException
 *   no / unknown target    400 UnknownOperationException
 *   body not a JSON object 400 SerializationException
 *   dispatch errors        store/api.h's table (store_api_error_type,
 *                              store_api_error_status): 400 with the
 *                              modeled exception, 500 for internal faults
 *   not POST               405; a path other than "/": 404 (both JSON errors)
 *
 * Hostile clients: a client cannot hold the server with slow or many
 * connections, nor make it hold memory it has not been allowed:
 * - every connection has its own thread (or, with threads > 0, sockets are
 *   polled without blocking), so a slow one delays no other;
 * - connections are capped in all and per client address (beyond the cap
 *   libmicrohttpd closes a new connection at once);
 * - a request's head must arrive within header_timeout of the connection
 *   (or of the previous reply on a kept-alive one), its body within
 *   body_timeout: a client trickling bytes is disconnected then, however
 *   steadily it sends (an inactivity timeout alone would not stop it); when
 *   more than half the slots wait for a head, the wait is cut to 2 s;
 * - the method, path, declared size and the Authorization header (present,
 *   well formed, a known key, the scope, the clock, every header it names
 *   present and X-Amz-Target / Content-Type among them) are checked as
 *   soon as the head is in: a request that fails is answered then and its
 *   body never read;
 * - bodies held at once are bounded by body_budget (a request's declared
 *   size is reserved before its body is read; beyond the budget the answer
 *   is 400 ThrottlingException, which the SDKs retry with back-off).
 *
 * Thread safety: the dispatch, known and log callbacks are called
 * concurrently from several connection threads; they must be reentrant.
 */
#ifndef SERVER_SERVER_H
#define SERVER_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/creds.h"
#include "util/error.h"

/* Handles one operation.  request: the parsed body (borrowed, a JSON
 * object).  On success returns 0 and stores a new reference in *out (NULL
 * means an empty object).  On failure returns a negative CBL_E* code and sets
 * *err; the message goes to the client as is. */
typedef int (*server_dispatch_fn)(const char *target, json_t *request, json_t **out,
				  cbl_error **err, void *payload);
/* The same with the response already serialized: *out is a malloc'ed
 * compact JSON object text (freed with free()), *out_len its length.  Lets
 * a dispatcher splice stored JSON without building a json_t. */
typedef int (*server_dispatch_text_fn)(const char *target, json_t *request, char **out,
				       size_t *out_len, cbl_error **err, void *payload);
/* True if target (e.g. "CodeBuild_20161006.ListProjects") is an operation
 * the dispatcher implements. */
typedef bool (*server_known_fn)(const char *target, void *payload);
/* Who sent a request: the access key that signed it (NULL when the server
 * does not authenticate) and the region of its credential scope (NULL when
 * unsigned; as the client wrote it). */
typedef struct server_caller {
	const char *access_key_id;
	const char *region;
} server_caller;
/* dispatch for the operations that need the caller (StartBuild: the
 * Build's ARN region and initiator). */
typedef int (*server_dispatch_caller_fn)(const char *target, json_t *request, const server_caller *caller,
					 json_t **out, cbl_error **err, void *payload);
/* One line of diagnostics (no trailing newline): access log and
 * libmicrohttpd's own errors. */
typedef void (*server_log_fn)(const char *line, void *payload);

struct server_opts {
	/* "HOST:PORT": an IPv4 literal, "[IPv6]" literal or a host name
	 * (first address it resolves to); "PORT" alone = 127.0.0.1:PORT; port 0
	 * = any free port (read it back with server_port). NULL = 127.0.0.1:0. */
	const char *listen;
	/* Accepted keys (borrowed; must outlive the server).  NULL = accept
	 * every request unsigned or signed by anyone (--no-auth). */
	const server_creds *creds;
	/* Credential scope region a request must be signed for; NULL = any. */
	const char *region;
	size_t max_body;          /* bytes; 0 = 8 MiB */
	unsigned threads;         /* 0 = a thread per connection; N = N polling threads */
	/* Limits against clients that hold connections or memory (see
	 * "Hostile clients" above).  0 = the default in brackets. */
	unsigned max_connections; /* connections at once [1024, at most the fd limit - 64] */
	unsigned max_per_ip;      /* from one address [3/4 of max_connections] */
	unsigned header_timeout;  /* seconds to send a request's head, counted from the
				     connection or the previous reply [10] */
	unsigned body_timeout;    /* seconds to send its body once the head is in [30] */
	size_t body_budget;       /* bytes of request bodies held at once [8 x max_body] */
	server_dispatch_fn dispatch;
	server_dispatch_text_fn dispatch_text; /* used instead of dispatch when set */
	server_known_fn known;
	/* optional: the targets caller_known accepts go to dispatch_caller */
	server_dispatch_caller_fn dispatch_caller;
	server_known_fn caller_known;
	void *payload;            /* passed to dispatch and known */
	server_log_fn log;        /* optional */
	bool access_log;          /* one log line per request */
	/* non-NULL: serve the web dashboard (server/dashboard.h) from this
	 * state directory on the same port; its actions go through dispatch */
	const char *dashboard_home;
	void *log_payload;
};

#define SERVER_OPTS_INIT {NULL}

typedef struct server server;

/* Binds, listens and starts serving in background threads.  CBL_EINVAL for
 * a malformed listen address or missing callbacks (known, and dispatch or
 * dispatch_text), CBL_EIO when
 * the address cannot be bound. */
int server_start(const struct server_opts *opts, server **out, cbl_error **err);

/* The bound port (the real one when 0 was asked for). */
int server_port(const server *s);
/* "http://127.0.0.1:PORT" (IPv6: "http://[::1]:PORT"); borrowed. */
const char *server_url(const server *s);
/* False when the listen address is reachable from other machines
 * (not 127.0.0.0/8 or ::1): the caller should warn. */
bool server_is_loopback(const server *s);

/* The dashboard's one-time sign-in URL ("http://HOST:PORT/login?token=..."),
 * NULL without dashboard_home; borrowed. */
const char *server_dashboard_url(const server *s);

/* Stops accepting, closes connections after their current request and
 * joins every thread, then frees s.  NULL is fine. */
void server_stop(server *s);

#endif
