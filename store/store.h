/* store/store.h - where builds live on disk, and their records.
 *
 * Layout under the state directory (design.md):
 *   codebuild-local.db                   SQLite (WAL): projects, builds (the
 *                                        Build record + indexed columns),
 *                                        build numbers, exported variables,
 *                                        log stream index, report groups,
 *                                        reports, test cases, code coverages
 *   builds/<project>/<uuid>/build.json   the Build record (CodeBuild API shape)
 *   builds/<project>/<uuid>/build.log    the log stream (text stays in files)
 *   builds/<project>/<uuid>/reports/     the runner's reports, ingested into
 *                                        the database once the build is
 *                                        complete (store/reports.c)
 *
 * build.json is written atomically (temp file + rename), so a reader never
 * sees a half-written record; the database row is upserted right after, in
 * one transaction.  A database made by an earlier version's JSON files is
 * imported on first use (records and .counter files).
 *
 * Crash safety: while a build is not complete its row names the runner
 * (pid + process start time); any read of a build whose runner is gone
 * finishes it as FAULT (or STOPPED if a stop was requested), so no build
 * stays IN_PROGRESS forever - except a build a server queued (QUEUED phase,
 * launch.json in its directory, no stop requested): it waits for the next
 * server (runner/launch.h, resume).  A damaged file fails every call with a
 * message naming `codebuild-local store recover` (store_recover).
 *
 * Thread safety: every function may be called from any thread; a process
 * keeps one connection per state directory (store_internal.h).
 * The data operations of the API are in store/api.h.
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"
#include "util/strv.h"

/* $CODEBUILD_LOCAL_HOME, else ${XDG_DATA_HOME:-$HOME/.local/share}/codebuild-local.
 * Caller frees. */
char *store_default_home(void);

/* True if name is a valid CodeBuild project name: [A-Za-z0-9][A-Za-z0-9_-]{1,254}. */
bool store_project_name_valid(const char *name);
/* Turns a directory base name into a valid project name (caller frees). */
char *store_project_name_from_dir(const char *dir);

/* Allocates the next build number of a project (1, 2, 3, ...) in one
 * database transaction: concurrent runners (threads or processes) get
 * distinct numbers; numbers are never reused, deleted builds included. */
int store_next_build_number(const char *home, const char *project, int64_t *out, cbl_error **err);

/* Creates builds/<project>/<uuid>/ and returns its path (caller frees). */
int store_build_dir_create(const char *home, const char *project, const char *uuid, char **out,
			   cbl_error **err);

/* Writes the record atomically into the build's directory (durable = fsync
 * before publishing; under a state directory only the first and the final
 * record, and durable ones, go to build.json), then, when build_dir is
 * <home>/builds/<project>/<uuid>,
 * upserts it into <home>'s database: the row records this process as the
 * build's runner while buildComplete is false, indexes its log stream, keeps
 * its exported variables and ingests its reports once complete (a report
 * that cannot be read is left out, never the record), and creates the implicit project
 * (store_project_ensure_implicit) the first time a project is seen.
 * Called at every phase change: a few hundred microseconds. */
int store_build_save(const char *build_dir, json_t *record, bool durable, cbl_error **err);

/* Loads the record of build id "<project>:<uuid>" from the database (a
 * build whose runner died is finished first, see above), else from its
 * build.json.  CBL_ENOENT if unknown or malformed.  *out is a new reference. */
int store_build_load(const char *home, const char *build_id, json_t **out, cbl_error **err);

/* Flags a stop request on a build (StopBuild): if its runner dies before
 * finishing, the build ends STOPPED instead of FAULT.  The caller still
 * signals the runner.  No-op on a complete build; CBL_ENOENT if unknown. */
int store_build_request_stop(const char *home, const char *build_id, cbl_error **err);
/* Whether a stop was requested (a runner may poll it).  CBL_ENOENT if unknown. */
int store_build_stop_requested(const char *home, const char *build_id, bool *out, cbl_error **err);

/* Creates the implicit project of `run` without a project, if no project of
 * that name exists: source NO_SOURCE with location file://<source_dir> (a
 * local directory), or a git type for a git URL; NO_ARTIFACTS; image host.
 * store_build_save does it too, from the record. */
int store_project_ensure_implicit(const char *home, const char *name, const char *source_dir,
				  cbl_error **err);

/* The stored Project (API shape) of a name; CBL_ENOENT (with the service's
 * "Project cannot be found: <arn>") if unknown.  *out is a new reference. */
int store_project_get(const char *home, const char *name, json_t **out, cbl_error **err);

/* ---- recovery (store/recover.c) */

/* A build whose record is not complete, in the order the builds started. */
typedef struct store_unfinished {
	char *id;
	char *dir;         /* builds/<project>/<uuid> */
	bool queued;       /* still in the QUEUED phase: its runner never started */
	bool owner_alive;  /* the process its row names (runner, or the server
			      that queued it) still runs */
} store_unfinished;

