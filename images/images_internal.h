/* images/images_internal.h - the pieces of images/ that unit tests reach:
 * reference parsing, manifests, the blob store, the registry client and the
 * layer unpacker.  Not for other modules (they use images/images.h). */
#ifndef IMAGES_IMAGES_INTERNAL_H
#define IMAGES_IMAGES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "images/images.h"
#include "sandbox/sandbox.h"
#include "util/error.h"
#include "util/strv.h"

/* ---- references (ref.c) ----------------------------------------------- */

/* docker's normalized reference: domain "docker.io" and "library/" added
 * for a one-component Docker Hub name, tag "latest" when neither tag nor
 * digest is given. */
typedef struct images_ref {
	char *domain;  /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
	char *path;    /* "library/busybox" */
	char *tag;     /* NULL when only a digest was given */
	char *digest;  /* "sha256:<64 hex>" or NULL */
} images_ref;

#define IMAGES_DEFAULT_DOMAIN "docker.io"

int images_ref_parse(const char *s, images_ref *out, cbl_error **err);
void images_ref_release(images_ref *r);
/* "domain/path[:tag][@digest]" (caller frees). */
char *images_ref_string(const images_ref *r);

/* True for "sha256:" + 64 lower-case hex digits. */
bool images_digest_valid(const char *digest);
/* "sha256:<hex>" of data into out (72 bytes). */
void images_sha256_digest(const void *data, size_t len, char out[72]);
/* The hex part of a digest (borrowed pointer into it). */
const char *images_digest_hex(const char *digest);

/* True when the registry host may be spoken to in plain HTTP / without TLS
 * verification: 127.0.0.0/8, ::1, localhost, or listed in insecure. */
bool images_host_insecure(const char *hostport, const char *const *insecure);

/* ---- manifests (manifest.c) ------------------------------------------- */

#define IMAGES_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define IMAGES_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define IMAGES_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define IMAGES_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMAGES_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define IMAGES_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

typedef struct images_desc {
	char *media_type;
	char *digest;
	int64_t size;
	char *os, *arch, *variant;  /* index entries: platform (may be NULL) */
	char *ref_name;             /* org.opencontainers.image.ref.name */
	char *image_name;           /* io.containerd.image.name */
} images_desc;

typedef enum images_manifest_kind {
	IMAGES_MANIFEST_IMAGE,
	IMAGES_MANIFEST_INDEX,
} images_manifest_kind;

typedef struct images_manifest {
	images_manifest_kind kind;
	images_desc config;        /* IMAGE */
	images_desc *layers;       /* IMAGE */
	size_t nlayers;
	images_desc *manifests;    /* INDEX */
	size_t nmanifests;
} images_manifest;

/* Parses a manifest, a manifest list or an OCI index.  content_type (may be
 * NULL) is the registry's Content-Type.  Schema 1 manifests are refused with
 * a clear error, as are layer media types we cannot unpack. */
int images_manifest_parse(const char *body, size_t len, const char *content_type,
			  images_manifest *out, cbl_error **err);
void images_manifest_release(images_manifest *m);

typedef struct images_platform {
	char *os, *arch, *variant;
} images_platform;

/* The host's platform (linux + amd64 / arm64 / arm v7 / ...). */
void images_platform_host(images_platform *out);
/* "os/arch[/variant]" */
int images_platform_parse(const char *s, images_platform *out, cbl_error **err);
void images_platform_release(images_platform *p);
/* Picks the index entry for the platform: os and architecture must match;
 * the variant must match when both sides name one (arm64's "v8" and none
 * are the same).  Attestation entries ("unknown") never match.  Error lists
 * what the index offers. */
int images_index_select(const images_manifest *index, const images_platform *want, size_t *out,
			cbl_error **err);

typedef struct images_config {
	char *os, *arch, *variant;
	cbl_strv env;
	char *working_dir;
	char *user;
	cbl_strv diff_ids;
} images_config;

int images_config_parse(const char *body, size_t len, images_config *out, cbl_error **err);
void images_config_release(images_config *c);

