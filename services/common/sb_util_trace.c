/* sb_util_trace.c: W3C Trace Context traceparent parsing, formatting and generation. */
#include "sb_util_trace.h"
#include "sb_err.h"
#include "sb_util_rand.h"

#include <string.h>

static int
sb_trace_lowhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* uppercase is invalid in traceparent */
}

/* Reads n bytes of lowercase hex from s. Returns 0 or -1. */
static int
sb_trace_unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = sb_trace_lowhex(s[2 * i]), lo = sb_trace_lowhex(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void
sb_trace_hex(const uint8_t *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 0x0f];
	}
}

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
	if (sb_trace_unhex(s, &version, 1) != 0 || version == 0xff)
		return SB_EINVAL;
	if (version == 0x00 && len != SB_TRACEPARENT_LEN)
		return SB_EINVAL;
	if (version != 0x00 && len > SB_TRACEPARENT_LEN && s[SB_TRACEPARENT_LEN] != '-')
		return SB_EINVAL;
	if (s[2] != '-' || s[35] != '-' || s[52] != '-')
		return SB_EINVAL;
	if (sb_trace_unhex(s + 3, c.trace_id, sizeof(c.trace_id)) != 0 ||
	    sb_trace_unhex(s + 36, c.span_id, sizeof(c.span_id)) != 0 ||
	    sb_trace_unhex(s + 53, &c.flags, 1) != 0)
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
	sb_trace_hex(c->trace_id, sizeof(c->trace_id), out + 3);
	out[35] = '-';
	sb_trace_hex(c->span_id, sizeof(c->span_id), out + 36);
	out[52] = '-';
	sb_trace_hex(&c->flags, 1, out + 53);
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
	sb_trace_hex(c->trace_id, sizeof(c->trace_id), out);
	out[SB_TRACE_ID_HEX] = '\0';
}

bool
sb_trace_sampled(const struct sb_trace_ctx *c)
{
	return (c->flags & SB_TRACE_SAMPLED) != 0;
}
