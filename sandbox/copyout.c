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
 * The tree is what a hostile build left, maybe still changing: the copy is
 * util/tree.c's (nothing followed, every name checked once open), with what
 * vanished meanwhile left out and the user.* opaque mark required (the only
 * one a user namespace can set).
 */
#include "sandbox/sandbox_internal.h"
#include "util/fs.h"
#include "util/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

/* What the child reports through its pipe. */
typedef struct copy_report {
	int rc;         /* 0, or -1 */
	bool no_source; /* the source directory does not exist */
	cbl_tree_report t;
} copy_report;

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
	/* what a build still running changes meanwhile is left out; only
	 * the user.* opaque mark can be set in its user namespace */
	cbl_tree_copy t;
	memset(&t, 0, sizeof(t));
	t.flags = CBL_TREE_SKIP_UNREADABLE | CBL_TREE_NEED_USER_OPAQUE;
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* in the build's user namespace: not traceable from it (the runner's
	 * memory is this process's too) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	int src = -1;
	if (usfd >= 0 && setns(usfd, CLONE_NEWUSER) < 0)
		r.rc = cbl_tree_fail(&t, "cannot join", "the sandbox's user namespace");
	else if (nsfd >= 0 && setns(nsfd, CLONE_NEWNS) < 0)
		r.rc = cbl_tree_fail(&t, "cannot join", "the sandbox's mount namespace");
	else if ((src = open_source(s, from, index, path)) < 0) {
		r.no_source = errno == ENOENT;
		r.rc = cbl_tree_fail(&t, "cannot open", from == SANDBOX_COPY_PATH ? path : "the upper layer");
	} else
		r.rc = cbl_tree_copy_dir(&t, src, dest_fd);
	r.t = t.r;
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
		if (!got || !WIFEXITED(ws)) {
			rc = cbl_error_set(err, CBL_EIO, "sandbox: copy out %s: the helper process failed", what);
		} else if (r.rc < 0) {
			r.t.msg[sizeof(r.t.msg) - 1] = '\0';
			rc = cbl_error_set_errno(err, r.no_source ? CBL_ENOENT : CBL_EIO, r.t.err,
						 "sandbox: copy out %s: %s", what, r.t.msg);
		} else if (st) {
			st->files = r.t.files;
			st->bytes = r.t.bytes;
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
