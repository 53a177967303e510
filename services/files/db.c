/* db.c: prepared statements of the files schema and the upload row. */
#include "files.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_pg.h"

const struct sb_pg_opts files_pg_opts = {
	.connect_timeout_s = 2,
	.backoff_base_ms = 100,
	.backoff_max_ms = 2000,
	.options = "-c statement_timeout=30000 -c search_path=files",
};

#define FILES_UPLOAD_COLS                                                                          \
	"id::text, tenant_id, owner_id, state, coalesce(length, -1), upload_offset, "              \
	"coalesce((extract(epoch from expires_at) * 1000)::bigint, 0), "                           \
	"coalesce(expires_at <= now(), false), filename, content_type, metadata, protocol"

const struct sb_pg_stmt files_stmts[] = {
	{ "upload_get", "SELECT " FILES_UPLOAD_COLS " FROM uploads WHERE id = $1", 1 },
	{ "upload_lock", "SELECT " FILES_UPLOAD_COLS " FROM uploads WHERE id = $1 FOR UPDATE", 1 },
	/* $1 id, $2 tenant, $3 owner, $4 length or NULL, $5 metadata, $6 filename, $7 type,
	 * $8 expiry seconds */
	{ "tus_create",
	  "INSERT INTO uploads (id, tenant_id, owner_id, protocol, length, metadata, filename, "
	  "content_type, expires_at) VALUES ($1, $2, $3, 'tus', $4::bigint, $5, $6, $7, "
	  "now() + $8::bigint * interval '1 second') "
	  "RETURNING (extract(epoch from expires_at) * 1000)::bigint",
	  8 },
	/* $1 id, $2 new offset, $3 length (NULL: unchanged), $4 expiry seconds */
	{ "tus_advance",
	  "UPDATE uploads SET upload_offset = $2::bigint, length = coalesce($3::bigint, length), "
	  "updated_at = now(), expires_at = now() + $4::bigint * interval '1 second', "
	  "state = CASE WHEN $2::bigint = coalesce($3::bigint, length) THEN 'COMPLETED' ELSE "
	  "state END, completed_at = CASE WHEN $2::bigint = coalesce($3::bigint, length) THEN "
	  "now() END WHERE id = $1 "
	  "RETURNING state, (extract(epoch from expires_at) * 1000)::bigint",
	  4 },
	{ "upload_terminate",
	  "UPDATE uploads SET state = 'TERMINATED', updated_at = now() WHERE id = $1", 1 },
	{ "user_lock", "SELECT pg_advisory_xact_lock(hashtext('files:' || $1 || '/' || $2))", 2 },
	{ "user_usage",
	  "SELECT count(*) FILTER (WHERE state = 'UPLOADING' AND "
	  "coalesce(expires_at > now(), true)), "
	  "coalesce(sum(coalesce(length, upload_offset)) FILTER (WHERE state IN ('UPLOADING', "
	  "'MERGING', 'COMPLETED') AND coalesce(expires_at > now() OR state <> 'UPLOADING', "
	  "true)), 0) FROM uploads WHERE tenant_id = $1 AND owner_id = $2",
	  2 },
	/* files.Expire: $1 now_ms (0: the database's clock), $2 abandoned_before_ms (0: none),
	 * $3 limit. What qualifies, and why, oldest first. */
	{ "expire_candidates",
	  "SELECT u.id::text, CASE WHEN u.state = 'TERMINATED' THEN 'terminated' WHEN "
	  "u.expires_at < coalesce(to_timestamp(nullif($1::bigint, 0) / 1000.0), now()) THEN "
	  "'expired' ELSE 'abandoned' END FROM uploads u WHERE "
	  "(u.state = 'UPLOADING' AND (($2::bigint > 0 AND u.updated_at < "
	  "to_timestamp($2::bigint / 1000.0)) OR u.expires_at < "
	  "coalesce(to_timestamp(nullif($1::bigint, 0) / 1000.0), now()))) OR "
	  "(u.state = 'TERMINATED' AND u.failure IS NULL) ORDER BY u.updated_at LIMIT $3",
	  3 },
	/* $1 id, $2 now_ms, $3 abandoned_before_ms: the row, locked, if it still qualifies */
	{ "expire_lock",
	  "SELECT coalesce(u.total_chunks, 0) FROM uploads u WHERE u.id = $1 AND "
	  "((u.state = 'UPLOADING' AND (($3::bigint > 0 AND u.updated_at < "
	  "to_timestamp($3::bigint / 1000.0)) OR u.expires_at < "
	  "coalesce(to_timestamp(nullif($2::bigint, 0) / 1000.0), now()))) OR "
	  "(u.state = 'TERMINATED' AND u.failure IS NULL)) FOR UPDATE",
	  3 },
	/* $1 id, $2 why */
	{ "expire_mark",
	  "WITH c AS (DELETE FROM chunks WHERE upload_id = $1) UPDATE uploads SET state = CASE "
	  "WHEN state = 'TERMINATED' THEN state ELSE 'FAILED' END, failure = $2, updated_at = "
	  "now() WHERE id = $1",
	  2 },
	/* The chunk API (chunks.c) and the merge worker (merge.c). */
	/* $1 id, $2 tenant, $3 owner, $4 length, $5 chunk size, $6 total, $7 filename, $8 type,
	 * $9 client's sha256 or NULL */
	{ "chunk_create",
	  "INSERT INTO uploads (id, tenant_id, owner_id, protocol, length, chunk_size, "
	  "total_chunks, filename, content_type, sha256) VALUES ($1, $2, $3, 'chunk', $4::bigint, "
	  "$5::bigint, $6::int, $7, $8, $9)",
	  9 },
#define FILES_CHUNK_COLS                                                                           \
	"id::text, tenant_id, owner_id, state, coalesce(length, 0), coalesce(chunk_size, 0), "     \
	"coalesce(total_chunks, 0), coalesce(sha256, ''), coalesce(failure, ''), protocol, "       \
	"filename, content_type, "                                                                 \
	"coalesce((extract(epoch from completed_at) * 1000)::bigint, 0) FROM uploads WHERE id = "  \
	"$1"
	{ "chunk_upload", "SELECT " FILES_CHUNK_COLS, 1 },
	/* A chunk write: the state cannot change under it (complete and the merge take FOR
	 * UPDATE), but chunk writes of one upload do not wait for each other. */
	{ "chunk_upload_keyshare", "SELECT " FILES_CHUNK_COLS " FOR KEY SHARE", 1 },
	{ "chunk_upload_lock", "SELECT " FILES_CHUNK_COLS " FOR UPDATE", 1 },
	/* two writes of the same chunk never interleave */
	{ "chunk_n_lock",
	  "SELECT pg_advisory_xact_lock(hashtextextended('files-chunk:' || $1 || '/' || $2, 0))",
	  2 },
	{ "chunk_get", "SELECT size, sha256 FROM chunks WHERE upload_id = $1 AND n = $2::int", 2 },
	/* $1 id, $2 n, $3 size, $4 sha256 */
	{ "chunk_insert",
	  "WITH i AS (INSERT INTO chunks (upload_id, n, size, sha256) VALUES ($1, $2::int, "
	  "$3::bigint, $4) RETURNING size) UPDATE uploads SET upload_offset = upload_offset + "
	  "(SELECT size FROM i), updated_at = now() WHERE id = $1",
	  4 },
	{ "chunk_list", "SELECT n, size, sha256 FROM chunks WHERE upload_id = $1 ORDER BY n", 1 },
	{ "chunk_merging", "UPDATE uploads SET state = 'MERGING', updated_at = now() WHERE id = $1",
	  1 },
	/* $1 id, $2 sha256 (hex): COMPLETED, the chunk rows gone (the parts are removed after the
	 * commit) */
	{ "merge_done",
	  "WITH c AS (DELETE FROM chunks WHERE upload_id = $1) UPDATE uploads SET state = "
	  "'COMPLETED', sha256 = $2, completed_at = now(), updated_at = now() WHERE id = $1 "
	  "RETURNING (extract(epoch from completed_at) * 1000)::bigint",
	  2 },
	/* $1 id: one more failed merge attempt, counted on the row (survives restarts) */
	{ "merge_attempt",
	  "UPDATE uploads SET merge_attempts = merge_attempts + 1 WHERE id = $1 AND state = "
	  "'MERGING' RETURNING merge_attempts",
	  1 },
	/* $1 id, $2 why */
	{ "merge_failed",
	  "WITH c AS (DELETE FROM chunks WHERE upload_id = $1) UPDATE uploads SET state = "
	  "'FAILED', failure = $2, updated_at = now() WHERE id = $1",
	  2 },
	{ NULL, NULL, 0 },
};

