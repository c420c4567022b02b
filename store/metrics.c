/* store/metrics.c - the builds' metrics: one row per finished build in
 * build_metrics (durations per phase, queued time, resource use, cost),
 * written with its record (the queries: metrics_query.c). */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* The phases with a duration column, in the table's order. */
const char *const store_metrics_phase_cols[STORE_METRICS_NPHASES][2] = {
	{"QUEUED", "queued_ms"},
	{"PROVISIONING", "provisioning_ms"},
	{"DOWNLOAD_SOURCE", "download_source_ms"},
	{"INSTALL", "install_ms"},
	{"PRE_BUILD", "pre_build_ms"},
	{"BUILD", "build_ms"},
	{"POST_BUILD", "post_build_ms"},
	{"UPLOAD_ARTIFACTS", "upload_artifacts_ms"},
	{"FINALIZING", "finalizing_ms"},
};
#define phase_cols store_metrics_phase_cols
#define N_PHASES STORE_METRICS_NPHASES

static const char sql_metric_upsert[] =
	"INSERT OR REPLACE INTO build_metrics(id, project, number, start_ms, end_ms, status, compute_type,"
	" duration_ms, queued_ms, provisioning_ms, download_source_ms, install_ms, pre_build_ms, build_ms,"
	" post_build_ms, upload_artifacts_ms, finalizing_ms, cpu_us, mem_peak, read_bytes, write_bytes, cost)"
	" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,"
	" ?21, ?22)";

static int metric_bind(sqlite3_stmt *st, const json_t *record, cbl_error **err)
{
	const char *id = cbl_json_str_or_empty(record, "id");
	const char *colon = strchr(id, ':');
	int64_t start = store_json_time_ms(json_object_get(record, "startTime"));
	int64_t end = store_json_time_ms(json_object_get(record, "endTime"));
	if (!colon || !json_object_get(record, "endTime"))
		return cbl_error_set(err, CBL_EINVAL, "build record %s: no id or end time", id);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, (int)(colon - id), SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, json_integer_value(json_object_get(record, "buildNumber")));
	sqlite3_bind_int64(st, 4, start);
	sqlite3_bind_int64(st, 5, end);
	sqlite3_bind_text(st, 6, cbl_json_str_or_empty(record, "buildStatus"), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, cbl_json_str_or_empty(json_object_get(record, "environment"), "computeType"), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, end - start);
	size_t i;
	json_t *ph;
	json_array_foreach(json_object_get(record, "phases"), i, ph)
	{
		const char *type = cbl_json_str_or_empty(ph, "phaseType");
		const json_t *e = json_object_get(ph, "endTime");
		for (size_t k = 0; k < N_PHASES && e; k++)
			if (!strcmp(type, phase_cols[k][0]))
				sqlite3_bind_int64(st, 9 + (int)k,
						   store_json_time_ms(e) - store_json_time_ms(json_object_get(ph, "startTime")));
	}
	const json_t *local = json_object_get(record, "codebuildLocal");
	const json_t *u = json_object_get(local, "resourceUsage");
	if (u) {
		sqlite3_bind_int64(st, 18, (int64_t)(json_number_value(json_object_get(u, "cpuSeconds")) * 1e6));
		sqlite3_bind_int64(st, 19, json_integer_value(json_object_get(u, "memoryPeakBytes")));
		sqlite3_bind_int64(st, 20, json_integer_value(json_object_get(u, "readBytes")));
		sqlite3_bind_int64(st, 21, json_integer_value(json_object_get(u, "writeBytes")));
	}
	const json_t *cost = json_object_get(json_object_get(local, "cost"), "amount");
	if (json_is_number(cost))
		sqlite3_bind_double(st, 22, json_number_value(cost));
	return 0;
}

int store_db_metrics_record(store_db *h, const json_t *record, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_stmt(h, sql_metric_upsert, &st, err);
	if (!rc)
		rc = metric_bind(st, record, err);
	if (!rc && sqlite3_step(st) != SQLITE_DONE)
		rc = store_sql_error(h->db, err, "cannot save the build's metrics");
	store_stmt_done(st);
	return rc;
}

int store_db_metrics_backfill(sqlite3 *db, cbl_error **err)
{
	sqlite3_stmt *sel = NULL, *ins = NULL;
	int rc = store_prepare(db, "SELECT record FROM builds WHERE complete = 1", &sel, err);
	if (!rc)
		rc = store_prepare(db, sql_metric_upsert, &ins, err);
	while (!rc && sqlite3_step(sel) == SQLITE_ROW) {
		json_t *r = json_loads((const char *)sqlite3_column_text(sel, 0), 0, NULL);
		cbl_error *e = NULL;
		/* a record without an end is left out, not an error */
		if (r && metric_bind(ins, r, &e) == 0 && sqlite3_step(ins) != SQLITE_DONE)
			rc = store_sql_error(db, err, "cannot backfill the builds' metrics");
		cbl_error_free(e);
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		json_decref(r);
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	return rc;
}
