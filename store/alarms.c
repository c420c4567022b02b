/* store/alarms.c - CloudWatch metric alarms on AWS/CodeBuild: PutMetricAlarm,
 * DescribeAlarms, DeleteAlarms, SetAlarmState, and their evaluation
 * (store_alarms_evaluate, called by serve every second): the last
 * EvaluationPeriods periods up to now (the current one included, so a
 * failing build counts as soon as it is stored), DatapointsToAlarm of them
 * breaching -> ALARM, TreatMissingData for periods without a sample.  A
 * state change queues an SNS-shaped notification for each action of the new
 * state in the outbox (store/events.c). */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/json.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static const char *const comparisons[] = {"GreaterThanOrEqualToThreshold", "GreaterThanThreshold",
					  "LessThanThreshold", "LessThanOrEqualToThreshold"};
static const char *const missing_modes[] = {"missing", "notBreaching", "breaching", "ignore"};
static const char *const states[] = {"OK", "ALARM", "INSUFFICIENT_DATA"};

static int one_of(const char *v, const char *const *set, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		if (!strcmp(v, set[i]))
			return (int)i;
	return -1;
}

/* A number parameter: JSON number, or the query protocol's string. */
static bool num_param(const json_t *req, const char *key, double *out)
{
	const json_t *v = json_object_get(req, key);
	char *end = NULL;
	if (json_is_number(v))
		*out = json_number_value(v);
	else if (json_is_string(v) && *json_string_value(v))
		*out = strtod(json_string_value(v), &end);
	else
		return false;
	return !end || !*end;
}

static json_t *str_list(const json_t *req, const char *key)
{
	json_t *a = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(req, key), i, v)
	if (json_is_string(v))
		json_array_append(a, v);
	return a;
}

static bool bool_param(const json_t *req, const char *key, bool dflt)
{
	const json_t *v = json_object_get(req, key);
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_string(v))
		return !strcmp(json_string_value(v), "true");
	return dflt;
}

/* The alarm's configuration, checked and typed, from a PutMetricAlarm. */
static int alarm_config(const json_t *req, json_t **out, cbl_error **err)
{
	const char *name = cbl_json_str(req, "AlarmName"), *metric = cbl_json_str(req, "MetricName");
	const char *ns = cbl_json_str(req, "Namespace"), *stat = cbl_json_str(req, "Statistic");
	const char *cmp = cbl_json_str(req, "ComparisonOperator");
	const char *miss = cbl_json_str(req, "TreatMissingData");
	double period = 0, evals = 0, dta = 0, threshold = 0;
	if (!name || !*name || strlen(name) > 255)
		return cbl_error_set(err, CBL_EINVAL, "The parameter AlarmName is required (1 to 255 characters).");
	if (!metric || !ns || strcmp(ns, "AWS/CodeBuild"))
		return cbl_error_set(err, CBL_EINVAL, "codebuild-local alarms watch the AWS/CodeBuild namespace: "
						      "MetricName and Namespace AWS/CodeBuild are required");
	if (!store_cw_metric_find(metric))
		return cbl_error_set(err, CBL_EINVAL, "AWS/CodeBuild has no metric %s", metric);
	if (store_cw_stat_index(stat) < 0)
		return cbl_error_set(err, CBL_EINVAL, "The parameter Statistic must be one of SampleCount, Average, Sum, "
						      "Minimum, Maximum (ExtendedStatistic and Metrics are not served).");
	if (!num_param(req, "Period", &period) || period < 10 || (period >= 60 && period != 60 * (double)(long long)(period / 60)) ||
	    (period < 60 && period != 10 && period != 30))
		return cbl_error_set(err, CBL_EINVAL, "The parameter Period must be 10, 30 or a multiple of 60.");
	if (!num_param(req, "EvaluationPeriods", &evals) || evals < 1 || evals * period > 86400)
		return cbl_error_set(err, CBL_EINVAL, "The parameter EvaluationPeriods must be >= 1 and cover at most a day.");
	if (!num_param(req, "DatapointsToAlarm", &dta))
		dta = evals;
	if (dta < 1 || dta > evals)
		return cbl_error_set(err, CBL_EINVAL, "DatapointsToAlarm must be between 1 and EvaluationPeriods.");
	if (!num_param(req, "Threshold", &threshold))
		return cbl_error_set(err, CBL_EINVAL, "The parameter Threshold is required.");
	if (one_of(cmp, comparisons, ARRAY_SIZE(comparisons)) < 0)
		return cbl_error_set(err, CBL_EINVAL, "The parameter ComparisonOperator has an invalid value: %s",
				     cmp ? cmp : "(none)");
	if (miss && one_of(miss, missing_modes, ARRAY_SIZE(missing_modes)) < 0)
		return cbl_error_set(err, CBL_EINVAL, "The parameter TreatMissingData has an invalid value: %s", miss);
	json_t *c = json_object();
	json_object_set_new(c, "AlarmName", json_string(name));
	json_object_set_new(c, "AlarmArn", json_sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", STORE_DEFAULT_REGION,
							  STORE_DEFAULT_ACCOUNT, name));
	if (cbl_json_str(req, "AlarmDescription"))
		json_object_set(c, "AlarmDescription", json_object_get(req, "AlarmDescription"));
	json_object_set_new(c, "AlarmConfigurationUpdatedTimestamp", store_json_time(cbl_now_us() / 1000));
	json_object_set_new(c, "ActionsEnabled", json_boolean(bool_param(req, "ActionsEnabled", true)));
	json_object_set_new(c, "OKActions", str_list(req, "OKActions"));
	json_object_set_new(c, "AlarmActions", str_list(req, "AlarmActions"));
	json_object_set_new(c, "InsufficientDataActions", str_list(req, "InsufficientDataActions"));
	json_object_set_new(c, "MetricName", json_string(metric));
	json_object_set_new(c, "Namespace", json_string(ns));
	json_object_set_new(c, "Statistic", json_string(stat));
	json_t *dims = json_object_get(req, "Dimensions");
	json_object_set_new(c, "Dimensions", json_is_array(dims) ? json_deep_copy(dims) : json_array());
	json_object_set_new(c, "Period", json_integer((json_int_t)period));
	json_object_set_new(c, "EvaluationPeriods", json_integer((json_int_t)evals));
	json_object_set_new(c, "DatapointsToAlarm", json_integer((json_int_t)dta));
	json_object_set_new(c, "Threshold", json_real(threshold));
	json_object_set_new(c, "ComparisonOperator", json_string(cmp));
	json_object_set_new(c, "TreatMissingData", json_string(miss ? miss : "missing"));
	*out = c;
	return 0;
}

