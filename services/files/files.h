/* files.h: private header of the files service.
 *
 * Its one job: resumable uploads (tus 1.0 and the chunk API), storage and downloads.
 *
 * Shape: edge.c runs the project's HTTP server (sb_http) on SB_HTTP_PORT; its loop thread only
 * queues each request for one of SB_FILES_WORKERS worker threads (work.c), each with its own
 * PostgreSQL connection, which authenticate the caller (sb_service_authn), route the request
 * (route.c) to the tus handlers (tus.c) or the download (download.c), write bytes through the
 * storage interface (store.c, store_fs.c) and answer from the worker thread. The database
 * (db.c) holds the state of every upload; storage holds the bytes. A PATCH is acknowledged only
 * after its bytes are durable (fdatasync) and the new offset is committed, under the upload's
 * row lock, so two requests on one upload never interleave and a crash loses nothing that was
 * acknowledged.
 */
#ifndef SB_FILES_H
#define SB_FILES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_http.h"
#include "sb_jwt.h"
#include "sb_metrics.h"
#include "sb_pg.h"
#include "sb_service.h"
#include "sb_service_authn.h"
#include "sb_span.h"

struct files_cfg {
	struct sb_common_cfg common;
	char *auth_url;
	char *messages_url; /* attachments: who may download (attach.c) */
	char *http_addr;
	long long http_port;
	char *dir;
	long long max_size;
	long long max_request_bytes;
	long long expire_s;
	long long workers;
	long long queue_max;
	long long body_min_rate;
	char *allowed_origins;
	char *allowed_types;
	long long max_concurrent;
	long long quota_bytes;
	char *issuer;
	char *audience;
	long long leeway_s;
	long long jwks_refresh_ms;
	/* the chunk API and the merge worker (chunks.c, merge.c) */
	long long chunk_size;       /* default chunk size of an initiate without one */
	long long chunk_min;        /* smallest chunk size a client may ask for */
	bool merge;                 /* run the merge worker in this process */
	char *merge_group;          /* its Kafka consumer group */
	long long merge_attempts;   /* attempts before a merge is FAILED */
	long long merge_backoff_ms; /* first back-off between attempts (doubles) */
	/* storage backend (config.c; the S3 backend: s3.h, store_s3.c) */
	char *store;
	char *s3_endpoint;
	char *s3_bucket;
	char *s3_region;
	char *s3_access_key;
	char *s3_secret_key;
	long long s3_timeout_ms;
	char *s3_ca_file;
	long long s3_compose_max;
};

/* the migrations directory, embedded by sb_service() */
extern const struct sb_migration files_migrations[];

/* config.c */
extern const struct sb_cfg_key files_config[];
extern const struct sb_service_def files_service;

/* --- tus_parse.c: parsers of tus request headers (untrusted input; fuzzed) ------------------ */
#define FILES_NAME_MAX 256 /* sanitized file name, with its NUL */
#define FILES_TYPE_MAX 128 /* content type, with its NUL */

/* files_parse_size parses s as a tus size: 1 to 19 ASCII digits, no sign, no blanks, at most
 * INT64_MAX. Returns 0 and *out, or SB_EINVAL. */
int files_parse_size(const char *s, int64_t *out);

/* What an Upload-Metadata header says that the service uses. */
struct files_meta {
	char filename[FILES_NAME_MAX]; /* "filename" or "name", sanitized; "" if absent */
	char type[FILES_TYPE_MAX];     /* "filetype", "type" or "contentType"; "" if absent */
	size_t npairs;
};
/* files_meta_parse parses an Upload-Metadata value: comma-separated pairs "key" or
 * "key base64value", keys of printable ASCII without spaces or commas, each key once, at most
 * 64 pairs. Returns 0 and *m, or SB_EINVAL. A type that is not a plausible media type is
 * SB_EINVAL too. */
int files_meta_parse(const char *s, struct files_meta *m);

enum files_sum_alg {
	FILES_SUM_SHA1 = 1,
	FILES_SUM_SHA256,
	FILES_SUM_MD5,
};
/* files_checksum_parse parses an Upload-Checksum value "<algorithm> <base64 digest>". Returns
 * 0 with *alg, digest and *dlen; SB_ENOTFOUND for an algorithm the service does not support;
 * SB_EINVAL when malformed or the digest has the wrong length. */
int files_checksum_parse(const char *s, enum files_sum_alg *alg, uint8_t digest[64], size_t *dlen);
/* files_checksum_md returns the OpenSSL digest of alg (an EVP_MD), or NULL. */
struct evp_md_st;
const struct evp_md_st *files_checksum_md(enum files_sum_alg alg);
/* files_checksum_compute writes the alg digest of n bytes to out (64 bytes of room) and
 * returns its length, or 0 on failure. */
