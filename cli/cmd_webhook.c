/* cli/cmd_webhook.c - simulated webhook events: the flags `run --webhook-event`
 * shares, and `codebuild-local webhook test`, which evaluates a project's
 * webhook filter groups against an event offline. */
#include "cli/cli.h"
#include "runner/webhook.h"
#include "source/source.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/banned.h"

int cli_webhook_opt(cli_webhook *w, const char *flag, const char *arg)
{
	w->any = true;
	runner_webhook_event *ev = &w->ev;
	if (!strcmp(flag, "webhook-event") || !strcmp(flag, "event")) {
		ev->event = arg;
	} else if (!strcmp(flag, "head-ref")) {
		ev->head_ref = arg;
	} else if (!strcmp(flag, "base-ref")) {
		ev->base_ref = arg;
	} else if (!strcmp(flag, "pr")) {
		char *end = NULL;
		long n = strtol(arg, &end, 10);
		if (!*arg || *end || n <= 0)
			return cli_error("--pr takes a pull request number > 0, got '%s'", arg), -1;
		ev->pr = n;
	} else if (!strcmp(flag, "actor-account-id")) {
		ev->actor_account_id = arg;
	} else if (!strcmp(flag, "commit-message")) {
		ev->commit_message = arg;
	} else if (!strcmp(flag, "prev-commit")) {
		ev->prev_commit = arg;
	} else if (!strcmp(flag, "tag-name")) {
		ev->tag_name = arg;
	} else if (!strcmp(flag, "release-name")) {
		ev->release_name = arg;
	} else if (!strcmp(flag, "repository-name")) {
		ev->repository_name = arg;
	} else if (!strcmp(flag, "organization-name")) {
		ev->organization_name = arg;
	} else if (!strcmp(flag, "workflow-name")) {
		ev->workflow_name = arg;
	} else if (!strcmp(flag, "changed-file")) {
		cbl_strv_push(&w->changed, arg);
		ev->changed_files = &w->changed;
	}
	return 0;
}

static bool is_git_tree(const char *dir)
{
	if (!dir)
		return false;
	char *dotgit = cbl_path_join(dir, ".git");
	struct stat st;
	bool yes = lstat(dotgit, &st) == 0;
	free(dotgit);
	return yes;
}

/* What the source's git says of the event: the head commit, the previous
 * one, the changed files, the message (flags win). */
static int read_git(cli_webhook *w, const char *dir, cbl_error **err)
{
	runner_webhook_event *ev = &w->ev;
	source_history h = SOURCE_HISTORY_INIT;
	char *base = NULL;
	if (runner_webhook_is_pr(ev->event) && ev->base_ref)
		base = strncmp(ev->base_ref, "refs/", 5) ? cbl_xasprintf("refs/heads/%s", ev->base_ref)
							 : cbl_xstrdup(ev->base_ref);
	int rc = source_history_read(&h, dir, NULL, base, err);
	free(base);
	if (rc < 0) {
		source_history_release(&h);
		return rc;
	}
	w->head_commit = h.head_commit;
	w->prev_commit = h.prev_commit;
	w->message = h.message;
	for (size_t n = strlen(w->message); n && (w->message[n - 1] == '\n' || w->message[n - 1] == '\r'); n--)
		w->message[n - 1] = '\0';
	h.head_commit = h.prev_commit = h.message = NULL;
	ev->head_commit = w->head_commit;
	if (!ev->prev_commit)
		ev->prev_commit = w->prev_commit;
	if (!ev->commit_message)
		ev->commit_message = w->message;
	if (!ev->changed_files) {
		w->changed = h.changed;
		h.changed = (cbl_strv)CBL_STRV_INIT;
		ev->changed_files = &w->changed;
	}
	source_history_release(&h);
	return 0;
}

int cli_webhook_finish(cli_webhook *w, const char *dir, const char **source_version, cbl_error **err)
{
	if (!w->any)
		return 0;
	if (!w->ev.event)
		return cbl_error_set(err, CBL_EINVAL,
				     "--head-ref, --base-ref, --pr and the other event flags need --webhook-event");
	int rc = runner_webhook_event_check(&w->ev, err);
	if (rc < 0)
		return rc;
	if (is_git_tree(dir) && (rc = read_git(w, dir, err)) < 0)
		return rc;
	w->source_version = runner_webhook_source_version(&w->ev);
	if (source_version && !*source_version && w->source_version)
		*source_version = w->source_version;
	runner_webhook_env(&w->ev, &w->env);
	return 0;
}

