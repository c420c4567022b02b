/* images/store.c - the content-addressed blob store, image names, unpacked
 * roots, and their management (ls / rm / prune).  Layout: images/images.h.
 *
 * Blobs are verified once, when they enter the store (SHA-256 while
 * streaming, rename only on a match), and trusted afterwards except for a
 * size check: renames are not fsynced (a pull is repeatable), and a blob
 * truncated by a crash has the wrong size.  Small blobs (manifests, configs)
 * are re-hashed on every read since that is free.
 */
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define SMALL_BLOB_MAX (16u << 20)

int images_store_open(images_store *s, const char *home, cbl_error **err)
{
	static const char *const subdirs[] = {"blobs/sha256", "refs", "roots", "tmp"};
	char *dir = NULL, *real = NULL;
	int rc;
	s->dir = NULL;
	s->lock_fd = -1;
	if (!home || !*home)
		return cbl_error_set(err, CBL_EINVAL, "images: no state directory");
	dir = cbl_path_join(home, "images");
	rc = cbl_mkdir_p(dir, 0700, err);
	if (rc)
		goto out;
	rc = cbl_realpath(dir, &real, err);
	if (rc)
		goto out;
	/* roots unpacked as root keep their setuid binaries and owners: only
	 * the store's owner may reach them (a store made before is closed up) */
	struct stat st;
	if (stat(real, &st) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "images: stat %s", real);
		goto out;
	}
	if ((st.st_mode & 07777) != 0700 && st.st_uid == geteuid() && chmod(real, 0700) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "images: chmod 0700 %s", real);
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
		char *p = cbl_path_join(real, subdirs[i]);
		rc = cbl_mkdir_p(p, 0755, err);
		free(p);
		if (rc)
			goto out;
	}
	s->dir = real;
	real = NULL;
out:
	free(dir);
	free(real);
	return rc;
}

void images_store_release(images_store *s)
{
	images_store_unlock(s);
	free(s->dir);
	s->dir = NULL;
}

int images_store_lock(images_store *s, cbl_error **err)
{
	if (s->lock_fd >= 0)
		return 0;
	char *p = cbl_path_join(s->dir, "lock");
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	int rc = 0;
	if (fd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "images: open %s", p);
	} else {
		while (flock(fd, LOCK_EX) < 0) {
			if (errno == EINTR)
				continue;
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "images: lock %s", p);
			close(fd);
			fd = -1;
			break;
		}
	}
	s->lock_fd = fd;
	free(p);
	return rc;
}

void images_store_unlock(images_store *s)
{
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
}

char *images_store_blob_path(const images_store *s, const char *digest)
{
	return cbl_xasprintf("%s/blobs/sha256/%s", s->dir, images_digest_hex(digest));
}

bool images_store_has_blob(const images_store *s, const char *digest, int64_t size)
{
	if (!images_digest_valid(digest))
		return false;
	char *p = images_store_blob_path(s, digest);
	struct stat st;
	bool ok = lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (size < 0 || st.st_size == size);
	free(p);
	return ok;
}

/* ---- blob writer ------------------------------------------------------- */

