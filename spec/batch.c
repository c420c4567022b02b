/* spec/batch.c - a batch's builds: the graph checks of build-graph (unknown
 * and duplicate identifiers, cycles) and the expansion of every batch type
 * into one flat list of builds with their dependencies.
 *
 * Generated identifiers: the service documents none for build-matrix and
 * build-fanout builds (reference buildspec.md §1.5), so ours are
 * matrix_1 .. matrix_N (the cross product in document order: buildspec,
 * image, compute-type, then each variable, the last one varying fastest)
 * and shard_1 .. shard_N; each build also gets a label saying what it is. */
#include "spec/spec_internal.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* More builds than any batch may have (the service's maximumBuildsAllowed
 * is at most 100); a matrix bigger than this is an error, not a plan. */
#define SPEC_BATCH_MAX_BUILDS 1000

typedef struct id_ref {
	const char *id;
	size_t index;
} id_ref;

static int cmp_ref(const void *a, const void *b)
{
	const id_ref *x = a, *y = b;
	int r = strcmp(x->id, y->id);
	return r ? r : (x->index > y->index) - (x->index < y->index);
}

static long find_ref(const id_ref *refs, size_t n, const char *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(refs[mid].id, id);
		if (!r)
			return (long)refs[mid].index;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Iterative depth-first search from each task: a grey task reached again
 * closes a cycle, reported once at the depend-on entry that closes it. */
static void check_cycles(spec_ctx *c, const spec_batch *b, const id_ref *refs, size_t nrefs, const char *path)
{
	size_t n = b->ntasks;
	unsigned char *color = cbl_xcalloc(n ? n : 1, 1); /* 0 white, 1 grey, 2 black */
	size_t *stack = cbl_xreallocarray(NULL, n ? n : 1, sizeof(size_t));
	size_t *next = cbl_xcalloc(n ? n : 1, sizeof(size_t));
	for (size_t root = 0; root < n; root++) {
		if (color[root])
			continue;
		size_t top = 0;
		stack[top++] = root;
		color[root] = 1;
		while (top) {
			size_t t = stack[top - 1];
			const spec_batch_task *task = &b->tasks[t];
			if (next[t] >= task->depend_on.n) {
				color[t] = 2;
				top--;
				continue;
			}
			const spec_str *dep = &task->depend_on.items[next[t]++];
			long d = find_ref(refs, nrefs, dep->s);
			if (d < 0 || color[d] == 2)
				continue;
			if (color[d] == 1) {
				/* the cycle is the stack from d up to t, then d again */
				cbl_buf cyc = CBL_BUF_INIT;
				size_t from = top;
				while (from > 0 && stack[from - 1] != (size_t)d)
					from--;
				for (size_t k = from ? from - 1 : 0; k < top; k++)
					cbl_buf_printf(&cyc, "%s -> ", b->tasks[stack[k]].identifier);
				cbl_buf_printf(&cyc, "%s", b->tasks[d].identifier);
				char *shown = spec_disp(cyc.ptr, cyc.len);
				spec_err(c, dep->pos, "%s: depend-on closes a cycle (%s): a build graph has no cycles", path,
					 shown);
				free(shown);
				cbl_buf_release(&cyc);
				continue;
			}
			color[d] = 1;
			stack[top++] = (size_t)d;
		}
	}
	free(color);
	free(stack);
	free(next);
}

void spec_batch_check_tasks(spec_ctx *c, const spec_batch *b, const char *path, bool graph)
{
	id_ref *refs = cbl_xreallocarray(NULL, b->ntasks ? b->ntasks : 1, sizeof(*refs));
	size_t n = 0;
	for (size_t i = 0; i < b->ntasks; i++)
		if (b->tasks[i].identifier)
			refs[n++] = (id_ref){b->tasks[i].identifier, i};
	qsort(refs, n, sizeof(*refs), cmp_ref);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(refs[i].id, refs[i - 1].id))
			continue;
		char *d = spec_disp(refs[i].id, strlen(refs[i].id));
		spec_err(c, b->tasks[refs[i].index].pos, "%s: identifier '%s' is used more than once (also at line %d)",
			 path, d, b->tasks[refs[i - 1].index].pos.line);
		free(d);
	}
	for (size_t i = 0; graph && i < b->ntasks; i++) {
		const spec_batch_task *t = &b->tasks[i];
		for (size_t k = 0; k < t->depend_on.n; k++) {
			const spec_str *dep = &t->depend_on.items[k];
			if (find_ref(refs, n, dep->s) >= 0)
				continue;
			char *d = spec_disp(dep->s, strlen(dep->s));
			spec_err(c, dep->pos, "%s: depend-on names '%s', which is not a build of this graph", path, d);
			free(d);
		}
	}
	if (graph)
		check_cycles(c, b, refs, n, path);
	free(refs);
}

