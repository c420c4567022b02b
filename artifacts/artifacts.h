/* artifacts/artifacts.h - artifact file selection (CodeBuild glob rules) and
 * packaging (ZIP or a plain directory).
 *
 * Flow: the runner shell-expands the buildspec's `files` entries and
 * `base-directory`, calls artifacts_collect() to get a sorted file list, then
 * packages it with artifacts_write_zip() (packaging ZIP) or
 * artifacts_write_dir() (packaging NONE).  The same collect call serves
 * report `files` blocks (build a spec_artifact with files / base_directory /
 * discard_paths set).
 *
 * Errors follow util/error.h: 0 or a negative CBL_E* code, *err set.
 * Nothing here prints; agent log lines go through the artifacts_log_fn.
 * Thread safety: all functions are reentrant (no global state); a list may be
 * read from several threads at once.
 */
#ifndef CBL_ARTIFACTS_H
#define CBL_ARTIFACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "spec/spec.h"
#include "util/error.h"

/* One file of an artifact. */
typedef struct artifacts_entry {
	char *path;      /* absolute path on disk, for messages.  For a symlink kept
			  * as a symlink (is_symlink) this is the link itself; for a
			  * followed symlink it is the resolved target (realpath). */
	char *name;      /* path inside the artifact: relative, '/'-separated,
			  * no "", "." or ".." components */
	bool is_symlink; /* store as a symlink entry (enable-symlinks: yes) */
	char *rel;       /* where it is read: path (without symlinks) beneath dirfd.
			  * The tree is the build's, so the file is opened there
			  * (util/safeopen.h), never by path.  NULL in a list made
			  * by hand: then path is opened (O_NOFOLLOW). */
	int dirfd;       /* borrowed from the list (artifacts_list.fds) */
} artifacts_entry;

/* A file list sorted by name (strcmp order), names unique.  Owned by the
 * caller of the function that returned it; free with artifacts_list_free(). */
typedef struct artifacts_list {
	artifacts_entry *items;
	size_t n;
	int *fds;        /* the directories the entries are beneath (owned) */
	size_t nfds;
} artifacts_list;

/* Opens an entry's content read-only (O_NONBLOCK): beneath its directory
 * descriptor without following any symlink, except that an is_symlink entry
 * is followed as long as it stays beneath it.  Only a regular file: a FIFO,
 * a device, a directory swapped in meanwhile are CBL_EIO, without blocking.
 * *fd_out (caller closes) and *st receive the descriptor and its fstat. */
int artifacts_entry_open(const artifacts_entry *e, int *fd_out, struct stat *st, cbl_error **err);

/* The directory holding an entry, opened beneath the entry's directory
 * descriptor without symlinks (O_RDONLY | O_DIRECTORY); *last is the
 * entry's own name in it (borrowed from e).  For *at calls that must not
 * follow the last component (fstatat, readlinkat, linkat). */
int artifacts_entry_open_parent(const artifacts_entry *e, int *fd_out, const char **last, cbl_error **err);

/* A symlink entry's lstat and target (caller frees *target).  CBL_EIO, also
 * when it is no longer a symlink. */
int artifacts_entry_readlink(const artifacts_entry *e, struct stat *st, char **target, cbl_error **err);

void artifacts_list_free(artifacts_list *l); /* NULL is fine */

/* Receives one agent log message, without the "[Container] <time> " prefix
 * and without a newline.  `line` is borrowed for the duration of the call. */
typedef void (*artifacts_log_fn)(const char *line, void *payload);

#define ARTIFACTS_NO_MATCH_MSG "no matching artifact paths found"

