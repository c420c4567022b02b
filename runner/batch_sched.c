/* runner/batch_sched.c - the batch's scheduler: builds as processes of
 * their own, started as their dependencies and the machine's budget allow
 * (runner/batch.h), followed through their JSON event streams. */
#include "runner/batch_internal.h"
#include "runner/runner_internal.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/strv.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

#define MAX_LINE (4u << 20)

static bool failed_hard(const runner_bb *x)
{
	return x->state == BB_DONE && x->status && strcmp(x->status, "SUCCEEDED") && !x->spec->ignore_failure;
}

/* 1 ready, 0 waits, -1 never (a dependency failed or never ran). */
static int deps_ready(const runner_batch *b, const runner_bb *x)
{
	int r = 1;
	for (size_t k = 0; k < x->ndeps; k++) {
		const runner_bb *d = &b->b[x->deps[k]];
		if (d->state == BB_NOT_STARTED || failed_hard(d))
			return -1;
		if (d->state != BB_DONE)
			r = 0;
	}
	return r;
}

static bool fits(const runner_batch *b, const runner_bb *x, size_t running, int cpu, int64_t mem)
{
	if (!running)
		return true;
	if (b->o.max_parallel > 0)
		return running < (size_t)b->o.max_parallel;
	return cpu + x->cpu <= b->cpu_budget && mem + x->mem_gb <= b->mem_budget_gb;
}

/* The child: its own process group (a terminal's ^C reaches the batch,
 * which stops the builds as builds), killed with the batch.  Only
 * async-signal-safe calls. */
static void child_exec(char *const argv[], int out_fd, int err_fd, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	setpgid(0, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	execv(argv[0], argv);
	_exit(127);
}

static int spawn(runner_batch *b, runner_bb *x)
{
	cbl_strv argv = CBL_STRV_INIT;
	for (const char *const *a = b->o.child_argv; *a; a++)
		cbl_strv_push(&argv, *a);
	cbl_strv_push(&argv, "--batch-build");
	cbl_strv_push(&argv, x->spec->identifier);
	cbl_strv_push(&argv, "--batch-of");
	cbl_strv_push(&argv, b->arn);
	cbl_strv_push(&argv, "--json");
	if (b->spec_copy) {
		cbl_strv_push(&argv, "--batch-spec");
		cbl_strv_push(&argv, b->spec_copy);
	}
	if (x->artifacts_dir) {
		cbl_strv_push(&argv, "--artifacts");
		cbl_strv_push(&argv, x->artifacts_dir);
	}
	if (b->o.combine_artifacts) {
		cbl_strv_push(&argv, "--artifacts-packaging");
		cbl_strv_push(&argv, "NONE");
	}
	int p[2] = {-1, -1};
	int efd = open(x->stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pid_t parent = getpid(), pid = -1;
	if (efd >= 0 && pipe2(p, O_CLOEXEC) == 0) {
		pid = fork();
		if (pid == 0)
			child_exec(argv.v, p[1], efd, parent);
	}
	if (p[1] >= 0)
		close(p[1]);
	if (efd >= 0)
		close(efd);
	cbl_strv_release(&argv);
	if (pid < 0) {
		if (p[0] >= 0)
			close(p[0]);
		return -1;
	}
	x->pid = pid;
	x->fd = p[0];
	return 0;
}

static void set_str(char **dst, const char *s)
{
	if (!s)
		return;
	free(*dst);
	*dst = cbl_xstrdup(s);
}

static void start_one(runner_batch *b, size_t i)
{
	runner_bb *x = &b->b[i];
	x->requested_us = x->start_us = cbl_now_us();
	x->state = BB_RUNNING;
	set_str(&x->phase, "SUBMITTED");
	if (spawn(b, x) < 0) {
		x->state = BB_DONE;
		set_str(&x->status, "FAULT");
		x->end_us = cbl_now_us();
		b->failed |= !x->spec->ignore_failure;
	}
	runner_batch_save(b);
	runner_batch_emit(b, RUNNER_BATCH_EV_BUILD, i, NULL);
}

/* Starts what may start; marks what never will.  The running count. */
static size_t start_ready(runner_batch *b)
{
	size_t running = 0;
	int cpu = 0;
	int64_t mem = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->b[i].state == BB_RUNNING) {
			running++;
			cpu += b->b[i].cpu;
			mem += b->b[i].mem_gb;
		}
	bool halt = b->stopped || b->timed_out || (b->failed && b->plan->fast_fail);
	for (size_t i = 0; i < b->n; i++) {
		runner_bb *x = &b->b[i];
		if (x->state != BB_PENDING)
			continue;
		int r = halt ? -1 : deps_ready(b, x);
		if (r < 0) {
			x->state = BB_NOT_STARTED;
			runner_batch_emit(b, RUNNER_BATCH_EV_BUILD, i, NULL);
			continue;
		}
		if (!r || !fits(b, x, running, cpu, mem))
			continue;
		start_one(b, i);
		if (x->state == BB_RUNNING) {
			running++;
			cpu += x->cpu;
			mem += x->mem_gb;
		}
	}
	return running;
}

static void stop_running(runner_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		runner_bb *x = &b->b[i];
		if (x->state == BB_RUNNING && !x->stop_sent && x->pid > 0) {
			kill(x->pid, SIGTERM);
			x->stop_sent = true;
		}
	}
}

