/* cache/explain.c - what a session did, as log lines (one per base and
 * stage) and as the explain record `codebuild-local cache explain` prints. */
#include "cache/cache_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static const char *kind_name(cache_kind k)
{
	return k == CACHE_KIND_MOUNT ? "overlay" : k == CACHE_KIND_COPY ? "copy" : "skipped";
}

static const char *rres_name(cache_restore_result r)
{
	switch (r) {
	case CACHE_R_HIT: return "hit";
	case CACHE_R_FALLBACK: return "fallback";
	case CACHE_R_MISS: return "miss";
	case CACHE_R_SKIPPED: return "skipped";
	case CACHE_R_FAILED: return "failed";
	default: return "not run";
	}
}

static const char *sres_name(cache_save_result r)
{
	switch (r) {
	case CACHE_S_SAVED: return "saved";
	case CACHE_S_SKIPPED: return "skipped";
	case CACHE_S_FAILED: return "failed";
	default: return "not run";
	}
}

static void ms(cbl_buf *b, int64_t us)
{
	cbl_buf_printf(b, "%lld ms", (long long)((us + 500) / 1000));
}

static void keys_tried(const cache_session *s, cbl_buf *b)
{
	if (!s->key) {
		cbl_buf_puts(b, "no cached entry for this project and paths");
		return;
	}
	cbl_buf_printf(b, "key %s", s->key);
	if (s->fallback.n) {
		cbl_buf_puts(b, "; fallback keys ");
		for (size_t i = 0; i < s->fallback.n; i++)
			cbl_buf_printf(b, "%s%s", i ? ", " : "", s->fallback.v[i]);
	}
}

void cache_session_log_lines(const cache_session *s, cache_stage stage, cbl_strv *out)
{
	for (size_t i = 0; i < s->nbases; i++) {
		const cache_base *b = &s->bases[i];
		const cache_base_state *st = &s->st[i];
		cbl_buf l = CBL_BUF_INIT;
		cbl_buf_printf(&l, "Cache %s %s: ", stage == CACHE_STAGE_RESTORE ? "restore" : "save",
			       st->paths_joined);
		if (b->kind == CACHE_KIND_SKIP) {
			cbl_buf_printf(&l, "skipped: %s", b->skip_reason);
		} else if (stage == CACHE_STAGE_RESTORE) {
			switch (s->rres) {
			case CACHE_R_NONE:
				cbl_buf_puts(&l, "not run");
				break;
			case CACHE_R_SKIPPED:
				cbl_buf_puts(&l, "skipped (action: save)");
				break;
			case CACHE_R_FAILED:
				cbl_buf_printf(&l, "failed: %s", s->restore_error ? s->restore_error : "?");
				break;
			case CACHE_R_MISS:
				cbl_buf_puts(&l, "miss (");
				keys_tried(s, &l);
				cbl_buf_putc(&l, ')');
				break;
			case CACHE_R_HIT:
			case CACHE_R_FALLBACK:
				if (!st->lower_rel) {
					cbl_buf_puts(&l, "nothing cached for this path in the entry found");
					break;
				}
				if (s->rres == CACHE_R_FALLBACK)
					cbl_buf_printf(&l, "restored from fallback key %s", s->hit_key);
				else if (s->hit_key)
					cbl_buf_printf(&l, "hit on key %s", s->hit_key);
				else
					cbl_buf_puts(&l, "restored");
				cbl_buf_printf(&l, " (%llu files, ", (unsigned long long)st->restored_files);
				cache_format_size(&l, st->restored_bytes);
				cbl_buf_printf(&l, ", %s, ", kind_name(b->kind));
				ms(&l, b->kind == CACHE_KIND_COPY ? st->restore_us : s->restore_us);
				cbl_buf_putc(&l, ')');
				break;
			}
		} else {
			switch (s->sres) {
			case CACHE_S_NONE:
				cbl_buf_puts(&l, "not run");
				break;
			case CACHE_S_SKIPPED:
				cbl_buf_printf(&l, "not saved: %s", s->save_reason);
				break;
			case CACHE_S_FAILED:
				cbl_buf_printf(&l, "failed: %s", s->save_error ? s->save_error : "?");
				break;
			case CACHE_S_SAVED:
				if (s->key)
					cbl_buf_printf(&l, "saved under key %s", s->key);
				else
					cbl_buf_puts(&l, "saved");
				if (s->changed || st->saved_files) {
					cbl_buf_printf(&l, " (%llu files, ", (unsigned long long)st->saved_files);
					cache_format_size(&l, st->saved_bytes);
					cbl_buf_printf(&l, ", %llu new or changed, ", (unsigned long long)st->changed);
				} else {
					cbl_buf_printf(&l, " (same content as key %s, ", s->hit_key ? s->hit_key : "?");
				}
				ms(&l, s->save_us);
				cbl_buf_putc(&l, ')');
				break;
			}
		}
		cbl_strv_push_take(out, cbl_buf_detach(&l));
	}
}

