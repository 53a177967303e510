#!/usr/bin/env bash
# sb-gc against the real PostgreSQL with auth's and messages' schemas: each task deletes what
# is old by the gc's clock and keeps what is not (refresh tokens expired or revoked past the
# grace; relayed outbox rows past the retention; never an unrelayed row, a live rotated token,
# anything younger). The clock is moved through SB_GC_CLOCK_OFFSET_S (25 h): the same rows are
# all kept by a gc whose clock is not moved. Then two replicas: exactly one holds the lease and
# works (sampled throughout, never both), and when the leader is killed (-9) the other takes
# over within seconds (printed; at most 5 s) and cleans up.
# stack: pg,redis
# labels: gc,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"

fail() { echo "FAIL: $*"; exit 1; }
now_ms() { date +%s%3N; }
sql() { psql -X -q -v ON_ERROR_STOP=1 -At "$SB_TEST_PG_DSN" -c "$1"; }
metric() { # metric SERVICE SERIES: the value, or "" when the series is absent or the server down
	curl -s --max-time 2 "http://127.0.0.1:${SVC_OPS[$1]}/metrics" 2>/dev/null |
		awk -v s="$2" '$1 == s { print $2 }'
}
wait_metric_ge() { # wait_metric_ge SERVICE SERIES MIN SECONDS
	local n=$(($4 * 10)) v
	while [ $n -gt 0 ]; do
		v=$(metric "$1" "$2")
		[ -n "$v" ] && awk -v v="$v" -v m="$3" 'BEGIN { exit !(v >= m) }' && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

gc_start() { # gc_start NAME VAR=value...: one sb-gc replica, known to services.sh as NAME
	local s=$1 envs=()
	shift
	mkdir -p "$SB_TEST_TMP/logs"
	mapfile -t envs < <(sb_svc_env)
	env "${envs[@]}" SB_RPC_URL="tcp://127.0.0.1:${SVC_RPC[$s]}" SB_OPS_PORT="${SVC_OPS[$s]}" "$@" \
		"$SB_BUILD_ROOT/bin/sb-gc" >>"$SB_TEST_TMP/logs/$s.log" 2>&1 &
	SVC_PID[$s]=$!
}

# Schemas: auth's migrations through its CLI, messages' by starting it.
creds=$SB_TEST_TMP/dev-credentials.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	fail "seed-dev"
client=$(jq -r .alice.client_id "$creds")
sb_svc_ports messages gc1 gc2 gc3
sb_svc_start messages
sb_svc_wait_ready messages || exit 1
sb_svc_stop messages

# Rows relative to the real clock; with the gc clock 25 h ahead and a 48 h limit, what is older
# than 23 h is old.
tok() { # tok HASH EXPIRES_IN REVOKED_AGO USED_AGO
	sql "INSERT INTO auth.refresh_tokens (token_hash, family_id, client_id, tenant_id, subject,
		scope, expires_at, revoked_at, used_at)
		SELECT '$1', gen_random_uuid(), client_id, tenant_id, 'alice', 'messages:read',
		now() + interval '$2', now() - interval '$3', now() - interval '$4'
		FROM auth.clients WHERE client_id = '$client'"
}
outbox() { # outbox CREATED_AGO RELAYED_AGO|null
	local rel="NULL"
	[ "$2" != null ] && rel="now() - interval '$2'"
	sql "INSERT INTO messages.outbox (aggregate_type, aggregate_id, event_id, event_type, topic,
		source, payload, created_at, relayed_at) VALUES ('conversation', gen_random_uuid(),
		gen_random_uuid(), 'test', 'sb.messages.v1', 'test', '\\x00', now() - interval '$1', $rel)"
}
seed() {
	tok "exp-old-$1" "-30 hours" "-1000 days" "-1000 days" # expired 30 h ago: old
	tok "exp-new-$1" "-1 hour" "-1000 days" "-1000 days"   # expired 1 h ago: kept
	tok "rev-old-$1" "10 days" "30 hours" "-1000 days"      # revoked 30 h ago: old
	tok "rev-new-$1" "10 days" "1 hour" "-1000 days"        # revoked 1 h ago: kept
	tok "used-$1" "10 days" "-1000 days" "30 hours"         # rotated, alive: kept
	outbox "31 hours" "30 hours"                           # relayed 30 h ago: old
	outbox "2 hours" "1 hour"                              # relayed 1 h ago: kept
	outbox "100 days" null                                 # never relayed: kept
}
sql "UPDATE auth.refresh_tokens SET revoked_at = NULL WHERE revoked_at > now() + interval '1 day'" >/dev/null
seed a
# (rows whose revoked_at/used_at lie in the future mean "never": clear them)
clear_future() {
	sql "UPDATE auth.refresh_tokens SET revoked_at = NULL WHERE revoked_at > now();
		UPDATE auth.refresh_tokens SET used_at = NULL WHERE used_at > now()" >/dev/null
}
clear_future
state() {
	sql "SELECT string_agg(token_hash, ' ' ORDER BY token_hash) FROM auth.refresh_tokens
		WHERE subject = 'alice' AND token_hash NOT LIKE '%-seed%'"
	sql "SELECT count(*) FILTER (WHERE relayed_at IS NULL) || ' unrelayed, ' ||
		count(*) FILTER (WHERE relayed_at IS NOT NULL) || ' relayed' FROM messages.outbox"
}
before=$(state)
gc_env=(SB_GC_INTERVAL_MS=300 SB_GC_LEASE_RETRY_MS=300 SB_GC_TOKEN_GRACE_S=172800
	SB_GC_OUTBOX_RETENTION_S=172800)

