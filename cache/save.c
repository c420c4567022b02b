/* cache/save.c - building a new snapshot from what the build changed, and
 * publishing it.
 *
 * Overlay bases: after the overlay is unmounted its upper directory holds
 * exactly what the build changed below the base -- new and modified files
 * (whole, copied up), whiteouts for deletions (character devices 0/0, or
 * zero-size files with an overlay.whiteout xattr), and directories that
 * replaced a lower one (overlay.opaque = "y").  The new tree is the old
 * snapshot (hard links: its files are immutable, so sharing them is free
 * and safe) with the upper applied on top, the upper's files moved in with
 * rename(2) (same filesystem).  Redirected directories and metacopy files
 * (overlay features off by default) would need the lower layer to read
 * them: such an upper is refused rather than saved wrong.
 *
 * Copied bases: the files the globs select now are compared with the
 * snapshot they were restored from.  Unchanged = same type, mode, size and
 * mtime AND a ctime before the end of the restore (so a rewrite that keeps
 * size and mtime, as npm's fixed 1985 mtimes do, is still seen); those are
 * hard-linked from the old snapshot, the rest copied.
 *
 * Publish: the stage is complete and (durable) synced before anything else
 * moves; then, under the ref's flock and the shared store lock, the stage is
 * renamed to objects/<name> (an existing object of that name is the same
 * content: reused) and the ref is replaced atomically.  A crash before the
 * ref write leaves an unreferenced object for gc; after it, the new state. */
#include "cache/cache_internal.h"
#include "artifacts/artifacts.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/banned.h"

typedef struct sctx {
	cache_session *s;
	size_t bi;
	const cache_digest_map *oldmap;
	cache_digest_map *newmap;
	cbl_buf rel;      /* path below the base: "" or "a/b" */
	cbl_buf upath;    /* absolute path of the upper dir being walked (xattrs) */
	cbl_buf key;      /* scratch for map keys */
	uint64_t changed;
	bool hooked;
	cbl_error **err;
} sctx;

static const char *old_key(sctx *c, const char *rel)
{
	cbl_buf_reset(&c->key);
	cbl_buf_printf(&c->key, "%s/%s", c->s->st[c->bi].lower_rel, rel);
	return cbl_buf_cstr(&c->key);
}

static const char *new_key(sctx *c, const char *rel)
{
	cbl_buf_reset(&c->key);
	cbl_buf_printf(&c->key, "p%zu/%s", c->bi, rel);
	return cbl_buf_cstr(&c->key);
}

static void file_hook(sctx *c)
{
	if (!c->hooked) {
		c->hooked = true;
		cache_hook(c->s, "stage-file");
	}
}

/* value of an overlay xattr in either namespace (trusted. as root,
 * user. with "userxattr"), or "" when absent */
static void ovl_xattr(const char *path, const char *name, char *out, size_t outlen)
{
	char attr[64];
	out[0] = '\0';
	snprintf(attr, sizeof(attr), "trusted.overlay.%s", name);
	ssize_t n = lgetxattr(path, attr, out, outlen - 1);
	if (n < 0) {
		snprintf(attr, sizeof(attr), "user.overlay.%s", name);
		n = lgetxattr(path, attr, out, outlen - 1);
	}
	if (n < 0)
		n = 0;
	out[n] = '\0';
}

static bool ovl_has_xattr(const char *path, const char *name)
{
	char attr[64], buf[8];
	snprintf(attr, sizeof(attr), "trusted.overlay.%s", name);
	if (lgetxattr(path, attr, buf, sizeof(buf)) >= 0 || errno == ERANGE)
		return true;
	snprintf(attr, sizeof(attr), "user.overlay.%s", name);
	return lgetxattr(path, attr, buf, sizeof(buf)) >= 0 || errno == ERANGE;
}

static int union_names(int lfd, int ufd, cbl_strv *out, cbl_error **err)
{
	cbl_strv l = CBL_STRV_INIT, u = CBL_STRV_INIT;
	int rc = cache_read_dir_sorted(lfd, &l, err);
	if (!rc)
		rc = cache_read_dir_sorted(ufd, &u, err);
	size_t i = 0, j = 0;
	while (!rc && (i < l.n || j < u.n)) {
		int c = i >= l.n ? 1 : j >= u.n ? -1 : strcmp(l.v[i], u.v[j]);
		if (c < 0) {
			cbl_strv_push_take(out, l.v[i]);
			l.v[i++] = NULL;
		} else {
			cbl_strv_push_take(out, u.v[j]);
			u.v[j++] = NULL;
			if (c == 0)
				i++;
		}
	}
	cbl_strv_release(&l);
	cbl_strv_release(&u);
	return rc;
}

