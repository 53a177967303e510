#!/usr/bin/env bash
# sb-files on the S3 backend, seen from the S3 side with an independent client (curl's own SigV4
# signer): the signature is really checked (sb-files with a wrong secret does not start, and
# says why), each acknowledged PATCH is one segment object "up/<id>/<offset, 20 digits>" of
# exactly its bytes, a stale segment left by a write that was never acknowledged (as a crash
# between the PUT and the commit leaves it) is overwritten by the resumed PATCH and, off the
# chain, removed when the upload completes; downloads and Ranges across segment boundaries
# equal the original; segments of 5 MiB and more are composed into one object on completion
# (multipart upload, UploadPartCopy); termination removes every segment.
# stack: pg,redis,kafka
# labels: files,e2e,s3,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"
. "$root/tests/lib/s3.sh"

sb_s3_start || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# A wrong secret: the server refuses the signature, sb-files refuses to start and logs why.
sb_svc_ports files
sb_svc_start files SB_FILES_S3_SECRET_KEY=not-the-secret
pid=${SVC_PID[files]}
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
	fail "sb-files runs with a wrong S3 secret"
	sb_svc_stop files
else
	wait "$pid"
	rc=$?
	[ "$rc" != 0 ] || fail "sb-files exited 0 with a wrong S3 secret"
	grep -q '"code":"SignatureDoesNotMatch"' "$SB_TEST_TMP/logs/files.log" ||
		fail "no SignatureDoesNotMatch in the log: $(tail -n 3 "$SB_TEST_TMP/logs/files.log")"
	echo "ok: a wrong secret is refused (exit $rc, SignatureDoesNotMatch)"
fi
unset "SVC_PID[files]"

files_stack_up || exit 1
T=(-H "Tus-Resumable: 1.0.0")
A=(-H "Authorization: Bearer $alice")
OCT=(-H "Content-Type: application/offset+octet-stream")
H=$SB_TEST_TMP/h.txt
status() { curl -sS -D "$H" -o "$SB_TEST_TMP/body" -w '%{http_code}' "$@"; }
hdr() { tr -d '\r' <"$H" | grep -i "^$1:" | head -n1 | cut -d' ' -f2-; }
bucket=$SB_TEST_S3_ENDPOINT/$SB_TEST_S3_BUCKET

# 300,000 bytes in three PATCHes of 100,000, 150,000 and 50,000.
orig=$SB_TEST_TMP/orig.bin
head -c 300000 /dev/urandom >"$orig"
piece() { tail -c +$(($1 + 1)) "$orig" | head -c "$2"; }
[ "$(status -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 300000" "$F/files/")" = 201 ] || fail "create"
id=$(basename "$(hdr Location)")
U=$F/files/$id
patch() { # patch OFFSET LEN: PATCH those bytes of the original; prints the status
	piece "$1" "$2" >"$SB_TEST_TMP/piece"
	status -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: $1" \
		--data-binary @"$SB_TEST_TMP/piece" "$U"
}
[ "$(patch 0 100000)" = 204 ] || fail "PATCH 1"
seg() { printf 'up/%s/%020d' "$id" "$1"; }
keys=$(sb_s3_keys "up/$id/")
[ "$keys" = "$(seg 0)" ] || fail "after one PATCH the segments are: $keys"
sb_s3_curl -o "$SB_TEST_TMP/s0" "$bucket/$(seg 0)"
cmp -s "$SB_TEST_TMP/s0" <(piece 0 100000) || fail "segment 0 is not the first PATCH's bytes"

# A stale segment at the committed offset, longer than what comes (a crashed PATCH's PUT),
# and one off the chain.
head -c 180000 /dev/zero | tr '\0' 'X' >"$SB_TEST_TMP/junk"
[ "$(sb_s3_put "$(seg 100000)" "$SB_TEST_TMP/junk")" = 200 ] || fail "PUT of a stale segment"
[ "$(sb_s3_put "$(seg 123)" "$SB_TEST_TMP/junk")" = 200 ] || fail "PUT of a segment off the chain"
[ "$(sb_s3_keys "up/$id/" | wc -l)" = 3 ] || fail "stale segments not in place: $(sb_s3_keys "up/$id/")"
[ "$(status -I "${T[@]}" "${A[@]}" "$U")" = 200 ] && [ "$(hdr Upload-Offset)" = 100000 ] ||
	fail "HEAD with stale segments: offset $(hdr Upload-Offset)"
[ "$(patch 100000 150000)" = 204 ] || fail "PATCH 2 over the stale segment"
[ "$(patch 250000 50000)" = 204 ] || fail "PATCH 3"
[ "$(hdr Upload-Offset)" = 300000 ] || fail "final offset $(hdr Upload-Offset)"
keys=$(sb_s3_keys "up/$id/")
want=$(printf '%s\n%s\n%s' "$(seg 0)" "$(seg 100000)" "$(seg 250000)")
[ "$keys" = "$want" ] || fail "segments after completion (the stale ones must be gone): $keys"
# The segments, concatenated by the independent client, are the original.
for o in 0 100000 250000; do sb_s3_curl "$bucket/$(seg $o)"; done >"$SB_TEST_TMP/cat"
cmp -s "$SB_TEST_TMP/cat" "$orig" || fail "segments concatenated differ from the original"
echo "ok: three PATCHes are three segments; stale ones overwritten or removed"

