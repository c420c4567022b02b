/* runner/runner_internal.h - internals shared by the runner sources and unit tests. */
#ifndef RUNNER_INTERNAL_H
#define RUNNER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runner/runner.h"
#include "util/buf.h"
#include "util/strv.h"
#include "spec/spec.h"
#include <jansson.h>
#include <signal.h>
#include <poll.h>

/* ---- secret masking (runner/log.c) ---- */
typedef struct runner_mask {
	cbl_strv secrets; /* longest first */
} runner_mask;

void runner_mask_add(runner_mask *m, const char *secret);
/* Replaces every occurrence of every secret in s with "***"; caller frees. */
char *runner_mask_apply(const runner_mask *m, const char *s, size_t len);
void runner_mask_release(runner_mask *m);

/* ---- shell session: CodeBuild's command model (runner/shell.c) ---- */
typedef enum runner_cmd_outcome {
	RUNNER_CMD_EXITED = 0,  /* ran; *status is its exit status */
	RUNNER_CMD_TIMED_OUT,   /* the build deadline passed; the command was killed */
	RUNNER_CMD_STOPPED,     /* runner_build_stop() was called; the command was killed */
} runner_cmd_outcome;

typedef void (*runner_line_fn)(const char *line, size_t len, void *payload);

typedef struct sandbox_handle sandbox_handle;

typedef struct runner_shell {
	char *tmpdir;        /* holds script.sh, env.sh, dir.txt (host path, 0700) */
	int tmp_fd;          /* tmpdir: every file in it is opened beneath this
			      * descriptor (the build can write there) */
	/* the same files as the build sees them (== host paths without sandbox) */
	char *tmpdir_inner, *script_inner, *env_inner, *dir_inner;
	sandbox_handle *sandbox; /* NULL = commands run on the host */
	const char *run_as;  /* user the next commands run as (sandbox only), borrowed */
	char *shell;         /* absolute path of the shell */
	bool carry;          /* 0.2: cwd + variables carry over; 0.1: nothing does */
	char *start_dir;     /* CODEBUILD_SRC_DIR */
	char *cwd;           /* current directory carried between commands */
	int out_r, out_w;    /* one pipe for every command of the build */
	int stop_r;          /* readable when the build is asked to stop */
	int64_t deadline_mono_us; /* 0 = none */
	pid_t *pgids;        /* process groups started (killed at the end) */
	size_t npgids, cap_pgids;
	cbl_buf pending;     /* output bytes not yet ended by a newline */
	runner_line_fn on_line;
	void *payload;
	int last_signal;     /* the last command's shell was killed by this signal (0 = exited) */
	bool init_gone;      /* the sandbox's init died: a FAULT, not the command's failure */
	cbl_strv secret_names; /* variables holding secrets: never written to env.sh */
	int val_fd;          /* a value script's FIFO while it runs (-1 otherwise) */
	cbl_buf val_buf;     /* what came out of it */
	bool val_overflow;
	/* more descriptors to watch while a command runs (debug.c: the attach
	 * socket and its clients): extra_fds fills at most max entries,
	 * on_extra gets them back after each poll (and after the sandbox's
	 * records were read: a session may have ended) */
	size_t (*extra_fds)(struct pollfd *p, size_t max, void *payload);
	void (*on_extra)(const struct pollfd *p, size_t n, void *payload);
	void *extra_payload;
	bool paused_output;  /* do not read the output pipe (a debug shell has the terminal) */
} runner_shell;

int runner_shell_init(runner_shell *sh, const char *tmpdir, const char *shell, bool carry,
		      const char *start_dir, const char *const *path_env, cbl_error **err);
/* Replaces the shell's output pipe by (r, w), e.g. one the sandbox already
 * holds; the shell owns them from now on. */
void runner_shell_adopt_pipe(runner_shell *sh, int r, int w);
/* Runs commands inside sb (borrowed) from now on; tmp_inner is where the
 * sandbox shows tmpdir, start_dir (given to init) is already an inner path. */
