/* sb_jwt.h: JSON Web Token signing and verification for access tokens (RFC 7515, 7517, 7518,
 * 7519, 7638, 8725, 9068).
 *
 * The auth service generates key pairs, stores the private key as PEM, publishes the public
 * keys as a JWKS and signs access tokens with sb_jwt_sign. Every edge (gateway, realtime,
 * files) holds one sb_jwt_verifier built from the JWKS and calls sb_jwt_verify on each request.
 *
 * Only ES256 (ECDSA P-256, SHA-256) and RS256 (RSASSA-PKCS1-v1_5, RSA >= 2048 bits, SHA-256)
 * exist here. Each key carries its own algorithm and a token is accepted only if its header
 * `alg` equals the algorithm of the key its `kid` names: `none` and every HMAC algorithm are
 * refused whatever the key set holds. A key's kid is its RFC 7638 thumbprint (base64url
 * SHA-256); a key read from a JWKS keeps the kid the document gives it.
 *
 * Thread safety: keys and key sets are immutable once built and may be shared by any number of
 * threads. A verifier may be used by many threads at once while one of them replaces its key
 * set with sb_jwt_verifier_set_keys. */
#ifndef SB_JWT_H
#define SB_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The largest token sb_jwt_verify looks at; a longer one is SB_JWT_TOO_LARGE. */
#define SB_JWT_MAX_TOKEN 8192
/* Limits of the principal's fields; a longer claim makes the token SB_JWT_BAD_CLAIMS. */
#define SB_JWT_ID_MAX     256  /* sub, tenant_id, client_id, jti, including the NUL */
#define SB_JWT_SCOPE_MAX  2048 /* the whole scope claim, including the NUL */
#define SB_JWT_SCOPES_MAX 64   /* number of space-separated scopes */

enum sb_jwt_alg {
	SB_JWT_ES256 = 1, /* ECDSA P-256 with SHA-256, signature r||s (64 bytes) */
	SB_JWT_RS256 = 2, /* RSASSA-PKCS1-v1_5 with SHA-256, RSA >= 2048 bits */
};

/* Why a token was refused. sb_jwt_verify returns one of these, or SB_ENOMEM, or SB_EUNAVAIL
 * when the revocation hook could not answer (a dependency problem, not the token's fault). The
 * values do not overlap the sb_err codes. sb_jwt_reason_name gives a short label for metrics. */
enum sb_jwt_reason {
	SB_JWT_MALFORMED = -101,     /* not three base64url segments of JSON objects, crit, ... */
	SB_JWT_BAD_ALG = -102,       /* none, HMAC, unknown, or not the alg of the named key */
	SB_JWT_UNKNOWN_KID = -103,   /* no key with this kid: the caller may refetch the JWKS */
	SB_JWT_BAD_SIGNATURE = -104, /* signature does not verify with the named key */
	SB_JWT_EXPIRED = -105,       /* exp is past (beyond the leeway) */
	SB_JWT_NOT_YET_VALID = -106, /* nbf or iat is in the future (beyond the leeway) */
	SB_JWT_BAD_ISS = -107,       /* iss missing or not the expected issuer */
	SB_JWT_BAD_AUD = -108,       /* aud missing or does not contain the expected audience */
	SB_JWT_BAD_TYP = -109,       /* header typ missing or not the required type */
	SB_JWT_REVOKED = -110,       /* the revocation hook says this jti is revoked */
	SB_JWT_TOO_LARGE = -111,     /* longer than SB_JWT_MAX_TOKEN */
	SB_JWT_BAD_CLAIMS = -112,    /* exp/iat/sub/jti missing or of the wrong type, too long */
};

/* sb_jwt_reason_name returns a static snake_case label for a value returned by sb_jwt_verify
 * ("ok", "malformed", "bad_alg", ..., "unavailable", "internal" for anything else). */
const char *sb_jwt_reason_name(int err);

/* ---- keys ---- */

struct sb_jwt_key;

