/* spec/load.c - builds a yaml_document_t from libyaml events.
 *
 * Why not yaml_parser_load(): libyaml's scanner re-checks every open flow
 * level on each token, so 100000 nested '[' cost ~10 s before any limit of
 * ours could apply.  Reading events ourselves lets us stop at the first
 * node nested deeper than SPEC_MAX_DEPTH, cap the node count while loading,
 * and refuse recursive aliases (an anchor is registered when its node is
 * complete, so `&a [*a]` is an error instead of a cycle).
 */
#include "spec/spec_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "util/alloc.h"
#include "util/banned.h"

typedef struct anchor {
	char *name;
	int node;   /* 0 while the anchored collection is still open */
	size_t def; /* which definition this is (YAML allows redefining) */
} anchor;

typedef struct frame {
	int node;
	int key;       /* mapping: pending key node, 0 = none */
	size_t anchor; /* index+1 into anchors of this collection's anchor, 0 = none */
	size_t def;    /* the anchor's definition number when the collection opened */
} frame;

typedef struct loader {
	spec_ctx *c;
	yaml_document_t *doc;
	anchor *anchors;
	size_t nanchors, capanchors;
	size_t *ht; /* open addressing over anchors: index+1, 0 = empty */
	size_t htcap;
	frame *stack;
	size_t sp, capstack;
	size_t nnodes;
	size_t ndefs;
	bool have_root;
} loader;

static spec_pos mark_pos(yaml_mark_t m)
{
	spec_pos p;
	p.line = m.line < (size_t)INT32_MAX ? (int)m.line + 1 : INT32_MAX;
	p.col = m.column < (size_t)INT32_MAX ? (int)m.column + 1 : INT32_MAX;
	return p;
}

static size_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

static size_t *anchor_slot(loader *l, const char *name)
{
	size_t mask = l->htcap - 1;
	for (size_t i = str_hash(name) & mask;; i = (i + 1) & mask) {
		size_t e = l->ht[i];
		if (!e || !strcmp(l->anchors[e - 1].name, name))
			return &l->ht[i];
	}
}

static anchor *anchor_find(loader *l, const char *name)
{
	if (!l->htcap)
		return NULL;
	size_t e = *anchor_slot(l, name);
	return e ? &l->anchors[e - 1] : NULL;
}

/* Defines (or redefines: YAML allows it, the later one wins) an anchor. */
static size_t anchor_define(loader *l, const char *name, int node)
{
	anchor *a = anchor_find(l, name);
	l->ndefs++;
	if (a) {
		a->node = node;
		a->def = l->ndefs;
		return (size_t)(a - l->anchors) + 1;
	}
	if ((l->nanchors + 1) * 2 > l->htcap) {
		size_t nc = l->htcap ? l->htcap * 2 : 16;
		free(l->ht);
		l->ht = cbl_xcalloc(nc, sizeof(*l->ht));
		l->htcap = nc;
		for (size_t i = 0; i < l->nanchors; i++)
			*anchor_slot(l, l->anchors[i].name) = i + 1;
	}
	CBL_GROW(l->anchors, l->nanchors + 1, l->capanchors);
	l->anchors[l->nanchors].name = cbl_xstrdup(name);
	l->anchors[l->nanchors].node = node;
	l->anchors[l->nanchors].def = l->ndefs;
	l->nanchors++;
	*anchor_slot(l, name) = l->nanchors;
	return l->nanchors;
}

static void set_marks(loader *l, int idx, const yaml_event_t *ev)
{
	yaml_node_t *n = yaml_document_get_node(l->doc, idx);
	n->start_mark = ev->start_mark;
	n->end_mark = ev->end_mark;
}

/* Attaches node idx to the open collection (or makes it the root). */
static bool attach(loader *l, int idx)
{
	if (l->sp == 0) {
		l->have_root = true;
		return true;
	}
	frame *f = &l->stack[l->sp - 1];
	yaml_node_t *parent = yaml_document_get_node(l->doc, f->node);
	if (parent->type == YAML_SEQUENCE_NODE)
		return yaml_document_append_sequence_item(l->doc, f->node, idx) != 0;
	if (!f->key) {
		f->key = idx;
		return true;
	}
	int key = f->key;
	f->key = 0;
	return yaml_document_append_mapping_pair(l->doc, f->node, key, idx) != 0;
}

static bool count_node(loader *l, const yaml_event_t *ev)
{
	if (++l->nnodes > SPEC_MAX_NODES) {
		spec_err(l->c, mark_pos(ev->start_mark), "YAML document has more than %d nodes", SPEC_MAX_NODES);
		return false;
	}
	return true;
}

static bool oom(loader *l, const yaml_event_t *ev)
{
	spec_err(l->c, mark_pos(ev->start_mark), "YAML loader ran out of memory");
	return false;
}

