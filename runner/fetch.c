/* runner/fetch.c - the fetch-sources stage (DOWNLOAD_SOURCE): the primary git clone or the local tree's HEAD, then the secondary sources. */
#include "runner/runner_internal.h"
#include "source/source.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"
#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/banned.h"

static void git_info(runner_build *b)
{
	/* libgit2's initialisation loads the TLS trust store (milliseconds):
	 * only pay for it when the source is a repository */
	if (!runner_is_git_dir(b->src.source_dir))
		return;
	git_libgit2_init();
	runner_local_git_head(b->src.source_dir, &b->src.resolved_version, &b->src.repo_url);
	/* what a cloud build would not see: read with the snapshot already,
	 * else (mount mode) now */
	source_worktree wt = SOURCE_WORKTREE_INIT;
	bool have = b->src.wt_read;
	if (have) {
		wt.untracked = b->src.wt_untracked;
		wt.modified = b->src.wt_modified;
	} else if (!b->src.tracked_dir) {
		have = source_worktree_status(&wt, b->src.source_dir, false, NULL) == 0;
	}
	if (have && (wt.untracked || wt.modified))
		runner_warn(b, "the working tree has %zu untracked and %zu modified file(s) "
			       "that a cloud build of commit %.12s would not see "
			       "(--git-tracked-only shows the build only what HEAD contains)",
			    wt.untracked, wt.modified, b->src.resolved_version ? b->src.resolved_version : "HEAD");
	source_worktree_release(&wt);
	git_libgit2_shutdown();
}

/* DOWNLOAD_SOURCE for a git source: a shallow clone of the one ref asked
 * for, as CodeBuild's git_clone_depth does. */
static runner_status clone_source(runner_build *b, runner_outcome *o)
{
	char *shown = runner_redact_url(b->src.git_url);
	cbl_error *e = NULL;
	if (b->src.clone_depth)
		runner_agent(b, "[codebuild-local] Cloning %s%s%s (depth %d)", shown, b->cfg.source_version ? " at " : "",
			     b->cfg.source_version ? b->cfg.source_version : "", b->src.clone_depth);
	else
		runner_agent(b, "[codebuild-local] Cloning %s%s%s (full history)", shown, b->cfg.source_version ? " at " : "",
			     b->cfg.source_version ? b->cfg.source_version : "");
	char *sha = NULL;
	runner_status st = RUNNER_STATUS_SUCCEEDED;
	if (runner_fetch_git(b, b->src.git_url, b->cfg.source_version, b->src.source_dir, NULL, &sha, &e) < 0) {
		st = runner_fetch_failed(b, o, NULL, e);
	} else {
		b->src.resolved_version = sha;
		b->src.repo_url = shown;
		shown = NULL;
		runner_agent(b, "[codebuild-local] Checked out commit %s", b->src.resolved_version);
	}
	free(shown);
	return st;
}

/* The fetch-sources stage: where the sources are, the primary's clone (or
 * the local tree's HEAD), then the secondary sources. */
runner_status runner_stage_fetch(runner_build *b, runner_outcome *o)
{
	runner_agent(b, "Phase is DOWNLOAD_SOURCE");
	runner_agent(b, "CODEBUILD_SRC_DIR=%s", b->src.src_inner);
	runner_sources_log_dirs(b);
	if (b->src.git_url) {
		runner_status st = clone_source(b, o);
		if (st != RUNNER_STATUS_SUCCEEDED)
			return st;
	} else {
		git_info(b);
	}
	return runner_sources_download(b, o);
}
