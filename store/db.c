/* store/db.c - the SQLite database under the state directory: connection
 * cache, pragmas, schema migrations (PRAGMA user_version), and the one-time
 * import of the JSON files earlier versions kept (build.json, .counter). */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- schema */

static const char schema_v1[] =
	"CREATE TABLE projects ("
	"  name TEXT PRIMARY KEY,"
	"  created_ms INTEGER NOT NULL,"
	"  modified_ms INTEGER NOT NULL,"
	"  implicit INTEGER NOT NULL DEFAULT 0,"
	"  record TEXT NOT NULL);"
	"CREATE INDEX projects_created ON projects(created_ms, name);"
	"CREATE INDEX projects_modified ON projects(modified_ms, name);"
	/* never decremented: a number is not reused after a deletion */
	"CREATE TABLE build_counters ("
	"  project TEXT PRIMARY KEY,"
	"  last_number INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE builds ("
	"  id TEXT PRIMARY KEY,"
	"  project TEXT NOT NULL,"
	"  uuid TEXT NOT NULL,"
	"  number INTEGER NOT NULL,"
	"  start_ms INTEGER NOT NULL,"
	"  end_ms INTEGER,"
	"  status TEXT NOT NULL,"
	"  phase TEXT,"
	"  complete INTEGER NOT NULL,"
	"  runner_pid INTEGER,"
	"  runner_start INTEGER,"
	"  stop_requested INTEGER NOT NULL DEFAULT 0,"
	"  dir TEXT NOT NULL,"
	"  record TEXT NOT NULL);"
	"CREATE INDEX builds_start ON builds(start_ms, id);"
	"CREATE INDEX builds_project ON builds(project, number);"
	"CREATE INDEX builds_incomplete ON builds(id) WHERE complete = 0;"
	"CREATE TABLE log_streams ("
	"  group_name TEXT NOT NULL,"
	"  stream_name TEXT NOT NULL,"
	"  build_id TEXT NOT NULL,"
	"  path TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (group_name, stream_name)) WITHOUT ROWID;"
	"CREATE INDEX log_streams_build ON log_streams(build_id);";

static const char schema_v2[] =
	"CREATE TABLE build_exported_variables ("
	"  build_id TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  name TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  PRIMARY KEY (build_id, seq)) WITHOUT ROWID;"
	"INSERT INTO build_exported_variables (build_id, seq, name, value)"
	"  SELECT b.id, CAST(j.key AS INTEGER), json_extract(j.value, '$.name'),"
	"         ifnull(json_extract(j.value, '$.value'), '')"
	"  FROM builds b, json_each(b.record, '$.exportedEnvironmentVariables') j"
	"  WHERE json_valid(b.record) AND json_extract(j.value, '$.name') IS NOT NULL;"
	"CREATE TABLE report_groups ("
	"  arn TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  type TEXT NOT NULL,"
	"  project TEXT,"
	"  created_ms INTEGER NOT NULL,"
	"  modified_ms INTEGER NOT NULL,"
	"  record TEXT NOT NULL);"
	"CREATE TABLE reports ("
	"  arn TEXT PRIMARY KEY,"
	"  report_group_arn TEXT NOT NULL,"
	"  build_id TEXT,"
	"  type TEXT NOT NULL,"
	"  status TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  record TEXT NOT NULL);"
	"CREATE INDEX reports_group ON reports(report_group_arn, created_ms);"
	"CREATE INDEX reports_build ON reports(build_id);"
	"CREATE TABLE test_cases ("
	"  report_arn TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  test_raw_data_path TEXT,"
	"  prefix TEXT,"
	"  name TEXT NOT NULL,"
	"  status TEXT NOT NULL,"
	"  duration_ns INTEGER,"
	"  message TEXT,"
	"  expired_ms INTEGER,"
	"  test_suite_name TEXT,"
	"  PRIMARY KEY (report_arn, seq)) WITHOUT ROWID;"
	"CREATE INDEX test_cases_status ON test_cases(report_arn, status);"
	"CREATE TABLE code_coverages ("
	"  report_arn TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  id TEXT,"
	"  file_path TEXT NOT NULL,"
	"  line_coverage_percentage REAL,"
	"  lines_covered INTEGER,"
	"  lines_missed INTEGER,"
	"  branch_coverage_percentage REAL,"
	"  branches_covered INTEGER,"
	"  branches_missed INTEGER,"
	"  expired_ms INTEGER,"
	"  PRIMARY KEY (report_arn, seq)) WITHOUT ROWID;";

