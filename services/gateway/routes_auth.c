/* routes_auth.c: the gateway routes served by the auth service (one row per endpoint). All are
 * public (the caller authenticates as an OAuth client, not with an access token). The token,
 * introspection and JWKS/metadata responses are documents rendered by auth (GW_RAW), so that
 * they are exactly what RFC 6749, 7662, 7517 and 8414 say. */
#include "gateway.h"

#include "auth.pb-c.h"

#define GW_AUTH_ROW(METHOD, PATTERN, RPC, REQ, RESP, FLAGS)                                        \
	{                                                                                          \
		METHOD, PATTERN, NULL, "auth", "auth." RPC, &sb__auth__##REQ##__descriptor,        \
		    &sb__auth__##RESP##__descriptor, 200, GW_PUBLIC | (FLAGS), NULL                \
	}

/* OAuth endpoints: form or JSON bodies, client credentials from HTTP Basic or the body,
 * RFC 6749 error documents, Cache-Control: no-store. */
#define GW_AUTH_OAUTH (GW_FORM | GW_BASIC | GW_OAUTH)

const struct gw_route gw_routes_auth[] = {
	GW_AUTH_ROW("POST", "/auth/token", "Token", token_request, token_response,
	            GW_AUTH_OAUTH | GW_RAW),
	/* the refresh alias: no grant_type needed, a refresh_token selects the refresh grant */
	GW_AUTH_ROW("POST", "/auth/refresh", "Token", token_request, token_response,
	            GW_AUTH_OAUTH | GW_RAW),
	GW_AUTH_ROW("POST", "/auth/revoke", "Revoke", revoke_request, revoke_response,
	            GW_AUTH_OAUTH),
	GW_AUTH_ROW("POST", "/auth/introspect", "Introspect", introspect_request,
	            introspect_response, GW_AUTH_OAUTH | GW_RAW),
	GW_AUTH_ROW("GET", "/.well-known/jwks.json", "Jwks", jwks_request, jwks_response, GW_RAW),
	GW_AUTH_ROW("GET", "/.well-known/oauth-authorization-server", "Metadata", metadata_request,
	            metadata_response, GW_RAW),
	{ NULL },
};
