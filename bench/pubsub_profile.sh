#!/usr/bin/env bash
# pubsub_profile.sh: where sb-pubsub's time goes under the load of bench/pubsub_bench.sh (the
# pubsub part only; no peers, no verdict). PostgreSQL runs durable (fsync, synchronous_commit
# on) with pg_stat_statements loaded; after the load the script prints
#   - the load's line (rate, p50/p99) and the CPU seconds of gateway, sb-pubsub, PostgreSQL;
#   - HTTP requests (the gateway's counter) and RPCs and statements per message; sessions
#     opened and deadlocks (pg_stat_database) during the load;
#   - pg_stat_statements: calls, total and mean ms, rows, shared blocks hit/read/dirtied/written
#     and WAL bytes per statement, the largest first;
#   - the deliveries table's tuple counters (updates, HOT updates, deletes) and index sizes;
#   - EXPLAIN (ANALYZE, BUFFERS) of a claim of 64 and of a batch ack of what it leased, on the
#     table the load left behind (inside a transaction that is rolled back).
#   - the mean latency per call of the gateway's requests, its RPC calls and pubsub's handling;
# SB_PROFILE_PERF=1 also samples the whole machine with perf for 5 s during the load (commands,
# and the hottest symbols of postgres, sb-pubsub and sb-gateway).
# SB_PROFILE_SWITCHES=1 counts context switches per thread of the gateway and sb-pubsub over 3 s
# of the load (perf stat --per-thread), summed by thread name and divided by HTTP requests.
# SB_PROFILE_SQL runs SQL (psql -c) once the services started and before the load: for
# experiments on the schema without a migration (docs/pubsub.md has one: HOT leases).
# Usage: bash bench/pubsub_profile.sh [BUILD_DIR]   (SB_BENCH_MESSAGES, default 4000;
# SB_PROFILE_MODE=pubsub-batch profiles the batching producers of load.mjs)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_BUILD_ROOT=${1:-${SB_BUILD_ROOT:-$root/build}}
export SB_SOURCE_ROOT=$root
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,redis -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/bench/pubsub/stack.sh"
tmp=$SB_TEST_TMP
export SB_BENCH_MESSAGES=${SB_BENCH_MESSAGES:-4000}
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), build $SB_BUILD_ROOT"
sb_pg_stop "$tmp"
sb_pg_start "$tmp" "$SB_TEST_PG_PORT" "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c track_io_timing=on -c pg_stat_statements.track_planning=on ${SB_PROFILE_PG_OPTS:-}" ||
	{ echo "profile: PostgreSQL restart failed"; exit 1; }
qt() { psql -X -q -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
echo "PostgreSQL: $(q -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers')")"
q -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' || exit 1

bench_name=profile
pubsub_stack_start
if [ -n "${SB_PROFILE_SQL:-}" ]; then
	q -c "$SB_PROFILE_SQL" || { echo "profile: SB_PROFILE_SQL failed"; exit 1; }
fi

# Counters read before and after the load.
gw_requests() { curl -s "http://127.0.0.1:${SVC_OPS[gateway]}/metrics" | awk '/^(sb_)?gateway_http_requests_total/ {s += $NF} END {print s + 0}'; }
rpc_calls() { curl -s "http://127.0.0.1:${SVC_OPS[pubsub]}/metrics" | awk '/^(sb_)?rpc_server_requests_total.*pubsub/ {s += $NF} END {print s + 0}'; }
q -c 'SELECT pg_stat_statements_reset()' -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
h0=$(gw_requests) r0=$(rpc_calls)
IFS='|' read -r s0 k0 <<<"$(q -c 'SELECT sum(sessions), sum(deadlocks) FROM pg_stat_database')"
g0=$(ticks "${SVC_PID[gateway]}") p0=$(ticks "${SVC_PID[pubsub]}") d0=$(ticks $(pg_pids))
(cd "$root/bench/pubsub" && env SB_GW="$SB_GW" SB_TOKEN="$token" SB_TOPIC=bench node load.mjs "${SB_PROFILE_MODE:-pubsub}") >"$tmp/load.out" 2>&1 &
load_pid=$!
if [ "${SB_PROFILE_PERF:-0}" = 1 ]; then
	sleep 2
	perf record -q -F 499 -a -o "$tmp/perf.data" -- sleep 5 >/dev/null 2>&1
