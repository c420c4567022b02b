/* source/url.c - git URLs (parts, the form shown in messages, local / SSH /
 * scp-like) and the `git credential-store` files (source/source_internal.h).
 * Strings in, strings out: no libgit2 state, no network. */
#include "source/source_internal.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- URLs --- */

void source_url_release(source_url *u)
{
	free(u->scheme);
	free(u->user);
	free(u->pass);
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static char *pct_decode(const char *s, size_t n)
{
	char *out = cbl_xmalloc(n + 1);
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < n && (h = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (l = hexval((unsigned char)s[i + 2])) >= 0) {
			out[j++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[j++] = s[i];
		}
	}
	out[j] = '\0';
	return out;
}

static char *lower_dup(const char *s, size_t n)
{
	char *r = cbl_xstrndup(s, n);
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

/* Parses "scheme://[user[:pass]@]host[:port][/path]".  Returns 0, or -1 when
 * s has no scheme:// (scp-like, local path). */
int source_url_parse(source_url *u, const char *s)
{
	memset(u, 0, sizeof(*u));
	const char *sep = strstr(s, "://");
	if (!sep || sep == s)
		return -1;
	for (const char *p = s; p < sep; p++)
		if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
			return -1;
	u->scheme = lower_dup(s, (size_t)(sep - s));
	const char *auth = sep + 3;
	size_t alen = strcspn(auth, "/?#");
	const char *at = NULL;
	for (size_t i = 0; i < alen; i++)
		if (auth[i] == '@')
			at = auth + i;
	const char *host = auth;
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon) {
			u->user = pct_decode(auth, (size_t)(colon - auth));
			u->pass = pct_decode(colon + 1, (size_t)(at - colon - 1));
		} else {
			u->user = pct_decode(auth, (size_t)(at - auth));
		}
		host = at + 1;
	}
	u->host = lower_dup(host, (size_t)(auth + alen - host));
	u->path = cbl_xstrdup(auth + alen);
	return 0;
}

bool source_url_scheme_is_http(const char *scheme)
{
	return scheme && (!strcmp(scheme, "http") || !strcmp(scheme, "https"));
}

/* The URL for messages: a password (and for http(s), where a token is often
 * given as the user name, the whole user part) becomes "***". */
char *source_url_display(const char *url)
{
	const char *sep = strstr(url, "://");
	if (!sep)
		return cbl_xstrdup(url);
	const char *auth = sep + 3;
	size_t alen = strcspn(auth, "/?#");
	const char *at = NULL;
	for (size_t i = 0; i < alen; i++)
		if (auth[i] == '@')
			at = auth + i;
	if (!at)
		return cbl_xstrdup(url);
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_append(&b, url, (size_t)(auth - url));
	const char *colon = memchr(auth, ':', (size_t)(at - auth));
	bool http = (sep - url == 4 && !strncasecmp(url, "http", 4)) ||
		    (sep - url == 5 && !strncasecmp(url, "https", 5));
	if (colon && !http) {
		cbl_buf_append(&b, auth, (size_t)(colon - auth));
		cbl_buf_puts(&b, ":***");
	} else if (colon || http) {
		cbl_buf_puts(&b, "***");
	} else {
		cbl_buf_append(&b, auth, (size_t)(at - auth));
	}
	cbl_buf_puts(&b, at);
	return cbl_buf_detach(&b);
}

/* scp-like "[user@]host:path": a ':' before any '/', per git's url rules. */
static bool is_scp_like(const char *url)
{
	const char *colon = strchr(url, ':');
	const char *slash = strchr(url, '/');
	return colon && colon != url && (!slash || colon < slash);
}

bool source_url_is_local(const char *url)
{
	if (!strncmp(url, "file://", 7))
		return true;
	return !strstr(url, "://") && !is_scp_like(url);
}

int source_url_local_path(const char *url, char **out)
{
	*out = NULL;
	if (!strncmp(url, "file://", 7)) {
		/* libgit2's reading (git_fs_path_fromurl): file:///p, file://localhost/p */
		const char *p = url + 7;
		if (!strncmp(p, "localhost/", 10))
			p += 9;
		if (*p != '/' || p[1] == '/' || !p[1])
			return -1;
		*out = pct_decode(p, strlen(p));
		return 0;
	}
	char *abs = realpath(url, NULL);
	if (!abs) {
		char *alt = cbl_xasprintf("%s.git", url);
		abs = realpath(alt, NULL);
		free(alt);
	}
	*out = abs;
	return abs ? 0 : -1;
}

/* libgit2 (1.7, 1.8) breaks shallow fetches over its stateful SSH transport:
 * it repeats the want list after the shallow negotiation and upload-pack
 * refuses it ("expected SHA1 list, got 'want ...'"; libgit2 upstream, seen
 * by git2-rs users too).  SSH sources are therefore fetched like local ones:
 * in full, then cut to depth. */
bool source_url_is_ssh(const char *url)
{
	return !strncmp(url, "ssh://", 6) || !strncmp(url, "git+ssh://", 10) ||
	       !strncmp(url, "ssh+git://", 10) || (!strstr(url, "://") && is_scp_like(url));
}

/* ------------------------------------------------- credential stores --- */

static char *home_dir(void)
{
	const char *h = getenv("HOME");
	if (h && *h)
		return cbl_xstrdup(h);
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_dir)
		return cbl_xstrdup(res->pw_dir);
	return NULL;
}

/* One `git credential-store` file: lines "scheme://user:pass@host[:port][/path]".
 * Like git with credential.useHttpPath=false (its default) the path is not
 * compared.  Returns 1 and sets *out on a match, 0 for none, <0 on a libgit2
 * error. */
static int cred_from_store_file(const char *file, const source_url *want, const char *want_user,
				git_credential **out)
{
	char *data = NULL;
	size_t len = 0;
	int rc = 0;
	if (cbl_read_file(file, 1 << 20, &data, &len, NULL) < 0)
		return 0;
	char *line = data;
	while (line && *line) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		size_t l = strlen(line);
		while (l && isspace((unsigned char)line[l - 1]))
			line[--l] = '\0';
		while (isspace((unsigned char)*line))
			line++;
		source_url e;
		if (*line && *line != '#' && source_url_parse(&e, line) == 0) {
			bool match = e.user && e.pass && !strcmp(e.scheme, want->scheme) &&
				     !strcmp(e.host, want->host) &&
				     (!want_user || !*want_user || !strcmp(want_user, e.user));
			if (match)
				rc = git_credential_userpass_plaintext_new(out, e.user, e.pass) < 0 ? -1 : 1;
			source_url_release(&e);
			if (rc)
				break;
		}
		line = nl ? nl + 1 : NULL;
	}
	if (data)
		explicit_bzero(data, len);
	free(data);
	return rc;
}

int source_url_credential(git_credential **out, const source_url *want, const char *want_user)
{
	char *home = home_dir();
	char *f1 = home ? cbl_path_join(home, ".git-credentials") : NULL;
	const char *xdg = getenv("XDG_CONFIG_HOME");
	char *f2 = NULL;
	if (xdg && *xdg)
		f2 = cbl_xasprintf("%s/git/credentials", xdg);
	else if (home)
		f2 = cbl_path_join(home, ".config/git/credentials");
	int rc = 0;
	if (f1)
		rc = cred_from_store_file(f1, want, want_user, out);
	if (!rc && f2)
		rc = cred_from_store_file(f2, want, want_user, out);
	free(f1);
	free(f2);
	free(home);
	return rc;
}
