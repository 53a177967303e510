/* chunks.c: the chunk API (docs/files.md): initiate, chunks, status, complete.
 *
 * A chunk is written to its own storage object (files_part_key) through the storage interface,
 * durably, before its row is inserted and committed; only then is it answered. The chunk holds
 * the upload's row FOR KEY SHARE, so complete (FOR UPDATE) cannot move the upload to MERGING
 * under it, while chunks of one upload are written side by side; two writes of the same chunk
 * are serialized by a transaction-scoped advisory lock. complete writes the merge request to
 * files.outbox in the transaction that makes the upload MERGING. */
#include "files.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/files_events.pb-c.h"
#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_names.h"
#include "sb_util_hex.h"
#include "sb_util_uuid.h"

/* Most missing chunk numbers a problem's detail names (the member lists all). */
#define FILES_MISSING_IN_DETAIL 20

/* files_chunks_json answers status with the JSON document in b (freed). */
static void
files_chunks_json(struct files_call *c, int status, struct sb_buf *b)
{
	files_reply_send(&c->rp, status, "application/json", b->data, b->len);
	sb_buf_free(b);
}

/* files_chunks_load reads c's chunked upload with stmt (inside a transaction for a locking
 * one) and checks the caller owns it; answers (404, 503), rolls back and returns false
 * otherwise. A tus upload is not found here. */
static bool
files_chunks_load(struct files_call *c, const char *stmt, struct files_chunked *u)
{
	int rv = files_chunked_get(c->pg, stmt, c->id, u);
	if (rv == SB_ENOTFOUND ||
	    (rv == 0 && (!u->chunked || strcmp(u->tenant_id, c->who.tenant_id) != 0 ||
	                 strcmp(u->owner_id, c->user) != 0))) {
		sb_pg_rollback(c->pg);
		files_reply_problem(&c->rp, 404, "no such upload");
		return false;
	}
	if (rv != 0) {
		files_tus_db_fail(c, rv);
		return false;
	}
	return true;
}

/* files_chunks_bad_state answers an upload that takes no more chunks (rolled back). */
static void
files_chunks_bad_state(struct files_call *c, const struct files_chunked *u)
{
	char detail[96];
	sb_pg_rollback(c->pg);
	snprintf(detail, sizeof(detail), "the upload is %s", files_state_name(u->state));
	files_reply_problem(
	    &c->rp, u->state == FILES_FAILED || u->state == FILES_TERMINATED ? 410 : 409, detail);
}

