/* server/dash_reports.c - a build's test reports (failures first, with
 * their message and stack; coverage per file) through the API's own reads
 * (BatchGetReports, DescribeTestCases, DescribeCodeCoverages), and the
 * trends page: each project's build durations and success rate over its
 * last builds, as server-rendered SVG. */
#include "server/dashboard.h"
#include "store/api.h"
#include "store/dash.h"
#include "store/store.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

#define TREND_BUILDS 60
#define CHART_W 600.0
#define CHART_H 120.0

static json_t *read_op(const char *home, const char *op, json_t *req)
{
	json_t *out = NULL;
	cbl_error *err = NULL;
	char *target = cbl_xasprintf("%s%s", STORE_TARGET_CODEBUILD, op);
	if (store_api_dispatch(home, target, req, &out, &err) < 0)
		out = NULL;
	cbl_error_free(err);
	free(target);
	json_decref(req);
	return out;
}

static void test_cases(cbl_buf *b, const char *home, const char *arn)
{
	json_t *res = read_op(home, "DescribeTestCases", json_pack("{s:s}", "reportArn", arn));
	json_t *cases = json_object_get(res, "testCases");
	cbl_buf_puts(b, "<table class=\"cases\"><caption>Test cases, failures first</caption><thead>"
			"<tr><th scope=\"col\">Status</th><th scope=\"col\">Test</th><th scope=\"col\">"
			"Duration</th><th scope=\"col\">Message</th></tr></thead><tbody>");
	size_t i;
	json_t *tc;
	json_array_foreach(cases, i, tc) {
		const char *st = json_string_value(json_object_get(tc, "status"));
		const char *msg = json_string_value(json_object_get(tc, "message"));
		json_t *ns = json_object_get(tc, "durationInNanoSeconds");
		cbl_buf_printf(b, "<tr class=\"%s\"><td>", st && strcmp(st, "SUCCEEDED") &&
				   strcmp(st, "SKIPPED") ? "case-failed" : "case");
		dash_status(b, st);
		cbl_buf_puts(b, "</td><th scope=\"row\">");
		const char *prefix = json_string_value(json_object_get(tc, "prefix"));
		if (prefix && *prefix) {
			cbl_buf_puts(b, "<small>");
			dash_esc(b, prefix);
			cbl_buf_puts(b, "</small> ");
		}
		dash_esc(b, json_string_value(json_object_get(tc, "name")));
		cbl_buf_puts(b, "</th><td>");
		dash_duration(b, json_is_integer(ns) ? json_integer_value(ns) / 1000000 : -1);
		cbl_buf_puts(b, "</td><td>");
		if (msg && *msg) {
			cbl_buf_puts(b, "<pre class=\"message\">");
			dash_esc(b, msg);
			cbl_buf_puts(b, "</pre>");
		}
		cbl_buf_puts(b, "</td></tr>");
	}
	cbl_buf_puts(b, "</tbody></table>");
	if (json_object_get(res, "nextToken"))
		cbl_buf_puts(b, "<p>Only the first 100 test cases are shown.</p>");
	json_decref(res);
}

static void coverages(cbl_buf *b, const char *home, const char *arn)
{
	json_t *res = read_op(home, "DescribeCodeCoverages", json_pack("{s:s}", "reportArn", arn));
	cbl_buf_puts(b, "<table class=\"coverage\"><caption>Coverage per file</caption><thead><tr>"
			"<th scope=\"col\">File</th><th scope=\"col\">Lines</th><th scope=\"col\">"
			"Branches</th></tr></thead><tbody>");
	size_t i;
	json_t *cc;
	json_array_foreach(json_object_get(res, "codeCoverages"), i, cc) {
		cbl_buf_puts(b, "<tr><th scope=\"row\"><code>");
		dash_esc(b, json_string_value(json_object_get(cc, "filePath")));
		cbl_buf_printf(b, "</code></th><td>%.1f%% (%lld/%lld)</td><td>",
			       json_number_value(json_object_get(cc, "lineCoveragePercentage")),
			       (long long)json_integer_value(json_object_get(cc, "linesCovered")),
			       (long long)(json_integer_value(json_object_get(cc, "linesCovered")) +
					   json_integer_value(json_object_get(cc, "linesMissed"))));
		if (json_integer_value(json_object_get(cc, "branchesCovered")) +
			    json_integer_value(json_object_get(cc, "branchesMissed")) >
		    0)
			cbl_buf_printf(b, "%.1f%%", json_number_value(json_object_get(
							      cc, "branchCoveragePercentage")));
		else
			cbl_buf_puts(b, "-");
		cbl_buf_puts(b, "</td></tr>");
	}
	cbl_buf_puts(b, "</tbody></table>");
	json_decref(res);
}

