/* source/pack.c - writes a pack of chosen objects, and its index, from an
 * object database (source/source_internal.h); the local fast path
 * (local.c) copies a depth window with it.
 *
 * Why not git_packbuilder: it searches for deltas among the objects (a
 * window of 10 per object), which costs seconds on a checkout of a few
 * thousand files, where `git clone --depth 1` of a local repository
 * reuses the source's compressed data and spends ~0.2 s.  A clone made for
 * one build gains little from deltas (one version of each file), so every
 * object is stored whole, deflated at zlib's fastest level.
 *
 * Why the index is written here and not by git_indexer: the indexer
 * inflates and hashes every object again to learn what this file already
 * knows (each id, offset and CRC-32).  The formats (pack version 2, index
 * version 2) are git's Documentation/gitformat-pack.txt; `git fsck` and
 * `git verify-pack` check what is written here in the tests.
 */
#include "source/source_internal.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <git2/sys/errors.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/banned.h"

#define PACK_ZLEVEL Z_NO_COMPRESSION
#define OUT_BUF (256 * 1024)
#define PROGRESS_EVERY 64
/* zlib counts in uInt: larger objects are fed in parts */
#define ZCHUNK ((size_t)1 << 30)

typedef struct pack_entry {
	git_oid id;
	uint64_t offset;
	uint32_t crc;
} pack_entry;

typedef struct pack_out {
	int fd;
	const char *path; /* for messages */
	unsigned char *buf;
	size_t len;
	uint64_t written; /* bytes before buf */
	EVP_MD_CTX *sha;
	uint32_t crc; /* of the current entry */
	bool failed;
	int errnum;
} pack_out;

static void out_flush(pack_out *o)
{
	if (!o->len || o->failed)
		return;
	EVP_DigestUpdate(o->sha, o->buf, o->len);
	if (cbl_write_all(o->fd, o->buf, o->len) < 0) {
		o->failed = true;
		o->errnum = errno;
	}
	o->written += o->len;
	o->len = 0;
}

