/* cli/cmd_replay.c - `codebuild-local replay`: a CodeBuild build, reproduced
 * here (runner/replay.h), then compared with the cloud build. */
#include "cli/cli.h"
#include "remote/remote.h"
#include "runner/launch.h"
#include "runner/replay.h"
#include "runner/runner.h"
#include "source/source.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

static const char replay_usage[] =
	"usage: codebuild-local replay FILE|- [options]\n"
	"       codebuild-local replay --from-aws BUILD_ID [--region R] [--profile P]\n"
	"                              [--endpoint-url URL] [options]\n"
	"\n"
	"Reproduces a CodeBuild build here: FILE is what `aws codebuild batch-get-builds --ids ID`\n"
	"prints (or one Build object); --from-aws fetches the Build, its Project and its\n"
	"CloudWatch log itself (credentials: the environment, then ~/.aws profiles).  The local\n"
	"build gets the cloud build's source and exact commit, buildspec, image, compute type,\n"
	"privileged mode, environment variables, timeout, clone depth, submodules and secondary\n"
	"sources; then each phase is compared, and the first command whose outcome differs and\n"
	"the first differing output line (timestamps, ids and paths normalised) are named.\n"
	"\n"
	"options:\n"
	"  --id ID                   the build of FILE to replay (when it holds several)\n"
	"  --project FILE            what `aws codebuild batch-get-projects` prints (a buildspec\n"
	"                            kept in the project)\n"
	"  --source DIR              build this local checkout instead of fetching the source\n"
	"                            (its HEAD is checked against the cloud build's commit)\n"
	"  --log FILE                the cloud build's log (plain lines, or what `aws logs\n"
	"                            get-log-events` prints) for the comparison\n"
	"  --secrets-file FILE       parameter-store / secrets-manager values (run's format)\n"
	"  -i, --image IMAGE         build with this image instead (e.g. host)\n"
	"  --json                    no build output; print the comparison as JSON\n"
	"\n"
	"Exit status: the local build's, as for run (0 SUCCEEDED, 1 FAILED, ...); 2 when the\n"
	"build cannot be replayed.\n";

typedef struct replay_args {
	const char *file, *id, *project_file, *source, *log_file, *secrets_file, *image;
	const char *from_aws, *region, *profile, *endpoint;
	bool json;
} replay_args;

