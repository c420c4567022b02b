/* runner/runner.h - one CodeBuild build, run locally.
 *
 * runner_build_new() prepares a build (id, number, state directory);
 * runner_build_run() runs it to completion through CodeBuild's phases:
 * SUBMITTED, QUEUED, PROVISIONING, DOWNLOAD_SOURCE, INSTALL, PRE_BUILD, BUILD,
 * POST_BUILD, UPLOAD_ARTIFACTS, FINALIZING, COMPLETED, with the service's
 * transition rules and command model (reference buildspec.md §2).
 *
 * The library never prints: everything a user sees arrives through the
 * on_event callback (agent lines, command output, phase changes) and is
 * also written to the build's stored log.
 *
 * Thread safety: a runner_build is used by one thread, except
 * runner_build_stop(), which is async-signal-safe and may be called from a
 * signal handler or another thread.
 */
#ifndef RUNNER_RUNNER_H
#define RUNNER_RUNNER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "spec/spec.h"
#include "util/error.h"

typedef enum runner_status {
	RUNNER_STATUS_SUCCEEDED = 0,
	RUNNER_STATUS_FAILED,
	RUNNER_STATUS_FAULT,
	RUNNER_STATUS_TIMED_OUT,
	RUNNER_STATUS_IN_PROGRESS,
	RUNNER_STATUS_STOPPED,
} runner_status;

const char *runner_status_name(runner_status s);

typedef enum runner_phase_type {
	RUNNER_PHASE_SUBMITTED = 0,
	RUNNER_PHASE_QUEUED,
	RUNNER_PHASE_PROVISIONING,
	RUNNER_PHASE_DOWNLOAD_SOURCE,
	RUNNER_PHASE_INSTALL,
	RUNNER_PHASE_PRE_BUILD,
	RUNNER_PHASE_BUILD,
	RUNNER_PHASE_POST_BUILD,
	RUNNER_PHASE_UPLOAD_ARTIFACTS,
	RUNNER_PHASE_FINALIZING,
	RUNNER_PHASE_COMPLETED,
	RUNNER_PHASE_COUNT
} runner_phase_type;

const char *runner_phase_name(runner_phase_type p);

typedef enum runner_sandbox_mode {
	RUNNER_SANDBOX_NAMESPACES = 0, /* the default: Linux namespaces, refuse if unavailable */
	RUNNER_SANDBOX_NONE,           /* run on the host, unisolated (said loudly in the log) */
} runner_sandbox_mode;

/* The build's network (--network; a sandbox mode, see sandbox/sandbox.h). */
typedef enum runner_network_mode {
	RUNNER_NETWORK_DEFAULT = 0, /* its own network namespace with outbound access through a
				       user-space NAT (slirp4netns): not this machine's loopback
				       services, abstract unix sockets or network configuration.
				       Without the sandbox: this machine's network */
	RUNNER_NETWORK_HOST,        /* this machine's network, shared (said in the log) */
	RUNNER_NETWORK_NONE,        /* loopback only (sandbox only) */
} runner_network_mode;

typedef enum runner_source_mode {
	RUNNER_SOURCE_SNAPSHOT = 0, /* the default: the build sees a copy-on-write view; the
				       working tree is never changed; git-ignored paths are
				       left out (runner_opts.include_ignored keeps them) */
	RUNNER_SOURCE_MOUNT,        /* the directory itself, read-write (changes visible) */
} runner_source_mode;

typedef enum runner_event_kind {
	RUNNER_EV_LOG = 0,       /* one log line (agent line or command output) */
	RUNNER_EV_PHASE_START,
	RUNNER_EV_PHASE_END,
	RUNNER_EV_COMMAND_START,
	RUNNER_EV_COMMAND_EXIT,
	RUNNER_EV_WARNING,       /* something the local run cannot do like the cloud */
	RUNNER_EV_PROGRESS,      /* transient progress (clone): text; not in the log */
	RUNNER_EV_PAUSED,        /* debugging: the build waits (text: the command); the face
				    may enter it (runner_attach_*: runner_build_dir's socket) */
} runner_event_kind;

