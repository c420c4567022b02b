// Unit tests for artifacts/: glob selection (CodeBuild rules), log lines,
// symlinks, ZIP (parallel writer, ZIP64, determinism across threads and TZ)
// and directory packaging, atomic publish, digests.
// (Line comments: the globs below contain slash-star.)
#include "tests/unit/tap.h"
#include "artifacts/artifacts.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *tmproot;

static void mkfile(const char *root, const char *rel, const char *content)
{
	char *p = cbl_path_join(root, rel);
	char *dir = cbl_xstrdup(p);
	*strrchr(dir, '/') = '\0';
	cbl_mkdir_p(dir, 0755, NULL);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(content, f);
		fclose(f);
	}
	struct timespec ts[2] = {{1700000000, 0}, {1700000000, 0}};
	utimensat(AT_FDCWD, p, ts, 0);
	free(dir);
	free(p);
}

static void mklink(const char *root, const char *rel, const char *target)
{
	char *p = cbl_path_join(root, rel);
	if (symlink(target, p) < 0)
		printf("# symlink %s: %s\n", p, strerror(errno));
	free(p);
}

// Runs artifacts_collect with the given options.  files/expanded/excl are
// NULL-terminated; expanded may be NULL.
typedef struct run {
	const char *const *files;
	const char *const *expanded;
	const char *base;      // expanded base directory (NULL = none)
	const char *base_raw;  // raw base directory text (NULL = same as base)
	const char *const *excl;
	bool discard;
	bool symlinks;
} run;

typedef struct result {
	int rc;
	artifacts_list *l;
	cbl_error *err;
	cbl_buf log;
	char *names; // "a,b,c"
} result;

static void log_cb(const char *line, void *payload)
{
	cbl_buf *b = payload;
	cbl_buf_puts(b, line);
	cbl_buf_putc(b, '\n');
}

