/* Unit tests for store/dash.c: the dashboard's read models (project
 * summaries, keyset pages of builds with a status filter, trends, a build's
 * log from an offset in whole lines). */
#include "tests/unit/tap.h"
#include "store/dash.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *status_of(int64_t n) { return n % 3 == 0 ? "FAILED" : "SUCCEEDED"; }

/* Build n of project p: complete unless running; FAILED every third. */
static char *save(const char *home, const char *p, int64_t n, bool running, char id[80])
{
	char uuid[37], *dir = NULL;
	cbl_error *e = NULL;
	cbl_uuid4(uuid);
	snprintf(id, 80, "%s:%s", p, uuid);
	if (store_build_dir_create(home, p, uuid, &dir, &e)) {
		fprintf(stderr, "# dir: %s\n", e->msg);
		abort();
	}
	int64_t start = 1700000000000 + n * 60000, dur = 1000 * n;
	char *group = cbl_xasprintf("/aws/codebuild/%s", p);
	json_t *r = json_pack("{s:s, s:I, s:o, s:s, s:s, s:[], s:{s:s, s:s}, s:b, s:s, s:s}", "id", id,
			      "buildNumber", (json_int_t)n, "startTime", store_json_time(start),
			      "buildStatus", running ? "IN_PROGRESS" : status_of(n), "projectName", p,
			      "phases", "logs", "groupName", group, "streamName", uuid,
			      "buildComplete", !running, "initiator", "tester", "resolvedSourceVersion",
			      "abc123");
	if (!running)
		json_object_set_new(r, "endTime", store_json_time(start + dur));
	if (store_build_save(dir, r, false, &e)) {
		fprintf(stderr, "# save: %s\n", e->msg);
		abort();
	}
	json_decref(r);
	free(group);
	return dir;
}

static void test_pages(const char *home)
{
	char id[80];
	for (int64_t n = 1; n <= 120; n++)
		free(save(home, "proj", n, n == 120, id));
	json_t *page = NULL;
	cbl_error *e = NULL;
	ok(store_dash_builds(home, "proj", NULL, 0, 50, &page, &e) == 0, "first page");
	json_t *b = json_object_get(page, "builds");
	is_int(json_array_size(b), 50, "50 builds");
	is_int(json_integer_value(json_object_get(json_array_get(b, 0), "number")), 120, "newest first");
	is_str(json_string_value(json_object_get(json_array_get(b, 0), "status")), "IN_PROGRESS",
	       "running build");
	ok(json_is_null(json_object_get(json_array_get(b, 0), "durationMs")), "no duration while running");
	is_int(json_integer_value(json_object_get(json_array_get(b, 1), "durationMs")), 119000,
	       "duration of a complete build");
	is_str(json_string_value(json_object_get(json_array_get(b, 1), "sourceVersion")), "abc123",
	       "source version");
	is_str(json_string_value(json_object_get(json_array_get(b, 1), "initiator")), "tester",
	       "initiator");
	int64_t next = json_integer_value(json_object_get(page, "next"));
	is_int(next, 71, "next = the last number shown");
	json_decref(page);
	ok(store_dash_builds(home, "proj", NULL, next, 50, &page, &e) == 0, "second page");
	b = json_object_get(page, "builds");
	is_int(json_integer_value(json_object_get(json_array_get(b, 0), "number")), 70, "starts below");
	next = json_integer_value(json_object_get(page, "next"));
	json_decref(page);
	ok(store_dash_builds(home, "proj", NULL, next, 50, &page, &e) == 0, "last page");
	is_int(json_array_size(json_object_get(page, "builds")), 20, "the rest");
	ok(json_is_null(json_object_get(page, "next")), "no next on the last page");
	json_decref(page);

	ok(store_dash_builds(home, "proj", "FAILED", 0, 500, &page, &e) == 0, "filter");
	b = json_object_get(page, "builds");
	is_int(json_array_size(b), 39, "every third of 1..119 failed");
	size_t i;
	json_t *o;
	bool all = true;
	json_array_foreach(b, i, o) all = all && !strcmp(json_string_value(json_object_get(o, "status")), "FAILED");
	ok(all, "only failed builds");
	json_decref(page);
	is_int(store_dash_builds(home, "proj", "BOGUS", 0, 50, &page, &e), CBL_EINVAL, "unknown status");
	cbl_error_free(e);
	e = NULL;
	is_int(store_dash_builds(home, "proj", NULL, 0, 0, &page, &e), CBL_EINVAL, "page size 0");
	cbl_error_free(e);
	e = NULL;

	json_t *projects = NULL;
	ok(store_dash_projects(home, &projects, &e) == 0, "projects");
	o = json_array_get(projects, 0);
	is_str(json_string_value(json_object_get(o, "name")), "proj", "project p");
	is_int(json_integer_value(json_object_get(o, "builds")), 120, "its count");
	is_str(json_string_value(json_object_get(o, "lastStatus")), "IN_PROGRESS", "its last build");
	/* builds 19..119: 100 complete; 33 of them numbered by 3 */
	ok(json_real_value(json_object_get(o, "successRate")) > 66.9 &&
		   json_real_value(json_object_get(o, "successRate")) < 67.1,
	   "success rate of the last 100 complete builds");
	is_int(json_integer_value(json_object_get(o, "medianMs")), 69500, "median duration");
	json_decref(projects);

	json_t *trend = NULL;
	ok(store_dash_trend(home, "proj", 10, &trend, &e) == 0, "trend");
	is_int(json_array_size(trend), 10, "10 points");
	is_int(json_integer_value(json_object_get(json_array_get(trend, 0), "number")), 110, "oldest first");
	is_int(json_integer_value(json_object_get(json_array_get(trend, 9), "number")), 119,
	       "the running build left out");
	json_decref(trend);
}

