/* Unit tests for store/: schema and migrations, build numbers under fork(),
 * crash recovery, pagination, validation errors, GetLogEvents tokens. */
#include "tests/unit/tap.h"
#include "store/api.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/array.h"
#include "util/fs.h"
#include "util/time.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CB STORE_TARGET_CODEBUILD
#define LOGS STORE_TARGET_LOGS "GetLogEvents"

static char *new_home(const char *tag)
{
	char tmpl[] = "/tmp/test_store.XXXXXX";
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

static int64_t sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* A Build record of the runner's shape, trimmed to what the store reads. */
static json_t *make_record(const char *project, const char *uuid, int64_t number, int64_t start_ms,
			   bool complete)
{
	char *id = cbl_xasprintf("%s:%s", project, uuid);
	char *arn = cbl_xasprintf("arn:aws:codebuild:us-east-1:000000000000:build/%s", id);
	char *group = cbl_xasprintf("/aws/codebuild/%s", project);
	json_t *phases = json_pack("[{s:s, s:s, s:o, s:o, s:i}, {s:s, s:o}]", "phaseType", "SUBMITTED",
				   "phaseStatus", "SUCCEEDED", "startTime", store_json_time(start_ms),
				   "endTime", store_json_time(start_ms), "durationInSeconds", 0,
				   "phaseType", "BUILD", "startTime", store_json_time(start_ms));
	json_t *r = json_pack("{s:s, s:s, s:I, s:o, s:s, s:s, s:s, s:o, s:{s:s, s:s},"
			      " s:{s:s, s:s}, s:b, s:[{s:s, s:s}]}",
			      "id", id, "arn", arn, "buildNumber", (json_int_t)number, "startTime",
			      store_json_time(start_ms), "currentPhase", "BUILD", "buildStatus",
			      "IN_PROGRESS", "projectName", project, "phases", phases, "source", "type",
			      "NO_SOURCE", "location", "/src/dir", "logs", "groupName", group, "streamName",
			      uuid, "buildComplete", 0, "exportedEnvironmentVariables", "name", "OUT",
			      "value", "v1");
	if (complete) {
		json_t *ph = json_array_get(phases, 1);
		json_object_set_new(ph, "phaseStatus", json_string("SUCCEEDED"));
		json_object_set_new(ph, "endTime", store_json_time(start_ms + 1000));
		json_array_append_new(phases, json_pack("{s:s, s:o}", "phaseType", "COMPLETED", "startTime",
							store_json_time(start_ms + 1000)));
		json_object_set_new(r, "endTime", store_json_time(start_ms + 1000));
		json_object_set_new(r, "buildStatus", json_string("SUCCEEDED"));
		json_object_set_new(r, "currentPhase", json_string("COMPLETED"));
		json_object_set_new(r, "buildComplete", json_true());
	}
	free(id);
	free(arn);
	free(group);
	return r;
}

static char *save_build(const char *home, const char *project, int64_t number, int64_t start_ms,
			bool complete, char uuid[37])
{
	char *dir = NULL;
	cbl_error *e = NULL;
	cbl_uuid4(uuid);
	if (store_build_dir_create(home, project, uuid, &dir, &e))
		abort();
	json_t *r = make_record(project, uuid, number, start_ms, complete);
	int rc = store_build_save(dir, r, false, &e);
	if (rc) {
		printf("# save: %s\n", e->msg);
		cbl_error_free(e);
	}
	json_decref(r);
	return dir;
}

static json_t *call(const char *home, const char *target, const char *req_json, int *rc,
		    char **msg)
{
	json_t *req = req_json ? json_loads(req_json, 0, NULL) : NULL;
	json_t *out = NULL;
	cbl_error *e = NULL;
	*rc = store_api_dispatch(home, target, req, &out, &e);
	if (msg)
		*msg = e ? cbl_xstrdup(e->msg) : NULL;
	cbl_error_free(e);
	json_decref(req);
	return out;
}

/* ---------------------------------------------------------------- schema */

static void test_schema(void)
{
	char *home = new_home("fresh");
	sqlite3 *db = NULL;
	cbl_error *e = NULL;
	is_int(store_db_open(home, 0, &db, &e), 0, "a fresh state directory gets a database");
	is_int(sql_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION, "schema at the latest version");
	is_int(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
			   " ('projects', 'builds', 'build_counters', 'log_streams',"
			   " 'build_exported_variables', 'report_groups', 'reports', 'test_cases',"
			   " 'code_coverages')"),
	       9, "every table exists");
	sqlite3_stmt *st = NULL;
	sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
	ok(sqlite3_step(st) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "wal"),
	   "WAL mode");
	sqlite3_finalize(st);
	is_int(store_db_migrate(db, home, 0, &e), 0, "migrating an up-to-date database is a no-op");
	sqlite3_close(db);

	/* a database from a newer version is refused, not damaged */
	db = NULL;
	store_db_open(home, 0, &db, &e);
	sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	sqlite3_close(db);
	db = NULL;
	int rc = store_db_open(home, 0, &db, &e);
	ok(rc == CBL_EIO && e && strstr(e->msg, "newer"), "a newer schema is refused: %s",
	   e ? e->msg : "");
	cbl_error_clear(&e);
	drop_home(home);
}