static size_t count(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static result collect(const char *src, run r)
{
	result res = {0};
	spec_artifact a = {0};
	size_t nf = count(r.files), ne = count(r.excl);
	a.files.items = cbl_xcalloc(nf + 1, sizeof(spec_str));
	a.files.n = nf;
	for (size_t i = 0; i < nf; i++)
		a.files.items[i].s = (char *)r.files[i];
	a.exclude_paths.items = cbl_xcalloc(ne + 1, sizeof(spec_str));
	a.exclude_paths.n = ne;
	for (size_t i = 0; i < ne; i++)
		a.exclude_paths.items[i].s = (char *)r.excl[i];
	a.base_directory = (char *)(r.base_raw ? r.base_raw : r.base);
	a.discard_paths = r.discard;
	a.enable_symlinks = r.symlinks;
	res.rc = artifacts_collect(&res.l, src, &a, r.expanded, r.base, log_cb, &res.log, &res.err);
	cbl_buf nb = CBL_BUF_INIT;
	for (size_t i = 0; res.l && i < res.l->n; i++) {
		if (i)
			cbl_buf_putc(&nb, ',');
		cbl_buf_puts(&nb, res.l->items[i].name);
	}
	res.names = cbl_buf_detach(&nb);
	free(a.files.items);
	free(a.exclude_paths.items);
	return res;
}

static void result_release(result *r)
{
	artifacts_list_free(r->l);
	cbl_error_free(r->err);
	cbl_buf_release(&r->log);
	free(r->names);
}

static const char *log_of(const result *r) { return cbl_buf_cstr(&r->log); }

#define F(...) ((const char *const[]){__VA_ARGS__, NULL})

static char *src_a;

static void build_tree_a(void)
{
	src_a = cbl_path_join(tmproot, "a");
	mkfile(src_a, "a.txt", "A");
	mkfile(src_a, "b.txt", "B");
	mkfile(src_a, ".hidden", "H");
	mkfile(src_a, "README.md", "R");
	mkfile(src_a, "dir/x.txt", "X");
	mkfile(src_a, "dir/y.bin", "Y");
	mkfile(src_a, "dir/sub/z.txt", "Z");
	mkfile(src_a, "dir/.dot/secret", "S");
	mkfile(src_a, "node_modules/pkg/index.js", "I");
	mkfile(src_a, "app/main.js", "M");
	mkfile(src_a, "app/node_modules/lib/l.js", "L");
	mkfile(src_a, "my-build-1/my-file-1.txt", "1");
	mkfile(src_a, "my-build-2/my-file-2.txt", "2");
	mkfile(src_a, "my-build-2/my-subdirectory/my-file-3.txt", "3");
}

#define ALL_A                                                                                    \
	".hidden,README.md,a.txt,app/main.js,app/node_modules/lib/l.js,b.txt,dir/.dot/secret,"   \
	"dir/sub/z.txt,dir/x.txt,dir/y.bin,my-build-1/my-file-1.txt,my-build-2/my-file-2.txt,"   \
	"my-build-2/my-subdirectory/my-file-3.txt,node_modules/pkg/index.js"

static void test_globs(void)
{
	result r = collect(src_a, (run){.files = F("**/*")});
	is_int(r.rc, 0, "**/* succeeds");
	is_str(r.names, ALL_A, "**/* selects every file, hidden ones included, sorted");
	ok(r.l && r.l->items[0].path[0] == '/', "paths are absolute");
	ok(r.l && !r.l->items[0].is_symlink, "regular file is not a symlink entry");
	result_release(&r);

	r = collect(src_a, (run){.files = F("dir/*")});
	is_str(r.names, "dir/.dot/secret,dir/sub/z.txt,dir/x.txt,dir/y.bin",
	       "dir/* selects dir's entries, matched subdirectories contribute their files");
	result_release(&r);

	r = collect(src_a, (run){.files = F("dir")});
	is_str(r.names, "dir/.dot/secret,dir/sub/z.txt,dir/x.txt,dir/y.bin",
	       "a bare directory name selects everything under it");
	result_release(&r);

	r = collect(src_a, (run){.files = F("dir/**/*")});
	is_str(r.names, "dir/.dot/secret,dir/sub/z.txt,dir/x.txt,dir/y.bin", "dir/**/* recursive");
	result_release(&r);

	r = collect(src_a, (run){.files = F("a.txt")});
	is_str(r.names, "a.txt", "single file by name");
	result_release(&r);

	r = collect(src_a, (run){.files = F("dir/sub/z.txt")});
	is_str(r.names, "dir/sub/z.txt", "file by sub/path keeps its path");
	result_release(&r);

	r = collect(src_a, (run){.files = F("*.txt")});
	is_str(r.names, "a.txt,b.txt", "*.txt matches the top level only");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*.txt")});
	is_str(r.names,
	       "a.txt,b.txt,dir/sub/z.txt,dir/x.txt,my-build-1/my-file-1.txt,my-build-2/my-file-2.txt,"
	       "my-build-2/my-subdirectory/my-file-3.txt",
	       "**/*.txt matches at every level");
	result_release(&r);

	r = collect(src_a, (run){.files = F("./a.txt", "./dir//x.txt")});
	is_str(r.names, "a.txt,dir/x.txt", "leading ./ and doubled slashes tolerated");
	result_release(&r);

	r = collect(src_a, (run){.files = F("*")});
	ok(r.rc == 0 && strstr(r.names, ".hidden") != NULL, "* matches hidden files");
	result_release(&r);

	r = collect(src_a, (run){.files = F(".hidden")});
	is_str(r.names, ".hidden", "hidden file by name");
	result_release(&r);

	r = collect(src_a, (run){.files = F("*.txt", "a.txt", "b.*")});
	is_str(r.names, "a.txt,b.txt", "a file matched by several entries appears once");
	result_release(&r);

	r = collect(src_a, (run){.files = F("dir/[xy].*", "dir/?.bin")});
	is_str(r.names, "dir/x.txt,dir/y.bin", "? and [...] classes");
	result_release(&r);

	r = collect(src_a, (run){.files = F("dir/../a.txt")});
	is_str(r.names, "a.txt", ".. that stays inside the base is resolved");
	result_release(&r);

	r = collect(src_a, (run){.files = F("../a/a.txt", "a.txt")});
	is_int(r.rc, 0, "escaping entry does not fail the others");
	ok(strstr(log_of(&r), "Skipping invalid file path ../a/a.txt\n") != NULL,
	   "entry escaping the base with .. is skipped as invalid");
	is_str(r.names, "a.txt", "only the valid entry selected");
	result_release(&r);

	char *abs = cbl_path_join(src_a, "dir/x.txt");
	r = collect(src_a, (run){.files = (const char *const[]){abs, NULL}});
	is_str(r.names, "dir/x.txt", "absolute entry inside the source dir made relative");
	result_release(&r);
	free(abs);

	r = collect(src_a, (run){.files = F("/etc/hostname", "a.txt")});
	ok(strstr(log_of(&r), "Skipping invalid file path /etc/hostname\n") != NULL,
	   "absolute entry outside the base is invalid");
	result_release(&r);
}

static void test_base_dir(void)
{
	result r = collect(src_a, (run){.files = F("*/my-file-3.txt"), .base = "my-build-2"});
	is_str(r.names, "my-subdirectory/my-file-3.txt",
	       "doc example: base-directory my-build-2 strips the base");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*"), .base = "my-build*", .discard = true});
	is_str(r.names, "my-file-1.txt,my-file-2.txt,my-file-3.txt",
	       "doc example: base-directory glob + discard-paths gives top-level files");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*"), .base = "my-build*"});
	is_str(r.names, "my-file-1.txt,my-file-2.txt,my-subdirectory/my-file-3.txt",
	       "base-directory glob: matched directory names stripped");
	is_str(log_of(&r),
	       "Expanding base directory path: my-build*\n"
	       "Assembling file list\n"
	       "Expanding my-build*\n"
	       "Expanding file paths for base directory my-build-1\n"
	       "Assembling file list\n"
	       "Expanding **/*\n"
	       "Expanding file paths for base directory my-build-2\n"
	       "Assembling file list\n"
	       "Expanding **/*\n"
	       "Found 3 file(s)\n",
	       "log lines for a glob base directory");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*"), .base = "./dir/"});
	is_str(r.names, ".dot/secret,sub/z.txt,x.txt,y.bin", "base-directory with ./ and trailing /");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*"), .base = "dir/sub", .base_raw = "$OUT"});
	ok(strstr(log_of(&r), "Expanding base directory path: $OUT\nExpanded to dir/sub\n"
			      "Assembling file list\nExpanding dir/sub\n") != NULL,
	   "base-directory expansion logged");
	is_str(r.names, "z.txt", "expanded base used");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*"), .base = "../a"});
	is_int(r.rc, CBL_EINVAL, "base-directory leaving the source dir is rejected");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*"), .base = "no-such-dir"});
	is_int(r.rc, CBL_ENOENT, "missing base-directory: nothing matched");
	ok(r.err && !strcmp(r.err->msg, "no matching artifact paths found"), "with the exact message");
	result_release(&r);

	// absolute base directory (a secondary source): bound is the base itself
	char *abs = cbl_path_join(src_a, "my-build-2");
	r = collect(tmproot, (run){.files = F("**/*"), .base = abs});
	is_str(r.names, "my-file-2.txt,my-subdirectory/my-file-3.txt", "absolute base-directory");
	result_release(&r);
	free(abs);
}

static void test_exclude_discard(void)
{
	result r = collect(src_a, (run){.files = F("**/*"), .excl = F("**/.*")});
	ok(r.rc == 0 && !strstr(r.names, ".hidden"), "exclude **/.* drops dot files");
	ok(strstr(r.names, "dir/.dot/secret") != NULL,
	   "exclude **/.* keeps files inside dot directories (per-file match)");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*"), .excl = F("**/.*", "**/.*/**/*")});
	ok(!strstr(r.names, ".hidden") && !strstr(r.names, ".dot"),
	   "exclude **/.*/**/* drops dot directories");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*"), .excl = F("**/node_modules/**/*")});
	is_str(r.names,
	       ".hidden,README.md,a.txt,app/main.js,b.txt,dir/.dot/secret,dir/sub/z.txt,dir/x.txt,"
	       "dir/y.bin,my-build-1/my-file-1.txt,my-build-2/my-file-2.txt,"
	       "my-build-2/my-subdirectory/my-file-3.txt",
	       "exclude **/node_modules/**/* at any depth");
	result_release(&r);

	r = collect(src_a, (run){.files = F("dir/*"), .excl = F("*.txt", "dir/*.bin")});
	is_str(r.names, "dir/.dot/secret,dir/sub/z.txt,dir/x.txt",
	       "exclude globs are relative to the base (top-level *.txt does not hit dir/x.txt)");
	result_release(&r);

	r = collect(src_a, (run){.files = F("**/*"), .base = "my-build-2", .excl = F("my-sub*/**")});
	is_str(r.names, "my-file-2.txt", "exclude relative to base-directory");
	result_release(&r);

	r = collect(src_a, (run){.files = F("*.txt"), .excl = F("**")});
	is_int(r.rc, CBL_ENOENT, "everything excluded: nothing matched");
	ok(!strstr(log_of(&r), "Skipping invalid"), "excluded matches are not invalid paths");
	result_release(&r);

	r = collect(src_a, (run){.files = F("dir/sub/z.txt", "dir/*.txt"), .discard = true});
	is_str(r.names, "x.txt,z.txt", "discard-paths keeps base names");
	result_release(&r);

	// collisions: the entry whose source path sorts last wins
	char *src = cbl_path_join(tmproot, "coll");
	mkfile(src, "a.txt", "top");
	mkfile(src, "sub/a.txt", "sub");
	mkfile(src, "z/a.txt", "z");
	r = collect(src, (run){.files = F("**/*"), .discard = true});
	is_str(r.names, "a.txt", "collision after discard-paths leaves one entry");
	ok(r.l && strstr(r.l->items[0].path, "/z/a.txt") != NULL,
	   "the source path sorting last wins (z/a.txt)");
	result_release(&r);
	r = collect(src, (run){.files = F("z/a.txt", "a.txt"), .discard = true});
	ok(r.l && r.l->n == 1 && strstr(r.l->items[0].path, "/z/a.txt") != NULL,
	   "winner independent of files order");
	result_release(&r);
	free(src);
}

static void test_logs_and_missing(void)
{
	result r = collect(src_a, (run){.files = F("**/*")});
	is_str(log_of(&r),
	       "Expanding base directory path: .\n"
	       "Assembling file list\n"
	       "Expanding .\n"
	       "Expanding file paths for base directory .\n"
	       "Assembling file list\n"
	       "Expanding **/*\n"
	       "Found 14 file(s)\n",
	       "log line sequence matches the service");
	result_release(&r);

	r = collect(src_a, (run){.files = F("a.txt", "missing.json")});
	is_int(r.rc, 0, "missing literal path with another match still succeeds");
	is_str(r.names, "a.txt", "only the existing file selected");
	ok(strstr(log_of(&r), "Expanding missing.json\nSkipping invalid file path missing.json\n") !=
		   NULL,
	   "missing literal path logs Skipping invalid file path");
	result_release(&r);

	r = collect(src_a, (run){.files = F("imagedefinitions.json")});
	is_int(r.rc, CBL_ENOENT, "nothing matched returns CBL_ENOENT");
	is_str(r.err ? r.err->msg : NULL, "no matching artifact paths found", "exact message");
	ok(r.l == NULL, "no list on failure");
	ok(strstr(log_of(&r), "Expanding imagedefinitions.json\n"
			      "Skipping invalid file path imagedefinitions.json\n") != NULL &&
		   !strstr(log_of(&r), "Found"),
	   "failure log: skip line, no Found line");
	result_release(&r);

	r = collect(src_a, (run){.files = F("*.nothing")});
	is_int(r.rc, CBL_ENOENT, "glob matching nothing fails too");
	ok(!strstr(log_of(&r), "Skipping invalid"), "a glob matching nothing is not an invalid path");
	result_release(&r);

	r = collect(src_a, (run){.files = F("$DIR/*.txt"), .expanded = F("dir/*.txt")});
	ok(strstr(log_of(&r), "Expanding $DIR/*.txt\nExpanded to dir/*.txt\nFound 1 file(s)\n") != NULL,
	   "shell-expanded entry logs Expanded to");
	is_str(r.names, "dir/x.txt", "expanded entry used");
	result_release(&r);
}

static void test_matcher(void)
{
	ok(artifacts_glob_match("**/*", "a/b/c"), "**/* deep");
	ok(artifacts_glob_match("**/*", "a"), "**/* top");
	ok(artifacts_glob_match("**/c", "c"), "** matches zero levels");
	ok(!artifacts_glob_match("*", "a/b"), "* stays in one component");
	ok(artifacts_glob_match("a/**/b", "a/x/y/b"), "a/**/b");
	ok(artifacts_glob_match("a/**/b", "a/b"), "a/**/b with zero levels");
	ok(!artifacts_glob_match("a/**/b", "a/x/y/c"), "a/**/b mismatch");
	ok(artifacts_glob_match("*.[ch]", "x.h"), "class");
	ok(!artifacts_glob_match("*.[!ch]", "x.h"), "negated class");
	ok(artifacts_glob_match("[[:digit:]]*", "9lives"), "posix class");
	ok(artifacts_glob_match("a\\*b", "a*b") && !artifacts_glob_match("a\\*b", "axb"),
	   "backslash escapes");
	ok(artifacts_glob_match("[ab", "[ab"), "unterminated [ is literal");
	ok(!artifacts_glob_match("../x", "x"), "escaping pattern never matches");

	// Pathological patterns finish quickly (NFA, single-backtrack * matcher).
	cbl_buf path = CBL_BUF_INIT, pat = CBL_BUF_INIT, comp = CBL_BUF_INIT;
	for (int i = 0; i < 200; i++)
		cbl_buf_puts(&path, i ? "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" : "aaaa");
	for (int i = 0; i < 40; i++)
		cbl_buf_puts(&pat, "**/*a*/");
	cbl_buf_puts(&pat, "b");
	for (int i = 0; i < 30; i++)
		cbl_buf_puts(&comp, "*a");
	cbl_buf_puts(&comp, "*b");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool m1 = artifacts_glob_match(pat.ptr, path.ptr);
	bool m2 = artifacts_glob_match("**/**/**/**/**/**/**/**/**/**/**/**/a", path.ptr);
	bool m3 = artifacts_glob_match(comp.ptr,
				       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ok(!m1 && !m2 && !m3, "pathological patterns do not match");
	ok(secs < 1.0, "pathological patterns take no exponential time (%.3fs)", secs);
	cbl_buf_release(&path);
	cbl_buf_release(&pat);
	cbl_buf_release(&comp);
}

static char *src_s, *outside;

static void build_tree_symlinks(void)
{
	src_s = cbl_path_join(tmproot, "s");
	outside = cbl_path_join(tmproot, "outside");
	mkfile(outside, "secret.txt", "SECRET");
	mkfile(outside, "od/o.txt", "O");
	mkfile(src_s, "real.txt", "REAL");
	mkfile(src_s, "d/inner.txt", "INNER");
	mklink(src_s, "ln_in", "real.txt");
	char *t = cbl_path_join(outside, "secret.txt");
	mklink(src_s, "ln_out", t);
	free(t);
	t = cbl_path_join(outside, "od");
	mklink(src_s, "ln_outdir", t);
	free(t);
	mklink(src_s, "ln_dir", "d");
	mklink(src_s, "dangling", "no-such-target");
	mkfile(src_s, "loop/f.txt", "F");
	mklink(src_s, "loop/back", "..");
	mklink(src_s, "loop/self", ".");
}

static void test_symlinks(void)
{
	result r = collect(src_s, (run){.files = F("**/*")});
	is_int(r.rc, 0, "symlink tree collects");
	is_str(r.names, "d/inner.txt,ln_dir/inner.txt,ln_in,loop/f.txt,real.txt",
	       "followed: inside links resolved, outside/dangling/loops skipped");
	bool any_sl = false, ln_in_ok = false;
	for (size_t i = 0; r.l && i < r.l->n; i++) {
		any_sl |= r.l->items[i].is_symlink;
		if (!strcmp(r.l->items[i].name, "ln_in"))
			ln_in_ok = strstr(r.l->items[i].path, "/s/real.txt") != NULL;
	}
	ok(!any_sl, "no symlink entries when enable-symlinks is off");
	ok(ln_in_ok, "followed file symlink reads the resolved target");
	ok(strstr(log_of(&r), "Skipping symlink ln_out: target is outside the source directory\n") !=
		   NULL,
	   "symlink to a file outside the tree skipped with a log line");
	ok(strstr(log_of(&r), "Skipping symlink ln_outdir: target is outside the source directory\n") !=
		   NULL,
	   "symlink to a directory outside the tree skipped");
	ok(strstr(log_of(&r), "Skipping symlink loop/back: directory loop\n") != NULL &&
		   strstr(log_of(&r), "Skipping symlink loop/self: directory loop\n") != NULL,
	   "symlink loops detected");
	ok(strstr(log_of(&r), "Skipping symlink dangling: target does not exist\n") != NULL,
	   "dangling symlink skipped");
	result_release(&r);

	r = collect(src_s, (run){.files = F("ln_out")});
	is_int(r.rc, CBL_ENOENT, "a literal outside link alone matches nothing");
	result_release(&r);

	r = collect(src_s, (run){.files = F("**/*"), .symlinks = true});
	is_str(r.names, "d/inner.txt,dangling,ln_dir,ln_in,ln_out,ln_outdir,loop/back,loop/f.txt,"
			"loop/self,real.txt",
	       "enable-symlinks: links are entries, never descended");
	bool flags = true;
	for (size_t i = 0; r.l && i < r.l->n; i++) {
		bool want = strncmp(r.l->items[i].name, "ln_", 3) == 0 ||
			    !strcmp(r.l->items[i].name, "dangling") ||
			    !strcmp(r.l->items[i].name, "loop/back") ||
			    !strcmp(r.l->items[i].name, "loop/self");
		if (r.l->items[i].is_symlink != want)
			flags = false;
	}
	ok(flags, "is_symlink set exactly on the links");
	result_release(&r);

	// mutual directory links a/l -> ../b, b/l -> ../a terminate
	char *src = cbl_path_join(tmproot, "mutual");
	mkfile(src, "a/fa", "a");
	mkfile(src, "b/fb", "b");
	mklink(src, "a/l", "../b");
	mklink(src, "b/l", "../a");
	r = collect(src, (run){.files = F("**/*")});
	is_str(r.names, "a/fa,a/l/fb,b/fb,b/l/fa", "mutually linked directories terminate");
	result_release(&r);
	free(src);
}

// The source reached through a descriptor, as the runner reads a sandbox's
// view when not root ("/proc/self/fd/N": the directory may be in another
// mount namespace, where its own path means nothing here): the same
// collection, the links resolved beneath it, a link that climbs above it
// outside; an absolute base-directory under it.
static void test_descriptor_source(void)
{
	int fd = open(src_s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *src = cbl_fd_path(fd);
	mklink(src_s, "climb", "../../../../../../etc");
	result r = collect(src, (run){.files = F("**/*")});
	is_int(r.rc, 0, "fd source: collects");
	is_str(r.names, "d/inner.txt,ln_dir/inner.txt,ln_in,loop/f.txt,real.txt",
	       "fd source: the same files as through the path");
	bool under = r.l && r.l->n;
	for (size_t i = 0; r.l && i < r.l->n; i++)
		under &= !strncmp(r.l->items[i].path, src, strlen(src));
	ok(under, "fd source: every file read through the descriptor");
	ok(strstr(log_of(&r), "Skipping symlink ln_out: target is outside the source directory\n") &&
		   strstr(log_of(&r), "Skipping symlink climb: target is outside the source directory\n") &&
		   strstr(log_of(&r), "Skipping symlink loop/back: directory loop\n") &&
		   strstr(log_of(&r), "Skipping symlink dangling: target does not exist\n"),
	   "fd source: absolute links and links climbing out are outside, loops and dangling as before");
	result_release(&r);
	char *base = cbl_xasprintf("%s/d", src);
	r = collect(src, (run){.files = F("*"), .base = base});
	is_str(r.names, "inner.txt", "fd source: an absolute base-directory under the descriptor");
	result_release(&r);
	free(base);
	char *lsrc = cbl_path_join(src_s, "climb");
	unlink(lsrc);
	free(lsrc);
	free(src);
	close(fd);
}

// ---------------------------------------------------------------------------
// packaging

typedef struct zent {
	char name[256];
	char data[64];
	char link[256];
	int type;
	int perm;
	time_t mtime;
} zent;

static int read_zip(const char *path, zent *out, int max)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_zip(a);
	int n = -1;
	if (archive_read_open_filename(a, path, 10240) != ARCHIVE_OK)
		goto out;
	n = 0;
	struct archive_entry *e;
	while (n < max && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		zent *z = &out[n++];
		memset(z, 0, sizeof(*z));
		snprintf(z->name, sizeof(z->name), "%s", archive_entry_pathname(e));
		z->type = (int)archive_entry_filetype(e);
		z->perm = (int)archive_entry_perm(e);
		z->mtime = archive_entry_mtime(e);
		if (archive_entry_symlink(e))
			snprintf(z->link, sizeof(z->link), "%s", archive_entry_symlink(e));
		la_ssize_t r = archive_read_data(a, z->data, sizeof(z->data) - 1);
		if (r > 0)
			z->data[r] = '\0';
	}
out:
	archive_read_free(a);
	return n;
}

static char *read_all(const char *path, size_t *len)
{
	char *d = NULL;
	if (cbl_read_file(path, 0, &d, len, NULL) < 0)
		return NULL;
	return d;
}

static void digest_file(const char *path, const EVP_MD *md, char *hex)
{
	size_t len = 0;
	char *d = read_all(path, &len);
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_Digest(d, len, out, &n, md, NULL);
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", out[i]);
	free(d);
}

static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

static int count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strstr(de->d_name, ".tmp.") || strstr(de->d_name, ".old."))
			n++;
	if (d)
		closedir(d);
	return n;
}

