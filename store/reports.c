/* store/reports.c - report groups, reports, test cases and code coverages:
 * their ingestion from a complete build's directory, and the report data
 * operations (ListReportGroups, BatchGetReportGroups, ListReports,
 * ListReportsForReportGroup, BatchGetReports, DescribeTestCases,
 * DescribeCodeCoverages, GetReportGroupTrend).
 *
 * Where the data comes from: in UPLOAD_ARTIFACTS the runner writes, per
 * report group of the buildspec, <build dir>/reports/<group name>/
 * report.json ({"reports": [Report]}), test-cases.json ({"testCases": [...]},
 * TEST reports) and code-coverages.json ({"codeCoverages": [...]}, coverage
 * reports), and lists the reports' ARNs in the record's reportArns.  When the
 * record is saved complete, the reports it lists are read from there into the
 * database, so BatchGetBuilds' reportArns and BatchGetReports agree, and the
 * build's directory may go (BatchDeleteBuilds) without the reports going
 * with it.
 *
 * Report groups are created by their first report, as the service creates
 * the groups a buildspec names: "<project>-<name>" for a plain name, the
 * group an ARN names as is.  They never change afterwards (no
 * UpdateReportGroup locally), so lastModified = created.
 */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/fs.h"
#include "util/json.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

#define SHAPE(f) {f, ARRAY_SIZE(f)}

/* a report's files are the runner's own; this only bounds a damaged one */
#define REPORT_FILE_MAX (256u << 20)

/* ---------------------------------------------------------------- ingest */

/* The group name an ARN carries (arn:...:report-group/<name>), or NULL. */
static const char *group_name_of(const char *arn)
{
	if (strncmp(arn, "arn:", 4))
		return NULL;
	const char *p = strstr(arn, ":report-group/");
	if (!p || !p[14] || strchr(p + 14, '/') || strchr(p + 14, ':'))
		return NULL;
	return p + 14;
}

static json_t *load_json(const char *dir, const char *file)
{
	char *path = cbl_path_join(dir, file), *data = NULL;
	size_t len = 0;
	cbl_error *e = NULL;
	json_t *j = NULL;
	if (!cbl_read_regular_file(path, REPORT_FILE_MAX, &data, &len, &e))
		j = json_loadb(data, len, 0, NULL);
	cbl_error_free(e);
	free(data);
	free(path);
	return j;
}

