/* Unit tests for server/sigv4.c: every case of AWS's official SigV4 test
 * suite ($CBL_SHARED/reference/sigv4-test-suite, CBL_SHARED defaulting to
 * ../shared from the project root), requests captured from the real clients
 * (../shared/reference/api.md section 6), and rejections. */
#include "server/sigv4.h"
#include "tests/unit/tap.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

/* A request parsed from the suite's raw text. */
struct raw_req {
	char *method, *path, *query, *body;
	size_t body_len;
	struct server_sigv4_header h[32];
	size_t nh;
	char *storage[64];
	size_t nstorage;
};

static char *keep(struct raw_req *r, char *s)
{
	if (r->nstorage < 64)
		r->storage[r->nstorage++] = s;
	return s;
}

static void raw_release(struct raw_req *r)
{
	for (size_t i = 0; i < r->nstorage; i++)
		free(r->storage[i]);
	memset(r, 0, sizeof(*r));
}

/* "METHOD target HTTP/1.1\nName:value\n  continuation\n...\n\nbody" */
static int raw_parse(const char *text, struct raw_req *r)
{
	memset(r, 0, sizeof(*r));
	const char *eol = strchr(text, '\n');
	if (!eol)
		return -1;
	const char *sp1 = memchr(text, ' ', (size_t)(eol - text));
	const char *sp2 = eol;
	while (sp2 > text && *sp2 != ' ')
		sp2--;
	if (!sp1 || sp2 <= sp1)
		return -1;
	r->method = keep(r, cbl_xstrndup(text, (size_t)(sp1 - text)));
	char *target = cbl_xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	char *q = strchr(target, '?');
	r->query = keep(r, cbl_xstrdup(q ? q + 1 : ""));
	if (q)
		*q = '\0';
	r->path = keep(r, target);
	const char *p = eol + 1;
	while (*p && *p != '\n') {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if ((p[0] == ' ' || p[0] == '\t') && r->nh) {
			/* folded continuation: joined, the canonical form squeezes it */
			struct server_sigv4_header *last = &r->h[r->nh - 1];
			char *v = cbl_xasprintf("%s\n%.*s", last->value, (int)n, p);
			last->value = keep(r, v);
		} else {
			const char *colon = memchr(p, ':', n);
			if (!colon || r->nh >= 32)
				return -1;
			r->h[r->nh].name = keep(r, cbl_xstrndup(p, (size_t)(colon - p)));
			r->h[r->nh].value =
				keep(r, cbl_xstrndup(colon + 1, n - (size_t)(colon - p) - 1));
			r->nh++;
		}
		p += n + (e ? 1 : 0);
	}
	if (*p == '\n')
		p++;
	r->body = keep(r, cbl_xstrdup(p));
	r->body_len = strlen(p);
	return 0;
}

static struct server_sigv4_request as_req(const struct raw_req *r)
{
	struct server_sigv4_request q = {r->method, r->path, r->query, r->h, r->nh, r->body,
					 r->body_len};
	return q;
}

static const char *header_of(const struct raw_req *r, const char *name)
{
	for (size_t i = 0; i < r->nh; i++)
		if (!strcasecmp(r->h[i].name, name))
			return r->h[i].value;
	return NULL;
}

struct keyset {
	const char *akid, *secret;
};

static const char *lookup(const char *akid, void *payload)
{
	const struct keyset *k = payload;
	return !strcmp(akid, k->akid) ? k->secret : NULL;
}

static char *slurp(const char *dir, const char *name)
{
	char *path = cbl_xasprintf("%s/%s", dir, name), *data = NULL;
	size_t len;
	cbl_error *err = NULL;
	if (cbl_read_file(path, 0, &data, &len, &err) < 0) {
		cbl_error_free(err);
		data = NULL;
	}
	free(path);
	return data;
}

