/* Unit tests for store/reports.c: ingestion of a complete build's reports
 * (as runner/upload.c writes them), every report operation with its
 * pagination, filters and errors, the migration that backfills the reports
 * of stored builds, and reports outliving their build. */
#include "tests/unit/tap.h"
#include "artifacts/report.h"
#include "store/api.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/time.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CB STORE_TARGET_CODEBUILD
#define REGION_ACCT "arn:aws:codebuild:us-east-1:000000000000"

static char *new_home(const char *tag)
{
	char tmpl[] = "/tmp/test_store_reports.XXXXXX";
	char *d = mkdtemp(tmpl);
	if (!d)
		abort();
	return cbl_xasprintf("%s/%s", d, tag);
}

static void drop_home(char *home)
{
	char *parent = cbl_xstrdup(home);
	*strrchr(parent, '/') = '\0';
	cbl_error *e = NULL;
	cbl_rm_rf(parent, &e);
	cbl_error_free(e);
	free(parent);
	free(home);
}

static int64_t sql_int(const char *home, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	cbl_error *e = NULL;
	int64_t v = -1;
	if (store_db_open(home, 0, &db, &e)) {
		cbl_error_free(e);
		return -1;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static json_t *call(const char *home, const char *target, json_t *req, int *rc, char **msg)
{
	json_t *out = NULL;
	cbl_error *e = NULL;
	*rc = store_api_dispatch(home, target, req, &out, &e);
	if (msg)
		*msg = e ? cbl_xstrdup(e->msg) : NULL;
	cbl_error_free(e);
	json_decref(req);
	return out;
}

/* call() with a JSON text request */
static json_t *callf(const char *home, const char *target, int *rc, char **msg, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static json_t *callf(const char *home, const char *target, int *rc, char **msg, const char *fmt, ...)
{
	cbl_buf b = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	json_error_t je;
	json_t *req = json_loads(cbl_buf_cstr(&b), 0, &je);
	if (!req)
		printf("# bad request JSON: %s: %s\n", cbl_buf_cstr(&b), je.text);
	cbl_buf_release(&b);
	return call(home, target, req, rc, msg);
}

/* ---------------------------------------------------------------- fixtures */

static const char junit_xml[] =
	"<testsuites><testsuite name='suite1'>"
	"<testcase classname='app.Calc' name='test_add' time='0.5'/>"
	"<testcase classname='app.Calc' name='test_div' time='0.25'><failure message='division by zero'>"
	"trace</failure></testcase>"
	"<testcase classname='app.Other' name='test_skip'><skipped/></testcase>"
	"<testcase classname='app.Other' name='test_err'><error message='boom'/></testcase>"
	"<testcase classname='app.Calc' name='test_mul' time='1'/>"
	"</testsuite></testsuites>";

static const char junit_pass_xml[] =
	"<testsuites><testsuite name='suite1'>"
	"<testcase classname='app.Calc' name='test_add' time='0.5'/>"
	"<testcase classname='app.Calc' name='test_div' time='0.25'/>"
	"</testsuite></testsuites>";

/* a/x.py 50%, b/y.py 100% (1/2 branches), c/z.py 0%, d/w.py 75% */
static const char cobertura_xml[] =
	"<?xml version='1.0'?><coverage version='1'><packages><package name='p'><classes>"
	"<class name='x' filename='a/x.py'><lines><line number='1' hits='1'/><line number='2' hits='0'/>"
	"</lines></class>"
	"<class name='y' filename='b/y.py'><lines><line number='1' hits='2'/>"
	"<line number='2' hits='1' branch='true' condition-coverage='50% (1/2)'/></lines></class>"
	"<class name='z' filename='c/z.py'><lines><line number='1' hits='0'/></lines></class>"
	"<class name='w' filename='d/w.py'><lines><line number='1' hits='1'/><line number='2' hits='1'/>"
	"<line number='3' hits='1'/><line number='4' hits='0'/></lines></class>"
	"</classes></package></packages></coverage>";

static void write_wrapped(const char *dir, const char *file, const char *key, json_t *value)
{
	json_t *wrap = json_object();
	json_object_set(wrap, key, value);
	char *s = json_dumps(wrap, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	char *path = cbl_path_join(dir, file);
	cbl_error *e = NULL;
	if (cbl_write_file_atomic(path, s, strlen(s), 0644, false, &e))
		abort();
	json_decref(wrap);
	free(path);
	free(s);
}

/* Writes one report the way runner/upload.c does (report.json and
 * test-cases.json or code-coverages.json under <build dir>/reports/<group>/)
 * and returns its ARN (caller frees). */
static char *write_report(const char *build_dir, const char *build_arn, const char *group_arn,
			  spec_report_format fmt, const char *doc, int64_t created_us)
{
	artifacts_report rep;
	cbl_error *e = NULL;
	artifacts_report_init(&rep, fmt);
	if (artifacts_report_parse_buffer(&rep, fmt, doc, strlen(doc), fmt == SPEC_REPORT_JUNITXML ? "junit.xml" : "coverage.xml", &e)) {
		printf("# parse: %s\n", e->msg);
		abort();
	}
	const char *gname = strstr(group_arn, "report-group/") + strlen("report-group/");
	char uuid[37];
	cbl_uuid4(uuid);
	char *arn = cbl_xasprintf(REGION_ACCT ":report/%s:%s", gname, uuid);
	artifacts_report_meta meta = ARTIFACTS_REPORT_META_INIT;
	meta.arn = arn;
	meta.name = gname;
	meta.report_group_arn = group_arn;
	meta.execution_id = build_arn;
	meta.created_us = created_us;
	json_t *report = artifacts_report_to_json(&rep, &meta);
	char *dir = cbl_xasprintf("%s/reports/%s", build_dir, gname);
	if (cbl_mkdir_p(dir, 0755, &e))
		abort();
	json_t *arr = json_array();
	json_array_append_new(arr, report);
	write_wrapped(dir, "report.json", "reports", arr);
	json_decref(arr);
	if (rep.type == ARTIFACTS_REPORT_TEST) {
		json_t *cases = artifacts_report_test_cases_json(&rep, &meta);
		write_wrapped(dir, "test-cases.json", "testCases", cases);
		json_decref(cases);
	} else {
		json_t *cov = artifacts_report_coverages_json(&rep, &meta);
		write_wrapped(dir, "code-coverages.json", "codeCoverages", cov);
		json_decref(cov);
	}
	free(dir);
	artifacts_report_release(&rep);
	return arn;
}

typedef struct build {
	char uuid[37];
	char *id, *arn, *dir;
	json_t *record;
} build;

/* A build of the runner's record shape (trimmed), not yet saved. */
static void build_new(build *b, const char *home, const char *project, int64_t number, int64_t start_ms)
{
	cbl_error *e = NULL;
	cbl_uuid4(b->uuid);
	b->id = cbl_xasprintf("%s:%s", project, b->uuid);
	b->arn = cbl_xasprintf(REGION_ACCT ":build/%s", b->id);
	if (store_build_dir_create(home, project, b->uuid, &b->dir, &e))
		abort();
	b->record = json_pack("{s:s, s:s, s:I, s:o, s:o, s:s, s:s, s:s, s:{s:s, s:s}, s:b, s:[]}", "id", b->id,
			      "arn", b->arn, "buildNumber", (json_int_t)number, "startTime",
			      store_json_time(start_ms), "endTime", store_json_time(start_ms + 1000),
			      "currentPhase", "COMPLETED", "buildStatus", "SUCCEEDED", "projectName", project,
			      "source", "type", "NO_SOURCE", "location", "/src", "buildComplete", 1,
			      "reportArns");
}

static void build_add_arn(build *b, const char *arn)
{
	json_array_append_new(json_object_get(b->record, "reportArns"), json_string(arn));
}

static int build_save(build *b, bool complete)
{
	cbl_error *e = NULL;
	json_object_set_new(b->record, "buildComplete", json_boolean(complete));
	int rc = store_build_save(b->dir, b->record, false, &e);
	if (rc)
		printf("# save: %s\n", e->msg);
	cbl_error_free(e);
	return rc;
}

static void build_free(build *b)
{
	free(b->id);
	free(b->arn);
	free(b->dir);
	json_decref(b->record);
}

static const char *str_at(json_t *o, const char *list, size_t i)
{
	return json_string_value(json_array_get(json_object_get(o, list), i));
}

static size_t size_of(json_t *o, const char *list) { return json_array_size(json_object_get(o, list)); }

/* ---------------------------------------------------------------- ingest */

static void test_ingest(void)
{
	char *home = new_home("ingest");
	build b;
	int rc;
	char *msg = NULL;
	build_new(&b, home, "app", 1, 1700000000000);
	const char *ug = REGION_ACCT ":report-group/app-unit", *cg = REGION_ACCT ":report-group/app-cov";
	char *ua = write_report(b.dir, b.arn, ug, SPEC_REPORT_JUNITXML, junit_xml, 1700000000100000);
	char *ca = write_report(b.dir, b.arn, cg, SPEC_REPORT_COBERTURAXML, cobertura_xml, 1700000000200000);
	build_add_arn(&b, ua);
	build_add_arn(&b, ca);

	is_int(build_save(&b, false), 0, "a running build's record is saved");
	is_int(sql_int(home, "SELECT count(*) FROM reports"), 0, "nothing ingested while the build runs");
	is_int(build_save(&b, true), 0, "the complete record is saved");
	is_int(sql_int(home, "SELECT count(*) FROM report_groups"), 2, "two report groups");
	is_int(sql_int(home, "SELECT count(*) FROM reports"), 2, "two reports");
	is_int(sql_int(home, "SELECT count(*) FROM test_cases"), 5, "five test cases");
	is_int(sql_int(home, "SELECT count(*) FROM code_coverages"), 4, "four files of coverage");
	is_int(build_save(&b, true), 0, "saved complete again");
	is_int(sql_int(home, "SELECT count(*) FROM test_cases") + sql_int(home, "SELECT count(*) FROM reports"),
	       7, "a second ingestion replaces, never duplicates");

	/* what BatchGetReports returns is the runner's Report, as written */
	json_t *out = callf(home, CB "BatchGetReports", &rc, &msg, "{\"reportArns\": [\"%s\", \"%s\", \"%s\", \"nope\"]}",
			    ca, ua, ca);
	is_int(rc, 0, "BatchGetReports: %s", msg ? msg : "ok");
	is_int(size_of(out, "reports"), 2, "both reports, a repeated ARN once");
	is_str(str_at(out, "reportsNotFound", 0), "nope", "an unknown ARN is not found");
	json_t *cov = json_array_get(json_object_get(out, "reports"), 0);
	json_t *unit = json_array_get(json_object_get(out, "reports"), 1);
	char *path = cbl_xasprintf("%s/reports/app-unit/report.json", b.dir);
	json_t *disk = json_load_file(path, 0, NULL);
	ok(json_equal(unit, json_array_get(json_object_get(disk, "reports"), 0)), "the Report as the runner wrote it");
	json_decref(disk);
	free(path);
	is_str(json_string_value(json_object_get(unit, "status")), "FAILED", "the unit report FAILED");
	is_int(json_integer_value(json_object_get(json_object_get(unit, "testSummary"), "total")), 5, "testSummary.total");
	is_str(json_string_value(json_object_get(unit, "executionId")), b.arn, "executionId is the build's ARN");
	ok(json_is_real(json_object_get(cov, "created")), "created is an epoch-second number");
	ok(json_object_get(cov, "codeCoverageSummary") && !json_object_get(cov, "testSummary"),
	   "a coverage report has codeCoverageSummary");
	json_decref(out);
	free(msg);

	/* BatchGetReportGroups */
	out = callf(home, CB "BatchGetReportGroups", &rc, &msg, "{\"reportGroupArns\": [\"%s\", \"%s:x\"]}", ug, ug);
	is_int(rc, 0, "BatchGetReportGroups");
	json_t *g = json_array_get(json_object_get(out, "reportGroups"), 0);
	is_str(json_string_value(json_object_get(g, "name")), "app-unit", "the group is <project>-<name>");
	is_str(json_string_value(json_object_get(g, "type")), "TEST", "its type");
	is_str(json_string_value(json_object_get(g, "status")), "ACTIVE", "ACTIVE");
	is_str(json_string_value(json_object_get(json_object_get(g, "exportConfig"), "exportConfigType")), "NO_EXPORT",
	       "NO_EXPORT");
	ok(json_is_array(json_object_get(g, "tags")) && json_equal(json_object_get(g, "created"), json_object_get(g, "lastModified")),
	   "tags [], lastModified = created");
	is_int(store_json_time_ms(json_object_get(g, "created")), 1700000000100,
	       "created by the first report");
	is_int(size_of(out, "reportGroupsNotFound"), 1, "an unknown group is not found");
	json_decref(out);
	free(msg);

	/* the build's directory goes, the reports stay (as on the service) */
	out = callf(home, CB "BatchDeleteBuilds", &rc, NULL, "{\"ids\": [\"%s\"]}", b.id);
	is_int(size_of(out, "buildsDeleted"), 1, "the build is deleted");
	json_decref(out);
	ok(access(b.dir, F_OK) < 0, "with its directory");
	out = callf(home, CB "BatchGetReports", &rc, NULL, "{\"reportArns\": [\"%s\"]}", ua);
	is_int(size_of(out, "reports"), 1, "its report is still there");
	json_decref(out);
	out = callf(home, CB "DescribeTestCases", &rc, NULL, "{\"reportArn\": \"%s\"}", ua);
	is_int(size_of(out, "testCases"), 5, "with its test cases");
	json_decref(out);
	out = callf(home, CB "DeleteProject", &rc, NULL, "{\"name\": \"app\"}");
	json_decref(out);
	out = callf(home, CB "ListReportGroups", &rc, NULL, "{}");
	is_int(size_of(out, "reportGroups"), 2, "the groups outlive their project");
	json_decref(out);

	free(ua);
	free(ca);
	build_free(&b);
	drop_home(home);
}

static void test_ingest_skips(void)
{
	char *home = new_home("skips");
	build b;
	int rc;
	build_new(&b, home, "odd", 1, 1700000000000);
	const char *g1 = REGION_ACCT ":report-group/odd-a", *g2 = REGION_ACCT ":report-group/odd-b";
	char *listed = write_report(b.dir, b.arn, g1, SPEC_REPORT_JUNITXML, junit_xml, 1700000000100000);
	char *unlisted = write_report(b.dir, b.arn, g2, SPEC_REPORT_JUNITXML, junit_xml, 1700000000200000);
	build_add_arn(&b, listed);
	/* a damaged report.json and a stray file */
	char *bad = cbl_xasprintf("%s/reports/odd-c", b.dir);
	cbl_error *e = NULL;
	cbl_mkdir_p(bad, 0755, &e);
	char *badf = cbl_path_join(bad, "report.json");
	cbl_write_file_atomic(badf, "{\"reports\": [{\"arn\": ", 20, 0644, false, &e);
	build_add_arn(&b, REGION_ACCT ":report/odd-c:1234");
	char *stray = cbl_xasprintf("%s/reports/README", b.dir);
	cbl_write_file_atomic(stray, "x", 1, 0644, false, &e);
	is_int(build_save(&b, true), 0, "a build with a damaged report is saved");
	is_int(sql_int(home, "SELECT count(*) FROM builds WHERE complete = 1"), 1, "its record is complete");
	json_t *out = callf(home, CB "BatchGetReports", &rc, NULL, "{\"reportArns\": [\"%s\", \"%s\", \"%s\"]}",
			    listed, unlisted, REGION_ACCT ":report/odd-c:1234");
	is_int(size_of(out, "reports"), 1, "only the listed, readable report");
	is_int(size_of(out, "reportsNotFound"), 2, "a report the record does not list, and a damaged one, are not found");
	json_decref(out);

	/* a group named by ARN in a buildspec: its ARN and name are kept, and a
	 * group of the same name elsewhere is another group */
	build c;
	build_new(&c, home, "odd", 2, 1700000001000);
	const char *far = "arn:aws:codebuild:eu-west-1:111111111111:report-group/odd-a";
	char *fa = write_report(c.dir, c.arn, far, SPEC_REPORT_JUNITXML, junit_pass_xml, 1700000001100000);
	build_add_arn(&c, fa);
	is_int(build_save(&c, true), 0, "a build reporting to a group named by ARN");
	is_int(sql_int(home, "SELECT count(*) FROM report_groups WHERE name = 'odd-a'"), 2,
	       "two groups may share a name");
	out = callf(home, CB "ListReportsForReportGroup", &rc, NULL, "{\"reportGroupArn\": \"%s\"}", far);
	is_int(rc, 0, "that group lists its report");
	is_str(str_at(out, "reports", 0), fa, "the report");
	json_decref(out);

	cbl_error_free(e);
	free(bad);
	free(badf);
	free(stray);
	free(listed);
	free(unlisted);
	free(fa);
	build_free(&b);
	build_free(&c);
	drop_home(home);
}

/* ---------------------------------------------------------------- lists */

typedef struct world {
	char *home;
	char *unit[3]; /* app-unit reports, oldest first: FAILED, SUCCEEDED, FAILED */
	char *cov;
	char *zeta; /* zeta-unit, created before everything else */
} world;

static void world_make(world *w)
{
	w->home = new_home("world");
	build z;
	build_new(&z, w->home, "zeta", 1, 1600000000000);
	w->zeta = write_report(z.dir, z.arn, REGION_ACCT ":report-group/zeta-unit", SPEC_REPORT_JUNITXML,
			       junit_pass_xml, 1600000000100000);
	build_add_arn(&z, w->zeta);
	build_save(&z, true);
	build_free(&z);
	for (int i = 0; i < 3; i++) {
		build b;
		build_new(&b, w->home, "app", i + 1, 1700000000000 + i * 10000);
		w->unit[i] = write_report(b.dir, b.arn, REGION_ACCT ":report-group/app-unit", SPEC_REPORT_JUNITXML,
					  i == 1 ? junit_pass_xml : junit_xml, (1700000000000 + i * 10000 + 100) * 1000);
		build_add_arn(&b, w->unit[i]);
		if (i == 2) {
			w->cov = write_report(b.dir, b.arn, REGION_ACCT ":report-group/app-cov",
					      SPEC_REPORT_COBERTURAXML, cobertura_xml,
					      (1700000000000 + i * 10000 + 200) * 1000);
			build_add_arn(&b, w->cov);
		}
		build_save(&b, true);
		build_free(&b);
	}
}

static void world_free(world *w)
{
	for (int i = 0; i < 3; i++)
		free(w->unit[i]);
	free(w->cov);
	free(w->zeta);
	drop_home(w->home);
}

/* Every page of a list operation, merged; *pages gets the number of calls. */
static json_t *all_pages(const char *home, const char *target, const char *req_json, const char *member,
			 int *pages)
{
	json_t *req = json_loads(req_json, 0, NULL), *all = json_array();
	*pages = 0;
	for (;;) {
		int rc;
		json_t *out = call(home, target, json_deep_copy(req), &rc, NULL);
		(*pages)++;
		if (rc || *pages > 50) {
			json_decref(out);
			break;
		}
		json_array_extend(all, json_object_get(out, member));
		json_t *tok = json_object_get(out, "nextToken");
		if (!tok) {
			json_decref(out);
			break;
		}
		json_object_set(req, "nextToken", tok);
		json_decref(out);
	}
	json_decref(req);
	return all;
}

static void test_list_report_groups(world *w)
{
	const char *unit = REGION_ACCT ":report-group/app-unit", *cov = REGION_ACCT ":report-group/app-cov";
	const char *zeta = REGION_ACCT ":report-group/zeta-unit";
	int rc, pages;
	char *msg = NULL;
	json_t *out = callf(w->home, CB "ListReportGroups", &rc, &msg, "{}");
	is_int(rc, 0, "ListReportGroups");
	ok(size_of(out, "reportGroups") == 3 && !strcmp(str_at(out, "reportGroups", 0), cov) &&
		   !strcmp(str_at(out, "reportGroups", 1), unit) && !strcmp(str_at(out, "reportGroups", 2), zeta),
	   "by name, ascending, by default");
	ok(!json_object_get(out, "nextToken"), "one page, no nextToken");
	json_decref(out);
	out = callf(w->home, CB "ListReportGroups", &rc, NULL, "{\"sortBy\": \"NAME\", \"sortOrder\": \"DESCENDING\"}");
	is_str(str_at(out, "reportGroups", 0), zeta, "NAME DESCENDING");
	json_decref(out);
	out = callf(w->home, CB "ListReportGroups", &rc, NULL, "{\"sortBy\": \"CREATED_TIME\"}");
	ok(!strcmp(str_at(out, "reportGroups", 0), zeta) && !strcmp(str_at(out, "reportGroups", 1), unit) &&
		   !strcmp(str_at(out, "reportGroups", 2), cov),
	   "CREATED_TIME ascending");
	json_decref(out);
	out = callf(w->home, CB "ListReportGroups", &rc, NULL,
		    "{\"sortBy\": \"LAST_MODIFIED_TIME\", \"sortOrder\": \"DESCENDING\"}");
	is_str(str_at(out, "reportGroups", 0), cov, "LAST_MODIFIED_TIME descending");
	json_decref(out);

	static const char *const reqs[] = {
		"{\"maxResults\": 1}",
		"{\"maxResults\": 2, \"sortOrder\": \"DESCENDING\"}",
		"{\"maxResults\": 1, \"sortBy\": \"CREATED_TIME\", \"sortOrder\": \"DESCENDING\"}",
		"{\"maxResults\": 2, \"sortBy\": \"LAST_MODIFIED_TIME\"}",
	};
	static const int want_pages[] = {3, 2, 3, 2};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(*reqs); i++) {
		json_t *one = callf(w->home, CB "ListReportGroups", &rc, NULL, "%s", reqs[i]);
		json_t *req = json_loads(reqs[i], 0, NULL);
		json_object_del(req, "maxResults");
		char *unpaged = json_dumps(req, JSON_COMPACT);
		json_t *full = callf(w->home, CB "ListReportGroups", &rc, NULL, "%s", unpaged);
		json_t *merged = all_pages(w->home, CB "ListReportGroups", reqs[i], "reportGroups", &pages);
		ok(json_is_string(json_object_get(one, "nextToken")), "%s: a first page has a nextToken", reqs[i]);
		ok(json_equal(merged, json_object_get(full, "reportGroups")) && pages == want_pages[i],
		   "%s: the pages (%d) make the whole list", reqs[i], pages);
		json_decref(one);
		json_decref(full);
		json_decref(merged);
		json_decref(req);
		free(unpaged);
	}

	static const struct {
		const char *req, *want;
	} bad[] = {
		{"{\"sortBy\": \"SIZE\"}", "Member must satisfy enum value set: [NAME, CREATED_TIME, LAST_MODIFIED_TIME]"},
		{"{\"sortOrder\": \"UP\"}", "at 'sortOrder' failed to satisfy constraint"},
		{"{\"maxResults\": 0}", "Member must have value greater than or equal to 1"},
		{"{\"maxResults\": 101}", "Member must have value less than or equal to 100"},
		{"{\"nextToken\": \"garbage\"}", "Invalid next token"},
		{"{\"nextToken\": \"0.arn:aws:codebuild:x:y:project/p\"}", "Invalid next token"},
		{"{\"nextToken\": 7}", "Member must be a string"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		out = callf(w->home, CB "ListReportGroups", &rc, &msg, "%s", bad[i].req);
		ok(rc == CBL_EINVAL && msg && strstr(msg, bad[i].want), "%s: InvalidInput (%s)", bad[i].req,
		   msg ? msg : "");
		free(msg);
		msg = NULL;
		json_decref(out);
	}
}

static void test_list_reports(world *w)
{
	const char *unit = REGION_ACCT ":report-group/app-unit";
	int rc, pages;
	char *msg = NULL;
	json_t *out = callf(w->home, CB "ListReports", &rc, &msg, "{}");
	is_int(rc, 0, "ListReports");
	ok(size_of(out, "reports") == 5 && !strcmp(str_at(out, "reports", 0), w->cov) &&
		   !strcmp(str_at(out, "reports", 4), w->zeta),
	   "every report, newest first");
	json_decref(out);
	out = callf(w->home, CB "ListReports", &rc, NULL, "{\"sortOrder\": \"ASCENDING\", \"filter\": {\"status\": \"SUCCEEDED\"}}");
	ok(size_of(out, "reports") == 3 && !strcmp(str_at(out, "reports", 0), w->zeta) &&
		   !strcmp(str_at(out, "reports", 1), w->unit[1]) && !strcmp(str_at(out, "reports", 2), w->cov),
	   "filter status SUCCEEDED, oldest first");
	json_decref(out);
	json_t *merged = all_pages(w->home, CB "ListReports", "{\"maxResults\": 2}", "reports", &pages);
	ok(json_array_size(merged) == 5 && pages == 3, "pages of 2: 3 calls, 5 reports");
	json_decref(merged);

	out = callf(w->home, CB "ListReportsForReportGroup", &rc, &msg, "{\"reportGroupArn\": \"%s\"}", unit);
	is_int(rc, 0, "ListReportsForReportGroup: %s", msg ? msg : "ok");
	ok(size_of(out, "reports") == 3 && !strcmp(str_at(out, "reports", 0), w->unit[2]) &&
		   !strcmp(str_at(out, "reports", 2), w->unit[0]),
	   "the group's reports, newest first");
	json_decref(out);
	free(msg);
	msg = NULL;
	out = callf(w->home, CB "ListReportsForReportGroup", &rc, NULL,
		    "{\"reportGroupArn\": \"%s\", \"sortOrder\": \"ASCENDING\", \"filter\": {\"status\": \"FAILED\"}}", unit);
	ok(size_of(out, "reports") == 2 && !strcmp(str_at(out, "reports", 0), w->unit[0]) &&
		   !strcmp(str_at(out, "reports", 1), w->unit[2]),
	   "filter status FAILED, ascending");
	json_decref(out);
	char *req = cbl_xasprintf("{\"reportGroupArn\": \"%s\", \"sortOrder\": \"ASCENDING\", \"maxResults\": 1}", unit);
	merged = all_pages(w->home, CB "ListReportsForReportGroup", req, "reports", &pages);
	ok(json_array_size(merged) == 3 && pages == 3 && !strcmp(json_string_value(json_array_get(merged, 0)), w->unit[0]) &&
		   !strcmp(json_string_value(json_array_get(merged, 2)), w->unit[2]),
	   "pages of one, in order");
	json_decref(merged);
	free(req);

	out = callf(w->home, CB "ListReportsForReportGroup", &rc, &msg, "{\"reportGroupArn\": \"%s-nope\"}", unit);
	ok(rc == CBL_ENOENT && msg && strstr(msg, "app-unit-nope"), "an unknown group: ResourceNotFound (%s)",
	   msg ? msg : "");
	is_str(store_api_error_type(CB "ListReportsForReportGroup", rc), "ResourceNotFoundException", "its __type");
	json_decref(out);
	free(msg);
	msg = NULL;
	out = callf(w->home, CB "ListReportsForReportGroup", &rc, &msg, "{}");
	ok(rc == CBL_EINVAL && msg && strstr(msg, "'reportGroupArn' failed to satisfy constraint: Member must not be null"),
	   "reportGroupArn is required (%s)", msg ? msg : "");
	json_decref(out);
	free(msg);
	msg = NULL;
	out = callf(w->home, CB "ListReports", &rc, &msg, "{\"filter\": {\"status\": \"BROKEN\"}}");
	ok(rc == CBL_EINVAL && msg && strstr(msg, "filter.status"), "filter.status is an enum (%s)", msg ? msg : "");
	json_decref(out);
	free(msg);
}

static void test_batch_get_errors(world *w)
{
	int rc;
	char *msg = NULL;
	static const char *const bad[] = {
		"{}", "{\"reportArns\": []}", "{\"reportArns\": [\"\"]}", "{\"reportArns\": \"x\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		json_t *out = callf(w->home, CB "BatchGetReports", &rc, &msg, "%s", bad[i]);
		ok(rc == CBL_EINVAL && msg && strstr(msg, "reportArns"), "BatchGetReports %s: InvalidInput (%s)", bad[i],
		   msg ? msg : "");
		json_decref(out);
		free(msg);
		msg = NULL;
	}
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_puts(&b, "{\"reportGroupArns\": [");
	for (int i = 0; i < 101; i++)
		cbl_buf_printf(&b, "%s\"g%d\"", i ? ", " : "", i);
	cbl_buf_puts(&b, "]}");
	json_t *out = callf(w->home, CB "BatchGetReportGroups", &rc, &msg, "%s", cbl_buf_cstr(&b));
	ok(rc == CBL_EINVAL && msg && strstr(msg, "less than or equal to 100"), "101 ARNs: InvalidInput (%s)",
	   msg ? msg : "");
	json_decref(out);
	free(msg);
	cbl_buf_release(&b);
}

/* ---------------------------------------------------------------- details */

static const char *case_field(json_t *out, size_t i, const char *k)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(out, "testCases"), i), k));
}

