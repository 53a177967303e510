/* sb_service_jwks.c: fetching the auth service's signing keys (auth.Jwks) into a verifier,
 * for every service that verifies access tokens (gateway, realtime, files). */
#include "sb_service.h"

#include <string.h>

#include "rpc.pb-c.h"
#include "sb_err.h"
#include "sb_jwt.h"
#include "sb_log.h"

int
sb_service_fetch_jwks(struct sb_rpc_client *auth, struct sb_jwt_verifier *v, bool warn_unanswered,
                      size_t *skipped)
{
	Sb__Rpc__Empty req = SB__RPC__EMPTY__INIT;
	struct sb_rpc_meta meta = { .timeout_ms = 2000 };
	struct sb_rpc_result res;
	int rv =
	    sb_rpc_call(auth, "auth.Jwks", &req.base, &sb__rpc__raw_json__descriptor, &meta, &res);
	if (rv != 0)
		return rv;
	if (res.code != 0 || res.resp == NULL) {
		if (warn_unanswered)
			sb_log_kv(SB_LOG_WARN, "cannot fetch JWKS from auth", "code",
			          sb_rpc_code_name(res.code), "error", res.message, NULL);
		sb_rpc_result_free(&res);
		return SB_EUNAVAIL;
	}
	const char *json = ((Sb__Rpc__RawJson *)res.resp)->json;
	struct sb_jwt_keyset *set = NULL;
	size_t n_skipped = 0;
	rv = sb_jwt_keyset_parse_jwks(json, strlen(json), &set, &n_skipped);
	sb_rpc_result_free(&res);
	if (rv != 0) {
		sb_log_kv(SB_LOG_WARN, "auth answered an unusable JWKS", NULL);
		return rv;
	}
	sb_jwt_verifier_set_keys(v, set);
	sb_jwt_keyset_release(set);
	if (skipped != NULL)
		*skipped = n_skipped;
	return 0;
}
