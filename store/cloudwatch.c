/* store/cloudwatch.c - CloudWatch's GetMetricStatistics, GetMetricData and
 * ListMetrics over build_metrics, namespace AWS/CodeBuild, in the JSON
 * protocol's shapes (server/query.c translates the query protocol to and
 * from them).  Every finished build is one sample of each metric at its end
 * time: Builds 1, SucceededBuilds and FailedBuilds 1 or 0, the durations
 * in seconds (a phase's only when it ran), CPUUtilized (the vCPUs it used
 * on average), MemoryUtilized (its peak in megabytes), their percentages of
 * its compute type's, StorageReadBytes and StorageWriteBytes.  Dimensions: none (every project), ProjectName,
 * BuildId, or ProjectName with BuildNumber. */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/banned.h"

#define NAMESPACE "AWS/CodeBuild"
/* CloudWatch's limit on the datapoints of one answer */
#define MAX_DATAPOINTS 1440

/* The compute types' vCPUs and memory (runner/compute.c's figures; NULL
 * for a type without: no percentage) */
#define VCPUS                                                                                          \
	"(CASE compute_type WHEN 'BUILD_GENERAL1_SMALL' THEN 2 WHEN 'BUILD_GENERAL1_MEDIUM' THEN 4"    \
	" WHEN 'BUILD_GENERAL1_LARGE' THEN 8 WHEN 'BUILD_GENERAL1_XLARGE' THEN 36"                     \
	" WHEN 'BUILD_GENERAL1_2XLARGE' THEN 72 END)"
#define MEMORY_GB                                                                                      \
	"(CASE compute_type WHEN 'BUILD_GENERAL1_SMALL' THEN 3 WHEN 'BUILD_GENERAL1_MEDIUM' THEN 7"    \
	" WHEN 'BUILD_GENERAL1_LARGE' THEN 15 WHEN 'BUILD_GENERAL1_XLARGE' THEN 70"                    \
	" WHEN 'BUILD_GENERAL1_2XLARGE' THEN 145 WHEN 'BUILD_LAMBDA_1GB' THEN 1"                       \
	" WHEN 'BUILD_LAMBDA_2GB' THEN 2 WHEN 'BUILD_LAMBDA_4GB' THEN 4 WHEN 'BUILD_LAMBDA_8GB' THEN 8" \
	" WHEN 'BUILD_LAMBDA_10GB' THEN 10 END)"

static const struct store_cw_metric metrics[] = {
	{"Builds", "1", "Count", false},
	{"SucceededBuilds", "(status = 'SUCCEEDED')", "Count", false},
	{"FailedBuilds", "(status = 'FAILED')", "Count", false},
	{"Duration", "duration_ms / 1000.0", "Seconds", false},
	{"QueuedDuration", "queued_ms / 1000.0", "Seconds", false},
	{"ProvisioningDuration", "provisioning_ms / 1000.0", "Seconds", false},
	{"DownloadSourceDuration", "download_source_ms / 1000.0", "Seconds", false},
	{"InstallDuration", "install_ms / 1000.0", "Seconds", false},
	{"PreBuildDuration", "pre_build_ms / 1000.0", "Seconds", false},
	{"BuildDuration", "build_ms / 1000.0", "Seconds", false},
	{"PostBuildDuration", "post_build_ms / 1000.0", "Seconds", false},
	{"UploadArtifactsDuration", "upload_artifacts_ms / 1000.0", "Seconds", false},
	{"FinalizingDuration", "finalizing_ms / 1000.0", "Seconds", false},
	{"CPUUtilized", "cpu_us / (1000.0 * nullif(duration_ms, 0))", "None", true},
	{"CPUUtilizedPercent", "100.0 * cpu_us / (1000.0 * nullif(duration_ms, 0)) / " VCPUS, "Percent", true},
	{"MemoryUtilized", "mem_peak / 1048576.0", "Megabytes", true},
	{"MemoryUtilizedPercent", "100.0 * mem_peak / (1073741824.0 * " MEMORY_GB ")", "Percent", true},
	{"StorageReadBytes", "read_bytes", "Bytes", true},
	{"StorageWriteBytes", "write_bytes", "Bytes", true},
};

