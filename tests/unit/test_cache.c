// Unit tests for cache/: paths and versions, refs, publish / lookup /
// fallback prefixes / immutable keys, the overlay merge (whiteouts, opaque
// directories, a real overlay mount when root), the no-sandbox diff save,
// killed saves, ENOSPC, concurrent saves, prune, explain, hash-files.
// (Line comments: the globs below contain slash-star.)
#include "tests/unit/tap.h"
#include "cache/cache.h"
#include "cache/cache_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static char *tmproot;
static bool can_mount;

static cbl_strv garbage; // strings used inline, freed at exit

static char *T(char *s)
{
	cbl_strv_push_take(&garbage, s);
	return s;
}

static char *P(const char *rel)
{
	return cbl_path_join(tmproot, rel);
}

static char *TP(const char *rel)
{
	return T(P(rel));
}

static void mkfile_t(const char *root, const char *rel, const char *content, time_t mtime)
{
	char *p = cbl_path_join(root, rel);
	char *dir = cbl_xstrdup(p);
	*strrchr(dir, '/') = '\0';
	cbl_mkdir_p(dir, 0755, NULL);
	unlink(p);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(content, f);
		fclose(f);
	}
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	utimensat(AT_FDCWD, p, ts, 0);
	free(dir);
	free(p);
}

static void mkfile(const char *root, const char *rel, const char *content)
{
	mkfile_t(root, rel, content, 1700000000);
}

static char *slurp(const char *path)
{
	char *s = NULL;
	size_t n;
	if (cbl_read_file(path, 0, &s, &n, NULL) < 0)
		return NULL;
	return s;
}

// "rel[mode]=content\n" for files, "rel->target\n" for symlinks, sorted.
static void tree_walk(const char *root, const char *rel, cbl_buf *out)
{
	char *dir = rel[0] ? cbl_path_join(root, rel) : cbl_xstrdup(root);
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	cbl_strv names = CBL_STRV_INIT;
	if (fd >= 0) {
		cache_read_dir_sorted(fd, &names, NULL);
		close(fd);
	}
	for (size_t i = 0; i < names.n; i++) {
		char *r = rel[0] ? cbl_xasprintf("%s/%s", rel, names.v[i]) : cbl_xstrdup(names.v[i]);
		char *full = cbl_path_join(root, r);
		struct stat st;
		if (lstat(full, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				tree_walk(root, r, out);
			} else if (S_ISLNK(st.st_mode)) {
				char t[4096];
				ssize_t l = readlink(full, t, sizeof(t) - 1);
				t[l > 0 ? l : 0] = '\0';
				cbl_buf_printf(out, "%s->%s\n", r, t);
			} else if (S_ISREG(st.st_mode)) {
				char *c = slurp(full);
				cbl_buf_printf(out, "%s[%o]=%s\n", r, (unsigned)(st.st_mode & 0777), c ? c : "?");
				free(c);
			} else {
				cbl_buf_printf(out, "%s(special)\n", r);
			}
		}
		free(full);
		free(r);
	}
	cbl_strv_release(&names);
	free(dir);
}

static char *tree(const char *root)
{
	cbl_buf b = CBL_BUF_INIT;
	tree_walk(root, "", &b);
	return cbl_buf_detach(&b);
}

typedef struct sess_args {
	const char *scope;
	const char *const *paths;
	const char *key;
	const char *const *fallbacks;
	spec_cache_action action;
	const char *src;
	const char *view;
	bool sandbox;
	cache_test_hook_fn hook;
	void *hook_payload;
} sess_args;

static size_t count(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static cache_session *new_session(cache_store *st, const sess_args *a)
{
	cache_session_opts o = CACHE_SESSION_OPTS_INIT;
	o.scope = a->scope ? a->scope : "proj";
	o.paths = a->paths;
	o.npaths = count(a->paths);
	o.key = a->key;
	o.fallback_keys = a->fallbacks;
	o.nfallback_keys = count(a->fallbacks);
	o.action = a->action;
	o.src_dir = a->src;
	o.src_view = a->view;
	o.sandbox = a->sandbox;
	o.build_id = "proj:0000";
	o.test_hook = a->hook;
	o.test_payload = a->hook_payload;
	cache_session *s = NULL;
	cbl_error *e = NULL;
	if (cache_session_new(&s, st, &o, &e) < 0) {
		printf("# session: %s\n", e ? e->msg : "?");
		cbl_error_free(e);
	}
	return s;
}

static char *save_line(cache_session *s)
{
	cbl_strv l = CBL_STRV_INIT;
	cache_session_log_lines(s, CACHE_STAGE_SAVE, &l);
	char *r = cbl_xstrdup(l.n ? l.v[0] : "");
	cbl_strv_release(&l);
	return r;
}

static char *restore_line(cache_session *s)
{
	cbl_strv l = CBL_STRV_INIT;
	cache_session_log_lines(s, CACHE_STAGE_RESTORE, &l);
	char *r = cbl_xstrdup(l.n ? l.v[0] : "");
	cbl_strv_release(&l);
	return r;
}

// The object a ref names ("" when none; caller frees).
static char *ref_object(cache_store *st, const char *scope, const char *version, const char *key)
{
	char *name = cache_ref_name(key);
	char *p = cbl_xasprintf("%s/%s/%s/%s", st->refs, scope, version, name);
	cache_ref r;
	char *obj = cbl_xstrdup("");
	if (cache_ref_read(p, &r, NULL) == 0) {
		free(obj);
		obj = cbl_xstrdup(r.object);
		cache_ref_release(&r);
	}
	free(p);
	free(name);
	return obj;
}

static size_t count_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	cbl_strv names = CBL_STRV_INIT;
	if (fd >= 0) {
		cache_read_dir_sorted(fd, &names, NULL);
		close(fd);
	}
	size_t n = names.n;
	cbl_strv_release(&names);
	return n;
}

static ino_t ino(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? st.st_ino : 0;
}

static int do_save(cache_session *s)
{
	cbl_error *e = NULL;
	int rc = cache_save(s, &e);
	if (rc < 0)
		printf("# save: %s\n", e ? e->msg : "?");
	cbl_error_free(e);
	return rc;
}

static int do_restore(cache_session *s)
{
	cbl_error *e = NULL;
	int rc = cache_restore(s, &e);
	if (rc < 0)
		printf("# restore: %s\n", e ? e->msg : "?");
	cbl_error_free(e);
	return rc;
}

// ------------------------------------------------------------------ paths

static void test_paths(void)
{
	char *n = NULL;
	cbl_error *e = NULL;
	ok(cache_normalize_path("./node_modules//**/*/", &n, NULL) == 0 && !strcmp(n, "node_modules/**/*"),
	   "paths: ./ and // and trailing / normalised (%s)", n);
	free(n);
	ok(cache_normalize_path("/root/./.m2/**/*", &n, NULL) == 0 && !strcmp(n, "/root/.m2/**/*"),
	   "paths: absolute stays absolute");
	free(n);
	is_int(cache_normalize_path("a/../../x", &n, &e), CBL_EINVAL, "paths: '..' refused");
	cbl_error_clear(&e);

	const char *p1[] = {"node_modules/**/*", "/root/.m2/**/*", "*.txt", "build", "node_modules/**/*.js",
			    "node_modules/.cache/**/*", NULL};
	cache_base *b = NULL;
	size_t nb = 0;
	char v1[65], v2[65], v3[65];
	ok(cache_parse_paths(p1, count(p1), &b, &nb, v1, NULL) == 0, "paths: parse");
	is_int(nb, 5, "paths: node_modules shares a base, 5 distinct bases");
	is_str(b[0].base, "node_modules", "paths: base node_modules");
	is_int(b[0].pats.n, 2, "paths: two patterns on node_modules");
	ok(b[0].match_all, "paths: **/* selects the whole tree");
	is_str(b[1].base, "/root/.m2", "paths: absolute base");
	is_str(b[2].base, ".", "paths: *.txt is based on the source dir");
	is_str(b[2].pats.v[0], "*.txt", "paths: its pattern");
	is_str(b[3].base, "build", "paths: a path without wildcards is a directory");
	is_str(b[3].pats.v[0], "**/*", "paths: ...cached whole");
	is_int(b[0].nnested, 1, "paths: node_modules/.cache is nested in node_modules");
	ok(b[2].nnested == 3, "paths: relative bases are nested in '.' (%zu)", b[2].nnested);
	ok(cache_base_in_nested(b, &b[0], ".cache/x") && !cache_base_in_nested(b, &b[0], "x/.cache"),
	   "paths: nested base owns its subtree");
	ok(!cache_base_selects(&b[2], "a/b.txt") && cache_base_selects(&b[2], "b.txt"),
	   "paths: *.txt selects top-level files only");
	cache_bases_free(b, nb);

	const char *p2[] = {"/root/.m2/**/*", "node_modules/**/*", "build", "*.txt", "./node_modules/**/*.js",
			    "node_modules/.cache/**/*", NULL};
	const char *p3[] = {"node_modules/**/*", NULL};
	cache_parse_paths(p2, count(p2), &b, &nb, v2, NULL);
	cache_bases_free(b, nb);
	cache_parse_paths(p3, count(p3), &b, &nb, v3, NULL);
	cache_bases_free(b, nb);
	ok(!strcmp(v1, v2), "version: independent of order and spelling");
	ok(strcmp(v1, v3), "version: differs with the paths");
	const char *none[] = {"", NULL};
	is_int(cache_parse_paths(none, 1, &b, &nb, v3, &e), CBL_EINVAL, "paths: none given");
	ok(e && strstr(e->msg, "no paths specified to be cached"), "paths: CodeBuild's message");
	cbl_error_clear(&e);

	char *r = cache_ref_name(NULL);
	is_str(r, "default", "ref: the rolling entry");
	free(r);
	r = cache_ref_name("npm-abc_1");
	is_str(r, "k-npm-abc_1", "ref: plain key");
	free(r);
	r = cache_ref_name("a.b/c d");
	is_str(r, "k-a%2Eb%2Fc%20d", "ref: encoded key (no '.', no '/')");
	free(r);
	char longk[300];
	memset(longk, '/', sizeof(longk) - 1);
	longk[sizeof(longk) - 1] = '\0';
	r = cache_ref_name(longk);
	ok(!strncmp(r, "h-", 2) && strlen(r) == 66, "ref: a long key is hashed");
	free(r);
}

