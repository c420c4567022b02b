/* images/images.h - build images without Docker: the curated-image catalog,
 * an OCI / Docker registry (HTTP API v2) client, offline import, a layer
 * store and unpacked root filesystems.
 *
 * An image name (`-i/--image`) is one of:
 *   "host"                      the host's own / (the runner's default)
 *   /abs/dir, ./dir, ../dir     a local directory used as the root filesystem
 *   a curated CodeBuild name    "aws/codebuild/standard:7.0": looked up in the
 *                               catalog (images/catalog.json), pulled from the
 *                               public location it names
 *   any other reference         "[registry[:port]/]repo[:tag][@sha256:...]", as
 *                               docker reads it (docker.io and library/ defaults)
 *
 * Store layout under <home>/images/ (home = the state directory,
 * store_default_home()):
 *   blobs/sha256/<hex>        verified blobs: manifests, configs, layers (once each)
 *   blobs/sha256/<hex>.part   an interrupted download, resumed with HTTP Range
 *   refs/<key>.json           image name -> manifest digest
 *   roots/<hex>/              the unpacked root filesystem of manifest <hex>
 *   roots/<hex>.json          its config summary (Env, WorkingDir, User, arch,
 *                             size); its mtime is the image's last use
 *   tmp/                      work in progress (never read by a build)
 *   lock                      flock: pulls, imports, rm and prune are serialized
 * The store is 0700 (made so when opened): roots keep the layers' owners and
 * setuid bits when unpacked as root, so no other local user may reach them.
 * Device nodes in layers are never created (a warning says which).
 * A root is built in tmp/ and renamed into roots/ only when complete, and a
 * blob is renamed into blobs/ only when its SHA-256 matches, so a reader never
 * sees half of anything.  Roots are immutable once published: the runner uses
 * one as the read-only lower layer of the build's overlay.
 *
 * Errors: CBL_EINVAL (bad reference, unsupported manifest, digest mismatch,
 * escaping archive entries), CBL_ENOENT (unknown image, offline and absent),
 * CBL_EIO (network, filesystem).  Library code never prints: progress goes
 * through the callback.
 * Thread safety: functions are reentrant; concurrent processes sharing a store
 * serialize their writes through the store's lock file.
 */
#ifndef IMAGES_IMAGES_H
#define IMAGES_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/strv.h"

typedef enum images_kind {
	IMAGES_KIND_HOST,      /* "host": the runner keeps using the host's / */
	IMAGES_KIND_DIR,       /* a local directory */
	IMAGES_KIND_REGISTRY,  /* an OCI image (pulled or imported) */
} images_kind;

/* Which kind of name this is (purely lexical, no I/O). */
images_kind images_classify(const char *image);

/* ---- progress ---------------------------------------------------------- */

typedef enum images_stage {
	IMAGES_STAGE_MANIFEST,  /* resolving the reference (message = reference) */
	IMAGES_STAGE_DOWNLOAD,  /* bytes arriving; digest = the blob */
	IMAGES_STAGE_BLOB_DONE, /* one blob verified and stored (or already present) */
	IMAGES_STAGE_UNPACK,    /* index = layer being applied (0-based) */
	IMAGES_STAGE_DONE,      /* root published (message = root path) */
} images_stage;

typedef struct images_progress {
	images_stage stage;
	const char *digest;     /* the blob or layer concerned, or NULL */
	uint64_t done, total;   /* this blob's bytes (total 0 = unknown) */
	uint64_t all_done;      /* bytes of all layers of this pull present so far */
	uint64_t all_total;     /* bytes of all layers of this pull */
	size_t index, count;    /* layer index and number of layers */
	const char *message;
} images_progress;

typedef void (*images_progress_fn)(const images_progress *p, void *payload);

/* ---- resolve / pull ---------------------------------------------------- */

typedef struct images_resolve_opts {
	bool offline;          /* never contact a registry: absent = CBL_ENOENT */
	bool pull;             /* re-resolve the tag in the registry even if present */
	const char *const *insecure_registries; /* NULL-terminated "host[:port]":
						   plain HTTP / unverified TLS allowed */
	const char *username;  /* basic credentials for the registry (and its token */
	const char *password;  /*  service); NULL = docker's config.json "auths" */
	const char *auth_file; /* docker config.json; NULL = $DOCKER_CONFIG/config.json
				  or ~/.docker/config.json (missing is fine) */
	const char *platform;  /* "linux/arm64[/v8]"; NULL = the host's */
	int parallel;          /* concurrent layer downloads; 0 = 3 */
	int retries;           /* retries of an interrupted blob download within one
				  pull (each resumes with Range); -1 = none, 0 = 2 */
	images_progress_fn progress;
	void *payload;
} images_resolve_opts;

