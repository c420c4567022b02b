/* images/registry.c - a client for the OCI distribution / Docker Registry
 * HTTP API v2 on libcurl: manifests and blobs of one repository.
 *
 * Auth: a request answered 401 carries a WWW-Authenticate challenge.
 * "Bearer realm=...,service=...,scope=..." means: GET realm?service&scope
 * (with basic credentials when we have some, anonymously otherwise), take
 * "token" (or "access_token") from the JSON answer and retry with
 * "Authorization: Bearer".  "Basic" means: retry with the credentials.
 * Credentials come from the options, else docker's config.json "auths".
 * curl never forwards either to another host on a redirect (blob GETs are
 * often redirected to a storage service with its own signed URL).
 *
 * Transport policy (docker's): registries on 127.0.0.0/8, ::1, localhost
 * and those given with --insecure-registry are tried with TLS first, without
 * verification, then in plain HTTP; every other registry, and every token
 * realm not on such a host, needs verified TLS.
 *
 * Blobs: downloaded a few at a time (curl multi), each hashed while written
 * to blobs/sha256/<hex>.part (images_blob_writer) and renamed only when its
 * digest matches.  An interrupted transfer is retried with "Range:
 * bytes=<have>-" (options.retries times); if it still fails, the .part stays
 * and the next pull continues from it.  A server that ignores Range (200
 * instead of 206) gets the blob from the start again.
 */
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/curl.h"
#include "util/fs.h"
#include "util/json.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/banned.h"

#define SMALL_MAX (8u << 20)
#define USER_AGENT "codebuild-local/0.1"
#define PROGRESS_STEP (1u << 20)

struct images_registry {
	char *domain;    /* as in the reference */
	char *endpoint;  /* API host[:port] */
	char *repo;      /* repository path */
	char *scheme;    /* "https" or "http"; NULL until probed */
	bool insecure;
	char *token;     /* bearer token */
	bool use_basic;
	char *user, *pass;
	const images_resolve_opts *o;
	const char *const *insecure_list;
	CURL *h;         /* small requests: manifests, tokens */
};

/* ---- WWW-Authenticate ------------------------------------------------- */

void images_challenge_release(images_challenge *c)
{
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	memset(c, 0, sizeof(*c));
}

