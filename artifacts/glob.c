// artifacts/glob.c - artifact file selection with CodeBuild's glob rules.
//
// Why the matcher looks like this: a pattern is a list of components, `**`
// being the only one that can consume several path levels.  Instead of
// backtracking over `**` (exponential on `**/**/**/a`), the walk carries the
// *set* of pattern positions reachable after the path so far (a Thompson-NFA
// simulation), so each directory entry costs O(pattern length) component
// matches.  Within a component, `*` uses the classic single-backtrack-point
// algorithm, O(len(name) * len(component)) worst case.
//
// The walk is driven by the pattern: a directory is only read when some
// position is still alive, and when every live position is a literal name it
// is probed with fstatat() instead of being listed, so `target/app.jar` in a
// tree with a huge node_modules touches two directory entries.
//
// (Line comments in this file: glob patterns contain slash-star, which
// -Wcomment rejects inside block comments.)
#include "artifacts/artifacts.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/safeopen.h"
#include "util/strv.h"
#include "util/time.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

// Deeper trees than this are refused rather than risking the C stack.
#define WALK_MAX_DEPTH 1024

void artifacts_list_free(artifacts_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].path);
		free(l->items[i].name);
		free(l->items[i].rel);
	}
	for (size_t i = 0; i < l->nfds; i++)
		if (l->fds[i] >= 0)
			close(l->fds[i]);
	free(l->fds);
	free(l->items);
	free(l);
}

// ---------------------------------------------------------------------------
// One path component against one pattern component.

// Matches the bracket expression at p ('[') against byte c; *plen receives
// its length.  Supports ranges, '!'/'^' negation, [:class:] and '\'.
static bool match_class(const char *p, unsigned char c, size_t *plen)
{
	// p points at '['.  A class without a closing ']' is a literal '['.
	const char *q = p + 1;
	bool neg = false, hit = false;
	if (*q == '!' || *q == '^') {
		neg = true;
		q++;
	}
	const char *first = q;
	while (*q && (*q != ']' || q == first)) {
		if (q[0] == '[' && q[1] == ':') {
			static const struct {
				const char *name;
				int (*fn)(int);
			} classes[] = {
				{"alnum", isalnum}, {"alpha", isalpha}, {"blank", isblank},
				{"cntrl", iscntrl}, {"digit", isdigit}, {"graph", isgraph},
				{"lower", islower}, {"print", isprint}, {"punct", ispunct},
				{"space", isspace}, {"upper", isupper}, {"xdigit", isxdigit},
			};
			const char *end = strstr(q + 2, ":]");
			bool known = false;
			if (end) {
				size_t nl = (size_t)(end - (q + 2));
				for (size_t i = 0; i < ARRAY_SIZE(classes); i++) {
					if (strlen(classes[i].name) == nl &&
					    !strncmp(classes[i].name, q + 2, nl)) {
						known = true;
						if (classes[i].fn(c))
							hit = true;
					}
				}
			}
			if (known) {
				q = end + 2;
				continue;
			}
		}
		unsigned char lo;
		if (*q == '\\' && q[1]) {
			q++;
		}
		lo = (unsigned char)*q++;
		unsigned char hi = lo;
		if (q[0] == '-' && q[1] && q[1] != ']') {
			q++;
			if (*q == '\\' && q[1])
				q++;
			hi = (unsigned char)*q++;
		}
		if (lo <= c && c <= hi)
			hit = true;
	}
	if (*q != ']') {
		*plen = 1;
		return c == '[';
	}
	*plen = (size_t)(q + 1 - p);
	return hit != neg;
}

// Matches one pattern token at p against byte c; *plen receives its length.
static bool match_one(const char *p, unsigned char c, size_t *plen)
{
	switch (*p) {
	case '?':
		*plen = 1;
		return true;
	case '[':
		return match_class(p, c, plen);
	case '\\':
		if (p[1]) {
			*plen = 2;
			return (unsigned char)p[1] == c;
		}
		*plen = 1;
		return c == '\\';
	default:
		*plen = 1;
		return (unsigned char)*p == c;
	}
}

