/* spec/node.c - YAML node access for the buildspec walker: positions, kinds,
 * the graph safety pass, mappings with merge keys and duplicates, and typed
 * getters that report what was expected. */
#include "spec/spec_internal.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/banned.h"

spec_pos spec_node_pos(const yaml_node_t *n)
{
	spec_pos p = {0, 0};
	if (!n)
		return p;
	p.line = n->start_mark.line < (size_t)INT_MAX ? (int)n->start_mark.line + 1 : INT_MAX;
	p.col = n->start_mark.column < (size_t)INT_MAX ? (int)n->start_mark.column + 1 : INT_MAX;
	return p;
}

spec_pos spec_key_pos(const spec_pair *p) { return spec_node_pos(p->key); }

spec_pos spec_val_pos(const spec_pair *p)
{
	return spec_is_scalar(p->val) ? spec_node_pos(p->val) : spec_node_pos(p->key);
}

#define DISP_MAX 80

char *spec_disp(const char *s, size_t len)
{
	cbl_buf b = CBL_BUF_INIT;
	size_t i;
	cbl_buf_append(&b, "", 0);
	for (i = 0; i < len && b.len < DISP_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\n')
			cbl_buf_puts(&b, "\\n");
		else if (ch == '\t')
			cbl_buf_puts(&b, "\\t");
		else if (ch == '\r')
			cbl_buf_puts(&b, "\\r");
		else if (ch < 0x20 || ch == 0x7f)
			cbl_buf_printf(&b, "\\x%02x", ch);
		else
			cbl_buf_putc(&b, (char)ch);
	}
	if (i < len)
		cbl_buf_puts(&b, "...");
	return cbl_buf_detach(&b);
}

yaml_node_t *spec_node_at(spec_ctx *c, int index) { return yaml_document_get_node(c->doc, index); }