/* Selects the files of artifact `a` the way CodeBuild's UPLOAD_ARTIFACTS does.
 *
 * out               receives the list (caller frees with artifacts_list_free);
 *                   untouched on failure.
 * src_dir           CODEBUILD_SRC_DIR (relative or absolute; must exist).  It
 *                   bounds symlink following: no symlink is followed to a
 *                   target outside it.
 * a                 the artifact block; uses files (raw text, for log lines),
 *                   exclude_paths, discard_paths, enable_symlinks.
 * expanded_files    a->files after shell expansion, same order and length as
 *                   a->files.n; NULL = use a->files as they are.
 * expanded_base_dir base-directory after shell expansion; NULL = none (the
 *                   files are relative to src_dir).  A relative value is
 *                   relative to src_dir and may not leave it ("..");
 *                   an absolute one (e.g. $CODEBUILD_SRC_DIR_source1) is used
 *                   as is and its matched directory becomes the symlink bound
 *                   when it lies outside src_dir.  It may be a glob
 *                   ('my-build*'); every matching directory is a base and its
 *                   own path is stripped from the output names.
 * log, payload      receive, in order: "Expanding base directory path: <d>",
 *                   ["Expanded to <x>"], "Assembling file list",
 *                   "Expanding <d>", then per matched base directory
 *                   "Expanding file paths for base directory <b>",
 *                   "Assembling file list", then per files entry
 *                   "Expanding <entry>", ["Expanded to <x>"],
 *                   ["Skipping invalid file path <p>"], and finally
 *                   "Found <n> file(s)" (only when n > 0).  "Skipping
 *                   invalid file path" is logged for an entry without glob
 *                   characters that selects nothing, or one that is invalid
 *                   (leaves the base with "..", absolute outside the base).
 *                   Our own addition (no service equivalent known): skipped
 *                   symlinks log "Skipping symlink <p>: target is outside
 *                   the source directory" / ": target does not exist" /
 *                   ": directory loop".  log may be NULL.
 *
 * The tree may change while it is read (it is the build's): every directory
 * is opened from its parent's descriptor without following a symlink, a
 * followed symlink is opened beneath the source's descriptor by its
 * resolved path, and each entry carries that descriptor and path
 * (artifacts_entry.dirfd, .rel) so that packaging opens the very same way:
 * a directory swapped for a symlink mid-way is never followed outside.
 *
 * Symlinks (decisions, [inferred]): a symlink is never followed to a target
 * outside the bound.  enable-symlinks yes: every matched symlink (to a file,
 * a directory, or dangling) is one is_symlink entry and is never descended.
 * enable-symlinks no: links to files become entries with the target's
 * content (path = resolved target); links to directories inside the bound
 * are descended under the link's name, except a link back to a directory on
 * the current path (loop, detected by dev/ino).  A base-directory given
 * through a symlink is followed when it stays inside src_dir.
 *
 * Glob rules: see the // block below (kept out of this comment because the
 * patterns contain slash-star).
 *
 * Errors: CBL_ENOENT with message exactly ARTIFACTS_NO_MATCH_MSG when no file
 * was selected (the runner reports it as CLIENT_ERROR); CBL_ENOENT when
 * src_dir does not exist; CBL_EINVAL for a relative base-directory that
 * leaves src_dir; CBL_EIO for unreadable directories. */
// Glob rules (relative to each base directory; a leading "./" is tolerated,
// an absolute entry must lie inside the base directory):
//   *  ?  [...]  match within one path component; '*' also matches names
//                starting with '.' (hidden files are selected); '\' escapes
//   **           as a whole component: zero or more directory levels
//   A matched directory contributes every file below it [inferred: the
//   service's behaviour is undocumented], so `dir`, `dir/*` and `dir/**/*`
//   all select everything under dir, while `*.txt` selects top-level files
//   only and `**/*` everything.
//   exclude-paths globs are matched against each selected file's path
//   relative to its base directory: `**/.*` drops dot files (not the content
//   of dot directories), `**/.*/**/*` drops dot directories' content.
//   discard-paths keeps the base name only; when two selected files end up
//   with the same name (discard-paths, or several base directories), the one
//   whose source path (base directory + relative path) sorts last in byte
//   order wins -- as if they were copied in sorted order.
int artifacts_collect(artifacts_list **out, const char *src_dir, const spec_artifact *a,
		      const char *const *expanded_files, const char *expanded_base_dir,
		      artifacts_log_fn log, void *payload, cbl_error **err);

/* Where artifacts_collect_in reads. */
typedef struct artifacts_roots {
	int src_fd;                /* src_dir already open (borrowed; the list keeps a
				    * duplicate), or -1 to open src_dir */
	const char *const *bounds; /* NULL-terminated directories an absolute
				    * base-directory may lie in besides src_dir, each read
				    * beneath its own descriptor (the secondary sources);
				    * NULL = anywhere (no bound, as artifacts_collect) */
	int64_t deadline_mono_us;  /* CLOCK_MONOTONIC (util/time.h cbl_mono_us) after which
				    * the walk stops with CBL_ETIMEDOUT (checked per
				    * directory); 0 = none */
} artifacts_roots;

#define ARTIFACTS_ROOTS_INIT {-1, NULL, 0}

/* artifacts_collect, reading only beneath src_dir (or where->src_fd) and
 * the bounds: an absolute base-directory elsewhere is CBL_EINVAL ("outside
 * the source directories"); where NULL = artifacts_collect. */
int artifacts_collect_in(artifacts_list **out, const char *src_dir, const artifacts_roots *where,
			 const spec_artifact *a, const char *const *expanded_files,
			 const char *expanded_base_dir, artifacts_log_fn log, void *payload, cbl_error **err);

/* Full-path glob match with the rules above but without the directory rule:
 * true when `path` (relative, '/'-separated) matches `pattern` exactly.
 * `**` is handled by a set-of-states simulation (no exponential
 * backtracking).  A pattern that leaves its base with ".." never matches. */
bool artifacts_glob_match(const char *pattern, const char *path);

/* Writes the files of `l` as a ZIP archive at dest_path, with the default
 * options (ARTIFACTS_ZIP_OPTS_INIT); see artifacts_write_zip_opts(). */