static json_t *group_record(const char *arn, const char *name, const char *type, int64_t created_ms,
			    int64_t modified_ms)
{
	json_t *g = json_object();
	json_object_set_new(g, "arn", json_string(arn));
	json_object_set_new(g, "name", json_string(name));
	json_object_set_new(g, "type", json_string(type));
	json_object_set_new(g, "exportConfig", json_pack("{s:s}", "exportConfigType", "NO_EXPORT"));
	json_object_set_new(g, "created", store_json_time(created_ms));
	json_object_set_new(g, "lastModified", store_json_time(modified_ms));
	json_object_set_new(g, "tags", json_array());
	json_object_set_new(g, "status", json_string("ACTIVE"));
	return g;
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, cbl_error **err, const char *what)
{
	int s = sqlite3_step(st);
	if (s != SQLITE_DONE && s != SQLITE_ROW)
		return store_sql_error(db, err, what);
	return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const json_t *v)
{
	if (json_is_string(v))
		sqlite3_bind_text(st, i, json_string_value(v), -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_int_or_null(sqlite3_stmt *st, int i, const json_t *v)
{
	if (json_is_integer(v))
		sqlite3_bind_int64(st, i, json_integer_value(v));
	else if (json_is_real(v))
		sqlite3_bind_int64(st, i, (sqlite3_int64)json_real_value(v));
	else
		sqlite3_bind_null(st, i);
}

static void bind_real_or_null(sqlite3_stmt *st, int i, const json_t *v)
{
	if (json_is_number(v))
		sqlite3_bind_double(st, i, json_number_value(v));
	else
		sqlite3_bind_null(st, i);
}

static void bind_time_or_null(sqlite3_stmt *st, int i, const json_t *v)
{
	if (json_is_number(v))
		sqlite3_bind_int64(st, i, store_json_time_ms(v));
	else
		sqlite3_bind_null(st, i);
}

static int ingest_cases(sqlite3 *db, const char *arn, json_t *cases, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(db,
			       "INSERT INTO test_cases(report_arn, seq, test_raw_data_path, prefix, name,"
			       " status, duration_ns, message, expired_ms, test_suite_name)"
			       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
			       &st, err);
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		if (rc)
			break;
		if (!json_is_object(c))
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		bind_text_or_null(st, 3, json_object_get(c, "testRawDataPath"));
		bind_text_or_null(st, 4, json_object_get(c, "prefix"));
		sqlite3_bind_text(st, 5, cbl_json_str_or_empty(c, "name"), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, *cbl_json_str_or_empty(c, "status") ? cbl_json_str_or_empty(c, "status") : "UNKNOWN", -1,
				  SQLITE_STATIC);
		bind_int_or_null(st, 7, json_object_get(c, "durationInNanoSeconds"));
		bind_text_or_null(st, 8, json_object_get(c, "message"));
		bind_time_or_null(st, 9, json_object_get(c, "expired"));
		bind_text_or_null(st, 10, json_object_get(c, "testSuiteName"));
		rc = step_done(db, st, err, "cannot store a test case");
	}
	sqlite3_finalize(st);
	return rc;
}

static int ingest_coverages(sqlite3 *db, const char *arn, json_t *covs, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(db,
			       "INSERT INTO code_coverages(report_arn, seq, id, file_path,"
			       " line_coverage_percentage, lines_covered, lines_missed,"
			       " branch_coverage_percentage, branches_covered, branches_missed, expired_ms)"
			       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
			       &st, err);
	size_t i;
	json_t *c;
	json_array_foreach(covs, i, c) {
		if (rc)
			break;
		if (!json_is_object(c) || !*cbl_json_str_or_empty(c, "filePath"))
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		bind_text_or_null(st, 3, json_object_get(c, "id"));
		sqlite3_bind_text(st, 4, cbl_json_str_or_empty(c, "filePath"), -1, SQLITE_STATIC);
		bind_real_or_null(st, 5, json_object_get(c, "lineCoveragePercentage"));
		bind_int_or_null(st, 6, json_object_get(c, "linesCovered"));
		bind_int_or_null(st, 7, json_object_get(c, "linesMissed"));
		bind_real_or_null(st, 8, json_object_get(c, "branchCoveragePercentage"));
		bind_int_or_null(st, 9, json_object_get(c, "branchesCovered"));
		bind_int_or_null(st, 10, json_object_get(c, "branchesMissed"));
		bind_time_or_null(st, 11, json_object_get(c, "expired"));
		rc = step_done(db, st, err, "cannot store a code coverage");
	}
	sqlite3_finalize(st);
	return rc;
}

/* One report directory: <build dir>/reports/<group>/. */
static int ingest_one(sqlite3 *db, const char *dir, const char *build_id, const char *project,
		      json_t *arns, cbl_error **err)
{
	json_t *doc = load_json(dir, "report.json"), *cases = NULL, *covs = NULL;
	json_t *rep = json_array_get(json_object_get(doc, "reports"), 0);
	sqlite3_stmt *st = NULL;
	char *text = NULL;
	int rc = 0;
	const char *arn = cbl_json_str_or_empty(rep, "arn"), *garn = cbl_json_str_or_empty(rep, "reportGroupArn");
	const char *type = cbl_json_str_or_empty(rep, "type"), *gname = group_name_of(garn);
	/* only the reports the record lists, and only well-formed ones */
	bool listed = false;
	size_t i;
	json_t *x;
	json_array_foreach(arns, i, x) {
		if (json_is_string(x) && !strcmp(json_string_value(x), arn))
			listed = true;
	}
	if (!listed || !*arn || !gname || (strcmp(type, "TEST") && strcmp(type, "CODE_COVERAGE")) ||
	    !*cbl_json_str_or_empty(rep, "status"))
		goto out;
	int64_t created = store_json_time_ms(json_object_get(rep, "created"));

	json_t *g = group_record(garn, gname, type, created, created);
	text = json_dumps(g, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	json_decref(g);
	rc = store_prepare(db,
			   "INSERT INTO report_groups(arn, name, type, project, created_ms, modified_ms, record)"
			   " VALUES(?1, ?2, ?3, ?4, ?5, ?5, ?6) ON CONFLICT(arn) DO NOTHING",
			   &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, garn, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, gname, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, project, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, created);
	sqlite3_bind_text(st, 6, text, -1, SQLITE_STATIC);
	rc = step_done(db, st, err, "cannot store a report group");
	sqlite3_finalize(st);
	st = NULL;
	free(text);
	text = NULL;
	if (rc)
		goto out;

	text = json_dumps(rep, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	rc = store_prepare(db,
			   "INSERT OR REPLACE INTO reports(arn, report_group_arn, build_id, type, status,"
			   " created_ms, record) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			   &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, garn, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, build_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, cbl_json_str_or_empty(rep, "status"), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, created);
	sqlite3_bind_text(st, 7, text ? text : "{}", -1, SQLITE_STATIC);
	rc = step_done(db, st, err, "cannot store a report");
	sqlite3_finalize(st);
	st = NULL;
	static const char *const dels[] = {"DELETE FROM test_cases WHERE report_arn = ?1",
					   "DELETE FROM code_coverages WHERE report_arn = ?1"};
	for (size_t k = 0; !rc && k < ARRAY_SIZE(dels); k++) {
		rc = store_prepare(db, dels[k], &st, err);
		if (!rc) {
			sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
			rc = step_done(db, st, err, "cannot replace a report's details");
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc)
		goto out;
	if (!strcmp(type, "TEST")) {
		cases = load_json(dir, "test-cases.json");
		rc = ingest_cases(db, arn, json_object_get(cases, "testCases"), err);
	} else {
		covs = load_json(dir, "code-coverages.json");
		rc = ingest_coverages(db, arn, json_object_get(covs, "codeCoverages"), err);
	}
out:
	sqlite3_finalize(st);
	free(text);
	json_decref(doc);
	json_decref(cases);
	json_decref(covs);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ingest(sqlite3 *db, const char *build_dir, json_t *record, cbl_error **err)
{
	json_t *arns = json_object_get(record, "reportArns");
	const char *id = cbl_json_str_or_empty(record, "id");
	char *project = NULL, *uuid = NULL;
	if (!json_array_size(arns) || store_split_build_id(id, &project, &uuid, NULL))
		return 0;
	char *root = cbl_path_join(build_dir, "reports");
	DIR *d = opendir(root);
	int rc = 0;
	if (d) {
		/* in name order: the same build ingests the same way every time */
		cbl_strv names = CBL_STRV_INIT;
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				cbl_strv_push(&names, de->d_name);
		closedir(d);
		if (names.n)
			qsort(names.v, names.n, sizeof(*names.v), cmp_str);
		for (size_t i = 0; !rc && i < names.n; i++) {
			char *dir = cbl_path_join(root, names.v[i]);
			rc = ingest_one(db, dir, id, project, arns, err);
			free(dir);
		}
		cbl_strv_release(&names);
	}
	free(root);
	free(project);
	free(uuid);
	return rc;
}

int store_db_reports_ingest(store_db *h, const char *build_dir, json_t *record, cbl_error **err)
{
	if (!json_array_size(json_object_get(record, "reportArns")))
		return 0;
	int rc = store_exec(h->db, "SAVEPOINT reports_ingest", err);
	if (rc)
		return rc;
	cbl_error *e = NULL;
	if (ingest(h->db, build_dir, record, &e))
		sqlite3_exec(h->db, "ROLLBACK TO reports_ingest", NULL, NULL, NULL);
	cbl_error_free(e);
	return store_exec(h->db, "RELEASE reports_ingest", err);
}

int store_db_reports_backfill(sqlite3 *db, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	store_db tmp = {.db = db};
	int rc = store_prepare(db,
			       "SELECT dir, record FROM builds WHERE complete = 1 AND json_valid(record)"
			       " AND json_array_length(record, '$.reportArns') > 0 ORDER BY start_ms, id",
			       &st, err);
	int s;
	while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *rec = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
		if (rec)
			rc = store_db_reports_ingest(&tmp, (const char *)sqlite3_column_text(st, 0), rec, err);
		json_decref(rec);
	}
	if (!rc && s != SQLITE_DONE)
		rc = store_sql_error(db, err, "cannot read the builds to ingest their reports");
	sqlite3_finalize(st);
	return rc;
}

/* ---------------------------------------------------------------- requests */

static const char *const sort_orders[] = {"ASCENDING", "DESCENDING", NULL};
static const char *const group_sort_by[] = {"NAME", "CREATED_TIME", "LAST_MODIFIED_TIME", NULL};
static const char *const report_status[] = {"GENERATING", "SUCCEEDED", "FAILED", "INCOMPLETE",
					    "DELETING", NULL};
static const char *const case_status[] = {"SUCCEEDED", "FAILED", "ERROR", "SKIPPED", "UNKNOWN", NULL};
static const char *const coverage_sort_by[] = {"LINE_COVERAGE_PERCENTAGE", "FILE_PATH", NULL};
static const char *const trend_fields[] = {"PASS_RATE", "DURATION", "TOTAL", "LINE_COVERAGE",
					   "LINES_COVERED", "LINES_MISSED", "BRANCH_COVERAGE",
					   "BRANCHES_COVERED", "BRANCHES_MISSED", NULL};

static const store_field report_filter_f[] = {{"status", SF_STR, .enumv = report_status}};
static const store_shape report_filter_s = SHAPE(report_filter_f);
/* the model types TestCaseFilter.status as a plain string and documents
 * these five values: anything else is refused like an enum */
static const store_field case_filter_f[] = {
	{"status", SF_STR, .enumv = case_status},
	{"keyword", SF_STR},
};
static const store_shape case_filter_s = SHAPE(case_filter_f);

#define PAGE_FIELDS                                                                                \
	{"nextToken", SF_STR, .min = 1}, {"maxResults", SF_INT, .min = 1, .max = 100}

static int check(const store_shape *s, json_t *req, json_t **in, cbl_error **err)
{
	store_verr v = STORE_VERR_INIT;
	store_shape_check(s, "", req, in, &v);
	int rc = store_verr_finish(&v, err);
	if (rc) {
		json_decref(*in);
		*in = NULL;
	}
	return rc;
}

static int bad_token(cbl_error **err) { return cbl_error_set(err, CBL_EINVAL, "Invalid next token"); }

static size_t page_size(const json_t *in)
{
	const json_t *m = json_object_get(in, "maxResults");
	return m ? (size_t)json_integer_value(m) : STORE_PAGE_SIZE;
}

/* Keyset tokens of the ARN lists: "<key>.<arn>" of the last ARN returned. */
static int parse_arn_token(const json_t *in, bool *have, long long *key, const char **arn,
			   cbl_error **err)
{
	const char *t = cbl_json_str(in, "nextToken");
	*have = false;
	*key = 0;
	*arn = "";
	if (!t)
		return 0;
	char *end = NULL;
	errno = 0;
	long long k = strtoll(t, &end, 10);
	if (end == t || errno || *end != '.' || strncmp(end + 1, "arn:", 4))
		return bad_token(err);
	*have = true;
	*key = k;
	*arn = end + 1;
	return 0;
}

/* The end of a paged listing: {member: list, nextToken} or the step's
 * error (list and token are consumed either way). */
static int finish_page(sqlite3 *db, int s, json_t *list, char *token, const char *member, const char *what,
		       json_t **out, cbl_error **err)
{
	if (s != SQLITE_DONE) {
		json_decref(list);
		free(token);
		return store_sql_error(db, err, what);
	}
	*out = json_object();
	cbl_json_set_str(*out, "nextToken", token);
	json_object_set_new(*out, member, list);
	free(token);
	return 0;
}

/* Steps a statement whose rows are (key, arn), bound with LIMIT page + 1,
 * into {"nextToken"?, member: [arns]}. */
static int arn_page(sqlite3 *db, sqlite3_stmt *st, const char *member, size_t page, json_t **out,
		    cbl_error **err)
{
	json_t *list = json_array();
	char *token = NULL;
	long long last_key = 0;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (json_array_size(list) == page) {
			const char *last = json_string_value(json_array_get(list, page - 1));
			token = cbl_xasprintf("%lld.%s", last_key, last);
			s = SQLITE_DONE;
			break;
		}
		last_key = sqlite3_column_int64(st, 0);
		json_array_append_new(list, json_string((const char *)sqlite3_column_text(st, 1)));
	}
	return finish_page(db, s, list, token, member, "cannot list reports", out, err);
}

static bool row_exists(sqlite3 *db, const char *sql, const char *arn, int *rc, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	bool found = false;
	*rc = store_prepare(db, sql, &st, err);
	if (*rc)
		return false;
	sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW)
		found = true;
	else if (s != SQLITE_DONE)
		*rc = store_sql_error(db, err, "cannot read a report");
	sqlite3_finalize(st);
	return found;
}

static int group_not_found(const char *arn, cbl_error **err)
{
	return cbl_error_set(err, CBL_ENOENT, "Report group cannot be found: %s", arn);
}

static int report_not_found(const char *arn, cbl_error **err)
{
	return cbl_error_set(err, CBL_ENOENT, "Report cannot be found: %s", arn);
}

/* ---------------------------------------------------------------- report groups */

int store_op_list_report_groups(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	static const store_field f[] = {
		{"sortOrder", SF_STR, .enumv = sort_orders},
		{"sortBy", SF_STR, .enumv = group_sort_by},
		PAGE_FIELDS,
	};
	static const store_shape s = SHAPE(f);
	json_t *in = NULL;
	sqlite3_stmt *st = NULL;
	bool have;
	long long key;
	const char *after;
	int rc = check(&s, req, &in, err);
	if (!rc)
		rc = parse_arn_token(in, &have, &key, &after, err);
	if (rc)
		goto out;
	/* local choice (the service documents no default): by name, ascending */
	const char *by = json_object_get(in, "sortBy") ? cbl_json_str_or_empty(in, "sortBy") : "NAME";
	bool desc = !strcmp(cbl_json_str_or_empty(in, "sortOrder"), "DESCENDING");
	const char *dir = desc ? "DESC" : "ASC", *cmp = desc ? "<" : ">";
	const char *after_name = "";
	char sql[512];
	if (!strcmp(by, "NAME")) {
		after_name = have ? group_name_of(after) : "";
		if (!after_name) {
			rc = bad_token(err);
			goto out;
		}
		snprintf(sql, sizeof(sql),
			 "SELECT 0, arn FROM report_groups WHERE NOT ?1 OR ?2 = ?2 AND (name, arn) %s (?3, ?4)"
			 " ORDER BY name %s, arn %s LIMIT ?5",
			 cmp, dir, dir);
	} else {
		const char *col = !strcmp(by, "CREATED_TIME") ? "created_ms" : "modified_ms";
		snprintf(sql, sizeof(sql),
			 "SELECT %s, arn FROM report_groups WHERE NOT ?1 OR ?3 = ?3 AND (%s, arn) %s (?2, ?4)"
			 " ORDER BY %s %s, arn %s LIMIT ?5",
			 col, col, cmp, col, dir, dir);
	}
	rc = store_prepare(h->db, sql, &st, err);
	if (rc)
		goto out;
	size_t page = page_size(in);
	sqlite3_bind_int(st, 1, have);
	sqlite3_bind_int64(st, 2, key);
	sqlite3_bind_text(st, 3, after_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, after, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)page + 1);
	rc = arn_page(h->db, st, "reportGroups", page, out, err);
out:
	sqlite3_finalize(st);
	json_decref(in);
	return rc;
}

/* The de-duplicated list member, borrowed.  1..100 non-empty strings:
 * store_api_validate's (the model's); the shape check, the JSON types. */
static int check_arn_list(json_t *req, const char *member, json_t **in, cbl_error **err)
{
	store_field f[] = {{member, SF_LIST_STR, true}};
	store_shape s = {f, 1};
	store_verr v = STORE_VERR_INIT;
	store_shape_check(&s, "", req, in, &v);
	json_t *list = json_object_get(*in, member);
	size_t i;
	json_t *x;
	int rc = store_verr_finish(&v, err);
	if (rc) {
		json_decref(*in);
		*in = NULL;
		return rc;
	}
	json_t *uniq = json_array();
	json_array_foreach(list, i, x) {
		bool dup = false;
		for (size_t k = 0; k < json_array_size(uniq) && !dup; k++)
			dup = json_equal(json_array_get(uniq, k), x);
		if (!dup)
			json_array_append(uniq, x);
	}
	json_object_set_new(*in, member, uniq);
	return 0;
}

/* BatchGetReportGroups / BatchGetReports: records by ARN. */
static int batch_get(store_db *h, json_t *req, const char *member, const char *sql, const char *found_key,
		     const char *missing_key, json_t **out, cbl_error **err)
{
	json_t *in = NULL, *found = NULL, *missing = NULL;
	sqlite3_stmt *st = NULL;
	int rc = check_arn_list(req, member, &in, err);
	if (!rc)
		rc = store_prepare(h->db, sql, &st, err);
	if (rc)
		goto out;
	found = json_array();
	missing = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(in, member), i, x) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, json_string_value(x), -1, SQLITE_STATIC);
		int s = sqlite3_step(st);
		json_t *rec = NULL;
		if (s == SQLITE_ROW)
			rec = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
		else if (s != SQLITE_DONE) {
			rc = store_sql_error(h->db, err, "cannot read a report");
			goto out;
		}
		if (rec)
			json_array_append_new(found, rec);
		else
			json_array_append(missing, x);
	}
	*out = json_object();
	json_object_set(*out, found_key, found);
	json_object_set(*out, missing_key, missing);
