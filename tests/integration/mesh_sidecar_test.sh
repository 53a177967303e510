#!/usr/bin/env bash
# labels: mesh,sanitize
# The mesh sidecar between two peers in different network namespaces: RPC made with the
# services' runtime (mesh-rpc, sb_rpc client and server) crosses a caller's sidecar on the host
# and the callee's sidecar in a namespace of its own, joined by a veth pair, where the callee
# service listens on the namespace's loopback only (so mTLS through its sidecar is the only way
# in). Checked: calls pass and are counted per method on both sidecars; a client without a
# certificate, one with a certificate of another CA, an identity the policy does not name,
# and an allowed identity calling a method it may not call are all refused and counted; bytes
# that are not SP close the connection without harming the sidecar; rotating every
# certificate under load keeps the connection (no error, no new connection) and loads the new
# ones; killing the callee's service makes its sidecar unready; killing the callee's sidecar
# makes calls fail within their deadline (never hang), ejects it, and calls work again once
# it is back; a caller that never starts its handshake and an admitted connection that stays
# silent are closed after the handshake and idle timeouts.
set -u
root=${SB_SOURCE_ROOT:?}
bin=${SB_BUILD_ROOT:?}/bin
. "$root/tools/stack.sh"
tmp=${SB_TEST_TMP:-$(mktemp -d)}
MESH_LOGS=$tmp/logs
. "$root/tests/lib/mesh.sh"

