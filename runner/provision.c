/* runner/provision.c - the PROVISIONING stage: the source snapshot (overlay view, copy, tracked checkout), the image, the sandbox. */
#include "runner/runner_internal.h"
#include "runner/sandbox.h"
#include "util/alloc.h"
#include "util/fs.h"
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

/* --git-tracked-only: the build sees exactly what a clone of HEAD would
 * contain, checked out by libgit2 into a private directory. */
static int checkout_tracked(runner_build *b, cbl_error **err)
{
	git_repository *repo = NULL;
	git_object *tree = NULL;
	int rc = 0;
	git_libgit2_init();
	if (git_repository_open_ext(&repo, b->src.source_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_revparse_single(&tree, repo, "HEAD^{tree}") < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EINVAL, "--git-tracked-only: %s is not a git repository with a "
						    "commit (%s)",
				   b->src.source_dir, ge && ge->message ? ge->message : "no HEAD");
		goto out;
	}
	git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	co.target_directory = b->src.tracked_dir;
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
	char *view = cbl_path_join(b->ident.dir, "view");
	int rc = runner_private_overlay(b, b->src.source_dir, view, err);
	if (rc) {
		free(view);
		return rc;
	}
	free(b->src.view);
	b->src.view = view;
	b->src.view_mounted = true;
	return 0;
}

/* PROVISIONING: the build's namespaces, limits from the compute type. */
static int provision_sandbox(runner_build *b, cbl_error **err)
{
	cbl_error *e = NULL;
	const runner_compute *ct = runner_compute_find(b->cfg.compute_type);
	if (pipe2(b->out_pipe, O_CLOEXEC) < 0) {
		cbl_error_set_errno(&e, CBL_EIO, errno, "cannot create the output pipe");
		goto fail;
	}
	if (cbl_mkdir_p(b->src.scratch, 0700, &e) < 0 || cbl_mkdir_p(b->ident.tmpdir, 0700, &e) < 0)
		goto fail;
	runner_sandbox_opts so = {0};
	so.rootfs = runner_image_rootfs(b);
	so.scratch = b->src.scratch;
	so.src_host = b->src.tracked_dir ? b->src.tracked_dir : b->src.src_copy ? b->src.src_copy : b->src.source_dir;
	so.src_inner = b->src.src_inner;
	so.src_snapshot = false;
	so.src_parent_host = b->src.git_parent;
	if (b->src.multi_root) {
		so.src_host = b->src.multi_root;
		so.src_inner = b->src.multi_inner;
		so.binds = (const char *const *)b->src.sandbox_binds.v;
	} else if (b->src.source_mode == RUNNER_SOURCE_SNAPSHOT && !b->src.src_copy && !b->src.tracked_dir && !b->src.git_parent) {
		if (setup_view(b, &e) < 0)
			goto fail;
		so.src_host = b->src.view;
	}
	so.tmp_host = b->ident.tmpdir;
	so.tmp_inner = "/codebuild/output/tmp";
	so.hostname = "codebuild-local";
	so.network_none = b->cfg.network_none;
	so.out_fd = b->out_pipe[1];
	/* Putting a process into a cgroup v1 costs one RCU grace period in the
	 * kernel (15-20 ms on a small VM), more than the rest of the sandbox:
	 * the limits are enforced when a compute type is asked for, and the
	 * default says so instead of slowing every build. */
	if (b->cfg.compute_explicit) {
		so.memory_bytes = (int64_t)ct->memory_gb << 30;
		so.pids_max = 32768; /* ours: the service publishes no process limit */
	} else {
		runner_agent(b, "[codebuild-local] Compute type %s (the default): its %d GB memory limit is not "
				"enforced; pass --compute-type to enforce it",
			     ct->name, ct->memory_gb);
	}
	so.cpus = ct->vcpus;
	so.cgroup_name = b->ident.uuid;
	if (runner_sandbox_start(&b->sandbox, &so, &e) < 0)
		goto fail;
	for (const char *const *w = runner_sandbox_warnings(b->sandbox); *w; w++)
		runner_warn(b, "%s", *w);

	if (geteuid() != 0)
		runner_warn(b, "not root: the sandbox shows the host's / read-only (no overlay in an "
			       "unprivileged user namespace); /tmp, /root and /var/tmp are private");
	return 0;
fail:
	*err = e;
	return -1;
}

/* A failed step of PROVISIONING: its status, CLIENT_ERROR and the error. */
static runner_status provision_failed(runner_build *b, runner_outcome *o, runner_status st, cbl_error *e)
{
	runner_outcome_set(b, o, "CLIENT_ERROR", e->msg);
	cbl_error_free(e);
	return st;
}

/* The PROVISIONING stage: the sources' layout, the snapshot (tracked
 * checkout, copy), the image, then the sandbox. */
runner_status runner_provision(runner_build *b, runner_outcome *o)
{
	cbl_error *e = NULL;
	if (b->src.multi_root && runner_sources_provision(b, &b->src.sandbox_binds, &e) < 0)
		return provision_failed(b, o, RUNNER_STATUS_FAULT, e);
	if (b->src.git_parent && cbl_mkdir_p(b->src.git_parent, 0755, &e) < 0)
		return provision_failed(b, o, RUNNER_STATUS_FAULT, e);
	if (b->src.tracked_dir && checkout_tracked(b, &e) < 0)
		return provision_failed(b, o, RUNNER_STATUS_FAILED, e);
	/* snapshot without an overlay: the build gets its own copy */
	if (b->src.src_copy && cbl_copy_tree(b->src.source_dir, b->src.src_copy, &e) < 0)
		return provision_failed(b, o, RUNNER_STATUS_FAULT, e);
	if (!runner_image_is_host(b->cfg.image)) {
		char *code = NULL, *msg = NULL;
		if (runner_image_resolve(b, &code, &msg) < 0) {
			runner_outcome_set(b, o, code, msg);
			free(code);
			free(msg);
			return RUNNER_STATUS_FAILED;
		}
	}
	if (b->cfg.sandbox_mode == RUNNER_SANDBOX_NONE) {
		runner_warn(b, "no sandbox (--sandbox none): commands run directly on this machine as the "
			       "invoking user, in %s",
			    b->src.source_dir);
	} else if (provision_sandbox(b, &e) < 0) {
		runner_outcome_setf(b, o, "CLIENT_ERROR", "%s (run with --sandbox none to build without isolation)",
				    e->msg);
		cbl_error_free(e);
		return RUNNER_STATUS_FAULT;
	}
	runner_agent(b, "Waiting for agent ping");
	runner_agent(b, "Waiting for DOWNLOAD_SOURCE");
	return RUNNER_STATUS_SUCCEEDED;
}
