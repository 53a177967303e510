#!/usr/bin/env bash
# cdcsink_bench.sh: change events per second from Kafka into a durable PostgreSQL through
# sb-cdcsink, against the limit in the same run: the same rows written without the sink by a
# plain multi-row INSERT ... ON CONFLICT (SB_BENCH_CDC_PEER_BATCH rows a statement, one
# transaction each, through psql; the sink's work: the tombstone check, the version guard, the
# update time) and by COPY (into a table without keys). The CPU an event costs the sink and its
# PostgreSQL backend is printed (the figure that does not depend on the machine's load). Then
# the latency at the target rate: events produced at SB_BENCH_CDC_RATE/s for
# SB_BENCH_CDC_SECONDS, one chunk a second made beforehand with the source time of its second;
# p99 of source time -> commit from the sink's histogram (cdc_replication_latency_seconds, the
# upper bound of the bucket holding the 99th percentile); less than 90 % of the rate offered is
# a FAIL (the p99 at the target rate is then not shown).
#
#   1. SB_BENCH_CDC_EVENTS (200,000) events of make run's table (cassandra.shop.users ->
#      shop.users: uuid key, text, text, int, set<text>, timestamp) over SB_BENCH_CDC_KEYS
#      (50,000) rows, as Debezium's Cassandra connector writes them (tests/cdc/gen.py), are
#      queued in the topic (6 partitions) BEFORE the sink starts; the drain rate is the events
#      counted between the first and the last observation of applied events (start-up and the
#      group join are not in it), every 200 ms from /metrics (at 50 ms the polling's curl,
#      awk and bash took about a tenth of the machine's CPU in a perf sample).
#   2. The peers write the same rows into peer_upsert / peer_copy of the same database.
#   3. Latency phase (the sink keeps running).
# PostgreSQL is durable (fsync, synchronous_commit, full_page_writes on: the with-stack cluster
# is restarted without its test options). Targets: SB_BENCH_CDC_TARGET events/s (20,000) and
# p99 < 30 s; PASS/FAIL printed, exit 1 on a miss.
# Run by `make bench` (bench/run.sh) or: bash bench/cdcsink_bench.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_BUILD_ROOT=${1:-${SB_BUILD_ROOT:-$root/build}}
export SB_SOURCE_ROOT=$root
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,kafka1 -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/cdcsink.sh"
N=${SB_BENCH_CDC_EVENTS:-200000}
K=${SB_BENCH_CDC_KEYS:-50000}
target=${SB_BENCH_CDC_TARGET:-20000}
rate=${SB_BENCH_CDC_RATE:-$target}
secs=${SB_BENCH_CDC_SECONDS:-10}
pbatch=${SB_BENCH_CDC_PEER_BATCH:-2000}
[ -x "$SB_BUILD_ROOT/bin/sb-cdcsink" ] || { echo "bench: build first"; exit 1; }
command -v psql >/dev/null || PATH=$PATH:$SB_TEST_PG_BIN
echo "cdcsink: $(date -u +%FT%TZ), $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"

