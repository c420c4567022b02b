/* cli/cmd_batches.c - the batch build operations with `aws codebuild`'s
 * flags and output: start-build-batch, stop-build-batch, retry-build-batch
 * (through the launcher, as the HTTP server does), batch-get-build-batches,
 * list-build-batches, list-build-batches-for-project, delete-build-batch. */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/api.h"
#include "runner/launch.h"
#include "util/array.h"

#include <errno.h>
#include <stdlib.h>

#include "util/banned.h"

int cmd_start_build_batch(int argc, char **argv);
int cmd_stop_build_batch(int argc, char **argv);
int cmd_retry_build_batch(int argc, char **argv);
int cmd_batch_get_build_batches(int argc, char **argv);
int cmd_list_build_batches(int argc, char **argv);
int cmd_list_build_batches_for_project(int argc, char **argv);
int cmd_delete_build_batch(int argc, char **argv);

static int launch(const char *home, const char *target, json_t *req, json_t **out, cbl_error **err)
{
	char *exe = realpath("/proc/self/exe", NULL);
	if (!exe)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot find this program");
	runner_launcher_opts lo = {.home = home, .exe = exe};
	runner_launcher *l = NULL;
	int rc = runner_launcher_new(&l, &lo, err);
	if (rc == 0)
		rc = runner_launcher_dispatch(l, target, req, out, err);
	runner_launcher_free(l);
	free(exe);
	return rc;
}

static const cli_api_arg start_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
	{"source-version", "sourceVersion", CA_STR, "git: branch, tag, commit, pr/N, branch^{SHA}"},
	{"environment-variables-override", "environmentVariablesOverride", CA_LIST_STRUCT,
	 "name=N,value=V,type=PLAINTEXT ... (every build of the batch)"},
	{"buildspec-override", "buildspecOverride", CA_STR, "a buildspec path in the source, or inline YAML"},
	{"build-timeout-in-minutes-override", "buildTimeoutInMinutesOverride", CA_INT, "each build's timeout"},
	{"image-override", "imageOverride", CA_STR, "build image"},
	{"compute-type-override", "computeTypeOverride", CA_STR, "BUILD_GENERAL1_SMALL, ..."},
	{"git-clone-depth-override", "gitCloneDepthOverride", CA_INT, "0 = full history"},
	{"privileged-mode-override", "privilegedModeOverride", CA_BOOL, "privileged builds"},
	{"source-type-override", "sourceTypeOverride", CA_STR, "GITHUB, ..., NO_SOURCE"},
	{"source-location-override", "sourceLocationOverride", CA_STR, "git URL or file:// directory"},
	{"build-batch-config-override", "buildBatchConfigOverride", CA_STRUCT,
	 "combineArtifacts=true,timeoutInMins=N,... (the project's buildBatchConfig)"},
	{"idempotency-token", "idempotencyToken", CA_STR, "accepted, not used"},
};
static const cli_api_cmd start_cmd = {
	"start-build-batch", STORE_TARGET_CODEBUILD "StartBuildBatch",
	"Starts a batch build of a project (aws codebuild start-build-batch) and prints\n"
	"{\"buildBatch\": {...}} as soon as it is under way; its builds run in the\n"
	"background (follow it with batch-get-build-batches).",
	start_args, ARRAY_SIZE(start_args), NULL, launch,
};

static const cli_api_arg id_args[] = {
	{"id", "id", CA_STR, "batch id <project>:<uuid> (or its ARN), required"},
};
static const cli_api_cmd stop_cmd = {
	"stop-build-batch", STORE_TARGET_CODEBUILD "StopBuildBatch",
	"Stops a running batch build and its builds (aws codebuild stop-build-batch);\n"
	"prints {\"buildBatch\": {...}}.",
	id_args, ARRAY_SIZE(id_args), NULL, launch,
};

