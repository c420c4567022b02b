/* runner/cache.c - the build cache in a build (cache/cache.h does the work).
 *
 * DOWNLOAD_SOURCE, once the source is in place and the build's shell is up
 * (reference §7.2: after the runtimes and "Moving to directory"): the key,
 * fallback keys and paths are expanded by the build's own shell (so
 * `$(codebuild-hash-files package-lock.json)` works), the entry is looked
 * up, and each cached base directory is mounted in the running sandbox as
 * an overlay whose read-only lower layer is the stored snapshot: constant
 * time, whatever the size.  Not root, the same overlays belong to the
 * sandbox's user namespace (the store is the user's own, as overlayfs
 * wants there).  Bases inside the source are copied into the source's
 * view instead, so that artifacts see them; without the sandbox every base
 * is copied into place.
 * FINALIZING, once the sandbox is gone (its overlays with it) and the view
 * still readable: what changed is saved as a new immutable snapshot.  A
 * cache failure is a warning, never a build failure (as on the service).
 * A build that was stopped or timed out saves nothing: its files may be
 * half-written.
 */
#include "cache/cache.h"
#include "runner/runner_internal.h"
#include "sandbox/sandbox.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

static void log_stage(runner_build *b, cache_stage stage)
{
	cbl_strv lines = CBL_STRV_INIT;
	cache_session_log_lines(b->cache.sess, stage, &lines);
	for (size_t i = 0; i < lines.n; i++)
		runner_agent(b, "[codebuild-local] %s", lines.v[i]); /* ours: the service downloads an archive */
	cbl_strv_release(&lines);
}

/* Fault injection for the tests (tests/e2e/test_cache_builds.py):
 * CODEBUILD_LOCAL_TEST_KILL_IN_CACHE_SAVE=<point> SIGKILLs the runner at that
 * point of a save, as a crash or `kill -9` would. */
static void kill_hook(const char *point, void *payload)
{
	if (!strcmp(point, payload))
		raise(SIGKILL);
}

static void path_append(runner_build *b, const char *dir)
{
	const char *path = cbl_env_get(&b->vars.env, "PATH");
	char *np = cbl_xasprintf("%s%s%s", path ? path : "", path && *path ? ":" : "", dir);
	cbl_env_set(&b->vars.env, "PATH", np);
	free(np);
}

void runner_cache_hash_files_tool(runner_build *b)
{
	/* the curated images' codebuild-hash-files, for cache keys: this very
	 * binary under that name (it needs the host's libraries, so only on
	 * the host image).  Sandboxed, the sandbox binds it read-only at
	 * RUNNER_INNER_BIN (provision.c): a link to the binary's host path
	 * would dangle when it lives in /tmp (private inside) or elsewhere
	 * out of the build's view.  Without the sandbox, a link next to the
	 * build's scratch. */
	if (runner_image_rootfs(b))
		return;
	if (b->sandbox) {
		path_append(b, RUNNER_INNER_BIN);
		return;
	}
	char *exe = realpath("/proc/self/exe", NULL);
	char *bin = cbl_path_join(b->ident.tmpdir, "bin");
	/* and the parallel tests' helpers (cli/cmd_tests_run.c) */
	static const char *const tools[] = {"codebuild-hash-files", "codebuild-tests-run", "codebuild-glob-search"};
	bool ok = exe && cbl_mkdir_p(bin, 0755, NULL) == 0;
	for (size_t i = 0; ok && i < sizeof(tools) / sizeof(tools[0]); i++) {
		char *link = cbl_path_join(bin, tools[i]);
		ok = symlink(exe, link) == 0 || access(link, X_OK) == 0;
		free(link);
	}
	if (ok)
		path_append(b, bin);
	free(exe);
	free(bin);
}

