/* server/sigv4.c - AWS Signature Version 4 verification.
 *
 * The rules follow AWS's published algorithm and its official test suite
 * (awslabs/aws-c-auth tests/aws-signing-test-suite/v4), which
 * tests/unit/test_sigv4.c replays case by case.  Error texts copy the
 * wording AWS's front ends use, so users can search for them. */
#include "server/sigv4.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/banned.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

const char *server_sigv4_status_type(enum server_sigv4_status st)
{
	switch (st) {
	case SERVER_SIGV4_OK:
		return "";
	case SERVER_SIGV4_MISSING:
		return "MissingAuthenticationTokenException";
	case SERVER_SIGV4_INCOMPLETE:
		return "IncompleteSignatureException";
	case SERVER_SIGV4_UNKNOWN_KEY:
		return "UnrecognizedClientException";
	case SERVER_SIGV4_BAD_SIGNATURE:
		return "InvalidSignatureException";
	}
	return "InvalidSignatureException";
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void server_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		abort(); /* only on OpenSSL misconfiguration: SHA-256 is always there */
	hex_encode(md, 32, out);
}

static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
	unsigned int n = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out,
		  &n) ||
	    n != 32)
		abort();
}

void server_sigv4_signature(const char *secret, const char *date, const char *region,
			    const char *service, const char *string_to_sign, char out[65])
{
	unsigned char k[32], k2[32];
	char *ksecret = cbl_xasprintf("AWS4%s", secret);
	hmac(ksecret, strlen(ksecret), date, k);
	OPENSSL_cleanse(ksecret, strlen(ksecret));
	free(ksecret);
	hmac(k, 32, region, k2);
	hmac(k2, 32, service, k);
	hmac(k, 32, "aws4_request", k2);
	hmac(k2, 32, string_to_sign, k);
	hex_encode(k, 32, out);
	OPENSSL_cleanse(k2, sizeof(k2));
}

/* ---- canonical request ---------------------------------------------- */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* Percent-encodes everything but the unreserved set (and '/' if keep_slash),
 * upper-case hex as SigV4 requires. */
static void uri_encode(cbl_buf *b, const char *s, size_t n, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			cbl_buf_putc(b, (char)c);
		} else {
			char e[3] = {'%', digits[c >> 4], digits[c & 15]};
			cbl_buf_append(b, e, 3);
		}
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XY escapes (malformed ones stay literal); '+' stays '+'. */
static char *percent_decode(const char *s, size_t n, size_t *out_len)
{
	char *o = cbl_xmalloc(n + 1);
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			o[j++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			o[j++] = s[i];
		}
	}
	o[j] = '\0';
	*out_len = j;
	return o;
}

/* RFC 3986 remove_dot_segments, plus collapsing of empty segments ("//"),
 * as the suite's *-normalized cases expect.  A trailing "/", "/." or "/.."
 * leaves the result ending in '/'. */
static char *normalize_path(const char *path)
{
	cbl_strv segs = CBL_STRV_INIT;
	const char *p = path;
	bool trailing = false;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0) {
			trailing = true;
			break;
		}
		trailing = (e && e[1] == '\0');
		if (n == 1 && p[0] == '.') {
			trailing = true;
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (segs.n) {
				free(segs.v[segs.n - 1]);
				segs.v[--segs.n] = NULL;
			}
			trailing = true;
		} else {
			cbl_strv_push_take(&segs, cbl_xstrndup(p, n));
		}
		p += n;
	}
	cbl_buf b = CBL_BUF_INIT;
	for (size_t i = 0; i < segs.n; i++) {
		cbl_buf_putc(&b, '/');
		cbl_buf_puts(&b, segs.v[i]);
	}
	if (!segs.n || trailing)
		cbl_buf_putc(&b, '/');
	cbl_strv_release(&segs);
	return cbl_buf_detach(&b);
}

struct qparam {
	char *k, *v; /* encoded */
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	return c ? c : strcmp(x->v, y->v);
}

