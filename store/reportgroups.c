/* store/reportgroups.c - CreateReportGroup, UpdateReportGroup,
 * DeleteReportGroup and DeleteReport (store/api.h).  The requests have been
 * checked against the model (store/validate.c) before these run.
 *
 * A group created here is the group a build's reports join when the
 * buildspec names it by its ARN, or by <name> when the group is called
 * "<project>-<name>" (store/reports.c's ingest keeps an existing group and
 * its type).  exportConfig is stored as given and returned; nothing is
 * exported (README).  Deletions of an unknown group or report succeed (the
 * model lists no ResourceNotFoundException for them). */
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/json.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static int group_get(store_db *h, const char *arn, json_t **out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(h->db, "SELECT record FROM report_groups WHERE arn = ?1", &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		*out = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
		if (!*out)
			rc = cbl_error_set(err, CBL_EIO, "corrupt report group record '%s'", arn);
	} else if (s == SQLITE_DONE) {
		rc = cbl_error_set(err, CBL_ENOENT, "Report group cannot be found: %s", arn);
	} else {
		rc = store_sql_error(h->db, err, "cannot read a report group");
	}
	sqlite3_finalize(st);
	return rc;
}

static int group_put(store_db *h, const char *sql, json_t *rec, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	int rc = store_prepare(h->db, sql, &st, err);
	if (!rc) {
		sqlite3_bind_text(st, 1, cbl_json_str_or_empty(rec, "arn"), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, cbl_json_str_or_empty(rec, "name"), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, cbl_json_str_or_empty(rec, "type"), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, store_json_time_ms(json_object_get(rec, "created")));
		sqlite3_bind_int64(st, 5, store_json_time_ms(json_object_get(rec, "lastModified")));
		sqlite3_bind_text(st, 6, text ? text : "{}", -1, SQLITE_STATIC);
		int s = sqlite3_step(st);
		if ((s & 0xff) == SQLITE_CONSTRAINT)
			rc = CBL_EEXIST;
		else if (s != SQLITE_DONE)
			rc = store_sql_error(h->db, err, "cannot save a report group");
	}
	sqlite3_finalize(st);
	free(text);
	return rc;
}

/* The ReportGroup shape, in the model's member order. */
static json_t *group_record(const char *arn, const char *name, const char *type, json_t *export_cfg,
			    int64_t created_ms, int64_t modified_ms, json_t *tags)
{
	json_t *g = json_object();
	json_object_set_new(g, "arn", json_string(arn));
	json_object_set_new(g, "name", json_string(name));
	json_object_set_new(g, "type", json_string(type));
	json_object_set(g, "exportConfig", export_cfg);
	json_object_set_new(g, "created", store_json_time(created_ms));
	json_object_set_new(g, "lastModified", store_json_time(modified_ms));
	json_object_set(g, "tags", tags);
	json_object_set_new(g, "status", json_string("ACTIVE"));
	return g;
}

int store_op_create_report_group(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const char *name = cbl_json_str_or_empty(req, "name");
	char *arn = cbl_xasprintf("arn:aws:codebuild:%s:%s:report-group/%s", STORE_DEFAULT_REGION,
				  STORE_DEFAULT_ACCOUNT, name);
	json_t *t = json_object_get(req, "tags");
	json_t *tags = json_is_array(t) ? json_incref(t) : json_array();
	int64_t now = cbl_now_us() / 1000;
	json_t *rec = group_record(arn, name, cbl_json_str_or_empty(req, "type"),
				   json_object_get(req, "exportConfig"), now, now, tags);
	json_decref(tags);
	int rc = group_put(h,
			   "INSERT INTO report_groups(arn, name, type, project, created_ms, modified_ms, record)"
			   " VALUES(?1, ?2, ?3, NULL, ?4, ?5, ?6)",
			   rec, err);
	if (rc == CBL_EEXIST)
		rc = cbl_error_set(err, CBL_EEXIST, "Report group already exists: %s", arn);
	if (!rc)
		*out = json_pack("{s:O}", "reportGroup", rec);
	json_decref(rec);
	free(arn);
	return rc;
}

