/* cli/cmd_logs.c - `codebuild-local logs get-log-events`: `aws logs
 * get-log-events` over the builds' log streams. */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/api.h"
#include "util/array.h"
#include "util/suggest.h"

#include <stdio.h>
#include <string.h>

#include "util/banned.h"


static const cli_api_arg gle_args[] = {
	{"log-group-name", "logGroupName", CA_STR, "/aws/codebuild/<project>"},
	{"log-group-identifier", "logGroupIdentifier", CA_STR, "the group's name or ARN (instead of --log-group-name)"},
	{"log-stream-name", "logStreamName", CA_STR, "the build's uuid (logs.streamName of its record), required"},
	{"start-time", "startTime", CA_INT, "first event time, epoch milliseconds (inclusive)"},
	{"end-time", "endTime", CA_INT, "last event time, epoch milliseconds (exclusive)"},
	{"next-token", "nextToken", CA_STR, "nextForwardToken (f/...) or nextBackwardToken (b/...) of a page"},
	{"limit", "limit", CA_INT, "events per page, 1..10000 (default: up to 10000 / 1 MB)"},
	{"start-from-head", "startFromHead", CA_BOOL, "oldest events first (default: the last page)"},
	{"unmask", "unmask", CA_BOOL, "accepted; logs are masked when written"},
};
static const cli_api_cmd gle_cmd = {
	"logs get-log-events", STORE_TARGET_LOGS "GetLogEvents",
	"Prints {\"events\": [{timestamp, message, ingestionTime}], \"nextForwardToken\",\n"
	"\"nextBackwardToken\"} for a build's log (aws logs get-log-events): one event per\n"
	"line; at the end of the stream the token passed in comes back.",
	gle_args, ARRAY_SIZE(gle_args), NULL,
};

static const struct {
	const char *name;
	const cli_api_cmd *cmd;
} subs[] = {
	{"get-log-events", &gle_cmd},
};

static void logs_usage(FILE *f)
{
	fputs("usage: codebuild-local logs <command> [options]\n\n"
	      "CloudWatch Logs operations over the builds' logs (aws logs ...):\n",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		fprintf(f, "  %s\n", subs[i].name);
}

int cmd_logs(int argc, char **argv)
{
	if (argc < 2) {
		logs_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		logs_usage(stdout);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		if (!strcmp(argv[1], subs[i].name))
			return cli_api_run(subs[i].cmd, argc - 1, argv + 1);
	const char *names[ARRAY_SIZE(subs)];
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		names[i] = subs[i].name;
	cli_unknown("unknown logs command", argv[1], cbl_suggest(argv[1], names, ARRAY_SIZE(names)), "logs");
	return CLI_EXIT_USAGE;
}
