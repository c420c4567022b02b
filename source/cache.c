/* source/cache.c - the source cache's object stores (source/source.h,
 * "Source cache"; internal API in source/source_internal.h).
 *
 * A store is a bare repository laid out the way git would, so `git -C STORE
 * log --all` works on it:
 *   <root>/<key>/objects/pack/pack-*.{pack,idx}   what fetches received
 *   <root>/<key>/packed-refs                      the commits they fetched
 *   <root>/<key>/shallow                          commits whose parents it lacks
 *   <root>/<key>.lock                             flock: shared to read,
 *                                                 exclusive to change
 *
 * Why packs are linked into the clone and not shared through
 * objects/info/alternates: a clone with alternates depends on the store's
 * files for ever, and a store is rebuilt when it breaks, pruned by the user,
 * or simply deleted.  A pack never changes once written (its name is its
 * checksum), so a hard link gives the clone its own reference to the same
 * bytes: free on one filesystem, a copy (reflink where possible) across two.
 *
 * Why the store's refs are copied into the clone as refs/cbl-have/N: libgit2
 * negotiates "have"s from the local repository's refs (a date-ordered walk
 * from refs/ *), and objects without refs are never offered.
 *
 * Why the shallow boundary travels with the packs: a "have" tells the server
 * the client has that commit's whole history unless the client also says
 * "shallow X" for the commits whose parents it lacks.  The clone starts with
 * the store's boundary, so the server deepens (sends "unshallow") where the
 * depth asked for reaches past it.
 *
 * Why a fetch that deepens (a depth, or unshallowing) offers at most 16
 * commits: libgit2 1.8 sends haves in rounds of 20, and with stateless HTTP
 * a second round of a shallow negotiation breaks ("incomplete pack header").
 * The walk it takes the haves from stops at shallow roots, so the clone gets
 * the refs' commits and their newest ancestors, 16 in all, and the commits
 * at that edge declared shallow: one round.  The cost: when the depth asked
 * for reaches past that edge the server sends that history again (objects
 * the store may hold already).  A full fetch from a complete store offers
 * its whole history, rounds and all, as git does.
 *
 * Publishing (exclusive lock) in an order that a kill at any point leaves a
 * usable store:
 *   1. shallow := shallow U fetched boundary      (only ever too conservative)
 *   2. packs the store lacks, each renamed in, .pack before .idx
 *      (a pack without its index is invisible; an index names its pack)
 *   3. packed-refs, rewritten whole and renamed in
 *   4. shallow := those entries of step 1 whose commit is present with a
 *      parent missing (the entries the fetch deepened past are dropped)
 * A store's refs then always name commits whose history is present down to
 * its shallow boundary, which is what "have" promises the server.
 */
#include "source/source_internal.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/time.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2/sys/errors.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define LOCK_WAIT_US (30 * 1000000LL)
#define LOCK_POLL_US 20000
#define MAX_HAVES 1000
/* commits a fetch that deepens offers: fewer than libgit2's round of 20 */
#define MAX_SHALLOW_HAVES 16
#define MAX_REFS 20000
/* more packs than this and a publish rewrites them as one (libgit2's
 * packbuilder: ~0.1 s for 5,000 objects); not for huge stores, whose
 * rewrite would hold the lock too long */
#define MAX_PACKS 32
#define MAX_REPACK_OBJECTS 1000000
#define HAVE_PREFIX "refs/cbl-have/"

struct source_cache {
	char *root, *key, *dir, *lockpath;
	int lockfd;
	int locked; /* 0, LOCK_SH or LOCK_EX */
	dev_t dev;
	ino_t ino;  /* the store directory this handle opened (see discard) */
	cbl_strv packs; /* "pack-<sha>" names with a good .idx and .pack */
	unsigned objects;
	source_shallow shallow;
	cbl_strv haves; /* hex ids of the refs, unique, refs/cbl/last first */
};

static bool is_hex40(const char *s, size_t n)
{
	if (n != GIT_OID_SHA1_HEXSIZE)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* ----------------------------------------------------------------- key --- */

char *source_cache_key(const char *url)
{
	cbl_buf b = CBL_BUF_INIT;
	const char *sep = strstr(url, "://");
	if (sep) {
		for (const char *p = url; p < sep; p++)
			cbl_buf_putc(&b, (char)tolower((unsigned char)*p));
		cbl_buf_puts(&b, "://");
		const char *auth = sep + 3;
		size_t alen = strcspn(auth, "/?#");
		const char *host = auth;
		for (size_t i = 0; i < alen; i++)
			if (auth[i] == '@')
				host = auth + i + 1;
		for (const char *p = host; p < auth + alen; p++)
			cbl_buf_putc(&b, (char)tolower((unsigned char)*p));
		cbl_buf_puts(&b, auth + alen);
	} else {
		cbl_buf_puts(&b, url);
	}
	while (b.len > 1 && b.ptr[b.len - 1] == '/')
		b.ptr[--b.len] = '\0';
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *hex = cbl_xmalloc(2 * EVP_MAX_MD_SIZE + 1);
	hex[0] = '\0';
	if (EVP_Digest(cbl_buf_cstr(&b), b.len, md, &mdlen, EVP_sha256(), NULL))
		for (unsigned int i = 0; i < mdlen; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
	cbl_buf_release(&b);
	return hex;
}

/* --------------------------------------------------------------- files --- */

/* Whether the process that named a temporary entry is alive: the pid follows
 * `marker` (".tmp." in "<file>.tmp.<pid>", ".trash." or ".new." in
 * "<key>.trash.<pid>.<rand>").  Unparsable names count as dead. */
static bool pid_alive(const char *name, const char *marker)
{
	const char *m = strstr(name, marker);
	if (!m)
		return false;
	char *end = NULL;
	long pid = strtol(m + strlen(marker), &end, 10);
	if (pid <= 0 || !end || (*end && *end != '.'))
		return false;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Copies src to dst (reflink, then copy_file_range, then read/write). */
static int copy_file(const char *src, const char *dst, cbl_error **err)
{
	int in = -1, out = -1, rc = 0;
	struct stat st;
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0 || fstat(in, &st) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", src);
		goto out;
	}
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444)) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", dst);
		goto out;
	}
	if (ioctl(out, FICLONE, in) == 0)
		goto out;
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		left -= n;
	}
	if (left > 0) {
		char buf[65536];
		if (lseek(in, st.st_size - left, SEEK_SET) < 0) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot copy '%s'", src);
			goto out;
		}
		while (left > 0) {
			ssize_t n = read(in, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || cbl_write_all(out, buf, (size_t)n) < 0) {
				rc = cbl_error_set_errno(err, CBL_EIO, n < 0 ? errno : EIO, "cannot copy '%s'", src);
				goto out;
			}
			left -= n;
		}
	}
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && !rc)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", dst);
	if (rc && out >= 0)
		unlink(dst);
	return rc;
}

