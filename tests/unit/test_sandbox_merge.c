/* tests/unit/test_sandbox_merge.c - sandbox_layer_merge: an overlay layer
 * flattened onto the one above it (a restored build's checkpoint). */
#include "tests/unit/tap.h"
#include "sandbox/sandbox.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define OPQ "user.overlay.opaque"

static char *at(const char *base, const char *rel)
{
	return cbl_path_join(base, rel);
}

static void put(const char *base, const char *rel, const char *text, mode_t mode)
{
	char *p = at(base, rel);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(p, mode);
	free(p);
}

static void dir(const char *base, const char *rel, bool opaque)
{
	char *p = at(base, rel);
	mkdir(p, 0755);
	if (opaque)
		setxattr(p, OPQ, "y", 1, 0);
	free(p);
}

static void whiteout(const char *base, const char *rel)
{
	char *p = at(base, rel);
	mknod(p, S_IFCHR | 0000, makedev(0, 0));
	free(p);
}

static char *text(const char *base, const char *rel)
{
	char *p = at(base, rel), *out = NULL;
	size_t len = 0;
	if (cbl_read_file(p, 1 << 16, &out, &len, NULL) < 0)
		out = NULL;
	free(p);
	return out;
}

static bool is_whiteout(const char *base, const char *rel)
{
	char *p = at(base, rel);
	struct stat st;
	bool w = lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
	free(p);
	return w;
}

static bool exists(const char *base, const char *rel)
{
	char *p = at(base, rel);
	struct stat st;
	bool e = lstat(p, &st) == 0;
	free(p);
	return e;
}

static bool opaque(const char *base, const char *rel)
{
	char *p = at(base, rel);
	char v[4];
	ssize_t n = lgetxattr(p, OPQ, v, sizeof(v));
	free(p);
	return n == 1 && v[0] == 'y';
}

static ino_t ino(const char *base, const char *rel)
{
	char *p = at(base, rel);
	struct stat st;
	ino_t i = lstat(p, &st) == 0 ? st.st_ino : 0;
	free(p);
	return i;
}

static void is_text(const char *base, const char *rel, const char *want, const char *what)
{
	char *t = text(base, rel);
	is_str(t, want, "%s", what);
	free(t);
}

/* The old layer (a restored checkpoint's) and the new one (the restored
 * build's upper layer, copied). */
static void fixture(const char *old, const char *neu)
{
	put(old, "keep.txt", "old-keep\n", 0640);
	put(old, "over.txt", "old-over\n", 0644);
	put(old, "wh.txt", "old-wh\n", 0644);
	dir(old, "dir", false);
	put(old, "dir/a.txt", "old-a\n", 0644);
	dir(old, "dir/sub", false);
	put(old, "dir/sub/b.txt", "old-b\n", 0644);
	dir(old, "opq", false);
	put(old, "opq/old.txt", "old-opq\n", 0644);
	whiteout(old, "gone.txt");
	dir(old, "oldopq", true);
	put(old, "oldopq/o.txt", "old-o\n", 0644);
	char *l = at(old, "link");
	(void)!symlink("/etc/passwd", l);
	free(l);
	put(old, "fileold", "old-file\n", 0644);
	dir(old, "onlyold", false);
	dir(old, "onlyold/deep", false);
	put(old, "onlyold/deep/f", "old-deep\n", 0600);

	put(neu, "over.txt", "new-over\n", 0644);
	whiteout(neu, "wh.txt");
	dir(neu, "dir", false);
	put(neu, "dir/c.txt", "new-c\n", 0644);
	dir(neu, "dir/sub", false);
	put(neu, "dir/sub/d.txt", "new-d\n", 0644);
	dir(neu, "opq", true);
	put(neu, "opq/new.txt", "new-opq\n", 0644);
	dir(neu, "oldopq", false);
	put(neu, "oldopq/u.txt", "new-u\n", 0644);
	dir(neu, "fileold", false);
	put(neu, "fileold/x", "new-x\n", 0644);
}