static bool comp_match(const char *p, const char *s)
{
	const char *star_p = NULL, *star_s = NULL;
	while (*s) {
		if (*p == '*') {
			while (*p == '*')
				p++;
			star_p = p;
			star_s = s;
			continue;
		}
		size_t plen = 0;
		if (*p && match_one(p, (unsigned char)*s, &plen)) {
			p += plen;
			s++;
			continue;
		}
		if (!star_p)
			return false;
		p = star_p;
		s = ++star_s;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static bool has_meta(const char *s)
{
	return strpbrk(s, "*?[\\") != NULL;
}

// ---------------------------------------------------------------------------
// Compiled patterns and the state-set simulation.

typedef struct pat {
	char **comp;
	bool *globstar;  // comp[i] is exactly "**"
	bool *literal;   // comp[i] has no glob characters
	bool *tail_all;  // comp[i..n) matches every non-empty component sequence
	size_t n;
	bool all_literal;
} pat;

static void pat_release(pat *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->comp[i]);
	free(p->comp);
	free(p->globstar);
	free(p->literal);
	free(p->tail_all);
	memset(p, 0, sizeof(*p));
}

// Splits text on '/', dropping empty and "." components, collapsing runs of
// "**" and resolving ".." against a preceding literal component.  Returns
// -1 when ".." would leave the start or follows a glob component.
static int pat_compile(pat *out, const char *text)
{
	pat p = {0};
	size_t cap = 0;
	const char *s = text;
	int rc = 0;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len == 0 || (len == 1 && s[0] == '.')) {
			/* skip */
		} else if (len == 2 && s[0] == '.' && s[1] == '.') {
			if (p.n == 0 || has_meta(p.comp[p.n - 1])) {
				rc = -1;
				goto out;
			}
			free(p.comp[--p.n]);
		} else if (len == 2 && s[0] == '*' && s[1] == '*' && p.n &&
			   !strcmp(p.comp[p.n - 1], "**")) {
			/* "**" followed by "**" is one "**" */
		} else {
			CBL_GROW(p.comp, p.n + 1, cap);
			p.comp[p.n++] = cbl_xstrndup(s, len);
		}
		s += len;
		if (*s == '/')
			s++;
	}
	p.globstar = cbl_xcalloc(p.n + 1, sizeof(bool));
	p.literal = cbl_xcalloc(p.n + 1, sizeof(bool));
	p.tail_all = cbl_xcalloc(p.n + 1, sizeof(bool));
	p.all_literal = true;
	for (size_t i = 0; i < p.n; i++) {
		p.globstar[i] = !strcmp(p.comp[i], "**");
		p.literal[i] = !has_meta(p.comp[i]);
		if (!p.literal[i])
			p.all_literal = false;
	}
	// tail_all[i]: comp[i..n) are "**" and "*" only, with at least one "**"
	// and at most one "*" -- then it matches any sequence of >= 1 names.
	for (size_t i = 0; i < p.n; i++) {
		size_t stars = 0, globstars = 0;
		bool only = true;
		for (size_t j = i; j < p.n; j++) {
			if (p.globstar[j])
				globstars++;
			else if (!strcmp(p.comp[j], "*"))
				stars++;
			else
				only = false;
		}
		p.tail_all[i] = only && globstars >= 1 && stars <= 1;
	}
	*out = p;
	memset(&p, 0, sizeof(p));
out:
	pat_release(&p);
	return rc;
}

// Adds the positions reachable by letting "**" match zero levels.
static void pat_closure(const pat *p, uint8_t *S)
{
	for (size_t i = 0; i < p->n; i++)
		if (S[i] && p->globstar[i])
			S[i + 1] = 1;
}

static void pat_start(const pat *p, uint8_t *S)
{
	memset(S, 0, p->n + 1);
	S[0] = 1;
	pat_closure(p, S);
}

// T = closure(step(S, name)).  S must be closed.
static void pat_step(const pat *p, const uint8_t *S, const char *name, uint8_t *T)
{
	memset(T, 0, p->n + 1);
	for (size_t i = 0; i < p->n; i++) {
		if (!S[i])
			continue;
		if (p->globstar[i])
			T[i] = 1;
		else if (comp_match(p->comp[i], name))
			T[i + 1] = 1;
	}
	pat_closure(p, T);
}

static bool pat_final(const pat *p, const uint8_t *S) { return S[p->n] != 0; }

static bool pat_alive(const pat *p, const uint8_t *S)
{
	for (size_t i = 0; i < p->n; i++)
		if (S[i])
			return true;
	return false;
}

static bool pat_covers_below(const pat *p, const uint8_t *S)
{
	for (size_t i = 0; i < p->n; i++)
		if (S[i] && p->tail_all[i])
			return true;
	return false;
}

// When every live position is a literal component, returns true (the
// directory can be probed instead of listed).
static bool pat_only_literals(const pat *p, const uint8_t *S)
{
	for (size_t i = 0; i < p->n; i++)
		if (S[i] && !p->literal[i])
			return false;
	return true;
}

bool artifacts_glob_match(const char *pattern, const char *path)
{
	pat p;
	if (pat_compile(&p, pattern) < 0)
		return false;
	uint8_t *S = cbl_xmalloc(p.n + 1), *T = cbl_xmalloc(p.n + 1);
	pat_start(&p, S);
	const char *s = path;
	char *name = NULL;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len && !(len == 1 && *s == '.')) {
			free(name);
			name = cbl_xstrndup(s, len);
			pat_step(&p, S, name, T);
			uint8_t *tmp = S;
			S = T;
			T = tmp;
		}
		s += len;
		if (*s == '/')
			s++;
	}
	bool r = pat_final(&p, S);
	free(name);
	free(S);
	free(T);
	pat_release(&p);
	return r;
}

// ---------------------------------------------------------------------------
// The walk.
//
// The tree is the build's: it may swap a directory for a symlink
// (renameat2 RENAME_EXCHANGE) at any moment.  So every directory is opened
// from its parent's descriptor with O_NOFOLLOW (a swapped-in symlink is
// never entered), and a symlink that is followed is opened beneath the
// walk's root descriptor by its resolved, symlink-free path
// (cbl_open_beneath, RESOLVE_NO_SYMLINKS): paths only decide, descriptors
// read, and no descriptor ever reaches outside the root.  Each entry keeps
// its root-relative path so that the packaging opens it the same way.

