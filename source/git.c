/* source/git.c - git sources through libgit2 (contract in source/source.h).
 *
 * Shape of a fetch, per repository (the top-level one and each submodule):
 *   init an empty repository, add remote "origin", connect once and read the
 *   advertised refs, decide what to fetch from `version` (source_plan_resolve),
 *   fetch only that refspec with `depth`, then detach HEAD at the commit and
 *   check it out, then the submodules, recursively.
 *
 * Why not git_clone(): it fetches the default branch or a branch/tag by name
 * only; CodeBuild's source versions also name commits, pull-request refs and
 * "branch^{SHA}", and a shallow clone of a commit has to fetch that commit
 * itself.
 *
 * Commits: libgit2 (1.5+) fetches an object id given as a refspec when the
 * server advertises allow-tip-sha1-in-want / allow-reachable-sha1-in-want
 * (GitHub, GitLab, and git http-backend with uploadpack.allowAnySHA1InWant or
 * allowReachableSHA1InWant).  libgit2 speaks protocol v0/v1 only, where those
 * capabilities are what matters.  When that fails, or the SHA is abbreviated
 * and matches no advertised tip, all branches and tags are fetched in full and
 * the commit looked up; the result is then cut to `depth` (make_shallow).
 *
 * Local sources (paths, file://) go through no transport (libgit2's local
 * one refuses shallow fetches and copies every object of every ref): the
 * source's object database is read directly and only the requested ref's
 * depth window is copied, as one pack written on a thread of its own while
 * the checkout reads the same objects from the source (source/local.c,
 * fetch_local below).  A checkout into the fresh work tree creates its files
 * with a few threads when no filter can apply (source/checkout.c), for every
 * source.
 *
 * HEAD is detached at the commit, like CodeBuild's checkout ("HEAD detached at
 * ..."), and for a branch the local branch is also created with its upstream,
 * as `git clone --single-branch --branch B` leaves it, so `git branch` and
 * `git log origin/B` work in the build.
 *
 * The source cache (source.h; stores in cache.c) wraps the fetch of
 * each remote repository: cache_begin() seeds the fresh repository after the
 * refs were read (so a server that refuses us never sees cached objects
 * handed out), cache_end() checks the depth and publishes.  A commit the
 * store already holds is still asked for when the fetch has a depth
 * (libgit2 1.8 marks a want "local" only for full fetches), so the server
 * deepens past the store's boundary where needed; a full fetch (depth 0)
 * from a shallow store asks it to unshallow (GIT_FETCH_DEPTH_UNSHALLOW).
 * Should a libgit2 skip such a want anyway, cache_end() finds the history
 * short and the fetch runs again without the store.
 */
#include "source/source_internal.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/time.h"

#include <dirent.h>
#include <errno.h>
#include <git2.h>
#include <git2/sys/errors.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define PROGRESS_INTERVAL_US 100000
#define MAX_SUBMODULE_NESTING 16

/* why SSH sources are fetched whole and cut: source_url_is_ssh (url.c) */
bool source_git_is_ssh(const char *url) { return source_url_is_ssh(url); }

/* ------------------------------------------------------------ context --- */

typedef struct progress_state {
	void (*cb)(const char *line, void *payload);
	void *payload;
	bool started, recv_done, deltas_done;
	bool got; /* the transfer callback ran during this fetch: a pack came */
	int64_t start_us, last_us; /* first data; last line */
	size_t last_bytes;         /* received_bytes at the last line */
	git_indexer_progress last;
	int64_t co_last_us;
	bool co_done;
} progress_state;

typedef struct cred_state {
	bool tried_url, tried_store, tried_agent, tried_username;
	bool exhausted;
} cred_state;

typedef struct fetch_ctx {
	const source_git_opts *o;
	progress_state prog;
	cred_state cred;
	cbl_strv secrets; /* strings scrubbed out of libgit2's messages */
	char *sm_prefix;  /* "" or "lib/" while inside submodule lib (messages) */
	bool cancelled;   /* o->cancelled said so: the fetch was stopped */
	source_git_stats st;
	bool unshallow;     /* the repository being fetched into was seeded with a shallow store */
	bool cache_suspect; /* a fetch failed with the store's objects in it: retry without them */
} fetch_ctx;

static bool check_cancel(fetch_ctx *c)
{
	if (!c->cancelled && c->o && c->o->cancelled && c->o->cancelled(c->o->payload))
		c->cancelled = true;
	return c->cancelled;
}

static void remember_secrets(fetch_ctx *c, const char *url)
{
	source_url u;
	if (source_url_parse(&u, url) < 0)
		return;
	if (u.pass && strlen(u.pass) >= 3)
		cbl_strv_push(&c->secrets, u.pass);
	if (source_url_scheme_is_http(u.scheme) && !u.pass && u.user && strlen(u.user) >= 3) /* a token */
		cbl_strv_push(&c->secrets, u.user);
	source_url_release(&u);
}

/* libgit2's message with every known secret replaced by "***". */
static char *scrub(const fetch_ctx *c, const char *msg)
{
	char *cur = cbl_xstrdup(msg ? msg : "unknown error");
	for (size_t i = 0; i < c->secrets.n; i++) {
		const char *sec = c->secrets.v[i];
		size_t sl = strlen(sec);
		cbl_buf b = CBL_BUF_INIT;
		const char *p = cur, *hit;
		while ((hit = strstr(p, sec))) {
			cbl_buf_append(&b, p, (size_t)(hit - p));
			cbl_buf_puts(&b, "***");
			p = hit + sl;
		}
		cbl_buf_puts(&b, p);
		free(cur);
		cur = cbl_buf_detach(&b);
	}
	return cur;
}

/* ----------------------------------------------------------- progress --- */

