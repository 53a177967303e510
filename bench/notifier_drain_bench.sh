#!/usr/bin/env bash
# notifier_drain_bench.sh: how fast the notifier drains a backlog of sb.messages.v1 on a real
# Apache Kafka broker. SB_BENCH_NTF_EVENTS (20,000) realistic events (bench/notifier_drain_load:
# the protobuf payloads and CloudEvents headers the outbox relay writes; one
# conversation.created per conversation, then message.created with 200-byte contents, in
# SB_BENCH_NTF_CONVERSATIONS (50) conversations) are queued in the topic (6 partitions) BEFORE
# the notifier starts; then sb-notifier starts with a fresh consumer group and the script waits
# until notifier_events_total (its /metrics, polled every 10 ms) counts every event.
# The notifier does its full work: the tenant has a webhook subscribed to message.created, so
# the webhook enqueue statement inserts one delivery row per message.created event into a
# durable PostgreSQL (fsync, synchronous_commit and full_page_writes on: tests/lib/with-stack.sh
# starts it with them off and this script restarts it without those options), and the webhook
# workers (SB_WEBHOOK_WORKERS, 2) deliver them meanwhile to an nginx answering 204 on loopback;
# every event is published to Redis once (SET NX dedupe + PUBLISH; no subscriber).
# Reported per run: the drain rate (events counted between the first observation of handled
# events and the last one, divided by the time between them: start-up and group join are not
# in it), the time from the process start to the last event (start-up and join included), the
# notifier's CPU time, and checks: Redis holds one dedupe mark per event, PostgreSQL one
# delivery row per message.created event, the group's committed offsets (read after the
# SIGTERM) equal the events, notifier_consumer_lag_messages reads 0 (a run failing one fails).
# Peer in the same run (optional): SB_BENCH_NTF_OLD_REV=<git revision> builds sb-notifier of
# that revision in a temporary worktree under /tmp (removed afterwards) and runs it the same
# way first; SB_BENCH_NTF_OLD_BIN=<path> runs a binary built before instead.
# Target: SB_BENCH_NTF_TARGET events/s (20,000: twice the highest sustained send rate measured,
# 10,000 sends/s, docs/benchmarks.md): PASS/FAIL on the new notifier's drain rate (the median
# of SB_BENCH_NTF_RUNS runs, 1 by default, every run printed); exits 1 when missed.
# Other knobs: SB_BENCH_NTF_EVENTS, SB_BENCH_NTF_CONVERSATIONS, SB_BENCH_NTF_WEBHOOK (below),
# SB_BENCH_KEEP_LOGS=DIR; the notifier's own settings (SB_NOTIFIER_*) pass through.
# Run by `make bench` (bench/run.sh) or directly: bash bench/notifier_drain_bench.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_BUILD_ROOT=${1:-${SB_BUILD_ROOT:-$root/build}}
export SB_SOURCE_ROOT=$root
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,redis,kafka1 -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
events=${SB_BENCH_NTF_EVENTS:-20000}
convs=${SB_BENCH_NTF_CONVERSATIONS:-50}
target=${SB_BENCH_NTF_TARGET:-20000}
runs=${SB_BENCH_NTF_RUNS:-1}
old_rev=${SB_BENCH_NTF_OLD_REV:-}
old_bin=${SB_BENCH_NTF_OLD_BIN:-}
tenant=7e0b1d5c-0000-4000-8000-00000000be9c
topic=${SB_TEST_KAFKA_PREFIX}sb.messages.v1
new_bin=$SB_BUILD_ROOT/bin/sb-notifier
load=$SB_BUILD_ROOT/bench/notifier_drain_load
for f in "$new_bin" "$load"; do
	[ -x "$f" ] || { echo "bench: $f is missing: build first"; exit 1; }
done
command -v psql >/dev/null || PATH=$PATH:$SB_TEST_PG_BIN
echo "notifier drain: $(date -u +%FT%TZ), $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"

# 1. A durable PostgreSQL: restart the with-stack cluster without its test-only options.
sb_pg_stop "$SB_TEST_TMP"
sb_pg_start "$SB_TEST_TMP" "$SB_TEST_PG_PORT" "" || { echo "bench: PostgreSQL restart failed"; exit 1; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
settings=$(q -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')")
echo "PostgreSQL $(q -c 'SHOW server_version'): $settings"
case " $settings " in
*" fsync=on "*" synchronous_commit=on "*) ;;
*) echo "bench: PostgreSQL is not durable ($settings)"; exit 1 ;;
esac

# 2. The webhook receiver: nginx answering 204 (SB_BENCH_NTF_WEBHOOK=sink, the default), or a
# receiver that accepts connections and never answers (=stalled: every delivery waits for
# SB_WEBHOOK_TIMEOUT_MS, so the webhook workers are idle and the drain is measured alone).
sink_port=$(sb_free_port)
webhook_mode=${SB_BENCH_NTF_WEBHOOK:-sink}
if [ "$webhook_mode" = stalled ]; then
	python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096); time.sleep(86400)' "$sink_port" &
	stall_pid=$!
