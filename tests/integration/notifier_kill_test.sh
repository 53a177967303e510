#!/usr/bin/env bash
# stack: pg,redis,kafka
# labels: kafka,faults
# The notifier killed (kill -9) in the middle of a run and started again in the same consumer
# group: auth, messages, gateway, outbox, notifier and realtime on free ports against real
# PostgreSQL, Redis and the shared Apache Kafka broker; 100 users with one WebSocket client each
# in 50 conversations of 2-4 members; 5,000 sends through POST /v1/messages at 250/s
# (tests/faults/run.mjs through tests/lib/faults.sh). The notifier is killed after 1,500 sends
# and started again 3 s later (the dead member leaves the group after its 4-s session). Then
# every send was answered 202/200 (or a retryable problem), every acknowledged message reached
# every member's socket exactly once and in seq order, nothing is missing 60 s after the sends
# were answered and the notifier was ready again.
# The events the killed notifier had published but not committed are consumed again by the new
# one: its Redis dedupe (ce_id) and realtime's seq order keep them from reaching a client twice.
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/faults.sh"
t_start=$(date +%s)

faults_platform || { faults_dump; exit 1; }
faults_users "${SB_FAULTS_USERS:-100}" || exit 1
faults_run_start || { faults_dump; exit 1; }
fail=0

faults_wait_sent 1500 || fail=1
if [ $fail = 0 ]; then
	old=${SVC_PID[notifier]}
	published=$(curl -s "http://127.0.0.1:${SVC_OPS[notifier]}/metrics" |
		awk '/^notifier_events_total\{.*result="published"/ { s += $2 } END { print s + 0 }')
	kill -9 "$old"
	wait "$old" 2>/dev/null
	faults_fault_begin "kill -9 notifier (pid $old, $published events published)"
	sleep 3
	faults_start_notifier
	faults_mark "notifier started again (pid ${SVC_PID[notifier]})"
	sb_svc_wait_ready notifier || fail=1
	faults_fault_end "notifier ready"
fi
faults_run_finish || fail=1
[ "${published:-0}" -gt 0 ] || { echo "FAIL: the notifier had published nothing when it was killed"; fail=1; }
# The new notifier did the rest: it consumed (published or found duplicate) events.
after=$(curl -s "http://127.0.0.1:${SVC_OPS[notifier]}/metrics" |
	awk '/^notifier_events_total\{/ { s += $2 } END { print s + 0 }')
dup=$(curl -s "http://127.0.0.1:${SVC_OPS[notifier]}/metrics" |
	awk '/^notifier_events_total\{.*result="duplicate"/ { s += $2 } END { print s + 0 }')
echo "restarted notifier: $after events consumed, $dup of them already published by the killed one"
[ "$after" -gt 0 ] || { echo "FAIL: the restarted notifier consumed nothing"; fail=1; }
[ $fail = 0 ] || faults_dump
echo "duration: $(($(date +%s) - t_start)) s"
[ $fail = 0 ] && echo "PASS: notifier kill" || echo "FAIL: notifier kill"
exit $fail
