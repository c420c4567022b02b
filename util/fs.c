#include "util/fs.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <unistd.h>

#include "util/banned.h"

char *cbl_path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	if (la && a[la - 1] == '/')
		return cbl_xasprintf("%s%s", a, b[0] == '/' ? b + 1 : b);
	return cbl_xasprintf("%s/%s", a, b[0] == '/' ? b + 1 : b);
}

int cbl_mkdir_p(const char *path, mode_t mode, cbl_error **err)
{
	char *p = cbl_xstrdup(path);
	int rc = 0;
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create directory '%s'", p);
				goto out;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		rc = cbl_error_set(err, CBL_EIO, "'%s' exists and is not a directory", path);
out:
	free(p);
	return rc;
}

int cbl_read_fd(int fd, const char *what, size_t max_size, char **out, size_t *len, cbl_error **err)
{
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	if (!max_size)
		max_size = 64u << 20;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = cbl_xrealloc(buf, cap);
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", what);
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max_size) {
			rc = cbl_error_set(err, CBL_EINVAL, "'%s' is larger than %zu bytes", what, max_size);
			goto out;
		}
	}
	if (!buf)
		buf = cbl_xmalloc(1);
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
	if (len)
		*len = n;
out:
	free(buf);
	return rc;
}

static int read_file_flags(const char *path, int flags, size_t max_size, char **out, size_t *len,
			   cbl_error **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return cbl_error_set_errno(err, errno == ENOENT ? CBL_ENOENT : CBL_EIO, errno, "cannot open '%s'",
					   path);
	int rc = 0;
	if (flags & O_NOFOLLOW) {
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
			rc = cbl_error_set(err, CBL_EIO, "'%s' is not a regular file", path);
	}
	if (!rc)
		rc = cbl_read_fd(fd, path, max_size, out, len, err);
	close(fd);
	return rc;
}

int cbl_read_file(const char *path, size_t max_size, char **out, size_t *len, cbl_error **err)
{
	return read_file_flags(path, 0, max_size, out, len, err);
}

int cbl_read_regular_file(const char *path, size_t max_size, char **out, size_t *len,
			  cbl_error **err)
{
	/* O_NONBLOCK: a FIFO planted there must not block the reader */
	return read_file_flags(path, O_NOFOLLOW | O_NONBLOCK, max_size, out, len, err);
}

int cbl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int cbl_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode, bool sync,
			  cbl_error **err)
{
	char *tmp = cbl_xasprintf("%s.tmp.%ld", path, (long)getpid());
	int rc = 0;
	unlink(tmp); /* a leftover, or something planted: never written through */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", tmp);
		goto out;
	}
	if (cbl_write_all(fd, data, len) < 0 || (sync && fsync(fd) < 0)) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", tmp);
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot rename '%s' to '%s'", tmp, path);
		unlink(tmp);
	}
out:
	free(tmp);
	return rc;
}

static int rm_rf_at(int parent, const char *name, int depth)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -1 : 0;
	if (depth > 256)
		return -1;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* an unreadable directory: make it readable and retry once */
		if (fchmodat(parent, name, 0700, 0) < 0)
			return -1;
		fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -1;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rm_rf_at(dirfd(d), de->d_name, depth + 1) < 0)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

