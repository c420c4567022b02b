#include "util/strv.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

void cbl_strv_push_take(cbl_strv *sv, char *s)
{
	CBL_GROW(sv->v, sv->n + 2, sv->cap);
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

void cbl_strv_push(cbl_strv *sv, const char *s) { cbl_strv_push_take(sv, cbl_xstrdup(s)); }

void cbl_strv_pushf(cbl_strv *sv, const char *fmt, ...)
{
	cbl_buf b = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	cbl_strv_push_take(sv, cbl_buf_detach(&b));
}

void cbl_strv_release(cbl_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

static ssize_t env_find(const cbl_strv *env, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], name, nl) == 0 && env->v[i][nl] == '=')
			return (ssize_t)i;
	return -1;
}

const char *cbl_env_get(const cbl_strv *env, const char *name)
{
	ssize_t i = env_find(env, name);
	return i < 0 ? NULL : env->v[i] + strlen(name) + 1;
}

void cbl_env_set(cbl_strv *env, const char *name, const char *value)
{
	ssize_t i = env_find(env, name);
	char *entry = cbl_xasprintf("%s=%s", name, value);
	if (i < 0) {
		cbl_strv_push_take(env, entry);
	} else {
		free(env->v[i]);
		env->v[i] = entry;
	}
}

void cbl_env_unset(cbl_strv *env, const char *name)
{
	ssize_t i = env_find(env, name);
	if (i < 0)
		return;
	free(env->v[i]);
	memmove(&env->v[i], &env->v[i + 1], (env->n - (size_t)i) * sizeof(char *));
	env->n--;
}
