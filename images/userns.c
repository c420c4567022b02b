/* images/userns.c - image roots of a normal user, with their owners.
 *
 * As root a layer is unpacked with its numeric owners.  A normal user with
 * subordinate ids (sandbox_ids) unpacks it the way rootless podman and
 * buildah do: inside a user namespace mapped like the build's sandbox
 * (0 = the user, 1..N = its subordinate ids), as root of that namespace, so
 * a layer's uid 0 becomes the user on disk, its uid 100 (apt's _apt) the
 * subordinate id 99 places further, and a build's sandbox, with the same
 * map, sees every file with the owner the image gave it.  Owners outside
 * the range (a uid above N) stay the user's, as libarchive leaves a file
 * whose chown fails.  Files owned by subordinate ids are not the user's to
 * remove outside: removal happens in such a namespace too.  Without
 * subordinate ids, a layer is unpacked as the user (every file the user's:
 * root's inside).  The map is recorded with the root (its summary's
 * "idmap"), and a root used under another map says so.
 *
 * Each layer is unpacked in a forked child (sandbox_ids_run), whose results
 * come back through shared memory.
 */
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/fs.h"

#include "images/dl.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

enum { DEVICES_BACK = 8 };

/* what a child hands back */
typedef struct mapped_result {
	int rc;               /* the CBL_E* code, 0 = done */
	char msg[1024];
	uint64_t bytes;
	uint64_t freed;
	size_t entries, skipped, ndev;
	char dev[DEVICES_BACK][160];
} mapped_result;

typedef struct mapped_job {
	const char *root;     /* unpack: the root; remove: the tree */
	const char *layer;    /* NULL: remove root */
	mapped_result *res;   /* MAP_SHARED */
} mapped_job;

char *images_idmap_string(const sandbox_ids *ids)
{
	if (ids->uid == 0)
		return cbl_xstrdup("root");
	if (!sandbox_ids_full(ids))
		return cbl_xasprintf("0:%lu:1/0:%lu:1", (unsigned long)ids->uid, (unsigned long)ids->gid);
	return cbl_xasprintf("0:%lu:1,1:%lu:%lu/0:%lu:1,1:%lu:%lu", (unsigned long)ids->uid,
			     (unsigned long)ids->subuid, (unsigned long)ids->nsubuid, (unsigned long)ids->gid,
			     (unsigned long)ids->subgid, (unsigned long)ids->nsubgid);
}

bool images_ids_mapped(const sandbox_ids *ids)
{
	return ids->uid != 0 && sandbox_ids_full(ids);
}

static uint64_t tree_bytes(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	uint64_t n = (uint64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode))
		return n;
	DIR *d = opendir(path);
	if (!d)
		return n;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *p = cbl_path_join(path, de->d_name);
		n += tree_bytes(p);
		free(p);
	}
	closedir(d);
	return n;
}

/* In the child, root of the mapped namespace. */
static int mapped_child(void *payload)
{
	mapped_job *j = payload;
	mapped_result *r = j->res;
	cbl_error *e = NULL;
	if (!j->layer) {
		r->freed = tree_bytes(j->root);
		r->rc = cbl_rm_rf(j->root, &e);
	} else {
		images_unpack_ctx ctx = {.root = j->root, .as_root = true, .devices = CBL_STRV_INIT};
		r->rc = images_unpack_layer(&ctx, j->layer, &e);
		r->bytes = ctx.bytes;
		r->entries = ctx.entries;
		r->skipped = ctx.skipped;
		for (size_t i = 0; i < ctx.devices.n && r->ndev < DEVICES_BACK; i++)
			snprintf(r->dev[r->ndev++], sizeof(r->dev[0]), "%s", ctx.devices.v[i]);
		cbl_strv_release(&ctx.devices);
	}
	if (r->rc)
		snprintf(r->msg, sizeof(r->msg), "%s", e && e->msg ? e->msg : "failed");
	cbl_error_free(e);
	return r->rc ? 1 : 0;
}

static int run_mapped(const sandbox_ids *ids, mapped_job *j, cbl_error **err)
{
	mapped_result *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return cbl_error_set_errno(err, CBL_EIO, errno, "images: mmap");
	memset(r, 0, sizeof(*r));
	j->res = r;
	int status = -1;
	int rc = sandbox_ids_run(ids, mapped_child, j, &status, err);
	if (!rc && status != 0)
		rc = cbl_error_set(err, r->rc ? r->rc : CBL_EIO, "%s", r->msg[0] ? r->msg : "the unpacking process failed");
	if (rc) {
		munmap(r, sizeof(*r));
		j->res = NULL;
	}
	return rc;
}

int images_unpack_layer_mapped(images_unpack_ctx *ctx, const sandbox_ids *ids, const char *layer_path,
			       cbl_error **err)
{
	/* libarchive loaded here, so the child need not */
	if (images_dl_load(err) < 0)
		return CBL_EIO;
	mapped_job j = {.root = ctx->root, .layer = layer_path};
	int rc = run_mapped(ids, &j, err);
	if (rc)
		return rc;
	ctx->bytes += j.res->bytes;
	ctx->entries += j.res->entries;
	ctx->skipped += j.res->skipped;
	for (size_t i = 0; i < j.res->ndev; i++)
		cbl_strv_push(&ctx->devices, j.res->dev[i]);
	munmap(j.res, sizeof(*j.res));
	return 0;
}

int images_remove_tree(const char *path, uint64_t *freed, cbl_error **err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	sandbox_ids ids;
	if (S_ISDIR(st.st_mode) && geteuid() != 0) {
		sandbox_ids_probe(&ids);
		if (images_ids_mapped(&ids)) {
			mapped_job j = {.root = path};
			int rc = run_mapped(&ids, &j, err);
			if (!rc) {
				if (freed)
					*freed += j.res->freed;
				munmap(j.res, sizeof(*j.res));
			}
			return rc;
		}
	}
	if (freed)
		*freed += tree_bytes(path);
	return cbl_rm_rf(path, err);
}
