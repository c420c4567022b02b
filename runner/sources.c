/* runner/sources.c - secondary sources and the service's multi-source layout.
 *
 * With secondary sources the service puts every source in a numbered folder
 * (reference buildspec.md §3.4): the primary at <srcroot>/s3/00, the
 * secondaries at s3/01, s3/02, ..., each secondary at
 * CODEBUILD_SRC_DIR_<sourceIdentifier>, and the agent logs one
 * "CODEBUILD_SRC_DIR_<id>=" line per secondary source.
 *
 * Where the runner keeps them (<build dir>/sources, bound by the sandbox at
 * /codebuild/output/srcN/src):
 *   git source            cloned into sources/s3/NN in DOWNLOAD_SOURCE
 *   directory, snapshot   an overlay at sources/s3/NN whose read-only lower
 *                         layer is the directory, mounted in a private mount
 *                         namespace of the runner (nothing is mounted on the
 *                         host; the runner reads artifacts from it); not
 *                         root, an overlay the sandbox mounts at the inner
 *                         path in its user namespace, which the runner reads
 *                         through a descriptor (provision.c); a copy without
 *                         the sandbox, or where the kernel refuses that;
 *                         either way without the git-ignored paths
 *                         (whiteouts in the overlay's upper layer, left out
 *                         of the copy) unless --source-mode all
 *   directory, mount      bound by the sandbox itself at its inner path, so
 *                         the runner never has a user's directory mounted
 *                         under a tree it removes afterwards
 */
#include "runner/runner_internal.h"
#include "sandbox/sandbox.h"
#include "source/source.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <git2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

static bool id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 127)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return false;
	return true;
}

static char *slot_path(const char *root, size_t i)
{
	char rel[32];
	snprintf(rel, sizeof(rel), "s3/%02zu", i);
	return cbl_path_join(root, rel);
}

/* What the runner reads for each inner path of the layout: binds first
 * (longer), then the sandbox's overlays, then the sources root. */
static void map_views(runner_build *b)
{
	if (b->src.primary_bind) {
		cbl_strv_push(&b->src.map_inner, b->src.src_inner);
		cbl_strv_push(&b->src.map_host, b->src.source_dir);
	}
	for (size_t i = 0; i < b->src.nsrcs; i++)
		if (b->src.srcs[i].bind) {
			cbl_strv_push(&b->src.map_inner, b->src.srcs[i].inner);
			cbl_strv_push(&b->src.map_host, b->src.srcs[i].dir);
		}
	/* the sandbox's overlays: read through their descriptors once it
	 * is up (provision.c replaces these host paths), or copies there */
	if (b->src.sb_overlay) {
		cbl_strv_push(&b->src.map_inner, b->src.src_inner);
		cbl_strv_push(&b->src.map_host, b->src.view);
	}
	for (size_t i = 0; i < b->src.nsrcs; i++)
		if (b->src.srcs[i].sb_overlay) {
			cbl_strv_push(&b->src.map_inner, b->src.srcs[i].inner);
			cbl_strv_push(&b->src.map_host, b->src.srcs[i].host);
		}
	cbl_strv_push(&b->src.map_inner, b->src.multi_inner);
	cbl_strv_push(&b->src.map_host, b->src.multi_root);
}