out:
	sqlite3_finalize(st);
	json_decref(found);
	json_decref(missing);
	json_decref(in);
	return rc;
}

int store_op_batch_get_report_groups(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	return batch_get(h, req, "reportGroupArns", "SELECT record FROM report_groups WHERE arn = ?1",
			 "reportGroups", "reportGroupsNotFound", out, err);
}

/* ---------------------------------------------------------------- reports */

static int list_reports(store_db *h, json_t *in, const char *group, json_t **out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	bool have;
	long long key;
	const char *after;
	int rc = parse_arn_token(in, &have, &key, &after, err);
	if (rc)
		return rc;
	/* local choice (the service documents no default): newest first */
	bool desc = strcmp(cbl_json_str_or_empty(in, "sortOrder"), "ASCENDING") != 0;
	const char *dir = desc ? "DESC" : "ASC";
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT created_ms, arn FROM reports WHERE (?5 IS NULL OR report_group_arn = ?5)"
		 " AND (?6 IS NULL OR status = ?6) AND (NOT ?1 OR (created_ms, arn) %s (?2, ?3))"
		 " ORDER BY created_ms %s, arn %s LIMIT ?4",
		 desc ? "<" : ">", dir, dir);
	rc = store_prepare(h->db, sql, &st, err);
	if (rc)
		return rc;
	size_t page = page_size(in);
	const char *status = cbl_json_str(json_object_get(in, "filter"), "status");
	sqlite3_bind_int(st, 1, have);
	sqlite3_bind_int64(st, 2, key);
	sqlite3_bind_text(st, 3, after, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)page + 1);
	if (group)
		sqlite3_bind_text(st, 5, group, -1, SQLITE_STATIC);
	if (status)
		sqlite3_bind_text(st, 6, status, -1, SQLITE_STATIC);
	rc = arn_page(h->db, st, "reports", page, out, err);
	sqlite3_finalize(st);
	return rc;
}

