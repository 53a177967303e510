#!/usr/bin/env bash
# realtime_fanout_bench.sh: fan-out through ONE sb-realtime instance against socket.io 4.8 with
# @socket.io/redis-adapter and against Centrifugo v6.9.1 with its Redis engine, same run, same
# scenario, one stack after the other (issue 5).
# Scenario: one tenant, SB_BENCH_FO_CONNS users (10,000) in conversations of exactly
# SB_BENCH_FO_MEMBERS (10) members, each user in one conversation, one WebSocket connection per
# user. The path is the same for all three: a publisher puts one message per chat message into
# Redis PUB/SUB, the server process receives it from Redis and writes the frame to the
# conversation's local connections. What each side does:
#   switchboard  bench/fanout_pub.c PUBLISHes the notifier's "<seq> <ms>\n<frame>" on conv:<id>
#                straight into Redis; sb-realtime (subscribed per conversation) writes the frame
#                as-is to the members' sockets. Connections: GET /ws?token=<sb-auth access token>,
#                the token is verified (JWKS from auth) and realtime subscribes the connection to
#                its user's conversations (asking messages) before "ready". No history is stored
#                on this path (the seq in the frame would let a client recover from messages).
#   socketio     bench/socketio/pub.mjs: io.to(room).emit through the adapter (one Redis PUBLISH
#                per message); server.mjs receives it and emits to the room's sockets. Clients
#                join their room with an unauthenticated "join" event; no history.
#   centrifugo   bench/centrifugo/pub.mjs calls Centrifugo's server HTTP API (POST /api/publish,
#                or /api/batch, in order, for the messages that fell due while the previous
#                request was outstanding; X-API-Key); Centrifugo PUBLISHes into Redis (Redis
#                engine, history_size 0: no history stream, no recovery, no presence, no
#                join/leave), receives it back on its Redis subscription and writes it to the
#                channel's subscribers. So the
#                Centrifugo process also pays for receiving the publishes (HTTP + JSON), which
#                the other two servers do not: their publisher writes to Redis directly.
#                Clients: GET /connection/websocket, JSON protocol, connect command with an HS256
#                JWT (one per user, sub = user id, signed by bench/centrifugo/tokens.mjs with the
#                config's HMAC secret), then a client-side subscribe command to conv:<id>, allowed
#                for any authenticated user in the "conv" namespace (no per-channel check, like
#                socket.io's join; Switchboard checks membership). The config is generated into
#                the run's temp dir; HTTP server, API and WebSocket on 127.0.0.1 only. The
#                binary is built once by tools/centrifugo.sh into a cache outside the repository
#                (about 1.5 minutes the first time, needs the Go module proxy).
# Receivers: bench/wsload.c in processes of SB_BENCH_FO_PER_PROC (5,000) connections each,
# latency = receive time - publish time embedded in the content (all three publishers stamp it
# when the message is due, so queueing in the publisher counts).
# Steps, per stack: the seed load (SB_BENCH_FO_SEED_RATE 100 messages/s for SB_BENCH_FO_SEED_S
# 20 s), then the ladder SB_BENCH_FO_RATES ("250 500 1000 2000 4000 8000") messages/s for
# SB_BENCH_FO_STEP_S (10) s each, stopping after the first step with p99 >= 100 ms, more than
# 1% of the deliveries missing, or a publisher under 95% of its rate. Each step reports
# deliveries received against expected, p50/p99/max, CPU seconds of the server process
# (sb-realtime / the node server), Redis, the publisher and each load generator, and
# deliveries per server CPU-second. Targets: p99 < 50 ms at 100 messages/s, and Switchboard's
# deliveries per CPU-second at least 5x socket.io's (compared at the highest rate both passed).
# The summary table gives, per stack, the highest rate with p99 < 100 ms and its deliveries per
# server CPU-second, and all stacks' deliveries per server CPU-second at the highest rate every
# stack passed; Switchboard against Centrifugo is reported at their highest common rate (no target).
# Run by `make bench` (bench/run.sh) or: bash bench/realtime_fanout_bench.sh [BUILD_DIR]
# Other knobs: SB_BENCH_FO_OPEN_RATE (500 connections/s, all generators), SB_BENCH_FO_STACKS
# ("switchboard socketio centrifugo", any of them in any order), SB_BENCH_FO_DRAIN_S (2: wait
# after a step before counting), SB_BENCH_FO_CF_IN_FLIGHT (1: API requests the Centrifugo
# publisher keeps outstanding; see bench/centrifugo/pub.mjs).
# Starts its own PostgreSQL and Redis (tests/lib/with-stack.sh), auth, messages, realtime, the
# node server and Centrifugo, all on 127.0.0.1, and stops all of them on exit. A missed target,
# a failed step or a Centrifugo that cannot be built is reported, not an error; exit status 1
# only when nothing could be measured.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export SB_BUILD_ROOT=${1:-${SB_BUILD_ROOT:-$root/build}}
export SB_SOURCE_ROOT=$root
conns=${SB_BENCH_FO_CONNS:-10000}
members=${SB_BENCH_FO_MEMBERS:-10}
per_proc=${SB_BENCH_FO_PER_PROC:-5000}
open_rate=${SB_BENCH_FO_OPEN_RATE:-500}
seed_rate=${SB_BENCH_FO_SEED_RATE:-100}
seed_s=${SB_BENCH_FO_SEED_S:-20}
rates=${SB_BENCH_FO_RATES:-"250 500 1000 2000 4000 8000"}
step_s=${SB_BENCH_FO_STEP_S:-10}
drain_s=${SB_BENCH_FO_DRAIN_S:-2}
stacks=${SB_BENCH_FO_STACKS:-"switchboard socketio centrifugo"}
cf_in_flight=${SB_BENCH_FO_CF_IN_FLIGHT:-1}
p99_max=100
for v in conns members per_proc open_rate seed_rate seed_s step_s drain_s cf_in_flight; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer, got '${!v}'"; exit 2; }
done
for r in $rates; do
	[[ $r =~ ^[1-9][0-9]*$ ]] || { echo "bench: SB_BENCH_FO_RATES must be positive integers, got '$r'"; exit 2; }