fi
mkdir -p "$SB_TEST_TMP/nginx/tmp"
cat >"$SB_TEST_TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $SB_TEST_TMP/nginx/nginx.pid;
error_log $SB_TEST_TMP/nginx/error.log warn;
$([ "$(id -u)" = 0 ] && echo "user root;")
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $SB_TEST_TMP/nginx/tmp;
	server { listen 127.0.0.1:$sink_port; location / { return 204; } }
}
EOF
if [ "$webhook_mode" = sink ]; then
	sb_nginx_start "$SB_TEST_TMP/nginx" "$SB_TEST_TMP/nginx/nginx.conf" || { echo "bench: nginx failed"; exit 1; }
fi

# 3. The peer: the notifier of another revision, built outside the repository.
if [ -z "$old_bin" ] && [ -n "$old_rev" ]; then
	wt=$(mktemp -d /tmp/ntf-old.XXXXXX)
	rmdir "$wt"
	echo "building sb-notifier of $old_rev in $wt"
	if git -C "$root" worktree add --detach "$wt" "$old_rev" >/dev/null 2>&1 &&
		cmake -S "$wt" -B "$wt/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
		cmake --build "$wt/build" -j"$(nproc)" --target sb-notifier >"$SB_TEST_TMP/old-build.log" 2>&1; then
		cp "$wt/build/bin/sb-notifier" "$SB_TEST_TMP/sb-notifier-old"
		old_bin=$SB_TEST_TMP/sb-notifier-old
	else
		echo "bench: building $old_rev failed (see $SB_TEST_TMP/old-build.log); no peer"
		tail -5 "$SB_TEST_TMP/old-build.log" 2>/dev/null
	fi
	git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"
	git -C "$root" worktree prune
fi
[ -n "$old_bin" ] && [ ! -x "$old_bin" ] && { echo "bench: $old_bin is not executable"; exit 1; }

# run_notifier BIN GROUP OPS_PORT: starts BIN in the background (pid in $ntf_pid).
run_notifier() {
	env DATABASE_URL="$SB_TEST_PG_DSN" REDIS_URL="$SB_TEST_REDIS_URL" \
		KAFKA_BROKERS="$SB_TEST_KAFKA_BROKERS" SB_KAFKA_TOPIC_PREFIX="$SB_TEST_KAFKA_PREFIX" SB_KAFKA_PARTITIONS=6 \
		SB_RPC_URL="tcp://127.0.0.1:$(sb_free_port)" SB_OPS_PORT="$3" SB_NOTIFIER_GROUP="$2" \
		SB_LOG_LEVEL=warn SB_WEBHOOK_ALLOW_PRIVATE=true SB_SHUTDOWN_GRACE_MS=5000 \
		"$1" >>"$SB_TEST_TMP/notifier.log" 2>&1 &
	ntf_pid=$!
}
stop_notifier() {
	kill -TERM "$ntf_pid" 2>/dev/null
	for _ in $(seq 1 100); do kill -0 "$ntf_pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$ntf_pid" 2>/dev/null
	wait "$ntf_pid" 2>/dev/null
}
# SB_BENCH_KEEP_LOGS=DIR keeps the notifiers' log there (the temporary directory is removed).
keep_logs() {
	[ -n "${SB_BENCH_KEEP_LOGS:-}" ] || return 0
	mkdir -p "$SB_BENCH_KEEP_LOGS" && cp "$SB_TEST_TMP/notifier.log" "$SB_BENCH_KEEP_LOGS/"
}
trap 'stop_notifier 2>/dev/null; sb_nginx_stop "$SB_TEST_TMP/nginx"; [ -n "${stall_pid:-}" ] && kill "$stall_pid"; keep_logs' EXIT

# 4. Schema and topics: a first start of the new notifier applies its migrations and creates
# the topics (SB_KAFKA_PARTITIONS, 6); its group is never used again. Then the webhook.
ops=$(sb_free_port)
run_notifier "$new_bin" bench-setup "$ops"
n=150
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ops/ready")" = 200 ]; do
	n=$((n - 1))
	[ $n -gt 0 ] || { echo "bench: notifier not ready"; tail -5 "$SB_TEST_TMP/notifier.log"; exit 1; }
	sleep 0.2
done
stop_notifier
q -c "INSERT INTO notifier.webhooks (id, tenant_id, url, secret, event_types) VALUES (gen_random_uuid(), '$tenant', 'http://127.0.0.1:$sink_port/hook', 'bench-secret-0123456789', '{message.created}')" || exit 1
echo "webhook: tenant $tenant, message.created -> http://127.0.0.1:$sink_port/hook ($([ "$webhook_mode" = sink ] && echo "nginx, 204" || echo "stalled receiver"))"

# 5. The backlog, queued before any measured notifier starts.
"$load" produce "$SB_TEST_KAFKA_BROKERS" "$topic" "$events" "$convs" "$tenant" || exit 1
messages=$((events - convs))

