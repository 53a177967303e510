#!/usr/bin/env bash
# tus 1.0 against the real sb-files (PostgreSQL, filesystem storage), with curl: every status
# the protocol asks for (412 + Tus-Version, 413, 415, 409, 460, 404, 410, 405), creation,
# creation-with-upload, creation-defer-length, termination, checksum (sha1, sha256, md5),
# expiration (Upload-Expires, 410 after it), X-HTTP-Method-Override, Cache-Control on HEAD,
# CORS, ownership (another user gets 404), the download (ETag, Range, Content-Disposition),
# limits (content types 415, quota 413, uploads in progress 429), and kill -9 of sb-files
# between PATCHes and in the middle of one: every acknowledged byte is kept, nothing else is
# counted, and the uploads resume.
# stack: pg,redis,kafka
# labels: files,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"
# SB_TEST_FILES_STORE=s3 (files_tus_s3_test.sh): the same flow against the S3 backend (over
# https when SB_TEST_S3_TLS is set).
if [ "${SB_TEST_FILES_STORE:-fs}" = s3 ]; then
	. "$root/tests/lib/s3.sh"
	sb_s3_start ${SB_TEST_S3_TLS:+tls} || exit 1
fi
# stored ID: the upload's bytes are in storage (a file, or S3 segment objects "up/ID/...").
stored() {
	if [ "${SB_FILES_STORE:-fs}" = s3 ]; then [ -n "$(sb_s3_keys "up/$1/")" ]; else [ -f "$store/up/$1" ]; fi
}

files_stack_up SB_FILES_MAX_SIZE=1048576 SB_FILES_MAX_REQUEST_BYTES=524288 \
	SB_FILES_MAX_CONCURRENT=2 SB_FILES_QUOTA_BYTES=1572864 || exit 1
alice_ro=$(files_token alice files:read)

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# req ARGS...: curl that prints the head (CRLF stripped) to $H and the body to $B, and the
# status on stdout.
T=(-H "Tus-Resumable: 1.0.0")
A=(-H "Authorization: Bearer $alice")
OCT=(-H "Content-Type: application/offset+octet-stream")
b64() { printf '%s' "$1" | base64 -w0; }

# OPTIONS: capabilities, without a token.
expect 204 "OPTIONS /files/" -- -X OPTIONS "$F/files/"
[ "$(hdr Tus-Version)" = 1.0.0 ] || fail "Tus-Version: $(hdr Tus-Version)"
[ "$(hdr Tus-Max-Size)" = 1048576 ] || fail "Tus-Max-Size: $(hdr Tus-Max-Size)"
for e in creation creation-with-upload creation-defer-length termination checksum expiration; do
	hdr Tus-Extension | tr ',' '\n' | grep -qx "$e" || fail "Tus-Extension lacks $e"
done
[ "$(hdr Tus-Checksum-Algorithm)" = "sha1,sha256,md5" ] || fail "Tus-Checksum-Algorithm: $(hdr Tus-Checksum-Algorithm)"
# CORS preflight from an allowed origin, and from another one.
expect 204 "CORS preflight" -- -X OPTIONS -H "Origin: http://127.0.0.1:8000" \
	-H "Access-Control-Request-Method: PATCH" "$F/files/"
[ "$(hdr Access-Control-Allow-Origin)" = "http://127.0.0.1:8000" ] || fail "ACAO missing"
hdr Access-Control-Allow-Headers | grep -q Upload-Offset || fail "Allow-Headers lacks Upload-Offset"
hdr Access-Control-Expose-Headers | grep -q Location || fail "Expose-Headers lacks Location"
expect 204 "preflight from a foreign origin" -- -X OPTIONS -H "Origin: http://evil.example" \
	-H "Access-Control-Request-Method: PATCH" "$F/files/"
[ -z "$(hdr Access-Control-Allow-Origin)" ] || fail "foreign origin was allowed"

