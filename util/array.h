/* util/array.h - ARRAY_SIZE, the element count of an array (not a pointer:
 * passing a pointer is a compile error, as in the Linux kernel). */
#ifndef CBL_ARRAY_H
#define CBL_ARRAY_H

#include <stddef.h>

/* 0, or a compile error when a is a pointer rather than an array. */
#define CBL_MUST_BE_ARRAY(a) \
	(0 * sizeof(struct { int cbl_not_an_array : 1 - 2 * __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])); }))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]) + CBL_MUST_BE_ARRAY(a))

#endif
