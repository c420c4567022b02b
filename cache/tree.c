/* cache/tree.c - the file-level machinery of snapshots: digests, the
 * canonical listing an object is named by, copies (reflink first), and small
 * directory helpers.
 *
 * Why a listing rather than a hash of an archive: a snapshot is a directory
 * tree that is mounted as is, so its identity is the list of its entries
 * (type, mode, size, mtime, content digest, path) in a fixed order.  Files
 * hard-linked from the previous snapshot keep the digest recorded in its
 * listing, so only new or changed content is ever read to hash it. */
#include "cache/cache_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define IO_BUF (256u << 10)

void cache_hex(const unsigned char *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		if (i % 2)
			out[i / 2] = (unsigned char)(out[i / 2] | v);
		else
			out[i / 2] = (unsigned char)(v << 4);
	}
	return 0;
}

void cache_random_hex(char *out, size_t nbytes)
{
	unsigned char r[32];
	if (nbytes > sizeof(r))
		nbytes = sizeof(r);
	size_t got = 0;
	while (got < nbytes) {
		ssize_t n = getrandom(r + got, nbytes - got, 0);
		if (n < 0) {
			/* never expected; still unique enough for a temp name */
			for (; got < nbytes; got++)
				r[got] = (unsigned char)(rand() ^ getpid());
			break;
		}
		got += (size_t)n;
	}
	cache_hex(r, nbytes, out);
}

int cache_hash_fd(int fd, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *buf = cbl_xmalloc(IO_BUF);
	int rc = 0;
	unsigned dl = 0;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (;;) {
		ssize_t r = read(fd, buf, IO_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)r);
	}
	int e = errno;
	EVP_DigestFinal_ex(ctx, out, &dl);
	EVP_MD_CTX_free(ctx);
	free(buf);
	errno = e;
	return rc;
}

/* ------------------------------------------------------------ digest map */

typedef struct slot {
	char *key;
	unsigned char d[32];
} slot;

struct cache_digest_map {
	slot *s;
	size_t cap;
	size_t n;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

cache_digest_map *cache_digest_map_new(void)
{
	cache_digest_map *m = cbl_xcalloc(1, sizeof(*m));
	m->cap = 1024;
	m->s = cbl_xcalloc(m->cap, sizeof(slot));
	return m;
}

static slot *find_slot(slot *s, size_t cap, const char *key)
{
	size_t i = (size_t)(fnv(key) & (cap - 1));
	while (s[i].key && strcmp(s[i].key, key))
		i = (i + 1) & (cap - 1);
	return &s[i];
}

void cache_digest_map_put(cache_digest_map *m, const char *path, const unsigned char d[32])
{
	if ((m->n + 1) * 10 > m->cap * 7) {
		size_t nc = m->cap * 2;
		slot *ns = cbl_xcalloc(nc, sizeof(slot));
		for (size_t i = 0; i < m->cap; i++)
			if (m->s[i].key)
				*find_slot(ns, nc, m->s[i].key) = m->s[i];
		free(m->s);
		m->s = ns;
		m->cap = nc;
	}
	slot *sl = find_slot(m->s, m->cap, path);
	if (!sl->key) {
		sl->key = cbl_xstrdup(path);
		m->n++;
	}
	memcpy(sl->d, d, 32);
}

const unsigned char *cache_digest_map_get(const cache_digest_map *m, const char *path)
{
	if (!m)
		return NULL;
	slot *sl = find_slot(m->s, m->cap, path);
	return sl->key ? sl->d : NULL;
}

void cache_digest_map_free(cache_digest_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->s[i].key);
	free(m->s);
	free(m);
}

/* ---------------------------------------------------------------- listing */

void cache_escape(cbl_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			cbl_buf_puts(b, "\\\\");
		else if (*s == '\n')
			cbl_buf_puts(b, "\\n");
		else if (*s == '\t')
			cbl_buf_puts(b, "\\t");
		else
			cbl_buf_putc(b, *s);
	}
}

static void unescape(cbl_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			i++;
			cbl_buf_putc(b, s[i] == 'n' ? '\n' : s[i] == 't' ? '\t' : s[i]);
		} else {
			cbl_buf_putc(b, s[i]);
		}
	}
}

