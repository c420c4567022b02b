/* images/manifest.c - image manifests, manifest lists / OCI indexes, image
 * configs, and picking the host's platform out of an index.
 *
 * Accepted: OCI image manifest and index (mediaType optional, as the OCI
 * spec allows), Docker schema 2 manifest and manifest list.  Schema 1
 * (signed JWS) manifests are refused: they carry no config digest and the
 * registries that still serve them also serve schema 2.
 */
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "util/banned.h"

static char *dup_or_null(const char *s) { return s ? cbl_xstrdup(s) : NULL; }

static void desc_release(images_desc *d)
{
	free(d->media_type);
	free(d->digest);
	free(d->os);
	free(d->arch);
	free(d->variant);
	free(d->ref_name);
	free(d->image_name);
	memset(d, 0, sizeof(*d));
}

void images_manifest_release(images_manifest *m)
{
	desc_release(&m->config);
	for (size_t i = 0; i < m->nlayers; i++)
		desc_release(&m->layers[i]);
	free(m->layers);
	for (size_t i = 0; i < m->nmanifests; i++)
		desc_release(&m->manifests[i]);
	free(m->manifests);
	memset(m, 0, sizeof(*m));
}

static int desc_parse(const json_t *j, images_desc *d, const char *what, cbl_error **err)
{
	memset(d, 0, sizeof(*d));
	if (!json_is_object(j))
		return cbl_error_set(err, CBL_EINVAL, "manifest: %s is not an object", what);
	const char *dg = cbl_json_str(j, "digest");
	json_t *sz = json_object_get(j, "size");
	if (!dg)
		return cbl_error_set(err, CBL_EINVAL, "manifest: %s has no digest", what);
	if (!images_digest_valid(dg))
		return cbl_error_set(err, CBL_EINVAL,
				     "manifest: %s digest '%s' is not a sha256 digest (the only algorithm supported)",
				     what, dg);
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return cbl_error_set(err, CBL_EINVAL, "manifest: %s %s has no valid size", what, dg);
	d->digest = cbl_xstrdup(dg);
	d->size = (int64_t)json_integer_value(sz);
	d->media_type = dup_or_null(cbl_json_str(j, "mediaType"));
	json_t *pf = json_object_get(j, "platform");
	if (json_is_object(pf)) {
		d->os = dup_or_null(cbl_json_str(pf, "os"));
		d->arch = dup_or_null(cbl_json_str(pf, "architecture"));
		d->variant = dup_or_null(cbl_json_str(pf, "variant"));
	}
	json_t *an = json_object_get(j, "annotations");
	if (json_is_object(an)) {
		d->ref_name = dup_or_null(cbl_json_str(an, "org.opencontainers.image.ref.name"));
		d->image_name = dup_or_null(cbl_json_str(an, "io.containerd.image.name"));
	}
	return 0;
}

static bool layer_type_ok(const char *mt)
{
	static const char *const ok[] = {
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.diff.tar",
		"application/vnd.docker.image.rootfs.diff.tar.zstd",
		/* non-distributable layers are ordinary layers that some registries
		 * refuse to mirror; the blob is what we fetch either way */
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
		NULL,
	};
	if (!mt)
		return true; /* docker-save imports: sniffed when unpacked */
	for (size_t i = 0; ok[i]; i++)
		if (!strcmp(mt, ok[i]))
			return true;
	return false;
}