/* sb_jwt_key_generate creates a new key pair: a P-256 key for SB_JWT_ES256 (rsa_bits ignored),
 * or an RSA key of rsa_bits (2048..8192; 0 means 2048) for SB_JWT_RS256. On success *out is
 * the caller's, freed with sb_jwt_key_free. Returns 0, SB_EINVAL or SB_ENOMEM. */
int sb_jwt_key_generate(enum sb_jwt_alg alg, unsigned rsa_bits, struct sb_jwt_key **out);

/* sb_jwt_key_from_pem reads a private key (PKCS#8 or traditional PEM, unencrypted; never
 * prompts) or a public key (SubjectPublicKeyInfo PEM) of len bytes. The algorithm follows from
 * the key: P-256 is ES256, RSA of 2048..8192 bits is RS256; anything else is SB_EINVAL. The
 * caller keeps pem (and should wipe it). On success *out is freed with sb_jwt_key_free. */
int sb_jwt_key_from_pem(const char *pem, size_t len, struct sb_jwt_key **out);

/* sb_jwt_key_private_pem writes key's private key as unencrypted PKCS#8 PEM into *out
 * (NUL-terminated). *out is a SECRET owned by the caller, who wipes it with explicit_bzero and
 * frees it (sb_jwt_secret_free does both). Returns 0, SB_EINVAL (no private key) or SB_ENOMEM. */
int sb_jwt_key_private_pem(const struct sb_jwt_key *key, char **out);

/* sb_jwt_key_public_pem writes key's public key as SubjectPublicKeyInfo PEM into *out, which
 * the caller frees. Returns 0 or SB_ENOMEM. */
int sb_jwt_key_public_pem(const struct sb_jwt_key *key, char **out);

/* sb_jwt_key_public_jwk returns key's public key as a new JWK object (kty, crv/x/y or n/e, kid,
 * alg, use "sig"), owned by the caller (json_decref). Never contains private members. Returns 0
 * or SB_ENOMEM. */
int sb_jwt_key_public_jwk(const struct sb_jwt_key *key, json_t **out);

/* sb_jwt_key_from_jwk makes a public key from one JWK object (EC P-256 or RSA of 2048..8192
 * bits, alg if present matching, use if present "sig", kid required and kept as given; the
 * point must lie on the curve). On success *out is freed with sb_jwt_key_free. Returns 0,
 * SB_EINVAL (not a usable key) or SB_ENOMEM. */
int sb_jwt_key_from_jwk(const json_t *jwk, struct sb_jwt_key **out);

/* sb_jwt_key_thumbprint writes the RFC 7638 JWK thumbprint of key (base64url SHA-256, 43
 * characters and a NUL) into out, of cap bytes. Returns 0, SB_ERANGE (cap < 44) or SB_ENOMEM. */
int sb_jwt_key_thumbprint(const struct sb_jwt_key *key, char *out, size_t cap);

/* sb_jwt_key_kid returns key's kid (borrowed, lives as long as key). */
const char *sb_jwt_key_kid(const struct sb_jwt_key *key);
/* sb_jwt_key_alg returns key's algorithm. */
enum sb_jwt_alg sb_jwt_key_alg(const struct sb_jwt_key *key);
/* sb_jwt_key_has_private tells whether key can sign. */
bool sb_jwt_key_has_private(const struct sb_jwt_key *key);
/* sb_jwt_alg_name returns "ES256" or "RS256" (or "?"), static. */
const char *sb_jwt_alg_name(enum sb_jwt_alg alg);

/* sb_jwt_key_free releases key; private key material is cleared by OpenSSL as it is freed.
 * NULL is ignored. */
void sb_jwt_key_free(struct sb_jwt_key *key);

/* sb_jwt_secret_free wipes the NUL-terminated string s (a PEM from sb_jwt_key_private_pem)
 * with explicit_bzero and frees it. NULL is ignored. */
void sb_jwt_secret_free(char *s);