int cbl_rm_rf(const char *path, cbl_error **err)
{
	if (rm_rf_at(AT_FDCWD, path, 0) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot remove '%s'", path);
	return 0;
}

static int copy_file_at(int sfd_dir, int dfd_dir, const char *name, const struct stat *st)
{
	int in = openat(sfd_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -1;
	int out = openat(dfd_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			 st->st_mode & 07777);
	if (out < 0) {
		close(in);
		return -1;
	}
	int rc = 0;
	if (st->st_size > 0 && ioctl(out, FICLONE, in) < 0) {
		off_t left = st->st_size;
		while (left > 0) {
			ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
				/* plain read/write fallback */
				char buf[65536];
				ssize_t r;
				while ((r = read(in, buf, sizeof(buf))) > 0)
					if (cbl_write_all(out, buf, (size_t)r) < 0) {
						rc = -1;
						break;
					}
				if (r < 0)
					rc = -1;
				break;
			}
			if (n <= 0) {
				rc = n < 0 ? -1 : 0;
				break;
			}
			left -= n;
		}
	}
	if (rc == 0) {
		fchmod(out, st->st_mode & 07777);
		struct timespec ts[2] = {st->st_atim, st->st_mtim};
		futimens(out, ts);
	}
	int e = errno;
	close(in);
	close(out);
	errno = e;
	return rc;
}

/* What a copy leaves out: sorted paths relative to the tree's top. */
typedef struct copy_skip {
	const char *const *v;
	size_t n;
} copy_skip;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* rel "" is the top: name alone */
static bool skipped(const copy_skip *sk, const char *rel, const char *name)
{
	if (!sk || !sk->n)
		return false;
	char *key = *rel ? cbl_xasprintf("%s/%s", rel, name) : cbl_xstrdup(name);
	bool hit = bsearch(&key, sk->v, sk->n, sizeof(*sk->v), cmp_str) != NULL;
	free(key);
	return hit;
}

static int copy_dir_at(int sfd, int dfd, const char *path, const char *rel, const copy_skip *sk, int depth,
		       cbl_error **err)
{
	if (depth > 256)
		return cbl_error_set(err, CBL_EINVAL, "'%s': directories nested too deep", path);
	DIR *d = fdopendir(dup(sfd));
	if (!d)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", path);
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") || skipped(sk, rel, n))
			continue;
		struct stat st;
		if (fstatat(sfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot stat '%s/%s'", path, n);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(dfd, n, 0700) < 0) {
				rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s/%s'", path, n);
				break;
			}
			int s2 = openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int d2 = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (s2 < 0 || d2 < 0) {
				rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s/%s'", path, n);
			} else {
				char *sub = cbl_xasprintf("%s/%s", path, n);
				char *subrel = sk && sk->n ? (*rel ? cbl_xasprintf("%s/%s", rel, n) : cbl_xstrdup(n)) : NULL;
				rc = copy_dir_at(s2, d2, sub, subrel ? subrel : "", sk, depth + 1, err);
				free(subrel);
				free(sub);
				fchmod(d2, st.st_mode & 07777);
				struct timespec ts[2] = {st.st_atim, st.st_mtim};
				futimens(d2, ts);
			}
			if (s2 >= 0)
				close(s2);
			if (d2 >= 0)
				close(d2);
		} else if (S_ISREG(st.st_mode)) {
			if (copy_file_at(sfd, dfd, n, &st) < 0)
				rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot copy '%s/%s'", path, n);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t l = readlinkat(sfd, n, target, sizeof(target) - 1);
			if (l < 0 || (target[l] = '\0', symlinkat(target, dfd, n) < 0))
				rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot copy symlink '%s/%s'", path, n);
			else {
				struct timespec ts[2] = {st.st_atim, st.st_mtim};
				utimensat(dfd, n, ts, AT_SYMLINK_NOFOLLOW);
			}
		}
		/* fifos, sockets and devices are not part of a source tree */
	}
	closedir(d);
	return rc;
}

int cbl_copy_tree(const char *src, const char *dst, cbl_error **err)
{
	return cbl_copy_tree_except(src, dst, NULL, err);
}

int cbl_copy_tree_except(const char *src, const char *dst, const char *const *skip, cbl_error **err)
{
	copy_skip sk = {skip, 0};
	while (skip && skip[sk.n])
		sk.n++;
	int sfd = -1, dfd = -1, rc = 0;
	struct stat st;
	sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 || fstat(sfd, &st) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", src);
		goto out;
	}
	if (mkdir(dst, 0700) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", dst);
		goto out;
	}
	dfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", dst);
		goto out;
	}
	rc = copy_dir_at(sfd, dfd, src, "", &sk, 0, err);
	if (!rc) {
		fchmod(dfd, st.st_mode & 07777);
		struct timespec ts[2] = {st.st_atim, st.st_mtim};
		futimens(dfd, ts);
	}
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

