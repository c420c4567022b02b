/* store/dash.c - the dashboard's read models (store/dash.h). */
#include "store/dash.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

static const char *const statuses[] = {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT",
				       "IN_PROGRESS", "STOPPED", NULL};

static json_t *col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? json_string((const char *)t) : json_null();
}

static json_t *col_int(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return json_null();
	return json_integer(sqlite3_column_int64(st, i));
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* successRate and medianMs of a project's last 100 complete builds. */
static int project_stats(store_db *h, const char *name, json_t *o, cbl_error **err)
{
	static const char sql[] =
		"SELECT status, end_ms - start_ms FROM builds WHERE project = ?1 AND complete"
		" ORDER BY number DESC LIMIT 100";
	sqlite3_stmt *st;
	int64_t d[100];
	int n = 0, ok = 0, rc;
	if (store_prepare(h->db, sql, &st, err) < 0)
		return CBL_EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < 100) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		ok += s && !strcmp(s, "SUCCEEDED");
		d[n++] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_sql_error(h->db, err, "project statistics");
	if (!n) {
		json_object_set_new(o, "successRate", json_null());
		json_object_set_new(o, "medianMs", json_null());
		return 0;
	}
	qsort(d, (size_t)n, sizeof(d[0]), cmp_i64);
	json_object_set_new(o, "successRate", json_real(100.0 * ok / n));
	json_object_set_new(o, "medianMs",
			    json_integer(n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2));
	return 0;
}

int store_dash_projects(const char *home, json_t **out, cbl_error **err)
{
	static const char sql[] =
		"SELECT p.name, (SELECT count(*) FROM builds b WHERE b.project = p.name),"
		" l.status, l.id, l.number FROM"
		" (SELECT name FROM projects UNION SELECT DISTINCT project FROM builds) p"
		" LEFT JOIN builds l ON l.project = p.name AND l.number ="
		"  (SELECT max(number) FROM builds m WHERE m.project = p.name)"
		" ORDER BY p.name";
	store_db *h;
	sqlite3_stmt *st;
	int rc = store_db_acquire(home, &h, err);
	if (rc < 0)
		return rc;
	*out = json_array();
	rc = store_db_recover(h, NULL, err);
	if (rc >= 0)
		rc = store_prepare(h->db, sql, &st, err);
	if (rc < 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o}", "name", name ? name : "",
				      "builds", col_int(st, 1), "lastStatus", col_str(st, 2),
				      "lastId", col_str(st, 3), "lastNumber", col_int(st, 4));
		json_array_append_new(*out, o);
	}
	sqlite3_finalize(st);
	rc = rc == SQLITE_DONE ? 0 : store_sql_error(h->db, err, "listing projects");
	for (size_t i = 0; !rc && i < json_array_size(*out); i++) {
		json_t *o = json_array_get(*out, i);
		rc = project_stats(h, json_string_value(json_object_get(o, "name")), o, err);
	}
out:
	store_db_release(h);
	if (rc < 0) {
		json_decref(*out);
		*out = NULL;
	}
	return rc < 0 ? rc : 0;
}

static int check_status(const char *status, cbl_error **err)
{
	if (!status)
		return 0;
	for (size_t i = 0; statuses[i]; i++)
		if (!strcmp(status, statuses[i]))
			return 0;
	return cbl_error_set(err, CBL_EINVAL, "unknown build status '%s'", status);
}

static json_t *build_row(sqlite3_stmt *st)
{
	return json_pack("{s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o}", "id", col_str(st, 0),
			 "number", col_int(st, 1), "status", col_str(st, 2), "complete",
			 sqlite3_column_int(st, 3), "sourceVersion", col_str(st, 4), "initiator",
			 col_str(st, 5), "startMs", col_int(st, 6), "durationMs", col_int(st, 7));
}

int store_dash_builds(const char *home, const char *project, const char *status, int64_t before,
		      int limit, json_t **out, cbl_error **err)
{
	/* index builds_project (project, number) serves the whole list,
	 * builds_project_status (project, status, number) the filtered one */
#define BUILD_COLS                                                      \
	"SELECT id, number, status, complete,"                           \
	" coalesce(json_extract(record, '$.resolvedSourceVersion'),"      \
	"          json_extract(record, '$.sourceVersion')),"             \
	" json_extract(record, '$.initiator'), start_ms,"                 \
	" CASE WHEN complete THEN end_ms - start_ms END FROM builds"
	static const char sql_all[] = BUILD_COLS
		" WHERE project = ?1 AND number < ?2 ORDER BY number DESC LIMIT ?4";
	static const char sql_status[] = BUILD_COLS
		" WHERE project = ?1 AND status = ?3 AND number < ?2 ORDER BY number DESC LIMIT ?4";
#undef BUILD_COLS
	store_db *h;
	sqlite3_stmt *st;
	if (limit < 1 || limit > 500)
		return cbl_error_set(err, CBL_EINVAL, "page size %d is not 1..500", limit);
	int rc = check_status(status, err);
	if (rc < 0)
		return rc;
	rc = store_db_acquire(home, &h, err);
	if (rc < 0)
		return rc;
	json_t *list = json_array();
	int64_t last = 0;
	rc = store_db_recover(h, NULL, err);
	if (rc >= 0)
		rc = store_prepare(h->db, status ? sql_status : sql_all, &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, before > 0 ? before : INT64_MAX);
	if (status)
		sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, limit + 1);
	int n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < limit) {
		json_array_append_new(list, build_row(st));
		last = sqlite3_column_int64(st, 1);
		n++;
	}
	bool more = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = store_sql_error(h->db, err, "listing builds");
		goto out;
	}
	rc = 0;
	*out = json_pack("{s:o, s:o}", "builds", list, "next",
			 more ? json_integer(last) : json_null());
	list = NULL;
