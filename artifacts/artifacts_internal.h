/* artifacts/artifacts_internal.h - helpers shared by the packaging files
 * (package.c: directory output and the shared checks; zip.c: the ZIP writer).
 * Not part of the module's contract; tests may use them.
 * Errors follow util/error.h.  All reentrant. */
#ifndef CBL_ARTIFACTS_INTERNAL_H
#define CBL_ARTIFACTS_INTERNAL_H

#include <stdbool.h>
#include <sys/stat.h>

#include "artifacts/artifacts.h"
#include "util/error.h"

/* Every entry has a path and a name that is safe to create under a
 * directory (relative, no "", "." or ".." components).  CBL_EINVAL. */
int artifacts_validate_list(const artifacts_list *l, cbl_error **err);

/* mkdir -p of the directory part of `path` (nothing for a bare name). */
int artifacts_mkdir_parent(const char *path, cbl_error **err);

/* Opens an entry's content read-only: the file itself, never following a
 * final symlink unless the entry is a symlink being followed (is_symlink).
 * *fd_out and *st receive the descriptor (caller closes) and its fstat.
 * CBL_EIO when it cannot be opened or is not a regular file. */
int artifacts_open_content(const artifacts_entry *e, int *fd_out, struct stat *st,
			   cbl_error **err);

/* readlink into a new string (caller frees).  CBL_EIO. */
int artifacts_read_link(const char *path, char **out, cbl_error **err);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void artifacts_to_hex(const unsigned char *d, unsigned n, char *out);

#endif