/* ---- key sets ---- */

struct sb_jwt_keyset;

/* sb_jwt_keyset_new creates an empty key set with one reference, the caller's
 * (sb_jwt_keyset_release). Returns 0 or SB_ENOMEM. */
int sb_jwt_keyset_new(struct sb_jwt_keyset **out);

/* sb_jwt_keyset_add adds the public half of key to set (a copy: the caller keeps key). Only
 * call it while building the set, before it is shared. Returns 0, SB_EEXIST (kid already in the
 * set) or SB_ENOMEM. */
int sb_jwt_keyset_add(struct sb_jwt_keyset *set, const struct sb_jwt_key *key);

/* sb_jwt_keyset_parse_jwks parses a JWKS document ({"keys":[...]}) of len bytes into a new set
 * (one reference, the caller's). As RFC 7517 section 5 asks, entries it cannot use are skipped:
 * unknown kty, curve or alg, use other than "sig", no kid, bad coordinates, RSA under 2048 bits,
 * a kid seen before; *skipped (may be NULL) counts them. A document that is not a JSON object
 * with a "keys" array is SB_EINVAL. Returns 0, SB_EINVAL or SB_ENOMEM. */
int sb_jwt_keyset_parse_jwks(const char *json, size_t len, struct sb_jwt_keyset **out,
                             size_t *skipped);

/* sb_jwt_keyset_to_jwks writes set as a JWKS document into *out (NUL-terminated, the caller
 * frees it). Returns 0 or SB_ENOMEM. */
int sb_jwt_keyset_to_jwks(const struct sb_jwt_keyset *set, char **out);

/* sb_jwt_keyset_count returns the number of keys in set. */
size_t sb_jwt_keyset_count(const struct sb_jwt_keyset *set);

/* sb_jwt_keyset_retain adds a reference to set and returns it. Thread-safe. */
struct sb_jwt_keyset *sb_jwt_keyset_retain(struct sb_jwt_keyset *set);
/* sb_jwt_keyset_release drops a reference; the last one frees the set. NULL is ignored. */
void sb_jwt_keyset_release(struct sb_jwt_keyset *set);

/* ---- signing ---- */

/* sb_jwt_sign signs claims (a JSON object, not modified) with key, which must hold a private
 * key, as a compact JWS whose header is {"alg","kid","typ"} (typ omitted when NULL; access
 * tokens use "at+jwt"). On success *out is a NUL-terminated string the caller frees. Returns 0,
 * SB_EINVAL (not an object, no private key) or SB_ENOMEM. */
int sb_jwt_sign(const struct sb_jwt_key *key, const json_t *claims, const char *typ, char **out);

/* ---- verification ---- */

struct sb_jwt_policy {
	const char *issuer;   /* required: iss must equal it exactly */
	const char *audience; /* required: aud (string or array) must contain it */
	const char *typ;      /* header typ required, compared without case and without an
	                         "application/" prefix; NULL: typ is not checked */
	int64_t leeway_s;     /* allowed clock skew for exp, nbf and iat (0..600) */
	/* now returns the current Unix time in seconds; NULL means the real clock. */
	int64_t (*now)(void *arg);
	void *now_arg;
	/* is_revoked (optional) is called from the verifying thread after every other check has
	 * passed: 1 revoked, 0 not revoked, negative if it cannot tell (sb_jwt_verify then returns
	 * SB_EUNAVAIL: the caller decides whether to fail closed, as it should). */
	int (*is_revoked)(const char *jti, void *arg);
	void *revoked_arg;
};