int images_blob_writer_open(images_blob_writer *w, const images_store *s, const char *digest,
			    int64_t size, bool resume, cbl_error **err)
{
	*w = (images_blob_writer)IMAGES_BLOB_WRITER_INIT;
	w->store = s;
	w->size = size;
	if (digest) {
		if (!images_digest_valid(digest))
			return cbl_error_set(err, CBL_EINVAL, "bad digest '%s'", digest);
		w->digest = cbl_xstrdup(digest);
		w->part = cbl_xasprintf("%s/blobs/sha256/%s.part", s->dir, images_digest_hex(digest));
	} else {
		char u[37];
		cbl_uuid4(u);
		w->part = cbl_xasprintf("%s/tmp/blob-%s.part", s->dir, u);
	}
	w->md = EVP_MD_CTX_new();
	if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1)
		return cbl_error_set(err, CBL_EINTERNAL, "SHA-256 unavailable");
	if (resume && digest) {
		w->fd = open(w->part, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (w->fd >= 0) {
			char buf[1 << 16];
			ssize_t r;
			while ((r = read(w->fd, buf, sizeof(buf))) > 0) {
				EVP_DigestUpdate(w->md, buf, (size_t)r);
				w->n += (uint64_t)r;
			}
			if (r < 0 || (size >= 0 && w->n > (uint64_t)size))
				return images_blob_writer_restart(w, err);
			return 0;
		}
	}
	w->fd = open(w->part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (w->fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "create %s", w->part);
	return 0;
}

int images_blob_writer_restart(images_blob_writer *w, cbl_error **err)
{
	if (w->fd < 0)
		return cbl_error_set(err, CBL_EINTERNAL, "blob writer not open");
	if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "truncate %s", w->part);
	EVP_DigestInit_ex(w->md, EVP_sha256(), NULL);
	w->n = 0;
	return 0;
}

int images_blob_writer_write(images_blob_writer *w, const void *data, size_t len, cbl_error **err)
{
	if (w->size >= 0 && w->n + len > (uint64_t)w->size)
		return cbl_error_set(err, CBL_EIO, "blob %s: more data than the %lld bytes its descriptor says",
				     w->digest ? w->digest : "(import)", (long long)w->size);
	if (cbl_write_all(w->fd, data, len) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "write %s", w->part);
	EVP_DigestUpdate(w->md, data, len);
	w->n += len;
	return 0;
}

int images_blob_writer_commit(images_blob_writer *w, char *out_digest, cbl_error **err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char got[72];
	char *final = NULL;
	int rc = 0;
	EVP_DigestFinal_ex(w->md, md, &mdlen);
	memcpy(got, "sha256:", 7);
	for (unsigned i = 0; i < mdlen && i < 32; i++)
		snprintf(got + 7 + 2 * i, 3, "%02x", md[i]);
	if (w->size >= 0 && w->n != (uint64_t)w->size) {
		rc = cbl_error_set(err, CBL_EIO, "blob %s: got %llu bytes, its descriptor says %lld; nothing stored",
				   w->digest ? w->digest : got, (unsigned long long)w->n, (long long)w->size);
		goto fail;
	}
	if (w->digest && strcmp(got, w->digest)) {
		rc = cbl_error_set(err, CBL_EIO,
				   "blob %s: digest mismatch (the data has %s): corrupt or tampered; nothing stored",
				   w->digest, got);
		goto fail;
	}
	final = cbl_xasprintf("%s/blobs/sha256/%s", w->store->dir, got + 7);
	if (rename(w->part, final) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "rename %s", w->part);
		goto fail;
	}
	if (out_digest)
		memcpy(out_digest, got, 72);
	free(final);
	close(w->fd);
	w->fd = -1;
	return 0;
fail:
	free(final);
	unlink(w->part);
	close(w->fd);
	w->fd = -1;
	return rc;
}

void images_blob_writer_release(images_blob_writer *w, bool keep_part)
{
	if (w->fd >= 0) {
		close(w->fd);
		if (!keep_part)
			unlink(w->part);
	}
	w->fd = -1;
	free(w->part);
	free(w->digest);
	EVP_MD_CTX_free(w->md);
	*w = (images_blob_writer)IMAGES_BLOB_WRITER_INIT;
}

int images_store_put_blob(images_store *s, const char *digest, const void *data, size_t len,
			  char *out_digest, cbl_error **err)
{
	char got[72];
	images_sha256_digest(data, len, got);
	if (digest && strcmp(digest, got))
		return cbl_error_set(err, CBL_EIO,
				     "blob %s: digest mismatch (the data has %s): corrupt or tampered; nothing stored",
				     digest, got);
	if (out_digest)
		memcpy(out_digest, got, 72);
	if (images_store_has_blob(s, got, (int64_t)len))
		return 0;
	char *p = images_store_blob_path(s, got);
	int rc = cbl_write_file_atomic(p, data, len, 0644, false, err);
	free(p);
	return rc;
}