int store_op_update_report_group(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const char *arn = cbl_json_str_or_empty(req, "arn");
	json_t *rec = NULL;
	int rc = store_begin(h->db, err);
	if (rc)
		return rc;
	rc = group_get(h, arn, &rec, err);
	if (rc)
		goto out;
	if (json_is_object(json_object_get(req, "exportConfig")))
		json_object_set(rec, "exportConfig", json_object_get(req, "exportConfig"));
	if (json_is_array(json_object_get(req, "tags")))
		json_object_set(rec, "tags", json_object_get(req, "tags"));
	json_object_set_new(rec, "lastModified", store_json_time(cbl_now_us() / 1000));
	rc = group_put(h,
		       "UPDATE report_groups SET modified_ms = ?5, record = ?6"
		       " WHERE arn = ?1 AND ?2 = ?2 AND ?3 = ?3 AND ?4 = ?4",
		       rec, err);
	if (!rc)
		rc = store_commit(h->db, err);
	if (!rc)
		*out = json_pack("{s:O}", "reportGroup", rec);
out:
	store_rollback(h->db);
	json_decref(rec);
	return rc;
}

/* Runs each statement with ?1 = arn. */
static int exec_with(store_db *h, const char *const *sql, size_t n, const char *arn, cbl_error **err)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		sqlite3_stmt *st = NULL;
		rc = store_prepare(h->db, sql[i], &st, err);
		if (!rc) {
			sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = store_sql_error(h->db, err, "cannot delete a report");
		}
		sqlite3_finalize(st);
	}
	return rc;
}

static int count_reports(store_db *h, const char *arn, long long *n, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(h->db, "SELECT count(*) FROM reports WHERE report_group_arn = ?1", &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	else
		rc = store_sql_error(h->db, err, "cannot count a group's reports");
	sqlite3_finalize(st);
	return rc;
}

int store_op_delete_report_group(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	static const char *const drop_reports[] = {
		"DELETE FROM test_cases WHERE report_arn IN"
		" (SELECT arn FROM reports WHERE report_group_arn = ?1)",
		"DELETE FROM code_coverages WHERE report_arn IN"
		" (SELECT arn FROM reports WHERE report_group_arn = ?1)",
		"DELETE FROM reports WHERE report_group_arn = ?1",
	};
	static const char *const drop_group[] = {"DELETE FROM report_groups WHERE arn = ?1"};
	const char *arn = cbl_json_str_or_empty(req, "arn");
	long long n = 0;
	int rc = store_begin(h->db, err);
	if (!rc)
		rc = count_reports(h, arn, &n, err);
	if (!rc && n > 0 && !json_is_true(json_object_get(req, "deleteReports")))
		rc = cbl_error_set(err, CBL_EINVAL,
				   "Report group %s contains %lld report%s: delete them first, or set "
				   "deleteReports to true",
				   arn, n, n == 1 ? "" : "s");
	if (!rc && n > 0)
		rc = exec_with(h, drop_reports, ARRAY_SIZE(drop_reports), arn, err);
	if (!rc)
		rc = exec_with(h, drop_group, ARRAY_SIZE(drop_group), arn, err);
	if (!rc)
		rc = store_commit(h->db, err);
	store_rollback(h->db);
	if (!rc)
		*out = json_object();
	return rc;
}

int store_op_delete_report(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	static const char *const sql[] = {
		"DELETE FROM test_cases WHERE report_arn = ?1",
		"DELETE FROM code_coverages WHERE report_arn = ?1",
		"DELETE FROM reports WHERE arn = ?1",
	};
	int rc = store_begin(h->db, err);
	if (!rc)
		rc = exec_with(h, sql, ARRAY_SIZE(sql), cbl_json_str_or_empty(req, "arn"), err);
	if (!rc)
		rc = store_commit(h->db, err);
	store_rollback(h->db);
	if (!rc)
		*out = json_object();
	return rc;
}
