/* bench/metrics_fill.c - fills a state directory with N finished builds for
 * bench/metrics.sh (built and run by that script; not part of the library).
 *
 * Usage: metrics_fill HOME TEMPLATE_DIR N PROJECTS DAYS
 *
 * TEMPLATE_DIR is one real build's directory (<home>/builds/<p>/<uuid>);
 * each new build is its record with the project replaced by bench-NN
 * (NN = i mod PROJECTS) and a new uuid everywhere, its end spread evenly
 * over the last DAYS days, its times from the start stretched by a factor
 * of 0.5 to 8 (so durations vary), and every fifth one FAILED in BUILD.
 * Saved through the store's own API (store_build_dir_create +
 * store_build_save, not durable).  Prints: builds=N seconds=S.
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

/* t -> base + (t - t0) * f + delta for every startTime / endTime, phases too */
static void retime(json_t *o, double t0, double f, double base)
{
	static const char *const keys[] = {"startTime", "endTime"};
	for (size_t k = 0; k < 2; k++) {
		json_t *t = json_object_get(o, keys[k]);
		if (json_is_number(t))
			json_object_set_new(o, keys[k], json_real(base + (json_number_value(t) - t0) * f));
	}
	size_t i;
	json_t *ph;
	json_array_foreach(json_object_get(o, "phases"), i, ph)
		retime(ph, t0, f, base);
}

static void make_failed(json_t *rec)
{
	json_object_set_new(rec, "buildStatus", json_string("FAILED"));
	size_t i;
	json_t *ph;
	json_array_foreach(json_object_get(rec, "phases"), i, ph)
	if (!strcmp(json_string_value(json_object_get(ph, "phaseType")), "BUILD"))
		json_object_set_new(ph, "phaseStatus", json_string("FAILED"));
}

static int fail(const char *what, cbl_error *err)
{
	fprintf(stderr, "metrics_fill: %s: %s\n", what, err ? err->msg : "failed");
	cbl_error_free(err);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s HOME TEMPLATE_DIR N PROJECTS DAYS\n", argv[0]);
		return 2;
	}
	const char *home = argv[1], *tdir = argv[2];
	long n = strtol(argv[3], NULL, 10), nproj = strtol(argv[4], NULL, 10), days = strtol(argv[5], NULL, 10);
	if (n < 1 || nproj < 1 || nproj > 100 || days < 1) {
		fprintf(stderr, "metrics_fill: N >= 1, 1 <= PROJECTS <= 100, DAYS >= 1\n");
		return 2;
	}
	cbl_error *err = NULL;
	char *path = cbl_path_join(tdir, "build.json"), *text = NULL;
	size_t len = 0;
	if (cbl_read_file(path, 4u << 20, &text, &len, &err) < 0)
		return fail(path, err);
	free(path);
	json_t *tmpl = json_loads(text, 0, NULL);
	const char *tid = json_string_value(json_object_get(tmpl, "id"));
	const char *colon = tid ? strchr(tid, ':') : NULL;
	if (!colon || colon == tid)
		return fail("the template has no id", NULL);
	char *tproj = cbl_xstrndup(tid, (size_t)(colon - tid));
	char *tuuid = cbl_xstrdup(colon + 1);
	double t0 = json_number_value(json_object_get(tmpl, "startTime"));
	double tend = json_number_value(json_object_get(tmpl, "endTime"));
	json_decref(tmpl);
	double now = (double)cbl_now_us() / 1e6, span = 86400.0 * (double)days;
	cbl_buf a = CBL_BUF_INIT, b = CBL_BUF_INIT;
	srandom(20);
	int64_t m0 = cbl_mono_us();
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
		json_t *rec = json_loads(cbl_buf_cstr(&b), 0, NULL);
		if (!rec)
			return fail("a record", NULL);
		json_object_set_new(rec, "buildNumber", json_integer(number));
		double f = 0.5 + 7.5 * (double)(random() % 1000) / 1000.0;
		double end = now - span * (double)(n - i) / (double)n;
		retime(rec, t0, f, end - (tend - t0) * f);
		if (i % 5 == 4)
			make_failed(rec);
		if (store_build_save(dir, rec, false, &err) < 0)
			return fail("store_build_save", err);
		json_decref(rec);
		free(dir);
	}
	printf("builds=%ld seconds=%.2f\n", n, (double)(cbl_mono_us() - m0) / 1e6);
	cbl_buf_release(&a);
	cbl_buf_release(&b);
	free(text);
	free(tproj);
	free(tuuid);
	return 0;
}
