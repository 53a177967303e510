/* sb_util_time.c: millisecond clocks and RFC 3339 formatting. */
#include "sb_util_time.h"
#include "sb_err.h"

#include <stdio.h>
#include <time.h>

static int64_t
sb_time_clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
sb_time_now_ms(void)
{
	return sb_time_clock_ms(CLOCK_REALTIME);
}

int64_t
sb_time_mono_ms(void)
{
	return sb_time_clock_ms(CLOCK_MONOTONIC);
}

int
sb_time_format_rfc3339(int64_t epoch_ms, char *out, size_t n)
{
	/* Seconds of 0000-01-01 and of 10000-01-01 relative to the epoch. */
	const int64_t min_s = -62167219200LL, max_s = 253402300800LL;
	struct tm tm;

	if (out == NULL || n < SB_TIME_RFC3339_LEN + 1) {
		if (out != NULL && n > 0)
			out[0] = '\0';
		return SB_EINVAL;
	}
	out[0] = '\0';
	/* Floor division, so that -1 ms is 23:59:59.999 of the day before. */
	int64_t sec = epoch_ms / 1000, ms = epoch_ms % 1000;
	if (ms < 0) {
		ms += 1000;
		sec -= 1;
	}
	if (sec < min_s || sec >= max_s)
		return SB_ERANGE;
	time_t t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL)
		return SB_ERANGE;
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
	return 0;
}
