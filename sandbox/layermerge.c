/* sandbox/layermerge.c - an overlay layer flattened onto the one above it:
 * sandbox_layer_merge (in this process) and sandbox_merge_out (in a child
 * that joined a sandbox's user namespace).
 *
 * A build restored from a kept state (a read-only layer below its own
 * upper layer) that keeps its state again keeps both as one layer: its own
 * upper layer (already copied to the destination) wins, and every entry of
 * the older layer it does not hide shows through.  The older layer is
 * immutable (a checkpoint): its files are hard-linked where the kernel
 * allows it (never changed afterwards: no owner, mode or time is set on a
 * link), copied otherwise.  Nothing is followed: every name is opened
 * beneath its parent's descriptor with O_NOFOLLOW.
 */
#include "sandbox/sandbox_internal.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/banned.h"

#define MERGE_MAX_DEPTH 256

static const char *const merge_opaque_attrs[] = {"trusted.overlay.opaque", "user.overlay.opaque"};

typedef struct merge_ctx {
	unsigned flags;
	sandbox_copy_stats st;
	int err;       /* errno of the failure */
	char msg[256]; /* what failed */
} merge_ctx;

static int merge_fail(merge_ctx *c, const char *what, const char *name)
{
	c->err = errno;
	snprintf(c->msg, sizeof(c->msg), "%s '%.200s'", what, name);
	return -1;
}

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

#define FUSE_OPAQUE ".wh..wh..opq"