static void emitf(fetch_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emitf(fetch_ctx *c, const char *fmt, ...)
{
	if (!c->prog.cb)
		return;
	cbl_buf b = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	c->prog.cb(cbl_buf_cstr(&b), c->prog.payload);
	cbl_buf_release(&b);
}

static void human_bytes(char *out, size_t n, double v)
{
	if (v < 1024)
		snprintf(out, n, "%.0f bytes", v);
	else if (v < 1024.0 * 1024)
		snprintf(out, n, "%.1f KiB", v / 1024);
	else if (v < 1024.0 * 1024 * 1024)
		snprintf(out, n, "%.1f MiB", v / (1024.0 * 1024));
	else
		snprintf(out, n, "%.1f GiB", v / (1024.0 * 1024 * 1024));
}

static unsigned pct(unsigned cur, unsigned total)
{
	return total ? (unsigned)((unsigned long long)cur * 100 / total) : 100;
}

/* The rate is git's kind: over the last interval while receiving, over the
 * whole transfer (from the first data) on the final line. */
static void emit_receiving(fetch_ctx *c, const git_indexer_progress *s, bool done)
{
	progress_state *p = &c->prog;
	int64_t now = cbl_mono_us();
	int64_t el = done ? now - p->start_us : now - p->last_us;
	double bytes = done ? (double)s->received_bytes : (double)(s->received_bytes - p->last_bytes);
	if (el < PROGRESS_INTERVAL_US)
		el = PROGRESS_INTERVAL_US;
	char size[32], rate[32];
	human_bytes(size, sizeof(size), (double)s->received_bytes);
	human_bytes(rate, sizeof(rate), bytes * 1e6 / (double)el);
	emitf(c, "Receiving objects: %3u%% (%u/%u), %s | %s/s%s", pct(s->received_objects, s->total_objects),
	      s->received_objects, s->total_objects, size, rate, done ? ", done." : "");
	p->last_bytes = s->received_bytes;
}

static void emit_deltas(fetch_ctx *c, const git_indexer_progress *s, bool done)
{
	emitf(c, "Resolving deltas: %3u%% (%u/%u)%s", pct(s->indexed_deltas, s->total_deltas),
	      s->indexed_deltas, s->total_deltas, done ? ", done." : "");
}

static int on_transfer(const git_indexer_progress *s, void *payload)
{
	fetch_ctx *c = payload;
	progress_state *p = &c->prog;
	if (check_cancel(c)) {
		git_error_set_str(GIT_ERROR_NET, "fetch cancelled");
		return -1;
	}
	p->got = true;
	if (!p->cb)
		return 0;
	int64_t now = cbl_mono_us();
	if (!p->started) {
		p->started = true;
		p->start_us = now;
		p->last_us = now; /* first intermediate line after an interval */
		p->last_bytes = s->received_bytes;
	}
	p->last = *s;
	if (!s->total_objects)
		return 0;
	if (!p->recv_done) {
		if (s->received_objects >= s->total_objects) {
			emit_receiving(c, s, true);
			p->recv_done = true;
			p->last_us = now;
		} else if (now - p->last_us >= PROGRESS_INTERVAL_US) {
			emit_receiving(c, s, false);
			p->last_us = now;
		}
		return 0;
	}
	if (s->total_deltas && !p->deltas_done) {
		if (s->indexed_deltas >= s->total_deltas) {
			emit_deltas(c, s, true);
			p->deltas_done = true;
		} else if (now - p->last_us >= PROGRESS_INTERVAL_US) {
			emit_deltas(c, s, false);
			p->last_us = now;
		}
	}
	return 0;
}

static void progress_reset(fetch_ctx *c)
{
	progress_state *p = &c->prog;
	p->started = p->recv_done = p->deltas_done = p->got = false;
	p->start_us = p->last_us = 0;
	p->last_bytes = 0;
	memset(&p->last, 0, sizeof(p->last));
	p->co_last_us = 0;
	p->co_done = false;
}

/* After a successful fetch: the closing lines the callback did not reach. */
static void progress_finish(fetch_ctx *c)
{
	progress_state *p = &c->prog;
	if (!p->started || !p->last.total_objects)
		return;
	if (!p->recv_done)
		emit_receiving(c, &p->last, true);
	if (p->last.total_deltas && !p->deltas_done) {
		git_indexer_progress s = p->last;
		s.indexed_deltas = s.total_deltas;
		emit_deltas(c, &s, true);
	}
	p->recv_done = p->deltas_done = true;
}

static void on_checkout(const char *path, size_t cur, size_t total, void *payload)
{
	fetch_ctx *c = payload;
	progress_state *p = &c->prog;
	(void)path;
	if (!p->cb || !total || p->co_done)
		return;
	int64_t now = cbl_mono_us();
	if (!p->co_last_us)
		p->co_last_us = now;
	if (cur >= total) {
		emitf(c, "Updating files: 100%% (%zu/%zu), done.", total, total);
		p->co_done = true;
	} else if (now - p->co_last_us >= PROGRESS_INTERVAL_US) {
		emitf(c, "Updating files: %3u%% (%zu/%zu)", (unsigned)(cur * 100 / total), cur, total);
		p->co_last_us = now;
	}
}

/* -------------------------------------------------------- credentials --- */

/* Each method is offered once per connection; then the fetch fails with
 * "authentication failed" instead of libgit2 asking again and again. */
static int on_credentials(git_credential **out, const char *url, const char *user_from_url,
			  unsigned int allowed, void *payload)
{
	fetch_ctx *c = payload;
	cred_state *cs = &c->cred;
	source_url u;
	bool parsed = url && source_url_parse(&u, url) == 0;
	int rc;

	if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
		/* user:password from the URL.  libgit2's HTTP transport presents
		 * those itself before calling us, so only other transports
		 * (ssh password authentication) need them here. */
		if (!cs->tried_url) {
			cs->tried_url = true;
			if (parsed && u.user && u.pass && !source_url_scheme_is_http(u.scheme)) {
				rc = git_credential_userpass_plaintext_new(out, u.user, u.pass);
				goto out;
			}
		}
		if (!cs->tried_store) {
			cs->tried_store = true;
			if (parsed) {
				rc = source_url_credential(out, &u, user_from_url);
				if (rc != 0) {
					rc = rc > 0 ? 0 : rc;
					goto out;
				}
			}
		}
	}
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && !cs->tried_agent) {
		cs->tried_agent = true;
		const char *sock = getenv("SSH_AUTH_SOCK");
		if (sock && *sock) {
			rc = git_credential_ssh_key_from_agent(out, user_from_url ? user_from_url : "git");
			goto out;
		}
	}
	if ((allowed & GIT_CREDENTIAL_USERNAME) && !cs->tried_username) {
		cs->tried_username = true;
		rc = git_credential_username_new(out, user_from_url ? user_from_url : "git");
		goto out;
	}
	cs->exhausted = true;
	git_error_set_str(GIT_ERROR_NET, "no more credentials to try");
	rc = GIT_EAUTH;
out:
	if (parsed)
		source_url_release(&u);
	return rc;
}

static git_remote_callbacks make_callbacks(fetch_ctx *c)
{
	git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
	cb.credentials = on_credentials;
	cb.transfer_progress = on_transfer;
	cb.payload = c;
	return cb;
}

/* ------------------------------------------------------------- errors --- */

static const char *git_msg(void)
{
	const git_error *e = git_error_last();
	return e && e->message && *e->message ? e->message : "unknown error";
}

static int git_klass(void)
{
	const git_error *e = git_error_last();
	return e ? e->klass : 0;
}