int images_challenge_parse(const char *h, images_challenge *out, cbl_error **err)
{
	memset(out, 0, sizeof(*out));
	if (!h)
		return cbl_error_set(err, CBL_EINVAL, "no WWW-Authenticate challenge");
	while (isspace((unsigned char)*h))
		h++;
	const char *s = h;
	while (*h && !isspace((unsigned char)*h) && *h != ',')
		h++;
	if (h == s)
		return cbl_error_set(err, CBL_EINVAL, "empty WWW-Authenticate challenge");
	out->scheme = cbl_xstrndup(s, (size_t)(h - s));
	for (char *p = out->scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	cbl_buf key = CBL_BUF_INIT, val = CBL_BUF_INIT;
	while (*h) {
		while (*h == ',' || isspace((unsigned char)*h))
			h++;
		if (!*h)
			break;
		cbl_buf_reset(&key);
		cbl_buf_reset(&val);
		while (*h && *h != '=' && *h != ',' && !isspace((unsigned char)*h))
			cbl_buf_putc(&key, (char)tolower((unsigned char)*h++));
		while (isspace((unsigned char)*h))
			h++;
		if (*h != '=')
			continue; /* a token68 or junk: ignore */
		h++;
		while (isspace((unsigned char)*h))
			h++;
		if (*h == '"') {
			h++;
			while (*h && *h != '"') {
				if (*h == '\\' && h[1])
					h++;
				cbl_buf_putc(&val, *h++);
			}
			if (*h == '"')
				h++;
		} else {
			while (*h && *h != ',' && !isspace((unsigned char)*h))
				cbl_buf_putc(&val, *h++);
		}
		char **slot = !strcmp(cbl_buf_cstr(&key), "realm")     ? &out->realm
			      : !strcmp(cbl_buf_cstr(&key), "service") ? &out->service
			      : !strcmp(cbl_buf_cstr(&key), "scope")   ? &out->scope
								       : NULL;
		if (slot && !*slot)
			*slot = cbl_xstrdup(cbl_buf_cstr(&val));
	}
	cbl_buf_release(&key);
	cbl_buf_release(&val);
	return 0;
}

/* ---- credentials from docker's config.json ------------------------------ */

static char *url_host(const char *u)
{
	const char *p = strstr(u, "://");
	p = p ? p + 3 : u;
	size_t n = strcspn(p, "/");
	char *h = cbl_xstrndup(p, n);
	if (!strcmp(h, "index.docker.io")) {
		free(h);
		h = cbl_xstrdup(IMAGES_DEFAULT_DOMAIN);
	}
	return h;
}

static void load_docker_auth(images_registry *r)
{
	char *path = NULL, *txt = NULL;
	size_t len = 0;
	cbl_error *e = NULL;
	if (r->o && r->o->auth_file) {
		path = cbl_xstrdup(r->o->auth_file);
	} else if (getenv("DOCKER_CONFIG")) {
		path = cbl_xasprintf("%s/config.json", getenv("DOCKER_CONFIG"));
	} else if (getenv("HOME")) {
		path = cbl_xasprintf("%s/.docker/config.json", getenv("HOME"));
	}
	if (!path || cbl_read_file(path, 1 << 20, &txt, &len, &e)) {
		cbl_error_free(e);
		free(path);
		return;
	}
	json_t *j = json_loadb(txt, len, 0, NULL);
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(j, "auths"), k, v) {
		char *h = url_host(k);
		bool match = !strcmp(h, r->domain) || !strcmp(h, r->endpoint);
		free(h);
		if (!match)
			continue;
		const char *a = cbl_json_str(v, "auth");
		if (a && *a) {
			size_t al = strlen(a);
			unsigned char *dec = cbl_xmalloc(al + 4);
			int dl = EVP_DecodeBlock(dec, (const unsigned char *)a, (int)al);
			if (dl > 0) {
				while (dl > 0 && dec[dl - 1] == '\0')
					dl--; /* padding */
				dec[dl] = '\0';
				char *colon = strchr((char *)dec, ':');
				if (colon) {
					r->user = cbl_xstrndup((char *)dec, (size_t)(colon - (char *)dec));
					r->pass = cbl_xstrdup(colon + 1);
				}
			}
			free(dec);
		} else if (cbl_json_str(v, "username") && cbl_json_str(v, "password")) {
			r->user = cbl_xstrdup(cbl_json_str(v, "username"));
			r->pass = cbl_xstrdup(cbl_json_str(v, "password"));
		}
		break;
	}
	json_decref(j);
	free(txt);
	free(path);
}

/* ---- plumbing ----------------------------------------------------------- */

int images_registry_open(images_registry **out, const images_ref *ref, const images_catalog *cat,
			 const images_resolve_opts *o, cbl_error **err)
{
	if (cbl_curl_load(err) < 0)
		return CBL_EIO;
	images_registry *r = cbl_xcalloc(1, sizeof(*r));
	r->domain = cbl_xstrdup(ref->domain);
	r->endpoint = cbl_xstrdup(images_catalog_endpoint(cat, ref->domain));
	r->repo = cbl_xstrdup(ref->path);
	r->o = o;
	r->insecure_list = o ? o->insecure_registries : NULL;
	r->insecure = images_host_insecure(r->endpoint, r->insecure_list) ||
		      images_host_insecure(r->domain, r->insecure_list);
	if (o && o->username) {
		r->user = cbl_xstrdup(o->username);
		r->pass = cbl_xstrdup(o->password ? o->password : "");
	} else {
		load_docker_auth(r);
	}
	if (!r->insecure)
		r->scheme = cbl_xstrdup("https");
	r->h = curl_easy_init();
	if (!r->h) {
		images_registry_free(r);
		return cbl_error_set(err, CBL_EINTERNAL, "curl_easy_init failed");
	}
	*out = r;
	return 0;
}

