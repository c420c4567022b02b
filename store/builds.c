/* store/builds.c - build records in the database: upsert at every phase
 * change, crash recovery of builds whose runner died, and the build data
 * operations (BatchGetBuilds, ListBuilds, ListBuildsForProject,
 * BatchDeleteBuilds). */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/time.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- ids */



char *store_arn_region_account(const char *arn, char **account)
{
	/* arn:aws:codebuild:<region>:<account>:... */
	char *region = NULL;
	*account = NULL;
	if (arn && !strncmp(arn, "arn:", 4)) {
		const char *p = strchr(arn + 4, ':');     /* after partition */
		const char *q = p ? strchr(p + 1, ':') : NULL; /* after service */
		const char *r = q ? strchr(q + 1, ':') : NULL; /* after region */
		const char *a = r ? strchr(r + 1, ':') : NULL; /* after account */
		if (q && r && a && r > q + 1 && a > r + 1) {
			region = cbl_xstrndup(q + 1, (size_t)(r - q - 1));
			*account = cbl_xstrndup(r + 1, (size_t)(a - r - 1));
		}
	}
	if (!region) {
		region = cbl_xstrdup(STORE_DEFAULT_REGION);
		*account = cbl_xstrdup(STORE_DEFAULT_ACCOUNT);
	}
	return region;
}

static const char sql_exported_del[] = "DELETE FROM build_exported_variables WHERE build_id = ?1";
static const char sql_exported_ins[] = "INSERT INTO build_exported_variables(build_id, seq, name, value)"
				       " VALUES(?1, ?2, ?3, ?4)";

static int replace_exported(store_db *h, const char *id, json_t *record, cbl_error **err)
{
	sqlite3_stmt *del = NULL, *ins = NULL;
	int rc = store_stmt(h, sql_exported_del, &del, err);
	if (rc)
		goto out;
	sqlite3_bind_text(del, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(del) != SQLITE_DONE) {
		rc = store_sql_error(h->db, err, "cannot update exported variables");
		goto out;
	}
	json_t *vars = json_object_get(record, "exportedEnvironmentVariables");
	if (!json_array_size(vars))
		goto out;
	rc = store_stmt(h, sql_exported_ins, &ins, err);
	if (rc)
		goto out;
	size_t i;
	json_t *v;
	json_array_foreach(vars, i, v) {
		const char *name = cbl_json_str(v, "name");
		if (!name)
			continue;
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, (sqlite3_int64)i);
		sqlite3_bind_text(ins, 3, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, cbl_json_str_or_empty(v, "value"), -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = store_sql_error(h->db, err, "cannot update exported variables");
			goto out;
		}
	}
out:
	store_stmt_done(del);
	store_stmt_done(ins);
	return rc;
}

static const char sql_upsert[] =
	"INSERT INTO builds(id, project, uuid, number, start_ms, end_ms, status, phase, complete,"
	"                   runner_pid, runner_start, dir, record)"
	" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
	" ON CONFLICT(id) DO UPDATE SET number = excluded.number, start_ms = excluded.start_ms,"
	"   end_ms = excluded.end_ms, status = excluded.status, phase = excluded.phase,"
	"   complete = excluded.complete, runner_pid = excluded.runner_pid,"
	"   runner_start = excluded.runner_start, dir = excluded.dir, record = excluded.record"
	/* a record finished by recovery stays finished */
	" WHERE builds.complete = 0 OR excluded.complete = 1";
static const char sql_previous[] = "SELECT record FROM builds WHERE id = ?1";

/* The record as stored before this save (NULL: a new build). */
static json_t *previous_record(store_db *h, const char *id)
{
	sqlite3_stmt *st = NULL;
	json_t *r = NULL;
	if (store_stmt(h, sql_previous, &st, NULL) == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			r = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
	}
	store_stmt_done(st);
	return r;
}

static const char sql_stream[] = "INSERT OR IGNORE INTO log_streams(group_name, stream_name, build_id,"
				 " path, created_ms) VALUES(?1, ?2, ?3, ?4, ?5)";