bool spec_is_null(const yaml_node_t *n)
{
	if (!n)
		return true;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	size_t l = n->data.scalar.length;
	return l == 0 || (l == 1 && v[0] == '~') ||
	       (l == 4 && (!strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL")));
}

bool spec_is_scalar(const yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE && !spec_is_null(n); }
bool spec_is_map(const yaml_node_t *n) { return n && n->type == YAML_MAPPING_NODE; }
bool spec_is_seq(const yaml_node_t *n) { return n && n->type == YAML_SEQUENCE_NODE; }

const char *spec_kind(const yaml_node_t *n)
{
	if (spec_is_null(n))
		return "null";
	switch (n->type) {
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "a string";
	}
}

/* graph safety pass --------------------------------------------------------- */

static size_t node_nchildren(const yaml_node_t *n)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (n->type == YAML_MAPPING_NODE)
		return 2 * (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	return 0;
}

static int node_child(const yaml_node_t *n, size_t i)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return n->data.sequence.items.start[i];
	const yaml_node_pair_t *p = &n->data.mapping.pairs.start[i / 2];
	return i % 2 ? p->value : p->key;
}

typedef struct {
	int idx;
	size_t next;
} graph_frame;

/* Iterative DFS over the node graph (aliases make it a DAG or worse), with
 * per-node memo of expanded size and height, so a billion-laughs document
 * costs O(nodes + references) here and is rejected before anything walks
 * it. */
bool spec_check_graph(spec_ctx *c, yaml_node_t *root)
{
	size_t n = (size_t)(c->doc->nodes.top - c->doc->nodes.start);
	unsigned char *state = NULL; /* 0 new, 1 on the stack, 2 done */
	size_t *size = NULL;
	int *height = NULL;
	graph_frame *stack = NULL;
	size_t sp = 0, cap = 0;
	bool ok = false;

	if (!root || n == 0)
		return true;
	state = cbl_xcalloc(n, 1);
	size = cbl_xcalloc(n, sizeof(*size));
	height = cbl_xcalloc(n, sizeof(*height));

	int root_idx = (int)(root - c->doc->nodes.start) + 1;
	CBL_GROW(stack, sp + 1, cap);
	stack[sp++] = (graph_frame){root_idx, 0};
	state[root_idx - 1] = 1;

	while (sp > 0) {
		graph_frame *f = &stack[sp - 1];
		yaml_node_t *node = spec_node_at(c, f->idx);
		size_t nch = node_nchildren(node);
		if (f->next < nch) {
			int ch = node_child(node, f->next++);
			yaml_node_t *cn = spec_node_at(c, ch);
			if (!cn || cn->type == YAML_SCALAR_NODE)
				continue; /* leaves: counted when the parent completes */
			if (state[ch - 1] == 1) {
				spec_err(c, spec_node_pos(node),
					 "YAML alias refers to a node that contains it (recursive alias); a buildspec cannot be recursive");
				goto out;
			}
			if (state[ch - 1] == 2) {
				if ((size_t)height[ch - 1] + sp > SPEC_MAX_DEPTH) {
					spec_err(c, spec_node_pos(node),
						 "YAML nesting is deeper than %d levels (counting aliases)", SPEC_MAX_DEPTH);
					goto out;
				}
				continue;
			}
			if (sp + 1 > SPEC_MAX_DEPTH) {
				spec_err(c, spec_node_pos(cn), "YAML nesting is deeper than %d levels",
					 SPEC_MAX_DEPTH);
				goto out;
			}
			state[ch - 1] = 1;
			CBL_GROW(stack, sp + 1, cap);
			stack[sp++] = (graph_frame){ch, 0};
			continue;
		}
		/* All children done: expanded size and height (collections only). */
		size_t total = 1;
		int h = 0;
		for (size_t i = 0; i < nch; i++) {
			int ch = node_child(node, i);
			yaml_node_t *cn = spec_node_at(c, ch);
			if (!cn)
				continue;
			total += cn->type == YAML_SCALAR_NODE ? 1 : size[ch - 1];
			if (total > SPEC_MAX_NODES)
				total = SPEC_MAX_NODES + 1;
			if (cn->type != YAML_SCALAR_NODE && height[ch - 1] > h)
				h = height[ch - 1];
		}
		if (total > SPEC_MAX_NODES) {
			spec_err(c, spec_node_pos(node),
				 "YAML document expands to more than %d nodes through aliases (alias bomb?)",
				 SPEC_MAX_NODES);
			goto out;
		}
		size[f->idx - 1] = total;
		height[f->idx - 1] = h + 1;
		state[f->idx - 1] = 2;
		sp--;
	}
	ok = true;
out:
	free(state);
	free(size);
	free(height);
	free(stack);
	return ok;
}

/* mappings ------------------------------------------------------------------- */

typedef struct pairvec {
	spec_pair *p;
	size_t n, cap;
	size_t *ht; /* open addressing: index+1 into p, 0 = empty */
	size_t htcap;
} pairvec;

static size_t name_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

static size_t *pv_slot(pairvec *v, const char *name, size_t len)
{
	size_t mask = v->htcap - 1;
	for (size_t i = name_hash(name, len) & mask;; i = (i + 1) & mask) {
		size_t e = v->ht[i];
		if (!e)
			return &v->ht[i];
		const spec_pair *p = &v->p[e - 1];
		if (p->len == len && memcmp(p->name, name, len) == 0)
			return &v->ht[i];
	}
}

static void pv_rehash(pairvec *v)
{
	size_t nc = v->htcap ? v->htcap * 2 : 16;
	free(v->ht);
	v->ht = cbl_xcalloc(nc, sizeof(*v->ht));
	v->htcap = nc;
	for (size_t i = 0; i < v->n; i++)
		*pv_slot(v, v->p[i].name, v->p[i].len) = i + 1;
}

static spec_pair *pv_find(pairvec *v, const char *name, size_t len)
{
	if (!v->htcap)
		return NULL;
	size_t e = *pv_slot(v, name, len);
	return e ? &v->p[e - 1] : NULL;
}

static void pv_add(pairvec *v, yaml_node_t *key, yaml_node_t *val, const char *name, size_t len)
{
	if ((v->n + 1) * 2 > v->htcap)
		pv_rehash(v);
	CBL_GROW(v->p, v->n + 1, v->cap);
	spec_pair *p = &v->p[v->n++];
	p->key = key;
	p->val = val;
	p->name = name;
	p->len = len;
	p->disp = spec_disp(name, len);
	*pv_slot(v, name, len) = v->n;
}

static void pv_release(pairvec *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->p[i].disp);
	free(v->p);
	free(v->ht);
	memset(v, 0, sizeof(*v));
}