int store_op_list_reports(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	static const store_field f[] = {
		{"sortOrder", SF_STR, .enumv = sort_orders},
		PAGE_FIELDS,
		{"filter", SF_STRUCT, .sub = &report_filter_s},
	};
	static const store_shape s = SHAPE(f);
	json_t *in = NULL;
	int rc = check(&s, req, &in, err);
	if (!rc)
		rc = list_reports(h, in, NULL, out, err);
	json_decref(in);
	return rc;
}

int store_op_list_reports_for_report_group(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	static const store_field f[] = {
		{"reportGroupArn", SF_STR, true, .min = 1},
		{"sortOrder", SF_STR, .enumv = sort_orders},
		PAGE_FIELDS,
		{"filter", SF_STRUCT, .sub = &report_filter_s},
	};
	static const store_shape s = SHAPE(f);
	json_t *in = NULL;
	int rc = check(&s, req, &in, err);
	if (rc)
		return rc;
	const char *group = cbl_json_str_or_empty(in, "reportGroupArn");
	if (!row_exists(h->db, "SELECT 1 FROM report_groups WHERE arn = ?1", group, &rc, err) && !rc)
		rc = group_not_found(group, err);
	if (!rc)
		rc = list_reports(h, in, group, out, err);
	json_decref(in);
	return rc;
}

