/* source/source.h - the source module's contract: fetching a build's source
 * from a git repository (libgit2), and the source cache's maintenance.
 * runner/ and cli/ include this header only; source/source_internal.h is
 * the module's own (and its unit tests').
 *
 * source_git_fetch() produces what CodeBuild's DOWNLOAD_SOURCE phase
 * produces for a git source: a working tree of one commit, by default a
 * shallow single-ref clone (git_clone_depth 1), with HEAD detached at the
 * commit, optionally with submodules and tags.
 *
 * Thread safety: calls are independent (no globals; libgit2 is initialised and
 * shut down, reference-counted, inside each call), so several builds may fetch
 * concurrently into different destinations.  A call may start threads of its
 * own (the checkout's file creation, a local source's copy), all joined
 * before it returns; they call no callback.  The call reads HOME,
 * XDG_CONFIG_HOME and SSH_AUTH_SOCK from the environment; do not setenv()
 * concurrently.  The progress callback runs on the calling thread.
 *
 * Errors follow util/error.h (last argument, negative CBL_E* code); nothing
 * here prints or exits.  Ownership: strings returned through `char **` or
 * as `char *` belong to the caller (free()); strings passed in are
 * borrowed for the call.
 */
#ifndef SOURCE_SOURCE_H
#define SOURCE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/strv.h"

typedef struct source_git_opts {
	/* Required.  https://, http://, ssh://, git://, scp-like user@host:path,
	 * file:// or a local path (a work tree or a bare repository). */
	const char *url;
	/* What to check out (CodeBuild's sourceVersion):
	 *   NULL or ""          the remote's HEAD (its default branch)
	 *   "main"              a branch (refs/heads/main), else a tag (refs/tags/main)
	 *   "refs/..."          that exact ref, e.g. refs/pull/7/head, refs/tags/v1
	 *   "pr/7"              = refs/pull/7/head (GitHub pull request)
	 *   full or abbreviated commit SHA (7..40 hex digits) when no ref of that
	 *                       name exists
	 *   "branch^{SHA}"      CodeBuild's form: check out SHA, which must be
	 *                       reachable from branch (error otherwise); "pr/7^{SHA}"
	 *                       the same on refs/pull/7/head
	 * HEAD is always detached at the resolved commit; for a branch the local
	 * branch is also created with its upstream set (origin/<branch>). */
	const char *version;
	/* History depth: 1 = CodeBuild's default git_clone_depth; 0 = full.
	 * `git log` in the result shows exactly `depth` commits when the history
	 * is longer.  A local source (a path, file://) is read directly: only
	 * the objects of that window are read and copied (an object the source
	 * lacks outside it does not matter; one inside it is an error), as
	 * `git clone --depth N file://...` gets them (source/local.c). */
	int depth;
	/* Fetch and check out submodules recursively, at their recorded commits,
	 * with the same depth (CodeBuild's fetchSubmodules). */
	bool submodules;
	/* Fetch all tags too (default off; a tag asked for as version is always
	 * fetched). */
	bool tags;
	/* Human progress lines without a newline ("Receiving objects: 45%
	 * (450/1000), 1.2 MiB | 3.4 MiB/s"), at most one per 100 ms per phase plus
	 * a final ", done." line.  May be NULL.  The caller decides whether to
	 * show them (e.g. only on a TTY).  `line` is borrowed for the call. */
	void (*progress)(const char *line, void *payload);
	/* Polled while data arrives (and between steps): returning true stops
	 * the fetch, which then fails with CBL_ESTOPPED ("fetch cancelled") and
	 * leaves nothing behind.  May be NULL. */
	bool (*cancelled)(void *payload);
	/* CLOCK_MONOTONIC microseconds (cbl_mono_us) after which connecting or
	 * waiting for the server gives up; 0 = the system's defaults.  (libgit2's
	 * timeouts are process-wide: one fetch at a time per process.) */
	int64_t deadline_mono_us;
	void *payload;
	/* LOCAL_SOURCE_CACHE: a directory of per-repository object stores
	 * (created if missing), e.g. <cache dir>/git; NULL = no cache.  See
	 * "Source cache" below.  Local sources (paths, file://) never use it. */
	const char *object_cache_dir;
	/* Filled in when not NULL (on failure too): what came from the server
	 * and what the cache did. */
	struct source_git_stats *stats;
} source_git_opts;

#define SOURCE_GIT_OPTS_INIT {NULL, NULL, 1, false, false, NULL, NULL}

