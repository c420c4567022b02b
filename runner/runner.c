/* runner/runner.c - one build through CodeBuild's phases.
 *
 * Transition rules (reference buildspec.md §2.4, backed by real logs):
 *   DOWNLOAD_SOURCE fails       -> FINALIZING
 *   INSTALL / PRE_BUILD fails   -> FINALIZING (no POST_BUILD, no UPLOAD_ARTIFACTS)
 *   BUILD fails                 -> POST_BUILD, then UPLOAD_ARTIFACTS
 *   POST_BUILD fails            -> UPLOAD_ARTIFACTS
 *   on-failure: CONTINUE        -> next phase, build still ends FAILED
 *   on-failure: ABORT           -> FINALIZING ([inferred] even for BUILD/POST_BUILD)
 *   TIMED_OUT / STOPPED         -> FINALIZING ([inferred])
 * buildStatus = the first phase status that is not SUCCEEDED.
 */
#include "runner/runner_internal.h"
#include "cache/cache.h"
#include "sandbox/sandbox.h"
#include "runner/source.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define CBL_VERSION "0.1.0"

static const char *const status_names[] = {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "IN_PROGRESS",
					   "STOPPED"};
static const char *const phase_names[] = {"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE",
					  "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD",
					  "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED"};

const char *runner_status_name(runner_status s)
{
	return (unsigned)s < sizeof(status_names) / sizeof(*status_names) ? status_names[s] : "UNKNOWN";
}

const char *runner_phase_name(runner_phase_type p)
{
	return (unsigned)p < RUNNER_PHASE_COUNT ? phase_names[p] : "UNKNOWN";
}

/* ---------------------------------------------------------------- events */

void runner_emit(runner_build *b, runner_event *ev)
{
	if (!ev->time_us)
		ev->time_us = cbl_now_us();
	if (b->on_event)
		b->on_event(ev, b->payload);
}

static void log_line(runner_build *b, const char *text, size_t len, bool agent)
{
	char *masked = runner_mask_apply(&b->mask, text, len);
	if (b->log_fd >= 0) {
		size_t ml = strlen(masked);
		cbl_write_all(b->log_fd, masked, ml);
		cbl_write_all(b->log_fd, "\n", 1);
	}
	runner_event ev = {.kind = RUNNER_EV_LOG, .phase = b->current, .text = masked, .agent = agent};
	runner_emit(b, &ev);
	free(masked);
}

void runner_agent(runner_build *b, const char *fmt, ...)
{
	char ts[32];
	cbl_buf line = CBL_BUF_INIT;
	cbl_format_log_time(ts, cbl_now_us());
	cbl_buf_printf(&line, "[Container] %s ", ts);
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&line, fmt, ap);
	va_end(ap);
	log_line(b, line.ptr, line.len, true);
	cbl_buf_release(&line);
}

/* Something a local run does differently from the cloud: said loudly, in the
 * log (so it is in the record's log stream too) and as an event. */
void runner_warn(runner_build *b, const char *fmt, ...)
{
	cbl_buf msg = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	runner_agent(b, "[codebuild-local] WARNING: %s", msg.ptr);
	char *masked = runner_mask_apply(&b->mask, msg.ptr, msg.len);
	runner_event ev = {.kind = RUNNER_EV_WARNING, .phase = b->current, .text = masked};
	runner_emit(b, &ev);
	free(masked);
	cbl_buf_release(&msg);
}

static void on_output_line(const char *line, size_t len, void *payload)
{
	log_line(payload, line, len, false);
}

/* ---------------------------------------------------------------- record */


static json_t *jtime(int64_t us) { return json_real((double)(us / 1000) / 1e3); }

json_t *runner_source_json(const char *git_url, const char *dir, int depth, bool submodules)
{
	json_t *src = json_object();
	if (git_url) {
		const char *type = strstr(git_url, "github.com") ? "GITHUB"
				   : strstr(git_url, "gitlab.com") ? "GITLAB"
				   : strstr(git_url, "bitbucket.org") ? "BITBUCKET"
				   : strstr(git_url, "git-codecommit.") ? "CODECOMMIT"
									 : "GITHUB_ENTERPRISE";
		char *shown = runner_redact_url(git_url);
		json_object_set_new(src, "type", json_string(type));
		json_object_set_new(src, "location", json_string(shown));
		json_object_set_new(src, "gitCloneDepth", json_integer(depth));
		json_t *sub = json_object();
		json_object_set_new(sub, "fetchSubmodules", json_boolean(submodules));
		json_object_set_new(src, "gitSubmodulesConfig", sub);
		free(shown);
	} else {
		json_object_set_new(src, "type", json_string("NO_SOURCE"));
		json_object_set_new(src, "location", json_string(dir ? dir : ""));
	}
	return src;
}

static json_t *build_record(runner_build *b)
{
	json_t *r = json_object();
	json_object_set_new(r, "id", json_string(b->id));
	json_object_set_new(r, "arn", json_string(b->arn));
	json_object_set_new(r, "buildNumber", json_integer(b->number));
	json_object_set_new(r, "startTime", jtime(b->start_us));
	if (b->end_us)
		json_object_set_new(r, "endTime", jtime(b->end_us));
	json_object_set_new(r, "currentPhase", json_string(runner_phase_name(b->current)));
	json_object_set_new(r, "buildStatus", json_string(runner_status_name(b->status)));
	if (b->source_version)
		json_object_set_new(r, "sourceVersion", json_string(b->source_version));
	if (b->resolved_version)
		json_object_set_new(r, "resolvedSourceVersion", json_string(b->resolved_version));
	json_object_set_new(r, "projectName", json_string(b->project));

	json_t *phases = json_array();
	for (int p = 0; p < RUNNER_PHASE_COUNT; p++) {
		phase_rec *pr = &b->phases[p];
		if (!pr->started)
			continue;
		json_t *ph = json_object();
		json_object_set_new(ph, "phaseType", json_string(phase_names[p]));
		if (p != RUNNER_PHASE_COMPLETED && pr->ended)
			json_object_set_new(ph, "phaseStatus", json_string(runner_status_name(pr->status)));
		json_object_set_new(ph, "startTime", jtime(pr->start_us));
		if (p != RUNNER_PHASE_COMPLETED && pr->ended) {
			json_object_set_new(ph, "endTime", jtime(pr->end_us));
			json_object_set_new(ph, "durationInSeconds",
					    json_integer((pr->end_us - pr->start_us) / 1000000));
			/* SUBMITTED and QUEUED carry no contexts on the service */
			if (p >= RUNNER_PHASE_PROVISIONING) {
				json_t *ctxs = json_array();
				json_t *c = json_object();
				json_object_set_new(c, "statusCode", json_string(pr->code ? pr->code : ""));
				json_object_set_new(c, "message", json_string(pr->message ? pr->message : ""));
				json_array_append_new(ctxs, c);
				json_object_set_new(ph, "contexts", ctxs);
			}
		}
		json_array_append_new(phases, ph);
	}
	json_object_set_new(r, "phases", phases);

	json_t *src = runner_source_json(b->git_url, b->source_dir, b->clone_depth, b->fetch_submodules);
	json_object_set_new(src, "buildspec", json_string(b->buildspec_display ? b->buildspec_display : ""));
	json_object_set_new(src, "insecureSsl", json_false());
	json_object_set_new(r, "source", src);
	runner_sources_record(b, r);

	if (b->artifacts_rec) {
		json_object_set(r, "artifacts", b->artifacts_rec);
	} else {
		json_t *art = json_object();
		json_object_set_new(art, "location", json_string(""));
		json_object_set_new(r, "artifacts", art);
	}
	json_object_set_new(r, "secondaryArtifacts",
			    b->secondary_recs ? json_deep_copy(b->secondary_recs) : json_array());

	json_t *cache = json_object();
	if (b->cache_sess) {
		/* the local store, keyed like the service's S3 caches */
		json_object_set_new(cache, "type", json_string("LOCAL"));
		json_t *modes = json_array();
		json_array_append_new(modes, json_string("LOCAL_CUSTOM_CACHE"));
		json_object_set_new(cache, "modes", modes);
	} else {
		json_object_set_new(cache, "type", json_string("NO_CACHE"));
	}
	json_object_set_new(r, "cache", cache);

	json_t *env = json_object();
	json_object_set_new(env, "type", json_string("LINUX_CONTAINER"));
	json_object_set_new(env, "image", json_string(b->image));
	json_object_set_new(env, "computeType", json_string(b->compute_type));
	json_t *evs = json_array();
	for (size_t i = 0; i < b->project_env.n; i++) {
		const char *eq = strchr(b->project_env.v[i], '=');
		json_t *e = json_object();
		json_object_set_new(e, "name", json_stringn(b->project_env.v[i],
							     (size_t)(eq - b->project_env.v[i])));
		json_object_set_new(e, "value", json_string(eq + 1));
		json_object_set_new(e, "type", json_string("PLAINTEXT"));
		json_array_append_new(evs, e);
	}
	json_object_set_new(env, "environmentVariables", evs);
	json_object_set_new(env, "privilegedMode", json_false());
	json_object_set_new(env, "imagePullCredentialsType", json_string("CODEBUILD"));
	json_object_set_new(r, "environment", env);

	json_t *logs = json_object();
	char *group = cbl_xasprintf("/aws/codebuild/%s", b->project);
	char *deep = cbl_xasprintf("file://%s", b->log_path);
	char *lgarn = cbl_xasprintf("arn:aws:logs:%s:%s:log-group:%s:log-stream:%s", b->region,
				    b->account, group, b->uuid);
	json_object_set_new(logs, "groupName", json_string(group));
	json_object_set_new(logs, "streamName", json_string(b->uuid));
	json_object_set_new(logs, "deepLink", json_string(deep));
	json_object_set_new(logs, "cloudWatchLogsArn", json_string(lgarn));
	json_t *cwl = json_object();
	json_object_set_new(cwl, "status", json_string("ENABLED"));
	json_object_set_new(cwl, "groupName", json_string(group));
	json_object_set_new(cwl, "streamName", json_string(b->uuid));
	json_object_set_new(logs, "cloudWatchLogs", cwl);
	json_t *s3l = json_object();
	json_object_set_new(s3l, "status", json_string("DISABLED"));
	json_object_set_new(s3l, "encryptionDisabled", json_false());
	json_object_set_new(logs, "s3Logs", s3l);
	json_object_set_new(r, "logs", logs);
	free(group);
	free(deep);
	free(lgarn);

	json_object_set_new(r, "timeoutInMinutes", json_integer((b->timeout_ms + 59999) / 60000));
	json_object_set_new(r, "queuedTimeoutInMinutes", json_integer(480));
	json_object_set_new(r, "buildComplete", json_boolean(b->end_us != 0));
	json_object_set_new(r, "initiator", json_string(b->initiator));
	char *kms = cbl_xasprintf("arn:aws:kms:%s:%s:alias/aws/s3", b->region, b->account);
	json_object_set_new(r, "encryptionKey", json_string(kms));
	free(kms);
	json_t *exp = json_array();
	for (size_t i = 0; i < b->exported_names.n; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "name", json_string(b->exported_names.v[i]));
		char *m = runner_mask_apply(&b->mask, b->exported_values.v[i],
					    strlen(b->exported_values.v[i]));
		json_object_set_new(e, "value", json_string(m));
		free(m);
		json_array_append_new(exp, e);
	}
	json_object_set_new(r, "exportedEnvironmentVariables", exp);
	json_t *rarns = json_array();
	for (size_t i = 0; i < b->report_arns.n; i++)
		json_array_append_new(rarns, json_string(b->report_arns.v[i]));
	json_object_set_new(r, "reportArns", rarns);
	json_object_set_new(r, "fileSystemLocations", json_array());
	return r;
}