fail() {
	echo "FAIL: $*"
	for f in "$MESH_LOGS"/*.log; do echo "--- $f"; tail -n 8 "$f"; done
	exit 1
}
[ "$(id -u)" = 0 ] || fail "needs root for ip netns (the machines of this project run tests as root)"

ns=sbmesh$$
va=sbm$$a
vb=sbm$$b
net=10.$((200 + RANDOM % 50)).$((RANDOM % 250)).$(( (RANDOM % 60) * 4))
hostip=${net%.*}.$(( ${net##*.} + 1 ))
nsip=${net%.*}.$(( ${net##*.} + 2 ))
svc_pid=
svc2_pid=
cleanup() {
	mesh_stop_all
	[ -n "$svc_pid" ] && kill "$svc_pid" 2>/dev/null
	[ -n "$svc2_pid" ] && kill "$svc2_pid" 2>/dev/null
	ip link del "$va" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
}
trap cleanup EXIT
ip netns add "$ns" || fail "ip netns add"
ip link add "$va" type veth peer name "$vb" || fail "veth"
ip link set "$vb" netns "$ns"
ip addr add "$hostip/30" dev "$va"
ip link set "$va" up
ip netns exec "$ns" ip addr add "$nsip/30" dev "$vb"
ip netns exec "$ns" ip link set "$vb" up
ip netns exec "$ns" ip link set lo up
echo "namespace $ns: host $hostip <-> $nsip"

certs=$tmp/certs
mesh_certs "$certs" gateway messages realtime || fail "mesh-ca"
mesh_certs "$tmp/other" gateway || fail "mesh-ca (other CA)"

# The callee: mesh-rpc on the namespace's loopback, its sidecar on the veth address.
svc_port=$(sb_free_port)
in_port=$(sb_free_port)
ip netns exec "$ns" "$bin/mesh-rpc" serve "tcp://127.0.0.1:$svc_port" >"$tmp/svc.out" 2>&1 &
svc_pid=$!
MESH_OPS_ADDR=$nsip
mesh_sidecar_ns() {
	local name=$1
	shift
	mkdir -p "$MESH_LOGS"
	MESH_OPS[$name]=$(sb_free_port)
	ip netns exec "$ns" env SB_MESH_SERVICE=messages SB_MESH_CERT="$certs/messages.pem" \
		SB_MESH_KEY="$certs/messages.key" SB_MESH_CA="$certs/ca.pem" SB_OPS_ADDR="$nsip" \
		SB_OPS_PORT="${MESH_OPS[$name]}" SB_MESH_RELOAD_MS=200 SB_MESH_INBOUND="$nsip:$in_port" \
		SB_MESH_TARGET="127.0.0.1:$svc_port" \
		SB_MESH_ALLOW="gateway=messages.* gateway=auth.* gateway=!auth.Admin*" \
		"$bin/sb-sidecar" >>"$MESH_LOGS/$name.log" 2>&1 &
	MESH_PID[$name]=$!
}
mesh_metric_ns() {
	curl -s "http://$nsip:${MESH_OPS[$1]}/metrics" |
		awk -v s="$2" 'index($0, s " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }'
}
ready_ns() { curl -s -o /dev/null -w '%{http_code}' "http://$nsip:${MESH_OPS[callee]}/ready"; }
mesh_sidecar_ns callee
out_port=$(sb_free_port)
mesh_sidecar caller gateway "$certs" SB_MESH_OUTBOUND="messages=127.0.0.1:$out_port>$nsip:$in_port" \
	SB_MESH_EJECT_BASE_MS=200 SB_MESH_EJECT_MAX_MS=1000
for _ in $(seq 1 100); do [ "$(ready_ns)" = 200 ] && break; sleep 0.1; done
[ "$(ready_ns)" = 200 ] || fail "callee sidecar not ready: $(curl -s "http://$nsip:${MESH_OPS[callee]}/ready")"
mesh_wait_ready caller || fail "caller sidecar"
url=tcp://127.0.0.1:$out_port
rpc() { timeout 20 "$bin/mesh-rpc" call "$url" "$@" 2>>"$tmp/rpc.err"; }

# The service is not reachable around its sidecar.
if timeout 3 bash -c "exec 3<>/dev/tcp/$nsip/$svc_port" 2>/dev/null; then
	fail "the callee service answers on $nsip:$svc_port, outside its sidecar"
fi

# 1. Calls pass and are counted per method on both sides.
[ "$(rpc messages.Send 20)" = "20 OK" ] || fail "calls through two sidecars: $(tail -2 "$tmp/rpc.err")"
v=$(mesh_metric_ns callee 'request_total{direction="inbound",method="messages.Send"}')
[ "$v" = 20 ] || fail "callee request_total messages.Send = $v, want 20"
v=$(mesh_metric caller 'request_total{direction="outbound",method="messages.Send"}')
[ "$v" = 20 ] || fail "caller request_total messages.Send = $v, want 20"
v=$(mesh_metric_ns callee 'response_latency_ms_count{direction="inbound",method="messages.Send",classification="success"}')
[ "$v" = 20 ] || fail "callee response_latency_ms count = $v, want 20"
echo "ok: 20 calls through two sidecars, counted on both"

# 1b. Calls in rpc.Batch envelopes (as the gateway sends messages.Send): each counted under
# its own method and timed, besides the batch.
MESH_RPC_BATCH=1 "$bin/mesh-rpc" load "$url" messages.Send 2000 1 >"$tmp/batch.out" 2>&1
ok=$(sed -E 's/.* ok=([0-9]+) .*/\1/' "$tmp/batch.out")
grep -q ' errors=0 ' "$tmp/batch.out" || fail "batched calls failed: $(cat "$tmp/batch.out")"
b=$(mesh_metric_ns callee 'request_total{direction="inbound",method="rpc.Batch"}')
v=$(mesh_metric_ns callee 'request_total{direction="inbound",method="messages.Send"}')
l=$(mesh_metric_ns callee 'response_latency_ms_count{direction="inbound",method="messages.Send",classification="success"}')
# 20 plain calls before, 50 warm-up calls of the load (plain, before batching can form), then $ok
[ "$b" -ge 1 ] || fail "no rpc.Batch seen"
[ "$v" = $((20 + 50 + ok)) ] || fail "messages.Send counted $v, want $((20 + 50 + ok)) (batches: $b)"
[ "$l" = "$v" ] || fail "messages.Send timed $l times, counted $v"
echo "ok: $ok calls in $b batches, each counted and timed as messages.Send"

# 2. Refusals at the handshake and by identity, each counted once.
tls_try() { # tls_try [openssl s_client args]: what the client printed
	# -ign_eof: s_client waits for the server's answer instead of quitting at the end of stdin
	printf '\0SP\0\0\x30\0\0' | timeout 5 openssl s_client -ign_eof -connect "$nsip:$in_port" -tls1_3 \
		-CAfile "$certs/ca.pem" -quiet "$@" 2>&1
}
deny() { mesh_metric_ns callee "inbound_tcp_authz_deny_total{reason=\"$1\"}"; }
before=$(deny no_client_cert)
tls_try | grep -q 'certificate required' || fail "a client without a certificate was not refused"
[ "$(deny no_client_cert)" = $((before + 1)) ] || fail "no_client_cert not counted once"
before=$(deny untrusted_cert)
tls_try -cert "$tmp/other/gateway.pem" -key "$tmp/other/gateway.key" | grep -q 'unknown ca' ||
	fail "a certificate from another CA was not refused"
[ "$(deny untrusted_cert)" = $((before + 1)) ] || fail "untrusted_cert not counted once"
before=$(deny identity)
tls_try -cert "$certs/realtime.pem" -key "$certs/realtime.key" >/dev/null
[ "$(deny identity)" = $((before + 1)) ] || fail "realtime (not in the policy) not refused and counted"
grep -q '"caller refused: identity not allowed".*sa/realtime.*"callee":"spiffe://switchboard.local/ns/default/sa/messages"' \
	"$MESH_LOGS/callee.log" || fail "identity refusal not logged with both identities"
echo "ok: no certificate, another CA, an identity outside the policy: refused and counted"

# 2b. The server's identity is checked too: a caller's sidecar told that "auth" lives at the
# messages sidecar's address refuses to talk to it (it presents .../sa/messages).
wrong_port=$(sb_free_port)
mesh_sidecar wrongid gateway "$certs" SB_MESH_OUTBOUND="auth=127.0.0.1:$wrong_port>$nsip:$in_port"
mesh_wait_ready wrongid || fail "wrongid sidecar"
before=$(mesh_metric_ns callee 'request_total{direction="inbound",method="auth.Token"}')
r=$(timeout 20 "$bin/mesh-rpc" call "tcp://127.0.0.1:$wrong_port" auth.Token 1 1000 2>/dev/null)
[ "${r%% *}" = 0 ] || fail "a call reached a sidecar with the wrong identity: $r"
grep -q '"upstream sidecar has the wrong identity","upstream":"auth","expected":"spiffe://switchboard.local/ns/default/sa/auth","got":"spiffe://switchboard.local/ns/default/sa/messages"' \
	"$MESH_LOGS/wrongid.log" || fail "wrong server identity not logged"
[ "$(mesh_metric_ns callee 'request_total{direction="inbound",method="auth.Token"}')" = "$before" ] ||
	fail "the request crossed to the wrong server"
mesh_stop wrongid
echo "ok: a server presenting another identity is refused by the caller's sidecar"

# 3. An allowed caller calling a method it may not call: PERMISSION_DENIED from the sidecar.
before=$(mesh_metric_ns callee 'inbound_rpc_authz_deny_total{client_id="gateway",method="auth.AdminRevokeAll"}')
[ "$(rpc auth.AdminRevokeAll 1)" = "0 PERMISSION_DENIED" ] || fail "auth.AdminRevokeAll was not refused"
[ "$(rpc auth.Token 1)" = "1 OK" ] || fail "auth.Token (allowed) failed"
v=$(mesh_metric_ns callee 'inbound_rpc_authz_deny_total{client_id="gateway",method="auth.AdminRevokeAll"}')
[ "$v" = $((before + 1)) ] || fail "method refusal counted $v times, want $((before + 1))"
grep -q '"RPC refused by policy","caller":"spiffe://switchboard.local/ns/default/sa/gateway","callee":"spiffe://switchboard.local/ns/default/sa/messages","method":"auth.AdminRevokeAll"' \
	"$MESH_LOGS/callee.log" || fail "method refusal not logged with both identities"
echo "ok: gateway may call auth.Token but not auth.AdminRevokeAll (refused, counted, logged)"

# 4. Bytes that are not SP, and an SP frame longer than allowed: connection closed, sidecar fine.
before=$(mesh_metric_ns callee 'mesh_frames_malformed_total{direction="inbound"}')
printf 'GET / HTTP/1.1\r\n\r\n' | timeout 5 openssl s_client -ign_eof -connect "$nsip:$in_port" -tls1_3 \
	-CAfile "$certs/ca.pem" -cert "$certs/gateway.pem" -key "$certs/gateway.key" -quiet >/dev/null 2>&1
printf '\0SP\0\0\x30\0\0\xff\xff\xff\xff\xff\xff\xff\xff' | timeout 5 openssl s_client -ign_eof \
	-connect "$nsip:$in_port" -tls1_3 -CAfile "$certs/ca.pem" -cert "$certs/gateway.pem" \
	-key "$certs/gateway.key" -quiet >/dev/null 2>&1
v=$(mesh_metric_ns callee 'mesh_frames_malformed_total{direction="inbound"}')
[ "$v" = $((before + 2)) ] || fail "malformed traffic counted $v, want $((before + 2))"
kill -0 "${MESH_PID[callee]}" || fail "the callee sidecar died on malformed input"
[ "$(rpc messages.Send 1)" = "1 OK" ] || fail "calls fail after malformed input"
echo "ok: malformed input closes its connection only"

# 5. Rotation under load: the open connection stays, nothing fails, new certificates load.
exp_before=$(mesh_metric_ns callee identity_cert_expiration_timestamp_seconds)
opened=$(mesh_metric_ns callee 'tcp_open_total{direction="inbound"}')
"$bin/mesh-rpc" load "$url" messages.Send 300 3 >"$tmp/load.out" 2>&1 &
load=$!
sleep 1
bash "$root/tools/mesh-ca.sh" -d "$certs" -h 48 gateway messages >/dev/null || fail "rotation"
wait "$load"
cat "$tmp/load.out"
grep -q ' errors=0 ' "$tmp/load.out" && grep -Eq 'ok=(8|9)[0-9]{2} ' "$tmp/load.out" ||
	fail "calls failed during rotation: $(cat "$tmp/load.out")"
v=$(mesh_metric_ns callee 'tcp_open_total{direction="inbound"}')
[ "$v" = $((opened + 1)) ] || fail "rotation: $((v - opened)) inbound connections opened, want 1 (the load's)"
for s in callee caller; do
	if [ $s = callee ]; then v=$(mesh_metric_ns $s 'identity_cert_reloads_total{result="ok"}')
	else v=$(mesh_metric $s 'identity_cert_reloads_total{result="ok"}'); fi
	[ "$v" -ge 1 ] || fail "$s did not reload its certificate"
done
exp_after=$(mesh_metric_ns callee identity_cert_expiration_timestamp_seconds)
[ $((exp_after - exp_before)) -gt 80000 ] ||
	fail "expiry gauge did not move to the 48 h certificate ($exp_before -> $exp_after)"
[ "$(rpc messages.Send 3)" = "3 OK" ] || fail "new connections after rotation fail"
echo "ok: rotation under load kept the connection, loaded the new certificates"

# 6. The callee's service dies: its sidecar turns unready (and back).
kill "$svc_pid"
wait "$svc_pid" 2>/dev/null
svc_pid=
for _ in $(seq 1 50); do [ "$(ready_ns)" = 503 ] && break; sleep 0.1; done
[ "$(ready_ns)" = 503 ] || fail "sidecar still ready with its service gone"
ip netns exec "$ns" "$bin/mesh-rpc" serve "tcp://127.0.0.1:$svc_port" >"$tmp/svc.out" 2>&1 &
svc_pid=$!
for _ in $(seq 1 50); do [ "$(ready_ns)" = 200 ] && break; sleep 0.1; done
[ "$(ready_ns)" = 200 ] || fail "sidecar not ready again after its service came back"
echo "ok: service gone -> its sidecar unready; back -> ready"

# 6b. SIGTERM to the callee's sidecar with a call in flight: the call is answered, then the
# sidecar exits by itself (and turned unready meanwhile).
timeout 20 "$bin/mesh-rpc" call "$url" messages.Slow 1 5000 >"$tmp/slow.out" 2>&1 &
slow=$!
# SIGTERM once the callee's sidecar has forwarded the call (it takes 500 ms to answer).
for _ in $(seq 1 250); do
	[ "$(mesh_metric_ns callee 'request_total{direction="inbound",method="messages.Slow"}')" = 1 ] && break
	sleep 0.02
done
kill -TERM "${MESH_PID[callee]}"
sleep 0.1
r=$(ready_ns)
wait "$slow"
[ "$(cat "$tmp/slow.out")" = "1 OK" ] || fail "a call in flight was lost to a graceful stop: $(cat "$tmp/slow.out")"
for _ in $(seq 1 50); do kill -0 "${MESH_PID[callee]}" 2>/dev/null || break; sleep 0.1; done
kill -0 "${MESH_PID[callee]}" 2>/dev/null && fail "the callee's sidecar did not exit after draining"
wait "${MESH_PID[callee]}"
rc=$?
[ "$rc" = 0 ] || fail "the drained sidecar exited $rc"
[ "$r" != 200 ] || fail "the draining sidecar still answered /ready 200"
grep -q '"draining: finishing requests in flight".*"requests":"1"' "$MESH_LOGS/callee.log" ||
	fail "the drain did not see the request in flight"
echo "ok: SIGTERM with a call in flight: answered, unready while draining, exited 0"
mesh_sidecar_ns callee
for _ in $(seq 1 100); do [ "$(ready_ns)" = 200 ] && break; sleep 0.1; done
for _ in $(seq 1 40); do [ "$(rpc messages.Send 1 500)" = "1 OK" ] && break; sleep 0.25; done

# 7. The callee's sidecar dies: calls fail within their deadline, the upstream is ejected,
# and calls work again once a sidecar is back.
kill -KILL "${MESH_PID[callee]}"
wait "${MESH_PID[callee]}" 2>/dev/null
unset "MESH_PID[callee]"
t0=$(date +%s%N)
r=$(rpc messages.Send 3 1000)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "${r%% *}" = 0 ] || fail "calls succeeded with the callee's sidecar dead: $r"
[ "$ms" -lt 6000 ] || fail "3 calls with a 1 s deadline took $ms ms"
v=$(mesh_metric caller 'mesh_upstream_ejections_total{upstream="messages"}')
[ "$v" -ge 1 ] || fail "the dead sidecar was not ejected"
echo "ok: dead sidecar: 3 calls failed ($r) in $ms ms, ejected $v times"
mesh_sidecar_ns callee
for _ in $(seq 1 100); do [ "$(ready_ns)" = 200 ] && break; sleep 0.1; done
ok=
for _ in $(seq 1 40); do
	[ "$(rpc messages.Send 1 500)" = "1 OK" ] && { ok=1; break; }
	sleep 0.25