/* 3: report group names are not unique (a group named by its ARN in a
 * buildspec may share its name with another account's or region's), lists
 * page by (key, arn); the reports of builds already stored are ingested
 * from their directories (store_db_reports_backfill). */
static const char schema_v3[] =
	"CREATE TABLE report_groups_v3 ("
	"  arn TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  type TEXT NOT NULL,"
	"  project TEXT,"
	"  created_ms INTEGER NOT NULL,"
	"  modified_ms INTEGER NOT NULL,"
	"  record TEXT NOT NULL);"
	"INSERT INTO report_groups_v3 (arn, name, type, project, created_ms, modified_ms, record)"
	"  SELECT arn, name, type, project, created_ms, modified_ms, record FROM report_groups;"
	"DROP TABLE report_groups;"
	"ALTER TABLE report_groups_v3 RENAME TO report_groups;"
	"CREATE INDEX report_groups_name ON report_groups(name, arn);"
	"CREATE INDEX report_groups_created ON report_groups(created_ms, arn);"
	"CREATE INDEX report_groups_modified ON report_groups(modified_ms, arn);"
	"CREATE INDEX reports_created ON reports(created_ms, arn);";

/* 4: the dashboard's status filter walks only its status's builds of a project. */
static const char schema_v4[] = "CREATE INDEX builds_project_status ON builds(project, status, number);";
/* 5: build_metrics, the events outbox, settings, alarms.  Clustered by end time: a window's rows are one range of the table. */
static const char schema_v5[] =
	"CREATE TABLE build_metrics ("
	"  end_ms INTEGER NOT NULL,"
	"  id TEXT NOT NULL,"
	"  project TEXT NOT NULL,"
	"  number INTEGER NOT NULL,"
	"  start_ms INTEGER NOT NULL,"
	"  status TEXT NOT NULL,"
	"  compute_type TEXT,"
	"  duration_ms INTEGER NOT NULL,"
	/* per phase: NULL when the phase did not run */
	"  queued_ms INTEGER, provisioning_ms INTEGER, download_source_ms INTEGER,"
	"  install_ms INTEGER, pre_build_ms INTEGER, build_ms INTEGER, post_build_ms INTEGER,"
	"  upload_artifacts_ms INTEGER, finalizing_ms INTEGER,"
	/* the sandbox's counters; NULL when not measured */
	"  cpu_us INTEGER, mem_peak INTEGER, read_bytes INTEGER, write_bytes INTEGER,"
	/* NULL when the price table had no price */
	"  cost REAL,"
	"  PRIMARY KEY(end_ms, id)) WITHOUT ROWID;"
	"CREATE UNIQUE INDEX build_metrics_id ON build_metrics(id);"
	"CREATE INDEX build_metrics_project ON build_metrics(project, end_ms);"
	/* store/events.c */
	"CREATE TABLE event_outbox ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  dest TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  body TEXT NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_ms INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX event_outbox_dest ON event_outbox(dest, seq);"
	/* "events" = "1" from the first serve --events-webhook on */
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
	/* store/alarms.c */
	"CREATE TABLE alarms ("
	"  name TEXT PRIMARY KEY,"
	"  state TEXT NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  state_ms INTEGER NOT NULL,"
	"  record TEXT NOT NULL);";

/* Earlier versions kept only builds/<project>/.counter and
 * builds/<project>/<uuid>/build.json: bring them in, so history, numbers and
 * logs survive the upgrade.  Unreadable leftovers are skipped. */
