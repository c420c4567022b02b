/* runner/finalize.c - FINALIZING and COMPLETED: the build's processes and
 * sandbox gone, the cache saved, the snapshot discarded, the final record. */
#include "runner/runner_internal.h"
#include "sandbox/sandbox.h"
#include "util/fs.h"

#include <git2.h>
#include <unistd.h>

#include "util/banned.h"

/* Everything the build started, its sandbox, and the trees it ran on. */
static void tear_down(runner_build *b)
{
	runner_debug_close(b);
	if (b->git_held)
		git_libgit2_shutdown();
	b->git_held = false;
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
	if (b->src.scratch)
		rmdir(b->src.scratch);
	/* the cache's overlays went with the sandbox; the view is still here
	 * (not root: the sandbox's source overlays, held by descriptors) */
	runner_cache_save(b);
	runner_sandbox_views_close(b);
	/* overlays first: the trees removed next hold their mount points */
	runner_private_ns_cleanup(b);
	if (b->src.view_mounted) {
		rmdir(b->src.view);
		b->src.view_mounted = false;
	}
	const char *tree = b->src.multi_root ? b->src.multi_root
			   : b->src.src_copy ? b->src.src_copy
			   : b->src.tracked_dir ? b->src.tracked_dir
					    : b->src.git_parent;
	if (tree)
		runner_discard_tree(b, tree);
}

int runner_finalize(runner_build *b, cbl_error **err)
{
	int rc = 0;
	runner_phase_start(b, RUNNER_PHASE_FINALIZING);
	tear_down(b);
	runner_phase_end(b, RUNNER_PHASE_FINALIZING, RUNNER_STATUS_SUCCEEDED, false);
	runner_phase_start(b, RUNNER_PHASE_COMPLETED);
	b->end_us = b->phases[RUNNER_PHASE_COMPLETED].start_us;
	if (b->status == RUNNER_STATUS_IN_PROGRESS)
		b->status = RUNNER_STATUS_SUCCEEDED;
	cbl_error *e = NULL;
	/* no fsync: the rename publishes it atomically (ext4's auto_da_alloc
	 * flushes a replaced file's data first), and an fsync under I/O load
	 * cost more than the whole build */
	runner_record_save(b, false, &e);
	if (e) {
		rc = cbl_error_wrap(&e, "cannot write build record");
		*err = e;
	}
	/* the scratch (carried env, credentials copy) never outlives the build */
	cbl_error *re = NULL;
	sandbox_ids_rm_rf(b->ident.tmpdir, &re); /* files of the user's other ids too */
	cbl_error_free(re);
	if (b->log.fd >= 0) {
		close(b->log.fd);
		b->log.fd = -1;
	}
	return rc;
}