static const struct option longopts[] = {
	{"id", required_argument, NULL, 'I'},
	{"project", required_argument, NULL, 'p'},
	{"source", required_argument, NULL, 's'},
	{"log", required_argument, NULL, 'l'},
	{"secrets-file", required_argument, NULL, 'S'},
	{"image", required_argument, NULL, 'i'},
	{"from-aws", required_argument, NULL, 'A'},
	{"region", required_argument, NULL, 'r'},
	{"profile", required_argument, NULL, 'P'},
	{"endpoint-url", required_argument, NULL, 'E'},
	{"json", no_argument, NULL, 'j'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int parse(replay_args *a, int argc, char **argv)
{
	int c;
	optind = 1;
	while ((c = cli_getopt("replay", argc, argv, "i:h", longopts)) != -1) {
		switch (c) {
		case 'I': a->id = optarg; break;
		case 'p': a->project_file = optarg; break;
		case 's': a->source = optarg; break;
		case 'l': a->log_file = optarg; break;
		case 'S': a->secrets_file = optarg; break;
		case 'i': a->image = optarg; break;
		case 'A': a->from_aws = optarg; break;
		case 'r': a->region = optarg; break;
		case 'P': a->profile = optarg; break;
		case 'E': a->endpoint = optarg; break;
		case 'j': a->json = true; break;
		case 'h': fputs(replay_usage, stdout); return 1;
		default: return -1;
		}
	}
	if (optind < argc)
		a->file = argv[optind++];
	if (optind < argc)
		return cli_error("replay takes one FILE, got '%s' too", argv[optind]), -1;
	if (!a->file == !a->from_aws)
		return cli_error("replay needs one of FILE (or -) and --from-aws BUILD_ID"), -1;
	if (!a->from_aws && (a->region || a->profile || a->endpoint))
		return cli_error("--region, --profile and --endpoint-url go with --from-aws"), -1;
	return 0;
}

static void split_lines(cbl_strv *out, const char *data)
{
	for (const char *p = data; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		cbl_strv_push_take(out, cbl_xstrndup(p, n && p[n - 1] == '\r' ? n - 1 : n));
		p += n + (nl ? 1 : 0);
	}
}

static json_t *load_json(const char *path, cbl_error **err)
{
	json_t *j = NULL;
	if (strcmp(path, "-")) {
		cbl_json_load_file(&j, path, 0, NULL, err);
		return j;
	}
	json_error_t je;
	j = json_loadf(stdin, 0, &je);
	if (!j)
		cbl_error_set(err, CBL_EINVAL, "<stdin>:%d:%d: %s", je.line, je.column, je.text);
	return j;
}

/* A log: what `aws logs get-log-events` prints, or plain lines. */
static int load_log(const char *path, cbl_strv *out, cbl_error **err)
{
	char *data = NULL;
	size_t len = 0;
	int rc = cbl_read_file(path, 256u << 20, &data, &len, err);
	if (rc < 0)
		return rc;
	json_t *j = data[0] == '{' ? json_loads(data, 0, NULL) : NULL;
	if (j) {
		size_t i;
		json_t *ev;
		json_array_foreach(json_object_get(j, "events"), i, ev)
		{
			const char *m = json_string_value(json_object_get(ev, "message"));
			if (m) {
				size_t n = strlen(m);
				while (n && (m[n - 1] == '\n' || m[n - 1] == '\r'))
					n--;
				cbl_strv_push_take(out, cbl_xstrndup(m, n));
			}
		}
		json_decref(j);
	} else {
		split_lines(out, data);
	}
	free(data);
	return 0;
}

/* --from-aws: the Build, its Project and its log. */
static int fetch_aws(const replay_args *a, json_t **build, json_t **project, cbl_strv *log, bool *have_log,
		     cbl_error **err)
{
	remote_creds cr;
	remote_client *cl = NULL;
	json_t *req = NULL, *ans = NULL;
	int rc = remote_creds_load(&cr, a->profile, a->region, err);
	if (rc < 0)
		return rc;
	if ((rc = remote_client_new(&cl, &cr, a->endpoint, err)) < 0)
		goto out;
	req = json_pack("{s:[s]}", "ids", a->from_aws);
	if ((rc = remote_call(cl, "codebuild", "BatchGetBuilds", req, &ans, err)) < 0 ||
	    (rc = runner_replay_pick_build(ans, a->from_aws, build, err)) < 0)
		goto out;
	json_decref(req);
	json_decref(ans);
	ans = NULL;
	const char *pname = json_string_value(json_object_get(*build, "projectName"));
	req = json_pack("{s:[s]}", "names", pname ? pname : "");
	if (pname && remote_call(cl, "codebuild", "BatchGetProjects", req, &ans, NULL) == 0 &&
	    json_array_size(json_object_get(ans, "projects")))
		runner_replay_pick_project(ans, pname, project, NULL);
	json_decref(req);
	req = NULL;
	const json_t *logs = json_object_get(*build, "logs");
	const char *group = json_string_value(json_object_get(logs, "groupName"));
	const char *stream = json_string_value(json_object_get(logs, "streamName"));
	char *token = NULL;
	for (int page = 0; group && stream && page < 10000; page++) {
		json_decref(ans);
		ans = NULL;
		json_t *r = json_pack("{s:s, s:s, s:b}", "logGroupName", group, "logStreamName", stream, "startFromHead", 1);
		if (token)
			json_object_set_new(r, "nextToken", json_string(token));
		cbl_error *le = NULL;
		rc = remote_call(cl, "logs", "GetLogEvents", r, &ans, &le);
		json_decref(r);
		if (rc < 0) { /* no log (expired, never written): the rest is compared */
			fprintf(stderr, "codebuild-local: warning: the cloud build's log cannot be read (%s): it is "
					"not compared\n", le->msg);
			cbl_error_free(le);
			cbl_strv_release(log);
			*have_log = false;
			rc = 0;
			break;
		}
		*have_log = true;
		size_t i;
		json_t *ev;
		json_array_foreach(json_object_get(ans, "events"), i, ev)
		{
			const char *m = json_string_value(json_object_get(ev, "message"));
			size_t n = m ? strlen(m) : 0;
			while (n && (m[n - 1] == '\n' || m[n - 1] == '\r'))
				n--;
			if (m)
				cbl_strv_push_take(log, cbl_xstrndup(m, n));
		}
		const char *next = json_string_value(json_object_get(ans, "nextForwardToken"));
		bool same = !next || (token && !strcmp(token, next)) || !json_array_size(json_object_get(ans, "events"));
		free(token);
		token = next ? cbl_xstrdup(next) : NULL;
		if (same)
			break;
	}
	free(token);
out:
	json_decref(req);
	json_decref(ans);
	remote_client_free(cl);
	remote_creds_release(&cr);
	return rc < 0 ? rc : 0;
}

/* What the plan says before anything runs; secrets checked. */
static int announce(const replay_args *a, const json_t *build, const runner_replay_plan *p)
{
	FILE *f = a->json ? stderr : stdout;
	const char *id = json_string_value(json_object_get(build, "id"));
	const char *st = json_string_value(json_object_get(build, "buildStatus"));
	fprintf(f, "Replaying %s (%s in the cloud)%s%s\n", id ? id : "a build", st ? st : "status unknown",
		p->resolved ? " at " : "", p->resolved ? p->resolved : "");
	for (size_t i = 0; i < p->notes.n; i++)
		fprintf(f, "  note: %s\n", p->notes.v[i]);
	for (size_t i = 0; i < p->secret_names.n; i++)
		fprintf(f, "  secret: %s\n", p->secret_names.v[i]);
	cbl_strv missing = CBL_STRV_INIT;
	cbl_error *err = NULL;
	if (runner_replay_check_secrets(p, a->secrets_file, &missing, &err) < 0) {
		cli_report_clear(&err);
		return -1;
	}
	for (size_t i = 0; i < missing.n; i++)
		cli_error("%s is not in %s", missing.v[i], a->secrets_file);
	int rc = missing.n ? -1 : 0;
	cbl_strv_release(&missing);
	return rc;
}

/* --source DIR: built as it is, its HEAD checked against the cloud's commit. */
static void use_source(const replay_args *a, const runner_replay_plan *p, runner_opts *o)
{
	o->git_url = NULL;
	o->source_dir = a->source;
	source_history h = SOURCE_HISTORY_INIT;
	cbl_error *e = NULL;
	if (source_history_read(&h, a->source, NULL, NULL, &e) < 0) {
		fprintf(stderr, "codebuild-local: warning: %s: %s: cannot check it against the cloud build's commit\n",
			a->source, e->msg);
	} else if (p->resolved && strcmp(h.head_commit, p->resolved)) {
		fprintf(stderr,
			"codebuild-local: warning: %s is at %s, the cloud build ran %s: the comparison shows where "
			"they differ\n",
			a->source, h.head_commit, p->resolved);
	}
	cbl_error_free(e);
	source_history_release(&h);
}

static void print_side(const json_t *side)
{
	if (json_is_null(side) || !side) {
		printf("%-22s", "-");
		return;
	}
	const json_t *d = json_object_get(side, "durationInSeconds");
	char buf[64];
	snprintf(buf, sizeof(buf), "%s%s", json_string_value(json_object_get(side, "status")) ?: "-",
		 json_is_integer(d) ? "" : "");
	if (json_is_integer(d))
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " %llds", (long long)json_integer_value(d));
	printf("%-22s", buf);
}

static void print_cmd(const char *who, const json_t *c)
{
	if (json_is_null(c) || !c) {
		printf("  %s: (no such command)\n", who);
		return;
	}
	printf("  %s: [%s] %s -> exit status %lld\n", who, json_string_value(json_object_get(c, "phase")),
	       json_string_value(json_object_get(c, "command")),
	       (long long)json_integer_value(json_object_get(c, "exitStatus")));
}

static void print_comparison(const json_t *cmp)
{
	printf("\n%-18s%-22s%-22s\n", "PHASE", "CLOUD", "LOCAL");
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(cmp, "phases"), i, row)
	{
		printf("%-18s", json_string_value(json_object_get(row, "phaseType")));
		print_side(json_object_get(row, "cloud"));
		print_side(json_object_get(row, "local"));
		printf("%s\n", json_is_true(json_object_get(row, "same")) ? "" : "  <- differs");
	}
	const char *cs = json_string_value(json_object_get(json_object_get(cmp, "cloud"), "status"));
	const char *ls = json_string_value(json_object_get(json_object_get(cmp, "local"), "status"));
	printf("\n%s: the cloud build ended %s, the local one %s.\n",
	       json_is_true(json_object_get(cmp, "sameStatus")) ? "Reproduced" : "Not reproduced", cs ? cs : "?",
	       ls ? ls : "?");
	if (!json_is_true(json_object_get(cmp, "logCompared"))) {
		printf("No cloud log to compare with (give --log FILE, or use --from-aws).\n");
		return;
	}
	const json_t *dc = json_object_get(cmp, "firstDivergentCommand");
	if (json_is_null(dc)) {
		printf("Every command had the same outcome.\n");
	} else {
		printf("First divergent command (#%lld):\n", (long long)json_integer_value(json_object_get(dc, "index")));
		print_cmd("cloud", json_object_get(dc, "cloud"));
		print_cmd("local", json_object_get(dc, "local"));
	}
	const json_t *dl = json_object_get(cmp, "firstDivergentLine");
	if (json_is_null(dl)) {
		printf("The commands' output is the same.\n");
	} else {
		const char *c = json_string_value(json_object_get(dl, "cloud"));
		const char *l = json_string_value(json_object_get(dl, "local"));
		printf("First divergent output line (#%lld):\n  cloud: %s\n  local: %s\n",
		       (long long)json_integer_value(json_object_get(dl, "index")), c ? c : "(end of log)",
		       l ? l : "(end of log)");
	}
}

