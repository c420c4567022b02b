/* spec/spec_internal.h - internals of the buildspec parser, shared by the
 * .c files of spec/ and reachable from tests/unit/test_spec.c.
 *
 * The parser builds a yaml_document_t for the first YAML document from
 * libyaml events (load.c: nesting and size capped while loading, recursive
 * aliases refused), runs a safety pass over the node graph (nesting through
 * aliases, expanded size: alias bombs), then walks the nodes with the
 * buildspec grammar (parse.c, sections.c), appending every problem to the
 * caller's spec_diags.  Nothing here prints or keeps state outside the
 * spec_ctx of one parse.
 */
#ifndef SPEC_SPEC_INTERNAL_H
#define SPEC_SPEC_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "spec/spec.h"

/* Limits that keep hostile input from costing more than a real buildspec. */
#define SPEC_MAX_DEPTH 64          /* nesting of collections, aliases followed */
#define SPEC_MAX_NODES 100000      /* nodes after expanding every alias */
#define SPEC_MAX_DIAGS 1000        /* diagnostics kept; more are counted only */
#define SPEC_MAX_FILE (16u << 20)  /* spec_parse_file refuses bigger files */

typedef struct spec_ctx {
	yaml_document_t *doc;
	spec_diags *diags;
	bool strict;
	bool upload_time;  /* spec_parse_opts.upload_time */
	spec_buildspec *bs;
	size_t nerrors;    /* every error, also those past SPEC_MAX_DIAGS */
	bool truncated;    /* SPEC_MAX_DIAGS reached */
	int merge_depth;   /* nesting of `<<` merges being resolved */
} spec_ctx;

/* One key/value pair of a mapping, after merge keys and duplicates are
 * resolved.  name is the key's text (NUL-terminated; see len for embedded
 * NULs). */
typedef struct spec_pair {
	yaml_node_t *key;
	yaml_node_t *val;
	const char *name;
	size_t len;
	char *disp;  /* name made printable and short, for messages (owned by the map) */
} spec_pair;

typedef struct spec_map {
	spec_pair *p;
	size_t n;
} spec_map;

/* Appends room for one element to an array of n elements that only grows
 * through this macro: capacity doubles at powers of two, so n pushes cost
 * O(n) (the public structs carry no capacity field). */
#define SPEC_PUSH(arr, n)                                                                   \
	do {                                                                                \
		size_t spec_n_ = (n);                                                       \
		if (spec_n_ == 0 || (spec_n_ >= 4 && (spec_n_ & (spec_n_ - 1)) == 0))     \
			(arr) = cbl_xreallocarray((arr), spec_n_ ? spec_n_ * 2 : 4, sizeof(*(arr))); \
	} while (0)

/* diag.c ---------------------------------------------------------------- */