int cache_listing_parse(const char *text, size_t len, cache_digest_map *map, cbl_error **err)
{
	const char *p = text, *end = text + len;
	cbl_buf path = CBL_BUF_INIT;
	int rc = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le - p > 2 && p[0] == 'f' && p[1] == ' ') {
			/* f <mode> <size> <mtime> <hex> <path> */
			const char *f = p + 2;
			for (int k = 0; k < 3 && f; k++) {
				f = memchr(f, ' ', (size_t)(le - f));
				if (f)
					f++;
			}
			unsigned char d[32];
			if (!f || le - f < 66 || f[64] != ' ' || unhex(f, d, 32) < 0) {
				rc = cbl_error_set(err, CBL_EINVAL, "corrupt cache listing line: %.*s",
						   (int)(le - p > 200 ? 200 : le - p), p);
				break;
			}
			cbl_buf_reset(&path);
			unescape(&path, f + 65, (size_t)(le - f - 65));
			cache_digest_map_put(map, cbl_buf_cstr(&path), d);
		}
		p = nl ? nl + 1 : end;
	}
	cbl_buf_release(&path);
	return rc;
}

void cache_listing_header(const cache_base *bases, size_t n, cbl_buf *out)
{
	cbl_buf_printf(out, "cbl-cache %d\n", CACHE_FORMAT);
	for (size_t i = 0; i < n; i++) {
		cbl_buf_printf(out, "b %zu ", i);
		cache_escape(out, bases[i].base);
		cbl_buf_putc(out, '\n');
		for (size_t k = 0; k < bases[i].pats.n; k++) {
			cbl_buf_printf(out, "g %zu ", i);
			cache_escape(out, bases[i].pats.v[k]);
			cbl_buf_putc(out, '\n');
		}
	}
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cache_read_dir_sorted(int fd, cbl_strv *out, cbl_error **err)
{
	if (fd < 0)
		return 0;
	int d2 = dup(fd);
	DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
	if (!d) {
		if (d2 >= 0)
			close(d2);
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot read a cache directory");
	}
	rewinddir(d);
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cbl_strv_push(out, de->d_name);
	}
	int e = errno;
	closedir(d);
	if (e)
		return cbl_error_set_errno(err, CBL_EIO, e, "cannot read a cache directory");
	if (out->n)
		qsort(out->v, out->n, sizeof(char *), cmp_strp);
	return 0;
}

typedef struct lctx {
	const cache_digest_map *map;
	cbl_buf *out;
	uint64_t files, bytes, hashed;
	bool prune;
	cbl_buf path;
	cbl_error **err;
} lctx;