fi
if [ "${SB_PROFILE_SWITCHES:-0}" = 1 ]; then
	# Context switches per thread of the gateway and sb-pubsub over 3 s of the load, summed by
	# thread name (nng:task, nng:poll:epoll, the service's own), per HTTP request of the window.
	sleep 2
	sw0=$(gw_requests)
	perf stat --per-thread -e context-switches -p "${SVC_PID[gateway]},${SVC_PID[pubsub]}" -- sleep 3 2>&1 |
		awk '$3 == "context-switches" && $2 ~ /^[0-9]/ { print $1, $2 }' >"$tmp/switches"
	sw1=$(gw_requests)
fi
wait "$load_pid" || { echo "profile: the load failed"; tail -20 "$tmp/load.out"; exit 1; }
g1=$(ticks "${SVC_PID[gateway]}") p1=$(ticks "${SVC_PID[pubsub]}") d1=$(ticks $(pg_pids))
# Where a publish's latency goes: mean seconds per call of the gateway's request, its RPC client
# call and pubsub's server-side handling, per method (sum / count of the duration histograms).
mean_of() { # mean_of URL METRIC: "<labels> <mean ms> <count>" per label set
	curl -s "$1" | awk -v m="$2" '$1 ~ "^"m"_(sum|count)" {
		split($1, a, "{"); lab = "{" a[2]; kind = (a[1] ~ /_sum$/) ? "s" : "c"; v[lab, kind] = $NF; labs[lab] = 1 }
		END { for (l in labs) if (v[l, "c"] > 0) printf "%s %.3f ms x %d\n", l, 1000 * v[l, "s"] / v[l, "c"], v[l, "c"] }' | sort
}
echo "## mean latency per call during the run (ms): gateway requests, its RPC calls, pubsub's handling"
mean_of "http://127.0.0.1:${SVC_OPS[gateway]}/metrics" '(sb_)?gateway_http_request_duration_seconds' | grep -i "messages" | head -8
mean_of "http://127.0.0.1:${SVC_OPS[gateway]}/metrics" '(sb_)?rpc_client_duration_seconds' | grep -i "pubsub" | head -8
mean_of "http://127.0.0.1:${SVC_OPS[pubsub]}/metrics" '(sb_)?rpc_server_duration_seconds' | grep -i "pubsub" | head -8
h1=$(gw_requests) r1=$(rpc_calls)
IFS='|' read -r s1 k1 <<<"$(q -c 'SELECT sum(sessions), sum(deadlocks) FROM pg_stat_database')"
hz=$(getconf CLK_TCK)
tail -1 "$tmp/load.out"
n=$SB_BENCH_MESSAGES
echo "CPU seconds: gateway $(((g1 - g0) * 100 / hz))e-2, sb-pubsub $(((p1 - p0) * 100 / hz))e-2, PostgreSQL $(((d1 - d0) * 100 / hz))e-2; PostgreSQL µs per message: $(((d1 - d0) * 1000000 / hz / n))"
echo "per message: HTTP requests $(echo "scale=3; ($h1 - $h0) / $n" | bc), pubsub RPCs $(echo "scale=3; ($r1 - $r0) / $n" | bc), statements $(q -c "SELECT round(sum(calls)::numeric / $n, 3) FROM pg_stat_statements WHERE query !~* 'pg_stat_statements'")"
echo "PostgreSQL sessions opened during the load: $((s1 - s0)); deadlocks: $((k1 - k0)) (each statement rolled back by one is sent again by sb_pg)"
# Where PostgreSQL's CPU went, by process (cumulative since the stack started: the load is most
# of it); autovacuum workers that came and went are in the postmaster's reaped-children count.
echo "## PostgreSQL CPU seconds by process (since the stack started)"
for p in $(pg_pids); do
	printf '%s\t%s\n' "$(ticks "$p")" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-70)"
