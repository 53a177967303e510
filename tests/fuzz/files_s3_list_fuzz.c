/* files_s3_list_fuzz: libFuzzer target for the S3 backend's reader of ListObjectsV2 answers
 * (services/files/s3_list.c, s3_list_parse), which reads what an S3 server sends.
 *
 * Properties:
 *   - any input: the verdict is 0, SB_EPROTO or SB_ENOMEM; on 0 every segment has an offset and
 *     a size >= 0, there are no more segments than <Contents> elements, each segment's key
 *     ("<prefix><offset as 20 digits>") is literally a <Key> of the input, and a continuation
 *     token comes only with <IsTruncated>true</IsTruncated>; on an error nothing is returned;
 *   - round trip: a listing written from segments taken from the input (mixed with keys that
 *     are not segments, and a token with XML entities) reads back as exactly those segments,
 *     in order, and the token unescaped. */
#include "fuzz.h"

#include "s3.h"
#include "sb_buf.h"
#include "sb_err.h"

#define FZ_PREFIX "up/k/"

static size_t
fz_count(const char *s, size_t n, const char *needle)
{
	size_t c = 0, l = strlen(needle);
	for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), needle, l)) != NULL; p += l)
		c++;
	return c;
}

static void
fz_any(const char *xml, size_t n)
{
	struct s3_seg *segs = NULL;
	size_t ns = 0;
	char *next = NULL;
	int rv = s3_list_parse(xml, n, FZ_PREFIX, &segs, &ns, &next);
	CHECK(rv == 0 || rv == SB_EPROTO || rv == SB_ENOMEM);
	if (rv != 0) {
		CHECK(next == NULL);
		free(segs);
		return;
	}
	CHECK(ns <= fz_count(xml, n, "<Contents>"));
	for (size_t i = 0; i < ns; i++) {
		char key[64];
		CHECK(segs[i].off >= 0 && segs[i].size >= 0);
		snprintf(key, sizeof(key), "<Key>" FZ_PREFIX "%020lld</Key>",
		         (long long)segs[i].off);
		CHECK(memmem(xml, n, key, strlen(key)) != NULL);
	}
	if (next != NULL)
		CHECK(memmem(xml, n, "<IsTruncated>true</IsTruncated>", 31) != NULL);
	free(next);
	free(segs);
}

static void
fz_roundtrip(const uint8_t *d, size_t n)
{
	struct s3_seg want[16];
	size_t nw = 0;
	struct sb_buf x = SB_BUF_INIT, tok = SB_BUF_INIT;
	if (sb_buf_puts(&x, "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name>") != 0)
		abort();
	for (size_t i = 0; i + 9 <= n && nw < 16; i += 9) {
		uint64_t off = 0;
		for (int k = 0; k < 8; k++)
			off = off << 8 | d[i + k];
		off &= INT64_MAX;
		int64_t size = d[i + 8] * 1000;
		if (d[i + 8] % 5 == 0) { /* not a segment: another prefix or a longer key */
			if (sb_buf_printf(&x,
			                  "<Contents><Key>up/kk/%020llu%s</Key><Size>1</Size>"
			                  "</Contents>",
			                  (unsigned long long)off, d[i] & 1 ? "/x" : "") != 0)
				abort();
			continue;
		}
		want[nw++] = (struct s3_seg){ (int64_t)off, size };
		if (sb_buf_printf(&x,
		                  "<Contents><Key>" FZ_PREFIX "%020llu</Key><ETag>&quot;e&quot;"
		                  "</ETag><Size>%lld</Size></Contents>",
		                  (unsigned long long)off, (long long)size) != 0)
			abort();
	}
	/* a token from the input's printable bytes, with the characters XML escapes */
	for (size_t i = 0; i < n && i < 40; i++)
		if (d[i] >= 0x21 && d[i] < 0x7f && sb_buf_append(&tok, &d[i], 1) != 0)
			abort();
	bool truncated = tok.len > 0;
	if (truncated) {
		if (sb_buf_puts(&x, "<IsTruncated>true</IsTruncated><NextContinuationToken>") != 0)
			abort();
		for (size_t i = 0; i < tok.len; i++) {
			const char *e = tok.data[i] == '&'   ? "&amp;"
			                : tok.data[i] == '<' ? "&lt;"
			                : tok.data[i] == '>' ? "&gt;"
			                : tok.data[i] == '"' ? "&quot;"
			                                     : NULL;
			if ((e ? sb_buf_puts(&x, e) : sb_buf_append(&x, &tok.data[i], 1)) != 0)
				abort();
		}
		if (sb_buf_puts(&x, "</NextContinuationToken>") != 0)
			abort();
	} else if (sb_buf_puts(&x, "<IsTruncated>false</IsTruncated>") != 0) {
		abort();
	}
	if (sb_buf_puts(&x, "</ListBucketResult>") != 0)
		abort();
	struct s3_seg *segs = NULL;
	size_t ns = 0;
	char *next = NULL;
	CHECK(s3_list_parse(x.data, x.len, FZ_PREFIX, &segs, &ns, &next) == 0);
	CHECK(ns == nw);
	for (size_t i = 0; i < ns; i++)
		CHECK(segs[i].off == want[i].off && segs[i].size == want[i].size);
	CHECK((next != NULL) == truncated);
	if (truncated)
		CHECK(strcmp(next, tok.data) == 0);
	free(next);
	free(segs);
	sb_buf_free(&x);
	sb_buf_free(&tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_dup(data, size);
	fz_any(s, size);
	free(s);
	fz_roundtrip(data, size);
	return 0;
}
