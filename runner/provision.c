/* runner/provision.c - the PROVISIONING stage: the source snapshot (overlay view, copy, tracked checkout), the image, the sandbox. */
#include "cache/cache.h"
#include "runner/runner_internal.h"
#include "sandbox/sandbox.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

/* --git-tracked-only: the build sees exactly what a clone of HEAD would
 * contain, checked out by libgit2 into a private directory. */
static int checkout_tracked(runner_build *b, cbl_error **err)
{
	git_repository *repo = NULL;
	git_object *tree = NULL;
	int rc = 0;
	git_libgit2_init();
	if (git_repository_open_ext(&repo, b->src.source_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_revparse_single(&tree, repo, "HEAD^{tree}") < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EINVAL, "--git-tracked-only: %s is not a git repository with a "
						    "commit (%s)",
				   b->src.source_dir, ge && ge->message ? ge->message : "no HEAD");
		goto out;
	}
	git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	co.target_directory = b->src.tracked_dir;
	if (git_checkout_tree(repo, tree, &co) < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EIO, "--git-tracked-only: cannot check out HEAD: %s",
				   ge && ge->message ? ge->message : "unknown error");
	}
out:
	git_object_free(tree);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}

/* Snapshot mode with an overlay: the working tree is the read-only lower
 * layer of an overlay mounted in a private mount namespace of the runner
 * (so nothing is ever mounted on the host, and it all vanishes with the
 * runner whatever happens), whose upper layer is a tmpfs.  The sandbox binds
 * that view at /codebuild/output/srcN/src and the runner reads the build's
 * results (artifacts, reports) from the same view.  It costs the same for 10
 * files or 100,000, and the build can never change the working tree. */
static int setup_view(runner_build *b, cbl_error **err)
{
	char *view = cbl_path_join(b->ident.dir, "view");
	cbl_strv hide = CBL_STRV_INIT;
	runner_snapshot_ignored(b, b->src.source_dir, NULL, &hide);
	runner_checkpoint_filter_hide(b, &hide);
	/* a phase checkpoint's changes above the working tree */
	int rc = runner_private_overlay2(b, b->ckpt.layer, b->src.source_dir, view, (const char *const *)hide.v,
					 &b->ckpt.src_upper, err);
	cbl_strv_release(&hide);
	if (rc) {
		free(view);
		return rc;
	}
	free(b->src.view);
	b->src.view = view;
	b->src.view_mounted = true;
	return 0;
}

/* --mount's DST: absolute, '/'-separated names without '.' or '..' (so what
 * is checked is what is mounted), and not where the sandbox's own things
 * are.  *out: DST without doubled or trailing slashes (caller frees). */
static int bind_target_check(const char *spec, const char *dst, char **out, cbl_error **err)
{
	static const char *const reserved[] = {"/proc", "/sys", "/dev", "/codebuild"};
	if (dst[0] != '/')
		return cbl_error_set(err, CBL_EINVAL, "--mount %s: the target %s is not an absolute path", spec, dst);
	cbl_buf norm = CBL_BUF_INIT;
	for (const char *p = dst; *p;) {
		while (*p == '/')
			p++;
		size_t l = strcspn(p, "/");
		if (!l)
			break;
		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.')) {
			cbl_buf_release(&norm);
			return cbl_error_set(err, CBL_EINVAL, "--mount %s: the target may not have '.' or '..' components",
					     spec);
		}
		cbl_buf_putc(&norm, '/');
		cbl_buf_append(&norm, p, l);
		p += l;
	}
	if (!norm.len) {
		cbl_buf_release(&norm);
		return cbl_error_set(err, CBL_EINVAL, "--mount %s: the target may not be /", spec);
	}
	for (size_t i = 0; i < sizeof(reserved) / sizeof(*reserved); i++) {
		size_t l = strlen(reserved[i]);
		if (!strncmp(norm.ptr, reserved[i], l) && (norm.ptr[l] == '\0' || norm.ptr[l] == '/')) {
			int rc = cbl_error_set(err, CBL_EINVAL, "--mount %s: the target may not be under %s (the "
								"sandbox's own)", spec, reserved[i]);
			cbl_buf_release(&norm);
			return rc;
		}
	}
	*out = cbl_buf_detach(&norm);
	return 0;
}