int runner_sources_init(runner_build *b, const runner_opts *opts, cbl_error **err)
{
	bool sandbox = b->cfg.sandbox_mode == RUNNER_SANDBOX_NAMESPACES;
	bool overlay = sandbox && sandbox_can_overlay();
	b->src.srcs = cbl_xcalloc(opts->n_secondary, sizeof(*b->src.srcs));
	b->src.nsrcs = opts->n_secondary;
	for (size_t i = 0; i < opts->n_secondary; i++)
		b->src.srcs[i].view_fd = -1;
	for (size_t i = 0; i < opts->n_secondary; i++) {
		const runner_secondary_source *in = &opts->secondary[i];
		runner_src2 *s = &b->src.srcs[i];
		if (!in->id || !id_valid(in->id))
			return cbl_error_set(err, CBL_EINVAL,
					     "invalid secondary source identifier '%s' (1-127 letters, digits "
					     "or '_')",
					     in->id ? in->id : "");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(b->src.srcs[j].id, in->id))
				return cbl_error_set(err, CBL_EINVAL, "secondary source identifier '%s' given twice",
						     in->id);
		s->id = cbl_xstrdup(in->id);
		if (!!in->dir == !!in->git_url)
			return cbl_error_set(err, CBL_EINVAL,
					     "secondary source '%s': give either a directory or a git URL", in->id);
		if (in->dir) {
			int rc = cbl_realpath(in->dir, &s->dir, err);
			if (rc)
				return cbl_error_wrap(err, "secondary source '%s'", in->id);
			struct stat st;
			if (stat(s->dir, &st) < 0 || !S_ISDIR(st.st_mode))
				return cbl_error_set(err, CBL_EINVAL, "secondary source '%s': '%s' is not a directory",
						     in->id, in->dir);
			if (in->version)
				return cbl_error_set(err, CBL_EINVAL,
						     "secondary source '%s': a version applies to a git URL, not to "
						     "the directory %s",
						     in->id, in->dir);
		} else {
			s->git_url = cbl_xstrdup(in->git_url);
		}
		s->version = in->version ? cbl_xstrdup(in->version) : NULL;
	}

	/* the primary moves to s3/00 */
	b->src.multi_root = cbl_path_join(b->ident.dir, "sources");
	if (sandbox) {
		b->src.multi_inner = b->src.src_inner; /* /codebuild/output/srcN/src */
		b->src.src_inner = NULL;
	} else {
		b->src.multi_inner = cbl_xstrdup(b->src.multi_root);
	}
	char *p00 = slot_path(b->src.multi_root, 0);
	if (b->src.git_url) {
		free(b->src.source_dir);
		b->src.source_dir = cbl_xstrdup(p00);
		free(b->src.buildspec_path);
		b->src.buildspec_path = b->src.buildspec_arg[0] == '/' ? cbl_xstrdup(b->src.buildspec_arg)
							       : cbl_path_join(b->src.source_dir, b->src.buildspec_arg);
		free(b->src.git_parent);
		b->src.git_parent = NULL;
	} else if (b->src.tracked_dir) {
		free(b->src.tracked_dir);
		b->src.tracked_dir = cbl_xstrdup(p00);
	} else if (b->src.source_mode == RUNNER_SOURCE_SNAPSHOT) {
		/* not root, the sandbox overlays it itself; no sandbox: a copy */
		b->src.sb_overlay = sandbox && !overlay;
		if (!sandbox) {
			free(b->src.src_copy);
			b->src.src_copy = cbl_xstrdup(p00);
		}
	} else if (sandbox) {
		b->src.primary_bind = true;
	}
	free(b->src.view);
	if (b->src.source_mode == RUNNER_SOURCE_MOUNT && !b->src.git_url && !b->src.tracked_dir)
		b->src.view = cbl_xstrdup(b->src.source_dir);
	else
		b->src.view = cbl_xstrdup(p00);
	free(b->src.src_inner);
	if (sandbox)
		b->src.src_inner = slot_path(b->src.multi_inner, 0);
	else
		b->src.src_inner = cbl_xstrdup(b->src.view);
	free(p00);

	for (size_t i = 0; i < b->src.nsrcs; i++) {
		runner_src2 *s = &b->src.srcs[i];
		char *slot = slot_path(b->src.multi_root, i + 1);
		if (s->dir && b->src.source_mode == RUNNER_SOURCE_MOUNT) {
			s->host = cbl_xstrdup(s->dir);
			s->bind = sandbox;
			s->inner = sandbox ? slot_path(b->src.multi_inner, i + 1) : cbl_xstrdup(s->dir);
			free(slot);
			continue;
		}
		if (s->dir) {
			s->overlay = overlay;
			s->sb_overlay = sandbox && !overlay;
			s->copy = !sandbox;
		}
		s->host = slot;
		s->inner = sandbox ? slot_path(b->src.multi_inner, i + 1) : cbl_xstrdup(slot);
	}

	if (sandbox)
		map_views(b);
	return 0;
}

