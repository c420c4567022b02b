/* spec/spec.h - the buildspec, parsed once into typed structs.
 *
 * spec_parse_*() reads a buildspec (versions 0.1 and 0.2) with libyaml,
 * validates it against the grammar of shared/reference/buildspec.md and
 * returns a spec_buildspec.  No YAML node or string key leaves this module.
 *
 * Every problem found is appended to a spec_diags list with its position
 * (1-based line and column of the offending node, from libyaml marks) and a
 * message saying what was expected.  Parsing goes on after an error so that
 * all problems are reported, not just the first.
 *
 * Ownership: *out belongs to the caller (spec_buildspec_free); diags belong to
 * the caller (spec_diags_release).  All strings inside are owned by the
 * structs.  Thread safety: functions are reentrant; no global state.
 */
#ifndef SPEC_SPEC_H
#define SPEC_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/error.h"

typedef struct spec_pos {
	int line; /* 1-based; 0 = unknown */
	int col;  /* 1-based; 0 = unknown */
} spec_pos;

/* A scalar with the position it came from. */
typedef struct spec_str {
	char *s;
	spec_pos pos;
} spec_str;

typedef struct spec_strlist {
	spec_str *items;
	size_t n;
} spec_strlist;

typedef struct spec_kv {
	char *key;
	char *value; /* scalars keep their source text: `3.10` stays "3.10", `yes` stays "yes" */
	spec_pos pos; /* position of the key */
} spec_kv;

typedef struct spec_kvlist {
	spec_kv *items; /* in document order; a duplicate key replaces the earlier value (and warns) */
	size_t n;
} spec_kvlist;

typedef enum spec_version {
	SPEC_VERSION_0_1 = 1,
	SPEC_VERSION_0_2 = 2,
} spec_version;

typedef enum spec_phase_id {
	SPEC_PHASE_INSTALL = 0,
	SPEC_PHASE_PRE_BUILD,
	SPEC_PHASE_BUILD,
	SPEC_PHASE_POST_BUILD,
	SPEC_PHASE_COUNT
} spec_phase_id;

/* "install", "pre_build", ... and "INSTALL", "PRE_BUILD", ... */
const char *spec_phase_yaml_name(spec_phase_id id);
const char *spec_phase_api_name(spec_phase_id id);

typedef enum spec_on_failure_kind {
	SPEC_ON_FAILURE_UNSET = 0,
	SPEC_ON_FAILURE_ABORT,
	SPEC_ON_FAILURE_CONTINUE,
	SPEC_ON_FAILURE_RETRY,
} spec_on_failure_kind;

typedef struct spec_on_failure {
	spec_on_failure_kind kind;
	int retry_count;   /* RETRY forms: 0..100; 3 when not given */
	char *retry_regex; /* RETRY forms: POSIX ERE the phase-context message must match; NULL = any */
	spec_pos pos;
} spec_on_failure;

typedef struct spec_phase {
	bool present;      /* the phase key appears in the YAML */
	spec_pos pos;      /* of the phase key */
	char *run_as;      /* NULL = inherit the top-level run-as */
	spec_on_failure on_failure;
	spec_kvlist runtime_versions; /* install only */
	spec_strlist commands;        /* a block scalar is one command */
	spec_strlist finally;
	spec_pos run_as_pos;          /* of the run-as value */
} spec_phase;

typedef struct spec_artifact {
	char *identifier;  /* NULL for the primary artifact; the secondary-artifacts key otherwise */
	spec_pos pos;
	spec_strlist files;
	char *name;
	bool discard_paths;
	char *base_directory;
	spec_strlist exclude_paths;
	bool enable_symlinks;
	char *s3_prefix;
	char *type;        /* 0.1 `type` (deprecated in 0.2); NULL if absent */
} spec_artifact;

typedef struct spec_artifacts {
	bool present;
	bool primary_files_missing; /* secondary artifacts but no primary files (opts.upload_time) */
	spec_artifact primary;
	spec_artifact *secondary;
	size_t nsecondary;
} spec_artifacts;

typedef enum spec_report_format {
	SPEC_REPORT_JUNITXML = 0,
	SPEC_REPORT_CUCUMBERJSON,
	SPEC_REPORT_NUNITXML,
	SPEC_REPORT_NUNIT3XML,
	SPEC_REPORT_TESTNGXML,
	SPEC_REPORT_VISUALSTUDIOTRX,
	SPEC_REPORT_CLOVERXML,
	SPEC_REPORT_COBERTURAXML,
	SPEC_REPORT_JACOCOXML,
	SPEC_REPORT_SIMPLECOV,
} spec_report_format;

const char *spec_report_format_name(spec_report_format f);
bool spec_report_format_is_coverage(spec_report_format f);

/* Artifact identifiers are names, never paths: 1-127 letters, digits, '-'
 * or '_'.  The service documents no pattern of its own; this is its source
 * identifiers' rule (letters, digits, '_', under 128) widened by '-',
 * which CodePipeline's output artifact names (that secondary artifact
 * identifiers must match) allow.  Checked when parsing and again before
 * anything is named after one (runner/upload.c). */
