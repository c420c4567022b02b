/* spec/sections.c - artifacts, reports, cache and batch sections. */
#include "spec/spec_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/banned.h"

/* artifacts --------------------------------------------------------------------- */

static const char *const artifact_keys[] = {"files",	   "name",	    "discard-paths",
					    "base-directory", "exclude-paths", "enable-symlinks",
					    "s3-prefix",	   "type",	    "secondary-artifacts",
					    NULL};

static void walk_secondary(spec_ctx *c, const spec_pair *p);

/* Fills a (primary when a->identifier is NULL) from the mapping p->val. */
static void walk_artifact(spec_ctx *c, const spec_pair *p, const char *path, spec_artifact *a)
{
	bool primary = a->identifier == NULL;
	const spec_pair *files = NULL, *secondary = NULL;
	spec_map m;

	a->pos = spec_key_pos(p);
	spec_map_get(c, p->val, path, &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		char *kpath = cbl_xasprintf("%s.%s", path, e->disp);
		if (spec_name_is(e, "files")) {
			files = e;
			spec_get_strlist(c, e, kpath, SPEC_LIST_SCALAR_OK | SPEC_LIST_NULL_ERROR, &a->files);
		} else if (spec_name_is(e, "name")) {
			if (spec_get_str(c, e, kpath, &a->name) && !strpbrk(a->name, "$`") &&
			    spec_artifact_name_escapes(a->name))
				spec_warn(c, spec_node_pos(e->val),
					  "%s '%s' leads outside the artifacts directory: a local run keeps the "
					  "artifact under its default name only",
					  kpath, a->name);
		} else if (spec_name_is(e, "discard-paths")) {
			spec_get_bool(c, e, kpath, &a->discard_paths);
		} else if (spec_name_is(e, "base-directory")) {
			spec_get_str(c, e, kpath, &a->base_directory);
		} else if (spec_name_is(e, "exclude-paths")) {
			spec_get_strlist(c, e, kpath, SPEC_LIST_SCALAR_OK, &a->exclude_paths);
		} else if (spec_name_is(e, "enable-symlinks")) {
			spec_get_bool(c, e, kpath, &a->enable_symlinks);
		} else if (spec_name_is(e, "s3-prefix")) {
			spec_get_str(c, e, kpath, &a->s3_prefix);
		} else if (spec_name_is(e, "type")) {
			if (spec_get_str(c, e, kpath, &a->type) && c->bs->version == SPEC_VERSION_0_2)
				spec_warn(c, spec_key_pos(e), "%s is a version 0.1 key; version 0.2 ignores it", kpath);
		} else if (primary && spec_name_is(e, "secondary-artifacts")) {
			secondary = e;
			walk_secondary(c, e);
		} else {
			spec_unknown_key(c, e, path, artifact_keys);
		}
		free(kpath);
	}
	if (!files) {
		/* the service finds this only at UPLOAD_ARTIFACTS (§5.3): a run
		 * fails that phase, validate says it up front */
		if (primary && secondary && c->upload_time)
			c->bs->artifacts.primary_files_missing = true;
		else if (primary && secondary)
			spec_err(c, a->pos, "artifacts.files is required, even when only secondary-artifacts are defined");
		else if (primary && a->type && !strcasecmp(a->type, "NO_ARTIFACTS"))
			spec_warn(c, a->pos, "artifacts has no 'files' (type: NO_ARTIFACTS); nothing is uploaded");
		else
			spec_err(c, a->pos, "%s.files is required", path);
	}
	spec_map_release(&m);
}

