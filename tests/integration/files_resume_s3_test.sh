#!/usr/bin/env bash
# tus-js-client against sb-files on the S3 backend (tests/files/resume.mjs): 48 MiB in 8 MiB
# chunks, aborted at about half in the middle of a PATCH, resumed by a new client from the
# server's offset; the file read back has the original's SHA-256, and in S3 the completed
# upload is one object (its 8 MiB segments composed server-side).
# stack: pg,redis,kafka
# labels: files,e2e,s3
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"
. "$root/tests/lib/s3.sh"

sb_s3_start || exit 1
files_stack_up || exit 1
cd "$root/tests/files" || exit 1
out=$SB_TEST_TMP/resume.out
SB_FILES_URL=$F SB_TOKEN=$alice SB_SIZE_MIB=48 SB_CHUNK_MIB=8 timeout 150 node resume.mjs | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || { echo "FAIL: resume.mjs exited $rc"; exit 1; }
id=$(sed -n 's|.*, upload .*/files/\([0-9a-f-]*\)$|\1|p' "$out" | head -n1)
[ ${#id} = 36 ] || { echo "FAIL: no upload id in the client's output"; exit 1; }
keys=$(sb_s3_keys "up/$id/")
want=$(printf 'up/%s/%020d' "$id" 0)
[ "$keys" = "$want" ] || { echo "FAIL: the completed upload is not one object in S3: $keys"; exit 1; }
size=$(sb_s3_curl -I "$SB_TEST_S3_ENDPOINT/$SB_TEST_S3_BUCKET/$want" | tr -d '\r' |
	awk 'tolower($1) == "content-length:" { print $2 }')
[ "$size" = $((48 << 20)) ] || { echo "FAIL: the S3 object holds $size bytes"; exit 1; }
echo "ok: one object of $size bytes in S3"
echo "PASS"
