#!/usr/bin/env bash
# stack: pg,redis,kafka
# labels: files,e2e,s3
# The chunk API on the S3 backend (moto, SigV4 checked; tests/lib/s3.sh): 30 chunks of 64 KiB
# (the last short) stored as parts in the bucket, one of them sent twice (idempotent), complete,
# the merge worker assembles the file through the storage interface into the bucket, COMPLETED
# with the original's SHA-256, the download equals the original, and no part is left in the
# bucket. Then kill -9 of sb-files mid-upload (resumed, merged, the file equal) and mid-merge
# (a part's object held back so that the merge stops half-way; sb-files killed there; the part
# put back; after the restart the redelivered request merges the whole file, equal).
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"
. "$root/tests/lib/s3.sh"

sb_s3_start || exit 1
CS=65536
sb_svc_ports outbox
# A merge's retry back-off of 4 s leaves room for the kill mid-merge below (merges that find
# every part never wait).
files_env=(SB_FILES_CHUNK_MIN=$CS SB_FILES_MERGE_BACKOFF_MS=4000)
files_stack_up "${files_env[@]}" || exit 1
sb_svc_start outbox SB_OUTBOX_TABLES=messages.outbox,files.outbox SB_OUTBOX_LEASE_INTERVAL_MS=200
sb_svc_wait_ready outbox || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
A=(-H "Authorization: Bearer $alice")
sha() { sha256sum "$1" | cut -d' ' -f1; }

orig=$SB_TEST_TMP/orig.bin
size=$((29 * CS + 777))
head -c $size /dev/urandom >"$orig"
mkdir -p "$SB_TEST_TMP/c"
split -b $CS -d -a 3 --numeric-suffixes=1 "$orig" "$SB_TEST_TMP/c/c"
C() { printf '%s/c/c%03d' "$SB_TEST_TMP" "$1"; }
id=$(curl -s -X POST "${A[@]}" -H 'Content-Type: application/json' \
	-d "{\"filename\":\"s3.bin\",\"size\":$size,\"chunk_size\":$CS,\"sha256\":\"$(sha "$orig")\"}" \
	"$F/v1/files/initiate" | jq -r .upload_id)
[ -n "$id" ] && [ "$id" != null ] || { echo "FAIL: initiate"; exit 1; }
for n in $(seq 30 -1 1); do # out of order on purpose
	st=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "${A[@]}" --data-binary "@$(C $n)" "$F/v1/files/$id/chunks/$n")
	[ "$st" = 201 ] || fail "chunk $n: $st"
done
st=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "${A[@]}" --data-binary "@$(C 7)" "$F/v1/files/$id/chunks/7")
[ "$st" = 200 ] || fail "chunk 7 again: $st"
nparts=$(sb_s3_keys "parts/$id/" | wc -l)
[ "$nparts" -ge 30 ] || fail "parts in the bucket before the merge: $nparts"
echo "ok: 30 chunks stored, $nparts part objects in the bucket"
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST "${A[@]}" "$F/v1/files/$id/complete")
[ "$st" = 202 ] || fail "complete: $st"
state=""
for _ in $(seq 1 300); do
	state=$(curl -s "${A[@]}" "$F/v1/files/$id/status" | jq -r .state)
	[ "$state" = COMPLETED ] || [ "$state" = FAILED ] && break
	sleep 0.2
done
[ "$state" = COMPLETED ] || fail "state $state: $(curl -s "${A[@]}" "$F/v1/files/$id/status")"
curl -s "${A[@]}" -o "$SB_TEST_TMP/down.bin" "$F/v1/files/$id/content"
[ "$(sha "$SB_TEST_TMP/down.bin")" = "$(sha "$orig")" ] || fail "the download differs from the original"
# The parts are removed after the commit that makes the upload COMPLETED: give it a moment.
for _ in $(seq 50); do
	left=$(sb_s3_keys "parts/$id/" | wc -l)
	[ "$left" = 0 ] && break
	sleep 0.1
done
[ "$left" = 0 ] || fail "$left part objects left after the merge"
[ "$(sb_s3_keys "up/$id" | wc -l)" -ge 1 ] || fail "no final object in the bucket"
echo "ok: merged on S3 ($(sb_s3_keys "up/$id" | wc -l) object(s) for the file), download equal, no parts left"

