/* sb_jwt_test.c: signing and verification of access tokens, and the attacks a verifier must
 * refuse. Every forged token is built byte by byte here, the way an attacker would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "sb_err.h"
#include "sb_jwt.h"

#define T_ISS "https://auth.switchboard.test"
#define T_AUD "switchboard"
#define T_NOW INT64_C(1700000000)

static struct sb_jwt_key *t_es, *t_rs;
static struct sb_jwt_keyset *t_set;
static struct sb_jwt_verifier *t_v;
static struct sb_jwt_principal t_p;
static int64_t t_clock_now = T_NOW;
static const char *t_revoked_jti; /* the jti the revocation hook reports as revoked */
static int t_hook_fails;          /* the revocation hook cannot answer */
static char t_hook_seen[SB_JWT_ID_MAX];

static int64_t
t_clock(void *arg)
{
	return *(int64_t *)arg;
}

static int
t_is_revoked(const char *jti, void *arg)
{
	snprintf(t_hook_seen, sizeof t_hook_seen, "%s", jti);
	if (t_hook_fails)
		return -1;
	return t_revoked_jti != NULL && strcmp(jti, t_revoked_jti) == 0;
}

static int
t_setup(void **state)
{
	struct sb_jwt_policy pol = {
		.issuer = T_ISS,
		.audience = T_AUD,
		.typ = "at+jwt",
		.leeway_s = 30,
		.now = t_clock,
		.now_arg = &t_clock_now,
		.is_revoked = t_is_revoked,
	};

	if (sb_jwt_key_generate(SB_JWT_ES256, 0, &t_es) != 0 ||
	    sb_jwt_key_generate(SB_JWT_RS256, 2048, &t_rs) != 0 || sb_jwt_keyset_new(&t_set) != 0 ||
	    sb_jwt_keyset_add(t_set, t_es) != 0 || sb_jwt_keyset_add(t_set, t_rs) != 0 ||
	    sb_jwt_verifier_new(&pol, t_set, &t_v) != 0)
		return -1;
	return 0;
}

static int
t_teardown(void **state)
{
	sb_jwt_verifier_free(t_v);
	sb_jwt_keyset_release(t_set);
	sb_jwt_key_free(t_es);
	sb_jwt_key_free(t_rs);
	return 0;
}

/* A test resets the clock and the hook before it starts. */
static int
t_reset(void **state)
{
	t_clock_now = T_NOW;
	t_revoked_jti = NULL;
	t_hook_fails = 0;
	t_hook_seen[0] = '\0';
	return 0;
}

/* t_claims returns the claims of a typical access token, valid at T_NOW. */
static json_t *
t_claims(void)
{
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss", T_ISS, "aud",
	                      T_AUD, "sub", "user-42", "tenant_id", "tenant-7", "client_id", "web",
	                      "scope", "messages:read messages:write", "jti", "jti-1", "iat",
	                      (json_int_t)(T_NOW - 60), "exp", (json_int_t)(T_NOW + 840));
	assert_non_null(c);
	return c;
}

/* t_with returns claims with member name set to v (which it takes), or removed if v is NULL. */
static json_t *
t_with(json_t *claims, const char *name, json_t *v)
{
	if (v == NULL)
		json_object_del(claims, name);
	else
		assert_int_equal(json_object_set_new(claims, name, v), 0);
	return claims;
}

/* t_sign signs claims (taking them) with key through the API under test. */
static char *
t_sign(const struct sb_jwt_key *key, json_t *claims, const char *typ)
{
	char *tok = NULL;

	assert_int_equal(sb_jwt_sign(key, claims, typ, &tok), 0);
	json_decref(claims);
	return tok;
}

static int
t_verify(const char *tok)
{
	return sb_jwt_verify(t_v, tok, strlen(tok), &t_p);
}

/* t_verify_free verifies tok, frees it and returns the result. */
static int
t_verify_free(char *tok)
{
	int r = t_verify(tok);
	free(tok);
	return r;
}

/* ---- the attacker's tools: plain OpenSSL and string building ---- */

static char *
t_b64(const void *p, size_t n)
{
	char *s = NULL;

	assert_int_equal(sb_jwt_b64url_encode(p, n, &s), 0);
	return s;
}

/* t_input builds base64url(header) "." base64url(payload) from the given JSON texts. */
static char *
t_input(const char *header, const char *payload)
{
	char *h = t_b64(header, strlen(header)), *p = t_b64(payload, strlen(payload)), *s;

	assert_true(asprintf(&s, "%s.%s", h, p) > 0);
	free(h);
	free(p);
	return s;
}

