/* rpc.c: the auth service's RPC table, its start/stop hooks and each worker's connections. */
#include "auth.h"

#include <stdlib.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"

const struct sb_rpc_method auth_methods[] = {
	{ "auth.Token", &sb__auth__token_request__descriptor, &sb__auth__token_response__descriptor,
	  auth_rpc_token },
	{ "auth.Revoke", &sb__auth__revoke_request__descriptor,
	  &sb__auth__revoke_response__descriptor, auth_rpc_revoke },
	{ "auth.Introspect", &sb__auth__introspect_request__descriptor,
	  &sb__auth__introspect_response__descriptor, auth_rpc_introspect },
	{ "auth.Jwks", &sb__auth__jwks_request__descriptor, &sb__auth__jwks_response__descriptor,
	  auth_rpc_jwks },
	{ "auth.Metadata", &sb__auth__metadata_request__descriptor,
	  &sb__auth__metadata_response__descriptor, auth_rpc_metadata },
	{ NULL, NULL, NULL, NULL },
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

int
auth_worker_init(struct sb_service *svc, void **state)
{
	const struct auth_cfg *cfg = sb_service_config(svc);
	struct auth_worker *w = calloc(1, sizeof(*w));
	int rv;
	if (w == NULL)
		return SB_ENOMEM;
	w->auth = sb_service_state(svc);
	if ((rv = sb_pg_open(cfg->common.database_url, auth_store_stmts, &w->pg)) != 0 ||
	    (rv = sb_redis_open(cfg->common.redis_url, &w->redis)) != 0) {
		sb_pg_close(w->pg);
		free(w);
		return rv;
	}
	*state = w;
	return 0;
}

void
auth_worker_fini(struct sb_service *svc, void *state)
{
	struct auth_worker *w = state;
	(void)svc;
	if (w == NULL)
		return;
	sb_pg_close(w->pg);
	sb_redis_close(w->redis);
	free(w);
}