/* Maps a failed connect/fetch to our error codes and texts (see source.h). */
static int remote_error(fetch_ctx *c, int gerr, bool connecting, const char *disp, cbl_error **err)
{
	const char *m = git_msg();
	int klass = git_klass();
	char *msg = scrub(c, m);
	int rc;
	if (c->cred.exhausted || gerr == GIT_EAUTH || strstr(m, "authentication"))
		rc = cbl_error_set(err, CBL_EINVAL, "authentication failed for %s", disp);
	else if (strstr(m, "status code: 404") || strstr(m, "could not find repository") ||
		 (connecting && gerr == GIT_ENOTFOUND))
		rc = cbl_error_set(err, CBL_ENOENT, "repository not found: %s", disp);
	else if (strstr(m, "unsupported URL protocol"))
		rc = cbl_error_set(err, CBL_EINVAL, "unsupported git URL %s: %s", disp, msg);
	else if (connecting && (klass == GIT_ERROR_NET || klass == GIT_ERROR_OS || klass == GIT_ERROR_SSL ||
				klass == GIT_ERROR_SSH || klass == GIT_ERROR_HTTP))
		rc = cbl_error_set(err, CBL_EIO, "cannot reach %s: %s", disp, msg);
	else
		rc = cbl_error_set(err, CBL_EIO, "git fetch from %s failed: %s", disp, msg);
	free(msg);
	return rc;
}

static int local_error(fetch_ctx *c, const char *what, cbl_error **err)
{
	char *msg = scrub(c, git_msg());
	int rc = cbl_error_set(err, CBL_EIO, "%s: %s", what, msg);
	free(msg);
	return rc;
}

/* ------------------------------------------------------------ shallow --- */

/* Cuts the history of `tip` to `depth` commits the way a shallow fetch
 * records it: the depth window (source_shallow_window: breadth-first by
 * distance from tip, the smallest distance wins, like upload-pack's deepen)
 * over the history the repository has, honouring a boundary it has already
 * as git's grafts do; the window's boundary is merged into .git/shallow. */
static int make_shallow(fetch_ctx *c, git_repository *repo, const git_oid *tip, int depth, cbl_error **err)
{
	const char *gitdir = git_repository_path(repo);
	source_shallow old = {0}, bnd = {0};
	git_odb *odb = NULL;
	int rc = 0;

	if ((rc = source_shallow_read(&old, gitdir, err)) < 0)
		goto out;
	if (git_repository_odb(&odb, repo) < 0) {
		rc = local_error(c, "cannot open the object database", err);
		goto out;
	}
	int w = source_shallow_window(odb, tip, depth, &old, &bnd, NULL, err);
	if (w <= 0) {
		rc = w < 0 ? w : cbl_error_set(err, CBL_EIO, "cannot read commit while cutting history: a commit is missing");
		goto out;
	}
	source_shallow_merge(&bnd, &old);
	if (bnd.n)
		rc = source_shallow_write(&bnd, gitdir, err);
out:
	git_odb_free(odb);
	source_shallow_release(&old);
	source_shallow_release(&bnd);
	return rc;
}

/* ------------------------------------------------------------ fetching --- */

static int do_fetch(fetch_ctx *c, git_remote *remote, const char *const *specs, size_t nspecs, int depth,
		    bool all_tags, const char *disp, cbl_error **err)
{
	git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
	cbl_strv sv = CBL_STRV_INIT;
	for (size_t i = 0; i < nspecs; i++)
		cbl_strv_push(&sv, specs[i]);
	git_strarray arr = {sv.v, sv.n};
	char *reflog = cbl_xasprintf("clone: from %s", disp);
	fo.callbacks = make_callbacks(c);
	fo.depth = depth == 0 && c->unshallow ? GIT_FETCH_DEPTH_UNSHALLOW : depth;
	fo.download_tags = all_tags ? GIT_REMOTE_DOWNLOAD_TAGS_ALL : GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.update_fetchhead = 0;
	memset(&c->cred, 0, sizeof(c->cred));
	progress_reset(c);
	int rc = 0;
	int g = git_remote_fetch(remote, &arr, &fo, reflog);
	if (g < 0) {
		rc = remote_error(c, g, false, disp, err);
	} else {
		progress_finish(c);
		if (c->prog.got) { /* else the stats are an earlier fetch's */
			const git_indexer_progress *st = git_remote_stats(remote);
			c->st.received_objects += st->received_objects;
			c->st.received_bytes += st->received_bytes;
		}
	}
	free(reflog);
	cbl_strv_release(&sv);
	return rc;
}

static int peel_ref(fetch_ctx *c, git_repository *repo, const char *ref, const char *disp, git_oid *out,
		    cbl_error **err)
{
	git_object *obj = NULL;
	git_reference *r = NULL;
	int rc = 0;
	if (git_reference_lookup(&r, repo, ref) < 0) {
		rc = cbl_error_set(err, CBL_EIO, "git fetch from %s did not produce %s", disp, ref);
		goto out;
	}
	if (git_reference_peel(&obj, r, GIT_OBJECT_COMMIT) < 0) {
		char *m = scrub(c, git_msg());
		rc = cbl_error_set(err, CBL_EINVAL, "%s in %s does not point to a commit: %s", ref, disp, m);
		free(m);
		goto out;
	}
	git_oid_cpy(out, git_object_id(obj));
out:
	git_object_free(obj);
	git_reference_free(r);
	return rc;
}

/* Looks a full or abbreviated SHA up among the fetched objects.  Returns 0,
 * or 1 when absent (no error set), or <0 (ambiguous: error set). */
static int lookup_commit_prefix(git_repository *repo, const char *sha, const char *disp, git_oid *out,
				cbl_error **err)
{
	git_oid prefix;
	git_object *obj = NULL;
	size_t len = strlen(sha);
	if (git_oid_fromstrn(&prefix, sha, len) < 0)
		return 1;
	int g = git_object_lookup_prefix(&obj, repo, &prefix, len, GIT_OBJECT_COMMIT);
	if (g == GIT_EAMBIGUOUS)
		return cbl_error_set(err, CBL_EINVAL, "commit prefix %s is ambiguous in %s", sha, disp);
	if (g < 0) {
		git_error_clear();
		return 1;
	}
	git_oid_cpy(out, git_object_id(obj));
	git_object_free(obj);
	return 0;
}

/* The unique advertised tip (peeled tags included) whose id starts with sha. */
static bool adv_unique_prefix(const source_refs *a, const char *sha, git_oid *out)
{
	size_t len = strlen(sha);
	bool found = false;
	for (size_t i = 0; i < a->n; i++) {
		char hex[GIT_OID_MAX_HEXSIZE + 1];
		git_oid_tostr(hex, sizeof(hex), &a->v[i].oid);
		if (strncmp(hex, sha, len))
			continue;
		if (found && !git_oid_equal(out, &a->v[i].oid))
			return false;
		git_oid_cpy(out, &a->v[i].oid);
		found = true;
	}
	return found;
}

/* "branch^{SHA}": when SHA is the branch's tip a shallow fetch of the branch
 * is enough; otherwise the branch's whole history is fetched to prove SHA is
 * on it (and cut to depth afterwards: *full). */
