/* runner/replay.c - a cloud build's record, mapped and compared (see replay.h). */
#include "runner/replay.h"
#include "runner/runner_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/json.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static int pick(const json_t *doc, const char *list, const char *key, const char *want, const char *what,
		json_t **out, cbl_error **err)
{
	const json_t *items = json_object_get(doc, list);
	if (!items) {
		if (!json_is_object(doc) || !json_object_get(doc, key))
			return cbl_error_set(err, CBL_EINVAL,
					     "not a %s: expected what batch-get-%s prints ({\"%s\": [...]}) or one %s "
					     "object",
					     what, list, list, what);
		*out = json_incref((json_t *)doc);
		return 0;
	}
	if (!json_is_array(items) || !json_array_size(items))
		return cbl_error_set(err, CBL_EINVAL, "\"%s\" holds no %s", list, what);
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		const char *v = cbl_json_str_nonempty(it, key);
		if (want ? v && !strcmp(v, want) : json_array_size(items) == 1) {
			*out = json_incref(it);
			return 0;
		}
	}
	if (want)
		return cbl_error_set(err, CBL_ENOENT, "no %s %s in \"%s\"", what, want, list);
	return cbl_error_set(err, CBL_EINVAL, "\"%s\" holds %zu %ss: say which one (--id)", list,
			     json_array_size(items), what);
}

int runner_replay_pick_build(const json_t *doc, const char *want_id, json_t **build, cbl_error **err)
{
	return pick(doc, "builds", "id", want_id, "Build", build, err);
}

int runner_replay_pick_project(const json_t *doc, const char *name, json_t **project, cbl_error **err)
{
	return pick(doc, "projects", "name", name, "Project", project, err);
}

/* ---- the plan ---- */

static void copy_member(json_t *dst, const json_t *src, const char *name)
{
	json_t *v = json_object_get(src, name);
	if (v && !json_is_null(v))
		json_object_set_new(dst, name, json_deep_copy(v));
}

/* environment variables: PLAINTEXT kept, the others listed (their values
 * come from the secrets file, which the runner reads). */
static void list_secrets(runner_replay_plan *p, const json_t *vars)
{
	size_t i;
	json_t *v;
	json_array_foreach(vars, i, v)
	{
		const char *type = cbl_json_str_nonempty(v, "type");
		const char *name = cbl_json_str_nonempty(v, "name");
		const char *value = cbl_json_str_nonempty(v, "value");
		if (!type || !strcmp(type, "PLAINTEXT") || !name || !value)
			continue;
		bool ps = !strcmp(type, "PARAMETER_STORE");
		cbl_strv_pushf(&p->secret_names, "%s %s (%s %s)", type, name, ps ? "parameter" : "secret", value);
		cbl_strv_pushf(&p->secret_refs, "%s\t%s", ps ? "parameter-store" : "secrets-manager", value);
	}
}

/* The version to fetch: the exact commit the cloud build ran, checked to be
 * on what it asked for. */
static char *fetch_version(const char *asked, const char *resolved)
{
	if (asked && resolved && strcmp(asked, resolved))
		return cbl_xasprintf("%s^{%s}", asked, resolved);
	if (resolved)
		return cbl_xstrdup(resolved);
	return asked ? cbl_xstrdup(asked) : NULL;
}

static void plan_secondary(runner_replay_plan *p, const json_t *build)
{
	json_t *versions = json_array();
	const json_t *resolved = json_object_get(build, "secondarySourceVersions");
	size_t i;
	json_t *s;
	json_array_foreach(resolved, i, s)
	{
		const char *id = cbl_json_str_nonempty(s, "sourceIdentifier");
		const char *v = cbl_json_str_nonempty(s, "sourceVersion");
		if (id && v) {
			json_t *o = json_object();
			json_object_set_new(o, "sourceIdentifier", json_string(id));
			json_object_set_new(o, "sourceVersion", json_string(v));
			json_array_append_new(versions, o);
		}
	}
	if (json_array_size(versions))
		json_object_set_new(p->request, "secondarySourcesVersionOverride", versions);
	else
		json_decref(versions);
}

