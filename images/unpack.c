/* images/unpack.c - applies image layers to a root directory with
 * libarchive, the way the OCI image spec's "Applying Changesets" says.
 *
 * - Whiteouts: "<dir>/.wh.<name>" deletes <dir>/<name> from the layers below;
 *   "<dir>/.wh..wh..opq" empties <dir> of what the layers below put there.
 *   Neither ever touches what the same layer adds, whatever the tar's order
 *   (the spec only says whiteouts SHOULD come first), so every path a layer
 *   adds is remembered, with its parents, for the length of the layer.
 *   Other ".wh..wh." names are aufs bookkeeping and are skipped.
 * - Safety: entry names and hard-link targets that are absolute or contain
 *   ".." are refused outright (the whole layer fails: such an archive is
 *   hostile, not sloppy).  Writes go to "<root>/<name>" through
 *   archive_write_disk with ARCHIVE_EXTRACT_SECURE_SYMLINKS and _NODOTDOT,
 *   so a path through a symlink planted by an earlier entry or layer is
 *   refused too (a symlink as the LAST component is replaced, never
 *   followed).  Whiteout deletions walk the parent with O_NOFOLLOW at every
 *   step for the same reason.  Symlink targets themselves are left alone:
 *   they are resolved inside the build's root, never by us.
 * - Owners: as root, the layer's numeric uid/gid (never the host's
 *   /etc/passwd names); as non-root, files belong to the caller (the build's
 *   user namespace maps the caller to root), directories get u+rwx so later
 *   layers can still write into them.
 * - Device nodes are skipped, as root too, as rootless unpackers must: a
 *   build gets its own minimal /dev, and a block device node in the store
 *   (or in the build's view) is the host's disk for whoever opens it.
 *   Hard links to a skipped node go too.  The first few are named in
 *   ctx->devices for the caller's warning.
 * - Replacing a directory by a non-directory removes the directory first,
 *   as overlay semantics require.
 */
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/buf.h"

#include "images/dl.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

/* ---- a string set (open addressing) --------------------------------------- */

typedef struct pathset {
	char **slot;
	size_t cap, n;
} pathset;

static uint64_t hash_str(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static bool set_has_n(const pathset *ps, const char *s, size_t n)
{
	if (!ps->cap)
		return false;
	size_t m = ps->cap - 1;
	for (size_t i = (size_t)hash_str(s, n) & m;; i = (i + 1) & m) {
		const char *e = ps->slot[i];
		if (!e)
			return false;
		if (strlen(e) == n && !memcmp(e, s, n))
			return true;
	}
}

static bool set_has(const pathset *ps, const char *s) { return set_has_n(ps, s, strlen(s)); }

static void set_insert_n(pathset *ps, const char *s, size_t n);

static void set_grow(pathset *ps)
{
	pathset nw = {cbl_xcalloc(ps->cap ? ps->cap * 2 : 1024, sizeof(char *)), ps->cap ? ps->cap * 2 : 1024, 0};
	for (size_t i = 0; i < ps->cap; i++)
		if (ps->slot[i]) {
			size_t m = nw.cap - 1;
			size_t j = (size_t)hash_str(ps->slot[i], strlen(ps->slot[i])) & m;
			while (nw.slot[j])
				j = (j + 1) & m;
			nw.slot[j] = ps->slot[i];
			nw.n++;
		}
	free(ps->slot);
	*ps = nw;
}

static void set_insert_n(pathset *ps, const char *s, size_t n)
{
	if ((ps->n + 1) * 2 > ps->cap)
		set_grow(ps);
	size_t m = ps->cap - 1;
	size_t i = (size_t)hash_str(s, n) & m;
	for (; ps->slot[i]; i = (i + 1) & m)
		if (strlen(ps->slot[i]) == n && !memcmp(ps->slot[i], s, n))
			return;
	ps->slot[i] = cbl_xstrndup(s, n);
	ps->n++;
}

/* Adds path and its parents (stopping at the first already present). */
static void set_add_path(pathset *ps, const char *path)
{
	size_t n = strlen(path);
	while (n) {
		if (set_has_n(ps, path, n))
			return;
		set_insert_n(ps, path, n);
		while (n && path[n - 1] != '/')
			n--;
		if (n)
			n--; /* drop the '/' */
	}
}

static void set_release(pathset *ps)
{
	for (size_t i = 0; i < ps->cap; i++)
		free(ps->slot[i]);
	free(ps->slot);
	memset(ps, 0, sizeof(*ps));
}

/* ---- names ------------------------------------------------------------- */

/* Normalizes a tar member name into out: "./a//b/" -> "a/b".  Refuses
 * absolute names and ".." components.  "" = the root itself. */
static int clean_name(const char *name, cbl_buf *out, const char *what, cbl_error **err)
{
	cbl_buf_reset(out);
	if (name[0] == '/')
		return cbl_error_set(err, CBL_EINVAL, "%s '%s' is an absolute path: refused", what, name);
	const char *p = name;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (!l)
			break;
		if (l == 2 && p[0] == '.' && p[1] == '.')
			return cbl_error_set(err, CBL_EINVAL, "%s '%s' has a '..' component: refused", what, name);
		if (!(l == 1 && p[0] == '.')) {
			if (out->len)
				cbl_buf_putc(out, '/');
			cbl_buf_append(out, p, l);
		}
		p += l;
	}
	return 0;
}

