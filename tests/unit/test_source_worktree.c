/* tests/unit/test_source_worktree.c - a working tree's status as a snapshot
 * sees it (source_worktree_status), the whiteouts that hide ignored paths
 * from an overlay (source_whiteouts), and the copy that leaves them out
 * (cbl_copy_tree_except). */
#include "source/source.h"
#include "tap.h"
#include "git_helpers.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char tmp_root[64];

static void cleanup(void)
{
	if (tmp_root[0])
		sh("rm -rf '%s'", tmp_root);
}

static bool has(const cbl_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return true;
	return false;
}

static bool in_tree(const char *dir, const char *rel)
{
	char *p = cbl_path_join(dir, rel);
	struct stat st;
	bool e = lstat(p, &st) == 0;
	free(p);
	return e;
}

/* a repository: tracked files (one modified), untracked ones (one in a new
 * directory), and ignored ones: a node_modules of many files, a file by
 * pattern, and a node_modules inside the new directory */
static char *make_repo(void)
{
	char *r = cbl_xasprintf("%s/repo", tmp_root);
	int rc = sh("set -e; mkdir -p '%s' && cd '%s' && git init -q . && "
		    "printf 'node_modules/\\n*.log\\n' > .gitignore && mkdir -p src && echo a > src/a.js && "
		    "echo t > tracked.txt && git add -A && git commit -qm init && "
		    "echo changed > tracked.txt && echo u > untracked.txt && "
		    "mkdir -p newpkg/node_modules/dep node_modules/x/y && echo n > newpkg/index.js && "
		    "echo d > newpkg/node_modules/dep/i.js && echo l > src/debug.log && "
		    "for i in $(seq 200); do echo $i > node_modules/x/y/f$i.js; done && "
		    "touch -d 2001-02-03 src && chmod 0750 src",
		    r, r);
	is_int(rc, 0, "fixture repository");
	return r;
}

static void test_status(const char *repo)
{
	source_worktree wt = SOURCE_WORKTREE_INIT;
	cbl_error *e = NULL;
	is_int(source_worktree_status(&wt, repo, true, &e), 0, "status of a working tree");
	is_int(wt.ignored.n, 3, "three ignored paths, each directory once");
	ok(has(&wt.ignored, "node_modules"), "node_modules/ is one entry (no trailing slash)");
	ok(has(&wt.ignored, "newpkg/node_modules"), "an ignored directory inside an untracked one");
	ok(has(&wt.ignored, "src/debug.log"), "an ignored file by pattern");
	bool sorted = true;
	for (size_t i = 1; i < wt.ignored.n; i++)
		sorted = sorted && strcmp(wt.ignored.v[i - 1], wt.ignored.v[i]) < 0;
	ok(sorted, "sorted");
	is_int(wt.untracked, 2, "untracked files, in new directories too");
	is_int(wt.modified, 1, "modified files");
	source_worktree_release(&wt);

	is_int(source_worktree_status(&wt, repo, false, &e), 0, "status without the ignored paths");
	is_int(wt.ignored.n, 0, "none listed");
	is_int(wt.untracked, 2, "the same untracked count");
	source_worktree_release(&wt);

	char *sub = cbl_path_join(repo, "src");
	is_int(source_worktree_status(&wt, sub, true, &e), CBL_ENOENT, "not the top of a working tree: ENOENT");
	cbl_error_clear(&e);
	source_worktree_release(&wt);
	free(sub);
}

static void test_copy_except(const char *repo)
{
	cbl_error *e = NULL;
	const char *skip[] = {"newpkg/node_modules", "node_modules", "src/debug.log", NULL};
	char *dst = cbl_xasprintf("%s/copy", tmp_root);
	is_int(cbl_copy_tree_except(repo, dst, skip, &e), 0, "copy leaving the ignored paths out");
	ok(!in_tree(dst, "node_modules") && !in_tree(dst, "newpkg/node_modules") && !in_tree(dst, "src/debug.log"),
	   "the ignored paths are not copied");
	ok(in_tree(dst, "src/a.js") && in_tree(dst, "newpkg/index.js") && in_tree(dst, "untracked.txt") &&
	   in_tree(dst, ".git/HEAD"), "everything else is");
	free(dst);
}

/* an overlay of the repository with the ignored paths whited out: root
 * only (mounting), in a private mount namespace of a child */
static void test_whiteouts(const char *repo)
{
	if (geteuid() != 0) {
		skip("whiteouts in a mounted overlay: needs root to mount");
		return;
	}
	char *upper = cbl_xasprintf("%s/upper", tmp_root), *work = cbl_xasprintf("%s/work", tmp_root);
	char *merged = cbl_xasprintf("%s/merged", tmp_root);
	mkdir(upper, 0755);
	mkdir(work, 0700);
	mkdir(merged, 0755);
	cbl_error *e = NULL;
	const char *hide[] = {"newpkg/node_modules", "node_modules", "src/debug.log", "../escape", "/abs", NULL};
	is_int(source_whiteouts(repo, upper, hide, &e), 0, "whiteouts made");
	char *wo = cbl_path_join(upper, "node_modules");
	struct stat st;
	ok(lstat(wo, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0),
	   "a directory is hidden by one whiteout (a 0/0 character device)");
	free(wo);
	char *src = cbl_path_join(upper, "src"), *lsrc = cbl_path_join(repo, "src");
	struct stat ls;
	ok(stat(src, &st) == 0 && stat(lsrc, &ls) == 0 && (st.st_mode & 07777) == 0750 &&
	   st.st_mtime == ls.st_mtime, "the upper layer's parent directory has lower's mode and times");
	free(src);
	free(lsrc);
	ok(!in_tree(tmp_root, "escape") && !in_tree(upper, "abs"), "'..' and absolute paths are refused");

	pid_t pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(10);
		char *o = cbl_xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", repo, upper, work);
		if (mount("overlay", merged, "overlay", 0, o) < 0)
			_exit(11);
		int bad = 0;
		bad |= in_tree(merged, "node_modules") << 0;
		bad |= in_tree(merged, "newpkg/node_modules") << 1;
		bad |= in_tree(merged, "src/debug.log") << 2;
		bad |= !in_tree(merged, "src/a.js") << 3;
		bad |= !in_tree(merged, "newpkg/index.js") << 4;
		bad |= !in_tree(merged, "untracked.txt") << 5;
		_exit(bad ? 20 + bad : 0);
	}
	int ws = 0;
	waitpid(pid, &ws, 0);
	is_int(WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, 0,
	       "the overlay shows everything but the ignored paths (exit 10/11: mount failed)");
	ok(in_tree(repo, "node_modules/x/y/f1.js"), "the lower layer is untouched");
	free(upper);
	free(work);
	free(merged);
}

int main(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/cbl-worktree-XXXXXX");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	atexit(cleanup);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("HOME", tmp_root, 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
	char *repo = make_repo();
	test_status(repo);
	test_copy_except(repo);
	test_whiteouts(repo);
	free(repo);
	return tap_done();
}
