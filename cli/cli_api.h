/* cli/cli_api.h - the faces of the API data operations (`create-project`,
 * `batch-get-builds`, `logs get-log-events`, ...): the AWS CLI's flag names,
 * its shorthand syntax and --cli-input-json, its JSON output (4-space
 * indent; timestamps as the wire's epoch-second numbers, like
 * `cli_timestamp_format = wire`), its error line.  Each command builds the
 * request JSON and goes through store_api_dispatch, exactly as the HTTP
 * server does.
 *
 * Exit status: 0 success, 2 usage error or InvalidInputException /
 * InvalidParameterException, 1 any other service error
 * (ResourceNotFoundException, ResourceAlreadyExistsException, ...),
 * 3 internal failure (I/O, database).
 */
#ifndef CLI_CLI_API_H
#define CLI_CLI_API_H

#include <jansson.h>
#include <stddef.h>

#include "util/error.h"

typedef enum {
	CA_STR,         /* --flag VALUE */
	CA_INT,         /* --flag N */
	CA_BOOL,        /* --flag / --no-flag */
	CA_STRUCT,      /* --flag key=value,... | --flag '{"json": ...}' | file://F */
	CA_LIST_STRUCT, /* --flag k=v,k=v k=v,k=v ... | --flag '[...]' */
	CA_LIST_STR,    /* --flag A B C | --flag '["A", ...]' */
} cli_api_kind;

typedef struct cli_api_arg {
	const char *flag;   /* without the leading "--" */
	const char *member; /* the request member */
	cli_api_kind kind;
	const char *help;
} cli_api_arg;

typedef struct cli_api_cmd {
	const char *name;      /* "create-project" (or "logs get-log-events") */
	const char *target;    /* "CodeBuild_20161006.CreateProject" */
	const char *summary;
	const cli_api_arg *args;
	size_t nargs;
	const char *paginate;  /* list member merged over pages (the CLI's
				  auto-pagination), NULL if not paginated */
	/* the operation's implementation, with store_api_dispatch's contract;
	 * NULL = store_api_dispatch (operations outside store/, e.g. a
	 * StartBuild in runner/, plug theirs in here) */
	int (*dispatch)(const char *home, const char *target, json_t *request, json_t **out,
			cbl_error **err);
} cli_api_cmd;

/* Runs one command: argv[0] is the command name. Returns the exit status. */
int cli_api_run(const cli_api_cmd *cmd, int argc, char **argv);

int cmd_create_project(int argc, char **argv);
/* cli/cmd_sandbox.c */
int cmd_start_sandbox(int argc, char **argv);
int cmd_batch_get_sandboxes(int argc, char **argv);
int cmd_list_sandboxes(int argc, char **argv);
int cmd_list_sandboxes_for_project(int argc, char **argv);
int cmd_stop_sandbox(int argc, char **argv);
int cmd_start_command_execution(int argc, char **argv);
int cmd_batch_get_command_executions(int argc, char **argv);
int cmd_list_command_executions_for_sandbox(int argc, char **argv);
int cmd_update_project(int argc, char **argv);
int cmd_delete_project(int argc, char **argv);
int cmd_batch_get_projects(int argc, char **argv);
int cmd_list_projects(int argc, char **argv);
/* cmd_batch_get_builds is declared in cli/cli.h */
int cmd_list_builds(int argc, char **argv);
int cmd_list_builds_for_project(int argc, char **argv);
int cmd_batch_delete_builds(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_start_build(int argc, char **argv);
int cmd_stop_build(int argc, char **argv);
int cmd_retry_build(int argc, char **argv);
/* cli/cmd_reports.c */
int cmd_list_report_groups(int argc, char **argv);
int cmd_batch_get_report_groups(int argc, char **argv);
int cmd_list_reports(int argc, char **argv);
int cmd_list_reports_for_report_group(int argc, char **argv);
int cmd_batch_get_reports(int argc, char **argv);
int cmd_describe_test_cases(int argc, char **argv);
int cmd_describe_code_coverages(int argc, char **argv);
int cmd_get_report_group_trend(int argc, char **argv);
int cmd_create_report_group(int argc, char **argv);
int cmd_update_report_group(int argc, char **argv);
int cmd_delete_report_group(int argc, char **argv);
int cmd_delete_report(int argc, char **argv);
/* cli/cmd_webhooks.c */
int cmd_create_webhook(int argc, char **argv);
int cmd_update_webhook(int argc, char **argv);
int cmd_delete_webhook(int argc, char **argv);
int cmd_import_source_credentials(int argc, char **argv);
int cmd_list_source_credentials(int argc, char **argv);
int cmd_delete_source_credentials(int argc, char **argv);
int cmd_invalidate_project_cache(int argc, char **argv);
int cmd_list_curated_environment_images(int argc, char **argv);

#endif
