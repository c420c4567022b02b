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
/* The fallback walk's state: the directories opened so far (level 0 is the
 * caller's, never closed) and what is left of the path. */
typedef struct walker {
	int *stack;
	int cap, depth, links;
	cbl_buf todo;
	int flags;
	mode_t mode;
	unsigned resolve;
	bool follow_last;
} walker;

/* What one step decided: go on with the rest, or stop (done: the result or
 * an error in errno). */
enum { WALK_ON = 0, WALK_STOP = 1 };

static void walk_set_todo(walker *w, const char *s)
{
	cbl_buf_reset(&w->todo);
	cbl_buf_puts(&w->todo, s);
}

/* "", "." and "..": never above the caller's directory. */
static int walk_dots(walker *w, const char *comp, const char *rest, bool last, int *result)
{
	if (!strcmp(comp, "..")) {
		if (w->depth == 0) {
			errno = EXDEV;
			return WALK_STOP;
		}
		close(w->stack[w->depth--]);
	}
	walk_set_todo(w, rest);
	if (last) {
		*result = openat(w->stack[w->depth], ".",
				 (w->flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC | O_NOCTTY, w->mode);
		return WALK_STOP;
	}
	return WALK_ON;
}

/* One component opened without following it: a directory on the way, or
 * the last one with the caller's flags (O_PATH never yields a symlink). */
static int walk_open(const walker *w, const char *comp, bool last, bool dir_wanted)
{
	int cur = w->stack[w->depth];
	if (!last)
		return openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int f = w->flags | O_NOFOLLOW | O_CLOEXEC | ((w->flags & O_PATH) ? 0 : O_NOCTTY);
	if (dir_wanted)
		f |= O_DIRECTORY;
	int fd = openat(cur, comp, f, w->mode);
	if (fd >= 0 && (w->flags & O_PATH)) {
		/* O_PATH | O_NOFOLLOW opens a symlink itself */
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
			close(fd);
			fd = -1;
			errno = ELOOP;
		}
	}
	return fd;
}

/* A directory on the way: one level deeper. */
static int walk_push(walker *w, int fd, const char *rest)
{
	if (w->depth + 1 >= MAX_DEPTH) {
		close(fd);
		errno = ENAMETOOLONG;
		return WALK_STOP;
	}
	if (w->depth + 1 >= w->cap) {
		w->cap *= 2;
		w->stack = cbl_xreallocarray(w->stack, (size_t)w->cap, sizeof(int));
	}
	w->stack[++w->depth] = fd;
	walk_set_todo(w, rest);
	return WALK_ON;
}

/* The open failed with e: a symlink there is followed by hand when allowed
 * (relative, within the link budget, never out of the caller's directory). */
static int walk_link(walker *w, const char *comp, const char *rest, bool last, bool dir_wanted, int e)
{
	if (e != ELOOP && e != ENOTDIR && e != EEXIST) {
		errno = e;
		return WALK_STOP;
	}
	char target[PATH_MAX + 1];
	ssize_t tl = readlinkat(w->stack[w->depth], comp, target, sizeof(target) - 1);
	if (tl < 0 || e == EEXIST) {
		/* not a symlink (a file where a directory was wanted), or
		 * O_EXCL met something: the open's own answer */
		errno = e == ELOOP && tl < 0 ? ENOTDIR : e;
		return WALK_STOP;
	}
	if ((w->resolve & CBL_RESOLVE_NO_SYMLINKS) || (last && !w->follow_last)) {
		errno = ELOOP;
		return WALK_STOP;
	}
	target[tl] = '\0';
	if (target[0] == '/' || tl == 0) {
		errno = tl ? EXDEV : ENOENT;
		return WALK_STOP;
	}
	if (++w->links > MAX_LINKS) {
		errno = ELOOP;
		return WALK_STOP;
	}
	walk_set_todo(w, target);
	if (*rest || dir_wanted) {
		cbl_buf_putc(&w->todo, '/');
		cbl_buf_puts(&w->todo, rest);
	}
	return WALK_ON;
}

/* One component of what is left: WALK_STOP with *result set (or -1 and
 * errno) when the walk is over. */
static int walk_step(walker *w, int *result)
{
	size_t off = 0;
	while (off < w->todo.len && w->todo.ptr[off] == '/')
		off++;
	const char *c = w->todo.ptr ? w->todo.ptr + off : "";
	const char *slash = strchr(c, '/');
	size_t cl = slash ? (size_t)(slash - c) : strlen(c);
	const char *after = c + cl;
	while (*after == '/')
		after++;
	bool last = *after == '\0';
	bool dir_wanted = slash != NULL; /* "a/" must be a directory */
	char *comp = cbl_xstrndup(c, cl);
	char *rest = cbl_xstrdup(after); /* before todo changes */
	int r;
	if (cl == 0 || !strcmp(comp, ".") || !strcmp(comp, "..")) {
		r = walk_dots(w, comp, rest, last, result);
	} else {
		int fd = walk_open(w, comp, last, dir_wanted);
		if (fd >= 0 && last) {
			*result = fd;
			r = WALK_STOP;
		} else if (fd >= 0) {
			r = walk_push(w, fd, rest);
		} else {
			r = walk_link(w, comp, rest, last, dir_wanted, errno);
		}
	}
	free(comp);
	free(rest);
	return r;
}

static int walk(int dirfd, const char *relpath, int flags, mode_t mode, unsigned resolve)
{
	walker w = {.cap = 16, .todo = CBL_BUF_INIT, .flags = flags, .mode = mode, .resolve = resolve,
		    .follow_last = !(flags & O_NOFOLLOW)};
	int result = -1;
	w.stack = cbl_xcalloc((size_t)w.cap, sizeof(int));
	w.stack[0] = dirfd;
	if (relpath[0] == '/') {
		errno = EXDEV;
	} else {
		cbl_buf_puts(&w.todo, relpath);
		while (walk_step(&w, &result) == WALK_ON)
			;
	}
	int e = errno;
	for (int i = 1; i <= w.depth; i++)
		close(w.stack[i]);
	free(w.stack);
	cbl_buf_release(&w.todo);
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
