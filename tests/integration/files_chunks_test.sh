#!/usr/bin/env bash
# stack: pg,redis,kafka
# labels: files,e2e,sanitize
# The chunk API against the real sb-files, sb-outbox (relaying files.outbox and
# messages.outbox), PostgreSQL, Kafka and filesystem storage, with curl and kcat: initiate 100
# chunks of 64 KiB (the last short), upload 50, status lists the other 50, complete names them
# (400), a wrong Content-SHA256 is 400 and stores nothing, a chunk of the wrong size is 400, a
# repeated chunk is idempotent (200) and other content for it 409, another user gets 404;
# kill -9 of sb-files in the middle of the upload, which resumes; complete (202, MERGING), the
# merge worker makes it COMPLETED, FileUploadCompleted is on sb.files.v1 with its CloudEvents
# headers and fields, and the download's SHA-256 is the original's. Then kill -9 in the middle
# of a merge (a part held back so that the merge is caught half-way, in its retry back-off):
# after the restart the merge finishes and the file is equal; and a corrupt part: the merge is
# retried, then the upload is FAILED, reported (metric, log), and no half-made file is left
# (the attempts counted on the row across a kill -9 and restart);
# and two merge workers that both receive every request: each upload is merged once. Also the
# CORS preflight of the chunk API's routes.
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"

CS=65536
files_env=(SB_FILES_CHUNK_MIN=$CS SB_FILES_MERGE_BACKOFF_MS=4000 SB_FILES_MERGE_ATTEMPTS=4)
sb_svc_ports outbox
files_stack_up "${files_env[@]}" || exit 1
sb_svc_start outbox SB_OUTBOX_TABLES=messages.outbox,files.outbox SB_OUTBOX_LEASE_INTERVAL_MS=200
sb_svc_wait_ready outbox || exit 1
store=$SB_TEST_TMP/files
kbrokers=$SB_TEST_KAFKA_BROKERS
ktopic=${SB_KAFKA_TOPIC_PREFIX:-}sb.files.v1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
A=(-H "Authorization: Bearer $alice")
J=(-H "Content-Type: application/json")
sha() { sha256sum "$1" | cut -d' ' -f1; }
status_of() { curl -s "${A[@]}" "$F/v1/files/$1/status"; }
put_chunk() { # put_chunk ID N FILE [extra curl args]: prints the status
	local id=$1 n=$2 f=$3
	shift 3
	curl -s -o /dev/null -w '%{http_code}' -X PUT "${A[@]}" --data-binary "@$f" "$@" \
		"$F/v1/files/$id/chunks/$n"
}
restart_files() { # restart_files [VAR=value ...]: start sb-files again after a kill
	unset "SVC_PID[files]"
	sb_svc_start files SB_FILES_DIR="$store" "${files_env[@]}" "$@"
	sb_svc_wait_ready files || fail "files not ready after restart"
}
wait_state() { # wait_state ID STATE SECONDS
	local s=""
	for _ in $(seq 1 $(($3 * 5))); do
		s=$(status_of "$1" | jq -r .state)
		[ "$s" = "$2" ] && return 0
		sleep 0.2
	done
	echo "state of $1 is $s, not $2" >&2
	return 1
}

# The original: 99 full chunks and a short last one, split into chunk files c001..c100.
orig=$SB_TEST_TMP/orig.bin
size=$((99 * CS + 12345))
head -c $size /dev/urandom >"$orig"
mkdir -p "$SB_TEST_TMP/c"
split -b $CS -d -a 3 --numeric-suffixes=1 "$orig" "$SB_TEST_TMP/c/c"
C() { printf '%s/c/c%03d' "$SB_TEST_TMP" "$1"; }
[ -f "$(C 100)" ] && [ ! -f "$(C 101)" ] || { echo "FAIL: split"; exit 1; }

# initiate: errors first.
# CORS preflight (browsers): an allowed Origin gets the methods and request headers of the chunk
# API, including Content-SHA256; a foreign one gets no Access-Control-Allow-Origin.
expect 204 "chunk API preflight" -- -X OPTIONS -H "Origin: http://127.0.0.1:8000" \
	-H "Access-Control-Request-Method: PUT" -H "Access-Control-Request-Headers: content-sha256" \
	"$F/v1/files/00000000-0000-4000-8000-000000000000/chunks/1"