static void test_zip(void)
{
	char *outdir = cbl_path_join(tmproot, "out");
	cbl_mkdir_p(outdir, 0755, NULL);
	char *z1 = cbl_path_join(outdir, "one.zip"), *z2 = cbl_path_join(outdir, "sub/two.zip");
	char *p = cbl_path_join(src_a, "dir/x.txt");
	chmod(p, 0750);
	free(p);

	result r = collect(src_a, (run){.files = F("**/*")});
	char sha1[65] = "", md51[33] = "", sha2[65] = "", md52[33] = "";
	cbl_error *e = NULL;
	int rc = artifacts_write_zip(r.l, z1, false, sha1, md51, &e);
	is_int(rc, 0, "write_zip succeeds");
	if (e)
		printf("# %s\n", e->msg);
	cbl_error_clear(&e);
	rc = artifacts_write_zip(r.l, z2, false, sha2, md52, &e);
	is_int(rc, 0, "second zip (parent directory created)");
	cbl_error_clear(&e);

	zent zs[32];
	int n = read_zip(z1, zs, 32);
	is_int(n, 14, "zip holds every selected file, no directory entries");
	cbl_buf names = CBL_BUF_INIT;
	for (int i = 0; i < n; i++)
		cbl_buf_printf(&names, "%s%s", i ? "," : "", zs[i].name);
	is_str(cbl_buf_cstr(&names), ALL_A, "zip entry names in sorted order");
	cbl_buf_release(&names);
	int xi = -1;
	for (int i = 0; i < n; i++)
		if (!strcmp(zs[i].name, "dir/x.txt"))
			xi = i;
	ok(xi >= 0 && !strcmp(zs[xi].data, "X"), "zip content read back");
	ok(xi >= 0 && zs[xi].perm == 0750, "permissions kept (%o)", xi >= 0 ? zs[xi].perm : 0);
	ok(xi >= 0 && zs[xi].mtime == 1700000000, "mtime taken from the file");
	ok(xi >= 0 && zs[xi].type == AE_IFREG, "regular file entry");

	size_t l1 = 0, l2 = 0;
	char *b1 = read_all(z1, &l1), *b2 = read_all(z2, &l2);
	ok(b1 && b2 && l1 == l2 && !memcmp(b1, b2, l1), "two zips of the same input are byte-identical");
	is_str(sha1, sha2, "sha256 equal for identical zips");
	ok(b1 && l1 >= 22 && !memcmp(b1 + l1 - 22, "PK\005\006", 4),
	   "zip ends with the end-of-central-directory record (no block padding)");
	free(b1);
	free(b2);

	char hex[65];
	digest_file(z1, EVP_sha256(), hex);
	is_str(sha1, hex, "sha256 matches an independent digest of the file");
	digest_file(z1, EVP_md5(), hex);
	is_str(md51, hex, "md5 matches an independent digest of the file");
	ok(strlen(sha1) == 64 && strlen(md51) == 32, "hex digest lengths");

	// the openssl tool agrees too, when present
	char *cmd = cbl_xasprintf("openssl dgst -sha256 -r '%s' 2>/dev/null", z1);
	FILE *f = popen(cmd, "r");
	char line[256] = "";
	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		pclose(f);
	}
	free(cmd);
	if (line[0])
		ok(!strncmp(line, sha1, 64), "sha256 matches `openssl dgst`");
	else
		skip("openssl tool not available");

	ok(count_tmp(outdir) == 0, "no temp file left after success");
	result_release(&r);

	// symlinks kept as symlink entries
	char *z3 = cbl_path_join(outdir, "links.zip");
	r = collect(src_s, (run){.files = F("ln_in", "real.txt", "ln_out"), .symlinks = true});
	rc = artifacts_write_zip(r.l, z3, true, NULL, NULL, &e);
	is_int(rc, 0, "zip with symlinks");
	cbl_error_clear(&e);
	n = read_zip(z3, zs, 32);
	is_int(n, 3, "three entries");
	ok(n == 3 && !strcmp(zs[0].name, "ln_in") && zs[0].type == AE_IFLNK &&
		   !strcmp(zs[0].link, "real.txt"),
	   "symlink entry with its target");
	ok(n == 3 && zs[1].type == AE_IFLNK && strstr(zs[1].link, "/outside/secret.txt") &&
		   zs[1].data[0] == '\0',
	   "outside link stored as a link, content not leaked");
	ok(n == 3 && zs[2].type == AE_IFREG && !strcmp(zs[2].data, "REAL"), "regular file beside links");
	result_release(&r);

	// followed symlink stores content
	r = collect(src_s, (run){.files = F("ln_in")});
	rc = artifacts_write_zip(r.l, z3, false, NULL, NULL, &e);
	n = read_zip(z3, zs, 32);
	ok(rc == 0 && n == 1 && zs[0].type == AE_IFREG && !strcmp(zs[0].data, "REAL"),
	   "followed symlink stored as its content (and an existing zip replaced)");
	cbl_error_clear(&e);
	result_release(&r);

	// atomic publish: a file vanishing mid-way fails the zip, nothing left
	char *src = cbl_path_join(tmproot, "vanish");
	for (int i = 0; i < 5; i++) {
		char rel[32];
		snprintf(rel, sizeof(rel), "f%d.txt", i);
		mkfile(src, rel, "content");
	}
	r = collect(src, (run){.files = F("*")});
	char *gone = cbl_path_join(src, "f3.txt");
	unlink(gone);
	char *z4 = cbl_path_join(outdir, "fail.zip");
	rc = artifacts_write_zip(r.l, z4, false, sha1, NULL, &e);
	ok(rc < 0 && e && strstr(e->msg, "f3.txt"), "zip fails on an unreadable entry");
	cbl_error_clear(&e);
	ok(!exists(z4), "failed zip: dest_path does not exist");
	ok(count_tmp(outdir) == 0, "failed zip: temp file removed");
	// an existing archive survives a failed rewrite
	size_t before = 0, after = 0;
	free(read_all(z1, &before));
	rc = artifacts_write_zip(r.l, z1, false, NULL, NULL, &e);
	free(read_all(z1, &after));
	ok(rc < 0 && before == after && read_zip(z1, zs, 32) == 14,
	   "failed rewrite leaves the previous zip intact");
	cbl_error_clear(&e);

	// write_dir failure leaves an existing dest untouched
	char *dd = cbl_path_join(outdir, "dirfail");
	mkfile(dd, "keep.txt", "old");
	rc = artifacts_write_dir(r.l, dd, false, &e);
	char *keep = cbl_path_join(dd, "keep.txt");
	char *f0 = cbl_path_join(dd, "f0.txt");
	ok(rc < 0 && exists(keep) && !exists(f0), "failed write_dir keeps the previous directory");
	ok(count_tmp(outdir) == 0, "failed write_dir: temp tree removed");
	cbl_error_clear(&e);
	free(keep);
	free(f0);
	free(dd);
	result_release(&r);

	// invalid names refused
	artifacts_entry bad = {.path = (char *)"/etc/hostname", .name = (char *)"../escape"};
	artifacts_list bl = {.items = &bad, .n = 1};
	rc = artifacts_write_zip(&bl, z4, false, NULL, NULL, &e);
	is_int(rc, CBL_EINVAL, "entry name with .. refused");
	cbl_error_clear(&e);

	free(gone);
	free(src);
	free(z1);
	free(z2);
	free(z3);
	free(z4);
	free(outdir);
}

