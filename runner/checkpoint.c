/* runner/checkpoint.c - phase checkpoints: kept at the end of each
 * successful phase that ran commands, and `run --from-phase PHASE` starting
 * PHASE on the newest matching one (cache/checkpoint.c stores them).
 *
 * What a checkpoint holds: the changes the build made inside its source
 * (the source overlay's upper layer: node_modules, build outputs), and the
 * carried shell state (env.sh, dir.txt).  Its key: the image, the
 * environment (the buildspec's env, the project's and -e variables, the
 * shell, run-as) and every phase up to it that has commands (so an empty
 * PRE_BUILD makes INSTALL's checkpoint the one BUILD starts from).  The
 * working tree is not part of the key: a restored build sees the
 * checkpoint's changes above the working tree as it is now (a file the
 * earlier phases wrote wins over the working tree's; everything else is the
 * working tree's).
 *
 * Changes outside the source: as root, the root overlay's upper layer is
 * in the runner's private view-tmp (sandbox_opts.root_upper: a tmpfs of
 * the runner's own mount namespace, 0700, that the build cannot reach), so
 * a checkpoint copies it too (root-layer/: installed packages, /root) and a
 * restored build gets a copy of it as its upper layer (restore_root_layer).
 * The private tmpfs directories (/tmp, /var/tmp, /home with run-as
 * codebuild-user's home, /run, /srv, /mnt, /media; an image's /tmp) are
 * copied too, as root through the init's /proc/PID/root beneath it and
 * without following any symlink (the build may have planted one to a host
 * file: kept as a link), FIFOs, sockets and devices left out: private/<name>/,
 * each one the read-only lower layer of its tmpfs in the restored build
 * (sandbox_opts.private_lower).  Not kept: background processes.  Only the primary
 * source of a snapshot build run as root has an upper layer the runner can
 * read; other builds take no checkpoints.
 *
 * A normal user's build: the sandbox mounts the source overlay in its user
 * namespace, its upper layer in the sandbox's private tmpfs, and the host's
 * / is read-only with private tmpfs directories (/root, /tmp, /home ...),
 * files of the user's subordinate ids among them.  The sandbox keeps its
 * tmpfs reachable (sandbox_opts.keep_scratch) and sandbox_copy_out copies,
 * in a child that joined its user namespace, the source overlay's upper
 * layer to layer/, the private directories to private/<name>/ and, with an
 * image, the root overlay's upper layer to root-layer/ (the cache's staging
 * directory filled by a callback).  A restored build gets layer/ as the
 * sandbox mount's lower_top, private/ as private_lower and root-layer/ as
 * root_lower above the image: no copy (and no spare).  Where the host's / is
 * fuse-overlayfs (sandbox/fuse.c), its upper layer (in the same private
 * tmpfs) is copied to root-layer/ as fuse-overlayfs wrote it (whiteout
 * devices or .wh. files, opaque markers, the owners of the user's ids) and
 * given back to fuse-overlayfs as a lower layer above the host's /
 * (root_lower); meta.json's rootLayerFormat says so, and such a layer is
 * never given to the kernel's overlay, nor the kernel's to fuse-overlayfs
 * (root_layer_mismatch).  meta.json's takenAs keeps
 * root's and a normal user's checkpoints apart (their layers differ: trusted.*
 * or user.* overlay attributes, subordinate ids).  Only the primary source
 * of a snapshot build has a layer to keep; other builds take no checkpoints.
 *
 * A restored build (--from-phase) keeps checkpoints too, with the same keys:
 * its layered parts are flattened, its upper layer above the restored
 * checkpoint's (sandbox_layer_merge: the source's layer/ always; root-layer/
 * where it was stacked read-only, root's on another filesystem without a
 * spare or a normal user's image root; a claimed or copied spare already
 * holds both, the private directories are read through the merged view).
 * Root's in cache_checkpoint_save (base_layer, base_root_layer), a normal
 * user's in fill_from_sandbox, in the sandbox's user namespace.
 */
#include "runner/runner_internal.h"
#include "cache/cache.h"
#include "sandbox/sandbox.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/safeopen.h"
#include "util/json.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

/* meta.json's rootLayerFormat of a root-layer/ fuse-overlayfs wrote */
#define CKPT_FUSE_FORMAT "fuse-overlayfs"

static void put_kv(cbl_buf *b, const spec_kvlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		cbl_buf_printf(b, "%s=%s\n", l->items[i].key, l->items[i].value ? l->items[i].value : "");
}

static void put_list(cbl_buf *b, const char *what, const spec_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		cbl_buf_printf(b, "%s %zu\n%s\n", what, strlen(l->items[i].s), l->items[i].s);
}

static bool phase_runs(const spec_phase *p)
{
	return p->present && (p->commands.n || p->finally.n || p->runtime_versions.n);
}

