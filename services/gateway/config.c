/* config.c: the gateway's configuration table and service definition. */
#include "gateway.h"

const struct sb_cfg_key gateway_config[] = {
	SB_CFG_COMMON(struct gateway_cfg, common, 9100, 7100),
	SB_CFG_REDIS(struct gateway_cfg, common),
	SB_CFG_STR_ROW(struct gateway_cfg, "SB_HTTP_ADDR", http_addr, "127.0.0.1", NULL,
	               "Address of the public REST edge."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_HTTP_PORT", http_port, "8080", 1, 65535,
	               "Port of the public REST edge."),
	SB_CFG_STR_ROW(struct gateway_cfg, "SB_HTTP_TLS_CERT_FILE", tls_cert_file, "", NULL,
	               "PEM certificate chain: when set (with the key), the edge serves TLS 1.3 "
	               "only, with HSTS; the files are reloaded when they change."),
	SB_CFG_STR_ROW(struct gateway_cfg, "SB_HTTP_TLS_KEY_FILE", tls_key_file, "", NULL,
	               "PEM private key of SB_HTTP_TLS_CERT_FILE."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_HTTP_MAX_BODY_BYTES", max_body_bytes, "1048576",
	               1024, 67108864, "Largest request body accepted (413 beyond)."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_HTTP_MAX_HEADER_BYTES", max_header_bytes, "16384",
	               1024, 1048576, "Largest request head accepted (431 beyond)."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_HTTP_HEADER_TIMEOUT_MS", header_timeout_ms, "10000",
	               100, 600000, "Time a client has to send a whole request."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_HTTP_IDLE_TIMEOUT_MS", idle_timeout_ms, "60000", 100,
	               3600000, "Idle keep-alive connections are closed after this."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_HTTP_MAX_CONNS", max_conns, "10000", 1, 100000,
	               "Most client connections held at once."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_JSON_MAX_DEPTH", max_json_depth, "32", 1, 256,
	               "Deepest JSON nesting accepted in a request body."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_RPC_TIMEOUT_MS", rpc_timeout_ms, "5000", 10, 120000,
	               "Deadline of an RPC made for a request."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_RPC_BATCH_IN_FLIGHT", rpc_batch_in_flight, "2", 0,
	               1024,
	               "Message sends travel to the messages service in batches: at most this many "
	               "batches outstanding at once; sends made meanwhile leave together with the "
	               "next (0: one RPC per send)."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_EDGE_WORKERS", workers, "0", 0, 64,
	               "Threads that check tokens and rate limits and dispatch requests (0: one "
	               "per CPU, at least 2)."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_EDGE_QUEUE_MAX", queue_max, "10000", 1, 1000000,
	               "Requests waiting for a worker before 503 is answered."),
	SB_CFG_BOOL_ROW(
	    struct gateway_cfg, "SB_AUTH_ENABLED", auth_enabled, "true",
	    "Require access tokens (false only for benchmarks that measure auth's cost)."),
	SB_CFG_STR_ROW(struct gateway_cfg, "SB_AUTH_ISSUER", issuer, "http://127.0.0.1:8000", NULL,
	               "Expected iss of access tokens (exact match)."),
	SB_CFG_STR_ROW(struct gateway_cfg, "SB_AUTH_AUDIENCE", audience, "switchboard", NULL,
	               "Audience access tokens must name in aud."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_AUTH_LEEWAY_S", leeway_s, "30", 0, 300,
	               "Clock skew allowed for exp, nbf and iat, seconds."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_JWKS_MIN_REFRESH_MS", jwks_min_refresh_ms, "5000", 0,
	               600000, "Shortest interval between JWKS refetches on unknown kid."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_RATE_LIMIT_PER_MIN", rate_limit_per_min, "60", 1,
	               100000000, "Requests per minute per user on state-changing routes."),
	SB_CFG_STR_ROW(struct gateway_cfg, "SB_RATE_LIMIT_ROUTES", rate_limit_routes, "", NULL,
	               "Per-route limits: \"POST /v1/messages=600;POST /v1/conversations=30\"."),
	SB_CFG_INT_ROW(struct gateway_cfg, "SB_RATE_LIMIT_CHUNK_MAX", rate_limit_chunk_max, "100",
	               1, 100000,
	               "Most units of a user's window one Redis round trip claims (a claim takes "
	               "1/100 of the limit); 1 counts every request in Redis."),
	SB_CFG_BOOL_ROW(struct gateway_cfg, "SB_REDIS_FAIL_OPEN", redis_fail_open, "true",
	                "While Redis is down: true lets requests through unchecked (logged, "
	                "counted); false answers 503."),
	SB_CFG_STR_ROW(
	    struct gateway_cfg, "SB_DEV_CREDENTIALS_FILE", dev_credentials_file, "", NULL,
	    "DEVELOPMENT ONLY: the file of `sb-auth seed-dev --out`; when set, GET "
	    "/dev/credentials answers it to anyone (client secrets included) so the web console "
	    "can sign in as the dev users. Empty (the default): that route answers 404."),
	SB_CFG_STR_ROW(struct gateway_cfg, "SB_HEALTH_SERVICES", health_services,
	               "gateway,auth,messages,outbox,files,realtime,notifier,gc,ingest,pubsub,"
	               "cdcsink,registry",
	               gw_health_services_check,
	               "The services GET /v1/health asks (comma-separated); it answers 200 when "
	               "every one is ready. Name only the services this installation runs."),
	SB_CFG_UPSTREAM(struct gateway_cfg, auth_url, AUTH, 7101),
	SB_CFG_UPSTREAM(struct gateway_cfg, messages_url, MESSAGES, 7102),
	SB_CFG_UPSTREAM(struct gateway_cfg, outbox_url, OUTBOX, 7103),
	SB_CFG_UPSTREAM(struct gateway_cfg, files_url, FILES, 7104),
	SB_CFG_UPSTREAM(struct gateway_cfg, realtime_url, REALTIME, 7106),
	SB_CFG_UPSTREAM(struct gateway_cfg, notifier_url, NOTIFIER, 7107),
	SB_CFG_UPSTREAM(struct gateway_cfg, gc_url, GC, 7108),
	SB_CFG_UPSTREAM(struct gateway_cfg, cdcsink_url, CDCSINK, 7111),
	SB_CFG_UPSTREAM(struct gateway_cfg, pubsub_url, PUBSUB, 7110),
	SB_CFG_UPSTREAM(struct gateway_cfg, ingest_url, INGEST, 7109),
	SB_CFG_UPSTREAM(struct gateway_cfg, registry_url, REGISTRY, 7112),
	{ NULL },
};

