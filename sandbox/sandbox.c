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
#include "util/safeopen.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- start */

/* Everything the clone needs before its exec, prepared beforehand: between
 * the clone of a (possibly multi-threaded) caller and the exec only
 * async-signal-safe calls run. */
typedef struct init_exec {
	int elf;                /* the embedded init program, a sealed memfd */
	int exe;                /* /proc/self/exe, O_PATH: where the kernel will not exec a memfd */
	char *argv[3];
	char *envp[2];
	sandbox_rec failed;     /* what the clone reports when the exec fails */
} init_exec;

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* The embedded init in a sealed memfd: nobody can change what PID 1 runs
 * (a file of the host could be rewritten through /proc/1/exe by a build
 * with the capabilities to open it, as runc learned); -1 when this kernel
 * has no executable memfds (vm.memfd_noexec = 2). */
static int init_memfd(void)
{
	unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd = memfd_create("codebuild-local-init", flags | MFD_EXEC);
	if (fd < 0 && errno == EINVAL) /* before Linux 6.3: executable anyway */
		fd = memfd_create("codebuild-local-init", flags);
	if (fd < 0)
		return -1;
	size_t len = (size_t)(sandbox_init_elf_end - sandbox_init_elf);
	if (cbl_write_all(fd, sandbox_init_elf, len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int init_exec_prepare(init_exec *x, cbl_error **err)
{
	x->elf = init_memfd();
	/* the running program's file even if it was replaced or removed since */
	x->exe = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (x->elf < 0 && x->exe < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: no program to run as the init "
								  "(memfd, /proc/self/exe)");
	x->argv[0] = cbl_xstrdup("codebuild-local");
	x->argv[1] = cbl_xstrdup(SANDBOX_INIT_ARG);
	x->argv[2] = NULL;
	/* an empty environment: the commands get theirs from sandbox_spawn.
	 * Only what the dynamic loader may need to start this very program. */
	const char *llp = getenv("LD_LIBRARY_PATH");
	x->envp[0] = llp ? cbl_xasprintf("LD_LIBRARY_PATH=%s", llp) : NULL;
	x->envp[1] = NULL;
	memset(&x->failed, 0, sizeof(x->failed));
	x->failed.kind = SANDBOX_REC_SETUP_ERR;
	x->failed.status = -1;
	snprintf(x->failed.msg, sizeof(x->failed.msg), "exec the init (the embedded program, then "
						       "/proc/self/exe %s)", SANDBOX_INIT_ARG);
	return 0;
}

static void init_exec_release(init_exec *x)
{
	if (x->elf >= 0)
		close(x->elf);
	if (x->exe >= 0)
		close(x->exe);
	x->elf = x->exe = -1;
	for (int i = 0; i < 3; i++)
		free(x->argv[i]);
	free(x->envp[0]);
	memset(x->argv, 0, sizeof(x->argv));
	x->envp[0] = NULL;
}

/* Marks every descriptor from `from` on close-on-exec (close_range before
 * Linux 5.11: one by one up to the limit). */
static void cloexec_from(int from)
{
	if (syscall(SYS_close_range, (unsigned)from, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	struct rlimit rl;
	int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
	for (int fd = from; fd < max; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* In the clone: descriptors 0 /dev/null, 1 and 2 the output, the socket at
 * SANDBOX_INIT_SOCK and nothing else across the exec; wait for the parent's
 * go (a user namespace's id maps must be written before the exec, or the
 * kernel would not give the init its capabilities in it), then exec. */
static __attribute__((noreturn)) void exec_init(init_exec *x, int sock, int out_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* out of the way of the targets first (any of these may be 0..3) */
	int s = fcntl(sock, F_DUPFD_CLOEXEC, 10);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int nfd = null >= 0 ? fcntl(null, F_DUPFD_CLOEXEC, 10) : -1;
	int o = out_fd >= 0 ? fcntl(out_fd, F_DUPFD_CLOEXEC, 10) : nfd;
	int elf = x->elf >= 0 ? fcntl(x->elf, F_DUPFD_CLOEXEC, 10) : -1;
	int exe = x->exe >= 0 ? fcntl(x->exe, F_DUPFD_CLOEXEC, 10) : -1;
	if (s < 0 || nfd < 0 || o < 0 || dup2(nfd, 0) < 0 || dup2(o, 1) < 0 || dup2(o, 2) < 0 ||
	    dup2(s, SANDBOX_INIT_SOCK) < 0)
		_exit(1);
	cloexec_from(SANDBOX_INIT_SOCK + 1);
	char go;
	ssize_t n;
	while ((n = read(SANDBOX_INIT_SOCK, &go, 1)) < 0 && errno == EINTR)
		;
	if (n != 1)
		_exit(1); /* the parent gave up */
	if (elf >= 0)
		syscall(SYS_execveat, elf, "", x->argv, x->envp, AT_EMPTY_PATH);
	if (exe >= 0)
		syscall(SYS_execveat, exe, "", x->argv, x->envp, AT_EMPTY_PATH);
	x->failed.err = errno;
	ssize_t w = write(SANDBOX_INIT_SOCK, &x->failed, sizeof(x->failed));
	(void)w;
	_exit(127);
}

/* The init's private tmpfs, mounted at path in its mount namespace (not
 * pivoted into yet: nothing of the build runs), opened through its
 * /proc/PID/root and kept: after the pivot it is reachable by nothing
 * else, and the descriptor keeps it alive, out of the commands' reach. */
static int hold_scratch(sandbox_handle *s, const char *path, cbl_error **err)
{
	char root[64];
	snprintf(root, sizeof(root), "/proc/%ld/root", (long)s->init);
	int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	const char *rel = path;
	while (*rel == '/')
		rel++;
	int fd = rfd < 0 ? -1 : openat(rfd, *rel ? rel : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int e = errno;
	if (rfd >= 0)
		close(rfd);
	if (fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, e, "sandbox: cannot open the private tmpfs %s", path);
	if (s->scratch_fd >= 0)
		close(s->scratch_fd);
	s->scratch_fd = fd;
	return 0;
}

/* Lets the init go on (the go byte, the limits it applies itself, the
 * plan), does the steps it hands back (the root's fuse-overlayfs), and
 * reads its report of the setup: the optional overlays that failed, then
 * ready or the step that failed. */
static int release_init(sandbox_handle *s, const sandbox_opts *o, const sandbox_plan *p, const char *plan,
			size_t plan_len,
			cbl_error **err)
{
	cbl_buf msg = CBL_BUF_INIT;
	uint32_t len = (uint32_t)plan_len;
	cbl_buf_putc(&msg, 'g');
	cbl_buf_putc(&msg, (char)(SANDBOX_SYNC_BASE | s->rlim_fallback));
	cbl_buf_append(&msg, (const char *)&len, sizeof(len));
	cbl_buf_append(&msg, plan, plan_len);
	/* an init that died (a failed exec) closes its end: no SIGPIPE, its
	 * report is read below */
	for (size_t off = 0; off < msg.len;) {
		ssize_t w = send(s->sock, msg.ptr + off, msg.len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	cbl_buf_release(&msg);
	sandbox_rec r;
	for (;;) {
		if (sandbox_read_full(s->sock, &r, sizeof(r)) < 0)
			return cbl_error_set(err, CBL_EIO, "sandbox: the init process died during setup");
		r.msg[sizeof(r.msg) - 1] = '\0';
		if (r.kind == SANDBOX_REC_MOUNT_ERR) {
			if (r.status < 0 || (size_t)r.status >= s->n_mounts)
				return cbl_error_set(err, CBL_EIO, "sandbox: unexpected record from init");
			const sandbox_mount *m = &o->mounts[r.status];
			free(s->mount_errs[r.status]);
			s->mount_errs[r.status] = cbl_xasprintf("mount an overlay of %s on %s: %s", m->source,
							       m->target, strerror(r.err));
			continue;
		}
		if (r.kind != SANDBOX_REC_PARENT_STEP)
			break;
		const sandbox_step *st = r.status >= 0 && (size_t)r.status < p->n ? &p->v[r.status] : NULL;
		int rc = st && st->kind == SANDBOX_STEP_FUSE_ROOT	   ? sandbox_fuse_start(s, st, s->init, err)
			 : st && st->kind == SANDBOX_STEP_HOLD_SCRATCH ? hold_scratch(s, st->path, err)
			 : cbl_error_set(err, CBL_EIO, "sandbox: the init asked for step %d", (int)r.status);
		/* the init goes on, or exits at the 'x' */
		if (cbl_write_all(s->sock, rc ? "x" : "c", 1) < 0 && !rc)
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: the init is gone");
		if (rc) {
			s->failed_step = r.status;
			return rc;
		}
	}
	if (r.kind == SANDBOX_REC_SETUP_ERR)
		s->failed_step = r.status;
	if (r.kind == SANDBOX_REC_SETUP_ERR && r.status == -1 && r.err)
		return cbl_error_set_errno(err, CBL_EIO, r.err, "sandbox: %s", r.msg);
	if (r.kind == SANDBOX_REC_SETUP_ERR)
		return cbl_error_set(err, CBL_EIO, "sandbox: %s", r.msg);
	if (r.kind != SANDBOX_REC_READY)
		return cbl_error_set(err, CBL_EIO, "sandbox: unexpected record %d from init", r.kind);
	return 0;
}

/* One try: plan, clone, the parent's steps, the init's setup.
 * *root_refused: the init failed to mount the overlay of the root (for
 * sandbox_start's fallback). */
static int start(sandbox_handle **out, const sandbox_opts *o, const sandbox_ids *ids, bool *root_refused,
		 cbl_error **err)
{
	sandbox_handle *s = cbl_xcalloc(1, sizeof(*s));
	sandbox_plan p = SANDBOX_PLAN_INIT;
	init_exec x = {.elf = -1, .exe = -1};
	char *plan = NULL;
	size_t plan_len = 0;
	int sv[2] = {-1, -1};
	s->userns = ids->uid != 0;
	s->ids_full = sandbox_ids_full(ids);
	s->n_mounts = o->n_mounts;
	s->mount_errs = cbl_xcalloc(o->n_mounts ? o->n_mounts : 1, sizeof(char *));
	s->init = -1;
	s->sock = -1;
	s->nat_pid = -1;
	s->nat_pidfd = s->nat_ready = s->nat_exit = s->nat_log = -1;
	s->failed_step = -1;
	s->fuse_pid = -1;
	s->fuse_pidfd = -1;
	s->fuse_log = -1;
	s->scratch_fd = -1;
	s->mount_upper = cbl_xcalloc(o->n_mounts ? o->n_mounts : 1, sizeof(char *));
	for (size_t i = 0; i < o->n_mounts; i++)
		if (o->mounts[i].kind == SANDBOX_MOUNT_OVERLAY)
			s->mount_upper[i] = cbl_xasprintf("overlay%zu-upper", i);
	int rc = sandbox_plan_build_ids(&p, o, ids, err);
	if (rc)
		goto fail;
	/* read-only unless overlaid (an overlay or fuse-overlayfs at the root) */
	char *newroot = cbl_path_join(o->scratch, "root");
	s->root_ro = s->userns;
	for (size_t i = 0; i < p.n; i++)
		if ((p.v[i].kind == SANDBOX_STEP_OVERLAY || p.v[i].kind == SANDBOX_STEP_FUSE_ROOT) && p.v[i].path &&
		    !strcmp(p.v[i].path, newroot)) {
			s->root_ro = false;
			/* the kernel's overlay or fuse-overlayfs with its upper
			 * layer in the private tmpfs (not root_upper's) */
			if (p.v[i].kind == SANDBOX_STEP_FUSE_ROOT || s->userns || !o->root_upper ||
			    o->root_upper[0] != '/')
				s->root_upper_name = cbl_xstrdup("upper");
		}
	free(newroot);
	plan = sandbox_plan_encode(&p, &plan_len);
	if (plan_len > SANDBOX_PLAN_MAX) {
		rc = cbl_error_set(err, CBL_EINVAL, "sandbox: the plan is too large (%zu bytes)", plan_len);
		goto fail;
	}
	if ((rc = init_exec_prepare(&x, err)))
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot create a socket pair");
		goto fail;
	}
	/* a fork-like clone (no new stack): the child runs on a copy of ours
	 * until its exec */
	pid_t pid = (pid_t)syscall(SYS_clone, sandbox_plan_clone_flags(&p) | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot create the namespaces (clone)");
		goto fail;
	}
	if (pid == 0)
		exec_init(&x, sv[1], o->out_fd);
	s->init = pid;
	close(sv[1]);
	sv[1] = -1;
	s->sock = sv[0];
	rc = sandbox_plan_run_parent(s, &p, pid, err);
	if (rc)
		goto fail;
	rc = release_init(s, o, &p, plan, plan_len, err);
	if (rc) {
		char *root = cbl_path_join(o->scratch, "root");
		const sandbox_step *f = s->failed_step >= 0 && (size_t)s->failed_step < p.n ? &p.v[s->failed_step] : NULL;
		*root_refused = f && (f->kind == SANDBOX_STEP_FUSE_ROOT ||
				      (f->kind == SANDBOX_STEP_OVERLAY && f->path && !strcmp(f->path, root)));
		free(root);
		goto fail;
	}
	/* the NAT helper started with the parent's steps, while the init set
	 * up its mounts: usually ready by now (3-4 ms) */
	rc = sandbox_nat_wait(s, 10000, err);
	if (rc)
		goto fail;
	init_exec_release(&x);
	free(plan);
	sandbox_plan_release(&p);
	*out = s;
	return 0;
fail:
	if (sv[1] >= 0)
		close(sv[1]);
	if (sv[0] >= 0 && sv[0] != s->sock)
		close(sv[0]);
	init_exec_release(&x);
	free(plan);
	sandbox_plan_release(&p);
	sandbox_free(s);
	return rc;
}

/* root_upper's mask/root (opaque: the host's /root is not shown), and
 * upper/ and work/ in root_upper_in (or root_upper), beneath their
 * descriptors; again after a fallback: kept. */
static int prepare_root_upper(const char *dir, const char *in, cbl_error **err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), m = -1, r = -1;
	int lfd = in ? open(in, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : fd;
	int rc = 0;
	static const char *const names[] = {"upper", "work"};
	for (size_t i = 0; lfd >= 0 && !rc && i < 2; i++)
		if (mkdirat(lfd, names[i], i == 1 ? 0700 : 0755) < 0 && errno != EEXIST)
			rc = -1;
	if (fd < 0 || lfd < 0 || rc || (mkdirat(fd, "mask", 0755) < 0 && errno != EEXIST) ||
	    (m = openat(fd, "mask", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    (mkdirat(m, "root", 0700) < 0 && errno != EEXIST) ||
	    (r = openat(m, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fsetxattr(r, "trusted.overlay.opaque", "y", 1, 0) < 0 || fchmod(m, 0755) < 0 || fchmod(r, 0700) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot prepare the root's upper layer in '%s'",
					 dir);
	if (rc == 0) {
		int u = openat(lfd, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (u < 0 || fchmod(u, 0755) < 0)
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot prepare '%s/upper'", in ? in : dir);
		if (u >= 0)
			close(u);
	}
	if (r >= 0)
		close(r);
	if (m >= 0)
		close(m);
	if (lfd >= 0 && lfd != fd)
		close(lfd);
	if (fd >= 0)
		close(fd);
	return rc;
}

int sandbox_start(sandbox_handle **out, const sandbox_opts *o, cbl_error **err)
{
	sandbox_ids ids;
	sandbox_ids_probe(&ids);
	if (o->root_upper && ids.uid == 0 && prepare_root_upper(o->root_upper, o->root_upper_in, err) < 0)
		return CBL_EIO;
	bool refused = false;
	cbl_error *first = NULL;
	int rc = start(out, o, &ids, &refused, &first);
	if (rc && refused && !o->ro_root && (ids.uid != 0 || o->fuse_root)) {
		/* overlayfs will not take this image's root in a user namespace
		 * (a kernel before 5.11, a filesystem it refuses there), or
		 * fuse-overlayfs failed: the root read-only (as root, the
		 * kernel's overlay) */
		sandbox_opts ro = *o;
		if (o->rootfs)
			ro.ro_root = true;
		ro.fuse_root = false;
		ids.fuse_overlayfs[0] = '\0';
		rc = start(out, &ro, &ids, &refused, err);
		if (rc == 0 && ids.uid != 0)
			cbl_strv_pushf(&(*out)->warnings, "the %s root is read-only (%s): only /tmp, /var/tmp, /root "
							   "and the mounts are writable",
				       o->rootfs ? "image's" : "host's", first->msg);
		else if (rc == 0)
			cbl_strv_pushf(&(*out)->warnings, "the root is the kernel's overlay (%s)", first->msg);
		cbl_error_free(first);
		return rc;
	}
	if (rc && err && !*err)
		*err = first;
	else
		cbl_error_free(first);
	return rc;
}

const char *sandbox_mount_error(const sandbox_handle *s, size_t i)
{
	return i < s->n_mounts ? s->mount_errs[i] : NULL;
}

const char *const *sandbox_warnings(const sandbox_handle *s)
{
	static const char *const none[] = {NULL};
	return s->warnings.n ? (const char *const *)s->warnings.v : none;
}

/* ---------------------------------------------------------------- commands */

/* Takes one record that is not the answer being waited for: a command's or
 * a session's end, kept for sandbox_wait / sandbox_session_ended. */
static void add_usage(sandbox_handle *s, const sandbox_rec *r);

static void keep_rec(sandbox_handle *s, const sandbox_rec *r)
{
	if (r->kind == SANDBOX_REC_EXITED) {
		s->cmd_ended = true;
		s->cmd_ws = r->status;
		add_usage(s, r);
	} else if (r->kind == SANDBOX_REC_SESSION_EXITED && s->n_sess < SANDBOX_MAX_SESSIONS) {
		s->sess_pid[s->n_sess] = r->err;
		s->sess_ws[s->n_sess++] = r->status;
	}
}

/* Reads records until the answer to a request (STARTED or SPAWN_ERR). */
static int read_answer(sandbox_handle *s, sandbox_rec *r, cbl_error **err)
{
	for (;;) {
		if (sandbox_read_full(s->sock, r, sizeof(*r)) < 0) {
			s->gone = true;
			return cbl_error_set(err, CBL_EIO, "sandbox: the init is gone");
		}
		if (r->kind == SANDBOX_REC_STARTED)
			return 0;
		if (r->kind == SANDBOX_REC_SPAWN_ERR)
			return cbl_error_set(err, CBL_EIO, "%s", r->msg);
		keep_rec(s, r);
	}
}

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
	rc = read_answer(s, &r, err);
	if (rc)
		goto out;
	s->running = true;
	s->cmd_ended = false;
out:
	cbl_buf_release(&req);
	return rc;
}

int sandbox_session_start(sandbox_handle *s, const sandbox_session_opts *o, pid_t *pid, cbl_error **err)
{
	cbl_buf req = CBL_BUF_INIT;
	size_t argc = 0;
	while (o->argv[argc])
		argc++;
	char num[24];
	snprintf(num, sizeof(num), "%zu", argc);
	cbl_buf_append(&req, "\0\0\0\0X", 5);
	cbl_buf_append(&req, "", 1);
	const char *fields[] = {o->tty ? "t" : "-", o->cwd ? o->cwd : "/", o->user ? o->user : "", num};
	for (int i = 0; i < 4; i++)
		cbl_buf_append(&req, fields[i], strlen(fields[i]) + 1);
	for (size_t i = 0; i < argc; i++)
		cbl_buf_append(&req, o->argv[i], strlen(o->argv[i]) + 1);
	for (size_t i = 0; o->envp && o->envp[i]; i++)
		cbl_buf_append(&req, o->envp[i], strlen(o->envp[i]) + 1);
	uint32_t len = (uint32_t)(req.len - 4);
	memcpy(req.ptr, &len, 4);
	/* the descriptors travel with the request's first bytes */
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = {.iov_base = req.ptr, .iov_len = req.len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(3 * sizeof(int));
	memcpy(CMSG_DATA(c), o->fds, 3 * sizeof(int));
	int rc = 0;
	ssize_t n;
	do
		n = sendmsg(s->sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (n < (ssize_t)req.len && cbl_write_all(s->sock, req.ptr + n, req.len - (size_t)n) < 0)) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: the init is gone");
		goto out;
	}
	sandbox_rec r;
	rc = read_answer(s, &r, err);
	if (!rc)
		*pid = r.status;
out:
	cbl_buf_release(&req);
	return rc;
}

void sandbox_session_kill(sandbox_handle *s, pid_t pid)
{
	if (s->sock < 0)
		return;
	char msg[4 + 1 + sizeof(pid_t)];
	uint32_t len = 1 + sizeof(pid_t);
	memcpy(msg, &len, 4);
	msg[4] = 'H';
	memcpy(msg + 5, &pid, sizeof(pid));
	cbl_write_all(s->sock, msg, sizeof(msg));
}

int sandbox_service(sandbox_handle *s, cbl_error **err)
{
	while (!s->gone) {
		struct pollfd p = {.fd = s->sock, .events = POLLIN};
		if (poll(&p, 1, 0) <= 0)
			break;
		sandbox_rec r;
		if (sandbox_read_full(s->sock, &r, sizeof(r)) < 0) {
			s->gone = true;
			break;
		}
		keep_rec(s, &r);
	}
	if (s->gone)
		return cbl_error_set(err, CBL_EIO, "sandbox: the init is gone");
	return s->cmd_ended ? 1 : 0;
}

bool sandbox_command_ended(const sandbox_handle *s) { return s->cmd_ended || s->gone; }

bool sandbox_session_ended(sandbox_handle *s, pid_t *pid, int *wstatus)
{
	if (!s->n_sess)
		return false;
	*pid = s->sess_pid[0];
	*wstatus = s->sess_ws[0];
	memmove(s->sess_pid, s->sess_pid + 1, (s->n_sess - 1) * sizeof(pid_t));
	memmove(s->sess_ws, s->sess_ws + 1, (s->n_sess - 1) * sizeof(int));
	s->n_sess--;
	return true;
}

int sandbox_fd(const sandbox_handle *s) { return s->sock; }
pid_t sandbox_pid(const sandbox_handle *s) { return s->init; }

bool sandbox_owns(const sandbox_handle *s, pid_t pid)
{
	return pid > 0 && (pid == s->init || pid == s->nat_pid || pid == s->fuse_pid);
}
bool sandbox_can_overlay(void) { return geteuid() == 0; }
bool sandbox_root_readonly(const sandbox_handle *s) { return s->root_ro; }
bool sandbox_root_fuse(const sandbox_handle *s) { return s->fuse_pid > 0; }

/* What the init counted for the command that ended (r: its EXITED record). */
static void add_usage(sandbox_handle *s, const sandbox_rec *r)
{
	sandbox_rec_usage ru;
	memcpy(&ru, r->msg, sizeof(ru));
	sandbox_usage *l = &s->last;
	*l = (sandbox_usage){.user_us = ru.utime_us,
			     .system_us = ru.stime_us,
			     .cpu_us = ru.utime_us + ru.stime_us,
			     .mem_peak = ru.maxrss_kb * 1024,
			     .read_bytes = ru.inblock * 512,
			     .write_bytes = ru.oublock * 512,
			     .source = "process tree"};
	s->sum.user_us += l->user_us;
	s->sum.system_us += l->system_us;
	s->sum.cpu_us += l->cpu_us;
	s->sum.read_bytes += l->read_bytes;
	s->sum.write_bytes += l->write_bytes;
	if (l->mem_peak > s->sum.mem_peak)
		s->sum.mem_peak = l->mem_peak;
	s->sum.source = l->source;
}

int sandbox_wait(sandbox_handle *s, int *wstatus, cbl_error **err)
{
	sandbox_rec r;
	while (!s->cmd_ended) {
		if (s->gone || sandbox_read_full(s->sock, &r, sizeof(r)) < 0) {
			s->gone = true;
			s->running = false;
			*wstatus = SIGKILL; /* as if killed: the namespace is gone */
			return cbl_error_set(err, CBL_EIO, "sandbox: the init is gone");
		}
		keep_rec(s, &r);
	}
	s->cmd_ended = false;
	s->running = false;
	*wstatus = s->cmd_ws;
	return 0;
}

void sandbox_usage_last(const sandbox_handle *s, sandbox_usage *out) { *out = s->last; }

void sandbox_usage_total(const sandbox_handle *s, sandbox_usage *out)
{
	*out = s->sum;
	sandbox_cgroups_usage(s, out);
}

void sandbox_usage_reset_peak(sandbox_handle *s)
{
	s->sum.mem_peak = 0;
	sandbox_cgroups_reset_peak(s);
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

/* In a child: builds the overlay where the layers' host paths resolve,
 * joins the sandbox's mount namespace and attaches it at target.  As root
 * that is the caller's own namespace.  Unprivileged the overlay must belong
 * to the sandbox's user namespace (only there may this process mount):
 * the child joins it, then makes a mount namespace of its own in it, a copy
 * of the caller's (so the host paths still resolve, and the mounts they lie
 * on are in the namespace that mounts, as overlayfs wants).  Failure: what
 * failed, written to report_fd. */
static __attribute__((noreturn)) void overlay_helper(const char *mnt_ns, const char *user_ns, const char *lower,
						     const char *upper, const char *work, const char *target,
						     int report_fd)
{
	const char *what = "open the sandbox's namespaces";
	int nsfd = open(mnt_ns, O_RDONLY | O_CLOEXEC);
	int usfd = user_ns ? open(user_ns, O_RDONLY | O_CLOEXEC) : -1;
	int fs = -1, mfd = -1;
	if (nsfd < 0 || (user_ns && usfd < 0))
		goto fail;
	if (user_ns) {
		what = "join the sandbox's user namespace";
		if (setns(usfd, CLONE_NEWUSER) < 0)
			goto fail;
		what = "make a mount namespace in it";
		if (unshare(CLONE_NEWNS) < 0)
			goto fail;
	}
	what = "open the overlay";
	fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		goto fail;
	what = "configure the overlay";
	if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
	    (user_ns && syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0) ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto fail;
	what = "create the overlay";
	mfd = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV); /* as every mount inside */
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
	char ns[64], user_ns[64];
	snprintf(ns, sizeof(ns), "/proc/%ld/ns/mnt", (long)s->init);
	snprintf(user_ns, sizeof(user_ns), "/proc/%ld/ns/user", (long)s->init);
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
		overlay_helper(ns, s->userns ? user_ns : NULL, lower, upper, work, target, p[1]);
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

/* path opened by a child that joined the sandbox's user and mount
 * namespaces, its descriptor passed back (SCM_RIGHTS); -1 with errno. */
static int open_dir_inside(const sandbox_handle *s, const char *path)
{
	char ns[64], user_ns[64];
	snprintf(ns, sizeof(ns), "/proc/%ld/ns/mnt", (long)s->init);
	snprintf(user_ns, sizeof(user_ns), "/proc/%ld/ns/user", (long)s->init);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		int usfd = open(user_ns, O_RDONLY | O_CLOEXEC), nsfd = open(ns, O_RDONLY | O_CLOEXEC);
		int e = EIO, fd = -1;
		if (usfd >= 0 && nsfd >= 0 && setns(usfd, CLONE_NEWUSER) == 0 && setns(nsfd, CLONE_NEWNS) == 0)
			fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			e = errno ? errno : EIO;
		char buf[CMSG_SPACE(sizeof(int))];
		memset(buf, 0, sizeof(buf));
		struct iovec iov = {.iov_base = &e, .iov_len = sizeof(e)};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (fd >= 0) {
			e = 0;
			mh.msg_control = buf;
			mh.msg_controllen = sizeof(buf);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
		}
		_exit(sendmsg(sv[1], &mh, 0) < 0 ? 1 : 0);
	}
	close(sv[1]);
	int e = EIO, fd = -1;
	char buf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &e, .iov_len = sizeof(e)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf)};
	if (recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC) > 0) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	}
	close(sv[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (fd < 0)
		errno = e ? e : EIO;
	return fd;
}

/* The sandbox's root as its init sees it, then path beneath it without
 * following a symlink (openat2: a component the commands replaced by a
 * link cannot lead out).  The descriptor holds the mount it is on (a path
 * reference), which outlives the namespace: when the sandbox ends its
 * mounts are detached, not destroyed, while something still uses them. */
int sandbox_open_dir(sandbox_handle *s, const char *path, int *out, cbl_error **err)
{
	char root[64];
	snprintf(root, sizeof(root), "/proc/%ld/root", (long)s->init);
	int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot open the sandbox's root");
	const char *rel = path;
	while (*rel == '/')
		rel++;
	/* no symlink anywhere (openat2, or a walk before Linux 5.6) */
	int fd = cbl_open_dir_beneath(rfd, rel, CBL_RESOLVE_NO_SYMLINKS, NULL);
	int e = errno;
	close(rfd);
	if (fd < 0 && e == EACCES && s->userns) {
		/* a root of fuse-overlayfs lets in only its user namespace's
		 * processes: a child joins it to open the directory */
		fd = open_dir_inside(s, path);
		e = fd < 0 ? errno : 0;
	}
	if (fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, e, "sandbox: cannot open %s inside", path);
	*out = fd;
	return 0;
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
	/* after the init: the mount namespace it serves is gone with it */
	sandbox_fuse_stop(s);
	if (s->sock >= 0)
		close(s->sock);
	sandbox_cgroups_remove(s);
	cbl_strv_release(&s->warnings);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mount_errs[i]);
		if (s->mount_upper)
			free(s->mount_upper[i]);
	}
	free(s->mount_errs);
	free(s->mount_upper);
	free(s->root_upper_name);
	if (s->scratch_fd >= 0)
		close(s->scratch_fd);
	free(s);
}