static void put_entry(lctx *c, char type, const struct stat *st, const char *hex, bool times)
{
	cbl_buf_printf(c->out, "%c %04o %llu ", type, (unsigned)(st->st_mode & 07777),
		       type == 'd' ? 0ull : (unsigned long long)st->st_size);
	if (times)
		cbl_buf_printf(c->out, "%lld.%09ld ", (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
	else
		cbl_buf_puts(c->out, "0 ");
	cbl_buf_puts(c->out, hex ? hex : "-");
	cbl_buf_putc(c->out, ' ');
	cache_escape(c->out, cbl_buf_cstr(&c->path));
}

static int walk_listing(lctx *c, int dfd, bool *nonempty, int depth)
{
	cbl_strv names = CBL_STRV_INIT;
	int rc = cache_read_dir_sorted(dfd, &names, c->err);
	if (rc < 0)
		return rc;
	if (depth > 512) {
		cbl_strv_release(&names);
		return cbl_error_set(c->err, CBL_EINVAL, "cache snapshot nested too deep");
	}
	size_t plen = c->path.len;
	for (size_t i = 0; !rc && i < names.n; i++) {
		const char *n = names.v[i];
		struct stat st;
		c->path.len = plen;
		c->path.ptr[plen] = '\0';
		cbl_buf_putc(&c->path, '/');
		cbl_buf_puts(&c->path, n);
		if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot stat '%s'", c->path.ptr);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			size_t mark = c->out->len;
			put_entry(c, 'd', &st, NULL, false);
			cbl_buf_putc(c->out, '\n');
			int sub = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot open '%s'", c->path.ptr);
				break;
			}
			bool sub_nonempty = false;
			rc = walk_listing(c, sub, &sub_nonempty, depth + 1);
			close(sub);
			if (!rc && !sub_nonempty) {
				c->out->len = mark;
				if (c->out->ptr)
					c->out->ptr[mark] = '\0';
				if (c->prune)
					unlinkat(dfd, n, AT_REMOVEDIR);
			} else if (!rc) {
				*nonempty = true;
			}
		} else if (S_ISREG(st.st_mode)) {
			const unsigned char *d = cache_digest_map_get(c->map, c->path.ptr);
			unsigned char buf[32];
			if (!d) {
				int fd = openat(dfd, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
				if (fd < 0 || cache_hash_fd(fd, buf) < 0) {
					rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot read '%s'", c->path.ptr);
					if (fd >= 0)
						close(fd);
					break;
				}
				close(fd);
				d = buf;
				c->hashed++;
			}
			char hex[65];
			cache_hex(d, 32, hex);
			put_entry(c, 'f', &st, hex, true);
			cbl_buf_putc(c->out, '\n');
			c->files++;
			c->bytes += (uint64_t)st.st_size;
			*nonempty = true;
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t l = readlinkat(dfd, n, target, sizeof(target) - 1);
			if (l < 0) {
				rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot read link '%s'", c->path.ptr);
				break;
			}
			target[l] = '\0';
			put_entry(c, 'l', &st, NULL, true);
			cbl_buf_putc(c->out, '\t');
			cache_escape(c->out, target);
			cbl_buf_putc(c->out, '\n');
			*nonempty = true;
		} else if (c->prune) {
			/* nothing else belongs in a snapshot */
			unlinkat(dfd, n, 0);
		}
	}
	c->path.len = plen;
	if (c->path.ptr)
		c->path.ptr[plen] = '\0';
	cbl_strv_release(&names);
	return rc;
}

static int listing_run(int dirfd, const char *header, const cache_digest_map *map, size_t nbases,
		       bool prune, cbl_buf *listing, char name_hex[65], uint64_t *pf, uint64_t *pb,
		       uint64_t *ph, cbl_error **err)
{
	lctx c = {0};
	c.map = map;
	c.out = listing;
	c.prune = prune;
	c.err = err;
	int rc = 0;
	cbl_buf_puts(listing, header);
	for (size_t i = 0; i < nbases; i++) {
		char name[32];
		snprintf(name, sizeof(name), "p%zu", i);
		c.files = c.bytes = c.hashed = 0;
		int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			cbl_buf_reset(&c.path);
			cbl_buf_puts(&c.path, name);
			bool nonempty = false;
			rc = walk_listing(&c, fd, &nonempty, 0);
			close(fd);
			if (rc < 0)
				break;
			if (!nonempty && prune)
				unlinkat(dirfd, name, AT_REMOVEDIR);
		}
		if (pf)
			pf[i] = c.files;
		if (pb)
			pb[i] = c.bytes;
		if (ph)
			ph[i] = c.hashed;
	}
	cbl_buf_release(&c.path);
	if (rc < 0)
		return rc;
	unsigned char d[32];
	unsigned dl = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, cbl_buf_cstr(listing), listing->len);
	EVP_DigestFinal_ex(ctx, d, &dl);
	EVP_MD_CTX_free(ctx);
	cache_hex(d, 32, name_hex);
	return 0;
}

int cache_listing_build(int dirfd, const char *header, const cache_digest_map *map, size_t nbases,
			cbl_buf *listing, char name_hex[65], uint64_t *per_base_files,
			uint64_t *per_base_bytes, uint64_t *per_base_hashed, cbl_error **err)
{
	return listing_run(dirfd, header, map, nbases, true, listing, name_hex, per_base_files,
			   per_base_bytes, per_base_hashed, err);
}

int cache_verify_object(cache_store *s, const char *hex, cbl_error **err)
{
	char *files_path = cbl_xasprintf("%s/%s/files", s->objects, hex);
	char *text = NULL;
	size_t len = 0;
	int dfd = -1, rc;
	cbl_buf header = CBL_BUF_INIT, listing = CBL_BUF_INIT;
	rc = cbl_read_file(files_path, 1u << 30, &text, &len, err);
	if (rc < 0)
		goto out;
	size_t nbases = 0;
	for (const char *p = text; p < text + len;) {
		const char *nl = memchr(p, '\n', (size_t)(text + len - p));
		if (!nl)
			break;
		if (strncmp(p, "cbl-cache ", 10) && strncmp(p, "b ", 2) && strncmp(p, "g ", 2))
			break;
		if (!strncmp(p, "b ", 2))
			nbases++;
		cbl_buf_append(&header, p, (size_t)(nl + 1 - p));
		p = nl + 1;
	}
	dfd = openat(s->objects_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		rc = cbl_error_set_errno(err, CBL_ENOENT, errno, "cache object %s", hex);
		goto out;
	}
	char name[65];
	rc = listing_run(dfd, cbl_buf_cstr(&header), NULL, nbases, false, &listing, name, NULL, NULL, NULL,
			 err);
	if (rc < 0)
		goto out;
	if (strcmp(name, hex) || listing.len != len || memcmp(listing.ptr, text, len))
		rc = cbl_error_set(err, CBL_EINVAL, "cache object %s does not match its content (%s)", hex,
				   name);
out:
	if (dfd >= 0)
		close(dfd);
	free(files_path);
	free(text);
	cbl_buf_release(&header);
	cbl_buf_release(&listing);
	return rc;
}

