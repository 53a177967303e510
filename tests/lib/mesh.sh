# mesh.sh: helpers for the mesh sidecar's tests and benchmark. Source after tools/stack.sh.
#
#   mesh_certs DIR svc...             development CA and identities (tools/mesh-ca.sh)
#   mesh_sidecar NAME SVC DIR VAR=... start bin/sb-sidecar for service SVC with DIR's identity,
#                                     extra settings as VAR=value; pid in MESH_PID[NAME], ops
#                                     port in MESH_OPS[NAME], log in $MESH_LOGS/NAME.log
#   mesh_wait_ready NAME...           until the sidecar's /ready answers 200 (10 s); 1 if not
#   mesh_metric NAME 'series'         the value of one exact series (0 when absent)
#   mesh_stop NAME                    SIGTERM (SIGKILL after 5 s)
#   mesh_stop_all                     every sidecar started here (also on EXIT via the caller)

declare -gA MESH_PID MESH_OPS
MESH_LOGS=${MESH_LOGS:-${SB_TEST_TMP:-/tmp}/logs}

mesh_certs() {
	local dir=$1
	shift
	bash "${SB_SOURCE_ROOT:?}/tools/mesh-ca.sh" -d "$dir" "$@" >/dev/null
}

mesh_sidecar() {
	local name=$1 svc=$2 dir=$3
	shift 3
	mkdir -p "$MESH_LOGS"
	MESH_OPS[$name]=$(sb_free_port)
	env SB_MESH_SERVICE="$svc" SB_MESH_CERT="$dir/$svc.pem" SB_MESH_KEY="$dir/$svc.key" \
		SB_MESH_CA="$dir/ca.pem" SB_OPS_PORT="${MESH_OPS[$name]}" SB_MESH_RELOAD_MS=200 "$@" \
		"${SB_BUILD_ROOT:?}/bin/sb-sidecar" >>"$MESH_LOGS/$name.log" 2>&1 &
	MESH_PID[$name]=$!
}

mesh_wait_ready() {
	local n s
	for s in "$@"; do
		n=100
		until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${MESH_OPS[$s]}/ready")" = 200 ]; do
			n=$((n - 1))
			if [ $n -le 0 ]; then
				echo "FAIL: sidecar $s not ready: $(curl -s "http://127.0.0.1:${MESH_OPS[$s]}/ready")"
				tail -n 5 "$MESH_LOGS/$s.log"
				return 1
			fi
			sleep 0.1
		done
	done
}

mesh_metric() {
	curl -s "http://127.0.0.1:${MESH_OPS[$1]}/metrics" |
		awk -v s="$2" 'index($0, s " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }'
}

mesh_stop() {
	local pid=${MESH_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "MESH_PID[$1]"
}

mesh_stop_all() {
	local s
	for s in "${!MESH_PID[@]}"; do kill -TERM "${MESH_PID[$s]}" 2>/dev/null; done
	for s in "${!MESH_PID[@]}"; do mesh_stop "$s"; done
}
