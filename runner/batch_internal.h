/* runner/batch_internal.h - the batch object shared by runner/batch*.c.
 * Call order between the files (no cycles): batch.c -> batch_sched.c ->
 * batch_record.c, and batch.c -> batch_spec.c. */
#ifndef RUNNER_BATCH_INTERNAL_H
#define RUNNER_BATCH_INTERNAL_H

#include <signal.h>
#include <sys/types.h>

#include "runner/batch.h"
#include "util/buf.h"

typedef enum bb_state { BB_PENDING = 0, BB_RUNNING, BB_DONE, BB_NOT_STARTED } bb_state;

typedef struct runner_bb {
	const spec_batch_build *spec;
	size_t *deps;
	size_t ndeps;
	bb_state state;
	pid_t pid;
	int fd;                 /* its JSON event stream, -1 when closed */
	cbl_buf line;           /* a partial line */
	char *phase, *status;
	char *build_id, *build_arn, *log_path, *stderr_path, *artifacts_dir;
	int64_t requested_us, start_us, end_us;
	int cpu, mem_gb;        /* its share of the budget */
	bool stop_sent;
	bool kept;              /* RETRY_FAILED_BUILDS: a build that succeeded before */
	json_t *prior;          /* its prior build summaries (retry), or NULL */
} runner_bb;

struct runner_batch {
	runner_batch_opts o;
	runner_opts build;           /* o.build, copied */
	char *home, *project, *uuid, *id, *arn, *dir, *region, *account, *initiator;
	char *art_dir;               /* where builds' artifacts go */
	char *spec_copy;             /* a git source's batchspec, kept for its builds, or NULL */
	int64_t number;
	spec_buildspec *spec;
	spec_batch_plan *plan;
	runner_bb *b;
	size_t n;
	int stop_r, stop_w;
	volatile sig_atomic_t stop_requested;
	bool stopped, timed_out, failed;
	char *error;                 /* DOWNLOAD_BATCHSPEC's failure */
	json_t *phases;              /* BuildBatchPhase objects */
	char *phase;
	int64_t phase_start_us, start_us, end_us;
	runner_status status;
	json_t *record;
	int cpu_budget;
	int64_t mem_budget_gb;
};

/* batch_spec.c: the buildspec and its plan (CBL_ESPEC with file:line:col). */
int runner_batch_load(spec_buildspec **spec, spec_batch_plan **plan, const runner_opts *o, cbl_error **err);
/* The same from a file as is (spec_file NULL: the one above). */
int runner_batch_load_file(spec_buildspec **spec, spec_batch_plan **plan, const runner_opts *o, const char *spec_file,
			   cbl_error **err);

/* batch_record.c */
void runner_batch_emit(runner_batch *b, runner_batch_event_kind kind, size_t index, const char *line);
/* Ends the current phase (status, optional context) and enters next. */
void runner_batch_enter(runner_batch *b, const char *next, const char *status, const char *code, const char *msg);
/* Rebuilds the record and saves it (errors are the store's; ignored: the
 * batch goes on, as a build does when a record cannot be written). */
void runner_batch_save(runner_batch *b);

/* batch_sched.c: runs the builds to their end. */
void runner_batch_schedule(runner_batch *b);

#endif
