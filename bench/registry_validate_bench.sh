#!/usr/bin/env bash
# registry_validate_bench.sh [BUILD_DIR]: JSON Schema validation per message, the registry's
# validator (valijson through services/registry/jsv.cpp, build/bench/reg_validate_load) against
# ajv 8 (npm, bench/registry/ajv.mjs) in the same run, on the same draft 7 schema (an order
# event: nested object, array of items, enums, patterns, bounds, additionalProperties false) and
# the same 4,000 documents (one in four invalid), each parsed from its text, all violations
# collected, one thread each, SECONDS (default 5) each. The two must agree on which documents
# are invalid. Target: at least 10,000 documents/s for the registry on one core, so that
# validation costs at most 0.1 ms of a publish; ajv's rate is printed beside it. Exit 1 on a
# miss or a disagreement.
set -uo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${SECONDS_EACH:-5}
target=10000
load=$build/bench/reg_validate_load
[ -x "$load" ] || { echo "FAIL: $load is missing (cmake --build $build --target reg_validate_load)"; exit 1; }
[ -d "$root/bench/registry/node_modules/ajv" ] || { echo "FAIL: ajv missing: run tools/install-deps.sh"; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
node "$root/bench/registry/gen.mjs" "$dir" 4000 || exit 1
read -r ours ours_bad < <("$load" "$dir" "$secs") || { echo "FAIL: reg_validate_load"; exit 1; }
read -r peer peer_bad < <(node "$root/bench/registry/ajv.mjs" "$dir" "$secs") || { echo "FAIL: ajv"; exit 1; }
echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg), $secs s each, 4000 documents"
printf '%-28s %12s %18s\n' validator docs/s "invalid (of 4000)"
printf '%-28s %12s %18s\n' "registry (valijson 1.0)" "$ours" "$ours_bad"
printf '%-28s %12s %18s\n' "ajv 8.20 (node $(node -v))" "$peer" "$peer_bad"
echo "ratio ajv/registry: $(awk -v a="$peer" -v b="$ours" 'BEGIN { printf "%.1f", a / b }')"
status=0
[ "$ours_bad" = "$peer_bad" ] || { echo "FAIL: the validators disagree on the invalid documents"; status=1; }
if [ "$ours" -ge "$target" ]; then
	echo "PASS: $ours documents/s >= $target"
else
	echo "FAIL: $ours documents/s < $target"
	status=1
fi
exit $status
