#!/usr/bin/env bash
# devbus_control_test.sh: devbus's control port (through `devbus ctl`), kcat producing and
# consuming through the bootstrap list and through --listen, and devbus's exit when its
# --parent-pid process dies.
# stack: devbus
# labels: kafka,devbus
set -euo pipefail
. "$SB_SOURCE_ROOT/tools/stack.sh"
bin=${SB_BUILD_ROOT:-$SB_SOURCE_ROOT/build}/bin/devbus
ctl=$SB_TEST_DEVBUS_CTL
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_ctl EXIT_STATUS PATTERN ARGS...: runs devbus ctl, checks its status and reply.
expect_ctl() {
	local want=$1 pat=$2 out rc=0
	shift 2
	out=$("$bin" ctl "$ctl" "$@") || rc=$?
	[ "$rc" = "$want" ] || fail "devbus ctl $*: exit $rc, want $want (reply: $out)"
	[[ $out =~ $pat ]] || fail "devbus ctl $*: reply '$out' does not match '$pat'"
}

# Control commands and their replies.
expect_ctl 0 '^ok pong$' ping
expect_ctl 0 "^ok ${SB_TEST_KAFKA_BROKERS}\$" bootstrap
expect_ctl 0 '^ok created it.ctl.t1 3$' create it.ctl.t1 3
expect_ctl 1 '^err partitions' create it.ctl.t2 zero
expect_ctl 1 '^err invalid topic name' create 'bad/name' 2
expect_ctl 1 '^err usage: down' down
expect_ctl 1 '^err broker id must be 1..3' down 9
expect_ctl 1 '^err unknown command' frobnicate
expect_ctl 0 '^ok broker 2 down$' down 2
expect_ctl 0 '^ok broker 2 up$' up 2
# Nothing listening: a clear error and status 1, not a hang.
rc=0
timeout 10 "$bin" ctl 127.0.0.1:1 ping 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "ctl to a closed port exited $rc, want 1"

# roundtrip BOOTSTRAP TOPIC: kcat produces 5 lines and consumes them back.
roundtrip() {
	local boot=$1 topic=$2 got
	printf 'k%d:v%d\n' 1 1 2 2 3 3 4 4 5 5 |
		timeout 20 kcat -P -b "$boot" -t "$topic" -K: -X enable.idempotence=true -X acks=all ||
		fail "kcat produce through $boot"
	got=$(timeout 20 kcat -C -b "$boot" -t "$topic" -o beginning -c 5 -e -q -f '%k=%s\n') ||
		fail "kcat consume through $boot"
	[ "$got" = $'k1=v1\nk2=v2\nk3=v3\nk4=v4\nk5=v5' ] ||
		[ "$(sort <<<"$got")" = $'k1=v1\nk2=v2\nk3=v3\nk4=v4\nk5=v5' ] ||
		fail "consumed through $boot: '$got'"
}
expect_ctl 0 '^ok created it.ctl.kcat 1$' create it.ctl.kcat 1
roundtrip "$SB_TEST_KAFKA_BROKERS" it.ctl.kcat

# A second devbus with a stable --listen address, tied to a parent we control.
sleep 60 &
parent=$!
dir=$SB_TEST_TMP/second
mkdir -p "$dir"
lport=$(sb_free_port)
cport=$(sb_free_port)
"$bin" --brokers 2 --bootstrap-file "$dir/boot" --control "127.0.0.1:$cport" \
	--parent-pid "$parent" --listen "127.0.0.1:$lport" --topic it.listen:2 >"$dir/log" 2>&1 &
second=$!
trap 'kill $parent $second 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$dir/boot" ] && break; sleep 0.1; done
[ -s "$dir/boot" ] || { cat "$dir/log" >&2; fail "second devbus wrote no bootstrap file"; }
grep -qi '"level":"warn".*not durable' "$dir/log" || fail "no 'not durable' warning logged"
roundtrip "127.0.0.1:$lport" it.listen
# The stable address still works with one broker down.
ctl=127.0.0.1:$cport expect_ctl 0 '^ok broker 1 down$' down 1
meta=$(timeout 20 kcat -L -b "127.0.0.1:$lport" -t it.listen) || fail "metadata via --listen"
grep -q '2 brokers' <<<"$meta" || fail "metadata via --listen: $meta"

# Its parent dies: devbus must exit on its own within a few seconds.
kill "$parent"
wait "$parent" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$second" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$second" 2>/dev/null; then fail "devbus still running 5 s after its parent died"; fi
wait "$second" || fail "devbus exited with status $? after its parent died"
grep -q 'parent process is gone' "$dir/log" || fail "no log line about the parent"
echo "devbus_control_test: ok"
