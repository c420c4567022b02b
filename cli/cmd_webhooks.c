/* cli/cmd_webhooks.c - `create-webhook`, `update-webhook`, `delete-webhook`,
 * `import-source-credentials`, `list-source-credentials`,
 * `delete-source-credentials`, `invalidate-project-cache`,
 * `list-curated-environment-images`: `aws codebuild`'s flags and output. */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "runner/apiops.h"
#include "store/api.h"
#include "util/array.h"

#include "util/banned.h"

#define WEBHOOK_ARGS                                                                               \
	{"branch-filter", "branchFilter", CA_STR, "a regular expression of branch names"},         \
	{"filter-groups", "filterGroups", CA_LIST_STRUCT,                                          \
	 "'[[{\"type\": \"EVENT\", \"pattern\": \"PUSH\"}, ...], ...]' (stored)"},                 \
	{"build-type", "buildType", CA_STR, "BUILD | BUILD_BATCH | RUNNER_BUILDKITE_BUILD"},       \
	{"pull-request-build-policy", "pullRequestBuildPolicy", CA_STRUCT,                         \
	 "requiresCommentApproval=...,approverRoles=..."}

static const cli_api_arg create_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
	WEBHOOK_ARGS,
	{"manual-creation", "manualCreation", CA_BOOL, "kept (every local webhook is set up by hand)"},
	{"scope-configuration", "scopeConfiguration", CA_STRUCT, "name=...,domain=...,scope=..."},
};
static const cli_api_cmd create_cmd = {
	"create-webhook", STORE_TARGET_CODEBUILD "CreateWebhook",
	"Adds a webhook to a project (aws codebuild create-webhook): prints {\"webhook\": {...}}\n"
	"with its payloadUrl and secret (shown this once); batch-get-projects shows it too.",
	create_args, ARRAY_SIZE(create_args), NULL,
};

static const cli_api_arg update_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
	WEBHOOK_ARGS,
	{"rotate-secret", "rotateSecret", CA_BOOL, "make a new secret (printed)"},
};
static const cli_api_cmd update_cmd = {
	"update-webhook", STORE_TARGET_CODEBUILD "UpdateWebhook",
	"Changes a project's webhook (aws codebuild update-webhook).",
	update_args, ARRAY_SIZE(update_args), NULL,
};

static const cli_api_arg delete_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
};
static const cli_api_cmd delete_cmd = {
	"delete-webhook", STORE_TARGET_CODEBUILD "DeleteWebhook",
	"Removes a project's webhook (aws codebuild delete-webhook).",
	delete_args, ARRAY_SIZE(delete_args), NULL,
};

static const cli_api_arg import_args[] = {
	{"username", "username", CA_STR, "the user (BASIC_AUTH)"},
	{"token", "token", CA_STR, "the token, password or ARN, required (never printed back)"},
	{"server-type", "serverType", CA_STR,
	 "GITHUB | BITBUCKET | GITHUB_ENTERPRISE | GITLAB | GITLAB_SELF_MANAGED, required"},
	{"auth-type", "authType", CA_STR,
	 "PERSONAL_ACCESS_TOKEN | BASIC_AUTH | CODECONNECTIONS | SECRETS_MANAGER, required"},
	{"should-overwrite", "shouldOverwrite", CA_BOOL, "replace the server type's credentials (default)"},
};
static const cli_api_cmd import_cmd = {
	"import-source-credentials", STORE_TARGET_CODEBUILD "ImportSourceCredentials",
	"Stores a source provider's credentials (aws codebuild import-source-credentials):\n"
	"prints {\"arn\": ...}.  Kept in <state dir>/source-credentials.json, mode 0600.",
	import_args, ARRAY_SIZE(import_args), NULL,
};

static const cli_api_cmd list_creds_cmd = {
	"list-source-credentials", STORE_TARGET_CODEBUILD "ListSourceCredentials",
	"Prints {\"sourceCredentialsInfos\": [{arn, serverType, authType}]}, never a token\n"
	"(aws codebuild list-source-credentials).",
	NULL, 0, NULL,
};

static const cli_api_arg delete_creds_args[] = {
	{"arn", "arn", CA_STR, "the credentials' ARN, required"},
};
static const cli_api_cmd delete_creds_cmd = {
	"delete-source-credentials", STORE_TARGET_CODEBUILD "DeleteSourceCredentials",
	"Deletes stored source credentials (aws codebuild delete-source-credentials).",
	delete_creds_args, ARRAY_SIZE(delete_creds_args), NULL,
};

static const cli_api_arg invalidate_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
};
static const cli_api_cmd invalidate_cmd = {
	"invalidate-project-cache", STORE_TARGET_CODEBUILD "InvalidateProjectCache",
	"Drops the project's entries of the local build cache (aws codebuild\n"
	"invalidate-project-cache); the source cache is left.",
	invalidate_args, ARRAY_SIZE(invalidate_args), NULL, runner_api_dispatch,
};

static const cli_api_cmd curated_cmd = {
	"list-curated-environment-images", STORE_TARGET_CODEBUILD "ListCuratedEnvironmentImages",
	"Prints the curated images of the catalog by platform and language\n"
	"(aws codebuild list-curated-environment-images).",
	NULL, 0, NULL, runner_api_dispatch,
};

int cmd_create_webhook(int argc, char **argv) { return cli_api_run(&create_cmd, argc, argv); }
int cmd_update_webhook(int argc, char **argv) { return cli_api_run(&update_cmd, argc, argv); }
int cmd_delete_webhook(int argc, char **argv) { return cli_api_run(&delete_cmd, argc, argv); }
int cmd_import_source_credentials(int argc, char **argv) { return cli_api_run(&import_cmd, argc, argv); }
int cmd_list_source_credentials(int argc, char **argv) { return cli_api_run(&list_creds_cmd, argc, argv); }
int cmd_delete_source_credentials(int argc, char **argv) { return cli_api_run(&delete_creds_cmd, argc, argv); }
int cmd_invalidate_project_cache(int argc, char **argv) { return cli_api_run(&invalidate_cmd, argc, argv); }
int cmd_list_curated_environment_images(int argc, char **argv) { return cli_api_run(&curated_cmd, argc, argv); }
