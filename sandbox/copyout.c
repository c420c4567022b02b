/* sandbox/copyout.c - a directory of a running (or ended) sandbox copied
 * out as an overlay layer: sandbox_copy_out.
 *
 * Unprivileged, what the commands wrote belongs to the ids of the
 * sandbox's user namespace, the caller's subordinate ones included (a
 * run-as user's 0600 file): the caller cannot read it, and the private
 * tmpfs (the overlays' upper layers) is reachable by nothing after the
 * init's pivot_root but the descriptor the parent kept (sandbox.c
 * hold_scratch).  So the copy runs in a forked child that joins the user
 * namespace (root there, with the namespace's capabilities over its files)
 * and, for a path, the mount namespace; the destination is a descriptor the
 * caller opened before, the only thing of the host's the child touches.
 *
 * The tree is what a hostile build left, maybe still changing: every name
 * is opened beneath its parent's descriptor with O_NOFOLLOW, a regular file
 * with O_NONBLOCK (a FIFO swapped in does not block) and checked with fstat
 * once open, symlinks are copied as links and never followed.
 */
#include "sandbox/sandbox_internal.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/banned.h"

#define COPY_MAX_DEPTH 256

static const char *const opaque_attrs[] = {"trusted.overlay.opaque", "user.overlay.opaque"};

/* What the child reports through its pipe. */
typedef struct copy_report {
	int rc;     /* 0, or -1 */
	int err;    /* errno of the failure */
	uint64_t files, bytes;
	bool no_source; /* the source directory does not exist */
	bool no_cfr;    /* copy_file_range refused (another filesystem): read and write */
	char msg[256];
} copy_report;

static int fail(copy_report *r, const char *what, const char *name)
{
	r->rc = -1;
	r->err = errno;
	snprintf(r->msg, sizeof(r->msg), "%s '%s'", what, name);
	return -1;
}

static void keep_meta(int dfd, const char *name, const struct stat *st, bool link)
{
	/* the owner first: a chown clears the set-id bits */
	(void)!fchownat(dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
	if (!link)
		(void)!fchmodat(dfd, name, st->st_mode & 07777, 0);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	(void)!utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

static int copy_dir(int sfd, int dfd, copy_report *r, int depth);

static int copy_file(int sfd, int dfd, const char *name, copy_report *r)
{
	int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (in >= 0)
			close(in);
		return 0; /* gone or replaced meanwhile: not a file to keep */
	}
	int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc = 0;
	if (out < 0) {
		rc = fail(r, "cannot create", name);
	} else {
		for (;;) {
			ssize_t n = -1;
			errno = EXDEV;
			if (!r->no_cfr)
				n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
			if (n == 0)
				break;
			if (n > 0) {
				r->bytes += (uint64_t)n;
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
				rc = fail(r, "cannot copy", name);
				break;
			}
			r->no_cfr = true;
			char buf[65536];
			ssize_t k;
			while ((k = read(in, buf, sizeof(buf))) > 0) {
				if (cbl_write_all(out, buf, (size_t)k) < 0)
					break;
				r->bytes += (uint64_t)k;
			}
			if (k != 0)
				rc = fail(r, "cannot copy", name);
			break;
		}
		close(out);
	}
	close(in);
	if (rc == 0) {
		keep_meta(dfd, name, &st, false);
		r->files++;
	}
	return rc;
}

static int copy_entry(int sfd, int dfd, const char *name, const struct stat *st, copy_report *r, int depth)
{
	if (S_ISDIR(st->st_mode)) {
		int s2 = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s2 < 0)
			return 0; /* replaced meanwhile */
		int d2 = -1, rc = 0;
		if (mkdirat(dfd, name, 0700) < 0 ||
		    (d2 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			rc = fail(r, "cannot create", name);
		else
			rc = copy_dir(s2, d2, r, depth + 1);
		for (size_t i = 0; rc == 0 && i < 2; i++) {
			char v[8];
			ssize_t n = fgetxattr(s2, opaque_attrs[i], v, sizeof(v));
			if (n > 0 && fsetxattr(d2, opaque_attrs[i], v, (size_t)n, 0) < 0 && i == 1)
				rc = fail(r, "cannot mark opaque", name);
		}
		struct stat now;
		if (rc == 0 && fstat(s2, &now) == 0)
			keep_meta(dfd, name, &now, false);
		close(s2);
		if (d2 >= 0)
			close(d2);
		return rc;
	}
	if (S_ISREG(st->st_mode))
		return copy_file(sfd, dfd, name, r);
	if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(sfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return 0; /* replaced meanwhile */
		target[n] = '\0';
		if (symlinkat(target, dfd, name) < 0)
			return fail(r, "cannot create the link", name);
		keep_meta(dfd, name, st, true);
		r->files++;
		return 0;
	}
	if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0)) {
		/* a whiteout: the path is deleted in this layer (an
		 * unprivileged process may make one) */
		if (mknodat(dfd, name, S_IFCHR | 0000, makedev(0, 0)) < 0)
			return fail(r, "cannot keep the deletion of", name);
		keep_meta(dfd, name, st, true);
		return 0;
	}
	return 0; /* FIFOs, sockets, devices: no state a later sandbox reads */
}