[ "$(hdr Access-Control-Allow-Origin)" = "http://127.0.0.1:8000" ] || fail "preflight: no ACAO"
[[ "$(hdr Access-Control-Allow-Methods)" == *PUT* ]] || fail "preflight: PUT not allowed"
[[ "$(hdr Access-Control-Allow-Headers)" == *Content-SHA256* ]] || fail "preflight: Content-SHA256 not allowed"
expect 204 "chunk API preflight from a foreign origin" -- -X OPTIONS -H "Origin: http://evil.example" \
	-H "Access-Control-Request-Method: POST" "$F/v1/files/initiate"
[ -z "$(hdr Access-Control-Allow-Origin)" ] || fail "preflight: a foreign origin was allowed"
expect 401 "initiate without a token" -- -X POST "${J[@]}" -d '{}' "$F/v1/files/initiate"
problem_ok 401
expect 400 "initiate with a body that is not JSON" -- -X POST "${A[@]}" "${J[@]}" -d '{' "$F/v1/files/initiate"
problem_ok 400
expect 400 "initiate without a size" -- -X POST "${A[@]}" "${J[@]}" -d '{"filename":"a"}' "$F/v1/files/initiate"
expect 400 "initiate with a chunk_size below the minimum" -- -X POST "${A[@]}" "${J[@]}" \
	-d '{"filename":"a","size":100,"chunk_size":1024}' "$F/v1/files/initiate"
problem_ok 400
expect 413 "initiate above 2 GiB" -- -X POST "${A[@]}" "${J[@]}" \
	-d '{"filename":"a","size":2147483649}' "$F/v1/files/initiate"
problem_ok 413
expect 415 "initiate with a refused content type" -- -X POST "${A[@]}" "${J[@]}" \
	-d '{"filename":"a","size":10,"content_type":"application/x-msdownload"}' "$F/v1/files/initiate"
problem_ok 415
expect 201 "initiate with the default chunk size" -- -X POST "${A[@]}" "${J[@]}" \
	-d '{"filename":"big.bin","size":26214401}' "$F/v1/files/initiate"
[ "$(jq -r .chunk_size "$B")" = 10485760 ] && [ "$(jq -r .total_chunks "$B")" = 3 ] ||
	fail "default chunk size: $(cat "$B")"

expect 201 "initiate 100 chunks" -- -X POST "${A[@]}" "${J[@]}" \
	-d "{\"filename\":\"../../etc/report.bin\",\"size\":$size,\"content_type\":\"application/octet-stream\",\"chunk_size\":$CS}" \
	"$F/v1/files/initiate"
id=$(jq -r .upload_id "$B")
[ "$(jq -r .total_chunks "$B")" = 100 ] && [ "$(jq -r .chunk_size "$B")" = $CS ] ||
	fail "initiate answer: $(cat "$B")"

# 50 chunks: the odd ones, half of them with Content-SHA256.
for n in $(seq 1 2 99); do
	if [ $((n % 4)) = 1 ]; then
		st=$(put_chunk "$id" $n "$(C $n)" -H "Content-SHA256: $(sha "$(C $n)")")
	else
		st=$(put_chunk "$id" $n "$(C $n)")
	fi
	[ "$st" = 201 ] || fail "chunk $n: $st"
done
status_of "$id" >"$B"
[ "$(jq -r .uploaded_chunks "$B")" = 50 ] && [ "$(jq -r .total_chunks "$B")" = 100 ] &&
	[ "$(jq -r .state "$B")" = UPLOADING ] && [ "$(jq -r .percentage "$B")" = 50 ] ||
	fail "status after 50: $(head -c 300 "$B")"
[ "$(jq -c .missing_chunks "$B")" = "$(seq 2 2 100 | jq -sc .)" ] ||
	fail "missing_chunks: $(jq -c .missing_chunks "$B")"
