/* Unit tests for source/git.c against real repositories: fixtures
 * built with /usr/bin/git, served over smart HTTP by tests/e2e/gitserver.py
 * (git http-backend) on 127.0.0.1, and read back with /usr/bin/git.
 * Run with cwd = the project root. */
#include "tests/unit/tap.h"
#include "tests/unit/git_helpers.h"
#include "source/source.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char tmp_root[64];
static pid_t servers[4];
static int nservers;
static int dest_seq;

static void stop_servers(void)
{
	for (int i = 0; i < nservers; i++) {
		if (servers[i] > 0) {
			kill(servers[i], SIGTERM);
			int st;
			waitpid(servers[i], &st, 0);
			servers[i] = 0;
		}
	}
	nservers = 0;
}

static void cleanup(void)
{
	stop_servers();
	if (tmp_root[0] && !getenv("CBL_KEEP_TMP"))
		cbl_rm_rf(tmp_root, NULL);
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}


static bool leftover_tmp(const char *dest)
{
	return sh("ls -d '%s'.tmp.* >/dev/null 2>&1", dest) == 0;
}

static char *new_dest(void)
{
	return cbl_xasprintf("%s/out/d%d", tmp_root, ++dest_seq);
}

static pid_t start_server(const char *root, const char *auth, int *port)
{
	char *pf = cbl_xasprintf("%s/port.%d", tmp_root, nservers);
	char a0[] = "/usr/bin/python3", a1[] = "tests/e2e/gitserver.py", a2[] = "--root", a4[] = "--port-file",
	     a6[] = "--auth";
	char *r = cbl_xstrdup(root), *au = auth ? cbl_xstrdup(auth) : NULL;
	char *argv[] = {a0, a1, a2, r, a4, pf, auth ? a6 : NULL, au, NULL};
	pid_t pid = -1;
	*port = 0;
	if (posix_spawn(&pid, a0, NULL, NULL, argv, environ) != 0)
		pid = -1;
	if (pid > 0) {
		servers[nservers++] = pid;
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
	free(au);
	return pid;
}

/* A port on 127.0.0.1 nobody listens on (bound, then closed). */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		return 1;
	close(fd);
	return ntohs(a.sin_port);
}

typedef struct progress_log {
	int lines;
	int receiving;
	bool done_line;
	char last[256];
} progress_log;

static void on_progress(const char *line, void *payload)
{
	progress_log *pl = payload;
	pl->lines++;
	if (!strncmp(line, "Receiving objects: ", 19))
		pl->receiving++;
	if (strstr(line, "Receiving objects: 100%") && strstr(line, ", done."))
		pl->done_line = true;
	snprintf(pl->last, sizeof(pl->last), "%s", line);
	if (getenv("CBL_TEST_VERBOSE"))
		printf("# progress: %s\n", line);
}

static int fetch(const char *url, const char *version, int depth, bool submodules, bool tags, const char *dest,
		 char **sha, cbl_error **e)
{
	source_git_opts o = SOURCE_GIT_OPTS_INIT;
	o.url = url;
	o.version = version;
	o.depth = depth;
	o.submodules = submodules;
	o.tags = tags;
	return source_git_fetch(&o, dest, sha, e);
}

/* ------------------------------------------------------------ fixtures --- */

static char *rev(const char *repo, const char *what)
{
	return cap("git -C '%s/wtree/%s' rev-parse '%s'", tmp_root, repo, what);
}

static int build_fixtures(void)
{
	return sh("set -e; cd '%s'; exec >fixture.log 2>&1\n"
		  "G='git -c protocol.file.allow=always'\n"
		  "mkdir -p wtree srv srv-auth out\n"
		  /* leaf <- sub (submodule deep) <- withsub (submodule lib) */
		  "git init -q -b main wtree/leaf\n"
		  "echo leaf > wtree/leaf/leaf.txt; git -C wtree/leaf add .; git -C wtree/leaf commit -qm leaf\n"
		  "git init -q -b main wtree/sub\n"
		  "echo sub1 > wtree/sub/s.txt; git -C wtree/sub add .; git -C wtree/sub commit -qm s1\n"
		  "(cd wtree/sub && $G submodule add -q ../leaf deep && git commit -qm 'add deep')\n"
		  "echo sub2 > wtree/sub/s.txt; git -C wtree/sub commit -qam s2\n"
		  "git init -q -b main wtree/withsub\n"
		  "echo top > wtree/withsub/top.txt; git -C wtree/withsub add .; git -C wtree/withsub commit -qm top\n"
		  "(cd wtree/withsub && $G submodule add -q ../sub lib && git -C lib checkout -q HEAD~1"
		  " && git add lib && git commit -qm 'pin lib')\n"
		  /* main: 5 commits, tags, feature (+2), refs/pull/7/head */
		  "git init -q -b main wtree/main; cd wtree/main\n"
		  "for i in 1 2 3 4 5; do echo v$i > file.txt; git add file.txt; git commit -qm c$i; done\n"
		  "git tag -a v1.0 -m 'release 1.0' HEAD~1\n"
		  "git tag light HEAD~2\n"
		  "git checkout -q -b feature\n"
		  "for i in 1 2; do echo f$i > feature.txt; git add feature.txt; git commit -qm f$i; done\n"
		  "git checkout -q --detach main\n"
		  "echo pr > pr.txt; git add pr.txt; git commit -qm pr7; git update-ref refs/pull/7/head HEAD\n"
		  "git checkout -q main\n"
		  "cd ../..\n"
		  "for r in main sub leaf withsub; do\n"
		  "  git clone -q --mirror wtree/$r srv/$r.git\n"
		  "  git -C srv/$r.git config uploadpack.allowAnySHA1InWant true\n"
		  "done\n"
		  "git clone -q --mirror wtree/main srv-auth/main.git\n"
		  "git clone -q --mirror wtree/main srv/noany.git\n" /* no SHA-in-want allowed */
		  "git init -q --bare srv/empty.git\n",
		  tmp_root);
}

/* --------------------------------------------------------------- tests --- */

static char base[128], auth_base[128];