static int merge(const char *old, const char *neu, unsigned flags, sandbox_copy_stats *st, cbl_error **err)
{
	int ofd = open(old, O_RDONLY | O_DIRECTORY | O_CLOEXEC), dfd = open(neu, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = sandbox_layer_merge(ofd, dfd, flags, st, err);
	close(ofd);
	close(dfd);
	return rc;
}

static void check_merged(const char *old, const char *neu, bool links)
{
	is_text(neu, "keep.txt", "old-keep\n", "an entry the new layer lacks is taken from the old one");
	ok((ino(neu, "keep.txt") == ino(old, "keep.txt")) == links, links ? "as a hard link" : "as a copy");
	char *p = at(neu, "keep.txt");
	struct stat st;
	ok(lstat(p, &st) == 0 && (st.st_mode & 07777) == 0640, "with its mode");
	free(p);
	is_text(neu, "over.txt", "new-over\n", "the new layer's file wins");
	ok(is_whiteout(neu, "wh.txt"), "a whiteout over an old file stays a whiteout");
	ok(is_whiteout(neu, "gone.txt"), "an old whiteout the new layer lacks is kept (it hides the tree's file)");
	is_text(neu, "dir/a.txt", "old-a\n", "directories in both: merged");
	is_text(neu, "dir/c.txt", "new-c\n", "the new one's entries kept");
	is_text(neu, "dir/sub/b.txt", "old-b\n", "nested: merged recursively");
	is_text(neu, "dir/sub/d.txt", "new-d\n", "nested: the new one's kept");
	ok(!opaque(neu, "dir"), "a merged directory stays transparent");
	ok(!exists(neu, "opq/old.txt"), "an opaque directory over an old directory hides the old entries");
	is_text(neu, "opq/new.txt", "new-opq\n", "and keeps its own");
	ok(opaque(neu, "opq"), "and stays opaque");
	is_text(neu, "oldopq/o.txt", "old-o\n", "an old opaque directory below a transparent one: merged");
	is_text(neu, "oldopq/u.txt", "new-u\n", "with the new entries");
	ok(opaque(neu, "oldopq"), "and opaque (the old one hid the tree's)");
	char target[64] = "";
	char *lp = at(neu, "link");
	ssize_t n = readlink(lp, target, sizeof(target) - 1);
	free(lp);
	ok(n == 11 && !strncmp(target, "/etc/passwd", 11), "a symlink is taken as a link, never followed");
	ok(opaque(neu, "fileold"), "a new directory over an old file: opaque");
	is_text(neu, "fileold/x", "new-x\n", "with its own entries");
	is_text(neu, "onlyold/deep/f", "old-deep\n", "an old directory the new layer lacks: taken whole");
	/* the old layer never changes */
	is_text(old, "over.txt", "old-over\n", "the old layer is unchanged (a file the new one replaced)");
	is_text(old, "opq/old.txt", "old-opq\n", "the old layer is unchanged (an entry the new one hid)");
	ok(!exists(old, "dir/c.txt") && !exists(old, "oldopq/u.txt"), "nothing added to the old layer");
	ok(!is_whiteout(old, "wh.txt"), "the old layer's file is still a file");
}

static void test_merge(unsigned flags, bool links)
{
	char t[] = "/var/tmp/cbl-merge-XXXXXX";
	char *base = mkdtemp(t);
	if (!base) {
		ok(0, "mkdtemp");
		return;
	}
	char *old = at(base, "old"), *neu = at(base, "new");
	mkdir(old, 0755);
	mkdir(neu, 0755);
	fixture(old, neu);
	char v[4];
	if (lgetxattr(old, "user.x", v, sizeof(v)) < 0 && errno == ENOTSUP) {
		skip("no user.* extended attributes on this filesystem");
	} else {
		sandbox_copy_stats st = {0};
		cbl_error *e = NULL;
		is_int(merge(old, neu, flags | SANDBOX_MERGE_USER_XATTR, &st, &e), 0, "merged");
		if (e)
			printf("#   %s\n", e->msg);
		cbl_error_free(e);
		check_merged(old, neu, links);
		is_int(st.files, 6, "counted: what was taken from the old layer (files and links)");
		/* again: idempotent (everything is already there) */
		is_int(merge(old, neu, flags | SANDBOX_MERGE_USER_XATTR, NULL, NULL), 0, "merged again");
		check_merged(old, neu, links);
	}
	cbl_rm_rf(base, NULL);
	free(old);
	free(neu);
}

static void test_depth(void)
{
	char t[] = "/var/tmp/cbl-merge-XXXXXX";
	char *base = mkdtemp(t);
	char *old = at(base, "old"), *neu = at(base, "new");
	mkdir(old, 0755);
	mkdir(neu, 0755);
	cbl_buf rel = CBL_BUF_INIT;
	cbl_buf_puts(&rel, "d");
	for (int i = 0; i < 300; i++) {
		dir(old, rel.ptr, false);
		cbl_buf_puts(&rel, "/d");
	}
	cbl_error *e = NULL;
	int rc = merge(old, neu, 0, NULL, &e);
	ok(rc == CBL_EIO && e && strstr(e->msg, "nested too deep"), "too deep: an error, not a crash");
	cbl_error_free(e);
	cbl_buf_release(&rel);
	cbl_rm_rf(base, NULL);
	free(old);
	free(neu);
}

/* fuse-overlayfs's layers: its opaque directories are marked with a
 * ".wh..wh..opq" file, a deletion may be a ".wh.NAME" file. */
static void test_fuse_forms(void)
{
	char t[] = "/var/tmp/cbl-merge-XXXXXX";
	char *base = mkdtemp(t);
	char *old = at(base, "old"), *neu = at(base, "new");
	mkdir(old, 0755);
	mkdir(neu, 0755);
	dir(old, "opq", false);
	put(old, "opq/old.txt", "old\n", 0644);
	put(old, "gone.txt", "old-gone\n", 0644);
	put(old, "was-file", "old-file\n", 0644);
	dir(old, "oldopq", false);
	put(old, "oldopq/.wh..wh..opq", "", 0600);
	put(old, ".wh.again.txt", "", 0600);
	dir(neu, "opq", false);
	put(neu, "opq/.wh..wh..opq", "", 0600);
	put(neu, "opq/new.txt", "new\n", 0644);
	put(neu, ".wh.gone.txt", "", 0600);
	dir(neu, "was-file", false);
	dir(neu, "oldopq", false);
	put(neu, "again.txt", "made again\n", 0644);
	cbl_error *e = NULL;
	is_int(merge(old, neu, SANDBOX_MERGE_FUSE, NULL, &e), 0, "fuse: merged");
	cbl_error_free(e);
	ok(!exists(neu, "opq/old.txt"), "fuse: a directory with .wh..wh..opq is opaque: the old entries stay hidden");
	ok(!exists(neu, "gone.txt"), "fuse: a .wh.NAME file of the new layer hides the old NAME");
	ok(exists(neu, "was-file/.wh..wh..opq"), "fuse: a new directory over an old file is marked opaque its way");
	ok(!opaque(neu, "was-file"), "fuse: no overlayfs xattr on it");
	ok(exists(neu, "oldopq/.wh..wh..opq"), "fuse: an old opaque directory keeps hiding under a transparent new one");
	ok(!exists(neu, ".wh.again.txt"), "fuse: an old deletion of what the new layer made again is dropped");
	is_text(neu, "again.txt", "made again\n", "fuse: the new layer's file is kept");
	cbl_rm_rf(base, NULL);
	free(old);
	free(neu);
}

int main(void)
{
	test_fuse_forms();
	test_merge(0, true);
	test_merge(SANDBOX_MERGE_NO_LINKS, false);
	test_depth();
	return tap_done();
}