static void report_section(cbl_buf *b, const char *home, json_t *rep)
{
	const char *arn = json_string_value(json_object_get(rep, "arn"));
	const char *type = json_string_value(json_object_get(rep, "type"));
	json_t *ts = json_object_get(rep, "testSummary");
	cbl_buf_puts(b, "<section class=\"report\"><h2>");
	dash_esc(b, json_string_value(json_object_get(rep, "name")));
	cbl_buf_puts(b, " ");
	dash_status(b, json_string_value(json_object_get(rep, "status")));
	cbl_buf_puts(b, "</h2>");
	if (ts) {
		json_t *counts = json_object_get(ts, "statusCounts");
		cbl_buf_printf(b, "<p>%lld tests:", (long long)json_integer_value(json_object_get(ts, "total")));
		const char *k;
		json_t *v;
		json_object_foreach(counts, k, v) {
			if (json_integer_value(v))
				cbl_buf_printf(b, " %lld ", (long long)json_integer_value(v));
			if (json_integer_value(v))
				dash_esc(b, k);
		}
		cbl_buf_puts(b, "</p>");
	}
	if (arn && type && !strcmp(type, "CODE_COVERAGE"))
		coverages(b, home, arn);
	else if (arn)
		test_cases(b, home, arn);
	cbl_buf_puts(b, "</section>");
}

int dash_reports_page(const char *home, const char *id, struct dash_page *p, char **errmsg)
{
	json_t *rec = NULL;
	cbl_error *err = NULL;
	if (store_build_load(home, id, &rec, &err) < 0) {
		*errmsg = cbl_xstrdup(err ? err->msg : "no such build");
		cbl_error_free(err);
		return -2;
	}
	json_t *arns = json_object_get(rec, "reportArns");
	json_t *res = json_array_size(arns)
			      ? read_op(home, "BatchGetReports", json_pack("{s:O}", "reportArns", arns))
			      : NULL;
	long long number = (long long)json_integer_value(json_object_get(rec, "buildNumber"));
	cbl_buf crumb = CBL_BUF_INIT;
	cbl_buf_puts(&crumb, " / <a href=\"/builds/");
	dash_esc(&crumb, id);
	cbl_buf_printf(&crumb, "\">Build #%lld</a>", number);
	dash_head_record(p, "Reports of", json_string_value(json_object_get(rec, "projectName")), number,
			 cbl_buf_cstr(&crumb));
	cbl_buf_release(&crumb);
	json_t *reports = json_object_get(res, "reports");
	if (!json_array_size(reports))
		cbl_buf_puts(&p->b, "<p>This build has no reports.</p>");
	size_t i;
	json_t *rep;
	json_array_foreach(reports, i, rep)
		report_section(&p->b, home, rep);
	dash_foot(p);
	json_decref(res);
	json_decref(rec);
	return 0;
}

/* ---- trends ---------------------------------------------------------------- */

static bool succeeded(json_t *o)
{
	const char *st = json_string_value(json_object_get(o, "status"));
	return st && !strcmp(st, "SUCCEEDED");
}

/* The success rate of the (up to) 10 builds ending at each build. */
static void rate_line(cbl_buf *b, json_t *pts, double w)
{
	size_t i;
	json_t *o;
	int ok = 0;
	cbl_buf_puts(b, "<polyline class=\"rate\" fill=\"none\" points=\"");
	json_array_foreach(pts, i, o) {
		ok += succeeded(o);
		if (i >= 10)
			ok -= succeeded(json_array_get(pts, i - 10));
		size_t window = i + 1 < 10 ? i + 1 : 10;
		cbl_buf_printf(b, "%.1f,%.1f ", (double)i * w + w / 2,
			       CHART_H - (double)ok / (double)window * (CHART_H - 4));
	}
	cbl_buf_puts(b, "\"/>");
}

