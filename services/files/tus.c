/* tus.c: the tus 1.0 protocol at /files/ (core, creation, creation-with-upload,
 * creation-defer-length, termination, checksum, expiration).
 *
 * A PATCH takes the upload's row lock (SELECT ... FOR UPDATE), checks the offset, writes the
 * bytes durably to storage, records the new offset and commits; only then is it answered. Two
 * requests on one upload therefore never interleave, a crash before the commit leaves the old
 * offset (bytes past it are overwritten by the retry, and cut off when the upload completes),
 * and an acknowledged offset is always backed by durable bytes. A PATCH's body is streamed
 * (files_body_store): the offset is checked (409) before any byte is read, pieces are written
 * at their offset as they arrive and digested on the way; a checksum mismatch (460) leaves the
 * offset where it was (the bytes written past it are overwritten by the next PATCH, cut at
 * completion); a client that leaves mid-PATCH without Upload-Checksum keeps the bytes that
 * arrived (made durable, the offset moved to them), with one it keeps nothing. */
#include "files.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_pg.h"
#include "sb_util_uuid.h"

#define FILES_OCTETS "application/offset+octet-stream"

void
files_tus_options(struct files_call *c)
{
	files_reply_add(&c->rp, "Tus-Version", FILES_TUS_VERSION);
	files_reply_add(&c->rp, "Tus-Extension", FILES_TUS_EXTENSIONS);
	files_reply_addf(&c->rp, "Tus-Max-Size", "%lld", c->f->cfg->max_size);
	files_reply_add(&c->rp, "Tus-Checksum-Algorithm", FILES_TUS_CHECKSUMS);
	if (sb_http_req_header(c->req, "Access-Control-Request-Method") != NULL) {
		files_reply_add(&c->rp, "Access-Control-Allow-Methods",
		                "POST, GET, HEAD, PATCH, DELETE, OPTIONS");
		files_reply_add(&c->rp, "Access-Control-Allow-Headers",
		                "Authorization, Content-Type, Tus-Resumable, Upload-Length, "
		                "Upload-Metadata, Upload-Offset, Upload-Defer-Length, "
		                "Upload-Checksum, X-HTTP-Method-Override, X-Requested-With, "
		                "X-Request-Id, Range, If-None-Match");
		files_reply_add(&c->rp, "Access-Control-Max-Age", "86400");
	}
	files_reply_send(&c->rp, 204, NULL, NULL, 0);
}

/* files_tus_db_fail answers a database failure: 503 with Retry-After (the client retries). */
void
files_tus_db_fail(struct files_call *c, int rv)
{
	sb_pg_rollback(c->pg);
	sb_log_kv(SB_LOG_WARN, "database call failed", "error", sb_strerror(rv), "sqlstate",
	          sb_pg_sqlstate(c->pg), NULL);
	files_reply_add(&c->rp, "Retry-After", "1");
	files_reply_problem(&c->rp, 503, "the upload database is unavailable; retry shortly");
}

/* files_tus_load reads c's upload into *u (locked when lock), checks that the caller owns it
 * and that it still exists; answers (404, 410, 503) and returns false otherwise. */
bool
files_tus_load(struct files_call *c, bool lock, struct files_upload *u)
{
	int rv = files_db_get(c->pg, c->id, lock, u);
	/* an upload of the chunk API is not a tus upload: its bytes go through its chunks */
	if (rv == SB_ENOTFOUND ||
	    (rv == 0 && (u->chunked || strcmp(u->tenant_id, c->who.tenant_id) != 0 ||
	                 strcmp(u->owner_id, c->user) != 0))) {
		files_upload_clear(u);
		sb_pg_rollback(c->pg);
		files_reply_problem(&c->rp, 404, "no such upload");
		return false;
	}
	if (rv != 0) {
		files_upload_clear(u);
		files_tus_db_fail(c, rv);
		return false;
	}
	if (u->state == FILES_TERMINATED || u->state == FILES_FAILED ||
	    (u->state == FILES_UPLOADING && u->expired)) {
		sb_pg_rollback(c->pg);
		files_reply_problem(&c->rp, 410,
		                    u->state == FILES_TERMINATED ? "the upload was terminated"
		                    : u->state == FILES_FAILED   ? "the upload failed"
		                                                 : "the upload has expired");
		files_upload_clear(u);
		return false;
	}
	return true;
}

