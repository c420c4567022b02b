/* cli/cmd_sandbox.c - the sandbox API's faces, with the AWS CLI's flags and
 * output: start-sandbox, batch-get-sandboxes, list-sandboxes,
 * list-sandboxes-for-project, stop-sandbox, start-command-execution,
 * batch-get-command-executions, list-command-executions-for-sandbox
 * (runner/sandboxapi.c, through a launcher as `serve` does it). */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "runner/launch.h"
#include "store/api.h"
#include "util/array.h"
#include "util/json.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static int sandbox_api(const char *home, const char *target, json_t *req, json_t **out, cbl_error **err)
{
	char *exe = realpath("/proc/self/exe", NULL);
	if (!exe)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot find this program");
	runner_launcher_opts lo = {.home = home, .exe = exe};
	runner_launcher *l = NULL;
	int rc = runner_launcher_new(&l, &lo, err);
	if (rc == 0)
		rc = runner_sandbox_api_dispatch(l, home, target, req, out, err);
	/* start-command-execution: the command runs in this process (a
	 * thread): it prints the submitted record as the service does, then
	 * stays until the command is over */
	if (rc == 0 && !strcmp(target, STORE_TARGET_CODEBUILD "StartCommandExecution")) {
		json_t *c = json_object_get(*out, "commandExecution");
		json_t *q = json_pack("{s:O, s:[O]}", "sandboxId", json_object_get(c, "sandboxId"),
				      "commandExecutionIds", json_object_get(c, "id"));
		for (;;) {
			json_t *r = NULL;
			if (runner_sandbox_api_dispatch(l, home, STORE_TARGET_CODEBUILD "BatchGetCommandExecutions", q, &r,
							NULL) < 0)
				break;
			const char *st = cbl_json_str(json_array_get(json_object_get(r, "commandExecutions"), 0), "status");
			bool done = !st || !strcmp(st, "SUCCEEDED") || !strcmp(st, "FAILED");
			json_decref(r);
			if (done)
				break;
			poll(NULL, 0, 50);
		}
		json_decref(q);
	}
	runner_launcher_free(l);
	free(exe);
	return rc;
}

static const cli_api_arg project_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
	{"idempotency-token", "idempotencyToken", CA_STR, "accepted, not used"},
};
static const cli_api_arg ids_args[] = {{"ids", "ids", CA_LIST_STR, "sandbox ids, required"}};
static const cli_api_arg list_args[] = {
	{"sort-order", "sortOrder", CA_STR, "ASCENDING or DESCENDING (by creation)"},
	{"max-results", "maxResults", CA_INT, "1 to 100"},
	{"next-token", "nextToken", CA_STR, "from the previous page"},
};
static const cli_api_arg list_project_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
	{"sort-order", "sortOrder", CA_STR, "ASCENDING or DESCENDING (by creation)"},
	{"max-results", "maxResults", CA_INT, "1 to 100"},
	{"next-token", "nextToken", CA_STR, "from the previous page"},
};
static const cli_api_arg stop_args[] = {{"id", "id", CA_STR, "sandbox id, required"}};
static const cli_api_arg cmd_args[] = {
	{"sandbox-id", "sandboxId", CA_STR, "required"},
	{"command", "command", CA_STR, "a shell command, required"},
	{"type", "type", CA_STR, "SHELL"},
};
static const cli_api_arg get_cmd_args[] = {
	{"sandbox-id", "sandboxId", CA_STR, "required"},
	{"command-execution-ids", "commandExecutionIds", CA_LIST_STR, "required"},
};
static const cli_api_arg list_cmd_args[] = {
	{"sandbox-id", "sandboxId", CA_STR, "required"},
	{"sort-order", "sortOrder", CA_STR, "ASCENDING or DESCENDING (by submission)"},
	{"max-results", "maxResults", CA_INT, "1 to 100"},
	{"next-token", "nextToken", CA_STR, "from the previous page"},
};

#define SB(op) STORE_TARGET_CODEBUILD op
static const cli_api_cmd cmds[] = {
	{"start-sandbox", SB("StartSandbox"),
	 "Starts a sandbox (aws codebuild start-sandbox): a build environment of the project that\n"
	 "stays up for command executions; prints {\"sandbox\": {...}}.",
	 project_args, ARRAY_SIZE(project_args), NULL, sandbox_api},
	{"batch-get-sandboxes", SB("BatchGetSandboxes"), "Prints sandboxes (aws codebuild batch-get-sandboxes).", ids_args,
	 ARRAY_SIZE(ids_args), NULL, sandbox_api},
	{"list-sandboxes", SB("ListSandboxes"), "Lists sandbox ids (aws codebuild list-sandboxes).", list_args,
	 ARRAY_SIZE(list_args), "ids", sandbox_api},
	{"list-sandboxes-for-project", SB("ListSandboxesForProject"),
	 "Lists a project's sandbox ids (aws codebuild list-sandboxes-for-project).", list_project_args,
	 ARRAY_SIZE(list_project_args), "ids", sandbox_api},
	{"stop-sandbox", SB("StopSandbox"), "Stops a sandbox (aws codebuild stop-sandbox).", stop_args,
	 ARRAY_SIZE(stop_args), NULL, sandbox_api},
	{"start-command-execution", SB("StartCommandExecution"),
	 "Runs a command in a sandbox (aws codebuild start-command-execution); prints\n"
	 "{\"commandExecution\": {...}} as submitted, and returns once the command is over\n"
	 "(batch-get-command-executions has its status and output).",
	 cmd_args, ARRAY_SIZE(cmd_args), NULL, sandbox_api},
	{"batch-get-command-executions", SB("BatchGetCommandExecutions"),
	 "Prints command executions (aws codebuild batch-get-command-executions).", get_cmd_args,
	 ARRAY_SIZE(get_cmd_args), NULL, sandbox_api},
	{"list-command-executions-for-sandbox", SB("ListCommandExecutionsForSandbox"),
	 "Prints a sandbox's command executions (aws codebuild list-command-executions-for-sandbox).",
	 list_cmd_args, ARRAY_SIZE(list_cmd_args), "commandExecutions", sandbox_api},
};

int cmd_start_sandbox(int argc, char **argv) { return cli_api_run(&cmds[0], argc, argv); }
int cmd_batch_get_sandboxes(int argc, char **argv) { return cli_api_run(&cmds[1], argc, argv); }
int cmd_list_sandboxes(int argc, char **argv) { return cli_api_run(&cmds[2], argc, argv); }
int cmd_list_sandboxes_for_project(int argc, char **argv) { return cli_api_run(&cmds[3], argc, argv); }
int cmd_stop_sandbox(int argc, char **argv) { return cli_api_run(&cmds[4], argc, argv); }
int cmd_start_command_execution(int argc, char **argv) { return cli_api_run(&cmds[5], argc, argv); }
int cmd_batch_get_command_executions(int argc, char **argv) { return cli_api_run(&cmds[6], argc, argv); }
int cmd_list_command_executions_for_sandbox(int argc, char **argv) { return cli_api_run(&cmds[7], argc, argv); }