void runner_shell_use_sandbox(runner_shell *sh, sandbox_handle *sb, const char *tmp_inner);
/* Runs one command.  envp is the base environment (image + CodeBuild
 * variables); carried state comes from env.sh. */
int runner_shell_exec(runner_shell *sh, const char *command, char *const envp[],
		      runner_cmd_outcome *how, int *status, cbl_error **err);
/* Names the variables of envp that hold secrets (parameter-store,
 * secrets-manager): they reach every command through its environment only.
 * The command script leaves them out of the carried state (env.sh) unless
 * the build gave them another value. */
void runner_shell_set_secrets(runner_shell *sh, const char *const *names, size_t n);
/* Appends `export NAME='value'` to the carried environment. */
int runner_shell_set_var(runner_shell *sh, const char *name, const char *value, cbl_error **err);
/* Reads the current values of names (as the next command would see them). */
int runner_shell_read_vars(runner_shell *sh, char *const envp[], const char *const *names,
			   size_t n, char ***values_out, cbl_error **err);
/* Shell-expands strings as the service does for artifact names, file
 * paths, base directories and cache keys: parameter expansion, command
 * substitution and arithmetic, like inside double quotes (no word splitting,
 * no globbing), with the carried environment, in the current directory.
 * *out is a NULL-terminated array of n strings (caller frees each and it). */
int runner_shell_expand(runner_shell *sh, char *const envp[], const char *const *strings, size_t n,
			char ***out, cbl_error **err);
/* Reads output that is already in the pipe (e.g. from background jobs). */
void runner_shell_drain(runner_shell *sh, int wait_ms);
/* Kills every process the build started (SIGKILL) and reaps them. */
void runner_shell_kill_all(runner_shell *sh);
void runner_shell_release(runner_shell *sh);

/* ---- debugging (debug.c: the attach socket and pauses; attach.c: the wire) ---- */
typedef struct runner_debug runner_debug;
#define RUNNER_DEBUG_MARKER "resume"  /* in the scratch's debug-bin: codebuild-resume ran */
typedef struct runner_debug_request {
	uint32_t magic;      /* RUNNER_DEBUG_MAGIC */
	uint32_t kind;       /* runner_debug_kind */
	uint32_t flags;      /* RUNNER_DEBUG_TTY, ... */
	uint32_t argc;
	uint32_t len;        /* bytes of NUL-terminated argv strings that follow */
} runner_debug_request;
#define RUNNER_DEBUG_MAGIC 0x44424c43u
/* Reads a request and its descriptors (up to 3): *strs holds the strings,
 * *args (argc entries) points into it; the caller frees both. */
int runner_debug_recv(int fd, runner_debug_request *rq, int fds[3], int *nfds, char **strs, char ***args,
		      cbl_error **err);

/* ---- environment (runner/env.c) ---- */
typedef struct runner_secrets runner_secrets;
int runner_secrets_load(runner_secrets **out, const char *path, cbl_error **err);
/* Resolves an SSM parameter name.  CBL_ENOENT with a service-like message if unknown. */
int runner_secrets_parameter(const runner_secrets *s, const char *name, char **out, cbl_error **err);
/* Resolves "secret-id:json-key:version-stage:version-id". */
int runner_secrets_secret(const runner_secrets *s, const char *ref, char **out, cbl_error **err);
void runner_secrets_free(runner_secrets *s);

/* Parses a secrets-manager reference into its four fields (ARN-aware). */
int runner_secret_ref_parse(const char *ref, char **id, char **json_key, char **stage,
			    char **version, cbl_error **err);

/* Base environment a host-image build starts from (PATH, LANG, ... of the host). */
void runner_env_host_base(cbl_strv *env);

/* CODEBUILD_INITIATOR when the caller names none: $USER, else the real
 * uid's name (build.c).  Caller frees. */
char *runner_invoking_user(void);

/* ---- compute types (runner/compute.c) ---- */
typedef struct runner_compute {
	const char *name;
	int memory_gb;
	int vcpus; /* 0 = not published */
} runner_compute;

const runner_compute *runner_compute_find(const char *name);
/* The i-th compute type, smallest first within a family; NULL past the end. */
const runner_compute *runner_compute_at(size_t i);
const char *runner_compute_names(void);