static bool is_merge_key(const yaml_node_t *k)
{
	return k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       k->data.scalar.length == 2 && memcmp(k->data.scalar.value, "<<", 2) == 0;
}

static void resolve_map(spec_ctx *c, yaml_node_t *map, const char *path, bool warn, pairvec *out);

static void merge_from(spec_ctx *c, yaml_node_t *src, const char *path, pairvec *out, pairvec *merged)
{
	pairvec sub = {0};
	if (c->merge_depth >= SPEC_MAX_DEPTH) {
		spec_err(c, spec_node_pos(src), "YAML merge keys nested deeper than %d levels", SPEC_MAX_DEPTH);
		return;
	}
	c->merge_depth++;
	resolve_map(c, src, path, false, &sub);
	c->merge_depth--;
	/* Earlier merge sources win over later ones; explicit keys win over all. */
	for (size_t i = 0; i < sub.n; i++) {
		spec_pair *s = &sub.p[i];
		if (pv_find(out, s->name, s->len) || pv_find(merged, s->name, s->len))
			continue;
		pv_add(merged, s->key, s->val, s->name, s->len);
	}
	pv_release(&sub);
}

static void resolve_map(spec_ctx *c, yaml_node_t *map, const char *path, bool warn, pairvec *out)
{
	yaml_node_t **merges = NULL;
	size_t nmerges = 0, capmerges = 0;
	pairvec merged = {0};

	for (yaml_node_pair_t *pp = map->data.mapping.pairs.start; pp < map->data.mapping.pairs.top; pp++) {
		yaml_node_t *k = spec_node_at(c, pp->key);
		yaml_node_t *v = spec_node_at(c, pp->value);
		if (!k || !v)
			continue;
		if (is_merge_key(k)) {
			if (v->type == YAML_MAPPING_NODE) {
				CBL_GROW(merges, nmerges + 1, capmerges);
				merges[nmerges++] = v;
			} else if (v->type == YAML_SEQUENCE_NODE) {
				for (yaml_node_item_t *it = v->data.sequence.items.start;
				     it < v->data.sequence.items.top; it++) {
					yaml_node_t *src = spec_node_at(c, *it);
					if (src && src->type == YAML_MAPPING_NODE) {
						CBL_GROW(merges, nmerges + 1, capmerges);
						merges[nmerges++] = src;
					} else if (warn && src) {
						spec_err(c, spec_node_pos(src),
							 "merge key '<<' in %s: list item must be a mapping, not %s",
							 path, spec_kind(src));
					}
				}
			} else if (warn) {
				spec_err(c, spec_node_pos(k),
					 "merge key '<<' in %s must refer to a mapping or a list of mappings, not %s",
					 path, spec_kind(v));
			}
			continue;
		}
		if (k->type != YAML_SCALAR_NODE) {
			if (warn)
				spec_err(c, spec_node_pos(k), "%s has %s as a key; keys must be strings", path,
					 spec_kind(k));
			continue;
		}
		const char *name = (const char *)k->data.scalar.value;
		size_t len = k->data.scalar.length;
		spec_pair *prev = pv_find(out, name, len);
		if (prev) {
			if (warn)
				spec_warn(c, spec_node_pos(k),
					  "duplicate key '%s' %s %s (first at line %d); the later value is used",
					  prev->disp, strncmp(path, "the ", 4) ? "in" : "at", path,
					  spec_node_pos(prev->key).line);
			prev->key = k;
			prev->val = v;
			continue;
		}
		pv_add(out, k, v, name, len);
	}
	for (size_t i = 0; i < nmerges; i++)
		merge_from(c, merges[i], path, out, &merged);
	for (size_t i = 0; i < merged.n; i++)
		pv_add(out, merged.p[i].key, merged.p[i].val, merged.p[i].name, merged.p[i].len);
	pv_release(&merged);
	free(merges);
}

void spec_map_get(spec_ctx *c, yaml_node_t *map, const char *path, spec_map *out)
{
	pairvec v = {0};
	out->p = NULL;
	out->n = 0;
	if (!map || map->type != YAML_MAPPING_NODE)
		return;
	resolve_map(c, map, path, true, &v);
	free(v.ht);
	out->p = v.p;
	out->n = v.n;
}