int images_store_read_blob(const images_store *s, const char *digest, char **out, size_t *len,
			   cbl_error **err)
{
	char got[72];
	*out = NULL;
	if (!images_digest_valid(digest))
		return cbl_error_set(err, CBL_EINVAL, "bad digest '%s'", digest);
	char *p = images_store_blob_path(s, digest);
	int rc = cbl_read_regular_file(p, SMALL_BLOB_MAX, out, len, err);
	free(p);
	if (rc)
		return rc == CBL_ENOENT ? cbl_error_set(err, CBL_ENOENT, "blob %s is not stored", digest) : rc;
	images_sha256_digest(*out, *len, got);
	if (strcmp(got, digest)) {
		free(*out);
		*out = NULL;
		return cbl_error_set(err, CBL_EIO, "stored blob %s is corrupt (has %s); run `images prune` and pull again",
				     digest, got);
	}
	return 0;
}

/* ---- names ------------------------------------------------------------- */

static char *ref_path(const images_store *s, const char *name)
{
	char d[72];
	images_sha256_digest(name, strlen(name), d);
	return cbl_xasprintf("%s/refs/%.32s.json", s->dir, d + 7);
}

int images_store_ref_set(images_store *s, const char *name, const char *digest, cbl_error **err)
{
	json_t *j = json_pack("{s:s, s:s, s:I}", "name", name, "digest", digest, "created",
			      (json_int_t)cbl_now_us());
	char *txt = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	char *p = ref_path(s, name);
	int rc = cbl_write_file_atomic(p, txt, strlen(txt), 0644, false, err);
	free(p);
	free(txt);
	json_decref(j);
	return rc;
}

static int ref_load(const char *path, json_t **out, cbl_error **err)
{
	char *txt = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = cbl_read_regular_file(path, 1 << 20, &txt, &len, err);
	if (rc)
		return rc;
	json_t *j = json_loadb(txt, len, 0, NULL);
	free(txt);
	if (!json_is_object(j) || !cbl_json_str(j, "name") || !images_digest_valid(cbl_json_str(j, "digest"))) {
		json_decref(j);
		return cbl_error_set(err, CBL_EINVAL, "%s: not an image record", path);
	}
	*out = j;
	return 0;
}

int images_store_ref_get(const images_store *s, const char *name, char **out_digest, cbl_error **err)
{
	char *p = ref_path(s, name);
	json_t *j = NULL;
	cbl_error *e = NULL;
	*out_digest = NULL;
	int rc = ref_load(p, &j, &e);
	free(p);
	if (rc == CBL_ENOENT || (!rc && strcmp(cbl_json_str(j, "name"), name))) {
		cbl_error_free(e);
		json_decref(j);
		return cbl_error_set(err, CBL_ENOENT, "image %s is not in the local store", name);
	}
	if (rc) {
		if (err && !*err)
			*err = e;
		else
			cbl_error_free(e);
		return rc;
	}
	*out_digest = cbl_xstrdup(cbl_json_str(j, "digest"));
	json_decref(j);
	return 0;
}

/* ---- roots ------------------------------------------------------------- */

static char *root_path(const images_store *s, const char *digest)
{
	return cbl_xasprintf("%s/roots/%s", s->dir, images_digest_hex(digest));
}

static char *meta_path(const images_store *s, const char *digest)
{
	return cbl_xasprintf("%s/roots/%s.json", s->dir, images_digest_hex(digest));
}

void images_root_free(images_root *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->rootfs);
	free(r->digest);
	cbl_strv_release(&r->env);
	cbl_strv_release(&r->warnings);
	free(r->working_dir);
	free(r->user);
	free(r->os);
	free(r->arch);
	free(r->variant);
	free(r);
}

