/* cli/main.c - entry point and command table (git's cmd_struct style). */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "util/array.h"
#include "util/alloc.h"
#include "sandbox/sandbox.h"
#include "util/buf.h"
#include "util/suggest.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

int cmd_images(int argc, char **argv); /* cli/cmd_images.c */
int cmd_cache(int argc, char **argv); /* cli/cmd_cache.c */
int cmd_hash_files(int argc, char **argv); /* cli/cmd_hash_files.c */
int cmd_store(int argc, char **argv); /* cli/cmd_store.c */
int cmd_tests_run(int argc, char **argv); /* cli/cmd_tests_run.c */
int cmd_glob_search(int argc, char **argv); /* cli/cmd_tests_run.c */
/* cli/cmd_batches.c */
int cmd_start_build_batch(int argc, char **argv);
int cmd_stop_build_batch(int argc, char **argv);
int cmd_retry_build_batch(int argc, char **argv);
int cmd_batch_get_build_batches(int argc, char **argv);
int cmd_list_build_batches(int argc, char **argv);
int cmd_list_build_batches_for_project(int argc, char **argv);
int cmd_delete_build_batch(int argc, char **argv);
int cmd_metrics(int argc, char **argv); /* cli/cmd_metrics.c */

static const struct cmd_struct commands[] = {
	{"run", cmd_run, "run a buildspec on a local directory, like CodeBuild would"},
	{"attach", cmd_attach, "open a shell inside a running or paused build"},
	{"exec", cmd_exec, "run one command inside a running or paused build"},
	{"validate", cmd_validate, "check a buildspec offline and print every problem"},
	{"images", cmd_images, "build images: ls, pull, import, rm, prune (no Docker needed)"},
	{"create-project", cmd_create_project, "create a build project (aws codebuild create-project)"},
	{"update-project", cmd_update_project, "change a build project (aws codebuild update-project)"},
	{"delete-project", cmd_delete_project, "delete a build project (aws codebuild delete-project)"},
	{"batch-get-projects", cmd_batch_get_projects, "print projects (aws codebuild batch-get-projects)"},
	{"list-projects", cmd_list_projects, "list project names (aws codebuild list-projects)"},
	{"start-build", cmd_start_build, "start a project's build (aws codebuild start-build)"},
	{"stop-build", cmd_stop_build, "stop a running build (aws codebuild stop-build)"},
	{"retry-build", cmd_retry_build, "start a build again (aws codebuild retry-build)"},
	{"start-sandbox", cmd_start_sandbox, "start a sandbox: a project's environment that stays up"},
	{"batch-get-sandboxes", cmd_batch_get_sandboxes, "print sandboxes (aws codebuild batch-get-sandboxes)"},
	{"list-sandboxes", cmd_list_sandboxes, "list sandbox ids (aws codebuild list-sandboxes)"},
	{"list-sandboxes-for-project", cmd_list_sandboxes_for_project,
	 "list a project's sandbox ids (aws codebuild list-sandboxes-for-project)"},
	{"stop-sandbox", cmd_stop_sandbox, "stop a sandbox (aws codebuild stop-sandbox)"},
	{"start-command-execution", cmd_start_command_execution, "run a command in a sandbox"},
	{"batch-get-command-executions", cmd_batch_get_command_executions,
	 "print command executions (aws codebuild batch-get-command-executions)"},
	{"list-command-executions-for-sandbox", cmd_list_command_executions_for_sandbox,
	 "print a sandbox's command executions"},
	{"batch-get-builds", cmd_batch_get_builds, "print build records (aws codebuild batch-get-builds)"},
	{"list-builds", cmd_list_builds, "list build ids (aws codebuild list-builds)"},
	{"list-builds-for-project", cmd_list_builds_for_project,
	 "list a project's build ids (aws codebuild list-builds-for-project)"},
	{"batch-delete-builds", cmd_batch_delete_builds, "delete builds (aws codebuild batch-delete-builds)"},
	{"start-build-batch", cmd_start_build_batch, "start a project's batch build (aws codebuild start-build-batch)"},
	{"stop-build-batch", cmd_stop_build_batch, "stop a batch build (aws codebuild stop-build-batch)"},
	{"retry-build-batch", cmd_retry_build_batch, "run a failed batch build again (aws codebuild retry-build-batch)"},
	{"batch-get-build-batches", cmd_batch_get_build_batches,
	 "print batch build records (aws codebuild batch-get-build-batches)"},
	{"list-build-batches", cmd_list_build_batches, "list batch build ids (aws codebuild list-build-batches)"},
	{"list-build-batches-for-project", cmd_list_build_batches_for_project,
	 "list a project's batch build ids (aws codebuild list-build-batches-for-project)"},
	{"delete-build-batch", cmd_delete_build_batch, "delete a batch build and its builds (aws codebuild delete-build-batch)"},
	{"list-report-groups", cmd_list_report_groups, "list report group ARNs (aws codebuild list-report-groups)"},
	{"batch-get-report-groups", cmd_batch_get_report_groups,
	 "print report groups (aws codebuild batch-get-report-groups)"},
	{"list-reports", cmd_list_reports, "list report ARNs (aws codebuild list-reports)"},
	{"list-reports-for-report-group", cmd_list_reports_for_report_group,
	 "list a report group's report ARNs (aws codebuild list-reports-for-report-group)"},
	{"batch-get-reports", cmd_batch_get_reports, "print reports (aws codebuild batch-get-reports)"},
	{"describe-test-cases", cmd_describe_test_cases, "print a report's test cases (aws codebuild describe-test-cases)"},
	{"describe-code-coverages", cmd_describe_code_coverages,
	 "print a report's file coverage (aws codebuild describe-code-coverages)"},
	{"get-report-group-trend", cmd_get_report_group_trend,
	 "a report group's trend (aws codebuild get-report-group-trend)"},
	{"create-report-group", cmd_create_report_group, "create a report group (aws codebuild create-report-group)"},
	{"update-report-group", cmd_update_report_group, "change a report group (aws codebuild update-report-group)"},
	{"delete-report-group", cmd_delete_report_group, "delete a report group (aws codebuild delete-report-group)"},
	{"delete-report", cmd_delete_report, "delete a report (aws codebuild delete-report)"},
	{"create-webhook", cmd_create_webhook, "add a project's webhook (aws codebuild create-webhook)"},
	{"update-webhook", cmd_update_webhook, "change a project's webhook (aws codebuild update-webhook)"},
	{"delete-webhook", cmd_delete_webhook, "remove a project's webhook (aws codebuild delete-webhook)"},
	{"import-source-credentials", cmd_import_source_credentials,
	 "store source credentials (aws codebuild import-source-credentials)"},
	{"list-source-credentials", cmd_list_source_credentials,
	 "list stored source credentials (aws codebuild list-source-credentials)"},
	{"delete-source-credentials", cmd_delete_source_credentials,
	 "delete source credentials (aws codebuild delete-source-credentials)"},
	{"invalidate-project-cache", cmd_invalidate_project_cache,
	 "drop a project's build cache (aws codebuild invalidate-project-cache)"},
	{"list-curated-environment-images", cmd_list_curated_environment_images,
	 "list the curated images (aws codebuild list-curated-environment-images)"},
	{"logs", cmd_logs, "read a build's log (aws logs get-log-events)"},
	{"metrics", cmd_metrics, "builds in figures: counts, success rate, durations, cost, trends"},
	{"serve", cmd_serve, "serve the CodeBuild API over HTTP for the AWS CLI and SDKs"},
	{"cache", cmd_cache, "the build cache: ls, explain, prune"},
	{"replay", cmd_replay, "reproduce a CodeBuild build here and compare (batch-get-builds output)"},
	{"webhook", cmd_webhook, "webhook test: would this event start a build? (filter groups, offline)"},
	{"store", cmd_store, "the state directory's database: recover (rebuild it from build.json)"},
	{"hash-files", cmd_hash_files, "SHA-256 over matched files, for cache keys (codebuild-hash-files)"},
};

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("codebuild-local: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_report(const cbl_error *e)
{
	if (!e) {
		cli_error("unknown error");
		return;
	}
	if (e->file && e->line)
		fprintf(stderr, "%s:%d:%d: error: %s\n", e->file, e->line, e->col, e->msg);
	else
		cli_error("%s", e->msg);
}

void cli_report_clear(cbl_error **err)
{
	cli_report(*err);
	cbl_error_clear(err);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: codebuild-local <command> [options]\n\n"
		   "A local, AWS CodeBuild-compatible build runner.\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-24s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'codebuild-local <command> --help' tells more about a command.\n"
		   "Exit codes: 0 succeeded, 1 build FAILED, 2 usage or invalid buildspec, 3 FAULT,\n"
		   "4 TIMED_OUT, 5 STOPPED.\n");
}