char *cbl_fd_path(int fd)
{
	return cbl_xasprintf("/proc/self/fd/%d", fd);
}

size_t cbl_fd_path_prefix(const char *path)
{
	static const char pre[] = "/proc/self/fd/";
	size_t n = sizeof(pre) - 1;
	if (strncmp(path, pre, n) || path[n] < '0' || path[n] > '9')
		return 0;
	while (path[n] >= '0' && path[n] <= '9')
		n++;
	return path[n] == '\0' || path[n] == '/' ? n : 0;
}

static char *resolve(const char *path, int *links);

/* path below its "/proc/self/fd/N" prefix (pl bytes), component by
 * component: the prefix is a magic link whose text (the directory's path in
 * its own namespace) must not be read, so realpath(3) cannot walk it. */
static char *resolve_beneath(const char *path, size_t pl, int *links)
{
	cbl_buf done = CBL_BUF_INIT;
	char *rest = cbl_xstrdup(path + pl), *p = rest, *r = NULL;
	struct stat st;
	cbl_buf_append(&done, path, pl);
	for (;;) {
		while (*p == '/')
			p++;
		size_t l = strcspn(p, "/");
		if (!l)
			break;
		if (l == 1 && p[0] == '.') {
			p += l;
			continue;
		}
		if (l == 2 && p[0] == '.' && p[1] == '.') {
			if (done.len == pl) {
				errno = EXDEV;
				goto out;
			}
			done.len = (size_t)(strrchr(done.ptr, '/') - done.ptr);
			done.ptr[done.len] = '\0';
			p += l;
			continue;
		}
		size_t mark = done.len;
		cbl_buf_putc(&done, '/');
		cbl_buf_append(&done, p, l);
		p += l;
		if (lstat(done.ptr, &st) < 0)
			goto out;
		if (!S_ISLNK(st.st_mode))
			continue;
		char link[PATH_MAX];
		ssize_t n = -1;
		if (++*links > 40)
			errno = ELOOP;
		else
			n = readlink(done.ptr, link, sizeof(link) - 1);
		if (n < 0)
			goto out;
		link[n] = '\0';
		char *again = cbl_xasprintf("%s%s", link, p); /* p: "" or "/rest" */
		free(rest);
		rest = p = again;
		if (link[0] == '/') {
			/* out of the directory, from this process's root */
			r = resolve(again, links);
			goto out;
		}
		done.len = mark;
		done.ptr[mark] = '\0';
	}
	if (stat(done.ptr, &st) == 0)
		r = cbl_buf_detach(&done);
out:;
	int e = errno;
	cbl_buf_release(&done);
	free(rest);
	errno = e;
	return r;
}

static char *resolve(const char *path, int *links)
{
	size_t pl = cbl_fd_path_prefix(path);
	return pl ? resolve_beneath(path, pl, links) : realpath(path, NULL);
}

int cbl_realpath(const char *path, char **out, cbl_error **err)
{
	char *r = realpath(path, NULL);
	if (!r)
		return cbl_error_set_errno(err, errno == ENOENT ? CBL_ENOENT : CBL_EIO, errno,
					   "cannot resolve '%s'", path);
	*out = r;
	return 0;
}

int cbl_realpath_fd(const char *path, char **out, cbl_error **err)
{
	int links = 0;
	char *r = resolve(path, &links);
	if (!r) {
		int e = errno;
		cbl_error_set_errno(err, e == ENOENT ? CBL_ENOENT : CBL_EIO, e, "cannot resolve '%s'", path);
		errno = e;
		return e == ENOENT ? CBL_ENOENT : CBL_EIO;
	}
	*out = r;
	return 0;
}

long long cbl_proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* comm may hold spaces and ')': fields count from the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	/* after ')' come field 3 (state) .. ; starttime is field 22 */
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
		if (!*p)
			return -1;
	}
	while (*p == ' ')
		p++;
	char *end = NULL;
	long long v = strtoll(p, &end, 10);
	return end == p ? -1 : v;
}
