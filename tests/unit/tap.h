/* tests/unit/tap.h - a tiny TAP harness.  Each test file includes it once.
 * scripts/run-tests.sh counts "ok" lines as passed, "not ok" lines as
 * failed and "ok N # SKIP reason" lines (skip() below) as skipped. */
#ifndef CBL_TAP_H
#define CBL_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int tap_n, tap_failed, tap_skipped;

#define ok(cond, ...)                                                         \
	do {                                                                  \
		int tap_c_ = !!(cond);                                        \
		tap_n++;                                                      \
		if (tap_c_) {                                                 \
			printf("ok %d - ", tap_n);                            \
		} else {                                                      \
			tap_failed++;                                         \
			printf("not ok %d - ", tap_n);                        \
		}                                                             \
		printf(__VA_ARGS__);                                          \
		printf("\n");                                                 \
		if (!tap_c_)                                                  \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	} while (0)

#define is_int(got, want, ...)                                                \
	do {                                                                  \
		long long g_ = (long long)(got), w_ = (long long)(want);      \
		ok(g_ == w_, __VA_ARGS__);                                    \
		if (g_ != w_)                                                 \
			printf("#   got %lld, want %lld\n", g_, w_);          \
	} while (0)

#define is_str(got, want, ...)                                                \
	do {                                                                  \
		const char *g_ = (got), *w_ = (want);                         \
		int same_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_;      \
		ok(same_, __VA_ARGS__);                                       \
		if (!same_)                                                   \
			printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
	} while (0)

/* A check that cannot run here, and why: TAP "ok N # SKIP reason", counted
 * as skipped, never as passed.  Not for a check that could run and failed. */
#define skip(...)                                                             \
	do {                                                                  \
		tap_n++;                                                      \
		tap_skipped++;                                                \
		printf("ok %d # SKIP ", tap_n);                               \
		printf(__VA_ARGS__);                                          \
		printf("\n");                                                 \
	} while (0)

/* The project's companion directory: $CBL_SHARED (scripts/run-tests.sh sets
 * it), else ../shared from the project root where the tests run; NULL when
 * it is not here.  Its absence is a skip (a clone of the project alone);
 * a file missing from a present one is a failure. */
static inline const char *tap_shared(void)
{
	const char *s = getenv("CBL_SHARED");
	struct stat st;
	if (!s || !*s)
		s = "../shared";
	return stat(s, &st) == 0 && S_ISDIR(st.st_mode) ? s : NULL;
}

static inline int tap_done(void)
{
	if (tap_skipped)
		printf("# %d skipped\n", tap_skipped);
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
