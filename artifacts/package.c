/* artifacts/package.c - packaging a selected file list as a ZIP archive or a
 * plain directory, published atomically.
 *
 * Determinism: libarchive's ZIP writer stores, per entry, a DOS date/time, an
 * "UT" extended-timestamp extra field (only the times set on the entry: we set
 * mtime alone) and a "ux" uid/gid extra field (we set 0/0).  No archive-level
 * time or random field exists, so the same list over the same files gives the
 * same bytes.  The DOS time is local time (libarchive uses localtime_r), so
 * archives made under different TZ settings differ in that field only.
 * The default 10240-byte blocking of libarchive would pad the last block with
 * zeros after the end-of-central-directory record; bytes_in_last_block = 1
 * turns that off.
 *
 * Digests are computed on the bytes as they are written (one pass), through
 * the custom write callback.
 */
#include "artifacts/artifacts.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define COPY_BUF (64 * 1024)

/* A name is safe to create under a directory: relative, no "", "." or ".."
 * components. */
static bool name_ok(const char *name)
{
	if (!name || !*name || name[0] == '/')
		return false;
	const char *s = name;
	for (;;) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		if (!e)
			return true;
		s = e + 1;
	}
}

static int validate_list(const artifacts_list *l, cbl_error **err)
{
	for (size_t i = 0; i < l->n; i++) {
		if (!l->items[i].path || !name_ok(l->items[i].name))
			return cbl_error_set(err, CBL_EINVAL, "invalid artifact entry name '%s'",
					     l->items[i].name ? l->items[i].name : "(null)");
	}
	return 0;
}

static int mkdir_parent(const char *path, cbl_error **err)
{
	char *p = cbl_xstrdup(path);
	char *slash = strrchr(p, '/');
	int rc = 0;
	if (slash && slash != p) {
		*slash = '\0';
		rc = cbl_mkdir_p(p, 0755, err);
	}
	free(p);
	return rc;
}

static void to_hex(const unsigned char *d, unsigned n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Opens an entry's content: the file itself, never following a final
 * symlink unless the entry is a symlink being followed. */
static int open_content(const artifacts_entry *e, int *fd_out, struct stat *st, cbl_error **err)
{
	int fd = open(e->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (e->is_symlink ? 0 : O_NOFOLLOW));
	if (fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", e->path);
	if (fstat(fd, st) < 0) {
		int en = errno;
		close(fd);
		return cbl_error_set_errno(err, CBL_EIO, en, "cannot stat '%s'", e->path);
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return cbl_error_set(err, CBL_EIO, "'%s' is not a regular file", e->path);
	}
	*fd_out = fd;
	return 0;
}

static int read_link(const char *path, char **out, cbl_error **err)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot read symlink '%s'", path);
	buf[n] = '\0';
	*out = cbl_xstrdup(buf);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* ZIP */

typedef struct zip_sink {
	int fd;
	EVP_MD_CTX *sha;
	EVP_MD_CTX *md5;
	int errnum;
	bool discard; /* failed: swallow the rest (see artifacts_write_zip) */
} zip_sink;

static la_ssize_t sink_write(struct archive *a, void *cd, const void *buf, size_t n)
{
	zip_sink *s = cd;
	if (s->discard)
		return (la_ssize_t)n;
	if (cbl_write_all(s->fd, buf, n) < 0) {
		s->errnum = errno;
		archive_set_error(a, errno, "write failed");
		return -1;
	}
	EVP_DigestUpdate(s->sha, buf, n);
	EVP_DigestUpdate(s->md5, buf, n);
	return (la_ssize_t)n;
}

static int sink_close(struct archive *a, void *cd)
{
	(void)a;
	(void)cd;
	return ARCHIVE_OK;
}

static int zip_fail(cbl_error **err, struct archive *a, const char *what, const char *name)
{
	const char *m = archive_error_string(a);
	return cbl_error_set(err, CBL_EIO, "cannot %s '%s': %s", what, name, m ? m : "libarchive error");
}

static int zip_one(struct archive *a, const artifacts_entry *e, bool keep_symlinks, char *buf,
		   cbl_error **err)
{
	struct archive_entry *ae = archive_entry_new();
	int fd = -1, rc = 0;
	char *target = NULL;
	struct stat st;

	archive_entry_set_pathname(ae, e->name);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	if (e->is_symlink && keep_symlinks) {
		if (lstat(e->path, &st) < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot stat '%s'", e->path);
			goto out;
		}
		if (!S_ISLNK(st.st_mode)) {
			rc = cbl_error_set(err, CBL_EIO, "'%s' is no longer a symlink", e->path);
			goto out;
		}
		rc = read_link(e->path, &target, err);
		if (rc < 0)
			goto out;
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_set_perm(ae, st.st_mode & 0777);
		archive_entry_set_mtime(ae, st.st_mtim.tv_sec, 0);
		archive_entry_set_size(ae, 0);
		archive_entry_set_symlink(ae, target);
		if (archive_write_header(a, ae) < ARCHIVE_WARN)
			rc = zip_fail(err, a, "add", e->name);
		goto out;
	}
	rc = open_content(e, &fd, &st, err);
	if (rc < 0)
		goto out;
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, st.st_mode & 0777);
	archive_entry_set_mtime(ae, st.st_mtim.tv_sec, 0);
	archive_entry_set_size(ae, st.st_size);
	if (archive_write_header(a, ae) < ARCHIVE_WARN) {
		rc = zip_fail(err, a, "add", e->name);
		goto out;
	}
	off_t total = 0;
	for (;;) {
		ssize_t r = read(fd, buf, COPY_BUF);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", e->path);
			goto out;
		}
		if (r == 0)
			break;
		if (total + r > st.st_size) {
			rc = cbl_error_set(err, CBL_EIO, "'%s' changed while being archived", e->path);
			goto out;
		}
		if (archive_write_data(a, buf, (size_t)r) != r) {
			rc = zip_fail(err, a, "write", e->name);
			goto out;
		}
		total += r;
	}
	if (total != st.st_size)
		rc = cbl_error_set(err, CBL_EIO, "'%s' changed while being archived", e->path);
out:
	if (fd >= 0)
		close(fd);
	free(target);
	archive_entry_free(ae);
	return rc;
}

