/* server/dash_build.c - a build's page (phase timeline, the failing
 * phase's context, environment with secrets masked, artifacts, actions)
 * and its live log: server-sent events read from the same log stream as
 * GetLogEvents (store/dash.h). */
#include "server/dashboard.h"
#include "store/dash.h"
#include "store/store.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/banned.h"

#define LOG_POLL_NS 25000000L  /* a new line reaches the browser within this */
#define LOG_KEEPALIVE_MS 15000
#define LOG_CHUNK (64 * 1024)

static long long ms_of(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? (long long)(json_number_value(v) * 1000.0 + 0.5) : -1;
}

/* Names that usually hold secrets, and every non-PLAINTEXT variable. */
static bool secret_var(const char *name, const char *type)
{
	static const char *const words[] = {"SECRET", "PASSWORD", "PASSWD", "TOKEN", "PRIVATE",
					    "CREDENTIAL", "API_KEY", "ACCESS_KEY", "AUTH"};
	if (type && strcmp(type, "PLAINTEXT"))
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
		if (name && strcasestr(name, words[i]))
			return true;
	return false;
}

static void env_section(cbl_buf *b, json_t *rec)
{
	json_t *vars = json_object_get(json_object_get(rec, "environment"), "environmentVariables");
	cbl_buf_puts(b, "<section aria-labelledby=\"env-h\"><h2 id=\"env-h\">Environment variables"
			"</h2>");
	if (!json_array_size(vars)) {
		cbl_buf_puts(b, "<p>None set by the project or the start request.</p></section>");
		return;
	}
	cbl_buf_puts(b, "<table id=\"env\"><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">"
			"Value</th><th scope=\"col\">Type</th></tr></thead><tbody>");
	size_t i;
	json_t *v;
	json_array_foreach(vars, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *type = json_string_value(json_object_get(v, "type"));
		cbl_buf_puts(b, "<tr><th scope=\"row\"><code>");
		dash_esc(b, name);
		cbl_buf_puts(b, "</code></th><td>");
		if (secret_var(name, type)) {
			cbl_buf_puts(b, "<span class=\"masked\" aria-label=\"hidden value\">********</span>");
		} else {
			cbl_buf_puts(b, "<code>");
			dash_esc(b, json_string_value(json_object_get(v, "value")));
			cbl_buf_puts(b, "</code>");
		}
		cbl_buf_puts(b, "</td><td>");
		dash_esc(b, type ? type : "PLAINTEXT");
		cbl_buf_puts(b, "</td></tr>");
	}
	cbl_buf_puts(b, "</tbody></table></section>");
}

static void artifact_row(cbl_buf *b, const char *home, json_t *rec, size_t n, const char *what)
{
	json_t *a = n ? json_array_get(json_object_get(rec, "secondaryArtifacts"), n - 1)
		      : json_object_get(rec, "artifacts");
	const char *loc = json_string_value(json_object_get(a, "location"));
	const char *id = json_string_value(json_object_get(rec, "id"));
	int fd;
	long long size;
	const char *name;
	cbl_buf_puts(b, "<li>");
	dash_esc(b, what);
	cbl_buf_puts(b, ": ");
	if (dash_artifact_open(home, rec, n, &fd, &size, &name) == 0) {
		close(fd);
		cbl_buf_puts(b, "<a class=\"artifact\" href=\"/builds/");
		dash_esc(b, id);
		cbl_buf_printf(b, "/artifacts/%zu\" download>", n);
		dash_esc(b, name);
		cbl_buf_printf(b, "</a> (%lld bytes)", size);
	} else if (loc && *loc) {
		cbl_buf_puts(b, "<code>");
		dash_esc(b, loc);
		cbl_buf_puts(b, "</code>");
	} else {
		cbl_buf_puts(b, "none");
	}
	const char *sha = json_string_value(json_object_get(a, "sha256sum"));
	if (sha) {
		cbl_buf_puts(b, " <small>sha256 ");
		dash_esc(b, sha);
		cbl_buf_puts(b, "</small>");
	}
	cbl_buf_puts(b, "</li>");
}