/* files_tus_sum_header parses Upload-Checksum into *b (nothing when absent); answers 400 and
 * returns false when it is malformed or names an algorithm the service lacks. */
static bool
files_tus_sum_header(struct files_call *c, struct files_body *b, uint8_t want[64])
{
	const char *v = sb_http_req_header(c->req, "Upload-Checksum");
	if (v == NULL)
		return true;
	enum files_sum_alg alg;
	int rv = files_checksum_parse(v, &alg, want, &b->want_len);
	if (rv == SB_ENOTFOUND) {
		files_reply_problem(&c->rp, 400,
		                    "unsupported checksum algorithm (sha1, sha256, md5)");
		return false;
	}
	if (rv != 0) {
		files_reply_problem(&c->rp, 400, "malformed Upload-Checksum");
		return false;
	}
	b->md = files_checksum_md(alg);
	b->want = want;
	return true;
}

/* files_tus_checksum checks a body held in memory against Upload-Checksum, if given; answers
 * (400, 460) and returns false on a mismatch or a bad header. */
static bool
files_tus_checksum(struct files_call *c)
{
	struct files_body b = { 0 };
	uint8_t want[64], got[64];
	if (!files_tus_sum_header(c, &b, want))
		return false;
	if (b.want == NULL)
		return true;
	unsigned glen = 0;
	if (EVP_Digest(c->req->body, c->req->body_len, got, &glen, (const EVP_MD *)b.md, NULL) != 1)
		glen = 0;
	if (glen != b.want_len || memcmp(want, got, glen) != 0) {
		files_reply_problem(&c->rp, 460, "checksum mismatch: the data was discarded");
		return false;
	}
	return true;
}

/* files_tus_write appends the request's body to upload u (locked, in a transaction) at
 * offset, sets the length when new_length >= 0, commits and answers 204 (or 201 with
 * Location when created). */