done
[ -n "$ok" ] || fail "calls did not recover after the sidecar came back"
echo "ok: sidecar back -> calls pass again"

# 8. Timeouts, on a third sidecar (host loopback) with short ones: a caller that never starts
# its handshake, and an admitted connection that stays silent, are both closed in time.
t_in=$(sb_free_port)
t_svc=$(sb_free_port)
"$bin/mesh-rpc" serve "tcp://127.0.0.1:$t_svc" >/dev/null 2>&1 &
svc2_pid=$!
mesh_sidecar short messages "$certs" SB_MESH_INBOUND="127.0.0.1:$t_in" SB_MESH_TARGET="127.0.0.1:$t_svc" \
	SB_MESH_ALLOW="gateway=messages.*" SB_MESH_HANDSHAKE_TIMEOUT_MS=300 SB_MESH_IDLE_TIMEOUT_MS=600
mesh_wait_ready short || fail "short-timeout sidecar"
before=$(mesh_metric short 'inbound_tcp_authz_deny_total{reason="tls_handshake"}')
t0=$(date +%s%N)
timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$t_in; cat <&3 >/dev/null"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 2000 ] || fail "a silent caller was held $ms ms past a 300 ms handshake timeout"
[ "$(mesh_metric short 'inbound_tcp_authz_deny_total{reason="tls_handshake"}')" = $((before + 1)) ] ||
	fail "handshake timeout not counted"