int runner_binds_init(runner_build *b, const char *const *specs, cbl_error **err)
{
	for (size_t i = 0; specs && specs[i]; i++) {
		const char *spec = specs[i];
		size_t len = strlen(spec);
		bool ro = false;
		if (len > 3 && (!strcmp(spec + len - 3, ":ro") || !strcmp(spec + len - 3, ":rw"))) {
			ro = spec[len - 2] == 'r' && spec[len - 1] == 'o';
			len -= 3;
		}
		char *s = cbl_xstrndup(spec, len);
		char *colon = strrchr(s, ':');
		char *src = NULL, *dst = NULL;
		int rc = 0;
		if (!colon || colon == s || !colon[1]) {
			rc = cbl_error_set(err, CBL_EINVAL, "--mount expects SRC:DST[:ro], got '%s'", spec);
		} else {
			*colon = '\0';
			rc = bind_target_check(spec, colon + 1, &dst, err);
			/* the source as it is now, symlinks and '..' resolved */
			if (!rc && !(src = realpath(s, NULL)))
				rc = cbl_error_set_errno(err, errno == ENOENT ? CBL_ENOENT : CBL_EINVAL, errno,
							 "--mount %s: the source %s", spec, s);
		}
		free(s);
		if (rc) {
			free(dst);
			return rc;
		}
		b->cfg.binds = cbl_xrealloc(b->cfg.binds, (b->cfg.n_binds + 1) * sizeof(*b->cfg.binds));
		b->cfg.binds[b->cfg.n_binds++] = (runner_bind){src, dst, ro};
	}
	if (b->cfg.n_binds && b->cfg.sandbox_mode == RUNNER_SANDBOX_NONE)
		return cbl_error_set(err, CBL_EINVAL, "--mount needs the sandbox (without it the build sees this "
						      "machine's files anyway)");
	return 0;
}

void runner_binds_free(runner_build *b)
{
	for (size_t i = 0; i < b->cfg.n_binds; i++) {
		free(b->cfg.binds[i].source);
		free(b->cfg.binds[i].target);
	}
	free(b->cfg.binds);
	b->cfg.binds = NULL;
	b->cfg.n_binds = 0;
}

/* What the runner keeps to itself, hidden from the host's view (a private
 * directory like ~/.local hides them already; CODEBUILD_LOCAL_HOME and
 * --cache-dir may be anywhere): the state directory (every build's record,
 * log and scratch, the database, the image store) and the cache store.
 * Real paths: the sandbox masks what the view shows.  Caller frees *out's
 * strings. */
static void runner_masks(runner_build *b, char *out[2])
{
	out[0] = realpath(b->ident.home, NULL);
	char *cache = b->cache.dir ? cbl_xstrdup(b->cache.dir) : cache_default_dir(b->ident.home);
	out[1] = realpath(cache, NULL);
	free(cache);
	size_t l = out[0] ? strlen(out[0]) : 0;
	if (out[0] && out[1] && !strncmp(out[1], out[0], l) && (out[1][l] == '/' || !out[1][l])) {
		free(out[1]);
		out[1] = NULL;
	}
}

/* The git-ignored paths the sandbox's overlay k leaves out (NULL: none). */
static const char *const *hide_of(const runner_layout *l, size_t k)
{
	return l->sb_hide && l->sb_hide[k].n ? (const char *const *)l->sb_hide[k].v : NULL;
}

/* Reads, once, what each of the sandbox's source overlays leaves out (what
 * git ignores, unless --source-mode all): a whiteout each. */
static void sb_hides(runner_build *b)
{
	runner_layout *l = &b->src;
	if (l->sb_hide)
		return;
	l->sb_hide = cbl_xcalloc(l->nsrcs + 1, sizeof(cbl_strv));
	if (l->sb_overlay) {
		runner_snapshot_ignored(b, l->source_dir, NULL, &l->sb_hide[0]);
		runner_checkpoint_filter_hide(b, &l->sb_hide[0]);
	}
	for (size_t i = 0; i < l->nsrcs; i++)
		if (l->srcs[i].sb_overlay)
			runner_snapshot_ignored(b, l->srcs[i].dir, l->srcs[i].id, &l->sb_hide[1 + i]);
}