static void plan_notes(runner_replay_plan *p, const json_t *build)
{
	const json_t *vpc = json_object_get(build, "vpcConfig");
	if (json_array_size(json_object_get(vpc, "subnets")))
		cbl_strv_push(&p->notes, "the build ran in a VPC: the local build uses the default network");
	const json_t *fs = json_object_get(build, "fileSystemLocations");
	if (json_array_size(fs))
		cbl_strv_push(&p->notes, "the build mounted file systems (EFS): not available locally");
	const char *stype = cbl_json_str_nonempty(json_object_get(build, "source"), "type");
	if (stype && (!strcmp(stype, "S3") || !strcmp(stype, "CODEPIPELINE")))
		cbl_strv_pushf(&p->notes, "source type %s cannot be fetched locally: give --source DIR", stype);
	const char *art = cbl_json_str_nonempty(json_object_get(build, "artifacts"), "location");
	if (art && !strncmp(art, "arn:aws:s3:::", 13))
		cbl_strv_push(&p->notes, "artifacts went to S3 in the cloud: locally they go to the build's directory");
}

/* A webhook build's source version (pr/N) as the build saw it. */
static void plan_event(runner_replay_plan *p, const json_t *build)
{
	const char *sv = cbl_json_str_nonempty(build, "sourceVersion");
	const char *initiator = cbl_json_str_nonempty(build, "initiator");
	if (sv && p->resolved && strcmp(sv, p->resolved))
		cbl_strv_pushf(&p->event_env, "CODEBUILD_SOURCE_VERSION=%s", sv);
	if (sv && !strncmp(sv, "pr/", 3) && initiator && !strncmp(initiator, "GitHub-Hookshot", 15))
		cbl_strv_pushf(&p->event_env, "CODEBUILD_WEBHOOK_TRIGGER=%s", sv);
	if (initiator)
		cbl_strv_pushf(&p->event_env, "CODEBUILD_INITIATOR=%s", initiator);
}

int runner_replay_plan_new(runner_replay_plan *p, const json_t *build, const json_t *project, cbl_error **err)
{
	memset(p, 0, sizeof(*p));
	if (!json_is_object(build) || !json_is_object(json_object_get(build, "source")))
		return cbl_error_set(err, CBL_EINVAL, "the Build record has no \"source\": nothing to replay");
	p->project = project ? json_deep_copy(project) : json_object();
	p->request = json_object();
	const char *name = cbl_json_str_nonempty(build, "projectName");
	if (!name && cbl_json_str_nonempty(build, "id")) {
		const char *id = cbl_json_str_nonempty(build, "id");
		const char *colon = strchr(id, ':');
		json_object_set_new(p->project, "name", json_stringn(id, colon ? (size_t)(colon - id) : strlen(id)));
	} else if (name) {
		json_object_set_new(p->project, "name", json_string(name));
	}
	/* the record's settings are the effective ones: they beat the project's */
	static const char *const members[] = {"source", "secondarySources", "secondarySourceVersions", "environment",
					      "timeoutInMinutes", "cache", "vpcConfig", "logsConfig"};
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		copy_member(p->project, build, members[i]);
	/* a buildspec kept in the project (the record's source may omit it) */
	json_t *src = json_object_get(p->project, "source");
	const json_t *psrc = project ? json_object_get(project, "source") : NULL;
	if (!cbl_json_str_nonempty(src, "buildspec") && cbl_json_str_nonempty(psrc, "buildspec"))
		json_object_set_new(src, "buildspec", json_string(cbl_json_str_nonempty(psrc, "buildspec")));
	p->resolved = cbl_json_str_nonempty(build, "resolvedSourceVersion");
	char *version = fetch_version(cbl_json_str_nonempty(build, "sourceVersion"), p->resolved);
	if (version)
		json_object_set_new(p->request, "sourceVersion", json_string(version));
	free(version);
	plan_secondary(p, build);
	list_secrets(p, json_object_get(json_object_get(p->project, "environment"), "environmentVariables"));
	plan_notes(p, build);
	plan_event(p, build);
	return 0;
}

