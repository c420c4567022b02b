/* cli/cmd_serve.c - `codebuild-local serve`: the CodeBuild and CloudWatch Logs
 * JSON API over HTTP for the AWS CLI and SDKs (--endpoint-url).
 *
 * The server (server/server.h) knows HTTP, SigV4 and the error shapes; the
 * operations are the store's dispatcher, wired in here. */
#include "cli/cli.h"
#include "runner/apiops.h"
#include "runner/launch.h"
#include "server/creds.h"
#include "server/events.h"
#include "server/server.h"
#include "store/api.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/strv.h"
#include "util/time.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

#define DEFAULT_LISTEN "127.0.0.1:8787"

static const char serve_usage[] =
	"usage: codebuild-local serve [--listen HOST:PORT] [--credentials-file FILE]...\n"
	"                             [--no-auth] [--region REGION] [--quiet]\n"
	"\n"
	"Serves the CodeBuild API (AWS JSON 1.1, X-Amz-Target " STORE_TARGET_CODEBUILD "*),\n"
	"CloudWatch Logs GetLogEvents, FilterLogEvents, DescribeLogStreams and DescribeLogGroups\n"
	"(" STORE_TARGET_LOGS "*) and CloudWatch's metrics and alarms of AWS/CodeBuild (the query\n"
	"protocol, signed for monitoring, and " STORE_TARGET_CLOUDWATCH "*) on one port, for the\n"
	"AWS CLI and SDKs pointed at it with --endpoint-url / endpoint_url:\n"
	"\n"
	"  aws codebuild list-projects --endpoint-url http://127.0.0.1:8787 --region us-east-1\n"
	"\n"
	"Options:\n"
	"  --listen HOST:PORT       address to listen on (default " DEFAULT_LISTEN "); port 0\n"
	"                           picks a free one; [::1]:PORT for IPv6.  An address other\n"
	"                           than loopback is reachable from other machines: a warning\n"
	"                           is printed, since the API runs builds on this machine.\n"
	"  --credentials-file FILE  accept every key pair of this AWS credentials file (INI,\n"
	"                           like ~/.aws/credentials); may be repeated\n"
	"  --no-auth                accept requests without checking their signature\n"
	"  --region REGION          only accept requests signed for REGION (default: any)\n"
	"  --threads N              N polling threads instead of a thread per connection\n"
	"  --max-builds N           builds running at once (default: the number of CPUs);\n"
	"                           StartBuild beyond that answers with a QUEUED build that\n"
	"                           starts when a running one ends\n"
	"  --account ID             the account of build ARNs (default 000000000000)\n"
	"  --identity AKID=ARN      the IAM identity of an access key (may be repeated):\n"
	"                           its account goes into the ARNs of the builds it starts\n"
	"                           and the initiator is formed from it as the service\n"
	"                           does (user/NAME -> NAME, assumed-role/R/S -> R/S)\n"
	"  --secrets-file FILE      values of the projects' and StartBuild's PARAMETER_STORE\n"
	"                           and SECRETS_MANAGER variables (run's --secrets-file\n"
	"                           format), masked in the builds' logs\n"
	"  --max-connections N      client connections at once (default 1024); a quarter of\n"
	"                           them is kept free of any one client address\n"
	"  --header-timeout SECONDS a client must send a request's head within SECONDS of\n"
	"                           connecting or of the previous reply (default 10), its\n"
	"                           body within 30 s, or it is disconnected\n"
	"  --quiet                  no access log on stderr\n"
	"  --no-dashboard           no web dashboard (the API only)\n"
	"  --events-webhook URL     POST the builds' EventBridge events (\"CodeBuild Build State\n"
	"                           Change\", \"CodeBuild Build Phase Change\") to URL, in order,\n"
	"                           retried until delivered; kept in the store meanwhile\n"
	"  --sns-topic ARN=URL      deliver a CloudWatch alarm's notifications for the SNS topic\n"
	"                           ARN (its AlarmActions / OKActions) as POSTs to URL, or with\n"
	"                           ARN=exec:COMMAND to /bin/sh -c COMMAND on its stdin (and in\n"
	"                           $CODEBUILD_LOCAL_NOTIFICATION); may be repeated\n"
	"\n"
	"Requests are authenticated with AWS Signature Version 4 against the key pair in\n"
	"this process's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the credentials\n"
	"files given.  Without any key the server refuses to start unless --no-auth.\n"
	"Once ready it prints 'listening on http://HOST:PORT' on stdout, then\n"
	"'dashboard: http://HOST:PORT/login?token=...': the web dashboard (builds, live\n"
	"logs, phase timelines, test reports, trends) on the same port.  The link works\n"
	"once: it starts a browser session; restart serve for a new one.  SIGINT or\n"
	"SIGTERM stop it after the requests in progress.\n"
	"State: $CODEBUILD_LOCAL_HOME (default ~/.local/share/codebuild-local).\n";

