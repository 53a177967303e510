/* Tests of the S3 backend's ListObjectsV2 reader (s3_list_parse) and segment key names: which
 * keys are segments, sizes, continuation tokens with entities, malformed answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "s3.h"
#include "sb_err.h"

#define SEG(k, n)                                                                                  \
	"<Contents><Key>" k "</Key><LastModified>2026-12-06T00:00:00.000Z</LastModified>"          \
	"<ETag>&quot;x&quot;</ETag><Size>" #n "</Size></Contents>"

static void
test_page(void **state)
{
	(void)state;
	const char *xml =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"x\"><Name>b</Name>"
	    "<Prefix>up/a/</Prefix><KeyCount>5</KeyCount><MaxKeys>5</MaxKeys>"
	    "<IsTruncated>true</IsTruncated>" SEG("up/a/00000000000000000000", 100)
	        SEG("up/a/00000000000000000100", 50) SEG("up/a/0000000000000000010", 7)
	            SEG("up/a/00000000000000000150/x", 7)
	                SEG("up/a/0000000000000000015x",
	                    7) "<NextContinuationToken>1&amp;2&lt;3</NextContinuationToken>"
	                       "</ListBucketResult>";
	struct s3_seg *segs = NULL;
	size_t n = 0;
	char *next = NULL;
	assert_int_equal(s3_list_parse(xml, strlen(xml), "up/a/", &segs, &n, &next), 0);
	assert_int_equal(n, 2);
	assert_int_equal(segs[0].off, 0);
	assert_int_equal(segs[0].size, 100);
	assert_int_equal(segs[1].off, 100);
	assert_int_equal(segs[1].size, 50);
	assert_non_null(next);
	assert_string_equal(next, "1&2<3");
	free(next);
	/* a second page appends */
	const char *xml2 = "<ListBucketResult><IsTruncated>false</IsTruncated>" SEG(
	    "up/a/00000000000000000150", 0) "</ListBucketResult>";
	assert_int_equal(s3_list_parse(xml2, strlen(xml2), "up/a/", &segs, &n, &next), 0);
	assert_int_equal(n, 3);
	assert_int_equal(segs[2].off, 150);
	assert_int_equal(segs[2].size, 0);
	assert_null(next);
	free(segs);
}

static void
test_malformed(void **state)
{
	(void)state;
	static const char *bad[] = {
		"<Error><Code>AccessDenied</Code></Error>",
		"<ListBucketResult><Contents><Key>up/a/00000000000000000000</Key>",
		"<ListBucketResult>" SEG("up/a/00000000000000000000", -1) "</ListBucketResult>",
		"<ListBucketResult>" SEG("up/a/00000000000000000000", 12x) "</ListBucketResult>",
		"<ListBucketResult><Contents><Key>up/a/00000000000000000000</Key></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct s3_seg *segs = NULL;
		size_t n = 0;
		char *next = NULL;
		if (s3_list_parse(bad[i], strlen(bad[i]), "up/a/", &segs, &n, &next) != SB_EPROTO)
			fail_msg("case %zu accepted", i);
		assert_null(next);
		free(segs);
	}
}

static void
test_seg_key(void **state)
{
	(void)state;
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(s3_seg_key(&b, "parts/x/3", 262144), 0);
	assert_string_equal(b.data, "parts/x/3/00000000000000262144");
	sb_buf_reset(&b);
	assert_int_equal(s3_seg_key(&b, "up/y", INT64_MAX), 0);
	assert_string_equal(b.data, "up/y/09223372036854775807");
	sb_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_seg_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
