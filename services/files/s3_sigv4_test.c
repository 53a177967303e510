/* Tests of the SigV4 signer against the examples AWS publishes for S3 ("Signature
 * Calculations for the Authorization Header: Transferring Payload in a Single Chunk"): GET
 * object with a Range, PUT object, and GET bucket with a query, each with its documented
 * signature; and the URI encoding SigV4 asks for. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "s3.h"
#include "sb_err.h"

#define AK        "AKIAIOSFODNN7EXAMPLE"
#define SK        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void
test_get_object(void **state)
{
	(void)state;
	const struct s3_hdr h[] = { { "range", "bytes=0-9" } };
	struct s3_sign_in in = { .method = "GET",
		                 .host = "examplebucket.s3.amazonaws.com",
		                 .uri = "/test.txt",
		                 .query = "",
		                 .hdrs = h,
		                 .nhdrs = 1,
		                 .amz_date = "20130524T000000Z",
		                 .payload_sha256 = EMPTY_SHA,
		                 .region = "us-east-1",
		                 .service = "s3",
		                 .access_key = AK,
		                 .secret_key = SK };
	struct sb_buf out = SB_BUF_INIT, canon = SB_BUF_INIT;
	assert_int_equal(s3_sign(&in, &out, &canon), 0);
	assert_string_equal(canon.data, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
	                                "range:bytes=0-9\nx-amz-content-sha256:" EMPTY_SHA "\n"
	                                "x-amz-date:20130524T000000Z\n\n"
	                                "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA);
	assert_string_equal(
	    out.data, "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
	              "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
	              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	/* one byte of the secret, the date or a header changes the signature */
	sb_buf_reset(&out);
	in.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ";
	assert_int_equal(s3_sign(&in, &out, NULL), 0);
	assert_null(strstr(out.data, "f0e8bdb87c96"));
	sb_buf_free(&out);
	sb_buf_free(&canon);
}

static void
test_put_object(void **state)
{
	(void)state;
	const char *body = "Welcome to Amazon S3.";
	char sha[65];
	s3_sha256_hex(body, strlen(body), sha);
	assert_string_equal(sha,
	                    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	struct sb_buf uri = SB_BUF_INIT, out = SB_BUF_INIT;
	assert_int_equal(s3_uri_encode(&uri, "/test$file.text", true), 0);
	assert_string_equal(uri.data, "/test%24file.text");
	/* given out of order: the signer sorts them */
	const struct s3_hdr h[] = { { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
		                    { "date", "Fri, 24 May 2013 00:00:00 GMT" } };
	struct s3_sign_in in = { .method = "PUT",
		                 .host = "examplebucket.s3.amazonaws.com",
		                 .uri = uri.data,
		                 .query = "",
		                 .hdrs = h,
		                 .nhdrs = 2,
		                 .amz_date = "20130524T000000Z",
		                 .payload_sha256 = sha,
		                 .region = "us-east-1",
		                 .service = "s3",
		                 .access_key = AK,
		                 .secret_key = SK };
	assert_int_equal(s3_sign(&in, &out, NULL), 0);
	assert_string_equal(
	    out.data, "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
	              "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
	              "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	sb_buf_free(&uri);
	sb_buf_free(&out);
}

static void
test_list_objects(void **state)
{
	(void)state;
	struct s3_sign_in in = { .method = "GET",
		                 .host = "examplebucket.s3.amazonaws.com",
		                 .uri = "/",
		                 .query = "max-keys=2&prefix=J",
		                 .amz_date = "20130524T000000Z",
		                 .payload_sha256 = EMPTY_SHA,
		                 .region = "us-east-1",
		                 .service = "s3",
		                 .access_key = AK,
		                 .secret_key = SK };
	struct sb_buf out = SB_BUF_INIT;
	assert_int_equal(s3_sign(&in, &out, NULL), 0);
	assert_non_null(
	    strstr(out.data,
	           "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
	sb_buf_free(&out);
}

static void
test_uri_encode_and_refusals(void **state)
{
	(void)state;
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(s3_uri_encode(&b, "a b/c~d_e.f-g+h=&\xc3\xa9", false), 0);
	assert_string_equal(b.data, "a%20b%2Fc~d_e.f-g%2Bh%3D%26%C3%A9");
	const struct s3_hdr up[] = { { "Range", "bytes=0-1" } };
	struct s3_sign_in in = { .method = "GET",
		                 .host = "h",
		                 .uri = "/",
		                 .query = "",
		                 .hdrs = up,
		                 .nhdrs = 1,
		                 .amz_date = "20130524T000000Z",
		                 .payload_sha256 = EMPTY_SHA,
		                 .region = "us-east-1",
		                 .service = "s3",
		                 .access_key = AK,
		                 .secret_key = SK };
	sb_buf_reset(&b);
	assert_int_equal(s3_sign(&in, &b, NULL), SB_EINVAL);
	char d[17];
	s3_amz_date(1369353600, d); /* 2013-05-24T00:00:00Z */
	assert_string_equal(d, "20130524T000000Z");
	sb_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_object),
		cmocka_unit_test(test_put_object),
		cmocka_unit_test(test_list_objects),
		cmocka_unit_test(test_uri_encode_and_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