static void test_http_refs(void)
{
	cbl_error *e = NULL;
	char *sha = NULL, *url = cbl_xasprintf("%s/main.git", base);
	char *tip = rev("main", "main"), *d = new_dest(), *want0 = NULL;
	progress_log pl = {0};

	source_git_opts o = SOURCE_GIT_OPTS_INIT;
	o.url = url;
	o.progress = on_progress;
	o.payload = &pl;
	int rc = source_git_fetch(&o, d, &sha, &e);
	is_int(rc, 0, "default HEAD, depth 1 (%s)", e ? e->msg : "ok");
	is_int(commits(d), 1, "depth 1: one commit in git log");
	char *t = file_text(d, "file.txt");
	is_str(t, "v5\n", "default branch content");
	free(t);
	is_str(sha, tip, "resolved SHA is main's tip");
	ok(sh("git -C '%s' symbolic-ref -q HEAD >/dev/null 2>&1", d) == 1, "HEAD is detached");
	char *up = cap("git -C '%s' rev-parse --abbrev-ref main@{upstream} 2>&1", d);
	is_str(up, "origin/main", "local branch main tracks origin/main");
	free(up);
	char *oh = cap("git -C '%s' symbolic-ref refs/remotes/origin/HEAD 2>&1", d);
	is_str(oh, "refs/remotes/origin/main", "origin/HEAD points at the default branch");
	free(oh);
	char *tags = cap("git -C '%s' tag", d);
	is_str(tags, "", "no tags fetched by default");
	free(tags);
	ok(sh("test -f '%s/.git/shallow'", d) == 0, "shallow clone recorded in .git/shallow");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "git fsck clean");
	char *st = cap("git -C '%s' status --porcelain", d);
	is_str(st, "", "work tree clean");
	free(st);
	ok(pl.receiving >= 1 && pl.done_line, "progress: receiving lines with a final done (%d lines, last '%s')",
	   pl.lines, pl.last);
	ok(!leftover_tmp(d), "no temporary directory left");
	free(sha);
	sha = NULL;
	free(d);

	d = new_dest();
	rc = fetch(url, NULL, 3, false, false, d, NULL, &e);
	is_int(rc, 0, "depth 3 (%s)", e ? e->msg : "ok");
	is_int(commits(d), 3, "depth 3: three commits");
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(url, NULL, 0, false, true, d, NULL, &e);
	is_int(rc, 0, "depth 0 = full history, with tags (%s)", e ? e->msg : "ok");
	is_int(commits(d), 5, "full history: all five commits");
	ok(sh("test -f '%s/.git/shallow'", d) != 0, "full clone is not shallow");
	tags = cap("git -C '%s' tag | paste -sd ' '", d);
	is_str(tags, "light v1.0", "tags: true fetches all tags");
	free(tags);
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	char *ftip = rev("main", "feature");
	rc = fetch(url, "feature", 1, false, false, d, &sha, &e);
	is_int(rc, 0, "branch feature (%s)", e ? e->msg : "ok");
	t = file_text(d, "feature.txt");
	is_str(t, "f2\n", "feature content");
	free(t);
	is_str(sha, ftip, "resolved to feature's tip");
	is_int(commits(d), 1, "branch, depth 1");
	up = cap("git -C '%s' rev-parse --abbrev-ref feature@{upstream} 2>&1", d);
	is_str(up, "origin/feature", "local branch feature tracks origin/feature");
	free(up);
	char *fs = cap("git -C '%s' config --get-all remote.origin.fetch", d);
	is_str(fs, "+refs/heads/feature:refs/remotes/origin/feature", "single-branch fetch refspec");
	free(fs);
	free(sha);
	sha = NULL;
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	char *c4 = rev("main", "v1.0^{commit}");
	rc = fetch(url, "v1.0", 1, false, false, d, &sha, &e);
	is_int(rc, 0, "annotated tag v1.0 (%s)", e ? e->msg : "ok");
	is_str(sha, c4, "annotated tag peeled to its commit");
	t = file_text(d, "file.txt");
	is_str(t, "v4\n", "tag content");
	free(t);
	tags = cap("git -C '%s' tag", d);
	is_str(tags, "v1.0", "the asked-for tag is fetched");
	free(tags);
	is_int(commits(d), 1, "tag, depth 1");
	free(sha);
	sha = NULL;
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(url, "light", 1, false, false, d, NULL, &e);
	is_int(rc, 0, "lightweight tag (%s)", e ? e->msg : "ok");
	t = file_text(d, "file.txt");
	is_str(t, "v3\n", "lightweight tag content");
	free(t);
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	char *c1 = rev("main", "main~4");
	rc = fetch(url, c1, 1, false, false, d, &sha, &e);
	is_int(rc, 0, "full SHA, fetched by id (%s)", e ? e->msg : "ok");
	is_str(sha, c1, "full SHA checked out");
	t = file_text(d, "file.txt");
	is_str(t, "v1\n", "full SHA content");
	free(t);
	is_int(commits(d), 1, "full SHA, depth 1");
	free(sha);
	sha = NULL;
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	char *c2 = rev("main", "main~3");
	char shortsha[9];
	snprintf(shortsha, sizeof(shortsha), "%s", c2);
	rc = fetch(url, shortsha, 1, false, false, d, &sha, &e);
	is_int(rc, 0, "abbreviated SHA %s via the full-fetch fallback (%s)", shortsha, e ? e->msg : "ok");
	is_str(sha, c2, "abbreviated SHA resolved to the full one");
	t = file_text(d, "file.txt");
	is_str(t, "v2\n", "abbreviated SHA content");
	free(t);
	is_int(commits(d), 1, "fallback result cut to depth 1");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "cut history: git fsck clean");
	free(sha);
	sha = NULL;
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(url, shortsha, 2, false, false, d, NULL, &e);
	is_int(rc, 0, "abbreviated SHA, depth 2");
	is_int(commits(d), 2, "fallback result cut to depth 2");
	free(d);
	cbl_error_clear(&e);

	char *pr = rev("main", "refs/pull/7/head");
	d = new_dest();
	rc = fetch(url, "pr/7", 1, false, false, d, &sha, &e);
	is_int(rc, 0, "pr/7 (%s)", e ? e->msg : "ok");
	is_str(sha, pr, "pr/7 = refs/pull/7/head");
	t = file_text(d, "pr.txt");
	is_str(t, "pr\n", "pull request content");
	free(t);
	free(sha);
	sha = NULL;
	free(d);
	cbl_error_clear(&e);
	d = new_dest();
	rc = fetch(url, "refs/pull/7/head", 1, false, false, d, &sha, &e);
	is_int(rc, 0, "refs/pull/7/head (%s)", e ? e->msg : "ok");
	is_str(sha, pr, "explicit pull ref");
	free(sha);
	sha = NULL;
	free(d);
	cbl_error_clear(&e);

	/* branch^{SHA} */
	char *f1 = rev("main", "feature~1");
	char *v = cbl_xasprintf("feature^{%s}", f1);
	d = new_dest();
	rc = fetch(url, v, 1, false, false, d, &sha, &e);
	is_int(rc, 0, "feature^{SHA below the tip} (%s)", e ? e->msg : "ok");
	is_str(sha, f1, "checked out the SHA");
	t = file_text(d, "feature.txt");
	is_str(t, "f1\n", "branch^{SHA} content");
	free(t);
	is_int(commits(d), 1, "branch^{SHA} cut to depth 1");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "branch^{SHA}: git fsck clean");
	up = cap("git -C '%s' rev-parse feature", d);
	is_str(up, ftip, "local branch at the branch's tip");
	free(up);
	free(sha);
	sha = NULL;
	free(v);
	free(d);
	cbl_error_clear(&e);

	v = cbl_xasprintf("feature^{%.10s}", ftip);
	d = new_dest();
	rc = fetch(url, v, 1, false, false, d, &sha, &e);
	is_int(rc, 0, "feature^{abbreviated tip} (%s)", e ? e->msg : "ok");
	is_str(sha, ftip, "tip checked out");
	free(sha);
	sha = NULL;
	free(v);
	free(d);
	cbl_error_clear(&e);

	v = cbl_xasprintf("feature^{%s}", pr);
	d = new_dest();
	rc = fetch(url, v, 1, false, false, d, &sha, &e);
	is_int(rc, CBL_ENOENT, "feature^{SHA not on feature} fails");
	ok(e && strstr(e->msg, "is not on branch feature"), "message: %s", e ? e->msg : "(none)");
	ok(!exists(d) && !leftover_tmp(d), "nothing left behind");
	ok(sha == NULL, "no SHA on failure");
	free(v);
	free(d);
	cbl_error_clear(&e);

	v = cbl_xasprintf("nobranch^{%s}", f1);
	d = new_dest();
	rc = fetch(url, v, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_ENOENT, "missing branch in branch^{SHA}");
	ok(e && strstr(e->msg, "reference not found: refs/heads/nobranch"), "message: %s", e ? e->msg : "(none)");
	free(v);
	free(d);
	cbl_error_clear(&e);

	/* a server that refuses to send commits by id: the fallback fetches
	 * everything and cuts the history */
	char *nurl = cbl_xasprintf("%s/noany.git", base);
	d = new_dest();
	rc = fetch(nurl, c1, 1, false, false, d, &sha, &e);
	is_int(rc, 0, "full SHA from a server without allowAnySHA1InWant (%s)", e ? e->msg : "ok");
	is_str(sha, c1, "fallback found the commit");
	is_int(commits(d), 1, "fallback cut to depth 1");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "fallback: git fsck clean");
	free(sha);
	sha = NULL;
	free(d);
	free(nurl);
	cbl_error_clear(&e);

	char *eurl = cbl_xasprintf("%s/empty.git", base);
	d = new_dest();
	rc = fetch(eurl, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_ENOENT, "empty repository is CBL_ENOENT");
	want0 = cbl_xasprintf("repository is empty: %s", eurl);
	is_str(e ? e->msg : NULL, want0, "empty repository message");
	free(want0);
	free(eurl);
	free(d);
	cbl_error_clear(&e);

	/* unknown names */
	d = new_dest();
	rc = fetch(url, "nope", 1, false, false, d, NULL, &e);
	is_int(rc, CBL_ENOENT, "unknown ref is CBL_ENOENT");
	char *want = cbl_xasprintf("reference not found: refs/heads/nope in %s", url);
	is_str(e ? e->msg : NULL, want, "unknown ref message");
	free(want);
	ok(!exists(d) && !leftover_tmp(d), "unknown ref: dest_dir absent, no temp left");
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(url, "deadbeefdeadbeef", 1, false, false, d, NULL, &e);
	is_int(rc, CBL_ENOENT, "unknown commit is CBL_ENOENT");
	ok(e && strstr(e->msg, "commit deadbeefdeadbeef not found in"), "message: %s", e ? e->msg : "(none)");
	ok(!exists(d), "unknown commit: dest_dir absent");
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(url, "refs/tags/nope", 1, false, false, d, NULL, &e);
	is_int(rc, CBL_ENOENT, "unknown full ref");
	ok(e && strstr(e->msg, "reference not found: refs/tags/nope"), "message: %s", e ? e->msg : "(none)");
	free(d);
	cbl_error_clear(&e);

	free(tip);
	free(ftip);
	free(c1);
	free(c2);
	free(c4);
	free(f1);
	free(pr);
	free(url);
}

