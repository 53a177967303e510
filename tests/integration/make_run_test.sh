#!/usr/bin/env bash
# labels: e2e,serial
# make_run_test.sh: `make run` end to end. Runs tools/run-local.sh on free ports with its state
# in a fresh directory, waits for its banner, checks every started service's /ready, checks
# that nginx routes /, /ws, /files and /v1/files to the right upstream with the forwarding
# headers (a small fake upstream stands in for each edge service not built yet), then presses
# Ctrl-C (SIGINT to the process group) and checks that the script exits 0 within 30 s and
# leaves no process behind. Then starts it a second time on the same state directory: a record
# written to Kafka in the first run is still there (the broker's data is durable across runs).
set -uo pipefail
root=${SB_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${SB_BUILD_ROOT:-$root/build}
. "$root/tools/stack.sh"

fails=0
pass() { echo "PASS: $* [${SECONDS}s]"; }
fail() {
	echo "FAIL: $* [${SECONDS}s]"
	fails=$((fails + 1))
}

run=$(mktemp -d /tmp/sb-make-run.XXXXXX)
out=$(mktemp /tmp/sb-make-run-out.XXXXXX)
fakes=()
runner=""

cleanup() {
	local p
	for p in "${fakes[@]+"${fakes[@]}"}"; do kill "$p" 2>/dev/null; done
	if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
		kill -TERM "$runner" 2>/dev/null
		sleep 5
		kill -KILL -- -"$runner" 2>/dev/null
	fi
	[ -f "$run/pg/data/postmaster.pid" ] && sb_pg_stop "$run"
	rm -rf "$run" "$out"
}
trap cleanup EXIT

# Ports: three free ones for the servers, and an offset under which every service port is free.
busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
pg_port=$(sb_free_port)
redis_port=$(sb_free_port)
kafka_port=$(sb_free_port_pair)
while [ "$redis_port" = "$pg_port" ]; do redis_port=$(sb_free_port); done
while [ "$kafka_port" = "$pg_port" ] || [ "$kafka_port" = "$redis_port" ] ||
	[ $((kafka_port + 1)) = "$pg_port" ] || [ $((kafka_port + 1)) = "$redis_port" ]; do
	kafka_port=$(sb_free_port_pair)
done
listening=" $(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ') "
for _ in $(seq 1 50); do
	# every service port (7100..9108 + off) stays below the kernel's ephemeral range (32768)
	off=$(((RANDOM % 20 + 3) * 1000 + RANDOM % 500))
	ok=1
	for p in 8000 $(seq 8080 8083) $(seq 7100 7112) $(seq 9100 9112); do
		q=$((p + off))
		if [[ $listening == *" $q "* ]] || [ $q = "$pg_port" ] || [ $q = "$redis_port" ] ||
			[ $q = "$kafka_port" ] || [ $q = $((kafka_port + 1)) ]; then
			ok=0
			break
		fi
	done
	[ $ok = 1 ] && break
done
[ $ok = 1 ] || {
	echo "FAIL: no free port offset found"
	exit 1
}
ingress=$((8000 + off))
echo "run dir $run, offset $off, pg $pg_port, redis $redis_port, kafka $kafka_port"

# The services run-local.sh will start: the binaries that exist.
declare -A ops_port=([gateway]=9100 [auth]=9101 [messages]=9102 [outbox]=9103 [files]=9104
	[realtime]=9106 [notifier]=9107 [gc]=9108 [ingest]=9109 [registry]=9112)
built=()
for s in gateway auth messages outbox files realtime notifier gc ingest registry; do
	[ -x "$build/bin/sb-$s" ] && built+=("$s")
done
echo "service binaries built: ${built[*]:-none}"

# start_run: starts it as `make run` would, in its own process group (set -m) so that the SIGINT
# below reaches the script and its children as a terminal's Ctrl-C does; waits for the banner.
start_run() {
	set -m
	SB_RUN_DIR=$run SB_PORT_OFFSET=$off SB_PG_PORT=$pg_port SB_REDIS_PORT=$redis_port \
		SB_KAFKA_PORT=$kafka_port bash "$root/tools/run-local.sh" "$build" >"$out" 2>&1 &
	runner=$!
	set +m
	t0=$SECONDS
	until grep -q 'Ctrl-C to stop' "$out"; do
		if ! kill -0 "$runner" 2>/dev/null; then
			wait "$runner"
			echo "FAIL: run-local.sh exited with status $? before its banner:"
			cat "$out"
			exit 1
		fi
		if [ $((SECONDS - t0)) -ge 120 ]; then
			echo "FAIL: no banner within 120 s:"
			cat "$out"
			exit 1
		fi
		sleep 0.2
	done
	pass "banner printed after $((SECONDS - t0)) s"
}

# stop_run: Ctrl-C; everything stops, exit 0, within 30 s.
stop_run() {
	kill -INT -- -"$runner"
	t1=$SECONDS
	while kill -0 "$runner" 2>/dev/null && [ $((SECONDS - t1)) -lt 30 ]; do sleep 0.2; done
	if kill -0 "$runner" 2>/dev/null; then
		fail "run-local.sh still running 30 s after SIGINT"
	else
		wait "$runner"
		rc=$?
		[ $rc = 0 ] && pass "run-local.sh exited 0, $((SECONDS - t1)) s after SIGINT" ||
			fail "run-local.sh exited $rc after SIGINT"
		runner=""
	fi
}
start_run
grep -q "http://127.0.0.1:$ingress/" "$out" && pass "banner shows the browser URL" ||
	fail "banner does not show http://127.0.0.1:$ingress/"
grep -q "$run/logs" "$out" && pass "banner shows where the logs are" || fail "banner misses the logs"

# The servers are up where they were asked to be.
"$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d switchboard -tAqc 'SELECT 1' | grep -qx 1 &&
	pass "PostgreSQL serves database switchboard on :$pg_port" || fail "no database switchboard on :$pg_port"
[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && pass "Redis answers on :$redis_port" ||
	fail "Redis does not answer on :$redis_port"
if kcat -b "127.0.0.1:$kafka_port" -m 5 -L 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$kafka_port"; then
	pass "Apache Kafka answers on :$kafka_port (data in $run/kafka/data)"
else
	fail "no Kafka broker on :$kafka_port"
fi
# The platform's topics were created by the services through the Admin API.
if [ -x "$build/bin/sb-outbox" ]; then
	kcat -b "127.0.0.1:$kafka_port" -m 5 -L -t sb.messages.v1 2>/dev/null | grep -q 'topic "sb.messages.v1" with 6 partitions' &&
		pass "topic sb.messages.v1 exists with 6 partitions" ||
		fail "topic sb.messages.v1 missing: $(kcat -b "127.0.0.1:$kafka_port" -m 5 -L 2>&1 | head -20)"
	# A marker record (a type no consumer handles) to find again after a restart.
	marker="make-run-test-$$-$RANDOM"
	printf '%s\n' "$marker" | kcat -b "127.0.0.1:$kafka_port" -P -t sb.messages.v1 -p 0 \
		-H ce_id="$marker" -H ce_type=io.switchboard.test.marker -H ce_specversion=1.0 -H ce_source=/test 2>/dev/null &&
		pass "a marker record was written to sb.messages.v1" || fail "cannot write to sb.messages.v1"
fi

for s in "${built[@]+"${built[@]}"}"; do
	p=$((ops_port[$s] + off))
	code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$p/ready")
	[ "$code" = 200 ] && pass "$s /ready is 200 on :$p" || fail "$s /ready on :$p answered $code"
done

# nginx in front: the gateway's answer, or 502 while there is no gateway.
if [ -x "$build/bin/sb-gateway" ]; then
	body=$(curl -s -m 5 -w '\n%{http_code} %{content_type}' "http://127.0.0.1:$ingress/v1/health")
	status=$(tail -n 1 <<<"$body")
	if [[ $status == "200 application/"*json* ]] && head -n -1 <<<"$body" | jq -e . >/dev/null; then
		pass "GET /v1/health through nginx is 200 JSON"
	else
		fail "GET /v1/health through nginx: $status $(head -c 300 <<<"$body")"
	fi
	code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$ingress/")
	[[ $code =~ ^[1-5][0-9][0-9]$ && $code != 502 ]] && pass "GET / answered by the gateway ($code)" ||
		fail "GET / through nginx answered $code"
else
	code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$ingress/")
	[ "$code" = 502 ] && pass "GET / through nginx is 502 (no gateway built yet)" ||
		fail "GET / through nginx answered $code, want 502 without a gateway"
fi

# files through nginx: tus capabilities, then alice uploads with tus and downloads; the bytes
# live under the run's directory.
if [ -x "$build/bin/sb-files" ]; then
	[ -f "$run/dev-credentials.json" ] || fail "no $run/dev-credentials.json to upload with"
	fh=$(curl -s -D - -o /dev/null -m 5 -X OPTIONS "http://127.0.0.1:$ingress/files/" | tr -d '\r')
	grep -q '^HTTP/1.1 204' <<<"$fh" && grep -qi '^Tus-Version: 1.0.0' <<<"$fh" &&
		pass "OPTIONS /files/ through nginx announces tus 1.0.0" || fail "OPTIONS /files/ through nginx: $(head -c 300 <<<"$fh")"
	creds=$run/dev-credentials.json
	tok=$(curl -s -m 5 -u "$(jq -r .alice.client_id "$creds"):$(jq -r .alice.client_secret "$creds")" \
		-d grant_type=client_credentials "http://127.0.0.1:$ingress/auth/token" | jq -r .access_token)
	loc=$(curl -s -D - -o /dev/null -m 5 -X POST -H "Authorization: Bearer $tok" -H 'Tus-Resumable: 1.0.0' \
		-H 'Upload-Length: 5' "http://127.0.0.1:$ingress/files/" | tr -d '\r' | sed -n 's/^Location: //Ip')
	code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -X PATCH -H "Authorization: Bearer $tok" \
		-H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' \
		--data-binary hello "http://127.0.0.1:$ingress$loc")
	got=$(curl -s -m 5 -H "Authorization: Bearer $tok" "http://127.0.0.1:$ingress/v1/files/${loc##*/}/content")
	[ "$code" = 204 ] && [ "$got" = hello ] && [ -f "$run/files/up/${loc##*/}" ] &&
		pass "a tus upload through nginx reads back, stored under the run directory" ||
		fail "tus upload through nginx: Location '$loc', PATCH $code, read back '$got'"
fi

# /registry goes to the schema registry's own port (its Confluent-compatible API).
if [ -x "$build/bin/sb-registry" ]; then
	body=$(curl -s -m 5 -w '\n%{http_code}' "http://127.0.0.1:$ingress/registry/subjects")
	if [ "$(tail -n 1 <<<"$body")" = 401 ] &&
		[ "$(head -n -1 <<<"$body" | jq -r .error_code 2>/dev/null)" = 40101 ]; then
		pass "GET /registry/subjects reaches the registry (401 without a token, Confluent's error)"
	else
		fail "GET /registry/subjects through nginx: $(head -c 300 <<<"$body")"
	fi
fi

# Routes: a fake upstream on each edge port whose service is not built echoes what it got.
py=$(command -v /usr/bin/python3 python3 | head -n 1)
fake() { # fake NAME PORT
	"$py" - "$1" "$2" <<'EOF' &
import http.server, json, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def handle_one_request(self):
        try:
            super().handle_one_request()
        except ConnectionError:
            self.close_connection = True
    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        out = json.dumps({"upstream": name, "path": self.path, "body": len(body),
                          "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PATCH = reply
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
	fakes+=($!)
	sb_wait_port 127.0.0.1 "$2" 5
}
declare -A edge=([gateway]=8080 [realtime]=8081 [files]=8082)
faked=()
if [ -n "$py" ]; then
	for s in gateway realtime files; do
		[ -x "$build/bin/sb-$s" ] || { fake "$s" $((edge[$s] + off)) && faked+=("$s"); }
	done
else
	echo "note: python3 missing, routes are not checked with fake upstreams"
fi
is_faked() { [[ " ${faked[*]-} " == *" $1 "* ]]; }

# route METHOD PATH WANT [CURL ARGS...]: the request reached upstream WANT, with its path.
route() {
	local method=$1 path=$2 want=$3 r
	shift 3
	is_faked "$want" || return 0
	r=$(curl -s -m 5 -X "$method" "$@" "http://127.0.0.1:$ingress$path")
	if [ "$(jq -r .upstream <<<"$r" 2>/dev/null)" = "$want" ] && [ "$(jq -r .path <<<"$r")" = "$path" ]; then
		pass "$method $path goes to $want"
	else
		fail "$method $path: want $want, got: $(head -c 300 <<<"$r")"
	fi
	last=$r
}
last=""
route GET /v1/conversations gateway
route GET /filesystem gateway
route GET /wsx gateway
route GET /v1/files/abc files
route POST /files files -H 'Tus-Resumable: 1.0.0' --data-binary @/dev/null
route PATCH /files/123 files --data-binary "$(head -c 70000 /dev/zero | tr '\0' x)"
is_faked files && { [ "$(jq -r .body <<<"$last")" = 70000 ] && pass "a 70 kB body reaches files whole" ||
	fail "upload body arrived as $(jq -r .body <<<"$last") bytes"; }
route GET /ws realtime -H 'Upgrade: websocket' -H 'Connection: Upgrade'
if is_faked realtime; then
	[ "$(jq -r '.headers.upgrade' <<<"$last")" = websocket ] &&
		[ "$(jq -r '.headers.connection' <<<"$last" | tr A-Z a-z)" = upgrade ] &&
		pass "/ws passes the WebSocket upgrade headers" ||
		fail "/ws upgrade headers lost: $(jq -c .headers <<<"$last")"
fi
if is_faked gateway; then
	route GET /v1/me gateway -H 'X-Request-Id: req-42'
	h=$(jq -c .headers <<<"$last")
	[ "$(jq -r '.headers["x-request-id"]' <<<"$last")" = req-42 ] &&
		[ "$(jq -r '.headers["x-forwarded-for"]' <<<"$last")" = 127.0.0.1 ] &&
		[ "$(jq -r '.headers["x-forwarded-proto"]' <<<"$last")" = http ] &&
		pass "X-Request-Id, X-Forwarded-For and X-Forwarded-Proto reach the gateway" ||
		fail "forwarding headers wrong: $h"
	route GET /v1/me gateway
	[[ "$(jq -r '.headers["x-request-id"]' <<<"$last")" =~ ^[0-9a-f]{32}$ ]] &&
		pass "a missing X-Request-Id is generated" || fail "no X-Request-Id generated: $(jq -c .headers <<<"$last")"
fi
for p in "${fakes[@]+"${fakes[@]}"}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
fakes=()

# Ctrl-C: everything stops, exit 0, within 30 s.
svc_pids=$(cat "$run"/pids/*.pid 2>/dev/null)
kafka_pid=$(cat "$run/kafka/kafka.pid" 2>/dev/null)
stop_run
sleep 0.5
[ -n "$kafka_pid" ] && kill -0 "$kafka_pid" 2>/dev/null && fail "the Kafka broker (pid $kafka_pid) is still running"
left=$(pgrep -af -- "$run|:$ingress|:$pg_port|:$redis_port|:$kafka_port| -p $pg_port " | grep -v pgrep || true)
[ -z "$left" ] && pass "no process left behind" || fail "processes left behind: $left"
for p in $svc_pids; do
	kill -0 "$p" 2>/dev/null && fail "service pid $p ($(tr '\0' ' ' </proc/$p/cmdline)) left behind"
done
for p in $ingress $pg_port $redis_port $kafka_port $((kafka_port + 1)); do
	busy "$p" && fail "port $p still listened on"
done

# A second run on the same state: the marker written in the first is still in the topic.
if [ -n "${marker:-}" ]; then
	start_run
	got=$(kcat -b "127.0.0.1:$kafka_port" -C -t sb.messages.v1 -p 0 -o beginning -e -q 2>/dev/null | grep -c "^$marker\$")
	[ "$got" = 1 ] && pass "after stopping and starting again, the Kafka record is still there" ||
		fail "the marker record is gone after a restart (found $got)"
	stop_run
fi

if [ $fails -gt 0 ]; then
	echo "---- run-local.sh output ----"
	cat "$out"
	echo "FAIL: $fails check(s) failed"
	exit 1
fi
echo "PASS: make run end to end"
