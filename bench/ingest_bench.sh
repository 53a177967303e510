#!/usr/bin/env bash
# ingest_bench.sh: simulator → sb-ingest → Kafka on this machine, against a plain librdkafka
# producer sending the same records in the same run.
# For each rate R of SB_BENCH_INGEST_RATES (samples/s over SB_BENCH_INGEST_ITEMS items, for
# SB_BENCH_INGEST_SECONDS seconds) on a private real broker (one node, tests/lib/with-stack.sh):
#   ingest  the TLCP simulator (tests/ingest/sim.mjs, one WebSocket session, MERGE updates at R/s)
#           feeds a fresh sb-ingest (its own topic, 6 partitions); measured from its /metrics:
#           samples received and acknowledged (acks=all), the rate they were received at (first
#           to last, sampled every 100 ms), and the receive→ack p99 from
#           ingest_ack_latency_seconds (the upper bound of the bucket holding the 99th
#           percentile: 5 ms steps from 10 to 50 ms, then 60, 75, 100 ms ...);
#   peer    bench/ingest_peer: the same TelemetrySample records, keys and headers produced at
#           R/s with the same producer settings (exact produce→ack percentiles of the records
#           sent after the same warm-up, INGEST_PEER_WARMUP_MS; with it, printed too).
# A rate counts for sb-ingest when every sample was acknowledged, none failed, the received rate
# reached 95% of R, and p99 ≤ 50 ms. Verdict: PASS when the highest such rate reaches
# SB_BENCH_INGEST_TARGET (50,000/s); exits 1 otherwise.
# Before the rates: the simulator's ceiling, its stream sent to a client that discards.
# The producer settings come from SB_INGEST_LINGER_MS, SB_INGEST_BATCH_MESSAGES,
# SB_INGEST_COMPRESSION and SB_INGEST_MAX_IN_FLIGHT when set, for sb-ingest and the peer alike;
# SB_BENCH_KAFKA_HEAP sets the broker's heap (tools/kafka/kafka.sh's SB_KAFKA_HEAP).
# Run by `make bench` (bench/run.sh) or directly: bash bench/ingest_bench.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_BUILD_ROOT=${1:-${SB_BUILD_ROOT:-$root/build}}
export SB_SOURCE_ROOT=$root
if [ -z "${SB_TEST_TMP:-}" ]; then
	# SB_BENCH_KAFKA_HEAP: the broker's JVM heap flags (both sides share the broker).
	[ -n "${SB_BENCH_KAFKA_HEAP:-}" ] && export SB_KAFKA_HEAP=$SB_BENCH_KAFKA_HEAP
	exec bash "$root/tests/lib/with-stack.sh" --stack kafka1 -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/ingest/lib.sh"
rates=${SB_BENCH_INGEST_RATES:-10000 25000 50000 75000 100000}
secs=${SB_BENCH_INGEST_SECONDS:-6}
nitems=${SB_BENCH_INGEST_ITEMS:-30}
warm=${SB_BENCH_INGEST_WARMUP_S:-1}
target=${SB_BENCH_INGEST_TARGET:-50000}
bin=$SB_BUILD_ROOT/bin/sb-ingest
peer=$SB_BUILD_ROOT/bench/ingest_peer
for f in "$bin" "$peer"; do
	[ -x "$f" ] || {
		echo "bench: $f is missing: build first"
		exit 1
	}
done
[ -d "$root/tests/ingest/node_modules/ws" ] || {
	echo "bench: tests/ingest/node_modules missing: run tools/install-deps.sh"
	exit 1
}
tmp=$SB_TEST_TMP
echo "ingest: $(date -u +%FT%TZ), $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
items=$(seq -f 'item%g' 1 "$nitems" | paste -sd,)
ingest_sim_mapping "$items" >"$tmp/map.json"

# The simulator's ceiling: the same stream at an unreachable rate to a client that discards
# (tests/ingest/sim_drain.mjs), so that a rate sb-ingest misses is known not to be the feed's.
sp=$(sb_free_port)
cper=$((200000 / nitems))
SB_SIM_MAX_S=120 node "$root/tests/ingest/sim.mjs" --port "$sp" --items "$items" --updates "$cper" \
	--rate 10000000 --adapter-set SIM --keepalive-ms 5000 >"$tmp/simceil.log" 2>&1 &