static char *jdup(const json_t *o, const char *k)
{
	const char *s = cbl_json_str(o, k);
	return s ? cbl_xstrdup(s) : NULL;
}

int images_store_root_load(const images_store *s, const char *name, const char *digest,
			   images_root **out, cbl_error **err)
{
	char *rp = root_path(s, digest), *mp = meta_path(s, digest), *txt = NULL;
	size_t len = 0;
	json_t *j = NULL;
	struct stat st;
	int rc = 0;
	*out = NULL;
	if (lstat(rp, &st) < 0 || !S_ISDIR(st.st_mode)) {
		rc = cbl_error_set(err, CBL_ENOENT, "image %s is not unpacked", digest);
		goto out;
	}
	rc = cbl_read_regular_file(mp, 1 << 20, &txt, &len, err);
	if (rc)
		goto out;
	j = json_loadb(txt, len, 0, NULL);
	if (!json_is_object(j)) {
		rc = cbl_error_set(err, CBL_EINVAL, "%s: not an image summary", mp);
		goto out;
	}
	images_root *r = cbl_xcalloc(1, sizeof(*r));
	r->kind = IMAGES_KIND_REGISTRY;
	r->name = cbl_xstrdup(name ? name : digest);
	r->rootfs = rp;
	rp = NULL;
	r->digest = cbl_xstrdup(digest);
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(j, "env"), i, v)
		if (json_is_string(v))
			cbl_strv_push(&r->env, json_string_value(v));
	r->working_dir = jdup(j, "working_dir");
	r->user = jdup(j, "user");
	r->os = jdup(j, "os");
	r->arch = jdup(j, "architecture");
	r->variant = jdup(j, "variant");
	const char *was = cbl_json_str(j, "idmap");
	if (was) {
		sandbox_ids ids;
		sandbox_ids_probe(&ids);
		char *now = images_idmap_string(&ids);
		if (strcmp(was, now))
			cbl_strv_pushf(&r->warnings, "%s was unpacked for the id map %s, this build's is %s: its files' "
						     "owners are not the image's here (`codebuild-local images rm %s`, "
						     "then pull or import it again)",
				       r->name, was, now, r->name);
		free(now);
	}
	/* last use: the summary's mtime (one syscall; failure is harmless) */
	utimensat(AT_FDCWD, mp, NULL, AT_SYMLINK_NOFOLLOW);
	*out = r;
out:
	json_decref(j);
	free(txt);
	free(rp);
	free(mp);
	return rc;
}

static void progress(const images_resolve_opts *o, images_progress *p)
{
	if (o && o->progress)
		o->progress(p, o->payload);
}

/* Reads an image's manifest and config from the blob store and checks that
 * every layer is there; *all_total = the layers' size. */
static int load_image(images_store *s, const char *name, const char *digest, images_manifest *m,
		      images_config *cfg, uint64_t *all_total, cbl_error **err)
{
	char *mbody = NULL, *cbody = NULL;
	size_t mlen = 0, clen = 0;
	int rc = images_store_read_blob(s, digest, &mbody, &mlen, err);
	if (rc)
		goto out;
	rc = images_manifest_parse(mbody, mlen, NULL, m, err);
	if (rc)
		goto out;
	if (m->kind != IMAGES_MANIFEST_IMAGE) {
		rc = cbl_error_set(err, CBL_EINVAL, "%s is an index, not an image manifest", digest);
		goto out;
	}
	rc = images_store_read_blob(s, m->config.digest, &cbody, &clen, err);
	if (rc)
		goto out;
	rc = images_config_parse(cbody, clen, cfg, err);
	if (rc)
		goto out;
	*all_total = 0;
	for (size_t i = 0; i < m->nlayers; i++) {
		if (!images_store_has_blob(s, m->layers[i].digest, m->layers[i].size)) {
			rc = cbl_error_set(err, CBL_ENOENT, "layer %s of %s is not stored (or truncated)",
					   m->layers[i].digest, name ? name : digest);
			goto out;
		}
		*all_total += (uint64_t)m->layers[i].size;
	}
out:
	free(mbody);
	free(cbody);
	return rc;
}

