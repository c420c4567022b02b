/* Unit tests for server/: the HTTP front end (routing, error shapes, status
 * codes, SigV4 enforcement, limits, concurrency, graceful stop) with a stub
 * dispatcher, driven over loopback with libcurl; and server/creds.c. */
#include "server/creds.h"
#include "server/server.h"
#include "server/sigv4.h"
#include "tests/unit/tap.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- stub dispatcher ----------------------------------------------------- */

struct stub {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	bool slow_entered, slow_release;
};

/* Echoes {"target": T, "request": R}; {"code": N} fails with code N;
 * {"slow": true} waits until the test releases it. */
static int stub_dispatch(const char *target, json_t *request, json_t **out, cbl_error **err,
			 void *payload)
{
	struct stub *s = payload;
	pthread_mutex_lock(&s->lock);
	s->calls++;
	pthread_mutex_unlock(&s->lock);
	json_t *code = json_object_get(request, "code");
	if (json_is_integer(code))
		return cbl_error_set(err, (int)json_integer_value(code), "failure %d for %s",
				     (int)json_integer_value(code), target);
	if (json_is_true(json_object_get(request, "slow"))) {
		pthread_mutex_lock(&s->lock);
		s->slow_entered = true;
		pthread_cond_broadcast(&s->cond);
		while (!s->slow_release)
			pthread_cond_wait(&s->cond, &s->lock);
		pthread_mutex_unlock(&s->lock);
	}
	*out = json_pack("{s:s, s:O, s:f}", "target", target, "request", request, "when",
			 1700000000.123);
	return 0;
}

/* Serialized variant: {"code": N} fails, {"empty": true} returns no text,
 * anything else a fixed text. */
static int stub_dispatch_text(const char *target, json_t *request, char **out, size_t *len,
			      cbl_error **err, void *payload)
{
	(void)target;
	(void)payload;
	json_t *code = json_object_get(request, "code");
	if (json_is_integer(code))
		return cbl_error_set(err, (int)json_integer_value(code), "text failure");
	if (json_is_true(json_object_get(request, "empty"))) {
		*out = NULL;
		*len = 0;
		return 0;
	}
	*out = cbl_xstrdup("{\"builds\":[{\"id\":\"p:1\",\"startTime\":1700000000.5}]}");
	*len = strlen(*out);
	return 0;
}

static bool stub_known(const char *target, void *payload)
{
	(void)payload;
	return !strcmp(target, "CodeBuild_20161006.ListProjects") ||
	       !strcmp(target, "CodeBuild_20161006.BatchGetBuilds") ||
	       !strcmp(target, "Logs_20140328.GetLogEvents");
}

/* ---- client ---------------------------------------------------------------- */

struct reply {
	long status;
	cbl_buf body;
	cbl_buf headers;
	json_t *json;
};

static void reply_release(struct reply *r)
{
	cbl_buf_release(&r->body);
	cbl_buf_release(&r->headers);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	cbl_buf_append(ud, p, sz * n);
	return sz * n;
}

struct call {
	const char *method;      /* default POST */
	const char *path;        /* default / */
	const char *target;      /* NULL = no X-Amz-Target */
	const char *body;        /* default {} */
	const char *akid;        /* NULL = unsigned */
	const char *secret;
	const char *service;     /* default from target */
	time_t when;             /* 0 = now */
};