/* dst gets src's bytes under its final name only once complete: a hard link
 * (atomic), else a copy to dst.tmp.<pid> renamed over dst.  An existing dst
 * is kept (same name = same pack). */
static int link_or_copy(const char *src, const char *dst, cbl_error **err)
{
	if (link(src, dst) == 0 || errno == EEXIST)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != EACCES)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot link '%s' to '%s'", src, dst);
	char *tmp = cbl_xasprintf("%s.tmp.%ld", dst, (long)getpid());
	unlink(tmp);
	int rc = copy_file(src, tmp, err);
	if (!rc && rename(tmp, dst) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot rename '%s'", tmp);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* Links (or copies) pack `name` from srcdir to dstdir: the .pack first, so
 * that an index never names a pack that is not there (libgit2 ignores a
 * pack without its index, not an index without its pack). */
static int link_pack(const char *srcdir, const char *dstdir, const char *name, cbl_error **err)
{
	int rc = 0;
	for (int k = 0; k < 2 && !rc; k++) {
		char *a = cbl_xasprintf("%s/%s.%s", srcdir, name, k ? "idx" : "pack");
		char *b = cbl_xasprintf("%s/%s.%s", dstdir, name, k ? "idx" : "pack");
		rc = link_or_copy(a, b, err);
		free(a);
		free(b);
	}
	return rc;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A pack and its index look whole: the index's header, the pack's header,
 * and the pack checksum the index records equal to the pack's trailer (a
 * truncated or replaced file fails this without reading the whole pack). */
static bool pack_ok(const char *packdir, const char *name, unsigned *count)
{
	char *ip = cbl_xasprintf("%s/%s.idx", packdir, name), *pp = cbl_xasprintf("%s/%s.pack", packdir, name);
	int ifd = open(ip, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), pfd = open(pp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	bool ok = false;
	struct stat ist, pst;
	unsigned char hdr[8], fan[4], itrail[40], ptrail[20], pmagic[4];
	if (ifd < 0 || pfd < 0 || fstat(ifd, &ist) < 0 || fstat(pfd, &pst) < 0 || !S_ISREG(ist.st_mode) ||
	    !S_ISREG(pst.st_mode) || ist.st_size < 8 + 1024 + 40 || pst.st_size < 32)
		goto out;
	if (pread(ifd, hdr, 8, 0) != 8 || memcmp(hdr, "\377tOc\0\0\0\2", 8) ||
	    pread(ifd, fan, 4, 8 + 255 * 4) != 4 || pread(ifd, itrail, 40, ist.st_size - 40) != 40 ||
	    pread(pfd, pmagic, 4, 0) != 4 || memcmp(pmagic, "PACK", 4) ||
	    pread(pfd, ptrail, 20, pst.st_size - 20) != 20 || memcmp(itrail, ptrail, 20))
		goto out;
	*count = be32(fan);
	ok = true;
out:
	if (ifd >= 0)
		close(ifd);
	if (pfd >= 0)
		close(pfd);
	free(ip);
	free(pp);
	return ok;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "pack-*" names in dir that have both files (sorted). */
static int list_packs(const char *dir, cbl_strv *out)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (strncmp(e->d_name, "pack-", 5) || l < 9 || strcmp(e->d_name + l - 4, ".idx"))
			continue;
		char *name = cbl_xstrndup(e->d_name, l - 4);
		char *pack = cbl_xasprintf("%s/%s.pack", dir, name);
		struct stat st;
		if (lstat(pack, &st) == 0)
			cbl_strv_push_take(out, name);
		else
			free(name);
		free(pack);
	}
	closedir(d);
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	return 0;
}

typedef struct refent {
	char *name;
	char hex[GIT_OID_SHA1_HEXSIZE + 1];
} refent;

typedef struct reflist {
	refent *v;
	size_t n, cap;
} reflist;

static void reflist_release(reflist *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static void reflist_set(reflist *r, const char *name, const char *hex)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].name, name)) {
			snprintf(r->v[i].hex, sizeof(r->v[i].hex), "%s", hex);
			return;
		}
	if (r->n >= MAX_REFS)
		return;
	CBL_GROW(r->v, r->n + 1, r->cap);
	r->v[r->n].name = cbl_xstrdup(name);
	snprintf(r->v[r->n].hex, sizeof(r->v[r->n].hex), "%s", hex);
	r->n++;
}

static int cmp_ref(const void *a, const void *b)
{
	return strcmp(((const refent *)a)->name, ((const refent *)b)->name);
}

