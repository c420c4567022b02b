/* source/source_internal.h - the source module's own interfaces: git URLs
 * and credential-store files (url.c), the source cache's per-repository
 * object stores (cache.c), shallow boundaries, the depth window and the
 * object-id set (shallow.c).  Used by the module's own files and its unit
 * tests; everyone else includes source/source.h, whose "Source cache"
 * section is the contract users see.
 *
 * Errors follow util/error.h; nothing here prints.  Ownership: a `char *`
 * returned is the caller's (free()); the structs below own their arrays
 * (release them); a store handle is freed with source_cache_free.
 * Thread safety: no globals; a store handle or a struct belongs to one
 * thread at a time; distinct processes share a store through its lock
 * file.  The functions taking libgit2 objects need libgit2 initialised
 * (git_libgit2_init) around every call.
 */
#ifndef SOURCE_SOURCE_INTERNAL_H
#define SOURCE_SOURCE_INTERNAL_H

#include <git2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source/source.h"
#include "util/error.h"

/* --------------------------------------------------------------- URLs --- */

/* A URL "scheme://[user[:pass]@]host[:port][/path]" in parts (owned; release
 * with source_url_release). */
typedef struct source_url {
	char *scheme; /* lower-case */
	char *user;   /* percent-decoded; NULL if none */
	char *pass;   /* percent-decoded; NULL if none */
	char *host;   /* host[:port], lower-case */
	char *path;   /* "" when none */
} source_url;

/* 0, or -1 when s has no scheme:// (scp-like, a local path); *u is then
 * empty (releasing it is harmless). */
int source_url_parse(source_url *u, const char *s);
void source_url_release(source_url *u);
bool source_url_scheme_is_http(const char *scheme);
/* The URL for messages: a password (and for http(s), where a token is often
 * given as the user name, the whole user part) becomes "***".  Caller frees. */
char *source_url_display(const char *url);
/* A path or file:// (read directly: source/local.c). */
bool source_url_is_local(const char *url);
/* The directory a local source names: a file:// URL's path (file:///p or
 * file://localhost/p, percent-decoded, as libgit2 reads it), or a path made
 * absolute (like git, "path" may name "path.git").  Returns 0 (*out: caller
 * frees), or -1 (*out NULL): a path that does not exist, a file:// URL that
 * names another host or no absolute path. */
int source_url_local_path(const char *url, char **out);
/* ssh://, git+ssh://, ssh+git:// or scp-like [user@]host:path. */
bool source_url_is_ssh(const char *url);

/* The `git credential-store` files (~/.git-credentials, then
 * ${XDG_CONFIG_HOME:-~/.config}/git/credentials): the first line whose
 * scheme and host[:port], and want_user when not NULL or "", match want
 * (paths are ignored, like git's default credential.useHttpPath).  Returns
 * 1 and sets *out, 0 for no match, <0 on a libgit2 error.  Reads HOME and
 * XDG_CONFIG_HOME. */
int source_url_credential(git_credential **out, const source_url *want, const char *want_user);

/* ---------------------------------------------------------- refs (refs.c) --- */

/* The shortest abbreviated commit id accepted as a source version. */
#define SOURCE_MIN_ABBREV 7

/* A repository's refs as a fetch sees them: what a server advertises, or
 * what a local repository holds.  Zero-initialised ({0}) is empty; owns its
 * strings; release with source_refs_release. */
typedef struct source_ref {
	char *name; /* "refs/heads/main" */
	git_oid oid;
} source_ref;

typedef struct source_refs {
	source_ref *v;
	size_t n, cap;
	char *default_branch; /* what HEAD points at ("refs/heads/main") or NULL */
	bool has_head;        /* HEAD names a commit: head */
	git_oid head;
} source_refs;

void source_refs_release(source_refs *a);
void source_refs_add(source_refs *a, const char *name, const git_oid *oid);
/* The ref of that exact name, or NULL (borrowed from a). */
const source_ref *source_refs_find(const source_refs *a, const char *name);
/* s is min..max hex digits. */
bool source_is_hex(const char *s, size_t min, size_t max);

/* What a source version (source_git_opts.version) asks for. */
typedef enum source_plan_kind {
	SOURCE_PLAN_BRANCH, /* ref = refs/heads/<branch> */
	SOURCE_PLAN_TAG,    /* ref = refs/tags/<name> */
	SOURCE_PLAN_REF,    /* ref = any other refs/... (refs/pull/7/head) */
	SOURCE_PLAN_COMMIT, /* sha; with branch ("branch^{SHA}"): ref = refs/heads/<branch> */
} source_plan_kind;

