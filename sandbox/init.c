/* sandbox/init.c - PID 1 of the sandbox: replays the plan's steps, then
 * starts the commands the parent asks for and reaps every process.
 *
 * Why an init process serves the commands instead of the parent spawning
 * them with setns(): joining a PID namespace only affects later children and
 * a mount namespace cannot be joined by a multi-threaded process, while a
 * long-lived PID 1 inside the namespaces can fork each command cheaply,
 * reaps every orphan, and takes everything down with it.
 *
 * Why a fresh exec (sandbox_start clones, then the clone runs the embedded
 * init program, sandbox/initexe/main.c, or /proc/self/exe, with
 * SANDBOX_INIT_ARG) rather than the fork of the parent it used to be: a fork is a copy of the runner, its memory (the state
 * database's pages, a server's signing secret), its environment (the
 * invoking shell's AWS_SECRET_ACCESS_KEY) and its descriptors, and the
 * commands could read all of it from /proc/1.  The exec'd init starts with
 * none of that: an empty environment, descriptors 0-3 only, and it makes
 * itself non-dumpable before anything runs inside, so a command (whatever
 * its capabilities short of SYS_PTRACE) can neither ptrace it nor open its
 * /proc/1/{environ,mem,fd/N}.  It also means the clone of a multi-threaded
 * runner runs only async-signal-safe calls before the exec.
 *
 * It reports over the socket as typed records (sandbox_internal.h).
 */
#include "sandbox/sandbox_internal.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

/* Reads one length-prefixed request, and the descriptors sent with its
 * first bytes (a session's: up to 3; more are closed). */
static char *read_request(int fd, uint32_t *len, int fds[3], int *nfds)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = len, .iov_len = sizeof(*len)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	*nfds = 0;
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return NULL;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int got[4];
		memcpy(got, CMSG_DATA(c), k * sizeof(int));
		for (size_t i = 0; i < k; i++) {
			if (*nfds < 3)
				fds[(*nfds)++] = got[i];
			else
				close(got[i]);
		}
	}
	if ((size_t)n < sizeof(*len) &&
	    sandbox_read_full(fd, (char *)len + n, sizeof(*len) - (size_t)n) < 0)
		return NULL;
	if (*len > (64u << 20))
		return NULL;
	char *buf = malloc(*len + 1);
	if (!buf)
		return NULL;
	if (sandbox_read_full(fd, buf, *len) < 0) {
		free(buf);
		return NULL;
	}
	buf[*len] = '\0';
	return buf;
}

/* Switches to the user pw (NULL = stay root): 0, or -1 after saying why on
 * stderr. */
static int become(struct passwd *pw)
{
	if (!pw)
		return 0;
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		return -1;
	initgroups(pw->pw_name, pw->pw_gid);
	if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		dprintf(2, "run-as %s: %s\n", pw->pw_name, strerror(errno));
		return -1;
	}
	return 0;
}

static __attribute__((noreturn)) void exec_command(char *const f[4], struct passwd *pw, int out_fd,
						   char **envp)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid(); /* no controlling terminal: /dev/tty fails */
	int dn = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (dn >= 0)
		dup2(dn, 0);
	dup2(out_fd, 1);
	dup2(out_fd, 2);
	/* nothing the parent (or its caller) had open leaks inside */
	syscall(SYS_close_range, 3, ~0U, 0);
	if (chdir(f[2]) < 0 && chdir("/") < 0)
		_exit(126);
	if (become(pw) < 0)
		_exit(126);
	char *argv[] = {f[0], f[1], NULL};
	execve(f[0], argv, envp);
	dprintf(2, "%s: %s\n", f[0], strerror(errno));
	_exit(127);
}