void runner_snapshot_ignored(runner_build *b, const char *dir, const char *secondary, cbl_strv *hide)
{
	source_worktree wt = SOURCE_WORKTREE_INIT;
	cbl_error *e = NULL;
	bool all = b->src.include_ignored;
	char of[192] = "";
	if (secondary)
		snprintf(of, sizeof(of), " of secondary source %s", secondary);
	int rc = source_worktree_status(&wt, dir, !all, &e);
	if (rc == CBL_ENOENT) {
		cbl_error_clear(&e); /* not a repository: nothing is ignored */
		goto out;
	}
	if (rc < 0) {
		runner_warn_drop(b, &e, "the source snapshot%s keeps its git-ignored files: %s", of, e->msg);
		goto out;
	}
	if (!secondary) {
		b->src.wt_read = true;
		b->src.wt_untracked = wt.untracked;
		b->src.wt_modified = wt.modified;
	}
	if (all) {
		runner_agent(b, "[codebuild-local] Source snapshot%s: git-ignored files kept (--source-mode all); "
				"a cloud build would not have them", of);
		goto out;
	}
	if (!wt.ignored.n)
		goto out;
	/* a few names, directories with their '/' */
	cbl_buf names = CBL_BUF_INIT;
	for (size_t i = 0; i < wt.ignored.n && i < 3; i++) {
		char *p = cbl_path_join(dir, wt.ignored.v[i]);
		struct stat st;
		bool is_dir = lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
		free(p);
		cbl_buf_printf(&names, "%s%s%s", i ? ", " : "", wt.ignored.v[i], is_dir ? "/" : "");
	}
	if (wt.ignored.n > 3)
		cbl_buf_puts(&names, ", ...");
	runner_agent(b, "[codebuild-local] Source snapshot%s: %zu git-ignored path%s left out as a cloud build "
			"would not have %s (%s); --source-mode all keeps them",
		     of, wt.ignored.n, wt.ignored.n == 1 ? "" : "s", wt.ignored.n == 1 ? "it" : "them", names.ptr);
	cbl_buf_release(&names);
	*hide = wt.ignored;
	wt.ignored = (cbl_strv)CBL_STRV_INIT;
out:
	source_worktree_release(&wt);
}

int runner_private_overlay(runner_build *b, const char *lower, const char *target, const char *const *hide,
			   cbl_error **err)
{
	return runner_private_overlay2(b, NULL, lower, target, hide, NULL, err);
}

int runner_private_overlay2(runner_build *b, const char *top, const char *lower, const char *target,
			    const char *const *hide, char **upper_out, cbl_error **err)
{
	char *tmp = cbl_path_join(b->ident.dir, "view-tmp");
	char name[32];
	char *upper = NULL, *work = NULL, *opts = NULL;
	int rc = 0;
	if (!b->src.private_ns) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno,
						 "sandbox: cannot make a private mount namespace");
			goto out;
		}
		if (cbl_mkdir_p(tmp, 0700, err) < 0) {
			rc = CBL_EIO;
			goto out;
		}
		if (mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: mount tmpfs on %s", tmp);
			goto out;
		}
		b->src.private_ns = true;
	}
	snprintf(name, sizeof(name), "upper%d", b->src.n_overlays);
	upper = cbl_path_join(tmp, name);
	snprintf(name, sizeof(name), "work%d", b->src.n_overlays);
	work = cbl_path_join(tmp, name);
	b->src.n_overlays++;
	if (cbl_mkdir_p(target, 0755, err) < 0) {
		rc = CBL_EIO;
		goto out;
	}
	mkdir(upper, 0755);
	mkdir(work, 0700);
	if (source_whiteouts(lower, upper, hide, err) < 0) {
		rc = cbl_error_wrap(err, "the source snapshot of %s", lower);
		goto out;
	}
	opts = sandbox_overlay_opts2(top, lower, upper, work);
	if (mount("overlay", target, "overlay", 0, opts) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: mount overlay on the source %s", lower);
		goto out;
	}
	if (upper_out)
		*upper_out = cbl_xstrdup(upper);
