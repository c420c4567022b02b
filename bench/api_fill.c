/* bench/api_fill.c - fills a state directory with N builds for bench/api.sh
 * (built and run by that script; not part of the library).
 *
 * Usage: api_fill HOME TEMPLATE_DIR N PROJECTS IDS_FILE
 *
 * TEMPLATE_DIR is the directory of one real build (<home>/builds/<p>/<uuid>,
 * written by `codebuild-local run --project P`; P should be a name that
 * appears nowhere else in its record, e.g. "apibench-template").  Each new
 * build is that record with the template's project name replaced by
 * bench-NN (NN = i mod PROJECTS) and its uuid by a new one everywhere (id,
 * ARN, log stream, paths), a build number from store_next_build_number, and
 * its timestamps moved i minutes into the past; it is saved through the
 * store's own API (store_build_dir_create + store_build_save, not durable),
 * with a copy of the template's build.log.  The new ids go to IDS_FILE, one
 * per line.  Prints one line: builds=N seconds=S builds_per_sec=R.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/time.h"

#include "util/banned.h"

#define MAX_RECORD (4u << 20)

/* text with every occurrence of from replaced by to, into b (reset first) */
static void replace_all(cbl_buf *b, const char *text, const char *from, const char *to)
{
	size_t flen = strlen(from);
	cbl_buf_reset(b);
	for (const char *p = text, *q; *p; p = q + flen) {
		q = strstr(p, from);
		if (!q) {
			cbl_buf_puts(b, p);
			break;
		}
		cbl_buf_append(b, p, (size_t)(q - p));
		cbl_buf_puts(b, to);
	}
}

/* moves every startTime / endTime of the record (and of its phases) by delta seconds */
static void shift_times(json_t *o, double delta)
{
	static const char *const keys[] = {"startTime", "endTime"};
	for (size_t k = 0; k < 2; k++) {
		json_t *t = json_object_get(o, keys[k]);
		if (json_is_number(t))
			json_object_set_new(o, keys[k], json_real(json_number_value(t) + delta));
	}
	json_t *phases = json_object_get(o, "phases");
	size_t i;
	json_t *ph;
	json_array_foreach(phases, i, ph)
		shift_times(ph, delta);
}

static int fail(const char *what, cbl_error *err)
{
	fprintf(stderr, "api_fill: %s: %s\n", what, err ? err->msg : "failed");
	cbl_error_free(err);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s HOME TEMPLATE_DIR N PROJECTS IDS_FILE\n", argv[0]);
		return 2;
	}
	const char *home = argv[1], *tdir = argv[2], *ids_path = argv[5];
	long n = strtol(argv[3], NULL, 10), nproj = strtol(argv[4], NULL, 10);
	if (n < 1 || nproj < 1 || nproj > 100) {
		fprintf(stderr, "api_fill: N >= 1 and 1 <= PROJECTS <= 100\n");
		return 2;
	}
	cbl_error *err = NULL;
	char *path = cbl_path_join(tdir, "build.json"), *text = NULL, *log = NULL;
	size_t len = 0, log_len = 0;
	if (cbl_read_file(path, MAX_RECORD, &text, &len, &err) < 0)
		return fail(path, err);
	free(path);
	path = cbl_path_join(tdir, "build.log");
	if (cbl_read_file(path, MAX_RECORD, &log, &log_len, &err) < 0)
		return fail(path, err);
	free(path);
	json_t *tmpl = json_loads(text, 0, NULL);
	const char *tid = json_string_value(json_object_get(tmpl, "id"));
	const char *colon = tid ? strchr(tid, ':') : NULL;
	if (!colon || colon == tid) {
		fprintf(stderr, "api_fill: %s/build.json has no id\n", tdir);
		return 1;
	}
	char *tproj = cbl_xstrndup(tid, (size_t)(colon - tid));
	char *tuuid = cbl_xstrdup(colon + 1);
	json_decref(tmpl);

	FILE *ids = fopen(ids_path, "w");
	if (!ids) {
		perror(ids_path);
		return 1;
	}
	cbl_buf a = CBL_BUF_INIT, b = CBL_BUF_INIT;
	int64_t t0 = cbl_mono_us();
	for (long i = 0; i < n; i++) {
		char proj[16], uuid[37];
		snprintf(proj, sizeof(proj), "bench-%02ld", i % nproj);
		cbl_uuid4(uuid);
		int64_t number = 0;
		char *dir = NULL;
		if (store_next_build_number(home, proj, &number, &err) < 0)
			return fail("store_next_build_number", err);
		if (store_build_dir_create(home, proj, uuid, &dir, &err) < 0)
			return fail("store_build_dir_create", err);
		replace_all(&a, text, tproj, proj);
		replace_all(&b, cbl_buf_cstr(&a), tuuid, uuid);
		json_error_t jerr;
		json_t *rec = json_loads(cbl_buf_cstr(&b), 0, &jerr);
		if (!rec) {
			fprintf(stderr, "api_fill: record %ld: %s\n", i, jerr.text);
			return 1;
		}
		json_object_set_new(rec, "buildNumber", json_integer(number));
		shift_times(rec, -60.0 * (double)(n - i));
		char *lp = cbl_path_join(dir, "build.log");
		if (cbl_write_file_atomic(lp, log, log_len, 0644, false, &err) < 0)
			return fail(lp, err);
		free(lp);
		if (store_build_save(dir, rec, false, &err) < 0)
			return fail("store_build_save", err);
		fprintf(ids, "%s:%s\n", proj, uuid);
		json_decref(rec);
		free(dir);
	}
	double secs = (double)(cbl_mono_us() - t0) / 1e6;
	if (fclose(ids)) {
		perror(ids_path);
		return 1;
	}
	printf("builds=%ld seconds=%.2f builds_per_sec=%.0f\n", n, secs, (double)n / secs);
	cbl_buf_release(&a);
	cbl_buf_release(&b);
	free(text);
	free(log);
	free(tproj);
	free(tuuid);
	return 0;
}