struct serve_ctx {
	char *home;
	runner_launcher *launcher; /* StartBuild, StopBuild, RetryBuild */
	const cbl_strv *identities; /* "AKID=ARN" */
	const char *account;        /* --account */
};

/* StartBuild & co. on behalf of the request's signer. */
static int serve_dispatch_caller(const char *target, json_t *request, const server_caller *caller,
				 json_t **out, cbl_error **err, void *payload)
{
	struct serve_ctx *ctx = payload;
	runner_caller who = {.region = caller->region};
	size_t kl = caller->access_key_id ? strlen(caller->access_key_id) : 0;
	for (size_t i = 0; kl && ctx->identities && i < ctx->identities->n; i++) {
		const char *e = ctx->identities->v[i];
		if (!strncmp(e, caller->access_key_id, kl) && e[kl] == '=')
			who.principal = e + kl + 1;
	}
	if (runner_launcher_known(target)) {
		int rc = store_api_validate(target, request, err);
		return rc ? rc : runner_launcher_dispatch_as(ctx->launcher, target, request, &who, out, err);
	}
	char *account = NULL, *initiator = NULL;
	runner_principal_identity(who.principal, &account, &initiator);
	int rc = store_api_dispatch_as(ctx->home, target, request, caller->region,
				       account ? account : ctx->account, out, err);
	free(account);
	free(initiator);
	return rc;
}

/* The operations whose answer depends on who asks: the ARNs they create. */
static bool serve_caller_known(const char *target, void *payload)
{
	(void)payload;
	return runner_launcher_known(target) || (target && !strcmp(target, STORE_TARGET_CODEBUILD "CreateProject"));
}

static int serve_dispatch(const char *target, json_t *request, json_t **out, cbl_error **err,
			  void *payload)
{
	struct serve_ctx *ctx = payload;
	if (runner_launcher_known(target)) {
		int rc = store_api_validate(target, request, err);
		return rc ? rc : runner_launcher_dispatch(ctx->launcher, target, request, out, err);
	}
	if (runner_api_known(target)) {
		int rc = store_api_validate(target, request, err);
		return rc ? rc : runner_api_dispatch(ctx->home, target, request, out, err);
	}
	if (runner_sandbox_api_known(target)) {
		int rc = store_api_validate(target, request, err);
		return rc ? rc : runner_sandbox_api_dispatch(ctx->launcher, ctx->home, target, request, out, err);
	}
	return store_api_dispatch(ctx->home, target, request, out, err);
}

/* The serialized variant: BatchGetBuilds splices stored records without
 * parsing them (the benchmark's hot path). */
static int serve_dispatch_text(const char *target, json_t *request, char **out, size_t *len,
			       cbl_error **err, void *payload)
{
	struct serve_ctx *ctx = payload;
	if (runner_launcher_known(target) || runner_api_known(target) || runner_sandbox_api_known(target)) {
		json_t *res = NULL;
		int rc = serve_dispatch(target, request, &res, err, payload);
		if (rc)
			return rc;
		/* timestamps as the store writes them: epoch seconds, milliseconds */
		*out = json_dumps(res, JSON_COMPACT | JSON_REAL_PRECISION(13));
		json_decref(res);
		if (!*out)
			return cbl_error_set(err, CBL_EINTERNAL, "cannot serialize the response");
		*len = strlen(*out);
		return 0;
	}
	return store_api_dispatch_text(ctx->home, target, request, out, len, err);
}

