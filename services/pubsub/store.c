/* store.c: the pubsub service's prepared SQL (search_path = pubsub) and the leaves every
 * handler shares: the caller's tenant, the worker's connection, answers for errors. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"

/* enable_seqscan=off: every statement here finds its rows through an index or by ctid, and a
 * prepared statement's generic plan is made once per connection, at its sixth execution, with
 * the table sizes of that moment; made while deliveries was a few pages it read the whole table
 * by a sequential scan for as long as the connection lived (docs/pubsub.md "No index on seq").
 * A scan that has no other path (retention's idempotency sweep) still runs, with the setting's
 * cost penalty, which would put it above jit_above_cost: jit=off, since no statement of this
 * service runs long enough for compiling it to pay (the topic metrics allow the scan again,
 * topics.c). */
const struct sb_pg_opts ps_pg_opts = {
	.connect_timeout_s = 2,
	.backoff_base_ms = 100,
	.backoff_max_ms = 2000,
	.options = "-c statement_timeout=10000 -c search_path=pubsub "
	           "-c synchronous_commit=on -c enable_seqscan=off -c jit=off"
};

#define PS_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define PS_TOPIC_COLS                                                                              \
	"id::text, name, type, schema_subject, partitions, ordering_keys, retention_ms, "          \
	"max_attempts, ack_deadline_ms, guarantee, default_strategy, " PS_TS("created_at")
/* The backoff after failed attempt number A (1-based): $base * 2^(A-1), at most $max. */
#define PS_BACKOFF(A, BASE, MAX)                                                                   \
	"make_interval(secs => least(" MAX "::bigint, " BASE "::bigint * power(2, greatest(" A     \
	" - 1, 0))::bigint)::double precision / 1000)"

/* The rows of deliveries (alias D) whose ctid the CTE CTE has in its column tid, found by a TID
 * scan (migration 006 dropped the index on seq). Only for rows that CTE locked FOR UPDATE in
 * the same statement, so that no other transaction can have moved them since. */
#define PS_BY_TID(D, CTE) D ".ctid = ANY (ARRAY(SELECT tid FROM " CTE "))"
/* A ready delivery (alias D) of subscription SUB that may be leased now: visible, of this
 * consumer's turn (round robin: seq % RRN = RRK unless RRN is 0), and not behind an unfinished
 * earlier delivery of its ordering key. */
#define PS_CLAIMABLE(D, SUB, RRN, RRK)                                                             \
	D ".sub_id = " SUB "::bigint AND " D ".state = 'ready' AND " D                             \
	  ".visible_at <= now() AND (" RRN "::int = 0 OR " D ".seq % " RRN "::int = " RRK          \
	  "::int) AND (" D ".ordering_key = '' "                                                   \
	  "OR NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.sub_id = " D ".sub_id AND "           \
	  "e.ordering_key = " D ".ordering_key AND e.ordering_key <> '' AND e.state IN ('ready', " \
	  "'leased') AND e.seq < " D ".seq))"
/* The min of a claim: true when at least MIN (>= 1) deliveries are claimable. An uncorrelated
 * subquery, so evaluated once, before anything is locked: a claim that finds fewer than MIN
 * leases nothing and writes nothing. Always evaluated (MIN 1 reads one index entry), so that
 * plans do not differ by whether a consume has a min. */
#define PS_CLAIM_GATE(SUB, RRN, RRK, MIN)                                                          \
	"(SELECT count(*) FROM (SELECT 1 FROM deliveries g WHERE " PS_CLAIMABLE(                   \
	    "g", SUB, RRN, RRK) " LIMIT " MIN "::int) x) >= " MIN "::int"
/* The lease of the deliveries in c for DEADLINE ms to CONSUMER (the CTE cu). */
#define PS_CLAIM_UPDATE(DEADLINE, CONSUMER)                                                        \
	"cu AS (UPDATE deliveries d SET state = 'leased', attempt = d.attempt + 1, lease_id = "    \
	"gen_random_uuid(), lease_expires = now() + make_interval(secs => " DEADLINE               \
	"::double precision / 1000), consumer = " CONSUMER                                         \
	" WHERE " PS_BY_TID("d", "c") " "                                                          \
	                              "RETURNING d.seq, d.message_id, d.attempt, d.lease_id, "     \
	                              "d.priority, d.lease_expires)"
/* The leased deliveries of cu with their messages, as text: message id, payload, headers,
 * attempt, lease id, ordering key, priority, lease expiry (Unix ms). */
#define PS_CLAIM_COLS                                                                              \
	"cu.message_id::text, m.payload::text, m.headers::text, cu.attempt::text, "                \
	"cu.lease_id::text, m.ordering_key, cu.priority::text, (extract(epoch FROM "               \
	"cu.lease_expires) * 1000)::bigint::text"
/* A claim ($1 subscription, $2 most, $3 deadline ms, $4 consumer, $5/$6 round robin, $7 min)
 * taking the claimable deliveries in ORDER (answered in AORDER). */
#define PS_CLAIM(ORDER, AORDER)                                                                    \
	"WITH c AS (SELECT d.ctid AS tid FROM deliveries d WHERE " PS_CLAIMABLE(                   \
	    "d", "$1", "$5",                                                                       \
	    "$6") " AND " PS_CLAIM_GATE("$1", "$5", "$6",                                          \
	                                "$7") " ORDER BY " ORDER " LIMIT $2::int FOR UPDATE SKIP " \
	                                      "LOCKED), " PS_CLAIM_UPDATE(                         \
	                                          "$3", "$4") " SELECT " PS_CLAIM_COLS             \
	                                                      " FROM cu JOIN messages m ON m.id "  \
	                                                      "= cu.message_id ORDER BY " AORDER
/* Cursor subscriptions (migration 007, docs/pubsub.md "Cursor subscriptions"): a subscription
 * in mode 'cursor' has no delivery row per message; it reads its topic's messages from
 * next_seq on, and each claim writes one row of leases with the seqs it gave out. A message
 * that leaves that path (nacked, expired, its deadline changed) is first detached into a row
 * of deliveries ("detach", "detach_expired"), which the statements of mode 'rows' then handle.
 * PS_CURSOR_ELIGIBLE: whether a subscription of strategy STRAT, filter FILTER (jsonb), push
 * endpoint PUSH on a topic ordering by key or not (OKEYS) can be one. */
#define PS_CURSOR_ELIGIBLE(STRAT, FILTER, PUSH, OKEYS)                                             \
	"(" STRAT " IN ('direct', 'fan_out') AND " FILTER " IN ('{}'::jsonb, '{\"headers\": {}, "  \
	"\"payload\": []}'::jsonb) AND " PUSH " = '' AND NOT " OKEYS ")"
/* The one lease of subscription SUB that may hold the message of seq SEQ, as the derived
 * table h (lease_id, seqs, expires_at): the one with the greatest first_seq at or below SEQ
 * (leases_by_seq; a subscription's leases never overlap). It holds the message when SEQ is
 * one of h.seqs. */
#define PS_LEASE_OF(SUB, SEQ)                                                                      \
	"(SELECT lease_id, seqs, expires_at FROM leases WHERE sub_id = " SUB                       \
	" AND first_seq <= " SEQ " ORDER BY first_seq DESC LIMIT 1) h"
/* The state of the message of seq SEQ for the cursor subscription S (alias) when no row of
 * deliveries or acked_deliveries has it, as (NULL, state) for the acks' lookup: held by a
 * lease ('held'), passed by the cursor and not held (acknowledged), or not claimed yet
 * ('ready'); no row for a message published before the subscription was made. */