# Creation errors.
expect 412 "POST without Tus-Resumable" -- -X POST "${A[@]}" -H "Upload-Length: 5" "$F/files/"
[ "$(hdr Tus-Version)" = 1.0.0 ] || fail "412 without Tus-Version"
problem_ok 412
expect 412 "POST with Tus-Resumable 0.2.2" -- -X POST "${A[@]}" -H "Tus-Resumable: 0.2.2" -H "Upload-Length: 5" "$F/files/"
expect 401 "POST without a token" -- -X POST "${T[@]}" -H "Upload-Length: 5" "$F/files/"
problem_ok 401
expect 401 "POST with a forged token" -- -X POST "${T[@]}" -H "Authorization: Bearer x.y.z" -H "Upload-Length: 5" "$F/files/"
if [ -n "$alice_ro" ] && [ "$alice_ro" != null ]; then
	expect 403 "POST with a files:read token" -- -X POST "${T[@]}" -H "Authorization: Bearer $alice_ro" -H "Upload-Length: 5" "$F/files/"
else
	fail "no files:read-only token (scope narrowing refused)"
fi
expect 413 "POST above Tus-Max-Size" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 1048577" "$F/files/"
problem_ok 413
expect 400 "POST without a length" -- -X POST "${T[@]}" "${A[@]}" "$F/files/"
expect 400 "POST with both lengths" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 5" -H "Upload-Defer-Length: 1" "$F/files/"
expect 400 "POST with a negative length" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: -5" "$F/files/"
expect 400 "POST with bad metadata" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 5" -H "Upload-Metadata: filename !!!" "$F/files/"
expect 405 "PUT /files/" -- -X PUT "${T[@]}" "${A[@]}" "$F/files/"
hdr Allow | grep -q POST || fail "405 without Allow"

