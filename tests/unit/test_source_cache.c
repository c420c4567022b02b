/* Unit tests for the source cache (source/cache.c through
 * source_git_fetch with object_cache_dir): fixtures built with
 * /usr/bin/git, served over smart HTTP by tests/e2e/gitserver.py (git
 * http-backend) on 127.0.0.1, read back with /usr/bin/git.
 * Run with cwd = the project root. */
#include "tests/unit/tap.h"
#include "tests/unit/git_helpers.h"
#include "source/source.h"
#include "source/source_internal.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char tmp_root[64];
static pid_t server_pid;
static int dest_seq;
static char base[128];
static char cache_root[128];

static void cleanup(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		int st;
		waitpid(server_pid, &st, 0);
		server_pid = 0;
	}
	if (tmp_root[0] && !getenv("CBL_KEEP_TMP"))
		cbl_rm_rf(tmp_root, NULL);
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool exists_in(const char *dir, const char *rel)
{
	char *p = cbl_path_join(dir, rel);
	bool r = exists(p);
	free(p);
	return r;
}

static char *new_dest(void)
{
	return cbl_xasprintf("%s/out/d%d", tmp_root, ++dest_seq);
}

static pid_t start_server(const char *root, int *port)
{
	char *pf = cbl_xasprintf("%s/port", tmp_root);
	char a0[] = "/usr/bin/python3", a1[] = "tests/e2e/gitserver.py", a2[] = "--root", a4[] = "--port-file";
	char *r = cbl_xstrdup(root);
	char *argv[] = {a0, a1, a2, r, a4, pf, NULL};
	pid_t pid = -1;
	*port = 0;
	if (posix_spawn(&pid, a0, NULL, NULL, argv, environ) != 0)
		pid = -1;
	if (pid > 0) {
		for (int i = 0; i < 500 && !exists(pf); i++)
			usleep(20000);
		char *data = NULL;
		size_t len;
		if (cbl_read_file(pf, 0, &data, &len, NULL) == 0)
			*port = atoi(data);
		free(data);
	}
	free(pf);
	free(r);
	return pid;
}

/* one fetch with the cache; stats into *st */
static int cfetch(const char *url, const char *version, int depth, bool submodules, const char *dest, char **sha,
		  source_git_stats *st, cbl_error **e)
{
	source_git_opts o = SOURCE_GIT_OPTS_INIT;
	o.url = url;
	o.version = version;
	o.depth = depth;
	o.submodules = submodules;
	o.object_cache_dir = cache_root;
	o.stats = st;
	memset(st, 0, sizeof(*st));
	int rc = source_git_fetch(&o, dest, sha, e);
	if (getenv("CBL_TEST_VERBOSE")) {
		char *line = source_git_cache_summary(st);
		printf("# %s\n", line);
		free(line);
	}
	return rc;
}

/* A new commit on main of work tree `repo`, pushed to srv/<repo>.git. */
static int new_commit(const char *repo, const char *file, const char *text)
{
	return sh("set -e; cd '%s/wtree/%s'; printf '%%s\\n' '%s' > %s; git add %s; git commit -qm '%s';"
		  " git push -q ../../srv/%s.git main",
		  tmp_root, repo, text, file, file, text, repo);
}

static char *tip(const char *repo)
{
	return cap("git -C '%s/srv/%s.git' rev-parse main", tmp_root, repo);
}

static char *store_dir(const char *url)
{
	char *key = source_cache_key(url);
	char *d = cbl_path_join(cache_root, key);
	free(key);
	return d;
}

