/* source/checkout.c - the checkout of a fresh clone (source/
 * source_internal.h): whether its filters can be left out, and the
 * checkout itself with several threads when they can.
 *
 * Why: libgit2's checkout looks up every file's attributes to choose its
 * filters (CRLF conversion, ident), and each lookup resolves the file's
 * whole path with realpath(3): some 18 readlink calls per file under a
 * build's directory, 90,000 for a checkout of 5,000 files, a good part of
 * the checkout's time.  When no attribute can be set and the config asks
 * for no conversion, no filter can apply, and the checkout may skip them
 * (git_checkout_options.disable_filters) with the same result.
 *
 * Where attributes come from, as libgit2 1.8 reads them (attr.c): the
 * .gitattributes files of the tree being checked out, $GIT_DIR/info/
 * attributes, core.attributesFile (default <XDG config dir>/git/attributes)
 * and the system's gitattributes.  Without attributes, only core.autocrlf
 * converts anything on checkout; core.eol is honoured only for files with
 * a text attribute, and is treated as a reason to keep the filters all the
 * same (the cautious side).
 */
#include "source/source_internal.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <git2/sys/errors.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* A file named `name` in one of the directories of a libgit2 search path
 * (GIT_OPT_GET_SEARCH_PATH: ':'-separated). */
static bool in_search_path(git_config_level_t level, const char *name)
{
	git_buf dirs = GIT_BUF_INIT;
	bool found = false;
	if (git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH, level, &dirs) < 0) {
		git_error_clear();
		return true; /* unknown: as if there were one */
	}
	for (const char *p = dirs.ptr ? dirs.ptr : ""; *p && !found;) {
		size_t n = strcspn(p, ":");
		if (n) {
			char *dir = cbl_xstrndup(p, n), *f = cbl_path_join(dir, name);
			found = file_exists(f);
			free(f);
			free(dir);
		}
		p += n + (p[n] == ':');
	}
	git_buf_dispose(&dirs);
	return found;
}

/* An attributes file outside the tree, or config that converts. */
static bool outside_sources(git_repository *repo)
{
	git_config *cfg = NULL;
	git_config_entry *e = NULL;
	char *info = cbl_path_join(git_repository_path(repo), "info/attributes");
	bool any = file_exists(info);
	free(info);
	if (!any && git_repository_config_snapshot(&cfg, repo) < 0)
		any = true;
	if (!any && git_config_get_entry(&e, cfg, "core.autocrlf") == 0) {
		int b = 1;
		any = git_config_parse_bool(&b, e->value) < 0 || b;
		git_config_entry_free(e);
		e = NULL;
	}
	if (!any && git_config_get_entry(&e, cfg, "core.eol") == 0) {
		any = !e->value || (strcmp(e->value, "lf") && strcmp(e->value, "native"));
		git_config_entry_free(e);
		e = NULL;
	}
	if (!any && git_config_get_entry(&e, cfg, "core.attributesfile") == 0) {
		git_buf path = GIT_BUF_INIT;
		/* "~/..." expanded as libgit2 does; unreadable: assume a file */
		any = git_config_get_path(&path, cfg, "core.attributesfile") < 0 || file_exists(path.ptr);
		git_buf_dispose(&path);
		git_config_entry_free(e);
	} else if (!any) {
		any = in_search_path(GIT_CONFIG_LEVEL_XDG, "attributes");
	}
	if (!any)
		any = in_search_path(GIT_CONFIG_LEVEL_SYSTEM, "gitattributes");
	git_error_clear();
	git_config_free(cfg);
	return any;
}

static int find_gitattributes(const char *root, const git_tree_entry *entry, void *payload)
{
	(void)root;
	if (git_tree_entry_type(entry) == GIT_OBJECT_BLOB && !strcmp(git_tree_entry_name(entry), ".gitattributes")) {
		*(bool *)payload = true;
		return -1; /* found: stop */
	}
	return 0;
}

bool source_checkout_needs_filters(git_repository *repo, const git_oid *commit)
{
	git_commit *cm = NULL;
	git_tree *tree = NULL;
	bool found = false;
	if (outside_sources(repo))
		return true;
	if (git_commit_lookup(&cm, repo, commit) < 0 || git_commit_tree(&tree, cm) < 0)
		found = true;
	else if (git_tree_walk(tree, GIT_TREEWALK_PRE, find_gitattributes, &found) < 0 && !found)
		found = true; /* the walk failed: let the checkout find out */
	git_error_clear();
	git_tree_free(tree);
	git_commit_free(cm);
	return found;
}