static void artifacts_section(cbl_buf *b, const char *home, json_t *rec)
{
	cbl_buf_puts(b, "<section aria-labelledby=\"art-h\"><h2 id=\"art-h\">Artifacts</h2><ul id=\""
			"artifacts\">");
	artifact_row(b, home, rec, 0, "primary");
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(rec, "secondaryArtifacts"), i, a)
		artifact_row(b, home, rec, i + 1,
			     json_string_value(json_object_get(a, "artifactIdentifier")));
	cbl_buf_puts(b, "</ul>");
	json_t *ex = json_object_get(rec, "exportedEnvironmentVariables");
	if (json_array_size(ex)) {
		cbl_buf_puts(b, "<h3>Exported variables</h3><ul>");
		json_array_foreach(ex, i, a) {
			cbl_buf_puts(b, "<li><code>");
			dash_esc(b, json_string_value(json_object_get(a, "name")));
			cbl_buf_puts(b, "=");
			dash_esc(b, json_string_value(json_object_get(a, "value")));
			cbl_buf_puts(b, "</code></li>");
		}
		cbl_buf_puts(b, "</ul>");
	}
	cbl_buf_puts(b, "</section>");
}

/* The phases as a table with an SVG bar each (offset and length on the
 * build's time axis), the failing phase marked and its context shown. */
static void timeline(cbl_buf *b, json_t *rec)
{
	json_t *phases = json_object_get(rec, "phases");
	long long t0 = ms_of(rec, "startTime"), t1 = ms_of(rec, "endTime");
	long long now = (long long)time(NULL) * 1000;
	if (t1 < 0)
		t1 = now;
	double span = t1 > t0 ? (double)(t1 - t0) : 1.0;
	cbl_buf_puts(b, "<section aria-labelledby=\"tl-h\"><h2 id=\"tl-h\">Phases</h2>"
			"<table id=\"timeline\"><thead><tr><th scope=\"col\">Phase</th><th scope=\"col\">"
			"Status</th><th scope=\"col\">Duration</th><th scope=\"col\">Timeline</th></tr>"
			"</thead><tbody>");
	size_t i;
	json_t *ph;
	json_array_foreach(phases, i, ph) {
		const char *type = json_string_value(json_object_get(ph, "phaseType"));
		const char *st = json_string_value(json_object_get(ph, "phaseStatus"));
		long long s = ms_of(ph, "startTime"), e = ms_of(ph, "endTime");
		bool failed = st && strcmp(st, "SUCCEEDED");
		if (e < 0 && type && strcmp(type, "COMPLETED"))
			e = now;
		cbl_buf_printf(b, "<tr class=\"%s\" data-phase=\"", failed ? "phase-failed" : "phase");
		dash_esc(b, type);
		cbl_buf_puts(b, "\"><th scope=\"row\">");
		dash_esc(b, type);
		cbl_buf_puts(b, "</th><td>");
		if (st || e == now)
			dash_status(b, st ? st : "IN_PROGRESS");
		cbl_buf_puts(b, "</td><td>");
		dash_duration(b, s >= 0 && e >= s ? e - s : -1);
		double x = s >= t0 ? (double)(s - t0) / span * 300.0 : 0;
		double w = e >= s && s >= 0 ? (double)(e - s) / span * 300.0 : 0;
		cbl_buf_printf(b, "</td><td><svg class=\"bar\" width=\"300\" height=\"12\" "
				  "aria-hidden=\"true\"><rect x=\"%.1f\" y=\"1\" width=\"%.1f\" "
				  "height=\"10\" class=\"%s\"/></svg></td></tr>",
			       x, w < 2 ? 2 : w, failed ? "bar-failed" : "bar-ok");
		json_t *ctx = json_array_get(json_object_get(ph, "contexts"), 0);
		const char *msg = json_string_value(json_object_get(ctx, "message"));
		if (failed && msg && *msg) {
			cbl_buf_puts(b, "<tr class=\"context\"><td colspan=\"4\" role=\"note\">"
					"<strong>");
			dash_esc(b, type);
			cbl_buf_puts(b, " failed:</strong> <code>");
			dash_esc(b, json_string_value(json_object_get(ctx, "statusCode")));
			cbl_buf_puts(b, "</code> ");
			dash_esc(b, msg);
			cbl_buf_puts(b, "</td></tr>");
		}
	}
	cbl_buf_puts(b, "</tbody></table></section>");
}

