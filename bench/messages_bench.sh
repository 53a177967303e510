#!/usr/bin/env bash
# messages_bench.sh: end-to-end POST /v1/messages through the gateway with auth (issue 4), and
# in the same run its limit: pgbench running one message per transaction with the same database
# work per message (bench/pgbench_message.sql) against the same schema and the same durable
# PostgreSQL. Targets: >= 5,000 msgs/s sustained with p99 < 200 ms, and >= the pgbench rate;
# the script exits 1 when either is missed.
# What each side does:
#   end to end: msgload (bench/msgload.c) -> gateway (HTTP, token check, rate limit in Redis,
#     JSON -> protobuf, sends batched over nng) -> messages, whose group commit takes every
#     queued send of a lane in one transaction of two pipelined round trips: BEGIN, lock the
#     conversations (FOR UPDATE), look for stored sends with the same id or idempotency key,
#     check membership; then insert the messages, advance each conversation's seq, insert one
#     outbox row per message, NOTIFY sb_outbox, COMMIT (services/messages/commit.c). Only then
#     is the send answered 202. The outbox relay (sb-outbox) runs meanwhile, as deployed: it
#     LISTENs on sb_outbox, selects the new rows, produces them to a real Kafka broker (one
#     broker, acks=all) and marks them relayed.
#   pgbench (the peer): the same statements for one message per transaction, in the same two
#     pipelined round trips (lock, duplicate check, membership check; insert, seq, outbox row,
#     NOTIFY, COMMIT; differences listed in bench/pgbench_message.sql), 8 and then 32 clients,
#     no HTTP, no RPC, no batching across messages. It runs after the ladder, once the relay
#     has relayed every row of the ladder and has been STOPPED: nothing relays during the
#     peer's run, so the peer pays neither for relaying its own rows (select, produce, mark: a
#     second write of every outbox row) nor for the ladder's backlog. The end-to-end side does
#     pay for relaying (its relay CPU is printed per step): the comparison is tilted toward the
#     peer, on purpose. The alternative, both relaying, would let the relay's progress on the
#     peer's rows (which depends on Kafka and on how far behind it is) change the peer's figure;
#     with the relay stopped, the peer is the plain database limit of the same work, and "at
#     least the pgbench rate" stays a conservative claim. Likewise the peer's rate is its
#     closed-loop throughput with no latency bound (its latency average is printed), while the
#     end-to-end rate counts only steps with p99 < 200 ms.
# Both sides: one PostgreSQL, durable: tests/lib/with-stack.sh starts it with fsync,
# synchronous_commit and full_page_writes off; this script restarts that same cluster with none
# of those options (PostgreSQL defaults: all on) and prints the settings it then reads back.
# The end-to-end ladder: open-loop load (fixed arrival rate, latency from the scheduled send
# time) in steps of SB_BENCH_STEPS msgs/s for SB_BENCH_STEP_SECONDS each, stopping at the first
# step with p99 >= 200 ms, errors, or an achieved rate under 95% of the target; the 5,000 msgs/s
# step is always run; CPU of gateway, messages, auth, relay, PostgreSQL (all its processes) per
# step. pgbench: -M prepared -T 10, -c 8 and -c 32 (-j 2), PostgreSQL's CPU per run.
# Run by `make bench` (bench/run.sh) or directly: bash bench/messages_bench.sh [BUILD_DIR]
# Knobs (environment): SB_BENCH_STEPS, SB_BENCH_STEP_SECONDS, SB_BENCH_CONNS (512),
# SB_BENCH_CONVERSATIONS (50); the services' settings SB_BENCH_BATCH_IN_FLIGHT (gateway's send
# batches in flight, 2; 0 = one RPC per send), SB_BENCH_MSG_WORKERS (messages' RPC workers, 16),
# SB_BENCH_COMMITTERS (2), SB_BENCH_BATCH_MAX (256), SB_BENCH_COMMIT_DELAY_US (0),
# SB_BENCH_EDGE_WORKERS (0: one per CPU); diagnostics SB_BENCH_METRICS, SB_BENCH_PG_STATS,
# SB_BENCH_KEEP_LOGS, MSGLOAD_TIMELINE (see below).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_BUILD_ROOT=${1:-${SB_BUILD_ROOT:-$root/build}}
export SB_SOURCE_ROOT=$root
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,redis,kafka1 -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
step_secs=${SB_BENCH_STEP_SECONDS:-10}
steps=${SB_BENCH_STEPS:-"1000 2000 3000 4000 5000 6000 8000 10000"}
conns=${SB_BENCH_CONNS:-512}
convs=${SB_BENCH_CONVERSATIONS:-50}
p99_max=200
t_start=$(date +%s)
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