int artifacts_write_zip(const artifacts_list *l, const char *dest_path, bool keep_symlinks,
			char sha256_hex[65], char md5_hex[33], cbl_error **err)
{
	int rc = 0;
	char *tmp = NULL, *buf = NULL;
	struct archive *a = NULL;
	zip_sink sink = {.fd = -1};

	rc = validate_list(l, err);
	if (rc < 0)
		return rc;
	rc = mkdir_parent(dest_path, err);
	if (rc < 0)
		return rc;
	tmp = cbl_xasprintf("%s.tmp.%ld", dest_path, (long)getpid());
	sink.sha = EVP_MD_CTX_new();
	sink.md5 = EVP_MD_CTX_new();
	if (!sink.sha || !sink.md5 || !EVP_DigestInit_ex(sink.sha, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(sink.md5, EVP_md5(), NULL)) {
		rc = cbl_error_set(err, CBL_EINTERNAL, "cannot initialise sha256/md5 digests");
		goto out;
	}
	sink.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (sink.fd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", tmp);
		goto out;
	}
	a = archive_write_new();
	if (!a) {
		rc = cbl_error_set(err, CBL_ENOMEM, "archive_write_new failed");
		goto out;
	}
	if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
	    archive_write_set_options(a, "zip:compression=deflate") != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK) {
		rc = zip_fail(err, a, "set up zip writer for", dest_path);
		goto out;
	}
	if (archive_write_open(a, &sink, NULL, sink_write, sink_close) != ARCHIVE_OK) {
		rc = zip_fail(err, a, "open", tmp);
		goto out;
	}
	buf = cbl_xmalloc(COPY_BUF);
	for (size_t i = 0; i < l->n; i++) {
		rc = zip_one(a, &l->items[i], keep_symlinks, buf, err);
		if (rc < 0)
			goto out;
	}
	if (archive_write_close(a) != ARCHIVE_OK) {
		rc = zip_fail(err, a, "finish", tmp);
		goto out;
	}
	if (close(sink.fd) < 0) {
		sink.fd = -1;
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", tmp);
		goto out;
	}
	sink.fd = -1;

	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dn = 0;
	if (!EVP_DigestFinal_ex(sink.sha, d, &dn) || dn != 32) {
		rc = cbl_error_set(err, CBL_EINTERNAL, "sha256 digest failed");
		goto out;
	}
	char sha[65], md5[33];
	to_hex(d, dn, sha);
	if (!EVP_DigestFinal_ex(sink.md5, d, &dn) || dn != 16) {
		rc = cbl_error_set(err, CBL_EINTERNAL, "md5 digest failed");
		goto out;
	}
	to_hex(d, dn, md5);
	if (rename(tmp, dest_path) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot rename '%s' to '%s'", tmp,
					 dest_path);
		goto out;
	}
	if (sha256_hex)
		memcpy(sha256_hex, sha, sizeof(sha));
	if (md5_hex)
		memcpy(md5_hex, md5, sizeof(md5));