/* What a valid token says about its caller. Plain data: it may be copied by value. */
struct sb_jwt_principal {
	char sub[SB_JWT_ID_MAX];
	/* the user on whose behalf the client acts: sub, except for a token issued to a client
	 * on its own behalf (sub equal to client_id, RFC 9068 section 2.2), where it is empty */
	char user_id[SB_JWT_ID_MAX];
	char tenant_id[SB_JWT_ID_MAX]; /* empty when the claim is absent */
	char client_id[SB_JWT_ID_MAX]; /* empty when the claim is absent */
	char jti[SB_JWT_ID_MAX];
	char scope[SB_JWT_SCOPE_MAX]; /* the scope claim, each scope NUL-terminated in turn */
	uint16_t scope_off[SB_JWT_SCOPES_MAX];
	size_t nscopes;
	int64_t exp; /* expiry, Unix seconds */
	int64_t iat; /* issue time, Unix seconds */
};

/* sb_jwt_principal_scope returns the i-th scope (i < p->nscopes), borrowed from p. */
const char *sb_jwt_principal_scope(const struct sb_jwt_principal *p, size_t i);
/* sb_jwt_has_scope tells whether the principal's scope list contains scope exactly. */
bool sb_jwt_has_scope(const struct sb_jwt_principal *p, const char *scope);

struct sb_jwt_verifier;

/* sb_jwt_verifier_new creates a verifier with a copy of policy (its strings are copied) and
 * keys (may be NULL: every token is then SB_JWT_UNKNOWN_KID until keys are set); the verifier
 * takes its own reference to keys, the caller keeps its own. Returns 0, SB_EINVAL (no issuer or
 * audience, leeway out of range) or SB_ENOMEM. Free with sb_jwt_verifier_free. */
int sb_jwt_verifier_new(const struct sb_jwt_policy *policy, struct sb_jwt_keyset *keys,
                        struct sb_jwt_verifier **out);

/* sb_jwt_verifier_set_keys replaces the key set atomically (e.g. after a JWKS refetch); safe
 * while other threads verify, which finish with the set they started with. The verifier takes
 * its own reference to keys (may be NULL). */
void sb_jwt_verifier_set_keys(struct sb_jwt_verifier *v, struct sb_jwt_keyset *keys);

/* sb_jwt_verify checks the compact JWS token (len bytes, need not be NUL-terminated) against
 * v's keys and policy. On success it fills *p and returns 0; otherwise it returns an
 * sb_jwt_reason, SB_EUNAVAIL (revocation hook failed) or SB_ENOMEM and *p is zeroed. Thread-safe
 * (many threads may verify with one verifier). Once a header has been seen (an issuer sends the
 * same header for every token of a key) it makes no allocation of its own (OpenSSL may); it
 * uses about 24 KiB of stack. */
int sb_jwt_verify(struct sb_jwt_verifier *v, const char *token, size_t len,
                  struct sb_jwt_principal *p);

/* sb_jwt_verifier_free releases v and its reference to its key set. No thread may be using v.
 * NULL is ignored. */
void sb_jwt_verifier_free(struct sb_jwt_verifier *v);

/* ---- base64url (RFC 4648 section 5, no padding), exposed for the auth service and tests ---- */

/* sb_jwt_b64url_encode writes the unpadded base64url form of n bytes into *out
 * (NUL-terminated, caller frees). Returns 0 or SB_ENOMEM. */
int sb_jwt_b64url_encode(const void *in, size_t n, char **out);

/* sb_jwt_b64url_decode strictly decodes n characters of s into out (room for cap bytes):
 * only A-Z a-z 0-9 - _, no padding, no whitespace, unused trailing bits zero. Sets *outlen.
 * Returns 0, SB_EINVAL (bad input) or SB_ERANGE (cap too small). */
int sb_jwt_b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outlen);

#ifdef SB_JWT_INTERNAL
/* Internals shared by the sb_jwt*.c files; not part of the API. */
#include <pthread.h>
#include <openssl/evp.h>

#define SB__JWT_KID_MAX  128 /* kid accepted from a JWKS, including the NUL */
#define SB__JWT_POOL_MAX 8   /* verification contexts kept per key */