bool spec_identifier_valid(const char *id);
/* A report group as a buildspec names it: a name (1-128 letters, digits,
 * '-' or '_') or a report group ARN whose name part is one. */
bool spec_report_group_valid(const char *key);
/* An artifact name that would climb out of its directory: absolute, or
 * with a ".." component. */
bool spec_artifact_name_escapes(const char *name);

typedef struct spec_report {
	char *group;       /* the key: a report group name or ARN (may contain $VARS) */
	spec_pos pos;
	spec_strlist files;
	char *base_directory;
	bool discard_paths;
	spec_report_format format; /* default JUNITXML */
} spec_report;

typedef enum spec_cache_action {
	SPEC_CACHE_ACTION_BOTH = 0,
	SPEC_CACHE_ACTION_RESTORE,
	SPEC_CACHE_ACTION_SAVE,
} spec_cache_action;

typedef struct spec_cache {
	bool present;
	spec_pos pos;
	spec_strlist paths;
	char *key;                 /* NULL if absent; shell-evaluated at build time */
	spec_strlist fallback_keys;
	spec_cache_action action;
} spec_cache;

typedef struct spec_batch_env {
	char *compute_type;
	char *image;
	bool privileged_mode;
	char *type;
	spec_kvlist variables;
} spec_batch_env;

typedef struct spec_batch_task {
	char *identifier;
	spec_pos pos;
	char *buildspec;
	bool debug_session;
	bool ignore_failure;
	spec_batch_env env;
	spec_strlist depend_on;    /* build-graph only */
} spec_batch_task;

typedef enum spec_batch_kind {
	SPEC_BATCH_NONE = 0,
	SPEC_BATCH_LIST,
	SPEC_BATCH_GRAPH,
	SPEC_BATCH_MATRIX,
	SPEC_BATCH_FANOUT,
} spec_batch_kind;

typedef struct spec_batch_matrix_var {
	char *name;
	spec_strlist values;
} spec_batch_matrix_var;

typedef struct spec_batch {
	bool present;
	spec_pos pos;
	bool fast_fail;
	spec_batch_kind kind;
	/* LIST and GRAPH */
	spec_batch_task *tasks;
	size_t ntasks;
	/* MATRIX */
	bool matrix_ignore_failure;           /* static.ignore-failure */
	spec_batch_env matrix_static_env;     /* static.env */
	spec_strlist matrix_buildspecs;       /* dynamic.buildspec */
	spec_strlist matrix_compute_types;    /* dynamic.env.compute-type */
	spec_strlist matrix_images;           /* dynamic.env.image */
	spec_batch_matrix_var *matrix_vars;   /* dynamic.env.variables */
	size_t nmatrix_vars;
	/* FANOUT */
	int fanout_parallelism;
	bool fanout_ignore_failure;
} spec_batch;

/* One build of a batch, after expansion (spec/batch.c): a build-list or
 * build-graph task as written, one combination of a build-matrix, or one
 * shard of a build-fanout. */
typedef struct spec_batch_build {
	char *identifier;          /* the task's; generated: matrix_N, shard_N */
	char *label;               /* what it is, for a view: "VAR=a buildspec=b.yml" */
	char *buildspec;           /* a path in the source; NULL = the batch's own buildspec */
	char *compute_type, *image, *type; /* NULL = the project's */
	bool privileged_mode, debug_session, ignore_failure;
	spec_kvlist variables;     /* env.variables of the task / static + dynamic matrix */
	char **depend_on;          /* build-graph: identifiers of builds that must succeed first */
	size_t ndepend_on;
	int shard;                 /* build-fanout: 1..parallelism; 0 otherwise */
} spec_batch_build;

typedef struct spec_batch_plan {
	spec_batch_kind kind;
	bool fast_fail;
	int shards;                /* build-fanout: parallelism */
	spec_batch_build *builds;  /* in document (or cross-product) order */
	size_t n;
} spec_batch_plan;

typedef struct spec_buildspec {
	char *file;                /* display name given to the parser */
	spec_version version;
	char *run_as;              /* NULL = root */
	struct {
		char *shell;       /* NULL = /bin/sh; "bash" or "/bin/sh" (others warn) */
		spec_kvlist variables;        /* 0.1: environment_variables.plaintext */
		spec_kvlist parameter_store;
		spec_kvlist secrets_manager;
		spec_strlist exported_variables;
		bool git_credential_helper;
		spec_pos git_credential_helper_pos; /* of its key */
	} env;
	struct {
		bool upload_artifacts;
		bool logs;
		spec_pos pos;      /* of the proxy key; line 0 if absent */
	} proxy;
	spec_batch batch;
	bool has_phases;
	spec_phase phases[SPEC_PHASE_COUNT];
	spec_report *reports;
	size_t nreports;
	spec_artifacts artifacts;
	spec_cache cache;
	spec_pos run_as_pos;       /* of the top-level run-as value */
	spec_pos version_pos;      /* of the version key */
} spec_buildspec;

void spec_buildspec_free(spec_buildspec *bs);