static int fetch_commit_on_branch(fetch_ctx *c, git_repository *repo, git_remote *remote, const source_refs *adv,
				  const source_plan *p, int fetch_depth, const char *disp, git_oid *target, bool *full,
				  cbl_error **err)
{
	const source_ref *tip = source_refs_find(adv, p->ref); /* source_plan_resolve checked it */
	char hex[GIT_OID_MAX_HEXSIZE + 1];
	git_oid_tostr(hex, sizeof(hex), &tip->oid);
	bool at_tip = !strncmp(hex, p->sha, strlen(p->sha));
	char *spec = cbl_xasprintf("+%s:refs/remotes/origin/%s", p->ref, p->branch);
	int rc = do_fetch(c, remote, (const char *const[]){spec}, 1, at_tip ? fetch_depth : 0, c->o->tags, disp,
			  err);
	free(spec);
	if (rc < 0)
		return rc;
	if (at_tip) {
		git_oid_cpy(target, &tip->oid);
		return 0;
	}
	*full = true;
	int r = lookup_commit_prefix(repo, p->sha, disp, target, err);
	if (r < 0)
		return r;
	if (r > 0 || (!git_oid_equal(target, &tip->oid) && git_graph_descendant_of(repo, &tip->oid, target) != 1))
		return cbl_error_set(err, CBL_ENOENT, "commit %s is not on branch %s in %s", p->sha, p->branch,
				     disp);
	return 0;
}

/* A commit by SHA: fetched by id when the full id is known (given, or the
 * unique advertised tip with that prefix) and the server allows it; else
 * every branch and tag in full, then looked up (and cut to depth: *full). */
static int fetch_commit(fetch_ctx *c, git_repository *repo, git_remote *remote, const source_refs *adv,
			const source_plan *p, int fetch_depth, const char *disp, git_oid *target, bool *full,
			cbl_error **err)
{
	static const char *const all[] = {"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"};
	git_oid want;
	bool have_full = strlen(p->sha) == GIT_OID_SHA1_HEXSIZE ? git_oid_fromstr(&want, p->sha) == 0
								  : adv_unique_prefix(adv, p->sha, &want);
	if (have_full) {
		char hex[GIT_OID_MAX_HEXSIZE + 1];
		cbl_error *ferr = NULL;
		git_oid_tostr(hex, sizeof(hex), &want);
		int fr = do_fetch(c, remote, (const char *const[]){hex}, 1, fetch_depth, c->o->tags, disp, &ferr);
		if (fr == 0) {
			git_commit *cm = NULL;
			if (git_commit_lookup(&cm, repo, &want) == 0) {
				git_commit_free(cm);
				git_oid_cpy(target, &want);
				return 0;
			}
			git_error_clear();
		} else if (fr == CBL_EINVAL || c->cred.exhausted) {
			/* authentication or a bad URL: the fallback cannot help */
			if (err && !*err)
				*err = ferr;
			else
				cbl_error_free(ferr);
			return fr;
		}
		cbl_error_free(ferr); /* e.g. "cannot fetch a specific object", "not our ref" */
	}
	*full = true;
	int rc = do_fetch(c, remote, all, 2, 0, c->o->tags, disp, err);
	if (rc < 0)
		return rc;
	int r = lookup_commit_prefix(repo, p->sha, disp, target, err);
	if (r < 0)
		return r;
	if (r > 0)
		return cbl_error_set(err, CBL_ENOENT, "commit %s not found in %s", p->sha, disp);
	return 0;
}

static int set_config(git_repository *repo, const char *key, const char *value, cbl_error **err)
{
	git_config *cfg = NULL;
	int rc = 0;
	if (git_repository_config(&cfg, repo) < 0 || git_config_set_string(cfg, key, value) < 0)
		rc = cbl_error_set(err, CBL_EIO, "cannot set %s in the clone's config: %s", key, git_msg());
	git_config_free(cfg);
	return rc;
}

/* What `git clone --single-branch --branch B` leaves: the local branch with
 * its upstream, and a fetch refspec for that branch only. */
static int setup_branch(fetch_ctx *c, git_repository *repo, const char *branch, bool default_head,
			cbl_error **err)
{
	git_oid tip;
	git_commit *cm = NULL;
	git_reference *br = NULL, *sym = NULL;
	char *rref = cbl_xasprintf("refs/remotes/origin/%s", branch);
	char *key = NULL, *val = NULL;
	int rc = 0;

	if ((rc = peel_ref(c, repo, rref, "origin", &tip, err)) < 0)
		goto out;
	if (git_commit_lookup(&cm, repo, &tip) < 0 || git_branch_create(&br, repo, branch, cm, 1) < 0) {
		rc = local_error(c, "cannot create the local branch", err);
		goto out;
	}
	key = cbl_xasprintf("branch.%s.remote", branch);
	if ((rc = set_config(repo, key, "origin", err)) < 0)
		goto out;
	free(key);
	key = cbl_xasprintf("branch.%s.merge", branch);
	val = cbl_xasprintf("refs/heads/%s", branch);
	if ((rc = set_config(repo, key, val, err)) < 0)
		goto out;
	free(val);
	val = cbl_xasprintf("+refs/heads/%s:refs/remotes/origin/%s", branch, branch);
	if ((rc = set_config(repo, "remote.origin.fetch", val, err)) < 0)
		goto out;
	if (default_head &&
	    git_reference_symbolic_create(&sym, repo, "refs/remotes/origin/HEAD", rref, 1, NULL) < 0) {
		rc = local_error(c, "cannot set refs/remotes/origin/HEAD", err);
		goto out;
	}
out:
	git_reference_free(sym);
	git_reference_free(br);
	git_commit_free(cm);
	free(rref);
	free(key);
	free(val);
	return rc;
}

/* HEAD detached at oid and its tree checked out: by source_checkout_fast
 * when no filter can apply (several threads; alternate: another objects
 * directory to read from, or NULL), else by libgit2. */
static int checkout_detached(fetch_ctx *c, git_repository *repo, const git_oid *oid, const char *alternate,
			     cbl_error **err)
{
	git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	co.progress_cb = on_checkout;
	co.progress_payload = c;
	progress_reset(c);
	if (git_repository_set_head_detached(repo, oid) < 0)
		return local_error(c, "cannot set HEAD", err);
	if (!source_checkout_needs_filters(repo, oid)) {
		int r = source_checkout_fast(repo, oid, alternate, on_checkout, c, err);
		if (r <= 0)
			return r;
		co.disable_filters = 1;
	}
	if (git_checkout_head(repo, &co) < 0)
		return local_error(c, "checkout failed", err);
	return 0;
}

/* ------------------------------------------------------- source cache --- */

typedef struct repo_cache {
	source_cache *sc;
	bool seeded;
} repo_cache;

static bool cache_stop(void *payload)
{
	return check_cancel(payload);
}