/* t_attach returns input "." base64url(sig) and frees input. */
static char *
t_attach(char *input, const unsigned char *sig, size_t n)
{
	char *b = t_b64(sig, n), *s;

	assert_true(asprintf(&s, "%s.%s", input, b) > 0);
	free(b);
	free(input);
	return s;
}

/* t_pkey reads key's private half into a plain OpenSSL key, as a thief of the PEM would. */
static EVP_PKEY *
t_pkey(const struct sb_jwt_key *key)
{
	char *pem = NULL;
	BIO *bio;
	EVP_PKEY *pk;

	assert_int_equal(sb_jwt_key_private_pem(key, &pem), 0);
	bio = BIO_new_mem_buf(pem, -1);
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	sb_jwt_secret_free(pem);
	assert_non_null(pk);
	return pk;
}

/* t_sign_openssl signs input with pk (SHA-256) and returns the JOSE signature in sig: r||s for
 * an EC key, the PKCS#1 v1.5 signature for RSA. */
static size_t
t_sign_openssl(EVP_PKEY *pk, const char *input, unsigned char *sig)
{
	unsigned char der[512];
	size_t n = sizeof der;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *es;

	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(md, der, &n, (const unsigned char *)input, strlen(input)),
	                 1);
	EVP_MD_CTX_free(md);
	if (!EVP_PKEY_is_a(pk, "EC")) {
		memcpy(sig, der, n);
		return n;
	}
	es = d2i_ECDSA_SIG(NULL, &p, (long)n);
	assert_non_null(es);
	ECDSA_SIG_get0(es, &r, &s);
	BN_bn2binpad(r, sig, 32);
	BN_bn2binpad(s, sig + 32, 32);
	ECDSA_SIG_free(es);
	return 64;
}

/* t_payload returns the JSON text of the typical claims. */
static char *
t_payload(void)
{
	json_t *c = t_claims();
	char *s = json_dumps(c, JSON_COMPACT);

	json_decref(c);
	return s;
}

/* t_header returns {"alg":alg,"kid":kid,"typ":"at+jwt"} as text. */
static char *
t_header(const char *alg, const char *kid)
{
	char *s;

	assert_true(asprintf(&s, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"at+jwt\"}", alg, kid) >
	            0);
	return s;
}

/* t_forge signs a token with header text hdr and the typical payload using pk. */
static char *
t_forge(const char *hdr, EVP_PKEY *pk)
{
	unsigned char sig[512];
	char *payload = t_payload(), *input = t_input(hdr, payload);
	size_t n = t_sign_openssl(pk, input, sig);

	free(payload);
	return t_attach(input, sig, n);
}

/* ---- round trips ---- */

static void
t_check_principal(void)
{
	assert_string_equal(t_p.sub, "user-42");
	assert_string_equal(t_p.user_id, "user-42");
	assert_string_equal(t_p.tenant_id, "tenant-7");
	assert_string_equal(t_p.client_id, "web");
	assert_string_equal(t_p.jti, "jti-1");
	assert_int_equal(t_p.exp, T_NOW + 840);
	assert_int_equal(t_p.iat, T_NOW - 60);
	assert_int_equal(t_p.nscopes, 2);
	assert_string_equal(sb_jwt_principal_scope(&t_p, 0), "messages:read");
	assert_string_equal(sb_jwt_principal_scope(&t_p, 1), "messages:write");
	assert_true(sb_jwt_has_scope(&t_p, "messages:write"));
	assert_false(sb_jwt_has_scope(&t_p, "messages"));
	assert_false(sb_jwt_has_scope(&t_p, "admin"));
}

static void
test_roundtrip_es256(void **state)
{
	char *tok = t_sign(t_es, t_claims(), "at+jwt");
	char *hdr = NULL;
	unsigned char buf[256];
	size_t n;

	/* The header says what RFC 9068 asks, and nothing else. */
	assert_int_equal(sb_jwt_b64url_decode(tok, strchr(tok, '.') - tok, buf, sizeof buf, &n), 0);
	assert_true(asprintf(&hdr, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"at+jwt\"}",
	                     sb_jwt_key_kid(t_es)) > 0);
	assert_int_equal(n, strlen(hdr));
	assert_memory_equal(buf, hdr, n);
	free(hdr);
	assert_int_equal(t_verify_free(tok), 0);
	t_check_principal();
	assert_string_equal(t_hook_seen, "jti-1");
}

