/* runner/shell.c - CodeBuild's command model.
 *
 * What the service really does (reference buildspec.md §2.1, [inferred] from
 * AWS's own imitation in codecatalyst-runner-cli and from real logs): every
 * command is written to a script and run by a fresh /bin/sh process.  State is
 * carried between commands through files: the exported environment
 * (`export -p` into env.sh, sourced with `set -a` on) and the working
 * directory (dir.txt).  Consequences we reproduce exactly:
 *   - cwd and every assigned variable carry over (set -a exports them);
 *   - functions, aliases, `set -e`, traps do not;
 *   - `exit N` skips the save lines: that command's changes are lost;
 *   - the user's command is line 4 of script.sh (3 preamble lines), so
 *     shell errors read "script.sh: line 4: ..." like the service's.
 * Version 0.1 runs every command in a fresh shell with nothing carried.
 *
 * Every command shares one output pipe (stdout and stderr together, so they
 * interleave as written).  We wait for the shell's exit, not for EOF: a
 * background job (`dockerd &`) may keep the pipe open and outlive its
 * command, as on the service; its later output still reaches the log.
 * Each command runs in its own process group, all of which are killed when
 * the build ends, times out or is stopped.
 *
 * The scratch directory is the build's too (it sees it as
 * /codebuild/output/tmp and may replace anything in it), so the runner only
 * ever touches its files beneath a descriptor of it (util/safeopen.h):
 * script.sh is published by rename (a symlink planted there is replaced,
 * never followed or chmod'ed), dir.txt and env.sh are opened without
 * following symlinks and must be regular files, and the values of
 * runner_shell_read_vars/expand come back through a FIFO the runner holds
 * open, so nothing can block it.  The directory is 0700 (0711 while a
 * run-as user needs to reach its files).
 *
 * Secrets (parameter-store, secrets-manager) reach each command through its
 * environment only (envp, passed to the sandbox over its socket); the
 * script remembers their values in unexported shell variables before it
 * sources env.sh and unsets the ones still holding them before `export -p`,
 * so env.sh never holds a secret the build did not reassign itself.
 */
#include "runner/runner_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/safeopen.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/banned.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static char *find_in_path(const char *name, const char *path)
{
	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? cbl_xstrdup(name) : NULL;
	const char *p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
	while (*p) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n) {
			char *cand = cbl_xasprintf("%.*s/%s", (int)n, p, name);
			if (access(cand, X_OK) == 0)
				return cand;
			free(cand);
		}
		if (!e)
			break;
		p = e + 1;
	}
	return NULL;
}

static bool valid_name(const char *n);

