/* util/fs.h - small filesystem helpers. */
#ifndef CBL_FS_H
#define CBL_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/error.h"

/* "a" + "/" + "b" (no doubled slash); caller frees. */
char *cbl_path_join(const char *a, const char *b);
/* mkdir -p with the given mode for created directories. */
int cbl_mkdir_p(const char *path, mode_t mode, cbl_error **err);
/* Reads a whole file (NUL-terminated; *len excludes the NUL). max_size 0 = 64 MiB. */
int cbl_read_file(const char *path, size_t max_size, char **out, size_t *len, cbl_error **err);
/* Reads all of fd (from its offset), at most max_size bytes (0 = 64 MiB:
 * more is CBL_EINVAL); the data is NUL-terminated, *len (may be NULL)
 * excludes the NUL.  what names the file in messages. */
int cbl_read_fd(int fd, const char *what, size_t max_size, char **out, size_t *len, cbl_error **err);
/* Same, but the last component must be a regular file, not a symlink: for
 * files in a directory someone else (a build) can write to. */
int cbl_read_regular_file(const char *path, size_t max_size, char **out, size_t *len,
			  cbl_error **err);
/* Writes data to path.tmp.<pid> (created exclusively, never through a
 * symlink) then renames over path (atomic publish; a symlink at path is
 * replaced, not followed).
 * sync: fsync the data before the rename (durable across a crash). */
int cbl_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode, bool sync,
			  cbl_error **err);
/* rm -rf; never follows symlinks.  Missing path is not an error. */
int cbl_rm_rf(const char *path, cbl_error **err);
/* Copies the tree at src to dst (which must not exist), like `cp -a` of the
 * tree's own content: directories, regular files (reflinked where the
 * filesystem can, else copy_file_range), symlinks as symlinks (never
 * followed, so nothing outside src is read), modes and mtimes.  Other file
 * types are skipped.  On failure dst may be partial: the caller removes it. */
int cbl_copy_tree(const char *src, const char *dst, cbl_error **err);
/* The same, leaving out skip's paths (NULL-terminated, relative to src,
 * '/'-separated, sorted by strcmp; a directory's whole content with it). */
int cbl_copy_tree_except(const char *src, const char *dst, const char *const *skip, cbl_error **err);
/* realpath that reports errors */
int cbl_realpath(const char *path, char **out, cbl_error **err);
/* cbl_realpath (errno left set on failure), with one difference: a leading
 * "/proc/self/fd/N" (cbl_fd_path: a directory this process holds open that
 * may lie in another mount namespace, a sandbox's, where its own path names
 * something else) is kept as it is and the rest is resolved beneath it: ".."
 * never climbs above it (EXDEV), and an absolute symlink target is resolved
 * from this process's "/", as realpath(3) does (it leaves the directory).
 * For paths the runner built itself from such a descriptor, never for what
 * a user typed. */
int cbl_realpath_fd(const char *path, char **out, cbl_error **err);
/* "/proc/self/fd/<fd>": a path that reaches the directory open at fd
 * whatever its mount namespace.  Caller frees. */
char *cbl_fd_path(int fd);
/* Length of path's leading "/proc/self/fd/N" (followed by '/' or the end),
 * 0 when it has none. */
size_t cbl_fd_path_prefix(const char *path);
/* Writes all of buf to fd, retrying on EINTR / short writes. */
int cbl_write_all(int fd, const void *buf, size_t len);

/* Field 22 of /proc/PID/stat: when the process started (clock ticks since
 * boot), which tells a live process from a recycled pid; -1 if it is gone. */
long long cbl_proc_start_time(pid_t pid);

#endif
