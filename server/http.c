/* server/http.c - the AWS JSON 1.1 front end on libmicrohttpd.
 *
 * Why the pieces look the way they do (../shared/reference/api.md):
 * - Every client error is HTTP 400 with a modeled or Coral-style code: the
 *   AWS CLI, boto3 and the JS SDK retry 5xx (boto3 five times, ~8 s), so a
 *   deterministic failure must never be a 5xx.  The auth failures use 400 as
 *   AWS's JSON-protocol services do (Cognito, DynamoDB, ECS answer
 *   UnrecognizedClientException with 400; REST services such as Lambda use
 *   403) [inferred for CodeBuild itself].
 * - The listen socket is ours (bind errors are reported precisely, port 0 is
 *   read back with getsockname) and handed to MHD.
 * - URLs are not unescaped by MHD (identity unescape callback): SigV4 signs
 *   the path and query as they were on the wire.
 * - Requests in flight are counted so server_stop can let them finish
 *   before MHD closes the connections.
 */
#include "server/server.h"
#include "server/dashboard.h"
#include "server/sigv4.h"
#include "store/api.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include "server/dl.h"
#include "server/query.h"
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/banned.h"

#define DEFAULT_MAX_BODY (8u << 20)
#define DEFAULT_MAX_CONNECTIONS 1024u
#define DEFAULT_HEADER_TIMEOUT 10u
#define DEFAULT_BODY_TIMEOUT 30u
#define PRESSURE_HEADER_TIMEOUT 2u /* when more than half the slots wait for a head */
#define IDLE_TIMEOUT 60u           /* MHD's own inactivity timeout, a backstop */
#define REAPER_TICK_MS 250
#define FD_RESERVE 64u             /* descriptors kept for the store, builds, logs */
#define PREAUTH_BODY (64u << 10)   /* drained, not kept, before a key is known */
#define MAX_SKEW_SECONDS 900
#define STOP_GRACE_MS 10000
#define CONTENT_TYPE "application/x-amz-json-1.1"

/* One client connection, from MHD's "started" to its "closed"
 * notification (MHD's socket context). */
enum conn_phase {
	CONN_HEAD, /* waiting for a request's head (new or kept alive) */
	CONN_BODY, /* head in, reading the body */
	CONN_BUSY, /* the request is being answered: never cut */
	CONN_CUT,  /* shut down by the reaper, waiting for MHD to close it */
};

struct conn {
	int fd;
	/* written by the connection's thread without the lock (the hot path
	 * takes none), read by the reaper: since_us first, then phase with
	 * release order, so a reaper that sees a phase sees its start */
	_Atomic int phase;         /* enum conn_phase */
	_Atomic int64_t since_us;  /* when the current phase began */
	struct conn *prev, *next;  /* under the server's lock */
};

struct server {
	struct server_opts opts;
	struct MHD_Daemon *mhd;
	int listen_fd;
	int port;
	bool loopback;
	char *url;
	server_dash *dash;  /* NULL without a dashboard */
	char *dash_url;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned inflight;
	/* under lock: the connections */
	struct conn *conns;
	unsigned nconns;
	_Atomic size_t body_reserved; /* bytes of bodies being received */
	/* the reaper thread (cuts slow connections) */
	pthread_t reaper;
	bool reaper_started, stopping;
	pthread_cond_t wake;
};

/* A refusal decided on the head: answered once the body is drained, or at
 * once (the connection closed unread) for a client with no known key and a
 * body over PREAUTH_BODY. */
struct refusal {
	unsigned status;
	const char *type;
	char *msg;
};

/* Per-request state, from the first access-handler call to MHD's
 * "completed" notification. */
struct req {
	cbl_buf body;
	bool too_big;
	bool answered;   /* refused on its head: the body is never kept */
	struct refusal refused;
	char *akid;      /* for the access log of a refusal */
	size_t reserved; /* bytes of s->body_reserved held for this body */
	bool dash;       /* the dashboard's (server/dashboard.c), not the API's */
	struct conn *conn;
	int64_t t0;
};

struct service_prefix {
	const char *prefix;   /* X-Amz-Target prefix, with the dot */
	const char *signing;  /* SigV4 service name */
};

static const struct service_prefix services[] = {
	{STORE_TARGET_CODEBUILD, "codebuild"},
	{STORE_TARGET_LOGS, "logs"},
	{STORE_TARGET_CLOUDWATCH, "monitoring"},
};

