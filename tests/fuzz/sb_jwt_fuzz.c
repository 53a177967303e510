/* sb_jwt_fuzz.c: libFuzzer target for the untrusted-input parsers of sb_jwt: the whole token
 * path (sb_jwt_verify), the claims reader and the JWKS parser. The first input byte picks the
 * parser. Built by tests/fuzz/CMakeLists.txt (-DSB_FUZZ=ON with clang).
 */
#define SB_JWT_INTERNAL
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sb_jwt.h"

static struct sb_jwt_verifier *fuzz_v;

/* fuzz_init builds one verifier with an ES256 and an RS256 key, once. */
static void
fuzz_init(void)
{
	struct sb_jwt_policy pol = { .issuer = "i", .audience = "a", .typ = "at+jwt" };
	struct sb_jwt_key *es, *rs;
	struct sb_jwt_keyset *set;

	if (sb_jwt_key_generate(SB_JWT_ES256, 0, &es) != 0 ||
	    sb_jwt_key_generate(SB_JWT_RS256, 0, &rs) != 0 || sb_jwt_keyset_new(&set) != 0 ||
	    sb_jwt_keyset_add(set, es) != 0 || sb_jwt_keyset_add(set, rs) != 0 ||
	    sb_jwt_verifier_new(&pol, set, &fuzz_v) != 0)
		abort();
	sb_jwt_key_free(es);
	sb_jwt_key_free(rs);
	sb_jwt_keyset_release(set);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sb__jwt_claims claims;
	struct sb_jwt_principal p;
	struct sb_jwt_keyset *set;

	if (fuzz_v == NULL)
		fuzz_init();
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (sb_jwt_verify(fuzz_v, (const char *)data + 1, size - 1, &p) == 0)
			abort(); /* nothing without a signature of ours may verify */
		break;
	case 1:
		sb__jwt_scan_claims((const char *)data + 1, size - 1, &claims);
		break;
	case 2:
		if (sb_jwt_keyset_parse_jwks((const char *)data + 1, size - 1, &set, NULL) == 0)
			sb_jwt_keyset_release(set);
		break;
	}
	return 0;
}
