#!/usr/bin/env bash
# Every service (the eight, and pubsub) against real PostgreSQL, Redis and devbus: each starts from its config,
# becomes ready only when its dependencies answer, serves /healthz, /ready and /metrics (checked
# by promtool), answers Health over RPC (through the gateway's /v1/health aggregate and the
# generic route table), reports a lost dependency on /ready, and exits 0 on SIGTERM.
# stack: pg,redis,kafka
# labels: e2e
set -u
root=${SB_SOURCE_ROOT:?}
build=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
tmp=${SB_TEST_TMP:?}
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

services=(gateway auth messages outbox files realtime notifier gc pubsub)
declare -A ops rpc pid
for s in "${services[@]}"; do
	ops[$s]=$(sb_free_port)
	rpc[$s]=$(sb_free_port)
done
gw_http=$(sb_free_port)
ws_port=$(sb_free_port) # realtime's public port (SB_WS_PORT), never the default 8081
files_http=$(sb_free_port) # files' upload edge (its SB_HTTP_PORT)

svc_env() { # the environment of every service: dependencies and every peer's RPC URL
	echo "DATABASE_URL=$SB_TEST_PG_DSN REDIS_URL=$SB_TEST_REDIS_URL KAFKA_BROKERS=$SB_TEST_KAFKA_BROKERS"
	for p in "${services[@]}"; do
		echo "SB_${p^^}_RPC_URL=tcp://127.0.0.1:${rpc[$p]}"
	done
}
envs=$(svc_env | tr '\n' ' ')
# the gateway's aggregate asks exactly the services started here
envs+=" SB_HEALTH_SERVICES=$(IFS=,; echo "${services[*]}")"
mkdir -p "$tmp/logs"
for s in "${services[@]}"; do
	http=$gw_http
	[ "$s" = files ] && http=$files_http
	# shellcheck disable=SC2086
	env $envs SB_OPS_PORT=${ops[$s]} SB_RPC_URL=tcp://127.0.0.1:${rpc[$s]} SB_HTTP_PORT=$http SB_WS_PORT=$ws_port \
		SB_FILES_DIR="$tmp/files" \
		SB_SHUTDOWN_GRACE_MS=3000 "$build/bin/sb-$s" >"$tmp/logs/$s.log" 2>&1 &
	pid[$s]=$!
done
stop_all() {
	for s in "${services[@]}"; do kill -9 "${pid[$s]}" 2>/dev/null; done
}
trap stop_all EXIT

