/* Unit tests for source/shallow.c: the object-id set, the shallow file
 * (parse, text, read, write) and the depth window, checked against the
 * boundaries /usr/bin/git itself writes for `git clone --depth N`.
 * Run with cwd = the project root. */
#include "tests/unit/tap.h"
#include "tests/unit/git_helpers.h"
#include "source/source_internal.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fs.h"

#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[64];

static void cleanup(void)
{
	if (tmp_root[0])
		sh("rm -rf '%s'", tmp_root);
}

static void oid_of(git_oid *out, const char *repo, const char *rev)
{
	char *hex = cap("git -C '%s' rev-parse '%s'", repo, rev);
	if (git_oid_fromstr(out, hex) < 0)
		memset(out, 0, sizeof(*out));
	free(hex);
}

static void test_oidset(void)
{
	source_oidset s = {0};
	git_oid o;
	bool all_new = true, all_there = true;
	memset(&o, 0, sizeof(o));
	for (unsigned i = 0; i < 1000; i++) {
		memcpy(o.id, &i, sizeof(i));
		all_new &= source_oidset_add(&s, &o);
	}
	for (unsigned i = 0; i < 1000; i++) {
		memcpy(o.id, &i, sizeof(i));
		all_there &= source_oidset_has(&s, &o) && !source_oidset_add(&s, &o);
	}
	ok(all_new && all_there && s.n == 1000, "oidset: 1000 ids added once each, all found");
	unsigned miss = 5000;
	memcpy(o.id, &miss, sizeof(miss));
	ok(!source_oidset_has(&s, &o), "oidset: an id never added is not found");
	source_oidset_release(&s);
	ok(!source_oidset_has(&s, &o) && s.n == 0, "oidset: released is empty");
}

