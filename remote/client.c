/* remote/client.c - JSON 1.1 calls signed with SigV4, with retries (see
 * remote.h). */
#include "remote/remote.h"
#include "server/sigv4.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/curl.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/banned.h"

#define MAX_ATTEMPTS 4
#define BASE_DELAY_MS 100
#define MAX_DELAY_MS 20000
#define MAX_ANSWER (64u << 20)

struct remote_client {
	remote_creds creds;
	char *endpoint;       /* NULL = the service's own */
	CURL *h;
	char error_type[128];
	int attempts;
};

int remote_client_new(remote_client **out, const remote_creds *c, const char *endpoint_url, cbl_error **err)
{
	int rc = cbl_curl_load(err);
	if (rc < 0)
		return rc;
	if (endpoint_url && strncmp(endpoint_url, "http://", 7) && strncmp(endpoint_url, "https://", 8))
		return cbl_error_set(err, CBL_EINVAL, "--endpoint-url must be an http:// or https:// URL, got '%s'",
				     endpoint_url);
	if (!endpoint_url && !c->region)
		return cbl_error_set(err, CBL_EINVAL,
				     "no AWS region: pass --region, set AWS_REGION, or add region to the profile");
	remote_client *cl = cbl_xcalloc(1, sizeof(*cl));
	cl->creds.access_key_id = cbl_xstrdup(c->access_key_id);
	cl->creds.secret_access_key = cbl_xstrdup(c->secret_access_key);
	cl->creds.session_token = c->session_token ? cbl_xstrdup(c->session_token) : NULL;
	cl->creds.region = cbl_xstrdup(c->region ? c->region : "us-east-1");
	cl->creds.source = c->source ? cbl_xstrdup(c->source) : NULL;
	if (endpoint_url) {
		size_t n = strlen(endpoint_url);
		while (n > 8 && endpoint_url[n - 1] == '/')
			n--;
		cl->endpoint = cbl_xstrndup(endpoint_url, n);
	}
	cl->h = curl_easy_init();
	if (!cl->h) {
		remote_client_free(cl);
		return cbl_error_set(err, CBL_EINTERNAL, "curl_easy_init failed");
	}
	*out = cl;
	return 0;
}

void remote_client_free(remote_client *c)
{
	if (!c)
		return;
	if (c->h)
		curl_easy_cleanup(c->h);
	remote_creds_release(&c->creds);
	free(c->endpoint);
	free(c);
}

const char *remote_last_error_type(const remote_client *c) { return c->error_type; }
int remote_last_attempts(const remote_client *c) { return c->attempts; }

static const char *target_prefix(const char *service)
{
	return !strcmp(service, "logs") ? "Logs_20140328" : "CodeBuild_20161006";
}

/* host[:port] of a URL (borrowed into buf). */
static const char *url_host(const char *url, char *buf, size_t size)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t n = strcspn(p, "/?#");
	const char *at = memchr(p, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	snprintf(buf, size, "%.*s", (int)n, p);
	return buf;
}

typedef struct answer {
	cbl_buf body;
	bool too_big;
} answer;

static size_t on_body(char *data, size_t size, size_t n, void *payload)
{
	answer *a = payload;
	if (a->body.len + size * n > MAX_ANSWER) {
		a->too_big = true;
		return 0;
	}
	cbl_buf_append(&a->body, data, size * n);
	return size * n;
}

/* The signed headers of one attempt (a new X-Amz-Date each time). */
static struct curl_slist *sign(const remote_client *c, const char *service, const char *host, const char *target,
			       const char *body)
{
	char amz_date[17], date[9];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, amz_date, 8);
	date[8] = '\0';
	const char *ctype = "application/x-amz-json-1.1";
	struct server_sigv4_header hs[5] = {
		{"content-type", ctype},
		{"host", host},
		{"x-amz-date", amz_date},
		{"x-amz-security-token", c->creds.session_token ? c->creds.session_token : ""},
		{"x-amz-target", target},
	};
	const char *signed_headers = c->creds.session_token ? "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
							    : "content-type;host;x-amz-date;x-amz-target";
	struct server_sigv4_request req = {"POST", "/", "", hs, 5, body, strlen(body)};
	char payload_hash[65], sig[65];
	server_sigv4_sha256_hex(body, strlen(body), payload_hash);
	char *creq = server_sigv4_canonical_request(&req, signed_headers, payload_hash, true);
	char *scope = cbl_xasprintf("%s/%s/%s/aws4_request", date, c->creds.region, service);
	char *sts = server_sigv4_string_to_sign(amz_date, scope, creq);
	server_sigv4_signature(c->creds.secret_access_key, date, c->creds.region, service, sts, sig);
	struct curl_slist *l = NULL;
	char *line;
#define ADD(...) (line = cbl_xasprintf(__VA_ARGS__), l = curl_slist_append(l, line), free(line))
	ADD("Content-Type: %s", ctype);
	ADD("X-Amz-Date: %s", amz_date);
	ADD("X-Amz-Target: %s", target);
	if (c->creds.session_token)
		ADD("X-Amz-Security-Token: %s", c->creds.session_token);
	ADD("Authorization: AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
	    c->creds.access_key_id, scope, signed_headers, sig);
	ADD("Expect:");