out:
	free(tmp);
	free(upper);
	free(work);
	free(opts);
	return rc;
}

int runner_sources_provision(runner_build *b, cbl_strv *binds, cbl_error **err)
{
	char *s3 = cbl_path_join(b->src.multi_root, "s3");
	int rc = cbl_mkdir_p(s3, 0755, err);
	free(s3);
	if (rc)
		return rc;
	if (b->cfg.sandbox_mode == RUNNER_SANDBOX_NAMESPACES && b->src.source_mode == RUNNER_SOURCE_SNAPSHOT &&
	    !b->src.git_url && !b->src.tracked_dir && !b->src.src_copy && !b->src.sb_overlay) {
		cbl_strv hide = CBL_STRV_INIT;
		runner_snapshot_ignored(b, b->src.source_dir, NULL, &hide);
		rc = runner_private_overlay(b, b->src.source_dir, b->src.view, (const char *const *)hide.v, err);
		cbl_strv_release(&hide);
		if (rc)
			return rc;
	}
	if (b->src.primary_bind) {
		cbl_strv_push(binds, b->src.source_dir);
		cbl_strv_push(binds, b->src.src_inner);
	}
	for (size_t i = 0; i < b->src.nsrcs; i++) {
		runner_src2 *s = &b->src.srcs[i];
		if (s->copy || s->overlay) {
			cbl_strv hide = CBL_STRV_INIT;
			runner_snapshot_ignored(b, s->dir, s->id, &hide);
			const char *const *h = (const char *const *)hide.v;
			rc = s->copy ? cbl_copy_tree_except(s->dir, s->host, h, err)
				     : runner_private_overlay(b, s->dir, s->host, h, err);
			cbl_strv_release(&hide);
		} else if (s->bind) {
			cbl_strv_push(binds, s->dir);
			cbl_strv_push(binds, s->inner);
		}
		if (rc)
			return cbl_error_wrap(err, "secondary source '%s'", s->id);
	}
	return 0;
}

/* HEAD's commit and origin's URL of a local repository (NULLs when the
 * directory is not one). */
bool runner_is_git_dir(const char *dir)
{
	char *dotgit = cbl_path_join(dir, ".git");
	struct stat st;
	bool is_repo = lstat(dotgit, &st) == 0;
	free(dotgit);
	return is_repo;
}

