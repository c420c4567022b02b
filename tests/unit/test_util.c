/* Unit tests for util/: buffers, errors, env vectors, durations, files, JSON helpers, the dlopen loader,
 * did-you-mean. */
#include "tests/unit/tap.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"
#include "util/dl.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/safeopen.h"
#include "util/strv.h"
#include "util/suggest.h"
#include "util/time.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_buf(void)
{
	cbl_buf b = CBL_BUF_INIT;
	is_str(cbl_buf_cstr(&b), "", "empty buffer reads as empty string");
	cbl_buf_puts(&b, "abc");
	cbl_buf_printf(&b, "-%d-", 42);
	is_str(b.ptr, "abc-42-", "puts + printf");
	cbl_buf_consume(&b, 4);
	is_str(b.ptr, "42-", "consume");
	cbl_buf_reset(&b);
	cbl_buf_shquote(&b, "it's");
	is_str(b.ptr, "'it'\\''s'", "shquote escapes single quotes");
	for (int i = 0; i < 10000; i++)
		cbl_buf_putc(&b, 'x');
	is_int(b.len, 10000 + 9, "grows");
	char *d = cbl_buf_detach(&b);
	ok(b.ptr == NULL && b.len == 0, "detach resets");
	free(d);
}

static void test_error(void)
{
	cbl_error *e = NULL;
	int rc = cbl_error_set(&e, CBL_EINVAL, "bad %s", "thing");
	is_int(rc, CBL_EINVAL, "set returns the code");
	is_str(e->msg, "bad thing", "message");
	cbl_error_set(&e, CBL_EIO, "second");
	is_str(e->msg, "bad thing", "first error is kept");
	cbl_error_wrap(&e, "phase '%s'", "BUILD");
	is_str(e->msg, "phase 'BUILD': bad thing", "wrap prefixes context");
	cbl_error_clear(&e);
	ok(e == NULL, "clear");
	cbl_error_set_at(&e, CBL_ESPEC, "buildspec.yml", 5, 17, "bad on-failure");
	ok(e->line == 5 && e->col == 17 && !strcmp(e->file, "buildspec.yml"), "position kept");
	cbl_error_free(e);
	is_int(cbl_error_set(NULL, CBL_EIO, "x"), CBL_EIO, "NULL err pointer is allowed");
}

static void test_env(void)
{
	cbl_strv env = CBL_STRV_INIT;
	cbl_env_set(&env, "A", "1");
	cbl_env_set(&env, "AB", "2");
	cbl_env_set(&env, "A", "3");
	is_int(env.n, 2, "replace keeps one entry");
	is_str(cbl_env_get(&env, "A"), "3", "A replaced");
	is_str(cbl_env_get(&env, "AB"), "2", "prefix names are distinct");
	ok(cbl_env_get(&env, "B") == NULL, "missing is NULL");
	cbl_env_unset(&env, "A");
	ok(cbl_env_get(&env, "A") == NULL && env.n == 1 && env.v[1] == NULL, "unset keeps NULL terminator");
	cbl_strv_release(&env);
}

static void test_duration(void)
{
	int64_t ms = 0;
	cbl_error *e = NULL;
	ok(cbl_parse_duration_ms("5", &ms, &e) == 0 && ms == 300000, "bare number is minutes");
	ok(cbl_parse_duration_ms("90s", &ms, &e) == 0 && ms == 90000, "seconds");
	ok(cbl_parse_duration_ms("2m", &ms, &e) == 0 && ms == 120000, "minutes");
	ok(cbl_parse_duration_ms("1h", &ms, &e) == 0 && ms == 3600000, "hours");
	ok(cbl_parse_duration_ms("0.5s", &ms, &e) == 0 && ms == 500, "fractions");
	ok(cbl_parse_duration_ms("abc", &ms, &e) == CBL_EINVAL && e, "garbage rejected");
	cbl_error_clear(&e);
	ok(cbl_parse_duration_ms("5x", &ms, &e) == CBL_EINVAL, "unknown unit rejected");
	cbl_error_clear(&e);
	ok(cbl_parse_duration_ms("-1", &ms, &e) == CBL_EINVAL, "negative rejected");
	cbl_error_clear(&e);
}

