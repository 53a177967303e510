/* routes_registry.c: the gateway routes served by the schema registry (the seed API; the
 * Confluent-compatible API is served by the registry's own HTTP port under /registry on the
 * ingress, docs/registry.md). Answers are JSON documents the registry writes (GW_RAW); bodies
 * that hold a schema or a document go verbatim (GW_RAW_BODY). */
#include "gateway.h"

#include "registry.pb-c.h"

#define GW_REG_ROW(METHOD, PATTERN, RPC, REQ, STATUS, FLAGS, SCOPE)                                \
	{                                                                                          \
		METHOD, PATTERN, NULL, "registry", "registry." RPC,                                \
		    &sb__registry__##REQ##__descriptor, &sb__rpc__raw_json__descriptor, STATUS,    \
		    GW_RAW | (FLAGS), SCOPE                                                        \
	}

const struct gw_route gw_routes_registry[] = {
	GW_REG_ROW("POST", "/api/v1/schemas", "CreateSchema", create_schema_request, 201,
	           GW_MUTATING | GW_RAW_BODY, "registry:write"),
	GW_REG_ROW("GET", "/api/v1/schemas", "ListSchemas", list_schemas_request, 200, 0,
	           "registry:read"),
	GW_REG_ROW("GET", "/api/v1/schemas/{id}", "GetSchema", schema_ref, 200, 0, "registry:read"),
	GW_REG_ROW("POST", "/api/v1/schemas/{id}/validate", "ValidateDocument",
	           validate_document_request, 200, GW_RAW_BODY, "registry:read"),
	GW_REG_ROW("POST", "/api/v1/schemas/{id}/approve", "Approve", schema_ref, 200, GW_MUTATING,
	           "registry:admin"),
	GW_REG_ROW("POST", "/api/v1/schemas/{id}/deprecate", "Deprecate", schema_ref, 200,
	           GW_MUTATING, "registry:admin"),
	GW_REG_ROW("PUT", "/api/v1/subjects/{subject}/config", "SetSubjectConfig",
	           set_subject_config_request, 200, GW_MUTATING | GW_RAW_BODY, "registry:admin"),
	{ NULL },
};