static void cache_state(fetch_ctx *c, int level, source_cache_state st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void cache_state(fetch_ctx *c, int level, source_cache_state st, const char *fmt, ...)
{
	if (level)
		return; /* the summary speaks of the top-level repository */
	if (c->st.cache == SOURCE_CACHE_REBUILT && st == SOURCE_CACHE_EMPTY)
		return; /* the retry after a discard: still "rebuilt" */
	c->st.cache = st;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->st.note, sizeof(c->st.note), fmt, ap);
		va_end(ap);
	}
}

/* After the refs were read, before anything is fetched: opens the store
 * and seeds repo with it when it can help.  Fails only when seeding failed
 * half-way (then c->cache_suspect: the caller retries without the store). */
static int cache_begin(fetch_ctx *c, git_repository *repo, const char *url, int fetch_depth, int level,
		       repo_cache *rc_out, cbl_error **err)
{
	const char *root = c->o->object_cache_dir;
	cbl_error *e = NULL;
	char *rebuilt = NULL;
	unsigned objects = 0;
	int rc = 0;

	memset(rc_out, 0, sizeof(*rc_out));
	if (!root || !*root)
		return 0;
	if (source_cache_open(&rc_out->sc, root, url, cache_stop, c, &rebuilt, &e) < 0) {
		cache_state(c, level, SOURCE_CACHE_SKIPPED, "%s", e->msg);
		cbl_error_free(e);
		return 0;
	}
	source_cache *sc = rc_out->sc;
	if (rebuilt)
		cache_state(c, level, SOURCE_CACHE_REBUILT, "it was damaged: %s", rebuilt);
	free(rebuilt);
	if (source_cache_empty(sc)) {
		cache_state(c, level, SOURCE_CACHE_EMPTY, NULL);
		goto out;
	}
	if (source_url_is_ssh(url) && source_cache_shallow(sc)) {
		/* unshallowing needs the deepen libgit2 gets wrong over SSH */
		cache_state(c, level, SOURCE_CACHE_SKIPPED, "a shallow cache of an SSH repository");
		goto out;
	}
	bool shallow = false;
	if ((rc = source_cache_seed(sc, repo, fetch_depth > 0 || source_cache_shallow(sc), &objects, &shallow,
				       err)) < 0) {
		c->cache_suspect = true;
		source_cache_discard(sc);
		goto out;
	}
	rc_out->seeded = true;
	c->unshallow = shallow;
	c->st.cached_objects += objects;
	cache_state(c, level, SOURCE_CACHE_USED, NULL);
out:
	source_cache_unlock(sc);
	return rc;
}

/* A seeded clone's own shallow boundary: exactly `depth` commits of
 * target, from the objects really present.  Fails when the fetch left a
 * hole inside the window (the store's haves misled the server). */
static int cache_cut(fetch_ctx *c, git_repository *repo, const git_oid *target, int depth, const char *disp,
		     cbl_error **err)
{
	source_shallow bnd = {0};
	git_odb *odb = NULL;
	int rc = 0;
	if (git_repository_odb(&odb, repo) < 0) {
		rc = local_error(c, "cannot open the object database", err);
		goto out;
	}
	int w = source_shallow_window(odb, target, depth, NULL, &bnd, NULL, err);
	if (w < 0) {
		rc = w;
		goto out;
	}
	if (w == 0) {
		char hex[GIT_OID_MAX_HEXSIZE + 1];
		git_oid_tostr(hex, sizeof(hex), target);
		rc = cbl_error_set(err, CBL_EIO, "the fetch from %s with the source cache left the history of %s incomplete",
				   disp, hex);
		goto out;
	}
	rc = source_shallow_write(&bnd, git_repository_path(repo), err);
out:
	git_odb_free(odb);
	source_shallow_release(&bnd);
	return rc;
}

/* After the fetch, before the checkout: the clone's own boundary when it
 * was seeded (cache_cut), then the store gets what was fetched (best
 * effort: a failure is only a note). */
static int cache_end(fetch_ctx *c, git_repository *repo, repo_cache *rcache, const git_oid *target, int depth,
		     int level, const char *disp, bool *cut_done, cbl_error **err)
{
	source_shallow fetched = {0};
	cbl_error *e = NULL;
	int rc = 0;

	c->unshallow = false;
	*cut_done = false;
	if (rcache->seeded && (rc = source_cache_drop_haves(repo, err)) < 0)
		goto out;
	/* what the fetch left, for the store: before the cut */
	int fr = source_shallow_read(&fetched, git_repository_path(repo), &e);
	if (rcache->seeded) {
		/* the window walks the commits' own parents: the store's boundary
		 * (which came along) and the fetch's do not count */
		if ((rc = cache_cut(c, repo, target, depth, disp, err)) < 0)
			goto out;
		*cut_done = true;
	}
	if (fr == 0)
		fr = source_cache_publish(rcache->sc, repo, &fetched, target, cache_stop, c, &e);
	if (fr < 0) {
		if (!level && !c->st.note[0])
			snprintf(c->st.note, sizeof(c->st.note), "%s", e->msg);
	}
out:
	cbl_error_free(e);
	source_shallow_release(&fetched);
	return rc;
}

static int fetch_repo(fetch_ctx *c, git_repository *repo, const char *url, const char *version, int level,
		      git_oid *out, cbl_error **err);

static int collect_submodule(git_submodule *sm, const char *name, void *payload)
{
	(void)sm;
	cbl_strv_push(payload, name);
	return 0;
}

/* Every submodule of the checked-out tree at its recorded commit, with the
 * same depth, recursively (git submodule update --init --recursive --depth). */
