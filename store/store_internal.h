/* store/store_internal.h - the store's internals, shared by the store/ sources and
 * tests/unit/test_store.c.  Nothing outside store/ and the tests includes it.
 *
 * The database: <home>/codebuild-local.db, SQLite in WAL mode,
 * synchronous=NORMAL, busy_timeout 10 s, schema versioned by
 * PRAGMA user_version and brought up to date by store_db_migrate().
 *
 * Connections: one per (process, home), opened lazily and cached in a list
 * guarded by a mutex (the one piece of process-wide mutable state, design.md
 * rule 10 allows it for this).  Each handle has its own mutex: holders of a
 * handle (store_db_acquire .. store_db_release) have the connection to
 * themselves, so a transaction never interleaves with another thread's.
 * A handle opened before a fork() is never used by the child (SQLite forbids
 * it): the child opens its own.
 */
#ifndef STORE_STORE_INTERNAL_H
#define STORE_STORE_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"
#include "util/error.h"

#define STORE_DB_FILE "codebuild-local.db"
/* 1: projects, counters, builds, log streams; 2: exported variables (backfilled from the
 *    records), report groups, reports, test cases, code coverages; 3: report group names
 *    not unique, list indexes, reports of stored builds ingested from their directories;
 * 4: builds by (project, status, number) for the dashboard's status filter;
 * 5: build_metrics (store/metrics.c), backfilled from the complete builds' records, the
 *    events outbox, settings and alarms. */
#define STORE_SCHEMA_VERSION 5

#define STORE_DEFAULT_REGION "us-east-1"
#define STORE_DEFAULT_ACCOUNT "000000000000"
#define STORE_PAGE_SIZE 100

#define STORE_STMT_CACHE 24

typedef struct store_db {
	char *home;
	sqlite3 *db;
	pid_t pid;               /* the process that opened it */
	long long pstart;        /* that process's start time (/proc/self/stat field 22) */
	pthread_mutex_t lock;
	struct store_db *next;
	/* prepared statements of the hot paths (a build's save at every phase
	 * change, BatchGetBuilds), keyed by their SQL's address */
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[STORE_STMT_CACHE];
	size_t ncache;
	/* the caller of the operation in progress (store_api_dispatch_as):
	 * the region and account of the ARNs it creates; NULL = the defaults */
	const char *caller_region, *caller_account;
} store_db;

/* Returns the (locked) handle of home's database, opening, creating and
 * migrating it on first use in this process.  Release with store_db_release. */
int store_db_acquire(const char *home, store_db **out, cbl_error **err);
void store_db_release(store_db *h);

/* Opens <home>/codebuild-local.db without the cache (tests, tools), migrated
 * to version `target` (0 = the latest).  Caller closes with sqlite3_close. */
int store_db_open(const char *home, int target, sqlite3 **out, cbl_error **err);
/* Applies every migration above the file's user_version up to target
 * (0 = latest), all in one IMMEDIATE transaction (re-checking the version
 * inside it, so concurrent openers migrate once).  A database created from
 * scratch up to the latest version also imports the JSON files of an
 * earlier version found under home (NULL = none), in the same transaction. */
int store_db_migrate(sqlite3 *db, const char *home, int target, cbl_error **err);
int store_db_user_version(sqlite3 *db, int *out, cbl_error **err);

/* sqlite3 error -> cbl_error (CBL_EIO, "<what>: <sqlite message>"). */
int store_sql_error(sqlite3 *db, cbl_error **err, const char *what);
/* Runs SQL without results. */
int store_exec(sqlite3 *db, const char *sql, cbl_error **err);
int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, cbl_error **err);
/* A cached prepared statement for a static SQL string (compiled once per
 * connection).  Hand it back with store_stmt_done (reset + clear bindings,
 * which also ends its read of the database); never finalize it. */
int store_stmt(store_db *h, const char *sql, sqlite3_stmt **out, cbl_error **err);
void store_stmt_done(sqlite3_stmt *st);
/* Finalizes a handle's cached statements (a handle made for a moment). */
void store_stmt_cache_clear(store_db *h);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK (rollback ignores errors). */
int store_begin(sqlite3 *db, cbl_error **err);
int store_commit(sqlite3 *db, cbl_error **err);
void store_rollback(sqlite3 *db);

/* Start time of a process in clock ticks since boot (/proc/<pid>/stat field
 * 22), or -1 if there is no such process. */
long long store_proc_start_time(pid_t pid);
/* True while the process that wrote a record still runs (same pid, same
 * start time). */
bool store_runner_alive(long long pid, long long start);

/* Build ids: "<project>:<uuid>" (or the build's ARN).  Splits and checks
 * the shape; CBL_EINVAL with an AWS-style message when malformed. */
