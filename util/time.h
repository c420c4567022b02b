/* util/time.h - clocks, CodeBuild's log timestamp format, UUIDs, durations. */
#ifndef CBL_TIME_H
#define CBL_TIME_H

#include <stdint.h>

#include "util/error.h"

/* Wall clock, microseconds since the epoch. */
int64_t cbl_now_us(void);
/* Monotonic clock, microseconds. */
int64_t cbl_mono_us(void);

/* "YYYY/MM/DD HH:MM:SS.ffffff" in UTC (Go log format with microseconds);
 * out must hold 27 bytes. */
void cbl_format_log_time(char out[32], int64_t us);
/* ISO 8601 UTC "YYYY-MM-DDTHH:MM:SS.mmmZ"; out must hold 25 bytes. */
void cbl_format_iso_time(char out[32], int64_t us);

/* Random RFC 4122 version-4 UUID, lower-case, 36 chars + NUL. */
void cbl_uuid4(char out[37]);

/* Parses a timeout: a bare number is minutes (CodeBuild's unit); suffixes
 * s, m, h are accepted ("90s", "2m", "1h").  Result in milliseconds. */
int cbl_parse_duration_ms(const char *s, int64_t *out_ms, cbl_error **err);

#endif
