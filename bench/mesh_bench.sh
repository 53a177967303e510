#!/usr/bin/env bash
# mesh_bench.sh BUILD_DIR: what one RPC hop through two mesh sidecars adds, against HAProxy
# (Debian's 2.6) and stunnel (Debian's 5.68) doing the same mTLS hop, in the same run.
#
# Every path carries the same RPC (mesh-rpc: sb_rpc client, 200-byte payload, echo server on
# the services' runtime) over one nng connection:
#   direct    client -> server
#   sidecar   client -> sb-sidecar (caller, outbound) -mTLS 1.3-> sb-sidecar (callee) -> server
#   haproxy   client -> haproxy (mode tcp, ssl client cert, verify required, verifyhost)
#                    -mTLS 1.3-> haproxy (ssl, verify required, client cert) -> server
#   stunnel   client -> stunnel (client, cert, verifyChain, checkHost) -mTLS 1.3-> stunnel
#                    (verifyChain, requireCert) -> server
# Each proxy is one process per side with one worker thread (HAProxy nbthread 1; stunnel's
# thread per connection, and there is one connection). The sidecars also parse every frame
# and keep per-method metrics and the policy check; HAProxy and stunnel only relay bytes, and
# check a DNS name where the sidecars check the SPIFFE URI SAN.
#
# Two loads per path, ROUNDS (5) rounds, paths alternating inside a round so that noise from
# the other users of the machine falls on all alike; the median round is reported:
#   fixed      RATE (10000) RPC/s open loop for MESH_BENCH_SECONDS (3): p50 and p99 latency,
#              completed/s
#   saturated  as fast as 64 outstanding calls go for as long: throughput
# Added latency is the path's p50/p99 minus direct's in the same round. Also printed: the CPU
# time both proxy processes of a path used per RPC at the fixed rate (from /proc/PID/stat), a
# figure the other users of a shared machine disturb less than latency and throughput.
# Targets: sidecar adds p50 < 0.5 ms and p99 < 2 ms at RATE, its saturated throughput is at
# least HAProxy's, and each sidecar's peak RSS is under 10 MB. Exit 1 on a miss, 2 when a path
# cannot run.
set -uo pipefail
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_SOURCE_ROOT=$root SB_BUILD_ROOT=$build
. "$root/tools/stack.sh"
RATE=${RATE:-10000}
SECONDS_EACH=${MESH_BENCH_SECONDS:-3}
ROUNDS=${ROUNDS:-5}
tmp=$(mktemp -d /tmp/mesh-bench.XXXXXX)
MESH_LOGS=$tmp/logs
. "$root/tests/lib/mesh.sh"
pids=()
cleanup() {
	mesh_stop_all
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
die() {
	echo "mesh_bench: $*" >&2
	exit 2
}
for t in haproxy stunnel; do command -v $t >/dev/null || die "$t missing (bash tools/install-deps.sh)"; done

mesh_certs "$tmp/certs" gateway messages || die "mesh-ca"
c=$tmp/certs
cat "$c/gateway.pem" "$c/gateway.key" >"$c/gateway.bundle"
cat "$c/messages.pem" "$c/messages.key" >"$c/messages.bundle"

srv=$(sb_free_port)
"$build/bin/mesh-rpc" serve "tcp://127.0.0.1:$srv" >/dev/null 2>&1 &
pids+=($!)

# sidecars
in_port=$(sb_free_port)
mesh_port=$(sb_free_port)
mesh_sidecar callee messages "$c" SB_MESH_INBOUND="127.0.0.1:$in_port" \
	SB_MESH_TARGET="127.0.0.1:$srv" SB_MESH_ALLOW="gateway=bench.*" SB_LOG_LEVEL=warn
mesh_sidecar caller gateway "$c" SB_MESH_OUTBOUND="messages=127.0.0.1:$mesh_port>127.0.0.1:$in_port" \
	SB_LOG_LEVEL=warn
mesh_wait_ready callee caller || die "sidecars not ready"

# haproxy
hp_in=$(sb_free_port)
hp_mid=$(sb_free_port)
cat >"$tmp/hp-callee.cfg" <<EOF
global
	nbthread 1
	ssl-default-bind-options ssl-min-ver TLSv1.3
	ssl-default-server-options ssl-min-ver TLSv1.3
defaults
	mode tcp
	timeout connect 2s
	timeout client 1h
	timeout server 1h
frontend mtls
	bind 127.0.0.1:$hp_mid ssl crt $c/messages.bundle ca-file $c/ca.pem verify required
	default_backend svc
backend svc
	server s1 127.0.0.1:$srv
EOF
cat >"$tmp/hp-caller.cfg" <<EOF
global
	nbthread 1
	ssl-default-server-options ssl-min-ver TLSv1.3
defaults
	mode tcp
	timeout connect 2s
	timeout client 1h
	timeout server 1h
frontend local
	bind 127.0.0.1:$hp_in
	default_backend up
backend up
	server m1 127.0.0.1:$hp_mid ssl crt $c/gateway.bundle ca-file $c/ca.pem verify required verifyhost messages
EOF
declare -A PROCS
for side in callee caller; do
	haproxy -f "$tmp/hp-$side.cfg" -db >"$tmp/logs/haproxy-$side.log" 2>&1 &
	pids+=($!)
	PROCS[haproxy]+="$! "
done

# stunnel
st_in=$(sb_free_port)
st_mid=$(sb_free_port)
cat >"$tmp/st-callee.conf" <<EOF
foreground = yes
pid =
[mtls]
accept = 127.0.0.1:$st_mid
connect = 127.0.0.1:$srv
cert = $c/messages.pem
key = $c/messages.key
CAfile = $c/ca.pem
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.3
EOF
cat >"$tmp/st-caller.conf" <<EOF
foreground = yes
pid =
[up]
client = yes
accept = 127.0.0.1:$st_in
connect = 127.0.0.1:$st_mid
cert = $c/gateway.pem
key = $c/gateway.key
CAfile = $c/ca.pem
verifyChain = yes
checkHost = messages
sslVersionMin = TLSv1.3
EOF
for side in callee caller; do
	stunnel "$tmp/st-$side.conf" >"$tmp/logs/stunnel-$side.log" 2>&1 &
	pids+=($!)
	PROCS[stunnel]+="$! "
done
PROCS[sidecar]="${MESH_PID[caller]} ${MESH_PID[callee]}"
PROCS[direct]=""
sleep 1

declare -A URL=([direct]=$srv [sidecar]=$mesh_port [haproxy]=$hp_in [stunnel]=$st_in)
paths=(direct sidecar haproxy stunnel)
for p in "${paths[@]}"; do
	r=$("$build/bin/mesh-rpc" call "tcp://127.0.0.1:${URL[$p]}" bench.Echo 20 2000 2>&1)
	[ "$r" = "20 OK" ] || die "path $p does not carry RPC: $r ($(tail -3 "$tmp"/logs/*"${p}"* 2>/dev/null))"
done

load() { # load PATH RATE CONC -> "p50 p99 rps errors"; dies when the load did not run
	local line
	line=$("$build/bin/mesh-rpc" load "tcp://127.0.0.1:${URL[$1]}" bench.Echo "$2" "$SECONDS_EACH" "$3")
	[[ $line =~ ok=([0-9]+)\ errors=([0-9]+)\ .*rps=([0-9.]+)\ p50_ms=([0-9.]+)\ p99_ms=([0-9.]+) ]] ||
		die "path $1: unexpected load output: $line"
	[ "${BASH_REMATCH[1]}" -gt 0 ] || die "path $1: no call completed: $line"
	echo "${BASH_REMATCH[4]} ${BASH_REMATCH[5]} ${BASH_REMATCH[3]} ${BASH_REMATCH[2]}"
}
# cpu_ticks PATH: user+system clock ticks used so far by the path's two proxy processes.
cpu_ticks() {
	local pid t=0
	for pid in ${PROCS[$1]}; do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
	done
	echo $t
}
hz=$(getconf CLK_TCK)
declare -A P50 P99 RPS MAXRPS CPU
for round in $(seq 1 "$ROUNDS"); do
	for p in "${paths[@]}"; do
		t0=$(cpu_ticks "$p")
		fixed=$(load "$p" "$RATE" 256) || exit 2
		t1=$(cpu_ticks "$p")
		sat=$(load "$p" 1000000 64) || exit 2
		read -r p50 p99 rps errs <<<"$fixed"
		read -r _ _ max _ <<<"$sat"
		# CPU of both proxies per RPC at the fixed rate, in microseconds (warm-up included).
		us=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$rps" -v s="$SECONDS_EACH" \
			'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / (n * s) : 0) }')
		CPU[$p]+="$us "
		P50[$p]+="$p50 "
		P99[$p]+="$p99 "
		RPS[$p]+="$rps "
		MAXRPS[$p]+="$max "
		printf 'round %d %-8s at %d/s: p50 %s ms, p99 %s ms, %s/s done (%s errors), proxies %s CPU-us/RPC; saturated %s/s\n' \
			"$round" "$p" "$RATE" "$p50" "$p99" "$rps" "$errs" "$us" "$max"
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
rss_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
rss_caller=$(rss_kb "${MESH_PID[caller]}")
rss_callee=$(rss_kb "${MESH_PID[callee]}")
rss_max=$((rss_caller > rss_callee ? rss_caller : rss_callee))

echo
printf '%-8s %10s %10s %12s %12s %14s %16s\n' path p50_ms p99_ms added_p50 added_p99 saturated_rps cpu_us_per_rpc
d50=$(echo "${P50[direct]}" | median)
d99=$(echo "${P99[direct]}" | median)
declare -A A50 A99 M
for p in "${paths[@]}"; do
	m50=$(echo "${P50[$p]}" | median)
	m99=$(echo "${P99[$p]}" | median)
	M[$p]=$(echo "${MAXRPS[$p]}" | median)
	A50[$p]=$(awk -v a="$m50" -v b="$d50" 'BEGIN { printf "%.3f", a - b }')
	A99[$p]=$(awk -v a="$m99" -v b="$d99" 'BEGIN { printf "%.3f", a - b }')
	printf '%-8s %10s %10s %12s %12s %14s %16s\n' "$p" "$m50" "$m99" "${A50[$p]}" "${A99[$p]}" "${M[$p]}" \
		"$(echo "${CPU[$p]}" | median)"
done
echo "sidecar peak RSS (VmHWM): caller ${rss_caller} kB, callee ${rss_callee} kB"
echo "CPU per RPC of the two proxies at $RATE/s (information, no target): sidecar $(echo "${CPU[sidecar]}" | median) us, HAProxy $(echo "${CPU[haproxy]}" | median) us, stunnel $(echo "${CPU[stunnel]}" | median) us"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

miss=0
verdict() { # verdict NAME OK
	if [ "$2" = 1 ]; then echo "MET    $1"; else echo "MISSED $1"; miss=1; fi
}
verdict "added p50 ${A50[sidecar]} ms < 0.5 ms" "$(awk -v a="${A50[sidecar]}" 'BEGIN { print (a < 0.5) }')"
verdict "added p99 ${A99[sidecar]} ms < 2 ms" "$(awk -v a="${A99[sidecar]}" 'BEGIN { print (a < 2) }')"
verdict "throughput ${M[sidecar]}/s >= HAProxy ${M[haproxy]}/s" \
	"$(awk -v a="${M[sidecar]}" -v b="${M[haproxy]}" 'BEGIN { print (a >= b) }')"
verdict "sidecar RSS ${rss_max} kB < 10 MB" "$((rss_max < 10240 ? 1 : 0))"
exit $miss
