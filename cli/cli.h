/* cli/cli.h - the command table and helpers shared by the subcommands.
 * Only cli/ (and server/) print and choose exit codes. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

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