void spec_map_release(spec_map *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->p[i].disp);
	free(m->p);
	m->p = NULL;
	m->n = 0;
}

bool spec_name_is(const spec_pair *p, const char *name)
{
	size_t l = strlen(name);
	return p->len == l && memcmp(p->name, name, l) == 0;
}

const spec_pair *spec_map_find(const spec_map *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (spec_name_is(&m->p[i], name))
			return &m->p[i];
	return NULL;
}

void spec_unknown_key(spec_ctx *c, const spec_pair *p, const char *where, const char *const *known)
{
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_printf(&b, "unknown key '%s' %s %s", p->disp, strncmp(where, "the ", 4) ? "in" : "at", where);
	if (strlen(p->name) == p->len)
		spec_hint(&b, p->name, known);
	spec_warn(c, spec_key_pos(p), "%s", cbl_buf_cstr(&b));
	cbl_buf_release(&b);
}

/* typed getters --------------------------------------------------------------- */

char *spec_scalar_dup(spec_ctx *c, const yaml_node_t *n, const char *path, bool strip_block)
{
	const char *v = (const char *)n->data.scalar.value;
	size_t l = n->data.scalar.length;
	if (memchr(v, '\0', l)) {
		spec_err(c, spec_node_pos(n), "%s contains a NUL character", path);
		return NULL;
	}
	if (strip_block && l > 0 && v[l - 1] == '\n' &&
	    (n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
	     n->data.scalar.style == YAML_FOLDED_SCALAR_STYLE))
		l--;
	return cbl_xstrndup(v, l);
}

bool spec_get_str(spec_ctx *c, const spec_pair *p, const char *path, char **out)
{
	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "%s is empty (null); ignored", path);
		return false;
	}
	if (p->val->type != YAML_SCALAR_NODE) {
		spec_err(c, spec_key_pos(p), "%s must be a string, not %s", path, spec_kind(p->val));
		return false;
	}
	char *s = spec_scalar_dup(c, p->val, path, false);
	if (!s)
		return false;
	free(*out);
	*out = s;
	return true;
}