typedef struct found {
	char *path;  // disk path
	char *name;  // output name
	char *key;   // logical source path, for collisions
	char *rel;   // beneath the root descriptor, no symlinks ("." = the root)
	size_t root; // index of the root descriptor
	bool is_symlink;
} found;

typedef struct devino {
	dev_t dev;
	ino_t ino;
} devino;

typedef struct walk_ctx {
	const char *root;      // realpath of the symlink bound
	int root_fd;           // every open is beneath it
	const char *fd_real;   // realpath of root_fd's directory (root lies under it)
	size_t root_idx;
	bool follow;           // follow symlinks that stay under root
	bool dirs_mode;        // collect directories (base-directory glob)
	bool discard;          // discard-paths
	const pat *inc;
	const pat *exc;
	size_t nexc;
	size_t *exc_off;       // offset of exclude k's states in a state vector
	size_t nstates;
	const char *key_prefix; // "" or "<base>/" for keys and log lines
	devino *anc;           // directories on the current path (loop check)
	size_t nanc, capanc;
	found *out;
	size_t nout, capout;
	size_t nmatched;       // selected before exclusion, this pattern
	artifacts_log_fn log;
	void *payload;
	cbl_error **err;
	int64_t deadline;      // artifacts_roots.deadline_mono_us (0 = none)
} walk_ctx;

static void emit(artifacts_log_fn log, void *payload, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void emit(artifacts_log_fn log, void *payload, const char *fmt, ...)
{
	if (!log)
		return;
	cbl_buf b = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	log(cbl_buf_cstr(&b), payload);
	cbl_buf_release(&b);
}

static bool path_under(const char *p, const char *root)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return p[0] == '/';
	return !strncmp(p, root, n) && (p[n] == '/' || p[n] == '\0');
}

// The part of p below dir ("" for dir itself), or NULL when p is not under it.
static const char *below(const char *p, const char *dir)
{
	if (!path_under(p, dir))
		return NULL;
	size_t n = strlen(dir);
	const char *r = p + (n == 1 && dir[0] == '/' ? 1 : n);
	while (*r == '/')
		r++;
	return r;
}

static bool exc_final(const walk_ctx *c, const uint8_t *S)
{
	for (size_t k = 0; k < c->nexc; k++)
		if (pat_final(&c->exc[k], S + c->exc_off[k]))
			return true;
	return false;
}

static bool exc_covers_below(const walk_ctx *c, const uint8_t *S)
{
	for (size_t k = 0; k < c->nexc; k++)
		if (pat_covers_below(&c->exc[k], S + c->exc_off[k]))
			return true;
	return false;
}

// Records a file (or, in dirs_mode, a base directory).  disk must lie under
// the root descriptor's directory: anything else cannot be opened safely
// and is left out.
static void add_found(walk_ctx *c, const char *disk, const char *name, const char *key, bool is_symlink)
{
	const char *r = below(disk, c->fd_real);
	if (!r)
		return;
	CBL_GROW(c->out, c->nout + 1, c->capout);
	found *f = &c->out[c->nout++];
	f->path = cbl_xstrdup(disk);
	f->name = cbl_xstrdup(name);
	f->key = cbl_xstrdup(key);
	f->rel = cbl_xstrdup(*r ? r : ".");
	f->root = c->root_idx;
	f->is_symlink = is_symlink;
}

static void add_file(walk_ctx *c, const char *disk, const char *rel, bool is_symlink)
{
	const char *base = strrchr(rel, '/');
	char *key = cbl_xasprintf("%s%s", c->key_prefix, rel);
	add_found(c, disk, c->discard && base ? base + 1 : rel, key, is_symlink);
	free(key);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

// Lists a directory's entries (sorted, without "." and "..").
static int list_dir(int dfd, const char *disk, cbl_strv *names, cbl_error **err)
{
	int fd = dup(dfd);
	if (fd < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot read directory '%s'", disk);
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return cbl_error_set_errno(err, CBL_EIO, e, "cannot read directory '%s'", disk);
	}
	rewinddir(d);
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cbl_strv_push(names, de->d_name);
		errno = 0;
	}
	int e = errno;
	closedir(d);
	if (e)
		return cbl_error_set_errno(err, CBL_EIO, e, "cannot read directory '%s'", disk);
	if (names->n)
		qsort(names->v, names->n, sizeof(char *), cmp_str);
	return 0;
}

static int walk_dir(walk_ctx *c, int dfd, const char *disk, const char *rel, const uint8_t *S, bool all,
		    int depth);