typedef struct runner_event {
	runner_event_kind kind;
	int64_t time_us;          /* wall clock */
	runner_phase_type phase;
	runner_status status;     /* PHASE_END */
	const char *text;         /* LOG: the line as stored (masked, no newline);
				     COMMAND_*: the command (masked); WARNING: message */
	bool agent;               /* LOG: an agent ("[Container] ...") line */
	int exit_status;          /* COMMAND_EXIT: exit status, or 128+signal */
	const char *context_code; /* PHASE_END */
	const char *context_message;
} runner_event;

typedef void (*runner_event_fn)(const runner_event *ev, void *payload);

/* A secondary source (--secondary-source ID=DIR|URL[@VERSION]): available to
 * the build at CODEBUILD_SRC_DIR_<id>.  With secondary sources every source
 * sits in a numbered folder as on the service: the primary at
 * <srcroot>/s3/00, the secondaries at s3/01, s3/02, ... */
typedef struct runner_secondary_source {
	const char *id;              /* sourceIdentifier: [A-Za-z0-9_], 1-127 characters */
	const char *dir;             /* a local directory, or NULL with git_url */
	const char *git_url;         /* a git repository, cloned like the primary */
	const char *version;         /* git: branch, tag, SHA, ... (NULL = default branch) */
} runner_secondary_source;

typedef struct runner_opts {
	const char *source_dir;      /* the primary source directory (or NULL with git_url) */
	const char *git_url;         /* a git repository to clone as the source instead */
	int clone_depth;             /* git: CodeBuild's git_clone_depth; 1 by default, 0 = full */
	bool fetch_submodules;       /* git: fetch submodules too */
	const runner_secondary_source *secondary; /* n_secondary secondary sources */
	size_t n_secondary;
	const char *buildspec;       /* a file in the source: relative to source_dir, or absolute
				      * inside it (read beneath the source, never elsewhere);
				      * NULL = buildspec.yml */
	bool buildspec_inline;       /* buildspec is the launcher's copy of an inline buildspec
				      * (a file it wrote in the build's directory): read as is */
	const char *project_name;    /* NULL = derived from source_dir's name */
	const char *home;            /* state directory; NULL = store_default_home() */
	const char *image;           /* NULL = "host" */
	const char *compute_type;    /* NULL = BUILD_GENERAL1_SMALL */
	const char *region;          /* NULL = us-east-1 */
	const char *account_id;      /* NULL = 000000000000 */
	const char *initiator;       /* NULL = $USER, else the real uid's name */
	const char *source_version;  /* CODEBUILD_SOURCE_VERSION; NULL = none */
	const char *const *env_overrides;  /* "NAME=VALUE" (highest precedence); NULL-terminated */
	const char *const *project_env;    /* "NAME=VALUE" project variables; NULL-terminated */
	const char *const *webhook_env;    /* "NAME=VALUE" CODEBUILD_WEBHOOK_* of a simulated webhook
					      event (runner/webhook.h); NULL-terminated */
	const char *const *project_secrets;  /* "P NAME=PARAMETER" / "S NAME=SECRET-REF": a project's
						PARAMETER_STORE / SECRETS_MANAGER variables, resolved
						from secrets_file and masked; NULL-terminated */
	const char *const *override_secrets; /* the same from StartBuild's overrides */
	const char *secrets_file;    /* offline parameter-store / secrets-manager values */
	int64_t timeout_ms;          /* 0 = 60 minutes */
	const char *artifacts_dir;   /* -a: where artifacts go; NULL = <build dir>/artifacts */
	bool packaging_none;         /* packaging NONE (directories) instead of ZIP */
	/* a launched build: the primary artifact is named after the project's
	 * artifacts.name unless its overrideArtifactName lets the buildspec's
	 * artifacts/name win (reference §1.3, §5.2); run (no project) uses the
	 * buildspec's */
	bool project_artifacts;
	bool override_artifact_name;
	const char *project_artifact_name; /* NULL = none */
	const char *reports_dir;     /* --reports: also write reports (API JSON + raw files) here */
	runner_sandbox_mode sandbox;
	runner_source_mode source_mode;
	bool git_tracked_only;       /* the build sees only what a clone of HEAD contains */
	runner_network_mode network; /* --network */
	bool vpc_config;             /* the project has a vpcConfig: not applied (said in the log) */
	bool strict;                 /* buildspec warnings become errors */
	bool no_cache;               /* --no-cache: neither restore nor save the cache */
	bool no_buildspec_cache;     /* the project's cache has no custom mode: the buildspec's
					cache section is skipped (a source cache still works) */
	const char *const *insecure_registries; /* NULL-terminated: plain HTTP allowed (images) */
	const char *cache_dir;       /* --cache-dir: the cache store (NULL = <home>/cache) */
	bool source_cache;           /* --source-cache (LOCAL_SOURCE_CACHE): git sources' objects kept
					in <cache dir>/git between builds (off with no_cache) */
	const char *uuid;            /* the build's uuid, allocated by a launcher (NULL = new) */
	const json_t *record_base;   /* a launched build: the Build record's fields as the service
					writes them from the project and request
					(runner_launch_record); they replace the run's own */
	const char *log_group;       /* the log group and stream (NULL = /aws/codebuild/<project>,
					the uuid) */
	const char *log_stream;
	int64_t number;              /* its build number (0 = allocate the next one) */
	runner_event_fn on_event;
	void *payload;
	const char *const *mounts;   /* --mount "SRC:DST[:ro]" (NULL-terminated): host paths the
					user shows the build on purpose (the sandbox hides the
					host's private data otherwise); SRC must exist, DST is
					absolute and not under /proc, /sys, /dev or /codebuild */
	bool host_runtimes;          /* --host-runtimes: with the host image, a runtime-versions entry
					the host lacks is a logged warning, not a failed build */
	bool privileged;             /* --privileged / privilegedMode: the build's root keeps every
					capability, no seccomp filter, /proc/sys writable (for
					docker-in-docker); said in the log */
	const char *batch_arn;       /* a build of a batch: its BuildBatch's ARN (buildBatchArn) */
	bool batch_member;           /* one build of the buildspec's batch (run --batch-build) */
	int from_phase;              /* --from-phase: a runner_phase_type (PRE_BUILD .. POST_BUILD) to
					start at, on the newest matching phase checkpoint; 0 = all */
	bool checkpoints;            /* keep a checkpoint at the end of each successful phase with
					commands (a snapshot source, as root) */
	bool checkpoint_secrets;     /* ... even when the build has secrets */
	bool debug;                  /* run --debug / debugSessionEnabled: a failing command and
					codebuild-breakpoint pause the build until it is resumed
					(codebuild-resume, or the end of a RESUME_ON_EXIT session);
					without it codebuild-breakpoint is a no-op */
	bool debug_failures;         /* with debug: a failing command pauses too (run --debug;
					the service pauses at breakpoints only) */
	const char *const *notes;    /* NULL-terminated: what the caller could not apply, said in
					the log as warnings (a batch task's env.type, ...) */
	bool include_ignored;        /* --source-mode all: a snapshot of a local git working tree
					keeps its git-ignored files (by default they are left out,
					as a cloud build of a push would not have them) */
} runner_opts;

