#!/usr/bin/env bash
# run-local.sh BUILD_DIR: runs the whole platform on this machine until Ctrl-C (`make run`).
#
# Starts PostgreSQL, Redis, one Apache Kafka broker (KRaft), every service binary found in
# BUILD_DIR/bin and nginx in front of them, waits until each service's ops /ready answers 200,
# prints where everything is, and on SIGINT/SIGTERM stops it all and exits 0. All state (the
# PostgreSQL data directory, the broker's log directory, logs, pid files, the generated
# nginx.conf) lives in .run/ of the repository, or in SB_RUN_DIR; a second run reuses the
# database and the Kafka data, and first stops whatever a crashed run left behind.
#
# Settings (environment):
#   SB_RUN_DIR         state directory (default: <repo>/.run)
#   SB_PG_PORT         PostgreSQL port (5432)
#   SB_REDIS_PORT      Redis port (6379)
#   SB_KAFKA_PORT      the Kafka broker's client port (9092; its controller listens on +1)
#   SB_INGRESS_PORT    nginx port (8000)
#   SB_PORT_OFFSET     added to the ingress port and to every service port (ops, RPC, HTTP),
#                      to run a second platform beside another one (0)
#   SB_LOG_LEVEL       passed to the services (info)
#   SB_READY_TIMEOUT   seconds to wait for every service's /ready (60)
#   OBSERVABILITY=1    also runs Jaeger (OTLP/HTTP on 127.0.0.1:4318, UI and query API on
#                      http://127.0.0.1:16686; every service exports its spans there) and
#                      Prometheus (http://127.0.0.1:9090) scraping every service (and, with
#                      MESH=1, every sidecar), with the
#                      alert rules of k8s/observability loaded (docs/observability.md)
#   MESH               1: every service's RPC behind a sidecar, all RPC over mTLS, and
#                      .run/mesh.json written (tools/mesh-run.sh, docs/mesh.md); 0 (default): no
#                      sidecar
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/stack.sh"
. "$here/mesh-run.sh"

say() { printf 'run-local: %s\n' "$*"; }
warn() { printf 'run-local: WARNING: %s\n' "$*" >&2; }
die() {
	printf 'run-local: ERROR: %s\n' "$*" >&2
	exit 1
}