#define IMAGES_RESOLVE_OPTS_INIT {0}

/* A usable root filesystem and how to run in it. */
typedef struct images_root {
	images_kind kind;
	char *name;         /* the image as named (normalized for registry images) */
	char *rootfs;       /* absolute path of the root directory; NULL for HOST */
	char *digest;       /* "sha256:<hex>" manifest digest; NULL for HOST / DIR */
	cbl_strv env;       /* the image config's Env ("NAME=value"), in order */
	char *working_dir;  /* config WorkingDir, NULL if unset */
	char *user;         /* config User ("", "name", "uid[:gid]"), NULL if unset */
	char *os, *arch, *variant; /* config platform; NULL for HOST / DIR */
	bool pulled;        /* true when this call downloaded or unpacked anything */
	cbl_strv warnings;  /* what this call's unpacking left out (device nodes),
			       for the caller to show; empty when nothing was unpacked */
} images_root;

/* Resolves an image name to a root filesystem, pulling and unpacking it when
 * it is not in the store yet (unless o->offline).  A second call for the
 * same image is a few stat calls.  "host" gives kind HOST and rootfs NULL.
 * o may be NULL (defaults).  *out: caller frees with images_root_free. */
int images_resolve(const char *home, const char *image, const images_resolve_opts *o,
		   images_root **out, cbl_error **err);
void images_root_free(images_root *r);

/* Marks a registry image's root as in use (a shared flock) until the
 * returned descriptor is closed: `images rm` / `prune` leave it alone
 * meanwhile.  -1 (no error) for HOST / DIR roots; CBL_ENOENT when the root
 * was removed since it was resolved. */
int images_root_hold(const images_root *r, cbl_error **err);

/* Pulls (always re-reading the tag from the registry) and unpacks an image;
 * *out as images_resolve.  The CLI's `images pull`. */
int images_pull(const char *home, const char *image, const images_resolve_opts *o,
		images_root **out, cbl_error **err);

/* Imports a `docker save` tarball or an OCI layout (directory or tar) and
 * unpacks it.  name: the name to store it under; NULL = the archive's own
 * (docker save's RepoTags, or the OCI io.containerd.image.name / a full
 * reference in org.opencontainers.image.ref.name); an OCI layout with several
 * images needs name's tag to match one's ref.name, else the only one is used.
 * *out as images_resolve (may be NULL). */
int images_import(const char *home, const char *path, const char *name,
		  const images_resolve_opts *o, images_root **out, cbl_error **err);

/* ---- store management (the CLI's images ls / rm / prune) --------------- */

typedef struct images_info {
	char *name;          /* normalized reference */
	char *digest;        /* manifest digest */
	uint64_t blob_bytes; /* compressed layer + config bytes (as downloaded) */
	uint64_t root_bytes; /* unpacked root size (0 if not unpacked) */
	int64_t created_us;  /* when pulled or imported */
	int64_t last_used_us;/* last resolve (0 = never) */
	bool unpacked;
} images_info;

typedef struct images_list {
	images_info *items;
	size_t n;
} images_list;

/* Every named image, sorted by name. */
int images_ls(const char *home, images_list **out, cbl_error **err);
void images_list_free(images_list *l);

/* Removes an image name; its root and blobs go too when no other name uses
 * them.  CBL_ENOENT if unknown. *freed (may be NULL) = bytes reclaimed. */
int images_rm(const char *home, const char *image, uint64_t *freed, cbl_error **err);

/* Removes everything no name uses: roots, blobs, partial downloads, stale
 * work directories.  *freed (may be NULL) = bytes reclaimed. */
int images_prune(const char *home, uint64_t *freed, cbl_error **err);

/* ---- catalog: curated images and their runtime versions --------------- */

typedef struct images_catalog images_catalog;     /* opaque */
typedef struct images_curated images_curated;     /* one curated image, borrowed */

/* The catalog embedded in the binary at build time (images/catalog.json). */
int images_catalog_default(images_catalog **out, cbl_error **err);
/* A catalog from JSON text (tests, or a user's file). */
int images_catalog_parse(const char *json, size_t len, images_catalog **out, cbl_error **err);
void images_catalog_free(images_catalog *c);

/* The curated image named image (its own name, an alias, or its public
 * location), or NULL. */