#define PS_CURSOR_STATE(S, SEQ)                                                                    \
	"SELECT NULL, CASE WHEN EXISTS (SELECT 1 FROM " PS_LEASE_OF(                               \
	    S ".id", SEQ) " WHERE " SEQ " = ANY (h.seqs)) THEN 'held' WHEN " SEQ " < " S           \
	                  ".next_seq THEN 'acked' ELSE 'ready' END "                               \
	                  "WHERE " S ".mode = 'cursor' AND " SEQ " >= " S ".first_seq"
/* The acks' CTEs for held messages (after PS_ACK_CTES' t): lt the acks that name a lease
 * holding their message (any lease when the ack names none, unless strict; strict ones need an
 * unexpired lease), lk those leases locked (their seqs as they are now: a concurrent ack may
 * have taken some), lr what each keeps, then the leases emptied deleted and the others
 * updated; la the acks acknowledged now; lc counted for the topic metrics. */
#define PS_LEASE_ACKS                                                                              \
	"lt AS (SELECT t.n, t.mseq, t.sub_id, h.lease_id FROM t CROSS JOIN LATERAL " PS_LEASE_OF(  \
	    "t.sub_id",                                                                            \
	    "t.mseq") " WHERE t.state = 'held' AND t.mseq = ANY (h.seqs) AND NOT "                 \
	              "(t.strict AND t.lease = '') AND (t.lease = '' OR "                          \
	              "h.lease_id::text = t.lease) AND (NOT t.strict OR h.expires_at "             \
	              "> now())), "                                                                \
	              "lk AS (SELECT l.lease_id, l.seqs FROM leases l WHERE l.lease_id IN "        \
	              "(SELECT lease_id "                                                          \
	              "FROM lt) FOR UPDATE), "                                                     \
	              "lr AS (SELECT lk.lease_id, lk.seqs, ARRAY(SELECT x FROM unnest(lk.seqs) x " \
	              "WHERE x NOT "                                                               \
	              "IN (SELECT lt.mseq FROM lt WHERE lt.lease_id = lk.lease_id)) AS rest FROM " \
	              "lk), "                                                                      \
	              "ld AS (DELETE FROM leases l USING lr WHERE l.lease_id = lr.lease_id AND "   \
	              "cardinality(lr.rest) = 0), "                                                \
	              "lu AS (UPDATE leases l SET seqs = lr.rest FROM lr WHERE l.lease_id = "      \
	              "lr.lease_id AND "                                                           \
	              "cardinality(lr.rest) BETWEEN 1 AND cardinality(lr.seqs) - 1), "             \
	              "la AS (SELECT lt.n, lt.sub_id FROM lt JOIN lr ON lr.lease_id = "            \
	              "lt.lease_id WHERE lt.mseq "                                                 \
	              "= ANY (lr.seqs)), "                                                         \
	              "lc AS (INSERT INTO cursor_acks (sub_id, n) SELECT sub_id, count(*) FROM "   \
	              "la GROUP BY "                                                               \
	              "sub_id)"
/* Whether at least MIN (>= 1) messages are claimable for cursor subscription SUB: ready
 * detached deliveries and messages past its cursor (as PS_CLAIM_GATE, evaluated once before
 * anything is locked). */
#define PS_CURSOR_GATE(SUB, MIN)                                                                   \
	"(SELECT count(*) FROM (SELECT 1 FROM deliveries g WHERE " PS_CLAIMABLE(                   \
	    "g", SUB, "0", "0") " UNION ALL SELECT 1 FROM subscriptions gs JOIN messages gm ON "   \
	                        "gm.topic_id = gs.topic_id AND gm.seq >= gs.next_seq WHERE gs.id " \
	                        "= " SUB "::bigint AND gs.mode = 'cursor' LIMIT " MIN "::int) x) " \
	                        ">= " MIN "::int"
/* A claim of cursor subscription SUB (MAX, DEADLINE ms, CONSUMER, RRN/RRK as in PS_CLAIMABLE,
 * MIN, EXCL more conditions on the detached deliveries d): the ready detached deliveries
 * first (c, leased by cu as in "claim"), then the messages past the cursor (n) up to MAX in
 * all, the cursor moved past them (adv) and one lease row for them (l). The subscription row
 * is locked (s), so claims of one subscription take turns; one that finds it locked by another
 * claim skips the cursor this time (SKIP LOCKED) and looks again later, as a long poll does:
 * waiting for the lock made PostgreSQL re-check this large statement's plan after the wait
 * (EvalPlanQual), which cost more than the claim (docs/pubsub.md "Cursor subscriptions"). The
 * claim reads next_seq as the claim before left it, and messages in its own snapshot: as a
 * topic's seqs commit in order (the publish locks the topic), a message it does not see has a
 * higher seq than every one it sees, so the cursor never passes it. */
#define PS_CURSOR_CLAIM(SUB, MAX, DEADLINE, CONSUMER, RRN, RRK, MIN, EXCL)                         \
	"c AS (SELECT d.ctid AS tid FROM deliveries d WHERE " PS_CLAIMABLE("d", SUB, RRN, RRK)     \
	    EXCL " AND " PS_CURSOR_GATE(                                                           \
	        SUB,                                                                               \
	        MIN) " ORDER BY d.seq LIMIT " MAX "::int FOR UPDATE SKIP "                         \
	             "LOCKED), " PS_CLAIM_UPDATE(                                                  \
	                 DEADLINE,                                                                 \
	                 CONSUMER) ", "                                                            \
	                           "s AS (SELECT topic_id, next_seq FROM subscriptions WHERE id "  \
	                           "= " SUB "::bigint AND mode = "                                 \
	                           "'cursor' AND " PS_CURSOR_GATE(                                 \
	                               SUB,                                                        \
	                               MIN) " FOR UPDATE SKIP LOCKED), "                           \
	                                    "n AS (SELECT m.id, m.seq, m.payload, m.headers, "     \
	                                    "m.ordering_key, m.priority FROM s JOIN "              \
	                                    "messages m ON m.topic_id = s.topic_id AND m.seq >= "  \
	                                    "s.next_seq ORDER BY m.seq LIMIT "                     \
	                                    "greatest(" MAX                                        \
	                                    "::int - (SELECT count(*) FROM c), 0)), "              \
	                                    "adv AS (UPDATE subscriptions SET next_seq = (SELECT " \
	                                    "max(seq) + 1 FROM n) WHERE id = " SUB                 \
	                                    "::bigint AND EXISTS (SELECT 1 FROM n)), "             \
	                                    "l AS (INSERT INTO leases (lease_id, sub_id, "         \
	                                    "first_seq, seqs, expires_at, consumer) "              \
	                                    "SELECT gen_random_uuid(), " SUB                       \
	                                    "::bigint, min(seq), array_agg(seq ORDER BY seq), "    \
	                                    "now() + "                                             \
	                                    "make_interval(secs => " DEADLINE                      \
	                                    "::double precision / 1000), " CONSUMER                \
	                                    " FROM n HAVING "                                      \
	                                    "count(*) > 0 RETURNING lease_id, expires_at)"
/* The rows of a cursor claim, as "claim"'s columns after PREFIX (the detached deliveries
 * first, then the messages past the cursor: ordered by two trailing columns). */
#define PS_CURSOR_ROWS(PREFIX_CU, PREFIX_N)                                                        \
	"SELECT " PREFIX_CU PS_CLAIM_COLS                                                          \
	", 0 AS q, cu.seq AS qs FROM cu JOIN messages m ON m.id "                                  \
	"= cu.message_id UNION ALL SELECT " PREFIX_N "n.id::text, n.payload::text, "               \
	"n.headers::text, '1', l.lease_id::text, n.ordering_key, n.priority::text, "               \
	"(extract(epoch FROM l.expires_at) * 1000)::bigint::text, 1, n.seq FROM n CROSS JOIN l"
/* The CTE ua: the deliveries of CTE U (deleted from deliveries) stored as acknowledged
 * (migration 005: finished deliveries leave deliveries). */