/* ---- expansion ---------------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? cbl_xstrdup(s) : NULL; }

static void env_copy(spec_batch_build *o, const spec_batch_env *e)
{
	if (e->compute_type) {
		free(o->compute_type);
		o->compute_type = cbl_xstrdup(e->compute_type);
	}
	if (e->image) {
		free(o->image);
		o->image = cbl_xstrdup(e->image);
	}
	if (e->type) {
		free(o->type);
		o->type = cbl_xstrdup(e->type);
	}
	o->privileged_mode |= e->privileged_mode;
	for (size_t i = 0; i < e->variables.n; i++)
		spec_kvlist_set(&o->variables, e->variables.items[i].key, cbl_xstrdup(e->variables.items[i].value),
				e->variables.items[i].pos, false);
}

static spec_batch_build *push_build(spec_batch_plan *p)
{
	SPEC_PUSH(p->builds, p->n);
	spec_batch_build *o = &p->builds[p->n++];
	memset(o, 0, sizeof(*o));
	return o;
}

static void expand_tasks(spec_batch_plan *p, const spec_batch *b)
{
	for (size_t i = 0; i < b->ntasks; i++) {
		const spec_batch_task *t = &b->tasks[i];
		spec_batch_build *o = push_build(p);
		o->identifier = cbl_xstrdup(t->identifier);
		o->label = cbl_xstrdup(t->identifier);
		o->buildspec = dup_or_null(t->buildspec);
		o->debug_session = t->debug_session;
		o->ignore_failure = t->ignore_failure;
		env_copy(o, &t->env);
		if (b->kind != SPEC_BATCH_GRAPH || !t->depend_on.n)
			continue;
		o->depend_on = cbl_xreallocarray(NULL, t->depend_on.n, sizeof(char *));
		for (size_t k = 0; k < t->depend_on.n; k++)
			o->depend_on[o->ndepend_on++] = cbl_xstrdup(t->depend_on.items[k].s);
	}
}

/* The dimensions of a matrix, in the order they vary (last fastest). */
typedef struct dim {
	const spec_strlist *values;
	const char *var;       /* a variable's name, or NULL */
	int what;              /* 0 buildspec, 1 image, 2 compute type, 3 variable */
} dim;

static void matrix_one(spec_batch_plan *p, const spec_batch *b, const dim *dims, size_t ndims, const size_t *at)
{
	spec_batch_build *o = push_build(p);
	cbl_buf label = CBL_BUF_INIT;
	o->identifier = cbl_xasprintf("matrix_%zu", p->n);
	o->ignore_failure = b->matrix_ignore_failure;
	env_copy(o, &b->matrix_static_env);
	for (size_t d = 0; d < ndims; d++) {
		const spec_str *v = &dims[d].values->items[at[d]];
		static const char *const names[] = {"buildspec", "image", "compute-type", NULL};
		cbl_buf_printf(&label, "%s%s=%s", label.len ? " " : "", dims[d].var ? dims[d].var : names[dims[d].what],
			       v->s);
		switch (dims[d].what) {
		case 0:
			o->buildspec = cbl_xstrdup(v->s);
			break;
		case 1:
			free(o->image);
			o->image = cbl_xstrdup(v->s);
			break;
		case 2:
			free(o->compute_type);
			o->compute_type = cbl_xstrdup(v->s);
			break;
		default:
			spec_kvlist_set(&o->variables, dims[d].var, cbl_xstrdup(v->s), v->pos, false);
			break;
		}
	}
	o->label = label.len ? cbl_buf_detach(&label) : cbl_xstrdup(o->identifier);
	cbl_buf_release(&label);
}

