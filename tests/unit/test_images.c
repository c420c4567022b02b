/* Unit tests for images/: references, manifests and index selection, the
 * blob store (digest mismatch, resume), layer unpacking (whiteouts, escape
 * refusal), import, the catalog and runtime-versions checks. */
#include "tests/unit/tap.h"
#include "images/images.h"
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"
#include "util/fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char tmpdir[256];

static char *tpath(const char *rel) { return cbl_xasprintf("%s/%s", tmpdir, rel); }

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- references ---------------------------------------------------------- */

static void check_ref(const char *in, const char *want)
{
	images_ref r;
	cbl_error *e = NULL;
	int rc = images_ref_parse(in, &r, &e);
	char *s = rc ? NULL : images_ref_string(&r);
	is_str(s, want, "ref '%s'", in);
	if (rc)
		printf("#   error: %s\n", e ? e->msg : "?");
	free(s);
	if (!rc)
		images_ref_release(&r);
	cbl_error_free(e);
}

static void check_bad_ref(const char *in, const char *needle)
{
	images_ref r;
	cbl_error *e = NULL;
	int rc = images_ref_parse(in, &r, &e);
	ok(rc == CBL_EINVAL && e && strstr(e->msg, needle), "ref '%s' refused (%s)", in, e ? e->msg : "accepted");
	if (!rc)
		images_ref_release(&r);
	cbl_error_free(e);
}

