/* source/worktree.c - what a push of a local working tree would carry (git's
 * status), and the whiteouts that hide the rest from an overlay of it.
 *
 * Ignored paths come from libgit2's status with GIT_STATUS_OPT_INCLUDE_IGNORED
 * but without GIT_STATUS_OPT_RECURSE_IGNORED_DIRS: an ignored directory is one
 * entry and is never read (a node_modules of 100,000 files costs what one
 * file does).  Untracked directories are walked (RECURSE_UNTRACKED_DIRS), so
 * an ignored directory inside a new, untracked one is found too.
 */
#include "source/source.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util/banned.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int source_worktree_status(source_worktree *out, const char *dir, bool with_ignored, cbl_error **err)
{
	/* libgit2's initialisation loads the TLS trust store (milliseconds):
	 * only paid for a repository */
	char *dotgit = cbl_path_join(dir, ".git");
	struct stat st;
	bool is_repo = lstat(dotgit, &st) == 0;
	free(dotgit);
	if (!is_repo)
		return cbl_error_set(err, CBL_ENOENT, "%s is not the top of a git working tree", dir);
	git_libgit2_init();
	git_repository *repo = NULL;
	git_status_list *sl = NULL;
	int rc = 0;
	if (git_repository_open_ext(&repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_repository_is_bare(repo)) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_ENOENT, "%s: not a git working tree (%s)", dir,
				   ge && ge->message ? ge->message : "bare");
		goto out;
	}
	git_status_options so = GIT_STATUS_OPTIONS_INIT;
	so.show = GIT_STATUS_SHOW_WORKDIR_ONLY;
	so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
		   GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (with_ignored)
		so.flags |= GIT_STATUS_OPT_INCLUDE_IGNORED;
	if (git_status_list_new(&sl, repo, &so) < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EIO, "%s: git status: %s", dir,
				   ge && ge->message ? ge->message : "unknown error");
		goto out;
	}
	for (size_t i = 0; i < git_status_list_entrycount(sl); i++) {
		const git_status_entry *se = git_status_byindex(sl, i);
		const git_diff_delta *d = se->index_to_workdir;
		const char *path = d ? (d->new_file.path ? d->new_file.path : d->old_file.path) : NULL;
		if (se->status & GIT_STATUS_IGNORED) {
			if (!path || !*path)
				continue;
			size_t l = strlen(path);
			while (l > 1 && path[l - 1] == '/')
				l--; /* a directory is reported as "dir/" */
			cbl_strv_push_take(&out->ignored, cbl_xstrndup(path, l));
		} else if (se->status & GIT_STATUS_WT_NEW) {
			out->untracked++;
		} else if (se->status & (GIT_STATUS_WT_MODIFIED | GIT_STATUS_WT_DELETED | GIT_STATUS_WT_TYPECHANGE |
					 GIT_STATUS_WT_RENAMED)) {
			out->modified++;
		}
	}
	if (out->ignored.n)
		qsort(out->ignored.v, out->ignored.n, sizeof(*out->ignored.v), cmp_str);
out:
	git_status_list_free(sl);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}

void source_worktree_release(source_worktree *w)
{
	cbl_strv_release(&w->ignored);
	*w = (source_worktree)SOURCE_WORKTREE_INIT;
}

/* upper's directory rel (relative), as lower's: mode, owner, times.  The
 * owner may not be ours to give (an unprivileged user namespace): kept. */
static void copy_dir_meta(int lfd, int ufd, const char *rel)
{
	struct stat st;
	if (fstatat(lfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return;
	/* each best effort: a view with a directory's default looks is still
	 * the view */
	int r = fchownat(ufd, rel, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
	r |= fchmodat(ufd, rel, st.st_mode & 07777, 0);
	struct timespec ts[2] = {st.st_atim, st.st_mtim};
	r |= utimensat(ufd, rel, ts, AT_SYMLINK_NOFOLLOW);
	(void)r;
}

/* relative, '/'-separated, no empty, "." or ".." component */
static bool rel_valid(const char *rel)
{
	if (!*rel || *rel == '/')
		return false;
	for (const char *c = rel; *c;) {
		size_t l = strcspn(c, "/");
		if (!l || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += l;
		if (*c)
			c++;
		if (!*c && c[-1] == '/')
			return false;
	}
	return true;
}

int source_whiteouts(const char *lower, const char *upper, const char *const *paths, cbl_error **err)
{
	int lfd = -1, ufd = -1, rc = 0;
	cbl_strv made = CBL_STRV_INIT; /* the directories created in upper */
	if (!paths || !*paths)
		return 0;
	lfd = open(lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ufd = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (lfd < 0 || ufd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open %s", lfd < 0 ? lower : upper);
		goto out;
	}
	for (const char *const *p = paths; *p && !rc; p++) {
		char *rel = cbl_xstrdup(*p);
		if (!rel_valid(rel)) {
			/* libgit2 gives none of these; never outside upper */
			free(rel);
			continue;
		}
		/* the parents, as directories of upper that merge with lower's
		 * (a parent that is not a directory of lower: nothing to hide) */
		bool skip = false;
		for (char *s = strchr(rel, '/'); s && !rc && !skip; s = strchr(s + 1, '/')) {
			struct stat st;
			*s = '\0';
			if (fstatat(lfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
				skip = true;
			else if (mkdirat(ufd, rel, 0755) == 0)
				cbl_strv_push(&made, rel);
			else if (errno != EEXIST)
				rc = cbl_error_set_errno(err, CBL_EIO, errno, "%s/%s", upper, rel);
			*s = '/';
		}
		/* a whiteout: a character device 0/0 (needs no privilege since
		 * Linux 5.8, in a user namespace too) */
		if (!rc && !skip && mknodat(ufd, rel, S_IFCHR | 0000, makedev(0, 0)) < 0 && errno != EEXIST)
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot hide %s (whiteout in %s)", rel, upper);
		free(rel);
	}
	/* deepest first: a directory's times are set after its children's */
	for (size_t i = made.n; i-- > 0;)
		copy_dir_meta(lfd, ufd, made.v[i]);
out:
	cbl_strv_release(&made);
	if (lfd >= 0)
		close(lfd);
	if (ufd >= 0)
		close(ufd);
	return rc;
}
