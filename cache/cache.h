/* cache/cache.h - CodeBuild's build cache, on the local disk.
 *
 * A cache store is a directory (default <state home>/cache, see
 * cache_default_dir):
 *
 *   objects/<sha256>/          one immutable snapshot (never changed once
 *       manifest.json          published): the paths list, per-base counts,
 *       files                  the canonical listing its name is hashed from,
 *       p0/ p1/ ...            one subtree per distinct static base directory
 *   refs/<scope>/<version>/    scope = project name or cacheNamespace,
 *       default                version = SHA-256 of the normalised paths list;
 *       k-<key, %-encoded>     each ref is a small JSON file naming an object,
 *       h-<sha256 of key>      replaced atomically (write temp + rename)
 *   tmp/<random>/              one per live session (flock'd `lock` file):
 *                              overlay upper/work dirs, the snapshot being
 *                              built; a dead session's dir is removed by the
 *                              next cache_store_open
 *   explain/<project>.json     what the last build of a project did
 *   lock                       store lock: shared while publishing or looking
 *                              up, exclusive while collecting garbage
 *
 * Paths (buildspec cache.paths) follow CodeBuild's artifact glob rules
 * (artifacts/artifacts.h): relative to CODEBUILD_SRC_DIR, or absolute
 * ("/root/.m2/" "**" "/" "*").  Each is split at its static base directory
 * (the components before the first one with a wildcard; a path without
 * wildcards names a directory, cached whole).  Paths sharing a base share a
 * subtree; only files (and symlinks, kept as symlinks) that match are cached.
 *
 * Keys: the caller passes the shell-evaluated `key` and `fallback-keys`.
 * Lookup within the same scope and version: the exact key, then each
 * fallback key as a prefix of a stored key, in order (the newest matching
 * entry wins); without a key, the one rolling entry of the scope.  A keyed
 * entry is immutable: saving under an existing key does nothing.
 *
 * Restore: with the sandbox, each base is an overlay mount (lower = the
 * snapshot's subtree, read-only; upper/work = per-session dirs on the
 * store's filesystem) that the runner mounts: constant time, whatever the
 * size.  Without the sandbox (and for bases an overlay cannot cover: the
 * source directory itself), the subtree is copied into place (reflink where
 * the filesystem can).
 *
 * Save: only what changed.  The overlay upper dirs are the change set (an
 * empty upper = nothing to do); the new snapshot is the old one hard-linked
 * plus the upper's files renamed in (whiteouts and opaque directories
 * applied).  Copied bases are compared with the snapshot they were restored
 * from (size, mtime, mode, and a ctime newer than the restore): unchanged
 * files are hard-linked, the rest copied.  The snapshot is built under tmp/,
 * synced, renamed into objects/ and only then does the ref flip (under a
 * per-ref flock held for the publish only).  A failed or killed save leaves
 * the previous snapshot and refs as they were.
 *
 * Errors follow util/error.h.  Nothing here prints or exits.
 * Thread safety: a store handle may be shared by sessions of one thread at a
 * time; distinct processes (and distinct handles) may use one store
 * concurrently -- that is what the locks are for.
 */
#ifndef CBL_CACHE_H
#define CBL_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec/spec.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/strv.h"

/* ------------------------------------------------------------------ store */

typedef struct cache_store cache_store;

/* <home>/cache (caller frees). */
char *cache_default_dir(const char *home);

/* Opens (creating it if needed) the store at dir and removes what dead
 * sessions left under tmp/.  CBL_EIO. */
int cache_store_open(cache_store **out, const char *dir, cbl_error **err);
const char *cache_store_dir(const cache_store *s);
void cache_store_free(cache_store *s); /* NULL is fine */

/* ---------------------------------------------------------------- session */

/* One build's use of the cache: lookup, restore, save, report. */
typedef struct cache_session cache_session;

/* Tests only: called at named points of a save ("stage-begin",
 * "stage-file", "staged", "synced", "object-published", "ref-written"). */
typedef void (*cache_test_hook_fn)(const char *point, void *payload);