/* ---- the build object (runner/runner.c) ---- */
/* A secondary source as the build has it. */
typedef struct runner_src2 {
	char *id, *dir, *git_url, *version;
	char *host;          /* where the runner sees it (the clone, the copy, the overlay) */
	char *inner;         /* CODEBUILD_SRC_DIR_<id> */
	bool bind;           /* mount mode: the sandbox binds dir itself at inner */
	bool overlay;        /* snapshot by an overlay (runner's mount namespace) at host */
	bool sb_overlay;     /* snapshot by an overlay the sandbox mounts at inner (not
			      * root: in its user namespace), read through view_fd */
	int view_fd;         /* sb_overlay: the overlay, open (provision.c), or -1 */
	bool copy;           /* snapshot by a copy at host */
	char *resolved, *repo_url;
} runner_src2;

/* What a stage reports when it fails: the phase's context (runner.c turns
 * it into the phase's end). */
typedef struct runner_outcome {
	char *code, *message; /* masked when set */
	bool spec_invalid;    /* the buildspec is at fault */
} runner_outcome;

typedef struct phase_rec {
	bool started, ended;
	runner_status status;
	int64_t start_us, end_us;
	runner_outcome ctx;
} phase_rec;

/* ---- resource use, cost, right-sizing (runner/usage.c, runner/prices.c) ---- */
typedef struct runner_usage {
	bool measured;
	int64_t cpu_us, mem_peak, read_bytes, write_bytes;
} runner_usage;

typedef struct runner_usage_part { /* usage.c */
	runner_usage phase[RUNNER_PHASE_COUNT]; /* the phase's commands' process trees */
	runner_usage total;                     /* the sandbox's, at the last phase end */
	const char *source;                     /* static: how it was counted */
	const char *peak_source;                /* static: where total.mem_peak comes from */
} runner_usage_part;

/* After a command of phase p: what it used, added to the phase's. */
void runner_usage_command(runner_build *b, runner_phase_type p);
/* At a phase's end (while the sandbox is up): the sandbox's use so far. */
void runner_usage_sample(runner_build *b);
/* The record's "codebuildLocal" object: usage, and once the build has
 * ended its cost and the right-sizing advice.  New reference. */
json_t *runner_usage_json(const runner_build *b);
/* Phase p's use, or NULL when nothing was measured in it.  New reference. */
json_t *runner_usage_phase_json(const runner_build *b, runner_phase_type p);

/* The price table (prices.c): the embedded one, or the file
 * CODEBUILD_LOCAL_PRICES names.  CBL_EINVAL with file:line:col. */
int runner_prices_load(json_t **out, cbl_error **err);
/* A build of duration_us on compute_type: false when the table has no price for it. */
bool runner_prices_cost(const json_t *table, const char *compute_type, int64_t duration_us, double *cost);
bool runner_prices_per_minute(const json_t *table, const char *compute_type, double *per_minute);

/* The build object, in parts each filled by one stage or initialiser (the
 * comment says which); the others read them. */
typedef struct runner_identity { /* build.c init_project / init_identity */
	char *home, *project, *uuid, *id, *arn, *dir, *log_path, *tmpdir;
	int64_t number;
	char *region, *account, *initiator;
} runner_identity;

/* A --mount as the runner keeps it: the source resolved (realpath), the
 * target normalized (provision.c runner_binds_init). */
typedef struct runner_bind {
	char *source, *target;
	bool read_only;
} runner_bind;

typedef struct runner_config { /* build.c init_environment: what was asked for */
	char *image, *compute_type, *secrets_file, *source_version;
	char *batch_arn;         /* buildBatchArn, or NULL */
	bool batch_member;       /* a build of the buildspec's batch */
	cbl_strv notes;          /* runner_opts.notes, warned in PROVISIONING */
	bool compute_explicit;   /* --compute-type given: enforce its memory/pids limits */
	int sandbox_mode;        /* runner_sandbox_mode */
	int network;             /* runner_network_mode */
	bool vpc_config;         /* a project vpcConfig, not applied */
	int64_t timeout_ms;
	bool strict;
	runner_bind *binds;      /* --mount, in order */
	size_t n_binds;
	bool host_runtimes;      /* --host-runtimes: the host's versions, mismatches logged */
	bool privileged;         /* privilegedMode: the sandbox confines nothing but the view */
	char *log_group, *log_stream; /* NULL = /aws/codebuild/<project>, the uuid */
	json_t *record_base;     /* a launched build's record fields (runner_opts.record_base) */
} runner_config;

