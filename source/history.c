/* source/history.c - what a webhook event would say of a local repository's
 * history (see source.h). */
#include "source/source.h"
#include "util/alloc.h"

#include <git2.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static int git_fail(cbl_error **err, int code, const char *what, const char *arg)
{
	const git_error *ge = git_error_last();
	return cbl_error_set(err, code, "%s%s%s: %s", what, arg ? " " : "", arg ? arg : "",
			     ge && ge->message ? ge->message : "unknown error");
}

static int resolve(git_repository *repo, const char *rev, git_commit **out, cbl_error **err)
{
	git_object *obj = NULL;
	if (git_revparse_single(&obj, repo, rev) < 0) {
		/* a branch a clone only has as its remote's */
		const char *name = !strncmp(rev, "refs/heads/", 11) ? rev + 11 : rev;
		char *remote = cbl_xasprintf("refs/remotes/origin/%s", name);
		int r = git_revparse_single(&obj, repo, remote);
		free(remote);
		if (r < 0)
			return git_fail(err, CBL_ENOENT, "no such revision", rev);
	}
	int rc = git_object_peel((git_object **)out, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	return rc < 0 ? git_fail(err, CBL_ENOENT, "not a commit:", rev) : 0;
}

static char *oid_str(const git_oid *id)
{
	char buf[GIT_OID_MAX_HEXSIZE + 1];
	git_oid_tostr(buf, sizeof(buf), id);
	return cbl_xstrdup(buf);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int changed_paths(git_repository *repo, git_commit *from, git_commit *to, cbl_strv *out, cbl_error **err)
{
	git_tree *a = NULL, *b = NULL;
	git_diff *diff = NULL;
	int rc = 0;
	if ((from && git_commit_tree(&a, from) < 0) || git_commit_tree(&b, to) < 0 ||
	    git_diff_tree_to_tree(&diff, repo, a, b, NULL) < 0) {
		rc = git_fail(err, CBL_EIO, "git diff", NULL);
		goto out;
	}
	git_diff_find_options fo = GIT_DIFF_FIND_OPTIONS_INIT;
	fo.flags = GIT_DIFF_FIND_RENAMES;
	if (git_diff_find_similar(diff, &fo) < 0) {
		rc = git_fail(err, CBL_EIO, "git diff (renames)", NULL);
		goto out;
	}
	for (size_t i = 0; i < git_diff_num_deltas(diff); i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);
		const char *p = d->status == GIT_DELTA_DELETED ? d->old_file.path : d->new_file.path;
		if (p)
			cbl_strv_push(out, p);
	}
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
out:
	git_diff_free(diff);
	git_tree_free(a);
	git_tree_free(b);
	return rc;
}

int source_history_read(source_history *out, const char *repo_dir, const char *head_rev, const char *base_rev,
			cbl_error **err)
{
	git_libgit2_init();
	git_repository *repo = NULL;
	git_commit *head = NULL, *prev = NULL;
	int rc = 0;
	if (git_repository_open_ext(&repo, repo_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		rc = git_fail(err, CBL_ENOENT, "not a git repository:", repo_dir);
		goto out;
	}
	if ((rc = resolve(repo, head_rev ? head_rev : "HEAD", &head, err)) < 0)
		goto out;
	out->head_commit = oid_str(git_commit_id(head));
	const char *msg = git_commit_message(head);
	out->message = cbl_xstrdup(msg ? msg : "");
	if (base_rev) {
		git_commit *base = NULL;
		git_oid mb;
		if ((rc = resolve(repo, base_rev, &base, err)) < 0)
			goto out;
		int m = git_merge_base(&mb, repo, git_commit_id(head), git_commit_id(base));
		git_commit_free(base);
		if (m < 0) {
			rc = git_fail(err, CBL_ENOENT, "no merge base of the head and", base_rev);
			goto out;
		}
		if (git_commit_lookup(&prev, repo, &mb) < 0) {
			rc = git_fail(err, CBL_EIO, "git commit lookup", NULL);
			goto out;
		}
	} else if (git_commit_parentcount(head) > 0 && git_commit_parent(&prev, head, 0) < 0) {
		rc = git_fail(err, CBL_EIO, "the head's parent", NULL);
		goto out;
	}
	if (prev)
		out->prev_commit = oid_str(git_commit_id(prev));
	rc = changed_paths(repo, prev, head, &out->changed, err);
out:
	git_commit_free(head);
	git_commit_free(prev);
	git_repository_free(repo);
	return rc;
}

void source_history_release(source_history *h)
{
	free(h->head_commit);
	free(h->message);
	free(h->prev_commit);
	cbl_strv_release(&h->changed);
	h->head_commit = h->message = h->prev_commit = NULL;
}

int source_commit_pushed(const char *repo_dir, const char *commit, char **remote_ref, cbl_error **err)
{
	git_libgit2_init();
	git_repository *repo = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	git_oid want;
	int rc = 0;
	*remote_ref = NULL;
	if (git_oid_fromstr(&want, commit) < 0)
		return cbl_error_set(err, CBL_EINVAL, "not a commit id: %s", commit);
	if (git_repository_open_ext(&repo, repo_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
		return git_fail(err, CBL_ENOENT, "not a git repository:", repo_dir);
	if (git_reference_iterator_glob_new(&it, repo, "refs/remotes/*") < 0) {
		rc = git_fail(err, CBL_EIO, "listing the remote branches of", repo_dir);
		goto out;
	}
	while (!rc && git_reference_next(&ref, it) == 0) {
		git_object *obj = NULL;
		if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
			const git_oid *tip = git_object_id(obj);
			if (git_oid_equal(tip, &want) || git_graph_descendant_of(repo, tip, &want) == 1) {
				*remote_ref = cbl_xstrdup(git_reference_name(ref));
				rc = 1;
			}
		}
		git_object_free(obj);
		git_reference_free(ref);
		ref = NULL;
	}
out:
	git_reference_iterator_free(it);
	git_repository_free(repo);
	return rc;
}