static void set_dir_attrs(int fd, const struct stat *st)
{
	fchmod(fd, st->st_mode & 07777);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	futimens(fd, ts);
}

/* Links a lower (old snapshot) file into the stage, or copies it when the
 * link count is exhausted. */
static int take_lower(sctx *c, int lfd, int sfd, const char *name, const struct stat *ls)
{
	const char *rel = cbl_buf_cstr(&c->rel);
	if (linkat(lfd, name, sfd, name, 0) < 0) {
		if (errno != EMLINK || !S_ISREG(ls->st_mode))
			return cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot link '%s'", rel);
		unsigned char d[32];
		int rc = cache_copy_file(lfd, name, sfd, name, ls, d, c->err);
		if (rc < 0)
			return rc;
		cache_digest_map_put(c->newmap, new_key(c, rel), d);
		return 0;
	}
	if (S_ISREG(ls->st_mode)) {
		const unsigned char *d = cache_digest_map_get(c->oldmap, old_key(c, rel));
		if (d) {
			unsigned char copy[32];
			memcpy(copy, d, 32);
			cache_digest_map_put(c->newmap, new_key(c, rel), copy);
		}
	}
	return 0;
}

/* True when some base nested in b lies below rel (so rel's subtree is not
 * all b's). */
static bool has_nested_below(const cache_session *s, const cache_base *b, const char *rel)
{
	for (size_t i = 0; i < b->nnested; i++) {
		const char *nb = s->bases[b->nested[i]].base;
		const char *suffix = !strcmp(b->base, ".") ? nb : !strcmp(b->base, "/") ? nb + 1 : nb + strlen(b->base) + 1;
		size_t rl = strlen(rel);
		if (!rl || (!strncmp(suffix, rel, rl) && suffix[rl] == '/'))
			return true;
	}
	return false;
}

static int merge_dir(sctx *c, int lfd, int ufd, int sfd, bool all, int depth);

/* Stages a directory of the upper layer (and the lower one's, when the
 * upper does not hide it): one rename when all of it is new and cached,
 * else a merge of the two into a new staged directory. */