/* The key of the state at the end of spec phase upto (-1: before INSTALL). */
static void key_of(runner_build *b, const spec_buildspec *sp, int upto, json_t **parts, char key[65])
{
	cbl_strv names = CBL_STRV_INIT, values = CBL_STRV_INIT;
	cbl_buf v = CBL_BUF_INIT;
	cbl_strv_push(&names, "image");
	cbl_strv_push(&values, b->cfg.image ? b->cfg.image : "host");
	cbl_buf_printf(&v, "version=%d\nshell=%s\nrun-as=%s\nprivileged=%d\n", (int)sp->version,
		       sp->env.shell ? sp->env.shell : "", sp->run_as ? sp->run_as : "", b->cfg.privileged);
	put_kv(&v, &sp->env.variables);
	put_kv(&v, &sp->env.parameter_store);
	put_kv(&v, &sp->env.secrets_manager);
	for (size_t i = 0; i < b->vars.project_env.n; i++)
		cbl_buf_printf(&v, "project %s\n", b->vars.project_env.v[i]);
	for (size_t i = 0; i < b->vars.overrides.n; i++)
		cbl_buf_printf(&v, "override %s\n", b->vars.overrides.v[i]);
	cbl_strv_push(&names, "environment");
	cbl_strv_push(&values, v.ptr ? v.ptr : "");
	for (int i = 0; i <= upto && i < SPEC_PHASE_COUNT; i++) {
		const spec_phase *p = &sp->phases[i];
		if (!phase_runs(p))
			continue;
		cbl_buf_reset(&v);
		cbl_buf_printf(&v, "run-as=%s\non-failure=%d\n", p->run_as ? p->run_as : "", (int)p->on_failure.kind);
		put_kv(&v, &p->runtime_versions);
		put_list(&v, "command", &p->commands);
		put_list(&v, "finally", &p->finally);
		cbl_strv_push(&names, spec_phase_api_name((spec_phase_id)i));
		cbl_strv_push(&values, v.ptr);
	}
	cache_checkpoint_key((const char *const *)names.v, (const char *const *)values.v, names.n, parts, key);
	cbl_buf_release(&v);
	cbl_strv_release(&names);
	cbl_strv_release(&values);
}

static int open_store(runner_build *b, cache_store **st, cbl_error **err)
{
	char *dir = b->cache.dir ? cbl_xstrdup(b->cache.dir) : cache_default_dir(b->ident.home);
	int rc = cache_store_open(st, dir, err);
	free(dir);
	return rc;
}

/* The next phase after spec phase sp that runs commands, or -1. */
static int next_running(const spec_buildspec *s, int sp)
{
	for (int i = sp + 1; i < SPEC_PHASE_COUNT; i++)
		if (phase_runs(&s->phases[i]))
			return i;
	return -1;
}

/* A detached process's work: the spare of a checkpoint made (the store and
 * the checkpoint's directory). */
typedef struct spare_job {
	char *store, *dir;
} spare_job;

static void make_spare(void *arg)
{
	spare_job *j = arg;
	cache_store *st = NULL;
	if (cache_store_open(&st, j->store, NULL) == 0)
		cache_checkpoint_make_spare(st, j->dir, NULL);
	cache_store_free(st);
}

/* A spare of the checkpoint at dir made in the background, for the next
 * restore (none when one is ready, or it has no root-layer/). */
static void spare_later(runner_build *b, const char *dir)
{
	spare_job j = {.store = b->cache.dir ? cbl_xstrdup(b->cache.dir) : cache_default_dir(b->ident.home),
		       .dir = (char *)dir};
	runner_detached(make_spare, &j);
	free(j.store);
}

/* The restored checkpoint's root-layer/ as the build's root overlay's
 * upper layer, with its whiteouts and opaque directories: the build sees
 * exactly what the checkpoint had, and writes a copy, never the checkpoint.
 *
 * Not stacked read-only: overlayfs refuses a lower layer that lies under
 * another one ("overlapping lowerdir path"), and with the store on the
 * filesystem of /, root-layer/ lies under /.  Nor mounted as an overlay
 * of its own below (a new superblock would not overlap): that inner
 * overlay consumes the layer's whiteouts and opaque directories itself
 * (tried: a file deleted in INSTALL shows again through it), unless they
 * were stored escaped (trusted.overlay.overlay.*, kernel 6.7 and later),
 * a second format for the layer that the kernels before cannot read.  An
 * upper layer only has to be unused (upperdir and workdir get no overlap
 * check against the lower layers: tried), so a writable copy of
 * root-layer/ on the store's filesystem is one: the checkpoint's spare,
 * made by the runner when it was taken and in the background after every
 * restore (at the end of the restored build), claimed here with one rename
 * (of two builds starting together, one gets it).  Without a ready one: a
 * store on another filesystem than / stacks root-layer/ read-only, else a
 * copy into view-tmp now (what it costs is said). */