int store_db_build_upsert_raw(store_db *h, const char *build_dir, json_t *record, long long pid,
			      long long pstart, cbl_error **err)
{
	sqlite3 *db = h->db;
	sqlite3_stmt *st = NULL;
	char *text = NULL, *project = NULL, *uuid = NULL, *group = NULL, *log = NULL;
	char *region = NULL, *account = NULL, *location = NULL;
	json_t *old = NULL;
	const char *id = cbl_json_str_or_empty(record, "id");
	int rc = store_split_build_id(id, &project, &uuid, err);
	if (rc)
		return cbl_error_wrap(err, "build record in '%s'", build_dir);
	bool complete = json_is_true(json_object_get(record, "buildComplete"));
	const json_t *end = json_object_get(record, "endTime");
	/* the API's Build shape: codebuild-local's own object (resource use,
	 * cost) stays in build.json and the metrics, out of BatchGetBuilds */
	json_t *api = json_copy(record);
	json_object_del(api, "codebuildLocal");
	text = json_dumps(api, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	json_decref(api);
	if (!text) {
		rc = cbl_error_set(err, CBL_EINTERNAL, "cannot serialize build record");
		goto out;
	}
	old = previous_record(h, id);
	rc = store_stmt(h, sql_upsert, &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, project, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, json_integer_value(json_object_get(record, "buildNumber")));
	sqlite3_bind_int64(st, 5, store_json_time_ms(json_object_get(record, "startTime")));
	if (end)
		sqlite3_bind_int64(st, 6, store_json_time_ms(end));
	sqlite3_bind_text(st, 7, cbl_json_str_or_empty(record, "buildStatus"), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, cbl_json_str_or_empty(record, "currentPhase"), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, complete);
	if (!complete && pid > 0) {
		sqlite3_bind_int64(st, 10, pid);
		sqlite3_bind_int64(st, 11, pstart);
	}
	sqlite3_bind_text(st, 12, build_dir, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = store_sql_error(db, err, "cannot save the build record");
		goto out;
	}
	/* 0 when a record finished by recovery stayed as it was */
	bool changed = sqlite3_changes(db) > 0;
	store_stmt_done(st);
	st = NULL;
	/* (a database still at an older schema, as the migration tests make
	 * one, has no outbox or metrics yet) */
	bool v4 = sqlite3_table_column_metadata(db, NULL, "event_outbox", "seq", NULL, NULL, NULL, NULL, NULL) ==
		  SQLITE_OK;
	if (changed && v4) {
		rc = store_db_events_build(h, old, record, err);
		if (rc)
			goto out;
	}

	/* the log stream index: CloudWatch's names for build.log */
	const json_t *logs = json_object_get(record, "logs");
	group = cbl_json_str(logs, "groupName")
			? cbl_xstrdup(cbl_json_str_or_empty(logs, "groupName"))
			: cbl_xasprintf("/aws/codebuild/%s", project);
	const char *stream = cbl_json_str(logs, "streamName")
				     ? cbl_json_str_or_empty(logs, "streamName")
				     : uuid;
	log = cbl_path_join(build_dir, "build.log");
	rc = store_stmt(h, sql_stream, &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, stream, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, log, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, store_json_time_ms(json_object_get(record, "startTime")));
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = store_sql_error(db, err, "cannot index the build's log stream");
		goto out;
	}

	store_stmt_done(st);
	st = NULL;
	if (complete) {
		rc = replace_exported(h, id, record, err);
		if (!rc && changed && v4)
			rc = store_db_metrics_record(h, record, err);
		if (rc)
			goto out;
	}

	/* `run` without a project: the implicit project shows in list-projects */
	const json_t *src = json_object_get(record, "source");
	const char *stype = cbl_json_str_or_empty(src, "type");
	const char *sloc = cbl_json_str_or_empty(src, "location");
	if (!*stype)
		stype = "NO_SOURCE";
	location = sloc[0] == '/' ? cbl_xasprintf("file://%s", sloc) : cbl_xstrdup(sloc);
	region = store_arn_region_account(cbl_json_str(record, "arn"), &account);
	rc = store_db_project_ensure_implicit_raw(h, project, location, stype, region, account, err);
	/* the reports, once the runner has written them all */
	if (!rc && complete && changed)
		rc = store_db_reports_ingest(h, build_dir, record, err);
out:
	store_stmt_done(st);
	free(text);
	free(project);
	free(uuid);
	free(group);
	free(log);
	free(region);
	free(account);
	json_decref(old);
	free(location);
	return rc;
}

int store_db_build_upsert(store_db *h, const char *build_dir, json_t *record, cbl_error **err)
{
	int rc = store_begin(h->db, err);
	if (rc)
		return rc;
	rc = store_db_build_upsert_raw(h, build_dir, record, h->pid, h->pstart, err);
	if (!rc)
		rc = store_commit(h->db, err);
	if (rc)
		store_rollback(h->db);
	return rc;
}