echo "ok: status lists the 50 missing chunks"
expect 400 "complete with chunks missing" -- -X POST "${A[@]}" "$F/v1/files/$id/complete"
problem_ok 400
[ "$(jq -c .missing_chunks "$B")" = "$(seq 2 2 100 | jq -sc .)" ] ||
	fail "complete's missing_chunks: $(jq -c .missing_chunks "$B")"
jq -r .detail "$B" | grep -q '^50 of 100 chunks are missing: 2, 4, 6' || fail "detail: $(jq -r .detail "$B")"

# Bad chunks: nothing stored.
expect 400 "a wrong Content-SHA256" -- -X PUT "${A[@]}" --data-binary "@$(C 2)" \
	-H "Content-SHA256: $(sha "$(C 3)")" "$F/v1/files/$id/chunks/2"
problem_ok 400
expect 400 "a malformed Content-SHA256" -- -X PUT "${A[@]}" --data-binary "@$(C 2)" \
	-H "Content-SHA256: xyz" "$F/v1/files/$id/chunks/2"
head -c 1000 "$(C 2)" >"$SB_TEST_TMP/short"
expect 400 "a short chunk that is not the last" -- -X PUT "${A[@]}" --data-binary "@$SB_TEST_TMP/short" "$F/v1/files/$id/chunks/2"
expect 400 "a full-size last chunk" -- -X PUT "${A[@]}" --data-binary "@$(C 1)" "$F/v1/files/$id/chunks/100"
expect 400 "chunk 0" -- -X PUT "${A[@]}" --data-binary "@$(C 1)" "$F/v1/files/$id/chunks/0"
expect 400 "chunk 101" -- -X PUT "${A[@]}" --data-binary "@$(C 1)" "$F/v1/files/$id/chunks/101"
expect 400 "chunk abc" -- -X PUT "${A[@]}" --data-binary "@$(C 1)" "$F/v1/files/$id/chunks/abc"
expect 400 "POST chunks without chunk_number" -- -X POST "${A[@]}" --data-binary "@$(C 2)" "$F/v1/files/$id/chunks"
[ "$(status_of "$id" | jq -r .uploaded_chunks)" = 50 ] || fail "a refused chunk was counted"
[ ! -e "$store/parts/$id/2" ] || fail "a refused chunk was stored"
expect 404 "another user's status" -- -H "Authorization: Bearer $bob" "$F/v1/files/$id/status"
problem_ok 404
expect 404 "another user's chunk" -- -X PUT -H "Authorization: Bearer $bob" --data-binary "@$(C 2)" "$F/v1/files/$id/chunks/2"
expect 404 "an unknown upload" -- "${A[@]}" "$F/v1/files/00000000-0000-4000-8000-000000000000/status"
# A chunk-API upload is not a tus upload.
expect 404 "tus HEAD of a chunk-API upload" -- -I "${A[@]}" -H "Tus-Resumable: 1.0.0" "$F/files/$id"
expect 404 "tus PATCH of a chunk-API upload" -- -X PATCH "${A[@]}" -H "Tus-Resumable: 1.0.0" \
	-H "Upload-Offset: 0" -H "Content-Type: application/offset+octet-stream" --data-binary "@$(C 1)" "$F/files/$id"
expect 405 "DELETE on status" -- -X DELETE "${A[@]}" "$F/v1/files/$id/status"
problem_ok 405

# The even ones: POST ...?chunk_number=n for some, PUT for the others; chunk 4 twice
# (idempotent), then with other content (409).
for n in $(seq 2 2 60); do
	if [ $((n % 4)) = 0 ]; then
		st=$(curl -s -o /dev/null -w '%{http_code}' -X POST "${A[@]}" --data-binary "@$(C $n)" \
			"$F/v1/files/$id/chunks?chunk_number=$n")
	else
		st=$(put_chunk "$id" $n "$(C $n)")
	fi
	[ "$st" = 201 ] || fail "chunk $n: $st"
done
expect 200 "chunk 4 again (idempotent)" -- -X PUT "${A[@]}" --data-binary "@$(C 4)" "$F/v1/files/$id/chunks/4"
expect 409 "chunk 4 with other content" -- -X PUT "${A[@]}" --data-binary "@$(C 6)" "$F/v1/files/$id/chunks/4"
problem_ok 409