static void
files_tus_write(struct files_call *c, struct files_upload *u, int64_t new_length, int status)
{
	char key[64], off_s[24], len_s[24], exp_s[24];
	int64_t n = (int64_t)c->req->body_len;
	int64_t length = new_length >= 0 ? new_length : u->length;
	int rv = 0;
	uint8_t want[64];
	/* Without a checksum, the bytes of a client that leaves mid-body are kept (tus allows
	 * it): the offset moves to what arrived. With one, a part cannot be verified: dropped. */
	struct files_body b = { 0 };
	if (!files_tus_sum_header(c, &b, want)) {
		sb_pg_rollback(c->pg);
		return;
	}
	b.keep_partial = b.want == NULL;
	files_key(u->id, key);
	if (n > 0)
		rv = files_body_store(c, key, u->offset, &b);
	if (rv == SB_EINVAL) {
		sb_pg_rollback(c->pg);
		files_reply_problem(&c->rp, 460, "checksum mismatch: the data was discarded");
		return;
	}
	if ((rv == SB_ECLOSED || rv == SB_ETIMEDOUT) && b.got == 0) {
		sb_pg_rollback(c->pg);
		files_reply_problem(&c->rp, 408, "the body did not arrive whole: nothing was kept");
		return;
	}
	if (rv != 0 && rv != SB_ECLOSED && rv != SB_ETIMEDOUT) {
		sb_pg_rollback(c->pg);
		files_reply_add(&c->rp, "Retry-After", "1");
		files_reply_problem(&c->rp, 503, "storage failed to keep the data; retry");
		return;
	}
	bool partial = rv != 0;
	if (partial) {
		char got_s[24];
		snprintf(got_s, sizeof(got_s), "%" PRId64, b.got);
		sb_log_kv(SB_LOG_INFO, "tus PATCH ended early: the bytes received are kept",
		          "upload_id", u->id, "kept", got_s,
		          rv == SB_ETIMEDOUT ? "timeout" : "disconnect", "true", NULL);
		n = b.got;
	}
	int64_t end = u->offset + n;
	/* complete: cut whatever a crashed attempt may have left past the end */
	if (length >= 0 && end == length &&
	    (rv = c->f->store->ops->truncate(c->f->store, key, length)) != 0) {
		sb_pg_rollback(c->pg);
		files_reply_add(&c->rp, "Retry-After", "1");
		files_reply_problem(&c->rp, 503, "storage failed to finish the upload; retry");
		return;
	}
	snprintf(off_s, sizeof(off_s), "%" PRId64, end);
	snprintf(len_s, sizeof(len_s), "%" PRId64, new_length);
	snprintf(exp_s, sizeof(exp_s), "%lld", c->f->cfg->expire_s);
	const char *p[4] = { u->id, off_s, new_length >= 0 ? len_s : NULL, exp_s };
	PGresult *res = NULL;
	if ((rv = sb_pg_exec_prepared(c->pg, "tus_advance", 4, p, &res)) != 0 ||
	    (rv = sb_pg_commit(c->pg)) != 0) {
		PQclear(res);
		files_tus_db_fail(c, rv);
		return;
	}
	bool done = strcmp(PQgetvalue(res, 0, 0), "COMPLETED") == 0;
	sb_series_add(c->f->m.bytes, (double)n);
	if (partial) { /* acknowledged by the offset: a HEAD tells the client where to go on */
		PQclear(res);
		files_reply_addf(&c->rp, "Upload-Offset", "%" PRId64, end);
		files_reply_problem(&c->rp, 408,
		                    "the body did not arrive whole: the bytes received were kept");
		return;
	}
	if (done)
		sb_series_inc(c->f->m.completed);
	int64_t exp_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	if (done)
		sb_log_kv(SB_LOG_INFO, "tus upload completed", "upload_id", u->id, "length", off_s,
		          NULL);
	else
		files_reply_expires(&c->rp, exp_ms);
	files_reply_add(&c->rp, "Upload-Offset", off_s);
	if (status == 201)
		files_reply_addf(&c->rp, "Location", "/files/%s", u->id);
	files_reply_send(&c->rp, status, NULL, NULL, 0);
}

/* files_tus_body_type_ok answers 415 and returns false when a body comes with another type. */
static bool
files_tus_body_type_ok(struct files_call *c, bool required)
{
	const char *ct = sb_http_req_header(c->req, "Content-Type");
	if (ct == NULL ? !required : strcmp(ct, FILES_OCTETS) == 0)
		return true;
	files_reply_problem(&c->rp, 415, "the body must be " FILES_OCTETS);
	return false;
}