/* ------------------------------------------------------ fast checkout --- */

/* Why a checkout of our own (source_checkout_fast): creating the files is
 * most of a clone's time (a few hundred microseconds per file on ext4), and
 * libgit2 (like git, whose checkout.workers defaults to 1) creates them one
 * at a time.  Here a few threads do, each reading blobs through an object
 * database of its own (libgit2 objects are not shared between threads); the
 * index is then written once, with each file's stat data, as libgit2's
 * checkout would.  Only for the plain case: into an empty work tree, no
 * filter (source_checkout_needs_filters), and a tree whose names are all
 * ordinary; anything else goes to libgit2's checkout, which also rejects
 * dangerous names (".git", "..", NTFS short names) with its own errors. */

#define CO_CHUNK 32
#define CO_MAX_WORKERS 4
#define CO_MIN_PER_WORKER 128
#define CO_PROGRESS_US 100000

typedef struct co_entry {
	char *path;
	git_oid id;
	uint32_t mode; /* as in the tree: 040000, 0100644, 0100755, 0120000, 0160000 */
	struct stat st;
} co_entry;

typedef struct co_job {
	co_entry *v;
	size_t n, cap;
	size_t files; /* entries that are not directories (what progress counts) */
	bool unusual; /* a name or mode this checkout leaves to libgit2 */
	int wfd;      /* the work tree */
	const char *objects, *alternate;
	atomic_size_t next, done;
	atomic_bool failed;
	pthread_mutex_t lock;
	cbl_error *err; /* the first failure, under lock */
} co_job;

static bool ieq(const char *a, const char *b)
{
	return !strcasecmp(a, b);
}

/* Names libgit2 would refuse or treat specially (path.c's validation with
 * core.protectNTFS, its default): left to it. */
static bool unusual_name(const char *name, uint32_t mode)
{
	size_t n = strlen(name);
	if (!n || !strcmp(name, ".") || !strcmp(name, "..") || strpbrk(name, "\\:") || !strncasecmp(name, "git~", 4))
		return true;
	if (!strncasecmp(name, ".git", 4) && strspn(name + 4, ". ") == n - 4)
		return true; /* .git, ".git.", ".git " */
	if (n && (name[n - 1] == ' ' || name[n - 1] == '.'))
		return true;
	if (mode == GIT_FILEMODE_LINK &&
	    (ieq(name, ".gitmodules") || ieq(name, ".gitignore") || ieq(name, ".gitattributes")))
		return true;
	return false;
}

static int co_collect(const char *root, const git_tree_entry *te, void *payload)
{
	co_job *j = payload;
	uint32_t mode = (uint32_t)git_tree_entry_filemode(te);
	const char *name = git_tree_entry_name(te);
	if (unusual_name(name, mode) ||
	    (mode != GIT_FILEMODE_TREE && mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE &&
	     mode != GIT_FILEMODE_LINK && mode != GIT_FILEMODE_COMMIT)) {
		j->unusual = true;
		return -1;
	}
	CBL_GROW(j->v, j->n + 1, j->cap);
	co_entry *e = &j->v[j->n++];
	memset(e, 0, sizeof(*e));
	e->path = cbl_xasprintf("%s%s", root, name);
	git_oid_cpy(&e->id, git_tree_entry_id(te));
	e->mode = mode;
	j->files += mode != GIT_FILEMODE_TREE;
	return 0;
}

static void co_fail(co_job *j, cbl_error *e)
{
	pthread_mutex_lock(&j->lock);
	if (!j->err)
		j->err = e;
	else
		cbl_error_free(e);
	pthread_mutex_unlock(&j->lock);
	atomic_store(&j->failed, true);
}

/* The directories above path (another thread's part may not have made
 * them yet). */
