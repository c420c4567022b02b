/* cli/cmd_run.c - `codebuild-local run`: the main job. */
#include "cli/cli.h"
#include "cli/run_batch.h"
#include "runner/batch.h"
#include "runner/launch.h"
#include "runner/runner.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/time.h"

#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/array.h"

#include "util/json.h"
#include "util/banned.h"

static const char run_usage_head[] =
	"usage: codebuild-local run [options] [DIR | GIT-URL]\n"
	"\n"
	"Runs the buildspec of DIR (default: the current directory), or of a shallow clone\n"
	"of GIT-URL (https://, http://, ssh://, git@host:path, file://), through CodeBuild's\n"
	"phases (DOWNLOAD_SOURCE, INSTALL, PRE_BUILD, BUILD, POST_BUILD, UPLOAD_ARTIFACTS)\n"
	"with CodeBuild's command model, environment variables and log format.\n"
	"\n"
	"options:\n";

static const char run_usage_tail[] =
	"\n"
	"Output: on a terminal, a compact progress view (NO_COLOR disables colour); piped,\n"
	"the plain CodeBuild log.  The build record and log are stored under\n"
	"$CODEBUILD_LOCAL_HOME (default ~/.local/share/codebuild-local)/builds/PROJECT/UUID/.\n"
	"\n"
	"Exit status: 0 SUCCEEDED, 1 FAILED, 2 usage error or invalid buildspec, 3 FAULT,\n"
	"4 TIMED_OUT, 5 STOPPED.\n";

/* What the command line gives, on its way to runner_opts. */
typedef struct run_args {
	runner_opts o;
	cbl_strv env;                /* -e, in order */
	cbl_strv insecure;           /* --insecure-registry */
	cbl_strv mounts;             /* --mount, in order */
	const char *env_file;
	const char *launched;        /* --launched DIR (runner/launch.h) */
	runner_secondary_source *secondary;
	size_t n_secondary;
	bool depth_set, json, no_checkpoints;
	cli_webhook wh;              /* --webhook-event and its facts */
	const char *remote, *endpoint, *profile; /* --remote PROJECT */
	int n_opts;                  /* options given, --launched and a batch's aside */
	const char *batch_build;     /* --batch-build ID */
	const char *batch_of;        /* --batch-of ARN: a build the batch ARN runs */
	const char *batch_spec;      /* --batch-spec FILE: the batch's copy of its batchspec */
	bool no_batch, combine;
	int max_parallel;
	bool batch_launched;         /* --launched DIR is a batch's (StartBuildBatch) */
	const char *batch_retry;     /* RetryBuildBatch's retryType */
} run_args;

/* 0 = go on, -1 = usage error (said), 1 = done (--help) */
typedef int (*run_opt_fn)(run_args *a, char *arg);

/* One option: its runner_opts field (a string with arg, else a bool) when
 * fn is NULL, else fn.  help NULL = not in the usage. */
typedef struct run_opt {
	const char *name;
	int short_name;
	const char *arg;
	run_opt_fn fn;
	size_t field;
	const char *help;
} run_opt;

#define FIELD(f) NULL, offsetof(runner_opts, f)
#define FN(f) f, 0

static runner_build *g_build; /* for the signal handler only */

static void on_signal(int sig)
{
	(void)sig;
	if (g_build)
		runner_build_stop(g_build);
}

/* ID=DIR or ID=URL[@VERSION]; the version is an '@' after the URL's last '/'
 * (so user@host stays the URL's). */
static int opt_secondary(run_args *a, char *arg)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1]) {
		cli_error("--secondary-source expects ID=DIR or ID=URL[@VERSION], got '%s'", arg);
		return -1;
	}
	a->secondary = cbl_xrealloc(a->secondary, (a->n_secondary + 1) * sizeof(*a->secondary));
	runner_secondary_source *out = &a->secondary[a->n_secondary++];
	memset(out, 0, sizeof(*out));
	*eq = '\0';
	out->id = arg;
	char *val = eq + 1;
	if (!runner_source_is_url(val)) {
		out->dir = val;
		return 0;
	}
	out->git_url = val;
	char *slash = strrchr(val, '/');
	char *at = strrchr(val, '@');
	if (slash && at && at > slash && at[1]) {
		*at = '\0';
		out->version = at + 1;
	}
	return 0;
}

static int opt_env(run_args *a, char *arg)
{
	if (!strchr(arg, '=') || arg[0] == '=') {
		cli_error("-e expects NAME=VALUE, got '%s'", arg);
		return -1;
	}
	cbl_strv_push(&a->env, arg);
	return 0;
}

static int opt_env_file(run_args *a, char *arg)
{
	a->env_file = arg;
	return 0;
}

static int opt_insecure(run_args *a, char *arg)
{
	cbl_strv_push(&a->insecure, arg);
	return 0;
}

static int opt_mount(run_args *a, char *arg)
{
	cbl_strv_push(&a->mounts, arg);
	return 0;
}

static int opt_packaging(run_args *a, char *arg)
{
	if (!strcasecmp(arg, "NONE"))
		a->o.packaging_none = true;
	else if (strcasecmp(arg, "ZIP"))
		return cli_error("--artifacts-packaging takes ZIP or NONE, got '%s'", arg), -1;
	return 0;
}

static int opt_sandbox(run_args *a, char *arg)
{
	if (!strcmp(arg, "none"))
		a->o.sandbox = RUNNER_SANDBOX_NONE;
	else if (strcmp(arg, "namespaces"))
		return cli_error("--sandbox takes namespaces or none, got '%s'", arg), -1;
	return 0;
}

static int opt_network(run_args *a, char *arg)
{
	if (!strcmp(arg, "none"))
		a->o.network = RUNNER_NETWORK_NONE;
	else if (!strcmp(arg, "host"))
		a->o.network = RUNNER_NETWORK_HOST;
	else if (!strcmp(arg, "default"))
		a->o.network = RUNNER_NETWORK_DEFAULT;
	else
		return cli_error("--network takes default, host or none, got '%s'", arg), -1;
	return 0;
}

static int opt_source_mode(run_args *a, char *arg)
{
	a->o.source_mode = RUNNER_SOURCE_SNAPSHOT;
	a->o.include_ignored = false;
	if (!strcmp(arg, "mount"))
		a->o.source_mode = RUNNER_SOURCE_MOUNT;
	else if (!strcmp(arg, "all"))
		a->o.include_ignored = true;
	else if (strcmp(arg, "snapshot"))
		return cli_error("--source-mode takes snapshot, all or mount, got '%s'", arg), -1;
	return 0;
}

