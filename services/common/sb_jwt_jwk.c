/* sb_jwt_jwk.c: public keys as JWK (RFC 7517, 7518 section 6), their RFC 7638 thumbprint, and
 * key sets read from and written to JWKS documents. */
#define SB_JWT_INTERNAL
#include "sb_jwt.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "sb_err.h"

#define SB_JWT_JWKS_MAX  (1024 * 1024) /* a JWKS document larger than this is refused */
#define SB_JWT_B64_MAX   1400          /* base64url of an 8192-bit modulus, with room */
#define SB_JWT_RSA_E_MAX 8             /* bytes of a public exponent we accept */

struct sb_jwt_keyset {
	atomic_int refs;
	size_t n, cap;
	struct sb_jwt_key **keys;
};

/* sb_jwt_jwk_param writes the base64url form of the big-number parameter name of pkey into out
 * (SB_JWT_B64_MAX bytes), left-padded with zero bytes to pad bytes when pad > 0. */
static int
sb_jwt_jwk_param(EVP_PKEY *pkey, const char *name, int pad, char *out)
{
	unsigned char bin[1024];
	BIGNUM *bn = NULL;
	int n;

	if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
		return SB_ENOMEM;
	if (pad > 0)
		n = BN_bn2binpad(bn, bin, pad);
	else if (BN_num_bytes(bn) <= (int)sizeof bin)
		n = BN_bn2bin(bn, bin);
	else
		n = -1;
	BN_free(bn);
	if (n < 0)
		return SB_EINVAL;
	sb__jwt_b64url_encode_to(bin, (size_t)n, out);
	return 0;
}

/* sb_jwt_jwk_members fills a and b with x and y (EC) or n and e (RSA) of pkey. */
static int
sb_jwt_jwk_members(EVP_PKEY *pkey, enum sb_jwt_alg alg, char *a, char *b)
{
	int ret;

	if (alg == SB_JWT_ES256) {
		if ((ret = sb_jwt_jwk_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32, a)) != 0)
			return ret;
		return sb_jwt_jwk_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32, b);
	}
	if ((ret = sb_jwt_jwk_param(pkey, OSSL_PKEY_PARAM_RSA_N, 0, a)) != 0)
		return ret;
	return sb_jwt_jwk_param(pkey, OSSL_PKEY_PARAM_RSA_E, 0, b);
}

int
sb__jwt_thumbprint(EVP_PKEY *pkey, enum sb_jwt_alg alg, char *kid, size_t cap)
{
	char a[SB_JWT_B64_MAX], b[SB_JWT_B64_MAX], json[2 * SB_JWT_B64_MAX + 64];
	unsigned char dgst[SHA256_DIGEST_LENGTH];
	int ret, n;

	if (cap < 44)
		return SB_ERANGE;
	if ((ret = sb_jwt_jwk_members(pkey, alg, a, b)) != 0)
		return ret;
	/* RFC 7638: the required members only, in lexicographic order, no whitespace. */
	if (alg == SB_JWT_ES256)
		n = snprintf(json, sizeof json,
		             "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", a, b);
	else
		n = snprintf(json, sizeof json, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", b,
		             a);
	if (n < 0 || (size_t)n >= sizeof json)
		return SB_ERANGE;
	SHA256((const unsigned char *)json, (size_t)n, dgst);
	sb__jwt_b64url_encode_to(dgst, sizeof dgst, kid);
	return 0;
}

int
sb_jwt_key_public_jwk(const struct sb_jwt_key *key, json_t **out)
{
	char a[SB_JWT_B64_MAX], b[SB_JWT_B64_MAX];
	json_t *o;
	int ret;

	if ((ret = sb_jwt_jwk_members(key->pkey, key->alg, a, b)) != 0)
		return ret;
	if (key->alg == SB_JWT_ES256)
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256",
		              "x", a, "y", b, "kid", key->kid, "alg", "ES256", "use", "sig");
	else
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "n", a, "e", b, "kid",
		              key->kid, "alg", "RS256", "use", "sig");
	if (o == NULL)
		return SB_ENOMEM;
	*out = o;
	return 0;
}

/* sb_jwt_jwk_bytes decodes the base64url string member name of jwk into out; returns the
 * length, or -1 if it is missing, malformed or longer than cap. */
static int
sb_jwt_jwk_bytes(const json_t *jwk, const char *name, unsigned char *out, size_t cap)
{
	const json_t *v = json_object_get(jwk, name);
	size_t n;

	if (!json_is_string(v) || json_string_length(v) == 0)
		return -1;
	if (sb_jwt_b64url_decode(json_string_value(v), json_string_length(v), out, cap, &n) != 0)
		return -1;
	return (int)n;
}