#define PS_ACKED_INSERT(U)                                                                         \
	"ua AS (INSERT INTO acked_deliveries (message_id, sub_id, attempt, consumer, errors) "     \
	"SELECT message_id, sub_id, attempt, consumer, errors FROM " U ")"
/* The batch ack's CTEs over $1 message ids, $2 subscriptions, $3 lease ids ('' = none) and
 * $4 the tenant: r the acks, t what each names (found by key; an acknowledged one in
 * acked_deliveries, seq NULL), u the deliveries acked now (moved by ua). */
#define PS_ACK_CTES                                                                                \
	"r AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY "          \
	"AS r (mid, sub, lease, n)), "                                                             \
	"t AS (SELECT r.n, r.mid, r.lease, s.id AS sub_id, tp.name AS topic, tp.guarantee = "      \
	"'exactly_once' AS strict, m.published_at, m.tp, m.mseq, x.seq, x.state FROM r "           \
	"CROSS JOIN LATERAL (SELECT topic_id, seq AS mseq, published_at, headers->>'traceparent' " \
	"AS tp FROM messages WHERE id = r.mid LIMIT 1) m JOIN topics tp ON tp.id = m.topic_id "    \
	"AND tp.tenant_id = $4 JOIN subscriptions s ON s.topic_id = tp.id AND s.name = r.sub "     \
	"LEFT JOIN LATERAL (SELECT seq, state FROM deliveries WHERE message_id = r.mid AND "       \
	"sub_id = s.id UNION ALL SELECT NULL, 'acked' FROM acked_deliveries WHERE message_id = "   \
	"r.mid AND sub_id = s.id UNION ALL " PS_CURSOR_STATE(                                      \
	    "s", "m.mseq") " LIMIT 1) x ON true), "                                                \
	                   "u AS (DELETE FROM deliveries d USING t WHERE d.message_id = t.mid "    \
	                   "AND d.sub_id = "                                                       \
	                   "t.sub_id AND d.seq = t.seq AND NOT (t.strict AND "                     \
	                   "t.lease = '') AND (d.state = 'leased' OR (NOT t.strict AND d.state = " \
	                   "'ready' AND "                                                          \
	                   "d.attempt > 0 AND t.lease = '')) AND (t.lease = '' OR "                \
	                   "d.lease_id::text = t.lease) AND "                                      \
	                   "(NOT t.strict OR d.lease_expires > now()) RETURNING "                  \
	                   "d.*), " PS_ACKED_INSERT("u") ", " PS_LEASE_ACKS
/* Per ack (as text): topic, error, seconds since the publish, acked by this statement
 * ('true'/'false'), traceparent. */
#define PS_ACK_COLS                                                                                \
	"t.topic, CASE WHEN t.n IS NULL OR t.state IS NULL THEN 'not_found' WHEN t.strict AND "    \
	"t.lease = '' THEN 'lease_required' WHEN t.acked_now OR t.state = 'acked' THEN '' "        \
	"ELSE 'no_lease' END, coalesce(extract(epoch FROM now() - t.published_at), 0)::text, "     \
	"t.acked_now::text, coalesce(t.tp, '')"
/* The acks with what each found; acked_now: whether this statement deleted its delivery (u),
 * one lookup in a hashed subplan built once (a join with u ran as a nested loop rescanning u
 * for every ack: 64 × 64 comparisons for a batch of 64). */
#define PS_ACK_FROM                                                                                \
	"r LEFT JOIN (SELECT t.*, coalesce(t.seq IN (SELECT seq FROM u), false) OR t.n IN "        \
	"(SELECT n FROM la) AS acked_now FROM t) t ON t.n = r.n"

