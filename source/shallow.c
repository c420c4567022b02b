/* source/shallow.c - shallow boundaries, the depth window and the
 * object-id set (source/source_internal.h), shared by the clone (git.c) and
 * the source cache (cache.c).
 *
 * Why commits are read from their own text (source_odb_parents) and not
 * with git_commit_lookup: libgit2 applies a repository's shallow file as
 * grafts, so a commit on the boundary looks parentless.  The clone and the
 * cache need the real parent lines: to find where the history they hold
 * ends, and to cut it again at a different depth.  Where the grafts are
 * wanted (cutting a history that is already shallow), the caller passes the
 * boundary as `roots`.
 *
 * Why the window is breadth-first by distance from the tip: that is how
 * upload-pack's deepen counts, so a commit reachable both inside and outside
 * the window (a merge) is in it, and the boundary written here is the one a
 * `git fetch --depth N` of the same commit would write (git also lists a
 * root commit that falls on the boundary, which changes nothing; the
 * window leaves it out).
 */
#include "source/source_internal.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <git2/sys/errors.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

/* a store's shallow file is read whole: larger than this is damage */
#define MAX_SHALLOW_FILE (64 << 20)
/* annotated tags pointing at annotated tags, peeled at most this deep */
#define MAX_PEEL 16

/* ---------------------------------------------------------------- oids --- */

void source_oidset_release(source_oidset *s)
{
	free(s->v);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

bool source_oidset_add(source_oidset *s, const git_oid *o)
{
	if ((s->n + 1) * 2 > s->cap) {
		source_oidset old = *s;
		s->cap = old.cap ? old.cap * 2 : 64;
		s->v = cbl_xcalloc(s->cap, sizeof(*s->v));
		s->used = cbl_xcalloc(s->cap, 1);
		s->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.used[i])
				source_oidset_add(s, &old.v[i]);
		source_oidset_release(&old);
	}
	size_t h;
	memcpy(&h, o->id, sizeof(h));
	size_t i = h & (s->cap - 1);
	while (s->used[i]) {
		if (git_oid_equal(&s->v[i], o))
			return false;
		i = (i + 1) & (s->cap - 1);
	}
	s->used[i] = 1;
	git_oid_cpy(&s->v[i], o);
	s->n++;
	return true;
}

bool source_oidset_has(const source_oidset *s, const git_oid *o)
{
	if (!s->cap)
		return false;
	size_t h;
	memcpy(&h, o->id, sizeof(h));
	for (size_t i = h & (s->cap - 1); s->used[i]; i = (i + 1) & (s->cap - 1))
		if (git_oid_equal(&s->v[i], o))
			return true;
	return false;
}

void source_oidlist_add(source_oidlist *l, const git_oid *o)
{
	CBL_GROW(l->v, l->n + 1, l->cap);
	git_oid_cpy(&l->v[l->n++], o);
}