void images_registry_free(images_registry *r)
{
	if (!r)
		return;
	if (r->h)
		curl_easy_cleanup(r->h);
	free(r->domain);
	free(r->endpoint);
	free(r->repo);
	free(r->scheme);
	free(r->token);
	free(r->user);
	if (r->pass)
		memset(r->pass, 0, strlen(r->pass));
	free(r->pass);
	free(r);
}

typedef struct resp {
	long status;
	cbl_buf body;
	size_t max;
	bool too_big;
	char *content_type;
	char *www_auth;
	char *digest;         /* Docker-Content-Digest */
	char *content_range;
} resp;

static void resp_release(resp *p)
{
	cbl_buf_release(&p->body);
	free(p->content_type);
	free(p->www_auth);
	free(p->digest);
	free(p->content_range);
	memset(p, 0, sizeof(*p));
}

/* Header lines: a status line starts a new response (redirects, 100). */
static void header_line(resp *p, const char *line, size_t n)
{
	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		free(p->content_type);
		free(p->www_auth);
		free(p->digest);
		free(p->content_range);
		p->content_type = p->www_auth = p->digest = p->content_range = NULL;
		return;
	}
	const char *c = memchr(line, ':', n);
	if (!c)
		return;
	size_t kl = (size_t)(c - line);
	const char *v = c + 1;
	while (v < line + n && (*v == ' ' || *v == '\t'))
		v++;
	size_t vl = (size_t)(line + n - v);
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	char **slot = NULL;
	if (kl == 12 && !strncasecmp(line, "content-type", 12))
		slot = &p->content_type;
	else if (kl == 16 && !strncasecmp(line, "www-authenticate", 16))
		slot = &p->www_auth;
	else if (kl == 21 && !strncasecmp(line, "docker-content-digest", 21))
		slot = &p->digest;
	else if (kl == 13 && !strncasecmp(line, "content-range", 13))
		slot = &p->content_range;
	if (slot && !*slot)
		*slot = cbl_xstrndup(v, vl);
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	header_line(ud, buf, size * nitems);
	return size * nitems;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
	resp *p = ud;
	size_t n = size * nmemb;
	if (p->body.len + n > p->max) {
		p->too_big = true;
		return 0;
	}
	cbl_buf_append(&p->body, buf, n);
	return n;
}

static void setup_common(images_registry *r, CURL *h, bool tls_insecure)
{
	curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, r->insecure ? "http,https" : "https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
	if (tls_insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

static struct curl_slist *auth_headers(images_registry *r, struct curl_slist *l)
{
	if (r->token) {
		char *a = cbl_xasprintf("Authorization: Bearer %s", r->token);
		l = curl_slist_append(l, a);
		free(a);
	}
	return l;
}

static void set_basic(images_registry *r, CURL *h)
{
	if (r->use_basic && r->user) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, r->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, r->pass);
	}
}

/* One small GET; no auth handling. */
static int simple_get(images_registry *r, const char *url, struct curl_slist *hdrs, bool basic,
		      bool tls_insecure, long timeout_s, resp *p, cbl_error **err)
{
	CURL *h = r->h;
	curl_easy_reset(h);
	setup_common(r, h, tls_insecure);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, p);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
	if (basic && r->user) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, r->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, r->pass);
	}
	if (!p->max)
		p->max = SMALL_MAX;
	CURLcode c = curl_easy_perform(h);
	if (p->too_big)
		return cbl_error_set(err, CBL_EINVAL, "GET %s: answer larger than %zu bytes", url, p->max);
	if (c != CURLE_OK)
		return cbl_error_set(err, CBL_EIO, "GET %s: %s", url, curl_easy_strerror(c));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p->status);
	return 0;
}

