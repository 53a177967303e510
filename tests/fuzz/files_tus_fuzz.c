/* files_tus_fuzz: libFuzzer target for the tus request headers the files service parses
 * (services/files/tus_parse.c: Upload-Length/Upload-Offset, Upload-Metadata, Upload-Checksum,
 * file names; their base64 is sb_util_b64's, fuzzed by sb_b64_fuzz).
 *
 * The input is split at NULs into parts; each part goes through every parser. Properties:
 *   - files_parse_size accepts exactly 1..19 ASCII digits of value <= INT64_MAX (an independent
 *     model), and the value printed back equals the input without its leading zeros;
 *   - a file name from files_sanitize_name (of raw bytes, or from parsed metadata) is 1..255
 *     bytes of valid UTF-8 without '/', '\\', '"', ';', '%', control characters, a leading dot
 *     or blank, and sanitizing it again changes nothing;
 *   - metadata the service writes (pairs of the input's keys and values, base64-encoded)
 *     parses, with the name it carries sanitized; a parsed type is a plausible media type;
 *   - an accepted Upload-Checksum names sha1/sha256/md5 with a digest of that algorithm's
 *     length, and written back is the input. */
#include "fuzz.h"

#include <ctype.h>
#include <inttypes.h>

#include "files.h"
#include "sb_util_b64.h"

static bool
fz_valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= FILES_NAME_MAX || s[0] == '.' || s[0] == ' ')
		return false;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '"' || c == ';' ||
		    c == '%')
			return false;
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
		if (len == 0 || i + len > n)
			return false;
		for (size_t k = 1; k < len; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				return false;
		i += len;
	}
	char again[FILES_NAME_MAX];
	files_sanitize_name(s, n, again);
	return strcmp(again, s) == 0;
}

static void
fz_size(const char *s)
{
	int64_t v = -1;
	int rc = files_parse_size(s, &v);
	size_t n = strlen(s);
	bool model = n >= 1 && n <= 19;
	for (size_t i = 0; model && i < n; i++)
		model = isdigit((unsigned char)s[i]) != 0;
	if (model)
		model = strtoull(s, NULL, 10) <= (unsigned long long)INT64_MAX;
	CHECK((rc == 0) == model);
	if (rc == 0) {
		char back[24];
		snprintf(back, sizeof(back), "%" PRId64, v);
		const char *t = s;
		while (t[0] == '0' && t[1] != '\0')
			t++;
		CHECK(strcmp(back, t) == 0);
	}
}

static void
fz_meta(const char *s)
{
	struct files_meta m;
	if (files_meta_parse(s, &m) == 0) {
		CHECK(m.filename[0] == '\0' || fz_valid_name(m.filename));
		CHECK(m.type[0] == '\0' || files_type_ok(m.type));
	}
}

/* fz_meta_written: "filename <b64 of value>,<key> <b64 of value>" parses, naming the file. */
static void
fz_meta_written(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	char hdr[8192], enc[4096];
	if (vlen > 2048 || klen == 0 || klen > 64)
		return;
	for (size_t i = 0; i < klen; i++)
		if (key[i] <= 0x20 || key[i] >= 0x7f || key[i] == ',')
			return;
	if ((klen == 8 && memcmp(key, "filename", 8) == 0) ||
	    (klen == 4 && memcmp(key, "name", 4) == 0) ||
	    (klen == 8 && memcmp(key, "filetype", 8) == 0) ||
	    (klen == 4 && memcmp(key, "type", 4) == 0) ||
	    (klen == 11 && memcmp(key, "contentType", 11) == 0))
		return; /* a second filename, or a type that may rightly be refused */
	CHECK(sb_b64_encode(val, vlen, SB_B64_PAD, enc, sizeof(enc)) == 0);
	snprintf(hdr, sizeof(hdr), "filename %s,%.*s %s,%.*s", enc, (int)klen, (const char *)key,
	         enc, (int)klen,
	         "flagkey-without-value-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	struct files_meta m;
	/* the third key may collide with the second: then the parse must fail */
	bool dup =
	    klen <= 64 &&
	    memcmp(key, "flagkey-without-value-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	           klen) == 0;
	int rc = files_meta_parse(hdr, &m);
	CHECK((rc == 0) == !dup);
	if (rc == 0) {
		char want[FILES_NAME_MAX];
		files_sanitize_name((const char *)val, vlen, want);
		CHECK(strcmp(m.filename, want) == 0);
		CHECK(m.npairs == 3);
	}
}

static void
fz_checksum(const char *s)
{
	enum files_sum_alg alg;
	uint8_t d[64];
	size_t dlen = 0;
	if (files_checksum_parse(s, &alg, d, &dlen) != 0)
		return;
	const char *name = alg == FILES_SUM_SHA1     ? "sha1"
	                   : alg == FILES_SUM_SHA256 ? "sha256"
	                                             : "md5";
	size_t want = alg == FILES_SUM_SHA1 ? 20 : alg == FILES_SUM_SHA256 ? 32 : 16;
	CHECK(alg == FILES_SUM_SHA1 || alg == FILES_SUM_SHA256 || alg == FILES_SUM_MD5);
	CHECK(dlen == want);
	char enc[128], back[160];
	CHECK(sb_b64_encode(d, dlen, SB_B64_PAD, enc, sizeof(enc)) == 0);
	snprintf(back, sizeof(back), "%s %s", name, enc);
	CHECK(strcmp(back, s) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *parts[3] = { NULL, NULL, NULL };
	size_t lens[3] = { 0, 0, 0 };
	const uint8_t *d = data;
	size_t n = size;
	for (int i = 0; i < 3 && (i == 0 || n > 0); i++)
		fz_next(&d, &n, &parts[i], &lens[i]);
	for (int i = 0; i < 3; i++) {
		if (parts[i] == NULL)
			continue;
		char *s = fz_cstr(parts[i], lens[i]);
		char name[FILES_NAME_MAX];
		fz_size(s);
		fz_meta(s);
		fz_checksum(s);
		files_sanitize_name((const char *)parts[i], lens[i], name);
		CHECK(fz_valid_name(name));
		free(s);
	}
	if (parts[1] != NULL)
		fz_meta_written(parts[0], lens[0], parts[1], lens[1]);
	return 0;
}
