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

static long long proc_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	long long v = -1;
	for (int field = 2; p && *p; p++) {
		if (*p != ' ')
			continue;
		if (++field == 22) {
			v = strtoll(p + 1, NULL, 10);
			break;
		}
	}
	return v;
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
		json_object_set_new(r, "start", json_integer(proc_start(getpid())));
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
	if (pid > 0 && proc_start(pid) == start && (kill(pid, 0) == 0 || errno == EPERM))
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
