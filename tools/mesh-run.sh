# mesh-run.sh: `make run MESH=1`, the part of tools/run-local.sh that puts every service's RPC
# behind a sidecar (mesh/sidecar, docs/mesh.md). Sourced by run-local.sh, which calls these
# only when MESH=1; it provides $build, $run, $logs, $off, $log_level, the `services` rows,
# svc_field, say, warn, pid_is and wait_gone.
#
# Ports (before SB_PORT_OFFSET), for the service in row i of `services` with RPC port R and
# ops port O:
#   R + 1000          its sidecar's mTLS listener (inbound), forwarding to 127.0.0.1:R
#   O + 100           its sidecar's ops server (/live /ready /metrics)
#   6000 + 20 i + j   its sidecar's plain listener for upstream j (row j); the service's
#                     SB_<UPSTREAM>_RPC_URL points there
# Identities: tools/mesh-ca.sh into $run/mesh/certs (24 h; a new run issues new ones; re-run
# `tools/mesh-ca.sh -d .run/mesh/certs <service>` to rotate live). Policy: every mesh identity
# may call every method of the service but auth.Admin*; SB_MESH_ALLOW_<SERVICE> replaces it.
# .run/mesh.json lists, per service: inbound (host:port), ops (port), cert, key, ca.

mesh_names=()

# mesh_row_index NAME: the row of NAME in `services`.
mesh_row_index() {
	local i=0 row
	for row in "${services[@]}"; do
		read -r n _ <<<"$row"
		[ "$n" = "$1" ] && { echo $i; return; }
		i=$((i + 1))
	done
	echo -1
}

mesh_in_port() { echo $(($(svc_field "$1" 2) + 1000)); }
mesh_ops_port() { echo $(($(svc_field "$1" 1) + 100)); }
mesh_out_port() { echo $((6000 + 20 * $(mesh_row_index "$1") + $(mesh_row_index "$2") + off)); }

# mesh_prepare NAME...: the services that will run; issues their identities.
mesh_prepare() {
	mesh_names=("$@")
	mkdir -p "$run/mesh/pids"
	bash "$here/mesh-ca.sh" -d "$run/mesh/certs" "${mesh_names[@]}" >"$logs/mesh-ca.log" 2>&1 ||
		{ cat "$logs/mesh-ca.log" >&2; return 1; }
	say "mesh: identities for ${#mesh_names[@]} services in $run/mesh/certs"
}

# mesh_env NAME: the environment lines that point NAME's RPC clients at its sidecar.
mesh_env() {
	local up
	for up in "${mesh_names[@]}"; do
		[ "$up" = "$1" ] && continue
		echo "SB_${up^^}_RPC_URL=tcp://127.0.0.1:$(mesh_out_port "$1" "$up")"
	done
}

# mesh_start NAME: starts NAME's sidecar.
mesh_start() {
	local name=$1 up outbound="" var policy p
	for up in "${mesh_names[@]}"; do
		[ "$up" = "$name" ] && continue
		outbound+="$up=127.0.0.1:$(mesh_out_port "$name" "$up")>127.0.0.1:$(mesh_in_port "$up") "
	done
	var=SB_MESH_ALLOW_${name^^}
	policy=${!var:-"*=$name.* *=!auth.Admin*"}
	for p in $(mesh_in_port "$name") $(mesh_ops_port "$name"); do
		port_busy "$p" && { warn "mesh: port $p for $name's sidecar is in use"; return 1; }
	done
	[ -f "$logs/sidecar-$name.log" ] && mv -f "$logs/sidecar-$name.log" "$logs/sidecar-$name.log.1"
	env SB_LOG_LEVEL="$log_level" SB_MESH_SERVICE="$name" \
		SB_MESH_CERT="$run/mesh/certs/$name.pem" SB_MESH_KEY="$run/mesh/certs/$name.key" \
		SB_MESH_CA="$run/mesh/certs/ca.pem" SB_OPS_PORT="$(mesh_ops_port "$name")" \
		SB_MESH_INBOUND="127.0.0.1:$(mesh_in_port "$name")" \
		SB_MESH_TARGET="127.0.0.1:$(svc_field "$name" 2)" SB_MESH_OUTBOUND="$outbound" \
		SB_MESH_ALLOW="$policy" "$build/bin/sb-sidecar" >"$logs/sidecar-$name.log" 2>&1 &
	echo $! >"$run/mesh/pids/$name.pid"
}

# mesh_wait SECONDS: every sidecar answers 200 on /ready (its service accepts connections).
mesh_wait() {
	local deadline=$((SECONDS + $1)) name pending still code
	pending=("${mesh_names[@]}")
	while [ ${#pending[@]} -gt 0 ]; do
		still=()
		for name in "${pending[@]}"; do
			code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$(mesh_ops_port "$name")/ready")
			[ "$code" = 200 ] || still+=("$name")
		done
		pending=("${still[@]+"${still[@]}"}")
		[ ${#pending[@]} -gt 0 ] || return 0
		if [ $SECONDS -ge $deadline ]; then
			for name in "${pending[@]}"; do
				printf 'run-local: ERROR: the sidecar of %s is not ready: %s\n' "$name" \
					"$(curl -s -m 2 "http://127.0.0.1:$(mesh_ops_port "$name")/ready")" >&2
				tail -n 10 "$logs/sidecar-$name.log" >&2
			done
			return 1
		fi
		sleep 0.3
	done
}

# mesh_write_json: .run/mesh.json (the fixed point other tools read).
mesh_write_json() {
	local name first=1 c=$run/mesh/certs
	{
		echo "{"
		for name in "${mesh_names[@]}"; do
			[ $first = 1 ] || echo ","
			first=0
			printf '  "%s": {"inbound": "127.0.0.1:%s", "ops": %s, "cert": "%s", "key": "%s", "ca": "%s"}' \
				"$name" "$(mesh_in_port "$name")" "$(mesh_ops_port "$name")" "$c/$name.pem" \
				"$c/$name.key" "$c/ca.pem"
		done
		printf '\n}\n'
	} >"$run/mesh.json.tmp" && mv -f "$run/mesh.json.tmp" "$run/mesh.json"
}

# mesh_stop: every sidecar (of this run or a crashed one), SIGTERM then SIGKILL after 5 s.
mesh_stop() {
	local f pid
	for f in "$run"/mesh/pids/*.pid; do
		[ -e "$f" ] || continue
		pid=$(pid_is "$f" sb-sidecar) && {
			kill -TERM "$pid" 2>/dev/null
			wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
		}
		rm -f "$f"
	done
	rm -f "$run/mesh.json"
}

# mesh_banner: the lines of the banner.
mesh_banner() {
	local name
	echo "   Mesh (MESH=1): every RPC goes service -> its sidecar -> mTLS -> the callee's sidecar."
	echo "     $run/mesh.json lists each sidecar; metrics of each:"
	for name in "${mesh_names[@]}"; do
		printf '     %-9s http://127.0.0.1:%s/metrics   (mTLS in on 127.0.0.1:%s)\n' "$name" \
			"$(mesh_ops_port "$name")" "$(mesh_in_port "$name")"
	done
	echo
}
