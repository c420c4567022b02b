/* store/recover.c - what outlives a crash: the builds a server had queued
 * (store_builds_unfinished, for the server that comes back) and the
 * database itself, rebuilt from the builds' own files (store_recover).
 *
 * Why the database can be rebuilt at all: every build's directory holds its
 * record (build.json, written atomically at the first and the last phase
 * change), its log, its reports, and for builds started through the API
 * launch.json with the project as it was at StartBuild.  A fresh database
 * imports the records the way the first open of an earlier version's state
 * directory does (store/db.c, import_legacy); projects come back from the
 * damaged file when SQLite can still read them, else from the newest
 * launch.json of the project, else as the implicit project of the records. */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/time.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/banned.h"

/* ------------------------------------------------------ unfinished builds */

static const char sql_unfinished[] =
	"SELECT id, dir, phase, runner_pid, runner_start FROM builds WHERE complete = 0"
	" ORDER BY start_ms, number";

int store_builds_unfinished(const char *home, store_unfinished **out, size_t *nout,
			    cbl_error **err)
{
	store_db *h = NULL;
	sqlite3_stmt *st = NULL;
	store_unfinished *v = NULL;
	size_t n = 0, cap = 0;
	*out = NULL;
	*nout = 0;
	int rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	rc = store_prepare(h->db, sql_unfinished, &st, err);
	int s = SQLITE_DONE;
	while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *phase = (const char *)sqlite3_column_text(st, 2);
		long long pid = sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 3);
		CBL_GROW(v, n + 1, cap);
		v[n].id = cbl_xstrdup((const char *)sqlite3_column_text(st, 0));
		v[n].dir = cbl_xstrdup((const char *)sqlite3_column_text(st, 1));
		v[n].queued = phase && !strcmp(phase, "QUEUED");
		v[n].owner_alive = store_runner_alive(pid, sqlite3_column_int64(st, 4));
		n++;
	}
	if (!rc && s != SQLITE_DONE)
		rc = store_sql_error(h->db, err, "cannot read the unfinished builds");
	sqlite3_finalize(st);
	store_db_release(h);
	if (rc) {
		store_unfinished_free(v, n);
		return rc;
	}
	*out = v;
	*nout = n;
	return 0;
}

void store_unfinished_free(store_unfinished *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].id);
		free(v[i].dir);
	}
	free(v);
}

/* -------------------------------------------------------------- recover */

static const char sql_put_project[] =
	"INSERT INTO projects(name, created_ms, modified_ms, implicit, record)"
	" VALUES(?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT(name) DO UPDATE SET created_ms = excluded.created_ms,"
	"   modified_ms = excluded.modified_ms, implicit = excluded.implicit,"
	"   record = excluded.record"
	" WHERE projects.implicit = 1";

/* Writes a project record unless a non-implicit one of that name is there
 * already (salvaged rows come first and win).  1 if written. */
static int put_project(sqlite3 *db, json_t *rec, bool implicit, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	const char *name = cbl_json_str(rec, "name");
	if (!name || !store_project_name_valid(name))
		return 0;
	char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	int rc = store_prepare(db, sql_put_project, &st, err);
	if (!rc && text) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, store_json_time_ms(json_object_get(rec, "created")));
		sqlite3_bind_int64(st, 3, store_json_time_ms(json_object_get(rec, "lastModified")));
		sqlite3_bind_int(st, 4, implicit);
		sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = store_sql_error(db, err, "cannot save a recovered project");
		else
			rc = sqlite3_changes(db) > 0;
	}
	sqlite3_finalize(st);
	free(text);
	return rc;
}

/* The project rows SQLite can still read from the damaged file (as many
 * as it reads before the damage stops it). */
static json_t *salvage_projects(const char *damaged)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	json_t *rows = json_array();
	if (sqlite3_open_v2(damaged, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_prepare_v2(db, "SELECT implicit, record FROM projects", -1, &st, NULL) !=
	    SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 1);
		json_t *rec = text ? json_loads(text, 0, NULL) : NULL;
		if (!json_is_object(rec)) {
			json_decref(rec);
			continue;
		}
		json_object_set_new(rec, "__implicit", json_boolean(sqlite3_column_int(st, 0)));
		json_array_append_new(rows, rec);
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rows;
}

/* The project of the newest launch.json under builds/<name>/ (highest
 * build number), or NULL. */
