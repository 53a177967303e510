#!/usr/bin/env bash
# One message's trace, end to end, in a real Jaeger: the platform (auth, messages, gateway,
# outbox, notifier, realtime) exports spans with OTLP/HTTP to Jaeger (tools/jaeger.sh); bob
# listens on a WebSocket, alice sends through the gateway. The 202 carries a traceparent; bob's
# message.created frame carries the same trace; Jaeger's query API, asked for that trace id,
# has spans from sb-gateway, sb-messages, sb-outbox, sb-notifier and sb-realtime, all in one
# tree (one root, every other span's parent in the trace). The realtime and files edges: a
# WebSocket handshake (accepted and refused) and a tus upload, each sent with a traceparent of
# the test's own, are spans of those traces with the status answered. Then the collector is stopped:
# sends still answer 202 promptly and the services count the spans they drop.
# stack: pg,redis,kafka
# labels: tracing,e2e
set -u
root=${SB_SOURCE_ROOT:?}
tmp=${SB_TEST_TMP:?}
. "$root/tools/stack.sh"
. "$root/tools/jaeger.sh"
. "$root/tests/lib/services.sh"

[ -d "$root/tests/realtime/node_modules/ws" ] ||
	{ echo "FAIL: tests/realtime/node_modules missing (tools/install-deps.sh)"; exit 1; }
sb_jaeger_start "$tmp/jaeger" || { echo "FAIL: jaeger did not start"; exit 1; }
trap 'sb_svc_stop_all; sb_jaeger_stop' EXIT

otlp=(SB_OTLP_ENDPOINT="$SB_JAEGER_OTLP" SB_TRACE_SAMPLE_PERCENT=100)
sb_svc_ports gateway auth messages outbox notifier realtime files
sb_svc_start auth "${otlp[@]}" SB_AUTH_PBKDF2_ITERATIONS=100000
sb_svc_start messages "${otlp[@]}"
sb_svc_start gateway "${otlp[@]}" SB_RATE_LIMIT_PER_MIN=100000
sb_svc_start outbox "${otlp[@]}" SB_OUTBOX_POLL_MS=100
sb_svc_start notifier "${otlp[@]}" SB_NOTIFIER_SESSION_TIMEOUT_MS=4000 SB_NOTIFIER_HEARTBEAT_MS=1000
sb_svc_start realtime "${otlp[@]}" SB_WS_PORT="${SVC_HTTP[realtime]}"
sb_svc_start files "${otlp[@]}"
sb_svc_wait_ready auth messages gateway outbox notifier realtime files || exit 1

creds=$tmp/dev-credentials.json
DATABASE_URL=$SB_TEST_PG_DSN SB_AUTH_PBKDF2_ITERATIONS=100000 "$SB_BUILD_ROOT/bin/sb-auth" \
	seed-dev --out "$creds" >/dev/null || { echo "FAIL: seed-dev"; exit 1; }
token() { # role
	curl -s -u "$(jq -r ".$1.client_id" "$creds"):$(jq -r ".$1.client_secret" "$creds")" \
		-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token
}
alice=$(token alice) bob=$(token bob)
bob_id=$(jq -r .bob.user_id "$creds")
conv=$(curl -s -H "Authorization: Bearer $alice" -H 'Content-Type: application/json' \
	-d "{\"kind\":\"group\",\"title\":\"traced\",\"member_ids\":[\"$bob_id\"]}" \
	"$SB_GW/v1/conversations" | jq -r .id)
[ -n "$conv" ] && [ "$conv" != null ] || { echo "FAIL: no conversation"; exit 1; }

# bob listens; alice sends until bob has a message (the notifier's first group join takes a
# few seconds); the last send's 202 and bob's frame are kept.
cd "$root/tests/realtime" || exit 1
SB_WS="ws://127.0.0.1:${SVC_HTTP[realtime]}/ws?token=$bob" CONV=$conv OUT=$tmp/frame.json \
	timeout 60 node -e '