done
for s in $stacks; do
	[[ $s =~ ^(switchboard|socketio|centrifugo)$ ]] ||
		{ echo "bench: SB_BENCH_FO_STACKS: switchboard, socketio and/or centrifugo, got '$s'"; exit 2; }
done
[ $((conns % members)) = 0 ] || { echo "bench: SB_BENCH_FO_CONNS ($conns) must be a multiple of SB_BENCH_FO_MEMBERS ($members)"; exit 2; }
[ "$members" -ge 2 ] || { echo "bench: SB_BENCH_FO_MEMBERS must be at least 2"; exit 2; }
[ "$per_proc" -le 19000 ] || { echo "bench: SB_BENCH_FO_PER_PROC must be at most 19000 (open-file limit 20,000 per process)"; exit 2; }
[ "$conns" -le 19500 ] || { echo "bench: SB_BENCH_FO_CONNS must be at most 19500 (one server process holds them all)"; exit 2; }
for b in bin/sb-auth bin/sb-messages bin/sb-realtime bench/fanout_pub bench/wsload bench/histpct; do
	[ -x "$SB_BUILD_ROOT/$b" ] || { echo "bench: $SB_BUILD_ROOT/$b is missing: build first"; exit 1; }
done
command -v node >/dev/null || { echo "bench: node is not installed"; exit 2; }
sio=$root/bench/socketio
[ -d "$sio/node_modules/socket.io" ] && [ -d "$sio/node_modules/@socket.io/redis-adapter" ] ||
	{ echo "bench: $sio/node_modules is missing: run tools/install-deps.sh"; exit 2; }
cfdir=$root/bench/centrifugo
if [[ " $stacks " == *" centrifugo "* ]]; then
	# on demand, into the cache outside the repository; a quick stamp check once built
	. "$root/tools/centrifugo.sh"
	if ! sb_centrifugo_build; then
		echo "bench: Centrifugo could not be built (see above): the centrifugo stack is skipped"
		stacks=$(tr ' ' '\n' <<<"$stacks" | grep -vx centrifugo | tr '\n' ' ')
		export SB_BENCH_FO_STACKS="${stacks:- }"
		[ -n "${stacks// /}" ] || exit 1
	fi