void cli_webhook_release(cli_webhook *w)
{
	cbl_strv_release(&w->env);
	cbl_strv_release(&w->changed);
	free(w->head_commit);
	free(w->prev_commit);
	free(w->message);
	free(w->source_version);
}

/* ---- webhook test ---- */

static const char webhook_usage[] =
	"usage: codebuild-local webhook test (--project NAME | --filter-groups JSON|file://F)\n"
	"                                    --event EVENT [event options] [--source DIR] [--json]\n"
	"\n"
	"Says whether the webhook filter groups of a project (its webhook, as create-webhook\n"
	"stored it) or the given ones would start a build for the event, which group would,\n"
	"and for each that would not, the first filter that failed.  The changed files\n"
	"(FILE_PATH), the head commit's message (COMMIT_MESSAGE) and the previous commit come\n"
	"from DIR's git (default: the current directory) unless given.\n"
	"\n"
	"event options:\n"
	"  --event EVENT             PUSH, PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED,\n"
	"                            PULL_REQUEST_REOPENED, PULL_REQUEST_MERGED, PULL_REQUEST_CLOSED,\n"
	"                            RELEASED, PRERELEASED, WORKFLOW_JOB_QUEUED\n"
	"  --head-ref REF            the head: refs/heads/X (a bare X too) or refs/tags/X\n"
	"  --base-ref REF            a pull request's base branch\n"
	"  --pr N                    a pull request's number\n"
	"  --actor-account-id ID     ACTOR_ACCOUNT_ID\n"
	"  --commit-message MSG      COMMIT_MESSAGE\n"
	"  --changed-file PATH       FILE_PATH: a changed file (repeatable; replaces git's list)\n"
	"  --tag-name T, --release-name N, --repository-name N, --organization-name N,\n"
	"  --workflow-name N         the other filter types' values\n"
	"\n"
	"Exit status: 0 a build would start, 1 none would, 2 usage error or invalid filters.\n";

typedef struct wt_args {
	cli_webhook w;
	const char *project, *filter_groups, *source;
	bool json;
} wt_args;

static json_t *load_groups(const wt_args *a, cbl_error **err)
{
	if (a->filter_groups) {
		if (!strncmp(a->filter_groups, "file://", 7)) {
			json_t *j = NULL;
			if (cbl_json_load_file(&j, a->filter_groups + 7, 0, NULL, err) < 0)
				cbl_error_wrap(err, "--filter-groups");
			return j;
		}
		json_error_t je;
		json_t *j = json_loads(a->filter_groups, 0, &je);
		if (!j)
			cbl_error_set(err, CBL_EINVAL, "--filter-groups: invalid JSON at %d:%d: %s", je.line,
				      je.column, je.text);
		return j;
	}
	char *home = store_default_home();
	json_t *p = NULL;
	int rc = store_project_get(home, a->project, &p, err);
	free(home);
	if (rc < 0)
		return NULL;
	json_t *groups = json_object_get(json_object_get(p, "webhook"), "filterGroups");
	if (!groups) {
		cbl_error_set(err, CBL_ENOENT,
			      "project %s has no webhook filter groups (create-webhook --project-name %s "
			      "--filter-groups ...)",
			      a->project, a->project);
		json_decref(p);
		return NULL;
	}
	json_incref(groups);
	json_decref(p);
	return groups;
}

static void print_text(const runner_webhook_verdict *v, const json_t *groups)
{
	if (!v->n_groups)
		printf("No filter groups: every event starts a build.\n");
	for (size_t g = 0; g < v->n_groups; g++) {
		const runner_webhook_group_result *r = &v->groups[g];
		if (r->passes)
			printf("filter group %zu: passes\n", g + 1);
		else
			printf("filter group %zu: fails at filter %d of %zu: %s\n", g + 1, r->failed_filter + 1,
			       json_array_size(json_array_get(groups, g)), r->why);
	}
	if (v->triggers && v->n_groups)
		printf("A build would start (filter group %d).\n", v->group + 1);
	else if (!v->triggers)
		printf("No build would start.\n");
}

