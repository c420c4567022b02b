/* cli/cmd_projects.c - `create-project`, `update-project`, `delete-project`,
 * `batch-get-projects`, `list-projects`: `aws codebuild`'s flags and output. */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/api.h"
#include "util/array.h"

#include "util/banned.h"


#define PROJECT_ARGS                                                                               \
	{"description", "description", CA_STR, "a description (up to 255 characters)"},          \
	{"source", "source", CA_STRUCT,                                                           \
	 "type=GITHUB|GITLAB|BITBUCKET|CODECOMMIT|GITHUB_ENTERPRISE|NO_SOURCE,location=URL|file:///DIR,"   \
	 "buildspec=...,gitCloneDepth=N"},                                                        \
	{"secondary-sources", "secondarySources", CA_LIST_STRUCT, "more sources (sourceIdentifier=...)"}, \
	{"source-version", "sourceVersion", CA_STR, "branch, tag or commit to build by default"}, \
	{"secondary-source-versions", "secondarySourceVersions", CA_LIST_STRUCT,                  \
	 "sourceIdentifier=ID,sourceVersion=V ..."},                                              \
	{"artifacts", "artifacts", CA_STRUCT, "type=NO_ARTIFACTS|S3,location=...,packaging=ZIP|NONE,..."}, \
	{"secondary-artifacts", "secondaryArtifacts", CA_LIST_STRUCT, "more artifacts (artifactIdentifier=...)"}, \
	{"cache", "cache", CA_STRUCT, "type=NO_CACHE|LOCAL|S3,modes=...,location=..."},          \
	{"environment", "environment", CA_STRUCT,                                                 \
	 "type=LINUX_CONTAINER,image=IMAGE|host,computeType=BUILD_GENERAL1_SMALL,"                \
	 "environmentVariables=[{name=N,value=V,type=PLAINTEXT},...]"},                           \
	{"service-role", "serviceRole", CA_STR, "IAM role ARN (kept, not used locally)"},          \
	{"timeout-in-minutes", "timeoutInMinutes", CA_INT, "build timeout, 5..2160 (default 60)"}, \
	{"queued-timeout-in-minutes", "queuedTimeoutInMinutes", CA_INT, "queue timeout, 5..480 (default 480)"}, \
	{"encryption-key", "encryptionKey", CA_STR, "KMS key (kept, not used locally)"},          \
	{"tags", "tags", CA_LIST_STRUCT, "key=K,value=V ..."},                                    \
	{"vpc-config", "vpcConfig", CA_STRUCT, "kept, not used locally"},                         \
	{"badge-enabled", "badgeEnabled", CA_BOOL, "build badge (kept, not used locally)"},       \
	{"logs-config", "logsConfig", CA_STRUCT, "cloudWatchLogs={status=ENABLED},s3Logs={status=DISABLED}"}, \
	{"file-system-locations", "fileSystemLocations", CA_LIST_STRUCT, "kept, not used locally"}, \
	{"build-batch-config", "buildBatchConfig", CA_STRUCT, "kept, not used locally"},          \
	{"concurrent-build-limit", "concurrentBuildLimit", CA_INT, "maximum concurrent builds"},  \
	{"auto-retry-limit", "autoRetryLimit", CA_INT, "automatic retries of a failed build, 0..10"}

static const cli_api_arg create_args[] = {
	{"name", "name", CA_STR, "project name ([A-Za-z0-9][A-Za-z0-9_-]{1,149}), required"},
	PROJECT_ARGS,
};
static const cli_api_cmd create_cmd = {
	"create-project", STORE_TARGET_CODEBUILD "CreateProject",
	"Creates a build project (aws codebuild create-project): name, source, artifacts and\n"
	"environment are required.  A local directory is source type NO_SOURCE with location\n"
	"file:///abs/dir; environment image 'host' runs on this machine's own filesystem.",
	create_args, ARRAY_SIZE(create_args), NULL,
};

static const cli_api_arg update_args[] = {
	{"name", "name", CA_STR, "the project to change, required"},
	PROJECT_ARGS,
};
static const cli_api_cmd update_cmd = {
	"update-project", STORE_TARGET_CODEBUILD "UpdateProject",
	"Changes a build project (aws codebuild update-project): each member given replaces\n"
	"the project's member of that name.",
	update_args, ARRAY_SIZE(update_args), NULL,
};

static const cli_api_arg delete_args[] = {
	{"name", "name", CA_STR, "the project to delete, required"},
};
static const cli_api_cmd delete_cmd = {
	"delete-project", STORE_TARGET_CODEBUILD "DeleteProject",
	"Deletes a build project (aws codebuild delete-project); its builds stay.",
	delete_args, ARRAY_SIZE(delete_args), NULL,
};

static const cli_api_arg batch_get_args[] = {
	{"names", "names", CA_LIST_STR, "project names or ARNs (1 to 100), required"},
};
static const cli_api_cmd batch_get_cmd = {
	"batch-get-projects", STORE_TARGET_CODEBUILD "BatchGetProjects",
	"Prints {\"projects\": [...], \"projectsNotFound\": [...]} (aws codebuild batch-get-projects).",
	batch_get_args, ARRAY_SIZE(batch_get_args), NULL,
};

static const cli_api_arg list_args[] = {
	{"sort-by", "sortBy", CA_STR, "NAME (default) | CREATED_TIME | LAST_MODIFIED_TIME"},
	{"sort-order", "sortOrder", CA_STR, "ASCENDING (default) | DESCENDING"},
	{"next-token", "nextToken", CA_STR, "continue after a page (implies --no-paginate)"},
};
static const cli_api_cmd list_cmd = {
	"list-projects", STORE_TARGET_CODEBUILD "ListProjects",
	"Prints {\"projects\": [names]} (aws codebuild list-projects).",
	list_args, ARRAY_SIZE(list_args), "projects",
};

int cmd_create_project(int argc, char **argv) { return cli_api_run(&create_cmd, argc, argv); }
int cmd_update_project(int argc, char **argv) { return cli_api_run(&update_cmd, argc, argv); }
int cmd_delete_project(int argc, char **argv) { return cli_api_run(&delete_cmd, argc, argv); }
int cmd_batch_get_projects(int argc, char **argv) { return cli_api_run(&batch_get_cmd, argc, argv); }
int cmd_list_projects(int argc, char **argv) { return cli_api_run(&list_cmd, argc, argv); }
