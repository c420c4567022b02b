/* runner/runner.c - the phase state machine: one build through CodeBuild's
 * phases, each phase driving the stages that do its work (provision.c,
 * fetch.c, buildspec.c, buildenv.c, startshell.c, cache.c, phases.c,
 * upload.c, finalize.c).  A stage reports a failure as a status and a
 * phase context (runner_outcome); run_stage() is the one place that turns
 * it into the phase's end.
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
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "util/array.h"

#include "util/banned.h"

#define CBL_VERSION "0.1.0"

/* The stages of DOWNLOAD_SOURCE, in order. */
static const runner_stage_fn download_stages[] = {
	runner_stage_fetch,  runner_stage_buildspec,     runner_stage_env,      runner_stage_shell,
	runner_stage_runtimes, runner_stage_cache_restore, runner_stage_register,
};

/* Runs stages in order within phase p (already started) until one fails;
 * its outcome becomes the phase's context.  A stop asked for while the
 * stages ran ends the phase STOPPED. */
static runner_status run_stages(runner_build *b, runner_phase_type p, const runner_stage_fn *stages, size_t n)
{
	runner_outcome *o = &b->phases[p].ctx;
	runner_status st = RUNNER_STATUS_SUCCEEDED;
	for (size_t i = 0; i < n && st == RUNNER_STATUS_SUCCEEDED; i++)
		st = stages[i](b, o);
	if (o->spec_invalid)
		b->spec_invalid = true;
	if (b->stop_requested && st == RUNNER_STATUS_SUCCEEDED && p == RUNNER_PHASE_DOWNLOAD_SOURCE) {
		runner_outcome_set(b, o, "BUILD_STOPPED", "Build was stopped");
		st = RUNNER_STATUS_STOPPED;
	}
	return st;
}

static void save_progress(runner_build *b)
{
	cbl_error *e = NULL;
	runner_record_save(b, false, &e);
	cbl_error_free(e);
}

/* Stopped between two phases: the next one is entered and ends STOPPED, as
 * the service shows a stopped build. */
static void enter_stopped(runner_build *b, runner_phase_type p)
{
	runner_phase_start(b, p);
	runner_agent(b, "Entering phase %s", runner_phase_name(p));
	runner_outcome_set(b, &b->phases[p].ctx, "BUILD_STOPPED", "Build was stopped");
	runner_phase_end(b, p, RUNNER_STATUS_STOPPED, true);
	b->status = RUNNER_STATUS_STOPPED;
}

/* Whether the build goes on after phase p ended with st (the rules above). */
static bool goes_on(const runner_build *b, runner_phase_type p, runner_status st, bool *upload)
{
	if (st == RUNNER_STATUS_SUCCEEDED)
		return true;
	if (st != RUNNER_STATUS_FAILED) { /* TIMED_OUT, STOPPED, FAULT */
		*upload = false;
		return false;
	}
	spec_on_failure_kind of = b->spec->phases[p - RUNNER_PHASE_INSTALL].on_failure.kind;
	if (of == SPEC_ON_FAILURE_CONTINUE)
		return true;
	if (of == SPEC_ON_FAILURE_ABORT || p == RUNNER_PHASE_INSTALL || p == RUNNER_PHASE_PRE_BUILD) {
		*upload = false;
		return false;
	}
	return true; /* BUILD and POST_BUILD failures go on */
}

/* INSTALL .. POST_BUILD, then UPLOAD_ARTIFACTS when the rules allow it. */
static void run_build_phases(runner_build *b)
{
	bool upload = true;
	for (runner_phase_type p = RUNNER_PHASE_INSTALL; p <= RUNNER_PHASE_POST_BUILD; p++) {
		if (b->stop_requested) {
			enter_stopped(b, p);
			upload = false;
			break;
		}
		if (runner_checkpoint_skips(b, p))
			continue;
		runner_status st = runner_run_phase(b, p);
		if (st == RUNNER_STATUS_SUCCEEDED)
			runner_checkpoint_take(b, p);
		save_progress(b);
		if (!goes_on(b, p, st, &upload))
			break;
	}
	runner_capture_exported(b);
	if (upload) {
		runner_phase_start(b, RUNNER_PHASE_UPLOAD_ARTIFACTS);
		runner_status st = runner_upload(b, &b->phases[RUNNER_PHASE_UPLOAD_ARTIFACTS].ctx);
		runner_phase_end(b, RUNNER_PHASE_UPLOAD_ARTIFACTS, st, true);
	}
}

/* SUBMITTED, QUEUED and the start of PROVISIONING: the log opened, the
 * first record written (readers see the build from now on). */
static int start(runner_build *b, cbl_error **err)
{
	/* orphaned daemons of the build re-parent to us, so none survives it */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	b->start_us = cbl_now_us();
	/* the timeout covers the whole build, source download included */
	b->deadline_mono_us = cbl_mono_us() + b->cfg.timeout_ms * 1000;
	b->log.fd = open(b->ident.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
	if (b->log.fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", b->ident.log_path);
	runner_write_pidfile(b->ident.dir);
	runner_phase_start(b, RUNNER_PHASE_SUBMITTED);
	runner_phase_end(b, RUNNER_PHASE_SUBMITTED, RUNNER_STATUS_SUCCEEDED, false);
	runner_phase_start(b, RUNNER_PHASE_QUEUED);
	runner_phase_end(b, RUNNER_PHASE_QUEUED, RUNNER_STATUS_SUCCEEDED, false);
	runner_phase_start(b, RUNNER_PHASE_PROVISIONING);
	cbl_error *e = NULL;
	runner_record_save(b, false, &e);
	if (e) {
		int rc = cbl_error_wrap(&e, "cannot write build record");
		*err = e;
		return rc;
	}
	/* the agent's first line for on-demand compute, which the compute
	 * types emulate (reference §4.2); then what really runs it */
	runner_agent(b, "Running on CodeBuild On-demand");
	runner_agent(b, "[codebuild-local] codebuild-local %s (image %s, %s, %s)", CBL_VERSION, b->cfg.image,
		     b->cfg.compute_type, b->cfg.sandbox_mode == RUNNER_SANDBOX_NONE ? "no sandbox" : "sandboxed");
	return 0;
}

int runner_build_run(runner_build *b, cbl_error **err)
{
	int rc = start(b, err);
	if (rc)
		return rc;
	runner_status st = runner_provision(b, &b->phases[RUNNER_PHASE_PROVISIONING].ctx);
	/* the service logs no phase-complete lines for PROVISIONING when it succeeds */
	runner_phase_end(b, RUNNER_PHASE_PROVISIONING, st, st != RUNNER_STATUS_SUCCEEDED);
	if (st == RUNNER_STATUS_SUCCEEDED) {
		runner_phase_start(b, RUNNER_PHASE_DOWNLOAD_SOURCE);
		st = run_stages(b, RUNNER_PHASE_DOWNLOAD_SOURCE, download_stages,
				ARRAY_SIZE(download_stages));
		runner_phase_end(b, RUNNER_PHASE_DOWNLOAD_SOURCE, st, true);
	}
	if (st == RUNNER_STATUS_SUCCEEDED) {
		save_progress(b);
		run_build_phases(b);
	}
	return runner_finalize(b, err);
}