static int opt_depth(run_args *a, char *arg)
{
	char *end = NULL;
	long d = strtol(arg, &end, 10);
	if (!*arg || *end || d < 0 || d > 1000000)
		return cli_error("--clone-depth takes a number >= 0 (0 = full history), got '%s'", arg), -1;
	a->o.clone_depth = (int)d;
	a->depth_set = true;
	return 0;
}

static int opt_timeout(run_args *a, char *arg)
{
	cbl_error *err = NULL;
	if (cbl_parse_duration_ms(arg, &a->o.timeout_ms, &err) < 0) {
		cli_report(err);
		cbl_error_free(err);
		return -1;
	}
	return 0;
}

static int opt_json(run_args *a, char *arg)
{
	(void)arg;
	a->json = true;
	return 0;
}

static int opt_from_phase(run_args *a, char *arg)
{
	static const runner_phase_type ps[] = {RUNNER_PHASE_INSTALL, RUNNER_PHASE_PRE_BUILD, RUNNER_PHASE_BUILD,
					       RUNNER_PHASE_POST_BUILD};
	for (size_t i = 0; i < ARRAY_SIZE(ps); i++)
		if (!strcasecmp(arg, runner_phase_name(ps[i]))) {
			a->o.from_phase = (int)ps[i];
			return 0;
		}
	return cli_error("--from-phase takes INSTALL, PRE_BUILD, BUILD or POST_BUILD, got '%s'", arg), -1;
}

static int opt_no_checkpoints(run_args *a, char *arg)
{
	(void)arg;
	a->no_checkpoints = true;
	return 0;
}

static int opt_launched(run_args *a, char *arg)
{
	a->launched = arg;
	return 0;
}

static int opt_batch_build(run_args *a, char *arg)
{
	a->batch_build = arg;
	return 0;
}

static int opt_batch_of(run_args *a, char *arg)
{
	a->batch_of = arg;
	return 0;
}

static int opt_batch_spec(run_args *a, char *arg)
{
	a->batch_spec = arg;
	return 0;
}

static int opt_batch_launched(run_args *a, char *arg)
{
	(void)arg;
	a->batch_launched = true;
	return 0;
}

static int opt_batch_retry(run_args *a, char *arg)
{
	a->batch_retry = arg;
	return 0;
}

static int opt_no_batch(run_args *a, char *arg)
{
	(void)arg;
	a->no_batch = true;
	return 0;
}

static int opt_combine(run_args *a, char *arg)
{
	(void)arg;
	a->combine = true;
	return 0;
}

static int opt_max_parallel(run_args *a, char *arg)
{
	char *end = NULL;
	long n = strtol(arg, &end, 10);
	if (!*arg || *end || n < 1 || n > 1000)
		return cli_error("--max-parallel takes a number of builds from 1 to 1000, got '%s'", arg), -1;
	a->max_parallel = (int)n;
	return 0;
}

static int opt_help(run_args *a, char *arg);

static int opt_remote(run_args *a, char *arg) { return a->remote = arg, 0; }
static int opt_endpoint(run_args *a, char *arg) { return a->endpoint = arg, 0; }
static int opt_profile(run_args *a, char *arg) { return a->profile = arg, 0; }

static int opt_wh_event(run_args *a, char *arg) { return cli_webhook_opt(&a->wh, "webhook-event", arg); }
static int opt_wh_head(run_args *a, char *arg) { return cli_webhook_opt(&a->wh, "head-ref", arg); }
static int opt_wh_base(run_args *a, char *arg) { return cli_webhook_opt(&a->wh, "base-ref", arg); }
static int opt_wh_pr(run_args *a, char *arg) { return cli_webhook_opt(&a->wh, "pr", arg); }
static int opt_wh_actor(run_args *a, char *arg) { return cli_webhook_opt(&a->wh, "actor-account-id", arg); }
static int opt_wh_msg(run_args *a, char *arg) { return cli_webhook_opt(&a->wh, "commit-message", arg); }
static int opt_wh_prev(run_args *a, char *arg) { return cli_webhook_opt(&a->wh, "prev-commit", arg); }
static int opt_wh_tag(run_args *a, char *arg) { return cli_webhook_opt(&a->wh, "tag-name", arg); }

