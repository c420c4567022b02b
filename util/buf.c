#include "util/buf.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void grow(cbl_buf *b, size_t extra)
{
	if (extra > (size_t)-1 - b->len - 1)
		abort();
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t nc = b->cap ? b->cap : 64;
	while (nc < need)
		nc = nc > (size_t)-1 / 2 ? need : nc * 2;
	b->ptr = cbl_xrealloc(b->ptr, nc);
	b->cap = nc;
}

void cbl_buf_append(cbl_buf *b, const char *s, size_t n)
{
	grow(b, n);
	if (n)
		memcpy(b->ptr + b->len, s, n);
	b->len += n;
	b->ptr[b->len] = '\0';
}

void cbl_buf_puts(cbl_buf *b, const char *s) { cbl_buf_append(b, s, strlen(s)); }

void cbl_buf_putc(cbl_buf *b, char c) { cbl_buf_append(b, &c, 1); }

void cbl_buf_vprintf(cbl_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	grow(b, (size_t)n);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void cbl_buf_printf(cbl_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void cbl_buf_shquote(cbl_buf *b, const char *s)
{
	cbl_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			cbl_buf_puts(b, "'\\''");
		else
			cbl_buf_putc(b, *s);
	}
	cbl_buf_putc(b, '\'');
}

void cbl_buf_reset(cbl_buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

void cbl_buf_consume(cbl_buf *b, size_t n)
{
	if (n >= b->len) {
		cbl_buf_reset(b);
		return;
	}
	memmove(b->ptr, b->ptr + n, b->len - n);
	b->len -= n;
	b->ptr[b->len] = '\0';
}

const char *cbl_buf_cstr(const cbl_buf *b) { return b->ptr ? b->ptr : ""; }

char *cbl_buf_detach(cbl_buf *b)
{
	char *p = b->ptr ? b->ptr : cbl_xstrdup("");
	b->ptr = NULL;
	b->len = b->cap = 0;
	return p;
}

void cbl_buf_release(cbl_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
}