static void walk_secondary(spec_ctx *c, const spec_pair *p)
{
	spec_artifacts *arts = &c->bs->artifacts;
	spec_map m;
	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "artifacts.secondary-artifacts is empty (null)");
		return;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p),
			 "artifacts.secondary-artifacts must be a mapping of artifact identifiers, not %s",
			 spec_kind(p->val));
		return;
	}
	spec_map_get(c, p->val, "artifacts.secondary-artifacts", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		char *path = cbl_xasprintf("artifacts.secondary-artifacts.%s", e->disp);
		if (!spec_is_map(e->val)) {
			spec_err(c, spec_key_pos(e), "%s must be a mapping (with files:), not %s", path,
				 spec_kind(e->val));
		} else {
			char *id = spec_scalar_dup(c, e->key, path, false);
			if (id && !spec_identifier_valid(id)) {
				/* it names the artifact's file or directory: never a path */
				spec_err(c, spec_key_pos(e),
					 "artifact identifier '%s' is not valid (1-127 letters, digits, '-' or '_'; "
					 "an identifier is a name, never a path)",
					 e->disp);
				free(id);
				id = NULL;
			}
			if (id) {
				SPEC_PUSH(arts->secondary, arts->nsecondary);
				spec_artifact *a = &arts->secondary[arts->nsecondary++];
				memset(a, 0, sizeof(*a));
				a->identifier = id;
				walk_artifact(c, e, path, a);
			}
		}
		free(path);
	}
	spec_map_release(&m);
}

void spec_walk_artifacts(spec_ctx *c, const spec_pair *p)
{
	spec_artifacts *arts = &c->bs->artifacts;
	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "artifacts is empty (null); nothing is uploaded");
		return;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "artifacts must be a mapping (with files:), not %s", spec_kind(p->val));
		return;
	}
	if (arts->present) /* a duplicate key already replaced the value; never twice */
		return;
	arts->present = true;
	walk_artifact(c, p, "artifacts", &arts->primary);
}

/* reports --------------------------------------------------------------------------- */

static const char *const report_keys[] = {"files", "base-directory", "discard-paths", "file-format", NULL};

static void walk_report(spec_ctx *c, const spec_pair *p, const char *path, spec_report *r)
{
	bool files = false;
	spec_map m;
	spec_map_get(c, p->val, path, &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		char *kpath = cbl_xasprintf("%s.%s", path, e->disp);
		if (spec_name_is(e, "files")) {
			files = true;
			spec_get_strlist(c, e, kpath, SPEC_LIST_SCALAR_OK | SPEC_LIST_NULL_ERROR, &r->files);
		} else if (spec_name_is(e, "base-directory")) {
			spec_get_str(c, e, kpath, &r->base_directory);
		} else if (spec_name_is(e, "discard-paths")) {
			spec_get_bool(c, e, kpath, &r->discard_paths);
		} else if (spec_name_is(e, "file-format")) {
			const yaml_node_t *v = e->val;
			if (!spec_is_scalar(v)) {
				spec_err(c, spec_key_pos(e), "%s must be a string, not %s", kpath, spec_kind(v));
			} else {
				const char *s = (const char *)v->data.scalar.value;
				if (strlen(s) != v->data.scalar.length || !spec_report_format_parse(s, &r->format)) {
					char *d = spec_disp(s, v->data.scalar.length);
					spec_err(c, spec_node_pos(v),
						 "%s '%s' is not valid (expected one of CUCUMBERJSON, JUNITXML, NUNITXML, NUNIT3XML, TESTNGXML, VISUALSTUDIOTRX, CLOVERXML, COBERTURAXML, JACOCOXML, SIMPLECOV)",
						 kpath, d);
					free(d);
				}
			}
		} else {
			spec_unknown_key(c, e, path, report_keys);
		}
		free(kpath);
	}
	if (!files)
		spec_err(c, spec_key_pos(p), "%s.files is required", path);
	spec_map_release(&m);
}