/* ---- deletions, never through symlinks --------------------------------- */

/* Opens root/rel as a directory without following any symlink on the way.
 * Returns the fd, -ENOENT when some component does not exist, or sets
 * *err (symlink or non-directory on the way). */
static int open_dir_nofollow(int rootfd, const char *rel, cbl_error **err)
{
	int fd = dup(rootfd);
	if (fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "dup");
	const char *p = rel;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char comp[256];
		if (l >= sizeof(comp)) {
			close(fd);
			return cbl_error_set(err, CBL_EINVAL, "path component too long in '%s'", rel);
		}
		memcpy(comp, p, l);
		comp[l] = '\0';
		int nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int en = errno;
		close(fd);
		if (nfd < 0) {
			if (en == ENOENT)
				return -ENOENT;
			if (en == ELOOP || en == ENOTDIR)
				return cbl_error_set(err, CBL_EINVAL,
						     "whiteout under '%s' would act through a symlink or a file: refused", rel);
			return cbl_error_set_errno(err, CBL_EIO, en, "open %s", rel);
		}
		fd = nfd;
		p += l;
		if (*p == '/')
			p++;
	}
	return fd;
}

/* rm -rf of dirfd/name, never following symlinks. */
static int rm_at(int dirfd, const char *name, cbl_error **err)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : cbl_error_set_errno(err, CBL_EIO, errno, "stat %s", name);
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return cbl_error_set_errno(err, CBL_EIO, errno, "open %s", name);
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return cbl_error_set_errno(err, CBL_EIO, errno, "opendir %s", name);
		}
		struct dirent *de;
		int rc = 0;
		while (!rc && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				rc = rm_at(fd, de->d_name, err);
		closedir(d);
		if (rc)
			return rc;
		if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			return cbl_error_set_errno(err, CBL_EIO, errno, "rmdir %s", name);
		return 0;
	}
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return cbl_error_set_errno(err, CBL_EIO, errno, "unlink %s", name);
	return 0;
}

static void split(const char *rel, cbl_buf *parent, const char **base)
{
	const char *s = strrchr(rel, '/');
	cbl_buf_reset(parent);
	if (s) {
		cbl_buf_append(parent, rel, (size_t)(s - rel));
		*base = s + 1;
	} else {
		*base = rel;
	}
}

/* ".wh.<name>": delete parent/name unless this layer made it. */
static int whiteout(int rootfd, const pathset *added, const char *parent, const char *name,
		    cbl_error **err)
{
	cbl_buf target = CBL_BUF_INIT;
	int rc = 0, fd = -1;
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
		return cbl_error_set(err, CBL_EINVAL, "bad whiteout name '.wh.%s'", name);
	if (*parent)
		cbl_buf_printf(&target, "%s/%s", parent, name);
	else
		cbl_buf_puts(&target, name);
	if (set_has(added, target.ptr))
		goto out;
	fd = open_dir_nofollow(rootfd, parent, err);
	if (fd == -ENOENT) {
		fd = -1;
		goto out;
	}
	if (fd < 0) {
		rc = fd;
		fd = -1;
		goto out;
	}
	rc = rm_at(fd, name, err);
out:
	if (fd >= 0)
		close(fd);
	cbl_buf_release(&target);
	return rc;
}

/* ".wh..wh..opq": empty parent of everything this layer did not add. */
static int opaque(int rootfd, const pathset *added, const char *parent, cbl_error **err)
{
	int fd = open_dir_nofollow(rootfd, parent, err);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	int dfd = dup(fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		close(fd);
		return cbl_error_set_errno(err, CBL_EIO, errno, "opendir %s", parent);
	}
	cbl_strv doomed = CBL_STRV_INIT;
	cbl_buf rel = CBL_BUF_INIT;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cbl_buf_reset(&rel);
		if (*parent)
			cbl_buf_printf(&rel, "%s/%s", parent, de->d_name);
		else
			cbl_buf_puts(&rel, de->d_name);
		if (!set_has(added, rel.ptr))
			cbl_strv_push(&doomed, de->d_name);
	}
	closedir(d);
	int rc = 0;
	for (size_t i = 0; !rc && i < doomed.n; i++)
		rc = rm_at(fd, doomed.v[i], err);
	close(fd);
	cbl_strv_release(&doomed);
	cbl_buf_release(&rel);
	return rc;
}