int images_manifest_parse(const char *body, size_t len, const char *content_type,
			  images_manifest *out, cbl_error **err)
{
	json_error_t je;
	json_t *j = NULL;
	images_manifest m = {0};
	int rc = 0;
	memset(out, 0, sizeof(*out));
	if (content_type && (strstr(content_type, "manifest.v1+prettyjws") ||
			     strstr(content_type, "distribution.manifest.v1+json")))
		return cbl_error_set(err, CBL_EINVAL,
				     "the registry only has a Docker schema 1 manifest for this image (%s): schema 1 "
				     "is deprecated and not supported; push the image again with a current docker, "
				     "buildah or skopeo",
				     content_type);
	j = json_loadb(body, len, 0, &je);
	if (!json_is_object(j)) {
		rc = cbl_error_set(err, CBL_EINVAL, "manifest is not a JSON object (%s)",
				   j ? "wrong type" : je.text);
		goto out;
	}
	json_t *sv = json_object_get(j, "schemaVersion");
	if (json_is_integer(sv) && json_integer_value(sv) == 1) {
		rc = cbl_error_set(err, CBL_EINVAL,
				   "Docker schema 1 manifests are deprecated and not supported; push the image again "
				   "with a current docker, buildah or skopeo");
		goto out;
	}
	if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
		rc = cbl_error_set(err, CBL_EINVAL, "manifest: unsupported schemaVersion");
		goto out;
	}
	const char *mt = cbl_json_str(j, "mediaType");
	if (!mt && content_type && *content_type)
		mt = content_type;
	json_t *mans = json_object_get(j, "manifests");
	json_t *layers = json_object_get(j, "layers");
	bool is_index;
	if (mt && (!strncmp(mt, IMAGES_MT_OCI_INDEX, strlen(IMAGES_MT_OCI_INDEX)) ||
		   !strncmp(mt, IMAGES_MT_DOCKER_LIST, strlen(IMAGES_MT_DOCKER_LIST))))
		is_index = true;
	else if (mt && (!strncmp(mt, IMAGES_MT_OCI_MANIFEST, strlen(IMAGES_MT_OCI_MANIFEST)) ||
			!strncmp(mt, IMAGES_MT_DOCKER_MANIFEST, strlen(IMAGES_MT_DOCKER_MANIFEST))))
		is_index = false;
	else if (json_is_array(mans) && !layers)
		is_index = true; /* OCI allows omitting mediaType */
	else if (json_is_array(layers))
		is_index = false;
	else {
		rc = cbl_error_set(err, CBL_EINVAL, "unsupported manifest media type '%s'", mt ? mt : "(none)");
		goto out;
	}
	if (is_index) {
		m.kind = IMAGES_MANIFEST_INDEX;
		if (!json_is_array(mans)) {
			rc = cbl_error_set(err, CBL_EINVAL, "image index has no manifests array");
			goto out;
		}
		size_t n = json_array_size(mans);
		m.manifests = cbl_xcalloc(n ? n : 1, sizeof(*m.manifests));
		for (size_t i = 0; i < n; i++) {
			rc = desc_parse(json_array_get(mans, i), &m.manifests[i], "index entry", err);
			m.nmanifests = i + 1;
			if (rc)
				goto out;
		}
	} else {
		m.kind = IMAGES_MANIFEST_IMAGE;
		rc = desc_parse(json_object_get(j, "config"), &m.config, "config", err);
		if (rc)
			goto out;
		if (!json_is_array(layers)) {
			rc = cbl_error_set(err, CBL_EINVAL, "image manifest has no layers array");
			goto out;
		}
		size_t n = json_array_size(layers);
		m.layers = cbl_xcalloc(n ? n : 1, sizeof(*m.layers));
		for (size_t i = 0; i < n; i++) {
			rc = desc_parse(json_array_get(layers, i), &m.layers[i], "layer", err);
			m.nlayers = i + 1;
			if (rc)
				goto out;
			if (!layer_type_ok(m.layers[i].media_type)) {
				rc = cbl_error_set(err, CBL_EINVAL,
						   "layer %s has media type '%s', which cannot be unpacked "
						   "(supported: tar, tar+gzip, tar+zstd)",
						   m.layers[i].digest, m.layers[i].media_type);
				goto out;
			}
		}
	}
	*out = m;
	memset(&m, 0, sizeof(m));
out:
	images_manifest_release(&m);
	json_decref(j);
	return rc;
}

void images_platform_release(images_platform *p)
{
	free(p->os);
	free(p->arch);
	free(p->variant);
	memset(p, 0, sizeof(*p));
}

