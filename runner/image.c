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
#include "util/buf.h"
#include "util/fs.h"
#include "util/time.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/banned.h"

static void on_pull(const images_progress *p, void *payload)
{
	runner_build *b = payload;
	char line[256];
	switch (p->stage) {
	case IMAGES_STAGE_DOWNLOAD:
		snprintf(line, sizeof(line), "Pulling %s: %llu/%llu MiB", b->cfg.image,
			 (unsigned long long)(p->all_done >> 20), (unsigned long long)(p->all_total >> 20));
		break;
	case IMAGES_STAGE_UNPACK:
		snprintf(line, sizeof(line), "Unpacking %s: layer %zu/%zu", b->cfg.image, p->index + 1, p->count);
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
	io.insecure_registries = b->img.insecure_registries;
	cbl_error *e = NULL;
	int64_t t0 = cbl_mono_us();
	int rc = images_resolve(b->ident.home, b->cfg.image, &io, &b->img.root, &e);
	if (rc == 0) {
		/* held for the build: rm / prune leave a root in use alone */
		b->img.hold = images_root_hold(b->img.root, &e);
		if (b->img.hold == CBL_ENOENT) {
			cbl_error_clear(&e);
			images_root_free(b->img.root);
			b->img.root = NULL;
			rc = images_resolve(b->ident.home, b->cfg.image, &io, &b->img.root, &e);
			if (rc == 0)
				b->img.hold = images_root_hold(b->img.root, &e);
		}
		if (b->img.hold < -1) {
			rc = b->img.hold;
			b->img.hold = -1;
		}
	}
	if (rc < 0) {
		/* the service's context for an image it cannot pull */
		*code = cbl_xstrdup("BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE");
		*message = cbl_xasprintf("Unable to pull customer's container image. %s", e->msg);
		cbl_error_free(e);
		return -1;
	}
	for (size_t i = 0; i < b->img.root->warnings.n; i++)
		runner_warn(b, "image %s", b->img.root->warnings.v[i]);
	if (b->img.root->pulled)
		runner_agent(b, "[codebuild-local] Pulled image %s%s%s in %.1fs", b->img.root->name, b->img.root->digest ? "@" : "",
			     b->img.root->digest ? b->img.root->digest : "", (double)(cbl_mono_us() - t0) / 1e6);
	else
		runner_agent(b, "[codebuild-local] Using image %s%s%s", b->img.root->name, b->img.root->digest ? "@" : "",
			     b->img.root->digest ? b->img.root->digest : "");
	return 0;
}

const char *runner_image_rootfs(const runner_build *b)
{
	return b->img.root && b->img.root->kind != IMAGES_KIND_HOST ? b->img.root->rootfs : NULL;
}

void runner_image_base_env(runner_build *b, cbl_strv *env)
{
	if (!runner_image_rootfs(b)) {
		runner_env_host_base(env);
		return;
	}
	for (size_t i = 0; i < b->img.root->env.n; i++) {
		const char *eq = strchr(b->img.root->env.v[i], '=');
		if (!eq || eq == b->img.root->env.v[i])
			continue;
		char *name = cbl_xstrndup(b->img.root->env.v[i], (size_t)(eq - b->img.root->env.v[i]));
		cbl_env_set(env, name, eq + 1);
		free(name);
	}
	if (!cbl_env_get(env, "PATH"))
		cbl_env_set(env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
}

const char *runner_image_user(const runner_build *b)
{
	const char *u = runner_image_rootfs(b) ? b->img.root->user : NULL;
	if (!u || !*u || !strcmp(u, "root") || !strcmp(u, "0") || !strcmp(u, "0:0"))
		return NULL;
	return u;
}

#define SPEC_STRLIST_PUSH_TAKE(l, str)                                                       \
	do {                                                                                 \
		(l)->items = cbl_xreallocarray((l)->items, (l)->n + 1, sizeof(*(l)->items));   \
		(l)->items[(l)->n++] = (spec_str){.s = (str)};                                 \
	} while (0)

/* A runtime-versions value may name a variable ("$MY_RUBY_VAR"). */
static const char *version_value(runner_build *b, const char *v)
{
	if (v[0] != '$')
		return v;
	const char *name = v[1] == '{' ? v + 2 : v + 1;
	size_t n = strcspn(name, "}");
	char *key = cbl_xstrndup(name, n);
	const char *val = cbl_env_get(&b->vars.env, key);
	free(key);
	return val ? val : v;
}

/* The image's runtimes.yml, NULL when it has none (or it is unreadable:
 * *bad is then set with the reason). */
static spec_runtimes *image_runtimes(runner_build *b, char **bad)
{
	const char *root = runner_image_rootfs(b);
	if (!root)
		return NULL;
	char *data = NULL;
	size_t len = 0;
	spec_runtimes *rt = NULL;
	cbl_error *e = NULL;
	/* resolved inside the image's root: its symlinks (absolute ones too)
	 * never lead to the host's files */
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* O_NONBLOCK: the image's content is not ours; a FIFO there must not block */
	struct open_how how = {.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
	int fd = dfd < 0 ? -1
			 : (int)syscall(SYS_openat2, dfd, "codebuild/image/config/runtimes.yml", &how, sizeof(how));
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (16 << 20)) {
		cbl_buf text = CBL_BUF_INIT;
		char chunk[65536];
		ssize_t n;
		while ((n = read(fd, chunk, sizeof(chunk))) > 0)
			cbl_buf_append(&text, chunk, (size_t)n);
		len = text.len;
		data = cbl_buf_detach(&text);
		if (spec_runtimes_parse(&rt, "/codebuild/image/config/runtimes.yml", data ? data : "", len, &e) < 0) {
			*bad = cbl_xasprintf("the image's runtimes.yml is not valid: %s", e->msg);
			rt = NULL;
		}
	}
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	cbl_error_free(e);
	free(data);
	return rt;
}

static void join_keys(cbl_buf *out, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cbl_buf_printf(out, "%s%s", i ? ", " : "", keys[i]);
}

/* One runtime-versions entry against the image's runtimes.yml: its
 * commands appended to cmds (the default's, with $VERSION, for a version
 * the image does not have pre-installed). */
static int select_from_file(const spec_runtimes *rts, const char *name, const char *v, spec_strlist *cmds,
			    const char **chosen, char **message)
{
	const spec_runtime *rt = spec_runtimes_find(rts, name);
	cbl_buf m = CBL_BUF_INIT;
	if (!rt) {
		const char **names = cbl_xcalloc(rts->n + 1, sizeof(char *));
		for (size_t i = 0; i < rts->n; i++)
			names[i] = rts->items[i].name;
		cbl_buf_printf(&m, "Unknown runtime named '%s'. This build image has the following runtimes: ", name);
		join_keys(&m, names, rts->n);
		free(names);
		*message = cbl_buf_detach(&m);
		return -1;
	}
	const spec_runtime_version *rv = spec_runtime_select(rt, v);
	*chosen = rv ? rv->key : NULL;
	const spec_strlist *src = rv ? &rv->commands : rt->has_default ? &rt->default_commands : NULL;
	if (!src) {
		const char **keys = cbl_xcalloc(rt->n + 1, sizeof(char *));
		for (size_t i = 0; i < rt->n; i++)
			keys[i] = rt->versions[i].key;
		cbl_buf_printf(&m, "Unknown runtime version named '%s' of %s. This build image has the following "
				   "versions: ",
			       v, name);
		join_keys(&m, keys, rt->n);
		free(keys);
		*message = cbl_buf_detach(&m);
		return -1;
	}
	if (!rv) {
		cbl_buf q = CBL_BUF_INIT;
		cbl_buf_puts(&q, "export VERSION=");
		cbl_buf_shquote(&q, v);
		SPEC_STRLIST_PUSH_TAKE(cmds, cbl_buf_detach(&q));
	}
	for (size_t i = 0; i < src->n; i++)
		SPEC_STRLIST_PUSH_TAKE(cmds, cbl_xstrdup(src->items[i].s));
	return 0;
}

/* The service's words for what the host lacks, then where to find it: the
 * curated images that have it, and --host-runtimes. */
static char *host_mismatch_message(const char *rt, const char *v, const images_host_choice *ch)
{
	cbl_buf m = CBL_BUF_INIT;
	if (!ch->have) {
		cbl_strv have = CBL_STRV_INIT;
		images_host_runtimes(&have);
		cbl_buf_printf(&m, "Unknown runtime named '%s'. This build image has the following runtimes: ", rt);
		join_keys(&m, (const char *const *)have.v, have.n);
		if (!have.n)
			cbl_buf_puts(&m, "(none)");
		cbl_strv_release(&have);
	} else {
		cbl_buf_printf(&m, "Unknown runtime version named '%s' of %s. This build image has the following "
				   "versions: %s",
			       v, rt, ch->key ? ch->key : ch->have);
	}
	images_catalog *cat = NULL;
	cbl_strv having = CBL_STRV_INIT;
	if (images_catalog_default(&cat, NULL) == 0)
		images_catalog_having(cat, rt, v, &having);
	images_catalog_free(cat);
	if (!having.n)
		cbl_buf_printf(&m, ". No curated image has %s %s", rt, v);
	else if (having.n == 1)
		cbl_buf_printf(&m, ". %s %s is in %s (-i %s)", rt, v, having.v[0], having.v[0]);
	else if (having.n == 2)
		cbl_buf_printf(&m, ". %s %s is in %s and %s (-i %s)", rt, v, having.v[0], having.v[1], having.v[0]);
	else
		cbl_buf_printf(&m, ". %s %s is in %s, %s and %zu more (-i %s)", rt, v, having.v[0], having.v[1],
			       having.n - 2, having.v[0]);
	cbl_strv_release(&having);
	if (ch->have)
		cbl_buf_printf(&m, "; --host-runtimes goes on with the host's %s %s", rt, ch->have);
	else
		cbl_buf_printf(&m, "; --host-runtimes goes on without %s", rt);
	return cbl_buf_detach(&m);
}

int runner_host_runtime_check(const char *runtime, const char *version, cbl_error **err)
{
	images_host_choice ch;
	int rc = images_host_choose(runtime, version, &ch, err);
	if (rc == 0 && !ch.match) {
		char *msg = host_mismatch_message(runtime, version, &ch);
		rc = cbl_error_set(err, CBL_EINVAL, "%s", msg);
		free(msg);
	}
	images_host_choice_release(&ch);
	return rc;
}

/* runtime-versions on the host image: nothing is installed; each entry is
 * matched against the host's runtime (images.h's rule) and the version the
 * build gets is logged.  A mismatch fails, or with --host-runtimes is a
 * warning and the build goes on with what the host has. */
static runner_status host_versions(runner_build *b, const spec_kvlist *rv, char **code, char **message)
{
	for (size_t i = 0; i < rv->n; i++) {
		const char *rt = rv->items[i].key;
		const char *v = version_value(b, rv->items[i].value);
		images_host_choice ch;
		cbl_error *e = NULL;
		if (images_host_choose(rt, v, &ch, &e) < 0) {
			*code = cbl_xstrdup("YAML_FILE_ERROR");
			*message = cbl_xstrdup(e->msg);
			cbl_error_free(e);
			return RUNNER_STATUS_FAILED;
		}
		if (!ch.match && !b->cfg.host_runtimes) {
			*code = cbl_xstrdup("YAML_FILE_ERROR");
			*message = host_mismatch_message(rt, v, &ch);
			images_host_choice_release(&ch);
			return RUNNER_STATUS_FAILED;
		}
		runner_agent(b, "Selecting '%s' runtime version '%s' based on manual selections...", rt, v);
		if (!ch.match)
			runner_warn(b, "%s %s requested, host has %s (--host-runtimes)", rt, v, ch.have ? ch.have : "none");
		else if (ch.other_dist)
			runner_agent(b, "[codebuild-local] %s %s: the host's %s %s, not %.*s (another distribution "
					"of the same version)",
				     rt, v, rt, ch.have, (int)strcspn(v, "0123456789"), v);
		else
			runner_agent(b, "[codebuild-local] %s %s: the host's %s %s", rt, v, rt, ch.have);
		images_host_choice_release(&ch);
	}
	return RUNNER_STATUS_SUCCEEDED;
}

/* What a version form chose, when the form does not say it itself
 * ("latest", "18.x"); chosen NULL: the image's default commands install v. */
static void log_chosen(runner_build *b, const char *rt, const char *v, const char *chosen)
{
	if (!chosen)
		runner_agent(b, "[codebuild-local] %s %s is not among the image's versions: its default commands "
				"install it (VERSION=%s)",
			     rt, v, v);
	else if (strcmp(chosen, v))
		runner_agent(b, "[codebuild-local] %s %s is %s", rt, v, chosen);
}

runner_status runner_runtime_versions(runner_build *b, spec_strlist *cmds, char **code, char **message)
{
	const spec_phase *inst = &b->spec->phases[SPEC_PHASE_INSTALL];
	if (!inst->runtime_versions.n) {
		runner_agent(b, "No runtime version selected in buildspec.");
		return RUNNER_STATUS_SUCCEEDED;
	}
	images_catalog *cat = NULL;
	const images_curated *ci = NULL;
	cbl_error *e = NULL;
	runner_status st = RUNNER_STATUS_SUCCEEDED;
	char *bad = NULL;
	if (!runner_image_rootfs(b))
		return host_versions(b, &inst->runtime_versions, code, message);
	spec_runtimes *rts = image_runtimes(b, &bad);
	if (bad) {
		*code = cbl_xstrdup("YAML_FILE_ERROR");
		*message = bad;
		return RUNNER_STATUS_FAILED;
	}
	if (!rts) {
		if (images_catalog_default(&cat, &e) == 0)
			ci = images_catalog_find(cat, b->cfg.image);
		cbl_error_clear(&e);
		if (!ci) {
			/* the agent's words for an image without runtimes.yml */
			runner_agent(b, "Skipping install of runtimes. Runtime version selection is not supported "
					"by this build image");
			goto out;
		}
	}
	for (size_t i = 0; i < inst->runtime_versions.n; i++) {
		const spec_kv *kv = &inst->runtime_versions.items[i];
		const char *v = version_value(b, kv->value);
		const char *chosen = NULL;
		char *key = NULL;
		if (rts) {
			if (select_from_file(rts, kv->key, v, cmds, &chosen, message) < 0) {
				*code = cbl_xstrdup("YAML_FILE_ERROR");
				st = RUNNER_STATUS_FAILED;
				goto out;
			}
		} else if (images_runtime_check(ci, kv->key, v, &key, &e) < 0) {
			*code = cbl_xstrdup("YAML_FILE_ERROR");
			*message = cbl_xstrdup(e->msg);
			cbl_error_free(e);
			st = RUNNER_STATUS_FAILED;
			goto out;
		} else {
			chosen = key;
		}
		runner_agent(b, "Selecting '%s' runtime version '%s' based on manual selections...", kv->key, v);
		log_chosen(b, kv->key, v, chosen);
		free(key);
	}
	if (ci)
		runner_warn(b, "%s has no /codebuild/image/config/runtimes.yml: its runtimes are checked against "
			       "the catalog, and the build uses the image's default versions",
			    b->cfg.image);
out:
	spec_runtimes_free(rts);
	images_catalog_free(cat);
	return st;
}

void runner_image_free(runner_build *b)
{
	if (b->img.hold >= 0)
		close(b->img.hold);
	b->img.hold = -1;
	images_root_free(b->img.root);
	b->img.root = NULL;
}
