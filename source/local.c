/* source/local.c - local git sources (a path or a file:// URL) without a
 * transport: the source repository's object database is read directly, and
 * only what the clone needs is copied (source_local_open & co. in
 * source/source_internal.h; git.c drives them and checks the result out).
 *
 * Why not libgit2's local transport: it refuses shallow fetches and copies
 * every object reachable from every ref of the source, so a depth-1 clone of
 * a big repository took seconds where `git clone --depth 1 file://...` takes
 * a fraction, and one object missing outside the requested history (a
 * mirror lacking a blob of refs/pull/N/merge) failed the clone although
 * nothing needed it.
 *
 * What is copied, and only read: the requested commit's depth window
 * (source_shallow_walk: the commits a `git clone --depth N` of the same ref
 * gets, with the same shallow boundary, the source's own boundary honoured as
 * grafts), every tree and blob of those commits (submodule commits are not
 * followed), the annotated tags on the way from the ref to the commit; for
 * "branch^{SHA}" below the branch's tip also the commits from the tip down
 * to SHA (the local branch is whole, as with the full fetch this replaces);
 * with `tags`, each tag and its own window (stopping where it meets what is
 * copied already).  One pack holds them (source/pack.c).  An object missing
 * outside that set is never looked at; one missing inside it is an error
 * naming it, found before anything is written (blobs are looked up, not
 * read, until the copy).
 *
 * Refs are read from the source the way the local transport advertised
 * them (HEAD with its target, every ref resolved), so a version resolves
 * as before (source_plan_resolve); a commit id is looked up in the source's
 * object database (it need not be on a ref, as with fetching by id).
 */
#include "source/source_internal.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/fs.h"

#include <git2/sys/errors.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* annotated tags pointing at annotated tags, peeled at most this deep */
#define MAX_PEEL 16
/* trees nested deeper than this are damage (git's paths end long before) */
#define MAX_TREE_DEPTH 4096

struct source_local {
	const source_local_req *rq;
	git_repository *src;
	git_odb *odb;
	source_refs refs;
	source_plan plan;
	source_shallow roots;    /* the source's own boundary */
	source_shallow boundary; /* the clone's */
	source_oidset have;      /* every object listed for the pack */
	source_oidlist objects;  /* the pack's objects, each once */
	source_oidlist commits;  /* the commits whose trees are to be listed */
	source_refs made;        /* the refs the clone gets */
	char *objects_dir;       /* the source's */
};

typedef source_local local_fetch;

static const char *gmsg(void)
{
	const git_error *e = git_error_last();
	return e && e->message && *e->message ? e->message : "unknown error";
}

static const char *version_name(const local_fetch *lf)
{
	const char *v = lf->rq->version;
	return v && *v ? v : "HEAD";
}

/* "the source repository URL lacks object X (needed for V at depth N)" */
static int missing_object(const local_fetch *lf, const git_oid *id, cbl_error **err)
{
	char hex[GIT_OID_MAX_HEXSIZE + 1], depth[32];
	git_oid_tostr(hex, sizeof(hex), id);
	if (lf->rq->depth > 0)
		snprintf(depth, sizeof(depth), "depth %d", lf->rq->depth);
	else
		snprintf(depth, sizeof(depth), "full depth");
	cbl_error_clear(err);
	return cbl_error_set(err, CBL_EIO, "the source repository %s lacks object %s (needed for %s at %s)",
			     lf->rq->disp, hex, version_name(lf), depth);
}

static void list_object(local_fetch *lf, const git_oid *id)
{
	if (source_oidset_add(&lf->have, id))
		source_oidlist_add(&lf->objects, id);
}

/* ------------------------------------------------------------- source --- */