// Opens a child directory: name in parent, never through a symlink, or the
// target a followed symlink was opened at (target >= 0).  -1 with errno.
static int open_child_dir(int parent, const char *name, int target)
{
	if (target >= 0)
		return openat(target, ".", O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
	return openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

// Descends into a child directory (see open_child_dir); a directory that
// vanished or was swapped for something else meanwhile is skipped.
static int descend(walk_ctx *c, int parent, const char *name, int target, const char *disk, const char *rel,
		   const uint8_t *T, bool all, int depth)
{
	int nd = open_child_dir(parent, name, target);
	if (nd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return 0;
		return cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot open directory '%s'", disk);
	}
	return walk_dir(c, nd, disk, rel, T, all, depth + 1);
}

// Handles one child whose (followed) type is known: name in parent, or the
// target of a followed symlink (target >= 0).  disk is its path, T its
// state vector.
static int visit(walk_ctx *c, int parent, const char *name, int target, const char *disk, const char *rel,
		 mode_t type, const uint8_t *T, bool all, int depth)
{
	const pat *inc = c->inc;
	bool final = all || pat_final(inc, T);
	bool alive = !all && pat_alive(inc, T);
	if (S_ISREG(type)) {
		if (c->dirs_mode || !final)
			return 0;
		c->nmatched++;
		if (!exc_final(c, T))
			add_file(c, disk, rel, false);
		return 0;
	}
	if (!S_ISDIR(type))
		return 0;
	if (c->dirs_mode) {
		if (pat_final(inc, T))
			add_found(c, disk, rel, rel, false);
		if (!alive)
			return 0;
		return descend(c, parent, name, target, disk, rel, T, false, depth);
	}
	if (final)
		return descend(c, parent, name, target, disk, rel, T, true, depth);
	if (alive)
		return descend(c, parent, name, target, disk, rel, T, false, depth);
	return 0;
}

static bool anc_has(const walk_ctx *c, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < c->nanc; i++)
		if (c->anc[i].dev == dev && c->anc[i].ino == ino)
			return true;
	return false;
}

static int visit_symlink(walk_ctx *c, const char *disk, const char *rel, const uint8_t *T, bool all,
			 int depth)
{
	const pat *inc = c->inc;
	bool final = all || pat_final(inc, T);
	bool alive = !all && pat_alive(inc, T);
	bool excluded = !c->dirs_mode && exc_final(c, T);
	char *real = NULL;
	int rc = 0, tfd = -1;
	if (!final && !alive)
		return 0;
	if (!c->dirs_mode && !c->follow) {
		// enable-symlinks: the link itself is the entry, never descended.
		if (final) {
			c->nmatched++;
			if (!excluded)
				add_file(c, disk, rel, true);
		}
		return 0;
	}
	// the path decides where the link leads (realpath); the descriptor,
	// opened beneath the root without symlinks, is what is read: a link
	// changed meanwhile is refused, never followed elsewhere
	struct stat st;
	// cbl_realpath_fd, not realpath(3): the source may be a sandbox's view
	// reached through a descriptor ("/proc/self/fd/N/..."), which it
	// resolves beneath (a link climbing out of it: EXDEV, no real path)
	if (cbl_realpath_fd(disk, &real, NULL) < 0) {
		real = NULL;
		if (errno == EXDEV) {
			if (final && !excluded)
				emit(c->log, c->payload, "Skipping symlink %s%s: target is outside the source directory",
				     c->key_prefix, rel);
			goto out;
		}
	}
	const char *r = real && path_under(real, c->root) ? below(real, c->fd_real) : NULL;
	if (real && r)
		tfd = cbl_open_beneath(c->root_fd, *r ? r : ".", O_PATH, 0, CBL_RESOLVE_NO_SYMLINKS, NULL);
	if (!real || (r && (tfd < 0 || fstat(tfd, &st) < 0))) {
		if (final && !excluded)
			emit(c->log, c->payload, "Skipping symlink %s%s: target does not exist", c->key_prefix, rel);
		goto out;
	}
	if (!r) {
		struct stat ost;
		bool is_dir = stat(real, &ost) == 0 && S_ISDIR(ost.st_mode);
		if (!excluded && (is_dir || final))
			emit(c->log, c->payload, "Skipping symlink %s%s: target is outside the source directory",
			     c->key_prefix, rel);
		goto out;
	}
	bool is_dir = S_ISDIR(st.st_mode);
	bool relevant = !excluded && (is_dir ? true : final);
	if (is_dir && anc_has(c, st.st_dev, st.st_ino)) {
		if (relevant)
			emit(c->log, c->payload, "Skipping symlink %s%s: directory loop", c->key_prefix, rel);
		goto out;
	}
	rc = visit(c, -1, NULL, tfd, real, rel, st.st_mode & S_IFMT, T, all, depth);
out:
	if (tfd >= 0)
		close(tfd);
	free(real);
	return rc;
}

// Walks the directory open at dfd (owned: closed here).
static int walk_dir(walk_ctx *c, int dfd, const char *disk, const char *rel, const uint8_t *S, bool all,
		    int depth)
{
	int rc = 0;
	cbl_strv names = CBL_STRV_INIT;
	uint8_t *T = NULL;
	char *cdisk = NULL, *crel = NULL;
	bool pushed = false;

	if (!c->dirs_mode && exc_covers_below(c, S))
		goto out;
	if (depth > WALK_MAX_DEPTH) {
		rc = cbl_error_set(c->err, CBL_EIO, "directory tree too deep at '%s'", disk);
		goto out;
	}
	if (c->deadline && cbl_mono_us() >= c->deadline) {
		rc = cbl_error_set(c->err, CBL_ETIMEDOUT, "the file list was not complete in time (at '%s')", disk);
		goto out;
	}
	struct stat dst;
	if (fstat(dfd, &dst) < 0) {
		rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot stat '%s'", disk);
		goto out;
	}
	CBL_GROW(c->anc, c->nanc + 1, c->capanc);
	c->anc[c->nanc++] = (devino){dst.st_dev, dst.st_ino};
	pushed = true;

	if (!all && pat_only_literals(c->inc, S)) {
		for (size_t i = 0; i < c->inc->n; i++)
			if (S[i])
				cbl_strv_push(&names, c->inc->comp[i]);
		if (names.n > 1)
			qsort(names.v, names.n, sizeof(char *), cmp_str);
	} else {
		rc = list_dir(dfd, disk, &names, c->err);
		if (rc < 0)
			goto out;
	}

	T = cbl_xmalloc(c->nstates);
	for (size_t i = 0; i < names.n; i++) {
		const char *name = names.v[i];
		if (i && !strcmp(name, names.v[i - 1]))
			continue;
		// a literal component of a pattern is a name, never a path
		if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		struct stat st;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot stat '%s/%s'", disk,
						 name);
			goto out;
		}
		if (all)
			memset(T, 0, c->inc->n + 1);
		else
			pat_step(c->inc, S, name, T);
		for (size_t k = 0; k < c->nexc; k++)
			pat_step(&c->exc[k], S + c->exc_off[k], name, T + c->exc_off[k]);
		free(cdisk);
		free(crel);
		cdisk = cbl_path_join(disk, name);
		crel = *rel ? cbl_xasprintf("%s/%s", rel, name) : cbl_xstrdup(name);
		if (S_ISLNK(st.st_mode))
			rc = visit_symlink(c, cdisk, crel, T, all, depth);
		else
			rc = visit(c, dfd, name, -1, cdisk, crel, st.st_mode & S_IFMT, T, all, depth);
		if (rc < 0)
			goto out;
	}
