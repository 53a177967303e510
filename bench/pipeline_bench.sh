#!/usr/bin/env bash
# pipeline_bench.sh: send -> browser through the whole platform on a real Apache Kafka broker.
# Path of every message: POST /v1/messages at the gateway (Bearer JWT of the sending user) ->
# messages (PostgreSQL transaction with an outbox row, durable settings) -> outbox relay ->
# Kafka <prefix>sb.messages.v1 (one broker, tests/lib/with-stack.sh kafka1) -> notifier
# (consumes, PUBLISHes on Redis conv:<id>) -> both sb-realtime instances -> WebSocket frame to
# every member's socket.
# Scenario: SB_BENCH_PIPE_USERS (10,000) users in conversations of SB_BENCH_PIPE_MEMBERS (10),
# one WebSocket per user with its own token; user n connects to realtime instance n mod 2, so
# every conversation has members on both instances. Receivers: bench/pipeload.c `recv`, in
# processes of at most SB_BENCH_PIPE_PER_PROC (5,000) sockets. Sender: pipeload `send`, open loop
# (message i scheduled at start + i/rate, whatever happened before), message i to conversation
# i mod C from member (i / C) mod SB_BENCH_PIPE_SENDERS (10: every member sends) with that
# member's token, over SB_BENCH_PIPE_CONNS (512) keep-alive connections.
# Latency = receive time at the recipient's socket - the message's SCHEDULED send time, which
# the sender writes into the content ("t=<CLOCK_REALTIME us> s=<step> i=<n>"); sender and
# receivers share the machine's clock. The sender's own socket receives its message too (the
# platform sends message.created to every member's connections, the sender's included), so
# deliveries expected = 2xx sends x MEMBERS. Missing and duplicates are exact: each receiver
# keeps, per socket, the set of seqs it got and checks every acknowledged (conversation, seq)
# (the seq comes from the 202 answer) against the sockets of that conversation.
# Per-hop times, same scheduled-time origin: 2xx answer (sender), Kafka record CreateTime (the
# relay's produce time, read back with kcat after the run), arrival of the notifier's PUBLISH
# at a Redis subscriber (pipeload `tap`, PSUBSCRIBE conv:*), arrival at the browser socket.
# Steps: a warm-up (SB_BENCH_PIPE_WARMUP_RATE 200/s, 5 s, waits until every delivery arrived:
# the notifier has joined its group), then SB_BENCH_PIPE_RATES ("100 1000 2000 3000 5000 6000
# 8000") sends/s for SB_BENCH_PIPE_STEP_S (10) s each. After each step the script waits until
# every acknowledged send reached every member's socket, at most SB_BENCH_PIPE_DRAIN_S (20) s.
# A step passes with nothing missing, >= 95% of its rate answered 2xx and p99 < 200 ms (the
# 100-ms target of the 100/s step is checked on its own). The ladder stops after the first step
# the platform did not keep up with (deliveries still missing after the drain, < 95% answered
# 2xx, or p99 >= 1 s), except that the 100/s and the 5,000/s steps always run (before 5,000/s
# after a stop, the backlog is drained first, up to 120 s). Every step's numbers are final: they are recounted after the last step and a final
# drain, so a delivery that came after its step's drain still counts, with its latency.
# CPU: utime+stime from /proc/PID/stat of every process over each step and its drain: gateway,
# auth, messages, outbox, notifier, both realtimes, PostgreSQL (postmaster and all its
# processes), Redis, the Kafka broker JVM, the receivers, the Redis tap; the sender's own; and
# the same for 5 s at rest before the warm-up. Also per step: the notifier's and the relay's
# highest lag, delivery-watermark updates, PostgreSQL commits and WAL syncs per second.
# Targets (PASS/FAIL; exit status 1 when one is missed): nothing missing at any step; p99 <
# 100 ms at 100 sends/s; a step of >= 5,000 sends/s (50,000 deliveries/s) passed with p99 < 200
# ms. Output: the tables, bench/results/pipeline_latency.svg (gnuplot) copied to
# docs/img/pipeline_latency.svg, bench/results/pipeline_steps.dat.
# Run by `make bench` (bench/run.sh) or: bash bench/pipeline_bench.sh [BUILD_DIR]
# Other knobs: SB_BENCH_PIPE_OPEN_RATE (500 connections/s), SB_BENCH_PIPE_FINAL_DRAIN_S (120),
# SB_BENCH_PIPE_TAP (1; 0: no Redis tap), SB_BENCH_KEEP_LOGS=DIR (keep services' logs),
# SB_BENCH_PIPE_NO_DOCS=1 (do not copy the plot into docs/img), SB_BENCH_PIPE_WATERMARKS=0 (a
# diagnostic: realtime's delivery reports go nowhere, see below).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_BUILD_ROOT=${1:-${SB_BUILD_ROOT:-$root/build}}
export SB_SOURCE_ROOT=$root
users=${SB_BENCH_PIPE_USERS:-10000}
members=${SB_BENCH_PIPE_MEMBERS:-10}
senders=${SB_BENCH_PIPE_SENDERS:-$members}
per_proc=${SB_BENCH_PIPE_PER_PROC:-5000}
open_rate=${SB_BENCH_PIPE_OPEN_RATE:-500}
rates=${SB_BENCH_PIPE_RATES:-"100 1000 2000 3000 5000 6000 8000"}
step_s=${SB_BENCH_PIPE_STEP_S:-10}
drain_s=${SB_BENCH_PIPE_DRAIN_S:-20}
final_drain_s=${SB_BENCH_PIPE_FINAL_DRAIN_S:-120}
warm_rate=${SB_BENCH_PIPE_WARMUP_RATE:-200}
conns=${SB_BENCH_PIPE_CONNS:-512}
tap=${SB_BENCH_PIPE_TAP:-1}
instances=2
for v in users members senders per_proc open_rate step_s drain_s final_drain_s warm_rate conns; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer, got '${!v}'"; exit 2; }
done
for r in $rates; do
	[[ $r =~ ^[1-9][0-9]*$ ]] || { echo "bench: SB_BENCH_PIPE_RATES: positive integers, got '$r'"; exit 2; }