static void call(int port, const struct call *c, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL;
	const char *body = c->body ? c->body : "{}";
	char url[128], host[64], date[32], line[1024];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, c->path ? c->path : "/");
	snprintf(host, sizeof(host), "127.0.0.1:%d", port);
	time_t t = c->when ? c->when : time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);

	struct server_sigv4_header hs[4] = {
		{"Content-Type", "application/x-amz-json-1.1"},
		{"Host", host},
		{"X-Amz-Date", date},
		{"X-Amz-Target", c->target ? c->target : ""},
	};
	for (int i = 0; i < 4; i++) {
		if (i == 3 && !c->target)
			break;
		snprintf(line, sizeof(line), "%s: %s", hs[i].name, hs[i].value);
		hl = curl_slist_append(hl, line);
	}
	if (c->akid) {
		const char *svc = c->service ? c->service
				  : (c->target && !strncmp(c->target, "Logs_", 5)) ? "logs"
										   : "codebuild";
		const char *sh = c->target ? "content-type;host;x-amz-date;x-amz-target"
					   : "content-type;host;x-amz-date";
		struct server_sigv4_request q = {c->method ? c->method : "POST",
						 c->path ? c->path : "/",
						 NULL,
						 hs,
						 (size_t)(c->target ? 4 : 3),
						 body,
						 strlen(body)};
		char ph[65], sig[65], d8[9];
		server_sigv4_sha256_hex(body, strlen(body), ph);
		char *creq = server_sigv4_canonical_request(&q, sh, ph, true);
		memcpy(d8, date, 8);
		d8[8] = '\0';
		char *scope = cbl_xasprintf("%s/us-east-1/%s/aws4_request", d8, svc);
		char *sts = server_sigv4_string_to_sign(date, scope, creq);
		server_sigv4_signature(c->secret, d8, "us-east-1", svc, sts, sig);
		snprintf(line, sizeof(line),
			 "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
			 "Signature=%s",
			 c->akid, scope, sh, sig);
		hl = curl_slist_append(hl, line);
		free(creq);
		free(scope);
		free(sts);
	}
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (c->method && strcmp(c->method, "POST"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	r->json = json_loads(cbl_buf_cstr(&r->body), 0, NULL);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
}

static bool has_header(const struct reply *r, const char *needle)
{
	return strcasestr(cbl_buf_cstr(&r->headers), needle) != NULL;
}

static server *start(struct server_opts *o, struct stub *st, const server_creds *creds)
{
	server *s = NULL;
	cbl_error *err = NULL;
	o->dispatch = stub_dispatch;
	o->known = stub_known;
	o->payload = st;
	o->creds = creds;
	if (server_start(o, &s, &err) < 0)
		printf("# server_start: %s\n", err ? err->msg : "?");
	cbl_error_free(err);
	return s;
}

struct logbuf {
	pthread_mutex_t lock;
	cbl_buf text;
};

static void capture_log(const char *line, void *payload)
{
	struct logbuf *l = payload;
	pthread_mutex_lock(&l->lock);
	cbl_buf_puts(&l->text, line);
	cbl_buf_putc(&l->text, '\n');
	pthread_mutex_unlock(&l->lock);
}

/* ---- tests ------------------------------------------------------------------- */

static void expect_error(int port, const struct call *c, long status, const char *type,
			 const char *what)
{
	struct reply r;
	call(port, c, &r);
	bool good = r.status == status && r.json && type && cbl_json_str(r.json, "__type") &&
		    !strcmp(cbl_json_str(r.json, "__type"), type) && cbl_json_str(r.json, "message");
	ok(good, "%s: %ld %s", what, status, type);
	if (!good)
		printf("#   got %ld %s\n", r.status, cbl_buf_cstr(&r.body));
	reply_release(&r);
}

static void test_basics(const server_creds *creds)
{
	struct stub st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false};
	struct server_opts o = SERVER_OPTS_INIT;
	struct logbuf lb = {PTHREAD_MUTEX_INITIALIZER, CBL_BUF_INIT};
	o.max_body = 4096;
	o.log = capture_log;
	o.log_payload = &lb;
	o.access_log = true;
	server *s = start(&o, &st, creds);
	ok(s != NULL, "server starts on 127.0.0.1:0");
	if (!s)
		return;
	int port = server_port(s);
	ok(port > 0, "a port was picked (%d)", port);
	char want_url[64];
	snprintf(want_url, sizeof(want_url), "http://127.0.0.1:%d", port);
	is_str(server_url(s), want_url, "url");
	ok(server_is_loopback(s), "loopback");

	struct reply r;
	struct call c = {.target = "CodeBuild_20161006.ListProjects", .body = "{\"sortBy\":\"NAME\"}",
			 .akid = "test", .secret = "test"};
	call(port, &c, &r);
	is_int(r.status, 200, "signed ListProjects: 200");
	is_str(cbl_json_str(r.json, "target"), "CodeBuild_20161006.ListProjects", "dispatched with the target");
	is_str(cbl_json_str(json_object_get(r.json, "request"), "sortBy"), "NAME", "... and the parsed body");
	ok(strstr(cbl_buf_cstr(&r.body), "\"when\":1700000000.123") != NULL,
	   "timestamps keep millisecond text (%s)", cbl_buf_cstr(&r.body));
	ok(has_header(&r, "content-type: application/x-amz-json-1.1"), "content type");
	ok(has_header(&r, "x-amzn-RequestId: "), "x-amzn-RequestId header");
	ok(!has_header(&r, "x-amzn-ErrorType"), "no error type on success");
	reply_release(&r);

	c.target = "Logs_20140328.GetLogEvents";
	call(port, &c, &r);
	is_int(r.status, 200, "Logs target on the same port, signed for 'logs': 200");
	reply_release(&r);

	c.body = "";
	c.target = "CodeBuild_20161006.ListProjects";
	call(port, &c, &r);
	ok(r.status == 200 && json_is_object(json_object_get(r.json, "request")) &&
		   json_object_size(json_object_get(r.json, "request")) == 0,
	   "empty body is an empty request");
	reply_release(&r);

	/* dispatcher errors */
	struct {
		int code;
		const char *target;
		long status;
		const char *type;
	} errs[] = {
		{CBL_EINVAL, "CodeBuild_20161006.ListProjects", 400, "InvalidInputException"},
		{CBL_EINVAL, "Logs_20140328.GetLogEvents", 400, "InvalidParameterException"},
		{CBL_ENOENT, "CodeBuild_20161006.ListProjects", 400, "ResourceNotFoundException"},
		{CBL_ENOENT, "Logs_20140328.GetLogEvents", 400, "ResourceNotFoundException"},
		{CBL_EEXIST, "CodeBuild_20161006.ListProjects", 400, "ResourceAlreadyExistsException"},
		{CBL_ELIMIT, "CodeBuild_20161006.ListProjects", 400, "AccountLimitExceededException"},
		{CBL_EIO, "CodeBuild_20161006.ListProjects", 500, "InternalFailure"},
		/* where the server's and the CLI's tables disagreed (store/api.h) */
		{CBL_ESPEC, "CodeBuild_20161006.ListProjects", 400, "InvalidInputException"},
		{CBL_ELIMIT, "Logs_20140328.GetLogEvents", 400, "InvalidParameterException"},
		{CBL_EIO, "Logs_20140328.GetLogEvents", 500, "ServiceUnavailableException"},
	};
	for (size_t i = 0; i < sizeof(errs) / sizeof(*errs); i++) {
		char body[64], what[96];
		snprintf(body, sizeof(body), "{\"code\": %d}", errs[i].code);
		snprintf(what, sizeof(what), "dispatch error %d on %s", errs[i].code, errs[i].target);
		struct call e = {.target = errs[i].target, .body = body, .akid = "test",
				 .secret = "test"};
		expect_error(port, &e, errs[i].status, errs[i].type, what);
	}
	struct call e = {.target = "CodeBuild_20161006.ListProjects", .body = "{\"code\": -2}",
			 .akid = "test", .secret = "test"};
	call(port, &e, &r);
	is_str(cbl_json_str(r.json, "message"), "failure -2 for CodeBuild_20161006.ListProjects",
	       "the dispatcher's message is passed on");
	ok(has_header(&r, "x-amzn-ErrorType: ResourceNotFoundException"), "x-amzn-ErrorType header");
	reply_release(&r);

	/* protocol errors */
	struct call u = {.target = "CodeBuild_20161006.DeleteEverything", .akid = "test",
			 .secret = "test"};
	expect_error(port, &u, 400, "UnknownOperationException", "unknown operation");
	u.target = "Foo_2020.ListProjects";
	expect_error(port, &u, 400, "UnknownOperationException", "unknown service prefix");
	u.target = NULL;
	expect_error(port, &u, 400, "UnknownOperationException", "no X-Amz-Target");
	struct call j = {.target = "CodeBuild_20161006.ListProjects", .body = "{\"a\": ",
			 .akid = "test", .secret = "test"};
	expect_error(port, &j, 400, "SerializationException", "malformed JSON");
	j.body = "[1, 2]";
	expect_error(port, &j, 400, "SerializationException", "JSON array body");
	j.body = "{\"a\": \"\\u0000\"}";
	expect_error(port, &j, 400, "SerializationException", "NUL in a string");
	char *big = cbl_xmalloc(5000);
	memset(big, ' ', 4999);
	big[0] = '{';
	big[4998] = '}';
	big[4999] = '\0';
	j.body = big;
	expect_error(port, &j, 413, "RequestEntityTooLargeException", "body over max_body");
	free(big);
	struct call g = {.method = "GET", .target = "CodeBuild_20161006.ListProjects",
			 .akid = "test", .secret = "test"};
	expect_error(port, &g, 405, "UnknownOperationException", "GET");
	g.method = "POST";
	g.path = "/2016-10-06/projects";
	expect_error(port, &g, 404, "UnknownOperationException", "POST to another path");

	/* authentication */
	int before = st.calls;
	struct call a = {.target = "CodeBuild_20161006.ListProjects"};
	expect_error(port, &a, 400, "MissingAuthenticationTokenException", "unsigned");
	a.akid = "test";
	a.secret = "wrong";
	expect_error(port, &a, 400, "InvalidSignatureException", "wrong secret");
	a.akid = "nobody";
	expect_error(port, &a, 400, "UnrecognizedClientException", "unknown key");
	a.akid = "test";
	a.secret = "test";
	a.when = time(NULL) - 3600;
	expect_error(port, &a, 400, "InvalidSignatureException", "an hour old");
	a.when = 0;
	a.service = "logs";
	expect_error(port, &a, 400, "InvalidSignatureException", "CodeBuild target signed for logs");
	a.service = NULL;
	a.target = "CodeBuild_20161006.Nope";
	a.secret = "wrong";
	expect_error(port, &a, 400, "InvalidSignatureException",
		     "authentication comes before the operation check");
	a.akid = "second";
	a.secret = "key2";
	a.target = "CodeBuild_20161006.ListProjects";
	call(port, &a, &r);
	is_int(r.status, 200, "a second key of the set works");
	reply_release(&r);
	is_int(st.calls - before, 1, "no rejected request reached the dispatcher");

	struct call evil = {.target = "CodeBuild_20161006.List\x1b[31mProjects", .akid = "k\x1b",
			    .secret = "x"};
	call(port, &evil, &r);
	reply_release(&r);
	server_stop(s);
	const char *log = cbl_buf_cstr(&lb.text);
	ok(strstr(log, "127.0.0.1 POST CodeBuild_20161006.ListProjects 200 ") != NULL,
	   "access log line: address, method, target, status");
	ok(strstr(log, " 400 ") && strstr(log, "key=nobody"), "... rejected requests name the key");
	ok(strstr(log, "List?[31mProjects") && strstr(log, "key=k?") && !strchr(log, '\x1b'),
	   "... control characters from the client are neutralized");
	cbl_buf_release(&lb.text);
}