static void canonical_query(cbl_buf *out, const char *query)
{
	struct qparam *ps = NULL;
	size_t n = 0, cap = 0;
	const char *p = query;
	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len) {
			const char *eq = memchr(p, '=', len);
			size_t klen = eq ? (size_t)(eq - p) : len;
			size_t dk, dv;
			char *k = percent_decode(p, klen, &dk);
			char *v = eq ? percent_decode(eq + 1, len - klen - 1, &dv)
				     : (dv = 0, cbl_xstrdup(""));
			cbl_buf kb = CBL_BUF_INIT, vb = CBL_BUF_INIT;
			uri_encode(&kb, k, dk, false);
			uri_encode(&vb, v, dv, false);
			free(k);
			free(v);
			CBL_GROW(ps, n + 1, cap);
			ps[n].k = cbl_buf_detach(&kb);
			ps[n].v = cbl_buf_detach(&vb);
			n++;
		}
		p = amp ? amp + 1 : p + len;
	}
	if (n)
		qsort(ps, n, sizeof(*ps), qparam_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			cbl_buf_putc(out, '&');
		cbl_buf_puts(out, ps[i].k);
		cbl_buf_putc(out, '=');
		cbl_buf_puts(out, ps[i].v);
		free(ps[i].k);
		free(ps[i].v);
	}
	free(ps);
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends value trimmed, with runs of whitespace squeezed to one space
 * (botocore: ' '.join(value.split())). */
static void append_trimmed(cbl_buf *b, const char *v)
{
	bool pending = false, any = false;
	for (; *v; v++) {
		if (is_ws(*v)) {
			pending = any;
			continue;
		}
		if (pending)
			cbl_buf_putc(b, ' ');
		pending = false;
		any = true;
		cbl_buf_putc(b, *v);
	}
}

char *server_sigv4_canonical_request(const struct server_sigv4_request *req,
				     const char *signed_headers, const char *payload_hash,
				     bool normalize)
{
	cbl_buf b = CBL_BUF_INIT;
	const char *path = req->path && *req->path ? req->path : "/";
	cbl_buf_puts(&b, req->method ? req->method : "");
	cbl_buf_putc(&b, '\n');
	if (normalize) {
		char *np = normalize_path(path);
		uri_encode(&b, np, strlen(np), true);
		free(np);
	} else {
		uri_encode(&b, path, strlen(path), true);
	}
	cbl_buf_putc(&b, '\n');
	canonical_query(&b, req->query);
	cbl_buf_putc(&b, '\n');

	const char *p = signed_headers ? signed_headers : "";
	while (*p) {
		const char *semi = strchr(p, ';');
		size_t n = semi ? (size_t)(semi - p) : strlen(p);
		if (n) {
			bool first = true;
			cbl_buf_append(&b, p, n);
			cbl_buf_putc(&b, ':');
			for (size_t i = 0; i < req->nheaders; i++) {
				const char *name = req->headers[i].name;
				if (strlen(name) != n || strncasecmp(name, p, n))
					continue;
				if (!first)
					cbl_buf_putc(&b, ',');
				first = false;
				append_trimmed(&b, req->headers[i].value ? req->headers[i].value : "");
			}
			cbl_buf_putc(&b, '\n');
		}
		p += n + (semi ? 1 : 0);
	}
	cbl_buf_putc(&b, '\n');
	cbl_buf_puts(&b, signed_headers ? signed_headers : "");
	cbl_buf_putc(&b, '\n');
	cbl_buf_puts(&b, payload_hash);
	return cbl_buf_detach(&b);
}

char *server_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq)
{
	char h[65];
	server_sigv4_sha256_hex(creq, strlen(creq), h);
	return cbl_xasprintf(ALGORITHM "\n%s\n%s\n%s", amz_date, scope, h);
}

/* ---- Authorization header --------------------------------------------- */

void server_sigv4_auth_release(struct server_sigv4_auth *a)
{
	free(a->access_key_id);
	free(a->date);
	free(a->region);
	free(a->service);
	free(a->terminator);
	free(a->scope);
	free(a->signed_headers);
	free(a->signature);
	cbl_strv_release(&a->headers);
	memset(a, 0, sizeof(*a));
}

