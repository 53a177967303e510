#!/usr/bin/env bash
# gateway_auth_bench.sh: the cost of access-token checks at the gateway (issue 3). Requests per
# second of GET /v1/me through a gateway with auth on, against a second gateway with
# SB_AUTH_ENABLED=false, in the same run, in alternating rounds.
# Target: auth costs at most 15% of the throughput of the same route with auth off, compared
# on the medians of the distinct-token rounds; the script exits 1 when it is missed.
#
# What each side does:
#   auth on, distinct tokens (the verdict): SB_BENCH_TOKENS (10,000) users of one tenant
#     ("authbench", seeded in SQL), one access token each from `sb-auth token issue --users`
#     (same issuer and audience as the gateway). wrk sends them in turn, one per request
#     (bench/gateway_auth_tokens.lua), so the gateway's verified-token cache (2,048 slots,
#     services/gateway/authn.c) cannot answer most of them: each request costs the SHA-256 of
#     the token and, on a miss, the ES256 signature and claims check; then, always, the lookup
#     in the local revocation set (kept current from Redis by a watcher thread).
#   auth on, one token (information only, labelled): the same script with a file of one token,
#     so nearly every check is a cache hit (a hash); this is what the benchmark measured before.
#   auth off: the same script and the same distinct-token file against the second gateway,
#     which ignores the Authorization header (no verification, no revocation watcher). Both
#     gateways get byte-for-byte the same kind of requests from the same client code.
# The cache hit rate of each auth round comes from the gateway's own counters,
# gateway_token_cache_total{result="hit"|"miss"} on its ops /metrics, read before and after the
# round; their sum is checked against the requests wrk completed.
# wrk: -t1 -c SB_BENCH_CONNS (32) -d SB_BENCH_SECONDS (8) s per round, SB_BENCH_ROUNDS (3)
# rounds of (distinct, off, one token; even rounds in the reverse order), after a 2-s warm-up of
# each gateway. Any response with
# a status above 399 (wrk's "Non-2xx or 3xx responses") or any socket error fails the run.
# Also printed: p99 and the gateway's CPU (% of one core) per round, the load average.
# Run by `make bench` (bench/run.sh) or directly: bash bench/gateway_auth_bench.sh [BUILD_DIR]
# Starts its own PostgreSQL and Redis (tests/lib/with-stack.sh), auth, messages and two gateways.
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
ntok=${SB_BENCH_TOKENS:-10000}
ttl=3600
lua=$root/bench/gateway_auth_tokens.lua
t_start=$(date +%s)
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

sb_svc_ports gateway auth messages
SVC_HTTP[gw_noauth]=$(sb_free_port) SVC_OPS[gw_noauth]=$(sb_free_port) SVC_RPC[gw_noauth]=$(sb_free_port)
sb_svc_start auth SB_LOG_LEVEL=warn SB_AUTH_ACCESS_TTL_S=$ttl
sb_svc_start messages SB_LOG_LEVEL=warn
sb_svc_start gateway SB_LOG_LEVEL=warn
mapfile -t envs < <(sb_svc_env)
env "${envs[@]}" SB_RPC_URL=tcp://127.0.0.1:${SVC_RPC[gw_noauth]} SB_OPS_PORT=${SVC_OPS[gw_noauth]} \
	SB_HTTP_PORT=${SVC_HTTP[gw_noauth]} SB_AUTH_ENABLED=false SB_LOG_LEVEL=warn \
	"$SB_BUILD_ROOT/bin/sb-gateway" >"$SB_TEST_TMP/logs/gw_noauth.log" 2>&1 &
SVC_PID[gw_noauth]=$!
sb_svc_wait_ready auth messages gateway gw_noauth || exit 1

# Users and their tokens: one token per user, signed by the active key, with the gateway's
# issuer (sb_svc_env) and the default audience.
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
q -v n="$ntok" <<'SQL' || { echo "bench: seeding users failed"; exit 1; }
INSERT INTO auth.tenants (id, name) VALUES (gen_random_uuid(), 'authbench');
INSERT INTO auth.users (id, tenant_id, name)
	SELECT gen_random_uuid(), t.id, 'ab' || g FROM auth.tenants t, generate_series(1, :n) g
	WHERE t.name = 'authbench';
