#!/usr/bin/env bash
# sb-pubsub's acking consume through the gateway (POST /api/v1/messages/consume/{topic}: acks
# and the next messages in one request, min), against real PostgreSQL:
# tests/pubsub/stream.test.mjs. docs/pubsub.md "Ack and consume in one request".
# stack: pg,redis
# labels: pubsub,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
export SB_BUILD_ROOT=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
tmp=${SB_TEST_TMP:?}

# Short backoff and reaper so that an expired lease is ready again within a second.
sb_svc_ports gateway auth messages pubsub
sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000
sb_svc_start messages
sb_svc_start pubsub SB_PUBSUB_BACKOFF_BASE_MS=200 SB_PUBSUB_REAPER_MS=50 SB_PUBSUB_PUSH_ALLOW_PRIVATE=true
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=10000000
sb_svc_wait_ready auth messages pubsub gateway || exit 1

cli() {
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" SB_AUTH_PBKDF2_ITERATIONS=100000 \
		"$SB_BUILD_ROOT/bin/sb-auth" "$@"
}
cli seed-dev --out "$tmp/creds.json" >/dev/null || { echo "FAIL: seed-dev"; exit 1; }
cli user create --tenant other --name carol >/dev/null || { echo "FAIL: user create"; exit 1; }
tok() { cli token issue --tenant "$1" --scopes "$2" --ttl 900 --user "$3"; }
admin=$(curl -s -u "$(jq -r .admin.client_id "$tmp/creds.json"):$(jq -r .admin.client_secret "$tmp/creds.json")" \
	-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
jq -n --arg admin "$admin" \
	--arg produce "$(tok dev pubsub:produce alice)" \
	--arg consume "$(tok dev pubsub:consume alice)" \
	--arg other "$(tok other 'pubsub:admin pubsub:produce pubsub:consume' carol)" \
	'{admin:$admin, produce:$produce, consume:$consume, other:$other}' >"$tmp/tokens.json"
for k in admin produce consume other; do
	[ "$(jq -r ".$k | length" "$tmp/tokens.json")" -gt 100 ] || { echo "FAIL: no $k token"; exit 1; }
done

export SB_GW SB_TOKENS=$tmp/tokens.json
cd "$root/tests/pubsub" || exit 1
timeout 120 node --test --test-concurrency=1 stream.test.mjs || {
	tail -n 30 "$tmp/logs/pubsub.log"
	exit 1
}
# SIGTERM: pubsub exits 0 (under ASan/UBSan also: no leak, no report) and logged no error.
kill -TERM "${SVC_PID[pubsub]}"
wait "${SVC_PID[pubsub]}"
rc=$?
unset "SVC_PID[pubsub]"
[ $rc = 0 ] || { echo "FAIL: pubsub exit status $rc on SIGTERM"; tail -n 30 "$tmp/logs/pubsub.log"; exit 1; }
if grep -E 'Sanitizer|runtime error|"level":"error"' "$tmp/logs/pubsub.log"; then
	echo "FAIL: pubsub's log has errors or sanitizer reports"
	exit 1
fi
echo "pubsub_stream_test: all passed"