static void test_describe_test_cases(world *w)
{
	int rc, pages;
	char *msg = NULL;
	const char *arn = w->unit[0];
	json_t *out = callf(w->home, CB "DescribeTestCases", &rc, &msg, "{\"reportArn\": \"%s\"}", arn);
	is_int(rc, 0, "DescribeTestCases: %s", msg ? msg : "ok");
	is_int(size_of(out, "testCases"), 5, "every case");
	ok(!strcmp(case_field(out, 0, "status"), "FAILED") && !strcmp(case_field(out, 1, "status"), "ERROR"),
	   "failed cases first, then errors (the report's order)");
	json_t *c = json_array_get(json_object_get(out, "testCases"), 0);
	is_str(json_string_value(json_object_get(c, "reportArn")), arn, "reportArn");
	is_str(json_string_value(json_object_get(c, "prefix")), "app.Calc", "prefix");
	is_str(json_string_value(json_object_get(c, "name")), "test_div", "name");
	is_int(json_integer_value(json_object_get(c, "durationInNanoSeconds")), 250000000, "durationInNanoSeconds");
	ok(strstr(json_string_value(json_object_get(c, "message")), "division by zero") != NULL, "message");
	is_str(json_string_value(json_object_get(c, "testRawDataPath")), "junit.xml", "testRawDataPath");
	is_str(json_string_value(json_object_get(c, "testSuiteName")), "suite1", "testSuiteName");
	ok(json_is_real(json_object_get(c, "expired")), "expired is an epoch-second number");
	static const char *const order[] = {"reportArn", "testRawDataPath", "prefix", "name", "status",
					    "durationInNanoSeconds", "message", "expired", "testSuiteName"};
	void *it = json_object_iter(c);
	bool in_order = true;
	for (size_t i = 0; i < sizeof(order) / sizeof(*order); i++, it = json_object_iter_next(c, it))
		in_order = in_order && it && !strcmp(json_object_iter_key(it), order[i]);
	ok(in_order, "members in the model's order");
	ok(!json_object_get(json_array_get(json_object_get(out, "testCases"), 4), "message"),
	   "a passing case has no message");
	json_decref(out);
	free(msg);
	msg = NULL;

	out = callf(w->home, CB "DescribeTestCases", &rc, NULL, "{\"reportArn\": \"%s\", \"filter\": {\"status\": \"SUCCEEDED\"}}", arn);
	ok(size_of(out, "testCases") == 2 && !strcmp(case_field(out, 0, "name"), "test_add") &&
		   !strcmp(case_field(out, 1, "name"), "test_mul"),
	   "filter status SUCCEEDED");
	json_decref(out);
	out = callf(w->home, CB "DescribeTestCases", &rc, NULL, "{\"reportArn\": \"%s\", \"filter\": {\"keyword\": \"Other\"}}", arn);
	is_int(size_of(out, "testCases"), 2, "keyword in the prefix");
	json_decref(out);
	out = callf(w->home, CB "DescribeTestCases", &rc, NULL,
		    "{\"reportArn\": \"%s\", \"filter\": {\"keyword\": \"_a\", \"status\": \"SUCCEEDED\"}}", arn);
	ok(size_of(out, "testCases") == 1 && !strcmp(case_field(out, 0, "name"), "test_add"),
	   "keyword in the name, with a status");
	json_decref(out);
	out = callf(w->home, CB "DescribeTestCases", &rc, NULL, "{\"reportArn\": \"%s\", \"filter\": {\"keyword\": \"other\"}}", arn);
	is_int(size_of(out, "testCases"), 0, "keywords are case-sensitive");
	json_decref(out);

	char *req = cbl_xasprintf("{\"reportArn\": \"%s\", \"maxResults\": 2}", arn);
	json_t *merged = all_pages(w->home, CB "DescribeTestCases", req, "testCases", &pages);
	json_t *full = callf(w->home, CB "DescribeTestCases", &rc, NULL, "{\"reportArn\": \"%s\"}", arn);
	ok(json_equal(merged, json_object_get(full, "testCases")) && pages == 3, "pages of 2 make the whole list (%d calls)",
	   pages);
	json_decref(merged);
	json_decref(full);
	free(req);
	req = cbl_xasprintf("{\"reportArn\": \"%s\", \"maxResults\": 1, \"filter\": {\"status\": \"SUCCEEDED\"}}", arn);
	merged = all_pages(w->home, CB "DescribeTestCases", req, "testCases", &pages);
	ok(json_array_size(merged) == 2 && pages == 2, "a filtered list pages too");
	json_decref(merged);
	free(req);

	out = callf(w->home, CB "DescribeTestCases", &rc, &msg, "{\"reportArn\": \"%s:nope\"}", arn);
	ok(rc == CBL_ENOENT && msg && strstr(msg, ":nope"), "an unknown report: ResourceNotFound (%s)", msg ? msg : "");
	json_decref(out);
	free(msg);
	msg = NULL;
	out = callf(w->home, CB "DescribeTestCases", &rc, NULL, "{\"reportArn\": \"%s\"}", w->cov);
	ok(rc == 0 && size_of(out, "testCases") == 0, "a coverage report has no test cases");
	json_decref(out);
	static const struct {
		const char *extra, *want;
	} bad[] = {
		{"\"filter\": {\"status\": \"PASSED\"}", "filter.status"},
		{"\"nextToken\": \"x\"", "Invalid next token"},
		{"\"nextToken\": \"-3\"", "Invalid next token"},
		{"\"maxResults\": 500", "less than or equal to 100"},
		{"\"filter\": {\"keyword\": 3}", "filter.keyword"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		out = callf(w->home, CB "DescribeTestCases", &rc, &msg, "{\"reportArn\": \"%s\", %s}", arn, bad[i].extra);
		ok(rc == CBL_EINVAL && msg && strstr(msg, bad[i].want), "%s: InvalidInput (%s)", bad[i].extra,
		   msg ? msg : "");
		json_decref(out);
		free(msg);
		msg = NULL;
	}
	out = callf(w->home, CB "DescribeTestCases", &rc, &msg, "{}");
	ok(rc == CBL_EINVAL && msg && strstr(msg, "reportArn"), "reportArn is required");
	json_decref(out);
	free(msg);
}

static const char *cov_path(json_t *out, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(out, "codeCoverages"), i), "filePath"));
}