static const char *const files_state_names[] = {
	[FILES_UPLOADING] = "UPLOADING",   [FILES_MERGING] = "MERGING",
	[FILES_COMPLETED] = "COMPLETED",   [FILES_FAILED] = "FAILED",
	[FILES_TERMINATED] = "TERMINATED",
};

const char *
files_state_name(enum files_state s)
{
	if (s < FILES_UPLOADING || s > FILES_TERMINATED)
		return "?";
	return files_state_names[s];
}

enum files_state
files_state_parse(const char *s)
{
	for (int i = FILES_UPLOADING; i <= FILES_TERMINATED; i++)
		if (strcmp(s, files_state_names[i]) == 0)
			return (enum files_state)i;
	return FILES_FAILED;
}

static void
files_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int
files_db_get(struct sb_pg *pg, const char *id, bool lock, struct files_upload *u)
{
	PGresult *res = NULL;
	const char *p[1] = { id };
	memset(u, 0, sizeof(*u));
	int rv = sb_pg_exec_prepared(pg, lock ? "upload_lock" : "upload_get", 1, p, &res);
	if (rv != 0)
		return rv;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return SB_ENOTFOUND;
	}
	files_copy(u->id, sizeof(u->id), PQgetvalue(res, 0, 0));
	files_copy(u->tenant_id, sizeof(u->tenant_id), PQgetvalue(res, 0, 1));
	files_copy(u->owner_id, sizeof(u->owner_id), PQgetvalue(res, 0, 2));
	u->state = files_state_parse(PQgetvalue(res, 0, 3));
	u->length = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	u->offset = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	u->expires_ms = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
	u->expired = PQgetvalue(res, 0, 7)[0] == 't';
	files_copy(u->filename, sizeof(u->filename), PQgetvalue(res, 0, 8));
	files_copy(u->content_type, sizeof(u->content_type), PQgetvalue(res, 0, 9));
	u->metadata = strdup(PQgetvalue(res, 0, 10));
	u->chunked = strcmp(PQgetvalue(res, 0, 11), "chunk") == 0;
	PQclear(res);
	return u->metadata == NULL ? SB_ENOMEM : 0;
}