/* Every service is an upstream so GET /v1/health can ask each; the gateway is ready only when
 * the services behind its core routes are. The gateway asks itself through its own RPC URL. */
static const struct sb_service_upstream gateway_upstreams[] = {
	{ "auth", offsetof(struct gateway_cfg, auth_url), true },
	{ "messages", offsetof(struct gateway_cfg, messages_url), true },
	{ "outbox", offsetof(struct gateway_cfg, outbox_url), false },
	{ "files", offsetof(struct gateway_cfg, files_url), false },
	{ "realtime", offsetof(struct gateway_cfg, realtime_url), false },
	{ "notifier", offsetof(struct gateway_cfg, notifier_url), false },
	{ "gc", offsetof(struct gateway_cfg, gc_url), false },
	{ "cdcsink", offsetof(struct gateway_cfg, cdcsink_url), false },
	{ "pubsub", offsetof(struct gateway_cfg, pubsub_url), false },
	{ "ingest", offsetof(struct gateway_cfg, ingest_url), false },
	{ "registry", offsetof(struct gateway_cfg, registry_url), false },
	{ "gateway", offsetof(struct gateway_cfg, common.rpc_url), false },
	{ NULL, 0, false },
};

const struct sb_service_def gateway_service = {
	.name = "gateway",
	.config = gateway_config,
	.config_size = sizeof(struct gateway_cfg),
	.common_offset = offsetof(struct gateway_cfg, common),
	.upstreams = gateway_upstreams,
	.start = gw_start,
	.stop = gw_stop,
	.routes = gw_routes_list,
};