const struct sb_pg_stmt ps_stmts[] = {
	{ "topic_get", "SELECT " PS_TOPIC_COLS " FROM topics WHERE tenant_id = $1 AND name = $2",
	  2 },
	{ "topic_list", "SELECT " PS_TOPIC_COLS " FROM topics WHERE tenant_id = $1 ORDER BY name",
	  1 },
	/* A topic and its "default" subscription (strategy $11) together; the subscription is a
	 * cursor one when $12 (SB_PUBSUB_CURSOR) and it can be. */
	{ "topic_create",
	  "WITH t AS (INSERT INTO topics (tenant_id, name, type, schema_subject, partitions, "
	  "ordering_keys, retention_ms, max_attempts, ack_deadline_ms, guarantee, "
	  "default_strategy) VALUES ($1, $2, $3, $4, $5::int, $6::boolean, $7::bigint, $8::int, "
	  "$9::int, $10, $11) RETURNING *), "
	  "s AS (INSERT INTO subscriptions (topic_id, name, strategy, mode) SELECT id, 'default', "
	  "$11, CASE WHEN $12::boolean AND " PS_CURSOR_ELIGIBLE(
	      "$11", "'{}'::jsonb", "''", "$6::boolean") " THEN 'cursor' ELSE 'rows' END "
	                                                 "FROM t) SELECT " PS_TOPIC_COLS " FROM t",
	  12 },
	{ "topic_update",
	  "WITH t AS (UPDATE topics SET schema_subject = $3, partitions = $4::int, ordering_keys = "
	  "$5::boolean, retention_ms = $6::bigint, max_attempts = $7::int, ack_deadline_ms = "
	  "$8::int, guarantee = $9, default_strategy = $10, route_version = route_version + 1 "
	  "WHERE tenant_id = $1 AND name = $2 "
	  "RETURNING *), "
	  "s AS (UPDATE subscriptions SET strategy = $10 FROM t WHERE subscriptions.topic_id = "
	  "t.id "
	  "AND subscriptions.name = 'default') SELECT " PS_TOPIC_COLS " FROM t",
	  10 },
	/* Deleting a topic is two statements in one transaction (topics.c): the row goes first,
	 * which waits for the publishes holding it (FOR NO KEY UPDATE) and makes later ones find it
	 * gone; then, with a snapshot taken after those publishes committed, its messages and
	 * their deliveries (no foreign keys cascade to them: migration 004). Subscriptions,
	 * consumers and idempotency keys still go by ON DELETE CASCADE. */
	{ "topic_delete",
	  "WITH t AS (DELETE FROM topics WHERE tenant_id = $1 AND name = $2 RETURNING id), "
	  "s AS (SELECT s.id FROM subscriptions s JOIN t ON s.topic_id = t.id), "
	  "l AS (DELETE FROM leases WHERE sub_id IN (SELECT id FROM s)), "
	  "a AS (DELETE FROM cursor_acks WHERE sub_id IN (SELECT id FROM s)) "
	  "SELECT id::text FROM t",
	  2 },
	{ "topic_purge",
	  "WITH m AS (DELETE FROM messages WHERE topic_id = $1::bigint RETURNING id), "
	  "a AS (DELETE FROM acked_deliveries WHERE message_id IN (SELECT id FROM m)) "
	  "DELETE FROM deliveries WHERE message_id IN (SELECT id FROM m)",
	  1 },
	/* Per subscription of topic $1: depth, in flight, acked, dead, acked in the last minute,
	 * age of its oldest unacknowledged message in ms. A cursor subscription (c) adds the
	 * messages past its cursor (ready) and those its leases hold (in flight); its acked are
	 * the messages its cursor passed that are neither held nor in a row of deliveries (those
	 * acknowledged after a detach are among them), its last minute's acks those of
	 * cursor_acks and acked_deliveries. */
	{ "topic_sub_metrics",
	  "SELECT s.name, count(d.seq) FILTER (WHERE d.state = 'ready') + coalesce(max(c.ready), "
	  "0), count(d.seq) FILTER (WHERE d.state = 'leased') + coalesce(max(c.held), 0), "
	  "CASE WHEN s.mode = 'cursor' THEN max(c.passed) - max(c.held) - count(d.seq) ELSE "
	  "coalesce(min(a.n), 0) END, "
	  "count(d.seq) FILTER (WHERE d.state = 'dead'), "
	  "coalesce(min(a.minute), 0) + coalesce(max(c.minute), 0), "
	  "coalesce((extract(epoch FROM now() - least(min(m.published_at) FILTER (WHERE d.state "
	  "IN ('ready', 'leased')), max(c.oldest))) * 1000)::bigint, 0) "
	  "FROM subscriptions s LEFT JOIN LATERAL (SELECT (SELECT count(*) FROM messages m WHERE "
	  "m.topic_id = s.topic_id AND m.seq >= s.next_seq) AS ready, (SELECT "
	  "coalesce(sum(cardinality(seqs)), 0) FROM leases WHERE sub_id = s.id) AS held, (SELECT "
	  "count(*) FROM messages m WHERE m.topic_id = s.topic_id AND m.seq >= s.first_seq AND "
	  "m.seq < s.next_seq) AS passed, (SELECT coalesce(sum(n), 0) FROM cursor_acks WHERE "
	  "sub_id = s.id AND acked_at > now() - interval '60 s') AS minute, (SELECT "
	  "min(m.published_at) FROM messages m WHERE m.topic_id = s.topic_id AND (m.seq >= "
	  "s.next_seq OR m.seq IN (SELECT unnest(seqs) FROM leases WHERE sub_id = s.id))) AS "
	  "oldest WHERE s.mode = 'cursor') c ON true "
	  "LEFT JOIN deliveries d ON d.sub_id = s.id "
	  "LEFT JOIN messages m ON m.id = d.message_id "
	  "LEFT JOIN (SELECT sub_id, count(*) AS n, count(*) FILTER (WHERE acked_at > now() - "
	  "interval '60 s') AS minute FROM acked_deliveries WHERE sub_id IN (SELECT id FROM "
	  "subscriptions WHERE topic_id = $1::bigint) GROUP BY sub_id) a ON a.sub_id = s.id "
	  "WHERE s.topic_id = $1::bigint GROUP BY s.name, s.mode ORDER BY s.name",
	  1 },
	{ "topic_msg_metrics",
	  "SELECT count(*), count(*) FILTER (WHERE published_at > now() - interval '60 s') "
	  "FROM messages WHERE topic_id = $1::bigint",
	  1 },
	/* $5 push endpoint ("" = pull), $6 its signing secret, $7 whether it may be a cursor
	 * subscription (SB_PUBSUB_CURSOR). The topic's route_version moves: routes cached by
	 * publishers (route.c) are stale from this commit on. A cursor subscription starts at the
	 * sequence's next value, taken once the topic row is locked: every publish that committed
	 * before has lower seqs, every later one (it must wait for the lock) higher ones. */
	{ "sub_create",
	  "WITH v AS (UPDATE topics SET route_version = route_version + 1 WHERE id = $1::bigint "
	  "RETURNING id, ordering_keys), "
	  "q AS (SELECT v.id, CASE WHEN $7::boolean AND " PS_CURSOR_ELIGIBLE(
	      "$3", "$4::jsonb", "$5",
	      "v.ordering_keys") " THEN 'cursor' ELSE 'rows' END AS mode, nextval('message_seq') "
	                         "AS at FROM v) "
	                         "INSERT INTO subscriptions (topic_id, name, strategy, filter, "
	                         "push_endpoint, push_secret, mode, first_seq, next_seq) SELECT "
	                         "q.id, $2, $3, $4::jsonb, $5, $6, q.mode, q.at, q.at FROM q "
	                         "RETURNING " PS_TS("created_at"),
	  7 },
	{ "sub_list",
	  "SELECT name, strategy, filter::text, " PS_TS(
	      "created_at") ", push_endpoint FROM subscriptions WHERE "
	                    "topic_id = $1::bigint ORDER BY name",
	  1 },
	{ "sub_get",
	  "SELECT id::text, strategy, push_endpoint <> '' FROM subscriptions WHERE topic_id = "
	  "$1::bigint AND name = $2",
	  2 },
	/* What a consume needs of the tenant's ($1) topic $2 and its subscription $3, in one read:
	 * topic name, ack deadline, ordering keys, guarantee, then the subscription's id (NULL
	 * when it has none of that name), strategy, whether it is a push subscription, its mode. */
	{ "consume_sub",
	  "SELECT t.name, t.ack_deadline_ms, t.ordering_keys, t.guarantee, s.id::text, s.strategy, "
	  "s.push_endpoint <> '', s.mode FROM topics t LEFT JOIN subscriptions s ON s.topic_id = "
	  "t.id AND "
	  "s.name = $3 WHERE t.tenant_id = $1 AND t.name = $2",
	  3 },
	/* A push worker leases the oldest ready delivery of any push subscription but those in $2
	 * (bigint[]: the ones at their cap of pushes in flight) for $1 ms (the order per ordering
	 * key as in "claim"): message id, subscription id, attempt, lease id,
	 * payload, headers, publish time, subscription name, endpoint, secret, topic name, the
	 * topic's max attempts, and the traceparent header ('' when none). Each push subscription's
	 * head comes from the ready index (the oldest claimable one, locked), so that a call reads
	 * a few entries per push subscription and none of the pull subscriptions' deliveries; the
	 * heads not taken are unlocked at the end of the statement. */
	{ "push_claim",
	  "WITH c AS (SELECT h.tid FROM subscriptions s CROSS JOIN LATERAL (SELECT d.ctid AS tid, "
	  "d.seq FROM deliveries d WHERE " PS_CLAIMABLE(
	      "d", "s.id", "0",
	      "0") " ORDER BY d.seq LIMIT 1 FOR UPDATE OF d SKIP LOCKED) h WHERE s.push_endpoint "
	           "<> '' AND NOT (s.id = ANY ($2::bigint[])) ORDER BY h.seq LIMIT 1), "
	           "u AS (UPDATE deliveries d SET state = 'leased', attempt = d.attempt + 1, "
	           "lease_id = gen_random_uuid(), lease_expires = now() + make_interval(secs => "
	           "$1::double precision / 1000), consumer = 'push' WHERE " PS_BY_TID(
	               "d", "c") " RETURNING d.message_id, d.sub_id, d.attempt, d.lease_id) "
	                         "SELECT u.message_id::text, u.sub_id::text, u.attempt, "
	                         "u.lease_id::text, m.payload::text, m.headers::text, " PS_TS(
	                             "m.published_at") ", s.name, s.push_endpoint, s.push_secret, "
	                                               "t.name, t.max_attempts, "
	                                               "coalesce(m.headers->>'traceparent', '') "
	                                               "FROM u JOIN messages m ON m.id = "
	                                               "u.message_id JOIN subscriptions s ON s.id "
	                                               "= u.sub_id JOIN topics t ON t.id = "
	                                               "s.topic_id",
	  2 },
	/* What a publish needs in one round trip: the tenant's topic $2 (id, name, schema subject,
	 * ordering, guarantee) on every row, with each of its subscriptions, their filters and
	 * whether they are push subscriptions, and the topic's route_version (route.c caches
	 * this answer; the publish statements check the version), then each subscription's mode
	 * (a cursor subscription gets no delivery rows). */
	{ "pub_route",
	  "SELECT t.id::text, t.name, t.schema_subject, t.ordering_keys, t.guarantee, s.id::text, "
	  "s.filter::text, s.push_endpoint <> '', t.route_version::text, s.mode FROM topics t "
	  "LEFT JOIN "
	  "subscriptions s ON "
	  "s.topic_id = t.id "
	  "WHERE t.tenant_id = $1 AND t.name = $2",
	  2 },
	/* One publish: $1 topic, $2 idempotency key ("" = none), $3 id, $4 payload, $5 headers,
	 * $6 priority, $7 ordering key of the message, $8 the subscriptions it goes to (bigint[]),
	 * $9 the idempotency window in s, $10 ordering key of its deliveries ("" when the topic
	 * does not order), $11 the route_version the routing was read at. A live key stores nothing
	 * (the first column is then 0); a topic whose route_version moved (or that is gone) stores
	 * nothing either and answers false in the third column: the route must be read again.
	 * The topic row is locked FOR NO KEY UPDATE (once per statement; migration 004 dropped the
	 * foreign keys that locked it, the message and each subscription per row): a concurrent
	 * topic delete or update waits for this statement, or this one finds the topic gone or its
	 * route stale; and publishes of one topic commit one at a time, so its messages' seqs
	 * (migration 007) commit in order, which cursor subscriptions rely on. */
	{ "publish",
	  "WITH ok AS MATERIALIZED (SELECT 1 FROM topics WHERE id = $1::bigint AND route_version = "
	  "$11::bigint FOR NO KEY UPDATE), "
	  "i AS (INSERT INTO idempotency (topic_id, key, message_id, expires_at) "
	  "SELECT $1::bigint, $2, $3::uuid, now() + make_interval(secs => $9::int) FROM ok WHERE "
	  "$2 <> '' "
	  "ON CONFLICT (topic_id, key) DO UPDATE SET message_id = EXCLUDED.message_id, "
	  "expires_at = EXCLUDED.expires_at WHERE idempotency.expires_at < now() "
	  "RETURNING message_id), "
	  "go AS (SELECT 1 FROM ok WHERE $2 = '' OR EXISTS (SELECT 1 FROM i)), "
	  "m AS (INSERT INTO messages (id, topic_id, payload, headers, priority, ordering_key, "
	  "idempotency_key) SELECT $3::uuid, $1::bigint, $4::json, $5::jsonb, $6::smallint, $7, $2 "
	  "FROM go RETURNING id), "
	  "d AS (INSERT INTO deliveries (message_id, sub_id, priority, ordering_key) "
	  "SELECT m.id, s, $6::smallint, $10 FROM m, unnest($8::bigint[]) AS s RETURNING 1) "
	  "SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM d), EXISTS (SELECT 1 FROM ok)",
	  11 },
	/* A group of publishes in one statement (commit.c): the parameters of "publish" as arrays,
	 * one element per publish ($8: each publish's subscriptions as a bigint[] literal), $9 the
	 * window, $11 the route versions. One row per publish, in order: its position (1-based),
	 * messages stored (0 when its idempotency key is live or its route is stale), deliveries,
	 * and whether its route_version is still the topic's (as in "publish"). Deliveries get
	 * their seq in publish order. Two publishes of one new key in a group make the statement
	 * fail (ON CONFLICT cannot affect a row twice): the group is then published one statement
	 * at a time. The group's topics are locked FOR NO KEY UPDATE once each (as in "publish").
	 * The answer is a join with the publishes that went in ("go": each is stored with all its
	 * deliveries, or the statement fails), not a count per publish over everything inserted,
	 * which grew with the square of the group's size. */
	{ "publish_group",
	  "WITH p AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::text[], "
	  "$5::text[], $6::smallint[], $7::text[], $8::text[], $10::text[], $11::bigint[]) WITH "
	  "ORDINALITY AS p (topic_id, ikey, id, payload, headers, prio, okey, subs, dkey, ver, "
	  "n)), "
	  "t AS MATERIALIZED (SELECT id, route_version FROM topics WHERE id = ANY ($1::bigint[]) "
	  "FOR NO KEY UPDATE), "
	  "f AS (SELECT p.*, t.id IS NOT NULL AS fresh FROM p LEFT JOIN t ON t.id = p.topic_id AND "
	  "t.route_version = p.ver), "
	  "i AS (INSERT INTO idempotency (topic_id, key, message_id, expires_at) "
	  "SELECT topic_id, ikey, id, now() + make_interval(secs => $9::int) FROM f WHERE fresh "
	  "AND "
	  "ikey <> '' ON CONFLICT (topic_id, key) DO UPDATE SET message_id = EXCLUDED.message_id, "
	  "expires_at = EXCLUDED.expires_at WHERE idempotency.expires_at < now() "
	  "RETURNING message_id), "
	  "go AS (SELECT * FROM f WHERE fresh AND (ikey = '' OR id IN (SELECT message_id FROM "
	  "i))), "
	  "m AS (INSERT INTO messages (id, topic_id, payload, headers, priority, ordering_key, "
	  "idempotency_key) SELECT id, topic_id, payload::json, headers::jsonb, prio, okey, ikey "
	  "FROM go ORDER BY n), "
	  "d AS (INSERT INTO deliveries (message_id, sub_id, priority, ordering_key) "
	  "SELECT go.id, s.sub, go.prio, go.dkey FROM go CROSS JOIN LATERAL "
	  "unnest(go.subs::bigint[]) "
	  "WITH ORDINALITY AS s (sub, k) ORDER BY go.n, s.k) "
	  "SELECT f.n, (g.n IS NOT NULL)::int, CASE WHEN g.n IS NULL THEN 0 ELSE "
	  "cardinality(f.subs::bigint[]) END, f.fresh FROM f LEFT JOIN go g ON g.n = f.n "
	  "ORDER BY f.n",
	  11 },
	{ "idem_get",
	  "SELECT message_id::text FROM idempotency WHERE topic_id = $1::bigint AND key = $2", 2 },
	/* Marks consumer $2 of subscription $1 seen and lists the active ones ($3 ms) with their
	 * leases in flight. The caller's own row is written by this statement, so it may be
	 * missing from this answer's list the first time. */
	{ "consumer_touch",
	  "WITH up AS (INSERT INTO consumers (sub_id, name) VALUES ($1::bigint, $2) "
	  "ON CONFLICT (sub_id, name) DO UPDATE SET last_seen = now()) "
	  "SELECT c.name, (SELECT count(*) FROM deliveries d WHERE d.sub_id = c.sub_id AND "
	  "d.state = 'leased' AND d.consumer = c.name) FROM consumers c WHERE c.sub_id = "
	  "$1::bigint AND c.last_seen > now() - make_interval(secs => $3::double precision / 1000) "
	  "ORDER BY c.name",
	  3 },
	/* Leases up to $2 ready deliveries of subscription $1 for $3 ms to consumer $4, in seq
	 * order, which the ready index (sub_id, seq) gives without a sort. With $5 > 0 only
	 * those whose seq % $5 = $6 (round robin). A keyed delivery waits while an earlier one of
	 * its key is unfinished (order per key). It leases nothing unless at least $7 (>= 1) are
	 * claimable (PS_CLAIM_GATE). */
	{ "claim", PS_CLAIM("d.seq", "cu.seq"), 7 },
	/* "claim" for priority subscriptions: highest priority first, then seq. */
	{ "claim_prio", PS_CLAIM("d.priority DESC, d.seq", "cu.priority DESC, cu.seq"), 7 },
	/* The subscription $3 of message $1 when its topic is the tenant's $2: subscription id,
	 * topic name, guarantee, max attempts, mode. */
	{ "msg_sub",
	  "SELECT s.id::text, t.name, t.guarantee, t.max_attempts, s.mode FROM messages m JOIN "
	  "topics t ON "
	  "t.id = m.topic_id JOIN subscriptions s ON s.topic_id = t.id WHERE m.id = $1::uuid AND "
	  "t.tenant_id = $2 AND s.name = $3",
	  3 },
	/* Ack: a leased delivery ($3 = its lease id, or '' for any), or, unless $4 (strict), one
	 * whose lease expired and is waiting for its retry. Strict acks need an unexpired lease.
	 * Returns seconds since the publish. */
	{ "ack",
	  "WITH u AS (DELETE FROM deliveries d WHERE d.message_id = $1::uuid AND d.sub_id = "
	  "$2::bigint AND (d.state = 'leased' OR (NOT $4::boolean AND "
	  "d.state = 'ready' AND d.attempt > 0 AND $3 = '')) AND ($3 = '' OR d.lease_id::text = "
	  "$3) "
	  "AND (NOT $4::boolean OR d.lease_expires > now()) RETURNING d.*), " PS_ACKED_INSERT(
	      "u") " SELECT extract(epoch FROM now() - m.published_at), "
	           "coalesce(m.headers->>'traceparent', '') FROM u JOIN messages m ON m.id = "
	           "u.message_id",
	  4 },
	/* Many acks ($1 message ids, $2 subscriptions, $3 lease ids or '', as text[]) of tenant $4
	 * in one statement, with the rules of "ack". One row per ack, in order: topic, error (''
	 * when acked now or before; not_found, lease_required, no_lease), seconds since the
	 * publish, whether this statement acked it, and the message's traceparent header (''). The
	 * outer query sees the states from before the UPDATE. Every row is found by a key lookup
	 * per ack (LATERAL ... LIMIT 1 cannot be flattened): a cached generic plan made while the
	 * tables were empty joined messages through messages_by_topic instead, reading every
	 * message of the topic for each ack (docs/pubsub.md, "Profile"). */
	{ "ack_batch",
	  "WITH " PS_ACK_CTES " SELECT " PS_ACK_COLS " FROM " PS_ACK_FROM " ORDER BY r.n", 4 },
	/* Acks and a claim in one statement (ConsumeAck, consume.c; not for priority
	 * subscriptions): $1-$4 as in "ack_batch", then $5-$11 as $1-$7 of "claim". The claim sees
	 * the states from before the acks (one snapshot) and never takes a delivery named by an
	 * ack. One row per ack first (k = 0: "ack_batch"'s columns, then three NULLs), then the
	 * leased deliveries (k = 1: "claim"'s columns), all as text after k and o (the order). */
	{ "consume_ack",
	  "WITH " PS_ACK_CTES ", c AS (SELECT d.ctid AS tid FROM deliveries d WHERE " PS_CLAIMABLE(
	      "d", "$5", "$9",
	      "$10") " AND d.seq NOT IN (SELECT seq FROM t WHERE seq IS NOT NULL) "
	             "AND " PS_CLAIM_GATE(
	                 "$5", "$9", "$10",
	                 "$11") " ORDER BY d.seq LIMIT $6::int FOR UPDATE "
	                        "SKIP "
	                        "LOCKED), " PS_CLAIM_UPDATE(
	                            "$7", "$8") " SELECT 0 AS k, r.n AS "
	                                        "o, " PS_ACK_COLS ", NULL, NULL, NULL "
	                                        "FROM " PS_ACK_FROM " UNION ALL SELECT 1, "
	                                        "cu.seq, " PS_CLAIM_COLS
	                                        " FROM cu JOIN messages m ON m.id "
	                                        "= cu.message_id ORDER BY 1, 2",
	  11 },
	/* "claim" for a cursor subscription (its 7 parameters; $5/$6 apply to its detached
	 * deliveries only, and are 0 for the strategies a cursor subscription can have). */
	{ "claim_cursor",
	  "WITH " PS_CURSOR_CLAIM("$1", "$2", "$3", "$4", "$5", "$6", "$7",
	                          "") " " PS_CURSOR_ROWS("", "") " ORDER BY q, qs",
	  7 },
	/* "consume_ack" for a cursor subscription: the same parameters and rows (then two
	 * trailing columns, the order of the leased). Its acks settle only what a lease holds
	 * (the common case: the acks of the claim before); every other ack (a detached message,
	 * a repeated ack, an unknown id, a strict ack without lease) answers the error 'retry',
	 * and the caller settles those with "ack_batch", which has every rule (consume.c). A
	 * delivery whose message an ack names is not claimed again by the same statement. The
	 * statement stays small: executing its plan costs as much as the rows it touches. */
	{ "consume_ack_cursor",
	  "WITH r AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY "
	  "AS r (mid, sub, lease, n)), "
	  "t AS (SELECT r.n, r.lease, s.id AS sub_id, tp.name AS topic, tp.guarantee = "
	  "'exactly_once' AS strict, m.published_at, m.tp, m.mseq, 'held' AS state FROM r CROSS "
	  "JOIN LATERAL (SELECT topic_id, seq AS mseq, published_at, headers->>'traceparent' AS tp "
	  "FROM messages WHERE id = r.mid LIMIT 1) m JOIN topics tp ON tp.id = m.topic_id AND "
	  "tp.tenant_id = $4 JOIN subscriptions s ON s.topic_id = tp.id AND s.name = r.sub AND "
	  "s.mode = 'cursor'), " PS_LEASE_ACKS ", " PS_CURSOR_CLAIM(
	      "$5", "$6", "$7", "$8", "$9", "$10", "$11",
	      " AND d.message_id NOT IN (SELECT mid FROM r)") " SELECT 0 AS k, r.n AS o, t.topic, "
	                                                      "CASE WHEN t.n IN (SELECT n FROM la) "
	                                                      "THEN '' ELSE 'retry' END, "
	                                                      "coalesce(extract(epoch FROM now() - "
	                                                      "t.published_at), 0)::text, (t.n IN "
	                                                      "(SELECT n FROM la))::text, "
	                                                      "coalesce(t.tp, ''), NULL, NULL, "
	                                                      "NULL, 0 AS q, 0 AS qs FROM r LEFT "
	                                                      "JOIN t ON t.n = r.n UNION "
	                                                      "ALL " PS_CURSOR_ROWS(
	                                                          "1, cu.seq, ",
	                                                          "1, n.seq, ") " ORDER BY k, q, "
	                                                                        "qs, o",
	  11 },
	/* Detaches message $1 from the lease of cursor subscription $2 that holds it (of lease id
	 * $3, or any when '') into a row of deliveries, leased as it was (attempt 1): nack,
	 * modify-deadline and the single ack then work on that row. Nothing when no such lease
	 * holds it. */
	{ "detach",
	  "WITH m AS (SELECT id, seq, priority FROM messages WHERE id = $1::uuid), "
	  "lk AS (SELECT l.lease_id, l.seqs, l.expires_at, l.consumer, m.seq FROM m CROSS JOIN "
	  "LATERAL " PS_LEASE_OF("$2::bigint",
	                         "m.seq") " JOIN leases l ON l.lease_id = h.lease_id "
	                                  "WHERE m.seq = ANY (l.seqs) AND ($3 = '' OR "
	                                  "l.lease_id::text = $3) FOR UPDATE OF l), "
	                                  "ld AS (DELETE FROM leases l USING lk WHERE l.lease_id = "
	                                  "lk.lease_id AND lk.seqs = "
	                                  "ARRAY[lk.seq]), "
	                                  "lu AS (UPDATE leases l SET seqs = array_remove(lk.seqs, "
	                                  "lk.seq) FROM lk WHERE "
	                                  "l.lease_id = lk.lease_id AND cardinality(lk.seqs) > 1) "
	                                  "INSERT INTO deliveries (message_id, sub_id, priority, "
	                                  "state, attempt, lease_id, "
	                                  "lease_expires, consumer) SELECT m.id, $2::bigint, "
	                                  "m.priority, 'leased', 1, lk.lease_id, "
	                                  "lk.expires_at, lk.consumer FROM m, lk RETURNING 1",
	  3 },
	/* The reaper's first step: the expired leases of cursor subscriptions, a hundred at a
	 * time, detached whole into leased rows of deliveries (as "detach"), which "expire" then
	 * handles in the same pass. */
	{ "detach_expired",
	  "WITH l AS (DELETE FROM leases WHERE lease_id IN (SELECT lease_id FROM leases WHERE "
	  "expires_at <= now() ORDER BY expires_at LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING *) "
	  "INSERT INTO deliveries (message_id, sub_id, priority, state, attempt, lease_id, "
	  "lease_expires, consumer) SELECT m.id, l.sub_id, m.priority, 'leased', 1, l.lease_id, "
	  "l.expires_at, l.consumer FROM l JOIN subscriptions s ON s.id = l.sub_id JOIN messages m "
	  "ON m.topic_id = s.topic_id AND m.seq = ANY (l.seqs) ORDER BY m.seq",
	  0 },
	/* After a topic update ($1, in its transaction: the topic row is locked, so no publish
	 * commits meanwhile), its cursor subscriptions that can no longer be one (a strategy or
	 * ordering keys they cannot serve) become 'rows': what their leases hold becomes leased
	 * rows of deliveries, what is past their cursor ready rows. Answers how many changed. */
	{ "sub_to_rows",
	  "WITH s AS (UPDATE subscriptions s SET mode = 'rows' FROM topics t WHERE t.id = "
	  "$1::bigint AND s.topic_id = t.id AND s.mode = 'cursor' AND NOT " PS_CURSOR_ELIGIBLE(
	      "s.strategy", "s.filter", "s.push_endpoint",
	      "t.ordering_keys") " RETURNING s.id, s.next_seq, t.ordering_keys), "
	                         "l AS (DELETE FROM leases l USING s WHERE l.sub_id = s.id "
	                         "RETURNING "
	                         "l.*), "
	                         "h AS (INSERT INTO deliveries (message_id, sub_id, priority, "
	                         "ordering_key, state, attempt, lease_id, lease_expires, consumer) "
	                         "SELECT m.id, s.id, m.priority, CASE WHEN s.ordering_keys THEN "
	                         "m.ordering_key ELSE '' END, 'leased', 1, l.lease_id, "
	                         "l.expires_at, "
	                         "l.consumer FROM l JOIN s ON s.id = l.sub_id JOIN messages m ON "
	                         "m.topic_id = $1::bigint AND m.seq = ANY (l.seqs) ORDER BY "
	                         "m.seq), "
	                         "r AS (INSERT INTO deliveries (message_id, sub_id, priority, "
	                         "ordering_key) SELECT m.id, s.id, m.priority, CASE WHEN "
	                         "s.ordering_keys THEN m.ordering_key ELSE '' END FROM s JOIN "
	                         "messages m ON m.topic_id = $1::bigint AND m.seq >= s.next_seq "
	                         "ORDER BY m.seq) SELECT count(*) FROM s",
	  1 },
	/* The reaper (service.c): expired leases, a thousand at a time, ready again after the
	 * backoff of the attempt that failed ($1 base, $2 ceiling), or dead after the topic's last
	 * attempt: state, topic and subscription of each. */
	{ "expire",
	  "WITH x AS (SELECT d.ctid AS tid, d.seq, t.max_attempts, t.name AS topic, s.name AS sub "
	  "FROM deliveries d JOIN subscriptions s ON s.id = d.sub_id JOIN topics t ON t.id = "
	  "s.topic_id WHERE d.state = 'leased' AND d.lease_expires <= now() ORDER BY "
	  "d.lease_expires LIMIT 1000 FOR UPDATE OF d SKIP LOCKED) "
	  "UPDATE deliveries d SET state = CASE WHEN d.attempt >= x.max_attempts THEN 'dead' ELSE "
	  "'ready' END, visible_at = d.lease_expires + " PS_BACKOFF(
	      "d.attempt", "$1",
	      "$2") ", "
	            "lease_id = NULL, lease_expires = NULL, errors = d.errors || jsonb_build_array("
	            "jsonb_build_object('attempt', d.attempt, 'at', now(), 'reason', 'ack deadline "
	            "expired')) FROM x WHERE " PS_BY_TID(
	                "d", "x") " AND d.seq = x.seq RETURNING d.state, "
	                          "x.topic, x.sub",
	  2 },
	/* The state and attempt of message $1 for subscription $2 (no row: not routed to it);
	 * for a cursor subscription without a row of its own, from its leases and cursor. */
	{ "delivery_state",
	  "SELECT * FROM (SELECT state, attempt FROM deliveries WHERE message_id = $1::uuid AND "
	  "sub_id = $2::bigint UNION ALL SELECT 'acked', attempt FROM acked_deliveries WHERE "
	  "message_id = $1::uuid AND sub_id = $2::bigint UNION ALL SELECT CASE x.state WHEN 'held' "
	  "THEN 'leased' ELSE x.state END, CASE WHEN x.state = 'ready' THEN 0 ELSE 1 END FROM "
	  "subscriptions s JOIN messages m ON m.id = $1::uuid AND m.topic_id = s.topic_id CROSS "
	  "JOIN LATERAL (" PS_CURSOR_STATE("s", "m.seq") ") x (z, state) WHERE s.id = $2::bigint) "
	                                                 "y LIMIT 1",
	  2 },
	/* Nack: back to ready after $4 ms (or the backoff when $4 = 0), or dead after the topic's
	 * last attempt ($8); the reason $5 joins the error history. */
	{ "nack",
	  "UPDATE deliveries d SET state = CASE WHEN d.attempt >= $8::int THEN 'dead' ELSE 'ready' "
	  "END, visible_at = now() + CASE WHEN $4::int > 0 THEN make_interval(secs => "
	  "$4::double precision / 1000) ELSE " PS_BACKOFF(
	      "d.attempt", "$6",
	      "$7") " END, "
	            "lease_id = NULL, lease_expires = NULL, errors = d.errors || jsonb_build_array("
	            "jsonb_build_object('attempt', d.attempt, 'at', now(), 'reason', $5::text)) "
	            "WHERE d.message_id = $1::uuid AND d.sub_id = $2::bigint AND d.state = "
	            "'leased' AND "
	            "($3 = '' OR d.lease_id::text = $3) RETURNING d.state, d.attempt",
	  8 },
	/* A new lease of $4 ms from now, or ($4 = 0) the lease given up: ready at once. */
	{ "modify",
	  "UPDATE deliveries d SET lease_expires = CASE WHEN $4::int > 0 THEN now() + "
	  "make_interval(secs => $4::double precision / 1000) END, state = CASE WHEN $4::int > 0 "
	  "THEN 'leased' ELSE 'ready' END, lease_id = CASE WHEN $4::int > 0 THEN d.lease_id END, "
	  "visible_at = CASE WHEN $4::int > 0 THEN d.visible_at ELSE now() END "
	  "WHERE d.message_id = $1::uuid AND d.sub_id = $2::bigint AND d.state = 'leased' AND "
	  "d.lease_expires > now() AND ($3 = '' OR d.lease_id::text = $3) "
	  "RETURNING d.state, (extract(epoch FROM d.lease_expires) * 1000)::bigint",
	  4 },
	{ "msg_get",
	  "SELECT m.id::text, t.name, m.payload::text, m.headers::text, m.priority, "
	  "m.ordering_key, m.idempotency_key, " PS_TS(
	      "m.published_at") " FROM messages m JOIN "
	                        "topics t ON t.id = m.topic_id WHERE m.id = $1::uuid AND "
	                        "t.tenant_id = $2",
	  2 },
	{ "msg_deliveries",
	  "SELECT s.name, d.state, d.attempt, d.errors::text FROM (SELECT sub_id, state, attempt, "
	  "errors FROM deliveries WHERE message_id = $1::uuid UNION ALL SELECT sub_id, 'acked', "
	  "attempt, errors FROM acked_deliveries WHERE message_id = $1::uuid UNION ALL "
	  "SELECT s.id, CASE x.state WHEN 'held' THEN 'leased' ELSE x.state END, CASE WHEN "
	  "x.state = 'ready' THEN 0 ELSE 1 END, '[]'::jsonb FROM messages m JOIN subscriptions s "
	  "ON s.topic_id = m.topic_id CROSS JOIN LATERAL (" PS_CURSOR_STATE(
	      "s", "m.seq") ") x (z, state) WHERE m.id = $1::uuid AND NOT EXISTS (SELECT 1 FROM "
	                    "deliveries WHERE message_id = m.id AND sub_id = s.id) AND NOT EXISTS "
	                    "(SELECT 1 FROM acked_deliveries WHERE message_id = m.id AND sub_id = "
	                    "s.id)) d JOIN subscriptions s ON s.id = d.sub_id ORDER BY s.name",
	  1 },
	{ "dlq_list",
	  "SELECT m.id::text, s.name, d.attempt, d.errors::text, m.payload::text, "
	  "m.headers::text, " PS_TS(
	      "m.published_at") " FROM deliveries d JOIN subscriptions s ON s.id = d.sub_id "
	                        "JOIN messages m ON m.id = d.message_id WHERE s.topic_id = "
	                        "$1::bigint AND d.state = "
	                        "'dead' ORDER BY d.seq LIMIT $2::int",
	  2 },
	/* Dead deliveries of message $2 in topic $1 (of subscription $3, or all when '') back to
	 * ready with their attempts reset; the history keeps the replay. */
	{ "dlq_replay",
	  "UPDATE deliveries d SET state = 'ready', attempt = 0, visible_at = now(), errors = "
	  "d.errors || jsonb_build_array(jsonb_build_object('at', now(), 'reason', 'replayed')) "
	  "FROM subscriptions s WHERE s.id = d.sub_id AND s.topic_id = $1::bigint AND "
	  "d.message_id = $2::uuid AND d.state = 'dead' AND ($3 = '' OR s.name = $3) RETURNING 1",
	  3 },
	{ NULL, NULL, 0 },
};

