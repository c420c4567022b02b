/* util/safeopen.c - paths someone else controls, resolved beneath a
 * directory descriptor (contract in util/safeopen.h).
 *
 * Why openat2 and not realpath + open: any check made on a path and then a
 * second lookup of the same path races with whoever controls the tree (a
 * build swapping a directory for a symlink with renameat2(RENAME_EXCHANGE)
 * between the two).  RESOLVE_BENEATH makes the kernel enforce the bound
 * during the lookup itself, and the result is a descriptor every later step
 * uses (fstat, read, fchmod), so there is no second lookup.
 *
 * The fallback walk holds a descriptor per directory level (O_PATH |
 * O_DIRECTORY | O_NOFOLLOW, so no component is ever followed by the
 * kernel): `..` pops a level (never above dirfd), a symlink is read with
 * readlinkat and its (relative) target spliced in front of the rest of the
 * path.  An absolute target is refused, which also stops /proc magic links
 * (their targets read as absolute paths or as "type:[inode]" names that
 * exist nowhere).
 */
#include "util/safeopen.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/banned.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define MAX_LINKS 40  /* as the kernel's path walk (ELOOP beyond) */
#define MAX_DEPTH 4096

static int code_of(int e)
{
	switch (e) {
	case ENOENT:
		return CBL_ENOENT;
	case EXDEV:
	case ELOOP:
	case ENOTDIR:
		return CBL_EINVAL;
	default:
		return CBL_EIO;
	}
}

static int fail(cbl_error **err, int e, const char *relpath)
{
	const char *why = e == EXDEV ? "it leads outside its directory"
			  : e == ELOOP ? "it is or goes through a symlink"
				       : NULL;
	int code = code_of(e);
	if (why)
		cbl_error_set(err, code, "cannot open '%s': %s", relpath, why);
	else
		cbl_error_set_errno(err, code, e, "cannot open '%s'", relpath);
	errno = e;
	return code;
}

/* The walk: returns a descriptor, or -1 with errno set. */
static int walk(int dirfd, const char *relpath, int flags, mode_t mode, unsigned resolve)
{
	int stack_cap = 16, depth = 0, links = 0, result = -1, e = 0;
	int *stack = cbl_xcalloc((size_t)stack_cap, sizeof(int));
	cbl_buf todo = CBL_BUF_INIT;
	bool follow_last = !(flags & O_NOFOLLOW);
	stack[0] = dirfd; /* level 0 is the caller's, never closed */
	if (relpath[0] == '/') {
		e = EXDEV;
		goto out;
	}
	cbl_buf_puts(&todo, relpath);
	for (;;) {
		/* next component */
		size_t off = 0;
		while (off < todo.len && todo.ptr[off] == '/')
			off++;
		const char *c = todo.ptr ? todo.ptr + off : "";
		const char *slash = strchr(c, '/');
		size_t cl = slash ? (size_t)(slash - c) : strlen(c);
		const char *after = c + cl;
		while (*after == '/')
			after++;
		bool last = *after == '\0';
		bool dir_wanted = slash != NULL; /* "a/" must be a directory */
		char *comp = cbl_xstrndup(c, cl);
		/* the rest, before todo changes */
		char *rest = cbl_xstrdup(after);
		int cur = stack[depth];
		if (cl == 0 || !strcmp(comp, ".") || !strcmp(comp, "..")) {
			if (!strcmp(comp, "..")) {
				if (depth == 0) {
					free(comp);
					free(rest);
					e = EXDEV;
					goto out;
				}
				close(stack[depth--]);
				cur = stack[depth];
			}
			free(comp);
			cbl_buf_reset(&todo);
			cbl_buf_puts(&todo, rest);
			free(rest);
			if (last) {
				result = openat(cur, ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC | O_NOCTTY, mode);
				if (result < 0)
					e = errno;
				goto out;
			}
			continue;
		}
		int fd;
		if (!last) {
			fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		} else {
			int f = flags | O_NOFOLLOW | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY);
			if (dir_wanted)
				f |= O_DIRECTORY;
			fd = openat(cur, comp, f, mode);
			if (fd >= 0 && (flags & O_PATH)) {
				/* O_PATH | O_NOFOLLOW opens a symlink itself */
				struct stat st;
				if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
					close(fd);
					fd = -1;
					errno = ELOOP;
				}
			}
		}
		if (fd >= 0) {
			free(comp);
			if (last) {
				free(rest);
				result = fd;
				goto out;
			}
			if (depth + 1 >= MAX_DEPTH) {
				close(fd);
				free(rest);
				e = ENAMETOOLONG;
				goto out;
			}
			if (depth + 1 >= stack_cap) {
				stack_cap *= 2;
				stack = cbl_xreallocarray(stack, (size_t)stack_cap, sizeof(int));
			}
			stack[++depth] = fd;
			cbl_buf_reset(&todo);
			cbl_buf_puts(&todo, rest);
			free(rest);
			continue;
		}
		e = errno;
		if (e != ELOOP && e != ENOTDIR && e != EEXIST) {
			free(comp);
			free(rest);
			goto out;
		}
		/* a symlink there? */
		char target[PATH_MAX + 1];
		ssize_t tl = readlinkat(cur, comp, target, sizeof(target) - 1);
		free(comp);
		if (tl < 0 || (e == EEXIST)) {
			/* not a symlink (a file where a directory was wanted), or
			 * O_EXCL met something: the open's own answer */
			free(rest);
			if (e == ELOOP && tl < 0)
				e = ENOTDIR;
			goto out;
		}
		if ((resolve & CBL_RESOLVE_NO_SYMLINKS) || (last && !follow_last)) {
			free(rest);
			e = ELOOP;
			goto out;
		}
		target[tl] = '\0';
		if (target[0] == '/' || tl == 0) {
			free(rest);
			e = tl ? EXDEV : ENOENT;
			goto out;
		}
		if (++links > MAX_LINKS) {
			free(rest);
			e = ELOOP;
			goto out;
		}
		cbl_buf_reset(&todo);
		cbl_buf_puts(&todo, target);
		if (*rest || dir_wanted) {
			cbl_buf_putc(&todo, '/');
			cbl_buf_puts(&todo, rest);
		}
		free(rest);
	}
