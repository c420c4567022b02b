/* util/json.h - small getters and builders on jansson, one home for what
 * every module used to write for itself.
 *
 * Getters borrow: a returned `const char *` lives as long as the member it
 * was read from.  Builders return a new reference; like json_string, NULL
 * only for text that is not valid UTF-8, unless said otherwise (a NULL
 * value given to json_object_set_new sets nothing). */
#ifndef CBL_JSON_H
#define CBL_JSON_H

#include <jansson.h>

#include "util/error.h"

/* The string member o[key], borrowed; NULL when o is not an object, has no
 * such member, or the member is not a string. */
const char *cbl_json_str(const json_t *o, const char *key);

/* The same, "" instead of NULL. */
const char *cbl_json_str_or_empty(const json_t *o, const char *key);
/* Like cbl_json_str, but NULL for "" too (an unset optional field). */
const char *cbl_json_str_nonempty(const json_t *o, const char *key);

/* A JSON string of s, or JSON null when s is NULL. */
json_t *cbl_json_string_or_null(const char *s);

/* A JSON string of s, which may be any bytes (report files, tool output):
 * jansson refuses invalid UTF-8, so then every byte >= 0x80 becomes '?'.
 * Never NULL; s must not be NULL. */
json_t *cbl_json_string_lossy(const char *s);

/* Sets o[key] to the string s when s is not NULL (nothing when it is). */
void cbl_json_set_str(json_t *o, const char *key, const char *s);

/* *out = the JSON document in the file at path (json_loadf with flags), a
 * new reference; 0, or a negative code and *out = NULL.  A file that cannot be opened
 * or read is CBL_ENOENT / CBL_EIO "cannot open 'PATH': <strerror>" (no
 * position: jansson's -1:-1 means nothing); a syntax error is CBL_EINVAL
 * "PATH:LINE:COL: [WHAT: ]<jansson's message>" (what: e.g. "invalid
 * secrets file", NULL for none). */
int cbl_json_load_file(json_t **out, const char *path, size_t flags, const char *what, cbl_error **err);

#endif
