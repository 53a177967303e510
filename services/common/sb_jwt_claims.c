/* sb_jwt_claims.c: the claims of an access token (RFC 7519 section 4.1, RFC 9068 section 2.2)
 * checked against a policy and turned into a principal; reason names for metrics. */
#define SB_JWT_INTERNAL
#include "sb_jwt.h"

#include <math.h>
#include <string.h>

#include "sb_err.h"

#define SB_JWT_TIME_MAX (INT64_C(1) << 53) /* times past this are nonsense, and would overflow */

static const struct {
	int code;
	const char *name;
} sb_jwt_reasons[] = {
	{ 0, "ok" },
	{ SB_JWT_MALFORMED, "malformed" },
	{ SB_JWT_BAD_ALG, "bad_alg" },
	{ SB_JWT_UNKNOWN_KID, "unknown_kid" },
	{ SB_JWT_BAD_SIGNATURE, "bad_signature" },
	{ SB_JWT_EXPIRED, "expired" },
	{ SB_JWT_NOT_YET_VALID, "not_yet_valid" },
	{ SB_JWT_BAD_ISS, "bad_iss" },
	{ SB_JWT_BAD_AUD, "bad_aud" },
	{ SB_JWT_BAD_TYP, "bad_typ" },
	{ SB_JWT_REVOKED, "revoked" },
	{ SB_JWT_TOO_LARGE, "too_large" },
	{ SB_JWT_BAD_CLAIMS, "bad_claims" },
	{ SB_EUNAVAIL, "unavailable" },
	{ SB_ENOMEM, "out_of_memory" },
};

const char *
sb_jwt_reason_name(int err)
{
	for (size_t i = 0; i < sizeof sb_jwt_reasons / sizeof sb_jwt_reasons[0]; i++)
		if (sb_jwt_reasons[i].code == err)
			return sb_jwt_reasons[i].name;
	return "internal";
}

/* sb_jwt_claim_time reads the NumericDate claim name of c into *t. Returns 1 if present and
 * valid, 0 if absent, -1 if not a number or out of range. */
static int
sb_jwt_claim_time(const struct sb__jwt_claims *c, const char *name, int64_t *t)
{
	const struct sb__jwt_member *m = sb__jwt_claims_get(c, name);

	if (m == NULL)
		return 0;
	if (m->type != SB__JWT_NUMBER || !m->in_range)
		return -1;
	if (m->is_int) {
		if (m->ival < 0 || m->ival > SB_JWT_TIME_MAX)
			return -1;
		*t = (int64_t)m->ival;
		return 1;
	}
	if (!isfinite(m->dval) || m->dval < 0 || m->dval > (double)SB_JWT_TIME_MAX)
		return -1;
	*t = (int64_t)floor(m->dval);
	return 1;
}

/* sb_jwt_claim_str copies the string claim name of c into out (cap bytes). Returns 1 if copied,
 * 0 if absent, -1 if not a string, empty or too long. (The scanner refuses \u0000, so a string
 * holds no NUL.) */
static int
sb_jwt_claim_str(const struct sb__jwt_claims *c, const char *name, char *out, size_t cap)
{
	const struct sb__jwt_member *m = sb__jwt_claims_get(c, name);

	if (m == NULL)
		return 0;
	if (m->type != SB__JWT_STRING || m->len == 0 || m->len >= cap)
		return -1;
	memcpy(out, m->str, m->len + 1);
	return 1;
}

/* sb_jwt_claim_aud tells whether aud (a string or an array of strings) contains want. */
static bool
sb_jwt_claim_aud(const struct sb__jwt_claims *c, const char *want)
{
	const struct sb__jwt_member *m = sb__jwt_claims_get(c, "aud");

	if (m == NULL)
		return false;
	if (m->type == SB__JWT_STRING)
		return strcmp(m->str, want) == 0;
	if (m->type != SB__JWT_ARRAY)
		return false;
	for (size_t i = m->first; i < m->first + m->count; i++)
		if (strcmp(c->items[i].str, want) == 0)
			return true;
	return false;
}

/* sb_jwt_claim_scopes splits the space-separated scope claim (RFC 6749 section 3.3) of c into
 * p's scope list. */
static int
sb_jwt_claim_scopes(const struct sb__jwt_claims *c, struct sb_jwt_principal *p)
{
	int r = sb_jwt_claim_str(c, "scope", p->scope, sizeof p->scope);
	char *s = p->scope;
	size_t i = 0;

	if (r < 0)
		return r;
	while (r > 0 && s[i] != '\0') {
		if (s[i] == ' ') {
			s[i++] = '\0'; /* runs of spaces are tolerated: empty scopes are dropped */
			continue;
		}
		if (p->nscopes == SB_JWT_SCOPES_MAX)
			return -1;
		p->scope_off[p->nscopes++] = (uint16_t)i;
		while (s[i] != '\0' && s[i] != ' ')
			i++;
	}
	return 0;
}

int
sb__jwt_check_claims(const struct sb__jwt_claims *c, const struct sb_jwt_policy *pol, int64_t now,
                     struct sb_jwt_principal *p)
{
	const struct sb__jwt_member *iss = sb__jwt_claims_get(c, "iss");
	int64_t nbf;
	int has_nbf;

	if (sb_jwt_claim_time(c, "exp", &p->exp) != 1 || sb_jwt_claim_time(c, "iat", &p->iat) != 1)
		return SB_JWT_BAD_CLAIMS;
	if ((has_nbf = sb_jwt_claim_time(c, "nbf", &nbf)) < 0)
		return SB_JWT_BAD_CLAIMS;
	if (now >= p->exp + pol->leeway_s)
		return SB_JWT_EXPIRED;
	if (p->iat > now + pol->leeway_s || (has_nbf && nbf > now + pol->leeway_s))
		return SB_JWT_NOT_YET_VALID;
	if (iss == NULL || iss->type != SB__JWT_STRING || strcmp(iss->str, pol->issuer) != 0)
		return SB_JWT_BAD_ISS;
	if (!sb_jwt_claim_aud(c, pol->audience))
		return SB_JWT_BAD_AUD;
	if (sb_jwt_claim_str(c, "sub", p->sub, sizeof p->sub) != 1 ||
	    sb_jwt_claim_str(c, "jti", p->jti, sizeof p->jti) != 1 ||
	    sb_jwt_claim_str(c, "client_id", p->client_id, sizeof p->client_id) < 0 ||
	    sb_jwt_claim_str(c, "tenant_id", p->tenant_id, sizeof p->tenant_id) < 0 ||
	    sb_jwt_claim_scopes(c, p) < 0)
		return SB_JWT_BAD_CLAIMS;
	/* RFC 9068 section 2.2: with no resource owner, sub is the client's own id. */
	if (strcmp(p->sub, p->client_id) != 0)
		memcpy(p->user_id, p->sub, sizeof p->user_id);
	return 0;
}

const char *
sb_jwt_principal_scope(const struct sb_jwt_principal *p, size_t i)
{
	return i < p->nscopes ? p->scope + p->scope_off[i] : NULL;
}

bool
sb_jwt_has_scope(const struct sb_jwt_principal *p, const char *scope)
{
	for (size_t i = 0; i < p->nscopes; i++)
		if (strcmp(p->scope + p->scope_off[i], scope) == 0)
			return true;
	return false;
}