static void test_submodules(void)
{
	cbl_error *e = NULL;
	char *url = cbl_xasprintf("%s/withsub.git", base), *d = new_dest();
	char *pin = rev("sub", "HEAD~1");
	progress_log pl = {0};
	source_git_opts o = SOURCE_GIT_OPTS_INIT;
	o.url = url;
	o.submodules = true;
	o.progress = on_progress;
	o.payload = &pl;
	int rc = source_git_fetch(&o, d, NULL, &e);
	is_int(rc, 0, "submodules, recursive (%s)", e ? e->msg : "ok");
	char *t = file_text(d, "lib/s.txt");
	is_str(t, "sub1\n", "submodule at its pinned commit, not the sub repo's tip");
	free(t);
	char *head = cap("git -C '%s/lib' rev-parse HEAD", d);
	is_str(head, pin, "submodule HEAD = recorded commit");
	free(head);
	t = file_text(d, "lib/deep/leaf.txt");
	is_str(t, "leaf\n", "nested submodule checked out");
	free(t);
	char *lib = cbl_path_join(d, "lib");
	is_int(commits(lib), 1, "submodule fetched with depth 1");
	free(lib);
	char *st = cap("git -C '%s' submodule status --recursive | cut -c1 | sort -u | tr -d '\\n'", d);
	is_str(st, " ", "git submodule status: all initialised and at the recorded commit");
	free(st);
	st = cap("git -C '%s' status --porcelain --ignore-submodules=none", d);
	is_str(st, "", "superproject clean");
	free(st);
	ok(strstr(pl.last, "Submodule path") != NULL || pl.lines > 0, "submodule progress lines");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1 && git -C '%s/lib' fsck >/dev/null 2>&1", d, d), 0,
	       "fsck clean in superproject and submodule");
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, 0, "without submodules");
	char *p = cbl_path_join(d, "lib/s.txt");
	ok(!exists(p), "submodule not fetched when not asked");
	free(p);
	free(d);
	cbl_error_clear(&e);

	/* the same over the local transport (relative URL against a path) */
	char *lurl = cbl_xasprintf("%s/srv/withsub.git", tmp_root);
	d = new_dest();
	rc = fetch(lurl, NULL, 1, true, false, d, NULL, &e);
	is_int(rc, 0, "submodules from a local path (%s)", e ? e->msg : "ok");
	t = file_text(d, "lib/deep/leaf.txt");
	is_str(t, "leaf\n", "local: nested submodule checked out");
	free(t);
	lib = cbl_path_join(d, "lib");
	is_int(commits(lib), 1, "local: submodule cut to depth 1");
	free(lib);
	free(d);
	free(lurl);
	cbl_error_clear(&e);
	free(pin);
	free(url);
}

