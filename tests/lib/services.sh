# services.sh: start Switchboard services from $SB_BUILD_ROOT/bin for an integration test, on
# free loopback ports, against the servers tests/lib/with-stack.sh started. Source it after
# tools/stack.sh. Every service started gets every other's RPC URL, so any subset works.
#
#   sb_svc_ports gateway auth messages   # choose ports: SVC_RPC[x], SVC_OPS[x], SVC_HTTP[x]
#   sb_svc_start gateway VAR=value ...   # start one (extra env), log in $SB_TEST_TMP/logs/x.log
#   sb_svc_wait_ready gateway auth       # wait for /ready 200 (30 s each), and with the gateway
#                                        # listed, for it to reach each other one; 1 on timeout
#   sb_svc_stop_all                      # SIGTERM, then SIGKILL after 5 s (also on EXIT)
#   $SB_GW                               # http://127.0.0.1:<gateway http port>

declare -gA SVC_RPC SVC_OPS SVC_HTTP SVC_PID

sb_svc_ports() {
	for s in "$@"; do
		SVC_RPC[$s]=$(sb_free_port)
		SVC_OPS[$s]=$(sb_free_port)
		SVC_HTTP[$s]=$(sb_free_port)
	done
	[ -n "${SVC_HTTP[gateway]:-}" ] && SB_GW="http://127.0.0.1:${SVC_HTTP[gateway]}"
	return 0
}

sb_svc_env() {
	local s
	echo "DATABASE_URL=${SB_TEST_PG_DSN:-postgresql://127.0.0.1:1/none}"
	echo "REDIS_URL=${SB_TEST_REDIS_URL:-redis://127.0.0.1:1}"
	echo "KAFKA_BROKERS=${SB_TEST_KAFKA_BROKERS:-127.0.0.1:1}"
	echo "SB_SHUTDOWN_GRACE_MS=3000"
	echo "SB_FILES_DIR=$SB_TEST_TMP/files" # the files service's storage, never the checkout's
	[ -n "${SVC_HTTP[gateway]:-}" ] && echo "SB_AUTH_ISSUER=http://127.0.0.1:${SVC_HTTP[gateway]}"
	for s in "${!SVC_RPC[@]}"; do
		echo "SB_${s^^}_RPC_URL=tcp://127.0.0.1:${SVC_RPC[$s]}"
	done
}

sb_svc_start() {
	local s=$1
	shift
	mkdir -p "$SB_TEST_TMP/logs"
	local envs=()
	mapfile -t envs < <(sb_svc_env)
	env "${envs[@]}" SB_RPC_URL="tcp://127.0.0.1:${SVC_RPC[$s]}" SB_OPS_PORT="${SVC_OPS[$s]}" \
		SB_HTTP_PORT="${SVC_HTTP[$s]}" SB_WS_PORT="${SVC_HTTP[$s]}" "$@" "$SB_BUILD_ROOT/bin/sb-$s" \
		>>"$SB_TEST_TMP/logs/$s.log" 2>&1 &
	SVC_PID[$s]=$!
	sb_svc_trap
}

# sb_svc_trap makes sure sb_svc_stop_all runs on EXIT without dropping the EXIT trap the test set
# (e.g. 'sb_svc_stop_all; sb_jaeger_stop', or one that stops a simulator or extra clusters):
# setting "trap sb_svc_stop_all EXIT" here replaced it, and what it stopped was left running.
sb_svc_trap() {
	local cur
	cur=$(trap -p EXIT)
	case "$cur" in *sb_svc_stop_all*) return 0 ;; esac
	if [ -z "$cur" ]; then
		trap sb_svc_stop_all EXIT
		return 0
	fi
	eval "set -- $cur" # trap -- 'COMMAND' EXIT
	trap -- "sb_svc_stop_all; $3" EXIT
}

sb_svc_wait_ready() {
	local s
	for s in "$@"; do
		sb_wait_http "http://127.0.0.1:${SVC_OPS[$s]}/ready" 30 && continue
		echo "FAIL: $s not ready: $(curl -s "http://127.0.0.1:${SVC_OPS[$s]}/ready")"
		tail -n 15 "$SB_TEST_TMP/logs/$s.log"
		return 1
	done
	# With the gateway in the list: until it reaches the others too (tools/stack.sh).
	case " $* " in *" gateway "*) ;; *) return 0 ;; esac
	local why
	why=$(sb_wait_gateway "$SB_GW" 30 "$@") && return 0
	echo "FAIL: $why"
	tail -n 15 "$SB_TEST_TMP/logs/gateway.log"
	return 1
}

sb_svc_stop() {
	local s=$1 pid=${SVC_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "SVC_PID[$s]"
}

sb_svc_stop_all() {
	local s
	# CONT after TERM: a service a test left stopped (SIGSTOP) gets the TERM too.
	for s in "${!SVC_PID[@]}"; do kill -TERM "${SVC_PID[$s]}" 2>/dev/null && kill -CONT "${SVC_PID[$s]}" 2>/dev/null; done
	for s in "${!SVC_PID[@]}"; do sb_svc_stop "$s"; done
}
