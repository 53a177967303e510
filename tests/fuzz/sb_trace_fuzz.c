/* sb_trace_fuzz: libFuzzer target for W3C traceparent values (services/common/sb_util_trace.c).
 *
 * Properties:
 *   - sb_trace_parse agrees with an independent reading of the specification (fz_model, written
 *     from the grammar, not from the parser): same verdict, same ids and flags; out is left
 *     untouched on failure;
 *   - what parses formats back as the same value (version 00) or as version 00 of the same
 *     fields (later versions), and that parses again to the same context;
 *   - any 25 bytes taken as a context format to a value that parses back to them exactly when
 *     neither id is all zero. */
#include "fuzz.h"

#include "sb_util_trace.h"

/* "vv-" trace "-" span "-" flags: 'x' is a lowercase hex digit. */
static const char fz_shape[] = "xx-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx-xx";

static int
fz_bytes(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char pair[3] = { s[2 * i], s[2 * i + 1], '\0' };
		out[i] = (uint8_t)strtoul(pair, NULL, 16);
	}
	for (size_t i = 0; i < n; i++)
		if (out[i] != 0)
			return 0;
	return -1; /* all zero */
}

/* fz_model: the traceparent grammar of W3C Trace Context level 1, section 3.2. */
static int
fz_model(const char *s, struct sb_trace_ctx *c)
{
	size_t len = strlen(s);
	if (len < sizeof(fz_shape) - 1)
		return -1;
	for (size_t i = 0; i < sizeof(fz_shape) - 1; i++) {
		if (fz_shape[i] == '-' ? s[i] != '-' : fz_lowhex((unsigned char)s[i]) < 0)
			return -1;
	}
	if (s[0] == 'f' && s[1] == 'f')
		return -1; /* version 255 is invalid */
	if (s[0] == '0' && s[1] == '0' && len != 55)
		return -1; /* version 00: nothing after the flags */
	if (len > 55 && s[55] != '-')
		return -1; /* a later version may only go on with "-..." */
	if (fz_bytes(s + 3, c->trace_id, 16) != 0 || fz_bytes(s + 36, c->span_id, 8) != 0)
		return -1;
	uint8_t flags[1];
	fz_bytes(s + 53, flags, 1);
	c->flags = flags[0];
	return 0;
}

static int
fz_same(const struct sb_trace_ctx *a, const struct sb_trace_ctx *b)
{
	return memcmp(a->trace_id, b->trace_id, 16) == 0 &&
	       memcmp(a->span_id, b->span_id, 8) == 0 && a->flags == b->flags;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_cstr(data, size);
	struct sb_trace_ctx got, want, again, poison;
	char out[SB_TRACEPARENT_LEN + 1], id[SB_TRACE_ID_HEX + 1];

	memset(&poison, 0xa5, sizeof(poison));
	got = poison;
	int rc = sb_trace_parse(s, &got);
	int model = fz_model(s, &want);
	CHECK((rc == 0) == (model == 0));
	if (rc != 0) {
		CHECK(memcmp(&got, &poison, sizeof(got)) == 0);
	} else {
		CHECK(fz_same(&got, &want));
		sb_trace_format(&got, out);
		CHECK(strlen(out) == SB_TRACEPARENT_LEN);
		CHECK(memcmp(out, "00", 2) == 0 && memcmp(out + 2, s + 2, 53) == 0);
		CHECK(sb_trace_parse(out, &again) == 0 && fz_same(&again, &got));
		sb_trace_id_hex(&got, id);
		CHECK(strlen(id) == SB_TRACE_ID_HEX && memcmp(id, s + 3, SB_TRACE_ID_HEX) == 0);
		CHECK(sb_trace_sampled(&got) == ((got.flags & 1) != 0));
	}
	free(s);

	/* Any context formats to a value that reads back, unless an id is all zero. */
	if (size >= 25) {
		struct sb_trace_ctx c;
		memcpy(c.trace_id, data, 16);
		memcpy(c.span_id, data + 16, 8);
		c.flags = data[24];
		sb_trace_format(&c, out);
		static const uint8_t zero[16];
		int valid = memcmp(c.trace_id, zero, 16) != 0 && memcmp(c.span_id, zero, 8) != 0;
		rc = sb_trace_parse(out, &again);
		CHECK((rc == 0) == valid);
		CHECK(rc != 0 || fz_same(&again, &c));
	}
	return 0;
}