done | sort -rn | awk -F'\t' -v hz="$hz" '$1 > 0 { printf "  %6.2f  %s\n", $1 / hz, $2 }' | head -12
echo "  $(awk -v hz="$hz" '{ printf "%.2f", ($16 + $17) / hz }' "/proc/$(head -1 "$tmp/pg/data/postmaster.pid")/stat")  ended children (autovacuum workers, connections closed)"
echo "## pg_stat_statements (the load; largest total time first)"
qt -c "SELECT calls, round(total_exec_time::numeric, 0) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms,
	round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) AS pct, rows,
	shared_blks_hit AS hit, shared_blks_read AS read, shared_blks_dirtied AS dirtied, shared_blks_written AS written,
	pg_size_pretty(wal_bytes) AS wal, regexp_replace(left(query, 70), '\s+', ' ', 'g') AS query
	FROM pg_stat_statements WHERE query !~* 'pg_stat_statements|EXPLAIN' ORDER BY total_exec_time DESC LIMIT 14"
echo "## planning (pg_stat_statements.track_planning): plans made and their time, per statement"
qt -c "SELECT plans, round(total_plan_time::numeric, 0) AS plan_ms, round(mean_plan_time::numeric, 3) AS mean_plan_ms, calls, regexp_replace(left(query, 60), '\s+', ' ', 'g') AS query
	FROM pg_stat_statements WHERE plans > 0 AND query !~* 'pg_stat_statements|EXPLAIN' ORDER BY total_plan_time DESC LIMIT 6"
echo "## deliveries and messages: tuple counters, sizes"
qt -c "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_live_tup, n_dead_tup, autovacuum_count AS autovac, autoanalyze_count AS autoanalyze, pg_size_pretty(pg_total_relation_size(relid)) AS total FROM pg_stat_user_tables WHERE schemaname = 'pubsub' AND n_tup_ins > 0 ORDER BY relname"
qt -c "SELECT indexrelname, idx_scan, idx_tup_read, pg_size_pretty(pg_relation_size(indexrelid)) AS size FROM pg_stat_user_indexes WHERE schemaname = 'pubsub' AND relname IN ('deliveries', 'acks', 'messages') ORDER BY relname, indexrelname"
qt -c "SELECT sum(wal_records) AS wal_records, pg_size_pretty(sum(wal_bytes)) AS wal_bytes, round(sum(wal_bytes) / $n) AS wal_bytes_per_msg FROM pg_stat_statements"
# WAL flushes (each commit waits for one, or for another backend's that covered it); their mean
# time needs track_wal_io_timing (SB_PROFILE_PG_OPTS="-c track_wal_io_timing=on"), else 0.
qt -c "SELECT wal_write, wal_sync, round((wal_sync_time / greatest(wal_sync, 1))::numeric, 3) AS mean_sync_ms, round(wal_sync::numeric / $n, 3) AS syncs_per_msg FROM pg_stat_wal"

# EXPLAIN of one claim and one batch ack: 200 fresh messages published, then rolled back.
echo "## EXPLAIN (ANALYZE, BUFFERS): claim of 64, then the batch ack of what it leased"
for i in $(seq 1 200); do echo "{\"topic\":\"bench\",\"payload\":{\"d\":\"$(printf 'x%.0s' $(seq 1 100))\"}}"; done |
	while read -r b; do curl -s -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$b" "$SB_GW/api/v1/messages/publish"; done
sub=$(q -c "SELECT s.id FROM pubsub.subscriptions s JOIN pubsub.topics t ON t.id = s.topic_id WHERE t.name = 'bench' AND s.name = 'default'")
mode=$(q -c "SELECT mode FROM pubsub.subscriptions WHERE id = $sub")
tenant=$(q -c "SELECT tenant_id FROM pubsub.topics WHERE name = 'bench'")
. "$root/tests/lib/pubsub_sql.sh"
# The EXPLAINs run with pubsub's own connection options (enable_seqscan=off among them).
# A cursor subscription (docs/pubsub.md "Cursor subscriptions") has its own claim and consume
# statements, and what a claim leased is a leases row, not deliveries rows.
if [ "$mode" = cursor ]; then
	claim_sql=$(ps_stmt_sql claim_cursor)
	consume_ack_sql=$(ps_stmt_sql consume_ack_cursor)
	leased_sql="SELECT m.id::text AS mid, l.lease_id::text AS lease FROM leases l JOIN subscriptions s ON s.id = l.sub_id JOIN messages m ON m.topic_id = s.topic_id AND m.seq = ANY (l.seqs) WHERE l.sub_id = $sub"