size_t files_checksum_compute(enum files_sum_alg alg, const void *buf, size_t n, uint8_t out[64]);
/* files_sanitize_name writes a safe file name made from in (n bytes) to out: the last path
 * component (after '/' or '\\'), control characters and invalid UTF-8 replaced by '_', quotes
 * and semicolons replaced, leading dots and blanks dropped, cut to fit on a character
 * boundary; "file" when nothing is left. */
void files_sanitize_name(const char *in, size_t n, char out[FILES_NAME_MAX]);
/* files_type_ok tells whether s looks like a media type (token "/" token, parameters allowed,
 * printable ASCII only, shorter than FILES_TYPE_MAX). */
bool files_type_ok(const char *s);

/* --- store.c, store_fs.c: the storage interface and the filesystem backend (S3: s3.h) ----- */
/* Objects are named by keys the service makes itself ("tus/<uuid>", "file/<uuid>"): never
 * from client input. Every call may block; call only from worker threads. */
struct files_store;
struct files_wr; /* a backend's piecewise writer */
struct files_store_ops {
	const char *name;
	/* write puts len bytes at off of key (created when absent) and returns only after they
	 * are durable (data and, for a new object, its directory entry). */
	int (*write)(struct files_store *s, const char *key, int64_t off, const void *buf,
	             size_t len);
	/* read reads up to len bytes at off into buf; *got is the count (0 at the end). */
	int (*read)(struct files_store *s, const char *key, int64_t off, void *buf, size_t len,
	            size_t *got);
	/* size gives the object's size; SB_ENOTFOUND when it does not exist. */
	int (*size)(struct files_store *s, const char *key, int64_t *out);
	/* truncate cuts (or extends with zeros) key to len bytes, durably. */
	int (*truncate)(struct files_store *s, const char *key, int64_t len);
	/* remove deletes key; a missing key is not an error. */
	int (*remove)(struct files_store *s, const char *key);
	void (*close)(struct files_store *s);
	/* A writer for bodies that arrive in pieces (optional: NULL in a backend without one,
	 * whose callers hold a body whole and call write). wopen starts writing key (created
	 * when absent, its directory entry durable) at off; wput puts the next len bytes after
	 * the previous ones and starts their writeback early; wclose makes everything put
	 * durable when sync (fdatasync) and frees w in any case. Each returns 0 or SB_EIO. */
	int (*wopen)(struct files_store *s, const char *key, int64_t off, struct files_wr **out);
	int (*wput)(struct files_wr *w, const void *buf, size_t len);
	int (*wclose)(struct files_wr *w, bool sync);
};
struct files_store {
	const struct files_store_ops *ops;
};
/* files_store_fs_open opens the filesystem backend rooted at dir (created if missing).
 * Returns 0 and *out (closed with files_store_close), SB_EIO or SB_ENOMEM. */
int files_store_fs_open(const char *dir, struct files_store **out);
/* files_store_close closes s (NULL is ignored). */
void files_store_close(struct files_store *s);
/* files_key writes the storage key of an upload's bytes ("tus/<id>") to out (64 bytes). */
void files_key(const char *id, char out[64]);
/* files_part_key writes the key of chunk n (from 1) of a chunked upload ("parts/<id>/<n>"). */
void files_part_key(const char *id, int n, char out[64]);

/* --- body.c: request bodies stored as they arrive ---------------------------------------- */
/* How files_body_store treats a body, and what it found. */
struct files_body {
	const struct evp_md_st *md; /* digest every byte with it (NULL: none) */
	const uint8_t *want;        /* the digest the body must have (NULL: no check) */
	size_t want_len;
	bool keep_partial; /* a client that leaves: keep (durably) the bytes it sent */
	/* out */
	uint8_t digest[64]; /* the body's digest under md */
	unsigned digest_len;
	int64_t got; /* bytes received, and stored from off when it returned 0 or kept them */
};
/* files_body_store reads the body of c's request and stores it at off of key. A streamed body
 * (sb_http_req_read) goes to a store with a writer (the filesystem) piece by piece as it
 * arrives, in FILES_BODY_PIECE bytes of memory; to a store without one (S3) it is read whole
 * first, as is a body sb_http read already. Returns 0: all of it durable at off (b->got is the
 * body's length). SB_EINVAL: the digest is not b->want; nothing acknowledged, though bytes past
 * off may have been written (a held body is checked before it is written: none). SB_ECLOSED or
 * SB_ETIMEDOUT: the client left or was too slow; with keep_partial the b->got bytes that
 * arrived are durable at off (none from a store without a writer), else b->got is 0. SB_EIO:
 * storage failed (logged); SB_ENOMEM. With key NULL the body is only read and digested. */