static const run_opt run_opts[] = {
	{"buildspec", 'b', "FILE", FIELD(buildspec), "buildspec path, relative to DIR (default buildspec.yml)"},
	{"env", 'e', "NAME=VALUE", FN(opt_env), "environment variable override (repeatable; beats the\n"
						"project and the buildspec)"},
	{"env-file", 0, "FILE", FN(opt_env_file), "NAME=VALUE lines ('#' comments), like docker's --env-file"},
	{"secrets-file", 0, "FILE", FIELD(secrets_file),
	 "offline values for parameter-store and secrets-manager:\n"
	 "{\"parameter-store\": {NAME: VALUE},\n"
	 " \"secrets-manager\": {SECRET_ID: SECRET_STRING}}"},
	{"project", 0, "NAME", FIELD(project_name), "project name (default: DIR's name)"},
	{"image", 'i', "IMAGE", FIELD(image), "the build image: host (default), a curated name, a registry\n"
					      "reference or a root filesystem directory"},
	{"host-runtimes", 0, NULL, FIELD(host_runtimes),
	 "with the host image: a runtime-versions entry the host lacks\n"
	 "is a warning (\"nodejs 12 requested, host has 20.20.2\"),\n"
	 "and the build goes on with the host's version"},
	{"insecure-registry", 0, "HOST", FN(opt_insecure),
	 "plain HTTP for that registry (loopback needs none; repeatable)"},
	{"compute-type", 0, "TYPE", FIELD(compute_type),
	 "compute type (default BUILD_GENERAL1_SMALL); when given, the\n"
	 "sandbox enforces its memory and process limits (cgroups)\n"
	 "and always shows the build its vCPUs"},
	{"source-version", 0, "V", FIELD(source_version),
	 "git: the branch, tag, commit, pr/N, refs/pull/N/head or\n"
	 "branch^{SHA} to build (default: the default branch);\n"
	 "also CODEBUILD_SOURCE_VERSION"},
	{"clone-depth", 0, "N", FN(opt_depth), "git: history depth, like git_clone_depth (default 1; 0 = full)"},
	{"fetch-submodules", 0, NULL, FIELD(fetch_submodules), "git: clone submodules too"},
	{"secondary-source", 0, "ID=DIR|URL[@VERSION]", FN(opt_secondary),
	 "a secondary source (repeatable), at CODEBUILD_SRC_DIR_ID;\n"
	 "every source then sits in .../src/s3/NN as on the service\n"
	 "(the primary in s3/00)"},
	{"no-cache", 0, NULL, FIELD(no_cache), "neither restore nor save the buildspec's cache"},
	{"cache-dir", 0, "DIR", FIELD(cache_dir), "the cache store (default: $CODEBUILD_LOCAL_HOME/cache)"},
	{"source-cache", 0, NULL, FIELD(source_cache),
	 "git: LOCAL_SOURCE_CACHE: keep each repository's objects in\n"
	 "the cache store (DIR/git) so later clones fetch only what\n"
	 "is new (not with --no-cache)"},
	{"region", 0, "REGION", FIELD(region), "AWS_REGION of the build (default us-east-1)"},
	{"timeout", 0, "T", FN(opt_timeout), "build timeout: minutes (CodeBuild's unit), or 90s, 2m, 1h\n"
					     "(default 60 minutes)"},
	{"artifacts", 'a', "DIR", FIELD(artifacts_dir), "write artifacts to DIR: DIR/artifacts.zip and\n"
							"DIR/<artifactIdentifier>.zip (default: the build's directory)"},
	{"artifacts-packaging", 0, "ZIP|NONE", FN(opt_packaging), "ZIP (default) or NONE (plain directories)"},
	{"reports", 0, "DIR", FIELD(reports_dir), "also write each report group's API JSON (Report,\n"
						  "TestCase, CodeCoverage) and raw files to DIR/<group>/"},
	{"sandbox", 0, "MODE", FN(opt_sandbox), "namespaces (default): every command runs in Linux\n"
						"namespaces on a throw-away copy-on-write root; none: run\n"
						"directly on this machine, unisolated (said in the log)"},
	{"network", 0, "MODE", FN(opt_network), "default: the build's own network namespace, outbound\n"
						"through a user-space NAT (slirp4netns), without this\n"
						"machine's loopback services; host: this machine's\n"
						"network, shared (reaches its loopback services, e.g. a\n"
						"server on 127.0.0.1); none: loopback only"},
	{"mount", 0, "SRC:DST[:ro]", FN(opt_mount),
	 "show the build the host's SRC (a directory or a file; it\n"
	 "must exist) at DST (absolute; not under /proc, /sys, /dev\n"
	 "or /codebuild), read-write (changes reach the host) or\n"
	 "with :ro read-only (repeatable).  The sandbox hides the\n"
	 "host's private data (/root, /home, /tmp, /run, ...):\n"
	 "this is how a build gets some of it, on purpose"},
	{"privileged", 0, NULL, FIELD(privileged),
	 "privilegedMode: the build's root keeps every capability,\n"
	 "without seccomp filter, /proc/sys writable (docker-in-docker);\n"
	 "by default it has a container's default capabilities and\n"
	 "seccomp profile"},
	{"source-mode", 0, "MODE", FN(opt_source_mode),
	 "snapshot (default): the build sees a copy-on-write view of\n"
	 "DIR and can never change it, without the files git ignores\n"
	 "(as a cloud build of a push); all: the same view with the\n"
	 "ignored files; mount: DIR itself, read-write"},
	{"git-tracked-only", 0, NULL, FIELD(git_tracked_only), "show the build only what a clone of HEAD would contain"},
	{"remote", 0, "PROJECT", FN(opt_remote),
	 "run the build on CodeBuild instead, in PROJECT: the local\n"
	 "buildspec as buildspecOverride, HEAD as sourceVersion (it\n"
	 "must be pushed), -e values as overrides; the log streams\n"
	 "live, Ctrl-C stops the remote build, the exit status is\n"
	 "run's (--region, --profile, --endpoint-url)"},
	{"endpoint-url", 0, "URL", FN(opt_endpoint), "--remote: the API's URL (e.g. a codebuild-local serve)"},
	{"profile", 0, "NAME", FN(opt_profile), "--remote: the AWS profile whose keys sign the calls"},
	{"webhook-event", 0, "EVENT", FN(opt_wh_event),
	 "run as a webhook would start the build: PUSH,\n"
	 "PULL_REQUEST_CREATED (_UPDATED, _REOPENED, _MERGED, _CLOSED),\n"
	 "RELEASED, PRERELEASED; sets CODEBUILD_WEBHOOK_* and\n"
	 "CODEBUILD_SOURCE_VERSION as the service does"},
	{"head-ref", 0, "REF", FN(opt_wh_head), "the event's head: a branch (refs/heads/X) or tag (refs/tags/X)"},
	{"base-ref", 0, "REF", FN(opt_wh_base), "a pull request's base branch"},
	{"pr", 0, "N", FN(opt_wh_pr), "a pull request's number (source version pr/N)"},
	{"actor-account-id", 0, "ID", FN(opt_wh_actor), "the account id of who triggered the event"},
	{"commit-message", 0, "MSG", FN(opt_wh_msg), "the head commit's message (default: from DIR's git)"},
	{"prev-commit", 0, "SHA", FN(opt_wh_prev),
	 "CODEBUILD_WEBHOOK_PREV_COMMIT (default, from DIR's git: the\n"
	 "head's parent for a push, the merge base for a pull request)"},
	{"tag-name", 0, "TAG", FN(opt_wh_tag), "a release event's tag"},
	{"strict", 0, NULL, FIELD(strict), "buildspec warnings are errors"},
	{"json", 0, NULL, FN(opt_json), "stream events as JSON lines, ending with {\"build\": {...}}\n"
					"(a batch: each build's events with its \"identifier\",\n"
					"ending with {\"buildBatch\": {...}})"},
	{"batch-build", 0, "ID", FN(opt_batch_build), "a buildspec with batch: run its build ID alone (a\n"
						      "build-list / build-graph identifier, matrix_N, shard_N)"},
	{"no-batch", 0, NULL, FN(opt_no_batch), "run the top-level phases as one build, as StartBuild\n"
						"does, even when the buildspec has a batch"},
	{"max-parallel", 0, "N", FN(opt_max_parallel), "a batch: at most N builds at once (default: as many as\n"
						       "the machine's CPUs and memory hold, by compute type)"},
	{"combine-artifacts", 0, NULL, FN(opt_combine), "a batch: every build's artifacts in one zip,\n"
							"-a DIR/artifacts.zip, a folder per identifier\n"
							"(combineArtifacts); otherwise DIR/<identifier>/"},
	{"from-phase", 0, "PHASE", FN(opt_from_phase), "start at PHASE (PRE_BUILD, BUILD, POST_BUILD) on the newest\n"
							"checkpoint of the phases before it, above the working tree\n"
							"as it is now (or say why none matches)"},
	{"no-checkpoints", 0, NULL, FN(opt_no_checkpoints), "keep no checkpoint at the end of each phase"},
	{"checkpoint-secrets", 0, NULL, FIELD(checkpoint_secrets),
	 "keep checkpoints even when the build has secrets"},
	{"debug", 'd', NULL, FIELD(debug), "debugging: a failing command (and codebuild-breakpoint) pauses\n"
					   "the build and opens a shell inside it at that point (without a\n"
					   "terminal: waits, saying how to attach); exit or codebuild-resume\n"
					   "goes on"},
	{"help", 'h', NULL, FN(opt_help), "this help"},
	/* a build started by StartBuild's launcher: everything else comes from
	 * DIR/launch.json */
	{"launched", 0, "DIR", FN(opt_launched), NULL},
	/* a build of a batch, run by the batch's scheduler (runner/batch.h) */
	{"batch-of", 0, "ARN", FN(opt_batch_of), NULL},
	{"batch-spec", 0, "FILE", FN(opt_batch_spec), NULL},
	/* a batch started by StartBuildBatch / RetryBuildBatch's launcher */
	{"batch-launched", 0, NULL, FN(opt_batch_launched), NULL},
	{"batch-retry", 0, "TYPE", FN(opt_batch_retry), NULL},
};

