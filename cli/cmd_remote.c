/* cli/cmd_remote.c - `run --remote PROJECT`: the same build on CodeBuild (or
 * anything that speaks its API): StartBuild with the local buildspec as
 * buildspecOverride, the local HEAD as sourceVersion and -e values as
 * overrides; the log streamed live (GetLogEvents); run's exit codes; Ctrl-C
 * stops the remote build (StopBuild). */
#include "cli/cli.h"
#include "remote/remote.h"
#include "source/source.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/banned.h"

static volatile sig_atomic_t g_interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	g_interrupted = 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int exit_for(const char *status)
{
	if (!status)
		return CLI_EXIT_FAULT;
	if (!strcmp(status, "SUCCEEDED"))
		return CLI_EXIT_OK;
	if (!strcmp(status, "FAILED"))
		return CLI_EXIT_FAILED;
	if (!strcmp(status, "TIMED_OUT"))
		return CLI_EXIT_TIMED_OUT;
	if (!strcmp(status, "STOPPED"))
		return CLI_EXIT_STOPPED;
	return CLI_EXIT_FAULT;
}

/* The request: the buildspec's text, HEAD (when pushed), the overrides. */
static int make_request(const cli_remote *r, json_t **out, cbl_error **err)
{
	const char *dir = r->dir ? r->dir : ".";
	char *path = r->buildspec && r->buildspec[0] == '/' ? cbl_xstrdup(r->buildspec)
							     : cbl_path_join(dir, r->buildspec ? r->buildspec : "buildspec.yml");
	char *text = NULL;
	size_t len = 0;
	int rc = cbl_read_file(path, 1 << 20, &text, &len, err);
	free(path);
	if (rc < 0)
		return rc;
	json_t *req = json_pack("{s:s, s:s}", "projectName", r->project, "buildspecOverride", text);
	free(text);
	char *dotgit = cbl_path_join(dir, ".git");
	struct stat st;
	bool is_repo = lstat(dotgit, &st) == 0;
	free(dotgit);
	if (is_repo) {
		source_history h = SOURCE_HISTORY_INIT;
		char *remote_ref = NULL;
		rc = source_history_read(&h, dir, NULL, NULL, err);
		int pushed = rc < 0 ? rc : source_commit_pushed(dir, h.head_commit, &remote_ref, err);
		if (pushed == 0)
			rc = cbl_error_set(err, CBL_EINVAL,
					   "HEAD %s of %s is on no remote branch: the remote build fetches the "
					   "project's source, which does not have it (git push first)",
					   h.head_commit, dir);
		else if (pushed > 0)
			json_object_set_new(req, "sourceVersion", json_string(h.head_commit));
		else
			rc = pushed;
		free(remote_ref);
		source_history_release(&h);
		if (rc < 0) {
			json_decref(req);
			return rc;
		}
	}
	json_t *env = json_array();
	for (size_t i = 0; i < r->env.n; i++) {
		const char *eq = strchr(r->env.v[i], '=');
		json_t *e = json_object();
		json_object_set_new(e, "name", json_stringn(r->env.v[i], (size_t)(eq - r->env.v[i])));
		json_object_set_new(e, "value", json_string(eq + 1));
		json_object_set_new(e, "type", json_string("PLAINTEXT"));
		json_array_append_new(env, e);
	}
	if (json_array_size(env))
		json_object_set_new(req, "environmentVariablesOverride", env);
	else
		json_decref(env);
	*out = req;
	return 0;
}

typedef struct follow {
	remote_client *cl;
	char *id;
	char *token;          /* GetLogEvents' nextForwardToken */
	char *phase;          /* the phase shown last */
	bool stop_sent;
} follow;

