/* runner/debug.c - debugging a running build: the attach socket, and the
 * pause at a failing command (run --debug) or at codebuild-breakpoint.
 *
 * The service's model (Session Manager debugging): with debugging on, a
 * `codebuild-breakpoint` command pauses the build until `codebuild-resume`
 * runs in a session; without it the command is a no-op.  Locally a failing
 * command pauses the build too (run --debug), and whoever attaches gets a
 * shell in the build's sandbox at that point.
 *
 * Every build with a sandbox listens on <build dir>/debug.sock (0600, in the
 * build's 0700 directory) for `codebuild-local attach` and `exec` (and the
 * terminal of `run --debug` itself): the client sends the descriptors the
 * session gets (a terminal it made, or its own stdin/stdout/stderr), the
 * runner asks the sandbox's init to start the session next to the build's
 * commands: same namespaces, capabilities, seccomp filter and limits, with
 * the build's environment, carried variables, working directory and run-as
 * user (the next command's).  Only the build's own user or root is served
 * (SO_PEERCRED), whatever the directory's permissions.
 *
 * `codebuild-resume` inside a session creates the marker file
 * RUNNER_DEBUG_MARKER in the build's scratch directory (the build could too:
 * resuming itself is its own business); the pause loop looks for it.
 */
#include "runner/runner_internal.h"
#include "sandbox/sandbox.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/safeopen.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

enum { MAX_CLIENTS = 16 };

typedef struct debug_client {
	int fd;
	pid_t pid;           /* its session in the sandbox, 0 = none yet */
	bool resume_on_exit; /* run --debug's own terminal: its end resumes the build */
} debug_client;

struct runner_debug {
	int listen_fd;
	int dir_fd;
	int bin_fd;          /* the scratch's debug-bin: codebuild-resume and its marker */
	debug_client c[MAX_CLIENTS];
	size_t n;
	bool paused, resume, at_breakpoint;
	char *where;         /* the prompt's "PHASE: command" while paused */
};

#define SOCK_NAME "debug.sock"
#define BIN_DIR "debug-bin"

/* A path that reaches name in the directory dir_fd whatever its length
 * (sun_path holds 108 bytes; the build's directory may be deeper). */
static void sock_addr(struct sockaddr_un *a, int dir_fd)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/" SOCK_NAME, dir_fd);
}

/* codebuild-resume, for the sessions' PATH: the marker, then the end of
 * the session that ran it (run --debug's shell). */
static void write_resume_script(runner_build *b, runner_debug *dbg)
{
	cbl_error *e = NULL;
	if (mkdirat(b->sh.tmp_fd, BIN_DIR, 0755) < 0 && errno != EEXIST)
		return;
	int d = cbl_open_beneath(b->sh.tmp_fd, BIN_DIR, O_RDONLY | O_DIRECTORY, 0, CBL_RESOLVE_NO_SYMLINKS, &e);
	if (d < 0) {
		cbl_error_free(e);
		return;
	}
	/* a run-as user leaves the marker too */
	fchmod(d, 01777);
	cbl_buf s = CBL_BUF_INIT;
	cbl_buf_puts(&s, "#!/bin/sh\n: > ");
	char *marker = cbl_xasprintf("%s/" BIN_DIR "/" RUNNER_DEBUG_MARKER, b->sh.tmpdir_inner);
	cbl_buf_shquote(&s, marker);
	cbl_buf_puts(&s, " 2>/dev/null || { echo 'codebuild-resume: cannot reach the build' >&2; exit 1; }\n"
			 "echo 'codebuild-resume: the build goes on'\n");
	if (cbl_write_at_atomic(d, "codebuild-resume", s.ptr, s.len, 0755, &e) < 0)
		cbl_error_free(e);
	free(marker);
	cbl_buf_release(&s);
	dbg->bin_fd = d;
}