/* Handles one node event; false after reporting an error. */
static bool on_event(loader *l, const yaml_event_t *ev)
{
	int idx;
	switch (ev->type) {
	case YAML_ALIAS_EVENT: {
		const char *name = (const char *)ev->data.alias.anchor;
		anchor *a = anchor_find(l, name);
		if (!a) {
			spec_err(l->c, mark_pos(ev->start_mark), "YAML syntax error: found undefined alias '*%s'", name);
			return false;
		}
		if (!a->node) {
			spec_err(l->c, mark_pos(ev->start_mark),
				 "YAML alias '*%s' refers to a node that contains it; a buildspec cannot be recursive", name);
			return false;
		}
		if (!count_node(l, ev))
			return false;
		return attach(l, a->node) || oom(l, ev);
	}
	case YAML_SCALAR_EVENT:
		if (!count_node(l, ev))
			return false;
		if (ev->data.scalar.length > (size_t)INT32_MAX)
			return oom(l, ev);
		idx = yaml_document_add_scalar(l->doc, NULL, ev->data.scalar.value, (int)ev->data.scalar.length,
					       ev->data.scalar.style);
		if (!idx)
			return oom(l, ev);
		set_marks(l, idx, ev);
		if (ev->data.scalar.anchor)
			anchor_define(l, (const char *)ev->data.scalar.anchor, idx);
		return attach(l, idx) || oom(l, ev);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
		const yaml_char_t *anchor_name = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
		if (!count_node(l, ev))
			return false;
		if (l->sp + 1 > SPEC_MAX_DEPTH) {
			spec_err(l->c, mark_pos(ev->start_mark), "YAML nesting is deeper than %d levels", SPEC_MAX_DEPTH);
			return false;
		}
		idx = seq ? yaml_document_add_sequence(l->doc, NULL, ev->data.sequence_start.style)
			  : yaml_document_add_mapping(l->doc, NULL, ev->data.mapping_start.style);
		if (!idx)
			return oom(l, ev);
		set_marks(l, idx, ev);
		if (!attach(l, idx))
			return oom(l, ev);
		CBL_GROW(l->stack, l->sp + 1, l->capstack);
		frame *f = &l->stack[l->sp++];
		f->node = idx;
		f->key = 0;
		f->anchor = anchor_name ? anchor_define(l, (const char *)anchor_name, 0) : 0;
		f->def = l->ndefs;
		return true;
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: {
		if (l->sp == 0)
			return true;
		frame *f = &l->stack[--l->sp];
		yaml_node_t *n = yaml_document_get_node(l->doc, f->node);
		n->end_mark = ev->end_mark;
		/* Unless a node inside redefined the anchor (the later one wins). */
		if (f->anchor && l->anchors[f->anchor - 1].def == f->def)
			l->anchors[f->anchor - 1].node = f->node;
		return true;
	}
	default:
		return true;
	}
}

static spec_pos offset_pos(const char *data, size_t len, size_t off)
{
	spec_pos p = {1, 1};
	if (off > len)
		off = len;
	for (size_t i = 0; i < off; i++) {
		if (data[i] == '\n') {
			p.line++;
			p.col = 1;
		} else if (p.col < INT_MAX) {
			p.col++;
		}
		if (p.line == INT_MAX)
			break;
	}
	return p;
}

void spec_yaml_error(spec_ctx *c, const yaml_parser_t *ps, const char *data, size_t len)
{
	const char *problem = ps->problem ? ps->problem : "unknown error";
	switch (ps->error) {
	case YAML_MEMORY_ERROR:
		spec_err(c, (spec_pos){1, 1}, "YAML parser ran out of memory");
		break;
	case YAML_READER_ERROR:
		if (ps->problem_value != -1)
			spec_err(c, offset_pos(data, len, ps->problem_offset), "YAML syntax error: %s (byte 0x%02X)",
				 problem, (unsigned)ps->problem_value & 0xffu);
		else
			spec_err(c, offset_pos(data, len, ps->problem_offset), "YAML syntax error: %s", problem);
		break;
	default:
		if (ps->context) {
			spec_pos cp = mark_pos(ps->context_mark);
			spec_err(c, mark_pos(ps->problem_mark), "YAML syntax error: %s (%s at line %d, column %d)",
				 problem, ps->context, cp.line, cp.col);
		} else {
			spec_err(c, mark_pos(ps->problem_mark), "YAML syntax error: %s", problem);
		}
		break;
	}
}

bool spec_load_yaml(spec_ctx *c, yaml_parser_t *parser, yaml_document_t *doc, const char *data, size_t len)
{
	loader l = {0};
	yaml_event_t ev;
	bool ok = false, in_doc = false, done = false;

	l.c = c;
	l.doc = doc;
	memset(doc, 0, sizeof(*doc));
	if (!yaml_document_initialize(doc, NULL, NULL, NULL, 1, 1)) {
		spec_err(c, (spec_pos){1, 1}, "YAML loader ran out of memory");
		return false;
	}
	while (!done) {
		if (!yaml_parser_parse(parser, &ev)) {
			spec_yaml_error(c, parser, data, len);
			goto out;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (in_doc || l.have_root) {
				/* Only the first document counts. */
				spec_warn(c, mark_pos(ev.start_mark),
					  "the file holds more than one YAML document; only the first is used");
				done = true;
			}
			in_doc = true;
			break;
		case YAML_DOCUMENT_END_EVENT:
			in_doc = false;
			break;
		default:
			if (!on_event(&l, &ev)) {
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		}
		yaml_event_delete(&ev);
	}
	ok = true;
out:
	for (size_t i = 0; i < l.nanchors; i++)
		free(l.anchors[i].name);
	free(l.anchors);
	free(l.ht);
	free(l.stack);
	if (!ok)
		yaml_document_delete(doc);
	return ok;
}