static void test_errors(void)
{
	cbl_error *e = NULL;
	int port = closed_port();
	char *url = cbl_xasprintf("http://127.0.0.1:%d/main.git", port), *d = new_dest();
	int64_t t0 = cbl_mono_us();
	int rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	int64_t el = cbl_mono_us() - t0;
	is_int(rc, CBL_EIO, "connection refused is CBL_EIO");
	ok(e && !strncmp(e->msg, "cannot reach http://127.0.0.1:", 30), "message: %s", e ? e->msg : "(none)");
	ok(el < 5000000, "fails fast (%lld ms)", (long long)(el / 1000));
	ok(!exists(d) && !leftover_tmp(d), "nothing left behind");
	free(url);
	free(d);
	cbl_error_clear(&e);

	url = cbl_xasprintf("%s/nothere.git", base);
	d = new_dest();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_ENOENT, "HTTP 404 is CBL_ENOENT");
	char *want = cbl_xasprintf("repository not found: %s", url);
	is_str(e ? e->msg : NULL, want, "404 message");
	free(want);
	free(url);
	free(d);
	cbl_error_clear(&e);

	url = cbl_xasprintf("%s/nothere", tmp_root);
	d = new_dest();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_ENOENT, "missing local path is CBL_ENOENT");
	free(url);
	free(d);
	cbl_error_clear(&e);

	url = cbl_xasprintf("%s/wtree", tmp_root); /* a directory, not a repository */
	d = new_dest();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_ENOENT, "a directory that is no repository is CBL_ENOENT (%s)", e ? e->msg : "");
	free(url);
	free(d);
	cbl_error_clear(&e);

	/* destination rules */
	url = cbl_xasprintf("%s/main.git", base);
	d = new_dest();
	cbl_mkdir_p(d, 0755, NULL);
	char *f = cbl_path_join(d, "keep.txt");
	cbl_write_file_atomic(f, "x", 1, 0644, false, NULL);
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_EINVAL, "non-empty destination refused");
	ok(exists(f) && !leftover_tmp(d), "existing content untouched");
	free(f);
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	cbl_mkdir_p(d, 0755, NULL);
	char *slash = cbl_xasprintf("%s/", d);
	rc = fetch(url, NULL, 1, false, false, slash, NULL, &e);
	is_int(rc, 0, "empty existing destination (given with a trailing slash) is filled (%s)",
	       e ? e->msg : "ok");
	char *t = file_text(d, "file.txt");
	is_str(t, "v5\n", "content in the existing directory");
	free(t);
	free(slash);
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(url, NULL, -1, false, false, d, NULL, &e);
	is_int(rc, CBL_EINVAL, "negative depth refused");
	free(d);
	cbl_error_clear(&e);
	rc = fetch(NULL, NULL, 1, false, false, "/tmp/x", NULL, &e);
	is_int(rc, CBL_EINVAL, "missing URL refused");
	cbl_error_clear(&e);
	free(url);
}

static void test_auth(void)
{
	cbl_error *e = NULL;
	const char *host = auth_base + 7; /* after "http://" */
	char *url = cbl_xasprintf("http://user:s3c%%40ret@%s/main.git", host), *d = new_dest();
	int rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, 0, "basic auth: credentials in the URL (%s)", e ? e->msg : "ok");
	is_int(commits(d), 1, "authenticated clone");
	char *cfgurl = cap("git -C '%s' config remote.origin.url", d);
	is_str(cfgurl, url, "remote URL kept as given (like git clone)");
	free(cfgurl);
	free(url);
	free(d);
	cbl_error_clear(&e);

	url = cbl_xasprintf("http://user:wr0ngpass@%s/main.git", host);
	d = new_dest();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_EINVAL, "wrong password is CBL_EINVAL");
	ok(e && !strncmp(e->msg, "authentication failed for http://***@127.0.0.1:", 47), "message: %s",
	   e ? e->msg : "(none)");
	ok(e && !strstr(e->msg, "wr0ngpass"), "password not in the message");
	ok(!exists(d) && !leftover_tmp(d), "nothing left behind");
	free(url);
	free(d);
	cbl_error_clear(&e);

	url = cbl_xasprintf("%s/main.git", auth_base);
	d = new_dest();
	int64_t t0 = cbl_mono_us();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_EINVAL, "no credentials: authentication failed");
	ok(e && strstr(e->msg, "authentication failed for"), "message: %s", e ? e->msg : "(none)");
	ok(cbl_mono_us() - t0 < 5000000, "gives up quickly");
	free(d);
	cbl_error_clear(&e);

	char *cred = cbl_xasprintf("%s/home/.git-credentials", tmp_root);
	char *line = cbl_xasprintf("https://user:bad@%s\nhttp://other:bad@%s\nhttp://user:s3c%%40ret@%s\n", host,
				   "example.com", host);
	cbl_write_file_atomic(cred, line, strlen(line), 0600, false, NULL);
	d = new_dest();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, 0, "~/.git-credentials used (%s)", e ? e->msg : "ok");
	is_int(commits(d), 1, "clone with stored credentials");
	free(d);
	cbl_error_clear(&e);

	char *uurl = cbl_xasprintf("http://nobody@%s/main.git", host);
	d = new_dest();
	rc = fetch(uurl, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_EINVAL, "stored credentials of another user are not used");
	free(uurl);
	free(d);
	cbl_error_clear(&e);
	unlink(cred);

	char *xdg = cbl_xasprintf("%s/home/.config/git", tmp_root);
	cbl_mkdir_p(xdg, 0700, NULL);
	char *xcred = cbl_path_join(xdg, "credentials");
	cbl_write_file_atomic(xcred, line, strlen(line), 0600, false, NULL);
	d = new_dest();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, 0, "$XDG_CONFIG_HOME/git/credentials used (%s)", e ? e->msg : "ok");
	unlink(xcred);
	free(d);
	cbl_error_clear(&e);
	free(xcred);
	free(xdg);
	free(line);
	free(cred);
	free(url);
}

