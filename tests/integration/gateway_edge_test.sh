#!/usr/bin/env bash
# The gateway edge against the real auth and messages services: forged and expired tokens,
# revocation (pub/sub to the gateway's local set; scanned at a second gateway's start; kept
# through a Redis outage and resynced), scopes, rate limits, body/route/method errors, key
# rotation without a restart (tests/edge/edge.test.mjs, jose from npm), and the audit trail of
# a wrong client secret. With curl: JSON nested deeper than the limit, the rate limit counted
# over requests that succeeded, problem documents carrying the request id, and TLS 1.2 refused
# with a protocol-version alert.
# stack: pg,redis
# labels: auth,e2e
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
[ -d "$root/tests/edge/node_modules/jose" ] || { echo "FAIL: tests/edge/node_modules missing (tools/install-deps.sh)"; exit 1; }

rate=5
sb_svc_ports gateway auth messages
sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000
sb_svc_start messages
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=$rate SB_HTTP_MAX_BODY_BYTES=65536 SB_JSON_MAX_DEPTH=16 \
	SB_JWKS_MIN_REFRESH_MS=500
sb_svc_wait_ready auth messages gateway || exit 1

creds=$SB_TEST_TMP/dev-credentials.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	{ echo "FAIL: seed-dev"; exit 1; }

# A second gateway, started by the test itself (scan of existing revocations at start).
gw2_env=$SB_TEST_TMP/gateway2.env
{
	sb_svc_env
	echo "SB_RPC_URL=tcp://127.0.0.1:$(sb_free_port)"
	echo "SB_OPS_PORT=$(sb_free_port)"
	echo "SB_HTTP_PORT=$(sb_free_port)"
} >"$gw2_env"

cd "$root/tests/edge" || exit 1
SB_GW=$SB_GW SB_CREDENTIALS=$creds SB_AUTH_BIN=$SB_BUILD_ROOT/bin/sb-auth SB_PG_DSN=$SB_TEST_PG_DSN \
	SB_TEST_RATE_LIMIT=$rate SB_GW_OPS=http://127.0.0.1:${SVC_OPS[gateway]} \
	SB_REDIS_URL=$SB_TEST_REDIS_URL SB_GW_BIN=$SB_BUILD_ROOT/bin/sb-gateway SB_GW2_ENV=$gw2_env \
	SB_GW2_LOG=$SB_TEST_TMP/logs/gateway2.log timeout 120 node --test edge.test.mjs
rc=$?

# Curl checks, each a user's view, with tokens from the operator CLI for two fresh users (each
# with its own rate-limit window): edge-rl for the rate limit alone, edge-curl for the rest.
cli() {
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" "$SB_BUILD_ROOT/bin/sb-auth" "$@"
}
fail() { echo "FAIL: $*"; rc=1; }
issue() { cli token issue --tenant dev --scopes "$2" --ttl 600 --user "$1"; }
for u in edge-rl edge-curl; do
	cli user create --tenant dev --name $u >/dev/null || fail "sb-auth user create $u"
done
tok_rl=$(issue edge-rl "messages:read messages:write")
tok_rw=$(issue edge-curl "messages:read messages:write")
tok_wo=$(issue edge-curl "messages:write")
[ -n "$tok_rl" ] && [ -n "$tok_rw" ] && [ -n "$tok_wo" ] || fail "sb-auth token issue"

# post PATH BODY [TOKEN]: POSTs a JSON body (X-Request-Id $rid); prints the status; the body
# goes to $SB_TEST_TMP/resp, the head to $SB_TEST_TMP/resp.h.
post() {
	curl -s -o "$SB_TEST_TMP/resp" -D "$SB_TEST_TMP/resp.h" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer ${3:-$tok_rw}" -H 'Content-Type: application/json' \
		-H "X-Request-Id: $rid" --data-binary "$2" "$SB_GW$1"
}