static json_t *project_from_launches(const char *pdir)
{
	DIR *d = opendir(pdir);
	json_t *best = NULL;
	json_int_t best_num = -1;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *path = cbl_xasprintf("%s/%s/launch.json", pdir, de->d_name);
		json_t *doc = json_load_file(path, 0, NULL);
		free(path);
		json_t *proj = json_object_get(doc, "project");
		json_int_t num = json_integer_value(json_object_get(doc, "buildNumber"));
		if (json_is_object(proj) && num > best_num) {
			json_decref(best);
			best = json_incref(proj);
			best_num = num;
		}
		json_decref(doc);
	}
	if (d)
		closedir(d);
	return best;
}

/* Puts the projects back: salvaged rows, then launch.json for the names
 * that only have an implicit project (or none). */
static int restore_projects(sqlite3 *db, const char *home, json_t *salvaged,
			    store_recover_report *rep, cbl_error **err)
{
	size_t i;
	json_t *rec;
	int rc = 0;
	json_array_foreach(salvaged, i, rec) {
		bool implicit = json_is_true(json_object_get(rec, "__implicit"));
		json_object_del(rec, "__implicit");
		rc = put_project(db, rec, implicit, err);
		if (rc < 0)
			return rc;
		rep->projects_salvaged += rc;
	}
	char *root = cbl_path_join(home, "builds");
	DIR *d = opendir(root);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || !store_project_name_valid(de->d_name))
			continue;
		char *pdir = cbl_path_join(root, de->d_name);
		json_t *proj = project_from_launches(pdir);
		free(pdir);
		if (proj && !strcmp(cbl_json_str_or_empty(proj, "name"), de->d_name)) {
			rc = put_project(db, proj, false, err);
			if (rc > 0)
				rep->projects_from_launches++;
		}
		json_decref(proj);
		if (rc < 0)
			break;
		rc = 0;
	}
	if (d)
		closedir(d);
	free(root);
	return rc;
}

static int count_rows(sqlite3 *db, const char *sql, size_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		*out = (size_t)sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Moves <db>, <db>-wal and <db>-shm to <db>.damaged-<UTC time>[-wal|-shm]
 * (SQLite finds a WAL by the database's name, so the pair stays readable
 * together). */
static int set_aside(const char *path, char **out, cbl_error **err)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	char *aside = cbl_xasprintf("%s.damaged-%s", path, stamp);
	for (int n = 2; access(aside, F_OK) == 0; n++) {
		free(aside);
		aside = cbl_xasprintf("%s.damaged-%s.%d", path, stamp, n);
	}
	static const char *const suffixes[] = {"-wal", "-shm", ""};
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		char *from = cbl_xasprintf("%s%s", path, suffixes[i]);
		char *to = cbl_xasprintf("%s%s", aside, suffixes[i]);
		int r = rename(from, to);
		int e = errno;
		free(from);
		free(to);
		if (r < 0 && e != ENOENT) {
			free(aside);
			return cbl_error_set_errno(err, CBL_EIO, e, "cannot move the database '%s' aside",
						   path);
		}
	}
	*out = aside;
	return 0;
}

int store_recover(const char *home, store_recover_report *out, cbl_error **err)
{
	store_recover_report rep = {0};
	sqlite3 *db = NULL;
	json_t *salvaged = NULL;
	char *path = cbl_path_join(home, STORE_DB_FILE);
	int rc = 0;
	*out = rep;
	if (access(path, F_OK) == 0) {
		rc = set_aside(path, &rep.damaged_path, err);
		if (rc)
			goto out;
		salvaged = salvage_projects(rep.damaged_path);
	}
	/* a new file: the migrations import every builds/<project>/<uuid>/build.json
	 * and the old .counter files */
	rc = store_db_open(home, 0, &db, err);
	if (rc) {
		cbl_error_wrap(err, "cannot create a new database");
		goto out;
	}
	rc = store_begin(db, err);
	if (!rc && salvaged)
		rc = restore_projects(db, home, salvaged, &rep, err);
	else if (!rc) {
		json_t *none = json_array();
		rc = restore_projects(db, home, none, &rep, err);
		json_decref(none);
	}
	if (!rc)
		rc = store_commit(db, err);
	else
		store_rollback(db);
	if (rc)
		goto out;
	count_rows(db, "SELECT count(*) FROM builds", &rep.builds);
	count_rows(db, "SELECT count(*) FROM projects", &rep.projects);
	*out = rep;
	rep.damaged_path = NULL;
out:
	free(rep.damaged_path);
	json_decref(salvaged);
	if (db)
		sqlite3_close(db);
	free(path);
	return rc;
}

void store_recover_report_release(store_recover_report *r)
{
	free(r->damaged_path);
	r->damaged_path = NULL;
}
