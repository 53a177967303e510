/* sb_util_time.h: clocks in milliseconds and RFC 3339 timestamps. */
#ifndef SB_UTIL_TIME_H
#define SB_UTIL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Length of "2026-11-24T03:04:05.123Z" without the NUL. */
#define SB_TIME_RFC3339_LEN 24

/* sb_time_now_ms returns the wall clock (CLOCK_REALTIME) in milliseconds since the Unix epoch.
 * It can jump; use it for timestamps, never to measure durations. */
int64_t sb_time_now_ms(void);

/* sb_time_mono_ms returns CLOCK_MONOTONIC in milliseconds: only differences are meaningful.
 * Use it for deadlines, timeouts and durations. */
int64_t sb_time_mono_ms(void);

/* sb_time_format_rfc3339 writes epoch_ms (may be negative) as UTC with milliseconds, e.g.
 * "2026-11-24T03:04:05.123Z", into out of size n (at least SB_TIME_RFC3339_LEN + 1). Returns 0,
 * SB_EINVAL when out is NULL or too small, or SB_ERANGE when the year is outside 0000..9999;
 * on error out holds an empty string when n > 0. */
int sb_time_format_rfc3339(int64_t epoch_ms, char *out, size_t n);

#endif
