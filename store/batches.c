/* store/batches.c - BuildBatch records (store.h) and the batch operations
 * BatchGetBuildBatches, ListBuildBatches, ListBuildBatchesForProject and
 * DeleteBuildBatch (api.h).
 *
 * A batch lives in batches/<project>/<uuid>/batch.json (the BuildBatch
 * record, written atomically, plus "_runner": the pid and start time of the
 * process running it while it is not complete); its builds are ordinary
 * builds (builds/<project>/<uuid>/) whose records name the batch in
 * buildBatchArn.  Batches are few next to builds: the lists read the
 * records from their directories instead of a table of their own. */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/time.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

#define MAX_RECORD (16u << 20)

/* "<project>:<uuid>" from an id or a build-batch ARN; 0 or CBL_EINVAL. */
static int split_id(const char *id, char **project, char **uuid, cbl_error **err)
{
	const char *s = id ? id : "";
	const char *slash = strncmp(s, "arn:", 4) ? NULL : strstr(s, ":build-batch/");
	if (slash)
		s = slash + 13;
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || strlen(colon + 1) != 36 || strspn(colon + 1, "0123456789abcdef-") != 36) {
		return cbl_error_set(err, CBL_EINVAL, "Invalid build batch ID: %s", id ? id : "(null)");
	}
	char *p = cbl_xstrndup(s, (size_t)(colon - s));
	if (!store_project_name_valid(p)) {
		free(p);
		return cbl_error_set(err, CBL_EINVAL, "Invalid build batch ID: %s", id);
	}
	*project = p;
	*uuid = cbl_xstrdup(colon + 1);
	return 0;
}

static char *batch_dir(const char *home, const char *project, const char *uuid)
{
	return cbl_xasprintf("%s/batches/%s/%s", home, project, uuid);
}

int store_batch_dir_create(const char *home, const char *project, const char *uuid, char **out, cbl_error **err)
{
	char *dir = batch_dir(home, project, uuid);
	int rc = cbl_mkdir_p(dir, 0700, err);
	if (rc) {
		free(dir);
		return rc;
	}
	*out = dir;
	return 0;
}

int store_batch_dir_of(const char *home, const char *id, char **out, cbl_error **err)
{
	char *p = NULL, *u = NULL;
	int rc = split_id(id, &p, &u, err);
	if (rc)
		return rc;
	*out = batch_dir(home, p, u);
	free(p);
	free(u);
	return 0;
}

int store_batch_next_number(const char *home, const char *project, int64_t *out, cbl_error **err)
{
	/* the build counters' table, under a key no project name can be */
	char *key = cbl_xasprintf("%s/batch", project);
	int rc = store_next_build_number(home, key, out, err);
	free(key);
	return rc;
}