/* Maps the plan to run options and runs them; *record and *log_path for the comparison. */
static int run_plan(const replay_args *a, runner_replay_plan *p, json_t **record, char **log_path)
{
	runner_opts o = RUNNER_OPTS_INIT;
	runner_launch_mem mem = RUNNER_LAUNCH_MEM_INIT;
	cbl_error *err = NULL;
	char *home = store_default_home();
	char *tmp = cbl_path_join(home, "tmp");
	char *dir = NULL;
	int rc = CLI_EXIT_USAGE;
	if (cbl_mkdir_p(tmp, 0700, &err) < 0) {
		cli_report_clear(&err);
		goto out;
	}
	dir = cbl_path_join(tmp, "replay-XXXXXX");
	if (!mkdtemp(dir)) {
		cli_error("cannot create %s", dir);
		goto out;
	}
	runner_launch_info info = {.dir = dir, .home = home};
	if (runner_launch_opts(&o, &mem, p->project, p->request, &info, &err) < 0) {
		cli_report_clear(&err);
		goto out;
	}
	if (a->source)
		use_source(a, p, &o);
	if (a->image)
		o.image = a->image;
	o.secrets_file = a->secrets_file;
	o.webhook_env = p->event_env.n ? (const char *const *)p->event_env.v : NULL;
	rc = cli_run_opts(&o, a->json, record, log_path);
out:
	runner_launch_mem_release(&mem);
	if (dir) {
		cbl_error *e = NULL;
		cbl_rm_rf(dir, &e);
		cbl_error_free(e);
	}
	free(dir);
	free(tmp);
	free(home);
	return rc;
}