/* The registry's own words from an error body ({"errors":[{code,message}]}). */
static char *registry_error(const resp *p)
{
	json_t *j = json_loadb(cbl_buf_cstr(&p->body), p->body.len, 0, NULL);
	json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
	char *s = NULL;
	if (e0)
		s = cbl_xasprintf("%s%s%s", cbl_json_str(e0, "code") ? cbl_json_str(e0, "code") : "",
				  cbl_json_str(e0, "message") ? ": " : "",
				  cbl_json_str(e0, "message") ? cbl_json_str(e0, "message") : "");
	json_decref(j);
	return s;
}

/* Picks https or (for insecure hosts, when TLS fails) http. */
static int probe(images_registry *r, cbl_error **err)
{
	if (r->scheme)
		return 0;
	char *url = cbl_xasprintf("https://%s/v2/", r->endpoint);
	resp p = {0};
	cbl_error *e = NULL;
	/* bounded: a plain-HTTP server may sit on a TLS hello it cannot parse */
	int rc = simple_get(r, url, NULL, false, true, 5L, &p, &e);
	free(url);
	resp_release(&p);
	cbl_error_free(e);
	r->scheme = cbl_xstrdup(rc == 0 ? "https" : "http");
	(void)err;
	return 0;
}

static char *escape(images_registry *r, const char *s)
{
	char *e = curl_easy_escape(r->h, s, 0);
	char *c = cbl_xstrdup(e ? e : "");
	curl_free(e);
	return c;
}

/* Answers a 401's challenge: gets a token, or switches to basic auth. */
static int authenticate(images_registry *r, const char *www_auth, cbl_error **err)
{
	images_challenge ch;
	resp p = {0};
	char *url = NULL, *realm_host = NULL;
	json_t *j = NULL;
	int rc = images_challenge_parse(www_auth, &ch, err);
	if (rc)
		return cbl_error_wrap(err, "registry %s", r->domain);
	if (!strcmp(ch.scheme, "basic")) {
		if (!r->user || r->use_basic) {
			rc = cbl_error_set(err, CBL_EINVAL, "registry %s: %s (basic auth); give --username and --password, or `docker login %s`",
					   r->domain, r->user ? "the credentials were refused" : "authentication required",
					   r->domain);
			goto out;
		}
		r->use_basic = true;
		goto out;
	}
	if (strcmp(ch.scheme, "bearer") || !ch.realm) {
		rc = cbl_error_set(err, CBL_EINVAL, "registry %s: unsupported authentication challenge '%s'",
				   r->domain, www_auth);
		goto out;
	}
	/* the realm gets our credentials: the same transport policy applies */
	bool realm_https = !strncasecmp(ch.realm, "https://", 8);
	bool realm_http = !strncasecmp(ch.realm, "http://", 7);
	realm_host = url_host(ch.realm);
	if (!realm_https && !(realm_http && images_host_insecure(realm_host, r->insecure_list))) {
		rc = cbl_error_set(err, CBL_EINVAL,
				   "registry %s: token realm '%s' is not https (plain HTTP is only allowed for loopback "
				   "and --insecure-registry hosts)",
				   r->domain, ch.realm);
		goto out;
	}
	cbl_buf u = CBL_BUF_INIT;
	cbl_buf_puts(&u, ch.realm);
	char sep = strchr(ch.realm, '?') ? '&' : '?';
	if (ch.service) {
		char *s = escape(r, ch.service);
		cbl_buf_printf(&u, "%cservice=%s", sep, s);
		free(s);
		sep = '&';
	}
	char *scope_raw = ch.scope ? cbl_xstrdup(ch.scope) : cbl_xasprintf("repository:%s:pull", r->repo);
	char *sc = escape(r, scope_raw);
	cbl_buf_printf(&u, "%cscope=%s", sep, sc);
	free(sc);
	free(scope_raw);
	url = cbl_buf_detach(&u);
	rc = simple_get(r, url, NULL, r->user != NULL, realm_https && images_host_insecure(realm_host, r->insecure_list),
			120L, &p, err);
	if (rc)
		goto out;
	if (p.status == 401 || p.status == 403) {
		rc = cbl_error_set(err, CBL_EINVAL, "registry %s: the token service refused %s (HTTP %ld)", r->domain,
				   r->user ? "the credentials" : "anonymous access; give --username and --password",
				   p.status);
		goto out;
	}
	if (p.status != 200) {
		rc = cbl_error_set(err, CBL_EIO, "registry %s: token service answered HTTP %ld", r->domain, p.status);
		goto out;
	}
	j = json_loadb(cbl_buf_cstr(&p.body), p.body.len, 0, NULL);
	const char *tok = cbl_json_str(j, "token");
	if (!tok || !*tok)
		tok = cbl_json_str(j, "access_token");
	if (!tok || !*tok) {
		rc = cbl_error_set(err, CBL_EIO, "registry %s: the token service gave no token", r->domain);
		goto out;
	}
	free(r->token);
	r->token = cbl_xstrdup(tok);
out:
	json_decref(j);
	free(url);
	free(realm_host);
	resp_release(&p);
	images_challenge_release(&ch);
	return rc;
}