void spec_walk_reports(spec_ctx *c, const spec_pair *p)
{
	spec_buildspec *bs = c->bs;
	spec_map m;
	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "reports is empty (null)");
		return;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "reports must be a mapping of report group names, not %s",
			 spec_kind(p->val));
		return;
	}
	if (bs->nreports) /* never twice */
		return;
	spec_map_get(c, p->val, "reports", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		char *path = cbl_xasprintf("reports.%s", e->disp);
		if (!spec_is_map(e->val)) {
			spec_err(c, spec_key_pos(e), "%s must be a mapping (with files:), not %s", path,
				 spec_kind(e->val));
		} else {
			char *group = spec_scalar_dup(c, e->key, path, false);
			/* with $VARS it is checked once expanded (runner/upload.c) */
			if (group && !strpbrk(group, "$`") && !spec_report_group_valid(group)) {
				spec_err(c, spec_key_pos(e),
					 "report group '%s' is not a valid report group name or ARN (1-128 "
					 "letters, digits, '-' or '_')",
					 e->disp);
				free(group);
				group = NULL;
			}
			if (group) {
				SPEC_PUSH(bs->reports, bs->nreports);
				spec_report *r = &bs->reports[bs->nreports++];
				memset(r, 0, sizeof(*r));
				r->group = group;
				r->pos = spec_key_pos(e);
				r->format = SPEC_REPORT_JUNITXML;
				walk_report(c, e, path, r);
			}
		}
		free(path);
	}
	if (bs->nreports > 5)
		spec_warn(c, spec_key_pos(p), "reports names %zu report groups; CodeBuild allows at most 5 per project",
			  bs->nreports);
	spec_map_release(&m);
}

/* cache ------------------------------------------------------------------------------ */

void spec_walk_cache(spec_ctx *c, const spec_pair *p)
{
	static const char *const keys[] = {"paths", "key", "fallback-keys", "action", NULL};
	spec_cache *cache = &c->bs->cache;
	const spec_pair *paths = NULL, *fallback = NULL;
	spec_map m;

	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "cache is empty (null); nothing is cached");
		return;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "cache must be a mapping (with paths:), not %s", spec_kind(p->val));
		return;
	}
	if (cache->present)
		return;
	cache->present = true;
	cache->pos = spec_key_pos(p);
	spec_map_get(c, p->val, "cache", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		if (spec_name_is(e, "paths")) {
			paths = e;
			spec_get_strlist(c, e, "cache.paths", SPEC_LIST_SCALAR_OK, &cache->paths);
		} else if (spec_name_is(e, "key")) {
			spec_get_str(c, e, "cache.key", &cache->key);
		} else if (spec_name_is(e, "fallback-keys")) {
			fallback = e;
			spec_get_strlist(c, e, "cache.fallback-keys", SPEC_LIST_SCALAR_OK, &cache->fallback_keys);
			if (cache->fallback_keys.n > 5)
				spec_err(c, spec_key_pos(e), "cache.fallback-keys has %zu entries; at most 5 are allowed",
					 cache->fallback_keys.n);
		} else if (spec_name_is(e, "action")) {
			const yaml_node_t *v = e->val;
			if (!spec_is_scalar(v)) {
				spec_err(c, spec_key_pos(e), "cache.action must be restore or save, not %s", spec_kind(v));
			} else {
				const char *s = (const char *)v->data.scalar.value;
				if (!strcasecmp(s, "restore")) {
					cache->action = SPEC_CACHE_ACTION_RESTORE;
				} else if (!strcasecmp(s, "save")) {
					cache->action = SPEC_CACHE_ACTION_SAVE;
				} else {
					char *d = spec_disp(s, v->data.scalar.length);
					spec_err(c, spec_node_pos(v), "cache.action '%s' is not valid (expected restore or save)",
						 d);
					free(d);
				}
			}
		} else {
			spec_unknown_key(c, e, "cache", keys);
		}
	}
	if (!paths)
		spec_err(c, cache->pos, "cache.paths is required");
	if (fallback && !cache->key)
		spec_warn(c, spec_key_pos(fallback), "cache.fallback-keys is ignored without cache.key");
	spec_map_release(&m);
}

/* batch ------------------------------------------------------------------------------ */