void
files_chunks_initiate(struct files_call *c)
{
	const struct files_cfg *cfg = c->f->cfg;
	json_error_t jerr;
	json_t *doc = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	char name[FILES_NAME_MAX], type[FILES_TYPE_MAX], sha[65] = "";
	int64_t size = 0, chunk = cfg->chunk_size;
	const char *why = NULL;

	if (doc == NULL || !json_is_object(doc)) {
		why = "the body must be a JSON object";
		goto bad;
	}
	json_t *jn = json_object_get(doc, "filename"), *js = json_object_get(doc, "size");
	json_t *jt = json_object_get(doc, "content_type"), *jc = json_object_get(doc, "chunk_size");
	json_t *jh = json_object_get(doc, "sha256");
	if (!json_is_string(jn) || json_string_length(jn) == 0) {
		why = "filename must be a non-empty string";
		goto bad;
	}
	if (!json_is_integer(js) || json_integer_value(js) < 1) {
		why = "size must be a positive integer";
		goto bad;
	}
	size = json_integer_value(js);
	if (jt != NULL && !json_is_null(jt) &&
	    (!json_is_string(jt) || !files_type_ok(json_string_value(jt)))) {
		why = "content_type must be a media type (type/subtype)";
		goto bad;
	}
	if (jc != NULL && !json_is_null(jc)) {
		if (!json_is_integer(jc) || json_integer_value(jc) < cfg->chunk_min ||
		    json_integer_value(jc) > cfg->max_request_bytes) {
			char d[160];
			snprintf(d, sizeof(d),
			         "chunk_size must be an integer from %lld to %lld (bytes)",
			         cfg->chunk_min, cfg->max_request_bytes);
			json_decref(doc);
			files_reply_problem(&c->rp, 400, d);
			return;
		}
		chunk = json_integer_value(jc);
	}
	if (jh != NULL && !json_is_null(jh) &&
	    (!json_is_string(jh) || !files_sha256_hex_parse(json_string_value(jh), sha))) {
		why = "sha256 must be 64 hex digits";
		goto bad;
	}
	files_sanitize_name(json_string_value(jn), json_string_length(jn), name);
	snprintf(type, sizeof(type), "%s",
	         json_is_string(jt) ? json_string_value(jt) : "application/octet-stream");
	json_decref(doc);
	doc = NULL;
	if (size > cfg->max_size) {
		char d[96];
		snprintf(d, sizeof(d), "size is above the largest upload (%lld bytes)",
		         cfg->max_size);
		files_reply_problem(&c->rp, 413, d);
		return;
	}
	if (chunk > cfg->max_request_bytes) { /* the default above a lowered request limit */
		files_reply_problem(&c->rp, 500, "SB_FILES_CHUNK_SIZE exceeds the request limit");
		return;
	}
	if (!files_type_allowed(cfg->allowed_types, type)) {
		files_reply_problem(&c->rp, 415, "this content type is not accepted");
		return;
	}
	int64_t total = (size + chunk - 1) / chunk;
	struct sb_uuid u;
	char id[SB_UUID_STR_LEN + 1], len_s[24], chunk_s[24], total_s[24];
	int status = 0, rv;
	if ((rv = sb_uuid_v4(&u)) != 0) {
		files_reply_problem(&c->rp, 500, "cannot make an id");
		return;
	}
	sb_uuid_format(&u, id);
	snprintf(len_s, sizeof(len_s), "%" PRId64, size);
	snprintf(chunk_s, sizeof(chunk_s), "%" PRId64, chunk);
	snprintf(total_s, sizeof(total_s), "%" PRId64, total);
	if ((rv = sb_pg_begin(c->pg)) != 0 ||
	    (rv = files_limits_check(c, size, true, &status, &why)) != 0) {
		files_tus_db_fail(c, rv);
		return;
	}
	if (status != 0) {
		sb_pg_rollback(c->pg);
		if (status == 429)
			files_reply_add(&c->rp, "Retry-After", "60");
		files_reply_problem(&c->rp, status, why);
		return;
	}
	const char *p[] = { id,   c->who.tenant_id,   c->user, len_s, chunk_s, total_s, name,
		            type, sha[0] ? sha : NULL };
	if ((rv = sb_pg_exec_prepared(c->pg, "chunk_create", 9, p, NULL)) != 0 ||
	    (rv = sb_pg_commit(c->pg)) != 0) {
		files_tus_db_fail(c, rv);
		return;
	}
	sb_series_inc(c->f->m.created);
	struct sb_buf b = SB_BUF_INIT;
	sb_buf_printf(&b,
	              "{\"upload_id\":\"%s\",\"total_chunks\":%" PRId64 ",\"chunk_size\":%" PRId64
	              ",\"size\":%" PRId64 ",\"state\":\"UPLOADING\"}",
	              id, total, chunk, size);
	files_reply_addf(&c->rp, "Location", "/v1/files/%s/status", id);
	files_chunks_json(c, 201, &b);
	return;
bad:
	json_decref(doc);
	files_reply_problem(&c->rp, 400, why);
}