out:
	store_db_release(h);
	json_decref(list);
	return rc;
}

int store_dash_trend(const char *home, const char *project, int limit, json_t **out,
		     cbl_error **err)
{
	static const char sql[] =
		"SELECT number, start_ms, end_ms - start_ms, status FROM"
		" (SELECT * FROM builds WHERE project = ?1 AND complete ORDER BY number DESC"
		"  LIMIT ?2) ORDER BY number";
	store_db *h;
	sqlite3_stmt *st;
	int rc = store_db_acquire(home, &h, err);
	if (rc < 0)
		return rc;
	*out = json_array();
	rc = store_prepare(h->db, sql, &st, err);
	if (rc < 0)
		goto out;
	sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(*out, json_pack("{s:o, s:o, s:o, s:o}", "number",
						      col_int(st, 0), "startMs", col_int(st, 1),
						      "durationMs", col_int(st, 2), "status",
						      col_str(st, 3)));
	sqlite3_finalize(st);
	rc = rc == SQLITE_DONE ? 0 : store_sql_error(h->db, err, "build trend");
out:
	store_db_release(h);
	if (rc < 0) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* The log path and completeness of a build. */
static int log_of(store_db *h, const char *build_id, char **path, bool *complete, cbl_error **err)
{
	static const char sql[] =
		"SELECT b.complete, s.path FROM builds b LEFT JOIN log_streams s"
		" ON s.build_id = b.id WHERE b.id = ?1";
	sqlite3_stmt *st;
	int rc = store_db_recover(h, build_id, err);
	if (rc < 0)
		return rc;
	if (store_prepare(h->db, sql, &st, err) < 0)
		return CBL_EIO;
	sqlite3_bind_text(st, 1, build_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*complete = sqlite3_column_int(st, 0) != 0;
		const char *p = (const char *)sqlite3_column_text(st, 1);
		*path = p ? cbl_xstrdup(p) : NULL;
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = cbl_error_set(err, CBL_ENOENT, "Build not found: %s", build_id);
	} else {
		rc = store_sql_error(h->db, err, "reading a build's log stream");
	}
	sqlite3_finalize(st);
	return rc;
}

int store_dash_log_read(const char *home, const char *build_id, int64_t offset, size_t max,
			cbl_buf *out, bool *complete, cbl_error **err)
{
	store_db *h;
	char *path = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (rc < 0)
		return rc;
	rc = log_of(h, build_id, &path, complete, err);
	store_db_release(h);
	if (rc < 0 || !path)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : cbl_error_set_errno(err, CBL_EIO, errno, "build log");
	/* a line longer than max + 1 MiB comes in pieces (never the whole
	 * file read again at every poll while a build writes no newline) */
	size_t start = out->len, got = 0, hard = max + (1u << 20);
	char chunk[16384];
	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), (off_t)(offset + (int64_t)got));
		if (n <= 0)
			break;
		cbl_buf_append(out, chunk, (size_t)n);
		got += (size_t)n;
		if ((got >= max && memchr(chunk, '\n', (size_t)n)) || got >= hard)
			break;
	}
	close(fd);
	/* whole lines only, unless the build is over; at most max of them */
	size_t keep = got;
	const char *base = out->ptr ? out->ptr + start : NULL;
	if (got && (!*complete || got > max)) {
		size_t lim = got > max ? max : got;
		const char *nl = memrchr(base, '\n', lim);
		if (!nl)
			nl = memchr(base, '\n', got);
		keep = nl ? (size_t)(nl - base) + 1 : (*complete || got >= hard ? got : 0);
	}
	out->len = start + keep;
	if (out->ptr)
		out->ptr[out->len] = '\0';
	return 0;
}

int store_dash_build_local(const char *home, const char *build_id, json_t **out, cbl_error **err)
{
	static const char sql[] = "SELECT dir FROM builds WHERE id = ?1";
	store_db *h;
	sqlite3_stmt *st;
	char *dir = NULL;
	*out = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (rc < 0)
		return rc;
	if (store_prepare(h->db, sql, &st, err) < 0) {
		store_db_release(h);
		return CBL_EIO;
	}
	sqlite3_bind_text(st, 1, build_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
		dir = cbl_xstrdup((const char *)sqlite3_column_text(st, 0));
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		rc = dir ? 0 : cbl_error_set(err, CBL_ENOENT, "Build not found: %s", build_id);
	else
		rc = store_sql_error(h->db, err, "reading a build's directory");
	sqlite3_finalize(st);
	store_db_release(h);
	if (rc < 0)
		return rc;
	char *path = cbl_path_join(dir, "build.json");
	json_error_t jerr;
	json_t *rec = json_load_file(path, 0, &jerr);
	if (!rec)
		rc = cbl_error_set(err, CBL_EIO, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
	else if (json_is_object(json_object_get(rec, "codebuildLocal")))
		*out = json_incref(json_object_get(rec, "codebuildLocal"));
	json_decref(rec);
	free(path);
	free(dir);
	return rc;
}
