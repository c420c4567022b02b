/* tests/unit/test_store_validate.c - the model-driven request validator
 * (store/validate.c) and its generated tables. */
#include "store/api.h"
#include "store/store_internal.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <jansson.h>
#include <stdarg.h>

#define CB STORE_TARGET_CODEBUILD

/* The validator's message for request (NULL when it passes). */
static char *verdict(const char *target, const char *request)
{
	json_error_t je;
	json_t *req = json_loads(request, 0, &je);
	if (!req) {
		printf("# bad test JSON: %s\n", je.text);
		return strdup("bad test JSON");
	}
	cbl_error *err = NULL;
	int rc = store_api_validate(target, req, &err);
	char *msg = rc ? strdup(err ? err->msg : "(no message)") : NULL;
	if (rc && rc != CBL_EINVAL) {
		free(msg);
		msg = strdup("wrong error code");
	}
	cbl_error_free(err);
	json_decref(req);
	return msg;
}

static void expect(const char *target, const char *request, const char *want, const char *whatf, ...)
	__attribute__((format(printf, 4, 5)));
static void expect(const char *target, const char *request, const char *want, const char *whatf, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, whatf);
	vsnprintf(what, sizeof(what), whatf, ap);
	va_end(ap);
	char *got = verdict(target, request);
	if (!want)
		ok(!got, "%s passes", what);
	else
		is_str(got ? got : "(passed)", want, "%s", what);
	if (!want && got)
		printf("#   got: %s\n", got);
	free(got);
}

static void test_tables(void)
{
	ok(store_model_nops > 150, "both models' operations are in the table (%zu)", store_model_nops);
	for (size_t i = 1; i < store_model_nops; i++)
		if (strcmp(store_model_ops[i - 1].target, store_model_ops[i].target) >= 0) {
			ok(0, "operations sorted at %s", store_model_ops[i].target);
			return;
		}
	ok(1, "operations sorted (bsearch)");
	ok(store_model_op(CB "StartBuild") != NULL, "StartBuild found");
	ok(store_model_op("Logs_20140328.FilterLogEvents") != NULL, "FilterLogEvents found");
	ok(store_model_op(CB "Nope") == NULL, "unknown operation not found");
	int bad = 0;
	for (size_t i = 1; i < store_model_npatterns; i++)
		if (store_model_pattern_match(i, "") < 0) {
			printf("# does not compile: %s -> %s\n", store_model_patterns[i].java,
			       store_model_patterns[i].posix);
			bad++;
		}
	is_int(bad, 0, "every pattern of the models compiles (%zu)", store_model_npatterns - 1);
}

static void test_patterns(void)
{
	/* find each pattern by its model text */
	size_t name = 0, tag = 0, stream = 0;
	for (size_t i = 1; i < store_model_npatterns; i++) {
		const char *j = store_model_patterns[i].java;
		if (!strcmp(j, "[A-Za-z0-9][A-Za-z0-9\\-_]{1,149}"))
			name = i;
		else if (!strcmp(j, "^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"))
			tag = i;
		else if (!strcmp(j, "[^:*]*"))
			stream = i;
	}
	ok(name && tag && stream, "patterns found");
	is_int(store_model_pattern_match(name, "my-project_1"), 1, "project name ok");
	is_int(store_model_pattern_match(name, "a b"), 0, "space refused (whole-value match)");
	is_int(store_model_pattern_match(name, "-ab"), 0, "leading dash refused");
	is_int(store_model_pattern_match(name, "x"), 0, "one character refused");
	is_int(store_model_pattern_match(tag, "env: prod/a=b@c+d-e"), 1, "tag characters");
	is_int(store_model_pattern_match(tag, "caf\xc3\xa9 \xe6\x97\xa5"), 1, "unicode letters (\\p{L})");
	is_int(store_model_pattern_match(tag, "a;b"), 0, "';' refused in a tag");
	is_int(store_model_pattern_match(stream, "a/b-c"), 1, "stream name");
	is_int(store_model_pattern_match(stream, "a:b"), 0, "':' refused in a stream name");
	is_int(store_utf16_len("a\xc3\xa9\xf0\x9f\x98\x80"), 4, "UTF-16 length (é 1, emoji 2)");
}