static void
test_roundtrip_rs256(void **state)
{
	assert_int_equal(t_verify_free(t_sign(t_rs, t_claims(), "at+jwt")), 0);
	t_check_principal();
}

/* The ES256 signature is r||s, 64 bytes, and plain OpenSSL agrees it verifies. */
static void
test_es256_signature_is_raw_64_bytes(void **state)
{
	char *tok = t_sign(t_es, t_claims(), "at+jwt"), *sig = strrchr(tok, '.') + 1;
	unsigned char raw[128], der[80], *dp = der;
	size_t n;
	EVP_PKEY *pk = t_pkey(t_es);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es = ECDSA_SIG_new();
	int dn;

	assert_int_equal(strlen(sig), 86);
	assert_int_equal(sb_jwt_b64url_decode(sig, strlen(sig), raw, sizeof raw, &n), 0);
	assert_int_equal(n, 64);
	assert_int_equal(
	    ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)), 1);
	dn = i2d_ECDSA_SIG(es, &dp);
	assert_true(dn > 0);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(
	    EVP_DigestVerify(md, der, (size_t)dn, (unsigned char *)tok, (size_t)(sig - 1 - tok)),
	    1);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);

	/* A DER signature in the signature slot is not the JOSE form and is refused. */
	char *input = strndup(tok, (size_t)(sig - 1 - tok));
	char *bad = t_attach(input, der, (size_t)dn);
	assert_int_equal(t_verify_free(bad), SB_JWT_BAD_SIGNATURE);
	free(tok);
}

/* ---- algorithm attacks ---- */

static void
test_alg_none_refused(void **state)
{
	static const char *algs[] = { "none", "None", "NONE", "nOnE" };
	char *payload = t_payload();

	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
		char *hdr = t_header(algs[i], sb_jwt_key_kid(t_es)), *input = t_input(hdr, payload);
		char *dotted;

		/* Without a trailing dot: two segments. */
		assert_int_equal(t_verify(input), SB_JWT_MALFORMED);
		assert_true(asprintf(&dotted, "%s.", input) > 0);
		assert_int_equal(t_verify(dotted), SB_JWT_BAD_ALG);
		assert_string_equal(t_p.sub, ""); /* nothing leaks into the principal */
		free(dotted);
		free(input);
		free(hdr);
	}
	free(payload);
}

/* The classic confusion: HS256 with the RSA public key's PEM as the HMAC secret. */
static void
test_hs256_with_public_pem_refused(void **state)
{
	static const char *algs[] = { "HS256", "HS384", "HS512" };
	char *pem = NULL, *payload = t_payload();
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int n;

	assert_int_equal(sb_jwt_key_public_pem(t_rs, &pem), 0);
	assert_non_null(strstr(pem, "BEGIN PUBLIC KEY"));
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
		char *hdr = t_header(algs[i], sb_jwt_key_kid(t_rs)), *input = t_input(hdr, payload);
		const EVP_MD *md = i == 0 ? EVP_sha256() : i == 1 ? EVP_sha384() : EVP_sha512();
		assert_non_null(HMAC(md, pem, (int)strlen(pem), (unsigned char *)input,
		                     strlen(input), mac, &n));
		assert_int_equal(t_verify_free(t_attach(input, mac, n)), SB_JWT_BAD_ALG);
		free(hdr);
	}
	free(payload);
	free(pem);
}

/* A token whose alg is not the one of the key its kid names: refused before any crypto. */
static void
test_alg_mismatch_refused(void **state)
{
	EVP_PKEY *rs = t_pkey(t_rs), *es = t_pkey(t_es);
	char *h1 = t_header("RS256", sb_jwt_key_kid(t_es)),
	     *h2 = t_header("ES256", sb_jwt_key_kid(t_rs));
	char *h3 = t_header("PS256", sb_jwt_key_kid(t_rs));

	assert_int_equal(t_verify_free(t_forge(h1, rs)), SB_JWT_BAD_ALG);
	assert_int_equal(t_verify_free(t_forge(h2, es)), SB_JWT_BAD_ALG);
	assert_int_equal(t_verify_free(t_forge(h3, rs)), SB_JWT_BAD_ALG);
	free(h1);
	free(h2);
	free(h3);
	EVP_PKEY_free(rs);
	EVP_PKEY_free(es);
}