struct worker {
	int port, id, good;
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	for (int i = 0; i < 40; i++) {
		char body[64];
		snprintf(body, sizeof(body), "{\"n\": %d}", w->id * 1000 + i);
		struct call c = {.target = "CodeBuild_20161006.BatchGetBuilds", .body = body,
				 .akid = "test", .secret = "test"};
		struct reply r;
		call(w->port, &c, &r);
		json_t *n = json_object_get(json_object_get(r.json, "request"), "n");
		if (r.status == 200 && json_integer_value(n) == w->id * 1000 + i)
			w->good++;
		reply_release(&r);
	}
	return NULL;
}

static void test_concurrency(const server_creds *creds, unsigned threads)
{
	struct stub st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false};
	struct server_opts o = SERVER_OPTS_INIT;
	o.threads = threads;
	server *s = start(&o, &st, creds);
	if (!s) {
		ok(0, "server starts (threads=%u)", threads);
		return;
	}
	pthread_t t[8];
	struct worker w[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){server_port(s), i, 0};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	int good = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		good += w[i].good;
	}
	is_int(good, 320, "8 clients x 40 requests, each answered with its own body (threads=%u)",
	       threads);
	is_int(st.calls, 320, "... every one dispatched once");
	server_stop(s);
}

struct slow_client {
	int port;
	struct reply r;
};

