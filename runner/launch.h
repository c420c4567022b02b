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
 * StartBuild answers once the build's runner has written its first record,
 * or, when max_running builds already run, once a QUEUED record is written
 * (queued builds start in order as running ones end); either way the answer
 * is the build as it was queued (currentPhase QUEUED, QUEUED open), as the
 * service's.  An idempotencyToken seen in the last 5 minutes with the same
 * request answers that build; with another, InvalidInputException.  The request is kept in
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
 * (PLAINTEXT; PARAMETER_STORE and SECRETS_MANAGER resolved by the runner from
 * the launcher's secrets file), timeoutInMinutes, gitCloneDepth, gitSubmodulesConfig,
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
	const char *account; /* the account of callers without a principal (NULL = 000000000000) */
	const char *secrets_file; /* resolves the projects' and requests' PARAMETER_STORE and
				     SECRETS_MANAGER variables (absolute path; NULL = none) */
	/* A server's launcher: takes over the builds a previous server left
	 * queued (they wait again, in order; a request that cannot be run any
	 * more ends FAILED with the reason, one past its queuedTimeoutInMinutes
	 * TIMED_OUT) and counts the builds it started that still run; its own
	 * queue outlives it in the store (runner_launcher_free leaves it).
	 * runner_launcher_new fails (CBL_EIO) when the store cannot be read. */
	bool resume;
} runner_launcher_opts;

int runner_launcher_new(runner_launcher **out, const runner_launcher_opts *o, cbl_error **err);

/* True for CodeBuild_20161006.StartBuild, StopBuild and RetryBuild. */
bool runner_launcher_known(const char *target);

/* Runs one of those operations: *out = {"build": Build}. */
int runner_launcher_dispatch(runner_launcher *l, const char *target, json_t *request, json_t **out,
			     cbl_error **err);

/* Who asks: the region the request was signed for and the caller's
 * identity, as the service writes them into the Build (its ARN, logs ARN,
 * encryption key default and initiator). */
typedef struct runner_caller {
	const char *region;    /* the request's signing region (NULL or not a region name: the
				  launcher's) */
	const char *principal; /* the caller's IAM ARN (NULL = unknown: the launcher's account,
				  the user running the launcher).  The initiator as the service
				  forms it: an IAM user's name (arn:aws:iam::A:user/path/NAME ->
				  NAME), an assumed role's "ROLE/SESSION"
				  (arn:aws:sts::A:assumed-role/ROLE/SESSION), a federated user's
				  name, "root" for the account's root; the account is the ARN's */
} runner_caller;

/* The account and initiator (both caller-freed) of an IAM principal ARN, as
 * runner_caller describes; -1 (nothing allocated) when arn is no ARN. */
int runner_principal_identity(const char *arn, char **account, char **initiator);

/* The same on behalf of a caller (NULL = runner_launcher_dispatch). */
int runner_launcher_dispatch_as(runner_launcher *l, const char *target, json_t *request,
				const runner_caller *caller, json_t **out, cbl_error **err);
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
	const char *account;  /* NULL = 000000000000 */
	const char *initiator; /* the caller as the service names it (NULL = the user running it) */
	const char *secrets_file; /* offline parameter-store / secrets-manager values (NULL = none) */
	const char *uuid;     /* the build's uuid (NULL = the runner allocates one) */
	int64_t number;       /* its build number (0 = the runner allocates one) */
} runner_launch_info;

typedef struct runner_launch_mem {
	json_t *doc;          /* runner_launch_load: the launch document */
	cbl_strv strings;     /* paths and values the options point to */
	cbl_strv env;         /* environmentVariablesOverride as NAME=VALUE */
	cbl_strv project_env; /* the project's environmentVariables as NAME=VALUE */
	cbl_strv project_secrets, override_secrets; /* "P NAME=REF" / "S NAME=REF" */
	runner_secondary_source *secondary;
	json_t *record;       /* runner_launch_record's fields */
} runner_launch_mem;

#define RUNNER_LAUNCH_MEM_INIT {NULL, CBL_STRV_INIT, CBL_STRV_INIT, CBL_STRV_INIT, CBL_STRV_INIT, CBL_STRV_INIT, NULL, NULL}

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

/* The Build record's fields a launched build takes from its project and
 * request, as the service writes them (runner/launchrec.c): source (the
 * buildspec text or path as given, the project's location and type),
 * sourceVersion, serviceRole, environment (overrides applied, variables
 * merged), logs (logsConfig's group and stream prefix), timeoutInMinutes,
 * queuedTimeoutInMinutes, cache, encryptionKey, initiator.  New object. */
json_t *runner_launch_record(const json_t *project, const json_t *request, const runner_launch_info *info);

/* Writes <info->dir>/launch.json: project, request and info. */
int runner_launch_save(const json_t *project, const json_t *request, const runner_launch_info *info,
		       cbl_error **err);

/* Reads <dir>/launch.json and maps it (runner_launch_opts).  The options
 * borrow from *mem (it keeps the document). */
int runner_launch_load(runner_opts *out, runner_launch_mem *mem, const char *dir, cbl_error **err);

/* How `run` and the launcher tell a git URL (https://, ssh://, file://,
 * git@host:path that is no existing path) from a directory. */
bool runner_source_is_url(const char *s);

/* Builds still queued end STOPPED (they never started), or stay QUEUED for
 * the next server with opts.resume; running builds go on.  Waits for
 * nothing. */
void runner_launcher_free(runner_launcher *l);

#endif
