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
 * Each build's directory holds launch.json (runner_launch_save): the
 * project as it was at StartBuild, the request, the build's uuid and number,
 * the region and the state directory.  The build's process is
 * `exe run --launched <build dir>`, which reads it back (runner_launch_load)
 * and maps it with runner_launch_opts, as the launcher did to validate the
 * request before answering.
 *
 * Project -> run: source type/location (git URL, file:// directory,
 * NO_SOURCE with an inline buildspec), buildspec (a path in the source or
 * inline YAML), environment image/computeType/environmentVariables
 * (PLAINTEXT), timeoutInMinutes, gitCloneDepth, gitSubmodulesConfig,
 * secondarySources and their versions, artifacts packaging, cache (NO_CACHE,
 * the default, ignores the buildspec's cache section as the service does; S3
 * or LOCAL with LOCAL_CUSTOM_CACHE use the local store), vpcConfig (not
 * applied: the build gets the default network and its log says so);
 * StartBuild's
 * overrides: sourceVersion, sourceTypeOverride, sourceLocationOverride,
 * environmentVariablesOverride, buildspecOverride, timeoutInMinutesOverride,
 * imageOverride, computeTypeOverride, gitCloneDepthOverride,
 * gitSubmodulesConfigOverride, secondarySourcesVersionOverride.
 *
 * Errors follow store/api.h's codes: CBL_EINVAL InvalidInputException,
 * CBL_ENOENT ResourceNotFoundException.
 * Thread safety: a launcher may be used from several threads at once.
 */
#ifndef RUNNER_LAUNCH_H
#define RUNNER_LAUNCH_H

#include <jansson.h>
#include <stdbool.h>

#include "runner/runner.h"
#include "util/error.h"
#include "util/strv.h"

typedef struct runner_launcher runner_launcher;

typedef struct runner_launcher_opts {
	const char *home;    /* state directory */
	const char *exe;     /* this program: builds run as `exe run --launched DIR` */
	int max_running;     /* builds running at once (more wait QUEUED); 0 = no limit */
	const char *region;  /* NULL = us-east-1 */
} runner_launcher_opts;

int runner_launcher_new(runner_launcher **out, const runner_launcher_opts *o, cbl_error **err);

/* True for CodeBuild_20161006.StartBuild, StopBuild and RetryBuild. */
bool runner_launcher_known(const char *target);

/* Runs one of those operations: *out = {"build": Build}. */
int runner_launcher_dispatch(runner_launcher *l, const char *target, json_t *request, json_t **out,
			     cbl_error **err);

/* The sandbox API (runner/sandboxapi.c): StartSandbox, BatchGetSandboxes,
 * ListSandboxes, ListSandboxesForProject, StopSandbox,
 * StartCommandExecution, BatchGetCommandExecutions,
 * ListCommandExecutionsForSandbox, on top of the launcher's StartBuild and
 * StopBuild (a sandbox is a build that stays up).  *out as the service
 * answers; errors as runner_launcher_dispatch's. */
bool runner_sandbox_api_known(const char *target);
int runner_sandbox_api_dispatch(runner_launcher *l, const char *home, const char *target, json_t *req, json_t **out,
				cbl_error **err);

/* ---------------------------------------------------- request -> options ---
 *
 * The one mapping of a Project and a StartBuild request to runner_opts.
 * The options point into the project and request (borrowed) and into a
 * runner_launch_mem (owned by the caller: RUNNER_LAUNCH_MEM_INIT before each
 * call, released with runner_launch_mem_release once the options are no
 * longer used). */

typedef struct runner_launch_info {
	const char *dir;      /* the build's directory: an inline buildspec is written to
				 dir/buildspec-inline.yml, a source-less build gets the empty
				 dir/nosource */
	const char *home;     /* the state directory (NULL = store_default_home()) */
	const char *region;   /* NULL = us-east-1 */
	const char *uuid;     /* the build's uuid (NULL = the runner allocates one) */
	int64_t number;       /* its build number (0 = the runner allocates one) */
} runner_launch_info;

typedef struct runner_launch_mem {
	json_t *doc;          /* runner_launch_load: the launch document */
	cbl_strv strings;     /* paths and values the options point to */
	cbl_strv env;         /* environmentVariablesOverride as NAME=VALUE */
	cbl_strv project_env; /* the project's environmentVariables as NAME=VALUE */
	runner_secondary_source *secondary;
} runner_launch_mem;

#define RUNNER_LAUNCH_MEM_INIT {NULL, CBL_STRV_INIT, CBL_STRV_INIT, CBL_STRV_INIT, NULL}

void runner_launch_mem_release(runner_launch_mem *mem);

/* Fills *out (which it first resets to RUNNER_OPTS_INIT) from a Project and a
 * StartBuild request (NULL = no overrides), the overrides beating the
 * project.  Writes the inline buildspec / creates the empty source directory
 * in info->dir (idempotent: the launcher calls it to validate, the launched
 * runner again to build).  on_event and payload are left to the caller.
 * CBL_EINVAL with InvalidInputException's message for a request or project
 * a local build cannot run; CBL_EIO when info->dir cannot be written.  On
 * failure *mem may hold memory: release it anyway. */
int runner_launch_opts(runner_opts *out, runner_launch_mem *mem, const json_t *project,
		       const json_t *request, const runner_launch_info *info, cbl_error **err);

/* Writes <info->dir>/launch.json: project, request and info. */
int runner_launch_save(const json_t *project, const json_t *request, const runner_launch_info *info,
		       cbl_error **err);

/* Reads <dir>/launch.json and maps it (runner_launch_opts).  The options
 * borrow from *mem (it keeps the document). */
int runner_launch_load(runner_opts *out, runner_launch_mem *mem, const char *dir, cbl_error **err);

/* How `run` and the launcher tell a git URL (https://, ssh://, file://,
 * git@host:path that is no existing path) from a directory. */
bool runner_source_is_url(const char *s);

/* Builds still queued end STOPPED (they never started); running builds go
 * on.  Waits for nothing. */
void runner_launcher_free(runner_launcher *l);

#endif