static void save_record(runner_build *b, bool durable, cbl_error **err)
{
	json_decref(b->record);
	b->record = build_record(b);
	store_build_save(b->dir, b->record, durable, err);
}

/* ---------------------------------------------------------------- phases */

static void phase_start(runner_build *b, runner_phase_type p)
{
	phase_rec *pr = &b->phases[p];
	pr->started = true;
	pr->start_us = cbl_now_us();
	b->current = p;
	runner_event ev = {.kind = RUNNER_EV_PHASE_START, .phase = p, .time_us = pr->start_us};
	runner_emit(b, &ev);
	if (p >= RUNNER_PHASE_DOWNLOAD_SOURCE && p <= RUNNER_PHASE_UPLOAD_ARTIFACTS) {
		/* readers (BatchGetBuilds) see the phase that runs now */
		cbl_error *e = NULL;
		save_record(b, false, &e);
		cbl_error_free(e);
	}
}

static void phase_set_context_masked(const runner_mask *m, phase_rec *pr, const char *code,
				    const char *msg)
{
	free(pr->code);
	free(pr->message);
	pr->code = code ? cbl_xstrdup(code) : NULL;
	/* stored masked: the record and events never carry a secret */
	pr->message = msg ? (m ? runner_mask_apply(m, msg, strlen(msg)) : cbl_xstrdup(msg)) : NULL;
}

#define phase_set_context(pr, code, msg) phase_set_context_masked(&b->mask, (pr), (code), (msg))

/* Ends phase p; agent lines only for the phases the service logs them for. */
static void phase_end(runner_build *b, runner_phase_type p, runner_status st, bool log)
{
	phase_rec *pr = &b->phases[p];
	pr->ended = true;
	pr->status = st;
	pr->end_us = cbl_now_us();
	if (log) {
		runner_agent(b, "Phase complete: %s State: %s", phase_names[p], runner_status_name(st));
		char *m = runner_mask_apply(&b->mask, pr->message ? pr->message : "",
					    pr->message ? strlen(pr->message) : 0);
		runner_agent(b, "Phase context status code: %s Message: %s", pr->code ? pr->code : "", m);
		free(m);
	}
	runner_event ev = {.kind = RUNNER_EV_PHASE_END,
			   .phase = p,
			   .status = st,
			   .time_us = pr->end_us,
			   .context_code = pr->code ? pr->code : "",
			   .context_message = pr->message ? pr->message : ""};
	runner_emit(b, &ev);
	if (st != RUNNER_STATUS_SUCCEEDED && b->status == RUNNER_STATUS_IN_PROGRESS)
		b->status = st;
}

static void set_succeeding(runner_build *b, bool ok)
{
	const char *v = ok ? "1" : "0";
	cbl_env_set(&b->env, "CODEBUILD_BUILD_SUCCEEDING", v);
	if (b->shell_ready) {
		cbl_error *e = NULL;
		runner_shell_set_var(&b->sh, "CODEBUILD_BUILD_SUCCEEDING", v, &e);
		cbl_error_free(e);
	}
}

typedef enum { CMDS_OK, CMDS_FAILED, CMDS_TIMED_OUT, CMDS_STOPPED, CMDS_FAULT } cmds_result;

/* Go's syscall.Signal strings (the agent is a Go program). */
static const char *go_signal_name(int sig)
{
	switch (sig) {
	case SIGHUP: return "hangup";
	case SIGINT: return "interrupt";
	case SIGQUIT: return "quit";
	case SIGILL: return "illegal instruction";
	case SIGTRAP: return "trace/breakpoint trap";
	case SIGABRT: return "aborted";
	case SIGBUS: return "bus error";
	case SIGFPE: return "floating point exception";
	case SIGKILL: return "killed";
	case SIGUSR1: return "user defined signal 1";
	case SIGSEGV: return "segmentation fault";
	case SIGUSR2: return "user defined signal 2";
	case SIGPIPE: return "broken pipe";
	case SIGALRM: return "alarm clock";
	case SIGTERM: return "terminated";
	default: return "unknown signal";
	}
}

static cmds_result run_commands(runner_build *b, runner_phase_type p, const spec_strlist *cmds,
				phase_rec *pr)
{
	for (size_t i = 0; i < cmds->n; i++) {
		const char *cmd = cmds->items[i].s;
		if (b->stop_requested) {
			phase_set_context(pr, "BUILD_STOPPED", "Build was stopped");
			return CMDS_STOPPED;
		}
		runner_agent(b, "Running command %s", cmd);
		char *masked = runner_mask_apply(&b->mask, cmd, strlen(cmd));
		runner_event ev = {.kind = RUNNER_EV_COMMAND_START, .phase = p, .text = masked};
		runner_emit(b, &ev);
		runner_cmd_outcome how = RUNNER_CMD_EXITED;
		int status = 0;
		cbl_error *e = NULL;
		if (runner_shell_exec(&b->sh, cmd, b->env.v, &how, &status, &e) < 0) {
			phase_set_context(pr, "CLIENT_ERROR", e->msg);
			runner_agent(b, "Runtime error (%s)", e->msg);
			cbl_error_free(e);
			free(masked);
			return CMDS_FAULT;
		}
		/* recent agents write one empty line after each command's output */
		log_line(b, "", 0, false);
		runner_event ev2 = {.kind = RUNNER_EV_COMMAND_EXIT, .phase = p, .text = masked,
				    .exit_status = status};
		runner_emit(b, &ev2);
		free(masked);
		if (how == RUNNER_CMD_TIMED_OUT) {
			phase_set_context(pr, "BUILD_TIMED_OUT", "Build has timed out. ");
			return CMDS_TIMED_OUT;
		}
		if (how == RUNNER_CMD_STOPPED) {
			phase_set_context(pr, "BUILD_STOPPED", "Build was stopped");
			return CMDS_STOPPED;
		}
		if (b->sh.init_gone) {
			phase_set_context(pr, "CLIENT_ERROR", "sandbox: the build's init process died");
			runner_agent(b, "Runtime error (sandbox: the build's init process died)");
			return CMDS_FAULT;
		}
		if (status != 0) {
			char reason[128];
			int sig = b->sh.last_signal;
			if ((sig == SIGKILL || status == 128 + SIGKILL) && b->sandbox && sandbox_oom(b->sandbox)) {
				const runner_compute *ct = runner_compute_find(b->compute_type);
				snprintf(reason, sizeof(reason),
					 "signal: killed (out of memory: over the %d GB of %s)",
					 ct ? ct->memory_gb : 0, b->compute_type);
			} else if (sig)
				/* Go's exec.ExitError wording, as the agent prints it */
				snprintf(reason, sizeof(reason), "signal: %s", go_signal_name(sig));
			else
				snprintf(reason, sizeof(reason), "exit status %d", status);
			runner_agent(b, "Command did not exit successfully %s %s", cmd, reason);
			char *msg = cbl_xasprintf("Error while executing command: %s. Reason: %s", cmd,
						  reason);
			phase_set_context(pr, "COMMAND_EXECUTION_ERROR", msg);
			free(msg);
			return CMDS_FAILED;
		}
	}
	return CMDS_OK;
}

