#!/usr/bin/env bash
# labels: mesh,e2e,serial
# `make run MESH=1` end to end: tools/run-local.sh with MESH=1 on free ports and a fresh state
# directory. Checked: .run/mesh.json has one entry per started service with inbound, ops,
# cert, key and ca, each certificate carrying that service's SPIFFE ID and each sidecar's ops
# port answering /live and /ready; GET /v1/health through nginx and the gateway is 200, which
# means the gateway reached all eight services through the mesh, as the gateway's sidecar
# counts (outbound <svc>.Health per service); an inbound listener refuses a client without a
# certificate; SIGTERM stops every sidecar and removes mesh.json. With OBSERVABILITY=1 as well:
# Prometheus scrapes every service and every sidecar (job sb-sidecar, one target per entry of
# mesh.json, all up) with every rule file of k8s/observability/rules loaded, and Jaeger has the
# gateway's spans.
set -uo pipefail
root=${SB_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${SB_BUILD_ROOT:-$root/build}
. "$root/tools/stack.sh"

run=$(mktemp -d /tmp/sb-mesh-run.XXXXXX)
out=$run.out
runner=
cleanup() {
	if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
		kill -TERM "$runner" 2>/dev/null
		for _ in $(seq 1 300); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- -"$runner" 2>/dev/null
	fi
	[ -f "$run/pg/data/postmaster.pid" ] && sb_pg_stop "$run"
	rm -rf "$run" "$out"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	tail -n 20 "$out"
	exit 1
}

# An offset under which every port run-local and the mesh use is free.
busy=" $(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ') "
pg_port=$(sb_free_port)
redis_port=$(sb_free_port)
kafka_port=$(sb_free_port_pair)
off=
for _ in $(seq 1 50); do
	o=$(((RANDOM % 18 + 3) * 1000 + RANDOM % 500))
	ok=1
	for p in 8000 4318 9090 16686 $(seq 8080 8083) $(seq 7100 7112) $(seq 8100 8112) $(seq 9100 9112) \
		$(seq 9200 9212) $(seq 6000 6240); do
		q=$((p + o))
		if [[ $busy == *" $q "* ]] || [ $q = "$pg_port" ] || [ $q = "$redis_port" ] ||
			[ $q = "$kafka_port" ] || [ $q = $((kafka_port + 1)) ]; then
			ok=0
			break
		fi
	done
	[ $ok = 1 ] && { off=$o; break; }
done
[ -n "$off" ] || fail "no free port offset"

setsid env MESH=1 OBSERVABILITY=1 SB_RUN_DIR="$run" SB_PORT_OFFSET="$off" SB_PG_PORT="$pg_port" \
	SB_REDIS_PORT="$redis_port" SB_KAFKA_PORT="$kafka_port" SB_READY_TIMEOUT=120 \
	bash "$root/tools/run-local.sh" "$build" >"$out" 2>&1 &
runner=$!
for _ in $(seq 1 1800); do
	grep -q 'Switchboard is running' "$out" && break
	kill -0 "$runner" 2>/dev/null || fail "run-local exited"
	sleep 0.1
done
grep -q 'Switchboard is running' "$out" || fail "no banner within 180 s"
echo "ok: running with MESH=1 (offset $off)"

json=$run/mesh.json
jq -e 'type == "object"' "$json" >/dev/null || fail "mesh.json is not a JSON object"
started=$(grep -c '^run-local: started ' "$out")
[ "$(jq length "$json")" = "$started" ] || fail "mesh.json has $(jq length "$json") entries for $started services"
for s in $(jq -r 'keys[]' "$json"); do
	e=$(jq -c --arg s "$s" '.[$s]' "$json")
	for k in inbound ops cert key ca; do
		[ "$(jq -r --arg k $k 'has($k)' <<<"$e")" = true ] || fail "mesh.json: $s has no $k"
	done
	for k in cert key ca; do [ -s "$(jq -r ".$k" <<<"$e")" ] || fail "mesh.json: $s: $k missing"; done
	openssl x509 -in "$(jq -r .cert <<<"$e")" -noout -ext subjectAltName | grep -q "URI:spiffe://switchboard.local/ns/default/sa/$s\b" ||
		fail "$s's certificate does not carry its SPIFFE ID"
	ops=$(jq -r .ops <<<"$e")
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ops/live")" = 200 ] || fail "$s's sidecar /live"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ops/ready")" = 200 ] || fail "$s's sidecar /ready"
done
echo "ok: mesh.json: $(jq -r 'keys | join(" ")' "$json"), identities and ops ports check out"

