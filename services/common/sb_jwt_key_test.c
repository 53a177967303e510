/* sb_jwt_key_test.c: keys (generation, PEM, JWK, RFC 7638 thumbprints), JWKS documents and
 * base64url, checked against the RFC test vectors and plain OpenSSL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sb_err.h"
#include "sb_jwt.h"

/* RFC 7517 appendix A.1 / RFC 7638 section 3.1: an RSA public key and its thumbprint. */
#define RFC_N                                                                                      \
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"  \
	"BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_"                          \
	"RN5w6Cf0h4QyQ5v-65YGjQR0_"                                                                \
	"FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOp"                       \
	"bISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-"      \
	"kEgU8awapJzKnqDKgw"
#define RFC_THUMBPRINT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

static struct sb_jwt_key *t_es, *t_rs;

static int
t_setup(void **state)
{
	if (sb_jwt_key_generate(SB_JWT_ES256, 0, &t_es) != 0 ||
	    sb_jwt_key_generate(SB_JWT_RS256, 0, &t_rs) != 0)
		return -1;
	return 0;
}

static int
t_teardown(void **state)
{
	sb_jwt_key_free(t_es);
	sb_jwt_key_free(t_rs);
	return 0;
}

static json_t *
t_claims(void)
{
	int64_t now = (int64_t)time(NULL);
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", "i", "aud", "a", "sub", "u",
	                      "jti", "j", "iat", (json_int_t)now, "exp", (json_int_t)(now + 60));

	assert_non_null(c);
	return c;
}

/* t_verifies tells whether a token signed by signer verifies against set. */
static int
t_verify_with(const struct sb_jwt_key *signer, struct sb_jwt_keyset *set)
{
	struct sb_jwt_policy pol = { .issuer = "i", .audience = "a", .typ = "at+jwt" };
	struct sb_jwt_verifier *v;
	struct sb_jwt_principal p;
	json_t *c = t_claims();
	char *tok;
	int r;

	assert_int_equal(sb_jwt_sign(signer, c, "at+jwt", &tok), 0);
	json_decref(c);
	assert_int_equal(sb_jwt_verifier_new(&pol, set, &v), 0);
	r = sb_jwt_verify(v, tok, strlen(tok), &p);
	sb_jwt_verifier_free(v);
	free(tok);
	return r;
}

/* t_set returns a new set holding the public halves of a and b (b may be NULL). */
static struct sb_jwt_keyset *
t_set(const struct sb_jwt_key *a, const struct sb_jwt_key *b)
{
	struct sb_jwt_keyset *set;

	assert_int_equal(sb_jwt_keyset_new(&set), 0);
	assert_int_equal(sb_jwt_keyset_add(set, a), 0);
	if (b != NULL)
		assert_int_equal(sb_jwt_keyset_add(set, b), 0);
	return set;
}