static int build_fixtures(void)
{
	return sh("set -e; cd '%s'; exec >fixture.log 2>&1\n"
		  "mkdir -p wtree srv out\n"
		  /* big: 400 files in 20 directories, 3 commits */
		  "git init -q -b main wtree/big; cd wtree/big\n"
		  "for d in $(seq 1 20); do mkdir -p dir$d; for f in $(seq 1 20); do"
		  "  echo \"file $d/$f $(seq 1 $f)\" > dir$d/f$f.txt; done; done\n"
		  "echo v1 > version.txt; git add -A; git commit -qm c1\n"
		  "echo v2 > version.txt; git commit -qam c2\n"
		  "echo v3 > version.txt; git commit -qam c3\n"
		  "git tag -a v3 -m v3\n"
		  "cd ../..\n"
		  /* lib <- app (submodule lib) */
		  "git init -q -b main wtree/lib\n"
		  "echo lib1 > wtree/lib/lib.txt; git -C wtree/lib add .; git -C wtree/lib commit -qm l1\n"
		  "git init -q -b main wtree/app\n"
		  "echo app > wtree/app/app.txt; git -C wtree/app add .; git -C wtree/app commit -qm a1\n"
		  "for r in big lib app; do\n"
		  "  git init -q --bare -b main srv/$r.git\n"
		  "  git -C srv/$r.git config uploadpack.allowAnySHA1InWant true\n"
		  "done\n"
		  "git -C wtree/big push -q ../../srv/big.git main v3\n"
		  "git -C wtree/lib push -q ../../srv/lib.git main\n"
		  "(cd wtree/app && git -c protocol.file.allow=always submodule add -q ../../srv/lib.git lib &&"
		  " git config -f .gitmodules submodule.lib.url ../lib.git && git add . && git commit -qm 'add lib' &&"
		  " git push -q ../../srv/app.git main)\n",
		  tmp_root);
}

/* ------------------------------------------------------------- tests --- */

