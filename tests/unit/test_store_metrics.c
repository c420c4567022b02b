/* Unit tests for store/metrics*.c, store/cloudwatch.c, store/alarms.c and
 * store/events.c: a finished build's metrics row, the summary's figures,
 * GetMetricStatistics, an alarm's evaluation and the outbox. */
#include "store/api.h"
#include "store/store.h"
#include "tests/unit/tap.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define CW STORE_TARGET_CLOUDWATCH

static void save(const char *home, const char *project, int n, const char *status, int64_t end_ms, int64_t dur_ms)
{
	char uuid[37], *dir = NULL;
	cbl_uuid4(uuid);
	cbl_error *e = NULL;
	store_build_dir_create(home, project, uuid, &dir, &e);
	double s = (double)(end_ms - dur_ms) / 1e3, en = (double)end_ms / 1e3;
	json_t *r = json_pack(
		"{s:s+++, s:s, s:i, s:f, s:f, s:s, s:s, s:b, s:[{s:s, s:s, s:f, s:f}, {s:s, s:f}],"
		" s:{s:s}, s:{s:{s:f, s:i, s:i, s:i}, s:{s:f, s:s}}}",
		"id", project, ":", uuid, "", "arn", "arn:aws:codebuild:us-east-1:000000000000:build/x", "buildNumber", n,
		"startTime", s, "endTime", en, "buildStatus", status, "currentPhase", "COMPLETED", "buildComplete", 1,
		"phases", "phaseType", "BUILD", "phaseStatus", status, "startTime", s, "endTime", en, "phaseType",
		"COMPLETED", "startTime", en, "environment", "computeType", "BUILD_GENERAL1_SMALL", "codebuildLocal",
		"resourceUsage", "cpuSeconds", 1.5, "memoryPeakBytes", 1 << 20, "readBytes", 10, "writeBytes", 20,
		"cost", "amount", 0.005, "currency", "USD");
	ok(r && store_build_save(dir, r, false, &e) == 0, "saved %s build %d", project, n);
	cbl_error_free(e);
	json_decref(r);
	free(dir);
}

static json_t *call(const char *home, const char *op, json_t *req)
{
	json_t *out = NULL;
	cbl_error *e = NULL;
	int rc = store_api_dispatch(home, op, req, &out, &e);
	if (rc)
		printf("# %s: %s\n", op, e ? e->msg : "?");
	cbl_error_free(e);
	json_decref(req);
	return rc ? NULL : out;
}