static void restore_root_layer(runner_build *b, sandbox_opts *so)
{
	char *layer = cbl_path_join(b->ckpt.dir, "root-layer");
	struct stat st;
	bool has = lstat(layer, &st) == 0 && S_ISDIR(st.st_mode);
	free(layer);
	if (!has)
		return;
	int64_t t0 = cbl_mono_us();
	cache_store *cs = NULL;
	cbl_error *e = NULL;
	if (open_store(b, &cs, &e) == 0 &&
	    cache_checkpoint_claim_spare(cs, b->ckpt.dir, &b->ckpt.claim_dir, &b->ckpt.claim_lock, &e) == 0) {
		so->root_upper_in = b->ckpt.claim_dir;
		free(b->ckpt.root_upper);
		b->ckpt.root_upper = cbl_path_join(b->ckpt.claim_dir, "upper");
		b->ckpt.root_restored = true;
		runner_agent(b, "[codebuild-local] The checkpoint's changes outside the source: its ready copy is the "
				"build's upper layer (%.1f ms)",
			     (double)(cbl_mono_us() - t0) / 1000.0);
	} else {
		cbl_error_free(e);
		e = NULL;
		layer = cbl_path_join(b->ckpt.dir, "root-layer");
		struct stat rst;
		if (stat("/", &rst) == 0 && lstat(layer, &st) == 0 && st.st_dev != rst.st_dev && !runner_image_rootfs(b)) {
			so->root_lower = b->ckpt.root_lower = layer; /* no overlap: stacked as it is */
			b->ckpt.root_restored = true;
			layer = NULL;
		} else if (cache_checkpoint_copy_layer(layer, b->ckpt.root_upper, &e) < 0) {
			runner_warn_drop(b, &e, "the checkpoint's changes outside the source are not restored: %s",
					 e->msg);
			cbl_rm_rf(b->ckpt.root_upper, NULL);
		} else {
			b->ckpt.root_restored = true;
			runner_agent(b, "[codebuild-local] The checkpoint's changes outside the source copied as the "
					"build's upper layer (%.1f ms): no ready copy (another build took it, or it is "
					"still being made)",
				     (double)(cbl_mono_us() - t0) / 1000.0);
		}
		free(layer);
	}
	cbl_error_free(e);
	cache_store_free(cs);
	b->ckpt.spare_wanted = true; /* for the next restore: made at the end */
}

/* Not root: the sandbox keeps its private tmpfs reachable (the source
 * overlay's upper layer, an image root's or fuse-overlayfs's) for
 * sandbox_copy_out; a restored checkpoint's root-layer/ goes above an
 * image's root, or above the host's / under fuse-overlayfs (its format
 * checked by runner_checkpoint_lookup). */
static void checkpoint_root_user(runner_build *b, sandbox_opts *so)
{
	/* again after a fallback: a source the kernel would not overlay is a
	 * copy, no layer to keep */
	so->keep_scratch = b->ckpt.sb_take = b->ckpt.take && b->src.sb_overlay && !b->src.multi_root &&
					     b->ckpt.src_mount >= 0;
	if (b->ckpt.dir && !b->ckpt.root_lower) {
		char *layer = cbl_path_join(b->ckpt.dir, "root-layer");
		struct stat st;
		if (lstat(layer, &st) == 0 && S_ISDIR(st.st_mode)) {
			b->ckpt.root_lower = layer;
			b->ckpt.root_restored = true;
		} else {
			free(layer);
		}
	}
	so->root_lower = b->ckpt.root_lower;
}

void runner_checkpoint_root(runner_build *b, sandbox_opts *so)
{
	if (b->ckpt.dir && !b->ckpt.private_lower) {
		/* the private directories' contents: each one's kept copy the
		 * read-only lower layer of its tmpfs (the sandbox's plan) */
		char *pl = cbl_path_join(b->ckpt.dir, "private");
		struct stat pst;
		if (lstat(pl, &pst) == 0 && S_ISDIR(pst.st_mode))
			b->ckpt.private_lower = pl;
		else
			free(pl);
	}
	so->private_lower = b->ckpt.private_lower;
	if (b->ckpt.root_dir) { /* again, after a fallback */
		so->root_upper = b->ckpt.root_dir;
		so->root_upper_in = b->ckpt.claim_dir;
		so->root_lower = b->ckpt.root_lower;
		return;
	}
	if (geteuid() != 0 && b->cfg.sandbox_mode == RUNNER_SANDBOX_NAMESPACES) {
		checkpoint_root_user(b, so);
		return;
	}
	if (geteuid() != 0 || !b->src.private_ns || !((b->ckpt.take && b->ckpt.src_upper) || b->ckpt.dir))
		return;
	/* view-tmp: the runner's private tmpfs (runner_private_overlay2) */
	char *tmp = cbl_path_join(b->ident.dir, "view-tmp");
	b->ckpt.root_dir = cbl_path_join(tmp, "rootfs");
	free(tmp);
	if (mkdir(b->ckpt.root_dir, 0700) < 0) {
		runner_warn(b, "no checkpoint of what the build changes outside its source: cannot create %s",
			    b->ckpt.root_dir);
		free(b->ckpt.root_dir);
		b->ckpt.root_dir = NULL;
		return;
	}
	b->ckpt.root_upper = cbl_path_join(b->ckpt.root_dir, "upper");
	so->root_upper = b->ckpt.root_dir;
	if (b->ckpt.dir)
		restore_root_layer(b, so);
}

