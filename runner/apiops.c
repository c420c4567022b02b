/* runner/apiops.c - InvalidateProjectCache and ListCuratedEnvironmentImages
 * (runner/apiops.h): they join the store with the cache and the catalog. */
#include "runner/apiops.h"
#include "cache/cache.h"
#include "images/images.h"
#include "store/api.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

#define OP_INVALIDATE STORE_TARGET_CODEBUILD "InvalidateProjectCache"
#define OP_CURATED STORE_TARGET_CODEBUILD "ListCuratedEnvironmentImages"

bool runner_api_known(const char *target)
{
	return target && (!strcmp(target, OP_INVALIDATE) || !strcmp(target, OP_CURATED));
}

static int invalidate(const char *home, json_t *request, json_t **out, cbl_error **err)
{
	/* store_api_validate has seen projectName */
	const char *name = cbl_json_str_or_empty(request, "projectName");
	/* the project must exist: the store answers its own not-found */
	json_t *q = json_pack("{s:[s]}", "names", name), *res = NULL;
	int rc = store_api_dispatch(home, STORE_TARGET_CODEBUILD "BatchGetProjects", q, &res, err);
	json_decref(q);
	if (rc)
		return rc;
	bool found = json_array_size(json_object_get(res, "projects")) > 0;
	json_decref(res);
	if (!found)
		return cbl_error_set(err, CBL_ENOENT,
				     "Project cannot be found: arn:aws:codebuild:us-east-1:000000000000:project/%s",
				     name);
	char *dir = cache_default_dir(home);
	cache_store *cs = NULL;
	rc = cache_store_open(&cs, dir, err);
	if (!rc) {
		cache_prune_opts po = {.scope = name, .all = true};
		rc = cache_prune(cs, &po, NULL, err);
	}
	cache_store_free(cs);
	free(dir);
	if (!rc)
		*out = json_object();
	return rc;
}

/* The model's LanguageType of a catalog runtime name, or NULL. */
static const char *language_of(const char *runtime)
{
	static const struct {
		const char *runtime, *language;
	} map[] = {
		{"java", "JAVA"},     {"python", "PYTHON"}, {"nodejs", "NODE_JS"}, {"ruby", "RUBY"},
		{"golang", "GOLANG"}, {"docker", "DOCKER"}, {"dotnet", "DOTNET"},  {"php", "PHP"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (!strcmp(map[i].runtime, runtime))
			return map[i].language;
	return NULL;
}

static const char *platform_of(const char *os)
{
	if (os && !strncmp(os, "Ubuntu", 6))
		return "UBUNTU";
	if (os && !strncmp(os, "Amazon Linux", 12))
		return "AMAZON_LINUX";
	return NULL;
}

/* platforms[platform].languages[language].images += image */
static void add_image(json_t *platforms, const char *platform, const char *language, json_t *image)
{
	json_t *p = NULL, *l = NULL, *x;
	size_t i;
	json_array_foreach(platforms, i, x) {
		if (!strcmp(cbl_json_str_or_empty(x, "platform"), platform))
			p = x;
	}
	if (!p) {
		p = json_pack("{s:s, s:[]}", "platform", platform, "languages");
		json_array_append_new(platforms, p);
	}
	json_t *langs = json_object_get(p, "languages");
	json_array_foreach(langs, i, x) {
		if (!strcmp(cbl_json_str_or_empty(x, "language"), language))
			l = x;
	}
	if (!l) {
		l = json_pack("{s:s, s:[]}", "language", language, "images");
		json_array_append_new(langs, l);
	}
	json_array_append(json_object_get(l, "images"), image);
}

static json_t *image_entry(const images_curated *ci)
{
	cbl_buf d = CBL_BUF_INIT;
	const char *os = images_curated_os(ci), *arch = images_curated_arch(ci);
	cbl_buf_printf(&d, "%s%s%s%s", os ? os : "Linux", arch ? " (" : "", arch ? arch : "", arch ? ")" : "");
	const char *const *rt = images_curated_runtimes(ci);
	for (size_t i = 0; rt[i]; i++)
		cbl_buf_printf(&d, "%s%s", i ? ", " : ": ", rt[i]);
	if (!images_curated_maintained(ci))
		cbl_buf_puts(&d, " (no longer maintained)");
	json_t *e = json_pack("{s:s, s:s, s:[s]}", "name", images_curated_name(ci), "description",
			      cbl_buf_cstr(&d), "versions", images_curated_name(ci));
	cbl_buf_release(&d);
	return e;
}

static int curated(json_t **out, cbl_error **err)
{
	images_catalog *cat = NULL;
	int rc = images_catalog_default(&cat, err);
	if (rc)
		return rc;
	json_t *platforms = json_array();
	for (size_t i = 0; i < images_catalog_count(cat); i++) {
		const images_curated *ci = images_catalog_at(cat, i);
		const char *platform = platform_of(images_curated_os(ci));
		if (!platform)
			continue;
		json_t *e = image_entry(ci);
		const char *const *rt = images_curated_runtimes(ci);
		if (rt[0] && rt[1])
			add_image(platforms, platform, "BASE", e);
		for (size_t r = 0; rt[r]; r++)
			if (language_of(rt[r]))
				add_image(platforms, platform, language_of(rt[r]), e);
		/* a single-runtime image named after its runtime (corretto) */
		if (!rt[0] && strstr(images_curated_name(ci), "corretto"))
			add_image(platforms, platform, "JAVA", e);
		json_decref(e);
	}
	images_catalog_free(cat);
	*out = json_pack("{s:o}", "platforms", platforms);
	return 0;
}

int runner_api_dispatch(const char *home, const char *target, json_t *request, json_t **out,
			cbl_error **err)
{
	if (target && !strcmp(target, OP_INVALIDATE))
		return invalidate(home, request, out, err);
	if (target && !strcmp(target, OP_CURATED))
		return curated(out, err);
	return cbl_error_set(err, CBL_EINVAL, "Unknown operation %s", target ? target : "(none)");
}