void
files_chunks_put(struct files_call *c)
{
	struct files_chunked u;
	char sha[65], want[65], n_s[16], len_s[24], key[64];
	const char *hdr = sb_http_req_header(c->req, "Content-SHA256");
	int64_t len = (int64_t)c->req->body_len;
	int rv;

	if (c->chunk < 1) {
		files_reply_problem(&c->rp, 400,
		                    "the chunk number must be an integer from 1 (path or "
		                    "chunk_number)");
		return;
	}
	uint8_t want_bin[32];
	if (hdr != NULL &&
	    (!files_sha256_hex_parse(hdr, want) || sb_hex_decode(want, 32, 0, want_bin) != 0)) {
		files_reply_problem(&c->rp, 400, "Content-SHA256 must be 64 hex digits");
		return;
	}
	/* The body is read only after the checks below (404, 409, 400 for its size come before
	 * any byte), digested as it arrives and, for a new chunk, written as it arrives. */
	struct files_body body = { .md = EVP_sha256(),
		                   .want = hdr != NULL ? want_bin : NULL,
		                   .want_len = 32 };
	snprintf(n_s, sizeof(n_s), "%" PRId64, c->chunk);
	snprintf(len_s, sizeof(len_s), "%" PRId64, len);
	if ((rv = sb_pg_begin(c->pg)) != 0) {
		files_tus_db_fail(c, rv);
		return;
	}
	if (!files_chunks_load(c, "chunk_upload_keyshare", &u))
		return;
	if (u.state != FILES_UPLOADING) {
		files_chunks_bad_state(c, &u);
		return;
	}
	if (c->chunk > u.total) {
		char d[96];
		sb_pg_rollback(c->pg);
		snprintf(d, sizeof(d), "the upload has %" PRId64 " chunks, numbered from 1",
		         u.total);
		files_reply_problem(&c->rp, 400, d);
		return;
	}
	if (!files_chunk_size_ok(u.length, u.chunk_size, u.total, c->chunk, len)) {
		char d[128];
		sb_pg_rollback(c->pg);
		snprintf(d, sizeof(d), "chunk %" PRId64 " must be %" PRId64 " bytes, not %" PRId64,
		         c->chunk,
		         c->chunk < u.total ? u.chunk_size
		                            : u.length - (u.total - 1) * u.chunk_size,
		         len);
		files_reply_problem(&c->rp, 400, d);
		return;
	}
	const char *lp[] = { u.id, n_s };
	PGresult *res = NULL;
	if ((rv = sb_pg_exec_prepared(c->pg, "chunk_n_lock", 2, lp, NULL)) != 0 ||
	    (rv = sb_pg_exec_prepared(c->pg, "chunk_get", 2, lp, &res)) != 0) {
		files_tus_db_fail(c, rv);
		return;
	}
	int existing = PQntuples(res);
	char stored[65] = "";
	if (existing == 1)
		snprintf(stored, sizeof(stored), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	/* A chunk stored before is only read and digested (the same again is idempotent). */
	files_part_key(u.id, (int)c->chunk, key);
	rv = files_body_store(c, existing == 1 ? NULL : key, 0, &body);
	if (rv != 0) {
		sb_pg_rollback(c->pg);
		if (existing == 0 && c->f->store->ops->wopen != NULL)
			c->f->store->ops->remove(c->f->store, key); /* nothing of it is kept */
		if (rv == SB_EINVAL) {
			files_reply_problem(&c->rp, 400,
			                    "Content-SHA256 does not match the body: the chunk was "
			                    "not stored");
		} else if (rv == SB_ECLOSED || rv == SB_ETIMEDOUT) {
			files_reply_problem(&c->rp, 408,
			                    "the chunk did not arrive whole: it was not stored");
		} else {
			sb_log_kv(SB_LOG_ERROR, "cannot store a chunk", "upload_id", u.id, "error",
			          sb_strerror(rv), NULL);
			files_reply_add(&c->rp, "Retry-After", "1");
			files_reply_problem(&c->rp, 503, "storage failed to keep the chunk; retry");
		}
		return;
	}
	sb_hex_encode(body.digest, 32, sha);
	sha[64] = '\0';
	int status = 201;
	if (existing == 1 && strcmp(stored, sha) != 0) {
		sb_pg_rollback(c->pg);
		files_reply_problem(&c->rp, 409, "this chunk is already stored with other content");
		return;
	}
	if (existing == 1) {
		sb_pg_rollback(c->pg); /* stored and committed before: nothing to do */
		status = 200;
	} else {
		const char *ip[] = { u.id, n_s, len_s, sha };
		if ((rv = sb_pg_exec_prepared(c->pg, "chunk_insert", 4, ip, NULL)) != 0 ||
		    (rv = sb_pg_commit(c->pg)) != 0) {
			files_tus_db_fail(c, rv);
			return;
		}
		sb_series_add(c->f->m.bytes, (double)len);
		sb_series_inc(c->f->m.chunks);
	}
	struct sb_buf b = SB_BUF_INIT;
	sb_buf_printf(&b,
	              "{\"upload_id\":\"%s\",\"chunk_number\":%" PRId64 ",\"size\":%" PRId64
	              ",\"sha256\":\"%s\"}",
	              u.id, c->chunk, len, sha);
	files_chunks_json(c, status, &b);
}

/* files_chunks_have reads which chunks of u are stored into have (u->total entries, zeroed by
 * the caller). Returns how many, or an sb_pg error. */
static int64_t
files_chunks_have(struct sb_pg *pg, const struct files_chunked *u, bool *have)
{
	PGresult *res = NULL;
	const char *p[] = { u->id };
	int rv = sb_pg_exec_prepared(pg, "chunk_list", 1, p, &res);
	if (rv != 0)
		return rv;
	int64_t count = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t n = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if (n >= 1 && n <= u->total && !have[n - 1]) {
			have[n - 1] = true;
			count++;
		}
	}
	PQclear(res);
	return count;
}