static int import_legacy(sqlite3 *db, const char *home, cbl_error **err)
{
	char *root = cbl_path_join(home, "builds");
	DIR *d = opendir(root);
	int rc = 0;
	if (!d) {
		free(root);
		return 0;
	}
	store_db tmp = {.db = db};
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		if (de->d_name[0] == '.' || !store_project_name_valid(de->d_name))
			continue;
		char *pdir = cbl_path_join(root, de->d_name);
		char *cpath = cbl_path_join(pdir, ".counter");
		char buf[32] = {0};
		int fd = open(cpath, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			long long cur = n > 0 ? strtoll(buf, NULL, 10) : 0;
			if (cur > 0) {
				sqlite3_stmt *st = NULL;
				rc = store_prepare(db,
						   "INSERT INTO build_counters(project, last_number) VALUES(?1, ?2) "
						   "ON CONFLICT(project) DO UPDATE SET last_number = "
						   "max(last_number, excluded.last_number)",
						   &st, err);
				if (!rc) {
					sqlite3_bind_text(st, 1, de->d_name, -1, SQLITE_STATIC);
					sqlite3_bind_int64(st, 2, cur);
					if (sqlite3_step(st) != SQLITE_DONE)
						rc = store_sql_error(db, err, "cannot import a build counter");
				}
				sqlite3_finalize(st);
			}
		}
		free(cpath);
		DIR *bd = rc ? NULL : opendir(pdir);
		struct dirent *be;
		while (bd && !rc && (be = readdir(bd))) {
			if (be->d_name[0] == '.')
				continue;
			char *bdir = cbl_path_join(pdir, be->d_name);
			char *rpath = cbl_path_join(bdir, "build.json");
			json_t *rec = json_load_file(rpath, 0, NULL);
			const char *id = cbl_json_str(rec, "id");
			char *p = NULL, *u = NULL;
			/* a record the store could not have written is left alone */
			if (id && !store_split_build_id(id, &p, &u, NULL) && !strcmp(p, de->d_name) &&
			    !strcmp(u, be->d_name))
				rc = store_db_build_upsert_raw(&tmp, bdir, rec, 0, 0, err);
			free(p);
			free(u);
			json_decref(rec);
			free(rpath);
			free(bdir);
		}
		if (bd)
			closedir(bd);
		free(pdir);
	}
	closedir(d);
	free(root);
	store_stmt_cache_clear(&tmp);
	if (!rc)
		/* counters at least as high as any imported number */
		rc = store_exec(db,
				"INSERT INTO build_counters(project, last_number) "
				"SELECT project, max(number) FROM builds WHERE true GROUP BY project "
				"ON CONFLICT(project) DO UPDATE SET last_number = "
				"max(last_number, excluded.last_number)",
				err);
	return rc;
}

static int migrate_one(sqlite3 *db, int to, cbl_error **err)
{
	switch (to) {
	case 1:
		return store_exec(db, schema_v1, err);
	case 2:
		return store_exec(db, schema_v2, err);
	case 3: {
		int rc = store_exec(db, schema_v3, err);
		return rc ? rc : store_db_reports_backfill(db, err);
	}
	case 4:
		return store_exec(db, schema_v4, err);
	case 5: {
		int rc = store_exec(db, schema_v5, err);
		return rc ? rc : store_db_metrics_backfill(db, err);
	}
	default:
		return cbl_error_set(err, CBL_EINTERNAL, "no migration to schema version %d", to);
	}
}

int store_db_migrate(sqlite3 *db, const char *home, int target, cbl_error **err)
{
	if (target <= 0 || target > STORE_SCHEMA_VERSION)
		target = STORE_SCHEMA_VERSION;
	int cur = 0, rc = store_db_user_version(db, &cur, err);
	if (rc)
		return rc;
	if (cur > STORE_SCHEMA_VERSION)
		return cbl_error_set(err, CBL_EIO,
				     "the database has schema version %d, newer than this codebuild-local "
				     "knows (%d): use a newer codebuild-local",
				     cur, STORE_SCHEMA_VERSION);
	if (cur >= target)
		return 0;
	/* every pending step in one transaction (SQLite's DDL is transactional):
	 * a concurrent opener waits, then finds the work done */
	rc = store_begin(db, err);
	if (rc)
		return rc;
	rc = store_db_user_version(db, &cur, err);
	if (rc || cur >= target) {
		store_rollback(db);
		return rc;
	}
	int from = cur;
	while (!rc && cur < target) {
		rc = migrate_one(db, cur + 1, err);
		if (rc)
			cbl_error_wrap(err, "cannot migrate the database to schema version %d", cur + 1);
		else
			cur++;
	}
	/* a new database in a state directory an earlier version used */
	if (!rc && from == 0 && cur == STORE_SCHEMA_VERSION && home) {
		rc = import_legacy(db, home, err);
		if (rc)
			cbl_error_wrap(err, "cannot import the build records of an earlier version");
	}
	if (!rc) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", cur);
		rc = store_exec(db, sql, err);
	}
	if (!rc)
		rc = store_commit(db, err);
	if (rc)
		store_rollback(db);
	return rc;
}