static void *slow_main(void *p)
{
	struct slow_client *sc = p;
	struct call c = {.target = "CodeBuild_20161006.ListProjects", .body = "{\"slow\": true}"};
	call(sc->port, &c, &sc->r);
	return NULL;
}

struct stopper {
	server *s;
	bool done;
};

static void *stop_main(void *p)
{
	struct stopper *x = p;
	server_stop(x->s);
	x->done = true;
	return NULL;
}

static void test_graceful_stop(void)
{
	struct stub st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false};
	struct server_opts o = SERVER_OPTS_INIT;
	server *s = start(&o, &st, NULL);
	if (!s) {
		ok(0, "no-auth server starts");
		return;
	}
	struct reply r;
	struct call c = {.target = "CodeBuild_20161006.ListProjects"};
	call(server_port(s), &c, &r);
	is_int(r.status, 200, "no-auth server: unsigned request accepted");
	reply_release(&r);
	c.akid = "whoever";
	c.secret = "whatever";
	call(server_port(s), &c, &r);
	is_int(r.status, 200, "no-auth server: any signature accepted");
	reply_release(&r);

	struct slow_client sc = {server_port(s)};
	pthread_t t, ts;
	pthread_create(&t, NULL, slow_main, &sc);
	pthread_mutex_lock(&st.lock);
	while (!st.slow_entered)
		pthread_cond_wait(&st.cond, &st.lock);
	pthread_mutex_unlock(&st.lock);
	/* the request is inside the dispatcher: stop the server now */
	struct stopper x = {s, false};
	pthread_create(&ts, NULL, stop_main, &x);
	pthread_mutex_lock(&st.lock);
	st.slow_release = true;
	pthread_cond_broadcast(&st.cond);
	pthread_mutex_unlock(&st.lock);
	pthread_join(t, NULL);
	pthread_join(ts, NULL);
	is_int(sc.r.status, 200, "a request in progress when the server stops still gets its answer");
	reply_release(&sc.r);
	ok(x.done, "server_stop returned");
}