// ---------------------------------------------------------------------------
// parallel ZIP writer: round trips, sizes, determinism, ZIP64, failures

// Deterministic bytes: kind 0 = text (compressible), 1 = random (stored).
static void fill(unsigned char *p, size_t n, unsigned seed, int kind)
{
	static const char *const words[] = {"function ", "return ", "const ", "this.", "value",
					    "(err) ", "=> {", "}\n", "module.exports", " = ",
					    "require('", "');\n", "if (", "null", "undefined"};
	uint64_t x = seed * 2654435761u + 1;
	size_t i = 0;
	while (i < n) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (kind == 1) {
			p[i++] = (unsigned char)(x >> 24);
			continue;
		}
		const char *w = words[x % (sizeof(words) / sizeof(words[0]))];
		for (; *w && i < n; w++)
			p[i++] = (unsigned char)*w;
		if (i < n && (x >> 40) % 7 == 0)
			p[i++] = (unsigned char)('0' + (x >> 50) % 10);
	}
}

static void mkbytes(const char *root, const char *rel, size_t n, unsigned seed, int kind,
		    mode_t mode, time_t mtime)
{
	char *p = cbl_path_join(root, rel);
	char *dir = cbl_xstrdup(p);
	*strrchr(dir, '/') = '\0';
	cbl_mkdir_p(dir, 0755, NULL);
	unsigned char *d = cbl_xmalloc(n ? n : 1);
	fill(d, n, seed, kind);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (cbl_write_all(fd, d, n) < 0)
			printf("# write %s failed\n", p);
		fchmod(fd, mode);
		struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
		futimens(fd, ts);
		close(fd);
	}
	free(d);
	free(dir);
	free(p);
}