static bool valid_refname(const char *s, size_t n)
{
	if (n < 6 || strncmp(s, "refs/", 5))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/* packed-refs: "# ..." header, "<hex> <name>" and "^<hex>" (peeled) lines. */
static bool parse_packed_refs(const char *data, reflist *out)
{
	const char *s = data;
	while (*s) {
		size_t l = strcspn(s, "\n");
		if (l && s[0] != '#') {
			if (s[0] == '^') {
				if (!is_hex40(s + 1, l - 1))
					return false;
			} else {
				if (l < GIT_OID_SHA1_HEXSIZE + 2 || !is_hex40(s, GIT_OID_SHA1_HEXSIZE) ||
				    s[GIT_OID_SHA1_HEXSIZE] != ' ' ||
				    !valid_refname(s + GIT_OID_SHA1_HEXSIZE + 1, l - GIT_OID_SHA1_HEXSIZE - 1))
					return false;
				char *name = cbl_xstrndup(s + GIT_OID_SHA1_HEXSIZE + 1, l - GIT_OID_SHA1_HEXSIZE - 1);
				char hex[GIT_OID_SHA1_HEXSIZE + 1];
				memcpy(hex, s, GIT_OID_SHA1_HEXSIZE);
				hex[GIT_OID_SHA1_HEXSIZE] = '\0';
				reflist_set(out, name, hex);
				free(name);
			}
		}
		s += l;
		if (*s)
			s++;
	}
	return true;
}

static char *packed_refs_text(reflist *r)
{
	cbl_buf b = CBL_BUF_INIT;
	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), cmp_ref);
	cbl_buf_puts(&b, "# pack-refs with: sorted \n");
	for (size_t i = 0; i < r->n; i++)
		cbl_buf_printf(&b, "%s %s\n", r->v[i].hex, r->v[i].name);
	return cbl_buf_detach(&b);
}

/* ------------------------------------------------------------- inspect --- */

typedef struct view {
	cbl_strv packs;
	unsigned objects;
	source_shallow shallow;
	reflist refs;
} view;

static void view_release(view *v)
{
	cbl_strv_release(&v->packs);
	source_shallow_release(&v->shallow);
	reflist_release(&v->refs);
	memset(v, 0, sizeof(*v));
}

enum { STORE_OK = 0, STORE_MISSING = 1, STORE_BAD = 2 };

/* Reads the store at dir into v.  STORE_BAD sets *why. */
static int inspect(const char *dir, view *v, char **why)
{
	struct stat st;
	char *p = NULL, *data = NULL;
	size_t len = 0;
	int rc = STORE_OK;
	memset(v, 0, sizeof(*v));
	*why = NULL;
	if (lstat(dir, &st) < 0) {
		if (errno == ENOENT)
			return STORE_MISSING;
		*why = cbl_xasprintf("cannot access it: %s", strerror(errno));
		return STORE_BAD;
	}
	if (!S_ISDIR(st.st_mode)) {
		*why = cbl_xstrdup("not a directory");
		return STORE_BAD;
	}
	p = cbl_path_join(dir, "HEAD");
	if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = cbl_xstrdup("no HEAD");
		rc = STORE_BAD;
		goto out;
	}
	free(p);
	p = cbl_path_join(dir, "objects/pack");
	if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode) || list_packs(p, &v->packs) < 0) {
		*why = cbl_xstrdup("no objects/pack directory");
		rc = STORE_BAD;
		goto out;
	}
	for (size_t i = 0; i < v->packs.n; i++) {
		unsigned n = 0;
		if (!pack_ok(p, v->packs.v[i], &n)) {
			*why = cbl_xasprintf("%s is damaged", v->packs.v[i]);
			rc = STORE_BAD;
			goto out;
		}
		v->objects += n;
	}
	int sr = source_shallow_read(&v->shallow, dir, NULL);
	if (sr < 0) {
		*why = cbl_xstrdup(sr == CBL_EINVAL ? "its shallow file is damaged" : "its shallow file is unreadable");
		rc = STORE_BAD;
		goto out;
	}
	free(p);
	p = cbl_path_join(dir, "packed-refs");
	if (cbl_read_regular_file(p, 64 << 20, &data, &len, NULL) == 0) {
		if (strlen(data) != len || !parse_packed_refs(data, &v->refs)) {
			*why = cbl_xstrdup("its packed-refs file is damaged");
			rc = STORE_BAD;
			goto out;
		}
	} else if (lstat(p, &st) == 0) {
		*why = cbl_xstrdup("its packed-refs file is unreadable");
		rc = STORE_BAD;
		goto out;
	}
out:
	free(p);
	free(data);
	if (rc != STORE_OK)
		view_release(v);
	return rc;
}

/* ---------------------------------------------------------------- lock --- */

static int lock_wait(source_cache *sc, int op, source_cache_stop_fn stop, void *payload, cbl_error **err)
{
	int64_t start = cbl_mono_us();
	for (;;) {
		if (flock(sc->lockfd, op | LOCK_NB) == 0) {
			sc->locked = op;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot lock '%s'", sc->lockpath);
		if (stop && stop(payload))
			return cbl_error_set(err, CBL_ESTOPPED, "stopped while waiting for the source cache");
		if (cbl_mono_us() - start > LOCK_WAIT_US)
			return cbl_error_set(err, CBL_EIO, "the source cache stayed locked by another build");
		usleep(LOCK_POLL_US);
	}
}

void source_cache_unlock(source_cache *sc)
{
	if (sc && sc->locked) {
		flock(sc->lockfd, LOCK_UN);
		sc->locked = 0;
	}
}

/* --------------------------------------------------------- lifecycle --- */

/* Leftovers of killed creators and discarders of this store (exclusive lock
 * held: no live creator; a live discarder's pid is alive). */
static void remove_leftovers(source_cache *sc)
{
	DIR *d = opendir(sc->root);
	if (!d)
		return;
	char *pfx_new = cbl_xasprintf("%s.new.", sc->key), *pfx_trash = cbl_xasprintf("%s.trash.", sc->key);
	cbl_strv gone = CBL_STRV_INIT;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strncmp(e->d_name, pfx_new, strlen(pfx_new)) ||
		    (!strncmp(e->d_name, pfx_trash, strlen(pfx_trash)) && !pid_alive(e->d_name, ".trash.")))
			cbl_strv_push_take(&gone, cbl_path_join(sc->root, e->d_name));
	}
	closedir(d);
	for (size_t i = 0; i < gone.n; i++)
		cbl_rm_rf(gone.v[i], NULL);
	cbl_strv_release(&gone);
	free(pfx_new);
	free(pfx_trash);
}

