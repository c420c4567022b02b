/* images/resolve.c - from an image name to a root filesystem: the store
 * first, the registry when the image is missing (or a pull is asked for).
 *
 * Curated CodeBuild names are stored under their own name
 * ("aws/codebuild/standard:7.0") and pulled from the location the catalog
 * gives; every other name is stored under its docker-normalized form
 * ("busybox" = "docker.io/library/busybox:latest").
 */
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/banned.h"

int images_name_canonical(const images_catalog *cat, const char *image, char **name, char **pull_ref,
			  cbl_error **err)
{
	*name = NULL;
	if (pull_ref)
		*pull_ref = NULL;
	const images_curated *ci = images_catalog_find(cat, image);
	if (ci) {
		*name = cbl_xstrdup(images_curated_name(ci));
		if (pull_ref && images_curated_location(ci))
			*pull_ref = cbl_xstrdup(images_curated_location(ci));
		return 0;
	}
	images_ref r;
	int rc = images_ref_parse(image, &r, err);
	if (rc)
		return rc;
	*name = images_ref_string(&r);
	if (pull_ref)
		*pull_ref = cbl_xstrdup(*name);
	images_ref_release(&r);
	return 0;
}

static void progress(const images_resolve_opts *o, images_stage st, const char *msg)
{
	if (o && o->progress) {
		images_progress p = {.stage = st, .message = msg};
		o->progress(&p, o->payload);
	}
}

static int fetch_manifest(images_registry *reg, images_store *s, const char *reference,
			  const images_platform *want, int depth, char *out_digest, cbl_error **err)
{
	char *body = NULL, *ct = NULL;
	size_t len = 0;
	char digest[72];
	images_manifest m = {0};
	int rc = images_registry_manifest(reg, reference, &body, &len, &ct, digest, err);
	if (rc)
		goto out;
	rc = images_manifest_parse(body, len, ct, &m, err);
	if (rc)
		goto out;
	if (m.kind == IMAGES_MANIFEST_INDEX) {
		size_t i;
		if (depth > 1) {
			rc = cbl_error_set(err, CBL_EINVAL, "image indexes nested too deep");
			goto out;
		}
		rc = images_index_select(&m, want, &i, err);
		if (rc)
			goto out;
		rc = fetch_manifest(reg, s, m.manifests[i].digest, want, depth + 1, out_digest, err);
		goto out;
	}
	rc = images_store_put_blob(s, digest, body, len, NULL, err);
	if (rc)
		goto out;
	memcpy(out_digest, digest, 72);
	/* the config, then the layers */
	const images_desc *cfg = &m.config;
	rc = images_registry_fetch_blobs(reg, s, &cfg, 1, err);
	if (rc)
		goto out;
	const images_desc **ls = cbl_xcalloc(m.nlayers + 1, sizeof(*ls));
	for (size_t i = 0; i < m.nlayers; i++)
		ls[i] = &m.layers[i];
	rc = images_registry_fetch_blobs(reg, s, ls, m.nlayers, err);
	free(ls);
out:
	images_manifest_release(&m);
	free(body);
	free(ct);
	return rc;
}

/* Pulls pull_ref into the store (locked by the caller) and unpacks it as name. */
static int do_pull(images_store *s, const images_catalog *cat, const char *name, const char *pull_ref,
		   const images_resolve_opts *o, images_root **out, cbl_error **err)
{
	images_ref ref = {0};
	images_registry *reg = NULL;
	images_platform want = {0};
	char digest[72];
	int rc;
	if (!pull_ref) {
		const images_curated *ci = images_catalog_find(cat, name);
		return cbl_error_set(err, CBL_ENOENT,
				     "%s is not published in a registry: build it from aws-codebuild-docker-images, then "
				     "`docker save` it and `codebuild-local images import FILE --name %s`",
				     name, ci ? images_curated_name(ci) : name);
	}
	rc = images_ref_parse(pull_ref, &ref, err);
	if (rc)
		goto out;
	if (o && o->platform)
		rc = images_platform_parse(o->platform, &want, err);
	else
		images_platform_host(&want);
	if (rc)
		goto out;
	rc = images_registry_open(&reg, &ref, cat, o, err);
	if (rc)
		goto out;
	progress(o, IMAGES_STAGE_MANIFEST, pull_ref);
	rc = fetch_manifest(reg, s, ref.digest ? ref.digest : ref.tag, &want, 0, digest, err);
	if (rc)
		goto out;
	bool unpacked = false;
	rc = images_store_materialize(s, name, digest, o, &unpacked, out, err);
	if (rc)
		goto out;
	rc = images_store_ref_set(s, name, digest, err);
	if (rc)
		goto out;
	(*out)->pulled = true;
out:
	if (rc) {
		cbl_error_wrap(err, "pull %s", pull_ref ? pull_ref : name);
		if (*out) {
			images_root_free(*out);
			*out = NULL;
		}
	}
	images_registry_free(reg);
	images_ref_release(&ref);
	images_platform_release(&want);
	return rc;
}