const WebSocket = require("ws");
const fs = require("fs");
const ws = new WebSocket(process.env.SB_WS);
ws.on("message", (d) => {
  const f = JSON.parse(d.toString());
  if (f.type === "ready") ws.send(JSON.stringify({ type: "subscribe", conversation_id: process.env.CONV }));
  if (f.type === "subscribed") fs.writeFileSync(process.env.OUT + ".ready", "1");
  if (f.type === "message.created") { fs.writeFileSync(process.env.OUT, JSON.stringify(f)); process.exit(0); }
});
ws.on("error", (e) => { console.error("ws: " + e.message); process.exit(1); });
' &
listener=$!
for _ in $(seq 1 100); do [ -f "$tmp/frame.json.ready" ] && break; sleep 0.1; done
[ -f "$tmp/frame.json.ready" ] || { echo "FAIL: bob's socket never subscribed"; exit 1; }
send() {
	curl -s -D "$tmp/headers" -o /dev/null -w '%{http_code}' --max-time 10 \
		-H "Authorization: Bearer $alice" -H 'Content-Type: application/json' \
		-d "{\"id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"conversation_id\":\"$conv\",\"content\":\"traced\"}" \
		"$SB_GW/v1/messages"
}
for _ in $(seq 1 30); do
	[ "$(send)" = 202 ] || { echo "FAIL: send not answered 202"; exit 1; }
	tp=$(tr -d '\r' <"$tmp/headers" | awk -F': ' 'tolower($1) == "traceparent" { print $2 }')
	echo "${tp:3:32}" >>"$tmp/sent-traces"
	for _ in $(seq 1 10); do [ -s "$tmp/frame.json" ] && break 2; sleep 0.1; done
done
wait "$listener" || { echo "FAIL: bob received no message"; exit 1; }
echo "202 traceparent: $tp"
[[ $tp =~ ^00-([0-9a-f]{32})-[0-9a-f]{16}-01$ ]] || { echo "FAIL: no sampled traceparent on the 202"; exit 1; }
trace=${BASH_REMATCH[1]}
# bob's frame is the one of some send; find the trace of the last one (the one bob got)
ftp=$(jq -r .traceparent "$tmp/frame.json")
echo "bob's frame traceparent: $ftp"
[[ $ftp =~ ^00-[0-9a-f]{32}-[0-9a-f]{16}-01$ ]] || { echo "FAIL: bob's frame has no traceparent"; exit 1; }
ftrace=${ftp:3:32}
grep -qx "$ftrace" "$tmp/sent-traces" ||
	{ echo "FAIL: bob's frame is not in the trace of any 202's traceparent"; exit 1; }

# Jaeger: poll the trace of bob's frame until every service's span is in (batches go out
# every second).
want="sb-gateway sb-messages sb-notifier sb-outbox sb-realtime"
for _ in $(seq 1 60); do
	curl -s "$SB_JAEGER_QUERY/api/traces/$ftrace" >"$tmp/trace.json"
	got=$(jq -r '[.data[0].processes[].serviceName] | unique | join(" ")' "$tmp/trace.json" 2>/dev/null)
	ok=1
	for s in $want; do [[ " $got " == *" $s "* ]] || ok=0; done
	[ $ok = 1 ] && break
	sleep 0.5
done
echo "services in trace $ftrace: $got"
[ $ok = 1 ] || { echo "FAIL: the trace lacks a service (want: $want)"; jq -c '.data[0].spans[] | {operationName}' "$tmp/trace.json" | head; exit 1; }
jq -r '.data[0] as $t | $t.spans[] | "\($t.processes[.processID].serviceName)  \(.operationName)"' \
	"$tmp/trace.json" | sort | uniq -c