static bool serve_known(const char *target, void *payload)
{
	(void)payload;
	return store_api_known(target) || runner_launcher_known(target) || runner_api_known(target) ||
	       runner_sandbox_api_known(target);
}

static void serve_log(const char *line, void *payload)
{
	(void)payload;
	char ts[32];
	cbl_format_iso_time(ts, cbl_now_us());
	fprintf(stderr, "%s %s\n", ts, line);
}

struct serve_flags {
	const char *listen, *region, *account, *events_url;
	char *secrets_file;
	cbl_strv identities, topics;
	bool no_auth, quiet, no_dashboard;
	unsigned threads;
	long max_builds, max_connections, header_timeout;
};

/* *out = arg, a whole number from min to max; false when it is not one. */
static bool parse_count(const char *arg, long min, long max, long *out)
{
	char *end;
	long n = strtol(arg, &end, 10);
	if (*end || n < min || n > max)
		return false;
	*out = n;
	return true;
}

enum { OPT_LISTEN = 256, OPT_CREDS, OPT_NO_AUTH, OPT_REGION, OPT_THREADS, OPT_QUIET, OPT_MAX_BUILDS,
       OPT_ACCOUNT, OPT_IDENTITY, OPT_SECRETS, OPT_MAX_CONNS, OPT_HEADER_TIMEOUT, OPT_NO_DASHBOARD,
       OPT_EVENTS, OPT_SNS };

/* The options about the builds and what they tell: -1 to go on, else the
 * exit code. */
static int build_option(struct serve_flags *f, int c)
{
	switch (c) {
	case OPT_ACCOUNT:
		if (strlen(optarg) != 12 || strspn(optarg, "0123456789") != 12) {
			cli_error("--account wants a 12-digit AWS account id, got '%s'", optarg);
			return CLI_EXIT_USAGE;
		}
		f->account = optarg;
		break;
	case OPT_SECRETS:
		free(f->secrets_file);
		/* absolute: the builds' runners read it */
		if (!(f->secrets_file = realpath(optarg, NULL))) {
			cli_error("--secrets-file %s: %s", optarg, strerror(errno));
			return CLI_EXIT_USAGE;
		}
		break;
	case OPT_IDENTITY:
		if (!strchr(optarg, '=') || strncmp(strchr(optarg, '=') + 1, "arn:", 4)) {
			cli_error("--identity wants AKID=ARN (e.g. AKID=arn:aws:iam::123456789012:user/alice), "
				  "got '%s'",
				  optarg);
			return CLI_EXIT_USAGE;
		}
		cbl_strv_push(&f->identities, optarg);
		break;
	case OPT_EVENTS:
		f->events_url = optarg;
		break;
	case OPT_SNS:
		cbl_strv_push(&f->topics, optarg);
		break;
	default:
		break;
	}
	return -1;
}

/* Parses the options into f (credentials files into creds); -1 to go on,
 * else the exit code. */