// ------------------------------------------------ publish / lookup / keys

static void test_copy_roundtrip(cache_store *st)
{
	char *src = P("rt/src"), *src2 = P("rt/src2");
	mkfile(src, "node_modules/a/index.js", "module a");
	mkfile(src, "node_modules/b.js", "module b");
	mkfile(src, "node_modules/.bin/x", "#!/bin/sh");
	chmod(TP("rt/src/node_modules/.bin/x"), 0755);
	ok(symlink("../a/index.js", TP("rt/src/node_modules/.bin/a")) == 0, "roundtrip: a symlink in the tree");
	mkfile(src, "other.txt", "not cached");
	const char *paths[] = {"node_modules/**/*", NULL};
	sess_args a = {.paths = paths, .src = src, .scope = "rt"};
	cache_session *s = new_session(st, &a);
	ok(s != NULL, "roundtrip: session");
	is_int(do_restore(s), 0, "roundtrip: first restore");
	char *l = restore_line(s);
	ok(strstr(l, "miss") != NULL, "roundtrip: miss logged (%s)", l);
	free(l);
	is_int(do_save(s), 0, "roundtrip: first save");
	l = save_line(s);
	ok(strstr(l, "Cache save node_modules/**/*: saved (3 files") != NULL, "roundtrip: saved logged (%s)", l);
	free(l);
	char *obj = ref_object(st, "rt", cache_session_version(s), NULL);
	ok(strlen(obj) == 64, "roundtrip: rolling ref written");
	is_int(cache_verify_object(st, obj, NULL), 0, "roundtrip: object matches its name");
	cache_session_free(s);

	a.src = src2;
	s = new_session(st, &a);
	is_int(do_restore(s), 0, "roundtrip: second restore");
	l = restore_line(s);
	ok(strstr(l, "restored (3 files") && strstr(l, "copy"), "roundtrip: restore logged (%s)", l);
	free(l);
	char *t1 = tree(TP("rt/src/node_modules")), *t2 = tree(TP("rt/src2/node_modules"));
	is_str(t2, t1, "roundtrip: the files, links and modes come back");
	struct stat s1, s2;
	stat(TP("rt/src/node_modules/b.js"), &s1);
	stat(TP("rt/src2/node_modules/b.js"), &s2);
	ok(s1.st_mtim.tv_sec == s2.st_mtim.tv_sec, "roundtrip: mtimes kept");
	ok(access(TP("rt/src2/other.txt"), F_OK) < 0, "roundtrip: unmatched files not cached");
	ok(ino(TP("rt/src2/node_modules/b.js")) != ino(T(cbl_xasprintf("%s/%s/p0/b.js", st->objects, obj))),
	   "roundtrip: without the sandbox the build gets copies, not the snapshot's inodes");
	is_int(do_save(s), 0, "roundtrip: save without changes");
	l = save_line(s);
	ok(strstr(l, "not saved: no changes since restore") != NULL, "roundtrip: skipped (%s)", l);
	free(l);
	cache_session_free(s);
	free(t1);
	free(t2);
	free(obj);
	free(src);
	free(src2);
}

static void test_keys(cache_store *st)
{
	char *src = P("keys/src");
	const char *paths[] = {"deps/**/*", NULL};
	const char *fb[] = {"npm-", NULL};
	mkfile(src, "deps/one", "1");
	sess_args a = {.paths = paths, .src = src, .scope = "keys", .key = "npm-1"};
	cache_session *s = new_session(st, &a);
	do_restore(s);
	is_int(do_save(s), 0, "keys: save npm-1");
	char *o1 = ref_object(st, "keys", cache_session_version(s), "npm-1");
	ok(strlen(o1) == 64, "keys: keyed ref");
	cache_session_free(s);

	// the exact key hits, and is immutable
	mkfile(src, "deps/one", "changed");
	s = new_session(st, &a);
	do_restore(s);
	char *l = restore_line(s);
	ok(strstr(l, "hit on key npm-1") != NULL, "keys: exact hit (%s)", l);
	free(l);
	is_str(T(slurp(TP("keys/src/deps/one"))), "1", "keys: restored content");
	mkfile(src, "deps/one", "changed");
	is_int(do_save(s), 0, "keys: save under an existing key");
	l = save_line(s);
	ok(strstr(l, "cache key already exists, not saved") != NULL, "keys: immutable (%s)", l);
	free(l);
	char *o1b = ref_object(st, "keys", cache_session_version(s), "npm-1");
	is_str(o1b, o1, "keys: npm-1 unchanged");
	cache_session_free(s);

	// a new key misses, falls back by prefix, saves under the new key
	a.key = "npm-2";
	a.fallbacks = fb;
	s = new_session(st, &a);
	do_restore(s);
	l = restore_line(s);
	ok(strstr(l, "restored from fallback key npm-1") != NULL, "keys: fallback prefix (%s)", l);
	free(l);
	mkfile(src, "deps/two", "2");
	is_int(do_save(s), 0, "keys: save npm-2");
	l = save_line(s);
	ok(strstr(l, "saved under key npm-2 (2 files") != NULL, "keys: saved (%s)", l);
	free(l);
	char *o2 = ref_object(st, "keys", cache_session_version(s), "npm-2");
	ok(strlen(o2) == 64 && strcmp(o2, o1), "keys: a new object for npm-2");
	cache_session_free(s);

	// the newest matching entry wins
	a.key = "npm-3";
	char *fresh = P("keys/fresh");
	a.src = fresh;
	s = new_session(st, &a);
	do_restore(s);
	l = restore_line(s);
	ok(strstr(l, "restored from fallback key npm-2") != NULL, "keys: newest prefix match wins (%s)", l);
	free(l);
	is_str(T(slurp(TP("keys/fresh/deps/two"))), "2", "keys: npm-2's files");
	// nothing changed: the new key names the same object
	is_int(do_save(s), 0, "keys: save npm-3 unchanged");
	char *o3 = ref_object(st, "keys", cache_session_version(s), "npm-3");
	is_str(o3, o2, "keys: unchanged fallback content is shared, not copied");
	cache_session_free(s);

	// a prefix that matches nothing, and fallbacks without a key
	const char *fbx[] = {"yarn-", NULL};
	a.key = "npm-4";
	a.fallbacks = fbx;
	s = new_session(st, &a);
	do_restore(s);
	l = restore_line(s);
	ok(strstr(l, "miss (key npm-4; fallback keys yarn-)") != NULL, "keys: miss lists the keys (%s)", l);
	free(l);
	cache_session_free(s);
	a.key = NULL;
	a.fallbacks = fb;
	s = new_session(st, &a);
	do_restore(s);
	l = restore_line(s);
	ok(strstr(l, "miss") != NULL, "keys: fallback keys are ignored without a key (%s)", l);
	free(l);
	cache_session_free(s);

	// same key, other paths: another version, a miss
	const char *paths2[] = {"deps/**/*", "more/**/*", NULL};
	a.paths = paths2;
	a.key = "npm-1";
	a.fallbacks = NULL;
	s = new_session(st, &a);
	do_restore(s);
	l = restore_line(s);
	ok(strstr(l, "miss") != NULL, "keys: the version includes the paths (%s)", l);
	free(l);
	cache_session_free(s);

	// actions
	a.paths = paths;
	a.key = "npm-1";
	a.action = SPEC_CACHE_ACTION_SAVE;
	s = new_session(st, &a);
	do_restore(s);
	l = restore_line(s);
	ok(strstr(l, "skipped (action: save)") != NULL, "keys: action save restores nothing (%s)", l);
	free(l);
	do_save(s);
	l = save_line(s);
	ok(strstr(l, "cache key already exists") != NULL, "keys: ...and still honours immutability (%s)", l);
	free(l);
	cache_session_free(s);
	a.key = "npm-restore-only";
	a.action = SPEC_CACHE_ACTION_RESTORE;
	s = new_session(st, &a);
	do_restore(s);
	do_save(s);
	l = save_line(s);
	ok(strstr(l, "not saved: action: restore") != NULL, "keys: action restore never saves (%s)", l);
	free(l);
	cache_session_free(s);
	free(o1);
	free(o1b);
	free(o2);
	free(o3);
	free(src);
	free(fresh);
}

// ---------------------------------------------------- no-sandbox diff save