/* ---------------------------------------------------------------- recovery */

/* Sets key after `after` (or at the end), keeping the model's member order
 * readable in the stored record. */
static void set_after(json_t *obj, const char *after, const char *key, json_t *value)
{
	if (json_object_get(obj, key) || !json_object_get(obj, after)) {
		json_object_set_new(obj, key, value);
		return;
	}
	json_t *copy = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		json_object_set(copy, k, v);
		if (!strcmp(k, after))
			json_object_set_new(copy, key, value);
	}
	json_object_clear(obj);
	json_object_update(obj, copy);
	json_decref(copy);
}

static const char *const phase_order[] = {"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE",
					  "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD",
					  "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED", NULL};

/* The phase a runner goes to after `done` ended with `status` (runner.c's
 * transition rules), or NULL. */
static const char *next_phase(const char *done, const char *status)
{
	if (!strcmp(status, "SUCCEEDED")) {
		for (size_t i = 0; phase_order[i + 1]; i++)
			if (!strcmp(done, phase_order[i]))
				return phase_order[i + 1];
		return NULL;
	}
	if (!strcmp(done, "BUILD"))
		return "POST_BUILD";
	if (!strcmp(done, "POST_BUILD"))
		return "UPLOAD_ARTIFACTS";
	if (!strcmp(done, "FINALIZING") || !strcmp(done, "COMPLETED"))
		return NULL;
	return "FINALIZING";
}

void store_record_finish_dead(json_t *record, bool stopped, int64_t now_ms)
{
	const char *status = stopped ? "STOPPED" : "FAULT";
	json_t *phases = json_object_get(record, "phases");
	if (!json_is_array(phases)) {
		phases = json_array();
		json_object_set_new(record, "phases", phases);
	}
	size_t n = json_array_size(phases);
	json_t *last = n ? json_array_get(phases, n - 1) : NULL;
	/* the phase that was running: the open one, or - records are saved as
	 * phases end - the one the last ended phase leads to */
	json_t *running = NULL;
	size_t at = n;
	if (last && !json_object_get(last, "endTime")) {
		running = last;
		at = n - 1;
	} else if (last) {
		const char *next = next_phase(cbl_json_str_or_empty(last, "phaseType"), cbl_json_str_or_empty(last, "phaseStatus"));
		if (next && strcmp(next, "COMPLETED")) {
			running = json_pack("{s:s, s:O}", "phaseType", next, "startTime",
					    json_object_get(last, "endTime"));
			json_array_append_new(phases, running);
		}
	}
	if (running && strcmp(cbl_json_str_or_empty(running, "phaseType"), "COMPLETED")) {
		int64_t start = store_json_time_ms(json_object_get(running, "startTime"));
		json_t *fresh = json_object();
		json_object_set(fresh, "phaseType", json_object_get(running, "phaseType"));
		json_object_set_new(fresh, "phaseStatus", json_string(status));
		json_object_set_new(fresh, "startTime", store_json_time(start ? start : now_ms));
		json_object_set_new(fresh, "endTime", store_json_time(now_ms));
		json_object_set_new(fresh, "durationInSeconds",
				    json_integer(start && now_ms > start ? (now_ms - start) / 1000 : 0));
		json_t *ctxs = json_array(), *c = json_object();
		json_object_set_new(c, "statusCode", json_string(stopped ? "BUILD_STOPPED" : "INTERNAL_ERROR"));
		json_object_set_new(c, "message", json_string(stopped ? "Build was stopped"
								      : "Build runner exited unexpectedly"));
		json_array_append_new(ctxs, c);
		json_object_set_new(fresh, "contexts", ctxs);
		json_array_set_new(phases, at < n ? at : json_array_size(phases) - 1, fresh);
	}
	n = json_array_size(phases);
	last = n ? json_array_get(phases, n - 1) : NULL;
	if (!last || strcmp(cbl_json_str_or_empty(last, "phaseType"), "COMPLETED")) {
		json_t *done = json_object();
		json_object_set_new(done, "phaseType", json_string("COMPLETED"));
		json_object_set_new(done, "startTime", store_json_time(now_ms));
		json_array_append_new(phases, done);
	}
	set_after(record, "startTime", "endTime", store_json_time(now_ms));
	json_object_set_new(record, "currentPhase", json_string("COMPLETED"));
	json_object_set_new(record, "buildStatus", json_string(status));
	json_object_set_new(record, "buildComplete", json_true());
}