/* Exclusive lock held: moves the store aside and removes it. */
static void trash_store(source_cache *sc)
{
	char uuid[37];
	cbl_uuid4(uuid);
	uuid[8] = '\0';
	char *trash = cbl_xasprintf("%s/%s.trash.%ld.%s", sc->root, sc->key, (long)getpid(), uuid);
	if (rename(sc->dir, trash) == 0)
		cbl_rm_rf(trash, NULL);
	else
		cbl_rm_rf(sc->dir, NULL);
	free(trash);
}

/* Exclusive lock held, no store: an empty bare repository, renamed into place. */
static int create_store(source_cache *sc, cbl_error **err)
{
	char uuid[37];
	cbl_uuid4(uuid);
	uuid[8] = '\0';
	char *tmp = cbl_xasprintf("%s/%s.new.%ld.%s", sc->root, sc->key, (long)getpid(), uuid);
	git_repository *r = NULL;
	git_repository_init_options io = GIT_REPOSITORY_INIT_OPTIONS_INIT;
	io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_NO_REINIT | GIT_REPOSITORY_INIT_MKDIR;
	int rc = 0;
	char *pack = NULL;
	if (git_repository_init_ext(&r, tmp, &io) < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EIO, "cannot create the source cache '%s': %s", sc->dir,
				   ge && ge->message ? ge->message : "unknown error");
		goto out;
	}
	git_repository_free(r);
	pack = cbl_path_join(tmp, "objects/pack");
	if (cbl_mkdir_p(pack, 0755, err) < 0) {
		rc = CBL_EIO;
		goto out;
	}
	if (rename(tmp, sc->dir) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create the source cache '%s'", sc->dir);
		goto out;
	}
out:
	if (rc)
		cbl_rm_rf(tmp, NULL);
	free(pack);
	free(tmp);
	return rc;
}

static void take_view(source_cache *sc, view *v)
{
	cbl_strv_release(&sc->packs);
	cbl_strv_release(&sc->haves);
	source_shallow_release(&sc->shallow);
	sc->packs = v->packs;
	memset(&v->packs, 0, sizeof(v->packs));
	sc->objects = v->objects;
	sc->shallow = v->shallow;
	memset(&v->shallow, 0, sizeof(v->shallow));
	/* refs/cbl/last (the previous build's commit) first: libgit2 offers
	 * haves newest first anyway, this only matters for the cap */
	source_oidset seen = {0};
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < v->refs.n && sc->haves.n < MAX_HAVES; i++) {
			bool last = !strcmp(v->refs.v[i].name, "refs/cbl/last");
			if (last != (pass == 0))
				continue;
			git_oid o;
			if (git_oid_fromstr(&o, v->refs.v[i].hex) == 0 && source_oidset_add(&seen, &o))
				cbl_strv_push(&sc->haves, v->refs.v[i].hex);
		}
	source_oidset_release(&seen);
	struct stat st;
	if (stat(sc->dir, &st) == 0) {
		sc->dev = st.st_dev;
		sc->ino = st.st_ino;
	}
}

