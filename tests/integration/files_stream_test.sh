#!/usr/bin/env bash
# Bodies streamed to storage as they arrive (sb_http stream_body, services/files/body.c), against
# the real sb-files on the filesystem store, with curl: a 24 MiB PATCH is stored without sb-files'
# peak RSS growing by the body's size; a wrong Upload-Offset is 409 before any byte (no
# 100 Continue); a client that leaves mid-PATCH without Upload-Checksum keeps a prefix of its
# bytes (the offset moves to it, the upload resumes to the original), with one keeps nothing
# (460's rule); a chunk whose client leaves, or whose Content-SHA256 is wrong, is not stored (no
# row, no part file) and is accepted whole afterwards.
# stack: pg,redis,kafka
# labels: files,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"

files_stack_up SB_FILES_MAX_SIZE=67108864 SB_FILES_MAX_REQUEST_BYTES=33554432 \
	SB_FILES_CHUNK_MIN=65536 || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
T=(-H "Tus-Resumable: 1.0.0")
A=(-H "Authorization: Bearer $alice")
OCT=(-H "Content-Type: application/offset+octet-stream")
# curl asks for 100 Continue before a body above 1 MiB, which req would take for the answer;
# sb-files sends it (when it reads), as checked in 2.
NE=(-H "Expect:")
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/${SVC_PID[files]}/status"; } # KiB
create() { # create LENGTH: a tus upload; sets U
	expect 201 "POST Upload-Length: $1" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: $1" "$F/files/"
	U=$F/files/$(basename "$(hdr Location)")
}
offset_of() { req -I "${T[@]}" "${A[@]}" "$1" >/dev/null && hdr Upload-Offset; }

# 1. A 24 MiB PATCH: stored whole and durable, sb-files' peak RSS grows by much less than the
# body (before streaming it held the body whole: the growth was at least 24 MiB).
big=$SB_TEST_TMP/big.bin
head -c $((24 << 20)) /dev/urandom >"$big"
create $((24 << 20))
before=$(hwm)
expect 204 "PATCH of 24 MiB" -- "${NE[@]}" -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	-H "Upload-Checksum: sha256 $(openssl dgst -sha256 -binary "$big" | base64 -w0)" \
	--data-binary @"$big" "$U"
after=$(hwm)
echo "sb-files VmHWM: $before KiB before, $after KiB after a 24 MiB PATCH"
[ $((after - before)) -lt $((8 << 10)) ] || fail "peak RSS grew by $((after - before)) KiB for a 24 MiB body"
expect 200 "download of the 24 MiB upload" -- "${A[@]}" "$F/v1/files/$(basename "$U")/content"
cmp -s "$B" "$big" || fail "the 24 MiB upload differs from the original"

# 2. A wrong Upload-Offset is refused before the body: no 100 Continue, 409, offset unchanged.
create 4194304
U2=$U
head -c 4194304 /dev/urandom >"$SB_TEST_TMP/four.bin"
expect 409 "PATCH at a wrong offset with Expect: 100-continue" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" \
	-H "Upload-Offset: 7" -H "Expect: 100-continue" --data-binary @"$SB_TEST_TMP/four.bin" "$U2"
problem_ok 409
grep -q "^HTTP/1.1 100" "$H" && fail "100 Continue was sent before a refused PATCH"
[ "$(hdr Upload-Offset)" = 0 ] || fail "409's Upload-Offset: $(hdr Upload-Offset)"

# 3. A client that leaves mid-PATCH without Upload-Checksum: what arrived is kept (a prefix of
# the data, durable), the offset moves to it, and the upload resumes from there to the original.
curl -s -o /dev/null --limit-rate 512k -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	--data-binary @"$SB_TEST_TMP/four.bin" "$U2" &
slow=$!
sleep 2
kill "$slow"
wait "$slow" 2>/dev/null
off=0
for _ in $(seq 50); do
	off=$(offset_of "$U2")
	[ "${off:-0}" -gt 0 ] && break
	sleep 0.1
done
echo "offset after a client left mid-PATCH: $off of 4194304"
[ "${off:-0}" -gt 0 ] && [ "$off" -lt 4194304 ] || fail "offset after leaving mid-PATCH: $off"
tail -c +$((off + 1)) "$SB_TEST_TMP/four.bin" >"$SB_TEST_TMP/rest.bin"
expect 204 "resume from the kept offset" -- "${NE[@]}" -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: $off" \
	--data-binary @"$SB_TEST_TMP/rest.bin" "$U2"
expect 200 "download after leaving mid-PATCH and resuming" -- "${A[@]}" "$F/v1/files/$(basename "$U2")/content"
cmp -s "$B" "$SB_TEST_TMP/four.bin" || fail "the upload resumed after leaving mid-PATCH differs from the original"