/* The private directories the checkpoint keeps (read through the init's
 * /proc/PID/root: the sandbox's view, beneath it, no symlink followed):
 * the host view's tmpfs ones (/tmp, /home, /run ...: sandbox_private_dirs;
 * /root is in root-layer/), an image's /tmp (its other directories are in
 * root-layer/).  As root only, where /proc/PID/root is the runner's to
 * read.  Returns how many (paths and names: room for all of them). */
static size_t private_of(runner_build *b, char **root, const char **paths, const char **names)
{
	size_t n = 0, k = 0;
	const sandbox_private_dir *d = sandbox_private_dirs(&n);
	*root = NULL;
	if (geteuid() != 0 || !b->sandbox)
		return 0;
	*root = cbl_xasprintf("/proc/%d/root", (int)sandbox_pid(b->sandbox));
	for (size_t i = 0; i < n; i++) {
		if ((runner_image_rootfs(b) && strcmp(d[i].path, "/tmp")) || !strcmp(d[i].path, "/root"))
			continue; /* /root: in root-layer/ (root_upper's mask) */
		paths[k] = d[i].path + 1;
		names[k++] = d[i].name;
	}
	return k;
}

/* Whether a normal user's checkpoint keeps the private directory path
 * (private/<name>/, sandbox_private_dirs()): all of them where its / is
 * read-only (the host's, or an image's that overlayfs refused: its /tmp,
 * /var/tmp and /root), else an image root's /tmp (the rest is in the root
 * overlay's upper layer). */
static bool keeps_private(runner_build *b, const char *path)
{
	if (!runner_image_rootfs(b))
		return true;
	return !strcmp(path, "/tmp") || (b->ro_root && (!strcmp(path, "/var/tmp") || !strcmp(path, "/root")));
}

/* A restored build's checkpoint: the restored one's layer base (NULL:
 * none) flattened under the copy of this build's upper layer (part), in
 * the sandbox's user namespace (base's files of the user's subordinate
 * ids, hard-linked or copied). */
static int flatten_restored(runner_build *b, cache_checkpoint_stage *stage, cache_checkpoint_part part,
			    const char *base, unsigned how, cbl_error **err)
{
	if (!base)
		return 0;
	int fd = -1, rc;
	sandbox_copy_stats cs = {0};
	if ((rc = cache_checkpoint_stage_dir(stage, part, NULL, &fd, err)) < 0)
		return rc;
	int ofd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ofd < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open the restored checkpoint's %s", base);
	else
		rc = sandbox_merge_out(b->sandbox, ofd, fd, how, &cs, err);
	if (ofd >= 0)
		close(ofd);
	close(fd);
	cache_checkpoint_stage_count(stage, cs.files, cs.bytes);
	return rc;
}

/* What the sandbox shows changed, into the staging checkpoint
 * (cache_checkpoint_opts.fill): the copies run in its user namespace. */
static int fill_from_sandbox(void *arg, cache_checkpoint_stage *stage, cbl_error **err)
{
	runner_build *b = arg;
	bool image = runner_image_rootfs(b) != NULL;
	bool fuse = !image && sandbox_root_fuse(b->sandbox);
	int fd = -1, rc = 0;
	sandbox_copy_stats cs = {0};
	if ((rc = cache_checkpoint_stage_dir(stage, CACHE_CHECKPOINT_LAYER, NULL, &fd, err)) < 0)
		return rc;
	rc = sandbox_copy_out(b->sandbox, SANDBOX_COPY_MOUNT_UPPER, (size_t)b->ckpt.src_mount, NULL, fd, &cs, err);
	close(fd);
	cache_checkpoint_stage_count(stage, cs.files, cs.bytes);
	if (rc == 0)
		rc = flatten_restored(b, stage, CACHE_CHECKPOINT_LAYER, b->ckpt.layer, SANDBOX_MERGE_USER_XATTR, err);
	if (rc == 0 && ((image && !b->ro_root) || fuse)) {
		memset(&cs, 0, sizeof(cs));
		if ((rc = cache_checkpoint_stage_dir(stage, CACHE_CHECKPOINT_ROOT_LAYER, NULL, &fd, err)) < 0)
			return rc;
		rc = sandbox_copy_out(b->sandbox, SANDBOX_COPY_ROOT_UPPER, 0, NULL, fd, &cs, err);
		close(fd);
		cache_checkpoint_stage_count(stage, cs.files, cs.bytes);
		if (rc == 0)
			rc = flatten_restored(b, stage, CACHE_CHECKPOINT_ROOT_LAYER, b->ckpt.root_lower,
					      fuse ? SANDBOX_MERGE_FUSE : SANDBOX_MERGE_USER_XATTR, err);
	}
	size_t n = 0;
	const sandbox_private_dir *pd = sandbox_private_dirs(&n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!keeps_private(b, pd[i].path))
			continue;
		memset(&cs, 0, sizeof(cs));
		if ((rc = cache_checkpoint_stage_dir(stage, CACHE_CHECKPOINT_PRIVATE, pd[i].name, &fd, err)) < 0)
			return rc;
		cbl_error *e = NULL;
		rc = sandbox_copy_out(b->sandbox, SANDBOX_COPY_PATH, 0, pd[i].path, fd, &cs, &e);
		close(fd);
		cache_checkpoint_stage_count(stage, cs.files, cs.bytes);
		if (rc == CBL_ENOENT) { /* not in this view */
			cbl_error_free(e);
			rc = 0;
		} else if (rc < 0) {
			cbl_error_set(err, rc, "%s", e->msg);
			cbl_error_free(e);
		}
	}
	return rc;
}

