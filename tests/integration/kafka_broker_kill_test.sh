#!/usr/bin/env bash
# stack: pg,redis,kafka3
# labels: kafka,faults
# One broker of a three-broker Apache Kafka cluster (replication factor 3, min.insync.replicas
# 2) killed (kill -9) in the middle of a run, and started again later: auth, messages, gateway,
# outbox, notifier and realtime on free ports against real PostgreSQL, Redis and the private
# cluster; 100 users with one WebSocket client each in 50 conversations of 2-4 members; 5,000
# sends through POST /v1/messages at 200/s (tests/faults/run.mjs through tests/lib/faults.sh).
# The broker killed is the notifier group's coordinator (the leader of its __consumer_offsets
# partition) when it also leads partitions of the messages topic, otherwise the broker leading
# most of them: the outbox's producer loses partition leaders (they move to the two others,
# which still make the ISR minimum) and the notifier loses its coordinator (commits and
# heartbeats move) at the same moment. It is killed after 1,000 sends; the test waits until its
# partitions have new leaders (the controller fences it after broker.session.timeout.ms, 9 s)
# and until 300 more deliveries reached the clients with the broker still dead, then starts it
# again (sb_kafka_restart) while the run goes on. Then every send was answered 202/200 (or a
# retryable problem), every acknowledged message reached every member's socket exactly once
# and in seq order, nothing is missing 60 s after the sends were answered and the broker was
# back at the latest.
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/faults.sh"
t_start=$(date +%s)
topic=${SB_KAFKA_TOPIC_PREFIX}sb.messages.v1
group=${SB_KAFKA_TOPIC_PREFIX}sb-notifier
read -ra kdirs <<<"${SB_TEST_KAFKA_DIRS:?}"
# 200/s: the sends last 25 s, and still go on when the broker is started again.
export SB_FAULTS_RATE=${SB_FAULTS_RATE:-200}

# leaders TOPIC: "<partition> <leader node id>" per partition, from the cluster's metadata.
leaders() {
	kcat -L -b "$SB_TEST_KAFKA_BROKERS" -t "$1" -m 10 2>/dev/null |
		sed -n 's/^ *partition \([0-9]*\), leader \(-\?[0-9]*\),.*/\1 \2/p'
}
# isrs TOPIC: "<partition> leader <id> isrs <ids>" per partition.
isrs() {
	kcat -L -b "$SB_TEST_KAFKA_BROKERS" -t "$1" -m 10 2>/dev/null |
		sed -n 's/^ *partition \([0-9]*\), leader \(-\?[0-9]*\), replicas: [0-9,]*, isrs: \([0-9,]*\).*/p\1 leader \2 isr \3/p' |
		tr '\n' ';'
}

faults_platform || { faults_dump; exit 1; }
faults_users "${SB_FAULTS_USERS:-100}" || exit 1
fail=0

# The broker to kill. A group's coordinator leads partition abs(javaHashCode(group)) % 8 of
# __consumer_offsets (offsets.topic.num.partitions=8 in tools/kafka/kafka.sh); checked against
# what librdkafka finds (kcat -G GROUP -d cgrp: "coordinator is ... id N") for three groups.
opart=$(node -e 'let h = 0; for (const ch of process.argv[1]) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
	console.log((h === -2147483648 ? 0 : Math.abs(h)) % 8)' "$group")
end=$((SECONDS + 20))
while :; do # __consumer_offsets exists once the notifier looked for its coordinator
	coord=$(leaders __consumer_offsets | awk -v p="$opart" '$1 == p && $2 > 0 { print $2 }')
	mapfile -t lead < <(leaders "$topic")
	[ ${#lead[@]} -ge 3 ] && [ -n "$coord" ] || [ $SECONDS -ge $end ] && break
	sleep 0.5
done
[ ${#lead[@]} -ge 3 ] && [ -n "$coord" ] ||
	{ echo "FAIL: no metadata for $topic (${#lead[@]} partitions) or __consumer_offsets ($coord)"; exit 1; }
victim=$(printf '%s\n' "${lead[@]}" | awk -v c="$coord" '{ n[$2]++ } END {
	if (n[c] > 0) { print c; exit }
	best = ""; for (b in n) if (best == "" || n[b] > n[best]) best = b; print best }')
vparts=$(printf '%s\n' "${lead[@]}" | awk -v v="$victim" '$2 == v { printf "%s%s", s, $1; s = "," }')
echo "messages topic $topic: leaders (partition node): $(printf '%s; ' "${lead[@]}")"
echo "notifier group $group: coordinator node $coord (__consumer_offsets partition $opart)"
echo "victim: node $victim$([ "$victim" = "$coord" ] && echo ", the group coordinator,") leading partitions $vparts of the messages topic"
vdir=${kdirs[$((victim - 1))]}
[ -s "$vdir/kafka.pid" ] || { echo "FAIL: no broker pid in $vdir"; exit 1; }

faults_run_start || { faults_dump; exit 1; }
faults_wait_sent 1000 || fail=1
if [ $fail = 0 ]; then
	vpid=$(cat "$vdir/kafka.pid")
	kill -9 "$vpid"
	faults_fault_begin "kill -9 broker node $victim (pid $vpid)"
	# The controller fences a silent broker after broker.session.timeout.ms (9 s by default),
	# then its partitions get new leaders among the in-sync replicas.
	moved=0 end=$((SECONDS + 30))
	while [ $SECONDS -lt $end ]; do
		if ! leaders "$topic" | awk -v v="$victim" '$2 == v || $2 < 0 { bad = 1 } END { exit bad }'; then
			sleep 0.1
			continue
		fi
		moved=1
		break
	done
	if [ $moved = 1 ]; then
		faults_mark "partitions $vparts have new leaders"
		echo "  $(isrs "$topic")"
	else
		echo "FAIL: node $victim still leads partitions (or some have no leader) 30 s after its death: $(isrs "$topic")"
		fail=1
	fi
	# With two brokers of three the platform goes on: deliveries progress before the restart
	# (300 more, or all that the sends acknowledged so far call for).
	read -r _ _ d0 _ <<<"$(faults_progress)"
	end=$((SECONDS + 30)) going=0
	while [ $SECONDS -lt $end ]; do
		read -r _ _ d1 owed <<<"$(faults_progress)"
		[ "$d1" -ge $((d0 + 300)) ] || [ "$d1" -ge "$owed" ] && { going=1; break; }
		sleep 0.1
	done
	if [ $going = 1 ]; then
		faults_mark "deliveries go on with node $victim dead"
	else
		echo "FAIL: deliveries stalled with node $victim dead: $d0 then $d1 (of $owed) 30 s later"
		fail=1
	fi
	faults_mark "restarting broker node $victim"
	if sb_kafka_restart "$vdir"; then
		faults_fault_end "broker node $victim up again (pid $(cat "$vdir/kafka.pid"))"
	else
		echo "FAIL: broker node $victim did not start again"
		fail=1
	fi
fi
faults_run_finish || fail=1
# For the record (Kafka's business, not the platform's): the restarted broker catching up.
end=$((SECONDS + 20))
while [ $SECONDS -lt $end ] && [ "$(isrs "$topic" | tr ';' '\n' | grep -c "isr .*$victim")" -lt ${#lead[@]} ]; do
	sleep 0.5
done
echo "at the end: $(isrs "$topic")"
[ $fail = 0 ] || faults_dump
echo "duration: $(($(date +%s) - t_start)) s"
[ $fail = 0 ] && echo "PASS: kafka broker kill" || echo "FAIL: kafka broker kill"
exit $fail
