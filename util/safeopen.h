/* util/safeopen.h - opening paths someone else controls, beneath a directory
 * descriptor.
 *
 * A build writes its own view of the source, its scratch directory and the
 * files it leaves for the runner (artifacts, reports, cache paths, the
 * buildspec).  The runner reads and writes those places with more privilege
 * than the build, so it must never let the build's symlinks, `..`,
 * /proc magic links, FIFOs or mid-operation renames lead it somewhere else.
 * Everything here resolves a relative path beneath an open directory
 * descriptor the runner trusts:
 *   - openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS [| RESOLVE_NO_SYMLINKS]):
 *     the kernel refuses any step (`..`, an absolute symlink, a relative one
 *     that climbs out, a /proc magic link) that would leave dirfd, even when
 *     the tree changes during the lookup;
 *   - where openat2 is missing (ENOSYS: kernels before 5.6, some seccomp
 *     profiles) a walk one component at a time with O_NOFOLLOW, following
 *     relative symlinks by hand (never an absolute one, never above dirfd).
 * Opening is never enough on its own: callers check what they got with
 * fstat (cbl_open_beneath_regular does), open with O_NONBLOCK so that a FIFO
 * cannot block them, and change modes with fchmod on the descriptor.
 *
 * Errors: functions return a descriptor (or 0) on success and a negative
 * CBL_E* code with *err set on failure, errno preserved: CBL_ENOENT (a
 * component is missing), CBL_EINVAL (the path leaves dirfd -- EXDEV -- or
 * has a symlink where none is allowed -- ELOOP -- or is not the expected
 * type), CBL_EIO (anything else).  Nothing here prints.
 * Thread safety: reentrant; no global state.
 */
#ifndef CBL_SAFEOPEN_H
#define CBL_SAFEOPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/error.h"
#include "util/fs.h"

/* resolve bits for cbl_open_beneath */
#define CBL_RESOLVE_NO_SYMLINKS 0x1u /* no symlink in any component, the last included */

/* Opens relpath (relative; "" or "." is dirfd itself) beneath dirfd with
 * flags (O_CLOEXEC and O_NOCTTY added) and mode (for O_CREAT).  Symlinks are
 * followed only while they stay beneath dirfd, and not at all with
 * CBL_RESOLVE_NO_SYMLINKS; /proc magic links never.  An absolute relpath is
 * CBL_EINVAL.  Returns the new descriptor (caller closes). */
int cbl_open_beneath(int dirfd, const char *relpath, int flags, mode_t mode, unsigned resolve,
		     cbl_error **err);

/* cbl_open_beneath(O_RDONLY | O_NONBLOCK) of a regular file: anything else
 * (a FIFO, a device, a directory, a socket) is refused with CBL_EINVAL
 * without blocking.  *st (may be NULL) receives its fstat. */
int cbl_open_beneath_regular(int dirfd, const char *relpath, unsigned resolve, struct stat *st,
			     cbl_error **err);

/* A directory beneath dirfd (O_RDONLY | O_DIRECTORY). */
int cbl_open_dir_beneath(int dirfd, const char *relpath, unsigned resolve, cbl_error **err);

/* cbl_open_beneath_regular + cbl_read_fd. */
int cbl_read_beneath(int dirfd, const char *relpath, unsigned resolve, size_t max_size, char **out,
		     size_t *len, cbl_error **err);

/* Publishes name (one component) in dirfd with the given content and mode:
 * written to a fresh name created with O_EXCL | O_NOFOLLOW, fchmod'ed, then
 * renamed over name, so whatever was there (a symlink, a FIFO) is replaced,
 * never followed.  CBL_EIO. */
int cbl_write_at_atomic(int dirfd, const char *name, const char *data, size_t len, mode_t mode,
			cbl_error **err);

/* The fallback walk on its own, with cbl_open_beneath's contract: what is
 * used where openat2 is missing (exposed for the tests). */
int cbl_open_beneath_walk(int dirfd, const char *relpath, int flags, mode_t mode, unsigned resolve,
			  cbl_error **err);

#endif
