/* images/import.c - `images import`: images built elsewhere, offline.
 *
 * Two formats, each as a directory or a tar (optionally compressed):
 * - an OCI image layout: oci-layout, index.json, blobs/sha256/<hex>; every
 *   blob is verified against its name while it is copied into the store;
 * - a `docker save` archive: manifest.json ([{Config, RepoTags, Layers}]),
 *   the config JSON and one uncompressed tar per layer.  The layers are
 *   stored by their own digest and checked against the config's diff_ids;
 *   an OCI manifest is written for them, so the image is then stored like
 *   a pulled one (docker 25+ archives are both: the OCI layout wins).
 * A tar is read once, as a stream: every member is hashed into the store
 * while it is read, nothing is extracted to disk.
 */
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/json.h"

#include "images/dl.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define SMALL_MEMBER (4u << 20)

typedef struct src {
	images_store *s;
	const char *dir;       /* directory mode */
	/* tar mode */
	cbl_strv names, digests;    /* members stored as blobs */
	cbl_strv small_names;       /* small members kept in memory */
	char **small_data;
	size_t *small_len;
	size_t small_cap;
	cbl_strv link_names, link_targets;
} src;

static void src_release(src *x)
{
	cbl_strv_release(&x->names);
	cbl_strv_release(&x->digests);
	for (size_t i = 0; i < x->small_names.n; i++)
		free(x->small_data[i]);
	free(x->small_data);
	free(x->small_len);
	cbl_strv_release(&x->small_names);
	cbl_strv_release(&x->link_names);
	cbl_strv_release(&x->link_targets);
}

/* Lexical normalization of a member name: "./a//b" -> "a/b"; ".." pops.
 * NULL when it climbs out. */
static char *norm(const char *base_dir, const char *name)
{
	cbl_strv parts = CBL_STRV_INIT;
	cbl_buf out = CBL_BUF_INIT;
	char *res = NULL;
	for (int pass = 0; pass < 2; pass++) {
		const char *p = pass == 0 ? (base_dir && name[0] != '/' ? base_dir : "") : name;
		while (*p) {
			while (*p == '/')
				p++;
			const char *e = strchr(p, '/');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			if (!l)
				break;
			if (l == 2 && !strncmp(p, "..", 2)) {
				if (!parts.n)
					goto out;
				free(parts.v[--parts.n]);
				parts.v[parts.n] = NULL;
			} else if (!(l == 1 && *p == '.')) {
				cbl_strv_push_take(&parts, cbl_xstrndup(p, l));
			}
			p += l;
		}
	}
	for (size_t i = 0; i < parts.n; i++)
		cbl_buf_printf(&out, "%s%s", i ? "/" : "", parts.v[i]);
	res = cbl_buf_detach(&out);
out:
	cbl_buf_release(&out);
	cbl_strv_release(&parts);
	return res;
}

static const char *tar_resolve(const src *x, const char *name)
{
	for (int hops = 0; hops < 8; hops++) {
		size_t i;
		for (i = 0; i < x->link_names.n; i++)
			if (!strcmp(x->link_names.v[i], name))
				break;
		if (i == x->link_names.n)
			return name;
		name = x->link_targets.v[i];
	}
	return name;
}

static bool blob_member(const char *name, char *digest)
{
	/* blobs/sha256/<hex> */
	if (strncmp(name, "blobs/sha256/", 13))
		return false;
	char d[80];
	snprintf(d, sizeof(d), "sha256:%s", name + 13);
	if (!images_digest_valid(d))
		return false;
	memcpy(digest, d, 72);
	return true;
}

static bool small_member(const char *name, int64_t size)
{
	if (size < 0 || size > (int64_t)SMALL_MEMBER)
		return false;
	size_t l = strlen(name);
	return !strcmp(name, "oci-layout") || !strcmp(name, "repositories") ||
	       (l > 5 && !strcmp(name + l - 5, ".json"));
}