static bool is_opaque(const merge_ctx *c, int dfd)
{
	if ((c->flags & SANDBOX_MERGE_FUSE) && faccessat(dfd, FUSE_OPAQUE, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return true;
	char v[8];
	for (size_t i = 0; i < 2; i++) {
		ssize_t n = fgetxattr(dfd, merge_opaque_attrs[i], v, sizeof(v));
		if (n > 0 && v[0] == 'y')
			return true;
	}
	return false;
}

/* The old directory's opaque marks onto the new one. */
static void copy_opaque(int sfd, int dfd)
{
	char v[8];
	for (size_t i = 0; i < 2; i++) {
		ssize_t n = fgetxattr(sfd, merge_opaque_attrs[i], v, sizeof(v));
		if (n > 0)
			(void)!fsetxattr(dfd, merge_opaque_attrs[i], v, (size_t)n, 0);
	}
}

static void set_meta(int dfd, const char *name, const struct stat *st, bool link)
{
	(void)!fchownat(dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
	if (!link)
		(void)!fchmodat(dfd, name, st->st_mode & 07777, 0);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	(void)!utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

static int copy_regular(int sfd, int dfd, const char *name, merge_ctx *c)
{
	int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		int rc = in < 0 ? merge_fail(c, "cannot read", name) : 0;
		if (in >= 0)
			close(in);
		return rc;
	}
	int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc = out < 0 ? merge_fail(c, "cannot create", name) : 0;
	char buf[65536];
	ssize_t k = 0;
	while (!rc && (k = read(in, buf, sizeof(buf))) > 0) {
		if (cbl_write_all(out, buf, (size_t)k) < 0)
			rc = merge_fail(c, "cannot write", name);
		c->st.bytes += (uint64_t)k;
	}
	if (!rc && k < 0)
		rc = merge_fail(c, "cannot read", name);
	if (out >= 0)
		close(out);
	close(in);
	if (!rc) {
		set_meta(dfd, name, &st, false);
		c->st.files++;
	}
	return rc;
}

static int merge_dir(int ofd, int dfd, merge_ctx *c, int depth);

/* A non-directory of the old layer the new one lacks: a hard link, else a
 * copy (a file, a symlink as a link, a whiteout as a whiteout). */
static int put_other(int ofd, int dfd, const char *name, const struct stat *st, merge_ctx *c)
{
	if (!S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode) && !is_whiteout(st))
		return 0; /* FIFOs, sockets, devices: never in a kept layer */
	if (!(c->flags & SANDBOX_MERGE_NO_LINKS) && linkat(ofd, name, dfd, name, 0) == 0) {
		if (!is_whiteout(st))
			c->st.files++;
		if (S_ISREG(st->st_mode))
			c->st.bytes += (uint64_t)st->st_size;
		return 0;
	}
	if (S_ISREG(st->st_mode))
		return copy_regular(ofd, dfd, name, c);
	if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(ofd, name, target, sizeof(target) - 1);
		if (n < 0)
			return merge_fail(c, "cannot read the link", name);
		target[n] = '\0';
		if (symlinkat(target, dfd, name) < 0)
			return merge_fail(c, "cannot create the link", name);
		c->st.files++;
	} else if (mknodat(dfd, name, S_IFCHR | 0000, makedev(0, 0)) < 0) {
		return merge_fail(c, "cannot keep the deletion of", name);
	}
	set_meta(dfd, name, st, true);
	return 0;
}

/* An opaque mark on the new layer's directory d2 (named name, for errors). */
static int mark_opaque(merge_ctx *c, int d2, const char *name)
{
	if (is_opaque(c, d2))
		return 0;
	if (c->flags & SANDBOX_MERGE_FUSE) {
		int fd = openat(d2, FUSE_OPAQUE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return merge_fail(c, "cannot mark opaque", name);
		close(fd);
		return 0;
	}
	if (fsetxattr(d2, merge_opaque_attrs[(c->flags & SANDBOX_MERGE_USER_XATTR) ? 1 : 0], "y", 1, 0) < 0)
		return merge_fail(c, "cannot mark opaque", name);
	return 0;
}

/* Whether the new layer hides name with fuse-overlayfs's ".wh.NAME" file. */
static bool fuse_hidden(const merge_ctx *c, int dfd, const char *name)
{
	if (!(c->flags & SANDBOX_MERGE_FUSE) || strlen(name) > 250)
		return false;
	char wh[256];
	snprintf(wh, sizeof(wh), ".wh.%s", name);
	return faccessat(dfd, wh, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* One entry of the old layer (ost) onto the new one's. */
static int merge_entry(int ofd, int dfd, const char *name, const struct stat *ost, merge_ctx *c, int depth)
{
	struct stat dst;
	bool in_new = fstatat(dfd, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	if (!in_new && fuse_hidden(c, dfd, name))
		return 0; /* deleted above it, in fuse-overlayfs's file form */
	struct stat again;
	if (!in_new && (c->flags & SANDBOX_MERGE_FUSE) && !strncmp(name, ".wh.", 4) && strcmp(name, FUSE_OPAQUE) &&
	    fstatat(dfd, name + 4, &again, AT_SYMLINK_NOFOLLOW) == 0)
		return 0; /* an old deletion of what the new layer made again */
	if (in_new && !S_ISDIR(dst.st_mode))
		return 0; /* a file, a link or a whiteout of the new layer: it wins */
	if (!in_new && !S_ISDIR(ost->st_mode))
		return put_other(ofd, dfd, name, ost, c);
	if (!in_new && mkdirat(dfd, name, 0700) < 0)
		return merge_fail(c, "cannot create", name);
	int d2 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d2 < 0)
		return merge_fail(c, "cannot open", name);
	int rc = 0;
	if (!S_ISDIR(ost->st_mode)) {
		/* a new directory where the old layer had a file or a
		 * whiteout: it hid the working tree's entry, and still does */
		rc = mark_opaque(c, d2, name);
	} else if (!in_new || !is_opaque(c, d2)) {
		int o2 = openat(ofd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (o2 < 0) {
			rc = merge_fail(c, "cannot read", name);
		} else {
			copy_opaque(o2, d2); /* an old opaque one still hides the tree's */
			rc = merge_dir(o2, d2, c, depth + 1);
			close(o2);
		}
		if (!rc && !in_new)
			set_meta(dfd, name, ost, false);
	} /* else an opaque directory of the new layer: it wins */
	close(d2);
	return rc;
}

static int merge_dir(int ofd, int dfd, merge_ctx *c, int depth)
{
	if (depth > MERGE_MAX_DEPTH) {
		errno = ELOOP;
		return merge_fail(c, "nested too deep at", "...");
	}
	int fd = dup(ofd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return merge_fail(c, "cannot read", "a directory");
	}
	rewinddir(d);
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(ofd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		rc = merge_entry(ofd, dfd, de->d_name, &st, c, depth);
	}
	closedir(d);
	return rc;
}

int sandbox_layer_merge(int old_fd, int dest_fd, unsigned flags, sandbox_copy_stats *st, cbl_error **err)
{
	merge_ctx c;
	memset(&c, 0, sizeof(c));
	c.flags = flags;
	if (merge_dir(old_fd, dest_fd, &c, 0) < 0)
		return cbl_error_set_errno(err, CBL_EIO, c.err, "layer merge: %s", c.msg);
	if (st) {
		st->files += c.st.files;
		st->bytes += c.st.bytes;
	}
	return 0;
}

/* What the child reports through its pipe. */
typedef struct merge_report {
	int rc, err;
	sandbox_copy_stats st;
	char msg[256];
} merge_report;

int sandbox_merge_out(sandbox_handle *s, int old_fd, int dest_fd, unsigned flags, sandbox_copy_stats *st,
		      cbl_error **err)
{
	if (!s->userns)
		return sandbox_layer_merge(old_fd, dest_fd, flags, st, err);
	char ns[64];
	snprintf(ns, sizeof(ns), "/proc/%ld/ns/user", (long)s->init);
	int usfd = open(ns, O_RDONLY | O_CLOEXEC), p[2] = {-1, -1}, rc = 0;
	pid_t pid = -1;
	if (usfd < 0 || pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "layer merge: cannot reach the sandbox");
	if (pid == 0) {
		merge_report r;
		memset(&r, 0, sizeof(r));
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* not traceable from the build */
		close(p[0]);
		merge_ctx c;
		memset(&c, 0, sizeof(c));
		c.flags = flags;
		if (setns(usfd, CLONE_NEWUSER) < 0)
			r.rc = merge_fail(&c, "cannot join", "the sandbox's user namespace");
		else
			r.rc = merge_dir(old_fd, dest_fd, &c, 0);
		r.err = c.err;
		r.st = c.st;
		memcpy(r.msg, c.msg, sizeof(r.msg));
		_exit(cbl_write_all(p[1], &r, sizeof(r)) < 0 ? 1 : 0);
	}
	if (p[1] >= 0)
		close(p[1]);
	if (pid > 0) {
		merge_report r;
		memset(&r, 0, sizeof(r));
		bool got = sandbox_read_full(p[0], &r, sizeof(r)) == 0;
		int ws = 0;
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		r.msg[sizeof(r.msg) - 1] = '\0';
		if (!got || !WIFEXITED(ws))
			rc = cbl_error_set(err, CBL_EIO, "layer merge: the helper process failed");
		else if (r.rc < 0)
			rc = cbl_error_set_errno(err, CBL_EIO, r.err, "layer merge: %s", r.msg);
		else if (st) {
			st->files += r.st.files;
			st->bytes += r.st.bytes;
		}
	}
	if (p[0] >= 0)
		close(p[0]);
	if (usfd >= 0)
		close(usfd);
	return rc;
}