static void test_migrate_from_v1(void)
{
	char *home = new_home("v1");
	sqlite3 *db = NULL;
	cbl_error *e = NULL;
	is_int(store_db_open(home, 1, &db, &e), 0, "open at schema version 1");
	is_int(sql_int(db, "PRAGMA user_version"), 1, "version 1");
	is_int(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'build_exported_variables'"),
	       0, "no version-2 tables yet");
	/* a build row as version 1 wrote it */
	char uuid[37];
	cbl_uuid4(uuid);
	json_t *r = make_record("old", uuid, 1, 1700000000000, true);
	char *text = json_dumps(r, JSON_COMPACT);
	sqlite3_stmt *st = NULL;
	sqlite3_prepare_v2(db,
			   "INSERT INTO builds(id, project, uuid, number, start_ms, status, complete, dir,"
			   " record) VALUES(?1, 'old', ?2, 1, 0, 'SUCCEEDED', 1, '/x', ?3)",
			   -1, &st, NULL);
	sqlite3_bind_text(st, 1, json_string_value(json_object_get(r, "id")), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	is_int(sqlite3_step(st), SQLITE_DONE, "a version-1 build row");
	sqlite3_finalize(st);
	sqlite3_close(db);
	json_decref(r);
	free(text);

	db = NULL;
	is_int(store_db_open(home, 0, &db, &e), 0, "reopen migrates");
	is_int(sql_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION, "now at the latest version");
	is_int(sql_int(db, "SELECT count(*) FROM builds"), 1, "the build survived");
	is_int(sql_int(db, "SELECT count(*) FROM build_exported_variables WHERE name = 'OUT'"
			   " AND value = 'v1'"),
	       1, "exported variables backfilled from the record");
	sqlite3_close(db);
	drop_home(home);
}

static void test_legacy_import(void)
{
	char *home = new_home("legacy");
	cbl_error *e = NULL;
	char uuid[37];
	cbl_uuid4(uuid);
	char *dir = cbl_xasprintf("%s/builds/legacy/%s", home, uuid);
	cbl_mkdir_p(dir, 0755, &e);
	json_t *r = make_record("legacy", uuid, 3, 1700000000000, true);
	char *path = cbl_path_join(dir, "build.json");
	json_dump_file(r, path, 0);
	/* leftovers that are not records are skipped, not fatal */
	char *junk = cbl_xasprintf("%s/builds/legacy/not-a-uuid!", home);
	cbl_mkdir_p(junk, 0755, &e);
	char *junk_rec = cbl_path_join(junk, "build.json");
	static const char junk_text[] = "{\"id\": \"legacy:not-a-uuid!\"}";
	cbl_write_file_atomic(junk_rec, junk_text, strlen(junk_text), 0644, false, &e);
	char *junk2 = cbl_xasprintf("%s/builds/legacy/0000", home);
	cbl_mkdir_p(junk2, 0755, &e);
	char *junk2_rec = cbl_path_join(junk2, "build.json");
	cbl_write_file_atomic(junk2_rec, "not json", strlen("not json"), 0644, false, &e);
	free(junk);
	free(junk_rec);
	free(junk2);
	free(junk2_rec);
	char *counter = cbl_xasprintf("%s/builds/legacy/.counter", home);
	cbl_write_file_atomic(counter, "7\n", 2, 0644, false, &e);
	int64_t n = 0;
	is_int(store_next_build_number(home, "legacy", &n, &e), 0, "first use of an old state directory");
	is_int(n, 8, "numbering continues after the old counter");
	char *id = cbl_xasprintf("legacy:%s", uuid);
	json_t *got = NULL;
	is_int(store_build_load(home, id, &got, &e), 0, "the old record was imported");
	is_int(json_integer_value(json_object_get(got, "buildNumber")), 3, "with its content");
	json_decref(got);
	json_t *res = NULL;
	int rc;
	res = call(home, CB "ListProjects", "{}", &rc, NULL);
	ok(rc == 0 && json_array_size(json_object_get(res, "projects")) == 1,
	   "its implicit project appears");
	json_decref(res);
	free(id);
	free(counter);
	free(path);
	free(dir);
	json_decref(r);
	drop_home(home);
}

/* ---------------------------------------------------------------- numbers */

static void test_numbers_fork(void)
{
	char *home = new_home("numbers");
	cbl_error *e = NULL;
	int64_t n = 0;
	/* the parent holds a connection before forking: children must not use it */
	is_int(store_next_build_number(home, "p", &n, &e), 0, "parent allocates");
	is_int(n, 1, "first number is 1");
	enum { KIDS = 4, EACH = 25 };
	int fds[2];
	if (pipe(fds) < 0)
		abort();
	for (int k = 0; k < KIDS; k++) {
		pid_t pid = fork();
		if (pid == 0) {
			close(fds[0]);
			for (int i = 0; i < EACH; i++) {
				int64_t v = 0;
				cbl_error *ce = NULL;
				if (store_next_build_number(home, "p", &v, &ce))
					v = -1;
				if (write(fds[1], &v, sizeof(v)) != sizeof(v))
					_exit(2);
			}
			_exit(0);
		}
	}
	close(fds[1]);
	bool seen[KIDS * EACH + 2] = {false};
	int got = 0, dups = 0, bad = 0;
	int64_t v;
	while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
		got++;
		if (v < 2 || v > KIDS * EACH + 1)
			bad++;
		else if (seen[v])
			dups++;
		else
			seen[v] = true;
	}
	close(fds[0]);
	int ok_kids = 0;
	for (int k = 0; k < KIDS; k++) {
		int st = 0;
		if (wait(&st) > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok_kids++;
	}
	is_int(ok_kids, KIDS, "every child allocated");
	is_int(got, KIDS * EACH, "every number arrived");
	is_int(dups, 0, "no number given twice");
	is_int(bad, 0, "numbers are 2..%d", KIDS * EACH + 1);
	is_int(store_next_build_number(home, "p", &n, &e), 0, "parent again");
	is_int(n, KIDS * EACH + 2, "the parent's cached connection sees the children's numbers");
	is_int(store_next_build_number(home, "other", &n, &e), 0, "another project");
	is_int(n, 1, "numbers are per project");
	drop_home(home);
}

/* ---------------------------------------------------------------- recovery */

static void child_saves_and_dies(const char *home, const char *project, char uuid[37], bool stop)
{
	int fds[2];
	if (pipe(fds) < 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		char *dir = save_build(home, project, 1, cbl_now_us() / 1000 - 5000, false, uuid);
		/* the scratch a killed build leaves: carried state, scripts */
		char *tmp = cbl_path_join(dir, "tmp");
		cbl_mkdir_p(tmp, 0700, NULL);
		char *env = cbl_path_join(tmp, "env.sh");
		cbl_write_file_atomic(env, "export A=1\n", 11, 0600, false, NULL);
		free(env);
		free(tmp);
		free(dir);
		if (write(fds[1], uuid, 37) != 37)
			_exit(3);
		_exit(0); /* a runner that never finishes its record */
	}
	close(fds[1]);
	if (read(fds[0], uuid, 37) != 37)
		uuid[0] = '\0';
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	if (stop) {
		char *id = cbl_xasprintf("%s:%s", project, uuid);
		cbl_error *e = NULL;
		/* flagged after the runner died: recovery still honours it */
		is_int(store_build_request_stop(home, id, &e), 0, "stop requested");
		bool req = false;
		store_build_stop_requested(home, id, &req, &e);
		ok(req, "the flag reads back");
		free(id);
	}
}

static void test_recovery(void)
{
	char *home = new_home("recovery");
	cbl_error *e = NULL;
	char uuid[37];
	child_saves_and_dies(home, "crash", uuid, false);
	char *id = cbl_xasprintf("crash:%s", uuid);
	json_t *r = NULL;
	is_int(store_build_load(home, id, &r, &e), 0, "the dead runner's build loads");
	is_str(json_string_value(json_object_get(r, "buildStatus")), "FAULT", "finished as FAULT");
	ok(json_is_true(json_object_get(r, "buildComplete")), "buildComplete");
	ok(json_object_get(r, "endTime") != NULL, "endTime set");
	is_str(json_string_value(json_object_get(r, "currentPhase")), "COMPLETED", "currentPhase");
	json_t *phases = json_object_get(r, "phases");
	json_t *build = json_array_get(phases, 1), *last = json_array_get(phases, 2);
	is_str(json_string_value(json_object_get(build, "phaseStatus")), "FAULT",
	       "the running phase is FAULT");
	is_str(json_string_value(json_object_get(json_array_get(json_object_get(build, "contexts"), 0),
						 "message")),
	       "Build runner exited unexpectedly", "with the runner's death as context");
	is_str(json_string_value(json_object_get(last, "phaseType")), "COMPLETED", "then COMPLETED");
	json_decref(r);
	/* the dead build's scratch is gone */
	char *scratch = cbl_xasprintf("%s/builds/crash/%s/tmp", home, uuid);
	struct stat sst;
	ok(stat(scratch, &sst) < 0 && errno == ENOENT, "the dead build's scratch directory is removed");
	free(scratch);
	/* build.json agrees */
	char *path = cbl_xasprintf("%s/builds/crash/%s/build.json", home, uuid);
	r = json_load_file(path, 0, NULL);
	is_str(json_string_value(json_object_get(r, "buildStatus")), "FAULT", "build.json rewritten");
	json_decref(r);
	free(path);
	free(id);

	child_saves_and_dies(home, "crash", uuid, true);
	id = cbl_xasprintf("crash:%s", uuid);
	int rc;
	char req[128];
	snprintf(req, sizeof(req), "{\"ids\": [\"%s\"]}", id);
	json_t *res = call(home, CB "BatchGetBuilds", req, &rc, NULL);
	r = json_array_get(json_object_get(res, "builds"), 0);
	is_str(json_string_value(json_object_get(r, "buildStatus")), "STOPPED",
	       "a stop request makes it STOPPED");
	json_decref(res);
	free(id);

	/* a live runner (this process) is left alone */
	char *dir = save_build(home, "live", 1, cbl_now_us() / 1000, false, uuid);
	id = cbl_xasprintf("live:%s", uuid);
	is_int(store_build_load(home, id, &r, &e), 0, "live build loads");
	is_str(json_string_value(json_object_get(r, "buildStatus")), "IN_PROGRESS", "still IN_PROGRESS");
	json_decref(r);
	ok(store_runner_alive(getpid(), store_proc_start_time(getpid())), "we are alive");
	ok(!store_runner_alive(getpid(), store_proc_start_time(getpid()) + 1),
	   "a recycled pid (other start time) is not");
	free(dir);
	free(id);
	drop_home(home);
}

/* ---------------------------------------------------------------- lists */

static int collect(const char *home, const char *target, const char *base, json_t *all,
		   int *pages, const char *member)
{
	json_t *req = json_loads(base, 0, NULL);
	int rc = 0;
	*pages = 0;
	for (;;) {
		json_t *out = NULL;
		cbl_error *e = NULL;
		rc = store_api_dispatch(home, target, req, &out, &e);
		cbl_error_free(e);
		if (rc)
			break;
		(*pages)++;
		json_array_extend(all, json_object_get(out, member));
		json_t *tok = json_object_get(out, "nextToken");
		if (!tok) {
			json_decref(out);
			break;
		}
		json_object_set(req, "nextToken", tok);
		json_decref(out);
		if (*pages > 20)
			break;
	}
	json_decref(req);
	return rc;
}

static void test_pagination(void)
{
	char *home = new_home("pages");
	char uuid[37];
	char first[64] = "", last[64] = "";
	for (int i = 1; i <= 250; i++) {
		char *dir = save_build(home, "pg", i, 1700000000000 + i * 1000, true, uuid);
		if (i == 1)
			snprintf(first, sizeof(first), "pg:%s", uuid);
		if (i == 250)
			snprintf(last, sizeof(last), "pg:%s", uuid);
		free(dir);
	}
	free(save_build(home, "other", 1, 1600000000000, true, uuid));
	json_t *all = json_array();
	int pages = 0;
	is_int(collect(home, CB "ListBuildsForProject", "{\"projectName\": \"pg\"}", all, &pages, "ids"), 0,
	       "ListBuildsForProject pages");
	is_int(pages, 3, "250 builds = 3 pages of 100");
	is_int(json_array_size(all), 250, "every id once");
	is_str(json_string_value(json_array_get(all, 0)), last, "DESCENDING by default: newest first");
	json_array_clear(all);
	collect(home, CB "ListBuildsForProject", "{\"projectName\": \"pg\", \"sortOrder\": \"ASCENDING\"}",
		all, &pages, "ids");
	is_str(json_string_value(json_array_get(all, 0)), first, "ASCENDING: build #1 first");
	json_array_clear(all);
	collect(home, CB "ListBuilds", "{}", all, &pages, "ids");
	is_int(json_array_size(all), 251, "ListBuilds sees every project");
	ok(!strncmp(json_string_value(json_array_get(all, 250)), "other:", 6),
	   "by start time, oldest last");
	json_decref(all);

	int rc;
	char *msg = NULL;
	json_t *res = call(home, CB "ListBuildsForProject", "{\"projectName\": \"pg\", \"nextToken\": \"zz\"}",
			   &rc, &msg);
	ok(rc == CBL_EINVAL && msg && !strcmp(msg, "Invalid next token"), "a forged token is refused");
	free(msg);
	res = call(home, CB "ListBuildsForProject", "{\"projectName\": \"nope\"}", &rc, &msg);
	ok(rc == CBL_ENOENT && msg && strstr(msg, "Project cannot be found: arn:aws:codebuild:"),
	   "unknown project: %s", msg ? msg : "");
	free(msg);
	res = call(home, CB "ListBuilds", "{\"sortOrder\": \"UP\"}", &rc, &msg);
	ok(rc == CBL_EINVAL && msg && strstr(msg, "enum value set: [ASCENDING, DESCENDING]"),
	   "sortOrder is an enum");
	free(msg);
	json_decref(res);

	/* projects: 120 + the implicit ones */
	for (int i = 0; i < 120; i++) {
		char req[512];
		snprintf(req, sizeof(req),
			 "{\"name\": \"proj-%03d\", \"source\": {\"type\": \"NO_SOURCE\", \"buildspec\": \"x\"},"
			 " \"artifacts\": {\"type\": \"NO_ARTIFACTS\"}, \"environment\": {\"type\":"
			 " \"LINUX_CONTAINER\", \"image\": \"host\", \"computeType\": \"BUILD_GENERAL1_SMALL\"}}",
			 i);
		json_decref(call(home, CB "CreateProject", req, &rc, NULL));
		if (rc)
			break;
	}
	is_int(rc, 0, "120 projects created");
	all = json_array();
	collect(home, CB "ListProjects", "{}", all, &pages, "projects");
	is_int(json_array_size(all), 122, "ListProjects pages through all (implicit ones too)");
	is_int(pages, 2, "in 2 pages");
	is_str(json_string_value(json_array_get(all, 0)), "other", "by name");
	json_array_clear(all);
	collect(home, CB "ListProjects", "{\"sortBy\": \"CREATED_TIME\", \"sortOrder\": \"DESCENDING\"}",
		all, &pages, "projects");
	is_str(json_string_value(json_array_get(all, 0)), "proj-119", "by creation, newest first");
	json_decref(all);
	drop_home(home);
}

/* ---------------------------------------------------------------- projects */

static const char good_project[] =
	"{\"name\": \"demo\", \"source\": {\"type\": \"GITHUB\", \"location\":"
	" \"https://example.com/org/demo.git\", \"gitCloneDepth\": 1}, \"artifacts\": {\"type\":"
	" \"NO_ARTIFACTS\"}, \"environment\": {\"type\": \"LINUX_CONTAINER\", \"image\":"
	" \"aws/codebuild/standard:7.0\", \"computeType\": \"BUILD_GENERAL1_SMALL\","
	" \"environmentVariables\": [{\"name\": \"A\", \"value\": \"1\"}]}, \"serviceRole\":"
	" \"arn:aws:iam::000000000000:role/x\", \"zzUnknown\": 1}";

static void expect_invalid(const char *home, const char *target, const char *req, const char *want,
			   const char *what)
{
	int rc;
	char *msg = NULL;
	json_t *res = call(home, target, req, &rc, &msg);
	ok(rc == CBL_EINVAL && msg && strstr(msg, want), "%s", what);
	if (!(rc == CBL_EINVAL && msg && strstr(msg, want)))
		printf("#   rc %d, message: %s\n", rc, msg ? msg : "(none)");
	free(msg);
	json_decref(res);
}

static void test_projects(void)
{
	char *home = new_home("projects");
	int rc;
	char *msg = NULL;
	json_t *res = call(home, CB "CreateProject", good_project, &rc, NULL);
	is_int(rc, 0, "CreateProject");
	json_t *p = json_object_get(res, "project");
	is_str(json_string_value(json_object_get(p, "arn")),
	       "arn:aws:codebuild:us-east-1:000000000000:project/demo", "project ARN");
	is_int(json_integer_value(json_object_get(p, "timeoutInMinutes")), 60, "default timeout 60");
	is_int(json_integer_value(json_object_get(p, "queuedTimeoutInMinutes")), 480, "default queued 480");
	ok(json_is_real(json_object_get(p, "created")), "created is an epoch-seconds number");
	ok(!json_object_get(p, "zzUnknown"), "unknown members are dropped");
	is_str(json_string_value(json_object_get(json_object_get(p, "cache"), "type")), "NO_CACHE",
	       "default cache");
	const char *k;
	json_t *v;
	const char *order[4];
	size_t n = 0;
	json_object_foreach(p, k, v) if (n < 4) order[n++] = k;
	ok(n == 4 && !strcmp(order[0], "name") && !strcmp(order[1], "arn") &&
		   !strcmp(order[2], "source") && !strcmp(order[3], "secondarySources"),
	   "members in model order");
	json_decref(res);

	res = call(home, CB "CreateProject", good_project, &rc, &msg);
	ok(rc == CBL_EEXIST && msg &&
		   !strcmp(msg, "Project already exists: arn:aws:codebuild:us-east-1:000000000000:project/demo"),
	   "duplicate: ResourceAlreadyExistsException");
	is_str(store_api_error_type(CB "CreateProject", rc), "ResourceAlreadyExistsException", "its type");
	free(msg);

	expect_invalid(home, CB "CreateProject", "{\"name\": \"x\"}", "validation errors detected",
		       "several errors at once");
	expect_invalid(home, CB "CreateProject", "{\"name\": \"x\"}", "Value null at 'source'",
		       "missing source");
	expect_invalid(home, CB "CreateProject", "{\"name\": \"-bad\"}",
		       "Value '-bad' at 'name' failed to satisfy constraint: Member must satisfy regular "
		       "expression pattern",
		       "name pattern");
	char buf[1024];
	snprintf(buf, sizeof(buf), "%.*s, \"timeoutInMinutes\": 3000}", (int)strlen(good_project) - 1,
		 good_project);
	expect_invalid(home, CB "CreateProject", buf,
		       "Value '3000' at 'timeoutInMinutes' failed to satisfy constraint: Member must have "
		       "value less than or equal to 2160",
		       "timeout maximum");
	expect_invalid(home, CB "CreateProject",
		       "{\"name\": \"ab\", \"source\": {\"type\": \"NO_SOURCE\", \"buildspec\": \"x\"},"
		       " \"artifacts\": {\"type\": \"NO_ARTIFACTS\"}, \"environment\": {\"type\":"
		       " \"LINUX_CONTAINER\", \"image\": \"host\", \"computeType\": \"HUGE\"}}",
		       "at 'environment.computeType' failed to satisfy constraint: Member must satisfy enum "
		       "value set: [BUILD_GENERAL1_SMALL",
		       "computeType enum");
	expect_invalid(home, CB "CreateProject",
		       "{\"name\": \"ab\", \"source\": {\"type\": \"NO_SOURCE\"}, \"artifacts\": {\"type\":"
		       " \"NO_ARTIFACTS\"}, \"environment\": {\"type\": \"LINUX_CONTAINER\", \"image\":"
		       " \"host\", \"computeType\": \"BUILD_GENERAL1_SMALL\"}}",
		       "buildspec must be specified for source type NO_SOURCE", "NO_SOURCE needs a buildspec");
	expect_invalid(home, CB "CreateProject",
		       "{\"name\": \"ab\", \"source\": {\"type\": \"NO_SOURCE\", \"location\": \"relative/dir\"},"
		       " \"artifacts\": {\"type\": \"NO_ARTIFACTS\"}, \"environment\": {\"type\":"
		       " \"LINUX_CONTAINER\", \"image\": \"host\", \"computeType\": \"BUILD_GENERAL1_SMALL\"}}",
		       "file:///absolute/path", "a local directory is a file:/// location");
	expect_invalid(home, CB "CreateProject",
		       "{\"name\": \"ab\", \"source\": {\"type\": \"S3\", \"location\": \"b/k.zip\"},"
		       " \"artifacts\": {\"type\": \"NO_ARTIFACTS\"}, \"environment\": {\"type\":"
		       " \"LINUX_CONTAINER\", \"image\": \"host\", \"computeType\": \"BUILD_GENERAL1_SMALL\"}}",
		       "not supported by codebuild-local", "S3 sources are refused");
	expect_invalid(home, CB "CreateProject",
		       "{\"name\": \"ab\", \"source\": {\"type\": \"GITLAB\"}, \"artifacts\": {\"type\":"
		       " \"NO_ARTIFACTS\"}, \"environment\": {\"type\": \"LINUX_CONTAINER\", \"image\":"
		       " \"host\", \"computeType\": \"BUILD_GENERAL1_SMALL\"}}",
		       "location must be specified for source type GITLAB", "git types need a location");
	expect_invalid(home, CB "CreateProject", "[1]", "must be a JSON object", "body must be an object");

	/* a local directory and a file:// git URL are fine */
	res = call(home, CB "CreateProject",
		   "{\"name\": \"local-dir\", \"source\": {\"type\": \"NO_SOURCE\", \"location\":"
		   " \"file:///srv/app\"}, \"artifacts\": {\"type\": \"NO_ARTIFACTS\"}, \"environment\":"
		   " {\"type\": \"LINUX_CONTAINER\", \"image\": \"host\", \"computeType\":"
		   " \"BUILD_GENERAL1_SMALL\"}}",
		   &rc, NULL);
	is_int(rc, 0, "NO_SOURCE with a file:// directory");
	json_decref(res);
	res = call(home, CB "CreateProject",
		   "{\"name\": \"git-file\", \"source\": {\"type\": \"GITHUB\", \"location\":"
		   " \"file:///srv/repo.git\"}, \"artifacts\": {\"type\": \"NO_ARTIFACTS\"}, \"environment\":"
		   " {\"type\": \"LINUX_CONTAINER\", \"image\": \"host\", \"computeType\":"
		   " \"BUILD_GENERAL1_SMALL\"}}",
		   &rc, NULL);
	is_int(rc, 0, "a git type with a file:// repository");
	json_decref(res);

	/* update */
	res = call(home, CB "UpdateProject", "{\"name\": \"demo\", \"timeoutInMinutes\": 15}", &rc, NULL);
	is_int(rc, 0, "UpdateProject");
	p = json_object_get(res, "project");
	is_int(json_integer_value(json_object_get(p, "timeoutInMinutes")), 15, "timeout updated");
	is_str(json_string_value(json_object_get(json_object_get(p, "source"), "location")),
	       "https://example.com/org/demo.git", "other members kept");
	ok(store_json_time_ms(json_object_get(p, "lastModified")) >=
		   store_json_time_ms(json_object_get(p, "created")),
	   "lastModified >= created");
	json_decref(res);
	res = call(home, CB "UpdateProject", "{\"name\": \"ghost\"}", &rc, &msg);
	ok(rc == CBL_ENOENT && msg && strstr(msg, "Project cannot be found"), "update unknown: %s",
	   msg ? msg : "");
	free(msg);
	expect_invalid(home, CB "UpdateProject",
		       "{\"name\": \"demo\", \"source\": {\"type\": \"NO_SOURCE\"}}",
		       "buildspec must be specified", "update re-checks the result");

	/* batch get, delete */
	res = call(home, CB "BatchGetProjects",
		   "{\"names\": [\"demo\", \"arn:aws:codebuild:us-east-1:000000000000:project/local-dir\","
		   " \"ghost\"]}",
		   &rc, NULL);
	is_int(json_array_size(json_object_get(res, "projects")), 2, "BatchGetProjects finds names and ARNs");
	is_str(json_string_value(json_array_get(json_object_get(res, "projectsNotFound"), 0)), "ghost",
	       "projectsNotFound");
	json_decref(res);
	expect_invalid(home, CB "BatchGetProjects", "{\"names\": []}",
		       "Member must have length greater than or equal to 1", "names min 1");
	res = call(home, CB "DeleteProject", "{\"name\": \"demo\"}", &rc, NULL);
	ok(rc == 0 && json_object_size(res) == 0, "DeleteProject answers {}");
	json_decref(res);
	res = call(home, CB "DeleteProject", "{\"name\": \"demo\"}", &rc, &msg);
	ok(rc == CBL_ENOENT, "deleting again: ResourceNotFoundException");
	free(msg);
	drop_home(home);
}

/* ---------------------------------------------------------------- builds */

static void test_batch_builds(void)
{
	char *home = new_home("builds");
	char u1[37], u2[37];
	int rc;
	char *msg = NULL;
	int64_t n = 0;
	cbl_error *e = NULL;
	store_next_build_number(home, "bb", &n, &e);
	store_next_build_number(home, "bb", &n, &e);
	char *d1 = save_build(home, "bb", 1, 1700000000000, true, u1);
	char *d2 = save_build(home, "bb", 2, 1700000001000, false, u2); /* running: this process */
	char req[512];
	snprintf(req, sizeof(req),
		 "{\"ids\": [\"bb:%s\", \"arn:aws:codebuild:us-east-1:000000000000:build/bb:%s\","
		 " \"bb:00000000-0000-0000-0000-000000000000\", \"bb:%s\"]}",
		 u1, u2, u1);
	json_t *res = call(home, CB "BatchGetBuilds", req, &rc, NULL);
	is_int(rc, 0, "BatchGetBuilds");
	is_int(json_array_size(json_object_get(res, "builds")), 2, "found by id and by ARN, once each");
	is_int(json_array_size(json_object_get(res, "buildsNotFound")), 1, "the unknown one not found");
	/* the server's fast path answers the same, as text */
	json_t *jreq = json_loads(req, 0, NULL);
	char *text = NULL;
	size_t tlen = 0;
	is_int(store_api_dispatch_text(home, CB "BatchGetBuilds", jreq, &text, &tlen, &e), 0,
	       "BatchGetBuilds as text");
	json_t *parsed = text ? json_loadb(text, tlen, 0, NULL) : NULL;
	ok(parsed && json_equal(parsed, res), "the spliced text is the same response");
	json_decref(parsed);
	free(text);
	text = NULL;
	json_decref(jreq);
	jreq = json_loads("{\"ids\": [\"x\"]}", 0, NULL);
	ok(store_api_dispatch_text(home, CB "BatchGetBuilds", jreq, &text, &tlen, &e) == CBL_EINVAL &&
		   !text,
	   "and the same errors");
	cbl_error_clear(&e);
	json_decref(jreq);
	jreq = json_loads("{\"projectName\": \"bb\"}", 0, NULL);
	is_int(store_api_dispatch_text(home, CB "ListBuildsForProject", jreq, &text, &tlen, &e), 0,
	       "any other operation as text");
	ok(text && !strncmp(text, "{\"ids\":[\"bb:", 12) && tlen == strlen(text), "compact JSON: %s",
	   text ? text : "");
	free(text);
	json_decref(jreq);
	json_decref(res);
	expect_invalid(home, CB "BatchGetBuilds", "{\"ids\": [\"no-colon\"]}",
		       "Invalid build ID provided: no-colon", "malformed id");
	expect_invalid(home, CB "BatchGetBuilds", "{}", "Value null at 'ids'", "ids required");
	expect_invalid(home, CB "BatchGetBuilds", "{\"ids\": []}",
		       "Member must have length greater than or equal to 1", "ids min 1");

	snprintf(req, sizeof(req), "{\"ids\": [\"bb:%s\", \"bb:%s\", \"bb:11111111-0000-0000-0000-000000000000\"]}",
		 u1, u2);
	res = call(home, CB "BatchDeleteBuilds", req, &rc, NULL);
	is_int(rc, 0, "BatchDeleteBuilds");
	json_t *del = json_object_get(res, "buildsDeleted"), *kept = json_object_get(res, "buildsNotDeleted");
	const char *darn = json_string_value(json_array_get(del, 0));
	ok(json_array_size(del) == 1 && !strncmp(darn, "arn:aws:codebuild:", 18) && strstr(darn, ":build/bb:") &&
	   !strcmp(strstr(darn, ":build/bb:") + 10, u1),
	   "the finished build is deleted, answered by its ARN");
	is_int(json_array_size(kept), 2, "two not deleted");
	is_str(json_string_value(json_object_get(json_array_get(kept, 0), "statusCode")), "BUILD_IN_PROGRESS",
	       "a running build is refused");
	is_str(json_string_value(json_object_get(json_array_get(kept, 1), "statusCode")), "BUILD_NOT_FOUND",
	       "an unknown one is reported");
	json_decref(res);
	ok(access(d1, F_OK) < 0, "its directory is gone");
	ok(access(d2, F_OK) == 0, "the running one's stays");
	is_int(store_next_build_number(home, "bb", &n, &e), 0, "allocate after a deletion");
	is_int(n, 3, "numbers are not reused after a deletion");
	free(d1);
	free(d2);
	(void)msg;
	drop_home(home);
}

/* ---------------------------------------------------------------- logs */

static void write_log(const char *dir, int lines, bool partial_tail)
{
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_puts(&b, "before any agent line\n");
	for (int i = 1; i < lines; i++) {
		if (i % 5 == 1)
			cbl_buf_printf(&b, "[Container] 2023/11/14 22:13:%02d.%06d agent %d\n", 20 + i, 123456, i);
		else
			cbl_buf_printf(&b, "output %d\n", i);
	}
	if (partial_tail)
		cbl_buf_puts(&b, "half a line");
	char *path = cbl_path_join(dir, "build.log");
	cbl_error *e = NULL;
	cbl_write_file_atomic(path, b.ptr, b.len, 0644, false, &e);
	free(path);
	cbl_buf_release(&b);
}

static json_t *gle(const char *home, const char *stream, const char *extra, int *rc, char **msg)
{
	char req[512];
	snprintf(req, sizeof(req), "{\"logGroupName\": \"/aws/codebuild/lg\", \"logStreamName\": \"%s\"%s%s}",
		 stream, extra ? ", " : "", extra ? extra : "");
	return call(home, LOGS, req, rc, msg);
}

static const char *tokf(json_t *r) { return json_string_value(json_object_get(r, "nextForwardToken")); }
static const char *tokb(json_t *r) { return json_string_value(json_object_get(r, "nextBackwardToken")); }
static const char *msg_at(json_t *r, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(r, "events"), i), "message"));
}