/* Streams a tar into the store. */
static int tar_load(src *x, const char *path, cbl_error **err)
{
	if (images_dl_load(err) < 0)
		return CBL_EIO;
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	images_blob_writer w = IMAGES_BLOB_WRITER_INIT;
	char *buf = cbl_xmalloc(1 << 17);
	int rc = 0;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 256 << 10) != ARCHIVE_OK) {
		rc = cbl_error_set(err, CBL_EINVAL, "%s: %s", path, archive_error_string(a));
		goto out;
	}
	for (;;) {
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = cbl_error_set(err, CBL_EINVAL, "%s: not a readable tar: %s", path, archive_error_string(a));
			goto out;
		}
		char *name = norm(NULL, archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
		if (!name || !*name) {
			free(name);
			continue;
		}
		mode_t type = archive_entry_filetype(e);
		if (type == AE_IFLNK || archive_entry_hardlink(e)) {
			const char *t = type == AE_IFLNK ? archive_entry_symlink(e) : archive_entry_hardlink(e);
			char *dir = cbl_xstrdup(name);
			char *sl = strrchr(dir, '/');
			if (sl)
				*sl = '\0';
			else
				dir[0] = '\0';
			char *tn = t ? (type == AE_IFLNK ? norm(dir, t) : norm(NULL, t)) : NULL;
			free(dir);
			if (tn) {
				cbl_strv_push(&x->link_names, name);
				cbl_strv_push_take(&x->link_targets, tn);
			}
			free(name);
			continue;
		}
		if (type != AE_IFREG) {
			free(name);
			continue;
		}
		int64_t size = archive_entry_size(e);
		char digest[72];
		bool is_blob = blob_member(name, digest);
		if (small_member(name, size) && !is_blob) {
			cbl_buf b = CBL_BUF_INIT;
			ssize_t n;
			while ((n = archive_read_data(a, buf, 1 << 17)) > 0)
				cbl_buf_append(&b, buf, (size_t)n);
			if (n < 0) {
				cbl_buf_release(&b);
				free(name);
				rc = cbl_error_set(err, CBL_EINVAL, "%s: %s", path, archive_error_string(a));
				goto out;
			}
			size_t k = x->small_names.n;
			CBL_GROW(x->small_data, k + 1, x->small_cap);
			x->small_len = cbl_xreallocarray(x->small_len, x->small_cap, sizeof(size_t));
			x->small_len[k] = b.len;
			x->small_data[k] = cbl_buf_detach(&b);
			cbl_strv_push_take(&x->small_names, name);
			continue;
		}
		rc = images_blob_writer_open(&w, x->s, is_blob ? digest : NULL, size, false, err);
		if (rc) {
			free(name);
			goto out;
		}
		ssize_t n;
		while ((n = archive_read_data(a, buf, 1 << 17)) > 0) {
			rc = images_blob_writer_write(&w, buf, (size_t)n, err);
			if (rc) {
				free(name);
				goto out;
			}
		}
		if (n < 0) {
			free(name);
			rc = cbl_error_set(err, CBL_EINVAL, "%s: %s", path, archive_error_string(a));
			goto out;
		}
		char got[72];
		rc = images_blob_writer_commit(&w, got, err);
		images_blob_writer_release(&w, false);
		if (rc) {
			cbl_error_wrap(err, "%s: member %s", path, name);
			free(name);
			goto out;
		}
		cbl_strv_push_take(&x->names, name);
		cbl_strv_push(&x->digests, got);
	}
out:
	images_blob_writer_release(&w, false);
	archive_read_free(a);
	free(buf);
	return rc;
}