/* What the sandbox mounts: the runner's state hidden, then under /codebuild
 * a private /codebuild/output with the source (for a git clone, its parent:
 * the clone is renamed into it later), the secondary sources, the build's
 * scratch, and /codebuild/readonly with the runner's own binary (host
 * image), then the user's --mount binds.  *out is caller-freed, with
 * strs[] (the strings it borrows: the masks, the binary); *parent_out too. */
static int source_mounts(runner_build *b, sandbox_mount **out, size_t *n_out, char **parent_out, char *strs[3],
			 cbl_error **err)
{
	const runner_layout *l = &b->src;
	const char *src_host = l->tracked_dir ? l->tracked_dir : l->src_copy ? l->src_copy : l->source_dir;
	const char *src_inner = l->src_inner;
	const char *const *binds = NULL;
	if (l->multi_root) {
		src_host = l->multi_root;
		src_inner = l->multi_inner;
		binds = (const char *const *)l->sandbox_binds.v;
	} else if (l->source_mode == RUNNER_SOURCE_SNAPSHOT && !l->src_copy && !l->tracked_dir && !l->git_parent &&
		   !l->sb_overlay && !b->src.view_mounted) {
		if (setup_view(b, err) < 0)
			return -1;
		src_host = b->src.view;
	}
	sandbox_mount *m = cbl_xcalloc(11 + l->sandbox_binds.n / 2 + b->cfg.n_binds + l->nsrcs, sizeof(*m));
	b->ckpt.src_mount = -1;
	size_t n = 0;
	runner_masks(b, strs);
	/* by its path: /proc/self/exe names the file on a mount of this
	 * namespace, which the sandbox's own cannot bind (EINVAL).  Gone when
	 * the binary was deleted since it started (a rebuild under `serve`):
	 * then the build has no codebuild-hash-files, and says so. */
	strs[2] = realpath("/proc/self/exe", NULL);
	if (strs[2] && access(strs[2], X_OK) < 0) {
		free(strs[2]);
		strs[2] = NULL;
	}
	if (!strs[2] && !runner_image_rootfs(b))
		runner_warn(b, "this program's binary was removed or replaced since it started: "
			       "codebuild-hash-files is not available in the build");
	for (int i = 0; i < 2; i++)
		if (strs[i])
			m[n++] = (sandbox_mount){SANDBOX_MOUNT_MASK, NULL, strs[i], 0};
	char *parent = cbl_xstrdup(src_inner);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	m[n++] = (sandbox_mount){SANDBOX_MOUNT_TMPFS, NULL, "/codebuild/output", 0755};
	if (l->git_parent)
		m[n++] = (sandbox_mount){SANDBOX_MOUNT_BIND, l->git_parent, parent, 0};
	else if (l->sb_overlay && !l->multi_root) {
		/* a phase checkpoint's changes above the working tree */
		b->ckpt.src_mount = (long)n;
		m[n++] = (sandbox_mount){SANDBOX_MOUNT_OVERLAY, l->source_dir, src_inner, 0, true, hide_of(l, 0),
					 b->ckpt.layer};
	}
	else
		m[n++] = (sandbox_mount){SANDBOX_MOUNT_BIND, src_host, src_inner, 0};
	for (const char *const *bd = binds; bd && bd[0] && bd[1]; bd += 2)
		m[n++] = (sandbox_mount){SANDBOX_MOUNT_BIND, bd[0], bd[1], 0};
	/* not root, the snapshots of directories are overlays the sandbox
	 * mounts in its user namespace, on their slots of the sources root */
	if (l->multi_root && l->sb_overlay)
		m[n++] = (sandbox_mount){SANDBOX_MOUNT_OVERLAY, l->source_dir, l->src_inner, 0, true, hide_of(l, 0)};
	for (size_t i = 0; l->multi_root && i < l->nsrcs; i++)
		if (l->srcs[i].sb_overlay)
			m[n++] = (sandbox_mount){SANDBOX_MOUNT_OVERLAY, l->srcs[i].dir, l->srcs[i].inner, 0, true,
						 hide_of(l, 1 + i)};
	m[n++] = (sandbox_mount){SANDBOX_MOUNT_BIND, b->ident.tmpdir, "/codebuild/output/tmp", 0};
	m[n++] = (sandbox_mount){SANDBOX_MOUNT_DIR, NULL, "/codebuild/readonly", 0};
	if (!runner_image_rootfs(b) && strs[2]) {
		/* reachable wherever the binary lives (a private /tmp, a mount);
		 * only the host's libraries run it: the host image only */
		m[n++] = (sandbox_mount){SANDBOX_MOUNT_BIND_RO, strs[2], RUNNER_INNER_BIN "/codebuild-local", 0};
		m[n++] = (sandbox_mount){SANDBOX_MOUNT_BIND_RO, strs[2], RUNNER_INNER_BIN "/codebuild-hash-files", 0};
		m[n++] = (sandbox_mount){SANDBOX_MOUNT_BIND_RO, strs[2], RUNNER_INNER_BIN "/codebuild-tests-run", 0};
		m[n++] = (sandbox_mount){SANDBOX_MOUNT_BIND_RO, strs[2], RUNNER_INNER_BIN "/codebuild-glob-search", 0};
	}
	for (size_t i = 0; i < b->cfg.n_binds; i++)
		m[n++] = (sandbox_mount){b->cfg.binds[i].read_only ? SANDBOX_MOUNT_BIND_RO : SANDBOX_MOUNT_BIND,
					 b->cfg.binds[i].source, b->cfg.binds[i].target, 0};
	*out = m;
	*n_out = n;
	*parent_out = parent;
	return 0;
}

