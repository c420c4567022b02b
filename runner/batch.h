/* runner/batch.h - batch builds: a buildspec's `batch:` run locally
 * (build-list, build-graph, build-matrix, build-fanout; reference
 * buildspec.md §1.5).
 *
 * A batch runs each of its builds as a process of its own: the command the
 * caller gives (`codebuild-local run ARGS...`, or `run --launched DIR` for
 * a batch started through the API) with --batch-build ID --batch-of ARN
 * --json appended, whose JSON event stream the scheduler reads.  Each build
 * is an ordinary build (its record, log, sandbox), named by the batch in
 * buildBatchArn and given CODEBUILD_BATCH_BUILD_IDENTIFIER.
 *
 * The scheduler starts a build once the builds it depends on succeeded (or
 * failed with ignore-failure), while the machine's budget allows: the sum
 * of the running builds' CPU shares (half their compute type's vCPUs, at
 * least 1: a default BUILD_GENERAL1_SMALL build is one core) stays within
 * the online CPUs, and the memory of builds with an explicit compute type
 * (the sandbox enforces it) within the machine's; one build always runs.
 * max_parallel replaces the budget by a count.  A failure (not ignored)
 * means its dependents never start; with fast-fail the running builds are
 * stopped too.  runner_batch_stop stops every running build (STOPPED) and
 * starts no other; the builds die with the batch's process (PDEATHSIG), so
 * nothing outlives it.
 *
 * The BuildBatch record (store_batch_save) is written at each change:
 * phases SUBMITTED, DOWNLOAD_BATCHSPEC, IN_PROGRESS, COMBINE_ARTIFACTS and
 * the final SUCCEEDED / FAILED / STOPPED; buildGroups with each build's
 * summary.  With combine_artifacts, every build's artifacts go into one zip
 * (artifacts_dir/artifacts.zip) with a folder per identifier; otherwise each
 * build's own are in artifacts_dir/<identifier>/.
 *
 * Thread safety: one thread uses a runner_batch; runner_batch_stop is
 * async-signal-safe. */
#ifndef RUNNER_BATCH_H
#define RUNNER_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "runner/runner.h"
#include "spec/spec.h"
#include "util/error.h"
#include "util/strv.h"

typedef struct runner_batch runner_batch;

typedef enum runner_batch_event_kind {
	RUNNER_BATCH_EV_PHASE = 0, /* the batch entered a phase (phase) */
	RUNNER_BATCH_EV_BUILD,     /* build index changed state, phase or status */
	RUNNER_BATCH_EV_LINE,      /* build index printed one JSON event line (line) */
	RUNNER_BATCH_EV_TICK,      /* nothing happened for half a second (a view's clock) */
} runner_batch_event_kind;

typedef struct runner_batch_event {
	runner_batch_event_kind kind;
	const char *phase;         /* PHASE */
	size_t index;              /* BUILD, LINE */
	const char *line;          /* LINE: the event as the build printed it */
} runner_batch_event;

typedef void (*runner_batch_event_fn)(const runner_batch_event *ev, void *payload);

typedef struct runner_batch_opts {
	const runner_opts *build;           /* the options every build starts from (source,
					       buildspec, project, home, image, ...) */
	const char *const *child_argv;      /* NULL-terminated: the command a build runs as */
	int max_parallel;                   /* builds at once; 0 = the CPU/memory budget */
	bool combine_artifacts;             /* buildBatchConfig.combineArtifacts */
	int max_builds;                     /* restrictions.maximumBuildsAllowed; 0 = 100 */
	const char *const *compute_types_allowed; /* restrictions.computeTypesAllowed; NULL = any */
	int timeout_minutes;                /* buildBatchConfig.timeoutInMins; 0 = none */
	const char *report_mode;            /* batchReportMode (recorded); NULL = REPORT_INDIVIDUAL_BUILDS */
	const char *uuid;                   /* a launcher's (the API answered with it); NULL = new */
	int64_t number;                     /* buildBatchNumber; 0 = the next one */
	const json_t *prior;                /* RetryBuildBatch: the batch's record so far */
	bool retry_failed_only;             /* RETRY_FAILED_BUILDS: succeeded builds are kept */
	runner_batch_event_fn on_event;
	void *payload;
} runner_batch_opts;

/* Whether the buildspec o names (read beneath the source directory, or the
 * launcher's inline copy) has a batch section.  A buildspec that cannot be
 * read or parsed, and a git URL source, say false: the build reports it. */
bool runner_batch_detect(const runner_opts *o);

