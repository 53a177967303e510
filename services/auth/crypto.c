/* crypto.c: secret hashing (PBKDF2-HMAC-SHA256), opaque tokens, SHA-256 and AES-256-GCM sealing
 * of private keys. Pure functions over OpenSSL; nothing here touches the database. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "sb_err.h"
#include "sb_util_hex.h"
#include "sb_util_rand.h"

#define AUTH_SALT_LEN 16
#define AUTH_HASH_LEN 32
#define AUTH_IV_LEN   12
#define AUTH_TAG_LEN  16

static int
auth_pbkdf2(const char *secret, const unsigned char *salt, size_t saltlen, long long iter,
            unsigned char out[AUTH_HASH_LEN])
{
	if (iter < 1 || iter > 100000000)
		return SB_EINVAL;
	if (PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, (int)saltlen, (int)iter,
	                      EVP_sha256(), AUTH_HASH_LEN, out) != 1)
		return SB_EIO;
	return 0;
}

int
auth_secret_hash(const char *secret, long long iterations, char *out, size_t cap)
{
	unsigned char salt[AUTH_SALT_LEN], dk[AUTH_HASH_LEN];
	char s64[32], d64[48];
	int ret = SB_EIO;
	if (secret == NULL || cap < 128)
		return SB_EINVAL;
	if (sb_rand_bytes(salt, sizeof(salt)) != 0)
		goto done;
	if ((ret = auth_pbkdf2(secret, salt, sizeof(salt), iterations, dk)) != 0)
		goto done;
	char *e = NULL;
	if ((ret = sb_jwt_b64url_encode(salt, sizeof(salt), &e)) != 0)
		goto done;
	snprintf(s64, sizeof(s64), "%s", e);
	free(e);
	if ((ret = sb_jwt_b64url_encode(dk, sizeof(dk), &e)) != 0)
		goto done;
	snprintf(d64, sizeof(d64), "%s", e);
	sb_jwt_secret_free(e);
	int w = snprintf(out, cap, "pbkdf2-sha256$%lld$%s$%s", iterations, s64, d64);
	ret = (w < 0 || (size_t)w >= cap) ? SB_ERANGE : 0;
done:
	explicit_bzero(dk, sizeof(dk));
	explicit_bzero(d64, sizeof(d64));
	return ret;
}

int
auth_secret_verify(const char *secret, const char *stored)
{
	unsigned char salt[64], want[64], got[AUTH_HASH_LEN];
	size_t saltlen = 0, wantlen = 0;
	char *end = NULL;
	int ok = 0;
	if (secret == NULL || stored == NULL || strncmp(stored, "pbkdf2-sha256$", 14) != 0)
		return 0;
	const char *p = stored + 14;
	long long iter = strtoll(p, &end, 10);
	if (end == p || *end != '$')
		return 0;
	const char *s = end + 1;
	const char *d = strchr(s, '$');
	if (d == NULL ||
	    sb_jwt_b64url_decode(s, (size_t)(d - s), salt, sizeof(salt), &saltlen) != 0 ||
	    sb_jwt_b64url_decode(d + 1, strlen(d + 1), want, sizeof(want), &wantlen) != 0 ||
	    wantlen != AUTH_HASH_LEN || saltlen < 8)
		return 0;
	if (auth_pbkdf2(secret, salt, saltlen, iter, got) == 0)
		ok = CRYPTO_memcmp(got, want, AUTH_HASH_LEN) == 0;
	explicit_bzero(got, sizeof(got));
	explicit_bzero(want, sizeof(want));
	return ok;
}

int
auth_random_token(const char *prefix, size_t nbytes, char *out, size_t cap)
{
	unsigned char raw[64];
	char *e = NULL;
	if (nbytes == 0 || nbytes > sizeof(raw))
		return SB_EINVAL;
	if (sb_rand_bytes(raw, nbytes) != 0)
		return SB_EIO;
	int rv = sb_jwt_b64url_encode(raw, nbytes, &e);
	explicit_bzero(raw, sizeof(raw));
	if (rv != 0)
		return rv;
	int w = snprintf(out, cap, "%s%s", prefix, e);
	sb_jwt_secret_free(e);
	if (w < 0 || (size_t)w >= cap) {
		explicit_bzero(out, cap);
		return SB_ERANGE;
	}
	return 0;
}

int
auth_sha256_hex(const char *s, char out[65])
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	if (SHA256((const unsigned char *)s, strlen(s), d) == NULL)
		return SB_EIO;
	sb_hex_encode(d, sizeof(d), out);
	out[2 * sizeof(d)] = '\0';
	return 0;
}

int
auth_seal(const unsigned char kek[32], const char *aad, const char *plain, size_t n, char **out)
{
	unsigned char iv[AUTH_IV_LEN];
	unsigned char *ct = malloc(n + AUTH_TAG_LEN);
	char *iv64 = NULL, *ct64 = NULL;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, ret = SB_EIO;
	if (ct == NULL || ctx == NULL) {
		ret = SB_ENOMEM;
		goto done;
	}
	if (n > (size_t)1 << 20 || sb_rand_bytes(iv, sizeof(iv)) != 0)
		goto done;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kek, iv) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &len, (const unsigned char *)plain, (int)n) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + len, &len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AUTH_TAG_LEN, ct + n) != 1)
		goto done;
	if (sb_jwt_b64url_encode(iv, sizeof(iv), &iv64) != 0 ||
	    sb_jwt_b64url_encode(ct, n + AUTH_TAG_LEN, &ct64) != 0) {
		ret = SB_ENOMEM;
		goto done;
	}
	size_t sz = strlen(iv64) + strlen(ct64) + 16;
	if ((*out = malloc(sz)) == NULL) {
		ret = SB_ENOMEM;
		goto done;
	}
	snprintf(*out, sz, "aes256gcm:%s:%s", iv64, ct64);
	ret = 0;
done:
	EVP_CIPHER_CTX_free(ctx);
	free(iv64);
	free(ct64);
	free(ct);
	return ret;
}

int
auth_open(const unsigned char kek[32], const char *aad, const char *sealed, char **out)
{
	unsigned char iv[32];
	size_t ivlen = 0, ctlen = 0;
	int len = 0, ret = SB_EINVAL;
	if (strncmp(sealed, "aes256gcm:", 10) != 0)
		return SB_EINVAL;
	const char *ivs = sealed + 10, *sep = strchr(ivs, ':');
	if (sep == NULL)
		return SB_EINVAL;
	size_t cap = strlen(sep + 1);
	unsigned char *ct = malloc(cap + 1);
	char *plain = malloc(cap + 1);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ct == NULL || plain == NULL || ctx == NULL) {
		ret = SB_ENOMEM;
		goto done;
	}
	if (sb_jwt_b64url_decode(ivs, (size_t)(sep - ivs), iv, sizeof(iv), &ivlen) != 0 ||
	    ivlen != AUTH_IV_LEN || sb_jwt_b64url_decode(sep + 1, cap, ct, cap, &ctlen) != 0 ||
	    ctlen < AUTH_TAG_LEN)
		goto done;
	size_t n = ctlen - AUTH_TAG_LEN;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kek, iv) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)plain, &len, ct, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AUTH_TAG_LEN, ct + n) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + len, &len) != 1)
		goto done;
	plain[n] = '\0';
	*out = plain;
	plain = NULL;
	ret = 0;
done:
	EVP_CIPHER_CTX_free(ctx);
	if (plain != NULL) {
		explicit_bzero(plain, cap + 1);
		free(plain);
	}
	free(ct);
	return ret;
}