static json_t *jms(int64_t us)
{
	return json_integer((json_int_t)((us + 500) / 1000));
}

int cache_explain_write(const cache_session *s, const char *project, cbl_error **err)
{
	if (!project || !*project || strchr(project, '/') || project[0] == '.')
		return cbl_error_set(err, CBL_EINVAL, "cache explain: invalid project name '%s'",
				     project ? project : "");
	json_t *j = json_object(), *fb = json_array(), *paths = json_array();
	char iso[32];
	cbl_format_iso_time(iso, cbl_now_us());
	json_object_set_new(j, "format", json_integer(CACHE_FORMAT));
	json_object_set_new(j, "project", json_string(project));
	json_object_set_new(j, "build", cbl_json_string_or_null(s->build_id));
	json_object_set_new(j, "time", json_string(iso));
	json_object_set_new(j, "scope", json_string(s->scope));
	json_object_set_new(j, "version", json_string(s->version));
	json_object_set_new(j, "key", cbl_json_string_or_null(s->key));
	for (size_t i = 0; i < s->fallback.n; i++)
		json_array_append_new(fb, json_string(s->fallback.v[i]));
	json_object_set_new(j, "fallback_keys", fb);
	json_object_set_new(j, "action", json_string(s->action == SPEC_CACHE_ACTION_RESTORE ? "restore"
						     : s->action == SPEC_CACHE_ACTION_SAVE  ? "save"
											    : "restore and save"));
	json_object_set_new(j, "sandbox", json_boolean(s->sandbox));
	json_t *r = json_object();
	json_object_set_new(r, "result", json_string(rres_name(s->rres)));
	json_object_set_new(r, "matched_key", cbl_json_string_or_null(s->hit_object ? s->hit_key : NULL));
	json_object_set_new(r, "object", cbl_json_string_or_null(s->hit_object));
	json_object_set_new(r, "ms", jms(s->restore_us));
	json_object_set_new(r, "error", cbl_json_string_or_null(s->restore_error));
	json_object_set_new(j, "restore", r);
	json_t *sv = json_object();
	json_object_set_new(sv, "result", json_string(sres_name(s->sres)));
	json_object_set_new(sv, "reason", cbl_json_string_or_null(s->save_reason));
	json_object_set_new(sv, "error", cbl_json_string_or_null(s->save_error));
	json_object_set_new(sv, "object", cbl_json_string_or_null(s->saved_object));
	json_object_set_new(sv, "ms", jms(s->save_us));
	json_object_set_new(sv, "changed_files", json_integer((json_int_t)s->changed));
	json_object_set_new(j, "save", sv);
	for (size_t i = 0; i < s->nbases; i++) {
		const cache_base *b = &s->bases[i];
		const cache_base_state *st = &s->st[i];
		json_t *p = json_object(), *shown = json_array();
		for (size_t k = 0; k < b->shown.n; k++)
			json_array_append_new(shown, json_string(b->shown.v[k]));
		json_object_set_new(p, "paths", shown);
		json_object_set_new(p, "base", json_string(b->base));
		json_object_set_new(p, "target", cbl_json_string_or_null(b->inner));
		json_object_set_new(p, "mode", json_string(kind_name(b->kind)));
		if (b->kind == CACHE_KIND_SKIP)
			json_object_set_new(p, "skipped", json_string(b->skip_reason));
		json_object_set_new(p, "restored", json_boolean(st->lower_rel != NULL));
		json_object_set_new(p, "restored_files", json_integer((json_int_t)st->restored_files));
		json_object_set_new(p, "restored_bytes", json_integer((json_int_t)st->restored_bytes));
		json_object_set_new(p, "restore_ms", jms(b->kind == CACHE_KIND_COPY ? st->restore_us : s->restore_us));
		json_object_set_new(p, "saved_files", json_integer((json_int_t)st->saved_files));
		json_object_set_new(p, "saved_bytes", json_integer((json_int_t)st->saved_bytes));
		json_object_set_new(p, "changed_files", json_integer((json_int_t)st->changed));
		json_array_append_new(paths, p);
	}
	json_object_set_new(j, "paths", paths);
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	char *dir = cbl_path_join(s->store->dir, "explain");
	char *name = cbl_xasprintf("%s.json", project);
	int rc = cbl_mkdir_p(dir, 0755, err);
	if (!rc)
		rc = cache_write_durable(dir, name, text, strlen(text), err);
	free(dir);
	free(name);
	free(text);
	return rc;
}

int cache_explain_load(cache_store *s, const char *project, json_t **out, cbl_error **err)
{
	if (!project || !*project || strchr(project, '/') || project[0] == '.')
		return cbl_error_set(err, CBL_EINVAL, "invalid project name '%s'", project ? project : "");
	char *p = cbl_xasprintf("%s/explain/%s.json", s->dir, project);
	char *text = NULL;
	size_t len = 0;
	int rc = cbl_read_regular_file(p, 16u << 20, &text, &len, NULL);
	if (rc < 0) {
		rc = cbl_error_set(err, CBL_ENOENT, "no build of project '%s' has used the cache in %s", project,
				   s->dir);
		goto out;
	}
	json_error_t je;
	*out = json_loadb(text, len, 0, &je);
	if (!*out)
		rc = cbl_error_set(err, CBL_EINVAL, "%s: %s", p, je.text);
out:
	free(p);
	free(text);
	return rc;
}

