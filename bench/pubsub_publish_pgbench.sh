#!/usr/bin/env bash
# pubsub_publish_pgbench.sh: what sb-pubsub's publish statement costs PostgreSQL per message, by
# shape, without the service: pgbench runs the "publish_group" statement (services/pubsub/
# store.c) with N rows per statement (one transaction each) from 4 clients against a durable
# PostgreSQL (fsync, synchronous_commit on) and the script prints PostgreSQL's CPU µs per
# message (its processes' ticks over the run) for each variant:
#   fk        main before migration 004: the three foreign keys of messages and deliveries, the
#             answer counting per row (b728952's statement);
#   lock      migration 004 and this branch's statement (FOR KEY SHARE of the topic once, the
#             answer joined with the stored rows);
#   jsonarr   as lock, the payloads sent as one JSON array (json_array_elements) instead of a
#             text[] cast to json row by row;
#   noindex   as lock, without the index messages_by_topic.
# Payloads are 1 KiB JSON objects with one string member, as bench/pubsub/load.mjs sends; each
# message goes to one subscription; ids are made by PostgreSQL (gen_random_uuid()) since pgbench
# cannot send a fresh array per transaction. Not a target (no verdict): a measurement for
# docs/pubsub.md "Cheaper publishes".
# Usage: bash bench/pubsub_publish_pgbench.sh   (SB_PGB_ROWS "8 16", SB_PGB_SECONDS 8)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_SOURCE_ROOT=$root
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg -- bash "$0"
fi
. "$root/tools/stack.sh"
tmp=$SB_TEST_TMP
secs=${SB_PGB_SECONDS:-8}
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
sb_pg_stop "$tmp"
sb_pg_start "$tmp" "$SB_TEST_PG_PORT" "-c fsync=on -c synchronous_commit=on" ||
	{ echo "pgbench: PostgreSQL restart failed"; exit 1; }
. "$root/bench/lib/pg.sh"
mig=$root/services/pubsub/migrations

# schema VARIANT: a fresh pubsub schema with one topic and its default subscription
schema() {
	local files="$mig/001_init.sql $mig/002_push.sql $mig/003_perf.sql" f
	[ "$1" != fk ] && files="$files $mig/004_publish_locks.sql"
	q -c 'DROP SCHEMA IF EXISTS pubsub CASCADE' -c 'CREATE SCHEMA pubsub' >/dev/null || exit 1
	for f in $files; do
		PGOPTIONS='-c search_path=pubsub' q -f "$f" >/dev/null || exit 1
	done
	[ "$1" = noindex ] && { q -c 'DROP INDEX pubsub.messages_by_topic' || exit 1; }
	q -c "INSERT INTO pubsub.topics (tenant_id, name, type, retention_ms, max_attempts, ack_deadline_ms, guarantee, default_strategy) VALUES ('t', 'bench', 'queue', 1000000, 5, 30000, 'at_least_once', 'direct')" \
		-c "INSERT INTO pubsub.subscriptions (topic_id, name, strategy) SELECT id, 'default', 'direct' FROM pubsub.topics" \
		-c 'CHECKPOINT' >/dev/null || exit 1
}