# kill -9 in the middle of the upload: while chunks are being sent.
(for n in $(seq 62 2 80); do put_chunk "$id" $n "$(C $n)" >/dev/null; done) &
bg=$!
sleep 0.3
kill -KILL "${SVC_PID[files]}"
wait "${SVC_PID[files]}" 2>/dev/null
wait $bg
restart_files
status_of "$id" >"$B"
have=$(jq -r .uploaded_chunks "$B")
echo "after kill -9 mid-upload: $have chunks stored"
[ "$have" -ge 80 ] && [ "$have" -le 90 ] || fail "chunks after the kill: $have"
# Every chunk the status counts is whole: resume with the missing ones only.
for n in $(jq -r '.missing_chunks[]' "$B"); do
	st=$(put_chunk "$id" $n "$(C $n)")
	[ "$st" = 201 ] || fail "resumed chunk $n: $st"
done
status_of "$id" >"$B"
[ "$(jq -r .uploaded_chunks "$B")" = 100 ] && [ "$(jq -c .missing_chunks "$B")" = "[]" ] &&
	[ "$(jq -r .percentage "$B")" = 100 ] || fail "status when whole: $(head -c 300 "$B")"

expect 202 "complete" -- -X POST "${A[@]}" "$F/v1/files/$id/complete"
[ "$(jq -r .state "$B")" = MERGING ] || fail "complete's state: $(cat "$B")"
expect 409 "a chunk after complete" -- -X PUT "${A[@]}" --data-binary "@$(C 2)" "$F/v1/files/$id/chunks/2"
wait_state "$id" COMPLETED 60 || fail "not COMPLETED"
status_of "$id" >"$B"
[ "$(jq -r .sha256 "$B")" = "$(sha "$orig")" ] || fail "status sha256: $(jq -r .sha256 "$B")"
expect 200 "complete again after COMPLETED" -- -X POST "${A[@]}" "$F/v1/files/$id/complete"
[ ! -e "$store/parts/$id/1" ] && [ -z "$(ls -A "$store/parts/$id" 2>/dev/null)" ] || fail "parts left after the merge"

expect 200 "download" -- "${A[@]}" "$F/v1/files/$id/content"
[ "$(sha "$B")" = "$(sha "$orig")" ] || fail "downloaded file differs from the original"
grep -qi '^content-disposition: attachment; filename="report.bin"' "$H" || fail "Content-Disposition: $(grep -i disposition "$H")"

# FileUploadCompleted on sb.files.v1: key, CloudEvents headers, payload fields.
found=""
for _ in $(seq 1 50); do
	found=$(kcat -C -b "$kbrokers" -t "$ktopic" -o beginning -e -q -f '%p %o %k %h\n' 2>/dev/null | grep " $id " | head -n1)
	[ -n "$found" ] && break
	sleep 0.2
done
if [ -z "$found" ]; then
	fail "no FileUploadCompleted for $id on $ktopic"
else
	read -r part off _ hdrs <<<"$found"
	for h in ce_specversion=1.0 ce_type=io.switchboard.file.upload_completed.v1 ce_source=/files ce_id= content-type=; do
		echo "$hdrs" | tr ',' '\n' | grep -q "^$h" || fail "header $h missing: $hdrs"
	done
	kcat -C -b "$kbrokers" -t "$ktopic" -p "$part" -o "$off" -c 1 -e -q -f '%s' >"$SB_TEST_TMP/ev.bin"
	protoc -I "$root/proto" --decode sb.events.FileUploadCompleted "$root/proto/events/files_events.proto" \
		<"$SB_TEST_TMP/ev.bin" >"$SB_TEST_TMP/ev.txt" || fail "payload does not decode"
	cat "$SB_TEST_TMP/ev.txt"
	grep -q "upload_id: \"$id\"" "$SB_TEST_TMP/ev.txt" && grep -q "size: $size" "$SB_TEST_TMP/ev.txt" &&
		grep -q "sha256: \"$(sha "$orig")\"" "$SB_TEST_TMP/ev.txt" &&
		grep -q 'filename: "report.bin"' "$SB_TEST_TMP/ev.txt" &&
		grep -q 'content_type: "application/octet-stream"' "$SB_TEST_TMP/ev.txt" &&
		grep -q 'owner_id: "' "$SB_TEST_TMP/ev.txt" && grep -q 'tenant_id: "' "$SB_TEST_TMP/ev.txt" &&
		grep -q 'completed_at_ms: [1-9]' "$SB_TEST_TMP/ev.txt" || fail "event fields"
	echo "ok: FileUploadCompleted on $ktopic"
