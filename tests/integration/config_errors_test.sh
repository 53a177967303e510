#!/usr/bin/env bash
# Every service refuses a bad configuration value with exit status 2 and a message naming the
# variable, validates with --check-config (0 good / 1 bad), and never crashes on bad input.
# labels: config
set -u
build=${SB_BUILD_ROOT:?}
fail=0
check() { # name expected_status expected_text -- command...
	local name=$1 want=$2 text=$3
	shift 4
	out=$("$@" 2>&1 </dev/null)
	rc=$?
	if [ "$rc" -ne "$want" ] || ! grep -qF -- "$text" <<<"$out"; then
		echo "FAIL: $name: status $rc (want $want), output: $out"
		fail=1
	else
		echo "ok: $name"
	fi
}
# every service directory (services/<name>, the runtime excepted)
for svc in $(cd "${SB_SOURCE_ROOT:?}/services" && ls -d */ | tr -d / | grep -vx common); do
	bin=$build/bin/sb-$svc
	check "$svc port out of range" 2 "SB_OPS_PORT: 70000 is out of range" -- env SB_OPS_PORT=70000 timeout 10 "$bin"
	check "$svc workers not a number" 2 "SB_RPC_WORKERS: \"lots\" is not an integer" -- env SB_RPC_WORKERS=lots timeout 10 "$bin"
	check "$svc bad log level" 2 "SB_LOG_LEVEL" -- env SB_LOG_LEVEL=shouty timeout 10 "$bin"
	check "$svc bad rpc url" 2 "SB_RPC_URL" -- env SB_RPC_URL=http://nope timeout 10 "$bin"
	check "$svc check-config bad" 1 "SB_RPC_WORKERS" -- env SB_RPC_WORKERS=0 timeout 10 "$bin" --check-config
	check "$svc check-config good" 0 "configuration OK" -- timeout 10 "$bin" --check-config
	check "$svc unknown flag" 2 "usage" -- timeout 10 "$bin" --bogus
done
check "messages bad DATABASE_URL" 2 "DATABASE_URL" -- env DATABASE_URL=nonsense timeout 10 "$build/bin/sb-messages"
check "gateway body limit too small" 2 "SB_HTTP_MAX_BODY_BYTES: 10 is out of range" -- env SB_HTTP_MAX_BODY_BYTES=10 timeout 10 "$build/bin/sb-gateway"
[ $fail -eq 0 ] && echo "PASS: config errors" || echo "FAIL: config errors"
exit $fail