int store_op_put_metric_alarm(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	json_t *c = NULL;
	int rc = alarm_config(req, &c, err);
	if (rc)
		return rc;
	char *text = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	sqlite3_stmt *st = NULL;
	/* a new alarm starts INSUFFICIENT_DATA; an updated one keeps its state */
	rc = store_prepare(h->db,
			   "INSERT INTO alarms(name, state, reason, state_ms, record) VALUES(?1, 'INSUFFICIENT_DATA',"
			   " 'Unchecked: Initial alarm creation', ?2, ?3)"
			   " ON CONFLICT(name) DO UPDATE SET record = excluded.record",
			   &st, err);
	if (!rc) {
		sqlite3_bind_text(st, 1, cbl_json_str(c, "AlarmName"), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, cbl_now_us() / 1000);
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = store_sql_error(h->db, err, "cannot save the alarm");
	}
	sqlite3_finalize(st);
	free(text);
	json_decref(c);
	*out = json_object();
	return rc;
}

/* The alarm of row st (name, state, reason, state_ms, record) as DescribeAlarms shows it. */
static json_t *alarm_json(sqlite3_stmt *st)
{
	json_t *a = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
	if (!a)
		a = json_object();
	json_object_set_new(a, "StateValue", json_string((const char *)sqlite3_column_text(st, 1)));
	json_object_set_new(a, "StateReason", json_string((const char *)sqlite3_column_text(st, 2)));
	json_object_set_new(a, "StateUpdatedTimestamp", store_json_time(sqlite3_column_int64(st, 3)));
	json_object_set_new(a, "StateTransitionedTimestamp", store_json_time(sqlite3_column_int64(st, 3)));
	return a;
}

int store_op_describe_alarms(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const json_t *names = json_object_get(req, "AlarmNames");
	const char *prefix = cbl_json_str(req, "AlarmNamePrefix"), *state = cbl_json_str(req, "StateValue");
	if (state && one_of(state, states, ARRAY_SIZE(states)) < 0)
		return cbl_error_set(err, CBL_EINVAL, "The parameter StateValue has an invalid value: %s", state);
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(h->db, "SELECT name, state, reason, state_ms, record FROM alarms ORDER BY name", &st, err);
	if (rc)
		return rc;
	json_t *list = json_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		bool in = !json_array_size(names);
		size_t i;
		json_t *n;
		json_array_foreach(names, i, n)
		if (json_is_string(n) && !strcmp(json_string_value(n), name))
			in = true;
		if (!in || (prefix && strncmp(name, prefix, strlen(prefix))) ||
		    (state && strcmp(state, (const char *)sqlite3_column_text(st, 1))))
			continue;
		json_array_append_new(list, alarm_json(st));
	}
	sqlite3_finalize(st);
	*out = json_object();
	json_object_set_new(*out, "MetricAlarms", list);
	json_object_set_new(*out, "CompositeAlarms", json_array());
	return 0;
}