#define RUNNER_OPTS_INIT {0}

typedef struct runner_build runner_build;

/* Prepares a build: allocates its id (<project>:<uuid>), its build number and
 * its directory under the state directory.  Nothing runs yet. */
int runner_build_new(runner_build **out, const runner_opts *opts, cbl_error **err);

/* Runs the build to its end.  Returns 0 when the build ran, whatever its
 * status (see runner_build_status); a negative code only when it could not be
 * run or recorded at all. */
int runner_build_run(runner_build *b, cbl_error **err);

/* Asks a running build to stop (status STOPPED).  Async-signal-safe. */
void runner_build_stop(runner_build *b);

runner_status runner_build_status(const runner_build *b);
/* True when the build failed because the buildspec is invalid. */
bool runner_build_spec_invalid(const runner_build *b);
/* The buildspec diagnostics (errors and warnings) of DOWNLOAD_SOURCE. */
const spec_diags *runner_build_diags(const runner_build *b);
const char *runner_build_id(const runner_build *b);
const char *runner_build_dir(const runner_build *b);
const char *runner_build_log_path(const runner_build *b);
/* The reports of the build: an array of the API's Report objects, each with
 * an extra "testCases" / "codeCoverages" array and "failingCases" summary
 * lines (borrowed; NULL before UPLOAD_ARTIFACTS ran). */
json_t *runner_build_reports(const runner_build *b);

/* The end-of-build summary's lines on resource use, cost and right-sizing
 * (from the record's "codebuildLocal"); NULL when nothing was measured.
 * Caller frees. */
char *runner_build_usage_text(runner_build *b);

