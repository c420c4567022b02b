/* store/validate.c - every request checked against its operation's input
 * shape in the service models, before the operation runs (store/api.h).
 *
 * The tables come from the official models (the JSON files of store/model/, trimmed
 * copies of ../shared/reference/models) through scripts/gen-model.py at
 * build time: nothing here knows a field by name.  The wording is the
 * service's validation layer's (Coral):
 *
 *   1 validation error detected: Value 'FOO' at 'environment.computeType'
 *   failed to satisfy constraint: Member must satisfy enum value set: [...]
 *   2 validation errors detected: ...; ...
 *
 * Paths join members with '.', list elements are "<list>.<1-based>.member";
 * every constraint a value breaks is one error (length, then pattern, then
 * enum), in the model's member order.  A list of scalars whose elements
 * break their shape's constraints is one error at the list, "Member must
 * satisfy constraint: [<the element shape's constraints>]", a map's keys and
 * values "Map keys must satisfy constraint: [...]" / "Map value must ...".
 * Lengths count UTF-16 code units, as Java's String.length() does; patterns
 * must match the whole value.  A member of the wrong JSON type is left to
 * the operation (the service answers SerializationException there), and
 * members the model does not know are ignored, as the service does. */
#include "store/api.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <pthread.h>
#include <stdarg.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* Compiled once per process, read-only afterwards (regexec is reentrant). */
static regex_t *compiled;
static unsigned char *compiled_ok;
static pthread_once_t compile_once = PTHREAD_ONCE_INIT;

static void compile_patterns(void)
{
	compiled = cbl_xcalloc(store_model_npatterns, sizeof(*compiled));
	compiled_ok = cbl_xcalloc(store_model_npatterns, 1);
	for (size_t i = 1; i < store_model_npatterns; i++)
		compiled_ok[i] = !regcomp(&compiled[i], store_model_patterns[i].posix,
					  REG_EXTENDED | REG_NOSUB);
}

int store_model_pattern_match(size_t idx, const char *s)
{
	pthread_once(&compile_once, compile_patterns);
	if (idx == 0 || idx >= store_model_npatterns)
		return 1;
	if (!compiled_ok[idx])
		return -1;
	return !regexec(&compiled[idx], s, 0, NULL, 0);
}

static int cmp_op(const void *key, const void *elem)
{
	return strcmp(key, ((const store_mop *)elem)->target);
}

const store_mop *store_model_op(const char *target)
{
	if (!target)
		return NULL;
	return bsearch(target, store_model_ops, store_model_nops, sizeof(store_model_ops[0]), cmp_op);
}

size_t store_utf16_len(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xc0) == 0x80)
			continue;
		n += *p >= 0xf0 ? 2 : 1;
	}
	return n;
}

typedef struct walk {
	cbl_buf path;
	store_verr v;
} walk;

static void add(walk *w, const json_t *val, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add(walk *w, const json_t *val, const char *fmt, ...)
{
	cbl_buf t = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&t, fmt, ap);
	va_end(ap);
	store_verr_add(&w->v, cbl_buf_cstr(&w->path), val, "%s", cbl_buf_cstr(&t));
	cbl_buf_release(&t);
}

static void enum_set(cbl_buf *b, const store_mshape *sh)
{
	cbl_buf_puts(b, "Member must satisfy enum value set: [");
	for (int i = 0; i < sh->b; i++)
		cbl_buf_printf(b, "%s%s", i ? ", " : "", store_model_enums[sh->a + i]);
	cbl_buf_putc(b, ']');
}

static bool in_enum(const store_mshape *sh, const char *s)
{
	for (int i = 0; i < sh->b; i++)
		if (!strcmp(store_model_enums[sh->a + i], s))
			return true;
	return false;
}

static bool is_enum(const store_mshape *sh) { return sh->kind == SM_STRING && sh->b > 0; }

/* The shape's constraints as the service lists them inside "Member must
 * satisfy constraint: [...]" (for the elements of a list, a map's keys). */
static void constraint_list(cbl_buf *b, const store_mshape *sh)
{
	const char *len = sh->kind == SM_STRING ? "length" : "value";
	const char *sep = "";
	cbl_buf_putc(b, '[');
	if (sh->flags & SM_HAS_MAX) {
		cbl_buf_printf(b, "Member must have %s less than or equal to %lld", len, sh->max);
		sep = ", ";
	}
	if (sh->flags & SM_HAS_MIN) {
		cbl_buf_printf(b, "%sMember must have %s greater than or equal to %lld", sep, len, sh->min);
		sep = ", ";
	}
	if (sh->pattern) {
		cbl_buf_printf(b, "%sMember must satisfy regular expression pattern: %s", sep,
			       store_model_patterns[sh->pattern].java);
		sep = ", ";
	}
	if (is_enum(sh)) {
		cbl_buf_puts(b, sep);
		enum_set(b, sh);
	}
	cbl_buf_putc(b, ']');
}

/* Number of constraints of a scalar shape val breaks, each added as an
 * error when w is not NULL. */
