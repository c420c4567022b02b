/* source/refs.c - a repository's refs as a fetch sees them (what a server
 * advertises, or what a local repository holds), and CodeBuild's source
 * version resolved against them into a plan of what to fetch
 * (source/source_internal.h).  Shared by the network fetch (git.c) and the
 * local fast path (local.c).
 */
#include "source/source_internal.h"

#include "util/alloc.h"
#include "util/error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* -------------------------------------------------------------- refs --- */

void source_refs_release(source_refs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].name);
	free(a->v);
	free(a->default_branch);
	memset(a, 0, sizeof(*a));
}

const source_ref *source_refs_find(const source_refs *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->v[i].name, name))
			return &a->v[i];
	return NULL;
}

bool source_is_hex(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* ---------------------------------------------------------- resolving --- */

void source_plan_release(source_plan *p)
{
	free(p->ref);
	free(p->branch);
	free(p->sha);
	memset(p, 0, sizeof(*p));
}

static char *lower_str(const char *s)
{
	char *r = cbl_xstrdup(s);
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

static int ref_not_found(const char *ref, const char *disp, cbl_error **err)
{
	return cbl_error_set(err, CBL_ENOENT, "reference not found: %s in %s", ref, disp);
}

static void plan_for_ref(source_plan *p, const char *ref)
{
	p->ref = cbl_xstrdup(ref);
	if (!strncmp(ref, "refs/heads/", 11)) {
		p->kind = SOURCE_PLAN_BRANCH;
		p->branch = cbl_xstrdup(ref + 11);
	} else if (!strncmp(ref, "refs/tags/", 10)) {
		p->kind = SOURCE_PLAN_TAG;
	} else {
		p->kind = SOURCE_PLAN_REF;
	}
}

static bool is_pr_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

int source_plan_resolve(const source_refs *a, const char *version, const char *disp, source_plan *p,
			cbl_error **err)
{
	int rc = 0;
	char *tmp = NULL;
	memset(p, 0, sizeof(*p));

	if (!version || !*version || !strcmp(version, "HEAD")) {
		if (a->default_branch && !strncmp(a->default_branch, "refs/heads/", 11) &&
		    source_refs_find(a, a->default_branch)) {
			plan_for_ref(p, a->default_branch);
			p->default_head = true;
		} else if (a->has_head) {
			char hex[GIT_OID_MAX_HEXSIZE + 1];
			git_oid_tostr(hex, sizeof(hex), &a->head);
			p->kind = SOURCE_PLAN_COMMIT;
			p->sha = cbl_xstrdup(hex);
		} else if (!a->n) {
			rc = cbl_error_set(err, CBL_ENOENT, "repository is empty: %s", disp);
		} else {
			rc = ref_not_found("HEAD", disp, err);
		}
		goto out;
	}

	/* CodeBuild's "branch^{SHA}" */
	size_t vl = strlen(version);
	const char *caret = strstr(version, "^{");
	if (caret && caret != version && vl > 3 && version[vl - 1] == '}') {
		char *branch = cbl_xstrndup(version, (size_t)(caret - version));
		char *sha = cbl_xstrndup(caret + 2, (size_t)(version + vl - 1 - (caret + 2)));
		if (!source_is_hex(sha, SOURCE_MIN_ABBREV, GIT_OID_SHA1_HEXSIZE)) {
			rc = cbl_error_set(err, CBL_EINVAL,
					   "invalid source version '%s': expected branch^{commit SHA}", version);
			free(branch);
			free(sha);
			goto out;
		}
		p->kind = SOURCE_PLAN_COMMIT;
		p->branch = cbl_xstrdup(!strncmp(branch, "refs/heads/", 11) ? branch + 11 : branch);
		if (!strncmp(p->branch, "pr/", 3) && is_pr_number(p->branch + 3))
			/* pr/N^{SHA}: SHA on the pull request's head */
			p->ref = cbl_xasprintf("refs/pull/%s/head", p->branch + 3);
		else
			p->ref = cbl_xasprintf("refs/heads/%s", p->branch);
		p->sha = lower_str(sha);
		free(branch);
		free(sha);
		if (!source_refs_find(a, p->ref))
			rc = ref_not_found(p->ref, disp, err);
		goto out;
	}

	if (!strncmp(version, "pr/", 3) && is_pr_number(version + 3)) {
		tmp = cbl_xasprintf("refs/pull/%s/head", version + 3);
		if (!source_refs_find(a, tmp)) {
			rc = ref_not_found(tmp, disp, err);
			goto out;
		}
		plan_for_ref(p, tmp);
		goto out;
	}

	if (!strncmp(version, "refs/", 5)) {
		if (!source_refs_find(a, version)) {
			rc = ref_not_found(version, disp, err);
			goto out;
		}
		plan_for_ref(p, version);
		goto out;
	}

	/* A name: a branch first, then a tag (git clone --branch), then a commit. */
	tmp = cbl_xasprintf("refs/heads/%s", version);
	if (source_refs_find(a, tmp)) {
		plan_for_ref(p, tmp);
		goto out;
	}
	free(tmp);
	tmp = cbl_xasprintf("refs/tags/%s", version);
	if (source_refs_find(a, tmp)) {
		plan_for_ref(p, tmp);
		goto out;
	}
	if (source_is_hex(version, SOURCE_MIN_ABBREV, GIT_OID_SHA1_HEXSIZE)) {
		p->kind = SOURCE_PLAN_COMMIT;
		p->sha = lower_str(version);
		goto out;
	}
	free(tmp);
	tmp = cbl_xasprintf("refs/heads/%s", version);
	rc = ref_not_found(tmp, disp, err);
out:
	free(tmp);
	if (rc)
		source_plan_release(p);
	return rc;
}

void source_refs_add(source_refs *a, const char *name, const git_oid *oid)
{
	CBL_GROW(a->v, a->n + 1, a->cap);
	a->v[a->n].name = cbl_xstrdup(name);
	git_oid_cpy(&a->v[a->n++].oid, oid);
}