static void
test_foreign_key_with_our_kid_refused(void **state)
{
	struct sb_jwt_key *mine;
	EVP_PKEY *pk;
	char *hdr;

	/* ES256 */
	assert_int_equal(sb_jwt_key_generate(SB_JWT_ES256, 0, &mine), 0);
	pk = t_pkey(mine);
	hdr = t_header("ES256", sb_jwt_key_kid(t_es));
	assert_int_equal(t_verify_free(t_forge(hdr, pk)), SB_JWT_BAD_SIGNATURE);
	free(hdr);
	/* The same forgery under the attacker's own kid is merely unknown. */
	hdr = t_header("ES256", sb_jwt_key_kid(mine));
	assert_int_equal(t_verify_free(t_forge(hdr, pk)), SB_JWT_UNKNOWN_KID);
	free(hdr);
	EVP_PKEY_free(pk);
	sb_jwt_key_free(mine);

	/* RS256 */
	assert_int_equal(sb_jwt_key_generate(SB_JWT_RS256, 2048, &mine), 0);
	pk = t_pkey(mine);
	hdr = t_header("RS256", sb_jwt_key_kid(t_rs));
	assert_int_equal(t_verify_free(t_forge(hdr, pk)), SB_JWT_BAD_SIGNATURE);
	free(hdr);
	EVP_PKEY_free(pk);
	sb_jwt_key_free(mine);
}

/* Unknown kid is its own error; once the set holding it arrives, the token verifies. */
static void
test_unknown_kid_then_refetch(void **state)
{
	struct sb_jwt_key *next;
	struct sb_jwt_keyset *set;
	char *tok;

	assert_int_equal(sb_jwt_key_generate(SB_JWT_ES256, 0, &next), 0);
	tok = t_sign(next, t_claims(), "at+jwt");
	assert_int_equal(t_verify(tok), SB_JWT_UNKNOWN_KID);
	assert_string_equal(sb_jwt_reason_name(SB_JWT_UNKNOWN_KID), "unknown_kid");

	assert_int_equal(sb_jwt_keyset_new(&set), 0);
	assert_int_equal(sb_jwt_keyset_add(set, t_es), 0);
	assert_int_equal(sb_jwt_keyset_add(set, next), 0);
	sb_jwt_verifier_set_keys(t_v, set);
	assert_int_equal(t_verify(tok), 0);
	/* t_rs left the set: its tokens now name an unknown kid. */
	assert_int_equal(t_verify_free(t_sign(t_rs, t_claims(), "at+jwt")), SB_JWT_UNKNOWN_KID);

	sb_jwt_verifier_set_keys(t_v, t_set);
	assert_int_equal(t_verify(tok), SB_JWT_UNKNOWN_KID);
	sb_jwt_keyset_release(set);
	sb_jwt_key_free(next);
	free(tok);
}

static void
test_tampered_token_refused(void **state)
{
	const struct sb_jwt_key *keys[] = { t_es, t_rs };

	for (size_t k = 0; k < 2; k++) {
		char *tok = t_sign(keys[k], t_claims(), "at+jwt"), *dot1 = strchr(tok, '.');
		char *dot2 = strchr(dot1 + 1, '.'), *forged, *payload;
		json_t *c = t_with(t_claims(), "scope", json_string("messages:read admin"));

		/* The payload swapped for one granting more, the signature kept. */
		payload = json_dumps(c, JSON_COMPACT);
		json_decref(c);
		char *p64 = t_b64(payload, strlen(payload));
		assert_true(asprintf(&forged, "%.*s.%s%s", (int)(dot1 - tok), tok, p64, dot2) > 0);
		assert_int_equal(t_verify_free(forged), SB_JWT_BAD_SIGNATURE);
		free(p64);
		free(payload);

		/* One bit of the signature flipped (its first character: always a whole 6 bits). */
		dot2[1] = dot2[1] == 'A' ? 'B' : 'A';
		assert_int_equal(t_verify(tok), SB_JWT_BAD_SIGNATURE);
		/* A signature of the wrong length (48 bytes). */
		dot2[1 + 64] = '\0';
		assert_int_equal(t_verify(tok), SB_JWT_BAD_SIGNATURE);
		free(tok);
	}
}

/* ---- claims ---- */