static void test_diff_save(cache_store *st)
{
	char *src = P("diff/src");
	const char *paths[] = {"lib/**/*", NULL};
	mkfile(src, "lib/same", "same content");
	mkfile(src, "lib/edit", "aaaa");
	mkfile(src, "lib/gone", "bye");
	mkfile(src, "lib/sub/deep", "deep");
	sess_args a = {.paths = paths, .src = src, .scope = "diff"};
	cache_session *s = new_session(st, &a);
	do_restore(s);
	do_save(s);
	char *o1 = ref_object(st, "diff", cache_session_version(s), NULL);
	cache_session_free(s);

	char *src2 = P("diff/src2");
	a.src = src2;
	s = new_session(st, &a);
	do_restore(s);
	// same size, same mtime, new content: only the ctime tells
	mkfile_t(src2, "lib/edit", "bbbb", 1700000000);
	char *gone = P("diff/src2/lib/gone");
	unlink(gone);
	mkfile(src2, "lib/new", "new");
	is_int(do_save(s), 0, "diff: save");
	char *l = save_line(s);
	ok(strstr(l, "saved (4 files") && strstr(l, "2 new or changed"), "diff: two changed (%s)", l);
	free(l);
	char *o2 = ref_object(st, "diff", cache_session_version(s), NULL);
	char *d1 = cbl_xasprintf("%s/%s/p0", st->objects, o1), *d2 = cbl_xasprintf("%s/%s/p0", st->objects, o2);
	char *t = tree(d2);
	is_str(t, "edit[644]=bbbb\nnew[644]=new\nsame[644]=same content\nsub/deep[644]=deep\n",
	       "diff: the new snapshot is the build's files");
	char *a1 = cbl_path_join(d1, "same"), *a2 = cbl_path_join(d2, "same");
	ok(ino(a1) == ino(a2) && ino(a1), "diff: an unchanged file is a hard link to the old snapshot");
	char *b1 = cbl_path_join(d1, "edit"), *b2 = cbl_path_join(d2, "edit");
	ok(ino(b1) != ino(b2), "diff: a rewritten file (same size and mtime) is copied");
	is_str(T(slurp(b1)), "aaaa", "diff: the old snapshot is untouched");
	is_int(cache_verify_object(st, o2, NULL), 0, "diff: new object verifies");
	cache_session_free(s);
	// the old object went away with the rolling ref (opportunistic gc)
	ok(access(d1, F_OK) < 0, "diff: the replaced snapshot was collected");
	free(t);
	free(a1);
	free(a2);
	free(b1);
	free(b2);
	free(d1);
	free(d2);
	free(o1);
	free(o2);
	free(gone);
	free(src);
	free(src2);
}

// ------------------------------------------------------------ overlay merge

static void whiteout(const char *path)
{
	if (mknod(path, S_IFCHR | 0, makedev(0, 0)) < 0)
		printf("# mknod %s: %s\n", path, strerror(errno));
}

static void test_merge(cache_store *st)
{
	if (geteuid() != 0) {
		skip("merge: whiteouts need root");
		return;
	}
	char *view = P("merge/view");
	cbl_mkdir_p(view, 0755, NULL);
	const char *paths[] = {"deps/**/*", NULL};
	sess_args a = {.paths = paths, .src = "/codebuild/output/src1/src", .view = view, .sandbox = true,
		       .scope = "merge"};
	cache_session *s = new_session(st, &a);
	do_restore(s);
	size_t nm = 0;
	const cache_mount *m = cache_session_mounts(s, &nm);
	is_int(nm, 1, "merge: one overlay");
	is_str(m[0].target, "/codebuild/output/src1/src/deps", "merge: target in the build's view");
	char *vt = cbl_path_join(view, "deps");
	is_str(m[0].view_target, vt, "merge: the same place under the source view");
	free(vt);
	// the build (simulated) writes into the upper dir
	char *up = cbl_xstrdup(m[0].upper);
	mkfile(up, "keep", "keep");
	mkfile(up, "edit", "v1");
	mkfile(up, "del", "del");
	mkfile(up, "dir/a", "a");
	mkfile(up, "dir/b", "b");
	mkfile(up, "dir2/x", "x");
	ino_t keep_ino = ino(T(cbl_path_join(up, "keep")));
	is_int(do_save(s), 0, "merge: first save");
	char *o1 = ref_object(st, "merge", cache_session_version(s), NULL);
	char *d1 = cbl_xasprintf("%s/%s/p0", st->objects, o1);
	char *k1 = cbl_path_join(d1, "keep");
	ok(ino(k1) == keep_ino, "merge: the upper's files are renamed in, not copied");
	cache_session_free(s);
	free(up);

	s = new_session(st, &a);
	do_restore(s);
	m = cache_session_mounts(s, &nm);
	is_str(m[0].lower, d1, "merge: lower is the snapshot's subtree");
	up = cbl_xstrdup(m[0].upper);
	// nothing changed: the fast path
	cache_session *s_same = new_session(st, &a);
	do_restore(s_same);
	do_save(s_same);
	char *l = save_line(s_same);
	ok(strstr(l, "not saved: no changes since restore") != NULL, "merge: empty upper, no save (%s)", l);
	free(l);
	cache_session_free(s_same);

	char *p = cbl_path_join(up, "del");
	whiteout(p); // deleted
	free(p);
	mkfile(up, "edit", "v2"); // copied up and changed
	p = cbl_path_join(up, "dir");
	mkdir(p, 0755); // rm -rf dir; mkdir dir: opaque
	if (setxattr(p, "trusted.overlay.opaque", "y", 1, 0) < 0)
		printf("# setxattr: %s\n", strerror(errno));
	free(p);
	mkfile(up, "dir/c", "c");
	p = cbl_path_join(up, "dir2");
	mkdir(p, 0755); // a merged (not opaque) directory with a deletion
	free(p);
	p = cbl_path_join(up, "dir2/x");
	whiteout(p);
	free(p);
	mkfile(up, "dir2/y", "y");
	mkfile(up, "new", "new");
	p = cbl_path_join(up, "dir");
	ino_t dir_ino = ino(p);
	free(p);
	is_int(do_save(s), 0, "merge: second save");
	char *o2 = ref_object(st, "merge", cache_session_version(s), NULL);
	char *d2 = cbl_xasprintf("%s/%s/p0", st->objects, o2);
	char *t = tree(d2);
	is_str(t, "dir/c[644]=c\ndir2/y[644]=y\nedit[644]=v2\nkeep[644]=keep\nnew[644]=new\n",
	       "merge: whiteouts delete, opaque dirs replace, upper files win");
	char *k2 = cbl_path_join(d2, "keep");
	ok(ino(k2) == keep_ino, "merge: unchanged files are hard links to the old snapshot");
	p = cbl_path_join(d2, "dir");
	char xv[8];
	ok(ino(p) == dir_ino, "merge: a directory with nothing to merge is moved in whole");
	ok(lgetxattr(p, "trusted.overlay.opaque", xv, sizeof(xv)) < 0, "merge: its opaque mark is dropped");
	free(p);
	l = save_line(s);
	ok(strstr(l, "4 new or changed") != NULL, "merge: change count (%s)", l);
	free(l);
	is_int(cache_verify_object(st, o2, NULL), 0, "merge: object verifies");
	cache_session_free(s);
	free(t);
	free(up);

	// a glob narrower than the base: only matching files are kept
	const char *js[] = {"deps/**/*.js", NULL};
	a.paths = js;
	s = new_session(st, &a);
	do_restore(s);
	m = cache_session_mounts(s, &nm);
	mkfile(m[0].upper, "a.js", "js");
	mkfile(m[0].upper, "a.txt", "txt");
	mkfile(m[0].upper, "sub/b.js", "js2");
	do_save(s);
	char *o3 = ref_object(st, "merge", cache_session_version(s), NULL);
	char *d3 = cbl_xasprintf("%s/%s/p0", st->objects, o3);
	t = tree(d3);
	is_str(t, "a.js[644]=js\nsub/b.js[644]=js2\n", "merge: only files matching the glob are cached");
	cache_session_free(s);

	// redirect_dir is refused, not saved wrong
	a.paths = paths;
	s = new_session(st, &a);
	do_restore(s);
	m = cache_session_mounts(s, &nm);
	p = cbl_path_join(m[0].upper, "moved");
	mkdir(p, 0755);
	setxattr(p, "trusted.overlay.redirect", "/dir", 4, 0);
	free(p);
	cbl_error *e = NULL;
	ok(cache_save(s, &e) < 0 && e && strstr(e->msg, "redirect_dir"), "merge: redirect_dir refused");
	cbl_error_free(e);
	char *o4 = ref_object(st, "merge", cache_session_version(s), NULL);
	is_str(o4, o2, "merge: the previous snapshot stays");
	cache_session_free(s);
	free(t);
	free(o1);
	free(o2);
	free(o3);
	free(o4);
	free(d1);
	free(d2);
	free(d3);
	free(k1);
	free(k2);
	free(view);
}

// A real overlay: what the build saw just before the unmount is what is saved.
/* userxattr: the overlay as a user namespace mounts it (not root), whose
 * whiteouts and opaque directories carry user.overlay.* attributes */