# 1. The real clock: nothing is 48 h old yet; every row stays.
gc_start gc1 "${gc_env[@]}" SB_GC_CLOCK_OFFSET_S=0
wait_metric_ge gc1 'gc_task_runs_total{task="outbox"}' 2 20 || fail "gc1 did not run its tasks"
[ "$(metric gc1 gc_leader)" = 1 ] || fail "gc1 alone is not the leader"
[ "$(state)" = "$before" ] || { state; fail "the real clock deleted rows"; }
echo "clock not moved: kept every row ($(state | tr '\n' ' '))"
sb_svc_stop gc1

# 2. The clock 25 h ahead: exactly the old rows go.
gc_start gc2 "${gc_env[@]}" SB_GC_CLOCK_OFFSET_S=90000
wait_metric_ge gc2 'gc_task_runs_total{task="outbox"}' 2 20 || fail "gc2 did not run its tasks"
want=$'exp-new-a rev-new-a used-a\n1 unrelayed, 1 relayed'
got=$(state)
[ "$got" = "$want" ] || { echo "want: $want"; echo "got: $got"; fail "the wrong rows were cleaned"; }
[ "$(metric gc2 'gc_deleted_total{task="tokens"}')" = 2 ] || fail "gc_deleted_total tokens"
[ "$(metric gc2 'gc_deleted_total{task="outbox"}')" = 1 ] || fail "gc_deleted_total outbox"
[ "$(metric gc2 'gc_task_errors_total{task="tokens"}')" = 0 ] || fail "task errors"
metric gc2 'gc_cleanup_duration_seconds_count{task="tokens"}' | grep -qv '^0*$' ||
	fail "no gc_cleanup_duration_seconds"
echo "clock +25 h: cleaned exactly the old rows ($(echo "$got" | tr '\n' ' '))"

# 3. A second replica: it waits; gc2 keeps working; never both leaders.
gc_start gc3 "${gc_env[@]}" SB_GC_CLOCK_OFFSET_S=90000
samples=$SB_TEST_TMP/leaders
( while :; do echo "$(metric gc2 gc_leader) $(metric gc3 gc_leader)"; sleep 0.1; done ) >"$samples" &
sampler=$!
trap 'kill $sampler 2>/dev/null; sb_svc_stop_all' EXIT
sleep 2
[ "$(metric gc3 gc_leader)" = 0 ] || fail "gc3 is a leader next to gc2"
[ -z "$(metric gc3 'gc_task_runs_total{task="tokens"}')" ] ||
	[ "$(metric gc3 'gc_task_runs_total{task="tokens"}')" = 0 ] || fail "gc3 ran tasks as a follower"
