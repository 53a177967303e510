#!/usr/bin/env bash
# files_s3_bench.sh BUILD_DIR: 128 MiB (SB_BENCH_S3_MIB) through tus-js-client in 16 MiB
# PATCHes (SB_BENCH_S3_CHUNK_MIB) into sb-files on the S3 backend, and in the same run, into the
# same S3 server (moto's, tests/lib/s3.sh, checking SigV4), the same amount PUT directly by curl
# in objects of the chunk size, one after another (the peer: the S3 server's own rate for that
# work). sb-files also receives each PATCH over HTTP, hashes it for SigV4 and commits its offset
# in PostgreSQL. Measured twice: with composing off (SB_FILES_S3_COMPOSE_MAX_BYTES=0: the upload
# path alone) and on (the last PATCH also waits for the server-side compose into one object).
# Target (ours, docs/files.md): the upload path >= 0.5 x the direct PUT rate; the compose cost is
# reported (it is the S3 server's copying). Exit 1 when the target is missed. Starts its own
# PostgreSQL, Redis and Kafka broker (tests/lib/with-stack.sh), auth, messages, gateway (for
# tokens), files and moto.
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
. "$root/tests/lib/s3.sh"
mib=${SB_BENCH_S3_MIB:-128}
chunk=${SB_BENCH_S3_CHUNK_MIB:-16}
[ -d "$root/bench/files/node_modules/tus-js-client" ] || { echo "FAIL: run tools/install-deps.sh (bench/files)"; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "files_s3_bench: $mib MiB in $chunk MiB PATCHes, $(date -u +%FT%TZ), load $(load)"

sb_s3_start || exit 1
files_stack_up SB_FILES_MAX_SIZE=$((mib * 1048576)) SB_FILES_S3_COMPOSE_MAX_BYTES=0 || exit 1
bucket=$SB_TEST_S3_ENDPOINT/$SB_TEST_S3_BUCKET

# 1. The peer: the same bytes PUT straight into the S3 server, chunk by chunk (SigV4 by curl,
# each chunk's SHA-256 computed as sb-files computes it).
head -c $((chunk << 20)) /dev/urandom >"$SB_TEST_TMP/chunk.bin"
n=$((mib / chunk))
t0=$(date +%s.%N)
for i in $(seq 0 $((n - 1))); do
	[ "$(sb_s3_put "peer/$i" "$SB_TEST_TMP/chunk.bin")" = 200 ] || { echo "FAIL: direct PUT $i"; exit 1; }
done
peer_rate=$(echo "$mib / ($(date +%s.%N) - $t0)" | bc -l)
for i in $(seq 0 $((n - 1))); do sb_s3_curl -X DELETE -o /dev/null "$bucket/peer/$i"; done

# upload: one tus-js-client upload into sb-files; sets rate and id, checks the segment count.
upload() {
	local want=$1 out
	out=$(cd "$root/bench/files" && SIZE_MIB=$mib CHUNK_MIB=$chunk ENDPOINT="$F/files/" TOKEN=$alice node upload.mjs) ||
		{ echo "FAIL: upload to sb-files"; exit 1; }
	rate=$(jq -r .mib_per_s <<<"$out")
	id=$(jq -r .url <<<"$out" | sed 's|.*/||')
	local keys
	keys=$(sb_s3_keys "up/$id/" | wc -l)
	[ "$keys" = "$want" ] || { echo "FAIL: $keys objects in S3 for the upload, want $want"; exit 1; }
}

# 2. sb-files, composing off: the upload path.
upload "$n"
plain_rate=$rate
for k in $(sb_s3_keys "up/$id/"); do sb_s3_curl -X DELETE -o /dev/null "$bucket/$k"; done

# 3. sb-files, composing on: one object at the end.
sb_svc_stop files
sb_svc_start files SB_FILES_DIR="$store" SB_FILES_MAX_SIZE=$((mib * 1048576)) \
	SB_FILES_S3_COMPOSE_MAX_BYTES=$((mib * 1048576))
sb_svc_wait_ready files || exit 1
sb_wait_port 127.0.0.1 "${SVC_HTTP[files]}" 10 || exit 1
upload 1
compose_rate=$rate
size=$(sb_s3_curl -I "$bucket/$(printf 'up/%s/%020d' "$id" 0)" | tr -d '\r' |
	awk 'tolower($1) == "content-length:" { print $2 }')
[ "$size" = $((mib << 20)) ] || { echo "FAIL: the composed object holds $size bytes"; exit 1; }
rss=$(awk '/VmHWM/ { print $2 }' "/proc/${SVC_PID[files]}/status")

ratio=$(echo "$plain_rate / $peer_rate" | bc -l)
compose_s=$(echo "$mib / $compose_rate - $mib / $plain_rate" | bc -l)
printf 'direct PUT to S3 (curl, %d objects):    %7.1f MiB/s\n' "$n" "$peer_rate"
printf 'sb-files on S3, composing off:          %7.1f MiB/s  (%.2f x direct)\n' "$plain_rate" "$ratio"
printf 'sb-files on S3, composing on:           %7.1f MiB/s  (compose about %.1f s for %d MiB); peak RSS %d MiB\n' \
	"$compose_rate" "$compose_s" "$mib" $((rss / 1024))
echo "load after: $(load)"
if (($(echo "$ratio >= 0.5" | bc -l))); then echo "target >= 0.5 x direct PUT: met"; exit 0; fi
echo "target >= 0.5 x direct PUT: NOT MET"
exit 1