static void test_real_overlay(cache_store *st, bool userxattr)
{
	if (!can_mount) {
		skip("real overlay: not root or no mount namespace");
		return;
	}
	const char *scope = userxattr ? "ovlu" : "ovl";
	char *view = P(userxattr ? "ovlu/view" : "ovl/view"), *mnt = P(userxattr ? "ovlu/mnt" : "ovl/mnt");
	cbl_mkdir_p(view, 0755, NULL);
	cbl_mkdir_p(mnt, 0755, NULL);
	const char *paths[] = {"/root/.m2/**/*", NULL};
	sess_args a = {.paths = paths, .src = "/codebuild/output/src1/src", .view = view, .sandbox = true,
		       .scope = scope};
	cache_session *s = new_session(st, &a);
	do_restore(s);
	size_t nm;
	const cache_mount *m = cache_session_mounts(s, &nm);
	ok(nm == 1 && m[0].view_target == NULL, "overlay: an absolute path is mounted in the sandbox only");
	mkfile(m[0].upper, "repo/a.jar", "a");
	mkfile(m[0].upper, "repo/b.jar", "b");
	mkfile(m[0].upper, "repo/old/x", "x");
	mkfile(m[0].upper, "settings.xml", "<s/>");
	do_save(s);
	cache_session_free(s);

	s = new_session(st, &a);
	do_restore(s);
	m = cache_session_mounts(s, &nm);
	char opts[4096];
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s%s", m[0].lower, m[0].upper, m[0].work,
		 userxattr ? ",userxattr" : "");
	if (mount("overlay", mnt, "overlay", 0, opts) < 0) {
		skip("real overlay: mount: %s", strerror(errno));
		cache_session_free(s);
		free(view);
		free(mnt);
		return;
	}
	char *before = tree(mnt);
	is_str(before, "repo/a.jar[644]=a\nrepo/b.jar[644]=b\nrepo/old/x[644]=x\nsettings.xml[644]=<s/>\n",
	       "overlay: the build sees the snapshot");
	// the build: delete, replace a directory, edit, add
	char *pp = cbl_path_join(mnt, "repo/a.jar");
	unlink(pp);
	free(pp);
	pp = cbl_path_join(mnt, "repo/old");
	cbl_rm_rf(pp, NULL);
	mkdir(pp, 0755);
	free(pp);
	mkfile(mnt, "repo/old/y", "y");
	mkfile(mnt, "settings.xml", "<s2/>");
	mkfile(mnt, "repo/c.jar", "c");
	char *seen = tree(mnt);
	umount2(mnt, MNT_DETACH);
	char ux[8] = "";
	char *od = cbl_path_join(m[0].upper, "repo/old");
	ssize_t uxn = lgetxattr(od, userxattr ? "user.overlay.opaque" : "trusted.overlay.opaque", ux, sizeof(ux));
	free(od);
	ok(uxn == 1 && ux[0] == 'y', "overlay: the replaced directory is opaque by a %s attribute",
	   userxattr ? "user.overlay" : "trusted.overlay");
	is_int(do_save(s), 0, "overlay: save after unmount");
	char *o = ref_object(st, scope, cache_session_version(s), NULL);
	char *d = cbl_xasprintf("%s/%s/p0", st->objects, o);
	char *saved = tree(d);
	is_str(saved, seen, "overlay: the snapshot is exactly what the build saw");
	is_int(cache_verify_object(st, o, NULL), 0, "overlay: object verifies");
	cache_session_free(s);
	free(before);
	free(seen);
	free(saved);
	free(o);
	free(d);
	free(view);
	free(mnt);
}

/* The build may turn a cached directory of its source into a symlink (to
 * /etc, a home directory): the save must not read through it, nor a
 * restore write through it (attack: the first would put the host's files
 * in the next build's cache, the second write them on the host). */
static void test_symlinked_base_view(cache_store *st)
{
	char *view = P("sl/view"), *outside = P("sl/outside");
	mkfile(outside, "secret", "host secret");
	cbl_mkdir_p(view, 0755, NULL);
	ok(symlink(outside, TP("sl/view/node_modules")) == 0, "symlinked base: the build's link");
	const char *paths[] = {"node_modules/**/*", NULL};
	sess_args a = {.paths = paths, .src = view, .scope = "sl"};
	cache_session *s = new_session(st, &a);
	do_restore(s);
	is_int(do_save(s), 0, "symlinked base: the save goes on");
	char *l = save_line(s);
	ok(strstr(l, "not saved: no files matched") != NULL, "symlinked base: nothing read through it (%s)", l);
	free(l);
	char *obj = ref_object(st, "sl", cache_session_version(s), NULL);
	ok(!*obj, "symlinked base: no entry");
	free(obj);
	cache_session_free(s);
	// a real entry, then a view whose node_modules (or a parent) is a link
	unlink(TP("sl/view/node_modules"));
	mkfile(view, "node_modules/m.js", "module");
	s = new_session(st, &a);
	do_restore(s);
	do_save(s);
	cache_session_free(s);
	cbl_rm_rf(view, NULL);
	cbl_mkdir_p(view, 0755, NULL);
	ok(symlink(outside, TP("sl/view/node_modules")) == 0, "symlinked base: the link, before a restore");
	s = new_session(st, &a);
	do_restore(s);
	l = restore_line(s);
	ok(strstr(l, "failed") != NULL, "symlinked base: the restore refuses it (%s)", l);
	free(l);
	ok(access(TP("sl/outside/m.js"), F_OK) < 0, "symlinked base: nothing written through the link");
	cache_session_free(s);
	free(view);
	free(outside);
}

static void test_kinds(cache_store *st)
{
	const char *paths[] = {"/codebuild/**/*", "*.lock", "/opt/x/**/*", "/codebuild/output/src1/src/vendor/**/*",
			       NULL};
	char *view = P("kinds/view");
	cbl_mkdir_p(view, 0755, NULL);
	sess_args a = {.paths = paths, .src = "/codebuild/output/src1/src", .view = view, .sandbox = true,
		       .scope = "kinds"};
	cache_session *s = new_session(st, &a);
	do_restore(s);
	ok(s->bases[0].kind == CACHE_KIND_SKIP, "kinds: a base above the source is skipped");
	ok(s->bases[1].kind == CACHE_KIND_COPY, "kinds: the source dir itself is copied");
	ok(s->bases[2].kind == CACHE_KIND_MOUNT, "kinds: an absolute dir is an overlay");
	char *vt = cbl_path_join(view, "vendor");
	ok(s->bases[3].kind == CACHE_KIND_MOUNT && s->bases[3].host && !strcmp(s->bases[3].host, vt),
	   "kinds: an absolute path inside the source maps to the view");
	free(vt);
	cbl_strv l = CBL_STRV_INIT;
	cache_session_log_lines(s, CACHE_STAGE_RESTORE, &l);
	ok(l.n == 4 && strstr(l.v[0], "skipped: a cache path above the source"), "kinds: one log line per base");
	cbl_strv_release(&l);
	size_t nm = 0;
	cache_session_mounts(s, &nm);
	is_int(nm, 2, "kinds: two overlays");
	cache_session_free(s);
	// copy_in_source: what lies in the source is copied into the view
	cache_session_opts o = CACHE_SESSION_OPTS_INIT;
	o.scope = "kinds";
	o.paths = paths;
	o.npaths = count(paths);
	o.src_dir = "/codebuild/output/src1/src";
	o.src_view = view;
	o.sandbox = true;
	o.copy_in_source = true;
	s = NULL;
	cache_session_new(&s, st, &o, NULL);
	ok(s && s->bases[2].kind == CACHE_KIND_MOUNT && s->bases[3].kind == CACHE_KIND_COPY,
	   "kinds: copy_in_source copies the source's paths, mounts the others");
	cache_session_free(s);
	free(view);
}

// ------------------------------------------------------------- killed save

static const char *kill_point;

static void kill_hook(const char *point, void *payload)
{
	(void)payload;
	if (kill_point && !strcmp(point, kill_point))
		kill(getpid(), SIGKILL);
}

static void test_killed(void)
{
	static const char *const points[] = {"stage-begin", "stage-file", "staged", "synced",
					     "object-published", "ref-written"};
	char *dir = P("killed/store");
	char *srcA = P("killed/a"), *srcB = P("killed/b");
	for (int i = 0; i < 40; i++) {
		char rel[64], c[64];
		snprintf(rel, sizeof(rel), "lib/f%02d", i);
		snprintf(c, sizeof(c), "A%d", i);
		mkfile(srcA, rel, c);
		snprintf(c, sizeof(c), "B%d", i);
		mkfile(srcB, rel, c);
	}
	const char *paths[] = {"lib/**/*", NULL};
	cache_store *st = NULL;
	cache_store_open(&st, dir, NULL);
	sess_args a = {.paths = paths, .src = srcA, .scope = "k"};
	cache_session *s = new_session(st, &a);
	do_restore(s);
	do_save(s);
	char *good = ref_object(st, "k", cache_session_version(s), NULL);
	char *ver = cbl_xstrdup(cache_session_version(s));
	cache_session_free(s);
	cache_store_free(st);
	char *treeA = tree(srcA);

	for (size_t k = 0; k < sizeof(points) / sizeof(*points); k++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			cache_store *cs = NULL;
			if (cache_store_open(&cs, dir, NULL) < 0)
				_exit(3);
			kill_point = points[k];
			sess_args b = {.paths = paths, .src = srcB, .scope = "k", .hook = kill_hook};
			cache_session *x = new_session(cs, &b);
			if (!x || cache_restore(x, NULL) < 0)
				_exit(4);
			// the build rewrites every file after the restore
			for (int i = 0; i < 40; i++) {
				char rel[64], c[64];
				snprintf(rel, sizeof(rel), "lib/f%02d", i);
				snprintf(c, sizeof(c), "B%d", i);
				mkfile(srcB, rel, c);
			}
			cache_save(x, NULL);
			_exit(0);
		}
		int wst = 0;
		waitpid(pid, &wst, 0);
		ok(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL, "killed at %s: the saver died", points[k]);
		cache_store_open(&st, dir, NULL);
		is_int(count_dir(st->tmp), 0, "killed at %s: the next open cleans tmp/", points[k]);
		char *now = ref_object(st, "k", ver, NULL);
		bool published = !strcmp(points[k], "ref-written");
		ok(published ? strcmp(now, good) != 0 : strcmp(now, good) == 0,
		   "killed at %s: the ref names the %s snapshot", points[k], published ? "new" : "previous");
		is_int(cache_verify_object(st, now, NULL), 0, "killed at %s: that snapshot is intact", points[k]);
		// a new build restores it
		char *fresh = P("killed/fresh");
		cbl_rm_rf(fresh, NULL);
		sess_args c = {.paths = paths, .src = fresh, .scope = "k"};
		cache_session *r = new_session(st, &c);
		do_restore(r);
		char *tf = tree(fresh);
		char *want = published ? tree(srcB) : cbl_xstrdup(treeA);
		is_str(tf, want, "killed at %s: the next build restores exactly it", points[k]);
		cache_session_free(r);
		cache_prune_opts po = {0};
		cache_prune(st, &po, NULL, NULL);
		is_int(count_dir(st->objects), 1, "killed at %s: prune leaves only the referenced object", points[k]);
		if (published) {
			free(good);
			good = cbl_xstrdup(now);
			// back to A for the next rounds is not needed: B is the good one now
			free(treeA);
			treeA = tree(srcB);
		}
		free(tf);
		free(want);
		free(fresh);
		free(now);
		cache_store_free(st);
	}
	free(treeA);
	free(good);
	free(ver);
	free(dir);
	free(srcA);
	free(srcB);
}