static void test_refs(void)
{
	check_ref("busybox", "docker.io/library/busybox:latest");
	check_ref("busybox:1.36", "docker.io/library/busybox:1.36");
	check_ref("aws/codebuild/standard:7.0", "docker.io/aws/codebuild/standard:7.0");
	check_ref("index.docker.io/ubuntu", "docker.io/library/ubuntu:latest");
	check_ref("localhost/foo", "localhost/foo:latest");
	check_ref("127.0.0.1:5000/a/b-c__d.e:v1.0_x",
		  "127.0.0.1:5000/a/b-c__d.e:v1.0_x");
	check_ref("[::1]:5000/x:y", "[::1]:5000/x:y");
	check_ref("ghcr.io/o/r@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		  "ghcr.io/o/r@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	check_ref("r.example:443/o/r:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		  "r.example:443/o/r:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	check_bad_ref("docker.io/Library/x", "lowercase");
	check_bad_ref("busybox:-bad", "bad tag");
	check_bad_ref("x@sha256:abc", "digest");
	check_bad_ref("x@md5:0123456789abcdef0123456789abcdef", "digest");
	check_bad_ref("a//b", "bad repository");
	check_bad_ref("a/b/", "");
	check_bad_ref("", "empty");
	check_bad_ref("host.example:port/x", "bad registry host");

	is_int(images_classify("host"), IMAGES_KIND_HOST, "host");
	is_int(images_classify(NULL), IMAGES_KIND_HOST, "NULL = host");
	is_int(images_classify("/srv/root"), IMAGES_KIND_DIR, "absolute dir");
	is_int(images_classify("./root"), IMAGES_KIND_DIR, "relative dir");
	is_int(images_classify("../root"), IMAGES_KIND_DIR, "parent dir");
	is_int(images_classify("busybox"), IMAGES_KIND_REGISTRY, "reference");

	const char *const ins[] = {"registry.lan:5000", "bare.lan", NULL};
	ok(images_host_insecure("127.0.0.1:5000", NULL), "127.0.0.1 is insecure-ok");
	ok(images_host_insecure("127.9.8.7", NULL), "all of 127/8");
	ok(images_host_insecure("[::1]:5000", NULL), "::1");
	ok(images_host_insecure("localhost:5000", NULL), "localhost");
	ok(!images_host_insecure("128.0.0.1:5000", NULL), "128.0.0.1 is not loopback");
	ok(!images_host_insecure("registry.example", NULL), "a remote host needs TLS");
	ok(!images_host_insecure("[::2]:5000", NULL), "::2 is not loopback");
	ok(images_host_insecure("registry.lan:5000", ins), "--insecure-registry host:port");
	ok(images_host_insecure("bare.lan:443", ins), "--insecure-registry host (any port)");
	ok(!images_host_insecure("registry.lan:5001", ins), "another port of a host:port entry");

	ok(images_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), "digest ok");
	ok(!images_digest_valid("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"), "upper hex");
	ok(!images_digest_valid("sha512:00"), "other algorithm");
}

/* ---- challenges, manifests, platforms ------------------------------------ */

static void test_challenge(void)
{
	images_challenge c;
	ok(images_challenge_parse("Bearer realm=\"https://auth.example/token\",service=\"reg.example\","
				  "scope=\"repository:a/b:pull,push\"",
				  &c, NULL) == 0,
	   "bearer challenge parses");
	is_str(c.scheme, "bearer", "scheme lower-cased");
	is_str(c.realm, "https://auth.example/token", "realm");
	is_str(c.service, "reg.example", "service");
	is_str(c.scope, "repository:a/b:pull,push", "scope keeps its comma");
	images_challenge_release(&c);
	ok(images_challenge_parse("Basic realm=\"Registry Realm\"", &c, NULL) == 0, "basic parses");
	is_str(c.scheme, "basic", "basic scheme");
	is_str(c.realm, "Registry Realm", "quoted realm with a space");
	images_challenge_release(&c);
	ok(images_challenge_parse("Bearer realm=http://x/t, service=s", &c, NULL) == 0 && !strcmp(c.realm, "http://x/t") &&
		   !strcmp(c.service, "s") && !c.scope,
	   "unquoted values");
	images_challenge_release(&c);
}

#define D(c) "sha256:" c c c c c c c c /* 8 x 8 hex = 64 */

static void test_manifests(void)
{
	images_manifest m;
	cbl_error *e = NULL;
	const char *man = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
			  "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":7,"
			  "\"digest\":\"" D("aaaaaaaa") "\"},\"layers\":[{\"mediaType\":"
			  "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":10,\"digest\":\"" D("bbbbbbbb") "\"},"
			  "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"size\":11,\"digest\":\"" D("cccccccc") "\"}]}";
	ok(images_manifest_parse(man, strlen(man), NULL, &m, &e) == 0, "schema 2 manifest");
	ok(m.kind == IMAGES_MANIFEST_IMAGE && m.nlayers == 2 && m.layers[1].size == 11 && m.config.size == 7,
	   "config + 2 layers");
	images_manifest_release(&m);

	const char *s1 = "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}";
	ok(images_manifest_parse(s1, strlen(s1), NULL, &m, &e) == CBL_EINVAL && strstr(e->msg, "schema 1"),
	   "schema 1 refused: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	ok(images_manifest_parse(s1, strlen(s1), "application/vnd.docker.distribution.manifest.v1+prettyjws", &m, &e) ==
			   CBL_EINVAL &&
		   strstr(e->msg, "schema 1"),
	   "schema 1 content type refused");
	cbl_error_clear(&e);

	const char *enc = "{\"schemaVersion\":2,\"config\":{\"size\":1,\"digest\":\"" D("aaaaaaaa") "\"},\"layers\":["
			  "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+encrypted\",\"size\":1,\"digest\":\"" D("bbbbbbbb") "\"}]}";
	ok(images_manifest_parse(enc, strlen(enc), NULL, &m, &e) == CBL_EINVAL && strstr(e->msg, "cannot be unpacked"),
	   "unknown layer media type refused");
	cbl_error_clear(&e);
	const char *bad = "{\"schemaVersion\":2,\"config\":{\"size\":1,\"digest\":\"sha256:12\"},\"layers\":[]}";
	ok(images_manifest_parse(bad, strlen(bad), NULL, &m, &e) == CBL_EINVAL, "bad digest refused");
	cbl_error_clear(&e);

	/* an OCI index without mediaType, with an attestation entry */
	const char *idx = "{\"schemaVersion\":2,\"manifests\":["
			  "{\"digest\":\"" D("11111111") "\",\"size\":1,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}},"
			  "{\"digest\":\"" D("22222222") "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
			  "{\"digest\":\"" D("33333333") "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
			  "{\"digest\":\"" D("44444444") "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
			  "{\"digest\":\"" D("55555555") "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
			  "{\"digest\":\"" D("66666666") "\",\"size\":1,\"platform\":{\"os\":\"windows\",\"architecture\":\"amd64\"}}]}";
	ok(images_manifest_parse(idx, strlen(idx), NULL, &m, &e) == 0 && m.kind == IMAGES_MANIFEST_INDEX &&
		   m.nmanifests == 6,
	   "OCI index without mediaType");
	images_platform p;
	size_t i = 99;
	images_platform_parse("linux/amd64", &p, NULL);
	ok(images_index_select(&m, &p, &i, NULL) == 0 && i == 4, "linux/amd64 picked");
	images_platform_release(&p);
	images_platform_parse("linux/arm64/v8", &p, NULL);
	ok(images_index_select(&m, &p, &i, NULL) == 0 && i == 3, "arm64/v8 prefers the exact variant");
	images_platform_release(&p);
	images_platform_parse("linux/aarch64", &p, NULL);
	ok(images_index_select(&m, &p, &i, NULL) == 0 && (i == 2 || i == 3), "aarch64 = arm64");
	images_platform_release(&p);
	images_platform_parse("linux/arm/v6", &p, NULL);
	ok(images_index_select(&m, &p, &i, &e) == CBL_ENOENT && strstr(e->msg, "linux/arm/v7") &&
		   !strstr(e->msg, "unknown"),
	   "no arm/v6: the error lists what there is: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	images_platform_release(&p);
	images_platform_host(&p);
	ok(p.os && !strcmp(p.os, "linux") && p.arch, "host platform linux/%s", p.arch);
	images_platform_release(&p);
	ok(images_platform_parse("linux", &p, &e) == CBL_EINVAL, "platform without arch refused");
	cbl_error_clear(&e);
	images_manifest_release(&m);

	images_config c;
	const char *cfg = "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\",\"config\":{\"Env\":"
			  "[\"PATH=/usr/bin\",\"junk\",\"A=b=c\"],\"WorkingDir\":\"/w\",\"User\":\"app:app\",\"Entrypoint\":[\"x\"]},"
			  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D("aaaaaaaa") "\"]}}";
	ok(images_config_parse(cfg, strlen(cfg), &c, NULL) == 0, "config parses");
	ok(c.env.n == 2 && !strcmp(c.env.v[1], "A=b=c"), "Env kept (entries without '=' dropped)");
	is_str(c.working_dir, "/w", "WorkingDir");
	is_str(c.user, "app:app", "User");
	is_str(c.arch, "arm64", "architecture");
	is_int(c.diff_ids.n, 1, "diff_ids");
	images_config_release(&c);
}

/* ---- blob store ---------------------------------------------------------- */

static void test_blobs(void)
{
	images_store s = IMAGES_STORE_INIT;
	cbl_error *e = NULL;
	char *home = tpath("home-blobs");
	ok(images_store_open(&s, home, &e) == 0, "store opens");
	const char data[] = "hello blob store";
	char d[72];
	images_sha256_digest(data, strlen(data), d);
	images_blob_writer w;

	/* mismatch: nothing stored, no .part left */
	const char *wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	ok(images_blob_writer_open(&w, &s, wrong, -1, false, &e) == 0, "writer opens");
	images_blob_writer_write(&w, data, strlen(data), &e);
	int rc = images_blob_writer_commit(&w, NULL, &e);
	ok(rc == CBL_EIO && e && strstr(e->msg, "digest mismatch") && strstr(e->msg, "nothing stored"),
	   "digest mismatch: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	char *bp = images_store_blob_path(&s, wrong);
	char *pp = cbl_xasprintf("%s.part", bp);
	ok(!exists(bp) && !exists(pp), "nothing stored, no .part");
	images_blob_writer_release(&w, false);
	free(bp);
	free(pp);

	/* more bytes than the descriptor says */
	ok(images_blob_writer_open(&w, &s, d, 4, false, &e) == 0, "writer with size");
	ok(images_blob_writer_write(&w, data, strlen(data), &e) == CBL_EIO, "oversized blob refused");
	cbl_error_clear(&e);
	images_blob_writer_release(&w, false);

	/* resume: half, keep the .part, reopen, finish */
	ok(images_blob_writer_open(&w, &s, d, (int64_t)strlen(data), true, &e) == 0, "writer (resume, nothing yet)");
	images_blob_writer_write(&w, data, 6, &e);
	images_blob_writer_release(&w, true);
	ok(images_blob_writer_open(&w, &s, d, (int64_t)strlen(data), true, &e) == 0 && w.n == 6, "resumed at byte 6");
	images_blob_writer_write(&w, data + 6, strlen(data) - 6, &e);
	ok(images_blob_writer_commit(&w, NULL, &e) == 0, "resumed blob verifies");
	images_blob_writer_release(&w, false);
	ok(images_store_has_blob(&s, d, (int64_t)strlen(data)), "blob stored");
	ok(!images_store_has_blob(&s, d, 3), "size check");
	char *out = NULL;
	size_t len = 0;
	ok(images_store_read_blob(&s, d, &out, &len, &e) == 0 && len == strlen(data), "read back");
	free(out);

	/* a corrupted stored blob is noticed on read */
	bp = images_store_blob_path(&s, d);
	cbl_write_file_atomic(bp, "HELLO blob store", 16, 0644, false, NULL);
	ok(images_store_read_blob(&s, d, &out, &len, &e) == CBL_EIO && strstr(e->msg, "corrupt"),
	   "corrupt stored blob detected");
	cbl_error_clear(&e);
	free(bp);
	images_store_release(&s);
	free(home);
}

/* ---- unpacking ----------------------------------------------------------- */

typedef struct ent {
	const char *name;
	char type; /* f d l h c b */
	const char *data;  /* file content, or link target */
	int mode;
} ent;

static void mktar(const char *path, const ent *ents, size_t n, bool gz)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (gz)
		archive_write_add_filter_gzip(a);
	archive_write_open_filename(a, path);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, ents[i].name);
		archive_entry_set_mtime(e, 1700000000, 0);
		switch (ents[i].type) {
		case 'd':
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, ents[i].mode ? (mode_t)ents[i].mode : 0755);
			break;
		case 'l':
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, ents[i].data);
			archive_entry_set_perm(e, 0777);
			break;
		case 'h':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, ents[i].data);
			archive_entry_set_perm(e, 0644);
			break;
		case 'c':
			archive_entry_set_filetype(e, AE_IFCHR);
			archive_entry_set_rdev(e, makedev(1, 3));
			archive_entry_set_perm(e, 0666);
			break;
		case 'b':
			archive_entry_set_filetype(e, AE_IFBLK);
			archive_entry_set_rdev(e, makedev(7, 0));
			archive_entry_set_perm(e, 0666);
			break;
		default:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, ents[i].mode ? (mode_t)ents[i].mode : 0644);
			archive_entry_set_size(e, ents[i].data ? (la_int64_t)strlen(ents[i].data) : 0);
		}
		archive_write_header(a, e);
		if (ents[i].type == 'f' && ents[i].data)
			archive_write_data(a, ents[i].data, strlen(ents[i].data));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}