int runner_shell_init(runner_shell *sh, const char *tmpdir, const char *shell, bool carry,
		      const char *start_dir, const char *const *path_env, cbl_error **err)
{
	int fds[2] = {-1, -1};
	memset(sh, 0, sizeof(*sh));
	sh->out_r = sh->out_w = sh->stop_r = sh->tmp_fd = sh->val_fd = -1;
	const char *path = NULL;
	for (const char *const *e = path_env; e && *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	const char *want = shell && *shell ? shell : "/bin/sh";
	sh->shell = find_in_path(want, path);
	if (!sh->shell)
		return cbl_error_set(err, CBL_EINVAL, "shell '%s' not found in the build image", want);
	int rc = cbl_mkdir_p(tmpdir, 0700, err);
	if (rc)
		return rc;
	/* the runner made it, in the build's private directory: opening it by
	 * path is safe; everything in it is opened beneath this descriptor */
	sh->tmp_fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sh->tmp_fd < 0 || fchmod(sh->tmp_fd, 0700) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot open the scratch directory '%s'", tmpdir);
	sh->tmpdir = cbl_xstrdup(tmpdir);
	sh->tmpdir_inner = cbl_xstrdup(sh->tmpdir);
	sh->script_inner = cbl_path_join(tmpdir, "script.sh");
	sh->env_inner = cbl_path_join(tmpdir, "env.sh");
	sh->dir_inner = cbl_path_join(tmpdir, "dir.txt");
	sh->carry = carry;
	sh->start_dir = cbl_xstrdup(start_dir);
	sh->cwd = cbl_xstrdup(start_dir);
	if (pipe2(fds, O_CLOEXEC) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot create output pipe");
	sh->out_r = fds[0];
	sh->out_w = fds[1];
	fcntl(sh->out_r, F_SETFL, fcntl(sh->out_r, F_GETFL) | O_NONBLOCK);
	/* an empty env.sh so the first command's `.` works */
	if (carry) {
		rc = cbl_write_at_atomic(sh->tmp_fd, "env.sh", "", 0, 0600, err);
		if (rc)
			return rc;
	}
	return 0;
}

void runner_shell_set_secrets(runner_shell *sh, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && valid_name(names[i]))
			cbl_strv_push(&sh->secret_names, names[i]);
}

void runner_shell_adopt_pipe(runner_shell *sh, int r, int w)
{
	if (sh->out_r >= 0)
		close(sh->out_r);
	if (sh->out_w >= 0)
		close(sh->out_w);
	sh->out_r = r;
	sh->out_w = w;
	fcntl(sh->out_r, F_SETFL, fcntl(sh->out_r, F_GETFL) | O_NONBLOCK);
}

void runner_shell_use_sandbox(runner_shell *sh, sandbox_handle *sb, const char *tmp_inner)
{
	sh->sandbox = sb;
	free(sh->tmpdir_inner);
	free(sh->script_inner);
	free(sh->env_inner);
	free(sh->dir_inner);
	sh->tmpdir_inner = cbl_xstrdup(tmp_inner);
	sh->script_inner = cbl_path_join(tmp_inner, "script.sh");
	sh->env_inner = cbl_path_join(tmp_inner, "env.sh");
	sh->dir_inner = cbl_path_join(tmp_inner, "dir.txt");
}

/* Makes the carried-state files usable by the next command's user: a
 * run-as user (sandbox, as root) must search the scratch directory and
 * write env.sh and dir.txt, which exist beforehand so it need not create
 * anything there; otherwise all of it is the runner's alone (0700). */
static void scratch_access(runner_shell *sh)
{
	bool other = sh->sandbox && sh->run_as;
	fchmod(sh->tmp_fd, other ? 0711 : 0700);
	if (!sh->carry)
		return;
	static const char *const files[] = {"env.sh", "dir.txt"};
	for (size_t i = 0; i < 2; i++) {
		cbl_error *e = NULL;
		int fd = cbl_open_beneath(sh->tmp_fd, files[i], O_RDONLY | O_CREAT | O_NONBLOCK, 0600,
					  CBL_RESOLVE_NO_SYMLINKS, &e);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			fchmod(fd, other ? 0666 : 0600);
		if (fd >= 0)
			close(fd);
		cbl_error_free(e);
	}
}

static void emit_lines(runner_shell *sh, bool flush_partial)
{
	size_t start = 0;
	for (size_t i = 0; i < sh->pending.len; i++) {
		if (sh->pending.ptr[i] == '\n') {
			size_t end = i;
			if (end > start && sh->pending.ptr[end - 1] == '\r')
				end--;
			sh->on_line(sh->pending.ptr + start, end - start, sh->payload);
			start = i + 1;
		}
	}
	cbl_buf_consume(&sh->pending, start);
	/* a line that never ends (progress bars) is emitted once it is long
	 * or when the command is over, so nothing waits behind it */
	if (sh->pending.len && (flush_partial || sh->pending.len >= 65536)) {
		sh->on_line(sh->pending.ptr, sh->pending.len, sh->payload);
		cbl_buf_reset(&sh->pending);
	}
}

/* Returns 0 on EAGAIN/EOF-less drain, 1 if anything was read. */
static int read_output(runner_shell *sh)
{
	char buf[16384];
	int got = 0;
	/* bounded: a background job that never stops writing must not keep
	 * the runner from seeing the deadline, a stop or the command's end */
	for (int reads = 0; reads < 64; reads++) {
		ssize_t n = read(sh->out_r, buf, sizeof(buf));
		if (n > 0) {
			cbl_buf_append(&sh->pending, buf, (size_t)n);
			got = 1;
			if (sh->pending.len > 65536)
				emit_lines(sh, false);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	if (got)
		emit_lines(sh, false);
	return got;
}

void runner_shell_drain(runner_shell *sh, int wait_ms)
{
	if (sh->out_r < 0)
		return;
	struct pollfd p = {.fd = sh->out_r, .events = POLLIN};
	/* bounded: a writer that never stops cannot hold the build open */
	for (int rounds = 0; rounds < 16 && poll(&p, 1, wait_ms) > 0 && read_output(sh); rounds++)
		;
	emit_lines(sh, true);
}

/* Line 1 of a script: each secret's value (from the environment) kept in
 * an unexported variable, then `set -a`. */
static void stash_secrets(runner_shell *sh, cbl_buf *s)
{
	for (size_t i = 0; sh->carry && i < sh->secret_names.n; i++)
		cbl_buf_printf(s, "__cbl_secret_%zu=${%s-}; ", i, sh->secret_names.v[i]);
	cbl_buf_puts(s, "set -a\n");
}

/* Before `export -p`: a secret still holding its value is left out of the
 * carried state (the next command gets it from its environment again). */
static void drop_secrets(runner_shell *sh, cbl_buf *s)
{
	for (size_t i = 0; i < sh->secret_names.n; i++)
		cbl_buf_printf(s, "[ \"${%s-}\" != \"$__cbl_secret_%zu\" ] || unset %s 2>/dev/null\n",
			       sh->secret_names.v[i], i, sh->secret_names.v[i]);
}

static void build_script(runner_shell *sh, const char *command, cbl_buf *s)
{
	/* three preamble lines: the user's command is line 4, as on the service */
	if (sh->carry) {
		stash_secrets(sh, s);
		cbl_buf_puts(s, ". ");
		cbl_buf_shquote(s, sh->env_inner);
		cbl_buf_puts(s, "\ncd -- ");
		cbl_buf_shquote(s, sh->cwd);
	} else {
		cbl_buf_puts(s, "set -a\n:\ncd -- ");
		cbl_buf_shquote(s, sh->start_dir);
	}
	/* the service's agent cds there from /codebuild/readonly: its
	 * commands see that as OLDPWD (real env dumps, reference §2.1) */
	if (sh->sandbox)
		cbl_buf_puts(s, "; OLDPWD=/codebuild/readonly");
	cbl_buf_putc(s, '\n');
	cbl_buf_puts(s, command);
	cbl_buf_putc(s, '\n');
	cbl_buf_puts(s, "CODEBUILD_LAST_EXIT=$?\n");
	if (sh->carry) {
		drop_secrets(sh, s);
		cbl_buf_puts(s, "export -p > ");
		cbl_buf_shquote(s, sh->env_inner);
		cbl_buf_puts(s, "\npwd > ");
		cbl_buf_shquote(s, sh->dir_inner);
		cbl_buf_putc(s, '\n');
	}
	cbl_buf_puts(s, "exit $CODEBUILD_LAST_EXIT\n");
}

static int spawn_shell(runner_shell *sh, const char *script, char *const envp[], pid_t *pid_out,
		       cbl_error **err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc = 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, sh->out_w, 1);
	posix_spawn_file_actions_adddup2(&fa, sh->out_w, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* nothing of ours leaks into the build */
	/* start where the command will run; the script's own cd reports a
	 * vanished directory like the service does */
	if (access(sh->carry ? sh->cwd : sh->start_dir, X_OK) == 0)
		posix_spawn_file_actions_addchdir_np(&fa, sh->carry ? sh->cwd : sh->start_dir);
	sigemptyset(&none);
	/* dispositions the runner (or its caller) may have changed; an ignored
	 * SIGPIPE would otherwise be inherited by every build command */
	sigemptyset(&all);
	sigaddset(&all, SIGPIPE);
	sigaddset(&all, SIGINT);
	sigaddset(&all, SIGTERM);
	sigaddset(&all, SIGHUP);
	sigaddset(&all, SIGQUIT);
	sigaddset(&all, SIGCHLD);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	/* a session of its own: no controlling terminal, so a command that
	 * opens /dev/tty fails at once as on the service instead of being
	 * stopped by SIGTTIN; the session id is the process group we kill */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
						POSIX_SPAWN_SETSIGDEF);
	char *argv[] = {sh->shell, (char *)script, NULL};
	int e = posix_spawn(pid_out, sh->shell, &fa, &attr, argv, envp);
	if (e)
		rc = cbl_error_set_errno(err, CBL_EIO, e, "cannot start %s", sh->shell);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

static void note_pgid(runner_shell *sh, pid_t pgid)
{
	CBL_GROW(sh->pgids, sh->npgids + 1, sh->cap_pgids);
	sh->pgids[sh->npgids++] = pgid;
}

/* Reads what a value script wrote into its FIFO so far (bounded). */
static void read_values(runner_shell *sh)
{
	char buf[16384];
	for (;;) {
		ssize_t n = read(sh->val_fd, buf, sizeof(buf));
		if (n > 0) {
			if (sh->val_buf.len + (size_t)n <= (64u << 20))
				cbl_buf_append(&sh->val_buf, buf, (size_t)n);
			else
				sh->val_overflow = true; /* drained all the same: the writer never blocks */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
}

enum { EXTRA_MAX = 24 };

static int wait_child(runner_shell *sh, pid_t pid, runner_cmd_outcome *how, int *status)
{
	/* in the sandbox the command is the init's child: its end arrives as a
	 * record on the init's socket */
	int pidfd = sh->sandbox ? sandbox_fd(sh->sandbox) : (int)syscall(SYS_pidfd_open, pid, 0);
	int ws = 0;
	*how = RUNNER_CMD_EXITED;
	for (;;) {
		struct pollfd p[4 + EXTRA_MAX];
		nfds_t np = 0;
		int i_pid = -1, i_stop = -1, i_val = -1;
		if (sh->sandbox && sandbox_command_ended(sh->sandbox))
			goto reap;
		p[np++] = (struct pollfd){.fd = sh->paused_output ? -1 : sh->out_r, .events = POLLIN};
		if (pidfd >= 0) {
			i_pid = (int)np;
			p[np++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		}
		if (sh->stop_r >= 0) {
			i_stop = (int)np;
			p[np++] = (struct pollfd){.fd = sh->stop_r, .events = POLLIN};
		}
		if (sh->val_fd >= 0) {
			i_val = (int)np;
			p[np++] = (struct pollfd){.fd = sh->val_fd, .events = POLLIN};
		}
		nfds_t n_base = np;
		if (sh->extra_fds)
			np += sh->extra_fds(p + np, EXTRA_MAX, sh->extra_payload);
		int timeout = pidfd >= 0 ? -1 : 20;
		if (sh->deadline_mono_us) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
			int64_t left = (sh->deadline_mono_us - now + 999) / 1000;
			if (left <= 0) {
				*how = RUNNER_CMD_TIMED_OUT;
				break;
			}
			if (timeout < 0 || left < timeout)
				timeout = left > 1000000 ? 1000000 : (int)left;
		}
		int r = poll(p, np, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0) {
			if (p[0].revents)
				read_output(sh);
			if (i_val >= 0 && p[i_val].revents)
				read_values(sh);
			if (i_stop >= 0 && p[i_stop].revents) {
				*how = RUNNER_CMD_STOPPED;
				break;
			}
		}
		if (sh->sandbox) {
			if (r > 0 && i_pid >= 0 && p[i_pid].revents) {
				cbl_error *e = NULL;
				int k = sandbox_service(sh->sandbox, &e);
				cbl_error_free(e);
				if (sh->on_extra)
					sh->on_extra(p + n_base, 0, sh->extra_payload);
				if (k != 0)
					goto reap;
			}
			if (r > 0 && sh->on_extra && np > n_base)
				sh->on_extra(p + n_base, np - n_base, sh->extra_payload);
			continue;
		}
		if (r > 0 && sh->on_extra && np > n_base)
			sh->on_extra(p + n_base, np - n_base, sh->extra_payload);
		pid_t w = waitpid(pid, &ws, WNOHANG);
		if (w == pid)
			goto exited;
		if (w < 0 && errno == ECHILD)
			goto exited;
	}
	/* timed out or stopped: kill the command's group, then reap it */
	if (sh->sandbox) {
		cbl_error *e = NULL;
		sandbox_kill_all(sh->sandbox);
		sandbox_wait(sh->sandbox, &ws, &e);
		cbl_error_free(e);
	} else {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
	}
	goto exited;
reap: {
	cbl_error *e = NULL;
	if (sandbox_wait(sh->sandbox, &ws, &e) < 0)
		sh->init_gone = true; /* not the command's fault */
	cbl_error_free(e);
}
exited:
	if (pidfd >= 0 && !sh->sandbox)
		close(pidfd);
	/* whatever the command wrote is in the pipe now */
	read_output(sh);
	if (sh->val_fd >= 0)
		read_values(sh);
	emit_lines(sh, true);
	sh->last_signal = 0;
	if (WIFEXITED(ws)) {
		*status = WEXITSTATUS(ws);
	} else if (WIFSIGNALED(ws)) {
		sh->last_signal = WTERMSIG(ws);
		*status = 128 + WTERMSIG(ws);
	} else {
		*status = 1;
	}
	return 0;
}

int runner_shell_exec(runner_shell *sh, const char *command, char *const envp[],
		      runner_cmd_outcome *how, int *status, cbl_error **err)
{
	cbl_buf script = CBL_BUF_INIT;
	pid_t pid = -1;
	int rc;
	build_script(sh, command, &script);
	scratch_access(sh);
	/* published by rename with its mode set on the descriptor: whatever
	 * the build put at script.sh (a symlink to a host file) is replaced,
	 * never followed; readable by a run-as user too */
	rc = cbl_write_at_atomic(sh->tmp_fd, "script.sh", script.ptr, script.len, 0755, err);
	if (rc)
		goto out;
	if (sh->sandbox) {
		rc = sandbox_spawn(sh->sandbox, sh->shell, sh->script_inner, sh->cwd, sh->run_as,
					  envp, err);
		if (rc)
			goto out;
	} else {
		char *script_path = cbl_path_join(sh->tmpdir, "script.sh");
		rc = spawn_shell(sh, script_path, envp, &pid, err);
		free(script_path);
		if (rc)
			goto out;
		note_pgid(sh, pid);
	}
	rc = wait_child(sh, pid, how, status);
	if (sh->carry && *how == RUNNER_CMD_EXITED) {
		char *dir = NULL;
		size_t len = 0;
		cbl_error *e2 = NULL;
		if (cbl_read_beneath(sh->tmp_fd, "dir.txt", CBL_RESOLVE_NO_SYMLINKS, 1 << 16, &dir, &len, &e2) == 0) {
			while (len && (dir[len - 1] == '\n' || dir[len - 1] == '\r'))
				dir[--len] = '\0';
			if (len) {
				free(sh->cwd);
				sh->cwd = dir;
				dir = NULL;
			}
			free(dir);
		}
		cbl_error_free(e2);
	}
out:
	cbl_buf_release(&script);
	return rc;
}

int runner_shell_set_var(runner_shell *sh, const char *name, const char *value, cbl_error **err)
{
	if (!sh->carry)
		return 0;
	cbl_buf line = CBL_BUF_INIT;
	int rc = 0;
	struct stat st;
	cbl_buf_printf(&line, "export %s=", name);
	cbl_buf_shquote(&line, value);
	cbl_buf_putc(&line, '\n');
	int fd = cbl_open_beneath(sh->tmp_fd, "env.sh", O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, 0600,
				  CBL_RESOLVE_NO_SYMLINKS, err);
	if (fd < 0) {
		rc = fd;
	} else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = cbl_error_set(err, CBL_EINVAL, "cannot update env.sh: not a regular file");
	} else if (cbl_write_all(fd, line.ptr, line.len) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot update env.sh");
	}
	if (fd >= 0)
		close(fd);
	cbl_buf_release(&line);
	return rc;
}

static bool valid_name(const char *n)
{
	if (!*n || (*n >= '0' && *n <= '9'))
		return false;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
		      (*n >= '0' && *n <= '9') || *n == '_'))
			return false;
	return true;
}

/* A FIFO of the scratch directory that only the runner reads: created
 * under a fresh name and opened read-write (so the runner is a writer too:
 * no EOF, no hang-up before the script opens it), never blocking. */
static int open_values_fifo(runner_shell *sh, char *name, size_t namesz, cbl_error **err)
{
	for (int tries = 0; tries < 16; tries++) {
		unsigned r = 0;
		if (getentropy(&r, sizeof(r)) < 0)
			r = (unsigned)getpid() * 2654435761u + (unsigned)tries;
		snprintf(name, namesz, "values.%08x", r);
		if (mkfifoat(sh->tmp_fd, name, 0600) < 0) {
			if (errno == EEXIST)
				continue;
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot create a FIFO in the scratch directory");
		}
		struct stat st;
		int fd = cbl_open_beneath(sh->tmp_fd, name, O_RDWR | O_NONBLOCK, 0, CBL_RESOLVE_NO_SYMLINKS, err);
		if (fd < 0)
			return fd;
		if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
			close(fd);
			return cbl_error_set(err, CBL_EIO, "the scratch directory's FIFO was replaced");
		}
		fchmod(fd, sh->sandbox && sh->run_as ? 0622 : 0600);
		return fd;
	}
	return cbl_error_set(err, CBL_EIO, "cannot create a FIFO in the scratch directory");
}

/* Runs a helper script whose stdout is a FIFO the runner reads while it
 * runs: NUL-separated values, one per item.  Nothing of it rests on disk
 * (the values may hold secrets). */
static int run_value_script(runner_shell *sh, char *const envp[], const char *body, size_t n,
			    char ***values_out, cbl_error **err)
{
	cbl_buf s = CBL_BUF_INIT;
	char fifo[32] = "";
	char *path = cbl_path_join(sh->tmpdir, "values.sh");
	char *outp_inner = NULL;
	char *path_inner = cbl_path_join(sh->tmpdir_inner, "values.sh");
	char **vals = cbl_xcalloc(n + 1, sizeof(char *));
	pid_t pid = -1;
	int rc;
	scratch_access(sh);
	rc = open_values_fifo(sh, fifo, sizeof(fifo), err);
	if (rc < 0)
		goto out;
	sh->val_fd = rc;
	rc = 0;
	cbl_buf_reset(&sh->val_buf);
	sh->val_overflow = false;
	outp_inner = cbl_path_join(sh->tmpdir_inner, fifo);
	if (sh->carry) {
		cbl_buf_puts(&s, "set -a\n. ");
		cbl_buf_shquote(&s, sh->env_inner);
		cbl_buf_puts(&s, " 2>/dev/null\n");
	}
	cbl_buf_puts(&s, "cd -- ");
	cbl_buf_shquote(&s, sh->carry ? sh->cwd : sh->start_dir);
	cbl_buf_puts(&s, " 2>/dev/null\nexec > ");
	cbl_buf_shquote(&s, outp_inner);
	cbl_buf_putc(&s, '\n');
	cbl_buf_puts(&s, body);
	rc = cbl_write_at_atomic(sh->tmp_fd, "values.sh", s.ptr, s.len, 0755, err);
	if (rc)
		goto out;
	if (sh->sandbox) {
		rc = sandbox_spawn(sh->sandbox, sh->shell, path_inner, sh->carry ? sh->cwd : sh->start_dir,
					  sh->run_as, envp, err);
		if (rc)
			goto out;
	} else {
		posix_spawn_file_actions_t fa;
		posix_spawnattr_t attr;
		posix_spawn_file_actions_init(&fa);
		posix_spawnattr_init(&attr);
		posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		posix_spawn_file_actions_adddup2(&fa, sh->out_w, 2);
		posix_spawn_file_actions_addclosefrom_np(&fa, 3);
		char *argv[] = {sh->shell, path, NULL};
		int e = posix_spawn(&pid, sh->shell, &fa, &attr, argv, envp);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&attr);
		if (e) {
			rc = cbl_error_set_errno(err, CBL_EIO, e, "cannot start %s", sh->shell);
			goto out;
		}
		note_pgid(sh, pid);
	}
	{
		/* the same deadline, stop and output handling as a command:
		 * `name: x$(sleep 1000)` cannot outlive the build timeout */
		runner_cmd_outcome how = RUNNER_CMD_EXITED;
		int st = 0;
		wait_child(sh, pid, &how, &st);
		if (how != RUNNER_CMD_EXITED) {
			rc = cbl_error_set(err, how == RUNNER_CMD_TIMED_OUT ? CBL_ETIMEDOUT : CBL_ESTOPPED,
					   how == RUNNER_CMD_TIMED_OUT ? "the build timed out" : "the build was stopped");
			goto out;
		}
	}
	if (sh->val_overflow) {
		rc = cbl_error_set(err, CBL_EINVAL, "the expanded values are larger than 64 MiB");
		goto out;
	}
	const char *data = cbl_buf_cstr(&sh->val_buf);
	size_t len = sh->val_buf.len, off = 0;
	for (size_t i = 0; i < n && off < len; i++) {
		size_t l = strnlen(data + off, len - off);
		vals[i] = cbl_xstrndup(data + off, l);
		off += l + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (!vals[i])
			vals[i] = cbl_xstrdup("");
	*values_out = vals;
	vals = NULL;
out:
	if (vals) {
		for (size_t i = 0; i < n; i++)
			free(vals[i]);
		free(vals);
	}
	if (sh->val_fd >= 0)
		close(sh->val_fd);
	sh->val_fd = -1;
	/* the values may be secrets: not kept in memory longer than needed */
	if (sh->val_buf.ptr)
		explicit_bzero(sh->val_buf.ptr, sh->val_buf.len);
	cbl_buf_release(&sh->val_buf);
	if (*fifo)
		unlinkat(sh->tmp_fd, fifo, 0);
	unlinkat(sh->tmp_fd, "values.sh", 0);
	free(path);
	free(outp_inner);
	free(path_inner);
	cbl_buf_release(&s);
	return rc;
}

int runner_shell_read_vars(runner_shell *sh, char *const envp[], const char *const *names,
			   size_t n, char ***values_out, cbl_error **err)
{
	cbl_buf body = CBL_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (valid_name(names[i]))
			cbl_buf_printf(&body, "printf '%%s\\0' \"${%s-}\"\n", names[i]);
		else
			cbl_buf_puts(&body, "printf '\\0'\n");
	}
	int rc = run_value_script(sh, envp, cbl_buf_cstr(&body), n, values_out, err);
	cbl_buf_release(&body);
	return rc;
}