int server_sigv4_parse_authorization(const char *value, struct server_sigv4_auth *out,
				     cbl_error **err)
{
	struct server_sigv4_auth a = SERVER_SIGV4_AUTH_INIT;
	char *cred = NULL;
	int rc = 0;
	const char *p = value;
	size_t alen = strlen(ALGORITHM);

	while (is_ws(*p))
		p++;
	if (strncmp(p, ALGORITHM, alen) || (p[alen] && !is_ws(p[alen]))) {
		size_t n = strcspn(p, " \t");
		rc = cbl_error_set(err, CBL_EINVAL, "Unsupported AWS 'algorithm': '%.*s'",
				   (int)(n > 64 ? 64 : n), p);
		goto out;
	}
	p += alen;
	while (*p) {
		while (is_ws(*p) || *p == ',')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);
		size_t end = n;
		while (end && is_ws(p[end - 1]))
			end--;
		if (!eq) {
			rc = cbl_error_set(err, CBL_EINVAL,
					   "Authorization header requires 'Credential', 'SignedHeaders' "
					   "and 'Signature' parameters, got '%.*s'",
					   (int)(end > 64 ? 64 : end), p);
			goto out;
		}
		size_t klen = (size_t)(eq - p);
		const char *v = eq + 1;
		size_t vlen = end > klen + 1 ? end - klen - 1 : 0;
		char **slot = NULL;
		if (klen == 10 && !strncmp(p, "Credential", 10))
			slot = &cred;
		else if (klen == 13 && !strncmp(p, "SignedHeaders", 13))
			slot = &a.signed_headers;
		else if (klen == 9 && !strncmp(p, "Signature", 9))
			slot = &a.signature;
		if (slot) {
			if (*slot) {
				rc = cbl_error_set(err, CBL_EINVAL,
						   "Authorization header has parameter '%.*s' twice",
						   (int)klen, p);
				goto out;
			}
			*slot = cbl_xstrndup(v, vlen);
		}
		/* Unknown parameters are ignored, as AWS does. */
		p += n;
	}
	{
		cbl_buf msg = CBL_BUF_INIT;
		if (!cred || !*cred)
			cbl_buf_puts(&msg, "Authorization header requires 'Credential' parameter. ");
		if (!a.signature || !*a.signature)
			cbl_buf_puts(&msg, "Authorization header requires 'Signature' parameter. ");
		if (!a.signed_headers || !*a.signed_headers)
			cbl_buf_puts(&msg, "Authorization header requires 'SignedHeaders' parameter. ");
		if (msg.len) {
			msg.ptr[--msg.len] = '\0';
			rc = cbl_error_set(err, CBL_EINVAL, "%s", msg.ptr);
			cbl_buf_release(&msg);
			goto out;
		}
	}
	{
		/* AKID/date/region/service/aws4_request: exactly 5 elements. */
		char *parts[5] = {0};
		int np = 0;
		bool bad = false;
		for (const char *c = cred;; np++) {
			size_t n = strcspn(c, "/");
			if (np >= 5 || n == 0) {
				bad = true;
				break;
			}
			parts[np] = cbl_xstrndup(c, n);
			if (!c[n])
				break;
			c += n + 1;
		}
		if (bad || np != 4) {
			for (int i = 0; i < 5; i++)
				free(parts[i]);
			rc = cbl_error_set(err, CBL_EINVAL,
					   "Credential must have exactly 5 slash-delimited elements, "
					   "e.g. keyid/date/region/service/term, got '%s'",
					   cred);
			goto out;
		}
		a.access_key_id = parts[0];
		a.date = parts[1];
		a.region = parts[2];
		a.service = parts[3];
		a.terminator = parts[4];
		a.scope = cbl_xasprintf("%s/%s/%s/%s", a.date, a.region, a.service, a.terminator);
	}
	{
		const char *s = a.signed_headers;
		while (*s) {
			size_t n = strcspn(s, ";");
			if (n)
				cbl_strv_push_take(&a.headers, cbl_xstrndup(s, n));
			s += n + (s[n] == ';');
		}
	}
	*out = a;
	memset(&a, 0, sizeof(a));
out:
	free(cred);
	server_sigv4_auth_release(&a);
	return rc;
}

/* ---- verification ------------------------------------------------------ */