static void write_log(const char *dir, const char *text)
{
	char *path = cbl_xasprintf("%s/build.log", dir);
	cbl_error *e = NULL;
	if (cbl_write_file_atomic(path, text, strlen(text), 0644, false, &e))
		abort();
	free(path);
}

static void test_log(const char *home)
{
	char id[80], done_id[80];
	char *dir = save(home, "qq", 1, true, id);
	char *done_dir = save(home, "qq", 2, false, done_id);
	write_log(dir, "a\nbb\npartial");
	write_log(done_dir, "x\ny");
	cbl_buf out = CBL_BUF_INIT;
	bool complete = true;
	cbl_error *e = NULL;
	ok(store_dash_log_read(home, id, 0, 65536, &out, &complete, &e) == 0, "read");
	is_str(cbl_buf_cstr(&out), "a\nbb\n", "whole lines only while running");
	ok(!complete, "running");
	cbl_buf_reset(&out);
	ok(store_dash_log_read(home, id, 2, 65536, &out, &complete, &e) == 0, "read from 2");
	is_str(cbl_buf_cstr(&out), "bb\n", "from the offset");
	cbl_buf_reset(&out);
	ok(store_dash_log_read(home, id, 0, 1, &out, &complete, &e) == 0, "read 1 byte");
	is_str(cbl_buf_cstr(&out), "a\n", "a whole line");
	cbl_buf_reset(&out);
	ok(store_dash_log_read(home, id, 5, 65536, &out, &complete, &e) == 0, "at the partial line");
	is_str(cbl_buf_cstr(&out), "", "nothing yet");
	cbl_buf_reset(&out);
	ok(store_dash_log_read(home, done_id, 0, 65536, &out, &complete, &e) == 0, "complete build");
	is_str(cbl_buf_cstr(&out), "x\ny", "the last line too once complete");
	ok(complete, "complete");
	cbl_buf_reset(&out);
	/* a running build's endless line comes in pieces of max + 1 MiB */
	size_t big = 2u << 20;
	char *huge = cbl_xmalloc(big + 1);
	memset(huge, 'z', big);
	huge[big] = '\0';
	write_log(dir, huge);
	free(huge);
	ok(store_dash_log_read(home, id, 0, 100, &out, &complete, &e) == 0, "an endless line");
	ok(out.len >= (1u << 20) + 100 && out.len < big, "read in a bounded piece");
	cbl_buf_reset(&out);
	is_int(store_dash_log_read(home, "qq:00000000-0000-0000-0000-000000000000", 0, 10, &out,
				   &complete, &e),
	       CBL_ENOENT, "unknown build");
	cbl_error_free(e);
	cbl_buf_release(&out);
	free(dir);
	free(done_dir);
}

/* codebuildLocal comes from build.json; the database's copy (the API's)
 * never has it. */
static void test_local(const char *home)
{
	char id[80], plain_id[80], uuid[37], *dir = NULL;
	cbl_error *e = NULL;
	free(save(home, "loc", 1, false, plain_id));
	cbl_uuid4(uuid);
	snprintf(id, sizeof(id), "loc:%s", uuid);
	if (store_build_dir_create(home, "loc", uuid, &dir, &e))
		abort();
	json_t *r = json_pack("{s:s, s:i, s:o, s:o, s:s, s:s, s:b, s:{s:{s:f, s:i}}}", "id", id,
			      "buildNumber", 2, "startTime", store_json_time(1700000000000),
			      "endTime", store_json_time(1700000001000), "buildStatus", "SUCCEEDED",
			      "projectName", "loc", "buildComplete", 1, "codebuildLocal",
			      "resourceUsage", "cpuSeconds", 1.5, "memoryPeakBytes", 4096);
	ok(store_build_save(dir, r, true, &e) == 0, "saved with codebuildLocal");
	json_decref(r);
	json_t *local = NULL, *rec = NULL;
	ok(store_dash_build_local(home, id, &local, &e) == 0, "read codebuildLocal");
	json_t *u = json_object_get(local, "resourceUsage");
	is_int(json_integer_value(json_object_get(u, "memoryPeakBytes")), 4096, "its figures");
	ok(store_build_load(home, id, &rec, &e) == 0 && !json_object_get(rec, "codebuildLocal"),
	   "the database's copy has none");
	json_decref(local);
	json_decref(rec);
	ok(store_dash_build_local(home, plain_id, &local, &e) == 0 && !local, "none: NULL");
	is_int(store_dash_build_local(home, "loc:00000000-0000-0000-0000-000000000000", &local, &e),
	       CBL_ENOENT, "unknown build");
	cbl_error_free(e);
	free(dir);
}

int main(void)
{
	char tmpl[] = "/tmp/test_store_dash.XXXXXX";
	char *d = mkdtemp(tmpl);
	if (!d)
		abort();
	char *home = cbl_xasprintf("%s/home", d);
	test_pages(home);
	test_log(home);
	test_local(home);
	cbl_error *e = NULL;
	cbl_rm_rf(d, &e);
	cbl_error_free(e);
	free(home);
	return tap_done();
}
