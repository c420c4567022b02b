/* artifacts/package.c - packaging NONE (a plain directory, published
 * atomically) and the checks shared with the ZIP writer (artifacts/zip.c).
 */
#include "artifacts/artifacts.h"
#include "artifacts/artifacts_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"
#include "util/safeopen.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

int artifacts_validate_list(const artifacts_list *l, cbl_error **err)
{
	for (size_t i = 0; i < l->n; i++) {
		if (!l->items[i].path || !name_ok(l->items[i].name))
			return cbl_error_set(err, CBL_EINVAL, "invalid artifact entry name '%s'",
					     l->items[i].name ? l->items[i].name : "(null)");
	}
	return 0;
}

int artifacts_mkdir_parent(const char *path, cbl_error **err)
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

void artifacts_to_hex(const unsigned char *d, unsigned n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int artifacts_entry_open(const artifacts_entry *e, int *fd_out, struct stat *st, cbl_error **err)
{
	int fd;
	if (e->rel) {
		cbl_error *oe = NULL;
		fd = cbl_open_beneath(e->dirfd, e->rel, O_RDONLY | O_NONBLOCK, 0,
				      e->is_symlink ? 0 : CBL_RESOLVE_NO_SYMLINKS, &oe);
		if (fd < 0) {
			int rc = cbl_error_set(err, CBL_EIO, "cannot open '%s': %s", e->path, oe ? oe->msg : "error");
			cbl_error_free(oe);
			return rc;
		}
	} else {
		fd = open(e->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (e->is_symlink ? 0 : O_NOFOLLOW));
		if (fd < 0)
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", e->path);
	}
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

int artifacts_entry_open_parent(const artifacts_entry *e, int *fd_out, const char **last, cbl_error **err)
{
	const char *p = e->rel ? e->rel : e->path;
	const char *slash = strrchr(p, '/');
	char *dir = slash ? cbl_xstrndup(p, (size_t)(slash - p)) : cbl_xstrdup(".");
	int fd;
	if (e->rel) {
		cbl_error *oe = NULL;
		fd = cbl_open_dir_beneath(e->dirfd, dir, CBL_RESOLVE_NO_SYMLINKS, &oe);
		if (fd < 0) {
			int rc = cbl_error_set(err, CBL_EIO, "cannot open the directory of '%s': %s", e->path,
					       oe ? oe->msg : "error");
			cbl_error_free(oe);
			free(dir);
			return rc;
		}
	} else {
		fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open the directory of '%s'", e->path);
			free(dir);
			return rc;
		}
	}
	free(dir);
	*fd_out = fd;
	*last = slash ? slash + 1 : p;
	return 0;
}

int artifacts_entry_readlink(const artifacts_entry *e, struct stat *st, char **target, cbl_error **err)
{
	int pfd = -1, rc;
	const char *last = NULL;
	char buf[PATH_MAX + 1];
	rc = artifacts_entry_open_parent(e, &pfd, &last, err);
	if (rc < 0)
		return rc;
	if (fstatat(pfd, last, st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot stat '%s'", e->path);
		goto out;
	}
	if (!S_ISLNK(st->st_mode)) {
		rc = cbl_error_set(err, CBL_EIO, "'%s' is no longer a symlink", e->path);
		goto out;
	}
	ssize_t n = readlinkat(pfd, last, buf, sizeof(buf) - 1);
	if (n < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot read symlink '%s'", e->path);
		goto out;
	}
	buf[n] = '\0';
	*target = cbl_xstrdup(buf);
out:
	close(pfd);
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

static int copy_fd(int in, int out, const char *src, char *buf, int64_t deadline, cbl_error **err)
{
	for (;;) {
		if (deadline && cbl_mono_us() >= deadline)
			return cbl_error_set(err, CBL_ETIMEDOUT, "the build timed out while copying '%s'", src);
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

static int dir_one(int root_fd, const artifacts_entry *e, bool keep_symlinks, char *buf, int64_t deadline,
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
		rc = artifacts_entry_readlink(e, &st, &target, err);
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
	rc = artifacts_entry_open(e, &in, &st, err);
	if (rc < 0)
		goto out;
	outfd = openat(dfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (outfd < 0) {
		rc = errno == EEXIST
			     ? cbl_error_set(err, CBL_EINVAL, "duplicate artifact entry '%s'", e->name)
			     : cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", e->name);
		goto out;
	}
	rc = copy_fd(in, outfd, e->path, buf, deadline, err);
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
	return artifacts_write_dir_deadline(l, dest_dir, keep_symlinks, 0, err);
}

int artifacts_write_dir_deadline(const artifacts_list *l, const char *dest_dir, bool keep_symlinks,
				 int64_t deadline, cbl_error **err)
{
	int rc = 0, root_fd = -1;
	char *tmp = NULL, *buf = NULL, *dest = NULL;
	bool made = false;

	rc = artifacts_validate_list(l, err);
	if (rc < 0)
		return rc;
	dest = cbl_xstrdup(dest_dir);
	for (size_t n = strlen(dest); n > 1 && dest[n - 1] == '/'; n--)
		dest[n - 1] = '\0';
	rc = artifacts_mkdir_parent(dest, err);
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
		rc = dir_one(root_fd, &l->items[i], keep_symlinks, buf, deadline, err);
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
