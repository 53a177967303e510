/* Unit tests of tus_parse.c (the tus headers, base64, file names) and of the filesystem
 * storage backend (store_fs.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "sb_err.h"

static void
test_size(void **state)
{
	(void)state;
	int64_t v = -1;
	assert_int_equal(files_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(files_parse_size("2147483648", &v), 0);
	assert_int_equal(v, 2147483648LL);
	assert_int_equal(files_parse_size("9223372036854775807", &v), 0);
	assert_int_equal(v, INT64_MAX);
	const char *bad[] = { "",
		              "-1",
		              "+1",
		              " 1",
		              "1 ",
		              "1e3",
		              "0x10",
		              "9223372036854775808",
		              "12345678901234567890",
		              NULL };
	for (size_t i = 0; bad[i] != NULL; i++)
		assert_int_equal(files_parse_size(bad[i], &v), SB_EINVAL);
	assert_int_equal(files_parse_size(NULL, &v), SB_EINVAL);
}

static void
test_meta(void **state)
{
	(void)state;
	struct files_meta m;
	/* "world.pdf", "application/pdf", and a key without a value */
	assert_int_equal(files_meta_parse("filename d29ybGQucGRm,filetype YXBwbGljYXRpb24vcGRm,"
	                                  "is_confidential",
	                                  &m),
	                 0);
	assert_string_equal(m.filename, "world.pdf");
	assert_string_equal(m.type, "application/pdf");
	assert_int_equal(m.npairs, 3);
	assert_int_equal(files_meta_parse("", &m), 0);
	assert_int_equal(files_meta_parse(NULL, &m), 0);
	/* "../../etc/passwd" keeps only its last component */
	assert_int_equal(files_meta_parse("filename Li4vLi4vZXRjL3Bhc3N3ZA==", &m), 0);
	assert_string_equal(m.filename, "passwd");
	const char *bad[] = {
		"filename !!!",       /* not base64 */
		"a 1,a 2",            /* a key twice */
		",a",                 /* empty key */
		"a b c",              /* three fields */
		"type dGV4dA==",      /* "text": not a media type */
		"filename aGVsbG8=,", /* trailing comma, empty key */
		"k\xc3\xa9 aGVsbG8=", /* non-ASCII key */
		NULL,
	};
	for (size_t i = 0; bad[i] != NULL; i++)
		assert_int_equal(files_meta_parse(bad[i], &m), SB_EINVAL);
}

static void
test_checksum(void **state)
{
	(void)state;
	enum files_sum_alg alg;
	uint8_t d[64], got[64];
	size_t n;
	/* sha1("hello") */
	assert_int_equal(files_checksum_parse("sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00=", &alg, d, &n), 0);
	assert_int_equal(alg, FILES_SUM_SHA1);
	assert_int_equal(n, 20);
	assert_int_equal(files_checksum_compute(alg, "hello", 5, got), 20);
	assert_memory_equal(d, got, 20);
	assert_int_equal(files_checksum_parse("md5 XUFAKrxLKna5cZ2REBfFkg==", &alg, d, &n), 0);
	assert_int_equal(files_checksum_compute(alg, "hello", 5, got), 16);
	assert_memory_equal(d, got, 16);
	assert_int_equal(files_checksum_parse("crc32 AAAAAA==", &alg, d, &n), SB_ENOTFOUND);
	/* a sha1-long digest named sha256, no digest, no separator */
	assert_int_equal(files_checksum_parse("sha256 qvTGHdzF6KLavt4PO0gs2a6pQ00=", &alg, d, &n),
	                 SB_EINVAL);
	assert_int_equal(files_checksum_parse("sha1 ", &alg, d, &n), SB_EINVAL);
	assert_int_equal(files_checksum_parse("sha1", &alg, d, &n), SB_EINVAL);
}

static void
test_sanitize(void **state)
{
	(void)state;
	char out[FILES_NAME_MAX];
	const struct {
		const char *in, *want;
	} cases[] = {
		{ "report.pdf", "report.pdf" },
		{ "../../etc/passwd", "passwd" },
		{ "C:\\Users\\x\\evil.exe", "evil.exe" },
		{ "a\001b\177c", "a_b_c" },
		{ "say \"hi\"; rm -rf", "say _hi__ rm -rf" },
		{ "...hidden", "hidden" },
		{ "caf\xc3\xa9.txt", "caf\xc3\xa9.txt" },
		{ "bad\xc3\x28utf8", "bad_(utf8" },
		{ "..", "file" },
		{ "", "file" },
		{ "name. . ", "name" },
		{ "100%.txt", "100_.txt" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		files_sanitize_name(cases[i].in, strlen(cases[i].in), out);
		assert_string_equal(out, cases[i].want);
	}
	char longname[1000];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	files_sanitize_name(longname, strlen(longname), out);
	assert_int_equal(strlen(out), FILES_NAME_MAX - 1);
}

static void
test_type_allowed(void **state)
{
	(void)state;
	const char *list = "image/*, text/plain,application/pdf";
	assert_true(files_type_allowed(list, "image/png"));
	assert_true(files_type_allowed(list, "IMAGE/JPEG"));
	assert_true(files_type_allowed(list, "text/plain; charset=utf-8"));
	assert_true(files_type_allowed(list, "application/pdf"));
	assert_false(files_type_allowed(list, "text/html"));
	assert_false(files_type_allowed(list, "application/pdfx"));
	assert_false(files_type_allowed(list, "image"));
	assert_false(files_type_allowed(list, "imagex/png"));
	assert_true(files_type_allowed("*/*", "application/x-msdownload"));
	assert_false(files_type_allowed("", "text/plain"));
}

static void
test_store_fs(void **state)
{
	(void)state;
	char dir[] = "/tmp/files-store-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char root[300];
	snprintf(root, sizeof(root), "%s/a/b", dir); /* created on open */
	struct files_store *s = NULL;
	assert_int_equal(files_store_fs_open(root, &s), 0);
	char key[64], buf[16];
	size_t got;
	int64_t size;
	files_key("0b7a9d3e-2a4c-4f5e-9a1b-2c3d4e5f6a7b", key);
	assert_int_equal(s->ops->size(s, key, &size), SB_ENOTFOUND);
	assert_int_equal(s->ops->write(s, key, 0, "hello", 5), 0);
	assert_int_equal(s->ops->write(s, key, 5, " world", 6), 0);
	assert_int_equal(s->ops->write(s, key, 11, "!!!", 3), 0); /* past the end, then cut */
	assert_int_equal(s->ops->truncate(s, key, 11), 0);
	assert_int_equal(s->ops->size(s, key, &size), 0);
	assert_int_equal(size, 11);
	assert_int_equal(s->ops->read(s, key, 6, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(s->ops->write(s, "../escape", 0, "x", 1), SB_EINVAL);
	assert_int_equal(s->ops->remove(s, key), 0);
	assert_int_equal(s->ops->remove(s, key), 0); /* already gone: fine */
	assert_int_equal(s->ops->read(s, key, 0, buf, sizeof(buf), &got), SB_ENOTFOUND);
	files_store_close(s);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size),         cmocka_unit_test(test_meta),
		cmocka_unit_test(test_checksum),     cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_type_allowed), cmocka_unit_test(test_store_fs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