static void
test_time_claims(void **state)
{
	/* leeway is 30 s */
	assert_int_equal(t_verify_free(t_sign(
	                     t_es, t_with(t_claims(), "exp", json_integer(T_NOW - 31)), "at+jwt")),
	                 SB_JWT_EXPIRED);
	assert_int_equal(t_verify_free(t_sign(
	                     t_es, t_with(t_claims(), "exp", json_integer(T_NOW - 10)), "at+jwt")),
	                 0);
	assert_int_equal(t_verify_free(t_sign(
	                     t_es, t_with(t_claims(), "nbf", json_integer(T_NOW + 31)), "at+jwt")),
	                 SB_JWT_NOT_YET_VALID);
	assert_int_equal(t_verify_free(t_sign(
	                     t_es, t_with(t_claims(), "nbf", json_integer(T_NOW + 10)), "at+jwt")),
	                 0);
	assert_int_equal(t_verify_free(t_sign(
	                     t_es, t_with(t_claims(), "iat", json_integer(T_NOW + 31)), "at+jwt")),
	                 SB_JWT_NOT_YET_VALID);
	/* NumericDate may be fractional */
	assert_int_equal(t_verify_free(t_sign(
	                     t_es, t_with(t_claims(), "exp", json_real(T_NOW + 0.5)), "at+jwt")),
	                 0);
	/* missing or unusable exp / iat */
	assert_int_equal(t_verify_free(t_sign(t_es, t_with(t_claims(), "exp", NULL), "at+jwt")),
	                 SB_JWT_BAD_CLAIMS);
	assert_int_equal(t_verify_free(t_sign(t_es, t_with(t_claims(), "iat", NULL), "at+jwt")),
	                 SB_JWT_BAD_CLAIMS);
	assert_int_equal(
	    t_verify_free(t_sign(t_es, t_with(t_claims(), "exp", json_string("soon")), "at+jwt")),
	    SB_JWT_BAD_CLAIMS);
	assert_int_equal(t_verify_free(t_sign(
	                     t_es, t_with(t_claims(), "exp", json_integer(INT64_MAX)), "at+jwt")),
	                 SB_JWT_BAD_CLAIMS);
	assert_int_equal(
	    t_verify_free(t_sign(t_es, t_with(t_claims(), "nbf", json_true()), "at+jwt")),
	    SB_JWT_BAD_CLAIMS);

	/* The same token over time: valid, then valid within leeway, then expired. */
	char *tok = t_sign(t_es, t_claims(), "at+jwt");
	t_clock_now = T_NOW + 840 + 29;
	assert_int_equal(t_verify(tok), 0);
	t_clock_now = T_NOW + 840 + 30;
	assert_int_equal(t_verify(tok), SB_JWT_EXPIRED);
	free(tok);
}

static void
test_iss_aud_typ(void **state)
{
	assert_int_equal(t_verify_free(t_sign(
	                     t_es, t_with(t_claims(), "iss", json_string(T_ISS "/")), "at+jwt")),
	                 SB_JWT_BAD_ISS);
	assert_int_equal(t_verify_free(t_sign(t_es, t_with(t_claims(), "iss", NULL), "at+jwt")),
	                 SB_JWT_BAD_ISS);
	assert_int_equal(
	    t_verify_free(t_sign(t_es, t_with(t_claims(), "aud", json_string("other")), "at+jwt")),
	    SB_JWT_BAD_AUD);
	assert_int_equal(t_verify_free(t_sign(t_es, t_with(t_claims(), "aud", NULL), "at+jwt")),
	                 SB_JWT_BAD_AUD);
	assert_int_equal(
	    t_verify_free(t_sign(
	        t_es, t_with(t_claims(), "aud", json_pack("[s,s]", "files", T_AUD)), "at+jwt")),
	    0);
	assert_int_equal(
	    t_verify_free(t_sign(
	        t_es, t_with(t_claims(), "aud", json_pack("[s,s]", "files", "other")), "at+jwt")),
	    SB_JWT_BAD_AUD);
	/* typ: required, case-insensitive, "application/" optional */
	assert_int_equal(t_verify_free(t_sign(t_es, t_claims(), NULL)), SB_JWT_BAD_TYP);
	assert_int_equal(t_verify_free(t_sign(t_es, t_claims(), "JWT")), SB_JWT_BAD_TYP);
	assert_int_equal(t_verify_free(t_sign(t_es, t_claims(), "application/AT+JWT")), 0);
	assert_int_equal(t_verify_free(t_sign(t_es, t_claims(), "AT+jwt")), 0);
}

