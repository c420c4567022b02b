/* runner/webhook.c - webhook events offline (see webhook.h). */
#include "runner/webhook.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static const char *const events[] = {
	"PUSH",
	"PULL_REQUEST_CREATED",
	"PULL_REQUEST_UPDATED",
	"PULL_REQUEST_CLOSED",
	"PULL_REQUEST_REOPENED",
	"PULL_REQUEST_MERGED",
	"RELEASED",
	"PRERELEASED",
	"WORKFLOW_JOB_QUEUED",
};

bool runner_webhook_is_pr(const char *event)
{
	return event && !strncmp(event, "PULL_REQUEST_", 13);
}

static bool is_release(const char *event)
{
	return event && (!strcmp(event, "RELEASED") || !strcmp(event, "PRERELEASED"));
}

static bool known_event(const char *name, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(events); i++)
		if (strlen(events[i]) == n && !strncmp(events[i], name, n))
			return true;
	return false;
}

static char *full_ref(const char *ref)
{
	if (!ref || !*ref)
		return NULL;
	if (!strncmp(ref, "refs/", 5))
		return cbl_xstrdup(ref);
	return cbl_xasprintf("refs/heads/%s", ref);
}

char *runner_webhook_head_ref(const runner_webhook_event *ev)
{
	if (ev->head_ref && *ev->head_ref)
		return full_ref(ev->head_ref);
	if (is_release(ev->event) && ev->tag_name && *ev->tag_name)
		return cbl_xasprintf("refs/tags/%s", ev->tag_name);
	return NULL;
}

int runner_webhook_event_check(const runner_webhook_event *ev, cbl_error **err)
{
	if (!ev->event || !known_event(ev->event, strlen(ev->event))) {
		cbl_buf b = CBL_BUF_INIT;
		for (size_t i = 0; i < ARRAY_SIZE(events); i++)
			cbl_buf_printf(&b, "%s%s", i ? ", " : "", events[i]);
		int rc = cbl_error_set(err, CBL_EINVAL, "unknown webhook event '%s' (expected one of %s)",
				       ev->event ? ev->event : "", cbl_buf_cstr(&b));
		cbl_buf_release(&b);
		return rc;
	}
	if (runner_webhook_is_pr(ev->event)) {
		if (ev->pr <= 0)
			return cbl_error_set(err, CBL_EINVAL,
					     "a %s event needs the pull request's number (--pr N)", ev->event);
		if (!ev->base_ref || !*ev->base_ref)
			return cbl_error_set(err, CBL_EINVAL,
					     "a %s event needs the pull request's base branch (--base-ref R)",
					     ev->event);
	} else if (ev->pr > 0) {
		return cbl_error_set(err, CBL_EINVAL, "--pr is for pull request events, not %s", ev->event);
	} else if (ev->base_ref && *ev->base_ref) {
		return cbl_error_set(err, CBL_EINVAL,
				     "--base-ref is for pull request events (the service has no base ref "
				     "for %s)",
				     ev->event);
	}
	if (is_release(ev->event) && (!ev->tag_name || !*ev->tag_name) &&
	    !(ev->head_ref && !strncmp(ev->head_ref, "refs/tags/", 10)))
		return cbl_error_set(err, CBL_EINVAL, "a %s event needs the release's tag (--tag-name T)",
				     ev->event);
	if (!strcmp(ev->event, "WORKFLOW_JOB_QUEUED"))
		return 0;
	char *head = runner_webhook_head_ref(ev);
	if (!head)
		return cbl_error_set(err, CBL_EINVAL, "a %s event needs its head ref (--head-ref R)", ev->event);
	free(head);
	return 0;
}

char *runner_webhook_trigger(const runner_webhook_event *ev)
{
	if (runner_webhook_is_pr(ev->event))
		return cbl_xasprintf("pr/%ld", ev->pr);
	char *head = runner_webhook_head_ref(ev);
	char *t = NULL;
	if (head && !strncmp(head, "refs/heads/", 11))
		t = cbl_xasprintf("branch/%s", head + 11);
	else if (head && !strncmp(head, "refs/tags/", 10))
		t = cbl_xasprintf("tag/%s", head + 10);
	free(head);
	return t;
}

char *runner_webhook_source_version(const runner_webhook_event *ev)
{
	if (runner_webhook_is_pr(ev->event))
		return cbl_xasprintf("pr/%ld", ev->pr);
	return ev->head_commit && *ev->head_commit ? cbl_xstrdup(ev->head_commit) : NULL;
}