done
# the 100/s and 5,000/s steps always run
case " $rates " in *" 100 "*) ;; *) rates="100 $rates" ;; esac
case " $rates " in *" 5000 "*) ;; *) rates="$rates 5000" ;; esac
rates=$(tr ' ' '\n' <<<"$rates" | grep . | sort -n | uniq | tr '\n' ' ')
[ $((users % members)) = 0 ] || { echo "bench: users ($users) must be a multiple of members ($members)"; exit 2; }
[ "$senders" -le "$members" ] || { echo "bench: SB_BENCH_PIPE_SENDERS must be <= members"; exit 2; }
[ "$per_proc" -le 5000 ] || { echo "bench: SB_BENCH_PIPE_PER_PROC must be at most 5000"; exit 2; }
for b in bin/sb-auth bin/sb-messages bin/sb-gateway bin/sb-outbox bin/sb-notifier bin/sb-realtime \
	bench/pipeload bench/histpct; do
	[ -x "$SB_BUILD_ROOT/$b" ] || { echo "bench: $SB_BUILD_ROOT/$b is missing: build first"; exit 1; }
done
pipeload=$SB_BUILD_ROOT/bench/pipeload histpct=$SB_BUILD_ROOT/bench/histpct
for c in gnuplot kcat jq psql; do
	command -v "$c" >/dev/null || { echo "bench: $c is not installed (tools/install-deps.sh)"; exit 2; }
done
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,redis,kafka1 -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null
tmp=$SB_TEST_TMP
results=$root/bench/results
mkdir -p "$results"
procs=$(((users + per_proc - 1) / per_proc))
procs=$(((procs + instances - 1) / instances * instances)) # every process talks to one instance
hz=$(getconf CLK_TCK)
ttl=7200
t_start=$(date +%s)
echo "# pipeline_bench $(date -u +%FT%TZ), $(nproc) cores, build $SB_BUILD_ROOT"
echo "uptime before: $(uptime)"
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$SB_BUILD_ROOT/CMakeCache.txt" 2>/dev/null)
echo "binaries: $SB_BUILD_ROOT (sources ${src:-?}, git $(git -C "${src:-/nonexistent}" rev-parse --short HEAD 2>/dev/null || echo 'none: not a checkout'));" \
	"sb-notifier built $(date -u -r "$SB_BUILD_ROOT/bin/sb-notifier" +%FT%TZ)"