int store_batch_save(const char *home, json_t *record, cbl_error **err)
{
	char *p = NULL, *u = NULL;
	int rc = split_id(cbl_json_str(record, "id"), &p, &u, err);
	if (rc)
		return rc;
	char *dir = batch_dir(home, p, u);
	char *path = cbl_path_join(dir, "batch.json");
	json_t *copy = json_copy(record);
	if (!json_is_true(json_object_get(record, "complete"))) {
		json_t *r = json_object();
		json_object_set_new(r, "pid", json_integer(getpid()));
		json_object_set_new(r, "start", json_integer(cbl_proc_start_time(getpid())));
		json_object_set_new(copy, "_runner", r);
	}
	char *s = json_dumps(copy, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	json_decref(copy);
	rc = cbl_mkdir_p(dir, 0700, err);
	if (!rc)
		rc = cbl_write_file_atomic(path, s, strlen(s), 0600, false, err);
	free(s);
	free(path);
	free(dir);
	free(p);
	free(u);
	return rc;
}

/* A batch whose runner is gone ends FAILED (STOPPED if a stop was asked
 * for: the stop file), its phase closed. */
static void finish_dead(json_t *rec, const char *dir)
{
	json_t *r = json_object_get(rec, "_runner");
	if (!r)
		return;
	pid_t pid = (pid_t)json_integer_value(json_object_get(r, "pid"));
	long long start = json_integer_value(json_object_get(r, "start"));
	json_object_del(rec, "_runner");
	if (pid > 0 && cbl_proc_start_time(pid) == start && (kill(pid, 0) == 0 || errno == EPERM))
		return;
	char *stopf = cbl_path_join(dir, "stop");
	bool stopped = access(stopf, F_OK) == 0;
	free(stopf);
	const char *st = stopped ? "STOPPED" : "FAILED";
	double now = (double)(cbl_now_us() / 1000) / 1e3;
	json_t *phases = json_object_get(rec, "phases");
	json_t *last = json_array_size(phases) ? json_array_get(phases, json_array_size(phases) - 1) : NULL;
	if (last && !json_object_get(last, "endTime")) {
		json_object_set_new(last, "endTime", json_real(now));
		json_object_set_new(last, "phaseStatus", json_string(stopped ? "STOPPED" : "FAILED"));
		json_t *ctx = json_array();
		json_t *c = json_object();
		json_object_set_new(c, "statusCode", json_string("INTERNAL_ERROR"));
		json_object_set_new(c, "message", json_string("Batch runner exited unexpectedly"));
		json_array_append_new(ctx, c);
		json_object_set_new(last, "contexts", ctx);
	}
	json_t *fin = json_object();
	json_object_set_new(fin, "phaseType", json_string(st));
	json_object_set_new(fin, "startTime", json_real(now));
	if (phases)
		json_array_append_new(phases, fin);
	else
		json_decref(fin);
	json_object_set_new(rec, "currentPhase", json_string(st));
	json_object_set_new(rec, "buildBatchStatus", json_string(st));
	json_object_set_new(rec, "endTime", json_real(now));
	json_object_set_new(rec, "complete", json_true());
}

static int load_dir(const char *dir, json_t **out, cbl_error **err)
{
	char *path = cbl_path_join(dir, "batch.json");
	char *data = NULL;
	size_t len = 0;
	int rc = cbl_read_regular_file(path, MAX_RECORD, &data, &len, err);
	free(path);
	if (rc)
		return rc;
	json_t *rec = json_loadb(data, len, 0, NULL);
	free(data);
	if (!json_is_object(rec)) {
		json_decref(rec);
		return cbl_error_set(err, CBL_ENOENT, "malformed batch record in %s", dir);
	}
	finish_dead(rec, dir);
	*out = rec;
	return 0;
}

int store_batch_load(const char *home, const char *id, json_t **out, cbl_error **err)
{
	char *dir = NULL;
	int rc = store_batch_dir_of(home, id, &dir, err);
	if (rc)
		return rc;
	cbl_error *e = NULL;
	rc = load_dir(dir, out, &e);
	free(dir);
	if (rc) {
		cbl_error_free(e);
		return cbl_error_set(err, CBL_ENOENT, "Build batch %s not found", id);
	}
	return 0;
}

/* ---- operations --------------------------------------------------------------- */

static json_t *ids_array(json_t *req, const char *key, cbl_error **err)
{
	json_t *ids = json_object_get(req, key);
	/* the model's constraints (0 to 100 ids) are store_api_validate's */
	if (!json_is_array(ids)) {
		cbl_error_set(err, CBL_EINVAL, "1 validation error detected: Value null at '%s' failed to satisfy "
					       "constraint: Member must not be null",
			      key);
		return NULL;
	}
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		if (!json_is_string(v) || !json_string_length(v)) {
			cbl_error_set(err, CBL_EINVAL, "%s must hold non-empty strings", key);
			return NULL;
		}
	}
	return ids;
}

int store_op_batch_get_build_batches(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	json_t *ids = ids_array(req, "ids", err);
	if (!ids)
		return CBL_EINVAL;
	json_t *found = json_array(), *missing = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		json_t *rec = NULL;
		if (store_batch_load(h->home, json_string_value(v), &rec, NULL) == 0)
			json_array_append_new(found, rec);
		else
			json_array_append(missing, v);
	}
	*out = json_object();
	json_object_set_new(*out, "buildBatches", found);
	json_object_set_new(*out, "buildBatchesNotFound", missing);
	return 0;
}

/* Every batch (of one project, or all), newest first unless ASCENDING. */
typedef struct brow {
	json_t *rec;
	double start;
} brow;

static int cmp_row(const void *a, const void *b)
{
	const brow *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return strcmp(cbl_json_str_or_empty(x->rec, "id"), cbl_json_str_or_empty(y->rec, "id"));
}

static void scan_project(const char *home, const char *project, brow **rows, size_t *n, size_t *cap)
{
	char *pdir = cbl_xasprintf("%s/batches/%s", home, project);
	DIR *d = opendir(pdir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *dir = cbl_path_join(pdir, e->d_name);
		json_t *rec = NULL;
		cbl_error *er = NULL;
		if (load_dir(dir, &rec, &er) == 0) {
			if (*n == *cap) {
				*cap = *cap ? *cap * 2 : 16;
				*rows = cbl_xreallocarray(*rows, *cap, sizeof(**rows));
			}
			(*rows)[(*n)++] = (brow){rec, json_real_value(json_object_get(rec, "startTime"))};
		}
		cbl_error_free(er);
		free(dir);
	}
	if (d)
		closedir(d);
	free(pdir);
}

