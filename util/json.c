/* util/json.c - see util/json.h. */
#include "util/json.h"
#include "util/buf.h"

#include <errno.h>
#include <stdio.h>

#include "util/banned.h"

const char *cbl_json_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

const char *cbl_json_str_or_empty(const json_t *o, const char *key)
{
	const char *s = cbl_json_str(o, key);
	return s ? s : "";
}

json_t *cbl_json_string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *cbl_json_string_lossy(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	cbl_buf b = CBL_BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		cbl_buf_putc(&b, *p < 0x80 ? (char)*p : '?');
	j = json_string(cbl_buf_cstr(&b));
	cbl_buf_release(&b);
	return j ? j : json_string("");
}

void cbl_json_set_str(json_t *o, const char *key, const char *s)
{
	if (s)
		json_object_set_new(o, key, json_string(s));
}

const char *cbl_json_str_nonempty(const json_t *o, const char *key)
{
	const char *s = cbl_json_str(o, key);
	return s && *s ? s : NULL;
}

int cbl_json_load_file(json_t **out, const char *path, size_t flags, const char *what, cbl_error **err)
{
	*out = NULL;
	FILE *f = fopen(path, "re");
	if (!f)
		return cbl_error_set_errno(err, errno == ENOENT ? CBL_ENOENT : CBL_EIO, errno, "cannot open '%s'",
					   path);
	json_error_t je;
	errno = 0;
	json_t *j = json_loadf(f, flags, &je);
	int read_errno = ferror(f) ? (errno ? errno : EIO) : 0;
	fclose(f);
	if (read_errno) { /* a directory opens, then fails to read (EISDIR) */
		json_decref(j);
		return cbl_error_set_errno(err, CBL_EIO, read_errno, "cannot read '%s'", path);
	}
	if (!j)
		return cbl_error_set(err, CBL_EINVAL, "%s:%d:%d: %s%s%s", path, je.line, je.column,
				     what ? what : "", what ? ": " : "", je.text);
	*out = j;
	return 0;
}
