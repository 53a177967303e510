/* config.c: the registry's configuration table, RPC table, service definition, start/stop. */
#include "registry.h"

#include <stdlib.h>

#include "registry.pb-c.h"
#include "sb_err.h"
#include "sb_metrics.h"
#include "sb_migrate.h"

extern const struct sb_migration registry_migrations[];

const struct sb_cfg_key registry_config[] = {
	SB_CFG_COMMON(struct registry_cfg, common, 9112, 7112),
	SB_CFG_POSTGRES(struct registry_cfg, common),
	SB_CFG_UPSTREAM(struct registry_cfg, auth_url, AUTH, 7101),
	SB_CFG_STR_ROW(struct registry_cfg, "SB_HTTP_ADDR", http_addr, "127.0.0.1", NULL,
	               "Address of the Confluent-compatible REST API (the ingress serves it under "
	               "/registry)."),
	SB_CFG_INT_ROW(struct registry_cfg, "SB_HTTP_PORT", http_port, "8083", 1, 65535,
	               "Port of the Confluent-compatible REST API."),
	SB_CFG_INT_ROW(struct registry_cfg, "SB_REGISTRY_MAX_BODY_BYTES", max_body_bytes, "1048576",
	               1024, 16777216, "Largest request body of the Confluent-compatible API."),
	SB_CFG_BOOL_ROW(struct registry_cfg, "SB_REGISTRY_AUTH_ENABLED", auth_enabled, "true",
	                "Require a bearer access token (scopes registry:read/write/admin) on the "
	                "Confluent-compatible API. false: anyone reaching the port holds every "
	                "scope (a closed development machine only)."),
	SB_CFG_STR_ROW(struct registry_cfg, "SB_AUTH_ISSUER", issuer, "http://127.0.0.1:8000", NULL,
	               "Expected iss of access tokens (exact match)."),
	SB_CFG_STR_ROW(struct registry_cfg, "SB_AUTH_AUDIENCE", audience, "switchboard", NULL,
	               "Audience access tokens must name in aud."),
	SB_CFG_INT_ROW(struct registry_cfg, "SB_AUTH_LEEWAY_S", leeway_s, "30", 0, 300,
	               "Clock skew allowed for exp, nbf and iat, seconds."),
	{ NULL },
};

/* A method whose answer is a JSON document (sb.rpc.RawJson). */
#define REG_RAW_ROW(NAME, REQ, FN)                                                                 \
	{                                                                                          \
		.name = "registry." #NAME, .req = &sb__registry__##REQ##__descriptor,              \
		.resp = &sb__rpc__raw_json__descriptor, .fn = (FN), .flags = 0                     \
	}

const struct sb_rpc_method registry_methods[] = {
	REG_RAW_ROW(CreateSchema, create_schema_request, reg_rpc_create),
	REG_RAW_ROW(ListSchemas, list_schemas_request, reg_rpc_list),
	REG_RAW_ROW(GetSchema, schema_ref, reg_rpc_get),
	REG_RAW_ROW(ValidateDocument, validate_document_request, reg_rpc_validate),
	REG_RAW_ROW(Approve, schema_ref, reg_rpc_approve),
	REG_RAW_ROW(Deprecate, schema_ref, reg_rpc_deprecate),
	REG_RAW_ROW(SetSubjectConfig, set_subject_config_request, reg_rpc_subject_config),
	SB_RPC_ROW(registry, ValidateSubject, validate_subject_request, validate_subject_response,
	           reg_rpc_validate_subject, 0),
	SB_RPC_ROW(registry, Http, http_request, http_response, reg_rpc_http, 0),
	SB_RPC_END,
};

static const struct sb_service_upstream registry_upstreams[] = {
	{ "auth", offsetof(struct registry_cfg, auth_url), false },
	{ NULL, 0, false },
};

void
reg_count_register(struct reg_state *st, enum reg_outcome o)
{
	if (st != NULL && (unsigned)o < REG_M_N && st->m_register[o] != NULL)
		sb_series_inc(st->m_register[o]);
}

void
reg_count_validation(struct reg_state *st, bool valid)
{
	if (st != NULL && st->m_validate[valid ? 0 : 1] != NULL)
		sb_series_inc(st->m_validate[valid ? 0 : 1]);
}

static void
reg_metrics(struct reg_state *st)
{
	static const char *const outcomes[REG_M_N] = { "created", "existing", "pending",
		                                       "incompatible", "invalid" };
	struct sb_metric *r = sb_metrics_counter(
	    "registry_registrations_total",
	    "Schema registrations (both APIs) by outcome: created, existing (already held), "
	    "pending "
	    "(awaiting approval), incompatible (refused), invalid (not a schema).",
	    "result");
	struct sb_metric *v =
	    sb_metrics_counter("registry_validations_total",
	                       "Documents validated, by result: valid or invalid.", "result");
	for (int i = 0; i < REG_M_N; i++)
		st->m_register[i] = sb_metric_with(r, outcomes[i]);
	st->m_validate[0] = sb_metric_with(v, "valid");
	st->m_validate[1] = sb_metric_with(v, "invalid");
}

/* reg_start: metrics, the compiled-schema cache, then the Confluent API's HTTP edge. */
static int
reg_start(struct sb_service *svc)
{
	struct reg_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return SB_ENOMEM;
	st->svc = svc;
	st->cfg = sb_service_config(svc);
	pthread_mutex_init(&st->jwks_mu, NULL);
	reg_metrics(st);
	int rc = reg_cache_new(&st->cache);
	if (rc == 0)
		sb_service_set_state(svc, st);
	if (rc == 0 && (rc = reg_http_start(st)) != 0)
		sb_service_set_state(svc, NULL);
	if (rc != 0) {
		reg_cache_free(st->cache);
		pthread_mutex_destroy(&st->jwks_mu);
		free(st);
	}
	return rc;
}

/* reg_stop mirrors reg_start (the RPC workers have stopped). */
static void
reg_stop(struct sb_service *svc)
{
	struct reg_state *st = sb_service_state(svc);
	if (st == NULL)
		return;
	reg_http_stop(st);
	reg_cache_free(st->cache);
	pthread_mutex_destroy(&st->jwks_mu);
	sb_service_set_state(svc, NULL);
	free(st);
}

const struct sb_service_def registry_service = {
	.name = "registry",
	.config = registry_config,
	.config_size = sizeof(struct registry_cfg),
	.common_offset = offsetof(struct registry_cfg, common),
	.methods = registry_methods,
	.upstreams = registry_upstreams,
	.schema = "registry",
	.migrations = registry_migrations,
	.start = reg_start,
	.stop = reg_stop,
	.worker_conns = SB_WORKER_PG,
};