void
files_tus_create(struct files_call *c)
{
	const char *lv = sb_http_req_header(c->req, "Upload-Length");
	const char *dv = sb_http_req_header(c->req, "Upload-Defer-Length");
	int64_t length = -1;
	struct files_meta meta;
	if ((lv == NULL) == (dv == NULL)) {
		files_reply_problem(
		    &c->rp, 400,
		    "exactly one of Upload-Length and Upload-Defer-Length is required");
		return;
	}
	if (dv != NULL && strcmp(dv, "1") != 0) {
		files_reply_problem(&c->rp, 400, "Upload-Defer-Length must be 1");
		return;
	}
	if (lv != NULL && files_parse_size(lv, &length) != 0) {
		files_reply_problem(&c->rp, 400, "Upload-Length must be a non-negative integer");
		return;
	}
	if (length > c->f->cfg->max_size) {
		files_reply_problem(&c->rp, 413, "Upload-Length is above Tus-Max-Size");
		return;
	}
	const char *mv = sb_http_req_header(c->req, "Upload-Metadata");
	if (files_meta_parse(mv, &meta) != 0) {
		files_reply_problem(&c->rp, 400, "malformed Upload-Metadata");
		return;
	}
	bool with_body = c->req->body_len > 0;
	if (with_body && !files_tus_body_type_ok(c, true))
		return;
	if (with_body && length >= 0 && (int64_t)c->req->body_len > length) {
		files_reply_problem(&c->rp, 413, "the body is longer than Upload-Length");
		return;
	}
	if (with_body && !files_tus_checksum(c))
		return;
	const char *type = meta.type[0] ? meta.type : "application/octet-stream";
	if (!files_type_allowed(c->f->cfg->allowed_types, type)) {
		files_reply_problem(&c->rp, 415, "this content type is not accepted for uploads");
		return;
	}

	struct sb_uuid uid;
	char id[37], len_s[24], exp_s[24];
	sb_uuid_v4(&uid);
	sb_uuid_format(&uid, id);
	snprintf(len_s, sizeof(len_s), "%" PRId64, length);
	snprintf(exp_s, sizeof(exp_s), "%lld", c->f->cfg->expire_s);
	const char *p[8] = { id,
		             c->who.tenant_id,
		             c->user,
		             length >= 0 ? len_s : NULL,
		             mv != NULL ? mv : "",
		             meta.filename[0] ? meta.filename : "file",
		             type,
		             exp_s };
	PGresult *res = NULL;
	int status = 0;
	const char *why = NULL;
	int rv = sb_pg_begin(c->pg);
	if (rv == 0)
		rv = files_limits_check(c, length, true, &status, &why);
	if (rv == 0 && status != 0) {
		sb_pg_rollback(c->pg);
		if (status == 429)
			files_reply_add(&c->rp, "Retry-After", "60");
		files_reply_problem(&c->rp, status, why);
		return;
	}
	if (rv == 0)
		rv = sb_pg_exec_prepared(c->pg, "tus_create", 8, p, &res);
	if (rv == 0 && (rv = sb_pg_commit(c->pg)) != 0) {
		PQclear(res);
		res = NULL;
	}
	if (rv != 0) {
		files_tus_db_fail(c, rv);
		return;
	}
	int64_t exp_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	sb_series_inc(c->f->m.created);
	sb_log_kv(SB_LOG_INFO, "tus upload created", "upload_id", id, "length",
	          length >= 0 ? len_s : "deferred", "user", c->user, NULL);
	memcpy(c->id, id, sizeof(id));
	if (length == 0) { /* nothing to send: complete at once */
		struct files_upload u;
		if ((rv = sb_pg_begin(c->pg)) != 0) {
			files_tus_db_fail(c, rv);
			return;
		}
		if (!files_tus_load(c, true, &u))
			return;
		files_tus_write(c, &u, -1, 201);
		files_upload_clear(&u);
		return;
	}
	if (!with_body) {
		files_reply_expires(&c->rp, exp_ms);
		files_reply_addf(&c->rp, "Location", "/files/%s", id);
		files_reply_send(&c->rp, 201, NULL, NULL, 0);
		return;
	}
	struct files_upload u;
	if ((rv = sb_pg_begin(c->pg)) != 0) {
		files_tus_db_fail(c, rv);
		return;
	}
	if (!files_tus_load(c, true, &u))
		return;
	files_tus_write(c, &u, -1, 201);
	files_upload_clear(&u);
}

void
files_tus_head(struct files_call *c)
{
	struct files_upload u;
	char off_s[24];
	if (!files_tus_load(c, false, &u))
		return;
	files_reply_add(&c->rp, "Cache-Control", "no-store");
	snprintf(off_s, sizeof(off_s), "%" PRId64, u.offset);
	files_reply_add(&c->rp, "Upload-Offset", off_s);
	if (u.length >= 0)
		files_reply_addf(&c->rp, "Upload-Length", "%" PRId64, u.length);
	else
		files_reply_add(&c->rp, "Upload-Defer-Length", "1");
	if (u.metadata[0] != '\0' && strlen(u.metadata) < 1024)
		files_reply_add(&c->rp, "Upload-Metadata", u.metadata);
	if (u.state == FILES_UPLOADING)
		files_reply_expires(&c->rp, u.expires_ms);
	files_upload_clear(&u);
	files_reply_send(&c->rp, 200, NULL, NULL, 0);
}

