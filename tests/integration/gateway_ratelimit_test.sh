#!/usr/bin/env bash
# Rate limits counted in chunks (services/gateway/ratelimit.c, docs/decisions.md "Rate limits"):
# with a limit of 1,000 a minute a Redis round trip claims 10 units of the user's window.
#   1. One gateway: exactly the limit is admitted (1,000 × 2xx, then 429 with Retry-After and
#      RateLimit-Remaining 0), the window's count in Redis is the limit, and it took 100 claims
#      (gateway_rate_limit_claims_total), not 1,000; the refusal after the limit costs none.
#   2. Two gateways on the same Redis, one user's requests alternating between them: never more
#      than the limit, at most (chunk - 1) fewer (the units the other gateway claimed and holds),
#      every request beyond them 429.
# stack: pg,redis
# labels: gateway,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"

limit=1000 chunk=10
rc=0
fail() { echo "FAIL: $*"; rc=1; }
sb_svc_ports gateway auth messages
sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000
sb_svc_start messages
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=$limit
sb_svc_wait_ready auth messages gateway || exit 1

# A second gateway on its own ports, same Redis and services; stopped with the others.
gw2_http=$(sb_free_port) gw2_ops=$(sb_free_port)
mapfile -t envs < <(sb_svc_env)
env "${envs[@]}" SB_RPC_URL="tcp://127.0.0.1:$(sb_free_port)" SB_OPS_PORT=$gw2_ops \
	SB_HTTP_PORT=$gw2_http SB_RATE_LIMIT_PER_MIN=$limit "$SB_BUILD_ROOT/bin/sb-gateway" \
	>>"$SB_TEST_TMP/logs/gateway2.log" 2>&1 &
SVC_PID[gateway2]=$!
sb_wait_http "http://127.0.0.1:$gw2_ops/ready" 30 || { echo "FAIL: gateway2 not ready"; exit 1; }
gw2=http://127.0.0.1:$gw2_http

creds=$SB_TEST_TMP/dev-credentials.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	{ echo "FAIL: seed-dev"; exit 1; }
cli() { env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" "$SB_BUILD_ROOT/bin/sb-auth" "$@"; }
for u in rl-one rl-two; do cli user create --tenant dev --name $u >/dev/null || { echo "FAIL: user $u"; exit 1; }; done
tok1=$(cli token issue --tenant dev --scopes "messages:read messages:write" --ttl 600 --user rl-one)
tok2=$(cli token issue --tenant dev --scopes "messages:read messages:write" --ttl 600 --user rl-two)
[ -n "$tok1" ] && [ -n "$tok2" ] || { echo "FAIL: sb-auth token issue"; exit 1; }
sub_of() { cut -d. -f2 <<<"$1" | tr '_-' '/+' | base64 -d 2>/dev/null | jq -r .sub; }
redis_count() { redis-cli -u "$SB_TEST_REDIS_URL" GET "sb:rl:default:$(sub_of "$1")"; }
claims() { # claims OPS_PORT: gateway_rate_limit_claims_total of that gateway
	curl -s "http://127.0.0.1:$1/metrics" | awk '$1 ~ /^(sb_)?gateway_rate_limit_claims_total$/ { print $2 }'
}

# burst TOKEN N GATEWAY...: N state-changing requests (a new conversation each) in one curl
# process with keep-alive, the i-th to GATEWAY[i mod count]; prints one status per line.
burst() {
	local tok=$1 n=$2 i cfg=$SB_TEST_TMP/burst.cfg
	shift 2
	local gws=("$@")
	: >"$cfg"
	for ((i = 0; i < n; i++)); do
		printf 'url = "%s/v1/conversations"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "{\\"kind\\":\\"group\\",\\"title\\":\\"rl %d\\",\\"member_ids\\":[]}"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nnext\n' \
			"${gws[$((i % ${#gws[@]}))]}" "$tok" "$i" >>"$cfg"
	done
	curl -s -K "$cfg"
}

# 1. One gateway: exact, in chunks.
c0=$(claims "${SVC_OPS[gateway]}")
mapfile -t st < <(burst "$tok1" $limit "$SB_GW")
c1=$(claims "${SVC_OPS[gateway]}")
ok=$(printf '%s\n' "${st[@]}" | grep -c '^2..$')
curl -s -o /dev/null -D "$SB_TEST_TMP/h" -w '%{http_code}' -H "Authorization: Bearer $tok1" \
	-H 'Content-Type: application/json' -d '{"kind":"group","title":"over","member_ids":[]}' \
	"$SB_GW/v1/conversations" >"$SB_TEST_TMP/over"
c2=$(claims "${SVC_OPS[gateway]}")
if [ "$ok" = $limit ] && [ "$(cat "$SB_TEST_TMP/over")" = 429 ] &&
	grep -qi '^retry-after: [1-9]' "$SB_TEST_TMP/h" && grep -qi '^ratelimit-remaining: 0' "$SB_TEST_TMP/h"; then
	echo "ok: one gateway admits exactly $limit, request $((limit + 1)) is 429 with Retry-After"
else
	fail "one gateway: $ok of $limit admitted, then $(cat "$SB_TEST_TMP/over"); headers: $(tr -d '\r' <"$SB_TEST_TMP/h" | grep -i '^ratelimit\|^retry' | tr '\n' ' ')"
fi
count=$(redis_count "$tok1")
[ "$count" = $limit ] && echo "ok: the window's count in Redis is $count" ||
	fail "the window's count in Redis is $count, want $limit"
if [ -n "$c0" ] && [ $((c1 - c0)) = $((limit / chunk)) ] && [ "$c2" = "$c1" ]; then
	echo "ok: $((c1 - c0)) Redis claims for $limit requests, none for the refusal"
else
	fail "claims: $c0 -> $c1 for $limit requests (want +$((limit / chunk))), $c2 after the refusal"
fi

# 2. Two gateways, one user: never above the limit, at most chunk - 1 below it.
mapfile -t st < <(burst "$tok2" $((limit + 100)) "$SB_GW" "$gw2")
ok=$(printf '%s\n' "${st[@]}" | grep -c '^2..$')
limited=$(printf '%s\n' "${st[@]}" | grep -c '^429$')
count=$(redis_count "$tok2")
if [ "$ok" -le $limit ] && [ "$ok" -ge $((limit - chunk + 1)) ] && [ $((ok + limited)) = $((limit + 100)) ] &&
	[ "$count" -le $((limit + 2 * chunk)) ]; then
	echo "ok: two gateways admitted $ok of $((limit + 100)) (limit $limit), the rest 429; Redis count $count"
else
	fail "two gateways: $ok admitted, $limited limited of $((limit + 100)) (want $((limit - chunk + 1))..$limit, the rest 429); Redis count $count"
fi
exit $rc
