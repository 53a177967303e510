/* config.c: the files service's configuration table and service definition. */
#include "files.h"

#include "files.pb-c.h"

#include <stdio.h>
#include <string.h>

#include "sb_err.h"

/* files_validate_store accepts the storage backends the service has. */
static int
files_validate_store(const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "fs") == 0 || strcmp(v, "s3") == 0)
		return 0;
	snprintf(err, errlen, "must be fs or s3");
	return SB_EINVAL;
}

const struct sb_cfg_key files_config[] = {
	SB_CFG_COMMON(struct files_cfg, common, 9104, 7104),
	SB_CFG_POSTGRES(struct files_cfg, common),
	SB_CFG_KAFKA(struct files_cfg, common),
	SB_CFG_UPSTREAM(struct files_cfg, auth_url, AUTH, 7101),
	SB_CFG_UPSTREAM(struct files_cfg, messages_url, MESSAGES, 7102),
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
	SB_CFG_INT_ROW(
	    struct files_cfg, "SB_FILES_BODY_MIN_RATE", body_min_rate, "16384", 0, 1073741824,
	    "Bytes per second an upload body (PATCH, chunk) must average from 10 s after "
	    "its head, else 408 (what arrived is kept as after a disconnect); bounds how "
	    "long a trickling or stalled client holds a worker. 0 = no minimum."),
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
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_STORE", store, "fs", files_validate_store,
	               "Storage backend: fs (files under SB_FILES_DIR) or s3 (an S3-compatible "
	               "object store, SB_FILES_S3_*; layout in docs/files.md)."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_S3_ENDPOINT", s3_endpoint,
	               "http://127.0.0.1:9000", sb_config_validate_url,
	               "S3 endpoint, http://host:port or https://host:port (path-style "
	               "addressing: /bucket/key)."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_S3_BUCKET", s3_bucket, "switchboard-files", NULL,
	               "S3 bucket of the files service (created at start when missing)."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_S3_REGION", s3_region, "us-east-1", NULL,
	               "Region named in SigV4 signatures."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_S3_ACCESS_KEY", s3_access_key, "", NULL,
	               "S3 access key id."),
	SB_CFG_SECRET_ROW(struct files_cfg, "SB_FILES_S3_SECRET_KEY", s3_secret_key, "", NULL,
	                  "S3 secret access key."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_S3_TIMEOUT_MS", s3_timeout_ms, "30000", 100,
	               600000, "Deadline of one S3 request, milliseconds."),
	SB_CFG_STR_ROW(struct files_cfg, "SB_FILES_S3_CA_FILE", s3_ca_file, "", NULL,
	               "For an https endpoint: PEM file of the CAs to trust (empty: the "
	               "system's). The certificate must name the endpoint's host."),
	SB_CFG_INT_ROW(struct files_cfg, "SB_FILES_S3_COMPOSE_MAX_BYTES", s3_compose_max,
	               "268435456", 0, 1099511627776LL,
	               "Largest completed upload whose segments (each >= 5 MiB but the last) are "
	               "composed into one S3 object, server-side, before the last PATCH is "
	               "answered; 0: never. Larger files stay a chain of segments."),
	{ NULL },
};

static const struct sb_service_upstream files_upstreams[] = {
	{ "auth", offsetof(struct files_cfg, auth_url), true },
	{ "messages", offsetof(struct files_cfg, messages_url), false },
	{ NULL, 0, false },
};

static const struct sb_rpc_method files_methods[] = {
	SB_RPC_ROW(files, Expire, expire_request, expire_response, files_rpc_expire, 0),
	SB_RPC_ROW(files, CheckAttachments, check_attachments_request, check_attachments_response,
	           files_rpc_check_attachments, 0),
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