# Every service becomes ready.
for s in "${services[@]}"; do
	ready=0
	for _ in $(seq 1 150); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ops[$s]}/ready")
		[ "$code" = 200 ] && { ready=1; break; }
		sleep 0.2
	done
	if [ $ready = 1 ]; then ok "$s ready"; else
		bad "$s not ready: $(curl -s "http://127.0.0.1:${ops[$s]}/ready")"
		tail -5 "$tmp/logs/$s.log"
	fi
	[ "$(curl -s "http://127.0.0.1:${ops[$s]}/healthz")" = '{"status":"ok"}' ] && ok "$s healthz" || bad "$s healthz"
	curl -s "http://127.0.0.1:${ops[$s]}/metrics" >"$tmp/$s.metrics"
	if promtool check metrics <"$tmp/$s.metrics" >"$tmp/$s.promtool" 2>&1 && grep -q '^rpc_server_requests_total\|^process_' "$tmp/$s.metrics"; then
		ok "$s metrics accepted by promtool"
	else
		bad "$s metrics: $(head -5 "$tmp/$s.promtool")"
	fi
done

# The gateway's aggregate: the nine services SB_HEALTH_SERVICES names, all ready, once the
# gateway reaches them (tools/stack.sh, sb_wait_gateway).
sb_wait_gateway "http://127.0.0.1:$gw_http" 10 "${services[@]}" || bad "gateway reach"
body=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$gw_http/v1/health")
code=$(tail -n1 <<<"$body")
json=$(head -n -1 <<<"$body")
n=$(jq '[.services[] | select(.ready == true)] | length' <<<"$json" 2>/dev/null)
if [ "$code" = 200 ] && [ "$n" = 9 ] && [ "$(jq -r .status <<<"$json")" = ok ] &&
	[ "$(jq -r '.services | keys | sort | join(",")' <<<"$json")" = "$(tr ' ' '\n' <<<"${services[*]}" | sort | paste -sd,)" ]; then
	ok "GET /v1/health: the 9 services named ready"
else
	bad "GET /v1/health: $code $json"
fi
# A name that is not a service is a configuration error at start.
out=$(SB_HEALTH_SERVICES=gateway,auth,nope timeout 10 "$build/bin/sb-gateway" 2>&1)
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && grep -q 'SB_HEALTH_SERVICES' <<<"$out" && grep -q '"nope" is not a service' <<<"$out" &&
	ok "SB_HEALTH_SERVICES naming no service refused at start" || bad "SB_HEALTH_SERVICES=gateway,auth,nope: rc $rc: $out"
out=$(SB_HEALTH_SERVICES=auth,auth timeout 10 "$build/bin/sb-gateway" 2>&1)
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && grep -q 'auth is named twice' <<<"$out" &&
	ok "SB_HEALTH_SERVICES naming a service twice refused" || bad "SB_HEALTH_SERVICES=auth,auth: rc $rc: $out"
# One service's Health through the generic route table (transcoded from protobuf).
json=$(curl -s "http://127.0.0.1:$gw_http/v1/health/messages")
[ "$(jq -r '.service + " " + (.ready|tostring)' <<<"$json")" = "messages true" ] &&
	jq -e '.dependencies[] | select(.name == "postgres" and .ok == true)' <<<"$json" >/dev/null &&
	ok "GET /v1/health/messages transcoded" || bad "GET /v1/health/messages: $json"
# Unknown route and wrong method are problem+json.
hdr=$(curl -s -D - -o "$tmp/404.json" "http://127.0.0.1:$gw_http/v1/nope")
grep -qi '^content-type: application/problem+json' <<<"$hdr" && [ "$(jq .status "$tmp/404.json")" = 404 ] &&
	ok "unknown route 404 problem+json" || bad "unknown route: $hdr"
hdr=$(curl -s -X DELETE -D - -o "$tmp/405.json" "http://127.0.0.1:$gw_http/v1/health")
grep -qi '^allow: GET' <<<"$hdr" && [ "$(jq .status "$tmp/405.json")" = 405 ] &&
	ok "wrong method 405 with Allow" || bad "wrong method: $hdr"

# A dependency lost: Redis down makes auth not ready, naming redis; back up, ready again.
sb_redis_stop "$tmp"
sleep 0.5
r=$(curl -s -w ' %{http_code}' "http://127.0.0.1:${ops[auth]}/ready")
grep -q ' 503$' <<<"$r" && grep -q '"name":"redis","ok":false' <<<"$r" &&
	ok "auth not ready without redis" || bad "auth /ready without redis: $r"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$gw_http/v1/health")
[ "$code" = 503 ] && ok "aggregate health 503 without redis" || bad "aggregate health: $code"
sb_redis_start "$tmp" "${SB_TEST_REDIS_URL##*:}"
back=0
for _ in $(seq 1 50); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ops[auth]}/ready")" = 200 ] && { back=1; break; }
	sleep 0.2
done
[ $back = 1 ] && ok "auth ready again after redis returned" || bad "auth did not recover"

# SIGTERM: every service exits 0 within its grace period.
for s in "${services[@]}"; do kill -TERM "${pid[$s]}"; done
for s in "${services[@]}"; do
	for _ in $(seq 1 100); do kill -0 "${pid[$s]}" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "${pid[$s]}" 2>/dev/null; then
		bad "$s still running 10 s after SIGTERM"
	else
		wait "${pid[$s]}"
		rc=$?
		[ $rc = 0 ] && ok "$s exited 0 on SIGTERM" || { bad "$s exit status $rc"; tail -5 "$tmp/logs/$s.log"; }
	fi
done
# Nothing above is an error of the platform (Redis stopped on purpose is logged as a warning):
# any error line fails the test.
errors=$(grep -h '"level":"error"' "$tmp"/logs/*.log)
[ -z "$errors" ] && ok "no error lines in any service's log" ||
	bad "error lines in the services' logs: $(head -c 2000 <<<"$errors")"
[ $fail = 0 ] && echo "PASS: services" || echo "FAIL: services"
exit $fail