int store_split_build_id(const char *id, char **project, char **uuid, cbl_error **err);

/* ---- builds (builds.c) */
/* Upserts a build record into the database (store_build_save's second half),
 * in one transaction: the row (with this process as the runner while the
 * build is not complete), its log stream, its exported variables once
 * complete, and the implicit project if its project does not exist. */
int store_db_build_upsert(store_db *h, const char *build_dir, json_t *record, cbl_error **err);
/* The same inside the caller's transaction; pid 0 = no runner recorded. */
int store_db_build_upsert_raw(store_db *h, const char *build_dir, json_t *record, long long pid,
			      long long pstart, cbl_error **err);
int store_db_request_stop(store_db *h, const char *id, cbl_error **err);
int store_db_stop_requested(store_db *h, const char *id, bool *out, cbl_error **err);
/* Finishes every incomplete build whose runner is gone (FAULT, or STOPPED
 * when a stop was requested); only_id limits it to one build (NULL = all).
 * Returns the number of builds it finished, or a negative code. */
int store_db_recover(store_db *h, const char *only_id, cbl_error **err);
/* Loads a build's record (after recovering it if its runner died).
 * CBL_ENOENT if the database does not have it. */
int store_db_build_get(store_db *h, const char *id, json_t **out, cbl_error **err);
/* Applies what a dead runner leaves undone to a record (in place). */
void store_record_finish_dead(json_t *record, bool stopped, int64_t now_ms);

/* The region and (*account) of an ARN, both caller-freed; the defaults
 * (STORE_DEFAULT_REGION / _ACCOUNT) when arn is NULL or not an ARN. */
char *store_arn_region_account(const char *arn, char **account);

/* ---- reports (reports.c) */
/* Ingests the reports a complete build's runner wrote under
 * <build_dir>/reports/<group>/ (report.json, test-cases.json,
 * code-coverages.json; runner/upload.c) whose ARNs the record lists in
 * reportArns: creates their report groups, replaces the reports, their test
 * cases and code coverages.  Runs in the caller's transaction, inside a
 * savepoint of its own: a report that cannot be read is skipped, and a
 * database error rolls back only the reports (the build's record is never
 * lost to them); returns a negative code only for errors outside the
 * savepoint. */
int store_db_reports_ingest(store_db *h, const char *build_dir, json_t *record, cbl_error **err);
/* Migration 3: ingests the reports of every complete build already stored. */
int store_db_reports_backfill(sqlite3 *db, cbl_error **err);

/* ---- projects (projects.c) */
int store_db_project_get(store_db *h, const char *name, json_t **out, cbl_error **err);
/* INSERT OR IGNORE of the implicit project (source NO_SOURCE, location
 * file://<dir>, or the git URL); arn_prefix "arn:aws:codebuild:<r>:<a>". */
int store_db_project_ensure_implicit_raw(store_db *h, const char *name, const char *location,
					 const char *source_type, const char *region,
					 const char *account, cbl_error **err);
/* Writes back a project record read with store_db_project_get (created and
 * lastModified from the record; the implicit flag kept). */
int store_db_project_replace(store_db *h, json_t *rec, cbl_error **err);
/* A project record as the API returns it: without its webhook's secret
 * (shown once, by CreateWebhook and a rotating UpdateWebhook). */
void store_project_public(json_t *rec);
/* ResourceNotFoundException's text for a project. */
int store_project_not_found(const char *name, cbl_error **err);

/* ---- validation (shape.c): a small table-driven checker that validates a
 * request member against the model's constraints and returns a normalized
 * copy holding only the members the model knows, in model order. */
typedef enum {
	SF_STR,
	SF_INT,
	SF_BOOL,
	SF_STRUCT,    /* sub = the member shape */
	SF_LIST_STR,
	SF_LIST_STRUCT,
	SF_ANY,       /* kept as given (structures we do not interpret) */
} store_field_type;

typedef struct store_shape store_shape;
typedef struct store_field {
	const char *name;
	store_field_type type;
	bool required;
	const store_shape *sub;
	const char *const *enumv;  /* NULL-terminated, for SF_STR / SF_LIST_STR */
	long long min, max;        /* int: value; str/list: length; max 0 = none */
	bool (*pattern)(const char *s);
	const char *pattern_text;
} store_field;

struct store_shape {
	const store_field *fields;
	size_t n;
};

/* Collected validation errors, printed like the service:
 * "2 validation errors detected: Value 'x' at 'a.b' failed to satisfy
 * constraint: Member must ...; Value null at 'c' ..." */
typedef struct store_verr {
	cbl_buf msg;
	int count;
} store_verr;
#define STORE_VERR_INIT {CBL_BUF_INIT, 0}

