/* runner/launch.h - StartBuild, StopBuild and RetryBuild: builds launched as
 * processes of their own.
 *
 * A build started through the API runs as `codebuild-local run` (the exe the
 * launcher is given) in its own session, with its output in the build's log
 * only, so it outlives the caller (the CLI's start-build returns at once; a
 * server may stop and restart while builds run).  The runner records itself
 * in <build dir>/runner.pid; StopBuild flags the stop in the store and sends
 * SIGTERM, which the runner turns into a STOPPED build.
 *
 * StartBuild answers once the build's runner has written its first record
 * (so the Build returned is the one BatchGetBuilds shows), or, when
 * max_running builds already run, once a QUEUED record is written: queued
 * builds start in order as running ones end.  The request is kept in
 * <build dir>/request.json for RetryBuild.
 *
 * Project -> run: source type/location (git URL, file:// directory,
 * NO_SOURCE with an inline buildspec), buildspec (a path in the source or
 * inline YAML), environment image/computeType/environmentVariables
 * (PLAINTEXT), timeoutInMinutes, gitCloneDepth, gitSubmodulesConfig,
 * secondarySources and their versions, artifacts packaging, cache (NO_CACHE,
 * the default, ignores the buildspec's cache section as the service does; S3
 * or LOCAL with LOCAL_CUSTOM_CACHE use the local store); StartBuild's
 * overrides: sourceVersion, environmentVariablesOverride,
 * buildspecOverride, timeoutInMinutesOverride, imageOverride,
 * computeTypeOverride, gitCloneDepthOverride, secondarySourcesVersionOverride.
 *
 * Errors follow store/api.h's codes: CBL_EINVAL InvalidInputException,
 * CBL_ENOENT ResourceNotFoundException.
 * Thread safety: a launcher may be used from several threads at once.
 */
#ifndef RUNNER_LAUNCH_H
#define RUNNER_LAUNCH_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"

typedef struct runner_launcher runner_launcher;

typedef struct runner_launcher_opts {
	const char *home;    /* state directory */
	const char *exe;     /* this program: builds run as `exe run ...` */
	int max_running;     /* builds running at once (more wait QUEUED); 0 = no limit */
	const char *region;  /* NULL = us-east-1 */
} runner_launcher_opts;

int runner_launcher_new(runner_launcher **out, const runner_launcher_opts *o, cbl_error **err);

/* True for CodeBuild_20161006.StartBuild, StopBuild and RetryBuild. */
bool runner_launcher_known(const char *target);

/* Runs one of those operations: *out = {"build": Build}. */
int runner_launcher_dispatch(runner_launcher *l, const char *target, json_t *request, json_t **out,
			     cbl_error **err);

/* Builds still queued end STOPPED (they never started); running builds go
 * on.  Waits for nothing. */
void runner_launcher_free(runner_launcher *l);

#endif