/* The compute type's limits.  Putting a process into a cgroup v1 costs one
 * RCU grace period in the kernel (15-20 ms on a small VM), more than the rest
 * of the sandbox: the limits are enforced when a compute type is asked for,
 * and the default says so instead of slowing every build. */
static void compute_limits(runner_build *b, sandbox_opts *so)
{
	const runner_compute *ct = runner_compute_find(b->cfg.compute_type);
	if (b->cfg.compute_explicit) {
		so->memory_bytes = (int64_t)ct->memory_gb << 30;
		so->pids_max = 32768; /* ours: the service publishes no process limit */
		/* how each limit is enforced here; a cgroup that turns out not
		 * writable at start is a warning right after this line */
		sandbox_limit_methods how;
		sandbox_limit_methods_probe(&how);
		char cpus[96];
		if (!ct->vcpus)
			snprintf(cpus, sizeof(cpus), "vCPUs not limited (Lambda compute publishes none)");
		else if (how.cpus_available && how.cpus_available < ct->vcpus)
			snprintf(cpus, sizeof(cpus), "%d vCPUs via %s (this machine has %d)", ct->vcpus, how.cpus,
				 how.cpus_available);
		else
			snprintf(cpus, sizeof(cpus), "%d vCPUs via %s", ct->vcpus, how.cpus);
		runner_agent(b, "[codebuild-local] Compute type %s: memory %d GB via %s, %s, processes %lld via %s",
			     ct->name, ct->memory_gb, how.memory, cpus, (long long)so->pids_max, how.pids);
	} else {
		runner_agent(b, "[codebuild-local] Compute type %s (the default): its %d GB memory limit is not "
				"enforced; pass --compute-type to enforce it",
			     ct->name, ct->memory_gb);
	}
	so->cpus = ct->vcpus;
	so->cgroup_name = b->ident.uuid;
}

static sandbox_network sandbox_network_of(int mode)
{
	switch (mode) {
	case RUNNER_NETWORK_HOST: return SANDBOX_NET_HOST;
	case RUNNER_NETWORK_NONE: return SANDBOX_NET_NONE;
	default: return SANDBOX_NET_NAT;
	}
}