void images_platform_host(images_platform *out)
{
	struct utsname u;
	memset(out, 0, sizeof(*out));
	out->os = cbl_xstrdup("linux");
	const char *m = uname(&u) == 0 ? u.machine : "x86_64";
	static const struct { const char *machine, *arch, *variant; } map[] = {
		{"x86_64", "amd64", NULL},   {"aarch64", "arm64", "v8"}, {"arm64", "arm64", "v8"},
		{"armv7l", "arm", "v7"},     {"armv6l", "arm", "v6"},    {"i686", "386", NULL},
		{"i386", "386", NULL},       {"ppc64le", "ppc64le", NULL}, {"s390x", "s390x", NULL},
		{"riscv64", "riscv64", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (!strcmp(m, map[i].machine)) {
			out->arch = cbl_xstrdup(map[i].arch);
			out->variant = dup_or_null(map[i].variant);
			return;
		}
	out->arch = cbl_xstrdup(m);
}

int images_platform_parse(const char *s, images_platform *out, cbl_error **err)
{
	memset(out, 0, sizeof(*out));
	const char *a = s ? strchr(s, '/') : NULL;
	if (!a || a == s || !a[1])
		return cbl_error_set(err, CBL_EINVAL, "platform '%s' is not os/arch[/variant]", s ? s : "");
	const char *v = strchr(a + 1, '/');
	out->os = cbl_xstrndup(s, (size_t)(a - s));
	if (v) {
		out->arch = cbl_xstrndup(a + 1, (size_t)(v - a - 1));
		out->variant = v[1] ? cbl_xstrdup(v + 1) : NULL;
	} else {
		out->arch = cbl_xstrdup(a + 1);
	}
	/* docker's aliases */
	if (!strcmp(out->arch, "x86_64")) {
		free(out->arch);
		out->arch = cbl_xstrdup("amd64");
	} else if (!strcmp(out->arch, "aarch64")) {
		free(out->arch);
		out->arch = cbl_xstrdup("arm64");
	}
	return 0;
}

static bool variant_match(const char *want, const char *have)
{
	/* a side without a variant matches any (arm64 is written with "v8" or
	 * without a variant interchangeably) */
	return !want || !have || !strcmp(want, have);
}

int images_index_select(const images_manifest *idx, const images_platform *want, size_t *out,
			cbl_error **err)
{
	/* exact variant first, then entries without one */
	ssize_t best = -1;
	int best_score = -1;
	for (size_t i = 0; i < idx->nmanifests; i++) {
		const images_desc *d = &idx->manifests[i];
		if (!d->os || !d->arch || strcmp(d->os, want->os) || strcmp(d->arch, want->arch))
			continue;
		if (d->media_type && strcmp(d->media_type, IMAGES_MT_OCI_MANIFEST) &&
		    strcmp(d->media_type, IMAGES_MT_DOCKER_MANIFEST) && strcmp(d->media_type, IMAGES_MT_OCI_INDEX) &&
		    strcmp(d->media_type, IMAGES_MT_DOCKER_LIST))
			continue;
		if (!variant_match(want->variant, d->variant))
			continue;
		int score = (want->variant && d->variant && !strcmp(want->variant, d->variant)) ? 2 : 1;
		if (score > best_score) {
			best = (ssize_t)i;
			best_score = score;
		}
	}
	if (best >= 0) {
		*out = (size_t)best;
		return 0;
	}
	cbl_buf have = CBL_BUF_INIT;
	for (size_t i = 0; i < idx->nmanifests; i++) {
		const images_desc *d = &idx->manifests[i];
		if (!d->os || !d->arch || !strcmp(d->os, "unknown"))
			continue;
		cbl_buf_printf(&have, "%s%s/%s%s%s", have.len ? ", " : "", d->os, d->arch, d->variant ? "/" : "",
			       d->variant ? d->variant : "");
	}
	int rc = cbl_error_set(err, CBL_ENOENT, "the image has no %s/%s%s%s variant (it has: %s)", want->os,
			       want->arch, want->variant ? "/" : "", want->variant ? want->variant : "",
			       have.len ? have.ptr : "nothing usable");
	cbl_buf_release(&have);
	return rc;
}

void images_config_release(images_config *c)
{
	free(c->os);
	free(c->arch);
	free(c->variant);
	cbl_strv_release(&c->env);
	free(c->working_dir);
	free(c->user);
	cbl_strv_release(&c->diff_ids);
	memset(c, 0, sizeof(*c));
}

int images_config_parse(const char *body, size_t len, images_config *out, cbl_error **err)
{
	json_error_t je;
	memset(out, 0, sizeof(*out));
	json_t *j = json_loadb(body, len, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		return cbl_error_set(err, CBL_EINVAL, "image config is not a JSON object");
	}
	out->os = dup_or_null(cbl_json_str(j, "os"));
	out->arch = dup_or_null(cbl_json_str(j, "architecture"));
	out->variant = dup_or_null(cbl_json_str(j, "variant"));
	json_t *cfg = json_object_get(j, "config");
	if (json_is_object(cfg)) {
		json_t *env = json_object_get(cfg, "Env");
		size_t i;
		json_t *v;
		json_array_foreach(env, i, v)
			if (json_is_string(v) && strchr(json_string_value(v), '='))
				cbl_strv_push(&out->env, json_string_value(v));
		const char *wd = cbl_json_str(cfg, "WorkingDir");
		if (wd && *wd)
			out->working_dir = cbl_xstrdup(wd);
		const char *u = cbl_json_str(cfg, "User");
		if (u && *u)
			out->user = cbl_xstrdup(u);
	}
	json_t *rootfs = json_object_get(j, "rootfs");
	json_t *ids = json_object_get(rootfs, "diff_ids");
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
		if (json_is_string(v))
			cbl_strv_push(&out->diff_ids, json_string_value(v));
	json_decref(j);
	return 0;
}
