#!/usr/bin/env bash
# The runbook's consumer replay by time (docs/runbook.md, "Replay a topic from a point in
# time"), run as written against the real broker: three batches of records produced a second
# apart, then `kcat -C -o s@<ms> -e` from a moment between the first and second batch reads
# exactly the later records, and `-o s@<ms> -o e@<ms>` a window. Checks the command, not just
# its description.
# stack: pg,kafka
# labels: pgops
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
fail() { echo "FAIL: $*"; exit 1; }
b=${SB_TEST_KAFKA_BROKERS:?}
topic="${SB_TEST_KAFKA_PREFIX:?}sb.messages.v1"
produce() { # produce TAG: five records keyed k0..k4 with values TAG-0..TAG-4
	for i in 0 1 2 3 4; do echo "k$i:$1-$i"; done |
		kcat -P -b "$b" -t "$topic" -K: -X topic.partitioner=murmur2_random 2>&1 || fail "produce $1"
}
# The topic as the platform makes it: sb-outbox creates its topics at start (the broker does not
# create topics by itself).
sb_svc_ports outbox
sb_svc_start outbox
for i in $(seq 1 100); do
	kcat -L -b "$b" -t "$topic" 2>/dev/null | grep -Eq 'with [1-9][0-9]* partitions' && break
	[ $i = 100 ] && fail "sb-outbox did not create $topic"
	sleep 0.3
done
sb_svc_stop outbox
produce early
sleep 1.2
t1=$(date +%s%3N)
sleep 1.2
produce middle
sleep 1.2
t2=$(date +%s%3N)
sleep 1.2
produce late
from_t1=$(timeout 60 kcat -C -b "$b" -t "$topic" -o "s@$t1" -e -q -f '%s\n' | sort | tr '\n' ' ')
want="late-0 late-1 late-2 late-3 late-4 middle-0 middle-1 middle-2 middle-3 middle-4 "
[ "$from_t1" = "$want" ] || fail "from s@$t1: got '$from_t1', want '$want'"
window=$(timeout 60 kcat -C -b "$b" -t "$topic" -o "s@$t1" -o "e@$t2" -e -q -f '%s\n' | sort | tr '\n' ' ')
[ "$window" = "middle-0 middle-1 middle-2 middle-3 middle-4 " ] || fail "window s@$t1..e@$t2: got '$window'"
echo "replay by time: from $t1 got the 10 later records; window to $t2 the 5 between"
