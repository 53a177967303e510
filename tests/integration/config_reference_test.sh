#!/usr/bin/env bash
# README's configuration reference matches every service's config table exactly.
# labels: docs
set -euo pipefail
root=${SB_SOURCE_ROOT:?}
build=${SB_BUILD_ROOT:?}
want=$(bash "$root/tools/config-reference.sh" "$build")
have=$(awk '/<!-- config-reference:begin -->/{on=1;next} /<!-- config-reference:end -->/{on=0} on' "$root/README.md")
n=$(grep -c '^### ' <<<"$want" || true)
# One section per service directory (services/<name>/CMakeLists.txt, the runtime excepted).
expected=$(find "$root/services" -mindepth 2 -maxdepth 2 -name CMakeLists.txt | grep -vc '/common/')
if [ "$n" -ne "$expected" ]; then
	echo "FAIL: expected $expected services in the reference, found $n"
	exit 1
fi
if [ "$want" != "$have" ]; then
	echo "FAIL: README.md configuration reference is out of date; run:"
	echo "  bash tools/config-reference.sh build --update"
	diff <(echo "$have") <(echo "$want") | head -40
	exit 1
fi
echo "PASS: README configuration reference matches the config tables of $n services"
