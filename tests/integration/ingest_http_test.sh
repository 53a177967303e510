#!/usr/bin/env bash
# POST /api/v1/ingest/test through the gateway, and sb-ingest riding out a broker outage.
# stack: pg,redis,kafka1
# labels: ingest,faults
# sb-auth, sb-messages (the gateway needs it ready), sb-gateway and sb-ingest run on free ports; sb-ingest subscribes to the TLCP
# simulator (3 items x 4000 updates at 200/s) and writes to a private one-broker cluster.
#   - the endpoint: 401 without a token, 403 for alice (no ingest:write), 400 naming the field
#     (unknown item, unknown field, a value not of its type), 413 past the body limit, 202 with
#     the event id for admin, the same id for the same sample again;
#   - the broker stopped (SIGTERM) mid-stream: the queue reaches its high watermark, the
#     subscription is paused (nothing more is read from the feed) and the endpoint answers 429
#     with Retry-After, and the feed was asked (TLCP control LS_op=reconf) for at most 0.5
#     updates/s per item; the broker started again: the queue drains, the endpoint accepts
#     again, and the feed was asked for "unlimited" again (every pause and resume, in order);
#   - the stall timeout is 2 s, shorter than the pause: the resume must not take the pause for
#     a stall (a drop that would lose a restore in flight; this guards the case, it does not
#     force it: docs/ingest.md);
#   - afterwards the topic holds every update once (12,000 distinct ce_id, no record twice) plus
#     the accepted test samples, and every sample was acknowledged; /metrics passes promtool.
# SB_TEST_INGEST_MAX_IN_FLIGHT=5 runs it without the fix of the lost acknowledgements
# (docs/ingest.md, the 2026-12-06 report): on a loaded machine it then fails in some runs.
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/ingest/lib.sh"
tmp=${SB_TEST_TMP:?}
fails=0
ok() { echo "ok - $*"; }
bad() {
	echo "not ok - $*"
	fails=$((fails + 1))
}
metric() { curl -s "http://127.0.0.1:${SVC_OPS[ingest]}/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

# The stream (3 items at 200 updates/s) must outlast the endpoint checks and the broker stop on a
# loaded machine: 12,000 updates, one minute.
total=12000
sim_port=$(sb_free_port)
node "$root/tests/ingest/sim.mjs" --port "$sim_port" --items item1,item2,item3 --updates $((total / 3)) \
	--rate 200 --adapter-set SIM --stats "$tmp/sim.json" >"$tmp/sim.log" 2>&1 &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null; sb_svc_stop_all' EXIT

svcs="gateway auth messages ingest"
sb_svc_ports $svcs
creds=$tmp/dev-credentials.json
sb_svc_start auth
sb_svc_start messages
sb_svc_start ingest SB_INGEST_FEED_URL="ws://127.0.0.1:$sim_port" \
	SB_INGEST_MAPPING="$root/tests/ingest/sim_mapping.json" SB_INGEST_QUEUE_MAX=600 \
	SB_INGEST_HIGH_WATERMARK=500 SB_INGEST_LOW_WATERMARK=100 SB_INGEST_RECONNECT_BASE_MS=50 \
	SB_INGEST_RETRY_AFTER_MS=2000 SB_SHUTDOWN_GRACE_MS=10000 SB_INGEST_PAUSE_MAX_FREQUENCY=0.5 \
	SB_INGEST_STALL_MS=2000 \
	SB_INGEST_MAX_IN_FLIGHT="${SB_TEST_INGEST_MAX_IN_FLIGHT:-1}"
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=10000000
# sb_svc_start set its own EXIT trap: the simulator must stop with the services.
trap 'kill $sim_pid 2>/dev/null; sb_svc_stop_all' EXIT
sb_svc_wait_ready $svcs || exit 1
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	{
		echo "FAIL: seed-dev"
		exit 1
	}
token() {
	curl -s -u "$(jq -r ".$1.client_id" "$creds"):$(jq -r ".$1.client_secret" "$creds")" \
		-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token
}
admin=$(token admin) alice=$(token alice)
[ -n "$admin" ] && [ "$admin" != null ] && [ -n "$alice" ] && [ "$alice" != null ] ||
	{
		echo "FAIL: no tokens"
		exit 1
	}
url="$SB_GW/api/v1/ingest/test"
# post TOKEN BODY_FILE: prints "status content-type retry-after" then the body on the next line.
post() {
	local auth=()
	[ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
	curl -s -o "$tmp/body" -D "$tmp/head" -w '%{http_code} %{content_type}' "${auth[@]}" \
		-H 'Content-Type: application/json' --data-binary "@$2" "$url"
	printf ' %s\n' "$(awk 'tolower($1) == "retry-after:" { print $2 }' "$tmp/head" | tr -d '\r')"
	cat "$tmp/body"
	echo
}
good=$tmp/good.json
echo '{"samples":[{"item":"item2","fields":{"Seq":"100000","Value":"2.5","Status":"test","TimeStamp":"1767225600000"}}]}' >"$good"

# --- the endpoint's answers ---
out=$(post "" "$good")
case "$out" in "401 application/problem+json"*) ok "401 without a token" ;; *) bad "no token: $out" ;; esac
out=$(post "$alice" "$good")
case "$out" in "403 application/problem+json"*) ok "403 for alice (no ingest:write)" ;; *) bad "alice: $out" ;; esac
echo '{"samples":[{"item":"nope","fields":{"Seq":"1"}}]}' >"$tmp/b1.json"
out=$(post "$admin" "$tmp/b1.json")
case "$out" in "400 application/problem+json"*'samples[0].item'*) ok "400 naming samples[0].item" ;; *) bad "unknown item: $out" ;; esac
echo '{"samples":[{"item":"item1","fields":{"Seq":"1"}},{"item":"item1","fields":{"Value":"abc"}}]}' >"$tmp/b2.json"
out=$(post "$admin" "$tmp/b2.json")
case "$out" in "400 application/problem+json"*'samples[1].fields.Value'*) ok "400 naming samples[1].fields.Value" ;; *) bad "bad value: $out" ;; esac
echo '{"samples":[{"item":"item1","fields":{"Bogus":"1"}}]}' >"$tmp/b3.json"
out=$(post "$admin" "$tmp/b3.json")
case "$out" in "400 application/problem+json"*'samples[0].fields.Bogus'*) ok "400 naming samples[0].fields.Bogus" ;; *) bad "unknown field: $out" ;; esac
echo '{"samples":[]}' >"$tmp/b4.json"
out=$(post "$admin" "$tmp/b4.json")
case "$out" in "400 application/problem+json"*'samples'*) ok "400 for no samples" ;; *) bad "empty: $out" ;; esac
python3 -c 'import json; print(json.dumps({"samples":[{"item":"item1","fields":{"Status":"x"*2000000}}]}))' >"$tmp/big.json"
out=$(post "$admin" "$tmp/big.json")
case "$out" in "413 application/problem+json"*) ok "413 past the body limit" ;; *) bad "big body: ${out:0:200}" ;; esac
accepted=0
out=$(post "$admin" "$good")
id1=$(tail -n1 <<<"$out" | jq -r '.event_ids[0]' 2>/dev/null)
case "$out" in "202 application/json"*) accepted=$((accepted + 1)) ;; esac
out2=$(post "$admin" "$good")
id2=$(tail -n1 <<<"$out2" | jq -r '.event_ids[0]' 2>/dev/null)
case "$out2" in "202 application/json"*) accepted=$((accepted + 1)) ;; esac
if [[ "$out" == "202 application/json"* && "$id1" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ && "$id1" == "$id2" ]]; then
	ok "202 with a UUID v5 event id, the same for the same sample ($id1)"
