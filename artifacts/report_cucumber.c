/* artifacts/report_cucumber.c - CUCUMBERJSON (cucumber-jvm, cucumber-js,
 * cucumber-ruby `--format json`).
 *
 *   [ {"uri", "name", "elements": [ {"type": "background"|"scenario", "name",
 *        "line", "before": [hook], "steps": [ {"keyword", "name", "line",
 *        "result": {"status", "duration", "error_message"}} ], "after": [hook]} ]} ]
 *
 * - One test case per scenario element (outline examples come out as one
 *   element each); prefix = testSuiteName = the feature name.
 * - A "background" element is not a case: its steps and hooks count towards
 *   the scenario that follows it (cucumber-jvm writes the background again
 *   before every scenario).
 * - Status from the steps and hooks, worst first: failed -> FAILED;
 *   ambiguous -> ERROR; undefined, pending or any unknown status -> UNKNOWN
 *   (they fail a strict run, the default since Cucumber 7); skipped ->
 *   SKIPPED; all passed (or no steps) -> SUCCEEDED.
 * - duration = the sum of step and hook durations, taken as nanoseconds
 *   (what cucumber-jvm, -ruby and current cucumber-js write).
 * - message = the error_message of the step (or hook) that decided the status,
 *   else "<status> step: <keyword><name>"; file = the feature uri; line = that
 *   step's line, else the scenario's.
 */
#include "artifacts/report_internal.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/json.h"

#include "util/banned.h"

/* 0 passed, 1 skipped, 2 undefined/pending/unknown, 3 ambiguous, 4 failed */
static int step_rank(const char *st)
{
	if (!st || !strcmp(st, "passed"))
		return 0;
	if (!strcmp(st, "skipped"))
		return 1;
	if (!strcmp(st, "ambiguous"))
		return 3;
	if (!strcmp(st, "failed"))
		return 4;
	return 2;
}

struct scenario_acc {
	int rank;
	const json_t *decisive; /* the step/hook that set rank */
	int64_t duration_ns;
};

static void acc_steps(struct scenario_acc *a, const json_t *steps)
{
	size_t i;
	const json_t *st;
	json_array_foreach(steps, i, st)
	{
		const json_t *res = json_object_get(st, "result");
		if (!json_is_object(res))
			continue;
		const json_t *d = json_object_get(res, "duration");
		double dv = json_is_number(d) ? json_number_value(d) : 0;
		if (dv > 0 && isfinite(dv))
			a->duration_ns = dv >= 9.2e18 || a->duration_ns > INT64_MAX - (int64_t)dv
						 ? INT64_MAX
						 : a->duration_ns + (int64_t)dv;
		int r = step_rank(cbl_json_str(res, "status"));
		if (r > a->rank) {
			a->rank = r;
			a->decisive = st;
		}
	}
}

static void acc_element(struct scenario_acc *a, const json_t *el)
{
	acc_steps(a, json_object_get(el, "before"));
	acc_steps(a, json_object_get(el, "background_steps"));
	const json_t *steps = json_object_get(el, "steps");
	acc_steps(a, steps);
	/* cucumber-ruby nests after-step hooks in the steps */
	size_t i;
	const json_t *st;
	json_array_foreach(steps, i, st) acc_steps(a, json_object_get(st, "after"));
	acc_steps(a, json_object_get(el, "after"));
}

static int jline(const json_t *o)
{
	json_int_t l = json_integer_value(json_object_get(o, "line"));
	return l > 0 && l < INT_MAX ? (int)l : 0;
}

static void add_scenario(artifacts_report *rep, const char *display, const json_t *feature, const json_t *el,
			 const struct scenario_acc *a)
{
	static const artifacts_report_test_status by_rank[] = {
		ARTIFACTS_REPORT_SUCCEEDED, ARTIFACTS_REPORT_SKIPPED, ARTIFACTS_REPORT_UNKNOWN,
		ARTIFACTS_REPORT_ERROR, ARTIFACTS_REPORT_FAILED};
	artifacts_report_case cs = {.status = by_rank[a->rank], .duration_ns = a->duration_ns};
	artifacts_report_case *c = &cs;
	if (!artifacts_report_case_wanted(rep, cs.status)) {
		artifacts_report_case_push(rep, &cs, display); /* counted only */
		return;
	}
	const char *fname = cbl_json_str(feature, "name");
	artifacts_report_str_set(&c->prefix, fname ? fname : "");
	artifacts_report_str_set(&c->test_suite_name, fname);
	const char *name = cbl_json_str(el, "name");
	artifacts_report_str_set(&c->name, name ? name : "");
	const char *uri = cbl_json_str(feature, "uri");
	if (uri && !strncmp(uri, "file://", 7))
		uri += 7;
	else if (uri && !strncmp(uri, "file:", 5))
		uri += 5;
	if (uri && *uri)
		artifacts_report_str_set(&c->file, uri);
	c->line = jline(el);
	if (a->rank > 0 && a->decisive) {
		const json_t *res = json_object_get(a->decisive, "result");
		const char *em = cbl_json_str(res, "error_message");
		if (em && *em) {
			c->message = artifacts_report_message(em, NULL);
		} else {
			const char *st = cbl_json_str(res, "status");
			const char *kw = cbl_json_str(a->decisive, "keyword");
			const char *sn = cbl_json_str(a->decisive, "name");
			char *m = cbl_xasprintf("%s step: %s%s", st ? st : "unknown", kw ? kw : "",
						sn ? sn : "");
			c->message = artifacts_report_message(m, NULL);
			free(m);
		}
		if (jline(a->decisive) > 0)
			c->line = jline(a->decisive);
	}
	artifacts_report_case_push(rep, &cs, display);
}

int artifacts_report_parse_cucumber(artifacts_report *rep, const char *data, size_t len, const char *display,
				    cbl_error **err)
{
	json_error_t je;
	json_t *root = json_loadb(data, len, 0, &je);
	int rc = 0;
	if (!root) {
		rc = artifacts_report_fail(err, display, je.line, "invalid JSON: %s", je.text);
		goto out;
	}
	if (!json_is_array(root)) {
		rc = artifacts_report_fail(err, display, 0,
					   "expected a JSON array of Cucumber features, found %s",
					   json_is_object(root)	  ? "an object"
					   : json_is_string(root) ? "a string"
								  : "a scalar");
		goto out;
	}
	size_t i;
	json_t *feature;
	json_array_foreach(root, i, feature)
	{
		const json_t *els = json_object_get(feature, "elements");
		if (!json_is_array(els))
			continue;
		struct scenario_acc bg = {0};
		size_t j;
		const json_t *el;
		json_array_foreach(els, j, el)
		{
			if (!json_is_object(el))
				continue;
			const char *type = cbl_json_str(el, "type");
			if (type && !strcmp(type, "background")) {
				bg = (struct scenario_acc){0};
				acc_element(&bg, el);
				continue;
			}
			struct scenario_acc a = bg;
			bg = (struct scenario_acc){0};
			acc_element(&a, el);
			add_scenario(rep, display, feature, el, &a);
		}
	}
out:
	json_decref(root);
	return rc;
}