void runner_checkpoint_take(runner_build *b, runner_phase_type p)
{
	int sp = (int)p - RUNNER_PHASE_INSTALL;
	/* only where a later phase could start on it */
	if (!b->ckpt.take || !b->shell_ready || (!b->ckpt.src_upper && !b->ckpt.sb_take) || sp < 0 || sp >= SPEC_PHASE_COUNT ||
	    !phase_runs(&b->spec->phases[sp]) || next_running(b->spec, sp) < 0)
		return;
	if (b->vars.secret_names.n && !b->ckpt.with_secrets) {
		if (!b->ckpt.said_secrets)
			runner_agent(b, "[codebuild-local] No checkpoint: the build has secrets (--checkpoint-secrets "
					"keeps them anyway)");
		b->ckpt.said_secrets = true;
		return;
	}
	int64_t t0 = cbl_mono_us();
	cbl_error *e = NULL;
	char *env = NULL, *dir = NULL;
	size_t len = 0;
	cache_store *st = NULL;
	json_t *parts = NULL;
	char key[65];
	key_of(b, b->spec, sp, &parts, key);
	size_t np = 0;
	sandbox_private_dirs(&np);
	const char **ppaths = cbl_xcalloc(np + 1, sizeof(*ppaths)), **pnames = cbl_xcalloc(np + 1, sizeof(*pnames));
	char *proot = NULL;
	np = private_of(b, &proot, ppaths, pnames);
	if (b->sh.carry && cbl_read_beneath(b->sh.tmp_fd, "env.sh", CBL_RESOLVE_NO_SYMLINKS, 64 << 20, &env, &len, &e) < 0)
		goto out;
	cache_checkpoint_opts o = {.scope = b->ident.project, .key = key, .phase = runner_phase_name(p),
				   .build_id = b->ident.id, .src_upper = b->ckpt.src_upper, .src_inner = b->src.src_inner,
				   .root_upper = b->ckpt.root_upper,
				   .env_sh = env, .dir_txt = b->sh.cwd, .parts = parts,
				   .private_root = proot, .private_paths = ppaths, .private_names = pnames,
				   .n_private = np, .taken_as = geteuid() == 0 ? "root" : "user",
				   /* a restored build: what it saw was its upper layers
				    * above the restored ones (a claimed or copied
				    * root-layer/ already holds both) */
				   .base_layer = b->ckpt.layer, .base_root_layer = b->ckpt.root_lower};
	if (b->ckpt.sb_take) {
		o.fill = fill_from_sandbox;
		o.fill_arg = b;
		if (!runner_image_rootfs(b) && sandbox_root_fuse(b->sandbox))
			o.root_format = CKPT_FUSE_FORMAT;
	}
	if (open_store(b, &st, &e) < 0 || cache_checkpoint_save(st, &o, &e) < 0)
		goto out;
	if (b->ckpt.root_upper) {
		/* its spare, ready for the first restore: made here, not in
		 * the background, as the next run is often `--from-phase`
		 * right after this one (a low-priority copy on a busy machine
		 * was not ready in time for most of those in bench/iterate.sh);
		 * the ones after a restore are made in the background */
		char *saved = NULL;
		json_t *m = NULL;
		cbl_error *se = NULL;
		if (cache_checkpoint_find(st, b->ident.project, key, &saved, &m, NULL) == 0 &&
		    cache_checkpoint_make_spare(st, saved, &se) < 0)
			runner_warn_drop(b, &se, "no ready copy of the checkpoint's changes outside the source: %s",
					 se->msg);
		cbl_error_free(se);
		free(saved);
		json_decref(m);
	}
	runner_agent(b, "[codebuild-local] Checkpoint of %s kept (%.1f ms): `codebuild-local run --from-phase %s` "
			"starts the next phase on it",
		     runner_phase_name(p), (double)(cbl_mono_us() - t0) / 1000.0,
		     runner_phase_name((runner_phase_type)(RUNNER_PHASE_INSTALL + next_running(b->spec, sp))));
out:
	if (e)
		runner_warn_drop(b, &e, "no checkpoint of %s: %s", runner_phase_name(p), e->msg);
	free(env);
	free(dir);
	free(proot);
	free(ppaths);
	free(pnames);
	json_decref(parts);
	cache_store_free(st);
}

