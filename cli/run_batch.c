/* cli/run_batch.c - `run` of a buildspec with `batch:`: the batch's face.
 * On a terminal one line per build (its phase, elapsed time and status)
 * redrawn in place; piped, a line per change; --json, every build's events
 * with its "identifier" added, the batch's phases, then {"buildBatch": ...}.
 * At the end, what failed: the tail of each failing build's log. */
#include "cli/cli.h"
#include "cli/run_batch.h"
#include "runner/batch.h"
#include "util/alloc.h"
#include "util/time.h"

#include <jansson.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

typedef struct bview {
	int mode;             /* RUN_BATCH_PLAIN, _TTY, _JSON, _NONE */
	bool color;
	runner_batch *b;
	size_t drawn;         /* lines of the table on the screen */
	char **last;          /* plain: the last line printed per build */
	int ready_fd;
	int cols, rows;       /* the terminal's size */
} bview;

static runner_batch *g_batch; /* for the signal handler only */

static void on_signal(int sig)
{
	(void)sig;
	if (g_batch)
		runner_batch_stop(g_batch);
}

static const char *col(const bview *v, const char *code) { return v->color ? code : ""; }

static void fmt_build(const bview *v, size_t i, char *out, size_t len)
{
	runner_batch_info in;
	runner_batch_build_info(v->b, i, &in);
	int64_t end = in.end_us ? in.end_us : cbl_now_us();
	double secs = in.start_us ? (double)(end - in.start_us) / 1e6 : 0;
	const char *mark = "·", *c = "\033[2m";
	const char *what = in.state;
	if (in.status) {
		bool good = !strcmp(in.status, "SUCCEEDED");
		mark = good ? "✓" : "✗";
		c = good ? "\033[32m" : "\033[31m";
		what = in.status;
	} else if (!strcmp(in.state, "RUNNING")) {
		mark = "▸";
		c = "\033[36m";
		what = in.phase ? in.phase : "SUBMITTED";
	} else if (!strcmp(in.state, "NOT_STARTED")) {
		mark = "-";
		what = "NOT STARTED";
	}
	bool label = in.label && strcmp(in.label, in.identifier);
	snprintf(out, len, "%s%s%s %-16s %-18s %7.1fs%s%s%s", col(v, c), mark, col(v, "\033[0m"), in.identifier,
		 what, secs, label ? "  " : "", label ? in.label : "", "");
}

static void draw_tty(bview *v)
{
	size_t n = runner_batch_count(v->b);
	if (v->drawn)
		printf("\033[%zuA", v->drawn);
	for (size_t i = 0; i < n; i++) {
		char line[512];
		fmt_build(v, i, line, sizeof(line));
		/* one screen line each, or the redraw would climb too little;
		 * the colour codes take no columns */
		int width = 0, limit = v->cols > 12 ? v->cols - 3 : 77;
		size_t k = 0;
		for (; line[k] && width < limit; k++) {
			if (line[k] == '\033') {
				while (line[k] && line[k] != 'm')
					k++;
				continue;
			}
			if (((unsigned char)line[k] & 0xc0) != 0x80)
				width++;
		}
		while (line[k] && ((unsigned char)line[k] & 0xc0) == 0x80)
			k++;
		printf("\r\033[K  %.*s%s\n", (int)k, line, col(v, "\033[0m"));
	}
	v->drawn = n;
	fflush(stdout);
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	if (s)
		puts(s);
	free(s);
	fflush(stdout);
}

static void on_json(bview *v, const runner_batch_event *ev)
{
	json_t *j = NULL;
	if (ev->kind == RUNNER_BATCH_EV_PHASE) {
		j = json_object();
		json_object_set_new(j, "event", json_string("batch-phase"));
		json_object_set_new(j, "phase", json_string(ev->phase));
	} else if (ev->kind == RUNNER_BATCH_EV_LINE) {
		j = json_loads(ev->line, 0, NULL);
		if (!json_is_object(j)) {
			json_decref(j);
			return;
		}
		runner_batch_info in;
		runner_batch_build_info(v->b, ev->index, &in);
		json_object_set_new(j, "identifier", json_string(in.identifier));
	}
	if (j)
		print_json(j);
	json_decref(j);
}

static void on_plain(bview *v, const runner_batch_event *ev)
{
	if (ev->kind == RUNNER_BATCH_EV_PHASE) {
		printf("batch %s\n", ev->phase);
		fflush(stdout);
		return;
	}
	if (ev->kind != RUNNER_BATCH_EV_BUILD)
		return;
	runner_batch_info in;
	runner_batch_build_info(v->b, ev->index, &in);
	char line[512];
	snprintf(line, sizeof(line), "%s %s", in.identifier,
		 in.status ? in.status : !strcmp(in.state, "RUNNING") ? (in.phase ? in.phase : "SUBMITTED") : in.state);
	if (v->last[ev->index] && !strcmp(v->last[ev->index], line))
		return;
	free(v->last[ev->index]);
	v->last[ev->index] = cbl_xstrdup(line);
	printf("%s\n", line);
	fflush(stdout);
}

