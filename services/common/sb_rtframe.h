/* sb_rtframe.h: the Redis message the notifier publishes and realtime parses, encoded and
 * parsed by this one pair (docs/realtime.md, "Redis channels").
 *
 * A message is a header, two decimal int64s separated by one space — the conversation seq
 * (message.created; 0 otherwise) and the event's creation time in Unix ms — optionally a space
 * and the W3C traceparent of the notifier's span (version 00, 55 characters), ended by '\n';
 * then the WebSocket frame's JSON text, which realtime forwards to sockets as it is:
 *     "<seq> <event_ms>[ <traceparent>]\n<json>" */
#ifndef SB_RTFRAME_H
#define SB_RTFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "sb_buf.h"
#include "sb_util_trace.h"

/* The longest header: two int64s, a space, a space and a traceparent, and '\n'. */
#define SB_RTFRAME_HEADER_MAX (42 + 1 + SB_TRACEPARENT_LEN)

struct sb_rtframe {
	int64_t seq;      /* never negative */
	int64_t event_ms; /* any int64 */
	const char *json; /* points into the message, not NUL-terminated */
	size_t json_len;
	char traceparent[SB_TRACEPARENT_LEN + 1]; /* "" when the header has none */
};

/* sb_rtframe_header appends the header of seq (>= 0) and event_ms to b. Returns 0, SB_EINVAL
 * for a negative seq, or SB_ENOMEM. */
int sb_rtframe_header(struct sb_buf *b, int64_t seq, int64_t event_ms);
/* sb_rtframe_header_tp is sb_rtframe_header with a traceparent in the header (NULL or "": none,
 * as sb_rtframe_header). Returns SB_EINVAL too for a traceparent that is not a valid version 00
 * value. */
int sb_rtframe_header_tp(struct sb_buf *b, int64_t seq, int64_t event_ms, const char *traceparent);

/* sb_rtframe_split splits msg (len bytes, any content) into *out without copying the JSON.
 * Returns 0, or SB_EPROTO for a header that is not two decimal int64s (the whole range, as
 * "%lld" writes them) separated by one space, optionally followed by one space and a valid
 * version 00 traceparent, and ended by '\n', or a negative seq. The JSON is not checked
 * here. */
int sb_rtframe_split(const char *msg, size_t len, struct sb_rtframe *out);

/* sb_rtframe_attachments appends to b, inside the "message" object of a message.created
 * frame, `,"attachments":[ids...]` when n > 0 and nothing otherwise (frames of messages without
 * attachments keep their bytes). Written by the notifier and by realtime's replay alike
 * (docs/files.md, "Attachments"). Returns 0 or SB_ENOMEM. */
int sb_rtframe_attachments(struct sb_buf *b, char *const *ids, size_t n);

#endif
