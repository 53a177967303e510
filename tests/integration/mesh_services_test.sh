#!/usr/bin/env bash
# stack: pg,redis
# labels: mesh,e2e
# The real services behind sidecars: the gateway reaches auth and messages only through its
# own sidecar (one outbound port per upstream) and theirs (mTLS, policy), on loopback (the
# network-namespace hop is mesh_sidecar_test's; here the point is the services' own RPC).
# Checked: a token from auth, a conversation and a message sent through the gateway succeed,
# each RPC counted per method on both sides; with messages' policy refusing messages.Send
# to the gateway, a send is answered 403 by the gateway while reads still pass; killing
# messages' sidecar makes the gateway's view of messages unready (GET /v1/health/messages
# 503) within the RPC deadline, never hanging, and a new sidecar restores it.
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
MESH_LOGS=$SB_TEST_TMP/logs
. "$root/tests/lib/mesh.sh"
stop_everything() {
	mesh_stop_all
	sb_svc_stop_all
}
trap stop_everything EXIT
fail() {
	echo "FAIL: $*"
	for f in "$MESH_LOGS"/*.log; do echo "--- $f"; tail -n 6 "$f"; done
	exit 1
}

certs=$SB_TEST_TMP/certs
mesh_certs "$certs" gateway auth messages || fail "mesh-ca"
sb_svc_ports gateway auth messages
sb_svc_start auth
sb_svc_start messages
declare -A IN OUT
for s in auth messages; do
	IN[$s]=$(sb_free_port)
	OUT[$s]=$(sb_free_port)
done
msg_sidecar() { # msg_sidecar POLICY
	mesh_sidecar messages messages "$certs" SB_MESH_INBOUND="127.0.0.1:${IN[messages]}" \
		SB_MESH_TARGET="127.0.0.1:${SVC_RPC[messages]}" SB_MESH_ALLOW="$1"
}
mesh_sidecar auth auth "$certs" SB_MESH_INBOUND="127.0.0.1:${IN[auth]}" \
	SB_MESH_TARGET="127.0.0.1:${SVC_RPC[auth]}" SB_MESH_ALLOW="gateway=auth.* messages=auth.Jwks"
msg_sidecar "gateway=messages.*"
mesh_sidecar gateway gateway "$certs" SB_MESH_EJECT_BASE_MS=200 SB_MESH_EJECT_MAX_MS=1000 \
	SB_MESH_OUTBOUND="auth=127.0.0.1:${OUT[auth]}>127.0.0.1:${IN[auth]} messages=127.0.0.1:${OUT[messages]}>127.0.0.1:${IN[messages]}"
sb_svc_start gateway SB_AUTH_RPC_URL="tcp://127.0.0.1:${OUT[auth]}" \
	SB_MESSAGES_RPC_URL="tcp://127.0.0.1:${OUT[messages]}" SB_RPC_TIMEOUT_MS=1000 \
	SB_RATE_LIMIT_PER_MIN=100000
trap stop_everything EXIT # sb_svc_start set its own
sb_svc_wait_ready auth messages || fail "services"
mesh_wait_ready auth messages gateway || fail "sidecars"
sb_svc_wait_ready gateway || fail "gateway (through its sidecar)"

creds=$SB_TEST_TMP/dev-credentials.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	fail "seed-dev"
tok=$(curl -s -u "$(jq -r .alice.client_id "$creds"):$(jq -r .alice.client_secret "$creds")" \
	-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
[ -n "$tok" ] && [ "$tok" != null ] || fail "no token through the mesh"
conv=$(curl -s -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	-d '{"kind":"group","title":"mesh"}' "$SB_GW/v1/conversations" | jq -r .id)
[ -n "$conv" ] && [ "$conv" != null ] || fail "no conversation through the mesh"
send() {
	curl -s -o "$SB_TEST_TMP/send.json" -w '%{http_code}' --max-time 10 \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		-d "{\"id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"conversation_id\":\"$conv\",\"content\":\"via mesh\"}" \
		"$SB_GW/v1/messages"
}
[ "$(send)" = 202 ] || fail "send through the mesh: $(cat "$SB_TEST_TMP/send.json")"
echo "ok: token, conversation and send through gateway -> sidecar -> sidecar -> services"
v=$(mesh_metric auth 'request_total{direction="inbound",method="auth.Token"}')
[ "$v" -ge 1 ] || fail "auth's sidecar did not count auth.Token ($v)"
v=$(mesh_metric gateway 'request_total{direction="outbound",method="auth.Token"}')
[ "$v" -ge 1 ] || fail "gateway's sidecar did not count auth.Token ($v)"
# The gateway sends messages.Send in rpc.Batch envelopes: the sidecar counts and times each
# call in a batch under its own method as well.
v=$(mesh_metric messages 'request_total{direction="inbound",method="messages.Send"}')
b=$(mesh_metric messages 'request_total{direction="inbound",method="rpc.Batch"}')
l=$(mesh_metric messages 'response_latency_ms_count{direction="inbound",method="messages.Send",classification="success"}')
[ "$v" -ge 1 ] && [ "$l" -ge 1 ] || fail "messages' sidecar did not count and time the send ($v, $l)"
echo "ok: counted per method (auth.Token on both sides; messages.Send $v, timed $l; rpc.Batch $b)"

# messages' policy refuses sends from the gateway: 403 at the edge, reads still pass.
mesh_stop messages
msg_sidecar "gateway=messages.* gateway=!messages.Send"
mesh_wait_ready messages || fail "messages' sidecar (restricted)"
code=
for _ in $(seq 1 40); do
	code=$(send)
	[ "$code" = 403 ] && break
	sleep 0.25
done
[ "$code" = 403 ] || fail "send with messages.Send refused by policy answered $code: $(cat "$SB_TEST_TMP/send.json")"
v=$(mesh_metric messages 'inbound_rpc_authz_deny_total{client_id="gateway",method="messages.Send"}')
[ "$v" -ge 1 ] || fail "refusal not counted"
r=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$SB_GW/v1/conversations/$conv")
[ "$r" = 200 ] || fail "reading the conversation answered $r with only sends refused"
echo "ok: messages.Send refused by messages' policy -> 403; reads pass"

# Kill messages' sidecar: the gateway sees messages unready quickly, never hangs.
kill -KILL "${MESH_PID[messages]}"
wait "${MESH_PID[messages]}" 2>/dev/null
unset "MESH_PID[messages]"
t0=$(date +%s%N)
r=$(curl -s -o "$SB_TEST_TMP/h.json" -w '%{http_code}' --max-time 10 "$SB_GW/v1/health/messages")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$r" = 503 ] || [ "$r" = 504 ] || fail "health of messages with its sidecar dead: $r $(cat "$SB_TEST_TMP/h.json")"
[ "$ms" -lt 4000 ] || fail "health of messages took $ms ms with its sidecar dead"
echo "ok: messages' sidecar killed -> GET /v1/health/messages $r in $ms ms"
msg_sidecar "gateway=messages.*"
mesh_wait_ready messages || fail "messages' sidecar (back)"
for _ in $(seq 1 40); do
	r=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$SB_GW/v1/health/messages")
	[ "$r" = 200 ] && break
	sleep 0.25
done
[ "$r" = 200 ] || fail "messages not healthy again through a new sidecar: $r"
[ "$(send)" = 202 ] || fail "send after the sidecar came back"
echo "ok: new sidecar -> healthy, sends pass"
echo PASS
