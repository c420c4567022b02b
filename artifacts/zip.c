/* artifacts/zip.c - the ZIP writer behind artifacts_write_zip(): entries are
 * deflated in parallel (a whole file per worker thread, zlib) and written in
 * list order by the calling thread, which also hashes the bytes it writes.
 *
 * Why the container is written here and not by libarchive: libarchive's ZIP
 * writer (used by this module before) deflates inside archive_write_data()
 * on the calling thread and has no API to take an entry's data already
 * compressed together with its CRC-32 and sizes, so at most one core ever
 * compresses; nor does it offer a way to hand it several entries at once.
 * Compression is where the time goes (artifacts of 10,000 files, bench/
 * artifacts.sh), so the compression stays zlib's and only the container --
 * the simple, fixed-layout part of ZIP (PKWARE APPNOTE 6.3 §4.3-4.5: local
 * headers, data descriptors, central directory, ZIP64 records) -- is ours.
 * The unit tests read every variant back with libarchive's reader and
 * `unzip -t`.
 *
 * Pipeline: job i (entry i) is claimed by the next free worker, in order.
 * Its result lives in ring slot i % RING until the writer has written it.
 * A worker may claim job i only when i < written + RING and the compressed
 * bytes in flight are under BUDGET (the job the writer waits for is always
 * allowed), so memory is bounded by the window whatever the tree size.
 *   - files up to SMALL_MAX are read whole, deflated in one call and
 *     published as one buffer with their CRC and sizes (no data descriptor);
 *     stored instead when deflate does not make them smaller;
 *   - larger files are deflated in a stream: the header is published first
 *     (bit 3: sizes and CRC follow in a data descriptor), then output chunks
 *     of CHUNK_OUT bytes; at most STREAM_QUEUE bytes of one entry wait, so a
 *     big file costs a few MiB however big it is; it is always deflated
 *     (storing would have to be decided before the data is seen).  Whether
 *     an entry streams depends only on its size, so the output does not
 *     depend on timing or the number of threads.
 * The first failing entry in list order is the one reported: a worker that
 * fails marks its slot and the others stop claiming new jobs (all earlier
 * jobs are already claimed); the writer finishes the earlier entries and
 * then meets the failure.  A write error on the writer's side aborts all.
 *
 * Determinism: no field depends on the clock, the time zone, the user or the
 * machine.  The DOS date/time is the mtime in UTC (Info-ZIP uses local time;
 * the exact mtime travels in the "UT" extra field, which readers prefer; an
 * mtime outside its signed 32 bits gets no UT field).  Modes travel as Unix
 * external attributes (host 3): S_IFREG or S_IFLNK | permission bits; no
 * uid/gid field, no directory entries.
 */
#include "artifacts/artifacts.h"
#include "artifacts/artifacts_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "util/banned.h"

#define SMALL_MAX (1u << 20)      /* larger files are streamed */
#define READ_BLOCK (256u << 10)   /* streaming read size */
#define CHUNK_OUT (512u << 10)    /* streaming output chunk */
#define STREAM_QUEUE (4u << 20)   /* queued output of one streaming entry */
#define BUDGET ((size_t)32 << 20) /* compressed bytes in flight, all slots */
#define RING 256                  /* entries in flight */
#define OUTBUF (256u << 10)       /* writer's coalescing buffer */

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_DESCRIPTOR 0x08074b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define EXTRA_ZIP64 0x0001u
#define EXTRA_UT 0x5455u        /* extended timestamp */
#define MADE_BY_UNIX (3u << 8)  /* host system 3 = UNIX: external attrs hold st_mode */
#define FLAG_DESCRIPTOR 0x0008u /* bit 3: CRC and sizes in a data descriptor */
#define FLAG_UTF8 0x0800u       /* bit 11: name is UTF-8 */
#define METHOD_STORE 0
#define METHOD_DEFLATE 8
#define U32_MAX 0xffffffffu

typedef struct chunk {
	struct chunk *next;
	size_t len;
	unsigned char data[];
} chunk;

/* The header facts of one entry, known before its data is written.  Kept
 * per entry after writing for the central directory (name borrowed from
 * the list). */
typedef struct zrec {
	const char *name;
	uint64_t csize, usize, offset;
	uint32_t crc, ext_attr;
	int64_t mtime;
	uint16_t method, flags, dos_time, dos_date;
	bool zip64;    /* sizes in a ZIP64 extra field (local and central) */
	bool streamed; /* data descriptor follows the data */
} zrec;