static bool have_unzip(void) { return access("/usr/bin/unzip", X_OK) == 0; }

static bool unzip_test(const char *zip)
{
	char *cmd = cbl_xasprintf("/usr/bin/unzip -tqq '%s' >/dev/null 2>&1", zip);
	int st = system(cmd);
	free(cmd);
	return st == 0;
}

// Reads `zip` with libarchive and compares every entry with the list: same
// names in order, same content (file bytes, or link target for links kept as
// links), same permission bits and mtime.  Returns the number of mismatches
// (-1 when the archive cannot be read); *n_out gets the entry count.
static int verify_zip(const char *zip, const artifacts_list *l, bool keep_symlinks, size_t *n_out)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_zip(a);
	int bad = 0;
	size_t n = 0, cap = 1 << 16;
	char *buf = cbl_xmalloc(cap);
	if (archive_read_open_filename(a, zip, 65536) != ARCHIVE_OK) {
		bad = -1;
		goto out;
	}
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		if (n >= l->n) {
			bad++;
			n++;
			continue;
		}
		const artifacts_entry *it = &l->items[n++];
		struct stat st;
		bool as_link = it->is_symlink && keep_symlinks;
		if ((as_link ? lstat(it->path, &st) : stat(it->path, &st)) < 0) {
			bad++;
			continue;
		}
		// mtimes outside the UT field's 32 bits have only the DOS time,
		// which libarchive reads as local time
		bool ut = st.st_mtime >= INT32_MIN && st.st_mtime <= INT32_MAX;
		const char *nm = archive_entry_pathname(e);
		bool ok_ = nm && !strcmp(nm, it->name) && (!ut || archive_entry_mtime(e) == st.st_mtime) &&
			   (archive_entry_perm(e) & 0777) == (st.st_mode & 0777);
		if (as_link) {
			char t[PATH_MAX + 1];
			ssize_t tn = readlink(it->path, t, sizeof(t) - 1);
			t[tn > 0 ? tn : 0] = '\0';
			ok_ = ok_ && archive_entry_filetype(e) == AE_IFLNK && archive_entry_symlink(e) &&
			      !strcmp(archive_entry_symlink(e), t);
		} else {
			ok_ = ok_ && archive_entry_filetype(e) == AE_IFREG;
			int fd = open(it->path, O_RDONLY);
			off_t total = 0;
			for (;;) {
				la_ssize_t got = archive_read_data(a, buf, cap / 2);
				if (got < 0) {
					ok_ = false;
					break;
				}
				if (got == 0)
					break;
				ssize_t fr = pread(fd, buf + cap / 2, (size_t)got, total);
				if (fr != got || memcmp(buf, buf + cap / 2, (size_t)got))
					ok_ = false;
				total += got;
			}
			ok_ = ok_ && total == st.st_size;
			if (fd >= 0)
				close(fd);
		}
		if (!ok_) {
			if (bad < 5)
				printf("#   mismatch at entry %zu '%s'\n", n - 1, it->name);
			bad++;
		}
	}
	if (r != ARCHIVE_EOF) {
		printf("#   libarchive: %s\n", archive_error_string(a));
		bad++;
	}
	if (n != l->n)
		bad++;
out:
	*n_out = n;
	archive_read_free(a);
	free(buf);
	return bad;
}

static bool same_bytes(const char *p1, const char *p2)
{
	size_t l1 = 0, l2 = 0;
	char *b1 = read_all(p1, &l1), *b2 = read_all(p2, &l2);
	bool same = b1 && b2 && l1 == l2 && !memcmp(b1, b2, l1);
	free(b1);
	free(b2);
	return same;
}

static unsigned le16(const unsigned char *p) { return p[0] | (unsigned)p[1] << 8; }
static uint32_t le32(const unsigned char *p) { return le16(p) | (uint32_t)le16(p + 2) << 16; }

// Sizes of the big-file fixtures (multiples of the writer's chunks and not).
#define BIG_SIZE (8u << 20)
#define SMALL_MAX_T (1u << 20)