static int replay(const replay_args *a, json_t *build, json_t *project, const cbl_strv *cloud_log, bool have_log)
{
	runner_replay_plan p;
	cbl_error *err = NULL;
	if (runner_replay_plan_new(&p, build, project, &err) < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_USAGE;
	}
	json_t *record = NULL;
	char *log_path = NULL;
	int rc = announce(a, build, &p) < 0 ? CLI_EXIT_USAGE : run_plan(a, &p, &record, &log_path);
	if (record) {
		cbl_strv local_log = CBL_STRV_INIT;
		char *data = NULL;
		size_t len = 0;
		if (log_path && cbl_read_file(log_path, 256u << 20, &data, &len, &err) == 0)
			split_lines(&local_log, data);
		cbl_error_clear(&err);
		free(data);
		json_t *cmp = runner_replay_compare(build, have_log ? cloud_log : NULL, record, &local_log);
		if (a->json) {
			char *s = json_dumps(cmp, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
			puts(s);
			free(s);
		} else {
			print_comparison(cmp);
		}
		json_decref(cmp);
		cbl_strv_release(&local_log);
	}
	json_decref(record);
	free(log_path);
	runner_replay_plan_release(&p);
	return rc;
}

int cmd_replay(int argc, char **argv)
{
	replay_args a;
	memset(&a, 0, sizeof(a));
	int rc = parse(&a, argc, argv);
	if (rc)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	cbl_error *err = NULL;
	json_t *doc = NULL, *build = NULL, *project = NULL, *pdoc = NULL;
	cbl_strv log = CBL_STRV_INIT;
	bool have_log = false;
	rc = CLI_EXIT_USAGE;
	if (a.from_aws) {
		if (fetch_aws(&a, &build, &project, &log, &have_log, &err) < 0)
			goto fail;
	} else if (!(doc = load_json(a.file, &err)) || runner_replay_pick_build(doc, a.id, &build, &err) < 0) {
		goto fail;
	}
	if (a.project_file) {
		json_decref(project);
		project = NULL;
		if (!(pdoc = load_json(a.project_file, &err)) ||
		    runner_replay_pick_project(pdoc, json_string_value(json_object_get(build, "projectName")), &project,
					       &err) < 0)
			goto fail;
	}
	if (a.log_file) {
		cbl_strv_release(&log);
		if (load_log(a.log_file, &log, &err) < 0)
			goto fail;
		have_log = true;
	}
	rc = replay(&a, build, project, &log, have_log);
	goto out;
fail:
	cli_report_clear(&err);
out:
	json_decref(doc);
	json_decref(pdoc);
	json_decref(build);
	json_decref(project);
	cbl_strv_release(&log);
	return rc;
}
