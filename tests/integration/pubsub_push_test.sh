#!/usr/bin/env bash
# Push subscriptions of sb-pubsub through the gateway (tests/pubsub/push.test.mjs): first with
# the production rule (private addresses refused) the creation checks; then, restarted with
# SB_PUBSUB_PUSH_ALLOW_PRIVATE=true so that the test's own loopback receiver can be used,
# delivery once with a valid signature, retries with the backoff, the DLQ after max attempts,
# a permanent refusal, and a SIGKILL of pubsub mid-POST after which the message is pushed again.
# stack: pg,redis
# labels: pubsub,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
export SB_BUILD_ROOT=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
tmp=${SB_TEST_TMP:?}

ps_env=(SB_PUBSUB_BACKOFF_BASE_MS=200 SB_PUBSUB_BACKOFF_MAX_MS=3200 SB_PUBSUB_REAPER_MS=50
	SB_PUBSUB_PUSH_TIMEOUT_MS=2000 SB_PUBSUB_PUSH_LEASE_MARGIN_MS=500)
sb_svc_ports gateway auth messages pubsub
sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000
sb_svc_start messages
sb_svc_start pubsub "${ps_env[@]}"
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=10000000
sb_svc_wait_ready auth messages pubsub gateway || exit 1

cli() {
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" SB_AUTH_PBKDF2_ITERATIONS=100000 \
		"$SB_BUILD_ROOT/bin/sb-auth" "$@"
}
cli seed-dev --out "$tmp/creds.json" >/dev/null || { echo "FAIL: seed-dev"; exit 1; }
tok() { cli token issue --tenant "$1" --scopes "$2" --ttl 900 --user "$3"; }
admin=$(curl -s -u "$(jq -r .admin.client_id "$tmp/creds.json"):$(jq -r .admin.client_secret "$tmp/creds.json")" \
	-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
jq -n --arg admin "$admin" \
	--arg produce "$(tok dev pubsub:produce alice)" \
	--arg consume "$(tok dev pubsub:consume alice)" \
	'{admin:$admin, produce:$produce, consume:$consume}' >"$tmp/tokens.json"
for k in admin produce consume; do
	[ "$(jq -r ".$k | length" "$tmp/tokens.json")" -gt 100 ] || { echo "FAIL: no $k token"; exit 1; }
done
export SB_GW SB_TOKENS=$tmp/tokens.json SB_PUBSUB_OPS=http://127.0.0.1:${SVC_OPS[pubsub]}
cd "$root/tests/pubsub" || exit 1

stop_pubsub() { # SIGTERM: exit 0 (no leak or report under ASan/UBSan) and no error logged
	kill -TERM "${SVC_PID[pubsub]}"
	wait "${SVC_PID[pubsub]}"
	local rc=$?
	unset "SVC_PID[pubsub]"
	[ $rc = 0 ] || { echo "FAIL: pubsub exit status $rc on SIGTERM"; tail -n 30 "$tmp/logs/pubsub.log"; exit 1; }
	if grep -E 'Sanitizer|runtime error|"level":"error"' "$tmp/logs/pubsub.log"; then
		echo "FAIL: pubsub's log has errors or sanitizer reports"
		exit 1
	fi
}

PUSH_MODE=refuse timeout 60 node --test push.test.mjs || { tail -n 30 "$tmp/logs/pubsub.log"; exit 1; }
stop_pubsub
sb_svc_start pubsub "${ps_env[@]}" SB_PUBSUB_PUSH_ALLOW_PRIVATE=true
sb_svc_wait_ready pubsub || exit 1
export SB_PUBSUB_OPS=http://127.0.0.1:${SVC_OPS[pubsub]}
timeout 120 node --test --test-concurrency=1 push.test.mjs || { tail -n 30 "$tmp/logs/pubsub.log"; exit 1; }

# A crash mid-POST loses nothing: SIGKILL while the receiver holds the request; after the restart
# the lease (2 s timeout + 0.5 s margin) expires and the message is pushed again.
rm -f "$tmp/push-ready"
timeout 60 node push_crash.mjs "$tmp/push-ready" &
crash_pid=$!
for _ in $(seq 1 200); do [ -f "$tmp/push-ready" ] && break; sleep 0.1; done
[ -f "$tmp/push-ready" ] || { echo "FAIL: the push never reached the receiver"; kill "$crash_pid"; exit 1; }
kill -KILL "${SVC_PID[pubsub]}"
wait "${SVC_PID[pubsub]}" 2>/dev/null
unset "SVC_PID[pubsub]"
echo "pubsub killed in the middle of a push"
sb_svc_start pubsub "${ps_env[@]}" SB_PUBSUB_PUSH_ALLOW_PRIVATE=true
sb_svc_wait_ready pubsub || exit 1
wait "$crash_pid" || { echo "FAIL: the push was not redelivered after the crash"; tail -n 30 "$tmp/logs/pubsub.log"; exit 1; }
stop_pubsub
echo "PASS"