for b in bin/sb-auth bin/sb-messages bin/sb-gateway bin/sb-outbox bench/msgload; do
	[ -x "$SB_BUILD_ROOT/$b" ] || { echo "bench: $SB_BUILD_ROOT/$b is missing: build first"; exit 1; }
done
command -v pgbench >/dev/null || PATH=$PATH:$SB_TEST_PG_BIN

# 1. A durable PostgreSQL: restart the with-stack cluster without its test-only options.
sb_pg_stop "$SB_TEST_TMP"
# SB_BENCH_PG_STATS=1 loads pg_stat_statements and prints the statements that cost PostgreSQL
# the most time at the end (the figures of a run with it are not the reference ones).
pg_extra=""
# SB_BENCH_METRICS=1 also logs checkpoints and autovacuum runs, printed with their times.
[ "${SB_BENCH_METRICS:-0}" = 1 ] && pg_extra="-c log_checkpoints=on -c log_autovacuum_min_duration=0"
[ "${SB_BENCH_PG_STATS:-0}" = 1 ] && pg_extra="$pg_extra -c shared_preload_libraries=pg_stat_statements,auto_explain -c auto_explain.log_min_duration=${SB_BENCH_PG_EXPLAIN_MS:-20} -c auto_explain.log_analyze=on"
sb_pg_start "$SB_TEST_TMP" "$SB_TEST_PG_PORT" "$pg_extra" || { echo "bench: PostgreSQL restart failed"; exit 1; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
[ "${SB_BENCH_PG_STATS:-0}" != 1 ] || q -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" || exit 1
settings=$(q -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method')")
echo "PostgreSQL $(q -c 'SHOW server_version'): $settings"
case " $settings " in
*" fsync=on "*" synchronous_commit=on "*) ;;
*) echo "bench: PostgreSQL is not durable ($settings)"; exit 1 ;;
esac

# 2. The load generator is bench/msgload of the build (bench/msgload.c).

# 3. The services: auth, messages (group commit), gateway (rate limit raised), outbox relay.
sb_svc_ports gateway auth messages outbox
sb_svc_start auth SB_LOG_LEVEL=warn
sb_svc_start messages SB_LOG_LEVEL=warn SB_MESSAGES_BATCH_MAX=${SB_BENCH_BATCH_MAX:-256} \
	SB_RPC_WORKERS=${SB_BENCH_MSG_WORKERS:-16} SB_MESSAGES_COMMITTERS=${SB_BENCH_COMMITTERS:-2} \
	SB_MESSAGES_COMMIT_DELAY_US=${SB_BENCH_COMMIT_DELAY_US:-0}
sb_svc_start gateway SB_LOG_LEVEL=warn SB_RATE_LIMIT_PER_MIN=100000000 \
	SB_EDGE_WORKERS=${SB_BENCH_EDGE_WORKERS:-0} SB_RPC_TIMEOUT_MS=10000 \
	SB_RPC_BATCH_IN_FLIGHT=${SB_BENCH_BATCH_IN_FLIGHT:-2}
sb_svc_wait_ready auth messages gateway || exit 1
sb_svc_start outbox SB_LOG_LEVEL=warn
sb_svc_wait_ready outbox || exit 1
echo "services: messages SB_MESSAGES_BATCH_MAX=${SB_BENCH_BATCH_MAX:-256} SB_RPC_WORKERS=${SB_BENCH_MSG_WORKERS:-16} SB_MESSAGES_COMMITTERS=${SB_BENCH_COMMITTERS:-2} SB_MESSAGES_COMMIT_DELAY_US=${SB_BENCH_COMMIT_DELAY_US:-0};" \
	"gateway SB_EDGE_WORKERS=${SB_BENCH_EDGE_WORKERS:-0} SB_RPC_BATCH_IN_FLIGHT=${SB_BENCH_BATCH_IN_FLIGHT:-2} SB_RATE_LIMIT_PER_MIN=100000000; outbox relay to Kafka (one broker)"