static void test_messages(void)
{
	expect(CB "StartBuild", "{\"projectName\":\"p\"}", NULL, "minimal StartBuild");
	expect(CB "StartBuild", "{\"projectName\":\"p\",\"environmentTypeOverride\":\"FOO\"}",
	       "1 validation error detected: Value 'FOO' at 'environmentTypeOverride' failed to "
	       "satisfy constraint: Member must satisfy enum value set: [WINDOWS_CONTAINER, "
	       "LINUX_CONTAINER, LINUX_GPU_CONTAINER, ARM_CONTAINER, WINDOWS_SERVER_2019_CONTAINER, "
	       "WINDOWS_SERVER_2022_CONTAINER, LINUX_LAMBDA_CONTAINER, ARM_LAMBDA_CONTAINER, "
	       "LINUX_EC2, ARM_EC2, WINDOWS_EC2, MAC_ARM]",
	       "enum");
	expect(CB "StartBuild",
	       "{\"projectName\":\"p\",\"gitCloneDepthOverride\":-1,\"queuedTimeoutInMinutesOverride\":1000}",
	       "2 validation errors detected: Value '-1' at 'gitCloneDepthOverride' failed to satisfy "
	       "constraint: Member must have value greater than or equal to 0; Value '1000' at "
	       "'queuedTimeoutInMinutesOverride' failed to satisfy constraint: Member must have value "
	       "less than or equal to 480",
	       "ranges, two errors in model order");
	expect(CB "StartBuild", "{}",
	       "1 validation error detected: Value null at 'projectName' failed to satisfy "
	       "constraint: Member must not be null",
	       "required member");
	expect(CB "StartBuild",
	       "{\"projectName\":\"p\",\"environmentVariablesOverride\":[{\"name\":\"A\",\"value\":\"1\"},"
	       "{\"name\":\"B\",\"value\":\"2\",\"type\":\"NOPE\"}]}",
	       "1 validation error detected: Value 'NOPE' at "
	       "'environmentVariablesOverride.2.member.type' failed to satisfy constraint: Member must "
	       "satisfy enum value set: [PLAINTEXT, PARAMETER_STORE, SECRETS_MANAGER]",
	       "list of structures: 1-based .member path");
	expect(CB "StartBuild", "{\"projectName\":\"p\",\"logsConfigOverride\":{\"cloudWatchLogs\":{\"status\":\"FOO\"}}}",
	       "1 validation error detected: Value 'FOO' at 'logsConfigOverride.cloudWatchLogs.status' "
	       "failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]",
	       "nested structure");
	expect(CB "CreateProject",
	       "{\"name\":\"\",\"source\":{\"type\":\"NO_SOURCE\"},\"artifacts\":{\"type\":\"NO_ARTIFACTS\"},"
	       "\"environment\":{\"type\":\"LINUX_CONTAINER\",\"image\":\"i\",\"computeType\":\"BUILD_GENERAL1_SMALL\"}}",
	       "2 validation errors detected: Value '' at 'name' failed to satisfy constraint: Member "
	       "must have length greater than or equal to 2; Value '' at 'name' failed to satisfy "
	       "constraint: Member must satisfy regular expression pattern: "
	       "[A-Za-z0-9][A-Za-z0-9\\-_]{1,149}",
	       "one value breaking two constraints gives two errors");
	expect(CB "BatchGetBuilds", "{\"ids\":[]}",
	       "1 validation error detected: Value '[]' at 'ids' failed to satisfy constraint: "
	       "Member must have length greater than or equal to 1",
	       "list length");
	expect(CB "BatchGetBuilds", "{\"ids\":[\"a\",\"\"]}",
	       "1 validation error detected: Value '[a, ]' at 'ids' failed to satisfy constraint: "
	       "Member must satisfy constraint: [Member must have length greater than or equal to 1]",
	       "list of scalars: one error at the list with the element's constraints");
	expect("Logs_20140328.GetLogEvents",
	       "{\"logGroupName\":\"g\",\"logStreamName\":\"s\",\"limit\":0}",
	       "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
	       "Member must have value greater than or equal to 1",
	       "Logs operation");
	expect(CB "StartBuild", "{\"projectName\":\"p\",\"gitCloneDepthOverride\":\"x\"}", NULL,
	       "wrong JSON type left to the operation");
	expect(CB "StartBuild", "{\"projectName\":\"p\",\"unknownMember\":1}", NULL,
	       "unknown member ignored");
	expect(CB "NoSuchOperation", "{\"a\":1}", NULL, "unknown operation passes");
	expect(CB "CreateProject",
	       "{\"name\":\"ok-name\",\"source\":{\"type\":\"NO_SOURCE\"},\"artifacts\":{\"type\":\"NO_ARTIFACTS\"},"
	       "\"environment\":{\"type\":\"LINUX_CONTAINER\",\"image\":\"i\",\"computeType\":\"BUILD_GENERAL1_SMALL\"},"
	       "\"tags\":[{\"key\":\"a;b\",\"value\":\"v\"}]}",
	       "1 validation error detected: Value 'a;b' at 'tags.1.member.key' failed to satisfy "
	       "constraint: Member must satisfy regular expression pattern: "
	       "^([\\p{L}\\p{Z}\\p{N}_.:/=@+\\-]*)$",
	       "pattern, serviceRole optional locally");
}