typedef struct cache_session_opts {
	const char *scope;        /* project name or cacheNamespace: [A-Za-z0-9_-][A-Za-z0-9._-]*, <= 255 */
	const char *const *paths; /* cache.paths after the runner's expansion */
	size_t npaths;
	const char *key;          /* shell-evaluated cache.key; NULL or "" = the rolling entry */
	const char *const *fallback_keys; /* shell-evaluated; ignored without key */
	size_t nfallback_keys;
	spec_cache_action action; /* RESTORE: never saves; SAVE: never restores */
	const char *src_dir;      /* CODEBUILD_SRC_DIR as the build sees it (absolute) */
	const char *src_view;     /* where the runner reads and writes that directory
				   * (the sandbox's source view, possibly through a
				   * descriptor: /proc/self/fd/N); NULL = src_dir.
				   * Below it nothing is followed: a cached directory
				   * the build made a symlink is neither restored
				   * into nor saved from */
	bool sandbox;             /* the build runs in the sandbox: bases become
				   * overlay mounts, absolute paths are the build's
				   * own (never touched on the host) */
	bool copy_in_source;      /* with the sandbox: bases inside the source are
				   * copied into src_view rather than mounted, so
				   * that whoever reads src_view (artifact packaging)
				   * sees them; paths outside stay overlays */
	const char *build_id;     /* recorded in refs and explain; may be NULL */
	bool durable;             /* syncfs before publishing (default true) */
	cache_test_hook_fn test_hook;
	void *test_payload;
} cache_session_opts;

#define CACHE_SESSION_OPTS_INIT {.durable = true}

/* Validates the options, normalises the paths, computes the version and
 * creates the session's directory under tmp/.  The store must outlive the
 * session.  CBL_EINVAL: invalid scope, no paths ("no paths specified to be
 * cached"), a relative path that leaves the source ("..").  CBL_EIO. */
int cache_session_new(cache_session **out, cache_store *store, const cache_session_opts *o,
		      cbl_error **err);

/* SHA-256 (hex) of the normalised paths list: the cache version. */
const char *cache_session_version(const cache_session *s);

/* Finds the entry to restore and prepares it: for overlay bases, creates the
 * upper/work dirs and the mount list; copies the other bases into place
 * under src_view (or at their absolute path without the sandbox).  Call it
 * once the source is in place and before the sandbox starts.  A miss is not
 * an error.  On error (a warning for the build) the mount list is empty and
 * the build goes on without a cache.  action SAVE: finds nothing, still
 * prepares empty overlays (their content is what will be saved). */
int cache_restore(cache_session *s, cbl_error **err);

/* One overlay the runner must mount for the build, parents before children
 * (sorted by depth).  Strings are borrowed from the session.
 *   target       where the build sees the directory (absolute, in the
 *                build's view, e.g. /root/.m2 or <src_dir>/node_modules):
 *                mount it there in the sandbox's mount namespace.  The key
 *                is evaluated by the build's shell, so this usually happens
 *                in a running sandbox (a request to its init), not in the
 *                initial plan.
 *   view_target  the same directory under src_view when it lies inside the
 *                source, else NULL.  A mount made only inside the sandbox is
 *                not seen by whoever reads src_view (artifact packaging):
 *                mount there instead when the view is what the sandbox binds
 *                and it is mounted before that bind, or ask for copies of
 *                the source's paths (copy_in_source).
 *   lower        read-only lower layer (the snapshot's subtree, or an empty
 *                dir on a miss).  The target may already hold content in
 *                the build's view (the image's /root/.m2): the runner may
 *                add it as a second lower layer ("lowerdir=<lower>:<old>");
 *                what is saved is lower + upper only.
 *   upper, work  upperdir and workdir (same filesystem as the store).
 * Mount with the kernel's defaults (no redirect_dir, no metacopy: a save
 * refuses an upper that uses them); "userxattr" is fine. */
typedef struct cache_mount {
	const char *target;
	const char *view_target;
	const char *lower;
	const char *upper;
	const char *work;
	const char *paths;        /* the cache.paths entries of this base, ", "-joined */
} cache_mount;

/* The mounts prepared by cache_restore (NULL / 0 before, after an error, or
 * without the sandbox). */
const cache_mount *cache_session_mounts(const cache_session *s, size_t *n);

