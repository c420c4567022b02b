/* server/dash_batch.c - a batch build's page (its build groups as levels of
 * the dependency graph: each build's status, what it waits for, a link to
 * its build page) and the rows of a project's batch list. */
#include "server/dashboard.h"
#include "store/store.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static long long ms_of(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? (long long)(json_number_value(v) * 1000.0 + 0.5) : -1;
}

/* A build's id from its ARN (…:build/<project>:<uuid>). */
static const char *build_id_of(const char *arn)
{
	const char *s = arn ? strstr(arn, ":build/") : NULL;
	return s ? s + 7 : NULL;
}

static long find_group(json_t *groups, const char *ident)
{
	size_t i;
	json_t *g;
	json_array_foreach(groups, i, g) {
		const char *x = json_string_value(json_object_get(g, "identifier"));
		if (x && ident && !strcmp(x, ident))
			return (long)i;
	}
	return -1;
}

/* Each group's level: 0 without dependencies, else one past the deepest of
 * them (a fixpoint; a cycle, which the buildspec check refuses, stops at n). */
static size_t *levels_of(json_t *groups, size_t *depth)
{
	size_t n = json_array_size(groups);
	size_t *lv = cbl_xcalloc(n ? n : 1, sizeof(*lv));
	bool changed = true;
	for (size_t round = 0; changed && round < n; round++) {
		changed = false;
		for (size_t i = 0; i < n; i++) {
			size_t k;
			json_t *dep;
			json_array_foreach(json_object_get(json_array_get(groups, i), "dependsOn"), k, dep) {
				long j = find_group(groups, json_string_value(dep));
				if (j >= 0 && lv[j] + 1 > lv[i]) {
					lv[i] = lv[j] + 1;
					changed = true;
				}
			}
		}
	}
	*depth = 0;
	for (size_t i = 0; i < n; i++)
		if (lv[i] + 1 > *depth)
			*depth = lv[i] + 1;
	return lv;
}

static void group_item(cbl_buf *b, json_t *g)
{
	const char *ident = json_string_value(json_object_get(g, "identifier"));
	json_t *cur = json_object_get(g, "currentBuildSummary");
	const char *bid = build_id_of(json_string_value(json_object_get(cur, "arn")));
	cbl_buf_puts(b, "<li class=\"group\" id=\"g-");
	dash_esc(b, ident);
	cbl_buf_puts(b, "\" data-identifier=\"");
	dash_esc(b, ident);
	cbl_buf_puts(b, "\">");
	if (bid) {
		cbl_buf_puts(b, "<a class=\"group-build\" href=\"/builds/");
		dash_esc(b, bid);
		cbl_buf_puts(b, "\">");
		dash_esc(b, ident);
		cbl_buf_puts(b, "</a> ");
	} else {
		dash_esc(b, ident);
		cbl_buf_puts(b, " ");
	}
	dash_status(b, cur ? json_string_value(json_object_get(cur, "buildStatus")) : "NOT_STARTED");
	size_t k;
	json_t *dep;
	json_t *deps = json_object_get(g, "dependsOn");
	if (json_array_size(deps)) {
		cbl_buf_puts(b, "<br><small>after ");
		json_array_foreach(deps, k, dep) {
			cbl_buf_puts(b, k ? ", <a class=\"dep\" href=\"#g-" : "<a class=\"dep\" href=\"#g-");
			dash_esc(b, json_string_value(dep));
			cbl_buf_puts(b, "\">");
			dash_esc(b, json_string_value(dep));
			cbl_buf_puts(b, "</a>");
		}
		cbl_buf_puts(b, "</small>");
	}
	size_t prior = json_array_size(json_object_get(g, "priorBuildSummaryList"));
	if (prior)
		cbl_buf_printf(b, "<br><small>%zu earlier attempt%s</small>", prior, prior == 1 ? "" : "s");
	if (json_is_true(json_object_get(g, "ignoreFailure")))
		cbl_buf_puts(b, "<br><small>its failure is ignored</small>");
	cbl_buf_puts(b, "</li>");
}

#define NODE_W 150
#define NODE_H 28
#define COL_W 200
#define ROW_H 44

/* The same graph drawn (left to right by level, an edge per dependency);
 * hidden from screen readers: the table above says it all. */