out:
	if (a) {
		/* On failure the archive is still closed normally (that is what
		 * releases libarchive's deflate state; archive_write_fail() would
		 * leak it), but into a sink that discards the bytes. */
		sink.discard = true;
		archive_write_free(a);
	}
	if (sink.fd >= 0)
		close(sink.fd);
	if (rc < 0 && tmp)
		unlink(tmp);
	EVP_MD_CTX_free(sink.sha);
	EVP_MD_CTX_free(sink.md5);
	free(buf);
	free(tmp);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Directory (packaging NONE) */

/* Opens (creating as needed) the parent directory of `name` under root_fd,
 * never following symlinks; *last receives the final component (borrowed
 * from name). */
static int open_parent(int root_fd, const char *name, const char **last, int *out,
		       cbl_error **err)
{
	int dfd = dup(root_fd);
	if (dfd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "dup");
	const char *s = name;
	for (;;) {
		const char *e = strchr(s, '/');
		if (!e)
			break;
		char *comp = cbl_xstrndup(s, (size_t)(e - s));
		if (mkdirat(dfd, comp, 0755) < 0 && errno != EEXIST) {
			int en = errno;
			free(comp);
			close(dfd);
			return cbl_error_set_errno(err, CBL_EIO, en, "cannot create directory for '%s'",
						   name);
		}
		int nd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int en = errno;
		free(comp);
		close(dfd);
		if (nd < 0) {
			if (en == ENOTDIR || en == ELOOP)
				return cbl_error_set(err, CBL_EINVAL,
						     "artifact entry '%s' conflicts with a file of the same name",
						     name);
			return cbl_error_set_errno(err, CBL_EIO, en, "cannot open directory for '%s'",
						   name);
		}
		dfd = nd;
		s = e + 1;
	}
	*last = s;
	*out = dfd;
	return 0;
}

static int copy_fd(int in, int out, const char *src, char *buf, cbl_error **err)
{
	for (;;) {
		ssize_t r = read(in, buf, COPY_BUF);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", src);
		}
		if (r == 0)
			return 0;
		if (cbl_write_all(out, buf, (size_t)r) < 0)
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot write a copy of '%s'",
						   src);
	}
}

