/* runner/webhook.h - webhook events, offline: the variables the service sets
 * for a build a webhook started, and the evaluation of a project's webhook
 * filter groups against an event (which group would start a build, and for
 * each that would not, the first filter that failed).
 *
 * Semantics (the service's WebhookFilter documentation):
 * - a build starts when at least one filter group passes; a group passes
 *   when every one of its filters passes; each group needs an EVENT filter;
 * - EVENT: the pattern is a comma-separated list of event names;
 * - every other type: a regular expression searched (not anchored) in the
 *   event's value: HEAD_REF (refs/heads/X or refs/tags/X), BASE_REF (pull
 *   requests only), ACTOR_ACCOUNT_ID, FILE_PATH (passes when any changed file
 *   matches), COMMIT_MESSAGE (the head commit's), TAG_NAME and RELEASE_NAME
 *   (release events), REPOSITORY_NAME, ORGANIZATION_NAME, WORKFLOW_NAME;
 * - excludeMatchedPattern inverts the filter's outcome;
 * - a filter whose value the event does not have (BASE_REF on a push) fails,
 *   excluded or not (our documented choice: the service does not start a
 *   build on a value it cannot read).
 * Regular expressions are POSIX extended ones with the GNU escapes (\w \s \b)
 * plus \d and \D; a construct of Java's that they lack ((?i), lookaround) is
 * an error naming the filter, never a silent mismatch. */
#ifndef RUNNER_WEBHOOK_H
#define RUNNER_WEBHOOK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"
#include "util/strv.h"

typedef struct runner_webhook_event {
	const char *event;            /* PUSH, PULL_REQUEST_CREATED, ... RELEASED, WORKFLOW_JOB_QUEUED */
	const char *head_ref;         /* refs/heads/X or refs/tags/X (a bare X means refs/heads/X) */
	const char *base_ref;         /* pull requests: the destination branch */
	long pr;                      /* pull requests: the number (> 0) */
	const char *actor_account_id;
	const char *commit_message;   /* the head commit's message */
	const char *head_commit;      /* the commit the event is about (push: the new head) */
	const char *prev_commit;      /* push: the commit before; pull request: the base's */
	const char *merge_commit;     /* Bitbucket's squash-merge commit */
	const char *tag_name;         /* RELEASED / PRERELEASED: the release's tag */
	const char *release_name;
	const char *repository_name;
	const char *organization_name;
	const char *workflow_name;    /* WORKFLOW_JOB_QUEUED */
	const cbl_strv *changed_files; /* FILE_PATH: the paths the event changed (NULL = unknown) */
} runner_webhook_event;

/* Checks an event as a command line gave it: a known event name, a pull
 * request number and base ref for pull-request events, a head ref where the
 * event has one. */
int runner_webhook_event_check(const runner_webhook_event *ev, cbl_error **err);

/* True for the PULL_REQUEST_* events. */
bool runner_webhook_is_pr(const char *event);

/* The head ref in full (refs/heads/X for a bare X); NULL when none.  Caller frees. */
char *runner_webhook_head_ref(const runner_webhook_event *ev);

/* CODEBUILD_WEBHOOK_TRIGGER: pr/N, branch/X or tag/X (NULL when the event
 * has no ref).  Caller frees. */
char *runner_webhook_trigger(const runner_webhook_event *ev);

/* The source version the service builds for the event: pr/N for a pull
 * request, else the head commit (NULL when not known).  Caller frees. */
char *runner_webhook_source_version(const runner_webhook_event *ev);

/* Sets the CODEBUILD_WEBHOOK_* variables of the event in env (those with a
 * value; the others are left unset). */
void runner_webhook_env(const runner_webhook_event *ev, cbl_strv *env);

typedef struct runner_webhook_group_result {
	bool passes;
	int failed_filter;   /* the index of the first filter that failed, -1 when it passes */
	char *why;           /* what that filter wanted and what the event had */
} runner_webhook_group_result;

typedef struct runner_webhook_verdict {
	bool triggers;                      /* a build would start */
	int group;                          /* the first passing group, -1 when none */
	runner_webhook_group_result *groups;
	size_t n_groups;
} runner_webhook_verdict;

/* Evaluates filterGroups (the API shape: a list of lists of WebhookFilter
 * objects) against ev.  An invalid filter group (no EVENT filter, an unknown
 * type, a pattern that does not compile) is an error naming it. */
int runner_webhook_evaluate(const json_t *filter_groups, const runner_webhook_event *ev,
			    runner_webhook_verdict *out, cbl_error **err);
void runner_webhook_verdict_free(runner_webhook_verdict *v);

#endif