/* FilterLogEvents, DescribeLogStreams, DescribeLogGroups (store/logs_filter.c) */
#define FLE STORE_TARGET_LOGS "FilterLogEvents"

static json_t *fle(const char *home, const char *extra, int *rc, char **msg)
{
	char req[1024];
	snprintf(req, sizeof(req), "{\"logGroupName\": \"/aws/codebuild/fl\"%s%s}", extra ? ", " : "",
		 extra ? extra : "");
	return call(home, FLE, req, rc, msg);
}

static size_t n_events(json_t *r) { return json_array_size(json_object_get(r, "events")); }

static void test_filter_logs(void)
{
	char *home = new_home("filter");
	char ua[37], ub[37], req[512];
	int rc;
	char *msg = NULL;
	int64_t start = 1700000000000; /* 2023-11-14 22:13:20 UTC */
	char *da = save_build(home, "fl", 1, start, true, ua);
	write_log(da, 25, true);
	char *db = save_build(home, "fl", 2, start + 3600000, true, ub);
	char *path = cbl_path_join(db, "build.log");
	cbl_error *e = NULL;
	const char *blog = "[Container] 2023/11/14 23:13:20.500000 agent b\nERROR one\nWARN two\nERROR three\n";
	cbl_write_file_atomic(path, blog, strlen(blog), 0644, false, &e);
	free(path);

	json_t *r = fle(home, NULL, &rc, &msg);
	is_int(rc, 0, "FilterLogEvents over a group");
	is_int((long long)n_events(r), 26 + 4, "every line of both streams");
	json_t *ev = json_object_get(r, "events");
	bool sorted = true;
	for (size_t i = 1; i < json_array_size(ev); i++)
		sorted &= json_integer_value(json_object_get(json_array_get(ev, i - 1), "timestamp")) <=
			  json_integer_value(json_object_get(json_array_get(ev, i), "timestamp"));
	ok(sorted, "interleaved by time");
	is_str(msg_at(r, 29), "ERROR three\n", "the later build's lines last");
	ok(strlen(cbl_json_str_or_empty(json_array_get(ev, 0), "eventId")) == 56, "eventId: 56 digits");
	ok(!json_object_get(r, "nextToken"), "one page: no nextToken");
	json_decref(r);

	r = fle(home, "\"filterPattern\": \"ERROR\"", &rc, NULL);
	is_int((long long)n_events(r), 2, "a term");
	json_decref(r);
	r = fle(home, "\"filterPattern\": \"\\\"agent 1\\\"\"", &rc, NULL);
	is_int((long long)n_events(r), 3, "a quoted phrase (agent 1, 11, 16)");
	json_decref(r);
	r = fle(home, "\"filterPattern\": \"?WARN ?three\"", &rc, NULL);
	is_int((long long)n_events(r), 2, "any of");
	json_decref(r);
	r = fle(home, "\"filterPattern\": \"agent -b -\\\"agent 11\\\"\"", &rc, NULL);
	is_int((long long)n_events(r), 4, "none of");
	json_decref(r);

	/* pages of 7 give the same events */
	json_t *all = fle(home, NULL, &rc, NULL), *tok = NULL;
	size_t seen = 0, pages = 0;
	r = NULL;
	bool same = true;
	do {
		if (tok)
			snprintf(req, sizeof(req), "\"limit\": 7, \"nextToken\": \"%s\"", json_string_value(tok));
		else
			snprintf(req, sizeof(req), "\"limit\": 7");
		json_decref(r);
		r = fle(home, req, &rc, NULL);
		for (size_t i = 0; i < n_events(r); i++, seen++)
			same &= json_equal(json_array_get(json_object_get(r, "events"), i),
					   json_array_get(json_object_get(all, "events"), seen));
		tok = json_object_get(r, "nextToken");
		pages++;
	} while (rc == 0 && tok && pages < 10);
	ok(same && seen == 30 && pages == 5, "nextToken pages: every event once, in order (%zu in %zu)", seen,
	   pages);
	json_decref(r);
	json_decref(all);

	/* time window, inclusive: the agent line at :26.123 and its output */
	snprintf(req, sizeof(req), "\"startTime\": %lld, \"endTime\": %lld", (long long)start + 6123,
		 (long long)start + 6123);
	r = fle(home, req, &rc, NULL);
	is_int((long long)n_events(r), 5, "startTime..endTime");
	json_decref(r);
	snprintf(req, sizeof(req), "\"logStreamNames\": [\"%s\"]", ub);
	r = fle(home, req, &rc, NULL);
	is_int((long long)n_events(r), 4, "logStreamNames");
	json_decref(r);
	snprintf(req, sizeof(req), "\"logStreamNamePrefix\": \"%.8s\"", ua);
	r = fle(home, req, &rc, NULL);
	ok(n_events(r) >= 26, "logStreamNamePrefix");
	json_decref(r);

	snprintf(req, sizeof(req), "\"logStreamNames\": [\"%s\"], \"logStreamNamePrefix\": \"a\"", ub);
	r = fle(home, req, &rc, &msg);
	ok(rc == CBL_EINVAL && strstr(msg, "mutually exclusive"), "names and prefix: InvalidParameter");
	free(msg);
	r = fle(home, "\"nextToken\": \"x\"", &rc, &msg);
	ok(rc == CBL_EINVAL && strstr(msg, "nextToken"), "a bad token");
	free(msg);
	r = fle(home, "\"filterPattern\": \"{ $.a = 1 }\"", &rc, &msg);
	ok(rc == CBL_EINVAL && strstr(msg, "not supported"), "JSON patterns are refused");
	free(msg);
	r = call(home, FLE, "{\"logGroupName\": \"/aws/codebuild/none\"}", &rc, &msg);
	ok(rc == CBL_ENOENT && !strcmp(msg, "The specified log group does not exist."), "unknown group");
	free(msg);

	r = call(home, STORE_TARGET_LOGS "DescribeLogStreams",
		 "{\"logGroupName\": \"/aws/codebuild/fl\", \"orderBy\": \"LastEventTime\", \"descending\": true}", &rc,
		 NULL);
	json_t *ls = json_object_get(r, "logStreams");
	is_int((long long)json_array_size(ls), 2, "two streams");
	is_str(cbl_json_str(json_array_get(ls, 0), "logStreamName"), ub, "newest last event first");
	is_int(json_integer_value(json_object_get(json_array_get(ls, 1), "lastEventTimestamp")), start + 21123,
	       "the last event's time: the last agent line's");
	is_int(json_integer_value(json_object_get(json_array_get(ls, 1), "firstEventTimestamp")), start,
	       "the first event's time");
	json_decref(r);
	r = call(home, STORE_TARGET_LOGS "DescribeLogGroups", "{\"logGroupNamePrefix\": \"/aws/codebuild/f\"}", &rc,
		 NULL);
	is_str(cbl_json_str(json_array_get(json_object_get(r, "logGroups"), 0), "logGroupName"), "/aws/codebuild/fl",
	       "DescribeLogGroups by prefix");
	json_decref(r);
	free(da);
	free(db);
	drop_home(home);
}

