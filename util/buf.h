/* util/buf.h - growable string buffer, always NUL-terminated. */
#ifndef CBL_BUF_H
#define CBL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct cbl_buf {
	char *ptr;  /* NULL until the first append; use cbl_buf_cstr() to read */
	size_t len;
	size_t cap;
} cbl_buf;

#define CBL_BUF_INIT {NULL, 0, 0}

void cbl_buf_append(cbl_buf *b, const char *s, size_t n);
void cbl_buf_puts(cbl_buf *b, const char *s);
void cbl_buf_putc(cbl_buf *b, char c);
void cbl_buf_printf(cbl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cbl_buf_vprintf(cbl_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s quoted for POSIX sh with single quotes. */
void cbl_buf_shquote(cbl_buf *b, const char *s);
void cbl_buf_reset(cbl_buf *b);
/* Removes the first n bytes. */
void cbl_buf_consume(cbl_buf *b, size_t n);
/* Borrowed view; "" when empty. */
const char *cbl_buf_cstr(const cbl_buf *b);
/* Returns the heap string (caller frees) and resets the buffer. Never NULL. */
char *cbl_buf_detach(cbl_buf *b);
void cbl_buf_release(cbl_buf *b);

#endif