static int copy_dir(int sfd, int dfd, copy_report *r, int depth)
{
	if (depth > COPY_MAX_DEPTH) {
		errno = ELOOP;
		return fail(r, "nested too deep at", "...");
	}
	int fd = dup(sfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return fail(r, "cannot read", "a directory");
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		rc = copy_entry(sfd, dfd, de->d_name, &st, r, depth);
	}
	closedir(d);
	return rc;
}

/* The source directory, in the child, once in the namespaces. */
static int open_source(sandbox_handle *s, sandbox_copy_from from, size_t index, const char *path)
{
	if (from != SANDBOX_COPY_PATH) {
		const char *name = from == SANDBOX_COPY_ROOT_UPPER ? s->root_upper_name
				   : index < s->n_mounts	      ? s->mount_upper[index]
								      : NULL;
		if (!name || s->scratch_fd < 0) {
			errno = ENOENT;
			return -1;
		}
		return openat(s->scratch_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	const char *rel = path;
	while (*rel == '/')
		rel++;
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	int fd = *rel ? (int)syscall(SYS_openat2, root, rel, &how, sizeof(how))
		      : openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = errno;
	close(root);
	errno = e;
	return fd;
}

static __attribute__((noreturn)) void copy_child(sandbox_handle *s, int usfd, int nsfd, sandbox_copy_from from,
						 size_t index, const char *path, int dest_fd, int report_fd)
{
	copy_report r;
	memset(&r, 0, sizeof(r));
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* in the build's user namespace: not traceable from it (the runner's
	 * memory is this process's too) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	int src = -1;
	if (usfd >= 0 && setns(usfd, CLONE_NEWUSER) < 0)
		fail(&r, "cannot join", "the sandbox's user namespace");
	else if (nsfd >= 0 && setns(nsfd, CLONE_NEWNS) < 0)
		fail(&r, "cannot join", "the sandbox's mount namespace");
	else if ((src = open_source(s, from, index, path)) < 0) {
		r.no_source = errno == ENOENT;
		fail(&r, "cannot open", from == SANDBOX_COPY_PATH ? path : "the upper layer");
	}
	else
		copy_dir(src, dest_fd, &r, 0);
	_exit(cbl_write_all(report_fd, &r, sizeof(r)) < 0 ? 1 : 0);
}

int sandbox_copy_out(sandbox_handle *s, sandbox_copy_from from, size_t index, const char *path, int dest_fd,
		     sandbox_copy_stats *st, cbl_error **err)
{
	if (from == SANDBOX_COPY_PATH && (!path || path[0] != '/'))
		return cbl_error_set(err, CBL_EINVAL, "sandbox: copy out: not an absolute path");
	const char *what = from == SANDBOX_COPY_PATH ? path : "an upper layer";
	char ns[64];
	int usfd = -1, nsfd = -1, p[2] = {-1, -1};
	if (s->userns) {
		snprintf(ns, sizeof(ns), "/proc/%ld/ns/user", (long)s->init);
		usfd = open(ns, O_RDONLY | O_CLOEXEC);
	}
	if (from == SANDBOX_COPY_PATH) {
		snprintf(ns, sizeof(ns), "/proc/%ld/ns/mnt", (long)s->init);
		nsfd = open(ns, O_RDONLY | O_CLOEXEC);
	}
	int rc = 0;
	pid_t pid = -1;
	if ((s->userns && usfd < 0) || (from == SANDBOX_COPY_PATH && nsfd < 0) || pipe2(p, O_CLOEXEC) < 0 ||
	    (pid = fork()) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: copy out %s: cannot reach the sandbox", what);
	if (pid == 0) {
		close(p[0]);
		copy_child(s, usfd, nsfd, from, index, path, dest_fd, p[1]);
	}
	if (p[1] >= 0)
		close(p[1]);
	if (pid > 0) {
		copy_report r;
		memset(&r, 0, sizeof(r));
		bool got = sandbox_read_full(p[0], &r, sizeof(r)) == 0;
		int ws = 0;
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		r.msg[sizeof(r.msg) - 1] = '\0';
		if (!got || !WIFEXITED(ws))
			rc = cbl_error_set(err, CBL_EIO, "sandbox: copy out %s: the helper process failed", what);
		else if (r.rc < 0)
			rc = cbl_error_set_errno(err, r.no_source ? CBL_ENOENT : CBL_EIO, r.err, "sandbox: copy out %s: %s",
						 what, r.msg);
		else if (st) {
			st->files = r.files;
			st->bytes = r.bytes;
		}
	}
	if (p[0] >= 0)
		close(p[0]);
	if (usfd >= 0)
		close(usfd);
	if (nsfd >= 0)
		close(nsfd);
	return rc;
}