static void spawn_command(int sock, int out_fd, char *req, uint32_t len, pid_t *cmd_pid)
{
	/* S \0 path \0 arg \0 cwd \0 user \0 env... */
	char *f[4];
	char *p = req + 2, *end = req + len;
	for (int i = 0; i < 4; i++) {
		f[i] = p;
		p += strlen(p) + 1;
		if (p > end) {
			sandbox_send_rec(sock, SANDBOX_REC_SPAWN_ERR, 0, EINVAL, "malformed request");
			return;
		}
	}
	size_t nenv = 0;
	for (char *q = p; q < end; q += strlen(q) + 1)
		nenv++;
	char **envp = calloc(nenv + 1, sizeof(char *));
	if (!envp) {
		sandbox_send_rec(sock, SANDBOX_REC_SPAWN_ERR, 0, ENOMEM, "out of memory");
		return;
	}
	size_t k = 0;
	for (char *q = p; q < end; q += strlen(q) + 1)
		envp[k++] = q;
	struct passwd *pw = NULL;
	if (*f[3]) {
		pw = getpwnam(f[3]);
		if (!pw) {
			char m[200];
			snprintf(m, sizeof(m), "run-as: no user '%s' in the image", f[3]);
			free(envp);
			sandbox_send_rec(sock, SANDBOX_REC_SPAWN_ERR, 0, ENOENT, m);
			return;
		}
	}
	pid_t pid = fork();
	if (pid < 0) {
		free(envp);
		sandbox_send_rec(sock, SANDBOX_REC_SPAWN_ERR, 0, errno, "fork failed");
		return;
	}
	if (pid == 0)
		exec_command(f, pw, out_fd, envp);
	free(envp);
	*cmd_pid = pid;
	sandbox_send_rec(sock, SANDBOX_REC_STARTED, pid, 0, NULL);
}