else
	bad "valid sample: $out / $out2"
fi

# --- the broker stopped mid-stream ---
for _ in $(seq 1 100); do
	[ "$(metric 'ingest_published_total{result="ok"}')" -ge 300 ] 2>/dev/null && break
	sleep 0.1
done
kdir=${SB_TEST_KAFKA_DIRS%% *}
kpid=$(cat "$kdir/kafka.pid")
kill -TERM "$kpid"
for _ in $(seq 1 150); do kill -0 "$kpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$kpid" 2>/dev/null && kill -9 "$kpid"
ok "broker stopped after $(metric 'ingest_published_total{result="ok"}') samples acknowledged"
for _ in $(seq 1 200); do
	[ "$(metric ingest_paused)" = 1 ] && break
	sleep 0.1
done
if [ "$(metric ingest_paused)" = 1 ]; then
	ok "queue at its high watermark: paused (depth $(metric ingest_queue_depth))"
else
	bad "never paused (depth $(metric ingest_queue_depth))"
fi
r1=$(metric 'ingest_received_total{origin="tlcp"}')
out=$(post "$admin" "$good")
case "$out" in "429 application/problem+json "[0-9]*) ok "429 with Retry-After while paused" ;; *) bad "while paused: ${out:0:300}" ;; esac
sleep 2
r2=$(metric 'ingest_received_total{origin="tlcp"}')
if [ -n "$r1" ] && [ "$r1" = "$r2" ] && [ "$r1" -lt "$total" ]; then
	ok "subscription paused: nothing read from the feed in 2 s ($r1 received)"
