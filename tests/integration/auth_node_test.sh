#!/usr/bin/env bash
# The auth service through the gateway with independent clients (openid-client and jose from
# npm, tests/node/auth_oidc.test.mjs): sb-auth and sb-gateway run on free ports against real
# PostgreSQL and Redis, `sb-auth seed-dev` writes the credentials, then `node --test` runs.
# stack: pg,redis
# labels: auth,e2e
set -u
root=${SB_SOURCE_ROOT:?}
build=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
tmp=${SB_TEST_TMP:?}

if [ ! -d "$root/tests/node/node_modules/openid-client" ] || [ ! -d "$root/tests/node/node_modules/jose" ]; then
	echo "FAIL: tests/node/node_modules is missing: run tools/install-deps.sh (npm install in tests/node)"
	exit 1
fi

auth_rpc=$(sb_free_port) auth_ops=$(sb_free_port)
gw_rpc=$(sb_free_port) gw_ops=$(sb_free_port) gw_http=$(sb_free_port)
issuer="http://127.0.0.1:$gw_http"
common=(DATABASE_URL="$SB_TEST_PG_DSN" REDIS_URL="$SB_TEST_REDIS_URL"
	SB_AUTH_RPC_URL="tcp://127.0.0.1:$auth_rpc" SB_AUTH_ISSUER="$issuer"
	SB_SHUTDOWN_GRACE_MS=2000)
mkdir -p "$tmp/logs"
env "${common[@]}" SB_RPC_URL="tcp://127.0.0.1:$auth_rpc" SB_OPS_PORT="$auth_ops" \
	SB_AUTH_PBKDF2_ITERATIONS=100000 "$build/bin/sb-auth" >"$tmp/logs/auth.log" 2>&1 &
auth_pid=$!
env "${common[@]}" SB_RPC_URL="tcp://127.0.0.1:$gw_rpc" SB_OPS_PORT="$gw_ops" \
	SB_HTTP_PORT="$gw_http" "$build/bin/sb-gateway" >"$tmp/logs/gateway.log" 2>&1 &
gw_pid=$!
stop_all() {
	kill -TERM "$auth_pid" "$gw_pid" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$auth_pid" 2>/dev/null || kill -0 "$gw_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$auth_pid" "$gw_pid" 2>/dev/null
	wait 2>/dev/null
}
trap stop_all EXIT

# Ready when the JWKS comes through the gateway from auth.
ready=0
for _ in $(seq 1 100); do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$issuer/.well-known/jwks.json")
	[ "$code" = 200 ] && { ready=1; break; }
	sleep 0.2
done
if [ $ready != 1 ]; then
	echo "FAIL: $issuer/.well-known/jwks.json never answered 200"
	tail -20 "$tmp/logs/auth.log" "$tmp/logs/gateway.log"
	exit 1
fi

creds=$tmp/dev-credentials.json
if ! DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_PBKDF2_ITERATIONS=100000 \
	"$build/bin/sb-auth" seed-dev --out "$creds"; then
	echo "FAIL: sb-auth seed-dev"
	exit 1
fi
[ "$(stat -c %a "$creds")" = 600 ] || { echo "FAIL: $creds is not mode 0600"; exit 1; }
# seed-dev is idempotent: a second run keeps the same, still valid, credentials
cp "$creds" "$tmp/first.json"
DATABASE_URL="$SB_TEST_PG_DSN" "$build/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	{ echo "FAIL: second seed-dev"; exit 1; }
cmp -s "$creds" "$tmp/first.json" || { echo "FAIL: seed-dev changed the credentials"; exit 1; }

cd "$root/tests/node" || exit 1
SB_ISSUER="$issuer" SB_CREDENTIALS="$creds" timeout 60 node --test auth_oidc.test.mjs
rc=$?
if [ $rc != 0 ]; then
	echo "--- auth log (last lines)"; tail -15 "$tmp/logs/auth.log"
	echo "--- gateway log (last lines)"; tail -15 "$tmp/logs/gateway.log"
fi
exit $rc