struct ps_state *
ps_ctx(struct sb_rpc_call *call)
{
	return sb_service_state(sb_service_from_call(call));
}

struct sb_pg *
ps_pg(struct sb_rpc_call *call)
{
	return ps_pool_hold(&ps_ctx(call)->pool);
}

const char *
ps_tenant(struct sb_rpc_call *call)
{
	const Sb__Rpc__Principal *p = sb_rpc_call_principal(call);
	if (p == NULL || p->tenant_id == NULL || p->tenant_id[0] == '\0')
		return NULL;
	return p->tenant_id;
}

int
ps_db_error(struct sb_rpc_call *call, const char *what, int rv)
{
	struct sb_pg *pg = ps_pg(call);
	/* SB_EBUSY: a deadlock or serialization failure that sb_pg's own sends again did not get
	 * past; nothing of the statement stayed, so the caller may retry it. */
	if (rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT || rv == SB_EBUSY) {
		int64_t ra = pg ? sb_pg_retry_after_ms(pg) : 0;
		sb_rpc_call_retry_after(call, ra > 0 ? ra : 1000);
		sb_log_kv(SB_LOG_WARN, "database unavailable", "statement", what, "error",
		          sb_strerror(rv), NULL);
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "database unavailable");
	}
	sb_log_kv(SB_LOG_ERROR, "statement failed", "statement", what, "error", sb_strerror(rv),
	          "detail", pg ? sb_pg_errmsg(pg) : "", NULL);
	return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "storage error");
}

