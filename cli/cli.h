/* cli/cli.h - the command table and helpers shared by the subcommands.
 * Only cli/ (and server/) print and choose exit codes. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "util/error.h"
#include "util/strv.h"

/* Exit codes (design.md) */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_FAULT = 3,
	CLI_EXIT_TIMED_OUT = 4,
	CLI_EXIT_STOPPED = 5,
};

struct cmd_struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_webhook(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_batch_get_builds(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_attach(int argc, char **argv); /* cli/cmd_attach.c */
int cmd_exec(int argc, char **argv);

/* run --debug on a terminal: a shell in the paused build (cli/cmd_attach.c),
 * whose end resumes it; its exit status, or -1 (said). */
int cli_debug_terminal(const char *home, const char *build_id);

/* Prints "codebuild-local: error: <msg>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints an error from the library, with file:line:col when it has one. */
void cli_report(const cbl_error *e);
/* Reports *err (as cli_report) and drops it: frees it and sets it to NULL. */
void cli_report_clear(cbl_error **err);
/* Reads a KEY=VALUE env file (docker / AWS local agent format). */
int cli_read_env_file(const char *path, cbl_strv *out, cbl_error **err);

/* A simulated webhook event (run --webhook-event, webhook test): its flags,
 * then the facts read from the source's git (cli/cmd_webhook.c). */
#include "runner/webhook.h"
typedef struct cli_webhook {
	runner_webhook_event ev;
	bool any;               /* a webhook flag was given */
	cbl_strv env;           /* NAME=VALUE: CODEBUILD_WEBHOOK_* (after finish) */
	cbl_strv changed;       /* --changed-file, else from git */
	char *head_commit, *prev_commit, *message; /* from git */
	char *source_version;   /* the default source version for the event */
} cli_webhook;
/* What CODEBUILD_INITIATOR says for a webhook's build (the service: the
 * provider's agent, e.g. GitHub-Hookshot/<id>). */
#define CLI_WEBHOOK_INITIATOR "GitHub-Hookshot/codebuild-local"
int cli_webhook_opt(cli_webhook *w, const char *flag, const char *arg);
/* Checks the event, reads what git knows of it from dir (when dir is a git
 * working tree), sets *source_version when NULL, fills w->env.  0 when no
 * webhook flag was given. */
int cli_webhook_finish(cli_webhook *w, const char *dir, const char **source_version, cbl_error **err);
void cli_webhook_release(cli_webhook *w);

/* run --remote PROJECT (cli/cmd_remote.c). */
typedef struct cli_remote {
	const char *project, *region, *endpoint, *profile;
	const char *dir;        /* the local source (its buildspec and HEAD) */
	const char *buildspec;  /* relative to dir (NULL = buildspec.yml) */
	cbl_strv env;           /* NAME=VALUE overrides */
} cli_remote;
int cli_remote_run(const cli_remote *r);

struct runner_opts;
/* Runs a build from ready options with run's output (the terminal view or
 * the plain log; nothing when quiet); *record = its final record, *log_path
 * its log (caller frees both; either may be NULL).  Returns run's exit
 * status. */
int cli_run_opts(struct runner_opts *o, bool quiet, json_t **record, char **log_path);

struct option;
/* An unknown name, in one line: "codebuild-local: error: <what> '<word>'",
 * then "did you mean '<suggestion>'? (see 'codebuild-local [help_cmd ]--help')"
 * (suggestion NULL: the pointer to --help ends the first line instead). */
void cli_unknown(const char *what, const char *word, const char *suggestion, const char *help_cmd);
/* getopt_long (shorts without a leading ':') for subcommand cmd, its errors
 * said as cli_unknown does (the nearest long option suggested): '?' then,
 * never the usage.  Resets opterr. */
int cli_getopt(const char *cmd, int argc, char **argv, const char *shorts, const struct option *longopts);

#endif