/* Retry policy of an on-failure: RETRY* value. */
static bool retry_allowed(const spec_on_failure *of, int attempt, const char *message)
{
	if (of->kind != SPEC_ON_FAILURE_RETRY || attempt >= of->retry_count)
		return false;
	if (!of->retry_regex)
		return true;
	regex_t re;
	if (regcomp(&re, of->retry_regex, REG_EXTENDED | REG_NOSUB))
		return false;
	bool m = regexec(&re, message ? message : "", 0, NULL, 0) == 0;
	regfree(&re);
	return m;
}

static runner_status run_phase(runner_build *b, runner_phase_type p)
{
	spec_phase_id sid = (spec_phase_id)(p - RUNNER_PHASE_INSTALL);
	const spec_phase *sp = &b->spec->phases[sid];
	phase_rec *pr = &b->phases[p];
	runner_status st = RUNNER_STATUS_SUCCEEDED;
	phase_start(b, p);
	runner_agent(b, "Entering phase %s", phase_names[p]);
	const char *user = sp->run_as ? sp->run_as : b->spec->run_as ? b->spec->run_as : runner_image_user(b);
	b->sh.run_as = NULL;
	if (sp->present && user) {
		if (b->sandbox && geteuid() == 0)
			b->sh.run_as = user;
		else
			runner_warn(b, "run-as '%s' is not applied %s: commands run as the invoking user", user,
				    b->sandbox ? "in an unprivileged sandbox (only root is mapped)"
					       : "without the sandbox");
	}
	for (int attempt = 0;; attempt++) {
		phase_set_context(pr, NULL, NULL);
		cmds_result r = run_commands(b, p, &sp->commands, pr);
		if (r == CMDS_TIMED_OUT || r == CMDS_STOPPED) {
			st = r == CMDS_TIMED_OUT ? RUNNER_STATUS_TIMED_OUT : RUNNER_STATUS_STOPPED;
			break;
		}
		cmds_result fr = CMDS_OK;
		if (sp->finally.n) {
			phase_rec tmp = {0};
			fr = run_commands(b, p, &sp->finally, &tmp);
			if (r == CMDS_OK && fr != CMDS_OK)
				phase_set_context(pr, tmp.code, tmp.message);
			free(tmp.code);
			free(tmp.message);
			if (fr == CMDS_TIMED_OUT || fr == CMDS_STOPPED) {
				if (r == CMDS_OK || r == CMDS_FAILED)
					phase_set_context(pr, fr == CMDS_TIMED_OUT ? "BUILD_TIMED_OUT"
										   : "BUILD_STOPPED",
							  fr == CMDS_TIMED_OUT ? "Build has timed out. "
									       : "Build was stopped");
				st = fr == CMDS_TIMED_OUT ? RUNNER_STATUS_TIMED_OUT : RUNNER_STATUS_STOPPED;
				break;
			}
		}
		if (r == CMDS_FAULT || fr == CMDS_FAULT) {
			st = RUNNER_STATUS_FAULT;
			break;
		}
		if (r == CMDS_OK && fr == CMDS_OK) {
			st = RUNNER_STATUS_SUCCEEDED;
			break;
		}
		st = RUNNER_STATUS_FAILED;
		if (!retry_allowed(&sp->on_failure, attempt, pr->message))
			break;
		/* [inferred] RETRY re-runs the phase (reference §10.2) */
		runner_agent(b, "Phase complete: %s State: FAILED", phase_names[p]);
		runner_agent(b, "Phase context status code: %s Message: %s", pr->code ? pr->code : "",
		      pr->message ? pr->message : "");
		runner_agent(b, "Retrying phase %s (attempt %d of %d)", phase_names[p], attempt + 2,
		      sp->on_failure.retry_count + 1);
	}
	b->sh.run_as = NULL; /* the agent's own steps run as root */
	phase_end(b, p, st, true);
	if (st != RUNNER_STATUS_SUCCEEDED)
		set_succeeding(b, false);
	return st;
}

/* ---------------------------------------------------------------- DOWNLOAD_SOURCE */

