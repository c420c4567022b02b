/* runner/source_cache.h - the source cache's per-repository object stores
 * (LOCAL_SOURCE_CACHE).  Internal to runner/: source_git.c is the only
 * user; the contract users see is in runner/source.h ("Source cache").
 *
 * Errors follow util/error.h; nothing here prints.  A handle belongs to one
 * thread; distinct processes share a store through its lock file.  libgit2
 * must be initialised (git_libgit2_init) around every call.
 */
#ifndef RUNNER_SOURCE_CACHE_H
#define RUNNER_SOURCE_CACHE_H

#include <git2.h>
#include <stdbool.h>

#include "util/error.h"
#include "util/strv.h"

typedef struct runner_srccache runner_srccache;

/* Polled while waiting for a lock: true gives up (the cache is then not
 * used, or not published to). */
typedef bool (*runner_srccache_stop_fn)(void *payload);

/* The store's name for url: the SHA-256 (hex) of the URL without its
 * credentials (scheme and host lower-cased, trailing slashes removed).
 * Caller frees. */
char *runner_srccache_key(const char *url);

/* Opens the store of url under root (both created when missing) and holds
 * its lock shared until runner_srccache_unlock.  A store that fails its
 * checks is discarded and recreated empty; *rebuilt then says why (caller
 * frees; NULL otherwise).  Errors: the cache cannot be used (CBL_EIO),
 * CBL_ESTOPPED when stop said so while waiting. */
int runner_srccache_open(runner_srccache **out, const char *root, const char *url,
			 runner_srccache_stop_fn stop, void *payload, char **rebuilt, cbl_error **err);

/* The store's directory (borrowed). */
const char *runner_srccache_dir(const runner_srccache *sc);

/* True when the store holds no pack (nothing to seed). */
bool runner_srccache_empty(const runner_srccache *sc);

/* True when the store records a shallow boundary. */
bool runner_srccache_shallow(const runner_srccache *sc);

/* Under the shared lock: makes the store's objects part of repo, a
 * repository nothing was fetched into yet: its packs are hard-linked (copied
 * across filesystems) into repo's objects/pack, its shallow boundary becomes
 * repo's, and the commits of its refs are named refs/cbl-have/NNNNNN in
 * repo's packed-refs so that a fetch offers them as "have"s.  tips_shallow
 * (for a fetch that deepens): 16 commits in all, the refs' and their newest
 * ancestors, with shallow roots where that set ends (see source_cache.c).
 * *objects: the objects the linked packs hold; *shallow: repo got a shallow
 * boundary.  Errors: CBL_EIO (the store's files or objects cannot be read). */
int runner_srccache_seed(runner_srccache *sc, git_repository *repo, bool tips_shallow, unsigned *objects,
			 bool *shallow, cbl_error **err);

/* Releases the shared lock (idempotent). */
void runner_srccache_unlock(runner_srccache *sc);

/* Removes the refs/cbl-have/ names runner_srccache_seed gave repo. */
int runner_srccache_drop_haves(git_repository *repo, cbl_error **err);

/* Takes the lock exclusive and adds what repo fetched: every pack of repo
 * the store lacks, repo's refs (remote-tracking refs as branches, tags,
 * other refs/...; refs/cbl/last = target), and the shallow boundary
 * `fetched_shallow` (repo's shallow file right after the fetch, before any
 * cut: "" or hex lines), kept only where a parent is really missing. */
int runner_srccache_publish(runner_srccache *sc, git_repository *repo, const char *fetched_shallow,
			    const git_oid *target, runner_srccache_stop_fn stop, void *payload, cbl_error **err);

/* Discards the store when it is still the one this handle opened (a store
 * that made a fetch fail).  Best effort. */
void runner_srccache_discard(runner_srccache *sc);

void runner_srccache_free(runner_srccache *sc);

/* The history of tip (a tag is peeled) within `depth` commits (0 = all),
 * walked breadth-first over the commits' own parent lines (no shallow
 * grafts): returns 1 when every commit closer than depth-1 has all its
 * parents in odb, and then adds to boundary (hex) the commits at distance
 * depth-1 that have parents -- the shallow file of a depth-`depth` clone;
 * 0 when tip or a parent inside the window is missing; <0 (err set) when an
 * object cannot be read. */
int runner_srccache_window(git_odb *odb, const git_oid *tip, int depth, cbl_strv *boundary, git_oid *commit_out,
			   cbl_error **err);

/* A set of object ids (open addressing), for history walks. */
typedef struct runner_oidset {
	git_oid *v;
	unsigned char *used;
	size_t cap, n;
} runner_oidset;
/* Adds o; true when it was not in the set yet. */
bool runner_oidset_add(runner_oidset *s, const git_oid *o);
bool runner_oidset_has(const runner_oidset *s, const git_oid *o);
void runner_oidset_release(runner_oidset *s);

/* `cache ls` / `cache prune` for the stores under root (<cache dir>/git):
 * one line per store ("<key>\t<bytes>\t<last change, epoch us>"), and the
 * removal of the stores unchanged for older_than_ms (0 = every store) that
 * no build holds (their lock is taken without waiting; a busy store stays).
 * A missing root is an empty list. */
int runner_srccache_list(const char *root, cbl_strv *out, cbl_error **err);
int runner_srccache_prune(const char *root, int64_t older_than_ms, size_t *removed, uint64_t *bytes,
			  cbl_error **err);

#endif