static void
test_subject_and_scopes(void **state)
{
	/* A token a client got for itself (client credentials): no user. */
	assert_int_equal(
	    t_verify_free(t_sign(t_es, t_with(t_claims(), "sub", json_string("web")), "at+jwt")),
	    0);
	assert_string_equal(t_p.sub, "web");
	assert_string_equal(t_p.user_id, "");
	/* Odd spacing is tolerated, and no scope claim means no scopes. */
	assert_int_equal(t_verify_free(t_sign(
	                     t_es, t_with(t_claims(), "scope", json_string(" a  b ")), "at+jwt")),
	                 0);
	assert_int_equal(t_p.nscopes, 2);
	assert_true(sb_jwt_has_scope(&t_p, "a") && sb_jwt_has_scope(&t_p, "b"));
	assert_false(sb_jwt_has_scope(&t_p, ""));
	assert_int_equal(t_verify_free(t_sign(t_es, t_with(t_claims(), "scope", NULL), "at+jwt")),
	                 0);
	assert_int_equal(t_p.nscopes, 0);
	assert_false(sb_jwt_has_scope(&t_p, "messages:read"));
	/* Missing sub or jti, wrong types, too many scopes, an oversize id. */
	assert_int_equal(t_verify_free(t_sign(t_es, t_with(t_claims(), "sub", NULL), "at+jwt")),
	                 SB_JWT_BAD_CLAIMS);
	assert_int_equal(t_verify_free(t_sign(t_es, t_with(t_claims(), "jti", NULL), "at+jwt")),
	                 SB_JWT_BAD_CLAIMS);
	assert_int_equal(
	    t_verify_free(t_sign(t_es, t_with(t_claims(), "tenant_id", json_integer(7)), "at+jwt")),
	    SB_JWT_BAD_CLAIMS);
	char many[400] = "";
	for (int i = 0; i < 65; i++)
		strcat(many, "s ");
	assert_int_equal(
	    t_verify_free(t_sign(t_es, t_with(t_claims(), "scope", json_string(many)), "at+jwt")),
	    SB_JWT_BAD_CLAIMS);
	char longid[SB_JWT_ID_MAX + 1];
	memset(longid, 'x', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	assert_int_equal(
	    t_verify_free(t_sign(t_es, t_with(t_claims(), "sub", json_string(longid)), "at+jwt")),
	    SB_JWT_BAD_CLAIMS);
}

static void
test_revoked_jti(void **state)
{
	char *tok = t_sign(t_es, t_claims(), "at+jwt");

	t_revoked_jti = "jti-1";
	assert_int_equal(t_verify(tok), SB_JWT_REVOKED);
	assert_string_equal(t_hook_seen, "jti-1");
	t_revoked_jti = "jti-2";
	assert_int_equal(t_verify(tok), 0);
	/* The hook cannot tell (Redis down): not a token problem, and not a success. */
	t_hook_fails = 1;
	assert_int_equal(t_verify(tok), SB_EUNAVAIL);
	assert_string_equal(sb_jwt_reason_name(SB_EUNAVAIL), "unavailable");
	/* A forged token never reaches the hook. */
	t_hook_fails = 0;
	t_hook_seen[0] = '\0';
	tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
	assert_int_not_equal(t_verify(tok), 0);
	assert_string_equal(t_hook_seen, "");
	free(tok);
}

/* ---- malformed input ---- */

static void
test_malformed_refused(void **state)
{
	char *good = t_sign(t_es, t_claims(), "at+jwt"), *s;
	char *payload = t_payload();
	char *kid_hdr = t_header("ES256", sb_jwt_key_kid(t_es));
	size_t hlen = (size_t)(strchr(good, '.') - good);

	assert_int_equal(sb_jwt_verify(t_v, "", 0, &t_p), SB_JWT_MALFORMED);
	assert_int_equal(sb_jwt_verify(t_v, NULL, 0, &t_p), SB_JWT_MALFORMED);
	assert_int_equal(t_verify("."), SB_JWT_MALFORMED);
	assert_int_equal(t_verify(".."), SB_JWT_MALFORMED);
	assert_int_equal(t_verify("..."), SB_JWT_MALFORMED);
	assert_int_equal(t_verify("abc"), SB_JWT_MALFORMED);
	/* 2 and 4 segments */
	s = strndup(good, (size_t)(strrchr(good, '.') - good));
	assert_int_equal(t_verify(s), SB_JWT_MALFORMED);
	free(s);
	assert_true(asprintf(&s, "%s.AAAA", good) > 0);
	assert_int_equal(t_verify(s), SB_JWT_MALFORMED);
	free(s);
	/* characters outside base64url, padding, whitespace, in each segment */
	static const char *bad[] = { "+", "/", "=", " ", "\n", "*" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t pos[] = { 3, hlen + 5, strlen(good) - 5 };
		for (size_t j = 0; j < 3; j++) {
			s = strdup(good);
			s[pos[j]] = bad[i][0];
			assert_int_not_equal(t_verify(s), 0);
			if (j == 0)
				assert_int_equal(t_verify(s), SB_JWT_MALFORMED);
			free(s);
		}
	}
	/* the header with "=" padding appended */
	assert_true(asprintf(&s, "%.*s==%s", (int)hlen, good, good + hlen) > 0);
	assert_int_equal(t_verify(s), SB_JWT_MALFORMED);
	free(s);
	/* an embedded NUL: the length says where the token ends, not the NUL */
	s = strdup(good);
	s[10] = '\0';
	assert_int_equal(sb_jwt_verify(t_v, s, strlen(good), &t_p), SB_JWT_MALFORMED);
	free(s);
	/* headers that are not JSON objects, or are ambiguous */
	static const char *hdrs[] = {
		"hello",
		"[\"ES256\"]",
		"\"ES256\"",
		"{\"alg\":\"ES256\"",
		"{}",
		"{\"alg\":1,\"kid\":\"k\"}",
		"{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}",
		"{\"alg\":\"ES256\",\"kid\":\"k\",\"typ\":\"at+jwt\",\"alg\":\"none\"}",
	};
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		char *in = t_input(hdrs[i], payload);
		assert_true(asprintf(&s, "%s.%s", in, strrchr(good, '.') + 1) > 0);
		assert_int_equal(t_verify(s), SB_JWT_MALFORMED);
		free(s);
		free(in);
	}
	/* a critical extension we do not know */
	{
		char *crit;
		EVP_PKEY *pk = t_pkey(t_es);
		assert_true(asprintf(&crit,
		                     "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"at+jwt\","
		                     "\"crit\":[\"b64\"],\"b64\":false}",
		                     sb_jwt_key_kid(t_es)) > 0);
		assert_int_equal(t_verify_free(t_forge(crit, pk)), SB_JWT_MALFORMED);
		free(crit);
		/* a validly signed payload that is not a JSON object */
		char *in = t_input(kid_hdr, "[1,2]");
		unsigned char sig[64];
		t_sign_openssl(pk, in, sig);
		assert_int_equal(t_verify_free(t_attach(in, sig, 64)), SB_JWT_MALFORMED);
		EVP_PKEY_free(pk);
	}
	/* too large */
	size_t big = SB_JWT_MAX_TOKEN + 1;
	s = malloc(big + 1);
	memset(s, 'A', big);
	s[big] = '\0';
	s[100] = s[200] = '.';
	assert_int_equal(t_verify(s), SB_JWT_TOO_LARGE);
	s[SB_JWT_MAX_TOKEN] = '\0';
	assert_int_equal(t_verify(s), SB_JWT_MALFORMED);
	free(s);
	s = malloc(1 << 20);
	memset(s, 'A', 1 << 20);
	assert_int_equal(sb_jwt_verify(t_v, s, 1 << 20, &t_p), SB_JWT_TOO_LARGE);
	free(s);

	free(kid_hdr);
	free(payload);
	free(good);
}