int store_op_delete_alarms(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const json_t *names = json_object_get(req, "AlarmNames");
	size_t i;
	json_t *n;
	sqlite3_stmt *st = NULL;
	int rc = store_begin(h->db, err);
	if (!rc)
		rc = store_prepare(h->db, "DELETE FROM alarms WHERE name = ?1", &st, err);
	json_array_foreach(names, i, n)
	{
		if (rc)
			break;
		sqlite3_bind_text(st, 1, json_string_value(n) ? json_string_value(n) : "", -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = store_sql_error(h->db, err, "cannot delete the alarm");
		else if (sqlite3_changes(h->db) == 0)
			rc = cbl_error_set(err, CBL_ENOENT, "Alarm %s does not exist", json_string_value(n));
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (!rc)
		rc = store_commit(h->db, err);
	if (rc)
		store_rollback(h->db);
	*out = json_object();
	return rc;
}

/* Moves the alarm to state (when it is not there yet) and queues its
 * actions' notifications; in the caller's transaction. */
static int transition(store_db *h, const json_t *alarm, const char *old, const char *state, const char *reason,
		      int64_t now_ms, cbl_error **err)
{
	if (!strcmp(old, state))
		return 0;
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(h->db, "UPDATE alarms SET state = ?2, reason = ?3, state_ms = ?4 WHERE name = ?1", &st, err);
	if (!rc) {
		sqlite3_bind_text(st, 1, cbl_json_str(alarm, "AlarmName"), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now_ms);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = store_sql_error(h->db, err, "cannot change the alarm's state");
	}
	sqlite3_finalize(st);
	if (rc || !json_is_true(json_object_get(alarm, "ActionsEnabled")))
		return rc;
	const char *key = !strcmp(state, "ALARM") ? "AlarmActions" : !strcmp(state, "OK") ? "OKActions"
												 : "InsufficientDataActions";
	size_t i;
	json_t *arn;
	json_array_foreach(json_object_get(alarm, key), i, arn)
	{
		if (rc)
			break;
		char ts[32];
		cbl_format_iso_time(ts, now_ms * 1000);
		json_t *msg = json_object();
		json_object_set(msg, "AlarmName", json_object_get(alarm, "AlarmName"));
		json_object_set_new(msg, "AlarmDescription", json_string(cbl_json_str_or_empty(alarm, "AlarmDescription")));
		json_object_set_new(msg, "AWSAccountId", json_string(STORE_DEFAULT_ACCOUNT));
		json_object_set_new(msg, "NewStateValue", json_string(state));
		json_object_set_new(msg, "NewStateReason", json_string(reason));
		json_object_set_new(msg, "StateChangeTime", json_string(ts));
		json_object_set_new(msg, "Region", json_string("US East (N. Virginia)"));
		json_object_set(msg, "AlarmArn", json_object_get(alarm, "AlarmArn"));
		json_object_set_new(msg, "OldStateValue", json_string(old));
		json_t *trig = json_object();
		static const char *const tk[] = {"MetricName", "Namespace", "Statistic", "Dimensions", "Period",
						 "EvaluationPeriods", "DatapointsToAlarm", "ComparisonOperator",
						 "Threshold", "TreatMissingData"};
		for (size_t k = 0; k < ARRAY_SIZE(tk); k++)
			json_object_set(trig, tk[k], json_object_get(alarm, tk[k]));
		json_object_set_new(trig, "StatisticType", json_string("Statistic"));
		json_object_set_new(msg, "Trigger", trig);
		char *text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(msg);
		char id[37];
		cbl_uuid4(id);
		json_t *note = json_object();
		json_object_set_new(note, "Type", json_string("Notification"));
		json_object_set_new(note, "MessageId", json_string(id));
		json_object_set(note, "TopicArn", arn);
		json_object_set_new(note, "Subject", json_sprintf("%s: \"%s\" in US East (N. Virginia)", state,
								 cbl_json_str_or_empty(alarm, "AlarmName")));
		json_object_set_new(note, "Message", json_string(text ? text : "{}"));
		json_object_set_new(note, "Timestamp", json_string(ts));
		free(text);
		rc = store_db_outbox_put(h, json_string_value(arn), note, err);
		json_decref(note);
	}
	return rc;
}

int store_op_set_alarm_state(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const char *name = cbl_json_str(req, "AlarmName"), *state = cbl_json_str(req, "StateValue");
	const char *reason = cbl_json_str(req, "StateReason");
	if (!name || one_of(state, states, ARRAY_SIZE(states)) < 0 || !reason)
		return cbl_error_set(err, CBL_EINVAL, "AlarmName, StateValue (OK, ALARM, INSUFFICIENT_DATA) and "
						      "StateReason are required");
	sqlite3_stmt *st = NULL;
	int rc = store_begin(h->db, err);
	if (!rc)
		rc = store_prepare(h->db, "SELECT name, state, reason, state_ms, record FROM alarms WHERE name = ?1", &st, err);
	if (!rc) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW) {
			rc = cbl_error_set(err, CBL_ENOENT, "Alarm %s does not exist", name);
		} else {
			json_t *a = alarm_json(st);
			char *old = cbl_xstrdup((const char *)sqlite3_column_text(st, 1));
			sqlite3_finalize(st);
			st = NULL;
			rc = transition(h, a, old, state, reason, cbl_now_us() / 1000, err);
			free(old);
			json_decref(a);
		}
	}
	sqlite3_finalize(st);
	if (!rc)
		rc = store_commit(h->db, err);
	if (rc)
		store_rollback(h->db);
	*out = json_object();
	return rc;
}

