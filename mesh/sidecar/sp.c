/* sp.c: the bytes the sidecar reads on an RPC connection: nng's SP-over-TCP framing and the
 * first field of the RPC envelope (proto/rpc.proto). Pure functions over byte ranges, no I/O:
 * the fuzz target (tests/fuzz/mesh_sp_fuzz.c) drives them directly.
 *
 * Wire format (nng's TCP transport, scalability protocols RFC sp-tcp-mapping-01):
 *   each side first sends 8 bytes: 0x00 'S' 'P' 0x00, its protocol id (16-bit big-endian:
 *   REQ0 0x30, REP0 0x31), two zero bytes;
 *   then messages, each an unsigned 64-bit big-endian length and that many bytes.
 * REQ/REP puts a backtrace in front of the body: 32-bit big-endian words, the last (the
 * request id set by the REQ socket) with its top bit set, those before it (pipe ids added by
 * devices) without. The REP side answers with the same backtrace. */
#include <string.h>

#include "sidecar.h"

static uint64_t
sp_get64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

int
mesh_sp_header_parse(const uint8_t *b, size_t n, uint16_t *proto)
{
	if (n < MESH_SP_HDR_LEN)
		return 1;
	if (b[0] != 0 || b[1] != 'S' || b[2] != 'P' || b[3] != 0 || b[6] != 0 || b[7] != 0)
		return -1;
	*proto = (uint16_t)(b[4] << 8 | b[5]);
	return 0;
}

void
mesh_sp_header_write(uint8_t out[MESH_SP_HDR_LEN], uint16_t proto)
{
	out[0] = 0;
	out[1] = 'S';
	out[2] = 'P';
	out[3] = 0;
	out[4] = (uint8_t)(proto >> 8);
	out[5] = (uint8_t)proto;
	out[6] = 0;
	out[7] = 0;
}

int
mesh_sp_frame(const uint8_t *b, size_t n, size_t max, size_t *frame_len)
{
	if (n < 8)
		return 1;
	uint64_t len = sp_get64(b);
	if (len > max)
		return -1;
	if (n - 8 < len)
		return 1;
	*frame_len = 8 + (size_t)len;
	return 0;
}

int
mesh_sp_backtrace(const uint8_t *body, size_t n, size_t *bt_len, uint32_t *id)
{
	for (size_t off = 0; off + 4 <= n && off < 4 * MESH_SP_MAX_HOPS; off += 4) {
		uint32_t w = (uint32_t)body[off] << 24 | (uint32_t)body[off + 1] << 16 |
		             (uint32_t)body[off + 2] << 8 | body[off + 3];
		if (w & 0x80000000u) {
			*bt_len = off + 4;
			*id = w;
			return 0;
		}
	}
	return -1;
}

/* pb_varint reads a base-128 varint of at most 10 bytes at *p (< end). Returns 0 or -1. */
static int
pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (int shift = 0; shift < 70; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t c = *(*p)++;
		if (shift == 63 && c > 1)
			return -1; /* more than 64 bits */
		r |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

int
mesh_pb_scan(const uint8_t *msg, size_t n, struct mesh_pb_want *want, size_t nwant)
{
	const uint8_t *p = msg, *end = msg + n;
	while (p < end) {
		uint64_t key, v = 0;
		if (pb_varint(&p, end, &key) != 0)
			return -1;
		uint64_t field = key >> 3;
		unsigned type = key & 7;
		if (field == 0 || field > 536870911u)
			return -1;
		const uint8_t *val = p;
		size_t vlen = 0;
		switch (type) {
		case 0:
			if (pb_varint(&p, end, &v) != 0)
				return -1;
			break;
		case 1:
			if ((size_t)(end - p) < 8)
				return -1;
			p += 8;
			break;
		case 2:
			if (pb_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p))
				return -1;
			val = p;
			vlen = (size_t)v;
			p += v;
			break;
		case 5:
			if ((size_t)(end - p) < 4)
				return -1;
			p += 4;
			break;
		default: /* groups (3, 4) are not proto3; 6, 7 do not exist */
			return -1;
		}
		for (size_t i = 0; i < nwant; i++) {
			if (want[i].field != field)
				continue;
			if (want[i].type != type)
				return -1; /* a known field with the wrong wire type */
			/* Last one wins, as protobuf parsers do for singular fields. */
			want[i].found = true;
			want[i].ptr = val;
			want[i].len = vlen;
			want[i].varint = v;
		}
	}
	return 0;
}

bool
mesh_method_valid(const uint8_t *s, size_t n)
{
	if (n == 0 || n > MESH_METHOD_MAX)
		return false;
	bool dot = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c == '.') {
			if (dot || i == 0 || i == n - 1)
				return false;
			dot = true;
		} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             (c >= '0' && c <= '9') || c == '_')) {
			return false;
		}
	}
	return dot;
}

int
mesh_envelope_method(const uint8_t *env, size_t n, const uint8_t **method, size_t *mlen,
                     const uint8_t **payload, size_t *plen)
{
	struct mesh_pb_want w[2] = { { .field = 1, .type = 2 }, { .field = 2, .type = 2 } };
	if (mesh_pb_scan(env, n, w, 2) != 0 || !w[0].found ||
	    !mesh_method_valid(w[0].ptr, w[0].len))
		return -1;
	*method = w[0].ptr;
	*mlen = w[0].len;
	*payload = w[1].found ? w[1].ptr : env + n;
	*plen = w[1].found ? w[1].len : 0;
	return 0;
}

int
mesh_batch_next(const uint8_t **p, const uint8_t *end, const uint8_t **req, size_t *rlen)
{
	/* Batch{repeated bytes requests = 1}: walk field by field. */
	while (*p < end) {
		uint64_t key, v;
		if (pb_varint(p, end, &key) != 0)
			return -1;
		if (key == (1 << 3 | 2)) {
			if (pb_varint(p, end, &v) != 0 || v > (uint64_t)(end - *p))
				return -1;
			*req = *p;
			*rlen = (size_t)v;
			*p += v;
			return 0;
		}
		return -1; /* Batch has no other field */
	}
	return 1;
}

int
mesh_response_code(const uint8_t *resp, size_t n, uint32_t *code)
{
	struct mesh_pb_want w[1] = { { .field = 1, .type = 0 } };
	if (mesh_pb_scan(resp, n, w, 1) != 0)
		return -1;
	/* An enum is an int32 on the wire: its low 32 bits, as every protobuf parser reads it. */
	*code = w[0].found ? (uint32_t)w[0].varint : 0;
	return 0;
}

/* pb_put_varint writes v at out and returns the bytes written (at most 10). */
static size_t
pb_put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		out[n++] = c | (v ? 0x80 : 0);
	} while (v);
	return n;
}

size_t
mesh_sp_reply(uint8_t *out, size_t cap, const uint8_t *bt, size_t bt_len, uint32_t code,
              const char *msg)
{
	size_t mlen = strlen(msg);
	if (mlen > 1024)
		mlen = 1024;
	/* Response{code = 1 (varint), message = 2 (string)} */
	size_t body = bt_len + 1 + 10 + 1 + 10 + mlen;
	if (cap < 8 + body)
		return 0;
	uint8_t *p = out + 8;
	memcpy(p, bt, bt_len);
	p += bt_len;
	*p++ = 1 << 3 | 0;
	p += pb_put_varint(p, code);
	*p++ = 2 << 3 | 2;
	p += pb_put_varint(p, mlen);
	memcpy(p, msg, mlen);
	p += mlen;
	uint64_t len = (uint64_t)(p - (out + 8));
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)len;
		len >>= 8;
	}
	return (size_t)(p - out);
}
