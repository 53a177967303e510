#!/usr/bin/env bash
# The realtime service end to end with Node `ws` clients (tests/realtime/realtime.test.mjs):
# sb-auth, sb-messages, sb-gateway, sb-outbox, sb-notifier and THREE sb-realtime instances on
# free ports against real PostgreSQL, Redis and Kafka. Most scenarios also publish
# contract-shaped frames to Redis themselves (docs/realtime.md, "Redis channels") so that they
# do not wait for the notifier's first group join; the pipeline scenario sends through the
# REST API only and waits for the real notifier. A second auth + gateway pair, on the same
# database (same signing keys), issues 3-second access tokens for the expiry scenario.
# stack: pg,redis,kafka
# labels: realtime,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
build=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
tmp=${SB_TEST_TMP:?}

[ -d "$root/tests/realtime/node_modules/ws" ] ||
	{ echo "FAIL: tests/realtime/node_modules is missing: run tools/install-deps.sh"; exit 1; }

# ports VAR...: free ports (sb_free_port) below the kernel's ephemeral range (32768+, where
# our own outgoing connections take their local ports), never the same one twice in this run.
handed=" "
ports() {
	local _v _p
	for _v in "$@"; do
		while :; do
			_p=$(sb_free_port)
			[ "$_p" -lt 32768 ] && [[ $handed != *" $_p "* ]] && break
		done
		handed+="$_p "
		printf -v "$_v" %s "$_p"
	done
}
ports auth_rpc auth_ops msg_rpc msg_ops gw_rpc gw_ops gw_http auth2_rpc auth2_ops gw2_rpc gw2_ops \
	gw2_http ob_rpc ob_ops ntf_rpc ntf_ops
issuer="http://127.0.0.1:$gw_http"
common=(DATABASE_URL="$SB_TEST_PG_DSN" REDIS_URL="$SB_TEST_REDIS_URL"
	KAFKA_BROKERS="$SB_TEST_KAFKA_BROKERS"
	SB_AUTH_RPC_URL="tcp://127.0.0.1:$auth_rpc" SB_MESSAGES_RPC_URL="tcp://127.0.0.1:$msg_rpc"
	SB_AUTH_ISSUER="$issuer" SB_SHUTDOWN_GRACE_MS=2000)
mkdir -p "$tmp/logs"
pids=()
start() { # name env...
	local name=$1
	shift
	env "${common[@]}" "$@" "$build/bin/sb-${name%%[0-9]*}" >"$tmp/logs/$name.log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
}
stop_all() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for _ in $(seq 1 30); do
		alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap stop_all EXIT

start auth SB_RPC_URL="tcp://127.0.0.1:$auth_rpc" SB_OPS_PORT="$auth_ops" SB_AUTH_PBKDF2_ITERATIONS=100000
start messages SB_RPC_URL="tcp://127.0.0.1:$msg_rpc" SB_OPS_PORT="$msg_ops"
start gateway SB_RPC_URL="tcp://127.0.0.1:$gw_rpc" SB_OPS_PORT="$gw_ops" SB_HTTP_PORT="$gw_http" \
	SB_RATE_LIMIT_PER_MIN=100000
start auth2 SB_RPC_URL="tcp://127.0.0.1:$auth2_rpc" SB_OPS_PORT="$auth2_ops" \
	SB_AUTH_PBKDF2_ITERATIONS=100000 SB_AUTH_ACCESS_TTL_S=3
start gateway2 SB_RPC_URL="tcp://127.0.0.1:$gw2_rpc" SB_OPS_PORT="$gw2_ops" \
	SB_HTTP_PORT="$gw2_http" SB_AUTH_RPC_URL="tcp://127.0.0.1:$auth2_rpc"
start outbox SB_RPC_URL="tcp://127.0.0.1:$ob_rpc" SB_OPS_PORT="$ob_ops" SB_OUTBOX_POLL_MS=100
start notifier SB_RPC_URL="tcp://127.0.0.1:$ntf_rpc" SB_OPS_PORT="$ntf_ops" \
	SB_NOTIFIER_SESSION_TIMEOUT_MS=4000 SB_NOTIFIER_HEARTBEAT_MS=1000