typedef struct dead_build {
	char *id;
	char *dir;
} dead_build;

static const char sql_running_one[] = "SELECT id, runner_pid, runner_start, dir, phase, stop_requested"
				     " FROM builds WHERE complete = 0 AND id = ?1";
static const char sql_running[] = "SELECT id, runner_pid, runner_start, dir, phase, stop_requested"
				 " FROM builds WHERE complete = 0";

/* A build a server queued (launch.json) and did not start: it waits for
 * the next server (runner/launch.h, resume) rather than being finished
 * when the server that queued it is gone - unless a stop was asked. */
static bool waits_for_a_server(sqlite3_stmt *st)
{
	const char *phase = (const char *)sqlite3_column_text(st, 4);
	if (!phase || strcmp(phase, "QUEUED") || sqlite3_column_int(st, 5))
		return false;
	char *launch = cbl_path_join((const char *)sqlite3_column_text(st, 3), "launch.json");
	bool queued = access(launch, F_OK) == 0;
	free(launch);
	return queued;
}

static int find_dead(store_db *h, const char *only_id, dead_build **out, size_t *nout,
		     cbl_error **err)
{
	sqlite3 *db = h->db;
	sqlite3_stmt *st = NULL;
	size_t n = 0, cap = 0;
	dead_build *v = NULL;
	int rc = store_stmt(h, only_id ? sql_running_one : sql_running, &st, err);
	if (rc)
		return rc;
	if (only_id)
		sqlite3_bind_text(st, 1, only_id, -1, SQLITE_STATIC);
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		long long pid = sqlite3_column_type(st, 1) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 1);
		long long start = sqlite3_column_int64(st, 2);
		if (store_runner_alive(pid, start) || waits_for_a_server(st))
			continue;
		CBL_GROW(v, n + 1, cap);
		v[n].id = cbl_xstrdup((const char *)sqlite3_column_text(st, 0));
		v[n].dir = cbl_xstrdup((const char *)sqlite3_column_text(st, 3));
		n++;
	}
	if (s != SQLITE_DONE)
		rc = store_sql_error(db, err, "cannot read running builds");
	store_stmt_done(st);
	*out = v;
	*nout = n;
	return rc;
}

/* What a save of the finished record would have added: the metrics row
 * and the events (none on a database at an older schema). */
static int finished_elsewhere(store_db *h, const json_t *before, const json_t *rec, cbl_error **err)
{
	if (sqlite3_table_column_metadata(h->db, NULL, "event_outbox", "seq", NULL, NULL, NULL, NULL, NULL) !=
	    SQLITE_OK)
		return 0;
	int rc = store_db_metrics_record(h, rec, err);
	if (rc == CBL_EINVAL && err) { /* a record without an id: no row, not a failure */
		cbl_error_free(*err);
		*err = NULL;
		rc = 0;
	}
	return rc ? rc : store_db_events_build(h, before, rec, err);
}