[ -n "$src" ] && [ -f "$src/COMMIT" ] && echo "the sources are a snapshot (git archive) of commit $(cat "$src/COMMIT")"
dirty=$(git -C "${src:-/nonexistent}" status --short -- services 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
[ -n "$dirty" ] && echo "uncommitted changes under services/ in the build's tree (the binaries may include them): $dirty"

# 1. A durable PostgreSQL: the with-stack cluster restarted without its test-only options.
sb_pg_stop "$tmp"
sb_pg_start "$tmp" "$SB_TEST_PG_PORT" "" || { echo "bench: PostgreSQL restart failed"; exit 1; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
settings=$(q -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')")
echo "PostgreSQL $(q -c 'SHOW server_version'): $settings"
case " $settings " in
*" fsync=on "*" synchronous_commit=on "*) ;;
*) echo "bench: PostgreSQL is not durable ($settings)"; exit 1 ;;
esac
kafka_pid=$(cat "$tmp/kafka/k1/kafka.pid")
topic=${SB_KAFKA_TOPIC_PREFIX:-}sb.messages.v1
echo "Kafka: Apache Kafka $SB_KAFKA_VERSION, one broker at $SB_TEST_KAFKA_BROKERS (pid $kafka_pid), topic $topic"

# 2. The load tools are bench/pipeload and bench/histpct of the build.

# 3. The services (two realtime instances; the second is started here, the rest by services.sh).
sb_svc_ports gateway auth messages outbox notifier realtime
rt2_rpc=$(sb_free_port) rt2_ops=$(sb_free_port) rt2_ws=$(sb_free_port)
sb_svc_start auth SB_LOG_LEVEL=warn SB_AUTH_ACCESS_TTL_S=$ttl
sb_svc_start messages SB_LOG_LEVEL=warn SB_RPC_WORKERS=16
sb_svc_start gateway SB_LOG_LEVEL=warn SB_RATE_LIMIT_PER_MIN=100000000 SB_RPC_TIMEOUT_MS=10000
sb_svc_wait_ready auth messages gateway || exit 1
sb_svc_start outbox SB_LOG_LEVEL=warn
sb_svc_start notifier SB_LOG_LEVEL=warn
# SB_BENCH_PIPE_WATERMARKS=0 (a diagnostic, not the platform's normal path): the realtimes send
# their delivery reports to a port where nothing listens, so no watermark reaches PostgreSQL and
# no message.delivered frame is sent (the reports are still made, and time out).
rt_extra=()
if [ "${SB_BENCH_PIPE_WATERMARKS:-1}" = 0 ]; then
	rt_extra=(SB_NOTIFIER_RPC_URL="tcp://127.0.0.1:$(sb_free_port)")
	echo "DIAGNOSTIC RUN: delivery watermarks off (realtime's notifier.Delivered goes nowhere)"
fi
sb_svc_start realtime SB_LOG_LEVEL=warn SB_WS_PORT="${SVC_HTTP[realtime]}" "${rt_extra[@]}"
start_realtime2() {
	local envs=()
	mapfile -t envs < <(sb_svc_env)
	env "${envs[@]}" SB_RPC_URL="tcp://127.0.0.1:$rt2_rpc" SB_OPS_PORT="$rt2_ops" SB_WS_PORT="$rt2_ws" \
		SB_LOG_LEVEL=warn "${rt_extra[@]}" "$SB_BUILD_ROOT/bin/sb-realtime" >>"$tmp/logs/realtime2.log" 2>&1 &
	SVC_PID[realtime2]=$!
	SVC_OPS[realtime2]=$rt2_ops
}
start_realtime2
sb_svc_wait_ready outbox notifier realtime realtime2 || exit 1
ws_port=("${SVC_HTTP[realtime]}" "$rt2_ws")
echo "services: gateway (SB_RATE_LIMIT_PER_MIN=100000000, SB_RPC_TIMEOUT_MS=10000, other settings default)," \
	"auth, messages (SB_RPC_WORKERS=16 as messages_bench), outbox, notifier, realtime x2; all logging at warn"

# 4. Users, conversations and memberships in SQL, one token per user from the operator CLI.
q -v users="$users" -v members="$members" <<'SQL' || { echo "bench: seeding failed"; exit 1; }
INSERT INTO auth.tenants (id, name) VALUES (gen_random_uuid(), 'pipeline');
INSERT INTO auth.users (id, tenant_id, name)
	SELECT gen_random_uuid(), t.id, 'pl' || g FROM auth.tenants t, generate_series(0, :users - 1) g
	WHERE t.name = 'pipeline';
CREATE TABLE public.pl_users AS
	SELECT substr(u.name, 3)::int AS n, u.id::text AS uid, u.tenant_id::text AS tid
	FROM auth.users u JOIN auth.tenants t ON t.id = u.tenant_id WHERE t.name = 'pipeline';
CREATE TABLE public.pl_convs AS
	SELECT g AS c, gen_random_uuid() AS id FROM generate_series(0, :users / :members - 1) g;
INSERT INTO messages.conversations (tenant_id, id, kind, title, created_by, activity_us)
	SELECT u.tid, c.id, 'group', 'pipeline ' || c.c, u.uid,
		(extract(epoch FROM now()) * 1000000)::bigint
	FROM public.pl_convs c JOIN public.pl_users u ON u.n = c.c * :members;
INSERT INTO messages.members (tenant_id, conversation_id, user_id)
	SELECT u.tid, c.id, u.uid FROM public.pl_users u JOIN public.pl_convs c ON c.c = u.n / :members;
SQL
q -c "SELECT 'pl' || n FROM public.pl_users ORDER BY n" >"$tmp/user_names"
q -F ' ' -c "SELECT c.c, c.id FROM public.pl_users u JOIN public.pl_convs c ON c.c = u.n / $members ORDER BY u.n" >"$tmp/user_convs"
env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ACCESS_TTL_S=$ttl SB_LOG_LEVEL=warn \
	SB_AUTH_ISSUER="http://127.0.0.1:${SVC_HTTP[gateway]}" \
	"$SB_BUILD_ROOT/bin/sb-auth" token issue --tenant pipeline --scopes "messages:read messages:write" \
	--ttl $ttl --users "$tmp/user_names" >"$tmp/tokens" 2>"$tmp/token_issue.err" ||
	{ echo "bench: sb-auth token issue failed: $(cat "$tmp/token_issue.err")"; exit 1; }
[ "$(wc -l <"$tmp/tokens")" = "$users" ] || { echo "bench: $(wc -l <"$tmp/tokens") tokens for $users users"; exit 1; }
paste -d' ' "$tmp/user_convs" "$tmp/tokens" >"$tmp/users"
echo "seeded: $users users, $(q -c 'SELECT count(*) FROM public.pl_convs') conversations of $members," \
	"$(q -c 'SELECT count(*) FROM messages.members') memberships, $users tokens"

# 5. Receivers (and the Redis tap); wait until every socket is ready.
ctl=$tmp/control
echo 0 >"$ctl"
recv_pids=() tap_pid=""
cleanup() {
	local p
	for p in "${recv_pids[@]}" $tap_pid; do kill -TERM "$p" 2>/dev/null; done
	for p in "${recv_pids[@]}" $tap_pid; do wait "$p" 2>/dev/null; done
	recv_pids=() tap_pid=""
	sb_svc_stop_all
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
for r in $(seq 0 $((procs - 1))); do
	"$pipeload" recv -a "127.0.0.1:${ws_port[r % instances]}" -u "$tmp/users" -P "$r" -Q "$procs" \
		-C "$ctl" -r $(((open_rate + procs - 1) / procs)) >"$tmp/recv-$r.out" 2>"$tmp/recv-$r.err" &
	recv_pids+=($!)
done
if [ "$tap" = 1 ]; then
	"$pipeload" tap -a "127.0.0.1:${SB_TEST_REDIS_URL##*:}" -C "$ctl" >"$tmp/tap.out" 2>"$tmp/tap.err" &
	tap_pid=$!
fi
deadline=$(($(date +%s) + users / open_rate + 90))
while :; do
	n_open=$(cat "$tmp"/recv-*.out 2>/dev/null | grep -c '"phase":"open"')
	[ "$n_open" -ge "$procs" ] && break
	if [ "$(date +%s)" -gt "$deadline" ]; then
		echo "bench: the receivers did not finish opening ($n_open of $procs)"; exit 1
	fi
	sleep 0.5
done
cat "$tmp"/recv-*.out | jq -s -r --argjson p "$procs" '[.[] | select(.phase == "open")] |
	"receivers: \(map(.ready) | add) of \(map(.requested) | add) sockets ready in \(map(.open_s) | max) s, \($p) processes of \(map(.requested) | join("/")), \(map(.failed) | add) failed" + (if (map(.failures) | join("")) != "" then " (\(map(.failures) | unique | join("; ")))" else "" end)'
ready=$(cat "$tmp"/recv-*.out | jq -s '[.[] | select(.phase == "open") | .ready] | add')
echo "sockets per realtime instance: $(curl -s "http://127.0.0.1:${SVC_OPS[realtime]}/metrics" | awk '$1 == "websocket_connections_active" {print $2}')" \
	"/ $(curl -s "http://127.0.0.1:$rt2_ops/metrics" | awk '$1 == "websocket_connections_active" {print $2}')"
[ "${ready:-0}" = "$users" ] || echo "bench: WARNING: only $ready of $users sockets ready (the others count as missing)"

# 6. Reports: report_steps STEP...: asks every receiver (and the tap) for the listed steps and
# waits for their answers; then merged STEP gives the totals of the last report.
rep_id=0
n_reporters=${#recv_pids[@]}
[ -n "$tap_pid" ] && n_reporters=$((n_reporters + 1))
report_steps() {
	local s f want n
	rep_id=$((rep_id + 1))
	{
		echo "$rep_id"
		for s in "$@"; do echo "$s $tmp/acked-$s"; done
	} >"$ctl.new"
	mv "$ctl.new" "$ctl"
	for p in "${recv_pids[@]}" $tap_pid; do kill -USR1 "$p" 2>/dev/null; done
	for n in $(seq 1 600); do
		want=0
		for f in "$tmp"/recv-*.out ${tap_pid:+"$tmp/tap.out"}; do
			grep -q "^{\"id\":$rep_id,\"end\":1" "$f" && want=$((want + 1))
		done
		[ $want -ge $n_reporters ] && return 0
		sleep 0.1
	done
	echo "bench: a receiver did not answer report $rep_id"
	return 1
}
# merged STEP: "expected got missing never_ready received dup max_ms p50 p99" over the receivers
merged() {
	local s=$1 line hist pc
	line=$(cat "$tmp"/recv-*.out | jq -s -r --argjson id "$rep_id" --argjson s "$s" \
		'[.[] | select(.id == $id and .step == $s)] |
		"\(map(.expected) | add) \(map(.got) | add) \(map(.missing) | add) \(map(.missing_never_ready) | add) \(map(.received) | add) \(map(.dup) | add) \((map(.max_us) | max) / 100 | round / 10)"')
	pc=$(cat "$tmp"/recv-*.out | jq -r --argjson id "$rep_id" --argjson s "$s" \
		'select(.id == $id and .step == $s) | .hist' | "$histpct")
	# a percentile is its bucket's middle (~1% wide): never report it above the exact maximum
	awk -v l="$line" -v pc="$pc" 'BEGIN { split(pc, p, " "); n = split(l, x, " "); mx = x[n]
		printf "%s %s %s\n", l, (p[2] > mx ? mx : p[2]), (p[3] > mx ? mx : p[3]) }'
}
# tapped STEP: "count p50 p99 rate" at the Redis subscriber (rate: messages per second between
# the step's first and last arrival, i.e. the notifier's publish rate when it had a backlog)
tapped() {
	[ -n "$tap_pid" ] || { echo "0 - - -"; return; }
	local pc sp
	pc=$(jq -r --argjson id "$rep_id" --argjson s "$1" 'select(.id == $id and .step == $s) | .hist' \
		"$tmp/tap.out" | "$histpct")
	sp=$(jq -r --argjson id "$rep_id" --argjson s "$1" 'select(.id == $id and .step == $s) | .span_us' "$tmp/tap.out")
	echo "$pc $(awk -v n="${pc%% *}" -v sp="${sp:-0}" 'BEGIN { printf "%.0f", (sp > 0 ? n / (sp / 1e6) : 0) }')"
}
# drain STEPS CAP: repeats the report until nothing of STEPS is missing or CAP seconds passed.
drain() {
	local cap=$2 t0 miss s m
	t0=$(date +%s.%N)
	while :; do
		report_steps $1 || return 1
		miss=0
		for s in $1; do
			m=$(merged "$s" | cut -d' ' -f3)
			miss=$((miss + ${m:-0}))
		done
		[ "$miss" = 0 ] && return 0
		awk -v a="$t0" -v b="$(date +%s.%N)" -v c="$cap" 'BEGIN { exit !(b - a >= c) }' && return 0
		sleep 1
	done
}

# CPU ticks of each process, and of PostgreSQL's postmaster with every child.
pg_pids() {
	local pm
	pm=$(head -1 "$SB_TEST_PG_DIR/postmaster.pid")
	echo "$pm" $(pgrep -P "$pm")
}
ticks() {
	local t=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo $t
}
redis_pid=$(cat "$tmp/redis/redis.pid")
cpu_names="gateway auth messages outbox notifier realtime1 realtime2 postgres redis kafka receivers tap"
cpu_snapshot() {
	echo "$(ticks "${SVC_PID[gateway]}") $(ticks "${SVC_PID[auth]}") $(ticks "${SVC_PID[messages]}")" \
		"$(ticks "${SVC_PID[outbox]}") $(ticks "${SVC_PID[notifier]}") $(ticks "${SVC_PID[realtime]}")" \
		"$(ticks "${SVC_PID[realtime2]}") $(ticks $(pg_pids)) $(ticks "$redis_pid") $(ticks "$kafka_pid")" \
		"$(ticks "${recv_pids[@]}") $(ticks $tap_pid)" \
		"$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat)"
}
# the last two fields of a snapshot: ticks of the whole machine, busy (user, nice, system, irq,
# softirq) and stolen by the hypervisor

# lag_sampler FILE: every 0.5 s, "<notifier consumer lag> <outbox relay lag seconds>" from /metrics.
lag_sampler() {
	while :; do
		echo "$(curl -s -m 1 "http://127.0.0.1:${SVC_OPS[notifier]}/metrics" | awk '$1 == "notifier_consumer_lag_messages" { v = $2 } END { print v + 0 }')" \
			"$(curl -s -m 1 "http://127.0.0.1:${SVC_OPS[outbox]}/metrics" | awk '$1 ~ /^outbox_relay_lag_seconds/ && $2 > v { v = $2 } END { print v + 0 }')" >>"$1"
		sleep 0.5
	done
}
# pg_counts: "<transactions committed> <WAL syncs>" of the database so far
pg_counts() {
	q -F ' ' -c "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()), (SELECT wal_sync FROM pg_stat_wal)"
}
# wm_count: delivery-watermark items the notifier applied so far (notifier_delivered_total, both results)
wm_count() {
	curl -s -m 2 "http://127.0.0.1:${SVC_OPS[notifier]}/metrics" | awk '$1 ~ /^notifier_delivered_total/ { v += $2 } END { printf "%d", v }'
}
# run_step STEP RATE SECONDS: one open-loop step, then its drain. Sets the globals of the step.
declare -A S_RATE S_RES S_CPU S_WIN S_PROV S_LAG S_WM S_PG
steps_run=()
run_step() {
	local s=$1 rate=$2 secs=$3 c0 c1 t0 t1 out
	: >"$tmp/lag-$s"
	lag_sampler "$tmp/lag-$s" &
	local lag_pid=$! w0 w1
	w0=$(wm_count)
	local g0 g1
	g0=$(pg_counts)
	c0=($(cpu_snapshot))
	t0=$(date +%s.%N)
	out=$("$pipeload" send -a "127.0.0.1:${SVC_HTTP[gateway]}" -u "$tmp/users" -m "$members" \
		-n "$senders" -r "$rate" -d "$secs" -S "$s" -o "$tmp/acked-$s" -c "$conns" -g 10 2>&1)
	S_RES[$s]=$(grep '^RESULT ' <<<"$out")
	[ -n "${S_RES[$s]}" ] || { echo "bench: the sender failed at step $s: $out"; return 1; }
	drain "$s" "$drain_s" || return 1
	t1=$(date +%s.%N)
	c1=($(cpu_snapshot))
	w1=$(wm_count)
	g1=$(pg_counts)
	kill "$lag_pid" 2>/dev/null
	wait "$lag_pid" 2>/dev/null
	S_LAG[$s]=$(awk '$1 > a { a = $1 } $2 > b { b = $2 } END { printf "%d %.2f", a, b }' "$tmp/lag-$s")
	local i cpu=""
	for i in "${!c0[@]}"; do
		cpu+="$(awk -v a="${c0[i]}" -v b="${c1[i]}" -v h="$hz" 'BEGIN { printf "%.2f", (b - a) / h }') "
	done
	S_CPU[$s]=$cpu
	S_WIN[$s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	S_PG[$s]=$(awk -v a="$g0" -v b="$g1" -v w="${S_WIN[$s]}" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f %.0f", (y[1] - x[1]) / w, (y[2] - x[2]) / w }')
	S_WM[$s]=$(awk -v a="${w0:-0}" -v b="${w1:-0}" -v w="${S_WIN[$s]}" 'BEGIN { printf "%.0f", (b - a) / w }')
	S_RATE[$s]=$rate
	S_PROV[$s]=$(merged "$s")
	steps_run+=("$s")
	return 0
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
# verdict STEP MERGED: ok or FAIL (nothing missing, >= 95% answered 2xx, p99 < 200 ms); the
# stricter 100-ms target of the 100/s step is checked on its own among the targets.
verdict() {
	local s=$1 m=$2
	awk -v ex="$(cut -d' ' -f1 <<<"$m")" -v miss="$(cut -d' ' -f3 <<<"$m")" \
		-v p99="$(cut -d' ' -f9 <<<"$m")" -v ach="$(field achieved "${S_RES[$s]}")" \
		-v r="${S_RATE[$s]}" 'BEGIN { print (ex > 0 && miss == 0 && p99 != "" && p99 < 200 && ach >= 0.95 * r) ? "ok" : "FAIL" }'
}
# sustained STEP MERGED: yes when the platform kept up (every delivery arrived within the drain,
# >= 95% answered 2xx, p99 < 1 s): the ladder goes on only then (a p99 over 200 ms alone fails
# the step but does not stop the ladder).
sustained() {
	local s=$1 m=$2
	awk -v ex="$(cut -d' ' -f1 <<<"$m")" -v miss="$(cut -d' ' -f3 <<<"$m")" \
		-v p99="$(cut -d' ' -f9 <<<"$m")" -v ach="$(field achieved "${S_RES[$s]}")" \
		-v r="${S_RATE[$s]}" 'BEGIN { print (ex > 0 && miss == 0 && p99 != "" && p99 < 1000 && ach >= 0.95 * r) ? "yes" : "no" }'
}
progress() { # STEP: one line as soon as a step is done (provisional; the final table follows)
	local s=$1 m=${S_PROV[$1]}
	read -r e g mi nr rc du mx p50 p99 <<<"$m"
	printf '  step %-2s %5s/s: %s; deliveries %s expected, %s got, %s missing, %s dup; p50 %s p99 %s max %s ms; window %s s -> %s\n' \
		"$s" "${S_RATE[$s]}" "$(sed 's/^RESULT //' <<<"${S_RES[$s]}")" "$e" "$g" "$mi" "$du" "$p50" "$p99" "$mx" \
		"${S_WIN[$s]}" "$(verdict "$s" "$m")"
}

# 7. The platform at rest for 5 s (10,000 idle sockets, the broker, the notifier polling): the
# CPU floor that every step's figures include.
c0=($(cpu_snapshot))
t0=$(date +%s.%N)
sleep 5
t1=$(date +%s.%N)
c1=($(cpu_snapshot))
idle_win=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
idle_cpu=""
for i in "${!c0[@]}"; do
	idle_cpu+="$(awk -v a="${c0[i]}" -v b="${c1[i]}" -v h="$hz" 'BEGIN { printf "%.2f", (b - a) / h }') "
done

# 8. Warm-up (step 0): the notifier's group join and first fetches, every cache.
echo
echo "warm-up: $warm_rate sends/s for 5 s, then until every delivery arrived (at most 120 s)"
save_drain=$drain_s drain_s=120
run_step 0 "$warm_rate" 5 || exit 1
drain_s=$save_drain
progress 0

# 9. The ladder.
echo
echo "ladder: $rates sends/s, $step_s s each, drain up to $drain_s s after each"
s=0 stopped=0
for r in $rates; do
	if [ $stopped = 1 ]; then
		[ "$r" = 100 ] || [ "$r" = 5000 ] || continue
		echo "  (draining the backlog before the $r/s step, at most 120 s)"
		drain "${steps_run[*]}" 120
	fi
	s=$((s + 1))
	run_step "$s" "$r" "$step_s" || exit 1
	progress "$s"
	[ "$(sustained "$s" "${S_PROV[$s]}")" = yes ] || stopped=1
done

# 10. Final accounting: every step recounted after a final drain.
echo
echo "final drain: until every acknowledged send of every step reached every member (at most $final_drain_s s)"
drain "${steps_run[*]}" "$final_drain_s"
sleep 1
report_steps "${steps_run[@]}" || exit 1
uptime_after=$(uptime)

# Kafka CreateTime of every record (the relay's produce time) against the scheduled time.
kcat -C -b "$SB_TEST_KAFKA_BROKERS" -t "$topic" -o beginning -e -q -f '@@%T@@%s\n' 2>"$tmp/kcat.err" |
	grep -aoE '@@[0-9]+@@|t=[0-9]{16} s=[0-9]+' |
	awk '/^@@/ { gsub("@", ""); ts = $0; next } { split($1, a, "="); split($2, b, "="); if (ts != "") print b[2], ts - a[2] / 1000; ts = "" }' |
	sort -k1,1n -k2,2g >"$tmp/kafka_lat"
kafka_pct() { # STEP: "count p50 p99" of CreateTime - scheduled, ms
	awk -v s="$1" '$1 == s { v[n++] = $2 } END {
		if (n == 0) { print "0 - -"; exit }
		i50 = int(0.50 * n + 0.999999) - 1; i99 = int(0.99 * n + 0.999999) - 1
		printf "%d %.1f %.1f\n", n, v[i50], v[i99] }' "$tmp/kafka_lat"
}

dat=$results/pipeline_steps.dat
echo "# step rate achieved p50_ms p99_ms max_ms ack_p99_ms kafka_p99_ms redis_p99_ms missing" >"$dat"
echo
echo "=== per step (final counts; latency = receive at the socket - scheduled send time, ms; deliveries expected = 2xx sends x $members members, the sender's own socket included)"
hdr='%-4s %6s %9s %7s %7s %-18s %9s %9s %-9s %4s %8s %8s %8s %s\n'
printf "$hdr" step rate scheduled 2xx 2xx/s errors expected received missing dup p50_ms p99_ms max_ms verdict
declare -A F_MERGED F_VERDICT
for s in "${steps_run[@]}"; do
	m=$(merged "$s")
	F_MERGED[$s]=$m
	read -r e g mi nr rc du mx p50 p99 <<<"$m"
	res=${S_RES[$s]}
	v=$(verdict "$s" "$m")
	[ "$s" = 0 ] && v="(warm-up)"
	F_VERDICT[$s]=$v
	extra=""
	[ "$nr" != 0 ] && extra+=" ($nr never ready)"
	[ "$rc" -gt "$g" ] && extra+=" (+$((rc - g)) deliveries of unacknowledged sends)"
	printf "$hdr" "$s" "${S_RATE[$s]}" "$(field scheduled "$res")" "$(field ok "$res")" "$(field achieved "$res")" \
		"$(field errors "$res")" "$e" "$g" "$mi" "$du" "$p50" "$p99" "$mx" "$v$extra"
done
echo
echo "=== where the time goes, per hop (ms from the scheduled send time; each a different observer)"
hhdr='%-4s %6s | %7s %7s | %7s %7s | %7s %7s %9s | %7s %7s | %8s %10s %8s %9s %9s\n'
printf "$hhdr" step rate ack_p50 ack_p99 kfk_p50 kfk_p99 rds_p50 rds_p99 rds_msg/s ws_p50 ws_p99 ntf_lag outbox_lag wm_upd/s pg_xact/s wal_sync/s
for s in "${steps_run[@]}"; do
	read -r e g mi nr rc du mx p50 p99 <<<"${F_MERGED[$s]}"
	res=${S_RES[$s]}
	read -r kn k50 k99 <<<"$(kafka_pct "$s")"
	read -r tn t50 t99 trate <<<"$(tapped "$s")"
	read -r nlag olag <<<"${S_LAG[$s]}"
	printf "$hhdr" "$s" "${S_RATE[$s]}" "$(field ack_p50_ms "$res")" "$(field ack_p99_ms "$res")" "$k50" "$k99" \
		"$t50" "$t99" "$trate" "$p50" "$p99" "$nlag" "${olag}s" "${S_WM[$s]}" ${S_PG[$s]}
	[ "$s" = 0 ] || echo "$s ${S_RATE[$s]} $(field achieved "$res") $p50 $p99 $mx $(field ack_p99_ms "$res") $k99 $t99 $mi" >>"$dat"
done
echo "ack: the 2xx answer at the sender (committed); kfk: the Kafka record's CreateTime (the relay's produce call, ms"
echo "resolution, read back with kcat); rds: the notifier's PUBLISH arriving at a Redis subscriber, and rds_msg/s the"
echo "rate of those arrivals between the step's first and last (the notifier's publish rate when it had a backlog);"
echo "ws: arrival at the members' sockets; ntf_lag: highest notifier consumer lag (messages) and outbox_lag: highest"
echo "outbox relay lag, both sampled from /metrics every 0.5 s during the step and its drain; wm_upd/s: delivery"
echo "watermark items (realtime -> notifier.Delivered, one PostgreSQL upsert each) applied per second of the window;"
echo "pg_xact/s, wal_sync/s: PostgreSQL transactions committed and WAL syncs per second of the window (pg_stat_database, pg_stat_wal)"

echo
echo "=== CPU seconds per process over each step and its drain (window), machine: $(nproc) cores"
chdr='%-4s %6s %7s'
for n in sender $cpu_names; do chdr+=' %9s'; done
chdr+=' %8s | %8s %8s %6s\n'
printf "$chdr" step rate window sender $cpu_names ours machine others steal
cpu_row() { # STEP RATE WINDOW SENDER_CPU "PER-PROCESS... MACHINE STEAL"
	local v=($5) n
	n=${#v[@]}
	local procs_cpu=("${v[@]:0:n-2}") mach=${v[n-2]} steal=${v[n-1]} ours
	ours=$(awk -v a="${4/-/0} ${procs_cpu[*]}" 'BEGIN { n = split(a, x, " "); for (i = 1; i <= n; i++) t += x[i]; printf "%.1f", t }')
	printf "$chdr" "$1" "$2" "$3" "$4" "${procs_cpu[@]}" "$ours" "$mach" \
		"$(awk -v m="$mach" -v o="$ours" 'BEGIN { printf "%.1f", m - o }')" "$steal"
}
cpu_row idle - "$idle_win" - "$idle_cpu"
for s in "${steps_run[@]}"; do
	cpu_row "$s" "${S_RATE[$s]}" "${S_WIN[$s]}" "$(field cpu_s "${S_RES[$s]}")" "${S_CPU[$s]}"
done
echo "(idle: 5 s with the sockets open and nothing sent, before the warm-up; receivers: $procs processes together;"
echo " postgres: postmaster and all its processes; kafka: the broker JVM; ours: every process of the benchmark;"
echo " machine: all CPU time used on the machine in the window (/proc/stat), others: machine - ours, i.e. what"
echo " other work on the machine took; steal: time the hypervisor gave to other guests; capacity $(nproc) x window)"

# Counters of the run from the receivers and the services.
echo
cat "$tmp"/recv-*.out | jq -s -r --argjson id "$rep_id" '[.[] | select(.id == $id and .end == 1)] |
	"receivers at the end: \(map(.ready) | add) sockets ready, \(map(.closes_after_ready) | add) closed by the server after ready (last close code \(map(.last_close_code) | max)), \(map(.reconnects) | add) reconnections with resume, \(map(.delivered_frames) | add) message.delivered frames, \(map(.other_frames) | add) other frames, \(map(.bad_frames) | add) unparsable; CPU \(map(.cpu_s * 10 | round / 10) | join(" / ")) s in all"'
metric() { curl -s "http://127.0.0.1:$1/metrics" | grep -E "^($2)" | sed 's/^/    /'; }
echo "  notifier:"
metric "${SVC_OPS[notifier]}" 'notifier_events_total|notifier_delivered_total|notifier_consumer_lag'
for o in "${SVC_OPS[realtime]}" "$rt2_ops"; do
	curl -s "http://127.0.0.1:$o/metrics" | awk -v o="$o" '
		$1 == "websocket_message_latency_seconds_sum" { s = $2 } $1 == "websocket_message_latency_seconds_count" { n = $2 }
		$1 == "websocket_connections_active" { c = $2 } $1 ~ /^websocket_slow_consumer_closes_total/ { sc += $2 }
		END { printf "  realtime (ops :%s): %d connections, %d frames written, mean %.1f ms from the message'"'"'s commit (created_at) to the write, %d slow-consumer closes\n", o, c, n, (n > 0 ? s / n * 1000 : 0), sc }'
done
echo "  warnings in the services' logs: $(for f in "$tmp"/logs/*.log; do printf '%s %s  ' "$(basename "$f" .log)" "$(grep -c -i 'warn\|error' "$f")"; done)"
grep -h -i 'Delivered batches dropped' "$tmp"/logs/realtime*.log | tail -2 | cut -c1-240 | sed 's/^/    /'
grep -h -i 'warn\|error' "$tmp"/logs/notifier.log "$tmp"/logs/outbox.log 2>/dev/null | tail -4 | cut -c1-240 | sed 's/^/    /'

# 11. The plot.
svg=$results/pipeline_latency.svg
gnuplot <<EOF 2>"$tmp/gnuplot.err" || echo "bench: gnuplot failed: $(cat "$tmp/gnuplot.err")"
set terminal svg size 900,540 dynamic enhanced font "sans,12" background rgb "white"
set output "$svg"
set title "Send -> browser latency through the whole platform (real Kafka, $users sockets on 2 realtimes)\n$(date -u +%F), $(nproc) cores, from each message's scheduled send time"
set xlabel "sends per second scheduled (x $members deliveries); labels: sends answered 2xx per second"
set ylabel "milliseconds"
set logscale xy
set grid
set key top left
set xrange [70:*]
set style data linespoints
set arrow from graph 0, first 100 to graph 1, first 100 nohead dt 3 lc rgb "#aa0000"
set arrow from graph 0, first 200 to graph 1, first 200 nohead dt 2 lc rgb "#aa0000"
set label "200 ms" at graph 0.01, first 215 tc rgb "#aa0000"
set label "100 ms" at graph 0.01, first 108 tc rgb "#aa0000"
plot "$dat" using 2:(\$5 > 0 ? \$5 : 1/0) title "browser socket p99" lw 2.5 pt 7 lc rgb "#6a0dad", \
     "$dat" using 2:(\$4 > 0 ? \$4 : 1/0) title "browser socket p50" lw 2.5 pt 5 lc rgb "#008060", \
     "$dat" using 2:(\$6 > 0 ? \$6 : 1/0) title "browser socket max" dt 2 pt 1 lc rgb "#9a9a9a", \
     "$dat" using 2:(\$9 > 0 ? \$9 : 1/0) title "notifier PUBLISH seen on Redis, p99" dt 4 lw 1.5 pt 2 lc rgb "#d95f02", \
     "$dat" using 2:(\$8 > 0 ? \$8 : 1/0) title "Kafka record CreateTime (relay), p99" dt 4 lw 1.5 pt 3 lc rgb "#1f78b4", \
     "$dat" using 2:(\$7 > 0 ? \$7 : 1/0) title "2xx answer (committed), p99" dt 4 lw 1.5 pt 4 lc rgb "#333333", \
     "$dat" using 2:(\$5 > 0 ? \$5 : 1/0):(sprintf("%d/s", \$3)) with labels offset 0,1.2 font ",10" tc rgb "#6a0dad" notitle
EOF
if [ -s "$svg" ]; then
	echo
	echo "plot: $svg"
	if [ "${SB_BENCH_PIPE_NO_DOCS:-0}" != 1 ]; then
		mkdir -p "$root/docs/img" && cp "$svg" "$root/docs/img/pipeline_latency.svg" && echo "plot copied to docs/img/pipeline_latency.svg"
	fi
fi

# 12. Verdicts.
echo
echo "=== targets"
miss_total=0 p99_100="" best=0 best_p99=""
for s in "${steps_run[@]}"; do
	[ "$s" = 0 ] && continue
	read -r e g mi nr rc du mx p50 p99 <<<"${F_MERGED[$s]}"
	miss_total=$((miss_total + mi))
	[ "${S_RATE[$s]}" = 100 ] && p99_100=$p99
	if [ "${S_RATE[$s]}" -ge 5000 ] && [ "${F_VERDICT[$s]}" = ok ] && [ "${S_RATE[$s]}" -gt "$best" ]; then
		best=${S_RATE[$s]} best_p99=$p99
	fi
done
rc=0
if [ "$miss_total" = 0 ]; then echo "PASS nothing missing at any step"; else echo "FAIL nothing missing at any step: $miss_total deliveries missing"; rc=1; fi
if [ -n "$p99_100" ] && awk -v p="$p99_100" 'BEGIN { exit !(p < 100) }'; then
	echo "PASS p99 send->browser < 100 ms at 100 sends/s: $p99_100 ms"
else
	echo "FAIL p99 send->browser < 100 ms at 100 sends/s: ${p99_100:-not measured} ms"; rc=1
fi
if [ "$best" -ge 5000 ]; then
	echo "PASS >= 5,000 sends/s (50,000 deliveries/s) with p99 < 200 ms: $best sends/s, p99 $best_p99 ms (nothing missing, >= 95% of the rate answered 2xx)"
else
	m5=""
	for s in "${steps_run[@]}"; do [ "${S_RATE[$s]}" = 5000 ] && m5=${F_MERGED[$s]} && a5=$(field achieved "${S_RES[$s]}"); done
	echo "FAIL >= 5,000 sends/s (50,000 deliveries/s) with p99 < 200 ms: at 5,000/s $(cut -d' ' -f9 <<<"$m5") ms p99, ${a5:-?} 2xx/s, $(cut -d' ' -f3 <<<"$m5") missing"
	rc=1
fi
echo
echo "uptime after: $uptime_after"
echo "whole benchmark: $(($(date +%s) - t_start)) s"
if [ -n "${SB_BENCH_KEEP_LOGS:-}" ]; then
	mkdir -p "$SB_BENCH_KEEP_LOGS" && cp "$tmp"/logs/*.log "$tmp"/recv-*.out "$tmp"/kafka_lat "$SB_BENCH_KEEP_LOGS/" 2>/dev/null
	cp "$tmp"/acked-* "$tmp"/tap.out "$tmp"/lag-* "$SB_BENCH_KEEP_LOGS/" 2>/dev/null
fi
exit $rc