out:
	if (pushed)
		c->nanc--;
	free(T);
	free(cdisk);
	free(crel);
	cbl_strv_release(&names);
	close(dfd);
	return rc;
}

// Starts a walk at the directory open at fd (owned), whose path is disk;
// rel "" and the base's states.
static int walk_start(walk_ctx *c, int fd, const char *disk)
{
	uint8_t *S = cbl_xcalloc(c->nstates, 1);
	int rc = 0;
	pat_start(c->inc, S);
	for (size_t k = 0; k < c->nexc; k++)
		pat_start(&c->exc[k], S + c->exc_off[k]);
	if (c->dirs_mode) {
		if (pat_final(c->inc, S))
			add_found(c, disk, ".", ".", false);
		if (pat_alive(c->inc, S)) {
			rc = walk_dir(c, fd, disk, "", S, false, 0);
			fd = -1;
		}
	} else {
		rc = walk_dir(c, fd, disk, "", S, pat_final(c->inc, S), 0);
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	free(S);
	return rc;
}

static void found_release(found *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].path);
		free(f[i].name);
		free(f[i].key);
		free(f[i].rel);
	}
	free(f);
}

static int cmp_found(const void *a, const void *b)
{
	const found *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->key, y->key);
}

// ---------------------------------------------------------------------------
// artifacts_collect

// Lexically normalises an absolute path ("/a/./b/../c" -> "/a/c").
static char *normalize_abs(const char *p)
{
	cbl_strv parts = CBL_STRV_INIT;
	const char *s = p;
	while (*s) {
		while (*s == '/')
			s++;
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (!len)
			break;
		if (len == 1 && s[0] == '.') {
			/* skip */
		} else if (len == 2 && s[0] == '.' && s[1] == '.') {
			if (parts.n) {
				free(parts.v[--parts.n]);
				parts.v[parts.n] = NULL;
			}
		} else {
			cbl_strv_push_take(&parts, cbl_xstrndup(s, len));
		}
		s += len;
	}
	cbl_buf b = CBL_BUF_INIT;
	for (size_t i = 0; i < parts.n; i++)
		cbl_buf_printf(&b, "/%s", parts.v[i]);
	if (!parts.n)
		cbl_buf_putc(&b, '/');
	cbl_strv_release(&parts);
	return cbl_buf_detach(&b);
}

// If `file` is absolute and inside one of the given directories, returns
// the part relative to it (heap); else NULL.
static char *strip_abs(const char *file, const char *const *dirs, size_t ndirs)
{
	char *norm = normalize_abs(file);
	char *r = NULL;
	for (size_t i = 0; i < ndirs && !r; i++) {
		if (!dirs[i])
			continue;
		char *d = normalize_abs(dirs[i]);
		if (path_under(norm, d)) {
			size_t n = strlen(d);
			const char *rest = norm + (n == 1 ? 1 : n);
			while (*rest == '/')
				rest++;
			r = cbl_xstrdup(*rest ? rest : ".");
		}
		free(d);
	}
	free(norm);
	return r;
}

// The directories a collect may read beneath: the source first, then the
// caller's bounds, each open with its real path.
typedef struct roots {
	int *fd;
	char **real;
	size_t n, cap;
} roots;

static size_t roots_add(roots *r, int fd, char *real)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 4;
		r->fd = cbl_xreallocarray(r->fd, r->cap, sizeof(int));
		r->real = cbl_xreallocarray(r->real, r->cap, sizeof(char *));
	}
	r->fd[r->n] = fd;
	r->real[r->n] = real;
	return r->n++;
}

