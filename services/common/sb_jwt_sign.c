/* sb_jwt_sign.c: compact JWS signing (RFC 7515 section 7.1) with ES256 or RS256. */
#define SB_JWT_INTERNAL
#include "sb_jwt.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>

#include "sb_buf.h"
#include "sb_err.h"

/* sb_jwt_sign_raw signs msg with key into sig (room for 1024 bytes) in JOSE form: r||s for
 * ES256, the RSA signature for RS256. */
static int
sb_jwt_sign_raw(const struct sb_jwt_key *key, const char *msg, size_t len, unsigned char *sig,
                size_t *siglen)
{
	unsigned char der[EVP_MAX_MD_SIZE + 1024];
	size_t derlen = sizeof der;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es = NULL;
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	int ret = SB_ENOMEM;

	if (md == NULL)
		return SB_ENOMEM;
	if ((size_t)EVP_PKEY_get_size(key->pkey) > sizeof der)
		goto done;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1 ||
	    EVP_DigestSign(md, der, &derlen, (const unsigned char *)msg, len) != 1)
		goto done;
	if (key->alg == SB_JWT_RS256) {
		memcpy(sig, der, derlen);
		*siglen = derlen;
		ret = 0;
		goto done;
	}
	/* ES256: OpenSSL gives an ASN.1 ECDSA-Sig-Value; JOSE wants r and s as 32 bytes each. */
	es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (es == NULL)
		goto done;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32)
		goto done;
	*siglen = 64;
	ret = 0;
done:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	if (ret != 0)
		ERR_clear_error();
	return ret;
}

/* sb_jwt_sign_segment appends the base64url form of the JSON value j to b. */
static int
sb_jwt_sign_segment(struct sb_buf *b, const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	size_t n;
	int ret;

	if (s == NULL)
		return SB_ENOMEM;
	n = strlen(s);
	ret = sb_buf_reserve(b, n / 3 * 4 + 4);
	if (ret == 0)
		b->len += sb__jwt_b64url_encode_to(s, n, b->data + b->len);
	free(s);
	return ret;
}

int
sb_jwt_sign(const struct sb_jwt_key *key, const json_t *claims, const char *typ, char **out)
{
	struct sb_buf b = SB_BUF_INIT;
	unsigned char sig[1024];
	size_t siglen;
	json_t *hdr;
	int ret;

	if (key == NULL || !key->has_private || !json_is_object(claims))
		return SB_EINVAL;
	hdr = json_pack("{s:s, s:s}", "alg", sb_jwt_alg_name(key->alg), "kid", key->kid);
	if (hdr == NULL)
		return SB_ENOMEM;
	if (typ != NULL && json_object_set_new(hdr, "typ", json_string(typ)) != 0) {
		json_decref(hdr);
		return SB_EINVAL; /* typ is not valid UTF-8 */
	}
	ret = sb_jwt_sign_segment(&b, hdr);
	json_decref(hdr);
	if (ret != 0 || (ret = sb_buf_append(&b, ".", 1)) != 0)
		goto fail;
	if ((ret = sb_jwt_sign_segment(&b, claims)) != 0)
		goto fail;
	if ((ret = sb_jwt_sign_raw(key, b.data, b.len, sig, &siglen)) != 0)
		goto fail;
	if ((ret = sb_buf_append(&b, ".", 1)) != 0 ||
	    (ret = sb_buf_reserve(&b, siglen / 3 * 4 + 4)))
		goto fail;
	b.len += sb__jwt_b64url_encode_to(sig, siglen, b.data + b.len);
	*out = sb_buf_steal(&b);
	return *out != NULL ? 0 : SB_ENOMEM;
fail:
	sb_buf_free(&b);
	return ret;
}