#define N_RUN_OPTS (ARRAY_SIZE(run_opts))

/* The usage, its option lines from run_opts: the help at column 27, on a
 * line of its own after a long option. */
static void print_usage(FILE *f)
{
	fputs(run_usage_head, f);
	for (size_t i = 0; i < N_RUN_OPTS; i++) {
		const run_opt *ro = &run_opts[i];
		if (!ro->help)
			continue;
		char head[64];
		int n = ro->short_name ? snprintf(head, sizeof(head), "  -%c, --%s", ro->short_name, ro->name)
				       : snprintf(head, sizeof(head), "      --%s", ro->name);
		if (ro->arg)
			n += snprintf(head + n, sizeof(head) - (size_t)n, " %s", ro->arg);
		fputs(head, f);
		if (n <= 25)
			fprintf(f, "%*s", 27 - n, "");
		else
			fprintf(f, "\n%27s", "");
		for (const char *h = ro->help; *h; h++) {
			fputc(*h, f);
			if (*h == '\n')
				fprintf(f, "%27s", "");
		}
		fputc('\n', f);
	}
	fputs(run_usage_tail, f);
}

static int opt_help(run_args *a, char *arg)
{
	(void)a;
	(void)arg;
	print_usage(stdout);
	return 1;
}

static int apply_opt(run_args *a, const run_opt *ro, char *arg)
{
	/* what a batch's scheduler adds to a launched build's command */
	static const char *const batch_added[] = {"launched", "batch-build", "batch-of", "json", "artifacts",
						  "artifacts-packaging", "batch-launched", "batch-retry",
						  "batch-spec", NULL};
	bool added = false;
	for (const char *const *n = batch_added; *n && !added; n++)
		added = !strcmp(*n, ro->name);
	if (!added)
		a->n_opts++;
	if (ro->fn)
		return ro->fn(a, arg);
	char *field = (char *)&a->o + ro->field;
	if (ro->arg)
		*(const char **)field = arg;
	else
		*(bool *)field = true;
	return 0;
}

/* getopt_long over run_opts: 0, -1 (usage error, said) or 1 (--help). */
static int parse_opts(run_args *a, int argc, char **argv)
{
	struct option longopts[N_RUN_OPTS + 1];
	char shorts[2 * N_RUN_OPTS + 1];
	size_t ns = 0;
	for (size_t i = 0; i < N_RUN_OPTS; i++) {
		longopts[i] = (struct option){run_opts[i].name, run_opts[i].arg ? required_argument : no_argument,
					      NULL, 256 + (int)i};
		if (run_opts[i].short_name) {
			shorts[ns++] = (char)run_opts[i].short_name;
			if (run_opts[i].arg)
				shorts[ns++] = ':';
		}
	}
	longopts[N_RUN_OPTS] = (struct option){NULL, 0, NULL, 0};
	shorts[ns] = '\0';
	int c, rc;
	optind = 1;
	while ((c = cli_getopt("run", argc, argv, shorts, longopts)) != -1) {
		const run_opt *ro = NULL;
		for (size_t i = 0; i < N_RUN_OPTS && !ro; i++)
			if (c == 256 + (int)i || (c < 256 && c == run_opts[i].short_name))
				ro = &run_opts[i];
		if (!ro)
			return -1; /* said in one line by cli_getopt */
		if ((rc = apply_opt(a, ro, optarg)))
			return rc;
	}
	return 0;
}

/* The source argument, git defaults and the environment variables. */
static int finish_opts(run_args *a, int argc, char **argv)
{
	cbl_error *err = NULL;
	bool any_git = false;
	if (argc - optind > 1)
		return cli_error("run takes one source directory, got %d arguments", argc - optind), -1;
	for (size_t i = 0; i < a->n_secondary; i++)
		any_git |= a->secondary[i].git_url != NULL;
	a->o.source_dir = optind < argc ? argv[optind] : ".";
	if (runner_source_is_url(a->o.source_dir)) {
		a->o.git_url = a->o.source_dir;
		a->o.source_dir = NULL;
		any_git = true;
	} else if (!any_git && (a->depth_set || a->o.fetch_submodules)) {
		return cli_error("--clone-depth and --fetch-submodules apply to a git URL source"), -1;
	}
	if (any_git && !a->depth_set)
		a->o.clone_depth = 1; /* CodeBuild's default git_clone_depth */
	a->o.secondary = a->secondary;
	a->o.n_secondary = a->n_secondary;
	a->o.debug_failures = a->o.debug; /* locally a failing command pauses too */
	a->o.checkpoints = !a->no_checkpoints && !a->o.no_cache;
	/* -e beats --env-file: the file first */
	cbl_strv file_env = CBL_STRV_INIT;
	if (a->env_file && cli_read_env_file(a->env_file, &file_env, &err) < 0) {
		cli_report(err);
		cbl_error_free(err);
		return -1;
	}
	for (size_t i = 0; i < a->env.n; i++)
		cbl_strv_push(&file_env, a->env.v[i]);
	cbl_strv_release(&a->env);
	a->env = file_env;
	a->o.env_overrides = (const char *const *)a->env.v;
	a->o.insecure_registries = a->insecure.n ? (const char *const *)a->insecure.v : NULL;
	a->o.mounts = a->mounts.n ? (const char *const *)a->mounts.v : NULL;
	if (cli_webhook_finish(&a->wh, a->o.source_dir, &a->o.source_version, &err) < 0) {
		cli_report_clear(&err);
		return -1;
	}
	if (a->wh.env.n) {
		a->o.webhook_env = (const char *const *)a->wh.env.v;
		if (!a->o.initiator)
			a->o.initiator = CLI_WEBHOOK_INITIATOR;
	}
	return 0;
}
typedef enum { OUT_PLAIN, OUT_TTY, OUT_JSON, OUT_NONE } out_mode;