fi

# upload ID N: a whole upload of the first N chunk files (N < 100: all full-size), with the
# client's SHA-256 given at initiate; prints the id.
small_upload() {
	local n=$1 s=$(($1 * CS)) i
	head -c $s "$orig" >"$SB_TEST_TMP/small.bin"
	curl -s -X POST "${A[@]}" "${J[@]}" -d "{\"filename\":\"s.bin\",\"size\":$s,\"chunk_size\":$CS,\"sha256\":\"$(sha "$SB_TEST_TMP/small.bin")\"}" \
		"$F/v1/files/initiate" | jq -r .upload_id >"$SB_TEST_TMP/small.id"
	local sid
	sid=$(cat "$SB_TEST_TMP/small.id")
	for i in $(seq 1 "$n"); do
		[ "$(put_chunk "$sid" "$i" "$(C "$i")")" = 201 ] || fail "small upload chunk $i"
	done
	echo "$sid"
}

# kill -9 in the middle of a merge: part 7 is held back, so the attempt stops after writing
# parts 1-6 into the final object and waits (back-off 4 s); sb-files is killed there, the part
# comes back, and after the restart the redelivered request merges the whole file.
id2=$(small_upload 10)
mv "$store/parts/$id2/7" "$SB_TEST_TMP/held7"
expect 202 "complete (merge to be killed)" -- -X POST "${A[@]}" "$F/v1/files/$id2/complete"
for _ in $(seq 1 150); do
	grep -q "merge attempt failed; will retry.*$id2" "$SB_TEST_TMP/logs/files.log" && break
	sleep 0.2
done
grep -q "merge attempt failed; will retry.*$id2" "$SB_TEST_TMP/logs/files.log" || fail "the merge never reached part 7"
[ -s "$store/up/$id2" ] || fail "no half-made object to check (parts 1-6 were not written)"
[ "$(status_of "$id2" | jq -r .state)" = MERGING ] || fail "state before the kill"
expect 409 "download while MERGING" -- "${A[@]}" "$F/v1/files/$id2/content"
kill -KILL "${SVC_PID[files]}"
wait "${SVC_PID[files]}" 2>/dev/null
mv "$SB_TEST_TMP/held7" "$store/parts/$id2/7"
restart_files
wait_state "$id2" COMPLETED 60 || fail "merge after the kill not COMPLETED"
expect 200 "download after the killed merge" -- "${A[@]}" "$F/v1/files/$id2/content"
[ "$(sha "$B")" = "$(sha "$SB_TEST_TMP/small.bin")" ] || fail "file merged after the kill differs"

# A corrupt part: retried SB_FILES_MERGE_ATTEMPTS times, then FAILED, reported, nothing left.
# The attempts are counted on the upload's row: sb-files is killed (-9) after the first failed
# attempt, and the request delivered again after the restart goes on counting (2 retries in
# all, the third attempt FAILED), instead of starting over (which would make 3 retries).
kill -TERM "${SVC_PID[files]}"
wait "${SVC_PID[files]}" 2>/dev/null
restart_files SB_FILES_MERGE_BACKOFF_MS=3000 SB_FILES_MERGE_ATTEMPTS=3
id3=$(small_upload 5)
printf 'XXXX' | dd of="$store/parts/$id3/3" bs=1 seek=100 conv=notrunc status=none
expect 202 "complete (corrupt part)" -- -X POST "${A[@]}" "$F/v1/files/$id3/complete"
for _ in $(seq 100); do
	grep -q "merge attempt failed; will retry.*$id3" "$SB_TEST_TMP/logs/files.log" && break
	sleep 0.2