static const struct service_prefix *service_of(const char *target)
{
	if (!target)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(services); i++)
		if (!strncmp(target, services[i].prefix, strlen(services[i].prefix)))
			return &services[i];
	return NULL;
}

static void logf_(const server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const server *s, const char *fmt, ...)
{
	if (!s->opts.log)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->opts.log(line, s->opts.log_payload);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	const server *s = cls;
	if (!s->opts.log)
		return;
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	char *msg = cbl_xasprintf("libmicrohttpd: %s", line);
	s->opts.log(msg, s->opts.log_payload);
	free(msg);
}

static size_t unescape_identity(void *cls, struct MHD_Connection *c, char *uri)
{
	(void)cls;
	(void)c;
	return strlen(uri);
}

/* ---- responses ---------------------------------------------------------- */

/* Takes body (malloc'ed). */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *body,
				 size_t len, const char *error_type, const char *extra_name,
				 const char *extra_value)
{
	char rid[37];
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	cbl_uuid4(rid);
	MHD_add_response_header(resp, "Content-Type", CONTENT_TYPE);
	MHD_add_response_header(resp, "x-amzn-RequestId", rid);
	if (error_type)
		MHD_add_response_header(resp, "x-amzn-ErrorType", error_type);
	if (extra_name)
		MHD_add_response_header(resp, extra_name, extra_value);
	enum MHD_Result r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* An error in the JSON protocol; query_error: CloudWatch's query-compatible
 * x-amzn-query-error ("Code;Sender"), which the SDKs read the code from. */
static enum MHD_Result send_error_as(struct MHD_Connection *c, unsigned status, const char *type,
				     const char *message, const char *query_error)
{
	json_t *o = json_object();
	json_object_set_new(o, "__type", json_string(type));
	/* json_string refuses invalid UTF-8: never lose the message over it */
	json_t *m = json_string(message ? message : "");
	if (!m)
		m = json_string("(message not valid UTF-8)");
	json_object_set_new(o, "message", m);
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!body)
		return MHD_NO;
	if (query_error)
		return send_json(c, status, body, strlen(body), type, "x-amzn-query-error", query_error);
	return send_json(c, status, body, strlen(body), type, status == 405 ? "Allow" : NULL,
			 status == 405 ? "POST" : NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type,
				  const char *message)
{
	return send_error_as(c, status, type, message, NULL);
}

/* ---- request helpers ------------------------------------------------------ */

struct hdr_list {
	struct server_sigv4_header *v;
	size_t n, cap;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	(void)kind;
	struct hdr_list *l = cls;
	CBL_GROW(l->v, l->n + 1, l->cap);
	l->v[l->n].name = key;
	l->v[l->n].value = value ? value : "";
	l->n++;
	return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	(void)kind;
	cbl_buf *b = cls;
	if (b->len)
		cbl_buf_putc(b, '&');
	cbl_buf_puts(b, key);
	if (value) {
		cbl_buf_putc(b, '=');
		cbl_buf_puts(b, value);
	}
	return MHD_YES;
}

static void client_address(struct MHD_Connection *c, char out[INET6_ADDRSTRLEN + 1])
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	out[0] = '-';
	out[1] = '\0';
	if (!ci || !ci->client_addr)
		return;
	socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								: sizeof(struct sockaddr_in);
	if (getnameinfo(ci->client_addr, len, out, INET6_ADDRSTRLEN + 1, NULL, 0,
			NI_NUMERICHOST))
		out[0] = '-', out[1] = '\0';
}

static const char *secret_lookup(const char *akid, void *payload)
{
	return server_creds_lookup(payload, akid);
}