static void
test_b64url_vectors(void **state)
{
	/* RFC 4648 section 10, without padding, plus bytes that use - and _ */
	static const struct {
		const char *in, *out;
	} v[] = {
		{ "", "" },
		{ "f", "Zg" },
		{ "fo", "Zm8" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg" },
		{ "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" },
		{ "\xfb\xff\xbf", "-_-_" },
	};
	unsigned char buf[16];
	size_t n;
	char *s;

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		assert_int_equal(sb_jwt_b64url_encode(v[i].in, strlen(v[i].in), &s), 0);
		assert_string_equal(s, v[i].out);
		free(s);
		assert_int_equal(
		    sb_jwt_b64url_decode(v[i].out, strlen(v[i].out), buf, sizeof buf, &n), 0);
		assert_int_equal(n, strlen(v[i].in));
		assert_memory_equal(buf, v[i].in, n);
	}
	/* padding, the standard alphabet, a lone character, non-zero spare bits, whitespace */
	static const char *bad[] = {
		"Zg==", "Zm8=", "+/+/", "Z", "Zh", "Zm9", "Zm\n8", "Zm 8", "Z*"
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(sb_jwt_b64url_decode(bad[i], strlen(bad[i]), buf, sizeof buf, &n),
		                 SB_EINVAL);
	assert_int_equal(sb_jwt_b64url_decode("Zm9vYmFy", 8, buf, 5, &n), SB_ERANGE);
	assert_int_equal(sb_jwt_b64url_decode("AAAA", 4, buf, sizeof buf, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "\0\0\0", 3);
}

static void
test_thumbprint_rfc7638(void **state)
{
	json_t *jwk = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "n", RFC_N, "e", "AQAB",
	                        "alg", "RS256", "kid", "2011-04-29");
	struct sb_jwt_key *k;
	char tp[44];

	assert_int_equal(sb_jwt_key_from_jwk(jwk, &k), 0);
	assert_string_equal(sb_jwt_key_kid(k), "2011-04-29"); /* a JWKS kid is kept */
	assert_int_equal(sb_jwt_key_alg(k), SB_JWT_RS256);
	assert_false(sb_jwt_key_has_private(k));
	assert_int_equal(sb_jwt_key_thumbprint(k, tp, sizeof tp), 0);
	assert_string_equal(tp, RFC_THUMBPRINT);
	assert_int_equal(sb_jwt_key_thumbprint(k, tp, 43), SB_ERANGE);
	sb_jwt_key_free(k);
	json_decref(jwk);

	/* A generated key is named by its own thumbprint. */
	assert_int_equal(sb_jwt_key_thumbprint(t_es, tp, sizeof tp), 0);
	assert_string_equal(sb_jwt_key_kid(t_es), tp);
	assert_int_equal(strlen(tp), 43);
	assert_int_equal(sb_jwt_key_thumbprint(t_rs, tp, sizeof tp), 0);
	assert_string_equal(sb_jwt_key_kid(t_rs), tp);
	assert_string_not_equal(sb_jwt_key_kid(t_es), sb_jwt_key_kid(t_rs));
}

static void
test_public_jwk_members(void **state)
{
	json_t *j;

	assert_int_equal(sb_jwt_key_public_jwk(t_es, &j), 0);
	assert_string_equal(json_string_value(json_object_get(j, "kty")), "EC");
	assert_string_equal(json_string_value(json_object_get(j, "crv")), "P-256");
	assert_string_equal(json_string_value(json_object_get(j, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(j, "use")), "sig");
	assert_string_equal(json_string_value(json_object_get(j, "kid")), sb_jwt_key_kid(t_es));
	assert_int_equal(json_string_length(json_object_get(j, "x")), 43); /* 32 bytes, padded */
	assert_int_equal(json_string_length(json_object_get(j, "y")), 43);
	assert_null(json_object_get(j, "d"));
	assert_int_equal(json_object_size(j), 7);
	json_decref(j);

	assert_int_equal(sb_jwt_key_public_jwk(t_rs, &j), 0);
	assert_string_equal(json_string_value(json_object_get(j, "kty")), "RSA");
	assert_string_equal(json_string_value(json_object_get(j, "alg")), "RS256");
	assert_string_equal(json_string_value(json_object_get(j, "e")), "AQAB");
	assert_int_equal(json_string_length(json_object_get(j, "n")), 342); /* 256 bytes */
	assert_null(json_object_get(j, "d"));
	assert_null(json_object_get(j, "p"));
	assert_int_equal(json_object_size(j), 6);
	json_decref(j);
}

static void
test_pem_roundtrip(void **state)
{
	const struct sb_jwt_key *keys[] = { t_es, t_rs };

	for (size_t i = 0; i < 2; i++) {
		struct sb_jwt_key *back, *pub;
		struct sb_jwt_keyset *orig = t_set(keys[i], NULL), *set;
		char *pem, *pubpem;

		assert_int_equal(sb_jwt_key_private_pem(keys[i], &pem), 0);
		assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
		assert_int_equal(sb_jwt_key_from_pem(pem, strlen(pem), &back), 0);
		assert_string_equal(sb_jwt_key_kid(back), sb_jwt_key_kid(keys[i]));
		assert_int_equal(sb_jwt_key_alg(back), sb_jwt_key_alg(keys[i]));
		assert_true(sb_jwt_key_has_private(back));
		/* the restored key signs tokens the original's public key accepts, and back */
		assert_int_equal(t_verify_with(back, orig), 0);
		set = t_set(back, NULL);
		assert_int_equal(t_verify_with(keys[i], set), 0);
		sb_jwt_keyset_release(set);
		/* a truncated PEM is refused */
		assert_int_equal(sb_jwt_key_from_pem(pem, strlen(pem) / 2, &pub), SB_EINVAL);
		sb_jwt_secret_free(pem);

		/* the public PEM gives a key that verifies but cannot sign */
		assert_int_equal(sb_jwt_key_public_pem(keys[i], &pubpem), 0);
		assert_null(strstr(pubpem, "PRIVATE"));
		assert_int_equal(sb_jwt_key_from_pem(pubpem, strlen(pubpem), &pub), 0);
		assert_false(sb_jwt_key_has_private(pub));
		assert_string_equal(sb_jwt_key_kid(pub), sb_jwt_key_kid(keys[i]));
		assert_int_equal(sb_jwt_key_private_pem(pub, &pem), SB_EINVAL);
		free(pubpem);
		sb_jwt_key_free(pub);
		sb_jwt_key_free(back);
		sb_jwt_keyset_release(orig);
	}
}

/* t_pem writes pk as PEM, encrypted with "pw" when enc. */
static char *
t_pem(EVP_PKEY *pk, int enc)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	assert_int_equal(PEM_write_bio_PrivateKey(bio, pk, enc ? EVP_aes_128_cbc() : NULL,
	                                          enc ? (unsigned char *)"pw" : NULL, enc ? 2 : 0,
	                                          NULL, NULL),
	                 1);
	n = BIO_get_mem_data(bio, &data);
	s = strndup(data, (size_t)n);
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return s;
}

static void
test_pem_refused(void **state)
{
	struct sb_jwt_key *k = NULL;
	char *pem;

	assert_int_equal(sb_jwt_key_from_pem("", 0, &k), SB_EINVAL);
	assert_int_equal(sb_jwt_key_from_pem("hello", 5, &k), SB_EINVAL);
	assert_int_equal(sb_jwt_key_generate(SB_JWT_RS256, 1024, &k), SB_EINVAL);
	assert_int_equal(sb_jwt_key_generate(99, 0, &k), SB_EINVAL);
	/* an encrypted key: refused, without prompting for a passphrase */
	pem = t_pem(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), 1);
	assert_non_null(strstr(pem, "ENCRYPTED"));
	assert_int_equal(sb_jwt_key_from_pem(pem, strlen(pem), &k), SB_EINVAL);
	free(pem);
	/* keys of other kinds or sizes */
	pem = t_pem(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), 0);
	assert_int_equal(sb_jwt_key_from_pem(pem, strlen(pem), &k), SB_EINVAL);
	free(pem);
	pem = t_pem(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024), 0);
	assert_int_equal(sb_jwt_key_from_pem(pem, strlen(pem), &k), SB_EINVAL);
	free(pem);
	pem = t_pem(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), 0);
	assert_int_equal(sb_jwt_key_from_pem(pem, strlen(pem), &k), SB_EINVAL);
	free(pem);
	assert_null(k);
}