static int update_submodules(fetch_ctx *c, git_repository *repo, int level, cbl_error **err)
{
	cbl_strv names = CBL_STRV_INIT;
	int rc = 0;

	if (level >= MAX_SUBMODULE_NESTING)
		return cbl_error_set(err, CBL_EINVAL, "submodules nested more than %d levels deep",
				     MAX_SUBMODULE_NESTING);
	if (git_submodule_foreach(repo, collect_submodule, &names) < 0) {
		rc = local_error(c, "cannot read .gitmodules", err);
		goto out;
	}
	for (size_t i = 0; i < names.n; i++) {
		git_submodule *sm = NULL;
		git_repository *sub = NULL;
		git_buf url = GIT_BUF_INIT;
		char *path = NULL;
		git_oid got;
		if (git_submodule_lookup(&sm, repo, names.v[i]) < 0) {
			rc = local_error(c, "cannot read submodule", err);
			goto next;
		}
		path = cbl_xstrdup(git_submodule_path(sm));
		const git_oid *pin = git_submodule_head_id(sm);
		if (!pin || git_submodule_update_strategy(sm) == GIT_SUBMODULE_UPDATE_NONE)
			goto next;
		if (!git_submodule_url(sm)) {
			rc = cbl_error_set(err, CBL_EINVAL, "submodule '%s' has no url in .gitmodules", path);
			goto next;
		}
		if (git_submodule_resolve_url(&url, repo, git_submodule_url(sm)) < 0 ||
		    git_submodule_init(sm, 0) < 0 || git_submodule_repo_init(&sub, sm, 1) < 0) {
			rc = local_error(c, "cannot initialise submodule", err);
			goto wrap;
		}
		{
			char hex[GIT_OID_MAX_HEXSIZE + 1];
			char *disp = source_url_display(url.ptr);
			char *outer = c->sm_prefix;
			char *full = cbl_xasprintf("%s%s", outer ? outer : "", path);
			git_oid_tostr(hex, sizeof(hex), pin);
			emitf(c, "Submodule '%s' (%s) registered for path '%s'", names.v[i], disp, full);
			free(disp);
			c->sm_prefix = cbl_xasprintf("%s/", full);
			rc = fetch_repo(c, sub, url.ptr, hex, level + 1, &got, err);
			free(c->sm_prefix);
			c->sm_prefix = outer;
			if (!rc)
				emitf(c, "Submodule path '%s': checked out '%s'", full, hex);
			free(full);
		}
	wrap:
		if (rc && err && *err)
			cbl_error_wrap(err, "submodule '%s'", path);
	next:
		free(path);
		git_buf_dispose(&url);
		git_repository_free(sub);
		git_submodule_free(sm);
		if (rc)
			goto out;
	}
out:
	cbl_strv_release(&names);
	return rc;
}

/* Points repo's "origin" at url (a local path made absolute: like git,
 * "path" may name "path.git").  A submodule's repository already has
 * "origin" (git_submodule_repo_init). */
static int open_remote(fetch_ctx *c, git_repository *repo, const char *url, const char *disp, git_remote **out,
		       cbl_error **err)
{
	char *abs = NULL;
	const char *remote_url = url;
	int rc = 0;
	*out = NULL;
	if (source_url_is_local(url) && strncmp(url, "file://", 7)) {
		if (source_url_local_path(url, &abs) < 0) {
			rc = cbl_error_set(err, CBL_ENOENT, "repository not found: %s", disp);
			goto out;
		}
		remote_url = abs;
	}
	if (git_remote_lookup(out, repo, "origin") == 0) {
		git_remote_free(*out);
		*out = NULL;
		if (git_remote_set_url(repo, "origin", remote_url) < 0 || git_remote_lookup(out, repo, "origin") < 0)
			rc = local_error(c, "cannot configure the remote", err);
	} else if (git_remote_create(out, repo, "origin", remote_url) < 0) {
		char *m = scrub(c, git_msg());
		rc = cbl_error_set(err, CBL_EINVAL, "invalid git URL %s: %s", disp, m);
		free(m);
	}
out:
	free(abs);
	return rc;
}

/* Connects once to learn the refs (and the default branch). */
static int list_remote(fetch_ctx *c, git_remote *remote, const char *disp, source_refs *adv, cbl_error **err)
{
	git_remote_connect_options co = GIT_REMOTE_CONNECT_OPTIONS_INIT;
	git_buf defbranch = GIT_BUF_INIT;
	const git_remote_head **heads = NULL;
	size_t n = 0;
	int g;
	co.callbacks = make_callbacks(c);
	memset(&c->cred, 0, sizeof(c->cred));
	if ((g = git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &co)) < 0 ||
	    (g = git_remote_ls(&heads, &n, remote)) < 0)
		return remote_error(c, g, true, disp, err);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(heads[i]->name, "HEAD")) {
			adv->has_head = true;
			git_oid_cpy(&adv->head, &heads[i]->oid);
			if (heads[i]->symref_target)
				adv->default_branch = cbl_xstrdup(heads[i]->symref_target);
			continue;
		}
		source_refs_add(adv, heads[i]->name, &heads[i]->oid);
	}
	if (!adv->default_branch && adv->has_head && git_remote_default_branch(&defbranch, remote) == 0)
		adv->default_branch = cbl_xstrdup(defbranch.ptr);
	git_buf_dispose(&defbranch);
	git_error_clear();
	return 0;
}

/* Fetches what plan p names; *target = the commit to check out.  *full:
 * the history came whole and is to be cut to depth afterwards. */
static int fetch_plan(fetch_ctx *c, git_repository *repo, git_remote *remote, const source_refs *adv, const source_plan *p,
		      int fetch_depth, const char *disp, git_oid *target, bool *full, cbl_error **err)
{
	bool tags = c->o->tags;
	char *spec = NULL;
	int rc = 0;
	switch (p->kind) {
	case SOURCE_PLAN_BRANCH:
		spec = cbl_xasprintf("+%s:refs/remotes/origin/%s", p->ref, p->branch);
		if ((rc = do_fetch(c, remote, (const char *const[]){spec}, 1, fetch_depth, tags, disp, err)) < 0)
			break;
		free(spec);
		spec = cbl_xasprintf("refs/remotes/origin/%s", p->branch);
		rc = peel_ref(c, repo, spec, disp, target, err);
		break;
	case SOURCE_PLAN_TAG:
	case SOURCE_PLAN_REF:
		spec = cbl_xasprintf("+%s:%s", p->ref, p->ref);
		if ((rc = do_fetch(c, remote, (const char *const[]){spec}, 1, fetch_depth, tags, disp, err)) < 0)
			break;
		rc = peel_ref(c, repo, p->ref, disp, target, err);
		break;
	case SOURCE_PLAN_COMMIT:
		rc = p->branch ? fetch_commit_on_branch(c, repo, remote, adv, p, fetch_depth, disp, target, full, err)
			       : fetch_commit(c, repo, remote, adv, p, fetch_depth, disp, target, full, err);
		break;
	}
	free(spec);
	return rc;
}

/* After the objects came (or could be read): the local branch, the
 * remote's tags setting and the checkout. */
static int finish_repo(fetch_ctx *c, git_repository *repo, const git_oid *target, const char *branch,
		       bool default_head, const char *alternate, cbl_error **err)
{
	int rc;
	if (branch && (rc = setup_branch(c, repo, branch, default_head, err)) < 0)
		return rc;
	if (!c->o->tags && git_remote_set_autotag(repo, "origin", GIT_REMOTE_DOWNLOAD_TAGS_NONE) < 0)
		return local_error(c, "cannot configure the remote", err);
	return checkout_detached(c, repo, target, alternate, err);
}

/* The pack of a local source, written on a thread of its own while the
 * checkout reads the same objects from the source (an alternate of the
 * clone's object database, in memory only): the copy's CPU time and the
 * checkout's file creation overlap, as upload-pack and index-pack run
 * beside each other in `git clone`.  The thread calls no user callback. */