/* What the operations used to check by hand before the validator: the
 * validator alone now gives the service's error for each (every path to
 * them, serve's API and the CLI's, runs it first: store_api_dispatch_as,
 * store_api_dispatch_text, cli_api.c, cmd_serve.c). */
static void test_owned_by_the_validator(void)
{
	static const char *const lists[][2] = {{"BatchGetBuilds", "ids"}, {"BatchGetProjects", "names"},
					       {"BatchGetReports", "reportArns"},
					       {"BatchGetReportGroups", "reportGroupArns"}};
	for (size_t k = 0; k < sizeof(lists) / sizeof(*lists); k++) {
		char *target = cbl_xasprintf(CB "%s", lists[k][0]);
		cbl_buf req = CBL_BUF_INIT, want = CBL_BUF_INIT;
		cbl_buf_printf(&want, "1 validation error detected: Value null at '%s' failed to satisfy "
				      "constraint: Member must not be null", lists[k][1]);
		expect(target, "{}", cbl_buf_cstr(&want), "%s: %s required", lists[k][0], lists[k][1]);
		cbl_buf_printf(&req, "{\"%s\": null}", lists[k][1]);
		expect(target, cbl_buf_cstr(&req), cbl_buf_cstr(&want), "%s: %s JSON null is absent", lists[k][0],
		       lists[k][1]);
		cbl_buf_reset(&want);
		cbl_buf_reset(&req);
		cbl_buf_printf(&req, "{\"%s\": []}", lists[k][1]);
		cbl_buf_printf(&want, "1 validation error detected: Value '[]' at '%s' failed to satisfy "
				      "constraint: Member must have length greater than or equal to 1", lists[k][1]);
		expect(target, cbl_buf_cstr(&req), cbl_buf_cstr(&want), "%s: at least one", lists[k][0]);
		cbl_buf_reset(&req);
		cbl_buf_printf(&req, "{\"%s\": [\"a\"", lists[k][1]);
		for (int i = 1; i < 101; i++)
			cbl_buf_printf(&req, ",\"a\"");
		cbl_buf_printf(&req, "]}");
		char *got = verdict(target, cbl_buf_cstr(&req));
		ok(got && strstr(got, "failed to satisfy constraint: Member must have length less than or equal to 100"),
		   "%s: at most 100 (%s)", lists[k][0], got ? got : "passed");
		free(got);
		cbl_buf_release(&req);
		cbl_buf_release(&want);
		free(target);
	}
	expect(CB "ListBuildsForProject", "{}",
	       "1 validation error detected: Value null at 'projectName' failed to satisfy constraint: "
	       "Member must not be null",
	       "ListBuildsForProject: projectName required");
	expect(CB "ListBuildsForProject", "{\"projectName\":null}",
	       "1 validation error detected: Value null at 'projectName' failed to satisfy constraint: "
	       "Member must not be null",
	       "ListBuildsForProject: projectName JSON null");
	expect(CB "ListBuildsForProject", "{\"projectName\":\"\"}",
	       "1 validation error detected: Value '' at 'projectName' failed to satisfy constraint: "
	       "Member must have length greater than or equal to 1",
	       "ListBuildsForProject: projectName not empty");
	expect(CB "ListBuildsForProject", "{\"projectName\":\"p\",\"sortOrder\":\"UP\"}",
	       "1 validation error detected: Value 'UP' at 'sortOrder' failed to satisfy constraint: "
	       "Member must satisfy enum value set: [ASCENDING, DESCENDING]",
	       "ListBuildsForProject: sortOrder enum");
	expect(CB "BatchGetProjects", "{\"names\":[\"a\",\"\"]}",
	       "1 validation error detected: Value '[a, ]' at 'names' failed to satisfy constraint: "
	       "Member must satisfy constraint: [Member must have length greater than or equal to 1]",
	       "BatchGetProjects: names not empty");
	expect(CB "DeleteProject", "{}",
	       "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
	       "Member must not be null",
	       "DeleteProject: name required");
	expect(CB "DeleteProject", "{\"name\":null}",
	       "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
	       "Member must not be null",
	       "DeleteProject: name JSON null");
	expect(CB "DeleteProject", "{\"name\":\"\"}",
	       "1 validation error detected: Value '' at 'name' failed to satisfy constraint: "
	       "Member must have length greater than or equal to 1",
	       "DeleteProject: name not empty");
	expect(CB "BatchGetReports", "{\"reportArns\":[\"\"]}",
	       "1 validation error detected: Value '[]' at 'reportArns' failed to satisfy constraint: "
	       "Member must satisfy constraint: [Member must have length greater than or equal to 1]",
	       "BatchGetReports: ARNs not empty");
	expect(CB "BatchGetReportGroups", "{\"reportGroupArns\":[\"\"]}",
	       "1 validation error detected: Value '[]' at 'reportGroupArns' failed to satisfy constraint: "
	       "Member must satisfy constraint: [Member must have length greater than or equal to 1]",
	       "BatchGetReportGroups: ARNs not empty");
	expect(CB "DescribeCodeCoverages", "{\"reportArn\":\"r\",\"minLineCoveragePercentage\":-1,"
	       "\"maxLineCoveragePercentage\":101}",
	       "2 validation errors detected: Value '-1' at 'minLineCoveragePercentage' failed to satisfy "
	       "constraint: Member must have value greater than or equal to 0; Value '101' at "
	       "'maxLineCoveragePercentage' failed to satisfy constraint: Member must have value less than "
	       "or equal to 100",
	       "DescribeCodeCoverages: percentages in [0, 100]");
	expect(CB "StopBuild", "{}",
	       "1 validation error detected: Value null at 'id' failed to satisfy constraint: "
	       "Member must not be null",
	       "StopBuild: id required");
	expect(CB "StartBuildBatch", "{}",
	       "1 validation error detected: Value null at 'projectName' failed to satisfy constraint: "
	       "Member must not be null",
	       "StartBuildBatch: projectName required");
	expect(CB "StopBuildBatch", "{}",
	       "1 validation error detected: Value null at 'id' failed to satisfy constraint: "
	       "Member must not be null",
	       "StopBuildBatch: id required");
	expect(CB "RetryBuildBatch", "{\"id\":\"b\",\"retryType\":\"X\"}",
	       "1 validation error detected: Value 'X' at 'retryType' failed to satisfy constraint: "
	       "Member must satisfy enum value set: [RETRY_ALL_BUILDS, RETRY_FAILED_BUILDS]",
	       "RetryBuildBatch: retryType enum");
}

int main(void)
{
	test_tables();
	test_patterns();
	test_messages();
	test_owned_by_the_validator();
	return tap_done();
}
