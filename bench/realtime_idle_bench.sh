#!/usr/bin/env bash
# realtime_idle_bench.sh: idle WebSocket connections on ONE sb-realtime instance (issue 5):
# target at least 15,000, resident memory per connection at most 10 KB, load generators not the
# bottleneck. Node `ws` clients (bench/realtime_idle_client.mjs) in several processes of at most
# 4,000 connections each open connections at a steady total pace, each as a DISTINCT user with
# its own access token (`sb-auth token issue --users`), wait for each `ready` frame and hold them
# idle for longer than the server's ping interval (30 s), so every connection has been pinged and
# has answered at least once. Measured: the realtime process's VmRSS after start, with every
# connection open and again at the end of the hold; the kernel's memory for the server's
# sockets (`ss -tm`, the skmem of every socket on realtime's port: receive and send buffers,
# queued and allocated) and machine-wide TCP memory (/proc/net/sockstat "mem", pages, which
# also counts the clients' sockets on this same machine); the open connections realtime counts
# (websocket_connections_active on its ops /metrics) and the CPU time of the server and of
# every load generator. Targets: >= 15,000 connections, process RSS + kernel socket memory
# <= 10 KB per connection; a missed target exits 1. Run by `make bench` (bench/run.sh) or:
#   bash bench/realtime_idle_bench.sh [BUILD_DIR]
# Knobs: SB_BENCH_RT_CONNS (15000), SB_BENCH_RT_PER_PROC (4000), SB_BENCH_RT_RATE (250 per s,
# all processes together), SB_BENCH_RT_HOLD_S (45). Starts its own PostgreSQL and Redis
# (tests/lib/with-stack.sh), auth, messages, gateway and realtime; stops all of them on exit.
# Exit status 1 when a target is missed or nothing could be measured.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_BUILD_ROOT=${1:-${SB_BUILD_ROOT:-$root/build}}
export SB_SOURCE_ROOT=$root
conns=${SB_BENCH_RT_CONNS:-15000}
per_proc=${SB_BENCH_RT_PER_PROC:-4000}
rate=${SB_BENCH_RT_RATE:-250}
hold=${SB_BENCH_RT_HOLD_S:-45}
for v in conns per_proc rate hold; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer, got '${!v}'"; exit 2; }
done
[ "$hold" -ge 6 ] || { echo "bench: SB_BENCH_RT_HOLD_S must be at least 6 (measured 2 s into the hold)"; exit 2; }
ws_mod=$root/tests/realtime/node_modules/ws
[ -d "$ws_mod" ] || { echo "bench: $ws_mod is missing: run tools/install-deps.sh"; exit 2; }
command -v node >/dev/null || { echo "bench: node is not installed"; exit 2; }
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,redis -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"

# The realtime process needs one descriptor per connection plus its own (listeners, Redis,
# RPC sockets, logs): raise the soft limit to the hard one and say so if it cannot hold them.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
fd_limit=$(ulimit -n)
if [ "$fd_limit" != unlimited ] && [ $((conns + 100)) -gt "$fd_limit" ]; then
	echo "bench: open-file limit $fd_limit per process: $conns connections do not fit;" \
		"asking for $((fd_limit - 100))"
	conns=$((fd_limit - 100))
fi

client_pids=()
cleanup() {
	local p
	for p in "${client_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${client_pids[@]}"; do wait "$p" 2>/dev/null; done
	sb_svc_stop_all
}

sb_svc_ports gateway auth messages realtime
ws_port=${SVC_HTTP[realtime]}
sb_svc_start auth SB_LOG_LEVEL=warn
sb_svc_start messages SB_LOG_LEVEL=warn
sb_svc_start gateway SB_LOG_LEVEL=warn
sb_svc_start realtime SB_LOG_LEVEL=warn SB_WS_PORT="$ws_port" \
	SB_WS_MAX_CONN_PER_USER=$((conns + 100))
trap cleanup EXIT
sb_svc_wait_ready auth messages gateway realtime || exit 1
rt_pid=${SVC_PID[realtime]}