int source_cache_open(source_cache **out, const char *root, const char *url, source_cache_stop_fn stop,
			 void *payload, char **rebuilt, cbl_error **err)
{
	source_cache *sc = cbl_xcalloc(1, sizeof(*sc));
	view v = {0};
	char *why = NULL;
	int rc = 0;

	*out = NULL;
	*rebuilt = NULL;
	sc->lockfd = -1;
	sc->root = cbl_xstrdup(root);
	sc->key = source_cache_key(url);
	sc->dir = cbl_path_join(root, sc->key);
	sc->lockpath = cbl_xasprintf("%s/%s.lock", root, sc->key);
	if ((rc = cbl_mkdir_p(root, 0755, err)) < 0)
		goto out;
	sc->lockfd = open(sc->lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (sc->lockfd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", sc->lockpath);
		goto out;
	}
	for (int attempt = 0;; attempt++) {
		if ((rc = lock_wait(sc, LOCK_SH, stop, payload, err)) < 0)
			goto out;
		int st = inspect(sc->dir, &v, &why);
		if (st == STORE_OK)
			break;
		if (attempt >= 3) {
			rc = cbl_error_set(err, CBL_EIO, "the source cache '%s' cannot be set up%s%s", sc->dir,
					   why ? ": " : "", why ? why : "");
			goto out;
		}
		free(why);
		why = NULL;
		/* flock converts by unlocking first: look again once exclusive */
		source_cache_unlock(sc);
		if ((rc = lock_wait(sc, LOCK_EX, stop, payload, err)) < 0)
			goto out;
		st = inspect(sc->dir, &v, &why);
		if (st == STORE_BAD) {
			if (!*rebuilt)
				*rebuilt = why;
			else
				free(why);
			why = NULL;
			trash_store(sc);
			st = STORE_MISSING;
		}
		view_release(&v);
		if (st == STORE_MISSING) {
			remove_leftovers(sc);
			if ((rc = create_store(sc, err)) < 0)
				goto out;
		}
		source_cache_unlock(sc);
	}
	take_view(sc, &v);
	*out = sc;
	sc = NULL;
out:
	view_release(&v);
	free(why);
	if (rc < 0 && *rebuilt) {
		free(*rebuilt);
		*rebuilt = NULL;
	}
	source_cache_free(sc);
	return rc;
}

bool source_cache_empty(const source_cache *sc) { return sc->packs.n == 0; }
bool source_cache_shallow(const source_cache *sc) { return sc->shallow.n > 0; }

void source_cache_discard(source_cache *sc)
{
	if (!sc || sc->lockfd < 0)
		return;
	source_cache_unlock(sc);
	if (lock_wait(sc, LOCK_EX, NULL, NULL, NULL) < 0)
		return;
	struct stat st;
	if (stat(sc->dir, &st) == 0 && st.st_dev == sc->dev && st.st_ino == sc->ino)
		trash_store(sc);
	source_cache_unlock(sc);
}

void source_cache_free(source_cache *sc)
{
	if (!sc)
		return;
	source_cache_unlock(sc);
	if (sc->lockfd >= 0)
		close(sc->lockfd);
	free(sc->root);
	free(sc->key);
	free(sc->dir);
	free(sc->lockpath);
	source_shallow_release(&sc->shallow);
	cbl_strv_release(&sc->packs);
	cbl_strv_release(&sc->haves);
	free(sc);
}

/* ---------------------------------------------------------------- seed --- */

/* The haves of a fetch that deepens: the refs' commits (the previous build's
 * first) and their history breadth-first, MAX_SHALLOW_HAVES commits in all;
 * those whose parents did not fit become shallow roots (added to bnd), so
 * libgit2's walk yields exactly these commits.  Unreadable objects are the
 * store's damage: an error. */
static int shallow_haves(source_cache *sc, git_odb *odb, cbl_strv *haves, source_shallow *bnd, cbl_error **err)
{
	source_oidset seen = {0};
	git_oid q[MAX_SHALLOW_HAVES];
	size_t qn = 0;
	int rc = 0;
	for (size_t i = 0; i < sc->haves.n && qn < MAX_SHALLOW_HAVES; i++) {
		git_oid id, commit;
		int r = git_oid_fromstr(&id, sc->haves.v[i]) < 0 ? 0 : source_odb_peel(odb, &id, &commit);
		if (r < 0) {
			rc = -1;
			goto out;
		}
		if (r == 1 && source_oidset_add(&seen, &commit)) {
			char hex[GIT_OID_MAX_HEXSIZE + 1];
			git_oid_cpy(&q[qn++], &commit);
			git_oid_tostr(hex, sizeof(hex), &commit);
			cbl_strv_push(haves, hex);
		}
	}
	for (size_t i = 0; i < qn; i++) {
		git_oid *par = NULL;
		size_t np = 0, fresh = 0;
		if (source_shallow_has(bnd, &q[i]))
			continue; /* already a root */
		if (source_odb_parents(odb, &q[i], &par, &np) < 0) {
			rc = -1;
			goto out;
		}
		bool all = true;
		for (size_t k = 0; k < np; k++) {
			if (!git_odb_exists_ext(odb, &par[k], GIT_ODB_LOOKUP_NO_REFRESH))
				all = false;
			else if (!source_oidset_has(&seen, &par[k]))
				fresh++;
		}
		if (np && (!all || qn + fresh > MAX_SHALLOW_HAVES)) {
			source_shallow_add(bnd, &q[i]);
		} else {
			for (size_t k = 0; k < np; k++)
				if (source_oidset_add(&seen, &par[k]))
					git_oid_cpy(&q[qn++], &par[k]);
		}
		free(par);
	}
out:
	source_oidset_release(&seen);
	git_error_clear();
	if (rc < 0)
		rc = cbl_error_set(err, CBL_EIO, "the cached objects cannot be read");
	return rc;
}

int source_cache_seed(source_cache *sc, git_repository *repo, bool tips_shallow, unsigned *objects,
			 bool *shallow, cbl_error **err)
{
	const char *gitdir = git_repository_path(repo);
	char *dst = cbl_path_join(gitdir, "objects/pack");
	char *src = cbl_path_join(sc->dir, "objects/pack");
	char *p = NULL;
	cbl_strv haves = CBL_STRV_INIT;
	source_shallow bnd = {0};
	git_odb *odb = NULL;
	int rc = 0;

	*objects = 0;
	*shallow = false;
	if ((rc = cbl_mkdir_p(dst, 0755, err)) < 0)
		goto out;
	for (size_t i = 0; i < sc->packs.n; i++)
		if ((rc = link_pack(src, dst, sc->packs.v[i], err)) < 0)
			goto out;
	*objects = sc->objects;
	if (git_repository_odb(&odb, repo) < 0 || git_odb_refresh(odb) < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EIO, "cannot load the cached objects: %s",
				   ge && ge->message ? ge->message : "unknown error");
		goto out;
	}
	source_shallow_merge(&bnd, &sc->shallow);
	if (tips_shallow && (rc = shallow_haves(sc, odb, &haves, &bnd, err)) < 0)
		goto out;
	if (!tips_shallow) {
		for (size_t i = 0; i < sc->haves.n; i++)
			cbl_strv_push(&haves, sc->haves.v[i]);
	}
	if (bnd.n) {
		if ((rc = source_shallow_write(&bnd, gitdir, err)) < 0)
			goto out;
		*shallow = true;
	}
	if (haves.n) {
		struct stat st;
		p = cbl_path_join(gitdir, "packed-refs");
		if (lstat(p, &st) == 0)
			goto out; /* not a fresh repository: its own refs will do */
		cbl_buf b = CBL_BUF_INIT;
		cbl_buf_puts(&b, "# pack-refs with: sorted \n");
		for (size_t i = 0; i < haves.n; i++)
			cbl_buf_printf(&b, "%s " HAVE_PREFIX "%06zu\n", haves.v[i], i);
		rc = cbl_write_file_atomic(p, b.ptr, b.len, 0644, false, err);
		cbl_buf_release(&b);
	}
out:
	git_odb_free(odb);
	source_shallow_release(&bnd);
	cbl_strv_release(&haves);
	free(p);
	free(dst);
	free(src);
	return rc;
}

