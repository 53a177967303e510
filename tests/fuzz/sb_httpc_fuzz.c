/* sb_httpc_fuzz: libFuzzer target for the HTTP client's response parsers
 * (services/common/sb_httpc_parse.c): the response head, header lookup and the chunked decoder.
 *
 * The input is split at its first NUL: the part before it is a response head (and what
 * follows it), the part after is a chunked body.
 * Properties:
 *   - head: an accepted head ends with its blank line inside the input, its status is the
 *     three digits after "HTTP/1.x ", and every shorter prefix of it asks for more bytes (never
 *     an error, never a different verdict: the client reads it in any pieces); Content-Length
 *     is set exactly when sb_httpc_header finds the header, and then equals its first value;
 *     chunked and Content-Length never both;
 *   - chunked: decoding the body at once and in pieces of sizes taken from the input gives the
 *     same verdict, the same bytes out and the same bytes consumed;
 *   - round trip: the bytes of the input written as a chunked body (chunk sizes, extensions
 *     and trailers chosen by the input) decode to exactly those bytes, consuming the encoding
 *     to its end. */
#include "fuzz.h"

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_httpc.h"

static int
fz_sink(void *arg, const void *d, size_t n)
{
	struct sb_buf *b = arg;
	if (sb_buf_append(b, d, n) != 0)
		abort();
	return 0;
}

static void
fz_head(const char *buf, size_t n)
{
	struct sb_httpc_head h, h2;
	int rv = sb_httpc_parse_head(buf, n, &h);
	CHECK(rv == 1 || rv == 0 || rv == SB_EPROTO);
	if (rv != 1)
		return;
	CHECK(h.len >= 16 && h.len <= n && h.len <= SB_HTTPC_HEAD_MAX);
	CHECK(memcmp(buf + h.len - 4, "\r\n\r\n", 4) == 0);
	CHECK(memcmp(buf, "HTTP/1.", 7) == 0 && (h.minor == 0 || h.minor == 1));
	CHECK(h.status == (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'));
	CHECK(h.status >= 100 && h.status <= 599);
	CHECK(!(h.chunked && h.content_length >= 0));
	/* prefixes: more, never an error; the whole head alone: the same head */
	size_t cuts[] = { 0, 1, 7, h.len / 2, h.len - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		CHECK(sb_httpc_parse_head(buf, cuts[i], &h2) == 0);
	CHECK(sb_httpc_parse_head(buf, h.len, &h2) == 1);
	CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
	size_t vl = 0;
	const char *v = sb_httpc_header(buf, h.len, "content-length", &vl);
	CHECK((v != NULL) == (h.content_length >= 0));
	if (v != NULL) {
		CHECK(vl > 0 && v >= buf && v + vl <= buf + h.len);
		long long x = 0;
		for (size_t i = 0; i < vl && v[i] >= '0' && v[i] <= '9'; i++)
			x = x * 10 + (v[i] - '0');
		CHECK(x == h.content_length);
	}
}

static void
fz_chunked(const char *buf, size_t n, const uint8_t *steps, size_t nsteps)
{
	struct sb_buf a = SB_BUF_INIT, b = SB_BUF_INIT;
	struct sb_httpc_chunked ca = { 0 }, cb = { 0 };
	size_t ua = 0, ub = 0, used = 0, k = 0;
	int ra = sb_httpc_chunked_feed(&ca, buf, n, &ua, fz_sink, &a), rb = 0;
	CHECK(ra == 0 || ra == 1 || ra == SB_EPROTO);
	CHECK(ua <= n);
	while (ub < n) {
		size_t piece = nsteps ? (size_t)steps[k++ % nsteps] % 17 + 1 : 1;
		if (piece > n - ub)
			piece = n - ub;
		rb = sb_httpc_chunked_feed(&cb, buf + ub, piece, &used, fz_sink, &b);
		ub += used;
		if (rb != 0)
			break;
	}
	CHECK(ra == rb);
	CHECK(ua == ub); /* byte by byte the same: even an error is seen at the same byte */
	CHECK(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0));
	sb_buf_free(&a);
	sb_buf_free(&b);
}

static void
fz_roundtrip(const uint8_t *data, size_t n)
{
	struct sb_buf enc = SB_BUF_INIT, out = SB_BUF_INIT;
	size_t off = 0, i = 0;
	while (off < n) {
		size_t c = (size_t)data[i++ % n] % 9 + 1;
		if (c > n - off)
			c = n - off;
		if (sb_buf_printf(&enc, i % 3 ? "%zx" : "%zX", c) != 0 ||
		    sb_buf_puts(&enc, i % 4 == 0 ? ";name=\"v\"\r\n" : "\r\n") != 0 ||
		    sb_buf_append(&enc, data + off, c) != 0 || sb_buf_puts(&enc, "\r\n") != 0)
			abort();
		off += c;
	}
	if (sb_buf_puts(&enc, n % 2 ? "0\r\nX-Sum: 1\r\n\r\n" : "000\r\n\r\n") != 0)
		abort();
	struct sb_httpc_chunked c = { 0 };
	size_t used = 0;
	CHECK(sb_httpc_chunked_feed(&c, enc.data, enc.len, &used, fz_sink, &out) == 1);
	CHECK(used == enc.len);
	CHECK(out.len == n && (n == 0 || memcmp(out.data, data, n) == 0));
	sb_buf_free(&enc);
	sb_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *head, *body;
	size_t hl, bl;
	const uint8_t *rest = data;
	size_t left = size;
	fz_next(&rest, &left, &head, &hl);
	body = rest;
	bl = left;
	char *h = fz_dup(head, hl);
	fz_head(h, hl);
	free(h);
	char *b = fz_dup(body, bl);
	fz_chunked(b, bl, data, size < 8 ? size : 8);
	free(b);
	fz_roundtrip(data, size);
	return 0;
}
