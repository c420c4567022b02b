#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

char *store_default_home(void)
{
	const char *h = getenv("CODEBUILD_LOCAL_HOME");
	if (h && *h)
		return cbl_xstrdup(h);
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && *xdg)
		return cbl_xasprintf("%s/codebuild-local", xdg);
	const char *home = getenv("HOME");
	return cbl_xasprintf("%s/.local/share/codebuild-local", home && *home ? home : "/tmp");
}


char *store_project_name_from_dir(const char *dir)
{
	const char *base = strrchr(dir, '/');
	base = base && base[1] ? base + 1 : dir;
	cbl_buf b = CBL_BUF_INIT;
	for (const char *p = base; *p && b.len < 255; p++) {
		unsigned char c = (unsigned char)*p;
		if (isalnum(c) || c == '-' || c == '_')
			cbl_buf_putc(&b, (char)c);
		else
			cbl_buf_putc(&b, '-');
	}
	while (b.len && !isalnum((unsigned char)b.ptr[0]))
		cbl_buf_consume(&b, 1);
	if (b.len < 2) {
		cbl_buf_reset(&b);
		cbl_buf_puts(&b, "local");
	}
	return cbl_buf_detach(&b);
}

int store_next_build_number(const char *home, const char *project, int64_t *out, cbl_error **err)
{
	store_db *h = NULL;
	sqlite3_stmt *st = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	/* one statement, so one atomic transaction: concurrent runners of a
	 * project (other processes included) get distinct numbers */
	static const char sql[] = "INSERT INTO build_counters(project, last_number) VALUES(?1, 1)"
				  " ON CONFLICT(project) DO UPDATE SET last_number = last_number + 1"
				  " RETURNING last_number";
	rc = store_stmt(h, sql, &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_sql_error(h->db, err, "cannot allocate a build number");
		goto out;
	}
	*out = sqlite3_column_int64(st, 0);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = store_sql_error(h->db, err, "cannot allocate a build number");
out:
	store_stmt_done(st);
	store_db_release(h);
	return rc;
}

int store_build_dir_create(const char *home, const char *project, const char *uuid, char **out,
			   cbl_error **err)
{
	char *dir = cbl_xasprintf("%s/builds/%s/%s", home, project, uuid);
	/* private: it holds the build's carried environment (secrets included) */
	int rc = cbl_mkdir_p(dir, 0700, err);
	if (rc) {
		free(dir);
		return rc;
	}
	*out = dir;
	return 0;
}

/* <home>/builds/<project>/<uuid> -> <home>, or NULL if build_dir is not a
 * build directory of a state directory. */
static char *home_of_build_dir(const char *build_dir)
{
	char *p = cbl_xstrdup(build_dir);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	for (int i = 0; i < 2; i++) {
		char *slash = strrchr(p, '/');
		if (!slash || slash == p) {
			free(p);
			return NULL;
		}
		*slash = '\0';
	}
	char *slash = strrchr(p, '/');
	if (!slash || strcmp(slash + 1, "builds")) {
		free(p);
		return NULL;
	}
	if (slash == p)
		slash[1] = '\0';
	else
		*slash = '\0';
	return p;
}