static int expand_matrix(spec_batch_plan *p, const spec_batch *b, cbl_error **err)
{
	size_t ndims = 0, total = 1;
	dim *dims = cbl_xreallocarray(NULL, 3 + b->nmatrix_vars, sizeof(*dims));
	if (b->matrix_buildspecs.n)
		dims[ndims++] = (dim){&b->matrix_buildspecs, NULL, 0};
	if (b->matrix_images.n)
		dims[ndims++] = (dim){&b->matrix_images, NULL, 1};
	if (b->matrix_compute_types.n)
		dims[ndims++] = (dim){&b->matrix_compute_types, NULL, 2};
	for (size_t i = 0; i < b->nmatrix_vars; i++)
		if (b->matrix_vars[i].values.n)
			dims[ndims++] = (dim){&b->matrix_vars[i].values, b->matrix_vars[i].name, 3};
	for (size_t d = 0; d < ndims; d++) {
		total *= dims[d].values->n;
		if (total > SPEC_BATCH_MAX_BUILDS) {
			free(dims);
			return cbl_error_set(err, CBL_ESPEC,
					     "batch.build-matrix makes more than %d builds (the cross product of its dynamic values)",
					     SPEC_BATCH_MAX_BUILDS);
		}
	}
	size_t *at = cbl_xcalloc(ndims ? ndims : 1, sizeof(size_t));
	for (size_t k = 0; k < total; k++) {
		matrix_one(p, b, dims, ndims, at);
		for (size_t d = ndims; d-- > 0;) {
			if (++at[d] < dims[d].values->n)
				break;
			at[d] = 0;
		}
	}
	free(at);
	free(dims);
	return 0;
}

int spec_batch_plan_new(spec_batch_plan **out, const spec_buildspec *bs, cbl_error **err)
{
	const spec_batch *b = &bs->batch;
	*out = NULL;
	if (!b->present || b->kind == SPEC_BATCH_NONE)
		return cbl_error_set(err, CBL_ESPEC, "%s: the buildspec has no batch builds", bs->file ? bs->file : "buildspec");
	spec_batch_plan *p = cbl_xcalloc(1, sizeof(*p));
	p->kind = b->kind;
	p->fast_fail = b->fast_fail;
	int rc = 0;
	if (b->kind == SPEC_BATCH_LIST || b->kind == SPEC_BATCH_GRAPH) {
		expand_tasks(p, b);
	} else if (b->kind == SPEC_BATCH_MATRIX) {
		rc = expand_matrix(p, b, err);
	} else if (b->fanout_parallelism > SPEC_BATCH_MAX_BUILDS) {
		rc = cbl_error_set(err, CBL_ESPEC, "batch.build-fanout.parallelism is more than %d", SPEC_BATCH_MAX_BUILDS);
	} else {
		p->shards = b->fanout_parallelism;
		for (int i = 1; i <= b->fanout_parallelism; i++) {
			spec_batch_build *o = push_build(p);
			o->identifier = cbl_xasprintf("shard_%d", i);
			o->label = cbl_xasprintf("shard %d/%d", i, b->fanout_parallelism);
			o->ignore_failure = b->fanout_ignore_failure;
			o->shard = i;
		}
	}
	if (rc) {
		spec_batch_plan_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

const spec_batch_build *spec_batch_plan_find(const spec_batch_plan *p, const char *id)
{
	for (size_t i = 0; p && i < p->n; i++)
		if (!strcmp(p->builds[i].identifier, id))
			return &p->builds[i];
	return NULL;
}

void spec_batch_plan_free(spec_batch_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		spec_batch_build *o = &p->builds[i];
		free(o->identifier);
		free(o->label);
		free(o->buildspec);
		free(o->compute_type);
		free(o->image);
		free(o->type);
		spec_kvlist_release(&o->variables);
		for (size_t k = 0; k < o->ndepend_on; k++)
			free(o->depend_on[k]);
		free(o->depend_on);
	}
	free(p->builds);
	free(p);
}