void runner_replay_plan_release(runner_replay_plan *p)
{
	json_decref(p->project);
	json_decref(p->request);
	cbl_strv_release(&p->secret_names);
	cbl_strv_release(&p->secret_refs);
	cbl_strv_release(&p->notes);
	cbl_strv_release(&p->event_env);
	memset(p, 0, sizeof(*p));
}

int runner_replay_check_secrets(const runner_replay_plan *p, const char *secrets_file, cbl_strv *missing,
				cbl_error **err)
{
	if (!p->secret_refs.n)
		return 0;
	if (!secrets_file)
		return cbl_error_set(err, CBL_EINVAL,
				     "the build used %zu parameter-store / secrets-manager variable(s): give their "
				     "values with --secrets-file F",
				     p->secret_refs.n);
	runner_secrets *s = NULL;
	int rc = runner_secrets_load(&s, secrets_file, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < p->secret_refs.n; i++) {
		const char *tab = strchr(p->secret_refs.v[i], '\t');
		char *v = NULL;
		cbl_error *e = NULL;
		int r = !strncmp(p->secret_refs.v[i], "parameter-store", 15) ? runner_secrets_parameter(s, tab + 1, &v, &e)
									  : runner_secrets_secret(s, tab + 1, &v, &e);
		if (r < 0)
			cbl_strv_push(missing, p->secret_names.v[i]);
		if (v) {
			explicit_bzero(v, strlen(v));
			free(v);
		}
		cbl_error_free(e);
	}
	runner_secrets_free(s);
	return 0;
}

/* ---- the comparison ---- */

static bool is_agent(const char *line)
{
	return !strncmp(line, "[Container] ", 12) || !strncmp(line, "[codebuild-local]", 17);
}

/* "[Container] 2020/05/11 12:01:40.123 " -> the rest. */
static const char *agent_text(const char *line)
{
	if (strncmp(line, "[Container] ", 12))
		return line;
	const char *p = line + 12;
	for (int i = 0; i < 2; i++) {
		const char *sp = strchr(p, ' ');
		if (!sp)
			return line + 12;
		p = sp + 1;
	}
	return p;
}

static void replace_all(char **s, const char *pattern, const char *with)
{
	regex_t re;
	if (regcomp(&re, pattern, REG_EXTENDED))
		return;
	cbl_buf b = CBL_BUF_INIT;
	const char *p = *s;
	regmatch_t m;
	int flags = 0;
	while (*p && regexec(&re, p, 1, &m, flags) == 0 && m.rm_eo > m.rm_so) {
		cbl_buf_append(&b, p, (size_t)m.rm_so);
		cbl_buf_puts(&b, with);
		p += m.rm_eo;
		flags = REG_NOTBOL;
	}
	cbl_buf_puts(&b, p);
	regfree(&re);
	free(*s);
	*s = cbl_buf_detach(&b);
}

char *runner_replay_normalize(const char *line, const char *const *ids)
{
	char *s = cbl_xstrdup(line);
	for (const char *const *id = ids; id && *id; id++) {
		if (!**id)
			continue;
		char *hit;
		while ((hit = strstr(s, *id))) {
			char *n = cbl_xasprintf("%.*s<BUILD_ID>%s", (int)(hit - s), s, hit + strlen(*id));
			free(s);
			s = n;
		}
	}
	replace_all(&s, "[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?", "<TIME>");
	replace_all(&s, "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z?", "<TIME>");
	replace_all(&s, "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<UUID>");
	replace_all(&s, "/codebuild/output/src[0-9]+/src(/[^ ]*)?", "<SRC>");
	replace_all(&s, "/codebuild/output/tmp", "<TMP>");
	return s;
}