static void set_if(cbl_strv *env, const char *name, const char *value)
{
	if (value && *value)
		cbl_env_set(env, name, value);
}

void runner_webhook_env(const runner_webhook_event *ev, cbl_strv *env)
{
	char *head = runner_webhook_head_ref(ev);
	char *base = full_ref(ev->base_ref);
	char *trigger = runner_webhook_trigger(ev);
	set_if(env, "CODEBUILD_WEBHOOK_EVENT", ev->event);
	set_if(env, "CODEBUILD_WEBHOOK_TRIGGER", trigger);
	set_if(env, "CODEBUILD_WEBHOOK_HEAD_REF", head);
	set_if(env, "CODEBUILD_WEBHOOK_BASE_REF", base);
	set_if(env, "CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID", ev->actor_account_id);
	set_if(env, "CODEBUILD_WEBHOOK_PREV_COMMIT", ev->prev_commit);
	set_if(env, "CODEBUILD_WEBHOOK_MERGE_COMMIT", ev->merge_commit);
	free(head);
	free(base);
	free(trigger);
}

/* ---- filter evaluation ---- */

/* Java-style escapes POSIX lacks, rewritten; constructs it cannot express
 * refused.  Returns NULL and sets *bad to what was refused. */
static char *to_posix(const char *pat, const char **bad)
{
	cbl_buf b = CBL_BUF_INIT;
	bool in_class = false;
	for (const char *p = pat; *p; p++) {
		if (!in_class && p[0] == '(' && p[1] == '?') {
			*bad = "(?...) groups (flags, lookaround, non-capturing)";
			goto fail;
		}
		if (*p == '[' && !in_class) {
			in_class = true;
			cbl_buf_append(&b, p, 1);
			if (p[1] == '^')
				cbl_buf_append(&b, ++p, 1);
			if (p[1] == ']')
				cbl_buf_append(&b, ++p, 1);
			continue;
		}
		if (*p == ']' && in_class) {
			in_class = false;
			cbl_buf_append(&b, p, 1);
			continue;
		}
		if (*p != '\\' || !p[1]) {
			cbl_buf_append(&b, p, 1);
			continue;
		}
		char c = *++p;
		if (in_class) {
			switch (c) {
			case 'd': cbl_buf_printf(&b, "0-9"); break;
			case 'w': cbl_buf_printf(&b, "[:alnum:]_"); break;
			case 's': cbl_buf_printf(&b, "[:space:]"); break;
			case ']': case '^': case '-': case '\\':
				*bad = "an escaped ], ^, - or \\ inside a [...] class";
				goto fail;
			default:
				if (isalnum((unsigned char)c)) {
					*bad = "an escape sequence inside a [...] class";
					goto fail;
				}
				cbl_buf_append(&b, &c, 1);
			}
			continue;
		}
		switch (c) {
		case 'd': cbl_buf_printf(&b, "[0-9]"); break;
		case 'D': cbl_buf_printf(&b, "[^0-9]"); break;
		case 'w': case 'W': case 's': case 'S': case 'b': case 'B':
			cbl_buf_printf(&b, "\\%c", c);
			break;
		default:
			if (isalnum((unsigned char)c)) {
				*bad = "an escape sequence other than \\d \\D \\w \\W \\s \\S \\b \\B";
				goto fail;
			}
			cbl_buf_printf(&b, "\\%c", c);
		}
	}
	return cbl_buf_detach(&b);
fail:
	cbl_buf_release(&b);
	return NULL;
}

typedef struct filter {
	const char *type;
	const char *pattern;
	bool exclude;
} filter;

static int read_filter(const json_t *f, size_t g, size_t i, filter *out, cbl_error **err)
{
	const json_t *type = json_object_get(f, "type");
	const json_t *pattern = json_object_get(f, "pattern");
	const json_t *exclude = json_object_get(f, "excludeMatchedPattern");
	if (!json_is_object(f) || !json_is_string(type) || !json_is_string(pattern))
		return cbl_error_set(err, CBL_EINVAL,
				     "filter group %zu, filter %zu: a WebhookFilter needs \"type\" and "
				     "\"pattern\" strings",
				     g + 1, i + 1);
	if (exclude && !json_is_boolean(exclude))
		return cbl_error_set(err, CBL_EINVAL,
				     "filter group %zu, filter %zu: \"excludeMatchedPattern\" must be a boolean",
				     g + 1, i + 1);
	out->type = json_string_value(type);
	out->pattern = json_string_value(pattern);
	out->exclude = exclude && json_is_true(exclude);
	return 0;
}