/* GET with auth: answers one challenge, then retries once. */
static int api_get(images_registry *r, const char *path, const char *accept, resp *p, cbl_error **err)
{
	int rc = probe(r, err);
	if (rc)
		return rc;
	char *url = cbl_xasprintf("%s://%s/v2/%s", r->scheme, r->endpoint, path);
	for (int attempt = 0; attempt < 3; attempt++) {
		resp_release(p);
		struct curl_slist *h = NULL;
		if (accept) {
			char *a = cbl_xasprintf("Accept: %s", accept);
			h = curl_slist_append(h, a);
			free(a);
		}
		h = auth_headers(r, h);
		rc = simple_get(r, url, h, r->use_basic, r->insecure, 300L, p, err);
		curl_slist_free_all(h);
		if (rc || p->status != 401 || attempt == 2)
			break;
		if (!p->www_auth) {
			rc = cbl_error_set(err, CBL_EINVAL, "registry %s: HTTP 401 without a challenge", r->domain);
			break;
		}
		char *wa = cbl_xstrdup(p->www_auth);
		bool had = r->token != NULL || r->use_basic;
		rc = authenticate(r, wa, err);
		free(wa);
		if (rc)
			break;
		if (had && attempt == 1)
			break;
	}
	if (!rc && p->status == 401)
		rc = cbl_error_set(err, CBL_EINVAL, "registry %s: access to %s denied (HTTP 401)%s", r->domain, r->repo,
				   r->user ? "" : "; give --username and --password");
	free(url);
	return rc;
}

int images_registry_manifest(images_registry *r, const char *reference, char **out, size_t *len,
			     char **content_type, char *out_digest, cbl_error **err)
{
	static const char accept[] = IMAGES_MT_OCI_INDEX ", " IMAGES_MT_DOCKER_LIST ", " IMAGES_MT_OCI_MANIFEST
		", " IMAGES_MT_DOCKER_MANIFEST;
	resp p = {0};
	char *path = cbl_xasprintf("%s/manifests/%s", r->repo, reference);
	int rc = api_get(r, path, accept, &p, err);
	*out = NULL;
	if (rc)
		goto out;
	if (p.status == 404) {
		char *m = registry_error(&p);
		rc = cbl_error_set(err, CBL_ENOENT, "%s/%s:%s not found in the registry%s%s%s", r->domain, r->repo,
				   reference, m ? " (" : "", m ? m : "", m ? ")" : "");
		free(m);
		goto out;
	}
	if (p.status != 200) {
		char *m = registry_error(&p);
		rc = cbl_error_set(err, CBL_EIO, "%s/%s: manifest %s: HTTP %ld%s%s", r->domain, r->repo, reference,
				   p.status, m ? ": " : "", m ? m : "");
		free(m);
		goto out;
	}
	char got[72];
	images_sha256_digest(cbl_buf_cstr(&p.body), p.body.len, got);
	if (images_digest_valid(reference) && strcmp(reference, got)) {
		rc = cbl_error_set(err, CBL_EIO, "manifest %s: digest mismatch (the data has %s)", reference, got);
		goto out;
	}
	if (p.digest && !strncmp(p.digest, "sha256:", 7) && strcmp(p.digest, got)) {
		rc = cbl_error_set(err, CBL_EIO,
				   "manifest %s: the registry says its digest is %s but the data has %s", reference,
				   p.digest, got);
		goto out;
	}
	memcpy(out_digest, got, 72);
	*len = p.body.len;
	*content_type = p.content_type ? cbl_xstrdup(p.content_type) : NULL;
	*out = cbl_buf_detach(&p.body);
out:
	free(path);
	resp_release(&p);
	return rc;
}

