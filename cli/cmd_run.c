/* cli/cmd_run.c - `codebuild-local run`: the main job. */
#include "cli/cli.h"
#include "runner/runner.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/time.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

static const char run_usage[] =
	"usage: codebuild-local run [options] [DIR | GIT-URL]\n"
	"\n"
	"Runs the buildspec of DIR (default: the current directory), or of a shallow clone\n"
	"of GIT-URL (https://, http://, ssh://, git@host:path, file://), through CodeBuild's\n"
	"phases (DOWNLOAD_SOURCE, INSTALL, PRE_BUILD, BUILD, POST_BUILD, UPLOAD_ARTIFACTS)\n"
	"with CodeBuild's command model, environment variables and log format.\n"
	"\n"
	"options:\n"
	"  -b, --buildspec FILE     buildspec path, relative to DIR (default buildspec.yml)\n"
	"  -e, --env NAME=VALUE     environment variable override (repeatable; beats the\n"
	"                           project and the buildspec)\n"
	"      --env-file FILE      NAME=VALUE lines ('#' comments), like docker's --env-file\n"
	"      --secrets-file FILE  offline values for parameter-store and secrets-manager:\n"
	"                           {\"parameter-store\": {NAME: VALUE},\n"
	"                            \"secrets-manager\": {SECRET_ID: SECRET_STRING}}\n"
	"      --project NAME       project name (default: DIR's name)\n"
	"  -i, --image IMAGE        the build image: host (default), a curated name, a registry\n"
	"                           reference or a root filesystem directory\n"
	"      --insecure-registry HOST\n"
	"                           plain HTTP for that registry (loopback needs none; repeatable)\n"
	"      --compute-type TYPE  compute type (default BUILD_GENERAL1_SMALL); when given, the\n"
	"                           sandbox enforces its memory and process limits (cgroups)\n"
	"                           and always shows the build its vCPUs\n"
	"      --source-version V   git: the branch, tag, commit, pr/N, refs/pull/N/head or\n"
	"                           branch^{SHA} to build (default: the default branch);\n"
	"                           also CODEBUILD_SOURCE_VERSION\n"
	"      --clone-depth N      git: history depth, like git_clone_depth (default 1; 0 = full)\n"
	"      --fetch-submodules   git: clone submodules too\n"
	"      --secondary-source ID=DIR|URL[@VERSION]\n"
	"                           a secondary source (repeatable), at CODEBUILD_SRC_DIR_ID;\n"
	"                           every source then sits in .../src/s3/NN as on the service\n"
	"                           (the primary in s3/00)\n"
	"      --no-cache           neither restore nor save the buildspec's cache\n"
	"      --cache-dir DIR      the cache store (default: $CODEBUILD_LOCAL_HOME/cache)\n"
	"      --source-cache       git: LOCAL_SOURCE_CACHE: keep each repository's objects in\n"
	"                           the cache store (DIR/git) so later clones fetch only what\n"
	"                           is new (not with --no-cache)\n"
	"      --region REGION      AWS_REGION of the build (default us-east-1)\n"
	"      --timeout T          build timeout: minutes (CodeBuild's unit), or 90s, 2m, 1h\n"
	"                           (default 60 minutes)\n"
	"  -a, --artifacts DIR      write artifacts to DIR: DIR/artifacts.zip and\n"
	"                           DIR/<artifactIdentifier>.zip (default: the build's directory)\n"
	"      --artifacts-packaging ZIP|NONE\n"
	"                           ZIP (default) or NONE (plain directories)\n"
	"      --reports DIR        also write each report group's API JSON (Report,\n"
	"                           TestCase, CodeCoverage) and raw files to DIR/<group>/\n"
	"      --sandbox MODE       namespaces (default): every command runs in Linux\n"
	"                           namespaces on a throw-away copy-on-write root; none: run\n"
	"                           directly on this machine, unisolated (said in the log)\n"
	"      --network MODE       default (the host's network) or none (loopback only)\n"
	"      --source-mode MODE   snapshot (default): the build sees a copy-on-write view of\n"
	"                           DIR and can never change it; mount: DIR itself, read-write\n"
	"      --git-tracked-only   show the build only what a clone of HEAD would contain\n"
	"      --strict             buildspec warnings are errors\n"
	"      --json               stream events as JSON lines, ending with {\"build\": {...}}\n"
	"  -h, --help               this help\n"
	"\n"
	"Output: on a terminal, a compact progress view (NO_COLOR disables colour); piped,\n"
	"the plain CodeBuild log.  The build record and log are stored under\n"
	"$CODEBUILD_LOCAL_HOME (default ~/.local/share/codebuild-local)/builds/PROJECT/UUID/.\n"
	"\n"
	"Exit status: 0 SUCCEEDED, 1 FAILED, 2 usage error or invalid buildspec, 3 FAULT,\n"
	"4 TIMED_OUT, 5 STOPPED.\n";