/* Saves the build's cached files.  Call it after the last command has run,
 * once the cache overlays are unmounted (sandbox ended, runner-namespace
 * mounts undone) but while src_view is still readable.  Returns 0 when saved
 * or skipped (see cache_session_log_lines for the reason: "action: restore",
 * "cache key already exists, not saved", "no changes since restore", "no
 * files matched the cache paths"); a negative code when the save failed
 * (ENOSPC included): the previous snapshot and refs are intact, the session's
 * temporary files are gone, and the build should get a warning, not fail. */
int cache_save(cache_session *s, cbl_error **err);

typedef enum cache_stage {
	CACHE_STAGE_RESTORE = 0,
	CACHE_STAGE_SAVE,
} cache_stage;

/* Appends the one-line-per-base summary of a stage for the build log,
 * without the "[Container] <time> " prefix, e.g.
 *   "Cache restore node_modules/ ** / *: hit on key npm-abc (1234 files, 56.7 MiB, overlay, 2 ms)"
 *   "Cache save /root/.m2/ ** / *: not saved: no changes since restore" */
void cache_session_log_lines(const cache_session *s, cache_stage stage, cbl_strv *out);

/* Writes explain/<project>.json: keys tried, hit / fallback / miss, per
 * base sizes, restore and save times, skip reasons.  CBL_EIO. */
int cache_explain_write(const cache_session *s, const char *project, cbl_error **err);

/* Removes the session's temporary files (and so its upper dirs: unmount
 * first).  NULL is fine. */
void cache_session_free(cache_session *s);

/* ---------------------------------------------------------------- explain */

/* Loads explain/<project>.json (*out: a new reference).  CBL_ENOENT when no
 * build of that project used the cache. */
int cache_explain_load(cache_store *s, const char *project, json_t **out, cbl_error **err);
/* Human-readable text of a record. */
void cache_explain_format(const json_t *rec, cbl_buf *out);

/* ------------------------------------------------------------ ls / prune */

typedef struct cache_entry_info {
	char *scope;
	char *version;       /* hex */
	char *key;           /* NULL = the rolling entry */
	char *object;        /* hex */
	char *build_id;      /* the build that saved it; may be NULL */
	int64_t created_us;
	int64_t last_used_us; /* last restore (or creation) */
	uint64_t files;
	uint64_t bytes;      /* sum of the files' sizes */
	cbl_strv paths;
} cache_entry_info;

typedef struct cache_entry_list {
	cache_entry_info *items; /* sorted by scope, then version, then key (rolling first) */
	size_t n;
} cache_entry_list;

int cache_list(cache_store *s, cache_entry_list **out, cbl_error **err);
void cache_entry_list_free(cache_entry_list *l);

typedef struct cache_prune_opts {
	int64_t older_than_ms;  /* > 0: drop entries not used for that long */
	uint64_t max_bytes;     /* with has_max_bytes: drop least recently used entries
				 * until the objects still referenced add up to at most
				 * this many bytes (apparent size) */
	bool has_max_bytes;
	const char *scope;      /* non-NULL: only the entries of this scope (a
				 * project name) are considered */
	bool all;               /* drop every entry considered (InvalidateProjectCache) */
} cache_prune_opts;

typedef struct cache_prune_result {
	size_t refs_removed;
	size_t objects_removed;
	uint64_t bytes_removed;  /* apparent size of the objects removed (files
				  * shared with kept objects by hard links stay) */
} cache_prune_result;

/* Drops entries by age / size, then every object no entry names (and no live
 * session uses).  CBL_EIO. */
int cache_prune(cache_store *s, const cache_prune_opts *o, cache_prune_result *out, cbl_error **err);

/* Appends "12.3 MiB" style sizes (binary units; "512 B" below 1 KiB). */
void cache_format_size(cbl_buf *b, uint64_t bytes);