#define FILES_BODY_PIECE (256 << 10)
struct files_call;
int files_body_store(struct files_call *c, const char *key, int64_t off, struct files_body *b);

/* --- db.c: prepared statements and the upload row ---------------------------------------- */
extern const struct sb_pg_stmt files_stmts[];
extern const struct sb_pg_opts files_pg_opts;

enum files_state {
	FILES_UPLOADING = 1,
	FILES_MERGING,
	FILES_COMPLETED,
	FILES_FAILED,
	FILES_TERMINATED,
};
/* One row of files.uploads, as the handlers need it. */
struct files_upload {
	char id[37];
	char tenant_id[SB_JWT_ID_MAX];
	char owner_id[SB_JWT_ID_MAX];
	enum files_state state;
	int64_t length; /* -1: deferred */
	int64_t offset;
	int64_t expires_ms; /* Unix ms; 0: none */
	bool expired;
	char filename[FILES_NAME_MAX];
	char content_type[FILES_TYPE_MAX];
	char *metadata; /* the Upload-Metadata given at creation (malloc'd; files_upload_clear) */
	bool chunked;   /* made by the chunk API (not a tus upload) */
};
/* files_db_get reads upload id into *u (FOR UPDATE when lock: inside a transaction). Returns
 * 0, SB_ENOTFOUND or a database error. */
int files_db_get(struct sb_pg *pg, const char *id, bool lock, struct files_upload *u);
/* files_upload_clear frees what files_db_get allocated in u. */
void files_upload_clear(struct files_upload *u);
/* files_state_name returns "UPLOADING", ... */
const char *files_state_name(enum files_state s);
/* files_state_parse is the inverse of files_state_name (FILES_FAILED for an unknown name). */
enum files_state files_state_parse(const char *s);
/* One row of files.uploads as the chunk API and the merge worker need it. */
struct files_chunked {
	char id[37];
	char tenant_id[SB_JWT_ID_MAX];
	char owner_id[SB_JWT_ID_MAX];
	enum files_state state;
	bool chunked; /* protocol 'chunk' (else a tus upload) */
	int64_t length;
	int64_t chunk_size;
	int64_t total;
	char sha256[65]; /* hex: the client's (initiate) or the merged file's; "" if unknown */
	char failure[128];
	char filename[FILES_NAME_MAX];
	char content_type[FILES_TYPE_MAX];
	int64_t completed_ms;
};
/* files_chunked_get reads upload id with statement stmt ("chunk_upload", "…_keyshare",
 * "…_lock") into *u. Returns 0, SB_ENOTFOUND or a database error. */
int files_chunked_get(struct sb_pg *pg, const char *stmt, const char *id, struct files_chunked *u);

/* --- work.c: the request queue and the worker threads ---------------------------------- */
struct files_ctx; /* one worker's connections */
struct files {
	const struct files_cfg *cfg;
	struct sb_service *svc;
	struct files_store *store;
	struct sb_authn authn;
	struct sb_http_server *http;
	/* the queue of requests waiting for a worker */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sb_http_req **q;
	size_t qhead, qlen, qcap;
	bool stopping;
	pthread_t *threads;
	int nthreads;
	atomic_bool db_ok;
	struct files_metrics {
		struct sb_metric *requests; /* files_requests_total{method,status} */
		struct sb_series *bytes;    /* files_bytes_stored_total */
		struct sb_series *created, *completed, *terminated; /* files_uploads_total{event} */
		struct sb_series *chunks;                           /* files_chunks_stored_total */
		struct sb_metric *merges;                           /* files_merges_total{result} */
		struct sb_series *merge_seconds; /* files_merge_duration_seconds */
	} m;
	struct files_merge *merge; /* the merge worker (merge.c), NULL when off */
};
/* files_metrics_init registers the service's metrics into f->m (start hook). */
void files_metrics_init(struct files *f);
/* files_work_start starts cfg->workers worker threads. Returns 0 or an error (nothing left
 * running). */
int files_work_start(struct files *f);
/* files_work_push queues r for a worker (loop thread). Returns false when the queue is full or
 * the service is stopping: the caller answers r. */
bool files_work_push(struct files *f, struct sb_http_req *r);
/* files_work_stop wakes every worker, lets them answer what is queued, and joins them. */
void files_work_stop(struct files *f);

