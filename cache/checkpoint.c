/* cache/checkpoint.c - phase checkpoints in the cache store.
 *
 *   checkpoints/<scope>/<key>/<created>-<random>/   one checkpoint, never
 *       meta.json    changed once published: phase, key, its parts' hashes,
 *                    build id, source path inside, size
 *       layer/       the source tree's changes: an overlay upper layer as
 *                    the build left it (whiteouts, opaque directories)
 *       root-layer/  the changes outside the source (the root overlay's
 *                    upper layer: installed packages, /root), when kept;
 *                    a normal user's host root is fuse-overlayfs's upper
 *                    layer, in its own format (meta.json's rootLayerFormat)
 *       private/<name>/  the contents of the build's private directories
 *                    (sandbox_private_dirs(): tmp, var-tmp, root, home,
 *                    run, srv, mnt, media) as the phase left them: plain trees
 *                    (no whiteouts), given back as sandbox_opts.private_lower;
 *                    an empty one is not kept.  A normal user's build, whose /
 *                    is read-only, keeps them all (/root too), copied in its
 *                    user namespace with their owners (a fill callback)
 *       env.sh       the carried shell state
 *       dir.txt
 *
 *   checkpoints/<scope>/<key>/.spare-<created>-<random>.<boot id>/   its
 *       spare: a writable copy of root-layer/ one restored build takes as
 *       its upper layer (cache_checkpoint_claim_spare), made again in the
 *       background.  Not synced (a sync of the filesystem costs more than
 *       the copy on a busy machine): only one made since the machine last
 *       booted is used, so a power loss cannot hand out a half-written
 *       one
 *
 * Built under tmp/ (a crashed save leaves nothing but what the next
 * cache_store_open removes), then renamed into place: a reader sees a whole
 * checkpoint or none.  The newest of a key wins; cache_checkpoint_prune
 * drops the ones a newer checkpoint of the same key replaced, and by age.
 *
 * A restored build's checkpoint flattens its upper layers onto the restored
 * checkpoint's (base_layer, base_root_layer: sandbox_layer_merge, hard links
 * to the older checkpoint's files, which never change).
 *
 * The layer is copied beneath directory descriptors without following any
 * symlink: it is what a build wrote, and the build may still be running
 * background jobs that change it while it is copied.
 */
#include "cache/cache_internal.h"
#include "sandbox/sandbox.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/safeopen.h"
#include "util/json.h"
#include "util/time.h"
#include "util/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

static void sha256_hex(const char *data, size_t len, char hex[65])
{
	unsigned char d[32];
	unsigned int dl = 0;
	EVP_Digest(data, len, d, &dl, EVP_sha256(), NULL);
	cache_hex(d, 32, hex);
}

void cache_checkpoint_key(const char *const *names, const char *const *values, size_t n, json_t **parts_out,
			  char key[65])
{
	cbl_buf all = CBL_BUF_INIT;
	json_t *parts = json_object();
	for (size_t i = 0; i < n; i++) {
		char h[65];
		sha256_hex(values[i], strlen(values[i]), h);
		json_object_set_new(parts, names[i], json_string(h));
		cbl_buf_printf(&all, "%s\n%s\n", names[i], h);
	}
	sha256_hex(all.ptr ? all.ptr : "", all.len, key);
	cbl_buf_release(&all);
	*parts_out = parts;
}

/* A scope or key as a directory name: what the runner gives is a project
 * name and a hex key, checked all the same. */
static bool safe_name(const char *s)
{
	if (!s || !*s || !strcmp(s, ".") || !strcmp(s, "..") || strlen(s) > 255)
		return false;
	for (; *s; s++)
		if (*s == '/')
			return false;
	return true;
}

typedef struct copy_stats {
	uint64_t files, bytes;
	dev_t dev; /* not 0: the directories of another filesystem (a mount
		    * under the tree copied) are left out, but tmpfs ones */
} copy_stats;