/* Prepares a batch: its id (<project>:<uuid>), number, directory and first
 * record (SUBMITTED).  Nothing runs yet. */
int runner_batch_new(runner_batch **out, const runner_batch_opts *o, cbl_error **err);

/* Reads the batchspec, expands it and runs its builds to their end.
 * Returns 0 when the batch ran, whatever its status; negative only when it
 * could not run or be recorded.  A bad batchspec is a FAILED batch (its
 * DOWNLOAD_BATCHSPEC phase says why). */
int runner_batch_run(runner_batch *b, cbl_error **err);

/* Stops the batch (STOPPED): its running builds are stopped, no other
 * starts.  Async-signal-safe. */
void runner_batch_stop(runner_batch *b);

runner_status runner_batch_status(const runner_batch *b);
const char *runner_batch_id(const runner_batch *b);
const char *runner_batch_dir(const runner_batch *b);
/* The BuildBatch record (borrowed, valid until the next change). */
json_t *runner_batch_record(runner_batch *b);
/* Why the batch failed before any build ran (bad batchspec), or NULL. */
const char *runner_batch_error(const runner_batch *b);

/* One build of the batch, for a view. */
typedef struct runner_batch_info {
	const char *identifier, *label;
	const char *state;      /* PENDING, RUNNING, DONE, NOT_STARTED */
	const char *phase;      /* its current phase (NULL before it started) */
	const char *status;     /* its status once done (NULL before) */
	const char *build_id;   /* NULL until known */
	const char *log_path;   /* its build.log (NULL until known) */
	const char *stderr_path; /* what the build's process said on stderr */
	int64_t start_us, end_us; /* 0 = not yet */
} runner_batch_info;

size_t runner_batch_count(const runner_batch *b);
void runner_batch_build_info(const runner_batch *b, size_t i, runner_batch_info *out);

void runner_batch_free(runner_batch *b);

/* ---- one build of a batch (run --batch-build ID) ----
 * Applies build `identifier` of the batch in o's buildspec to o: its
 * buildspec, image, compute type, privileged mode, variables (they beat
 * -e / environmentVariablesOverride), CODEBUILD_BATCH_BUILD_IDENTIFIER,
 * build-fanout's shard variables (CODEBUILD_BATCH_SHARD_NUMBER 1..N,
 * CODEBUILD_BATCH_SHARD_COUNT N: ours, the service documents none) and
 * batch_arn (NULL = the build runs alone).  spec_file: the batch's copy of
 * its batchspec (a git source's, which the build has not cloned yet); NULL =
 * the buildspec in the source.  o points into mem afterwards.
 * CBL_ENOENT for an unknown identifier (the message lists the batch's),
 * CBL_ESPEC for a buildspec without a batch. */
typedef struct runner_batch_mem {
	cbl_strv strings;
	cbl_strv env;
	cbl_strv notes;
} runner_batch_mem;

#define RUNNER_BATCH_MEM_INIT {CBL_STRV_INIT, CBL_STRV_INIT, CBL_STRV_INIT}

int runner_batch_build_opts(runner_opts *o, runner_batch_mem *mem, const char *identifier, const char *batch_arn,
			    const char *spec_file, cbl_error **err);
void runner_batch_mem_release(runner_batch_mem *mem);

/* ---- a batch started through the API (runner/launch.h) ----
 * Fills bo's batch settings from the launch document doc: the request's
 * buildBatchConfigOverride, else the project's buildBatchConfig.  With
 * retry_type (RETRY_ALL_BUILDS / RETRY_FAILED_BUILDS), *prior gets the
 * batch's record so far (caller decrefs; bo borrows it).  bo borrows from
 * mem too. */
int runner_batch_launched_opts(runner_batch_opts *bo, runner_batch_mem *mem, const json_t *doc, const char *home,
			       const char *batch_id, const char *retry_type, json_t **prior, cbl_error **err);

/* ---- build-fanout's test splitting (runner/shard.c) ---- */
typedef enum runner_shard_strategy {
	RUNNER_SHARD_EQUAL = 0,    /* equal-distribution */
	RUNNER_SHARD_STABILITY,    /* stability */
} runner_shard_strategy;

/* The files (n, any order, distinct) shard `shard` of `count` (1-based)
 * runs: their indices into files, in name order, written to out (room for
 * n); returns how many.  Every file goes to exactly one shard. */
size_t runner_shard_select(const char *const *files, size_t n, int shard, int count, runner_shard_strategy s,
			   size_t *out);

#endif