int_or_die() { [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a number, not '$2'"; }

build_arg=${1:-$root/build}
[ -d "$build_arg" ] || die "build directory '$build_arg' does not exist (run 'make build' first)"
build=$(cd "$build_arg" && pwd)

run=${SB_RUN_DIR:-$root/.run}
mkdir -p "$run" || die "cannot create $run"
run=$(cd "$run" && pwd)
logs=$run/logs
pids=$run/pids

for v in SB_PORT_OFFSET SB_PG_PORT SB_REDIS_PORT SB_KAFKA_PORT SB_INGRESS_PORT SB_READY_TIMEOUT; do
	[ -z "${!v:-}" ] || int_or_die "$v" "${!v}"
done
off=${SB_PORT_OFFSET:-0}
pg_port=${SB_PG_PORT:-5432}
redis_port=${SB_REDIS_PORT:-6379}
kafka_port=${SB_KAFKA_PORT:-9092}
ingress_port=$((${SB_INGRESS_PORT:-8000} + off))
ready_timeout=${SB_READY_TIMEOUT:-60}
log_level=${SB_LOG_LEVEL:-info}
mesh=${MESH:-0}
[[ $mesh =~ ^[01]$ ]] || die "MESH must be 0 or 1, not '$mesh'"

# The services: name, ops port, RPC port, public HTTP port ("-" when it has none). Ports are
# the defaults of ARCHITECTURE.md §1 before SB_PORT_OFFSET.
services=(
	"gateway  9100 7100 8080"
	"auth     9101 7101 -"
	"messages 9102 7102 -"
	"outbox   9103 7103 -"
	"files    9104 7104 8082"
	"realtime 9106 7106 8081"
	"notifier 9107 7107 -"
	"gc       9108 7108 -"
	"ingest   9109 7109 -"
	"pubsub   9110 7110 -"
	"cdcsink  9111 7111 -"
	"registry 9112 7112 8083"
)

# svc_field NAME INDEX: one column of NAME's row (1 ops, 2 rpc, 3 http), offset applied.
svc_field() {
	local row
	for row in "${services[@]}"; do
		read -r -a f <<<"$row"
		if [ "${f[0]}" = "$1" ]; then
			[ "${f[$2]}" = - ] && echo - || echo $((f[$2] + off))
			return
		fi
	done
}

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# pid_is PIDFILE WORD: prints the pid in PIDFILE if that process is alive and its command line
# contains WORD (so that a recycled pid is never taken for ours).
pid_is() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
	echo "$pid"
}

# wait_gone PID SECONDS: waits for PID to exit; returns 1 if it is still there.
wait_gone() {
	local n=$(($2 * 10))
	while kill -0 "$1" 2>/dev/null; do
		[ $n -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}

# ---- stopping -------------------------------------------------------------------------------

declare -A svc_pid=() # name → pid of the services this run started
stopping=0

# stop_services: SIGTERM to every service, up to 10 s to finish, then SIGKILL. Also stops the
# leftovers of an earlier run recorded in pids/.
stop_services() {
	local f name pid left=() n=100
	for f in "$pids"/*.pid; do
		[ -e "$f" ] || continue
		name=$(basename "$f" .pid)
		pid=$(pid_is "$f" "sb-$name") && { kill -TERM "$pid" 2>/dev/null && left+=("$pid"); }
	done
	while [ ${#left[@]} -gt 0 ] && [ $n -gt 0 ]; do
		local still=()
		for pid in "${left[@]}"; do kill -0 "$pid" 2>/dev/null && still+=("$pid"); done
		left=("${still[@]+"${still[@]}"}")
		[ ${#left[@]} -gt 0 ] || break
		sleep 0.1
		n=$((n - 1))
	done
	for pid in "${left[@]+"${left[@]}"}"; do
		warn "pid $pid did not stop within 10 s; killing it"
		kill -KILL "$pid" 2>/dev/null
	done
	rm -f "$pids"/*.pid
}

# stop_all: everything this script starts, in reverse order; safe to call twice and with
# nothing running.
stop_all() {
	local pid
	stop_services
	stop_observability
	mesh_stop
	sb_nginx_stop "$run/nginx"
	sb_kafka_stop "$run/kafka" 30
	pid=$(pid_is "$run/redis/redis.pid" redis-server)
	sb_redis_stop "$run"
	[ -n "$pid" ] && { wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null; }
	sb_pg_stop "$run"
	wait 2>/dev/null
}

on_signal() {
	[ $stopping = 1 ] && return
	stopping=1
	echo
	say "stopping…"
	stop_all
	rm -f "$run/run-local.pid"
	say "stopped."
	exit 0
}

on_exit() {
	local rc=$?
	[ $stopping = 1 ] && return
	stopping=1
	stop_all
	rm -f "$run/run-local.pid"
	exit $rc
}

# fail_start MSG: start-up failed; everything started so far is stopped by on_exit.
fail_start() {
	printf 'run-local: ERROR: %s\n' "$*" >&2
	exit 1
}

# stop_observability: Jaeger and Prometheus of OBSERVABILITY=1 (this run's or a crashed one's).
stop_observability() {
	local f pid
	for f in "$run/obs/jaeger.pid:jaeger" "$run/obs/prometheus.pid:prometheus"; do
		pid=$(pid_is "${f%%:*}" "${f#*:}") || continue
		kill -TERM "$pid" 2>/dev/null
		wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null
		rm -f "${f%%:*}"
	done
}

# start_prometheus: scrapes every started service's ops port as job sb-<name> and, with MESH=1,
# every sidecar's ops port as job sb-sidecar (label service=<name>), with every alert rule file
# of k8s/observability/rules; data in .run/obs/prometheus (kept across runs, 2 days).
start_prometheus() {
	local conf=$run/obs/prometheus.yml name
	{
		echo "global: { scrape_interval: 5s, evaluation_interval: 15s }"
		echo "rule_files: ['$root/k8s/observability/rules/*.rules.yaml']"
		echo "scrape_configs:"
		for name in "${started[@]}"; do
			echo "  - job_name: sb-$name"
			echo "    static_configs: [{ targets: ['127.0.0.1:$(svc_field "$name" 1)'] }]"
		done
		if [ "$mesh" = 1 ] && [ ${#mesh_names[@]} -gt 0 ]; then
			echo "  - job_name: sb-sidecar"
			echo "    static_configs:"
			for name in "${mesh_names[@]}"; do
				echo "      - { targets: ['127.0.0.1:$(mesh_ops_port "$name")'], labels: { service: $name } }"
			done
		fi
	} >"$conf"
	promtool check config "$conf" >"$logs/promtool.log" 2>&1 || return 1
	prometheus --config.file="$conf" --storage.tsdb.path="$run/obs/prometheus" \
		--storage.tsdb.retention.time=2d --web.listen-address=127.0.0.1:$prom_port \
		>"$logs/prometheus.log" 2>&1 &
	echo $! >"$run/obs/prometheus.pid"
	local n
	for n in $(seq 1 100); do
		curl -s -o /dev/null "http://127.0.0.1:$prom_port/-/ready" && return 0
		sleep 0.1
	done
	return 1
}

# ---- starting -------------------------------------------------------------------------------

if pid=$(pid_is "$run/run-local.pid" run-local.sh) && [ "$pid" != $$ ]; then
	die "already running as pid $pid with state in $run (stop it with Ctrl-C or kill $pid)"
fi
mkdir -p "$logs" "$pids" "$run/nginx/tmp"
echo $$ >"$run/run-local.pid"
trap on_signal INT TERM
trap on_exit EXIT

# Whatever a crashed run left behind goes first (it would hold the ports and the data dir).
stop_all

for p in "$pg_port:PostgreSQL (SB_PG_PORT)" "$redis_port:Redis (SB_REDIS_PORT)" \
	"$kafka_port:Kafka (SB_KAFKA_PORT)" "$((kafka_port + 1)):the Kafka controller (SB_KAFKA_PORT+1)" \
	"$ingress_port:nginx (SB_INGRESS_PORT)"; do
	port_busy "${p%%:*}" && fail_start "port ${p%%:*} for ${p#*:} is in use by another program"
done

say "state in $run"
say "starting PostgreSQL on 127.0.0.1:$pg_port"
sb_pg_start "$run" "$pg_port" || fail_start "PostgreSQL did not start (see $run/pg/server.log)"
if ! "$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAqc \
	"SELECT 1 FROM pg_database WHERE datname = 'switchboard'" | grep -qx 1; then
	"$PG_BIN/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres switchboard ||
		fail_start "cannot create the database 'switchboard'"
	say "created database switchboard"
fi

say "starting Redis on 127.0.0.1:$redis_port"
sb_redis_start "$run" "$redis_port" || fail_start "Redis did not start (see $run/redis/redis.log)"

# One durable broker: its log directory survives runs (formatted once, with the cluster id kept
# in .run/kafka/cluster-id); the services create their topics at start.
say "starting Apache Kafka $SB_KAFKA_VERSION on 127.0.0.1:$kafka_port (data in $run/kafka/data)"
[ -s "$run/kafka/cluster-id" ] || { mkdir -p "$run/kafka" && sb_kafka_cluster_id >"$run/kafka/cluster-id"; }
kafka_t0=$SECONDS
sb_kafka_start "$run/kafka" 1 "$kafka_port" "1@127.0.0.1:$((kafka_port + 1))" \
	"$(cat "$run/kafka/cluster-id")" || fail_start "Kafka did not start (see $run/kafka/kafka.log)"
sb_kafka_wait "$run/kafka" "$kafka_port" 90 || fail_start "Kafka is not up (see $run/kafka/kafka.log)"
say "Kafka up in $((SECONDS - kafka_t0)) s (RSS $(ps -o rss= -p "$(cat "$run/kafka/kafka.pid")" | tr -d ' ') kB)"
kafka_brokers=127.0.0.1:$kafka_port

observability=${OBSERVABILITY:-0}
if [ "$observability" = 1 ]; then
	. "$here/jaeger.sh"
	# the fixed points of issue 12, shifted by SB_PORT_OFFSET like every other port
	otlp_port=$((4318 + off)) jaeger_port=$((16686 + off)) prom_port=$((9090 + off))
	for p in $otlp_port:Jaeger $jaeger_port:Jaeger $prom_port:Prometheus; do
		port_busy "${p%%:*}" && fail_start "port ${p%%:*} for ${p#*:} is in use by another program"
	done
	mkdir -p "$run/obs"
	say "starting Jaeger $sb_jaeger_version (OTLP on 127.0.0.1:$otlp_port, UI on 127.0.0.1:$jaeger_port)"
	sb_jaeger_start "$run/obs/jaeger" "$otlp_port" "$jaeger_port" || fail_start "Jaeger did not start (see $run/obs/jaeger/jaeger.log)"
	echo "$SB_JAEGER_PID" >"$run/obs/jaeger.pid"
fi

# Environment every service gets: dependencies and every service's RPC address.
common_env=(
	"DATABASE_URL=postgresql://postgres@127.0.0.1:$pg_port/switchboard"
	"REDIS_URL=redis://127.0.0.1:$redis_port"
	"KAFKA_BROKERS=$kafka_brokers"
	"SB_LOG_LEVEL=$log_level"
)
[ "$observability" = 1 ] && common_env+=("SB_OTLP_ENDPOINT=http://127.0.0.1:$otlp_port")
for row in "${services[@]}"; do
	read -r name _ rpc _ <<<"$row"
	common_env+=("SB_${name^^}_RPC_URL=tcp://127.0.0.1:$((rpc + off))")
done

if [ "$mesh" = 1 ]; then
	[ -x "$build/bin/sb-sidecar" ] || fail_start "MESH=1: $build/bin/sb-sidecar is not built"
	meshed=()
	for row in "${services[@]}"; do
		read -r name _ <<<"$row"
		[ -d "$here/../services/$name" ] && [ -x "$build/bin/sb-$name" ] && meshed+=("$name")
	done
	mesh_prepare "${meshed[@]}" || fail_start "MESH=1: cannot issue the mesh identities"
	for name in "${meshed[@]}"; do
		mesh_start "$name" || fail_start "MESH=1: cannot start the sidecar of $name"
	done
	say "mesh: started ${#meshed[@]} sidecars"
fi

started=()
for row in "${services[@]}"; do
	read -r name _ <<<"$row"
	bin=$build/bin/sb-$name
	# A row for a service whose directory does not exist yet (in this checkout) is not an error.
	[ -d "$here/../services/$name" ] || continue
	if [ ! -x "$bin" ]; then
		warn "$bin not built: skipping $name"
		continue
	fi
	ops=$(svc_field "$name" 1) rpc=$(svc_field "$name" 2) http=$(svc_field "$name" 3)
	env_=("${common_env[@]}" "SB_OPS_PORT=$ops" "SB_RPC_URL=tcp://127.0.0.1:$rpc")
	[ "$http" = - ] || env_+=("SB_HTTP_PORT=$http")
	[ "$mesh" = 1 ] && mapfile -t -O ${#env_[@]} env_ < <(mesh_env "$name")
	# The web console signs in as the dev users: the gateway serves this file (written by
	# seed-dev below, once every service is ready) at GET /dev/credentials.
	[ "$name" = gateway ] && env_+=("SB_DEV_CREDENTIALS_FILE=$run/dev-credentials.json")
	# realtime's public port is SB_WS_PORT; the browser's Origin is the ingress.
	[ "$name" = realtime ] && env_+=("SB_WS_PORT=$http"
		"SB_WS_ALLOWED_ORIGINS=http://127.0.0.1:$ingress_port,http://localhost:$ingress_port")
	# files keeps uploads under the run's state directory; browsers upload from the ingress.
	[ "$name" = files ] && env_+=("SB_FILES_DIR=$run/files"
		"SB_FILES_ALLOWED_ORIGINS=http://127.0.0.1:$ingress_port,http://localhost:$ingress_port")
	# the relay reads files' outbox too when files runs (docs/decisions.md)
	[ "$name" = outbox ] && [ -d "$root/services/files" ] &&
		env_+=("SB_OUTBOX_TABLES=messages.outbox,files.outbox")
	for p in $ops $rpc $http; do
		[ "$p" = - ] || ! port_busy "$p" || fail_start "port $p for $name is in use by another program"
	done
	[ -f "$logs/$name.log" ] && mv -f "$logs/$name.log" "$logs/$name.log.1"
	env "${env_[@]}" "$bin" >"$logs/$name.log" 2>&1 &
	svc_pid[$name]=$!
	echo $! >"$pids/$name.pid"
	started+=("$name")
	say "started $name (pid $!, ops :$ops)"
done

say "starting nginx on 127.0.0.1:$ingress_port"
user_line="# (not root: nginx runs as $(id -un))"
if [ "$(id -u)" = 0 ]; then
	# Workers drop to nobody; they must reach the temp directories under the prefix.
	user_line="user nobody nogroup;"
	runuser -u nobody -- test -x "$run/nginx" 2>/dev/null || {
		user_line="user root;"
		warn "$run is not reachable by user nobody: nginx workers run as root"
	}
fi
sed -e "s|@PREFIX@|$run/nginx|g" -e "s|@LOGS@|$logs|g" -e "s|@USER@|$user_line|g" \
	-e "s|@INGRESS_PORT@|$ingress_port|g" -e "s|@GATEWAY_PORT@|$(svc_field gateway 3)|g" \
	-e "s|@REALTIME_PORT@|$(svc_field realtime 3)|g" -e "s|@FILES_PORT@|$(svc_field files 3)|g" \
	-e "s|@REGISTRY_PORT@|$(svc_field registry 3)|g" \
	"$here/nginx.conf.in" >"$run/nginx.conf"
sb_nginx_start "$run/nginx" "$run/nginx.conf" || fail_start "nginx did not start"
sb_wait_port 127.0.0.1 "$ingress_port" 10 || fail_start "nginx does not listen on :$ingress_port"

# Every started service must answer 200 on /ready in time.
deadline=$((SECONDS + ready_timeout))
pending=("${started[@]+"${started[@]}"}")
while [ ${#pending[@]} -gt 0 ]; do
	still=()
	for name in "${pending[@]}"; do
		ops=$(svc_field "$name" 1)
		if ! kill -0 "${svc_pid[$name]}" 2>/dev/null; then
			wait "${svc_pid[$name]}"
			printf 'run-local: ERROR: %s exited with status %s during start-up; last lines of %s:\n' \
				"$name" "$?" "$logs/$name.log" >&2
			tail -n 30 "$logs/$name.log" >&2
			exit 1
		fi
		code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$ops/ready")
		[ "$code" = 200 ] || still+=("$name")
	done
	pending=("${still[@]+"${still[@]}"}")
	[ ${#pending[@]} -gt 0 ] || break
	if [ $SECONDS -ge $deadline ]; then
		for name in "${pending[@]}"; do
			printf 'run-local: ERROR: %s not ready after %d s (GET :%s/ready); last lines of %s:\n' \
				"$name" "$ready_timeout" "$(svc_field "$name" 1)" "$logs/$name.log" >&2
			tail -n 30 "$logs/$name.log" >&2
		done
		exit 1
	fi
	sleep 0.5
done

if [ "$mesh" = 1 ]; then
	mesh_wait "$ready_timeout" || exit 1
	mesh_write_json
	say "mesh: every sidecar ready; $run/mesh.json written"
fi

# The gateway reaches every started service before the banner (its RPC clients redial at most
# 1 s apart, so a service just turned ready may still be refused through it for a moment).
if [ -n "${svc_pid[gateway]:-}" ]; then
	why=$(sb_wait_gateway "http://127.0.0.1:$(svc_field gateway 3)" "$ready_timeout" \
		"${started[@]}") || fail_start "$why (see $logs/gateway.log)"
fi

# Dev credentials, once every service is ready: `sb-auth seed-dev` creates the dev tenant, the
# users alice and bob and the clients admin, alice and bob, and writes their credentials to
# .run/dev-credentials.json (mode 0600). Idempotent: credentials in the file that still
# authenticate are reused; a client whose secret was lost gets a new one.
if [ -n "${svc_pid[auth]:-}" ]; then
	if env "${common_env[@]}" "$build/bin/sb-auth" seed-dev --out "$run/dev-credentials.json" \
		>>"$logs/seed-dev.log" 2>&1; then
		say "dev credentials in $run/dev-credentials.json"
	else
		warn "sb-auth seed-dev failed (see $logs/seed-dev.log)"
	fi
fi

if [ "$observability" = 1 ]; then
	say "starting Prometheus on 127.0.0.1:$prom_port (rules: k8s/observability/rules)"
	start_prometheus || fail_start "Prometheus did not start (see $logs/prometheus.log, $logs/promtool.log)"
fi

# ---- running --------------------------------------------------------------------------------

base=http://127.0.0.1:$ingress_port
echo
echo "================================================================================"
echo " Switchboard is running."
echo
echo "   Open in a browser:  $base/"
echo "   REST API base:      $base/v1"
echo "   WebSocket:          ws://127.0.0.1:$ingress_port/ws"
echo "   Uploads (tus):      $base/files/ (downloads: $base/v1/files/{id}/content; docs/files.md)"
echo
if [ ${#started[@]} -gt 0 ]; then
	echo "   Ops endpoints (/healthz /ready /metrics):"
	for name in "${started[@]}"; do
		printf '     %-9s http://127.0.0.1:%s/\n' "$name" "$(svc_field "$name" 1)"
	done
else
	echo "   No service binary was found in $build/bin: only the servers run."
fi
echo
[ "$mesh" = 1 ] && mesh_banner
echo "   PostgreSQL:  postgresql://postgres@127.0.0.1:$pg_port/switchboard"
echo "   Redis:       redis://127.0.0.1:$redis_port"
echo "   Kafka:       $kafka_brokers (Apache Kafka $SB_KAFKA_VERSION, data in $run/kafka/data)"
echo "   Logs:        $logs/"
if [ "$observability" = 1 ]; then
	echo "   Traces:      http://127.0.0.1:$jaeger_port/ (Jaeger; every 2xx/4xx/5xx carries its traceparent)"
	echo "   Metrics:     http://127.0.0.1:$prom_port/ (Prometheus, alerts at /alerts)"
fi
[ -f "$run/dev-credentials.json" ] && echo "   Credentials: $run/dev-credentials.json"
echo
echo " Ctrl-C to stop."
echo "================================================================================"

# Watch the services; one that dies is reported loudly, the others keep running.
while :; do
	sleep 1 &
	wait $! 2>/dev/null
	for name in "${!svc_pid[@]}"; do
		pid=${svc_pid[$name]}
		kill -0 "$pid" 2>/dev/null && continue
		wait "$pid" 2>/dev/null
		rc=$?
		unset "svc_pid[$name]"
		rm -f "$pids/$name.pid"
		{
			echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
			echo "run-local: $name (pid $pid) EXITED UNEXPECTEDLY with status $rc; the rest keep running."
			echo "run-local: last lines of $logs/$name.log:"
			tail -n 20 "$logs/$name.log"
			echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		} >&2
	done
done