/* Checks the signature.  Returns 0, or sends the error and returns 1. */
static int authenticate(server *s, struct MHD_Connection *c, const char *url,
			const char *method, const char *target, struct req *r,
			enum MHD_Result *result, char **out_akid)
{
	struct hdr_list hl = {0};
	cbl_buf query = CBL_BUF_INIT;
	cbl_error *err = NULL;
	enum server_sigv4_status st = SERVER_SIGV4_OK;
	const struct service_prefix *svc = service_of(target);
	int ret = 0;

	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &hl);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &query);
	struct server_sigv4_request sreq = {
		.method = method,
		.path = url,
		.query = cbl_buf_cstr(&query),
		.headers = hl.v,
		.nheaders = hl.n,
		.body = r->body.ptr,
		.body_len = r->body.len,
	};
	struct server_sigv4_opts so = SERVER_SIGV4_OPTS_INIT;
	so.service = svc ? svc->signing : NULL;
	so.region = s->opts.region;
	so.now = (int64_t)time(NULL);
	so.max_skew = MAX_SKEW_SECONDS;
	static const char *const must_sign[] = {"x-amz-target", "content-type", NULL};
	so.must_sign = must_sign;
	if (server_sigv4_verify(&sreq, &so, secret_lookup, (void *)s->opts.creds, &st, out_akid,
				&err) < 0) {
		*result = send_error(c, 400, server_sigv4_status_type(st),
				     err ? err->msg : "authentication failed");
		ret = 1;
	}
	cbl_error_free(err);
	free(hl.v);
	cbl_buf_release(&query);
	return ret;
}

/* The caller of an authenticated request: its key, and the region its
 * signature's scope names (the clients sign for the region they ask). */
static int dispatch_as_caller(server *s, struct MHD_Connection *c, const char *target, json_t *request,
			      json_t **response, cbl_error **err)
{
	struct server_sigv4_auth a = SERVER_SIGV4_AUTH_INIT;
	const char *hdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	bool parsed = hdr && server_sigv4_parse_authorization(hdr, &a, NULL) == 0;
	server_caller who = {.access_key_id = parsed && s->opts.creds ? a.access_key_id : NULL,
			     .region = parsed ? a.region : NULL};
	int rc = s->opts.dispatch_caller(target, request, &who, response, err, s->opts.payload);
	server_sigv4_auth_release(&a);
	return rc;
}

/* Takes body (malloc'ed): an XML answer of the query protocol. */
static enum MHD_Result send_xml(struct MHD_Connection *c, unsigned status, char *body, size_t len,
				const char *rid)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/xml");
	MHD_add_response_header(resp, "x-amzn-RequestId", rid);
	enum MHD_Result res = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return res;
}

/* CloudWatch's query protocol (server/query.c): signed for "monitoring",
 * the form becomes the JSON protocol's target and request for the same
 * dispatch, and its answer XML. */
static enum MHD_Result handle_query(server *s, struct MHD_Connection *c, const char *url, const char *method,
				    struct req *r, unsigned *out_status, const char **out_target, char **out_akid)
{
	enum MHD_Result res = MHD_NO;
	json_t *request = NULL, *response = NULL;
	cbl_error *err = NULL;
	const char *target = NULL;
	char rid[37], *body = NULL;
	size_t len = 0;
	cbl_uuid4(rid);
	if (s->opts.creds && authenticate(s, c, url, method, STORE_TARGET_CLOUDWATCH, r, &res, out_akid)) {
		*out_status = 400;
		return res;
	}
	int rc = server_query_parse(r->body.ptr ? r->body.ptr : "", r->body.len, &target, &request, &err);
	*out_target = target;
	if (!rc && !s->opts.known(target, s->opts.payload))
		rc = cbl_error_set(&err, CBL_EINVAL, "Operation %s is not supported by codebuild-local", target);
	if (!rc && !s->opts.dispatch)
		rc = cbl_error_set(&err, CBL_EINTERNAL, "this server answers no query-protocol operation");
	else if (!rc)
		rc = s->opts.dispatch(target, request, &response, &err, s->opts.payload);
	*out_status = rc ? store_api_error_status(rc) : 200;
	body = rc ? server_query_error(store_api_error_type(target ? target : STORE_TARGET_CLOUDWATCH, rc),
				       err ? err->msg : "internal error", *out_status < 500, rid, &len)
		  : server_query_response(target, response, rid, &len);
	res = send_xml(c, *out_status, body, len, rid);
	cbl_error_free(err);
	json_decref(request);
	json_decref(response);
	return res;
}