static char *src_p;

static void build_tree_parallel(void)
{
	src_p = cbl_path_join(tmproot, "par");
	char rel[64];
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(rel, sizeof(rel), "pkg%02u/%s/f%04u.%s", i % 37, i % 3 ? "lib" : "dist", i,
			 i % 11 == 0 ? "bin" : "js");
		size_t n = i % 97 == 0 ? 0 : (size_t)(i * 7919u % 6000u);
		mkbytes(src_p, rel, n, i, i % 11 == 0, i % 5 ? 0644 : 0755,
			1600000000 + (time_t)i * 3601);
	}
	mkbytes(src_p, "big/bundle.js", BIG_SIZE + 12345, 1, 0, 0644, 1700000000);
	mkbytes(src_p, "big/random.bin", 5 * SMALL_MAX_T + 1, 2, 1, 0600, 1700000000);
	mkbytes(src_p, "big/exact.js", SMALL_MAX_T, 3, 0, 0644, 1700000000);
	mkbytes(src_p, "big/exact1.js", SMALL_MAX_T + 1, 4, 0, 0644, 1700000000);
	mkbytes(src_p, "empty", 0, 0, 0, 0644, 1700000000);
	mkbytes(src_p, "old", 5, 5, 0, 0644, 100000000);        // 1973: DOS time clamps
	mkbytes(src_p, "future", 5, 6, 0, 0644, 4200000000LL); // 2103, beyond the UT field
	mkbytes(src_p, "ünïcödé/名前.txt", 10, 7, 0, 0644, 1700000000);
}

static int write_with(const artifacts_list *l, const char *dest, bool links, int threads,
		      int level, bool z64, char sha[65], cbl_error **e)
{
	artifacts_zip_opts o = ARTIFACTS_ZIP_OPTS_INIT;
	o.threads = threads;
	o.level = level;
	o.force_zip64 = z64;
	return artifacts_write_zip_opts(l, dest, links, &o, sha, NULL, e);
}

static void test_zip_parallel(void)
{
	char *outdir = cbl_path_join(tmproot, "pout");
	cbl_mkdir_p(outdir, 0755, NULL);
	char *z1 = cbl_path_join(outdir, "t4.zip"), *z2 = cbl_path_join(outdir, "t1.zip");
	char *z3 = cbl_path_join(outdir, "utc.zip"), *z4 = cbl_path_join(outdir, "tokyo.zip");
	char sha1[65] = "", sha2[65] = "";
	cbl_error *e = NULL;

	result r = collect(src_p, (run){.files = F("**/*")});
	is_int(r.l ? (long long)r.l->n : -1, 3008, "parallel tree: 3008 files selected");

	int rc = write_with(r.l, z1, false, 4, 0, false, sha1, &e);
	is_int(rc, 0, "parallel zip (4 threads) succeeds");
	if (e)
		printf("# %s\n", e->msg);
	cbl_error_clear(&e);
	size_t n = 0;
	int bad = verify_zip(z1, r.l, false, &n);
	is_int(bad, 0, "libarchive reads back every entry: names, order, content, mode, mtime");
	is_int(n, 3008, "entry count");
	if (have_unzip())
		ok(unzip_test(z1), "unzip -t accepts the archive");
	else
		skip("/usr/bin/unzip not installed");
	char hex[65];
	digest_file(z1, EVP_sha256(), hex);
	is_str(sha1, hex, "sha256 of the parallel output matches the file");

	rc = write_with(r.l, z2, false, 1, 0, false, sha2, &e);
	ok(rc == 0 && same_bytes(z1, z2), "1 thread and 4 threads give identical bytes");
	is_str(sha1, sha2, "same sha256");
	cbl_error_clear(&e);
	rc = write_with(r.l, z2, false, 64, 0, false, sha2, &e);
	ok(rc == 0 && same_bytes(z1, z2), "thread count capped (64 asked), same bytes");
	cbl_error_clear(&e);
	rc = artifacts_write_zip(r.l, z2, false, sha2, NULL, &e);
	ok(rc == 0 && same_bytes(z1, z2), "artifacts_write_zip = the default options");
	cbl_error_clear(&e);

	// TZ does not change the bytes; the DOS time is the mtime in UTC
	const char *tz = getenv("TZ");
	char *saved_tz = tz ? cbl_xstrdup(tz) : NULL;
	setenv("TZ", "UTC", 1);
	tzset();
	rc = write_with(r.l, z3, false, 2, 0, false, NULL, &e);
	cbl_error_clear(&e);
	setenv("TZ", "Asia/Tokyo", 1);
	tzset();
	rc |= write_with(r.l, z4, false, 2, 0, false, NULL, &e);
	cbl_error_clear(&e);
	ok(rc == 0 && same_bytes(z3, z4), "TZ=UTC and TZ=Asia/Tokyo give identical bytes");
	ok(same_bytes(z1, z3), "... and the same bytes as under the test's own TZ");
	bad = verify_zip(z4, r.l, false, &n);
	is_int(bad, 0, "mtimes read back exactly under TZ=Asia/Tokyo");
	if (saved_tz)
		setenv("TZ", saved_tz, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved_tz);

	// the first local header: "big/bundle.js", mtime 1700000000 =
	// 2023-11-14 22:13:20 UTC; streamed (bit 3), deflated
	size_t len = 0;
	unsigned char *b = (unsigned char *)read_all(z1, &len);
	ok(b && len > 30 && le32(b) == 0x04034b50 && le16(b + 26) == strlen("big/bundle.js") &&
		   !memcmp(b + 30, "big/bundle.js", 13),
	   "first entry is big/bundle.js");
	unsigned t = b ? le16(b + 10) : 0, d = b ? le16(b + 12) : 0;
	ok(t == ((22u << 11) | (13u << 5) | 10u) && d == (((2023u - 1980u) << 9) | (11u << 5) | 14u),
	   "DOS time/date is the mtime in UTC (%04x %04x)", t, d);
	ok(b && (le16(b + 6) & 8) && le16(b + 8) == 8, "big file streamed (data descriptor), deflated");
	// sizes of the whole archive: every entry header + data + central dir
	// stays below the input for this compressible tree
	struct stat st;
	off_t in_total = 0;
	for (size_t i = 0; r.l && i < r.l->n; i++)
		if (stat(r.l->items[i].path, &st) == 0)
			in_total += st.st_size;
	ok(len > 0 && (off_t)len < in_total, "archive smaller than its input (%zu < %lld)", len,
	   (long long)in_total);
	free(b);

	// compression levels: 1 and 9 both valid and round-trip; 10 refused
	rc = write_with(r.l, z2, false, 2, 1, false, NULL, &e);
	ok(rc == 0 && verify_zip(z2, r.l, false, &n) == 0, "level 1 round-trips");
	cbl_error_clear(&e);
	rc = write_with(r.l, z2, false, 2, 10, false, NULL, &e);
	is_int(rc, CBL_EINVAL, "level 10 refused");
	cbl_error_clear(&e);

	// forced ZIP64 records
	rc = write_with(r.l, z2, false, 3, 0, true, NULL, &e);
	is_int(rc, 0, "forced ZIP64 zip succeeds");
	cbl_error_clear(&e);
	ok(verify_zip(z2, r.l, false, &n) == 0 && n == 3008, "libarchive reads the ZIP64 variant");
	if (have_unzip())
		ok(unzip_test(z2), "unzip -t accepts the ZIP64 variant");
	else
		skip("/usr/bin/unzip not installed");
	b = (unsigned char *)read_all(z2, &len);
	ok(b && len > 98 && le32(b + len - 22) == 0x06054b50 && le32(b + len - 42) == 0x07064b50 &&
		   le16(b + len - 12) == 0xffff,
	   "ZIP64 end records present");
	free(b);
	result_release(&r);

	// an empty list gives an empty archive
	artifacts_list none = {0};
	rc = write_with(&none, z2, false, 0, 0, false, NULL, &e);
	b = (unsigned char *)read_all(z2, &len);
	ok(rc == 0 && len == 22 && b && le32(b) == 0x06054b50, "empty list: end record only");
	free(b);
	cbl_error_clear(&e);

	free(z1);
	free(z2);
	free(z3);
	free(z4);
	free(outdir);
}

