# faults.sh: what the fault-injection tests share (tests/integration/kafka_broker_kill_test.sh,
# notifier_kill_test.sh, kafka_broker_stop_test.sh): the whole platform on free ports, users
# and tokens, and the client/checker tests/faults/run.mjs (one WebSocket client per user,
# 5,000 sends through the gateway, then the exactly-once-in-order checks). Source it after
# tools/stack.sh and tests/lib/services.sh, inside tests/lib/with-stack.sh (pg, redis and one
# of kafka, kafka1, kafka3).
#
#   faults_platform            start auth, messages, gateway, outbox, notifier, realtime; wait ready
#   faults_start_notifier      (again) the notifier, same ports, same group
#   faults_users N             N users of tenant "faults", their access tokens in $FAULTS_DIR/tokens
#   faults_run_start           run.mjs in the background (SB_FAULTS_* knobs pass through);
#                              returns once it has started sending (1 if it died first)
#   faults_wait_sent N [S]     wait until N sends have started (S seconds at most, default 120)
#   faults_mark WHAT           note a fault's moment (printed on the run's timeline)
#   faults_fault_begin WHAT    a mark, and the fault lasts: run.mjs counts its wait for stragglers
#   faults_fault_end WHAT      (SB_FAULTS_STRAGGLER_S) from the end of the fault at the earliest
#   faults_run_finish          wait for run.mjs (its own bounds end it); its exit status
#   faults_dump                the tail of every service's log (after a failure)
#
# Knobs (environment, defaults in run.mjs): SB_FAULTS_MESSAGES (5000), SB_FAULTS_RATE (250/s),
# SB_FAULTS_CONVS (50), SB_FAULTS_USERS (100, here), SB_FAULTS_STRAGGLER_S (60),
# SB_FAULTS_REQ_TIMEOUT_MS (10000), SB_FAULTS_STRICT_202, SB_FAULTS_BREAK (drop|dup|order: make
# the checker see a fault that did not happen, to watch the test fail).

FAULTS_DIR=$SB_TEST_TMP/faults
mkdir -p "$FAULTS_DIR"
faults_pid=""

faults_fail() {
	echo "FAIL: $*"
	return 1
}

faults_start_notifier() {
	# Short sessions: a killed member's partitions move within seconds (as the other tests).
	sb_svc_start notifier SB_NOTIFIER_SESSION_TIMEOUT_MS=4000 SB_NOTIFIER_HEARTBEAT_MS=1000 "$@"
}

faults_platform() {
	[ -d "$SB_SOURCE_ROOT/tests/faults/node_modules/ws" ] ||
		faults_fail "tests/faults/node_modules is missing: run tools/install-deps.sh" || return 1
	sb_svc_ports gateway auth messages outbox notifier realtime
	sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000
	sb_svc_start messages
	sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=10000000
	sb_svc_start outbox SB_OUTBOX_POLL_MS=100
	faults_start_notifier
	sb_svc_start realtime SB_WS_PORT="${SVC_HTTP[realtime]}"
	sb_svc_wait_ready auth messages gateway outbox notifier realtime
}

faults_cli() {
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" SB_AUTH_PBKDF2_ITERATIONS=100000 \
		SB_LOG_LEVEL=warn "$SB_BUILD_ROOT/bin/sb-auth" "$@"
}

faults_users() {
	local n=$1 i
	: >"$FAULTS_DIR/users"
	for i in $(seq 1 "$n"); do
		faults_cli user create --tenant faults --name "f$i" >/dev/null 2>>"$FAULTS_DIR/cli.err" ||
			faults_fail "sb-auth user create f$i: $(tail -3 "$FAULTS_DIR/cli.err")" || return 1
		echo "f$i" >>"$FAULTS_DIR/users"
	done
	faults_cli token issue --tenant faults --scopes "messages:read messages:write" --ttl 900 \
		--users "$FAULTS_DIR/users" >"$FAULTS_DIR/tokens" 2>>"$FAULTS_DIR/cli.err" ||
		faults_fail "sb-auth token issue: $(tail -3 "$FAULTS_DIR/cli.err")" || return 1
	[ "$(wc -l <"$FAULTS_DIR/tokens")" = "$n" ] ||
		faults_fail "$(wc -l <"$FAULTS_DIR/tokens") tokens for $n users" || return 1
}

faults_run_start() {
	rm -f "$FAULTS_DIR/progress" "$FAULTS_DIR/marks" "$FAULTS_DIR/fault"
	(cd "$SB_SOURCE_ROOT/tests/faults" && SB_GW=$SB_GW SB_FAULTS_DIR=$FAULTS_DIR \
		SB_FAULTS_WS="ws://127.0.0.1:${SVC_HTTP[realtime]}/ws" \
		SB_FAULTS_TOKENS="$FAULTS_DIR/tokens" exec timeout -s KILL 300 node run.mjs) &
	faults_pid=$!
	local n=600
	while [ ! -s "$FAULTS_DIR/progress" ]; do
		kill -0 "$faults_pid" 2>/dev/null || { wait "$faults_pid"; faults_pid=""; faults_fail "run.mjs exited during setup"; return 1; }
		n=$((n - 1))
		[ $n -gt 0 ] || {
			kill -TERM "$faults_pid" 2>/dev/null # timeout(1) passes it on to node
			faults_fail "run.mjs did not start sending within 60 s"
			return 1
		}
		sleep 0.1
	done
}

# faults_progress: "<sends started> <acknowledged> <deliveries> <deliveries owed so far>"
faults_progress() { cat "$FAULTS_DIR/progress" 2>/dev/null || echo "0 0 0 0"; }

faults_wait_sent() {
	local want=$1 n=$((${2:-120} * 20)) s
	while :; do
		read -r s _ <<<"$(faults_progress)"
		[ "${s:-0}" -ge "$want" ] && return 0
		[ -n "$faults_pid" ] && kill -0 "$faults_pid" 2>/dev/null ||
			{ faults_fail "run.mjs is gone before $want sends"; return 1; }
		n=$((n - 1))
		[ $n -gt 0 ] || { faults_fail "not $want sends yet (progress: $(faults_progress))"; return 1; }
		sleep 0.05
	done
}

faults_mark() {
	echo "$(date +%s%3N) $*" >>"$FAULTS_DIR/marks"
	echo "[$(date +%T.%3N)] $* (sends started, acknowledged, deliveries, owed: $(faults_progress))"
}

faults_fault_begin() {
	touch "$FAULTS_DIR/fault"
	faults_mark "$@"
}

faults_fault_end() {
	faults_mark "$@"
	rm -f "$FAULTS_DIR/fault"
}

faults_run_finish() {
	rm -f "$FAULTS_DIR/fault" # a fault not ended (the test failed meanwhile) ends here
	local rc
	[ -n "$faults_pid" ] || return 1
	wait "$faults_pid"
	rc=$?
	faults_pid=""
	return $rc
}

faults_dump() {
	local f
	for f in "$SB_TEST_TMP"/logs/*.log; do
		echo "--- $(basename "$f"): $(grep -c '"level":"error"' "$f") error lines; last lines:"
		tail -n 6 "$f"
	done
}
