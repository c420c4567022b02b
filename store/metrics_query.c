/* store/metrics_query.c - the aggregates `metrics` and the CloudWatch face
 * compute over build_metrics (store/metrics.c) in SQL: one ranged scan of
 * the table (clustered by end time) per figure group. */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

#define phase_cols store_metrics_phase_cols
#define N_PHASES STORE_METRICS_NPHASES

/* The window's WHERE: end time in [?1, ?2), and project = ?3 when given. */
#define WINDOW_ALL " WHERE end_ms >= ?1 AND end_ms < ?2"
#define WINDOW_PROJECT " WHERE project = ?3 AND end_ms >= ?1 AND end_ms < ?2"

static int prep_window(sqlite3 *db, const store_metrics_query *q, const char *head, const char *tail,
		       sqlite3_stmt **st, cbl_error **err)
{
	char *sql = cbl_xasprintf("%s%s%s", head, q->project ? WINDOW_PROJECT : WINDOW_ALL, tail ? tail : "");
	int rc = store_prepare(db, sql, st, err);
	free(sql);
	if (rc)
		return rc;
	sqlite3_bind_int64(*st, 1, q->since_ms);
	sqlite3_bind_int64(*st, 2, q->until_ms);
	if (q->project)
		sqlite3_bind_text(*st, 3, q->project, -1, SQLITE_STATIC);
	return 0;
}

/* The k-th smallest of v[0..n) (Hoare's selection: v is reordered, in
 * linear time on average, unlike a sort). */
static int64_t select_kth(int64_t *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;
	while (lo < hi) {
		int64_t pivot = v[lo + (hi - lo) / 2];
		size_t i = lo, j = hi;
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				int64_t t = v[i];
				v[i] = v[j];
				v[j] = t;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			break;
	}
	return v[k];
}

/* {"count", "p50", "p95", "max"} of n values (nearest rank); reorders v. */
static json_t *pct_json(int64_t *v, size_t n)
{
	json_t *o = json_object();
	json_object_set_new(o, "count", json_integer((json_int_t)n));
	if (!n)
		return o;
	int64_t max = v[0];
	for (size_t i = 1; i < n; i++)
		if (v[i] > max)
			max = v[i];
	json_object_set_new(o, "p50", json_integer(select_kth(v, n, (n + 1) / 2 - 1)));
	json_object_set_new(o, "p95", json_integer(select_kth(v, n, (n * 95 + 99) / 100 - 1)));
	json_object_set_new(o, "max", json_integer(max));
	return o;
}

/* durationMs: the total's and each phase's percentiles, from one ranged
 * scan of the window (sorting per column in SQL would sort ten times). */
static int durations(sqlite3 *db, const store_metrics_query *q, json_t *o, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	cbl_buf sql = CBL_BUF_INIT;
	cbl_buf_puts(&sql, "SELECT duration_ms");
	for (size_t k = 0; k < N_PHASES; k++)
		cbl_buf_printf(&sql, ", %s", phase_cols[k][1]);
	cbl_buf_puts(&sql, " FROM build_metrics");
	int rc = prep_window(db, q, cbl_buf_cstr(&sql), NULL, &st, err);
	cbl_buf_release(&sql);
	if (rc)
		return rc;
	int64_t *v[N_PHASES + 1] = {0};
	size_t n[N_PHASES + 1] = {0}, cap = 0, rows = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (rows == cap) {
			cap = cap ? cap * 2 : 1024;
			for (size_t k = 0; k <= N_PHASES; k++)
				v[k] = cbl_xreallocarray(v[k], cap, sizeof(int64_t));
		}
		rows++;
		for (size_t k = 0; k <= N_PHASES; k++)
			if (sqlite3_column_type(st, (int)k) != SQLITE_NULL)
				v[k][n[k]++] = sqlite3_column_int64(st, (int)k);
	}
	sqlite3_finalize(st);
	json_t *d = json_object();
	json_object_set_new(d, "TOTAL", pct_json(v[0], n[0]));
	for (size_t k = 0; k < N_PHASES; k++)
		json_object_set_new(d, phase_cols[k][0], pct_json(v[k + 1], n[k + 1]));
	for (size_t k = 0; k <= N_PHASES; k++)
		free(v[k]);
	json_object_set_new(o, "durationMs", d);
	return 0;
}

/* The window's totals and "periods" (one entry per period with a build,
 * oldest first), from one GROUP BY over the window's range. */