static void out_put(pack_out *o, const void *p, size_t n)
{
	o->crc = (uint32_t)crc32(o->crc, p, (uInt)n);
	if (o->len + n > OUT_BUF)
		out_flush(o);
	if (n > OUT_BUF) {
		EVP_DigestUpdate(o->sha, p, n);
		if (!o->failed && cbl_write_all(o->fd, p, n) < 0) {
			o->failed = true;
			o->errnum = errno;
		}
		o->written += n;
		return;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static uint64_t out_pos(const pack_out *o)
{
	return o->written + o->len;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* One entry: the type-and-size header, then the whole object deflated
 * (zlib output goes straight into the buffer). */
static int put_object(pack_out *o, z_stream *zs, git_object_t type, const unsigned char *data, size_t len)
{
	unsigned char hdr[16];
	size_t hl = 0, s = len;
	unsigned char b = (unsigned char)(((unsigned)type << 4) | (s & 15));
	for (s >>= 4; s; s >>= 7) {
		hdr[hl++] = b | 0x80;
		b = s & 0x7f;
	}
	hdr[hl++] = b;
	out_put(o, hdr, hl);
	if (deflateReset(zs) != Z_OK)
		return -1;
	size_t left = len;
	int zr;
	do {
		if (!zs->avail_in && left) {
			size_t part = left < ZCHUNK ? left : ZCHUNK;
			zs->next_in = (unsigned char *)(uintptr_t)(data + (len - left));
			zs->avail_in = (uInt)part;
			left -= part;
		}
		if (o->len == OUT_BUF)
			out_flush(o);
		unsigned char *dst = o->buf + o->len;
		zs->next_out = dst;
		zs->avail_out = (uInt)(OUT_BUF - o->len);
		zr = deflate(zs, left ? Z_NO_FLUSH : Z_FINISH);
		size_t made = (size_t)(zs->next_out - dst);
		o->crc = (uint32_t)crc32(o->crc, dst, (uInt)made);
		o->len += made;
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
			return -1;
	} while (zr != Z_STREAM_END);
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return git_oid_cmp(&((const pack_entry *)a)->id, &((const pack_entry *)b)->id);
}

/* Index version 2 of the pack whose trailer is pack_sha, written to fd. */
static int write_index(int fd, pack_entry *e, size_t n, const unsigned char *pack_sha, cbl_error **err)
{
	size_t nlarge = 0;
	for (size_t i = 0; i < n; i++)
		nlarge += e[i].offset >= 0x80000000u;
	size_t size = 8 + 256 * 4 + n * (GIT_OID_SHA1_SIZE + 4 + 4) + nlarge * 8 + 2 * GIT_OID_SHA1_SIZE;
	unsigned char *buf = cbl_xmalloc(size), *p = buf;
	memcpy(p, "\377tOc\0\0\0\2", 8);
	p += 8;
	size_t k = 0;
	for (unsigned f = 0; f < 256; f++) {
		while (k < n && e[k].id.id[0] == f)
			k++;
		put_be32(p, (uint32_t)k);
		p += 4;
	}
	for (size_t i = 0; i < n; i++, p += GIT_OID_SHA1_SIZE)
		memcpy(p, e[i].id.id, GIT_OID_SHA1_SIZE);
	for (size_t i = 0; i < n; i++, p += 4)
		put_be32(p, e[i].crc);
	unsigned char *large = p + n * 4;
	uint32_t li = 0;
	for (size_t i = 0; i < n; i++, p += 4) {
		if (e[i].offset < 0x80000000u) {
			put_be32(p, (uint32_t)e[i].offset);
			continue;
		}
		put_be32(p, 0x80000000u | li);
		put_be32(large + li * 8, (uint32_t)(e[i].offset >> 32));
		put_be32(large + li * 8 + 4, (uint32_t)e[i].offset);
		li++;
	}
	p = large + nlarge * 8;
	memcpy(p, pack_sha, GIT_OID_SHA1_SIZE);
	p += GIT_OID_SHA1_SIZE;
	unsigned int mdlen = 0;
	int rc = 0;
	if (!EVP_Digest(buf, (size_t)(p - buf), p, &mdlen, EVP_sha1(), NULL))
		rc = cbl_error_set(err, CBL_EINTERNAL, "SHA-1 is not available");
	else if (cbl_write_all(fd, buf, size) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write the pack index");
	free(buf);
	return rc;
}

typedef struct pack_job {
	git_odb *odb;
	const source_oidlist *ids;
	git_indexer_progress_cb progress;
	void *payload;
	git_oid *missing;
	pack_entry *entries;
	pack_out out;
	z_stream zs;
} pack_job;

static int report(pack_job *j, size_t done)
{
	if (!j->progress)
		return 0;
	git_indexer_progress s = {0};
	s.total_objects = s.indexed_objects = (unsigned)j->ids->n;
	s.received_objects = (unsigned)done;
	s.received_bytes = (size_t)out_pos(&j->out);
	return j->progress(&s, j->payload);
}

/* Every object into the pack file; the entries get their offsets and CRCs. */
static int write_objects(pack_job *j, cbl_error **err)
{
	unsigned char hdr[12] = {'P', 'A', 'C', 'K', 0, 0, 0, 2};
	put_be32(hdr + 8, (uint32_t)j->ids->n);
	out_put(&j->out, hdr, sizeof(hdr));
	for (size_t i = 0; i < j->ids->n; i++) {
		const git_oid *id = &j->ids->v[i];
		git_odb_object *obj = NULL;
		int g = git_odb_read(&obj, j->odb, id);
		if (g < 0) {
			char hex[GIT_OID_MAX_HEXSIZE + 1];
			git_oid_tostr(hex, sizeof(hex), id);
			if (g == GIT_ENOTFOUND) {
				git_error_clear();
				if (j->missing)
					git_oid_cpy(j->missing, id);
				return cbl_error_set(err, CBL_ENOENT, "object %s is missing", hex);
			}
			const git_error *ge = git_error_last();
			return cbl_error_set(err, CBL_EIO, "cannot read object %s: %s", hex,
					     ge && ge->message ? ge->message : "unknown error");
		}
		git_oid_cpy(&j->entries[i].id, id);
		j->entries[i].offset = out_pos(&j->out);
		j->out.crc = (uint32_t)crc32(0, NULL, 0);
		int r = put_object(&j->out, &j->zs, git_odb_object_type(obj), git_odb_object_data(obj),
				   git_odb_object_size(obj));
		j->entries[i].crc = j->out.crc;
		git_odb_object_free(obj);
		if (r < 0)
			return cbl_error_set(err, CBL_EINTERNAL, "zlib failed to compress an object");
		if (j->out.failed)
			return cbl_error_set_errno(err, CBL_EIO, j->out.errnum, "cannot write '%s'", j->out.path);
		if (((i + 1) % PROGRESS_EVERY == 0 || i + 1 == j->ids->n) && report(j, i + 1))
			return cbl_error_set(err, CBL_ESTOPPED, "fetch cancelled");
	}
	out_flush(&j->out);
	if (j->out.failed)
		return cbl_error_set_errno(err, CBL_EIO, j->out.errnum, "cannot write '%s'", j->out.path);
	return 0;
}

/* The pack's trailer, then pack-<sha>.{pack,idx} in dir (the index last:
 * a pack without its index is invisible to git and libgit2). */
static int finish(pack_job *j, const char *dir, const char *tmp_pack, cbl_error **err)
{
	unsigned char sha[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[GIT_OID_SHA1_HEXSIZE + 1];
	char *tmp_idx = cbl_path_join(dir, "tmp_idx_XXXXXX"), *pack = NULL, *idx = NULL;
	int fd = -1, rc = 0;

	if (!EVP_DigestFinal_ex(j->out.sha, sha, &mdlen) || mdlen != GIT_OID_SHA1_SIZE) {
		rc = cbl_error_set(err, CBL_EINTERNAL, "SHA-1 is not available");
		goto out;
	}
	if (cbl_write_all(j->out.fd, sha, GIT_OID_SHA1_SIZE) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", tmp_pack);
		goto out;
	}
	qsort(j->entries, j->ids->n, sizeof(*j->entries), cmp_entry);
	for (size_t i = 1; i < j->ids->n; i++)
		if (git_oid_equal(&j->entries[i - 1].id, &j->entries[i].id)) {
			rc = cbl_error_set(err, CBL_EINTERNAL, "an object was listed twice for the pack");
			goto out;
		}
	if ((fd = mkostemp(tmp_idx, O_CLOEXEC)) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create a file in '%s'", dir);
		goto out;
	}
	if ((rc = write_index(fd, j->entries, j->ids->n, sha, err)) < 0)
		goto out;
	git_oid pid;
	git_oid_fromraw(&pid, sha);
	git_oid_tostr(hex, sizeof(hex), &pid);
	pack = cbl_xasprintf("%s/pack-%s.pack", dir, hex);
	idx = cbl_xasprintf("%s/pack-%s.idx", dir, hex);
	if (fchmod(j->out.fd, 0444) < 0 || fchmod(fd, 0444) < 0 || rename(tmp_pack, pack) < 0 ||
	    rename(tmp_idx, idx) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot put the pack in place in '%s'", dir);
		unlink(pack);
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp_idx);
	free(tmp_idx);
	free(pack);
	free(idx);
	return rc;
}

int source_pack_write(git_odb *odb, const source_oidlist *ids, const char *dir, git_indexer_progress_cb progress,
		      void *payload, uint64_t *bytes_out, git_oid *missing, cbl_error **err)
{
	pack_job j = {.odb = odb, .ids = ids, .progress = progress, .payload = payload, .missing = missing};
	char *tmp_pack = cbl_path_join(dir, "tmp_pack_XXXXXX");
	bool zinit = false;
	int rc = 0;

	if (bytes_out)
		*bytes_out = 0;
	j.out.fd = -1;
	if (ids->n > UINT32_MAX) {
		rc = cbl_error_set(err, CBL_EINVAL, "too many objects for one pack (%zu)", ids->n);
		goto out;
	}
	if ((j.out.fd = mkostemp(tmp_pack, O_CLOEXEC)) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create a file in '%s'", dir);
		goto out;
	}
	j.out.path = tmp_pack;
	j.out.buf = cbl_xmalloc(OUT_BUF);
	j.out.sha = EVP_MD_CTX_new();
	j.entries = cbl_xcalloc(ids->n ? ids->n : 1, sizeof(*j.entries));
	if (!j.out.sha || !EVP_DigestInit_ex(j.out.sha, EVP_sha1(), NULL)) {
		rc = cbl_error_set(err, CBL_EINTERNAL, "SHA-1 is not available");
		goto out;
	}
	if (deflateInit(&j.zs, PACK_ZLEVEL) != Z_OK) {
		rc = cbl_error_set(err, CBL_EINTERNAL, "zlib cannot be initialised");
		goto out;
	}
	zinit = true;
	if ((rc = write_objects(&j, err)) < 0 || (rc = finish(&j, dir, tmp_pack, err)) < 0)
		goto out;
	if (bytes_out)
		*bytes_out = out_pos(&j.out) + GIT_OID_SHA1_SIZE;
out:
	if (j.out.fd >= 0)
		close(j.out.fd);
	if (rc)
		unlink(tmp_pack);
	if (zinit)
		deflateEnd(&j.zs);
	EVP_MD_CTX_free(j.out.sha);
	free(j.out.buf);
	free(j.entries);
	free(tmp_pack);
	return rc;
}
