/* sb_rtframe.c: the notifier → realtime Redis message header, both directions. */
#include "sb_rtframe.h"

#include <stdbool.h>
#include <string.h>

#include "sb_err.h"

int
sb_rtframe_header_tp(struct sb_buf *b, int64_t seq, int64_t event_ms, const char *traceparent)
{
	struct sb_trace_ctx tc;
	bool tp = traceparent != NULL && traceparent[0] != '\0';
	if (seq < 0 ||
	    (tp && (strlen(traceparent) != SB_TRACEPARENT_LEN ||
	            strncmp(traceparent, "00-", 3) != 0 || sb_trace_parse(traceparent, &tc) != 0)))
		return SB_EINVAL;
	return sb_buf_printf(b, "%lld %lld%s%s\n", (long long)seq, (long long)event_ms,
	                     tp ? " " : "", tp ? traceparent : "") == 0
	           ? 0
	           : SB_ENOMEM;
}

int
sb_rtframe_header(struct sb_buf *b, int64_t seq, int64_t event_ms)
{
	return sb_rtframe_header_tp(b, seq, event_ms, NULL);
}

/* sb_rtframe_int reads a decimal int64 at *p (an optional '-', then digits) that must be
 * followed by stop before end, and advances *p past stop. Accepts [INT64_MIN, INT64_MAX];
 * anything outside it, or not of this shape, is SB_EPROTO. */
static int
sb_rtframe_int(const char **p, const char *end, char stop, int64_t *out)
{
	const char *s = *p;
	bool neg = s < end && *s == '-';
	if (neg)
		s++;
	if (s >= end || *s < '0' || *s > '9')
		return SB_EPROTO;
	/* the magnitude: at most INT64_MAX, or INT64_MAX + 1 for a negative number */
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (limit - d) / 10) /* v * 10 + d > limit */
			return SB_EPROTO;
		v = v * 10 + d;
	}
	if (s >= end || *s != stop)
		return SB_EPROTO;
	*p = s + 1;
	if (!neg)
		*out = (int64_t)v;
	else if (v == (uint64_t)INT64_MAX + 1)
		*out = INT64_MIN;
	else
		*out = -(int64_t)v;
	return 0;
}

int
sb_rtframe_split(const char *msg, size_t len, struct sb_rtframe *out)
{
	const char *p = msg, *end = msg + len;
	int64_t seq, ems;
	if (msg == NULL || out == NULL || sb_rtframe_int(&p, end, ' ', &seq) != 0 || seq < 0)
		return SB_EPROTO;
	out->traceparent[0] = '\0';
	const char *q = p;
	if (sb_rtframe_int(&q, end, '\n', &ems) == 0) {
		p = q;
	} else {
		/* "<event_ms> <traceparent>\n" */
		struct sb_trace_ctx tc;
		if (sb_rtframe_int(&p, end, ' ', &ems) != 0 || end - p < SB_TRACEPARENT_LEN + 1 ||
		    p[SB_TRACEPARENT_LEN] != '\n' || strncmp(p, "00-", 3) != 0)
			return SB_EPROTO;
		memcpy(out->traceparent, p, SB_TRACEPARENT_LEN);
		out->traceparent[SB_TRACEPARENT_LEN] = '\0';
		if (sb_trace_parse(out->traceparent, &tc) != 0) {
			out->traceparent[0] = '\0';
			return SB_EPROTO;
		}
		p += SB_TRACEPARENT_LEN + 1;
	}
	out->seq = seq;
	out->event_ms = ems;
	out->json = p;
	out->json_len = (size_t)(end - p);
	return 0;
}

int
sb_rtframe_attachments(struct sb_buf *b, char *const *ids, size_t n)
{
	if (n == 0)
		return 0;
	if (sb_buf_puts(b, ",\"attachments\":[") != 0)
		return SB_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if ((i > 0 && sb_buf_puts(b, ",") != 0) || sb_buf_json_str(b, ids[i]) != 0)
			return SB_ENOMEM;
	return sb_buf_puts(b, "]") != 0 ? SB_ENOMEM : 0;
}