void runner_cache_restore(runner_build *b)
{
	const spec_cache *c = &b->spec->cache;
	cbl_error *e = NULL;
	char **out = NULL;
	size_t n = 1 + c->fallback_keys.n + c->paths.n;
	const char **in = cbl_xcalloc(n, sizeof(char *));
	in[0] = c->key ? c->key : "";
	for (size_t i = 0; i < c->fallback_keys.n; i++)
		in[1 + i] = c->fallback_keys.items[i].s;
	for (size_t i = 0; i < c->paths.n; i++)
		in[1 + c->fallback_keys.n + i] = c->paths.items[i].s;
	if (runner_shell_expand(&b->sh, b->vars.env.v, in, n, &out, &e) < 0) {
		runner_warn(b, "cache: cannot expand the cache key and paths (%s): no cache for this build", e->msg);
		goto out;
	}
	const char *const *fallbacks = (const char *const *)out + 1;
	const char *const *paths = (const char *const *)out + 1 + c->fallback_keys.n;
	for (size_t i = 0; i < c->paths.n; i++)
		runner_agent(b, "Expanded cache path %s", paths[i]);
	if (!b->cache.dir)
		b->cache.dir = cache_default_dir(b->ident.home);
	if (cache_store_open(&b->cache.store, b->cache.dir, &e) < 0) {
		runner_warn(b, "cache: %s: no cache for this build", e->msg);
		goto out;
	}
	bool sandboxed = b->sandbox != NULL;
	cache_session_opts so = CACHE_SESSION_OPTS_INIT;
	so.scope = b->ident.project;
	so.paths = paths;
	so.npaths = c->paths.n;
	so.key = out[0][0] ? out[0] : NULL;
	so.fallback_keys = fallbacks;
	so.nfallback_keys = c->fallback_keys.n;
	so.action = c->action;
	so.src_dir = b->src.src_inner;
	so.src_view = b->src.view;
	so.sandbox = sandboxed;
	so.copy_in_source = true;
	so.build_id = b->ident.id;
	const char *kill_at = getenv("CODEBUILD_LOCAL_TEST_KILL_IN_CACHE_SAVE");
	if (kill_at && *kill_at) {
		so.test_hook = kill_hook;
		so.test_payload = (void *)kill_at;
	}
	if (cache_session_new(&b->cache.sess, b->cache.store, &so, &e) < 0) {
		runner_warn(b, "cache: %s: no cache for this build", e->msg);
		goto out;
	}
	if (!sandboxed)
		runner_warn(b, "cache: without the sandbox, cached paths outside the source are this machine's "
			       "own directories: a restore copies files into them");
	if (cache_restore(b->cache.sess, &e) < 0) {
		runner_warn_drop(b, &e, "cache: restore failed (%s): the build goes on without it", e->msg);
	}
	size_t nm = 0;
	const cache_mount *m = cache_session_mounts(b->cache.sess, &nm);
	for (size_t i = 0; i < nm; i++) {
		if (sandbox_mount_overlay(b->sandbox, m[i].lower, m[i].upper, m[i].work, m[i].target, &e) < 0) {
			runner_warn_drop(b, &e, "cache: %s: %s is not restored", e->msg, m[i].target);
		}
	}
	log_stage(b, CACHE_STAGE_RESTORE);
out:
	if (out)
		for (size_t i = 0; i < n; i++)
			free(out[i]);
	free(out);
	free(in);
	cbl_error_free(e);
}

void runner_cache_save(runner_build *b)
{
	if (!b->cache.sess)
		return;
	cbl_error *e = NULL;
	if (b->status == RUNNER_STATUS_STOPPED || b->status == RUNNER_STATUS_TIMED_OUT) {
		runner_agent(b, "[codebuild-local] Cache not saved: the build was %s", runner_status_name(b->status));
	} else {
		if (cache_save(b->cache.sess, &e) < 0) {
			/* a warning, as the service treats cache failures */
			runner_warn_drop(b, &e, "cache: save failed (%s): the previous cache is kept", e->msg);
		}
		log_stage(b, CACHE_STAGE_SAVE);
	}
	if (cache_explain_write(b->cache.sess, b->ident.project, &e) < 0)
		cbl_error_clear(&e);
}

void runner_cache_free(runner_build *b)
{
	cache_session_free(b->cache.sess);
	b->cache.sess = NULL;
	cache_store_free(b->cache.store);
	b->cache.store = NULL;
	free(b->cache.dir);
	b->cache.dir = NULL;
}

/* The cache-restore stage: the buildspec's cache, unless it has none or the
 * build runs without one (the service's "Skip cache due to" lines). */
runner_status runner_stage_cache_restore(runner_build *b, runner_outcome *o)
{
	(void)o;
	if (!b->spec->cache.present || !b->spec->cache.paths.n) {
		runner_agent(b, "Cache is not defined in the buildspec");
		runner_agent(b, "Skip cache due to: no paths specified to be cached");
	} else if (b->cache.off) {
		runner_agent(b, "Skip cache due to: %s", b->cache.off_why);
	} else {
		runner_cache_restore(b);
	}
	return RUNNER_STATUS_SUCCEEDED;
}