SQL
q -c "SELECT u.name FROM auth.users u JOIN auth.tenants t ON t.id = u.tenant_id WHERE t.name = 'authbench' ORDER BY u.name" >"$SB_TEST_TMP/users" ||
	{ echo "bench: could not list the users"; exit 1; }
env "${envs[@]}" SB_AUTH_ACCESS_TTL_S=$ttl SB_LOG_LEVEL=warn "$SB_BUILD_ROOT/bin/sb-auth" token issue \
	--tenant authbench --scopes "messages:read" --ttl $ttl --users "$SB_TEST_TMP/users" \
	>"$SB_TEST_TMP/tokens" 2>"$SB_TEST_TMP/token_issue.err" ||
	{ echo "bench: sb-auth token issue failed: $(cat "$SB_TEST_TMP/token_issue.err")"; exit 1; }
[ "$(sort -u "$SB_TEST_TMP/tokens" | wc -l)" = "$ntok" ] ||
	{ echo "bench: expected $ntok distinct tokens, got $(sort -u "$SB_TEST_TMP/tokens" | wc -l)"; exit 1; }
head -1 "$SB_TEST_TMP/tokens" >"$SB_TEST_TMP/one_token"
tok=$(cat "$SB_TEST_TMP/one_token")
for t in "$tok" "$(tail -1 "$SB_TEST_TMP/tokens")"; do
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$SB_GW/v1/me")" = 200 ] ||
		{ echo "bench: an issued token was not accepted by the gateway"; exit 1; }
done

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime+stime in clock ticks
hz=$(getconf CLK_TCK)
cache() { # hit miss of the auth gateway's verified-token cache
	curl -s "http://127.0.0.1:${SVC_OPS[gateway]}/metrics" | awk '
		/^gateway_token_cache_total\{result="hit"\}/ { h = $2 }
		/^gateway_token_cache_total\{result="miss"\}/ { m = $2 }
		END { printf "%d %d\n", h, m }'
}
failed=0
# run NAME URL PID TOKENS_FILE: prints "name req/s p99 cpu% requests errors hit miss"
run() {
	local name=$1 url=$2 pid=$3 toks=$4
	local c0 c1 out rps p99 reqs non2xx sockerr h0 m0 h1 m1
	read -r h0 m0 < <(cache)
	c0=$(cpu_of "$pid")
	out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$lua" "$url" -- "$toks" 2>&1)
	c1=$(cpu_of "$pid")
	read -r h1 m1 < <(cache)
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	p99=$(awk '/ 99%/ {print $2}' <<<"$out")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
	sockerr=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out")
	[ -n "$rps" ] || { echo "bench: wrk failed: $out" >&2; rps=0; }
	echo "$name ${rps:-0} ${p99:--} $(awk -v a="$c0" -v b="$c1" -v h="$hz" -v s="$secs" 'BEGIN{printf "%.0f", (b-a)/h/s*100}')" \
		"${reqs:-0} $((${non2xx:-0} + ${sockerr:-0})) $((h1 - h0)) $((m1 - m0))"
}

# Warm-up (not counted): JWKS fetch, connections, caches, both gateways.
wrk -t1 -c"$conns" -d2s -s "$lua" "$SB_GW/v1/me" -- "$SB_TEST_TMP/tokens" >/dev/null 2>&1
wrk -t1 -c"$conns" -d2s -s "$lua" "http://127.0.0.1:${SVC_HTTP[gw_noauth]}/v1/me" -- "$SB_TEST_TMP/tokens" >/dev/null 2>&1

echo "GET /v1/me, wrk -t1 -c$conns -d${secs}s -s bench/gateway_auth_tokens.lua, $rounds rounds of" \
	"(auth on with $ntok distinct tokens, auth off, auth on with one token)"
