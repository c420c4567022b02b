/* Unit tests for store/reportgroups.c, store/webhooks.c and
 * store/credentials.c, through store_api_dispatch. */
#include "tests/unit/tap.h"
#include "store/api.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CB STORE_TARGET_CODEBUILD
#define GROUP "arn:aws:codebuild:us-east-1:000000000000:report-group/g1"

static json_t *call(const char *home, const char *op, const char *req_json, int *rc, char **msg)
{
	char *target = cbl_xasprintf(CB "%s", op);
	json_t *req = json_loads(req_json, 0, NULL);
	json_t *out = NULL;
	cbl_error *e = NULL;
	*rc = store_api_dispatch(home, target, req, &out, &e);
	if (msg)
		*msg = e ? cbl_xstrdup(e->msg) : NULL;
	cbl_error_free(e);
	json_decref(req);
	free(target);
	return out;
}

static void expect_rc(const char *home, const char *op, const char *req, int want, const char *what)
{
	int rc;
	char *msg = NULL;
	json_decref(call(home, op, req, &rc, &msg));
	is_int(rc, want, "%s", what);
	if (rc != want)
		printf("#   %s\n", msg ? msg : "(no message)");
	free(msg);
}

static void test_report_groups(const char *home)
{
	int rc;
	json_t *r = call(home, "CreateReportGroup",
			 "{\"name\": \"g1\", \"type\": \"TEST\", \"exportConfig\": {\"exportConfigType\": \"NO_EXPORT\"}}",
			 &rc, NULL);
	json_t *g = json_object_get(r, "reportGroup");
	ok(rc == 0 && !strcmp(json_string_value(json_object_get(g, "arn")), GROUP), "group created");
	ok(json_array_size(json_object_get(g, "tags")) == 0 &&
		   !strcmp(json_string_value(json_object_get(g, "status")), "ACTIVE"),
	   "no tags, ACTIVE");
	json_decref(r);
	expect_rc(home, "CreateReportGroup",
		  "{\"name\": \"g1\", \"type\": \"TEST\", \"exportConfig\": {\"exportConfigType\": \"NO_EXPORT\"}}",
		  CBL_EEXIST, "a second group of that name");
	r = call(home, "UpdateReportGroup", "{\"arn\": \"" GROUP "\", \"tags\": [{\"key\": \"k\", \"value\": \"v\"}]}",
		 &rc, NULL);
	ok(rc == 0 && json_array_size(json_object_get(json_object_get(r, "reportGroup"), "tags")) == 1,
	   "tags updated");
	json_decref(r);
	r = call(home, "BatchGetReportGroups", "{\"reportGroupArns\": [\"" GROUP "\"]}", &rc, NULL);
	g = json_array_get(json_object_get(r, "reportGroups"), 0);
	ok(rc == 0 && json_array_size(json_object_get(g, "tags")) == 1, "BatchGetReportGroups reads its new tags");
	json_decref(r);
	expect_rc(home, "UpdateReportGroup", "{\"arn\": \"" GROUP "x\"}", CBL_ENOENT, "update of an unknown group");
	expect_rc(home, "DeleteReportGroup", "{\"arn\": \"" GROUP "\"}", 0, "delete (no reports)");
	r = call(home, "BatchGetReportGroups", "{\"reportGroupArns\": [\"" GROUP "\"]}", &rc, NULL);
	ok(rc == 0 && json_array_size(json_object_get(r, "reportGroupsNotFound")) == 1, "gone");
	json_decref(r);
	expect_rc(home, "DeleteReport", "{\"arn\": \"" GROUP ":x\"}", 0, "deleting an unknown report succeeds");
	expect_rc(home, "CreateReportGroup", "{\"name\": \"g2\", \"type\": \"NOPE\", \"exportConfig\": {}}",
		  CBL_EINVAL, "the model's enum applies");
}