int store_build_save(const char *build_dir, json_t *record, bool durable, cbl_error **err)
{
	char *s = json_dumps(record, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	if (!s)
		return cbl_error_set(err, CBL_EINTERNAL, "cannot serialize build record");
	char *path = cbl_path_join(build_dir, "build.json");
	char *home = home_of_build_dir(build_dir);
	/* build.json is written when the build starts and when it ends (and
	 * always outside a state directory, where the file is all there is);
	 * the states in between live in the database, which readers consult
	 * first: on a slow disk each new file costs more than the whole
	 * database update */
	bool complete = json_is_true(json_object_get(record, "buildComplete"));
	int rc = 0;
	if (!home || complete || durable || access(path, F_OK) != 0)
		rc = cbl_write_file_atomic(path, s, strlen(s), 0644, durable, err);
	free(path);
	free(s);
	if (rc || !home) {
		free(home);
		return rc;
	}
	store_db *h = NULL;
	rc = store_db_acquire(home, &h, err);
	if (!rc) {
		rc = store_db_build_upsert(h, build_dir, record, err);
		store_db_release(h);
	}
	free(home);
	return rc;
}

static int split_id(const char *build_id, char **project, char **uuid, cbl_error **err)
{
	cbl_error *e = NULL;
	int rc = store_split_build_id(build_id, project, uuid, &e);
	if (rc) {
		/* an id that cannot exist is simply not found here */
		rc = cbl_error_set(err, CBL_ENOENT, "%s", e->msg);
		cbl_error_free(e);
	}
	return rc;
}

int store_build_load(const char *home, const char *build_id, json_t **out, cbl_error **err)
{
	char *project = NULL, *uuid = NULL, *path = NULL, *id = NULL;
	store_db *h = NULL;
	int rc = split_id(build_id, &project, &uuid, err);
	if (rc)
		return rc;
	id = cbl_xasprintf("%s:%s", project, uuid);
	rc = store_db_acquire(home, &h, err);
	if (rc)
		goto out;
	rc = store_db_build_get(h, id, out, err);
	store_db_release(h);
	if (rc != CBL_ENOENT)
		goto out;
	/* not in the database (a record written outside it): the file */
	cbl_error_clear(err);
	path = cbl_xasprintf("%s/builds/%s/%s/build.json", home, project, uuid);
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	if (!j) {
		if (access(path, F_OK) < 0)
			rc = cbl_error_set(err, CBL_ENOENT, "build '%s' not found", build_id);
		else
			rc = cbl_error_set(err, CBL_EIO, "cannot read build record '%s': %s", path, jerr.text);
	} else {
		rc = 0;
		*out = j;
	}
out:
	free(id);
	free(path);
	free(project);
	free(uuid);
	return rc;
}

int store_build_request_stop(const char *home, const char *build_id, cbl_error **err)
{
	char *project = NULL, *uuid = NULL;
	store_db *h = NULL;
	int rc = split_id(build_id, &project, &uuid, err);
	if (rc)
		return rc;
	char *id = cbl_xasprintf("%s:%s", project, uuid);
	rc = store_db_acquire(home, &h, err);
	if (!rc) {
		rc = store_db_request_stop(h, id, err);
		store_db_release(h);
	}
	free(id);
	free(project);
	free(uuid);
	return rc;
}

int store_build_stop_requested(const char *home, const char *build_id, bool *out, cbl_error **err)
{
	char *project = NULL, *uuid = NULL;
	store_db *h = NULL;
	int rc = split_id(build_id, &project, &uuid, err);
	if (rc)
		return rc;
	char *id = cbl_xasprintf("%s:%s", project, uuid);
	rc = store_db_acquire(home, &h, err);
	if (!rc) {
		rc = store_db_stop_requested(h, id, out, err);
		store_db_release(h);
	}
	free(id);
	free(project);
	free(uuid);
	return rc;
}

int store_project_ensure_implicit(const char *home, const char *name, const char *source_dir,
				  cbl_error **err)
{
	if (!store_project_name_valid(name))
		return cbl_error_set(err, CBL_EINVAL, "invalid project name '%s'", name);
	store_db *h = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	char *loc = source_dir[0] == '/' ? cbl_xasprintf("file://%s", source_dir) : cbl_xstrdup(source_dir);
	bool git = strstr(source_dir, "://") && strncmp(source_dir, "file://", 7);
	rc = store_db_project_ensure_implicit_raw(h, name, loc, git ? "GITHUB_ENTERPRISE" : "NO_SOURCE",
						  STORE_DEFAULT_REGION, STORE_DEFAULT_ACCOUNT, err);
	store_db_release(h);
	free(loc);
	return rc;
}

int store_project_get(const char *home, const char *name, json_t **out, cbl_error **err)
{
	store_db *h = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	rc = store_db_project_get(h, name, out, err);
	store_db_release(h);
	if (rc == CBL_ENOENT) {
		cbl_error_clear(err);
		rc = store_project_not_found(name, err);
	}
	return rc;
}