static enum MHD_Result handle(server *s, struct MHD_Connection *c, const char *url,
			      const char *method, struct req *r, unsigned *out_status,
			      const char **out_target, char **out_akid)
{
	enum MHD_Result res = MHD_NO;
	json_t *request = NULL, *response = NULL;
	cbl_error *err = NULL;
	const char *target = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Target");
	*out_target = target;

	/* method, path, declared size: refuse_head */
	if (r->too_big) { /* a chunked body past the limit */
		char msg[128];
		snprintf(msg, sizeof(msg), "Request body is larger than the limit of %zu bytes",
			 s->opts.max_body);
		*out_status = 413;
		return send_error(c, 413, "RequestEntityTooLargeException", msg);
	}
	/* CloudWatch's query protocol: a form, no X-Amz-Target */
	if (!target && server_query_is_form(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type")))
		return handle_query(s, c, url, method, r, out_status, out_target, out_akid);
	if (s->opts.creds && authenticate(s, c, url, method, target, r, &res, out_akid)) {
		*out_status = 400;
		return res;
	}
	if (!target || !*target || !service_of(target) ||
	    !s->opts.known(target, s->opts.payload)) {
		char *msg = cbl_xasprintf("Operation '%s' is not supported by codebuild-local",
					  target && *target ? target : "(no X-Amz-Target header)");
		*out_status = 400;
		res = send_error(c, 400, "UnknownOperationException", msg);
		free(msg);
		return res;
	}

	if (r->body.len == 0) {
		/* The clients always send at least "{}"; be lenient. */
		request = json_object();
	} else {
		json_error_t jerr;
		request = json_loadb(r->body.ptr, r->body.len, 0, &jerr);
		if (!request || !json_is_object(request)) {
			char *msg = request ? cbl_xstrdup("Start of structure or map expected: the "
							  "request body must be a JSON object")
					    : cbl_xasprintf("Malformed JSON at line %d, column %d: %s",
							    jerr.line, jerr.column, jerr.text);
			*out_status = 400;
			res = send_error(c, 400, "SerializationException", msg);
			free(msg);
			goto out;
		}
	}

	char *body = NULL;
	size_t len = 0;
	int rc;
	if (s->opts.dispatch_caller && s->opts.caller_known && s->opts.caller_known(target, s->opts.payload))
		rc = dispatch_as_caller(s, c, target, request, &response, &err);
	else
		rc = s->opts.dispatch_text
			     ? s->opts.dispatch_text(target, request, &body, &len, &err, s->opts.payload)
			     : s->opts.dispatch(target, request, &response, &err, s->opts.payload);
	if (rc < 0) {
		unsigned st = store_api_error_status(rc);
		const char *type = store_api_error_type(target, rc);
		free(body);
		*out_status = st;
		char qerr[96];
		snprintf(qerr, sizeof(qerr), "%s;%s", type, st < 500 ? "Sender" : "Receiver");
		res = send_error_as(c, st, type, err ? err->msg : "internal error",
				    strcmp(service_of(target)->signing, "monitoring") ? NULL : qerr);
		goto out;
	}
	if (!body) {
		if (!response)
			response = json_object();
		body = json_dumps(response, JSON_COMPACT | JSON_REAL_PRECISION(16));
		len = body ? strlen(body) : 0;
	}
	if (!body) {
		*out_status = 500;
		res = send_error(c, 500, "InternalFailure", "response could not be encoded as JSON");
		goto out;
	}
	*out_status = 200;
	res = send_json(c, 200, body, len, NULL, NULL, NULL);
out:
	cbl_error_free(err);
	json_decref(request);
	json_decref(response);
	return res;
}

/* ---- slow clients --------------------------------------------------------- */

static void conn_set(struct conn *k, enum conn_phase phase)
{
	if (!k)
		return;
	atomic_store_explicit(&k->since_us, cbl_mono_us(), memory_order_relaxed);
	atomic_store_explicit(&k->phase, phase, memory_order_release);
}

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* MHD calls "closed" before it closes the socket, and both calls take the
 * lock the reaper holds while it shuts sockets down: the reaper never
 * touches a descriptor that was closed (and perhaps reused). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	server *s = cls;
	struct conn *k = *socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		k = cbl_xcalloc(1, sizeof(*k));
		k->fd = ci ? ci->connect_fd : -1;
		atomic_init(&k->phase, CONN_HEAD);
		atomic_init(&k->since_us, cbl_mono_us());
		pthread_mutex_lock(&s->lock);
		k->next = s->conns;
		if (s->conns)
			s->conns->prev = k;
		s->conns = k;
		s->nconns++;
		pthread_mutex_unlock(&s->lock);
		*socket_context = k;
		return;
	}
	if (!k)
		return;
	pthread_mutex_lock(&s->lock);
	if (k->prev)
		k->prev->next = k->next;
	else
		s->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	s->nconns--;
	pthread_mutex_unlock(&s->lock);
	free(k);
	*socket_context = NULL;
}