static void test_logs(void)
{
	char *home = new_home("logs");
	char uuid[37];
	int rc;
	char *msg = NULL;
	int64_t start = 1700000000000; /* 2023-11-14 22:13:20 UTC */
	char *dir = save_build(home, "lg", 1, start, true, uuid);
	write_log(dir, 25, true); /* 25 lines + a final line without newline */

	json_t *r = gle(home, uuid, "\"startFromHead\": true, \"limit\": 10", &rc, &msg);
	is_int(rc, 0, "GetLogEvents from the head");
	is_int(json_array_size(json_object_get(r, "events")), 10, "limit 10");
	is_str(msg_at(r, 0), "before any agent line\n", "one event per line, newline kept");
	json_t *e0 = json_array_get(json_object_get(r, "events"), 0);
	is_int(json_integer_value(json_object_get(e0, "timestamp")), start,
	       "a line before any agent line has the build's start time");
	json_t *e1 = json_array_get(json_object_get(r, "events"), 1);
	json_t *e2 = json_array_get(json_object_get(r, "events"), 2);
	is_int(json_integer_value(json_object_get(e1, "timestamp")), start + 1000 + 123,
	       "an agent line has its own time (ms)");
	is_int(json_integer_value(json_object_get(e2, "timestamp")), start + 1000 + 123,
	       "output takes the time of the agent line before it");
	ok(strlen(tokf(r)) == 58 && !strncmp(tokf(r), "f/", 2), "forward token f/ + 56 digits");
	char *f1 = cbl_xstrdup(tokf(r));
	json_decref(r);

	char extra[160];
	snprintf(extra, sizeof(extra), "\"startFromHead\": true, \"limit\": 10, \"nextToken\": \"%s\"", f1);
	r = gle(home, uuid, extra, &rc, NULL);
	is_str(msg_at(r, 0), "output 10\n", "the next page follows on");
	char *f2 = cbl_xstrdup(tokf(r));
	json_decref(r);
	snprintf(extra, sizeof(extra), "\"startFromHead\": true, \"limit\": 10, \"nextToken\": \"%s\"", f2);
	r = gle(home, uuid, extra, &rc, NULL);
	is_int(json_array_size(json_object_get(r, "events")), 6, "last page: 5 lines + the unfinished tail");
	is_str(msg_at(r, 5), "half a line", "a complete build's last line counts without its newline");
	char *f3 = cbl_xstrdup(tokf(r));
	json_decref(r);
	snprintf(extra, sizeof(extra), "\"startFromHead\": true, \"nextToken\": \"%s\"", f3);
	r = gle(home, uuid, extra, &rc, NULL);
	is_int(json_array_size(json_object_get(r, "events")), 0, "past the end: nothing");
	is_str(tokf(r), f3, "and the same forward token back");
	json_decref(r);

	/* backwards from the tail */
	r = gle(home, uuid, "\"limit\": 10", &rc, NULL);
	is_str(msg_at(r, 9), "half a line", "default: the last events");
	is_str(msg_at(r, 0), "[Container] 2023/11/14 22:13:36.123456 agent 16\n", "in order");
	char *b1 = cbl_xstrdup(tokb(r));
	json_decref(r);
	snprintf(extra, sizeof(extra), "\"limit\": 20, \"nextToken\": \"%s\"", b1);
	r = gle(home, uuid, extra, &rc, NULL);
	is_int(json_array_size(json_object_get(r, "events")), 16, "the rest, backwards");
	char *b2 = cbl_xstrdup(tokb(r));
	json_decref(r);
	snprintf(extra, sizeof(extra), "\"nextToken\": \"%s\"", b2);
	r = gle(home, uuid, extra, &rc, NULL);
	ok(json_array_size(json_object_get(r, "events")) == 0 && !strcmp(tokb(r), b2),
	   "at the head the same backward token comes back");
	json_decref(r);

	/* time range: [22:13:26.123, 22:13:31.123) = agent 6's block */
	r = gle(home, uuid, "\"startFromHead\": true, \"startTime\": 1700000006123, \"endTime\": 1700000011123",
		&rc, NULL);
	is_int(json_array_size(json_object_get(r, "events")), 5, "startTime/endTime select events");
	json_decref(r);

	/* an unfinished build: the unfinished line is not an event yet */
	char u2[37];
	char *dir2 = save_build(home, "lg", 2, start, false, u2);
	write_log(dir2, 3, true);
	r = gle(home, u2, "\"startFromHead\": true", &rc, NULL);
	is_int(json_array_size(json_object_get(r, "events")), 3, "a running build's partial line waits");
	json_decref(r);

	/* identifiers, errors */
	char req[512];
	snprintf(req, sizeof(req),
		 "{\"logGroupIdentifier\": \"arn:aws:logs:us-east-1:000000000000:log-group:/aws/codebuild/lg\","
		 " \"logStreamName\": \"%s\", \"limit\": 1}",
		 uuid);
	r = call(home, LOGS, req, &rc, NULL);
	ok(rc == 0 && json_array_size(json_object_get(r, "events")) == 1, "logGroupIdentifier as an ARN");
	json_decref(r);
	/* the service's pattern has no '*': "Don't include an * at the end" */
	expect_invalid(home, LOGS,
		       "{\"logGroupIdentifier\": \"arn:aws:logs:us-east-1:000000000000:log-group:/aws/codebuild/lg:*\","
		       " \"logStreamName\": \"x\"}",
		       "at 'logGroupIdentifier' failed to satisfy constraint: Member must satisfy regular "
		       "expression pattern: [\\w#+=/:,.@-]*", "an ARN ending in :* is refused");
	r = gle(home, "no-such-stream", NULL, &rc, &msg);
	ok(rc == CBL_ENOENT && msg && !strcmp(msg, "The specified log stream does not exist."),
	   "unknown stream");
	free(msg);
	r = call(home, LOGS, "{\"logGroupName\": \"/aws/codebuild/none\", \"logStreamName\": \"x\"}", &rc, &msg);
	ok(rc == CBL_ENOENT && msg && !strcmp(msg, "The specified log group does not exist."), "unknown group");
	free(msg);
	expect_invalid(home, LOGS, "{\"logGroupName\": \"/aws/codebuild/lg\", \"logStreamName\": \"x\", \"limit\": 0}",
		       "Member must have value greater than or equal to 1", "limit minimum");
	expect_invalid(home, LOGS,
		       "{\"logGroupName\": \"/aws/codebuild/lg\", \"logStreamName\": \"x\", \"nextToken\": \"q\"}",
		       "nextToken is invalid", "bad token");
	expect_invalid(home, LOGS, "{\"logGroupName\": \"a\", \"logGroupIdentifier\": \"a\", \"logStreamName\": \"x\"}",
		       "mutually exclusive", "name and identifier together");
	is_str(store_api_error_type(LOGS, CBL_EINVAL), "InvalidParameterException", "Logs' invalid-input type");
	is_str(store_api_error_type(CB "ListBuilds", CBL_EINVAL), "InvalidInputException", "CodeBuild's");
	ok(store_api_known(LOGS) && store_api_known(CB "BatchDeleteBuilds") && !store_api_known(CB "StartBuild"),
	   "store_api_known");
	free(f1);
	free(f2);
	free(f3);
	free(b1);
	free(b2);
	free(dir);
	free(dir2);
	drop_home(home);
}