/* ------------------------------------------------------------ checkpoints
 * Phase checkpoints (cache/checkpoint.c): the state a build had at the end
 * of a phase, kept so that a later run starts the next phase on it.
 *   checkpoints/<scope>/<key>/<id>/   immutable once published (built under
 *       meta.json  layer/  env.sh  dir.txt   tmp/, renamed into place)
 * layer/ is the source tree's changes, an overlay upper layer (whiteouts and
 * opaque directories kept): mount it as a lower layer above the working
 * tree.  root-layer/ (the root overlay's changes) and private/<name>/ (the
 * contents of a private tmpfs directory such as /tmp, /root, /home) when
 * kept.  The newest checkpoint of a key wins. */

/* The key of a checkpoint from named parts (image, environment, each
 * phase's commands, ...): SHA-256 of each, then of them all.  *parts_out
 * (new reference) maps each name to its hash, kept in meta.json so that a
 * miss can say which part differs. */
void cache_checkpoint_key(const char *const *names, const char *const *values, size_t n, json_t **parts_out,
			  char key[65]);

typedef struct cache_checkpoint_stage cache_checkpoint_stage;

typedef struct cache_checkpoint_opts {
	const char *scope;       /* project name */
	const char *key;         /* cache_checkpoint_key's */
	const char *phase;       /* the phase it ends, e.g. "PRE_BUILD" */
	const char *build_id;
	const char *src_upper;   /* the source overlay's upper layer (a host path), or NULL */
	const char *root_upper;  /* the root overlay's upper layer (a host path: what the
				  * build changed outside its source), or NULL */
	const char *src_inner;   /* where the build saw its source */
	const char *env_sh, *dir_txt; /* the carried shell state */
	json_t *parts;           /* borrowed */
	const char *taken_as;    /* who took it, kept in meta.json as "takenAs" (e.g. "root",
				  * "user"); NULL = "root" */
	const char *root_format; /* root-layer/'s format, kept in meta.json as
				  * "rootLayerFormat": "fuse-overlayfs" (its whiteouts,
				  * opaque markers and owners as fuse-overlayfs writes
				  * them), NULL = the kernel's overlay */
	/* With fill, the layers come from the caller instead of src_upper and
	 * root_upper: called once with the staging directory, it gets each
	 * part's directory with cache_checkpoint_stage_dir and fills it (e.g.
	 * with sandbox_copy_out), then counts what it copied.  A negative
	 * return (with *err set) abandons the checkpoint. */
	int (*fill)(void *arg, cache_checkpoint_stage *stage, cbl_error **err);
	void *fill_arg;
	const char *private_root; /* a directory (the sandbox's root as the runner sees it:
				  * /proc/<init>/root), or NULL: its private_paths[i]
				  * (relative, e.g. "var/tmp") kept as
				  * private/<private_names[i]>/ (read beneath it, no
				  * symlink followed, the mounts under them but tmpfs
				  * ones left out; a missing or empty one is not
				  * kept) */
	const char *const *private_paths;
	const char *const *private_names;
	size_t n_private;
	/* Without fill: a restored build's older layers (an earlier
	 * checkpoint's layer/ and root-layer/ that were read-only below
	 * src_upper and root_upper), or NULL: flattened under the copies
	 * (sandbox_layer_merge), so that the checkpoint holds what the build
	 * saw.  Never changed (hard links to their files). */
	const char *base_layer, *base_root_layer;
} cache_checkpoint_opts;

/* The parts of a checkpoint a fill callback may create. */
typedef enum cache_checkpoint_part {
	CACHE_CHECKPOINT_LAYER,      /* layer/: the source tree's changes (always there, empty) */
	CACHE_CHECKPOINT_ROOT_LAYER, /* root-layer/: the root overlay's changes */
	CACHE_CHECKPOINT_PRIVATE,    /* private/<name>/: a private directory's content (name: one
				      * path component, e.g. "tmp") */
} cache_checkpoint_part;

/* A part's directory in the staging checkpoint (created, 0755, but layer/),
 * opened: *fd_out (the caller closes it).  CBL_EINVAL (a bad name), CBL_EIO. */
int cache_checkpoint_stage_dir(cache_checkpoint_stage *stage, cache_checkpoint_part part, const char *name,
			       int *fd_out, cbl_error **err);
/* Adds to the files and bytes meta.json records. */
void cache_checkpoint_stage_count(cache_checkpoint_stage *stage, uint64_t files, uint64_t bytes);