# 4. Credentials, tokens and conversations.
creds=$SB_TEST_TMP/creds.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null || exit 1
token() {
	curl -s -u "$(jq -r ".$1.client_id" "$creds"):$(jq -r ".$1.client_secret" "$creds")" \
		-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token
}
tok_a=$(token alice) tok_b=$(token bob)
bob=$(jq -r .bob.user_id "$creds")
[ -n "$tok_a" ] && [ "$tok_a" != null ] && [ -n "$tok_b" ] && [ "$tok_b" != null ] ||
	{ echo "bench: no access token"; exit 1; }
: >"$SB_TEST_TMP/convs"
for i in $(seq 1 "$convs"); do
	id=$(curl -s -H "Authorization: Bearer $tok_a" -H 'Content-Type: application/json' \
		-d "{\"kind\":\"group\",\"title\":\"bench $i\",\"member_ids\":[\"$bob\"]}" \
		"$SB_GW/v1/conversations" | jq -r .id)
	[ ${#id} = 36 ] || { echo "bench: could not create a conversation"; exit 1; }
	echo "$id" >>"$SB_TEST_TMP/convs"
done
code=$(curl -s -o "$SB_TEST_TMP/send.json" -w '%{http_code}' -H "Authorization: Bearer $tok_b" \
	-H 'Content-Type: application/json' \
	-d "{\"id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"conversation_id\":\"$(head -1 "$SB_TEST_TMP/convs")\",\"content\":\"hello\"}" \
	"$SB_GW/v1/messages")
[ "$code" = 202 ] || { echo "bench: a single send answered $code: $(cat "$SB_TEST_TMP/send.json")"; exit 1; }

# CPU (user+system clock ticks) of a process, and of PostgreSQL's postmaster and children.
hz=$(getconf CLK_TCK)
pg_pids() {
	local pm
	pm=$(head -1 "$SB_TEST_PG_DIR/postmaster.pid")
	echo "$pm" $(pgrep -P "$pm")
}
ticks() { # pid...: summed ticks of those alive
	local t=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo $t
}
# PostgreSQL: its live processes plus the postmaster's cutime+cstime (the CPU of backends that
# have exited, such as pgbench's, which come and go within a measurement).
pg_ticks() {
	local pm
	pm=$(head -1 "$SB_TEST_PG_DIR/postmaster.pid")
	echo $(($(ticks $(pg_pids)) + $(awk '{print $16 + $17}' "/proc/$pm/stat" 2>/dev/null || echo 0)))
}
cpu_snapshot() {
	echo "$(ticks "${SVC_PID[gateway]}") $(ticks "${SVC_PID[messages]}") $(ticks "${SVC_PID[auth]}")" \
		"$(ticks "${SVC_PID[outbox]:-}") $(pg_ticks)"
}
pct() { awk -v a="$1" -v b="$2" -v h="$hz" -v s="$3" 'BEGIN { printf "%.0f", (b - a) / h / s * 100 }'; }

load() { # rate seconds: sets $res (msgload's RESULT line) and $cpu_line (CPU % per process)
	local c0 c1 t0 t1 out
	c0=($(cpu_snapshot))
	t0=$(date +%s.%N)
	out=$("$SB_BUILD_ROOT/bench/msgload" -a "127.0.0.1:${SVC_HTTP[gateway]}" -r "$1" -d "$2" -c "$conns" \
		-f "$SB_TEST_TMP/convs" -t "$tok_a" -t "$tok_b" -g 5)
	t1=$(date +%s.%N)
	c1=($(cpu_snapshot))
	local w
	w=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
	cpu_line="$(pct "${c0[0]}" "${c1[0]}" "$w") $(pct "${c0[1]}" "${c1[1]}" "$w") $(pct "${c0[2]}" "${c1[2]}" "$w") $(pct "${c0[3]}" "${c1[3]}" "$w") $(pct "${c0[4]}" "${c1[4]}" "$w")"
	res=$(grep '^RESULT ' <<<"$out")
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# 5. Open-loop steps.
echo "warm-up: 500 msgs/s for 3 s"
load 500 3
echo
echo "POST /v1/messages through the gateway (auth on), open loop, $step_secs s per step, $conns keep-alive connections, $convs conversations"
echo "CPU in % of one core over the step (machine: $(nproc) cores)"
hdr='%-8s %9s %9s %9s %9s %-22s %5s %5s %5s %5s %5s %5s %s\n'
printf "$hdr" target achieved p50_ms p99_ms max_ms errors gw msg auth relay pg load verdict
best=0 p99_5k="" ok5k="" ran5k=0 stopped=0
for r in $steps; do
	if [ $stopped = 1 ]; then
		[ "$r" = 5000 ] && [ $ran5k = 0 ] || continue
	fi
	load "$r" "$step_secs"
	[ -n "$res" ] || { echo "bench: msgload failed at $r msgs/s"; exit 1; }
	ach=$(field achieved "$res") p50=$(field p50_ms "$res") p99=$(field p99_ms "$res")
	mx=$(field max_ms "$res") errs=$(field errors "$res") lcpu=$(field cpu_pct "$res")
	pass=$(awk -v p="$p99" -v a="$ach" -v t="$r" -v e="$errs" -v m="$p99_max" \
		'BEGIN { print (p < m && a >= 0.95 * t && e == "none") ? "ok" : "FAIL" }')
	read -r cg cm ca cr cp <<<"$cpu_line"
	printf "$hdr" "$r" "$ach" "$p50" "$p99" "$mx" "$errs" "$cg" "$cm" "$ca" "$cr" "$cp" "$lcpu" "$pass"
	if [ "$r" = 5000 ]; then ran5k=1 p99_5k=$p99 ok5k=$pass; fi
	if [ "$pass" = ok ] && [ $stopped = 0 ]; then best=$r; else stopped=1; fi
done
backlog=$(q -c "SELECT count(*) FROM messages.outbox WHERE relayed_at IS NULL")
stored=$(q -c "SELECT count(*) FROM messages.messages")
echo "messages stored: $stored; outbox rows not yet relayed right after the last step: $backlog"
curl -s "http://127.0.0.1:${SVC_OPS[messages]}/metrics" |
	awk '/^messages_(batch_size|send_duration_seconds)_(sum|count)/ { v[$1] = $2 }
	END { b = v["messages_batch_size_count"]; if (b > 0) printf "messages group commit: %d transactions, %.1f sends per transaction on average\n", b, v["messages_batch_size_sum"] / b }'

# SB_BENCH_METRICS=1 prints the mean of every duration histogram of the gateway, messages and
# the relay over the whole run (where the time of a send goes: HTTP, RPC client and server,
# group commit), and PostgreSQL's checkpoints and autovacuum runs. MSGLOAD_TIMELINE=1 makes
# msgload print each 100 ms of schedule whose worst latency reached 100 ms (stalls).
if [ "${SB_BENCH_METRICS:-0}" = 1 ]; then
	echo "mean durations over the run (ms), from each service's /metrics:"
	for s in gateway messages outbox; do
		curl -s "http://127.0.0.1:${SVC_OPS[$s]}/metrics" |
			awk -v s="$s" '/_seconds_(sum|count)/ {
				k = $1; sub(/_seconds_(sum|count)/, "_seconds", k)
				if ($1 ~ /_seconds_sum/) sum[k] = $2; else cnt[k] = $2 }
			END { for (k in cnt) if (cnt[k] > 0) printf "  %-8s %-90s n=%-8d %.2f\n", s, k, cnt[k], sum[k] / cnt[k] * 1000 }'
	done
	echo "PostgreSQL background work during the run:"
	q -F ' ' -c "SELECT '  checkpoints timed/requested:', checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter"
	q -F ' ' -c "SELECT '  ' || relname || ': autovacuum', autovacuum_count, 'autoanalyze', autoanalyze_count
		FROM pg_stat_user_tables WHERE schemaname = 'messages' ORDER BY relname"
	grep -hE 'checkpoint (starting|complete)|automatic (vacuum|analyze)' "$SB_TEST_PG_DIR/../server.log" |
		cut -c1-160 | sed 's/^/  /'
fi

if [ "${SB_BENCH_PG_STATS:-0}" = 1 ]; then
	echo "PostgreSQL statements by total execution time (pg_stat_statements, every step):"
	q -F ' | ' -c "SELECT round(total_exec_time)::bigint AS ms, calls, rows,
		round((total_exec_time / greatest(calls, 1))::numeric, 3) AS ms_per_call,
		left(regexp_replace(query, '\s+', ' ', 'g'), 110) FROM pg_stat_statements
		ORDER BY total_exec_time DESC LIMIT 15"
fi

# 6. The limit: pgbench, same schema, same PostgreSQL, same settings, the relay stopped after it
# has relayed the ladder's rows (see the header).
t0=$(date +%s)
while [ "$(q -c "SELECT count(*) FROM messages.outbox WHERE relayed_at IS NULL")" != 0 ] &&
	[ $(($(date +%s) - t0)) -lt 120 ]; do
	sleep 0.5
done
backlog=$(q -c "SELECT count(*) FROM messages.outbox WHERE relayed_at IS NULL")
relay_pid=${SVC_PID[outbox]}
sb_svc_stop outbox
kill -0 "$relay_pid" 2>/dev/null && { echo "bench: the outbox relay did not stop"; exit 1; }
echo
echo "outbox relay: relayed the ladder's rows in $(($(date +%s) - t0)) s (left: $backlog), then stopped"
q -c "INSERT INTO messages.conversations (tenant_id, id, kind, created_by, activity_us)
	SELECT 'pgbench', ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'group',
	'pgbench-user', 0 FROM generate_series(1, 50) n;
	INSERT INTO messages.members (tenant_id, conversation_id, user_id)
	SELECT tenant_id, id, 'pgbench-user' FROM messages.conversations WHERE tenant_id = 'pgbench'" ||
	exit 1
echo "pgbench -M prepared -T 10 -j 2, bench/pgbench_message.sql (per message: lock, duplicate and"
echo "membership checks, message, seq, outbox row, NOTIFY; two pipelined round trips), relay stopped"
pg_tps=()
for c in 8 32; do
	p0=$(pg_ticks)
	w0=$(date +%s.%N)
	out=$(pgbench -n -M prepared -T 10 -c "$c" -j 2 -f "$root/bench/pgbench_message.sql" \
		"$SB_TEST_PG_DSN" 2>&1) || { echo "bench: pgbench failed: $out"; exit 1; }
	w1=$(date +%s.%N)
	p1=$(pg_ticks)
	tps=$(awk '/^tps = / {printf "%.0f", $3}' <<<"$out")
	lat=$(awk '/^latency average/ {print $4}' <<<"$out")
	failed=$(awk '/number of failed transactions/ {print $5}' <<<"$out")
	echo "  -c $c: $tps tps (one message each), latency average $lat ms, failed ${failed:-0}," \
		"PostgreSQL CPU $(pct "$p0" "$p1" "$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')")% of one core," \
		"load $(cut -d' ' -f1 /proc/loadavg)"
	[ "${failed:-0}" = 0 ] || { echo "bench: pgbench transactions failed"; exit 1; }
	pg_tps+=("$tps")
done
pg_best=$(printf '%s\n' "${pg_tps[@]}" | sort -g | tail -1)
stored_pg=$(q -c "SELECT count(*) FROM messages.messages WHERE tenant_id = 'pgbench'")
outbox_pg=$(q -c "SELECT count(*) FROM messages.outbox WHERE source LIKE '/tenants/pgbench/%'")
echo "  pgbench wrote $stored_pg messages and $outbox_pg outbox rows (none relayed)"

# 7. Verdicts.
echo
echo "summary:"
echo "  highest sustained rate with p99 < ${p99_max} ms: $best msgs/s (steps: $steps), relay running"
echo "  p99 at 5,000 msgs/s: ${p99_5k:-not measured} ms (${ok5k:-})"
echo "  pgbench, same work per message, one message per transaction, relay stopped: $pg_best msgs/s (best of -c 8 / -c 32)"
v1=$([ "$best" -ge 5000 ] && echo MET || echo "NOT MET")
v2=$([ "$best" -ge "${pg_best:-0}" ] && echo MET || echo "NOT MET")
echo "  target >= 5,000 msgs/s sustained with p99 < ${p99_max} ms: $v1"
echo "  target >= the pgbench rate ($pg_best): $v2"
echo "  whole benchmark: $(($(date +%s) - t_start)) s; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
# SB_BENCH_KEEP_LOGS=DIR keeps the services' logs (the temporary directory is removed).
if [ -n "${SB_BENCH_KEEP_LOGS:-}" ]; then
	mkdir -p "$SB_BENCH_KEEP_LOGS" && cp "$SB_TEST_TMP"/logs/*.log "$SB_TEST_PG_DIR/../server.log" "$SB_BENCH_KEEP_LOGS/"
fi
[ "$v1" = MET ] && [ "$v2" = MET ]