void spec_diag_add(spec_ctx *c, spec_severity sev, spec_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void spec_err(spec_ctx *c, spec_pos pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A warning; an error under opts.strict. */
/* An error the service reports in these words (words: its message; hint:
 * ours, appended, or NULL): spec_diag.service_len marks them. */
void spec_err_service(spec_ctx *c, spec_pos pos, const char *words, const char *hint);
void spec_warn(spec_ctx *c, spec_pos pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Stable sort of d->items by (line, col). */
void spec_diags_sort(spec_diags *d);
/* The closest candidate to `word` (case, '-' and '_' folded; small edit
 * distance), or NULL.  candidates is NULL-terminated. */
const char *spec_did_you_mean(const char *word, const char *const *candidates);
/* Appends " (did you mean 'X'?)" to b when there is a close candidate. */
void spec_hint(cbl_buf *b, const char *word, const char *const *candidates);

/* node.c ---------------------------------------------------------------- */

spec_pos spec_node_pos(const yaml_node_t *n);
/* s made printable (control bytes escaped) and cut to ~80 bytes; caller frees. */
char *spec_disp(const char *s, size_t len);
/* Position of the key of a pair: type errors about a value point here. */
spec_pos spec_key_pos(const spec_pair *p);
/* Position of a scalar value (content errors); the key's for null/collections. */
spec_pos spec_val_pos(const spec_pair *p);
yaml_node_t *spec_node_at(spec_ctx *c, int index);
bool spec_is_null(const yaml_node_t *n);
bool spec_is_scalar(const yaml_node_t *n); /* a non-null scalar */
bool spec_is_map(const yaml_node_t *n);
bool spec_is_seq(const yaml_node_t *n);
/* "null", "a string", "a list", "a mapping" */
const char *spec_kind(const yaml_node_t *n);
/* Walks the whole graph once: alias cycles, depth > SPEC_MAX_DEPTH and
 * more than SPEC_MAX_NODES expanded nodes are errors.  Returns false when
 * the document must not be walked. */
bool spec_check_graph(spec_ctx *c, yaml_node_t *root);
/* Collects the pairs of a mapping, resolving `<<` merge keys and duplicate
 * keys (warning; the later value wins, at the position of the first).
 * path names the mapping in messages.  Free out->p. */
void spec_map_get(spec_ctx *c, yaml_node_t *map, const char *path, spec_map *out);
void spec_map_release(spec_map *m);
const spec_pair *spec_map_find(const spec_map *m, const char *name);
bool spec_name_is(const spec_pair *p, const char *name);
/* Warns "unknown key 'X' in <where>" with a did-you-mean from known. */
void spec_unknown_key(spec_ctx *c, const spec_pair *p, const char *where,
		      const char *const *known);

/* Scalar text as a heap string; NULL (and an error) when it holds a NUL
 * byte.  Block scalars (| and >) lose exactly one trailing newline when
 * strip_block is set. */
char *spec_scalar_dup(spec_ctx *c, const yaml_node_t *n, const char *path, bool strip_block);
/* Value of pair as a string.  Returns false (after an error or warning) when
 * there is none; *out is replaced only on success. */
bool spec_get_str(spec_ctx *c, const spec_pair *p, const char *path, char **out);
bool spec_get_bool(spec_ctx *c, const spec_pair *p, const char *path, bool *out);
bool spec_parse_bool_text(const char *s, bool *out);

enum {
	SPEC_LIST_SCALAR_OK = 1 << 0,  /* a single scalar: warning, one-element list */
	SPEC_LIST_NULL_ERROR = 1 << 1, /* null is an error (else a warning); [] always warns */
	SPEC_LIST_COMMANDS = 1 << 2,   /* items are commands: block scalars, ': ' hint */
};
/* Fills out (appending) from a list value.  Returns false on a type error. */
bool spec_get_strlist(spec_ctx *c, const spec_pair *p, const char *path, unsigned flags,
		      spec_strlist *out);
/* Fills out (appending/replacing) from a NAME: value mapping.  check, if not
 * NULL, is called for every entry whose value is a non-null scalar. */
typedef void spec_kv_check_fn(spec_ctx *c, const spec_pair *e, const char *epath);
bool spec_get_kvlist(spec_ctx *c, const spec_pair *p, const char *path, spec_kvlist *out,
		     spec_kv_check_fn *check);

void spec_strlist_push(spec_strlist *l, char *s, spec_pos pos); /* takes s */
void spec_strlist_release(spec_strlist *l);
/* Sets key (replacing an existing entry unless fresh says there is none). */
void spec_kvlist_set(spec_kvlist *l, const char *key, char *value, spec_pos pos, bool fresh); /* takes value */
void spec_kvlist_release(spec_kvlist *l);

/* load.c ---------------------------------------------------------------- */

/* Loads the first document of the stream into doc (which it initializes).
 * Returns false after reporting the problem (YAML syntax error, nesting,
 * size, recursive or undefined alias); doc is then already deleted. */
bool spec_load_yaml(spec_ctx *c, yaml_parser_t *parser, yaml_document_t *doc, const char *data, size_t len);

/* parse.c --------------------------------------------------------------- */

/* Reports libyaml's current error as one diagnostic. */
void spec_yaml_error(spec_ctx *c, const yaml_parser_t *ps, const char *data, size_t len);

/* Parses an on-failure value; false when it is not one of the documented
 * forms (why, if not NULL, gets a short reason).  On success out->retry_regex
 * is heap-allocated (or NULL). */
bool spec_parse_on_failure(const char *s, spec_on_failure *out, cbl_buf *why);

/* sections.c ------------------------------------------------------------ */

void spec_walk_artifacts(spec_ctx *c, const spec_pair *p);
void spec_walk_reports(spec_ctx *c, const spec_pair *p);
void spec_walk_cache(spec_ctx *c, const spec_pair *p);
void spec_walk_batch(spec_ctx *c, const spec_pair *p);
/* batch.c: duplicate identifiers; with graph, unknown depend-on names and cycles (errors). */
void spec_batch_check_tasks(spec_ctx *c, const spec_batch *b, const char *path, bool graph);

/* model.c --------------------------------------------------------------- */

void spec_artifact_release(spec_artifact *a);
void spec_batch_env_release(spec_batch_env *e);
bool spec_report_format_parse(const char *s, spec_report_format *out);

#endif