/* Reads a small member (JSON) of the source. */
static int src_read(src *x, const char *name, char **out, size_t *len, cbl_error **err)
{
	*out = NULL;
	char *n = norm(NULL, name);
	int rc = 0;
	if (!n || !*n || name[0] == '/') {
		free(n);
		return cbl_error_set(err, CBL_EINVAL, "archive names '%s': outside the archive", name);
	}
	if (x->dir) {
		char *p = cbl_path_join(x->dir, n);
		rc = cbl_read_file(p, SMALL_MEMBER, out, len, err);
		free(p);
		free(n);
		return rc;
	}
	const char *r = tar_resolve(x, n);
	for (size_t i = 0; i < x->small_names.n; i++)
		if (!strcmp(x->small_names.v[i], r)) {
			*out = cbl_xstrndup(x->small_data[i], x->small_len[i]);
			*len = x->small_len[i];
			free(n);
			return 0;
		}
	for (size_t i = 0; i < x->names.n; i++)
		if (!strcmp(x->names.v[i], r)) {
			rc = images_store_read_blob(x->s, x->digests.v[i], out, len, err);
			free(n);
			return rc;
		}
	char d[72];
	if (blob_member(r, d)) {
		rc = images_store_read_blob(x->s, d, out, len, err);
		free(n);
		return rc;
	}
	rc = cbl_error_set(err, CBL_ENOENT, "the archive has no %s", n);
	free(n);
	return rc;
}

static bool src_has(src *x, const char *name)
{
	if (x->dir) {
		char *p = cbl_path_join(x->dir, name);
		bool ok = access(p, R_OK) == 0;
		free(p);
		return ok;
	}
	for (size_t i = 0; i < x->small_names.n; i++)
		if (!strcmp(x->small_names.v[i], name))
			return true;
	return false;
}

/* Copies a file of the directory into the store (digest NULL = computed). */
static int dir_copy(src *x, const char *rel, const char *digest, int64_t size, char *out, cbl_error **err)
{
	images_blob_writer w = IMAGES_BLOB_WRITER_INIT;
	char *p = cbl_path_join(x->dir, rel);
	char *buf = cbl_xmalloc(1 << 17);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0) {
		rc = cbl_error_set_errno(err, errno == ENOENT ? CBL_ENOENT : CBL_EIO, errno, "open %s", p);
		goto out;
	}
	rc = images_blob_writer_open(&w, x->s, digest, size, false, err);
	if (rc)
		goto out;
	ssize_t n;
	while ((n = read(fd, buf, 1 << 17)) > 0) {
		rc = images_blob_writer_write(&w, buf, (size_t)n, err);
		if (rc)
			goto out;
	}
	if (n < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "read %s", p);
		goto out;
	}
	rc = images_blob_writer_commit(&w, out, err);
	if (rc)
		cbl_error_wrap(err, "%s", p);
out:
	images_blob_writer_release(&w, false);
	if (fd >= 0)
		close(fd);
	free(buf);
	free(p);
	return rc;
}

/* Makes sure a blob named by an OCI layout is stored (and verified). */
static int src_blob(src *x, const char *digest, int64_t size, cbl_error **err)
{
	if (images_store_has_blob(x->s, digest, size))
		return 0;
	if (!x->dir)
		return cbl_error_set(err, CBL_ENOENT, "the archive lacks blob %s", digest);
	char *rel = cbl_xasprintf("blobs/sha256/%s", images_digest_hex(digest));
	int rc = dir_copy(x, rel, digest, size, NULL, err);
	free(rel);
	return rc;
}

/* The digest of a docker-save layer file (stored on the way). */
static int src_file_digest(src *x, const char *name, char *out, cbl_error **err)
{
	char *n = norm(NULL, name);
	int rc = 0;
	if (!n || !*n || name[0] == '/') {
		free(n);
		return cbl_error_set(err, CBL_EINVAL, "manifest.json names '%s': outside the archive", name);
	}
	if (x->dir) {
		rc = dir_copy(x, n, NULL, -1, out, err);
		free(n);
		return rc;
	}
	const char *r = tar_resolve(x, n);
	for (size_t i = 0; i < x->names.n; i++)
		if (!strcmp(x->names.v[i], r)) {
			memcpy(out, x->digests.v[i], 72);
			free(n);
			return 0;
		}
	char d[72];
	if (blob_member(r, d) && images_store_has_blob(x->s, d, -1)) {
		memcpy(out, d, 72);
		free(n);
		return 0;
	}
	rc = cbl_error_set(err, CBL_ENOENT, "the archive has no layer %s", n);
	free(n);
	return rc;
}