static void test_local(void)
{
	cbl_error *e = NULL;
	char *path = cbl_xasprintf("%s/srv/main.git", tmp_root), *d = new_dest();
	char *sha = NULL, *tip = rev("main", "main");
	progress_log pl = {0};
	source_git_opts o = SOURCE_GIT_OPTS_INIT;
	o.url = path;
	o.progress = on_progress;
	o.payload = &pl;
	int rc = source_git_fetch(&o, d, &sha, &e);
	is_int(rc, 0, "local bare path, depth 1 (%s)", e ? e->msg : "ok");
	is_int(commits(d), 1, "local: git log shows one commit");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "local: git fsck clean");
	is_str(sha, tip, "local: resolved SHA");
	char *t = file_text(d, "file.txt");
	is_str(t, "v5\n", "local: content");
	free(t);
	char *cnt = cap("git -C '%s' rev-list --count HEAD", d);
	is_str(cnt, "1", "local: rev-list agrees");
	free(cnt);
	ok(pl.lines >= 1, "local: progress reported (%d lines)", pl.lines);
	free(sha);
	sha = NULL;
	free(d);
	cbl_error_clear(&e);

	char *fileurl = cbl_xasprintf("file://%s", path);
	d = new_dest();
	rc = fetch(fileurl, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, 0, "file:// URL, depth 1 (%s)", e ? e->msg : "ok");
	is_int(commits(d), 1, "file://: one commit");
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "file://: git fsck clean");
	free(d);
	cbl_error_clear(&e);

	char *work = cbl_xasprintf("%s/wtree/main", tmp_root);
	d = new_dest();
	rc = fetch(work, "feature", 2, false, false, d, NULL, &e);
	is_int(rc, 0, "local work tree, branch, depth 2 (%s)", e ? e->msg : "ok");
	is_int(commits(d), 2, "local: depth 2");
	t = file_text(d, "feature.txt");
	is_str(t, "f2\n", "local branch content");
	free(t);
	char *remote = cap("git -C '%s' config remote.origin.url", d);
	is_str(remote, work, "local: absolute path as the remote URL");
	free(remote);
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(path, NULL, 10, false, false, d, NULL, &e);
	is_int(rc, 0, "local, depth beyond the history");
	is_int(commits(d), 5, "whole history, nothing cut");
	ok(sh("test -s '%s/.git/shallow'", d) != 0, "no shallow boundary needed");
	free(d);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(path, "v1.0", 1, false, false, d, NULL, &e);
	is_int(rc, 0, "local annotated tag (%s)", e ? e->msg : "ok");
	is_int(commits(d), 1, "local tag: depth 1");
	t = file_text(d, "file.txt");
	is_str(t, "v4\n", "local tag content");
	free(t);
	free(d);
	cbl_error_clear(&e);

	char *c2 = rev("main", "main~3");
	char shortsha[10];
	snprintf(shortsha, sizeof(shortsha), "%s", c2);
	d = new_dest();
	rc = fetch(path, shortsha, 1, false, false, d, &sha, &e);
	is_int(rc, 0, "local abbreviated SHA (%s)", e ? e->msg : "ok");
	is_str(sha, c2, "local abbreviated SHA resolved");
	is_int(commits(d), 1, "local SHA: depth 1");
	free(sha);
	sha = NULL;
	free(d);
	cbl_error_clear(&e);

	char *pr = rev("main", "refs/pull/7/head");
	char *v = cbl_xasprintf("feature^{%s}", pr);
	d = new_dest();
	rc = fetch(path, v, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_ENOENT, "local: SHA not on the branch is refused (all objects are present)");
	free(v);
	free(d);
	cbl_error_clear(&e);

	free(pr);
	free(c2);
	free(work);
	free(fileurl);
	free(tip);
	free(path);
}


/* ------------------------------------------- local sources, read directly --- */

/* The fast path of source/local.c: a local repository's objects copied
 * straight from its object database.  Each result is compared with what
 * /usr/bin/git makes of the same request (`git clone --depth N file://`,
 * `git fetch --depth N URL SHA`): the same objects, the same shallow
 * boundary, the same work tree and index; and objects missing from the
 * source matter only inside the requested window. */