static void summary(struct dash_page *p, json_t *rec, const char *id)
{
	cbl_buf *b = &p->b;
	long long s = ms_of(rec, "startTime"), e = ms_of(rec, "endTime");
	bool complete = json_is_true(json_object_get(rec, "buildComplete"));
	cbl_buf_puts(b, "<dl class=\"summary\"><dt>Status</dt><dd id=\"build-status\">");
	dash_status(b, json_string_value(json_object_get(rec, "buildStatus")));
	cbl_buf_puts(b, "</dd><dt>Source version</dt><dd><code>");
	json_t *sv = json_object_get(rec, "resolvedSourceVersion");
	dash_esc(b, json_string_value(sv ? sv : json_object_get(rec, "sourceVersion")));
	cbl_buf_puts(b, "</code></dd><dt>Initiator</dt><dd>");
	dash_esc(b, json_string_value(json_object_get(rec, "initiator")));
	cbl_buf_puts(b, "</dd><dt>Started</dt><dd>");
	if (s >= 0)
		dash_time(b, s);
	cbl_buf_puts(b, "</dd><dt>Duration</dt><dd>");
	dash_duration(b, e >= s && s >= 0 ? e - s : -1);
	cbl_buf_puts(b, "</dd></dl><div class=\"actions\">");
	if (!complete) {
		dash_form(p, "/actions/stop", "stop");
		cbl_buf_puts(b, "<input type=\"hidden\" name=\"id\" value=\"");
		dash_esc(b, id);
		cbl_buf_puts(b, "\"><button type=\"submit\" id=\"stop-build\">Stop build</button></form>");
	}
	dash_form(p, "/actions/retry", "retry");
	cbl_buf_puts(b, "<input type=\"hidden\" name=\"id\" value=\"");
	dash_esc(b, id);
	cbl_buf_puts(b, "\"><button type=\"submit\" id=\"retry-build\">Retry build</button></form>");
	const char *batch = json_string_value(json_object_get(rec, "buildBatchArn"));
	if (batch && strstr(batch, ":build-batch/")) {
		cbl_buf_puts(b, "<a id=\"batch-link\" href=\"/batches/");
		dash_esc(b, strstr(batch, ":build-batch/") + 13);
		cbl_buf_puts(b, "\">Its batch</a>");
	}
	if (json_array_size(json_object_get(rec, "reportArns"))) {
		cbl_buf_puts(b, "<a id=\"reports-link\" href=\"/builds/");
		dash_esc(b, id);
		cbl_buf_puts(b, "/reports\">Test reports</a>");
	}
	cbl_buf_puts(b, "</div>");
}

/* ---- resource use (the record's codebuildLocal, never in the API copy) ---- */

static void bytes_cell(cbl_buf *b, json_t *v)
{
	static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
	if (!json_is_integer(v)) {
		cbl_buf_puts(b, "<td>-</td>");
		return;
	}
	double x = (double)json_integer_value(v);
	size_t u = 0;
	while (x >= 1024.0 && u + 1 < sizeof(units) / sizeof(*units)) {
		x /= 1024.0;
		u++;
	}
	cbl_buf_printf(b, "<td data-bytes=\"%lld\">%.1f %s</td>", (long long)json_integer_value(v), x,
		       units[u]);
}

static void usage_row(cbl_buf *b, const char *what, json_t *u)
{
	json_t *cpu = json_object_get(u, "cpuSeconds");
	cbl_buf_puts(b, "<tr data-phase=\"");
	dash_esc(b, what);
	cbl_buf_puts(b, "\"><th scope=\"row\">");
	dash_esc(b, what);
	if (json_is_number(cpu))
		cbl_buf_printf(b, "</th><td>%.2f</td>", json_number_value(cpu));
	else
		cbl_buf_puts(b, "</th><td>-</td>");
	bytes_cell(b, json_object_get(u, "memoryPeakBytes"));
	bytes_cell(b, json_object_get(u, "readBytes"));
	bytes_cell(b, json_object_get(u, "writeBytes"));
	cbl_buf_puts(b, "</tr>");
}