static int apply(images_unpack_ctx *ctx, const char *tar, cbl_error **e)
{
	return images_unpack_layer(ctx, tar, e);
}

static char *slurp(const char *path)
{
	char *s = NULL;
	size_t n;
	if (cbl_read_file(path, 0, &s, &n, NULL))
		return NULL;
	return s;
}

static void test_unpack(void)
{
	char *root = tpath("root"), *l1 = tpath("l1.tar.gz"), *l2 = tpath("l2.tar"), *p;
	cbl_error *e = NULL;
	mkdir(root, 0755);
	images_unpack_ctx ctx = {.root = root, .as_root = geteuid() == 0};
	const ent layer1[] = {
		{"etc/", 'd', NULL, 0},
		{"etc/os-release", 'f', "ID=one\n", 0},
		{"etc/gone", 'f', "x", 0},
		{"etc/keep", 'f', "k", 0},
		{"var/", 'd', NULL, 0},
		{"var/opq/", 'd', NULL, 0},
		{"var/opq/old", 'f', "old", 0},
		{"var/opq/sub/", 'd', NULL, 0},
		{"var/opq/sub/deep", 'f', "deep", 0},
		{"dir2file/", 'd', NULL, 0},
		{"dir2file/inner", 'f', "i", 0},
		{"ro/", 'd', NULL, 0555},
		{"./usr/bin/tool", 'f', "#!/bin/sh\n", 0755},
		{"usr/bin/tool-link", 'h', "usr/bin/tool", 0},
		{"bin", 'l', "usr/bin", 0},
		{"dev/null", 'c', NULL, 0},
	};
	mktar(l1, layer1, ARRAY_SIZE(layer1), true);
	ok(apply(&ctx, l1, &e) == 0, "layer 1 (gzip) applies: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	p = tpath("root/etc/os-release");
	char *s = slurp(p);
	is_str(s, "ID=one\n", "file content");
	free(s);
	free(p);
	struct stat a, b;
	char *t1 = tpath("root/usr/bin/tool"), *t2 = tpath("root/usr/bin/tool-link");
	ok(stat(t1, &a) == 0 && stat(t2, &b) == 0 && a.st_ino == b.st_ino && (a.st_mode & 0777) == 0755,
	   "hard link kept, mode 0755");
	free(t1);
	free(t2);
	p = tpath("root/bin");
	char lb[64] = {0};
	ok(readlink(p, lb, sizeof(lb) - 1) > 0 && !strcmp(lb, "usr/bin"), "symlink kept");
	free(p);
	p = tpath("root/ro");
	ok(stat(p, &a) == 0 && (ctx.as_root ? (a.st_mode & 0777) == 0555 : (a.st_mode & 0700) == 0700),
	   "directory mode (0555 as root; u+rwx for later layers otherwise)");
	free(p);
	p = tpath("root/dev/null");
	ok(!exists(p) && ctx.skipped == 1, "device node: skipped (as root too)");
	free(p);

	/* layer 2: whiteouts (opaque marker after the layer's own entries, to
	 * prove order does not matter), a dir replaced by a file */
	const ent layer2[] = {
		{"var/opq/new", 'f', "new", 0},
		{"var/opq/sub2/x", 'f', "x", 0},
		{"var/opq/.wh..wh..opq", 'f', "", 0},
		{"etc/.wh.gone", 'f', "", 0},
		{"etc/.wh..wh.plnk", 'f', "", 0},
		{"dir2file", 'f', "now a file", 0},
		{"etc/os-release", 'f', "ID=two\n", 0},
		{"ro/added", 'f', "into a 0555 dir", 0},
	};
	mktar(l2, layer2, ARRAY_SIZE(layer2), false);
	ok(apply(&ctx, l2, &e) == 0, "layer 2 applies: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	char *gone = tpath("root/etc/gone"), *keep = tpath("root/etc/keep"), *old = tpath("root/var/opq/old"),
	     *deep = tpath("root/var/opq/sub"), *nw = tpath("root/var/opq/new"), *sub2 = tpath("root/var/opq/sub2/x"),
	     *d2f = tpath("root/dir2file"), *plnk = tpath("root/etc/.wh..wh.plnk"), *wh = tpath("root/etc/.wh.gone");
	ok(!exists(gone) && exists(keep), ".wh.gone removed etc/gone only");
	ok(!exists(old) && !exists(deep), "opaque dir dropped the lower layer's content");
	ok(exists(nw) && exists(sub2), "opaque dir kept this layer's entries (marker came after them)");
	ok(stat(d2f, &a) == 0 && S_ISREG(a.st_mode), "a directory replaced by a file");
	ok(!exists(plnk) && !exists(wh), "whiteout markers are not extracted");
	p = tpath("root/etc/os-release");
	s = slurp(p);
	is_str(s, "ID=two\n", "upper layer wins");
	free(s);
	free(p);
	free(gone);
	free(keep);
	free(old);
	free(deep);
	free(nw);
	free(sub2);
	free(d2f);
	free(plnk);
	free(wh);

	/* escapes: each layer applied to a fresh root next to an "outside" dir */
	char *outside = tpath("outside");
	mkdir(outside, 0755);
	struct {
		const char *what;
		ent ents[3];
		size_t n;
	} evil[] = {
		{"'..' entry", {{"../outside/pwned", 'f', "x", 0}}, 1},
		{"'..' in the middle", {{"a/../../outside/pwned", 'f', "x", 0}}, 1},
		{"absolute entry", {{"/outside/pwned", 'f', "x", 0}}, 1},
		{"write through a symlink of the same layer",
		 {{"evil", 'l', NULL, 0}, {"evil/pwned", 'f', "x", 0}}, 2},
		{"hard link to '..'", {{"pwned", 'h', "../outside/target", 0}}, 1},
		{"hard link through a symlink", {{"evil", 'l', NULL, 0}, {"pwned", 'h', "evil/target", 0}}, 2},
		{"whiteout through a symlink", {{"evil", 'l', NULL, 0}, {"evil/.wh.target", 'f', "", 0}}, 2},
		{"opaque whiteout through a symlink", {{"evil", 'l', NULL, 0}, {"evil/.wh..wh..opq", 'f', "", 0}}, 2},
	};
	char *target = cbl_xasprintf("%s/target", outside);
	for (size_t i = 0; i < ARRAY_SIZE(evil); i++) {
		char *r = cbl_xasprintf("%s/evilroot%zu", tmpdir, i), *tar = cbl_xasprintf("%s/evil%zu.tar", tmpdir, i);
		mkdir(r, 0755);
		cbl_write_file_atomic(target, "t", 1, 0644, false, NULL);
		for (size_t j = 0; j < evil[i].n; j++)
			if (evil[i].ents[j].type == 'l')
				evil[i].ents[j].data = outside;
		mktar(tar, evil[i].ents, evil[i].n, false);
		images_unpack_ctx c2 = {.root = r, .as_root = geteuid() == 0};
		int rc = images_unpack_layer(&c2, tar, &e);
		char *pw = cbl_xasprintf("%s/pwned", outside);
		ok(rc == CBL_EINVAL && !exists(pw) && exists(target), "refused: %s (%s)", evil[i].what, e ? e->msg : "accepted");
		cbl_error_clear(&e);
		unlink(pw);
		free(pw);
		free(r);
		free(tar);
	}
	/* a symlink planted by an EARLIER layer */
	char *r = tpath("evilroot-layers"), *ta = tpath("plant.tar"), *tb = tpath("use.tar");
	mkdir(r, 0755);
	const ent plant[] = {{"etc", 'l', outside, 0}};
	const ent use[] = {{"etc/pwned", 'f', "x", 0}};
	mktar(ta, plant, 1, false);
	mktar(tb, use, 1, false);
	images_unpack_ctx c3 = {.root = r, .as_root = geteuid() == 0};
	ok(images_unpack_layer(&c3, ta, &e) == 0, "a layer may carry an absolute symlink");
	int rc = images_unpack_layer(&c3, tb, &e);
	char *pw = cbl_xasprintf("%s/pwned", outside);
	ok(rc == CBL_EINVAL && !exists(pw), "refused: write through a symlink planted by an earlier layer (%s)",
	   e ? e->msg : "accepted");
	cbl_error_clear(&e);
	/* replacing the planted symlink itself is fine (the link, not its target) */
	const ent replace[] = {{"etc", 'f', "plain file now", 0}};
	mktar(tb, replace, 1, false);
	ok(images_unpack_layer(&c3, tb, &e) == 0 && exists(target), "a symlink is replaced, never followed");
	cbl_error_clear(&e);
	free(pw);
	free(r);
	free(ta);
	free(tb);
	free(target);
	free(outside);
	free(root);
	free(l1);
	free(l2);
	cbl_strv_release(&ctx.devices);
}

/* ---- device nodes and the store's mode (issue 13) -------------------------- */

/* A layer's device nodes are never created, whoever unpacks (a block node
 * in the store is the host's disk for whoever opens it), and are named for
 * the caller's warning; the store is 0700, an older 0755 one closed up. */
static void test_devices_and_store_mode(void)
{
	char *root = tpath("devroot"), *tar = tpath("dev.tar"), *p;
	cbl_error *e = NULL;
	mkdir(root, 0755);
	images_unpack_ctx ctx = {.root = root, .as_root = geteuid() == 0, .devices = CBL_STRV_INIT};
	const ent layer[] = {
		{"dev/", 'd', NULL, 0},
		{"dev/lo0", 'b', NULL, 0},
		{"dev/null", 'c', NULL, 0},
		{"lo0-link", 'h', "dev/lo0", 0},
		{"ok", 'f', "fine\n", 0},
	};
	mktar(tar, layer, ARRAY_SIZE(layer), false);
	ok(apply(&ctx, tar, &e) == 0, "a layer with device nodes applies: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	p = tpath("devroot/dev/lo0");
	ok(!exists(p), "block device b 7,0: not created");
	free(p);
	p = tpath("devroot/dev/null");
	ok(!exists(p), "character device: not created");
	free(p);
	p = tpath("devroot/lo0-link");
	ok(!exists(p), "a hard link to a skipped node: skipped too");
	free(p);
	p = tpath("devroot/ok");
	ok(exists(p), "the rest of the layer is there");
	free(p);
	is_int((int)ctx.skipped, 3, "three entries skipped");
	is_str(ctx.devices.n ? ctx.devices.v[0] : NULL, "dev/lo0 (block 7,0)", "each named for the warning");
	is_str(ctx.devices.n > 1 ? ctx.devices.v[1] : NULL, "dev/null (character 1,3)", "character nodes too");
	cbl_strv_release(&ctx.devices);

	images_store s = IMAGES_STORE_INIT;
	struct stat st;
	char *home = tpath("home-mode"), *store = tpath("home-mode/images");
	ok(images_store_open(&s, home, &e) == 0, "a new store opens");
	ok(stat(store, &st) == 0 && (st.st_mode & 0777) == 0700, "created 0700 (%o)", (unsigned)(st.st_mode & 0777));
	images_store_release(&s);
	chmod(store, 0755);
	ok(images_store_open(&s, home, &e) == 0, "an old 0755 store opens");
	ok(stat(store, &st) == 0 && (st.st_mode & 0777) == 0700, "and is made 0700 (%o)", (unsigned)(st.st_mode & 0777));
	images_store_release(&s);
	cbl_error_clear(&e);
	free(home);
	free(store);
	free(root);
	free(tar);
}

/* ---- import + materialize (store level) --------------------------------- */

static void test_import(void)
{
	char *home = tpath("home-import"), *dir = tpath("save"), *tar = tpath("save.tar"), *bad = tpath("oci-bad");
	cbl_error *e = NULL;
	/* a docker-save directory: manifest.json, config, layer.tar */
	mkdir(dir, 0755);
	char *l = cbl_xasprintf("%s/layer.tar", dir);
	const ent ents[] = {{"etc/os-release", 'f', "ID=imported\n", 0}, {"bin/", 'd', NULL, 0}};
	mktar(l, ents, ARRAY_SIZE(ents), false);
	char *ltxt = NULL;
	size_t llen = 0;
	cbl_read_file(l, 0, &ltxt, &llen, NULL);
	char ld[72];
	images_sha256_digest(ltxt, llen, ld);
	free(ltxt);
	char *cfg = cbl_xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"A=1\"]},"
				  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
				  ld);
	char *cp = cbl_xasprintf("%s/cfg.json", dir), *mp = cbl_xasprintf("%s/manifest.json", dir);
	cbl_write_file_atomic(cp, cfg, strlen(cfg), 0644, false, NULL);
	const char *man = "[{\"Config\":\"cfg.json\",\"RepoTags\":[\"imported/app:1\"],\"Layers\":[\"layer.tar\"]}]";
	cbl_write_file_atomic(mp, man, strlen(man), 0644, false, NULL);
	images_root *root = NULL;
	ok(images_import(home, dir, NULL, NULL, &root, &e) == 0, "docker-save directory imports: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	if (root) {
		is_str(root->name, "docker.io/imported/app:1", "named from RepoTags");
		ok(root->env.n == 1 && !strcmp(root->env.v[0], "A=1"), "config Env");
		char *osr = cbl_xasprintf("%s/etc/os-release", root->rootfs);
		char *s = slurp(osr);
		is_str(s, "ID=imported\n", "root unpacked");
		free(s);
		free(osr);
	}
	images_root_free(root);
	root = NULL;
	/* resolving it again is a store hit, offline */
	images_resolve_opts o = IMAGES_RESOLVE_OPTS_INIT;
	o.offline = true;
	ok(images_resolve(home, "imported/app:1", &o, &root, &e) == 0 && root && !root->pulled,
	   "resolve offline from the store: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	images_root_free(root);
	root = NULL;
	ok(images_resolve(home, "imported/other:1", &o, &root, &e) == CBL_ENOENT && strstr(e->msg, "not in the local store"),
	   "offline and absent: %s", e ? e->msg : "");
	cbl_error_clear(&e);

	/* a tampered layer: diff_id mismatch */
	const ent ents2[] = {{"etc/os-release", 'f', "ID=tampered\n", 0}};
	mktar(l, ents2, ARRAY_SIZE(ents2), false);
	ok(images_import(home, dir, "imported/app:2", NULL, NULL, &e) == CBL_EIO && strstr(e->msg, "diff_id"),
	   "a layer that does not match diff_ids is refused: %s", e ? e->msg : "");
	cbl_error_clear(&e);

	/* OCI layout with a blob whose content does not match its name */
	mkdir(bad, 0755);
	char *bd = cbl_xasprintf("%s/blobs/sha256", bad);
	cbl_mkdir_p(bd, 0755, NULL);
	const char *cfg2 = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
	char cd[72];
	images_sha256_digest(cfg2, strlen(cfg2), cd);
	const char *layer_digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
	char *m2 = cbl_xasprintf("{\"schemaVersion\":2,\"mediaType\":\"" IMAGES_MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":"
				 "\"" IMAGES_MT_OCI_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
				 "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":4}]}",
				 cd, strlen(cfg2), layer_digest);
	char md[72];
	images_sha256_digest(m2, strlen(m2), md);
	char *f;
	f = cbl_xasprintf("%s/%s", bd, cd + 7);
	cbl_write_file_atomic(f, cfg2, strlen(cfg2), 0644, false, NULL);
	free(f);
	f = cbl_xasprintf("%s/%s", bd, md + 7);
	cbl_write_file_atomic(f, m2, strlen(m2), 0644, false, NULL);
	free(f);
	f = cbl_xasprintf("%s/%s", bd, layer_digest + 7);
	cbl_write_file_atomic(f, "evil", 4, 0644, false, NULL);
	free(f);
	char *ix = cbl_xasprintf("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" IMAGES_MT_OCI_MANIFEST "\","
				 "\"digest\":\"%s\",\"size\":%zu}]}",
				 md, strlen(m2));
	f = cbl_xasprintf("%s/index.json", bad);
	cbl_write_file_atomic(f, ix, strlen(ix), 0644, false, NULL);
	free(f);
	f = cbl_xasprintf("%s/oci-layout", bad);
	cbl_write_file_atomic(f, "{\"imageLayoutVersion\":\"1.0.0\"}", 30, 0644, false, NULL);
	free(f);
	ok(images_import(home, bad, "bad/oci:1", NULL, NULL, &e) == CBL_EIO && strstr(e->msg, "digest mismatch"),
	   "OCI blob that does not match its digest: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	images_store s = IMAGES_STORE_INIT;
	images_store_open(&s, home, NULL);
	ok(!images_store_has_blob(&s, layer_digest, -1), "the bad blob was not stored");
	images_store_release(&s);

	/* ls / rm / prune */
	images_list *ls = NULL;
	ok(images_ls(home, &ls, &e) == 0 && ls->n == 1 && !strcmp(ls->items[0].name, "docker.io/imported/app:1") &&
		   ls->items[0].unpacked && ls->items[0].root_bytes > 0,
	   "ls lists the image");
	images_list_free(ls);
	uint64_t freed = 0;
	ok(images_rm(home, "imported/app:1", &freed, &e) == 0 && freed > 0, "rm frees space");
	ok(images_rm(home, "imported/app:1", NULL, &e) == CBL_ENOENT, "rm of an unknown image");
	cbl_error_clear(&e);
	ok(images_prune(home, &freed, &e) == 0, "prune");
	char *blobs = cbl_xasprintf("%s/images/blobs/sha256", home);
	char *roots = cbl_xasprintf("%s/images/roots", home);
	int nb = 0;
	DIR *d = opendir(blobs);
	struct dirent *de;
	while (d && (de = readdir(d)))
		nb += de->d_name[0] != '.';
	if (d)
		closedir(d);
	d = opendir(roots);
	while (d && (de = readdir(d)))
		nb += de->d_name[0] != '.';
	if (d)
		closedir(d);
	is_int(nb, 0, "nothing left after rm + prune");
	free(blobs);
	free(roots);
	free(bd);
	free(m2);
	free(ix);
	free(cfg);
	free(cp);
	free(mp);
	free(l);
	free(home);
	free(dir);
	free(tar);
	free(bad);
}

static void test_resolve_kinds(void)
{
	images_root *r = NULL;
	cbl_error *e = NULL;
	char *home = tpath("home-kinds");
	ok(images_resolve(home, "host", NULL, &r, &e) == 0 && r->kind == IMAGES_KIND_HOST && !r->rootfs, "host");
	images_root_free(r);
	ok(images_resolve(home, tmpdir, NULL, &r, &e) == 0 && r->kind == IMAGES_KIND_DIR && r->rootfs &&
		   r->rootfs[0] == '/',
	   "a directory is a root filesystem");
	images_root_free(r);
	r = NULL;
	char *f = tpath("afile");
	cbl_write_file_atomic(f, "x", 1, 0644, false, NULL);
	ok(images_resolve(home, f, NULL, &r, &e) == CBL_EINVAL, "a file is not");
	cbl_error_clear(&e);
	free(f);
	/* a curated image without a location cannot be pulled */
	images_resolve_opts o = IMAGES_RESOLVE_OPTS_INIT;
	o.offline = true;
	ok(images_resolve(home, "aws/codebuild/standard:7.0", &o, &r, &e) == CBL_ENOENT &&
		   strstr(e->msg, "aws/codebuild/standard:7.0"),
	   "curated image, offline: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	free(home);
}

/* ---- catalog ------------------------------------------------------------- */

static void test_catalog(void)
{
	images_catalog *c = NULL;
	cbl_error *e = NULL;
	char *v = NULL;
	ok(images_catalog_default(&c, &e) == 0 && c, "the embedded catalog parses");
	const images_curated *s7 = images_catalog_find(c, "aws/codebuild/standard:7.0");
	ok(s7 != NULL, "standard:7.0 is curated");
	const images_curated *al5 = images_catalog_find(c, "aws/codebuild/amazonlinux2-x86_64-standard:5.0");
	ok(al5 && al5 == images_catalog_find(c, "aws/codebuild/amazonlinux-x86_64-standard:5.0"),
	   "AL2023 5.0 under both names");
	ok(al5 && images_curated_location(al5) && images_catalog_find(c, images_curated_location(al5)) == al5,
	   "found by its public location");
	ok(images_catalog_find(c, "docker.io/aws/codebuild/standard:7.0") == s7, "docker-normalized form");
	ok(!images_catalog_find(c, "busybox"), "busybox is not curated");
	if (!s7) {
		images_catalog_free(c);
		return;
	}
	ok(images_runtime_check(s7, "python", "3.11", &v, &e) == 0 && !strcmp(v, "3.11"), "exact key");
	free(v);
	ok(images_runtime_check(s7, "python", "3.x", &v, &e) == 0 && !strcmp(v, "3.14"), "3.x = newest 3 (3.14 > 3.9)");
	free(v);
	ok(images_runtime_check(s7, "golang", "1.x", &v, &e) == 0 && !strcmp(v, "1.26"), "golang 1.x");
	free(v);
	ok(images_runtime_check(s7, "nodejs", "20.x", &v, &e) == 0 && !strcmp(v, "20"), "nodejs 20.x = 20");
	free(v);
	ok(images_runtime_check(s7, "java", "latest", &v, &e) == 0 && !strcmp(v, "corretto25"), "java latest");
	free(v);
	ok(images_runtime_check(s7, "java", "corretto17", NULL, &e) == 0, "corretto17");
	is_str(images_curated_default(s7, "python"), "3.11", "default python of standard:7.0");
	ok(images_runtime_check(s7, "nodejs", "19", &v, &e) == CBL_EINVAL && v == NULL, "nodejs 19 rejected");
	is_str(e ? e->msg : NULL,
	       "Unknown runtime version named '19' of nodejs. This build image has the following versions: 18, 20, 22, 24",
	       "version error lists the versions");
	cbl_error_clear(&e);
	ok(images_runtime_check(s7, "cobol", "1", NULL, &e) == CBL_EINVAL, "unknown runtime rejected");
	is_str(e ? e->msg : NULL,
	       "Unknown runtime named 'cobol'. This build image has the following runtimes: java, python, nodejs, golang, "
	       "ruby, php, dotnet",
	       "runtime error lists the runtimes");
	cbl_error_clear(&e);
	const char *const *rts = images_curated_runtimes(s7);
	is_str(rts[0], "java", "runtimes in catalog order");
	const char *const *vs = images_curated_versions(s7, "dotnet");
	ok(vs && !strcmp(vs[0], "6.0") && !strcmp(vs[2], "10.0") && !vs[3], "dotnet versions");
	ok(!images_curated_versions(s7, "rust"), "standard:7.0 has no rust");
	const images_curated *s8 = images_catalog_find(c, "aws/codebuild/standard:8.0");
	ok(s8 && images_runtime_check(s8, "rust", "1.93", NULL, &e) == 0, "standard:8.0 has rust 1.93");
	ok(images_curated_has_user(s7, "codebuild-user") && images_curated_has_user(s7, "root") &&
	   !images_curated_has_user(s7, "bob"), "curated images have codebuild-user and root");
	is_str(images_curated_users(s7)[1], "codebuild-user", "the catalog's users");
	cbl_strv having = CBL_STRV_INIT;
	images_catalog_having(c, "nodejs", "12", &having);
	struct utsname un;
	bool amd64 = uname(&un) == 0 && !strcmp(un.machine, "x86_64");
	if (amd64)
		ok(having.n == 1 && !strcmp(having.v[0], "aws/codebuild/standard:5.0"), "nodejs 12: standard:5.0 only");
	cbl_strv_release(&having);
	images_catalog_having(c, "golang", "1.x", &having);
	if (amd64)
		ok(having.n >= 3 && !strcmp(having.v[0], "aws/codebuild/standard:7.0") &&
		   !strcmp(having.v[1], "aws/codebuild/standard:8.0"),
		   "golang 1.x: the maintained images first, in catalog order");
	cbl_strv_release(&having);
	images_catalog_having(c, "cobol", "1", &having);
	ok(having.n == 0, "nobody has cobol");
	cbl_strv_release(&having);
	images_catalog_free(c);

	const char *small = "{\"images\":[{\"name\":\"x/y:1\",\"runtimes\":{}}]}";
	ok(images_catalog_parse(small, strlen(small), &c, &e) == 0, "a minimal catalog");
	const images_curated *xy = images_catalog_find(c, "x/y:1");
	ok(xy && images_runtime_check(xy, "python", "3", NULL, &e) == CBL_EINVAL && strstr(e->msg, "(none)"),
	   "an image without runtimes");
	cbl_error_clear(&e);
	images_catalog_free(c);
	ok(images_catalog_parse("[", 1, &c, &e) == CBL_EINVAL, "broken JSON");
	cbl_error_clear(&e);

	/* host versions */
	struct {
		const char *rt, *out, *want;
	} hv[] = {
		{"nodejs", "v18.19.0\n", "18"},
		{"python", "Python 3.11.2\n", "3.11"},
		{"java", "openjdk version \"17.0.9\" 2023-10-17\nOpenJDK Runtime", "17"},
		{"java", "java version \"1.8.0_392\"\n", "8"},
		{"golang", "go version go1.21.5 linux/amd64\n", "1.21"},
		{"ruby", "ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]\n", "3.1"},
		{"php", "PHP 8.2.7 (cli) (built: Jun  9 2023)\n", "8.2"},
		{"dotnet", "8.0.100\n", "8.0"},
		{"rust", "rustc 1.75.0 (82e1608df 2023-12-21)\n", "1.75"},
		{"docker", "Docker version 20.10.24+dfsg1, build 297e128\n", "20"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(hv); i++) {
		char *g = images_host_parse_version(hv[i].rt, hv[i].out);
		is_str(g, hv[i].want, "host %s version %s", hv[i].rt, hv[i].want);
		free(g);
	}
	static const char *const full[] = {"18.19.0", "3.11.2", "17.0.9", "8.0", "1.21.5", "3.1.2", "8.2.7",
					   "8.0.100", "1.75.0", "20.10.24"};
	for (size_t i = 0; i < ARRAY_SIZE(hv); i++) {
		char *g = images_host_parse_full_version(hv[i].rt, hv[i].out);
		is_str(g, full[i], "host %s full version %s", hv[i].rt, full[i]);
		free(g);
	}
	/* the one rule for the host image */
	struct {
		const char *have, *want;
		bool match;
	} rule[] = {
		{"20.20.2", "20", true},        {"20.20.2", "20.x", true},     {"20.20.2", "20.20", true},
		{"20.20.2", "latest", true},    {"20.20.2", "12", false},      {"20.20.2", "2", false},
		{"20.20.2", "20.2", false},     {"3.11.7", "3", true},         {"3.11.7", "3.x", true},
		{"3.11.7", "3.11", true},       {"3.11.7", "3.11.x", true},    {"3.11.7", "3.1", false},
		{"3.11.7", "3.12", false},      {"17.0.15", "corretto17", true}, {"17.0.15", "openjdk17", true},
		{"17.0.15", "corretto11", false}, {"17.0.15", "corretto", false}, {"17.0.15", "x", false},
		{"1.21.5", "1.x", true},        {"1.21.5", "1.21", true},      {"1.21.5", "1.22", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rule); i++)
		ok(images_host_version_matches(rule[i].have, rule[i].want) == rule[i].match, "host %s %s %s",
		   rule[i].have, rule[i].match ? "matches" : "does not match", rule[i].want);
	/* the host image: python3 is on every machine that runs these tests */
	cbl_strv have = CBL_STRV_INIT;
	images_host_runtimes(&have);
	bool py = false;
	for (size_t i = 0; i < have.n; i++)
		py |= !strcmp(have.v[i], "python");
	ok(py, "the host has python");
	char *hv3 = NULL;
	ok(images_host_runtime_version("python", &hv3, &e) == 0 && hv3 && hv3[0] == '3', "host python version %s",
	   hv3 ? hv3 : "?");
	ok(images_runtime_check(NULL, "python", "3.x", &v, &e) == 0 && hv3 && !strcmp(v, hv3), "host python 3.x");
	free(v);
	ok(images_runtime_check(NULL, "python", "2.7", NULL, &e) == CBL_EINVAL && strstr(e->msg, "of python"),
	   "host python 2.7 rejected: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	ok(images_runtime_check(NULL, "cobol", "1", NULL, &e) == CBL_EINVAL && strstr(e->msg, "python"),
	   "unknown host runtime lists the host's");
	cbl_error_clear(&e);
	images_host_choice ch;
	ok(images_host_choose("python", "3.x", &ch, &e) == 0 && ch.have && ch.match && ch.key &&
	   !strncmp(ch.have, ch.key, strlen(ch.key)) && strlen(ch.have) > strlen(ch.key),
	   "host python 3.x: %s (%s)", ch.have ? ch.have : "?", ch.key ? ch.key : "?");
	images_host_choice_release(&ch);
	ok(images_host_choose("python", "2.7", &ch, &e) == 0 && ch.have && !ch.match, "host python 2.7: no match");
	images_host_choice_release(&ch);
	ok(images_host_choose("cobol", "1", &ch, &e) == 0 && !ch.have && !ch.match, "host cobol: none");
	images_host_choice_release(&ch);
	free(hv3);
	cbl_strv_release(&have);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/cbl-images-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_refs();
	test_challenge();
	test_manifests();
	test_blobs();
	test_unpack();
	test_devices_and_store_mode();
	test_import();
	test_resolve_kinds();
	test_catalog();
	cbl_rm_rf(tmpdir, NULL);
	return tap_done();
}