static void test_text_dispatch(const server_creds *creds)
{
	struct server_opts o = SERVER_OPTS_INIT;
	server *s = NULL;
	cbl_error *err = NULL;
	o.dispatch_text = stub_dispatch_text;
	o.known = stub_known;
	o.creds = creds;
	if (server_start(&o, &s, &err) < 0) {
		ok(0, "text-dispatch server starts: %s", err ? err->msg : "");
		cbl_error_free(err);
		return;
	}
	struct reply r;
	struct call c = {.target = "CodeBuild_20161006.BatchGetBuilds", .akid = "test",
			 .secret = "test"};
	call(server_port(s), &c, &r);
	ok(r.status == 200 && !strcmp(cbl_buf_cstr(&r.body),
				      "{\"builds\":[{\"id\":\"p:1\",\"startTime\":1700000000.5}]}"),
	   "serialized dispatcher: its text is the response body");
	reply_release(&r);
	c.body = "{\"empty\": true}";
	call(server_port(s), &c, &r);
	is_str(cbl_buf_cstr(&r.body), "{}", "... no text is an empty object");
	reply_release(&r);
	c.body = "{\"code\": -9}";
	expect_error(server_port(s), &c, 400, "ResourceAlreadyExistsException",
		     "... its errors map like dispatch's");
	server_stop(s);
}

static void test_listen(void)
{
	struct stub st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false};
	const char *bad[] = {"127.0.0.1:65536", "127.0.0.1:-1", "::1:80", ":80", "127.0.0.1:x",
			     "[::1]80", "127.0.0.1:"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct server_opts o = SERVER_OPTS_INIT;
		server *s = NULL;
		cbl_error *err = NULL;
		o.listen = bad[i];
		o.dispatch = stub_dispatch;
		o.known = stub_known;
		o.payload = &st;
		int rc = server_start(&o, &s, &err);
		ok(rc == CBL_EINVAL && !s, "listen '%s' refused (%s)", bad[i], err ? err->msg : "");
		cbl_error_free(err);
		server_stop(s);
	}
	struct server_opts o = SERVER_OPTS_INIT;
	server *a = start(&o, &st, NULL), *b = NULL;
	if (a) {
		char addr[64];
		cbl_error *err = NULL;
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", server_port(a));
		o.listen = addr;
		int rc = server_start(&o, &b, &err);
		ok(rc == CBL_EIO && err && strstr(err->msg, "in use"), "port in use: %s",
		   err ? err->msg : "");
		cbl_error_free(err);
		server_stop(b);
		server_stop(a);
	}
	o.listen = "[::1]:0";
	server *v6 = NULL;
	cbl_error *err = NULL;
	o.creds = NULL;
	if (server_start(&o, &v6, &err) < 0) {
		skip("no IPv6 loopback here (%s)", err ? err->msg : "");
	} else {
		ok(!strncmp(server_url(v6), "http://[::1]:", 13) && server_is_loopback(v6),
		   "IPv6 loopback: %s", server_url(v6));
	}
	cbl_error_free(err);
	server_stop(v6);
	o.listen = "0.0.0.0:0";
	server *any = start(&o, &st, NULL);
	ok(any && !server_is_loopback(any), "0.0.0.0 is not loopback");
	server_stop(any);
	struct server_opts none = SERVER_OPTS_INIT;
	server *n = NULL;
	err = NULL;
	ok(server_start(&none, &n, &err) == CBL_EINVAL, "no dispatcher: refused");
	cbl_error_free(err);
}

