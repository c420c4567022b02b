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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/banned.h"

#define DEFAULT_MAX_BODY (8u << 20)
#define DEFAULT_MAX_CONNECTIONS 256u
#define MAX_SKEW_SECONDS 900
#define STOP_GRACE_MS 10000
#define CONTENT_TYPE "application/x-amz-json-1.1"

struct server {
	struct server_opts opts;
	struct MHD_Daemon *mhd;
	int listen_fd;
	int port;
	bool loopback;
	char *url;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned inflight;
};

/* Per-request state, from the first access-handler call to MHD's
 * "completed" notification. */
struct req {
	cbl_buf body;
	bool too_big;
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

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type,
				  const char *message)
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
	return send_json(c, status, body, strlen(body), type, status == 405 ? "Allow" : NULL,
			 status == 405 ? "POST" : NULL);
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

	if (strcmp(method, "POST")) {
		*out_status = 405;
		return send_error(c, 405, "UnknownOperationException",
				  "The AWS JSON protocol only uses POST /");
	}
	if (strcmp(url, "/")) {
		*out_status = 404;
		return send_error(c, 404, "UnknownOperationException",
				  "The AWS JSON protocol only uses POST /");
	}
	if (r->too_big) {
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
	int rc = s->opts.dispatch_text
			 ? s->opts.dispatch_text(target, request, &body, &len, &err, s->opts.payload)
			 : s->opts.dispatch(target, request, &response, &err, s->opts.payload);
	if (rc < 0) {
		unsigned st = store_api_error_status(rc);
		const char *type = store_api_error_type(target, rc);
		free(body);
		*out_status = st;
		res = send_error(c, st, type, err ? err->msg : "internal error");
		goto out;
	}
	if (!s->opts.dispatch_text) {
		if (!response)
			response = json_object();
		body = json_dumps(response, JSON_COMPACT | JSON_REAL_PRECISION(16));
		len = body ? strlen(body) : 0;
	} else if (!body) {
		body = cbl_xstrdup("{}");
		len = 2;
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

/* Client-chosen text for the log: printable ASCII only, bounded, so a
 * request cannot forge log lines or send escape sequences to a terminal. */
static void printable(char *out, size_t size, const char *in)
{
	size_t j = 0;
	for (; *in && j + 1 < size; in++)
		out[j++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[j] = '\0';
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
		const char *cl =
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(cl, &end, 10);
			if (errno || *end || n > s->opts.max_body)
				r->too_big = true;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!r->too_big && r->body.len + *upload_data_size <= s->opts.max_body)
			cbl_buf_append(&r->body, upload_data, *upload_data_size);
		else
			r->too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}

	unsigned status = 0;
	const char *target = NULL;
	char *akid = NULL;
	enum MHD_Result res = handle(s, c, url, method, r, &status, &target, &akid);
	if (s->opts.access_log && s->opts.log) {
		char addr[INET6_ADDRSTRLEN + 1], what[128], key[64], meth[16];
		client_address(c, addr);
		printable(meth, sizeof(meth), method);
		printable(what, sizeof(what), target && *target ? target : url);
		printable(key, sizeof(key), akid ? akid : "");
		logf_(s, "%s %s %s %u %.1fms%s%s", addr, meth, what, status,
		      (double)(cbl_mono_us() - r->t0) / 1000.0, akid ? " key=" : "", key);
	}
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
	cbl_buf_release(&r->body);
	free(r);
	*req_cls = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->inflight && --s->inflight == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
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
	if (!s->opts.max_body)
		s->opts.max_body = DEFAULT_MAX_BODY;
	if (!s->opts.max_connections)
		s->opts.max_connections = DEFAULT_MAX_CONNECTIONS;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);

	rc = open_listener(s, err);
	if (rc < 0)
		goto fail;

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
		MHD_OPTION_CONNECTION_LIMIT, s->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)120, MHD_OPTION_ARRAY, s->opts.threads > 1 ? pool : pool + 1,
		MHD_OPTION_END);
	if (!s->mhd) {
		rc = cbl_error_set(err, CBL_EIO, "libmicrohttpd could not start on %s", s->url);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
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

void server_stop(server *s)
{
	if (!s)
		return;
	if (s->mhd) {
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
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s->url);
	free(s);
}