else
	bad "the feed was still read while paused: $r1 then $r2"
fi
# reconf: the frequencies the simulator was asked for, in order (sim.json's "reconf").
# On a loaded machine the queue may already have paused and resumed before the broker stopped:
# the requests alternate, and while paused the last one lowered the frequency.
reconfs() { jq -r '.reconf | join(" ")' "$tmp/sim.json" 2>/dev/null; }
for _ in $(seq 1 50); do
	[[ "$(reconfs) " =~ ^(0\.500\ unlimited\ )*0\.500\ $ ]] && break
	sleep 0.1
done
at_pause=$(jq '.reconf | length' "$tmp/sim.json" 2>/dev/null)
if [[ "$(reconfs) " =~ ^(0\.500\ unlimited\ )*0\.500\ $ ]]; then
	ok "pausing asked the feed for LS_requested_max_frequency=0.500 (LS_op=reconf; requests so far: $(reconfs))"
else
	bad "while paused the feed was asked for: '$(reconfs)' (want '0.500 unlimited ... 0.500')"
fi

if sb_kafka_restart "$kdir"; then ok "broker started again"; else bad "broker restart"; fi
# Resumed once the queue drained below its low watermark; the feed then pours in what it held
# back and may reach the high watermark again while the broker catches up, so the first 0 seen
# is what counts, not the value a moment later.
resumed=0
for _ in $(seq 1 1200); do
	[ "$(metric ingest_paused)" = 0 ] && { resumed=1; break; }
	sleep 0.1
done
[ $resumed = 1 ] && ok "resumed after the broker came back" || bad "still paused"
after_pause() { jq -r --argjson n "${at_pause:-0}" '.reconf[$n] // empty' "$tmp/sim.json" 2>/dev/null; }
for _ in $(seq 1 50); do
	[ "$(after_pause)" = unlimited ] && break
	sleep 0.1
done
if [ "$(after_pause)" = unlimited ]; then
	ok "resuming asked the feed for LS_requested_max_frequency=unlimited again"
else
	bad "after resuming the feed was asked for: '$(reconfs)' (want 'unlimited' after the first $at_pause)"
fi
for _ in $(seq 1 100); do
	out=$(post "$admin" "$good")
	case "$out" in "202 application/json"*)
		accepted=$((accepted + 1))
		break
		;;
	esac
	sleep 0.2
done
case "$out" in "202 application/json"*) ok "202 again after resuming" ;; *) bad "after resuming: ${out:0:200}" ;; esac

# --- everything delivered, once ---
for _ in $(seq 1 1800); do
	[ "$(metric 'ingest_received_total{origin="tlcp"}')" = "$total" ] && [ "$(metric ingest_queue_depth)" = 0 ] && break
	sleep 0.1