# A fault case on S3 (the filesystem's are in files_chunks_test): kill -9 of sb-files in the
# middle of an upload.
restart_files() { # restart_files [VAR=value ...]: start sb-files again after a kill
	unset "SVC_PID[files]"
	sb_svc_start files SB_FILES_DIR="$store" "${files_env[@]}" "$@"
	sb_svc_wait_ready files || fail "files not ready after a restart"
}
status_of() { curl -s "${A[@]}" "$F/v1/files/$1/status"; }
wait_state() { # wait_state ID STATE SECONDS
	for _ in $(seq 1 $(($3 * 5))); do
		[ "$(status_of "$1" | jq -r .state)" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}
put() { curl -s -o /dev/null -w '%{http_code}' -X PUT "${A[@]}" --data-binary "@$3" "$F/v1/files/$1/chunks/$2"; }
initiate() { # initiate FILE: a chunked upload of FILE in chunks of CS; prints its id
	curl -s -X POST "${A[@]}" -H 'Content-Type: application/json' \
		-d "{\"filename\":\"f.bin\",\"size\":$(stat -c %s "$1"),\"chunk_size\":$CS}" \
		"$F/v1/files/initiate" | jq -r .upload_id
}

# kill -9 mid-upload: 40 chunks sent one after another (0.1 s apart), sb-files killed after
# 1.5 s; after the restart every chunk the status counts is whole: the missing ones are sent,
# the merged file equals the original.
orig2=$SB_TEST_TMP/orig2.bin
head -c $((40 * CS)) /dev/urandom >"$orig2"
mkdir -p "$SB_TEST_TMP/d"
split -b $CS -d -a 3 --numeric-suffixes=1 "$orig2" "$SB_TEST_TMP/d/d"
D() { printf '%s/d/d%03d' "$SB_TEST_TMP" "$1"; }
id4=$(initiate "$orig2")
(for n in $(seq 1 40); do put "$id4" $n "$(D $n)" >/dev/null; sleep 0.1; done) &
bg=$!
sleep 1.5
kill -KILL "${SVC_PID[files]}"
wait "${SVC_PID[files]}" 2>/dev/null
wait $bg
restart_files
status_of "$id4" >"$SB_TEST_TMP/st.json"
have=$(jq -r .uploaded_chunks "$SB_TEST_TMP/st.json")
echo "after kill -9 mid-upload on S3: $have of 40 chunks stored"
[ "$have" -gt 0 ] && [ "$have" -lt 40 ] || fail "chunks after the kill: $have (not mid-upload)"
for n in $(jq -r '.missing_chunks[]' "$SB_TEST_TMP/st.json"); do
	st=$(put "$id4" $n "$(D $n)")
	[ "$st" = 201 ] || fail "resumed chunk $n: $st"
done
[ "$(status_of "$id4" | jq -r .uploaded_chunks)" = 40 ] || fail "not 40 chunks after resuming"
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST "${A[@]}" "$F/v1/files/$id4/complete")
[ "$st" = 202 ] || fail "complete after the kill mid-upload: $st"
wait_state "$id4" COMPLETED 60 || fail "upload killed mid-upload not COMPLETED: $(status_of "$id4")"
curl -s "${A[@]}" -o "$SB_TEST_TMP/down.bin" "$F/v1/files/$id4/content"
[ "$(sha "$SB_TEST_TMP/down.bin")" = "$(sha "$orig2")" ] || fail "the upload killed mid-upload differs after resuming"

echo "ok: S3 kill -9 mid-upload ($have of 40 stored, resumed, merged, equal)"

# kill -9 mid-merge: part 7's one object is deleted (its bytes kept here), so the merge writes
# parts 1-6 into the final object and then waits in its retry back-off; sb-files is killed there,
# the object is put back, and the request delivered again after the restart merges the file.
orig3=$SB_TEST_TMP/orig3.bin
head -c $((10 * CS)) /dev/urandom >"$orig3"
mkdir -p "$SB_TEST_TMP/e"
split -b $CS -d -a 3 --numeric-suffixes=1 "$orig3" "$SB_TEST_TMP/e/e"
E() { printf '%s/e/e%03d' "$SB_TEST_TMP" "$1"; }
id5=$(initiate "$orig3")
[ -n "$id5" ] && [ "$id5" != null ] || fail "initiate (mid-merge upload): $(curl -s -X POST "${A[@]}" \
	-H 'Content-Type: application/json' -d "{\"filename\":\"f.bin\",\"size\":$((10 * CS)),\"chunk_size\":$CS}" \
	"$F/v1/files/initiate")"
for n in $(seq 1 10); do
	[ "$(put "$id5" $n "$(E $n)")" = 201 ] || fail "mid-merge upload: chunk $n"
done
k7=$(sb_s3_keys "parts/$id5/7/")
[ "$(wc -l <<<"$k7")" = 1 ] && [ -n "$k7" ] || fail "part 7 is not one object: '$k7'"
st=$(sb_s3_curl -X DELETE -o /dev/null -w '%{http_code}' "$SB_TEST_S3_ENDPOINT/$SB_TEST_S3_BUCKET/$k7")
[ "$st" = 204 ] || fail "delete of part 7's object: $st"
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST "${A[@]}" "$F/v1/files/$id5/complete")
[ "$st" = 202 ] || fail "complete (merge to be killed): $st"
for _ in $(seq 1 150); do
	grep -q "merge attempt failed; will retry.*$id5" "$SB_TEST_TMP/logs/files.log" && break
	sleep 0.2
done
grep -q "merge attempt failed; will retry.*$id5.*part 7 is missing" "$SB_TEST_TMP/logs/files.log" ||
	fail "the merge never stopped at part 7"
[ "$(sb_s3_keys "up/$id5" | wc -l)" -ge 1 ] || fail "no half-made object (parts 1-6 not written)"
[ "$(status_of "$id5" | jq -r .state)" = MERGING ] || fail "state before the kill: $(status_of "$id5")"
kill -KILL "${SVC_PID[files]}"
wait "${SVC_PID[files]}" 2>/dev/null
[ "$(sb_s3_put "$k7" "$(E 7)")" = 200 ] || fail "putting part 7 back"
restart_files
wait_state "$id5" COMPLETED 60 || fail "merge after the kill not COMPLETED: $(status_of "$id5")"
curl -s "${A[@]}" -o "$SB_TEST_TMP/down5.bin" "$F/v1/files/$id5/content"
[ "$(sha "$SB_TEST_TMP/down5.bin")" = "$(sha "$orig3")" ] || fail "the file merged after the kill differs"
[ "$fails" = 0 ] && echo "ok: S3 kill -9 mid-merge (stopped at part 7, killed, part put back, merged after the restart, equal)"
if [ "$fails" -gt 0 ]; then
	tail -n 30 "$SB_TEST_TMP/logs/files.log"
	exit 1
fi
echo PASS