sb_pg_stop "$SB_TEST_TMP"
sb_pg_start "$SB_TEST_TMP" "$SB_TEST_PG_PORT" "" || { echo "bench: PostgreSQL restart failed"; exit 1; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
settings=$(q -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')")
echo "PostgreSQL $(q -c 'SHOW server_version'): $settings"
[ "$settings" = "fsync=on full_page_writes=on synchronous_commit=on" ] || { echo "bench: PostgreSQL is not durable"; exit 1; }

now=$(($(date +%s%N) / 1000))
gen users "$N" "$K" $((now - 120000000)) >"$SB_TEST_TMP/events"
gen sql "$N" "$K" "$pbatch" "$SB_TEST_TMP/peer"

# 1. The sink drains the queued events.
t=$(date +%s%N)
split -l 50000 "$SB_TEST_TMP/events" "$SB_TEST_TMP/part."
kcat -L -b "$SB_TEST_KAFKA_BROKERS" >/dev/null 2>&1
# The sink creates its topics at start; queue the events before: create the topic with kcat's
# producer (6 partitions come from the sink's own creation below, so start it once first).
cdc_start cdcsink "" SB_KAFKA_PARTITIONS=6 SB_CDCSINK_GROUP=bench-warm
sb_svc_wait_ready cdcsink || exit 1
sb_svc_stop cdcsink
for f in "$SB_TEST_TMP"/part.*; do cdc_produce cassandra.shop.users <"$f" || exit 1; done
echo "queued $N events in $(( ($(date +%s%N) - t) / 1000000 )) ms"
start=$(date +%s%N)
cdc_start cdcsink "" SB_KAFKA_PARTITIONS=6 SB_CDCSINK_GROUP=bench SB_CDCSINK_BATCH_MAX="${SB_BENCH_CDC_BATCH:-2000}"
cpu0=0
first_t=0 first_n=0 last_t=0 last_n=0
while :; do
	n=$(cdc_metric cdc_events_total 'table="shop.users"' cdcsink 2>/dev/null)
	ts=$(date +%s%N)
	if [ "${n:-0}" -gt 0 ] && [ $first_t = 0 ]; then first_t=$ts first_n=$n; fi
	[ "${n:-0}" -gt "$last_n" ] && { last_t=$ts; last_n=$n; }
	[ "${n:-0}" -ge "$N" ] && break
	[ $(((ts - start) / 1000000000)) -gt 600 ] && { echo "bench: not drained after 600 s ($n of $N)"; exit 1; }
	sleep 0.2
done
pid=${SVC_PID[cdcsink]}
cpu=$(awk '{print ($14 + $15) / 100}' "/proc/$pid/stat")
# The CPU of the sink's PostgreSQL backends (every client backend but this query's own): with
# the sink's own CPU, the work an event costs whatever the load of the machine.
pg_cpu=$(for b in $(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"); do
	awk '{print ($14 + $15) / 100}' "/proc/$b/stat" 2>/dev/null; done | awk '{ s += $1 } END { printf "%.2f", s }')
drain_ms=$(((last_t - first_t) / 1000000))
sink_rate=$(((last_n - first_n) * 1000 / (drain_ms > 0 ? drain_ms : 1)))
echo "sink: $N events applied; drain $((last_n - first_n)) events in $drain_ms ms = $sink_rate events/s; start to last $(((last_t - start) / 1000000)) ms; CPU $cpu s"
echo "CPU per event: sink $(awk -v c="$cpu" -v n="$N" 'BEGIN { printf "%.1f", c * 1e6 / n }') us + its PostgreSQL backends $(awk -v c="$pg_cpu" -v n="$N" 'BEGIN { printf "%.1f", c * 1e6 / n }') us ($pg_cpu s)"
m=$(curl -s "http://127.0.0.1:${SVC_OPS[cdcsink]}/metrics")
echo "sink batches: $(awk '/^cdc_batch_events_count/ { c = $NF } /^cdc_batch_events_sum/ { s = $NF } END { printf "%d, %.0f events each", c, (c ? s / c : 0) }' <<<"$m"); PostgreSQL step time (the steps of one pipeline overlap): $(awk '/^pg_query_duration_seconds_sum/ { s += $NF } END { printf "%.1f s", s }' <<<"$m")"
echo "sink time by stage: $(awk '/^cdc_batch_stage_seconds_sum/ { match($0, /stage="[a-z_]*"/); printf "%s %.1f s  ", substr($0, RSTART + 7, RLENGTH - 8), $NF }' <<<"$m")"
rows=$(q -c "SELECT count(*) FROM shop.users")
[ "$rows" = "$K" ] || { echo "bench: shop.users holds $rows rows, not $K"; exit 1; }
applied=$(cdc_metric cdc_events_total 'outcome="applied"' cdcsink)

# 2. The peers, same rows, same database (the sink idle meanwhile).
q -c "CREATE TABLE peer_upsert (id uuid PRIMARY KEY, name text, email text, age int, tags text[], updated_at timestamptz, v bigint NOT NULL, u_at timestamptz)"
q -c "CREATE TABLE peer_tomb (id uuid PRIMARY KEY, v bigint NOT NULL)"
q -c "CREATE TABLE peer_copy (id uuid, name text, email text, age int, tags text[], updated_ms bigint, v bigint)"
t=$(date +%s%N)
q -f "$SB_TEST_TMP/peer.upsert.sql" >/dev/null || { echo "bench: peer upsert failed"; exit 1; }
up_ms=$((($(date +%s%N) - t) / 1000000))
t=$(date +%s%N)
q -c "\\copy peer_copy FROM '$SB_TEST_TMP/peer.csv' CSV" >/dev/null || { echo "bench: COPY failed"; exit 1; }
copy_ms=$((($(date +%s%N) - t) / 1000000))
up_rate=$((N * 1000 / (up_ms > 0 ? up_ms : 1)))
copy_rate=$((N * 1000 / (copy_ms > 0 ? copy_ms : 1)))
echo "peer INSERT ... ON CONFLICT ($pbatch rows a statement): $N rows in $up_ms ms = $up_rate rows/s"
echo "peer COPY (no keys): $N rows in $copy_ms ms = $copy_rate rows/s"
same=$(q -c "SELECT count(*) FROM shop.users u JOIN peer_upsert p USING (id) WHERE u.name = p.name AND u.age = p.age AND u.tags = p.tags AND u.updated_at = p.updated_at")
echo "rows equal between the sink's table and the INSERT peer's: $same of $K"

# 3. Latency at the target rate: a chunk of `rate` events every second (updates of the first
# `rate` rows, newer than what they hold). The chunks are made before the phase (the generator
# alone could not offer 20,000 events/s on this machine), each with the source time of the
# second it is due in; a chunk produced late counts its lateness in the latency.
hist() { curl -s "http://127.0.0.1:${SVC_OPS[cdcsink]}/metrics" | awk '/^cdc_replication_latency_seconds_bucket/ { match($0, /le="[^"]*"/); print substr($0, RSTART + 4, RLENGTH - 5), $NF }'; }
total=$((rate * secs))
t0=$(($(date +%s%N) + ${SB_BENCH_CDC_LEAD_S:-40} * 1000000000))
for i in $(seq 0 $((secs - 1))); do
	gen users "$rate" "$K" $(((t0 + i * 1000000000) / 1000)) >"$SB_TEST_TMP/chunk.$i"
done
[ "$(date +%s%N)" -lt $t0 ] || echo "bench: the chunks were made after the phase's start (raise SB_BENCH_CDC_LEAD_S): their lateness is in the latency"
hist >"$SB_TEST_TMP/h0"
for i in $(seq 0 $((secs - 1))); do
	due=$((t0 + i * 1000000000))
	nowns=$(date +%s%N)
	[ $nowns -lt $due ] && sleep "$(((due - nowns) / 1000000000)).$(printf '%09d' $(((due - nowns) % 1000000000)) | cut -c1-3)"
	cdc_produce cassandra.shop.users <"$SB_TEST_TMP/chunk.$i"
done
prod_ms=$((($(date +%s%N) - t0) / 1000000))
want=$((N + total))
for _ in $(seq 1 1200); do
	[ "$(cdc_metric cdc_events_total 'table="shop.users"' cdcsink)" -ge $want ] && break
	sleep 0.1
done
hist >"$SB_TEST_TMP/h1"
p99=$(paste "$SB_TEST_TMP/h0" "$SB_TEST_TMP/h1" | awk '{ le[NR] = $1; c[NR] = $4 - $2 } END {
	n = c[NR]; for (i = 1; i <= NR; i++) if (c[i] >= 0.99 * n) { print le[i]; exit } }')
p50=$(paste "$SB_TEST_TMP/h0" "$SB_TEST_TMP/h1" | awk '{ le[NR] = $1; c[NR] = $4 - $2 } END {
	n = c[NR]; for (i = 1; i <= NR; i++) if (c[i] >= 0.5 * n) { print le[i]; exit } }')
echo "latency phase: $total events produced in $prod_ms ms ($((total * 1000 / (prod_ms > 0 ? prod_ms : 1))) events/s offered); source->commit p50 <= $p50 s, p99 <= $p99 s"

offered=$((total * 1000 / (prod_ms > 0 ? prod_ms : 1)))
verdict=PASS
[ "$sink_rate" -ge "$target" ] || verdict=FAIL
awk -v p="$p99" 'BEGIN { exit !(p != "+Inf" && p + 0 < 30) }' || verdict=FAIL
if [ $((offered * 10)) -lt $((rate * 9)) ]; then
	echo "bench: only $offered events/s were offered (target rate $rate): p99 at the target rate not shown"
	verdict=FAIL
fi
echo "figures: sink $sink_rate events/s (durable), peers INSERT ON CONFLICT $up_rate rows/s and COPY $copy_rate rows/s; sink/INSERT peer = $((sink_rate * 100 / (up_rate > 0 ? up_rate : 1))) %; p99 <= $p99 s; applied $applied (the rest were older versions)"
echo "$verdict: cdcsink >= $target events/s and p99 < 30 s"
[ $verdict = PASS ]
