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
. "$root/tests/pubsub/stack.sh"
ps_stack_start "${ps_env[@]}"
cd "$root/tests/pubsub" || exit 1

PUSH_MODE=refuse timeout 60 node --test push.test.mjs || { tail -n 30 "$tmp/logs/pubsub.log"; exit 1; }
ps_stop_pubsub
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
ps_stop_pubsub
echo "PASS"