/* ------------------------------------------------------------- copying */

int cache_copy_file(int sdir, const char *sname, int ddir, const char *dname, const struct stat *st,
		    unsigned char *digest, cbl_error **err)
{
	int in = -1, out = -1, rc = 0;
	char *buf = NULL;
	EVP_MD_CTX *ctx = NULL;
	in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", sname);
	out = openat(ddir, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", dname);
		goto out;
	}
	bool cloned = st->st_size > 0 && ioctl(out, FICLONE, in) == 0;
	if (digest) {
		ctx = EVP_MD_CTX_new();
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	}
	if (!cloned && !digest && st->st_size > 0) {
		for (;;) {
			ssize_t n = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
				      errno == EOPNOTSUPP)) {
				break; /* read/write below */
			}
			if (n < 0) {
				rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot copy '%s'", sname);
				goto out;
			}
			if (n == 0)
				goto copied;
		}
	}
	if (cloned && !digest)
		goto copied;
	buf = cbl_xmalloc(IO_BUF);
	if (lseek(in, 0, SEEK_SET) < 0 || (!cloned && lseek(out, 0, SEEK_SET) < 0) ||
	    (!cloned && ftruncate(out, 0) < 0)) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot copy '%s'", sname);
		goto out;
	}
	for (;;) {
		ssize_t r = read(in, buf, IO_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", sname);
			goto out;
		}
		if (r == 0)
			break;
		if (ctx)
			EVP_DigestUpdate(ctx, buf, (size_t)r);
		if (!cloned && cbl_write_all(out, buf, (size_t)r) < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", dname);
			goto out;
		}
	}
copied:
	if (fchmod(out, st->st_mode & 07777) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot chmod '%s'", dname);
		goto out;
	}
	{
		struct timespec ts[2] = {st->st_atim, st->st_mtim};
		if (futimens(out, ts) < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot set the times of '%s'", dname);
			goto out;
		}
	}
	if (ctx) {
		unsigned dl = 0;
		EVP_DigestFinal_ex(ctx, digest, &dl);
	}
out:
	if (ctx)
		EVP_MD_CTX_free(ctx);
	free(buf);
	if (in >= 0)
		close(in);
	if (out >= 0) {
		if (close(out) < 0 && !rc)
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", dname);
		if (rc)
			unlinkat(ddir, dname, 0);
	}
	return rc;
}

typedef struct mctx {
	uint64_t files, bytes;
	cbl_buf dpath;
	cbl_error **err;
} mctx;

/* Removes whatever is at dfd/name (a directory recursively). */
static int remove_at(mctx *c, int dfd, const char *name, const struct stat *st)
{
	if (!S_ISDIR(st->st_mode)) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot replace '%s/%s'",
						   cbl_buf_cstr(&c->dpath), name);
		return 0;
	}
	char *p = cbl_xasprintf("%s/%s", cbl_buf_cstr(&c->dpath), name);
	int rc = cbl_rm_rf(p, c->err);
	free(p);
	return rc;
}

