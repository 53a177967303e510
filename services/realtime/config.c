/* config.c: the realtime service's configuration table and service definition. */
#include "realtime.h"

const struct sb_cfg_key realtime_config[] = {
	SB_CFG_COMMON(struct realtime_cfg, common, 9106, 7106),
	SB_CFG_REDIS(struct realtime_cfg, common),
	SB_CFG_UPSTREAM(struct realtime_cfg, messages_url, MESSAGES, 7102),
	SB_CFG_UPSTREAM(struct realtime_cfg, auth_url, AUTH, 7101),
	SB_CFG_UPSTREAM(struct realtime_cfg, notifier_url, NOTIFIER, 7107),
	SB_CFG_STR_ROW(struct realtime_cfg, "SB_WS_ADDR", ws_addr, "127.0.0.1", NULL,
	               "Address the WebSocket server listens on."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_WS_PORT", ws_port, "8081", 1, 65535,
	               "Port of the WebSocket server (GET /ws)."),
	SB_CFG_STR_ROW(struct realtime_cfg, "SB_WS_ALLOWED_ORIGINS", allowed_origins,
	               "http://127.0.0.1:8000,http://localhost:8000", NULL,
	               "Comma-separated Origin values allowed to connect; * allows any. A request "
	               "without Origin (not a browser) is allowed."),
	SB_CFG_STR_ROW(struct realtime_cfg, "SB_AUTH_ISSUER", issuer, "http://127.0.0.1:8000", NULL,
	               "Expected iss of access tokens (exact match)."),
	SB_CFG_STR_ROW(struct realtime_cfg, "SB_AUTH_AUDIENCE", audience, "switchboard", NULL,
	               "Audience access tokens must name in aud."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_AUTH_LEEWAY_S", leeway_s, "30", 0, 300,
	               "Clock skew allowed for exp, nbf and iat, seconds."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_JWKS_REFRESH_MS", jwks_refresh_ms, "300000", 1000,
	               86400000, "How often auth's JWKS is fetched again."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_WS_PING_INTERVAL_MS", ping_interval_ms, "30000",
	               100, 3600000, "WebSocket ping interval."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_WS_PONG_TIMEOUT_MS", pong_timeout_ms, "10000", 100,
	               3600000,
	               "A connection that does not answer a ping within this time is closed."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_WS_AUTH_TIMEOUT_MS", auth_timeout_ms, "10000", 100,
	               600000, "Time allowed for the auth frame when no ?token= was given."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_WS_MAX_CONNECTIONS", max_connections, "50000", 1,
	               10000000,
	               "WebSocket connections this instance holds at most (upgrades beyond: 503)."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_WS_MAX_CONN_PER_USER", max_conn_per_user, "5", 1,
	               100000,
	               "Connections one user may hold on one instance (close code 4429 beyond)."),
	SB_CFG_INT_ROW(
	    struct realtime_cfg, "SB_WS_SEND_QUEUE_BYTES", send_queue_bytes, "1048576", 1024,
	    1073741824,
	    "Bytes queued for one connection before it is closed as a slow consumer (4008)."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_WS_MAX_FRAME_BYTES", max_frame_bytes, "65536", 128,
	               16777216,
	               "Largest client frame; a larger one closes the connection with 1009."),
	SB_CFG_INT_ROW(
	    struct realtime_cfg, "SB_WS_RECOVERY_MAX_GAP", recovery_max_gap, "1000", 0, 1000000,
	    "Most messages replayed for one since_seq; beyond, subscribed says recovered: false."),
	SB_CFG_INT_ROW(struct realtime_cfg, "SB_WS_MEMBER_CACHE_MS", member_cache_ms, "5000", 0,
	               600000, "How long a positive CheckMember answer is reused."),
	{ NULL },
};

static const struct sb_service_upstream realtime_upstreams[] = {
	{ "messages", offsetof(struct realtime_cfg, messages_url), true },
	{ "auth", offsetof(struct realtime_cfg, auth_url), true },
	{ "notifier", offsetof(struct realtime_cfg, notifier_url), false },
	{ NULL, 0, false },
};

const struct sb_service_def realtime_service = {
	.name = "realtime",
	.config = realtime_config,
	.config_size = sizeof(struct realtime_cfg),
	.common_offset = offsetof(struct realtime_cfg, common),
	.upstreams = realtime_upstreams,
	.start = rt_edge_start,
	.stop = rt_edge_stop_svc,
};
