/* config.c: the gateway's configuration table and service definition. */
#include "gateway.h"

const struct sb_cfg_key gateway_config[] = {
	SB_CFG_COMMON(struct gateway_cfg, common, 9100, 7100),
	SB_CFG_REDIS(struct gateway_cfg, common),
	{ "SB_HTTP_ADDR", SB_CFG_STR, offsetof(struct gateway_cfg, http_addr), "127.0.0.1", 0, 0, 0,
	  NULL, "Address of the public REST edge." },
	{ "SB_HTTP_PORT", SB_CFG_INT, offsetof(struct gateway_cfg, http_port), "8080", 1, 65535, 0,
	  NULL, "Port of the public REST edge." },
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
