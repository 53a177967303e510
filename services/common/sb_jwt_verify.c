/* sb_jwt_verify.c: the verifier: a replaceable key set and a policy, and the verification of a
 * compact JWS access token in the order of RFC 8725 (cheap structural checks, then the
 * signature, and only then the claims of a payload that is known to come from the issuer). */
#define SB_JWT_INTERNAL
#include "sb_jwt.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/sha.h>

#include "sb_err.h"

#define SB_JWT_LEEWAY_MAX 600
#define SB_JWT_SIG_MAX    1024 /* RSA 8192 */
#define SB_JWT_HDR_CACHE  4    /* headers remembered per verifier */
#define SB_JWT_HDR_SEG    384  /* longest header segment remembered */

/* A header segment already found valid for the current key set, and the key it names. A
 * header's validity depends only on its bytes, the key set and the policy, and an issuer sends
 * the same header bytes in every token of a key, so most verifications skip the header's
 * decoding and parsing. */
struct sb_jwt_hdr_seen {
	size_t len; /* 0: empty slot */
	struct sb_jwt_key *key;
	char seg[SB_JWT_HDR_SEG];
};

struct sb_jwt_verifier {
	struct sb_jwt_policy pol; /* strings point at the copies below */
	char *issuer, *audience, *typ;
	pthread_mutex_t mu; /* guards keys (the pointer, not the set, which is immutable), seen */
	struct sb_jwt_keyset *keys;
	struct sb_jwt_hdr_seen seen[SB_JWT_HDR_CACHE];
	unsigned seen_next;
};

int
sb_jwt_verifier_new(const struct sb_jwt_policy *policy, struct sb_jwt_keyset *keys,
                    struct sb_jwt_verifier **out)
{
	struct sb_jwt_verifier *v;

	if (policy == NULL || policy->issuer == NULL || policy->issuer[0] == '\0' ||
	    policy->audience == NULL || policy->audience[0] == '\0' || policy->leeway_s < 0 ||
	    policy->leeway_s > SB_JWT_LEEWAY_MAX)
		return SB_EINVAL;
	v = calloc(1, sizeof *v);
	if (v == NULL)
		return SB_ENOMEM;
	v->pol = *policy;
	v->issuer = strdup(policy->issuer);
	v->audience = strdup(policy->audience);
	v->typ = policy->typ != NULL ? strdup(policy->typ) : NULL;
	if (v->issuer == NULL || v->audience == NULL || (policy->typ != NULL && v->typ == NULL) ||
	    pthread_mutex_init(&v->mu, NULL) != 0) {
		free(v->issuer);
		free(v->audience);
		free(v->typ);
		free(v);
		return SB_ENOMEM;
	}
	v->pol.issuer = v->issuer;
	v->pol.audience = v->audience;
	v->pol.typ = v->typ;
	v->keys = keys != NULL ? sb_jwt_keyset_retain(keys) : NULL;
	*out = v;
	return 0;
}

void
sb_jwt_verifier_set_keys(struct sb_jwt_verifier *v, struct sb_jwt_keyset *keys)
{
	struct sb_jwt_keyset *old;

	if (keys != NULL)
		sb_jwt_keyset_retain(keys);
	pthread_mutex_lock(&v->mu);
	old = v->keys;
	v->keys = keys;
	for (int i = 0; i < SB_JWT_HDR_CACHE; i++)
		v->seen[i].len = 0; /* their keys belong to the old set */
	pthread_mutex_unlock(&v->mu);
	/* Verifications still using old hold their own reference; the last one frees it. */
	sb_jwt_keyset_release(old);
}

void
sb_jwt_verifier_free(struct sb_jwt_verifier *v)
{
	if (v == NULL)
		return;
	sb_jwt_keyset_release(v->keys);
	pthread_mutex_destroy(&v->mu);
	free(v->issuer);
	free(v->audience);
	free(v->typ);
	free(v);
}

/* sb_jwt_verify_keys returns a reference to v's current key set (or NULL), and in *key the key
 * named by the header segment seg (len bytes) if it was already found valid, else NULL. */
static struct sb_jwt_keyset *
sb_jwt_verify_keys(struct sb_jwt_verifier *v, const char *seg, size_t len, struct sb_jwt_key **key)
{
	struct sb_jwt_keyset *set;

	*key = NULL;
	pthread_mutex_lock(&v->mu);
	set = v->keys != NULL ? sb_jwt_keyset_retain(v->keys) : NULL;
	for (int i = 0; i < SB_JWT_HDR_CACHE; i++) {
		if (v->seen[i].len == len && memcmp(v->seen[i].seg, seg, len) == 0) {
			*key = v->seen[i].key;
			break;
		}
	}
	pthread_mutex_unlock(&v->mu);
	return set;
}

/* sb_jwt_verify_remember records that header segment seg names key of set, if set is still
 * v's current set. */
static void
sb_jwt_verify_remember(struct sb_jwt_verifier *v, const struct sb_jwt_keyset *set, const char *seg,
                       size_t len, struct sb_jwt_key *key)
{
	struct sb_jwt_hdr_seen *e;

	if (len > SB_JWT_HDR_SEG)
		return;
	pthread_mutex_lock(&v->mu);
	if (v->keys == set) {
		e = &v->seen[v->seen_next++ % SB_JWT_HDR_CACHE];
		memcpy(e->seg, seg, len);
		e->len = len;
		e->key = key;
	}
	pthread_mutex_unlock(&v->mu);
}

/* sb_jwt_verify_json decodes the base64url segment s (n characters) and parses it as a JSON
 * object, refusing duplicate member names. NULL if any of that fails. */