static char *paths(json_t *out)
{
	cbl_buf b = CBL_BUF_INIT;
	for (size_t i = 0; i < size_of(out, "codeCoverages"); i++)
		cbl_buf_printf(&b, "%s%s", i ? " " : "", cov_path(out, i));
	return cbl_buf_detach(&b);
}

static void test_describe_code_coverages(world *w)
{
	int rc, pages;
	char *msg = NULL, *p;
	const char *arn = w->cov;
	static const struct {
		const char *extra, *want;
	} cases[] = {
		{"", "a/x.py b/y.py c/z.py d/w.py"},
		{", \"sortOrder\": \"DESCENDING\"", "d/w.py c/z.py b/y.py a/x.py"},
		{", \"sortBy\": \"LINE_COVERAGE_PERCENTAGE\"", "c/z.py a/x.py d/w.py b/y.py"},
		{", \"sortBy\": \"LINE_COVERAGE_PERCENTAGE\", \"sortOrder\": \"DESCENDING\"", "b/y.py d/w.py a/x.py c/z.py"},
		{", \"minLineCoveragePercentage\": 50", "a/x.py b/y.py d/w.py"},
		{", \"minLineCoveragePercentage\": 50.5, \"maxLineCoveragePercentage\": 99.9", "d/w.py"},
		{", \"maxLineCoveragePercentage\": 0", "c/z.py"},
		{", \"minLineCoveragePercentage\": 80, \"maxLineCoveragePercentage\": 20", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		json_t *out = callf(w->home, CB "DescribeCodeCoverages", &rc, &msg, "{\"reportArn\": \"%s\"%s}", arn,
				    cases[i].extra);
		p = paths(out);
		ok(rc == 0 && !strcmp(p, cases[i].want), "{%s}: %s", cases[i].extra, p);
		free(p);
		free(msg);
		msg = NULL;
		/* the same in pages of one */
		char *req = cbl_xasprintf("{\"reportArn\": \"%s\", \"maxResults\": 1%s}", arn, cases[i].extra);
		json_t *merged = all_pages(w->home, CB "DescribeCodeCoverages", req, "codeCoverages", &pages);
		ok(json_equal(merged, json_object_get(out, "codeCoverages")) &&
			   pages == (int)(json_array_size(merged) ? json_array_size(merged) : 1),
		   "{%s}: pages of one (%d calls)", cases[i].extra, pages);
		json_decref(merged);
		free(req);
		json_decref(out);
	}
	json_t *out = callf(w->home, CB "DescribeCodeCoverages", &rc, NULL, "{\"reportArn\": \"%s\"}", arn);
	json_t *y = json_array_get(json_object_get(out, "codeCoverages"), 1);
	static const char *const order[] = {"id", "reportARN", "filePath", "lineCoveragePercentage", "linesCovered",
					    "linesMissed", "branchCoveragePercentage", "branchesCovered",
					    "branchesMissed", "expired"};
	void *it = json_object_iter(y);
	bool in_order = true;
	for (size_t i = 0; i < sizeof(order) / sizeof(*order); i++, it = json_object_iter_next(y, it))
		in_order = in_order && it && !strcmp(json_object_iter_key(it), order[i]);
	ok(in_order, "members in the model's order");
	ok(json_real_value(json_object_get(y, "lineCoveragePercentage")) == 100.0 &&
		   json_integer_value(json_object_get(y, "linesCovered")) == 2 &&
		   json_real_value(json_object_get(y, "branchCoveragePercentage")) == 50.0 &&
		   json_integer_value(json_object_get(y, "branchesCovered")) == 1 &&
		   json_integer_value(json_object_get(y, "branchesMissed")) == 1,
	   "b/y.py's numbers");
	is_str(json_string_value(json_object_get(y, "reportARN")), arn, "reportARN");
	json_decref(out);

	out = callf(w->home, CB "DescribeCodeCoverages", &rc, NULL, "{\"reportArn\": \"%s:nope\"}", arn);
	ok(rc == 0 && size_of(out, "codeCoverages") == 0, "an unknown report: an empty list");
	json_decref(out);
	static const struct {
		const char *extra, *want;
	} bad[] = {
		{"\"minLineCoveragePercentage\": 101", "less than or equal to 100"},
		{"\"maxLineCoveragePercentage\": -1", "greater than or equal to 0"},
		{"\"minLineCoveragePercentage\": \"50\"", "Member must be a number"},
		{"\"sortBy\": \"NAME\"", "[LINE_COVERAGE_PERCENTAGE, FILE_PATH]"},
		{"\"nextToken\": \"99\"", "Invalid next token"},
		{"\"nextToken\": \"1.5\"", "Invalid next token"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		out = callf(w->home, CB "DescribeCodeCoverages", &rc, &msg, "{\"reportArn\": \"%s\", %s}", arn,
			    bad[i].extra);
		ok(rc == CBL_EINVAL && msg && strstr(msg, bad[i].want), "%s: InvalidInput (%s)", bad[i].extra,
		   msg ? msg : "");
		json_decref(out);
		free(msg);
		msg = NULL;
	}
	out = callf(w->home, CB "DescribeCodeCoverages", &rc, &msg, "{\"reportArn\": \"\"}");
	ok(rc == CBL_EINVAL && msg && strstr(msg, "greater than or equal to 1"), "an empty reportArn (%s)",
	   msg ? msg : "");
	json_decref(out);
	free(msg);
}

static void test_trend(world *w)
{
	int rc;
	char *msg = NULL;
	const char *unit = REGION_ACCT ":report-group/app-unit", *cov = REGION_ACCT ":report-group/app-cov";
	json_t *out = callf(w->home, CB "GetReportGroupTrend", &rc, &msg,
			    "{\"reportGroupArn\": \"%s\", \"trendField\": \"PASS_RATE\"}", unit);
	is_int(rc, 0, "GetReportGroupTrend: %s", msg ? msg : "ok");
	json_t *stats = json_object_get(out, "stats"), *raw = json_object_get(out, "rawData");
	/* 2/5, 2/2, 2/5 passed */
	is_str(json_string_value(json_object_get(stats, "average")), "60", "average pass rate");
	is_str(json_string_value(json_object_get(stats, "max")), "100", "max");
	is_str(json_string_value(json_object_get(stats, "min")), "40", "min");
	ok(json_array_size(raw) == 3 &&
		   !strcmp(json_string_value(json_object_get(json_array_get(raw, 0), "reportArn")), w->unit[2]) &&
		   !strcmp(json_string_value(json_object_get(json_array_get(raw, 1), "data")), "100"),
	   "rawData, newest first");
	json_decref(out);
	free(msg);
	msg = NULL;
	out = callf(w->home, CB "GetReportGroupTrend", &rc, NULL,
		    "{\"reportGroupArn\": \"%s\", \"trendField\": \"TOTAL\", \"numOfReports\": 2}", unit);
	ok(json_array_size(json_object_get(out, "rawData")) == 2 &&
		   !strcmp(json_string_value(json_object_get(json_object_get(out, "stats"), "average")), "3.50"),
	   "numOfReports: the two most recent (average 3.50 tests)");
	json_decref(out);
	out = callf(w->home, CB "GetReportGroupTrend", &rc, NULL,
		    "{\"reportGroupArn\": \"%s\", \"trendField\": \"LINE_COVERAGE\"}", cov);
	/* 1+2+0+3 of 2+2+1+4 lines */
	is_str(json_string_value(json_object_get(json_object_get(out, "stats"), "max")), "66.67", "line coverage");
	json_decref(out);
	out = callf(w->home, CB "GetReportGroupTrend", &rc, NULL,
		    "{\"reportGroupArn\": \"%s\", \"trendField\": \"LINE_COVERAGE\"}", unit);
	ok(rc == 0 && json_object_size(json_object_get(out, "stats")) == 0 &&
		   json_array_size(json_object_get(out, "rawData")) == 0,
	   "a field the group's reports lack: empty");
	json_decref(out);
	out = callf(w->home, CB "GetReportGroupTrend", &rc, &msg, "{\"reportGroupArn\": \"%s\"}", unit);
	ok(rc == CBL_EINVAL && msg && strstr(msg, "trendField"), "trendField is required (%s)", msg ? msg : "");
	json_decref(out);
	free(msg);
	msg = NULL;
	out = callf(w->home, CB "GetReportGroupTrend", &rc, &msg,
		    "{\"reportGroupArn\": \"%s\", \"trendField\": \"SPEED\"}", unit);
	ok(rc == CBL_EINVAL && msg && strstr(msg, "PASS_RATE"), "trendField is an enum");
	json_decref(out);
	free(msg);
	msg = NULL;
	out = callf(w->home, CB "GetReportGroupTrend", &rc, &msg,
		    "{\"reportGroupArn\": \"%sx\", \"trendField\": \"TOTAL\"}", unit);
	ok(rc == CBL_ENOENT, "an unknown group: ResourceNotFound (%s)", msg ? msg : "");
	json_decref(out);
	free(msg);
}

/* ---------------------------------------------------------------- migration */

static void test_backfill(void)
{
	char *home = new_home("backfill");
	cbl_error *e = NULL;
	sqlite3 *db = NULL;
	/* a version-2 database whose complete build has reports on disk */
	is_int(store_db_open(home, 2, &db, &e), 0, "open at schema version 2");
	build b;
	build_new(&b, home, "old", 1, 1700000000000);
	char *arn = write_report(b.dir, b.arn, REGION_ACCT ":report-group/old-unit", SPEC_REPORT_JUNITXML, junit_xml,
				 1700000000100000);
	build_add_arn(&b, arn);
	store_db tmp = {.db = db};
	is_int(store_db_build_upsert_raw(&tmp, b.dir, b.record, 0, 0, &e), 0, "a build row");
	store_stmt_cache_clear(&tmp);
	sqlite3_exec(db, "DELETE FROM reports; DELETE FROM test_cases; DELETE FROM report_groups", NULL, NULL, NULL);
	sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL);
	sqlite3_close(db);
	is_int(sql_int(home, "PRAGMA user_version"), STORE_SCHEMA_VERSION, "reopening migrates");
	is_int(sql_int(home, "SELECT count(*) FROM reports"), 1, "the stored build's report is ingested");
	is_int(sql_int(home, "SELECT count(*) FROM test_cases"), 5, "with its test cases");
	cbl_error_free(e);
	free(arn);
	build_free(&b);
	drop_home(home);
}

/* a report with more cases than a page: the default page is 100 */
static void test_default_page(void)
{
	char *home = new_home("page");
	cbl_buf x = CBL_BUF_INIT;
	cbl_buf_puts(&x, "<testsuite name='big'>");
	for (int i = 0; i < 130; i++)
		cbl_buf_printf(&x, "<testcase classname='c' name='t%03d'/>", i);
	cbl_buf_puts(&x, "</testsuite>");
	build b;
	int rc;
	build_new(&b, home, "big", 1, 1700000000000);
	char *arn = write_report(b.dir, b.arn, REGION_ACCT ":report-group/big-unit", SPEC_REPORT_JUNITXML,
				 cbl_buf_cstr(&x), 1700000000100000);
	build_add_arn(&b, arn);
	build_save(&b, true);
	json_t *out = callf(home, CB "DescribeTestCases", &rc, NULL, "{\"reportArn\": \"%s\"}", arn);
	ok(size_of(out, "testCases") == 100 && json_is_string(json_object_get(out, "nextToken")),
	   "a first page of 100 and a nextToken");
	json_t *next = callf(home, CB "DescribeTestCases", &rc, NULL, "{\"reportArn\": \"%s\", \"nextToken\": \"%s\"}", arn,
			     json_string_value(json_object_get(out, "nextToken")));
	ok(size_of(next, "testCases") == 30 && !json_object_get(next, "nextToken") &&
		   !strcmp(case_field(next, 0, "name"), "t100"),
	   "then the last 30, without a nextToken");
	json_decref(out);
	json_decref(next);
	cbl_buf_release(&x);
	free(arn);
	build_free(&b);
	drop_home(home);
}

static void test_known(void)
{
	static const char *const ops[] = {"ListReportGroups", "BatchGetReportGroups", "ListReports",
					  "ListReportsForReportGroup", "BatchGetReports", "DescribeTestCases",
					  "DescribeCodeCoverages", "GetReportGroupTrend"};
	bool all = true;
	for (size_t i = 0; i < sizeof(ops) / sizeof(*ops); i++) {
		char *t = cbl_xasprintf(CB "%s", ops[i]);
		all = all && store_api_known(t);
		free(t);
	}
	ok(all, "every report operation is known to the dispatcher (and so to serve)");
}

int main(void)
{
	test_known();
	test_ingest();
	test_ingest_skips();
	world w;
	world_make(&w);
	test_list_report_groups(&w);
	test_list_reports(&w);
	test_batch_get_errors(&w);
	test_describe_test_cases(&w);
	test_describe_code_coverages(&w);
	test_trend(&w);
	world_free(&w);
	test_backfill();
	test_default_page();
	return tap_done();
}