static void walk_batch_env(spec_ctx *c, const spec_pair *p, const char *path, spec_batch_env *env)
{
	static const char *const keys[] = {"compute-type", "image", "privileged-mode", "type", "variables", NULL};
	spec_map m;
	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "%s is empty (null)", path);
		return;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "%s must be a mapping, not %s", path, spec_kind(p->val));
		return;
	}
	spec_map_get(c, p->val, path, &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		char *kpath = cbl_xasprintf("%s.%s", path, e->disp);
		if (spec_name_is(e, "compute-type"))
			spec_get_str(c, e, kpath, &env->compute_type);
		else if (spec_name_is(e, "image"))
			spec_get_str(c, e, kpath, &env->image);
		else if (spec_name_is(e, "privileged-mode"))
			spec_get_bool(c, e, kpath, &env->privileged_mode);
		else if (spec_name_is(e, "type"))
			spec_get_str(c, e, kpath, &env->type);
		else if (spec_name_is(e, "variables"))
			spec_get_kvlist(c, e, kpath, &env->variables, NULL);
		else
			spec_unknown_key(c, e, path, keys);
		free(kpath);
	}
	spec_map_release(&m);
}

static void walk_tasks(spec_ctx *c, const spec_pair *p, spec_batch_kind kind)
{
	static const char *const keys[] = {"identifier", "buildspec", "debug-session", "env", "ignore-failure",
					   "depend-on", NULL};
	spec_batch *b = &c->bs->batch;
	const char *path = kind == SPEC_BATCH_GRAPH ? "batch.build-graph" : "batch.build-list";
	yaml_node_t *v = p->val;

	if (!spec_is_seq(v)) {
		spec_err(c, spec_key_pos(p), "%s must be a list of builds, not %s", path, spec_kind(v));
		return;
	}
	if (b->ntasks) /* a second list type: already an error */
		return;
	size_t idx = 0;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++, idx++) {
		yaml_node_t *item = spec_node_at(c, *it);
		char *ipath = cbl_xasprintf("%s[%zu]", path, idx);
		spec_map m = {0};
		if (!item) {
			free(ipath);
			continue;
		}
		if (!spec_is_map(item)) {
			spec_err(c, spec_node_pos(item), "%s must be a mapping with an identifier, not %s", ipath,
				 spec_kind(item));
			free(ipath);
			continue;
		}
		SPEC_PUSH(b->tasks, b->ntasks);
		spec_batch_task *t = &b->tasks[b->ntasks++];
		memset(t, 0, sizeof(*t));
		t->pos = spec_node_pos(item);
		spec_map_get(c, item, ipath, &m);
		for (size_t i = 0; i < m.n; i++) {
			const spec_pair *e = &m.p[i];
			char *kpath = cbl_xasprintf("%s.%s", ipath, e->disp);
			if (spec_name_is(e, "identifier")) {
				spec_get_str(c, e, kpath, &t->identifier);
			} else if (spec_name_is(e, "buildspec")) {
				spec_get_str(c, e, kpath, &t->buildspec);
			} else if (spec_name_is(e, "debug-session")) {
				spec_get_bool(c, e, kpath, &t->debug_session);
			} else if (spec_name_is(e, "ignore-failure")) {
				spec_get_bool(c, e, kpath, &t->ignore_failure);
			} else if (spec_name_is(e, "env")) {
				walk_batch_env(c, e, kpath, &t->env);
			} else if (spec_name_is(e, "depend-on")) {
				if (kind != SPEC_BATCH_GRAPH)
					spec_warn(c, spec_key_pos(e),
						  "%s: depend-on is only used in build-graph; build-list ignores it", ipath);
				spec_get_strlist(c, e, kpath, SPEC_LIST_SCALAR_OK, &t->depend_on);
			} else {
				spec_unknown_key(c, e, ipath, keys);
			}
			free(kpath);
		}
		if (!t->identifier)
			spec_err(c, t->pos, "%s has no identifier (required)", ipath);
		spec_map_release(&m);
		free(ipath);
	}
	spec_batch_check_tasks(c, b, path, kind == SPEC_BATCH_GRAPH);
}

