/* images/ref.c - image references as docker reads them
 * (distribution/reference's grammar and normalization), digests, and the
 * plain-HTTP policy for registry hosts.
 *
 *   reference := [domain '/'] path [':' tag] ['@' digest]
 *   domain    := the first component when it contains '.' or ':', is
 *                "localhost", or has upper-case letters (docker's rule);
 *                otherwise "docker.io", where a one-component path gets
 *                "library/" in front ("busybox" = docker.io/library/busybox)
 *   path      := lower-case components [a-z0-9]+ joined by '.', '_', '__' or
 *                '-'+, separated by '/'
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest    := "sha256:" 64 lower-case hex (the only algorithm we verify)
 */
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "util/banned.h"

images_kind images_classify(const char *image)
{
	if (!image || !*image || !strcmp(image, "host"))
		return IMAGES_KIND_HOST;
	if (image[0] == '/' || !strcmp(image, ".") || !strcmp(image, "..") ||
	    !strncmp(image, "./", 2) || !strncmp(image, "../", 3))
		return IMAGES_KIND_DIR;
	return IMAGES_KIND_REGISTRY;
}

bool images_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7))
		return false;
	const char *h = d + 7;
	size_t i = 0;
	for (; h[i]; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return i == 64;
}

const char *images_digest_hex(const char *digest)
{
	const char *c = strchr(digest, ':');
	return c ? c + 1 : digest;
}

void images_sha256_digest(const void *data, size_t len, char out[72])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static bool path_component_ok(const char *s, size_t n)
{
	/* [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
	if (!n || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
		return false;
	size_t i = 0;
	while (i < n) {
		while (i < n && (islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
			i++;
		if (i == n)
			return true;
		size_t sep = i;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == n || i == sep || !(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
			return false;
	}
	return true;
}

static bool tag_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128)
		return false;
	if (!(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return false;
	return true;
}

static bool domain_ok(const char *d)
{
	if (!*d)
		return false;
	const char *p = d;
	if (*p == '[') { /* [ipv6]:port */
		const char *e = strchr(p, ']');
		if (!e)
			return false;
		p = e + 1;
		if (!*p)
			return true;
		if (*p != ':')
			return false;
	} else {
		for (; *p && *p != ':'; p++)
			if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-'))
				return false;
		if (!*p)
			return true;
	}
	p++; /* port */
	if (!*p)
		return false;
	for (; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

void images_ref_release(images_ref *r)
{
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

int images_ref_parse(const char *s, images_ref *out, cbl_error **err)
{
	images_ref r = {0};
	char *work = NULL;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return cbl_error_set(err, CBL_EINVAL, "empty image reference");
	if (strlen(s) > 1024)
		return cbl_error_set(err, CBL_EINVAL, "image reference too long");
	work = cbl_xstrdup(s);

	char *at = strrchr(work, '@');
	if (at) {
		*at = '\0';
		if (!images_digest_valid(at + 1)) {
			rc = cbl_error_set(err, CBL_EINVAL,
					   "invalid reference '%s': the digest must be sha256:<64 lower-case hex>", s);
			goto out;
		}
		r.digest = cbl_xstrdup(at + 1);
	}
	char *slash = strrchr(work, '/');
	char *colon = strrchr(slash ? slash : work, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_ok(colon + 1)) {
			rc = cbl_error_set(err, CBL_EINVAL, "invalid reference '%s': bad tag '%s'", s, colon + 1);
			goto out;
		}
		r.tag = cbl_xstrdup(colon + 1);
	}
	/* the domain, docker's way */
	char *first = strchr(work, '/');
	const char *path = work;
	if (first) {
		size_t fl = (size_t)(first - work);
		bool upper = false;
		for (size_t i = 0; i < fl; i++)
			if (isupper((unsigned char)work[i]))
				upper = true;
		if (memchr(work, '.', fl) || memchr(work, ':', fl) || memchr(work, '[', fl) ||
		    (fl == 9 && !strncmp(work, "localhost", 9)) || upper) {
			r.domain = cbl_xstrndup(work, fl);
			path = first + 1;
		}
	}
	if (!r.domain)
		r.domain = cbl_xstrdup(IMAGES_DEFAULT_DOMAIN);
	else if (!domain_ok(r.domain)) {
		rc = cbl_error_set(err, CBL_EINVAL, "invalid reference '%s': bad registry host '%s'", s,
				   r.domain);
		goto out;
	}
	if (!strcmp(r.domain, "index.docker.io")) {
		free(r.domain);
		r.domain = cbl_xstrdup(IMAGES_DEFAULT_DOMAIN);
	}
	if (!*path) {
		rc = cbl_error_set(err, CBL_EINVAL, "invalid reference '%s': no repository name", s);
		goto out;
	}
	for (const char *p = path; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!path_component_ok(p, n)) {
			bool upper = false;
			for (size_t i = 0; i < n; i++)
				if (isupper((unsigned char)p[i]))
					upper = true;
			rc = cbl_error_set(err, CBL_EINVAL, "invalid reference '%s': %s", s,
					   upper ? "repository name must be lowercase"
						 : "bad repository name component");
			goto out;
		}
		p += n;
		if (*p == '/') {
			p++;
			if (!*p) {
				rc = cbl_error_set(err, CBL_EINVAL, "invalid reference '%s': trailing '/'", s);
				goto out;
			}
		}
	}
	if (!strcmp(r.domain, IMAGES_DEFAULT_DOMAIN) && !strchr(path, '/'))
		r.path = cbl_xasprintf("library/%s", path);
	else
		r.path = cbl_xstrdup(path);
	if (strlen(r.domain) + 1 + strlen(r.path) > 255) {
		rc = cbl_error_set(err, CBL_EINVAL, "invalid reference '%s': name longer than 255 characters", s);
		goto out;
	}
	if (!r.tag && !r.digest)
		r.tag = cbl_xstrdup("latest");
	*out = r;
	memset(&r, 0, sizeof(r));
out:
	images_ref_release(&r);
	free(work);
	return rc;
}

char *images_ref_string(const images_ref *r)
{
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_printf(&b, "%s/%s", r->domain, r->path);
	if (r->tag)
		cbl_buf_printf(&b, ":%s", r->tag);
	if (r->digest)
		cbl_buf_printf(&b, "@%s", r->digest);
	return cbl_buf_detach(&b);
}

bool images_host_insecure(const char *hostport, const char *const *insecure)
{
	for (size_t i = 0; insecure && insecure[i]; i++)
		if (!strcmp(insecure[i], hostport))
			return true;
	/* the host without its port */
	char host[256];
	const char *h = hostport;
	size_t n;
	if (*h == '[') {
		const char *e = strchr(h, ']');
		if (!e)
			return false;
		h++;
		n = (size_t)(e - h);
	} else {
		const char *c = strchr(h, ':');
		n = c ? (size_t)(c - h) : strlen(h);
	}
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	for (size_t i = 0; insecure && insecure[i]; i++)
		if (!strcmp(insecure[i], host))
			return true;
	if (!strcmp(host, "localhost"))
		return true;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}