typedef struct runner_layout { /* build.c init_source / init_layout, provision.c, fetch.c, sources.c */
	char *source_dir, *buildspec_path, *buildspec_display, *buildspec_arg;
	bool buildspec_inline;   /* buildspec_path is the launcher's file, not the source's */
	char *git_url;           /* git source: cloned into git_parent/src in DOWNLOAD_SOURCE */
	char *git_parent;
	int clone_depth;
	bool fetch_submodules;
	char *source_cache_dir;  /* --source-cache: <cache dir>/git, NULL = off (source/source.h) */
	int source_mode;         /* runner_source_mode */
	bool include_ignored;    /* --source-mode all: the snapshot keeps git-ignored files */
	bool wt_read;            /* the primary's git status was read for its snapshot: */
	size_t wt_untracked, wt_modified; /* its counts, for DOWNLOAD_SOURCE's warning */
	char *src_inner;         /* /codebuild/output/srcN/src, or the host path */
	char *scratch;           /* mount point of the sandbox's private tmpfs */
	char *src_copy;          /* snapshot by copy (no overlay): our copy of the tree */
	char *view;              /* host path of the build's view of its source (artifacts);
				  * with sb_overlay, "/proc/self/fd/<view_fd>" once the
				  * sandbox is up (util/fs.h cbl_fd_path) */
	bool view_mounted;
	bool sb_overlay;         /* snapshot, not root: the sandbox mounts the source as an
				  * overlay in its user namespace (upper layer in its private
				  * tmpfs); a copy when the kernel refuses that */
	cbl_strv *sb_hide;       /* sb_overlay: the git-ignored paths each overlay leaves out
				  * ([0] the primary, [1 + i] secondary i; provision.c) */
	int view_fd;             /* sb_overlay: that overlay, opened once the sandbox is up;
				  * it stays readable after the sandbox ends, until
				  * runner_sandbox_views_close (FINALIZING, after the cache
				  * save).  -1 = none */
	char *tracked_dir;       /* --git-tracked-only: HEAD checked out here */
	char *resolved_version, *repo_url;
	/* secondary sources: every source in <multi_root>/s3/NN */
	runner_src2 *srcs;
	size_t nsrcs;
	char *multi_root;        /* host: <build dir>/sources (NULL = one source) */
	char *multi_inner;       /* what the build sees: /codebuild/output/srcN/src */
	bool primary_bind;       /* mount mode with the layout: the sandbox binds source_dir */
	bool private_ns;         /* the runner has its own mount namespace (overlays) */
	int n_overlays;
	/* inner path prefixes and the host paths the runner reads them from
	 * (artifacts, reports), longest first */
	cbl_strv map_inner, map_host;
	cbl_strv sandbox_binds;  /* host, inner pairs the sandbox binds (mount mode) */
} runner_layout;

typedef struct runner_vars { /* buildenv.c; exported ones by phases.c */
	cbl_strv env;            /* what every command starts with */
	cbl_strv overrides, project_env; /* NAME=VALUE */
	cbl_strv webhook_env;    /* NAME=VALUE: a simulated webhook event's CODEBUILD_WEBHOOK_* */
	cbl_strv project_secrets, override_secrets; /* "P NAME=REF" / "S NAME=REF" */
	cbl_strv exported_names, exported_values;
	cbl_strv secret_names;   /* variables of env set from parameter-store / secrets-manager */
} runner_vars;