/* Unpacks the layers, in order, into ctx->root, with progress; with a
 * normal user's owners when ids has subordinate ids (userns.c). */
static int unpack_layers(images_store *s, const images_resolve_opts *o, const images_manifest *m,
			 uint64_t all_total, const sandbox_ids *ids, images_unpack_ctx *ctx, cbl_error **err)
{
	uint64_t done = 0;
	for (size_t i = 0; i < m->nlayers; i++) {
		images_progress p = {.stage = IMAGES_STAGE_UNPACK, .digest = m->layers[i].digest,
				     .done = 0, .total = (uint64_t)m->layers[i].size, .all_done = done,
				     .all_total = all_total, .index = i, .count = m->nlayers};
		progress(o, &p);
		char *lp = images_store_blob_path(s, m->layers[i].digest);
		int rc = images_ids_mapped(ids) ? images_unpack_layer_mapped(ctx, ids, lp, err)
						 : images_unpack_layer(ctx, lp, err);
		free(lp);
		if (rc) {
			cbl_error_wrap(err, "layer %zu/%zu (%s)", i + 1, m->nlayers, m->layers[i].digest);
			return rc;
		}
		done += (uint64_t)m->layers[i].size;
	}
	return 0;
}

/* Writes a root's summary (meta.json at mp): sizes, counts and the config
 * a build needs. */
static int write_root_meta(const char *mp, const char *digest, const images_manifest *m,
			   const images_config *cfg, const images_unpack_ctx *ctx, uint64_t blob_bytes,
			   const char *idmap, cbl_error **err)
{
	json_t *meta = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "digest", digest, "config",
				 m->config.digest, "root_bytes", (json_int_t)ctx->bytes, "blob_bytes",
				 (json_int_t)blob_bytes, "created", (json_int_t)cbl_now_us(), "entries",
				 (json_int_t)ctx->entries);
	json_t *env = json_array();
	for (size_t i = 0; i < cfg->env.n; i++)
		json_array_append_new(env, json_string(cfg->env.v[i]));
	json_object_set_new(meta, "env", env);
	cbl_json_set_str(meta, "working_dir", cfg->working_dir);
	cbl_json_set_str(meta, "user", cfg->user);
	cbl_json_set_str(meta, "os", cfg->os);
	cbl_json_set_str(meta, "architecture", cfg->arch);
	cbl_json_set_str(meta, "variant", cfg->variant);
	cbl_json_set_str(meta, "idmap", idmap);
	if (ctx->skipped)
		json_object_set_new(meta, "skipped_entries", json_integer((json_int_t)ctx->skipped));
	char *txt = json_dumps(meta, JSON_INDENT(1) | JSON_SORT_KEYS);
	int rc = cbl_write_file_atomic(mp, txt, strlen(txt), 0644, false, err);
	free(txt);
	json_decref(meta);
	return rc;
}

/* What unpacking left out, for the caller to say. */
static void warn_devices(images_root *r, const char *name, const images_unpack_ctx *ctx)
{
	cbl_buf w = CBL_BUF_INIT;
	cbl_buf_printf(&w, "%s: %zu device node(s) in its layers not created (a build has its own "
			   "minimal /dev): ", name, ctx->skipped);
	for (size_t i = 0; i < ctx->devices.n; i++)
		cbl_buf_printf(&w, "%s%s", i ? ", " : "", ctx->devices.v[i]);
	if (ctx->skipped > ctx->devices.n)
		cbl_buf_puts(&w, ", ...");
	cbl_strv_push_take(&r->warnings, cbl_buf_detach(&w));
}