done
recv=$(metric 'ingest_received_total{origin="tlcp"}') acked=$(metric 'ingest_published_total{result="ok"}')
failed=$(metric 'ingest_published_total{result="error"}')
if [ "$recv" = "$total" ] && [ "$acked" = $((total + accepted)) ] && [ "$failed" = 0 ]; then
	ok "$total updates + $accepted test samples received and acknowledged, 0 failed"
else
	bad "received $recv, acknowledged $acked (want $((total + accepted))), failed $failed"
fi
topic="${SB_KAFKA_TOPIC_PREFIX}telemetry.raw.v1"
# Read the whole topic (read_uncommitted: up to the high watermark, nothing transactional is
# involved); again (up to 10 times, 2 s apart) while records are missing: a read that ends early
# on one partition must not pass for a loss, and a real loss still fails below (with, per
# partition, the offsets read: a hole in them means the reader missed records, a short tail a
# loss or an early end).
for _ in $(seq 1 10); do
	ingest_topic_ids "$SB_TEST_KAFKA_BROKERS" "$topic" >"$tmp/ids"
	records=$(wc -l <"$tmp/ids") distinct=$(sort -u "$tmp/ids" | wc -l)
	[ "$records" -ge $((total + accepted)) ] && break
	sleep 2
done
if [ "$records" = $((total + accepted)) ] && [ "$distinct" = $((total + 1)) ]; then
	ok "topic: $records records, $distinct distinct ids ($total updates once + the test sample $accepted times)"
else
	bad "topic: $records records (want $((total + accepted))), $distinct distinct ids (want $((total + 1)))"
	# What is missing where: records per key (the feed sends 4,000 per item; item2 also holds
	# the test samples), per partition the offsets seen, and what the broker said at restart.
	ingest_topic_report "$SB_TEST_KAFKA_BROKERS" "$topic" "$tmp/recs"
	grep -iE 'truncat|recover|producer state|OutOfOrder|epoch' "$kdir/kafka.log" | tail -n 20 | sed 's/^/# broker: /'
fi
# Every later pause (the feed pours in what it held back) lowered and restored the frequency
# too: the requests alternate and the last one, with the queue drained, lifted the limit.
lowered=$(metric 'ingest_frequency_requests_total{kind="lower"}')
restored=$(metric 'ingest_frequency_requests_total{kind="restore"}')
if [[ "$(reconfs) " =~ ^(0\.500\ unlimited\ )+$ ]] && [ "$lowered" = "$restored" ] &&
	[ "$lowered" = "$(jq '.reconf | length / 2' "$tmp/sim.json")" ]; then
	ok "every pause lowered the frequency and every resume restored it ($lowered times)"
else
	bad "reconf requests '$(reconfs)', metrics lower $lowered restore $restored"
fi
# Pauses longer than the stall timeout did not count as stalls: the connection never dropped.
recov=$(jq .recoveries "$tmp/sim.json") stalls=$(metric 'ingest_reconnects_total{reason="stall"}')
if [ "$recov" = 0 ] && [ "${stalls:-0}" = 0 ]; then
	ok "no reconnect: the pauses (longer than SB_INGEST_STALL_MS=2000) were not taken for stalls"
else
	bad "recoveries $recov, stall reconnects ${stalls:-0} (want 0 and 0)"
fi
if curl -s "http://127.0.0.1:${SVC_OPS[ingest]}/metrics" | promtool check metrics >"$tmp/promtool.out" 2>&1; then
	ok "/metrics passes promtool check metrics"
else
	bad "promtool check metrics: $(head -c 500 "$tmp/promtool.out")"
fi
sim=$(cat "$tmp/sim.json")
echo "simulator: $sim"
if [ $fails -gt 0 ]; then
	# the services' and the simulator's logs, for a failure in CI
	keep=/tmp/ingest-http-fail.$$
	mkdir -p "$keep" && find "$tmp" -maxdepth 2 \( -name '*.log' -o -name '*.json' \) -exec cp {} "$keep/" \; &&
		echo "# kept the logs of $tmp in $keep"
fi
[ $fails -eq 0 ] && echo "PASS" || echo "FAIL: $fails checks failed"
exit $((fails > 0))
