/* store/shape.c - request validation driven by small tables of the API
 * model's shapes (store_internal.h).  Clients check almost nothing (types,
 * required members, minimums), so the server checks enums, maximums and
 * patterns itself, and words the errors like the service's validation layer:
 * "1 validation error detected: Value 'FOO' at 'environment.computeType'
 * failed to satisfy constraint: Member must satisfy enum value set: [...]". */
#include "store/store_internal.h"
#include "util/alloc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* A value as the service's messages print it (Java's toString): strings
 * bare, lists "[a, b]", structures "{k=v}", null "null". */
static void value_text(cbl_buf *b, const json_t *value, int depth)
{
	const char *k;
	json_t *x;
	size_t i;
	switch (json_typeof(value)) {
	case JSON_STRING:
		cbl_buf_append(b, json_string_value(value), json_string_length(value));
		return;
	case JSON_INTEGER:
		cbl_buf_printf(b, "%lld", (long long)json_integer_value(value));
		return;
	case JSON_REAL:
		cbl_buf_printf(b, "%.17g", json_real_value(value));
		return;
	case JSON_TRUE:
	case JSON_FALSE:
		cbl_buf_puts(b, json_is_true(value) ? "true" : "false");
		return;
	case JSON_NULL:
		cbl_buf_puts(b, "null");
		return;
	case JSON_ARRAY:
		cbl_buf_putc(b, '[');
		json_array_foreach(value, i, x) {
			if (i)
				cbl_buf_puts(b, ", ");
			if (depth < 8)
				value_text(b, x, depth + 1);
		}
		cbl_buf_putc(b, ']');
		return;
	case JSON_OBJECT:
		cbl_buf_putc(b, '{');
		i = 0;
		json_object_foreach((json_t *)value, k, x) {
			cbl_buf_printf(b, "%s%s=", i++ ? ", " : "", k);
			if (depth < 8)
				value_text(b, x, depth + 1);
		}
		cbl_buf_putc(b, '}');
		return;
	}
}

void store_verr_add(store_verr *v, const char *path, const json_t *value, const char *fmt, ...)
{
	if (v->count)
		cbl_buf_puts(&v->msg, "; ");
	v->count++;
	if (!value || json_is_null(value)) {
		cbl_buf_puts(&v->msg, "Value null");
	} else {
		cbl_buf t = CBL_BUF_INIT;
		value_text(&t, value, 0);
		size_t n = t.len;
		cbl_buf_puts(&v->msg, "Value '");
		cbl_buf_append(&v->msg, t.ptr ? t.ptr : "", n > 200 ? 200 : n);
		cbl_buf_puts(&v->msg, n > 200 ? "...'" : "'");
		cbl_buf_release(&t);
	}
	cbl_buf_printf(&v->msg, " at '%s' failed to satisfy constraint: ", path);
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&v->msg, fmt, ap);
	va_end(ap);
}

int store_verr_finish(store_verr *v, cbl_error **err)
{
	int rc = 0;
	if (v->count)
		rc = cbl_error_set(err, CBL_EINVAL, "%d validation error%s detected: %s", v->count,
				   v->count == 1 ? "" : "s", cbl_buf_cstr(&v->msg));
	cbl_buf_release(&v->msg);
	v->count = 0;
	return rc;
}