static void test_incremental(void)
{
	cbl_error *e = NULL;
	source_git_stats st;
	char *url = cbl_xasprintf("%s/big.git", base), *d = new_dest(), *sha = NULL;
	char *t3 = tip("big");

	int rc = cfetch(url, NULL, 1, false, d, &sha, &st, &e);
	is_int(rc, 0, "cold fetch with the cache (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_EMPTY, "cold: the cache was empty");
	unsigned cold_objects = st.received_objects;
	uint64_t cold_bytes = st.received_bytes;
	ok(cold_objects >= 400, "cold: every object of the tree came from the server (%u)", cold_objects);
	is_int(commits(d), 1, "cold: depth 1");
	is_str(sha, t3, "cold: main's tip");
	char *sd = store_dir(url);
	char *n = cap("ls '%s/objects/pack' | grep -c '\\.idx$'", sd);
	is_str(n, "1", "the store holds the fetched pack");
	free(n);
	n = cap("git -C '%s' rev-parse refs/heads/main refs/cbl/last | sort -u", sd);
	is_str(n, t3, "the store names main's tip (refs/heads/main, refs/cbl/last)");
	free(n);
	n = cap("git -C '%s' for-each-ref refs/cbl-have | wc -l", d);
	is_str(n, "0", "no refs/cbl-have left in the clone");
	free(n);
	cbl_error_clear(&e);
	free(sha);
	sha = NULL;

	/* one new commit: only it comes from the server */
	is_int(new_commit("big", "dir7/f3.txt", "changed"), 0, "one new commit pushed");
	char *t4 = tip("big");
	char *d2 = new_dest();
	rc = cfetch(url, NULL, 1, false, d2, &sha, &st, &e);
	is_int(rc, 0, "warm fetch (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_USED, "warm: the cache was used");
	ok(st.cached_objects >= cold_objects, "warm: %u objects were in the cache", st.cached_objects);
	ok(st.received_objects > 0 && st.received_objects <= 6,
	   "warm: only the new objects came from the server (%u objects; %u cold)", st.received_objects, cold_objects);
	ok(st.received_bytes * 10 < cold_bytes, "warm: %llu bytes vs %llu cold",
	   (unsigned long long)st.received_bytes, (unsigned long long)cold_bytes);
	is_str(sha, t4, "warm: the new tip");
	char *t = file_text(d2, "dir7/f3.txt");
	is_str(t, "changed\n", "warm: the new content");
	free(t);
	t = file_text(d2, "dir20/f20.txt");
	ok(t && !strncmp(t, "file 20/20 1", 12), "warm: unchanged files from the cache");
	free(t);
	is_int(commits(d2), 1, "warm: exactly depth 1");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d2), 0, "warm: git fsck clean");
	char *s = cap("git -C '%s' status --porcelain", d2);
	is_str(s, "", "warm: work tree clean");
	free(s);
	s = cap("git -C '%s' for-each-ref --format='%%(refname)' | paste -sd ' '", d2);
	is_str(s, "refs/heads/main refs/remotes/origin/HEAD refs/remotes/origin/main", "warm: the refs of a clone, no more");
	free(s);
	s = cap("cat '%s/.git/shallow'", d2);
	is_str(s, t4, "warm: the shallow boundary is the tip alone");
	free(s);
	ok(sh("test -s '%s/.git/objects/info/alternates'", d2) != 0, "warm: no alternates");
	ok(sh("find '%s/.git/objects' -type l | grep -q .", d2) != 0, "warm: no symlinks into the cache");
	free(sha);
	sha = NULL;
	cbl_error_clear(&e);

	/* depth 3 from a store that holds depth 1 of two tips: deepened */
	char *d3 = new_dest();
	rc = cfetch(url, NULL, 3, false, d3, NULL, &st, &e);
	is_int(rc, 0, "depth 3 from a shallow store (%s)", e ? e->msg : "ok");
	is_int(commits(d3), 3, "depth 3: exactly three commits");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d3), 0, "depth 3: git fsck clean");
	ok(st.received_objects > 0 && st.received_objects < cold_objects / 4,
	   "depth 3: the older commits' new objects only (%u)", st.received_objects);
	cbl_error_clear(&e);

	/* the same again: the store has it all now, nothing comes */
	char *d4 = new_dest();
	rc = cfetch(url, NULL, 3, false, d4, NULL, &st, &e);
	is_int(rc, 0, "depth 3 again (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_USED, "depth 3 again: cache used");
	is_int(st.received_objects, 0, "depth 3 again: nothing from the server");
	is_int(commits(d4), 3, "depth 3 again: exactly three commits");
	cbl_error_clear(&e);

	/* depth 1 of a commit the store holds deeper: exactly one commit */
	char *d5 = new_dest();
	rc = cfetch(url, NULL, 1, false, d5, NULL, &st, &e);
	is_int(rc, 0, "depth 1 from a deeper store (%s)", e ? e->msg : "ok");
	is_int(commits(d5), 1, "depth 1 from a deeper store: exactly one commit");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d5), 0, "depth 1 from a deeper store: git fsck clean");
	cbl_error_clear(&e);

	/* full history: unshallowed */
	char *d6 = new_dest();
	rc = cfetch(url, NULL, 0, false, d6, NULL, &st, &e);
	is_int(rc, 0, "full history from a shallow store (%s)", e ? e->msg : "ok");
	is_int(commits(d6), 4, "full history: all four commits");
	ok(!exists_in(d6, ".git/shallow"), "full history: not shallow");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d6), 0, "full history: git fsck clean");
	s = cap("cat '%s/shallow' 2>/dev/null", sd);
	is_str(s, "", "the store is no longer shallow");
	free(s);
	cbl_error_clear(&e);

	/* by SHA, and a tag, with depth 1 */
	char *c2 = cap("git -C '%s/srv/big.git' rev-parse main~2", tmp_root);
	char *d7 = new_dest();
	rc = cfetch(url, c2, 1, false, d7, &sha, &st, &e);
	is_int(rc, 0, "an older commit by SHA (%s)", e ? e->msg : "ok");
	is_str(sha, c2, "by SHA: checked out");
	is_int(commits(d7), 1, "by SHA: exactly one commit");
	is_int(st.received_objects, 0, "by SHA: all from the cache");
	t = file_text(d7, "version.txt");
	is_str(t, "v2\n", "by SHA: content");
	free(t);
	free(sha);
	sha = NULL;
	cbl_error_clear(&e);
	char *d8 = new_dest();
	rc = cfetch(url, "v3", 2, false, d8, NULL, &st, &e);
	is_int(rc, 0, "an annotated tag, depth 2 (%s)", e ? e->msg : "ok");
	is_int(commits(d8), 2, "tag: exactly two commits");
	t = file_text(d8, "version.txt");
	is_str(t, "v3\n", "tag: content");
	free(t);
	cbl_error_clear(&e);

	/* the clones do not depend on the store */
	is_int(cbl_rm_rf(cache_root, NULL), 0, "the whole cache removed");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1 && git -C '%s' log -1 >/dev/null && git -C '%s' cat-file -p HEAD:dir20/f20.txt >/dev/null",
		  d2, d2, d2),
	       0, "a clone made with the cache is whole after the cache is gone");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1 && git -C '%s' rev-list --objects --all >/dev/null", d6, d6), 0,
	       "the full clone too");
	char *d9 = new_dest();
	rc = cfetch(url, NULL, 1, false, d9, NULL, &st, &e);
	is_int(rc, 0, "fetch after the cache was removed (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_EMPTY, "the cache starts empty again");
	cbl_error_clear(&e);

	free(c2);
	free(sd);
	free(t3);
	free(t4);
	free(d);
	free(d2);
	free(d3);
	free(d4);
	free(d5);
	free(d6);
	free(d7);
	free(d8);
	free(d9);
	free(url);
}

