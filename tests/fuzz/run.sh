#!/usr/bin/env bash
# run.sh: runs the libFuzzer targets of tests/fuzz.
#   run.sh smoke <target-binary> <seed-dir> <work-dir> <seconds>
#       one target over its checked-in seeds, then fuzzing for <seconds> (ctest, `make test`);
#       new inputs go to <work-dir>/new (emptied first), a crash to <work-dir>/.
#   run.sh long <build-dir> <seconds> [target...]
#       every target (or those named) for <seconds> each, FUZZ_JOBS at a time (`make fuzz`);
#       the corpus each grows is kept in <build-dir>/tests/fuzz/long/<target>/corpus and reused
#       next time; logs and crash inputs beside it. Exits 1 when any target found something.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

smoke() {
	local bin=$1 seeds=$2 work=$3 secs=$4
	rm -rf "$work/new"
	mkdir -p "$work/new"
	# -timeout: an input taking 10 s is a finding (hang); -rss_limit_mb: so is 2 GB.
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/" "$work/new" "$seeds"
}

one_long() {
	local build=$1 secs=$2 name=$3
	local bin=$build/tests/fuzz/$name dir=$build/tests/fuzz/long/$name
	mkdir -p "$dir/corpus" "$dir/crashes"
	if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/crashes/" "$dir/corpus" "$here/corpus/$name" \
		>"$dir/log" 2>&1; then
		local runs cov
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
		cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -n 1)
		echo "fuzz $name: ok, ${runs:-?} inputs in ${secs}s, $cov, corpus $(ls "$dir/corpus" | wc -l)"
	else
		echo "fuzz $name: FOUND SOMETHING: see $dir/log and $dir/crashes/"
		tail -n 30 "$dir/log" | sed 's/^/  /'
		return 1
	fi
}

long() {
	local build=$1 secs=$2
	shift 2
	local names=("$@")
	if [ ${#names[@]} -eq 0 ]; then
		for c in "$here"/*_fuzz.c; do
			names+=("$(basename "$c" .c)")
		done
	fi
	local jobs=${FUZZ_JOBS:-$(nproc)} failed=0 pids=() running=0
	echo "fuzzing ${#names[@]} targets for ${secs}s each, $jobs at a time"
	for n in "${names[@]}"; do
		[ -x "$build/tests/fuzz/$n" ] || { echo "fuzz $n: not built in $build"; failed=1; continue; }
		one_long "$build" "$secs" "$n" &
		pids+=($!)
		running=$((running + 1))
		if [ "$running" -ge "$jobs" ]; then
			wait -n || failed=1
			running=$((running - 1))
		fi
	done
	while [ "$running" -gt 0 ]; do
		wait -n || failed=1
		running=$((running - 1))
	done
	return $failed
}

case ${1:-} in
smoke) shift; smoke "$@" ;;
long) shift; long "$@" ;;
*) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