static void test_creds(const char *tmp)
{
	server_creds *c = server_creds_new();
	cbl_error *err = NULL;
	char *path = cbl_xasprintf("%s/credentials", tmp);
	const char *text = "# comment\n"
			   "[default]\n"
			   "aws_access_key_id = AKIA1\n"
			   "aws_secret_access_key=secret/1+x#not-a-comment\n"
			   "region = us-east-1\n"
			   "\n"
			   "; another comment\n"
			   "[profile other]\r\n"
			   "AWS_ACCESS_KEY_ID = AKIA2\r\n"
			   "aws_secret_access_key = s2\r\n"
			   "aws_session_token = tok\r\n"
			   "s3 =\n"
			   "  max_concurrent_requests = 10\n"
			   "[empty]\n"
			   "region = eu-west-1\n";
	size_t added = 0;
	cbl_write_file_atomic(path, text, strlen(text), 0600, false, &err);
	int rc = server_creds_load_file(c, path, &added, &err);
	ok(rc == 0, "credentials file loads%s%s", err ? ": " : "", err ? err->msg : "");
	is_int(added, 2, "two pairs");
	is_str(server_creds_lookup(c, "AKIA1"), "secret/1+x#not-a-comment", "value kept whole");
	is_str(server_creds_lookup(c, "AKIA2"), "s2", "keys case-insensitive, CRLF trimmed");
	ok(server_creds_lookup(c, "AKIA3") == NULL, "unknown key");
	ok(server_creds_add(c, "AKIA1", "secret/1+x#not-a-comment", &err) == 0,
	   "same pair again is fine");
	ok(server_creds_add(c, "AKIA1", "other", &err) == CBL_EINVAL, "same key, other secret: refused");
	cbl_error_clear(&err);
	is_int(server_creds_count(c), 2, "count");

	text = "[a]\naws_access_key_id = K\n[b]\naws_access_key_id = L\naws_secret_access_key = M\n";
	cbl_write_file_atomic(path, text, strlen(text), 0600, false, &err);
	rc = server_creds_load_file(c, path, NULL, &err);
	ok(rc == CBL_EINVAL && err && strstr(err->msg, "[a]"), "half a pair is an error naming "
	   "the profile (%s)", err ? err->msg : "");
	cbl_error_clear(&err);
	text = "[a]\nthis is not ini\n";
	cbl_write_file_atomic(path, text, strlen(text), 0600, false, &err);
	ok(server_creds_load_file(c, path, NULL, &err) == CBL_EINVAL, "garbage line: error");
	cbl_error_clear(&err);
	char *missing = cbl_xasprintf("%s/none", tmp);
	ok(server_creds_load_file(c, missing, NULL, &err) < 0, "missing file: error");
	cbl_error_clear(&err);
	ok(server_creds_add(c, "", "x", &err) == CBL_EINVAL, "empty key id refused");
	cbl_error_clear(&err);
	free(missing);
	free(path);
	server_creds_free(c);
}

int main(void)
{
	char tmp[] = "/tmp/test_server.XXXXXX";
	if (!mkdtemp(tmp)) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	server_creds *creds = server_creds_new();
	server_creds_add(creds, "test", "test", NULL);
	server_creds_add(creds, "second", "key2", NULL);

	test_creds(tmp);
	test_basics(creds);
	test_concurrency(creds, 0);
	test_concurrency(creds, 2);
	test_graceful_stop();
	test_text_dispatch(creds);
	test_listen();

	server_creds_free(creds);
	curl_global_cleanup();
	cbl_rm_rf(tmp, NULL);
	return tap_done();
}
