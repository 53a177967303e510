/* sb_b64_fuzz: libFuzzer target for base64 (services/common/sb_util_b64.c), the decoder of the
 * tus Upload-Metadata and Upload-Checksum headers, protobuf JSON bytes, JWT segments and CDC
 * blobs. The first input byte picks the flags, the rest is the text.
 *
 * Properties, for every flag combination:
 *   - what decodes is canonical: encoded again (in the alphabet of the input, with padding when
 *     the input had it or the flags require it) it is the input, byte for byte; so no two
 *     spellings under one rule decode to the same bytes;
 *   - what decodes fits sb_b64_decoded_max, and a buffer one byte short is refused (SB_ERANGE);
 *   - any bytes, encoded under any flags, decode back to themselves under the matching ones. */
#include "fuzz.h"

#include "sb_err.h"
#include "sb_util_b64.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	static const unsigned dflags[] = {
		0,
		SB_B64_STD | SB_B64_PAD,
		SB_B64_URL | SB_B64_NOPAD,
		SB_B64_STD | SB_B64_URL,
		SB_B64_URL,
		SB_B64_STD | SB_B64_NOPAD,
		SB_B64_URL | SB_B64_PAD,
		SB_B64_STD | SB_B64_URL | SB_B64_PAD,
	};
	unsigned fl = dflags[data[0] % 8];
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	size_t cap = sb_b64_decoded_max(n);
	uint8_t *out = malloc(cap + 1);
	char *enc = malloc(n + 8);
	size_t got = 0;
	CHECK(out != NULL && enc != NULL);
	int rv = sb_b64_decode(s, n, fl, out, cap, &got);
	CHECK(rv == 0 || rv == SB_EINVAL || rv == SB_ERANGE);
	CHECK(rv != SB_ERANGE); /* cap is the most n characters can hold */
	if (rv == 0) {
		CHECK(got <= cap);
		bool url = false, padded = n > 0 && s[n - 1] == '=';
		for (size_t i = 0; i < n; i++) {
			CHECK(s[i] != '\0' && s[i] != ' ' && s[i] != '\n');
			if (s[i] == '-' || s[i] == '_')
				url = true;
			if (s[i] == '+' || s[i] == '/')
				CHECK(!(fl & SB_B64_URL) || (fl & SB_B64_STD));
		}
		CHECK(!(fl & SB_B64_PAD) || padded || n % 4 == 0);
		CHECK(!(fl & SB_B64_NOPAD) || !padded);
		unsigned ef =
		    (url ? SB_B64_URL : 0) | (padded || (fl & SB_B64_PAD) ? SB_B64_PAD : 0);
		CHECK(sb_b64_encode(out, got, ef, enc, n + 8) == 0);
		/* compare, letting each position be spelt in either alphabet the flags allow */
		CHECK(strlen(enc) == n);
		for (size_t i = 0; i < n; i++) {
			char a = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
			char b = enc[i] == '-' ? '+' : enc[i] == '_' ? '/' : enc[i];
			CHECK(a == b);
		}
		if (got > 0) {
			size_t g2;
			CHECK(sb_b64_decode(s, n, fl, out, got - 1, &g2) == SB_ERANGE);
		}
	}
	/* the input's bytes, encoded under each rule, decode back */
	static const unsigned eflags[] = { 0, SB_B64_PAD, SB_B64_URL, SB_B64_URL | SB_B64_PAD };
	for (size_t k = 0; k < 4; k++) {
		size_t len = sb_b64_encoded_len(n, eflags[k]);
		char *e = malloc(len + 1);
		uint8_t *back = malloc(n + 1);
		CHECK(e != NULL && back != NULL);
		CHECK(sb_b64_encode(s, n, eflags[k], e, len) == SB_ERANGE);
		CHECK(sb_b64_encode(s, n, eflags[k], e, len + 1) == 0 && strlen(e) == len);
		unsigned d = (eflags[k] & SB_B64_URL ? SB_B64_URL : SB_B64_STD) |
		             (eflags[k] & SB_B64_PAD ? SB_B64_PAD : SB_B64_NOPAD);
		size_t g = 0;
		CHECK(sb_b64_decode(e, len, d, back, n, &g) == 0 && g == n);
		CHECK(n == 0 || memcmp(back, s, n) == 0);
		free(e);
		free(back);
	}
	free(out);
	free(enc);
	return 0;
}