static unsigned long long gi(const json_t *o, const char *k)
{
	return (unsigned long long)json_integer_value(json_object_get(o, k));
}

void cache_explain_format(const json_t *j, cbl_buf *b)
{
	const json_t *r = json_object_get(j, "restore"), *sv = json_object_get(j, "save");
	cbl_buf_printf(b, "Project:        %s\n", cbl_json_str(j, "project") ? cbl_json_str(j, "project") : "?");
	cbl_buf_printf(b, "Build:          %s (%s)\n", cbl_json_str(j, "build") ? cbl_json_str(j, "build") : "?",
		       cbl_json_str(j, "time") ? cbl_json_str(j, "time") : "?");
	cbl_buf_printf(b, "Cache scope:    %s, version %.12s\n", cbl_json_str(j, "scope") ? cbl_json_str(j, "scope") : "?",
		       cbl_json_str(j, "version") ? cbl_json_str(j, "version") : "?");
	cbl_buf_printf(b, "Key:            %s\n", cbl_json_str(j, "key") ? cbl_json_str(j, "key") : "(none: the rolling entry)");
	const json_t *fb = json_object_get(j, "fallback_keys");
	if (json_array_size(fb)) {
		cbl_buf_puts(b, "Fallback keys:  ");
		size_t i;
		json_t *v;
		json_array_foreach(fb, i, v)
			cbl_buf_printf(b, "%s%s", i ? ", " : "", json_string_value(v));
		cbl_buf_putc(b, '\n');
	}
	cbl_buf_printf(b, "Action:         %s%s\n", cbl_json_str(j, "action") ? cbl_json_str(j, "action") : "?",
		       json_is_true(json_object_get(j, "sandbox")) ? "" : " (no sandbox: copies)");
	const char *rr = cbl_json_str(r, "result") ? cbl_json_str(r, "result") : "?";
	cbl_buf_printf(b, "Restore:        %s", rr);
	if (!strcmp(rr, "hit") || !strcmp(rr, "fallback"))
		cbl_buf_printf(b, " on key %s, object %.12s",
			       cbl_json_str(r, "matched_key") ? cbl_json_str(r, "matched_key") : "(rolling)",
			       cbl_json_str(r, "object") ? cbl_json_str(r, "object") : "?");
	if (cbl_json_str(r, "error"))
		cbl_buf_printf(b, ": %s", cbl_json_str(r, "error"));
	cbl_buf_printf(b, " (%llu ms)\n", gi(r, "ms"));
	const char *sr = cbl_json_str(sv, "result") ? cbl_json_str(sv, "result") : "?";
	cbl_buf_printf(b, "Save:           %s", sr);
	if (cbl_json_str(sv, "reason"))
		cbl_buf_printf(b, ": %s", cbl_json_str(sv, "reason"));
	if (cbl_json_str(sv, "error"))
		cbl_buf_printf(b, ": %s", cbl_json_str(sv, "error"));
	if (cbl_json_str(sv, "object") && !strcmp(sr, "saved"))
		cbl_buf_printf(b, " as object %.12s, %llu new or changed files", cbl_json_str(sv, "object"),
			       gi(sv, "changed_files"));
	cbl_buf_printf(b, " (%llu ms)\n", gi(sv, "ms"));
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(j, "paths"), i, p) {
		cbl_buf_puts(b, "Path:           ");
		size_t k;
		json_t *v;
		json_array_foreach(json_object_get(p, "paths"), k, v)
			cbl_buf_printf(b, "%s%s", k ? ", " : "", json_string_value(v));
		cbl_buf_printf(b, " -> %s [%s]\n", cbl_json_str(p, "target") ? cbl_json_str(p, "target") : "?",
			       cbl_json_str(p, "mode") ? cbl_json_str(p, "mode") : "?");
		if (cbl_json_str(p, "skipped")) {
			cbl_buf_printf(b, "  skipped: %s\n", cbl_json_str(p, "skipped"));
			continue;
		}
		if (json_is_true(json_object_get(p, "restored"))) {
			cbl_buf_printf(b, "  restored %llu files, ", gi(p, "restored_files"));
			cache_format_size(b, gi(p, "restored_bytes"));
			cbl_buf_printf(b, " in %llu ms\n", gi(p, "restore_ms"));
		} else {
			cbl_buf_puts(b, "  restored nothing\n");
		}
		if (!strcmp(sr, "saved")) {
			cbl_buf_printf(b, "  saved %llu files, ", gi(p, "saved_files"));
			cache_format_size(b, gi(p, "saved_bytes"));
			cbl_buf_printf(b, " (%llu new or changed)\n", gi(p, "changed_files"));
		}
	}
}