static bool breaches(const char *cmp, double v, double t)
{
	switch (one_of(cmp, comparisons, ARRAY_SIZE(comparisons))) {
	case 0: return v >= t;
	case 1: return v > t;
	case 2: return v < t;
	default: return v <= t;
	}
}

/* Evaluates alarm a (now in state old) at now_ms. */
static int evaluate_one(store_db *h, const json_t *a, const char *old, int64_t now_ms, cbl_error **err)
{
	const struct store_cw_metric *m = store_cw_metric_find(cbl_json_str(a, "MetricName"));
	int64_t period = json_integer_value(json_object_get(a, "Period")) * 1000;
	int64_t n = json_integer_value(json_object_get(a, "EvaluationPeriods"));
	int64_t dta = json_integer_value(json_object_get(a, "DatapointsToAlarm"));
	double threshold = json_number_value(json_object_get(a, "Threshold"));
	const char *cmp = cbl_json_str(a, "ComparisonOperator"), *miss = cbl_json_str_or_empty(a, "TreatMissingData");
	int which = store_cw_stat_index(cbl_json_str(a, "Statistic"));
	if (!m || period <= 0 || n < 1 || which < 0)
		return 0; /* not an alarm PutMetricAlarm would have stored */
	struct store_cw_filter f;
	struct store_cw_bucket *b = NULL;
	size_t nb = 0;
	int64_t cur = now_ms - now_ms % period, start = cur - (n - 1) * period;
	int rc = store_cw_dims_filter(json_object_get(a, "Dimensions"), m, &f, err);
	if (!rc)
		rc = store_cw_series(h, m, &f, start, cur + period, period, &b, &nb, err);
	if (rc)
		return rc;
	int64_t present = 0, breaching = 0;
	for (size_t k = 0; k < nb && k < (size_t)n; k++) {
		if (b[k].n) {
			present++;
			breaching += breaches(cmp, store_cw_stat_value(&b[k], which), threshold);
		} else if (!strcmp(miss, "notBreaching")) {
			present++;
		} else if (!strcmp(miss, "breaching")) {
			present++;
			breaching++;
		}
	}
	free(b);
	char reason[256];
	const char *state;
	if (breaching >= dta) {
		state = "ALARM";
		snprintf(reason, sizeof(reason),
			 "Threshold Crossed: %lld out of the last %lld datapoints breached the threshold (%g) (minimum "
			 "%lld datapoints for ALARM).",
			 (long long)breaching, (long long)n, threshold, (long long)dta);
	} else if (!present) {
		if (!strcmp(miss, "ignore"))
			return 0; /* the state stays */
		state = "INSUFFICIENT_DATA";
		snprintf(reason, sizeof(reason), "Insufficient Data: %lld datapoints were unknown.", (long long)n);
	} else {
		state = "OK";
		snprintf(reason, sizeof(reason),
			 "Threshold Crossed: %lld out of the last %lld datapoints breached the threshold (%g) (minimum "
			 "%lld datapoints for ALARM).",
			 (long long)breaching, (long long)n, threshold, (long long)dta);
	}
	return transition(h, a, old, state, reason, now_ms, err);
}

int store_alarms_evaluate(const char *home, int64_t now_ms, cbl_error **err)
{
	store_db *h = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	sqlite3_stmt *st = NULL;
	rc = store_begin(h->db, err);
	if (!rc)
		rc = store_prepare(h->db, "SELECT name, state, reason, state_ms, record FROM alarms ORDER BY name", &st, err);
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		json_t *a = alarm_json(st);
		rc = evaluate_one(h, a, (const char *)sqlite3_column_text(st, 1), now_ms, err);
		json_decref(a);
	}
	sqlite3_finalize(st);
	if (!rc)
		rc = store_commit(h->db, err);
	if (rc)
		store_rollback(h->db);
	store_db_release(h);
	return rc;
}