/* sb_jwt_jwk_pkey builds the public key of an EC or RSA JWK; NULL if it is not usable. */
static EVP_PKEY *
sb_jwt_jwk_pkey(const json_t *jwk, const char *kty)
{
	/* OSSL_PARAM_BLD keeps pointers until to_param: the buffers live for the whole call. */
	unsigned char a[1024], b[SB_JWT_RSA_E_MAX], point[65] = { 0x04 };
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int la, lb, ok = 0;

	if (bld == NULL)
		return NULL;
	if (strcmp(kty, "EC") == 0) {
		if (!json_is_string(json_object_get(jwk, "crv")) ||
		    strcmp(json_string_value(json_object_get(jwk, "crv")), "P-256") != 0)
			goto done;
		/* RFC 7518 section 6.2.1.2: coordinates are exactly the field size. */
		if (sb_jwt_jwk_bytes(jwk, "x", point + 1, 32) != 32 ||
		    sb_jwt_jwk_bytes(jwk, "y", point + 33, 32) != 32)
			goto done;
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1",
		                                     0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
		                                      sizeof point))
			goto done;
	} else {
		la = sb_jwt_jwk_bytes(jwk, "n", a, sizeof a);
		lb = sb_jwt_jwk_bytes(jwk, "e", b, sizeof b);
		if (la <= 0 || lb <= 0)
			goto done;
		n = BN_bin2bn(a, la, NULL);
		e = BN_bin2bn(b, lb, NULL);
		if (n == NULL || e == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto done;
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, kty, NULL);
	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto done;
	/* The point must be on the curve (invalid-curve attacks); n odd, e odd and sane. */
	check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	ok = check != NULL && EVP_PKEY_public_check(check) == 1;
done:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	ERR_clear_error();
	if (!ok) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

/* sb_jwt_jwk_usable_for_sig tells whether the optional use and key_ops members allow
 * verifying signatures. */
static bool
sb_jwt_jwk_usable_for_sig(const json_t *jwk)
{
	const json_t *use = json_object_get(jwk, "use"), *ops = json_object_get(jwk, "key_ops"),
	             *op;
	size_t i;

	if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
		return false;
	if (ops == NULL)
		return true;
	if (!json_is_array(ops))
		return false;
	json_array_foreach(ops, i, op) if (json_is_string(op) && strcmp(json_string_value(op),
	                                                                "verify") == 0) return true;
	return false;
}

int
sb_jwt_key_thumbprint(const struct sb_jwt_key *key, char *out, size_t cap)
{
	return sb__jwt_thumbprint(key->pkey, key->alg, out, cap);
}

int
sb_jwt_key_from_jwk(const json_t *jwk, struct sb_jwt_key **out)
{
	const json_t *kty = json_object_get(jwk, "kty"), *kid = json_object_get(jwk, "kid");
	const json_t *alg = json_object_get(jwk, "alg");
	const char *want;
	EVP_PKEY *pkey;
	int ret;

	if (!json_is_object(jwk) || !json_is_string(kty) || !json_is_string(kid) ||
	    json_string_length(kid) == 0 || json_string_length(kid) >= SB__JWT_KID_MAX)
		return SB_EINVAL;
	if (strcmp(json_string_value(kty), "EC") == 0)
		want = "ES256";
	else if (strcmp(json_string_value(kty), "RSA") == 0)
		want = "RS256";
	else
		return SB_EINVAL;
	if (alg != NULL && (!json_is_string(alg) || strcmp(json_string_value(alg), want) != 0))
		return SB_EINVAL;
	if (!sb_jwt_jwk_usable_for_sig(jwk))
		return SB_EINVAL;
	if (json_string_length(kid) != strlen(json_string_value(kid)))
		return SB_EINVAL; /* an embedded NUL */
	pkey = sb_jwt_jwk_pkey(jwk, json_string_value(kty));
	if (pkey == NULL)
		return SB_EINVAL;
	ret = sb__jwt_key_wrap(pkey, json_string_value(kid), out);
	if (ret != 0)
		EVP_PKEY_free(pkey);
	return ret;
}

int
sb_jwt_keyset_new(struct sb_jwt_keyset **out)
{
	struct sb_jwt_keyset *set = calloc(1, sizeof *set);

	if (set == NULL)
		return SB_ENOMEM;
	atomic_init(&set->refs, 1);
	*out = set;
	return 0;
}

struct sb_jwt_key *
sb__jwt_keyset_find(const struct sb_jwt_keyset *set, const char *kid, size_t len)
{
	for (size_t i = 0; i < set->n; i++) {
		const char *k = set->keys[i]->kid;
		if (strncmp(k, kid, len) == 0 && k[len] == '\0')
			return set->keys[i];
	}
	return NULL;
}

/* sb_jwt_keyset_push appends key (owned by the set on success). */
static int
sb_jwt_keyset_push(struct sb_jwt_keyset *set, struct sb_jwt_key *key)
{
	if (sb__jwt_keyset_find(set, key->kid, strlen(key->kid)) != NULL)
		return SB_EEXIST;
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 4;
		struct sb_jwt_key **k = realloc(set->keys, cap * sizeof *k);
		if (k == NULL)
			return SB_ENOMEM;
		set->keys = k;
		set->cap = cap;
	}
	set->keys[set->n++] = key;
	return 0;
}