/* ---- blobs ------------------------------------------------------------- */

typedef struct fetch {
	images_registry *r;
	images_store *s;
	uint64_t all_total, all_base;   /* bytes of every blob; bytes already present */
	size_t count;
	struct xfer *x;
	size_t nx;
} fetch;

typedef struct xfer {
	fetch *f;
	const images_desc *d;
	size_t index;
	images_blob_writer w;
	CURL *h;
	struct curl_slist *hdrs;
	resp p;              /* headers; the body of an error answer */
	bool body_checked;
	bool to_blob;        /* the body goes to the blob (2xx) */
	uint64_t start;      /* resume offset asked for */
	int tries;           /* transport retries used */
	int auths;           /* 401s answered */
	cbl_error *werr;     /* error from the write callback */
	uint64_t last_report;
	bool active, done;
} xfer;

static uint64_t fetched_bytes(const fetch *f)
{
	uint64_t n = f->all_base;
	for (size_t i = 0; i < f->nx; i++)
		n += f->x[i].done ? (uint64_t)f->x[i].d->size : f->x[i].w.n;
	return n;
}

static void report(fetch *f, xfer *x, images_stage st)
{
	const images_resolve_opts *o = f->r->o;
	if (!o || !o->progress)
		return;
	images_progress p = {.stage = st, .digest = x ? x->d->digest : NULL,
			     .done = x ? x->w.n : 0, .total = x ? (uint64_t)x->d->size : 0,
			     .all_done = fetched_bytes(f), .all_total = f->all_total,
			     .index = x ? x->index : 0, .count = f->count};
	if (st == IMAGES_STAGE_BLOB_DONE && x)
		p.done = (uint64_t)x->d->size;
	o->progress(&p, o->payload);
}

static size_t x_header(char *buf, size_t size, size_t nitems, void *ud)
{
	xfer *x = ud;
	header_line(&x->p, buf, size * nitems);
	return size * nitems;
}

static size_t x_body(char *buf, size_t size, size_t nmemb, void *ud)
{
	xfer *x = ud;
	size_t n = size * nmemb;
	if (!x->body_checked) {
		x->body_checked = true;
		long code = 0;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
		x->p.status = code;
		if (code == 206) {
			/* "bytes <start>-<end>/<total>": must continue where we are */
			unsigned long long s = 0;
			if (!x->p.content_range || sscanf(x->p.content_range, "bytes %llu-", &s) != 1 ||
			    s != x->start) {
				cbl_error_set(&x->werr, CBL_EIO, "blob %s: the registry resumed at the wrong offset (%s)",
					      x->d->digest, x->p.content_range ? x->p.content_range : "no Content-Range");
				return 0;
			}
			x->to_blob = true;
		} else if (code == 200) {
			if (x->w.n && images_blob_writer_restart(&x->w, &x->werr))
				return 0; /* Range ignored: from the start */
			x->to_blob = true;
		} else {
			x->to_blob = false;
		}
	}
	if (!x->to_blob) {
		if (x->p.body.len + n <= 65536)
			cbl_buf_append(&x->p.body, buf, n);
		return n;
	}
	if (images_blob_writer_write(&x->w, buf, n, &x->werr))
		return 0;
	if (x->w.n - x->last_report >= PROGRESS_STEP || x->w.n < x->last_report) {
		x->last_report = x->w.n;
		report(x->f, x, IMAGES_STAGE_DOWNLOAD);
	}
	return n;
}