/* The Build record in the CodeBuild API's shape (borrowed; valid until free). */
json_t *runner_build_record(runner_build *b);

void runner_build_free(runner_build *b);

/* One runtime-versions entry against the host image (the rule of
 * images/images.h): 0 when the host has it.  Otherwise CBL_EINVAL with the
 * service's YAML_FILE_ERROR message, then which curated images have it and
 * what --host-runtimes does, e.g. "Unknown runtime version named '12' of
 * nodejs. This build image has the following versions: 20. nodejs 12 is in
 * aws/codebuild/standard:5.0 (-i aws/codebuild/standard:5.0);
 * --host-runtimes goes on with the host's nodejs 20.20.2".  CBL_EIO when the
 * host's version cannot be read. */
int runner_host_runtime_check(const char *runtime, const char *version, cbl_error **err);

/* ---- entering a running build (runner/attach.c, served by runner/debug.c)
 * A build with a sandbox listens on <build dir>/debug.sock for its own user
 * and root: a session (a shell on a terminal the client made, or one
 * command on the client's descriptors) starts in the build's sandbox with
 * its environment, carried variables, directory and run-as user. */
typedef enum runner_debug_kind {
	RUNNER_DEBUG_SHELL = 1,  /* an interactive shell (the build's shell, -i) */
	RUNNER_DEBUG_EXEC,       /* argv, through the build's shell setup */
	RUNNER_DEBUG_RESUME,     /* a paused build goes on */
} runner_debug_kind;
enum {
	RUNNER_DEBUG_TTY = 1,            /* one descriptor, a terminal: stdin, stdout, stderr */
	RUNNER_DEBUG_RESUME_ON_EXIT = 2, /* the session's end resumes the paused build */
};
typedef enum runner_debug_answer {
	RUNNER_DEBUG_STARTED = 1,  /* status: the session's pid inside */
	RUNNER_DEBUG_EXITED,       /* status: its exit status (128 + signal) */
	RUNNER_DEBUG_ERROR,        /* msg says why */
} runner_debug_answer;
typedef struct runner_debug_reply {
	int32_t kind;
	int32_t status;
	char msg[248];
} runner_debug_reply;

/* Connects to the build id's socket under home (NULL = the default):
 * CBL_ENOENT (no such build), CBL_EIO (not the user's: "permission denied", or not
 * running, or no sandbox). */
int runner_attach_connect(const char *home, const char *build_id, int *out, cbl_error **err);
/* Sends the request: fds (nfds: 1 with RUNNER_DEBUG_TTY, else 3; 0 for
 * RESUME) travel with it.  CBL_EIO. */
int runner_attach_send(int fd, runner_debug_kind kind, unsigned flags, const char *const *argv, const int *fds,
		       int nfds, cbl_error **err);
/* Reads the next answer; CBL_EIO when the build went away. */
int runner_attach_read(int fd, runner_debug_reply *r, cbl_error **err);

/* The fidelity report of one buildspec (`validate --strict`): everything a
 * local run of it would fake or skip, each with the buildspec position it
 * comes from (line 0: the whole build) and what to do about it. */
typedef struct runner_finding {
	spec_pos pos;
	char *what; /* what a local run does instead of what the service does */
	char *todo; /* what to do to match the service, or to live with it */
} runner_finding;

typedef struct runner_findings {
	runner_finding *items;
	size_t n;
} runner_findings;

#define RUNNER_FINDINGS_INIT {NULL, 0}

typedef struct runner_fidelity_opts {
	const char *image;        /* -i IMAGE as run would get it; NULL = the project's, else the host image */
	const char *secrets_file; /* --secrets-file as run would get it; NULL = none */
	const json_t *project;    /* the Project (API shape) the build would be started for; NULL = none
				     (borrowed): its VPC, webhook, artifacts, cache, logs, batch and
				     environment settings are reported too, at line 0 */
} runner_fidelity_opts;

#define RUNNER_FIDELITY_OPTS_INIT {NULL, NULL, NULL}

/* Appends the findings for bs (a buildspec that parsed without errors) to
 * out, in buildspec order.  The images catalog and the secrets file are read
 * (their errors become findings); the host's runtimes are asked for their
 * versions.  Never fails. */
void runner_fidelity_check(const spec_buildspec *bs, const runner_fidelity_opts *o, runner_findings *out);
void runner_findings_release(runner_findings *f);

#endif
