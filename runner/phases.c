/* runner/phases.c - INSTALL, PRE_BUILD, BUILD, POST_BUILD: CodeBuild's command model, on-failure and finally. */
#include "runner/runner_internal.h"
#include "sandbox/sandbox.h"
#include "util/alloc.h"
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

static void set_succeeding(runner_build *b, bool ok)
{
	const char *v = ok ? "1" : "0";
	cbl_env_set(&b->vars.env, "CODEBUILD_BUILD_SUCCEEDING", v);
	if (b->shell_ready) {
		cbl_error *e = NULL;
		runner_shell_set_var(&b->sh, "CODEBUILD_BUILD_SUCCEEDING", v, &e);
		cbl_error_free(e);
	}
}


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

/* A command failed on the read-only root of a normal user's host image:
 * why, and what to do, once a build, right under the failure. */
static void rofs_hint(runner_build *b)
{
	if (!b->ro_root || !b->rofs_seen || b->rofs_hinted)
		return;
	b->rofs_hinted = true;
	runner_warn(b, "that command wrote to the host's system directories, which are read-only for a normal "
		       "user's build (the host image: the host's / without an overlay). Use an image, whose root "
		       "is writable and thrown away after the build (-i IMAGE, e.g. -i aws/codebuild/standard:7.0 "
		       "or a Debian image imported with `codebuild-local images import`), or run as root");
}

/* A stop or the deadline while the build was paused. */
static runner_cmds_result paused_end(runner_build *b, runner_outcome *o, runner_cmd_outcome how)
{
	if (how == RUNNER_CMD_TIMED_OUT) {
		runner_outcome_set(b, o, "BUILD_TIMED_OUT", "Build has timed out. ");
		return RUNNER_CMDS_TIMED_OUT;
	}
	runner_outcome_set(b, o, "BUILD_STOPPED", "Build was stopped");
	return RUNNER_CMDS_STOPPED;
}