echo "gw_cpu%: the serving gateway's CPU in % of one core; errors: status > 399 plus socket errors;"
echo "hit%: share of the round's token checks answered by the verified-token cache (gateway counters)"
hdr='%-14s %10s %9s %7s %9s %7s %9s %9s %6s %s\n'
printf "$hdr" mode req/s p99 gw_cpu% requests errors cache_hit cache_miss hit% load
dist_rps=() noauth_rps=() one_rps=() hits=0 misses=0 checks_bad=0
report() { # the fields of run, appended to the table; checks errors and counter sums
	local n=$1 r=$2 p=$3 c=$4 reqs=$5 errs=$6 h=$7 m=$8 hp="-"
	if [ "$n" != auth_off ]; then
		hp=$(awk -v h="$h" -v m="$m" 'BEGIN { printf "%.1f", (h + m) ? h / (h + m) * 100 : 0 }')
		# every completed request was checked once (wrk may leave up to -c unanswered at the end)
		[ $((h + m)) -ge "$reqs" ] && [ $((h + m)) -le $((reqs + conns)) ] || checks_bad=1
	else
		h=- m=-
	fi
	printf "$hdr" "$n" "$r" "$p" "$c" "$reqs" "$errs" "$h" "$m" "$hp" "$(cut -d' ' -f1 /proc/loadavg)"
	[ "$errs" = 0 ] || failed=1
}
one_mode() { # distinct | off | one: one measured round of that mode, reported and recorded
	local n r p c reqs errs h m
	case $1 in
	distinct) read -r n r p c reqs errs h m < <(run auth_distinct "$SB_GW/v1/me" "${SVC_PID[gateway]}" "$SB_TEST_TMP/tokens") ;;
	off) read -r n r p c reqs errs h m < <(run auth_off "http://127.0.0.1:${SVC_HTTP[gw_noauth]}/v1/me" "${SVC_PID[gw_noauth]}" "$SB_TEST_TMP/tokens") ;;
	one) read -r n r p c reqs errs h m < <(run auth_one_token "$SB_GW/v1/me" "${SVC_PID[gateway]}" "$SB_TEST_TMP/one_token") ;;
	esac
	report "$n" "$r" "$p" "$c" "$reqs" "$errs" "$h" "$m"
	case $1 in
	distinct) dist_rps+=("$r") hits=$((hits + h)) misses=$((misses + m)) ;;
	off) noauth_rps+=("$r") ;;
	one) one_rps+=("$r") ;;
	esac
}
# Odd rounds distinct, off, one; even rounds the reverse: no mode always runs first or last.
for i in $(seq 1 "$rounds"); do
	if [ $((i % 2)) = 1 ]; then order="distinct off one"; else order="one off distinct"; fi
	for mode in $order; do one_mode "$mode"; done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
md=$(median "${dist_rps[@]}") mn=$(median "${noauth_rps[@]}") mo=$(median "${one_rps[@]}")
echo
echo "summary (medians of $rounds rounds):"
awk -v d="$md" -v n="$mn" -v o="$mo" -v h="$hits" -v m="$misses" 'BEGIN {
	printf "  auth on, distinct tokens: %.0f req/s, cache hit rate %.1f%% (%d hits, %d misses): auth costs %.1f%%\n", d, (h + m) ? h / (h + m) * 100 : 0, h, m, (1 - d / n) * 100
	printf "  auth off:                 %.0f req/s\n", n
	printf "  auth on, one token (information, cache hits): %.0f req/s: costs %.1f%%\n", o, (1 - o / n) * 100 }'
[ "$checks_bad" = 0 ] || echo "  WARNING: cache counters do not add up to the requests wrk completed in some round"
verdict=$(awk -v d="$md" -v n="$mn" 'BEGIN { print (n > 0 && d > 0 && 1 - d / n <= 0.15) ? "MET" : "NOT MET" }')
echo "  target: auth (distinct tokens) costs <= 15%: $verdict"
[ "$failed" = 0 ] || echo "  FAILED: some responses had a status above 399 or socket errors (see the errors column)"
echo "  whole benchmark: $(($(date +%s) - t_start)) s; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$verdict" = MET ] && [ "$failed" = 0 ] && [ "$checks_bad" = 0 ]