/* ---- OCI layout ---------------------------------------------------------- */

static bool tag_matches(const char *want_name, const images_desc *d)
{
	if (!want_name)
		return false;
	if (d->image_name && !strcmp(d->image_name, want_name))
		return true;
	if (!d->ref_name)
		return false;
	if (!strcmp(d->ref_name, want_name))
		return true;
	const char *c = strrchr(want_name, ':');
	const char *sl = strrchr(want_name, '/');
	return c && (!sl || c > sl) && !strcmp(d->ref_name, c + 1);
}

static int oci_manifest(src *x, const images_desc *d, const images_platform *want, int depth, char *out,
			cbl_error **err)
{
	char *body = NULL;
	size_t len = 0;
	images_manifest m = {0};
	int rc = src_blob(x, d->digest, d->size, err);
	if (!rc)
		rc = images_store_read_blob(x->s, d->digest, &body, &len, err);
	if (!rc)
		rc = images_manifest_parse(body, len, d->media_type, &m, err);
	if (rc)
		goto out;
	if (m.kind == IMAGES_MANIFEST_INDEX) {
		size_t i;
		if (depth > 1) {
			rc = cbl_error_set(err, CBL_EINVAL, "image indexes nested too deep");
			goto out;
		}
		rc = images_index_select(&m, want, &i, err);
		if (!rc)
			rc = oci_manifest(x, &m.manifests[i], want, depth + 1, out, err);
		goto out;
	}
	rc = src_blob(x, m.config.digest, m.config.size, err);
	for (size_t i = 0; !rc && i < m.nlayers; i++)
		rc = src_blob(x, m.layers[i].digest, m.layers[i].size, err);
	if (!rc)
		memcpy(out, d->digest, 72);
out:
	images_manifest_release(&m);
	free(body);
	return rc;
}

static int oci_import(src *x, const char *want_name, const images_platform *want, char *digest,
		      char **found_name, cbl_error **err)
{
	char *body = NULL;
	size_t len = 0;
	images_manifest idx = {0};
	int rc = src_read(x, "index.json", &body, &len, err);
	if (!rc)
		rc = images_manifest_parse(body, len, IMAGES_MT_OCI_INDEX, &idx, err);
	if (rc)
		goto out;
	if (idx.kind != IMAGES_MANIFEST_INDEX || !idx.nmanifests) {
		rc = cbl_error_set(err, CBL_EINVAL, "index.json lists no image");
		goto out;
	}
	ssize_t pick = -1;
	for (size_t i = 0; i < idx.nmanifests; i++)
		if (tag_matches(want_name, &idx.manifests[i])) {
			pick = (ssize_t)i;
			break;
		}
	if (pick < 0 && idx.nmanifests == 1)
		pick = 0;
	if (pick < 0) {
		/* several images, or several platforms of one: a platform pick
		 * when the entries carry platforms */
		size_t i;
		if (images_index_select(&idx, want, &i, NULL) == 0)
			pick = (ssize_t)i;
	}
	if (pick < 0) {
		cbl_buf names = CBL_BUF_INIT;
		for (size_t i = 0; i < idx.nmanifests; i++)
			cbl_buf_printf(&names, "%s%s", i ? ", " : "",
				       idx.manifests[i].ref_name ? idx.manifests[i].ref_name : idx.manifests[i].digest);
		rc = cbl_error_set(err, CBL_EINVAL, "the OCI layout has several images (%s): pick one with --name NAME:TAG",
				   names.ptr);
		cbl_buf_release(&names);
		goto out;
	}
	const images_desc *d = &idx.manifests[pick];
	if (d->image_name)
		*found_name = cbl_xstrdup(d->image_name);
	else if (d->ref_name && (strchr(d->ref_name, '/') || strchr(d->ref_name, ':')))
		*found_name = cbl_xstrdup(d->ref_name);
	rc = oci_manifest(x, d, want, 0, digest, err);
out:
	images_manifest_release(&idx);
	free(body);
	return rc;
}