int
ps_invalid(struct sb_rpc_call *call, const char *field, const char *reason)
{
	sb_rpc_call_violation(call, field, reason);
	return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "%s: %s", field, reason);
}

int
ps_topic_load(struct sb_rpc_call *call, const char *tenant, const char *name, struct ps_topic *t,
              PGresult **res)
{
	const char *p[] = { tenant, name };
	int rv;
	*res = NULL;
	if (!ps_name_ok(name))
		return ps_invalid(call, "name",
		                  "1 to 100 of A-Z a-z 0-9 . _ -, not ending in .dlq");
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "topic_get", 2, p, res)) != 0)
		return ps_db_error(call, "topic_get", rv);
	if (PQntuples(*res) != 1) {
		PQclear(*res);
		*res = NULL;
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no topic %s", name);
	}
	t->id = PQgetvalue(*res, 0, 0);
	t->name = PQgetvalue(*res, 0, 1);
	t->type = PQgetvalue(*res, 0, 2);
	t->schema_subject = PQgetvalue(*res, 0, 3);
	t->partitions = atoi(PQgetvalue(*res, 0, 4));
	t->ordering_keys = PQgetvalue(*res, 0, 5)[0] == 't';
	t->retention_ms = atoll(PQgetvalue(*res, 0, 6));
	t->max_attempts = atoi(PQgetvalue(*res, 0, 7));
	t->ack_deadline_ms = atoi(PQgetvalue(*res, 0, 8));
	t->guarantee = PQgetvalue(*res, 0, 9);
	t->default_strategy = PQgetvalue(*res, 0, 10);
	t->created_at = PQgetvalue(*res, 0, 11);
	return SB__RPC__CODE__OK;
}

