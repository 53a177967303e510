/* auth_crypto_test.c: client secret hashing, opaque tokens and private-key sealing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "sb_err.h"
#include "sb_util_hex.h"

static void
test_secret_hash_verifies_only_the_secret(void **state)
{
	char h1[256], h2[256];
	(void)state;
	assert_int_equal(auth_secret_hash("s3cret", 100000, h1, sizeof(h1)), 0);
	assert_true(strncmp(h1, "pbkdf2-sha256$100000$", 21) == 0);
	assert_null(strstr(h1, "s3cret"));
	assert_int_equal(auth_secret_verify("s3cret", h1), 1);
	assert_int_equal(auth_secret_verify("s3cres", h1), 0);
	assert_int_equal(auth_secret_verify("", h1), 0);
	/* a fresh salt each time: same secret, different hashes, both verify */
	assert_int_equal(auth_secret_hash("s3cret", 100000, h2, sizeof(h2)), 0);
	assert_string_not_equal(h1, h2);
	assert_int_equal(auth_secret_verify("s3cret", h2), 1);
}

static void
test_secret_verify_rejects_malformed(void **state)
{
	(void)state;
	assert_int_equal(auth_secret_verify("x", ""), 0);
	assert_int_equal(auth_secret_verify("x", "plain:x"), 0);
	assert_int_equal(auth_secret_verify("x", "pbkdf2-sha256$"), 0);
	assert_int_equal(auth_secret_verify("x", "pbkdf2-sha256$abc$AAAA$AAAA"), 0);
	assert_int_equal(auth_secret_verify("x", "pbkdf2-sha256$0$AAAAAAAAAAA$AAAA"), 0);
	assert_int_equal(auth_secret_verify("x", "pbkdf2-sha256$1000$!!!$AAAA"), 0);
	assert_int_equal(auth_secret_verify(NULL, "pbkdf2-sha256$1000$AAAA$AAAA"), 0);
	char small[16];
	assert_int_equal(auth_secret_hash("x", 100000, small, sizeof(small)), SB_EINVAL);
}

static void
test_random_tokens_differ(void **state)
{
	char a[128], b[128], tiny[8];
	(void)state;
	assert_int_equal(auth_random_token("sbr_", 32, a, sizeof(a)), 0);
	assert_int_equal(auth_random_token("sbr_", 32, b, sizeof(b)), 0);
	assert_int_equal(strlen(a), 4 + 43);
	assert_true(strncmp(a, "sbr_", 4) == 0);
	assert_string_not_equal(a, b);
	assert_int_equal(auth_random_token("sbr_", 32, tiny, sizeof(tiny)), SB_ERANGE);
}

static void
test_sha256_hex(void **state)
{
	char h[65];
	(void)state;
	assert_int_equal(auth_sha256_hex("abc", h), 0);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_seal_roundtrip_and_tamper(void **state)
{
	unsigned char kek[32], other[32];
	const char *pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";
	char *sealed = NULL, *plain = NULL;
	(void)state;
	assert_int_equal(sb_hex_decode("000102030405060708090a0b0c0d0e0f"
	                               "101112131415161718191a1b1c1d1e1f",
	                               32, 0, kek),
	                 0);
	memcpy(other, kek, 32);
	other[0] ^= 1;
	assert_int_equal(auth_seal(kek, "kid-1", pem, strlen(pem), &sealed), 0);
	assert_true(strncmp(sealed, "aes256gcm:", 10) == 0);
	assert_null(strstr(sealed, "PRIVATE"));
	assert_int_equal(auth_open(kek, "kid-1", sealed, &plain), 0);
	assert_string_equal(plain, pem);
	sb_jwt_secret_free(plain);
	plain = NULL;
	/* wrong key, wrong kid (AAD) and a flipped ciphertext character all fail authentication */
	assert_int_equal(auth_open(other, "kid-1", sealed, &plain), SB_EINVAL);
	assert_int_equal(auth_open(kek, "kid-2", sealed, &plain), SB_EINVAL);
	size_t n = strlen(sealed);
	sealed[n - 5] = sealed[n - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(auth_open(kek, "kid-1", sealed, &plain), SB_EINVAL);
	assert_int_equal(auth_open(kek, "kid-1", "aes256gcm:", &plain), SB_EINVAL);
	assert_int_equal(auth_open(kek, "kid-1", "pem:x", &plain), SB_EINVAL);
	assert_null(plain);
	free(sealed);
}

/* SB_AUTH_KEY_ENCRYPTION_KEY: 64 hex digits of either case, or empty for none. */
static void
test_config_kek(void **state)
{
	struct auth_cfg cfg = { 0 };
	unsigned char kek[32];
	(void)state;
	cfg.key_encryption_key = "000102030405060708090a0b0c0d0e0f"
	                         "101112131415161718191A1B1C1D1E1F";
	assert_int_equal(auth_config_kek(&cfg, kek), 1);
	for (int i = 0; i < 32; i++)
		assert_int_equal(kek[i], i);
	cfg.key_encryption_key = "";
	assert_int_equal(auth_config_kek(&cfg, kek), 0);
	cfg.key_encryption_key = "000102030405060708090a0b0c0d0e0f"
	                         "101112131415161718191a1b1c1d1e1";
	assert_int_equal(auth_config_kek(&cfg, kek), SB_EINVAL);
	cfg.key_encryption_key = "000102030405060708090a0b0c0d0e0f"
	                         "101112131415161718191a1b1c1d1e1g";
	assert_int_equal(auth_config_kek(&cfg, kek), SB_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_hash_verifies_only_the_secret),
		cmocka_unit_test(test_secret_verify_rejects_malformed),
		cmocka_unit_test(test_random_tokens_differ),
		cmocka_unit_test(test_sha256_hex),
		cmocka_unit_test(test_seal_roundtrip_and_tamper),
		cmocka_unit_test(test_config_kek),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
