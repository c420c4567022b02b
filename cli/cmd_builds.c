/* cli/cmd_builds.c - `batch-get-builds`, `list-builds`,
 * `list-builds-for-project`, `batch-delete-builds`: `aws codebuild`'s flags
 * and output. */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/api.h"
#include "util/array.h"

#include "util/banned.h"


static const cli_api_arg ids_args[] = {
	{"ids", "ids", CA_LIST_STR, "build ids <project>:<uuid> (or build ARNs), 1 to 100, required"},
};
static const cli_api_cmd batch_get_cmd = {
	"batch-get-builds", STORE_TARGET_CODEBUILD "BatchGetBuilds",
	"Prints {\"builds\": [...], \"buildsNotFound\": [...]} like `aws codebuild\n"
	"batch-get-builds`; each build is the record of the CodeBuild API's Build shape.\n"
	"IDs are <project>:<uuid>, as `run` prints them.  A build whose runner died shows\n"
	"as FAULT (or STOPPED if a stop was requested).",
	ids_args, ARRAY_SIZE(ids_args), NULL,
};

static const cli_api_cmd batch_delete_cmd = {
	"batch-delete-builds", STORE_TARGET_CODEBUILD "BatchDeleteBuilds",
	"Deletes builds (record, log, artifacts): prints {\"buildsDeleted\": [...],\n"
	"\"buildsNotDeleted\": [{\"id\", \"statusCode\"}]} (aws codebuild batch-delete-builds).\n"
	"A running build is not deleted (BUILD_IN_PROGRESS).",
	ids_args, ARRAY_SIZE(ids_args), NULL,
};

static const cli_api_arg list_args[] = {
	{"sort-order", "sortOrder", CA_STR, "DESCENDING (default, newest first) | ASCENDING"},
	{"next-token", "nextToken", CA_STR, "continue after a page (implies --no-paginate)"},
};
static const cli_api_cmd list_cmd = {
	"list-builds", STORE_TARGET_CODEBUILD "ListBuilds",
	"Prints {\"ids\": [...]} of every build, by start time (aws codebuild list-builds).",
	list_args, ARRAY_SIZE(list_args), "ids",
};

static const cli_api_arg list_project_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
	{"sort-order", "sortOrder", CA_STR, "DESCENDING (default, by build number) | ASCENDING"},
	{"next-token", "nextToken", CA_STR, "continue after a page (implies --no-paginate)"},
};
static const cli_api_cmd list_project_cmd = {
	"list-builds-for-project", STORE_TARGET_CODEBUILD "ListBuildsForProject",
	"Prints {\"ids\": [...]} of a project's builds (aws codebuild list-builds-for-project).",
	list_project_args, ARRAY_SIZE(list_project_args), "ids",
};

int cmd_batch_get_builds(int argc, char **argv) { return cli_api_run(&batch_get_cmd, argc, argv); }
int cmd_batch_delete_builds(int argc, char **argv) { return cli_api_run(&batch_delete_cmd, argc, argv); }
int cmd_list_builds(int argc, char **argv) { return cli_api_run(&list_cmd, argc, argv); }
int cmd_list_builds_for_project(int argc, char **argv) { return cli_api_run(&list_project_cmd, argc, argv); }
