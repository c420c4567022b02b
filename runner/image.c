/* runner/image.c - the build image: its root filesystem under the sandbox,
 * its config (Env, User), and runtime-versions checked against it.
 *
 * `-i` names the host (the default), a local directory, a curated CodeBuild
 * image or any registry reference (images/images.h).  Anything but the host
 * becomes the read-only lower layer of the build's overlay instead of the
 * host's /, so the build sees the image's userland (its /etc/os-release, its
 * tools).  As on the service, the image's ENTRYPOINT and CMD are ignored;
 * its Env is the base environment (CodeBuild's variables and the project's
 * and buildspec's come on top), its User the default run-as.
 */
#include "images/images.h"
#include "runner/runner_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/banned.h"

static void on_pull(const images_progress *p, void *payload)
{
	runner_build *b = payload;
	char line[256];
	switch (p->stage) {
	case IMAGES_STAGE_DOWNLOAD:
		snprintf(line, sizeof(line), "Pulling %s: %llu/%llu MiB", b->image,
			 (unsigned long long)(p->all_done >> 20), (unsigned long long)(p->all_total >> 20));
		break;
	case IMAGES_STAGE_UNPACK:
		snprintf(line, sizeof(line), "Unpacking %s: layer %zu/%zu", b->image, p->index + 1, p->count);
		break;
	default:
		return;
	}
	runner_event ev = {.kind = RUNNER_EV_PROGRESS, .phase = b->current, .text = line};
	runner_emit(b, &ev);
}

bool runner_image_is_host(const char *image)
{
	return images_classify(image) == IMAGES_KIND_HOST;
}

int runner_image_resolve(runner_build *b, char **code, char **message)
{
	images_resolve_opts io = IMAGES_RESOLVE_OPTS_INIT;
	io.progress = on_pull;
	io.payload = b;
	cbl_error *e = NULL;
	int64_t t0 = cbl_mono_us();
	if (images_resolve(b->home, b->image, &io, &b->img, &e) < 0) {
		/* the service's context for an image it cannot pull */
		*code = cbl_xstrdup("BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE");
		*message = cbl_xasprintf("Unable to pull customer's container image. %s", e->msg);
		cbl_error_free(e);
		return -1;
	}
	if (b->img->pulled)
		runner_agent(b, "Pulled image %s%s%s in %.1fs", b->img->name, b->img->digest ? "@" : "",
			     b->img->digest ? b->img->digest : "", (double)(cbl_mono_us() - t0) / 1e6);
	else
		runner_agent(b, "Using image %s%s%s", b->img->name, b->img->digest ? "@" : "",
			     b->img->digest ? b->img->digest : "");
	return 0;
}

const char *runner_image_rootfs(const runner_build *b)
{
	return b->img && b->img->kind != IMAGES_KIND_HOST ? b->img->rootfs : NULL;
}

void runner_image_base_env(runner_build *b, cbl_strv *env)
{
	if (!runner_image_rootfs(b)) {
		runner_env_host_base(env);
		return;
	}
	for (size_t i = 0; i < b->img->env.n; i++) {
		const char *eq = strchr(b->img->env.v[i], '=');
		if (!eq || eq == b->img->env.v[i])
			continue;
		char *name = cbl_xstrndup(b->img->env.v[i], (size_t)(eq - b->img->env.v[i]));
		cbl_env_set(env, name, eq + 1);
		free(name);
	}
	if (!cbl_env_get(env, "PATH"))
		cbl_env_set(env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
}

const char *runner_image_user(const runner_build *b)
{
	const char *u = runner_image_rootfs(b) ? b->img->user : NULL;
	if (!u || !*u || !strcmp(u, "root") || !strcmp(u, "0") || !strcmp(u, "0:0"))
		return NULL;
	return u;
}

/* A runtime-versions value may name a variable ("$MY_RUBY_VAR"). */
static const char *version_value(runner_build *b, const char *v)
{
	if (v[0] != '$')
		return v;
	const char *name = v[1] == '{' ? v + 2 : v + 1;
	size_t n = strcspn(name, "}");
	char *key = cbl_xstrndup(name, n);
	const char *val = cbl_env_get(&b->env, key);
	free(key);
	return val ? val : v;
}

runner_status runner_runtime_versions(runner_build *b, phase_rec *pr, char **code, char **message)
{
	const spec_phase *inst = &b->spec->phases[SPEC_PHASE_INSTALL];
	if (!inst->runtime_versions.n) {
		runner_agent(b, "No runtime version selected in buildspec.");
		return RUNNER_STATUS_SUCCEEDED;
	}
	(void)pr;
	images_catalog *cat = NULL;
	const images_curated *ci = NULL;
	cbl_error *e = NULL;
	runner_status st = RUNNER_STATUS_SUCCEEDED;
	bool host = !runner_image_rootfs(b);
	if (!host) {
		if (images_catalog_default(&cat, &e) == 0)
			ci = images_catalog_find(cat, b->image);
		cbl_error_clear(&e);
	}
	if (!host && !ci) {
		/* an image that is not a curated one: what the agent says of an
		 * image without its runtimes file */
		runner_agent(b, "Skipping install of runtimes. Runtime version selection is not supported by "
				"this build image");
		goto out;
	}
	for (size_t i = 0; i < inst->runtime_versions.n; i++) {
		const spec_kv *kv = &inst->runtime_versions.items[i];
		const char *v = version_value(b, kv->value);
		char *resolved = NULL;
		if (images_runtime_check(ci, kv->key, v, &resolved, &e) < 0) {
			*code = cbl_xstrdup("YAML_FILE_ERROR");
			*message = cbl_xstrdup(e->msg);
			cbl_error_free(e);
			st = RUNNER_STATUS_FAILED;
			goto out;
		}
		runner_agent(b, "Selecting '%s' runtime version '%s' based on manual selections...", kv->key, v);
		free(resolved);
	}
	if (ci)
		runner_warn(b, "the runtimes of %s are checked against the image, but its runtime selection "
			       "commands (runtimes.yml) are not run yet: the build uses the image's default "
			       "versions",
			    b->image);
out:
	images_catalog_free(cat);
	return st;
}

void runner_image_free(runner_build *b)
{
	images_root_free(b->img);
	b->img = NULL;
}