typedef struct runner_uploads { /* upload.c */
	char *artifacts_dir, *reports_dir;
	bool packaging_none;
	bool project_artifacts, override_artifact_name; /* runner_opts */
	char *project_artifact_name;
	json_t *artifacts_rec;   /* BuildArtifacts, NULL = none */
	json_t *secondary_recs;  /* list of BuildArtifacts */
	json_t *reports;         /* see runner_build_reports() */
	cbl_strv report_arns;
} runner_uploads;

typedef struct runner_cache_part { /* cache.c */
	bool off;
	const char *off_why;     /* a literal */
	char *dir;
	struct cache_store *store;
	struct cache_session *sess;
} runner_cache_part;

typedef struct runner_image_part { /* image.c */
	struct images_root *root; /* the build image (NULL until PROVISIONING) */
	int hold;                 /* its root held in use (images_root_hold), or -1 */
	const char *const *insecure_registries; /* borrowed from the options */
} runner_image_part;

typedef struct runner_log { /* log.c */
	int fd;
	runner_mask mask;
	runner_event_fn on_event;
	void *payload;
} runner_log;

typedef struct runner_ckpt_part { /* checkpoint.c */
	bool take;               /* runner_opts.checkpoints */
	bool with_secrets;       /* --checkpoint-secrets */
	bool said_secrets;
	int from_phase;          /* runner_phase_type to start at; 0 = a full run */
	char *src_upper;         /* the primary source overlay's upper layer (host path), NULL = none */
	char *root_dir;          /* sandbox_opts.root_upper (in view-tmp), NULL = none */
	char *root_upper;        /* its upper/: what the build changed outside the source */
	char *dir, *layer;       /* the checkpoint restored, and its source layer */
	char *private_lower;     /* its private/ (sandbox_opts.private_lower), NULL = none */
	bool root_restored;      /* its root-layer/ is in the restored build's root */
	char *root_lower;        /* its root-layer/ stacked read-only (no spare ready, the store
				  * on another filesystem than /), NULL = none */
	char *claim_dir;         /* its spare claimed: the store's tmp/ directory with upper/
				  * (sandbox_opts.root_upper_in), removed at the end */
	int claim_lock;          /* that directory's lock (with claim_dir only) */
	bool spare_wanted;       /* a restore: make the checkpoint's next spare at the end */
	json_t *meta;
	bool sb_take;            /* not root: taken from the sandbox (sandbox_copy_out) */
	long src_mount;          /* the sandbox's mount of the primary source overlay, or -1 */
} runner_ckpt_part;

struct runner_build {
	runner_identity ident;
	runner_config cfg;
	runner_layout src;
	runner_vars vars;
	runner_uploads up;
	runner_cache_part cache;
	runner_image_part img;
	runner_log log;
	/* the shell (startshell.c) */
	runner_shell sh;
	bool shell_ready;
	/* the state machine (runner.c, record.c) */
	int64_t start_us, end_us;
	int64_t deadline_mono_us; /* start + timeout (CLOCK_MONOTONIC) */
	phase_rec phases[RUNNER_PHASE_COUNT];
	runner_phase_type current;
	runner_status status;
	json_t *record;
	int stop_pipe[2];
	volatile sig_atomic_t stop_requested;
	/* the buildspec (buildspec.c) */
	bool spec_invalid;
	spec_diags diags;
	spec_buildspec *spec;
	/* the sandbox (provision.c) */
	sandbox_handle *sandbox;
	int out_pipe[2];         /* command output, created in PROVISIONING */
	bool ids_full;           /* other users exist inside (root, or subordinate ids
				  * mapped): run-as is applied */
	bool ro_root;            /* the build's / is read-only (a normal user on the host
				  * image): a command failing on it gets the hint, once */
	bool rofs_seen;          /* the running command's output said "read-only file
				  * system" (or denied a system path) */
	bool rofs_hinted;
	runner_ckpt_part ckpt;
	bool git_held;           /* a libgit2 initialisation held for the build (provision.c) */
	runner_debug *dbg;       /* the attach socket (debug.c), NULL without a sandbox */
	bool debug, debug_failures; /* runner_opts.debug, .debug_failures */
	runner_usage_part usage;
};

