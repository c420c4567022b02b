/* cli/cmd_logs.c - `codebuild-local logs get-log-events | filter-log-events |
 * describe-log-streams | describe-log-groups`: the `aws logs` commands over
 * the builds' log streams; and `logs tail`, `aws logs tail`'s face (its
 * algorithm: FilterLogEvents from --since, then, with --follow, again from the
 * newest timestamp seen, dropping the events of that timestamp already
 * printed, until interrupted). */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/api.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/array.h"
#include "util/suggest.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static const cli_api_arg fle_args[] = {
	{"log-group-name", "logGroupName", CA_STR, "/aws/codebuild/<project>"},
	{"log-group-identifier", "logGroupIdentifier", CA_STR, "the group's name or ARN"},
	{"log-stream-names", "logStreamNames", CA_LIST_STR, "only these streams (build uuids)"},
	{"log-stream-name-prefix", "logStreamNamePrefix", CA_STR, "only the streams named so"},
	{"start-time", "startTime", CA_INT, "epoch milliseconds (inclusive)"},
	{"end-time", "endTime", CA_INT, "epoch milliseconds (inclusive)"},
	{"filter-pattern", "filterPattern", CA_STR, "terms, \"phrases\", ?any, -none"},
	{"interleaved", "interleaved", CA_BOOL, "accepted; always interleaved"},
	{"unmask", "unmask", CA_BOOL, "accepted; logs are masked when written"},
};
static const cli_api_cmd fle_cmd = {
	"logs filter-log-events", STORE_TARGET_LOGS "FilterLogEvents",
	"Prints {\"events\": [{logStreamName, timestamp, message, ingestionTime, eventId}],\n"
	"\"searchedLogStreams\": []} for the matching lines of a group's streams, interleaved\n"
	"by time (aws logs filter-log-events; every page).",
	fle_args, ARRAY_SIZE(fle_args), "events",
};

static const cli_api_arg dls_args[] = {
	{"log-group-name", "logGroupName", CA_STR, "/aws/codebuild/<project>"},
	{"log-group-identifier", "logGroupIdentifier", CA_STR, "the group's name or ARN"},
	{"log-stream-name-prefix", "logStreamNamePrefix", CA_STR, "only the streams named so"},
	{"order-by", "orderBy", CA_STR, "LogStreamName (default) or LastEventTime"},
	{"descending", "descending", CA_BOOL, "the other way round"},
};
static const cli_api_cmd dls_cmd = {
	"logs describe-log-streams", STORE_TARGET_LOGS "DescribeLogStreams",
	"Prints {\"logStreams\": [...]} for a group (aws logs describe-log-streams).",
	dls_args, ARRAY_SIZE(dls_args), "logStreams",
};

static const cli_api_arg dlg_args[] = {
	{"log-group-name-prefix", "logGroupNamePrefix", CA_STR, "only the groups named so"},
	{"log-group-name-pattern", "logGroupNamePattern", CA_STR, "only the groups containing it"},
};
static const cli_api_cmd dlg_cmd = {
	"logs describe-log-groups", STORE_TARGET_LOGS "DescribeLogGroups",
	"Prints {\"logGroups\": [...]} (aws logs describe-log-groups).",
	dlg_args, ARRAY_SIZE(dlg_args), "logGroups",
};

static const struct {
	const char *name;
	const cli_api_cmd *cmd;
} subs[] = {
	{"get-log-events", &gle_cmd},
	{"filter-log-events", &fle_cmd},
	{"describe-log-streams", &dls_cmd},
	{"describe-log-groups", &dlg_cmd},
};

/* ---- logs tail */

static volatile sig_atomic_t tail_stop;
static void on_tail_signal(int sig)
{
	(void)sig;
	tail_stop = 1;
}