/* What the network settings give up or leave out, in the log. */
static void network_notes(runner_build *b)
{
	bool sandboxed = b->cfg.sandbox_mode != RUNNER_SANDBOX_NONE;
	if (sandboxed && b->cfg.network == RUNNER_NETWORK_HOST)
		runner_warn(b, "--network host: the build shares this machine's network, including its loopback "
			       "services (e.g. a server on 127.0.0.1) and abstract unix sockets");
	if (b->cfg.vpc_config)
		runner_warn(b, "the project's vpcConfig is not applied: a local build has no VPC; it uses %s",
			    !sandboxed || b->cfg.network == RUNNER_NETWORK_HOST ? "this machine's network"
			    : b->cfg.network == RUNNER_NETWORK_NONE	  ? "loopback only (--network none)"
									  : "the default network (outbound through a "
									    "NAT)");
	for (size_t i = 0; i < b->cfg.notes.n; i++)
		runner_warn(b, "%s", b->cfg.notes.v[i]);
}

/* Where the kernel refused an overlay of a source directory in the user
 * namespace (a mount under the directory, a filesystem overlayfs does not
 * take as a layer): that source becomes a copy, said in the log.  Returns
 * how many fell back (0: the sandbox is fine as it is), or -1 (a failed
 * copy, in *err). */
static int snapshot_fallbacks(runner_build *b, const sandbox_mount *m, size_t nm, cbl_error **err)
{
	int fell = 0;
	for (size_t i = 0; i < nm; i++) {
		const char *why = m[i].optional ? sandbox_mount_error(b->sandbox, i) : NULL;
		if (!why)
			continue;
		runner_src2 *s2 = NULL;
		for (size_t k = 0; k < b->src.nsrcs; k++)
			if (b->src.srcs[k].sb_overlay && !strcmp(b->src.srcs[k].inner, m[i].target))
				s2 = &b->src.srcs[k];
		const char *dir = s2 ? s2->dir : b->src.source_dir;
		if (!s2 && b->ckpt.layer)
			return cbl_error_set(err, CBL_EIO, "source snapshot of %s: the kernel refused an overlay in the "
							   "user namespace (%s): the checkpoint's changes cannot go above it",
					     dir, why);
		runner_warn(b, "source snapshot of %s: the kernel refused an overlay in the user namespace (%s): "
			       "the build gets a copy instead",
			    dir, why);
		/* the copy goes where the sandbox binds it: a slot of the
		 * sources root (left empty by the failed mount), or its own */
		char *copy = s2 ? cbl_xstrdup(s2->host)
			     : b->src.multi_root ? cbl_xstrdup(b->src.view) : cbl_path_join(b->ident.dir, "src");
		rmdir(copy);
		int rc = cbl_copy_tree_except(dir, copy, hide_of(&b->src, s2 ? 1 + (size_t)(s2 - b->src.srcs) : 0), err);
		if (s2) {
			s2->sb_overlay = false;
			s2->copy = true;
		} else {
			b->src.sb_overlay = false;
			free(b->src.src_copy);
			b->src.src_copy = cbl_xstrdup(copy);
			free(b->src.view);
			b->src.view = cbl_xstrdup(copy);
		}
		free(copy);
		if (rc < 0)
			return -1;
		fell++;
	}
	return fell;
}

/* The sandbox's source overlays, opened: the runner reads the build's
 * view of its sources (artifacts, reports, the cache) through them, also
 * after the sandbox has ended. */
static int open_views(runner_build *b, cbl_error **err)
{
	runner_layout *l = &b->src;
	for (size_t k = 0; k <= l->nsrcs; k++) {
		bool primary = k == l->nsrcs;
		runner_src2 *s2 = primary ? NULL : &l->srcs[k];
		if (!(primary ? l->sb_overlay : s2->sb_overlay))
			continue;
		const char *inner = primary ? l->src_inner : s2->inner;
		int fd = -1;
		if (sandbox_open_dir(b->sandbox, inner, &fd, err) < 0)
			return -1;
		char *path = cbl_fd_path(fd);
		for (size_t i = 0; i < l->map_inner.n; i++)
			if (!strcmp(l->map_inner.v[i], inner)) {
				free(l->map_host.v[i]);
				l->map_host.v[i] = cbl_xstrdup(path);
			}
		if (primary) {
			l->view_fd = fd;
			free(l->view);
			l->view = path;
		} else {
			s2->view_fd = fd;
			free(path);
		}
	}
	return 0;
}