fi
if [ -z "${SB_TEST_TMP:-}" ]; then
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,redis -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null
tmp=$SB_TEST_TMP
nconv=$((conns / members))
procs=$(((conns + per_proc - 1) / per_proc))
hz=$(getconf CLK_TCK)
redis_pid=$(cat "$tmp/redis/redis.pid")
redis_port=${SB_TEST_REDIS_URL##*:}
ttl=7200 # the tokens outlive the run; realtime closes a connection at its token's exp

gen_pids=()
node_pid="" cf_pid=""
cleanup() {
	local p
	for p in "${gen_pids[@]}" $node_pid $cf_pid; do kill -TERM "$p" 2>/dev/null; done
	for p in "${gen_pids[@]}" $node_pid $cf_pid; do wait "$p" 2>/dev/null; done
	gen_pids=() node_pid="" cf_pid=""
	sb_svc_stop_all
}
trap cleanup EXIT

ticks() { # pid...: summed utime+stime clock ticks of those alive
	local t=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo $t
}
sys_ticks() { awk '{print $15}' "/proc/$1/stat" 2>/dev/null || echo 0; } # pid: stime only
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "scenario: $conns connections, $nconv conversations of $members members, $procs load" \
	"generator processes (bench/wsload), steps: seed ${seed_rate}/s for ${seed_s} s, then" \
	"$rates msgs/s for ${step_s} s each; build $SB_BUILD_ROOT"

# 1. Switchboard's services (their migrations create the schemas), then the scenario in SQL.
sb_svc_ports auth messages realtime
nf_port=$(sb_free_port) # nothing listens there: no notifier in this benchmark (see docs)
sb_svc_start auth SB_LOG_LEVEL=warn SB_AUTH_ACCESS_TTL_S=$ttl
sb_svc_start messages SB_LOG_LEVEL=warn
sb_svc_wait_ready auth messages || exit 1
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
q -v conns="$conns" -v members="$members" <<'SQL' || { echo "bench: seeding failed"; exit 1; }
INSERT INTO auth.tenants (id, name) VALUES (gen_random_uuid(), 'fanout');
INSERT INTO auth.users (id, tenant_id, name)
	SELECT gen_random_uuid(), t.id, 'fo' || g FROM auth.tenants t, generate_series(0, :conns - 1) g
	WHERE t.name = 'fanout';
CREATE TABLE public.fo_users AS
	SELECT substr(u.name, 3)::int AS n, u.id::text AS uid, u.tenant_id::text AS tid
	FROM auth.users u JOIN auth.tenants t ON t.id = u.tenant_id WHERE t.name = 'fanout';
CREATE TABLE public.fo_convs AS
	SELECT g AS c, gen_random_uuid() AS id FROM generate_series(0, :conns / :members - 1) g;
INSERT INTO messages.conversations (tenant_id, id, kind, title, created_by, activity_us)
	SELECT u.tid, c.id, 'group', 'fanout ' || c.c, u.uid,
		(extract(epoch FROM now()) * 1000000)::bigint
	FROM public.fo_convs c JOIN public.fo_users u ON u.n = c.c * :members;
INSERT INTO messages.members (tenant_id, conversation_id, user_id)
	SELECT u.tid, c.id, u.uid FROM public.fo_users u JOIN public.fo_convs c ON c.c = u.n / :members;
SQL
# publishers: "<conversation> <sender>" (the first member); generators: "<conversation> <token>"
q -c "SELECT c.id || ' ' || u.uid FROM public.fo_convs c JOIN public.fo_users u ON u.n = c.c * $members ORDER BY c.c" >"$tmp/convs"
q -c "SELECT c.id FROM public.fo_users u JOIN public.fo_convs c ON c.c = u.n / $members ORDER BY u.n" >"$tmp/user_convs"
q -c "SELECT 'fo' || n FROM public.fo_users ORDER BY n" >"$tmp/users"
n_members=$(q -c "SELECT count(*) FROM messages.members")
echo "seeded: $(wc -l <"$tmp/convs") conversations, $n_members members"

# 2. One access token per user, from the operator CLI.
t0=$(date +%s.%N)
env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ACCESS_TTL_S=$ttl SB_LOG_LEVEL=warn \
	"$SB_BUILD_ROOT/bin/sb-auth" token issue --tenant fanout --scopes "messages:read messages:write" \
	--ttl $ttl --users "$tmp/users" >"$tmp/tokens" 2>"$tmp/token_issue.err" ||
	{ echo "bench: sb-auth token issue failed: $(cat "$tmp/token_issue.err")"; exit 1; }
t1=$(date +%s.%N)
[ "$(wc -l <"$tmp/tokens")" = "$conns" ] || { echo "bench: $(wc -l <"$tmp/tokens") tokens for $conns users"; exit 1; }
paste -d' ' "$tmp/user_convs" "$tmp/tokens" >"$tmp/load"
awk -v a="$t0" -v b="$t1" -v n="$conns" 'BEGIN { printf "tokens: %d from `sb-auth token issue --users` in %.2f s\n", n, b - a }'
if [[ " $stacks " == *" centrifugo "* ]]; then
	# Centrifugo: the same users, an HS256 connection JWT each (sub = user id), channel conv:<id>
	cf_secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n') cf_key=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	q -c "SELECT uid FROM public.fo_users ORDER BY n" >"$tmp/user_ids"
	node "$cfdir/tokens.mjs" "$cf_secret" $ttl "$tmp/user_ids" >"$tmp/cf_tokens" ||
		{ echo "bench: bench/centrifugo/tokens.mjs failed"; exit 1; }
	sed 's/^/conv:/' "$tmp/user_convs" | paste -d' ' - "$tmp/cf_tokens" >"$tmp/cf_load"
	[ "$(wc -l <"$tmp/cf_tokens")" = "$conns" ] || { echo "bench: $(wc -l <"$tmp/cf_tokens") Centrifugo tokens for $conns users"; exit 1; }
fi

# 3. The stacks. start_gens MODE PORT LOAD_FILE: the load generators; waits for every "open" line.
start_gens() {
	local mode=$1 port=$2 load=$3 i first=0 n left=$conns
	gen_pids=()
	for i in $(seq 1 "$procs"); do
		n=$(((left + procs - i) / (procs - i + 1)))
		left=$((left - n))
		"$SB_BUILD_ROOT/bench/wsload" -m "$mode" -a "127.0.0.1:$port" -f "$load" -s $first \
			-n "$n" -r $(((open_rate + procs - 1) / procs)) >"$tmp/gen-$mode-$i.out" \
			2>"$tmp/gen-$mode-$i.err" &
		gen_pids+=($!)
		first=$((first + n))
	done
	local deadline=$(($(date +%s) + conns / open_rate + 60)) n_open
	while :; do
		n_open=$(cat "$tmp"/gen-"$mode"-*.out 2>/dev/null | grep -c '"phase":"open"')
		[ "$n_open" -ge "$procs" ] && break
		if [ "$(date +%s)" -gt "$deadline" ]; then
			echo "bench: $mode: the load generators did not finish opening ($n_open of $procs)"
			return 1
		fi
		sleep 0.5
	done
	cat "$tmp"/gen-"$mode"-*.out | jq -s -r --arg m "$mode" '[.[] | select(.phase == "open")] |
		"\($m): \(map(.ready) | add) of \(map(.requested) | add) connections ready in \(map(.open_s) | max) s" +
		"; load generators CPU while opening: \(map(.cpu_s * 100 | round / 100) | join(" / ")) s" +
		(if (map(.retries) | add) > 0 then "; \(map(.retries) | add) reconnections after: \(map(.failures) | unique | join("; "))" else "" end)'
	ready=$(cat "$tmp"/gen-"$mode"-*.out | jq -s '[.[] | select(.phase == "open") | .ready] | add')
	[ "${ready:-0}" -gt 0 ]
}
# report_all MODE: SIGUSR1 to every generator; waits for each one's next report line.
nrep=0
report_all() {
	local mode=$1 p i want
	nrep=$((nrep + 1))
	for p in "${gen_pids[@]}"; do kill -USR1 "$p" 2>/dev/null; done
	for i in $(seq 1 50); do
		want=0
		for f in "$tmp"/gen-"$mode"-*.out; do
			[ "$(grep -c '"phase":"report"' "$f")" -ge $nrep ] && want=$((want + 1))
		done
		[ $want -ge ${#gen_pids[@]} ] && return 0
		sleep 0.1
	done
	echo "bench: $mode: a load generator did not report"
	return 1
}
# merged MODE: the last report line of every generator, merged: count, percentiles of the
# merged histogram (ms), max, each generator's CPU seconds (cumulative), connections closed.
merged() {
	local f
	for f in "$tmp"/gen-"$1"-*.out; do grep '"phase":"report"' "$f" | tail -1; done |
		jq -s -r '"\(map(.count) | add) \(map(.hist) | join(",")) \(map(.max_ms) | max) \(map(.cpu_s) | join("/")) \(map(.closed_after_ready) | add) \(map(.other) | add)"'
}
# hist_pct "i:c,..." p: the percentile p (0..1) of a merged histogram, in ms (bench/histpct).
hist_pct() {
	echo "$1" | "$SB_BUILD_ROOT/bench/histpct" "$2" | awk '{ print $2 }'
}

declare -A best_rate best_dps best_cpu seed_p99 dps_at dps_raw
results=$tmp/results
: >"$results"
# run_step STACK MODE RATE SECONDS SERVER_PID LABEL: one load step; appends a row to $results.
# Sets step_ok=1 when the step passed (p99 < 100 ms, <= 1% missing, publisher on rate).
run_step() {
	local stack=$1 mode=$2 rate=$3 secs=$4 spid=$5 label=$6 pub_out s0 r0 s1 r1 k0 k1
	report_all "$mode" || return 1
	local g0
	g0=$(merged "$mode" | awk '{print $4}')
	s0=$(ticks "$spid") r0=$(ticks "$redis_pid") k0=$(sys_ticks "$spid")
	if [ "$stack" = switchboard ]; then
		pub_out=$("$SB_BUILD_ROOT/bench/fanout_pub" -h 127.0.0.1 -p "$redis_port" -f "$tmp/convs" \
			-r "$rate" -d "$secs" -b "$seq_base" 2>&1 | tail -1)
		seq_base=$((seq_base + rate * secs))
	elif [ "$stack" = centrifugo ]; then
		pub_out=$(CENTRIFUGO_API="http://127.0.0.1:$cf_port/api" CENTRIFUGO_API_KEY=$cf_key \
			CF_PUB_IN_FLIGHT=$cf_in_flight node "$cfdir/pub.mjs" "$tmp/convs" "$rate" "$secs" 2>&1 | tail -1)
	else
		pub_out=$(REDIS_URL=$SB_TEST_REDIS_URL node "$sio/pub.mjs" "$tmp/convs" "$rate" "$secs" 2>&1 | tail -1)
	fi
	sleep "$drain_s"
	s1=$(ticks "$spid") r1=$(ticks "$redis_pid") k1=$(sys_ticks "$spid")
	report_all "$mode" || return 1
	read -r count hist maxms g1 closed other <<<"$(merged "$mode")"
	local sent achieved pcpu lag perr
	sent=$(jq -r '.sent // 0' <<<"$pub_out" 2>/dev/null) achieved=$(jq -r '.achieved // 0' <<<"$pub_out" 2>/dev/null)
	perr=$(jq -r '.errors // 0' <<<"$pub_out" 2>/dev/null)
	pcpu=$(jq -r '.cpu_s // 0' <<<"$pub_out" 2>/dev/null) lag=$(jq -r '.max_lag_ms // 0' <<<"$pub_out" 2>/dev/null)
	[ -n "$sent" ] && [ "$sent" != 0 ] || { echo "bench: $stack publisher failed: $pub_out"; step_ok=0; return 0; }
	local p50 p99 expected
	p50=$(hist_pct "$hist" 0.50) p99=$(hist_pct "$hist" 0.99)
	expected=$((sent * members * ready / conns))
	awk -v st="$stack" -v lb="$label" -v r="$rate" -v sent="$sent" -v ach="$achieved" -v expd="$expected" \
		-v got="$count" -v p50="$p50" -v p99="$p99" -v mx="$maxms" -v s0="$s0" -v s1="$s1" -v r0="$r0" \
		-v r1="$r1" -v hz="$hz" -v g0="$g0" -v g1="$g1" -v pc="$pcpu" -v secs="$secs" -v dr="$drain_s" \
		-v closed="$closed" -v lag="$lag" -v k0="$k0" -v k1="$k1" -v perr="${perr:-0}" 'BEGIN {
		win = secs + dr; scpu = (s1 - s0) / hz; rcpu = (r1 - r0) / hz
		n = split(g0, a, "/"); split(g1, b, "/"); gc = ""
		for (i = 1; i <= n; i++) gc = gc (i > 1 ? "/" : "") sprintf("%.1f", b[i] - a[i])
		miss = expd > 0 ? (expd - got) / expd * 100 : 0
		kcpu = (k1 - k0) / hz
		printf "%-11s %-5s %6d %8.0f %9d %9d %6.2f%% %7s %7s %8.1f %7.2f %7.0f%% %7.2f %9s %6.2f %12.0f %s\n",
			st, lb, r, ach, expd, got, miss, p50, p99, mx, scpu, (scpu > 0 ? kcpu / scpu * 100 : 0), rcpu, gc, pc, (scpu > 0 ? got / scpu : 0),
			(closed > 0 ? "closed:" closed : "") (lag > 1000 ? " publisher-lag:" lag "ms" : "") (perr > 0 ? " publish-errors:" perr : "")
	}' | tee -a "$results"
	[ "${perr:-0}" != 0 ] && echo "bench: $stack publisher: $perr publishes refused or failed: $(jq -r '.first_errors // ""' <<<"$pub_out")"
	# a publish the server refused counts as missing
	step_ok=$(awk -v p99="$p99" -v expd="$expected" -v got="$count" -v ach="$achieved" -v r="$rate" -v m="$p99_max" \
		-v perr="${perr:-0}" -v sent="$sent" \
		'BEGIN { print (p99 < m && got >= expd * 0.99 && ach >= r * 0.95 && perr <= (sent + perr) * 0.01) ? 1 : 0 }')
	if [ "$label" = seed ]; then seed_p99[$stack]=$p99; fi
	if [ "$step_ok" = 1 ]; then
		best_rate[$stack]=$rate
		best_dps[$stack]=$(awk -v g="$count" -v s="$secs" 'BEGIN { printf "%.0f", g / s }')
		best_cpu[$stack]=$(awk -v g="$count" -v a="$s0" -v b="$s1" -v hz="$hz" 'BEGIN { c = (b - a) / hz; printf "%.0f", (c > 0 ? g / c : 0) }')
	fi
	dps_raw[$stack:$rate]=$(awk -v g="$count" -v a="$s0" -v b="$s1" -v hz="$hz" 'BEGIN { c = (b - a) / hz; printf "%.0f", (c > 0 ? g / c : 0) }')
	dps_at[$stack:$rate]=$(awk -v g="$count" -v a="$s0" -v b="$s1" -v hz="$hz" -v ok="$step_ok" 'BEGIN { c = (b - a) / hz; printf "%.0f", (ok && c > 0) ? g / c : 0 }')
	return 0
}

header() {
	printf '%-11s %-5s %6s %8s %9s %9s %7s %7s %7s %8s %7s %8s %7s %9s %6s %12s\n' stack step "msgs/s" achieved \
		expected received missing p50_ms p99_ms max_ms srv_cpu srv_sys rds_cpu gen_cpu pub_cpu "deliv/srvCPUs"
}

seq_base=0
measured=0
for stack in $stacks; do
	echo
	if [ "$stack" = switchboard ]; then
		sb_svc_start realtime SB_LOG_LEVEL=warn SB_WS_PORT="${SVC_HTTP[realtime]}" \
			SB_NOTIFIER_RPC_URL="tcp://127.0.0.1:$nf_port"
		sb_svc_wait_ready realtime || continue
		spid=${SVC_PID[realtime]} port=${SVC_HTTP[realtime]} mode=switchboard load=$tmp/load
	elif [ "$stack" = centrifugo ]; then
		cf_port=$(sb_free_port)
		port=$cf_port
		# v6 key names (internal/config in Centrifugo v6): engine.redis.address, client.token,
		# channel.namespaces, http_api.key. history_size 0, presence and join_leave off (defaults,
		# written out so that they are visible); no admin, no metrics, no usage stats.
		jq -n --argjson port "$cf_port" --arg redis "$SB_TEST_REDIS_URL" --arg secret "$cf_secret" \
			--arg key "$cf_key" '{
			http_server: { address: "127.0.0.1", port: $port },
			log: { level: "warn" },
			engine: { type: "redis", redis: { address: [$redis], prefix: "sbbench" } },
			client: { token: { hmac_secret_key: $secret } },
			channel: { namespaces: [ { name: "conv", allow_subscribe_for_client: true,
				history_size: 0, presence: false, join_leave: false, force_recovery: false } ] },
			http_api: { key: $key },
			health: { enabled: true },
			admin: { enabled: false },
			prometheus: { enabled: false },
			usage_stats: { disabled: true }
		}' >"$tmp/centrifugo.json"
		"$SB_CENTRIFUGO_BIN" -c "$tmp/centrifugo.json" >"$tmp/cf-server.out" 2>&1 &
		cf_pid=$!
		for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$cf_port/health" >/dev/null && break; sleep 0.1; done
		curl -sf "http://127.0.0.1:$cf_port/health" >/dev/null ||
			{ echo "bench: Centrifugo did not start: $(tail -5 "$tmp/cf-server.out")"; kill -TERM "$cf_pid" 2>/dev/null; wait "$cf_pid" 2>/dev/null; cf_pid=""; continue; }
		echo "centrifugo: $("$SB_CENTRIFUGO_BIN" version 2>/dev/null | head -1), Redis engine, config $tmp/centrifugo.json"
		spid=$cf_pid mode=centrifugo load=$tmp/cf_load
	else
		port=$(sb_free_port)
		SIO_PORT=$port REDIS_URL=$SB_TEST_REDIS_URL node "$sio/server.mjs" >"$tmp/sio-server.out" 2>&1 &
		node_pid=$!
		for _ in $(seq 1 100); do grep -q listening "$tmp/sio-server.out" && break; sleep 0.1; done
		grep -q listening "$tmp/sio-server.out" || { echo "bench: socket.io server did not start: $(cat "$tmp/sio-server.out")"; continue; }
		spid=$node_pid mode=socketio load=$tmp/load
	fi
	sleep 1
	if start_gens "$mode" "$port" "$load"; then
		sleep 2 # let the last subscriptions reach Redis
		nrep=0
		header
		run_step "$stack" "$mode" "$seed_rate" "$seed_s" "$spid" seed && measured=1
		for r in $rates; do
			run_step "$stack" "$mode" "$r" "$step_s" "$spid" ladder || break
			[ "$step_ok" = 1 ] || break
		done
	fi
	for p in "${gen_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${gen_pids[@]}"; do wait "$p" 2>/dev/null; done
	gen_pids=()
	if [ "$stack" = switchboard ]; then
		sb_svc_stop realtime
	elif [ "$stack" = centrifugo ]; then
		kill -TERM "$cf_pid" 2>/dev/null
		wait "$cf_pid" 2>/dev/null
		cf_pid=""
	else
		kill -TERM "$node_pid" 2>/dev/null
		wait "$node_pid" 2>/dev/null
		node_pid=""
	fi
done

echo
echo "--- summary (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
echo "columns: CPU in seconds over each step and its ${drain_s}-s drain; gen_cpu per load generator;"
echo "deliv/srvCPUs = deliveries received per CPU-second of the server process; srv_sys = share of that CPU spent in the kernel"
for stack in $stacks; do
	p=${seed_p99[$stack]:-}
	if [ -n "$p" ]; then
		awk -v s="$stack" -v p="$p" -v r="$seed_rate" 'BEGIN { printf "%s: p99 at the seed load (%d msgs/s): %s ms (target < 50 ms: %s)\n", s, r, p, (p < 50 ? "met" : "NOT met") }'
	fi
	if [ -n "${best_rate[$stack]:-}" ]; then
		echo "$stack: highest step with p99 < ${p99_max} ms: ${best_rate[$stack]} msgs/s =" \
			"${best_dps[$stack]} deliveries/s, ${best_cpu[$stack]} deliveries per server CPU-second"
	else
		echo "$stack: no step passed (p99 < ${p99_max} ms, <= 1% missing)"
	fi
done
# Efficiency compared at the highest rate both stacks passed (same work for both).
common=""
for r in $seed_rate $rates; do
	a=${dps_at[switchboard:$r]:-0} b=${dps_at[socketio:$r]:-0}
	[ "$a" != 0 ] && [ "$b" != 0 ] && common=$r
done
if [ -n "$common" ]; then
	awk -v r="$common" -v a="${dps_at[switchboard:$common]}" -v b="${dps_at[socketio:$common]}" 'BEGIN {
		printf "deliveries per server CPU-second at %d msgs/s: switchboard %d, socket.io %d: ratio %.2f (target >= 5: %s)\n",
			r, a, b, a / b, (a / b >= 5 ? "met" : "NOT met") }'
	if [ -n "${best_cpu[switchboard]:-}" ] && [ -n "${best_cpu[socketio]:-}" ]; then
		awk -v a="${best_cpu[switchboard]}" -v b="${best_cpu[socketio]}" 'BEGIN {
			printf "each at its own highest passing step: %d vs %d deliveries per server CPU-second: ratio %.2f\n", a, b, a / b }'
	fi
