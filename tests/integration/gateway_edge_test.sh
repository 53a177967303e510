#!/usr/bin/env bash
# The gateway edge against the real auth and messages services: forged and expired tokens,
# revocation (pub/sub to the gateway's local set; scanned at a second gateway's start; kept
# through a Redis outage and resynced), scopes, rate limits, body/route/method errors, key
# rotation without a restart (tests/edge/edge.test.mjs, jose from npm), and the audit trail of
# a wrong client secret.
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
if curl -s --tls-max 1.2 --cacert "$SB_TEST_TMP/cert.pem" -o /dev/null "https://127.0.0.1:$tls_port/v1/me"; then
	echo "FAIL: a TLS 1.2 client was served"
	rc=1
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