# The statement's common head: $1 the group's columns as arrays but ids and payloads.
head_sql="WITH p AS (SELECT * FROM unnest(:topics::bigint[], :ikeys::text[], :payloads::text[], :headers::text[], :prios::smallint[], :okeys::text[], :subs::text[], :dkeys::text[], :vers::bigint[]) WITH ORDINALITY AS p (topic_id, ikey, payload, headers, prio, okey, subs, dkey, ver, n)), p2 AS (SELECT p.*, gen_random_uuid() AS id FROM p)"
tail_ins="i AS (INSERT INTO idempotency (topic_id, key, message_id, expires_at) SELECT topic_id, ikey, id, now() + make_interval(secs => 86400) FROM f WHERE fresh AND ikey <> '' ON CONFLICT (topic_id, key) DO UPDATE SET message_id = EXCLUDED.message_id, expires_at = EXCLUDED.expires_at WHERE idempotency.expires_at < now() RETURNING message_id), go AS (SELECT * FROM f WHERE fresh AND (ikey = '' OR id IN (SELECT message_id FROM i)))"
stmt() {
	case $1 in
	fk) echo "$head_sql, f AS (SELECT p2.*, EXISTS (SELECT 1 FROM topics t WHERE t.id = p2.topic_id AND t.route_version = p2.ver) AS fresh FROM p2), $tail_ins, m AS (INSERT INTO messages (id, topic_id, payload, headers, priority, ordering_key, idempotency_key) SELECT id, topic_id, payload::json, headers::jsonb, prio, okey, ikey FROM go ORDER BY n RETURNING id), d AS (INSERT INTO deliveries (message_id, sub_id, priority, ordering_key) SELECT go.id, s.sub, go.prio, go.dkey FROM go CROSS JOIN LATERAL unnest(go.subs::bigint[]) WITH ORDINALITY AS s (sub, k) ORDER BY go.n, s.k RETURNING message_id) SELECT f.n, (SELECT count(*) FROM m WHERE m.id = f.id), (SELECT count(*) FROM d WHERE d.message_id = f.id), f.fresh FROM f ORDER BY f.n;" ;;
	lock | noindex | jsonarr)
		local pay="payload::json"
		local h=$head_sql
		if [ "$1" = jsonarr ]; then
			h="${head_sql/:payloads::text\[\], /}"
			h="${h/(topic_id, ikey, payload, /(topic_id, ikey, }"
			h="${h/, p2 AS (SELECT p.\*, gen_random_uuid() AS id FROM p)/, j AS (SELECT * FROM json_array_elements(:jpayloads::json) WITH ORDINALITY AS j (payload, n)), p2 AS (SELECT p.*, j.payload, gen_random_uuid() AS id FROM p JOIN j USING (n))}"
			pay=payload
		fi
		echo "$h, t AS MATERIALIZED (SELECT id, route_version FROM topics WHERE id = ANY (:topics::bigint[]) FOR KEY SHARE), f AS (SELECT p2.*, t.id IS NOT NULL AS fresh FROM p2 LEFT JOIN t ON t.id = p2.topic_id AND t.route_version = p2.ver), $tail_ins, m AS (INSERT INTO messages (id, topic_id, payload, headers, priority, ordering_key, idempotency_key) SELECT id, topic_id, $pay, headers::jsonb, prio, okey, ikey FROM go ORDER BY n), d AS (INSERT INTO deliveries (message_id, sub_id, priority, ordering_key) SELECT go.id, s.sub, go.prio, go.dkey FROM go CROSS JOIN LATERAL unnest(go.subs::bigint[]) WITH ORDINALITY AS s (sub, k) ORDER BY go.n, s.k) SELECT f.n, (g.n IS NOT NULL)::int, CASE WHEN g.n IS NULL THEN 0 ELSE cardinality(f.subs::bigint[]) END, f.fresh FROM f LEFT JOIN go g ON g.n = f.n ORDER BY f.n;" ;;
	esac
}


pad=$(head -c 1000 /dev/zero | tr '\0' x)
pl='{"d":"'$pad'"}'
printf '%-8s %5s %9s %12s %14s\n' variant rows "tps" "msgs/s" "PG µs/msg"
for rows in ${SB_PGB_ROWS:-8 16}; do
	for v in fk lock jsonarr noindex; do
		schema "$v"
		tid=$(q -c 'SELECT id FROM pubsub.topics')
		sid=$(q -c 'SELECT id FROM pubsub.subscriptions')
		stmt "$v" >"$tmp/stmt.sql"
		pays=$(arr "$rows" "${pl//\"/\\\"}")
		jp="[$(printf "$pl%.0s," $(seq "$rows"))"
		jp="${jp%,}]"
		d0=$(pg_ticks)
		out=$(PGOPTIONS='-c search_path=pubsub' pgbench -n -M prepared -c 4 -j 2 -T "$secs" -f "$tmp/stmt.sql" \
			-D topics="$(arr "$rows" "$tid")" -D ikeys="$(arr "$rows" "")" -D payloads="$pays" \
			-D jpayloads="$jp" -D headers="$(arr "$rows" '{}')" -D prios="$(arr "$rows" 0)" \
			-D okeys="$(arr "$rows" "")" -D subs="$(arr "$rows" "{$sid}")" -D dkeys="$(arr "$rows" "")" \
			-D vers="$(arr "$rows" 0)" "$SB_TEST_PG_DSN" 2>&1) || { echo "pgbench failed ($v): $out" | tail -5; exit 1; }
		sleep 1 # the backends of pgbench exit and are reaped
		d1=$(pg_ticks)
		tx=$(echo "$out" | awk '/number of transactions actually processed/ {print $NF}' | cut -d/ -f1)
		tps=$(echo "$out" | awk '/^tps/ {print int($3)}')
		stored=$(q -c 'SELECT count(*) FROM pubsub.messages')
		[ "$stored" = $((tx * rows)) ] || { echo "pgbench: $v stored $stored messages for $tx transactions of $rows"; exit 1; }
		printf '%-8s %5d %9d %12d %14d\n' "$v" "$rows" "$tps" $((tps * rows)) $(((d1 - d0) * 1000000 / $(getconf CLK_TCK) / (tx * rows)))
	done
done
