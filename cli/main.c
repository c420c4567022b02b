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
int cmd_metrics(int argc, char **argv); /* cli/cmd_metrics.c */

static const struct cmd_struct commands[] = {
	{"run", cmd_run, "run a buildspec on a local directory, like CodeBuild would"},
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
	{"batch-get-builds", cmd_batch_get_builds, "print build records (aws codebuild batch-get-builds)"},
	{"list-builds", cmd_list_builds, "list build ids (aws codebuild list-builds)"},
	{"list-builds-for-project", cmd_list_builds_for_project,
	 "list a project's build ids (aws codebuild list-builds-for-project)"},
	{"batch-delete-builds", cmd_batch_delete_builds, "delete builds (aws codebuild batch-delete-builds)"},
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
	{"logs", cmd_logs, "read a build's log (aws logs get-log-events)"},
	{"metrics", cmd_metrics, "builds in figures: counts, success rate, durations, cost, trends"},
	{"serve", cmd_serve, "serve the CodeBuild API over HTTP for the AWS CLI and SDKs"},
	{"cache", cmd_cache, "the build cache: ls, explain, prune"},
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