/* One line and the nearest command (or option: `version` -> --version). */
static void unknown_command(const char *word)
{
	const char *names[ARRAY_SIZE(commands) + 3];
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		names[n++] = commands[i].name;
	names[n++] = "--help";
	names[n++] = "--version";
	names[n++] = "help";
	const char *s = cbl_suggest(word, names, n);
	if (!s && word[0] != '-') {
		/* `version`, `-version`: an option typed as a command */
		char *dashed = cbl_xasprintf("--%s", word + strspn(word, "-"));
		s = cbl_suggest(dashed, names, n);
		if (!s) {
			for (size_t i = 0; i < n && !s; i++)
				if (!strcmp(dashed, names[i]))
					s = names[i];
		}
		free(dashed);
	}
	cli_unknown(word[0] == '-' ? "unknown option" : "unknown command", word, s, NULL);
}

int main(int argc, char **argv)
{
	/* PID 1 of a build's sandbox: this program exec'd again by
	 * sandbox_start (sandbox/sandbox.h), with nothing of the caller */
	if (argc > 1 && !strcmp(argv[1], SANDBOX_INIT_ARG))
		return sandbox_init_main(argc, argv);
	/* the build's PATH has a codebuild-hash-files link to this binary */
	const char *prog = strrchr(argv[0], '/');
	if (!strcmp(prog ? prog + 1 : argv[0], "codebuild-hash-files"))
		return cmd_hash_files(argc, argv);
	/* and the parallel tests' helpers (cli/cmd_tests_run.c) */
	if (!strcmp(prog ? prog + 1 : argv[0], "codebuild-tests-run"))
		return cmd_tests_run(argc, argv);
	if (!strcmp(prog ? prog + 1 : argv[0], "codebuild-glob-search"))
		return cmd_glob_search(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("codebuild-local 0.1.0\n");
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	unknown_command(argv[1]);
	return CLI_EXIT_USAGE;
}