int store_op_batch_get_reports(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	return batch_get(h, req, "reportArns", "SELECT record FROM reports WHERE arn = ?1", "reports",
			 "reportsNotFound", out, err);
}

/* ---------------------------------------------------------------- details */

/* Tokens of the detail lists: the last row's sequence number in its report. */
static int parse_seq_token(const json_t *in, bool *have, long long *seq, cbl_error **err)
{
	const char *t = cbl_json_str(in, "nextToken");
	*have = false;
	*seq = -1;
	if (!t)
		return 0;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(t, &end, 10);
	if (end == t || *end || errno || v < 0)
		return bad_token(err);
	*have = true;
	*seq = v;
	return 0;
}

static void set_col_text(json_t *o, const char *k, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) != SQLITE_NULL)
		json_object_set_new(o, k, json_string((const char *)sqlite3_column_text(st, col)));
}

static void set_col_int(json_t *o, const char *k, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) != SQLITE_NULL)
		json_object_set_new(o, k, json_integer(sqlite3_column_int64(st, col)));
}

static void set_col_real(json_t *o, const char *k, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) != SQLITE_NULL)
		json_object_set_new(o, k, json_real(sqlite3_column_double(st, col)));
}

static void set_col_time(json_t *o, const char *k, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) != SQLITE_NULL)
		json_object_set_new(o, k, store_json_time(sqlite3_column_int64(st, col)));
}