/* The layer at sfd into dfd (util/tree.c).  An entry gone before it is
 * listed, or replaced by another type before it is opened, is left out; one
 * listed that cannot be opened or read is an error here (as it always was;
 * sandbox_copy_out leaves it out). */
static int copy_layer(int sfd, int dfd, copy_stats *cs, cbl_error **err)
{
	cbl_tree_copy t;
	memset(&t, 0, sizeof(t));
	t.dev = cs->dev;
	int rc = cbl_tree_copy_dir(&t, sfd, dfd);
	cs->files += t.r.files;
	cs->bytes += t.r.bytes;
	return rc < 0 ? cbl_tree_error(&t.r, CBL_EIO, "checkpoint", err) : 0;
}

static int write_file(int dfd, const char *name, const char *data, size_t len, cbl_error **err)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || cbl_write_all(fd, data, len) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return cbl_error_set_errno(err, CBL_EIO, e, "checkpoint: cannot write %s", name);
	}
	close(fd);
	return 0;
}

/* The upper layer at src (NULL: none) into lfd's name (made here unless
 * "layer", which always exists). */
static int copy_upper(const char *src, int lfd, const char *name, copy_stats *cs, cbl_error **err)
{
	if (!src)
		return 0;
	if (strcmp(name, "layer") && mkdirat(lfd, name, 0755) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot create '%s'", name);
	int sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int dfd = openat(lfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc;
	if (sfd < 0 || dfd < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot open '%s'", src);
	else
		rc = copy_layer(sfd, dfd, cs, err);
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* One private directory: rfd's path as lfd's private/name. */
static int copy_private_one(int rfd, const char *path, int pfd, const char *name, copy_stats *cs, cbl_error **err)
{
	cbl_error *e = NULL;
	/* the build may have made any component a symlink (/var -> /etc):
	 * none is followed; gone or not a directory: not kept */
	int sfd = cbl_open_dir_beneath(rfd, path, CBL_RESOLVE_NO_SYMLINKS, &e);
	if (sfd < 0) {
		cbl_error_free(e);
		return 0;
	}
	struct stat st;
	int dfd = -1, rc = 0;
	if (fstat(sfd, &st) < 0 || mkdirat(pfd, name, 0700) < 0 ||
	    (dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot keep /%s", path);
	} else {
		dev_t outer = cs->dev;
		cs->dev = st.st_dev;
		rc = copy_layer(sfd, dfd, cs, err);
		cs->dev = outer;
		(void)!fchown(dfd, st.st_uid, st.st_gid);
		fchmod(dfd, st.st_mode & 07777);
	}
	close(sfd);
	if (dfd >= 0)
		close(dfd);
	/* left empty: not kept, the restored one is a fresh tmpfs anyway
	 * (one mount less at the restore) */
	if (rc == 0 && dfd >= 0)
		(void)!unlinkat(pfd, name, AT_REMOVEDIR);
	return rc;
}

/* After a fill: an empty private/<name>/ (and an empty private/) is not
 * kept, as copy_private leaves it out (a mount less at the restore). */
static void drop_empty_private(int lfd)
{
	int pfd = openat(lfd, "private", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return;
	cbl_strv names = CBL_STRV_INIT;
	if (cache_read_dir_sorted(pfd, &names, NULL) == 0)
		for (size_t i = 0; i < names.n; i++)
			(void)unlinkat(pfd, names.v[i], AT_REMOVEDIR); /* fails when not empty */
	cbl_strv_release(&names);
	close(pfd);
	(void)unlinkat(lfd, "private", AT_REMOVEDIR);
}

static int copy_private(const cache_checkpoint_opts *o, int lfd, copy_stats *cs, cbl_error **err)
{
	if (!o->private_root || !o->n_private)
		return 0;
	int rfd = open(o->private_root, O_PATH | O_DIRECTORY | O_CLOEXEC), pfd = -1, rc = 0;
	if (rfd < 0 || mkdirat(lfd, "private", 0755) < 0 ||
	    (pfd = openat(lfd, "private", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot read '%s'", o->private_root);
	for (size_t i = 0; !rc && i < o->n_private; i++) {
		const char *path = o->private_paths[i];
		if (!safe_name(o->private_names[i]) || !*path || *path == '/')
			rc = cbl_error_set(err, CBL_EINVAL, "checkpoint: invalid private directory '%s'", path);
		else
			rc = copy_private_one(rfd, path, pfd, o->private_names[i], cs, err);
	}
	if (rfd >= 0)
		close(rfd);
	if (pfd >= 0)
		close(pfd);
	return rc;
}

/* The older layer base flattened under lfd's name (created when missing). */
static int merge_base(const char *base, int lfd, const char *name, const cache_checkpoint_opts *o, copy_stats *cs,
		      cbl_error **err)
{
	if (!base)
		return 0;
	if (mkdirat(lfd, name, 0755) < 0 && errno != EEXIST)
		return cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot create '%s'", name);
	int ofd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int dfd = openat(lfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc;
	sandbox_copy_stats st = {0};
	if (ofd < 0 || dfd < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot open '%s'", ofd < 0 ? base : name);
	else
		rc = sandbox_layer_merge(ofd, dfd, o->taken_as && !strcmp(o->taken_as, "user") ? SANDBOX_MERGE_USER_XATTR : 0,
					 &st, err);
	cs->files += st.files;
	cs->bytes += st.bytes;
	if (ofd >= 0)
		close(ofd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int cache_checkpoint_copy_layer(const char *src, const char *dest, cbl_error **err)
{
	if (mkdir(dest, 0755) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot create '%s'", dest);
	int sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int dfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	copy_stats cs = {0};
	int rc;
	if (sfd < 0 || dfd < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot open '%s'", sfd < 0 ? src : dest);
	else
		rc = copy_layer(sfd, dfd, &cs, err);
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

struct cache_checkpoint_stage {
	int lfd; /* the staging checkpoint */
	copy_stats cs;
};

int cache_checkpoint_stage_dir(cache_checkpoint_stage *stage, cache_checkpoint_part part, const char *name,
			       int *fd_out, cbl_error **err)
{
	int pfd = dup(stage->lfd);
	const char *dir = part == CACHE_CHECKPOINT_LAYER ? "layer" : part == CACHE_CHECKPOINT_ROOT_LAYER ? "root-layer"
												      : "private";
	if (part == CACHE_CHECKPOINT_PRIVATE && !safe_name(name)) {
		close(pfd);
		return cbl_error_set(err, CBL_EINVAL, "checkpoint: invalid private directory name");
	}
	if (pfd < 0 || (part != CACHE_CHECKPOINT_LAYER && mkdirat(pfd, dir, 0755) < 0 && errno != EEXIST))
		goto fail;
	int fd = openat(pfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(pfd);
	pfd = fd;
	if (pfd >= 0 && part == CACHE_CHECKPOINT_PRIVATE) {
		if (mkdirat(pfd, name, 0755) < 0)
			goto fail;
		fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(pfd);
		pfd = fd;
	}
	if (pfd < 0)
		goto fail;
	*fd_out = pfd;
	return 0;
fail:;
	int e = errno;
	if (pfd >= 0)
		close(pfd);
	return cbl_error_set_errno(err, CBL_EIO, e, "checkpoint: cannot create %s%s%s", dir, name ? "/" : "",
				   name ? name : "");
}

void cache_checkpoint_stage_count(cache_checkpoint_stage *stage, uint64_t files, uint64_t bytes)
{
	stage->cs.files += files;
	stage->cs.bytes += bytes;
}

/* checkpoints/<scope>/<key>, created: a descriptor. */
static int key_dir(cache_store *s, const char *scope, const char *key, bool create, cbl_error **err)
{
	const char *parts[] = {"checkpoints", scope, key};
	int fd = dup(s->dirfd);
	for (size_t i = 0; fd >= 0 && i < 3; i++) {
		if (create && mkdirat(fd, parts[i], 0700) < 0 && errno != EEXIST) {
			close(fd);
			return cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot create '%s'", parts[i]);
		}
		int n = openat(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = n;
	}
	if (fd < 0)
		return errno == ENOENT ? CBL_ENOENT
				       : cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot open the store");
	return fd;
}

int cache_checkpoint_save(cache_store *s, const cache_checkpoint_opts *o, cbl_error **err)
{
	if (!safe_name(o->scope) || !safe_name(o->key))
		return cbl_error_set(err, CBL_EINVAL, "checkpoint: invalid scope or key");
	char *tmp = NULL;
	int lock = -1, tfd = -1, lfd = -1, kfd = -1, rc;
	copy_stats cs = {0};
	if ((rc = cache_tmp_create(s, &tmp, &lock, err)) < 0)
		return rc;
	tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0 || mkdirat(tfd, "cp", 0700) < 0 || (lfd = openat(tfd, "cp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    mkdirat(lfd, "layer", 0755) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot stage in '%s'", tmp);
		goto out;
	}
	copy_stats rs = {0};
	if (o->fill) {
		cache_checkpoint_stage stage = {.lfd = lfd};
		rc = o->fill(o->fill_arg, &stage, err);
		cs = stage.cs;
		if (rc < 0)
			goto out;
		drop_empty_private(lfd);
	} else if ((rc = copy_upper(o->src_upper, lfd, "layer", &cs, err)) < 0 ||
		   (rc = merge_base(o->base_layer, lfd, "layer", o, &cs, err)) < 0 ||
		   (o->root_upper && (rc = copy_upper(o->root_upper, lfd, "root-layer", &rs, err)) < 0) ||
		   (rc = merge_base(o->base_root_layer, lfd, "root-layer", o, &rs, err)) < 0 ||
		   (rc = copy_private(o, lfd, &cs, err)) < 0) {
		goto out;
	}
	cs.files += rs.files;
	cs.bytes += rs.bytes;
	if ((rc = write_file(lfd, "env.sh", o->env_sh ? o->env_sh : "", o->env_sh ? strlen(o->env_sh) : 0, err)) ||
	    (rc = write_file(lfd, "dir.txt", o->dir_txt ? o->dir_txt : "", o->dir_txt ? strlen(o->dir_txt) : 0, err)))
		goto out;
	int64_t now = cbl_now_us();
	json_t *meta = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:I, s:I, s:I, s:I, s:O?, s:s, s:s?}", "scope", o->scope,
				 "key", o->key, "phase", o->phase, "buildId", o->build_id, "srcInner", o->src_inner,
				 "created", (json_int_t)now, "files", (json_int_t)cs.files, "bytes", (json_int_t)cs.bytes,
				 "rootBytes", (json_int_t)rs.bytes, "parts", o->parts, "takenAs",
				 o->taken_as ? o->taken_as : "root", "rootLayerFormat", o->root_format);
	char *text = json_dumps(meta, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(meta);
	rc = write_file(lfd, "meta.json", text, strlen(text), err);
	free(text);
	if (rc)
		goto out;
	if (fsync(lfd) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot sync");
		goto out;
	}
	if ((kfd = key_dir(s, o->scope, o->key, true, err)) < 0) {
		rc = kfd;
		goto out;
	}
	char name[64], rnd[17];
	cache_random_hex(rnd, 8);
	snprintf(name, sizeof(name), "%016llx-%s", (unsigned long long)now, rnd);
	if (renameat(tfd, "cp", kfd, name) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot publish");
		goto out;
	}
	fsync(kfd);
out:
	if (kfd >= 0)
		close(kfd);
	if (lfd >= 0)
		close(lfd);
	if (tfd >= 0)
		close(tfd);
	if (tmp) /* files of the user's other ids too (a normal user's build) */
		sandbox_ids_rm_rf(tmp, NULL);
	if (lock >= 0)
		close(lock);
	free(tmp);
	return rc;
}

/* The names in a directory but hidden ones (a checkpoint being removed),
 * sorted: the newest checkpoint of a key last. */
static int sorted_names(int fd, cbl_strv *out, cbl_error **err)
{
	cbl_strv all = CBL_STRV_INIT;
	int rc = cache_read_dir_sorted(fd, &all, err);
	for (size_t i = 0; i < all.n; i++)
		if (all.v[i][0] != '.')
			cbl_strv_push(out, all.v[i]);
	cbl_strv_release(&all);
	return rc;
}

static json_t *read_meta(int kfd, const char *id)
{
	char *rel = cbl_xasprintf("%s/meta.json", id);
	int fd = openat(kfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(rel);
	if (fd < 0)
		return NULL;
	char *text = NULL;
	size_t len = 0;
	json_t *j = NULL;
	if (cbl_read_fd(fd, "meta.json", 1 << 20, &text, &len, NULL) == 0)
		j = json_loadb(text, len, 0, NULL);
	free(text);
	close(fd);
	return j;
}

int cache_checkpoint_find(cache_store *s, const char *scope, const char *key, char **dir_out, json_t **meta_out,
			  cbl_error **err)
{
	if (!safe_name(scope) || !safe_name(key))
		return cbl_error_set(err, CBL_EINVAL, "checkpoint: invalid scope or key");
	int kfd = key_dir(s, scope, key, false, err);
	if (kfd < 0)
		return kfd == CBL_ENOENT ? cbl_error_set(err, CBL_ENOENT, "no checkpoint") : kfd;
	cbl_strv ids = CBL_STRV_INIT;
	int rc = sorted_names(kfd, &ids, err);
	for (size_t i = ids.n; rc == 0 && i-- > 0;) {
		json_t *m = read_meta(kfd, ids.v[i]);
		if (!m)
			continue;
		*dir_out = cbl_xasprintf("%s/checkpoints/%s/%s/%s", s->dir, scope, key, ids.v[i]);
		*meta_out = m;
		/* last used: the prune's age (the checkpoint itself is unchanged) */
		(void)!utimensat(kfd, ids.v[i], NULL, AT_SYMLINK_NOFOLLOW);
		cbl_strv_release(&ids);
		close(kfd);
		return 0;
	}
	cbl_strv_release(&ids);
	close(kfd);
	return rc ? rc : cbl_error_set(err, CBL_ENOENT, "no checkpoint");
}

/* Calls fn for every checkpoint of the store (scope, key, id, its key
 * directory, newest of its key or not). */
typedef int (*ckpt_fn)(int kfd, const char *scope, const char *key, const char *id, bool newest, void *payload);

static int each_checkpoint(cache_store *s, ckpt_fn fn, void *payload, cbl_error **err)
{
	int cfd = openat(s->dirfd, "checkpoints", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0)
		return errno == ENOENT ? 0 : cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot read the store");
	cbl_strv scopes = CBL_STRV_INIT;
	int rc = sorted_names(cfd, &scopes, err);
	for (size_t i = 0; rc == 0 && i < scopes.n; i++) {
		int sfd = openat(cfd, scopes.v[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		cbl_strv keys = CBL_STRV_INIT;
		if (sfd < 0 || sorted_names(sfd, &keys, NULL) < 0) {
			if (sfd >= 0)
				close(sfd);
			continue;
		}
		for (size_t k = 0; rc == 0 && k < keys.n; k++) {
			int kfd = openat(sfd, keys.v[k], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			cbl_strv ids = CBL_STRV_INIT;
			if (kfd < 0 || sorted_names(kfd, &ids, NULL) < 0) {
				if (kfd >= 0)
					close(kfd);
				continue;
			}
			for (size_t j = 0; rc == 0 && j < ids.n; j++)
				rc = fn(kfd, scopes.v[i], keys.v[k], ids.v[j], j + 1 == ids.n, payload);
			cbl_strv_release(&ids);
			close(kfd);
		}
		cbl_strv_release(&keys);
		close(sfd);
	}
	cbl_strv_release(&scopes);
	close(cfd);
	return rc;
}

static void spare_name(const char *id, char *out, size_t n);

typedef struct list_ctx {
	cache_checkpoint_info *v;
	size_t n, cap;
} list_ctx;

static int list_one(int kfd, const char *scope, const char *key, const char *id, bool newest, void *payload)
{
	list_ctx *l = payload;
	json_t *m = read_meta(kfd, id);
	if (!m)
		return 0;
	CBL_GROW(l->v, l->n + 1, l->cap);
	cache_checkpoint_info *c = &l->v[l->n++];
	memset(c, 0, sizeof(*c));
	c->scope = cbl_xstrdup(scope);
	c->key = cbl_xstrdup(key);
	c->id = cbl_xstrdup(id);
	c->phase = cbl_xstrdup(cbl_json_str(m, "phase") ? cbl_json_str(m, "phase") : "?");
	c->build_id = cbl_json_str(m, "buildId") ? cbl_xstrdup(cbl_json_str(m, "buildId")) : NULL;
	c->created_us = json_integer_value(json_object_get(m, "created"));
	c->files = (uint64_t)json_integer_value(json_object_get(m, "files"));
	c->bytes = (uint64_t)json_integer_value(json_object_get(m, "bytes"));
	c->newest = newest;
	struct stat st;
	char spare[160];
	spare_name(id, spare, sizeof(spare));
	if (fstatat(kfd, spare, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		c->spare_bytes = (uint64_t)json_integer_value(json_object_get(m, "rootBytes"));
		c->bytes += c->spare_bytes;
	}
	c->last_used_us = fstatat(kfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0
				  ? (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000
				  : c->created_us;
	json_decref(m);
	return 0;
}

int cache_checkpoint_list(cache_store *s, cache_checkpoint_info **out, size_t *n, cbl_error **err)
{
	list_ctx l = {0};
	int rc = each_checkpoint(s, list_one, &l, err);
	*out = l.v;
	*n = l.n;
	return rc;
}

void cache_checkpoint_list_free(cache_checkpoint_info *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(l[i].scope);
		free(l[i].key);
		free(l[i].id);
		free(l[i].phase);
		free(l[i].build_id);
	}
	free(l);
}

/* The name of checkpoint id's spare made since this boot. */
static void spare_name(const char *id, char *out, size_t n)
{
	char *text = NULL, boot[40];
	size_t len = 0, k = 0;
	if (cbl_read_file("/proc/sys/kernel/random/boot_id", 256, &text, &len, NULL) == 0)
		for (size_t i = 0; i < len && k + 1 < sizeof(boot); i++)
			if ((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'))
				boot[k++] = text[i];
	boot[k] = '\0';
	free(text);
	snprintf(out, n, ".spare-%s.%s", id, k ? boot : "0");
}

/* Removes the spares of checkpoint id of the key directory kfd (only those
 * of an earlier boot: stale_only). */
static void remove_spares(int kfd, const char *id, bool stale_only)
{
	char cur[160], prefix[112];
	spare_name(id, cur, sizeof(cur));
	snprintf(prefix, sizeof(prefix), ".spare-%s.", id);
	cbl_strv all = CBL_STRV_INIT;
	cache_read_dir_sorted(kfd, &all, NULL);
	for (size_t i = 0; i < all.n; i++) {
		if (strncmp(all.v[i], prefix, strlen(prefix)) || (stale_only && !strcmp(all.v[i], cur)))
			continue;
		char *gone = cbl_xasprintf(".gone%s", all.v[i]);
		if (renameat(kfd, all.v[i], kfd, gone) == 0) {
			char *path = cbl_fd_path(kfd);
			char *full = cbl_path_join(path, gone);
			cbl_rm_rf(full, NULL);
			free(full);
			free(path);
		}
		free(gone);
	}
	cbl_strv_release(&all);
}

/* ckpt_dir (a checkpoint of s) split: its key directory's descriptor and
 * its id.  CBL_EINVAL when it is not one of s's. */
static int spare_parts(cache_store *s, const char *ckpt_dir, int *kfd, char **id, cbl_error **err)
{
	char *prefix = cbl_path_join(s->dir, "checkpoints");
	size_t pl = strlen(prefix);
	const char *rel = !strncmp(ckpt_dir, prefix, pl) && ckpt_dir[pl] == '/' ? ckpt_dir + pl + 1 : NULL;
	free(prefix);
	char *parts[3] = {NULL, NULL, NULL};
	const char *c = rel;
	for (int i = 0; c && i < 3; i++) {
		const char *slash = strchr(c, '/');
		if ((i < 2) != (slash != NULL))
			break;
		parts[i] = slash ? cbl_xstrndup(c, (size_t)(slash - c)) : cbl_xstrdup(c);
		c = slash ? slash + 1 : NULL;
	}
	int rc = 0;
	if (!parts[2] || !safe_name(parts[0]) || !safe_name(parts[1]) || !safe_name(parts[2]) || parts[2][0] == '.' ||
	    strlen(parts[2]) > 64)
		rc = cbl_error_set(err, CBL_EINVAL, "checkpoint: '%s' is not a checkpoint of the store", ckpt_dir);
	else if ((*kfd = key_dir(s, parts[0], parts[1], false, err)) < 0)
		rc = *kfd == CBL_ENOENT ? cbl_error_set(err, CBL_ENOENT, "checkpoint: '%s' is gone", ckpt_dir) : *kfd;
	if (rc == 0)
		*id = parts[2];
	else
		free(parts[2]);
	free(parts[0]);
	free(parts[1]);
	return rc;
}

int cache_checkpoint_make_spare(cache_store *s, const char *ckpt_dir, cbl_error **err)
{
	int kfd = -1, lock = -1, rc;
	char *id = NULL, *tmp = NULL, *layer = NULL, *dest = NULL;
	if ((rc = spare_parts(s, ckpt_dir, &kfd, &id, err)) < 0)
		return rc;
	char spare[160];
	spare_name(id, spare, sizeof(spare));
	struct stat st;
	layer = cbl_xasprintf("%s/root-layer", id);
	if (fstatat(kfd, spare, &st, AT_SYMLINK_NOFOLLOW) == 0)
		goto out; /* ready */
	remove_spares(kfd, id, true);
	if (fstatat(kfd, layer, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) {
		rc = cbl_error_set(err, CBL_ENOENT, "checkpoint: no root-layer in '%s'", ckpt_dir);
		goto out;
	}
	free(layer);
	layer = cbl_path_join(ckpt_dir, "root-layer");
	if ((rc = cache_tmp_create(s, &tmp, &lock, err)) < 0)
		goto out;
	dest = cbl_path_join(tmp, "upper");
	if ((rc = cache_checkpoint_copy_layer(layer, dest, err)) < 0)
		goto out;
	if (renameat2(AT_FDCWD, dest, kfd, spare, RENAME_NOREPLACE) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot publish a spare");
		goto out;
	}
	/* pruned meanwhile: not left behind (cache_checkpoint_prune removes
	 * the spare after the checkpoint) */
	char *meta = cbl_xasprintf("%s/meta.json", id);
	if (fstatat(kfd, meta, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		remove_spares(kfd, id, false);
		rc = cbl_error_set(err, CBL_ENOENT, "checkpoint: '%s' is gone", ckpt_dir);
	}
	free(meta);
out:
	if (tmp)
		cbl_rm_rf(tmp, NULL);
	if (lock >= 0)
		close(lock);
	if (kfd >= 0)
		close(kfd);
	free(tmp);
	free(dest);
	free(layer);
	free(id);
	return rc;
}

int cache_checkpoint_claim_spare(cache_store *s, const char *ckpt_dir, char **dir_out, int *lock_out,
				 cbl_error **err)
{
	int kfd = -1, lock = -1, tfd = -1, rc;
	char *id = NULL, *tmp = NULL;
	if ((rc = spare_parts(s, ckpt_dir, &kfd, &id, err)) < 0)
		return rc;
	char spare[160];
	spare_name(id, spare, sizeof(spare));
	if ((rc = cache_tmp_create(s, &tmp, &lock, err)) < 0)
		goto out;
	tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tfd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot open '%s'", tmp);
		goto out;
	}
	/* the claim: one rename, which one caller wins */
	if (renameat(kfd, spare, tfd, "upper") < 0) {
		rc = errno == ENOENT ? cbl_error_set(err, CBL_ENOENT, "checkpoint: no spare ready")
				     : cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot claim a spare");
		goto out;
	}
	if (mkdirat(tfd, "work", 0700) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkpoint: cannot create '%s/work'", tmp);
		goto out;
	}
	*dir_out = tmp;
	*lock_out = lock;
	tmp = NULL;
	lock = -1;
out:
	if (tmp)
		cbl_rm_rf(tmp, NULL);
	if (lock >= 0)
		close(lock);
	if (tfd >= 0)
		close(tfd);
	if (kfd >= 0)
		close(kfd);
	free(tmp);
	free(id);
	return rc;
}

typedef struct prune_ctx {
	cache_store *s;
	int64_t older_than_ms;
	size_t removed;
	uint64_t bytes;
} prune_ctx;

static int prune_one(int kfd, const char *scope, const char *key, const char *id, bool newest, void *payload)
{
	prune_ctx *p = payload;
	(void)scope;
	(void)key;
	struct stat st;
	if (fstatat(kfd, id, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	int64_t used_us = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
	bool old = p->older_than_ms > 0 && cbl_now_us() - used_us > p->older_than_ms * 1000;
	/* a newer checkpoint of the same key replaced it */
	if (newest && !old) {
		remove_spares(kfd, id, true); /* of an earlier boot */
		return 0;
	}
	json_t *m = read_meta(kfd, id);
	p->bytes += m ? (uint64_t)json_integer_value(json_object_get(m, "bytes")) : 0;
	char spare[160];
	struct stat sst;
	spare_name(id, spare, sizeof(spare));
	if (m && fstatat(kfd, spare, &sst, AT_SYMLINK_NOFOLLOW) == 0)
		p->bytes += (uint64_t)json_integer_value(json_object_get(m, "rootBytes"));
	json_decref(m);
	/* out of the readers' way first (a rename), then removed */
	char gone[96];
	snprintf(gone, sizeof(gone), ".gone-%s", id);
	if (renameat(kfd, id, kfd, gone) == 0) {
		char *path = cbl_fd_path(kfd);
		char *full = cbl_path_join(path, gone);
		sandbox_ids_rm_rf(full, NULL); /* files of the user's other ids too */
		free(full);
		free(path);
		p->removed++;
		/* after the checkpoint: a spare published meanwhile finds it
		 * gone and removes itself (cache_checkpoint_make_spare) */
		remove_spares(kfd, id, false);
	}
	return 0;
}

int cache_checkpoint_prune(cache_store *s, int64_t older_than_ms, size_t *removed, uint64_t *bytes,
			   cbl_error **err)
{
	prune_ctx p = {.s = s, .older_than_ms = older_than_ms};
	int rc = each_checkpoint(s, prune_one, &p, err);
	if (removed)
		*removed = p.removed;
	if (bytes)
		*bytes = p.bytes;
	return rc;
}