static int open_source(local_fetch *lf, cbl_error **err)
{
	const char *disp = lf->rq->disp;
	char *path = NULL;
	int rc = 0;
	if (source_url_local_path(lf->rq->url, &path) < 0) {
		if (!strncmp(lf->rq->url, "file://", 7))
			return cbl_error_set(err, CBL_EINVAL,
					     "unsupported file:// URL %s: expected file:///path or file://localhost/path",
					     disp);
		return cbl_error_set(err, CBL_ENOENT, "repository not found: %s", disp);
	}
	int g = git_repository_open_ext(&lf->src, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
	if (g == GIT_ENOTFOUND) {
		git_error_clear();
		rc = cbl_error_set(err, CBL_ENOENT, "repository not found: %s", disp);
	} else if (g < 0) {
		rc = cbl_error_set(err, CBL_EIO, "cannot open the repository %s: %s", disp, gmsg());
	} else if (git_repository_odb(&lf->odb, lf->src) < 0) {
		rc = cbl_error_set(err, CBL_EIO, "cannot open the objects of %s: %s", disp, gmsg());
	} else if ((rc = source_shallow_read(&lf->roots, git_repository_path(lf->src), err)) < 0) {
		cbl_error_wrap(err, "%s", disp);
	}
	free(path);
	return rc;
}

/* HEAD (and what it points at) and every ref, resolved: what the local
 * transport advertised. */
static int list_refs(local_fetch *lf, cbl_error **err)
{
	git_reference *head = NULL, *ref = NULL;
	git_reference_iterator *it = NULL;
	int g, rc = 0;
	if (git_reference_lookup(&head, lf->src, "HEAD") == 0 &&
	    git_reference_type(head) == GIT_REFERENCE_SYMBOLIC)
		lf->refs.default_branch = cbl_xstrdup(git_reference_symbolic_target(head));
	if (git_reference_name_to_id(&lf->refs.head, lf->src, "HEAD") == 0)
		lf->refs.has_head = true;
	git_error_clear();
	if (git_reference_iterator_new(&it, lf->src) < 0) {
		rc = cbl_error_set(err, CBL_EIO, "cannot read the refs of %s: %s", lf->rq->disp, gmsg());
		goto out;
	}
	while ((g = git_reference_next(&ref, it)) == 0) {
		git_reference *res = NULL;
		if (git_reference_resolve(&res, ref) == 0)
			source_refs_add(&lf->refs, git_reference_name(ref), git_reference_target(res));
		git_reference_free(res);
		git_reference_free(ref);
	}
	if (g != GIT_ITEROVER)
		rc = cbl_error_set(err, CBL_EIO, "cannot read the refs of %s: %s", lf->rq->disp, gmsg());
	git_error_clear();
out:
	git_reference_iterator_free(it);
	git_reference_free(head);
	return rc;
}

/* The commit id names, through annotated tags, whose ids are appended to
 * tags.  1 (a commit), 0 (something else: a tree, a blob), <0 (a missing
 * object: error set). */
static int peel(local_fetch *lf, const git_oid *id, git_oid *commit, source_oidlist *tags, cbl_error **err)
{
	git_oid cur;
	git_oid_cpy(&cur, id);
	for (int i = 0; i < MAX_PEEL; i++) {
		git_odb_object *obj = NULL;
		if (git_odb_read(&obj, lf->odb, &cur) < 0)
			return missing_object(lf, &cur, err);
		git_object_t t = git_odb_object_type(obj);
		const char *s = git_odb_object_data(obj);
		size_t len = git_odb_object_size(obj);
		int ok = t == GIT_OBJECT_TAG && len > 7 + GIT_OID_SHA1_HEXSIZE && !memcmp(s, "object ", 7);
		git_oid next;
		if (ok)
			ok = git_oid_fromstrn(&next, s + 7, GIT_OID_SHA1_HEXSIZE) == 0;
		git_odb_object_free(obj);
		if (t == GIT_OBJECT_COMMIT) {
			git_oid_cpy(commit, &cur);
			return 1;
		}
		if (!ok)
			return 0;
		source_oidlist_add(tags, &cur);
		git_oid_cpy(&cur, &next);
	}
	return 0;
}

/* A ref of the plan: *commit = what it names, its tags listed, the clone
 * gets the ref as `as`. */
static int take_ref(local_fetch *lf, const char *name, const char *as, git_oid *commit, cbl_error **err)
{
	const source_ref *r = source_refs_find(&lf->refs, name); /* source_plan_resolve checked it */
	source_oidlist tags = {0};
	int p = peel(lf, &r->oid, commit, &tags, err);
	if (p == 0)
		p = cbl_error_set(err, CBL_EINVAL, "%s in %s does not point to a commit", name, lf->rq->disp);
	if (p > 0) {
		for (size_t i = 0; i < tags.n; i++)
			list_object(lf, &tags.v[i]);
		if (!source_refs_find(&lf->made, as))
			source_refs_add(&lf->made, as, &r->oid);
	}
	source_oidlist_release(&tags);
	return p < 0 ? p : 0;
}

/* A full or abbreviated commit id, looked up among the source's objects. */
static int find_commit(local_fetch *lf, const char *sha, git_oid *out, cbl_error **err)
{
	git_oid prefix;
	size_t len = strlen(sha), size = 0;
	git_object_t type = GIT_OBJECT_INVALID;
	if (git_oid_fromstrn(&prefix, sha, len) < 0)
		return cbl_error_set(err, CBL_ENOENT, "commit %s not found in %s", sha, lf->rq->disp);
	int g = git_odb_exists_prefix(out, lf->odb, &prefix, len);
	if (g == GIT_EAMBIGUOUS) {
		git_error_clear();
		return cbl_error_set(err, CBL_EINVAL, "commit prefix %s is ambiguous in %s", sha, lf->rq->disp);
	}
	if (g < 0 || git_odb_read_header(&size, &type, lf->odb, out) < 0 || type != GIT_OBJECT_COMMIT) {
		git_error_clear();
		return cbl_error_set(err, CBL_ENOENT, "commit %s not found in %s", sha, lf->rq->disp);
	}
	return 0;
}

/* What the plan names: *target (the commit to check out), and for
 * "branch^{SHA}" below the tip *tip (else *tip = *target). */
static int plan_target(local_fetch *lf, git_oid *target, git_oid *tip, cbl_error **err)
{
	const source_plan *p = &lf->plan;
	char *as = NULL;
	int rc = 0;
	switch (p->kind) {
	case SOURCE_PLAN_BRANCH:
		as = cbl_xasprintf("refs/remotes/origin/%s", p->branch);
		rc = take_ref(lf, p->ref, as, target, err);
		break;
	case SOURCE_PLAN_TAG:
	case SOURCE_PLAN_REF:
		rc = take_ref(lf, p->ref, p->ref, target, err);
		break;
	case SOURCE_PLAN_COMMIT:
		if ((rc = find_commit(lf, p->sha, target, err)) < 0 || !p->branch)
			break;
		as = cbl_xasprintf("refs/remotes/origin/%s", p->branch);
		if ((rc = take_ref(lf, p->ref, as, tip, err)) < 0)
			break;
		if (!git_oid_equal(tip, target) && git_graph_descendant_of(lf->src, tip, target) != 1) {
			git_error_clear();
			rc = cbl_error_set(err, CBL_ENOENT, "commit %s is not on branch %s in %s", p->sha, p->branch,
					   lf->rq->disp);
		}
		free(as);
		return rc;
	}
	git_oid_cpy(tip, target);
	free(as);
	return rc;
}

/* ------------------------------------------------------------ history --- */

/* The window of tip (primary: the requested commit; else it stops where it
 * meets what is listed already); its commits are listed. */
static int add_window(local_fetch *lf, const git_oid *tip, bool primary, cbl_error **err)
{
	source_oidlist got = {0};
	git_oid missing;
	source_walk_opts wo = {.roots = &lf->roots, .stop = primary ? NULL : &lf->have, .commits = &got,
			       .missing = &missing};
	int w = source_shallow_walk(lf->odb, tip, lf->rq->depth, &wo, &lf->boundary, NULL, err);
	if (w == 0)
		w = missing_object(lf, &missing, err);
	for (size_t i = 0; w > 0 && i < got.n; i++)
		if (source_oidset_add(&lf->have, &got.v[i])) {
			source_oidlist_add(&lf->objects, &got.v[i]);
			source_oidlist_add(&lf->commits, &got.v[i]);
		}
	source_oidlist_release(&got);
	return w < 0 ? w : 0;
}

/* "branch^{SHA}" below the tip: the commits from the tip down to the
 * window of SHA (git rev-list TIP ^SHA); one whose parent the clone does
 * not get becomes a shallow root. */
static int add_branch_path(local_fetch *lf, const git_oid *tip, const git_oid *target, cbl_error **err)
{
	git_revwalk *w = NULL;
	source_oidset path = {0};
	source_oidlist order = {0};
	git_oid id;
	int g, rc = 0;
	if (git_revwalk_new(&w, lf->src) < 0 || git_revwalk_push(w, tip) < 0 || git_revwalk_hide(w, target) < 0) {
		rc = cbl_error_set(err, CBL_EIO, "cannot walk the history of %s in %s: %s", lf->plan.branch,
				   lf->rq->disp, gmsg());
		goto out;
	}
	while ((g = git_revwalk_next(&id, w)) == 0)
		if (source_oidset_add(&path, &id))
			source_oidlist_add(&order, &id);
	if (g != GIT_ITEROVER) {
		rc = cbl_error_set(err, CBL_EIO, "cannot walk the history of %s in %s: %s", lf->plan.branch,
				   lf->rq->disp, gmsg());
		goto out;
	}
	git_error_clear();
	for (size_t i = 0; i < order.n; i++) {
		git_oid *par = NULL;
		size_t np = 0;
		int r = source_odb_parents(lf->odb, &order.v[i], &par, &np);
		if (r <= 0) {
			rc = r < 0 ? cbl_error_set(err, CBL_EIO, "cannot read a commit of %s: %s", lf->rq->disp, gmsg())
				   : missing_object(lf, &order.v[i], err);
			goto out;
		}
		bool cut = source_shallow_has(&lf->roots, &order.v[i]);
		for (size_t k = 0; k < np && !cut; k++)
			cut = !source_oidset_has(&path, &par[k]) && !source_oidset_has(&lf->have, &par[k]);
		free(par);
		if (cut)
			source_shallow_add(&lf->boundary, &order.v[i]);
		if (source_oidset_add(&lf->have, &order.v[i])) {
			source_oidlist_add(&lf->objects, &order.v[i]);
			source_oidlist_add(&lf->commits, &order.v[i]);
		}
	}
out:
	git_revwalk_free(w);
	source_oidset_release(&path);
	source_oidlist_release(&order);
	return rc;
}

/* With `tags`: every tag that names a commit, with its window. */
static int add_tags(local_fetch *lf, cbl_error **err)
{
	for (size_t i = 0; i < lf->refs.n; i++) {
		const char *name = lf->refs.v[i].name;
		source_oidlist tags = {0};
		git_oid commit;
		if (strncmp(name, "refs/tags/", 10) || source_refs_find(&lf->made, name))
			continue;
		int p = peel(lf, &lf->refs.v[i].oid, &commit, &tags, err);
		if (p > 0) {
			for (size_t k = 0; k < tags.n; k++)
				list_object(lf, &tags.v[k]);
			source_refs_add(&lf->made, name, &lf->refs.v[i].oid);
		}
		source_oidlist_release(&tags);
		if (p < 0 || (p > 0 && (p = add_window(lf, &commit, false, err)) < 0))
			return p;
	}
	return 0;
}

/* ---------------------------------------------------------- contents --- */

/* A tree and everything under it (gitlinks are other repositories'). */
static int add_tree(local_fetch *lf, const git_oid *tree, int level, cbl_error **err)
{
	git_odb_object *obj = NULL;
	int rc = 0;
	if (!source_oidset_add(&lf->have, tree))
		return 0;
	source_oidlist_add(&lf->objects, tree);
	if (level > MAX_TREE_DEPTH)
		return cbl_error_set(err, CBL_EIO, "trees nested too deep in %s", lf->rq->disp);
	if (git_odb_read(&obj, lf->odb, tree) < 0)
		return missing_object(lf, tree, err);
	const char *p = git_odb_object_data(obj), *end = p + git_odb_object_size(obj);
	while (p < end && !rc) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *nul = sp ? memchr(sp, '\0', (size_t)(end - sp)) : NULL;
		if (!nul || end - nul < 1 + GIT_OID_SHA1_SIZE || git_odb_object_type(obj) != GIT_OBJECT_TREE) {
			char hex[GIT_OID_MAX_HEXSIZE + 1];
			git_oid_tostr(hex, sizeof(hex), tree);
			rc = cbl_error_set(err, CBL_EIO, "tree %s in %s is malformed", hex, lf->rq->disp);
			break;
		}
		git_oid id;
		git_oid_fromraw(&id, (const unsigned char *)nul + 1);
		size_t ml = (size_t)(sp - p);
		if (ml == 5 && !memcmp(p, "40000", 5))
			rc = add_tree(lf, &id, level + 1, err);
		else if (!(ml == 6 && !memcmp(p, "160000", 6)))
			list_object(lf, &id);
		p = nul + 1 + GIT_OID_SHA1_SIZE;
	}
	git_odb_object_free(obj);
	return rc;
}

