/* util/tree.h - an overlay layer's tree copied without following anything.
 *
 * The one copier of the trees a build wrote (an overlay upper layer with
 * its whiteouts and opaque directories, or a plain directory): every name
 * is opened beneath its parent's descriptor with O_NOFOLLOW, a regular file
 * with O_NONBLOCK (a FIFO swapped in does not block) and checked with fstat
 * once open; symlinks are copied as links, never followed; FIFOs, sockets
 * and devices are left out but the overlay whiteout (a 0:0 character
 * device); owners (before the mode: a chown clears the set-id bits), modes,
 * times and the opaque marks (trusted.overlay.opaque, user.overlay.opaque)
 * are kept.  Nested deeper than CBL_TREE_MAX_DEPTH: an error.
 *
 * It reports into a fixed-size cbl_tree_report (no allocation), which a
 * forked child can hand its parent through a pipe as it is;
 * cbl_tree_error turns it into a cbl_error. */
#ifndef CBL_TREE_H
#define CBL_TREE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/error.h"

#define CBL_TREE_MAX_DEPTH 256

enum {
	/* an entry that cannot be opened or read once listed (gone or
	 * replaced meanwhile, in a tree that may still change) is left out;
	 * without it that is an error */
	CBL_TREE_SKIP_UNREADABLE = 1u << 0,
	/* a user.overlay.opaque mark that cannot be set is an error (an
	 * unprivileged overlay's only way to hide the layers below) */
	CBL_TREE_NEED_USER_OPAQUE = 1u << 1,
	/* read and write only, never copy_file_range nor a reflink */
	CBL_TREE_NO_COPY_RANGE = 1u << 2,
};

typedef struct cbl_tree_report {
	uint64_t files; /* regular files and symlinks copied */
	uint64_t bytes; /* the files' bytes */
	int err;        /* errno of the failure */
	char msg[256];  /* the failure: "cannot create 'name'" */
} cbl_tree_report;

typedef struct cbl_tree_copy {
	unsigned flags; /* CBL_TREE_* */
	/* not 0: a directory of another filesystem (a mount under the tree)
	 * is left out, unless it is a tmpfs */
	dev_t dev;
	bool no_cfr; /* copy_file_range refused once: read and write from then on */
	cbl_tree_report r;
	void *arg; /* a cbl_tree_walk callback's */
} cbl_tree_copy;

/* One entry of a directory (st: its fstatat, not followed); depth: the
 * directory's. */
typedef int (*cbl_tree_entry_fn)(cbl_tree_copy *t, int sfd, int dfd, const char *name, const struct stat *st,
				 int depth);

/* The content of the directory open at sfd into the one open at dfd. 0, or
 * -1 with t->r.err and t->r.msg set. */
int cbl_tree_copy_dir(cbl_tree_copy *t, int sfd, int dfd);
/* One entry of sfd (its lstat st) copied as dfd's name, a directory with
 * its content. */
int cbl_tree_copy_entry(cbl_tree_copy *t, int sfd, int dfd, const char *name, const struct stat *st, int depth);
/* fn for every entry of sfd but "." and ".." (an entry gone before its
 * fstatat is left out); depth > CBL_TREE_MAX_DEPTH is an error.  fn
 * recurses with depth + 1. */
int cbl_tree_walk(cbl_tree_copy *t, int sfd, int dfd, int depth, cbl_tree_entry_fn fn);
/* Records a failure (errno, "what 'name'") in t->r; returns -1. */
int cbl_tree_fail(cbl_tree_copy *t, const char *what, const char *name);
/* The report's failure as an error "who: what 'name'" with code; returns code. */
int cbl_tree_error(const cbl_tree_report *r, int code, const char *who, cbl_error **err);

bool cbl_tree_is_whiteout(const struct stat *st);
/* The directory open at fd is marked opaque ("y" under either name). */
bool cbl_tree_is_opaque(int fd);
/* Marks the directory open at fd opaque: user.overlay.opaque when user,
 * else trusted.overlay.opaque.  0 or -1 (errno). */
int cbl_tree_mark_opaque(int fd, bool user);
/* The opaque marks of the directory at sfd onto the one at dfd (name: for
 * the report); a failure is an error only for user.overlay.opaque under
 * CBL_TREE_NEED_USER_OPAQUE. */
int cbl_tree_copy_opaque(cbl_tree_copy *t, int sfd, int dfd, const char *name);
/* dfd's name gets st's owner, then its mode (not for a symlink: link), then
 * its times; failures are ignored (an unmapped id, a filesystem without
 * owners). */
void cbl_tree_keep_meta(int dfd, const char *name, const struct stat *st, bool link);

#endif