typedef struct cmd_outcome {
	const char *command; /* borrowed (agent text after "Running command ") */
	int exit_status;
	const char *phase;
} cmd_outcome;

/* The commands of a log in order, each with its exit status (0 unless a
 * "Command did not exit successfully <cmd> exit status N" follows it). */
static cmd_outcome *commands_of(const cbl_strv *log, size_t *n)
{
	cmd_outcome *v = NULL;
	*n = 0;
	const char *phase = "";
	for (size_t i = 0; log && i < log->n; i++) {
		const char *t = agent_text(log->v[i]);
		if (t == log->v[i])
			continue;
		if (!strncmp(t, "Entering phase ", 15)) {
			phase = t + 15;
		} else if (!strncmp(t, "Running command ", 16)) {
			v = cbl_xrealloc(v, (*n + 1) * sizeof(*v));
			v[(*n)++] = (cmd_outcome){t + 16, 0, phase};
		} else if (!strncmp(t, "Command did not exit successfully ", 34) && *n) {
			const char *es = strstr(t, " exit status ");
			v[*n - 1].exit_status = es ? atoi(es + 13) : 1;
			if (!v[*n - 1].exit_status)
				v[*n - 1].exit_status = 1;
		}
	}
	return v;
}

static json_t *cmd_json(const cmd_outcome *c)
{
	if (!c)
		return json_null();
	json_t *o = json_object();
	json_object_set_new(o, "command", json_string(c->command));
	json_object_set_new(o, "exitStatus", json_integer(c->exit_status));
	json_object_set_new(o, "phase", json_string(c->phase));
	return o;
}

static json_t *first_divergent_command(const cbl_strv *cloud, const cbl_strv *local)
{
	size_t nc, nl;
	cmd_outcome *c = commands_of(cloud, &nc), *l = commands_of(local, &nl);
	json_t *out = json_null();
	for (size_t i = 0; i < nc || i < nl; i++) {
		const cmd_outcome *a = i < nc ? &c[i] : NULL, *b = i < nl ? &l[i] : NULL;
		if (a && b && !strcmp(a->command, b->command) && (a->exit_status == 0) == (b->exit_status == 0))
			continue;
		out = json_object();
		json_object_set_new(out, "index", json_integer((json_int_t)i + 1));
		json_object_set_new(out, "cloud", cmd_json(a));
		json_object_set_new(out, "local", cmd_json(b));
		break;
	}
	free(c);
	free(l);
	return out;
}

/* The commands' output lines, normalised. */
static void output_lines(const cbl_strv *log, const char *const *ids, cbl_strv *out)
{
	for (size_t i = 0; log && i < log->n; i++) {
		if (is_agent(log->v[i]))
			continue;
		char *n = runner_replay_normalize(log->v[i], ids);
		size_t len = strlen(n);
		while (len && isspace((unsigned char)n[len - 1]))
			n[--len] = '\0';
		if (!len) { /* blank lines: the agent adds some around commands */
			free(n);
			continue;
		}
		cbl_strv_push_take(out, n);
	}
}

static json_t *first_divergent_line(const cbl_strv *cloud, const cbl_strv *local, const char *const *ids)
{
	cbl_strv a = CBL_STRV_INIT, b = CBL_STRV_INIT;
	output_lines(cloud, ids, &a);
	output_lines(local, ids, &b);
	json_t *out = json_null();
	for (size_t i = 0; i < a.n || i < b.n; i++) {
		if (i < a.n && i < b.n && !strcmp(a.v[i], b.v[i]))
			continue;
		out = json_object();
		json_object_set_new(out, "index", json_integer((json_int_t)i + 1));
		json_object_set_new(out, "cloud", i < a.n ? json_string(a.v[i]) : json_null());
		json_object_set_new(out, "local", i < b.n ? json_string(b.v[i]) : json_null());
		break;
	}
	cbl_strv_release(&a);
	cbl_strv_release(&b);
	return out;
}