struct sb_jwt_key {
	EVP_PKEY *pkey;
	enum sb_jwt_alg alg;
	bool has_private;
	char kid[SB__JWT_KID_MAX];
	/* initialised EVP_PKEY_verify contexts, reused across verifications */
	pthread_mutex_t pool_mu;
	EVP_PKEY_CTX *pool[SB__JWT_POOL_MAX];
	int npool;
};

/* sb_jwt_key.c */
/* sb__jwt_key_wrap takes ownership of pkey on success (checking it is a usable ES256 or RS256
 * key) and sets the kid to kid, or to the RFC 7638 thumbprint when kid is NULL. */
int sb__jwt_key_wrap(EVP_PKEY *pkey, const char *kid, struct sb_jwt_key **out);
/* sb__jwt_key_verify checks sig over the SHA-256 digest dgst with key (JOSE signature form). */
int sb__jwt_key_verify(struct sb_jwt_key *key, const unsigned char *dgst, const unsigned char *sig,
                       size_t siglen);

/* sb_jwt_jwk.c */
/* sb__jwt_thumbprint computes the RFC 7638 thumbprint of pkey into kid (cap bytes). */
int sb__jwt_thumbprint(EVP_PKEY *pkey, enum sb_jwt_alg alg, char *kid, size_t cap);
/* sb__jwt_keyset_find returns the key of set named kid (len bytes), or NULL. */
struct sb_jwt_key *sb__jwt_keyset_find(const struct sb_jwt_keyset *set, const char *kid,
                                       size_t len);

/* sb_jwt_b64.c */
/* sb__jwt_b64url_encode_to writes n bytes as base64url into out (room for 4*n/3+3). Returns the
 * number of characters written (out is NUL-terminated). */
size_t sb__jwt_b64url_encode_to(const void *in, size_t n, char *out);

/* sb_jwt_scan.c */
#define SB__JWT_SCAN_MAX    (SB_JWT_MAX_TOKEN / 4 * 3) /* largest payload */
#define SB__JWT_MEMBERS_MAX 64                         /* top-level claims */
#define SB__JWT_ITEMS_MAX   64                         /* strings in top-level arrays */

enum sb__jwt_type { SB__JWT_STRING = 1, SB__JWT_NUMBER, SB__JWT_ARRAY, SB__JWT_OTHER };

struct sb__jwt_item {
	const char *str; /* decoded, NUL-terminated, in the arena */
	size_t len;
};

struct sb__jwt_member {
	const char *name; /* decoded, NUL-terminated, in the arena */
	size_t name_len;
	enum sb__jwt_type type;
	const char *str; /* SB__JWT_STRING: decoded value */
	size_t len;
	bool is_int;   /* SB__JWT_NUMBER: no fraction nor exponent: ival, else dval */
	bool in_range; /* the value fits ival / dval */
	long long ival;
	double dval;
	size_t first, count; /* SB__JWT_ARRAY: its string elements are items[first..first+count) */
};

/* The top-level members of a claims object. About 12 KiB: callers keep it on their stack. */
struct sb__jwt_claims {
	size_t n, nitems, used;
	struct sb__jwt_member m[SB__JWT_MEMBERS_MAX];
	struct sb__jwt_item items[SB__JWT_ITEMS_MAX];
	char arena[SB__JWT_SCAN_MAX]; /* decoded strings: never longer than the source */
};

/* sb__jwt_scan_claims parses json (n bytes) strictly as one JSON object into c. 0 or -1. */
int sb__jwt_scan_claims(const char *json, size_t n, struct sb__jwt_claims *c);
/* sb__jwt_claims_get returns the member called name, or NULL. */
const struct sb__jwt_member *sb__jwt_claims_get(const struct sb__jwt_claims *c, const char *name);

/* sb_jwt_claims.c */
/* sb__jwt_check_claims checks payload claims against the policy at time now and fills p. */
int sb__jwt_check_claims(const struct sb__jwt_claims *c, const struct sb_jwt_policy *pol,
                         int64_t now, struct sb_jwt_principal *p);
#endif

#endif