// ------------------------------------------------------------------ ENOSPC

static void test_enospc(void)
{
	if (!can_mount) {
		skip("ENOSPC: needs root to mount a small tmpfs");
		return;
	}
	char *small = P("enospc/small");
	cbl_mkdir_p(small, 0755, NULL);
	if (mount("tmpfs", small, "tmpfs", 0, "size=1m") < 0) {
		skip("ENOSPC: mount tmpfs: %s", strerror(errno));
		free(small);
		return;
	}
	char *dir = cbl_path_join(small, "cache");
	char *src = P("enospc/src");
	mkfile(src, "lib/small", "small");
	const char *paths[] = {"lib/**/*", NULL};
	cache_store *st = NULL;
	cache_store_open(&st, dir, NULL);
	sess_args a = {.paths = paths, .src = src, .scope = "full"};
	cache_session *s = new_session(st, &a);
	do_restore(s);
	is_int(do_save(s), 0, "ENOSPC: a small save fits");
	char *good = ref_object(st, "full", cache_session_version(s), NULL);
	cache_session_free(s);
	// 3 MB does not fit in 1 MB
	char *big = P("enospc/src/lib/big");
	FILE *f = fopen(big, "w");
	char buf[4096];
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; f && i < 768; i++)
		fwrite(buf, 1, sizeof(buf), f);
	if (f)
		fclose(f);
	s = new_session(st, &a);
	do_restore(s);
	cbl_error *e = NULL;
	int rc = cache_save(s, &e);
	ok(rc < 0 && e && strstr(e->msg, "No space left on device"), "ENOSPC: a clear error (%s)",
	   e ? e->msg : "none");
	cbl_error_free(e);
	char *l = save_line(s);
	ok(strstr(l, "failed: ") != NULL, "ENOSPC: logged as a failed save (%s)", l);
	free(l);
	cache_session_free(s);
	cache_entry_list *el = NULL;
	cache_list(st, &el, NULL);
	ok(el && el->n == 1 && !strcmp(el->items[0].object, good), "ENOSPC: the ref still names the old snapshot");
	cache_entry_list_free(el);
	is_int(cache_verify_object(st, good, NULL), 0, "ENOSPC: the old snapshot is intact");
	is_int(count_dir(st->tmp), 0, "ENOSPC: no temporary files left");
	char *fresh = P("enospc/fresh");
	s = new_session(st, &(sess_args){.paths = paths, .src = fresh, .scope = "full"});
	do_restore(s);
	char *t = tree(fresh);
	is_str(t, "lib/small[644]=small\n", "ENOSPC: the next build restores the old snapshot");
	cache_session_free(s);
	free(t);
	cache_store_free(st);
	umount2(small, MNT_DETACH);
	free(fresh);
	free(good);
	free(big);
	free(dir);
	free(src);
	free(small);
}

// ---------------------------------------------------------- concurrent saves

static void test_concurrent(void)
{
	char *dir = P("conc/store");
	char *src[2] = {P("conc/x"), P("conc/y")};
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < 200; i++) {
			char rel[64], c[64];
			snprintf(rel, sizeof(rel), "out/d%d/f%03d", i % 7, i);
			snprintf(c, sizeof(c), "%c%d", w ? 'Y' : 'X', i);
			mkfile(src[w], rel, c);
		}
	const char *paths[] = {"out/**/*", NULL};
	for (int keyed = 0; keyed < 2; keyed++) {
		int go[2];
		if (pipe(go) < 0)
			return;
		pid_t pids[2];
		fflush(stdout);
		for (int w = 0; w < 2; w++) {
			pids[w] = fork();
			if (pids[w] == 0) {
				close(go[1]);
				cache_store *cs = NULL;
				if (cache_store_open(&cs, dir, NULL) < 0)
					_exit(3);
				sess_args b = {.paths = paths, .src = src[w], .scope = "conc",
					       .key = keyed ? "same-key" : NULL};
				cache_session *x = new_session(cs, &b);
				char c;
				if (read(go[0], &c, 1) != 1) // both start together
					_exit(5);
				if (!x || cache_restore(x, NULL) < 0 || cache_save(x, NULL) < 0)
					_exit(4);
				int code = x->sres == CACHE_S_SAVED ? 10 : 11;
				cache_session_free(x);
				cache_store_free(cs);
				_exit(code);
			}
		}
		close(go[0]);
		if (write(go[1], "gg", 2) != 2)
			printf("# barrier write failed\n");
		close(go[1]);
		int codes[2];
		for (int w = 0; w < 2; w++) {
			int wst = 0;
			waitpid(pids[w], &wst, 0);
			codes[w] = WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
		}
		if (keyed)
			ok((codes[0] == 10 && codes[1] == 11) || (codes[0] == 11 && codes[1] == 10) ||
				   (codes[0] == 10 && codes[1] == 10),
			   "concurrent keyed: both succeed (%d, %d)", codes[0], codes[1]);
		else
			ok(codes[0] == 10 && codes[1] == 10, "concurrent: both saves succeed (%d, %d)", codes[0],
			   codes[1]);
		cache_store *st = NULL;
		cache_store_open(&st, dir, NULL);
		char *fresh = P("conc/fresh");
		cbl_rm_rf(fresh, NULL);
		sess_args c = {.paths = paths, .src = fresh, .scope = "conc", .key = keyed ? "same-key" : NULL};
		cache_session *r = new_session(st, &c);
		do_restore(r);
		char *tf = tree(fresh), *tx = tree(src[0]), *ty = tree(src[1]);
		ok(!strcmp(tf, tx) || !strcmp(tf, ty), "concurrent%s: the cache equals exactly one of the saves",
		   keyed ? " keyed" : "");
		if (keyed && codes[0] != codes[1])
			ok(!strcmp(tf, codes[0] == 10 ? tx : ty), "concurrent keyed: the first publisher's content");
		cache_entry_list *el = NULL;
		cache_list(st, &el, NULL);
		is_int(cache_verify_object(st, el && el->n ? el->items[keyed ? el->n - 1 : 0].object : "", NULL), 0,
		       "concurrent%s: the object verifies", keyed ? " keyed" : "");
		cache_entry_list_free(el);
		cache_session_free(r);
		is_int(count_dir(st->tmp), 0, "concurrent%s: no temporary files left", keyed ? " keyed" : "");
		cache_store_free(st);
		free(tf);
		free(tx);
		free(ty);
		free(fresh);
	}
	free(dir);
	free(src[0]);
	free(src[1]);
}

// ------------------------------------------------------------------- prune

static void test_prune(void)
{
	char *dir = P("prune/store");
	cache_store *st = NULL;
	cache_store_open(&st, dir, NULL);
	const char *paths[] = {"c/**/*", NULL};
	const char *scopes[] = {"p-old", "p-mid", "p-new"};
	char *objs[3];
	char *ver = NULL;
	for (int i = 0; i < 3; i++) {
		char *src = cbl_xasprintf("%s/prune/%s", tmproot, scopes[i]);
		char content[2048];
		memset(content, 'a' + i, sizeof(content) - 1);
		content[sizeof(content) - 1] = '\0';
		mkfile(src, "c/file", content);
		cache_session *s = new_session(st, &(sess_args){.paths = paths, .src = src, .scope = scopes[i]});
		do_restore(s);
		do_save(s);
		objs[i] = ref_object(st, scopes[i], cache_session_version(s), NULL);
		free(ver);
		ver = cbl_xstrdup(cache_session_version(s));
		cache_session_free(s);
		// last used: 3, 2, 1 hours ago
		char *rp = cbl_xasprintf("%s/%s/%s/default", st->refs, scopes[i], ver);
		struct timespec ts[2] = {{time(NULL) - 3600 * (3 - i), 0}, {time(NULL) - 3600 * (3 - i), 0}};
		utimensat(AT_FDCWD, rp, ts, 0);
		free(rp);
		free(src);
	}
	cache_entry_list *el = NULL;
	cache_list(st, &el, NULL);
	is_int(el->n, 3, "ls: three entries");
	ok(el->n == 3 && !strcmp(el->items[0].scope, "p-mid") && el->items[0].files == 1 &&
		   el->items[0].bytes == 2047 && el->items[0].paths.n == 1,
	   "ls: sorted, with files, bytes and paths");
	cache_entry_list_free(el);

	// a live session keeps what it restored even when its entry goes
	char *fresh = P("prune/fresh");
	cache_session *live = new_session(st, &(sess_args){.paths = paths, .src = fresh, .scope = "p-old"});
	do_restore(live);
	// restoring made p-old recently used again: age it back
	char *rp = cbl_xasprintf("%s/p-old/%s/default", st->refs, ver);
	struct timespec ts[2] = {{time(NULL) - 3 * 3600, 0}, {time(NULL) - 3 * 3600, 0}};
	utimensat(AT_FDCWD, rp, ts, 0);
	free(rp);

	cache_prune_opts po = {.older_than_ms = (int64_t)150 * 60 * 1000};
	cache_prune_result res = {0};
	is_int(cache_prune(st, &po, &res, NULL), 0, "prune --older-than");
	is_int(res.refs_removed, 1, "prune: the entry unused for 3h is dropped");
	is_int(res.objects_removed, 0, "prune: its snapshot stays while a build uses it");
	char *od = cbl_path_join(st->objects, objs[0]);
	ok(access(od, F_OK) == 0, "prune: in-use snapshot still there");
	cache_session_free(live);
	memset(&res, 0, sizeof(res));
	po.older_than_ms = 0;
	cache_prune(st, &po, &res, NULL);
	is_int(res.objects_removed, 1, "prune: collected once the build is gone");
	ok(access(od, F_OK) < 0, "prune: snapshot removed");

	po.has_max_bytes = true;
	po.max_bytes = 3000;
	memset(&res, 0, sizeof(res));
	cache_prune(st, &po, &res, NULL);
	is_int(res.refs_removed, 1, "prune --max-size: least recently used dropped");
	cache_list(st, &el, NULL);
	ok(el->n == 1 && !strcmp(el->items[0].scope, "p-new"), "prune --max-size: the newest stays");
	cache_entry_list_free(el);
	is_int(count_dir(st->objects), 1, "prune: one snapshot left");
	free(od);
	for (int i = 0; i < 3; i++)
		free(objs[i]);
	free(ver);
	free(fresh);
	cache_store_free(st);
	free(dir);
}