/* Why no checkpoint matches: the newest of the project, part by part. */
static char *why_none(runner_build *b, cache_store *st, json_t *parts, const char *phase_before)
{
	cache_checkpoint_info *l = NULL;
	size_t n = 0;
	cbl_error *e = NULL;
	const cache_checkpoint_info *newest = NULL;
	if (cache_checkpoint_list(st, &l, &n, &e) == 0)
		for (size_t i = 0; i < n; i++)
			if (!strcmp(l[i].scope, b->ident.project) && (!newest || l[i].created_us > newest->created_us))
				newest = &l[i];
	cbl_error_free(e);
	char *msg;
	if (!newest) {
		msg = cbl_xasprintf("no checkpoint of project %s yet: run it once in full (the end of %s is kept)",
				    b->ident.project, phase_before);
	} else {
		char *dir = NULL;
		json_t *meta = NULL;
		cbl_buf diff = CBL_BUF_INIT;
		if (cache_checkpoint_find(st, newest->scope, newest->key, &dir, &meta, NULL) == 0) {
			json_t *mp = json_object_get(meta, "parts");
			const char *k;
			json_t *val;
			json_object_foreach(parts, k, val)
			{
				json_t *o = json_object_get(mp, k);
				if (!o || !json_equal(o, val))
					cbl_buf_printf(&diff, "%s%s", diff.len ? ", " : "", k);
			}
			json_object_foreach(mp, k, val)
			{
				if (!json_object_get(parts, k))
					cbl_buf_printf(&diff, "%s%s (not in this buildspec)", diff.len ? ", " : "", k);
			}
		}
		msg = cbl_xasprintf("no checkpoint matches the end of %s: the newest of project %s (the end of %s, "
				    "build %s) differs in: %s",
				    phase_before, b->ident.project, newest->phase, newest->build_id ? newest->build_id : "?",
				    diff.len ? diff.ptr : "the phases after it");
		cbl_buf_release(&diff);
		json_decref(meta);
		free(dir);
	}
	cache_checkpoint_list_free(l, n);
	return msg;
}

/* Why the checkpoint's root-layer/ cannot be this build's (NULL: it can,
 * or it has none).  fuse-overlayfs, where it cannot make a whiteout device
 * or set an attribute, records a deletion as a .wh.NAME file and an opaque
 * directory as a .wh..wh..opq file, which the kernel's overlay shows as
 * plain files (the deleted ones back); the kernel's layer as root keeps
 * them in trusted.overlay.* attributes, which fuse-overlayfs run by a
 * normal user cannot read.  So a layer goes only to the overlay that wrote
 * it: fuse-overlayfs's to a normal user's host root through it, the
 * kernel's to the rest. */
static char *root_layer_mismatch(runner_build *b, const char *before)
{
	char *layer = cbl_path_join(b->ckpt.dir, "root-layer");
	struct stat st;
	bool has = lstat(layer, &st) == 0 && S_ISDIR(st.st_mode);
	free(layer);
	if (!has)
		return NULL;
	const char *fmt = cbl_json_str(b->ckpt.meta, "rootLayerFormat");
	bool is_fuse = fmt && !strcmp(fmt, CKPT_FUSE_FORMAT);
	sandbox_ids ids;
	bool want_fuse = false;
	bool host = !b->cfg.image || runner_image_is_host(b->cfg.image);
	if (geteuid() != 0 && host) {
		sandbox_ids_probe(&ids);
		want_fuse = ids.fuse_overlayfs[0] != '\0';
	}
	if (is_fuse == want_fuse)
		return NULL;
	const char *id = cbl_json_str(b->ckpt.meta, "buildId") ? cbl_json_str(b->ckpt.meta, "buildId") : "?";
	if (is_fuse && geteuid() != 0 && host)
		return cbl_xasprintf("the checkpoint of the end of %s (build %s) changed the host's / through "
				     "fuse-overlayfs, which this build cannot use (%s): its / would be read-only, without "
				     "those changes; run it once in full this way",
				     before, id, ids.fuse_missing[0] ? ids.fuse_missing : "not usable");
	return cbl_xasprintf("the checkpoint of the end of %s (build %s) keeps its changes outside the source in "
			     "%s's format, and this build's root is %s: fuse-overlayfs may keep deletions as .wh.NAME "
			     "files that the kernel's overlay shows as plain files, and the kernel's overlay keeps them "
			     "in attributes fuse-overlayfs does not read unprivileged; run it once in full this way",
			     before, id, is_fuse ? "fuse-overlayfs" : "the kernel's overlay",
			     want_fuse ? "fuse-overlayfs" : "the kernel's overlay");
}