int images_store_materialize(images_store *s, const char *name, const char *digest,
			     const images_resolve_opts *o, bool *did_unpack, images_root **out,
			     cbl_error **err)
{
	char *tmp = NULL, *rp = NULL, *mp = NULL;
	images_manifest m = {0};
	images_config cfg = {0};
	uint64_t all_total = 0;
	images_unpack_ctx ctx = {.as_root = geteuid() == 0, .devices = CBL_STRV_INIT};
	struct stat st;
	sandbox_ids ids;
	char *idmap = NULL;
	int rc;
	if (did_unpack)
		*did_unpack = false;
	rp = root_path(s, digest);
	mp = meta_path(s, digest);
	if (lstat(rp, &st) == 0 && S_ISDIR(st.st_mode) && lstat(mp, &st) == 0) {
		rc = images_store_root_load(s, name, digest, out, err);
		goto out;
	}
	rc = load_image(s, name, digest, &m, &cfg, &all_total, err);
	if (rc)
		goto out;

	/* leftovers of a crashed unpack of this same image */
	char u[37];
	cbl_uuid4(u);
	tmp = cbl_xasprintf("%s/tmp/root-%.12s-%s", s->dir, images_digest_hex(digest), u);
	if (mkdir(tmp, 0755) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "mkdir %s", tmp);
		goto out;
	}
	ctx.root = tmp;
	sandbox_ids_probe(&ids);
	idmap = images_idmap_string(&ids);
	rc = unpack_layers(s, o, &m, all_total, &ids, &ctx, err);
	if (rc)
		goto out;
	rc = write_root_meta(mp, digest, &m, &cfg, &ctx, (uint64_t)m.config.size + all_total, idmap, err);
	if (rc)
		goto out;
	images_remove_tree(rp, NULL, NULL); /* a root without its summary: an interrupted publish */
	if (rename(tmp, rp) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "rename %s", tmp);
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (did_unpack)
		*did_unpack = true;
	images_progress p = {.stage = IMAGES_STAGE_DONE, .all_done = all_total, .all_total = all_total,
			     .index = m.nlayers, .count = m.nlayers, .message = rp};
	progress(o, &p);
	rc = images_store_root_load(s, name, digest, out, err);
	if (!rc && ctx.skipped)
		warn_devices(*out, name ? name : digest, &ctx);
out:
	cbl_strv_release(&ctx.devices);
	if (tmp) {
		images_remove_tree(tmp, NULL, NULL);
		free(tmp);
	}
	free(idmap);
	free(rp);
	free(mp);
	images_manifest_release(&m);
	images_config_release(&cfg);
	return rc;
}

/* ---- ls / rm / prune ----------------------------------------------------- */

void images_list_free(images_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].digest);
	}
	free(l->items);
	free(l);
}

static int cmp_info(const void *a, const void *b)
{
	const images_info *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->digest, y->digest);
}

/* Calls fn for every valid record under refs/. */
static int each_ref(const images_store *s, void (*fn)(const char *path, json_t *rec, void *payload),
		    void *payload, cbl_error **err)
{
	char *dir = cbl_path_join(s->dir, "refs");
	DIR *d = opendir(dir);
	if (!d) {
		int rc = cbl_error_set_errno(err, CBL_EIO, errno, "open %s", dir);
		free(dir);
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		char *p = cbl_path_join(dir, de->d_name);
		json_t *j = NULL;
		if (ref_load(p, &j, NULL) == 0)
			fn(p, j, payload);
		json_decref(j);
		free(p);
	}
	closedir(d);
	free(dir);
	return 0;
}

struct ls_state {
	const images_store *s;
	images_list *l;
	size_t cap;
};