/* The event's value for a filter type: *found false when the event has none. */
static const char *value_of(const runner_webhook_event *ev, const char *type, char **owned, bool *known)
{
	*known = true;
	*owned = NULL;
	if (!strcmp(type, "HEAD_REF"))
		return (*owned = runner_webhook_head_ref(ev));
	if (!strcmp(type, "BASE_REF"))
		return runner_webhook_is_pr(ev->event) ? (*owned = full_ref(ev->base_ref)) : NULL;
	if (!strcmp(type, "ACTOR_ACCOUNT_ID"))
		return ev->actor_account_id;
	if (!strcmp(type, "COMMIT_MESSAGE"))
		return ev->commit_message;
	if (!strcmp(type, "TAG_NAME"))
		return ev->tag_name;
	if (!strcmp(type, "RELEASE_NAME"))
		return ev->release_name;
	if (!strcmp(type, "REPOSITORY_NAME"))
		return ev->repository_name;
	if (!strcmp(type, "ORGANIZATION_NAME"))
		return ev->organization_name;
	if (!strcmp(type, "WORKFLOW_NAME"))
		return ev->workflow_name;
	*known = false;
	return NULL;
}

/* The next comma-separated name of an EVENT pattern: [*s, *e) trimmed;
 * false at the end. */
static bool next_event(const char **p, const char **s, const char **e)
{
	while (**p == ' ' || **p == ',')
		(*p)++;
	if (!**p)
		return false;
	*s = *p;
	while (**p && **p != ',')
		(*p)++;
	*e = *p;
	while (*e > *s && (*e)[-1] == ' ')
		(*e)--;
	return true;
}

static bool event_listed(const char *pattern, const char *event)
{
	const char *p = pattern, *s, *e;
	while (next_event(&p, &s, &e))
		if ((size_t)(e - s) == strlen(event) && !strncmp(s, event, (size_t)(e - s)))
			return true;
	return false;
}

static int check_events(const char *pattern, size_t g, size_t i, cbl_error **err)
{
	const char *p = pattern, *s, *e;
	while (next_event(&p, &s, &e))
		if (!known_event(s, (size_t)(e - s)))
			return cbl_error_set(err, CBL_EINVAL,
					     "filter group %zu, filter %zu: unknown event '%.*s' in EVENT "
					     "pattern '%s'",
					     g + 1, i + 1, (int)(e - s), s, pattern);
	return 0;
}

/* One filter: 1 passes, 0 fails (*why said), <0 error. */
static int eval_filter(const filter *f, const runner_webhook_event *ev, size_t g, size_t i, char **why,
		       cbl_error **err)
{
	if (!strcmp(f->type, "EVENT")) {
		if (check_events(f->pattern, g, i, err) < 0)
			return -1;
		bool m = event_listed(f->pattern, ev->event) != f->exclude;
		if (!m)
			*why = cbl_xasprintf("EVENT %s'%s': the event is %s", f->exclude ? "excluding " : "",
					     f->pattern, ev->event);
		return m;
	}
	const char *bad = NULL;
	char *posix = to_posix(f->pattern, &bad);
	if (!posix)
		return cbl_error_set(err, CBL_EINVAL,
				     "filter group %zu, filter %zu (%s): pattern '%s' uses %s, which this "
				     "local evaluation cannot match like the service",
				     g + 1, i + 1, f->type, f->pattern, bad);
	regex_t re;
	int rrc = regcomp(&re, posix, REG_EXTENDED | REG_NOSUB);
	free(posix);
	if (rrc) {
		char msg[128];
		regerror(rrc, &re, msg, sizeof(msg));
		return cbl_error_set(err, CBL_EINVAL, "filter group %zu, filter %zu (%s): invalid pattern '%s': %s",
				     g + 1, i + 1, f->type, f->pattern, msg);
	}
	int rc;
	if (!strcmp(f->type, "FILE_PATH")) {
		bool any = false;
		const char *first = NULL;
		for (size_t k = 0; ev->changed_files && k < ev->changed_files->n && !any; k++)
			if (regexec(&re, ev->changed_files->v[k], 0, NULL, 0) == 0)
				any = true, first = ev->changed_files->v[k];
		if (!ev->changed_files) {
			*why = cbl_xasprintf("FILE_PATH '%s': the changed files are not known (give a git "
					     "source and refs, or --changed-file)",
					     f->pattern);
			rc = 0;
		} else {
			rc = any != f->exclude;
			if (!rc)
				*why = any ? cbl_xasprintf("FILE_PATH excluding '%s': %s matches", f->pattern, first)
					   : cbl_xasprintf("FILE_PATH '%s': none of the %zu changed files matches",
							   f->pattern, ev->changed_files->n);
		}
	} else {
		bool known;
		char *owned;
		const char *v = value_of(ev, f->type, &owned, &known);
		if (!known) {
			regfree(&re);
			return cbl_error_set(err, CBL_EINVAL, "filter group %zu, filter %zu: unknown filter type '%s'",
					     g + 1, i + 1, f->type);
		}
		if (!v) {
			*why = cbl_xasprintf("%s '%s': a %s event has no %s", f->type, f->pattern, ev->event, f->type);
			rc = 0;
		} else {
			bool m = regexec(&re, v, 0, NULL, 0) == 0;
			rc = m != f->exclude;
			if (!rc)
				*why = cbl_xasprintf("%s %s'%s': the event's is '%s'", f->type,
						     f->exclude ? "excluding " : "", f->pattern, v);
		}
		free(owned);
	}
	regfree(&re);
	return rc;
}