#undef ADD
	free(creq);
	free(scope);
	free(sts);
	return l;
}

static bool retryable_type(const char *t)
{
	static const char *const types[] = {"Throttling", "ThrottlingException", "ThrottledException",
					    "TooManyRequestsException", "RequestLimitExceeded",
					    "RequestThrottled", "RequestThrottledException",
					    "ServiceUnavailable", "ServiceUnavailableException",
					    "InternalFailure", "InternalError", "InternalServerError"};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(t, types[i]))
			return true;
	return false;
}

static void backoff(int attempt)
{
	uint32_t r = 0;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)time(NULL);
	long cap = (long)BASE_DELAY_MS << attempt;
	if (cap > MAX_DELAY_MS)
		cap = MAX_DELAY_MS;
	long ms = (long)(r % (uint32_t)(cap + 1));
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The error an AWS answer carries: its type (after '#') and message. */
static int aws_error(remote_client *c, long status, const char *body, cbl_error **err)
{
	json_t *j = json_loads(body, 0, NULL);
	const char *type = j ? json_string_value(json_object_get(j, "__type")) : NULL;
	const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
	if (!msg && j)
		msg = json_string_value(json_object_get(j, "Message"));
	const char *hash = type ? strrchr(type, '#') : NULL;
	snprintf(c->error_type, sizeof(c->error_type), "%s",
		 hash ? hash + 1 : type ? type : (status >= 500 ? "InternalFailure" : "UnknownError"));
	int code = CBL_EIO;
	if (strstr(c->error_type, "NotFound"))
		code = CBL_ENOENT;
	else if (status == 400 || status == 403)
		code = CBL_EINVAL;
	int rc = cbl_error_set(err, code, "%s: %s (HTTP %ld)", c->error_type, msg ? msg : "(no message)", status);
	json_decref(j);
	return rc;
}

/* One attempt: 0 ok, 1 retry, <0 error (said). */
static int attempt(remote_client *c, const char *service, const char *target, const char *body, json_t **out,
		   cbl_error **err)
{
	char *url = c->endpoint ? cbl_xasprintf("%s/", c->endpoint)
				: cbl_xasprintf("https://%s.%s.amazonaws.com/", service, c->creds.region);
	char host[256];
	url_host(url, host, sizeof(host));
	struct curl_slist *hdrs = sign(c, service, host, target, body);
	answer a = {CBL_BUF_INIT, false};
	CURL *h = c->h;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 70L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "codebuild-local");
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	int rc;
	if (cc != CURLE_OK) {
		snprintf(c->error_type, sizeof(c->error_type), "%s", a.too_big ? "AnswerTooLarge" : "ConnectionError");
		rc = a.too_big ? cbl_error_set(err, CBL_EIO, "%s: the answer is over %u MB", url, MAX_ANSWER >> 20)
			       : cbl_error_set(err, CBL_EIO, "%s: %s", url, curl_easy_strerror(cc));
		if (!a.too_big)
			rc = 1;
	} else if (status >= 200 && status < 300) {
		json_error_t je;
		*out = json_loads(cbl_buf_cstr(&a.body), 0, &je);
		rc = *out && json_is_object(*out)
			     ? 0
			     : cbl_error_set(err, CBL_EIO, "%s: the answer is not a JSON object: %s", url, je.text);
		if (rc && *out) {
			json_decref(*out);
			*out = NULL;
		}
	} else {
		rc = aws_error(c, status, cbl_buf_cstr(&a.body), err);
		if (status >= 500 || retryable_type(c->error_type))
			rc = 1;
	}
	cbl_buf_release(&a.body);
	free(url);
	return rc;
}

int remote_call(remote_client *c, const char *service, const char *operation, const json_t *request,
		json_t **out, cbl_error **err)
{
	char *target = cbl_xasprintf("%s.%s", target_prefix(service), operation);
	char *body = json_dumps(request, JSON_COMPACT);
	int rc = 1;
	c->error_type[0] = '\0';
	c->attempts = 0;
	*out = NULL;
	for (int i = 0; i < MAX_ATTEMPTS && rc == 1; i++) {
		if (i) {
			backoff(i);
		}
		c->attempts++;
		cbl_error *e = NULL;
		rc = attempt(c, service, target, body ? body : "{}", out, &e);
		if (rc == 1 && i + 1 == MAX_ATTEMPTS) {
			rc = cbl_error_set(err, e ? e->code : CBL_EIO, "%s (after %d attempts)", e ? e->msg : "failed",
					   MAX_ATTEMPTS);
		} else if (rc < 0) {
			rc = cbl_error_set(err, e ? e->code : CBL_EIO, "%s", e ? e->msg : "failed");
		}
		cbl_error_free(e);
	}
	if (!rc)
		c->error_type[0] = '\0';
	free(target);
	free(body);
	return rc;
}
