/* cache/cache_internal.h - shared between the files of cache/ and reachable
 * from tests/unit/test_cache.c; not part of the module's contract.
 * Errors follow util/error.h.  All functions are reentrant. */
#ifndef CBL_CACHE_INTERNAL_H
#define CBL_CACHE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cache/cache.h"
#include "util/buf.h"
#include "util/strv.h"

#define CACHE_FORMAT 1
#define CACHE_ROLLING_REF "default"

/* ------------------------------------------------------------- paths */

/* One distinct static base directory of a session = one subtree p<N>. */
typedef enum cache_kind {
	CACHE_KIND_MOUNT = 0, /* overlay mount (sandbox) */
	CACHE_KIND_COPY,      /* copied in / compared on save */
	CACHE_KIND_SKIP,      /* cannot be cached in this setup (reason in skip_reason) */
} cache_kind;

typedef struct cache_base {
	char *base;        /* normalised: "node_modules", "/root/.m2", "." */
	cbl_strv pats;     /* globs relative to base ("**" "/" "*" for a whole tree) */
	cbl_strv shown;    /* the normalised cache.paths entries of this base */
	size_t *nested;    /* indices of other bases strictly inside this one */
	size_t nnested;
	/* set by the session */
	char *inner;       /* absolute path in the build's view */
	char *host;        /* where the runner reaches it; NULL if it cannot */
	char *host_rel;    /* host below the source's view ("" = the view), or NULL:
			    * the build may have made any of its components a
			    * symlink, so it is only ever walked without following
			    * them (cache_open_beneath) */
	cache_kind kind;
	const char *skip_reason;
	bool match_all;    /* some pattern selects the whole tree */
} cache_base;

/* Normalises one cache.paths entry: "./" and "." components and repeated
 * or trailing '/' dropped; a ".." component is refused (CBL_EINVAL).  An
 * absolute path stays absolute.  Caller frees *out. */
int cache_normalize_path(const char *in, char **out, cbl_error **err);

/* Splits paths into distinct bases (in order of first appearance) and
 * computes the version: SHA-256 over the sorted, de-duplicated normalised
 * paths, each followed by '\n'. */
int cache_parse_paths(const char *const *paths, size_t n, cache_base **out, size_t *nout,
		      char version_hex[65], cbl_error **err);
void cache_bases_free(cache_base *b, size_t n);

/* True when rel (relative to the base, '/'-separated) is selected by the
 * base's patterns, given that no ancestor directory was (the directory rule
 * is applied by the walkers: a matched directory selects all below). */
bool cache_base_selects(const cache_base *b, const char *rel);
/* True when rel lies inside (or is) a nested base, which owns it. */
bool cache_base_in_nested(const cache_base *bases, const cache_base *b, const char *rel);

/* ------------------------------------------------------------ digests */

void cache_hex(const unsigned char *d, size_t n, char *out);
/* SHA-256 of everything readable from fd (from its current offset). */
int cache_hash_fd(int fd, unsigned char out[32]);

/* path -> 32-byte digest, for a listing's regular files. */
typedef struct cache_digest_map cache_digest_map;
cache_digest_map *cache_digest_map_new(void);
void cache_digest_map_put(cache_digest_map *m, const char *path, const unsigned char d[32]);
const unsigned char *cache_digest_map_get(const cache_digest_map *m, const char *path);
void cache_digest_map_free(cache_digest_map *m);

/* Parses a `files` listing into map (regular files only).  CBL_EINVAL. */
int cache_listing_parse(const char *text, size_t len, cache_digest_map *map, cbl_error **err);

/* Escapes '\\', '\n' and '\t' of a path for a listing line. */
void cache_escape(cbl_buf *b, const char *s);

/* Walks the tree at dirfd (an object or a stage: p0/ p1/ ... and nothing
 * else counted), removes empty directories, and builds the canonical
 * listing: depth first, names in strcmp order; one line per entry
 *   f <mode> <size> <mtime s.ns> <sha256> <path>
 *   l <mode> <size> <mtime s.ns> - <path>\t<target>
 *   d <mode> 0 0 - <path>
 * Digests come from map when present there (keyed by path), else are
 * computed.  The name is the SHA-256 of header + listing.  per_base_files /
 * per_base_bytes / per_base_hashed (nbases long, may be NULL) receive the
 * counts of p<i> (hashed: files whose digest had to be computed). */
int cache_listing_build(int dirfd, const char *header, const cache_digest_map *map, size_t nbases,
			cbl_buf *listing, char name_hex[65], uint64_t *per_base_files,
			uint64_t *per_base_bytes, uint64_t *per_base_hashed, cbl_error **err);

/* The header hashed before the listing: the format and, per base,
 * "base <i> <escaped base>" and its patterns. */
void cache_listing_header(const cache_base *bases, size_t n, cbl_buf *out);

/* Recomputes an object's name from its files (all digests recomputed) and
 * compares it with the directory's name.  CBL_EINVAL on mismatch. */
int cache_verify_object(cache_store *s, const char *object_hex, cbl_error **err);

/* ---------------------------------------------------------- file ops */

/* Copies one regular file (reflink where possible), mode and times; the
 * destination must not exist.  digest (may be NULL) receives the content's
 * SHA-256.  On failure the destination is removed.  CBL_EIO. */
int cache_copy_file(int sdir, const char *sname, int ddir, const char *dname, const struct stat *st,
		    unsigned char *digest, cbl_error **err);

