#include "util/error.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_v(cbl_error **err, int code, int errnum, const char *file, int line, int col,
		 const char *fmt, va_list ap) __attribute__((format(printf, 7, 0)));
static int set_v(cbl_error **err, int code, int errnum, const char *file, int line, int col,
		 const char *fmt, va_list ap)
{
	if (!err || *err)
		return code;
	cbl_error *e = cbl_xcalloc(1, sizeof(*e));
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_vprintf(&b, fmt, ap);
	if (errnum)
		cbl_buf_printf(&b, ": %s", strerror(errnum));
	e->code = code;
	e->msg = cbl_buf_detach(&b);
	e->file = file ? cbl_xstrdup(file) : NULL;
	e->line = line;
	e->col = col;
	*err = e;
	return code;
}

int cbl_error_set(cbl_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set_v(err, code, 0, NULL, 0, 0, fmt, ap);
	va_end(ap);
	return r;
}

int cbl_error_set_errno(cbl_error **err, int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set_v(err, code, errnum, NULL, 0, 0, fmt, ap);
	va_end(ap);
	return r;
}

int cbl_error_set_at(cbl_error **err, int code, const char *file, int line, int col,
		     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set_v(err, code, 0, file, line, col, fmt, ap);
	va_end(ap);
	return r;
}

int cbl_error_wrap(cbl_error **err, const char *fmt, ...)
{
	if (!err || !*err)
		return CBL_EINTERNAL;
	cbl_buf b = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	cbl_buf_printf(&b, ": %s", (*err)->msg);
	free((*err)->msg);
	(*err)->msg = cbl_buf_detach(&b);
	return (*err)->code;
}

void cbl_error_free(cbl_error *e)
{
	if (!e)
		return;
	free(e->msg);
	free(e->file);
	free(e);
}

void cbl_error_clear(cbl_error **err)
{
	if (err && *err) {
		cbl_error_free(*err);
		*err = NULL;
	}
}
