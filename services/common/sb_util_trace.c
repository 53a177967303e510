/* sb_util_trace.c: W3C Trace Context traceparent parsing, formatting and generation. */
#include "sb_util_trace.h"
#include "sb_err.h"
#include "sb_util_hex.h"
#include "sb_util_rand.h"

#include <string.h>

static bool
sb_trace_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

int
sb_trace_parse(const char *s, struct sb_trace_ctx *out)
{
	struct sb_trace_ctx c;
	uint8_t version;

	if (s == NULL)
		return SB_EINVAL;
	size_t len = strnlen(s, SB_TRACEPARENT_LEN + 1);
	if (len < SB_TRACEPARENT_LEN)
		return SB_EINVAL;
	if (sb_hex_decode(s, 1, SB_HEX_LOWER, &version) != 0 || version == 0xff)
		return SB_EINVAL;
	if (version == 0x00 && len != SB_TRACEPARENT_LEN)
		return SB_EINVAL;
	if (version != 0x00 && len > SB_TRACEPARENT_LEN && s[SB_TRACEPARENT_LEN] != '-')
		return SB_EINVAL;
	if (s[2] != '-' || s[35] != '-' || s[52] != '-')
		return SB_EINVAL;
	if (sb_hex_decode(s + 3, sizeof(c.trace_id), SB_HEX_LOWER, c.trace_id) != 0 ||
	    sb_hex_decode(s + 36, sizeof(c.span_id), SB_HEX_LOWER, c.span_id) != 0 ||
	    sb_hex_decode(s + 53, 1, SB_HEX_LOWER, &c.flags) != 0)
		return SB_EINVAL;
	if (sb_trace_all_zero(c.trace_id, sizeof(c.trace_id)) ||
	    sb_trace_all_zero(c.span_id, sizeof(c.span_id)))
		return SB_EINVAL;
	*out = c;
	return 0;
}

void
sb_trace_format(const struct sb_trace_ctx *c, char out[SB_TRACEPARENT_LEN + 1])
{
	memcpy(out, "00-", 3);
	sb_hex_encode(c->trace_id, sizeof(c->trace_id), out + 3);
	out[35] = '-';
	sb_hex_encode(c->span_id, sizeof(c->span_id), out + 36);
	out[52] = '-';
	sb_hex_encode(&c->flags, 1, out + 53);
	out[SB_TRACEPARENT_LEN] = '\0';
}

/* Fills p with random bytes, never all zero. */
static int
sb_trace_rand_nonzero(uint8_t *p, size_t n)
{
	do {
		if (sb_rand_bytes(p, n) != 0)
			return SB_EIO;
	} while (sb_trace_all_zero(p, n));
	return 0;
}

int
sb_trace_new(struct sb_trace_ctx *out, bool sampled)
{
	struct sb_trace_ctx c;
	if (sb_trace_rand_nonzero(c.trace_id, sizeof(c.trace_id)) != 0 ||
	    sb_trace_rand_nonzero(c.span_id, sizeof(c.span_id)) != 0)
		return SB_EIO;
	c.flags = sampled ? SB_TRACE_SAMPLED : 0;
	*out = c;
	return 0;
}

int
sb_trace_child(const struct sb_trace_ctx *parent, struct sb_trace_ctx *out)
{
	struct sb_trace_ctx c = *parent;
	do {
		if (sb_trace_rand_nonzero(c.span_id, sizeof(c.span_id)) != 0)
			return SB_EIO;
	} while (memcmp(c.span_id, parent->span_id, sizeof(c.span_id)) == 0);
	*out = c;
	return 0;
}

void
sb_trace_id_hex(const struct sb_trace_ctx *c, char out[SB_TRACE_ID_HEX + 1])
{
	sb_hex_encode(c->trace_id, sizeof(c->trace_id), out);
	out[SB_TRACE_ID_HEX] = '\0';
}

bool
sb_trace_sampled(const struct sb_trace_ctx *c)
{
	return (c->flags & SB_TRACE_SAMPLED) != 0;
}