static void git_info(runner_build *b)
{
	/* libgit2's initialisation loads the TLS trust store (milliseconds):
	 * only pay for it when the source is a repository */
	char *dotgit = cbl_path_join(b->source_dir, ".git");
	struct stat st;
	bool is_repo = lstat(dotgit, &st) == 0;
	free(dotgit);
	if (!is_repo)
		return;
	git_libgit2_init();
	runner_local_git_head(b->source_dir, &b->resolved_version, &b->repo_url);
	git_repository *repo = NULL;
	if (!b->tracked_dir && git_repository_open_ext(&repo, b->source_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0) {
		/* what a cloud build would not see */
		git_status_options so = GIT_STATUS_OPTIONS_INIT;
		so.show = GIT_STATUS_SHOW_WORKDIR_ONLY;
		so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
		git_status_list *sl = NULL;
		if (git_status_list_new(&sl, repo, &so) == 0) {
			size_t untracked = 0, modified = 0;
			for (size_t i = 0; i < git_status_list_entrycount(sl); i++) {
				const git_status_entry *se = git_status_byindex(sl, i);
				if (se->status & GIT_STATUS_WT_NEW)
					untracked++;
				else if (se->status & (GIT_STATUS_WT_MODIFIED | GIT_STATUS_WT_DELETED |
						       GIT_STATUS_WT_TYPECHANGE | GIT_STATUS_WT_RENAMED))
					modified++;
			}
			if (untracked || modified)
				runner_warn(b, "the working tree has %zu untracked and %zu modified file(s) "
					       "that a cloud build of commit %.12s would not see "
					       "(--git-tracked-only shows the build only what HEAD contains)",
					    untracked, modified, b->resolved_version ? b->resolved_version : "HEAD");
			git_status_list_free(sl);
		}
		git_repository_free(repo);
	}
	git_libgit2_shutdown();
}

void runner_clone_progress(const char *line, void *payload)
{
	runner_build *b = payload;
	runner_event ev = {.kind = RUNNER_EV_PROGRESS, .phase = b->current, .text = line};
	runner_emit(b, &ev);
}

/* A URL as it may be shown: credentials replaced by "***". */
char *runner_redact_url(const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
	const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
	if (!at || (slash && at > slash))
		return cbl_xstrdup(url);
	return cbl_xasprintf("%.*s***%s", (int)(scheme + 3 - url), url, at);
}

/* DOWNLOAD_SOURCE for a git source: a shallow clone of the one ref asked
 * for, as CodeBuild's git_clone_depth does. */
bool runner_fetch_cancelled(void *payload)
{
	runner_build *b = payload;
	return b->stop_requested || cbl_mono_us() >= b->deadline_mono_us;
}

runner_status runner_fetch_failed(runner_build *b, phase_rec *pr, const char *what, cbl_error *e)
{
	runner_status st = RUNNER_STATUS_FAILED;
	if (b->stop_requested) {
		phase_set_context(pr, "BUILD_STOPPED", "Build was stopped");
		st = RUNNER_STATUS_STOPPED;
	} else if (cbl_mono_us() >= b->deadline_mono_us) {
		phase_set_context(pr, "BUILD_TIMED_OUT", "Build has timed out. ");
		st = RUNNER_STATUS_TIMED_OUT;
	} else {
		/* the service reports source problems as CLIENT_ERROR in DOWNLOAD_SOURCE */
		char *m = what ? cbl_xasprintf("%s: %s", what, e->msg) : cbl_xstrdup(e->msg);
		phase_set_context(pr, "CLIENT_ERROR", m);
		free(m);
	}
	cbl_error_free(e);
	return st;
}

int runner_fetch_git(runner_build *b, const char *url, const char *version, const char *dest,
		     const char *secondary, char **sha, cbl_error **err)
{
	runner_source_git_opts go = RUNNER_SOURCE_GIT_OPTS_INIT;
	runner_source_git_stats stats;
	go.url = url;
	go.version = version;
	go.depth = b->clone_depth;
	go.submodules = b->fetch_submodules;
	go.progress = runner_clone_progress;
	go.cancelled = runner_fetch_cancelled;
	go.deadline_mono_us = b->deadline_mono_us;
	go.payload = b;
	go.object_cache_dir = b->source_cache_dir;
	go.stats = &stats;
	if (b->clone_depth && runner_source_git_is_ssh(url))
		runner_warn(b, "libgit2 cannot fetch shallow over SSH: the whole history is downloaded, "
			       "then cut to depth %d",
			    b->clone_depth);
	int rc = runner_source_git_fetch(&go, dest, sha, err);
	if (b->source_cache_dir) {
		char *line = runner_source_git_cache_summary(&stats);
		if (secondary)
			runner_agent(b, "%s (secondary source %s)", line, secondary);
		else
			runner_agent(b, "%s", line);
		free(line);
	}
	return rc;
}

/* DOWNLOAD_SOURCE for a git source: a shallow clone of the one ref asked
 * for, as CodeBuild's git_clone_depth does. */
static runner_status clone_source(runner_build *b, phase_rec *pr)
{
	char *shown = runner_redact_url(b->git_url);
	cbl_error *e = NULL;
	if (b->clone_depth)
		runner_agent(b, "Cloning %s%s%s (depth %d)", shown, b->source_version ? " at " : "",
			     b->source_version ? b->source_version : "", b->clone_depth);
	else
		runner_agent(b, "Cloning %s%s%s (full history)", shown, b->source_version ? " at " : "",
			     b->source_version ? b->source_version : "");
	char *sha = NULL;
	runner_status st = RUNNER_STATUS_SUCCEEDED;
	if (runner_fetch_git(b, b->git_url, b->source_version, b->source_dir, NULL, &sha, &e) < 0) {
		st = runner_fetch_failed(b, pr, NULL, e);
	} else {
		b->resolved_version = sha;
		b->repo_url = shown;
		shown = NULL;
		runner_agent(b, "Checked out commit %s", b->resolved_version);
	}
	free(shown);
	return st;
}

static void set_codebuild_env(runner_build *b)
{
	cbl_strv *e = &b->env;
	char buf[64];
	runner_image_base_env(b, e);
	cbl_env_set(e, "AWS_DEFAULT_REGION", b->region);
	cbl_env_set(e, "AWS_REGION", b->region);
	cbl_env_set(e, "CODEBUILD_BUILD_ARN", b->arn);
	cbl_env_set(e, "CODEBUILD_BUILD_ID", b->id);
	cbl_env_set(e, "CODEBUILD_BUILD_IMAGE", b->image);
	snprintf(buf, sizeof(buf), "%lld", (long long)b->number);
	cbl_env_set(e, "CODEBUILD_BUILD_NUMBER", buf);
	cbl_env_set(e, "CODEBUILD_BUILD_SUCCEEDING", "1");
	char *url = cbl_xasprintf("https://%s.console.aws.amazon.com/codebuild/home?region=%s#/builds/%s/view/new",
				  b->region, b->region, b->id);
	cbl_env_set(e, "CODEBUILD_BUILD_URL", url);
	free(url);
	cbl_env_set(e, "CODEBUILD_CI", "true");
	cbl_env_set(e, "CODEBUILD_CONTAINER_NAME", "default");
	cbl_env_set(e, "CODEBUILD_INITIATOR", b->initiator);
	char *kms = cbl_xasprintf("arn:aws:kms:%s:%s:alias/aws/s3", b->region, b->account);
	cbl_env_set(e, "CODEBUILD_KMS_KEY_ID", kms);
	free(kms);
	cbl_env_set(e, "CODEBUILD_LAST_EXIT", "0");
	cbl_env_set(e, "CODEBUILD_LOCAL_BUILD", "true");
	cbl_env_set(e, "CODEBUILD_LOG_PATH", b->uuid);
	if (b->resolved_version)
		cbl_env_set(e, "CODEBUILD_RESOLVED_SOURCE_VERSION", b->resolved_version);
	cbl_env_set(e, "CODEBUILD_SOURCE_REPO_URL", b->repo_url ? b->repo_url : "");
	cbl_env_set(e, "CODEBUILD_SOURCE_VERSION",
		    b->source_version ? b->source_version : (b->resolved_version ? b->resolved_version : ""));
	cbl_env_set(e, "CODEBUILD_SRC_DIR", b->src_inner);
	runner_sources_env(b);
	if (b->sandbox) {
		/* inside, the build is root like on the service */
		cbl_env_set(e, "HOME", "/root");
		cbl_env_unset(e, "USER");
		cbl_env_unset(e, "LOGNAME");
		cbl_env_set(e, "OLDPWD", "/codebuild/readonly");
	}
	snprintf(buf, sizeof(buf), "%lld", (long long)(b->start_us / 1000));
	cbl_env_set(e, "CODEBUILD_START_TIME", buf);
}

static void apply_assignments(cbl_strv *env, const cbl_strv *list)
{
	for (size_t i = 0; i < list->n; i++) {
		const char *eq = strchr(list->v[i], '=');
		char *name = cbl_xstrndup(list->v[i], (size_t)(eq - list->v[i]));
		cbl_env_set(env, name, eq + 1);
		free(name);
	}
}

static bool overridden(const runner_build *b, const char *name)
{
	return cbl_env_get(&b->overrides, name) || cbl_env_get(&b->project_env, name);
}

/* Resolves parameter-store and secrets-manager variables (DOWNLOAD_SOURCE). */
static int resolve_secrets(runner_build *b, phase_rec *pr)
{
	const spec_buildspec *bs = b->spec;
	runner_secrets *secrets = NULL;
	cbl_error *e = NULL;
	int rc = 0;
	if (!bs->env.parameter_store.n && !bs->env.secrets_manager.n)
		return 0;
	if (b->secrets_file && runner_secrets_load(&secrets, b->secrets_file, &e) < 0) {
		phase_set_context(pr, "CLIENT_ERROR", e->msg);
		cbl_error_free(e);
		return -1;
	}
	if (bs->env.parameter_store.n) {
		runner_agent(b, "Decrypting parameter store environment variables");
		for (size_t i = 0; i < bs->env.parameter_store.n; i++) {
			const spec_kv *kv = &bs->env.parameter_store.items[i];
			char *v = NULL;
			if (runner_secrets_parameter(secrets, kv->value, &v, &e) < 0) {
				char *m = b->secrets_file
						  ? cbl_xstrdup(e->msg)
						  : cbl_xasprintf("%s (no --secrets-file given: parameter-store "
								  "values are read from it offline)",
								  e->msg);
				phase_set_context(pr, "Decrypted Variables Error", m);
				free(m);
				cbl_error_free(e);
				rc = -1;
				goto out;
			}
			runner_mask_add(&b->mask, v);
			if (!overridden(b, kv->key))
				cbl_env_set(&b->env, kv->key, v);
			free(v);
		}
	}
	for (size_t i = 0; i < bs->env.secrets_manager.n; i++) {
		const spec_kv *kv = &bs->env.secrets_manager.items[i];
		char *v = NULL;
		if (runner_secrets_secret(secrets, kv->value, &v, &e) < 0) {
			char *m = b->secrets_file
					  ? cbl_xasprintf("ResourceNotFoundException: %s", e->msg)
					  : cbl_xasprintf("ResourceNotFoundException: %s (no --secrets-file "
							  "given: secrets-manager values are read from it offline)",
							  e->msg);
			phase_set_context(pr, "Secrets Manager Error", m);
			free(m);
			cbl_error_free(e);
			rc = -1;
			goto out;
		}
		runner_mask_add(&b->mask, v);
		if (!overridden(b, kv->key))
			cbl_env_set(&b->env, kv->key, v);
		free(v);
	}
out:
	runner_secrets_free(secrets);
	return rc;
}

static void log_diags(runner_build *b)
{
	for (size_t i = 0; i < b->diags.n; i++) {
		cbl_buf s = CBL_BUF_INIT;
		spec_diag_format(&b->diags, &b->diags.items[i], &s);
		if (b->diags.items[i].severity == SPEC_DIAG_WARNING) {
			runner_agent(b, "[codebuild-local] %s", s.ptr);
			runner_event ev = {.kind = RUNNER_EV_WARNING, .phase = b->current, .text = s.ptr};
			runner_emit(b, &ev);
		} else {
			runner_agent(b, "%s", s.ptr);
		}
		cbl_buf_release(&s);
	}
}

static runner_status download_source(runner_build *b)
{
	phase_rec *pr = &b->phases[RUNNER_PHASE_DOWNLOAD_SOURCE];
	cbl_error *e = NULL;
	phase_start(b, RUNNER_PHASE_DOWNLOAD_SOURCE);
	runner_agent(b, "Phase is DOWNLOAD_SOURCE");
	runner_agent(b, "CODEBUILD_SRC_DIR=%s", b->src_inner);
	runner_sources_log_dirs(b);
	if (b->git_url) {
		runner_status cst = clone_source(b, pr);
		if (cst != RUNNER_STATUS_SUCCEEDED)
			return cst;
	} else {
		git_info(b);
	}
	{
		runner_status sst = runner_sources_download(b, pr);
		if (sst != RUNNER_STATUS_SUCCEEDED)
			return sst;
	}

	struct stat st;
	if (stat(b->buildspec_path, &st) < 0) {
		char *m = errno == ENOENT ? cbl_xstrdup("YAML file does not exist")
					  : cbl_xasprintf("stat %s: %s", b->buildspec_path, strerror(errno));
		phase_set_context(pr, "YAML_FILE_ERROR", m);
		free(m);
		b->spec_invalid = true;
		return RUNNER_STATUS_FAILED;
	}
	{
		/* the path as the build sees it */
		size_t sl = strlen(b->source_dir);
		if (!strncmp(b->buildspec_path, b->source_dir, sl) && b->buildspec_path[sl] == '/')
			runner_agent(b, "YAML location is %s%s", b->src_inner, b->buildspec_path + sl);
		else
			runner_agent(b, "YAML location is %s", b->buildspec_path);
	}
	spec_parse_opts po = SPEC_PARSE_OPTS_INIT;
	po.strict = b->strict;
	if (spec_parse_file(&b->spec, &b->diags, b->buildspec_path, b->buildspec_display, &po, &e) < 0) {
		log_diags(b);
		cbl_buf m = CBL_BUF_INIT;
		if (e->file && e->line)
			cbl_buf_printf(&m, "%s:%d:%d: %s", e->file, e->line, e->col, e->msg);
		else
			cbl_buf_puts(&m, e->msg);
		phase_set_context(pr, "YAML_FILE_ERROR", m.ptr);
		cbl_buf_release(&m);
		cbl_error_free(e);
		b->spec_invalid = true;
		return RUNNER_STATUS_FAILED;
	}
	log_diags(b);
	if (b->spec->has_phases == false && b->spec->batch.present)
		runner_warn(b, "this buildspec only defines a batch; batch builds are not run by codebuild-local yet, "
			"so no phase has commands");

	runner_agent(b, "Processing environment variables");
	set_codebuild_env(b);
	for (size_t i = 0; i < b->spec->env.variables.n; i++) {
		const spec_kv *kv = &b->spec->env.variables.items[i];
		cbl_env_set(&b->env, kv->key, kv->value);
	}
	if (resolve_secrets(b, pr) < 0)
		return RUNNER_STATUS_FAILED;
	if (b->spec->env.git_credential_helper) {
		/* CodeBuild's helper hands the source's credentials to the build's
		 * git commands; locally those are the user's stored git
		 * credentials, offered read-only through git's own store helper */
		const char *home = getenv("HOME");
		char *creds = home && *home ? cbl_path_join(home, ".git-credentials") : NULL;
		struct stat cst;
		char *data = NULL;
		size_t dlen = 0;
		cbl_error *ce = NULL;
		if (creds && stat(creds, &cst) == 0 && cbl_mkdir_p(b->tmpdir, 0700, &ce) == 0 &&
		    cbl_read_file(creds, 1 << 20, &data, &dlen, &ce) == 0) {
			/* a copy in the build's scratch, where the sandbox shows it */
			char *copy = cbl_path_join(b->tmpdir, "git-credentials");
			cbl_write_file_atomic(copy, data, dlen, 0600, false, &ce);
			free(copy);
			char *inner = cbl_path_join(b->sandbox ? "/codebuild/output/tmp" : b->tmpdir,
						    "git-credentials");
			char *helper = cbl_xasprintf("store --file=%s", inner);
			free(inner);
			cbl_env_set(&b->env, "GIT_CONFIG_COUNT", "1");
			cbl_env_set(&b->env, "GIT_CONFIG_KEY_0", "credential.helper");
			cbl_env_set(&b->env, "GIT_CONFIG_VALUE_0", helper);
			runner_agent(b, "git-credential-helper: the build's git uses the credentials in %s", creds);
			free(helper);
			free(data);
			cbl_error_free(ce);
		} else {
			free(data);
			cbl_error_free(ce);
			runner_warn(b, "git-credential-helper: yes, but there is no ~/.git-credentials to offer "
				       "the build's git commands");
		}
		free(creds);
	}
	runner_cache_hash_files_tool(b);
	apply_assignments(&b->env, &b->project_env);
	apply_assignments(&b->env, &b->overrides);

	const char *shell = b->spec->env.shell;
	if (runner_shell_init(&b->sh, b->tmpdir, shell, b->spec->version == SPEC_VERSION_0_2,
			      b->src_inner, (const char *const *)b->env.v, &e) < 0) {
		phase_set_context(pr, "CLIENT_ERROR", e->msg);
		cbl_error_free(e);
		return RUNNER_STATUS_FAILED;
	}
	if (b->sandbox) {
		runner_shell_adopt_pipe(&b->sh, b->out_pipe[0], b->out_pipe[1]);
		b->out_pipe[0] = b->out_pipe[1] = -1;
		runner_shell_use_sandbox(&b->sh, b->sandbox, "/codebuild/output/tmp");
	}
	b->sh.stop_r = b->stop_pipe[0];
	b->sh.on_line = on_output_line;
	b->sh.payload = b;
	b->sh.deadline_mono_us = b->deadline_mono_us;
	b->shell_ready = true;

	{
		char *code = NULL, *msg = NULL;
		spec_strlist cmds = {0};
		runner_status rst = runner_runtime_versions(b, &cmds, &code, &msg);
		if (rst != RUNNER_STATUS_SUCCEEDED) {
			phase_set_context(pr, code, msg);
			free(code);
			free(msg);
			b->spec_invalid = true;
			return rst;
		}
		/* the image's selection commands, through the normal command
		 * wrapper, so their exports carry over (reference §8.4) */
		cmds_result cr = run_commands(b, RUNNER_PHASE_DOWNLOAD_SOURCE, &cmds, pr);
		for (size_t i = 0; i < cmds.n; i++)
			free(cmds.items[i].s);
		free(cmds.items);
		if (cr != CMDS_OK)
			return cr == CMDS_TIMED_OUT  ? RUNNER_STATUS_TIMED_OUT
			       : cr == CMDS_STOPPED  ? RUNNER_STATUS_STOPPED
			       : cr == CMDS_FAULT    ? RUNNER_STATUS_FAULT
						     : RUNNER_STATUS_FAILED;
	}
	runner_agent(b, "Moving to directory %s", b->src_inner);
	if (!b->spec->cache.present || !b->spec->cache.paths.n) {
		runner_agent(b, "Cache is not defined in the buildspec");
		runner_agent(b, "Skip cache due to: no paths specified to be cached");
	} else if (b->no_cache) {
		runner_agent(b, "Skip cache due to: %s", b->no_cache_why);
	} else {
		runner_cache_restore(b);
	}
	runner_agent(b, "Registering with agent");
	int nphases = 0;
	for (int i = 0; i < SPEC_PHASE_COUNT; i++)
		nphases += b->spec->phases[i].present;
	runner_agent(b, "Phases found in YAML: %d", nphases);
	for (int i = 0; i < SPEC_PHASE_COUNT; i++)
		if (b->spec->phases[i].present)
			runner_agent(b, " %s: %zu commands", spec_phase_api_name((spec_phase_id)i),
			      b->spec->phases[i].commands.n);
	return RUNNER_STATUS_SUCCEEDED;
}

static void capture_exported(runner_build *b)
{
	const spec_strlist *ev = &b->spec->env.exported_variables;
	if (!ev->n || !b->shell_ready)
		return;
	const char **names = cbl_xcalloc(ev->n, sizeof(char *));
	for (size_t i = 0; i < ev->n; i++)
		names[i] = ev->items[i].s;
	char **vals = NULL;
	cbl_error *e = NULL;
	if (runner_shell_read_vars(&b->sh, b->env.v, names, ev->n, &vals, &e) == 0) {
		for (size_t i = 0; i < ev->n; i++) {
			cbl_strv_push(&b->exported_names, names[i]);
			cbl_strv_push_take(&b->exported_values, vals[i]);
		}
		free(vals);
	} else {
		runner_warn(b, "cannot capture exported variables: %s", e->msg);
		cbl_error_free(e);
	}
	free(names);
}

static void upload_artifacts(runner_build *b)
{
	phase_start(b, RUNNER_PHASE_UPLOAD_ARTIFACTS);
	runner_status st = runner_upload(b);
	phase_end(b, RUNNER_PHASE_UPLOAD_ARTIFACTS, st, true);
}

/* ---------------------------------------------------------------- public */

int runner_build_new(runner_build **out, const runner_opts *opts, cbl_error **err)
{
	runner_build *b = cbl_xcalloc(1, sizeof(*b));
	char uuid[37];
	int rc = 0;
	b->log_fd = -1;
	b->img_hold = -1;
	b->stop_pipe[0] = b->stop_pipe[1] = -1;
	b->out_pipe[0] = b->out_pipe[1] = -1;
	b->status = RUNNER_STATUS_IN_PROGRESS;
	b->clone_depth = opts->clone_depth;
	b->fetch_submodules = opts->fetch_submodules;
	if (opts->git_url) {
		b->git_url = cbl_xstrdup(opts->git_url);
	} else if (!opts->source_dir) {
		rc = cbl_error_set(err, CBL_EINVAL, "no source directory given");
		goto fail;
	} else {
		rc = cbl_realpath(opts->source_dir, &b->source_dir, err);
		if (rc)
			goto fail;
		struct stat st;
		if (stat(b->source_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			rc = cbl_error_set(err, CBL_EINVAL, "source '%s' is not a directory", opts->source_dir);
			goto fail;
		}
	}
	if (b->git_url && (opts->git_tracked_only || opts->source_mode == RUNNER_SOURCE_MOUNT)) {
		rc = cbl_error_set(err, CBL_EINVAL, "--git-tracked-only and --source-mode mount apply to a "
						    "local directory, not to a git URL");
		goto fail;
	}
	const char *bs = opts->buildspec ? opts->buildspec : "buildspec.yml";
	b->buildspec_arg = cbl_xstrdup(bs);
	if (b->source_dir)
		b->buildspec_path = bs[0] == '/' ? cbl_xstrdup(bs) : cbl_path_join(b->source_dir, bs);
	{
		const char *slash = strrchr(bs, '/');
		b->buildspec_display = cbl_xstrdup(opts->buildspec ? bs : (slash ? slash + 1 : bs));
	}
	b->home = cbl_xstrdup(opts->home ? opts->home : "");
	if (!opts->home) {
		free(b->home);
		b->home = store_default_home();
	}
	if (opts->project_name) {
		if (!store_project_name_valid(opts->project_name)) {
			rc = cbl_error_set(err, CBL_EINVAL,
					   "invalid project name '%s' (2-255 letters, digits, '-' or '_', "
					   "starting with a letter or digit)",
					   opts->project_name);
			goto fail;
		}
		b->project = cbl_xstrdup(opts->project_name);
	} else if (b->git_url) {
		/* named after the repository: .../org/app.git -> app */
		char *u = cbl_xstrdup(b->git_url);
		size_t ul = strlen(u);
		while (ul && u[ul - 1] == '/')
			u[--ul] = '\0';
		if (ul > 4 && !strcmp(u + ul - 4, ".git"))
			u[ul - 4] = '\0';
		char *base = strrchr(u, '/');
		char *colon = strrchr(u, ':');
		const char *name = base ? base + 1 : colon ? colon + 1 : u;
		b->project = store_project_name_from_dir(name);
		free(u);
	} else {
		b->project = store_project_name_from_dir(b->source_dir);
	}
	b->image = cbl_xstrdup(opts->image ? opts->image : "host");
	if (!runner_image_is_host(b->image) && opts->sandbox == RUNNER_SANDBOX_NONE) {
		rc = cbl_error_set(err, CBL_EINVAL, "image '%s' needs the sandbox: its root filesystem is what "
						    "the build runs on (--sandbox none runs on this machine)",
				   b->image);
		goto fail;
	}
	const runner_compute *ct = runner_compute_find(opts->compute_type ? opts->compute_type
									  : "BUILD_GENERAL1_SMALL");
	if (!ct) {
		rc = cbl_error_set(err, CBL_EINVAL, "unknown compute type '%s' (expected one of %s)",
				   opts->compute_type, runner_compute_names());
		goto fail;
	}
	b->compute_type = cbl_xstrdup(ct->name);
	b->compute_explicit = opts->compute_type != NULL;
	b->sandbox_mode = opts->sandbox;
	b->source_mode = opts->source_mode;
	b->network_none = opts->network_none;
	if (b->network_none && b->sandbox_mode == RUNNER_SANDBOX_NONE) {
		rc = cbl_error_set(err, CBL_EINVAL, "--network none needs the sandbox (it cannot be combined "
						    "with --sandbox none)");
		goto fail;
	}
	b->region = cbl_xstrdup(opts->region ? opts->region : "us-east-1");
	b->account = cbl_xstrdup(opts->account_id ? opts->account_id : "000000000000");
	const char *user = getenv("USER");
	b->initiator = cbl_xstrdup(opts->initiator ? opts->initiator : (user && *user ? user : "local"));
	b->source_version = opts->source_version ? cbl_xstrdup(opts->source_version) : NULL;
	b->secrets_file = opts->secrets_file ? cbl_xstrdup(opts->secrets_file) : NULL;
	b->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 60 * 60000;
	b->packaging_none = opts->packaging_none;
	b->reports_dir = opts->reports_dir ? cbl_xstrdup(opts->reports_dir) : NULL;
	b->artifacts_dir = opts->artifacts_dir ? cbl_xstrdup(opts->artifacts_dir) : NULL;
	b->strict = opts->strict;
	b->no_cache = opts->no_cache || opts->no_buildspec_cache;
	b->no_cache_why = opts->no_cache ? "--no-cache" : "the project's cache type (NO_CACHE, or LOCAL without LOCAL_CUSTOM_CACHE)";
	b->insecure_registries = opts->insecure_registries;
	b->cache_dir = opts->cache_dir ? cbl_xstrdup(opts->cache_dir) : NULL;
	if (opts->source_cache && !opts->no_cache) {
		char *root = b->cache_dir ? cbl_xstrdup(b->cache_dir) : cache_default_dir(b->home);
		b->source_cache_dir = cbl_path_join(root, "git");
		free(root);
	}
	b->on_event = opts->on_event;
	b->payload = opts->payload;
	for (const char *const *e = opts->env_overrides; e && *e; e++) {
		if (!strchr(*e, '=') || **e == '=') {
			rc = cbl_error_set(err, CBL_EINVAL, "invalid environment variable '%s' (expected NAME=VALUE)", *e);
			goto fail;
		}
		cbl_strv_push(&b->overrides, *e);
	}
	for (const char *const *e = opts->project_env; e && *e; e++) {
		if (!strchr(*e, '=') || **e == '=') {
			rc = cbl_error_set(err, CBL_EINVAL, "invalid environment variable '%s' (expected NAME=VALUE)", *e);
			goto fail;
		}
		cbl_strv_push(&b->project_env, *e);
	}
	if (opts->uuid) {
		/* a launcher's (StartBuild): it already answered with this id */
		size_t ul = strlen(opts->uuid);
		if (ul != 36 || strspn(opts->uuid, "0123456789abcdef-") != ul) {
			rc = cbl_error_set(err, CBL_EINVAL, "invalid build uuid '%s'", opts->uuid);
			goto fail;
		}
		snprintf(uuid, sizeof(uuid), "%s", opts->uuid);
	} else {
		cbl_uuid4(uuid);
	}
	b->uuid = cbl_xstrdup(uuid);
	b->id = cbl_xasprintf("%s:%s", b->project, uuid);
	b->arn = cbl_xasprintf("arn:aws:codebuild:%s:%s:build/%s", b->region, b->account, b->id);
	runner_sweep_trash(b->home);
	if (opts->number > 0)
		b->number = opts->number;
	else if ((rc = store_next_build_number(b->home, b->project, &b->number, err)))
		goto fail;
	rc = store_build_dir_create(b->home, b->project, uuid, &b->dir, err);
	if (rc)
		goto fail;
	b->log_path = cbl_path_join(b->dir, "build.log");
	if (!b->artifacts_dir)
		b->artifacts_dir = cbl_path_join(b->dir, "artifacts");
	if (b->git_url) {
		/* the clone is private already: no snapshot needed */
		b->git_parent = cbl_path_join(b->dir, "git");
		b->source_dir = cbl_path_join(b->git_parent, "src");
		b->buildspec_path = b->buildspec_arg[0] == '/' ? cbl_xstrdup(b->buildspec_arg)
							       : cbl_path_join(b->source_dir, b->buildspec_arg);
	} else if (opts->git_tracked_only)
		b->tracked_dir = cbl_path_join(b->dir, "tracked"); /* private already: no snapshot needed */
	else if (b->source_mode == RUNNER_SOURCE_SNAPSHOT &&
		 (b->sandbox_mode == RUNNER_SANDBOX_NONE || !sandbox_can_overlay()))
		b->src_copy = cbl_path_join(b->dir, "src");
	if (b->sandbox_mode == RUNNER_SANDBOX_NAMESPACES) {
		/* the service's shape: a random number of 2 to 10 digits [obs] */
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)cbl_mono_us();
		b->src_inner = cbl_xasprintf("/codebuild/output/src%u/src", r % 4000000000u + 10);
		b->scratch = cbl_path_join(b->dir, "sandbox");
	} else {
		b->src_inner = cbl_xstrdup(b->tracked_dir ? b->tracked_dir
						       : b->src_copy ? b->src_copy : b->source_dir);
	}
	b->view = cbl_xstrdup(b->tracked_dir ? b->tracked_dir : b->src_copy ? b->src_copy : b->source_dir);
	b->tmpdir = cbl_path_join(b->dir, "tmp");
	if (opts->n_secondary) {
		rc = runner_sources_init(b, opts, err);
		if (rc)
			goto fail;
	}
	if (pipe2(b->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create pipe");
		goto fail;
	}
	*out = b;
	return 0;
fail:
	runner_build_free(b);
	return rc;
}

void runner_build_stop(runner_build *b)
{
	b->stop_requested = 1;
	if (b->stop_pipe[1] >= 0) {
		char c = 's';
		ssize_t r = write(b->stop_pipe[1], &c, 1);
		(void)r;
	}
}

/* --git-tracked-only: the build sees exactly what a clone of HEAD would
 * contain, checked out by libgit2 into a private directory. */
static int checkout_tracked(runner_build *b, cbl_error **err)
{
	git_repository *repo = NULL;
	git_object *tree = NULL;
	int rc = 0;
	git_libgit2_init();
	if (git_repository_open_ext(&repo, b->source_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_revparse_single(&tree, repo, "HEAD^{tree}") < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EINVAL, "--git-tracked-only: %s is not a git repository with a "
						    "commit (%s)",
				   b->source_dir, ge && ge->message ? ge->message : "no HEAD");
		goto out;
	}
	git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	co.target_directory = b->tracked_dir;
	if (git_checkout_tree(repo, tree, &co) < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EIO, "--git-tracked-only: cannot check out HEAD: %s",
				   ge && ge->message ? ge->message : "unknown error");
	}
out:
	git_object_free(tree);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}

/* Snapshot mode with an overlay: the working tree is the read-only lower
 * layer of an overlay mounted in a private mount namespace of the runner
 * (so nothing is ever mounted on the host, and it all vanishes with the
 * runner whatever happens), whose upper layer is a tmpfs.  The sandbox binds
 * that view at /codebuild/output/srcN/src and the runner reads the build's
 * results (artifacts, reports) from the same view.  It costs the same for 10
 * files or 100,000, and the build can never change the working tree. */
static int setup_view(runner_build *b, cbl_error **err)
{
	char *view = cbl_path_join(b->dir, "view");
	int rc = runner_private_overlay(b, b->source_dir, view, err);
	if (rc) {
		free(view);
		return rc;
	}
	free(b->view);
	b->view = view;
	b->view_mounted = true;
	return 0;
}

/* PROVISIONING: the build's namespaces, limits from the compute type. */
static int provision_sandbox(runner_build *b)
{
	cbl_error *e = NULL;
	phase_rec *pr = &b->phases[RUNNER_PHASE_PROVISIONING];
	const runner_compute *ct = runner_compute_find(b->compute_type);
	if (pipe2(b->out_pipe, O_CLOEXEC) < 0) {
		cbl_error_set_errno(&e, CBL_EIO, errno, "cannot create the output pipe");
		goto fail;
	}
	if (cbl_mkdir_p(b->scratch, 0700, &e) < 0 || cbl_mkdir_p(b->tmpdir, 0700, &e) < 0)
		goto fail;
	sandbox_opts so = SANDBOX_OPTS_INIT;
	so.rootfs = runner_image_rootfs(b);
	so.scratch = b->scratch;
	const char *src_host = b->tracked_dir ? b->tracked_dir : b->src_copy ? b->src_copy : b->source_dir;
	const char *src_inner = b->src_inner;
	const char *const *binds = NULL;
	if (b->multi_root) {
		src_host = b->multi_root;
		src_inner = b->multi_inner;
		binds = (const char *const *)b->sandbox_binds.v;
	} else if (b->source_mode == RUNNER_SOURCE_SNAPSHOT && !b->src_copy && !b->tracked_dir && !b->git_parent) {
		if (setup_view(b, &e) < 0)
			goto fail;
		src_host = b->view;
	}
	/* /codebuild/output: the source (for a git clone, its parent: the clone
	 * is renamed into it later) and the build's scratch */
	sandbox_mount *mounts = cbl_xcalloc(4 + b->sandbox_binds.n / 2, sizeof(*mounts));
	size_t nm = 0;
	char *src_parent = cbl_xstrdup(src_inner);
	char *slash = strrchr(src_parent, '/');
	if (slash && slash != src_parent)
		*slash = '\0';
	mounts[nm++] = (sandbox_mount){SANDBOX_MOUNT_TMPFS, NULL, "/codebuild/output", 0755};
	if (b->git_parent)
		mounts[nm++] = (sandbox_mount){SANDBOX_MOUNT_BIND, b->git_parent, src_parent, 0};
	else
		mounts[nm++] = (sandbox_mount){SANDBOX_MOUNT_BIND, src_host, src_inner, 0};
	for (const char *const *bd = binds; bd && bd[0] && bd[1]; bd += 2)
		mounts[nm++] = (sandbox_mount){SANDBOX_MOUNT_BIND, bd[0], bd[1], 0};
	mounts[nm++] = (sandbox_mount){SANDBOX_MOUNT_BIND, b->tmpdir, "/codebuild/output/tmp", 0};
	mounts[nm++] = (sandbox_mount){SANDBOX_MOUNT_DIR, NULL, "/codebuild/readonly", 0};
	so.mounts = mounts;
	so.n_mounts = nm;
	so.cwd = b->git_parent ? "/" : src_inner; /* a clone is not there yet */
	so.hostname = "codebuild-local";
	so.network_none = b->network_none;
	so.out_fd = b->out_pipe[1];
	/* Putting a process into a cgroup v1 costs one RCU grace period in the
	 * kernel (15-20 ms on a small VM), more than the rest of the sandbox:
	 * the limits are enforced when a compute type is asked for, and the
	 * default says so instead of slowing every build. */
	if (b->compute_explicit) {
		so.memory_bytes = (int64_t)ct->memory_gb << 30;
		so.pids_max = 32768; /* ours: the service publishes no process limit */
	} else {
		runner_agent(b, "[codebuild-local] Compute type %s (the default): its %d GB memory limit is not "
				"enforced; pass --compute-type to enforce it",
			     ct->name, ct->memory_gb);
	}
	so.cpus = ct->vcpus;
	so.cgroup_name = b->uuid;
	int started = sandbox_start(&b->sandbox, &so, &e);
	free(mounts);
	free(src_parent);
	if (started < 0)
		goto fail;
	for (const char *const *w = sandbox_warnings(b->sandbox); *w; w++)
		runner_warn(b, "%s", *w);

	if (geteuid() != 0)
		runner_warn(b, "not root: the sandbox shows the host's / read-only (no overlay in an "
			       "unprivileged user namespace); /tmp, /root and /var/tmp are private");
	return 0;
fail:
	{
		char *m = cbl_xasprintf("%s (run with --sandbox none to build without isolation)", e->msg);
		phase_set_context(pr, "CLIENT_ERROR", m);
		free(m);
		cbl_error_free(e);
	}
	return -1;
}

static void finalize_status(runner_build *b)
{
	if (b->status == RUNNER_STATUS_IN_PROGRESS)
		b->status = RUNNER_STATUS_SUCCEEDED;
}

int runner_build_run(runner_build *b, cbl_error **err)
{
	int rc = 0;
	/* orphaned daemons of the build re-parent to us, so none survives it */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	b->start_us = cbl_now_us();
	/* the timeout covers the whole build, source download included */
	b->deadline_mono_us = cbl_mono_us() + b->timeout_ms * 1000;
	b->log_fd = open(b->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
	if (b->log_fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", b->log_path);
	runner_write_pidfile(b->dir);

	phase_start(b, RUNNER_PHASE_SUBMITTED);
	phase_end(b, RUNNER_PHASE_SUBMITTED, RUNNER_STATUS_SUCCEEDED, false);
	phase_start(b, RUNNER_PHASE_QUEUED);
	phase_end(b, RUNNER_PHASE_QUEUED, RUNNER_STATUS_SUCCEEDED, false);
	phase_start(b, RUNNER_PHASE_PROVISIONING);
	{
		cbl_error *e = NULL;
		save_record(b, false, &e);
		if (e) {
			rc = cbl_error_wrap(&e, "cannot write build record");
			*err = e;
			return rc;
		}
	}
	runner_agent(b, "Running on codebuild-local %s (image %s, %s, %s)", CBL_VERSION, b->image,
		     b->compute_type, b->sandbox_mode == RUNNER_SANDBOX_NONE ? "no sandbox" : "sandboxed");
	if (b->multi_root) {
		cbl_error *e = NULL;
		if (runner_sources_provision(b, &b->sandbox_binds, &e) < 0) {
			phase_set_context(&b->phases[RUNNER_PHASE_PROVISIONING], "CLIENT_ERROR", e->msg);
			cbl_error_free(e);
			phase_end(b, RUNNER_PHASE_PROVISIONING, RUNNER_STATUS_FAULT, true);
			goto finalize;
		}
	}
	if (b->git_parent) {
		cbl_error *e = NULL;
		if (cbl_mkdir_p(b->git_parent, 0755, &e) < 0) {
			phase_set_context(&b->phases[RUNNER_PHASE_PROVISIONING], "CLIENT_ERROR", e->msg);
			cbl_error_free(e);
			phase_end(b, RUNNER_PHASE_PROVISIONING, RUNNER_STATUS_FAULT, true);
			goto finalize;
		}
	}
	if (b->tracked_dir) {
		cbl_error *e = NULL;
		if (checkout_tracked(b, &e) < 0) {
			phase_set_context(&b->phases[RUNNER_PHASE_PROVISIONING], "CLIENT_ERROR", e->msg);
			cbl_error_free(e);
			phase_end(b, RUNNER_PHASE_PROVISIONING, RUNNER_STATUS_FAILED, true);
			goto finalize;
		}
	}
	if (b->src_copy) {
		/* snapshot without an overlay: the build gets its own copy */
		cbl_error *e = NULL;
		if (cbl_copy_tree(b->source_dir, b->src_copy, &e) < 0) {
			phase_set_context(&b->phases[RUNNER_PHASE_PROVISIONING], "CLIENT_ERROR", e->msg);
			cbl_error_free(e);
			phase_end(b, RUNNER_PHASE_PROVISIONING, RUNNER_STATUS_FAULT, true);
			goto finalize;
		}
	}
	if (!runner_image_is_host(b->image)) {
		char *code = NULL, *msg = NULL;
		if (runner_image_resolve(b, &code, &msg) < 0) {
			phase_set_context(&b->phases[RUNNER_PHASE_PROVISIONING], code, msg);
			free(code);
			free(msg);
			phase_end(b, RUNNER_PHASE_PROVISIONING, RUNNER_STATUS_FAILED, true);
			goto finalize;
		}
	}
	if (b->sandbox_mode == RUNNER_SANDBOX_NONE)
		runner_warn(b, "no sandbox (--sandbox none): commands run directly on this machine as the "
			       "invoking user, in %s",
			    b->source_dir);
	else if (provision_sandbox(b) < 0) {
		phase_end(b, RUNNER_PHASE_PROVISIONING, RUNNER_STATUS_FAULT, true);
		goto finalize;
	}
	runner_agent(b, "Waiting for agent ping");
	runner_agent(b, "Waiting for DOWNLOAD_SOURCE");
	phase_end(b, RUNNER_PHASE_PROVISIONING, RUNNER_STATUS_SUCCEEDED, false);

	runner_status st = download_source(b);
	if (b->stop_requested && st == RUNNER_STATUS_SUCCEEDED) {
		phase_set_context(&b->phases[RUNNER_PHASE_DOWNLOAD_SOURCE], "BUILD_STOPPED", "Build was stopped");
		st = RUNNER_STATUS_STOPPED;
	}
	phase_end(b, RUNNER_PHASE_DOWNLOAD_SOURCE, st, true);
	if (st != RUNNER_STATUS_SUCCEEDED)
		goto finalize;
	{
		cbl_error *e = NULL;
		save_record(b, false, &e);
		cbl_error_free(e);
	}

	bool upload = true;
	for (runner_phase_type p = RUNNER_PHASE_INSTALL; p <= RUNNER_PHASE_POST_BUILD; p++) {
		if (b->stop_requested) {
			/* stopped between two phases: the next one is entered and
			 * ends STOPPED, as the service shows a stopped build */
			phase_start(b, p);
			runner_agent(b, "Entering phase %s", runner_phase_name(p));
			phase_set_context(&b->phases[p], "BUILD_STOPPED", "Build was stopped");
			phase_end(b, p, RUNNER_STATUS_STOPPED, true);
			b->status = RUNNER_STATUS_STOPPED;
			upload = false;
			break;
		}
		st = run_phase(b, p);
		{
			cbl_error *e = NULL;
			save_record(b, false, &e);
			cbl_error_free(e);
		}
		if (st == RUNNER_STATUS_SUCCEEDED)
			continue;
		if (st != RUNNER_STATUS_FAILED) { /* TIMED_OUT, STOPPED, FAULT */
			upload = false;
			break;
		}
		spec_on_failure_kind of = b->spec->phases[p - RUNNER_PHASE_INSTALL].on_failure.kind;
		if (of == SPEC_ON_FAILURE_CONTINUE)
			continue;
		if (of == SPEC_ON_FAILURE_ABORT) {
			upload = false;
			break;
		}
		if (p == RUNNER_PHASE_INSTALL || p == RUNNER_PHASE_PRE_BUILD) {
			upload = false;
			break;
		}
		/* BUILD and POST_BUILD failures go on */
	}
	capture_exported(b);
	if (upload)
		upload_artifacts(b);

finalize:
	phase_start(b, RUNNER_PHASE_FINALIZING);
	if (b->shell_ready) {
		/* kill first: a background job flooding the pipe cannot hold
		 * FINALIZING open; then take what is left in the pipe */
		runner_shell_kill_all(&b->sh);
		runner_shell_drain(&b->sh, 0);
	}
	if (b->sandbox) {
		/* the init takes the whole PID namespace and its mounts with it */
		sandbox_free(b->sandbox);
		b->sandbox = NULL;
		if (b->shell_ready)
			b->sh.sandbox = NULL;
	}
	if (b->scratch)
		rmdir(b->scratch);
	/* the cache's overlays went with the sandbox; the view is still here */
	runner_cache_save(b);
	/* overlays first: the trees removed next hold their mount points */
	runner_private_ns_cleanup(b);
	if (b->view_mounted) {
		rmdir(b->view);
		b->view_mounted = false;
	}
	if (b->multi_root || b->src_copy || b->tracked_dir || b->git_parent)
		runner_discard_tree(b, b->multi_root	? b->multi_root
				       : b->src_copy	? b->src_copy
				       : b->tracked_dir ? b->tracked_dir
							: b->git_parent);
	phase_end(b, RUNNER_PHASE_FINALIZING, RUNNER_STATUS_SUCCEEDED, false);
	phase_start(b, RUNNER_PHASE_COMPLETED);
	b->end_us = b->phases[RUNNER_PHASE_COMPLETED].start_us;
	finalize_status(b);
	{
		cbl_error *e = NULL;
		/* no fsync: the rename publishes it atomically (ext4's
		 * auto_da_alloc flushes a replaced file's data first), and an
		 * fsync under I/O load cost more than the whole build */
		save_record(b, false, &e);
		if (e) {
			rc = cbl_error_wrap(&e, "cannot write build record");
			*err = e;
		}
	}
	{
		/* the scratch (carried env, credentials copy) never outlives the build */
		cbl_error *e = NULL;
		cbl_rm_rf(b->tmpdir, &e);
		cbl_error_free(e);
	}
	if (b->log_fd >= 0) {
		close(b->log_fd);
		b->log_fd = -1;
	}
	return rc;
}

runner_status runner_build_status(const runner_build *b) { return b->status; }
json_t *runner_build_reports(const runner_build *b) { return b->reports; }
bool runner_build_spec_invalid(const runner_build *b) { return b->spec_invalid; }
const spec_diags *runner_build_diags(const runner_build *b) { return &b->diags; }
const char *runner_build_id(const runner_build *b) { return b->id; }
const char *runner_build_dir(const runner_build *b) { return b->dir; }
const char *runner_build_log_path(const runner_build *b) { return b->log_path; }

json_t *runner_build_record(runner_build *b)
{
	if (!b->record)
		b->record = build_record(b);
	return b->record;
}

void runner_build_free(runner_build *b)
{
	if (!b)
		return;
	if (b->shell_ready)
		runner_shell_release(&b->sh);
	for (int i = 0; i < RUNNER_PHASE_COUNT; i++) {
		free(b->phases[i].code);
		free(b->phases[i].message);
	}
	char **strs[] = {&b->home, &b->project, &b->uuid, &b->id, &b->arn, &b->dir, &b->log_path,
			 &b->tmpdir, &b->source_dir, &b->buildspec_path, &b->buildspec_display,
			 &b->image, &b->compute_type, &b->region, &b->account, &b->initiator,
			 &b->source_version, &b->secrets_file, &b->resolved_version, &b->repo_url,
			 &b->artifacts_dir, &b->reports_dir, &b->src_inner, &b->scratch, &b->src_copy,
			 &b->view, &b->tracked_dir, &b->git_url, &b->git_parent, &b->buildspec_arg,
			 &b->source_cache_dir};
	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++)
		free(*strs[i]);
	cbl_strv_release(&b->overrides);
	cbl_strv_release(&b->project_env);
	cbl_strv_release(&b->env);
	cbl_strv_release(&b->exported_names);
	cbl_strv_release(&b->exported_values);
	spec_diags_release(&b->diags);
	spec_buildspec_free(b->spec);
	runner_mask_release(&b->mask);
	if (b->log_fd >= 0)
		close(b->log_fd);
	sandbox_free(b->sandbox);
	for (int i = 0; i < 2; i++)
		if (b->out_pipe[i] >= 0)
			close(b->out_pipe[i]);
	if (b->stop_pipe[0] >= 0)
		close(b->stop_pipe[0]);
	if (b->stop_pipe[1] >= 0)
		close(b->stop_pipe[1]);
	json_decref(b->record);
	json_decref(b->artifacts_rec);
	json_decref(b->secondary_recs);
	json_decref(b->reports);
	cbl_strv_release(&b->report_arns);
	cbl_strv_release(&b->sandbox_binds);
	runner_sources_free(b);
	runner_image_free(b);
	runner_cache_free(b);
	free(b);
}