static void test_file(void)
{
	static const char a[] = "1111111111111111111111111111111111111111";
	static const char b[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	source_shallow s = {0};
	cbl_error *e = NULL;
	char *text = cbl_xasprintf("%s\n\n%s\n%s", b, a, b);
	is_int(source_shallow_parse(&s, text, strlen(text), &e), 0, "parse: two ids, one twice, an empty line");
	free(text);
	char *out = source_shallow_text(&s);
	text = cbl_xasprintf("%s\n%s\n", a, b);
	is_str(out, text, "text: sorted, unique, one line each");
	free(out);
	free(text);

	static const char *bad[] = {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", "1234\n",
				    "111111111111111111111111111111111111111g\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		source_shallow t = {0};
		is_int(source_shallow_parse(&t, bad[i], strlen(bad[i]), &e), CBL_EINVAL,
		       "parse refuses bad line %zu (upper case, short, not hex)", i + 1);
		cbl_error_clear(&e);
		source_shallow_release(&t);
	}
	char nul[] = "1111111111111111111111111111111111111111\n\0";
	source_shallow t = {0};
	is_int(source_shallow_parse(&t, nul, sizeof(nul) - 1, &e), CBL_EINVAL, "parse refuses a NUL byte");
	cbl_error_clear(&e);

	char *dir = cbl_xasprintf("%s/gitdir", tmp_root), *path = cbl_xasprintf("%s/shallow", dir);
	cbl_mkdir_p(dir, 0755, NULL);
	is_int(source_shallow_read(&t, dir, &e), 0, "read: a missing file is an empty boundary");
	is_int((long long)t.n, 0, "read: nothing added");
	is_int(source_shallow_write(&s, dir, &e), 0, "write");
	char *got = file_text(dir, "shallow");
	text = cbl_xasprintf("%s\n%s\n", a, b);
	is_str(got, text, "write: the file says the boundary");
	free(got);
	free(text);
	struct stat st1, st2;
	stat(path, &st1);
	is_int(source_shallow_write(&s, dir, &e), 0, "write again");
	stat(path, &st2);
	ok(st1.st_ino == st2.st_ino, "write: an unchanged boundary leaves the file alone");
	is_int(source_shallow_read(&t, dir, &e), 0, "read it back");
	ok(t.n == 2 && source_shallow_has(&t, &s.v[0]) && source_shallow_has(&t, &s.v[1]), "read: both ids");
	source_shallow empty = {0};
	is_int(source_shallow_write(&empty, dir, &e), 0, "write an empty boundary");
	ok(!exists(path), "write: an empty boundary removes the file");
	ok(symlink("/etc/hostname", path) == 0, "a symlink as the shallow file");
	source_shallow u = {0};
	is_int(source_shallow_read(&u, dir, &e), CBL_EIO, "read: a symlink is not followed");
	cbl_error_clear(&e);
	source_shallow_release(&u);
	source_shallow_release(&t);
	source_shallow_release(&s);
	free(dir);
	free(path);
}

/* main: c1-c2-c3-c4-c5 with a side branch c2-s1-s2 merged as m (the tip),
 * then t1 on top; tag v1 (annotated) on the tip. */
static int build_repo(const char *repo)
{
	return sh("set -e; exec >'%s/fixture.log' 2>&1; git init -q -b main '%s'; cd '%s';"
		  "for i in 1 2; do echo $i > f; git add f; git commit -qm c$i; done;"
		  "git checkout -qb side; for i in 1 2; do echo $i > s; git add s; git commit -qm s$i; done;"
		  "git checkout -q main; for i in 3 4 5; do echo $i > f; git commit -qam c$i; done;"
		  "git merge -q --no-edit side -m m; echo t > f; git commit -qam t1; git tag -a -m v1 v1",
		  tmp_root, repo, repo);
}

/* The boundary git wrote for a clone, less the commits without parents
 * (git lists a root commit that falls on the boundary; it changes nothing,
 * and the window leaves it out). */
static void git_shallow_of(source_shallow *out, git_odb *odb, const char *gitdir)
{
	source_shallow raw = {0};
	source_shallow_read(&raw, gitdir, NULL);
	for (size_t i = 0; i < raw.n; i++) {
		git_oid *par = NULL;
		size_t np = 0;
		if (source_odb_parents(odb, &raw.v[i], &par, &np) == 1 && np)
			source_shallow_add(out, &raw.v[i]);
		free(par);
	}
	source_shallow_release(&raw);
}

static void test_window(void)
{
	char *repo = cbl_xasprintf("%s/repo", tmp_root);
	is_int(build_repo(repo), 0, "fixture repository (log in %s/fixture.log)", tmp_root);
	char *objects = cbl_xasprintf("%s/.git/objects", repo);
	git_odb *odb = NULL;
	git_oid tip, tag, got;
	cbl_error *e = NULL;
	ok(git_odb_open(&odb, objects) == 0, "the fixture's object database opens");
	oid_of(&tip, repo, "HEAD");
	oid_of(&tag, repo, "v1");

	for (int depth = 1; depth <= 7; depth++) {
		char *clone = cbl_xasprintf("%s/clone%d", tmp_root, depth);
		sh("git clone -q --depth %d 'file://%s' '%s' 2>/dev/null", depth, repo, clone);
		char *gitdir = cbl_path_join(clone, ".git");
		source_shallow want = {0}, bnd = {0};
		git_shallow_of(&want, odb, gitdir);
		int w = source_shallow_window(odb, &tag, depth, NULL, &bnd, &got, &e);
		char *t1 = source_shallow_text(&bnd), *t2 = source_shallow_text(&want);
		ok(w == 1 && !strcmp(t1, t2), "depth %d: the window's boundary is git's (%zu commits)", depth, want.n);
		if (strcmp(t1, t2))
			printf("#   got:\n%s#   git:\n%s", t1, t2);
		free(t1);
		free(t2);
		if (depth == 1)
			ok(git_oid_equal(&got, &tip), "the annotated tag is peeled to its commit");

		/* the clone's own history: complete within depth, with its
		 * boundary as grafts for any depth; short without them */
		char *cobj = cbl_xasprintf("%s/objects", gitdir);
		git_odb *codb = NULL;
		source_shallow b2 = {0}, b3 = {0};
		git_odb_open(&codb, cobj);
		is_int(source_shallow_window(codb, &tip, depth, NULL, &b2, NULL, &e), 1,
		       "depth %d: the depth-%d clone holds the window", depth, depth);
		if (want.n) {
			is_int(source_shallow_window(codb, &tip, depth + 1, NULL, &b3, NULL, &e), 0,
			       "depth %d: one deeper is incomplete in it", depth);
			source_shallow_release(&b3);
			is_int(source_shallow_window(codb, &tip, depth + 1, &want, &b3, NULL, &e), 1,
			       "depth %d: one deeper with its boundary as roots is complete", depth);
		}
		git_odb_free(codb);
		source_shallow_release(&b2);
		source_shallow_release(&b3);
		source_shallow_release(&want);
		source_shallow_release(&bnd);
		free(cobj);
		free(gitdir);
		free(clone);
	}

	source_shallow all = {0};
	is_int(source_shallow_window(odb, &tip, 0, NULL, &all, NULL, &e), 1, "depth 0: the whole history");
	is_int((long long)all.n, 0, "depth 0: no boundary");
	source_shallow_release(&all);
	git_oid none;
	memset(&none, 0x42, sizeof(none));
	is_int(source_shallow_window(odb, &none, 1, NULL, &all, NULL, &e), 0, "a missing tip: 0");
	ok(!e, "no error set for a missing tip");
	cbl_error_clear(&e);
	git_odb_free(odb);
	free(objects);
	free(repo);
}

int main(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/cbl-shallow-XXXXXX");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	atexit(cleanup);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("HOME", tmp_root, 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
	unsetenv("GIT_DIR");
	git_libgit2_init();

	test_oidset();
	test_file();
	test_window();

	git_libgit2_shutdown();
	return tap_done();
}