typedef struct view {
	out_mode mode;
	int ready_fd;        /* --launched: "ok" once the first record is saved */
	bool batch_child;    /* --batch-of: the first line names the build */
	bool color;
	int64_t phase_start_us;
	/* the terminal view (OUT_TTY) */
	runner_phase_type phase; /* the phase started last */
	bool phase_shown;    /* its header is printed (it ran a command) */
	int errors_shown;    /* buildspec errors printed in this phase */
	/* the elapsed timer of a silent command: drawn by timer_main while
	 * nothing else prints; mu guards stdout and these fields */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t timer;
	bool timer_running, timer_stop;
	bool in_cmd;
	int64_t cmd_start_mono_us, last_out_mono_us;
	bool timer_shown;    /* the timer line is on the screen (no newline yet) */
	int64_t timer_secs;
	const char *home;    /* run --debug: where the build's socket is */
	pthread_t debug_thr; /* run --debug: the shell of a pause, on this terminal */
	bool debug_running;
} view;

static const char *c(const view *v, const char *code) { return v->color ? code : ""; }

static void print_json_event(const runner_event *ev)
{
	static const char *const kinds[] = {"log", "phase-start", "phase-end", "command-start",
					    "command-exit", "warning", "progress", "paused"};
	json_t *j = json_object();
	char ts[32];
	cbl_format_iso_time(ts, ev->time_us);
	json_object_set_new(j, "event", json_string(kinds[ev->kind]));
	json_object_set_new(j, "time", json_string(ts));
	json_object_set_new(j, "phase", json_string(runner_phase_name(ev->phase)));
	switch (ev->kind) {
	case RUNNER_EV_LOG:
		json_object_set_new(j, "line", json_string(ev->text));
		json_object_set_new(j, "agent", json_boolean(ev->agent));
		break;
	case RUNNER_EV_PHASE_END:
		json_object_set_new(j, "status", json_string(runner_status_name(ev->status)));
		json_object_set_new(j, "statusCode", json_string(ev->context_code));
		json_object_set_new(j, "message", json_string(ev->context_message));
		break;
	case RUNNER_EV_COMMAND_START:
		json_object_set_new(j, "command", json_string(ev->text));
		break;
	case RUNNER_EV_COMMAND_EXIT:
		json_object_set_new(j, "command", json_string(ev->text));
		json_object_set_new(j, "exitStatus", json_integer(ev->exit_status));
		break;
	case RUNNER_EV_WARNING:
		json_object_set_new(j, "message", json_string(ev->text));
		break;
	default:
		break;
	}
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	json_decref(j);
	fflush(stdout);
}

static bool user_phase(runner_phase_type p)
{
	return p >= RUNNER_PHASE_DOWNLOAD_SOURCE && p <= RUNNER_PHASE_UPLOAD_ARTIFACTS;
}

/* --launched: the launcher waits on fd 3 for "ok" (the build's first record
 * is saved: the runner's first line comes after it) or "error: <message>". */