# Create with metadata; a path-traversing, control-character name is sanitized.
meta="filename $(b64 $'../../etc/pa\x01ss wd.txt'),filetype $(b64 text/plain)"
expect 201 "POST create" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 11" -H "Upload-Metadata: $meta" "$F/files/"
loc=$(hdr Location)
id=${loc##*/}
[[ $loc == /files/* ]] && [ ${#id} = 36 ] || fail "Location: $loc"
[ -n "$(hdr Upload-Expires)" ] || fail "201 without Upload-Expires"
[ "$(hdr Tus-Resumable)" = 1.0.0 ] || fail "201 without Tus-Resumable"
U=$F/files/$id

expect 415 "PATCH without octet-stream" -- -X PATCH "${T[@]}" "${A[@]}" -H "Content-Type: text/plain" -H "Upload-Offset: 0" --data-binary hello "$U"
problem_ok 415
expect 409 "PATCH at a wrong offset" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 3" --data-binary hello "$U"
problem_ok 409
expect 400 "PATCH without Upload-Offset" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" --data-binary hello "$U"
sha1_of() { printf '%s' "$1" | openssl dgst -sha1 -binary | base64 -w0; }
expect 460 "PATCH with a wrong sha1" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	-H "Upload-Checksum: sha1 $(sha1_of HELLO)" --data-binary hello "$U"
problem_ok 460
expect 400 "PATCH with an unsupported algorithm" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	-H "Upload-Checksum: crc32 AAAAAA==" --data-binary hello "$U"
expect 200 "HEAD after refused PATCHes" -- -I "${T[@]}" "${A[@]}" "$U"
[ "$(hdr Upload-Offset)" = 0 ] || fail "offset moved after refused PATCHes: $(hdr Upload-Offset)"
[ "$(hdr Cache-Control)" = no-store ] || fail "HEAD without Cache-Control: no-store"
[ "$(hdr Upload-Length)" = 11 ] || fail "HEAD Upload-Length: $(hdr Upload-Length)"
[ "$(hdr Upload-Metadata)" = "$meta" ] || fail "HEAD Upload-Metadata: $(hdr Upload-Metadata)"
[ -n "$(hdr Upload-Expires)" ] || fail "HEAD without Upload-Expires"

expect 204 "PATCH with the right sha1" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	-H "Upload-Checksum: sha1 $(sha1_of hello)" --data-binary hello "$U"
[ "$(hdr Upload-Offset)" = 5 ] || fail "Upload-Offset after PATCH: $(hdr Upload-Offset)"
[ -n "$(hdr Upload-Expires)" ] || fail "PATCH without Upload-Expires"
expect 404 "bob's HEAD of alice's upload" -- -I "${T[@]}" -H "Authorization: Bearer $bob" "$U"
expect 404 "bob's PATCH of alice's upload" -- -X PATCH "${T[@]}" -H "Authorization: Bearer $bob" "${OCT[@]}" -H "Upload-Offset: 5" --data-binary xx "$U"
expect 413 "PATCH past Upload-Length" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 5" --data-binary " world!!!" "$U"
expect 460 "PATCH with a wrong sha256" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 5" \
	-H "Upload-Checksum: sha256 $(printf x | openssl dgst -sha256 -binary | base64 -w0)" --data-binary " wo" "$U"
expect 204 "PATCH with the right sha256" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 5" \
	-H "Upload-Checksum: sha256 $(printf ' wo' | openssl dgst -sha256 -binary | base64 -w0)" --data-binary " wo" "$U"
# X-HTTP-Method-Override: a POST that is a PATCH, with md5.
expect 204 "POST overridden to PATCH, md5" -- -X POST -H "X-HTTP-Method-Override: PATCH" "${T[@]}" "${A[@]}" "${OCT[@]}" \
	-H "Upload-Offset: 8" -H "Upload-Checksum: md5 $(printf rld | openssl dgst -md5 -binary | base64 -w0)" --data-binary rld "$U"
[ "$(hdr Upload-Offset)" = 11 ] || fail "offset after the last PATCH: $(hdr Upload-Offset)"
expect 409 "PATCH after completion" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 11" --data-binary x "$U"

# Download: whole, ranges, ETag, sanitized name; bob cannot.
D=$F/v1/files/$id/content
expect 200 "download" -- "${A[@]}" "$D"
[ "$(cat "$B")" = "hello world" ] || fail "downloaded: $(cat "$B")"
etag=$(hdr ETag)
[ -n "$etag" ] || fail "no ETag"
disp=$(hdr Content-Disposition)
case $disp in *'filename="pa_ss wd.txt"'*) ;; *) fail "Content-Disposition: $disp" ;; esac
[ "$(hdr Content-Type)" = text/plain ] || fail "Content-Type: $(hdr Content-Type)"
expect 206 "Range bytes=6-" -- "${A[@]}" -H "Range: bytes=6-" "$D"
[ "$(cat "$B")" = world ] || fail "range body: $(cat "$B")"
[ "$(hdr Content-Range)" = "bytes 6-10/11" ] || fail "Content-Range: $(hdr Content-Range)"
expect 206 "Range bytes=-3" -- "${A[@]}" -H "Range: bytes=-3" "$D"
[ "$(cat "$B")" = rld ] || fail "suffix range body: $(cat "$B")"
expect 416 "Range past the end" -- "${A[@]}" -H "Range: bytes=11-" "$D"
expect 304 "If-None-Match" -- "${A[@]}" -H "If-None-Match: $etag" "$D"
expect 404 "bob downloads alice's file" -- -H "Authorization: Bearer $bob" "$D"
expect 401 "download without a token" -- "$D"

# creation-with-upload, and creation-defer-length.
expect 201 "POST with a body" -- -X POST "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Length: 6" --data-binary abc "$F/files/"
[ "$(hdr Upload-Offset)" = 3 ] || fail "creation-with-upload offset: $(hdr Upload-Offset)"
expect 204 "PATCH the rest of it" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 3" --data-binary def "$F$(hdr Location)"
expect 415 "POST with a text body" -- -X POST "${T[@]}" "${A[@]}" -H "Content-Type: text/plain" -H "Upload-Length: 6" --data-binary abc "$F/files/"
expect 201 "POST deferring the length" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Defer-Length: 1" "$F/files/"
U2=$F/files/$(basename "$(hdr Location)")
expect 200 "HEAD of a deferred upload" -- -I "${T[@]}" "${A[@]}" "$U2"
[ "$(hdr Upload-Defer-Length)" = 1 ] || fail "Upload-Defer-Length on HEAD: $(hdr Upload-Defer-Length)"
expect 204 "PATCH without the length yet" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" --data-binary 1234 "$U2"
expect 204 "PATCH declaring the length" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 4" -H "Upload-Length: 6" --data-binary 56 "$U2"
expect 200 "download of the deferred upload" -- "${A[@]}" "$F/v1/files/$(basename "$U2")/content"
[ "$(cat "$B")" = 123456 ] || fail "deferred upload content: $(cat "$B")"

# Termination.
expect 201 "POST to terminate" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 10" "$F/files/"
U3=$F/files/$(basename "$(hdr Location)")
expect 204 "PATCH before termination" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" --data-binary 12345 "$U3"
stored "$(basename "$U3")" || fail "no stored bytes for the upload"
expect 204 "DELETE" -- -X DELETE "${T[@]}" "${A[@]}" "$U3"
! stored "$(basename "$U3")" || fail "terminated upload's bytes still stored"
expect 410 "HEAD after DELETE" -- -I "${T[@]}" "${A[@]}" "$U3"
expect 410 "PATCH after DELETE" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 5" --data-binary 6 "$U3"
expect 404 "HEAD of an unknown upload" -- -I "${T[@]}" "${A[@]}" "$F/files/$(cat /proc/sys/kernel/random/uuid)"
expect 404 "HEAD of a malformed id" -- -I "${T[@]}" "${A[@]}" "$F/files/../../etc/passwd"

# Limits: a content type off the allow-list; bob's quota (1.5 MiB) and uploads in progress (2).
expect 415 "POST of an executable" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 5" \
	-H "Upload-Metadata: filetype $(b64 application/x-msdownload)" "$F/files/"
problem_ok 415
# A deferred length counts against the quota once declared.
expect 201 "alice: a deferred upload" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Defer-Length: 1" "$F/files/"
U7=$F$(hdr Location)
expect 413 "declaring a length past the quota" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	-H "Upload-Length: 1572864" --data-binary ab "$U7"
expect 200 "HEAD after the refused declaration" -- -I "${T[@]}" "${A[@]}" "$U7"
[ "$(hdr Upload-Offset)" = 0 ] && [ "$(hdr Upload-Defer-Length)" = 1 ] || fail "the refused declaration changed the upload"
expect 204 "declaring a length within the quota" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
	-H "Upload-Length: 4" --data-binary abcd "$U7"
BOB=(-H "Authorization: Bearer $bob")
expect 201 "bob: 1 MiB" -- -X POST "${T[@]}" "${BOB[@]}" -H "Upload-Length: 1048576" "$F/files/"
B1=$F/files/$(basename "$(hdr Location)")
expect 413 "bob: another 1 MiB, past the quota" -- -X POST "${T[@]}" "${BOB[@]}" -H "Upload-Length: 1048576" "$F/files/"
problem_ok 413
expect 204 "bob terminates the first" -- -X DELETE "${T[@]}" "${BOB[@]}" "$B1"
expect 201 "bob: 1 MiB again" -- -X POST "${T[@]}" "${BOB[@]}" -H "Upload-Length: 1048576" "$F/files/"
expect 201 "bob: a second upload in progress" -- -X POST "${T[@]}" "${BOB[@]}" -H "Upload-Length: 10" "$F/files/"
expect 429 "bob: a third upload in progress" -- -X POST "${T[@]}" "${BOB[@]}" -H "Upload-Length: 10" "$F/files/"
[ -n "$(hdr Retry-After)" ] || fail "429 without Retry-After"
problem_ok 429

# Metrics: answers by method and status, bytes stored, uploads by event.
m=$(curl -s "http://127.0.0.1:${SVC_OPS[files]}/metrics")
grep -Eq '^files_requests_total\{method="PATCH",status="460"\} [2-9]' <<<"$m" || fail "no PATCH 460 counted: $(grep files_requests_total <<<"$m" | head -3)"
grep -Eq '^files_requests_total\{method="POST",status="429"\} 1' <<<"$m" || fail "no POST 429 counted"
bytes=$(awk '/^files_bytes_stored_total / { print int($2) }' <<<"$m")
[ "${bytes:-0}" -ge 26 ] || fail "files_bytes_stored_total: ${bytes:-none}"
grep -Eq '^files_uploads_total\{event="terminated"\} 2' <<<"$m" || fail "terminated uploads not counted: $(grep files_uploads_total <<<"$m")"

# Restart: the acknowledged bytes of an unfinished upload are still there, and it resumes; a
# short expiry then makes a new upload 410 once it passed.
expect 201 "POST before restart" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 8" "$F/files/"
U4=$F/files/$(basename "$(hdr Location)")
expect 204 "PATCH before restart" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" --data-binary abcd "$U4"
# ... and one killed in the middle of a PATCH: 100,000 bytes acknowledged, then a slow PATCH
# of 300,000 more is on the wire when sb-files dies.
head -c 400000 /dev/urandom >"$SB_TEST_TMP/mid.bin"
expect 201 "POST before a kill mid-PATCH" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 400000" "$F/files/"
U6=$F/files/$(basename "$(hdr Location)")
head -c 100000 "$SB_TEST_TMP/mid.bin" >"$SB_TEST_TMP/mid.1"
tail -c 300000 "$SB_TEST_TMP/mid.bin" >"$SB_TEST_TMP/mid.2"
expect 204 "PATCH the first 100,000 bytes" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" --data-binary @"$SB_TEST_TMP/mid.1" "$U6"
curl -s -o /dev/null --limit-rate 100k -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 100000" \
	--data-binary @"$SB_TEST_TMP/mid.2" "$U6" &
slow=$!
sleep 1
kill -9 "${SVC_PID[files]}"
wait "${SVC_PID[files]}" 2>/dev/null
wait "$slow" 2>/dev/null
sb_svc_start files SB_FILES_DIR="$store" SB_FILES_EXPIRE_S=1
sb_svc_wait_ready files || exit 1
# /ready is on the ops port; the first request after a restart has been seen refused on the
# edge port once in a few runs (cause not found): wait for the edge to accept too.
sb_wait_port 127.0.0.1 "${SVC_HTTP[files]}" 10 || { fail "the edge does not listen after the restart"; ss -ltn | grep -c . ; }
expect 200 "HEAD after kill -9" -- -I "${T[@]}" "${A[@]}" "$U4"
[ "$(hdr Upload-Offset)" = 4 ] || fail "offset after restart: $(hdr Upload-Offset)"
expect 204 "PATCH after restart" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 4" --data-binary efgh "$U4"
expect 200 "download after restart" -- "${A[@]}" "$F/v1/files/$(basename "$U4")/content"
[ "$(cat "$B")" = abcdefgh ] || fail "content after restart: $(cat "$B")"
expect 200 "HEAD of the upload killed mid-PATCH" -- -I "${T[@]}" "${A[@]}" "$U6"
[ "$(hdr Upload-Offset)" = 100000 ] || fail "offset after a kill mid-PATCH: $(hdr Upload-Offset)"
expect 204 "resume after the kill mid-PATCH" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 100000" --data-binary @"$SB_TEST_TMP/mid.2" "$U6"
expect 200 "download of the upload killed mid-PATCH" -- "${A[@]}" "$F/v1/files/$(basename "$U6")/content"
cmp -s "$B" "$SB_TEST_TMP/mid.bin" || fail "the upload killed mid-PATCH differs from the original after resuming"
expect 201 "POST with a 1 s expiry" -- -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 8" "$F/files/"
U5=$F/files/$(basename "$(hdr Location)")
sleep 2.2
expect 410 "HEAD after expiry" -- -I "${T[@]}" "${A[@]}" "$U5"
expect 410 "PATCH after expiry" -- -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" --data-binary 1 "$U5"

[ "$fails" = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "PASS"