static void test_time(void)
{
	char ts[32];
	cbl_format_log_time(ts, 1700000000123456LL);
	is_str(ts, "2023/11/14 22:13:20.123456", "Go log format with microseconds, UTC");
	cbl_format_iso_time(ts, 1700000000123456LL);
	is_str(ts, "2023-11-14T22:13:20.123Z", "ISO time");
	char u1[37], u2[37];
	cbl_uuid4(u1);
	cbl_uuid4(u2);
	ok(strlen(u1) == 36 && u1[14] == '4' && strchr("89ab", u1[19]), "uuid v4 shape");
	ok(strcmp(u1, u2) != 0, "uuids differ");
}

static void test_fs(void)
{
	char tmpl[] = "/tmp/cbl-test-XXXXXX";
	char *dir = mkdtemp(tmpl);
	ok(dir != NULL, "mkdtemp");
	cbl_error *e = NULL;
	char *deep = cbl_path_join(dir, "a/b/c");
	ok(cbl_mkdir_p(deep, 0755, &e) == 0, "mkdir -p");
	char *f = cbl_path_join(deep, "f.txt");
	ok(cbl_write_file_atomic(f, "hello", 5, 0644, true, &e) == 0, "atomic write");
	char *data = NULL;
	size_t len = 0;
	ok(cbl_read_file(f, 0, &data, &len, &e) == 0 && len == 5 && !strcmp(data, "hello"), "read back");
	free(data);
	ok(cbl_read_file(f, 3, &data, &len, &e) == CBL_EINVAL, "size limit enforced");
	cbl_error_clear(&e);
	char *missing = cbl_path_join(dir, "nope");
	ok(cbl_read_file(missing, 0, &data, &len, &e) == CBL_ENOENT, "missing file is ENOENT");
	cbl_error_clear(&e);
	char *link = cbl_path_join(dir, "link");
	ok(symlink("/etc", link) == 0, "symlink");
	ok(cbl_rm_rf(dir, &e) == 0, "rm -rf");
	struct stat st;
	ok(stat(dir, &st) < 0, "tree gone");
	ok(stat("/etc/hostname", &st) == 0 || stat("/etc", &st) == 0, "symlink target untouched");
	char *j = cbl_path_join("/a/", "/b");
	is_str(j, "/a/b", "path_join normalises slashes");
	free(j);
	free(deep);
	free(f);
	free(missing);
	free(link);
}

static void test_copy_tree(void)
{
	char tmpl[] = "/tmp/cbl-copy-XXXXXX";
	char *dir = mkdtemp(tmpl);
	cbl_error *e = NULL;
	char *src = cbl_path_join(dir, "src"), *dst = cbl_path_join(dir, "dst");
	char *sub = cbl_path_join(src, "a/b");
	cbl_mkdir_p(sub, 0755, &e);
	char *f = cbl_path_join(sub, "f.sh");
	cbl_write_file_atomic(f, "#!/bin/sh\n", 10, 0755, false, &e);
	chmod(f, 0751);
	struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
	utimensat(AT_FDCWD, f, ts, 0);
	char *empty = cbl_path_join(src, "empty");
	cbl_write_file_atomic(empty, "", 0, 0600, false, &e);
	char *l1 = cbl_path_join(src, "out-link"), *l2 = cbl_path_join(src, "in-link");
	ok(symlink("/etc/passwd", l1) == 0 && symlink("a/b/f.sh", l2) == 0, "fixture symlinks");
	ok(cbl_copy_tree(src, dst, &e) == 0, "copy tree");
	char *df = cbl_path_join(dst, "a/b/f.sh");
	struct stat st;
	ok(stat(df, &st) == 0 && (st.st_mode & 07777) == 0751, "mode kept");
	ok(st.st_mtime == 1000000000, "mtime kept");
	char *data = NULL;
	size_t len = 0;
	ok(cbl_read_file(df, 0, &data, &len, &e) == 0 && !strcmp(data, "#!/bin/sh\n"), "content");
	free(data);
	char *dl1 = cbl_path_join(dst, "out-link"), buf[256];
	ssize_t n = readlink(dl1, buf, sizeof(buf) - 1);
	ok(n > 0 && (buf[n] = 0, !strcmp(buf, "/etc/passwd")), "symlink copied as a link, not followed");
	char *de = cbl_path_join(dst, "empty");
	ok(stat(de, &st) == 0 && st.st_size == 0, "empty file");
	ok(cbl_copy_tree(src, dst, &e) == CBL_EIO, "existing destination refused");
	cbl_error_clear(&e);
	cbl_rm_rf(dir, &e);
	free(src); free(dst); free(sub); free(f); free(empty); free(l1); free(l2); free(df); free(dl1); free(de);
}