bool store_name_pattern_ok(const char *s)
{
	/* [A-Za-z0-9][A-Za-z0-9\-_]{1,149} */
	size_t n = strlen(s);
	if (n < 2 || n > 150 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static void enum_text(cbl_buf *b, const char *const *e)
{
	cbl_buf_putc(b, '[');
	for (size_t i = 0; e[i]; i++)
		cbl_buf_printf(b, "%s%s", i ? ", " : "", e[i]);
	cbl_buf_putc(b, ']');
}

static bool in_enum(const char *s, const char *const *e)
{
	for (size_t i = 0; e[i]; i++)
		if (!strcmp(s, e[i]))
			return true;
	return false;
}

static void check_string(const store_field *f, const char *path, json_t *val, store_verr *v)
{
	const char *s = json_string_value(val);
	size_t n = strlen(s);
	if (f->min > 0 && n < (size_t)f->min)
		store_verr_add(v, path, val, "Member must have length greater than or equal to %lld", f->min);
	else if (f->max > 0 && n > (size_t)f->max)
		store_verr_add(v, path, val, "Member must have length less than or equal to %lld", f->max);
	else if (f->enumv && !in_enum(s, f->enumv)) {
		cbl_buf e = CBL_BUF_INIT;
		enum_text(&e, f->enumv);
		store_verr_add(v, path, val, "Member must satisfy enum value set: %s", cbl_buf_cstr(&e));
		cbl_buf_release(&e);
	} else if (f->pattern && !f->pattern(s))
		store_verr_add(v, path, val, "Member must satisfy regular expression pattern: %s",
			       f->pattern_text ? f->pattern_text : "");
}

static void check_field(const store_field *f, const char *path, json_t *val, json_t **out,
			store_verr *v)
{
	*out = NULL;
	switch (f->type) {
	case SF_STR:
		if (!json_is_string(val)) {
			store_verr_add(v, path, val, "Member must be a string");
			return;
		}
		check_string(f, path, val, v);
		*out = json_incref(val);
		return;
	case SF_INT:
		if (!json_is_integer(val)) {
			store_verr_add(v, path, val, "Member must be an integer");
			return;
		}
		if (json_integer_value(val) < f->min)
			store_verr_add(v, path, val, "Member must have value greater than or equal to %lld",
				       f->min);
		else if (f->max && json_integer_value(val) > f->max)
			store_verr_add(v, path, val, "Member must have value less than or equal to %lld",
				       f->max);
		*out = json_incref(val);
		return;
	case SF_BOOL:
		if (!json_is_boolean(val)) {
			store_verr_add(v, path, val, "Member must be a boolean");
			return;
		}
		*out = json_incref(val);
		return;
	case SF_STRUCT:
		store_shape_check(f->sub, path, val, out, v);
		return;
	case SF_ANY:
		*out = json_incref(val);
		return;
	case SF_LIST_STR:
	case SF_LIST_STRUCT:
		break;
	}
	if (!json_is_array(val)) {
		store_verr_add(v, path, val, "Member must be a list");
		return;
	}
	size_t n = json_array_size(val);
	if (f->type == SF_LIST_STR && f->min > 0 && n < (size_t)f->min)
		store_verr_add(v, path, val, "Member must have length greater than or equal to %lld", f->min);
	if (f->max > 0 && n > (size_t)f->max) {
		store_verr_add(v, path, val, "Member must have length less than or equal to %lld", f->max);
		return;
	}
	json_t *list = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(val, i, x) {
		char *p = cbl_xasprintf("%s.%zu.member", path, i + 1);
		if (f->type == SF_LIST_STRUCT) {
			json_t *o = NULL;
			store_shape_check(f->sub, p, x, &o, v);
			if (o)
				json_array_append_new(list, o);
		} else if (!json_is_string(x)) {
			store_verr_add(v, p, x, "Member must be a string");
		} else {
			if (f->enumv && !in_enum(json_string_value(x), f->enumv)) {
				cbl_buf e = CBL_BUF_INIT;
				enum_text(&e, f->enumv);
				store_verr_add(v, p, x, "Member must satisfy enum value set: %s",
					       cbl_buf_cstr(&e));
				cbl_buf_release(&e);
			}
			json_array_append(list, x);
		}
		free(p);
	}
	*out = list;
}

void store_shape_check(const store_shape *shape, const char *path, json_t *obj, json_t **out,
		       store_verr *v)
{
	if (out)
		*out = NULL;
	if (!json_is_object(obj)) {
		store_verr_add(v, path && *path ? path : "input", obj, "Member must be a structure");
		return;
	}
	json_t *norm = json_object();
	for (size_t i = 0; i < shape->n; i++) {
		const store_field *f = &shape->fields[i];
		json_t *val = json_object_get(obj, f->name);
		char *p = path && *path ? cbl_xasprintf("%s.%s", path, f->name) : cbl_xstrdup(f->name);
		if (!val || json_is_null(val)) {
			if (f->required)
				store_verr_add(v, p, NULL, "Member must not be null");
		} else {
			json_t *o = NULL;
			check_field(f, p, val, &o, v);
			if (o)
				json_object_set_new(norm, f->name, o);
		}
		free(p);
	}
	if (out)
		*out = norm;
	else
		json_decref(norm);
}