enum { OPT_ENV_FILE = 256, OPT_SECRETS, OPT_PROJECT, OPT_COMPUTE, OPT_SRCVER, OPT_REGION,
       OPT_TIMEOUT, OPT_STRICT, OPT_JSON, OPT_PACKAGING, OPT_REPORTS, OPT_SANDBOX, OPT_NETWORK, OPT_SOURCE_MODE, OPT_TRACKED, OPT_DEPTH, OPT_SUBMODULES, OPT_SECONDARY,
       OPT_LAUNCHED, OPT_BUILD_UUID, OPT_BUILD_NUMBER, OPT_PROJECT_ENV, OPT_NO_CACHE, OPT_CACHE_DIR,
       OPT_NO_BUILDSPEC_CACHE, OPT_INSECURE_REGISTRY, OPT_SOURCE_CACHE };

static const struct option run_options[] = {
	{"buildspec", required_argument, NULL, 'b'},
	{"env", required_argument, NULL, 'e'},
	{"env-file", required_argument, NULL, OPT_ENV_FILE},
	{"secrets-file", required_argument, NULL, OPT_SECRETS},
	{"project", required_argument, NULL, OPT_PROJECT},
	{"image", required_argument, NULL, 'i'},
	{"compute-type", required_argument, NULL, OPT_COMPUTE},
	{"source-version", required_argument, NULL, OPT_SRCVER},
	{"region", required_argument, NULL, OPT_REGION},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"artifacts", required_argument, NULL, 'a'},
	{"artifacts-packaging", required_argument, NULL, OPT_PACKAGING},
	{"reports", required_argument, NULL, OPT_REPORTS},
	{"sandbox", required_argument, NULL, OPT_SANDBOX},
	{"network", required_argument, NULL, OPT_NETWORK},
	{"source-mode", required_argument, NULL, OPT_SOURCE_MODE},
	{"git-tracked-only", no_argument, NULL, OPT_TRACKED},
	{"clone-depth", required_argument, NULL, OPT_DEPTH},
	{"fetch-submodules", no_argument, NULL, OPT_SUBMODULES},
	{"secondary-source", required_argument, NULL, OPT_SECONDARY},
	{"no-cache", no_argument, NULL, OPT_NO_CACHE},
	{"no-buildspec-cache", no_argument, NULL, OPT_NO_BUILDSPEC_CACHE}, /* the launcher's */
	{"insecure-registry", required_argument, NULL, OPT_INSECURE_REGISTRY},
	{"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
	{"source-cache", no_argument, NULL, OPT_SOURCE_CACHE},
	/* used by StartBuild's launcher (runner/launch.c), not documented */
	{"launched", no_argument, NULL, OPT_LAUNCHED},
	{"build-uuid", required_argument, NULL, OPT_BUILD_UUID},
	{"build-number", required_argument, NULL, OPT_BUILD_NUMBER},
	{"project-env", required_argument, NULL, OPT_PROJECT_ENV},
	{"strict", no_argument, NULL, OPT_STRICT},
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

typedef enum { OUT_PLAIN, OUT_TTY, OUT_JSON, OUT_NONE } out_mode;

typedef struct view {
	out_mode mode;
	int ready_fd;        /* --launched: "ok" once the first record is saved */
	bool color;
	int64_t phase_start_us;
} view;

static runner_build *g_build; /* for the signal handler only */

static void on_signal(int sig)
{
	(void)sig;
	if (g_build)
		runner_build_stop(g_build);
}

static bool looks_like_url(const char *s)
{
	return strstr(s, "://") || (strchr(s, '@') && strchr(s, ':') && access(s, F_OK) < 0);
}

/* ID=DIR or ID=URL[@VERSION]; the version is an '@' after the URL's last '/'
 * (so user@host stays the URL's). */
static int parse_secondary(char *arg, runner_secondary_source *out)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1]) {
		cli_error("--secondary-source expects ID=DIR or ID=URL[@VERSION], got '%s'", arg);
		return -1;
	}
	*eq = '\0';
	out->id = arg;
	char *val = eq + 1;
	if (!looks_like_url(val)) {
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

static const char *c(const view *v, const char *code) { return v->color ? code : ""; }

static void print_json_event(const runner_event *ev)
{
	static const char *const kinds[] = {"log", "phase-start", "phase-end", "command-start",
					    "command-exit", "warning", "progress"};
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

static void on_event(const runner_event *ev, void *payload)
{
	view *v = payload;
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
	/* terminal view: phases, commands, their output; agent lines stay in the log */
	switch (ev->kind) {
	case RUNNER_EV_PHASE_START:
		v->phase_start_us = ev->time_us;
		if (user_phase(ev->phase))
			printf("%s▸ %s%s\n", c(v, "\033[1m"), runner_phase_name(ev->phase), c(v, "\033[0m"));
		break;
	case RUNNER_EV_PHASE_END:
		if (!user_phase(ev->phase))
			break;
		if (ev->status == RUNNER_STATUS_SUCCEEDED)
			printf("%s✓ %s%s %.2fs\n", c(v, "\033[32m"), runner_phase_name(ev->phase),
			       c(v, "\033[0m"), (double)(ev->time_us - v->phase_start_us) / 1e6);
		else
			printf("%s✗ %s %s%s %.2fs  %s%s%s\n", c(v, "\033[31;1m"),
			       runner_phase_name(ev->phase), runner_status_name(ev->status),
			       c(v, "\033[0m"), (double)(ev->time_us - v->phase_start_us) / 1e6,
			       ev->context_code, *ev->context_code ? ": " : "", ev->context_message);
		break;
	case RUNNER_EV_COMMAND_START: {
		/* multi-line commands: continuation lines indented under the first */
		printf("  %s$ ", c(v, "\033[36m"));
		for (const char *t = ev->text; *t; t++) {
			putchar(*t);
			if (*t == '\n' && t[1])
				fputs("    ", stdout);
		}
		printf("%s\n", c(v, "\033[0m"));
		break;
	}
	case RUNNER_EV_COMMAND_EXIT:
		if (ev->exit_status)
			printf("  %s✗ exit status %d%s\n", c(v, "\033[31m"), ev->exit_status, c(v, "\033[0m"));
		break;
	case RUNNER_EV_LOG:
		if (!ev->agent && *ev->text)
			printf("    %s\n", ev->text);
		else if (ev->agent && strstr(ev->text, ": error: "))
			printf("  %s%s%s\n", c(v, "\033[31m"), ev->text, c(v, "\033[0m"));
		break;
	case RUNNER_EV_WARNING:
		printf("  %swarning:%s %s\n", c(v, "\033[33m"), c(v, "\033[0m"), ev->text);
		break;
	case RUNNER_EV_PROGRESS:
		/* one line rewritten in place until it is done */
		printf("\r\033[K  %s", ev->text);
		if (strstr(ev->text, "done.") || !strncmp(ev->text, "Submodule", 9))
			putchar('\n');
		break;
	}
	fflush(stdout);
}

/* The end-of-run summary: one line per report group, then what failed. */
static void print_reports(FILE *f, json_t *reports, const view *v)
{
	size_t i;
	json_t *r;
	json_array_foreach(reports, i, r)
	{
		const char *status = json_string_value(json_object_get(r, "status"));
		bool good = status && !strcmp(status, "SUCCEEDED");
		fprintf(f, "Report %s%s%s %s: %s\n", v->color ? "\033[1m" : "",
			json_string_value(json_object_get(r, "name")), v->color ? "\033[0m" : "",
			status ? status : "?", json_string_value(json_object_get(r, "summary")));
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
			const char *prefix = json_string_value(json_object_get(c, "prefix"));
			const char *loc = json_string_value(json_object_get(c, "location"));
			const char *msg = json_string_value(json_object_get(c, "message"));
			fprintf(f, "  %s%s %s%s%s%s%s\n", good ? "" : (v->color ? "\033[31m" : ""),
				json_string_value(json_object_get(c, "status")), prefix && *prefix ? prefix : "",
				prefix && *prefix ? "." : "", json_string_value(json_object_get(c, "name")),
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

int cmd_run(int argc, char **argv)
{
	runner_opts o = RUNNER_OPTS_INIT;
	cbl_strv env = CBL_STRV_INIT;
	cbl_strv file_env = CBL_STRV_INIT;
	cbl_error *err = NULL;
	runner_build *b = NULL;
	view v = {0};
	bool json = false;
	int rc = CLI_EXIT_USAGE, opt;
	const char *env_file = NULL;
	bool depth_set = false;
	runner_secondary_source *secondary = NULL;
	size_t n_secondary = 0;
	bool any_git = false;
	bool launched = false;
	cbl_strv project_env = CBL_STRV_INIT;
	cbl_strv insecure = CBL_STRV_INIT;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "a:b:e:i:h", run_options, NULL)) != -1) {
		switch (opt) {
		case 'b': o.buildspec = optarg; break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				cli_error("-e expects NAME=VALUE, got '%s'", optarg);
				goto out;
			}
			cbl_strv_push(&env, optarg);
			break;
		case 'i': o.image = optarg; break;
		case 'a': o.artifacts_dir = optarg; break;
		case OPT_PACKAGING:
			if (!strcasecmp(optarg, "NONE")) {
				o.packaging_none = true;
			} else if (strcasecmp(optarg, "ZIP")) {
				cli_error("--artifacts-packaging takes ZIP or NONE, got '%s'", optarg);
				goto out;
			}
			break;
		case OPT_REPORTS: o.reports_dir = optarg; break;
		case OPT_SANDBOX:
			if (!strcmp(optarg, "none")) {
				o.sandbox = RUNNER_SANDBOX_NONE;
			} else if (strcmp(optarg, "namespaces")) {
				cli_error("--sandbox takes namespaces or none, got '%s'", optarg);
				goto out;
			}
			break;
		case OPT_TRACKED: o.git_tracked_only = true; break;
		case OPT_SUBMODULES: o.fetch_submodules = true; break;
		case OPT_LAUNCHED: launched = true; break;
		case OPT_NO_CACHE: o.no_cache = true; break;
		case OPT_NO_BUILDSPEC_CACHE: o.no_buildspec_cache = true; break;
		case OPT_INSECURE_REGISTRY: cbl_strv_push(&insecure, optarg); break;
		case OPT_CACHE_DIR: o.cache_dir = optarg; break;
		case OPT_SOURCE_CACHE: o.source_cache = true; break;
		case OPT_BUILD_UUID: o.uuid = optarg; break;
		case OPT_BUILD_NUMBER: o.number = strtoll(optarg, NULL, 10); break;
		case OPT_PROJECT_ENV:
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				cli_error("--project-env expects NAME=VALUE, got '%s'", optarg);
				goto out;
			}
			cbl_strv_push(&project_env, optarg);
			break;
		case OPT_SECONDARY:
			secondary = cbl_xrealloc(secondary, (n_secondary + 1) * sizeof(*secondary));
			memset(&secondary[n_secondary], 0, sizeof(*secondary));
			if (parse_secondary(optarg, &secondary[n_secondary]) < 0)
				goto out;
			any_git |= secondary[n_secondary].git_url != NULL;
			n_secondary++;
			break;
		case OPT_DEPTH: {
			char *end = NULL;
			long d = strtol(optarg, &end, 10);
			if (!*optarg || *end || d < 0 || d > 1000000) {
				cli_error("--clone-depth takes a number >= 0 (0 = full history), got '%s'", optarg);
				goto out;
			}
			o.clone_depth = (int)d;
			depth_set = true;
			break;
		}
		case OPT_SOURCE_MODE:
			if (!strcmp(optarg, "mount")) {
				o.source_mode = RUNNER_SOURCE_MOUNT;
			} else if (strcmp(optarg, "snapshot")) {
				cli_error("--source-mode takes snapshot or mount, got '%s'", optarg);
				goto out;
			}
			break;
		case OPT_NETWORK:
			if (!strcmp(optarg, "none")) {
				o.network_none = true;
			} else if (strcmp(optarg, "default")) {
				cli_error("--network takes default or none, got '%s'", optarg);
				goto out;
			}
			break;
		case OPT_ENV_FILE: env_file = optarg; break;
		case OPT_SECRETS: o.secrets_file = optarg; break;
		case OPT_PROJECT: o.project_name = optarg; break;
		case OPT_COMPUTE: o.compute_type = optarg; break;
		case OPT_SRCVER: o.source_version = optarg; break;
		case OPT_REGION: o.region = optarg; break;
		case OPT_TIMEOUT:
			if (cbl_parse_duration_ms(optarg, &o.timeout_ms, &err) < 0) {
				cli_report(err);
				goto out;
			}
			break;
		case OPT_STRICT: o.strict = true; break;
		case OPT_JSON: json = true; break;
		case 'h':
			fputs(run_usage, stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			fputs(run_usage, stderr);
			goto out;
		}
	}
	if (argc - optind > 1) {
		cli_error("run takes one source directory, got %d arguments", argc - optind);
		goto out;
	}
	o.source_dir = optind < argc ? argv[optind] : ".";
	if (looks_like_url(o.source_dir)) {
		o.git_url = o.source_dir;
		o.source_dir = NULL;
		any_git = true;
	} else if (!any_git && (depth_set || o.fetch_submodules)) {
		cli_error("--clone-depth and --fetch-submodules apply to a git URL source");
		goto out;
	}
	if (any_git && !depth_set)
		o.clone_depth = 1; /* CodeBuild's default git_clone_depth */
	o.secondary = secondary;
	o.n_secondary = n_secondary;
	if (env_file && cli_read_env_file(env_file, &file_env, &err) < 0) {
		cli_report(err);
		goto out;
	}
	/* -e beats --env-file: apply the file first */
	for (size_t i = 0; i < env.n; i++)
		cbl_strv_push(&file_env, env.v[i]);
	o.env_overrides = (const char *const *)file_env.v;

	o.project_env = (const char *const *)project_env.v;
	o.insecure_registries = insecure.n ? (const char *const *)insecure.v : NULL;
	v.ready_fd = -1;
	v.mode = json ? OUT_JSON : (isatty(1) ? OUT_TTY : OUT_PLAIN);
	if (launched) {
		v.mode = OUT_NONE;
		v.ready_fd = 3;
	}
	v.color = v.mode == OUT_TTY && !getenv("NO_COLOR");
	o.on_event = on_event;
	o.payload = &v;

	if (runner_build_new(&b, &o, &err) < 0) {
		launched_say(&v, "error", err->msg);
		cli_report(err);
		rc = err->code == CBL_EINVAL || err->code == CBL_ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_FAULT;
		goto out;
	}
	g_build = b;
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (runner_build_run(b, &err) < 0) {
		launched_say(&v, "error", err->msg);
		cli_report(err);
		rc = CLI_EXIT_FAULT;
		goto out;
	}
	rc = exit_code_for(b);
	if (v.mode == OUT_NONE) {
		launched_say(&v, "ok", NULL);
	} else if (v.mode == OUT_JSON) {
		json_t *wrap = json_object();
		json_object_set(wrap, "build", runner_build_record(b));
		char *s = json_dumps(wrap, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(wrap);
	} else {
		FILE *f = v.mode == OUT_TTY ? stdout : stderr;
		const char *st = runner_status_name(runner_build_status(b));
		bool good = runner_build_status(b) == RUNNER_STATUS_SUCCEEDED;
		json_t *rec = runner_build_record(b);
		double secs = json_real_value(json_object_get(rec, "endTime")) -
			      json_real_value(json_object_get(rec, "startTime"));
		fprintf(f, "%sBuild %s %s%s in %.2fs\n", v.color ? (good ? "\033[32;1m" : "\033[31;1m") : "",
			runner_build_id(b), st, v.color ? "\033[0m" : "", secs);
		if (runner_build_spec_invalid(b) && v.mode == OUT_TTY) {
			const spec_diags *d = runner_build_diags(b);
			for (size_t i = 0; i < d->n; i++) {
				cbl_buf line = CBL_BUF_INIT;
				spec_diag_format(d, &d->items[i], &line);
				fprintf(f, "%s\n", line.ptr);
				cbl_buf_release(&line);
			}
		}
		print_reports(f, runner_build_reports(b), &v);
		fprintf(f, "Record: %s/build.json\nLog:    %s\n", runner_build_dir(b),
			runner_build_log_path(b));
	}
	g_build = NULL;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
out:
	fflush(stdout);
	g_build = NULL;
	runner_build_free(b);
	cbl_error_free(err);
	cbl_strv_release(&env);
	cbl_strv_release(&file_env);
	cbl_strv_release(&project_env);
	cbl_strv_release(&insecure);
	free(secondary);
	return rc;
}