/* files_chunks_missing appends the JSON array of the chunks not in have to b, and the first
 * few to detail (when not NULL). */
static int
files_chunks_missing(struct sb_buf *b, const bool *have, int64_t total, struct sb_buf *detail)
{
	int rc = sb_buf_puts(b, "[");
	int64_t shown = 0, k = 0;
	for (int64_t i = 0; i < total; i++) {
		if (have[i])
			continue;
		rc |= sb_buf_printf(b, "%s%" PRId64, k++ ? "," : "", i + 1);
		if (detail != NULL && shown < FILES_MISSING_IN_DETAIL)
			rc |= sb_buf_printf(detail, "%s%" PRId64, shown++ ? ", " : "", i + 1);
	}
	if (detail != NULL && k > shown)
		rc |= sb_buf_printf(detail, " and %" PRId64 " more", k - shown);
	rc |= sb_buf_puts(b, "]");
	return rc ? SB_ENOMEM : 0;
}

void
files_chunks_status(struct files_call *c)
{
	struct files_chunked u;
	if (!files_chunks_load(c, "chunk_upload", &u))
		return;
	bool *have = calloc((size_t)(u.total > 0 ? u.total : 1), sizeof(*have));
	if (have == NULL) {
		files_reply_problem(&c->rp, 503, "out of memory");
		return;
	}
	int64_t count = u.total;
	if (u.state == FILES_UPLOADING || u.state == FILES_MERGING) {
		count = files_chunks_have(c->pg, &u, have);
		if (count < 0) {
			free(have);
			files_tus_db_fail(c, (int)count);
			return;
		}
	} else if (u.state == FILES_COMPLETED) {
		for (int64_t i = 0; i < u.total; i++)
			have[i] = true; /* merged: the chunk rows are gone */
	} else {
		count = 0; /* FAILED, TERMINATED: the parts are gone */
	}
	struct sb_buf b = SB_BUF_INIT;
	int rc = sb_buf_printf(
	    &b,
	    "{\"upload_id\":\"%s\",\"state\":\"%s\",\"uploaded_chunks\":%" PRId64
	    ",\"total_chunks\":%" PRId64 ",\"percentage\":%.1f,"
	    "\"chunk_size\":%" PRId64 ",\"size\":%" PRId64 ",\"missing_chunks\":",
	    u.id, files_state_name(u.state), count, u.total,
	    u.total > 0 ? (double)count * 100.0 / (double)u.total : 0.0, u.chunk_size, u.length);
	rc |= files_chunks_missing(&b, have,
	                           u.state == FILES_UPLOADING || u.state == FILES_MERGING ||
	                                   u.state == FILES_COMPLETED
	                               ? u.total
	                               : 0,
	                           NULL);
	if (u.sha256[0] != '\0' && u.state == FILES_COMPLETED)
		rc |= sb_buf_printf(&b, ",\"sha256\":\"%s\"", u.sha256);
	if (u.failure[0] != '\0') {
		rc |= sb_buf_puts(&b, ",\"failure\":");
		rc |= sb_buf_json_str(&b, u.failure);
	}
	rc |= sb_buf_puts(&b, "}");
	free(have);
	if (rc != 0) {
		sb_buf_free(&b);
		files_reply_problem(&c->rp, 503, "out of memory");
		return;
	}
	files_chunks_json(c, 200, &b);
}

/* files_chunks_missing_problem answers 400 naming the missing chunks (detail and the member
 * missing_chunks) as an RFC 9457 body; rolled back by the caller. */