static void test_webhooks(const char *home)
{
	int rc;
	char *msg = NULL;
	expect_rc(home, "CreateProject",
		  "{\"name\": \"hp\", \"source\": {\"type\": \"NO_SOURCE\", \"buildspec\": \"version: 0.2\"},"
		  " \"artifacts\": {\"type\": \"NO_ARTIFACTS\"}, \"environment\": {\"type\": \"LINUX_CONTAINER\","
		  " \"image\": \"host\", \"computeType\": \"BUILD_GENERAL1_SMALL\"}}",
		  0, "project");
	json_t *r = call(home, "CreateWebhook", "{\"projectName\": \"hp\", \"branchFilter\": \"main\"}", &rc, NULL);
	json_t *w = json_object_get(r, "webhook");
	const char *secret = json_string_value(json_object_get(w, "secret"));
	ok(rc == 0 && secret && strlen(secret) == 64, "webhook with a secret");
	char *first = cbl_xstrdup(secret ? secret : "");
	json_decref(r);
	expect_rc(home, "CreateWebhook", "{\"projectName\": \"hp\"}", CBL_EEXIST, "a second webhook");
	expect_rc(home, "CreateWebhook", "{\"projectName\": \"nope\"}", CBL_ENOENT, "unknown project");
	r = call(home, "BatchGetProjects", "{\"names\": [\"hp\"]}", &rc, NULL);
	w = json_object_get(json_array_get(json_object_get(r, "projects"), 0), "webhook");
	ok(w && !json_object_get(w, "secret") &&
		   !strcmp(json_string_value(json_object_get(w, "branchFilter")), "main"),
	   "the project shows it, without its secret");
	char *text = json_dumps(r, 0);
	ok(text && !strstr(text, first), "the secret appears nowhere in BatchGetProjects");
	free(text);
	json_decref(r);
	r = call(home, "UpdateWebhook", "{\"projectName\": \"hp\", \"rotateSecret\": true}", &rc, NULL);
	w = json_object_get(r, "webhook");
	ok(rc == 0 && json_object_get(w, "secret") &&
		   strcmp(json_string_value(json_object_get(w, "secret")), first) &&
		   !strcmp(json_string_value(json_object_get(w, "branchFilter")), "main"),
	   "rotated, the rest kept");
	json_decref(r);
	free(first);
	expect_rc(home, "DeleteWebhook", "{\"projectName\": \"hp\"}", 0, "deleted");
	json_decref(call(home, "DeleteWebhook", "{\"projectName\": \"hp\"}", &rc, &msg));
	ok(rc == CBL_ENOENT && msg && strstr(msg, "Webhook cannot be found"), "deleting again: not found");
	free(msg);
}

static void test_credentials(const char *home)
{
	int rc;
	json_t *r = call(home, "ImportSourceCredentials",
			 "{\"token\": \"tok-SECRET\", \"serverType\": \"GITLAB\", \"authType\": \"PERSONAL_ACCESS_TOKEN\"}",
			 &rc, NULL);
	ok(rc == 0 && !strcmp(json_string_value(json_object_get(r, "arn")),
			      "arn:aws:codebuild:us-east-1:000000000000:token/gitlab"),
	   "imported");
	json_decref(r);
	char *path = cbl_path_join(home, "source-credentials.json");
	struct stat st;
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "the file is 0600");
	free(path);
	r = call(home, "ListSourceCredentials", "{}", &rc, NULL);
	char *text = json_dumps(r, 0);
	ok(rc == 0 && json_array_size(json_object_get(r, "sourceCredentialsInfos")) == 1 && text &&
		   !strstr(text, "tok-SECRET"),
	   "listed, never the token");
	free(text);
	json_decref(r);
	expect_rc(home, "ImportSourceCredentials",
		  "{\"token\": \"t\", \"serverType\": \"GITLAB\", \"authType\": \"PERSONAL_ACCESS_TOKEN\","
		  " \"shouldOverwrite\": false}",
		  CBL_EEXIST, "no overwrite");
	expect_rc(home, "ImportSourceCredentials",
		  "{\"token\": \"t\", \"serverType\": \"GITHUB\", \"authType\": \"BASIC_AUTH\"}", CBL_EINVAL,
		  "BASIC_AUTH needs a username");
	expect_rc(home, "DeleteSourceCredentials",
		  "{\"arn\": \"arn:aws:codebuild:us-east-1:000000000000:token/gitlab\"}", 0, "deleted");
	expect_rc(home, "DeleteSourceCredentials",
		  "{\"arn\": \"arn:aws:codebuild:us-east-1:000000000000:token/gitlab\"}", CBL_ENOENT,
		  "deleting again: not found");
}

int main(void)
{
	char tmpl[] = "/tmp/test_store_ops.XXXXXX";
	char *dir = mkdtemp(tmpl);
	if (!dir)
		return 1;
	char *home = cbl_path_join(dir, "home");
	test_report_groups(home);
	test_webhooks(home);
	test_credentials(home);
	cbl_error *e = NULL;
	cbl_rm_rf(dir, &e);
	cbl_error_free(e);
	free(home);
	return tap_done();
}