int source_cache_drop_haves(git_repository *repo, cbl_error **err)
{
	const char *gitdir = git_repository_path(repo);
	char *p = cbl_path_join(gitdir, "packed-refs"), *loose = cbl_path_join(gitdir, "refs/cbl-have");
	char *data = NULL;
	size_t len = 0;
	int rc = 0;
	cbl_rm_rf(loose, NULL);
	if (cbl_read_regular_file(p, 0, &data, &len, NULL) < 0)
		goto out;
	cbl_buf b = CBL_BUF_INIT;
	const char *s = data;
	bool skipping = false, changed = false;
	while (*s) {
		size_t l = strcspn(s, "\n");
		bool drop = false;
		if (l && s[0] == '^')
			drop = skipping;
		else if (l > GIT_OID_SHA1_HEXSIZE + 1 && s[0] != '#')
			drop = skipping = !strncmp(s + GIT_OID_SHA1_HEXSIZE + 1, HAVE_PREFIX, strlen(HAVE_PREFIX));
		else
			skipping = false;
		if (drop) {
			changed = true;
		} else {
			cbl_buf_append(&b, s, l);
			cbl_buf_putc(&b, '\n');
		}
		s += l;
		if (*s)
			s++;
	}
	if (changed)
		rc = cbl_write_file_atomic(p, cbl_buf_cstr(&b), b.len, 0644, false, err);
	cbl_buf_release(&b);
out:
	free(data);
	free(p);
	free(loose);
	return rc;
}

/* ------------------------------------------------------------- publish --- */

/* The store's name for a clone's ref, or NULL to leave it out. */
static char *store_ref_name(const char *name)
{
	if (!strncmp(name, "refs/remotes/origin/", 20))
		return strcmp(name + 20, "HEAD") ? cbl_xasprintf("refs/heads/%s", name + 20) : NULL;
	if (!strncmp(name, "refs/heads/", 11) || !strncmp(name, "refs/remotes/", 13) ||
	    !strncmp(name, HAVE_PREFIX, strlen(HAVE_PREFIX)) || !strncmp(name, "refs/cbl/", 9))
		return NULL;
	if (!strncmp(name, "refs/", 5))
		return cbl_xstrdup(name);
	return NULL;
}

/* Temporary files of killed publishers ("<name>.tmp.<pid>"). */
static void remove_stale_tmp(const char *packdir)
{
	DIR *d = opendir(packdir);
	if (!d)
		return;
	cbl_strv gone = CBL_STRV_INIT;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp.") && !pid_alive(e->d_name, ".tmp."))
			cbl_strv_push_take(&gone, cbl_path_join(packdir, e->d_name));
	closedir(d);
	for (size_t i = 0; i < gone.n; i++)
		unlink(gone.v[i]);
	cbl_strv_release(&gone);
}

/* Exclusive lock held: the store's shallow file becomes those commits of
 * `bnd` that are present with a parent missing. */
static int narrow_shallow(source_cache *sc, const source_shallow *bnd, cbl_error **err)
{
	char *objects = cbl_path_join(sc->dir, "objects");
	source_shallow keep = {0};
	git_odb *odb = NULL;
	int rc = 0;
	if (git_odb_open(&odb, objects) < 0) {
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EIO, "cannot open the source cache's objects: %s",
				   ge && ge->message ? ge->message : "unknown error");
		goto out;
	}
	for (size_t i = 0; i < bnd->n; i++) {
		git_oid *par = NULL;
		size_t np = 0;
		int r = source_odb_parents(odb, &bnd->v[i], &par, &np);
		bool k = r < 0; /* unreadable: stay conservative */
		for (size_t j = 0; r > 0 && j < np && !k; j++)
			k = !git_odb_exists_ext(odb, &par[j], GIT_ODB_LOOKUP_NO_REFRESH);
		if (k)
			source_shallow_add(&keep, &bnd->v[i]);
		free(par);
	}
	git_error_clear();
	rc = source_shallow_write(&keep, sc->dir, err);
out:
	git_odb_free(odb);
	source_shallow_release(&keep);
	free(objects);
	return rc;
}

/* What a repack keeps: the refs' annotated tags, and every commit the refs
 * reach (with its tree) down to the shallow boundary.  The walk is ours:
 * libgit2's revwalk does not stop at a repository's shallow roots. */
static int repack_insert(git_odb *odb, git_packbuilder *pb, const reflist *refs, const source_shallow *roots)
{
	source_oidset seen = {0};
	git_oid *q = NULL;
	size_t qn = 0, qcap = 0;
	int rc = 0;
	for (size_t i = 0; i < refs->n && !rc; i++) {
		git_oid id;
		if (git_oid_fromstr(&id, refs->v[i].hex) < 0)
			continue;
		for (int depth = 0; depth < 8; depth++) {
			git_odb_object *obj = NULL;
			if (git_odb_read(&obj, odb, &id) < 0) {
				rc = -1;
				break;
			}
			git_object_t t = git_odb_object_type(obj);
			const char *d = git_odb_object_data(obj);
			size_t len = git_odb_object_size(obj);
			bool tag = t == GIT_OBJECT_TAG && len > 7 + GIT_OID_SHA1_HEXSIZE && !memcmp(d, "object ", 7);
			if (t == GIT_OBJECT_COMMIT && source_oidset_add(&seen, &id)) {
				CBL_GROW(q, qn + 1, qcap);
				git_oid_cpy(&q[qn++], &id);
			}
			if (tag && git_packbuilder_insert(pb, &id, NULL) < 0)
				rc = -1;
			if (tag && git_oid_fromstrn(&id, d + 7, GIT_OID_SHA1_HEXSIZE) < 0)
				tag = false;
			git_odb_object_free(obj);
			if (!tag || rc)
				break;
		}
	}
	for (size_t i = 0; i < qn && !rc; i++) {
		git_oid *par = NULL;
		size_t np = 0;
		if (git_packbuilder_insert_commit(pb, &q[i]) < 0 || source_odb_parents(odb, &q[i], &par, &np) < 0) {
			rc = -1;
		} else if (!source_shallow_has(roots, &q[i])) { /* a shallow root's parents are not ours */
			for (size_t k = 0; k < np; k++) {
				if (git_odb_exists_ext(odb, &par[k], GIT_ODB_LOOKUP_NO_REFRESH) && source_oidset_add(&seen, &par[k])) {
					CBL_GROW(q, qn + 1, qcap);
					git_oid_cpy(&q[qn++], &par[k]);
				}
			}
		}
		free(par);
	}
	free(q);
	source_oidset_release(&seen);
	return rc;
}