/* The name an image is stored under (a curated name, or the docker-normalized
 * reference) and where it is pulled from (NULL: a curated image with no
 * public location).  pull_ref may be NULL. */
int images_name_canonical(const images_catalog *cat, const char *image, char **name, char **pull_ref,
			  cbl_error **err);

/* ---- the store (store.c) ---------------------------------------------- */

typedef struct images_store {
	char *dir;      /* <home>/images */
	int lock_fd;    /* -1 unless locked */
} images_store;

#define IMAGES_STORE_INIT {NULL, -1}

int images_store_open(images_store *s, const char *home, cbl_error **err);
void images_store_release(images_store *s);
/* Exclusive lock over the store's writers (blocks). */
int images_store_lock(images_store *s, cbl_error **err);
void images_store_unlock(images_store *s);

/* <dir>/blobs/sha256/<hex> (caller frees). */
char *images_store_blob_path(const images_store *s, const char *digest);
/* True when the blob is stored (and has size bytes, when size >= 0). */
bool images_store_has_blob(const images_store *s, const char *digest, int64_t size);
/* Stores a small blob from memory; digest NULL = computed (into out_digest,
 * 72 bytes, may be NULL), else verified. */
int images_store_put_blob(images_store *s, const char *digest, const void *data, size_t len,
			  char *out_digest, cbl_error **err);
/* Reads a small stored blob (max 16 MiB) and checks its digest. */
int images_store_read_blob(const images_store *s, const char *digest, char **out, size_t *len,
			   cbl_error **err);

/* Streams one blob into the store: hashed while written to a .part file,
 * renamed to its digest only when the digest (and size) match. */
typedef struct images_blob_writer {
	int fd;
	char *part;        /* the .part file */
	char *digest;      /* expected "sha256:..." or NULL (computed at commit) */
	int64_t size;      /* expected size or -1 */
	uint64_t n;        /* bytes so far (including a resumed prefix) */
	EVP_MD_CTX *md;
	const images_store *store;
} images_blob_writer;

#define IMAGES_BLOB_WRITER_INIT {-1, NULL, NULL, -1, 0, NULL, NULL}

/* resume: keep an existing .part of this digest (its bytes are re-hashed and
 * w->n says where to continue), else start empty. */
int images_blob_writer_open(images_blob_writer *w, const images_store *s, const char *digest,
			    int64_t size, bool resume, cbl_error **err);
int images_blob_writer_write(images_blob_writer *w, const void *data, size_t len, cbl_error **err);
/* Drops what was written and starts again from byte 0. */
int images_blob_writer_restart(images_blob_writer *w, cbl_error **err);
/* Verifies and publishes.  out_digest (72 bytes, may be NULL) gets the
 * digest.  On a mismatch the .part is deleted and nothing is stored. */
int images_blob_writer_commit(images_blob_writer *w, char *out_digest, cbl_error **err);
/* Closes; keep_part leaves the .part for a later resume, else deletes it. */
void images_blob_writer_release(images_blob_writer *w, bool keep_part);

/* name -> manifest digest records */
int images_store_ref_set(images_store *s, const char *name, const char *digest, cbl_error **err);
/* CBL_ENOENT when the name is unknown. */
int images_store_ref_get(const images_store *s, const char *name, char **out_digest,
			 cbl_error **err);

/* Builds roots/<hex>/ for a stored manifest (its config and layers must be
 * stored) unless it exists; then fills *out (kind REGISTRY, name).  touch:
 * record a use. */
int images_store_materialize(images_store *s, const char *name, const char *manifest_digest,
			     const images_resolve_opts *o, bool *did_unpack, images_root **out,
			     cbl_error **err);
/* Loads an existing root (no lock, no writes but the last-use time).
 * CBL_ENOENT when not unpacked. */
int images_store_root_load(const images_store *s, const char *name, const char *manifest_digest,
			   images_root **out, cbl_error **err);

/* images_rm's work once the name is normalized. */
int images_store_rm_name(const char *home, const char *name, uint64_t *freed, cbl_error **err);