/* --- reply.c: answers (leaves every handler calls) ------------------------------------- */
#define FILES_HDR_MAX 24
/* The headers an answer collects before it is sent. */
struct files_reply {
	struct files *f;
	struct sb_http_req *req;
	struct sb_http_header h[FILES_HDR_MAX];
	size_t n;
	char store[2048]; /* text of formatted header values */
	size_t used;
	int status; /* the status answered, 0 before */
};
/* files_reply_init starts an answer to r with the headers every answer carries (Tus-Resumable
 * on /files/, CORS for an allowed Origin). */
void files_reply_init(struct files_reply *rp, struct files *f, struct sb_http_req *r, bool tus);
/* files_reply_add adds a header (name static, value copied). */
void files_reply_add(struct files_reply *rp, const char *name, const char *value);
/* files_reply_addf adds a header with a printf-formatted value. */
void files_reply_addf(struct files_reply *rp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* files_reply_expires adds Upload-Expires for ms (Unix ms; nothing for 0). */
void files_reply_expires(struct files_reply *rp, int64_t ms);
/* files_reply_send answers with status, content type and body (may be NULL). */
void files_reply_send(struct files_reply *rp, int status, const char *ctype, const void *body,
                      size_t len);
/* files_reply_problem answers with an RFC 9457 body and logs the refusal (warn for 5xx). */
void files_reply_problem(struct files_reply *rp, int status, const char *detail);

/* --- route.c: one request on a worker thread -------------------------------------------- */
/* What a handler knows about the request it serves. */
struct files_call {
	struct files *f;
	struct sb_pg *pg;
	struct sb_http_req *req;
	const char *method; /* after X-HTTP-Method-Override */
	char id[37];        /* the upload id of the path, if any */
	int64_t chunk;      /* the chunk number of the path or query, if any (-1: invalid) */
	struct sb_jwt_principal who;
	const char *user; /* who.user_id, or who.sub */
	struct files_reply rp;
	struct sb_span span; /* this HTTP request's (a child of its traceparent header) */
};
/* files_route serves r on a worker thread (pg: the worker's connection) and answers it. */
void files_route(struct files *f, struct sb_pg *pg, struct sb_http_req *r);
/* files_route_streamed tells, from the head of r (loop thread, must not block), whether its
 * body is streamed to storage as it arrives (sb_http stream_body): a tus PATCH and a chunk's
 * PUT or POST, the handlers that store bodies with files_body_store. */
bool files_route_streamed(const struct sb_http_req *r);
/* files_route_list appends the edge's routes (for --routes). */
int files_route_list(struct sb_buf *out);

/* --- tus.c: the tus 1.0 protocol ------------------------------------------------------ */
#define FILES_TUS_VERSION "1.0.0"
#define FILES_TUS_EXTENSIONS                                                                       \
	"creation,creation-with-upload,creation-defer-length,termination,checksum,expiration"
#define FILES_TUS_CHECKSUMS "sha1,sha256,md5"
/* files_tus_options answers OPTIONS (capabilities, and CORS preflight). */
void files_tus_options(struct files_call *c);
/* files_tus_create answers POST /files/ (creation, creation-with-upload, defer-length). */
void files_tus_create(struct files_call *c);
/* files_tus_head answers HEAD /files/{id}. */
void files_tus_head(struct files_call *c);
/* files_tus_patch answers PATCH /files/{id}. */
void files_tus_patch(struct files_call *c);
/* files_tus_delete answers DELETE /files/{id} (termination). */
void files_tus_delete(struct files_call *c);

/* files_tus_db_fail answers a database failure (rolled back): 503 with Retry-After. */
void files_tus_db_fail(struct files_call *c, int rv);
/* files_tus_load reads c's upload into *u (locked when lock), checks that the caller owns it
 * and that it still exists; answers (404, 410, 503), rolls back and returns false otherwise. */
bool files_tus_load(struct files_call *c, bool lock, struct files_upload *u);

/* --- chunks.c: the chunk API (docs/files.md) ----------------------------------------- */
#define FILES_OUTBOX       "files.outbox"
#define FILES_EVENT_SOURCE "/files"
#define FILES_EV_MERGE_REQ "io.switchboard.file.merge_requested.v1"
#define FILES_EV_COMPLETED "io.switchboard.file.upload_completed.v1"
/* files_outbox_put writes one event about upload_id to files.outbox inside pg's transaction:
 * msg packed as the payload, CloudEvents subject "uploads/<id>", source FILES_EVENT_SOURCE
 * (outbox.c; traceparent may be NULL). Returns 0, SB_ENOMEM or a database error. */
struct ProtobufCMessage;
int files_outbox_put(struct sb_pg *pg, const char *upload_id, const char *event_type,
                     const char *topic, const char *traceparent,
                     const struct ProtobufCMessage *msg);
/* files_chunks_initiate answers POST /v1/files/initiate. */
void files_chunks_initiate(struct files_call *c);
/* files_chunks_put answers PUT /v1/files/{id}/chunks/{n} and POST ...?chunk_number=n. */
void files_chunks_put(struct files_call *c);
/* files_chunks_status answers GET /v1/files/{id}/status. */
void files_chunks_status(struct files_call *c);
/* files_chunks_complete answers POST /v1/files/{id}/complete. */
void files_chunks_complete(struct files_call *c);
/* files_chunks_options answers the CORS preflight (OPTIONS) of the chunk API's routes: 204,
 * with the methods and request headers the API takes when the browser asks (the
 * Access-Control-Allow-Origin of an allowed Origin is added to every answer). */
void files_chunks_options(struct files_call *c);
/* --- chunk_parse.c: the chunk API's input parsers (untrusted input; fuzzed) ------------- */
/* files_chunk_size_ok tells whether a chunk n (from 1) of len bytes fits an upload of size
 * bytes in total chunks of chunk_size: every chunk but the last is exactly chunk_size, the
 * last is the rest. */
bool files_chunk_size_ok(int64_t size, int64_t chunk_size, int64_t total, int64_t n, int64_t len);
/* files_chunk_number parses a chunk number: 1 to 9 ASCII digits, no sign, no leading zero.
 * Returns it, or -1. */
int64_t files_chunk_number(const char *s, size_t n);
/* files_chunk_query finds the first "chunk_number=" pair of a query string (pairs separated by
 * '&', not percent-decoded) and parses its value with files_chunk_number. Returns it, or -1
 * when absent or invalid. */
int64_t files_chunk_query(const char *query);
/* files_sha256_hex_parse tells whether s is exactly 64 hex digits (either case) and writes
 * them in lower case, NUL-ended, to out. */
bool files_sha256_hex_parse(const char *s, char out[65]);

/* --- merge.c: the merge worker ---------------------------------------------------------- */
struct files_merge;
/* files_merge_start starts the merge worker thread (consumer group cfg->merge_group on
 * SB_TOPIC_FILE_MERGE). Returns 0 or an error. */
int files_merge_start(struct files *f);
/* files_merge_stop stops and joins it (NULL allowed); an unfinished merge is left to a
 * redelivery. */
void files_merge_stop(struct files_merge *m);

/* --- limits.c: per-user limits and the content-type allow-list -------------------------- */
/* files_type_allowed tells whether media type type (parameters ignored) matches an entry of
 * the comma-separated list: a full type, a type with any subtype ("image/ *" without the
 * blank) or any type at all, without case. */
bool files_type_allowed(const char *list, const char *type);
/* files_limits_check runs inside the transaction that creates an upload (new_upload) or
 * declares a deferred length: takes the caller's advisory lock and checks bytes held plus
 * length more (<= 0: none) against the quota and, for a new upload, the uploads in progress.
 * Sets *status (0, 429 or 413) and *why. Returns 0 or a database error. */
int files_limits_check(struct files_call *c, int64_t length, bool new_upload, int *status,
                       const char **why);

/* --- download.c: GET /v1/files/{id}/content -------------------------------------------- */
void files_download(struct files_call *c);

/* --- attach.c: attachments (messages asks files; files asks messages) ------------------ */
#define FILES_ATTACH_MAX 10 /* file ids one message may attach */
/* files_rpc_check_attachments serves files.CheckAttachments (messages.Send asks). */
int files_rpc_check_attachments(struct sb_rpc_call *call, const void *req, void *resp);
/* files_may_read tells whether c's caller may download u: its owner, or (asking
 * messages.CanReadAttachment) a member of a conversation with a message attaching it. Returns
 * 0, SB_ENOTFOUND (answer 404: existence is not revealed) or SB_EUNAVAIL (messages did not
 * answer: 503). Blocks on the RPC: worker threads only. */
int files_may_read(struct files_call *c, const struct files_upload *u);

/* --- expire.c: files.Expire (called by gc) ------------------------------------------ */
int files_rpc_expire(struct sb_rpc_call *call, const void *req, void *resp);

/* --- edge.c: start and stop -------------------------------------------------------------- */
int files_start(struct sb_service *svc);
void files_stop(struct sb_service *svc);

#endif