out:
	for (int i = 1; i <= depth; i++)
		close(stack[i]);
	free(stack);
	cbl_buf_release(&todo);
	if (result < 0)
		errno = e ? e : EIO;
	return result;
}

int cbl_open_beneath_walk(int dirfd, const char *relpath, int flags, mode_t mode, unsigned resolve,
			  cbl_error **err)
{
	int fd = walk(dirfd, relpath ? relpath : "", flags, mode, resolve);
	if (fd < 0)
		return fail(err, errno, relpath ? relpath : "");
	return fd;
}

int cbl_open_beneath(int dirfd, const char *relpath, int flags, mode_t mode, unsigned resolve,
		     cbl_error **err)
{
	const char *p = relpath && *relpath ? relpath : ".";
	if (p[0] == '/')
		return fail(err, EXDEV, p);
	struct open_how how;
	memset(&how, 0, sizeof(how));
	/* openat2 refuses O_PATH with flags that mean nothing for it */
	how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY));
	how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	if (resolve & CBL_RESOLVE_NO_SYMLINKS)
		how.resolve |= RESOLVE_NO_SYMLINKS;
	/* EAGAIN: a rename raced a ".." of the lookup (RESOLVE_BENEATH could
	 * not prove it stayed beneath); retried, but a build renaming in a
	 * loop must not keep the runner here: bounded */
	int fd, tries = 0;
	do
		fd = (int)syscall(SYS_openat2, dirfd, p, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 64);
	if (fd >= 0)
		return fd;
	if (errno != ENOSYS)
		return fail(err, errno, p);
	return cbl_open_beneath_walk(dirfd, p, flags, mode, resolve, err);
}

int cbl_open_beneath_regular(int dirfd, const char *relpath, unsigned resolve, struct stat *st,
			     cbl_error **err)
{
	struct stat own;
	struct stat *s = st ? st : &own;
	int fd = cbl_open_beneath(dirfd, relpath, O_RDONLY | O_NONBLOCK, 0, resolve, err);
	if (fd < 0)
		return fd;
	if (fstat(fd, s) < 0) {
		int e = errno;
		close(fd);
		return cbl_error_set_errno(err, CBL_EIO, e, "cannot stat '%s'", relpath);
	}
	if (!S_ISREG(s->st_mode)) {
		close(fd);
		errno = EINVAL;
		return cbl_error_set(err, CBL_EINVAL, "'%s' is not a regular file", relpath);
	}
	return fd;
}

int cbl_open_dir_beneath(int dirfd, const char *relpath, unsigned resolve, cbl_error **err)
{
	return cbl_open_beneath(dirfd, relpath, O_RDONLY | O_DIRECTORY | O_NONBLOCK, 0, resolve, err);
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

int cbl_read_beneath(int dirfd, const char *relpath, unsigned resolve, size_t max_size, char **out,
		     size_t *len, cbl_error **err)
{
	int fd = cbl_open_beneath_regular(dirfd, relpath, resolve, NULL, err);
	if (fd < 0)
		return fd;
	int rc = cbl_read_fd(fd, relpath, max_size, out, len, err);
	close(fd);
	return rc;
}

int cbl_write_at_atomic(int dirfd, const char *name, const char *data, size_t len, mode_t mode,
			cbl_error **err)
{
	char tmp[64];
	unsigned r = 0;
	int fd = -1, rc = 0;
	if (strchr(name, '/'))
		return cbl_error_set(err, CBL_EINVAL, "'%s' is not a file name", name);
	for (int tries = 0; fd < 0; tries++) {
		if (getentropy(&r, sizeof(r)) < 0)
			r ^= (unsigned)getpid() * 2654435761u + (unsigned)tries;
		snprintf(tmp, sizeof(tmp), ".cbl-tmp.%ld.%08x", (long)getpid(), r);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && (errno != EEXIST || tries > 16))
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot create a temporary file for '%s'", name);
	}
	if (cbl_write_all(fd, data, len) < 0 || fchmod(fd, mode) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", name);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", name);
		goto out;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot publish '%s'", name);
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlinkat(dirfd, tmp, 0);
	return rc;
}
