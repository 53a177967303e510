#!/usr/bin/env bash
# files_bench.sh BUILD_DIR: 1 GiB (SB_BENCH_FILES_MIB) through tus-js-client in 32 MiB PATCHes
# (SB_BENCH_FILES_CHUNK_MIB) against sb-files, and in the same run, on the same disk, against
# the reference tus server (@tus/server + @tus/file-store, bench/files) and a plain
# `dd bs=8M conv=fdatasync`. sb-files acknowledges each PATCH only once its bytes are
# fdatasync'ed (durable at completion); @tus/file-store as shipped never syncs (its bytes may
# still be in the page cache when it answers), so the peer runs twice: as shipped, and with the
# same durability as sb-files (DURABLE=1: each PATCH's file fdatasync'ed before its answer,
# bench/files/tus_peer.mjs). Targets (issue 11): sb-files >= 0.9 x dd's rate and >= 2 x
# @tus/server's, the latter judged at equal durability (the as-shipped ratio is printed too).
# Also reports sb-files' peak RSS, and
# the client's ceiling: tus-js-client against a server that reads and discards every byte
# (bench/files/tus_null.mjs), the bound of any server measured with this client.
# Exit 1 when a target is missed. Starts its own PostgreSQL, Redis and Kafka broker
# (tests/lib/with-stack.sh), auth, messages, gateway (for tokens) and files.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${SB_TEST_TMP:-}" ]; then
	SB_BUILD_ROOT=$(cd "${1:-build}" && pwd) || exit 1
	export SB_BUILD_ROOT SB_SOURCE_ROOT=$root
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,redis,kafka1 -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"
mib=${SB_BENCH_FILES_MIB:-1024}
chunk=${SB_BENCH_FILES_CHUNK_MIB:-32}
[ -d "$root/bench/files/node_modules/@tus/server" ] || { echo "FAIL: run tools/install-deps.sh (bench/files)"; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "files_bench: $mib MiB in $chunk MiB PATCHes, $(date -u +%FT%TZ), load $(load)"

files_stack_up SB_FILES_MAX_SIZE=$((mib * 1048576)) || exit 1
cd "$root/bench/files" || exit 1

# 1. dd: the disk's rate for durable sequential writes, measured before and after the servers
# (this disk's rate swings by 2x from one minute to the next); their mean is the reference.
dd_once() {
	local t0
	t0=$(date +%s.%N)
	dd if=/dev/zero of="$SB_TEST_TMP/dd.bin" bs=8M count=$((mib / 8)) conv=fdatasync status=none || return 1
	echo "$mib / ($(date +%s.%N) - $t0)" | bc -l
	rm -f "$SB_TEST_TMP/dd.bin"
}
dd_before=$(dd_once) || exit 1

# 2. sb-files.
sb=$(SIZE_MIB=$mib CHUNK_MIB=$chunk ENDPOINT="$F/files/" TOKEN=$alice node upload.mjs) ||
	{ echo "FAIL: upload to sb-files"; exit 1; }
sb_rate=$(jq -r .mib_per_s <<<"$sb")
id=$(jq -r .url <<<"$sb" | sed 's|.*/||')
[ "$(stat -c %s "$store/up/$id" 2>/dev/null)" = $((mib * 1048576)) ] || { echo "FAIL: sb-files stored a wrong size"; exit 1; }
rss=$(awk '/VmHWM/ { print $2 }' "/proc/${SVC_PID[files]}/status")
rm -f "$store/up/$id"

# 3. @tus/server + @tus/file-store on the same disk: as shipped (no sync), then durable.
peer_rate() { # DURABLE: the peer's MiB/s
	local port peer out
	port=$(sb_free_port)
	mkdir -p "$SB_TEST_TMP/tusd"
	DURABLE=$1 PORT=$port DIR=$SB_TEST_TMP/tusd node tus_peer.mjs >>"$SB_TEST_TMP/tus_peer.log" 2>&1 &
	peer=$!
	sb_wait_port 127.0.0.1 "$port" 10 || { echo "FAIL: @tus/server did not start" >&2; kill $peer; return 1; }
	out=$(SIZE_MIB=$mib CHUNK_MIB=$chunk ENDPOINT="http://127.0.0.1:$port/files" node upload.mjs) ||
		{ echo "FAIL: upload to @tus/server (DURABLE=$1)" >&2; kill $peer; return 1; }
	kill $peer
	wait $peer 2>/dev/null
	rm -rf "$SB_TEST_TMP/tusd"
	jq -r .mib_per_s <<<"$out"
}
tp_rate=$(peer_rate 0) || exit 1
tpd_rate=$(peer_rate 1) || exit 1

# 4. The client's ceiling.
port=$(sb_free_port)
PORT=$port node tus_null.mjs >"$SB_TEST_TMP/tus_null.log" 2>&1 &
null=$!
sb_wait_port 127.0.0.1 "$port" 10 || { echo "FAIL: the null tus server did not start"; kill $null; exit 1; }
nl=$(SIZE_MIB=$mib CHUNK_MIB=$chunk ENDPOINT="http://127.0.0.1:$port/files" node upload.mjs) ||
	{ echo "FAIL: upload to the null tus server"; kill $null; exit 1; }
kill $null
wait $null 2>/dev/null
null_rate=$(jq -r .mib_per_s <<<"$nl")
dd_after=$(dd_once) || exit 1
dd_rate=$(echo "($dd_before + $dd_after) / 2" | bc -l)
vs_dd=$(echo "$sb_rate / $dd_rate" | bc -l)
vs_tp=$(echo "$sb_rate / $tp_rate" | bc -l)
vs_tpd=$(echo "$sb_rate / $tpd_rate" | bc -l)
printf 'dd conv=fdatasync:           %8.1f MiB/s  (mean of %.1f before and %.1f after)\n' \
	"$dd_rate" "$dd_before" "$dd_after"
printf 'sb-files (durable per PATCH): %7.1f MiB/s  (%.2f x dd, %.2f x durable @tus/server, %.2f x as shipped); peak RSS %d MiB\n' \
	"$sb_rate" "$vs_dd" "$vs_tpd" "$vs_tp" $((rss / 1024))
printf '@tus/server + file-store:    %8.1f MiB/s  (as shipped: no sync)\n' "$tp_rate"
printf '@tus/server, durable:        %8.1f MiB/s  (each PATCH fdatasync'"'"'ed before its answer, as sb-files)\n' "$tpd_rate"
printf 'client ceiling (null server): %7.1f MiB/s  (tus-js-client; the server reads and discards)\n' "$null_rate"
echo "load after: $(load)"
ok=0
if (($(echo "$vs_dd >= 0.9" | bc -l))); then echo "target >= 0.9 x dd: met"; else echo "target >= 0.9 x dd: NOT MET"; ok=1; fi
if (($(echo "$vs_tpd >= 2" | bc -l))); then
	echo "target >= 2 x @tus/server (equal durability): met"
else
	echo "target >= 2 x @tus/server (equal durability): NOT MET"
	ok=1
	(($(echo "2 * $tpd_rate > $null_rate" | bc -l))) &&
		printf '  (out of reach with this client: 2 x durable @tus/server is %.1f MiB/s, above the %.1f MiB/s the client sends to a server that does nothing)\n' \
			"$(echo "2 * $tpd_rate" | bc -l)" "$null_rate"
fi
exit $ok