ws_ports=()
for i in 1 2 3; do
	ports p o r
	ws_ports+=("$p")
	eval "rt_ops_$i=$o"
	# the third instance serves the slow consumer, which cannot answer pings while it does
	# not read: its pong timeout is long enough not to close it first
	pong=1000
	[ $i = 3 ] && pong=10000
	start "realtime$i" SB_RPC_URL="tcp://127.0.0.1:$r" SB_OPS_PORT="$o" SB_WS_PORT="$p" \
		SB_WS_ALLOWED_ORIGINS="http://allowed.example" SB_WS_PING_INTERVAL_MS=1000 \
		SB_WS_PONG_TIMEOUT_MS=$pong SB_WS_MAX_CONN_PER_USER=3 SB_WS_SEND_QUEUE_BYTES=65536 \
		SB_WS_MAX_FRAME_BYTES=4096 SB_WS_RECOVERY_MAX_GAP=50 SB_WS_AUTH_TIMEOUT_MS=1500 \
		SB_AUTH_LEEWAY_S=0 SB_NOTIFIER_RPC_URL="tcp://127.0.0.1:$ntf_rpc"
done

wait_ready() { # url
	for _ in $(seq 1 150); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
		sleep 0.2
	done
	return 1
}
for u in "http://127.0.0.1:$rt_ops_1/ready" "http://127.0.0.1:$rt_ops_2/ready" \
	"http://127.0.0.1:$rt_ops_3/ready" "$issuer/.well-known/jwks.json" \
	"http://127.0.0.1:$gw2_http/.well-known/jwks.json" "http://127.0.0.1:$ob_ops/ready" \
	"http://127.0.0.1:$ntf_ops/ready"; do
	if ! wait_ready "$u"; then
		echo "FAIL: $u never ready: $(curl -s "$u")"
		tail -n 5 "$tmp"/logs/*.log
		exit 1
	fi
done
creds=$tmp/dev-credentials.json
DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_PBKDF2_ITERATIONS=100000 \
	"$build/bin/sb-auth" seed-dev --out "$creds" >/dev/null || { echo "FAIL: seed-dev"; exit 1; }

cd "$root/tests/realtime" || exit 1
SB_GATEWAY="$issuer" SB_GATEWAY_SHORT="http://127.0.0.1:$gw2_http" SB_CREDENTIALS="$creds" SB_WS_PORTS="${ws_ports[*]}" \
	SB_REDIS_URL="$SB_TEST_REDIS_URL" SB_RT_PIDS="$pid_realtime1 $pid_realtime2 $pid_realtime3" \
	SB_RT_OPS="$rt_ops_1 $rt_ops_2 $rt_ops_3" \
	timeout 120 node --test --test-concurrency=1 realtime.test.mjs
rc=$?

# Capacity: an instance holds at most SB_WS_MAX_CONNECTIONS sockets (a socket waiting for its
# auth frame counts); the next upgrade is answered 503 and counted, and the limit is exported.
ports cap_p cap_o cap_r
start realtime4 SB_RPC_URL="tcp://127.0.0.1:$cap_r" SB_OPS_PORT="$cap_o" SB_WS_PORT="$cap_p" \
	SB_WS_MAX_CONNECTIONS=1 SB_WS_AUTH_TIMEOUT_MS=10000 \
	SB_NOTIFIER_RPC_URL="tcp://127.0.0.1:$ntf_rpc"
if ! wait_ready "http://127.0.0.1:$cap_o/ready"; then
	echo "FAIL: the capacity instance never ready"
	rc=1
else
	second=$(timeout 20 node -e "
const WebSocket = require('ws');
const a = new WebSocket('ws://127.0.0.1:$cap_p/ws');
a.on('error', (e) => { console.log('first failed: ' + e.message); process.exit(0); });
a.on('open', () => {
  const b = new WebSocket('ws://127.0.0.1:$cap_p/ws');
  b.on('unexpected-response', (q, r) => { console.log(r.statusCode); process.exit(0); });
  b.on('open', () => { console.log('second opened'); process.exit(0); });
  b.on('error', (e) => { console.log('second failed: ' + e.message); process.exit(0); });
});")
	m=$(curl -s "http://127.0.0.1:$cap_o/metrics")
	if [ "$second" != 503 ]; then
		echo "FAIL: the upgrade beyond SB_WS_MAX_CONNECTIONS=1 got: $second (want 503)"
		rc=1
	elif ! grep -q '^websocket_refused_total{reason="capacity"} 1$' <<<"$m" ||
		! grep -q '^websocket_connections_limit 1$' <<<"$m"; then
		echo "FAIL: capacity refusal or limit not on /metrics:"
		grep -E '^websocket_(refused|connections_limit)' <<<"$m"
		rc=1
	else
		echo "ok: the second socket of an instance limited to one was refused with 503"
	fi
fi

# No token ever reaches a log, whatever lws or we wrote.
if grep -h 'eyJ' "$tmp"/logs/realtime*.log | head -3 | grep -q .; then
	echo "FAIL: a token appears in a realtime log"
	rc=1
fi
if [ $rc != 0 ]; then
	for n in realtime1 realtime2 realtime3 notifier outbox; do
		echo "--- $n"
		tail -n 8 "$tmp/logs/$n.log"
	done
fi
exit $rc