static const char *header_get(const struct server_sigv4_request *req, const char *name,
			      int *count)
{
	const char *v = NULL;
	int c = 0;
	for (size_t i = 0; i < req->nheaders; i++) {
		if (!strcasecmp(req->headers[i].name, name)) {
			if (!v)
				v = req->headers[i].value ? req->headers[i].value : "";
			c++;
		}
	}
	if (count)
		*count = c;
	return v;
}

/* YYYYMMDDTHHMMSSZ -> epoch seconds. */
static bool parse_amz_date(const char *s, int64_t *out)
{
	struct tm tm = {0};
	if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)s[i]))
			return false;
	const char *end = strptime(s, "%Y%m%dT%H%M%SZ", &tm);
	if (!end || *end)
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

static void format_amz_date(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y%m%dT%H%M%SZ", &tm);
}

static bool signed_has(const struct server_sigv4_auth *a, const char *name)
{
	for (size_t i = 0; i < a->headers.n; i++)
		if (!strcmp(a->headers.v[i], name))
			return true;
	return false;
}

/* The credential scope against the request: terminator, date, service,
 * region, and Host among the signed headers. */
static int check_scope(const struct server_sigv4_auth *a, const char *amz_date,
		       const struct server_sigv4_opts *opts, cbl_error **err)
{
	if (strcmp(a->terminator, "aws4_request"))
		return cbl_error_set(err, CBL_EINVAL,
				     "Credential should be scoped with a valid terminator: 'aws4_request', "
				     "not '%s'.",
				     a->terminator);
	if (strncmp(a->date, amz_date, 8) || strlen(a->date) != 8)
		return cbl_error_set(err, CBL_EINVAL,
				     "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
				     "of date from HTTP: '%s' != '%.8s', from '%s'.",
				     a->date, amz_date, amz_date);
	if (opts->service && strcmp(a->service, opts->service))
		return cbl_error_set(err, CBL_EINVAL, "Credential should be scoped to correct service: '%s'.",
				     opts->service);
	if (opts->region && strcmp(a->region, opts->region))
		return cbl_error_set(err, CBL_EINVAL,
				     "Credential should be scoped to a valid region, not '%s'. This server "
				     "serves region '%s'.",
				     a->region, opts->region);
	if (!signed_has(a, "host"))
		return cbl_error_set(err, CBL_EINVAL,
				     "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
	return 0;
}

/* Every header the signature claims to cover is in the request (an absent
 * one would be signed as empty and could be added later), and the headers
 * that choose what the request does are covered. */
static int check_signed_headers(const struct server_sigv4_request *req,
				const struct server_sigv4_auth *a,
				const struct server_sigv4_opts *opts, cbl_error **err)
{
	for (size_t i = 0; i < a->headers.n; i++)
		if (!header_get(req, a->headers.v[i], NULL))
			return cbl_error_set(err, CBL_EINVAL,
					     "Header '%s' is listed in SignedHeaders but is not in the "
					     "request.",
					     a->headers.v[i]);
	for (const char *const *h = opts->must_sign; h && *h; h++)
		if (header_get(req, *h, NULL) && !signed_has(a, *h))
			return cbl_error_set(err, CBL_EINVAL,
					     "'%s' must be a 'SignedHeader' in the AWS Authorization.",
					     *h);
	return 0;
}

/* X-Amz-Date (t, as seconds) within opts->max_skew of opts->now. */
static int check_skew(int64_t t, const char *amz_date, const struct server_sigv4_opts *opts,
		      cbl_error **err)
{
	char nowbuf[32], limit[32];
	if (opts->max_skew <= 0)
		return 0;
	if (t < opts->now - opts->max_skew) {
		format_amz_date(opts->now, nowbuf);
		format_amz_date(opts->now - opts->max_skew, limit);
		return cbl_error_set(err, CBL_EINVAL,
				     "Signature expired: %s is now earlier than %s (%s - %lld min.)",
				     amz_date, limit, nowbuf, (long long)(opts->max_skew / 60));
	}
	if (t > opts->now + opts->max_skew) {
		format_amz_date(opts->now, nowbuf);
		format_amz_date(opts->now + opts->max_skew, limit);
		return cbl_error_set(err, CBL_EINVAL,
				     "Signature not yet current: %s is still later than %s (%s + %lld "
				     "min.)",
				     amz_date, limit, nowbuf, (long long)(opts->max_skew / 60));
	}
	return 0;
}

/* The body against x-amz-content-sha256, then the signature itself. */
static int check_signature(const struct server_sigv4_request *req, const struct server_sigv4_auth *a,
			   const char *amz_date, const char *secret,
			   const struct server_sigv4_opts *opts, cbl_error **err)
{
	char body_hash[65];
	server_sigv4_sha256_hex(req->body, req->body_len, body_hash);
	const char *claimed = header_get(req, "x-amz-content-sha256", NULL);
	if (claimed && strcmp(claimed, body_hash))
		/* Also refuses UNSIGNED-PAYLOAD: the body must be covered. */
		return cbl_error_set(err, CBL_EINVAL,
				     "The provided 'x-amz-content-sha256' header does not match what was "
				     "computed.");

	int rc = 0;
	char *creq = server_sigv4_canonical_request(req, a->signed_headers, body_hash, opts->normalize);
	char *sts = server_sigv4_string_to_sign(amz_date, a->scope, creq);
	char want[65];
	server_sigv4_signature(secret, a->date, a->region, a->service, sts, want);
	if (strlen(a->signature) != 64 || CRYPTO_memcmp(want, a->signature, 64) != 0)
		rc = cbl_error_set(err, CBL_EINVAL,
				   "The request signature we calculated does not match the signature you "
				   "provided. Check your AWS Secret Access Key and signing method. Consult "
				   "the service documentation for details.\n\nThe Canonical String for this "
				   "request should have been\n'%s'\n\nThe String-to-Sign should have been\n'%s'\n",
				   creq, sts);
	free(creq);
	free(sts);
	return rc;
}

int server_sigv4_verify(const struct server_sigv4_request *req,
			const struct server_sigv4_opts *opts, server_sigv4_secret_fn lookup,
			void *payload, enum server_sigv4_status *out_status, char **out_akid,
			cbl_error **err)
{
	struct server_sigv4_auth a = SERVER_SIGV4_AUTH_INIT;
	enum server_sigv4_status st = SERVER_SIGV4_INCOMPLETE;
	int rc = CBL_EINVAL, n = 0;
	const char *secret;
	int64_t t = 0;

	if (out_akid)
		*out_akid = NULL;
	const char *authz = header_get(req, "authorization", &n);
	if (!authz) {
		st = SERVER_SIGV4_MISSING;
		cbl_error_set(err, CBL_EINVAL, "Missing Authentication Token");
		goto out;
	}
	if (n > 1) {
		cbl_error_set(err, CBL_EINVAL, "Request has more than one Authorization header");
		goto out;
	}
	if (server_sigv4_parse_authorization(authz, &a, err) < 0)
		goto out;
	if (out_akid)
		*out_akid = cbl_xstrdup(a.access_key_id);

	const char *amz_date = header_get(req, "x-amz-date", NULL);
	if (!amz_date) {
		cbl_error_set(err, CBL_EINVAL,
			      "Authorization header requires existence of either a 'X-Amz-Date' or "
			      "a 'Date' header. Authorization=%s",
			      authz);
		goto out;
	}
	if (!parse_amz_date(amz_date, &t)) {
		cbl_error_set(err, CBL_EINVAL,
			      "Date must be in ISO-8601 'basic format'. Got '%s'. See "
			      "http://en.wikipedia.org/wiki/ISO_8601",
			      amz_date);
		goto out;
	}

	secret = lookup ? lookup(a.access_key_id, payload) : NULL;
	if (!secret) {
		st = SERVER_SIGV4_UNKNOWN_KEY;
		cbl_error_set(err, CBL_EINVAL, "The security token included in the request is invalid.");
		goto out;
	}

	st = SERVER_SIGV4_BAD_SIGNATURE;
	if (check_scope(&a, amz_date, opts, err) < 0 || check_skew(t, amz_date, opts, err) < 0 ||
	    check_signed_headers(req, &a, opts, err) < 0 ||
	    (!opts->head_only && check_signature(req, &a, amz_date, secret, opts, err) < 0))
		goto out;
	st = SERVER_SIGV4_OK;
	rc = 0;
out:
	if (out_status)
		*out_status = st;
	server_sigv4_auth_release(&a);
	return rc;
}