echo "ok: handshake timeout closed a silent caller after $ms ms"
before=$(mesh_metric short 'tcp_close_total{direction="inbound",errno=""}')
t0=$(date +%s%N)
# (stdin from a process substitution: the shell does not wait for its sleep)
timeout 5 openssl s_client -connect "127.0.0.1:$t_in" -tls1_3 -CAfile "$certs/ca.pem" \
	-cert "$certs/gateway.pem" -key "$certs/gateway.key" -quiet < <(sleep 5) >/dev/null 2>&1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 3500 ] || fail "an idle admitted connection was held $ms ms past a 600 ms idle timeout"
[ "$(mesh_metric short 'tcp_close_total{direction="inbound",errno=""}')" -gt "$before" ] ||
	fail "idle close not counted"
echo "ok: idle timeout closed a silent admitted connection after $ms ms"

# 9. The exposition is valid for Prometheus: promtool finds nothing but the unit lint of the
# Linkerd names (milliseconds, "_ms", which it calls abbreviated units).
out=$(curl -s "http://$nsip:${MESH_OPS[callee]}/metrics" | promtool check metrics 2>&1)
other=$(grep -v 'metric names should not contain abbreviated units' <<<"$out" | grep -v '^$')
[ -z "$other" ] || fail "promtool check metrics: $other"
grep -q '^response_latency_ms ' <<<"$out" || fail "promtool did not see response_latency_ms: $out"
echo "ok: promtool accepts the exposition (only the _ms unit lint, by design)"
echo "PASS"