/* Each build's duration as a bar, green when it succeeded. */
static void duration_bars(cbl_buf *b, json_t *pts, double w, long long max)
{
	size_t i;
	json_t *o;
	json_array_foreach(pts, i, o) {
		long long d = json_integer_value(json_object_get(o, "durationMs"));
		double h = (double)d / (double)max * (CHART_H - 4) + 1;
		cbl_buf_printf(b, "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
				  "height=\"%.1f\"><title>#%lld ",
			       succeeded(o) ? "ok" : "bad", (double)i * w + 1, CHART_H - h,
			       w > 3 ? w - 2 : 1, h,
			       (long long)json_integer_value(json_object_get(o, "number")));
		dash_esc(b, json_string_value(json_object_get(o, "status")));
		cbl_buf_puts(b, " ");
		dash_duration(b, d);
		cbl_buf_puts(b, "</title></rect>");
	}
}

static void trend_chart(cbl_buf *b, const char *name, json_t *pts)
{
	size_t n = json_array_size(pts), i, ok = 0;
	long long max = 1;
	json_t *o;
	json_array_foreach(pts, i, o) {
		ok += succeeded(o);
		if (json_integer_value(json_object_get(o, "durationMs")) > max)
			max = json_integer_value(json_object_get(o, "durationMs"));
	}
	double w = n ? CHART_W / (double)n : CHART_W;
	cbl_buf_printf(b, "<svg class=\"trend\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" "
			  "height=\"%.0f\" role=\"img\" aria-labelledby=\"t-",
		       CHART_W, CHART_H + 18, CHART_W, CHART_H + 18);
	dash_esc(b, name);
	cbl_buf_puts(b, "\"><title id=\"t-");
	dash_esc(b, name);
	cbl_buf_printf(b, "\">Durations of the last %zu builds of ", n);
	dash_esc(b, name);
	cbl_buf_puts(b, " and their success rate over 10 builds</title>");
	duration_bars(b, pts, w, max);
	rate_line(b, pts, w);
	cbl_buf_printf(b, "<text x=\"2\" y=\"%.0f\" class=\"axis\">#%lld</text>"
			  "<text x=\"%.0f\" y=\"%.0f\" class=\"axis\" text-anchor=\"end\">#%lld</text>"
			  "</svg><p class=\"trend-sum\">Last %zu builds: %.0f%% succeeded; longest ",
		       CHART_H + 14,
		       (long long)json_integer_value(json_object_get(json_array_get(pts, 0), "number")),
		       CHART_W - 2, CHART_H + 14,
		       (long long)json_integer_value(json_object_get(json_array_get(pts, n - 1), "number")),
		       n, n ? 100.0 * (double)ok / (double)n : 0.0);
	dash_duration(b, max);
	cbl_buf_puts(b, " (bar height), the line the success rate of 10 builds.</p>");
}

int dash_trends_page(const char *home, struct dash_page *p, char **errmsg)
{
	json_t *projects = NULL;
	cbl_error *err = NULL;
	if (store_dash_projects(home, &projects, &err) < 0) {
		*errmsg = cbl_xstrdup(err ? err->msg : "cannot list projects");
		cbl_error_free(err);
		return -1;
	}
	dash_head(p, "Trends", NULL);
	cbl_buf_puts(&p->b, "<p>Each bar is a build (green: succeeded, red: anything else), its "
			    "height its duration; the line is the success rate of the 10 builds up "
			    "to it.</p>");
	size_t i;
	json_t *o;
	json_array_foreach(projects, i, o) {
		const char *name = json_string_value(json_object_get(o, "name"));
		json_t *pts = NULL;
		if (store_dash_trend(home, name, TREND_BUILDS, &pts, NULL) < 0 || !json_array_size(pts)) {
			json_decref(pts);
			continue;
		}
		cbl_buf_puts(&p->b, "<section class=\"trend\"><h2><a href=\"/projects/");
		dash_esc(&p->b, name);
		cbl_buf_puts(&p->b, "\">");
		dash_esc(&p->b, name);
		cbl_buf_puts(&p->b, "</a></h2>");
		trend_chart(&p->b, name, pts);
		cbl_buf_puts(&p->b, "</section>");
		json_decref(pts);
	}
	dash_foot(p);
	json_decref(projects);
	return 0;
}