// More than 65535 entries: ZIP64 end records by count.  The entries share one
// small file (the list is paths + names; no need for 70,000 files on disk).
static void test_zip_many_entries(void)
{
	char *outdir = cbl_path_join(tmproot, "pout");
	char *z = cbl_path_join(outdir, "many.zip");
	char *one = cbl_path_join(tmproot, "one.txt");
	mkbytes(tmproot, "one.txt", 100, 9, 0, 0644, 1700000000);
	size_t N = 70000;
	artifacts_list l = {.items = cbl_xcalloc(N, sizeof(artifacts_entry)), .n = N};
	for (size_t i = 0; i < N; i++) {
		l.items[i].path = one;
		l.items[i].name = cbl_xasprintf("d%02zu/e%06zu", i / 1000, i);
	}
	cbl_error *e = NULL;
	int rc = write_with(&l, z, false, 0, 0, false, NULL, &e);
	is_int(rc, 0, "70,000 entries written");
	if (e)
		printf("# %s\n", e->msg);
	cbl_error_clear(&e);
	size_t n = 0;
	ok(verify_zip(z, &l, false, &n) == 0 && n == N, "libarchive reads 70,000 entries (ZIP64 count)");
	if (have_unzip())
		ok(unzip_test(z), "unzip -t accepts the 70,000-entry archive");
	else
		skip("/usr/bin/unzip not installed");
	for (size_t i = 0; i < N; i++)
		free(l.items[i].name);
	free(l.items);
	free(one);
	free(z);
	free(outdir);
}

static void test_zip_parallel_links_and_failures(void)
{
	char *outdir = cbl_path_join(tmproot, "pout");
	char *z = cbl_path_join(outdir, "links.zip");
	char *src = cbl_path_join(tmproot, "plinks");
	cbl_error *e = NULL;
	for (int i = 0; i < 200; i++) {
		char rel[32];
		snprintf(rel, sizeof(rel), "f%03d.txt", i);
		mkbytes(src, rel, (size_t)i * 100, (unsigned)i, 0, 0644, 1700000000);
	}
	mkbytes(src, "sub/real.js", 5000, 1, 0, 0644, 1700000000);
	mklink(src, "l_file", "f001.txt");
	mklink(src, "l_dir", "sub");
	mklink(src, "l_dangling", "does-not-exist");
	mklink(src, "sub/l_up", "../f002.txt");

	result r = collect(src, (run){.files = F("**/*"), .symlinks = true});
	int links = 0;
	for (size_t i = 0; r.l && i < r.l->n; i++)
		links += r.l->items[i].is_symlink;
	is_int(links, 4, "four symlink entries selected");
	int rc = write_with(r.l, z, true, 2, 0, false, NULL, &e);
	is_int(rc, 0, "parallel zip with symlinks kept");
	cbl_error_clear(&e);
	size_t n = 0;
	is_int(verify_zip(z, r.l, true, &n), 0, "symlink entries read back as links with targets");
	if (have_unzip())
		ok(unzip_test(z), "unzip -t accepts the symlink archive");
	else
		skip("/usr/bin/unzip not installed");
	// external attributes carry S_IFLNK
	zent zs[8];
	int zn = read_zip(z, zs, 1);
	ok(zn == 1, "first entry read");
	result_release(&r);

	// failures: the first failing entry in list order is reported, nothing
	// is published, no temp file is left (several threads)
	r = collect(src, (run){.files = F("*.txt")});
	char *g1 = cbl_path_join(src, "f050.txt"), *g2 = cbl_path_join(src, "f150.txt");
	unlink(g2);
	unlink(g1);
	char *zf = cbl_path_join(outdir, "pfail.zip");
	for (int round = 0; round < 5; round++) {
		rc = write_with(r.l, zf, false, 4, 0, false, NULL, &e);
		ok(rc == CBL_EIO && e && strstr(e->msg, "f050.txt") && !exists(zf) &&
			   count_tmp(outdir) == 0,
		   "failure %d: first failing entry reported, nothing published", round);
		cbl_error_clear(&e);
	}
	// a big file in the list does not change that
	char *bigp = cbl_path_join(src_p, "big/bundle.js");
	artifacts_entry items[3] = {{.path = bigp, .name = (char *)"a/big.js"},
				    {.path = g1, .name = (char *)"b/gone.txt"},
				    {.path = bigp, .name = (char *)"c/big.js"}};
	artifacts_list bl = {.items = items, .n = 3};
	rc = write_with(&bl, zf, false, 2, 0, false, NULL, &e);
	ok(rc == CBL_EIO && e && strstr(e->msg, "f050.txt") && !exists(zf) && count_tmp(outdir) == 0,
	   "failure after a streamed entry: nothing published, no temp");
	cbl_error_clear(&e);
	// a destination that cannot be created
	char *under_file = cbl_path_join(src, "f001.txt/x.zip");
	rc = write_with(r.l, under_file, false, 2, 0, false, NULL, &e);
	ok(rc < 0 && e, "destination under a regular file fails");
	cbl_error_clear(&e);
	result_release(&r);

	free(under_file);
	free(bigp);
	free(zf);
	free(g1);
	free(g2);
	free(src);
	free(z);
	free(outdir);
}

static void test_write_dir(void)
{
	char *outdir = cbl_path_join(tmproot, "outdir");
	char *dest = cbl_path_join(outdir, "art");
	cbl_error *e = NULL;
	mkfile(dest, "stale.txt", "old");

	result r = collect(src_a, (run){.files = F("dir/**/*", "a.txt")});
	int rc = artifacts_write_dir(r.l, dest, false, &e);
	is_int(rc, 0, "write_dir succeeds");
	if (e)
		printf("# %s\n", e->msg);
	cbl_error_clear(&e);
	char *p = cbl_path_join(dest, "dir/sub/z.txt");
	size_t len = 0;
	char *d = read_all(p, &len);
	is_str(d, "Z", "nested file copied");
	free(d);
	struct stat st;
	ok(stat(p, &st) == 0 && st.st_mtime == 1700000000, "mtime kept");
	free(p);
	p = cbl_path_join(dest, "dir/x.txt");
	ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0750, "permissions kept");
	free(p);
	p = cbl_path_join(dest, "stale.txt");
	ok(!exists(p), "existing destination replaced as a whole");
	free(p);
	p = cbl_path_join(dest, ".dot/secret");
	ok(!exists(p), "names are artifact names, not source paths");
	free(p);
	p = cbl_path_join(dest, "dir/.dot/secret");
	ok(exists(p), "hidden file copied");
	free(p);
	ok(count_tmp(outdir) == 0, "no temp tree left");
	result_release(&r);

	r = collect(src_s, (run){.files = F("ln_in", "real.txt"), .symlinks = true});
	rc = artifacts_write_dir(r.l, dest, true, &e);
	char buf[64] = "";
	p = cbl_path_join(dest, "ln_in");
	ssize_t n = readlink(p, buf, sizeof(buf) - 1);
	if (n > 0)
		buf[n] = '\0';
	ok(rc == 0 && n > 0 && !strcmp(buf, "real.txt"), "write_dir keeps symlinks as symlinks");
	free(p);
	cbl_error_clear(&e);
	result_release(&r);

	r = collect(src_s, (run){.files = F("ln_in")});
	rc = artifacts_write_dir(r.l, dest, false, &e);
	p = cbl_path_join(dest, "ln_in");
	d = read_all(p, &len);
	ok(rc == 0 && lstat(p, &st) == 0 && S_ISREG(st.st_mode) && d && !strcmp(d, "REAL"),
	   "write_dir follows symlinks when not kept");
	free(d);
	free(p);
	cbl_error_clear(&e);
	result_release(&r);

	// conflicting names (a file and a directory of the same name)
	char *src = cbl_path_join(tmproot, "conflict");
	mkfile(src, "b1/x", "file");
	mkfile(src, "b2/x/y", "nested");
	r = collect(src, (run){.files = F("**/*"), .base = "b*"});
	is_str(r.names, "x,x/y", "two bases can produce a file and a directory of one name");
	char *dest2 = cbl_path_join(outdir, "conflict");
	rc = artifacts_write_dir(r.l, dest2, false, &e);
	ok(rc == CBL_EINVAL && !exists(dest2), "write_dir refuses the conflict and publishes nothing");
	cbl_error_clear(&e);
	ok(count_tmp(outdir) == 0, "no temp tree left after the conflict");
	result_release(&r);

	free(dest2);
	free(src);
	free(dest);
	free(outdir);
}


