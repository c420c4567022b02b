/* store/sql.c - SQLite helpers every table's file uses: errors,
 * statements (cached per connection), transactions, the user_version, the
 * liveness of a build's runner, and the API's times.  Nothing here knows a
 * table. */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- helpers */

/* A file SQLite finds damaged (garbage, truncated, a page overwritten)
 * fails every command the same way: say what to do about it. */
static const char *damage_hint(sqlite3 *db)
{
	int code = sqlite3_errcode(db);
	if (code != SQLITE_CORRUPT && code != SQLITE_NOTADB)
		return "";
	return ". The database is damaged: `codebuild-local store recover` rebuilds it from "
	       "the builds' build.json files (the damaged file is kept aside)";
}

int store_sql_error(sqlite3 *db, cbl_error **err, const char *what)
{
	int code = sqlite3_extended_errcode(db);
	return cbl_error_set(err, CBL_EIO, "%s: %s (SQLite %d)%s", what, sqlite3_errmsg(db), code,
			     damage_hint(db));
}

int store_exec(sqlite3 *db, const char *sql, cbl_error **err)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = cbl_error_set(err, CBL_EIO, "database: %s%s", msg ? msg : sqlite3_errmsg(db),
				       damage_hint(db));
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, cbl_error **err)
{
	if (sqlite3_prepare_v2(db, sql, -1, out, NULL) != SQLITE_OK)
		return store_sql_error(db, err, "cannot prepare a database statement");
	return 0;
}

int store_stmt(store_db *h, const char *sql, sqlite3_stmt **out, cbl_error **err)
{
	for (size_t i = 0; i < h->ncache; i++)
		if (h->cache[i].sql == sql) {
			*out = h->cache[i].st;
			return 0;
		}
	if (h->ncache == STORE_STMT_CACHE)
		return cbl_error_set(err, CBL_EINTERNAL, "the statement cache is full");
	if (sqlite3_prepare_v3(h->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
		return store_sql_error(h->db, err, "cannot prepare a database statement");
	h->cache[h->ncache].sql = sql;
	h->cache[h->ncache].st = *out;
	h->ncache++;
	return 0;
}

void store_stmt_done(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

void store_stmt_cache_clear(store_db *h)
{
	for (size_t i = 0; i < h->ncache; i++)
		sqlite3_finalize(h->cache[i].st);
	h->ncache = 0;
}

int store_begin(sqlite3 *db, cbl_error **err) { return store_exec(db, "BEGIN IMMEDIATE", err); }
int store_commit(sqlite3 *db, cbl_error **err) { return store_exec(db, "COMMIT", err); }

void store_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int store_db_user_version(sqlite3 *db, int *out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(db, "PRAGMA user_version", &st, err);
	if (rc)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	else
		rc = store_sql_error(db, err, "cannot read the schema version");
	sqlite3_finalize(st);
	return rc;
}

long long store_proc_start_time(pid_t pid) { return cbl_proc_start_time(pid); }

bool store_runner_alive(long long pid, long long start)
{
	if (pid <= 0 || pid > (long long)0x7fffffff)
		return false;
	if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
		return false;
	long long now = store_proc_start_time((pid_t)pid);
	if (now < 0)
		return false;
	/* a zombie still has its stat; a recycled pid has another start time */
	return start <= 0 || now == start;
}

/* ---------------------------------------------------------------- time */

int64_t store_json_time_ms(const json_t *t)
{
	if (json_is_integer(t))
		return (int64_t)json_integer_value(t) * 1000;
	if (json_is_real(t)) {
		double v = json_real_value(t) * 1000.0;
		return (int64_t)(v + (v >= 0 ? 0.5 : -0.5));
	}
	return 0;
}

json_t *store_json_time(int64_t ms) { return json_real((double)ms / 1e3); }