static const json_t *phase_of(const json_t *build, const char *type)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(build, "phases"), i, p)
	{
		const char *t = cbl_json_str_nonempty(p, "phaseType");
		if (t && !strcmp(t, type))
			return p;
	}
	return NULL;
}

static json_t *phase_json(const json_t *p)
{
	if (!p)
		return json_null();
	json_t *o = json_object();
	const char *st = cbl_json_str_nonempty(p, "phaseStatus");
	json_object_set_new(o, "status", st ? json_string(st) : json_null());
	json_t *d = json_object_get(p, "durationInSeconds");
	json_object_set_new(o, "durationInSeconds", json_is_integer(d) ? json_incref(d) : json_null());
	const json_t *ctx = json_array_get(json_object_get(p, "contexts"), 0);
	const char *code = cbl_json_str_nonempty(ctx, "statusCode"), *msg = cbl_json_str_nonempty(ctx, "message");
	if (code || msg) {
		json_object_set_new(o, "statusCode", json_string(code ? code : ""));
		json_object_set_new(o, "message", json_string(msg ? msg : ""));
	}
	return o;
}

static json_t *compare_phases(const json_t *cloud, const json_t *local)
{
	static const char *const order[] = {"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL",
					    "PRE_BUILD", "BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING",
					    "COMPLETED"};
	json_t *out = json_array();
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const json_t *a = phase_of(cloud, order[i]), *b = phase_of(local, order[i]);
		if (!a && !b)
			continue;
		json_t *row = json_object();
		json_object_set_new(row, "phaseType", json_string(order[i]));
		json_object_set_new(row, "cloud", phase_json(a));
		json_object_set_new(row, "local", phase_json(b));
		const char *sa = cbl_json_str_nonempty(a, "phaseStatus"), *sb = cbl_json_str_nonempty(b, "phaseStatus");
		json_object_set_new(row, "same", json_boolean(a && b && (sa == sb || (sa && sb && !strcmp(sa, sb)))));
		json_array_append_new(out, row);
	}
	return out;
}

static json_t *side(const json_t *build)
{
	json_t *o = json_object();
	const char *st = cbl_json_str_nonempty(build, "buildStatus");
	const char *id = cbl_json_str_nonempty(build, "id");
	json_object_set_new(o, "status", st ? json_string(st) : json_null());
	json_object_set_new(o, "buildId", id ? json_string(id) : json_null());
	return o;
}

json_t *runner_replay_compare(const json_t *cloud, const cbl_strv *cloud_log, const json_t *local,
			      const cbl_strv *local_log)
{
	json_t *out = json_object();
	json_object_set_new(out, "cloud", side(cloud));
	json_object_set_new(out, "local", side(local));
	const char *a = cbl_json_str_nonempty(cloud, "buildStatus"), *b = cbl_json_str_nonempty(local, "buildStatus");
	json_object_set_new(out, "sameStatus", json_boolean(a && b && !strcmp(a, b)));
	json_object_set_new(out, "phases", compare_phases(cloud, local));
	const char *ids[] = {cbl_json_str_nonempty(cloud, "id"), cbl_json_str_nonempty(local, "id"), NULL};
	if (!ids[0]) {
		ids[0] = ids[1];
		ids[1] = NULL;
	}
	json_object_set_new(out, "logCompared", json_boolean(cloud_log != NULL));
	json_object_set_new(out, "firstDivergentCommand",
			    cloud_log ? first_divergent_command(cloud_log, local_log) : json_null());
	json_object_set_new(out, "firstDivergentLine",
			    cloud_log ? first_divergent_line(cloud_log, local_log, ids) : json_null());
	return out;
}