static void ls_one(const char *path, json_t *rec, void *payload)
{
	(void)path;
	struct ls_state *st = payload;
	const char *digest = cbl_json_str(rec, "digest");
	CBL_GROW(st->l->items, st->l->n + 1, st->cap);
	images_info *in = &st->l->items[st->l->n++];
	memset(in, 0, sizeof(*in));
	in->name = cbl_xstrdup(cbl_json_str(rec, "name"));
	in->digest = cbl_xstrdup(digest);
	json_t *c = json_object_get(rec, "created");
	in->created_us = json_is_integer(c) ? (int64_t)json_integer_value(c) : 0;
	char *mp = meta_path(st->s, digest), *rp = root_path(st->s, digest), *txt = NULL;
	size_t len;
	struct stat sb;
	cbl_error *e = NULL;
	if (lstat(rp, &sb) == 0 && S_ISDIR(sb.st_mode) && cbl_read_regular_file(mp, 1 << 20, &txt, &len, &e) == 0) {
		json_t *m = json_loadb(txt, len, 0, NULL);
		json_t *v = json_object_get(m, "root_bytes");
		in->root_bytes = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
		v = json_object_get(m, "blob_bytes");
		in->blob_bytes = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
		in->unpacked = true;
		json_decref(m);
		if (stat(mp, &sb) == 0)
			in->last_used_us = (int64_t)sb.st_mtim.tv_sec * 1000000 + sb.st_mtim.tv_nsec / 1000;
	} else {
		/* not unpacked: the blob size from the manifest */
		char *mb = NULL;
		size_t ml = 0;
		images_manifest man = {0};
		if (images_store_read_blob(st->s, digest, &mb, &ml, &e) == 0 &&
		    images_manifest_parse(mb, ml, NULL, &man, &e) == 0) {
			in->blob_bytes = (uint64_t)man.config.size;
			for (size_t i = 0; i < man.nlayers; i++)
				in->blob_bytes += (uint64_t)man.layers[i].size;
		}
		images_manifest_release(&man);
		free(mb);
	}
	cbl_error_free(e);
	free(txt);
	free(mp);
	free(rp);
}

int images_ls(const char *home, images_list **out, cbl_error **err)
{
	images_store s = IMAGES_STORE_INIT;
	*out = NULL;
	int rc = images_store_open(&s, home, err);
	if (rc)
		return rc;
	images_list *l = cbl_xcalloc(1, sizeof(*l));
	struct ls_state st = {&s, l, 0};
	rc = each_ref(&s, ls_one, &st, err);
	if (rc) {
		images_list_free(l);
	} else {
		if (l->n)
			qsort(l->items, l->n, sizeof(*l->items), cmp_info);
		*out = l;
	}
	images_store_release(&s);
	return rc;
}

/* A set of hex digests (sorted vector; sizes are small). */
typedef struct hexset {
	cbl_strv v;
} hexset;

static bool hexset_has(const hexset *h, const char *hex)
{
	for (size_t i = 0; i < h->v.n; i++)
		if (!strcmp(h->v.v[i], hex))
			return true;
	return false;
}

static void hexset_add(hexset *h, const char *digest)
{
	const char *hex = images_digest_hex(digest);
	if (!hexset_has(h, hex))
		cbl_strv_push(&h->v, hex);
}

static void mark_one(const char *path, json_t *rec, void *payload)
{
	(void)path;
	void **pp = payload;
	const images_store *s = pp[0];
	hexset *roots = pp[1], *blobs = pp[2];
	const char *digest = cbl_json_str(rec, "digest");
	hexset_add(roots, digest);
	hexset_add(blobs, digest);
	char *mb = NULL;
	size_t ml = 0;
	images_manifest m = {0};
	cbl_error *e = NULL;
	if (images_store_read_blob(s, digest, &mb, &ml, &e) == 0 && images_manifest_parse(mb, ml, NULL, &m, &e) == 0 &&
	    m.kind == IMAGES_MANIFEST_IMAGE) {
		hexset_add(blobs, m.config.digest);
		for (size_t i = 0; i < m.nlayers; i++)
			hexset_add(blobs, m.layers[i].digest);
	}
	images_manifest_release(&m);
	cbl_error_free(e);
	free(mb);
}

