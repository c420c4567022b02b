/* sandbox/sandbox.c - the handle: start (plan, clone, the parent's steps,
 * the init's report), commands, overlays mounted later, the end.
 *
 * The cloned init replays the plan and, on the first failure, sends a typed
 * error record (step + errno) back over the socketpair and exits, so the
 * parent can say exactly what failed.
 */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- records */

int sandbox_send_rec(int fd, int kind, int status, int err, const char *msg)
{
	sandbox_rec r = {kind, status, err, {0}};
	if (msg)
		snprintf(r.msg, sizeof(r.msg), "%s", msg);
	return cbl_write_all(fd, &r, sizeof(r));
}

int sandbox_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sandbox_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = cbl_write_all(fd, s, strlen(s));
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* ---------------------------------------------------------------- start */

/* Lets the init go on with the limits it applies itself, and reads its
 * report of the setup. */
static int release_init(sandbox_handle *s, int sync_w, cbl_error **err)
{
	char go = (char)(SANDBOX_SYNC_BASE | s->rlim_fallback);
	if (write(sync_w, &go, 1) != 1)
		return cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: the init process died");
	sandbox_rec r;
	if (sandbox_read_full(s->sock, &r, sizeof(r)) < 0)
		return cbl_error_set(err, CBL_EIO, "sandbox: the init process died during setup");
	if (r.kind == SANDBOX_REC_SETUP_ERR)
		return cbl_error_set(err, CBL_EIO, "sandbox: %s", r.msg);
	if (r.kind != SANDBOX_REC_READY)
		return cbl_error_set(err, CBL_EIO, "sandbox: unexpected record %d from init", r.kind);
	return 0;
}

int sandbox_start(sandbox_handle **out, const sandbox_opts *o, cbl_error **err)
{
	sandbox_handle *s = cbl_xcalloc(1, sizeof(*s));
	sandbox_plan p = SANDBOX_PLAN_INIT;
	int sv[2] = {-1, -1}, sync[2] = {-1, -1};
	uid_t uid = geteuid();
	s->userns = uid != 0;
	s->init = -1;
	s->sock = -1;
	s->nat_pid = -1;
	s->nat_pidfd = s->nat_ready = s->nat_exit = s->nat_log = -1;
	int rc = sandbox_plan_build(&p, o, uid, getegid(), err);
	if (rc)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(sync, O_CLOEXEC) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot create a socket pair");
		goto fail;
	}
	/* a fork-like clone (no new stack): the child runs on a copy of ours */
	pid_t pid = (pid_t)syscall(SYS_clone, sandbox_plan_clone_flags(&p) | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot create the namespaces (clone)");
		goto fail;
	}
	if (pid == 0) {
		close(sv[0]);
		close(sync[1]);
		sandbox_init_main(&p, sv[1], sync[0], o->out_fd);
	}
	s->init = pid;
	close(sv[1]);
	sv[1] = -1;
	close(sync[0]);
	sync[0] = -1;
	s->sock = sv[0];
	rc = sandbox_plan_run_parent(s, &p, pid, err);
	if (rc)
		goto fail;
	rc = release_init(s, sync[1], err);
	if (rc)
		goto fail;
	/* the NAT helper started with the parent's steps, while the init set
	 * up its mounts: usually ready by now (3-4 ms) */
	rc = sandbox_nat_wait(s, 10000, err);
	if (rc)
		goto fail;
	close(sync[1]);
	sandbox_plan_release(&p);
	*out = s;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0 && sv[i] != s->sock)
			close(sv[i]);
		if (sync[i] >= 0)
			close(sync[i]);
	}
	sandbox_plan_release(&p);
	sandbox_free(s);
	return rc;
}

const char *const *sandbox_warnings(const sandbox_handle *s)
{
	static const char *const none[] = {NULL};
	return s->warnings.n ? (const char *const *)s->warnings.v : none;
}

/* ---------------------------------------------------------------- commands */

int sandbox_spawn(sandbox_handle *s, const char *path, const char *arg, const char *cwd, const char *user,
		  char *const envp[], cbl_error **err)
{
	cbl_buf req = CBL_BUF_INIT;
	cbl_buf_append(&req, "\0\0\0\0S", 5);
	cbl_buf_append(&req, "", 1);
	const char *fields[] = {path, arg, cwd, user ? user : ""};
	for (int i = 0; i < 4; i++)
		cbl_buf_append(&req, fields[i], strlen(fields[i]) + 1);
	for (size_t i = 0; envp && envp[i]; i++)
		cbl_buf_append(&req, envp[i], strlen(envp[i]) + 1);
	uint32_t len = (uint32_t)(req.len - 4);
	memcpy(req.ptr, &len, 4);
	int rc = 0;
	if (cbl_write_all(s->sock, req.ptr, req.len) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: the init is gone");
		goto out;
	}
	sandbox_rec r;
	if (sandbox_read_full(s->sock, &r, sizeof(r)) < 0) {
		rc = cbl_error_set(err, CBL_EIO, "sandbox: the init is gone");
		goto out;
	}
	if (r.kind == SANDBOX_REC_SPAWN_ERR) {
		rc = cbl_error_set(err, CBL_EIO, "%s", r.msg);
		goto out;
	}
	s->running = true;
out:
	cbl_buf_release(&req);
	return rc;
}