# Nesting: an object (the body a route expects) nested one level deeper than SB_JSON_MAX_DEPTH
# (16) is refused for its depth, naming it; at the limit exactly it is not refused for depth.
deep() { # deep N: a conversation request whose extra member nests objects N levels in all
	local open='' close='' i
	for ((i = 2; i < $1; i++)); do open+='{"x":'; close+='}'; done
	echo "{\"kind\":\"group\",\"x\":$open{}$close}"
}
rid=edge-deep-17
st=$(post /v1/conversations "$(deep 17)")
reason=$(jq -r '[.errors[]?.reason] | join(";")' "$SB_TEST_TMP/resp" 2>/dev/null)
if [ "$st" = 400 ] && [[ $reason == *"nesting deeper than 16 levels"* ]] &&
	[ "$(jq -r .request_id "$SB_TEST_TMP/resp")" = $rid ]; then
	echo "ok: an object nested 17 levels deep is refused for its depth"
else
	fail "17 levels: status $st, body $(cat "$SB_TEST_TMP/resp")"
fi
rid=edge-deep-16
st=$(post /v1/conversations "$(deep 16)")
if grep -q 'nesting deeper' "$SB_TEST_TMP/resp"; then
	fail "16 levels (the limit) refused for depth: status $st, body $(cat "$SB_TEST_TMP/resp")"
fi