static int dir_one(int root_fd, const artifacts_entry *e, bool keep_symlinks, char *buf,
		   cbl_error **err)
{
	int dfd = -1, in = -1, outfd = -1, rc = 0;
	const char *last = NULL;
	char *target = NULL;
	struct stat st;

	rc = open_parent(root_fd, e->name, &last, &dfd, err);
	if (rc < 0)
		goto out;
	if (e->is_symlink && keep_symlinks) {
		if (lstat(e->path, &st) < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot stat '%s'", e->path);
			goto out;
		}
		rc = read_link(e->path, &target, err);
		if (rc < 0)
			goto out;
		if (symlinkat(target, dfd, last) < 0) {
			rc = errno == EEXIST
				     ? cbl_error_set(err, CBL_EINVAL, "duplicate artifact entry '%s'", e->name)
				     : cbl_error_set_errno(err, CBL_EIO, errno, "cannot create symlink '%s'",
							   e->name);
			goto out;
		}
		struct timespec ts[2] = {{0, UTIME_OMIT}, {st.st_mtim.tv_sec, 0}};
		utimensat(dfd, last, ts, AT_SYMLINK_NOFOLLOW); /* best effort */
		goto out;
	}
	rc = open_content(e, &in, &st, err);
	if (rc < 0)
		goto out;
	outfd = openat(dfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (outfd < 0) {
		rc = errno == EEXIST
			     ? cbl_error_set(err, CBL_EINVAL, "duplicate artifact entry '%s'", e->name)
			     : cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", e->name);
		goto out;
	}
	rc = copy_fd(in, outfd, e->path, buf, err);
	if (rc < 0)
		goto out;
	struct timespec ts[2] = {{0, UTIME_OMIT}, {st.st_mtim.tv_sec, 0}};
	if (fchmod(outfd, st.st_mode & 0777) < 0 || futimens(outfd, ts) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot set attributes of '%s'", e->name);
		goto out;
	}
	if (close(outfd) < 0) {
		outfd = -1;
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", e->name);
		goto out;
	}
	outfd = -1;
out:
	if (outfd >= 0)
		close(outfd);
	if (in >= 0)
		close(in);
	if (dfd >= 0)
		close(dfd);
	free(target);
	return rc;
}

/* Moves the finished tree `tmp` to `dest`, replacing whatever is there. */
static int publish_dir(const char *tmp, const char *dest, cbl_error **err)
{
	struct stat st;
	if (lstat(dest, &st) < 0) {
		if (errno != ENOENT)
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot stat '%s'", dest);
		if (rename(tmp, dest) < 0)
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot rename '%s' to '%s'", tmp,
						   dest);
		return 0;
	}
	/* Atomic swap: dest never disappears.  tmp then holds the old tree. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_EXCHANGE) == 0) {
		cbl_rm_rf(tmp, NULL); /* the old tree; best effort, dest is in place */
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot replace '%s'", dest);
	/* Filesystems without RENAME_EXCHANGE: move aside, move in, remove. */
	char *old = cbl_xasprintf("%s.old.%ld", dest, (long)getpid());
	int rc = cbl_rm_rf(old, err);
	if (rc < 0)
		goto out;
	if (rename(dest, old) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot move '%s' aside", dest);
		goto out;
	}
	if (rename(tmp, dest) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot rename '%s' to '%s'", tmp, dest);
		rename(old, dest);
		goto out;
	}
	cbl_rm_rf(old, NULL);
out:
	free(old);
	return rc;
}

int artifacts_write_dir(const artifacts_list *l, const char *dest_dir, bool keep_symlinks,
			cbl_error **err)
{
	int rc = 0, root_fd = -1;
	char *tmp = NULL, *buf = NULL, *dest = NULL;
	bool made = false;

	rc = validate_list(l, err);
	if (rc < 0)
		return rc;
	dest = cbl_xstrdup(dest_dir);
	for (size_t n = strlen(dest); n > 1 && dest[n - 1] == '/'; n--)
		dest[n - 1] = '\0';
	rc = mkdir_parent(dest, err);
	if (rc < 0)
		goto out;
	tmp = cbl_xasprintf("%s.tmp.%ld", dest, (long)getpid());
	rc = cbl_rm_rf(tmp, err);
	if (rc < 0)
		goto out;
	if (mkdir(tmp, 0755) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", tmp);
		goto out;
	}
	made = true;
	root_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root_fd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", tmp);
		goto out;
	}
	buf = cbl_xmalloc(COPY_BUF);
	for (size_t i = 0; i < l->n; i++) {
		rc = dir_one(root_fd, &l->items[i], keep_symlinks, buf, err);
		if (rc < 0)
			goto out;
	}
	close(root_fd);
	root_fd = -1;
	rc = publish_dir(tmp, dest, err);
	if (rc == 0)
		made = false;
out:
	if (root_fd >= 0)
		close(root_fd);
	if (made)
		cbl_rm_rf(tmp, NULL);
	free(buf);
	free(tmp);
	free(dest);
	return rc;
}