/* ---- the layer ------------------------------------------------------------- */

static int copy_data(struct archive *a, struct archive *w, uint64_t *bytes, cbl_error **err)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	for (;;) {
		int r = archive_read_data_block(a, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return cbl_error_set(err, CBL_EINVAL, "read: %s", archive_error_string(a));
		if (archive_write_data_block(w, buf, size, off) < ARCHIVE_WARN)
			return cbl_error_set(err, CBL_EIO, "write: %s", archive_error_string(w));
		*bytes += size;
	}
}

/* One layer being unpacked: the archive, the disk writer, the root and the
 * paths this layer added (its whiteouts do not delete those). */
typedef struct layer {
	images_unpack_ctx *ctx;
	struct archive *a, *w;
	int rootfd;
	pathset added;
	pathset devices; /* device nodes skipped (their hard links go too) */
	cbl_buf name, link, full, parent, rawb;
} layer;

enum { DEVICES_NAMED = 8 };

static void skip_device(images_unpack_ctx *ctx, pathset *devices, const char *name, struct archive_entry *e,
			mode_t type)
{
	set_insert_n(devices, name, strlen(name));
	if (ctx->skipped++ >= DEVICES_NAMED)
		return;
	if (type == AE_IFCHR || type == AE_IFBLK)
		cbl_strv_pushf(&ctx->devices, "%s (%s %lu,%lu)", name, type == AE_IFBLK ? "block" : "character",
			       (unsigned long)archive_entry_rdevmajor(e), (unsigned long)archive_entry_rdevminor(e));
	else
		cbl_strv_pushf(&ctx->devices, "%s (a hard link to a device node)", name);
}


static int layer_open(layer *l, const char *layer_path, cbl_error **err)
{
	images_unpack_ctx *ctx = l->ctx;
	l->rootfd = open(ctx->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->rootfd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "open %s", ctx->root);
	archive_read_support_filter_gzip(l->a);
	archive_read_support_filter_zstd(l->a);
	archive_read_support_filter_xz(l->a);
	archive_read_support_filter_bzip2(l->a);
	archive_read_support_format_tar(l->a);
	int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
		    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
	if (ctx->as_root)
		flags |= ARCHIVE_EXTRACT_OWNER;
	archive_write_disk_set_options(l->w, flags);
	if (archive_read_open_filename(l->a, layer_path, 256 << 10) != ARCHIVE_OK)
		return cbl_error_set(err, CBL_EIO, "open %s: %s", layer_path, archive_error_string(l->a));
	return 0;
}

/* Creates the entry on disk (its header: the file, directory or link
 * itself).  raw: the name as the layer gives it, for messages. */