static void cost_and_advice(cbl_buf *b, json_t *local)
{
	json_t *cost = json_object_get(local, "cost"), *amount = json_object_get(cost, "amount");
	json_t *adv = json_object_get(local, "recommendation");
	cbl_buf_puts(b, "<dl class=\"summary\"><dt>Cost</dt><dd id=\"cost\">");
	if (json_is_number(amount)) {
		cbl_buf_printf(b, "%.4f ", json_number_value(amount));
		dash_esc(b, json_string_value(json_object_get(cost, "currency")));
		cbl_buf_puts(b, " on ");
		dash_esc(b, json_string_value(json_object_get(cost, "computeType")));
		cbl_buf_puts(b, " <small>(prices: ");
		dash_esc(b, json_string_value(json_object_get(cost, "priceSource")));
		cbl_buf_puts(b, ", ");
		dash_esc(b, json_string_value(json_object_get(cost, "priceDate")));
		cbl_buf_puts(b, ")</small>");
	} else {
		json_t *why = json_object_get(cost, "reason");
		dash_esc(b, cost ? json_string_value(why ? why : json_object_get(cost, "error"))
				 : "not known until the build ends");
	}
	cbl_buf_puts(b, "</dd><dt>Right-sizing</dt><dd id=\"advice\">");
	if (adv) {
		const char *to = json_string_value(json_object_get(adv, "computeType"));
		if (to) {
			cbl_buf_puts(b, "<strong>");
			dash_esc(b, to);
			cbl_buf_puts(b, "</strong>: ");
		}
		dash_esc(b, json_string_value(json_object_get(adv, "reason")));
	} else {
		cbl_buf_puts(b, "nothing to advise");
	}
	cbl_buf_puts(b, "</dd></dl>");
}

static void usage_section(cbl_buf *b, json_t *rec)
{
	json_t *local = json_object_get(rec, "codebuildLocal");
	json_t *u = json_object_get(local, "resourceUsage");
	cbl_buf_puts(b, "<section aria-labelledby=\"use-h\"><h2 id=\"use-h\">Resource use</h2>");
	if (!u) {
		cbl_buf_puts(b, "<p id=\"usage-none\">Not measured (yet) for this build.</p>");
	} else {
		json_t *avg = json_object_get(u, "averageVcpus");
		cbl_buf_puts(b, "<table id=\"usage\"><caption>Measured in the build's sandbox (");
		dash_esc(b, json_string_value(json_object_get(u, "source")));
		if (json_is_number(avg))
			cbl_buf_printf(b, "; %.2f vCPUs on average", json_number_value(avg));
		cbl_buf_puts(b, ")</caption><thead><tr><th scope=\"col\">Phase</th><th scope=\"col\">"
				"CPU seconds</th><th scope=\"col\">Peak memory</th><th scope=\"col\">Read"
				"</th><th scope=\"col\">Written</th></tr></thead><tbody>");
		usage_row(b, "Whole build", u);
		json_t *per = json_object_get(u, "phases"), *ph;
		size_t i;
		json_array_foreach(json_object_get(rec, "phases"), i, ph) {
			const char *type = json_string_value(json_object_get(ph, "phaseType"));
			json_t *pu = type ? json_object_get(per, type) : NULL;
			if (pu)
				usage_row(b, type, pu);
		}
		cbl_buf_puts(b, "</tbody></table>");
	}
	cost_and_advice(b, local);
	cbl_buf_puts(b, "</section>");
}

int dash_build_page(const char *home, const char *id, struct dash_page *p, char **errmsg)
{
	json_t *rec = NULL;
	cbl_error *err = NULL;
	int rc = store_build_load(home, id, &rec, &err);
	if (rc < 0)
		return dash_load_failed(rc, err, "no such build", errmsg);
	dash_head_record(p, "Build", json_string_value(json_object_get(rec, "projectName")),
			 (long long)json_integer_value(json_object_get(rec, "buildNumber")), NULL);
	summary(p, rec, id);
	timeline(&p->b, rec);
	cbl_buf_printf(&p->b, "<section aria-labelledby=\"log-h\"><h2 id=\"log-h\">Log</h2>"
			      "<p id=\"log-state\" role=\"status\">Loading the log...</p>"
			      "<div id=\"log\" class=\"log\" role=\"log\" tabindex=\"0\" "
			      "aria-label=\"Build log\" data-running=\"%d\" data-src=\"/builds/",
		       !json_is_true(json_object_get(rec, "buildComplete")));
	dash_esc(&p->b, id);
	cbl_buf_puts(&p->b, "/log\"></div></section>");
	json_t *local = NULL;
	cbl_error_free(err);
	err = NULL;
	if (store_dash_build_local(home, id, &local, &err) == 0 && local)
		json_object_set_new(rec, "codebuildLocal", local);
	cbl_error_free(err);
	usage_section(&p->b, rec);
	env_section(&p->b, rec);
	artifacts_section(&p->b, home, rec);
	dash_foot(p);
	json_decref(rec);
	return 0;
}