/* --since: 10m, 2h, 1d, 30s, 1w (before now) or an ISO 8601 UTC time; ms. */
static int parse_since(const char *s, long long *out)
{
	char *end = NULL;
	long long n = strtoll(s, &end, 10);
	static const struct {
		char unit;
		long long sec;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
	if (end != s && n >= 0 && n < 100000000 && end[0] && !end[1]) {
		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if (units[i].unit == end[0]) {
				*out = ((long long)time(NULL) - n * units[i].sec) * 1000;
				return 0;
			}
	}
	struct tm tm = {0};
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		rest = strptime(s, "%Y-%m-%d", &tm);
	if (!rest || (*rest && strcmp(rest, "Z")))
		return -1;
	*out = (long long)timegm(&tm) * 1000;
	return 0;
}

/* One event as `aws logs tail` prints it: "<time> <stream> <message>". */
static void tail_print(const json_t *e, bool short_fmt)
{
	long long ms = json_integer_value(json_object_get(e, "timestamp"));
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char when[64];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	const char *msg = cbl_json_str_or_empty(e, "message");
	size_t len = strlen(msg);
	while (len && strchr(" \t\r\n\v\f", msg[len - 1]))
		len--;
	if (short_fmt)
		printf("%s %.*s\n", when, (int)len, msg);
	else
		printf("%s.%03lld000+00:00 %s %.*s\n", when, ms % 1000, cbl_json_str_or_empty(e, "logStreamName"),
		       (int)len, msg);
}

/* Prints a page's events not printed yet; *seen holds the eventIds of the
 * newest timestamp printed (*newest). */
static void tail_page(const json_t *res, json_t *seen, long long *newest, bool short_fmt)
{
	size_t i;
	const json_t *e;
	json_array_foreach(json_object_get(res, "events"), i, e) {
		long long ts = json_integer_value(json_object_get(e, "timestamp"));
		const char *id = cbl_json_str_or_empty(e, "eventId");
		if (ts == *newest && json_object_get(seen, id))
			continue;
		if (ts > *newest) {
			*newest = ts;
			json_object_clear(seen);
		}
		if (ts == *newest)
			json_object_set_new(seen, id, json_true());
		tail_print(e, short_fmt);
	}
	fflush(stdout);
}

static void tail_usage(FILE *f)
{
	fputs("usage: codebuild-local logs tail GROUP [--follow] [--since 10m|2h|ISO-TIME]\n"
	      "                                [--filter-pattern P] [--log-stream-names S ...]\n"
	      "                                [--format detailed|short]\n\n"
	      "Prints a log group's events as `aws logs tail` does (\"<time> <stream> <message>\"),\n"
	      "from --since (default 10m) on; --follow keeps printing new lines (polling every\n"
	      "second) until interrupted (exit 0).\n",
	      f);
}

static int tail_loop(const char *home, json_t *req, bool follow, bool short_fmt)
{
	const char *target = STORE_TARGET_LOGS "FilterLogEvents";
	json_t *seen = json_object();
	long long newest = -1;
	int rc = CLI_EXIT_OK;
	while (!tail_stop) {
		json_t *res = NULL;
		cbl_error *err = NULL;
		if (store_api_dispatch(home, target, req, &res, &err)) {
			fprintf(stderr, "An error occurred (%s) when calling the FilterLogEvents operation: %s\n",
				store_api_error_type(target, err->code), err->msg);
			rc = err->code == CBL_EINVAL ? CLI_EXIT_USAGE : err->code == CBL_ENOENT ? CLI_EXIT_FAILED
												 : CLI_EXIT_FAULT;
			cbl_error_free(err);
			break;
		}
		tail_page(res, seen, &newest, short_fmt);
		json_t *tok = json_object_get(res, "nextToken");
		if (tok) {
			json_object_set(req, "nextToken", tok);
		} else if (!follow) {
			json_decref(res);
			break;
		} else {
			json_object_del(req, "nextToken");
			if (newest >= 0)
				json_object_set_new(req, "startTime", json_integer(newest));
			for (int i = 0; i < 10 && !tail_stop; i++)
				nanosleep(&(struct timespec){0, 100000000}, NULL);
		}
		json_decref(res);
	}
	json_decref(seen);
	return rc;
}

static int cmd_logs_tail(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"follow", no_argument, NULL, 'f'},
		{"since", required_argument, NULL, 's'},
		{"filter-pattern", required_argument, NULL, 'p'},
		{"log-stream-names", required_argument, NULL, 'n'},
		{"log-stream-name-prefix", required_argument, NULL, 'x'},
		{"format", required_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool follow = false, short_fmt = false;
	long long since = ((long long)time(NULL) - 600) * 1000;
	json_t *req = json_object(), *names = json_array();
	int c, rc = CLI_EXIT_USAGE;
	while ((c = cli_getopt("logs tail", argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case 'f': follow = true; break;
		case 's':
			if (parse_since(optarg, &since) < 0) {
				cli_error("invalid --since '%s' (expected e.g. 10m, 2h, 1d or 2026-01-02T03:04:05Z)", optarg);
				goto out;
			}
			break;
		case 'p': json_object_set_new(req, "filterPattern", json_string(optarg)); break;
		case 'n': json_array_append_new(names, json_string(optarg)); break;
		case 'x': json_object_set_new(req, "logStreamNamePrefix", json_string(optarg)); break;
		case 'F':
			if (strcmp(optarg, "detailed") && strcmp(optarg, "short")) {
				cli_error("invalid --format '%s' (expected detailed or short)", optarg);
				goto out;
			}
			short_fmt = !strcmp(optarg, "short");
			break;
		case 'h': tail_usage(stdout); rc = CLI_EXIT_OK; goto out;
		default: goto out;
		}
	}
	if (optind + 1 != argc) {
		tail_usage(stderr);
		goto out;
	}
	json_object_set_new(req, "logGroupName", json_string(argv[optind]));
	json_object_set_new(req, "interleaved", json_true());
	json_object_set_new(req, "startTime", json_integer(since));
	if (json_array_size(names))
		json_object_set(req, "logStreamNames", names);
	struct sigaction sa = {0};
	sa.sa_handler = on_tail_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	char *home = store_default_home();
	rc = tail_loop(home, req, follow, short_fmt);
	free(home);
out:
	json_decref(names);
	json_decref(req);
	return rc;
}

static void logs_usage(FILE *f)
{
	fputs("usage: codebuild-local logs <command> [options]\n\n"
	      "CloudWatch Logs operations over the builds' logs (aws logs ...):\n",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		fprintf(f, "  %s\n", subs[i].name);
	fputs("  tail\n", f);
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
	if (!strcmp(argv[1], "tail"))
		return cmd_logs_tail(argc - 1, argv + 1);
	const char *names[ARRAY_SIZE(subs) + 1];
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		names[i] = subs[i].name;
	names[ARRAY_SIZE(subs)] = "tail";
	cli_unknown("unknown logs command", argv[1], cbl_suggest(argv[1], names, ARRAY_SIZE(names)), "logs");
	return CLI_EXIT_USAGE;
}