int artifacts_write_zip(const artifacts_list *l, const char *dest_path, bool keep_symlinks,
			char sha256_hex[65], char md5_hex[33], cbl_error **err);

/* zlib level used when artifacts_zip_opts.level is 0.  4 is zlib's fastest
 * level with lazy matching (the algorithm of 6, shorter match chains): on
 * node_modules trees it takes 25-45% less CPU than 6 for 1-4% more bytes, and
 * the archive still comes out no larger than `zip -qr`'s (level 6 data, but
 * bigger headers) -- see bench/artifacts.sh. */
#define ARTIFACTS_ZIP_DEFAULT_LEVEL 4
/* Upper bound of compression threads. */
#define ARTIFACTS_ZIP_MAX_THREADS 8

typedef struct artifacts_zip_opts {
	int threads;       /* compression threads; 0 = online CPUs; capped at
			    * ARTIFACTS_ZIP_MAX_THREADS.  The output does not
			    * depend on it. */
	int level;         /* zlib level 1..9; 0 = ARTIFACTS_ZIP_DEFAULT_LEVEL */
	bool force_zip64;  /* write ZIP64 records for every entry and the end
			    * of the archive even when nothing needs them (for
			    * tests and consumers that want uniform records);
			    * otherwise ZIP64 is used only where a size or
			    * offset reaches 4 GiB or there are 65535+ entries */
	int64_t deadline_mono_us; /* CLOCK_MONOTONIC (util/time.h cbl_mono_us) after
				   * which packaging stops with CBL_ETIMEDOUT (a build's
				   * deadline: its files may be huge); 0 = none */
} artifacts_zip_opts;

#define ARTIFACTS_ZIP_OPTS_INIT {0}

/* Writes the files of `l` as a ZIP archive at dest_path.
 *
 * Entries are written in list order (sorted by name), each with the file's
 * mtime (as an extended-timestamp field and as the DOS date/time in UTC, so
 * the bytes do not depend on TZ) and its permission bits (mode & 0777, in
 * the Unix external attributes); no uid/gid and no directory entries
 * (directories are implied), so the same input gives byte-identical
 * archives whatever the thread count or time zone.  A file is deflated
 * (raw deflate, zlib `level`) or stored when deflate does not make it
 * smaller (empty files are always stored); files above 1 MiB are deflated
 * in a stream and carry a data descriptor.  keep_symlinks: entries with
 * is_symlink are stored as symlink entries (S_IFLNK mode, the target from
 * readlink as content); otherwise they are followed and their content
 * stored -- pass the same value as the artifact's enable_symlinks.
 *
 * Compression runs on opts->threads worker threads (created and joined
 * within the call, whole files per worker); the calling thread writes.
 * Memory stays bounded whatever the tree size (a window of entries and
 * about 32 MiB of compressed data in flight, plus per-thread buffers).
 *
 * The archive is written to "<dest_path>.tmp.<pid>" and renamed into place
 * only when complete; on failure the temp file is removed and dest_path is
 * left untouched.  sha256_hex / md5_hex (may be NULL) receive the lowercase
 * hex digests of the final file.  opts NULL = ARTIFACTS_ZIP_OPTS_INIT.
 * Errors: CBL_EIO (I/O, a file that changed or vanished while reading; the
 * first failing entry in list order is reported), CBL_EINVAL (an invalid
 * entry name or option), CBL_EINTERNAL (no thread could be started).
 * Two concurrent writes to the same dest_path from one process share the
 * temp name: callers give each build its own destination. */
int artifacts_write_zip_opts(const artifacts_list *l, const char *dest_path, bool keep_symlinks,
			     const artifacts_zip_opts *opts, char sha256_hex[65], char md5_hex[33],
			     cbl_error **err);

/* Packaging NONE: copies the files of `l` under dest_dir (parents created),
 * keeping permission bits (mode & 0777) and mtimes of files; symlinks as
 * symlinks when keep_symlinks (see artifacts_write_zip).  The tree is built
 * in "<dest_dir>.tmp.<pid>" and then swapped into place (an existing
 * dest_dir, of any type, is replaced only after the new one is complete and
 * then removed).  On failure the temp tree is removed and dest_dir is left
 * untouched.  Errors: CBL_EIO, CBL_EINVAL (invalid or conflicting entry
 * names, e.g. both "a" and "a/b"). */
int artifacts_write_dir(const artifacts_list *l, const char *dest_dir, bool keep_symlinks,
			cbl_error **err);
/* The same, stopping with CBL_ETIMEDOUT once CLOCK_MONOTONIC passes
 * deadline_mono_us (0 = none). */
int artifacts_write_dir_deadline(const artifacts_list *l, const char *dest_dir, bool keep_symlinks,
				 int64_t deadline_mono_us, cbl_error **err);

#endif