static void remove_counted(const char *path, uint64_t *freed)
{
	images_remove_tree(path, freed, NULL);
}

/* A build holds a shared flock on the root it runs on (images_root_hold). */
static bool root_in_use(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool busy = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

int images_root_hold(const images_root *r, cbl_error **err)
{
	if (!r->rootfs || r->kind != IMAGES_KIND_REGISTRY)
		return -1;
	int fd = open(r->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_SH) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return cbl_error_set_errno(err, CBL_EIO, e, "cannot hold the image root %s", r->rootfs);
	}
	/* pruned between resolving and holding: the caller resolves again */
	char *js = cbl_xasprintf("%s.json", r->rootfs);
	struct stat st;
	bool gone = stat(js, &st) < 0;
	free(js);
	if (gone) {
		close(fd);
		return cbl_error_set(err, CBL_ENOENT, "image root %s was removed", r->rootfs);
	}
	return fd;
}

/* Removes what no name uses.  Holds the store's lock. */
static int gc(images_store *s, uint64_t *freed, cbl_error **err)
{
	hexset roots = {CBL_STRV_INIT}, blobs = {CBL_STRV_INIT};
	void *pl[3] = {s, &roots, &blobs};
	int rc = each_ref(s, mark_one, pl, err);
	if (rc)
		goto out;
	char *dir = cbl_path_join(s->dir, "roots");
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char hex[65];
		size_t l = strlen(de->d_name);
		if (l != 64 && !(l == 69 && !strcmp(de->d_name + 64, ".json")))
			continue;
		memcpy(hex, de->d_name, 64);
		hex[64] = '\0';
		if (hexset_has(&roots, hex))
			continue;
		/* a running build's lower layer stays, its summary too: a
		 * later prune takes both */
		char *rootdir = cbl_path_join(dir, hex);
		bool busy = root_in_use(rootdir);
		free(rootdir);
		if (busy)
			continue;
		char *p = cbl_path_join(dir, de->d_name);
		remove_counted(p, freed);
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
	dir = cbl_path_join(s->dir, "blobs/sha256");
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char hex[65];
		if (strlen(de->d_name) < 64)
			continue;
		memcpy(hex, de->d_name, 64);
		hex[64] = '\0';
		/* partial downloads go too: prune means "give me the space" */
		if (strlen(de->d_name) == 64 && hexset_has(&blobs, hex))
			continue;
		char *p = cbl_path_join(dir, de->d_name);
		remove_counted(p, freed);
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
	dir = cbl_path_join(s->dir, "tmp");
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *p = cbl_path_join(dir, de->d_name);
		remove_counted(p, freed);
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
out:
	cbl_strv_release(&roots.v);
	cbl_strv_release(&blobs.v);
	return rc;
}

int images_prune(const char *home, uint64_t *freed, cbl_error **err)
{
	images_store s = IMAGES_STORE_INIT;
	uint64_t n = 0;
	int rc = images_store_open(&s, home, err);
	if (!rc)
		rc = images_store_lock(&s, err);
	if (!rc)
		rc = gc(&s, &n, err);
	images_store_release(&s);
	if (freed)
		*freed = n;
	return rc;
}

int images_store_rm_name(const char *home, const char *name, uint64_t *freed, cbl_error **err)
{
	images_store s = IMAGES_STORE_INIT;
	uint64_t n = 0;
	char *digest = NULL, *p = NULL;
	int rc = images_store_open(&s, home, err);
	if (!rc)
		rc = images_store_lock(&s, err);
	if (!rc)
		rc = images_store_ref_get(&s, name, &digest, err);
	if (rc)
		goto out;
	p = ref_path(&s, name);
	if (unlink(p) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "remove %s", p);
		goto out;
	}
	rc = gc(&s, &n, err);
out:
	if (freed)
		*freed = n;
	free(digest);
	free(p);
	images_store_release(&s);
	return rc;
}
