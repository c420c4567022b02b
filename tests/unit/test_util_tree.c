/* tests/unit/test_util_tree.c - cbl_tree_copy_dir: an overlay layer's tree
 * copied without following anything (util/tree.c). */
#include "tests/unit/tap.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

static char *at(const char *base, const char *rel)
{
	return cbl_path_join(base, rel);
}

static void put(const char *base, const char *rel, const char *text)
{
	char *p = at(base, rel);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	free(p);
}

static char *text(const char *base, const char *rel)
{
	char *p = at(base, rel), *out = NULL;
	size_t len = 0;
	if (cbl_read_file(p, 1 << 20, &out, &len, NULL) < 0)
		out = NULL;
	free(p);
	return out;
}

static bool lstat_at(const char *base, const char *rel, struct stat *st)
{
	char *p = at(base, rel);
	bool got = lstat(p, st) == 0;
	free(p);
	return got;
}

static int open_dir(const char *path)
{
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* src's content copied into a fresh dst (flags), the copier left in t. */
static int copy(const char *src, const char *dst, unsigned flags, cbl_tree_copy *t)
{
	memset(t, 0, sizeof(*t));
	t->flags = flags;
	mkdir(dst, 0755);
	int s = open_dir(src), d = open_dir(dst);
	int rc = s >= 0 && d >= 0 ? cbl_tree_copy_dir(t, s, d) : -2;
	if (s >= 0)
		close(s);
	if (d >= 0)
		close(d);
	return rc;
}

static void test_layer(const char *tmp)
{
	char *src = at(tmp, "src"), *dst = at(tmp, "dst");
	mkdir(src, 0755);
	put(src, "file", "hello");
	char *p = at(src, "file");
	bool root = geteuid() == 0;
	if (root)
		(void)!chown(p, 1234, 5678);
	chmod(p, 04751);
	struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1234567890, .tv_nsec = 5}};
	utimensat(AT_FDCWD, p, ts, 0);
	free(p);
	p = at(src, "link");
	(void)!symlink("/etc/hostname", p); /* followed, it would copy the host's file */
	free(p);
	p = at(src, "gone");
	bool have_whiteout = mknod(p, S_IFCHR | 0000, makedev(0, 0)) == 0;
	free(p);
	p = at(src, "fifo");
	mkfifo(p, 0644);
	free(p);
	p = at(src, "sock");
	int so = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	bool have_sock = so >= 0 && bind(so, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	free(p);
	p = at(src, "opq");
	mkdir(p, 0710);
	bool user_x = setxattr(p, "user.overlay.opaque", "y", 1, 0) == 0;
	bool trusted_x = root && setxattr(p, "trusted.overlay.opaque", "y", 1, 0) == 0;
	free(p);
	put(src, "opq/inner", "0123456789");
	p = at(src, "opq");
	utimensat(AT_FDCWD, p, ts, 0); /* after its content: kept once that is copied */
	free(p);

	alarm(30); /* a FIFO opened blocking would hang here */
	cbl_tree_copy t;
	int rc = copy(src, dst, 0, &t);
	alarm(0);
	is_int(rc, 0, "a layer is copied");
	is_int(t.r.files, 3, "files counted: two files and a link");
	is_int(t.r.bytes, 15, "bytes counted");
	char *s = text(dst, "file");
	is_str(s, "hello", "a file's content");
	free(s);
	s = text(dst, "opq/inner");
	is_str(s, "0123456789", "a file in a directory");
	free(s);
	struct stat st;
	ok(lstat_at(dst, "file", &st) && (st.st_mode & 07777) == (root ? 04751 : 0751) &&
		   st.st_mtim.tv_sec == 1234567890 && st.st_mtim.tv_nsec == 5,
	   "a file's mode (set-id bit after the owner) and times kept");
	if (root)
		ok(st.st_uid == 1234 && st.st_gid == 5678, "a file's owner kept");
	else
		skip("not root: owners cannot be given away");
	ok(lstat_at(dst, "opq", &st) && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0710 &&
		   st.st_mtim.tv_sec == 1234567890,
	   "a directory's mode and times kept");
	char link[256] = "";
	p = at(dst, "link");
	ssize_t n = readlink(p, link, sizeof(link) - 1);
	free(p);
	ok(n > 0 && lstat_at(dst, "link", &st) && S_ISLNK(st.st_mode) && !strncmp(link, "/etc/hostname", (size_t)n),
	   "a symlink copied as a link, not followed");
	if (have_whiteout)
		ok(lstat_at(dst, "gone", &st) && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0),
		   "a whiteout kept");
	else
		skip("cannot make a whiteout here");
	ok(!lstat_at(dst, "fifo", &st), "a FIFO left out, without blocking");
	if (have_sock)
		ok(!lstat_at(dst, "sock", &st), "a socket left out");
	else
		skip("cannot bind a socket here");
	char v[8] = "";
	p = at(dst, "opq");
	if (user_x)
		ok(getxattr(p, "user.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y', "user.overlay.opaque kept");
	else
		skip("no user xattrs here");
	if (trusted_x)
		ok(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y',
		   "trusted.overlay.opaque kept");
	else
		skip("not root: no trusted xattrs");
	free(p);
	ok(!lstat_at(dst, "opq/gone", &st), "nothing made up");

	/* read and write instead of copy_file_range: the same copy */
	char *dst2 = at(tmp, "dst2");
	rc = copy(src, dst2, CBL_TREE_NO_COPY_RANGE, &t);
	s = text(dst2, "opq/inner");
	ok(rc == 0 && t.r.files == 3 && t.r.bytes == 15 && s && !strcmp(s, "0123456789"),
	   "read and write: the same copy");
	free(s);
	char *dst3 = at(tmp, "dst3");
	mkdir(dst3, 0755);
	memset(&t, 0, sizeof(t));
	t.no_cfr = true; /* as after copy_file_range refused once (another filesystem) */
	int sfd = open_dir(src), dfd = open_dir(dst3);
	rc = cbl_tree_copy_dir(&t, sfd, dfd);
	close(sfd);
	close(dfd);
	s = text(dst3, "file");
	ok(rc == 0 && t.r.bytes == 15 && s && !strcmp(s, "hello"), "copy_file_range refused: read and write");
	free(s);
	if (so >= 0)
		close(so);
	free(src);
	free(dst);
	free(dst2);
	free(dst3);
}

/* An entry listed, then removed or replaced before it is opened. */
static void test_gone(const char *tmp)
{
	char *src = at(tmp, "g-src"), *dst = at(tmp, "g-dst");
	mkdir(src, 0755);
	mkdir(dst, 0755);
	put(src, "was-a-file", "x");
	struct stat reg;
	char *p = at(src, "was-a-file");
	stat(p, &reg);
	unlink(p);
	mkfifo(p, 0644); /* a FIFO swapped in */
	free(p);
	int s = open_dir(src), d = open_dir(dst);
	cbl_tree_copy t;
	memset(&t, 0, sizeof(t));
	alarm(30);
	int rc = cbl_tree_copy_entry(&t, s, d, "was-a-file", &reg, 0);
	alarm(0);
	struct stat st;
	ok(rc == 0 && !lstat_at(dst, "was-a-file", &st), "a file replaced by a FIFO: left out, without blocking");
	rc = cbl_tree_copy_entry(&t, s, d, "never-there", &reg, 0);
	ok(rc == -1 && t.r.err == ENOENT && strstr(t.r.msg, "cannot open 'never-there'"),
	   "a file gone meanwhile: an error by default");
	cbl_error *e = NULL;
	is_int(cbl_tree_error(&t.r, CBL_EIO, "checkpoint", &e), CBL_EIO, "the report as an error");
	ok(e && !strncmp(e->msg, "checkpoint: cannot open 'never-there'", 37), "its message: %s", e ? e->msg : "");
	cbl_error_free(e);
	memset(&t, 0, sizeof(t));
	t.flags = CBL_TREE_SKIP_UNREADABLE;
	rc = cbl_tree_copy_entry(&t, s, d, "never-there", &reg, 0);
	struct stat dirst = reg;
	dirst.st_mode = S_IFDIR | 0755;
	int rc2 = cbl_tree_copy_entry(&t, s, d, "never-there", &dirst, 0);
	ok(rc == 0 && rc2 == 0 && !lstat_at(dst, "never-there", &st), "CBL_TREE_SKIP_UNREADABLE: left out");
	close(s);
	close(d);
	free(src);
	free(dst);
}

static void test_depth(const char *tmp)
{
	char *src = at(tmp, "deep"), *dst = at(tmp, "deep-dst");
	mkdir(src, 0755);
	int fd = open_dir(src);
	for (int i = 0; fd >= 0 && i < CBL_TREE_MAX_DEPTH + 2; i++) {
		mkdirat(fd, "d", 0755);
		int next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = next;
	}
	if (fd >= 0)
		close(fd);
	cbl_tree_copy t;
	int rc = copy(src, dst, 0, &t);
	ok(rc == -1 && t.r.err == ELOOP && strstr(t.r.msg, "nested too deep"), "nested too deep: an error (%s)",
	   t.r.msg);
	free(src);
	free(dst);
}

/* The directories of another filesystem (t.dev) and a user.overlay.opaque
 * that cannot be set (CBL_TREE_NEED_USER_OPAQUE): ramfs has no user xattrs. */
static void test_mounts(const char *tmp)
{
	if (geteuid() != 0) {
		skip("not root: cannot mount");
		return;
	}
	char *src = at(tmp, "m-src"), *ram = at(src, "ram"), *tfs = at(src, "tfs");
	mkdir(src, 0755);
	mkdir(ram, 0755);
	mkdir(tfs, 0755);
	if (mount("none", ram, "ramfs", 0, NULL) < 0 || mount("none", tfs, "tmpfs", 0, NULL) < 0) {
		skip("cannot mount here: %s", strerror(errno));
		umount2(ram, MNT_DETACH);
		free(src), free(ram), free(tfs);
		return;
	}
	put(ram, "f", "a mount's");
	put(tfs, "f", "tmpfs");
	put(src, "f", "the tree's");
	char *o = at(src, "o");
	mkdir(o, 0755);
	bool user_x = setxattr(o, "user.overlay.opaque", "y", 1, 0) == 0;
	struct stat sst;
	stat(src, &sst);
	char *dst = at(tmp, "m-dst");
	mkdir(dst, 0755);
	cbl_tree_copy t;
	memset(&t, 0, sizeof(t));
	t.dev = sst.st_dev;
	int s = open_dir(src), d = open_dir(dst);
	int rc = cbl_tree_copy_dir(&t, s, d);
	close(d);
	struct stat st;
	ok(rc == 0 && lstat_at(dst, "f", &st) && lstat_at(dst, "tfs/f", &st) && !lstat_at(dst, "ram", &st),
	   "dev: another filesystem's directory left out, a tmpfs kept");
	char *dst2 = at(tmp, "m-dst2");
	rc = copy(src, dst2, 0, &t);
	ok(rc == 0 && lstat_at(dst2, "ram/f", &st), "no dev: every directory copied");
	umount2(ram, MNT_DETACH);
	umount2(tfs, MNT_DETACH);

	/* onto a filesystem without user xattrs */
	char *rdst = at(tmp, "m-ramdst");
	mkdir(rdst, 0755);
	if (!user_x || mount("none", rdst, "ramfs", 0, NULL) < 0) {
		skip("no user xattrs or cannot mount");
	} else {
		struct stat ost;
		stat(o, &ost);
		memset(&t, 0, sizeof(t));
		d = open_dir(rdst);
		int rc1 = cbl_tree_copy_entry(&t, s, d, "o", &ost, 0);
		ok(rc1 == 0, "a user.overlay.opaque that cannot be set: ignored by default");
		memset(&t, 0, sizeof(t));
		t.flags = CBL_TREE_NEED_USER_OPAQUE;
		char *o2 = at(rdst, "o");
		rmdir(o2);
		free(o2);
		int rc2 = cbl_tree_copy_entry(&t, s, d, "o", &ost, 0);
		ok(rc2 == -1 && strstr(t.r.msg, "cannot mark opaque 'o'"),
		   "CBL_TREE_NEED_USER_OPAQUE: an error (%s)", t.r.msg);
		close(d);
		umount2(rdst, MNT_DETACH);
	}
	close(s);
	free(src), free(ram), free(tfs), free(o), free(dst), free(dst2), free(rdst);
}

int main(void)
{
	char tmpl[] = "/tmp/cbl-tree-XXXXXX";
	char *tmp = mkdtemp(tmpl);
	if (!tmp)
		return 1;
	test_layer(tmp);
	test_gone(tmp);
	test_depth(tmp);
	test_mounts(tmp);
	cbl_rm_rf(tmp, NULL);
	return tap_done();
}