else
	echo "ratio switchboard / socket.io: no rate passed by both stacks (target >= 5: NOT met)"
	a=${dps_raw[switchboard:$seed_rate]:-0} b=${dps_raw[socketio:$seed_rate]:-0}
	[ "$a" != 0 ] && [ "$b" != 0 ] && awk -v r="$seed_rate" -v a="$a" -v b="$b" 'BEGIN {
		printf "at the seed load (%d msgs/s), passed or not: switchboard %d, socket.io %d deliveries per server CPU-second (ratio %.2f)\n", r, a, b, a / b }'
fi
# The kernel's floor per delivery on this machine, measured now (bench/send_floor_bench.c):
# what 5x socket.io would leave per delivery, against a bare send() and against the readiness
# model (wait for writable, then send) that libwebsockets and Node both use.
floor_bin=$SB_BUILD_ROOT/bench/send_floor_bench
if [ -x "$floor_bin" ] && [ -n "$common" ]; then
	floor=$("$floor_bin" 2>/dev/null | grep '^RESULT ')
	fs=$(sed -n 's/.* send_us=\([^ ]*\).*/\1/p' <<<"$floor")
	fr=$(sed -n 's/.* readiness_us=\([^ ]*\).*/\1/p' <<<"$floor")
	if [ -n "$fs" ] && [ -n "$fr" ]; then
		awk -v a="${dps_at[switchboard:$common]}" -v b="${dps_at[socketio:$common]}" -v fs="$fs" -v fr="$fr" 'BEGIN {
			printf "send floor (bench/send_floor_bench, now): bare send() %.2f us, readiness model %.2f us per frame\n", fs, fr
			printf "  5x socket.io = %.0f deliveries per CPU-second = %.2f us per delivery for everything;\n", 5 * b, 1e6 / (5 * b)
			printf "  ceilings with zero user-space work: bare send %.1fx socket.io, readiness model %.1fx; switchboard now %.2f us per delivery\n",
				1e6 / fs / b, 1e6 / fr / b, 1e6 / a }'
	fi