/* What a normal user's sandbox gives up, once in the log: the read-only
 * host image, and the ids when only the caller is mapped. */
static void rootless_notes(runner_build *b)
{
	sandbox_ids ids;
	sandbox_ids_probe(&ids);
	b->ids_full = sandbox_ids_full(&ids);
	b->ro_root = sandbox_root_readonly(b->sandbox);
	if (!runner_image_rootfs(b) && sandbox_root_fuse(b->sandbox))
		runner_agent(b, "[codebuild-local] not root: the host's / is writable through fuse-overlayfs "
				"(squash_to_root: every file shows as root's; writes vanish with the build; files the "
				"invoking user cannot read, such as /etc/shadow, cannot be changed); /tmp, /var/tmp, "
				"/root, /home, /run, /srv, /mnt and /media are private");
	else if (!runner_image_rootfs(b))
		runner_warn(b, "not root: the sandbox shows the host's / read-only (no overlay of the host's / in "
			       "an unprivileged user namespace; fuse-overlayfs would give one, but %s); /tmp, /var/tmp, "
			       "/root, /home, /run, /srv, /mnt and /media are private; an image's root (-i IMAGE) is "
			       "writable",
			    ids.fuse_missing[0] ? ids.fuse_missing : "it failed");
	if (!b->ids_full)
		runner_warn(b, "not root and only one id mapped (%s): everything runs as root inside, run-as is "
			       "not applied, an image's files all belong to root and the host's other owners show as "
			       "nobody, and tools that drop privileges fail (setgroups is denied, apt's _apt sandbox "
			       "user does not exist: apt-get needs -o APT::Sandbox::User=root); with subordinate ids "
			       "(useradd gives 65,536) and newuidmap/newgidmap (Debian's uidmap package) the sandbox "
			       "maps them",
			    ids.missing);
}

