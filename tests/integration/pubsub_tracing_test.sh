#!/usr/bin/env bash
# One pubsub message's life as one trace in a real Jaeger: a publish through the gateway with a
# traceparent of the test's own, a consume and an ack (single, and batched for a second message)
# by a client outside that trace. Jaeger's query API must show, in the publisher's trace, the
# gateway's request span, pubsub's server span of the publish, "pubsub route", "pubsub deliver"
# and "pubsub ack" (carrying the message id), every span's parent inside the trace but the
# gateway's, whose parent is the test's span.
# A batch publish of three messages shows one "pubsub route" span per message with its id.
# stack: pg,redis
# labels: pubsub,tracing,e2e
set -u
root=${SB_SOURCE_ROOT:?}
tmp=${SB_TEST_TMP:?}
. "$root/tools/stack.sh"
. "$root/tools/jaeger.sh"
. "$root/tests/lib/services.sh"

sb_jaeger_start "$tmp/jaeger" || { echo "FAIL: jaeger did not start"; exit 1; }
trap 'sb_svc_stop_all; sb_jaeger_stop' EXIT
otlp=(SB_OTLP_ENDPOINT="$SB_JAEGER_OTLP" SB_TRACE_SAMPLE_PERCENT=100)
sb_svc_ports gateway auth messages pubsub
sb_svc_start auth "${otlp[@]}" SB_AUTH_PBKDF2_ITERATIONS=100000
sb_svc_start messages
sb_svc_start pubsub "${otlp[@]}"
sb_svc_start gateway "${otlp[@]}" SB_RATE_LIMIT_PER_MIN=100000
sb_svc_wait_ready auth messages pubsub gateway || exit 1

DATABASE_URL=$SB_TEST_PG_DSN SB_AUTH_PBKDF2_ITERATIONS=100000 "$SB_BUILD_ROOT/bin/sb-auth" \
	seed-dev --out "$tmp/creds.json" >/dev/null || { echo "FAIL: seed-dev"; exit 1; }