static int64_t iso_to_epoch(const char *s)
{
	struct tm tm = {0};
	if (!strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static int verify(const struct raw_req *r, const char *service, const char *region, int64_t now,
		  bool normalize, const struct keyset *ks, enum server_sigv4_status *st,
		  char **msg)
{
	struct server_sigv4_request q = as_req(r);
	struct server_sigv4_opts o = SERVER_SIGV4_OPTS_INIT;
	cbl_error *err = NULL;
	o.service = service;
	o.region = region;
	o.now = now;
	o.normalize = normalize;
	int rc = server_sigv4_verify(&q, &o, lookup, (void *)ks, st, NULL, &err);
	if (msg)
		*msg = err ? cbl_xstrdup(err->msg) : NULL;
	cbl_error_free(err);
	return rc;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one suite case: canonical request, string to sign, signature and a
 * full verification, each against the suite's expected files. */
static void run_case(const char *suite, const char *name)
{
	char *dir = cbl_xasprintf("%s/%s", suite, name);
	char *ctx_text = slurp(dir, "context.json");
	char *signed_req = slurp(dir, "header-signed-request.txt");
	char *want_creq = slurp(dir, "header-canonical-request.txt");
	char *want_sts = slurp(dir, "header-string-to-sign.txt");
	char *want_sig = slurp(dir, "header-signature.txt");
	json_t *ctx = ctx_text ? json_loads(ctx_text, 0, NULL) : NULL;
	struct raw_req r;
	struct server_sigv4_auth a = SERVER_SIGV4_AUTH_INIT;
	cbl_error *err = NULL;

	if (!ctx || !signed_req || !want_creq || !want_sts || !want_sig ||
	    raw_parse(signed_req, &r) < 0) {
		ok(0, "%s: suite files readable and parseable", name);
		goto out;
	}
	bool normalize = json_is_true(json_object_get(ctx, "normalize"));
	const char *secret =
		json_string_value(json_object_get(json_object_get(ctx, "credentials"),
						  "secret_access_key"));
	const char *akid = json_string_value(
		json_object_get(json_object_get(ctx, "credentials"), "access_key_id"));
	int64_t now = iso_to_epoch(json_string_value(json_object_get(ctx, "timestamp")));

	const char *authz = header_of(&r, "authorization");
	if (!authz || server_sigv4_parse_authorization(authz, &a, &err) < 0) {
		ok(0, "%s: Authorization parses: %s", name, err ? err->msg : "missing");
		raw_release(&r);
		goto out;
	}
	char body_hash[65];
	server_sigv4_sha256_hex(r.body, r.body_len, body_hash);
	struct server_sigv4_request q = as_req(&r);
	char *creq = server_sigv4_canonical_request(&q, a.signed_headers, body_hash, normalize);
	is_str(creq, want_creq, "%s: canonical request", name);
	char *sts = server_sigv4_string_to_sign(header_of(&r, "x-amz-date"), a.scope, creq);
	is_str(sts, want_sts, "%s: string to sign", name);
	char sig[65];
	server_sigv4_signature(secret, a.date, a.region, a.service, sts, sig);
	is_str(sig, want_sig, "%s: signature", name);

	struct keyset ks = {akid, secret};
	enum server_sigv4_status st = SERVER_SIGV4_INCOMPLETE;
	char *msg = NULL;
	int rc = verify(&r, json_string_value(json_object_get(ctx, "service")),
			json_string_value(json_object_get(ctx, "region")), now, normalize, &ks, &st,
			&msg);
	ok(rc == 0 && st == SERVER_SIGV4_OK, "%s: verifies%s%s", name, msg ? ": " : "",
	   msg ? msg : "");
	free(msg);
	free(creq);
	free(sts);
	raw_release(&r);
out:
	cbl_error_free(err);
	server_sigv4_auth_release(&a);
	json_decref(ctx);
	free(ctx_text);
	free(signed_req);
	free(want_creq);
	free(want_sts);
	free(want_sig);
	free(dir);
}

static void test_suite(void)
{
	const char *shared = tap_shared();
	if (!shared) {
		skip("SigV4 test suite: no ../shared here (CBL_SHARED)");
		return;
	}
	char *suite = cbl_xasprintf("%s/reference/sigv4-test-suite", shared);
	DIR *d = opendir(suite);
	if (!d) {
		ok(0, "SigV4 test suite at %s", suite);
		free(suite);
		return;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *ctx = cbl_xasprintf("%s/%s/context.json", suite, de->d_name);
		FILE *f = fopen(ctx, "r");
		free(ctx);
		if (!f)
			continue;
		fclose(f);
		CBL_GROW(names, n + 1, cap);
		names[n++] = cbl_xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_name);
	ok(n >= 38, "the suite has all its cases (%zu)", n);
	for (size_t i = 0; i < n; i++) {
		run_case(suite, names[i]);
		free(names[i]);
	}
	free(names);
	free(suite);
}

/* Loads one suite case for the negative tests below (a failure when
 * ../shared is here without it). */
static bool load_case(const char *name, struct raw_req *r)
{
	char *dir = cbl_xasprintf("%s/reference/sigv4-test-suite/%s", tap_shared(), name);
	char *text = slurp(dir, "header-signed-request.txt");
	free(dir);
	bool good = text && raw_parse(text, r) == 0;
	free(text);
	if (!good)
		ok(0, "SigV4 suite case %s loads", name);
	return good;
}

static const int64_t T0 = 1440938160; /* 2015-08-30T12:36:00Z */

static void test_rejections(void)
{
	struct keyset ks = {AKID, SECRET};
	struct raw_req r;
	enum server_sigv4_status st;
	char *msg = NULL;

	if (!tap_shared()) {
		skip("SigV4 rejections: no ../shared here (CBL_SHARED)");
		return;
	}
	if (!load_case("post-x-www-form-urlencoded-parameters", &r))
		return;
	is_int(verify(&r, "service", "us-east-1", T0, true, &ks, &st, NULL), 0, "baseline verifies");

	is_int(verify(&r, "service", "us-east-1", T0 + 16 * 60, true, &ks, &st, &msg), CBL_EINVAL,
	       "16 minutes later: rejected");
	is_int(st, SERVER_SIGV4_BAD_SIGNATURE, "... as InvalidSignatureException");
	ok(msg && strstr(msg, "Signature expired: 20150830T123600Z is now earlier than"),
	   "... 'Signature expired' (%s)", msg ? msg : "");
	free(msg);
	is_int(verify(&r, "service", "us-east-1", T0 - 16 * 60, true, &ks, &st, &msg), CBL_EINVAL,
	       "16 minutes earlier: rejected");
	ok(msg && strstr(msg, "Signature not yet current"), "... 'not yet current'");
	free(msg);
	is_int(verify(&r, "service", "us-east-1", T0 + 14 * 60, true, &ks, &st, NULL), 0,
	       "14 minutes of skew: accepted");

	struct keyset wrong = {AKID, "not-the-secret"};
	is_int(verify(&r, "service", "us-east-1", T0, true, &wrong, &st, &msg), CBL_EINVAL,
	       "wrong secret: rejected");
	is_int(st, SERVER_SIGV4_BAD_SIGNATURE, "... as InvalidSignatureException");
	ok(msg && strstr(msg, "The Canonical String for this request should have been"),
	   "... the message shows the canonical request");
	free(msg);
	is_str(server_sigv4_status_type(st), "InvalidSignatureException", "type name");

	struct keyset other = {"AKIDOTHER", SECRET};
	is_int(verify(&r, "service", "us-east-1", T0, true, &other, &st, &msg), CBL_EINVAL,
	       "unknown key: rejected");
	is_int(st, SERVER_SIGV4_UNKNOWN_KEY, "... as UnrecognizedClientException");
	is_str(msg, "The security token included in the request is invalid.", "... AWS's text");
	free(msg);
	is_str(server_sigv4_status_type(st), "UnrecognizedClientException", "type name");

	is_int(verify(&r, "codebuild", "us-east-1", T0, true, &ks, &st, &msg), CBL_EINVAL,
	       "scope for another service: rejected");
	is_str(msg, "Credential should be scoped to correct service: 'codebuild'.", "... message");
	free(msg);
	is_int(verify(&r, "service", "eu-west-1", T0, true, &ks, &st, NULL), CBL_EINVAL,
	       "scope for another region: rejected");
	is_int(verify(&r, NULL, NULL, T0, true, &ks, &st, NULL), 0, "any service/region: accepted");

	/* the body is covered twice: by x-amz-content-sha256 and the signature */
	r.body[0] = 'X';
	is_int(verify(&r, "service", "us-east-1", T0, true, &ks, &st, &msg), CBL_EINVAL,
	       "tampered body: rejected");
	ok(msg && strstr(msg, "x-amz-content-sha256"), "... by the content hash check");
	free(msg);
	r.body[0] = 'P';

	/* a signed header changed */
	for (size_t i = 0; i < r.nh; i++)
		if (!strcasecmp(r.h[i].name, "content-type"))
			r.h[i].value = "application/json";
	is_int(verify(&r, "service", "us-east-1", T0, true, &ks, &st, NULL), CBL_EINVAL,
	       "tampered signed header: rejected");
	is_int(st, SERVER_SIGV4_BAD_SIGNATURE, "... as InvalidSignatureException");
	raw_release(&r);

	/* an unsigned header may change; the security token is not signed here */
	if (load_case("post-sts-header-after", &r)) {
		for (size_t i = 0; i < r.nh; i++)
			if (!strcasecmp(r.h[i].name, "x-amz-security-token"))
				r.h[i].value = "something-else";
		is_int(verify(&r, "service", "us-east-1", T0, true, &ks, &st, NULL), 0,
		       "unsigned header changed: still accepted");
		raw_release(&r);
	}

	/* normalization matters for the *-normalized cases */
	if (load_case("get-relative-relative-normalized", &r)) {
		is_int(verify(&r, "service", "us-east-1", T0, false, &ks, &st, NULL), CBL_EINVAL,
		       "normalized case checked without normalization: rejected");
		raw_release(&r);
	}

	/* header-level problems, on get-vanilla */
	if (!load_case("get-vanilla", &r))
		return;
	struct server_sigv4_header saved[32];
	size_t nsaved = r.nh;
	memcpy(saved, r.h, sizeof(saved));
	struct {
		const char *authz;
		enum server_sigv4_status st;
		const char *needle;
	} bad[] = {
		{"AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=00", SERVER_SIGV4_INCOMPLETE,
		 "requires 'Credential' parameter"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "Signature=00",
		 SERVER_SIGV4_INCOMPLETE, "requires 'SignedHeaders' parameter"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=host",
		 SERVER_SIGV4_INCOMPLETE, "requires 'Signature' parameter"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, "
		 "SignedHeaders=host, Signature=00",
		 SERVER_SIGV4_INCOMPLETE, "exactly 5 slash-delimited"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x, "
		 "SignedHeaders=host, Signature=00",
		 SERVER_SIGV4_INCOMPLETE, "exactly 5 slash-delimited"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE//us-east-1/service/aws4_request, "
		 "SignedHeaders=host, Signature=00",
		 SERVER_SIGV4_INCOMPLETE, "exactly 5 slash-delimited"},
		{"AWS4-HMAC-SHA1 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=host, Signature=00",
		 SERVER_SIGV4_INCOMPLETE, "Unsupported AWS 'algorithm'"},
		{"Basic dXNlcjpwYXNz", SERVER_SIGV4_INCOMPLETE, "Unsupported AWS 'algorithm'"},
		{"", SERVER_SIGV4_INCOMPLETE, "Unsupported"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=x-amz-date, Signature=00",
		 SERVER_SIGV4_BAD_SIGNATURE, "'Host' or ':authority' must be a 'SignedHeader'"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/service/aws4_request, "
		 "SignedHeaders=host;x-amz-date, Signature=00",
		 SERVER_SIGV4_BAD_SIGNATURE, "Date in Credential scope does not match"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, "
		 "SignedHeaders=host;x-amz-date, Signature=00",
		 SERVER_SIGV4_BAD_SIGNATURE, "valid terminator"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=host;x-amz-date, Signature=5fa00fa3",
		 SERVER_SIGV4_BAD_SIGNATURE, "does not match the signature you provided"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=host;x-amz-date, "
		 "Signature=5FA00FA31553B73EBF1942676E86291E8372FF2A2260956D9B8AAE1D763FBF31",
		 SERVER_SIGV4_BAD_SIGNATURE, "does not match the signature you provided"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		for (size_t j = 0; j < r.nh; j++)
			if (!strcasecmp(r.h[j].name, "authorization"))
				r.h[j].value = bad[i].authz;
		int rc = verify(&r, "service", "us-east-1", T0, true, &ks, &st, &msg);
		bool good = rc == CBL_EINVAL && st == bad[i].st && msg && strstr(msg, bad[i].needle);
		ok(good, "bad Authorization #%zu: %s, '%s'", i, server_sigv4_status_type(bad[i].st),
		   bad[i].needle);
		if (!good)
			printf("#   got: %s\n", msg ? msg : "(no message)");
		free(msg);
	}
	/* the unmodified signature, written with a different parameter order */
	for (size_t j = 0; j < r.nh; j++)
		if (!strcasecmp(r.h[j].name, "authorization"))
			r.h[j].value = "AWS4-HMAC-SHA256 "
				       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31,"
				       "SignedHeaders=host;x-amz-date,"
				       "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
	is_int(verify(&r, "service", "us-east-1", T0, true, &ks, &st, NULL), 0,
	       "parameters in another order, no spaces: accepted");

	/* no Authorization at all */
	r.nh = 0;
	for (size_t j = 0; j < nsaved; j++)
		if (strcasecmp(saved[j].name, "authorization"))
			r.h[r.nh++] = saved[j];
	is_int(verify(&r, "service", "us-east-1", T0, true, &ks, &st, &msg), CBL_EINVAL,
	       "no Authorization: rejected");
	is_int(st, SERVER_SIGV4_MISSING, "... as MissingAuthenticationTokenException");
	is_str(msg, "Missing Authentication Token", "... AWS's text");
	free(msg);

	/* two Authorization headers */
	memcpy(r.h, saved, sizeof(saved));
	r.nh = nsaved;
	r.h[r.nh++] = saved[nsaved - 1];
	is_int(verify(&r, "service", "us-east-1", T0, true, &ks, &st, NULL), CBL_EINVAL,
	       "two Authorization headers: rejected");

	/* no X-Amz-Date, then a malformed one */
	r.nh = 0;
	for (size_t j = 0; j < nsaved; j++)
		if (strcasecmp(saved[j].name, "x-amz-date"))
			r.h[r.nh++] = saved[j];
	is_int(verify(&r, "service", "us-east-1", T0, true, &ks, &st, &msg), CBL_EINVAL,
	       "no X-Amz-Date: rejected");
	ok(st == SERVER_SIGV4_INCOMPLETE && msg && strstr(msg, "'X-Amz-Date'"), "... incomplete");
	free(msg);
	memcpy(r.h, saved, sizeof(saved));
	r.nh = nsaved;
	for (size_t j = 0; j < r.nh; j++)
		if (!strcasecmp(r.h[j].name, "x-amz-date"))
			r.h[j].value = "2015-08-30T12:36:00Z";
	is_int(verify(&r, "service", "us-east-1", T0, true, &ks, &st, &msg), CBL_EINVAL,
	       "extended ISO date: rejected");
	ok(st == SERVER_SIGV4_INCOMPLETE && msg && strstr(msg, "basic format"), "... basic format");
	free(msg);
	raw_release(&r);
}

/* Requests captured from the real clients (api.md section 3 and 6), secret
 * "test": the CLI signs 4 headers, the JS SDK 9 with x-amz-content-sha256. */
#define SIG_ZEROES "0000000000000000000000000000000000000000000000000000000000000000"

static void test_captured(void)
{
	struct keyset ks = {"test", "test"};
	enum server_sigv4_status st;
	char *msg = NULL;
	int64_t now = 1795515277; /* 2026-11-24T10:14:37Z */

	const char *cli_body = "{\"ids\": [\"demo:1\"]}";
	struct server_sigv4_header cli_h[] = {
		{"Host", "127.0.0.1:18787"},
		{"Accept-Encoding", "identity"},
		{"X-Amz-Target", "CodeBuild_20161006.BatchGetBuilds"},
		{"Content-Type", "application/x-amz-json-1.1"},
		{"User-Agent", "aws-cli/2.9.19 Python/3.11.2 Linux/6.18.44-fc-v657 "
			       "source/x86_64.debian.12 prompt/off command/codebuild.batch-get-builds"},
		{"X-Amz-Date", "20261124T101437Z"},
		{"Authorization",
		 "AWS4-HMAC-SHA256 Credential=test/20261124/us-east-1/codebuild/aws4_request, "
		 "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
		 "Signature=0378556f79dd005a0e26d1cd0b8dd536e8618907d0f0583606590e2c51a3ccc6"},
		{"Content-Length", "19"},
	};
	struct server_sigv4_request cli = {"POST", "/", "", cli_h, 8, cli_body, strlen(cli_body)};
	char h[65];
	char *creq = server_sigv4_canonical_request(
		&cli, "content-type;host;x-amz-date;x-amz-target",
		"f617bedea6bac44a40bc19698adc95488bf61adcbe4321a6ad39a93f7855f1fa", true);
	server_sigv4_sha256_hex(creq, strlen(creq), h);
	is_str(h, "2afd00ff615e2229786b3d3d57c4b0837dc871bff5b8276a95b5ea6d230e5dde",
	       "aws-cli BatchGetBuilds: canonical request hash as in api.md");
	free(creq);
	struct server_sigv4_opts o = SERVER_SIGV4_OPTS_INIT;
	o.service = "codebuild";
	o.region = "us-east-1";
	o.now = now;
	char *akid = NULL;
	cbl_error *err = NULL;
	int rc = server_sigv4_verify(&cli, &o, lookup, &ks, &st, &akid, &err);
	ok(rc == 0, "aws-cli BatchGetBuilds verifies%s", err ? err->msg : "");
	is_str(akid, "test", "... access key reported");
	free(akid);
	cbl_error_clear(&err);
	o.service = "logs";
	ok(server_sigv4_verify(&cli, &o, lookup, &ks, &st, NULL, &err) < 0,
	   "... but not as a Logs request");
	cbl_error_clear(&err);

	struct server_sigv4_header js_h[] = {
		{"content-type", "application/x-amz-json-1.1"},
		{"x-amz-target", "CodeBuild_20161006.ListProjects"},
		{"content-length", "2"},
		{"x-amz-user-agent", "aws-sdk-js/3.1141.0"},
		{"user-agent", "aws-sdk-js/3.1141.0 ua/2.1 os/linux#6.18.44-fc-v657 lang/js "
			       "md/nodejs#20.20.2 api/codebuild#3.1141.0 m/N,E,e"},
		{"host", "127.0.0.1:18787"},
		{"amz-sdk-invocation-id", "7e7a101b-245e-4335-b56d-b3858bc3d0d3"},
		{"amz-sdk-request", "attempt=1; max=3"},
		{"x-amz-date", "20261124T101437Z"},
		{"x-amz-content-sha256",
		 "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
		{"authorization",
		 "AWS4-HMAC-SHA256 Credential=test/20261124/us-east-1/codebuild/aws4_request, "
		 "SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;"
		 "host;x-amz-content-sha256;x-amz-date;x-amz-target;x-amz-user-agent, "
		 "Signature=0abcf80bbbdffa2856b354af077580695fcb115049041cb53563736c7896c6fa"},
		{"Connection", "keep-alive"},
	};
	struct server_sigv4_request js = {"POST", "/", NULL, js_h, 12, "{}", 2};
	o.service = "codebuild";
	rc = server_sigv4_verify(&js, &o, lookup, &ks, &st, NULL, &err);
	ok(rc == 0, "JS SDK ListProjects verifies%s%s", err ? ": " : "", err ? err->msg : "");
	cbl_error_clear(&err);
	js.body = "{ }";
	js.body_len = 3;
	rc = server_sigv4_verify(&js, &o, lookup, &ks, &st, NULL, &err);
	ok(rc < 0 && strstr(err->msg, "x-amz-content-sha256"), "... a swapped body is refused");
	cbl_error_clear(&err);
	(void)msg;

	/* must_sign: the CLI request signs x-amz-target and content-type */
	static const char *const must[] = {"x-amz-target", "content-type", NULL};
	o.must_sign = must;
	rc = server_sigv4_verify(&cli, &o, lookup, &ks, &st, NULL, &err);
	ok(rc == 0, "must_sign: the CLI's request covers X-Amz-Target and Content-Type");
	cbl_error_clear(&err);
	/* a signature over host;x-amz-date only, with a target carried beside it */
	struct server_sigv4_header bare_h[] = {
		{"Host", "127.0.0.1:18787"},
		{"X-Amz-Target", "CodeBuild_20161006.BatchDeleteBuilds"},
		{"X-Amz-Date", "20261124T101437Z"},
		{"Authorization",
		 "AWS4-HMAC-SHA256 Credential=test/20261124/us-east-1/codebuild/aws4_request, "
		 "SignedHeaders=host;x-amz-date, Signature=" SIG_ZEROES},
	};
	struct server_sigv4_request bare = {"POST", "/", "", bare_h, 4, cli_body, strlen(cli_body)};
	rc = server_sigv4_verify(&bare, &o, lookup, &ks, &st, NULL, &err);
	ok(rc < 0 && st == SERVER_SIGV4_BAD_SIGNATURE && err &&
		   strstr(err->msg, "'x-amz-target' must be a 'SignedHeader'"),
	   "an unsigned X-Amz-Target is refused before the signature (%s)", err ? err->msg : "");
	cbl_error_clear(&err);
	o.must_sign = NULL;
	/* a header named in SignedHeaders but absent */
	struct server_sigv4_header absent_h[] = {
		{"Host", "127.0.0.1:18787"},
		{"X-Amz-Date", "20261124T101437Z"},
		{"Authorization",
		 "AWS4-HMAC-SHA256 Credential=test/20261124/us-east-1/codebuild/aws4_request, "
		 "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" SIG_ZEROES},
	};
	struct server_sigv4_request absent = {"POST", "/", "", absent_h, 3, "{}", 2};
	rc = server_sigv4_verify(&absent, &o, lookup, &ks, &st, NULL, &err);
	ok(rc < 0 && err && strstr(err->msg, "'x-amz-target' is listed in SignedHeaders but is not"),
	   "a signed header the request lacks is refused (%s)", err ? err->msg : "");
	cbl_error_clear(&err);
	/* head_only: everything but the signature, before the body is read */
	o.head_only = true;
	bare.nheaders = 4;
	bare_h[1] = (struct server_sigv4_header){"X-Other", "x"};
	rc = server_sigv4_verify(&bare, &o, lookup, &ks, &st, NULL, &err);
	ok(rc == 0, "head_only: a wrong signature passes the head check%s", err ? err->msg : "");
	cbl_error_clear(&err);
	struct keyset nobody = {"nobody", "x"};
	rc = server_sigv4_verify(&bare, &o, lookup, &nobody, &st, NULL, &err);
	ok(rc < 0 && st == SERVER_SIGV4_UNKNOWN_KEY, "head_only: an unknown key is refused");
	cbl_error_clear(&err);
}

static void test_canonical_details(void)
{
	struct server_sigv4_header hs[] = {
		{"Host", "h"},
		{"X-Multi", "  a  \t b  "},
		{"x-multi", "c"},
	};
	struct server_sigv4_request q = {"POST", "/a b/%2F/../c//", "b=2&a=%41&a=1&c&d=x+y", hs, 3,
					 NULL, 0};
	char *c = server_sigv4_canonical_request(&q, "host;x-multi;x-absent", "HASH", true);
	is_str(c,
	       "POST\n/a%20b/c/\na=1&a=A&b=2&c=&d=x%2By\nhost:h\nx-multi:a b,c\nx-absent:\n\n"
	       "host;x-multi;x-absent\nHASH",
	       "normalization, double encoding, query sort/decode, multi-value and absent headers");
	free(c);
	c = server_sigv4_canonical_request(&q, "host", "HASH", false);
	ok(!strncmp(c, "POST\n/a%20b/%252F/../c//\n", 25),
	   "unnormalized path keeps dots and re-encodes '%%'");
	free(c);
	struct server_sigv4_request empty = {"POST", "", NULL, hs, 1, NULL, 0};
	c = server_sigv4_canonical_request(&empty, "host", "HASH", true);
	is_str(c, "POST\n/\n\nhost:h\n\nhost\nHASH", "empty path is '/'");
	free(c);
	char hx[65];
	server_sigv4_sha256_hex("", 0, hx);
	is_str(hx, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	       "sha256 of nothing");
}

int main(void)
{
	test_suite();
	test_rejections();
	test_captured();
	test_canonical_details();
	return tap_done();
}
