# stack.sh: shell functions that start and stop the servers Switchboard runs against
# (PostgreSQL, Redis, Apache Kafka, devbus) on loopback. Sourced by tools/run-local.sh (make
# run), tests/lib/with-stack.sh (integration tests) and the benchmarks, so all start them the
# same way.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

# sb_free_port: prints a TCP port on 127.0.0.1 that nothing uses now. It is chosen below the
# kernel's ephemeral range (ip_local_port_range), where outgoing connections never take ports,
# so a port found free stays free unless another test picks the same one. Inside a test
# (SB_TEST_TMP set) the ports already handed out are remembered in $SB_TEST_TMP/.ports and never
# handed out again: a test asks for a dozen or more before it starts anything, and random picks
# from ~22,000 ports repeat within such a run a few times in a thousand ("Address in use").
sb_free_port() {
	local p used lo given=${SB_TEST_TMP:+$SB_TEST_TMP/.ports}
	lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ -n "$lo" ] && [ "$lo" -gt 12000 ] || lo=32768
	used=$(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://')
	[ -n "$given" ] && [ -f "$given" ] && used+=$'\n'$(cat "$given")
	while :; do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
		grep -qx "$p" <<<"$used" && continue
		[ -n "$given" ] && echo "$p" >>"$given" 2>/dev/null
		echo "$p"
		return 0
	done
}