/* Random bytes and random single-byte mutations of a good token never verify nor crash. */
static void
test_mutations_never_verify(void **state)
{
	char *good = t_sign(t_rs, t_claims(), "at+jwt");
	size_t n = strlen(good);
	char *s = malloc(n + 1);
	unsigned seed = 12345;

	for (int i = 0; i < 3000; i++) {
		memcpy(s, good, n + 1);
		size_t pos = rand_r(&seed) % n;
		char c = (char)(rand_r(&seed) % 256);
		if (c == s[pos])
			continue;
		s[pos] = c;
		int r = sb_jwt_verify(t_v, s, n, &t_p);
		assert_true(r < 0);
		assert_string_not_equal(sb_jwt_reason_name(r), "internal");
	}
	for (int i = 0; i < 2000; i++) {
		size_t len = (size_t)(rand_r(&seed) % 600);
		for (size_t j = 0; j < len; j++)
			s[j] = (char)(rand_r(&seed) % 8 == 0 ? '.' : 'A' + rand_r(&seed) % 60);
		assert_true(sb_jwt_verify(t_v, s, len, &t_p) < 0);
	}
	assert_int_equal(sb_jwt_verify(t_v, good, n, &t_p), 0);
	free(s);
	free(good);
}

static void
test_reason_names_distinct(void **state)
{
	static const int codes[] = { SB_JWT_MALFORMED,     SB_JWT_BAD_ALG,   SB_JWT_UNKNOWN_KID,
		                     SB_JWT_BAD_SIGNATURE, SB_JWT_EXPIRED,   SB_JWT_NOT_YET_VALID,
		                     SB_JWT_BAD_ISS,       SB_JWT_BAD_AUD,   SB_JWT_BAD_TYP,
		                     SB_JWT_REVOKED,       SB_JWT_TOO_LARGE, SB_JWT_BAD_CLAIMS };
	size_t n = sizeof codes / sizeof codes[0];

	assert_string_equal(sb_jwt_reason_name(0), "ok");
	assert_string_equal(sb_jwt_reason_name(SB_JWT_BAD_SIGNATURE), "bad_signature");
	assert_string_equal(sb_jwt_reason_name(SB_JWT_NOT_YET_VALID), "not_yet_valid");
	for (size_t i = 0; i < n; i++) {
		assert_string_not_equal(sb_jwt_reason_name(codes[i]), "internal");
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(sb_jwt_reason_name(codes[i]),
			                        sb_jwt_reason_name(codes[j]));
	}
	assert_string_equal(sb_jwt_reason_name(12345), "internal");
}

