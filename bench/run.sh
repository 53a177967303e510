#!/usr/bin/env bash
# run.sh BUILD_DIR: runs every benchmark program (build/bench/*_bench) one after another and
# keeps their output in bench/results/<name>.txt. The figures quoted in docs/benchmarks.md come
# from these runs; each program compares against its peer or limit in the same run.
set -uo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/bench/results
mkdir -p "$out"
status=0
{
	echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
} >"$out/machine.txt"
for b in "$build"/bench/*_bench; do
	[ -x "$b" ] || continue
	name=$(basename "$b")
	echo "== $name"
	if "$b" 2>&1 | tee "$out/$name.txt"; then :; else
		echo "!! $name failed"
		status=1
	fi
done
for b in "$root"/bench/*_bench.sh; do
	[ -f "$b" ] || continue
	name=$(basename "$b" .sh)
	echo "== $name"
	if bash "$b" "$build" 2>&1 | tee "$out/$name.txt"; then :; else
		echo "!! $name failed"
		status=1
	fi
done
cat "$out/machine.txt"
exit $status