done
kill -KILL "${SVC_PID[files]}"
wait "${SVC_PID[files]}" 2>/dev/null
restart_files SB_FILES_MERGE_BACKOFF_MS=100 SB_FILES_MERGE_ATTEMPTS=3
wait_state "$id3" FAILED 60 || fail "corrupt upload not FAILED"
status_of "$id3" | jq -r .failure | grep -q 'part 3 is corrupt' || fail "failure reason: $(status_of "$id3")"
[ "$(grep -c "merge attempt failed; will retry.*$id3" "$SB_TEST_TMP/logs/files.log")" = 2 ] || fail "not 2 retries before FAILED (across the restart)"
grep "merge failed; the upload is FAILED.*$id3" "$SB_TEST_TMP/logs/files.log" | grep -q '"attempts":"3"' ||
	fail "FAILED not logged after 3 attempts: $(grep "upload is FAILED.*$id3" "$SB_TEST_TMP/logs/files.log")"
m=$(curl -s "http://127.0.0.1:${SVC_OPS[files]}/metrics" | awk '/^files_merges_total\{result="failed"\}/ { print $2 }')
[ "${m:-0}" -ge 1 ] || fail "files_merges_total{result=failed} = ${m:-none}"
[ ! -e "$store/up/$id3" ] || fail "a half-made file was left for the FAILED upload"
expect 410 "a chunk for a FAILED upload" -- -X PUT "${A[@]}" --data-binary "@$(C 1)" "$F/v1/files/$id3/chunks/1"

# Two merge workers that both receive every request (two consumer groups): exactly one merges
# an upload, the other finds it COMPLETED (after waiting for its row lock, when they meet) and
# changes nothing; the requests of earlier uploads, delivered again to the new group, are
# no-ops too.
sb_svc_ports files2
mapfile -t envs2 < <(sb_svc_env)
env "${envs2[@]}" SB_RPC_URL="tcp://127.0.0.1:${SVC_RPC[files2]}" SB_OPS_PORT="${SVC_OPS[files2]}" \
	SB_HTTP_PORT="${SVC_HTTP[files2]}" SB_FILES_DIR="$store" SB_FILES_MERGE_GROUP=second-merge \
	"$SB_BUILD_ROOT/bin/sb-files" >>"$SB_TEST_TMP/logs/files2.log" 2>&1 &
SVC_PID[files2]=$!
sb_svc_wait_ready files2 || fail "second sb-files not ready"
id4=$(small_upload 8)
expect 202 "complete (two workers)" -- -X POST "${A[@]}" "$F/v1/files/$id4/complete"
wait_state "$id4" COMPLETED 60 || fail "two workers: not COMPLETED"
logs2=("$SB_TEST_TMP/logs/files.log" "$SB_TEST_TMP/logs/files2.log")
for _ in $(seq 1 300); do
	[ "$(cat "${logs2[@]}" | grep -c "nothing to do.*$id4")" -ge 1 ] &&
		grep -q "nothing to do.*$id\b" "$SB_TEST_TMP/logs/files2.log" && break
	sleep 0.2
done
merged=$(cat "${logs2[@]}" | grep -c "upload merged.*$id4")
noop=$(cat "${logs2[@]}" | grep -c "nothing to do.*$id4")
[ "$merged" = 1 ] && [ "$noop" = 1 ] || fail "two workers: merged $merged times, $noop no-ops"
grep -q "nothing to do.*$id\b" "$SB_TEST_TMP/logs/files2.log" || fail "an old COMPLETED request was not a no-op in the new group"
expect 200 "download (two workers)" -- "${A[@]}" "$F/v1/files/$id4/content"
[ "$(sha "$B")" = "$(sha "$SB_TEST_TMP/small.bin")" ] || fail "two workers: file differs"
[ "$(status_of "$id" | jq -r .state)" = COMPLETED ] || fail "the first upload changed"

if [ "$fails" -gt 0 ]; then
	echo "$fails failure(s); files log tail:"
	tail -n 30 "$SB_TEST_TMP/logs/files.log"
	exit 1
fi
echo "PASS"