static void on_event(const runner_batch_event *ev, void *payload)
{
	bview *v = payload;
	if (!v->b)
		return;
	/* more builds than the screen has lines: a line per change instead */
	if (v->mode == RUN_BATCH_TTY && (int)runner_batch_count(v->b) + 3 > v->rows)
		v->mode = RUN_BATCH_PLAIN;
	if (v->mode == RUN_BATCH_JSON)
		on_json(v, ev);
	else if (v->mode == RUN_BATCH_PLAIN)
		on_plain(v, ev);
	else if (v->mode == RUN_BATCH_TTY && ev->kind != RUNNER_BATCH_EV_LINE && runner_batch_count(v->b))
		draw_tty(v);
}

/* The last lines of a failing build's log (or what its process said). */
static void print_tail(FILE *f, const char *path, int max)
{
	FILE *in = path ? fopen(path, "re") : NULL;
	if (!in)
		return;
	char *ring[64] = {0};
	char buf[1024];
	int n = 0;
	/* up to the phase that failed: what led to it */
	while (fgets(buf, sizeof(buf), in)) {
		free(ring[n % max]);
		ring[n % max] = cbl_xstrdup(buf);
		n++;
		if (strstr(buf, "State: FAILED") || strstr(buf, "State: TIMED_OUT") || strstr(buf, "State: STOPPED"))
			break;
	}
	fclose(in);
	for (int k = n > max ? n - max : 0; k < n; k++) {
		fprintf(f, "    %s", ring[k % max]);
		if (!strchr(ring[k % max], '\n'))
			fputc('\n', f);
	}
	for (int k = 0; k < max; k++)
		free(ring[k]);
}

static void print_summary(bview *v)
{
	FILE *f = v->mode == RUN_BATCH_TTY ? stdout : stderr;
	runner_batch *b = v->b;
	json_t *rec = runner_batch_record(b);
	const char *st = json_string_value(json_object_get(rec, "buildBatchStatus"));
	double secs = json_real_value(json_object_get(rec, "endTime")) - json_real_value(json_object_get(rec, "startTime"));
	bool good = runner_batch_status(b) == RUNNER_STATUS_SUCCEEDED;
	if (runner_batch_error(b))
		fprintf(f, "%serror:%s %s\n", col(v, "\033[31m"), col(v, "\033[0m"), runner_batch_error(b));
	for (size_t i = 0; i < runner_batch_count(b); i++) {
		runner_batch_info in;
		runner_batch_build_info(b, i, &in);
		if (!in.status || !strcmp(in.status, "SUCCEEDED"))
			continue;
		fprintf(f, "%s%s %s%s (%s)\n", col(v, "\033[31;1m"), in.identifier, in.status, col(v, "\033[0m"),
			in.build_id ? in.build_id : "no build record");
		print_tail(f, in.log_path ? in.log_path : in.stderr_path, 15);
	}
	fprintf(f, "%sBatch %s %s%s in %.2fs\n", col(v, good ? "\033[32;1m" : "\033[31;1m"), runner_batch_id(b), st,
		col(v, "\033[0m"), secs);
	fprintf(f, "Record: %s/batch.json\n", runner_batch_dir(b));
}

static int exit_code(runner_batch *b)
{
	if (runner_batch_error(b))
		return CLI_EXIT_USAGE;
	switch (runner_batch_status(b)) {
	case RUNNER_STATUS_SUCCEEDED:
		return CLI_EXIT_OK;
	case RUNNER_STATUS_FAILED:
		return CLI_EXIT_FAILED;
	case RUNNER_STATUS_TIMED_OUT:
		return CLI_EXIT_TIMED_OUT;
	case RUNNER_STATUS_STOPPED:
		return CLI_EXIT_STOPPED;
	default:
		return CLI_EXIT_FAULT;
	}
}

static void say_ready(bview *v, const char *what)
{
	if (v->ready_fd < 0)
		return;
	dprintf(v->ready_fd, "%s\n", what);
	close(v->ready_fd);
	v->ready_fd = -1;
}

int cli_run_batch(runner_batch_opts *bo, int mode, int ready_fd)
{
	bview v = {.mode = mode, .ready_fd = ready_fd, .cols = 80, .rows = 24};
	struct winsize ws;
	if (mode == RUN_BATCH_TTY && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
		v.cols = ws.ws_col;
		v.rows = ws.ws_row;
	}
	v.color = mode == RUN_BATCH_TTY && !getenv("NO_COLOR");
	cbl_error *err = NULL;
	bo->on_event = on_event;
	bo->payload = &v;
	if (runner_batch_new(&v.b, bo, &err) < 0) {
		if (ready_fd >= 0)
			dprintf(ready_fd, "error: %s\n", err->msg);
		cli_report(err);
		cbl_error_free(err);
		return CLI_EXIT_FAULT;
	}
	say_ready(&v, "ok");
	g_batch = v.b;
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	v.last = cbl_xcalloc(1024, sizeof(char *));
	runner_batch_run(v.b, &err);
	g_batch = NULL;
	int rc = exit_code(v.b);
	if (mode == RUN_BATCH_TTY && v.drawn)
		draw_tty(&v);
	if (mode == RUN_BATCH_JSON) {
		json_t *w = json_object();
		json_object_set(w, "buildBatch", runner_batch_record(v.b));
		print_json(w);
		json_decref(w);
	} else if (mode != RUN_BATCH_NONE) {
		print_summary(&v);
	}
	for (size_t i = 0; i < 1024; i++)
		free(v.last[i]);
	free(v.last);
	runner_batch_free(v.b);
	cbl_error_free(err);
	return rc;
}