/* PROVISIONING: the build's namespaces, limits from the compute type. */
static int provision_sandbox(runner_build *b, cbl_error **err)
{
	sandbox_mount *mounts = NULL;
	size_t nm = 0;
	char *src_parent = NULL, *strs[3] = {NULL, NULL, NULL};
	int rc = 0;
	if (pipe2(b->out_pipe, O_CLOEXEC) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot create the output pipe");
	if (cbl_mkdir_p(b->src.scratch, 0700, err) < 0 || cbl_mkdir_p(b->ident.tmpdir, 0700, err) < 0)
		return -1;
	sandbox_opts so = SANDBOX_OPTS_INIT;
	so.rootfs = runner_image_rootfs(b);
	so.scratch = b->src.scratch;
	so.cwd = b->src.git_parent ? "/" : b->src.multi_root ? b->src.multi_inner : b->src.src_inner; /* a clone is not there yet */
	so.hostname = "codebuild-local";
	so.network = sandbox_network_of(b->cfg.network);
	so.out_fd = b->out_pipe[1];
	so.privileged = b->cfg.privileged;
	compute_limits(b, &so);
	sb_hides(b);
	for (;;) {
		if (source_mounts(b, &mounts, &nm, &src_parent, strs, err) < 0)
			return -1;
		runner_checkpoint_root(b, &so); /* after the source's view */
		so.mounts = mounts;
		so.n_mounts = nm;
		rc = sandbox_start(&b->sandbox, &so, err);
		int fell = rc < 0 ? 0 : snapshot_fallbacks(b, mounts, nm, err);
		free(mounts);
		free(src_parent);
		for (int i = 0; i < 3; i++)
			free(strs[i]);
		if (rc < 0)
			return rc;
		if (!fell)
			break;
		/* again, with copies bound where overlays were refused */
		sandbox_free(b->sandbox);
		b->sandbox = NULL;
		if (fell < 0)
			return -1;
	}
	if (open_views(b, err) < 0)
		return -1;
	for (const char *const *w = sandbox_warnings(b->sandbox); *w; w++)
		runner_warn(b, "%s", *w);
	if (b->cfg.privileged)
		runner_warn(b, "privileged mode (--privileged / privilegedMode): the build's root has every "
			       "capability, no seccomp filter and a writable /proc/sys; it can take over this "
			       "machine (%s)",
			    geteuid() == 0 ? "as root: the host's root" : "not root: the invoking user");
	if (geteuid() != 0)
		rootless_notes(b);
	return 0;
}

/* A failed step of PROVISIONING: its status, CLIENT_ERROR and the error. */
static runner_status provision_failed(runner_build *b, runner_outcome *o, runner_status st, cbl_error *e)
{
	runner_outcome_set(b, o, "CLIENT_ERROR", e->msg);
	cbl_error_free(e);
	return st;
}

/* The PROVISIONING stage: the sources' layout, the snapshot (tracked
 * checkout, copy), the image, then the sandbox. */
runner_status runner_provision(runner_build *b, runner_outcome *o)
{
	cbl_error *e = NULL;
	char *why = NULL;
	/* one libgit2 initialisation for the whole build (the snapshot's
	 * ignored paths, DOWNLOAD_SOURCE's HEAD and status): each one loads
	 * the TLS trust store, some 10 ms */
	if (!b->git_held && b->src.source_dir && runner_is_git_dir(b->src.source_dir)) {
		git_libgit2_init();
		b->git_held = true;
	}
	if (runner_checkpoint_lookup(b, &why) < 0) {
		runner_outcome_setf(b, o, "CLIENT_ERROR", "--from-phase %s: %s", runner_phase_name(b->ckpt.from_phase),
				    why);
		free(why);
		return RUNNER_STATUS_FAILED;
	}
	if (b->src.multi_root && runner_sources_provision(b, &b->src.sandbox_binds, &e) < 0)
		return provision_failed(b, o, RUNNER_STATUS_FAULT, e);
	if (b->src.git_parent && cbl_mkdir_p(b->src.git_parent, 0755, &e) < 0)
		return provision_failed(b, o, RUNNER_STATUS_FAULT, e);
	if (b->src.tracked_dir && checkout_tracked(b, &e) < 0)
		return provision_failed(b, o, RUNNER_STATUS_FAILED, e);
	/* snapshot without an overlay: the build gets its own copy (without
	 * what git ignores) */
	if (b->src.src_copy) {
		cbl_strv hide = CBL_STRV_INIT;
		runner_snapshot_ignored(b, b->src.source_dir, NULL, &hide);
		int rc = cbl_copy_tree_except(b->src.source_dir, b->src.src_copy, (const char *const *)hide.v, &e);
		cbl_strv_release(&hide);
		if (rc < 0)
			return provision_failed(b, o, RUNNER_STATUS_FAULT, e);
	}
	if (!runner_image_is_host(b->cfg.image)) {
		char *code = NULL, *msg = NULL;
		if (runner_image_resolve(b, &code, &msg) < 0) {
			runner_outcome_set(b, o, code, msg);
			free(code);
			free(msg);
			return RUNNER_STATUS_FAILED;
		}
	}
	network_notes(b);
	if (b->cfg.sandbox_mode == RUNNER_SANDBOX_NONE) {
		runner_warn(b, "no sandbox (--sandbox none): commands run directly on this machine as the "
			       "invoking user, in %s",
			    b->src.source_dir);
	} else if (provision_sandbox(b, &e) < 0) {
		bool nat = !strncmp(e->msg, "sandbox: network: ", 18);
		runner_outcome_setf(b, o, "CLIENT_ERROR", "%s (%s)", e->msg,
				    nat ? "or run with --network host or --network none"
					: "run with --sandbox none to build without isolation");
		cbl_error_free(e);
		return RUNNER_STATUS_FAULT;
	}
	runner_agent(b, "Waiting for agent ping");
	runner_agent(b, "Waiting for DOWNLOAD_SOURCE");
	return RUNNER_STATUS_SUCCEEDED;
}