// ------------------------------------------------------- explain, hash-files

static void test_explain(cache_store *st)
{
	char *src = P("expl/src");
	mkfile(src, "m/a", "a");
	const char *paths[] = {"m/**/*", NULL};
	const char *fb[] = {"k-", NULL};
	cache_session *s = new_session(st, &(sess_args){.paths = paths, .src = src, .scope = "ex", .key = "k-1",
							 .fallbacks = fb});
	do_restore(s);
	do_save(s);
	cbl_error *e = NULL;
	is_int(cache_explain_write(s, "ex", &e), 0, "explain: written");
	cbl_error_clear(&e);
	cache_session_free(s);
	json_t *j = NULL;
	is_int(cache_explain_load(st, "ex", &j, NULL), 0, "explain: loaded");
	cbl_buf b = CBL_BUF_INIT;
	if (j)
		cache_explain_format(j, &b);
	const char *t = cbl_buf_cstr(&b);
	ok(strstr(t, "Key:            k-1") && strstr(t, "Fallback keys:  k-") && strstr(t, "Restore:        miss") &&
		   strstr(t, "Save:           saved") && strstr(t, "m/**/* -> ") && strstr(t, "saved 1 files"),
	   "explain: keys, results, paths");
	if (!strstr(t, "Save:           saved"))
		printf("%s", t);
	json_decref(j);
	cbl_buf_release(&b);
	is_int(cache_explain_load(st, "nope", &j, &e), CBL_ENOENT, "explain: unknown project");
	cbl_error_clear(&e);
	free(src);
}

static void test_hash_files(void)
{
	char *d = P("hash");
	mkfile(d, "package-lock.json", "{\"lock\": 1}\n");
	mkfile(d, "sub/b.lock", "b");
	mkfile(d, "sub/a.lock", "a");
	mkfile(d, "other", "o");
	const char *pats[] = {"package-lock.json", "sub/**/*"};
	char hex[65];
	size_t n = 0;
	is_int(cache_hash_files(d, pats, 2, hex, &n, NULL), 0, "hash-files: ok");
	is_int(n, 3, "hash-files: three files");
	// the documented input, computed independently
	const char *names[] = {"package-lock.json", "sub/a.lock", "sub/b.lock"};
	const char *contents[] = {"{\"lock\": 1}\n", "a", "b"};
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (int i = 0; i < 3; i++) {
		unsigned char dd[32];
		unsigned dl;
		char h[65];
		EVP_Digest(contents[i], strlen(contents[i]), dd, &dl, EVP_sha256(), NULL);
		cache_hex(dd, 32, h);
		EVP_DigestUpdate(ctx, names[i], strlen(names[i]) + 1);
		EVP_DigestUpdate(ctx, h, 64);
		EVP_DigestUpdate(ctx, "\n", 1);
	}
	unsigned char dd[32];
	unsigned dl;
	char want[65];
	EVP_DigestFinal_ex(ctx, dd, &dl);
	EVP_MD_CTX_free(ctx);
	cache_hex(dd, 32, want);
	is_str(hex, want, "hash-files: path NUL hex-digest LF per file, sorted");
	mkfile(d, "sub/a.lock", "A");
	char hex2[65];
	cache_hash_files(d, pats, 2, hex2, &n, NULL);
	ok(strcmp(hex, hex2), "hash-files: changes with a file's content");
	const char *none[] = {"*.nothing"};
	is_int(cache_hash_files(d, none, 1, hex2, &n, NULL), 0, "hash-files: no match is not an error");
	ok(n == 0 && hex2[0] == '\0', "hash-files: no match, no hash");
	free(d);
}

static void test_copy_merge(void)
{
	char *src = P("cm/src"), *dst = P("cm/dst");
	mkfile(src, "a/file", "new");
	mkfile(src, "b", "b-file");
	mkfile(dst, "a/file", "old");
	mkfile(dst, "a/keep", "keep");
	mkfile(dst, "b/was-a-dir", "x");
	uint64_t files = 0, bytes = 0;
	is_int(cache_copy_merge(src, dst, &files, &bytes, NULL), 0, "copy merge: ok");
	char *t = tree(dst);
	is_str(t, "a/file[644]=new\na/keep[644]=keep\nb[644]=b-file\n", "copy merge: files replace, dirs merge");
	ok(files == 2 && bytes == 9, "copy merge: counts");
	free(t);
	free(src);
	free(dst);
}

static void test_tmp_clean(void)
{
	char *dir = P("janitor");
	cache_store *st = NULL;
	cache_store_open(&st, dir, NULL);
	char *live = NULL, *dead = NULL;
	int lfd = -1, dfd = -1;
	cache_tmp_create(st, &live, &lfd, NULL);
	cache_tmp_create(st, &dead, &dfd, NULL);
	mkfile(dead, "stage/x", "x");
	close(dfd); // its owner died
	char *stray = cbl_path_join(st->tmp, "stray-file");
	mkfile(st->tmp, "stray-file", "x");
	cache_tmp_clean(st);
	ok(access(live, F_OK) == 0, "janitor: a live session's dir stays");
	ok(access(dead, F_OK) < 0, "janitor: a dead session's dir goes");
	ok(access(stray, F_OK) < 0, "janitor: stray files go");
	close(lfd);
	cache_tmp_clean(st);
	ok(access(live, F_OK) < 0, "janitor: ...and the live one once released");
	cache_store_free(st);
	free(live);
	free(dead);
	free(stray);
	free(dir);
}


// A cached path of the source is the build's: a symlink it plants there
// (node_modules -> a host directory) is never followed, neither to restore
// into nor to save from.
static void test_symlinked_base(cache_store *st)
{
	char *src = TP("sl/src"), *src2 = TP("sl/src2"), *src3 = TP("sl/src3");
	char *victim = TP("sl/victim"), *secret = TP("sl/secret");
	mkfile(src, "node_modules/a.txt", "A");
	mkfile(secret, "s.txt", "HOST-SECRET-CONTENT");
	cbl_mkdir_p(victim, 0755, NULL);
	cbl_mkdir_p(src2, 0755, NULL);
	const char *paths[] = {"node_modules/**/*", NULL};
	sess_args a = {.paths = paths, .src = src, .scope = "symlinked"};
	cache_session *s = new_session(st, &a);
	is_int(do_restore(s), 0, "symlinked base: first restore (miss)");
	is_int(do_save(s), 0, "symlinked base: saved from a real directory");
	cache_session_free(s);

	// restore into a source whose node_modules is a symlink to a host directory
	ok(symlink(victim, TP("sl/src2/node_modules")) == 0, "symlinked base: node_modules -> host directory");
	a.src = src2;
	s = new_session(st, &a);
	do_restore(s);
	cache_session_free(s);
	ok(count_dir(victim) == 0, "symlinked base: nothing restored into the host directory");

	// save from a source whose node_modules is a symlink to a host directory
	cbl_mkdir_p(src3, 0755, NULL);
	ok(symlink(secret, TP("sl/src3/node_modules")) == 0, "symlinked base: node_modules -> host secrets");
	a.src = src3;
	a.scope = "symlinked2";
	s = new_session(st, &a);
	do_restore(s);
	do_save(s);
	cache_session_free(s);
	char out[512];
	snprintf(out, sizeof(out), "grep -rl HOST-SECRET-CONTENT %s/store >/dev/null 2>&1", tmproot);
	ok(system(out) != 0, "symlinked base: no host file saved into the cache");
}

/* Phase checkpoints: a key per part, a layer copied with its whiteouts
 * and opaque directories, the newest of a key found, replaced ones pruned. */

/* dir's root-layer/ as the upper layer it copied (node_modules/dep/index.js,
 * and as root the whiteout and the opaque directory), and again through
 * cache_checkpoint_copy_layer */