/* One pass: shuts down the connections past their phase's deadline.
 * Called with the lock held; returns how many it cut. */
static unsigned reap_once(server *s, int64_t now)
{
	unsigned waiting = 0, cut = 0;
	for (struct conn *k = s->conns; k; k = k->next)
		waiting += atomic_load_explicit(&k->phase, memory_order_relaxed) == CONN_HEAD;
	int64_t head_us = (int64_t)(waiting > s->opts.max_connections / 2
					    ? PRESSURE_HEADER_TIMEOUT
					    : s->opts.header_timeout) * 1000000;
	int64_t body_us = (int64_t)s->opts.body_timeout * 1000000;
	for (struct conn *k = s->conns; k; k = k->next) {
		int phase = atomic_load_explicit(&k->phase, memory_order_acquire);
		int64_t age = now - atomic_load_explicit(&k->since_us, memory_order_relaxed);
		if (k->fd < 0 || !((phase == CONN_HEAD && age > head_us) ||
				   (phase == CONN_BODY && age > body_us)))
			continue;
		/* MHD's poll sees the end of the stream and closes it (the fd
		 * is still open: "closed" takes the lock held here) */
		shutdown(k->fd, SHUT_RDWR);
		atomic_store_explicit(&k->phase, CONN_CUT, memory_order_relaxed);
		cut++;
	}
	return cut;
}