static int build_local_fixtures(void)
{
	return sh("set -e; cd '%s'; exec >>fixture.log 2>&1\n"
		  "mkdir -p lsrv; git init -q -b main wtree/lf; cd wtree/lf\n"
		  "mkdir -p d/e many\n"
		  "for i in $(seq 1 300); do mkdir -p many/m$((i %% 7)); echo file $i > many/m$((i %% 7))/f$i.txt; done\n"
		  "printf '#!/bin/sh\\necho hi\\n' > run.sh; chmod +x run.sh; ln -s f.txt link; : > empty\n"
		  "for i in 1 2 3 4 5 6; do echo v$i > f.txt; echo $i > d/e/n$i.txt; git add -A; git commit -qm c$i; done\n"
		  "git tag -a v1 -m 'release 1' HEAD~2\n"
		  "git checkout -q -b feature\n"
		  "for i in 1 2 3; do echo f$i > feature.txt; git add -A; git commit -qm f$i; done\n"
		  "git checkout -q --detach main\n"
		  "git merge -q --no-ff feature -m 'merge pr 3'\n"
		  "echo only in the merge > merge-only.txt; git add merge-only.txt; git commit -q --amend -m 'merge pr 3'\n"
		  "git update-ref refs/pull/3/merge HEAD; git update-ref refs/pull/3/head feature\n"
		  "git checkout -q main\n"
		  "cd ../..\n"
		  "for r in lf lf-pruned lf-holed lf-nocommit 'lf sp'; do git clone -q --mirror wtree/lf \"lsrv/$r.git\"; done\n"
		  "git -C lsrv/lf.git config uploadpack.allowAnySHA1InWant true\n"
		  "loose() { echo \"$1/objects/$(echo $2 | cut -c1-2)/$(echo $2 | cut -c3-)\"; }\n"
		  /* the blob only refs/pull/3/merge reaches */
		  "b=$(git -C wtree/lf rev-parse refs/pull/3/merge:merge-only.txt); test -f $(loose lsrv/lf-pruned.git $b)\n"
		  "rm $(loose lsrv/lf-pruned.git $b)\n"
		  /* a blob of main's tip */
		  "b=$(git -C wtree/lf rev-parse main:d/e/n6.txt); rm $(loose lsrv/lf-holed.git $b)\n"
		  /* main's parent commit */
		  "b=$(git -C wtree/lf rev-parse main~1); rm $(loose lsrv/lf-nocommit.git $b)\n"
		  /* a shallow repository as the source */
		  "git clone -q --depth 2 file://$PWD/lsrv/lf.git lsrv/shallow\n"
		  /* attributes that change the checkout */
		  "git init -q -b main wtree/attrs; cd wtree/attrs\n"
		  "printf '*.txt eol=crlf\\n' > .gitattributes; printf 'a\\nb\\n' > t.txt; printf 'x\\n' > raw.bin\n"
		  "git add -A; git commit -qm attrs; echo c >> t.txt; git commit -qam attrs2\n"
		  "cd ../..; git clone -q --bare wtree/attrs lsrv/attrs.git\n",
		  tmp_root);
}

/* The sorted ids of every object in the repository at dir. */
static char *objects_of(const char *dir)
{
	return cap("git -C '%s' cat-file --batch-all-objects --batch-check='%%(objectname) %%(objecttype)' | sort | "
		   "md5sum",
		   dir);
}

static char *shallow_of(const char *dir)
{
	return cap("sort '%s/.git/shallow' 2>/dev/null | md5sum", dir);
}

/* Our clone d against git's clone g of the same request. */
static void same_as_git(const char *d, const char *g, const char *what)
{
	char *a = objects_of(d), *b = objects_of(g);
	is_str(a, b, "%s: the same objects as git's clone", what);
	free(a);
	free(b);
	a = shallow_of(d);
	b = shallow_of(g);
	is_str(a, b, "%s: the same shallow boundary", what);
	free(a);
	free(b);
	a = cap("git -C '%s' rev-list --all | wc -l", d);
	b = cap("git -C '%s' rev-list --all | wc -l", g);
	is_str(a, b, "%s: rev-list --all counts %s commits, as git's", what, b);
	free(a);
	free(b);
	is_int(sh("git -C '%s' fsck --connectivity-only >/dev/null 2>&1 && git -C '%s' fsck >/dev/null 2>&1", d, d), 0,
	       "%s: git fsck --connectivity-only and git fsck pass", what);
	a = cap("cd '%s' && find . -path ./.git -prune -o -printf '%%m %%y %%p %%l\\n' | sort | md5sum", d);
	b = cap("cd '%s' && find . -path ./.git -prune -o -printf '%%m %%y %%p %%l\\n' | sort | md5sum", g);
	is_str(a, b, "%s: the same files, modes and links", what);
	free(a);
	free(b);
	is_int(sh("diff -r --no-dereference --exclude=.git '%s' '%s' >/dev/null", d, g), 0, "%s: the same contents",
	       what);
	a = cap("git -C '%s' ls-files -s | md5sum", d);
	b = cap("git -C '%s' ls-files -s | md5sum", g);
	is_str(a, b, "%s: the same index", what);
	free(a);
	free(b);
	a = cap("git -C '%s' status --porcelain", d);
	is_str(a, "", "%s: git status is clean", what);
	free(a);
}

static char *git_clone_as(const char *url, const char *args)
{
	char *g = new_dest();
	if (sh("git -c advice.detachedHead=false clone -q --no-tags %s '%s' '%s' >/dev/null 2>&1", args, url, g))
		fprintf(stderr, "# git clone %s %s failed\n", args, url);
	return g;
}