int runner_checkpoint_lookup(runner_build *b, char **why)
{
	if (!b->ckpt.from_phase)
		return 0;
	if (b->ckpt.from_phase <= RUNNER_PHASE_INSTALL) {
		b->ckpt.from_phase = 0; /* from the first phase: a full run */
		return 0;
	}
	const runner_layout *l = &b->src;
	bool user = geteuid() != 0;
	if (l->multi_root || l->source_mode != RUNNER_SOURCE_SNAPSHOT || l->src_copy || l->tracked_dir ||
	    l->git_parent || l->sb_overlay != user || b->cfg.sandbox_mode != RUNNER_SANDBOX_NAMESPACES) {
		/* the checkpoint's layer goes under the overlay of a local
		 * directory (the runner's as root, the sandbox's in its user
		 * namespace otherwise): nothing else could show it */
		*why = cbl_xstrdup("checkpoints need a local source directory in snapshot mode, with the sandbox and "
				   "without secondary sources");
		return -1;
	}
	spec_buildspec *sp = NULL;
	if (runner_buildspec_peek(b, &sp, why) < 0)
		return -1;
	int upto = b->ckpt.from_phase - 1 - RUNNER_PHASE_INSTALL;
	const char *before = runner_phase_name(b->ckpt.from_phase - 1);
	json_t *parts = NULL;
	char key[65];
	key_of(b, sp, upto, &parts, key);
	spec_buildspec_free(sp);
	cache_store *st = NULL;
	cbl_error *e = NULL;
	int rc = -1;
	if (open_store(b, &st, &e) < 0) {
		*why = cbl_xstrdup(e->msg);
		goto out;
	}
	if (cache_checkpoint_find(st, b->ident.project, key, &b->ckpt.dir, &b->ckpt.meta, &e) < 0) {
		*why = e->code == CBL_ENOENT ? why_none(b, st, parts, before) : cbl_xstrdup(e->msg);
		goto out;
	}
	/* a normal user's checkpoint holds files of its subordinate ids
	 * and user.* overlay attributes, root's trusted.* ones: neither
	 * serves the other */
	const char *taken = cbl_json_str(b->ckpt.meta, "takenAs");
	if (!taken)
		taken = "root"; /* before takenAs, only root took checkpoints */
	if (strcmp(taken, user ? "user" : "root")) {
		*why = cbl_xasprintf("the checkpoint of the end of %s (build %s) was taken by %s; a build run %s cannot "
				     "start on it: run it once in full this way",
				     before, cbl_json_str(b->ckpt.meta, "buildId") ? cbl_json_str(b->ckpt.meta, "buildId") : "?",
				     !strcmp(taken, "root") ? "a build run as root" : "a normal user's build",
				     user ? "as a normal user" : "as root");
		goto out;
	}
	if ((*why = root_layer_mismatch(b, before)))
		goto out;
	b->ckpt.layer = cbl_path_join(b->ckpt.dir, "layer");
	const char *inner = cbl_json_str(b->ckpt.meta, "srcInner");
	/* the same source path as the checkpoint's build: its carried state
	 * (cwd, variables holding paths) stays true */
	if (inner && !b->src.multi_root && !strncmp(inner, "/codebuild/output/src", 21)) {
		free(b->src.src_inner);
		b->src.src_inner = cbl_xstrdup(inner);
	}
	rc = 0;
out:
	cbl_error_free(e);
	json_decref(parts);
	cache_store_free(st);
	return rc;
}

/* Leaves out of hide what the checkpoint's layer has: its own version
 * (npm ci's node_modules, made where the working tree's was hidden) shows. */
void runner_checkpoint_filter_hide(runner_build *b, cbl_strv *hide)
{
	if (!b->ckpt.layer)
		return;
	size_t k = 0;
	for (size_t i = 0; i < hide->n; i++) {
		char *p = cbl_path_join(b->ckpt.layer, hide->v[i]);
		struct stat st;
		bool in_layer = lstat(p, &st) == 0;
		free(p);
		if (in_layer)
			free(hide->v[i]);
		else
			hide->v[k++] = hide->v[i];
	}
	hide->n = k;
	if (hide->v)
		hide->v[k] = NULL;
}

/* What else the restored build gets, for the restore message: what it
 * has, not what it might have. */