seed b
clear_future
wait_metric_ge gc2 'gc_deleted_total{task="tokens"}' 4 10 || fail "gc2 stopped cleaning tokens"
wait_metric_ge gc2 'gc_deleted_total{task="outbox"}' 2 10 || fail "gc2 stopped cleaning the outbox"
[ "$(sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 23404 AND granted")" = 1 ] ||
	fail "not exactly one lease holder"
kill_ms=$(now_ms)
kill -KILL "${SVC_PID[gc2]}"
wait "${SVC_PID[gc2]}" 2>/dev/null
unset "SVC_PID[gc2]"
wait_metric_ge gc3 gc_leader 1 10 || fail "gc3 did not take over within 10 s"
took=$(($(now_ms) - kill_ms))
echo "leader killed: the other replica took over after $took ms"
[ $took -le 5000 ] || fail "takeover took more than 5 s"
seed c
clear_future
wait_metric_ge gc3 'gc_deleted_total{task="tokens"}' 2 10 || fail "gc3 does not clean tokens after taking over"
wait_metric_ge gc3 'gc_deleted_total{task="outbox"}' 1 10 || fail "gc3 does not clean the outbox after taking over"
kill "$sampler"
wait "$sampler" 2>/dev/null
[ "$(wc -l <"$samples")" -gt 20 ] || fail "too few leader samples"
grep -q '^1 1$' "$samples" && fail "both replicas were leaders at once"
want=$'exp-new-a exp-new-b exp-new-c rev-new-a rev-new-b rev-new-c used-a used-b used-c\n3 unrelayed, 3 relayed'
[ "$(state)" = "$want" ] || { state; fail "rows after the takeover"; }
echo "two replicas: one leader at a time over $(wc -l <"$samples") samples"

# 4. SB_GC_ONCE (the CronJob form): while gc3 holds the lease a run does nothing and exits 0;
# with the lease free it cleans one round and exits 0.
once() {
	local envs=()
	mapfile -t envs < <(sb_svc_env)
	env "${envs[@]}" SB_RPC_URL="tcp://127.0.0.1:$(sb_free_port)" SB_OPS_PORT="$(sb_free_port)" \
		"${gc_env[@]}" SB_GC_CLOCK_OFFSET_S=90000 SB_GC_ONCE=true timeout 30 "$SB_BUILD_ROOT/bin/sb-gc" \
		>>"$SB_TEST_TMP/logs/once.log" 2>&1
}
sb_svc_stop gc3
gc_start gc3 "${gc_env[@]}" SB_GC_CLOCK_OFFSET_S=0 SB_GC_TOKENS=false SB_GC_OUTBOX=false
wait_metric_ge gc3 gc_leader 1 10 || fail "gc3 (no tasks) is not the leader"
seed d
clear_future
before=$(state)
once || fail "SB_GC_ONCE with the lease taken: exit status $?"
[ "$(state)" = "$before" ] || fail "SB_GC_ONCE worked while another replica held the lease"
grep -q "another replica holds the lease" "$SB_TEST_TMP/logs/once.log" || fail "once: no log line"
sb_svc_stop gc3
once || fail "SB_GC_ONCE: exit status $?"
want=$'exp-new-a exp-new-b exp-new-c exp-new-d rev-new-a rev-new-b rev-new-c rev-new-d used-a used-b used-c used-d\n4 unrelayed, 4 relayed'
[ "$(state)" = "$want" ] || { state; fail "SB_GC_ONCE did not clean"; }
echo "SB_GC_ONCE: nothing while the lease was held, one round when free, exit 0 both times; gc: ok"