int main(void)
{
	char tmpl[] = "/tmp/test_store_metrics.XXXXXX";
	char *home = cbl_xstrdup(mkdtemp(tmpl));
	int64_t now = cbl_now_us() / 1000, hour = now - now % 3600000;
	cbl_error *e0 = NULL;
	ok(store_events_enable(home, &e0) == 0, "events queued from now on");
	save(home, "alpha", 1, "SUCCEEDED", hour + 1000, 2000);
	save(home, "alpha", 2, "FAILED", hour + 2000, 4000);
	save(home, "alpha", 3, "SUCCEEDED", hour + 3000, 6000);
	save(home, "beta", 1, "FAILED", hour + 4000, 8000);

	store_metrics_query q = {.since_ms = hour, .until_ms = hour + 3600000, .period_ms = 60000};
	json_t *m = NULL;
	cbl_error *e = NULL;
	ok(store_metrics_summary(home, &q, &m, &e) == 0, "summary");
	ok(json_integer_value(json_object_get(m, "builds")) == 4 && json_integer_value(json_object_get(m, "failed")) == 2,
	   "counts");
	ok(json_real_value(json_object_get(m, "cost")) > 0.0199 && json_real_value(json_object_get(m, "cost")) < 0.0201,
	   "cost added up");
	json_t *b = json_object_get(json_object_get(m, "durationMs"), "BUILD");
	ok(json_integer_value(json_object_get(b, "p50")) == 4000 && json_integer_value(json_object_get(b, "p95")) == 8000 &&
		   json_integer_value(json_object_get(b, "max")) == 8000,
	   "p50/p95/max nearest rank (2, 4, 6, 8 s)");
	json_decref(m);
	q.project = "alpha";
	ok(store_metrics_summary(home, &q, &m, &e) == 0 && json_integer_value(json_object_get(m, "builds")) == 3,
	   "one project");
	json_decref(m);
	q.period_ms = 0;
	ok(store_metrics_summary(home, &q, &m, &e) == CBL_EINVAL, "a zero period is refused");
	cbl_error_free(e);

	json_t *st = call(home, CW "GetMetricStatistics",
			  json_pack("{s:s, s:s, s:f, s:f, s:i, s:[s, s, s], s:[{s:s, s:s}]}", "Namespace", "AWS/CodeBuild",
				    "MetricName", "FailedBuilds", "StartTime", (double)hour / 1e3, "EndTime",
				    (double)(hour + 3600000) / 1e3, "Period", 3600, "Statistics", "Sum", "Average",
				    "SampleCount", "Dimensions", "Name", "ProjectName", "Value", "alpha"));
	json_t *dp = json_array_get(json_object_get(st, "Datapoints"), 0);
	ok(dp && json_real_value(json_object_get(dp, "Sum")) == 1.0 &&
		   json_real_value(json_object_get(dp, "SampleCount")) == 3.0,
	   "GetMetricStatistics: sum and count");
	json_decref(st);
	st = call(home, CW "GetMetricStatistics",
		  json_pack("{s:s, s:s, s:s, s:s, s:i, s:[s]}", "Namespace", "AWS/CodeBuild", "MetricName", "Builds",
			    "StartTime", "2026-01-01T00:00:00Z", "EndTime", "2025-01-01T00:00:00Z", "Period", 60,
			    "Statistics", "Sum"));
	ok(!st, "StartTime after EndTime is refused");
	st = call(home, CW "GetMetricStatistics",
		  json_pack("{s:s, s:s, s:f, s:f, s:i, s:[s, s, s, s, s], s:[{s:s, s:s}]}", "Namespace", "AWS/CodeBuild",
			    "MetricName", "BuildDuration", "StartTime", (double)hour / 1e3, "EndTime",
			    (double)(hour + 3600000) / 1e3, "Period", 3600, "ExtendedStatistics", "p0", "p33.3", "p34",
			    "p66.7", "p100", "Dimensions", "Name", "ProjectName", "Value", "alpha"));
	json_t *ext = json_object_get(json_array_get(json_object_get(st, "Datapoints"), 0), "ExtendedStatistics");
	ok(json_real_value(json_object_get(ext, "p0")) == 2.0 && json_real_value(json_object_get(ext, "p33.3")) == 2.0 &&
		   json_real_value(json_object_get(ext, "p34")) == 4.0 &&
		   json_real_value(json_object_get(ext, "p66.7")) == 6.0 &&
		   json_real_value(json_object_get(ext, "p100")) == 6.0,
	   "ExtendedStatistics: nearest-rank percentiles of 2, 4, 6 s");
	json_decref(st);
	static const char *const bad_ext[] = {"p101", "p100.0", "p", "p.5", "tm90", "p50.12345678901", "P50"};
	for (size_t i = 0; i < sizeof(bad_ext) / sizeof(bad_ext[0]); i++) {
		st = call(home, CW "GetMetricStatistics",
			  json_pack("{s:s, s:s, s:f, s:f, s:i, s:[s]}", "Namespace", "AWS/CodeBuild", "MetricName",
				    "Builds", "StartTime", (double)hour / 1e3, "EndTime", (double)(hour + 3600000) / 1e3,
				    "Period", 3600, "ExtendedStatistics", bad_ext[i]));
		ok(!st, "ExtendedStatistics %s is refused", bad_ext[i]);
		json_decref(st);
	}

	json_t *put = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:[{s:s, s:s}]}", "AlarmName",
				"a", "Namespace", "AWS/CodeBuild", "MetricName", "FailedBuilds", "Statistic", "Sum",
				"Period", "3600", "EvaluationPeriods", "1", "Threshold", "2",
				"ComparisonOperator", "GreaterThanOrEqualToThreshold", "TreatMissingData", "notBreaching",
				"AlarmActions", "arn:aws:sns:us-east-1:000000000000:t", "Dimensions", "Name",
				"ProjectName", "Value", "alpha");
	json_decref(call(home, CW "PutMetricAlarm", put));
	ok(store_alarms_evaluate(home, hour + 10000, &e) == 0, "evaluated");
	json_t *d = call(home, CW "DescribeAlarms", json_object());
	json_t *a = json_array_get(json_object_get(d, "MetricAlarms"), 0);
	ok(a && !strcmp(json_string_value(json_object_get(a, "StateValue")), "OK"), "1 failure < 2: OK");
	json_decref(d);
	save(home, "alpha", 4, "FAILED", hour + 5000, 1000);
	ok(store_alarms_evaluate(home, hour + 10000, &e) == 0, "evaluated again");
	d = call(home, CW "DescribeAlarms", json_pack("{s:s}", "StateValue", "ALARM"));
	ok(json_array_size(json_object_get(d, "MetricAlarms")) == 1, "2 failures >= 2: ALARM");
	json_decref(d);

	store_outbox_item *items = NULL;
	size_t n = 0;
	ok(store_outbox_heads(home, now + 1000, &items, &n, &e) == 0 && n == 2, "two queues: events and the action");
	bool found = false;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(items[i].dest, "arn:aws:sns:us-east-1:000000000000:t")) {
			found = strstr(items[i].body, "\\\"NewStateValue\\\":\\\"ALARM\\\"") != NULL;
			ok(store_outbox_done(home, items[i].seq, 0, &e) == 0, "delivered");
		} else {
			ok(strstr(items[i].body, "\"detail-type\":\"CodeBuild Build State Change\"") != NULL,
			   "the first event: a build's start");
			ok(store_outbox_done(home, items[i].seq, now + 60000, &e) == 0, "to be retried");
		}
	ok(found, "the ALARM notification");
	store_outbox_items_free(items, n);
	ok(store_outbox_heads(home, now + 1000, &items, &n, &e) == 0 && n == 0, "nothing due: retry later, action gone");
	store_outbox_items_free(items, n);
	ok(store_outbox_heads(home, now + 61000, &items, &n, &e) == 0 && n == 1 && items[0].attempts == 1,
	   "due again, one attempt counted");
	store_outbox_items_free(items, n);
	json_decref(call(home, CW "DeleteAlarms", json_pack("{s:[s]}", "AlarmNames", "a")));
	ok(!call(home, CW "DeleteAlarms", json_pack("{s:[s]}", "AlarmNames", "a")), "deleting a missing alarm fails");

	/* three 3 ms builds: 0.003 * 3 / 3 rounds to 0.0030000000000000005 in
	 * doubles; the average stays within its minimum and maximum */
	for (int i = 1; i <= 3; i++)
		save(home, "gamma", i, "SUCCEEDED", hour + 6000 + i, 3);
	st = call(home, CW "GetMetricStatistics",
		  json_pack("{s:s, s:s, s:f, s:f, s:i, s:[s, s, s], s:[{s:s, s:s}]}", "Namespace", "AWS/CodeBuild",
			    "MetricName", "BuildDuration", "StartTime", (double)hour / 1e3, "EndTime",
			    (double)(hour + 3600000) / 1e3, "Period", 3600, "Statistics", "Average", "Minimum", "Maximum",
			    "Dimensions", "Name", "ProjectName", "Value", "gamma"));
	dp = json_array_get(json_object_get(st, "Datapoints"), 0);
	double avg = json_real_value(json_object_get(dp, "Average")), mx = json_real_value(json_object_get(dp, "Maximum")),
	       mn = json_real_value(json_object_get(dp, "Minimum"));
	ok(dp && mn > 0 && mn <= avg && avg <= mx, "the average within its minimum and maximum (%.19g <= %.19g <= %.19g)",
	   mn, avg, mx);
	json_decref(st);
	cbl_rm_rf(home, NULL);
	free(home);
	return tap_done();
}