/* New log lines, printed; 0 or <0. */
static int pump_log(follow *f, const json_t *build, cbl_error **err)
{
	const json_t *logs = json_object_get(build, "logs");
	const char *group = json_string_value(json_object_get(logs, "groupName"));
	const char *stream = json_string_value(json_object_get(logs, "streamName"));
	if (!group || !stream)
		return 0;
	for (int page = 0; page < 100; page++) {
		json_t *req = json_pack("{s:s, s:s, s:b}", "logGroupName", group, "logStreamName", stream, "startFromHead", 1);
		if (f->token)
			json_object_set_new(req, "nextToken", json_string(f->token));
		json_t *ans = NULL;
		int rc = remote_call(f->cl, "logs", "GetLogEvents", req, &ans, err);
		json_decref(req);
		if (rc < 0) /* the stream may not exist yet */
			return !strcmp(remote_last_error_type(f->cl), "ResourceNotFoundException") ? (cbl_error_clear(err), 0)
												    : rc;
		size_t i;
		json_t *ev;
		const json_t *events = json_object_get(ans, "events");
		json_array_foreach(events, i, ev)
		{
			const char *m = json_string_value(json_object_get(ev, "message"));
			if (m)
				fputs(m, stdout), (m[0] && m[strlen(m) - 1] == '\n') ? 0 : fputc('\n', stdout);
		}
		fflush(stdout);
		const char *next = json_string_value(json_object_get(ans, "nextForwardToken"));
		bool more = next && json_array_size(events) && !(f->token && !strcmp(f->token, next));
		if (next) {
			free(f->token);
			f->token = cbl_xstrdup(next);
		}
		json_decref(ans);
		if (!more)
			return 0;
	}
	return 0;
}

static int poll_build(follow *f, json_t **build, cbl_error **err)
{
	json_t *req = json_pack("{s:[s]}", "ids", f->id), *ans = NULL;
	int rc = remote_call(f->cl, "codebuild", "BatchGetBuilds", req, &ans, err);
	json_decref(req);
	if (rc < 0)
		return rc;
	json_t *b = json_array_get(json_object_get(ans, "builds"), 0);
	if (!b) {
		json_decref(ans);
		return cbl_error_set(err, CBL_ENOENT, "build %s is gone from the remote", f->id);
	}
	*build = json_incref(b);
	json_decref(ans);
	return 0;
}

static void maybe_stop(follow *f)
{
	if (!g_interrupted || f->stop_sent)
		return;
	f->stop_sent = true;
	fprintf(stderr, "codebuild-local: stopping remote build %s\n", f->id);
	json_t *req = json_pack("{s:s}", "id", f->id), *ans = NULL;
	cbl_error *e = NULL;
	if (remote_call(f->cl, "codebuild", "StopBuild", req, &ans, &e) < 0)
		cli_report_clear(&e);
	json_decref(req);
	json_decref(ans);
}

/* Follows the build to its end: its log and its phases; the final status. */
static int follow_build(follow *f, char **status, cbl_error **err)
{
	for (;;) {
		json_t *b = NULL;
		maybe_stop(f);
		int rc = poll_build(f, &b, err);
		if (rc < 0)
			return rc;
		bool done = json_is_true(json_object_get(b, "buildComplete"));
		rc = pump_log(f, b, err);
		const char *phase = json_string_value(json_object_get(b, "currentPhase"));
		if (phase && (!f->phase || strcmp(phase, f->phase))) {
			free(f->phase);
			f->phase = cbl_xstrdup(phase);
		}
		if (done || rc < 0) {
			const char *st = json_string_value(json_object_get(b, "buildStatus"));
			*status = st ? cbl_xstrdup(st) : NULL;
			json_decref(b);
			return rc;
		}
		json_decref(b);
		sleep_ms(300);
	}
}

int cli_remote_run(const cli_remote *r)
{
	remote_creds cr;
	remote_client *cl = NULL;
	cbl_error *err = NULL;
	json_t *req = NULL, *ans = NULL;
	follow f = {0};
	char *status = NULL;
	int rc = CLI_EXIT_USAGE;
	if (remote_creds_load(&cr, r->profile, r->region, &err) < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_USAGE;
	}
	if (remote_client_new(&cl, &cr, r->endpoint, &err) < 0 || make_request(r, &req, &err) < 0 ||
	    remote_call(cl, "codebuild", "StartBuild", req, &ans, &err) < 0) {
		cli_report_clear(&err);
		goto out;
	}
	f.cl = cl;
	f.id = cbl_xstrdup(json_string_value(json_object_get(json_object_get(ans, "build"), "id")));
	fprintf(stderr, "codebuild-local: started %s on %s (Ctrl-C stops it)\n", f.id,
		r->endpoint ? r->endpoint : "CodeBuild");
	struct sigaction sa = {0}, old_int, old_term;
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	int frc = follow_build(&f, &status, &err);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (frc < 0) {
		cli_report_clear(&err);
		rc = CLI_EXIT_FAULT;
		goto out;
	}
	fprintf(stderr, "Build %s %s (remote)\n", f.id, status ? status : "?");
	rc = exit_for(status);
out:
	free(status);
	free(f.id);
	free(f.token);
	free(f.phase);
	json_decref(req);
	json_decref(ans);
	remote_client_free(cl);
	remote_creds_release(&cr);
	return rc;
}
