#!/usr/bin/env bash
# POST /v1/messages through the gateway and the real messages service, with the gateway's
# sends batched one batch at a time (SB_RPC_BATCH_IN_FLIGHT=1, so that a burst certainly
# shares batches): every concurrent send gets its own answer (tests/edge/send.test.mjs). Then
# messages is frozen (SIGSTOP) under a burst: every send is answered 504 within about two RPC
# deadlines (the batch out waits for its deadline; those queued behind it expire, unsent), and
# once messages runs again sends succeed without restarting anything.
# stack: pg,redis
# labels: messages,e2e
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"

sb_svc_ports gateway auth messages
sb_svc_start auth
sb_svc_start messages
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=100000 SB_RPC_BATCH_IN_FLIGHT=1 SB_RPC_TIMEOUT_MS=1000
sb_svc_wait_ready auth messages gateway || exit 1

creds=$SB_TEST_TMP/dev-credentials.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	{ echo "FAIL: seed-dev"; exit 1; }

cd "$root/tests/edge" || exit 1
SB_GW=$SB_GW SB_CREDENTIALS=$creds SB_GW_OPS=http://127.0.0.1:${SVC_OPS[gateway]} \
	SB_MSG_OPS=http://127.0.0.1:${SVC_OPS[messages]} timeout 120 node --test send.test.mjs ||
	exit 1

# messages frozen under a burst of sends.
tok=$(curl -s -u "$(jq -r .alice.client_id "$creds"):$(jq -r .alice.client_secret "$creds")" \
	-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
conv=$(curl -s -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	-d '{"kind":"group","title":"frozen"}' "$SB_GW/v1/conversations" | jq -r .id)
[ -n "$conv" ] && [ "$conv" != null ] || { echo "FAIL: no conversation"; exit 1; }
send() {
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 20 \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		-d "{\"id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"conversation_id\":\"$conv\",\"content\":\"x\"}" \
		"$SB_GW/v1/messages"
}
kill -STOP "${SVC_PID[messages]}"
out=$SB_TEST_TMP/frozen.txt
pids=()
for i in $(seq 1 30); do
	send >>"$out" &
	pids+=($!)
	sleep 0.02
done
wait "${pids[@]}" # only the sends: a bare wait would wait for the services too
kill -CONT "${SVC_PID[messages]}"
echo "frozen messages, 30 sends (status, seconds):"; sort "$out" | uniq -c | sort -rn | head -5
[ "$(grep -c '^504 ' "$out")" = 30 ] || { echo "FAIL: not every send was answered 504"; exit 1; }
awk '$2 > 3.5 { bad = 1 } END { exit bad }' "$out" || { echo "FAIL: a send waited more than 3.5 s"; exit 1; }
# Running again: sends succeed.
for i in $(seq 1 50); do
	[ "$(send | cut -d' ' -f1)" = 202 ] && { echo "after SIGCONT: 202"; exit 0; }
	sleep 0.1
done
echo "FAIL: sends still failing after messages resumed"
exit 1