static int check_scalar(walk *w, const store_mshape *sh, const json_t *val)
{
	int bad = 0;
	if (sh->kind == SM_STRING && json_is_string(val)) {
		const char *s = json_string_value(val);
		size_t n = store_utf16_len(s);
		if ((sh->flags & SM_HAS_MIN) && (long long)n < sh->min && ++bad && w)
			add(w, val, "Member must have length greater than or equal to %lld", sh->min);
		if ((sh->flags & SM_HAS_MAX) && (long long)n > sh->max && ++bad && w)
			add(w, val, "Member must have length less than or equal to %lld", sh->max);
		if (sh->pattern && store_model_pattern_match(sh->pattern, s) == 0 && ++bad && w)
			add(w, val, "Member must satisfy regular expression pattern: %s",
			    store_model_patterns[sh->pattern].java);
		if (is_enum(sh) && !in_enum(sh, s) && ++bad && w) {
			cbl_buf e = CBL_BUF_INIT;
			enum_set(&e, sh);
			add(w, val, "%s", cbl_buf_cstr(&e));
			cbl_buf_release(&e);
		}
	} else if ((sh->kind == SM_INT && json_is_integer(val)) ||
		   (sh->kind == SM_DOUBLE && json_is_number(val))) {
		double x = json_number_value(val);
		long long i = json_is_integer(val) ? json_integer_value(val) : 0;
		bool lo = json_is_integer(val) ? i < sh->min : x < (double)sh->min;
		bool hi = json_is_integer(val) ? i > sh->max : x > (double)sh->max;
		if ((sh->flags & SM_HAS_MIN) && lo && ++bad && w)
			add(w, val, "Member must have value greater than or equal to %lld", sh->min);
		if ((sh->flags & SM_HAS_MAX) && hi && ++bad && w)
			add(w, val, "Member must have value less than or equal to %lld", sh->max);
	}
	return bad;
}

static void check(walk *w, int shape, const json_t *val);

static void count_length(walk *w, const store_mshape *sh, const json_t *val, size_t n)
{
	if ((sh->flags & SM_HAS_MIN) && (long long)n < sh->min)
		add(w, val, "Member must have length greater than or equal to %lld", sh->min);
	if ((sh->flags & SM_HAS_MAX) && (long long)n > sh->max)
		add(w, val, "Member must have length less than or equal to %lld", sh->max);
}

static bool is_scalar(const store_mshape *sh)
{
	return sh->kind != SM_STRUCT && sh->kind != SM_LIST && sh->kind != SM_MAP;
}

static void scalar_summary(walk *w, const json_t *val, const char *what, const store_mshape *el)
{
	cbl_buf c = CBL_BUF_INIT;
	cbl_buf_printf(&c, "%s must satisfy constraint: ", what);
	constraint_list(&c, el);
	add(w, val, "%s", cbl_buf_cstr(&c));
	cbl_buf_release(&c);
}

static void check_list(walk *w, const store_mshape *sh, const json_t *val)
{
	count_length(w, sh, val, json_array_size(val));
	const store_mshape *el = &store_model_shapes[sh->a];
	size_t i;
	json_t *x;
	if (is_scalar(el)) {
		json_array_foreach(val, i, x) {
			if (check_scalar(NULL, el, x)) {
				scalar_summary(w, val, "Member", el);
				return;
			}
		}
		return;
	}
	size_t keep = w->path.len;
	json_array_foreach(val, i, x) {
		cbl_buf_printf(&w->path, ".%zu.member", i + 1);
		if (!json_is_null(x))
			check(w, sh->a, x);
		w->path.len = keep;
		w->path.ptr[keep] = '\0';
	}
}

static void check_map(walk *w, const store_mshape *sh, const json_t *val)
{
	count_length(w, sh, val, json_object_size(val));
	const store_mshape *ks = &store_model_shapes[sh->a], *vs = &store_model_shapes[sh->b];
	const char *k;
	json_t *x;
	bool bad_key = false, bad_value = false;
	json_object_foreach((json_t *)val, k, x) {
		json_t *kj = json_string(k);
		if (kj && !bad_key && check_scalar(NULL, ks, kj)) {
			scalar_summary(w, val, "Map keys", ks);
			bad_key = true;
		}
		json_decref(kj);
		if (is_scalar(vs)) {
			if (!bad_value && check_scalar(NULL, vs, x)) {
				scalar_summary(w, val, "Map value", vs);
				bad_value = true;
			}
			continue;
		}
		size_t keep = w->path.len;
		cbl_buf_printf(&w->path, ".%s.member", k);
		check(w, sh->b, x);
		w->path.len = keep;
		w->path.ptr[keep] = '\0';
	}
}

static void check_struct(walk *w, const store_mshape *sh, const json_t *val)
{
	size_t keep = w->path.len;
	for (int i = 0; i < sh->b; i++) {
		const store_mmember *m = &store_model_members[sh->a + i];
		json_t *x = json_object_get(val, m->name);
		if (keep)
			cbl_buf_putc(&w->path, '.');
		cbl_buf_puts(&w->path, m->name);
		if (!x || json_is_null(x)) {
			if (m->required)
				add(w, NULL, "Member must not be null");
		} else {
			check(w, m->shape, x);
		}
		w->path.len = keep;
		if (w->path.ptr)
			w->path.ptr[keep] = '\0';
	}
}

static void check(walk *w, int shape, const json_t *val)
{
	const store_mshape *sh = &store_model_shapes[shape];
	switch (sh->kind) {
	case SM_STRUCT:
		if (json_is_object(val))
			check_struct(w, sh, val);
		return;
	case SM_LIST:
		if (json_is_array(val))
			check_list(w, sh, val);
		return;
	case SM_MAP:
		if (json_is_object(val))
			check_map(w, sh, val);
		return;
	default:
		check_scalar(w, sh, val);
		return;
	}
}

int store_api_validate(const char *target, const json_t *request, cbl_error **err)
{
	const store_mop *op = store_model_op(target);
	if (!op || op->input < 0 || !json_is_object(request))
		return 0;
	walk w = {CBL_BUF_INIT, STORE_VERR_INIT};
	check(&w, op->input, request);
	cbl_buf_release(&w.path);
	return store_verr_finish(&w.v, err);
}