else
	claim_sql=$(ps_stmt_sql claim)
	consume_ack_sql=$(ps_stmt_sql consume_ack)
	leased_sql="SELECT d.message_id::text AS mid, d.lease_id::text AS lease FROM deliveries d WHERE d.state = 'leased' AND d.sub_id = $sub"
fi
echo "(subscription mode: $mode)"
ack_sql=$(ps_stmt_sql ack_batch)
# The claim's 7th parameter: its min, or (before there was one) whether priority orders it.
case $claim_sql in *'$7::boolean'*) claim_last="'false'" ;; *) claim_last="'1'" ;; esac
PGOPTIONS=$(ps_conn_options) qt <<EOF
SET search_path = pubsub;
BEGIN;
PREPARE c(text, text, text, text, text, text, text) AS $claim_sql;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING ON) EXECUTE c('$sub', '64', '30000', 'x', '0', '0', $claim_last);
CREATE TEMP TABLE leased ON COMMIT DROP AS $leased_sql;
SELECT count(*) AS leased_now FROM leased;
PREPARE a(text, text, text, text) AS $ack_sql;
SELECT array_agg(mid)::text AS ids, array_agg('default'::text)::text AS subs, array_agg(lease)::text AS leases FROM leased \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING ON) EXECUTE a(:'ids', :'subs', :'leases', '$tenant');
ROLLBACK;
EOF
if [ -n "$consume_ack_sql" ]; then
	echo "## EXPLAIN (ANALYZE, BUFFERS): consume_ack: the acks of a claim of 64 and the next 64 leased, one statement"
	PGOPTIONS=$(ps_conn_options) qt <<EOF
SET search_path = pubsub;
BEGIN;
PREPARE c(text, text, text, text, text, text, text) AS $claim_sql;
\\o /dev/null
EXECUTE c('$sub', '64', '30000', 'x', '0', '0', $claim_last);
\\o
CREATE TEMP TABLE leased ON COMMIT DROP AS $leased_sql;
SELECT array_agg(mid)::text AS ids, array_agg('default'::text)::text AS subs, array_agg(lease)::text AS leases FROM leased \gset
PREPARE ca(text, text, text, text, text, text, text, text, text, text, text) AS $consume_ack_sql;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING ON) EXECUTE ca(:'ids', :'subs', :'leases', '$tenant', '$sub', '64', '30000', 'x', '0', '0', '1');
ROLLBACK;
EOF
fi
if [ "${SB_PROFILE_SWITCHES:-0}" = 1 ] && [ -s "$tmp/switches" ]; then
	reqs=$((sw1 - sw0))
	echo "## context switches over 3 s of the load ($reqs HTTP requests), by process and thread name"
	while read -r name n; do
		tid=${name##*-}
		proc=pubsub
		[ -d "/proc/${SVC_PID[gateway]}/task/$tid" ] && proc=gateway
		echo "$proc ${name%-*} $n"
	done <"$tmp/switches" | awk -v r="$reqs" '{ k = $1 " " $2; s[k] += $3; t[$1] += $3 }
		END { for (k in s) printf "  %-26s %8d  %5.2f a request\n", k, s[k], r ? s[k] / r : 0
		      for (p in t) printf "  %-26s %8d  %5.2f a request\n", p " (all)", t[p], r ? t[p] / r : 0 }' | sort
fi
if [ "${SB_PROFILE_PERF:-0}" = 1 ] && [ -s "$tmp/perf.data" ]; then
	echo "## perf, the whole machine for 5 s of the load: samples per command, then the hottest symbols of postgres, sb-pubsub and sb-gateway"
	perf report -q -i "$tmp/perf.data" --sort comm 2>/dev/null | grep -v '^$' | head -12
	for c in postgres sb-pubsub sb-gateway; do
		echo "# $c"
		perf report -q -i "$tmp/perf.data" --comms "$c" --sort dso,symbol 2>/dev/null | grep -v '^$' | head -15
	done
fi
sb_svc_stop_all