/* ---- the live log ---------------------------------------------------------- */

struct log_stream {
	char *home, *id;
	long long offset;
	cbl_buf pending;
	bool ended;
	const volatile int *stopping;
	long long idle_ms;
};

/* One SSE event per line: id = the offset after it. */
static void lines_to_events(struct log_stream *ls, const char *p, size_t len)
{
	while (len) {
		const char *nl = memchr(p, '\n', len);
		size_t n = nl ? (size_t)(nl - p) : len, adv = nl ? n + 1 : n;
		size_t a = 0, e = n;
		if (e && p[e - 1] == '\r')
			e--;
		/* a carriage return redraws the line: keep what was drawn last */
		for (size_t i = 0; i < e; i++)
			if (p[i] == '\r')
				a = i + 1;
		ls->offset += (long long)adv;
		cbl_buf_printf(&ls->pending, "id: %lld\ndata: ", ls->offset);
		for (size_t i = a; i < e; i++)
			cbl_buf_putc(&ls->pending, p[i] ? p[i] : '?');
		cbl_buf_puts(&ls->pending, "\n\n");
		p += adv;
		len -= adv;
	}
}

static void end_event(struct log_stream *ls)
{
	json_t *rec = NULL;
	cbl_error *err = NULL;
	const char *st = "UNKNOWN";
	if (store_build_load(ls->home, ls->id, &rec, &err) == 0)
		st = json_string_value(json_object_get(rec, "buildStatus"));
	cbl_buf_printf(&ls->pending, "event: end\ndata: %s\n\n", st ? st : "UNKNOWN");
	json_decref(rec);
	cbl_error_free(err);
	ls->ended = true;
}

static ssize_t log_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct log_stream *ls = cls;
	for (;;) {
		if (ls->pending.len) {
			size_t n = ls->pending.len < max ? ls->pending.len : max;
			memcpy(buf, ls->pending.ptr, n);
			cbl_buf_consume(&ls->pending, n);
			return (ssize_t)n;
		}
		if (ls->ended || __atomic_load_n(ls->stopping, __ATOMIC_SEQ_CST))
			return MHD_CONTENT_READER_END_OF_STREAM;
		cbl_buf raw = CBL_BUF_INIT;
		bool complete = false;
		cbl_error *err = NULL;
		int rc = store_dash_log_read(ls->home, ls->id, ls->offset, LOG_CHUNK, &raw, &complete,
					     &err);
		cbl_error_free(err);
		if (rc < 0 || raw.len) {
			if (rc < 0)
				end_event(ls);
			else
				lines_to_events(ls, raw.ptr, raw.len);
			ls->idle_ms = 0;
		} else if (complete) {
			end_event(ls);
		} else if (ls->idle_ms >= LOG_KEEPALIVE_MS) {
			cbl_buf_puts(&ls->pending, ": still running\n\n");
			ls->idle_ms = 0;
		} else {
			struct timespec ts = {0, LOG_POLL_NS};
			nanosleep(&ts, NULL);
			ls->idle_ms += LOG_POLL_NS / 1000000;
		}
		cbl_buf_release(&raw);
	}
}

static void log_free(void *cls)
{
	struct log_stream *ls = cls;
	cbl_buf_release(&ls->pending);
	free(ls->home);
	free(ls->id);
	free(ls);
}

enum MHD_Result dash_log_stream(struct MHD_Connection *c, const char *home, const char *id,
				const volatile int *stopping)
{
	struct log_stream *ls = cbl_xcalloc(1, sizeof(*ls));
	const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
	ls->home = cbl_xstrdup(home);
	ls->id = cbl_xstrdup(id);
	ls->stopping = stopping;
	ls->offset = last ? strtoll(last, NULL, 10) : 0;
	if (ls->offset < 0)
		ls->offset = 0;
	cbl_buf_puts(&ls->pending, "retry: 500\n\n");
	struct MHD_Response *r =
		MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, log_reader, ls, log_free);
	if (!r) {
		log_free(ls);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	enum MHD_Result res = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return res;
}