# Rate limit: the first SB_RATE_LIMIT_PER_MIN state-changing requests succeed (2xx, not merely
# "not 429"), the next is 429 with Retry-After, RateLimit-Remaining 0 and the request id.
statuses=()
for ((i = 0; i <= rate; i++)); do
	rid=edge-rl-$i
	statuses+=("$(post /v1/conversations "{\"kind\":\"group\",\"title\":\"rl $i\",\"member_ids\":[]}" "$tok_rl")")
done
ok=1
for ((i = 0; i < rate; i++)); do [[ ${statuses[$i]} == 2?? ]] || ok=0; done
if [ $ok = 1 ] && [ "${statuses[$rate]}" = 429 ] &&
	grep -qi '^retry-after: [1-9]' "$SB_TEST_TMP/resp.h" &&
	grep -qi '^ratelimit-remaining: 0' "$SB_TEST_TMP/resp.h" &&
	[ "$(jq -r .request_id "$SB_TEST_TMP/resp")" = "edge-rl-$rate" ]; then
	echo "ok: $rate requests succeed, request $((rate + 1)) is 429"
else
	fail "rate limit: statuses ${statuses[*]} (want $rate × 2xx, then 429); last: $(cat "$SB_TEST_TMP/resp")"
fi

# Every problem document carries the request id, the same as X-Request-Id (404, 405, 401, 403
# are built in different places of the gateway).
problem() { # problem WANT_STATUS CURL_ARGS...: checks status, type, request_id
	local want=$1 st
	shift
	rid=edge-problem-$want
	st=$(curl -s -o "$SB_TEST_TMP/resp" -D "$SB_TEST_TMP/resp.h" -w '%{http_code}' \
		-H "X-Request-Id: $rid" "$@")
	if [ "$st" = "$want" ] && grep -qi '^content-type: application/problem+json' "$SB_TEST_TMP/resp.h" &&
		grep -qi "^x-request-id: $rid" "$SB_TEST_TMP/resp.h" &&
		[ "$(jq -r '.request_id + " " + (.status | tostring)' "$SB_TEST_TMP/resp")" = "$rid $want" ]; then
		echo "ok: $want problem carries the request id"
	else
		fail "$want problem: status $st, body $(cat "$SB_TEST_TMP/resp")"
	fi
}
problem 404 "$SB_GW/v1/nothing-here"
problem 405 -X PUT "$SB_GW/v1/me"
problem 401 "$SB_GW/v1/me"
problem 401 -H "Authorization: Bearer not.a.token" "$SB_GW/v1/me"
problem 403 -H "Authorization: Bearer $tok_wo" "$SB_GW/v1/conversations"

# TLS 1.3 termination from certificate files: a second gateway with a throwaway certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -days 1 -keyout "$SB_TEST_TMP/key.pem" \
	-out "$SB_TEST_TMP/cert.pem" 2>/dev/null || { echo "FAIL: openssl req"; rc=1; }
SVC_RPC[gateway_tls]=$(sb_free_port)
SVC_OPS[gateway_tls]=$(sb_free_port)
tls_port=$(sb_free_port)
env DATABASE_URL=$SB_TEST_PG_DSN REDIS_URL=$SB_TEST_REDIS_URL SB_AUTH_RPC_URL=tcp://127.0.0.1:${SVC_RPC[auth]} \
	SB_MESSAGES_RPC_URL=tcp://127.0.0.1:${SVC_RPC[messages]} SB_RPC_URL=tcp://127.0.0.1:${SVC_RPC[gateway_tls]} \
	SB_OPS_PORT=${SVC_OPS[gateway_tls]} SB_HTTP_PORT=$tls_port SB_HTTP_TLS_CERT_FILE=$SB_TEST_TMP/cert.pem \
	SB_HTTP_TLS_KEY_FILE=$SB_TEST_TMP/key.pem "$SB_BUILD_ROOT/bin/sb-gateway" >"$SB_TEST_TMP/logs/gateway_tls.log" 2>&1 &
tls_pid=$!
sb_wait_port 127.0.0.1 "$tls_port" 20
hdr=$(curl -s --tlsv1.3 --cacert "$SB_TEST_TMP/cert.pem" -D - -o /dev/null "https://127.0.0.1:$tls_port/v1/me")
if grep -q '^HTTP/1.1 401' <<<"$hdr" && grep -qi '^strict-transport-security: max-age=' <<<"$hdr"; then
	echo "ok: TLS 1.3 edge answers with HSTS"
else
	echo "FAIL: TLS edge: $hdr"; tail -n 5 "$SB_TEST_TMP/logs/gateway_tls.log"
	rc=1
fi
# A TLS 1.2 client must be refused by the handshake itself: curl's SSL connect error (35) for
# the server's protocol_version alert. Any other failure (nothing listening: 7, a certificate
# refused: 60, plain HTTP on the port: 35 "wrong version number") is not that and fails.
curl -sS --tls-max 1.2 --cacert "$SB_TEST_TMP/cert.pem" -o /dev/null "https://127.0.0.1:$tls_port/v1/me" \
	2>"$SB_TEST_TMP/tls12.err"
tls12=$?
if [ $tls12 = 35 ] && grep -q 'alert protocol version' "$SB_TEST_TMP/tls12.err"; then
	echo "ok: a TLS 1.2 client is refused with a protocol_version alert"
elif [ $tls12 = 0 ]; then
	fail "a TLS 1.2 client was served"
else
	fail "TLS 1.2 client: curl exit $tls12, not the protocol_version alert: $(cat "$SB_TEST_TMP/tls12.err")"
fi
kill -TERM $tls_pid; wait $tls_pid 2>/dev/null

# The wrong secret and the rate-limit violation left audit lines.
if ! grep -q '"audit":"true".*invalid_client\|invalid_client.*"audit"' "$SB_TEST_TMP/logs/auth.log" &&
	! grep -q 'audit.*client_auth\|client_auth.*audit' "$SB_TEST_TMP/logs/auth.log"; then
	echo "FAIL: no audit line for the wrong client secret in the auth log"
	grep -i audit "$SB_TEST_TMP/logs/auth.log" | tail -3
	rc=1
fi
if ! grep -q '"event":"rate_limited"' "$SB_TEST_TMP/logs/gateway.log"; then
	echo "FAIL: no audit line for the rate-limit violation in the gateway log"
	rc=1
fi
# Tokens never reach the logs.
if grep -q 'eyJ' "$SB_TEST_TMP"/logs/*.log; then
	echo "FAIL: a token appears in a log"
	rc=1
fi
if [ $rc != 0 ]; then
	tail -n 5 "$SB_TEST_TMP/logs/gateway.log" "$SB_TEST_TMP/logs/auth.log"
	[ -f "$SB_TEST_TMP/logs/gateway2.log" ] && tail -n 15 "$SB_TEST_TMP/logs/gateway2.log"
fi
[ $rc = 0 ] && echo "PASS: gateway edge" || echo "FAIL: gateway edge"
exit $rc