static void roots_release(roots *r)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->fd[i] >= 0)
			close(r->fd[i]);
		free(r->real[i]);
	}
	free(r->fd);
	free(r->real);
	memset(r, 0, sizeof(*r));
}

// Where an open directory is (its real path), from /proc.
static char *fd_real_path(int fd)
{
	char link[64], buf[PATH_MAX + 1];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);
	if (n <= 0 || buf[0] != '/')
		return NULL;
	buf[n] = '\0';
	return cbl_xstrdup(buf);
}

// An absolute base-directory: the root it is read beneath (the source or a
// bound it lies in, lexically or by its real path), the rest of it relative
// to that root, and the form of the root's path it was given under (for the
// log lines).  Without bounds: "/" (the whole filesystem, as the caller
// wants).  -1 when it lies in none.
static int abs_base_root(roots *rs, const char *src_dir, const char *const *bounds, const char *base,
			 char **rest, char **shown, cbl_error **err)
{
	char *norm = normalize_abs(base);
	int found_idx = -1;
	if (!bounds) {
		int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			free(norm);
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot open /");
		}
		found_idx = (int)roots_add(rs, fd, cbl_xstrdup("/"));
		*rest = cbl_xstrdup(base + 1);
		*shown = cbl_xstrdup("/");
		free(norm);
		return found_idx;
	}
	for (size_t i = 0; found_idx < 0 && (i == 0 || bounds[i - 1]); i++) {
		const char *cand = i == 0 ? src_dir : bounds[i - 1];
		char *cn = normalize_abs(cand), *cr = NULL;
		if (cbl_realpath_fd(cand, &cr, NULL) < 0)
			cr = NULL;
		const char *r = below(norm, cn);
		const char *as = cn;
		if (!r && cr) {
			r = below(norm, cr);
			as = cr;
		}
		if (r) {
			if (i == 0) {
				found_idx = 0; // the source, already open
			} else {
				int fd = cr ? open(cr, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
				if (fd >= 0)
					found_idx = (int)roots_add(rs, fd, cbl_xstrdup(cr));
			}
			if (found_idx >= 0) {
				*rest = cbl_xstrdup(*r ? r : ".");
				*shown = cbl_xstrdup(as);
			}
		}
		free(cn);
		free(cr);
	}
	free(norm);
	if (found_idx < 0)
		return cbl_error_set(err, CBL_EINVAL, "base-directory '%s' is outside the source directories", base);
	return found_idx;
}

int artifacts_collect(artifacts_list **out, const char *src_dir, const spec_artifact *a,
		      const char *const *expanded_files, const char *expanded_base_dir,
		      artifacts_log_fn log, void *payload, cbl_error **err)
{
	return artifacts_collect_in(out, src_dir, NULL, a, expanded_files, expanded_base_dir, log, payload, err);
}

// The state of one artifacts_collect_in: the source and the roots opened
// beneath it, the exclude patterns, and what the walks of every (base, file
// pattern) pair found so far.
typedef struct collect_ctx {
	const char *src_dir;
	const artifacts_roots *where;
	const spec_artifact *a;
	const char *const *expanded_files;
	artifacts_log_fn log;
	void *payload;
	cbl_error **err;
	char *src_real, *src_abs, *base_rest, *base_root_shown;
	bool base_abs;
	pat *exc;
	size_t nexc;
	size_t *exc_off;
	found *all;
	size_t nall, capall;
	devino *anc; // kept from walk to walk (only its storage)
	size_t capanc;
	roots rs;
} collect_ctx;

// The source: its descriptor (everything is opened beneath it, or beneath a
// bound) and its absolute path as given.
static int collect_source(collect_ctx *c)
{
	int sfd;
	int rc;
	if (c->where && c->where->src_fd >= 0) {
		sfd = fcntl(c->where->src_fd, F_DUPFD_CLOEXEC, 3);
		c->src_real = sfd >= 0 ? fd_real_path(sfd) : NULL;
		if (sfd < 0 || !c->src_real) {
			if (sfd >= 0)
				close(sfd);
			return cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot use the directory of '%s'", c->src_dir);
		}
	} else {
		rc = cbl_realpath_fd(c->src_dir, &c->src_real, c->err);
		if (rc < 0)
			return rc;
		sfd = open(c->src_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sfd < 0)
			return cbl_error_set_errno(c->err, errno == ENOENT ? CBL_ENOENT : CBL_EIO, errno,
						   "cannot open '%s'", c->src_dir);
	}
	roots_add(&c->rs, sfd, cbl_xstrdup(c->src_real));
	if (c->src_dir[0] == '/') {
		c->src_abs = normalize_abs(c->src_dir);
		return 0;
	}
	char *cwd = getcwd(NULL, 0);
	if (!cwd)
		return cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot get the working directory");
	char *j = cbl_path_join(cwd, c->src_dir);
	c->src_abs = normalize_abs(j);
	free(j);
	free(cwd);
	return 0;
}