static bool has_root_layer(const char *dir)
{
	bool good = true;
	char *rl = cbl_path_join(dir, "root-layer");
	char *copy = cbl_xasprintf("%s-copy", dir);
	const char *both[] = {rl, copy};
	if (cache_checkpoint_copy_layer(rl, copy, NULL) < 0)
		good = false;
	for (size_t i = 0; i < 2 && good; i++) {
		char *f = cbl_path_join(both[i], "node_modules/dep/index.js");
		good = access(f, F_OK) == 0;
		free(f);
		if (good && geteuid() == 0) {
			char *w = cbl_path_join(both[i], "deleted.txt"), *nm = cbl_path_join(both[i], "node_modules");
			struct stat sst;
			char v[4] = "";
			good = lstat(w, &sst) == 0 && S_ISCHR(sst.st_mode) && sst.st_rdev == makedev(0, 0) &&
			       getxattr(nm, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
			free(w);
			free(nm);
		}
	}
	cbl_rm_rf(copy, NULL);
	free(copy);
	free(rl);
	return good;
}

/* A fill callback: a file in layer/ and in private/tmp/, "../x" refused
 * as a private name; "fail": an error after the parts. */
static int fill_parts(void *arg, cache_checkpoint_stage *stage, cbl_error **err)
{
	int fd = -1;
	if (cache_checkpoint_stage_dir(stage, CACHE_CHECKPOINT_LAYER, NULL, &fd, err) < 0)
		return -1;
	int f = openat(fd, "f", O_WRONLY | O_CREAT | O_EXCL, 0644);
	(void)!write(f, "abc", 3);
	close(f);
	close(fd);
	if (cache_checkpoint_stage_dir(stage, CACHE_CHECKPOINT_PRIVATE, "tmp", &fd, err) < 0)
		return -1;
	f = openat(fd, "f", O_WRONLY | O_CREAT | O_EXCL, 0644);
	(void)!write(f, "defg", 4);
	close(f);
	close(fd);
	cbl_error *e = NULL;
	int bad = cache_checkpoint_stage_dir(stage, CACHE_CHECKPOINT_PRIVATE, "..", &fd, &e);
	cbl_error_free(e);
	if (bad != CBL_EINVAL)
		return cbl_error_set(err, CBL_EIO, "a private name '..' was taken");
	cache_checkpoint_stage_count(stage, 2, 7);
	return strcmp(arg, "fail") ? 0 : cbl_error_set(err, CBL_EIO, "the copy failed");
}

/* Private directories kept: read beneath a root without following any
 * symlink (a /var made a symlink: /var/tmp not kept), links kept as links,
 * FIFOs left out. */
static void test_checkpoint_private(cache_store *st)
{
	char *r = P("ckpt-private-root");
	const char *mk[] = {"tmp/d", "home/u", "etc-like", "mnt"};
	for (size_t i = 0; i < 4; i++) {
		char *d = cbl_path_join(r, mk[i]);
		cbl_mkdir_p(d, 0755, NULL);
		free(d);
	}
	char *x = cbl_path_join(r, "tmp/d/x"), *y = cbl_path_join(r, "home/u/y"), *s = cbl_path_join(r, "etc-like/s");
	cbl_write_file_atomic(x, "x\n", 2, 0644, false, NULL);
	cbl_write_file_atomic(y, "y\n", 2, 0600, false, NULL);
	cbl_write_file_atomic(s, "secret\n", 7, 0600, false, NULL);
	char *leak = cbl_path_join(r, "tmp/leak"), *fifo = cbl_path_join(r, "tmp/fifo"), *var = cbl_path_join(r, "var");
	(void)!symlink("/etc/passwd", leak);
	mkfifo(fifo, 0644);
	(void)!symlink("etc-like", var); /* var/tmp -> etc-like/tmp: never followed */
	const char *paths[] = {"tmp", "var/tmp", "home", "srv", "mnt"}, *names[] = {"tmp", "var-tmp", "home", "srv", "mnt"};
	json_t *parts = json_object();
	cache_checkpoint_opts o = {.scope = "priv", .key = "k", .phase = "INSTALL", .parts = parts,
				   .private_root = r, .private_paths = paths, .private_names = names, .n_private = 5};
	cbl_error *e = NULL;
	is_int(cache_checkpoint_save(st, &o, &e), 0, "private directories: saved");
	cbl_error_clear(&e);
	char *dir = NULL;
	json_t *meta = NULL;
	cache_checkpoint_find(st, "priv", "k", &dir, &meta, NULL);
	char *gx = cbl_xasprintf("%s/private/tmp/d/x", dir ? dir : "?"), *gy = cbl_xasprintf("%s/private/home/u/y", dir ? dir : "?");
	char *gl = cbl_xasprintf("%s/private/tmp/leak", dir ? dir : "?"), *gf = cbl_xasprintf("%s/private/tmp/fifo", dir ? dir : "?");
	char *gv = cbl_xasprintf("%s/private/var-tmp", dir ? dir : "?"), *gs = cbl_xasprintf("%s/private/srv", dir ? dir : "?");
	struct stat sy;
	ok(access(gx, F_OK) == 0 && lstat(gy, &sy) == 0 && (sy.st_mode & 0777) == 0600,
	   "private directories: their files as private/<name>/, modes kept");
	char target[64] = "";
	ok(readlink(gl, target, sizeof(target) - 1) > 0 && !strcmp(target, "/etc/passwd"),
	   "private directories: a symlink kept as a symlink");
	struct stat sf;
	ok(lstat(gf, &sf) < 0, "private directories: a FIFO left out, never opened");
	ok(lstat(gv, &sf) < 0, "private directories: one reached through a symlink (/var) not kept");
	ok(lstat(gs, &sf) < 0, "private directories: a missing one not kept");
	char *gm = cbl_xasprintf("%s/private/mnt", dir ? dir : "?");
	ok(lstat(gm, &sf) < 0, "private directories: an empty one not kept");
	free(gm);
	const char *bad[] = {"../x"}, *badn[] = {"x/y"};
	o.private_paths = bad;
	o.private_names = badn;
	o.n_private = 1;
	is_int(cache_checkpoint_save(st, &o, &e), CBL_EINVAL, "private directories: a name that is a path refused");
	cbl_error_clear(&e);
	json_decref(parts);
	json_decref(meta);
	free(dir);
	const char *fr[] = {gx, gy, gl, gf, gv, gs, x, y, s, leak, fifo, var, r};
	for (size_t i = 0; i < sizeof(fr) / sizeof(*fr); i++)
		free((void *)fr[i]);
}

/* Spares: made beside the checkpoint (which stays as it was), claimed by
 * one caller only, counted by the list, removed with their checkpoint. */
static void test_checkpoint_spares(cache_store *st)
{
	char *up = P("spare-upper");
	char *sub = cbl_path_join(up, "usr/local/bin");
	cbl_mkdir_p(sub, 0755, NULL);
	char *f = cbl_path_join(sub, "tool");
	cbl_write_file_atomic(f, "v1\n", 3, 0755, false, NULL);
	json_t *parts = json_object();
	cache_checkpoint_opts o = {.scope = "sp", .key = "k1", .phase = "INSTALL", .parts = parts, .root_upper = up};
	cache_checkpoint_save(st, &o, NULL);
	char *dir = NULL, *none = NULL;
	json_t *meta = NULL;
	cache_checkpoint_find(st, "sp", "k1", &dir, &meta, NULL);
	cbl_error *e = NULL;
	int lock = -1;
	is_int(cache_checkpoint_claim_spare(st, dir, &none, &lock, &e), CBL_ENOENT, "spares: none ready, none claimed");
	cbl_error_clear(&e);
	is_int(cache_checkpoint_make_spare(st, dir, &e), 0, "spares: one made");
	cbl_error_clear(&e);
	is_int(cache_checkpoint_make_spare(st, dir, &e), 0, "spares: again, one is ready");
	cbl_error_clear(&e);
	cache_checkpoint_info *l = NULL;
	size_t n = 0;
	cache_checkpoint_list(st, &l, &n, NULL);
	bool counted = false;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].scope, "sp"))
			counted = l[i].spare_bytes == 3 && l[i].bytes == 6;
	ok(counted, "spares: counted in the checkpoint's size");
	cache_checkpoint_list_free(l, n);
	char *claimed = NULL, *other = NULL;
	int lock2 = -1;
	is_int(cache_checkpoint_claim_spare(st, dir, &claimed, &lock, &e), 0, "spares: claimed");
	cbl_error_clear(&e);
	is_int(cache_checkpoint_claim_spare(st, dir, &other, &lock2, &e), CBL_ENOENT, "spares: claimed once only");
	cbl_error_clear(&e);
	char *cf = claimed ? cbl_path_join(claimed, "upper/usr/local/bin/tool") : NULL;
	char *cw = claimed ? cbl_path_join(claimed, "work") : NULL;
	ok(cf && access(cf, F_OK) == 0 && access(cw, F_OK) == 0, "spares: the claim holds upper/ (the layer) and work/");
	if (cf)
		cbl_write_file_atomic(cf, "changed\n", 8, 0755, false, NULL);
	char *orig = cbl_path_join(dir, "root-layer/usr/local/bin/tool"), *text = NULL;
	size_t len = 0;
	cbl_read_file(orig, 64, &text, &len, NULL);
	ok(text && !strcmp(text, "v1\n"), "spares: writing the claimed copy leaves the checkpoint as it was");
	free(text);
	/* a checkpoint that is not the store's */
	is_int(cache_checkpoint_make_spare(st, "/etc", &e), CBL_EINVAL, "spares: a directory outside the store refused");
	cbl_error_clear(&e);
	char *evil = cbl_xasprintf("%s/../../x", dir);
	is_int(cache_checkpoint_claim_spare(st, evil, &other, &lock2, &e), CBL_EINVAL, "spares: a path with .. refused");
	cbl_error_clear(&e);
	free(evil);
	/* replaced by a newer one and pruned: its spare goes with it */
	cache_checkpoint_make_spare(st, dir, NULL);
	cache_checkpoint_save(st, &o, NULL);
	size_t removed = 0;
	uint64_t bytes = 0;
	cache_checkpoint_prune(st, 0, &removed, &bytes, NULL);
	char *kd = cbl_xstrdup(dir);
	*strrchr(kd, '/') = '\0';
	cbl_strv names = CBL_STRV_INIT;
	int kfd = open(kd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (kfd >= 0) {
		cache_read_dir_sorted(kfd, &names, NULL);
		close(kfd);
	}
	bool left = false;
	for (size_t i = 0; i < names.n; i++)
		left |= !strncmp(names.v[i], ".spare-", 7);
	ok(removed == 1 && bytes == 6 && names.n == 1 && !left, "spares: pruned with their checkpoint");
	cbl_strv_release(&names);
	if (claimed)
		cbl_rm_rf(claimed, NULL);
	if (lock >= 0)
		close(lock);
	free(kd);
	free(orig);
	free(cf);
	free(cw);
	free(claimed);
	free(dir);
	json_decref(meta);
	json_decref(parts);
	free(f);
	free(sub);
	free(up);
}

