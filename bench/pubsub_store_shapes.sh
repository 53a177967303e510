#!/usr/bin/env bash
# pubsub_store_shapes.sh: what one message's whole life in the store (publish, lease, ack) costs
# PostgreSQL in today's shape of sb-pubsub's tables against a cursor-lease shape that is only a
# design (docs/pubsub.md "What the rest of the gap is made of"), driven the same way: pgbench,
# 4 clients, durable PostgreSQL (fsync, synchronous_commit on), messages of 1 KiB published
# SB_SHAPES_ROWS (16) a statement and then consumed SB_SHAPES_ROWS a statement, each consume
# acknowledging what the same client leased with its previous one. Printed per shape: PostgreSQL
# CPU µs a message for the publishes, the consumes, and a VACUUM of the shape's tables afterwards
# (the dead rows its updates and deletes left), and their sum.
#   today   migrations 001-006 and store.c's own statements: "publish_group" (message ids made
#           in SQL, time-ordered as sb-pubsub's UUIDv7; everything else as the service binds it),
#           and "consume_ack" (its CTEs as they are; the final SELECT aggregates what the next
#           consume needs and counts the acks, since pgbench keeps one row per statement)
#   cursor  no deliveries: a subscription keeps next_seq over its topic's messages (numbered by a
#           sequence under the topic's row lock, FOR NO KEY UPDATE, so seq follows commit order),
#           a claim writes one lease row for what it took, an ack finds its messages by id (as
#           today) and deletes the lease when they are all of it; retries (empty here) are read
#           before the cursor moves
# Not a target and no verdict: a measurement for a design decision. Each shape ends with every
# message acknowledged (checked), or the script fails.
# Usage: bash bench/pubsub_store_shapes.sh   (SB_SHAPES_MESSAGES 32000, SB_SHAPES_ROWS 16)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_SOURCE_ROOT=$root
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg -- bash "$0"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/pubsub_sql.sh"
tmp=$SB_TEST_TMP
rows=${SB_SHAPES_ROWS:-16}
total=${SB_SHAPES_MESSAGES:-32000}
clients=4
per=$((total / rows / clients)) # transactions per client and phase
total=$((per * rows * clients))
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $total messages, $rows a statement"
sb_pg_stop "$tmp"
sb_pg_start "$tmp" "$SB_TEST_PG_PORT" "-c fsync=on -c synchronous_commit=on -c autovacuum=off" ||
	{ echo "shapes: PostgreSQL restart failed"; exit 1; }
. "$root/bench/lib/pg.sh"
hz=$(getconf CLK_TCK)
us_per_msg() { echo $((($2 - $1) * 1000000 / hz / total)); }

# A time-ordered id like sb-pubsub's UUIDv7: 48 bits of Unix ms, then random hex.
v7="(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text || g::text), 1, 19))::uuid"
ids_sql="(SELECT array_agg($v7) FROM generate_series(1, $rows) g)::uuid[]"

# sub OLD NEW TEXT: TEXT with the one occurrence of OLD replaced, or a failure when it is missing
# (store.c changed: this script must follow it).
sub() {
	case $3 in *"$1"*) ;; *) echo "shapes: '$1' is not in the statement any more" >&2; return 1 ;; esac
	printf '%s' "${3/"$1"/"$2"}"
}

