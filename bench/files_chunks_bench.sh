#!/usr/bin/env bash
# files_chunks_bench.sh BUILD_DIR: the seed's load on the chunk API: 20 concurrent uploads
# (SB_BENCH_CHUNKS_UPLOADS) of 200 MiB (SB_BENCH_CHUNKS_MIB) in 10 MiB chunks, each upload's
# chunks sent one after another with curl and Content-SHA256, against sb-files (4 workers,
# filesystem storage, every chunk synced before its answer). Then every upload is completed and
# merged (sb-outbox relays the merge requests, sb-files' worker merges), and each merged file's
# SHA-256 is checked against the original's. Target (issue 11): p99 per chunk < 5 s. Reported:
# p50/p99/max per chunk, sb-files' peak RSS (VmHWM), the time to merge everything, and in the
# same run, as the disk's floor, the time of one 10 MiB `dd … conv=fdatasync` (median of 5).
# Exit 1 when the target is missed or a file is wrong. Starts its own PostgreSQL, Redis and
# Kafka broker (tests/lib/with-stack.sh), auth, messages, gateway (tokens), outbox and files.
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
n=${SB_BENCH_CHUNKS_UPLOADS:-20}
mib=${SB_BENCH_CHUNKS_MIB:-200}
cmib=10
cs=$((cmib * 1048576))
nchunks=$(((mib + cmib - 1) / cmib))
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "files_chunks_bench: $n x $mib MiB in $cmib MiB chunks, $(date -u +%FT%TZ), load $(load)"

sb_svc_ports outbox
files_stack_up SB_FILES_MAX_CONCURRENT=$((n + 1)) SB_FILES_QUOTA_BYTES=$(((n + 1) * mib * 1048576)) || exit 1
sb_svc_start outbox SB_OUTBOX_TABLES=messages.outbox,files.outbox
sb_svc_wait_ready outbox || exit 1

# The file and its chunks (every upload sends the same bytes).
src=$SB_TEST_TMP/src.bin
head -c $((mib * 1048576)) /dev/urandom >"$src"
want=$(sha256sum "$src" | cut -d' ' -f1)
mkdir -p "$SB_TEST_TMP/c"
split -b $cs -d -a 3 --numeric-suffixes=1 "$src" "$SB_TEST_TMP/c/c"
declare -a csum
for i in $(seq 1 $nchunks); do csum[$i]=$(sha256sum "$(printf '%s/c/c%03d' "$SB_TEST_TMP" "$i")" | cut -d' ' -f1); done

# The disk's floor: one 10 MiB durable write.
floor=$(for _ in 1 2 3 4 5; do
	t0=$(date +%s.%N)
	dd if="$SB_TEST_TMP/c/c001" of="$SB_TEST_TMP/dd.bin" bs=1M conv=fdatasync status=none
	echo "$(date +%s.%N) - $t0" | bc -l
done | sort -n | sed -n 3p)
rm -f "$SB_TEST_TMP/dd.bin"

# n uploads at once; one line "seconds status" per chunk.
ids=()
for u in $(seq 1 "$n"); do
	id=$(curl -s -X POST -H "Authorization: Bearer $alice" -H 'Content-Type: application/json' \
		-d "{\"filename\":\"load$u.bin\",\"size\":$((mib * 1048576)),\"chunk_size\":$cs}" \
		"$F/v1/files/initiate" | jq -r .upload_id)
	[ -n "$id" ] && [ "$id" != null ] || { echo "FAIL: initiate $u"; exit 1; }
	ids+=("$id")
done
t0=$(date +%s.%N)
pids=()
for u in $(seq 0 $((n - 1))); do
	(
		for i in $(seq 1 $nchunks); do
			curl -s -o /dev/null -w '%{time_total} %{http_code}\n' -X PUT \
				-H "Authorization: Bearer $alice" -H "Content-SHA256: ${csum[$i]}" \
				--data-binary "@$(printf '%s/c/c%03d' "$SB_TEST_TMP" "$i")" \
				"$F/v1/files/${ids[$u]}/chunks/$i"
		done >"$SB_TEST_TMP/lat.$u"
	) &
	pids+=($!)
done
wait "${pids[@]}" # not the services, which are background jobs too
t_up=$(echo "$(date +%s.%N) - $t0" | bc -l)
rss_up=$(awk '/VmHWM/ { print $2 }' "/proc/${SVC_PID[files]}/status")
cat "$SB_TEST_TMP"/lat.* >"$SB_TEST_TMP/lat"
total=$(wc -l <"$SB_TEST_TMP/lat")
bad=$(awk '$2 != 201' "$SB_TEST_TMP/lat" | wc -l)
sort -n "$SB_TEST_TMP/lat" | cut -d' ' -f1 >"$SB_TEST_TMP/lat.sorted"
pct() { sed -n "$(( ($1 * total + 99) / 100 ))p" "$SB_TEST_TMP/lat.sorted"; }
p50=$(pct 50)
p99=$(pct 99)
max=$(tail -n1 "$SB_TEST_TMP/lat.sorted")

# Complete every upload; wait until all are merged; check each file's SHA-256.
t1=$(date +%s.%N)
for id in "${ids[@]}"; do
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $alice" "$F/v1/files/$id/complete")" = 202 ] ||
		{ echo "FAIL: complete $id"; exit 1; }
done
wrong=0
for id in "${ids[@]}"; do
	st=""
	for _ in $(seq 1 3000); do
		st=$(curl -s -H "Authorization: Bearer $alice" "$F/v1/files/$id/status")
		[ "$(jq -r .state <<<"$st")" = COMPLETED ] && break
		[ "$(jq -r .state <<<"$st")" = FAILED ] && break
		sleep 0.2
	done
	[ "$(jq -r .state <<<"$st")" = COMPLETED ] && [ "$(jq -r .sha256 <<<"$st")" = "$want" ] &&
		[ "$(stat -c %s "$store/up/$id")" = $((mib * 1048576)) ] || { echo "wrong: $id $st"; wrong=$((wrong + 1)); }
done
t_merge=$(echo "$(date +%s.%N) - $t1" | bc -l)
rss=$(awk '/VmHWM/ { print $2 }' "/proc/${SVC_PID[files]}/status")

printf 'dd 10 MiB conv=fdatasync (median of 5): %.3f s\n' "$floor"
printf 'chunks: %d (%d not 201) in %.1f s (%.1f MiB/s); per chunk p50 %.3f s, p99 %.3f s, max %.3f s\n' \
	"$total" "$bad" "$t_up" "$(echo "$total * $cmib / $t_up" | bc -l)" "$p50" "$p99" "$max"
printf 'merge of %d x %d MiB: %.1f s; files wrong: %d\n' "$n" "$mib" "$t_merge" "$wrong"
printf 'sb-files peak RSS: %d MiB after the uploads, %d MiB after the merges\n' $((rss_up / 1024)) $((rss / 1024))
echo "load after: $(load)"
ok=0
[ "$bad" = 0 ] && [ "$total" = $((n * nchunks)) ] || { echo "FAIL: $bad chunks refused or missing"; ok=1; }
[ "$wrong" = 0 ] || { echo "FAIL: $wrong merged files wrong"; ok=1; }
if (($(echo "$p99 < 5" | bc -l))); then echo "target p99 per chunk < 5 s: met"; else echo "target p99 per chunk < 5 s: NOT MET"; ok=1; fi
exit $ok