/* ---- docker save ------------------------------------------------------- */

static const char *sniff_layer_type(const images_store *s, const char *digest)
{
	unsigned char m[4] = {0};
	char *p = images_store_blob_path(s, digest);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (fd >= 0) {
		if (read(fd, m, 4) < 0)
			m[0] = 0;
		close(fd);
	}
	if (m[0] == 0x1f && m[1] == 0x8b)
		return "application/vnd.oci.image.layer.v1.tar+gzip";
	if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		return "application/vnd.oci.image.layer.v1.tar+zstd";
	return "application/vnd.oci.image.layer.v1.tar";
}

static bool repotag_matches(const images_catalog *cat, const char *want_name, const char *tag)
{
	char *a = NULL, *b = NULL;
	bool same = false;
	if (images_name_canonical(cat, want_name, &a, NULL, NULL) == 0 &&
	    images_name_canonical(cat, tag, &b, NULL, NULL) == 0)
		same = !strcmp(a, b);
	free(a);
	free(b);
	return same;
}

static int docker_import(src *x, const images_catalog *cat, const char *want_name, char *digest,
			 char **found_name, cbl_error **err)
{
	char *body = NULL, *cbody = NULL, *mtxt = NULL;
	size_t len = 0, clen = 0;
	json_t *j = NULL, *man = NULL;
	images_config cfg = {0};
	int rc = src_read(x, "manifest.json", &body, &len, err);
	if (rc)
		goto out;
	j = json_loadb(body, len, 0, NULL);
	if (!json_is_array(j) || !json_array_size(j)) {
		rc = cbl_error_set(err, CBL_EINVAL, "manifest.json is not a docker save manifest");
		goto out;
	}
	json_t *entry = NULL;
	size_t i;
	json_t *v;
	json_array_foreach(j, i, v) {
		size_t k;
		json_t *t;
		json_array_foreach(json_object_get(v, "RepoTags"), k, t)
			if (want_name && json_is_string(t) && repotag_matches(cat, want_name, json_string_value(t)))
				entry = v;
		if (entry)
			break;
	}
	if (!entry && json_array_size(j) == 1)
		entry = json_array_get(j, 0);
	if (!entry) {
		rc = cbl_error_set(err, CBL_EINVAL, "the archive has %zu images: pick one with --name NAME:TAG",
				   json_array_size(j));
		goto out;
	}
	json_t *tags = json_object_get(entry, "RepoTags");
	if (json_is_string(json_array_get(tags, 0)))
		*found_name = cbl_xstrdup(json_string_value(json_array_get(tags, 0)));
	const char *cfgname = cbl_json_str(entry, "Config");
	json_t *layers = json_object_get(entry, "Layers");
	if (!cfgname || !json_is_array(layers)) {
		rc = cbl_error_set(err, CBL_EINVAL, "manifest.json: an image without Config or Layers");
		goto out;
	}
	rc = src_read(x, cfgname, &cbody, &clen, err);
	if (rc)
		goto out;
	rc = images_config_parse(cbody, clen, &cfg, err);
	if (rc)
		goto out;
	char cdigest[72];
	rc = images_store_put_blob(x->s, NULL, cbody, clen, cdigest, err);
	if (rc)
		goto out;
	man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
			IMAGES_MT_OCI_MANIFEST, "config", "mediaType", IMAGES_MT_OCI_CONFIG, "digest", cdigest, "size",
			(json_int_t)clen, "layers");
	json_t *ml = json_object_get(man, "layers");
	json_array_foreach(layers, i, v) {
		if (!json_is_string(v)) {
			rc = cbl_error_set(err, CBL_EINVAL, "manifest.json: a layer that is not a path");
			goto out;
		}
		char ld[72];
		rc = src_file_digest(x, json_string_value(v), ld, err);
		if (rc)
			goto out;
		const char *mt = sniff_layer_type(x->s, ld);
		/* an uncompressed layer's digest is its diff_id */
		if (cfg.diff_ids.n == json_array_size(layers) && !strcmp(mt, "application/vnd.oci.image.layer.v1.tar") &&
		    strcmp(cfg.diff_ids.v[i], ld)) {
			rc = cbl_error_set(err, CBL_EIO,
					   "layer %s (%s) does not match the image config's diff_id %s: corrupt archive",
					   json_string_value(v), ld, cfg.diff_ids.v[i]);
			goto out;
		}
		char *p = images_store_blob_path(x->s, ld);
		struct stat st;
		int64_t sz = stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
		free(p);
		json_array_append_new(ml, json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", ld, "size", (json_int_t)sz));
	}
	mtxt = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);
	rc = images_store_put_blob(x->s, NULL, mtxt, strlen(mtxt), digest, err);
