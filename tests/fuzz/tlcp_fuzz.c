/* tlcp_fuzz.c: sb-ingest's TLCP parsers (services/ingest/tlcp.c) on arbitrary server bytes.
 *
 * Input: byte 0 picks a schema width (1..16 fields); the rest is a stream of server lines.
 * Checks besides crashes:
 *   - tlcp_next_line cuts the stream exactly at each LF, every byte in one line or the tail;
 *   - tlcp_parse_line: a recognised line's strings lie inside the line, numbers are
 *     non-negative where the grammar says so, SUBOK/U/CS/EOS/OV item and field counts in range;
 *     a line that is not a known name is UNKNOWN and never an error;
 *   - tlcp_decode_values agrees with a reference decoder written here from the TLCP rules
 *     (tokens split at '|'; "" unchanged, "#" null, "$" empty, "^N" N unchanged, else %XX
 *     decoded and UTF-8) on success, on the field count and on every field;
 *   - what decodes, encoded again with tlcp_encode_values, decodes to the same fields. */
#include "fuzz.h"

#include "sb_buf.h"
#include "sb_err.h"
#include "tlcp.h"

static int
hexv(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The reference: returns true when p[0..n) is a valid value list for nf fields, filling kinds
 * ('u', 'n', 'v') and the decoded values (vals[i], lens[i], malloc'ed). */
static bool
ref_decode(const char *p, size_t n, size_t nf, char *kinds, char **vals, size_t *lens)
{
	size_t f = 0, start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != '|')
			continue;
		const char *t = p + start;
		size_t tn = i - start;
		start = i + 1;
		if (tn > 0 && t[0] == '^') {
			if (tn < 2)
				return false;
			size_t run = 0;
			for (size_t k = 1; k < tn; k++) {
				if (t[k] < '0' || t[k] > '9')
					return false;
				run = run * 10 + (size_t)(t[k] - '0');
				if (run > 100000)
					run = 100000; /* more than any schema: refused below */
			}
			if (run == 0 || run > nf - f)
				return false;
			for (size_t k = 0; k < run; k++)
				kinds[f++] = 'u';
			continue;
		}
		if (f >= nf)
			return false;
		if (tn == 0) {
			kinds[f++] = 'u';
		} else if (tn == 1 && t[0] == '#') {
			kinds[f++] = 'n';
		} else {
			char *v = malloc(tn + 1);
			size_t j = 0;
			if (!(tn == 1 && t[0] == '$')) {
				for (size_t k = 0; k < tn; k++) {
					if (t[k] != '%') {
						v[j++] = t[k];
						continue;
					}
					if (k + 2 >= tn) {
						free(v);
						return false;
					}
					int hi = hexv((unsigned char)t[k + 1]),
					    lo = hexv((unsigned char)t[k + 2]);
					if (hi < 0 || lo < 0) {
						free(v);
						return false;
					}
					v[j++] = (char)(hi * 16 + lo);
					k += 2;
				}
			}
			for (size_t k = 0; k < j;) {
				size_t l = sb_utf8_seq((const unsigned char *)v + k, j - k);
				if (l == 0) {
					free(v);
					return false;
				}
				k += l;
			}
			kinds[f] = 'v';
			vals[f] = v;
			lens[f++] = j;
		}
	}
	return f == nf;
}

static void
check_values(const char *p, size_t n, size_t nf)
{
	struct tlcp_fv fv[16], again[16];
	char kinds[16];
	char *vals[16] = { 0 };
	size_t lens[16] = { 0 };
	bool ok = ref_decode(p, n, nf, kinds, vals, lens);
	int rc = tlcp_decode_values(p, n, nf, fv);
	CHECK((rc == 0) == ok);
	if (rc == 0) {
		for (size_t i = 0; i < nf; i++) {
			CHECK(fv[i].kind == (kinds[i] == 'u'   ? TLCP_FV_UNCHANGED
			                     : kinds[i] == 'n' ? TLCP_FV_NULL
			                                       : TLCP_FV_VALUE));
			if (kinds[i] == 'v') {
				CHECK(fv[i].len == lens[i]);
				CHECK(memcmp(fv[i].val, vals[i], lens[i]) == 0);
				CHECK(fv[i].val[fv[i].len] == '\0');
			}
		}
		struct sb_buf b = SB_BUF_INIT;
		CHECK(tlcp_encode_values(&b, fv, nf) == 0);
		CHECK(tlcp_decode_values(b.data ? b.data : "", b.len, nf, again) == 0);
		for (size_t i = 0; i < nf; i++) {
			CHECK(again[i].kind == fv[i].kind);
			CHECK(again[i].len == fv[i].len);
			if (fv[i].kind == TLCP_FV_VALUE)
				CHECK(memcmp(again[i].val, fv[i].val, fv[i].len) == 0);
		}
		tlcp_fv_clear(again, nf);
		tlcp_fv_clear(fv, nf);
		sb_buf_free(&b);
	}
	for (size_t i = 0; i < nf; i++)
		free(vals[i]);
}

static bool
inside(struct tlcp_str s, const char *line, size_t n)
{
	return s.n == 0 || (s.p >= line && s.p + s.n <= line + n);
}

static void
check_line(const char *line, size_t n, size_t nf)
{
	struct tlcp_msg m;
	int rc = tlcp_parse_line(line, n, &m);
	CHECK(rc == 0 || rc == SB_EPROTO);
	CHECK(inside(m.name, line, n));
	if (rc != 0) {
		CHECK(n == 0 || m.type != TLCP_MSG_UNKNOWN);
		return;
	}
	CHECK(inside(m.session, line, n) && inside(m.text, line, n));
	CHECK(m.sub >= 0 && m.item >= 0);
	switch (m.type) {
	case TLCP_MSG_UNKNOWN:
		CHECK(strcmp(tlcp_msg_type_name(m.type), "?") == 0);
		break;
	case TLCP_MSG_SUBOK:
		CHECK(m.item >= 1 && m.item <= TLCP_MAX_FIELDS && m.n >= 1 &&
		      m.n <= TLCP_MAX_FIELDS);
		break;
	case TLCP_MSG_U:
		CHECK(m.item >= 1);
		check_values(m.text.p, m.text.n, nf);
		break;
	case TLCP_MSG_CONOK:
		CHECK(m.session.n > 0 && memchr(m.session.p, ',', m.session.n) == NULL);
		break;
	case TLCP_MSG_LOOP:
	case TLCP_MSG_SYNC:
	case TLCP_MSG_PROG:
		CHECK(m.n >= 0);
		break;
	default:
		break;
	}
	if (m.type != TLCP_MSG_UNKNOWN) {
		const char *name = tlcp_msg_type_name(m.type);
		CHECK(strlen(name) == m.name.n && memcmp(name, line, m.name.n) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t nf = (size_t)(data[0] % 16) + 1;
	char *buf = fz_dup(data + 1, size - 1);
	size_t n = size - 1, off = 0, len, covered = 0;
	const char *line;
	while (tlcp_next_line(buf, n, &off, &line, &len)) {
		CHECK(line == buf + covered);
		CHECK(off > covered && buf[off - 1] == '\n');
		CHECK(len == off - covered - 1 ||
		      (len == off - covered - 2 && buf[off - 2] == '\r'));
		CHECK(memchr(line, '\n', len) == NULL);
		covered = off;
		check_line(line, len, nf);
	}
	CHECK(memchr(buf + covered, '\n', n - covered) == NULL);
	/* The whole tail as a value list too, so the value decoder sees everything. */
	check_values(buf + covered, n - covered, nf);
	free(buf);
	return 0;
}
