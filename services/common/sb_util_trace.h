/* sb_util_trace.h: W3C Trace Context `traceparent` header values.
 *
 * A value is "VV-TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT-PPPPPPPPPPPPPPPP-FF": version, 16-byte trace
 * id, 8-byte parent (span) id and 8 flag bits, all lowercase hex. Parsing follows the
 * specification: uppercase hex, an all-zero trace or parent id and version ff are invalid;
 * version 00 must be exactly 55 characters; a later version is read for its first four fields
 * and may only continue with '-' after them (forward compatibility). Values are always
 * written as version 00. */
#ifndef SB_UTIL_TRACE_H
#define SB_UTIL_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#define SB_TRACEPARENT_LEN 55 /* a version 00 value, without the NUL */
#define SB_TRACE_ID_HEX    32 /* trace id as hex, without the NUL */
#define SB_TRACE_SPAN_HEX  16 /* parent/span id as hex, without the NUL */
#define SB_TRACE_SAMPLED   0x01

struct sb_trace_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8]; /* the parent-id field: the span that made or forwards the call */
	uint8_t flags;      /* trace-flags; bit 0 is "sampled" */
};

/* sb_trace_parse reads a traceparent value from the NUL-terminated s into out. Returns 0, or
 * SB_EINVAL when s is NULL or invalid (out is then unchanged; the caller should start a new
 * trace with sb_trace_new, as the specification says). */
int sb_trace_parse(const char *s, struct sb_trace_ctx *out);

/* sb_trace_format writes c as a version 00 traceparent (55 characters and a NUL) into out. */
void sb_trace_format(const struct sb_trace_ctx *c, char out[SB_TRACEPARENT_LEN + 1]);

/* sb_trace_new starts a new trace in out: random non-zero trace and span ids, the sampled flag
 * set when sampled is true. Thread-safe. Returns 0 or SB_EIO (out unchanged). */
int sb_trace_new(struct sb_trace_ctx *out, bool sampled);

/* sb_trace_child writes to out a context for a call made on behalf of parent: the same trace id
 * and flags, a new random non-zero span id. out may be parent. Returns 0 or SB_EIO. */
int sb_trace_child(const struct sb_trace_ctx *parent, struct sb_trace_ctx *out);

/* sb_trace_id_hex writes the trace id as 32 lowercase hex digits and a NUL (the trace_id of
 * log lines). */
void sb_trace_id_hex(const struct sb_trace_ctx *c, char out[SB_TRACE_ID_HEX + 1]);

/* sb_trace_sampled tells whether the sampled flag is set. */
bool sb_trace_sampled(const struct sb_trace_ctx *c);

#endif
