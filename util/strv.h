/* util/strv.h - NULL-terminated vector of heap strings. */
#ifndef CBL_STRV_H
#define CBL_STRV_H

#include <stddef.h>
#include <sys/types.h>

typedef struct cbl_strv {
	char **v;    /* NULL-terminated once anything is pushed; may be NULL when empty */
	size_t n;
	size_t cap;
} cbl_strv;

#define CBL_STRV_INIT {NULL, 0, 0}

void cbl_strv_push(cbl_strv *sv, const char *s);      /* copies s */
void cbl_strv_push_take(cbl_strv *sv, char *s);       /* takes ownership */
void cbl_strv_pushf(cbl_strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cbl_strv_release(cbl_strv *sv);

/* Environment helpers over "NAME=value" entries. */
/* Returns the value of NAME or NULL (borrowed). */
const char *cbl_env_get(const cbl_strv *env, const char *name);
/* Sets NAME=value, replacing an existing entry in place (keeps order). */
void cbl_env_set(cbl_strv *env, const char *name, const char *value);
void cbl_env_unset(cbl_strv *env, const char *name);

#endif