typedef struct slot {
	zrec rec;     /* valid once ready; crc/csize final once done */
	bool ready;   /* header facts published */
	bool done;    /* all data queued */
	bool failed;
	cbl_error *err;
	chunk *head, *tail;
	size_t queued; /* bytes in head..tail */
} slot;

typedef struct zip_job {
	const artifacts_list *l;
	bool keep_symlinks, force_zip64;
	int level;
	int64_t deadline_mono_us; /* 0 = none */

	pthread_mutex_t mu;
	pthread_cond_t cv_work;  /* workers: window, budget, queue space, abort */
	pthread_cond_t cv_write; /* writer: slot progress */
	size_t next_job, next_write, buffered;
	bool stop_claim, abort;
	slot ring[RING];
} zip_job;

typedef struct worker {
	zip_job *job;
	pthread_t tid;
	z_stream zs;
	bool zs_ok;
	unsigned char *in, *out; /* SMALL_MAX, deflateBound(SMALL_MAX) */
	size_t out_cap;
} worker;

/* ------------------------------------------------------------------------ */
/* little-endian fields */

static unsigned char *put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	return p + 2;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
	p = put16(p, v & 0xffff);
	return put16(p, v >> 16);
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
	p = put32(p, (uint32_t)v);
	return put32(p, (uint32_t)(v >> 32));
}

static uint32_t clamp32(uint64_t v) { return v >= U32_MAX ? U32_MAX : (uint32_t)v; }

/* DOS date/time of t in UTC, clamped to the format's 1980..2107 range. */
static void dos_time(int64_t t, uint16_t *tm_out, uint16_t *date_out)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (!gmtime_r(&tt, &tm) || tm.tm_year < 80) {
		*tm_out = 0;
		*date_out = (1 << 5) | 1; /* 1980-01-01 00:00:00 */
		return;
	}
	if (tm.tm_year > 207) {
		*tm_out = (23 << 11) | (59 << 5) | 29;
		*date_out = (uint16_t)((127 << 9) | (12 << 5) | 31);
		return;
	}
	*tm_out = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
	*date_out = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
}

static bool has_ut(const zrec *r) { return r->mtime >= INT32_MIN && r->mtime <= INT32_MAX; }

/* Bit 11 (UTF-8 name) is set for non-ASCII names that are valid UTF-8;
 * other byte strings go as they are, without a claim. */