void source_oidlist_release(source_oidlist *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* ------------------------------------------------------------- commits --- */

int source_odb_parents(git_odb *odb, const git_oid *id, git_oid **parents, size_t *np)
{
	git_odb_object *obj = NULL;
	*parents = NULL;
	*np = 0;
	int g = git_odb_read(&obj, odb, id);
	if (g == GIT_ENOTFOUND) {
		git_error_clear();
		return 0;
	}
	if (g < 0)
		return -1;
	if (git_odb_object_type(obj) != GIT_OBJECT_COMMIT) {
		git_odb_object_free(obj);
		return 0;
	}
	const char *s = git_odb_object_data(obj);
	size_t len = git_odb_object_size(obj), cap = 0;
	const char *end = s + len;
	while (s < end && *s != '\n') { /* the header ends at the first empty line */
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			break;
		if ((size_t)(nl - s) == 7 + GIT_OID_SHA1_HEXSIZE && !memcmp(s, "parent ", 7)) {
			CBL_GROW(*parents, *np + 1, cap);
			if (git_oid_fromstrn(&(*parents)[*np], s + 7, GIT_OID_SHA1_HEXSIZE) == 0)
				(*np)++;
		}
		s = nl + 1;
	}
	git_odb_object_free(obj);
	return 1;
}

int source_odb_peel(git_odb *odb, const git_oid *id, git_oid *out)
{
	git_oid cur;
	git_oid_cpy(&cur, id);
	for (int i = 0; i < MAX_PEEL; i++) {
		git_odb_object *obj = NULL;
		int g = git_odb_read(&obj, odb, &cur);
		if (g == GIT_ENOTFOUND) {
			git_error_clear();
			return 0;
		}
		if (g < 0)
			return -1;
		git_object_t t = git_odb_object_type(obj);
		if (t == GIT_OBJECT_COMMIT) {
			git_odb_object_free(obj);
			git_oid_cpy(out, &cur);
			return 1;
		}
		const char *s = git_odb_object_data(obj);
		size_t len = git_odb_object_size(obj);
		int ok = t == GIT_OBJECT_TAG && len > 7 + GIT_OID_SHA1_HEXSIZE && !memcmp(s, "object ", 7) &&
			 git_oid_fromstrn(&cur, s + 7, GIT_OID_SHA1_HEXSIZE) == 0;
		git_odb_object_free(obj);
		if (!ok)
			return 0;
	}
	return 0;
}

/* ------------------------------------------------------------ boundary --- */

void source_shallow_release(source_shallow *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* The index of id in s, or where it would go (*found false). */
static size_t shallow_find(const source_shallow *s, const git_oid *id, bool *found)
{
	size_t lo = 0, hi = s->n;
	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = git_oid_cmp(&s->v[mid], id);
		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool source_shallow_add(source_shallow *s, const git_oid *id)
{
	bool found;
	size_t at = s->n && git_oid_cmp(&s->v[s->n - 1], id) < 0 ? s->n : shallow_find(s, id, &found);
	if (at < s->n && git_oid_equal(&s->v[at], id))
		return false;
	CBL_GROW(s->v, s->n + 1, s->cap);
	memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(*s->v));
	git_oid_cpy(&s->v[at], id);
	s->n++;
	return true;
}

bool source_shallow_has(const source_shallow *s, const git_oid *id)
{
	bool found;
	shallow_find(s, id, &found);
	return found;
}

void source_shallow_merge(source_shallow *dst, const source_shallow *src)
{
	for (size_t i = 0; i < src->n; i++)
		source_shallow_add(dst, &src->v[i]);
}

/* 40 lower-case hex digits: how git and libgit2 write the file (a SHA-1
 * repository; the file of a SHA-256 one would not parse, and is refused). */
static bool is_hex40(const char *s, size_t n)
{
	if (n != GIT_OID_SHA1_HEXSIZE)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int source_shallow_parse(source_shallow *s, const char *text, size_t len, cbl_error **err)
{
	if (strlen(text) != len)
		return cbl_error_set(err, CBL_EINVAL, "the shallow boundary contains a NUL byte");
	for (const char *p = text; *p;) {
		size_t l = strcspn(p, "\n");
		git_oid id;
		if (l && (!is_hex40(p, l) || git_oid_fromstrn(&id, p, l) < 0))
			return cbl_error_set(err, CBL_EINVAL, "the shallow boundary has a line that is not a commit id");
		if (l)
			source_shallow_add(s, &id);
		p += l;
		if (*p)
			p++;
	}
	return 0;
}

char *source_shallow_text(const source_shallow *s)
{
	cbl_buf b = CBL_BUF_INIT;
	for (size_t i = 0; i < s->n; i++) {
		char hex[GIT_OID_MAX_HEXSIZE + 1];
		git_oid_tostr(hex, sizeof(hex), &s->v[i]);
		cbl_buf_printf(&b, "%s\n", hex);
	}
	return cbl_buf_detach(&b);
}

int source_shallow_read(source_shallow *s, const char *gitdir, cbl_error **err)
{
	char *path = cbl_path_join(gitdir, "shallow"), *data = NULL;
	size_t len = 0;
	struct stat st;
	int rc = 0;
	if (cbl_read_regular_file(path, MAX_SHALLOW_FILE, &data, &len, NULL) == 0) {
		if ((rc = source_shallow_parse(s, data, len, err)) < 0)
			cbl_error_wrap(err, "'%s'", path);
	} else if (lstat(path, &st) == 0) {
		rc = cbl_error_set(err, CBL_EIO, "cannot read '%s'", path);
	}
	free(data);
	free(path);
	return rc;
}

int source_shallow_write(const source_shallow *s, const char *gitdir, cbl_error **err)
{
	char *path = cbl_path_join(gitdir, "shallow"), *text = source_shallow_text(s), *cur = NULL;
	size_t len = 0;
	int rc = 0;
	if (cbl_read_file(path, 0, &cur, &len, NULL) == 0 && !strcmp(cur, text))
		goto out; /* unchanged: a store's mtime says when it last changed */
	if (*text)
		rc = cbl_write_file_atomic(path, text, strlen(text), 0644, false, err);
	else if (unlink(path) < 0 && errno != ENOENT)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot remove '%s'", path);
out:
	free(cur);
	free(text);
	free(path);
	return rc;
}

/* ---------------------------------------------------------------- window --- */

typedef struct window_walk {
	struct wq {
		git_oid oid;
		int dist;
	} *q;
	size_t n, cap;
	source_oidset seen;
} window_walk;

static void walk_push(window_walk *w, const git_oid *id, int dist)
{
	if (!source_oidset_add(&w->seen, id))
		return;
	CBL_GROW(w->q, w->n + 1, w->cap);
	git_oid_cpy(&w->q[w->n].oid, id);
	w->q[w->n++].dist = dist;
}

/* One commit of the walk: 1 (go on), 0 (a parent inside the window is
 * missing: *missing), <0 (unreadable). */
static int walk_step(git_odb *odb, window_walk *w, size_t i, int depth, const source_walk_opts *wo,
		     source_shallow *boundary, git_oid *missing)
{
	git_oid *par = NULL, id = w->q[i].oid;
	size_t np = 0;
	int dist = w->q[i].dist;
	int r = source_odb_parents(odb, &id, &par, &np);
	if (r == 0)
		git_oid_cpy(missing, &id);
	if (r <= 0)
		return r;
	if (wo->roots && source_shallow_has(wo->roots, &id))
		np = 0; /* the graft: its history ends here */
	if (depth > 0 && dist >= depth - 1) {
		if (np)
			source_shallow_add(boundary, &id);
	} else {
		for (size_t k = 0; k < np && r == 1; k++) {
			if (wo->stop && source_oidset_has(wo->stop, &par[k]))
				continue; /* another walk's: present */
			if (!git_odb_exists_ext(odb, &par[k], GIT_ODB_LOOKUP_NO_REFRESH)) {
				git_oid_cpy(missing, &par[k]);
				r = 0;
			} else {
				walk_push(w, &par[k], dist + 1);
			}
		}
	}
	free(par);
	return r;
}

int source_shallow_walk(git_odb *odb, const git_oid *tip, int depth, const source_walk_opts *wo,
			source_shallow *boundary, git_oid *commit_out, cbl_error **err)
{
	static const source_walk_opts none = {0};
	window_walk w = {0};
	git_oid start, missing;
	if (!wo)
		wo = &none;
	git_oid_cpy(&missing, tip);
	int rc = source_odb_peel(odb, tip, &start);
	if (rc <= 0)
		goto out;
	if (commit_out)
		git_oid_cpy(commit_out, &start);
	if (!wo->stop || !source_oidset_has(wo->stop, &start))
		walk_push(&w, &start, 0);
	for (size_t i = 0; i < w.n && rc == 1; i++)
		rc = walk_step(odb, &w, i, depth, wo, boundary, &missing);
	if (rc == 1 && wo->commits)
		for (size_t i = 0; i < w.n; i++)
			source_oidlist_add(wo->commits, &w.q[i].oid);
out:
	if (rc == 0 && wo->missing)
		git_oid_cpy(wo->missing, &missing);
	if (rc < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EIO, "cannot read the history: %s",
				   ge && ge->message ? ge->message : "unknown error");
	}
	free(w.q);
	source_oidset_release(&w.seen);
	return rc;
}

int source_shallow_window(git_odb *odb, const git_oid *tip, int depth, const source_shallow *roots,
			  source_shallow *boundary, git_oid *commit_out, cbl_error **err)
{
	source_walk_opts wo = {.roots = roots};
	/* packs fetched since the odb was loaded; the walk's lookups skip the refresh */
	if (git_odb_refresh(odb) < 0)
		git_error_clear();
	return source_shallow_walk(odb, tip, depth, &wo, boundary, commit_out, err);
}
