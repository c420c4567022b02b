/* cli/cmd_metrics.c - `metrics`: the builds of a window in figures (counts,
 * success rate, duration percentiles per phase, queued time, cost) with
 * their trend as sparklines; --json prints store_metrics_summary's object. */
#include "cli/cli.h"
#include "store/store.h"
#include "util/time.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/banned.h"

static const char metrics_usage[] =
	"usage: codebuild-local metrics [--project P] [--since 7d] [--period 1h] [--json]\n"
	"\n"
	"The builds that ended in the window: counts, success rate, duration p50/p95 per\n"
	"phase and queued time (seconds), cost (from the price table each build was priced\n"
	"with), the busiest projects, and the trend per period drawn as sparklines.\n"
	"\n"
	"  --project P   one project's builds (default: every project)\n"
	"  --since D     the window: the last D (default 7d); D is N followed by s, m, h, d or w\n"
	"  --period D    the trend's period (default: 1h, or 1d for a window over 7 days)\n"
	"  --json        the figures as JSON\n";

int cmd_metrics(int argc, char **argv); /* called from cli/main.c */

/* "90s", "15m", "1h", "7d", "2w" in milliseconds; -1 when malformed. */
static int64_t parse_span(const char *s)
{
	char *end = NULL;
	long long n = strtoll(s, &end, 10);
	if (end == s || n <= 0 || !end[0] || end[1])
		return -1;
	int64_t unit = 0;
	switch (*end) {
	case 's': unit = 1000; break;
	case 'm': unit = 60000; break;
	case 'h': unit = 3600000; break;
	case 'd': unit = 86400000; break;
	case 'w': unit = 7 * 86400000LL; break;
	default: return -1;
	}
	if (n > 3650LL * 86400000 / unit)
		return -1;
	return n * unit;
}

static double num(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* One row of values as a sparkline of width cells (values merged by sum,
 * or by mean when avg). */
static void sparkline(FILE *f, const double *v, size_t n)
{
	static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
	double max = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] > max)
			max = v[i];
	for (size_t i = 0; i < n; i++) {
		if (v[i] <= 0)
			fputs(" ", f);
		else
			fputs(bars[max > 0 ? (int)(v[i] / max * 7.999) : 0], f);
	}
}

static void print_trend(FILE *f, const json_t *o, int64_t since, int64_t until, int64_t period)
{
	int64_t nper = (until - since + period - 1) / period;
	size_t width = nper > 72 ? 72 : (size_t)nper;
	double *builds = calloc(width, sizeof(double)), *failed = calloc(width, sizeof(double));
	double *dur = calloc(width, sizeof(double)), *dn = calloc(width, sizeof(double));
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(o, "periods"), i, p)
	{
		int64_t k = ((int64_t)num(p, "startMs") - since) / period;
		size_t c = (size_t)(k * (int64_t)width / nper);
		if (c >= width)
			continue;
		builds[c] += num(p, "builds");
		failed[c] += num(p, "failed");
		dur[c] += num(p, "durationAvgMs") * num(p, "builds");
		dn[c] += num(p, "builds");
	}
	for (size_t c = 0; c < width; c++)
		dur[c] = dn[c] ? dur[c] / dn[c] : 0;
	fprintf(f, "\nTrend (%zu columns of %.3g periods each, oldest first):\n", width, (double)nper / (double)width);
	fputs("  builds    ", f);
	sparkline(f, builds, width);
	fputs("\n  failed    ", f);
	sparkline(f, failed, width);
	fputs("\n  duration  ", f);
	sparkline(f, dur, width);
	fputs("\n", f);
	free(builds);
	free(failed);
	free(dur);
	free(dn);
}