/* Steps rows whose first column is seq into {"nextToken"?, member: [...]}. */
static int seq_page(sqlite3 *db, sqlite3_stmt *st, const char *member, size_t page,
		    json_t *(*row)(sqlite3_stmt *st, const char *arn), const char *arn, json_t **out,
		    cbl_error **err)
{
	json_t *list = json_array();
	char *token = NULL;
	long long last = 0;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (json_array_size(list) == page) {
			token = cbl_xasprintf("%lld", last);
			s = SQLITE_DONE;
			break;
		}
		last = sqlite3_column_int64(st, 0);
		json_array_append_new(list, row(st, arn));
	}
	return finish_page(db, s, list, token, member, "cannot read a report's details", out, err);
}

/* TestCase, in the model's member order. */
static json_t *case_row(sqlite3_stmt *st, const char *arn)
{
	json_t *o = json_object();
	json_object_set_new(o, "reportArn", json_string(arn));
	set_col_text(o, "testRawDataPath", st, 1);
	set_col_text(o, "prefix", st, 2);
	set_col_text(o, "name", st, 3);
	set_col_text(o, "status", st, 4);
	set_col_int(o, "durationInNanoSeconds", st, 5);
	set_col_text(o, "message", st, 6);
	set_col_time(o, "expired", st, 7);
	set_col_text(o, "testSuiteName", st, 8);
	return o;
}

int store_op_describe_test_cases(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	static const store_field f[] = {
		{"reportArn", SF_STR, true, .min = 1},
		PAGE_FIELDS,
		{"filter", SF_STRUCT, .sub = &case_filter_s},
	};
	static const store_shape s = SHAPE(f);
	json_t *in = NULL;
	sqlite3_stmt *st = NULL;
	bool have;
	long long seq;
	int rc = check(&s, req, &in, err);
	if (!rc)
		rc = parse_seq_token(in, &have, &seq, err);
	if (rc)
		goto out;
	const char *arn = cbl_json_str_or_empty(in, "reportArn");
	if (!row_exists(h->db, "SELECT 1 FROM reports WHERE arn = ?1", arn, &rc, err)) {
		if (!rc)
			rc = report_not_found(arn, err);
		goto out;
	}
	/* keyword: a substring of the name or the prefix (case-sensitive) */
	rc = store_prepare(h->db,
			   "SELECT seq, test_raw_data_path, prefix, name, status, duration_ns, message,"
			   " expired_ms, test_suite_name FROM test_cases WHERE report_arn = ?1 AND seq > ?2"
			   " AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR instr(name, ?4) > 0"
			   " OR instr(ifnull(prefix, ''), ?4) > 0) ORDER BY seq LIMIT ?5",
			   &st, err);
	if (rc)
		goto out;
	const json_t *filter = json_object_get(in, "filter");
	const char *status = cbl_json_str(filter, "status");
	const char *keyword = cbl_json_str(filter, "keyword");
	size_t page = page_size(in);
	sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, seq);
	if (status)
		sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
	if (keyword)
		sqlite3_bind_text(st, 4, keyword, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)page + 1);
	rc = seq_page(h->db, st, "testCases", page, case_row, arn, out, err);