static void
test_jwks_roundtrip(void **state)
{
	struct sb_jwt_keyset *set = t_set(t_es, t_rs), *back;
	char *doc, *doc2;
	size_t skipped = 99;

	assert_int_equal(sb_jwt_keyset_add(set, t_es), SB_EEXIST);
	assert_int_equal(sb_jwt_keyset_to_jwks(set, &doc), 0);
	assert_null(strstr(doc, "\"d\"")); /* no private member ever leaves */
	assert_int_equal(sb_jwt_keyset_parse_jwks(doc, strlen(doc), &back, &skipped), 0);
	assert_int_equal(skipped, 0);
	assert_int_equal(sb_jwt_keyset_count(back), 2);
	assert_int_equal(sb_jwt_keyset_to_jwks(back, &doc2), 0);
	assert_string_equal(doc, doc2);
	/* tokens of both keys verify with the keys read back from the document */
	assert_int_equal(t_verify_with(t_es, back), 0);
	assert_int_equal(t_verify_with(t_rs, back), 0);
	free(doc);
	free(doc2);
	sb_jwt_keyset_release(back);
	sb_jwt_keyset_release(set);
}

/* t_jwk returns the public JWK of key with member name replaced by v (removed if v is NULL). */
static json_t *
t_jwk(const struct sb_jwt_key *key, const char *name, json_t *v)
{
	json_t *j;

	assert_int_equal(sb_jwt_key_public_jwk(key, &j), 0);
	if (name != NULL && v == NULL)
		json_object_del(j, name);
	else if (name != NULL)
		json_object_set_new(j, name, v);
	return j;
}