static void launched_say(view *v, const char *what, const char *msg)
{
	if (v->ready_fd < 0)
		return;
	dprintf(v->ready_fd, "%s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
	close(v->ready_fd);
	v->ready_fd = -1;
}

/* An agent line without its "[Container] <date> <time> " prefix. */
static const char *agent_text(const char *t)
{
	if (strncmp(t, "[Container] ", 12))
		return t;
	const char *p = t + 12;
	for (int i = 0; i < 2 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? p : t;
}

/* Redraws the timer line of a command silent for more than 2 s (called
 * with v->mu held).  Called from the timer thread too: no stdio, no
 * allocation (the runner clones its sandbox from the main thread, and a
 * clone must not inherit a lock this thread holds). */
static void timer_draw(view *v)
{
	int64_t now = cbl_mono_us();
	if (!v->in_cmd || now - v->last_out_mono_us <= 2000000)
		return;
	int64_t secs = (now - v->cmd_start_mono_us) / 1000000;
	if (v->timer_shown && secs == v->timer_secs)
		return;
	char line[64];
	int n = snprintf(line, sizeof(line), "\r\033[K    %s\u2026 %llds%s", c(v, "\033[2m"), (long long)secs,
			 c(v, "\033[0m"));
	if (n > 0 && write(1, line, (size_t)n) == n) {
		v->timer_shown = true;
		v->timer_secs = secs;
	}
}

/* The timer line leaves the screen before anything else prints; at the
 * command's end (final) it stays, with the command's whole time. */
static void timer_clear(view *v, bool final)
{
	if (!v->timer_shown)
		return;
	if (final)
		printf("\r\033[K    %s\u2026 %.1fs%s\n", c(v, "\033[2m"),
		       (double)(cbl_mono_us() - v->cmd_start_mono_us) / 1e6, c(v, "\033[0m"));
	else
		fputs("\r\033[K", stdout);
	v->timer_shown = false;
}

static void *timer_main(void *payload)
{
	view *v = payload;
	pthread_mutex_lock(&v->mu);
	while (!v->timer_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&v->cv, &v->mu, &ts);
		if (!v->timer_stop)
			timer_draw(v);
	}
	pthread_mutex_unlock(&v->mu);
	return NULL;
}

/* The timer thread of the terminal view, all signals blocked (they are the
 * main thread's: SIGINT stops the build). */
static void timer_start(view *v)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	v->timer_running = pthread_create(&v->timer, NULL, timer_main, v) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void timer_stop(view *v)
{
	if (!v->timer_running)
		return;
	pthread_mutex_lock(&v->mu);
	v->timer_stop = true;
	pthread_cond_signal(&v->cv);
	pthread_mutex_unlock(&v->mu);
	pthread_join(v->timer, NULL);
	v->timer_running = false;
}

/* A phase's header, printed once it has something to show. */
static void show_phase(view *v)
{
	if (v->phase_shown || !user_phase(v->phase))
		return;
	printf("%s▸ %s%s\n", c(v, "\033[1m"), runner_phase_name(v->phase), c(v, "\033[0m"));
	v->phase_shown = true;
}

static void tty_phase_end(view *v, const runner_event *ev)
{
	if (!user_phase(ev->phase))
		return;
	double secs = (double)(ev->time_us - v->phase_start_us) / 1e6;
	if (ev->status == RUNNER_STATUS_SUCCEEDED) {
		/* a phase without commands is not shown at all */
		if (v->phase_shown)
			printf("%s✓ %s%s %.2fs\n", c(v, "\033[32m"), runner_phase_name(ev->phase), c(v, "\033[0m"),
			       secs);
		return;
	}
	/* the buildspec errors are on the screen already: the context's
	 * message is the first of them */
	bool said = v->errors_shown && !strcmp(ev->context_code, "YAML_FILE_ERROR");
	printf("%s✗ %s %s%s %.2fs  %s%s%s\n", c(v, "\033[31;1m"), runner_phase_name(ev->phase),
	       runner_status_name(ev->status), c(v, "\033[0m"), secs, ev->context_code,
	       *ev->context_code && !said ? ": " : "", said ? "" : ev->context_message);
}

/* A warning; a buildspec warning ("file:1:2: warning: msg") says
 * "warning" once. */
static void tty_warning(view *v, const char *text)
{
	const char *w = strstr(text, ": warning: ");
	printf("  %swarning:%s ", c(v, "\033[33m"), c(v, "\033[0m"));
	if (w)
		printf("%.*s: %s\n", (int)(w - text), text, w + 11);
	else
		printf("%s\n", text);
}

/* The terminal view: the phases that run commands (and a failing one),
 * commands, their output, warnings and buildspec errors once each; agent
 * lines stay in the log. */
static void tty_event(view *v, const runner_event *ev)
{
	switch (ev->kind) {
	case RUNNER_EV_PHASE_START:
		v->phase_start_us = ev->time_us;
		v->phase = ev->phase;
		v->phase_shown = false;
		v->errors_shown = 0;
		break;
	case RUNNER_EV_PHASE_END:
		tty_phase_end(v, ev);
		break;
	case RUNNER_EV_COMMAND_START: {
		show_phase(v);
		/* multi-line commands: continuation lines indented under the first */
		printf("  %s$ ", c(v, "\033[36m"));
		for (const char *t = ev->text; *t; t++) {
			putchar(*t);
			if (*t == '\n' && t[1])
				fputs("    ", stdout);
		}
		printf("%s\n", c(v, "\033[0m"));
		v->in_cmd = true;
		v->cmd_start_mono_us = v->last_out_mono_us = cbl_mono_us();
		break;
	}
	case RUNNER_EV_COMMAND_EXIT:
		timer_clear(v, true);
		v->in_cmd = false;
		if (ev->exit_status)
			printf("  %s✗ exit status %d%s\n", c(v, "\033[31m"), ev->exit_status, c(v, "\033[0m"));
		break;
	case RUNNER_EV_LOG:
		if (!ev->agent && *ev->text) {
			show_phase(v);
			printf("    %s\n", ev->text);
			v->last_out_mono_us = cbl_mono_us();
		} else if (ev->agent && strstr(ev->text, ": error: ")) {
			printf("  %s%s%s\n", c(v, "\033[31m"), agent_text(ev->text), c(v, "\033[0m"));
			v->errors_shown++;
		}
		break;
	case RUNNER_EV_WARNING:
		tty_warning(v, ev->text);
		break;
	case RUNNER_EV_PAUSED:
		printf("  %s⏸ paused: %s%s\n", c(v, "\033[33;1m"), ev->text, c(v, "\033[0m"));
		break;
	case RUNNER_EV_PROGRESS:
		/* one line rewritten in place until it is done */
		printf("\r\033[K  %s", ev->text);
		if (strstr(ev->text, "done.") || !strncmp(ev->text, "Submodule", 9))
			putchar('\n');
		break;
	}
}

static void *debug_main(void *payload)
{
	view *v = payload;
	cli_debug_terminal(v->home, runner_build_id(g_build));
	return NULL;
}

/* run --debug on a terminal: the pause's shell runs in a thread of its own
 * while the runner serves it (the runner prints nothing meanwhile). */
static void debug_shell(view *v)
{
	if (v->debug_running)
		pthread_join(v->debug_thr, NULL);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	v->debug_running = pthread_create(&v->debug_thr, NULL, debug_main, v) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_event(const runner_event *ev, void *payload)
{
	view *v = payload;
	if (ev->kind == RUNNER_EV_PAUSED && v->mode != OUT_NONE && v->mode != OUT_JSON && isatty(0) && isatty(1)) {
		if (v->mode == OUT_TTY) {
			pthread_mutex_lock(&v->mu);
			timer_clear(v, false);
			tty_event(v, ev);
			fflush(stdout);
			pthread_mutex_unlock(&v->mu);
		}
		fflush(stdout);
		debug_shell(v);
		return;
	}
	if (v->mode == OUT_NONE) {
		if (ev->kind == RUNNER_EV_LOG)
			launched_say(v, "ok", NULL);
		return;
	}
	if (v->mode == OUT_JSON) {
		print_json_event(ev);
		return;
	}
	if (ev->kind == RUNNER_EV_PROGRESS && v->mode != OUT_TTY)
		return;
	if (v->mode == OUT_PLAIN) {
		if (ev->kind == RUNNER_EV_LOG) {
			fputs(ev->text, stdout);
			fputc('\n', stdout);
			fflush(stdout);
		}
		return;
	}
	pthread_mutex_lock(&v->mu);
	/* the timer line goes before anything else prints; a command's end
	 * keeps it, final */
	bool quiet_log = ev->kind == RUNNER_EV_LOG && (ev->agent ? !strstr(ev->text, ": error: ") : !*ev->text);
	if (ev->kind != RUNNER_EV_COMMAND_EXIT && !quiet_log)
		timer_clear(v, false);
	tty_event(v, ev);
	fflush(stdout);
	pthread_mutex_unlock(&v->mu);
}

/* The end-of-run summary: one line per report group, then what failed. */
static void print_reports(FILE *f, json_t *reports, const view *v)
{
	size_t i;
	json_t *r;
	json_array_foreach(reports, i, r)
	{
		const char *status = cbl_json_str(r, "status");
		bool good = status && !strcmp(status, "SUCCEEDED");
		fprintf(f, "Report %s%s%s %s: %s\n", v->color ? "\033[1m" : "",
			cbl_json_str(r, "name"), v->color ? "\033[0m" : "",
			status ? status : "?", cbl_json_str(r, "summary"));
		json_t *why = json_object_get(r, "statusReason");
		if (why)
			fprintf(f, "  %s\n", json_string_value(why));
		size_t k;
		json_t *c;
		json_t *failing = json_object_get(r, "failingCases");
		json_array_foreach(failing, k, c)
		{
			if (k == 20) {
				fprintf(f, "  ... and %zu more\n", json_array_size(failing) - 20);
				break;
			}
			const char *prefix = cbl_json_str(c, "prefix");
			const char *loc = cbl_json_str(c, "location");
			const char *msg = cbl_json_str(c, "message");
			fprintf(f, "  %s%s %s%s%s%s%s\n", good ? "" : (v->color ? "\033[31m" : ""),
				cbl_json_str(c, "status"), prefix && *prefix ? prefix : "",
				prefix && *prefix ? "." : "", cbl_json_str(c, "name"),
				v->color ? "\033[0m" : "", "");
			if (loc)
				fprintf(f, "    at %s\n", loc);
			if (msg && *msg) {
				/* first line of the message only */
				const char *nl = strchr(msg, '\n');
				fprintf(f, "    %.*s\n", (int)(nl ? nl - msg : (long)strlen(msg)), msg);
			}
		}
	}
}

static int exit_code_for(runner_build *b)
{
	if (runner_build_spec_invalid(b))
		return CLI_EXIT_USAGE;
	switch (runner_build_status(b)) {
	case RUNNER_STATUS_SUCCEEDED:
		return CLI_EXIT_OK;
	case RUNNER_STATUS_FAILED:
		return CLI_EXIT_FAILED;
	case RUNNER_STATUS_TIMED_OUT:
		return CLI_EXIT_TIMED_OUT;
	case RUNNER_STATUS_STOPPED:
		return CLI_EXIT_STOPPED;
	default:
		return CLI_EXIT_FAULT;
	}
}

/* After the build: the final record (--json) or the summary. */
static void print_result(runner_build *b, view *v)
{
	if (v->mode == OUT_NONE) {
		launched_say(v, "ok", NULL);
		return;
	}
	if (v->mode == OUT_JSON) {
		json_t *wrap = json_object();
		json_object_set(wrap, "build", runner_build_record(b));
		char *s = json_dumps(wrap, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(wrap);
		return;
	}
	FILE *f = v->mode == OUT_TTY ? stdout : stderr;
	const char *st = runner_status_name(runner_build_status(b));
	bool good = runner_build_status(b) == RUNNER_STATUS_SUCCEEDED;
	json_t *rec = runner_build_record(b);
	double secs = json_real_value(json_object_get(rec, "endTime")) -
		      json_real_value(json_object_get(rec, "startTime"));
	fprintf(f, "%sBuild %s %s%s in %.2fs\n", v->color ? (good ? "\033[32;1m" : "\033[31;1m") : "",
		runner_build_id(b), st, v->color ? "\033[0m" : "", secs);
	print_reports(f, runner_build_reports(b), v);
	char *usage = runner_build_usage_text(b);
	if (usage)
		fputs(usage, f);
	free(usage);
	fprintf(f, "Record: %s/build.json\nLog:    %s\n", runner_build_dir(b), runner_build_log_path(b));
}

/* Runs the build of o, its events shown through v; the exit code.  With
 * record / log_path, the final record and the log's path (caller frees). */
static int run_build(runner_opts *o, view *v, json_t **record, char **log_path)
{
	runner_build *b = NULL;
	cbl_error *err = NULL;
	int rc;
	o->on_event = on_event;
	o->payload = v;
	if (runner_build_new(&b, o, &err) < 0) {
		launched_say(v, "error", err->msg);
		cli_report(err);
		rc = err->code == CBL_EINVAL || err->code == CBL_ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_FAULT;
		goto out;
	}
	g_build = b;
	if (v->batch_child) {
		/* the batch's scheduler learns the build's id before its end */
		json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "event", "batch-build", "id", runner_build_id(b), "arn",
				      cbl_json_str(runner_build_record(b), "arn"), "log", runner_build_log_path(b));
		char *line = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		if (line)
			printf("%s\n", line);
		fflush(stdout);
		free(line);
		json_decref(j);
	}
	if (v->mode == OUT_TTY)
		timer_start(v);
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	v->home = o->home;
	int ran = runner_build_run(b, &err);
	timer_stop(v);
	if (v->debug_running)
		pthread_join(v->debug_thr, NULL);
	v->debug_running = false;
	if (ran < 0) {
		launched_say(v, "error", err->msg);
		cli_report(err);
		rc = CLI_EXIT_FAULT;
		goto out;
	}
	rc = exit_code_for(b);
	print_result(b, v);
	if (record)
		*record = json_incref(runner_build_record(b));
	if (log_path)
		*log_path = cbl_xstrdup(runner_build_log_path(b));
	g_build = NULL;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
out:
	fflush(stdout);
	g_build = NULL;
	runner_build_free(b);
	cbl_error_free(err);
	return rc;
}

/* run --launched DIR: the options StartBuild's launcher kept in DIR
 * (runner/launch.h); it waits on fd 3 for the outcome of the start. */
static int launched_opts(run_args *a, runner_launch_mem *mem, view *v, int argc)
{
	cbl_error *err = NULL;
	v->mode = OUT_NONE;
	v->ready_fd = 3;
	if (a->n_opts || optind < argc) {
		launched_say(v, "error", "--launched DIR takes no other options or arguments");
		cli_error("--launched DIR takes no other options or arguments");
		return -1;
	}
	if (runner_launch_load(&a->o, mem, a->launched, &err) < 0) {
		launched_say(v, "error", err->msg);
		cli_report(err);
		cbl_error_free(err);
		return -1;
	}
	return 0;
}

/* run --remote PROJECT: the build goes to the API (cli/cmd_remote.c). */
static int remote_opts(run_args *a, int argc, char **argv)
{
	if (!a->remote)
		return cli_error("--endpoint-url and --profile go with --remote PROJECT"), CLI_EXIT_USAGE;
	if (argc - optind > 1)
		return cli_error("run takes one source directory, got %d arguments", argc - optind), CLI_EXIT_USAGE;
	cli_remote r = {.project = a->remote, .region = a->o.region, .endpoint = a->endpoint, .profile = a->profile,
			.dir = optind < argc ? argv[optind] : ".", .buildspec = a->o.buildspec, .env = CBL_STRV_INIT};
	if (runner_source_is_url(r.dir))
		return cli_error("--remote builds the project's own source: give the local checkout, not a URL"),
		       CLI_EXIT_USAGE;
	cbl_error *err = NULL;
	if (a->env_file && cli_read_env_file(a->env_file, &r.env, &err) < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_USAGE;
	}
	for (size_t i = 0; i < a->env.n; i++)
		cbl_strv_push(&r.env, a->env.v[i]);
	int rc = cli_remote_run(&r);
	cbl_strv_release(&r.env);
	return rc;
}

int cli_run_opts(runner_opts *o, bool quiet, json_t **record, char **log_path)
{
	view v = {.ready_fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	v.mode = quiet ? OUT_NONE : (isatty(1) ? OUT_TTY : OUT_PLAIN);
	v.color = v.mode == OUT_TTY && !getenv("NO_COLOR");
	return run_build(o, &v, record, log_path);
}


/* A batch (runner/batch.h): its builds run as this command again, with
 * the same arguments (as given: option parsing changes some). */
static int run_batch(run_args *a, char **orig, int argc, view *v)
{
	char *exe = realpath("/proc/self/exe", NULL);
	if (!exe) {
		cli_error("cannot find this program");
		return CLI_EXIT_FAULT;
	}
	cbl_strv child = CBL_STRV_INIT;
	cbl_strv_push(&child, exe);
	cbl_strv_push(&child, "run");
	for (int i = 1; i < argc; i++)
		cbl_strv_push(&child, orig[i]);
	free(exe);
	runner_batch_opts bo = {.build = &a->o, .child_argv = (const char *const *)child.v,
				.max_parallel = a->max_parallel, .combine_artifacts = a->combine};
	int mode = v->mode == OUT_JSON ? RUN_BATCH_JSON : v->mode == OUT_TTY ? RUN_BATCH_TTY : RUN_BATCH_PLAIN;
	int rc = cli_run_batch(&bo, mode, -1);
	cbl_strv_release(&child);
	return rc;
}

/* run --launched DIR --batch-launched: a batch StartBuildBatch started
 * (runner/launch.h); its builds are `run --launched DIR --batch-build ID`. */
static int run_launched_batch(run_args *a, runner_launch_mem *mem)
{
	char *exe = realpath("/proc/self/exe", NULL);
	runner_batch_mem bmem = RUNNER_BATCH_MEM_INIT;
	runner_batch_opts bo = {.build = &a->o, .uuid = a->o.uuid, .number = a->o.number};
	json_t *prior = NULL;
	cbl_error *err = NULL;
	const char *slash = strrchr(a->launched, '/');
	char *id = NULL;
	int rc = CLI_EXIT_FAULT;
	if (!exe || !slash || !a->o.uuid) {
		dprintf(3, "error: not a batch's directory\n");
		goto out;
	}
	/* <home>/batches/<project>/<uuid> */
	const char *p = slash;
	while (p > a->launched && p[-1] != '/')
		p--;
	id = cbl_xasprintf("%.*s:%s", (int)(slash - p), p, slash + 1);
	if (runner_batch_launched_opts(&bo, &bmem, mem->doc, a->o.home, id, a->batch_retry, &prior, &err) < 0) {
		dprintf(3, "error: %s\n", err->msg);
		goto out;
	}
	const char *child[] = {exe, "run", "--launched", a->launched, NULL};
	bo.child_argv = child;
	a->o.uuid = NULL;
	a->o.number = 0;
	rc = cli_run_batch(&bo, RUN_BATCH_NONE, 3);
out:
	cbl_error_free(err);
	json_decref(prior);
	runner_batch_mem_release(&bmem);
	free(id);
	free(exe);
	return rc;
}

/* --batch-build ID: that build of the batch, alone or for the batch. */
static int batch_build_opts(run_args *a, runner_batch_mem *bmem, view *v)
{
	cbl_error *err = NULL;
	if (a->launched) {
		/* the batch's launch document names the batch, not this build */
		a->o.uuid = NULL;
		a->o.number = 0;
	}
	if (runner_batch_build_opts(&a->o, bmem, a->batch_build, a->batch_of, a->batch_spec, &err) < 0) {
		cli_report(err);
		cbl_error_free(err);
		return -1;
	}
	if (a->batch_of) {
		v->batch_child = true;
		v->mode = OUT_JSON;
		v->ready_fd = -1;
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	run_args a = {.o = RUNNER_OPTS_INIT, .env = CBL_STRV_INIT, .insecure = CBL_STRV_INIT, .mounts = CBL_STRV_INIT};
	runner_launch_mem mem = RUNNER_LAUNCH_MEM_INIT;
	runner_batch_mem bmem = RUNNER_BATCH_MEM_INIT;
	view v = {.ready_fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	cbl_strv orig = CBL_STRV_INIT;
	for (int i = 0; i < argc; i++)
		cbl_strv_push(&orig, argv[i]);
	int rc = parse_opts(&a, argc, argv);
	if (rc) {
		rc = rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		goto out;
	}
	if (a.remote || a.endpoint || a.profile) {
		rc = remote_opts(&a, argc, argv);
		goto out;
	}
	if (a.launched) {
		/* a batch's scheduler gives its builds their artifacts' place */
		const char *art = a.o.artifacts_dir;
		bool none = a.o.packaging_none;
		rc = launched_opts(&a, &mem, &v, argc);
		if (!rc && a.batch_of) {
			a.o.artifacts_dir = art ? art : a.o.artifacts_dir;
			a.o.packaging_none |= none;
		}
	} else {
		rc = finish_opts(&a, argc, argv);
		v.mode = a.json ? OUT_JSON : (isatty(1) ? OUT_TTY : OUT_PLAIN);
	}
	if (!rc && a.batch_build)
		rc = batch_build_opts(&a, &bmem, &v);
	if (rc) {
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	v.color = v.mode == OUT_TTY && !getenv("NO_COLOR");
	if (a.launched && a.batch_launched)
		rc = run_launched_batch(&a, &mem);
	else if (!a.batch_build && !a.no_batch && !a.launched && runner_batch_detect(&a.o))
		rc = run_batch(&a, orig.v, argc, &v);
	else
		rc = run_build(&a.o, &v, NULL, NULL);
out:
	fflush(stdout);
	runner_launch_mem_release(&mem);
	runner_batch_mem_release(&bmem);
	cbl_strv_release(&orig);
	cbl_strv_release(&a.env);
	cbl_strv_release(&a.insecure);
	cbl_strv_release(&a.mounts);
	cli_webhook_release(&a.wh);
	free(a.secondary);
	return rc;
}