void
files_tus_patch(struct files_call *c)
{
	int64_t offset, new_length = -1;
	if (!files_tus_body_type_ok(c, true))
		return;
	const char *ov = sb_http_req_header(c->req, "Upload-Offset");
	if (ov == NULL || files_parse_size(ov, &offset) != 0) {
		files_reply_problem(&c->rp, 400, "Upload-Offset must be a non-negative integer");
		return;
	}
	const char *lv = sb_http_req_header(c->req, "Upload-Length");
	if (lv != NULL && files_parse_size(lv, &new_length) != 0) {
		files_reply_problem(&c->rp, 400, "Upload-Length must be a non-negative integer");
		return;
	}
	if (new_length > c->f->cfg->max_size) {
		files_reply_problem(&c->rp, 413, "Upload-Length is above Tus-Max-Size");
		return;
	}
	struct files_body sum = { 0 };
	uint8_t want[64];
	if (!files_tus_sum_header(c, &sum, want)) /* 400 before anything is read */
		return;
	struct files_upload u;
	int rv = sb_pg_begin(c->pg);
	if (rv != 0) {
		files_tus_db_fail(c, rv);
		return;
	}
	if (!files_tus_load(c, true, &u))
		return;
	const char *refuse = NULL;
	int status = 0;
	int64_t end = u.offset + (int64_t)c->req->body_len;
	if (offset != u.offset) {
		status = 409;
		refuse = "Upload-Offset does not match the upload's offset";
	} else if (u.state != FILES_UPLOADING) {
		status = 409;
		refuse = "the upload is already complete";
	} else if (new_length >= 0 && u.length >= 0 && new_length != u.length) {
		status = 400;
		refuse = "Upload-Length cannot change once set";
	} else if (new_length >= 0 && u.length >= 0) {
		new_length = -1; /* repeated, same value */
	}
	int64_t length = new_length >= 0 ? new_length : u.length;
	if (status == 0 && length >= 0 && length < u.offset) {
		status = 400;
		refuse = "Upload-Length is below the upload's offset";
	} else if (status == 0 &&
	           ((length >= 0 && end > length) || (length < 0 && end > c->f->cfg->max_size))) {
		status = 413;
		refuse = "the data goes past the upload's length";
	}
	/* a deferred length declared now counts against the quota from now on (the upload was
	 * counted with its offset so far) */
	if (status == 0 && new_length >= 0 && u.length < 0 &&
	    (rv = files_limits_check(c, new_length - u.offset, false, &status, &refuse)) != 0) {
		files_upload_clear(&u);
		files_tus_db_fail(c, rv);
		return;
	}
	if (status != 0) {
		sb_pg_rollback(c->pg);
		files_upload_clear(&u);
		if (status == 409)
			files_reply_addf(&c->rp, "Upload-Offset", "%" PRId64, u.offset);
		files_reply_problem(&c->rp, status, refuse);
		return;
	}
	files_tus_write(c, &u, new_length, 204);
	files_upload_clear(&u);
}

void
files_tus_delete(struct files_call *c)
{
	struct files_upload u;
	char key[64];
	int rv = sb_pg_begin(c->pg);
	if (rv != 0) {
		files_tus_db_fail(c, rv);
		return;
	}
	if (!files_tus_load(c, true, &u))
		return;
	const char *p[1] = { u.id };
	if ((rv = sb_pg_exec_prepared(c->pg, "upload_terminate", 1, p, NULL)) != 0 ||
	    (rv = sb_pg_commit(c->pg)) != 0) {
		files_upload_clear(&u);
		files_tus_db_fail(c, rv);
		return;
	}
	/* After the commit: a crash here leaves bytes of a TERMINATED row, which cleanup
	 * (files.Expire) removes. */
	files_key(u.id, key);
	if ((rv = c->f->store->ops->remove(c->f->store, key)) != 0)
		sb_log_kv(SB_LOG_WARN, "cannot remove a terminated upload's data", "upload_id",
		          u.id, "error", sb_strerror(rv), NULL);
	sb_series_inc(c->f->m.terminated);
	sb_log_kv(SB_LOG_INFO, "tus upload terminated", "upload_id", u.id, NULL);
	files_upload_clear(&u);
	files_reply_send(&c->rp, 204, NULL, NULL, 0);
}