# one tree: exactly one span without a parent inside the trace, every other's parent present
tree=$(jq -r '.data[0].spans as $s | ($s | map(.spanID)) as $ids |
	[$s[] | [.references[]? | select(.refType == "CHILD_OF") | .spanID] | map(select(. as $p | $ids | index($p))) | length]
	| {roots: map(select(. == 0)) | length, spans: length} | "\(.roots) \(.spans)"' "$tmp/trace.json")
echo "roots, spans: $tree"
[ "${tree%% *}" = 1 ] || { echo "FAIL: the spans do not form one tree"; exit 1; }
[ "${tree##* }" -ge 6 ] || { echo "FAIL: fewer than 6 spans"; exit 1; }
# The root is the gateway's request span.
root_svc=$(jq -r '.data[0] as $t | ($t.spans | map(.spanID)) as $ids | $t.spans[] |
	select([.references[]? | select(.refType == "CHILD_OF") | .spanID | select(. as $p | $ids | index($p))] | length == 0) |
	$t.processes[.processID].serviceName' "$tmp/trace.json")
[ "$root_svc" = sb-gateway ] || { echo "FAIL: the root span is from $root_svc, not the gateway"; exit 1; }

# The edges of realtime and files. Each request carries a traceparent of a trace of its own;
# Jaeger must then hold the service's server span in that trace, named after the route, with
# the status answered.
newtp() { echo "00-$(openssl rand -hex 16)-$(openssl rand -hex 8)-01"; }
ws_ok=$(newtp) ws_bad=$(newtp) up_tp=$(newtp)
handshake() { # traceparent token -> prints "open" or the refusal's status
	SB_WS="ws://127.0.0.1:${SVC_HTTP[realtime]}/ws?token=$2" TP=$1 timeout 20 node -e '
const WebSocket = require("ws");
const ws = new WebSocket(process.env.SB_WS, { headers: { traceparent: process.env.TP } });
ws.on("open", () => { console.log("open"); ws.close(); process.exit(0); });
ws.on("unexpected-response", (req, res) => { console.log(res.statusCode); process.exit(0); });
ws.on("error", (e) => { console.error("ws: " + e.message); process.exit(1); });
'
}
(cd "$root/tests/realtime" && [ "$(handshake "$ws_ok" "$bob")" = open ]) ||
	{ echo "FAIL: bob's traced handshake was not accepted"; exit 1; }
(cd "$root/tests/realtime" && [ "$(handshake "$ws_bad" "x.y.z")" = 401 ]) ||
	{ echo "FAIL: a forged token's handshake was not refused with 401"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "traceparent: $up_tp" \
	-H "Authorization: Bearer $alice" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 5' \
	"http://127.0.0.1:${SVC_HTTP[files]}/files/")
[ "$code" = 201 ] || { echo "FAIL: the traced tus creation answered $code"; exit 1; }
edge_span() { # traceparent service operation status
	local t=${1:3:32} got=
	for _ in $(seq 1 40); do
		got=$(curl -s "$SB_JAEGER_QUERY/api/traces/$t" | jq -r --arg svc "$2" --arg op "$3" \
			--arg parent "${1:36:16}" '.data[0] as $d | $d.spans[]? |
			select($d.processes[.processID].serviceName == $svc and .operationName == $op) |
			select([.references[]? | select(.refType == "CHILD_OF") | .spanID] == [$parent]) |
			.tags[] | select(.key == "http.response.status_code") | .value' 2>/dev/null)
		[ -n "$got" ] && break
		sleep 0.5
	done
	echo "$2 span \"$3\" in trace $t (child of the client's span): status ${got:-none}"
	[ "$got" = "$4" ] || { echo "FAIL: want a $2 span \"$3\" with status $4"; exit 1; }
}
edge_span "$ws_ok" sb-realtime "GET /ws" 101
edge_span "$ws_bad" sb-realtime "GET /ws" 401
edge_span "$up_tp" sb-files "POST /files/" 201

# The collector goes away: sends stay fast, spans are dropped and counted.
sb_jaeger_stop
slow=0
for _ in $(seq 1 20); do
	t0=$(date +%s%N)
	[ "$(send)" = 202 ] || { echo "FAIL: send failed without a collector"; exit 1; }
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1000 ] || slow=$((slow + 1))
done
[ $slow = 0 ] || { echo "FAIL: $slow sends took a second or more without a collector"; exit 1; }
dropped=0
for _ in $(seq 1 30); do
	dropped=$(curl -s "http://127.0.0.1:${SVC_OPS[gateway]}/metrics" |
		awk '/^otlp_spans_dropped_total\{reason="export_failed"\}/ { print $2 }')
	[ "${dropped:-0}" != 0 ] && break
	sleep 0.2
done
echo "gateway spans dropped without a collector: $dropped"
[ "${dropped:-0}" != 0 ] || { echo "FAIL: the gateway did not count dropped spans"; exit 1; }
echo "ok: one trace from the gateway to the browser's frame, in Jaeger"
