/* wellknown.c: auth.Jwks (the published keys) and auth.Metadata (RFC 8414), served verbatim by
 * the gateway's GW_RAW routes. */
#include "auth.h"

#include <stdlib.h>

int
auth_rpc_jwks(struct sb_rpc_call *call, const void *req, void *resp)
{
	struct auth *a = sb_service_state(sb_service_from_call(call));
	Sb__Auth__JwksResponse *rs = resp;
	(void)req;
	if ((rs->json = auth_keys_jwks(a->keys, call)) == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
		                         "server_error: out of memory");
	return SB__RPC__CODE__OK;
}

int
auth_rpc_metadata(struct sb_rpc_call *call, const void *req, void *resp)
{
	struct auth *a = sb_service_state(sb_service_from_call(call));
	const char *iss = a->cfg->issuer;
	Sb__Auth__MetadataResponse *rs = resp;
	(void)req;
	json_t *o = json_pack(
	    "{s:s, s:s+, s:s+, s:s+, s:s+, s:[sss], s:[ss], s:[ss], s:[ss], s:[s]}", "issuer", iss,
	    "token_endpoint", iss, "/auth/token", "revocation_endpoint", iss, "/auth/revoke",
	    "introspection_endpoint", iss, "/auth/introspect", "jwks_uri", iss,
	    "/.well-known/jwks.json", "grant_types_supported", AUTH_GRANT_CLIENT,
	    AUTH_GRANT_REFRESH, AUTH_GRANT_EXCHANGE, "token_endpoint_auth_methods_supported",
	    "client_secret_basic", "client_secret_post",
	    "revocation_endpoint_auth_methods_supported", "client_secret_basic",
	    "client_secret_post", "introspection_endpoint_auth_methods_supported",
	    "client_secret_basic", "client_secret_post", "response_types_supported", "token");
	if (o == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
		                         "server_error: out of memory");
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	rs->json = s ? sb_rpc_call_strdup(call, s) : NULL;
	free(s);
	if (rs->json == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL,
		                         "server_error: out of memory");
	return SB__RPC__CODE__OK;
}