/* cbl_realpath_fd beneath a descriptor's directory: its magic link is kept,
 * the rest resolved below it */
static void test_realpath_fd(void)
{
	char tmpl[] = "/tmp/cbl-rp-XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *sub = cbl_path_join(dir, "a/b");
	cbl_mkdir_p(sub, 0755, NULL);
	const char *links[][2] = {{"rel", "a/b"}, {"abs", "/etc"}, {"up", "../.."}, {"loop", "loop"},
				  {"a/b/back", "../../rel"}};
	for (size_t i = 0; i < 5; i++) {
		char *l = cbl_path_join(dir, links[i][0]);
		ok(symlink(links[i][1], l) == 0, "fixture link %s", links[i][0]);
		free(l);
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *fp = cbl_fd_path(fd), *out = NULL, *want = NULL, *p = NULL;
	is_int((int)cbl_fd_path_prefix(fp), (int)strlen(fp), "prefix: the whole descriptor path");
	p = cbl_xasprintf("%s/x", fp);
	is_int((int)cbl_fd_path_prefix(p), (int)strlen(fp), "prefix: before a component");
	free(p);
	ok(cbl_fd_path_prefix("/proc/self/fd/") == 0 && cbl_fd_path_prefix("/proc/self/fd/1x") == 0 &&
		   cbl_fd_path_prefix("/proc/self/fdx/1") == 0 && cbl_fd_path_prefix("/tmp/x") == 0,
	   "prefix: none on other paths");
	const char *cases[][3] = {
		{"", "", "the directory itself"},
		{"/rel", "/a/b", "a relative link, beneath"},
		{"/a/../rel/./back", "/a/b", "dot-dot inside, a link through a link"},
		{"/abs", NULL, "an absolute link: from this process's root, as realpath(3)"},
	};
	for (size_t i = 0; i < 4; i++) {
		p = cbl_xasprintf("%s%s", fp, cases[i][0]);
		want = cases[i][1] ? cbl_xasprintf("%s%s", fp, cases[i][1]) : realpath("/etc", NULL);
		out = NULL;
		is_int(cbl_realpath_fd(p, &out, NULL), 0, "%s", cases[i][2]);
		is_str(out, want, "%s: the path", cases[i][2]);
		free(out);
		free(want);
		free(p);
	}
	p = cbl_xasprintf("%s/up", fp);
	out = NULL;
	ok(cbl_realpath_fd(p, &out, NULL) < 0 && errno == EXDEV && !out, "a link climbing out: EXDEV");
	free(p);
	p = cbl_xasprintf("%s/..", fp);
	ok(cbl_realpath_fd(p, &out, NULL) < 0 && errno == EXDEV, "dot-dot above: EXDEV");
	free(p);
	p = cbl_xasprintf("%s/loop", fp);
	ok(cbl_realpath_fd(p, &out, NULL) < 0 && errno == ELOOP, "a loop: ELOOP");
	free(p);
	p = cbl_xasprintf("%s/missing", fp);
	is_int(cbl_realpath_fd(p, &out, NULL), CBL_ENOENT, "missing: CBL_ENOENT");
	free(p);
	close(fd);
	free(fp);
	free(sub);
	cbl_rm_rf(dir, NULL);
}

static void test_json(void)
{
	json_t *o = json_pack("{s:s, s:i, s:n}", "name", "x", "num", 3, "nul");
	is_str(cbl_json_str(o, "name"), "x", "cbl_json_str reads a string member");
	ok(cbl_json_str(o, "num") == NULL, "cbl_json_str: NULL for a number");
	ok(cbl_json_str(o, "nope") == NULL, "cbl_json_str: NULL when absent");
	ok(cbl_json_str(NULL, "name") == NULL, "cbl_json_str: NULL object");
	is_str(cbl_json_str_or_empty(o, "nul"), "", "cbl_json_str_or_empty: \"\" for null");
	is_str(cbl_json_str_or_empty(o, "name"), "x", "cbl_json_str_or_empty reads a string");

	json_t *j = cbl_json_string_or_null(NULL);
	ok(json_is_null(j), "cbl_json_string_or_null(NULL) is null");
	json_decref(j);
	j = cbl_json_string_or_null("a");
	is_str(json_string_value(j), "a", "cbl_json_string_or_null builds a string");
	json_decref(j);

	j = cbl_json_string_lossy("ok \xc3\xa9");
	is_str(json_string_value(j), "ok \xc3\xa9", "cbl_json_string_lossy keeps valid UTF-8");
	json_decref(j);
	j = cbl_json_string_lossy("bad \xff\xfe.");
	is_str(json_string_value(j), "bad ??.", "cbl_json_string_lossy replaces invalid bytes");
	json_decref(j);

	cbl_json_set_str(o, "set", "v");
	cbl_json_set_str(o, "unset", NULL);
	is_str(cbl_json_str(o, "set"), "v", "cbl_json_set_str sets a string");
	ok(json_object_get(o, "unset") == NULL, "cbl_json_set_str(NULL) sets nothing");
	json_decref(o);

	/* cbl_json_load_file: no jansson position (-1:-1) for a file that cannot be opened */
	char tmpl[] = "/tmp/cbl-json-XXXXXX";
	char *dir = mkdtemp(tmpl);
	ok(dir != NULL, "mkdtemp");
	char *missing = cbl_path_join(dir, "missing.json"), *bad = cbl_path_join(dir, "bad.json");
	cbl_error *e = NULL;
	j = (json_t *)1;
	is_int(cbl_json_load_file(&j, missing, 0, NULL, &e), CBL_ENOENT, "cbl_json_load_file: a missing file is CBL_ENOENT");
	ok(j == NULL, "... and *out is NULL");
	ok(e && strstr(e->msg, "cannot open '") && strstr(e->msg, "No such file or directory") && !strstr(e->msg, ":-1"),
	   "... named with the system's reason and no position: %s", e ? e->msg : "");
	cbl_error_free(e);
	e = NULL;
	is_int(cbl_json_load_file(&j, dir, 0, NULL, &e), CBL_EIO, "a directory is CBL_EIO");
	ok(e && strstr(e->msg, "Is a directory"), "... that says so: %s", e ? e->msg : "");
	cbl_error_free(e);
	e = NULL;
	FILE *f = fopen(bad, "w");
	fputs("{\n  \"a\": ]\n", f);
	fclose(f);
	is_int(cbl_json_load_file(&j, bad, 0, "invalid thing", &e), CBL_EINVAL, "a syntax error is CBL_EINVAL");
	char *want = cbl_xasprintf("%s:2:8: invalid thing: ", bad);
	ok(e && !strncmp(e->msg, want, strlen(want)), "... at its line:column: %s", e ? e->msg : "");
	free(want);
	cbl_error_free(e);
	e = NULL;
	f = fopen(bad, "w");
	fputs("{\"a\": 1}", f);
	fclose(f);
	is_int(cbl_json_load_file(&j, bad, 0, NULL, &e), 0, "a good file loads");
	ok(json_integer_value(json_object_get(j, "a")) == 1, "... with its content");
	json_decref(j);
	unlink(bad);
	rmdir(dir);
	free(missing);
	free(bad);
}

static void test_dl(void)
{
	size_t (*my_strlen)(const char *) = NULL;
	int (*nope)(void) = NULL;
	static const char *const libc[] = {"libc.so.6"};
	const cbl_dl_sym good_syms[] = {{"strlen", (void **)&my_strlen}};
	cbl_dl_lib good = CBL_DL_LIB_INIT(libc, good_syms);
	cbl_error *e = NULL;
	is_int(cbl_dl_load(&good, &e), 0, "cbl_dl_load: libc's strlen");
	ok(my_strlen && my_strlen("four") == 4, "the pointer is the function");
	is_int(cbl_dl_load(&good, &e), 0, "a second load is a no-op");
	cbl_error_clear(&e);

	const cbl_dl_sym bad_syms[] = {{"strlen", (void **)&my_strlen},
				       {"cbl_no_such_function", (void **)&nope}};
	cbl_dl_lib missing = CBL_DL_LIB_INIT(libc, bad_syms);
	my_strlen = NULL;
	is_int(cbl_dl_load(&missing, &e), CBL_EIO, "a missing function is CBL_EIO");
	ok(e && strstr(e->msg, "has no cbl_no_such_function"), "naming it (%s)", e ? e->msg : "");
	cbl_error_clear(&e);
	is_int(cbl_dl_load(&missing, &e), CBL_EIO, "the same answer the second time");
	cbl_error_clear(&e);

	static const char *const nolib[] = {"libcbl-no-such-library.so.0"};
	cbl_dl_lib absent = CBL_DL_LIB_INIT(nolib, good_syms);
	is_int(cbl_dl_load(&absent, &e), CBL_EIO, "a missing library is CBL_EIO");
	ok(e && strstr(e->msg, "cannot load libcbl-no-such-library.so.0"), "naming it");
	cbl_error_clear(&e);
}

static void test_suggest(void)
{
	ok(cbl_edit_distance("", "") == 0 && cbl_edit_distance("run", "") == 3 && cbl_edit_distance("", "ab") == 2,
	   "distance to nothing");
	ok(cbl_edit_distance("runn", "run") == 1, "one deletion");
	ok(cbl_edit_distance("valdiate", "validate") == 1, "a transposition is one edit");
	ok(cbl_edit_distance("kitten", "sitting") == 3, "kitten -> sitting");
	ok(cbl_edit_distance("version", "--version") == 2, "two insertions");
	static const char *const cmds[] = {"run", "validate", "images", "serve", "start-build", "stop-build",
					   "--version", "--help"};
	size_t n = ARRAY_SIZE(cmds);
	is_str(cbl_suggest("runn", cmds, n), "run", "runn -> run");
	is_str(cbl_suggest("valdiate", cmds, n), "validate", "valdiate -> validate");
	is_str(cbl_suggest("version", cmds, n), "--version", "version -> --version");
	is_str(cbl_suggest("val", cmds, n), "validate", "a prefix of one name");
	is_str(cbl_suggest("stat-build", cmds, n), "start-build", "the nearest, then the first of equals");
	ok(cbl_suggest("st", cmds, n) == NULL, "a prefix of two names: none");
	ok(cbl_suggest("xyz", cmds, n) == NULL, "nothing near");
	ok(cbl_suggest("run", cmds, n) == NULL, "the word itself is no suggestion");
	ok(cbl_suggest("", cmds, n) == NULL, "nothing for nothing");
}

/* ---- util/safeopen: every attack, through openat2 and through the fallback walk */
typedef int (*open_fn)(int, const char *, int, mode_t, unsigned, cbl_error **);

static int try_open(open_fn fn, int dfd, const char *rel, int flags, unsigned resolve)
{
	cbl_error *e = NULL;
	int fd = fn(dfd, rel, flags, 0, resolve, &e);
	if (fd >= 0)
		close(fd);
	cbl_error_free(e);
	return fd;
}

static void put(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char *p = cbl_path_join(dir, rel);
	cbl_error *e = NULL;
	cbl_write_file_atomic(p, text, strlen(text), mode, false, &e);
	cbl_error_free(e);
	free(p);
}

static void test_safeopen_with(open_fn fn, const char *how)
{
	char tmpl[] = "/tmp/cbl-safe-XXXXXX";
	char *top = mkdtemp(tmpl);
	cbl_error *e = NULL;
	char *root = cbl_path_join(top, "root"), *outside = cbl_path_join(top, "outside");
	char *sub = cbl_path_join(root, "sub");
	cbl_mkdir_p(sub, 0755, &e);
	cbl_mkdir_p(outside, 0755, &e);
	put(root, "a.txt", "A", 0644);
	put(sub, "b.txt", "B", 0644);
	put(top, "secret.txt", "S", 0600);
	put(outside, "f", "O", 0600);
	char *secret = cbl_path_join(top, "secret.txt");
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(dfd >= 0, "%s: root opened", how);
	char *p;
#define LINK(target, name) do { p = cbl_path_join(root, name); ok(symlink(target, p) == 0, "%s: link %s", how, name); free(p); } while (0)
	LINK("sub/b.txt", "rel-in");
	LINK("../secret.txt", "rel-out");
	LINK(secret, "abs-out");
	LINK("/proc/self/root", "magic");
	LINK("sub", "subl");
#undef LINK

	ok(try_open(fn, dfd, "a.txt", O_RDONLY, 0) >= 0, "%s: a plain file opens", how);
	ok(try_open(fn, dfd, "sub/b.txt", O_RDONLY, CBL_RESOLVE_NO_SYMLINKS) >= 0, "%s: a file in a directory", how);
	ok(try_open(fn, dfd, "sub/../a.txt", O_RDONLY, 0) >= 0, "%s: '..' that stays beneath", how);
	ok(try_open(fn, dfd, "", O_RDONLY | O_DIRECTORY, 0) >= 0, "%s: '' is the directory itself", how);
	ok(try_open(fn, dfd, "rel-in", O_RDONLY, 0) >= 0, "%s: a relative symlink inside is followed", how);
	ok(try_open(fn, dfd, "sub/b.txt", O_PATH, CBL_RESOLVE_NO_SYMLINKS) >= 0, "%s: O_PATH", how);
	ok(try_open(fn, dfd, "rel-in", O_PATH, 0) >= 0, "%s: O_PATH through a symlink inside", how);
	ok(try_open(fn, dfd, "rel-in", O_PATH, CBL_RESOLVE_NO_SYMLINKS) < 0, "%s: O_PATH, NO_SYMLINKS", how);
	ok(try_open(fn, dfd, "subl/b.txt", O_RDONLY, 0) >= 0, "%s: a directory symlink inside is followed", how);
	errno = 0;
	ok(try_open(fn, dfd, "rel-in", O_RDONLY, CBL_RESOLVE_NO_SYMLINKS) < 0 && errno == ELOOP,
	   "%s: NO_SYMLINKS refuses the last component's symlink (ELOOP)", how);
	ok(try_open(fn, dfd, "subl/b.txt", O_RDONLY, CBL_RESOLVE_NO_SYMLINKS) < 0,
	   "%s: NO_SYMLINKS refuses a symlinked directory", how);
	ok(try_open(fn, dfd, "rel-in", O_RDONLY | O_NOFOLLOW, 0) < 0, "%s: O_NOFOLLOW kept", how);
	ok(try_open(fn, dfd, "../secret.txt", O_RDONLY, 0) < 0, "%s: '..' out refused", how);
	ok(try_open(fn, dfd, "sub/../../secret.txt", O_RDONLY, 0) < 0, "%s: 'sub/../..' out refused", how);
	ok(try_open(fn, dfd, secret, O_RDONLY, 0) < 0, "%s: an absolute path refused", how);
	ok(try_open(fn, dfd, "rel-out", O_RDONLY, 0) < 0, "%s: a symlink escaping by '..' refused", how);
	errno = 0;
	ok(try_open(fn, dfd, "abs-out", O_RDONLY, 0) < 0 && errno == EXDEV, "%s: an absolute symlink refused (EXDEV)", how);
	ok(try_open(fn, dfd, "magic/etc/passwd", O_RDONLY, 0) < 0, "%s: a symlink to /proc/self/root refused", how);
	/* a magic link met beneath a directory descriptor of /proc itself */
	int pfd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(try_open(fn, pfd, "root/etc/passwd", O_RDONLY, 0) < 0, "%s: the magic link /proc/self/root refused", how);
	char fdname[32];
	int sfd = open(secret, O_RDONLY | O_CLOEXEC);
	snprintf(fdname, sizeof(fdname), "fd/%d", sfd);
	ok(try_open(fn, pfd, fdname, O_RDONLY, 0) < 0, "%s: the magic link /proc/self/fd/N refused", how);
	close(sfd);
	close(pfd);

	/* a FIFO: refused at once, never waited on */
	p = cbl_path_join(root, "fifo");
	ok(mkfifo(p, 0644) == 0, "%s: fifo made", how);
	free(p);
	pid_t kid = fork();
	if (kid == 0) {
		alarm(5); /* a hang is a failure, not a stuck test run */
		cbl_error *ce = NULL;
		int fd = cbl_open_beneath_regular(dfd, "fifo", 0, NULL, &ce);
		_exit(fd == CBL_EINVAL ? 0 : 1);
	}
	int ws = 0;
	waitpid(kid, &ws, 0);
	ok(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "%s: a FIFO is refused as a regular file without blocking", how);
	char *data = NULL;
	ok(cbl_read_beneath(dfd, "sub", 0, 0, &data, NULL, &e) == CBL_EINVAL, "%s: a directory is not a regular file", how);
	cbl_error_clear(&e);

	/* a directory swapped for a symlink between two opens */
	char *d = cbl_path_join(root, "d"), *dold = cbl_path_join(root, "d.old");
	cbl_mkdir_p(d, 0755, &e);
	put(d, "f", "D", 0644);
	ok(try_open(fn, dfd, "d/f", O_RDONLY, CBL_RESOLVE_NO_SYMLINKS) >= 0, "%s: d/f before the swap", how);
	ok(rename(d, dold) == 0 && symlink("../outside", d) == 0, "%s: d swapped for a symlink out", how);
	ok(try_open(fn, dfd, "d/f", O_RDONLY, 0) < 0, "%s: d/f after the swap (symlink out) refused", how);
	unlink(d);
	ok(symlink(outside, d) == 0, "%s: d swapped for an absolute symlink", how);
	ok(try_open(fn, dfd, "d/f", O_RDONLY, 0) < 0, "%s: d/f after the swap (absolute) refused", how);
	ok(try_open(fn, dfd, "d/f", O_RDONLY, CBL_RESOLVE_NO_SYMLINKS) < 0, "%s: d/f with NO_SYMLINKS refused", how);

	/* creating: never through a symlink out */
	ok(try_open(fn, dfd, "d/new", O_WRONLY | O_CREAT, 0) < 0, "%s: O_CREAT through a symlink out refused", how);
	char *created = cbl_path_join(outside, "new");
	struct stat st;
	ok(stat(created, &st) < 0, "%s: nothing created outside", how);
	ok(try_open(fn, dfd, "sub/new", O_WRONLY | O_CREAT, 0) >= 0, "%s: O_CREAT inside works", how);
	free(created);

	/* the chmod attack: script.sh swapped for a symlink to a 0600 host file */
	char *script = cbl_path_join(root, "script.sh");
	ok(symlink(secret, script) == 0, "%s: script.sh is a symlink to a 0600 file", how);
	ok(cbl_write_at_atomic(dfd, "script.sh", "echo hi\n", 8, 0755, &e) == 0, "%s: script published", how);
	ok(stat(secret, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_size == 1,
	   "%s: the symlink's target keeps its mode and content", how);
	ok(lstat(script, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0755,
	   "%s: script.sh replaced by a regular 0755 file", how);
	ok(cbl_read_beneath(dfd, "script.sh", CBL_RESOLVE_NO_SYMLINKS, 0, &data, NULL, &e) == 0 &&
		   !strcmp(data, "echo hi\n"),
	   "%s: read back through the directory descriptor", how);
	free(data);

	close(dfd);
	cbl_rm_rf(top, &e);
	cbl_error_free(e);
	free(root); free(outside); free(sub); free(secret); free(d); free(dold); free(script);
}

static void test_safeopen(void)
{
	test_safeopen_with(cbl_open_beneath, "openat2");
	test_safeopen_with(cbl_open_beneath_walk, "fallback");
}

int main(void)
{
	test_suggest();
	test_buf();
	test_error();
	test_env();
	test_duration();
	test_time();
	test_fs();
	test_copy_tree();
	test_realpath_fd();
	test_json();
	test_dl();
	test_safeopen();
	return tap_done();
}