# sb_wait_port HOST PORT SECONDS: waits until something accepts on HOST:PORT.
sb_wait_port() {
	local host=$1 port=$2 n=$(($3 * 10))
	while [ $n -gt 0 ]; do
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# sb_wait_http URL SECONDS: waits until GET URL answers 200; 1 when it did not in time.
sb_wait_http() {
	local url=$1 n=$(($2 * 5))
	until [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url")" = 200 ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.2
	done
}

# sb_wait_gateway GATEWAY_URL SECONDS SERVICE...: waits until the gateway reaches each service
# (its GET /v1/health/SERVICE answers 200; a service the gateway has no such route for (404) is
# skipped). A service's own /ready says nothing of the gateway's connection to it: the gateway's
# RPC clients dial again at most 1 s apart, so for a moment after a service turns ready the
# gateway still refuses requests for it. 1 (the gateway's answer printed) when one is not
# reached in time.
sb_wait_gateway() {
	local gw=$1 secs=$2 s code
	shift 2
	for s in "$@"; do
		[ "$s" = gateway ] && continue
		code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$gw/v1/health/$s")
		[ "$code" = 404 ] && continue
		sb_wait_http "$gw/v1/health/$s" "$secs" && continue
		echo "the gateway does not reach $s: $(curl -s -m 2 "$gw/v1/health/$s")"
		return 1
	done
}

# sb_pg_start DIR PORT [EXTRA_OPTS]: a throwaway PostgreSQL cluster in DIR/pg (created when
# absent), run as the postgres user, listening on 127.0.0.1:PORT and a socket in DIR/pg.
sb_pg_start() {
	local dir=$1/pg port=$2 extra=${3:-}
	mkdir -p "$dir"
	chmod 755 "$1"
	chown postgres:postgres "$dir"
	chmod 700 "$dir"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
	fi
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
		-o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=300 $extra" \
		start >/dev/null || { tail -20 "$dir/server.log" >&2; return 1; }
}

# sb_pg_stop DIR: fast shutdown of the cluster in DIR/pg (no error if it is not running).
sb_pg_stop() {
	local dir=$1/pg
	[ -f "$dir/data/postmaster.pid" ] || return 0
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
}

# sb_redis_start DIR PORT: a Redis with no persistence on 127.0.0.1:PORT, data in DIR/redis.
sb_redis_start() {
	local dir=$1/redis port=$2
	mkdir -p "$dir"
	redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
		--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
	sb_wait_port 127.0.0.1 "$port" 10
}

# sb_redis_stop DIR
sb_redis_stop() {
	local pidf=$1/redis/redis.pid
	[ -f "$pidf" ] || return 0
	kill "$(cat "$pidf")" 2>/dev/null || true
	rm -f "$pidf"
}

# sb_devbus_start DIR DEVBUS_BIN CONTROL_PORT [LISTEN]: devbus (librdkafka's mock cluster) in the
# background; waits for DIR/kafka-bootstrap. LISTEN (host:port) adds a stable bootstrap address.
sb_devbus_start() {
	local dir=$1 bin=$2 ctl=$3 listen=${4:-}
	rm -f "$dir/kafka-bootstrap"
	local args=(--brokers 3 --bootstrap-file "$dir/kafka-bootstrap" --control "127.0.0.1:$ctl"
		--parent-pid $$)
	[ -n "$listen" ] && args+=(--listen "$listen")
	"$bin" "${args[@]}" >"$dir/devbus.log" 2>&1 &
	echo $! >"$dir/devbus.pid"
	local n=100
	while [ ! -s "$dir/kafka-bootstrap" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	[ -s "$dir/kafka-bootstrap" ] || { cat "$dir/devbus.log" >&2; return 1; }
}

# sb_devbus_stop DIR
sb_devbus_stop() {
	local pidf=$1/devbus.pid
	[ -f "$pidf" ] || return 0
	kill "$(cat "$pidf")" 2>/dev/null || true
	rm -f "$pidf"
}

# sb_nginx_start PREFIX CONF: nginx (master and workers) as a background child of the calling
# shell, with PREFIX as its prefix directory (-p) and CONF as its configuration, which must say
# `daemon off;` and `pid PREFIX/nginx.pid;`. The configuration is checked first; nginx's own
# start-up errors go to PREFIX/nginx.out. Waits up to 10 s for the pid file.
sb_nginx_start() {
	local prefix=$1 conf=$2 n=100
	mkdir -p "$prefix"
	rm -f "$prefix/nginx.pid"
	nginx -t -q -p "$prefix/" -c "$conf" >"$prefix/nginx.out" 2>&1 || { cat "$prefix/nginx.out" >&2; return 1; }
	nginx -p "$prefix/" -c "$conf" >>"$prefix/nginx.out" 2>&1 &
	while [ ! -s "$prefix/nginx.pid" ] && [ $n -gt 0 ]; do
		kill -0 $! 2>/dev/null || { cat "$prefix/nginx.out" >&2; return 1; }
		sleep 0.1
		n=$((n - 1))
	done
	[ -s "$prefix/nginx.pid" ] || { cat "$prefix/nginx.out" >&2; return 1; }
}

# sb_nginx_stop PREFIX: graceful stop (SIGQUIT) of the nginx whose pid file is PREFIX/nginx.pid,
# then SIGKILL after 5 s (no error if it is not running).
sb_nginx_stop() {
	local pidf=$1/nginx.pid pid n=50
	[ -s "$pidf" ] || return 0
	pid=$(cat "$pidf")
	kill -QUIT "$pid" 2>/dev/null || { rm -f "$pidf"; return 0; }
	while kill -0 "$pid" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$pidf"
}

# Apache Kafka brokers (KRaft): sb_kafka_fetch, sb_kafka_start, sb_kafka_wait, sb_kafka_stop.
. "$(dirname "${BASH_SOURCE[0]}")/kafka/kafka.sh"

# sb_free_port_pair: prints a port P such that P and P+1 are both free (a broker's client and
# controller listeners).
sb_free_port_pair() {
	local p
	while :; do
		p=$(sb_free_port)
		ss -Htln "sport = :$((p + 1))" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
	done
}

# sb_kafka_cluster_start DIR N: N brokers (1 or 3; combined broker+controller each) in DIR/k1..kN
# on free loopback ports; waits until all are up and writes the bootstrap list to
# DIR/kafka-bootstrap. With 3: replication factor 3 and min.insync.replicas 2 by default.
sb_kafka_cluster_start() {
	local dir=$1 n=$2 i voters="" boot="" cid
	local -a ports=()
	cid=$(sb_kafka_cluster_id)
	for i in $(seq 1 "$n"); do
		ports[i]=$(sb_free_port_pair)
		voters+="${voters:+,}$i@127.0.0.1:$((ports[i] + 1))"
		boot+="${boot:+,}127.0.0.1:${ports[i]}"
	done
	for i in $(seq 1 "$n"); do
		sb_kafka_start "$dir/k$i" "$i" "${ports[i]}" "$voters" "$cid" || return 1
	done
	for i in $(seq 1 "$n"); do
		sb_kafka_wait "$dir/k$i" "${ports[i]}" 90 || return 1
		echo "${ports[i]}" >"$dir/k$i/port"
	done
	echo "$boot" >"$dir/kafka-bootstrap"
}

# sb_kafka_restart DIR: starts again a broker of a cluster made by sb_kafka_cluster_start that was
# stopped or killed (same node, ports, data) and waits up to 90 s until it says it started.
sb_kafka_restart() {
	local dir=$1 before n=900 pid
	before=$(grep -c 'Kafka Server started' "$dir/kafka.log" 2>/dev/null)
	(sb_kafka_java kafka.Kafka "$dir/server.properties") >>"$dir/kafka.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/kafka.pid"
	while [ $n -gt 0 ]; do
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/kafka.log" >&2; return 1; }
		[ "$(grep -c 'Kafka Server started' "$dir/kafka.log")" -gt "${before:-0}" ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
	tail -n 20 "$dir/kafka.log" >&2
	return 1
}

# sb_kafka_cluster_stop DIR: stops every broker under DIR (k1, k2, ...).
sb_kafka_cluster_stop() {
	local d p
	local -a w=()
	for d in "$1"/k[0-9]*; do
		[ -d "$d" ] || continue
		sb_kafka_stop "$d" 10 &
		w+=($!)
	done
	for p in "${w[@]+"${w[@]}"}"; do wait "$p"; done
}