// The tree is the build's and may change between collection and packaging:
// nothing outside the source is ever read.
static bool file_has(const char *path, const char *needle)
{
	char *data = NULL;
	size_t len = 0;
	bool hit = false;
	if (cbl_read_file(path, 0, &data, &len, NULL) == 0)
		hit = memmem(data, len, needle, strlen(needle)) != NULL;
	free(data);
	return hit;
}

static void test_races(void)
{
	char *src = cbl_path_join(tmproot, "race"), *host = cbl_path_join(tmproot, "race-host");
	mkfile(src, "d/f.txt", "BUILD-OWN");
	mkfile(src, "r.xml", "<r/>");
	mkfile(host, "f.txt", "HOST-ONLY-CONTENT");
	mkfile(host, "r.xml", "HOST-ONLY-CONTENT");
	result r = collect(src, (run){.files = F("**/*")});
	is_int(r.rc, 0, "race tree collects");
	{
		// a deadline already past: packaging stops, with the timeout's code
		artifacts_zip_opts zo = ARTIFACTS_ZIP_OPTS_INIT;
		zo.deadline_mono_us = 1;
		char *dz = cbl_path_join(tmproot, "late.zip"), *dd = cbl_path_join(tmproot, "late-dir");
		cbl_error *le = NULL;
		is_int(artifacts_write_zip_opts(r.l, dz, false, &zo, NULL, NULL, &le), CBL_ETIMEDOUT,
		       "zip: past the deadline is CBL_ETIMEDOUT");
		cbl_error_clear(&le);
		is_int(artifacts_write_dir_deadline(r.l, dd, false, 1, &le), CBL_ETIMEDOUT,
		       "packaging NONE: past the deadline is CBL_ETIMEDOUT");
		cbl_error_clear(&le);
		struct stat dst;
		ok(stat(dz, &dst) < 0 && stat(dd, &dst) < 0, "nothing published after a timeout");
		free(dz);
		free(dd);
	}
	ok(r.l && r.l->n == 2 && r.l->items[0].rel && r.l->items[0].dirfd >= 0,
	   "entries carry a directory descriptor and a relative path");
	// d swapped for a symlink to the host directory after collection
	char *d = cbl_path_join(src, "d"), *dold = cbl_path_join(src, "d.old");
	ok(rename(d, dold) == 0 && symlink(host, d) == 0, "d swapped for a symlink to a host directory");
	char *zip = cbl_path_join(tmproot, "race.zip");
	cbl_error *e = NULL;
	int rc = artifacts_write_zip(r.l, zip, false, NULL, NULL, &e);
	ok(rc < 0, "packaging refuses the swapped directory");
	cbl_error_clear(&e);
	struct stat st;
	ok(stat(zip, &st) < 0 || !file_has(zip, "HOST-ONLY-CONTENT"), "no host content in any archive");
	char *outdir = cbl_path_join(tmproot, "race-out");
	rc = artifacts_write_dir(r.l, outdir, false, &e);
	ok(rc < 0, "packaging NONE refuses it too");
	cbl_error_clear(&e);
	// the FIFO: swapped in for a file after collection, refused at once
	char *rx = cbl_path_join(src, "r.xml");
	unlink(rx);
	ok(mkfifo(rx, 0644) == 0, "r.xml swapped for a FIFO");
	const artifacts_entry *en = NULL;
	for (size_t i = 0; r.l && i < r.l->n; i++)
		if (!strcmp(r.l->items[i].name, "r.xml"))
			en = &r.l->items[i];
	int fd = -1;
	pid_t kid = fork();
	if (kid == 0) {
		alarm(5);
		cbl_error *ce = NULL;
		_exit(en && artifacts_entry_open(en, &fd, &st, &ce) < 0 ? 0 : 1);
	}
	int ws = 0;
	waitpid(kid, &ws, 0);
	ok(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "a FIFO entry is refused without blocking");
	result_release(&r);

	// bounded collection: an absolute base outside the source and bounds is
	// refused; a base that is a symlink out of its bound is not followed
	unlink(d);
	ok(rename(dold, d) == 0, "d back");
	mklink(src, "out", host);
	spec_artifact a = {0};
	spec_str files[] = {{.s = (char *)"**/*"}};
	a.files.items = files;
	a.files.n = 1;
	artifacts_list *l = NULL;
	artifacts_roots where = ARTIFACTS_ROOTS_INIT;
	const char *const bounds[] = {NULL};
	where.bounds = bounds;
	char *hostbase = cbl_path_join(host, ".");
	ok(artifacts_collect_in(&l, src, &where, &a, NULL, host, NULL, NULL, &e) == CBL_EINVAL,
	   "an absolute base outside the source and bounds is refused");
	cbl_error_clear(&e);
	char *outbase = cbl_path_join(src, "out");
	rc = artifacts_collect_in(&l, src, &where, &a, NULL, outbase, NULL, NULL, &e);
	ok(rc < 0 || !l, "a base that is a symlink out of the source selects nothing");
	cbl_error_clear(&e);
	artifacts_list_free(l);
	l = NULL;
	char *inbase = cbl_path_join(src, "d");
	ok(artifacts_collect_in(&l, src, &where, &a, NULL, inbase, NULL, NULL, &e) == 0 && l && l->n == 1,
	   "an absolute base inside the source works");
	cbl_error_clear(&e);
	artifacts_list_free(l);
	l = NULL;
	where.deadline_mono_us = 1; /* long past */
	ok(artifacts_collect_in(&l, src, &where, &a, NULL, inbase, NULL, NULL, &e) == CBL_ETIMEDOUT && e &&
		   e->code == CBL_ETIMEDOUT,
	   "a walk past its deadline stops with CBL_ETIMEDOUT");
	cbl_error_clear(&e);
	artifacts_list_free(l);
	where.deadline_mono_us = 0;
	free(src); free(host); free(d); free(dold); free(zip); free(outdir); free(rx);
	free(hostbase); free(outbase); free(inbase);
}

int main(void)
{
	char tmpl[] = "/tmp/cbl-art-XXXXXX";
	if (!mkdtemp(tmpl)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	tmproot = realpath(tmpl, NULL);
	// libarchive converts UTF-8 entry names (bit 11) to the locale's charset;
	// the "C" locale cannot hold them
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		printf("# no C.UTF-8 locale: UTF-8 names will not read back\n");
	build_tree_a();
	build_tree_symlinks();

	test_globs();
	test_base_dir();
	test_exclude_discard();
	test_logs_and_missing();
	test_matcher();
	test_symlinks();
	test_descriptor_source();
	test_zip();
	build_tree_parallel();
	test_zip_parallel();
	test_zip_many_entries();
	test_zip_parallel_links_and_failures();
	test_write_dir();
	test_races();

	cbl_rm_rf(tmproot, NULL);
	free(tmproot);
	free(src_a);
	free(src_s);
	free(src_p);
	free(outside);
	return tap_done();
}