/* What the source cache did for the top-level repository. */
typedef enum source_cache_state {
	SOURCE_CACHE_OFF = 0, /* no object_cache_dir */
	SOURCE_CACHE_USED,    /* its objects were offered to the server ("have"s) */
	SOURCE_CACHE_EMPTY,   /* nothing cached yet for this URL: filled by this fetch */
	SOURCE_CACHE_REBUILT, /* unusable (corrupt): discarded, refilled by this fetch */
	SOURCE_CACHE_SKIPPED, /* not used (note says why); the fetch went on without it */
} source_cache_state;

typedef struct source_git_stats {
	unsigned received_objects; /* objects the server sent, submodules included */
	uint64_t received_bytes;   /* pack bytes the server sent */
	unsigned cached_objects;   /* objects the cache held for this fetch (0 without) */
	source_cache_state cache;
	char note[160];            /* why SKIPPED / REBUILT; "" otherwise */
	bool local;                /* SKIPPED for a local repository: the objects were copied from
				    * it directly (received_* say what was copied) */
} source_git_stats;

/* True for SSH URLs (ssh://, scp-like user@host:path): a depth-limited fetch
 * over SSH downloads the whole history and cuts it (see source/git.c). */
bool source_git_is_ssh(const char *url);

/* Fetches o->url at o->version into dest_dir, which must not exist or be an
 * empty directory (its parent must exist).  The work happens in a sibling
 * "<dest_dir>.tmp.<pid>.XXXXXX" that is renamed into place only when
 * everything (fetch, checkout, submodules) succeeded and removed otherwise, so
 * on failure dest_dir is left as it was (absent or empty).
 *
 * resolved_sha_out (may be NULL): on success, the checked-out commit's full
 * hex SHA; the caller frees it.
 *
 * Credentials, tried once each per connection (then "authentication failed"):
 * user:password embedded in the URL, then the `git credential-store` files
 * (~/.git-credentials, then ${XDG_CONFIG_HOME:-~/.config}/git/credentials;
 * first line whose protocol and host[:port], and user when the URL names
 * one, match - paths are ignored like git's default credential.useHttpPath),
 * and for ssh the ssh-agent.  The user's ~/.gitconfig is honoured as libgit2
 * does (url.<base>.insteadOf, http.sslVerify, proxies).
 *
 * Errors (messages never contain a URL's password; it is shown as ***):
 *   CBL_EINVAL  bad options; dest_dir not empty or not a directory;
 *               "authentication failed for URL" (HTTP 401 after every
 *               credential source was tried once, ssh auth failure);
 *               "commit prefix X is ambiguous in URL"
 *   CBL_ENOENT  "repository not found: URL" (HTTP 404, no repository at a
 *               local path);
 *               "reference not found: refs/heads/X in URL" (no branch or tag
 *               of that name; the message names the branch ref, or the
 *               exact ref asked for: refs/pull/7/head for pr/7);
 *               "commit X not found in URL";
 *               "commit X is not on branch B in URL" (branch^{SHA});
 *               "repository is empty: URL"
 *   CBL_EIO     "cannot reach URL: <libgit2 message>" (connection refused,
 *               DNS failure, TLS failure); other fetch, checkout and
 *               filesystem failures ("git fetch from URL failed: ...");
 *               "the source repository URL lacks object X (needed for V at
 *               depth N)" (a local source missing an object of the window)
 *   CBL_ESTOPPED  o->cancelled said so ("fetch cancelled")
 * Submodule failures are wrapped as "submodule 'path': ...".
 */
int source_git_fetch(const source_git_opts *o, const char *dest_dir, char **resolved_sha_out,
		     cbl_error **err);

/* Source cache (CodeBuild's LOCAL_SOURCE_CACHE), with o->object_cache_dir:
 *
 * Each remote repository (and each submodule) has a bare repository of its
 * own, <object_cache_dir>/<sha256 of the URL without credentials>/, holding
 * the packs earlier fetches received, a packed-refs file naming the commits
 * they fetched, and the shallow boundary of what it holds.  A fetch
 *   1. hard-links (or copies) the store's packs into the new clone and names
 *      their commits under refs/cbl-have/ there, so libgit2 offers them to
 *      the server as "have"s and only what is new is sent (a fetch with a
 *      depth offers the newest 16 commits: see source/cache.c); the store's
 *      shallow boundary goes along, so a shallow fetch deepens correctly;
 *   2. fetches as without the cache, removes refs/cbl-have/ and writes the
 *      clone's own shallow boundary: exactly `depth` commits, checked
 *      against the objects actually present;
 *   3. publishes the packs it received into the store (each file renamed
 *      into place, the .idx last) and then the refs and the boundary; past
 *      32 packs the store is repacked as one.
 * The clone shares no file that can change: packs are immutable and linked,
 * never referenced through objects/info/alternates, so deleting, pruning or
 * rebuilding the store never breaks a finished clone.
 *
 * Locks: <sha>.lock, shared while the store is read (step 1), exclusive
 * while it is created, published to (step 3) or discarded; never held while
 * talking to the server.  A killed fetch leaves at most an unused pack or a
 * boundary that is too conservative.  A store that fails its checks (pack and
 * index trailers, the files' syntax), or a fetch that fails for local
 * reasons while the store was used, discards the store and the fetch runs
 * once more with an empty one: a broken store never fails a build. */