static void
test_jwks_skips_unusable_keys(void **state)
{
	json_t *keys = json_array(), *doc, *j;
	struct sb_jwt_keyset *set;
	size_t skipped = 0;
	char *s, y[44];

	/* an EC point moved off the curve: y changed in its first character */
	j = t_jwk(t_es, NULL, NULL);
	snprintf(y, sizeof y, "%s", json_string_value(json_object_get(j, "y")));
	y[0] = y[0] == 'A' ? 'B' : 'A';
	json_object_set_new(j, "y", json_string(y));
	json_array_append_new(keys, j);
	json_array_append_new(keys, t_jwk(t_es, "crv", json_string("P-384")));
	json_array_append_new(keys, t_jwk(t_es, "use", json_string("enc")));
	json_array_append_new(keys, t_jwk(t_es, "alg", json_string("RS256")));
	json_array_append_new(keys, t_jwk(t_es, "alg", json_string("HS256")));
	json_array_append_new(keys, t_jwk(t_es, "x", json_string("AAAA"))); /* short coordinate */
	json_array_append_new(keys, t_jwk(t_es, "x", json_string("A==")));  /* bad base64url */
	json_array_append_new(keys, t_jwk(t_es, "kid", NULL));
	json_array_append_new(keys, t_jwk(t_es, "key_ops", json_pack("[s]", "encrypt")));
	json_array_append_new(keys, t_jwk(t_rs, "n", json_string("AQAB"))); /* tiny modulus */
	json_array_append_new(keys, t_jwk(t_rs, "e", NULL));
	json_array_append_new(keys, t_jwk(t_rs, "e", json_string("AQ"))); /* e = 1 */
	json_array_append_new(
	    keys, json_pack("{s:s, s:s, s:s}", "kty", "oct", "k", "c2VjcmV0", "kid", "hmac"));
	json_array_append_new(keys, json_integer(1));
	/* the two usable keys, and one of them again under the same kid */
	json_array_append_new(keys, t_jwk(t_es, NULL, NULL));
	json_array_append_new(keys, t_jwk(t_rs, NULL, NULL));
	json_array_append_new(keys, t_jwk(t_rs, NULL, NULL));
	doc = json_pack("{s:o}", "keys", keys);
	s = json_dumps(doc, 0);
	json_decref(doc);
	assert_int_equal(sb_jwt_keyset_parse_jwks(s, strlen(s), &set, &skipped), 0);
	free(s);
	assert_int_equal(sb_jwt_keyset_count(set), 2);
	assert_int_equal(skipped, 15);
	assert_int_equal(t_verify_with(t_es, set), 0);
	assert_int_equal(t_verify_with(t_rs, set), 0);
	sb_jwt_keyset_release(set);
}

static void
test_jwks_refused(void **state)
{
	static const char *docs[] = { "",
		                      "[]",
		                      "{}",
		                      "{\"keys\":{}}",
		                      "{\"keys\":\"x\"}",
		                      "not json",
		                      "{\"keys\":[],\"keys\":[]}" };
	struct sb_jwt_keyset *set = NULL;

	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
		assert_int_equal(sb_jwt_keyset_parse_jwks(docs[i], strlen(docs[i]), &set, NULL),
		                 SB_EINVAL);
	assert_null(set);
	assert_int_equal(sb_jwt_keyset_parse_jwks("{\"keys\":[]}", 11, &set, NULL), 0);
	assert_int_equal(sb_jwt_keyset_count(set), 0);
	/* an empty set knows no kid */
	assert_int_equal(t_verify_with(t_es, set), SB_JWT_UNKNOWN_KID);
	sb_jwt_keyset_release(set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_thumbprint_rfc7638),
		cmocka_unit_test(test_public_jwk_members),
		cmocka_unit_test(test_pem_roundtrip),
		cmocka_unit_test(test_pem_refused),
		cmocka_unit_test(test_jwks_roundtrip),
		cmocka_unit_test(test_jwks_skips_unusable_keys),
		cmocka_unit_test(test_jwks_refused),
	};
	return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