int
ps_sub_load(struct sb_rpc_call *call, const char *topic_id, const char *sub, char *id,
            enum ps_strategy *strategy, bool *push)
{
	const char *name = (sub == NULL || sub[0] == '\0') ? PS_DEFAULT_SUB : sub;
	const char *p[] = { topic_id, name };
	PGresult *res = NULL;
	int rv;
	if (!ps_name_ok(name))
		return ps_invalid(call, "subscription", "1 to 100 of A-Z a-z 0-9 . _ -");
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "sub_get", 2, p, &res)) != 0)
		return ps_db_error(call, "sub_get", rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no subscription %s",
		                         name);
	}
	snprintf(id, 24, "%s", PQgetvalue(res, 0, 0));
	if (!ps_strategy_parse(PQgetvalue(res, 0, 1), strategy))
		*strategy = PS_DIRECT;
	if (push != NULL)
		*push = PQgetvalue(res, 0, 2)[0] == 't';
	PQclear(res);
	return SB__RPC__CODE__OK;
}

char *
ps_dup(struct sb_rpc_call *call, const char *s)
{
	return sb_rpc_call_strdup(call, s ? s : "");
}

Sb__Json__Raw *
ps_raw(struct sb_rpc_call *call, const char *text)
{
	Sb__Json__Raw *r = sb_rpc_call_alloc(call, sizeof(*r));
	if (r == NULL)
		return NULL;
	sb__json__raw__init(r);
	if ((r->json = ps_dup(call, text)) == NULL)
		return NULL;
	return r;
}

