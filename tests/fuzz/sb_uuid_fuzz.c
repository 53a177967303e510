/* sb_uuid_fuzz: libFuzzer target for UUID strings (services/common/sb_util_uuid.c).
 *
 * Properties:
 *   - sb_uuid_parse agrees with an independent reading of RFC 9562's hyphenated form (fz_model):
 *     same verdict, same 16 bytes; out is left untouched on failure;
 *   - what parses formats back as the input in lowercase, and parses again to the same bytes;
 *     version, variant and the v7 timestamp read from the bytes match the digits of the text;
 *   - any 16 bytes format to text that parses back to them, and two ids order as their texts. */
#include "fuzz.h"

#include <ctype.h>

#include "sb_util_uuid.h"

static int
fz_model(const char *s, struct sb_uuid *u)
{
	char digits[33];
	size_t n = 0;
	if (strlen(s) != 36)
		return -1;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash) {
			if (s[i] != '-')
				return -1;
		} else {
			if (!isxdigit((unsigned char)s[i]))
				return -1;
			digits[n++] = s[i];
		}
	}
	digits[n] = '\0';
	for (size_t i = 0; i < 16; i++) {
		char pair[3] = { digits[2 * i], digits[2 * i + 1], '\0' };
		u->b[i] = (uint8_t)strtoul(pair, NULL, 16);
	}
	return 0;
}

static int
fz_sign(int x)
{
	return (x > 0) - (x < 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_cstr(data, size);
	struct sb_uuid got, want, again, poison;
	char out[SB_UUID_STR_LEN + 1], out2[SB_UUID_STR_LEN + 1];

	memset(&poison, 0x5a, sizeof(poison));
	got = poison;
	int rc = sb_uuid_parse(s, &got);
	CHECK((rc == 0) == (fz_model(s, &want) == 0));
	if (rc != 0) {
		CHECK(memcmp(&got, &poison, sizeof(got)) == 0);
	} else {
		CHECK(memcmp(got.b, want.b, 16) == 0);
		sb_uuid_format(&got, out);
		CHECK(strlen(out) == SB_UUID_STR_LEN);
		for (size_t i = 0; i < SB_UUID_STR_LEN; i++)
			CHECK(out[i] == tolower((unsigned char)s[i]));
		CHECK(sb_uuid_parse(out, &again) == 0 && sb_uuid_cmp(&again, &got) == 0);
		CHECK(sb_uuid_version(&got) == fz_hex((unsigned char)s[14]));
		int v = fz_hex((unsigned char)s[19]);
		int want_var = v < 8    ? SB_UUID_VARIANT_NCS
		               : v < 12 ? SB_UUID_VARIANT_RFC9562
		               : v < 14 ? SB_UUID_VARIANT_MICROSOFT
		                        : SB_UUID_VARIANT_FUTURE;
		CHECK((int)sb_uuid_variant(&got) == want_var);
		char ms[13];
		memcpy(ms, s, 8);
		memcpy(ms + 8, s + 9, 4);
		ms[12] = '\0';
		CHECK(sb_uuid_v7_ms(&got) == strtoull(ms, NULL, 16));
	}
	free(s);

	/* Bytes to text and back; the order of ids is the order of their texts. */
	if (size >= 32) {
		struct sb_uuid a, b;
		memcpy(a.b, data, 16);
		memcpy(b.b, data + 16, 16);
		sb_uuid_format(&a, out);
		sb_uuid_format(&b, out2);
		CHECK(sb_uuid_parse(out, &again) == 0 && memcmp(again.b, a.b, 16) == 0);
		CHECK(fz_sign(sb_uuid_cmp(&a, &b)) == fz_sign(strcmp(out, out2)));
	}
	return 0;
}
