#!/usr/bin/env bash
# with-stack.sh --stack pg,redis,kafka -- COMMAND...: starts the named servers on free loopback
# ports in a fresh temporary directory, exports their addresses, runs COMMAND, stops everything
# (also when COMMAND fails or the script is interrupted) and exits with COMMAND's status.
# Servers:
#   pg      a throwaway PostgreSQL cluster
#   redis   a Redis without persistence
#   kafka   the Apache Kafka broker the ctest run shares (fixture "kafka", started by
#           tests/lib/kafka-fixture.sh into SB_TEST_KAFKA_SHARED); when the variable is unset
#           (a test run by hand) a private one-broker cluster is started instead. Every test
#           gets its own topic prefix: topics and groups of two tests never meet.
#   kafka1  a private one-broker cluster, for tests that stop or kill the broker
#   kafka3  a private three-broker cluster (replication factor 3, min.insync.replicas 2) for
#           broker-failure tests
#   devbus  librdkafka's mock cluster, only for tests that inject broker errors on demand
# Exported:
#   SB_TEST_PG_DSN         postgresql://postgres@127.0.0.1:PORT/postgres
#   SB_TEST_PG_PORT, SB_TEST_PG_DIR (pg_ctl -D), SB_TEST_PG_BIN
#   SB_TEST_REDIS_URL      redis://127.0.0.1:PORT
#   SB_TEST_KAFKA_BROKERS  bootstrap list (kafka, kafka3 or devbus)
#   SB_TEST_KAFKA_PREFIX   this test's topic prefix ("t<random>."), also exported as
#                          SB_KAFKA_TOPIC_PREFIX so that every service started here uses it
#   SB_TEST_KAFKA_DIRS     kafka1, kafka3: the brokers' directories (k1 k2 k3: kafka.pid, port,
#                          kafka.log); restart one with `sb_kafka_restart DIR` (tools/stack.sh)
#   SB_TEST_DEVBUS_CTL     host:port of devbus's control interface
#   SB_TEST_TMP            the temporary directory (removed afterwards)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tools/stack.sh"

stack=""
while [ $# -gt 0 ]; do
	case $1 in
	--stack) stack=$2; shift 2 ;;
	--) shift; break ;;
	*) break ;;
	esac
done

tmp=$(mktemp -d /tmp/sb-test.XXXXXX)
chmod 755 "$tmp"
export SB_TEST_TMP=$tmp
cleanup() {
	sb_kafka_cluster_stop "$tmp/kafka"
	sb_devbus_stop "$tmp"
	sb_redis_stop "$tmp"
	sb_pg_stop "$tmp"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each server gets a few attempts: another test running at the same time may have picked the
# same free port between our choice and the bind.
start_pg() {
	port=$(sb_free_port)
	sb_pg_start "$tmp" "$port" "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" || return 1
	export SB_TEST_PG_PORT=$port SB_TEST_PG_DIR=$tmp/pg/data SB_TEST_PG_BIN=$PG_BIN
	export SB_TEST_PG_DSN="postgresql://postgres@127.0.0.1:$port/postgres"
}
start_redis() {
	port=$(sb_free_port)
	sb_redis_start "$tmp" "$port" || { sb_redis_stop "$tmp"; return 1; }
	export SB_TEST_REDIS_URL="redis://127.0.0.1:$port"
}
start_devbus() {
	local bin=${SB_BUILD_ROOT:-$root/build}/bin/devbus ctl
	ctl=$(sb_free_port)
	sb_devbus_start "$tmp" "$bin" "$ctl" || { sb_devbus_stop "$tmp"; return 1; }
	export SB_TEST_DEVBUS_CTL="127.0.0.1:$ctl"
	SB_TEST_KAFKA_BROKERS=$(cat "$tmp/kafka-bootstrap")
	export SB_TEST_KAFKA_BROKERS
}
kafka_prefix() {
	SB_TEST_KAFKA_PREFIX="t$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')."
	export SB_TEST_KAFKA_PREFIX SB_KAFKA_TOPIC_PREFIX=$SB_TEST_KAFKA_PREFIX
}
start_kafka() {
	local shared=${SB_TEST_KAFKA_SHARED:-}
	if [ -n "$shared" ]; then
		[ -s "$shared/kafka-bootstrap" ] || {
			echo "with-stack: the shared broker is not up ($shared/kafka-bootstrap missing)" >&2
			return 1
		}
		SB_TEST_KAFKA_BROKERS=$(cat "$shared/kafka-bootstrap")
	else
		sb_kafka_cluster_start "$tmp/kafka" 1 || { sb_kafka_cluster_stop "$tmp/kafka"; return 1; }
		SB_TEST_KAFKA_BROKERS=$(cat "$tmp/kafka/kafka-bootstrap")
	fi
	export SB_TEST_KAFKA_BROKERS
	kafka_prefix
}
start_private_kafka() {
	local n=$1 i dirs=""
	sb_kafka_cluster_start "$tmp/kafka" "$n" || { sb_kafka_cluster_stop "$tmp/kafka"; return 1; }
	SB_TEST_KAFKA_BROKERS=$(cat "$tmp/kafka/kafka-bootstrap")
	for i in $(seq 1 "$n"); do dirs+="${dirs:+ }$tmp/kafka/k$i"; done
	export SB_TEST_KAFKA_BROKERS SB_TEST_KAFKA_DIRS=$dirs
	kafka_prefix
}
start_kafka1() { start_private_kafka 1; }
start_kafka3() { start_private_kafka 3; }
for s in ${stack//,/ }; do
	case $s in
	pg | redis | kafka | kafka1 | kafka3 | devbus) ;;
	*) echo "with-stack: unknown server '$s'" >&2; exit 2 ;;
	esac
	ok=0
	for attempt in 1 2 3; do
		if "start_$s"; then ok=1; break; fi
		echo "with-stack: starting $s failed (attempt $attempt), retrying on another port" >&2
	done
	[ $ok = 1 ] || { echo "with-stack: cannot start $s" >&2; exit 1; }
done

set +e
"$@"
rc=$?
exit $rc
