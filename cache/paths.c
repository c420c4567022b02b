/* cache/paths.c - cache.paths: normalisation, static base directories, the
 * cache version, and which files a base selects.
 *
 * Why bases: a snapshot must be restorable with one overlay per directory
 * (constant time), so each path entry is anchored at the deepest directory
 * its glob cannot vary: "node_modules/" "**" "/" "*" -> node_modules,
 * "/root/.m2/repository/" "**" "/" "*.jar" -> /root/.m2/repository.  The glob
 * itself (artifacts/ rules, reused through artifacts_glob_match) then
 * filters what is kept below the base. */
#include "cache/cache_internal.h"
#include "artifacts/artifacts.h"
#include "util/alloc.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static bool comp_has_meta(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '*' || s[i] == '?' || s[i] == '[' || s[i] == '\\')
			return true;
	return false;
}

int cache_normalize_path(const char *in, char **out, cbl_error **err)
{
	cbl_buf b = CBL_BUF_INIT;
	const char *p = in;
	bool abs = in[0] == '/';
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == 1 && p[0] == '.') {
			p += l;
			continue;
		}
		if (l == 2 && p[0] == '.' && p[1] == '.') {
			cbl_buf_release(&b);
			return cbl_error_set(err, CBL_EINVAL, "cache path '%s': '..' is not allowed", in);
		}
		if (b.len || abs)
			cbl_buf_putc(&b, '/');
		cbl_buf_append(&b, p, l);
		p += l;
	}
	if (!b.len) {
		cbl_buf_release(&b);
		if (abs)
			return cbl_error_set(err, CBL_EINVAL, "cache path '%s': caching / is not supported", in);
		/* "." or "./": the whole source directory */
		*out = cbl_xstrdup("**/*");
		return 0;
	}
	*out = cbl_buf_detach(&b);
	return 0;
}

/* Splits a normalised path into base and pattern. */
static void split_base(const char *norm, char **base, char **pat)
{
	bool abs = norm[0] == '/';
	const char *p = abs ? norm + 1 : norm;
	const char *first_meta = NULL;
	const char *c = p;
	while (*c) {
		const char *e = strchr(c, '/');
		size_t l = e ? (size_t)(e - c) : strlen(c);
		if (comp_has_meta(c, l)) {
			first_meta = c;
			break;
		}
		c += l;
		if (*c == '/')
			c++;
	}
	if (!first_meta) {
		/* no wildcard: a directory, cached whole */
		*base = cbl_xstrdup(norm);
		*pat = cbl_xstrdup("**/*");
		return;
	}
	if (first_meta == p) {
		*base = cbl_xstrdup(abs ? "/" : ".");
	} else {
		size_t bl = (size_t)(first_meta - 1 - norm); /* without the '/' */
		*base = cbl_xstrndup(norm, bl);
	}
	*pat = cbl_xstrdup(first_meta);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* a lies strictly inside b (both normalised bases) */
static bool base_inside(const char *a, const char *b)
{
	if (!strcmp(b, "."))
		return a[0] != '/' && strcmp(a, ".");
	if (!strcmp(b, "/"))
		return a[0] == '/' && strcmp(a, "/");
	size_t l = strlen(b);
	return !strncmp(a, b, l) && a[l] == '/';
}

static bool pat_is_all(const char *p)
{
	return !strcmp(p, "**/*") || !strcmp(p, "**") || !strcmp(p, "*/**") || !strcmp(p, "**/**");
}

int cache_parse_paths(const char *const *paths, size_t n, cache_base **out, size_t *nout,
		      char version_hex[65], cbl_error **err)
{
	cache_base *bases = NULL;
	size_t nb = 0, cap = 0;
	char **norm = cbl_xcalloc(n ? n : 1, sizeof(char *));
	size_t nn = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!paths[i] || !*paths[i])
			continue;
		char *np = NULL;
		rc = cache_normalize_path(paths[i], &np, err);
		if (rc < 0)
			goto out;
		norm[nn++] = np;
		char *base = NULL, *pat = NULL;
		split_base(np, &base, &pat);
		size_t j = 0;
		while (j < nb && strcmp(bases[j].base, base))
			j++;
		if (j == nb) {
			CBL_GROW(bases, nb + 1, cap);
			memset(&bases[nb], 0, sizeof(bases[nb]));
			bases[nb].base = base;
			nb++;
		} else {
			free(base);
		}
		bool dup = false;
		for (size_t k = 0; k < bases[j].pats.n; k++)
			dup |= !strcmp(bases[j].pats.v[k], pat) && !strcmp(bases[j].shown.v[k], np);
		if (dup) {
			free(pat);
			continue;
		}
		bases[j].match_all |= pat_is_all(pat);
		cbl_strv_push_take(&bases[j].pats, pat);
		cbl_strv_push(&bases[j].shown, np);
	}
	if (!nn) {
		rc = cbl_error_set(err, CBL_EINVAL, "no paths specified to be cached");
		goto out;
	}
	for (size_t i = 0; i < nb; i++)
		for (size_t j = 0; j < nb; j++)
			if (i != j && base_inside(bases[j].base, bases[i].base)) {
				bases[i].nested = cbl_xreallocarray(bases[i].nested, bases[i].nnested + 1,
								    sizeof(size_t));
				bases[i].nested[bases[i].nnested++] = j;
			}
	/* the version: sorted, unique normalised paths */
	qsort(norm, nn, sizeof(char *), cmp_strp);
	{
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		unsigned char d[32];
		unsigned dl = 0;
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		for (size_t i = 0; i < nn; i++) {
			if (i && !strcmp(norm[i], norm[i - 1]))
				continue;
			EVP_DigestUpdate(ctx, norm[i], strlen(norm[i]));
			EVP_DigestUpdate(ctx, "\n", 1);
		}
		EVP_DigestFinal_ex(ctx, d, &dl);
		EVP_MD_CTX_free(ctx);
		cache_hex(d, 32, version_hex);
	}
	*out = bases;
	*nout = nb;
	bases = NULL;
	nb = 0;
out:
	cache_bases_free(bases, nb);
	for (size_t i = 0; i < nn; i++)
		free(norm[i]);
	free(norm);
	return rc;
}

void cache_bases_free(cache_base *b, size_t n)
{
	if (!b)
		return;
	for (size_t i = 0; i < n; i++) {
		free(b[i].base);
		cbl_strv_release(&b[i].pats);
		cbl_strv_release(&b[i].shown);
		free(b[i].nested);
		free(b[i].inner);
		free(b[i].host);
		free(b[i].host_rel);
	}
	free(b);
}

bool cache_base_selects(const cache_base *b, const char *rel)
{
	if (b->match_all)
		return true;
	for (size_t i = 0; i < b->pats.n; i++)
		if (artifacts_glob_match(b->pats.v[i], rel))
			return true;
	return false;
}

bool cache_base_in_nested(const cache_base *bases, const cache_base *b, const char *rel)
{
	if (!b->nnested)
		return false;
	for (size_t i = 0; i < b->nnested; i++) {
		const char *nb = bases[b->nested[i]].base;
		const char *suffix;
		if (!strcmp(b->base, "."))
			suffix = nb;
		else if (!strcmp(b->base, "/"))
			suffix = nb + 1;
		else
			suffix = nb + strlen(b->base) + 1;
		size_t sl = strlen(suffix);
		if (!strncmp(rel, suffix, sl) && (rel[sl] == '\0' || rel[sl] == '/'))
			return true;
	}
	return false;
}
