/* me.c: GET /v1/me, the caller's principal as the gateway established it from the token. */
#include "gateway.h"

void
gw_me(struct gw_req *r)
{
	const struct sb_jwt_principal *p = &r->principal;
	json_t *scopes = json_array();
	for (size_t i = 0; i < p->nscopes; i++)
		json_array_append_new(scopes, json_string(sb_jwt_principal_scope(p, i)));
	json_t *body =
	    json_pack("{s:s,s:s,s:s,s:s,s:o,s:I}", "user_id", p->user_id[0] ? p->user_id : p->sub,
	              "tenant_id", p->tenant_id, "client_id", p->client_id, "subject", p->sub,
	              "scopes", scopes, "expires_at", (json_int_t)p->exp);
	gw_reply_json(r, 200, body);
	json_decref(body);
}