/* Diagnostics ---------------------------------------------------------- */

typedef enum spec_severity {
	SPEC_DIAG_ERROR = 0,
	SPEC_DIAG_WARNING,
} spec_severity;

typedef struct spec_diag {
	spec_severity severity;
	int line;
	int col;
	char *msg;    /* says what was wrong and what was expected */
	size_t service_len; /* > 0: msg's first service_len bytes are the service's own words
			       for it (its YAML_FILE_ERROR message); the rest is our hint */
} spec_diag;

typedef struct spec_diags {
	char *file;   /* display name, set by the parser */
	spec_diag *items; /* sorted by (line, col) once parsing finishes */
	size_t n;
	size_t cap;
	size_t nerrors;
	size_t nwarnings;
} spec_diags;

#define SPEC_DIAGS_INIT {NULL, NULL, 0, 0, 0, 0}

void spec_diags_release(spec_diags *d);

/* Appends "FILE:LINE:COL: error: MSG" (or "warning:") to out, no newline. */
void spec_diag_format(const spec_diags *d, const spec_diag *diag, cbl_buf *out);

/* Parsing --------------------------------------------------------------- */

typedef struct spec_parse_opts {
	bool strict;  /* warnings that a local run would have to fake, and unknown keys, become errors */
	/* a run's parse: problems the service finds only at UPLOAD_ARTIFACTS
	 * (secondary artifacts without primary files) are no diagnostics but
	 * flags of the spec (spec_artifacts.primary_files_missing), which the
	 * runner turns into that phase's failure */
	bool upload_time;
} spec_parse_opts;

#define SPEC_PARSE_OPTS_INIT {false, false}

/* Parses and validates a buildspec held in memory.  display_name is what
 * diagnostics and errors print (e.g. "buildspec.yml").
 *
 * Returns 0 with *out set when there is no error (warnings may be in diags).
 * Returns CBL_ESPEC when the buildspec has errors: every problem is in diags,
 * *out is NULL, and *err holds the first error with file/line/col.
 * diags may be NULL (then only *err tells). */
int spec_parse_buffer(spec_buildspec **out, spec_diags *diags, const char *display_name,
		      const char *data, size_t len, const spec_parse_opts *opts, cbl_error **err);

/* Same for an open file (the caller opened it where it may: runner/buildspec.c
 * opens the buildspec beneath the source directory).  Only a regular file
 * is read (anything else is CBL_EIO).  display_name NULL = "buildspec". */
int spec_parse_fd(spec_buildspec **out, spec_diags *diags, int fd, const char *display_name,
		  const spec_parse_opts *opts, cbl_error **err);

/* Same for a file.  A file that cannot be read is CBL_ENOENT / CBL_EIO. */
int spec_parse_file(spec_buildspec **out, spec_diags *diags, const char *path,
		    const char *display_name, const spec_parse_opts *opts, cbl_error **err);

/* Batch expansion ------------------------------------------------------ */

/* The builds of bs's batch (a parsed, valid buildspec: graph identifiers,
 * dependencies and cycles were checked by the parser).  CBL_ESPEC when bs
 * has no batch or a matrix makes more than 1000 builds.  Caller frees. */
int spec_batch_plan_new(spec_batch_plan **out, const spec_buildspec *bs, cbl_error **err);
/* The build of that identifier, or NULL (borrowed). */
const spec_batch_build *spec_batch_plan_find(const spec_batch_plan *p, const char *id);
void spec_batch_plan_free(spec_batch_plan *p);

/* ---- runtimes.yml ------------------------------------------------------
 * The curated images' runtime catalogue (/codebuild/image/config/runtimes.yml):
 *   runtimes: <name>: versions: <key>: commands: [...]
 * with an optional `default` version whose commands install any other
 * version (they read $VERSION).  Parsed with the same loader and limits as
 * a buildspec (anchors, merge keys, size caps). */
typedef struct spec_runtime_version {
	char *key;             /* "3.11", "corretto17", "18" */
	spec_strlist commands;
} spec_runtime_version;

typedef struct spec_runtime {
	char *name;            /* "python" */
	spec_runtime_version *versions; /* in file order, `default` not among them */
	size_t n;
	bool has_default;
	spec_strlist default_commands;
} spec_runtime;

typedef struct spec_runtimes {
	spec_runtime *items;
	size_t n;
} spec_runtimes;

/* Parses runtimes.yml text.  Errors: CBL_ESPEC "<name>:<line>:<col>: ..." for
 * a file that does not have the shape above. */
int spec_runtimes_parse(spec_runtimes **out, const char *name, const char *data, size_t len, cbl_error **err);
void spec_runtimes_free(spec_runtimes *r);
/* The runtime of that name, or NULL. */
const spec_runtime *spec_runtimes_find(const spec_runtimes *r, const char *name);
/* Resolves a runtime-versions value the way the agent does: an exact key,
 * "<major>.x" (that major's newest minor), "latest" (the newest key).  NULL
 * when none matches (the caller may use the default commands). */
const spec_runtime_version *spec_runtime_select(const spec_runtime *rt, const char *version);

#endif
