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

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void artifacts_to_hex(const unsigned char *d, unsigned n, char *out);

#endif