static void
files_chunks_missing_problem(struct files_call *c, const bool *have, int64_t total, int64_t count)
{
	struct sb_buf list = SB_BUF_INIT, detail = SB_BUF_INIT, b = SB_BUF_INIT;
	char rid[SB_HTTP_REQUEST_ID_MAX];
	int rc = sb_buf_printf(
	    &detail, "%" PRId64 " of %" PRId64 " chunks are missing: ", total - count, total);
	rc |= files_chunks_missing(&list, have, total, &detail);
	sb_http_request_id(sb_http_req_header(c->req, "X-Request-Id"), rid);
	rc |= sb_buf_puts(&b, "{\"type\":\"about:blank\",\"title\":\"Bad Request\","
	                      "\"status\":400,\"detail\":");
	rc |= sb_buf_json_str(&b, detail.data != NULL ? detail.data : "");
	rc |= sb_buf_printf(
	    &b, ",\"missing_chunks\":%s,\"request_id\":", list.data != NULL ? list.data : "[]");
	rc |= sb_buf_json_str(&b, rid);
	rc |= sb_buf_puts(&b, "}");
	if (rc != 0) {
		sb_buf_free(&list);
		sb_buf_free(&detail);
		sb_buf_free(&b);
		files_reply_problem(&c->rp, 503, "out of memory");
		return;
	}
	sb_log_kv(SB_LOG_INFO, "request refused", "status", "400", "method", c->req->method, "path",
	          c->req->path, "detail", detail.data, NULL);
	files_reply_add(&c->rp, "X-Request-Id", rid);
	files_reply_send(&c->rp, 400, "application/problem+json", b.data, b.len);
	sb_buf_free(&list);
	sb_buf_free(&detail);
	sb_buf_free(&b);
}

/* files_chunks_merge_request writes the FileMergeRequested row of u to files.outbox (inside
 * the caller's transaction). */
static int
files_chunks_merge_request(struct files_call *c, const struct files_chunked *u)
{
	Sb__Events__FileMergeRequested ev = SB__EVENTS__FILE_MERGE_REQUESTED__INIT;
	ev.upload_id = (char *)u->id;
	ev.tenant_id = (char *)u->tenant_id;
	ev.size = u->length;
	ev.chunk_count = (int32_t)u->total;
	ev.sha256 = (char *)u->sha256;
	return files_outbox_put(c->pg, u->id, FILES_EV_MERGE_REQ, SB_TOPIC_FILE_MERGE,
	                        sb_http_req_header(c->req, "traceparent"), &ev.base);
}

void
files_chunks_complete(struct files_call *c)
{
	struct files_chunked u;
	int rv, status = 202;

	if ((rv = sb_pg_begin(c->pg)) != 0) {
		files_tus_db_fail(c, rv);
		return;
	}
	if (!files_chunks_load(c, "chunk_upload_lock", &u))
		return;
	if (u.state == FILES_UPLOADING) {
		bool *have = calloc((size_t)u.total, sizeof(*have));
		if (have == NULL) {
			sb_pg_rollback(c->pg);
			files_reply_problem(&c->rp, 503, "out of memory");
			return;
		}
		int64_t count = files_chunks_have(c->pg, &u, have);
		if (count < 0) {
			free(have);
			files_tus_db_fail(c, (int)count);
			return;
		}
		if (count < u.total) {
			sb_pg_rollback(c->pg);
			files_chunks_missing_problem(c, have, u.total, count);
			free(have);
			return;
		}
		free(have);
		const char *p[] = { u.id };
		if ((rv = sb_pg_exec_prepared(c->pg, "chunk_merging", 1, p, NULL)) != 0 ||
		    (rv = files_chunks_merge_request(c, &u)) != 0 ||
		    (rv = sb_pg_commit(c->pg)) != 0) {
			files_tus_db_fail(c, rv);
			return;
		}
		u.state = FILES_MERGING;
	} else if (u.state == FILES_MERGING || u.state == FILES_COMPLETED) {
		sb_pg_rollback(c->pg); /* complete again: the merge was requested already */
		status = u.state == FILES_COMPLETED ? 200 : 202;
	} else {
		files_chunks_bad_state(c, &u);
		return;
	}
	struct sb_buf b = SB_BUF_INIT;
	sb_buf_printf(&b, "{\"upload_id\":\"%s\",\"state\":\"%s\"}", u.id,
	              files_state_name(u.state));
	files_reply_addf(&c->rp, "Location", "/v1/files/%s/status", u.id);
	files_chunks_json(c, status, &b);
}

void
files_chunks_options(struct files_call *c)
{
	if (sb_http_req_header(c->req, "Access-Control-Request-Method") != NULL) {
		files_reply_add(&c->rp, "Access-Control-Allow-Methods", "POST, PUT, GET, OPTIONS");
		files_reply_add(&c->rp, "Access-Control-Allow-Headers",
		                "Authorization, Content-Type, Content-SHA256, X-Request-Id");
		files_reply_add(&c->rp, "Access-Control-Max-Age", "86400");
	}
	files_reply_send(&c->rp, 204, NULL, NULL, 0);
}
