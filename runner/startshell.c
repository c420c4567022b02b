/* runner/startshell.c - the start-shell and runtime-versions stages
 * (DOWNLOAD_SOURCE), and the agent's registration lines. */
#include "runner/runner_internal.h"
#include "util/alloc.h"

#include <stdlib.h>

#include "util/banned.h"

/* The build's shell session: in the sandbox (on the pipe PROVISIONING
 * made), with the build's stop pipe and deadline. */
runner_status runner_stage_shell(runner_build *b, runner_outcome *o)
{
	cbl_error *e = NULL;
	if (runner_shell_init(&b->sh, b->ident.tmpdir, b->spec->env.shell, b->spec->version == SPEC_VERSION_0_2,
			      b->src.src_inner, (const char *const *)b->vars.env.v, &e) < 0) {
		runner_outcome_set(b, o, "CLIENT_ERROR", e->msg);
		cbl_error_free(e);
		return RUNNER_STATUS_FAILED;
	}
	runner_shell_set_secrets(&b->sh, (const char *const *)b->vars.secret_names.v, b->vars.secret_names.n);
	if (b->sandbox) {
		runner_shell_adopt_pipe(&b->sh, b->out_pipe[0], b->out_pipe[1]);
		b->out_pipe[0] = b->out_pipe[1] = -1;
		runner_shell_use_sandbox(&b->sh, b->sandbox, "/codebuild/output/tmp");
	}
	b->sh.stop_r = b->stop_pipe[0];
	b->sh.on_line = runner_log_output;
	b->sh.payload = b;
	b->sh.deadline_mono_us = b->deadline_mono_us;
	b->shell_ready = true;
	if (runner_debug_listen(b, &e) < 0)
		runner_warn_drop(b, &e, "codebuild-local attach and exec cannot enter this build: %s", e->msg);
	runner_debug_hook(b);
	runner_checkpoint_restore_shell(b);
	if (b->debug && !b->sandbox)
		runner_warn(b, "--debug needs the sandbox: without it the build neither pauses nor can be entered");
	return RUNNER_STATUS_SUCCEEDED;
}

/* runtime-versions: checked against the image, then the image's selection
 * commands run through the normal command wrapper, so their exports carry
 * over (reference §8.4). */
runner_status runner_stage_runtimes(runner_build *b, runner_outcome *o)
{
	char *code = NULL, *msg = NULL;
	spec_strlist cmds = {0};
	runner_status st = runner_runtime_versions(b, &cmds, &code, &msg);
	if (st != RUNNER_STATUS_SUCCEEDED) {
		runner_outcome_set(b, o, code, msg);
		free(code);
		free(msg);
		o->spec_invalid = true;
		return st;
	}
	runner_cmds_result cr = runner_run_commands(b, RUNNER_PHASE_DOWNLOAD_SOURCE, &cmds, o);
	for (size_t i = 0; i < cmds.n; i++)
		free(cmds.items[i].s);
	free(cmds.items);
	switch (cr) {
	case RUNNER_CMDS_OK: break;
	case RUNNER_CMDS_TIMED_OUT: return RUNNER_STATUS_TIMED_OUT;
	case RUNNER_CMDS_STOPPED: return RUNNER_STATUS_STOPPED;
	case RUNNER_CMDS_FAULT: return RUNNER_STATUS_FAULT;
	case RUNNER_CMDS_FAILED: return RUNNER_STATUS_FAILED;
	}
	runner_agent(b, "Moving to directory %s", b->src.src_inner);
	return RUNNER_STATUS_SUCCEEDED;
}

/* The agent's registration: the phases the buildspec has. */
runner_status runner_stage_register(runner_build *b, runner_outcome *o)
{
	(void)o;
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
