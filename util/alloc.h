/* util/alloc.h - allocators that never return NULL (abort on OOM, like git's
 * x-functions), and overflow-checked size arithmetic. */
#ifndef CBL_ALLOC_H
#define CBL_ALLOC_H

#include <stddef.h>

void *cbl_xmalloc(size_t n);
void *cbl_xcalloc(size_t nmemb, size_t size);
void *cbl_xrealloc(void *p, size_t n);
/* reallocarray that aborts on overflow or OOM */
void *cbl_xreallocarray(void *p, size_t nmemb, size_t size);
char *cbl_xstrdup(const char *s);
char *cbl_xstrndup(const char *s, size_t n);
/* asprintf that aborts on OOM */
char *cbl_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Grows an array *p of *cap elements so index `need-1` fits. */
#define CBL_GROW(p, need, cap)                                                   \
	do {                                                                     \
		if ((size_t)(need) > (cap)) {                                    \
			size_t cbl_nc_ = (cap) ? (cap) * 2 : 8;                  \
			while (cbl_nc_ < (size_t)(need))                         \
				cbl_nc_ *= 2;                                    \
			(p) = cbl_xreallocarray((p), cbl_nc_, sizeof(*(p)));     \
			(cap) = cbl_nc_;                                         \
		}                                                                \
	} while (0)

#endif