static void *reaper_main(void *arg)
{
	server *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += REAPER_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
		if (s->stopping)
			break;
		unsigned cut = reap_once(s, cbl_mono_us());
		if (cut) {
			pthread_mutex_unlock(&s->lock);
			logf_(s, "closed %u connection%s too slow to send a request (head within %us, "
				 "body within %us)",
			      cut, cut == 1 ? "" : "s", s->opts.header_timeout, s->opts.body_timeout);
			pthread_mutex_lock(&s->lock);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- the request's head ------------------------------------------------- */

/* Reserves n bytes of the body budget for r; false when they do not fit. */
static bool reserve_body(server *s, struct req *r, size_t n)
{
	size_t before = atomic_fetch_add(&s->body_reserved, n);
	if (before + n > s->opts.body_budget) {
		atomic_fetch_sub(&s->body_reserved, n);
		return false;
	}
	r->reserved = n;
	return true;
}

/* Checks the Authorization header on the head (server_sigv4_verify's
 * head_only): 0, or the refusal filled; *known: the key is one of ours. */
static int check_head_auth(server *s, struct MHD_Connection *c, const char *url,
			   const char *method, struct refusal *out, bool *known, char **out_akid)
{
	struct hdr_list hl = {0};
	cbl_error *err = NULL;
	enum server_sigv4_status st = SERVER_SIGV4_OK;
	static const char *const must_sign[] = {"x-amz-target", "content-type", NULL};
	*known = true;
	if (!s->opts.creds)
		return 0;
	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &hl);
	const char *target = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Target");
	const struct service_prefix *svc = service_of(target);
	struct server_sigv4_request sreq = {.method = method, .path = url,
					    .headers = hl.v, .nheaders = hl.n};
	struct server_sigv4_opts so = SERVER_SIGV4_OPTS_INIT;
	so.service = svc ? svc->signing : NULL;
	so.region = s->opts.region;
	so.now = (int64_t)time(NULL);
	so.max_skew = MAX_SKEW_SECONDS;
	so.must_sign = must_sign;
	so.head_only = true;
	int rc = server_sigv4_verify(&sreq, &so, secret_lookup, (void *)s->opts.creds, &st,
				     out_akid, &err);
	free(hl.v);
	if (rc < 0) {
		*known = st == SERVER_SIGV4_BAD_SIGNATURE;
		out->status = 400;
		out->type = server_sigv4_status_type(st);
		out->msg = cbl_xstrdup(err ? err->msg : "authentication failed");
	}
	cbl_error_free(err);
	return rc < 0 ? -1 : 0;
}

/* What can be refused on the head alone, before any body is read: method,
 * path, declared size, the Authorization header and the budget.  Returns
 * true with the refusal filled; *drain: read (and drop) the body before
 * answering, so that the client, still sending it, reads the answer. */
static bool refuse_head(server *s, struct MHD_Connection *c, const char *url,
			const char *method, struct req *r, struct refusal *out, bool *drain,
			char **out_akid)
{
	struct refusal auth = {0};
	bool known = true;
	int auth_rc = check_head_auth(s, c, url, method, &auth, &known, out_akid);
	const char *cl =
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long declared = s->opts.max_body; /* chunked: the most it may be */
	bool too_big = false;
	if (cl) {
		char *end;
		errno = 0;
		declared = strtoull(cl, &end, 10);
		too_big = errno || *end || declared > s->opts.max_body;
	}
	*drain = known || (cl && !too_big && declared <= PREAUTH_BODY);
	if (strcmp(method, "POST") || strcmp(url, "/")) {
		out->status = strcmp(method, "POST") ? 405 : 404;
		out->type = "UnknownOperationException";
		out->msg = cbl_xstrdup("The AWS JSON protocol only uses POST /");
	} else if (too_big) {
		out->status = 413;
		out->type = "RequestEntityTooLargeException";
		out->msg = cbl_xasprintf("Request body is larger than the limit of %zu bytes",
					 s->opts.max_body);
	} else if (auth_rc < 0) {
		*out = auth;
		return true;
	} else if (!reserve_body(s, r, (size_t)declared)) {
		out->status = 400;
		out->type = "ThrottlingException";
		out->msg = cbl_xstrdup("Rate exceeded: too many request bodies are being received "
				       "at once; retry later");
	} else {
		return false;
	}
	free(auth.msg);
	return true;
}

/* Client-chosen text for the log: printable ASCII only, bounded, so a
 * request cannot forge log lines or send escape sequences to a terminal. */
static void printable(char *out, size_t size, const char *in)
{
	size_t j = 0;
	for (; *in && j + 1 < size; in++)
		out[j++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[j] = '\0';
}

static void access_log(server *s, struct MHD_Connection *c, const char *method,
		       const char *what, unsigned status, const struct req *r, const char *akid)
{
	if (!s->opts.access_log || !s->opts.log)
		return;
	char addr[INET6_ADDRSTRLEN + 1], w[128], key[64], meth[16];
	client_address(c, addr);
	printable(meth, sizeof(meth), method);
	printable(w, sizeof(w), what);
	printable(key, sizeof(key), akid ? akid : "");
	logf_(s, "%s %s %s %u %.1fms%s%s", addr, meth, w, status,
	      (double)(cbl_mono_us() - r->t0) / 1000.0, akid ? " key=" : "", key);
}

static enum MHD_Result answer_refusal(server *s, struct MHD_Connection *c, const char *url,
				      const char *method, struct req *r)
{
	conn_set(r->conn, CONN_BUSY);
	enum MHD_Result res = send_error(c, r->refused.status, r->refused.type, r->refused.msg);
	const char *target = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Target");
	access_log(s, c, method, target && *target ? target : url, r->refused.status, r, r->akid);
	return res;
}

/* The first call, once the head is in: refuses what it can now. */
static enum MHD_Result begin_request(server *s, struct MHD_Connection *c, const char *url,
				     const char *method, struct req *r)
{
	bool drain = true;
	r->conn = conn_of(c);
	conn_set(r->conn, CONN_BODY);
	if (s->dash && server_dash_wants(c, url, method)) {
		/* a page or a form post: its own authentication (the session),
		 * a small body at most */
		r->dash = true;
		if (reserve_body(s, r, PREAUTH_BODY))
			return MHD_YES;
		r->refused.status = 400;
		r->refused.type = "ThrottlingException";
		r->refused.msg = cbl_xstrdup("Rate exceeded: too many request bodies are being received at once");
		r->answered = true;
		return answer_refusal(s, c, url, method, r);
	}
	if (!refuse_head(s, c, url, method, r, &r->refused, &drain, &r->akid))
		return MHD_YES;
	r->answered = true;
	if (drain)
		return MHD_YES; /* answered after the body, unread */
	/* MHD answers and closes the connection without reading the body */
	return answer_refusal(s, c, url, method, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	(void)version;
	server *s = cls;
	struct req *r = *req_cls;

	if (!r) {
		r = cbl_xcalloc(1, sizeof(*r));
		r->t0 = cbl_mono_us();
		*req_cls = r;
		pthread_mutex_lock(&s->lock);
		s->inflight++;
		pthread_mutex_unlock(&s->lock);
		return begin_request(s, c, url, method, r);
	}
	if (*upload_data_size) {
		if (!r->answered && !r->too_big && r->body.len + *upload_data_size <= r->reserved)
			cbl_buf_append(&r->body, upload_data, *upload_data_size);
		else
			r->too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->answered)
		return answer_refusal(s, c, url, method, r);

	unsigned status = 0;
	const char *target = NULL;
	char *akid = NULL;
	conn_set(r->conn, CONN_BUSY);
	enum MHD_Result res = r->dash ? server_dash_handle(s->dash, c, url, method, &r->body, &status)
				      : handle(s, c, url, method, r, &status, &target, &akid);
	access_log(s, c, method, target && *target ? target : url, status, r, akid);
	free(akid);
	return res;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)c;
	(void)toe;
	server *s = cls;
	struct req *r = *req_cls;
	if (!r)
		return;
	conn_set(r->conn, CONN_HEAD); /* a kept-alive connection waits for the next */
	cbl_buf_release(&r->body);
	free(r->refused.msg);
	free(r->akid);
	atomic_fetch_sub(&s->body_reserved, r->reserved);
	pthread_mutex_lock(&s->lock);
	if (s->inflight && --s->inflight == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	free(r);
	*req_cls = NULL;
}

/* ---- listening ---------------------------------------------------------- */

static int parse_listen(const char *listen, struct sockaddr_storage *out, socklen_t *out_len,
			cbl_error **err)
{
	char *host = NULL;
	const char *port;
	int rc = 0;

	if (!listen || !*listen)
		listen = "127.0.0.1:0";
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (!close || close[1] != ':')
			return cbl_error_set(err, CBL_EINVAL,
					     "bad listen address '%s': expected [IPv6]:PORT", listen);
		host = cbl_xstrndup(listen + 1, (size_t)(close - listen - 1));
		port = close + 2;
	} else {
		const char *colon = strrchr(listen, ':');
		if (!colon) {
			host = cbl_xstrdup("127.0.0.1");
			port = listen;
		} else {
			if (strchr(listen, ':') != colon) {
				return cbl_error_set(err, CBL_EINVAL,
						     "bad listen address '%s': write IPv6 addresses "
						     "in brackets, [::1]:PORT",
						     listen);
			}
			host = cbl_xstrndup(listen, (size_t)(colon - listen));
			port = colon + 1;
		}
	}
	char *end;
	errno = 0;
	long p = strtol(port, &end, 10);
	if (!*port || *end || errno || p < 0 || p > 65535) {
		rc = cbl_error_set(err, CBL_EINVAL, "bad listen address '%s': port must be 0-65535",
				   listen);
		goto out;
	}
	if (!*host) {
		rc = cbl_error_set(err, CBL_EINVAL,
				   "bad listen address '%s': give a host, e.g. 127.0.0.1:%ld", listen,
				   p);
		goto out;
	}
	struct addrinfo hints = {0}, *ai = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	int g = getaddrinfo(host, port, &hints, &ai);
	if (g || !ai) {
		rc = cbl_error_set(err, CBL_EINVAL, "bad listen address '%s': %s", listen,
				   gai_strerror(g));
		goto out;
	}
	memcpy(out, ai->ai_addr, ai->ai_addrlen);
	*out_len = ai->ai_addrlen;
	freeaddrinfo(ai);
out:
	free(host);
	return rc;
}

static bool addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static int open_listener(server *s, cbl_error **err)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int rc = parse_listen(s->opts.listen, &ss, &len, err);
	if (rc < 0)
		return rc;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "socket");
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6) {
		/* "[::]:P" listens on IPv4 too, like "0.0.0.0" would alone */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot listen on %s",
					 s->opts.listen ? s->opts.listen : "127.0.0.1:0");
		close(fd);
		return rc;
	}
	if (listen(fd, 511) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "listen");
		close(fd);
		return rc;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	char host[INET6_ADDRSTRLEN + 1] = "127.0.0.1";
	getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST);
	if (ss.ss_family == AF_INET6) {
		s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		s->url = cbl_xasprintf("http://[%s]:%d", host, s->port);
	} else {
		s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		s->url = cbl_xasprintf("http://%s:%d", host, s->port);
	}
	s->loopback = addr_is_loopback(&ss);
	s->listen_fd = fd;
	return 0;
}