const images_curated *images_catalog_find(const images_catalog *c, const char *image);
const char *images_curated_name(const images_curated *ci);      /* aws/codebuild/... */
const char *images_curated_location(const images_curated *ci);  /* registry ref or NULL */
const char *images_curated_os(const images_curated *ci);        /* "Ubuntu 22.04" or NULL */
const char *images_curated_arch(const images_curated *ci);      /* "amd64", "arm64" or NULL */
bool images_curated_maintained(const images_curated *ci);
/* The catalog's images in catalog order: count, and the i-th (NULL past the end). */
size_t images_catalog_count(const images_catalog *c);
const images_curated *images_catalog_at(const images_catalog *c, size_t i);
/* Runtime names the image offers, in catalog order (borrowed, NULL-terminated). */
const char *const *images_curated_runtimes(const images_curated *ci);
/* Versions of one runtime (borrowed, NULL-terminated) or NULL if unknown. */
const char *const *images_curated_versions(const images_curated *ci, const char *runtime);
/* Default version (the image's `global` selection) or NULL. */
const char *images_curated_default(const images_curated *ci, const char *runtime);
/* The image's users (catalog "users": root and codebuild-user, which every
 * curated Dockerfile adds), borrowed, NULL-terminated; and one lookup. */
const char *const *images_curated_users(const images_curated *ci);
bool images_curated_has_user(const images_curated *ci, const char *user);
/* The curated images for this machine's architecture that offer runtime at
 * version (images_runtime_check passes), maintained ones first, in catalog
 * order: their names appended to out. */
void images_catalog_having(const images_catalog *c, const char *runtime, const char *version, cbl_strv *out);
/* The same for the curated images that have a user (run-as). */
void images_catalog_with_user(const images_catalog *c, const char *user, cbl_strv *out);

/* Checks one runtime-versions entry against an image and resolves the
 * version form (exact key, "<major>.x", "latest") to one of the image's
 * keys.  ci NULL = the host image: the host's runtimes are detected (PATH
 * lookup, then `X --version` of the one runtime asked for).  Errors are
 * CBL_EINVAL with the service's wording:
 *   Unknown runtime named 'x'. This build image has the following runtimes: a, b
 *   Unknown runtime version named 'v' of x. This build image has the following versions: 1, 2
 * *out_version: the resolved key (caller frees; may be NULL). */
int images_runtime_check(const images_curated *ci, const char *runtime, const char *version,
			 char **out_version, cbl_error **err);

/* The host's runtimes (catalog runtime names: nodejs, python, java, golang,
 * ruby, php, dotnet, rust, docker) by PATH lookup only: cheap. */
void images_host_runtimes(cbl_strv *out);
/* The host's version of one runtime ("3.11", "18", "17", "1.21"), by running
 * its `--version`.  CBL_ENOENT when absent. */
int images_host_runtime_version(const char *runtime, char **out, cbl_error **err);

/* ---- the host image: one rule for runtime-versions ----------------------
 * The host is no curated image: it has one version V of each runtime, as the
 * runtime reports it (nodejs 20.20.2, python 3.11.7, java 17.0.15).  A
 * runtime-versions value matches V when
 *   - it is "latest" (whatever the host has), or
 *   - without a distribution prefix (corretto17 -> 17, openjdk11 -> 11) and
 *     without a trailing ".x", its components are V's leading components,
 *     compared whole: 20, 20.x, 20.20 match 20.20.2; 3, 3.x, 3.11, 3.11.x
 *     match 3.11.7; 3.1 does not.
 * A match through a distribution prefix the host's runtime does not name
 * (corretto17 on an OpenJDK 17) is still a match, flagged other_dist so the
 * caller can say so.  Curated images keep the service's rule instead (an
 * exact key, "<major>.x", "latest": images_runtime_check). */
bool images_host_version_matches(const char *have, const char *want);

typedef struct images_host_choice {
	char *have;       /* the host's version as reported ("20.20.2"); NULL = no such runtime */
	char *key;        /* the same as a curated image would name it ("20", "3.11") */
	bool match;       /* version matches have (the rule above) */
	bool other_dist;  /* matched, but the host's runtime is another distribution */
} images_host_choice;

/* One runtime-versions entry against the host: *out filled (caller
 * releases), 0 even when the host lacks the runtime or the version; an error
 * only when the runtime is there but its version cannot be read (CBL_EIO). */
int images_host_choose(const char *runtime, const char *version, images_host_choice *out, cbl_error **err);
void images_host_choice_release(images_host_choice *c);

#endif
