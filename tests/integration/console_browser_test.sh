#!/usr/bin/env bash
# The web console in a real browser (tests/browser/console.test.mjs: Debian's Chromium driven
# by playwright-core) against the real platform: auth, messages, outbox, notifier, gateway and
# one realtime instance on free ports, nginx in front as in `make run` (one origin for the page,
# the REST API and /ws), dev users seeded with `sb-auth seed-dev`. Also checks the dev-only
# GET /dev/credentials route: 503 before the file exists, 200 with it, 404 unset, 500 not JSON.
# Uploads: files behind the same nginx (/files, /v1/files); alice uploads a file with the
# console (tus-js-client), pauses and resumes it, sends it; bob downloads the same bytes.
# stack: pg,redis,kafka
# labels: browser,e2e
set -u
root=${SB_SOURCE_ROOT:?}
build=${SB_BUILD_ROOT:?}
tmp=${SB_TEST_TMP:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"

fails=0
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

[ -x /usr/bin/chromium ] || { echo "FAIL: /usr/bin/chromium is missing: run tools/install-deps.sh"; exit 1; }
[ -d "$root/tests/browser/node_modules/playwright-core" ] ||
	{ echo "FAIL: tests/browser/node_modules is missing: run tools/install-deps.sh"; exit 1; }

creds=$tmp/dev-credentials.json
sb_svc_ports gateway auth messages outbox notifier realtime files
# other_port [PORT...]: a free port that no service was given (they do not listen yet) and
# that is none of PORT.
other_port() {
	local p
	while p=$(sb_free_port); do
		[[ " ${SVC_RPC[*]} ${SVC_OPS[*]} ${SVC_HTTP[*]} $* " == *" $p "* ]] || { echo "$p"; return; }
	done
}
ingress=$(other_port)
origin="http://127.0.0.1:$ingress"
ws_port=${SVC_HTTP[realtime]} # realtime's public port is SB_WS_PORT, not SB_HTTP_PORT
sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000
sb_svc_start messages
sb_svc_start outbox
sb_svc_start notifier
sb_svc_start gateway SB_DEV_CREDENTIALS_FILE="$creds"
sb_svc_start realtime SB_WS_PORT="$ws_port" SB_WS_ALLOWED_ORIGINS="$origin"
sb_svc_start files SB_FILES_DIR="$tmp/files" SB_FILES_ALLOWED_ORIGINS="$origin"

# nginx from the template `make run` uses (tools/nginx.conf.in), routes and all.
ngx=$tmp/nginx
mkdir -p "$ngx/tmp"
user_line="# (not root)"
if [ "$(id -u)" = 0 ]; then
	user_line="user nobody nogroup;"
	runuser -u nobody -- test -x "$ngx" 2>/dev/null || user_line="user root;"
fi
sed -e "s|@PREFIX@|$ngx|g" -e "s|@LOGS@|$tmp/logs|g" -e "s|@USER@|$user_line|g" \
	-e "s|@INGRESS_PORT@|$ingress|g" -e "s|@GATEWAY_PORT@|${SVC_HTTP[gateway]}|g" \
	-e "s|@REALTIME_PORT@|$ws_port|g" -e "s|@FILES_PORT@|${SVC_HTTP[files]}|g" \
	-e "s|@REGISTRY_PORT@|$(other_port "$ingress")|g" \
	"$root/tools/nginx.conf.in" >"$tmp/nginx.conf"
# every placeholder of the template (outside comments) is filled
if grep -v '^[[:space:]]*#' "$tmp/nginx.conf" | grep -q '@[A-Z_]*@'; then
	echo "FAIL: unfilled in nginx.conf: $(grep -v '^[[:space:]]*#' "$tmp/nginx.conf" | grep -o '@[A-Z_]*@' | sort -u | tr '\n' ' ')"
	exit 1
fi

gw2_pid=""
cleanup() {
	[ -n "$gw2_pid" ] && { kill -TERM "$gw2_pid" 2>/dev/null; wait "$gw2_pid" 2>/dev/null; }
	sb_nginx_stop "$ngx"
	sb_svc_stop_all
}
trap cleanup EXIT
sb_nginx_start "$ngx" "$tmp/nginx.conf" || { echo "FAIL: nginx did not start"; exit 1; }
sb_wait_port 127.0.0.1 "$ingress" 10 || { echo "FAIL: nginx does not listen"; exit 1; }

sb_svc_wait_ready auth messages outbox notifier gateway realtime files || exit 1

# GET /dev/credentials before seed-dev wrote the file: 503, not a crash or an empty 200.
code=$(curl -s -o "$tmp/dc0" -w '%{http_code}' "$origin/dev/credentials")
[ "$code" = 503 ] && grep -q 'not written yet' "$tmp/dc0" &&
	pass "GET /dev/credentials before seeding is 503 with a clear detail" ||
	fail "GET /dev/credentials before seeding: $code $(head -c 200 "$tmp/dc0")"

DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_PBKDF2_ITERATIONS=100000 \
	"$build/bin/sb-auth" seed-dev --out "$creds" >"$tmp/logs/seed-dev.log" 2>&1 ||
	{ echo "FAIL: sb-auth seed-dev"; cat "$tmp/logs/seed-dev.log"; exit 1; }

code=$(curl -s -D "$tmp/dc1.h" -o "$tmp/dc1" -w '%{http_code}' "$origin/dev/credentials")
if [ "$code" = 200 ] && jq -e '.alice.user_id and .bob.user_id and .alice.client_secret' "$tmp/dc1" >/dev/null &&
	grep -qi '^cache-control: no-store' "$tmp/dc1.h"; then
	pass "GET /dev/credentials answers seed-dev's file (user ids included), not cached"
else
	fail "GET /dev/credentials: $code (want 200 JSON with alice/bob user_id, Cache-Control: no-store)"
fi

# A second gateway: without SB_DEV_CREDENTIALS_FILE the route does not exist (404); with a
# file that is not seed-dev's JSON it is a clear 500, never the file's bytes.
printf 'not json at all\n' >"$tmp/not-creds.txt"
for want in "404:" "500:$tmp/not-creds.txt"; do
	gw2_http=$(other_port "$ingress")
	gw2_rpc=$(other_port "$ingress" "$gw2_http")
	gw2_ops=$(other_port "$ingress" "$gw2_http" "$gw2_rpc")
	mapfile -t envs < <(sb_svc_env)
	env "${envs[@]}" SB_RPC_URL="tcp://127.0.0.1:$gw2_rpc" SB_OPS_PORT="$gw2_ops" \
		SB_HTTP_PORT="$gw2_http" SB_DEV_CREDENTIALS_FILE="${want#*:}" "$build/bin/sb-gateway" \
		>>"$tmp/logs/gateway2.log" 2>&1 &
	gw2_pid=$!
	sb_wait_port 127.0.0.1 "$gw2_http" 10 || fail "second gateway does not listen"
	code=$(curl -s -o "$tmp/dc2" -w '%{http_code}' "http://127.0.0.1:$gw2_http/dev/credentials")
	if [ "$code" = "${want%%:*}" ] && ! grep -q 'client_secret\|not json' "$tmp/dc2" &&
		jq -e '.detail | length > 0' "$tmp/dc2" >/dev/null; then
		pass "GET /dev/credentials with SB_DEV_CREDENTIALS_FILE='${want#*:}' is $code, a problem"
	else
		fail "GET /dev/credentials with SB_DEV_CREDENTIALS_FILE='${want#*:}': $code $(head -c 200 "$tmp/dc2")"
	fi
	kill -TERM "$gw2_pid" 2>/dev/null
	wait "$gw2_pid" 2>/dev/null
	gw2_pid=""
done

# The page itself through nginx, with its CSP.
code=$(curl -s -D "$tmp/idx.h" -o /dev/null -w '%{http_code}' "$origin/")
[ "$code" = 200 ] && grep -qi "^content-security-policy: default-src 'self'" "$tmp/idx.h" &&
	pass "GET / through nginx is the console with its CSP" || fail "GET / through nginx: $code"

(cd "$root/tests/browser" && SB_CONSOLE_URL="$origin" SB_TEST_TMP="$tmp" \
	timeout -k 5 120 node --test --test-concurrency=1 console.test.mjs)
rc=$?
[ $rc = 0 ] && pass "browser scenario (screenshots in $tmp/console-*.png)" || fail "browser scenario (rc $rc)"

# No credential in any log: the console signed in and went live (its WebSocket authenticates
# with its first frame), the ingress logs request lines without their query, the services log
# no token. A JWT is three base64url parts, the first two starting with eyJ ('{"').
[ -s "$tmp/logs/nginx-access.log" ] && grep -q ' "GET /ws HTTP/1.1" 101 ' "$tmp/logs/nginx-access.log" &&
	pass "the ingress logged the console's WebSocket upgrade" ||
	fail "no WebSocket upgrade in the ingress's access log (the check below would prove nothing)"
leaks=$(grep -rEo 'eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}' "$tmp/logs" 2>/dev/null | cut -c1-80)
[ -z "$leaks" ] && pass "no access token in any log ($(ls "$tmp/logs" | wc -l) files)" ||
	fail "access tokens in logs: $leaks"
leaks=$(grep -rEl '[?&]token=[^&" ]' "$tmp/logs" 2>/dev/null)
[ -z "$leaks" ] && pass "no token= query value in any log" || fail "token= values in: $leaks"

if [ $fails != 0 ]; then
	for s in gateway realtime notifier files; do
		echo "--- $s"
		tail -n 8 "$tmp/logs/$s.log"
	done
	exit 1
fi
echo "PASS: console_browser_test"