/* Every listed object is there (its index entry or loose file; blobs are
 * not read before the copy): a missing one is named before anything is
 * written, whichever of the copy and the checkout would meet it first. */
static int check_present(local_fetch *lf, cbl_error **err)
{
	for (size_t i = 0; i < lf->objects.n; i++)
		if (!git_odb_exists_ext(lf->odb, &lf->objects.v[i], GIT_ODB_LOOKUP_NO_REFRESH))
			return missing_object(lf, &lf->objects.v[i], err);
	return 0;
}

static int add_contents(local_fetch *lf, cbl_error **err)
{
	for (size_t i = 0; i < lf->commits.n; i++) {
		git_odb_object *obj = NULL;
		git_oid tree;
		if (git_odb_read(&obj, lf->odb, &lf->commits.v[i]) < 0)
			return missing_object(lf, &lf->commits.v[i], err);
		const char *s = git_odb_object_data(obj);
		bool ok = git_odb_object_size(obj) > 5 + GIT_OID_SHA1_HEXSIZE && !memcmp(s, "tree ", 5) &&
			  git_oid_fromstrn(&tree, s + 5, GIT_OID_SHA1_HEXSIZE) == 0;
		git_odb_object_free(obj);
		if (!ok)
			return cbl_error_set(err, CBL_EIO, "a commit of %s is malformed", lf->rq->disp);
		int rc = add_tree(lf, &tree, 0, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------- clone --- */

void source_local_free(source_local *lf)
{
	if (!lf)
		return;
	source_refs_release(&lf->made);
	source_oidlist_release(&lf->commits);
	source_oidlist_release(&lf->objects);
	source_oidset_release(&lf->have);
	source_shallow_release(&lf->boundary);
	source_shallow_release(&lf->roots);
	source_plan_release(&lf->plan);
	source_refs_release(&lf->refs);
	git_odb_free(lf->odb);
	git_repository_free(lf->src);
	free(lf->objects_dir);
	free(lf);
}

int source_local_open(source_local **out, const source_local_req *rq, source_local_result *res, cbl_error **err)
{
	source_local *lf = cbl_xcalloc(1, sizeof(*lf));
	git_oid tip;
	int rc;

	*out = NULL;
	memset(res, 0, sizeof(*res));
	lf->rq = rq;
	if ((rc = open_source(lf, err)) < 0 || (rc = list_refs(lf, err)) < 0 ||
	    (rc = source_plan_resolve(&lf->refs, rq->version, rq->disp, &lf->plan, err)) < 0 ||
	    (rc = plan_target(lf, &res->target, &tip, err)) < 0 || (rc = add_window(lf, &res->target, true, err)) < 0)
		goto out;
	if (!git_oid_equal(&tip, &res->target) && (rc = add_branch_path(lf, &tip, &res->target, err)) < 0)
		goto out;
	if (rq->tags && (rc = add_tags(lf, err)) < 0)
		goto out;
	/* the source's own shallow roots the clone gets stay roots */
	for (size_t i = 0; i < lf->commits.n; i++)
		if (source_shallow_has(&lf->roots, &lf->commits.v[i]))
			source_shallow_add(&lf->boundary, &lf->commits.v[i]);
	if ((rc = add_contents(lf, err)) < 0 || (rc = check_present(lf, err)) < 0)
		goto out;
	if (lf->plan.branch)
		res->branch = cbl_xstrdup(lf->plan.branch);
	res->default_head = lf->plan.default_head;
	res->objects = (unsigned)lf->objects.n;
	lf->objects_dir = cbl_path_join(git_repository_commondir(lf->src), "objects");
out:
	if (rc < 0)
		source_local_free(lf);
	else
		*out = lf;
	return rc;
}

const char *source_local_objects_dir(const source_local *lf)
{
	return lf->objects_dir;
}

int source_local_refs(source_local *lf, git_repository *dst, cbl_error **err)
{
	char *log = cbl_xasprintf("clone: from %s", lf->rq->disp);
	int rc = 0;
	for (size_t i = 0; i < lf->made.n && !rc; i++) {
		git_reference *r = NULL;
		if (git_reference_create(&r, dst, lf->made.v[i].name, &lf->made.v[i].oid, 1, log) < 0)
			rc = cbl_error_set(err, CBL_EIO, "cannot create %s in the clone: %s", lf->made.v[i].name,
					   gmsg());
		git_reference_free(r);
	}
	if (!rc)
		rc = source_shallow_write(&lf->boundary, git_repository_path(dst), err);
	free(log);
	return rc;
}

int source_local_write(source_local *lf, const char *gitdir, git_indexer_progress_cb progress, void *payload,
		       uint64_t *bytes, cbl_error **err)
{
	char *dir = cbl_path_join(gitdir, "objects/pack");
	git_oid missing;
	int rc = cbl_mkdir_p(dir, 0777, err);
	if (rc == 0)
		rc = source_pack_write(lf->odb, &lf->objects, dir, progress, payload, bytes, &missing, err);
	if (rc == CBL_ENOENT)
		rc = missing_object(lf, &missing, err);
	free(dir);
	return rc;
}

void source_local_result_release(source_local_result *r)
{
	free(r->branch);
	memset(r, 0, sizeof(*r));
}