int
ps_headers_fill(struct sb_rpc_call *call, const char *text, const ProtobufCMessageDescriptor *entry,
                void ***out, size_t *n)
{
	json_error_t err;
	json_t *o = json_loads(text, 0, &err);
	const char *k;
	json_t *v;
	size_t i = 0;
	int rv = SB_EINVAL;
	*out = NULL;
	*n = 0;
	if (!json_is_object(o))
		goto done;
	void **arr = sb_rpc_call_alloc(call, (json_object_size(o) + 1) * sizeof(void *));
	rv = SB_ENOMEM;
	if (arr == NULL)
		goto done;
	json_object_foreach(o, k, v)
	{
		ProtobufCMessage *e = sb_rpc_call_alloc(call, entry->sizeof_message);
		if (e == NULL)
			goto done;
		protobuf_c_message_init(entry, e);
		char *key = ps_dup(call, k);
		char *val = ps_dup(call, json_is_string(v) ? json_string_value(v) : "");
		if (key == NULL || val == NULL)
			goto done;
		*(char **)((char *)e + entry->fields[0].offset) = key;
		*(char **)((char *)e + entry->fields[1].offset) = val;
		arr[i++] = e;
	}
	*out = arr;
	*n = i;
	rv = 0;
done:
	json_decref(o);
	return rv;
}
