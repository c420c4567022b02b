/* sandbox/nschild.c - work done in a forked child that joined a sandbox's
 * namespaces (sandbox_in_namespaces): copying out what the build wrote
 * (copyout.c), flattening a layer (layermerge.c).
 *
 * Unprivileged, what the commands wrote belongs to the ids of the
 * sandbox's user namespace: only a process in it (root there) can read all
 * of it.  The child reports through a pipe, a fixed-size record. */
#include "sandbox/sandbox_internal.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

static __attribute__((noreturn)) void run_child(int usfd, int nsfd, sandbox_ns_fn fn, void *arg, void *report,
						size_t size, int report_fd)
{
	memset(report, 0, size);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* in the build's user namespace: not traceable from it (the runner's
	 * memory is this process's too) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (usfd >= 0 && setns(usfd, CLONE_NEWUSER) < 0)
		fn(arg, report, "the sandbox's user namespace");
	else if (nsfd >= 0 && setns(nsfd, CLONE_NEWNS) < 0)
		fn(arg, report, "the sandbox's mount namespace");
	else
		fn(arg, report, NULL);
	_exit(cbl_write_all(report_fd, report, size) < 0 ? 1 : 0);
}

int sandbox_in_namespaces(sandbox_handle *s, bool mnt, sandbox_ns_fn fn, void *arg, void *report, size_t size,
			  const char *who, cbl_error **err)
{
	char ns[64];
	int usfd = -1, nsfd = -1, p[2] = {-1, -1};
	if (s->userns) {
		snprintf(ns, sizeof(ns), "/proc/%ld/ns/user", (long)s->init);
		usfd = open(ns, O_RDONLY | O_CLOEXEC);
	}
	if (mnt) {
		snprintf(ns, sizeof(ns), "/proc/%ld/ns/mnt", (long)s->init);
		nsfd = open(ns, O_RDONLY | O_CLOEXEC);
	}
	int rc = 0;
	pid_t pid = -1;
	if ((s->userns && usfd < 0) || (mnt && nsfd < 0) || pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "%s: cannot reach the sandbox", who);
	if (pid == 0) {
		close(p[0]);
		run_child(usfd, nsfd, fn, arg, report, size, p[1]);
	}
	if (p[1] >= 0)
		close(p[1]);
	if (pid > 0) {
		memset(report, 0, size);
		bool got = sandbox_read_full(p[0], report, size) == 0;
		int ws = 0;
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		if (!got || !WIFEXITED(ws))
			rc = cbl_error_set(err, CBL_EIO, "%s: the helper process failed", who);
	}
	if (p[0] >= 0)
		close(p[0]);
	if (usfd >= 0)
		close(usfd);
	if (nsfd >= 0)
		close(nsfd);
	return rc;
}