/* Exclusive lock held: one pack of everything the refs reach (down to the
 * shallow boundary, see repack_insert), then the
 * other packs, the refs whose objects went with them and the boundary
 * entries of commits no longer there are removed.  Objects no ref reaches
 * are dropped: they could not be offered as haves anyway. */
static int consolidate(source_cache *sc, cbl_error **err)
{
	char *packdir = cbl_path_join(sc->dir, "objects/pack"), *keep = NULL;
	char *rpath = cbl_path_join(sc->dir, "packed-refs");
	char *data = NULL, *text = NULL;
	size_t len = 0;
	cbl_strv old = CBL_STRV_INIT;
	source_shallow bnd = {0};
	reflist refs = {0}, kept = {0};
	git_repository *r = NULL;
	git_packbuilder *pb = NULL;
	git_odb *odb = NULL;
	int rc = 0;

	if (list_packs(packdir, &old) < 0 || cbl_read_regular_file(rpath, 64 << 20, &data, &len, NULL) < 0 ||
	    !parse_packed_refs(data, &refs))
		goto fail;
	if (source_shallow_read(&bnd, sc->dir, NULL) < 0)
		goto fail;
	if (git_repository_open_bare(&r, sc->dir) < 0 || git_repository_odb(&odb, r) < 0 ||
	    git_packbuilder_new(&pb, r) < 0 || repack_insert(odb, pb, &refs, &bnd) < 0)
		goto fail;
	if (git_packbuilder_write(pb, packdir, 0, NULL, NULL) < 0 || !git_packbuilder_name(pb))
		goto fail;
	keep = cbl_xasprintf("pack-%s", git_packbuilder_name(pb));
	unsigned count = 0;
	if (!pack_ok(packdir, keep, &count))
		goto fail;
	for (size_t i = 0; i < old.n; i++) {
		if (!strcmp(old.v[i], keep))
			continue;
		for (int k = 0; k < 2; k++) { /* the index first: a pack alone is ignored */
			char *f = cbl_xasprintf("%s/%s.%s", packdir, old.v[i], k ? "pack" : "idx");
			unlink(f);
			free(f);
		}
	}
	if (git_odb_refresh(odb) < 0)
		goto fail;
	for (size_t i = 0; i < refs.n; i++) {
		git_oid id;
		if (git_oid_fromstr(&id, refs.v[i].hex) == 0 && git_odb_exists(odb, &id))
			reflist_set(&kept, refs.v[i].name, refs.v[i].hex);
	}
	git_error_clear();
	text = packed_refs_text(&kept);
	if ((rc = cbl_write_file_atomic(rpath, text, strlen(text), 0644, false, err)) < 0)
		goto out;
	if (bnd.n)
		rc = narrow_shallow(sc, &bnd, err);
	goto out;
fail:
	{
		const git_error *ge = git_error_last();
		rc = cbl_error_set(err, CBL_EIO, "cannot repack the source cache: %s",
				   ge && ge->message ? ge->message : "unreadable");
	}
out:
	git_odb_free(odb);
	git_packbuilder_free(pb);
	git_repository_free(r);
	reflist_release(&refs);
	reflist_release(&kept);
	cbl_strv_release(&old);
	source_shallow_release(&bnd);
	free(packdir);
	free(keep);
	free(rpath);
	free(data);
	free(text);
	return rc;
}

/* Exclusive lock held: reads the store into v, first (re)creating it when
 * it is missing or fails its checks. */
static int publish_view(source_cache *sc, view *v, cbl_error **err)
{
	char *why = NULL;
	int rc = 0;
	int st = inspect(sc->dir, v, &why);
	if (st == STORE_BAD) {
		trash_store(sc);
		st = STORE_MISSING;
	}
	if (st == STORE_MISSING) {
		remove_leftovers(sc);
		if ((rc = create_store(sc, err)) < 0)
			goto out;
		view_release(v);
		free(why);
		why = NULL;
		if (inspect(sc->dir, v, &why) != STORE_OK)
			rc = cbl_error_set(err, CBL_EIO, "the source cache '%s' cannot be set up", sc->dir);
	}
out:
	free(why);
	return rc;
}

/* Links into dstpack the packs of srcpack that v lacks and that are sound
 * and not empty; *added counts them. */
