#!/usr/bin/env bash
# kafka-fixture.sh start|stop DIR: the one Apache Kafka broker a `make test` run shares (ctest
# fixture "kafka": the test kafka_shared_up starts it, kafka_shared_down stops it after the
# last test that needs it). Tests isolate themselves with unique topic prefixes and group ids
# (tests/lib/with-stack.sh). The broker also stops by itself when the ctest process that
# started it is gone (a watchdog polls it), so an interrupted run leaves nothing behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tools/stack.sh"

cmd=${1:?start|stop}
dir=${2:?directory}
case $cmd in
start)
	[ -d "$dir" ] && sb_kafka_cluster_stop "$dir"
	rm -rf "$dir"
	mkdir -p "$dir"
	t0=$(date +%s.%N)
	sb_kafka_cluster_start "$dir" 1 || exit 1
	t1=$(date +%s.%N)
	pid=$(cat "$dir/k1/kafka.pid")
	owner=$PPID
	# The watchdog: detached from ctest's pipes, it outlives this script but not ctest.
	setsid bash -c '
		while kill -0 '"$owner"' 2>/dev/null && kill -0 '"$pid"' 2>/dev/null; do sleep 2; done
		kill -TERM '"$pid"' 2>/dev/null; sleep 10; kill -KILL '"$pid"' 2>/dev/null' \
		</dev/null >/dev/null 2>&1 &
	printf 'kafka fixture: broker pid %s on %s, up in %.1f s, RSS %s kB\n' "$pid" \
		"$(cat "$dir/kafka-bootstrap")" "$(awk -v a="$t0" -v b="$t1" "BEGIN{print b-a}")" \
		"$(ps -o rss= -p "$pid" | tr -d ' ')"
	;;
stop)
	sb_kafka_cluster_stop "$dir"
	;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
