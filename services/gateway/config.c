/* config.c: the gateway's configuration table and service definition. */
#include "gateway.h"

const struct sb_cfg_key gateway_config[] = {
	SB_CFG_COMMON(struct gateway_cfg, common, 9100, 7100),
	SB_CFG_REDIS(struct gateway_cfg, common),
	{ "SB_HTTP_ADDR", SB_CFG_STR, offsetof(struct gateway_cfg, http_addr), "127.0.0.1", 0, 0, 0,
	  NULL, "Address of the public REST edge." },
	{ "SB_HTTP_PORT", SB_CFG_INT, offsetof(struct gateway_cfg, http_port), "8080", 1, 65535, 0,
	  NULL, "Port of the public REST edge." },
	{ "SB_HTTP_TLS_CERT_FILE", SB_CFG_STR, offsetof(struct gateway_cfg, tls_cert_file), "", 0,
	  0, 0, NULL,
	  "PEM certificate chain: when set (with the key), the edge serves TLS 1.3 only, with "
	  "HSTS; "
	  "the files are reloaded when they change." },
	{ "SB_HTTP_TLS_KEY_FILE", SB_CFG_STR, offsetof(struct gateway_cfg, tls_key_file), "", 0, 0,
	  0, NULL, "PEM private key of SB_HTTP_TLS_CERT_FILE." },
	{ "SB_HTTP_MAX_BODY_BYTES", SB_CFG_INT, offsetof(struct gateway_cfg, max_body_bytes),
	  "1048576", 1024, 67108864, 0, NULL, "Largest request body accepted (413 beyond)." },
	{ "SB_HTTP_MAX_HEADER_BYTES", SB_CFG_INT, offsetof(struct gateway_cfg, max_header_bytes),
	  "16384", 1024, 1048576, 0, NULL, "Largest request head accepted (431 beyond)." },
	{ "SB_HTTP_HEADER_TIMEOUT_MS", SB_CFG_INT, offsetof(struct gateway_cfg, header_timeout_ms),
	  "10000", 100, 600000, 0, NULL, "Time a client has to send a whole request." },
	{ "SB_HTTP_IDLE_TIMEOUT_MS", SB_CFG_INT, offsetof(struct gateway_cfg, idle_timeout_ms),
	  "60000", 100, 3600000, 0, NULL, "Idle keep-alive connections are closed after this." },
	{ "SB_HTTP_MAX_CONNS", SB_CFG_INT, offsetof(struct gateway_cfg, max_conns), "10000", 1,
	  100000, 0, NULL, "Most client connections held at once." },
	{ "SB_JSON_MAX_DEPTH", SB_CFG_INT, offsetof(struct gateway_cfg, max_json_depth), "32", 1,
	  256, 0, NULL, "Deepest JSON nesting accepted in a request body." },
	{ "SB_RPC_TIMEOUT_MS", SB_CFG_INT, offsetof(struct gateway_cfg, rpc_timeout_ms), "5000", 10,
	  120000, 0, NULL, "Deadline of an RPC made for a request." },
	{ "SB_RPC_BATCH_IN_FLIGHT", SB_CFG_INT, offsetof(struct gateway_cfg, rpc_batch_in_flight),
	  "2", 0, 1024, 0, NULL,
	  "Message sends travel to the messages service in batches: at most this many batches "
	  "outstanding at once; sends made meanwhile leave together with the next (0: one RPC per "
	  "send)." },
	{ "SB_EDGE_WORKERS", SB_CFG_INT, offsetof(struct gateway_cfg, workers), "0", 0, 64, 0, NULL,
	  "Threads that check tokens and rate limits and dispatch requests (0: one per CPU, at "
	  "least 2)." },
	{ "SB_EDGE_QUEUE_MAX", SB_CFG_INT, offsetof(struct gateway_cfg, queue_max), "10000", 1,
	  1000000, 0, NULL, "Requests waiting for a worker before 503 is answered." },
	{ "SB_AUTH_ENABLED", SB_CFG_BOOL, offsetof(struct gateway_cfg, auth_enabled), "true", 0, 0,
	  0, NULL, "Require access tokens (false only for benchmarks that measure auth's cost)." },
	{ "SB_AUTH_ISSUER", SB_CFG_STR, offsetof(struct gateway_cfg, issuer),
	  "http://127.0.0.1:8000", 0, 0, 0, NULL, "Expected iss of access tokens (exact match)." },
	{ "SB_AUTH_AUDIENCE", SB_CFG_STR, offsetof(struct gateway_cfg, audience), "switchboard", 0,
	  0, 0, NULL, "Audience access tokens must name in aud." },
	{ "SB_AUTH_LEEWAY_S", SB_CFG_INT, offsetof(struct gateway_cfg, leeway_s), "30", 0, 300, 0,
	  NULL, "Clock skew allowed for exp, nbf and iat, seconds." },
	{ "SB_JWKS_MIN_REFRESH_MS", SB_CFG_INT, offsetof(struct gateway_cfg, jwks_min_refresh_ms),
	  "5000", 0, 600000, 0, NULL, "Shortest interval between JWKS refetches on unknown kid." },
	{ "SB_RATE_LIMIT_PER_MIN", SB_CFG_INT, offsetof(struct gateway_cfg, rate_limit_per_min),
	  "60", 1, 100000000, 0, NULL, "Requests per minute per user on state-changing routes." },
	{ "SB_RATE_LIMIT_ROUTES", SB_CFG_STR, offsetof(struct gateway_cfg, rate_limit_routes), "",
	  0, 0, 0, NULL, "Per-route limits: \"POST /v1/messages=600;POST /v1/conversations=30\"." },
	{ "SB_REDIS_FAIL_OPEN", SB_CFG_BOOL, offsetof(struct gateway_cfg, redis_fail_open), "true",
	  0, 0, 0, NULL,
	  "While Redis is down: true lets requests through unchecked (logged, counted); false "
	  "answers 503." },
	{ "SB_DEV_CREDENTIALS_FILE", SB_CFG_STR, offsetof(struct gateway_cfg, dev_credentials_file),
	  "", 0, 0, 0, NULL,
	  "DEVELOPMENT ONLY: the file of `sb-auth seed-dev --out`; when set, GET /dev/credentials "
	  "answers it to anyone (client secrets included) so the web console can sign in as the "
	  "dev users. Empty (the default): that route answers 404." },
	SB_CFG_UPSTREAM(struct gateway_cfg, auth_url, AUTH, 7101),
	SB_CFG_UPSTREAM(struct gateway_cfg, messages_url, MESSAGES, 7102),
	SB_CFG_UPSTREAM(struct gateway_cfg, outbox_url, OUTBOX, 7103),
	SB_CFG_UPSTREAM(struct gateway_cfg, files_url, FILES, 7104),
	SB_CFG_UPSTREAM(struct gateway_cfg, realtime_url, REALTIME, 7106),
	SB_CFG_UPSTREAM(struct gateway_cfg, notifier_url, NOTIFIER, 7107),
	SB_CFG_UPSTREAM(struct gateway_cfg, gc_url, GC, 7108),
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
};
