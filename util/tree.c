/* util/tree.c - an overlay layer's tree copied without following anything
 * (util/tree.h).
 *
 * The tree is what a build left, maybe still changing (background jobs):
 * nothing is trusted of it, every name is reached beneath its parent's
 * descriptor and checked once open. */
#include "util/tree.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/banned.h"

static const char *const opaque_attrs[] = {"trusted.overlay.opaque", "user.overlay.opaque"};

int cbl_tree_fail(cbl_tree_copy *t, const char *what, const char *name)
{
	t->r.err = errno;
	snprintf(t->r.msg, sizeof(t->r.msg), "%s '%.200s'", what, name);
	return -1;
}

int cbl_tree_error(const cbl_tree_report *r, int code, const char *who, cbl_error **err)
{
	char msg[sizeof(r->msg)];
	memcpy(msg, r->msg, sizeof(msg));
	msg[sizeof(msg) - 1] = '\0';
	return cbl_error_set_errno(err, code, r->err, "%s: %s", who, msg);
}

bool cbl_tree_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

bool cbl_tree_is_opaque(int fd)
{
	char v[8];
	for (size_t i = 0; i < 2; i++) {
		ssize_t n = fgetxattr(fd, opaque_attrs[i], v, sizeof(v));
		if (n > 0 && v[0] == 'y')
			return true;
	}
	return false;
}

int cbl_tree_mark_opaque(int fd, bool user)
{
	return fsetxattr(fd, opaque_attrs[user ? 1 : 0], "y", 1, 0);
}

int cbl_tree_copy_opaque(cbl_tree_copy *t, int sfd, int dfd, const char *name)
{
	for (size_t i = 0; i < 2; i++) {
		char v[8];
		ssize_t n = fgetxattr(sfd, opaque_attrs[i], v, sizeof(v));
		/* trusted.* needs CAP_SYS_ADMIN of the first user namespace:
		 * in a sandbox's, only the user.* mark can be kept */
		if (n > 0 && fsetxattr(dfd, opaque_attrs[i], v, (size_t)n, 0) < 0 && i == 1 &&
		    (t->flags & CBL_TREE_NEED_USER_OPAQUE))
			return cbl_tree_fail(t, "cannot mark opaque", name);
	}
	return 0;
}

void cbl_tree_keep_meta(int dfd, const char *name, const struct stat *st, bool link)
{
	/* the owner first: a chown clears the set-id bits */
	(void)!fchownat(dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
	if (!link)
		(void)!fchmodat(dfd, name, st->st_mode & 07777, 0);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	(void)!utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

/* in's data into out: a reflink, else copy_file_range, else (another
 * filesystem, a kernel without it) read and write. */
static int copy_data(cbl_tree_copy *t, int in, int out, const struct stat *st, const char *name)
{
	bool fast = !(t->flags & CBL_TREE_NO_COPY_RANGE);
	if (fast && st->st_size > 0 && ioctl(out, FICLONE, in) == 0) {
		t->r.bytes += (uint64_t)st->st_size;
		return 0;
	}
	while (fast && !t->no_cfr) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0) {
			t->r.bytes += (uint64_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return cbl_tree_fail(t, "cannot copy", name);
		t->no_cfr = true; /* refused before any byte: the offsets are still 0 */
	}
	char buf[65536];
	for (;;) {
		ssize_t k = read(in, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return cbl_tree_fail(t, "cannot read", name);
		if (k == 0)
			return 0;
		if (cbl_write_all(out, buf, (size_t)k) < 0)
			return cbl_tree_fail(t, "cannot write", name);
		t->r.bytes += (uint64_t)k;
	}
}

static int copy_file(cbl_tree_copy *t, int sfd, int dfd, const char *name)
{
	int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (in < 0)
		return (t->flags & CBL_TREE_SKIP_UNREADABLE) ? 0 : cbl_tree_fail(t, "cannot open", name);
	struct stat st;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(in);
		return 0; /* replaced meanwhile: not a file to keep */
	}
	int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc = out < 0 ? cbl_tree_fail(t, "cannot create", name) : copy_data(t, in, out, &st, name);
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = cbl_tree_fail(t, "cannot write", name);
	close(in);
	if (rc == 0) {
		cbl_tree_keep_meta(dfd, name, &st, false);
		t->r.files++;
	} else if (out >= 0) {
		unlinkat(dfd, name, 0);
	}
	return rc;
}

static int copy_dir_entry(cbl_tree_copy *t, int sfd, int dfd, const char *name, const struct stat *st, int depth)
{
	int s2 = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s2 < 0)
		return (t->flags & CBL_TREE_SKIP_UNREADABLE) ? 0 : cbl_tree_fail(t, "cannot open", name);
	struct statfs sfs;
	if (t->dev && st->st_dev != t->dev && (fstatfs(s2, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC)) {
		/* a mount or a bind of a host directory: not the tree's (a
		 * tmpfs, like a view user's home, is the build's own state) */
		close(s2);
		return 0;
	}
	int d2 = -1, rc = 0;
	if (mkdirat(dfd, name, 0700) < 0 ||
	    (d2 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		rc = cbl_tree_fail(t, "cannot create", name);
	else if ((rc = cbl_tree_copy_opaque(t, s2, d2, name)) == 0)
		rc = cbl_tree_walk(t, s2, d2, depth + 1, cbl_tree_copy_entry);
	/* its state once its content is copied (a child's creation changes
	 * the times) */
	struct stat now;
	if (rc == 0 && fstat(s2, &now) == 0)
		cbl_tree_keep_meta(dfd, name, &now, false);
	close(s2);
	if (d2 >= 0)
		close(d2);
	return rc;
}

int cbl_tree_copy_entry(cbl_tree_copy *t, int sfd, int dfd, const char *name, const struct stat *st, int depth)
{
	if (S_ISDIR(st->st_mode))
		return copy_dir_entry(t, sfd, dfd, name, st, depth);
	if (S_ISREG(st->st_mode))
		return copy_file(t, sfd, dfd, name);
	if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(sfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return (t->flags & CBL_TREE_SKIP_UNREADABLE) ? 0 : cbl_tree_fail(t, "cannot read the link", name);
		target[n] = '\0';
		if (symlinkat(target, dfd, name) < 0)
			return cbl_tree_fail(t, "cannot create the link", name);
		cbl_tree_keep_meta(dfd, name, st, true);
		t->r.files++;
		return 0;
	}
	if (cbl_tree_is_whiteout(st)) {
		/* the path is deleted in this layer (an unprivileged
		 * process may make one) */
		if (mknodat(dfd, name, S_IFCHR | 0000, makedev(0, 0)) < 0)
			return cbl_tree_fail(t, "cannot keep the deletion of", name);
		cbl_tree_keep_meta(dfd, name, st, true);
		return 0;
	}
	return 0; /* FIFOs, sockets, devices: no state a later sandbox reads */
}

int cbl_tree_walk(cbl_tree_copy *t, int sfd, int dfd, int depth, cbl_tree_entry_fn fn)
{
	if (depth > CBL_TREE_MAX_DEPTH) {
		errno = ELOOP;
		return cbl_tree_fail(t, "nested too deep at", "...");
	}
	int fd = dup(sfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return cbl_tree_fail(t, "cannot read", "a directory");
	}
	rewinddir(d); /* the dup shares sfd's offset */
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		rc = fn(t, sfd, dfd, de->d_name, &st, depth);
	}
	closedir(d);
	return rc;
}

int cbl_tree_copy_dir(cbl_tree_copy *t, int sfd, int dfd)
{
	return cbl_tree_walk(t, sfd, dfd, 0, cbl_tree_copy_entry);
}