static void print_json(const runner_webhook_verdict *v, const cli_webhook *w)
{
	json_t *o = json_object();
	json_object_set_new(o, "triggers", json_boolean(v->triggers));
	json_object_set_new(o, "filterGroup", v->group >= 0 ? json_integer(v->group + 1) : json_null());
	json_t *gs = json_array();
	for (size_t g = 0; g < v->n_groups; g++) {
		json_t *r = json_object();
		json_object_set_new(r, "passes", json_boolean(v->groups[g].passes));
		if (!v->groups[g].passes) {
			json_object_set_new(r, "failedFilter", json_integer(v->groups[g].failed_filter + 1));
			json_object_set_new(r, "reason", json_string(v->groups[g].why));
		}
		json_array_append_new(gs, r);
	}
	json_object_set_new(o, "filterGroups", gs);
	json_t *env = json_object();
	for (size_t i = 0; i < w->env.n; i++) {
		const char *eq = strchr(w->env.v[i], '=');
		char *k = cbl_xstrndup(w->env.v[i], (size_t)(eq - w->env.v[i]));
		json_object_set_new(env, k, json_string(eq + 1));
		free(k);
	}
	json_object_set_new(o, "environmentVariables", env);
	if (w->source_version)
		json_object_set_new(o, "sourceVersion", json_string(w->source_version));
	char *s = json_dumps(o, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	puts(s);
	free(s);
	json_decref(o);
}

static const struct option wt_longopts[] = {
	{"project", required_argument, NULL, 'p'},
	{"filter-groups", required_argument, NULL, 'f'},
	{"source", required_argument, NULL, 's'},
	{"json", no_argument, NULL, 'j'},
	{"help", no_argument, NULL, 'h'},
	{"event", required_argument, NULL, 1000},
	{"head-ref", required_argument, NULL, 1000},
	{"base-ref", required_argument, NULL, 1000},
	{"pr", required_argument, NULL, 1000},
	{"actor-account-id", required_argument, NULL, 1000},
	{"commit-message", required_argument, NULL, 1000},
	{"changed-file", required_argument, NULL, 1000},
	{"tag-name", required_argument, NULL, 1000},
	{"release-name", required_argument, NULL, 1000},
	{"repository-name", required_argument, NULL, 1000},
	{"organization-name", required_argument, NULL, 1000},
	{"workflow-name", required_argument, NULL, 1000},
	{NULL, 0, NULL, 0},
};

static int parse_wt(wt_args *a, int argc, char **argv)
{
	int c, idx = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", wt_longopts, &idx)) != -1) {
		switch (c) {
		case 'p': a->project = optarg; break;
		case 'f': a->filter_groups = optarg; break;
		case 's': a->source = optarg; break;
		case 'j': a->json = true; break;
		case 'h': fputs(webhook_usage, stdout); return 1;
		case 1000:
			if (cli_webhook_opt(&a->w, wt_longopts[idx].name, optarg) < 0)
				return -1;
			break;
		default: return -1;
		}
	}
	if (optind < argc)
		return cli_error("webhook test: unexpected argument '%s'", argv[optind]), -1;
	if (!a->project == !a->filter_groups)
		return cli_error("webhook test needs one of --project NAME and --filter-groups"), -1;
	if (!a->w.ev.event)
		return cli_error("webhook test needs --event EVENT"), -1;
	return 0;
}

static int webhook_test(int argc, char **argv)
{
	wt_args a;
	memset(&a, 0, sizeof(a));
	int rc = parse_wt(&a, argc, argv);
	if (rc)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	cbl_error *err = NULL;
	json_t *groups = NULL;
	runner_webhook_verdict v;
	memset(&v, 0, sizeof(v));
	int exit_code = CLI_EXIT_USAGE;
	if (cli_webhook_finish(&a.w, a.source ? a.source : ".", NULL, &err) < 0 || !(groups = load_groups(&a, &err)) ||
	    runner_webhook_evaluate(groups, &a.w.ev, &v, &err) < 0) {
		cli_report_clear(&err);
		goto out;
	}
	if (a.json)
		print_json(&v, &a.w);
	else
		print_text(&v, groups);
	exit_code = v.triggers ? CLI_EXIT_OK : CLI_EXIT_FAILED;
	runner_webhook_verdict_free(&v);
out:
	json_decref(groups);
	cli_webhook_release(&a.w);
	return exit_code;
}

int cmd_webhook(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(webhook_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "test")) {
		cli_unknown("webhook subcommand", argv[1], "test", "webhook");
		return CLI_EXIT_USAGE;
	}
	return webhook_test(argc - 1, argv + 1);
}