static int co_parents(co_job *j, const char *path)
{
	char *p = cbl_xstrdup(path);
	int rc = 0;
	for (char *s = strchr(p, '/'); s && !rc; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdirat(j->wfd, p, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	free(p);
	return rc;
}

static int co_write_blob(co_job *j, co_entry *e, const void *data, size_t len)
{
	for (int tries = 0;; tries++) {
		int r;
		if (e->mode == GIT_FILEMODE_LINK) {
			char *target = cbl_xstrndup(data, len);
			r = symlinkat(target, j->wfd, e->path);
			free(target);
			if (r == 0)
				return fstatat(j->wfd, e->path, &e->st, AT_SYMLINK_NOFOLLOW);
		} else {
			int fd = openat(j->wfd, e->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
					e->mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644);
			if (fd >= 0) {
				r = cbl_write_all(fd, data, len) < 0 || fstat(fd, &e->st) < 0 ? -1 : 0;
				int saved = errno;
				if (close(fd) < 0 && !r)
					r = -1;
				else
					errno = saved;
				return r;
			}
		}
		if (errno != ENOENT || tries || co_parents(j, e->path) < 0)
			return -1;
	}
}

static int co_one(co_job *j, git_odb *odb, co_entry *e)
{
	if (e->mode == GIT_FILEMODE_TREE || e->mode == GIT_FILEMODE_COMMIT) {
		/* a submodule is an empty directory until it is fetched */
		if (mkdirat(j->wfd, e->path, 0755) < 0 && !(errno == ENOENT && co_parents(j, e->path) == 0 &&
							    mkdirat(j->wfd, e->path, 0755) == 0) &&
		    errno != EEXIST)
			return -1;
		return e->mode == GIT_FILEMODE_COMMIT ? fstatat(j->wfd, e->path, &e->st, 0) : 0;
	}
	git_odb_object *obj = NULL;
	if (git_odb_read(&obj, odb, &e->id) < 0) {
		errno = 0;
		return -2;
	}
	int r = co_write_blob(j, e, git_odb_object_data(obj), git_odb_object_size(obj));
	git_odb_object_free(obj);
	return r;
}

static void co_failed_at(co_job *j, const co_entry *e, int r)
{
	cbl_error *err = NULL;
	const git_error *ge = git_error_last();
	if (r == -2)
		cbl_error_set(&err, CBL_EIO, "checkout failed: cannot read '%s': %s", e->path,
			      ge && ge->message ? ge->message : "unknown error");
	else
		cbl_error_set_errno(&err, CBL_EIO, errno, "checkout failed: cannot create '%s'", e->path);
	co_fail(j, err);
}

/* One worker: chunks of entries in tree order until none are left.  The
 * calling thread's worker (progress set) reports between its chunks. */
static void co_work(co_job *j, git_checkout_progress_cb progress, void *payload)
{
	git_odb *odb = NULL;
	int64_t last = cbl_mono_us();
	if (git_odb_open(&odb, j->objects) < 0 || (j->alternate && git_odb_add_disk_alternate(odb, j->alternate) < 0)) {
		cbl_error *e = NULL;
		const git_error *ge = git_error_last();
		cbl_error_set(&e, CBL_EIO, "checkout failed: cannot open the objects: %s",
			      ge && ge->message ? ge->message : "unknown error");
		co_fail(j, e);
		git_odb_free(odb);
		return;
	}
	while (!atomic_load(&j->failed)) {
		size_t at = atomic_fetch_add(&j->next, CO_CHUNK);
		if (at >= j->n)
			break;
		size_t end = at + CO_CHUNK < j->n ? at + CO_CHUNK : j->n;
		for (size_t i = at; i < end; i++) {
			int r = co_one(j, odb, &j->v[i]);
			if (r < 0) {
				co_failed_at(j, &j->v[i], r);
				break;
			}
		}
		size_t done = atomic_fetch_add(&j->done, end - at) + (end - at);
		if (progress && done < j->n && cbl_mono_us() - last >= CO_PROGRESS_US) {
			last = cbl_mono_us();
			progress(NULL, done * j->files / j->n, j->files, payload); /* about */
		}
	}
	git_odb_free(odb);
}

static void *co_thread(void *arg)
{
	co_work(arg, NULL, NULL);
	return NULL;
}

/* The index: every file, symbolic link and submodule with its stat data. */
static int co_index(git_repository *repo, const co_job *j, cbl_error **err)
{
	git_index *idx = NULL;
	int rc = 0;
	if (git_repository_index(&idx, repo) < 0 || git_index_clear(idx) < 0)
		goto fail;
	for (size_t i = 0; i < j->n; i++) {
		const co_entry *ce = &j->v[i];
		if (ce->mode == GIT_FILEMODE_TREE)
			continue;
		git_index_entry e;
		memset(&e, 0, sizeof(e));
		e.ctime.seconds = (int32_t)ce->st.st_ctim.tv_sec;
		e.ctime.nanoseconds = (uint32_t)ce->st.st_ctim.tv_nsec;
		e.mtime.seconds = (int32_t)ce->st.st_mtim.tv_sec;
		e.mtime.nanoseconds = (uint32_t)ce->st.st_mtim.tv_nsec;
		e.dev = (uint32_t)ce->st.st_dev;
		e.ino = (uint32_t)ce->st.st_ino;
		e.mode = ce->mode;
		e.uid = ce->st.st_uid;
		e.gid = ce->st.st_gid;
		e.file_size = (uint32_t)ce->st.st_size;
		git_oid_cpy(&e.id, &ce->id);
		e.path = ce->path;
		if (git_index_add(idx, &e) < 0)
			goto fail;
	}
	if (git_index_write(idx) < 0)
		goto fail;
	goto out;
fail:
	rc = cbl_error_set(err, CBL_EIO, "checkout failed: cannot write the index: %s",
			   git_error_last() ? git_error_last()->message : "unknown error");
out:
	git_index_free(idx);
	return rc;
}

static unsigned co_workers(size_t n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t w = n / CO_MIN_PER_WORKER;
	if (cpus < 1)
		cpus = 1;
	if (w > (size_t)cpus)
		w = (size_t)cpus;
	if (w > CO_MAX_WORKERS)
		w = CO_MAX_WORKERS;
	return w ? (unsigned)w : 1;
}

/* core.symlinks is not false (libgit2 sets it false at init where the
 * filesystem cannot link; its checkout then writes links as files). */
static bool symlinks_wanted(git_repository *repo)
{
	git_config *cfg = NULL;
	int b = 1, g = git_repository_config_snapshot(&cfg, repo);
	if (g == 0)
		g = git_config_get_bool(&b, cfg, "core.symlinks");
	if (g < 0 && g != GIT_ENOTFOUND)
		b = 0; /* unreadable: libgit2's checkout decides */
	git_error_clear();
	git_config_free(cfg);
	return b != 0;
}

/* Runs the workers (this thread is one of them). */
static void co_run(co_job *j, git_checkout_progress_cb progress, void *payload)
{
	pthread_t th[CO_MAX_WORKERS];
	unsigned nth = 0, want = co_workers(j->n);
	for (unsigned i = 1; i < want; i++)
		if (pthread_create(&th[nth], NULL, co_thread, j) == 0)
			nth++;
	co_work(j, progress, payload);
	for (unsigned i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
}

int source_checkout_fast(git_repository *repo, const git_oid *commit, const char *alternate,
			 git_checkout_progress_cb progress, void *payload, cbl_error **err)
{
	co_job j = {.wfd = -1, .alternate = alternate};
	git_commit *cm = NULL;
	git_tree *tree = NULL;
	char *objects = cbl_path_join(git_repository_commondir(repo), "objects");
	const char *workdir = git_repository_workdir(repo);
	int rc = 1;

	j.objects = objects;
	atomic_init(&j.next, 0);
	atomic_init(&j.done, 0);
	atomic_init(&j.failed, false);
	pthread_mutex_init(&j.lock, NULL);
	if (!workdir || !symlinks_wanted(repo) || git_commit_lookup(&cm, repo, commit) < 0 ||
	    git_commit_tree(&tree, cm) < 0) {
		git_error_clear();
		goto out; /* libgit2's checkout says what is wrong */
	}
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, co_collect, &j) < 0 || j.unusual) {
		git_error_clear();
		goto out;
	}
	if ((j.wfd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "checkout failed: cannot open '%s'", workdir);
		goto out;
	}
	co_run(&j, progress, payload);
	if (j.err) {
		rc = j.err->code;
		if (err && !*err) {
			*err = j.err;
			j.err = NULL;
		}
		goto out;
	}
	if ((rc = co_index(repo, &j, err)) < 0)
		goto out;
	if (progress)
		progress(NULL, j.files, j.files, payload);
	rc = 0;
out:
	if (j.wfd >= 0)
		close(j.wfd);
	for (size_t i = 0; i < j.n; i++)
		free(j.v[i].path);
	free(j.v);
	cbl_error_free(j.err);
	pthread_mutex_destroy(&j.lock);
	git_tree_free(tree);
	git_commit_free(cm);
	free(objects);
	return rc;
}