simpid=$!
sb_wait_port 127.0.0.1 "$sp" 10 || sleep 1
ceil=$(node "$root/tests/ingest/sim_drain.mjs" --port "$sp" --items "$items" --expect $((cper * nitems)) |
	sed -n 's/.*"rate":\([0-9]*\).*/\1/p')
kill "$simpid" 2>/dev/null
wait "$simpid" 2>/dev/null
echo "simulator ceiling (to a client that discards, $((cper * nitems)) updates): ${ceil:-?} updates/s"

metrics() { curl -s "http://127.0.0.1:$ops/metrics"; }
# quant NAME Q FILE: the upper bound (ms) of the bucket of histogram NAME (one series) holding
# its quantile Q ("inf" past the last bound).
quant() {
	awk -v n="$1" -v q="$2" '
		index($1, n "_count") == 1 { c = $2 }
		index($1, n "_bucket") == 1 {
			match($1, /le="[^"]+"/); k++; le[k] = substr($1, RSTART + 4, RLENGTH - 5); v[k] = $2 }
		END { for (i = 1; i <= k; i++) if (c > 0 && v[i] >= q * c) {
			print (le[i] == "+Inf" ? "inf" : le[i] * 1000); exit } }' "$3"
}
val() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
best=0
printf '%-8s | %-44s | %-44s\n' rate "sb-ingest: recv/s acked/sent p99(bucket) verdict" "peer: sent/s acked/sent p50 p99 max"
for rate in $rates; do
	per=$((rate * secs / nitems))
	total=$((per * nitems))
	sp=$(sb_free_port) ops=$(sb_free_port) rpc=$(sb_free_port)
	SB_SIM_MAX_S=300 node "$root/tests/ingest/sim.mjs" --port "$sp" --items "$items" --updates "$per" \
		--rate "$rate" --adapter-set SIM --keepalive-ms 5000 --stats "$tmp/sim$rate.json" >"$tmp/sim$rate.log" 2>&1 &
	simpid=$!
	sb_wait_port 127.0.0.1 "$sp" 10 || sleep 1
	KAFKA_BROKERS=$SB_TEST_KAFKA_BROKERS SB_KAFKA_TOPIC_PREFIX="bench$rate." SB_OPS_PORT=$ops \
		SB_RPC_URL="tcp://127.0.0.1:$rpc" SB_INGEST_FEED_URL="ws://127.0.0.1:$sp" \
		SB_INGEST_MAPPING="$tmp/map.json" SB_INGEST_QUEUE_MAX=2000000 SB_INGEST_HIGH_WATERMARK=1500000 \
		SB_INGEST_LOW_WATERMARK=500000 SB_LOG_LEVEL=warn "$bin" >"$tmp/ingest$rate.log" 2>&1 &
	ipid=$!
	# The topic is created before the stream starts: wait for /ready (feed live, topic verified).
	for _ in $(seq 1 300); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ops/ready")" = 200 ] && break
		sleep 0.1
	done
	first="" last="" t_first=0 t_last=0 snap=""
	rm -f "$tmp/m0"
	deadline=$(($(date +%s%3N) + secs * 1000 * 6 + 30000))
	while [ "$(date +%s%3N)" -lt "$deadline" ]; do
		# One curl and one awk a poll: the bench's own polling shares the two cores too.
		read -r r d < <(metrics | awk '$1 == "ingest_received_total{origin=\"tlcp\"}" { r = $2 }
			$1 == "ingest_queue_depth" { d = $2 } END { print (r == "" ? 0 : r), (d == "" ? 1 : d) }')
		r=${r:-0}
		now=$(date +%s%3N)
		if [ "$r" != 0 ] && [ -z "$first" ]; then first=$r t_first=$now; fi
		if [ "$r" != "${last:-}" ]; then last=$r t_last=$now; fi
		# the end of the warm-up: the histograms as they are now are subtracted at the end
		if [ -z "$snap" ] && [ "$r" -ge $((rate * warm)) ]; then metrics >"$tmp/m0"; snap=1; fi
		[ "$r" = "$total" ] && [ "${d:-1}" = 0 ] && break
		sleep 0.1
	done
	metrics >"$tmp/m"
	# steady state: every series minus its value at the end of the warm-up
	if [ -s "$tmp/m0" ]; then
		awk 'NR == FNR { if ($1 !~ /^#/) a[$1] = $2; next }
			$1 !~ /^#/ { print $1, $2 - ($1 in a ? a[$1] : 0) }' "$tmp/m0" "$tmp/m" >"$tmp/md"
	else
		cp "$tmp/m" "$tmp/md"
	fi
	[ -n "${SB_BENCH_KEEP_LOGS:-}" ] && mkdir -p "$SB_BENCH_KEEP_LOGS" && cp "$tmp/m" "$SB_BENCH_KEEP_LOGS/metrics$rate.txt"
	kill -TERM "$ipid"
	wait "$ipid" 2>/dev/null
	kill "$simpid" 2>/dev/null
	wait "$simpid" 2>/dev/null
	recv=$(val 'ingest_received_total{origin="tlcp"}' "$tmp/m")
	ok=$(val 'ingest_published_total{result="ok"}' "$tmp/m")
	bad=$(val 'ingest_published_total{result="error"}' "$tmp/m")
	p99=$(quant ingest_ack_latency_seconds 0.99 "$tmp/md")
	p99all=$(quant ingest_ack_latency_seconds 0.99 "$tmp/m")
	span=$((t_last - t_first))
	rps=$(awk -v n="$(( ${last:-0} - ${first:-0} ))" -v ms="$span" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }')
	verdict=no
	if [ "${recv:-0}" = "$total" ] && [ "${ok:-0}" = "$total" ] && [ "${bad:-1}" = 0 ] &&
		[ "$rps" -ge $((rate * 95 / 100)) ] && [ "$p99" != inf ] && [ "${p99:-999}" -le 50 ] 2>/dev/null; then
		verdict=yes
		best=$rate
	fi
	pl=$(INGEST_PEER_WARMUP_MS=$((warm * 1000)) "$peer" "$SB_TEST_KAFKA_BROKERS" "peer$rate.telemetry.raw.v1" "$rate" "$secs" "$nitems" 2>&1 | tail -n1)
	pa=$(sed -n 's/.*achieved=\([0-9]*\).*/\1/p' <<<"$pl")
	packed=$(sed -n 's/.*acked=\([0-9]*\).*/\1/p' <<<"$pl")
	p50p=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$pl")
	p99p=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$pl")
	maxp=$(sed -n 's/.* max_ms=\([0-9.]*\).*/\1/p' <<<"$pl")
	p99pall=$(sed -n 's/.*all_p99_ms=\([0-9.]*\).*/\1/p' <<<"$pl")
	printf '%-8s | %7s/s %8s/%-8s p99<=%-4sms %-4s | %7s/s %8s/%-8s %5sms %6sms %6sms\n' \
		"$rate" "$rps" "${ok:-0}" "$total" "${p99:-?}" "$verdict" "${pa:-?}" "${packed:-?}" \
		"$total" "${p50p:-?}" "${p99p:-?}" "${maxp:-?}"
	# Where sb-ingest's time went (bucket upper bounds, ms): receive→ack, the pipe's share
	# (receive→handed to librdkafka) and librdkafka's own produce→ack.
	printf '         |   after the %s s warm-up: receive→ack p50<=%s p99<=%s; queue wait p50<=%s p99<=%s; produce→ack p50<=%s p99<=%s\n' \
		"$warm" "$(quant ingest_ack_latency_seconds 0.5 "$tmp/md")" "${p99:-?}" \
		"$(quant ingest_queue_wait_seconds 0.5 "$tmp/md")" "$(quant ingest_queue_wait_seconds 0.99 "$tmp/md")" \
		"$(quant kafka_delivery_seconds 0.5 "$tmp/md")" "$(quant kafka_delivery_seconds 0.99 "$tmp/md")"
	printf '         |   with the warm-up: sb-ingest receive→ack p99<=%s ms; peer p99 %s ms\n' "${p99all:-?}" "${p99pall:-?}"
done
echo "highest rate with every sample acknowledged and p99 receive→ack ≤ 50 ms: $best/s (target $target/s)"
echo "load after: $(uptime | sed 's/.*load average: //')"
if [ "$best" -ge "$target" ]; then
	echo "PASS"
else
	echo "FAIL"
	exit 1
fi