out:
	sqlite3_finalize(st);
	json_decref(in);
	return rc;
}

/* CodeCoverage, in the model's member order. */
static json_t *coverage_row(sqlite3_stmt *st, const char *arn)
{
	json_t *o = json_object();
	set_col_text(o, "id", st, 1);
	json_object_set_new(o, "reportARN", json_string(arn));
	set_col_text(o, "filePath", st, 2);
	set_col_real(o, "lineCoveragePercentage", st, 3);
	set_col_int(o, "linesCovered", st, 4);
	set_col_int(o, "linesMissed", st, 5);
	set_col_real(o, "branchCoveragePercentage", st, 6);
	set_col_int(o, "branchesCovered", st, 7);
	set_col_int(o, "branchesMissed", st, 8);
	set_col_time(o, "expired", st, 9);
	return o;
}

/* A Percentage member: a number (in [0, 100]: store_api_validate's, the
 * model's); *have false when absent. */
static void check_percentage(json_t *req, const char *k, double *out, bool *have, store_verr *v)
{
	json_t *x = json_object_get(req, k);
	*have = false;
	if (!x || json_is_null(x))
		return;
	if (!json_is_number(x))
		store_verr_add(v, k, x, "Member must be a number");
	else {
		*out = json_number_value(x);
		*have = true;
	}
}

int store_op_describe_code_coverages(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	static const store_field f[] = {
		{"reportArn", SF_STR, true, .min = 1},
		PAGE_FIELDS,
		{"sortOrder", SF_STR, .enumv = sort_orders},
		{"sortBy", SF_STR, .enumv = coverage_sort_by},
	};
	static const store_shape s = SHAPE(f);
	json_t *in = NULL;
	sqlite3_stmt *st = NULL;
	store_verr v = STORE_VERR_INIT;
	double lo = 0, hi = 100;
	bool have_lo, have_hi, have;
	long long seq;
	store_shape_check(&s, "", req, &in, &v);
	if (json_is_object(req)) {
		check_percentage(req, "minLineCoveragePercentage", &lo, &have_lo, &v);
		check_percentage(req, "maxLineCoveragePercentage", &hi, &have_hi, &v);
	}
	int rc = store_verr_finish(&v, err);
	if (!rc)
		rc = parse_seq_token(in, &have, &seq, err);
	if (rc)
		goto out;
	const char *arn = cbl_json_str_or_empty(in, "reportArn");
	/* local choices (the service documents no default): by file path, ascending */
	bool by_pct = !strcmp(cbl_json_str_or_empty(in, "sortBy"), "LINE_COVERAGE_PERCENTAGE");
	bool desc = !strcmp(cbl_json_str_or_empty(in, "sortOrder"), "DESCENDING");
	const char *dir = desc ? "DESC" : "ASC", *cmp = desc ? "<" : ">";
	if (have) {
		/* the token names a row of this report: the page goes on after it */
		sqlite3_stmt *q = NULL;
		rc = store_prepare(h->db, "SELECT 1 FROM code_coverages WHERE report_arn = ?1 AND seq = ?2", &q,
				   err);
		if (rc)
			goto out;
		sqlite3_bind_text(q, 1, arn, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, seq);
		int r = sqlite3_step(q);
		sqlite3_finalize(q);
		if (r != SQLITE_ROW) {
			rc = r == SQLITE_DONE ? bad_token(err)
					      : store_sql_error(h->db, err, "cannot read a code coverage");
			goto out;
		}
	}
	char sql[1024];
	const char *key = by_pct ? "ifnull(line_coverage_percentage, 0), file_path, seq" : "file_path, seq";
	snprintf(sql, sizeof(sql),
		 "SELECT seq, id, file_path, line_coverage_percentage, lines_covered, lines_missed,"
		 " branch_coverage_percentage, branches_covered, branches_missed, expired_ms"
		 " FROM code_coverages c WHERE report_arn = ?1"
		 " AND ifnull(line_coverage_percentage, 0) BETWEEN ?2 AND ?3"
		 " AND (NOT ?4 OR (%s) %s (SELECT %s FROM code_coverages WHERE report_arn = ?1 AND seq = ?5))"
		 " ORDER BY %s %s, %s LIMIT ?6",
		 key, cmp, key, by_pct ? "ifnull(line_coverage_percentage, 0)" : "file_path", dir,
		 by_pct ? (desc ? "file_path DESC, seq DESC" : "file_path, seq")
			: (desc ? "seq DESC" : "seq"));
	rc = store_prepare(h->db, sql, &st, err);
	if (rc)
		goto out;
	size_t page = page_size(in);
	sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 2, lo);
	sqlite3_bind_double(st, 3, hi);
	sqlite3_bind_int(st, 4, have);
	sqlite3_bind_int64(st, 5, seq);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)page + 1);
	rc = seq_page(h->db, st, "codeCoverages", page, coverage_row, arn, out, err);