# --- today: store.c's statements on migrations 001-006
pub_today=$(ps_stmt_sql publish_group)
pub_today=$(sub '$3::uuid[]' "$ids_sql" "$pub_today") || exit 1
ca=$(ps_stmt_sql consume_ack)
ctes=${ca%% SELECT 0 AS k*}
[ "$ctes" != "$ca" ] || { echo "shapes: consume_ack's final SELECT not found"; exit 1; }
# The acks' answers as the service reads them (PS_ACK_FROM), counted; then what the next consume
# acknowledges: the leased ids and lease ids, and the payload bytes read.
ack_from=${ca#*'NULL, NULL, NULL FROM '}
ack_from=${ack_from%% UNION ALL*}
cons_today="$ctes SELECT (SELECT count(*) FILTER (WHERE t.acked_now) FROM $ack_from) AS acked, coalesce(array_agg(cu.message_id)::text, '{}') AS ids, coalesce(array_agg('default'::text)::text, '{}') AS subs, coalesce(array_agg(cu.lease_id::text)::text, '{}') AS leases, coalesce(sum(length(m.payload::text)), 0) AS bytes FROM cu JOIN messages m ON m.id = cu.message_id"

schema_today() {
	local f
	q -c 'DROP SCHEMA IF EXISTS pubsub CASCADE' -c 'DROP SCHEMA IF EXISTS cursor CASCADE' -c 'CREATE SCHEMA pubsub' >/dev/null || exit 1
	for f in "$root"/services/pubsub/migrations/00[1-6]_*.sql; do
		PGOPTIONS='-c search_path=pubsub' q -f "$f" >/dev/null || exit 1
	done
	q -c "INSERT INTO pubsub.topics (tenant_id, name, type, retention_ms, max_attempts, ack_deadline_ms, guarantee, default_strategy) VALUES ('t', 'bench', 'queue', 1000000, 5, 30000, 'at_least_once', 'direct')" \
		-c "INSERT INTO pubsub.subscriptions (topic_id, name, strategy) SELECT id, 'default', 'direct' FROM pubsub.topics" >/dev/null || exit 1
}

# --- cursor: the design's tables and statements
pub_cursor=$(sub 'FOR KEY SHARE' 'FOR NO KEY UPDATE' "$pub_today") || exit 1
pub_cursor=$(sub 'INSERT INTO messages (id, topic_id, payload,' 'INSERT INTO messages (id, topic_id, seq, payload,' "$pub_cursor") || exit 1
pub_cursor=$(sub 'SELECT id, topic_id, payload::json,' "SELECT id, topic_id, nextval('msg_seq'), payload::json," "$pub_cursor") || exit 1
# no deliveries: the CTE d goes (the answer's counts do not read it)
d_cte=${pub_cursor#*'), d AS (INSERT INTO deliveries'}
d_cte=${d_cte%%') SELECT f.n'*}
pub_cursor=$(sub "), d AS (INSERT INTO deliveries$d_cte)" ')' "$pub_cursor") || exit 1
cons_cursor="WITH ak AS (SELECT m.seq, m.published_at, m.headers->>'traceparent' AS tp FROM unnest(:ids::uuid[]) AS x (id) JOIN messages m ON m.id = x.id AND m.topic_id = :topic), \
k AS (SELECT count(*) AS c, min(seq) AS lo, max(seq) AS hi FROM ak), \
a AS (DELETE FROM leases l USING k WHERE l.lease_id = nullif(:lease, '-')::uuid AND l.sub_id = :sub AND l.expires_at > now() AND k.c = l.n AND k.lo >= l.first_seq AND k.hi <= l.last_seq RETURNING l.n), \
s AS (SELECT next_seq FROM subscriptions WHERE id = :sub FOR UPDATE), \
r AS (SELECT seq FROM retries WHERE sub_id = :sub AND visible_at <= now() ORDER BY visible_at LIMIT $rows FOR UPDATE SKIP LOCKED), \
m AS (SELECT id, seq, payload, headers FROM messages WHERE topic_id = :topic AND seq >= (SELECT next_seq FROM s) ORDER BY seq LIMIT :max), \
adv AS (UPDATE subscriptions SET next_seq = (SELECT max(seq) + 1 FROM m) WHERE id = :sub AND EXISTS (SELECT 1 FROM m) RETURNING next_seq), \
l AS (INSERT INTO leases (lease_id, sub_id, first_seq, last_seq, n, expires_at, consumer) SELECT gen_random_uuid(), :sub, min(seq), max(seq), count(*), now() + make_interval(secs => 30), :client_id::text FROM m HAVING count(*) > 0 RETURNING lease_id) \
SELECT coalesce((SELECT sum(n) FROM a), 0) AS acked, (SELECT count(*) FROM r) + (SELECT count(*) FROM adv) AS moved, coalesce(array_agg(m.id)::text, '{}') AS ids, coalesce((SELECT lease_id::text FROM l), '-') AS lease, coalesce(sum(length(m.payload::text)), 0) AS bytes FROM m"

schema_cursor() {
	q -c 'DROP SCHEMA IF EXISTS pubsub CASCADE' -c 'DROP SCHEMA IF EXISTS cursor CASCADE' -c 'CREATE SCHEMA cursor' >/dev/null || exit 1
	PGOPTIONS='-c search_path=cursor' q >/dev/null <<'EOF' || exit 1
CREATE TABLE topics (id bigserial PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL,
    route_version bigint NOT NULL DEFAULT 0, UNIQUE (tenant_id, name));
CREATE TABLE subscriptions (id bigserial PRIMARY KEY, topic_id bigint NOT NULL, name text NOT NULL,
    next_seq bigint NOT NULL DEFAULT 1, UNIQUE (topic_id, name));
CREATE SEQUENCE msg_seq;
CREATE TABLE messages (id uuid PRIMARY KEY, topic_id bigint NOT NULL, seq bigint NOT NULL,
    payload json NOT NULL, headers jsonb NOT NULL DEFAULT '{}', priority smallint NOT NULL DEFAULT 0,
    ordering_key text NOT NULL DEFAULT '', idempotency_key text NOT NULL DEFAULT '',
    published_at timestamptz NOT NULL DEFAULT now());
CREATE UNIQUE INDEX messages_seq ON messages (topic_id, seq);
CREATE TABLE leases (lease_id uuid PRIMARY KEY, sub_id bigint NOT NULL, first_seq bigint NOT NULL,
    last_seq bigint NOT NULL, n int NOT NULL, expires_at timestamptz NOT NULL, consumer text NOT NULL);
CREATE INDEX leases_expiry ON leases (expires_at);
CREATE TABLE retries (sub_id bigint NOT NULL, seq bigint NOT NULL, visible_at timestamptz NOT NULL,
    attempt int NOT NULL, errors jsonb NOT NULL DEFAULT '[]', PRIMARY KEY (sub_id, seq));
CREATE INDEX retries_ready ON retries (sub_id, visible_at);
CREATE TABLE idempotency (topic_id bigint NOT NULL, key text NOT NULL, message_id uuid NOT NULL,
    expires_at timestamptz NOT NULL, PRIMARY KEY (topic_id, key));
INSERT INTO topics (tenant_id, name) VALUES ('t', 'bench');
INSERT INTO subscriptions (topic_id, name) SELECT id, 'default' FROM topics;
EOF
}

pad=$(head -c 1000 /dev/zero | tr '\0' x)
pl='{"d":"'$pad'"}'

# pgb SCHEMA SCRIPT VARS...: pgbench, 4 clients, $per transactions each, prepared statements
pgb() {
	local schema=$1 script=$2 out
	shift 2
	out=$(PGOPTIONS="-c search_path=$schema $(ps_conn_options | sed 's/-c search_path=[^ ]*//')" \
		pgbench -n -M prepared --max-tries=5 --failures-detailed -c "$clients" -j 2 -t "$per" -f "$script" "$@" "$SB_TEST_PG_DSN" 2>&1) ||
		{ echo "shapes: pgbench failed: $(echo "$out" | tail -5)"; return 1; }
	# today's consume_ack can deadlock with another (docs/pubsub.md): retried as sb-pubsub does
	echo "$out" | grep -E '^number of transactions retried' | sed "s/^/  ($(basename "$script" .sql): /;s/$/)/" >&2
	echo "$out" | grep -q "number of failed transactions: 0" ||
		{ echo "shapes: pgbench reported failures:"; echo "$out" | grep -i -E 'fail|error' | head -5; return 1; }
}

printf '%-7s %12s %12s %12s %12s\n' shape publish consume vacuum "total µs/msg"
for shape in today cursor; do
	"schema_$shape"
	if [ "$shape" = today ]; then
		s=pubsub pub=$pub_today cons=$cons_today
	else
		s=cursor pub=$pub_cursor cons=$cons_cursor
	fi
	tid=$(q -c "SELECT id FROM $s.topics")
	sid=$(q -c "SELECT id FROM $s.subscriptions")
	tenant=t
	# the publish: $1.. of publish_group as sb-pubsub binds them (one topic, one subscription)
	p=$pub
	for k in 11 10 9 8 7 6 5 4 2 1; do
		case $k in
		1) v=":topics" ;; 2) v=":ikeys" ;; 4) v=":payloads" ;; 5) v=":headers" ;; 6) v=":prios" ;;
		7) v=":okeys" ;; 8) v=":subs" ;; 9) v=":window" ;; 10) v=":dkeys" ;; 11) v=":vers" ;;
		esac
		p=${p//"\$$k::"/"$v::"}
	done
	case $p in *'$'[0-9]*) echo "shapes: a parameter of publish_group is left: $p"; exit 1 ;; esac
	printf '%s;\n' "$p" >"$tmp/pub.sql"
	c=$cons
	if [ "$shape" = today ]; then
		for k in 11 10 9 8 7 6 5 4 3 2 1; do
			case $k in
			1) v=":ids" ;; 2) v=":subs" ;; 3) v=":leases" ;; 4) v="'$tenant'" ;; 5) v=":sub" ;; 6) v=":max" ;;
			7) v="'30000'" ;; 8) v=":client_id" ;; 9) v="'0'" ;; 10) v="'0'" ;; 11) v="'1'" ;;
			esac
			c=${c//"\$$k"/"$v"}
		done
	fi
	case $c in *'$'[0-9]*) echo "shapes: a parameter of the consume is left: $c"; exit 1 ;; esac
	# Rounds after the last that may lease only acknowledge (max 0): with SKIP LOCKED a claim
	# can come back short, so leasing goes on for 4 rounds more than a fair share needs.
	{ printf '\\set round :round + 1\n\\set max %d\n\\if :round > %d\n\\set max 0\n\\endif\n' "$rows" $((per + 4))
		printf '%s \\gset\n' "$c"; } >"$tmp/cons.sql"
	q -c 'CHECKPOINT' >/dev/null
	d0=$(pg_ticks)
	pgb "$s" "$tmp/pub.sql" -D topics="$(arr "$rows" "$tid")" -D ikeys="$(arr "$rows" "")" \
		-D payloads="$(arr "$rows" "${pl//\"/\\\"}")" -D headers="$(arr "$rows" '{}')" \
		-D prios="$(arr "$rows" 0)" -D okeys="$(arr "$rows" "")" -D subs="$(arr "$rows" "{$sid}")" \
		-D window=86400 -D dkeys="$(arr "$rows" "")" -D vers="$(arr "$rows" 0)" || exit 1
	sleep 1
	d1=$(pg_ticks)
	stored=$(q -c "SELECT count(*) FROM $s.messages")
	[ "$stored" = "$total" ] || { echo "shapes: $shape stored $stored of $total messages"; exit 1; }
	# the consumes: 6 rounds more than a fair share (see cons.sql), the last 2 only acknowledging
	per=$((per + 6))
	pgb "$s" "$tmp/cons.sql" -D round=0 -D ids='{}' -D subs='{}' -D leases='{}' -D lease=- -D sub="$sid" -D topic="$tid" || exit 1
	per=$((per - 6))
	sleep 1
	d2=$(pg_ticks)
	if [ "$shape" = today ]; then
		left=$(q -c "SELECT count(*) FROM pubsub.deliveries") done_=$(q -c "SELECT count(*) FROM pubsub.acked_deliveries")
	else
		left=$(q -c "SELECT count(*) FROM cursor.leases") done_=$(q -c "SELECT next_seq - 1 FROM cursor.subscriptions")
	fi
	[ "$left" = 0 ] && [ "$done_" = "$total" ] ||
		{ echo "shapes: $shape left $left unacknowledged ($done_ of $total done)"; exit 1; }
	PGOPTIONS="-c search_path=$s" q -c 'VACUUM' >/dev/null
	d3=$(pg_ticks)
	printf '%-7s %12s %12s %12s %12s\n' "$shape" "$(us_per_msg "$d0" "$d1")" "$(us_per_msg "$d1" "$d2")" \
		"$(us_per_msg "$d2" "$d3")" "$(us_per_msg "$d0" "$d3")"
done