/* The one error -> AWS exception table (store/api.h), where the server's and
 * the CLI's former tables disagreed: decided by the service models. */
static void test_error_table(void)
{
	const struct {
		const char *target;
		int code;
		const char *type;
		unsigned status;
	} rows[] = {
		{CB "ListProjects", CBL_EINVAL, "InvalidInputException", 400},
		{CB "StartBuild", CBL_ESPEC, "InvalidInputException", 400},
		{CB "BatchGetBuilds", CBL_ENOENT, "ResourceNotFoundException", 400},
		{CB "CreateProject", CBL_EEXIST, "ResourceAlreadyExistsException", 400},
		{CB "CreateProject", CBL_ELIMIT, "AccountLimitExceededException", 400},
		{CB "ListProjects", CBL_EIO, "InternalFailure", 500},
		{CB "ListProjects", CBL_EINTERNAL, "InternalFailure", 500},
		{LOGS, CBL_EINVAL, "InvalidParameterException", 400},
		{LOGS, CBL_ESPEC, "InvalidParameterException", 400},
		{LOGS, CBL_ENOENT, "ResourceNotFoundException", 400},
		/* GetLogEvents models no AccountLimitExceeded; LimitExceeded is retried */
		{LOGS, CBL_ELIMIT, "InvalidParameterException", 400},
		/* its modeled fault, not CodeBuild's InternalFailure */
		{LOGS, CBL_EIO, "ServiceUnavailableException", 500},
		{NULL, CBL_EIO, "InternalFailure", 500},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const char *t = store_api_error_type(rows[i].target, rows[i].code);
		unsigned st = store_api_error_status(rows[i].code);
		ok(!strcmp(t, rows[i].type) && st == rows[i].status, "error %d on %s: %s %u (got %s %u)",
		   rows[i].code, rows[i].target ? rows[i].target : "(none)", rows[i].type, rows[i].status, t, st);
	}
}