static int summary_periods(sqlite3 *db, const store_metrics_query *q, json_t *o, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = prep_window(db, q,
			     "SELECT (end_ms - ?1) / ?4 AS b, count(*), total(status = 'SUCCEEDED'),"
			     " total(status = 'FAILED'), total(duration_ms), total(cost), count(cost),"
			     " total(cpu_us), max(mem_peak) FROM build_metrics",
			     " GROUP BY b ORDER BY b", &st, err);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 4, q->period_ms);
	json_t *a = json_array();
	int64_t n = 0, ok = 0, failed = 0, priced = 0, peak = -1;
	double dur = 0, cost = 0, cpu = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t pn = sqlite3_column_int64(st, 1);
		json_t *p = json_object();
		json_object_set_new(p, "startMs", json_integer(q->since_ms + sqlite3_column_int64(st, 0) * q->period_ms));
		json_object_set_new(p, "builds", json_integer(pn));
		json_object_set_new(p, "succeeded", json_integer((int64_t)sqlite3_column_double(st, 2)));
		json_object_set_new(p, "failed", json_integer((int64_t)sqlite3_column_double(st, 3)));
		json_object_set_new(p, "durationAvgMs", json_real(sqlite3_column_double(st, 4) / (double)pn));
		json_object_set_new(p, "cost", json_real(sqlite3_column_double(st, 5)));
		json_array_append_new(a, p);
		n += pn;
		ok += (int64_t)sqlite3_column_double(st, 2);
		failed += (int64_t)sqlite3_column_double(st, 3);
		dur += sqlite3_column_double(st, 4);
		cost += sqlite3_column_double(st, 5);
		priced += sqlite3_column_int64(st, 6);
		cpu += sqlite3_column_double(st, 7);
		if (sqlite3_column_type(st, 8) != SQLITE_NULL && sqlite3_column_int64(st, 8) > peak)
			peak = sqlite3_column_int64(st, 8);
	}
	sqlite3_finalize(st);
	json_object_set_new(o, "builds", json_integer(n));
	json_object_set_new(o, "succeeded", json_integer(ok));
	json_object_set_new(o, "failed", json_integer(failed));
	json_object_set_new(o, "other", json_integer(n - ok - failed));
	json_object_set_new(o, "successRate", n ? json_real((double)ok / (double)n) : json_null());
	json_object_set_new(o, "cost", json_real(cost));
	json_object_set_new(o, "pricedBuilds", json_integer(priced));
	json_object_set_new(o, "cpuSeconds", json_real(cpu / 1e6));
	json_object_set_new(o, "memoryPeakBytes", peak >= 0 ? json_integer(peak) : json_null());
	json_object_set_new(o, "buildMinutes", json_real(dur / 60000.0));
	json_object_set_new(o, "periods", a);
	return 0;
}

static int summary_projects(sqlite3 *db, const store_metrics_query *q, json_t *o, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = prep_window(db, q,
			     "SELECT project, count(*), total(status = 'SUCCEEDED'), avg(duration_ms), total(cost)"
			     " FROM build_metrics",
			     " GROUP BY project ORDER BY count(*) DESC, project LIMIT 50", &st, err);
	if (rc)
		return rc;
	json_t *a = json_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *p = json_object();
		json_object_set_new(p, "project", json_string((const char *)sqlite3_column_text(st, 0)));
		json_object_set_new(p, "builds", json_integer(sqlite3_column_int64(st, 1)));
		json_object_set_new(p, "successRate",
				    json_real(sqlite3_column_double(st, 2) / (double)sqlite3_column_int64(st, 1)));
		json_object_set_new(p, "durationAvgMs", json_real(sqlite3_column_double(st, 3)));
		json_object_set_new(p, "cost", json_real(sqlite3_column_double(st, 4)));
		json_array_append_new(a, p);
	}
	sqlite3_finalize(st);
	json_object_set_new(o, "projects", a);
	return 0;
}

int store_metrics_summary(const char *home, const store_metrics_query *q, json_t **out, cbl_error **err)
{
	if (q->period_ms <= 0 || q->until_ms <= q->since_ms)
		return cbl_error_set(err, CBL_EINVAL, "metrics: the period must be > 0 and the window not empty");
	store_db *h = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	json_t *o = json_object();
	/* the window's pages read in place, not copied into the page cache
	 * four times over (a no-op where SQLite has no mmap) */
	store_exec(h->db, "PRAGMA mmap_size = 1073741824", NULL);
	rc = store_exec(h->db, "BEGIN", err); /* one snapshot for every figure */
	if (!rc)
		rc = summary_periods(h->db, q, o, err);
	if (!rc)
		rc = durations(h->db, q, o, err);
	if (!rc)
		rc = summary_projects(h->db, q, o, err);
	store_exec(h->db, "COMMIT", NULL);
	store_db_release(h);
	if (rc) {
		json_decref(o);
		return rc;
	}
	json_object_set_new(o, "sinceMs", json_integer(q->since_ms));
	json_object_set_new(o, "untilMs", json_integer(q->until_ms));
	json_object_set_new(o, "periodMs", json_integer(q->period_ms));
	*out = o;
	return 0;
}
