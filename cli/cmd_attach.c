/* cli/cmd_attach.c - `codebuild-local attach BUILD_ID` (a shell in a running
 * or paused build), `codebuild-local exec BUILD_ID -- CMD...` (one command
 * there, its exit status ours), and the terminal of `run --debug`.
 *
 * The session never gets this terminal itself: it gets a pseudo-terminal
 * made here, whose other side this process copies to and from the real
 * one (raw mode meanwhile), so nothing the build leaves running can type
 * into the user's shell (TIOCSTI) once the session is over. */
#include "cli/cli.h"
#include "runner/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "util/banned.h"

static const char attach_usage[] =
	"usage: codebuild-local attach BUILD_ID\n"
	"\n"
	"Opens a shell inside a running or paused build (its sandbox, environment, carried\n"
	"variables, directory and run-as user).  `codebuild-resume` continues a paused build.\n"
	"Only the user who started the build, or root, may.  $CODEBUILD_LOCAL_HOME names the\n"
	"state directory the build is under.\n";

static const char exec_usage[] =
	"usage: codebuild-local exec BUILD_ID -- CMD [ARG...]\n"
	"\n"
	"Runs one command inside a running or paused build, on this process's stdin, stdout\n"
	"and stderr, and exits with its exit status.  `exec BUILD_ID -- codebuild-resume`\n"
	"continues a paused build.\n";

/* Copies between the terminal and the session's pseudo-terminal until the
 * session's end arrives on sock; its exit status, or -1. */
static int relay(int sock, int master)
{
	struct termios saved, raw;
	bool is_tty = tcgetattr(0, &saved) == 0;
	if (is_tty) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	}
	int status = -1;
	char buf[8192];
	bool in_open = true;
	struct winsize last = {0};
	ioctl(0, TIOCGWINSZ, &last);
	for (;;) {
		struct pollfd p[3] = {{.fd = in_open ? 0 : -1, .events = POLLIN},
				      {.fd = master, .events = POLLIN},
				      {.fd = sock, .events = POLLIN}};
		/* the terminal's size follows ours (looked at four times a second:
		 * run --debug's relay is a thread, SIGWINCH is not its) */
		int pr = poll(p, 3, is_tty ? 250 : -1);
		struct winsize now;
		if (is_tty && master >= 0 && ioctl(0, TIOCGWINSZ, &now) == 0 &&
		    (now.ws_row != last.ws_row || now.ws_col != last.ws_col)) {
			ioctl(master, TIOCSWINSZ, &now);
			last = now;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents) {
			ssize_t n = read(master, buf, sizeof(buf));
			if (n > 0)
				(void)!write(1, buf, (size_t)n);
			else if (n < 0 && errno != EINTR && errno != EAGAIN)
				master = -1; /* EIO: every holder of the other side closed it */
		}
		if (p[0].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n > 0)
				(void)!write(master, buf, (size_t)n);
			else
				in_open = false;
		}
		if (p[2].revents) {
			runner_debug_reply r;
			cbl_error *e = NULL;
			if (runner_attach_read(sock, &r, &e) == 0 && r.kind == RUNNER_DEBUG_EXITED)
				status = r.status;
			cbl_error_free(e);
			break;
		}
	}
	/* what the session wrote last */
	for (int i = 0; master >= 0 && i < 64; i++) {
		struct pollfd p = {.fd = master, .events = POLLIN};
		if (poll(&p, 1, 0) <= 0)
			break;
		ssize_t n = read(master, buf, sizeof(buf));
		if (n <= 0)
			break;
		(void)!write(1, buf, (size_t)n);
	}
	if (is_tty) {
		tcsetattr(0, TCSANOW, &saved);
		(void)!write(1, "\n", 1);
	}
	return status;
}

/* A pseudo-terminal the size of ours: the master, and the session's side
 * in *slave. */
static int open_pty(int *slave)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
		if (m >= 0)
			close(m);
		return -1;
	}
	char name[64];
	if (ptsname_r(m, name, sizeof(name))) {
		close(m);
		return -1;
	}
	*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0) {
		close(m);
		return -1;
	}
	struct winsize ws;
	if (ioctl(0, TIOCGWINSZ, &ws) == 0)
		ioctl(m, TIOCSWINSZ, &ws);
	return m;
}