/* One JSON line of a build: its id, phases and final record. */
static void child_line(runner_batch *b, size_t i, const char *line)
{
	runner_bb *x = &b->b[i];
	json_t *j = json_loads(line, 0, NULL);
	const char *ev = cbl_json_str(j, "event");
	json_t *rec = json_object_get(j, "build");
	bool changed = false, named = ev && !strcmp(ev, "batch-build");
	if (named) {
		set_str(&x->build_id, cbl_json_str(j, "id"));
		set_str(&x->build_arn, cbl_json_str(j, "arn"));
		set_str(&x->log_path, cbl_json_str(j, "log"));
		changed = true;
	} else if (ev && !strcmp(ev, "phase-start")) {
		set_str(&x->phase, cbl_json_str(j, "phase"));
		changed = true;
	} else if (json_is_object(rec)) {
		set_str(&x->build_id, cbl_json_str(rec, "id"));
		set_str(&x->build_arn, cbl_json_str(rec, "arn"));
		set_str(&x->phase, cbl_json_str(rec, "currentPhase"));
		set_str(&x->status, cbl_json_str(rec, "buildStatus"));
		changed = true;
	}
	json_decref(j);
	runner_batch_emit(b, RUNNER_BATCH_EV_LINE, i, line);
	if (changed) {
		if (named)
			runner_batch_save(b);
		runner_batch_emit(b, RUNNER_BATCH_EV_BUILD, i, NULL);
	}
}

static const char *status_of_exit(int ws)
{
	if (!WIFEXITED(ws))
		return "FAULT";
	static const char *const by_code[] = {"SUCCEEDED", "FAILED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"};
	int c = WEXITSTATUS(ws);
	return c >= 0 && c < 6 ? by_code[c] : "FAULT";
}

static void child_done(runner_batch *b, size_t i)
{
	runner_bb *x = &b->b[i];
	int ws = 0;
	close(x->fd);
	x->fd = -1;
	while (waitpid(x->pid, &ws, 0) < 0 && errno == EINTR)
		;
	x->pid = -1;
	/* a build stopped by the batch that died of it before saying so */
	if (!x->status)
		set_str(&x->status, x->stop_sent && WIFSIGNALED(ws) ? "STOPPED" : status_of_exit(ws));
	set_str(&x->phase, "COMPLETED");
	x->state = BB_DONE;
	x->end_us = cbl_now_us();
	if (failed_hard(x)) {
		b->failed = true;
		if (b->plan->fast_fail)
			stop_running(b);
	}
	runner_batch_save(b);
	runner_batch_emit(b, RUNNER_BATCH_EV_BUILD, i, NULL);
}

static void child_read(runner_batch *b, size_t i)
{
	runner_bb *x = &b->b[i];
	char buf[65536];
	ssize_t n = read(x->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (x->line.len)
			child_line(b, i, x->line.ptr);
		cbl_buf_release(&x->line);
		child_done(b, i);
		return;
	}
	cbl_buf_append(&x->line, buf, (size_t)n);
	char *start = x->line.ptr, *nl;
	while ((nl = memchr(start, '\n', x->line.len - (size_t)(start - x->line.ptr)))) {
		*nl = '\0';
		child_line(b, i, start);
		start = nl + 1;
	}
	size_t rest = x->line.len - (size_t)(start - x->line.ptr);
	if (rest > MAX_LINE)
		rest = 0; /* a runaway line: dropped */
	memmove(x->line.ptr, start, rest);
	x->line.len = rest;
}

void runner_batch_schedule(runner_batch *b)
{
	struct pollfd *pf = cbl_xcalloc(b->n + 1, sizeof(*pf));
	size_t *idx = cbl_xcalloc(b->n + 1, sizeof(size_t));
	int64_t deadline = b->o.timeout_minutes > 0 ? cbl_mono_us() + (int64_t)b->o.timeout_minutes * 60000000 : 0;
	for (;;) {
		if (b->stop_requested && !b->stopped) {
			b->stopped = true;
			stop_running(b);
		}
		if (deadline && !b->timed_out && cbl_mono_us() > deadline) {
			b->timed_out = true;
			stop_running(b);
		}
		if (!start_ready(b))
			break;
		size_t n = 0;
		pf[n++] = (struct pollfd){b->stop_r, POLLIN, 0};
		for (size_t i = 0; i < b->n; i++)
			if (b->b[i].state == BB_RUNNING && b->b[i].fd >= 0) {
				idx[n] = i;
				pf[n++] = (struct pollfd){b->b[i].fd, POLLIN, 0};
			}
		int pr = poll(pf, n, 500);
		if (pr == 0)
			runner_batch_emit(b, RUNNER_BATCH_EV_TICK, 0, NULL);
		if (pr <= 0)
			continue;
		if (pf[0].revents) {
			char c[64];
			while (read(b->stop_r, c, sizeof(c)) > 0)
				;
		}
		for (size_t k = 1; k < n; k++)
			if (pf[k].revents)
				child_read(b, idx[k]);
	}
	free(pf);
	free(idx);
}
