/* runner/gitfetch.c - a git fetch with the build's settings (depth,
 * submodules, deadline, stop, progress, source cache), for the primary and
 * the secondary sources, and how its failure becomes a phase context. */
#include "runner/runner_internal.h"
#include "source/source.h"
#include "util/alloc.h"
#include "util/time.h"

#include <stdlib.h>

#include "util/banned.h"

void runner_clone_progress(const char *line, void *payload)
{
	runner_build *b = payload;
	runner_event ev = {.kind = RUNNER_EV_PROGRESS, .phase = b->current, .text = line};
	runner_emit(b, &ev);
}

/* A fetch's cancel hook: the build was stopped or its deadline passed. */
bool runner_fetch_cancelled(void *payload)
{
	runner_build *b = payload;
	return b->stop_requested || cbl_mono_us() >= b->deadline_mono_us;
}

runner_status runner_fetch_failed(runner_build *b, runner_outcome *o, const char *what, cbl_error *e)
{
	runner_status st = RUNNER_STATUS_FAILED;
	if (b->stop_requested) {
		runner_outcome_set(b, o, "BUILD_STOPPED", "Build was stopped");
		st = RUNNER_STATUS_STOPPED;
	} else if (cbl_mono_us() >= b->deadline_mono_us) {
		runner_outcome_set(b, o, "BUILD_TIMED_OUT", "Build has timed out. ");
		st = RUNNER_STATUS_TIMED_OUT;
	} else {
		/* the service reports source problems as CLIENT_ERROR in DOWNLOAD_SOURCE */
		char *m = what ? cbl_xasprintf("%s: %s", what, e->msg) : cbl_xstrdup(e->msg);
		runner_outcome_set(b, o, "CLIENT_ERROR", m);
		free(m);
	}
	cbl_error_free(e);
	return st;
}

int runner_fetch_git(runner_build *b, const char *url, const char *version, const char *dest,
		     const char *secondary, char **sha, cbl_error **err)
{
	source_git_opts go = SOURCE_GIT_OPTS_INIT;
	source_git_stats stats;
	go.url = url;
	go.version = version;
	go.depth = b->src.clone_depth;
	go.submodules = b->src.fetch_submodules;
	go.progress = runner_clone_progress;
	go.cancelled = runner_fetch_cancelled;
	go.deadline_mono_us = b->deadline_mono_us;
	go.payload = b;
	go.object_cache_dir = b->src.source_cache_dir;
	go.stats = &stats;
	if (b->src.clone_depth && source_git_is_ssh(url))
		runner_warn(b, "libgit2 cannot fetch shallow over SSH: the whole history is downloaded, "
			       "then cut to depth %d",
			    b->src.clone_depth);
	int rc = source_git_fetch(&go, dest, sha, err);
	if (b->src.source_cache_dir) {
		char *line = source_git_cache_summary(&stats);
		if (secondary)
			runner_agent(b, "[codebuild-local] %s (secondary source %s)", line, secondary);
		else
			runner_agent(b, "[codebuild-local] %s", line);
		free(line);
	}
	return rc;
}