static const cli_api_arg retry_args[] = {
	{"id", "id", CA_STR, "batch id <project>:<uuid> (or its ARN), required"},
	{"retry-type", "retryType", CA_STR, "RETRY_ALL_BUILDS (default) | RETRY_FAILED_BUILDS"},
	{"idempotency-token", "idempotencyToken", CA_STR, "accepted, not used"},
};
static const cli_api_cmd retry_cmd = {
	"retry-build-batch", STORE_TARGET_CODEBUILD "RetryBuildBatch",
	"Runs a failed batch build again, all its builds or only those that did not\n"
	"succeed (aws codebuild retry-build-batch); prints {\"buildBatch\": {...}}.",
	retry_args, ARRAY_SIZE(retry_args), NULL, launch,
};

static const cli_api_arg ids_args[] = {
	{"ids", "ids", CA_LIST_STR, "batch ids <project>:<uuid> (or ARNs), 1 to 100, required"},
};
static const cli_api_cmd get_cmd = {
	"batch-get-build-batches", STORE_TARGET_CODEBUILD "BatchGetBuildBatches",
	"Prints {\"buildBatches\": [...], \"buildBatchesNotFound\": [...]} like `aws codebuild\n"
	"batch-get-build-batches`.",
	ids_args, ARRAY_SIZE(ids_args), NULL,
};

static const cli_api_arg list_args[] = {
	{"filter", "filter", CA_STRUCT, "status=SUCCEEDED|FAILED|FAULT|TIMED_OUT|IN_PROGRESS|STOPPED"},
	{"sort-order", "sortOrder", CA_STR, "DESCENDING (default, newest first) | ASCENDING"},
	{"max-results", "maxResults", CA_INT, "1 to 100"},
	{"next-token", "nextToken", CA_STR, "continue after a page (implies --no-paginate)"},
};
static const cli_api_cmd list_cmd = {
	"list-build-batches", STORE_TARGET_CODEBUILD "ListBuildBatches",
	"Prints {\"ids\": [...]} of every batch build (aws codebuild list-build-batches).",
	list_args, ARRAY_SIZE(list_args), "ids",
};

static const cli_api_arg list_project_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
	{"filter", "filter", CA_STRUCT, "status=SUCCEEDED|FAILED|FAULT|TIMED_OUT|IN_PROGRESS|STOPPED"},
	{"sort-order", "sortOrder", CA_STR, "DESCENDING (default, newest first) | ASCENDING"},
	{"max-results", "maxResults", CA_INT, "1 to 100"},
	{"next-token", "nextToken", CA_STR, "continue after a page (implies --no-paginate)"},
};
static const cli_api_cmd list_project_cmd = {
	"list-build-batches-for-project", STORE_TARGET_CODEBUILD "ListBuildBatchesForProject",
	"Prints {\"ids\": [...]} of a project's batch builds (aws codebuild\n"
	"list-build-batches-for-project).",
	list_project_args, ARRAY_SIZE(list_project_args), "ids",
};

static const cli_api_cmd delete_cmd = {
	"delete-build-batch", STORE_TARGET_CODEBUILD "DeleteBuildBatch",
	"Deletes a batch build and its builds (aws codebuild delete-build-batch); prints\n"
	"{\"statusCode\", \"buildsDeleted\": [...], \"buildsNotDeleted\": [...]}.",
	id_args, ARRAY_SIZE(id_args), NULL,
};

int cmd_start_build_batch(int argc, char **argv) { return cli_api_run(&start_cmd, argc, argv); }
int cmd_stop_build_batch(int argc, char **argv) { return cli_api_run(&stop_cmd, argc, argv); }
int cmd_retry_build_batch(int argc, char **argv) { return cli_api_run(&retry_cmd, argc, argv); }
int cmd_batch_get_build_batches(int argc, char **argv) { return cli_api_run(&get_cmd, argc, argv); }
int cmd_list_build_batches(int argc, char **argv) { return cli_api_run(&list_cmd, argc, argv); }
int cmd_list_build_batches_for_project(int argc, char **argv) { return cli_api_run(&list_project_cmd, argc, argv); }
int cmd_delete_build_batch(int argc, char **argv) { return cli_api_run(&delete_cmd, argc, argv); }