static char *restored_what(runner_build *b)
{
	cbl_buf w = CBL_BUF_INIT, dirs = CBL_BUF_INIT;
	size_t n = 0;
	const sandbox_private_dir *d = sandbox_private_dirs(&n);
	for (size_t i = 0; b->ckpt.private_lower && i < n; i++) {
		char *p = cbl_path_join(b->ckpt.private_lower, d[i].name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			cbl_buf_printf(&dirs, "%s%s", dirs.len ? ", " : "", d[i].path);
		free(p);
	}
	if (b->ckpt.root_restored && b->ckpt.root_lower && geteuid() != 0 && !runner_image_rootfs(b) &&
	    !sandbox_root_fuse(b->sandbox))
		cbl_buf_puts(&w, "NOT the changes to the host's / (fuse-overlayfs, which took them, did not start: "
				 "the host's / is read-only)");
	else if (b->ckpt.root_restored)
		cbl_buf_puts(&w, "the changes outside the source (installed packages, /root) too");
	else if (geteuid() != 0 && !runner_image_rootfs(b) && !sandbox_root_fuse(b->sandbox))
		cbl_buf_puts(&w, "outside the source the host's / read-only as in every normal user's build");
	else
		cbl_buf_puts(&w, "no changes outside the source (not in this checkpoint)");
	if (dirs.len)
		cbl_buf_printf(&w, ", and the contents of %s as the phase left them", dirs.ptr);
	else
		cbl_buf_puts(&w, ", private directories (/tmp, /home) empty (not in this checkpoint)");
	cbl_buf_puts(&w, "; background processes are not restored");
	cbl_buf_release(&dirs);
	return cbl_buf_detach(&w);
}

void runner_checkpoint_restore_shell(runner_build *b)
{
	if (!b->ckpt.dir || !b->shell_ready)
		return;
	cbl_error *e = NULL;
	char *path = cbl_path_join(b->ckpt.dir, "env.sh");
	char *env = NULL;
	size_t len = 0;
	if (b->sh.carry && cbl_read_file(path, 64 << 20, &env, &len, &e) == 0) {
		if (cbl_write_at_atomic(b->sh.tmp_fd, "env.sh", env, len, 0600, &e) == 0) {
			/* this build's own CODEBUILD_* values beat the checkpoint's */
			for (size_t i = 0; i < b->vars.env.n; i++) {
				const char *kv = b->vars.env.v[i], *eq = strchr(kv, '=');
				if (eq && !strncmp(kv, "CODEBUILD_", 10)) {
					char *name = cbl_xstrndup(kv, (size_t)(eq - kv));
					runner_shell_set_var(&b->sh, name, eq + 1, &e);
					cbl_error_free(e);
					e = NULL;
					free(name);
				}
			}
		}
	}
	free(env);
	free(path);
	cbl_error_free(e);
	const char *cwd = NULL;
	json_t *m = b->ckpt.meta;
	char *dpath = cbl_path_join(b->ckpt.dir, "dir.txt");
	char *dir = NULL;
	e = NULL;
	if (cbl_read_file(dpath, 1 << 16, &dir, &len, &e) == 0 && len)
		cwd = dir;
	if (cwd && b->sh.carry) {
		free(b->sh.cwd);
		b->sh.cwd = cbl_xstrdup(cwd);
	}
	free(dir);
	free(dpath);
	cbl_error_free(e);
	char ts[32];
	cbl_format_iso_time(ts, json_integer_value(json_object_get(m, "created")));
	char *what = restored_what(b);
	runner_agent(b, "[codebuild-local] Starting at %s on the checkpoint of %s from build %s (%s): the source's "
			"changes and the carried variables and directory, above the working tree as it is now; %s",
		     runner_phase_name(b->ckpt.from_phase), cbl_json_str(m, "phase"), cbl_json_str(m, "buildId"), ts,
		     what);
	free(what);
}

bool runner_checkpoint_skips(runner_build *b, runner_phase_type p)
{
	if (!b->ckpt.dir || p >= (runner_phase_type)b->ckpt.from_phase)
		return false;
	runner_phase_start(b, p);
	runner_agent(b, "Entering phase %s", runner_phase_name(p));
	runner_agent(b, "[codebuild-local] Restored from the checkpoint, not run");
	runner_phase_end(b, p, RUNNER_STATUS_SUCCEEDED, true);
	return true;
}

void runner_checkpoint_release(runner_build *b)
{
	/* the next restore's spare: after the build, whose end kills every
	 * process re-parented to the runner (a child subreaper), and out of
	 * its way */
	if (b->ckpt.spare_wanted && b->ckpt.dir)
		spare_later(b, b->ckpt.dir);
	if (b->ckpt.claim_dir) {
		runner_discard_tree(b, b->ckpt.claim_dir);
		close(b->ckpt.claim_lock);
		free(b->ckpt.claim_dir);
	}
	free(b->ckpt.src_upper);
	free(b->ckpt.root_dir);
	free(b->ckpt.root_upper);
	free(b->ckpt.dir);
	free(b->ckpt.layer);
	free(b->ckpt.private_lower);
	free(b->ckpt.root_lower);
	json_decref(b->ckpt.meta);
	memset(&b->ckpt, 0, sizeof(b->ckpt));
}