void store_verr_add(store_verr *v, const char *path, const json_t *value, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Validates obj against shape; *out (may be NULL) gets the normalized copy. */
void store_shape_check(const store_shape *shape, const char *path, json_t *obj, json_t **out,
		       store_verr *v);
/* CBL_EINVAL with the collected message if there were errors, else 0;
 * releases v either way. */
int store_verr_finish(store_verr *v, cbl_error **err);

bool store_name_pattern_ok(const char *s);

/* ---- the model's request shapes (validate.c; the tables are generated by
 * scripts/gen-model.py from the JSON files of store/model/ into the build directory).
 * One entry per shape an operation's input reaches; indexes are into the
 * arrays below. */
enum { SM_STRUCT, SM_LIST, SM_MAP, SM_STRING, SM_INT, SM_BOOL, SM_DOUBLE, SM_TIMESTAMP, SM_BLOB };
#define SM_HAS_MIN 1
#define SM_HAS_MAX 2
typedef struct store_mshape {
	unsigned char kind;   /* SM_* */
	unsigned char flags;  /* SM_HAS_MIN | SM_HAS_MAX */
	unsigned short pattern; /* index into store_model_patterns, 0 = none */
	int a;  /* struct: first member; list: element shape; map: key shape;
		 * string with enum: first enum value */
	int b;  /* struct: member count; map: value shape; enum: value count */
	long long min, max; /* string/list/map: length; numbers: value */
} store_mshape;
typedef struct store_mmember {
	const char *name;
	int shape;
	int required;
} store_mmember;
typedef struct store_mpattern {
	const char *java;   /* as the model (and the service's message) spell it */
	const char *posix;  /* the same for regcomp (REG_EXTENDED), anchored */
} store_mpattern;
typedef struct store_mop {
	const char *target; /* X-Amz-Target, e.g. "CodeBuild_20161006.StartBuild" */
	int input;          /* its input shape, -1 = none */
} store_mop;
extern const store_mshape store_model_shapes[];
extern const store_mmember store_model_members[];
extern const char *const store_model_enums[];
extern const store_mpattern store_model_patterns[];
extern const size_t store_model_npatterns;
extern const store_mop store_model_ops[]; /* sorted by target */
extern const size_t store_model_nops;

/* The model's entry for target, or NULL. */
const store_mop *store_model_op(const char *target);
/* 1 if s matches pattern idx as a whole (0 = no pattern: 1), 0 if not, -1
 * if that pattern did not compile (treated as a match by the validator). */
int store_model_pattern_match(size_t idx, const char *s);
/* Length of UTF-8 s in UTF-16 code units (Java's String.length()). */
size_t store_utf16_len(const char *s);

/* ---- operations behind store_api_dispatch: req is the validated-here
 * request object, *out a new response object. */
typedef int (*store_op_fn)(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_create_project(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_update_project(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_delete_project(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_batch_get_projects(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_list_projects(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_batch_get_builds(store_db *h, json_t *req, json_t **out, cbl_error **err);
/* The same response as compact JSON text, appended to out. */
int store_op_batch_get_builds_text(store_db *h, json_t *req, cbl_buf *out, cbl_error **err);
int store_op_list_builds(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_list_builds_for_project(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_batch_delete_builds(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_get_log_events(store_db *h, json_t *req, json_t **out, cbl_error **err);
/* batches.c */
int store_op_batch_get_build_batches(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_list_build_batches(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_list_build_batches_for_project(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_delete_build_batch(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_list_report_groups(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_batch_get_report_groups(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_list_reports(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_list_reports_for_report_group(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_batch_get_reports(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_describe_test_cases(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_describe_code_coverages(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_get_report_group_trend(store_db *h, json_t *req, json_t **out, cbl_error **err);
/* reportgroups.c */
int store_op_create_report_group(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_update_report_group(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_delete_report_group(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_delete_report(store_db *h, json_t *req, json_t **out, cbl_error **err);
/* webhooks.c */
int store_op_create_webhook(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_update_webhook(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_delete_webhook(store_db *h, json_t *req, json_t **out, cbl_error **err);
/* credentials.c */
int store_op_import_source_credentials(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_list_source_credentials(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_delete_source_credentials(store_db *h, json_t *req, json_t **out, cbl_error **err);

/* ---- logs (logs.c; the other Logs operations in logs_filter.c) */
/* One event of a build log: a line (len includes its '\n' when there is
 * one) and its CloudWatch timestamp in ms. */
typedef struct store_log_event {
	size_t off, len;
	int64_t ts;
} store_log_event;
bool store_logs_group_ok(const char *s);
bool store_logs_stream_ok(const char *s);
/* "[Container] YYYY/MM/DD HH:MM:SS.ffffff ..." -> ms, or -1. */
int64_t store_logs_agent_time(const char *p, size_t len);
/* A line as a JSON string (invalid UTF-8 -> U+FFFD). */
json_t *store_logs_message(const char *p, size_t len);
/* The group a request names (logGroupName / logGroupIdentifier, a name or
 * an ARN); *out caller-freed.  CBL_EINVAL with the service's message. */
int store_logs_request_group(const json_t *in, char **out, cbl_error **err);
/* True if a stream of the group is indexed or a project logs to it. */
int store_logs_group_exists(store_db *h, const char *group, bool *out, cbl_error **err);
/* Maps a log file read-only (missing or empty: *map NULL, *len 0). */
int store_logs_map(const char *path, int *fd, char **map, size_t *len, cbl_error **err);
/* The events of a mapped log whose time is in [t0, t1): *ev (NULL and *nev
 * 0 on entry) gets a caller-freed array; an incomplete log's unfinished last line is
 * left out. */
void store_logs_scan(const char *map, size_t map_len, bool complete, int64_t start_ms, int64_t t0,
		     int64_t t1, store_log_event **ev, size_t *nev);
int store_op_filter_log_events(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_describe_log_streams(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_describe_log_groups(store_db *h, json_t *req, json_t **out, cbl_error **err);

/* ---- metrics (metrics.c) */
/* The phases with a duration column: {phaseType, column}, in the table's order. */
#define STORE_METRICS_NPHASES 9
extern const char *const store_metrics_phase_cols[STORE_METRICS_NPHASES][2];
/* The metrics row of a complete build's record (replaced), in the caller's
 * transaction. */
int store_db_metrics_record(store_db *h, const json_t *record, cbl_error **err);
/* Migration 4: the rows of every complete build already stored. */
int store_db_metrics_backfill(sqlite3 *db, cbl_error **err);

/* ---- the outbox (events.c) */
/* Queues body for dest, in the caller's transaction. */
int store_db_outbox_put(store_db *h, const char *dest, json_t *body, cbl_error **err);
/* The events of a build's save: a Phase Change for every phase that ended
 * since old (NULL: a new build), a State Change when it starts and ends. */
int store_db_events_build(store_db *h, const json_t *old, const json_t *rec, cbl_error **err);

/* ---- CloudWatch (cloudwatch.c) */
struct store_cw_metric {
	const char *name, *expr, *unit;
	bool resource; /* BuildId / BuildNumber dimensions too */
};
/* The metric's filter: {project, build id, build number} from Dimensions. */
struct store_cw_filter {
	const char *project, *build_id;
	int64_t number;
	bool has_number;
	bool keep_values; /* store_cw_series keeps each bucket's samples (percentiles) */
};
/* One period's samples; v: their values when the filter keeps them. */
struct store_cw_bucket {
	int64_t n;
	double sum, min, max;
	double *v;
	size_t cap;
	bool sorted;
};
/* AWS/CodeBuild's metric of that name, or NULL. */
const struct store_cw_metric *store_cw_metric_find(const char *name);
int store_cw_dims_filter(const json_t *dims, const struct store_cw_metric *m, struct store_cw_filter *f,
			 cbl_error **err);
/* m's samples in [start, end) per period (see cloudwatch.c); *out: *nb buckets, caller frees. */
int store_cw_series(store_db *h, const struct store_cw_metric *m, const struct store_cw_filter *f, int64_t start,
		    int64_t end, int64_t period_ms, struct store_cw_bucket **out, size_t *nb, cbl_error **err);
/* "SampleCount", "Average", "Sum", "Minimum", "Maximum": 0..4, else -1. */
int store_cw_stat_index(const char *s);
double store_cw_stat_value(const struct store_cw_bucket *b, int which);
/* "pNN" or "pNN.NN" (0 to 100): 0 and *p, else -1. */
int store_cw_percentile_parse(const char *s, double *p);
/* The p-th percentile of a kept bucket's samples (nearest rank; sorts them). */
double store_cw_percentile(struct store_cw_bucket *b, double p);
void store_cw_buckets_free(struct store_cw_bucket *b, size_t nb);

int store_op_get_metric_statistics(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_get_metric_data(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_list_metrics(store_db *h, json_t *req, json_t **out, cbl_error **err);
/* alarms.c */
int store_op_put_metric_alarm(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_describe_alarms(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_delete_alarms(store_db *h, json_t *req, json_t **out, cbl_error **err);
int store_op_set_alarm_state(store_db *h, json_t *req, json_t **out, cbl_error **err);

/* ---- API helpers */
int64_t store_json_time_ms(const json_t *t);
json_t *store_json_time(int64_t ms);

#endif