/* Every unfinished build (a server coming back resumes its queue from
 * these).  *out is freed with store_unfinished_free. */
int store_builds_unfinished(const char *home, store_unfinished **out, size_t *n,
			    cbl_error **err);
void store_unfinished_free(store_unfinished *v, size_t n);

typedef struct store_recover_report {
	char *damaged_path;           /* where the old file went (NULL: there was none) */
	size_t builds;                /* builds in the new database */
	size_t projects;              /* projects in it, implicit ones included */
	size_t projects_salvaged;     /* read back from the damaged file */
	size_t projects_from_launches;/* from a build's launch.json */
} store_recover_report;

/* `codebuild-local store recover`: moves <home>/codebuild-local.db (and its
 * -wal, -shm) aside as codebuild-local.db.damaged-<UTC time>, creates a new
 * database from every builds/<project>/<uuid>/build.json (with its log
 * stream, exported variables and reports) and the build counters, then puts
 * the projects back: the rows SQLite can still read from the damaged file,
 * else the project as the newest launch.json of a StartBuild recorded it,
 * else the implicit project of the records.  Report groups created by
 * CreateReportGroup (without a build) are not recovered.  Run it with no
 * server or build using the state directory.  CBL_EIO when the file cannot
 * be moved or the new one created.  Release the report with
 * store_recover_report_release. */
int store_recover(const char *home, store_recover_report *out, cbl_error **err);
void store_recover_report_release(store_recover_report *r);
/* ---- batches (store/batches.c): batches/<project>/<uuid>/batch.json ----
 * A batch id is "<project>:<uuid>" (a build-batch ARN is accepted too). */
/* Creates the batch's directory; *out its path (caller frees). */
int store_batch_dir_create(const char *home, const char *project, const char *uuid, char **out,
			   cbl_error **err);
/* The directory of a batch id (not checked for existence); CBL_EINVAL for a
 * malformed id. */
int store_batch_dir_of(const char *home, const char *id, char **out, cbl_error **err);
/* The next buildBatchNumber of a project (1, 2, ...; never reused). */
int store_batch_next_number(const char *home, const char *project, int64_t *out, cbl_error **err);
/* Writes the BuildBatch record atomically; while it is not complete the
 * file also names this process as its runner.  A stop asked for is the
 * file "stop" in the batch's directory (StopBuildBatch). */
int store_batch_save(const char *home, json_t *record, cbl_error **err);
/* The record of a batch (a batch whose runner died is finished FAILED, or
 * STOPPED when a stop was asked for); CBL_ENOENT if unknown. */
int store_batch_load(const char *home, const char *id, json_t **out, cbl_error **err);
/* ---- metrics (store/metrics.c) */
typedef struct store_metrics_query {
	const char *project; /* NULL = every project */
	int64_t since_ms, until_ms; /* builds that ended in [since, until) */
	int64_t period_ms;   /* the width of "periods" */
} store_metrics_query;

/* The window's builds in figures: builds, succeeded, failed, other,
 * successRate, cost (of pricedBuilds), cpuSeconds, memoryPeakBytes,
 * buildMinutes; durationMs.{TOTAL,QUEUED,PROVISIONING,...}.{count,p50,p95,
 * max} (nearest rank); periods [{startMs, builds, succeeded, failed,
 * durationAvgMs, cost}] (periods without builds left out); projects [...]
 * (the 50 busiest).  CBL_EINVAL for an empty window or period. */
int store_metrics_summary(const char *home, const store_metrics_query *q, json_t **out, cbl_error **err);

/* ---- the outbox (store/events.c, store/outbox.c): events and alarm
 * notifications, durable until delivered.  dest is "events" (the builds'
 * EventBridge events) or an alarm action's ARN. */
typedef struct store_outbox_item {
	int64_t seq;
	char *dest, *body; /* body: the JSON to deliver */
	int attempts;
} store_outbox_item;

/* The oldest undelivered item of each destination whose retry time has
 * come (<= now_ms), oldest first. */
int store_outbox_heads(const char *home, int64_t now_ms, store_outbox_item **out, size_t *n, cbl_error **err);
void store_outbox_items_free(store_outbox_item *items, size_t n);
/* From now on the builds' events are queued (serve --events-webhook). */
int store_events_enable(const char *home, cbl_error **err);
/* Item seq delivered (retry_at_ms 0: removed), or to be retried at retry_at_ms. */
int store_outbox_done(const char *home, int64_t seq, int64_t retry_at_ms, cbl_error **err);

/* Evaluates every alarm (store/alarms.c) at now_ms: a state change is
 * stored and queues its actions' notifications in the outbox. */
int store_alarms_evaluate(const char *home, int64_t now_ms, cbl_error **err);

#endif