static __attribute__((noreturn)) void exec_session(const int fds[3], bool tty, const char *cwd,
						   struct passwd *pw, char **argv, char **envp)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	for (int i = 0; i < 3; i++)
		if (fds[i] != i && dup2(fds[i], i) < 0)
			_exit(126);
	syscall(SYS_close_range, 3, ~0U, 0);
	if (tty)
		ioctl(0, TIOCSCTTY, 0); /* job control; the shell works without it */
	if (chdir(cwd) < 0 && chdir("/") < 0)
		_exit(126);
	if (become(pw) < 0)
		_exit(126);
	execve(argv[0], argv, envp);
	dprintf(2, "%s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* X \0 flags \0 cwd \0 user \0 argc \0 argv... env...: a session, on the
 * descriptors that came with the request. */
static void spawn_session(int sock, char *req, uint32_t len, const int fds[3], int nfds, pid_t *sess)
{
	char *end = req + len, *p = req + 2, *f[4];
	const char *bad = nfds == 3 ? NULL : "a session needs 3 descriptors";
	for (int i = 0; !bad && i < 4; i++) {
		f[i] = p;
		p += strlen(p) + 1;
		if (p > end)
			bad = "malformed request";
	}
	long argc = bad ? 0 : strtol(f[3], NULL, 10);
	size_t slot = SANDBOX_MAX_SESSIONS;
	for (size_t i = 0; i < SANDBOX_MAX_SESSIONS; i++)
		if (sess[i] <= 0) {
			slot = i;
			break;
		}
	if (!bad && slot == SANDBOX_MAX_SESSIONS)
		bad = "too many sessions";
	if (!bad && (argc < 1 || argc > 4096))
		bad = "malformed request";
	size_t nstr = 0;
	for (char *q = p; !bad && q < end; q += strlen(q) + 1)
		nstr++;
	if (!bad && nstr < (size_t)argc)
		bad = "malformed request";
	char **argv = bad ? NULL : calloc(nstr + 2, sizeof(char *));
	if (!bad && !argv)
		bad = "out of memory";
	struct passwd *pw = NULL;
	if (!bad && *f[2] && !(pw = getpwnam(f[2])))
		bad = "run-as: no such user in the image";
	if (bad) {
		free(argv);
		sandbox_send_rec(sock, SANDBOX_REC_SPAWN_ERR, 0, EINVAL, bad);
		return;
	}
	size_t k = 0;
	for (char *q = p; q < end; q += strlen(q) + 1)
		argv[k++] = q;
	/* argv[0..argc-1], NULL, then the environment */
	char **envp = argv + argc + 1;
	memmove(envp, argv + argc, (nstr - (size_t)argc) * sizeof(char *));
	envp[nstr - (size_t)argc] = NULL;
	argv[argc] = NULL;
	pid_t pid = fork();
	if (pid == 0)
		exec_session(fds, f[0][0] == 't', f[1], pw, argv, envp);
	int e = errno;
	free(argv);
	if (pid < 0) {
		sandbox_send_rec(sock, SANDBOX_REC_SPAWN_ERR, 0, e, "fork failed");
		return;
	}
	sess[slot] = pid;
	sandbox_send_rec(sock, SANDBOX_REC_STARTED, pid, 0, NULL);
}

/* H pid: kills a session's process group (its session leader's). */
static void kill_session(const char *req, const pid_t *sess)
{
	pid_t pid;
	memcpy(&pid, req + 1, sizeof(pid));
	for (size_t i = 0; i < SANDBOX_MAX_SESSIONS; i++)
		if (pid > 1 && sess[i] == pid) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
}

static void kill_everything(void)
{
	/* as PID 1 of the namespace, -1 reaches every other process in it */
	kill(-1, SIGKILL);
}

/* A limit the cgroups could not take: an rlimit instead, inherited by every
 * command (the parent has warned about its weaknesses). */
static void rlimit_fallback(const sandbox_step *st, int sync)
{
	struct rlimit rl = {(rlim_t)st->num, (rlim_t)st->num};
	if (st->kind == SANDBOX_STEP_MEMORY_LIMIT && (sync & SANDBOX_RLIM_AS))
		setrlimit(RLIMIT_AS, &rl);
	else if (st->kind == SANDBOX_STEP_PIDS_LIMIT && (sync & SANDBOX_RLIM_NPROC))
		setrlimit(RLIMIT_NPROC, &rl);
}

static void init_setup(const sandbox_plan *p, int sock, int sync)
{
	char buf[256], desc[200];
	for (size_t i = 0; i < p->n; i++) {
		const sandbox_step *st = &p->v[i];
		if (sandbox_step_side(st->kind) != SANDBOX_IN_INIT) {
			rlimit_fallback(st, sync);
			continue;
		}
		if (st->kind == SANDBOX_STEP_FUSE_ROOT || st->kind == SANDBOX_STEP_HOLD_SCRATCH) {
			/* the parent mounts it (fuse.c) or opens the scratch,
			 * then says go on; on its failure it reports the error
			 * itself */
			char c = 0;
			if (sandbox_send_rec(sock, SANDBOX_REC_PARENT_STEP, (int)i, 0, NULL) < 0 ||
			    sandbox_read_full(sock, &c, 1) < 0 || c != 'c')
				_exit(1);
			continue;
		}
		if (sandbox_step_run(st) < 0) {
			int e = errno;
			snprintf(buf, sizeof(buf), "%s: %s", sandbox_step_describe(st, desc, sizeof(desc)),
				 strerror(e));
			if (st->kind == SANDBOX_STEP_OVERLAY && st->num > 0) {
				/* the caller's optional overlay: it falls back */
				sandbox_send_rec(sock, SANDBOX_REC_MOUNT_ERR, (int)(st->num - 1), e, buf);
				continue;
			}
			sandbox_send_rec(sock, SANDBOX_REC_SETUP_ERR, (int)i, e, buf);
			_exit(1);
		}
	}
}

/* The command's end, with what wait4 counted for it. */
static void send_exited(int sock, int ws, const struct rusage *ru)
{
	sandbox_rec r = {SANDBOX_REC_EXITED, ws, 0, {0}};
	sandbox_rec_usage u = {
		.utime_us = (int64_t)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec,
		.stime_us = (int64_t)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec,
		.maxrss_kb = ru->ru_maxrss,
		.inblock = ru->ru_inblock,
		.oublock = ru->ru_oublock,
	};
	_Static_assert(sizeof(u) <= sizeof(r.msg), "usage fits a record");
	memcpy(r.msg, &u, sizeof(u));
	cbl_write_all(sock, &r, sizeof(r));
}

static __attribute__((noreturn)) void init_serve(int sock, int out_fd)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	sandbox_send_rec(sock, SANDBOX_REC_READY, 0, 0, NULL);

	pid_t cmd_pid = -1;
	pid_t sess[SANDBOX_MAX_SESSIONS] = {0};
	for (;;) {
		struct pollfd pf[2] = {{.fd = sock, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
		}
		/* reap everything: commands and orphaned daemons alike */
		for (;;) {
			int ws;
			struct rusage ru;
			pid_t w = wait4(-1, &ws, WNOHANG, &ru);
			if (w <= 0)
				break;
			if (w == cmd_pid) {
				cmd_pid = -1;
				send_exited(sock, ws, &ru);
			}
			for (size_t i = 0; i < SANDBOX_MAX_SESSIONS; i++)
				if (sess[i] == w) {
					sess[i] = 0;
					sandbox_send_rec(sock, SANDBOX_REC_SESSION_EXITED, ws, (int)w, NULL);
				}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint32_t len = 0;
			int fds[3], nfds = 0;
			char *req = read_request(sock, &len, fds, &nfds);
			if (!req)
				break; /* the parent went away */
			if (len >= 1 && req[0] == 'S')
				spawn_command(sock, out_fd, req, len, &cmd_pid);
			else if (len >= 2 && req[0] == 'X')
				spawn_session(sock, req, len, fds, nfds, sess);
			else if (len >= 1 && req[0] == 'K')
				kill_everything();
			else if (len == 1 + sizeof(pid_t) && req[0] == 'H')
				kill_session(req, sess);
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			free(req);
		}
	}
	kill_everything();
	_exit(0);
}

/* Reads what the parent sends once its steps are done: the sync byte and
 * the plan (the go byte was read before the exec). */
static int read_plan(int sock, sandbox_plan *p, int *sync)
{
	unsigned char c;
	uint32_t len;
	if (sandbox_read_full(sock, &c, 1) < 0 || (c & ~0x3f) != SANDBOX_SYNC_BASE ||
	    sandbox_read_full(sock, &len, sizeof(len)) < 0 || len > SANDBOX_PLAN_MAX)
		return -1;
	char *buf = malloc(len ? len : 1);
	if (!buf)
		return -1;
	int rc = sandbox_read_full(sock, buf, len) < 0 ? -1 : sandbox_plan_decode(p, buf, len);
	free(buf);
	*sync = c;
	return rc;
}

/* Started by sandbox_start with 0 /dev/null, 1 and 2 the output and the
 * socket at SANDBOX_INIT_SOCK: anything else is not ours to serve. */
static bool started_as_init(int argc, char **argv)
{
	struct stat st;
	return argc == 2 && !strcmp(argv[1], SANDBOX_INIT_ARG) && getpid() == 1 &&
	       fstat(SANDBOX_INIT_SOCK, &st) == 0 && S_ISSOCK(st.st_mode);
}

int sandbox_init_main(int argc, char **argv)
{
	if (!started_as_init(argc, argv))
		return 2;
	/* before anything of the build runs: no ptrace, no /proc/1/mem,
	 * environ or fd for the commands */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_NAME, "codebuild-local", 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* an exec keeps ignored signals: the reaping needs SIGCHLD's default */
	signal(SIGCHLD, SIG_DFL);
	sandbox_plan p = SANDBOX_PLAN_INIT;
	int sync = 0;
	if (read_plan(SANDBOX_INIT_SOCK, &p, &sync) < 0) {
		sandbox_send_rec(SANDBOX_INIT_SOCK, SANDBOX_REC_SETUP_ERR, -1, EPROTO,
				 "the init could not read the plan from its parent");
		_exit(1);
	}
	init_setup(&p, SANDBOX_INIT_SOCK, sync);
	sandbox_plan_release(&p);
	init_serve(SANDBOX_INIT_SOCK, SANDBOX_INIT_OUT);
}
