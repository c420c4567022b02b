/* source/checkout.c - what the checkout of a fresh clone may leave out
 * (source/source_internal.h).
 *
 * Why: libgit2's checkout looks up every file's attributes to choose its
 * filters (CRLF conversion, ident), and each lookup resolves the file's
 * whole path with realpath(3): some 18 readlink calls per file under a
 * build's directory, 90,000 for a checkout of 5,000 files, a good part of
 * the checkout's time.  When no attribute can be set and the config asks
 * for no conversion, no filter can apply, and the checkout may skip them
 * (git_checkout_options.disable_filters) with the same result.
 *
 * Where attributes come from, as libgit2 1.8 reads them (attr.c): the
 * .gitattributes files of the tree being checked out, $GIT_DIR/info/
 * attributes, core.attributesFile (default <XDG config dir>/git/attributes)
 * and the system's gitattributes.  Without attributes, only core.autocrlf
 * converts anything on checkout; core.eol is honoured only for files with
 * a text attribute, and is treated as a reason to keep the filters all the
 * same (the cautious side).
 */
#include "source/source_internal.h"

#include "util/alloc.h"
#include "util/fs.h"

#include <git2/sys/errors.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/banned.h"

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* A file named `name` in one of the directories of a libgit2 search path
 * (GIT_OPT_GET_SEARCH_PATH: ':'-separated). */
static bool in_search_path(git_config_level_t level, const char *name)
{
	git_buf dirs = GIT_BUF_INIT;
	bool found = false;
	if (git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH, level, &dirs) < 0) {
		git_error_clear();
		return true; /* unknown: as if there were one */
	}
	for (const char *p = dirs.ptr ? dirs.ptr : ""; *p && !found;) {
		size_t n = strcspn(p, ":");
		if (n) {
			char *dir = cbl_xstrndup(p, n), *f = cbl_path_join(dir, name);
			found = file_exists(f);
			free(f);
			free(dir);
		}
		p += n + (p[n] == ':');
	}
	git_buf_dispose(&dirs);
	return found;
}

/* An attributes file outside the tree, or config that converts. */
static bool outside_sources(git_repository *repo)
{
	git_config *cfg = NULL;
	git_config_entry *e = NULL;
	char *info = cbl_path_join(git_repository_path(repo), "info/attributes");
	bool any = file_exists(info);
	free(info);
	if (!any && git_repository_config_snapshot(&cfg, repo) < 0)
		any = true;
	if (!any && git_config_get_entry(&e, cfg, "core.autocrlf") == 0) {
		int b = 1;
		any = git_config_parse_bool(&b, e->value) < 0 || b;
		git_config_entry_free(e);
		e = NULL;
	}
	if (!any && git_config_get_entry(&e, cfg, "core.eol") == 0) {
		any = !e->value || (strcmp(e->value, "lf") && strcmp(e->value, "native"));
		git_config_entry_free(e);
		e = NULL;
	}
	if (!any && git_config_get_entry(&e, cfg, "core.attributesfile") == 0) {
		git_buf path = GIT_BUF_INIT;
		/* "~/..." expanded as libgit2 does; unreadable: assume a file */
		any = git_config_get_path(&path, cfg, "core.attributesfile") < 0 || file_exists(path.ptr);
		git_buf_dispose(&path);
		git_config_entry_free(e);
	} else if (!any) {
		any = in_search_path(GIT_CONFIG_LEVEL_XDG, "attributes");
	}
	if (!any)
		any = in_search_path(GIT_CONFIG_LEVEL_SYSTEM, "gitattributes");
	git_error_clear();
	git_config_free(cfg);
	return any;
}

static int find_gitattributes(const char *root, const git_tree_entry *entry, void *payload)
{
	(void)root;
	if (git_tree_entry_type(entry) == GIT_OBJECT_BLOB && !strcmp(git_tree_entry_name(entry), ".gitattributes")) {
		*(bool *)payload = true;
		return -1; /* found: stop */
	}
	return 0;
}

bool source_checkout_needs_filters(git_repository *repo, const git_oid *commit)
{
	git_commit *cm = NULL;
	git_tree *tree = NULL;
	bool found = false;
	if (outside_sources(repo))
		return true;
	if (git_commit_lookup(&cm, repo, commit) < 0 || git_commit_tree(&tree, cm) < 0)
		found = true;
	else if (git_tree_walk(tree, GIT_TREEWALK_PRE, find_gitattributes, &found) < 0 && !found)
		found = true; /* the walk failed: let the checkout find out */
	git_error_clear();
	git_tree_free(tree);
	git_commit_free(cm);
	return found;
}