static void draw(cbl_buf *b, json_t *groups, const size_t *lv, size_t depth)
{
	size_t n = json_array_size(groups), rows = 0;
	size_t *row = cbl_xcalloc(n, sizeof(*row)), *count = cbl_xcalloc(depth, sizeof(*count));
	for (size_t i = 0; i < n; i++) {
		row[i] = count[lv[i]]++;
		if (count[lv[i]] > rows)
			rows = count[lv[i]];
	}
	cbl_buf_printf(b, "<svg id=\"batch-svg\" class=\"graph\" width=\"%zu\" height=\"%zu\" "
			  "aria-hidden=\"true\" focusable=\"false\">",
		       depth * COL_W, rows * ROW_H + 4);
	for (size_t i = 0; i < n; i++) {
		size_t k;
		json_t *dep;
		json_array_foreach(json_object_get(json_array_get(groups, i), "dependsOn"), k, dep) {
			long j = find_group(groups, json_string_value(dep));
			if (j >= 0)
				cbl_buf_printf(b, "<line class=\"edge\" x1=\"%zu\" y1=\"%zu\" x2=\"%zu\" "
						  "y2=\"%zu\"/>", lv[j] * COL_W + NODE_W,
					       row[j] * ROW_H + 2 + NODE_H / 2, lv[i] * COL_W,
					       row[i] * ROW_H + 2 + NODE_H / 2);
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *g = json_array_get(groups, i);
		json_t *cur = json_object_get(g, "currentBuildSummary");
		const char *st = cur ? json_string_value(json_object_get(cur, "buildStatus")) : NULL;
		cbl_buf_printf(b, "<rect class=\"node st-");
		dash_esc(b, st ? st : "NOT_STARTED");
		cbl_buf_printf(b, "\" x=\"%zu\" y=\"%zu\" width=\"%d\" height=\"%d\" rx=\"4\"/>"
				  "<text x=\"%zu\" y=\"%zu\">",
			       lv[i] * COL_W + 1, row[i] * ROW_H + 2, NODE_W - 2, NODE_H, lv[i] * COL_W + 8,
			       row[i] * ROW_H + 20);
		dash_esc(b, json_string_value(json_object_get(g, "identifier")));
		cbl_buf_puts(b, "</text>");
	}
	cbl_buf_puts(b, "</svg>");
	free(row);
	free(count);
}

static void graph(cbl_buf *b, json_t *groups)
{
	size_t depth, n = json_array_size(groups);
	size_t *lv = levels_of(groups, &depth);
	cbl_buf_puts(b, "<section aria-labelledby=\"graph-h\"><h2 id=\"graph-h\">Builds</h2>");
	if (!n)
		cbl_buf_puts(b, "<p>No builds yet.</p>");
	else
		draw(b, groups, lv, depth);
	if (n)
		cbl_buf_puts(b, "<table id=\"batch-graph\"><caption>The batch's builds by level: a build "
				"starts once the builds it comes after are done</caption><thead><tr>"
				"<th scope=\"col\">Level</th><th scope=\"col\">Builds</th></tr></thead>"
				"<tbody>");
	for (size_t l = 0; n && l < depth; l++) {
		cbl_buf_printf(b, "<tr data-level=\"%zu\"><th scope=\"row\">%zu</th><td><ul class=\""
				  "groups\">", l, l);
		for (size_t i = 0; i < n; i++)
			if (lv[i] == l)
				group_item(b, json_array_get(groups, i));
		cbl_buf_puts(b, "</ul></td></tr>");
	}
	if (n)
		cbl_buf_puts(b, "</tbody></table>");
	cbl_buf_puts(b, "</section>");
	free(lv);
}

static void batch_summary(cbl_buf *b, json_t *rec)
{
	long long s = ms_of(rec, "startTime"), e = ms_of(rec, "endTime");
	cbl_buf_puts(b, "<dl class=\"summary\"><dt>Status</dt><dd id=\"batch-status\">");
	dash_status(b, json_string_value(json_object_get(rec, "buildBatchStatus")));
	cbl_buf_puts(b, "</dd><dt>Phase</dt><dd>");
	dash_esc(b, json_string_value(json_object_get(rec, "currentPhase")));
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
	cbl_buf_puts(b, "</dd></dl>");
}

int dash_batch_page(const char *home, const char *id, struct dash_page *p, char **errmsg)
{
	json_t *rec = NULL;
	cbl_error *err = NULL;
	int rc = store_batch_load(home, id, &rec, &err);
	if (rc < 0)
		return dash_load_failed(rc, err, "no such batch", errmsg);
	dash_head_record(p, "Batch", json_string_value(json_object_get(rec, "projectName")),
			 (long long)json_integer_value(json_object_get(rec, "buildBatchNumber")), NULL);
	batch_summary(&p->b, rec);
	graph(&p->b, json_object_get(rec, "buildGroups"));
	dash_foot(p);
	json_decref(rec);
	return 0;
}

void dash_batch_rows(cbl_buf *b, json_t *batches)
{
	size_t i;
	json_t *o;
	json_array_foreach(batches, i, o) {
		long long s = ms_of(o, "startTime"), e = ms_of(o, "endTime");
		cbl_buf_puts(b, "<tr><td>");
		dash_status(b, json_string_value(json_object_get(o, "buildBatchStatus")));
		cbl_buf_puts(b, "</td><th scope=\"row\"><a class=\"batch\" href=\"/batches/");
		dash_esc(b, json_string_value(json_object_get(o, "id")));
		cbl_buf_printf(b, "\">#%lld</a></th><td>%zu</td><td><code>",
			       (long long)json_integer_value(json_object_get(o, "buildBatchNumber")),
			       json_array_size(json_object_get(o, "buildGroups")));
		dash_esc(b, json_string_value(json_object_get(o, "sourceVersion")));
		cbl_buf_puts(b, "</code></td><td>");
		dash_duration(b, e >= s && s >= 0 ? e - s : -1);
		cbl_buf_puts(b, "</td><td>");
		if (s >= 0)
			dash_time(b, s);
		cbl_buf_puts(b, "</td></tr>");
	}
}