void
files_upload_clear(struct files_upload *u)
{
	free(u->metadata);
	u->metadata = NULL;
}

int
files_chunked_get(struct sb_pg *pg, const char *stmt, const char *id, struct files_chunked *u)
{
	PGresult *res = NULL;
	const char *p[1] = { id };
	memset(u, 0, sizeof(*u));
	int rv = sb_pg_exec_prepared(pg, stmt, 1, p, &res);
	if (rv != 0)
		return rv;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return SB_ENOTFOUND;
	}
	files_copy(u->id, sizeof(u->id), PQgetvalue(res, 0, 0));
	files_copy(u->tenant_id, sizeof(u->tenant_id), PQgetvalue(res, 0, 1));
	files_copy(u->owner_id, sizeof(u->owner_id), PQgetvalue(res, 0, 2));
	u->state = files_state_parse(PQgetvalue(res, 0, 3));
	u->length = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	u->chunk_size = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	u->total = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
	files_copy(u->sha256, sizeof(u->sha256), PQgetvalue(res, 0, 7));
	files_copy(u->failure, sizeof(u->failure), PQgetvalue(res, 0, 8));
	u->chunked = strcmp(PQgetvalue(res, 0, 9), "chunk") == 0;
	files_copy(u->filename, sizeof(u->filename), PQgetvalue(res, 0, 10));
	files_copy(u->content_type, sizeof(u->content_type), PQgetvalue(res, 0, 11));
	u->completed_ms = strtoll(PQgetvalue(res, 0, 12), NULL, 10);
	PQclear(res);
	return 0;
}