/* ---- the stages ----
 * A stage does one step of a phase's work and returns RUNNER_STATUS_SUCCEEDED,
 * or the phase's status with its context set in *o (runner_outcome_set). */
typedef runner_status (*runner_stage_fn)(runner_build *b, runner_outcome *o);

/* PROVISIONING (provision.c): the sources' layout, snapshot, image, sandbox. */
runner_status runner_provision(runner_build *b, runner_outcome *o);
/* The --mount specs ("SRC:DST[:ro|:rw]", NULL-terminated) checked and kept
 * in b->cfg.binds: SRC must exist; DST absolute, without '.' or '..'
 * components, not / nor under /proc, /sys, /dev or /codebuild.  CBL_EINVAL
 * (CBL_ENOENT for a missing SRC) with the spec in the message. */
int runner_binds_init(runner_build *b, const char *const *specs, cbl_error **err);
void runner_binds_free(runner_build *b);
/* Inside the sandbox with the host image: the runner's own binary, read-only,
 * as codebuild-local and codebuild-hash-files (on the build's PATH). */
#define RUNNER_INNER_BIN "/codebuild/readonly/bin"
/* DOWNLOAD_SOURCE, in this order: */
runner_status runner_stage_fetch(runner_build *b, runner_outcome *o);         /* fetch.c */
runner_status runner_stage_buildspec(runner_build *b, runner_outcome *o);     /* buildspec.c */
runner_status runner_stage_env(runner_build *b, runner_outcome *o);           /* buildenv.c */
runner_status runner_stage_shell(runner_build *b, runner_outcome *o);         /* startshell.c */
runner_status runner_stage_runtimes(runner_build *b, runner_outcome *o);      /* startshell.c */
runner_status runner_stage_cache_restore(runner_build *b, runner_outcome *o); /* cache.c */
runner_status runner_stage_register(runner_build *b, runner_outcome *o);      /* startshell.c */
/* INSTALL .. POST_BUILD (phases.c): one phase, started and ended here. */
runner_status runner_run_phase(runner_build *b, runner_phase_type p);
/* After the phases: exported-variables captured from the shell. */
void runner_capture_exported(runner_build *b);
/* UPLOAD_ARTIFACTS (upload.c): artifacts and reports. */
runner_status runner_upload(runner_build *b, runner_outcome *o);
/* FINALIZING and COMPLETED (finalize.c): tear down, cache save, record. */
int runner_finalize(runner_build *b, cbl_error **err);

typedef enum runner_cmds_result {
	RUNNER_CMDS_OK,
	RUNNER_CMDS_FAILED,
	RUNNER_CMDS_TIMED_OUT,
	RUNNER_CMDS_STOPPED,
	RUNNER_CMDS_FAULT,
} runner_cmds_result;
/* Runs commands one by one in the build's shell as the agent does (phases.c);
 * on failure *o holds the context. */
runner_cmds_result runner_run_commands(runner_build *b, runner_phase_type p, const spec_strlist *cmds,
				       runner_outcome *o);

/* Listens on the build's debug.sock (with a sandbox; once the shell is up). */
int runner_debug_listen(runner_build *b, cbl_error **err);
/* The shell's waits serve the socket too. */
void runner_debug_hook(runner_build *b);
void runner_debug_close(runner_build *b);
/* Pauses the build after cmd (failed, or a breakpoint) until resumed;
 * RUNNER_CMD_STOPPED / TIMED_OUT when the build ends meanwhile. */
runner_cmd_outcome runner_debug_pause(runner_build *b, runner_phase_type p, const char *cmd, bool breakpoint);
/* True when cmd is `codebuild-breakpoint`. */
bool runner_is_breakpoint(const char *cmd);

/* Phase checkpoints (checkpoint.c).  lookup: in PROVISIONING, before the
 * source view, finds the checkpoint --from-phase starts on (0), or says why
 * none matches (-1, *why caller-freed). */