int sandbox_fd(const sandbox_handle *s) { return s->sock; }
pid_t sandbox_pid(const sandbox_handle *s) { return s->init; }

bool sandbox_owns(const sandbox_handle *s, pid_t pid)
{
	return pid > 0 && (pid == s->init || pid == s->nat_pid);
}
bool sandbox_can_overlay(void) { return geteuid() == 0; }

int sandbox_wait(sandbox_handle *s, int *wstatus, cbl_error **err)
{
	sandbox_rec r;
	for (;;) {
		if (sandbox_read_full(s->sock, &r, sizeof(r)) < 0) {
			s->running = false;
			*wstatus = SIGKILL; /* as if killed: the namespace is gone */
			return cbl_error_set(err, CBL_EIO, "sandbox: the init is gone");
		}
		if (r.kind == SANDBOX_REC_EXITED) {
			s->running = false;
			*wstatus = r.status;
			return 0;
		}
	}
}

void sandbox_kill_all(sandbox_handle *s)
{
	if (s->sock < 0)
		return;
	uint32_t len = 1;
	char msg[5];
	memcpy(msg, &len, 4);
	msg[4] = 'K';
	cbl_write_all(s->sock, msg, sizeof(msg));
}

/* ---------------------------------------------------------------- overlays later */

/* In a child: builds the overlay in the caller's namespace (where the layers'
 * host paths resolve), joins the sandbox's mount namespace and attaches it
 * at target.  Failure: what failed, written to report_fd. */
static __attribute__((noreturn)) void overlay_helper(const char *ns, const char *lower, const char *upper,
						     const char *work, const char *target, int report_fd)
{
	const char *what = "open the overlay";
	int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
	int mfd = -1;
	if (fs < 0 || nsfd < 0)
		goto fail;
	what = "configure the overlay";
	if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto fail;
	what = "create the overlay";
	mfd = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		goto fail;
	what = "join the sandbox's mount namespace";
	if (setns(nsfd, CLONE_NEWNS) < 0)
		goto fail;
	what = "create the mount point";
	if (cbl_mkdir_p(target, 0755, NULL) < 0)
		goto fail;
	what = "attach the overlay";
	if (syscall(SYS_move_mount, mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		goto fail;
	_exit(0);
fail:;
	int e = errno;
	dprintf(report_fd, "%s: %s", what, strerror(e));
	_exit(1);
}

/* The new mount API builds the overlay where the layers' paths resolve, then
 * the detached mount is moved into the sandbox's namespace by a child that
 * joined it (setns needs a single-threaded caller; the init itself runs
 * under a seccomp filter that forbids mounts, which the commands inherit). */
int sandbox_mount_overlay(sandbox_handle *s, const char *lower, const char *upper, const char *work,
			  const char *target, cbl_error **err)
{
	if (s->userns)
		return cbl_error_set(err, CBL_EINVAL, "sandbox: no overlay mounts in an unprivileged sandbox");
	char ns[64];
	snprintf(ns, sizeof(ns), "/proc/%ld/ns/mnt", (long)s->init);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: fork");
	}
	if (pid == 0) {
		close(p[0]);
		overlay_helper(ns, lower, upper, work, target, p[1]);
	}
	close(p[1]);
	char msg[256];
	ssize_t n = read(p[0], msg, sizeof(msg) - 1);
	close(p[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	msg[n > 0 ? n : 0] = '\0';
	return cbl_error_set(err, CBL_EIO, "sandbox: mount overlay on %s: %s", target,
			     n > 0 ? msg : "the helper process failed");
}

/* ---------------------------------------------------------------- the end */

void sandbox_free(sandbox_handle *s)
{
	if (!s)
		return;
	if (s->init > 0) {
		/* closing the socket ends the init, which takes the namespace
		 * down; SIGKILL makes sure of it */
		if (s->sock >= 0)
			close(s->sock);
		s->sock = -1;
		kill(s->init, SIGKILL);
		while (waitpid(s->init, NULL, 0) < 0 && errno == EINTR)
			;
	}
	sandbox_nat_stop(s);
	if (s->sock >= 0)
		close(s->sock);
	sandbox_cgroups_remove(s);
	cbl_strv_release(&s->warnings);
	free(s);
}
