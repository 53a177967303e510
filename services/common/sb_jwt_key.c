/* sb_jwt_key.c: ES256 and RS256 keys: generation, PEM in and out, and the verification of one
 * signature with a pool of ready OpenSSL contexts (so that a verification allocates nothing). */
#define SB_JWT_INTERNAL
#include "sb_jwt.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "sb_err.h"

#define SB_JWT_RSA_MIN_BITS 2048
#define SB_JWT_RSA_MAX_BITS 8192

const char *
sb_jwt_alg_name(enum sb_jwt_alg alg)
{
	switch (alg) {
	case SB_JWT_ES256:
		return "ES256";
	case SB_JWT_RS256:
		return "RS256";
	}
	return "?";
}

/* sb_jwt_key_classify tells which algorithm pkey is usable with, or 0 if none. */
static enum sb_jwt_alg
sb_jwt_key_classify(EVP_PKEY *pkey)
{
	char group[64];

	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_group_name(pkey, group, sizeof group, NULL) != 1)
			return 0;
		if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)
			return 0;
		return SB_JWT_ES256;
	}
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		int bits = EVP_PKEY_get_bits(pkey);
		if (bits < SB_JWT_RSA_MIN_BITS || bits > SB_JWT_RSA_MAX_BITS)
			return 0;
		return SB_JWT_RS256;
	}
	return 0;
}

/* sb_jwt_key_wrap_checked is sb__jwt_key_wrap with has_private known. */
static int
sb_jwt_key_wrap_checked(EVP_PKEY *pkey, bool has_private, const char *kid, struct sb_jwt_key **out)
{
	struct sb_jwt_key *k;
	enum sb_jwt_alg alg = sb_jwt_key_classify(pkey);
	int ret;

	if (alg == 0)
		return SB_EINVAL;
	if (kid != NULL && (kid[0] == '\0' || strlen(kid) >= SB__JWT_KID_MAX))
		return SB_EINVAL;
	k = calloc(1, sizeof *k);
	if (k == NULL)
		return SB_ENOMEM;
	if (kid != NULL) {
		strcpy(k->kid, kid);
	} else if ((ret = sb__jwt_thumbprint(pkey, alg, k->kid, sizeof k->kid)) != 0) {
		free(k);
		return ret;
	}
	if (pthread_mutex_init(&k->pool_mu, NULL) != 0) {
		free(k);
		return SB_ENOMEM;
	}
	k->pkey = pkey;
	k->alg = alg;
	k->has_private = has_private;
	*out = k;
	return 0;
}

int
sb__jwt_key_wrap(EVP_PKEY *pkey, const char *kid, struct sb_jwt_key **out)
{
	return sb_jwt_key_wrap_checked(pkey, false, kid, out);
}

int
sb_jwt_key_generate(enum sb_jwt_alg alg, unsigned rsa_bits, struct sb_jwt_key **out)
{
	EVP_PKEY *pkey;
	int ret;

	if (alg == SB_JWT_ES256) {
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	} else if (alg == SB_JWT_RS256) {
		if (rsa_bits == 0)
			rsa_bits = SB_JWT_RSA_MIN_BITS;
		if (rsa_bits < SB_JWT_RSA_MIN_BITS || rsa_bits > SB_JWT_RSA_MAX_BITS)
			return SB_EINVAL;
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits);
	} else {
		return SB_EINVAL;
	}
	if (pkey == NULL)
		return SB_ENOMEM;
	ret = sb_jwt_key_wrap_checked(pkey, true, NULL, out);
	if (ret != 0)
		EVP_PKEY_free(pkey);
	return ret;
}

/* sb_jwt_key_no_passphrase refuses to decrypt: keys are stored unencrypted, and OpenSSL's
 * default callback would prompt on the terminal. */
static int
sb_jwt_key_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

int
sb_jwt_key_from_pem(const char *pem, size_t len, struct sb_jwt_key **out)
{
	BIO *bio;
	EVP_PKEY *pkey;
	bool priv = true;
	int ret;

	if (pem == NULL || len == 0 || len > 64 * 1024)
		return SB_EINVAL;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return SB_ENOMEM;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, sb_jwt_key_no_passphrase, NULL);
	if (pkey == NULL) {
		priv = false;
		(void)BIO_reset(bio);
		pkey = PEM_read_bio_PUBKEY(bio, NULL, sb_jwt_key_no_passphrase, NULL);
	}
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL)
		return SB_EINVAL;
	ret = sb_jwt_key_wrap_checked(pkey, priv, NULL, out);
	if (ret != 0)
		EVP_PKEY_free(pkey);
	return ret;
}

/* sb_jwt_key_bio_string copies the contents of bio into a new NUL-terminated string. */
static int
sb_jwt_key_bio_string(BIO *bio, char **out)
{
	char *data, *s;
	long n = BIO_get_mem_data(bio, &data);

	if (n <= 0)
		return SB_ENOMEM;
	s = malloc((size_t)n + 1);
	if (s == NULL)
		return SB_ENOMEM;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	return 0;
}