typedef struct pack_thread {
	source_local *lf;
	const char *gitdir;
	atomic_bool stop;
	uint64_t bytes;
	cbl_error *err;
	int rc;
} pack_thread;

static int pack_thread_progress(const git_indexer_progress *s, void *payload)
{
	(void)s;
	return atomic_load(&((pack_thread *)payload)->stop) ? -1 : 0;
}

static void *pack_thread_main(void *arg)
{
	pack_thread *pt = arg;
	pt->rc = source_local_write(pt->lf, pt->gitdir, pack_thread_progress, pt, &pt->bytes, &pt->err);
	return NULL;
}

/* The refs and the checkout, reading the objects from the source while
 * the pack is written (pack_thread); the pack's failure is the fetch's. */
static int local_copy(fetch_ctx *c, git_repository *repo, source_local *lf, const source_local_result *res,
		      uint64_t *bytes, cbl_error **err)
{
	pack_thread pt = {.lf = lf, .gitdir = git_repository_path(repo)};
	git_odb *odb = NULL;
	pthread_t th;
	bool threaded = false;
	int rc = 0;

	atomic_init(&pt.stop, false);
	if (git_repository_odb(&odb, repo) < 0 || git_odb_add_disk_alternate(odb, source_local_objects_dir(lf)) < 0) {
		rc = local_error(c, "cannot read the source's objects", err);
		goto out;
	}
	threaded = (git_libgit2_features() & GIT_FEATURE_THREADS) && pthread_create(&th, NULL, pack_thread_main, &pt) == 0;
	if (!threaded)
		pack_thread_main(&pt);
	if ((rc = source_local_refs(lf, repo, err)) == 0)
		rc = finish_repo(c, repo, &res->target, res->branch, res->default_head, source_local_objects_dir(lf),
				 err);
	if (threaded) {
		if (rc)
			atomic_store(&pt.stop, true);
		pthread_join(th, NULL);
	}
	if (!rc && pt.rc) {
		rc = pt.rc;
		if (err && !*err) {
			*err = pt.err;
			pt.err = NULL;
		}
	}
	*bytes = pt.bytes;
out:
	cbl_error_free(pt.err);
	git_odb_free(odb);
	return rc;
}

/* A local source: its objects copied straight from its object database
 * (source/local.c), no transport and no source cache (nothing to save). */
static int fetch_local(fetch_ctx *c, git_repository *repo, const char *url, const char *version, int level,
		       git_oid *out, cbl_error **err)
{
	git_remote *remote = NULL;
	source_local *lf = NULL;
	char *disp = source_url_display(url);
	source_local_req rq = {.url = url, .disp = disp, .version = version, .depth = c->o->depth, .tags = c->o->tags};
	source_local_result res = {0};
	uint64_t bytes = 0;
	int rc;

	if (c->o->object_cache_dir && *c->o->object_cache_dir) {
		cache_state(c, level, SOURCE_CACHE_SKIPPED, "a local repository");
		if (!level)
			c->st.local = true;
	}
	if ((rc = open_remote(c, repo, url, disp, &remote, err)) < 0 ||
	    (rc = source_local_open(&lf, &rq, &res, err)) < 0 || (rc = local_copy(c, repo, lf, &res, &bytes, err)) < 0)
		goto out;
	{
		char size[32];
		human_bytes(size, sizeof(size), (double)bytes);
		emitf(c, "Copying objects: 100%% (%u/%u), %s, done.", res.objects, res.objects, size);
	}
	c->st.received_objects += res.objects;
	c->st.received_bytes += bytes;
	if (c->o->submodules && (rc = update_submodules(c, repo, level, err)) < 0)
		goto out;
	git_oid_cpy(out, &res.target);
out:
	source_local_free(lf);
	source_local_result_release(&res);
	git_remote_free(remote);
	free(disp);
	return rc;
}

/* Fetches url at version into the freshly initialised repo, checks it out
 * and (opts->submodules) its submodules. */
static int fetch_repo(fetch_ctx *c, git_repository *repo, const char *url, const char *version, int level,
		      git_oid *out, cbl_error **err)
{
	if (source_url_is_local(url))
		return fetch_local(c, repo, url, version, level, out, err);
	const source_git_opts *o = c->o;
	git_remote *remote = NULL;
	source_refs adv = {0};
	source_plan p = {0};
	char *disp = source_url_display(url);
	int depth = o->depth, rc = 0;
	int fetch_depth = source_url_is_ssh(url) ? 0 : depth; /* see the top of this file */
	bool full = fetch_depth == 0, cut_done = false;
	git_oid target;
	repo_cache rcache = {0};

	remember_secrets(c, url);
	if ((rc = open_remote(c, repo, url, disp, &remote, err)) < 0 ||
	    (rc = list_remote(c, remote, disp, &adv, err)) < 0 ||
	    (rc = source_plan_resolve(&adv, version, disp, &p, err)) < 0 ||
	    (rc = cache_begin(c, repo, url, fetch_depth, level, &rcache, err)) < 0 ||
	    (rc = fetch_plan(c, repo, remote, &adv, &p, fetch_depth, disp, &target, &full, err)) < 0)
		goto out;
	if (rcache.sc && (rc = cache_end(c, repo, &rcache, &target, depth, level, disp, &cut_done, err)) < 0)
		goto out;
	if (full && depth > 0 && !cut_done && (rc = make_shallow(c, repo, &target, depth, err)) < 0)
		goto out;
	if ((rc = finish_repo(c, repo, &target, p.branch, p.default_head, NULL, err)) < 0)
		goto out;
	if (o->submodules && (rc = update_submodules(c, repo, level, err)) < 0)
		goto out;
	git_oid_cpy(out, &target);
out:
	if (rc == CBL_EIO && rcache.seeded && !check_cancel(c)) {
		/* perhaps the store's fault (a damaged object): never again */
		c->cache_suspect = true;
		source_cache_discard(rcache.sc);
	}
	c->unshallow = false;
	source_cache_free(rcache.sc);
	source_plan_release(&p);
	source_refs_release(&adv);
	git_remote_free(remote);
	free(disp);
	return rc;
}

/* ------------------------------------------------------------ the call --- */

static int dir_state(const char *path, bool *exists, cbl_error **err)
{
	struct stat st;
	*exists = false;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot access '%s'", path);
	}
	if (!S_ISDIR(st.st_mode))
		return cbl_error_set(err, CBL_EINVAL, "destination '%s' exists and is not a directory", path);
	DIR *d = opendir(path);
	if (!d)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", path);
	struct dirent *e;
	bool empty = true;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	if (!empty)
		return cbl_error_set(err, CBL_EINVAL, "destination '%s' is not empty", path);
	*exists = true;
	return 0;
}

/* A fresh directory "<dest>.tmp.<pid>.<random>" next to dest (the same
 * filesystem, so that the clone can be renamed into place). */
