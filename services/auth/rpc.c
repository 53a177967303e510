/* rpc.c: the auth service's RPC table, its start/stop hooks and what its handlers work with. */
#include "auth.h"

#include <stdlib.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"

const struct sb_rpc_method auth_methods[] = {
	SB_RPC_ROW(auth, Token, token_request, token_response, auth_rpc_token, 0),
	SB_RPC_ROW(auth, Revoke, revoke_request, revoke_response, auth_rpc_revoke, 0),
	SB_RPC_ROW(auth, Introspect, introspect_request, introspect_response, auth_rpc_introspect,
	           0),
	SB_RPC_ROW(auth, Jwks, jwks_request, jwks_response, auth_rpc_jwks, 0),
	SB_RPC_ROW(auth, Metadata, metadata_request, metadata_response, auth_rpc_metadata, 0),
	SB_RPC_END,
};

int
auth_start(struct sb_service *svc)
{
	const struct auth_cfg *cfg = sb_service_config(svc);
	struct auth *a = calloc(1, sizeof(*a));
	struct sb_pg *pg = NULL;
	int rv;
	if (a == NULL)
		return SB_ENOMEM;
	a->cfg = cfg;
	auth_metrics_init(a);
	if ((rv = sb_pg_open(cfg->common.database_url, NULL, &pg)) != 0)
		goto fail;
	/* migrations just succeeded, so the database answers; retry briefly on a blip */
	for (int i = 0; i < 20 && (rv = auth_keys_ensure(pg, cfg)) == SB_EUNAVAIL; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 250000000 }, NULL);
	sb_pg_close(pg);
	if (rv != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot create the first signing key", "error",
		          sb_strerror(rv), NULL);
		goto fail;
	}
	if ((rv = auth_keys_start(cfg, &a->keys)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot load signing keys", "error", sb_strerror(rv), NULL);
		goto fail;
	}
	sb_service_set_state(svc, a);
	return 0;
fail:
	free(a);
	return rv;
}

void
auth_stop(struct sb_service *svc)
{
	struct auth *a = sb_service_state(svc);
	if (a == NULL)
		return;
	auth_keys_stop(a->keys);
	sb_service_set_state(svc, NULL);
	free(a);
}

struct auth_worker *
auth_worker_of(struct sb_rpc_call *call, struct auth_worker *w)
{
	const struct sb_worker_conns *c = sb_service_worker_conns(call);
	w->auth = sb_service_state(sb_service_from_call(call));
	w->pg = c->pg;
	w->redis = c->redis;
	return w;
}