out:
	images_config_release(&cfg);
	json_decref(j);
	json_decref(man);
	free(mtxt);
	free(body);
	free(cbody);
	return rc;
}

int images_import(const char *home, const char *path, const char *name, const images_resolve_opts *o,
		  images_root **out, cbl_error **err)
{
	images_catalog *cat = NULL;
	images_store s = IMAGES_STORE_INIT;
	images_platform want = {0};
	src x = {0};
	char *found = NULL, *canon = NULL;
	char digest[72];
	images_root *root = NULL;
	struct stat st;
	int rc;
	if (out)
		*out = NULL;
	if (stat(path, &st) < 0)
		return cbl_error_set_errno(err, errno == ENOENT ? CBL_ENOENT : CBL_EIO, errno, "%s", path);
	rc = images_catalog_default(&cat, err);
	if (rc)
		goto out;
	if (name) {
		/* fail early on a bad name */
		rc = images_name_canonical(cat, name, &canon, NULL, err);
		if (rc)
			goto out;
	}
	if (o && o->platform)
		rc = images_platform_parse(o->platform, &want, err);
	else
		images_platform_host(&want);
	if (rc)
		goto out;
	rc = images_store_open(&s, home, err);
	if (!rc)
		rc = images_store_lock(&s, err);
	if (rc)
		goto out;
	x.s = &s;
	if (S_ISDIR(st.st_mode)) {
		x.dir = path;
	} else {
		rc = tar_load(&x, path, err);
		if (rc)
			goto out;
	}
	if (src_has(&x, "oci-layout") && src_has(&x, "index.json"))
		rc = oci_import(&x, name, &want, digest, &found, err);
	else if (src_has(&x, "manifest.json"))
		rc = docker_import(&x, cat, name, digest, &found, err);
	else
		rc = cbl_error_set(err, CBL_EINVAL,
				   "%s is neither an OCI image layout (oci-layout, index.json) nor a docker save archive "
				   "(manifest.json)",
				   path);
	if (rc)
		goto out;
	if (!canon) {
		if (!found) {
			rc = cbl_error_set(err, CBL_EINVAL, "%s does not name its image: give one with --name NAME:TAG",
					   path);
			goto out;
		}
		rc = images_name_canonical(cat, found, &canon, NULL, err);
		if (rc)
			goto out;
	}
	rc = images_store_materialize(&s, canon, digest, o, NULL, &root, err);
	if (rc)
		goto out;
	rc = images_store_ref_set(&s, canon, digest, err);
	if (rc)
		goto out;
	root->pulled = true;
	if (out) {
		*out = root;
		root = NULL;
	}
out:
	if (rc)
		cbl_error_wrap(err, "import %s", path);
	images_root_free(root);
	src_release(&x);
	images_store_release(&s);
	images_platform_release(&want);
	images_catalog_free(cat);
	free(found);
	free(canon);
	return rc;
}