static int merge_upper_dir(sctx *c, int lfd, int ufd, int sfd, const char *n, const struct stat *us,
			   const struct stat *ls, bool in_lower, bool all, int depth)
{
	const cache_base *b = &c->s->bases[c->bi];
	const char *rel = cbl_buf_cstr(&c->rel);
	char v[16];
	if (ovl_has_xattr(c->upath.ptr, "redirect"))
		return cbl_error_set(c->err, CBL_EINVAL,
				     "cache: '%s' was renamed with overlayfs redirect_dir, "
				     "which the cache does not support", rel);
	ovl_xattr(c->upath.ptr, "opaque", v, sizeof(v));
	bool opaque = !strcmp(v, "y");
	bool sel = all || cache_base_selects(b, rel);
	bool lower_dir = !opaque && in_lower && S_ISDIR(ls->st_mode);
	if (!lower_dir && sel && !has_nested_below(c->s, b, rel)) {
		/* all of it is new and all of it is cached: one
		 * rename (the listing walk hashes and counts it,
		 * and drops anything that is not a file or link) */
		file_hook(c);
		if (opaque) {
			/* meaningless in a snapshot; it would hide a
			 * second lower layer the runner may stack */
			lremovexattr(c->upath.ptr, "trusted.overlay.opaque");
			lremovexattr(c->upath.ptr, "user.overlay.opaque");
		}
		if (renameat(ufd, n, sfd, n) < 0)
			return cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot move '%s'", rel);
		return 0;
	}
	int rc, l2 = -1, u2 = -1, s2 = -1;
	if (lower_dir)
		l2 = openat(lfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	u2 = openat(ufd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (mkdirat(sfd, n, 0700) < 0 ||
	    (s2 = openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 || u2 < 0)
		rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot stage '%s'", rel);
	else
		rc = merge_dir(c, l2, u2, s2, sel, depth + 1);
	if (!rc)
		set_dir_attrs(s2, us);
	if (l2 >= 0)
		close(l2);
	if (u2 >= 0)
		close(u2);
	if (s2 >= 0)
		close(s2);
	return rc;
}

/* Stages a file or symbolic link of the upper layer: moved, or copied
 * across file systems. */
static int merge_upper_file(sctx *c, int ufd, int sfd, const char *n, const struct stat *us)
{
	const char *rel = cbl_buf_cstr(&c->rel);
	if (S_ISREG(us->st_mode) && us->st_blocks == 0 && us->st_size > 0 &&
	    ovl_has_xattr(c->upath.ptr, "metacopy"))
		return cbl_error_set(c->err, CBL_EINVAL,
				     "cache: '%s' is an overlayfs metacopy file, which the cache does "
				     "not support", rel);
	file_hook(c);
	if (renameat(ufd, n, sfd, n) < 0) {
		if (errno != EXDEV || !S_ISREG(us->st_mode))
			return cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot move '%s'", rel);
		unsigned char d[32];
		int rc = cache_copy_file(ufd, n, sfd, n, us, d, c->err);
		if (rc < 0)
			return rc;
		cache_digest_map_put(c->newmap, new_key(c, rel), d);
		c->changed++;
	} else if (S_ISLNK(us->st_mode)) {
		c->changed++; /* files are counted when the listing hashes them */
	}
	return 0;
}

/* Stages a directory only the lower layer has. */
static int merge_lower_dir(sctx *c, int lfd, int sfd, const char *n, const struct stat *ls, bool all,
			   int depth)
{
	const cache_base *b = &c->s->bases[c->bi];
	const char *rel = cbl_buf_cstr(&c->rel);
	bool sel = all || cache_base_selects(b, rel);
	int rc, l2 = openat(lfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), s2 = -1;
	if (l2 < 0 || mkdirat(sfd, n, 0700) < 0 ||
	    (s2 = openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot stage '%s'", rel);
	else
		rc = merge_dir(c, l2, -1, s2, sel, depth + 1);
	if (!rc)
		set_dir_attrs(s2, ls);
	if (l2 >= 0)
		close(l2);
	if (s2 >= 0)
		close(s2);
	return rc;
}

/* Stages the entry n of a directory (c->rel and c->upath name it): the
 * upper layer's version wins, whiteouts delete, what the base does not
 * select stays out. */
static int merge_entry(sctx *c, int lfd, int ufd, int sfd, const char *n, bool all, int depth)
{
	const cache_base *b = &c->s->bases[c->bi];
	const char *rel = cbl_buf_cstr(&c->rel);
	if (cache_base_in_nested(c->s->bases, b, rel))
		return 0;
	struct stat us, ls;
	bool in_upper = ufd >= 0 && fstatat(ufd, n, &us, AT_SYMLINK_NOFOLLOW) == 0;
	bool in_lower = lfd >= 0 && fstatat(lfd, n, &ls, AT_SYMLINK_NOFOLLOW) == 0;
	if (in_upper) {
		if (S_ISCHR(us.st_mode) && us.st_rdev == 0)
			return 0; /* whiteout: deleted */
		if (S_ISREG(us.st_mode) && us.st_size == 0 && ovl_has_xattr(c->upath.ptr, "whiteout"))
			return 0;
		if (S_ISDIR(us.st_mode))
			return merge_upper_dir(c, lfd, ufd, sfd, n, &us, &ls, in_lower, all, depth);
		if (!S_ISREG(us.st_mode) && !S_ISLNK(us.st_mode))
			return 0;
		if (!all && !cache_base_selects(b, rel))
			return 0;
		return merge_upper_file(c, ufd, sfd, n, &us);
	}
	if (!in_lower)
		return 0;
	if (S_ISDIR(ls.st_mode))
		return merge_lower_dir(c, lfd, sfd, n, &ls, all, depth);
	if ((S_ISREG(ls.st_mode) || S_ISLNK(ls.st_mode)) && (all || cache_base_selects(b, rel))) {
		file_hook(c);
		return take_lower(c, lfd, sfd, n, &ls);
	}
	return 0;
}

static int merge_dir(sctx *c, int lfd, int ufd, int sfd, bool all, int depth)
{
	cbl_strv names = CBL_STRV_INIT;
	int rc = union_names(lfd, ufd, &names, c->err);
	if (rc < 0)
		return rc;
	if (depth > 512) {
		cbl_strv_release(&names);
		return cbl_error_set(c->err, CBL_EINVAL, "cache: directories nested too deep");
	}
	size_t rlen = c->rel.len, ulen = c->upath.len;
	for (size_t i = 0; !rc && i < names.n; i++) {
		const char *n = names.v[i];
		c->rel.len = rlen;
		if (c->rel.ptr)
			c->rel.ptr[rlen] = '\0';
		if (rlen)
			cbl_buf_putc(&c->rel, '/');
		cbl_buf_puts(&c->rel, n);
		c->upath.len = ulen;
		c->upath.ptr[ulen] = '\0';
		cbl_buf_putc(&c->upath, '/');
		cbl_buf_puts(&c->upath, n);
		rc = merge_entry(c, lfd, ufd, sfd, n, all, depth);
	}
	c->rel.len = rlen;
	if (c->rel.ptr)
		c->rel.ptr[rlen] = '\0';
	c->upath.len = ulen;
	c->upath.ptr[ulen] = '\0';
	cbl_strv_release(&names);
	return rc;
}

static int open_lower(cache_session *s, size_t i)
{
	if (!s->st[i].lower_rel || !s->hit_object)
		return -1;
	char *p = cbl_xasprintf("%s/%s", s->hit_object, s->st[i].lower_rel);
	int fd = openat(s->store->objects_fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(p);
	return fd;
}

static int stage_mount(sctx *c, int pfd)
{
	cache_session *s = c->s;
	cache_base_state *st = &s->st[c->bi];
	int lfd = open_lower(s, c->bi), rc = 0;
	int ufd = open(st->upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ufd < 0) {
		rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot open '%s'", st->upper);
		goto out;
	}
	cbl_buf_reset(&c->rel);
	cbl_buf_reset(&c->upath);
	cbl_buf_puts(&c->upath, st->upper);
	rc = merge_dir(c, lfd, ufd, pfd, false, 0);
	struct stat us;
	if (!rc && fstat(ufd, &us) == 0)
		set_dir_attrs(pfd, &us);
out:
	if (lfd >= 0)
		close(lfd);
	if (ufd >= 0)
		close(ufd);
	return rc;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* Creates the parents of rel in the stage with the modes they have on the
 * host (once per directory). */
static int stage_parents(sctx *c, int pfd, const char *host, const char *rel, cbl_buf *last)
{
	const char *slash = strrchr(rel, '/');
	if (!slash)
		return 0;
	size_t dl = (size_t)(slash - rel);
	if (last->len == dl && !memcmp(last->ptr, rel, dl))
		return 0;
	char *dir = cbl_xstrndup(rel, dl);
	int rc = 0;
	for (char *p = dir;; p++) {
		if (*p == '/' || *p == '\0') {
			char ch = *p;
			*p = '\0';
			struct stat hs;
			char *hp = cbl_path_join(host, dir);
			mode_t mode = stat(hp, &hs) == 0 && S_ISDIR(hs.st_mode) ? (hs.st_mode & 07777) : 0755;
			free(hp);
			if (mkdirat(pfd, dir, 0700) == 0) {
				if (fchmodat(pfd, dir, mode | 0700, 0) < 0) {
					/* keeps 0700: still restorable */
				}
			} else if (errno != EEXIST) {
				rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot stage '%s'", dir);
				break;
			}
			*p = ch;
			if (!ch)
				break;
		}
	}
	cbl_buf_reset(last);
	cbl_buf_puts(last, dir);
	free(dir);
	return rc;
}

static int stage_copy(sctx *c, int pfd)
{
	cache_session *s = c->s;
	const cache_base *b = &s->bases[c->bi];
	artifacts_list *list = NULL;
	cbl_error *e = NULL;
	cbl_buf last = CBL_BUF_INIT;
	int rc = 0, ofd = -1;
	struct stat hs;
	if (!b->host || stat(b->host, &hs) < 0 || !S_ISDIR(hs.st_mode))
		return 0; /* nothing there: nothing to save */
	if (b->host_rel) {
		/* in the build's view: a base the build replaced by a symlink (to
		 * /etc, a home directory) names nothing of the build's; neither
		 * does any directory leading to it.  Below it the walk keeps
		 * symlinks as symlinks */
		int bfd = cache_open_beneath(s->src_view, b->host_rel, false);
		if (bfd < 0)
			return 0;
		close(bfd);
	}
	spec_artifact a = {0};
	a.files.n = b->pats.n;
	a.files.items = cbl_xcalloc(b->pats.n, sizeof(spec_str));
	for (size_t i = 0; i < b->pats.n; i++)
		a.files.items[i].s = b->pats.v[i];
	a.enable_symlinks = true;
	rc = artifacts_collect(&list, b->host, &a, NULL, NULL, NULL, NULL, &e);
	free(a.files.items);
	if (rc == CBL_ENOENT) {
		cbl_error_free(e);
		return 0;
	}
	if (rc < 0) {
		cbl_error_set(c->err, rc, "cache: %s", e ? e->msg : "cannot list the cached files");
		cbl_error_free(e);
		return rc;
	}
	set_dir_attrs(pfd, &hs);
	fchmod(pfd, (hs.st_mode & 07777) | 0700);
	ofd = open_lower(s, c->bi);
	for (size_t i = 0; !rc && i < list->n; i++) {
		const artifacts_entry *en = &list->items[i];
		const char *rel = en->name;
		if (cache_base_in_nested(s->bases, b, rel))
			continue;
		struct stat st, os;
		if (lstat(en->path, &st) < 0) {
			if (errno == ENOENT)
				continue; /* vanished meanwhile */
			rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot stat '%s'", en->path);
			break;
		}
		if ((rc = stage_parents(c, pfd, b->host, rel, &last)) < 0)
			break;
		file_hook(c);
		bool in_old = ofd >= 0 && fstatat(ofd, rel, &os, AT_SYMLINK_NOFOLLOW) == 0;
		cbl_buf_reset(&c->rel);
		cbl_buf_puts(&c->rel, rel);
		if (S_ISLNK(st.st_mode)) {
			char target[4096], otarget[4096];
			ssize_t l = readlink(en->path, target, sizeof(target) - 1);
			if (l < 0 || (target[l] = '\0', symlinkat(target, pfd, rel) < 0)) {
				rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot stage link '%s'", rel);
				break;
			}
			struct timespec ts[2] = {st.st_atim, st.st_mtim};
			utimensat(pfd, rel, ts, AT_SYMLINK_NOFOLLOW);
			ssize_t ol = in_old && S_ISLNK(os.st_mode) ? readlinkat(ofd, rel, otarget, sizeof(otarget) - 1) : -1;
			if (ol != l || memcmp(otarget, target, (size_t)l))
				c->changed++;
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		const cache_base_state *bs = &s->st[c->bi];
		bool unchanged = bs->have_marker && in_old && S_ISREG(os.st_mode) && os.st_mode == st.st_mode &&
				 os.st_size == st.st_size && same_time(&os.st_mtim, &st.st_mtim) &&
				 !after(&st.st_ctim, &bs->restored_ctime);
		if (unchanged && linkat(ofd, rel, pfd, rel, 0) == 0) {
			const unsigned char *d = cache_digest_map_get(c->oldmap, old_key(c, rel));
			if (d) {
				unsigned char copy[32];
				memcpy(copy, d, 32);
				cache_digest_map_put(c->newmap, new_key(c, rel), copy);
			}
			continue;
		}
		unsigned char d[32];
		if ((rc = cache_copy_file(AT_FDCWD, en->path, pfd, rel, &st, d, c->err)) < 0)
			break;
		cache_digest_map_put(c->newmap, new_key(c, rel), d);
		c->changed++;
	}
	if (ofd >= 0)
		close(ofd);
	cbl_buf_release(&last);
	artifacts_list_free(list);
	return rc;
}

static bool upper_empty(const char *upper)
{
	cbl_strv names = CBL_STRV_INIT;
	int fd = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return true;
	cache_read_dir_sorted(fd, &names, NULL);
	close(fd);
	bool empty = names.n == 0;
	cbl_strv_release(&names);
	return empty;
}

static json_t *manifest_json(cache_session *s, const uint64_t *pf, const uint64_t *pb)
{
	json_t *m = json_object(), *paths = json_array(), *bases = json_array();
	uint64_t files = 0, bytes = 0;
	json_object_set_new(m, "format", json_integer(CACHE_FORMAT));
	json_object_set_new(m, "version", json_string(s->version));
	json_object_set_new(m, "scope", json_string(s->scope));
	json_object_set_new(m, "key", s->key ? json_string(s->key) : json_null());
	for (size_t i = 0; i < s->nbases; i++) {
		json_t *b = json_object(), *pats = json_array(), *shown = json_array();
		char dir[32];
		snprintf(dir, sizeof(dir), "p%zu", i);
		json_object_set_new(b, "dir", json_string(dir));
		json_object_set_new(b, "base", json_string(s->bases[i].base));
		for (size_t k = 0; k < s->bases[i].pats.n; k++) {
			json_array_append_new(pats, json_string(s->bases[i].pats.v[k]));
			json_array_append_new(shown, json_string(s->bases[i].shown.v[k]));
			json_array_append_new(paths, json_string(s->bases[i].shown.v[k]));
		}
		json_object_set_new(b, "patterns", pats);
		json_object_set_new(b, "paths", shown);
		json_object_set_new(b, "files", json_integer((json_int_t)pf[i]));
		json_object_set_new(b, "bytes", json_integer((json_int_t)pb[i]));
		json_array_append_new(bases, b);
		files += pf[i];
		bytes += pb[i];
	}
	json_object_set_new(m, "paths", paths);
	json_object_set_new(m, "bases", bases);
	json_object_set_new(m, "files", json_integer((json_int_t)files));
	json_object_set_new(m, "bytes", json_integer((json_int_t)bytes));
	int64_t now = cbl_now_us();
	char iso[32];
	cbl_format_iso_time(iso, now);
	json_object_set_new(m, "created", json_string(iso));
	json_object_set_new(m, "created_us", json_integer(now));
	json_object_set_new(m, "build", s->build_id ? json_string(s->build_id) : json_null());
	return m;
}

static int write_at(int dfd, const char *name, const char *data, size_t len, cbl_error **err)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot create '%s'", name);
	int rc = 0;
	if (cbl_write_all(fd, data, len) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot write '%s'", name);
	if (close(fd) < 0 && !rc)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot write '%s'", name);
	return rc;
}

static void set_skip(cache_session *s, const char *reason)
{
	s->sres = CACHE_S_SKIPPED;
	free(s->save_reason);
	s->save_reason = cbl_xstrdup(reason);
}

/* Renames the stage (if any) to objects/<name> and points the ref at it. */
static int publish(cache_session *s, const char *stage, const char *name, cbl_error **err)
{
	char *refname = cache_ref_name(s->key);
	char *lockname = cbl_xasprintf("%s/.%s.lock", s->refdir, refname);
	int rfd = -1, sfd = -1, rc = 0;
	if ((rc = cbl_mkdir_p(s->refdir, 0755, err)) < 0)
		goto out;
	rfd = open(lockname, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (rfd < 0 || flock(rfd, LOCK_EX) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot lock '%s'", lockname);
		goto out;
	}
	sfd = cache_store_lock(s->store, false, false);
	if (sfd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot lock the store");
		goto out;
	}
	if (s->key) {
		char *rp = cbl_path_join(s->refdir, refname);
		bool exists = access(rp, F_OK) == 0;
		free(rp);
		if (exists) {
			set_skip(s, "cache key already exists, not saved");
			goto out;
		}
	}
	if (stage) {
		int tfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int r = tfd >= 0 ? renameat(tfd, "stage", s->store->objects_fd, name) : -1;
		int e = errno;
		if (tfd >= 0)
			close(tfd);
		if (r < 0 && e != EEXIST && e != ENOTEMPTY) {
			rc = cbl_error_set_errno(err, CBL_EIO, e, "cache: cannot publish object %s", name);
			goto out;
		}
		if (s->durable)
			fsync(s->store->objects_fd);
	}
	cache_hook(s, "object-published");
	{
		json_t *j = json_object();
		json_object_set_new(j, "format", json_integer(CACHE_FORMAT));
		json_object_set_new(j, "object", json_string(name));
		json_object_set_new(j, "key", s->key ? json_string(s->key) : json_null());
		json_object_set_new(j, "scope", json_string(s->scope));
		json_object_set_new(j, "version", json_string(s->version));
		json_object_set_new(j, "created_us", json_integer(cbl_now_us()));
		json_object_set_new(j, "build", s->build_id ? json_string(s->build_id) : json_null());
		char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(j);
		rc = cache_write_durable(s->refdir, refname, text, strlen(text), err);
		free(text);
		if (rc < 0)
			goto out;
	}
	cache_hook(s, "ref-written");
	s->sres = CACHE_S_SAVED;
	s->saved_object = cbl_xstrdup(name);
out:
	if (sfd >= 0)
		close(sfd);
	if (rfd >= 0)
		close(rfd);
	free(refname);
	free(lockname);
	return rc;
}

/* The overlay fast path: no copied base and nothing in any upper dir =
 * nothing changed. */
static bool nothing_changed(const cache_session *s)
{
	for (size_t i = 0; i < s->nbases; i++) {
		if (s->bases[i].kind == CACHE_KIND_COPY)
			return false;
		if (s->bases[i].kind == CACHE_KIND_MOUNT && s->st[i].upper && !upper_empty(s->st[i].upper))
			return false;
	}
	return true;
}

/* The save of an unchanged cache: skipped, or the restored object
 * published under the new key. */
static int save_unchanged(cache_session *s, const char *name, cbl_error **err)
{
	if (!name) {
		set_skip(s, "no files matched the cache paths");
	} else if (!s->key) {
		set_skip(s, "no changes since restore");
	} else {
		/* a fallback entry reused as is: the new key names it */
		return publish(s, NULL, name, err);
	}
	return 0;
}

/* The restored object's file digests, so unchanged files are not hashed
 * again. */
static void load_old_digests(const cache_session *s, cache_digest_map *oldmap)
{
	if (!s->hit_object)
		return;
	char *p = cbl_xasprintf("%s/%s/files", s->store->objects, s->hit_object);
	char *text = NULL;
	size_t len = 0;
	if (cbl_read_file(p, 1u << 30, &text, &len, NULL) == 0)
		cache_listing_parse(text, len, oldmap, NULL); /* missing digests get recomputed */
	free(text);
	free(p);
}

/* Stages base i into <stage>/p<i>. */
static int stage_base(sctx *c, size_t i, int stfd, const char *stage)
{
	cache_session *s = c->s;
	const cache_base *b = &s->bases[i];
	char pn[32];
	snprintf(pn, sizeof(pn), "p%zu", i);
	if (b->kind == CACHE_KIND_MOUNT && !s->st[i].lower_rel && b->match_all && !b->nnested) {
		/* nothing to merge: the upper dir is the new subtree */
		cache_hook(s, "stage-file");
		if (renameat(AT_FDCWD, s->st[i].upper, stfd, pn) < 0)
			return cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot move '%s'", s->st[i].upper);
		return 0;
	}
	int pfd = -1;
	if (mkdirat(stfd, pn, 0755) < 0 ||
	    (pfd = openat(stfd, pn, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return cbl_error_set_errno(c->err, CBL_EIO, errno, "cache: cannot create '%s/%s'", stage, pn);
	c->bi = i;
	uint64_t before_changed = c->changed;
	int rc = b->kind == CACHE_KIND_MOUNT ? stage_mount(c, pfd) : stage_copy(c, pfd);
	s->st[i].changed = c->changed - before_changed;
	close(pfd);
	return rc;
}

/* Writes the object's "files" listing and manifest.json into the stage and
 * syncs it when the store is durable. */
static int write_object_meta(cache_session *s, int stfd, const char *stage, const cbl_buf *listing,
			     const uint64_t *pf, const uint64_t *pb, cbl_error **err)
{
	int rc = write_at(stfd, "files", listing->ptr, listing->len, err);
	if (rc < 0)
		return rc;
	json_t *m = manifest_json(s, pf, pb);
	char *text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(m);
	rc = write_at(stfd, "manifest.json", text, strlen(text), err);
	free(text);
	if (rc < 0)
		return rc;
	if (s->durable && syncfs(stfd) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot sync '%s'", stage);
	return 0;
}

/* Lists the stage (name = the object's content name) and records what each
 * base saved; *total = the files saved. */
static int list_stage(cache_session *s, int stfd, cache_digest_map *newmap, cbl_buf *listing,
		      char name[65], uint64_t *pf, uint64_t *pb, uint64_t *total, cbl_error **err)
{
	cbl_buf header = CBL_BUF_INIT;
	uint64_t *ph = cbl_xcalloc(s->nbases, sizeof(uint64_t));
	cache_listing_header(s->bases, s->nbases, &header);
	int rc = cache_listing_build(stfd, cbl_buf_cstr(&header), newmap, s->nbases, listing, name, pf, pb,
				     ph, err);
	*total = 0;
	for (size_t i = 0; rc >= 0 && i < s->nbases; i++) {
		s->st[i].saved_files = pf[i];
		s->st[i].saved_bytes = pb[i];
		s->st[i].changed += ph[i];
		s->changed += ph[i];
		*total += pf[i];
	}
	cbl_buf_release(&header);
	free(ph);
	return rc;
}

/* Stages, lists and publishes the new cache object (stage: <dir>/stage). */
static int save_staged(cache_session *s, const char *stage, cbl_error **err)
{
	int rc = 0, stfd = -1;
	cache_digest_map *oldmap = NULL, *newmap = NULL;
	uint64_t *pf = NULL, *pb = NULL, total = 0;
	cbl_buf listing = CBL_BUF_INIT;
	sctx c = {0};
	char name[65];

	cache_hook(s, "stage-begin");
	if (mkdir(stage, 0755) < 0 || (stfd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cache: cannot create '%s'", stage);
	oldmap = cache_digest_map_new();
	newmap = cache_digest_map_new();
	load_old_digests(s, oldmap);
	c.s = s;
	c.oldmap = oldmap;
	c.newmap = newmap;
	c.err = err;
	for (size_t i = 0; i < s->nbases && !rc; i++)
		if (s->bases[i].kind != CACHE_KIND_SKIP)
			rc = stage_base(&c, i, stfd, stage);
	s->changed = c.changed;
	if (rc < 0)
		goto out;
	cache_hook(s, "staged");

	pf = cbl_xcalloc(s->nbases, sizeof(uint64_t));
	pb = cbl_xcalloc(s->nbases, sizeof(uint64_t));
	rc = list_stage(s, stfd, newmap, &listing, name, pf, pb, &total, err);
	if (rc < 0)
		goto out;
	if (!total) {
		set_skip(s, "no files matched the cache paths");
		goto out;
	}
	if (s->hit_object && !strcmp(name, s->hit_object)) {
		rc = save_unchanged(s, name, err);
		goto out;
	}
	rc = write_object_meta(s, stfd, stage, &listing, pf, pb, err);
	if (rc < 0)
		goto out;
	cache_hook(s, "synced");
	rc = publish(s, stage, name, err);
out:
	close(stfd);
	cbl_buf_release(&c.rel);
	cbl_buf_release(&c.upath);
	cbl_buf_release(&c.key);
	cbl_buf_release(&listing);
	cache_digest_map_free(oldmap);
	cache_digest_map_free(newmap);
	free(pf);
	free(pb);
	return rc;
}

int cache_save(cache_session *s, cbl_error **err_out)
{
	cbl_error *le = NULL, **err = &le;
	int64_t t0 = cbl_mono_us();
	int rc = 0;
	char *stage = NULL;
	if (s->sres != CACHE_S_NONE)
		return cbl_error_set(err_out, CBL_EINVAL, "cache: save called twice");
	if (s->action == SPEC_CACHE_ACTION_RESTORE) {
		set_skip(s, "action: restore");
	} else if (s->key && s->rres == CACHE_R_HIT) {
		set_skip(s, "cache key already exists, not saved");
	} else if (nothing_changed(s)) {
		rc = save_unchanged(s, s->hit_object, err);
	} else {
		stage = cbl_path_join(s->dir, "stage");
		rc = save_staged(s, stage, err);
		cbl_rm_rf(stage, NULL);
	}
	if (rc == 0 && s->sres == CACHE_S_SAVED)
		cache_gc(s->store, true, NULL, NULL, NULL);
	if (rc < 0) {
		s->sres = CACHE_S_FAILED;
		if (!le)
			cbl_error_set(&le, rc, "cache: save failed");
		s->save_error = cbl_xstrdup(le->msg);
		/* what was staged is of no use now; the upper dirs go with the
		 * session */
	}
	s->save_us = cbl_mono_us() - t0;
	free(stage);
	if (le) {
		if (err_out && !*err_out)
			*err_out = le;
		else
			cbl_error_free(le);
	}
	return rc;
}