static int make_sibling_dir(const char *dest, char **out, cbl_error **err)
{
	char *tmp = NULL;
	for (int tries = 0;; tries++) {
		char uuid[37];
		cbl_uuid4(uuid);
		uuid[8] = '\0';
		free(tmp);
		tmp = cbl_xasprintf("%s.tmp.%ld.%s", dest, (long)getpid(), uuid);
		if (mkdir(tmp, 0777) == 0)
			break;
		if (errno != EEXIST || tries > 10) {
			int rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create a directory next to '%s'", dest);
			free(tmp);
			return rc;
		}
	}
	*out = tmp;
	return 0;
}

/* libgit2's timeouts from the build's deadline (process-wide: see source.h). */
static void set_deadline(int64_t deadline_mono_us)
{
	if (!deadline_mono_us)
		return;
	int64_t left = (deadline_mono_us - cbl_mono_us()) / 1000;
	int ms = left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
	git_libgit2_opts(GIT_OPT_SET_SERVER_CONNECT_TIMEOUT, ms);
	git_libgit2_opts(GIT_OPT_SET_SERVER_TIMEOUT, ms);
}

/* The top-level fetch into the empty directory tmp; when it failed with the
 * source cache's objects in it (c->cache_suspect), once more without them
 * (the store was discarded).  *oid: the checked-out commit. */
static int fetch_with_retry(fetch_ctx *c, const char *tmp, git_oid *oid, cbl_error **err)
{
	git_repository *repo = NULL;
	int rc = 0;
	for (int attempt = 0;; attempt++) {
		git_repository_init_options io = GIT_REPOSITORY_INIT_OPTIONS_INIT;
		cbl_error *ferr = NULL;
		io.flags = GIT_REPOSITORY_INIT_NO_REINIT;
		if (git_repository_init_ext(&repo, tmp, &io) < 0) {
			rc = local_error(c, "cannot create the repository", err);
			goto out;
		}
		rc = fetch_repo(c, repo, c->o->url, c->o->version, 0, oid, &ferr);
		if (check_cancel(c)) {
			/* whatever libgit2 made of the callback's refusal */
			cbl_error_free(ferr);
			rc = cbl_error_set(err, CBL_ESTOPPED, "fetch cancelled");
			goto out;
		}
		if (rc == 0)
			goto out;
		if (attempt == 0 && c->cache_suspect) {
			snprintf(c->st.note, sizeof(c->st.note), "the cached objects did not work: %s", ferr->msg);
			c->st.cache = SOURCE_CACHE_REBUILT;
			c->cache_suspect = false;
			c->st.cached_objects = 0;
			cbl_error_free(ferr);
			git_repository_free(repo);
			repo = NULL;
			if (cbl_rm_rf(tmp, err) < 0 || mkdir(tmp, 0777) < 0) {
				rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", tmp);
				goto out;
			}
			continue;
		}
		if (err && !*err)
			*err = ferr;
		else
			cbl_error_free(ferr);
		goto out;
	}
out:
	git_repository_free(repo);
	return rc;
}

int source_git_fetch(const source_git_opts *o, const char *dest_dir, char **resolved_sha_out, cbl_error **err)
{
	fetch_ctx c = {0};
	char *dest = NULL, *tmp = NULL;
	bool exists = false, inited = false;
	git_oid oid;
	int rc = 0;

	if (resolved_sha_out)
		*resolved_sha_out = NULL;
	if (!o || !o->url || !*o->url || !dest_dir || !*dest_dir)
		return cbl_error_set(err, CBL_EINVAL, "git source: a URL and a destination are required");
	if (o->depth < 0)
		return cbl_error_set(err, CBL_EINVAL, "git clone depth must be 0 (full) or positive, not %d",
				     o->depth);

	dest = cbl_xstrdup(dest_dir);
	for (size_t l = strlen(dest); l > 1 && dest[l - 1] == '/'; l--)
		dest[l - 1] = '\0';
	if ((rc = dir_state(dest, &exists, err)) < 0 || (rc = make_sibling_dir(dest, &tmp, err)) < 0)
		goto out;
	if (git_libgit2_init() < 0) {
		rc = cbl_error_set(err, CBL_EINTERNAL, "cannot initialise libgit2: %s", git_msg());
		goto out;
	}
	inited = true;
	set_deadline(o->deadline_mono_us);
	c.o = o;
	c.prog.cb = o->progress;
	c.prog.payload = o->payload;
	if ((rc = fetch_with_retry(&c, tmp, &oid, err)) < 0)
		goto out;
	/* rename(2) replaces an empty directory atomically. */
	if (rename(tmp, dest) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot move the clone to '%s'", dest);
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (resolved_sha_out) {
		char hex[GIT_OID_MAX_HEXSIZE + 1];
		git_oid_tostr(hex, sizeof(hex), &oid);
		*resolved_sha_out = cbl_xstrdup(hex);
	}
out:
	if (tmp)
		cbl_rm_rf(tmp, NULL);
	if (inited)
		git_libgit2_shutdown();
	if (o->stats) {
		*o->stats = c.st;
		if (!o->object_cache_dir || !*o->object_cache_dir)
			o->stats->cache = SOURCE_CACHE_OFF;
	}
	cbl_strv_release(&c.secrets);
	free(tmp);
	free(dest);
	return rc;
}

char *source_git_cache_summary(const source_git_stats *s)
{
	char got[32], line[512];
	human_bytes(got, sizeof(got), (double)s->received_bytes);
	switch (s->cache) {
	case SOURCE_CACHE_OFF:
		return cbl_xstrdup("Source cache: off");
	case SOURCE_CACHE_USED:
		snprintf(line, sizeof(line), "Source cache: used (%u objects cached); %u objects (%s) from the server%s%s%s",
			 s->cached_objects, s->received_objects, got, s->note[0] ? " (the cache was not updated: " : "",
			 s->note, s->note[0] ? ")" : "");
		break;
	case SOURCE_CACHE_EMPTY:
		snprintf(line, sizeof(line), "Source cache: empty for this repository; %u objects (%s) from the server, %s%s",
			 s->received_objects, got, s->note[0] ? "not kept: " : "kept for the next build", s->note);
		break;
	case SOURCE_CACHE_REBUILT:
		snprintf(line, sizeof(line), "Source cache: rebuilt (%s); %u objects (%s) from the server", s->note,
			 s->received_objects, got);
		break;
	case SOURCE_CACHE_SKIPPED:
		if (s->local) {
			snprintf(line, sizeof(line),
				 "Source cache: not used (a local repository: its objects are read directly); "
				 "%u objects (%s) copied",
				 s->received_objects, got);
			break;
		}
		/* fall through */
	default:
		snprintf(line, sizeof(line), "Source cache: not used (%s); %u objects (%s) from the server", s->note,
			 s->received_objects, got);
		break;
	}
	return cbl_xstrdup(line);
}