typedef struct source_plan {
	source_plan_kind kind;
	char *ref;         /* the ref to fetch; NULL for a bare commit */
	char *branch;      /* short name: SOURCE_PLAN_BRANCH, or SOURCE_PLAN_COMMIT from "branch^{SHA}" */
	char *sha;         /* SOURCE_PLAN_COMMIT: the commit, lower-case hex, maybe abbreviated */
	bool default_head; /* version was empty: also set refs/remotes/origin/HEAD */
} source_plan;

void source_plan_release(source_plan *p);
/* Resolves version against refs (see source_git_opts.version): a branch
 * before a tag of the same name, then a commit id.  disp: the URL for
 * messages.  Errors: CBL_ENOENT ("reference not found: REF in URL",
 * "repository is empty: URL"), CBL_EINVAL (a malformed branch^{SHA}). */
int source_plan_resolve(const source_refs *refs, const char *version, const char *disp, source_plan *p,
			cbl_error **err);

/* ------------------------------------------------------ object-id set --- */

/* A set of object ids (open addressing), for history walks.  Zero-
 * initialised ({0}) is empty; release with source_oidset_release. */
typedef struct source_oidset {
	git_oid *v;
	unsigned char *used;
	size_t cap, n;
} source_oidset;
/* Adds o; true when it was not in the set yet. */
bool source_oidset_add(source_oidset *s, const git_oid *o);
bool source_oidset_has(const source_oidset *s, const git_oid *o);
void source_oidset_release(source_oidset *s);

/* A list of object ids in the order added.  Zero-initialised ({0}) is
 * empty; release with source_oidlist_release. */
typedef struct source_oidlist {
	git_oid *v;
	size_t n, cap;
} source_oidlist;
void source_oidlist_add(source_oidlist *l, const git_oid *o);
void source_oidlist_release(source_oidlist *l);

/* ------------------------------------------------------------ commits --- */

/* The parents of commit id as its own text names them (no shallow grafts).
 * Returns 1 (a commit: *parents, *np set; caller frees *parents), 0 (id is
 * missing or not a commit), <0 (unreadable; libgit2's error is left set). */
int source_odb_parents(git_odb *odb, const git_oid *id, git_oid **parents, size_t *np);

/* Peels annotated tags: *out = the commit id names.  1, 0 (missing, or not
 * a commit in the end), <0 (unreadable). */
int source_odb_peel(git_odb *odb, const git_oid *id, git_oid *out);

/* ---------------------------------------------------- shallow boundary --- */

/* A shallow boundary: the commits whose parents a repository does not
 * hold (git's $GIT_DIR/shallow), sorted and unique.  Zero-initialised
 * ({0}) is empty; release with source_shallow_release. */
typedef struct source_shallow {
	git_oid *v;
	size_t n, cap;
} source_shallow;

void source_shallow_release(source_shallow *s);
/* Adds id; true when it was not there yet. */
bool source_shallow_add(source_shallow *s, const git_oid *id);
bool source_shallow_has(const source_shallow *s, const git_oid *id);
/* dst := dst U src */
void source_shallow_merge(source_shallow *dst, const source_shallow *src);

/* Adds the ids of text (the file's syntax: lines of 40 lower-case hex
 * digits; empty lines are ignored) to s.  CBL_EINVAL when a line is
 * anything else or text has a NUL before len; s may then hold a part. */
int source_shallow_parse(source_shallow *s, const char *text, size_t len, cbl_error **err);
/* The file's text: one "hex\n" line per id, "" when empty.  Caller frees. */
char *source_shallow_text(const source_shallow *s);

/* Adds the boundary in <gitdir>/shallow to s; a missing file is an empty
 * boundary.  The file must be a regular file (not followed as a symlink).
 * Errors: CBL_EINVAL (malformed: see source_shallow_parse), CBL_EIO
 * (cannot be read). */
int source_shallow_read(source_shallow *s, const char *gitdir, cbl_error **err);
/* Makes <gitdir>/shallow say s: written atomically (0644), removed when s
 * is empty, left alone (mtime included) when it says s already. */
int source_shallow_write(const source_shallow *s, const char *gitdir, cbl_error **err);