int runner_shell_expand(runner_shell *sh, char *const envp[], const char *const *strings, size_t n,
			char ***out, cbl_error **err)
{
	/* An unquoted here-document expands $VAR, ${...}, $(...), `...` and
	 * $((...)) exactly like double quotes do, without word splitting or
	 * globbing, and needs no escaping of the user's text.  The delimiter
	 * cannot occur in the text (it contains a NUL-free random-ish tag and
	 * is checked). */
	cbl_buf body = CBL_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		const char *tag = "CBL_EXPAND_EOF_7f3a9c";
		if (strstr(strings[i], tag) || strchr(strings[i], '\n')) {
			rc = cbl_error_set(err, CBL_EINVAL, "cannot expand '%s': it spans lines", strings[i]);
			goto out;
		}
		cbl_buf_printf(&body, "v=$(cat <<%s\n%s\n%s\n)\nprintf '%%s\\0' \"$v\"\n", tag,
			       strings[i], tag);
	}
	rc = run_value_script(sh, envp, cbl_buf_cstr(&body), n, out, err);
out:
	cbl_buf_release(&body);
	return rc;
}

/* Collects the pids of our children (as a subreaper we inherit orphans). */
static size_t list_children(pid_t *out, size_t max)
{
	size_t n = 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)getpid(),
		 (long)getpid());
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	long p;
	while (n < max && fscanf(f, "%ld", &p) == 1)
		out[n++] = (pid_t)p;
	fclose(f);
	return n;
}