static void test_local_fast_refs(const char *lurl)
{
	cbl_error *e = NULL;
	char *sha = NULL, *d = new_dest(), *g = NULL;
	char *tip = cap("git -C '%s/wtree/lf' rev-parse main", tmp_root);

	int rc = fetch(lurl, NULL, 1, false, false, d, &sha, &e);
	is_int(rc, 0, "local fast path: default branch, depth 1 (%s)", e ? e->msg : "ok");
	is_str(sha, tip, "resolved to main's tip");
	g = git_clone_as(lurl, "--depth 1");
	same_as_git(d, g, "depth 1");
	char *remote = cap("git -C '%s' config remote.origin.url", d);
	is_str(remote, lurl, "remote origin is the URL as given");
	free(remote);
	char *up = cap("git -C '%s' rev-parse --abbrev-ref main@{upstream} 2>&1", d);
	is_str(up, "origin/main", "the local branch tracks origin/main");
	free(up);
	is_int(sh("test -x '%s/run.sh' && test -L '%s/link' && test -f '%s/many/m3/f10.txt'", d, d, d), 0,
	       "executable, symbolic link and the 300 small files are there");
	free(sha);
	sha = NULL;
	free(d);
	free(g);
	cbl_error_clear(&e);

	d = new_dest();
	rc = fetch(lurl, "feature", 3, false, false, d, NULL, &e);
	is_int(rc, 0, "a branch, depth 3 (%s)", e ? e->msg : "ok");
	g = git_clone_as(lurl, "--depth 3 --branch feature");
	same_as_git(d, g, "branch feature, depth 3");
	is_int(commits(d), 3, "depth 3: three commits in git log");
	free(d);
	free(g);
	cbl_error_clear(&e);

	d = new_dest();
	char *c4 = cap("git -C '%s/wtree/lf' rev-parse 'v1^{commit}'", tmp_root);
	rc = fetch(lurl, "v1", 1, false, false, d, &sha, &e);
	is_int(rc, 0, "an annotated tag, depth 1 (%s)", e ? e->msg : "ok");
	is_str(sha, c4, "the tag peeled to its commit");
	g = git_clone_as(lurl, "--depth 1 --branch v1");
	same_as_git(d, g, "tag v1, depth 1");
	char *tags = cap("git -C '%s' tag", d);
	is_str(tags, "v1", "the tag is in the clone");
	free(tags);
	free(sha);
	sha = NULL;
	free(d);
	free(g);
	cbl_error_clear(&e);

	/* a commit by id: git fetches it with `git fetch --depth N URL SHA` */
	char *c3 = cap("git -C '%s/wtree/lf' rev-parse main~3", tmp_root);
	for (int depth = 1; depth <= 2; depth++) {
		d = new_dest();
		rc = fetch(lurl, c3, depth, false, false, d, &sha, &e);
		is_int(rc, 0, "a full SHA, depth %d (%s)", depth, e ? e->msg : "ok");
		is_str(sha, c3, "the SHA checked out");
		g = new_dest();
		sh("git init -q '%s' && git -C '%s' fetch -q --depth %d '%s' %s && git -C '%s' checkout -q %s", g, g, depth,
		   lurl, c3, g, c3);
		char what[32];
		snprintf(what, sizeof(what), "SHA, depth %d", depth);
		same_as_git(d, g, what);
		free(sha);
		sha = NULL;
		free(d);
		free(g);
		cbl_error_clear(&e);
	}

	/* branch^{SHA} below the tip: HEAD's window as for the SHA alone, the
	 * branch whole from its tip down to it */
	char *f1 = cap("git -C '%s/wtree/lf' rev-parse feature~2", tmp_root);
	char *ftip = cap("git -C '%s/wtree/lf' rev-parse feature", tmp_root);
	char *v = cbl_xasprintf("feature^{%s}", f1);
	d = new_dest();
	rc = fetch(lurl, v, 1, false, false, d, &sha, &e);
	is_int(rc, 0, "branch^{SHA} two below the tip (%s)", e ? e->msg : "ok");
	is_str(sha, f1, "the SHA checked out");
	is_int(commits(d), 1, "HEAD: one commit");
	char *n = cap("git -C '%s' rev-list --count feature", d);
	is_str(n, "3", "the local branch goes from its tip down to the SHA");
	free(n);
	n = cap("git -C '%s' rev-parse feature", d);
	is_str(n, ftip, "the local branch at the tip");
	free(n);
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "branch^{SHA}: git fsck passes");
	free(sha);
	sha = NULL;
	free(v);
	free(d);
	cbl_error_clear(&e);

	/* every tag too */
	d = new_dest();
	source_git_opts o = SOURCE_GIT_OPTS_INIT;
	o.url = lurl;
	o.tags = true;
	rc = source_git_fetch(&o, d, NULL, &e);
	is_int(rc, 0, "tags: true (%s)", e ? e->msg : "ok");
	tags = cap("git -C '%s' tag", d);
	is_str(tags, "v1", "the tag came along");
	free(tags);
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1 && git -C '%s' log --oneline v1 | wc -l | grep -qx 1", d, d), 0,
	       "the tag with its own window of depth 1; git fsck passes");
	free(d);
	cbl_error_clear(&e);

	free(f1);
	free(ftip);
	free(c3);
	free(c4);
	free(tip);
}

static void test_local_fast_missing(void)
{
	cbl_error *e = NULL;
	char *d = new_dest(), *g = NULL;
	char *url = cbl_xasprintf("file://%s/lsrv/lf-pruned.git", tmp_root);

	/* the case: a blob only refs/pull/N/merge reaches is gone */
	int rc = fetch(url, "v1", 1, false, false, d, NULL, &e);
	is_int(rc, 0, "a mirror lacking a blob of another ref: the tag clones (%s)", e ? e->msg : "ok");
	g = git_clone_as(url, "--depth 1 --branch v1");
	same_as_git(d, g, "pruned mirror, tag v1");
	free(d);
	free(g);
	cbl_error_clear(&e);
	d = new_dest();
	rc = fetch(url, "pr/3", 2, false, false, d, NULL, &e);
	is_int(rc, 0, "and pr/3 (refs/pull/3/head) at depth 2 (%s)", e ? e->msg : "ok");
	free(d);
	cbl_error_clear(&e);
	d = new_dest();
	char *blob = cap("git -C '%s/wtree/lf' rev-parse refs/pull/3/merge:merge-only.txt", tmp_root);
	rc = fetch(url, "refs/pull/3/merge", 1, false, false, d, NULL, &e);
	is_int(rc, CBL_EIO, "the ref that needs the missing blob fails");
	char *want = cbl_xasprintf("the source repository %s lacks object %s (needed for refs/pull/3/merge at depth 1)",
				   url, blob);
	is_str(e ? e->msg : NULL, want, "the message names the object");
	ok(!exists(d) && !leftover_tmp(d), "nothing left behind");
	free(want);
	free(blob);
	free(d);
	free(url);
	cbl_error_clear(&e);

	/* a blob inside the window */
	url = cbl_xasprintf("%s/lsrv/lf-holed.git", tmp_root);
	d = new_dest();
	blob = cap("git -C '%s/wtree/lf' rev-parse main:d/e/n6.txt", tmp_root);
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_EIO, "a blob of the tip missing: an error");
	ok(e && strstr(e->msg, blob) && strstr(e->msg, "lacks object"), "message: %s", e ? e->msg : "(none)");
	ok(!exists(d) && !leftover_tmp(d), "nothing left behind");
	free(d);
	free(blob);
	cbl_error_clear(&e);
	d = new_dest();
	rc = fetch(url, "v1", 1, false, false, d, NULL, &e);
	is_int(rc, 0, "the same repository at a tag that does not need it (%s)", e ? e->msg : "ok");
	free(d);
	free(url);
	cbl_error_clear(&e);

	/* a commit: outside the window at depth 1, inside at depth 2 */
	url = cbl_xasprintf("%s/lsrv/lf-nocommit.git", tmp_root);
	char *parent = cap("git -C '%s/wtree/lf' rev-parse main~1", tmp_root);
	d = new_dest();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, 0, "the tip's parent missing, depth 1: fine (%s)", e ? e->msg : "ok");
	/* git's upload-pack reads the parent and fails: compared with git's
	 * clone of the intact repository */
	char *intact = cbl_xasprintf("file://%s/lsrv/lf.git", tmp_root);
	g = git_clone_as(intact, "--depth 1");
	free(intact);
	same_as_git(d, g, "missing parent, depth 1");
	free(d);
	free(g);
	cbl_error_clear(&e);
	d = new_dest();
	rc = fetch(url, NULL, 2, false, false, d, NULL, &e);
	is_int(rc, CBL_EIO, "depth 2 needs it: an error");
	want = cbl_xasprintf("the source repository %s lacks object %s (needed for HEAD at depth 2)", url, parent);
	is_str(e ? e->msg : NULL, want, "the message names the commit");
	free(want);
	free(parent);
	free(d);
	free(url);
	cbl_error_clear(&e);
}

