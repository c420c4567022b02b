/* util/error.h - the one error type of codebuild-local.
 *
 * Convention: every fallible function takes `cbl_error **err` as its last
 * argument, returns 0 on success or a negative CBL_E* code on failure, and on
 * failure stores a heap-allocated error in *err (when err is not NULL).  The
 * caller owns the error and frees it with cbl_error_free().  A caller that
 * has no use for the error passes NULL (the code is returned all the same)
 * rather than collecting one only to free it.
 *
 * Buildspec problems also carry file/line/col (1-based; 0 = unknown).
 * Thread safety: none needed, errors are plain values.
 */
#ifndef CBL_ERROR_H
#define CBL_ERROR_H

#include <stddef.h>

enum {
	CBL_OK = 0,
	CBL_EINVAL = -1,   /* bad input from the user (usage, buildspec, files) */
	CBL_ENOENT = -2,   /* something named does not exist */
	CBL_EIO = -3,      /* system call / I/O failure */
	CBL_ESPEC = -4,    /* buildspec invalid */
	CBL_ENOMEM = -5,
	CBL_ETIMEDOUT = -6,
	CBL_ESTOPPED = -7,
	CBL_EINTERNAL = -8,
	CBL_EEXIST = -9,    /* something named already exists (API: ResourceAlreadyExistsException) */
	CBL_ELIMIT = -10,   /* a quota or size limit was hit (API: AccountLimitExceededException) */
};

typedef struct cbl_error {
	int code;
	char *msg;   /* full message, context prefixes included */
	char *file;  /* optional: file the error is about */
	int line;    /* optional: 1-based line, 0 if unknown */
	int col;     /* optional: 1-based column, 0 if unknown */
} cbl_error;

/* Sets *err (if err != NULL and *err == NULL) and returns code.  If *err is
 * already set, the first error is kept (the root cause) and code returned. */
int cbl_error_set(cbl_error **err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same, with errno's text appended as ": <strerror>". */
int cbl_error_set_errno(cbl_error **err, int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Same with a position (buildspec errors). */
int cbl_error_set_at(cbl_error **err, int code, const char *file, int line, int col,
		     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Prefixes "<context>: " to an existing error's message.  Returns the error's
 * code, or CBL_EINTERNAL if there is none. */
int cbl_error_wrap(cbl_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void cbl_error_free(cbl_error *e);

/* Clears *err (frees and sets NULL). */
void cbl_error_clear(cbl_error **err);

#endif