/* ---------------------------------------------------------------- recover */

static void test_unfinished_and_recover(void)
{
	char *home = new_home("unfinished");
	char u1[37], u2[37], u3[37];
	cbl_error *e = NULL;
	free(save_build(home, "pq", 1, 1700000000000, true, u1));
	free(save_build(home, "pq", 2, 1700000001000, false, u2));
	char *dir = save_build(home, "pq", 3, 1700000002000, false, u3);
	json_t *r = make_record("pq", u3, 3, 1700000002000, false);
	json_object_set_new(r, "currentPhase", json_string("QUEUED"));
	store_build_save(dir, r, false, &e);
	json_decref(r);
	free(dir);
	store_unfinished *v = NULL;
	size_t n = 0;
	is_int(store_builds_unfinished(home, &v, &n, &e), 0, "unfinished builds listed");
	ok(n == 2 && strstr(v[0].id, u2) && !v[0].queued && v[0].owner_alive &&
		   strstr(v[1].id, u3) && v[1].queued,
	   "the running one, then the queued one, in start order");
	store_unfinished_free(v, n);
	drop_home(home);

	/* a state directory this process never opened: build.json, launch.json
	 * and a database of garbage */
	home = new_home("recover");
	char uuid[37];
	cbl_uuid4(uuid);
	char *bdir = cbl_xasprintf("%s/builds/proj/%s", home, uuid);
	cbl_mkdir_p(bdir, 0755, &e);
	r = make_record("proj", uuid, 4, 1700000000000, true);
	char *path = cbl_path_join(bdir, "build.json");
	json_dump_file(r, path, 0);
	free(path);
	json_decref(r);
	json_t *launch = json_pack("{s:{s:s, s:s, s:{s:s}}, s:I}", "project", "name", "proj",
				   "description", "from launch.json", "source", "type", "NO_SOURCE",
				   "buildNumber", (json_int_t)4);
	path = cbl_path_join(bdir, "launch.json");
	json_dump_file(launch, path, 0);
	free(path);
	json_decref(launch);
	path = cbl_path_join(home, "codebuild-local.db");
	cbl_write_file_atomic(path, "garbage, not SQLite", 19, 0644, false, &e);
	store_recover_report rep = {0};
	is_int(store_recover(home, &rep, &e), 0, "store_recover on a garbage database");
	ok(rep.damaged_path && strstr(rep.damaged_path, "codebuild-local.db.damaged-"),
	   "the damaged file is kept aside");
	char *kept = NULL;
	size_t klen = 0;
	ok(rep.damaged_path && cbl_read_file(rep.damaged_path, 0, &kept, &klen, &e) == 0 &&
		   klen == 19 && !memcmp(kept, "garbage", 7),
	   "... untouched");
	free(kept);
	ok(rep.builds == 1 && rep.projects == 1 && rep.projects_from_launches == 1 &&
		   rep.projects_salvaged == 0,
	   "one build, its project from launch.json");
	store_recover_report_release(&rep);
	json_t *proj = NULL;
	is_int(store_project_get(home, "proj", &proj, &e), 0, "the project is back");
	is_str(json_string_value(json_object_get(proj, "description")), "from launch.json",
	       "... as launch.json had it");
	json_decref(proj);
	int64_t next = 0;
	store_next_build_number(home, "proj", &next, &e);
	is_int(next, 5, "numbering goes on after the recovered builds");
	cbl_error_free(e);
	free(path);
	free(bdir);
	drop_home(home);
}

