/* runner/replay.h - a CodeBuild build, replayed locally: its Build record
 * (what batch-get-builds prints) mapped onto the Project + StartBuild
 * request runner_launch_opts takes, and the comparison of the cloud build
 * with the local one.
 *
 * The mapping keeps everything that shaped the cloud build: source type,
 * location and the exact resolvedSourceVersion (fetched as
 * `sourceVersion^{resolvedSourceVersion}` so a pr/N is checked to contain
 * it), secondary sources and their resolved versions, the buildspec (inline
 * text or a path in the source), image, compute type, privileged mode,
 * environment variables (PLAINTEXT as they were; PARAMETER_STORE and
 * SECRETS_MANAGER by name, their values from a secrets file), timeout, clone
 * depth, submodules, cache, VPC setting (not applied locally), and the
 * source version variable a webhook build had.  A project (batch-get-projects)
 * fills what the record lacks (a buildspec kept in the project).
 *
 * The comparison: each phase's status and duration in both builds; the first
 * command whose outcome differs (the commands of both logs, in order, with
 * their exit status); the first line of the commands' output that differs
 * once timestamps, build ids, uuids and source paths are normalised.  The
 * agent's own lines ([Container] ...) are left out of the line comparison:
 * they differ between any two machines (a local build says what it fakes). */
#ifndef RUNNER_REPLAY_H
#define RUNNER_REPLAY_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"
#include "util/strv.h"

/* The one Build of a batch-get-builds answer ({"builds": [...]}, which must
 * hold exactly one, or name it with want_id) or a Build object itself.
 * Returns a new reference. */
int runner_replay_pick_build(const json_t *doc, const char *want_id, json_t **build, cbl_error **err);

/* The one Project of a batch-get-projects answer or a Project object. */
int runner_replay_pick_project(const json_t *doc, const char *name, json_t **project, cbl_error **err);

typedef struct runner_replay_plan {
	json_t *project;         /* for runner_launch_opts */
	json_t *request;         /* for runner_launch_opts */
	cbl_strv secret_names;   /* "PARAMETER_STORE NAME (parameter P)" ... listed up front */
	cbl_strv secret_refs;    /* "parameter-store\tP" / "secrets-manager\tS", one per secret */
	cbl_strv notes;          /* what cannot be matched locally, said before the run */
	cbl_strv event_env;      /* NAME=VALUE the webhook build had (runner_opts.webhook_env) */
	const char *resolved;    /* the commit the cloud build ran (borrowed from the build), or NULL */
} runner_replay_plan;

/* Maps build (and project, NULL = none) to a plan. */
int runner_replay_plan_new(runner_replay_plan *out, const json_t *build, const json_t *project, cbl_error **err);
void runner_replay_plan_release(runner_replay_plan *p);

/* Checks that secrets_file (run's --secrets-file format) holds every
 * PARAMETER_STORE / SECRETS_MANAGER value of the plan: the missing ones are
 * appended to *missing as they were listed in secret_names.  An unreadable
 * or invalid file (or none, when secrets are needed) is an error. */
int runner_replay_check_secrets(const runner_replay_plan *p, const char *secrets_file, cbl_strv *missing,
				cbl_error **err);

/* The comparison of two builds: cloud = the Build record and its log lines
 * (NULL = no log), local = the local Build record and its log lines.
 * *out: {"cloud": {status, buildId}, "local": {...}, "sameStatus": bool,
 *        "phases": [{"phaseType", "cloud": {status, durationInSeconds} | null,
 *                    "local": {...} | null, "same": bool}],
 *        "firstDivergentCommand": null | {"index", "cloud": {command, exitStatus,
 *                    phase} | null, "local": ...},
 *        "firstDivergentLine": null | {"index", "cloud": line | null, "local": line | null},
 *        "logCompared": bool} */
json_t *runner_replay_compare(const json_t *cloud, const cbl_strv *cloud_log, const json_t *local,
			      const cbl_strv *local_log);

/* A log line with timestamps, build ids, uuids and source paths replaced by
 * placeholders (caller frees). */
char *runner_replay_normalize(const char *line, const char *const *ids);

#endif
