/* cli/run_batch.h - the face of a batch run (cli/run_batch.c). */
#ifndef CLI_RUN_BATCH_H
#define CLI_RUN_BATCH_H

#include "runner/batch.h"

enum { RUN_BATCH_PLAIN = 0, RUN_BATCH_TTY, RUN_BATCH_JSON, RUN_BATCH_NONE };

/* Runs the batch bo describes (its on_event is the face's), showing it in
 * mode; ready_fd (>= 0) gets "ok" once the batch's first record is saved
 * (the launcher's handshake).  The exit code. */
int cli_run_batch(runner_batch_opts *bo, int mode, int ready_fd);

#endif