static void
test_bad_arguments(void **state)
{
	struct sb_jwt_policy pol = { .issuer = T_ISS, .audience = T_AUD };
	struct sb_jwt_verifier *v = NULL;
	struct sb_jwt_key *pub;
	char *pem = NULL, *tok = NULL;
	json_t *arr = json_array();

	pol.issuer = NULL;
	assert_int_equal(sb_jwt_verifier_new(&pol, NULL, &v), SB_EINVAL);
	pol.issuer = T_ISS;
	pol.audience = "";
	assert_int_equal(sb_jwt_verifier_new(&pol, NULL, &v), SB_EINVAL);
	pol.audience = T_AUD;
	pol.leeway_s = 100000;
	assert_int_equal(sb_jwt_verifier_new(&pol, NULL, &v), SB_EINVAL);
	/* a verifier with no keys yet refuses everything as unknown kid */
	pol.leeway_s = 0;
	assert_int_equal(sb_jwt_verifier_new(&pol, NULL, &v), 0);
	tok = t_sign(t_es, t_claims(), "at+jwt");
	assert_int_equal(sb_jwt_verify(v, tok, strlen(tok), &t_p), SB_JWT_UNKNOWN_KID);
	free(tok);
	sb_jwt_verifier_free(v);
	/* signing: claims must be an object, the key must be private */
	assert_int_equal(sb_jwt_sign(t_es, arr, "at+jwt", &tok), SB_EINVAL);
	json_decref(arr);
	assert_int_equal(sb_jwt_key_public_pem(t_es, &pem), 0);
	assert_int_equal(sb_jwt_key_from_pem(pem, strlen(pem), &pub), 0);
	json_t *c = t_claims();
	assert_int_equal(sb_jwt_sign(pub, c, "at+jwt", &tok), SB_EINVAL);
	json_decref(c);
	sb_jwt_key_free(pub);
	free(pem);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_roundtrip_es256, t_reset),
		cmocka_unit_test_setup(test_roundtrip_rs256, t_reset),
		cmocka_unit_test_setup(test_es256_signature_is_raw_64_bytes, t_reset),
		cmocka_unit_test_setup(test_alg_none_refused, t_reset),
		cmocka_unit_test_setup(test_hs256_with_public_pem_refused, t_reset),
		cmocka_unit_test_setup(test_alg_mismatch_refused, t_reset),
		cmocka_unit_test_setup(test_foreign_key_with_our_kid_refused, t_reset),
		cmocka_unit_test_setup(test_unknown_kid_then_refetch, t_reset),
		cmocka_unit_test_setup(test_tampered_token_refused, t_reset),
		cmocka_unit_test_setup(test_time_claims, t_reset),
		cmocka_unit_test_setup(test_iss_aud_typ, t_reset),
		cmocka_unit_test_setup(test_subject_and_scopes, t_reset),
		cmocka_unit_test_setup(test_revoked_jti, t_reset),
		cmocka_unit_test_setup(test_malformed_refused, t_reset),
		cmocka_unit_test_setup(test_mutations_never_verify, t_reset),
		cmocka_unit_test_setup(test_reason_names_distinct, t_reset),
		cmocka_unit_test_setup(test_bad_arguments, t_reset),
	};
	return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