const struct store_cw_metric *store_cw_metric_find(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(metrics); i++)
		if (!strcmp(metrics[i].name, name))
			return &metrics[i];
	return NULL;
}

/* A timestamp of a request: epoch seconds (JSON) or ISO 8601 (query). */
static int req_time_ms(const json_t *req, const char *key, int64_t *out, cbl_error **err)
{
	const json_t *t = json_object_get(req, key);
	if (json_is_number(t)) {
		*out = store_json_time_ms(t);
		return 0;
	}
	const char *s = json_string_value(t);
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!end)
		return cbl_error_set(err, CBL_EINVAL, "The parameter %s is required and must be a timestamp", key);
	double frac = 0;
	if (*end == '.')
		frac = strtod(end, NULL);
	*out = (int64_t)timegm(&tm) * 1000 + (int64_t)(frac * 1000);
	return 0;
}

static int req_int(const json_t *req, const char *key, int64_t *out)
{
	const json_t *v = json_object_get(req, key);
	if (json_is_integer(v))
		*out = json_integer_value(v);
	else if (json_is_string(v) && *json_string_value(v))
		*out = strtoll(json_string_value(v), NULL, 10);
	else
		return -1;
	return 0;
}


int store_cw_dims_filter(const json_t *dims, const struct store_cw_metric *m, struct store_cw_filter *f, cbl_error **err)
{
	size_t i;
	json_t *d;
	memset(f, 0, sizeof(*f));
	json_array_foreach(dims, i, d)
	{
		const char *n = cbl_json_str(d, "Name"), *v = cbl_json_str(d, "Value");
		if (!n || !v)
			return cbl_error_set(err, CBL_EINVAL, "A dimension needs a Name and a Value");
		if (!strcmp(n, "ProjectName"))
			f->project = v;
		else if (!strcmp(n, "BuildId") && m->resource)
			f->build_id = v;
		else if (!strcmp(n, "BuildNumber") && m->resource) {
			f->number = strtoll(v, NULL, 10);
			f->has_number = true;
		} else
			/* CloudWatch answers no datapoints for a dimension set it
			 * has no metric for; so does an impossible filter here */
			f->build_id = "";
	}
	return 0;
}


/* The samples of m in [start, end) per period, aggregated here from one
 * ranged scan (GROUP BY would sort them once more): (*out)[k] is the
 * period that starts at start - start % period_ms + k * period_ms. */
int store_cw_series(store_db *h, const struct store_cw_metric *m, const struct store_cw_filter *f, int64_t start, int64_t end,
		  int64_t period_ms, struct store_cw_bucket **out, size_t *nb, cbl_error **err)
{
	int64_t base = start - start % period_ms;
	int64_t n = (end - base + period_ms - 1) / period_ms;
	if (n > 100800)
		return cbl_error_set(err, CBL_EINVAL, "Too many datapoints requested (%lld): increase the "
						      "Period or shorten the time range",
				     (long long)n);
	cbl_buf sql = CBL_BUF_INIT;
	cbl_buf_printf(&sql, "SELECT end_ms, %s FROM build_metrics WHERE end_ms >= ?1 AND end_ms < ?2", m->expr);
	if (f->project)
		cbl_buf_puts(&sql, " AND project = ?4");
	if (f->build_id)
		cbl_buf_puts(&sql, " AND id = ?5");
	if (f->has_number)
		cbl_buf_puts(&sql, " AND number = ?6");
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(h->db, cbl_buf_cstr(&sql), &st, err);
	cbl_buf_release(&sql);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, start);
	sqlite3_bind_int64(st, 2, end);
	if (f->project)
		sqlite3_bind_text(st, 4, f->project, -1, SQLITE_STATIC);
	if (f->build_id)
		sqlite3_bind_text(st, 5, f->build_id, -1, SQLITE_STATIC);
	if (f->has_number)
		sqlite3_bind_int64(st, 6, f->number);
	struct store_cw_bucket *b = cbl_xcalloc((size_t)n + 1, sizeof(*b));
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 1) == SQLITE_NULL)
			continue;
		int64_t k = (sqlite3_column_int64(st, 0) - base) / period_ms;
		double v = sqlite3_column_double(st, 1);
		if (k < 0 || k >= n)
			continue;
		struct store_cw_bucket *x = &b[k];
		if (!x->n || v < x->min)
			x->min = v;
		if (!x->n || v > x->max)
			x->max = v;
		x->sum += v;
		x->n++;
		if (f->keep_values) {
			if ((size_t)x->n > x->cap) {
				x->cap = x->cap ? x->cap * 2 : 8;
				x->v = cbl_xrealloc(x->v, x->cap * sizeof(*x->v));
			}
			x->v[x->n - 1] = v;
		}
	}
	sqlite3_finalize(st);
	*out = b;
	*nb = (size_t)n;
	return 0;
}