/* Copies and publishes a checkpoint.  CBL_EINVAL (scope or key not a
 * name), CBL_EIO. */
int cache_checkpoint_save(cache_store *s, const cache_checkpoint_opts *o, cbl_error **err);

/* Copies the upper layer src (a checkpoint's root-layer/) to dest (created,
 * 0755), whiteouts and opaque directories kept, beneath descriptors.
 * CBL_EIO. */
int cache_checkpoint_copy_layer(const char *src, const char *dest, cbl_error **err);

/* A checkpoint's spare: a writable copy of its root-layer/ (checkpoints/
 * <scope>/<key>/.spare-<id>, beside it: the checkpoint itself never
 * changes), which one restored build takes as its root overlay's upper
 * layer instead of stacking the checkpoint's layer read-only (which
 * overlayfs refuses on the filesystem of /: "overlapping lowerdir path") or
 * copying it at its start.  Listed with its checkpoint's size, pruned with
 * it.
 *
 * cache_checkpoint_make_spare: made (a copy in tmp/, synced, then renamed
 * into place: a spare is whole or absent) unless one is there; meant for a
 * detached low-priority process.  0 when one is ready; CBL_ENOENT when
 * ckpt_dir (a directory cache_checkpoint_find gave) has no root-layer/ or is
 * gone; CBL_EINVAL when ckpt_dir is not a checkpoint of s; CBL_EIO. */
int cache_checkpoint_make_spare(cache_store *s, const char *ckpt_dir, cbl_error **err);

/* Claims the spare of ckpt_dir with one rename (of two builds claiming it,
 * one gets it): *dir_out (caller frees) a fresh directory of the store's
 * tmp/ holding it as upper/ and an empty work/ (both on the store's
 * filesystem), *lock_out its lock: keep it open while the directory is in
 * use (a store opened meanwhile leaves it alone), then remove the
 * directory and close the lock.  CBL_ENOENT when no spare is ready (none
 * made yet, or claimed), CBL_EINVAL, CBL_EIO. */
int cache_checkpoint_claim_spare(cache_store *s, const char *ckpt_dir, char **dir_out, int *lock_out,
				 cbl_error **err);

/* The newest checkpoint of scope and key: *dir_out its directory (caller
 * frees), *meta_out its meta.json (new reference); marks it used now.
 * CBL_ENOENT when there is none. */
int cache_checkpoint_find(cache_store *s, const char *scope, const char *key, char **dir_out, json_t **meta_out,
			  cbl_error **err);

typedef struct cache_checkpoint_info {
	char *scope, *key, *id, *phase, *build_id;
	int64_t created_us, last_used_us;
	uint64_t files, bytes;   /* of its layers, its spare's included */
	uint64_t spare_bytes;    /* of its spare (0: none ready) */
	bool newest;             /* the newest of its key (the one restored) */
} cache_checkpoint_info;

/* Every checkpoint, by scope, key, then age.  CBL_EIO. */
int cache_checkpoint_list(cache_store *s, cache_checkpoint_info **out, size_t *n, cbl_error **err);
void cache_checkpoint_list_free(cache_checkpoint_info *l, size_t n);

/* Removes the checkpoints a newer one of the same key replaced, and with
 * older_than_ms > 0 those not used for that long.  *removed and *bytes
 * (may be NULL) say what went. */
int cache_checkpoint_prune(cache_store *s, int64_t older_than_ms, size_t *removed, uint64_t *bytes,
			   cbl_error **err);

/* ------------------------------------------------------------ hash-files */

/* codebuild-hash-files: the SHA-256 over the files that `patterns` select
 * under dir (artifact glob rules; symlinks to files inside dir are followed,
 * others skipped), in byte order of their paths relative to dir.  The exact
 * input is, for each file:
 *     <relative path> NUL <lowercase hex SHA-256 of the content> LF
 * hex receives the lowercase hex digest; *nfiles the number of files.  When
 * nothing matches: 0, *nfiles = 0 and hex = "".  CBL_EIO, CBL_ENOENT (dir). */
int cache_hash_files(const char *dir, const char *const *patterns, size_t npatterns, char hex[65],
		     size_t *nfiles, cbl_error **err);

#endif