# 4. The same with Upload-Checksum: a part cannot be verified, so nothing is kept.
create 4194304
U3=$U
curl -s -o /dev/null --limit-rate 512k -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	-H "Upload-Checksum: sha1 $(openssl dgst -sha1 -binary "$SB_TEST_TMP/four.bin" | base64 -w0)" \
	--data-binary @"$SB_TEST_TMP/four.bin" "$U3" &
slow=$!
sleep 2
kill "$slow"
wait "$slow" 2>/dev/null
sleep 1
[ "$(offset_of "$U3")" = 0 ] || fail "offset after leaving a checksummed PATCH: $(hdr Upload-Offset)"
# A wrong checksum on a streamed body: 460, offset unchanged, then the right one completes.
expect 460 "PATCH of 4 MiB with a wrong sha1" -- "${NE[@]}" -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	-H "Upload-Checksum: sha1 $(printf x | openssl dgst -sha1 -binary | base64 -w0)" \
	--data-binary @"$SB_TEST_TMP/four.bin" "$U3"
problem_ok 460
[ "$(offset_of "$U3")" = 0 ] || fail "offset after 460: $(hdr Upload-Offset)"
expect 204 "PATCH of 4 MiB with its sha1" -- "${NE[@]}" -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	-H "Upload-Checksum: sha1 $(openssl dgst -sha1 -binary "$SB_TEST_TMP/four.bin" | base64 -w0)" \
	--data-binary @"$SB_TEST_TMP/four.bin" "$U3"
expect 200 "download of the checksummed upload" -- "${A[@]}" "$F/v1/files/$(basename "$U3")/content"
cmp -s "$B" "$SB_TEST_TMP/four.bin" || fail "the checksummed upload differs from the original"

# 5. Chunks: a client that leaves mid-chunk, and a wrong Content-SHA256, store nothing.
expect 201 "initiate 2 chunks of 2 MiB" -- -X POST "${A[@]}" -H 'Content-Type: application/json' \
	-d '{"filename":"s.bin","size":4194304,"chunk_size":2097152}' "$F/v1/files/initiate"
id=$(jq -r .upload_id "$B")
head -c 2097152 "$SB_TEST_TMP/four.bin" >"$SB_TEST_TMP/c1"
tail -c 2097152 "$SB_TEST_TMP/four.bin" >"$SB_TEST_TMP/c2"
curl -s -o /dev/null --limit-rate 512k -X PUT "${A[@]}" --data-binary @"$SB_TEST_TMP/c1" "$F/v1/files/$id/chunks/1" &
slow=$!
sleep 1.5
kill "$slow"
wait "$slow" 2>/dev/null
sleep 1
expect 200 "status after a client left mid-chunk" -- "${A[@]}" "$F/v1/files/$id/status"
[ "$(jq -r .uploaded_chunks "$B")" = 0 ] || fail "a chunk whose client left was counted: $(cat "$B")"
[ ! -e "$store/parts/$id/1" ] || fail "a chunk whose client left left a part file"
expect 400 "chunk with a wrong Content-SHA256" -- "${NE[@]}" -X PUT "${A[@]}" -H "Content-SHA256: $(printf x | sha256sum | cut -d' ' -f1)" \
	--data-binary @"$SB_TEST_TMP/c2" "$F/v1/files/$id/chunks/2"
problem_ok 400
[ ! -e "$store/parts/$id/2" ] || fail "a chunk with a wrong Content-SHA256 left a part file"
expect 400 "chunk of the wrong size (before its body)" -- -X PUT "${A[@]}" --data-binary abc "$F/v1/files/$id/chunks/1"
for n in 1 2; do
	expect 201 "chunk $n" -- "${NE[@]}" -X PUT "${A[@]}" -H "Content-SHA256: $(sha256sum "$SB_TEST_TMP/c$n" | cut -d' ' -f1)" \
		--data-binary @"$SB_TEST_TMP/c$n" "$F/v1/files/$id/chunks/$n"
	cmp -s "$store/parts/$id/$n" "$SB_TEST_TMP/c$n" || fail "part $n differs from chunk $n"
done
expect 200 "the same chunk again (idempotent, streamed and only digested)" -- "${NE[@]}" -X PUT "${A[@]}" \
	--data-binary @"$SB_TEST_TMP/c1" "$F/v1/files/$id/chunks/1"
expect 409 "other bytes for a stored chunk" -- "${NE[@]}" -X PUT "${A[@]}" --data-binary @"$SB_TEST_TMP/c2" "$F/v1/files/$id/chunks/1"
problem_ok 409

[ "$fails" = 0 ] || { echo "files_stream_test: $fails failure(s)"; exit 1; }
echo "files_stream_test: ok"