static int publish_packs(const view *v, const char *srcpack, const char *dstpack, size_t *added, cbl_error **err)
{
	cbl_strv mine = CBL_STRV_INIT;
	int rc = 0;
	if (list_packs(srcpack, &mine) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot list '%s'", srcpack);
		goto out;
	}
	for (size_t i = 0; i < mine.n; i++) {
		bool have = false;
		unsigned count = 0;
		for (size_t j = 0; j < v->packs.n && !have; j++)
			have = !strcmp(v->packs.v[j], mine.v[i]);
		if (have || !pack_ok(srcpack, mine.v[i], &count) || !count)
			continue; /* known, damaged, or empty (a fetch that found nothing new) */
		(*added)++;
		if ((rc = link_pack(srcpack, dstpack, mine.v[i], err)) < 0)
			goto out;
	}
out:
	cbl_strv_release(&mine);
	return rc;
}

/* The store's packed-refs: refs (what it had) updated with repo's refs
 * under their store names, and refs/cbl/last = target. */
static int publish_refs(const source_cache *sc, git_repository *repo, reflist *refs, const git_oid *target,
			cbl_error **err)
{
	char *rpath = cbl_path_join(sc->dir, "packed-refs"), *text = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	char hex[GIT_OID_MAX_HEXSIZE + 1];
	if (git_reference_iterator_new(&it, repo) == 0) {
		while (git_reference_next(&ref, it) == 0) {
			char *name = NULL;
			if (git_reference_type(ref) == GIT_REFERENCE_DIRECT &&
			    (name = store_ref_name(git_reference_name(ref)))) {
				git_oid_tostr(hex, sizeof(hex), git_reference_target(ref));
				reflist_set(refs, name, hex);
			}
			free(name);
			git_reference_free(ref);
			ref = NULL;
		}
	}
	git_reference_iterator_free(it);
	git_error_clear();
	if (target) {
		git_oid_tostr(hex, sizeof(hex), target);
		reflist_set(refs, "refs/cbl/last", hex);
	}
	text = packed_refs_text(refs);
	int rc = cbl_write_file_atomic(rpath, text, strlen(text), 0644, false, err);
	free(text);
	free(rpath);
	return rc;
}

int source_cache_publish(source_cache *sc, git_repository *repo, const source_shallow *fetched,
			 const git_oid *target, source_cache_stop_fn stop, void *payload, cbl_error **err)
{
	view v = {0};
	source_shallow wide = {0};
	char *dstpack = cbl_path_join(sc->dir, "objects/pack");
	char *srcpack = cbl_path_join(git_repository_path(repo), "objects/pack");
	size_t added = 0;
	int rc = 0;

	source_cache_unlock(sc);
	if ((rc = lock_wait(sc, LOCK_EX, stop, payload, err)) < 0)
		goto out;
	if ((rc = publish_view(sc, &v, err)) < 0)
		goto out;
	remove_stale_tmp(dstpack);

	/* 1. the boundary, widened */
	source_shallow_merge(&wide, &v.shallow);
	if (fetched)
		source_shallow_merge(&wide, fetched);
	if ((rc = source_shallow_write(&wide, sc->dir, err)) < 0)
		goto out;
	/* 2. the packs it lacks, .idx last */
	if ((rc = publish_packs(&v, srcpack, dstpack, &added, err)) < 0)
		goto out;
	/* 3. refs */
	if ((rc = publish_refs(sc, repo, &v.refs, target, err)) < 0)
		goto out;
	/* 4. the boundary, only where parents are missing */
	if (wide.n && (rc = narrow_shallow(sc, &wide, err)) < 0)
		goto out;
	/* 5. one pack instead of many, now and then */
	if (v.packs.n + added > MAX_PACKS && v.objects <= MAX_REPACK_OBJECTS)
		consolidate(sc, NULL); /* best effort: the store is sound either way */
out:
	source_cache_unlock(sc);
	view_release(&v);
	source_shallow_release(&wide);
	free(dstpack);
	free(srcpack);
	return rc;
}

/* ----------------------------------------------------------- ls / prune --- */

static bool is_store_name(const char *n)
{
	return strlen(n) == 64 && strspn(n, "0123456789abcdef") == 64;
}

static uint64_t tree_size(int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	uint64_t n = (uint64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode))
		return n;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return n;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n += tree_size(dirfd(d), de->d_name);
	closedir(d);
	return n;
}

int source_cache_list(const char *root, cbl_strv *out, cbl_error **err)
{
	DIR *d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : cbl_error_set_errno(err, CBL_EIO, errno, "cannot read %s", root);
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (!is_store_name(de->d_name) || fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		long long us = (long long)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
		cbl_strv_push_take(out, cbl_xasprintf("%s\t%llu\t%lld", de->d_name,
						       (unsigned long long)tree_size(dirfd(d), de->d_name), us));
	}
	closedir(d);
	return 0;
}

int source_cache_prune(const char *root, int64_t older_than_ms, size_t *removed, uint64_t *bytes,
			  cbl_error **err)
{
	cbl_strv stores = CBL_STRV_INIT;
	int rc = source_cache_list(root, &stores, err);
	long long now = (long long)cbl_now_us();
	for (size_t i = 0; !rc && i < stores.n; i++) {
		char key[65];
		unsigned long long size = 0;
		long long mtime = 0;
		if (sscanf(stores.v[i], "%64[0-9a-f]\t%llu\t%lld", key, &size, &mtime) != 3)
			continue;
		if (older_than_ms > 0 && now - mtime < older_than_ms * 1000)
			continue;
		char *lock = cbl_xasprintf("%s/%s.lock", root, key);
		int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
			/* out of the way first: a build that opens it next finds it gone */
			char *dir = cbl_xasprintf("%s/%s", root, key);
			char *gone = cbl_xasprintf("%s/.pruned-%s-%ld", root, key, (long)getpid());
			if (rename(dir, gone) == 0) {
				cbl_rm_rf(gone, NULL);
				unlink(lock);
				*removed += 1;
				*bytes += size;
			}
			free(dir);
			free(gone);
		}
		if (fd >= 0)
			close(fd);
		free(lock);
	}
	cbl_strv_release(&stores);
	return rc;
}