bool spec_parse_bool_text(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on"};
	static const char *const no[] = {"no", "false", "off"};
	for (size_t i = 0; i < 3; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

bool spec_get_bool(spec_ctx *c, const spec_pair *p, const char *path, bool *out)
{
	const yaml_node_t *v = p->val;
	if (v->type != YAML_SCALAR_NODE || spec_is_null(v)) {
		spec_err(c, spec_key_pos(p), "%s must be a boolean (yes/no/true/false/on/off), not %s", path,
			 spec_kind(v));
		return false;
	}
	const char *s = (const char *)v->data.scalar.value;
	if (strlen(s) != v->data.scalar.length || !spec_parse_bool_text(s, out)) {
		char *d = spec_disp(s, v->data.scalar.length);
		spec_err(c, spec_node_pos(v), "%s must be a boolean (yes/no/true/false/on/off), not '%s'", path, d);
		free(d);
		return false;
	}
	return true;
}

void spec_strlist_push(spec_strlist *l, char *s, spec_pos pos)
{
	SPEC_PUSH(l->items, l->n);
	l->items[l->n].s = s;
	l->items[l->n].pos = pos;
	l->n++;
}

void spec_strlist_release(spec_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].s);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void spec_kvlist_set(spec_kvlist *l, const char *key, char *value, spec_pos pos, bool fresh)
{
	for (size_t i = 0; !fresh && i < l->n; i++) {
		if (!strcmp(l->items[i].key, key)) {
			free(l->items[i].value);
			l->items[i].value = value;
			l->items[i].pos = pos;
			return;
		}
	}
	SPEC_PUSH(l->items, l->n);
	l->items[l->n].key = cbl_xstrdup(key);
	l->items[l->n].value = value;
	l->items[l->n].pos = pos;
	l->n++;
}

void spec_kvlist_release(spec_kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static void list_item(spec_ctx *c, yaml_node_t *it, const char *path, size_t i, unsigned flags,
		      spec_strlist *out)
{
	spec_pos pos = spec_node_pos(it);
	if (spec_is_null(it)) {
		spec_warn(c, pos, "%s[%zu] is empty (null); skipped", path, i);
		return;
	}
	if (it->type == YAML_MAPPING_NODE) {
		if (flags & SPEC_LIST_COMMANDS)
			spec_err(c, pos, "%s[%zu] is a mapping, not a string: quote the command (it contains ': ')",
				 path, i);
		else
			spec_err(c, pos, "%s[%zu] must be a string, not a mapping (quote it if it contains ': ')",
				 path, i);
		return;
	}
	if (it->type == YAML_SEQUENCE_NODE) {
		spec_err(c, pos, "%s[%zu] must be a string, not a list", path, i);
		return;
	}
	char *ipath = cbl_xasprintf("%s[%zu]", path, i);
	char *s = spec_scalar_dup(c, it, ipath, (flags & SPEC_LIST_COMMANDS) != 0);
	free(ipath);
	if (s)
		spec_strlist_push(out, s, pos);
}

bool spec_get_strlist(spec_ctx *c, const spec_pair *p, const char *path, unsigned flags, spec_strlist *out)
{
	yaml_node_t *v = p->val;
	if (spec_is_null(v) || (v->type == YAML_SEQUENCE_NODE &&
				v->data.sequence.items.top == v->data.sequence.items.start)) {
		const char *what = spec_is_null(v) ? "is empty (null)" : "is an empty list";
		/* `files:` with every entry forgotten is a mistake; `files: []` says "none". */
		if ((flags & SPEC_LIST_NULL_ERROR) && spec_is_null(v)) {
			spec_err(c, spec_key_pos(p), "%s %s: list at least one entry", path, what);
			return false;
		}
		spec_warn(c, spec_key_pos(p), "%s %s", path, what);
		return true;
	}
	if (v->type == YAML_SCALAR_NODE) {
		if (!(flags & SPEC_LIST_SCALAR_OK)) {
			spec_err(c, spec_key_pos(p), "%s must be a list of strings, not a string", path);
			return false;
		}
		if (flags & SPEC_LIST_COMMANDS)
			spec_warn(c, spec_key_pos(p),
				  "%s is a single string, not a list; it is run as one command", path);
		else
			spec_warn(c, spec_key_pos(p),
				  "%s is a single string, not a list; it is used as a one-element list", path);
		char *s = spec_scalar_dup(c, v, path, (flags & SPEC_LIST_COMMANDS) != 0);
		if (s)
			spec_strlist_push(out, s, spec_node_pos(v));
		return true;
	}
	if (v->type != YAML_SEQUENCE_NODE) {
		spec_err(c, spec_key_pos(p), "%s must be a list of strings, not %s", path, spec_kind(v));
		return false;
	}
	size_t i = 0;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++, i++) {
		yaml_node_t *n = spec_node_at(c, *it);
		if (n)
			list_item(c, n, path, i, flags, out);
	}
	return true;
}

bool spec_get_kvlist(spec_ctx *c, const spec_pair *p, const char *path, spec_kvlist *out,
		     spec_kv_check_fn *check)
{
	yaml_node_t *v = p->val;
	spec_map m;
	if (spec_is_null(v)) {
		spec_warn(c, spec_key_pos(p), "%s is empty (null)", path);
		return true;
	}
	if (v->type != YAML_MAPPING_NODE) {
		spec_err(c, spec_key_pos(p), "%s must be a mapping of NAME: value, not %s", path, spec_kind(v));
		return false;
	}
	/* The map has no duplicate keys, so an empty list needs no lookups. */
	bool fresh = out->n == 0;
	spec_map_get(c, v, path, &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		char *epath = cbl_xasprintf("%s.%s", path, e->disp);
		char *key = spec_scalar_dup(c, e->key, epath, false);
		char *val = NULL;
		if (spec_is_null(e->val)) {
			spec_warn(c, spec_key_pos(e), "%s is empty (null); the empty string is used", epath);
			val = cbl_xstrdup("");
		} else if (e->val->type != YAML_SCALAR_NODE) {
			spec_err(c, spec_key_pos(e), "%s must be a string, not %s", epath, spec_kind(e->val));
		} else {
			val = spec_scalar_dup(c, e->val, epath, false);
			if (val && check)
				check(c, e, epath);
		}
		if (key && val)
			spec_kvlist_set(out, key, val, spec_key_pos(e), fresh);
		else
			free(val);
		free(key);
		free(epath);
	}
	spec_map_release(&m);
	return true;
}