/* Copies the tree at src over dst, merging: directories are created or kept,
 * files and symlinks replace what is there.  dst is dst_root when dst_rel is
 * NULL (created if missing, like its parents), else dst_rel beneath dst_root,
 * opened by cache_open_beneath (created if missing).  CBL_EIO. */
int cache_copy_merge(const char *src, const char *dst_root, const char *dst_rel, uint64_t *files,
		     uint64_t *bytes, cbl_error **err);

/* Opens the directory rel ("" = root) beneath root for reading: root as
 * given (the caller's own path, followed), then each component of rel
 * without following a symlink (ELOOP or ENOTDIR: a link the build made
 * cannot take a restore or a save out of its view).  create: missing
 * components are made (0755).  A descriptor, or -1 with errno. */
int cache_open_beneath(const char *root, const char *rel, bool create);

/* Directory entries except "." and "..", sorted (strcmp).  A missing
 * directory is an empty list when fd < 0. */
int cache_read_dir_sorted(int fd, cbl_strv *out, cbl_error **err);

/* ------------------------------------------------------------ store */

struct cache_store {
	char *dir;
	int dirfd;
	int objects_fd;
	int tmp_fd;
	char *objects;
	char *refs;
	char *tmp;
};

/* Random lowercase hex name of 2*nbytes chars (out holds 2*nbytes+1). */
void cache_random_hex(char *out, size_t nbytes);

/* Store lock (lock file at the top): shared or exclusive; nonblock -> -1
 * with EWOULDBLOCK when busy.  Returns the fd (close to release) or -1. */
int cache_store_lock(cache_store *s, bool exclusive, bool nonblock);

/* A fresh tmp/<random>/ dir with its `lock` held: *fd_out keeps it locked
 * (close to release).  *path_out: the dir (caller frees). */
int cache_tmp_create(cache_store *s, char **path_out, int *fd_out, cbl_error **err);
/* Removes tmp/ entries whose lock nobody holds. */
void cache_tmp_clean(cache_store *s);

/* Ref file name of a key (NULL = rolling): "default", "k-<%-encoded>" or
 * "h-<sha256>" when the encoding would be too long.  Caller frees. */
char *cache_ref_name(const char *key);

/* Reads a ref file: object hex, key (NULL rolling), created_us; the file's
 * mtime as last_used_us.  CBL_ENOENT / CBL_EINVAL. */
typedef struct cache_ref {
	char *name;
	char *object;
	char *key;
	char *build_id;
	int64_t created_us;
	int64_t last_used_us;
} cache_ref;
void cache_ref_release(cache_ref *r);
int cache_ref_read(const char *path, cache_ref *out, cbl_error **err);

/* Reads objects/<hex>/manifest.json (*out new reference).  CBL_ENOENT. */
int cache_object_manifest(cache_store *s, const char *hex, json_t **out, cbl_error **err);

/* Removes objects that no ref names and no live session uses.  Needs the
 * exclusive store lock: with nonblock it gives up when the store is busy.
 * *removed / *bytes (may be NULL) add what went. */
int cache_gc(cache_store *s, bool nonblock, size_t *removed, uint64_t *bytes, cbl_error **err);

/* Writes a file atomically and durably (temp, fsync, rename, fsync dir). */
int cache_write_durable(const char *dir, const char *name, const char *data, size_t len,
			cbl_error **err);


/* ------------------------------------------------------------ session */

typedef enum cache_restore_result {
	CACHE_R_NONE = 0,  /* cache_restore not called */
	CACHE_R_HIT,       /* exact key, or the rolling entry */
	CACHE_R_FALLBACK,  /* a fallback key matched a stored key */
	CACHE_R_MISS,
	CACHE_R_SKIPPED,   /* action: save */
	CACHE_R_FAILED,
} cache_restore_result;

typedef enum cache_save_result {
	CACHE_S_NONE = 0,
	CACHE_S_SAVED,
	CACHE_S_SKIPPED,
	CACHE_S_FAILED,
} cache_save_result;

typedef struct cache_base_state {
	char *lower_rel;          /* "p<M>" of this base in the restored object, or NULL */
	char *upper, *work;       /* MOUNT */
	char *lower;              /* MOUNT: the lower dir given to the runner */
	char *paths_joined;
	uint64_t restored_files, restored_bytes;
	int64_t restore_us;
	uint64_t saved_files, saved_bytes, changed;
	struct timespec restored_ctime; /* COPY: no restored file has a later ctime, and
					 * every later change has a later one */
	bool have_marker;
} cache_base_state;

struct cache_session {
	cache_store *store;
	char *scope, *key, *build_id, *src_dir, *src_view;
	cbl_strv fallback;
	spec_cache_action action;
	bool sandbox, durable, copy_in_source;
	cache_test_hook_fn hook;
	void *hook_payload;
	cache_base *bases;
	size_t nbases;
	cache_base_state *st;
	char version[65];
	char *dir;                /* tmp/<random> */
	int lockfd;
	char *refdir;             /* refs/<scope>/<version> */
	/* restore */
	cache_restore_result rres;
	char *hit_key;            /* the stored key that hit (NULL: rolling) */
	char *hit_object;
	char *restore_error;
	int64_t restore_us;
	cache_mount *mounts;
	size_t nmounts;
	/* save */
	cache_save_result sres;
	char *save_reason;
	char *save_error;
	char *saved_object;
	int64_t save_us;
	uint64_t changed;
};

static inline void cache_hook(const cache_session *s, const char *point)
{
	if (s->hook)
		s->hook(point, s->hook_payload);
}

#endif