int
sb_jwt_key_private_pem(const struct sb_jwt_key *key, char **out)
{
	BIO *bio;
	int ret = SB_ENOMEM;

	if (!key->has_private)
		return SB_EINVAL;
	/* A secure-memory BIO clears its buffer when it grows and when it is freed. */
	bio = BIO_new(BIO_s_secmem());
	if (bio == NULL)
		return SB_ENOMEM;
	if (PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto fail;
	ret = sb_jwt_key_bio_string(bio, out);
fail:
	BIO_free(bio);
	return ret;
}

int
sb_jwt_key_public_pem(const struct sb_jwt_key *key, char **out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int ret = SB_ENOMEM;

	if (bio == NULL)
		return SB_ENOMEM;
	if (PEM_write_bio_PUBKEY(bio, key->pkey) != 1)
		goto fail;
	ret = sb_jwt_key_bio_string(bio, out);
fail:
	BIO_free(bio);
	return ret;
}

void
sb_jwt_secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

const char *
sb_jwt_key_kid(const struct sb_jwt_key *key)
{
	return key->kid;
}

enum sb_jwt_alg
sb_jwt_key_alg(const struct sb_jwt_key *key)
{
	return key->alg;
}

bool
sb_jwt_key_has_private(const struct sb_jwt_key *key)
{
	return key->has_private;
}

void
sb_jwt_key_free(struct sb_jwt_key *key)
{
	if (key == NULL)
		return;
	for (int i = 0; i < key->npool; i++)
		EVP_PKEY_CTX_free(key->pool[i]);
	pthread_mutex_destroy(&key->pool_mu);
	/* EVP_PKEY_free clears private BIGNUMs (BN_clear_free) as it releases them. */
	EVP_PKEY_free(key->pkey);
	free(key);
}

/* sb_jwt_key_ctx_get takes a verification context from key's pool, or makes one. */
static EVP_PKEY_CTX *
sb_jwt_key_ctx_get(struct sb_jwt_key *key)
{
	EVP_PKEY_CTX *ctx = NULL;

	pthread_mutex_lock(&key->pool_mu);
	if (key->npool > 0)
		ctx = key->pool[--key->npool];
	pthread_mutex_unlock(&key->pool_mu);
	if (ctx != NULL)
		return ctx;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
	if (ctx == NULL)
		return NULL;
	if (EVP_PKEY_verify_init(ctx) != 1 || EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1)
		goto fail;
	if (key->alg == SB_JWT_RS256 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
		goto fail;
	return ctx;
fail:
	EVP_PKEY_CTX_free(ctx);
	return NULL;
}

/* sb_jwt_key_ctx_put returns ctx to key's pool (or frees it when the pool is full). */
static void
sb_jwt_key_ctx_put(struct sb_jwt_key *key, EVP_PKEY_CTX *ctx)
{
	pthread_mutex_lock(&key->pool_mu);
	if (key->npool < SB__JWT_POOL_MAX) {
		key->pool[key->npool++] = ctx;
		ctx = NULL;
	}
	pthread_mutex_unlock(&key->pool_mu);
	EVP_PKEY_CTX_free(ctx);
}

/* sb_jwt_der_int appends the DER INTEGER of the n-byte big-endian unsigned v to out. */
static size_t
sb_jwt_der_int(unsigned char *out, const unsigned char *v, size_t n)
{
	size_t o = 0;

	while (n > 1 && v[0] == 0) {
		v++;
		n--;
	}
	out[o++] = 0x02;
	out[o++] = (unsigned char)(n + (v[0] & 0x80 ? 1 : 0));
	if (v[0] & 0x80)
		out[o++] = 0;
	memcpy(out + o, v, n);
	return o + n;
}

/* sb_jwt_es256_der turns the JOSE form r||s (64 bytes) into an ASN.1 ECDSA-Sig-Value in der
 * (room for 72 bytes) and returns its length. */
static size_t
sb_jwt_es256_der(const unsigned char *raw, unsigned char *der)
{
	size_t n = 2;

	n += sb_jwt_der_int(der + n, raw, 32);
	n += sb_jwt_der_int(der + n, raw + 32, 32);
	der[0] = 0x30;
	der[1] = (unsigned char)(n - 2);
	return n;
}

int
sb__jwt_key_verify(struct sb_jwt_key *key, const unsigned char *dgst, const unsigned char *sig,
                   size_t siglen)
{
	unsigned char der[72];
	EVP_PKEY_CTX *ctx;
	int ok;

	if (key->alg == SB_JWT_ES256) {
		if (siglen != 64)
			return SB_JWT_BAD_SIGNATURE;
		siglen = sb_jwt_es256_der(sig, der);
		sig = der;
	} else if (siglen != (size_t)EVP_PKEY_get_size(key->pkey)) {
		return SB_JWT_BAD_SIGNATURE;
	}
	ctx = sb_jwt_key_ctx_get(key);
	if (ctx == NULL)
		return SB_ENOMEM;
	ok = EVP_PKEY_verify(ctx, sig, siglen, dgst, 32);
	sb_jwt_key_ctx_put(key, ctx);
	if (ok != 1) {
		ERR_clear_error();
		return SB_JWT_BAD_SIGNATURE;
	}
	return 0;
}