static int merge_dir(mctx *c, int sfd, int dfd, int depth)
{
	cbl_strv names = CBL_STRV_INIT;
	int rc = cache_read_dir_sorted(sfd, &names, c->err);
	if (rc < 0)
		return rc;
	if (depth > 512) {
		cbl_strv_release(&names);
		return cbl_error_set(c->err, CBL_EINVAL, "cache snapshot nested too deep");
	}
	size_t plen = c->dpath.len;
	for (size_t i = 0; !rc && i < names.n; i++) {
		const char *n = names.v[i];
		struct stat st, dt;
		if (fstatat(sfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot stat '%s'", n);
			break;
		}
		bool dexists = fstatat(dfd, n, &dt, AT_SYMLINK_NOFOLLOW) == 0;
		if (S_ISDIR(st.st_mode)) {
			if (dexists && !S_ISDIR(dt.st_mode)) {
				if ((rc = remove_at(c, dfd, n, &dt)) < 0)
					break;
				dexists = false;
			}
			if (!dexists && mkdirat(dfd, n, 0700) < 0) {
				rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot create '%s/%s'",
							 cbl_buf_cstr(&c->dpath), n);
				break;
			}
			int s2 = openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int d2 = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (s2 < 0 || d2 < 0) {
				rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot open '%s/%s'",
							 cbl_buf_cstr(&c->dpath), n);
			} else {
				cbl_buf_putc(&c->dpath, '/');
				cbl_buf_puts(&c->dpath, n);
				rc = merge_dir(c, s2, d2, depth + 1);
				c->dpath.len = plen;
				c->dpath.ptr[plen] = '\0';
				if (!rc) {
					fchmod(d2, st.st_mode & 07777);
					struct timespec ts[2] = {st.st_atim, st.st_mtim};
					futimens(d2, ts);
				}
			}
			if (s2 >= 0)
				close(s2);
			if (d2 >= 0)
				close(d2);
			continue;
		}
		if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
			continue;
		if (dexists && (rc = remove_at(c, dfd, n, &dt)) < 0)
			break;
		if (S_ISREG(st.st_mode)) {
			rc = cache_copy_file(sfd, n, dfd, n, &st, NULL, c->err);
			c->files++;
			c->bytes += (uint64_t)st.st_size;
		} else {
			char target[4096];
			ssize_t l = readlinkat(sfd, n, target, sizeof(target) - 1);
			if (l < 0 || (target[l] = '\0', symlinkat(target, dfd, n) < 0)) {
				rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot copy symlink '%s/%s'",
							 cbl_buf_cstr(&c->dpath), n);
				break;
			}
			struct timespec ts[2] = {st.st_atim, st.st_mtim};
			utimensat(dfd, n, ts, AT_SYMLINK_NOFOLLOW);
		}
	}
	cbl_strv_release(&names);
	return rc;
}

int cache_open_beneath(const char *root, const char *rel, bool create)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *copy = cbl_xstrdup(rel), *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); fd >= 0 && c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, ".") || !strcmp(c, "..")) {
			close(fd);
			fd = -1;
			errno = EINVAL;
			break;
		}
		int sub = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0 && errno == ENOENT && create && (mkdirat(fd, c, 0755) == 0 || errno == EEXIST))
			sub = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		fd = sub;
		errno = e;
	}
	int e = errno;
	free(copy);
	errno = e;
	return fd;
}

int cache_copy_merge(const char *src, const char *dst_root, const char *dst_rel, uint64_t *files,
		     uint64_t *bytes, cbl_error **err)
{
	int sfd = -1, dfd = -1, rc = 0;
	mctx c = {0};
	c.err = err;
	struct stat st;
	char *dst = dst_rel && *dst_rel ? cbl_path_join(dst_root, dst_rel) : cbl_xstrdup(dst_root);
	bool created = false;
	sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 || fstat(sfd, &st) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", src);
		goto out;
	}
	if (dst_rel) {
		dfd = cache_open_beneath(dst_root, dst_rel, false);
		if (dfd < 0 && errno == ENOENT) {
			/* the root is the caller's own path: made like mkdir -p */
			created = true;
			if ((rc = cbl_mkdir_p(dst_root, 0755, err)) < 0)
				goto out;
			dfd = cache_open_beneath(dst_root, dst_rel, true);
		}
	} else {
		struct stat dt;
		created = lstat(dst, &dt) < 0;
		if ((rc = cbl_mkdir_p(dst, 0755, err)) < 0)
			goto out;
		dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (dfd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", dst);
		goto out;
	}
	cbl_buf_puts(&c.dpath, dst);
	rc = merge_dir(&c, sfd, dfd, 0);
	if (!rc && created)
		fchmod(dfd, st.st_mode & 07777);
out:
	if (files)
		*files = c.files;
	if (bytes)
		*bytes = c.bytes;
	cbl_buf_release(&c.dpath);
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	free(dst);
	return rc;
}

int cache_write_durable(const char *dir, const char *name, const char *data, size_t len,
			cbl_error **err)
{
	char *path = cbl_path_join(dir, name);
	int rc = cbl_write_file_atomic(path, data, len, 0644, true, err);
	free(path);
	if (rc < 0)
		return rc;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

void cache_format_size(cbl_buf *b, uint64_t bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		cbl_buf_printf(b, "%llu B", (unsigned long long)bytes);
	else
		cbl_buf_printf(b, "%.1f %s", v, units[u]);
}