runner_cmds_result runner_run_commands(runner_build *b, runner_phase_type p, const spec_strlist *cmds,
				       runner_outcome *o)
{
	for (size_t i = 0; i < cmds->n; i++) {
		const char *cmd = cmds->items[i].s;
		if (b->stop_requested) {
			runner_outcome_set(b, o, "BUILD_STOPPED", "Build was stopped");
			return RUNNER_CMDS_STOPPED;
		}
		runner_agent(b, "Running command %s", cmd);
		if (runner_is_breakpoint(cmd)) {
			/* as on the service: a pause with debugging on, else nothing */
			runner_cmd_outcome how = b->debug ? runner_debug_pause(b, p, cmd, true) : RUNNER_CMD_EXITED;
			if (how != RUNNER_CMD_EXITED)
				return paused_end(b, o, how);
			continue;
		}
		b->rofs_seen = false;
		char *masked = runner_mask_apply(&b->log.mask, cmd, strlen(cmd));
		runner_event ev = {.kind = RUNNER_EV_COMMAND_START, .phase = p, .text = masked};
		runner_emit(b, &ev);
		runner_cmd_outcome how = RUNNER_CMD_EXITED;
		int status = 0;
		cbl_error *e = NULL;
		if (runner_shell_exec(&b->sh, cmd, b->vars.env.v, &how, &status, &e) < 0) {
			runner_outcome_set(b, o, "CLIENT_ERROR", e->msg);
			runner_agent(b, "Runtime error (%s)", e->msg);
			cbl_error_free(e);
			free(masked);
			return RUNNER_CMDS_FAULT;
		}
		runner_usage_command(b, p);
		/* recent agents write one empty line after each command's output */
		runner_log_line(b, "", 0, false);
		runner_event ev2 = {.kind = RUNNER_EV_COMMAND_EXIT, .phase = p, .text = masked,
				    .exit_status = status};
		runner_emit(b, &ev2);
		free(masked);
		if (how == RUNNER_CMD_TIMED_OUT) {
			runner_outcome_set(b, o, "BUILD_TIMED_OUT", "Build has timed out. ");
			return RUNNER_CMDS_TIMED_OUT;
		}
		if (how == RUNNER_CMD_STOPPED) {
			runner_outcome_set(b, o, "BUILD_STOPPED", "Build was stopped");
			return RUNNER_CMDS_STOPPED;
		}
		if (b->sh.init_gone) {
			runner_outcome_set(b, o, "CLIENT_ERROR", "sandbox: the build's init process died");
			runner_agent(b, "Runtime error (sandbox: the build's init process died)");
			return RUNNER_CMDS_FAULT;
		}
		if (status != 0) {
			char reason[128];
			int sig = b->sh.last_signal;
			if ((sig == SIGKILL || status == 128 + SIGKILL) && b->sandbox && sandbox_oom(b->sandbox)) {
				const runner_compute *ct = runner_compute_find(b->cfg.compute_type);
				snprintf(reason, sizeof(reason),
					 "signal: killed (out of memory: over the %d GB of %s)",
					 ct ? ct->memory_gb : 0, b->cfg.compute_type);
			} else if (sig)
				/* Go's exec.ExitError wording, as the agent prints it */
				snprintf(reason, sizeof(reason), "signal: %s", go_signal_name(sig));
			else
				snprintf(reason, sizeof(reason), "exit status %d", status);
			runner_agent(b, "Command did not exit successfully %s %s", cmd, reason);
			rofs_hint(b);
			char *msg = cbl_xasprintf("Error while executing command: %s. Reason: %s", cmd,
						  reason);
			runner_outcome_set(b, o, "COMMAND_EXECUTION_ERROR", msg);
			free(msg);
			if (b->debug_failures) {
				runner_cmd_outcome dh = runner_debug_pause(b, p, cmd, false);
				if (dh != RUNNER_CMD_EXITED)
					return paused_end(b, o, dh);
			}
			return RUNNER_CMDS_FAILED;
		}
	}
	return RUNNER_CMDS_OK;
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

/* The user a phase's commands run as: the phase's run-as, the buildspec's,
 * else the image's User; applied only where the sandbox can switch to it:
 * as root, or as a normal user whose subordinate ids the sandbox maps. */
static void apply_run_as(runner_build *b, const spec_phase *sp)
{
	const char *user = sp->run_as ? sp->run_as : b->spec->run_as ? b->spec->run_as : runner_image_user(b);
	b->sh.run_as = NULL;
	if (!sp->present || !user)
		return;
	if (b->sandbox && (geteuid() == 0 || b->ids_full))
		b->sh.run_as = user;
	else if (b->sandbox)
		runner_warn(b, "run-as '%s' is not applied: the sandbox maps only the invoking user (no subordinate "
			       "ids, see above), so commands run as root inside",
			    user);
	else
		runner_warn(b, "run-as '%s' is not applied without the sandbox: commands run as the invoking user",
			    user);
}

static runner_status stopped_or_timed_out(runner_cmds_result r)
{
	return r == RUNNER_CMDS_TIMED_OUT ? RUNNER_STATUS_TIMED_OUT : RUNNER_STATUS_STOPPED;
}

/* One attempt at a phase: its commands, then its finally block.  The
 * phase's context is the commands' failure, else the finally block's. */
static runner_status phase_attempt(runner_build *b, runner_phase_type p, const spec_phase *sp,
				   runner_outcome *o)
{
	runner_outcome_set(b, o, NULL, NULL);
	runner_cmds_result r = runner_run_commands(b, p, &sp->commands, o);
	if (r == RUNNER_CMDS_TIMED_OUT || r == RUNNER_CMDS_STOPPED)
		return stopped_or_timed_out(r);
	runner_cmds_result fr = RUNNER_CMDS_OK;
	if (sp->finally.n) {
		runner_outcome fin = {0};
		fr = runner_run_commands(b, p, &sp->finally, &fin);
		if (r == RUNNER_CMDS_OK && fr != RUNNER_CMDS_OK)
			runner_outcome_set(b, o, fin.code, fin.message);
		runner_outcome_release(&fin);
		if (fr == RUNNER_CMDS_TIMED_OUT || fr == RUNNER_CMDS_STOPPED) {
			if (r == RUNNER_CMDS_OK || r == RUNNER_CMDS_FAILED)
				runner_outcome_set(b, o, fr == RUNNER_CMDS_TIMED_OUT ? "BUILD_TIMED_OUT" : "BUILD_STOPPED",
						   fr == RUNNER_CMDS_TIMED_OUT ? "Build has timed out. "
									       : "Build was stopped");
			return stopped_or_timed_out(fr);
		}
	}
	if (r == RUNNER_CMDS_FAULT || fr == RUNNER_CMDS_FAULT)
		return RUNNER_STATUS_FAULT;
	return r == RUNNER_CMDS_OK && fr == RUNNER_CMDS_OK ? RUNNER_STATUS_SUCCEEDED : RUNNER_STATUS_FAILED;
}

runner_status runner_run_phase(runner_build *b, runner_phase_type p)
{
	const spec_phase *sp = &b->spec->phases[p - RUNNER_PHASE_INSTALL];
	runner_outcome *o = &b->phases[p].ctx;
	runner_status st;
	runner_phase_start(b, p);
	runner_agent(b, "Entering phase %s", runner_phase_name(p));
	apply_run_as(b, sp);
	for (int attempt = 0;; attempt++) {
		st = phase_attempt(b, p, sp, o);
		if (st != RUNNER_STATUS_FAILED || !retry_allowed(&sp->on_failure, attempt, o->message))
			break;
		/* [inferred] RETRY re-runs the phase (reference §10.2) */
		runner_agent(b, "Phase complete: %s State: FAILED", runner_phase_name(p));
		runner_agent(b, "Phase context status code: %s Message: %s", o->code ? o->code : "",
			     o->message ? o->message : "");
		runner_agent(b, "[codebuild-local] Retrying phase %s (attempt %d of %d)", runner_phase_name(p), attempt + 2,
			     sp->on_failure.retry_count + 1);
	}
	b->sh.run_as = NULL; /* the agent's own steps run as root */
	runner_phase_end(b, p, st, true);
	if (st != RUNNER_STATUS_SUCCEEDED)
		set_succeeding(b, false);
	return st;
}

void runner_capture_exported(runner_build *b)
{
	const spec_strlist *ev = &b->spec->env.exported_variables;
	if (!ev->n || !b->shell_ready)
		return;
	const char **names = cbl_xcalloc(ev->n, sizeof(char *));
	for (size_t i = 0; i < ev->n; i++)
		names[i] = ev->items[i].s;
	char **vals = NULL;
	cbl_error *e = NULL;
	if (runner_shell_read_vars(&b->sh, b->vars.env.v, names, ev->n, &vals, &e) == 0) {
		for (size_t i = 0; i < ev->n; i++) {
			cbl_strv_push(&b->vars.exported_names, names[i]);
			cbl_strv_push_take(&b->vars.exported_values, vals[i]);
		}
		free(vals);
	} else {
		runner_warn_drop(b, &e, "cannot capture exported variables: %s", e->msg);
	}
	free(names);
}