admin=$(curl -s -u "$(jq -r .admin.client_id "$tmp/creds.json"):$(jq -r .admin.client_secret "$tmp/creds.json")" \
	-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
[ "${#admin}" -gt 100 ] || { echo "FAIL: no admin token"; exit 1; }
api() { # method path [body] [traceparent]
	curl -s -X "$1" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		${4:+-H "traceparent: $4"} ${3:+-d "$3"} "$SB_GW$2"
}
topic=traced-$$
[ "$(api POST /api/v1/topics "{\"name\":\"$topic\",\"type\":\"queue\"}" | jq -r .name)" = "$topic" ] ||
	{ echo "FAIL: topic not created"; exit 1; }

newtp() { echo "00-$(openssl rand -hex 16)-$(openssl rand -hex 8)-01"; }
life() { # traceparent ack-kind: publish, consume, ack; prints the message id
	local id m lease
	id=$(api POST /api/v1/messages/publish "{\"topic\":\"$topic\",\"payload\":{\"n\":1}}" "$1" | jq -r .id)
	[[ $id =~ ^[0-9a-f-]{36}$ ]] || { echo "FAIL: publish answered no id" >&2; return 1; }
	m=$(api GET "/api/v1/messages/consume/$topic?max=1&wait_ms=2000")
	[ "$(jq -r '.messages[0].id' <<<"$m")" = "$id" ] || { echo "FAIL: consume: $m" >&2; return 1; }
	lease=$(jq -r '.messages[0].lease_id' <<<"$m")
	if [ "$2" = single ]; then
		[ "$(api POST "/api/v1/messages/$id/ack" "{\"lease_id\":\"$lease\"}" | jq -r .state)" = acked ] ||
			{ echo "FAIL: ack" >&2; return 1; }
	else
		[ "$(api POST /api/v1/messages/ack "{\"acks\":[{\"id\":\"$id\",\"lease_id\":\"$lease\"}]}" |
			jq -r '.results[0].ok')" = true ] || { echo "FAIL: batch ack" >&2; return 1; }
	fi
	echo "$id"
}
check_trace() { # traceparent message-id ack-kind
	local t=${1:3:32} parent=${1:36:16} ok=0 ops
	for _ in $(seq 1 60); do
		curl -s "$SB_JAEGER_QUERY/api/traces/$t" >"$tmp/trace.json"
		ops=$(jq -r '.data[0] as $d | [$d.spans[] | "\($d.processes[.processID].serviceName):\(.operationName)"] | sort | join(" ")' \
			"$tmp/trace.json" 2>/dev/null)
		ok=1
		for want in "sb-gateway:POST /api/v1/messages/publish" "sb-pubsub:pubsub.Publish" \
			"sb-pubsub:pubsub route" "sb-pubsub:pubsub deliver" "sb-pubsub:pubsub ack"; do
			[[ " $ops " == *" $want "* ]] || ok=0
		done
		[ $ok = 1 ] && break
		sleep 0.5
	done
	echo "trace $t ($3 ack): $ops"
	[ $ok = 1 ] || { echo "FAIL: the trace lacks a span of the message's life"; return 1; }
	# every span's parent is in the trace, but the gateway's, whose parent is the test's span
	local orphans
	orphans=$(jq -r --arg p "$parent" '.data[0] as $d | ($d.spans | map(.spanID)) as $ids | $d.spans[] |
		select([.references[]? | select(.refType == "CHILD_OF") | .spanID | select(. as $x | $ids | index($x))] | length == 0) |
		"\($d.processes[.processID].serviceName):\(.operationName):\([.references[]?.spanID] | join(","))"' "$tmp/trace.json")
	[ "$orphans" = "sb-gateway:POST /api/v1/messages/publish:$parent" ] ||
		{ echo "FAIL: not one tree under the test's span: $orphans"; return 1; }
	for op in "pubsub route" "pubsub deliver" "pubsub ack"; do
		[ "$(jq -r --arg op "$op" '[.data[0].spans[] | select(.operationName == $op) | .tags[] |
			select(.key == "messaging.message.id") | .value] | unique | join(",")' "$tmp/trace.json")" = "$2" ] ||
			{ echo "FAIL: \"$op\" does not carry the message id $2"; return 1; }
	done
}
tp1=$(newtp) tp2=$(newtp)
id1=$(life "$tp1" single) || exit 1
id2=$(life "$tp2" batch) || exit 1
check_trace "$tp1" "$id1" single || exit 1
check_trace "$tp2" "$id2" batch || exit 1
# A batch publish (docs/pubsub.md "Batch publish"): one "pubsub route" span per stored message,
# each carrying its id, under the batch's server span, in the publisher's trace.
tp3=$(newtp)
ids=$(api POST /api/v1/messages/publish-batch \
	"{\"topic\":\"$topic\",\"messages\":[{\"payload\":1},{\"payload\":2},{\"payload\":3}]}" "$tp3" |
	jq -r '.ids | sort | join(",")')
[[ $ids =~ ^[0-9a-f-]{36},[0-9a-f-]{36},[0-9a-f-]{36}$ ]] || { echo "FAIL: publish-batch answered $ids"; exit 1; }
ok=0
for _ in $(seq 1 60); do
	curl -s "$SB_JAEGER_QUERY/api/traces/${tp3:3:32}" >"$tmp/trace.json"
	routes=$(jq -r '[.data[0].spans[] | select(.operationName == "pubsub route") | .tags[] |
		select(.key == "messaging.message.id") | .value] | sort | join(",")' "$tmp/trace.json" 2>/dev/null)
	server=$(jq -r '.data[0] as $d | [$d.spans[] | select(.operationName == "pubsub.PublishBatch" and
		$d.processes[.processID].serviceName == "sb-pubsub")] | length' "$tmp/trace.json" 2>/dev/null)
	[ "$routes" = "$ids" ] && [ "$server" = 1 ] && { ok=1; break; }
	sleep 0.5
done
echo "batch trace ${tp3:3:32}: route spans of $routes, $server PublishBatch span of sb-pubsub"
[ $ok = 1 ] || { echo "FAIL: the batch's trace lacks a route span per message ($ids)"; exit 1; }
echo "ok: publish, route, deliver and ack of a message are one trace in Jaeger"