static const char *const stat_names[] = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"};

int store_cw_stat_index(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(stat_names); i++)
		if (!strcmp(stat_names[i], s))
			return (int)i;
	return -1;
}

double store_cw_stat_value(const struct store_cw_bucket *b, int which)
{
	switch (which) {
	case 0: return (double)b->n;
	case 1: {
		/* a sum of doubles over a count can round past the extremes
		 * (3 x 0.003 / 3 = 0.0030000000000000005): an average never
		 * lies outside its own minimum and maximum */
		double avg = b->sum / (double)b->n;
		return avg > b->max ? b->max : avg < b->min ? b->min : avg;
	}
	case 2: return b->sum;
	case 3: return b->min;
	default: return b->max;
	}
}

int store_cw_percentile_parse(const char *s, double *p)
{
	/* CloudWatch's p(\d{1,2}(\.\d{0,10})?|100) */
	if (!s || s[0] != 'p' || !s[1])
		return -1;
	size_t digits = strspn(s + 1, "0123456789");
	const char *dot = s + 1 + digits;
	if (!digits || digits > 3 || (*dot && (*dot != '.' || strspn(dot + 1, "0123456789") != strlen(dot + 1) ||
					      strlen(dot + 1) > 10)))
		return -1;
	*p = strtod(s + 1, NULL);
	return *p >= 0 && *p <= 100 && (digits < 3 || !*dot) ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double store_cw_percentile(struct store_cw_bucket *b, double p)
{
	if (!b->sorted && b->n > 1)
		qsort(b->v, (size_t)b->n, sizeof(*b->v), cmp_double);
	b->sorted = true;
	/* nearest rank: the smallest sample with at least p% of them at or below it */
	double rank = p / 100.0 * (double)b->n;
	int64_t k = (int64_t)rank;
	if ((double)k < rank)
		k++;
	return b->v[k < 1 ? 0 : k > b->n ? b->n - 1 : k - 1];
}

void store_cw_buckets_free(struct store_cw_bucket *b, size_t nb)
{
	for (size_t k = 0; b && k < nb; k++)
		free(b[k].v);
	free(b);
}

/* StartTime, EndTime, Period of a request, checked as CloudWatch does. */
static int window(const json_t *req, int64_t *start, int64_t *end, int64_t *period_s, bool need_period,
		  cbl_error **err)
{
	int rc = req_time_ms(req, "StartTime", start, err);
	if (!rc)
		rc = req_time_ms(req, "EndTime", end, err);
	if (rc)
		return rc;
	if (*end <= *start)
		return cbl_error_set(err, CBL_EINVAL, "The parameter StartTime must be less than the parameter EndTime.");
	if (!need_period)
		return 0;
	if (req_int(req, "Period", period_s) < 0 || *period_s < 1 || (*period_s >= 60 && *period_s % 60))
		return cbl_error_set(err, CBL_EINVAL,
				     "The parameter Period must be 1, 5, 10, 30 or a multiple of 60 seconds.");
	if ((*end - *start) / (*period_s * 1000) > MAX_DATAPOINTS)
		return cbl_error_set(err, CBL_EINVAL,
				     "You have requested up to %lld datapoints, which exceeds the limit of %d. "
				     "You may reduce the datapoints requested by increasing Period, or "
				     "decreasing the time range.",
				     (long long)((*end - *start) / (*period_s * 1000)), MAX_DATAPOINTS);
	return 0;
}

static int check_namespace(const json_t *req, const char *name, const struct store_cw_metric **m, cbl_error **err)
{
	const char *ns = cbl_json_str(req, "Namespace");
	if (!ns || strcmp(ns, NAMESPACE))
		return cbl_error_set(err, CBL_EINVAL,
				     "codebuild-local serves only the %s namespace (asked for %s)", NAMESPACE,
				     ns ? ns : "none");
	*m = store_cw_metric_find(name);
	return 0;
}

/* Statistics and ExtendedStatistics: want[] indexes stat_names, pct[] the
 * percentiles of ext (its strings). */
struct wanted {
	int want[5], nwant;
	double pct[10];
	const char *ext[10];
	int npct;
};

static int wanted_stats(const json_t *req, struct wanted *w, cbl_error **err)
{
	size_t i;
	json_t *s;
	memset(w, 0, sizeof(*w));
	json_array_foreach(json_object_get(req, "Statistics"), i, s)
	{
		int k = store_cw_stat_index(json_string_value(s));
		if (k < 0 || w->nwant == (int)ARRAY_SIZE(w->want))
			return cbl_error_set(err, CBL_EINVAL, "The parameter Statistics has an invalid value: %s",
					     json_string_value(s) ? json_string_value(s) : "(not a string)");
		w->want[w->nwant++] = k;
	}
	json_array_foreach(json_object_get(req, "ExtendedStatistics"), i, s)
	{
		const char *e = json_string_value(s);
		if (w->npct == (int)ARRAY_SIZE(w->pct))
			return cbl_error_set(err, CBL_EINVAL, "The parameter ExtendedStatistics has more than 10 members.");
		if (store_cw_percentile_parse(e, &w->pct[w->npct]))
			return cbl_error_set(err, CBL_EINVAL,
					     "The parameter ExtendedStatistics has an invalid value: %s (codebuild-local "
					     "computes percentiles, p0 to p100; not trimmed or winsorized means)",
					     e ? e : "(not a string)");
		w->ext[w->npct++] = e;
	}
	if (w->nwant && w->npct)
		return cbl_error_set(err, CBL_EINVAL, "The parameters Statistics and ExtendedStatistics are "
						      "mutually exclusive: give one of them.");
	if (!w->nwant && !w->npct)
		return cbl_error_set(err, CBL_EINVAL, "Either Statistics or ExtendedStatistics must be given.");
	return 0;
}

static json_t *datapoint(struct store_cw_bucket *b, int64_t t, const struct wanted *w, const char *unit)
{
	json_t *p = json_object();
	json_object_set_new(p, "Timestamp", store_json_time(t));
	for (int i = 0; i < w->nwant; i++)
		json_object_set_new(p, stat_names[w->want[i]], json_real(store_cw_stat_value(b, w->want[i])));
	if (w->npct) {
		json_t *ext = json_object();
		for (int i = 0; i < w->npct; i++)
			json_object_set_new(ext, w->ext[i], json_real(store_cw_percentile(b, w->pct[i])));
		json_object_set_new(p, "ExtendedStatistics", ext);
	}
	json_object_set_new(p, "Unit", json_string(unit));
	return p;
}

int store_op_get_metric_statistics(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const char *name = cbl_json_str(req, "MetricName");
	const struct store_cw_metric *m = NULL;
	int64_t start = 0, end = 0, period = 0;
	struct wanted w;
	int rc = check_namespace(req, name, &m, err);
	if (!rc)
		rc = window(req, &start, &end, &period, true, err);
	if (!rc)
		rc = wanted_stats(req, &w, err);
	if (rc)
		return rc;
	json_t *points = json_array();
	struct store_cw_filter f;
	struct store_cw_bucket *b = NULL;
	size_t nb = 0;
	if (m && !(rc = store_cw_dims_filter(json_object_get(req, "Dimensions"), m, &f, err))) {
		f.keep_values = w.npct > 0;
		rc = store_cw_series(h, m, &f, start, end, period * 1000, &b, &nb, err);
	}
	for (size_t k = 0; !rc && k < nb; k++)
		if (b[k].n)
			json_array_append_new(points, datapoint(&b[k], start - start % (period * 1000) +
									       (int64_t)k * period * 1000,
								&w, m->unit));
	store_cw_buckets_free(b, nb);
	if (rc) {
		json_decref(points);
		return rc;
	}
	*out = json_object();
	json_object_set_new(*out, "Label", json_string(name ? name : ""));
	json_object_set_new(*out, "Datapoints", points);
	return 0;
}

/* One MetricDataQuery's result. */
static int data_query(store_db *h, const json_t *q, int64_t start, int64_t end, bool ascending, json_t **out,
		      cbl_error **err)
{
	const char *id = cbl_json_str(q, "Id");
	const json_t *ms = json_object_get(q, "MetricStat");
	const json_t *metric = json_object_get(ms, "Metric");
	if (!id)
		return cbl_error_set(err, CBL_EINVAL, "Every MetricDataQuery needs an Id");
	if (!ms)
		return cbl_error_set(err, CBL_EINVAL,
				     "MetricDataQuery %s: codebuild-local answers MetricStat queries only, "
				     "not Expression",
				     id);
	const struct store_cw_metric *m = NULL;
	int64_t period = 0;
	int rc = check_namespace(metric, cbl_json_str(metric, "MetricName"), &m, err);
	if (!rc && (req_int(ms, "Period", &period) < 0 || period < 1))
		rc = cbl_error_set(err, CBL_EINVAL, "MetricDataQuery %s: the parameter Period must be > 0", id);
	int which = store_cw_stat_index(cbl_json_str(ms, "Stat"));
	double pct = 0;
	bool percentile = which < 0 && !store_cw_percentile_parse(cbl_json_str(ms, "Stat"), &pct);
	if (!rc && which < 0 && !percentile)
		rc = cbl_error_set(err, CBL_EINVAL, "MetricDataQuery %s: Stat %s is not supported (SampleCount, "
						    "Average, Sum, Minimum, Maximum, p0 to p100)",
				   id, cbl_json_str(ms, "Stat") ? cbl_json_str(ms, "Stat") : "(none)");
	if (rc)
		return rc;
	json_t *ts = json_array(), *vals = json_array();
	struct store_cw_filter f;
	struct store_cw_bucket *b = NULL;
	size_t nb = 0;
	if (m && !(rc = store_cw_dims_filter(json_object_get(metric, "Dimensions"), m, &f, err))) {
		f.keep_values = percentile;
		rc = store_cw_series(h, m, &f, start, end, period * 1000, &b, &nb, err);
	}
	if (!rc) {
		for (size_t k = 0; k < nb; k++) {
			if (!b[k].n)
				continue;
			json_t *t = store_json_time(start - start % (period * 1000) + (int64_t)k * period * 1000);
			json_t *v = json_real(percentile ? store_cw_percentile(&b[k], pct)
							 : store_cw_stat_value(&b[k], which));
			if (ascending) {
				json_array_append_new(ts, t);
				json_array_append_new(vals, v);
			} else {
				json_array_insert_new(ts, 0, t);
				json_array_insert_new(vals, 0, v);
			}
		}
		store_cw_buckets_free(b, nb);
	}
	if (rc) {
		json_decref(ts);
		json_decref(vals);
		return rc;
	}
	json_t *r = json_object();
	json_object_set_new(r, "Id", json_string(id));
	const char *label = cbl_json_str(q, "Label");
	json_object_set_new(r, "Label", json_string(label ? label : cbl_json_str_or_empty(metric, "MetricName")));
	json_object_set_new(r, "Timestamps", ts);
	json_object_set_new(r, "Values", vals);
	json_object_set_new(r, "StatusCode", json_string("Complete"));
	*out = r;
	return 0;
}

int store_op_get_metric_data(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	int64_t start = 0, end = 0, period = 0;
	int rc = window(req, &start, &end, &period, false, err);
	if (rc)
		return rc;
	const json_t *qs = json_object_get(req, "MetricDataQueries");
	if (!json_array_size(qs))
		return cbl_error_set(err, CBL_EINVAL, "The parameter MetricDataQueries is required.");
	const char *scan = cbl_json_str(req, "ScanBy");
	bool ascending = scan && !strcmp(scan, "TimestampAscending");
	json_t *results = json_array();
	size_t i;
	json_t *q;
	json_array_foreach(qs, i, q)
	{
		json_t *r = NULL;
		rc = data_query(h, q, start, end, ascending, &r, err);
		if (rc) {
			json_decref(results);
			return rc;
		}
		const json_t *rd = json_object_get(q, "ReturnData");
		if (json_is_false(rd) || (json_is_string(rd) && !strcmp(json_string_value(rd), "false")))
			json_decref(r);
		else
			json_array_append_new(results, r);
	}
	*out = json_object();
	json_object_set_new(*out, "MetricDataResults", results);
	json_object_set_new(*out, "Messages", json_array());
	return 0;
}

static json_t *metric_entry(const char *name, const char *project)
{
	json_t *e = json_object(), *dims = json_array();
	json_object_set_new(e, "Namespace", json_string(NAMESPACE));
	json_object_set_new(e, "MetricName", json_string(name));
	if (project) {
		json_t *d = json_object();
		json_object_set_new(d, "Name", json_string("ProjectName"));
		json_object_set_new(d, "Value", json_string(project));
		json_array_append_new(dims, d);
	}
	json_object_set_new(e, "Dimensions", dims);
	return e;
}

/* ListMetrics: every metric per project that has a build in the last two
 * weeks (CloudWatch lists what was published then), and without dimensions. */
int store_op_list_metrics(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const char *ns = cbl_json_str(req, "Namespace");
	const char *only = cbl_json_str(req, "MetricName");
	const char *want_project = NULL;
	bool other_dim = false;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(req, "Dimensions"), i, d)
	{
		if (!strcmp(cbl_json_str_or_empty(d, "Name"), "ProjectName"))
			want_project = cbl_json_str(d, "Value") ? cbl_json_str(d, "Value") : "";
		else
			other_dim = true;
	}
	json_t *list = json_array();
	*out = json_object();
	json_object_set_new(*out, "Metrics", list);
	if ((ns && strcmp(ns, NAMESPACE)) || other_dim)
		return 0;
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(h->db,
			       "SELECT DISTINCT project FROM build_metrics WHERE end_ms >= ?1 ORDER BY project",
			       &st, err);
	if (rc) {
		json_decref(*out);
		return rc;
	}
	sqlite3_bind_int64(st, 1, (int64_t)time(NULL) * 1000 - 14 * 86400000LL);
	bool any = false;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		any = true;
		if (want_project && *want_project && strcmp(p, want_project))
			continue;
		for (size_t k = 0; k < ARRAY_SIZE(metrics); k++)
			if (!only || !strcmp(only, metrics[k].name))
				json_array_append_new(list, metric_entry(metrics[k].name, p));
	}
	sqlite3_finalize(st);
	for (size_t k = 0; any && !want_project && k < ARRAY_SIZE(metrics); k++)
		if (!only || !strcmp(only, metrics[k].name))
			json_array_append_new(list, metric_entry(metrics[k].name, NULL));
	return 0;
}
