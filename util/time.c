#include "util/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/banned.h"

int64_t cbl_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cbl_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void cbl_format_log_time(char out[32], int64_t us)
{
	time_t sec = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%04d/%02d/%02d %02d:%02d:%02d.%06d", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
	snprintf(out, 32, "%.31s", tmp);
}

void cbl_format_iso_time(char out[32], int64_t us)
{
	time_t sec = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)((us % 1000000) / 1000));
	snprintf(out, 32, "%.31s", tmp);
}

void cbl_uuid4(char out[37])
{
	unsigned char r[16];
	size_t got = 0;
	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* getrandom cannot fail on Linux >= 3.17 except EINTR;
			 * fall back to time-seeded bytes rather than abort. */
			for (; got < sizeof(r); got++)
				r[got] = (unsigned char)(cbl_mono_us() >> (got % 8));
			break;
		}
		got += (size_t)n;
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
		 r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
		 r[14], r[15]);
}

int cbl_parse_duration_ms(const char *s, int64_t *out_ms, cbl_error **err)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v <= 0 || v > 1e9)
		return cbl_error_set(err, CBL_EINVAL,
				     "invalid timeout '%s' (expected minutes, or a number with s, m or h)", s);
	double mult = 60000.0;
	if (*end == 's' && !end[1])
		mult = 1000.0;
	else if (*end == 'm' && !end[1])
		mult = 60000.0;
	else if (*end == 'h' && !end[1])
		mult = 3600000.0;
	else if (*end)
		return cbl_error_set(err, CBL_EINVAL,
				     "invalid timeout '%s' (expected minutes, or a number with s, m or h)", s);
	*out_ms = (int64_t)(v * mult);
	if (*out_ms < 1)
		*out_ms = 1;
	return 0;
}