static void test_damaged(void)
{
	cbl_error *e = NULL;
	source_git_stats st;
	char *url = cbl_xasprintf("%s/big.git", base), *sd = store_dir(url);

	/* a truncated pack: found when the store is opened */
	char *d = new_dest();
	int rc = cfetch(url, NULL, 1, false, d, NULL, &st, &e); /* fill it */
	is_int(rc, 0, "store filled (%s)", e ? e->msg : "ok");
	cbl_error_clear(&e);
	is_int(sh("set -e; for p in '%s'/objects/pack/*.pack; do truncate -s 100 \"$p\"; done", sd), 0,
	       "the store's packs truncated");
	free(d);
	d = new_dest();
	rc = cfetch(url, NULL, 1, false, d, NULL, &st, &e);
	is_int(rc, 0, "fetch with a truncated store succeeds (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_REBUILT, "the store was rebuilt");
	ok(strstr(st.note, "damaged") != NULL, "note: %s", st.note);
	is_int(commits(d), 1, "rebuilt: depth 1");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "rebuilt: git fsck clean");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", sd), 0, "the rebuilt store is a sound repository");
	cbl_error_clear(&e);
	free(d);

	/* damaged object data behind good trailers: found while fetching */
	is_int(sh("set -e; for p in '%s'/objects/pack/*.pack; do s=$(stat -c %%s \"$p\"); chmod u+w \"$p\";"
		  " dd if=/dev/zero of=\"$p\" bs=1 seek=12 count=$((s - 32)) conv=notrunc status=none; done",
		  sd),
	       0, "the store's object data zeroed (trailers intact)");
	is_int(new_commit("big", "version.txt", "v5"), 0, "a new commit pushed");
	d = new_dest();
	rc = cfetch(url, NULL, 1, false, d, NULL, &st, &e);
	is_int(rc, 0, "fetch with unreadable cached objects succeeds (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_REBUILT, "rebuilt after the failed attempt (%s)", st.note);
	char *t = file_text(d, "version.txt");
	is_str(t, "v5\n", "content of the new commit");
	free(t);
	is_int(commits(d), 1, "depth 1");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "git fsck clean");
	cbl_error_clear(&e);
	free(d);

	/* garbage in packed-refs, a missing HEAD */
	is_int(sh("echo garbage > '%s/packed-refs'", sd), 0, "packed-refs overwritten");
	d = new_dest();
	rc = cfetch(url, NULL, 1, false, d, NULL, &st, &e);
	is_int(rc, 0, "fetch with a bad packed-refs (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_REBUILT, "rebuilt (%s)", st.note);
	cbl_error_clear(&e);
	free(d);
	is_int(sh("rm -f '%s/HEAD'", sd), 0, "HEAD removed");
	d = new_dest();
	rc = cfetch(url, NULL, 1, false, d, NULL, &st, &e);
	is_int(rc, 0, "fetch with no HEAD in the store (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_REBUILT, "rebuilt (%s)", st.note);
	cbl_error_clear(&e);
	free(d);

	/* what a killed publisher leaves: a pack without its index, a temp file */
	is_int(sh("set -e; cd '%s/objects/pack'; p=$(ls *.pack | head -1); cp \"$p\" pack-0000000000000000000000000000000000000000.pack;"
		  " cp \"$p\" \"$p.tmp.999999999\"",
		  sd),
	       0, "a pack without its index and a stale temporary file");
	d = new_dest();
	rc = cfetch(url, NULL, 1, false, d, NULL, &st, &e);
	is_int(rc, 0, "fetch with a half-published pack (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_USED, "a half-published pack does not spoil the store");
	is_int(st.received_objects, 0, "nothing new from the server");
	ok(sh("ls '%s'/objects/pack/*.tmp.999999999 >/dev/null 2>&1", sd) != 0, "the stale temporary file was removed");
	cbl_error_clear(&e);
	free(d);
	free(sd);
	free(url);
}

static void test_concurrent(void)
{
	char *url = cbl_xasprintf("%s/big.git", base);
	is_int(new_commit("big", "dir1/f1.txt", "concurrent"), 0, "a new commit pushed");
	char *want = tip("big");
	enum { N = 3 };
	pid_t kids[N];
	char *dests[N];
	for (int i = 0; i < N; i++)
		dests[i] = new_dest();
	for (int i = 0; i < N; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			source_git_stats st;
			cbl_error *e = NULL;
			char *sha = NULL;
			int rc = cfetch(url, NULL, 1, false, dests[i], &sha, &st, &e);
			_exit(rc == 0 && sha && !strcmp(sha, want) ? 0 : 1);
		}
	}
	int good = 0;
	for (int i = 0; i < N; i++) {
		int st = 0;
		if (kids[i] > 0 && waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			good++;
	}
	is_int(good, N, "%d fetches at once all succeed", N);
	for (int i = 0; i < N; i++) {
		char *t = file_text(dests[i], "dir1/f1.txt");
		is_str(t, "concurrent\n", "fetch %d: the new content", i);
		free(t);
		is_int(commits(dests[i]), 1, "fetch %d: depth 1", i);
		free(dests[i]);
	}
	char *sd = store_dir(url);
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", sd), 0, "the store is sound afterwards");
	source_git_stats st;
	cbl_error *e = NULL;
	char *d = new_dest();
	int rc = cfetch(url, NULL, 1, false, d, NULL, &st, &e);
	is_int(rc, 0, "and used by the next fetch (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_USED, "cache used");
	is_int(st.received_objects, 0, "nothing new from the server");
	cbl_error_clear(&e);
	free(d);
	free(sd);
	free(want);
	free(url);
}

/* one pack per fetch that brought something: past 32 they become one */
static void test_consolidate(void)
{
	cbl_error *e = NULL;
	source_git_stats st;
	char *url = cbl_xasprintf("%s/lib.git", base), *sd = store_dir(url);
	int fails = 0, max_packs = 0;
	for (int i = 0; i < 36; i++) {
		char text[32];
		snprintf(text, sizeof(text), "lib %d", i);
		char *d = new_dest();
		if (new_commit("lib", "lib.txt", text) != 0 || cfetch(url, NULL, 1, false, d, NULL, &st, &e) != 0)
			fails++;
		cbl_error_clear(&e);
		cbl_rm_rf(d, NULL);
		free(d);
		char *n = cap("ls '%s/objects/pack' | grep -c '\\.pack$'", sd);
		if (atoi(n) > max_packs)
			max_packs = atoi(n);
		if (getenv("CBL_TEST_VERBOSE"))
			printf("# %d: %s packs\n", i, n);
		free(n);
	}
	is_int(fails, 0, "36 commits fetched one by one with the cache");
	ok(max_packs <= 33, "the store never held more than 33 packs (%d)", max_packs);
	char *n = cap("ls '%s/objects/pack' | grep -c '\\.pack$'", sd);
	ok(atoi(n) < 10, "they were rewritten as one (%s packs now)", n);
	free(n);
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", sd), 0, "the repacked store is sound");
	char *t = tip("lib");
	n = cap("git -C '%s' rev-parse refs/heads/main", sd);
	is_str(n, t, "its refs survived");
	free(n);
	char *d = new_dest();
	int rc = cfetch(url, NULL, 3, false, d, NULL, &st, &e);
	is_int(rc, 0, "fetch from the repacked store, depth 3 (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_USED, "used");
	is_int(st.received_objects, 0, "nothing from the server");
	is_int(commits(d), 3, "exactly three commits");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "git fsck clean");
	cbl_error_clear(&e);
	free(d);

	/* full history: the store becomes complete; then a full fetch of one
	 * more commit negotiates over 36 commits (several rounds, no deepen) */
	d = new_dest();
	rc = cfetch(url, NULL, 0, false, d, NULL, &st, &e);
	is_int(rc, 0, "full history from the shallow store (%s)", e ? e->msg : "ok");
	is_int(commits(d), 37, "all 37 commits");
	cbl_error_clear(&e);
	free(d);
	n = cap("cat '%s/shallow' 2>/dev/null", sd);
	is_str(n, "", "the store is complete");
	free(n);
	is_int(new_commit("lib", "lib.txt", "one more"), 0, "one more commit");
	d = new_dest();
	rc = cfetch(url, NULL, 0, false, d, NULL, &st, &e);
	is_int(rc, 0, "full fetch from a complete store (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_USED, "used");
	ok(st.received_objects > 0 && st.received_objects <= 3, "only the new commit's objects (%u)", st.received_objects);
	is_int(commits(d), 38, "all 38 commits");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "git fsck clean");
	cbl_error_clear(&e);
	free(d);
	free(t);
	free(sd);
	free(url);
}

static void test_misc(void)
{
	cbl_error *e = NULL;
	source_git_stats st;

	char *k1 = source_cache_key("http://user:s3cret@Example.COM:8080/org/Repo.git/");
	char *k2 = source_cache_key("HTTP://example.com:8080/org/Repo.git");
	char *k3 = source_cache_key("http://example.com:8080/org/repo.git");
	is_str(k1, k2, "the store's key ignores credentials, the case of scheme and host, trailing slashes");
	ok(strcmp(k2, k3) != 0, "but not the path's case");
	is_int(strlen(k1), 64, "a SHA-256 in hex");
	free(k1);
	free(k2);
	free(k3);

	/* submodules: each repository has a store of its own */
	char *url = cbl_xasprintf("%s/app.git", base), *d = new_dest();
	int rc = cfetch(url, NULL, 1, true, d, NULL, &st, &e);
	is_int(rc, 0, "submodules with the cache, cold (%s)", e ? e->msg : "ok");
	char *t = file_text(d, "lib/lib.txt");
	is_str(t, "lib1\n", "submodule content");
	free(t);
	cbl_error_clear(&e);
	char *lurl = cbl_xasprintf("%s/lib.git", base), *lsd = store_dir(lurl);
	ok(exists(lsd), "the submodule's repository has a store");
	free(d);
	d = new_dest();
	rc = cfetch(url, NULL, 1, true, d, NULL, &st, &e);
	is_int(rc, 0, "submodules with the cache, warm (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_USED, "warm: used");
	is_int(st.received_objects, 0, "warm: nothing from the server, submodule included");
	t = file_text(d, "lib/lib.txt");
	is_str(t, "lib1\n", "warm: submodule content");
	free(t);
	is_int(sh("git -C '%s/lib' fsck >/dev/null 2>&1", d), 0, "warm: submodule git fsck clean");
	cbl_error_clear(&e);
	free(d);
	free(lsd);
	free(lurl);
	free(url);

	/* local sources do not use it */
	char *path = cbl_xasprintf("%s/srv/big.git", tmp_root);
	d = new_dest();
	rc = cfetch(path, NULL, 1, false, d, NULL, &st, &e);
	is_int(rc, 0, "a local path with the cache option (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_SKIPPED, "skipped");
	is_str(st.note, "a local repository", "note");
	cbl_error_clear(&e);
	free(d);
	free(path);

	/* no option: off, and the stats still count */
	url = cbl_xasprintf("%s/big.git", base);
	d = new_dest();
	source_git_opts o = SOURCE_GIT_OPTS_INIT;
	o.url = url;
	o.stats = &st;
	rc = source_git_fetch(&o, d, NULL, &e);
	is_int(rc, 0, "without the cache (%s)", e ? e->msg : "ok");
	is_int(st.cache, SOURCE_CACHE_OFF, "off");
	ok(st.received_objects >= 400, "objects counted without the cache too (%u)", st.received_objects);
	char *line = source_git_cache_summary(&st);
	is_str(line, "Source cache: off", "summary when off");
	free(line);
	cbl_error_clear(&e);
	free(d);

	/* a server error is not blamed on the cache (no retry, no rebuild) */
	char *bad = cbl_xasprintf("%s/nothere.git", base);
	d = new_dest();
	rc = cfetch(bad, NULL, 1, false, d, NULL, &st, &e);
	is_int(rc, CBL_ENOENT, "a missing repository is still CBL_ENOENT");
	ok(!exists(d), "nothing left behind");
	cbl_error_clear(&e);
	free(d);
	free(bad);

	source_git_stats s = {0};
	s.cache = SOURCE_CACHE_USED;
	s.cached_objects = 1234;
	s.received_objects = 3;
	s.received_bytes = 2048;
	line = source_git_cache_summary(&s);
	is_str(line, "Source cache: used (1234 objects cached); 3 objects (2.0 KiB) from the server", "summary: used");
	free(line);
	s.cache = SOURCE_CACHE_SKIPPED;
	snprintf(s.note, sizeof(s.note), "a local repository");
	line = source_git_cache_summary(&s);
	is_str(line, "Source cache: not used (a local repository); 3 objects (2.0 KiB) from the server", "summary: skipped");
	free(line);
	free(url);
}

int main(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/cbl-srccache-XXXXXX");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGABRT, on_signal);
	signal(SIGSEGV, on_signal);

	char *home = cbl_xasprintf("%s/home", tmp_root);
	cbl_mkdir_p(home, 0700, NULL);
	setenv("HOME", home, 1);
	char *xdg = cbl_xasprintf("%s/.config", home);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	free(xdg);
	free(home);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_TERMINAL_PROMPT", "0", 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
	unsetenv("SSH_AUTH_SOCK");
	unsetenv("GIT_DIR");
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	setenv("no_proxy", "127.0.0.1", 1);
	snprintf(cache_root, sizeof(cache_root), "%s/cache/git", tmp_root);

	int rc = build_fixtures();
	is_int(rc, 0, "fixture repositories built with git (log in %s/fixture.log)", tmp_root);
	if (rc)
		return tap_done();
	int port = 0;
	char *root = cbl_xasprintf("%s/srv", tmp_root);
	server_pid = start_server(root, &port);
	free(root);
	ok(server_pid > 0 && port > 0, "git smart-HTTP server on 127.0.0.1:%d", port);
	if (!port)
		return tap_done();
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);

	test_incremental();
	test_damaged();
	test_concurrent();
	test_consolidate();
	test_misc();
	return tap_done();
}
