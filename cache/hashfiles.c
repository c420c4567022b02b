/* cache/hashfiles.c - codebuild-hash-files: one SHA-256 over a set of files,
 * for cache keys like npm-$(codebuild-hash-files package-lock.json).
 *
 * Each file contributes its path and the digest of its content (not the
 * content itself), so the input is unambiguous whatever the file sizes and
 * the result changes when a file is renamed, added, removed or edited, and
 * never with mtimes or permissions (a fresh clone hashes the same). */
#include "cache/cache_internal.h"
#include "artifacts/artifacts.h"
#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

int cache_hash_files(const char *dir, const char *const *patterns, size_t npatterns, char hex[65],
		     size_t *nfiles, cbl_error **err)
{
	artifacts_list *list = NULL;
	cbl_error *e = NULL;
	EVP_MD_CTX *ctx = NULL;
	int rc = 0;
	hex[0] = '\0';
	*nfiles = 0;
	spec_artifact a = {0};
	a.files.n = npatterns;
	a.files.items = cbl_xcalloc(npatterns ? npatterns : 1, sizeof(spec_str));
	for (size_t i = 0; i < npatterns; i++)
		a.files.items[i].s = (char *)patterns[i];
	a.enable_symlinks = false;
	rc = artifacts_collect(&list, dir, &a, NULL, NULL, NULL, NULL, &e);
	free(a.files.items);
	if (rc < 0) {
		if (rc == CBL_ENOENT && e && !strcmp(e->msg, ARTIFACTS_NO_MATCH_MSG)) {
			cbl_error_free(e);
			return 0;
		}
		if (err && !*err)
			*err = e;
		else
			cbl_error_free(e);
		return rc;
	}
	ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t i = 0; i < list->n; i++) {
		const artifacts_entry *en = &list->items[i];
		unsigned char d[32];
		char dhex[65];
		int fd = open(en->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0 || cache_hash_fd(fd, d) < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", en->name);
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
		cache_hex(d, 32, dhex);
		EVP_DigestUpdate(ctx, en->name, strlen(en->name) + 1); /* with its NUL */
		EVP_DigestUpdate(ctx, dhex, 64);
		EVP_DigestUpdate(ctx, "\n", 1);
	}
	{
		unsigned char d[32];
		unsigned dl = 0;
		EVP_DigestFinal_ex(ctx, d, &dl);
		if (list->n)
			cache_hex(d, 32, hex);
	}
	*nfiles = list->n;
out:
	EVP_MD_CTX_free(ctx);
	artifacts_list_free(list);
	return rc;
}