# Downloads: whole, and Ranges inside one segment and across two and three.
D=$F/v1/files/$id/content
[ "$(status "${A[@]}" "$D")" = 200 ] || fail "download"
cmp -s "$SB_TEST_TMP/body" "$orig" || fail "download differs from the original"
for r in 0-99 99990-100009 50000-260000 250000-299999 299999-299999; do
	a=${r%-*} b=${r#*-}
	[ "$(status "${A[@]}" -H "Range: bytes=$r" "$D")" = 206 ] || fail "Range $r status"
	cmp -s "$SB_TEST_TMP/body" <(piece "$a" $((b - a + 1))) || fail "Range $r differs"
done
echo "ok: download and Ranges across segments"

# Segments of 5 MiB and more are composed into one object when the upload completes: a
# multipart upload of server-side copies (UploadPartCopy) replaces the segment at 0.
big=$SB_TEST_TMP/big.bin
head -c $((13 << 20)) /dev/urandom >"$big"
[ "$(status -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: $((13 << 20))" "$F/files/")" = 201 ] || fail "create big"
idb=$(basename "$(hdr Location)")
for p in 0:6 6:6 12:1; do
	o=$((${p%:*} << 20)) l=$((${p#*:} << 20))
	tail -c +$((o + 1)) "$big" | head -c "$l" >"$SB_TEST_TMP/piece"
	[ "$(status -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: $o" \
		--data-binary @"$SB_TEST_TMP/piece" "$F/files/$idb")" = 204 ] || fail "PATCH big at $o"
done
keys=$(sb_s3_keys "up/$idb/")
[ "$keys" = "$(printf 'up/%s/%020d' "$idb" 0)" ] || fail "big upload not composed into one object: $keys"
sb_s3_curl "$bucket/$(printf 'up/%s/%020d' "$idb" 0)" -o "$SB_TEST_TMP/whole"
cmp -s "$SB_TEST_TMP/whole" "$big" || fail "the composed object differs from the original"
Db=$F/v1/files/$idb/content
[ "$(status "${A[@]}" "$Db")" = 200 ] && cmp -s "$SB_TEST_TMP/body" "$big" || fail "download of the composed file"
a=$(((6 << 20) - 5)) b=$(((12 << 20) + 5))
[ "$(status "${A[@]}" -H "Range: bytes=$a-$b" "$Db")" = 206 ] || fail "Range of the composed file"
cmp -s "$SB_TEST_TMP/body" <(tail -c +$((a + 1)) "$big" | head -c $((b - a + 1))) || fail "Range of the composed file differs"
echo "ok: 6+6+1 MiB composed into one object server-side"
# Above SB_FILES_S3_COMPOSE_MAX_BYTES the segments stay a chain (and read the same).
sb_svc_stop files
sb_svc_start files SB_FILES_DIR="$store" SB_FILES_S3_COMPOSE_MAX_BYTES=$((12 << 20))
sb_svc_wait_ready files || exit 1
sb_wait_port 127.0.0.1 "${SVC_HTTP[files]}" 10 || fail "the edge does not listen after the restart"
[ "$(status -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: $((13 << 20))" "$F/files/")" = 201 ] || fail "create big 2"
idc=$(basename "$(hdr Location)")
for p in 0:6 6:6 12:1; do
	o=$((${p%:*} << 20)) l=$((${p#*:} << 20))
	tail -c +$((o + 1)) "$big" | head -c "$l" >"$SB_TEST_TMP/piece"
	[ "$(status -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: $o" \
		--data-binary @"$SB_TEST_TMP/piece" "$F/files/$idc")" = 204 ] || fail "PATCH big 2 at $o"
done
[ "$(sb_s3_keys "up/$idc/" | wc -l)" = 3 ] || fail "composed above the limit: $(sb_s3_keys "up/$idc/")"
[ "$(status "${A[@]}" "$F/v1/files/$idc/content")" = 200 ] && cmp -s "$SB_TEST_TMP/body" "$big" ||
	fail "download of the uncomposed 13 MiB"
echo "ok: above SB_FILES_S3_COMPOSE_MAX_BYTES the three segments stay and read the same"

# Termination removes every segment.
[ "$(status -X POST "${T[@]}" "${A[@]}" -H "Upload-Length: 10" "$F/files/")" = 201 ] || fail "create 2"
id2=$(basename "$(hdr Location)")
[ "$(status -X PATCH "${T[@]}" "${A[@]}" "${OCT[@]}" -H "Upload-Offset: 0" --data-binary 12345 "$F/files/$id2")" = 204 ] ||
	fail "PATCH of the second upload"
[ -n "$(sb_s3_keys "up/$id2/")" ] || fail "no segment for the second upload"
[ "$(status -X DELETE "${T[@]}" "${A[@]}" "$F/files/$id2")" = 204 ] || fail "DELETE"
[ -z "$(sb_s3_keys "up/$id2/")" ] || fail "segments left after termination: $(sb_s3_keys "up/$id2/")"
[ -n "$(sb_s3_keys "up/$id/")" ] || fail "termination of one upload removed another's segments"
# The S3 requests are counted.
m=$(curl -s "http://127.0.0.1:${SVC_OPS[files]}/metrics")
grep -Eq '^files_s3_requests_total\{method="PUT",outcome="2xx"\} [1-9]' <<<"$m" ||
	fail "no successful PUT counted: $(grep '^files_s3_requests_total' <<<"$m" | head -5)"
grep -Eq '^files_s3_request_seconds_count\{method="GET"\} [1-9]' <<<"$m" ||
	fail "no GET timed: $(grep '^files_s3_request_seconds_count' <<<"$m" | head -5)"
# Nothing went to the filesystem backend's directory.
[ -z "$(find "$store" -type f 2>/dev/null)" ] || fail "files written under $store"
echo "ok: termination"

[ "$fails" = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "PASS"