/* BuildBatch records: save/load, a dead runner's batch finished, the lists'
 * filter, order and pages, numbers per project. */
static void test_build_batches(void)
{
	char *home = new_home("batches");
	cbl_error *e = NULL;
	int64_t n1 = 0, n2 = 0;
	ok(store_batch_next_number(home, "bp", &n1, &e) == 0 && store_batch_next_number(home, "bp", &n2, &e) == 0 &&
		   n1 == 1 && n2 == 2,
	   "batch numbers count per project");
	int64_t bn = 0;
	ok(store_next_build_number(home, "bp", &bn, &e) == 0 && bn == 1, "build numbers are their own");
	static const char *const st[] = {"SUCCEEDED", "FAILED", "SUCCEEDED"};
	char ids[3][64];
	for (int i = 0; i < 3; i++) {
		snprintf(ids[i], sizeof(ids[i]), "bp:0000000%d-0000-4000-8000-000000000000", i);
		json_t *r = json_pack("{s:s, s:f, s:s, s:b, s:[]}", "id", ids[i], "startTime", 1000.0 + i,
				      "buildBatchStatus", st[i], "complete", 1, "buildGroups");
		ok(store_batch_save(home, r, &e) == 0, "batch saved");
		json_decref(r);
	}
	/* one whose runner is gone (a pid that is not running) */
	json_t *r = json_pack("{s:s, s:f, s:s, s:s, s:b, s:[{s:s, s:f}]}", "id",
			      "bp:00000009-0000-4000-8000-000000000000", "startTime", 999.0, "buildBatchStatus",
			      "IN_PROGRESS", "currentPhase", "IN_PROGRESS", "complete", 0, "phases", "phaseType",
			      "IN_PROGRESS", "startTime", 999.0);
	store_batch_save(home, r, &e);
	json_decref(r);
	char *dir = NULL;
	store_batch_dir_of(home, "bp:00000009-0000-4000-8000-000000000000", &dir, &e);
	char *path = cbl_path_join(dir, "batch.json"), *data = NULL;
	size_t len = 0;
	cbl_read_file(path, 1 << 20, &data, &len, NULL);
	json_t *doc = json_loads(data, 0, NULL);
	json_object_set_new(json_object_get(doc, "_runner"), "pid", json_integer(999999));
	char *txt = json_dumps(doc, JSON_COMPACT);
	cbl_write_file_atomic(path, txt, strlen(txt), 0600, false, NULL);
	free(txt);
	free(data);
	free(path);
	free(dir);
	json_decref(doc);
	int rc;
	json_t *out = call(home, CB "BatchGetBuildBatches",
			   "{\"ids\": [\"bp:00000009-0000-4000-8000-000000000000\", "
			   "\"arn:aws:codebuild:us-east-1:000000000000:build-batch/bp:00000001-0000-4000-8000-000000000000\", "
			   "\"bp:0000000f-0000-4000-8000-000000000000\"]}",
			   &rc, NULL);
	json_t *got = json_object_get(out, "buildBatches");
	ok(rc == 0 && json_array_size(got) == 2, "two found");
	json_t *dead = json_array_get(got, 0);
	ok(!strcmp(cbl_json_str_or_empty(dead, "buildBatchStatus"), "FAILED") &&
		   json_is_true(json_object_get(dead, "complete")) && !json_object_get(dead, "_runner"),
	   "a dead runner's batch ends FAILED, without the runner's member");
	is_int((long)json_array_size(json_object_get(out, "buildBatchesNotFound")), 1, "one not found");
	json_decref(out);
	out = call(home, CB "ListBuildBatchesForProject",
		   "{\"projectName\": \"bp\", \"maxResults\": 2, \"sortOrder\": \"ASCENDING\"}", &rc, NULL);
	is_int(rc, CBL_ENOENT, "an unknown project");
	json_decref(out);
	store_project_ensure_implicit(home, "bp", "/nonexistent", &e);
	out = call(home, CB "ListBuildBatchesForProject",
		   "{\"projectName\": \"bp\", \"maxResults\": 2, \"sortOrder\": \"ASCENDING\"}", &rc, NULL);
	const char *tok = cbl_json_str(out, "nextToken");
	ok(rc == 0 && json_array_size(json_object_get(out, "ids")) == 2 && tok, "first page of two");
	ok(!strcmp(json_string_value(json_array_get(json_object_get(out, "ids"), 0)),
		   "bp:00000009-0000-4000-8000-000000000000"),
	   "oldest first");
	char *req = cbl_xasprintf("{\"projectName\": \"bp\", \"maxResults\": 2, \"sortOrder\": \"ASCENDING\", "
				  "\"nextToken\": \"%s\"}",
				  tok ? tok : "");
	json_decref(out);
	out = call(home, CB "ListBuildBatchesForProject", req, &rc, NULL);
	ok(rc == 0 && json_array_size(json_object_get(out, "ids")) == 2 && !json_object_get(out, "nextToken"),
	   "last page");
	free(req);
	json_decref(out);
	out = call(home, CB "ListBuildBatches", "{\"filter\": {\"status\": \"SUCCEEDED\"}}", &rc, NULL);
	json_t *sids = json_object_get(out, "ids");
	ok(rc == 0 && json_array_size(sids) == 2 && !strcmp(json_string_value(json_array_get(sids, 0)), ids[2]),
	   "filtered, newest first");
	json_decref(out);
	out = call(home, CB "DeleteBuildBatch", "{\"id\": \"bp:00000001-0000-4000-8000-000000000000\"}", &rc, NULL);
	ok(rc == 0 && !strcmp(cbl_json_str_or_empty(out, "statusCode"), "BATCH_DELETED"), "deleted");
	json_decref(out);
	json_t *gone = NULL;
	is_int(store_batch_load(home, ids[1], &gone, NULL), CBL_ENOENT, "and gone");
	out = call(home, CB "BatchGetBuildBatches", "{\"ids\": [\"nope\"]}", &rc, NULL);
	ok(rc == 0 && json_array_size(json_object_get(out, "buildBatchesNotFound")) == 1, "a malformed id is not found");
	json_decref(out);
	cbl_error_free(e);
	drop_home(home);
}

int main(void)
{
	test_build_batches();
	test_schema();
	test_migrate_from_v1();
	test_legacy_import();
	test_numbers_fork();
	test_recovery();
	test_pagination();
	test_projects();
	test_batch_builds();
	test_logs();
	test_filter_logs();
	test_error_table();
	test_unfinished_and_recover();
	return tap_done();
}