int runner_debug_listen(runner_build *b, cbl_error **err)
{
	if (!b->sandbox || b->dbg)
		return 0;
	runner_debug *d = cbl_xcalloc(1, sizeof(*d));
	d->listen_fd = d->dir_fd = d->bin_fd = -1;
	d->dir_fd = open(b->ident.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (d->dir_fd < 0) {
		free(d);
		return cbl_error_set_errno(err, CBL_EIO, errno, "debug socket: cannot open '%s'", b->ident.dir);
	}
	unlinkat(d->dir_fd, SOCK_NAME, 0);
	struct sockaddr_un a;
	sock_addr(&a, d->dir_fd);
	d->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	mode_t old = umask(0077);
	int rc = d->listen_fd < 0 || bind(d->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		 listen(d->listen_fd, 8) < 0;
	int e = errno;
	umask(old);
	b->dbg = d;
	if (rc) {
		runner_debug_close(b);
		return cbl_error_set_errno(err, CBL_EIO, e, "debug socket: cannot listen in '%s'", b->ident.dir);
	}
	(void)!fchmodat(d->dir_fd, SOCK_NAME, 0600, 0);
	write_resume_script(b, d);
	return 0;
}

void runner_debug_close(runner_build *b)
{
	runner_debug *d = b->dbg;
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		close(d->c[i].fd);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (d->bin_fd >= 0)
		close(d->bin_fd);
	if (d->dir_fd >= 0) {
		unlinkat(d->dir_fd, SOCK_NAME, 0);
		close(d->dir_fd);
	}
	free(d->where);
	free(d);
	b->dbg = NULL;
}

static void answer(int fd, int kind, int status, const char *msg)
{
	runner_debug_reply r = {.kind = kind, .status = status};
	if (msg)
		snprintf(r.msg, sizeof(r.msg), "%s", msg);
	(void)!send(fd, &r, sizeof(r), MSG_NOSIGNAL);
}

static void drop_client(runner_debug *d, size_t i)
{
	close(d->c[i].fd);
	d->c[i] = d->c[--d->n];
}

/* The session's argv: the build's shell running a setup that reads the
 * carried state as the next command would, then the user's command or an
 * interactive shell whose prompt says where the build is. */
static char **session_argv(runner_build *b, const runner_debug_request *rq, char **args, cbl_buf *setup)
{
	runner_shell *sh = &b->sh;
	if (sh->carry) {
		cbl_buf_puts(setup, "set -a; . ");
		cbl_buf_shquote(setup, sh->env_inner);
		cbl_buf_puts(setup, " 2>/dev/null; set +a; ");
	}
	cbl_buf_puts(setup, "cd -- ");
	cbl_buf_shquote(setup, sh->carry ? sh->cwd : sh->start_dir);
	cbl_buf_puts(setup, " 2>/dev/null; PATH=");
	char *bin = cbl_path_join(sh->tmpdir_inner, BIN_DIR);
	cbl_buf_shquote(setup, bin);
	free(bin);
	cbl_buf_puts(setup, "${PATH:+:$PATH}; export PATH; ");
	size_t n = 0;
	char **argv = cbl_xcalloc(rq->argc + 6, sizeof(char *));
	argv[n++] = sh->shell;
	argv[n++] = (char *)"-c";
	if (rq->kind == RUNNER_DEBUG_SHELL) {
		cbl_buf prompt = CBL_BUF_INIT;
		cbl_buf_printf(&prompt, "[codebuild-local %s] \\$ ", b->dbg->where ? b->dbg->where : "attached");
		cbl_buf_puts(setup, "PS1=");
		cbl_buf_shquote(setup, prompt.ptr);
		cbl_buf_release(&prompt);
		cbl_buf_puts(setup, "; export PS1; echo 'codebuild-local: a shell in the build");
		bool ex = rq->flags & RUNNER_DEBUG_RESUME_ON_EXIT;
		if (b->dbg->paused && !b->dbg->at_breakpoint)
			cbl_buf_puts(setup, ex ? " (paused; `codebuild-resume` or `exit` goes on; the failing command "
					       : " (paused; `codebuild-resume` goes on; the failing command "
					    "is in $CODEBUILD_DEBUG_COMMAND: retry it with `eval \"$CODEBUILD_DEBUG_COMMAND\"`)");
		else if (b->dbg->paused)
			cbl_buf_puts(setup, ex ? " (paused at codebuild-breakpoint; `codebuild-resume` or `exit` goes on)"
					       : " (paused at codebuild-breakpoint; `codebuild-resume` goes on)");
		cbl_buf_puts(setup, "'; ");
		bool bash = strstr(sh->shell, "bash") != NULL;
		cbl_buf_puts(setup, "exec ");
		cbl_buf_shquote(setup, sh->shell);
		cbl_buf_puts(setup, bash ? " --norc --noprofile -i" : " -i");
		argv[n++] = setup->ptr;
	} else {
		cbl_buf_puts(setup, "exec \"$@\"");
		argv[n++] = setup->ptr;
		argv[n++] = (char *)"codebuild-local-exec";
		for (uint32_t i = 0; i < rq->argc; i++)
			argv[n++] = args[i];
	}
	return argv;
}

/* A request of a client: start its session, or resume. */
static void serve_request(runner_build *b, size_t ci)
{
	runner_debug *d = b->dbg;
	debug_client *c = &d->c[ci];
	runner_debug_request rq;
	int fds[3] = {-1, -1, -1}, nfds = 0;
	char **args = NULL;
	char *strs = NULL;
	cbl_error *e = NULL;
	if (runner_debug_recv(c->fd, &rq, fds, &nfds, &strs, &args, &e) < 0) {
		answer(c->fd, RUNNER_DEBUG_ERROR, 0, e->msg);
		cbl_error_free(e);
		drop_client(d, ci);
		goto out;
	}
	if (rq.kind == RUNNER_DEBUG_RESUME) {
		if (d->paused)
			d->resume = true;
		answer(c->fd, d->paused ? RUNNER_DEBUG_EXITED : RUNNER_DEBUG_ERROR, 0,
		       d->paused ? NULL : "the build is not paused");
		drop_client(d, ci);
		goto out;
	}
	if (nfds != 3 && !(nfds == 1 && (rq.flags & RUNNER_DEBUG_TTY))) {
		answer(c->fd, RUNNER_DEBUG_ERROR, 0, "a session needs its descriptors");
		drop_client(d, ci);
		goto out;
	}
	cbl_buf setup = CBL_BUF_INIT;
	char **argv = session_argv(b, &rq, args, &setup);
	cbl_strv env = CBL_STRV_INIT;
	for (size_t i = 0; i < b->vars.env.n; i++)
		cbl_strv_push(&env, b->vars.env.v[i]);
	if (d->paused && d->where)
		cbl_env_set(&env, "CODEBUILD_DEBUG_COMMAND", strchr(d->where, ':') ? strchr(d->where, ':') + 2 : "");
	sandbox_session_opts so = {.argv = (const char *const *)argv, .cwd = b->sh.carry ? b->sh.cwd : b->sh.start_dir,
				   .user = b->sh.run_as, .envp = env.v, .tty = (rq.flags & RUNNER_DEBUG_TTY) != 0};
	for (int i = 0; i < 3; i++)
		so.fds[i] = fds[nfds == 1 ? 0 : i];
	pid_t pid = 0;
	if (sandbox_session_start(b->sandbox, &so, &pid, &e) < 0) {
		answer(c->fd, RUNNER_DEBUG_ERROR, 0, e->msg);
		cbl_error_free(e);
		drop_client(d, ci);
	} else {
		c->pid = pid;
		c->resume_on_exit = (rq.flags & RUNNER_DEBUG_RESUME_ON_EXIT) && d->paused;
		if (c->resume_on_exit)
			b->sh.paused_output = true;
		answer(c->fd, RUNNER_DEBUG_STARTED, pid, NULL);
	}
	free(argv);
	cbl_buf_release(&setup);
	cbl_strv_release(&env);
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	free(args);
	free(strs);
}

/* A new connection: served when it is the build's user's or root's. */
static void accept_client(runner_build *b)
{
	runner_debug *d = b->dbg;
	int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || (cr.uid != 0 && cr.uid != geteuid())) {
		char m[160];
		snprintf(m, sizeof(m), "permission denied: only the user who started the build (uid %u), or root, "
				       "may enter it",
			 (unsigned)geteuid());
		answer(fd, RUNNER_DEBUG_ERROR, 0, m);
		close(fd);
		return;
	}
	if (d->n == MAX_CLIENTS) {
		answer(fd, RUNNER_DEBUG_ERROR, 0, "too many sessions in this build");
		close(fd);
		return;
	}
	/* the request follows at once: a client that never sends one cannot
	 * hold the build (it is the build's own user, but still) */
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	d->c[d->n++] = (debug_client){.fd = fd};
	serve_request(b, d->n - 1);
}

/* Sessions that ended: their clients get the exit status. */
static void reap_sessions(runner_build *b)
{
	runner_debug *d = b->dbg;
	pid_t pid;
	int ws;
	while (sandbox_session_ended(b->sandbox, &pid, &ws)) {
		for (size_t i = 0; i < d->n; i++) {
			if (d->c[i].pid != pid)
				continue;
			int st = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
			answer(d->c[i].fd, RUNNER_DEBUG_EXITED, st, NULL);
			if (d->c[i].resume_on_exit && d->paused)
				d->resume = true;
			/* the client closes once it has restored its terminal */
			d->c[i].pid = -1;
		}
	}
}

static size_t extra_fds(struct pollfd *p, size_t max, void *payload)
{
	runner_build *b = payload;
	runner_debug *d = b->dbg;
	size_t n = 0;
	if (!d || !max)
		return 0;
	p[n++] = (struct pollfd){.fd = d->listen_fd, .events = POLLIN};
	for (size_t i = 0; i < d->n && n < max; i++)
		p[n++] = (struct pollfd){.fd = d->c[i].fd, .events = POLLIN};
	return n;
}

static void on_extra(const struct pollfd *p, size_t n, void *payload)
{
	runner_build *b = payload;
	runner_debug *d = b->dbg;
	if (!d)
		return;
	reap_sessions(b);
	/* a client that hangs up (or sends anything more) ends its session */
	for (size_t k = 1; k < n; k++) {
		if (!p[k].revents)
			continue;
		for (size_t i = 0; i < d->n; i++) {
			if (d->c[i].fd != p[k].fd)
				continue;
			if (d->c[i].pid > 0)
				sandbox_session_kill(b->sandbox, d->c[i].pid);
			if (d->c[i].resume_on_exit)
				b->sh.paused_output = false;
			drop_client(d, i);
			break;
		}
	}
	if (n && p[0].revents)
		accept_client(b);
}

void runner_debug_hook(runner_build *b)
{
	if (!b->dbg)
		return;
	b->sh.extra_fds = extra_fds;
	b->sh.on_extra = on_extra;
	b->sh.extra_payload = b;
}

/* The marker codebuild-resume leaves; removed when seen. */
static bool resume_marker(runner_build *b)
{
	struct stat st;
	int d = b->dbg->bin_fd;
	if (d < 0 || fstatat(d, RUNNER_DEBUG_MARKER, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	unlinkat(d, RUNNER_DEBUG_MARKER, 0);
	return true;
}

/* Waits while paused: sessions come and go; the end of run --debug's own
 * shell, codebuild-resume, a stop or the deadline end it. */
static runner_cmd_outcome pause_loop(runner_build *b)
{
	runner_debug *d = b->dbg;
	runner_shell *sh = &b->sh;
	while (!d->resume) {
		struct pollfd p[4 + MAX_CLIENTS];
		size_t np = 0;
		p[np++] = (struct pollfd){.fd = sh->paused_output ? -1 : sh->out_r, .events = POLLIN};
		p[np++] = (struct pollfd){.fd = sandbox_fd(b->sandbox), .events = POLLIN};
		p[np++] = (struct pollfd){.fd = sh->stop_r, .events = POLLIN};
		size_t base = np;
		np += extra_fds(p + np, MAX_CLIENTS + 1, b);
		int timeout = 100;
		if (b->deadline_mono_us) {
			int64_t left = (b->deadline_mono_us - cbl_mono_us()) / 1000;
			if (left <= 0)
				return RUNNER_CMD_TIMED_OUT;
			if (left < timeout)
				timeout = (int)left + 1;
		}
		int r = poll(p, (nfds_t)np, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && p[0].revents)
			runner_shell_drain(sh, 0);
		if (r > 0 && p[2].revents)
			return RUNNER_CMD_STOPPED;
		if (r > 0 && p[1].revents) {
			cbl_error *e = NULL;
			if (sandbox_service(b->sandbox, &e) < 0) {
				cbl_error_free(e);
				break;
			}
		}
		on_extra(p + base, r > 0 ? np - base : 0, b);
		if (resume_marker(b))
			d->resume = true;
	}
	return RUNNER_CMD_EXITED;
}

/* After resuming: run --debug's own shell is ended, and its client gets a
 * moment to give the terminal back before the build prints again. */
static void end_terminal_session(runner_build *b)
{
	runner_debug *d = b->dbg;
	int64_t until = cbl_mono_us() + 3000000;
	for (size_t i = 0; i < d->n; i++)
		if (d->c[i].resume_on_exit && d->c[i].pid > 0)
			sandbox_session_kill(b->sandbox, d->c[i].pid);
	for (;;) {
		bool waiting = false;
		for (size_t i = 0; i < d->n; i++)
			waiting |= d->c[i].resume_on_exit;
		if (!waiting || cbl_mono_us() > until)
			break;
		struct pollfd p[1 + MAX_CLIENTS + 1];
		p[0] = (struct pollfd){.fd = sandbox_fd(b->sandbox), .events = POLLIN};
		size_t np = 1 + extra_fds(p + 1, MAX_CLIENTS + 1, b);
		int r = poll(p, (nfds_t)np, 100);
		if (r > 0 && p[0].revents) {
			cbl_error *e = NULL;
			if (sandbox_service(b->sandbox, &e) < 0) {
				cbl_error_free(e);
				break;
			}
		}
		on_extra(p + 1, r > 0 ? np - 1 : 0, b);
	}
	/* a terminal client that did not go in time loses its session */
	for (size_t i = 0; i < d->n;) {
		if (d->c[i].resume_on_exit)
			drop_client(d, i);
		else
			i++;
	}
	b->sh.paused_output = false;
}

runner_cmd_outcome runner_debug_pause(runner_build *b, runner_phase_type p, const char *cmd, bool breakpoint)
{
	runner_debug *d = b->dbg;
	if (!d)
		return RUNNER_CMD_EXITED;
	char *masked = runner_mask_apply(&b->log.mask, cmd, strlen(cmd));
	free(d->where);
	d->where = cbl_xasprintf("%s: %s", runner_phase_name(p), cmd);
	d->paused = true;
	d->at_breakpoint = breakpoint;
	d->resume = false;
	resume_marker(b); /* a stale one does not count */
	runner_agent(b, "[codebuild-local] Build paused %s in phase %s (%s)", breakpoint ? "at a breakpoint" : "after a failed command",
		     runner_phase_name(p), masked);
	runner_agent(b, "[codebuild-local] Enter it: codebuild-local attach %s; or one command: codebuild-local exec %s -- CMD", b->ident.id,
		     b->ident.id);
	runner_agent(b, "[codebuild-local] Go on: codebuild-resume inside, or codebuild-local exec %s -- codebuild-resume",
		     b->ident.id);
	runner_event ev = {.kind = RUNNER_EV_PAUSED, .phase = p, .text = masked};
	runner_emit(b, &ev);
	runner_cmd_outcome how = pause_loop(b);
	end_terminal_session(b);
	d->paused = false;
	runner_agent(b, "[codebuild-local] Build resumed");
	free(masked);
	return how;
}

bool runner_is_breakpoint(const char *cmd)
{
	while (*cmd == ' ' || *cmd == '\t')
		cmd++;
	size_t n = strlen("codebuild-breakpoint");
	if (strncmp(cmd, "codebuild-breakpoint", n))
		return false;
	for (cmd += n; *cmd; cmd++)
		if (*cmd != ' ' && *cmd != '\t' && *cmd != '\n' && *cmd != ';')
			return false;
	return true;
}