int runner_checkpoint_lookup(runner_build *b, char **why);
/* Leaves out of the snapshot's hidden paths those the checkpoint's layer has. */
void runner_checkpoint_filter_hide(runner_build *b, cbl_strv *hide);
/* Once the shell is up: the checkpoint's carried state. */
void runner_checkpoint_restore_shell(runner_build *b);
/* True (the phase logged as restored) when p comes before --from-phase. */
bool runner_checkpoint_skips(runner_build *b, runner_phase_type p);
/* Before the sandbox starts: as root, the root overlay's upper layer where
 * a checkpoint can copy it, and the restored checkpoint's below it. */
struct sandbox_opts;
void runner_checkpoint_root(runner_build *b, struct sandbox_opts *so);
/* After phase p succeeded: its checkpoint, when the build takes them. */
void runner_checkpoint_take(runner_build *b, runner_phase_type p);
void runner_checkpoint_release(runner_build *b);
/* The buildspec parsed ahead of its stage (buildspec.c): 0, or -1 with *why. */
int runner_buildspec_peek(runner_build *b, spec_buildspec **out, char **why);

/* ---- phases and the record (record.c) ---- */
void runner_outcome_set(runner_build *b, runner_outcome *o, const char *code, const char *msg);
void runner_outcome_setf(runner_build *b, runner_outcome *o, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void runner_outcome_release(runner_outcome *o);
/* Starts phase p (an event; the record is saved for the phases readers
 * watch).  runner_phase_end ends it: agent lines when log is set. */
void runner_phase_start(runner_build *b, runner_phase_type p);
void runner_phase_end(runner_build *b, runner_phase_type p, runner_status st, bool log);
/* Rebuilds the Build record and stores it (store_build_save). */
void runner_record_save(runner_build *b, bool durable, cbl_error **err);

/* ---- the log and events (log.c) ---- */
/* An agent line "[Container] <time> <msg>": to the log, masked, and as an event. */
void runner_agent(runner_build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "[codebuild-local] WARNING: ...": what a local run does unlike the cloud. */
void runner_warn(runner_build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when a line of a command's output reports a write refused on a
 * read-only system directory ("Read-only file system", EROFS, a
 * permission denied naming /usr, /etc, /var, /opt, /bin, /sbin or /lib). */
bool runner_rofs_line(const char *line, size_t len);
/* runner_warn, then *e is freed and set to NULL (a warning-only failure). */
void runner_warn_drop(runner_build *b, cbl_error **e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void runner_emit(runner_build *b, runner_event *ev);
/* One line to the log (masked) and as an event. */
void runner_log_line(runner_build *b, const char *text, size_t len, bool agent);
/* The shell's output callback (payload = the build). */
void runner_log_output(const char *line, size_t len, void *payload);

/* A URL as it may be shown: credentials replaced by "***".  Caller frees. */
char *runner_redact_url(const char *url);
/* Clone progress callback (payload = the build). */
void runner_clone_progress(const char *line, void *payload);
/* A ProjectSource object for a git URL or a local directory. */
json_t *runner_source_json(const char *git_url, const char *dir, int depth, bool submodules);

/* runner/sources.c: secondary sources and the s3/NN layout. */
int runner_sources_init(runner_build *b, const runner_opts *opts, cbl_error **err);
/* PROVISIONING: copies and overlays; binds gets host/inner pairs for the sandbox. */
int runner_sources_provision(runner_build *b, cbl_strv *binds, cbl_error **err);
/* Mounts an overlay (lower read-only, upper on a private tmpfs) at target in
 * the runner's own mount namespace, created on first use; hide's paths
 * (relative to lower, NULL-terminated, may be NULL) are whited out. */
int runner_private_overlay(runner_build *b, const char *lower, const char *target, const char *const *hide,
			   cbl_error **err);
/* The same with a second read-only layer top above lower (NULL = none; a
 * phase checkpoint's), and the upper layer's path in *upper_out (may be
 * NULL; caller frees). */
int runner_private_overlay2(runner_build *b, const char *top, const char *lower, const char *target,
			    const char *const *hide, char **upper_out, cbl_error **err);
/* What a snapshot of the local directory dir leaves out: its git-ignored
 * paths into *hide (sorted; empty when dir is not the top of a git working
 * tree, or with --source-mode all), said in the log; secondary names a
 * secondary source (NULL: the primary, whose counts are kept for
 * DOWNLOAD_SOURCE's warning).  Caller releases *hide. */
void runner_snapshot_ignored(runner_build *b, const char *dir, const char *secondary, cbl_strv *hide);
/* Unmounts what runner_private_overlay mounted. */
void runner_private_ns_cleanup(runner_build *b);
/* Closes the descriptors of the sandbox's source overlays (sb_overlay):
 * the overlays and their upper layers go.  Idempotent. */
void runner_sandbox_views_close(runner_build *b);
/* dir holds a .git (a work tree of a repository). */
bool runner_is_git_dir(const char *dir);
void runner_local_git_head(const char *dir, char **sha, char **url);
void runner_sources_log_dirs(runner_build *b);
/* DOWNLOAD_SOURCE: clones the git secondaries; reads local ones' HEAD. */
runner_status runner_sources_download(runner_build *b, runner_outcome *o);
/* Fetches a git source with the build's settings (depth, submodules,
 * deadline, stop, progress, source cache: its line logged, naming the
 * secondary source when given). */
int runner_fetch_git(runner_build *b, const char *url, const char *version, const char *dest,
		     const char *secondary, char **sha, cbl_error **err);
/* A fetch's cancel hook: the build was stopped or its deadline passed. */
bool runner_fetch_cancelled(void *payload);
/* Sets DOWNLOAD_SOURCE's context for a failed fetch (STOPPED, TIMED_OUT or
 * CLIENT_ERROR "<what>: <message>") and returns the phase status; frees e. */
runner_status runner_fetch_failed(runner_build *b, runner_outcome *o, const char *what, cbl_error *e);
void runner_sources_env(runner_build *b);
void runner_sources_record(runner_build *b, json_t *r);
void runner_sources_free(runner_build *b);
/* Removes a build's scratch tree (a clone, a copy) without making the user
 * wait: renamed into <home>/trash (same filesystem, atomic) and removed by a
 * detached low-priority process; removed here when that cannot be done. */
void runner_discard_tree(runner_build *b, const char *path);
/* Runs fn(arg) in a detached process (its own session, stdio on /dev/null,
 * no other descriptor, nice 19 and idle I/O priority) that nothing waits
 * for, and returns at once; -1 when it cannot fork. */
int runner_detached(void (*fn)(void *), void *arg);
/* runner/image.c: the build image. */
bool runner_image_is_host(const char *image);
/* PROVISIONING: resolves (pulls, unpacks) the image; on failure *code and
 * *message are the phase context (caller frees). */
int runner_image_resolve(runner_build *b, char **code, char **message);
/* The image's root filesystem, NULL for the host. */
const char *runner_image_rootfs(const runner_build *b);
/* The environment the build starts from: the host's basics, or the image's Env. */
void runner_image_base_env(runner_build *b, cbl_strv *env);
/* The image's User when it is not root (the default run-as), else NULL. */
const char *runner_image_user(const runner_build *b);
/* DOWNLOAD_SOURCE: runtime-versions checked against the image (its
 * runtimes.yml, else the catalog, or the host); cmds gets the selection
 * commands to run (caller releases). */
runner_status runner_runtime_versions(runner_build *b, spec_strlist *cmds, char **code, char **message);
void runner_image_free(runner_build *b);
/* runner/cache.c: the build cache. */
/* codebuild-hash-files on the build's PATH (host image). */
void runner_cache_hash_files_tool(runner_build *b);
/* DOWNLOAD_SOURCE, with the shell up: expands, restores, mounts. */
void runner_cache_restore(runner_build *b);
/* FINALIZING, sandbox gone, view still there: saves what changed. */
void runner_cache_save(runner_build *b);
void runner_cache_free(runner_build *b);
/* <build dir>/runner.pid: "<pid> <start time>" of this process, so StopBuild
 * can signal the build's runner (runner/launch.c). */
void runner_write_pidfile(const char *build_dir);
/* Hands trees left in <home>/trash by an interrupted remover to a new one. */
void runner_sweep_trash(const char *home);

#endif