static json_t *
sb_jwt_verify_json(const char *s, size_t n)
{
	unsigned char buf[SB_JWT_MAX_TOKEN / 4 * 3];
	size_t len;
	json_t *j;

	if (n == 0 || sb_jwt_b64url_decode(s, n, buf, sizeof buf, &len) != 0)
		return NULL;
	j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* sb_jwt_typ_is compares a typ value with the required one as RFC 7515 section 4.1.9 says:
 * without case, and with "application/" optional. */
static bool
sb_jwt_typ_is(const char *have, const char *want)
{
	static const char prefix[] = "application/";
	size_t pn = sizeof prefix - 1;

	if (strncasecmp(have, prefix, pn) == 0)
		have += pn;
	if (strncasecmp(want, prefix, pn) == 0)
		want += pn;
	return strcasecmp(have, want) == 0;
}

/* sb_jwt_verify_header checks the protected header h and returns in *key the key of set (may
 * be NULL) it names, or an error. */
static int
sb_jwt_verify_header(struct sb_jwt_verifier *v, const json_t *h, const struct sb_jwt_keyset *set,
                     struct sb_jwt_key **key)
{
	const json_t *alg = json_object_get(h, "alg"), *kid = json_object_get(h, "kid");
	const json_t *typ = json_object_get(h, "typ");
	enum sb_jwt_alg a;

	if (!json_is_string(alg))
		return SB_JWT_MALFORMED;
	/* Only the two asymmetric algorithms exist here: none and HS* are refused outright. */
	if (strcmp(json_string_value(alg), "ES256") == 0)
		a = SB_JWT_ES256;
	else if (strcmp(json_string_value(alg), "RS256") == 0)
		a = SB_JWT_RS256;
	else
		return SB_JWT_BAD_ALG;
	/* We implement no extension, so any critical one makes the token unusable (7515 4.1.11). */
	if (json_object_get(h, "crit") != NULL)
		return SB_JWT_MALFORMED;
	if (v->pol.typ != NULL &&
	    (!json_is_string(typ) || !sb_jwt_typ_is(json_string_value(typ), v->pol.typ)))
		return SB_JWT_BAD_TYP;
	if (!json_is_string(kid) || json_string_length(kid) == 0)
		return SB_JWT_MALFORMED;
	*key = set != NULL
	           ? sb__jwt_keyset_find(set, json_string_value(kid), json_string_length(kid))
	           : NULL;
	if (*key == NULL)
		return SB_JWT_UNKNOWN_KID;
	/* The key decides the algorithm, not the token (RFC 8725 section 3.1). */
	if ((*key)->alg != a)
		return SB_JWT_BAD_ALG;
	return 0;
}

/* sb_jwt_now returns the policy's time. */
static int64_t
sb_jwt_now(const struct sb_jwt_policy *pol)
{
	if (pol->now != NULL)
		return pol->now(pol->now_arg);
	return (int64_t)time(NULL);
}

int
sb_jwt_verify(struct sb_jwt_verifier *v, const char *token, size_t len, struct sb_jwt_principal *p)
{
	unsigned char sig[SB_JWT_SIG_MAX], dgst[SHA256_DIGEST_LENGTH];
	const char *dot1, *dot2;
	struct sb_jwt_keyset *set = NULL;
	struct sb_jwt_key *key = NULL;
	unsigned char payload[SB__JWT_SCAN_MAX];
	struct sb__jwt_claims claims;
	json_t *hdr = NULL;
	size_t siglen, plen;
	int ret = SB_JWT_MALFORMED, r;

	memset(p, 0, sizeof *p);
	if (token == NULL || len == 0)
		return SB_JWT_MALFORMED;
	if (len > SB_JWT_MAX_TOKEN)
		return SB_JWT_TOO_LARGE;
	dot1 = memchr(token, '.', len);
	dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		return SB_JWT_MALFORMED;
	set = sb_jwt_verify_keys(v, token, (size_t)(dot1 - token), &key);
	if (key == NULL) {
		hdr = sb_jwt_verify_json(token, (size_t)(dot1 - token));
		if (hdr == NULL)
			goto done;
		if ((ret = sb_jwt_verify_header(v, hdr, set, &key)) != 0)
			goto done;
		sb_jwt_verify_remember(v, set, token, (size_t)(dot1 - token), key);
	}
	ret = SB_JWT_MALFORMED;
	if (dot2 + 1 == token + len ||
	    sb_jwt_b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof sig,
	                         &siglen) != 0)
		goto done;
	SHA256((const unsigned char *)token, (size_t)(dot2 - token), dgst);
	if ((ret = sb__jwt_key_verify(key, dgst, sig, siglen)) != 0)
		goto done;
	/* From here on the payload is the issuer's own. */
	ret = SB_JWT_MALFORMED;
	if (dot2 == dot1 + 1 ||
	    sb_jwt_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof payload,
	                         &plen) != 0 ||
	    sb__jwt_scan_claims((const char *)payload, plen, &claims) != 0)
		goto done;
	if ((ret = sb__jwt_check_claims(&claims, &v->pol, sb_jwt_now(&v->pol), p)) != 0)
		goto done;
	if (v->pol.is_revoked != NULL) {
		r = v->pol.is_revoked(p->jti, v->pol.revoked_arg);
		ret = r == 0 ? 0 : r > 0 ? SB_JWT_REVOKED : SB_EUNAVAIL;
	}
done:
	json_decref(hdr);
	sb_jwt_keyset_release(set);
	if (ret != 0)
		memset(p, 0, sizeof *p);
	return ret;
}