static void test_checkpoints(cache_store *st)
{
	const char *names[] = {"image", "INSTALL"}, *v1[] = {"host", "npm ci"}, *v2[] = {"host", "npm i"};
	json_t *p1 = NULL, *p2 = NULL;
	char k1[65], k1b[65], k2[65];
	cache_checkpoint_key(names, v1, 2, &p1, k1);
	json_t *tmp = NULL;
	cache_checkpoint_key(names, v1, 2, &tmp, k1b);
	json_decref(tmp);
	cache_checkpoint_key(names, v2, 2, &p2, k2);
	ok(!strcmp(k1, k1b) && strcmp(k1, k2), "checkpoint keys: stable, and a changed part changes them");
	ok(json_equal(json_object_get(p1, "image"), json_object_get(p2, "image")) &&
	   !json_equal(json_object_get(p1, "INSTALL"), json_object_get(p2, "INSTALL")), "each part hashed apart");
	char *up = P("ckpt-upper");
	char *sub = cbl_path_join(up, "node_modules/dep");
	cbl_mkdir_p(sub, 0755, NULL);
	char *f = cbl_path_join(sub, "index.js");
	cbl_write_file_atomic(f, "x\n", 2, 0644, false, NULL);
	char *nm = cbl_path_join(up, "node_modules");
	bool root = geteuid() == 0;
	if (root) {
		setxattr(nm, "trusted.overlay.opaque", "y", 1, 0);
		char *wo = cbl_path_join(up, "deleted.txt");
		mknod(wo, S_IFCHR | 0, makedev(0, 0));
		free(wo);
	}
	char *ln = cbl_path_join(up, "link");
	(void)!symlink("/etc/passwd", ln);
	cache_checkpoint_opts o = {.scope = "proj", .key = k1, .phase = "INSTALL", .build_id = "proj:1",
				   .src_upper = up, .src_inner = "/codebuild/output/src1/src", .env_sh = "export A='1'\n",
				   .dir_txt = "/codebuild/output/src1/src/sub", .parts = p1};
	cbl_error *e = NULL;
	is_int(cache_checkpoint_save(st, &o, &e), 0, "a checkpoint saved");
	cbl_error_clear(&e);
	char *dir = NULL;
	json_t *meta = NULL;
	is_int(cache_checkpoint_find(st, "proj", k1, &dir, &meta, &e), 0, "and found by its key");
	cbl_error_clear(&e);
	char *got = dir ? cbl_path_join(dir, "layer/node_modules/dep/index.js") : NULL;
	ok(got && access(got, F_OK) == 0, "its layer has the files");
	char *gl = dir ? cbl_path_join(dir, "layer/link") : NULL;
	char target[64] = "";
	ok(gl && readlink(gl, target, sizeof(target) - 1) > 0 && !strcmp(target, "/etc/passwd"),
	   "a symlink stays a symlink, never followed");
	if (root && dir) {
		char *w = cbl_path_join(dir, "layer/deleted.txt"), *o2 = cbl_path_join(dir, "layer/node_modules");
		struct stat sst;
		char v[4] = "";
		ok(lstat(w, &sst) == 0 && S_ISCHR(sst.st_mode) && sst.st_rdev == makedev(0, 0), "a whiteout kept");
		ok(getxattr(o2, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y', "an opaque directory kept");
		free(w);
		free(o2);
	}
	ok(meta && !strcmp(json_string_value(json_object_get(meta, "phase")), "INSTALL") &&
	   json_integer_value(json_object_get(meta, "files")) == 2, "its meta: phase, files");
	char *dir2 = NULL;
	json_t *m2 = NULL;
	is_int(cache_checkpoint_find(st, "proj", k2, &dir2, &m2, &e), CBL_ENOENT, "another key: none");
	cbl_error_clear(&e);
	is_int(cache_checkpoint_find(st, "../x", k1, &dir2, &m2, &e), CBL_EINVAL, "a scope that is a path: refused");
	cbl_error_clear(&e);
	/* a newer one of the same key wins; the older is pruned */
	o.build_id = "proj:2";
	o.root_upper = up; /* the changes outside the source: the same kind of layer */
	cache_checkpoint_save(st, &o, NULL);
	char *dir3 = NULL;
	json_t *m3 = NULL;
	cache_checkpoint_find(st, "proj", k1, &dir3, &m3, NULL);
	ok(m3 && !strcmp(json_string_value(json_object_get(m3, "buildId")), "proj:2"), "the newest wins");
	ok(dir && !has_root_layer(dir), "no root_upper: no root-layer");
	ok(dir3 && has_root_layer(dir3), "root_upper: copied into root-layer, whiteouts and opaque directories kept");
	cache_checkpoint_info *l = NULL;
	size_t n = 0, removed = 0;
	cache_checkpoint_list(st, &l, &n, NULL);
	ok(n == 2 && !l[0].newest && l[1].newest, "both listed, the older as replaced");
	cache_checkpoint_list_free(l, n);
	cache_checkpoint_prune(st, 0, &removed, NULL, NULL);
	cache_checkpoint_list(st, &l, &n, NULL);
	ok(removed == 1 && n == 1 && l[0].newest, "prune drops the replaced one");
	cache_checkpoint_list_free(l, n);
	/* filled by the caller (a normal user's: the sandbox copies its
	 * layers into the staging directory), who took it in meta.json */
	o.scope = "fillproj"; /* its own: the spares' test counts proj's */
	o.fill = fill_parts;
	o.fill_arg = (void *)(uintptr_t)"fill";
	o.taken_as = "user";
	o.build_id = "proj:3";
	is_int(cache_checkpoint_save(st, &o, &e), 0, "a checkpoint filled by a callback");
	cbl_error_clear(&e);
	char *dir4 = NULL;
	json_t *m4 = NULL;
	cache_checkpoint_find(st, "fillproj", k1, &dir4, &m4, NULL);
	char *pf = dir4 ? cbl_path_join(dir4, "private/tmp/f") : NULL, *lf = dir4 ? cbl_path_join(dir4, "layer/f") : NULL;
	ok(pf && lf && access(pf, F_OK) == 0 && access(lf, F_OK) == 0 && !has_root_layer(dir4),
	   "the callback's parts: layer/, private/tmp/ (no src_upper, root_upper copy)");
	ok(m4 && !strcmp(json_string_value(json_object_get(m4, "takenAs")), "user") &&
	   json_integer_value(json_object_get(m4, "files")) == 2 && json_integer_value(json_object_get(m4, "bytes")) == 7,
	   "its meta: takenAs, the files and bytes the callback counted");
	ok(m3 && !strcmp(json_string_value(json_object_get(m3, "takenAs")), "root"), "takenAs: root by default");
	o.fill_arg = (void *)(uintptr_t)"fail";
	o.build_id = "proj:4";
	is_int(cache_checkpoint_save(st, &o, &e), CBL_EIO, "a failing callback: no checkpoint");
	cbl_error_clear(&e);
	char *dir5 = NULL;
	json_t *m5 = NULL;
	cache_checkpoint_find(st, "fillproj", k1, &dir5, &m5, NULL);
	ok(m5 && !strcmp(json_string_value(json_object_get(m5, "buildId")), "proj:3"), "the last good one stays newest");
	o.fill = NULL;
	o.scope = "proj";
	free(pf);
	free(lf);
	free(dir4);
	free(dir5);
	json_decref(m4);
	json_decref(m5);
	json_decref(p1);
	json_decref(p2);
	json_decref(meta);
	json_decref(m3);
	free(dir);
	free(dir3);
	free(got);
	free(gl);
	free(ln);
	free(nm);
	free(f);
	free(sub);
	free(up);
}

int main(void)
{
	char tmpl[] = "/tmp/cbl-test-cache-XXXXXX";
	tmproot = mkdtemp(tmpl);
	if (!tmproot) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	umask(022);
	// mounts (overlay, tmpfs) stay private to this process and vanish with it
	can_mount = geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
	char *dir = P("store");
	cache_store *st = NULL;
	cbl_error *e = NULL;
	if (cache_store_open(&st, dir, &e) < 0) {
		printf("Bail out! %s\n", e->msg);
		return 1;
	}
	test_paths();
	test_copy_roundtrip(st);
	test_symlinked_base(st);
	test_keys(st);
	test_diff_save(st);
	test_merge(st);
	test_real_overlay(st, false);
	test_real_overlay(st, true);
	test_symlinked_base_view(st);
	test_kinds(st);
	test_explain(st);
	test_copy_merge();
	test_tmp_clean();
	test_hash_files();
	test_killed();
	test_enospc();
	test_concurrent();
	test_prune();
	test_checkpoints(st);
	test_checkpoint_private(st);
	test_checkpoint_spares(st);
	cache_store_free(st);
	free(dir);
	cbl_rm_rf(tmproot, NULL);
	cbl_strv_release(&garbage);
	return tap_done();
}