static void test_local_fast_sources(void)
{
	cbl_error *e = NULL;
	char *d = new_dest(), *g = NULL;

	/* file://localhost/ and a percent-encoded path */
	char *url = cbl_xasprintf("file://localhost%s/lsrv/lf%%20sp.git", tmp_root);
	int rc = fetch(url, "feature", 1, false, false, d, NULL, &e);
	is_int(rc, 0, "file://localhost/... with %%20 (%s)", e ? e->msg : "ok");
	free(url);
	free(d);
	cbl_error_clear(&e);
	d = new_dest();
	url = cbl_xasprintf("file://otherhost%s/lsrv/lf.git", tmp_root);
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, CBL_EINVAL, "file:// of another host is refused");
	free(url);
	free(d);
	cbl_error_clear(&e);

	/* a shallow repository as the source: its boundary holds */
	char *path = cbl_xasprintf("%s/lsrv/shallow", tmp_root);
	d = new_dest();
	rc = fetch(path, NULL, 5, false, false, d, NULL, &e);
	is_int(rc, 0, "a shallow source, depth 5 (%s)", e ? e->msg : "ok");
	is_int(commits(d), 2, "as deep as the source goes");
	char *a = shallow_of(d), *b = cap("sort '%s/.git/shallow' | md5sum", path);
	is_str(a, b, "the source's boundary becomes the clone's");
	free(a);
	free(b);
	is_int(sh("git -C '%s' fsck >/dev/null 2>&1", d), 0, "git fsck passes");
	free(d);
	cbl_error_clear(&e);
	d = new_dest();
	rc = fetch(path, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, 0, "a shallow source, depth 1 (%s)", e ? e->msg : "ok");
	is_int(commits(d), 1, "one commit");
	free(d);
	free(path);
	cbl_error_clear(&e);

	/* attributes that convert: libgit2's checkout, as git's */
	url = cbl_xasprintf("file://%s/lsrv/attrs.git", tmp_root);
	d = new_dest();
	rc = fetch(url, NULL, 1, false, false, d, NULL, &e);
	is_int(rc, 0, "a repository with eol=crlf attributes (%s)", e ? e->msg : "ok");
	g = git_clone_as(url, "--depth 1");
	same_as_git(d, g, "eol=crlf");
	char *t = file_text(d, "t.txt");
	is_str(t, "a\r\nb\r\nc\r\n", "converted as git converts it");
	free(t);
	free(g);
	free(d);
	free(url);
	cbl_error_clear(&e);

	/* the source cache is not used for a local repository, and says so */
	char *cache = cbl_xasprintf("%s/lcache", tmp_root);
	url = cbl_xasprintf("file://%s/lsrv/lf.git", tmp_root);
	source_git_stats st;
	source_git_opts o = SOURCE_GIT_OPTS_INIT;
	o.url = url;
	o.object_cache_dir = cache;
	o.stats = &st;
	d = new_dest();
	rc = source_git_fetch(&o, d, NULL, &e);
	is_int(rc, 0, "with a source cache (%s)", e ? e->msg : "ok");
	ok(st.cache == SOURCE_CACHE_SKIPPED && st.local, "the cache is skipped for a local repository");
	char *line = source_git_cache_summary(&st);
	ok(!strncmp(line, "Source cache: not used (a local repository: its objects are read directly); ", 76) &&
	       strstr(line, " objects (") && strstr(line, ") copied"),
	   "summary: %s", line);
	ok(!exists(cache) || sh("test -z \"$(ls -A '%s')\"", cache) == 0, "nothing stored in the cache");
	free(line);
	free(d);
	free(url);
	free(cache);
	cbl_error_clear(&e);
}

static void test_local_fast(void)
{
	is_int(build_local_fixtures(), 0, "local fixtures built with git (log in %s/fixture.log)", tmp_root);
	char *lurl = cbl_xasprintf("file://%s/lsrv/lf.git", tmp_root);
	test_local_fast_refs(lurl);
	free(lurl);
	test_local_fast_missing();
	test_local_fast_sources();
}

int main(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/cbl-source-XXXXXX");
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
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	setenv("no_proxy", "127.0.0.1", 1);

	int rc = build_fixtures();
	is_int(rc, 0, "fixture repositories built with git (log in %s/fixture.log)", tmp_root);
	if (rc)
		return tap_done();

	int port = 0, aport = 0;
	char *root = cbl_xasprintf("%s/srv", tmp_root), *aroot = cbl_xasprintf("%s/srv-auth", tmp_root);
	ok(start_server(root, NULL, &port) > 0 && port > 0, "git smart-HTTP server on 127.0.0.1:%d", port);
	ok(start_server(aroot, "user:s3c@ret", &aport) > 0 && aport > 0, "server with basic auth on 127.0.0.1:%d",
	   aport);
	free(root);
	free(aroot);
	if (!port || !aport)
		return tap_done();
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	snprintf(auth_base, sizeof(auth_base), "http://127.0.0.1:%d", aport);

	test_http_refs();
	test_submodules();
	test_errors();
	test_auth();
	test_local();
	test_local_fast();

	stop_servers();
	return tap_done();
}