/* Fills in the defaults; the connection cap stays under the descriptor
 * limit (MHD would fail accept() past it, refusing legitimate clients in a
 * burst of errors instead of queueing them). */
static void apply_limits(struct server_opts *o)
{
	if (!o->max_body)
		o->max_body = DEFAULT_MAX_BODY;
	if (!o->max_connections)
		o->max_connections = DEFAULT_MAX_CONNECTIONS;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t room = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : FD_RESERVE;
		if (o->max_connections > room)
			o->max_connections = (unsigned)room;
	}
	if (!o->max_per_ip)
		o->max_per_ip = o->max_connections - o->max_connections / 4;
	if (o->max_per_ip > o->max_connections)
		o->max_per_ip = o->max_connections;
	if (!o->header_timeout)
		o->header_timeout = DEFAULT_HEADER_TIMEOUT;
	if (!o->body_timeout)
		o->body_timeout = DEFAULT_BODY_TIMEOUT;
	if (!o->body_budget)
		o->body_budget = 8 * o->max_body;
	if (o->body_budget < o->max_body)
		o->body_budget = o->max_body;
}

int server_start(const struct server_opts *opts, server **out, cbl_error **err)
{
	if (server_dl_load(err) < 0)
		return CBL_EIO;
	int rc;
	*out = NULL;
	if ((!opts->dispatch && !opts->dispatch_text) || !opts->known)
		return cbl_error_set(err, CBL_EINVAL,
				     "server: a dispatch and a known callback are required");
	server *s = cbl_xcalloc(1, sizeof(*s));
	s->opts = *opts;
	s->listen_fd = -1;
	apply_limits(&s->opts);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);

	rc = open_listener(s, err);
	if (rc < 0)
		goto fail;
	if (s->opts.dashboard_home) {
		s->dash = server_dash_new(s->opts.dashboard_home, s->opts.dispatch,
					  s->opts.dispatch_text, s->opts.payload);
		if (!s->dash) {
			rc = cbl_error_set(err, CBL_EIO, "no randomness for the dashboard's token");
			goto fail;
		}
		s->dash_url = cbl_xasprintf("%s/login?token=%s", s->url, server_dash_token(s->dash));
	}

	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	if (s->opts.threads)
		flags |= MHD_USE_EPOLL;
	else
		flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	struct MHD_OptionItem pool[] = {
		{MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)s->opts.threads, NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	s->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
		MHD_OPTION_LISTEN_SOCKET, s->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
		s, MHD_OPTION_UNESCAPE_CALLBACK, unescape_identity, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_LIMIT,
		s->opts.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->opts.max_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT, MHD_OPTION_ARRAY,
		s->opts.threads > 1 ? pool : pool + 1, MHD_OPTION_END);
	if (!s->mhd) {
		rc = cbl_error_set(err, CBL_EIO, "libmicrohttpd could not start on %s", s->url);
		goto fail;
	}
	if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
		MHD_stop_daemon(s->mhd);
		s->listen_fd = -1; /* MHD closed it */
		rc = cbl_error_set(err, CBL_EIO, "cannot start the server's reaper thread");
		goto fail;
	}
	s->reaper_started = true;
	*out = s;
	return 0;
