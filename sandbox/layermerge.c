/* sandbox/layermerge.c - an overlay layer flattened onto the one above it:
 * sandbox_layer_merge (in this process) and sandbox_merge_out (in a child
 * that joined a sandbox's user namespace).
 *
 * A build restored from a kept state (a read-only layer below its own
 * upper layer) that keeps its state again keeps both as one layer: its own
 * upper layer (already copied to the destination) wins, and every entry of
 * the older layer it does not hide shows through.  The older layer is
 * immutable (a checkpoint): its files are hard-linked where the kernel
 * allows it (never changed afterwards: no owner, mode or time is set on a
 * link), copied otherwise.  Nothing is followed: the walk and the copies
 * are util/tree.c's.
 */
#include "sandbox/sandbox_internal.h"
#include "util/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

/* The merge's flags (SANDBOX_MERGE_*), the walk's argument. */
static unsigned merge_flags(const cbl_tree_copy *t)
{
	return *(const unsigned *)t->arg;
}

/* fuse-overlayfs's own forms (SANDBOX_MERGE_FUSE): a directory holding
 * this file is opaque, a ".wh.NAME" file deletes NAME. */
#define FUSE_OPAQUE ".wh..wh..opq"

static bool is_opaque(const cbl_tree_copy *t, int dfd)
{
	if ((merge_flags(t) & SANDBOX_MERGE_FUSE) && faccessat(dfd, FUSE_OPAQUE, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return true;
	return cbl_tree_is_opaque(dfd);
}

/* An opaque mark on the new layer's directory d2 (named name, for errors). */
static int mark_opaque(cbl_tree_copy *t, int d2, const char *name)
{
	if (is_opaque(t, d2))
		return 0;
	if (merge_flags(t) & SANDBOX_MERGE_FUSE) {
		int fd = openat(d2, FUSE_OPAQUE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return cbl_tree_fail(t, "cannot mark opaque", name);
		close(fd);
		return 0;
	}
	if (cbl_tree_mark_opaque(d2, merge_flags(t) & SANDBOX_MERGE_USER_XATTR) < 0)
		return cbl_tree_fail(t, "cannot mark opaque", name);
	return 0;
}

/* Whether the new layer (dfd) hides the old layer's name in
 * fuse-overlayfs's file form, or name is an old ".wh." deletion of what
 * the new layer made again. */
static bool fuse_hidden(const cbl_tree_copy *t, int dfd, const char *name)
{
	if (!(merge_flags(t) & SANDBOX_MERGE_FUSE) || strlen(name) > 250)
		return false;
	struct stat st;
	if (!strncmp(name, ".wh.", 4) && strcmp(name, FUSE_OPAQUE) &&
	    fstatat(dfd, name + 4, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return true;
	char wh[256];
	snprintf(wh, sizeof(wh), ".wh.%s", name);
	return faccessat(dfd, wh, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A non-directory of the old layer the new one lacks: a hard link, else a
 * copy (a file, a symlink as a link, a whiteout as a whiteout). */
static int put_other(cbl_tree_copy *t, int ofd, int dfd, const char *name, const struct stat *st)
{
	bool whiteout = cbl_tree_is_whiteout(st);
	if (!S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode) && !whiteout)
		return 0; /* FIFOs, sockets, devices: never in a kept layer */
	if (!(merge_flags(t) & SANDBOX_MERGE_NO_LINKS) && linkat(ofd, name, dfd, name, 0) == 0) {
		if (!whiteout)
			t->r.files++;
		if (S_ISREG(st->st_mode))
			t->r.bytes += (uint64_t)st->st_size;
		return 0;
	}
	return cbl_tree_copy_entry(t, ofd, dfd, name, st, 0);
}

/* One entry of the old layer (ost) onto the new one's. */
static int merge_entry(cbl_tree_copy *t, int ofd, int dfd, const char *name, const struct stat *ost, int depth)
{
	struct stat dst;
	bool in_new = fstatat(dfd, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	if (in_new && !S_ISDIR(dst.st_mode))
		return 0; /* a file, a link or a whiteout of the new layer: it wins */
	if (!in_new && fuse_hidden(t, dfd, name))
		return 0; /* deleted above it in fuse-overlayfs's file form, or made again */
	if (!in_new && !S_ISDIR(ost->st_mode))
		return put_other(t, ofd, dfd, name, ost);
	if (!in_new && mkdirat(dfd, name, 0700) < 0)
		return cbl_tree_fail(t, "cannot create", name);
	int d2 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d2 < 0)
		return cbl_tree_fail(t, "cannot open", name);
	int rc = 0;
	if (!S_ISDIR(ost->st_mode)) {
		/* a new directory where the old layer had a file or a
		 * whiteout: it hid the working tree's entry, and still does */
		rc = mark_opaque(t, d2, name);
	} else if (!in_new || !is_opaque(t, d2)) {
		int o2 = openat(ofd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (o2 < 0) {
			rc = cbl_tree_fail(t, "cannot read", name);
		} else {
			/* an old opaque one still hides the tree's */
			rc = cbl_tree_copy_opaque(t, o2, d2, name);
			if (!rc)
				rc = cbl_tree_walk(t, o2, d2, depth + 1, merge_entry);
			close(o2);
		}
		if (!rc && !in_new)
			cbl_tree_keep_meta(dfd, name, ost, false);
	} /* else an opaque directory of the new layer: it wins */
	close(d2);
	return rc;
}

/* The old layer onto the new one, in this process: 0 or -1 (t->r). */
static int merge_run(cbl_tree_copy *t, unsigned *flags, int old_fd, int dest_fd)
{
	memset(t, 0, sizeof(*t));
	t->arg = flags;
	return cbl_tree_walk(t, old_fd, dest_fd, 0, merge_entry);
}

int sandbox_layer_merge(int old_fd, int dest_fd, unsigned flags, sandbox_copy_stats *st, cbl_error **err)
{
	cbl_tree_copy t;
	if (merge_run(&t, &flags, old_fd, dest_fd) < 0)
		return cbl_tree_error(&t.r, CBL_EIO, "layer merge", err);
	if (st) {
		st->files += t.r.files;
		st->bytes += t.r.bytes;
	}
	return 0;
}

/* What the child reports through its pipe. */
typedef struct merge_report {
	int rc;
	cbl_tree_report t;
} merge_report;

typedef struct merge_job {
	unsigned flags;
	int old_fd, dest_fd;
} merge_job;

/* In the child, in the sandbox's user namespace (sandbox_in_namespaces). */
static void merge_child(void *arg, void *report, const char *failed)
{
	merge_job *j = arg;
	merge_report *r = report;
	cbl_tree_copy t;
	if (failed) {
		memset(&t, 0, sizeof(t));
		r->rc = cbl_tree_fail(&t, "cannot join", failed);
	} else {
		r->rc = merge_run(&t, &j->flags, j->old_fd, j->dest_fd);
	}
	r->t = t.r;
}

int sandbox_merge_out(sandbox_handle *s, int old_fd, int dest_fd, unsigned flags, sandbox_copy_stats *st,
		      cbl_error **err)
{
	if (!s->userns)
		return sandbox_layer_merge(old_fd, dest_fd, flags, st, err);
	merge_job j = {.flags = flags, .old_fd = old_fd, .dest_fd = dest_fd};
	merge_report r;
	int rc = sandbox_in_namespaces(s, false, merge_child, &j, &r, sizeof(r), "layer merge", err);
	if (rc == 0 && r.rc < 0)
		rc = cbl_tree_error(&r.t, CBL_EIO, "layer merge", err);
	else if (rc == 0 && st) {
		st->files += r.t.files;
		st->bytes += r.t.bytes;
	}
	return rc;
}