static int list_batches(store_db *h, json_t *req, const char *project, json_t **out, cbl_error **err)
{
	brow *rows = NULL;
	size_t n = 0, cap = 0;
	const char *order = cbl_json_str_nonempty(req, "sortOrder");
	if (order && strcmp(order, "ASCENDING") && strcmp(order, "DESCENDING"))
		return cbl_error_set(err, CBL_EINVAL,
				     "1 validation error detected: Value '%s' at 'sortOrder' failed to satisfy "
				     "constraint: Member must satisfy enum value set: [ASCENDING, DESCENDING]",
				     order);
	json_t *mr = json_object_get(req, "maxResults");
	long long max = json_is_integer(mr) ? json_integer_value(mr) : STORE_PAGE_SIZE;
	if (max < 1 || max > 100)
		return cbl_error_set(err, CBL_EINVAL, "maxResults must be between 1 and 100");
	const char *status = cbl_json_str_nonempty(json_object_get(req, "filter"), "status");
	const char *tok = cbl_json_str_nonempty(req, "nextToken");
	long long skip = tok ? strtoll(tok, NULL, 10) : 0;
	if (tok && (skip <= 0 || strspn(tok, "0123456789") != strlen(tok)))
		return cbl_error_set(err, CBL_EINVAL, "Invalid nextToken");
	if (project) {
		scan_project(h->home, project, &rows, &n, &cap);
	} else {
		char *root = cbl_path_join(h->home, "batches");
		DIR *d = opendir(root);
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.' && store_project_name_valid(e->d_name))
				scan_project(h->home, e->d_name, &rows, &n, &cap);
		if (d)
			closedir(d);
		free(root);
	}
	if (n > 1) /* no rows: rows is NULL, which qsort must not get */
		qsort(rows, n, sizeof(*rows), cmp_row);
	bool asc = order && !strcmp(order, "ASCENDING");
	json_t *ids = json_array();
	long long seen = 0, taken = 0;
	bool more = false;
	for (size_t k = 0; k < n; k++) {
		const brow *r = &rows[asc ? k : n - 1 - k];
		if (status && strcmp(status, cbl_json_str_or_empty(r->rec, "buildBatchStatus")))
			continue;
		if (seen++ < skip)
			continue;
		if (taken == max) {
			more = true;
			break;
		}
		json_array_append_new(ids, json_string(cbl_json_str_or_empty(r->rec, "id")));
		taken++;
	}
	for (size_t k = 0; k < n; k++)
		json_decref(rows[k].rec);
	free(rows);
	*out = json_object();
	json_object_set_new(*out, "ids", ids);
	if (more)
		json_object_set_new(*out, "nextToken", json_sprintf("%lld", skip + taken));
	return 0;
}

int store_op_list_build_batches(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	return list_batches(h, req, NULL, out, err);
}

int store_op_list_build_batches_for_project(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const char *name = cbl_json_str_nonempty(req, "projectName");
	if (!name)
		return cbl_error_set(err, CBL_EINVAL, "1 validation error detected: Value null at 'projectName' "
						      "failed to satisfy constraint: Member must not be null");
	json_t *proj = NULL;
	int rc = store_db_project_get(h, name, &proj, err);
	json_decref(proj);
	if (rc)
		return rc;
	return list_batches(h, req, name, out, err);
}

/* DeleteBuildBatch: the batch and its builds (a running one is refused). */
int store_op_delete_build_batch(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const char *id = cbl_json_str_nonempty(req, "id");
	json_t *rec = NULL, *ids = json_array();
	char *dir = NULL;
	if (!id)
		return cbl_error_set(err, CBL_EINVAL, "1 validation error detected: Value null at 'id' failed to "
						      "satisfy constraint: Member must not be null");
	int rc = store_batch_dir_of(h->home, id, &dir, err);
	if (!rc)
		rc = store_batch_load(h->home, id, &rec, err);
	if (!rc && !json_is_true(json_object_get(rec, "complete")))
		rc = cbl_error_set(err, CBL_EINVAL, "Batch build %s is in progress: stop it first", id);
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(rec, "buildGroups"), i, g)
	{
		const char *arn = cbl_json_str(json_object_get(g, "currentBuildSummary"), "arn");
		if (arn && *arn)
			json_array_append_new(ids, json_string(arn));
		size_t k;
		json_t *p;
		json_array_foreach(json_object_get(g, "priorBuildSummaryList"), k, p)
		{
			if (cbl_json_str(p, "arn"))
				json_array_append_new(ids, json_string(cbl_json_str(p, "arn")));
		}
	}
	json_t *res = NULL;
	if (!rc && json_array_size(ids)) {
		json_t *dreq = json_object();
		json_object_set(dreq, "ids", ids);
		rc = store_op_batch_delete_builds(h, dreq, &res, err);
		json_decref(dreq);
	}
	if (!rc)
		rc = cbl_rm_rf(dir, err);
	if (!rc) {
		*out = json_object();
		json_object_set_new(*out, "statusCode", json_string("BATCH_DELETED"));
		json_t *del = json_object_get(res, "buildsDeleted");
		json_t *kept = json_object_get(res, "buildsNotDeleted");
		json_object_set_new(*out, "buildsDeleted", del ? json_incref(del) : json_array());
		json_object_set_new(*out, "buildsNotDeleted", kept ? json_incref(kept) : json_array());
	}
	json_decref(res);
	json_decref(rec);
	json_decref(ids);
	free(dir);
	return rc;
}
