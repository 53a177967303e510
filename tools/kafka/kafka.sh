# kafka.sh: shell functions that fetch and run Apache Kafka brokers (KRaft, combined broker and
# controller) on loopback. Sourced by tools/stack.sh; used by `make run`, the test fixtures and
# the benchmarks. The broker's jars come from Maven Central (tools/kafka/pom.xml) into a cache
# outside the repository; nothing downloaded is committed.
#
#   SB_CACHE_DIR     cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/switchboard)
#   SB_KAFKA_HEAP    JVM heap flags of every broker (default: -Xms64m -Xmx320m)
#   SB_JAVA          java binary (default: java from PATH, else Debian's openjdk-17)

SB_KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' \
	"$(dirname "${BASH_SOURCE[0]}")/pom.xml")
SB_KAFKA_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SB_CACHE_DIR=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}
SB_KAFKA_LIBS=$SB_CACHE_DIR/kafka-$SB_KAFKA_VERSION/libs

sb_java() {
	if [ -n "${SB_JAVA:-}" ]; then echo "$SB_JAVA"; return; fi
	command -v java 2>/dev/null || echo /usr/lib/jvm/java-17-openjdk-amd64/bin/java
}

# sb_kafka_fetch: resolves the broker and its runtime dependencies into $SB_KAFKA_LIBS with
# Maven (local repository under $SB_CACHE_DIR/m2). Quick (a stamp check) when already there.
sb_kafka_fetch() {
	local stamp=$SB_KAFKA_LIBS/.sb-stamp pom=$SB_KAFKA_TOOLS/pom.xml
	[ -f "$stamp" ] && [ ! "$pom" -nt "$stamp" ] && return 0
	command -v mvn >/dev/null 2>&1 || { echo "kafka: mvn (Maven) is missing" >&2; return 1; }
	rm -rf "$SB_KAFKA_LIBS"
	mkdir -p "$SB_KAFKA_LIBS" || return 1
	echo "kafka: resolving Apache Kafka $SB_KAFKA_VERSION from Maven Central into $SB_KAFKA_LIBS"
	(cd "$SB_KAFKA_LIBS/.." && mvn -q -B -f "$pom" -Dmaven.repo.local="$SB_CACHE_DIR/m2" \
		dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$SB_KAFKA_LIBS") || { echo "kafka: maven failed" >&2; return 1; }
	ls "$SB_KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || { echo "kafka: no broker jar" >&2; return 1; }
	touch "$stamp"
}

# sb_kafka_java CLASS ARGS...: runs a Kafka main class with the cached jars (heap: SB_KAFKA_HEAP).
sb_kafka_java() {
	local cls=$1
	shift
	# shellcheck disable=SC2086
	exec "$(sb_java)" ${SB_KAFKA_HEAP:--Xms64m -Xmx320m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$SB_KAFKA_TOOLS/log4j2.properties" \
		-cp "$SB_KAFKA_LIBS/*" "$cls" "$@"
}

# sb_kafka_config DIR NODE_ID PORT VOTERS [EXTRA...]: writes DIR/server.properties for a
# combined broker+controller listening on 127.0.0.1:PORT (clients) and PORT+1 (controller).
# VOTERS is the controller quorum ("1@127.0.0.1:9093,..."); EXTRA lines are appended.
sb_kafka_config() {
	local dir=$1 id=$2 port=$3 voters=$4
	shift 4
	local n rf
	n=$(tr ',' '\n' <<<"$voters" | wc -l)
	rf=$((n < 3 ? n : 3))
	mkdir -p "$dir/data"
	{
		echo "# written by tools/kafka/kafka.sh"
		echo "process.roles=broker,controller"
		echo "node.id=$id"
		echo "controller.quorum.voters=$voters"
		echo "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))"
		echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
		echo "controller.listener.names=CONTROLLER"
		echo "inter.broker.listener.name=PLAINTEXT"
		echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
		echo "log.dirs=$dir/data"
		# The services create their topics through the Admin API; nothing appears by accident.
		echo "auto.create.topics.enable=false"
		echo "num.partitions=1"
		echo "default.replication.factor=$rf"
		echo "min.insync.replicas=$((rf > 1 ? 2 : 1))"
		echo "offsets.topic.replication.factor=$rf"
		echo "offsets.topic.num.partitions=8"
		echo "transaction.state.log.replication.factor=$rf"
		echo "transaction.state.log.min.isr=$((rf > 1 ? 2 : 1))"
		echo "transaction.state.log.num.partitions=4"
		echo "share.coordinator.state.topic.replication.factor=$rf"
		echo "share.coordinator.state.topic.min.isr=$((rf > 1 ? 2 : 1))"
		# A group forms at once (tests and a local run have no rolling start to wait for).
		echo "group.initial.rebalance.delay.ms=0"
		# Tests run consumers with short sessions (4 s) to see a dead member replaced quickly.
		echo "group.min.session.timeout.ms=1000"
		echo "num.network.threads=2"
		echo "num.io.threads=4"
		echo "log.segment.bytes=67108864"
		echo "log.retention.check.interval.ms=30000"
		for l in "$@"; do echo "$l"; done
	} >"$dir/server.properties"
}

# sb_kafka_start DIR NODE_ID PORT VOTERS CLUSTER_ID [EXTRA...]: formats DIR/data on first use
# (with CLUSTER_ID) and starts the broker in the background (its pid in DIR/kafka.pid, log in
# DIR/kafka.log). Does not wait: see sb_kafka_wait.
sb_kafka_start() {
	local dir=$1 id=$2 port=$3 voters=$4 cid=$5
	shift 5
	sb_kafka_fetch || return 1
	mkdir -p "$dir"
	sb_kafka_config "$dir" "$id" "$port" "$voters" "$@"
	if [ ! -f "$dir/data/meta.properties" ]; then
		(SB_KAFKA_HEAP="-Xms32m -Xmx128m" sb_kafka_java kafka.tools.StorageTool format \
			-t "$cid" -c "$dir/server.properties" --ignore-formatted) >"$dir/format.log" 2>&1 ||
			{ cat "$dir/format.log" >&2; return 1; }
	fi
	[ -f "$dir/kafka.log" ] && mv -f "$dir/kafka.log" "$dir/kafka.log.1"
	(sb_kafka_java kafka.Kafka "$dir/server.properties") >"$dir/kafka.log" 2>&1 &
	echo $! >"$dir/kafka.pid"
}

# sb_kafka_cluster_id: a fresh KRaft cluster id (16 random bytes, base64url without padding).
# One starting with '-' is drawn again: kafka-storage would read it as an option ("--cluster-id:
# expected one argument"), as Kafka's own Uuid.randomUuid avoids too (1 id in 64 did).
sb_kafka_cluster_id() {
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
		[ "${id:0:1}" != - ] && break
	done
	printf '%s\n' "$id"
}

# sb_kafka_wait DIR PORT SECONDS: waits until the broker of DIR accepts on PORT and says it
# started; fails early (with its log's tail) if it exited.
sb_kafka_wait() {
	local dir=$1 port=$2 n=$(($3 * 10)) pid
	pid=$(cat "$dir/kafka.pid" 2>/dev/null)
	while [ $n -gt 0 ]; do
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			echo "kafka: broker in $dir exited during start-up:" >&2
			tail -n 20 "$dir/kafka.log" >&2
			return 1
		fi
		if grep -q 'Kafka Server started\|\[KafkaRaftServer nodeId=[0-9]*\] Kafka Server started' \
			"$dir/kafka.log" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
		n=$((n - 1))
	done
	echo "kafka: broker in $dir not up on :$port after $3 s" >&2
	tail -n 20 "$dir/kafka.log" >&2
	return 1
}

# sb_kafka_stop DIR [SECONDS]: SIGTERM (a clean shutdown), SIGKILL after SECONDS (default 20).
sb_kafka_stop() {
	local dir=$1 n=$((${2:-20} * 10)) pid
	[ -s "$dir/kafka.pid" ] || return 0
	pid=$(cat "$dir/kafka.pid")
	if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q kafka.Kafka; then
		kill -TERM "$pid" 2>/dev/null
		while kill -0 "$pid" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/kafka.pid"
}