void runner_local_git_head(const char *dir, char **sha, char **url)
{
	git_repository *repo = NULL;
	git_oid oid;
	if (!runner_is_git_dir(dir))
		return;
	git_libgit2_init();
	if (git_repository_open_ext(&repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0) {
		if (git_reference_name_to_id(&oid, repo, "HEAD") == 0) {
			char hex[GIT_OID_MAX_HEXSIZE + 1];
			git_oid_tostr(hex, sizeof(hex), &oid);
			*sha = cbl_xstrdup(hex);
		}
		git_remote *remote = NULL;
		if (git_remote_lookup(&remote, repo, "origin") == 0) {
			const char *u = git_remote_url(remote);
			if (u)
				*url = runner_redact_url(u);
			git_remote_free(remote);
		}
		git_repository_free(repo);
	}
	git_libgit2_shutdown();
}

void runner_sources_log_dirs(runner_build *b)
{
	for (size_t i = 0; i < b->src.nsrcs; i++)
		runner_agent(b, "CODEBUILD_SRC_DIR_%s=%s", b->src.srcs[i].id, b->src.srcs[i].inner);
}

runner_status runner_sources_download(runner_build *b, runner_outcome *o)
{
	for (size_t i = 0; i < b->src.nsrcs; i++) {
		runner_src2 *s = &b->src.srcs[i];
		if (!s->git_url) {
			runner_local_git_head(s->dir, &s->resolved, &s->repo_url);
			continue;
		}
		char *shown = runner_redact_url(s->git_url);
		cbl_error *e = NULL;
		runner_agent(b, "[codebuild-local] Cloning secondary source %s: %s%s%s", s->id, shown, s->version ? " at " : "",
			     s->version ? s->version : "");
		if (runner_fetch_git(b, s->git_url, s->version, s->host, s->id, &s->resolved, &e) < 0) {
			free(shown);
			char *what = cbl_xasprintf("secondary source %s", s->id);
			runner_status st = runner_fetch_failed(b, o, what, e);
			free(what);
			return st;
		}
		runner_agent(b, "[codebuild-local] Checked out commit %s for secondary source %s", s->resolved, s->id);
		s->repo_url = shown;
	}
	return RUNNER_STATUS_SUCCEEDED;
}

void runner_sources_env(runner_build *b)
{
	for (size_t i = 0; i < b->src.nsrcs; i++) {
		runner_src2 *s = &b->src.srcs[i];
		char name[160];
		snprintf(name, sizeof(name), "CODEBUILD_SRC_DIR_%s", s->id);
		cbl_env_set(&b->vars.env, name, s->inner);
		snprintf(name, sizeof(name), "CODEBUILD_SOURCE_VERSION_%s", s->id);
		cbl_env_set(&b->vars.env, name, s->version ? s->version : s->resolved ? s->resolved : "");
		snprintf(name, sizeof(name), "CODEBUILD_SOURCE_REPO_URL_%s", s->id);
		cbl_env_set(&b->vars.env, name, s->repo_url ? s->repo_url : "");
	}
}

void runner_sources_record(runner_build *b, json_t *r)
{
	json_t *srcs = json_array(), *vers = json_array();
	for (size_t i = 0; i < b->src.nsrcs; i++) {
		runner_src2 *s = &b->src.srcs[i];
		json_t *o = runner_source_json(s->git_url, s->dir, b->src.clone_depth, b->src.fetch_submodules);
		json_object_set_new(o, "sourceIdentifier", json_string(s->id));
		json_array_append_new(srcs, o);
		const char *v = s->version ? s->version : s->resolved;
		if (v) {
			json_t *sv = json_object();
			json_object_set_new(sv, "sourceIdentifier", json_string(s->id));
			json_object_set_new(sv, "sourceVersion", json_string(v));
			json_array_append_new(vers, sv);
		}
	}
	json_object_set_new(r, "secondarySources", srcs);
	json_object_set_new(r, "secondarySourceVersions", vers);
}

void runner_private_ns_cleanup(runner_build *b)
{
	if (!b->src.private_ns)
		return;
	/* the overlays first (their mount points lie under the trees the
	 * caller removes next), then their tmpfs */
	for (size_t i = 0; i < b->src.nsrcs; i++)
		if (b->src.srcs[i].overlay)
			umount2(b->src.srcs[i].host, MNT_DETACH);
	size_t dl = strlen(b->ident.dir);
	if (!strncmp(b->src.view, b->ident.dir, dl) && b->src.view[dl] == '/')
		umount2(b->src.view, MNT_DETACH);
	char *tmp = cbl_path_join(b->ident.dir, "view-tmp");
	umount2(tmp, MNT_DETACH);
	rmdir(tmp);
	free(tmp);
	b->src.private_ns = false;
}

void runner_sandbox_views_close(runner_build *b)
{
	if (b->src.view_fd >= 0)
		close(b->src.view_fd);
	b->src.view_fd = -1;
	for (size_t i = 0; i < b->src.nsrcs; i++) {
		if (b->src.srcs[i].view_fd >= 0)
			close(b->src.srcs[i].view_fd);
		b->src.srcs[i].view_fd = -1;
	}
}

void runner_sources_free(runner_build *b)
{
	for (size_t i = 0; b->src.sb_hide && i <= b->src.nsrcs; i++)
		cbl_strv_release(&b->src.sb_hide[i]);
	free(b->src.sb_hide);
	for (size_t i = 0; i < b->src.nsrcs; i++) {
		runner_src2 *s = &b->src.srcs[i];
		free(s->id);
		free(s->dir);
		free(s->git_url);
		free(s->version);
		free(s->host);
		free(s->inner);
		free(s->resolved);
		free(s->repo_url);
	}
	free(b->src.srcs);
	free(b->src.multi_root);
	free(b->src.multi_inner);
	cbl_strv_release(&b->src.map_inner);
	cbl_strv_release(&b->src.map_host);
}

int runner_detached(void (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		closefrom(3);
		setpriority(PRIO_PROCESS, 0, 19);
		/* IOPRIO_WHO_PROCESS, class IDLE */
		syscall(SYS_ioprio_set, 1, 0, 3 << 13);
		fn(arg);
		_exit(0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}

static void remove_tree(void *dir)
{
	sandbox_ids_rm_rf(dir, NULL); /* files of the user's other ids too */
}

/* A detached, low-priority process that removes dir (the runner does not
 * wait for it, nor does anything else). */
static int spawn_remover(const char *dir)
{
	return runner_detached(remove_tree, (void *)dir);
}

void runner_discard_tree(runner_build *b, const char *path)
{
	static const char suffix[] = "0123456789";
	char *trash = cbl_path_join(b->ident.home, "trash");
	char *dst = NULL;
	mkdir(trash, 0700);
	for (int i = 0; i < 10 && !dst; i++) {
		char *d = cbl_xasprintf("%s/%s-%c", trash, b->ident.uuid, suffix[i]);
		if (rename(path, d) == 0)
			dst = d;
		else
			free(d);
		if (errno == ENOENT && !dst)
			break;
	}
	if (!dst || spawn_remover(dst) < 0)
		sandbox_ids_rm_rf(dst ? dst : path, NULL);
	free(dst);
	free(trash);
}

void runner_sweep_trash(const char *home)
{
	/* trees whose remover was killed (reboot, SIGKILL of the group) are
	 * handed to a new one once they have waited a minute */
	char *trash = cbl_path_join(home, "trash");
	DIR *d = opendir(trash);
	struct dirent *de;
	time_t now = time(NULL);
	while (d && (de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    now - st.st_ctime < 60)
			continue;
		char *p = cbl_path_join(trash, de->d_name);
		spawn_remover(p);
		free(p);
	}
	if (d)
		closedir(d);
	free(trash);
}

json_t *runner_source_json(const char *git_url, const char *dir, int depth, bool submodules)
{
	json_t *src = json_object();
	if (git_url) {
		const char *type = strstr(git_url, "github.com") ? "GITHUB"
				   : strstr(git_url, "gitlab.com") ? "GITLAB"
				   : strstr(git_url, "bitbucket.org") ? "BITBUCKET"
				   : strstr(git_url, "git-codecommit.") ? "CODECOMMIT"
									 : "GITHUB_ENTERPRISE";
		char *shown = runner_redact_url(git_url);
		json_object_set_new(src, "type", json_string(type));
		json_object_set_new(src, "location", json_string(shown));
		json_object_set_new(src, "gitCloneDepth", json_integer(depth));
		json_t *sub = json_object();
		json_object_set_new(sub, "fetchSubmodules", json_boolean(submodules));
		json_object_set_new(src, "gitSubmodulesConfig", sub);
		free(shown);
	} else {
		json_object_set_new(src, "type", json_string("NO_SOURCE"));
		json_object_set_new(src, "location", json_string(dir ? dir : ""));
	}
	return src;
}