int store_db_open(const char *home, int target, sqlite3 **out, cbl_error **err)
{
	sqlite3 *db = NULL;
	char *path = NULL;
	int rc = cbl_mkdir_p(home, 0755, err);
	if (rc)
		return rc;
	path = cbl_path_join(home, STORE_DB_FILE);
	/* our own locking (store_db's mutex) serializes use of a connection */
	if (sqlite3_open_v2(path, &db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				    SQLITE_OPEN_EXRESCODE,
			    NULL) != SQLITE_OK) {
		rc = cbl_error_set(err, CBL_EIO, "cannot open the database '%s': %s", path,
				   db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, 10000);
	/* WAL: readers never block the writer (a build saving its record at
	 * every phase while the server answers BatchGetBuilds); NORMAL: no
	 * fsync per commit, a power cut loses at most the last transactions,
	 * never the file's consistency.  A small WAL: `run` processes exit
	 * without closing (no checkpoint), and the next first opener replays
	 * the whole WAL into a fresh index, so its size is every build's
	 * startup cost (a checkpoint's two fsyncs are cheaper) */
	/* switching a new file to WAL takes an exclusive lock for which SQLite
	 * does not call the busy handler: two first openers at the same moment
	 * (two builds started together) retry instead of failing */
	for (int tries = 0;; tries++) {
		int src = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
		if (src == SQLITE_OK)
			break;
		if (((src & 0xff) != SQLITE_BUSY && (src & 0xff) != SQLITE_LOCKED) || tries >= 1000) {
			rc = store_sql_error(db, err, "cannot switch the database to WAL");
			goto out;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	rc = store_exec(db,
			"PRAGMA synchronous = NORMAL; "
			"PRAGMA wal_autocheckpoint = 64; PRAGMA foreign_keys = OFF; "
			"PRAGMA temp_store = MEMORY",
			err);
	if (rc)
		goto out;
	rc = store_db_migrate(db, home, target, err);
	if (rc)
		goto out;
	*out = db;
	db = NULL;
out:
	if (rc)
		cbl_error_wrap(err, "database '%s'", path);
	if (db)
		sqlite3_close(db);
	free(path);
	return rc;
}

/* ---------------------------------------------------------------- cache */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static store_db *cache_head;

int store_db_acquire(const char *home, store_db **out, cbl_error **err)
{
	pid_t me = getpid();
	store_db *h;
	int rc = 0;
	pthread_mutex_lock(&cache_lock);
	for (h = cache_head; h; h = h->next)
		if (h->pid == me && !strcmp(h->home, home))
			break;
	if (!h) {
		/* handles a parent process opened stay untouched (SQLite: never use
		 * or close a connection across fork) */
		sqlite3 *db = NULL;
		rc = store_db_open(home, 0, &db, err);
		if (!rc) {
			h = cbl_xcalloc(1, sizeof(*h));
			h->home = cbl_xstrdup(home);
			h->db = db;
			h->pid = me;
			h->pstart = store_proc_start_time(me);
			pthread_mutex_init(&h->lock, NULL);
			h->next = cache_head;
			cache_head = h;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	if (rc)
		return rc;
	pthread_mutex_lock(&h->lock);
	*out = h;
	return 0;
}

void store_db_release(store_db *h)
{
	if (!h)
		return;
	store_rollback(h->db); /* a failed path's open transaction never leaks into the next user */
	pthread_mutex_unlock(&h->lock);
}