static void walk_matrix_dynamic_env(spec_ctx *c, const spec_pair *p)
{
	static const char *const keys[] = {"compute-type", "image", "variables", NULL};
	const char *path = "batch.build-matrix.dynamic.env";
	spec_batch *b = &c->bs->batch;
	spec_map m;
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "%s must be a mapping, not %s", path, spec_kind(p->val));
		return;
	}
	spec_map_get(c, p->val, path, &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		char *kpath = cbl_xasprintf("%s.%s", path, e->disp);
		if (spec_name_is(e, "compute-type")) {
			spec_get_strlist(c, e, kpath, SPEC_LIST_SCALAR_OK, &b->matrix_compute_types);
		} else if (spec_name_is(e, "image")) {
			spec_get_strlist(c, e, kpath, SPEC_LIST_SCALAR_OK, &b->matrix_images);
		} else if (spec_name_is(e, "variables")) {
			spec_map vm;
			if (!spec_is_map(e->val)) {
				spec_err(c, spec_key_pos(e), "%s must be a mapping of NAME: [values], not %s", kpath,
					 spec_kind(e->val));
				free(kpath);
				continue;
			}
			spec_map_get(c, e->val, kpath, &vm);
			for (size_t j = 0; j < vm.n; j++) {
				const spec_pair *ve = &vm.p[j];
				char *vpath = cbl_xasprintf("%s.%s", kpath, ve->disp);
				char *name = spec_scalar_dup(c, ve->key, vpath, false);
				if (name) {
					SPEC_PUSH(b->matrix_vars, b->nmatrix_vars);
					spec_batch_matrix_var *mv = &b->matrix_vars[b->nmatrix_vars++];
					memset(mv, 0, sizeof(*mv));
					mv->name = name;
					spec_get_strlist(c, ve, vpath, SPEC_LIST_SCALAR_OK, &mv->values);
				}
				free(vpath);
			}
			spec_map_release(&vm);
		} else {
			spec_unknown_key(c, e, path, keys);
		}
		free(kpath);
	}
	spec_map_release(&m);
}

static void walk_matrix(spec_ctx *c, const spec_pair *p)
{
	static const char *const keys[] = {"static", "dynamic", NULL};
	static const char *const static_keys[] = {"ignore-failure", "env", NULL};
	static const char *const dynamic_keys[] = {"buildspec", "env", NULL};
	spec_batch *b = &c->bs->batch;
	spec_map m;
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "batch.build-matrix must be a mapping (static:, dynamic:), not %s",
			 spec_kind(p->val));
		return;
	}
	spec_map_get(c, p->val, "batch.build-matrix", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		bool is_static = spec_name_is(e, "static");
		if (!is_static && !spec_name_is(e, "dynamic")) {
			spec_unknown_key(c, e, "batch.build-matrix", keys);
			continue;
		}
		const char *path = is_static ? "batch.build-matrix.static" : "batch.build-matrix.dynamic";
		if (!spec_is_map(e->val)) {
			spec_err(c, spec_key_pos(e), "%s must be a mapping, not %s", path, spec_kind(e->val));
			continue;
		}
		spec_map sm;
		spec_map_get(c, e->val, path, &sm);
		for (size_t j = 0; j < sm.n; j++) {
			const spec_pair *s = &sm.p[j];
			char *kpath = cbl_xasprintf("%s.%s", path, s->disp);
			if (is_static && spec_name_is(s, "ignore-failure"))
				spec_get_bool(c, s, kpath, &b->matrix_ignore_failure);
			else if (is_static && spec_name_is(s, "env"))
				walk_batch_env(c, s, kpath, &b->matrix_static_env);
			else if (!is_static && spec_name_is(s, "buildspec"))
				spec_get_strlist(c, s, kpath, SPEC_LIST_SCALAR_OK, &b->matrix_buildspecs);
			else if (!is_static && spec_name_is(s, "env"))
				walk_matrix_dynamic_env(c, s);
			else
				spec_unknown_key(c, s, path, is_static ? static_keys : dynamic_keys);
			free(kpath);
		}
		spec_map_release(&sm);
	}
	spec_map_release(&m);
}