int store_db_recover(store_db *h, const char *only_id, cbl_error **err)
{
	sqlite3 *db = h->db;
	dead_build *dead = NULL;
	size_t ndead = 0;
	sqlite3_stmt *sel = NULL, *upd = NULL;
	json_t **fixed = NULL;
	int done = 0;
	/* cheap, lock-free look first: most calls find nothing to do */
	int rc = find_dead(h, only_id, &dead, &ndead, err);
	if (rc || !ndead)
		goto out;
	fixed = cbl_xcalloc(ndead, sizeof(*fixed));
	rc = store_begin(db, err);
	if (rc)
		goto out;
	rc = store_prepare(db,
			   "SELECT runner_pid, runner_start, stop_requested, record FROM builds"
			   " WHERE id = ?1 AND complete = 0",
			   &sel, err);
	if (!rc)
		rc = store_prepare(db,
				   "UPDATE builds SET complete = 1, status = ?2, phase = 'COMPLETED',"
				   " end_ms = ?3, runner_pid = NULL, runner_start = NULL, record = ?4"
				   " WHERE id = ?1 AND complete = 0",
				   &upd, err);
	int64_t now_ms = cbl_now_us() / 1000;
	for (size_t i = 0; !rc && i < ndead; i++) {
		sqlite3_reset(sel);
		sqlite3_bind_text(sel, 1, dead[i].id, -1, SQLITE_STATIC);
		int s = sqlite3_step(sel);
		if (s == SQLITE_DONE)
			continue; /* finished meanwhile */
		if (s != SQLITE_ROW) {
			rc = store_sql_error(db, err, "cannot read a running build");
			break;
		}
		long long pid = sqlite3_column_type(sel, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(sel, 0);
		long long start = sqlite3_column_int64(sel, 1);
		bool stop = sqlite3_column_int(sel, 2) != 0;
		if (store_runner_alive(pid, start))
			continue; /* another runner took it over meanwhile */
		json_t *rec = json_loads((const char *)sqlite3_column_text(sel, 3), 0, NULL);
		if (!rec)
			rec = json_object();
		json_t *before = json_deep_copy(rec);
		store_record_finish_dead(rec, stop, now_ms);
		char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
		sqlite3_reset(upd);
		sqlite3_bind_text(upd, 1, dead[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_text(upd, 2, stop ? "STOPPED" : "FAULT", -1, SQLITE_STATIC);
		sqlite3_bind_int64(upd, 3, now_ms);
		sqlite3_bind_text(upd, 4, text ? text : "{}", -1, SQLITE_TRANSIENT);
		free(text);
		if (sqlite3_step(upd) != SQLITE_DONE) {
			json_decref(rec);
			json_decref(before);
			rc = store_sql_error(db, err, "cannot finish a dead build");
			break;
		}
		fixed[i] = rec;
		done++;
		/* its metrics row, and its end's events (after its last phases') */
		rc = finished_elsewhere(h, before, rec, err);
		json_decref(before);
	}
	if (!rc)
		rc = store_commit(db, err);
	if (rc) {
		store_rollback(db);
		goto out;
	}
	/* build.json tells the same story (best effort: the database is the truth),
	 * and the dead build's scratch (builds/<p>/<uuid>/tmp: its command
	 * scripts and carried state, credentials the runner handed it) goes:
	 * nothing of a killed build stays behind */
	for (size_t i = 0; i < ndead; i++) {
		if (!fixed[i])
			continue;
		char *scratch = cbl_path_join(dead[i].dir, "tmp");
		cbl_rm_rf(scratch, NULL);
		free(scratch);
		char *s = json_dumps(fixed[i], JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
		char *path = cbl_path_join(dead[i].dir, "build.json");
		if (s && access(dead[i].dir, F_OK) == 0)
			cbl_write_file_atomic(path, s, strlen(s), 0644, false, NULL);
		free(path);
		free(s);
	}
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	for (size_t i = 0; i < ndead; i++) {
		free(dead[i].id);
		free(dead[i].dir);
		if (fixed)
			json_decref(fixed[i]);
	}
	free(dead);
	free(fixed);
	return rc ? rc : done;
}

static const char sql_record[] = "SELECT record FROM builds WHERE id = ?1";

int store_db_build_get(store_db *h, const char *id, json_t **out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_db_recover(h, id, err);
	if (rc < 0)
		return rc;
	rc = store_stmt(h, sql_record, &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		json_error_t je;
		json_t *j = json_loads((const char *)sqlite3_column_text(st, 0), 0, &je);
		if (j)
			*out = j;
		else
			rc = cbl_error_set(err, CBL_EIO, "corrupt build record '%s' in the database: %s", id,
					   je.text);
	} else if (s == SQLITE_DONE) {
		rc = cbl_error_set(err, CBL_ENOENT, "build '%s' not found", id);
	} else {
		rc = store_sql_error(h->db, err, "cannot read a build record");
	}
	store_stmt_done(st);
	return rc;
}

/* ---------------------------------------------------------------- operations */

/* ids: a list of strings.  Its presence, length (1..100) and the strings'
 * (non-empty) are the model's, checked by store_api_validate before any
 * operation runs; it leaves the JSON types to the operation.  *out: the
 * de-duplicated list in request order (borrowed strings). */
static int check_ids(json_t *req, const char ***out, size_t *nout, cbl_error **err)
{
	json_t *ids = json_object_get(req, "ids");
	store_verr v = STORE_VERR_INIT;
	if (!json_is_array(ids))
		store_verr_add(&v, "ids", ids, "Member must be a list");
	else {
		size_t i;
		json_t *x;
		json_array_foreach(ids, i, x) {
			if (!json_is_string(x)) {
				store_verr_add(&v, "ids", ids,
					       "Member must satisfy constraint: [Member must have length "
					       "greater than or equal to 1]");
				break;
			}
		}
	}
	int rc = store_verr_finish(&v, err);
	if (rc)
		return rc;
	const char **list = cbl_xcalloc(json_array_size(ids) + 1, sizeof(*list));
	size_t n = 0, i;
	json_t *x;
	json_array_foreach(ids, i, x) {
		const char *s = json_string_value(x);
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = !strcmp(list[k], s);
		if (!dup)
			list[n++] = s;
	}
	*out = list;
	*nout = n;
	return 0;
}

/* "<project>:<uuid>" for an id or a build ARN (caller frees), or NULL. */
static char *canonical_id(const char *id)
{
	char *p = NULL, *u = NULL;
	if (store_split_build_id(id, &p, &u, NULL))
		return NULL;
	char *c = cbl_xasprintf("%s:%s", p, u);
	free(p);
	free(u);
	return c;
}

/* BatchGetBuilds, answered as a json_t (out) or, without parsing a single
 * record, as the response text (text): the stored records are compact JSON
 * already, so the fast path only splices them. */
static int batch_get(store_db *h, json_t *req, json_t **out, cbl_buf *text, cbl_error **err)
{
	const char **ids = NULL;
	size_t n = 0, nfound = 0;
	sqlite3_stmt *st = NULL;
	json_t *builds = NULL, *missing = json_array();
	int rc = check_ids(req, &ids, &n, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char *p = NULL, *u = NULL;
		rc = store_split_build_id(ids[i], &p, &u, err);
		free(p);
		free(u);
		if (rc)
			goto out;
	}
	rc = store_db_recover(h, NULL, err);
	if (rc < 0)
		goto out;
	rc = store_stmt(h, sql_record, &st, err);
	if (rc)
		goto out;
	if (text)
		cbl_buf_puts(text, "{\"builds\":[");
	else
		builds = json_array();
	for (size_t i = 0; i < n; i++) {
		char *id = canonical_id(ids[i]);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		free(id);
		int s = sqlite3_step(st);
		if (s != SQLITE_ROW && s != SQLITE_DONE) {
			rc = store_sql_error(h->db, err, "cannot read a build record");
			goto out;
		}
		const char *rec = s == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
		json_t *j = rec && !text ? json_loads(rec, 0, NULL) : NULL;
		if (rec && text) {
			if (nfound++)
				cbl_buf_putc(text, ',');
			cbl_buf_append(text, rec, (size_t)sqlite3_column_bytes(st, 0));
		} else if (j) {
			json_array_append_new(builds, j);
		} else {
			json_array_append_new(missing, json_string(ids[i]));
		}
	}
	if (text) {
		char *m = json_dumps(missing, JSON_COMPACT);
		cbl_buf_printf(text, "],\"buildsNotFound\":%s}", m ? m : "[]");
		free(m);
	} else {
		*out = json_object();
		json_object_set(*out, "builds", builds);
		json_object_set(*out, "buildsNotFound", missing);
	}
out:
	store_stmt_done(st);
	json_decref(builds);
	json_decref(missing);
	free(ids);
	return rc;
}

int store_op_batch_get_builds(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	return batch_get(h, req, out, NULL, err);
}

int store_op_batch_get_builds_text(store_db *h, json_t *req, cbl_buf *out, cbl_error **err)
{
	return batch_get(h, req, NULL, out, err);
}

static int check_sort_order(json_t *req, bool *desc, cbl_error **err)
{
	json_t *so = json_object_get(req, "sortOrder");
	*desc = true;
	if (!so)
		return 0;
	if (json_is_string(so) && !strcmp(json_string_value(so), "ASCENDING")) {
		*desc = false;
		return 0;
	}
	if (json_is_string(so) && !strcmp(json_string_value(so), "DESCENDING"))
		return 0;
	store_verr v = STORE_VERR_INIT;
	store_verr_add(&v, "sortOrder", so, "Member must satisfy enum value set: [ASCENDING, DESCENDING]");
	return store_verr_finish(&v, err);
}

static int bad_token(cbl_error **err) { return cbl_error_set(err, CBL_EINVAL, "Invalid next token"); }

/* Tokens are the sort key of the last id returned: "<key>.<id>" with key a
 * number (keyset paging: stable while builds come and go). */
static int parse_token(json_t *req, bool *have, long long *key, char **id, cbl_error **err)
{
	json_t *t = json_object_get(req, "nextToken");
	*have = false;
	*id = NULL;
	if (!t || json_is_null(t))
		return 0;
	if (!json_is_string(t))
		return bad_token(err);
	const char *s = json_string_value(t);
	char *end = NULL;
	errno = 0;
	long long k = strtoll(s, &end, 10);
	if (end == s || errno || *end != '.' || !end[1])
		return bad_token(err);
	char *p = NULL, *u = NULL;
	if (store_split_build_id(end + 1, &p, &u, NULL))
		return bad_token(err);
	free(p);
	free(u);
	*have = true;
	*key = k;
	*id = cbl_xstrdup(end + 1);
	return 0;
}

static int list_page(sqlite3 *db, const char *sql, const char *project, bool have, long long key,
		     const char *after, json_t **out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(db, sql, &st, err);
	if (rc)
		return rc;
	int i = 1;
	if (project)
		sqlite3_bind_text(st, i++, project, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, i++, have);
	sqlite3_bind_int64(st, i++, key);
	sqlite3_bind_text(st, i++, after ? after : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, i, STORE_PAGE_SIZE + 1);
	json_t *ids = json_array();
	long long last_key = 0;
	char *last_id = NULL;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (json_array_size(ids) == STORE_PAGE_SIZE) {
			/* one more exists: the page ends here */
			*out = json_object();
			json_object_set_new(*out, "ids", ids);
			char *tok = cbl_xasprintf("%lld.%s", last_key, last_id);
			json_object_set_new(*out, "nextToken", json_string(tok));
			free(tok);
			ids = NULL;
			break;
		}
		free(last_id);
		last_key = sqlite3_column_int64(st, 0);
		last_id = cbl_xstrdup((const char *)sqlite3_column_text(st, 1));
		json_array_append_new(ids, json_string(last_id));
	}
	if (ids) {
		if (s != SQLITE_DONE) {
			rc = store_sql_error(db, err, "cannot list builds");
			json_decref(ids);
		} else {
			*out = json_object();
			json_object_set_new(*out, "ids", ids);
		}
	}
	free(last_id);
	sqlite3_finalize(st);
	return rc;
}

int store_op_list_builds(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	bool desc, have;
	long long key = 0;
	char *after = NULL;
	int rc = check_sort_order(req, &desc, err);
	if (!rc)
		rc = parse_token(req, &have, &key, &after, err);
	if (rc)
		return rc;
	rc = list_page(h->db,
		       desc ? "SELECT start_ms, id FROM builds WHERE NOT ?1 OR (start_ms, id) < (?2, ?3)"
			      " ORDER BY start_ms DESC, id DESC LIMIT ?4"
			    : "SELECT start_ms, id FROM builds WHERE NOT ?1 OR (start_ms, id) > (?2, ?3)"
			      " ORDER BY start_ms, id LIMIT ?4",
		       NULL, have, key, after, out, err);
	free(after);
	return rc;
}


int store_op_list_builds_for_project(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	bool desc, have;
	long long key = 0;
	char *after = NULL;
	json_t *pn = json_object_get(req, "projectName");
	store_verr v = STORE_VERR_INIT;
	/* present and non-empty: store_api_validate's (the model's) */
	if (!json_is_string(pn))
		store_verr_add(&v, "projectName", pn, "Member must be a string");
	int rc = store_verr_finish(&v, err);
	if (!rc)
		rc = check_sort_order(req, &desc, err);
	if (!rc)
		rc = parse_token(req, &have, &key, &after, err);
	if (rc)
		return rc;
	const char *name = json_string_value(pn);
	json_t *proj = NULL;
	rc = store_db_project_get(h, name, &proj, err);
	json_decref(proj);
	if (rc == CBL_ENOENT) {
		cbl_error_clear(err);
		rc = store_project_not_found(name, err);
	}
	if (!rc)
		rc = list_page(h->db,
			       desc ? "SELECT number, id FROM builds WHERE project = ?1 AND"
				      " (NOT ?2 OR (number, id) < (?3, ?4)) ORDER BY number DESC, id DESC LIMIT ?5"
				    : "SELECT number, id FROM builds WHERE project = ?1 AND"
				      " (NOT ?2 OR (number, id) > (?3, ?4)) ORDER BY number, id LIMIT ?5",
			       name, have, key, after, out, err);
	free(after);
	return rc;
}

static void not_deleted(json_t *list, const char *id, const char *code)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "statusCode", json_string(code));
	json_array_append_new(list, o);
}

static const char *build_arn_or(sqlite3_stmt *st, int col, const char *id)
{
	const char *arn = (const char *)sqlite3_column_text(st, col);
	return arn && *arn ? arn : id;
}

int store_op_batch_delete_builds(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const char **ids = NULL;
	size_t n = 0;
	json_t *deleted = json_array(), *kept = json_array();
	sqlite3_stmt *sel = NULL;
	cbl_strv dirs = CBL_STRV_INIT;
	int rc = check_ids(req, &ids, &n, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char *p = NULL, *u = NULL;
		rc = store_split_build_id(ids[i], &p, &u, err);
		free(p);
		free(u);
		if (rc)
			goto out;
	}
	rc = store_db_recover(h, NULL, err);
	if (rc < 0)
		goto out;
	rc = store_begin(h->db, err);
	if (rc)
		goto out;
	rc = store_prepare(h->db, "SELECT complete, project, uuid, json_extract(record, '$.arn') FROM builds"
				  " WHERE id = ?1", &sel, err);
	static const char *const dels[] = {
		"DELETE FROM builds WHERE id = ?1",
		"DELETE FROM log_streams WHERE build_id = ?1",
		"DELETE FROM build_exported_variables WHERE build_id = ?1",
	};
	for (size_t i = 0; !rc && i < n; i++) {
		char *id = canonical_id(ids[i]);
		sqlite3_reset(sel);
		sqlite3_bind_text(sel, 1, id, -1, SQLITE_TRANSIENT);
		int s = sqlite3_step(sel);
		if (s == SQLITE_DONE) {
			not_deleted(kept, ids[i], "BUILD_NOT_FOUND");
		} else if (s != SQLITE_ROW) {
			rc = store_sql_error(h->db, err, "cannot read a build");
		} else if (!sqlite3_column_int(sel, 0)) {
			/* the service answers with the builds' ARNs (aws-cli's
			 * documented batch-delete-builds example) */
			not_deleted(kept, build_arn_or(sel, 3, ids[i]), "BUILD_IN_PROGRESS");
		} else {
			/* the directory we remove is the one the id names, never a
			 * path read back from the database */
			cbl_strv_pushf(&dirs, "%s/builds/%s/%s", h->home,
				       (const char *)sqlite3_column_text(sel, 1),
				       (const char *)sqlite3_column_text(sel, 2));
			for (size_t k = 0; !rc && k < ARRAY_SIZE(dels); k++) {
				sqlite3_stmt *d = NULL;
				rc = store_prepare(h->db, dels[k], &d, err);
				if (!rc) {
					sqlite3_bind_text(d, 1, id, -1, SQLITE_STATIC);
					if (sqlite3_step(d) != SQLITE_DONE)
						rc = store_sql_error(h->db, err, "cannot delete a build");
				}
				sqlite3_finalize(d);
			}
			json_array_append_new(deleted, json_string(build_arn_or(sel, 3, ids[i])));
		}
		free(id);
	}
	sqlite3_finalize(sel);
	sel = NULL;
	if (!rc)
		rc = store_commit(h->db, err);
	if (rc) {
		store_rollback(h->db);
		goto out;
	}
	for (size_t i = 0; i < dirs.n; i++) {
		cbl_rm_rf(dirs.v[i], NULL);
	}
	*out = json_object();
	json_object_set(*out, "buildsDeleted", deleted);
	json_object_set(*out, "buildsNotDeleted", kept);
out:
	sqlite3_finalize(sel);
	cbl_strv_release(&dirs);
	json_decref(deleted);
	json_decref(kept);
	free(ids);
	return rc;
}

int store_db_request_stop(store_db *h, const char *id, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(h->db, "UPDATE builds SET stop_requested = 1 WHERE id = ?1", &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = store_sql_error(h->db, err, "cannot request a stop");
	else if (sqlite3_changes(h->db) == 0)
		rc = cbl_error_set(err, CBL_ENOENT, "Build cannot be found: %s", id);
	sqlite3_finalize(st);
	return rc;
}

int store_db_stop_requested(store_db *h, const char *id, bool *out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(h->db, "SELECT stop_requested FROM builds WHERE id = ?1", &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0) != 0;
	else if (s == SQLITE_DONE)
		rc = cbl_error_set(err, CBL_ENOENT, "Build cannot be found: %s", id);
	else
		rc = store_sql_error(h->db, err, "cannot read a build");
	sqlite3_finalize(st);
	return rc;
}