static int eval_group(const json_t *group, size_t g, const runner_webhook_event *ev,
		      runner_webhook_group_result *out, cbl_error **err)
{
	out->failed_filter = -1;
	if (!json_is_array(group) || !json_array_size(group))
		return cbl_error_set(err, CBL_EINVAL, "filter group %zu must be a non-empty list of filters", g + 1);
	filter *fs = cbl_xcalloc(json_array_size(group), sizeof(*fs));
	bool has_event = false;
	int rc = 0;
	for (size_t i = 0; i < json_array_size(group) && !rc; i++) {
		rc = read_filter(json_array_get(group, i), g, i, &fs[i], err);
		if (!rc && !strcmp(fs[i].type, "EVENT"))
			has_event = true;
	}
	if (!rc && !has_event)
		rc = cbl_error_set(err, CBL_EINVAL,
				   "filter group %zu has no EVENT filter (the service requires one in each group)",
				   g + 1);
	out->passes = true;
	for (size_t i = 0; i < json_array_size(group) && !rc; i++) {
		char *why = NULL;
		int m = eval_filter(&fs[i], ev, g, i, &why, err);
		if (m < 0) {
			rc = -1;
		} else if (!m && out->passes) {
			/* go on: a later filter may still be invalid, which is an error */
			out->passes = false;
			out->failed_filter = (int)i;
			out->why = why;
			why = NULL;
		}
		free(why);
	}
	free(fs);
	return rc < 0 ? (err && *err ? (*err)->code : CBL_EINVAL) : 0;
}

int runner_webhook_evaluate(const json_t *filter_groups, const runner_webhook_event *ev,
			    runner_webhook_verdict *out, cbl_error **err)
{
	memset(out, 0, sizeof(*out));
	out->group = -1;
	if (!json_is_array(filter_groups))
		return cbl_error_set(err, CBL_EINVAL, "filterGroups must be a list of lists of WebhookFilter objects");
	size_t n = json_array_size(filter_groups);
	out->groups = cbl_xcalloc(n ? n : 1, sizeof(*out->groups));
	out->n_groups = n;
	for (size_t g = 0; g < n; g++) {
		int rc = eval_group(json_array_get(filter_groups, g), g, ev, &out->groups[g], err);
		if (rc < 0) {
			runner_webhook_verdict_free(out);
			return rc;
		}
		if (out->groups[g].passes && out->group < 0)
			out->group = (int)g;
	}
	/* no filter groups: every event starts a build (a webhook without filters) */
	out->triggers = n == 0 || out->group >= 0;
	return 0;
}

void runner_webhook_verdict_free(runner_webhook_verdict *v)
{
	for (size_t i = 0; i < v->n_groups; i++)
		free(v->groups[i].why);
	free(v->groups);
	memset(v, 0, sizeof(*v));
	v->group = -1;
}