# 6. The runs: each from a clean Redis and delivery table, with its own consumer group.
results=()
new_rates=()
measure() {
	local label=$1 bin=$2 run=$3 group out first fh done handled batches cpu tck
	redis-cli -u "$SB_TEST_REDIS_URL" FLUSHALL >/dev/null
	q -c "TRUNCATE notifier.webhook_deliveries" -c "CHECKPOINT" || return 1
	group="bench-drain-$label-$run"
	ops=$(sb_free_port)
	local t0
	t0=$(date +%s%3N)
	run_notifier "$bin" "$group" "$ops"
	out=$("$load" wait "$ops" "$events" 300)
	local rc=$?
	cpu=$(awk '{print $14 + $15}' "/proc/$ntf_pid/stat" 2>/dev/null)
	tck=$(getconf CLK_TCK)
	eval "$(tr ' ' '\n' <<<"$out" | sed -n 's/^\([a-z_]*\)=\([0-9.]*\)$/\1=\2/p')"
	first=$first_ms fh=$first_handled done=$done_ms
	local marks rows lag
	marks=$(redis-cli -u "$SB_TEST_REDIS_URL" --scan --pattern 'sb:seen:*' | wc -l)
	rows=$(q -c "SELECT count(*) FROM notifier.webhook_deliveries")
	local metrics stages
	sleep 1.2 # the lag gauge is refreshed every second
	metrics=$(curl -s "http://127.0.0.1:$ops/metrics")
	lag=$(awk '/^notifier_consumer_lag_messages / {print $2}' <<<"$metrics")
	# mean time per batch in each stage (new notifier only)
	stages=$(awk '/^notifier_batch_stage_seconds_sum/ { match($0, /stage="[a-z]+"/); s[substr($0, RSTART + 7, RLENGTH - 8)] = $2 }
		/^notifier_batch_stage_seconds_count/ { match($0, /stage="[a-z]+"/); c[substr($0, RSTART + 7, RLENGTH - 8)] = $2 }
		END { for (k in s) if (c[k] > 0) printf "%s%s %.1f ms", n++ ? ", " : "", k, s[k] * 1000 / c[k] }' <<<"$metrics")
	stop_notifier
	local comm
	comm=$("$load" committed "$SB_TEST_KAFKA_BROKERS" "$topic" "$SB_TEST_KAFKA_PREFIX$group")
	if [ $rc != 0 ]; then
		echo "$label run $run: TIMEOUT: $out"
		tail -5 "$SB_TEST_TMP/notifier.log"
		return 1
	fi
	local drain_ms=$((done - first)) rate total
	[ "$drain_ms" -gt 0 ] || drain_ms=1
	rate=$(awk -v n="$events" -v f="$fh" -v ms="$drain_ms" 'BEGIN { printf "%.0f", (n - f) * 1000 / ms }')
	total=$(awk -v ms="$((done - t0))" 'BEGIN { printf "%.2f", ms / 1000 }')
	local line
	line=$(printf '%-4s run %d: drain %6s events/s (%d events in %.3f s after the first %d), %s s from process start to the last event, notifier CPU %s s, batches %s; checks: %s dedupe marks, %s delivery rows (want %d), %s committed, lag %s' \
		"$label" "$run" "$rate" "$((events - ${fh%.*}))" "$(awk -v ms="$drain_ms" 'BEGIN{print ms/1000}')" "${fh%.*}" \
		"$total" "$(awk -v c="$cpu" -v t="$tck" 'BEGIN { printf "%.2f", c / t }')" "$([ "$label" = new ] && echo "${batches:-0}" || echo -)" "$marks" "$rows" "$messages" "${comm:-?}" "${lag:-?}")
	[ -n "$stages" ] && line="$line; mean per batch: $stages"
	echo "$line"
	results+=("$line")
	if [ "$marks" != "$events" ] || [ "$rows" != "$messages" ] || [ "$comm" != "$events" ] ||
		[ "${lag:-x}" != 0 ]; then
		echo "bench: $label run $run did not do the full work"
		return 1
	fi
	[ "$label" = new ] && new_rates+=("$rate")
	return 0
}
status=0
for r in $(seq 1 "$runs"); do
	if [ -n "$old_bin" ]; then measure old "$old_bin" "$r" || status=1; fi
	measure new "$new_bin" "$r" || status=1
done

echo
echo "== notifier drain of $events events (6 partitions, real broker, durable PostgreSQL)"
for l in "${results[@]}"; do echo "$l"; done
# The verdict: the median drain rate of the new notifier's runs.
median=$(printf '%s\n' "${new_rates[@]:-0}" | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }')
if [ $status = 0 ] && [ "$median" -ge "$target" ]; then
	echo "PASS: new notifier drains $median events/s (median of ${#new_rates[@]} runs) >= target $target (SB_BENCH_NTF_TARGET)"
else
	echo "FAIL: new notifier drains $median events/s (median of ${#new_rates[@]} runs), target $target (SB_BENCH_NTF_TARGET)"
	status=1
fi
echo "load after: $(uptime | sed 's/.*load average: //')"
exit $status
