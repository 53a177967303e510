/* sb_rtframe.h: the Redis message the notifier publishes and realtime parses, encoded and
 * parsed by this one pair (docs/realtime.md, "Redis channels").
 *
 * A message is a header, two decimal int64s separated by one space and ended by '\n' — the
 * conversation seq (message.created; 0 otherwise) and the event's creation time in Unix ms —
 * followed by the WebSocket frame's JSON text, which realtime forwards to sockets as it is:
 *     "<seq> <event_ms>\n<json>" */
#ifndef SB_RTFRAME_H
#define SB_RTFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "sb_buf.h"

/* The longest header: two int64s, a space and '\n'. */
#define SB_RTFRAME_HEADER_MAX 42

struct sb_rtframe {
	int64_t seq;      /* never negative */
	int64_t event_ms; /* any int64 */
	const char *json; /* points into the message, not NUL-terminated */
	size_t json_len;
};

/* sb_rtframe_header appends the header of seq (>= 0) and event_ms to b. Returns 0, SB_EINVAL
 * for a negative seq, or SB_ENOMEM. */
int sb_rtframe_header(struct sb_buf *b, int64_t seq, int64_t event_ms);

/* sb_rtframe_split splits msg (len bytes, any content) into *out without copying. Returns 0, or
 * SB_EPROTO for a header that is not two decimal int64s (the whole range, as "%lld" writes
 * them) separated by one space and ended by '\n', or a negative seq. The JSON is not
 * checked here. */
int sb_rtframe_split(const char *msg, size_t len, struct sb_rtframe *out);

#endif