/* The depth window: the history of tip (an annotated tag is peeled) within
 * `depth` commits (0 = all), walked breadth-first by distance from tip
 * over the commits' own parent lines; a commit in roots (may be NULL;
 * e.g. the repository's current boundary, to honour it as git's grafts
 * do) counts as parentless.  Returns 1 when every commit closer than
 * depth-1 has all its parents in odb, and then has added to boundary the
 * commits at distance depth-1 that have parents: the shallow file of a
 * depth-`depth` clone; 0 when tip or a parent inside the window is
 * missing (boundary may hold a part); <0 (CBL_EIO, err set) when an object
 * cannot be read.  commit_out (may be NULL): the peeled tip, when found.
 * Refreshes odb first (packs fetched since it was opened). */
int source_shallow_window(git_odb *odb, const git_oid *tip, int depth, const source_shallow *roots,
			  source_shallow *boundary, git_oid *commit_out, cbl_error **err);

/* The same walk with more to say, and no refresh of odb.  All fields may
 * be NULL (wo itself too). */
typedef struct source_walk_opts {
	const source_shallow *roots; /* as above */
	/* commits another walk took already: this walk does not enter them
	 * (they are present; they are neither listed nor on its boundary) */
	const source_oidset *stop;
	source_oidlist *commits; /* on 1: every commit of the window appended, tip first */
	git_oid *missing;        /* on 0: the commit that is missing (tip or a parent) */
} source_walk_opts;

int source_shallow_walk(git_odb *odb, const git_oid *tip, int depth, const source_walk_opts *wo,
			source_shallow *boundary, git_oid *commit_out, cbl_error **err);

/* ---------------------------------------------------------- checkout --- */

/* False when no checkout filter (CRLF conversion, ident) can apply to the
 * files of commit in repo: no attributes file in its tree or outside it
 * (info/attributes, core.attributesFile or the XDG default, the system's),
 * and core.autocrlf and core.eol ask for no conversion.  The checkout may
 * then set disable_filters (source/checkout.c says why).  True when in
 * doubt (something could not be read). */
bool source_checkout_needs_filters(git_repository *repo, const git_oid *commit);

/* Checks commit out into repo's empty work tree, files created by a few
 * threads, then writes the index (with the files' stat data): what
 * git_checkout_head (GIT_CHECKOUT_FORCE) leaves in an empty work tree.
 * Only when source_checkout_needs_filters said false.  HEAD is the
 * caller's.  alternate (may be NULL): another objects directory to read
 * from (a local source's, while its pack is written).  progress (may be
 * NULL) runs on the calling thread (path NULL).  Returns 0; 1 when the tree
 * holds something left to libgit2's checkout (a name it would refuse or
 * treat specially, an odd mode), with nothing written; <0 (CBL_EIO) when
 * a file cannot be written or an object read. */
int source_checkout_fast(git_repository *repo, const git_oid *commit, const char *alternate,
			 git_checkout_progress_cb progress, void *payload, cbl_error **err);

/* ----------------------------------------------------------- packs --- */

/* Writes the objects ids (each once; read from odb, stored whole: no
 * deltas) as one pack with its index into dir (a repository's
 * objects/pack): pack-<sha>.pack, then pack-<sha>.idx, each renamed into
 * place, read-only.  progress (may be NULL) is called every few objects
 * with the objects and bytes written so far; a non-zero return stops the
 * write.  *bytes_out (may be NULL): the pack's size.  On failure nothing
 * is left in dir.  Errors: CBL_ENOENT "object X is missing" (*missing, may
 * be NULL, says which), CBL_ESTOPPED (progress said so), CBL_EIO. */
int source_pack_write(git_odb *odb, const source_oidlist *ids, const char *dir, git_indexer_progress_cb progress,
		      void *payload, uint64_t *bytes_out, git_oid *missing, cbl_error **err);

/* --------------------------------------------------- local sources --- */

/* A local source (source_url_is_local) fetched without a transport. */
typedef struct source_local_req {
	const char *url;     /* a path or a file:// URL */
	const char *disp;    /* the URL for messages */
	const char *version; /* source_git_opts.version */
	int depth;           /* 0 = all */
	bool tags;           /* every tag too, each with its own window */
} source_local_req;

typedef struct source_local_result {
	git_oid target;    /* the commit to check out */
	char *branch;      /* a branch was asked for (refs/remotes/origin/<branch> made), else NULL */
	bool default_head; /* the version was empty: the branch is the source's HEAD */
	unsigned objects;  /* to copy */
} source_local_result;

void source_local_result_release(source_local_result *r);