void runner_shell_kill_all(runner_shell *sh)
{
	if (sh->sandbox)
		sandbox_kill_all(sh->sandbox);
	for (size_t i = 0; i < sh->npgids; i++)
		kill(-sh->pgids[i], SIGKILL);
	/* daemons that left their process group were re-parented to us (the
	 * runner is a child subreaper): kill and reap them too */
	for (int round = 0; round < 50; round++) {
		pid_t kids[256];
		size_t n = list_children(kids, 256);
		int ws;
		while (waitpid(-1, &ws, WNOHANG) > 0)
			;
		if (!n)
			break;
		/* the sandbox's init and NAT helper are not ours to kill here:
		 * its owner reaps them */
		size_t others = 0;
		for (size_t i = 0; i < n; i++) {
			if (sh->sandbox && sandbox_owns(sh->sandbox, kids[i]))
				continue;
			kill(-kids[i], SIGKILL);
			kill(kids[i], SIGKILL);
			others++;
		}
		for (size_t i = 0; i < n; i++)
			if (!sh->sandbox || !sandbox_owns(sh->sandbox, kids[i]))
				waitpid(kids[i], &ws, 0);
		if (!others)
			break;
	}
	sh->npgids = 0;
}

void runner_shell_release(runner_shell *sh)
{
	if (sh->out_r >= 0)
		close(sh->out_r);
	if (sh->out_w >= 0)
		close(sh->out_w);
	if (sh->tmp_fd >= 0)
		close(sh->tmp_fd);
	if (sh->val_fd >= 0)
		close(sh->val_fd);
	cbl_strv_release(&sh->secret_names);
	cbl_buf_release(&sh->val_buf);
	free(sh->tmpdir);
	free(sh->tmpdir_inner);
	free(sh->script_inner);
	free(sh->env_inner);
	free(sh->dir_inner);
	free(sh->shell);
	free(sh->start_dir);
	free(sh->cwd);
	free(sh->pgids);
	cbl_buf_release(&sh->pending);
	memset(sh, 0, sizeof(*sh));
	sh->out_r = sh->out_w = sh->stop_r = sh->tmp_fd = sh->val_fd = -1;
}
