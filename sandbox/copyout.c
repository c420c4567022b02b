/* sandbox/copyout.c - a directory of a running (or ended) sandbox copied
 * out as an overlay layer: sandbox_copy_out.
 *
 * Unprivileged, what the commands wrote belongs to the ids of the
 * sandbox's user namespace, the caller's subordinate ones included (a
 * run-as user's 0600 file): the caller cannot read it, and the private
 * tmpfs (the overlays' upper layers) is reachable by nothing after the
 * init's pivot_root but the descriptor the parent kept (sandbox.c
 * hold_scratch).  So the copy runs in a forked child that joins the user
 * namespace (root there, with the namespace's capabilities over its files)
 * and, for a path, the mount namespace; the destination is a descriptor the
 * caller opened before, the only thing of the host's the child touches.
 *
 * The tree is what a hostile build left, maybe still changing: the copy is
 * util/tree.c's (nothing followed, every name checked once open), with what
 * vanished meanwhile left out and the user.* opaque mark required (the only
 * one a user namespace can set).
 */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/safeopen.h"
#include "util/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

/* What the child reports through its pipe. */
typedef struct copy_report {
	int rc;         /* 0, or -1 */
	bool no_source; /* the source directory does not exist */
	cbl_tree_report t;
} copy_report;

/* The source directory, in the child, once in the namespaces. */
static int open_source(sandbox_handle *s, sandbox_copy_from from, size_t index, const char *path)
{
	if (from != SANDBOX_COPY_PATH) {
		const char *name = from == SANDBOX_COPY_ROOT_UPPER ? s->root_upper_name
				   : index < s->n_mounts	      ? s->mount_upper[index]
								      : NULL;
		if (!name || s->scratch_fd < 0) {
			errno = ENOENT;
			return -1;
		}
		return openat(s->scratch_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	const char *rel = path;
	while (*rel == '/')
		rel++;
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	int fd = cbl_open_dir_beneath(root, rel, CBL_RESOLVE_NO_SYMLINKS, NULL);
	int e = errno;
	close(root);
	errno = e;
	return fd;
}

/* What the child copies. */
typedef struct copy_job {
	sandbox_handle *s;
	sandbox_copy_from from;
	size_t index;
	const char *path;
	int dest_fd;
} copy_job;

/* In the child, in the sandbox's namespaces (sandbox_in_namespaces). */
static void copy_child(void *arg, void *report, const char *failed)
{
	const copy_job *j = arg;
	copy_report *r = report;
	/* what a build still running changes meanwhile is left out; only
	 * the user.* opaque mark can be set in its user namespace */
	cbl_tree_copy t;
	memset(&t, 0, sizeof(t));
	t.flags = CBL_TREE_SKIP_UNREADABLE | CBL_TREE_NEED_USER_OPAQUE;
	int src = -1;
	if (failed)
		r->rc = cbl_tree_fail(&t, "cannot join", failed);
	else if ((src = open_source(j->s, j->from, j->index, j->path)) < 0) {
		r->no_source = errno == ENOENT;
		r->rc = cbl_tree_fail(&t, "cannot open", j->from == SANDBOX_COPY_PATH ? j->path : "the upper layer");
	} else
		r->rc = cbl_tree_copy_dir(&t, src, j->dest_fd);
	r->t = t.r;
}

int sandbox_copy_out(sandbox_handle *s, sandbox_copy_from from, size_t index, const char *path, int dest_fd,
		     sandbox_copy_stats *st, cbl_error **err)
{
	if (from == SANDBOX_COPY_PATH && (!path || path[0] != '/'))
		return cbl_error_set(err, CBL_EINVAL, "sandbox: copy out: not an absolute path");
	const char *what = from == SANDBOX_COPY_PATH ? path : "an upper layer";
	char *who = cbl_xasprintf("sandbox: copy out %s", what);
	copy_job j = {.s = s, .from = from, .index = index, .path = path, .dest_fd = dest_fd};
	copy_report r;
	int rc = sandbox_in_namespaces(s, from == SANDBOX_COPY_PATH, copy_child, &j, &r, sizeof(r), who, err);
	if (rc == 0 && r.rc < 0)
		rc = cbl_tree_error(&r.t, r.no_source ? CBL_ENOENT : CBL_EIO, who, err);
	else if (rc == 0 && st) {
		st->files = r.t.files;
		st->bytes = r.t.bytes;
	}
	free(who);
	return rc;
}