static int parse_serve_options(int argc, char **argv, struct serve_flags *f, server_creds *creds)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"credentials-file", required_argument, NULL, OPT_CREDS},
		{"no-auth", no_argument, NULL, OPT_NO_AUTH},
		{"region", required_argument, NULL, OPT_REGION},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"max-builds", required_argument, NULL, OPT_MAX_BUILDS},
		{"account", required_argument, NULL, OPT_ACCOUNT},
		{"identity", required_argument, NULL, OPT_IDENTITY},
		{"secrets-file", required_argument, NULL, OPT_SECRETS},
		{"max-connections", required_argument, NULL, OPT_MAX_CONNS},
		{"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
		{"no-dashboard", no_argument, NULL, OPT_NO_DASHBOARD},
		{"events-webhook", required_argument, NULL, OPT_EVENTS},
		{"sns-topic", required_argument, NULL, OPT_SNS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	cbl_error *err = NULL;
	long n;
	int c;
	optind = 1;
	while ((c = cli_getopt("serve", argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			f->listen = optarg;
			break;
		case OPT_CREDS: {
			size_t added = 0;
			if (server_creds_load_file(creds, optarg, &added, &err) < 0) {
				cli_report_clear(&err);
				return CLI_EXIT_USAGE;
			}
			if (!added)
				fprintf(stderr,
					"codebuild-local: warning: %s holds no complete key pair\n",
					optarg);
			break;
		}
		case OPT_NO_AUTH:
			f->no_auth = true;
			break;
		case OPT_REGION:
			f->region = optarg;
			break;
		case OPT_THREADS:
			if (!parse_count(optarg, 0, 256, &n)) {
				cli_error("--threads wants a number from 0 to 256");
				return CLI_EXIT_USAGE;
			}
			f->threads = (unsigned)n;
			break;
		case OPT_QUIET:
			f->quiet = true;
			break;
		case OPT_NO_DASHBOARD:
			f->no_dashboard = true;
			break;
		case OPT_MAX_BUILDS:
			if (!parse_count(optarg, 1, 1024, &f->max_builds)) {
				cli_error("--max-builds wants a number from 1 to 1024");
				return CLI_EXIT_USAGE;
			}
			break;
		case OPT_ACCOUNT:
		case OPT_SECRETS:
		case OPT_IDENTITY:
		case OPT_EVENTS:
		case OPT_SNS: {
			int rc = build_option(f, c);
			if (rc >= 0)
				return rc;
			break;
		}
		case OPT_MAX_CONNS:
			if (!parse_count(optarg, 4, 65536, &f->max_connections)) {
				cli_error("--max-connections wants a number from 4 to 65536");
				return CLI_EXIT_USAGE;
			}
			break;
		case OPT_HEADER_TIMEOUT:
			if (!parse_count(optarg, 1, 3600, &f->header_timeout)) {
				cli_error("--header-timeout wants a number of seconds from 1 to 3600");
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(serve_usage, stdout);
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE; /* said in one line by cli_getopt */
		}
	}
	if (optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		fputs(serve_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	return -1;
}

/* Adds the environment's key pair; refuses to go on without any key
 * unless --no-auth.  -1 to go on, else the exit code. */
static int env_credentials(server_creds *creds, bool no_auth)
{
	cbl_error *err = NULL;
	const char *env_akid = getenv("AWS_ACCESS_KEY_ID");
	const char *env_secret = getenv("AWS_SECRET_ACCESS_KEY");
	bool have_akid = env_akid && *env_akid, have_secret = env_secret && *env_secret;
	if (have_akid != have_secret) {
		cli_error("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
		return CLI_EXIT_USAGE;
	}
	if (have_akid && server_creds_add(creds, env_akid, env_secret, &err) < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_USAGE;
	}
	if (!no_auth && server_creds_count(creds) == 0) {
		cli_error("no credentials to check requests against: set AWS_ACCESS_KEY_ID and "
			  "AWS_SECRET_ACCESS_KEY, pass --credentials-file FILE, or --no-auth to "
			  "accept unauthenticated requests");
		return CLI_EXIT_USAGE;
	}
	return -1;
}

/* The launcher of StartBuild / StopBuild / RetryBuild, which runs builds by
 * starting this program again. */
static int start_launcher(struct serve_ctx *ctx, const struct serve_flags *f)
{
	cbl_error *err = NULL;
	char *exe = realpath("/proc/self/exe", NULL);
	long max_builds = f->max_builds;
	runner_launcher_opts lo = {.home = ctx->home, .exe = exe,
				   .max_running = max_builds < 1 ? 1 : (int)max_builds,
				   .region = f->region, .account = f->account, .secrets_file = f->secrets_file,
				   .resume = true};
	int lrc = exe ? runner_launcher_new(&ctx->launcher, &lo, &err)
		      : cbl_error_set_errno(&err, CBL_EIO, errno, "cannot find this program");
	free(exe);
	if (lrc < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_FAULT;
	}
	return -1;
}

static void warn_exposure(const server *srv, bool no_auth)
{
	if (no_auth)
		fprintf(stderr,
			"codebuild-local: WARNING: --no-auth: requests are NOT authenticated. Anyone "
			"who can reach %s can create projects and run builds (commands) on this "
			"machine.\n",
			server_url(srv));
	if (!server_is_loopback(srv))
		fprintf(stderr,
			"codebuild-local: WARNING: %s is not a loopback address: other machines can "
			"reach this API, and builds run commands on this machine. Requests travel "
			"unencrypted (plain HTTP).\n",
			server_url(srv));
}

int cmd_serve(int argc, char **argv)
{
	struct serve_flags f = {.listen = DEFAULT_LISTEN, .max_builds = sysconf(_SC_NPROCESSORS_ONLN),
				.identities = CBL_STRV_INIT};
	struct server_opts so = SERVER_OPTS_INIT;
	struct serve_ctx ctx = {0};
	server_creds *creds = server_creds_new();
	server *srv = NULL;
	server_events *events = NULL;
	cbl_error *err = NULL;
	int rc;
	sigset_t sigs;

	rc = parse_serve_options(argc, argv, &f, creds);
	if (rc < 0)
		rc = env_credentials(creds, f.no_auth);
	if (rc >= 0)
		goto out;

	ctx.home = store_default_home();
	so.listen = f.listen;
	so.creds = f.no_auth ? NULL : creds;
	so.region = f.region;
	so.threads = f.threads;
	so.max_connections = (unsigned)f.max_connections;
	so.header_timeout = (unsigned)f.header_timeout;
	so.dispatch = serve_dispatch;
	so.dispatch_text = serve_dispatch_text;
	so.known = serve_known;
	so.dispatch_caller = serve_dispatch_caller;
	so.caller_known = serve_caller_known;
	ctx.identities = &f.identities;
	ctx.account = f.account;
	so.payload = &ctx;
	so.log = serve_log;
	so.access_log = !f.quiet;
	so.dashboard_home = f.no_dashboard ? NULL : ctx.home;

	/* Every thread the server starts inherits this mask, so SIGINT and
	 * SIGTERM reach only sigwait below. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* after the mask: the launcher's thread must not take SIGINT */
	rc = start_launcher(&ctx, &f);
	if (rc >= 0)
		goto out;

	if (server_start(&so, &srv, &err) < 0) {
		cli_report(err);
		rc = err && err->code == CBL_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAULT;
		goto out;
	}
	server_events_opts eo = {.home = ctx.home, .events_url = f.events_url,
				 .topics = (const char *const *)f.topics.v, .n_topics = f.topics.n,
				 .log = serve_log};
	if (server_events_start(&eo, &events, &err) < 0) {
		cli_report(err);
		rc = err && err->code == CBL_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAULT;
		goto out;
	}
	warn_exposure(srv, f.no_auth);
	printf("listening on %s\n", server_url(srv));
	if (server_dashboard_url(srv))
		printf("dashboard: %s\n", server_dashboard_url(srv));
	fflush(stdout);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0)
		;
	fprintf(stderr, "codebuild-local: %s received, stopping\n", strsignal(sig));
	server_events_stop(events);
	events = NULL;
	server_stop(srv);
	srv = NULL;
	rc = CLI_EXIT_OK;
out:
	server_events_stop(events);
	server_stop(srv);
	cbl_strv_release(&f.topics);
	runner_launcher_free(ctx.launcher);
	server_creds_free(creds);
	cbl_error_free(err);
	free(ctx.home);
	cbl_strv_release(&f.identities);
	free(f.secrets_file);
	return rc;
}