static void print_text(const json_t *o, const char *project, const char *since_arg, int64_t since, int64_t until,
		       int64_t period)
{
	FILE *f = stdout;
	char a[32], b[32];
	time_t ts = (time_t)(since / 1000), tu = (time_t)(until / 1000);
	struct tm tm;
	strftime(a, sizeof(a), "%Y-%m-%d %H:%M", gmtime_r(&ts, &tm));
	strftime(b, sizeof(b), "%Y-%m-%d %H:%M", gmtime_r(&tu, &tm));
	fprintf(f, "Builds that ended %s .. %s UTC (the last %s), %s%s\n", a, b, since_arg,
		project ? "project " : "every project", project ? project : "");
	double n = num(o, "builds");
	fprintf(f, "  builds %.0f   succeeded %.0f   failed %.0f   other %.0f   success rate ", n, num(o, "succeeded"),
		num(o, "failed"), num(o, "other"));
	if (n > 0)
		fprintf(f, "%.1f%%\n", 100 * num(o, "successRate"));
	else
		fprintf(f, "-\n");
	fprintf(f, "  cost %.4f (%.0f of %.0f builds priced)   build minutes %.1f   CPU %.1f s   peak memory %.1f MB\n",
		num(o, "cost"), num(o, "pricedBuilds"), n, num(o, "buildMinutes"), num(o, "cpuSeconds"),
		num(o, "memoryPeakBytes") / 1048576.0);
	fprintf(f, "\nDurations (seconds)     builds       p50       p95       max\n");
	const char *k;
	json_t *d;
	json_object_foreach(json_object_get(o, "durationMs"), k, d)
	{
		if (!num(d, "count"))
			continue;
		fprintf(f, "  %-18s %9.0f %9.2f %9.2f %9.2f\n", k, num(d, "count"), num(d, "p50") / 1000,
			num(d, "p95") / 1000, num(d, "max") / 1000);
	}
	if (n > 0)
		print_trend(f, o, since, until, period);
	size_t i;
	json_t *p;
	if (json_array_size(json_object_get(o, "projects")))
		fprintf(f, "\nProjects                          builds   success   avg (s)       cost\n");
	json_array_foreach(json_object_get(o, "projects"), i, p)
	{
		fprintf(f, "  %-30s %9.0f %8.1f%% %9.2f %10.4f\n", json_string_value(json_object_get(p, "project")),
			num(p, "builds"), 100 * num(p, "successRate"), num(p, "durationAvgMs") / 1000, num(p, "cost"));
	}
}

int cmd_metrics(int argc, char **argv)
{
	static const struct option opts[] = {
		{"project", required_argument, NULL, 'p'}, {"since", required_argument, NULL, 's'},
		{"period", required_argument, NULL, 'P'},  {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},          {0},
	};
	store_metrics_query q = {0};
	const char *since_arg = "7d", *period_arg = NULL;
	bool as_json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': q.project = optarg; break;
		case 's': since_arg = optarg; break;
		case 'P': period_arg = optarg; break;
		case 'j': as_json = true; break;
		case 'h': fputs(metrics_usage, stdout); return CLI_EXIT_OK;
		default: fputs(metrics_usage, stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("metrics: unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	int64_t span = parse_span(since_arg);
	int64_t period = period_arg ? parse_span(period_arg) : span > 7 * 86400000LL ? 86400000 : 3600000;
	if (span < 0 || period < 0) {
		cli_error("metrics: --%s '%s': want N followed by s, m, h, d or w (e.g. 7d, 1h)",
			  span < 0 ? "since" : "period", span < 0 ? since_arg : period_arg);
		return CLI_EXIT_USAGE;
	}
	q.until_ms = cbl_now_us() / 1000 + 1;
	q.since_ms = q.until_ms - span;
	q.period_ms = period;
	char *home = store_default_home();
	json_t *o = NULL;
	cbl_error *err = NULL;
	int rc = store_metrics_summary(home, &q, &o, &err);
	free(home);
	if (rc < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_FAULT;
	}
	if (as_json) {
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
		if (s)
			puts(s);
		free(s);
	} else {
		print_text(o, q.project, since_arg, q.since_ms, q.until_ms, period);
	}
	json_decref(o);
	return CLI_EXIT_OK;
}