/* Starts the session and waits for its end: its exit status, or -1 (said). */
static int session(int sock, runner_debug_kind kind, unsigned flags, const char *const *argv, bool tty)
{
	cbl_error *e = NULL;
	int master = -1, slave = -1, status = -1;
	int fds[3] = {0, 1, 2};
	int nfds = kind == RUNNER_DEBUG_RESUME ? 0 : 3;
	if (tty) {
		master = open_pty(&slave);
		if (master < 0) {
			cli_error("cannot make a pseudo-terminal: %s", strerror(errno));
			return -1;
		}
		fds[0] = slave;
		nfds = 1;
		flags |= RUNNER_DEBUG_TTY;
	}
	runner_debug_reply r;
	/* a refusal comes before the request is read: it is the answer */
	int sent = runner_attach_send(sock, kind, flags, argv, fds, nfds, &e);
	if (runner_attach_read(sock, &r, sent < 0 ? NULL : &e) < 0) {
		cli_report(e);
		goto out;
	}
	cbl_error_free(e);
	e = NULL;
	if (slave >= 0) {
		close(slave);
		slave = -1;
	}
	if (r.kind == RUNNER_DEBUG_ERROR) {
		cli_error("%s", r.msg);
		goto out;
	}
	if (r.kind == RUNNER_DEBUG_EXITED) {
		status = r.status;
		goto out;
	}
	if (tty) {
		status = relay(sock, master);
	} else if (runner_attach_read(sock, &r, &e) == 0 && r.kind == RUNNER_DEBUG_EXITED) {
		status = r.status;
	} else {
		cli_report(e);
	}
out:
	cbl_error_free(e);
	if (slave >= 0)
		close(slave);
	if (master >= 0)
		close(master);
	return status;
}

int cli_debug_terminal(const char *home, const char *build_id)
{
	int sock = -1;
	cbl_error *e = NULL;
	if (runner_attach_connect(home, build_id, &sock, &e) < 0) {
		cli_report(e);
		cbl_error_free(e);
		return -1;
	}
	int st = session(sock, RUNNER_DEBUG_SHELL, RUNNER_DEBUG_RESUME_ON_EXIT, NULL, true);
	close(sock);
	return st;
}

static int connect_or_say(const char *id, int *sock)
{
	cbl_error *e = NULL;
	if (runner_attach_connect(NULL, id, sock, &e) < 0) {
		cli_report(e);
		cbl_error_free(e);
		return -1;
	}
	return 0;
}

int cmd_attach(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(attach_usage, stdout);
		return CLI_EXIT_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fputs(attach_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	int sock = -1;
	if (connect_or_say(argv[1], &sock) < 0)
		return CLI_EXIT_FAULT;
	signal(SIGPIPE, SIG_IGN);
	int st = session(sock, RUNNER_DEBUG_SHELL, 0, NULL, isatty(0));
	close(sock);
	return st < 0 ? CLI_EXIT_FAULT : st;
}

int cmd_exec(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(exec_usage, stdout);
		return CLI_EXIT_OK;
	}
	if (argc < 4 || strcmp(argv[2], "--") || argv[1][0] == '-') {
		fputs(exec_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	int sock = -1;
	if (connect_or_say(argv[1], &sock) < 0)
		return CLI_EXIT_FAULT;
	signal(SIGPIPE, SIG_IGN);
	int st;
	if (argc == 4 && !strcmp(argv[3], "codebuild-resume")) {
		/* no process needed: the build is told directly */
		st = session(sock, RUNNER_DEBUG_RESUME, 0, NULL, false);
		if (st == 0)
			fputs("codebuild-resume: the build goes on\n", stderr);
	} else {
		/* a terminal on any of ours: the command gets a pseudo-terminal */
		bool tty = isatty(0) && isatty(1);
		st = session(sock, RUNNER_DEBUG_EXEC, 0, (const char *const *)argv + 3, tty);
	}
	close(sock);
	return st < 0 ? CLI_EXIT_FAULT : st;
}