ingress=$((8000 + off))
code=$(curl -s -o "$run/health.json" -w '%{http_code}' "http://127.0.0.1:$ingress/v1/health")
[ "$code" = 200 ] || fail "GET /v1/health through the mesh: $code $(cat "$run/health.json")"
gw_ops=$(jq -r .gateway.ops "$json")
metrics=$(curl -s "http://127.0.0.1:$gw_ops/metrics")
for s in auth messages outbox files realtime notifier gc; do
	jq -e --arg s "$s" 'has($s)' "$json" >/dev/null || continue
	grep -Eq "^request_total\{direction=\"outbound\",method=\"$s.Health\"\} [1-9]" <<<"$metrics" ||
		fail "the gateway's sidecar carried no $s.Health"
done
echo "ok: /v1/health 200, every service's Health carried by the gateway's sidecar"

in=$(jq -r .messages.inbound "$json")
# -ign_eof: s_client waits for the server's answer instead of quitting at the end of stdin
said=$(printf x | timeout 5 openssl s_client -ign_eof -connect "$in" -tls1_3 \
	-CAfile "$(jq -r .messages.ca "$json")" -quiet 2>&1)
grep -q 'certificate required' <<<"$said" ||
	fail "messages' sidecar accepted a client without a certificate: $said"
echo "ok: an inbound listener refuses a client without a certificate"

prom=http://127.0.0.1:$((9090 + off))
want=$(jq -r 'keys | sort | join(" ")' "$json")
for _ in $(seq 1 60); do # the first scrapes come within the 5-s interval
	up=$(curl -s "$prom/api/v1/targets" | jq -r '[.data.activeTargets[] |
		select(.labels.job == "sb-sidecar" and .health == "up") | .labels.service] | sort | join(" ")')
	[ "$up" = "$want" ] && break
	sleep 0.5
done
[ "$up" = "$want" ] || fail "Prometheus: sidecars up: '$up', want '$want'"
nsvc=$(curl -s "$prom/api/v1/targets" | jq '[.data.activeTargets[] | select(.labels.job != "sb-sidecar")] | length')
[ "$nsvc" = "$started" ] || fail "Prometheus scrapes $nsvc services, $started started"
rules=$(curl -s "$prom/api/v1/rules" | jq -r '[.data.groups[].rules[].name] | join(" ")')
for a in SwitchboardCertificateExpiresSoon IngestQueueAboveHighWatermark CdcSinkLagHigh; do
	[[ " $rules " == *" $a "* ]] || fail "Prometheus has no rule $a (rules: $rules)"
done
echo "ok: Prometheus scrapes the $nsvc services and their sidecars ($want), rules of every file loaded"
jaeger=http://127.0.0.1:$((16686 + off))
for _ in $(seq 1 40); do
	curl -s "$jaeger/api/services" | jq -e '.data | index("sb-gateway")' >/dev/null && break
	sleep 0.5
done
curl -s "$jaeger/api/services" | jq -e '.data | index("sb-gateway")' >/dev/null ||
	fail "Jaeger has no spans of sb-gateway"
echo "ok: Jaeger has spans of $(curl -s "$jaeger/api/services" | jq -r '.data | length') services"

pids=$(cat "$run"/mesh/pids/*.pid)
kill -TERM "$runner"
for _ in $(seq 1 300); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
kill -0 "$runner" 2>/dev/null && fail "run-local did not stop within 30 s"
runner=
for p in $pids; do kill -0 "$p" 2>/dev/null && fail "sidecar pid $p still running after stop"; done
[ -e "$json" ] && fail "mesh.json left behind"
echo "ok: stopped; no sidecar left, mesh.json removed"
echo PASS
