/* store.c: the notifier's prepared SQL (search_path = notifier). */
#include "notifier.h"

const struct sb_pg_stmt ntf_stmts[] = {
	/* $1 conversation, $2 user, $3 seq: returns a row only when the watermark moved. */
	/* A batch of delivery reports (three parallel arrays) in one statement: each (conversation,
	 * user) watermark moves forward to the batch's highest seq for it; returns, for every pair
	 * whose watermark moved, the watermark it had before (0 for a new row), so the caller tells
	 * the sender of every report above it. Concurrent batches on the same pair serialize on
	 * its row; a stale "before" only repeats a message.delivered. */
	{ "delivered_move_batch",
	  "WITH k AS (SELECT c, u, max(s) AS s FROM unnest($1::text[], $2::text[], $3::bigint[]) "
	  "AS x (c, u, s) GROUP BY c, u), "
	  "was AS (SELECT k.c, k.u, coalesce(d.last_delivered_seq, 0) AS seq FROM k LEFT JOIN "
	  "deliveries d ON d.conversation_id = k.c AND d.user_id = k.u), "
	  "up AS (INSERT INTO deliveries (conversation_id, user_id, last_delivered_seq) "
	  "SELECT c, u, s FROM k ON CONFLICT (conversation_id, user_id) DO UPDATE "
	  "SET last_delivered_seq = EXCLUDED.last_delivered_seq, updated_at = now() "
	  "WHERE deliveries.last_delivered_seq < EXCLUDED.last_delivered_seq "
	  "RETURNING conversation_id, user_id) "
	  "SELECT was.c, was.u, was.seq FROM was JOIN up ON up.conversation_id = was.c AND "
	  "up.user_id = was.u",
	  3 },
	/* A batch of events as four parallel text[] (event ids, types, bodies, tenants): one
	 * queued delivery per event and matching webhook. An event already queued (a redelivery,
	 * or twice in one batch) is queued once. */
	{ "wh_enqueue_batch",
	  "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, body) "
	  "SELECT w.id, e.id, e.type, e.body "
	  "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS e (id, type, body, "
	  "tenant) "
	  "JOIN webhooks w ON w.tenant_id = e.tenant AND e.type = ANY (w.event_types) "
	  "ON CONFLICT (webhook_id, event_id) DO NOTHING",
	  4 },
	/* $1 id, $2 tenant, $3 url, $4 secret, $5 event types as a text[] literal. */
	{ "wh_create",
	  "INSERT INTO webhooks (id, tenant_id, url, secret, event_types) "
	  "VALUES ($1::uuid, $2, $3, $4, $5::text[]) "
	  "RETURNING to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
	  5 },
	{ "wh_list",
	  "SELECT id::text, url, array_to_string(event_types, ','), "
	  "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
	  "FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id",
	  1 },
	{ "wh_delete", "DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2::uuid", 2 },
	/* $1 lease seconds: claims one due delivery (it is retried after the lease if this worker
	 * dies). */
	{ "wh_claim",
	  "UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => "
	  "$1::int) "
	  "FROM webhooks w WHERE w.id = d.webhook_id AND d.id = (SELECT id FROM webhook_deliveries "
	  "WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at, id "
	  "LIMIT 1 FOR UPDATE SKIP LOCKED) "
	  "RETURNING d.id, d.attempts, d.event_id, d.event_type, d.body, w.url, w.secret, "
	  "w.id::text, w.tenant_id",
	  1 },
	{ "wh_done",
	  "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, "
	  "last_error = '' WHERE id = $1::bigint",
	  1 },
	/* $1 id, $2 delay ms, $3 error. */
	{ "wh_retry",
	  "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $3, "
	  "next_attempt_at = now() + make_interval(secs => $2::double precision / 1000) "
	  "WHERE id = $1::bigint",
	  3 },
	{ "wh_dead",
	  "UPDATE webhook_deliveries SET status = 'dead', attempts = $2::int, "
	  "last_error = $3 WHERE id = $1::bigint",
	  3 },
	{ NULL, NULL, 0 },
};