static int layer_write_header(layer *l, struct archive_entry *e, mode_t type, const char *raw,
			      cbl_error **err)
{
	images_unpack_ctx *ctx = l->ctx;
	int rc, r = archive_write_header(l->w, e);
	if (r < ARCHIVE_WARN && type != AE_IFDIR) {
		/* a directory in the way of a file: overlay semantics say the
		 * new entry replaces it (libarchive only removes empty ones) */
		struct stat st;
		const char *b2;
		split(l->name.ptr, &l->parent, &b2);
		if (fstatat(l->rootfd, l->name.ptr, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
			int pfd = open_dir_nofollow(l->rootfd, cbl_buf_cstr(&l->parent), err);
			if (pfd < 0)
				return pfd == -ENOENT ? cbl_error_set(err, CBL_EIO, "'%s' vanished", raw) : pfd;
			rc = rm_at(pfd, b2, err);
			close(pfd);
			if (rc)
				return rc;
			archive_entry_set_pathname(e, l->full.ptr);
			r = archive_write_header(l->w, e);
		}
	}
	if (r < ARCHIVE_WARN) {
		const char *msg = archive_error_string(l->w);
		size_t rl = strlen(ctx->root);
		const char *in = msg ? strstr(msg, ctx->root) : NULL;
		if (in && in[rl] == '/')
			return cbl_error_set(err, CBL_EINVAL, "entry '%s': %.*s%s: refused", raw, (int)(in - msg),
					     msg, in + rl + 1);
		return cbl_error_set(err, CBL_EINVAL, "entry '%s': %s", raw, msg ? msg : "cannot be created");
	}
	return 0;
}

/* Unpacks one entry of the layer: a whiteout deletes, anything else is
 * created under the root (device nodes skipped when not root). */
static int layer_entry(layer *l, struct archive_entry *e, cbl_error **err)
{
	images_unpack_ctx *ctx = l->ctx;
	if (!archive_entry_pathname(e))
		return cbl_error_set(err, CBL_EINVAL, "entry without a name");
	/* the entry's own storage changes below: keep the name as given */
	cbl_buf_reset(&l->rawb);
	cbl_buf_puts(&l->rawb, archive_entry_pathname(e));
	const char *raw = l->rawb.ptr;
	int rc = clean_name(raw, &l->name, "entry", err);
	if (rc)
		return rc;
	if (!l->name.len)
		return 0; /* "./": the root keeps its own mode */
	const char *base;
	split(l->name.ptr, &l->parent, &base);
	if (!strncmp(base, ".wh.", 4)) {
		if (!strcmp(base, ".wh..wh..opq"))
			return opaque(l->rootfd, &l->added, cbl_buf_cstr(&l->parent), err);
		if (strncmp(base, ".wh..wh.", 8))
			return whiteout(l->rootfd, &l->added, cbl_buf_cstr(&l->parent), base + 4, err);
		return 0;
	}
	mode_t type = archive_entry_filetype(e);
	const char *hl0 = archive_entry_hardlink(e);
	if (type == AE_IFCHR || type == AE_IFBLK ||
	    (hl0 && clean_name(hl0, &l->link, "hard link target", NULL) == 0 && set_has(&l->devices, l->link.ptr))) {
		skip_device(ctx, &l->devices, l->name.ptr, e, type);
		return 0;
	}
	set_add_path(&l->added, l->name.ptr);
	cbl_buf_reset(&l->full);
	cbl_buf_printf(&l->full, "%s/%s", ctx->root, l->name.ptr);
	archive_entry_set_pathname(e, l->full.ptr);
	const char *hl = archive_entry_hardlink(e);
	if (hl) {
		rc = clean_name(hl, &l->link, "hard link target", err);
		if (rc)
			return rc;
		if (!l->link.len)
			return cbl_error_set(err, CBL_EINVAL, "entry '%s' is a hard link to the root: refused", raw);
		char *t = cbl_xasprintf("%s/%s", ctx->root, l->link.ptr);
		archive_entry_set_hardlink(e, t);
		free(t);
	}
	if (!ctx->as_root && type == AE_IFDIR)
		archive_entry_set_perm(e, archive_entry_perm(e) | 0700);
	rc = layer_write_header(l, e, type, raw, err);
	if (rc)
		return rc;
	ctx->entries++;
	if (type == AE_IFREG && archive_entry_size(e) > 0 && !hl) {
		rc = copy_data(l->a, l->w, &ctx->bytes, err);
		if (rc) {
			cbl_error_wrap(err, "entry '%s'", raw);
			return rc;
		}
	}
	if (archive_write_finish_entry(l->w) < ARCHIVE_WARN)
		return cbl_error_set(err, CBL_EIO, "entry '%s': %s", raw, archive_error_string(l->w));
	return 0;
}

int images_unpack_layer(images_unpack_ctx *ctx, const char *layer_path, cbl_error **err)
{
	if (images_dl_load(err) < 0)
		return CBL_EIO;
	layer l = {.ctx = ctx, .a = archive_read_new(), .w = archive_write_disk_new(), .rootfd = -1};
	struct archive_entry *e;
	int rc = layer_open(&l, layer_path, err);
	while (!rc) {
		int r = archive_read_next_header(l.a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			rc = cbl_error_set(err, CBL_EINVAL, "not a readable tar layer: %s",
					   archive_error_string(l.a));
		else
			rc = layer_entry(&l, e, err);
	}
	/* directory modes and times are fixed up last (a 0555 directory must
	 * stay writable until its content is in) */
	if (!rc && archive_write_close(l.w) < ARCHIVE_WARN)
		rc = cbl_error_set(err, CBL_EIO, "finishing layer: %s", archive_error_string(l.w));
	archive_read_free(l.a);
	archive_write_free(l.w);
	if (l.rootfd >= 0)
		close(l.rootfd);
	set_release(&l.added);
	set_release(&l.devices);
	cbl_buf_release(&l.name);
	cbl_buf_release(&l.link);
	cbl_buf_release(&l.full);
	cbl_buf_release(&l.parent);
	cbl_buf_release(&l.rawb);
	return rc;
}
