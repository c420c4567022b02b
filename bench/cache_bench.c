/* bench/cache_bench.c - times the cache module's save and restore on a tree
 * (built and run by bench/cache.sh; not part of the library).
 *
 * Usage:
 *   cache_bench save-overlay STORE SCOPE TREE DURABLE
 *       the sandbox's first save: a miss, then TREE/node_modules becomes the
 *       overlay's upper dir (a rename, not timed: that is what the build
 *       wrote), then cache_save is timed
 *   cache_bench save-overlay-change STORE SCOPE
 *       the sandbox's save after a hit where the build added one file (the
 *       new snapshot = the old one hard-linked + the new file)
 *   cache_bench save-copy STORE SCOPE SRC DURABLE
 *       the no-sandbox save of SRC/node_modules (restore, then save; only
 *       the save is timed)
 *   cache_bench restore-overlay STORE SCOPE
 *       cache_restore with the sandbox (lookup + overlay dirs), and, as root,
 *       the overlay mount and unmount the runner will do, each timed
 *   cache_bench restore-copy STORE SCOPE DEST
 *       cache_restore without the sandbox into DEST/node_modules
 * Prints one line of key=value pairs.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "util/error.h"

#include "util/banned.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const paths[] = {"node_modules/**/*"};

static cache_session *session(cache_store *st, const char *scope, const char *src, const char *view,
			      bool sandbox, bool durable)
{
	cache_session_opts o = CACHE_SESSION_OPTS_INIT;
	o.scope = scope;
	o.paths = paths;
	o.npaths = 1;
	o.src_dir = src;
	o.src_view = view;
	o.sandbox = sandbox;
	o.durable = durable;
	cache_session *s = NULL;
	cbl_error *e = NULL;
	if (cache_session_new(&s, st, &o, &e) < 0) {
		fprintf(stderr, "cache_bench: %s\n", e->msg);
		exit(1);
	}
	return s;
}

static void check(int rc, cbl_error *e, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "cache_bench: %s: %s\n", what, e ? e->msg : "?");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: see bench/cache_bench.c\n");
		return 2;
	}
	const char *mode = argv[1];
	cache_store *st = NULL;
	cbl_error *e = NULL;
	check(cache_store_open(&st, argv[2], &e), e, "open");
	const char *scope = argv[3];
	cbl_strv lines = CBL_STRV_INIT;
	if (!strcmp(mode, "save-overlay") && argc == 6) {
		cache_session *s = session(st, scope, "/codebuild/output/src1/src", argv[4], true, atoi(argv[5]));
		check(cache_restore(s, &e), e, "restore");
		size_t n = 0;
		const cache_mount *m = cache_session_mounts(s, &n);
		char *nm = NULL;
		if (n != 1 || asprintf(&nm, "%s/node_modules", argv[4]) < 0)
			return 1;
		/* the build's writes: in the overlay's upper dir */
		if (rmdir(m[0].upper) < 0 || rename(nm, m[0].upper) < 0) {
			fprintf(stderr, "cache_bench: cannot move the tree into the upper dir: %s\n", strerror(errno));
			return 1;
		}
		double t0 = now();
		check(cache_save(s, &e), e, "save");
		double t = now() - t0;
		cache_session_log_lines(s, CACHE_STAGE_SAVE, &lines);
		printf("seconds=%.4f durable=%s log=\"%s\"\n", t, argv[5], lines.n ? lines.v[0] : "");
		cache_session_free(s);
		free(nm);
	} else if (!strcmp(mode, "save-overlay-change") && argc == 4) {
		cache_session *s = session(st, scope, "/codebuild/output/src1/src", "/nonexistent", true, true);
		check(cache_restore(s, &e), e, "restore");
		size_t n = 0;
		const cache_mount *m = cache_session_mounts(s, &n);
		char *f = NULL;
		if (n != 1 || asprintf(&f, "%s/added-by-the-build.js", m[0].upper) < 0)
			return 1;
		FILE *fp = fopen(f, "w");
		if (!fp)
			return 1;
		fputs("module.exports = 42;\n", fp);
		fclose(fp);
		double t0 = now();
		check(cache_save(s, &e), e, "save");
		double t = now() - t0;
		cache_session_log_lines(s, CACHE_STAGE_SAVE, &lines);
		printf("seconds=%.4f log=\"%s\"\n", t, lines.n ? lines.v[0] : "");
		cache_session_free(s);
		free(f);
	} else if (!strcmp(mode, "save-copy") && argc == 6) {
		cache_session *s = session(st, scope, argv[4], NULL, false, atoi(argv[5]));
		check(cache_restore(s, &e), e, "restore");
		double t0 = now();
		check(cache_save(s, &e), e, "save");
		double t = now() - t0;
		cache_session_log_lines(s, CACHE_STAGE_SAVE, &lines);
		printf("seconds=%.4f durable=%s log=\"%s\"\n", t, argv[5], lines.n ? lines.v[0] : "");
		cache_session_free(s);
	} else if (!strcmp(mode, "restore-overlay") && argc == 4) {
		cache_session *s = session(st, scope, "/codebuild/output/src1/src", "/nonexistent", true, true);
		double t0 = now();
		check(cache_restore(s, &e), e, "restore");
		double t1 = now();
		size_t n = 0;
		const cache_mount *m = cache_session_mounts(s, &n);
		double tm = -1, tu = -1;
		if (n == 1 && geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0) {
			char target[4096], opts[8192];
			snprintf(target, sizeof(target), "%s.mnt", m[0].upper);
			snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", m[0].lower, m[0].upper,
				 m[0].work);
			if (mkdir(target, 0755) == 0) {
				double a = now();
				if (mount("overlay", target, "overlay", 0, opts) == 0) {
					tm = now() - a;
					a = now();
					umount2(target, 0);
					tu = now() - a;
				}
				rmdir(target);
			}
		}
		cache_session_log_lines(s, CACHE_STAGE_RESTORE, &lines);
		printf("seconds=%.4f mount_seconds=%.4f umount_seconds=%.4f log=\"%s\"\n", t1 - t0, tm, tu,
		       lines.n ? lines.v[0] : "");
		cache_session_free(s);
	} else if (!strcmp(mode, "restore-copy") && argc == 5) {
		cache_session *s = session(st, scope, argv[4], NULL, false, true);
		double t0 = now();
		check(cache_restore(s, &e), e, "restore");
		double t = now() - t0;
		cache_session_log_lines(s, CACHE_STAGE_RESTORE, &lines);
		printf("seconds=%.4f log=\"%s\"\n", t, lines.n ? lines.v[0] : "");
		cache_session_free(s);
	} else {
		fprintf(stderr, "cache_bench: bad arguments for %s\n", mode);
		return 2;
	}
	cbl_strv_release(&lines);
	cache_store_free(st);
	return 0;
}