out:
	sqlite3_finalize(st);
	json_decref(in);
	return rc;
}

/* ---------------------------------------------------------------- trend */

/* A trend value as text: whole numbers exactly, others with two decimals
 * (local choice: the service documents strings, not their format). */
static json_t *trend_text(double v)
{
	char buf[64];
	if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
		snprintf(buf, sizeof(buf), "%lld", (long long)v);
	else
		snprintf(buf, sizeof(buf), "%.2f", v);
	return json_string(buf);
}

/* The field's value in a Report, false when the report does not have it. */
static bool trend_value(const json_t *rep, const char *field, double *out)
{
	const json_t *ts = json_object_get(rep, "testSummary");
	const json_t *cs = json_object_get(rep, "codeCoverageSummary");
	static const struct {
		const char *field, *member;
		bool test;
	} map[] = {
		{"DURATION", "durationInNanoSeconds", true},
		{"TOTAL", "total", true},
		{"LINE_COVERAGE", "lineCoveragePercentage", false},
		{"LINES_COVERED", "linesCovered", false},
		{"LINES_MISSED", "linesMissed", false},
		{"BRANCH_COVERAGE", "branchCoveragePercentage", false},
		{"BRANCHES_COVERED", "branchesCovered", false},
		{"BRANCHES_MISSED", "branchesMissed", false},
	};
	if (!strcmp(field, "PASS_RATE")) {
		const json_t *total = json_object_get(ts, "total");
		const json_t *ok = json_object_get(json_object_get(ts, "statusCounts"), "SUCCEEDED");
		if (!json_is_number(total) || !json_number_value(total))
			return false;
		*out = (json_is_number(ok) ? json_number_value(ok) : 0) * 100.0 / json_number_value(total);
		return true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (strcmp(field, map[i].field))
			continue;
		const json_t *x = json_object_get(map[i].test ? ts : cs, map[i].member);
		if (!json_is_number(x))
			return false;
		*out = json_number_value(x);
		return true;
	}
	return false;
}

int store_op_get_report_group_trend(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	static const store_field f[] = {
		{"reportGroupArn", SF_STR, true, .min = 1},
		{"numOfReports", SF_INT, .min = 1, .max = 100},
		{"trendField", SF_STR, true, .enumv = trend_fields},
	};
	static const store_shape s = SHAPE(f);
	json_t *in = NULL, *raw = NULL;
	sqlite3_stmt *st = NULL;
	int rc = check(&s, req, &in, err);
	if (rc)
		return rc;
	const char *group = cbl_json_str_or_empty(in, "reportGroupArn"), *field = cbl_json_str_or_empty(in, "trendField");
	if (!row_exists(h->db, "SELECT 1 FROM report_groups WHERE arn = ?1", group, &rc, err)) {
		if (!rc)
			rc = group_not_found(group, err);
		goto out;
	}
	/* the most recent reports, newest first */
	rc = store_prepare(h->db,
			   "SELECT arn, record FROM reports WHERE report_group_arn = ?1"
			   " ORDER BY created_ms DESC, arn DESC LIMIT ?2",
			   &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	const json_t *num = json_object_get(in, "numOfReports");
	sqlite3_bind_int64(st, 2, num ? (sqlite3_int64)json_integer_value(num) : 100);
	raw = json_array();
	double sum = 0, lo = 0, hi = 0;
	size_t n = 0;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *rep = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
		double val;
		if (rep && trend_value(rep, field, &val)) {
			json_t *o = json_object();
			json_object_set_new(o, "reportArn", json_string((const char *)sqlite3_column_text(st, 0)));
			json_object_set_new(o, "data", trend_text(val));
			json_array_append_new(raw, o);
			sum += val;
			lo = n && lo < val ? lo : val;
			hi = n && hi > val ? hi : val;
			n++;
		}
		json_decref(rep);
	}
	if (r != SQLITE_DONE) {
		rc = store_sql_error(h->db, err, "cannot read reports");
		goto out;
	}
	json_t *stats = json_object();
	if (n) {
		json_object_set_new(stats, "average", trend_text(sum / (double)n));
		json_object_set_new(stats, "max", trend_text(hi));
		json_object_set_new(stats, "min", trend_text(lo));
	}
	*out = json_object();
	json_object_set_new(*out, "stats", stats);
	json_object_set(*out, "rawData", raw);
out:
	sqlite3_finalize(st);
	json_decref(raw);
	json_decref(in);
	return rc;
}