static bool utf8_name(const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	bool high = false;
	while (*s) {
		unsigned c = *s, n;
		if (c < 0x80) {
			s++;
			continue;
		}
		high = true;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return false;
		unsigned cp = c & (0x3f >> n);
		for (unsigned k = 1; k <= n; k++) {
			if ((s[k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[k] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		s += n + 1;
	}
	return high;
}

/* ------------------------------------------------------------------------ */
/* workers */

static void slot_free_chunks(slot *s)
{
	for (chunk *c = s->head, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	s->head = s->tail = NULL;
	s->queued = 0;
}

static chunk *chunk_new(const void *data, size_t len)
{
	chunk *c = cbl_xmalloc(sizeof(*c) + len);
	c->next = NULL;
	c->len = len;
	if (len)
		memcpy(c->data, data, len);
	return c;
}

/* Appends a streaming entry's chunk c to s, waiting for queue space first;
 * returns false on abort (c is then freed). */
static bool push_chunk(zip_job *j, slot *s, chunk *c)
{
	pthread_mutex_lock(&j->mu);
	while (s->queued >= STREAM_QUEUE && !j->abort)
		pthread_cond_wait(&j->cv_work, &j->mu);
	if (j->abort) {
		pthread_mutex_unlock(&j->mu);
		free(c);
		return false;
	}
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	s->queued += c->len;
	j->buffered += c->len;
	pthread_cond_broadcast(&j->cv_write);
	pthread_mutex_unlock(&j->mu);
	return true;
}

/* Publishes an entry's header facts; with done, its whole data `c` too (in
 * the same critical section: the writer must never see done without it). */
static void publish(zip_job *j, slot *s, const zrec *r, bool done, chunk *c)
{
	pthread_mutex_lock(&j->mu);
	s->rec = *r;
	s->ready = true;
	s->done = done;
	if (c) {
		s->head = s->tail = c;
		s->queued = c->len;
		j->buffered += c->len;
	}
	pthread_cond_broadcast(&j->cv_write);
	pthread_mutex_unlock(&j->mu);
}

static void fail_slot(zip_job *j, slot *s, cbl_error *e)
{
	pthread_mutex_lock(&j->mu);
	s->failed = true;
	s->err = e;
	j->stop_claim = true;
	pthread_cond_broadcast(&j->cv_write);
	pthread_cond_broadcast(&j->cv_work);
	pthread_mutex_unlock(&j->mu);
}

static int read_full(int fd, unsigned char *buf, size_t want, size_t *got, const char *path,
		     cbl_error **err)
{
	size_t n = 0;
	while (n < want) {
		ssize_t r = read(fd, buf + n, want - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", path);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*got = n;
	return 0;
}

/* The caller's deadline (a build's) has passed. */
static bool past(const zip_job *j)
{
	return j->deadline_mono_us && cbl_mono_us() >= j->deadline_mono_us;
}

static int timed_out(const artifacts_entry *e, cbl_error **err)
{
	return cbl_error_set(err, CBL_ETIMEDOUT, "the build timed out while packaging '%s'", e->name);
}

static int changed(const char *path, cbl_error **err)
{
	return cbl_error_set(err, CBL_EIO, "'%s' changed while being archived", path);
}

/* A symlink kept as a symlink: stored, its target as content. */
static int do_symlink(worker *w, const artifacts_entry *e, slot *s, zrec *r, cbl_error **err)
{
	struct stat st;
	char *target = NULL;
	int rc = artifacts_entry_readlink(e, &st, &target, err);
	if (rc < 0)
		return rc;
	size_t len = strlen(target);
	r->mtime = st.st_mtim.tv_sec;
	r->ext_attr = (uint32_t)(S_IFLNK | (st.st_mode & 0777)) << 16;
	r->method = METHOD_STORE;
	r->usize = r->csize = len;
	r->crc = (uint32_t)crc32(0, (const Bytef *)target, (uInt)len);
	chunk *c = chunk_new(target, len);
	free(target);
	publish(w->job, s, r, true, c);
	return 0;
}

/* Deflates fd's remaining `size` bytes into chunks of slot s (header
 * already published), then finalises crc/csize. */
static int do_stream(worker *w, int fd, const artifacts_entry *e, uint64_t size, slot *s,
		     cbl_error **err)
{
	zip_job *j = w->job;
	z_stream *zs = &w->zs;
	uint64_t total = 0, csize = 0;
	uint32_t crc = (uint32_t)crc32(0, NULL, 0);
	chunk *c = NULL;
	int rc = 0;
	bool eof = false;

	if (deflateReset(zs) != Z_OK)
		return cbl_error_set(err, CBL_EINTERNAL, "deflateReset failed");
	c = cbl_xmalloc(sizeof(*c) + CHUNK_OUT);
	c->next = NULL;
	zs->next_out = c->data;
	zs->avail_out = CHUNK_OUT;
	for (;;) {
		if (zs->avail_in == 0 && !eof) {
			size_t got = 0;
			if (past(j)) {
				rc = timed_out(e, err);
				goto out;
			}
			rc = read_full(fd, w->in, READ_BLOCK, &got, e->path, err);
			if (rc < 0)
				goto out;
			if (total + got > size) {
				rc = changed(e->path, err);
				goto out;
			}
			total += got;
			crc = (uint32_t)crc32(crc, w->in, (uInt)got);
			zs->next_in = w->in;
			zs->avail_in = (uInt)got;
			eof = got < READ_BLOCK;
		}
		int zr = deflate(zs, eof ? Z_FINISH : Z_NO_FLUSH);
		if (zr == Z_STREAM_ERROR) {
			rc = cbl_error_set(err, CBL_EINTERNAL, "deflate failed on '%s'", e->path);
			goto out;
		}
		bool finished = zr == Z_STREAM_END;
		if (zs->avail_out == 0 || finished) {
			c->len = CHUNK_OUT - zs->avail_out;
			csize += c->len;
			if (c->len) {
				if (!push_chunk(j, s, c)) {
					c = NULL;
					rc = CBL_EINTERNAL; /* aborted: nobody reads the error */
					goto out;
				}
			} else {
				free(c);
			}
			c = NULL;
			if (finished)
				break;
			c = cbl_xmalloc(sizeof(*c) + CHUNK_OUT);
			c->next = NULL;
			zs->next_out = c->data;
			zs->avail_out = CHUNK_OUT;
		}
		pthread_mutex_lock(&j->mu);
		bool ab = j->abort;
		pthread_mutex_unlock(&j->mu);
		if (ab) {
			rc = CBL_EINTERNAL;
			goto out;
		}
	}
	if (total != size) {
		rc = changed(e->path, err);
		goto out;
	}
	pthread_mutex_lock(&j->mu);
	s->rec.crc = crc;
	s->rec.csize = csize;
	s->done = true;
	pthread_cond_broadcast(&j->cv_write);
	pthread_mutex_unlock(&j->mu);
out:
	free(c);
	zs->avail_in = 0;
	return rc;
}

static int do_entry(worker *w, size_t i, slot *s, cbl_error **err)
{
	zip_job *j = w->job;
	const artifacts_entry *e = &j->l->items[i];
	zrec r = {.name = e->name};
	struct stat st;
	int fd = -1, rc = 0;

	if (past(j)) {
		rc = timed_out(e, err);
		goto out;
	}
	if (e->is_symlink && j->keep_symlinks) {
		rc = do_symlink(w, e, s, &r, err);
		goto out;
	}
	rc = artifacts_entry_open(e, &fd, &st, err);
	if (rc < 0)
		goto out;
	uint64_t size = (uint64_t)st.st_size;
	r.mtime = st.st_mtim.tv_sec;
	r.ext_attr = (uint32_t)(S_IFREG | (st.st_mode & 0777)) << 16;
	r.usize = size;
	if (size > SMALL_MAX) {
		r.method = METHOD_DEFLATE;
		r.streamed = true;
		/* ZIP64 when the compressed size could reach 4 GiB: decided
		 * from the size alone, before any byte is compressed */
		r.zip64 = j->force_zip64 || deflateBound(&w->zs, (uLong)size) >= U32_MAX ||
			  size >= U32_MAX;
		publish(j, s, &r, false, NULL);
		rc = do_stream(w, fd, e, size, s, err);
		goto out;
	}
	size_t got = 0;
	rc = read_full(fd, w->in, (size_t)size + 1, &got, e->path, err);
	if (rc < 0)
		goto out;
	if (got != size) {
		rc = changed(e->path, err);
		goto out;
	}
	r.crc = (uint32_t)crc32(0, w->in, (uInt)size);
	r.zip64 = j->force_zip64;
	const unsigned char *data = w->in;
	r.method = METHOD_STORE;
	r.csize = size;
	if (size > 0) {
		if (deflateReset(&w->zs) != Z_OK) {
			rc = cbl_error_set(err, CBL_EINTERNAL, "deflateReset failed");
			goto out;
		}
		w->zs.next_in = w->in;
		w->zs.avail_in = (uInt)size;
		w->zs.next_out = w->out;
		w->zs.avail_out = (uInt)w->out_cap;
		if (deflate(&w->zs, Z_FINISH) != Z_STREAM_END) {
			rc = cbl_error_set(err, CBL_EINTERNAL, "deflate failed on '%s'", e->path);
			goto out;
		}
		if (w->zs.total_out < size) {
			r.method = METHOD_DEFLATE;
			r.csize = w->zs.total_out;
			data = w->out;
		}
	}
	publish(j, s, &r, true, chunk_new(data, (size_t)r.csize));
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	zip_job *j = w->job;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (!j->abort && !j->stop_claim && j->next_job < j->l->n &&
		       !(j->next_job < j->next_write + RING &&
			 (j->buffered <= BUDGET || j->next_job == j->next_write)))
			pthread_cond_wait(&j->cv_work, &j->mu);
		if (j->abort || j->stop_claim || j->next_job >= j->l->n)
			break;
		size_t i = j->next_job++;
		slot *s = &j->ring[i % RING];
		pthread_mutex_unlock(&j->mu);

		cbl_error *e = NULL;
		if (do_entry(w, i, s, &e) < 0)
			fail_slot(j, s, e);
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

static void worker_release(worker *w)
{
	if (w->zs_ok)
		deflateEnd(&w->zs);
	free(w->in);
	free(w->out);
}

static int worker_init(worker *w, zip_job *j, cbl_error **err)
{
	memset(w, 0, sizeof(*w));
	w->job = j;
	if (deflateInit2(&w->zs, j->level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return cbl_error_set(err, CBL_EINTERNAL, "cannot initialise zlib");
	w->zs_ok = true;
	w->in = cbl_xmalloc(SMALL_MAX + 1);
	w->out_cap = deflateBound(&w->zs, SMALL_MAX);
	w->out = cbl_xmalloc(w->out_cap);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* writer */

typedef struct zip_out {
	int fd;
	const char *path;
	uint64_t off; /* bytes written so far (buffer included) */
	unsigned char *buf;
	size_t n;
	EVP_MD_CTX *sha, *md5;
} zip_out;

static int out_flush(zip_out *o, cbl_error **err)
{
	if (!o->n)
		return 0;
	if (cbl_write_all(o->fd, o->buf, o->n) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", o->path);
	EVP_DigestUpdate(o->sha, o->buf, o->n);
	EVP_DigestUpdate(o->md5, o->buf, o->n);
	o->n = 0;
	return 0;
}

static int out_put(zip_out *o, const void *data, size_t len, cbl_error **err)
{
	o->off += len;
	if (o->n + len <= OUTBUF) {
		memcpy(o->buf + o->n, data, len);
		o->n += len;
		return 0;
	}
	int rc = out_flush(o, err);
	if (rc < 0)
		return rc;
	if (len < OUTBUF / 2) {
		memcpy(o->buf, data, len);
		o->n = len;
		return 0;
	}
	if (cbl_write_all(o->fd, data, len) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", o->path);
	EVP_DigestUpdate(o->sha, data, len);
	EVP_DigestUpdate(o->md5, data, len);
	return 0;
}

static uint16_t version_needed(const zrec *r)
{
	if (r->zip64)
		return 45;
	return r->method == METHOD_DEFLATE ? 20 : 10;
}

static unsigned char *put_ut(unsigned char *p, const zrec *r)
{
	p = put16(p, EXTRA_UT);
	p = put16(p, 5);
	*p++ = 1; /* flags: mtime present */
	return put32(p, (uint32_t)(int32_t)r->mtime);
}

static int write_local(zip_out *o, zrec *r, cbl_error **err)
{
	size_t nlen = strlen(r->name);
	unsigned char h[30 + 9 + 20];
	unsigned char *p = h;
	r->offset = o->off;
	r->flags = (uint16_t)((r->streamed ? FLAG_DESCRIPTOR : 0) | (utf8_name(r->name) ? FLAG_UTF8 : 0));
	dos_time(r->mtime, &r->dos_time, &r->dos_date);
	size_t xlen = (has_ut(r) ? 9 : 0) + (r->zip64 ? 20 : 0);
	p = put32(p, SIG_LOCAL);
	p = put16(p, version_needed(r));
	p = put16(p, r->flags);
	p = put16(p, r->method);
	p = put16(p, r->dos_time);
	p = put16(p, r->dos_date);
	/* streamed: CRC and sizes follow in the data descriptor */
	p = put32(p, r->streamed ? 0 : r->crc);
	p = put32(p, r->zip64 ? U32_MAX : r->streamed ? 0 : (uint32_t)r->csize);
	p = put32(p, r->zip64 ? U32_MAX : r->streamed ? 0 : (uint32_t)r->usize);
	p = put16(p, (unsigned)nlen);
	p = put16(p, (unsigned)xlen);
	size_t fixed = (size_t)(p - h);
	int rc = out_put(o, h, fixed, err);
	if (rc == 0)
		rc = out_put(o, r->name, nlen, err);
	p = h;
	if (has_ut(r))
		p = put_ut(p, r);
	if (r->zip64) {
		p = put16(p, EXTRA_ZIP64);
		p = put16(p, 16);
		p = put64(p, r->streamed ? 0 : r->usize);
		p = put64(p, r->streamed ? 0 : r->csize);
	}
	if (rc == 0)
		rc = out_put(o, h, (size_t)(p - h), err);
	return rc;
}

static int write_descriptor(zip_out *o, const zrec *r, cbl_error **err)
{
	unsigned char h[24];
	unsigned char *p = put32(h, SIG_DESCRIPTOR);
	p = put32(p, r->crc);
	if (r->zip64) {
		p = put64(p, r->csize);
		p = put64(p, r->usize);
	} else {
		p = put32(p, (uint32_t)r->csize);
		p = put32(p, (uint32_t)r->usize);
	}
	return out_put(o, h, (size_t)(p - h), err);
}

static int write_central(zip_out *o, const zrec *r, bool force64, cbl_error **err)
{
	size_t nlen = strlen(r->name);
	bool big_u = r->zip64 || r->usize >= U32_MAX, big_c = r->zip64 || r->csize >= U32_MAX;
	bool big_o = force64 || r->offset >= U32_MAX;
	unsigned n64 = (unsigned)big_u + (unsigned)big_c + (unsigned)big_o;
	bool any64 = n64 > 0;
	size_t xlen = (has_ut(r) ? 9 : 0) + (any64 ? 4 + 8 * n64 : 0);
	unsigned char h[46 + 9 + 28];
	unsigned char *p = h;
	uint16_t need = any64 ? 45 : version_needed(r);
	p = put32(p, SIG_CENTRAL);
	p = put16(p, MADE_BY_UNIX | (any64 ? 45 : 30));
	p = put16(p, need);
	p = put16(p, r->flags);
	p = put16(p, r->method);
	p = put16(p, r->dos_time);
	p = put16(p, r->dos_date);
	p = put32(p, r->crc);
	p = put32(p, big_c ? U32_MAX : (uint32_t)r->csize);
	p = put32(p, big_u ? U32_MAX : (uint32_t)r->usize);
	p = put16(p, (unsigned)nlen);
	p = put16(p, (unsigned)xlen);
	p = put16(p, 0); /* comment */
	p = put16(p, 0); /* disk */
	p = put16(p, 0); /* internal attributes */
	p = put32(p, r->ext_attr);
	p = put32(p, big_o ? U32_MAX : (uint32_t)r->offset);
	int rc = out_put(o, h, (size_t)(p - h), err);
	if (rc == 0)
		rc = out_put(o, r->name, nlen, err);
	p = h;
	if (has_ut(r))
		p = put_ut(p, r); /* central copy: mtime only, as in the local one */
	if (any64) {
		p = put16(p, EXTRA_ZIP64);
		p = put16(p, 8 * n64);
		if (big_u)
			p = put64(p, r->usize);
		if (big_c)
			p = put64(p, r->csize);
		if (big_o)
			p = put64(p, r->offset);
	}
	if (rc == 0)
		rc = out_put(o, h, (size_t)(p - h), err);
	return rc;
}

static int write_end(zip_out *o, uint64_t n, uint64_t cd_off, bool force64, cbl_error **err)
{
	uint64_t cd_size = o->off - cd_off;
	bool need64 = force64 || n >= 0xffff || cd_size >= U32_MAX || cd_off >= U32_MAX;
	unsigned char h[56 + 20 + 22];
	unsigned char *p = h;
	if (need64) {
		uint64_t eocd64 = o->off;
		p = put32(p, SIG_EOCD64);
		p = put64(p, 44); /* size of the rest of this record */
		p = put16(p, MADE_BY_UNIX | 45);
		p = put16(p, 45);
		p = put32(p, 0); /* this disk */
		p = put32(p, 0); /* disk of the central directory */
		p = put64(p, n);
		p = put64(p, n);
		p = put64(p, cd_size);
		p = put64(p, cd_off);
		p = put32(p, SIG_LOCATOR64);
		p = put32(p, 0);
		p = put64(p, eocd64);
		p = put32(p, 1); /* total disks */
	}
	p = put32(p, SIG_EOCD);
	p = put16(p, 0);
	p = put16(p, 0);
	p = put16(p, need64 ? 0xffff : (unsigned)n);
	p = put16(p, need64 ? 0xffff : (unsigned)n);
	p = put32(p, need64 ? U32_MAX : clamp32(cd_size));
	p = put32(p, need64 ? U32_MAX : clamp32(cd_off));
	p = put16(p, 0); /* comment */
	return out_put(o, h, (size_t)(p - h), err);
}

/* Takes a failed slot's error into *err. */
static int take_error(slot *s, cbl_error **err)
{
	cbl_error *e = s->err;
	s->err = NULL;
	int code = e ? e->code : CBL_EINTERNAL;
	if (!e)
		return cbl_error_set(err, CBL_EINTERNAL, "compression worker failed");
	if (err && !*err)
		*err = e;
	else
		cbl_error_free(e);
	return code;
}

/* Writes entry i once its worker has produced it. */
static int write_entry(zip_job *j, zip_out *o, size_t i, zrec *out, cbl_error **err)
{
	slot *s = &j->ring[i % RING];
	int rc = 0;
	pthread_mutex_lock(&j->mu);
	while (!s->ready && !s->failed)
		pthread_cond_wait(&j->cv_write, &j->mu);
	if (s->failed) {
		rc = take_error(s, err);
		pthread_mutex_unlock(&j->mu);
		return rc;
	}
	zrec r = s->rec;
	pthread_mutex_unlock(&j->mu);

	rc = write_local(o, &r, err);
	if (rc < 0)
		return rc;
	for (;;) {
		pthread_mutex_lock(&j->mu);
		while (!s->head && !s->done && !s->failed)
			pthread_cond_wait(&j->cv_write, &j->mu);
		chunk *c = s->head;
		if (c) {
			s->head = c->next;
			if (!s->head)
				s->tail = NULL;
			s->queued -= c->len;
			j->buffered -= c->len;
			pthread_cond_broadcast(&j->cv_work);
		} else if (s->failed) {
			rc = take_error(s, err);
			pthread_mutex_unlock(&j->mu);
			return rc;
		} else {
			r.crc = s->rec.crc;
			r.csize = s->rec.csize;
			memset(s, 0, sizeof(*s)); /* free for job i + RING */
			j->next_write = i + 1;
			pthread_cond_broadcast(&j->cv_work);
			pthread_mutex_unlock(&j->mu);
			break;
		}
		pthread_mutex_unlock(&j->mu);
		rc = out_put(o, c->data, c->len, err);
		free(c);
		if (rc < 0)
			return rc;
	}
	if (r.streamed) {
		rc = write_descriptor(o, &r, err);
		if (rc < 0)
			return rc;
	}
	*out = r;
	return 0;
}

static int write_all_entries(zip_job *j, zip_out *o, zrec *recs, cbl_error **err)
{
	const artifacts_list *l = j->l;
	for (size_t i = 0; i < l->n; i++) {
		int rc = write_entry(j, o, i, &recs[i], err);
		if (rc < 0)
			return rc;
	}
	uint64_t cd_off = o->off;
	for (size_t i = 0; i < l->n; i++) {
		int rc = write_central(o, &recs[i], j->force_zip64, err);
		if (rc < 0)
			return rc;
	}
	int rc = write_end(o, l->n, cd_off, j->force_zip64, err);
	if (rc == 0)
		rc = out_flush(o, err);
	return rc;
}

static int digest_hex(EVP_MD_CTX *ctx, unsigned want, char *hex, cbl_error **err)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dn = 0;
	if (!EVP_DigestFinal_ex(ctx, d, &dn) || dn != want)
		return cbl_error_set(err, CBL_EINTERNAL, "digest failed");
	artifacts_to_hex(d, dn, hex);
	return 0;
}

static int thread_count(const artifacts_zip_opts *opts, size_t n)
{
	long t = opts->threads;
	if (t <= 0)
		t = sysconf(_SC_NPROCESSORS_ONLN);
	if (t < 1)
		t = 1;
	if (t > ARTIFACTS_ZIP_MAX_THREADS)
		t = ARTIFACTS_ZIP_MAX_THREADS;
	if ((size_t)t > n)
		t = (long)n; /* 0 for an empty list */
	return (int)t;
}

static int check_zip_input(const artifacts_list *l, const artifacts_zip_opts *opts, cbl_error **err)
{
	if (opts->level < 0 || opts->level > 9)
		return cbl_error_set(err, CBL_EINVAL, "invalid zip compression level %d", opts->level);
	int rc = artifacts_validate_list(l, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->items[i].name) > 0xffff)
			return cbl_error_set(err, CBL_EINVAL, "artifact entry name too long: '%.64s...'",
					     l->items[i].name);
	return 0;
}

/* The job and its lock and conditions; freed with job_free. */
static int job_new(zip_job **out, const artifacts_list *l, bool keep_symlinks,
		   const artifacts_zip_opts *opts, cbl_error **err)
{
	zip_job *j = cbl_xcalloc(1, sizeof(*j));
	j->l = l;
	j->keep_symlinks = keep_symlinks;
	j->force_zip64 = opts->force_zip64;
	j->deadline_mono_us = opts->deadline_mono_us;
	j->level = opts->level ? opts->level : ARTIFACTS_ZIP_DEFAULT_LEVEL;
	int rc = 0;
	if (pthread_mutex_init(&j->mu, NULL) != 0) {
		rc = cbl_error_set(err, CBL_EINTERNAL, "pthread_mutex_init failed");
	} else if (pthread_cond_init(&j->cv_work, NULL) != 0) {
		pthread_mutex_destroy(&j->mu);
		rc = cbl_error_set(err, CBL_EINTERNAL, "pthread_cond_init failed");
	} else if (pthread_cond_init(&j->cv_write, NULL) != 0) {
		pthread_cond_destroy(&j->cv_work);
		pthread_mutex_destroy(&j->mu);
		rc = cbl_error_set(err, CBL_EINTERNAL, "pthread_cond_init failed");
	}
	if (rc < 0) {
		free(j);
		return rc;
	}
	*out = j;
	return 0;
}

static void job_free(zip_job *j)
{
	for (size_t i = 0; i < RING; i++) {
		slot_free_chunks(&j->ring[i]);
		cbl_error_free(j->ring[i].err);
	}
	pthread_cond_destroy(&j->cv_write);
	pthread_cond_destroy(&j->cv_work);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

/* The temporary output file and its running digests. */
static int out_open(zip_out *o, const char *tmp, cbl_error **err)
{
	o->path = tmp;
	o->buf = cbl_xmalloc(OUTBUF);
	o->sha = EVP_MD_CTX_new();
	o->md5 = EVP_MD_CTX_new();
	if (!o->sha || !o->md5 || !EVP_DigestInit_ex(o->sha, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(o->md5, EVP_md5(), NULL))
		return cbl_error_set(err, CBL_EINTERNAL, "cannot initialise sha256/md5 digests");
	o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (o->fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot create '%s'", tmp);
	return 0;
}

static void out_release(zip_out *o)
{
	if (o->fd >= 0)
		close(o->fd);
	EVP_MD_CTX_free(o->sha);
	EVP_MD_CTX_free(o->md5);
	free(o->buf);
}

/* Starts up to nthreads compression threads (ws: room for nthreads);
 * *started of them run.  Fewer than asked (thread limits) is fine, none is
 * an error. */
static int workers_start(zip_job *j, worker *ws, int nthreads, int *started, cbl_error **err)
{
	int rc = 0;
	/* Workers get no signals: they belong to the caller's threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	cbl_error *terr = NULL;
	for (int t = 0; t < nthreads; t++) {
		if (worker_init(&ws[t], j, &terr) < 0)
			break;
		if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0) {
			worker_release(&ws[t]);
			break;
		}
		(*started)++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (*started == 0 && nthreads > 0)
		rc = cbl_error_set(err, CBL_EINTERNAL, "cannot start a compression thread%s%s",
				   terr ? ": " : "", terr ? terr->msg : "");
	cbl_error_free(terr);
	return rc;
}

/* Aborts whatever is left of the job and joins the threads. */
static void workers_stop(zip_job *j, worker *ws, int started)
{
	pthread_mutex_lock(&j->mu);
	j->abort = true;
	pthread_cond_broadcast(&j->cv_work);
	pthread_mutex_unlock(&j->mu);
	for (int t = 0; t < started; t++) {
		pthread_join(ws[t].tid, NULL);
		worker_release(&ws[t]);
	}
}

/* Closes the written archive, reads its digests and renames it into place. */
static int out_finish(zip_out *o, const char *dest_path, char sha256_hex[65], char md5_hex[33],
		      cbl_error **err)
{
	int fd = o->fd;
	o->fd = -1;
	if (close(fd) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot write '%s'", o->path);
	char sha[65], md5[33];
	int rc = digest_hex(o->sha, 32, sha, err);
	if (rc == 0)
		rc = digest_hex(o->md5, 16, md5, err);
	if (rc < 0)
		return rc;
	if (rename(o->path, dest_path) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot rename '%s' to '%s'", o->path,
					   dest_path);
	if (sha256_hex)
		memcpy(sha256_hex, sha, sizeof(sha));
	if (md5_hex)
		memcpy(md5_hex, md5, sizeof(md5));
	return 0;
}

int artifacts_write_zip_opts(const artifacts_list *l, const char *dest_path, bool keep_symlinks,
			     const artifacts_zip_opts *opts, char sha256_hex[65], char md5_hex[33],
			     cbl_error **err)
{
	static const artifacts_zip_opts defaults = ARTIFACTS_ZIP_OPTS_INIT;
	zip_job *j = NULL;
	worker *ws = NULL;
	zrec *recs = NULL;
	char *tmp = NULL;
	zip_out o = {.fd = -1};
	int rc = 0, nthreads = 0, started = 0;

	if (!opts)
		opts = &defaults;
	rc = check_zip_input(l, opts, err);
	if (rc < 0)
		return rc;
	rc = artifacts_mkdir_parent(dest_path, err);
	if (rc < 0)
		return rc;
	rc = job_new(&j, l, keep_symlinks, opts, err);
	if (rc < 0)
		return rc;

	tmp = cbl_xasprintf("%s.tmp.%ld", dest_path, (long)getpid());
	rc = out_open(&o, tmp, err);
	if (rc < 0)
		goto out;
	nthreads = thread_count(opts, l->n);
	ws = cbl_xcalloc(nthreads ? (size_t)nthreads : 1, sizeof(*ws));
	rc = workers_start(j, ws, nthreads, &started, err);
	if (rc < 0)
		goto out;
	recs = cbl_xcalloc(l->n ? l->n : 1, sizeof(*recs));
	rc = write_all_entries(j, &o, recs, err);
	if (rc >= 0)
		rc = out_finish(&o, dest_path, sha256_hex, md5_hex, err);
out:
	workers_stop(j, ws, started);
	out_release(&o);
	if (rc < 0)
		unlink(tmp);
	free(recs);
	free(ws);
	free(tmp);
	job_free(j);
	return rc;
}

int artifacts_write_zip(const artifacts_list *l, const char *dest_path, bool keep_symlinks,
			char sha256_hex[65], char md5_hex[33], cbl_error **err)
{
	return artifacts_write_zip_opts(l, dest_path, keep_symlinks, NULL, sha256_hex, md5_hex,
					err);
}