fail:
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	server_dash_free(s->dash);
	free(s->dash_url);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	pthread_cond_destroy(&s->wake);
	free(s->url);
	free(s);
	return rc;
}

int server_port(const server *s)
{
	return s->port;
}

const char *server_url(const server *s)
{
	return s->url;
}

bool server_is_loopback(const server *s)
{
	return s->loopback;
}

const char *server_dashboard_url(const server *s)
{
	return s->dash_url;
}

void server_stop(server *s)
{
	if (!s)
		return;
	if (s->mhd) {
		server_dash_shutdown(s->dash); /* live log streams end */
		MHD_socket fd = MHD_quiesce_daemon(s->mhd);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
		/* Let requests already being handled finish (bounded). */
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += STOP_GRACE_MS / 1000;
		pthread_mutex_lock(&s->lock);
		while (s->inflight) {
			if (pthread_cond_timedwait(&s->idle, &s->lock, &deadline) == ETIMEDOUT)
				break;
		}
		pthread_mutex_unlock(&s->lock);
		MHD_stop_daemon(s->mhd);
	}
	if (s->reaper_started) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->reaper, NULL);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	pthread_cond_destroy(&s->wake);
	server_dash_free(s->dash);
	free(s->dash_url);
	free(s->url);
	free(s);
}