static void walk_fanout(spec_ctx *c, const spec_pair *p)
{
	static const char *const keys[] = {"parallelism", "ignore-failure", NULL};
	spec_batch *b = &c->bs->batch;
	bool have_parallelism = false;
	spec_map m;
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "batch.build-fanout must be a mapping (parallelism:), not %s",
			 spec_kind(p->val));
		return;
	}
	spec_map_get(c, p->val, "batch.build-fanout", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		if (spec_name_is(e, "parallelism")) {
			have_parallelism = true;
			const yaml_node_t *v = e->val;
			if (!spec_is_scalar(v)) {
				spec_err(c, spec_key_pos(e), "batch.build-fanout.parallelism must be an integer, not %s",
					 spec_kind(v));
				continue;
			}
			const char *s = (const char *)v->data.scalar.value;
			size_t len = v->data.scalar.length;
			long n = 0;
			bool ok = len > 0 && len <= 9 && strspn(s, "0123456789") == len;
			for (size_t k = 0; ok && k < len; k++)
				n = n * 10 + (s[k] - '0');
			if (!ok || n < 1) {
				char *d = spec_disp(s, len);
				spec_err(c, spec_node_pos(v),
					 "batch.build-fanout.parallelism must be an integer of at least 1, not '%s'", d);
				free(d);
				continue;
			}
			b->fanout_parallelism = (int)n;
		} else if (spec_name_is(e, "ignore-failure")) {
			spec_get_bool(c, e, "batch.build-fanout.ignore-failure", &b->fanout_ignore_failure);
		} else {
			spec_unknown_key(c, e, "batch.build-fanout", keys);
		}
	}
	if (!have_parallelism)
		spec_err(c, spec_key_pos(p), "batch.build-fanout.parallelism is required");
	spec_map_release(&m);
}

void spec_walk_batch(spec_ctx *c, const spec_pair *p)
{
	static const char *const keys[] = {"fast-fail", "build-list", "build-graph", "build-matrix", "build-fanout",
					   NULL};
	spec_batch *b = &c->bs->batch;
	const char *kinds[4];
	size_t nkinds = 0;
	spec_map m;

	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "batch is empty (null)");
		return;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "batch must be a mapping, not %s", spec_kind(p->val));
		return;
	}
	if (b->present)
		return;
	b->present = true;
	b->pos = spec_key_pos(p);
	spec_map_get(c, p->val, "batch", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		spec_batch_kind kind = SPEC_BATCH_NONE;
		if (spec_name_is(e, "fast-fail")) {
			spec_get_bool(c, e, "batch.fast-fail", &b->fast_fail);
			continue;
		} else if (spec_name_is(e, "build-list")) {
			kind = SPEC_BATCH_LIST;
		} else if (spec_name_is(e, "build-graph")) {
			kind = SPEC_BATCH_GRAPH;
		} else if (spec_name_is(e, "build-matrix")) {
			kind = SPEC_BATCH_MATRIX;
		} else if (spec_name_is(e, "build-fanout")) {
			kind = SPEC_BATCH_FANOUT;
		} else {
			spec_unknown_key(c, e, "batch", keys);
			continue;
		}
		kinds[nkinds++] = keys[kind];
		if (nkinds > 1)
			continue; /* reported below; the first one is the batch */
		b->kind = kind;
		if (kind == SPEC_BATCH_LIST || kind == SPEC_BATCH_GRAPH)
			walk_tasks(c, e, kind);
		else if (kind == SPEC_BATCH_MATRIX)
			walk_matrix(c, e);
		else
			walk_fanout(c, e);
	}
	if (nkinds > 1)
		spec_err(c, b->pos,
			 "batch declares more than one build type (%s and %s); use exactly one of build-list, build-graph, build-matrix or build-fanout",
			 kinds[0], kinds[1]);
	else if (nkinds == 0)
		spec_warn(c, b->pos, "batch declares none of build-list, build-graph, build-matrix or build-fanout");
	spec_map_release(&m);
}