fi
# The summary table: every stack measured, side by side.
echo
echo "--- summary table (a step passes with p99 < ${p99_max} ms, <= 1% of the deliveries missing, publisher >= 95% of its rate)"
printf '%-11s %12s %15s %13s %14s\n' stack seed_p99_ms highest_passed deliveries/s deliv/srvCPUs
for stack in $stacks; do
	printf '%-11s %12s %15s %13s %14s\n' "$stack" "${seed_p99[$stack]:--}" \
		"${best_rate[$stack]:-none}" "${best_dps[$stack]:--}" "${best_cpu[$stack]:--}"
done
echo "(highest_passed in msgs/s; deliveries/s and deliv/srvCPUs = deliveries per server CPU-second, at that step)"
# every stack at the highest rate all of them passed (same work for all)
all=""
for r in $seed_rate $rates; do
	ok=1
	for stack in $stacks; do [ "${dps_at[$stack:$r]:-0}" != 0 ] || ok=0; done
	[ $ok = 1 ] && all=$r
done
if [ -n "$all" ]; then
	line="deliveries per server CPU-second at $all msgs/s (the highest rate every stack passed):"
	for stack in $stacks; do line="$line $stack ${dps_at[$stack:$all]},"; done
	echo "${line%,}"
else
	echo "no rate was passed by every stack"
fi
if [[ " $stacks " == *" switchboard "* ]] && [[ " $stacks " == *" centrifugo "* ]]; then
	cf_common=""
	for r in $seed_rate $rates; do
		a=${dps_at[switchboard:$r]:-0} b=${dps_at[centrifugo:$r]:-0}
		[ "$a" != 0 ] && [ "$b" != 0 ] && cf_common=$r
	done
	if [ -n "$cf_common" ]; then
		awk -v r="$cf_common" -v a="${dps_at[switchboard:$cf_common]}" -v b="${dps_at[centrifugo:$cf_common]}" 'BEGIN {
			printf "switchboard / centrifugo at %d msgs/s (highest rate both passed): %d vs %d deliveries per server CPU-second: ratio %.2f (no target)\n",
				r, a, b, a / b }'
	else
		echo "switchboard / centrifugo: no rate passed by both"
	fi
fi
[ $measured = 1 ] || { echo "bench: nothing could be measured"; exit 1; }
exit 0
