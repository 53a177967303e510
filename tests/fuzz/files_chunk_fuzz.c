/* files_chunk_fuzz: libFuzzer target for the chunk API's request parsers
 * (services/files/chunk_parse.c: the chunk number of a path or query, Content-SHA256) and its
 * size rule.
 *
 * Properties, each against an independent model:
 *   - files_chunk_number accepts exactly 1..9 ASCII digits without a leading zero, and the
 *     value printed back is the input;
 *   - files_chunk_query returns -1, or a number n such that the query holds the pair
 *     "chunk_number=<n>" (at its start or after '&', ending at '&' or the end), and no earlier
 *     pair names chunk_number;
 *   - files_sha256_hex_parse accepts exactly 64 hex digits and writes them in lower case;
 *   - files_chunk_size_ok, for a size and chunk size drawn from the input: the chunk sizes it
 *     accepts add up to the size, and a length one byte off is refused. */
#include "fuzz.h"

#include <ctype.h>
#include <inttypes.h>

#include "files.h"

static void
fz_number(const uint8_t *d, size_t n)
{
	bool model = n >= 1 && n <= 9 && d[0] != '0';
	for (size_t i = 0; i < n && model; i++)
		model = d[i] >= '0' && d[i] <= '9';
	int64_t v = files_chunk_number((const char *)d, n);
	CHECK((v >= 1) == model);
	CHECK(v == -1 || v >= 1);
	if (v >= 1) {
		char back[16];
		int w = snprintf(back, sizeof(back), "%" PRId64, v);
		CHECK(w > 0 && (size_t)w == n && memcmp(back, d, n) == 0);
	}
}

static void
fz_query(const char *q)
{
	int64_t v = files_chunk_query(q);
	/* the model: the first pair whose name is chunk_number decides */
	const char *p = q;
	int64_t want = -1;
	while (*p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len >= 13 && memcmp(p, "chunk_number=", 13) == 0) {
			if (len > 13)
				want = files_chunk_number(p + 13, len - 13);
			if (len > 13)
				break;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	CHECK(v == want);
	if (v >= 1) {
		char pair[32];
		snprintf(pair, sizeof(pair), "chunk_number=%" PRId64, v);
		const char *at = strstr(q, pair);
		CHECK(at != NULL);
	}
}

static void
fz_sha_hex(const char *s)
{
	char out[65];
	size_t n = strlen(s);
	bool model = n == 64;
	for (size_t i = 0; i < n && model; i++)
		model = isxdigit((unsigned char)s[i]) != 0;
	CHECK(files_sha256_hex_parse(s, out) == model);
	if (model)
		for (size_t i = 0; i < 64; i++)
			CHECK(out[i] == (char)tolower((unsigned char)s[i]));
}

static void
fz_sizes(const uint8_t *d, size_t n)
{
	uint64_t a = 0, b = 0;
	for (size_t i = 0; i < n && i < 8; i++)
		a = a << 8 | d[i];
	for (size_t i = 8; i < n && i < 16; i++)
		b = b << 8 | d[i];
	int64_t size = 1 + (int64_t)(a % 2147483648ULL);
	int64_t chunk = 1 + (int64_t)(b % (uint64_t)size);
	if (size / chunk > 4096) /* keep a run short */
		chunk = size / 4096 + 1;
	int64_t total = (size + chunk - 1) / chunk, sum = 0;
	for (int64_t k = 1; k <= total; k++) {
		int64_t len = k < total ? chunk : size - (total - 1) * chunk;
		CHECK(len >= 1 && len <= chunk);
		CHECK(files_chunk_size_ok(size, chunk, total, k, len));
		CHECK(!files_chunk_size_ok(size, chunk, total, k, len + 1));
		CHECK(!files_chunk_size_ok(size, chunk, total, k, len - 1));
		sum += len;
	}
	CHECK(sum == size);
	CHECK(!files_chunk_size_ok(size, chunk, total, 0, chunk));
	CHECK(!files_chunk_size_ok(size, chunk, total, total + 1, chunk));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_cstr(data, size);
	fz_number(data, size);
	fz_query(s);
	fz_sha_hex(s);
	fz_sizes(data, size);
	free(s);
	return 0;
}