static void x_setup(xfer *x)
{
	images_registry *r = x->f->r;
	if (!x->h)
		x->h = curl_easy_init();
	else
		curl_easy_reset(x->h);
	resp_release(&x->p);
	x->body_checked = x->to_blob = false;
	curl_slist_free_all(x->hdrs);
	x->hdrs = auth_headers(r, NULL);
	x->start = x->w.n;
	if (x->start) {
		char *rg = cbl_xasprintf("Range: bytes=%llu-", (unsigned long long)x->start);
		x->hdrs = curl_slist_append(x->hdrs, rg);
		free(rg);
	}
	char *url = cbl_xasprintf("%s://%s/v2/%s/blobs/%s", r->scheme, r->endpoint, r->repo, x->d->digest);
	setup_common(r, x->h, r->insecure);
	set_basic(r, x->h);
	curl_easy_setopt(x->h, CURLOPT_URL, url);
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, x_header);
	curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, x_body);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->h, CURLOPT_BUFFERSIZE, 256L << 10);
	free(url);
}

static bool transient(CURLcode c)
{
	switch (c) {
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* A finished transfer: commit, retry, or fail.  *readd: put it back. */
static int x_finish(xfer *x, CURLcode c, bool *readd, cbl_error **err)
{
	fetch *f = x->f;
	int retries = f->r->o ? f->r->o->retries : 0;
	retries = retries < 0 ? 0 : retries == 0 ? 2 : retries;
	*readd = false;
	if (x->werr) {
		/* our own refusal (too much data, wrong resume offset): do not resume */
		int rc = x->werr->code;
		if (err && !*err) {
			*err = x->werr;
			x->werr = NULL;
		}
		images_blob_writer_release(&x->w, false);
		return rc;
	}
	long code = x->p.status;
	if (!x->body_checked)
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
	if (c == CURLE_OK && code == 401 && x->auths < 2 && x->p.www_auth) {
		char *wa = cbl_xstrdup(x->p.www_auth);
		int rc = authenticate(f->r, wa, err);
		free(wa);
		if (rc)
			return rc;
		x->auths++;
		*readd = true;
		return 0;
	}
	if (c == CURLE_OK && code == 416 && x->w.n) {
		/* our .part is longer than the blob (or the server is confused) */
		int rc = images_blob_writer_restart(&x->w, err);
		if (rc)
			return rc;
		*readd = true;
		return 0;
	}
	if (c == CURLE_OK && (code == 200 || code == 206)) {
		if (x->w.n < (uint64_t)x->d->size && x->tries < retries) {
			x->tries++; /* a short body without a transport error */
			*readd = true;
			return 0;
		}
		char got[72];
		int rc = images_blob_writer_commit(&x->w, got, err);
		images_blob_writer_release(&x->w, false);
		if (rc)
			return cbl_error_wrap(err, "%s/%s", f->r->domain, f->r->repo);
		x->done = true;
		report(f, x, IMAGES_STAGE_BLOB_DONE);
		return 0;
	}
	if (c == CURLE_OK) {
		char *m = registry_error(&x->p);
		int rc = cbl_error_set(err, code == 404 ? CBL_ENOENT : CBL_EIO, "%s/%s: blob %s: HTTP %ld%s%s", f->r->domain,
				       f->r->repo, x->d->digest, code, m ? ": " : "", m ? m : "");
		free(m);
		images_blob_writer_release(&x->w, true);
		return rc;
	}
	if (transient(c) && x->tries < retries) {
		x->tries++;
		*readd = true;
		return 0;
	}
	int rc = cbl_error_set(err, CBL_EIO,
			       "%s/%s: download of blob %s interrupted after %llu of %lld bytes (%s); the next pull "
			       "resumes it",
			       f->r->domain, f->r->repo, x->d->digest, (unsigned long long)x->w.n, (long long)x->d->size,
			       curl_easy_strerror(c));
	images_blob_writer_release(&x->w, true);
	return rc;
}

int images_registry_fetch_blobs(images_registry *r, images_store *s, const images_desc *const *descs,
				size_t n, cbl_error **err)
{
	fetch f = {.r = r, .s = s, .count = n};
	CURLM *m = NULL;
	int rc = probe(r, err);
	if (rc)
		return rc;
	f.x = cbl_xcalloc(n ? n : 1, sizeof(*f.x));
	for (size_t i = 0; i < n; i++) {
		f.all_total += (uint64_t)descs[i]->size;
		if (images_store_has_blob(s, descs[i]->digest, descs[i]->size)) {
			f.all_base += (uint64_t)descs[i]->size;
			continue;
		}
		xfer *x = &f.x[f.nx++];
		x->f = &f;
		x->d = descs[i];
		x->index = i;
		x->w = (images_blob_writer)IMAGES_BLOB_WRITER_INIT;
	}
	for (size_t i = 0; i < n; i++) {
		if (r->o && r->o->progress && images_store_has_blob(s, descs[i]->digest, descs[i]->size)) {
			images_progress p = {.stage = IMAGES_STAGE_BLOB_DONE, .digest = descs[i]->digest,
					     .done = (uint64_t)descs[i]->size, .total = (uint64_t)descs[i]->size,
					     .all_done = f.all_base, .all_total = f.all_total, .index = i, .count = n,
					     .message = "already present"};
			r->o->progress(&p, r->o->payload);
		}
	}
	if (!f.nx)
		goto out;
	/* open the writers (resuming .part files) */
	for (size_t i = 0; i < f.nx; i++) {
		rc = images_blob_writer_open(&f.x[i].w, s, f.x[i].d->digest, f.x[i].d->size, true, err);
		if (rc)
			goto out;
	}
	m = curl_multi_init();
	int par = r->o && r->o->parallel > 0 ? r->o->parallel : 3;
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)par);
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)par);
	size_t next = 0, running_n = 0, finished = 0;
	while (finished < f.nx) {
		while (running_n < (size_t)par && next < f.nx) {
			xfer *x = &f.x[next++];
			x_setup(x);
			curl_multi_add_handle(m, x->h);
			x->active = true;
			running_n++;
		}
		int still = 0;
		CURLMcode mc = curl_multi_perform(m, &still);
		if (mc != CURLM_OK) {
			rc = cbl_error_set(err, CBL_EIO, "curl: %s", curl_multi_strerror(mc));
			goto out;
		}
		CURLMsg *msg;
		int q;
		while ((msg = curl_multi_info_read(m, &q))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			xfer *x = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			CURLcode c = msg->data.result;
			curl_multi_remove_handle(m, x->h);
			x->active = false;
			bool readd = false;
			rc = x_finish(x, c, &readd, err);
			if (rc)
				goto out;
			if (readd) {
				x_setup(x);
				curl_multi_add_handle(m, x->h);
				x->active = true;
			} else {
				running_n--;
				finished++;
			}
		}
		if (finished < f.nx && still) {
			mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
			if (mc != CURLM_OK) {
				rc = cbl_error_set(err, CBL_EIO, "curl: %s", curl_multi_strerror(mc));
				goto out;
			}
		}
	}
out:
	for (size_t i = 0; i < f.nx; i++) {
		xfer *x = &f.x[i];
		if (x->active)
			curl_multi_remove_handle(m, x->h);
		if (x->h)
			curl_easy_cleanup(x->h);
		curl_slist_free_all(x->hdrs);
		resp_release(&x->p);
		cbl_error_free(x->werr);
		/* an unfinished download keeps its .part for the next pull */
		images_blob_writer_release(&x->w, true);
	}
	if (m)
		curl_multi_cleanup(m);
	free(f.x);
	return rc;
}
