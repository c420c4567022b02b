/* Unit tests for server/dash_batch.c: a batch's page from its record (the
 * builds by dependency level, hostile names escaped, a dependency cycle in a
 * damaged record bounded) and a project's batch rows. */
#include "tests/unit/tap.h"
#include "server/dashboard.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVIL "<script>x</script>\"'&"

static json_t *group(const char *ident, json_t *deps, const char *status)
{
	json_t *g = json_pack("{s:s, s:o, s:b, s:[]}", "identifier", ident, "dependsOn", deps,
			      "ignoreFailure", 0, "priorBuildSummaryList");
	if (status) {
		char *arn = cbl_xasprintf("arn:aws:codebuild:us-east-1:000000000000:build/p:%s-id",
					  ident);
		json_object_set_new(g, "currentBuildSummary",
				    json_pack("{s:s, s:s}", "arn", arn, "buildStatus", status));
		free(arn);
	}
	return g;
}

static char *page(const char *home, const char *id, int *rc)
{
	struct dash_page p = {CBL_BUF_INIT, "csrf"};
	char *errmsg = NULL;
	*rc = dash_batch_page(home, id, &p, &errmsg);
	free(errmsg);
	char *s = cbl_xstrdup(p.b.ptr ? p.b.ptr : "");
	cbl_buf_release(&p.b);
	return s;
}

int main(void)
{
	char tmpl[] = "/tmp/test_server_dash_batch.XXXXXX";
	char *d = mkdtemp(tmpl);
	if (!d)
		abort();
	char *home = cbl_xasprintf("%s/home", d);
	cbl_error *e = NULL;
	char *dir = NULL;
	const char *uuid = "11111111-2222-3333-4444-555555555555";
	ok(store_batch_dir_create(home, "proj", uuid, &dir, &e) == 0, "batch directory");
	json_t *groups = json_pack("[o, o, o, o, o]", group("a", json_array(), "SUCCEEDED"),
				   group(EVIL, json_pack("[s]", "a"), "FAILED"),
				   group("c", json_pack("[s, s]", "a", EVIL), NULL),
				   group("x", json_pack("[s]", "y"), NULL), group("y", json_pack("[s]", "x"), NULL));
	json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:o, s:f, s:f}", "id",
				"proj:11111111-2222-3333-4444-555555555555", "arn",
				"arn:aws:codebuild:us-east-1:000000000000:build-batch/proj:"
				"11111111-2222-3333-4444-555555555555",
				"projectName", "proj", "buildBatchStatus", "FAILED", "buildBatchNumber", 3,
				"complete", 1, "buildGroups", groups, "startTime", 1700000000.0,
				"endTime", 1700000002.5);
	ok(store_batch_save(home, rec, &e) == 0, "saved");
	if (e)
		printf("# %s\n", e->msg);
	int rc;
	char *html = page(home, "proj:11111111-2222-3333-4444-555555555555", &rc);
	is_int(rc, 0, "the page");
	ok(strstr(html, "<h1>Batch proj #3</h1>") != NULL, "its title");
	ok(!strstr(html, "<script>x"), "a hostile identifier is escaped");
	ok(strstr(html, "id=\"g-&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;\"") != NULL,
	   "in attributes too");
	ok(strstr(html, "<tr data-level=\"0\"><th scope=\"row\">0</th><td><ul class=\"groups\">"
			"<li class=\"group\" id=\"g-a\"") != NULL, "a is on level 0");
	ok(strstr(html, "<tr data-level=\"2\">") != NULL && strstr(html, "id=\"g-c\"") >
	   strstr(html, "<tr data-level=\"2\">"), "c (after a and the hostile one) on level 2");
	ok(strstr(html, "href=\"/builds/p:a-id\"") != NULL, "a links to its build");
	ok(strstr(html, "NOT_STARTED") != NULL, "c never started");
	ok(strstr(html, "id=\"g-x\"") && strstr(html, "id=\"g-y\""), "a cycle still shows, bounded");
	ok(strstr(html, "<text x=\"8\" y=\"20\">a</text>") != NULL, "drawn: a first");
	ok(strstr(html, "<text x=\"208\" y=\"20\">&lt;script&gt;x") != NULL, "a drawn hostile name is escaped");
	ok(strstr(html, "<dt>Duration</dt><dd>2.5 s</dd>") != NULL, "its duration");
	free(html);
	html = page(home, "proj:99999999-2222-3333-4444-555555555555", &rc);
	is_int(rc, -2, "an unknown batch: not found");
	free(html);
	html = page(home, "../../etc:passwd", &rc);
	ok(rc < 0, "a malformed id is refused");
	free(html);
	cbl_buf b = CBL_BUF_INIT;
	json_t *list = json_pack("[O]", rec);
	dash_batch_rows(&b, list);
	ok(strstr(b.ptr, "href=\"/batches/proj:11111111-2222-3333-4444-555555555555\">#3</a>") != NULL,
	   "a row links to the batch page");
	ok(strstr(b.ptr, "<td>5</td>") != NULL, "with its number of builds");
	cbl_buf_release(&b);
	json_decref(list);
	json_decref(rec);
	cbl_error_free(e);
	e = NULL;
	free(dir);
	cbl_rm_rf(d, &e);
	cbl_error_free(e);
	free(home);
	return tap_done();
}
