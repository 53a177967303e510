#!/usr/bin/env bash
# stack: pg,redis,kafka1
# labels: kafka,faults
# The only Apache Kafka broker stopped for 20 s in the middle of a run, then started again:
# auth, messages, gateway, outbox, notifier and realtime on free ports against real PostgreSQL,
# Redis and a private one-broker cluster; 100 users with one WebSocket client each in 50
# conversations of 2-4 members; 5,000 sends through POST /v1/messages at 200/s
# (tests/faults/run.mjs through tests/lib/faults.sh). After 500 sends the broker gets SIGTERM
# (a clean shutdown; SIGKILL only if it is still running 15 s later); 20 s after the signal it
# is started again with sb_kafka_restart (same node, port and data). Sends do not need Kafka:
# each one must be answered 202 at once, the whole time (SB_FAULTS_STRICT_202: not even a
# retryable error), the outbox holding the events; meanwhile nothing is relayed (the outbox's
# lag grows). Afterwards every acknowledged message reached every member's socket exactly once
# and in seq order, nothing is missing 60 s after the sends were answered and the broker was
# back.
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/faults.sh"
t_start=$(date +%s)
kdir=${SB_TEST_KAFKA_DIRS:?}
kport=$(cat "$kdir/port")
export SB_FAULTS_RATE=${SB_FAULTS_RATE:-200} SB_FAULTS_STRICT_202=1
lag() { # the outbox's relay lag in seconds (age of the oldest unrelayed row)
	curl -s "http://127.0.0.1:${SVC_OPS[outbox]}/metrics" | awk '/^outbox_relay_lag_seconds / { print $2 }'
}

faults_platform || { faults_dump; exit 1; }
faults_users "${SB_FAULTS_USERS:-100}" || exit 1
faults_run_start || { faults_dump; exit 1; }
fail=0

faults_wait_sent 500 || fail=1
if [ $fail = 0 ]; then
	kpid=$(cat "$kdir/kafka.pid")
	t_stop=$(date +%s%3N)
	kill -TERM "$kpid"
	faults_fault_begin "SIGTERM to the broker (pid $kpid)"
	while kill -0 "$kpid" 2>/dev/null && [ $(($(date +%s%3N) - t_stop)) -lt 15000 ]; do sleep 0.1; done
	if kill -0 "$kpid" 2>/dev/null; then
		kill -9 "$kpid"
		faults_mark "broker still running 15 s after SIGTERM: SIGKILL"
	else
		faults_mark "broker exited"
	fi
	sleep 1
	(exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null &&
		{ echo "FAIL: something still accepts on the broker's port $kport"; fail=1; }
	while [ $(($(date +%s%3N) - t_stop)) -lt 18000 ]; do sleep 0.2; done
	l=$(lag)
	echo "outbox relay lag with the broker down: ${l:-?} s"
	awk -v l="${l:-0}" 'BEGIN { exit !(l >= 5) }' ||
		{ echo "FAIL: the outbox's lag is ${l:-?} s after 18 s without a broker: was it really down?"; fail=1; }
	while [ $(($(date +%s%3N) - t_stop)) -lt 20000 ]; do sleep 0.1; done
	faults_mark "restarting the broker"
	if sb_kafka_restart "$kdir"; then
		faults_fault_end "broker up again (pid $(cat "$kdir/kafka.pid"))"
	else
		echo "FAIL: the broker did not start again"
		fail=1
	fi
fi
faults_run_finish || fail=1
echo "outbox relay lag at the end: $(lag) s"
[ $fail = 0 ] || faults_dump
echo "duration: $(($(date +%s) - t_start)) s"
[ $fail = 0 ] && echo "PASS: kafka broker stop" || echo "FAIL: kafka broker stop"
exit $fail