// The base directories the (expanded) base-directory pattern matches.
static int collect_bases(collect_ctx *c, const char *expanded_base_dir, pat *bpat, found **bases, size_t *nbases)
{
	const spec_artifact *a = c->a;
	const char *base_exp = expanded_base_dir && *expanded_base_dir ? expanded_base_dir : NULL;
	const char *base_raw = base_exp && a->base_directory && *a->base_directory ? a->base_directory
										 : (base_exp ? base_exp : ".");
	const char *base_shown = base_exp ? base_exp : ".";
	emit(c->log, c->payload, "Expanding base directory path: %s", base_raw);
	if (strcmp(base_raw, base_shown))
		emit(c->log, c->payload, "Expanded to %s", base_shown);
	emit(c->log, c->payload, "Assembling file list");
	emit(c->log, c->payload, "Expanding %s", base_shown);

	c->base_abs = base_exp && base_exp[0] == '/';
	size_t base_root = 0;
	if (c->base_abs) {
		int r = abs_base_root(&c->rs, c->src_dir, c->where ? c->where->bounds : NULL, base_exp, &c->base_rest,
				      &c->base_root_shown, c->err);
		if (r < 0)
			return r;
		base_root = (size_t)r;
	}
	if (pat_compile(bpat, c->base_abs ? c->base_rest : base_shown) < 0)
		return cbl_error_set(c->err, CBL_EINVAL, "base-directory '%s' is outside the source directory",
				     base_shown);
	walk_ctx bc = {0};
	bc.root = c->base_abs && !(c->where && c->where->bounds) ? "/" : c->rs.real[base_root];
	bc.root_fd = c->rs.fd[base_root];
	bc.fd_real = c->rs.real[base_root];
	bc.root_idx = base_root;
	bc.follow = true;
	bc.dirs_mode = true;
	bc.inc = bpat;
	bc.nstates = bpat->n + 1;
	bc.key_prefix = "";
	bc.log = c->log;
	bc.payload = c->payload;
	bc.err = c->err;
	int start = fcntl(c->rs.fd[base_root], F_DUPFD_CLOEXEC, 3);
	if (start < 0)
		return cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot open '%s'", c->rs.real[base_root]);
	int rc = walk_start(&bc, start, c->rs.real[base_root]);
	free(bc.anc);
	*bases = bc.out;
	*nbases = bc.nout;
	if (rc < 0)
		return rc;
	if (*nbases == 0) {
		if (bpat->all_literal)
			emit(c->log, c->payload, "Skipping invalid file path %s", base_shown);
		return cbl_error_set(c->err, CBL_ENOENT, ARTIFACTS_NO_MATCH_MSG);
	}
	return 0;
}

// Exclude patterns (invalid ones can never match: dropped).
static void collect_excludes(collect_ctx *c)
{
	const spec_artifact *a = c->a;
	c->exc = cbl_xcalloc(a->exclude_paths.n + 1, sizeof(pat));
	c->exc_off = cbl_xcalloc(a->exclude_paths.n + 1, sizeof(size_t));
	for (size_t i = 0; i < a->exclude_paths.n; i++) {
		const char *t = a->exclude_paths.items[i].s;
		if (!t || !*t || t[0] == '/')
			continue;
		if (pat_compile(&c->exc[c->nexc], t) == 0)
			c->nexc++;
	}
}

// One file pattern (files[f]) walked from one base directory.
static int collect_pattern(collect_ctx *c, const found *base, const char *logical, const char *prefix, size_t f)
{
	const spec_artifact *a = c->a;
	const char *raw = a->files.items[f].s ? a->files.items[f].s : "";
	const char *exp = c->expanded_files && c->expanded_files[f] ? c->expanded_files[f] : raw;
	const char *base_real = base->path;
	size_t ri = base->root;
	pat fp = {0};
	char *stripped = NULL;
	int rc = 0;
	emit(c->log, c->payload, "Expanding %s", raw);
	if (strcmp(raw, exp))
		emit(c->log, c->payload, "Expanded to %s", exp);
	const char *rel = exp;
	if (exp[0] == '/') {
		const char *dirs[] = {base_real, logical};
		stripped = strip_abs(exp, dirs, 2);
		rel = stripped;
	}
	if (!rel || !*rel || pat_compile(&fp, rel) < 0) {
		emit(c->log, c->payload, "Skipping invalid file path %s", exp);
		free(stripped);
		return 0;
	}
	// the base itself, beneath its root, never through a symlink
	cbl_error *oe = NULL;
	int bfd = cbl_open_dir_beneath(c->rs.fd[ri], base->rel, CBL_RESOLVE_NO_SYMLINKS, &oe);
	if (bfd < 0) {
		rc = cbl_error_set(c->err, CBL_EIO, "cannot open base directory '%s': %s", logical,
				   oe ? oe->msg : "error");
		cbl_error_free(oe);
		goto out;
	}
	walk_ctx w = {0};
	w.root = path_under(base_real, c->src_real) && path_under(c->src_real, c->rs.real[ri]) ? c->src_real
												 : base_real;
	w.root_fd = c->rs.fd[ri];
	w.fd_real = c->rs.real[ri];
	w.root_idx = ri;
	w.follow = !a->enable_symlinks;
	w.discard = a->discard_paths;
	w.deadline = c->where ? c->where->deadline_mono_us : 0;
	w.inc = &fp;
	w.exc = c->exc;
	w.nexc = c->nexc;
	w.exc_off = c->exc_off;
	w.nstates = fp.n + 1;
	for (size_t k = 0; k < c->nexc; k++) {
		c->exc_off[k] = w.nstates;
		w.nstates += c->exc[k].n + 1;
	}
	w.key_prefix = prefix;
	w.anc = c->anc;
	w.capanc = c->capanc;
	w.out = c->all;
	w.nout = c->nall;
	w.capout = c->capall;
	w.log = c->log;
	w.payload = c->payload;
	w.err = c->err;
	rc = walk_start(&w, bfd, base_real);
	c->anc = w.anc;
	c->capanc = w.capanc;
	c->all = w.out;
	c->nall = w.nout;
	c->capall = w.capout;
	if (rc == 0 && w.nmatched == 0 && fp.all_literal)
		emit(c->log, c->payload, "Skipping invalid file path %s", exp);
out:
	pat_release(&fp);
	free(stripped);
	return rc;
}