# One user per connection, each with its own token (realtime keys its per-user state by user).
psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" -v n="$conns" <<'SQL' >/dev/null || { echo "bench: seeding users failed"; exit 1; }
INSERT INTO auth.tenants (id, name) VALUES (gen_random_uuid(), 'idle');
INSERT INTO auth.users (id, tenant_id, name)
	SELECT gen_random_uuid(), t.id, 'idle' || g FROM auth.tenants t, generate_series(1, :n) g
	WHERE t.name = 'idle';
SQL
seq -f 'idle%.0f' 1 "$conns" >"$SB_TEST_TMP/users"
tokens=$SB_TEST_TMP/tokens
mapfile -t envs < <(sb_svc_env) # the issuer and audience the services were started with
env "${envs[@]}" SB_LOG_LEVEL=warn "$SB_BUILD_ROOT/bin/sb-auth" token issue \
	--tenant idle --scopes "messages:read" --ttl 900 --users "$SB_TEST_TMP/users" >"$tokens" \
	2>"$SB_TEST_TMP/token_issue.err" || { echo "bench: token issue failed: $(cat "$SB_TEST_TMP/token_issue.err")"; exit 1; }
[ "$(sort -u "$tokens" | wc -l)" = "$conns" ] || { echo "bench: want $conns distinct tokens, got $(sort -u "$tokens" | wc -l)"; exit 1; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# skmem_kb PORT: kernel memory of every TCP socket whose local port is PORT (the server side),
# in kB: the sum of rmem_alloc, wmem_alloc, fwd_alloc and wmem_queued of `ss -tm`.
skmem_kb() {
	ss -Htmn state established "sport = :$1" 2>/dev/null | grep -o 'skmem:([^)]*)' |
		awk -F'[(),]' '{ for (i = 2; i <= NF; i++) if ($i ~ /^[rtfw][0-9]+$/) s += substr($i, 2) }
			END { printf "%.0f", s / 1024 }'
}
# slab_kb: kernel slab memory of the objects every TCP socket holds (caches TCP,
# sock_inode_cache, filp, eventpoll_epi, dentry: active objects x object size), machine-wide, kB.
slab_kb() {
	awk '$1 ~ /^(TCP|sock_inode_cache|filp|eventpoll_epi|dentry)$/ { s += $2 * $4 } END { printf "%.0f", s / 1024 }' /proc/slabinfo
}
# sockstat_mem_kb: machine-wide TCP memory (/proc/net/sockstat "TCP: ... mem N", pages) in kB.
sockstat_mem_kb() { awk -v p="$(getconf PAGESIZE)" '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) * p / 1024 }' /proc/net/sockstat; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime+stime
hz=$(getconf CLK_TCK)
metric() { # name: first sample of name on realtime's ops /metrics
	curl -s "http://127.0.0.1:${SVC_OPS[realtime]}/metrics" |
		awk -v n="$1" '$1 == n || index($1, n "{") == 1 {print $2; exit}'
}

sleep 2 # let start-up allocations (JWKS fetch, Redis subscriber) settle
base_rss=$(rss_kb "$rt_pid")
base_active=$(metric websocket_connections_active)
base_fds=$(ls "/proc/$rt_pid/fd" | wc -l)
base_sk=$(sockstat_mem_kb) base_slab=$(slab_kb)
procs=$(((conns + per_proc - 1) / per_proc))
echo "sb-realtime pid $rt_pid, open-file limit $fd_limit; $conns connections from $procs node" \
	"processes (ws), $rate/s in total, held idle ${hold} s; ping interval 30 s (default)"
echo "baseline: VmRSS ${base_rss} kB, websocket_connections_active ${base_active:-?}, fds $base_fds"

rt_cpu0=$(cpu_ticks "$rt_pid") msg_cpu0=$(cpu_ticks "${SVC_PID[messages]}")
t0=$(date +%s.%N)
left=$conns
for i in $(seq 1 "$procs"); do
	n=$(((left + procs - i) / (procs - i + 1))) # spread evenly
	left=$((left - n))
	SB_WS_URL="ws://127.0.0.1:$ws_port/ws" SB_TOKENS=$tokens SB_FIRST=$((conns - left - n)) \
		SB_COUNT=$n SB_WS_MODULE=$ws_mod \
		SB_RATE=$(((rate + procs - 1) / procs)) SB_HOLD_S=$hold \
		node "$root/bench/realtime_idle_client.mjs" >"$SB_TEST_TMP/client$i.out" \
		2>"$SB_TEST_TMP/client$i.err" &
	client_pids+=($!)
done

# Wait for every generator's "open" line (all its connections ready or failed).
deadline=$(($(date +%s) + conns / rate + 60))
while :; do
	n_open=$(cat "$SB_TEST_TMP"/client*.out 2>/dev/null | grep -c '"phase":"open"')
	[ "$n_open" -ge "$procs" ] && break
	alive=0
	for p in "${client_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
	if [ $alive = 0 ] || [ "$(date +%s)" -gt "$deadline" ]; then
		echo "bench: load generators did not finish opening ($n_open of $procs)"
		cat "$SB_TEST_TMP"/client*.out "$SB_TEST_TMP"/client*.err | tail -n 20
		tail -n 10 "$SB_TEST_TMP/logs/realtime.log"
		exit 1
	fi
	sleep 0.2
done
t1=$(date +%s.%N)
rt_cpu1=$(cpu_ticks "$rt_pid") msg_cpu1=$(cpu_ticks "${SVC_PID[messages]}")
sleep 2 # idle for a moment, then measure while every connection is held
full_rss=$(rss_kb "$rt_pid")
active=$(metric websocket_connections_active)
full_fds=$(ls "/proc/$rt_pid/fd" | wc -l)
full_sk=$(skmem_kb "$ws_port") full_sockstat=$(sockstat_mem_kb)
# Late in the hold (past a ping interval): RSS and socket memory again.
sleep $((hold > 40 ? hold - 8 : hold / 2))
late_rss=$(rss_kb "$rt_pid") late_sk=$(skmem_kb "$ws_port") late_active=$(metric websocket_connections_active)
late_slab=$(slab_kb)
ready=$(cat "$SB_TEST_TMP"/client*.out | jq -s '[.[] | select(.phase == "open") | .ready] | add')
open_s=$(cat "$SB_TEST_TMP"/client*.out | jq -s '[.[] | select(.phase == "open") | .open_s] | max')

for p in "${client_pids[@]}"; do wait "$p"; done
client_pids=()
sleep 1
after_active=$(metric websocket_connections_active)
after_rss=$(rss_kb "$rt_pid")

echo "--- per load generator (CPU = user+system of the node process)"
printf '%-4s %7s %7s %9s %11s %9s %10s %9s\n' gen conns ready open_s cpu_open_s cpu_open% still_open rss_MB
i=0
for f in "$SB_TEST_TMP"/client*.out; do
	i=$((i + 1))
	jq -rs --arg i "$i" '(.[] | select(.phase == "open")) as $o | (.[] | select(.phase == "done")) as $d |
		[$i, $o.requested, $o.ready, ($o.open_s * 10 | round / 10), ($o.cpu_s * 100 | round / 100),
		 ($o.cpu_s / $o.open_s * 100 | round), $d.still_open, ($d.rss_mb | round)] | @tsv' "$f" |
		awk -F'\t' '{printf "%-4s %7s %7s %9s %11s %9s %10s %9s\n", $1, $2, $3, $4, $5, $6, $7, $8}'
	jq -r 'select(.phase == "open" and (.failures | length) > 0) | "  failed before ready: \(.failures)"' "$f"
	jq -r 'select(.phase == "done" and .closed_after_ready > 0) | "  closed by the server after ready (close codes): \(.close_codes)"' "$f"
done
cat "$SB_TEST_TMP"/client*.err | head -n 5

awk -v n="$conns" -v r="$ready" -v a="${active:-0}" -v b="$base_rss" -v f="$full_rss" \
	-v fds="$full_fds" -v bf="$base_fds" -v c0="$rt_cpu0" -v c1="$rt_cpu1" -v m0="$msg_cpu0" -v m1="$msg_cpu1" -v hz="$hz" \
	-v t0="$t0" -v t1="$t1" -v os="$open_s" -v aa="${after_active:-?}" -v ar="$after_rss" 'BEGIN {
	el = t1 - t0
	printf "opened %d of %d connections (ready frames) in %.1f s = %.0f/s\n", r, n, os, r / os
	printf "server counts: websocket_connections_active %d, fds %d (baseline %d)\n", a, fds, bf
	printf "sb-realtime CPU while opening: %.1f s = %.0f%% of one core\n", (c1 - c0) / hz, (c1 - c0) / hz / el * 100
	printf "sb-messages CPU while opening (ListMemberships per connection): %.1f s = %.0f%% of one core\n", (m1 - m0) / hz, (m1 - m0) / hz / el * 100
	printf "VmRSS: baseline %d kB, with %d open %d kB: %.2f KB per connection\n", b, a, f, (a > 0 ? (f - b) / a : 0)
	printf "after the clients closed: websocket_connections_active %s, VmRSS %d kB\n", aa, ar
}'
# Both ends of every connection are sockets of this machine: half the slab growth is the
# server's. Buffers (skmem) are counted for the server's sockets only.
k_slab=$(((late_slab - base_slab) / 2))
late_sk=$((late_sk + k_slab))
awk -v a="${late_active:-0}" -v b="$base_rss" -v l="$late_rss" -v k="$late_sk" -v fk="$full_sk" \
	-v s0="$base_sk" -v s1="$full_sockstat" -v hold="$hold" -v ks="$k_slab" 'BEGIN {
	printf "kernel slab for sockets (TCP, sock_inode_cache, filp, eventpoll_epi, dentry), half of the machine-wide growth: %d kB\n", ks
	printf "late in the hold (held %d s; ping interval 30 s): %d open, VmRSS %d kB\n", hold, a, l
	printf "kernel buffers of realtime'"'"'s sockets (ss -tm skmem r+t+f+w): %d kB with all open; with the slab, %d kB late in the hold\n", fk, k
	printf "machine-wide TCP memory (/proc/net/sockstat, server and client sockets): %d kB before, %d kB with all open\n", s0, s1
	per = a > 0 ? (l - b + k) / a : 0
	pp = a > 0 ? (l - b) / a : 0; pk = a > 0 ? k / a : 0; v = (a > 0 && per <= 10) ? "met" : "NOT met"
	printf "per connection late in the hold: process %.2f KB + kernel %.2f KB = %.2f KB (target <= 10 KB): %s\n", pp, pk, per, v
}'
rc=0
[ "${late_active:-0}" -ge 15000 ] || { echo "target >= 15000 connections held past a ping interval: NOT met (${late_active:-0})"; rc=1; }
awk -v a="${late_active:-0}" -v b="$base_rss" -v l="$late_rss" -v k="$late_sk" 'BEGIN { exit !(a > 0 && (l - b + k) / a <= 10) }' || rc=1
[ "${ready:-0}" -gt 0 ] || { echo "bench: no connection got its ready frame"; rc=1; }
held=$(cat "$SB_TEST_TMP"/client*.out | jq -s '[.[] | select(.phase == "done") | .still_open] | add')
echo "clients still holding at the end of the hold: ${held:-?} of $conns"
if [ "$ready" != "$conns" ]; then
	echo "shortfall: $((conns - ready)) connections got no ready frame within 15 s or were refused;" \
		"the server counted ${active:-?} open while the clients held $ready ready ones"
fi
if [ $rc != 0 ] || [ "$ready" != "$conns" ]; then
	for n in realtime messages; do
		echo "--- $n log (last lines)"
		tail -n 5 "$SB_TEST_TMP/logs/$n.log"
	done
fi
exit $rc