/* One agent line for the log: "Source cache: ...", from o->stats after a
 * fetch with object_cache_dir.  Caller frees. */
char *source_git_cache_summary(const source_git_stats *s);

/* `cache ls` / `cache prune` for the stores under root (<cache dir>/git):
 * one line per store appended to out ("<key>\t<bytes>\t<last change, epoch
 * us>"), and the removal of the stores unchanged for older_than_ms (0 =
 * every store) that no build holds (their lock is taken without waiting; a
 * busy store stays), adding to *removed and *bytes.  A missing root is an
 * empty list.  Errors: CBL_EIO (root cannot be read).  Safe to call while
 * builds use the stores (the locks above). */
int source_cache_list(const char *root, cbl_strv *out, cbl_error **err);
int source_cache_prune(const char *root, int64_t older_than_ms, size_t *removed, uint64_t *bytes,
		       cbl_error **err);

/* ------------------------------------------------------ local trees --- */

/* What git status says of a local working tree: what a push would carry
 * (tracked files with their changes, untracked files that are not ignored)
 * and what it would not (ignored files). */
typedef struct source_worktree {
	size_t untracked;  /* untracked files that are not ignored */
	size_t modified;   /* tracked files changed, deleted or retyped in the tree */
	cbl_strv ignored;  /* with_ignored: the ignored paths, relative, '/'-separated,
			      sorted by strcmp; an ignored directory is one entry (its
			      content is never read) */
} source_worktree;

#define SOURCE_WORKTREE_INIT {0, 0, CBL_STRV_INIT}

/* Reads dir's status (dir must be the top of the working tree; submodules
 * are not looked into).  *out must be SOURCE_WORKTREE_INIT; release it with
 * source_worktree_release, on failure too.  Errors: CBL_ENOENT (not the top
 * of a working tree; libgit2 is not even loaded when dir has no .git),
 * CBL_EIO (status failed). */
int source_worktree_status(source_worktree *out, const char *dir, bool with_ignored, cbl_error **err);
void source_worktree_release(source_worktree *w);

/* Hides paths (relative to lower, as above) from an overlay whose lower
 * layer is lower, before it is mounted: one whiteout each in upper (a
 * directory's too: it hides the whole directory), with upper's parent
 * directories given lower's mode, owner (when it can) and times.  A path
 * whose parent is not a directory of lower is skipped.  Works as root and
 * in a user namespace (Linux >= 5.8).  Errors: CBL_EIO. */
int source_whiteouts(const char *lower, const char *upper, const char *const *paths, cbl_error **err);


/* ------------------------------------------------------ history --- */

/* What a webhook event would say of a repository's history, read from a
 * local repository (a working tree or a bare one):
 * head_rev: the event's head (a ref, a short or full id; NULL = HEAD);
 * base_rev: a pull request's base (NULL = a push: the head's first parent).
 * Fills the head commit's id and message, the previous commit (the push's
 * parent, or the merge base of head and base for a pull request) and the
 * paths changed between that commit and the head (as the provider lists them
 * for the event: a rename is its new path), sorted.  Errors: CBL_ENOENT (not
 * a repository, a revision it lacks), CBL_EIO. */
typedef struct source_history {
	char *head_commit;
	char *message;
	char *prev_commit;   /* NULL when the head has no parent */
	cbl_strv changed;
} source_history;

#define SOURCE_HISTORY_INIT {NULL, NULL, NULL, CBL_STRV_INIT}

int source_history_read(source_history *out, const char *repo_dir, const char *head_rev, const char *base_rev,
			cbl_error **err);
void source_history_release(source_history *h);

/* Whether commit (a full id) is on a remote-tracking branch of the
 * repository at repo_dir (it was pushed): 1 yes (*remote_ref = the first
 * such ref, caller frees), 0 no, <0 error (CBL_ENOENT: not a repository). */
int source_commit_pushed(const char *repo_dir, const char *commit, char **remote_ref, cbl_error **err);

#endif
