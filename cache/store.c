/* cache/store.c - the store directory: layout, locks, temporary dirs, refs,
 * listing, garbage collection and prune.
 *
 * Locking, and why it is safe without a daemon:
 *  - every session owns tmp/<random>/ and holds an exclusive flock on its
 *    `lock` file for its whole life; the kernel drops the lock when the
 *    process dies however it dies, so "lock free" == "owner dead" and the
 *    next cache_store_open removes the directory;
 *  - publishing takes the ref's own flock (so one ref flips at a time) and
 *    the store lock shared; garbage collection takes the store lock
 *    exclusive, so it never sees an object renamed into objects/ whose ref
 *    is not written yet;
 *  - a session records the object it restored (tmp/<s>/object) under the
 *    shared store lock, and gc keeps every object a live session names, so
 *    an overlay's lower layer never disappears under a running build. */
#include "cache/cache_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

char *cache_default_dir(const char *home)
{
	return cbl_path_join(home, "cache");
}

const char *cache_store_dir(const cache_store *s)
{
	return s->dir;
}

int cache_store_open(cache_store **out, const char *dir, cbl_error **err)
{
	cache_store *s = cbl_xcalloc(1, sizeof(*s));
	int rc = 0;
	s->dirfd = s->objects_fd = s->tmp_fd = -1;
	s->dir = cbl_xstrdup(dir);
	s->objects = cbl_path_join(dir, "objects");
	s->refs = cbl_path_join(dir, "refs");
	s->tmp = cbl_path_join(dir, "tmp");
	char *explain = cbl_path_join(dir, "explain");
	if ((rc = cbl_mkdir_p(s->objects, 0755, err)) < 0 || (rc = cbl_mkdir_p(s->refs, 0755, err)) < 0 ||
	    (rc = cbl_mkdir_p(s->tmp, 0700, err)) < 0 || (rc = cbl_mkdir_p(explain, 0755, err)) < 0) {
		cbl_error_wrap(err, "cache store");
		goto out;
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->objects_fd = open(s->objects, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->tmp_fd = open(s->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0 || s->objects_fd < 0 || s->tmp_fd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cache store: cannot open '%s'", dir);
		goto out;
	}
	cache_tmp_clean(s);
	*out = s;
	s = NULL;
out:
	free(explain);
	cache_store_free(s);
	return rc;
}

void cache_store_free(cache_store *s)
{
	if (!s)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	if (s->objects_fd >= 0)
		close(s->objects_fd);
	if (s->tmp_fd >= 0)
		close(s->tmp_fd);
	free(s->dir);
	free(s->objects);
	free(s->refs);
	free(s->tmp);
	free(s);
}

int cache_store_lock(cache_store *s, bool exclusive, bool nonblock)
{
	int fd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	int op = (exclusive ? LOCK_EX : LOCK_SH) | (nonblock ? LOCK_NB : 0);
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* ----------------------------------------------------------------- tmp */

int cache_tmp_create(cache_store *s, char **path_out, int *fd_out, cbl_error **err)
{
	for (int attempt = 0; attempt < 16; attempt++) {
		char name[33];
		cache_random_hex(name, 16);
		if (mkdirat(s->tmp_fd, name, 0700) < 0) {
			if (errno == EEXIST)
				continue;
			return cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot create a directory in '%s'",
						   s->tmp);
		}
		char lockrel[64];
		snprintf(lockrel, sizeof(lockrel), "%s/lock", name);
		int fd = openat(s->tmp_fd, lockrel, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			continue; /* removed by a concurrent clean-up */
		struct stat st;
		/* a clean-up that found the directory first holds the lock and
		 * is removing it: pick another name */
		if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &st) < 0 || st.st_nlink == 0) {
			close(fd);
			continue;
		}
		*path_out = cbl_path_join(s->tmp, name);
		*fd_out = fd;
		return 0;
	}
	return cbl_error_set(err, CBL_EIO, "cache: cannot create a temporary directory in '%s'", s->tmp);
}

/* Tries the lock of tmp/<name>: returns the fd holding it when nobody else
 * did (the owner is dead), -1 when it is live (or not lockable). */
static int take_stale(cache_store *s, const char *name, bool *not_dir)
{
	char lockrel[512];
	*not_dir = false;
	if (snprintf(lockrel, sizeof(lockrel), "%s/lock", name) >= (int)sizeof(lockrel))
		return -1;
	int fd = openat(s->tmp_fd, lockrel, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		*not_dir = errno == ENOTDIR;
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void cache_tmp_clean(cache_store *s)
{
	cbl_strv names = CBL_STRV_INIT;
	if (cache_read_dir_sorted(s->tmp_fd, &names, NULL) < 0)
		return;
	for (size_t i = 0; i < names.n; i++) {
		bool not_dir;
		int fd = take_stale(s, names.v[i], &not_dir);
		if (not_dir) {
			unlinkat(s->tmp_fd, names.v[i], 0);
			continue;
		}
		if (fd < 0)
			continue;
		char *p = cbl_path_join(s->tmp, names.v[i]);
		cbl_rm_rf(p, NULL);
		free(p);
		close(fd);
	}
	cbl_strv_release(&names);
}

/* ---------------------------------------------------------------- refs */

char *cache_ref_name(const char *key)
{
	if (!key || !*key)
		return cbl_xstrdup(CACHE_ROLLING_REF);
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_puts(&b, "k-");
	for (const unsigned char *c = (const unsigned char *)key; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		    *c == '_' || *c == '-')
			cbl_buf_putc(&b, (char)*c);
		else
			cbl_buf_printf(&b, "%%%02X", *c);
	}
	if (b.len <= 200)
		return cbl_buf_detach(&b);
	cbl_buf_release(&b);
	unsigned char d[32];
	unsigned dl = 0;
	char hex[65];
	EVP_Digest(key, strlen(key), d, &dl, EVP_sha256(), NULL);
	cache_hex(d, 32, hex);
	return cbl_xasprintf("h-%s", hex);
}

void cache_ref_release(cache_ref *r)
{
	free(r->name);
	free(r->object);
	free(r->key);
	free(r->build_id);
	memset(r, 0, sizeof(*r));
}

static bool is_hex64(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

int cache_ref_read(const char *path, cache_ref *out, cbl_error **err)
{
	char *text = NULL;
	size_t len = 0;
	int rc = cbl_read_regular_file(path, 1u << 20, &text, &len, err);
	if (rc < 0)
		return rc;
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	free(text);
	const char *obj = j ? cbl_json_str(j, "object") : NULL;
	if (!obj || !is_hex64(obj)) {
		json_decref(j);
		return cbl_error_set(err, CBL_EINVAL, "cache ref '%s' is corrupt", path);
	}
	memset(out, 0, sizeof(*out));
	const char *slash = strrchr(path, '/');
	out->name = cbl_xstrdup(slash ? slash + 1 : path);
	out->object = cbl_xstrdup(obj);
	const char *k = cbl_json_str(j, "key");
	out->key = k ? cbl_xstrdup(k) : NULL;
	const char *b = cbl_json_str(j, "build");
	out->build_id = b ? cbl_xstrdup(b) : NULL;
	out->created_us = (int64_t)json_integer_value(json_object_get(j, "created_us"));
	struct stat st;
	if (stat(path, &st) == 0)
		out->last_used_us = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
	json_decref(j);
	return 0;
}

/* A name in a version directory that is a ref (not a lock or a temp file). */
static bool is_ref_name(const char *n)
{
	return n[0] != '.' && !strchr(n, '.');
}

int cache_object_manifest(cache_store *s, const char *hex, json_t **out, cbl_error **err)
{
	if (!is_hex64(hex))
		return cbl_error_set(err, CBL_EINVAL, "invalid cache object name '%s'", hex);
	char *p = cbl_xasprintf("%s/%s/manifest.json", s->objects, hex);
	char *text = NULL;
	size_t len = 0;
	int rc = cbl_read_regular_file(p, 16u << 20, &text, &len, err);
	if (rc == 0) {
		json_error_t je;
		*out = json_loadb(text, len, 0, &je);
		if (!*out)
			rc = cbl_error_set(err, CBL_EINVAL, "cache object %s: corrupt manifest", hex);
	}
	free(p);
	free(text);
	return rc;
}

/* Calls fn for every ref of the store: scope, version, the ref's path. */
typedef void (*ref_fn)(const char *scope, const char *version, const char *path, void *payload);

static void for_each_ref(cache_store *s, ref_fn fn, void *payload)
{
	cbl_strv scopes = CBL_STRV_INIT;
	int rfd = open(s->refs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return;
	cache_read_dir_sorted(rfd, &scopes, NULL);
	close(rfd);
	for (size_t i = 0; i < scopes.n; i++) {
		if (scopes.v[i][0] == '.')
			continue;
		char *sp = cbl_path_join(s->refs, scopes.v[i]);
		int sfd = open(sp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		cbl_strv versions = CBL_STRV_INIT;
		if (sfd >= 0) {
			cache_read_dir_sorted(sfd, &versions, NULL);
			close(sfd);
		}
		for (size_t v = 0; v < versions.n; v++) {
			if (!is_hex64(versions.v[v]))
				continue;
			char *vp = cbl_path_join(sp, versions.v[v]);
			int vfd = open(vp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			cbl_strv refs = CBL_STRV_INIT;
			if (vfd >= 0) {
				cache_read_dir_sorted(vfd, &refs, NULL);
				close(vfd);
			}
			for (size_t r = 0; r < refs.n; r++) {
				if (!is_ref_name(refs.v[r]))
					continue;
				char *rp = cbl_path_join(vp, refs.v[r]);
				fn(scopes.v[i], versions.v[v], rp, payload);
				free(rp);
			}
			cbl_strv_release(&refs);
			free(vp);
		}
		cbl_strv_release(&versions);
		free(sp);
	}
	cbl_strv_release(&scopes);
}

/* ------------------------------------------------------------------ ls */

static void list_one(const char *scope, const char *version, const char *path, void *payload)
{
	void **pp = payload;
	cache_store *s = pp[0];
	cache_entry_list *l = pp[1];
	size_t *cap = pp[2];
	cache_ref r;
	if (cache_ref_read(path, &r, NULL) < 0)
		return;
	CBL_GROW(l->items, l->n + 1, *cap);
	cache_entry_info *e = &l->items[l->n++];
	memset(e, 0, sizeof(*e));
	e->scope = cbl_xstrdup(scope);
	e->version = cbl_xstrdup(version);
	e->key = r.key;
	e->object = r.object;
	e->build_id = r.build_id;
	r.key = r.object = r.build_id = NULL;
	e->created_us = r.created_us;
	e->last_used_us = r.last_used_us;
	json_t *m = NULL;
	if (cache_object_manifest(s, e->object, &m, NULL) == 0) {
		e->files = (uint64_t)json_integer_value(json_object_get(m, "files"));
		e->bytes = (uint64_t)json_integer_value(json_object_get(m, "bytes"));
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(m, "paths"), i, v)
			if (json_is_string(v))
				cbl_strv_push(&e->paths, json_string_value(v));
	}
	json_decref(m);
	cache_ref_release(&r);
}

static int cmp_entry(const void *a, const void *b)
{
	const cache_entry_info *x = a, *y = b;
	int c = strcmp(x->scope, y->scope);
	if (c)
		return c;
	if ((c = strcmp(x->version, y->version)))
		return c;
	if (!x->key || !y->key)
		return x->key ? 1 : y->key ? -1 : 0;
	return strcmp(x->key, y->key);
}

int cache_list(cache_store *s, cache_entry_list **out, cbl_error **err)
{
	(void)err;
	cache_entry_list *l = cbl_xcalloc(1, sizeof(*l));
	size_t cap = 0;
	void *pp[3] = {s, l, &cap};
	for_each_ref(s, list_one, pp);
	if (l->n)
		qsort(l->items, l->n, sizeof(*l->items), cmp_entry);
	*out = l;
	return 0;
}

void cache_entry_list_free(cache_entry_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		cache_entry_info *e = &l->items[i];
		free(e->scope);
		free(e->version);
		free(e->key);
		free(e->object);
		free(e->build_id);
		cbl_strv_release(&e->paths);
	}
	free(l->items);
	free(l);
}

/* ------------------------------------------------------------------ gc */

static void collect_object(const char *scope, const char *version, const char *path, void *payload)
{
	(void)scope;
	(void)version;
	cbl_strv *keep = payload;
	cache_ref r;
	if (cache_ref_read(path, &r, NULL) == 0) {
		cbl_strv_push(keep, r.object);
		cache_ref_release(&r);
	}
}

static bool strv_has(const cbl_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return true;
	return false;
}

/* Objects named by live sessions (their lock is held). */
static void collect_in_use(cache_store *s, cbl_strv *keep)
{
	cbl_strv names = CBL_STRV_INIT;
	cache_read_dir_sorted(s->tmp_fd, &names, NULL);
	for (size_t i = 0; i < names.n; i++) {
		char rel[512];
		if (snprintf(rel, sizeof(rel), "%s/lock", names.v[i]) >= (int)sizeof(rel))
			continue;
		int fd = openat(s->tmp_fd, rel, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		bool live = flock(fd, LOCK_SH | LOCK_NB) < 0;
		close(fd);
		if (!live)
			continue;
		char *p = cbl_xasprintf("%s/%s/object", s->tmp, names.v[i]);
		char *text = NULL;
		size_t len = 0;
		if (cbl_read_regular_file(p, 4096, &text, &len, NULL) == 0) {
			while (len && (text[len - 1] == '\n'))
				text[--len] = '\0';
			if (is_hex64(text))
				cbl_strv_push(keep, text);
		}
		free(text);
		free(p);
	}
	cbl_strv_release(&names);
}

int cache_gc(cache_store *s, bool nonblock, size_t *removed, uint64_t *bytes, cbl_error **err)
{
	cbl_strv keep = CBL_STRV_INIT, objs = CBL_STRV_INIT, victims = CBL_STRV_INIT;
	char *gcdir = NULL;
	int gcfd = -1, rc = 0;
	int lfd = cache_store_lock(s, true, nonblock);
	if (lfd < 0) {
		if (nonblock && errno == EWOULDBLOCK)
			return 0;
		return cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot lock the store");
	}
	for_each_ref(s, collect_object, &keep);
	collect_in_use(s, &keep);
	if ((rc = cache_read_dir_sorted(s->objects_fd, &objs, err)) < 0)
		goto out;
	for (size_t i = 0; i < objs.n; i++)
		if (!strv_has(&keep, objs.v[i]))
			cbl_strv_push(&victims, objs.v[i]);
	if (!victims.n)
		goto out;
	if ((rc = cache_tmp_create(s, &gcdir, &gcfd, err)) < 0)
		goto out;
	int gfd = open(gcdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; gfd >= 0 && i < victims.n; i++) {
		json_t *m = NULL;
		uint64_t b = 0;
		if (cache_object_manifest(s, victims.v[i], &m, NULL) == 0)
			b = (uint64_t)json_integer_value(json_object_get(m, "bytes"));
		json_decref(m);
		if (renameat(s->objects_fd, victims.v[i], gfd, victims.v[i]) == 0) {
			if (removed)
				(*removed)++;
			if (bytes)
				*bytes += b;
		}
	}
	if (gfd >= 0)
		close(gfd);
	/* the removal itself happens without the store lock */
	close(lfd);
	lfd = -1;
	cbl_rm_rf(gcdir, NULL);
out:
	if (lfd >= 0)
		close(lfd);
	if (gcfd >= 0)
		close(gcfd);
	free(gcdir);
	cbl_strv_release(&keep);
	cbl_strv_release(&objs);
	cbl_strv_release(&victims);
	return rc;
}

/* --------------------------------------------------------------- prune */

typedef struct pref {
	char *path;
	char *object;
	int64_t last_used;
	uint64_t bytes;
} pref;

static void collect_pref(const char *scope, const char *version, const char *path, void *payload)
{
	(void)version;
	void **pp = payload;
	cache_store *s = pp[0];
	pref **v = pp[1];
	size_t *n = pp[2], *cap = pp[3];
	const char *only = pp[4];
	if (only && strcmp(only, scope))
		return;
	cache_ref r;
	if (cache_ref_read(path, &r, NULL) < 0)
		return;
	CBL_GROW(*v, *n + 1, *cap);
	pref *p = &(*v)[(*n)++];
	p->path = cbl_xstrdup(path);
	p->object = cbl_xstrdup(r.object);
	p->last_used = r.last_used_us;
	p->bytes = 0;
	json_t *m = NULL;
	if (cache_object_manifest(s, r.object, &m, NULL) == 0)
		p->bytes = (uint64_t)json_integer_value(json_object_get(m, "bytes"));
	json_decref(m);
	cache_ref_release(&r);
}

static int cmp_pref_recent(const void *a, const void *b)
{
	const pref *x = a, *y = b;
	return x->last_used > y->last_used ? -1 : x->last_used < y->last_used ? 1 : strcmp(x->path, y->path);
}

int cache_prune(cache_store *s, const cache_prune_opts *o, cache_prune_result *out, cbl_error **err)
{
	pref *v = NULL;
	size_t n = 0, cap = 0;
	cbl_strv kept = CBL_STRV_INIT;
	cache_prune_result res = {0};
	int rc = 0;
	int lfd = cache_store_lock(s, true, false);
	if (lfd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot lock the store");
	void *pp[5] = {s, &v, &n, &cap, o ? (void *)o->scope : NULL};
	for_each_ref(s, collect_pref, pp);
	if (n)
		qsort(v, n, sizeof(*v), cmp_pref_recent);
	int64_t now = cbl_now_us();
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		bool drop = o && (o->all || (o->older_than_ms > 0 &&
						    v[i].last_used < now - o->older_than_ms * 1000));
		if (!drop && o && o->has_max_bytes && !strv_has(&kept, v[i].object)) {
			if (total + v[i].bytes > o->max_bytes)
				drop = true;
			else
				total += v[i].bytes;
		}
		if (!drop) {
			cbl_strv_push(&kept, v[i].object);
			continue;
		}
		if (unlink(v[i].path) == 0)
			res.refs_removed++;
		else if (errno != ENOENT) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot remove '%s'", v[i].path);
			break;
		}
	}
	close(lfd);
	if (!rc)
		rc = cache_gc(s, false, &res.objects_removed, &res.bytes_removed, err);
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].object);
	}
	free(v);
	cbl_strv_release(&kept);
	if (out)
		*out = res;
	return rc;
}
