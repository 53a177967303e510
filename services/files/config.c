/* config.c: the files service's configuration table and service definition. */
#include "files.h"

#include "files.pb-c.h"

const struct sb_cfg_key files_config[] = {
	SB_CFG_COMMON(struct files_cfg, common, 9104, 7104),
	SB_CFG_POSTGRES(struct files_cfg, common),
	SB_CFG_KAFKA(struct files_cfg, common),
	SB_CFG_UPSTREAM(struct files_cfg, auth_url, AUTH, 7101),
	SB_CFG_STR_ROW(struct files_cfg, "SB_HTTP_ADDR", http_addr, "127.0.0.1", NULL,
	               "Address the upload edge (tus at /files/, the chunk API and downloads at "
	               "/v1/files/) listens on."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_HTTP_PORT", http_port, "8082", 1, 65535,
	               "Port of the upload edge."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_DIR", dir, ".run/files", NULL,
	               "Directory of the filesystem storage backend (created if missing)."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_MAX_SIZE", max_size, "2147483648", 1,
	               1099511627776LL, "Largest upload, bytes (Tus-Max-Size; 413 beyond)."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_MAX_REQUEST_BYTES", max_request_bytes,
	               "67108864", 65536, 1073741824,
	               "Largest body of one request (a tus PATCH or one chunk), held in memory "
	               "while it is checked and written; 413 beyond. Clients send files larger "
	               "than this in several requests (tus-js-client: chunkSize)."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_EXPIRE_S", expire_s, "86400", 1, 31536000,
	               "An unfinished tus upload expires this long after its last PATCH "
	               "(Upload-Expires; 410 after)."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_WORKERS", workers, "4", 1, 256,
	               "Worker threads serving upload and download requests (each with its own "
	               "PostgreSQL connection)."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_QUEUE_MAX", queue_max, "256", 1, 100000,
	               "Requests waiting for a worker before new ones get 503 with Retry-After."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_ALLOWED_ORIGINS", allowed_origins,
	               "http://127.0.0.1:8000,http://localhost:8000", NULL,
	               "Comma-separated Origin values browsers may upload from (CORS); * allows "
	               "any."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_ALLOWED_TYPES", allowed_types,
	               "image/*,audio/*,video/*,text/plain,text/csv,text/markdown,application/pdf,"
	               "application/zip,application/gzip,application/json,application/octet-stream",
	               NULL,
	               "Content types an upload may declare (tus filetype), comma-separated: "
	               "type/subtype, type/* or */*; 415 otherwise. An upload that declares none "
	               "is application/octet-stream."),
	SB_CFG_INT_ROW(
	    struct files_cfg, "SB_FILES_MAX_CONCURRENT", max_concurrent, "20", 1, 100000,
	    "Unfinished uploads one user may hold at once; 429 with Retry-After beyond."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_QUOTA_BYTES", quota_bytes, "21474836480", 1,
	               1125899906842624LL,
	               "Bytes one user may hold (completed and unfinished uploads, by declared "
	               "length); creating an upload beyond is 413."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_AUTH_ISSUER", issuer, "http://127.0.0.1:8000", NULL,
	               "Expected iss of access tokens (exact match)."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_AUTH_AUDIENCE", audience, "switchboard", NULL,
	               "Audience access tokens must name in aud."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_AUTH_LEEWAY_S", leeway_s, "30", 0, 300,
	               "Clock skew allowed for exp, nbf and iat, seconds."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_JWKS_REFRESH_MS", jwks_refresh_ms, "300000", 1000,
	               86400000, "How often auth's JWKS is fetched again."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_CHUNK_SIZE", chunk_size, "10485760", 65536,
	               1073741824,
	               "Chunk size of a chunk-API upload whose initiate names none (10 MiB); "
	               "must not exceed SB_FILES_MAX_REQUEST_BYTES."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_CHUNK_MIN", chunk_min, "65536", 1, 1073741824,
	               "Smallest chunk_size an initiate may ask for (64 KiB); 400 below."),
	SB_CFG_BOOL_ROW(struct files_cfg, "SB_FILES_MERGE", merge, "true",
	                "Run the merge worker (a Kafka consumer of sb.file-merge.v1) in this "
	                "process."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_MERGE_GROUP", merge_group, "sb-files-merge",
	               NULL, "Kafka consumer group of the merge workers."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_MERGE_ATTEMPTS", merge_attempts, "5", 1, 100,
	               "Attempts at a merge (a part missing or corrupt) before the upload is "
	               "FAILED."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_MERGE_BACKOFF_MS", merge_backoff_ms, "500", 1,
	               600000, "Wait after the first failed merge attempt; doubles after each."),
	{ NULL },
};

static const struct sb_service_upstream files_upstreams[] = {
	{ "auth", offsetof(struct files_cfg, auth_url), true },
	{ NULL, 0, false },
};

static const struct sb_rpc_method files_methods[] = {
	SB_RPC_ROW(files, Expire, expire_request, expire_response, files_rpc_expire, 0),
	SB_RPC_END,
};

const struct sb_service_def files_service = {
	.name = "files",
	.config = files_config,
	.config_size = sizeof(struct files_cfg),
	.common_offset = offsetof(struct files_cfg, common),
	.upstreams = files_upstreams,
	.schema = "files",
	.migrations = files_migrations,
	.start = files_start,
	.stop = files_stop,
	.routes = files_route_list,
	.methods = files_methods,
	.worker_conns = SB_WORKER_PG,
	.worker_stmts = files_stmts,
	.worker_pg_opts = &files_pg_opts,
};
