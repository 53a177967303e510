#!/usr/bin/env bash
# gateway_auth_bench.sh: requests per second of GET /v1/me through the gateway with access-token
# verification on (JWT signature + claims + revocation lookup in Redis), against the same route
# with auth switched off (SB_AUTH_ENABLED=false), in the same run, alternating rounds.
# Target (issue 3): auth costs at most 15%. Run by `make bench` (bench/run.sh) or directly:
#   bash bench/gateway_auth_bench.sh [BUILD_DIR]
# Starts its own PostgreSQL and Redis (tests/lib/with-stack.sh), auth and two gateways.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_BUILD_ROOT=${1:-${SB_BUILD_ROOT:-$root/build}}
export SB_SOURCE_ROOT=$root
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,redis -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
secs=${SB_BENCH_SECONDS:-8}
rounds=${SB_BENCH_ROUNDS:-3}
conns=${SB_BENCH_CONNS:-32}

sb_svc_ports gateway auth messages
SVC_HTTP[gw_noauth]=$(sb_free_port) SVC_OPS[gw_noauth]=$(sb_free_port) SVC_RPC[gw_noauth]=$(sb_free_port)
sb_svc_start auth SB_LOG_LEVEL=warn
sb_svc_start messages SB_LOG_LEVEL=warn
sb_svc_start gateway SB_LOG_LEVEL=warn
mapfile -t envs < <(sb_svc_env)
env "${envs[@]}" SB_RPC_URL=tcp://127.0.0.1:${SVC_RPC[gw_noauth]} SB_OPS_PORT=${SVC_OPS[gw_noauth]} \
	SB_HTTP_PORT=${SVC_HTTP[gw_noauth]} SB_AUTH_ENABLED=false SB_LOG_LEVEL=warn \
	"$SB_BUILD_ROOT/bin/sb-gateway" >"$SB_TEST_TMP/logs/gw_noauth.log" 2>&1 &
SVC_PID[gw_noauth]=$!
sb_svc_wait_ready auth messages gateway gw_noauth || exit 1

creds=$SB_TEST_TMP/creds.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null || exit 1
id=$(jq -r .alice.client_id "$creds") secret=$(jq -r .alice.client_secret "$creds")
tok=$(curl -s -u "$id:$secret" -d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$SB_GW/v1/me")" = 200 ] ||
	{ echo "bench: token not accepted"; exit 1; }

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime+stime in clock ticks
hz=$(getconf CLK_TCK)
run() { # name url [header]
	local name=$1 url=$2 pid=$3
	shift 3
	local c0 c1 out rps
	c0=$(cpu_of "$pid")
	out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" "$url")
	c1=$(cpu_of "$pid")
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	p99=$(awk '/ 99%/ {print $2}' <<<"$out")
	echo "$name $rps $p99 $(awk -v a="$c0" -v b="$c1" -v h="$hz" -v s="$secs" 'BEGIN{printf "%.0f", (b-a)/h/s*100}')"
}
echo "GET /v1/me, wrk -t1 -c$conns -d${secs}s, $rounds alternating rounds; gateway CPU % of one core"
printf '%-8s %10s %10s %8s\n' mode req/s p99 gw_cpu%
auth_rps=() noauth_rps=()
for i in $(seq 1 "$rounds"); do
	read -r n r p c < <(run auth "$SB_GW/v1/me" "${SVC_PID[gateway]}" -H "Authorization: Bearer $tok")
	printf '%-8s %10s %10s %8s\n' "$n" "$r" "$p" "$c"
	auth_rps+=("$r")
	read -r n r p c < <(run noauth "http://127.0.0.1:${SVC_HTTP[gw_noauth]}/v1/me" "${SVC_PID[gw_noauth]}")
	printf '%-8s %10s %10s %8s\n' "$n" "$r" "$p" "$c"
	noauth_rps+=("$r")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ma=$(median "${auth_rps[@]}") mn=$(median "${noauth_rps[@]}")
awk -v a="$ma" -v n="$mn" 'BEGIN { printf "median: auth %.0f req/s, no auth %.0f req/s: auth costs %.1f%% (target <= 15%%)\n", a, n, (1 - a / n) * 100 }'