static int resolve(const char *home, const char *image, const images_resolve_opts *o, bool force_pull,
		   images_root **out, cbl_error **err)
{
	images_catalog *cat = NULL;
	images_store s = IMAGES_STORE_INIT;
	char *name = NULL, *pull_ref = NULL, *digest = NULL;
	int rc = 0;
	*out = NULL;
	switch (images_classify(image)) {
	case IMAGES_KIND_HOST: {
		images_root *r = cbl_xcalloc(1, sizeof(*r));
		r->kind = IMAGES_KIND_HOST;
		r->name = cbl_xstrdup("host");
		*out = r;
		return 0;
	}
	case IMAGES_KIND_DIR: {
		char *real = NULL;
		struct stat st;
		rc = cbl_realpath(image, &real, err);
		if (rc)
			return cbl_error_wrap(err, "image directory %s", image);
		if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
			free(real);
			return cbl_error_set(err, CBL_EINVAL, "image %s is not a directory", image);
		}
		images_root *r = cbl_xcalloc(1, sizeof(*r));
		r->kind = IMAGES_KIND_DIR;
		r->name = cbl_xstrdup(image);
		r->rootfs = real;
		*out = r;
		return 0;
	}
	case IMAGES_KIND_REGISTRY:
		break;
	}
	rc = images_catalog_default(&cat, err);
	if (rc)
		goto out;
	rc = images_name_canonical(cat, image, &name, &pull_ref, err);
	if (rc)
		goto out;
	rc = images_store_open(&s, home, err);
	if (rc)
		goto out;
	if (!force_pull) {
		cbl_error *e = NULL;
		if (images_store_ref_get(&s, name, &digest, &e) == 0) {
			rc = images_store_root_load(&s, name, digest, out, &e);
			if (rc == 0)
				goto out;
			cbl_error_clear(&e);
			/* named but not unpacked (or unpacked by a crashed run): build it */
			rc = images_store_lock(&s, err);
			if (!rc)
				rc = images_store_materialize(&s, name, digest, o, NULL, out, &e);
			if (rc == 0) {
				(*out)->pulled = true;
				goto out;
			}
			if (o && o->offline) {
				if (err && !*err)
					*err = e;
				else
					cbl_error_free(e);
				goto out;
			}
		}
		cbl_error_free(e);
		rc = 0;
		if (o && o->offline) {
			rc = cbl_error_set(err, CBL_ENOENT,
					   "image %s is not in the local store (offline: pull it with `codebuild-local "
					   "images pull` or import it with `images import`)",
					   name);
			goto out;
		}
	}
	rc = images_store_lock(&s, err);
	if (rc)
		goto out;
	if (!force_pull) {
		/* someone else may have pulled it while we waited for the lock */
		free(digest);
		digest = NULL;
		cbl_error *e = NULL;
		if (images_store_ref_get(&s, name, &digest, &e) == 0 &&
		    images_store_root_load(&s, name, digest, out, &e) == 0) {
			cbl_error_free(e);
			goto out;
		}
		cbl_error_free(e);
	}
	rc = do_pull(&s, cat, name, pull_ref, o, out, err);
out:
	images_store_release(&s);
	images_catalog_free(cat);
	free(name);
	free(pull_ref);
	free(digest);
	return rc;
}

int images_resolve(const char *home, const char *image, const images_resolve_opts *o,
		   images_root **out, cbl_error **err)
{
	return resolve(home, image, o, o && o->pull, out, err);
}

int images_pull(const char *home, const char *image, const images_resolve_opts *o, images_root **out,
		cbl_error **err)
{
	if (images_classify(image) != IMAGES_KIND_REGISTRY)
		return cbl_error_set(err, CBL_EINVAL, "'%s' is not an image reference", image ? image : "");
	if (o && o->offline)
		return cbl_error_set(err, CBL_EINVAL, "cannot pull offline");
	return resolve(home, image, o, true, out, err);
}

int images_rm(const char *home, const char *image, uint64_t *freed, cbl_error **err)
{
	images_catalog *cat = NULL;
	char *name = NULL;
	cbl_error *e = NULL;
	if (freed)
		*freed = 0;
	if (images_classify(image) != IMAGES_KIND_REGISTRY)
		return cbl_error_set(err, CBL_EINVAL, "'%s' is not an image reference", image ? image : "");
	int rc = images_catalog_default(&cat, err);
	if (rc)
		return rc;
	/* the name as stored; else the string as given (a name from `images ls`) */
	if (images_name_canonical(cat, image, &name, NULL, &e) == 0) {
		rc = images_store_rm_name(home, name, freed, &e);
		if (rc == CBL_ENOENT && strcmp(name, image)) {
			cbl_error_clear(&e);
			rc = images_store_rm_name(home, image, freed, &e);
		}
	} else {
		cbl_error_clear(&e);
		rc = images_store_rm_name(home, image, freed, &e);
	}
	if (rc) {
		if (err && !*err)
			*err = e;
		else
			cbl_error_free(e);
	}
	free(name);
	images_catalog_free(cat);
	return rc;
}