int
sb_jwt_keyset_add(struct sb_jwt_keyset *set, const struct sb_jwt_key *key)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	struct sb_jwt_key *copy;
	EVP_PKEY *pub;
	int len, ret;

	if (sb__jwt_keyset_find(set, key->kid, strlen(key->kid)) != NULL)
		return SB_EEXIST;
	/* Round-trip through SubjectPublicKeyInfo: the set never holds private material. */
	len = i2d_PUBKEY(key->pkey, &der);
	if (len <= 0)
		return SB_ENOMEM;
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	if (pub == NULL)
		return SB_ENOMEM;
	if ((ret = sb__jwt_key_wrap(pub, key->kid, &copy)) != 0) {
		EVP_PKEY_free(pub);
		return ret;
	}
	if ((ret = sb_jwt_keyset_push(set, copy)) != 0)
		sb_jwt_key_free(copy);
	return ret;
}

int
sb_jwt_keyset_parse_jwks(const char *json, size_t len, struct sb_jwt_keyset **out, size_t *skipped)
{
	struct sb_jwt_keyset *set = NULL;
	struct sb_jwt_key *key;
	json_t *doc, *keys, *jwk;
	size_t i, nskip = 0;
	int ret = SB_EINVAL;

	if (json == NULL || len > SB_JWT_JWKS_MAX)
		return SB_EINVAL;
	doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	keys = json_object_get(doc, "keys");
	if (!json_is_object(doc) || !json_is_array(keys))
		goto fail;
	if ((ret = sb_jwt_keyset_new(&set)) != 0)
		goto fail;
	json_array_foreach(keys, i, jwk)
	{
		ret = sb_jwt_key_from_jwk(jwk, &key);
		if (ret == SB_ENOMEM)
			goto fail;
		if (ret != 0) {
			nskip++;
			continue;
		}
		ret = sb_jwt_keyset_push(set, key);
		if (ret == SB_ENOMEM) {
			sb_jwt_key_free(key);
			goto fail;
		}
		if (ret != 0) {
			sb_jwt_key_free(key);
			nskip++;
		}
	}
	json_decref(doc);
	if (skipped != NULL)
		*skipped = nskip;
	*out = set;
	return 0;
fail:
	sb_jwt_keyset_release(set);
	json_decref(doc);
	return ret;
}

int
sb_jwt_keyset_to_jwks(const struct sb_jwt_keyset *set, char **out)
{
	json_t *doc = json_object(), *arr = json_array(), *jwk;
	int ret = SB_ENOMEM;

	if (doc == NULL || arr == NULL || json_object_set(doc, "keys", arr) != 0)
		goto done;
	for (size_t i = 0; i < set->n; i++) {
		if ((ret = sb_jwt_key_public_jwk(set->keys[i], &jwk)) != 0)
			goto done;
		if (json_array_append_new(arr, jwk) != 0) {
			ret = SB_ENOMEM;
			goto done;
		}
	}
	*out = json_dumps(doc, JSON_COMPACT);
	ret = *out != NULL ? 0 : SB_ENOMEM;
done:
	json_decref(arr);
	json_decref(doc);
	return ret;
}

size_t
sb_jwt_keyset_count(const struct sb_jwt_keyset *set)
{
	return set->n;
}

struct sb_jwt_keyset *
sb_jwt_keyset_retain(struct sb_jwt_keyset *set)
{
	atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
	return set;
}

void
sb_jwt_keyset_release(struct sb_jwt_keyset *set)
{
	if (set == NULL)
		return;
	if (atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < set->n; i++)
		sb_jwt_key_free(set->keys[i]);
	free(set->keys);
	free(set);
}