// Every file pattern from one base directory.
static int collect_base(collect_ctx *c, const found *base)
{
	char *logical, *prefix;
	// base->path is a real path: the walk composes real directories'
	// names onto real paths
	const char *brel = base->key;
	if (c->base_abs) {
		bool top = !strcmp(c->base_root_shown, "/");
		if (strcmp(brel, "."))
			logical = cbl_xasprintf("%s/%s", top ? "" : c->base_root_shown, brel);
		else
			logical = cbl_xstrdup(c->base_root_shown);
		prefix = !strcmp(logical, "/") ? cbl_xstrdup("/") : cbl_xasprintf("%s/", logical);
	} else {
		logical = strcmp(brel, ".") ? cbl_path_join(c->src_abs, brel) : cbl_xstrdup(c->src_abs);
		prefix = strcmp(brel, ".") ? cbl_xasprintf("%s/", brel) : cbl_xstrdup("");
	}
	emit(c->log, c->payload, "Expanding file paths for base directory %s", c->base_abs ? logical : brel);
	emit(c->log, c->payload, "Assembling file list");
	int rc = 0;
	for (size_t f = 0; f < c->a->files.n && rc == 0; f++)
		rc = collect_pattern(c, base, logical, prefix, f);
	free(logical);
	free(prefix);
	return rc;
}

// The list: sorted by (name, source), equal names: the greatest source wins;
// it keeps the descriptors its entries are beneath.
static int collect_list(collect_ctx *c, artifacts_list **out)
{
	if (c->nall)
		qsort(c->all, c->nall, sizeof(found), cmp_found);
	artifacts_list *l = cbl_xcalloc(1, sizeof(*l));
	l->items = cbl_xcalloc(c->nall + 1, sizeof(artifacts_entry));
	for (size_t i = 0; i < c->nall; i++) {
		found *fi = &c->all[i];
		if (i + 1 < c->nall && !strcmp(fi->name, c->all[i + 1].name))
			continue;
		artifacts_entry *e = &l->items[l->n++];
		e->path = fi->path;
		e->name = fi->name;
		e->rel = fi->rel;
		e->dirfd = c->rs.fd[fi->root];
		e->is_symlink = fi->is_symlink;
		fi->path = fi->name = fi->rel = NULL;
	}
	l->fds = c->rs.fd;
	l->nfds = c->rs.n;
	c->rs.fd = NULL;
	for (size_t i = 0; i < c->rs.n; i++)
		free(c->rs.real[i]);
	free(c->rs.real);
	memset(&c->rs, 0, sizeof(c->rs));
	if (l->n == 0) {
		artifacts_list_free(l);
		return cbl_error_set(c->err, CBL_ENOENT, ARTIFACTS_NO_MATCH_MSG);
	}
	emit(c->log, c->payload, "Found %zu file(s)", l->n);
	*out = l;
	return 0;
}

int artifacts_collect_in(artifacts_list **out, const char *src_dir, const artifacts_roots *where,
			 const spec_artifact *a, const char *const *expanded_files,
			 const char *expanded_base_dir, artifacts_log_fn log, void *payload, cbl_error **err)
{
	collect_ctx c = {.src_dir = src_dir, .where = where, .a = a, .expanded_files = expanded_files,
			 .log = log, .payload = payload, .err = err};
	pat bpat = {0};
	found *bases = NULL;
	size_t nbases = 0;
	int rc = collect_source(&c);
	if (!rc)
		rc = collect_bases(&c, expanded_base_dir, &bpat, &bases, &nbases);
	if (!rc) {
		collect_excludes(&c);
		for (size_t b = 0; b < nbases && !rc; b++)
			rc = collect_base(&c, &bases[b]);
	}
	if (!rc)
		rc = collect_list(&c, out);
	found_release(c.all, c.nall);
	found_release(bases, nbases);
	for (size_t k = 0; k < c.nexc; k++)
		pat_release(&c.exc[k]);
	free(c.exc);
	free(c.exc_off);
	free(c.anc);
	pat_release(&bpat);
	roots_release(&c.rs);
	free(c.src_real);
	free(c.src_abs);
	free(c.base_rest);
	free(c.base_root_shown);
	return rc;
}
