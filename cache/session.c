/* cache/session.c - one build's session: options, lookup (exact key,
 * fallback prefixes, the rolling entry) and restore (overlay mounts or
 * copies). */
#include "cache/cache_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/banned.h"

static bool scope_valid(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 255 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

static char *strip_slash(const char *p)
{
	size_t l = strlen(p);
	while (l > 1 && p[l - 1] == '/')
		l--;
	return cbl_xstrndup(p, l);
}

/* a is b or lies below it */
static bool path_within(const char *a, const char *b)
{
	size_t l = strlen(b);
	if (!strcmp(b, "/"))
		return a[0] == '/';
	return !strncmp(a, b, l) && (a[l] == '\0' || a[l] == '/');
}

/* Where each base lives for the build and for the runner, and how it is
 * restored. */
static int place_bases(cache_session *s, cbl_error **err)
{
	for (size_t i = 0; i < s->nbases; i++) {
		cache_base *b = &s->bases[i];
		bool abs = b->base[0] == '/';
		if (!abs && !s->src_dir)
			return cbl_error_set(err, CBL_EINVAL, "cache path '%s' is relative but there is no source "
							      "directory", b->shown.v[0]);
		const char *suffix = NULL; /* path below the source, when inside it */
		if (!abs) {
			b->inner = strcmp(b->base, ".") ? cbl_path_join(s->src_dir, b->base) : cbl_xstrdup(s->src_dir);
			suffix = strcmp(b->base, ".") ? b->base : "";
		} else {
			b->inner = cbl_xstrdup(b->base);
			if (s->src_dir && path_within(b->base, s->src_dir))
				suffix = b->base + strlen(s->src_dir) + (strcmp(s->src_dir, "/") ? 0 : -1);
			while (suffix && *suffix == '/')
				suffix++;
		}
		if (suffix) {
			b->host = *suffix ? cbl_path_join(s->src_view, suffix) : cbl_xstrdup(s->src_view);
			b->host_rel = cbl_xstrdup(suffix);
		}
		else if (!s->sandbox)
			b->host = cbl_xstrdup(b->base);
		if (!s->sandbox) {
			b->kind = CACHE_KIND_COPY;
		} else if (suffix && (!*suffix || s->copy_in_source)) {
			/* an overlay on the source directory itself would hide it */
			b->kind = CACHE_KIND_COPY;
		} else if (s->src_dir && path_within(s->src_dir, b->inner)) {
			b->kind = CACHE_KIND_SKIP;
			b->skip_reason = "a cache path above the source directory cannot be restored "
					 "without hiding the source";
		} else {
			b->kind = CACHE_KIND_MOUNT;
		}
	}
	return 0;
}

int cache_session_new(cache_session **out, cache_store *store, const cache_session_opts *o,
		      cbl_error **err)
{
	cache_session *s = cbl_xcalloc(1, sizeof(*s));
	int rc = 0;
	s->lockfd = -1;
	s->store = store;
	if (!o->scope || !scope_valid(o->scope)) {
		rc = cbl_error_set(err, CBL_EINVAL, "invalid cache scope '%s' (a project name or cache namespace: "
						    "letters, digits, '.', '_', '-')",
				   o->scope ? o->scope : "");
		goto out;
	}
	if (o->src_dir && o->src_dir[0] != '/') {
		rc = cbl_error_set(err, CBL_EINVAL, "cache: the source directory must be absolute ('%s')",
				   o->src_dir);
		goto out;
	}
	s->scope = cbl_xstrdup(o->scope);
	s->key = o->key && *o->key ? cbl_xstrdup(o->key) : NULL;
	s->build_id = o->build_id ? cbl_xstrdup(o->build_id) : NULL;
	s->src_dir = o->src_dir ? strip_slash(o->src_dir) : NULL;
	s->src_view = o->src_view ? strip_slash(o->src_view) : s->src_dir ? cbl_xstrdup(s->src_dir) : NULL;
	if (s->key)
		for (size_t i = 0; i < o->nfallback_keys; i++)
			if (o->fallback_keys[i] && *o->fallback_keys[i])
				cbl_strv_push(&s->fallback, o->fallback_keys[i]);
	s->action = o->action;
	s->sandbox = o->sandbox;
	s->copy_in_source = o->copy_in_source;
	s->durable = o->durable;
	s->hook = o->test_hook;
	s->hook_payload = o->test_payload;
	if ((rc = cache_parse_paths(o->paths, o->npaths, &s->bases, &s->nbases, s->version, err)) < 0)
		goto out;
	if ((rc = place_bases(s, err)) < 0)
		goto out;
	s->st = cbl_xcalloc(s->nbases, sizeof(*s->st));
	for (size_t i = 0; i < s->nbases; i++) {
		cbl_buf b = CBL_BUF_INIT;
		for (size_t k = 0; k < s->bases[i].shown.n; k++)
			cbl_buf_printf(&b, "%s%s", k ? ", " : "", s->bases[i].shown.v[k]);
		s->st[i].paths_joined = cbl_buf_detach(&b);
	}
	s->refdir = cbl_xasprintf("%s/%s/%s", store->refs, s->scope, s->version);
	if ((rc = cache_tmp_create(store, &s->dir, &s->lockfd, err)) < 0)
		goto out;
	*out = s;
	s = NULL;
out:
	cache_session_free(s);
	return rc;
}

const char *cache_session_version(const cache_session *s)
{
	return s->version;
}

const cache_mount *cache_session_mounts(const cache_session *s, size_t *n)
{
	*n = s->nmounts;
	return s->nmounts ? s->mounts : NULL;
}

void cache_session_free(cache_session *s)
{
	if (!s)
		return;
	if (s->dir)
		cbl_rm_rf(s->dir, NULL);
	if (s->lockfd >= 0)
		close(s->lockfd);
	/* the snapshot this session restored may have just lost its last
	 * ref (a rolling entry replaced): collect it now that we let go */
	if (s->sres == CACHE_S_SAVED && s->hit_object)
		cache_gc(s->store, true, NULL, NULL, NULL);
	for (size_t i = 0; s->st && i < s->nbases; i++) {
		free(s->st[i].lower_rel);
		free(s->st[i].upper);
		free(s->st[i].work);
		free(s->st[i].lower);
		free(s->st[i].paths_joined);
	}
	free(s->st);
	cache_bases_free(s->bases, s->nbases);
	free(s->scope);
	free(s->key);
	free(s->build_id);
	free(s->src_dir);
	free(s->src_view);
	cbl_strv_release(&s->fallback);
	free(s->dir);
	free(s->refdir);
	free(s->hit_key);
	free(s->hit_object);
	free(s->restore_error);
	free(s->mounts);
	free(s->save_reason);
	free(s->save_error);
	free(s->saved_object);
	free(s);
}

/* ---------------------------------------------------------------- lookup */

static bool object_present(cache_session *s, const char *hex)
{
	char *p = cbl_xasprintf("%s/manifest.json", hex);
	bool ok = faccessat(s->store->objects_fd, p, R_OK, AT_SYMLINK_NOFOLLOW) == 0;
	free(p);
	return ok;
}

/* Sets hit_object / hit_key / rres; takes the ref's path on a hit. */
static int lookup(cache_session *s, char **ref_path, cbl_error **err)
{
	cache_ref r;
	char *name = cache_ref_name(s->key);
	char *path = cbl_path_join(s->refdir, name);
	free(name);
	if (cache_ref_read(path, &r, NULL) == 0) {
		if (object_present(s, r.object)) {
			s->rres = CACHE_R_HIT;
			s->hit_object = r.object;
			s->hit_key = r.key;
			r.object = r.key = NULL;
			*ref_path = path;
			path = NULL;
		}
		cache_ref_release(&r);
	}
	free(path);
	if (s->rres == CACHE_R_HIT || !s->key || !s->fallback.n)
		goto done;
	cbl_strv names = CBL_STRV_INIT;
	int vfd = open(s->refdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (vfd >= 0) {
		cache_read_dir_sorted(vfd, &names, err);
		close(vfd);
	}
	/* each fallback in order: the newest stored key it prefixes */
	for (size_t f = 0; f < s->fallback.n && s->rres != CACHE_R_FALLBACK; f++) {
		const char *fb = s->fallback.v[f];
		size_t fl = strlen(fb);
		cache_ref best = {0};
		char *best_path = NULL;
		for (size_t i = 0; i < names.n; i++) {
			const char *n = names.v[i];
			if (n[0] == '.' || strchr(n, '.') || !strcmp(n, CACHE_ROLLING_REF))
				continue;
			char *p = cbl_path_join(s->refdir, n);
			if (cache_ref_read(p, &r, NULL) < 0) {
				free(p);
				continue;
			}
			if (r.key && !strncmp(r.key, fb, fl) && object_present(s, r.object) &&
			    (!best.object || r.created_us > best.created_us)) {
				cache_ref_release(&best);
				free(best_path);
				best = r;
				best_path = p;
				continue;
			}
			cache_ref_release(&r);
			free(p);
		}
		if (best.object) {
			s->rres = CACHE_R_FALLBACK;
			s->hit_object = best.object;
			s->hit_key = best.key;
			best.object = best.key = NULL;
			*ref_path = best_path;
			best_path = NULL;
		}
		cache_ref_release(&best);
		free(best_path);
	}
	cbl_strv_release(&names);
done:
	if (!s->hit_object)
		s->rres = CACHE_R_MISS;
	return 0;
}

/* Which subtree of the restored object holds base i. */
static void map_bases(cache_session *s, json_t *manifest)
{
	size_t i, k;
	json_t *b;
	for (i = 0; i < s->nbases; i++) {
		json_array_foreach(json_object_get(manifest, "bases"), k, b) {
			const char *base = cbl_json_str(b, "base");
			const char *dir = cbl_json_str(b, "dir");
			if (!base || !dir || strcmp(base, s->bases[i].base) || dir[0] != 'p' || strchr(dir, '/'))
				continue;
			s->st[i].lower_rel = cbl_xstrdup(dir);
			s->st[i].restored_files = (uint64_t)json_integer_value(json_object_get(b, "files"));
			s->st[i].restored_bytes = (uint64_t)json_integer_value(json_object_get(b, "bytes"));
			break;
		}
	}
}

static int depth_of(const char *p)
{
	int d = 0;
	for (; *p; p++)
		d += *p == '/';
	return d;
}

static int cmp_mount(const void *a, const void *b)
{
	const cache_mount *x = a, *y = b;
	int dx = depth_of(x->target), dy = depth_of(y->target);
	return dx != dy ? dx - dy : strcmp(x->target, y->target);
}

static int prepare_mount(cache_session *s, size_t i, cbl_error **err)
{
	cache_base_state *st = &s->st[i];
	char name[32];
	snprintf(name, sizeof(name), "u%zu", i);
	st->upper = cbl_path_join(s->dir, name);
	snprintf(name, sizeof(name), "w%zu", i);
	st->work = cbl_path_join(s->dir, name);
	if (st->lower_rel) {
		st->lower = cbl_xasprintf("%s/%s/%s", s->store->objects, s->hit_object, st->lower_rel);
	} else {
		st->lower = cbl_path_join(s->dir, "empty");
		if (mkdir(st->lower, 0755) < 0 && errno != EEXIST)
			return cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot create '%s'", st->lower);
	}
	if (mkdir(st->upper, 0755) < 0 || mkdir(st->work, 0700) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot create the overlay dirs in '%s'",
					   s->dir);
	/* the mount's root directory takes the upper's attributes: make them
	 * the snapshot's */
	struct stat ls;
	if (st->lower_rel && stat(st->lower, &ls) == 0) {
		if (chown(st->upper, ls.st_uid, ls.st_gid) < 0) {
			/* not root: the build sees our own uid, which is fine */
		}
		chmod(st->upper, ls.st_mode & 07777);
	}
	return 0;
}

/* ctime of a probe file created (and removed) in dir, on dir's filesystem
 * (its timestamp granularity is the one that matters). */
static bool probe_ctime(const char *dir, struct timespec *out)
{
	char name[48];
	char rnd[17];
	cache_random_hex(rnd, 8);
	snprintf(name, sizeof(name), ".cbl-cache-probe-%s", rnd);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return false;
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	struct stat st;
	bool ok = fd >= 0 && fstat(fd, &st) == 0;
	if (fd >= 0) {
		close(fd);
		unlinkat(dfd, name, 0);
	}
	close(dfd);
	if (ok)
		*out = st.st_ctim;
	return ok;
}

static bool ts_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* Copied bases: the save tells an unchanged file by size, mtime and mode,
 * which a rewrite can keep (npm stamps every file 1985-10-26), so it also
 * needs "not touched since the restore".  The kernel stamps ctimes from a
 * coarse clock (a tick, or a second on some filesystems): take the ctime
 * a new file gets now on the same filesystem (>= every restored file's),
 * then wait until that clock has moved on, so any change the build makes
 * gets a strictly later ctime.  Costs at most one clock tick. */
static void settle_ctimes(cache_session *s)
{
	for (size_t i = 0; i < s->nbases; i++) {
		cache_base_state *st = &s->st[i];
		if (s->bases[i].kind != CACHE_KIND_COPY || !st->lower_rel || !s->bases[i].host)
			continue;
		st->have_marker = probe_ctime(s->bases[i].host, &st->restored_ctime);
	}
	for (size_t i = 0; i < s->nbases; i++) {
		cache_base_state *st = &s->st[i];
		if (!st->have_marker)
			continue;
		struct timespec now = {0, 0};
		for (int tries = 0; tries < 3000; tries++) {
			if (!probe_ctime(s->bases[i].host, &now)) {
				st->have_marker = false;
				break;
			}
			if (ts_after(&now, &st->restored_ctime))
				break;
			struct timespec nap = {0, 1000000};
			nanosleep(&nap, NULL);
		}
		if (!ts_after(&now, &st->restored_ctime))
			st->have_marker = false; /* a clock that does not move: copy everything */
	}
}

int cache_restore(cache_session *s, cbl_error **err_out)
{
	/* errors are also kept for the log and explain, whatever the caller passes */
	cbl_error *le = NULL, **err = &le;
	int64_t t0 = cbl_mono_us();
	int rc = 0;
	char *ref_path = NULL;
	json_t *manifest = NULL;
	if (s->rres != CACHE_R_NONE)
		return cbl_error_set(err_out, CBL_EINVAL, "cache: restore called twice");
	if (s->action == SPEC_CACHE_ACTION_SAVE) {
		s->rres = CACHE_R_SKIPPED;
	} else {
		int lfd = cache_store_lock(s->store, false, false);
		if (lfd < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot lock the store");
			goto fail;
		}
		lookup(s, &ref_path, NULL);
		if (s->hit_object) {
			/* recorded under the store lock: from now on gc keeps the
			 * object while this session lives */
			char *p = cbl_path_join(s->dir, "object");
			cbl_write_file_atomic(p, s->hit_object, strlen(s->hit_object), 0644, false, NULL);
			free(p);
			utimensat(AT_FDCWD, ref_path, NULL, 0); /* last used */
		}
		close(lfd);
		if (s->hit_object) {
			rc = cache_object_manifest(s->store, s->hit_object, &manifest, err);
			if (rc < 0)
				goto fail;
			map_bases(s, manifest);
		}
	}
	bool copied = false;
	for (size_t i = 0; i < s->nbases; i++) {
		cache_base *b = &s->bases[i];
		cache_base_state *st = &s->st[i];
		if (b->kind == CACHE_KIND_MOUNT) {
			if ((rc = prepare_mount(s, i, err)) < 0)
				goto fail;
			continue;
		}
		if (b->kind != CACHE_KIND_COPY || !st->lower_rel || !b->host)
			continue;
		int64_t t1 = cbl_mono_us();
		char *src = cbl_xasprintf("%s/%s/%s", s->store->objects, s->hit_object, st->lower_rel);
		rc = b->host_rel ? cache_copy_merge(src, s->src_view, b->host_rel, &st->restored_files,
						    &st->restored_bytes, err)
				 : cache_copy_merge(src, b->host, NULL, &st->restored_files, &st->restored_bytes, err);
		free(src);
		st->restore_us = cbl_mono_us() - t1;
		copied = true;
		if (rc < 0) {
			cbl_error_wrap(err, "cache: restore %s", st->paths_joined);
			goto fail;
		}
	}
	if (copied)
		settle_ctimes(s);
	s->mounts = cbl_xcalloc(s->nbases ? s->nbases : 1, sizeof(cache_mount));
	for (size_t i = 0; i < s->nbases; i++) {
		cache_base *b = &s->bases[i];
		if (b->kind != CACHE_KIND_MOUNT)
			continue;
		cache_mount *m = &s->mounts[s->nmounts++];
		m->target = b->inner;
		m->view_target = b->host;
		m->lower = s->st[i].lower;
		m->upper = s->st[i].upper;
		m->work = s->st[i].work;
		m->paths = s->st[i].paths_joined;
	}
	if (s->nmounts)
		qsort(s->mounts, s->nmounts, sizeof(cache_mount), cmp_mount);
	s->restore_us = cbl_mono_us() - t0;
	free(ref_path);
	json_decref(manifest);
	return 0;
fail:
	s->rres = CACHE_R_FAILED;
	for (size_t i = 0; i < s->nbases; i++)
		s->st[i].have_marker = false;
	s->nmounts = 0;
	if (!le)
		cbl_error_set(&le, rc, "cache: restore failed");
	s->restore_error = cbl_xstrdup(le->msg);
	s->restore_us = cbl_mono_us() - t0;
	free(ref_path);
	json_decref(manifest);
	if (err_out && !*err_out)
		*err_out = le;
	else
		cbl_error_free(le);
	return rc;
}