/* ---- unpacking (unpack.c) --------------------------------------------- */

typedef struct images_unpack_ctx {
	const char *root;  /* realpath of the root being built */
	bool as_root;      /* keep owners (euid 0); else files belong to us */
	uint64_t bytes;    /* regular-file bytes written */
	size_t entries;
	size_t skipped;    /* device nodes left out (and hard links to them) */
	cbl_strv devices;  /* the first few of them: "dev/lo0 (block 7,0)"; the caller
			      releases it */
} images_unpack_ctx;

/* Applies one layer (tar, gzip or zstd; detected) to ctx->root: OCI
 * whiteouts, permissions, owners, xattrs, links.  Refuses (CBL_EINVAL)
 * entries with absolute paths or ".." components and anything that would be
 * written through a symlink.  Device nodes are never created, as root
 * either (a build gets its own minimal /dev): skipped and counted. */
int images_unpack_layer(images_unpack_ctx *ctx, const char *layer_path, cbl_error **err);

/* ---- a normal user's roots (userns.c) ----------------------------------- */

/* True when a normal user's roots are unpacked with their owners: not root,
 * and subordinate ids the sandbox maps (sandbox_ids_full). */
bool images_ids_mapped(const sandbox_ids *ids);
/* The id map roots are unpacked for, as recorded with a root ("root", or
 * "0:UID:1,1:START:COUNT/0:GID:1,1:START:COUNT", the gid map after the
 * '/').  Caller frees. */
char *images_idmap_string(const sandbox_ids *ids);
/* images_unpack_layer with owners, for a normal user (images_ids_mapped):
 * in a child that is root of a user namespace with the sandbox's map.
 * ctx's counts and devices are added to. */
int images_unpack_layer_mapped(images_unpack_ctx *ctx, const sandbox_ids *ids, const char *layer_path,
			       cbl_error **err);
/* rm -rf of a root (or anything in the store), with *freed (may be NULL)
 * increased by what it took on disk: for a normal user with subordinate
 * ids, a directory is removed in such a namespace (its files may belong to
 * them).  Missing path: 0. */
int images_remove_tree(const char *path, uint64_t *freed, cbl_error **err);

/* ---- registry client (registry.c) -------------------------------------- */

typedef struct images_registry images_registry;

typedef struct images_challenge {
	char *scheme;   /* "bearer" / "basic" (lower-cased) */
	char *realm, *service, *scope;
} images_challenge;

/* Parses a WWW-Authenticate header value. */
int images_challenge_parse(const char *header, images_challenge *out, cbl_error **err);
void images_challenge_release(images_challenge *c);

int images_registry_open(images_registry **out, const images_ref *ref, const images_catalog *cat,
			 const images_resolve_opts *o, cbl_error **err);
void images_registry_free(images_registry *r);
/* GET /v2/<repo>/manifests/<reference>; verifies a by-digest fetch, and
 * gives the digest of what came (72 bytes). */
int images_registry_manifest(images_registry *r, const char *reference, char **out, size_t *len,
			     char **content_type, char *out_digest, cbl_error **err);
/* Downloads the blobs not yet stored, a few at a time, resuming .part files;
 * each is verified and stored. */
int images_registry_fetch_blobs(images_registry *r, images_store *s, const images_desc *const *descs,
				size_t n, cbl_error **err);

/* ---- catalog (catalog.c) ----------------------------------------------- */

/* The registry endpoint for a reference's domain ("docker.io" has another
 * API host), from the catalog's "endpoints"; borrowed, or domain itself. */
const char *images_catalog_endpoint(const images_catalog *c, const char *domain);

/* Parses the version out of `X --version` output for a runtime
 * ("Python 3.11.2" -> "3.11", "v18.19.0" -> "18"). Caller frees; NULL if none. */
char *images_host_parse_version(const char *runtime, const char *output);
/* The whole version ("v20.20.2" -> "20.20.2", "java version \"1.8.0_392\"" ->
 * "8.0"). Caller frees; NULL if none. */
char *images_host_parse_full_version(const char *runtime, const char *output);

#endif