/* What a `git clone --depth N` of rq->version from the local repository
 * rq->url gets, read straight from its object database (source/local.c
 * says what and why), in three steps: source_local_open resolves the
 * version and lists the objects (nothing written); source_local_refs gives
 * the clone dst the ref asked for (a branch as refs/remotes/origin/
 * <branch>; a tag, pull request or other ref under its own name; with tags
 * every tag) and the shallow boundary, once dst can read the objects (the
 * pack written, or the source's objects directory added to dst's object
 * database as an alternate: source_local_objects_dir, borrowed);
 * source_local_write writes the pack into <gitdir>/objects/pack.  HEAD,
 * the local branch and the work tree are the caller's.
 *
 * Thread safety: source_local_write touches only lf and files, and may run
 * on another thread while the caller uses dst (libgit2 objects are not
 * shared); nothing else may use lf meanwhile.
 *
 * Errors: as source_git_fetch's for a version or repository that does not
 * resolve; CBL_EIO "the source repository URL lacks object X (needed for V
 * at depth N)" for an object of the copied history that is missing (one
 * outside it is never read); CBL_ESTOPPED when progress said so. */
typedef struct source_local source_local;

int source_local_open(source_local **out, const source_local_req *rq, source_local_result *res, cbl_error **err);
const char *source_local_objects_dir(const source_local *lf);
int source_local_refs(source_local *lf, git_repository *dst, cbl_error **err);
/* progress as for source_pack_write; *bytes (may be NULL): the pack's size */
int source_local_write(source_local *lf, const char *gitdir, git_indexer_progress_cb progress, void *payload,
		       uint64_t *bytes, cbl_error **err);
void source_local_free(source_local *lf);

/* ------------------------------------------------------- source cache --- */

typedef struct source_cache source_cache;

/* Polled while waiting for a lock: true gives up (the cache is then not
 * used, or not published to). */
typedef bool (*source_cache_stop_fn)(void *payload);

/* The store's name for url: the SHA-256 (hex) of the URL without its
 * credentials (scheme and host lower-cased, trailing slashes removed).
 * Caller frees. */
char *source_cache_key(const char *url);

/* Opens the store of url under root (both created when missing) and holds
 * its lock shared until source_cache_unlock.  A store that fails its
 * checks is discarded and recreated empty; *rebuilt then says why (caller
 * frees; NULL otherwise).  Errors: the cache cannot be used (CBL_EIO),
 * CBL_ESTOPPED when stop said so while waiting. */
int source_cache_open(source_cache **out, const char *root, const char *url, source_cache_stop_fn stop,
		      void *payload, char **rebuilt, cbl_error **err);

/* True when the store holds no pack (nothing to seed). */
bool source_cache_empty(const source_cache *sc);

/* True when the store records a shallow boundary. */
bool source_cache_shallow(const source_cache *sc);

/* Under the shared lock: makes the store's objects part of repo, a
 * repository nothing was fetched into yet: its packs are hard-linked (copied
 * across filesystems) into repo's objects/pack, its shallow boundary becomes
 * repo's, and the commits of its refs are named refs/cbl-have/NNNNNN in
 * repo's packed-refs so that a fetch offers them as "have"s.  tips_shallow
 * (for a fetch that deepens): 16 commits in all, the refs' and their newest
 * ancestors, with shallow roots where that set ends (see cache.c).
 * *objects: the objects the linked packs hold; *shallow: repo got a shallow
 * boundary.  Errors: CBL_EIO (the store's files or objects cannot be read). */
int source_cache_seed(source_cache *sc, git_repository *repo, bool tips_shallow, unsigned *objects,
		      bool *shallow, cbl_error **err);

/* Releases the shared lock (idempotent). */
void source_cache_unlock(source_cache *sc);

/* Removes the refs/cbl-have/ names source_cache_seed gave repo. */
int source_cache_drop_haves(git_repository *repo, cbl_error **err);

/* Takes the lock exclusive and adds what repo fetched: every pack of repo
 * the store lacks, repo's refs (remote-tracking refs as branches, tags,
 * other refs/...; refs/cbl/last = target), and the shallow boundary
 * `fetched` (repo's right after the fetch, before any cut; may be NULL),
 * kept only where a parent is really missing. */
int source_cache_publish(source_cache *sc, git_repository *repo, const source_shallow *fetched,
			 const git_oid *target, source_cache_stop_fn stop, void *payload, cbl_error **err);

/* Discards the store when it is still the one this handle opened (a store
 * that made a fetch fail).  Best effort. */
void source_cache_discard(source_cache *sc);

void source_cache_free(source_cache *sc);

#endif
