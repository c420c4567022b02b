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
#include "util/strv.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
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
	}
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

typedef struct found {
	char *path;  // disk path
	char *name;  // output name
	char *key;   // logical source path, for collisions
	bool is_symlink;
} found;

typedef struct devino {
	dev_t dev;
	ino_t ino;
} devino;

typedef struct walk_ctx {
	const char *root;      // realpath of the symlink bound
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

static void add_found(walk_ctx *c, const char *disk, const char *rel, bool is_symlink)
{
	CBL_GROW(c->out, c->nout + 1, c->capout);
	found *f = &c->out[c->nout++];
	f->path = cbl_xstrdup(disk);
	const char *base = strrchr(rel, '/');
	f->name = cbl_xstrdup(c->discard && base ? base + 1 : rel);
	f->key = cbl_xasprintf("%s%s", c->key_prefix, rel);
	f->is_symlink = is_symlink;
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

static int walk_dir(walk_ctx *c, const char *disk, const char *rel, const uint8_t *S, bool all,
		    int depth);

// Handles one child whose (followed) type is known.  disk is where to read
// it; T its state vector.
static int visit(walk_ctx *c, const char *disk, const char *rel, mode_t type, const uint8_t *T,
		 bool all, int depth)
{
	const pat *inc = c->inc;
	bool final = all || pat_final(inc, T);
	bool alive = !all && pat_alive(inc, T);
	if (S_ISREG(type)) {
		if (c->dirs_mode || !final)
			return 0;
		c->nmatched++;
		if (!exc_final(c, T))
			add_found(c, disk, rel, false);
		return 0;
	}
	if (!S_ISDIR(type))
		return 0;
	if (c->dirs_mode) {
		if (pat_final(inc, T)) {
			CBL_GROW(c->out, c->nout + 1, c->capout);
			found *f = &c->out[c->nout++];
			f->path = cbl_xstrdup(disk);
			f->name = cbl_xstrdup(rel);
			f->key = cbl_xstrdup(rel);
			f->is_symlink = false;
		}
		if (!alive)
			return 0;
		return walk_dir(c, disk, rel, T, false, depth + 1);
	}
	if (final)
		return walk_dir(c, disk, rel, T, true, depth + 1);
	if (alive)
		return walk_dir(c, disk, rel, T, false, depth + 1);
	return 0;
}

static bool anc_has(const walk_ctx *c, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < c->nanc; i++)
		if (c->anc[i].dev == dev && c->anc[i].ino == ino)
			return true;
	return false;
}

static int visit_symlink(walk_ctx *c, const char *disk, const char *rel, const uint8_t *T,
			 bool all, int depth)
{
	const pat *inc = c->inc;
	bool final = all || pat_final(inc, T);
	bool alive = !all && pat_alive(inc, T);
	bool excluded = !c->dirs_mode && exc_final(c, T);
	char *real = NULL;
	int rc = 0;
	if (!final && !alive)
		return 0;
	if (!c->dirs_mode && !c->follow) {
		// enable-symlinks: the link itself is the entry, never descended.
		if (final) {
			c->nmatched++;
			if (!excluded)
				add_found(c, disk, rel, true);
		}
		return 0;
	}
	struct stat st;
	// cbl_realpath_fd, not realpath(3): the source may be a sandbox's view
	// reached through a descriptor ("/proc/self/fd/N/..."), which it
	// resolves beneath; a link climbing out of it fails with EXDEV
	bool out_of_root = cbl_realpath_fd(disk, &real, NULL) < 0 && errno == EXDEV;
	if (!out_of_root && (!real || stat(real, &st) < 0)) {
		if (final && !excluded)
			emit(c->log, c->payload, "Skipping symlink %s%s: target does not exist", c->key_prefix, rel);
		goto out;
	}
	bool is_dir = !out_of_root && S_ISDIR(st.st_mode);
	bool relevant = !excluded && (is_dir ? true : final);
	if (out_of_root || !path_under(real, c->root)) {
		if (relevant)
			emit(c->log, c->payload, "Skipping symlink %s%s: target is outside the source directory",
			      c->key_prefix, rel);
		goto out;
	}
	if (is_dir && anc_has(c, st.st_dev, st.st_ino)) {
		if (relevant)
			emit(c->log, c->payload, "Skipping symlink %s%s: directory loop", c->key_prefix, rel);
		goto out;
	}
	rc = visit(c, real, rel, st.st_mode & S_IFMT, T, all, depth);
out:
	free(real);
	return rc;
}

static int walk_dir(walk_ctx *c, const char *disk, const char *rel, const uint8_t *S, bool all,
		    int depth)
{
	int dfd = -1, rc = 0;
	cbl_strv names = CBL_STRV_INIT;
	uint8_t *T = NULL;
	char *cdisk = NULL, *crel = NULL;
	bool pushed = false;

	if (!c->dirs_mode && exc_covers_below(c, S))
		return 0;
	if (depth > WALK_MAX_DEPTH)
		return cbl_error_set(c->err, CBL_EIO, "directory tree too deep at '%s'", disk);
	dfd = open(disk, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			goto out; // vanished meanwhile
		rc = cbl_error_set_errno(c->err, CBL_EIO, errno, "cannot open directory '%s'", disk);
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
			rc = visit(c, cdisk, crel, st.st_mode & S_IFMT, T, all, depth);
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
	if (dfd >= 0)
		close(dfd);
	return rc;
}

// Starts a walk at `disk` (a directory); rel "" and the base's states.
static int walk_start(walk_ctx *c, const char *disk)
{
	uint8_t *S = cbl_xcalloc(c->nstates, 1);
	int rc = 0;
	pat_start(c->inc, S);
	for (size_t k = 0; k < c->nexc; k++)
		pat_start(&c->exc[k], S + c->exc_off[k]);
	if (c->dirs_mode) {
		if (pat_final(c->inc, S)) {
			CBL_GROW(c->out, c->nout + 1, c->capout);
			found *f = &c->out[c->nout++];
			f->path = cbl_xstrdup(disk);
			f->name = cbl_xstrdup(".");
			f->key = cbl_xstrdup(".");
			f->is_symlink = false;
		}
		if (pat_alive(c->inc, S))
			rc = walk_dir(c, disk, "", S, false, 0);
	} else {
		rc = walk_dir(c, disk, "", S, pat_final(c->inc, S), 0);
	}
	free(S);
	return rc;
}

static void found_release(found *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].path);
		free(f[i].name);
		free(f[i].key);
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

// The state of one artifacts_collect: the source, the exclude patterns and
// what the walks of every (base, file pattern) pair found so far.
typedef struct collect_ctx {
	const spec_artifact *a;
	const char *const *expanded_files;
	char *src_real, *src_abs;
	bool base_abs;         // the base-directory is an absolute path
	pat *exc;
	size_t nexc;
	size_t *exc_off;
	found *all;
	size_t nall, capall;
	devino *anc;           // kept from walk to walk (only its storage)
	size_t capanc;
	artifacts_log_fn log;
	void *payload;
	cbl_error **err;
} collect_ctx;

// The source directory as a real path and as a normalised absolute one
// (what absolute file patterns are matched against).
static int collect_source(collect_ctx *cc, const char *src_dir)
{
	int rc = cbl_realpath_fd(src_dir, &cc->src_real, cc->err);
	if (rc < 0)
		return rc;
	if (src_dir[0] == '/') {
		cc->src_abs = normalize_abs(src_dir);
		return 0;
	}
	char *cwd = getcwd(NULL, 0);
	if (!cwd)
		return cbl_error_set_errno(cc->err, CBL_EIO, errno, "cannot get the working directory");
	char *j = cbl_path_join(cwd, src_dir);
	cc->src_abs = normalize_abs(j);
	free(j);
	free(cwd);
	return 0;
}

// The directories the base-directory (a glob) names, in *bases.
static int collect_bases(collect_ctx *cc, const char *expanded_base_dir, found **bases, size_t *nbases)
{
	const spec_artifact *a = cc->a;
	artifacts_log_fn log = cc->log;
	void *payload = cc->payload;
	pat bpat = {0};
	const char *base_exp = expanded_base_dir && *expanded_base_dir ? expanded_base_dir : NULL;
	const char *base_raw = base_exp && a->base_directory && *a->base_directory
				       ? a->base_directory
				       : (base_exp ? base_exp : ".");
	const char *base_shown = base_exp ? base_exp : ".";
	emit(log, payload, "Expanding base directory path: %s", base_raw);
	if (strcmp(base_raw, base_shown))
		emit(log, payload, "Expanded to %s", base_shown);
	emit(log, payload, "Assembling file list");
	emit(log, payload, "Expanding %s", base_shown);

	cc->base_abs = base_exp && base_exp[0] == '/';
	// an absolute base under a descriptor's directory ("/proc/self/fd/N/x",
	// a sandbox's view): walked from that directory, whose own link is not
	// to be followed, and named with the prefix as a plain absolute base
	size_t fdp = cc->base_abs ? cbl_fd_path_prefix(base_exp) : 0;
	char *fd_root = fdp ? cbl_xstrndup(base_exp, fdp) : NULL;
	const char *bp = fdp ? (base_exp[fdp] ? base_exp + fdp + 1 : ".") : cc->base_abs ? base_exp + 1 : base_shown;
	if (pat_compile(&bpat, bp) < 0) {
		pat_release(&bpat);
		free(fd_root);
		return cbl_error_set(cc->err, CBL_EINVAL,
				     "base-directory '%s' is outside the source directory", base_shown);
	}
	walk_ctx bc = {0};
	bc.root = fd_root ? fd_root : cc->base_abs ? "/" : cc->src_real;
	bc.follow = true;
	bc.dirs_mode = true;
	bc.inc = &bpat;
	bc.nstates = bpat.n + 1;
	bc.key_prefix = "";
	bc.log = log;
	bc.payload = payload;
	bc.err = cc->err;
	int rc = walk_start(&bc, bc.root);
	free(bc.anc);
	for (size_t i = 0; fd_root && i < bc.nout; i++) {
		found *f = &bc.out[i];
		char *key = strcmp(f->key, ".") ? cbl_xasprintf("%s/%s", fd_root + 1, f->key)
						: cbl_xstrdup(fd_root + 1);
		free(f->key);
		free(f->name);
		f->key = key;
		f->name = cbl_xstrdup(key);
	}
	free(fd_root);
	*bases = bc.out;
	*nbases = bc.nout;
	if (rc == 0 && bc.nout == 0) {
		if (bpat.all_literal)
			emit(log, payload, "Skipping invalid file path %s", base_shown);
		rc = cbl_error_set(cc->err, CBL_ENOENT, ARTIFACTS_NO_MATCH_MSG);
	}
	pat_release(&bpat);
	return rc;
}

// The exclude patterns (invalid ones can never match: dropped).
static void collect_excludes(collect_ctx *cc)
{
	const spec_artifact *a = cc->a;
	cc->exc = cbl_xcalloc(a->exclude_paths.n + 1, sizeof(pat));
	cc->exc_off = cbl_xcalloc(a->exclude_paths.n + 1, sizeof(size_t));
	for (size_t i = 0; i < a->exclude_paths.n; i++) {
		const char *t = a->exclude_paths.items[i].s;
		if (!t || !*t || t[0] == '/')
			continue;
		if (pat_compile(&cc->exc[cc->nexc], t) == 0)
			cc->nexc++;
	}
}

// Walks one base directory for file pattern number f; adds to cc->all.
static int collect_pattern(collect_ctx *cc, size_t f, const char *base_real, const char *logical,
			   const char *prefix)
{
	const spec_artifact *a = cc->a;
	artifacts_log_fn log = cc->log;
	void *payload = cc->payload;
	const char *raw = a->files.items[f].s ? a->files.items[f].s : "";
	const char *exp = cc->expanded_files && cc->expanded_files[f] ? cc->expanded_files[f] : raw;
	pat fp = {0};
	char *stripped = NULL;
	emit(log, payload, "Expanding %s", raw);
	if (strcmp(raw, exp))
		emit(log, payload, "Expanded to %s", exp);
	const char *rel = exp;
	if (exp[0] == '/') {
		const char *dirs[] = {base_real, logical};
		stripped = strip_abs(exp, dirs, 2);
		rel = stripped;
	}
	if (!rel || !*rel || pat_compile(&fp, rel) < 0) {
		emit(log, payload, "Skipping invalid file path %s", exp);
		free(stripped);
		return 0;
	}
	walk_ctx c = {0};
	c.root = path_under(base_real, cc->src_real) ? cc->src_real : base_real;
	c.follow = !a->enable_symlinks;
	c.discard = a->discard_paths;
	c.inc = &fp;
	c.exc = cc->exc;
	c.nexc = cc->nexc;
	c.exc_off = cc->exc_off;
	c.nstates = fp.n + 1;
	for (size_t k = 0; k < cc->nexc; k++) {
		cc->exc_off[k] = c.nstates;
		c.nstates += cc->exc[k].n + 1;
	}
	c.key_prefix = prefix;
	c.anc = cc->anc;
	c.capanc = cc->capanc;
	c.out = cc->all;
	c.nout = cc->nall;
	c.capout = cc->capall;
	c.log = log;
	c.payload = payload;
	c.err = cc->err;
	int rc = walk_start(&c, base_real);
	cc->anc = c.anc;
	cc->capanc = c.capanc;
	cc->all = c.out;
	cc->nall = c.nout;
	cc->capall = c.capout;
	if (rc == 0 && c.nmatched == 0 && fp.all_literal)
		emit(log, payload, "Skipping invalid file path %s", exp);
	pat_release(&fp);
	free(stripped);
	return rc;
}

// Walks one base directory (a match of the base-directory) for every file
// pattern.
static int collect_base(collect_ctx *cc, const found *base)
{
	char *base_real = NULL, *logical = NULL, *prefix = NULL;
	const char *brel = base->key;
	// base->path is the real path for symlinked bases, else the joined
	// one; resolve to bound the walk.
	int rc = cbl_realpath_fd(base->path, &base_real, cc->err);
	if (rc < 0)
		return rc;
	if (cc->base_abs) {
		logical = strcmp(brel, ".") ? cbl_xasprintf("/%s", brel) : cbl_xstrdup("/");
		prefix = strcmp(brel, ".") ? cbl_xasprintf("/%s/", brel) : cbl_xstrdup("/");
	} else {
		logical = strcmp(brel, ".") ? cbl_path_join(cc->src_abs, brel) : cbl_xstrdup(cc->src_abs);
		prefix = strcmp(brel, ".") ? cbl_xasprintf("%s/", brel) : cbl_xstrdup("");
	}
	emit(cc->log, cc->payload, "Expanding file paths for base directory %s",
	     cc->base_abs ? logical : brel);
	emit(cc->log, cc->payload, "Assembling file list");
	for (size_t f = 0; f < cc->a->files.n && rc >= 0; f++)
		rc = collect_pattern(cc, f, base_real, logical, prefix);
	free(base_real);
	free(logical);
	free(prefix);
	return rc;
}

// The list: sorted by (name, source); equal names: the greatest source wins.
static int collect_list(collect_ctx *cc, artifacts_list **out)
{
	found *all = cc->all;
	size_t nall = cc->nall;
	if (nall)
		qsort(all, nall, sizeof(found), cmp_found);
	artifacts_list *l = cbl_xcalloc(1, sizeof(*l));
	l->items = cbl_xcalloc(nall + 1, sizeof(artifacts_entry));
	for (size_t i = 0; i < nall; i++) {
		if (i + 1 < nall && !strcmp(all[i].name, all[i + 1].name))
			continue;
		artifacts_entry *e = &l->items[l->n++];
		e->path = all[i].path;
		e->name = all[i].name;
		e->is_symlink = all[i].is_symlink;
		all[i].path = all[i].name = NULL;
	}
	if (l->n == 0) {
		artifacts_list_free(l);
		return cbl_error_set(cc->err, CBL_ENOENT, ARTIFACTS_NO_MATCH_MSG);
	}
	emit(cc->log, cc->payload, "Found %zu file(s)", l->n);
	*out = l;
	return 0;
}

int artifacts_collect(artifacts_list **out, const char *src_dir, const spec_artifact *a,
		      const char *const *expanded_files, const char *expanded_base_dir,
		      artifacts_log_fn log, void *payload, cbl_error **err)
{
	collect_ctx cc = {.a = a, .expanded_files = expanded_files, .log = log, .payload = payload,
			  .err = err};
	found *bases = NULL;
	size_t nbases = 0;
	int rc = collect_source(&cc, src_dir);
	if (rc < 0)
		goto out;
	rc = collect_bases(&cc, expanded_base_dir, &bases, &nbases);
	if (rc < 0)
		goto out;
	collect_excludes(&cc);
	for (size_t b = 0; b < nbases && rc >= 0; b++)
		rc = collect_base(&cc, &bases[b]);
	if (rc >= 0)
		rc = collect_list(&cc, out);
out:
	found_release(cc.all, cc.nall);
	found_release(bases, nbases);
	for (size_t k = 0; k < cc.nexc; k++)
		pat_release(&cc.exc[k]);
	free(cc.exc);
	free(cc.exc_off);
	free(cc.anc);
	free(cc.src_real);
	free(cc.src_abs);
	return rc;
}
