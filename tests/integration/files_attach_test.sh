#!/usr/bin/env bash
# Attachments (issue 11): alice uploads a file with tus and sends it to a conversation with
# bob; bob downloads the same bytes; carol (same tenant, not a member) and eve (another tenant)
# get 404, as for an id that does not exist; bob could not download it before it was attached;
# attaching bob's file, an unfinished upload or an unknown id is 400 naming the id, and
# nothing is stored. History and the MessageCreated outbox row carry the ids. Real sb-auth,
# sb-messages, sb-gateway and sb-files on PostgreSQL (files needs Kafka to be ready).
# stack: pg,redis,kafka
# labels: files,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"

files_stack_up || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
B=$SB_TEST_TMP/body
H=$SB_TEST_TMP/head
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
cli() {
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="http://127.0.0.1:${SVC_HTTP[gateway]}" \
		"$SB_BUILD_ROOT/bin/sb-auth" "$@"
}
# carol: a user of alice's tenant ("dev") outside the conversation; eve: another tenant.
cli user create --tenant dev --name carol >/dev/null || { echo "FAIL: user create carol"; exit 1; }
cli user create --tenant elsewhere --name eve >/dev/null || { echo "FAIL: user create eve"; exit 1; }
carol=$(cli token issue --tenant dev --user carol --scopes "files:read messages:read" --ttl 600)
eve=$(cli token issue --tenant elsewhere --user eve --scopes "files:read messages:read" --ttl 600)
[ -n "$carol" ] && [ -n "$eve" ] || { echo "FAIL: token issue"; exit 1; }
bob_id=$(curl -s -H "Authorization: Bearer $bob" "$SB_GW/v1/me" | jq -r .user_id)
[ -n "$bob_id" ] && [ "$bob_id" != null ] || { echo "FAIL: bob's user id"; exit 1; }

# upload TOKEN FILE [SEND]: tus creation-with-upload of the first SEND bytes (all by default)
# of FILE; prints the file id.
upload() {
	local len send
	len=$(stat -c %s "$2")
	send=${3:-$len}
	curl -sS -D - -o /dev/null -X POST -H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $1" \
		-H "Upload-Length: $len" -H "Upload-Metadata: filename $(printf 'note.bin' | base64 -w0)" \
		-H "Content-Type: application/offset+octet-stream" --data-binary @<(head -c "$send" "$2") \
		"$F/files/" | tr -d '\r' | grep -i '^location:' | sed 's#.*/##'
}
head -c 300000 /dev/urandom >"$SB_TEST_TMP/a.bin"
head -c 1000 /dev/urandom >"$SB_TEST_TMP/b.bin"
fa=$(upload "$alice" "$SB_TEST_TMP/a.bin")
fpart=$(upload "$alice" "$SB_TEST_TMP/a.bin" 1000)
fb=$(upload "$bob" "$SB_TEST_TMP/b.bin")
[ ${#fa} = 36 ] && [ ${#fpart} = 36 ] && [ ${#fb} = 36 ] || { echo "FAIL: uploads: '$fa' '$fpart' '$fb'"; exit 1; }
[ "$(q -c "SELECT state FROM files.uploads WHERE id = '$fa'")" = COMPLETED ] &&
	[ "$(q -c "SELECT state FROM files.uploads WHERE id = '$fpart'")" = UPLOADING ] ||
	fail "upload states"

# get TOKEN ID: download, status on stdout, body in $B
get() { curl -sS -D "$H" -o "$B" -w '%{http_code}' -H "Authorization: Bearer $1" "$F/v1/files/$2/content"; }
# send TOKEN CONV ATTACHMENTS_JSON: status on stdout, body in $B
send() {
	curl -sS -o "$B" -w '%{http_code}' -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
		-d "{\"id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"conversation_id\":\"$2\",\"content\":\"see attached\",\"attachments\":$3}" \
		"$SB_GW/v1/messages"
}

conv=$(curl -s -H "Authorization: Bearer $alice" -H 'Content-Type: application/json' \
	-d "{\"kind\":\"group\",\"title\":\"files\",\"member_ids\":[\"$bob_id\"]}" "$SB_GW/v1/conversations" | jq -r .id)
[ ${#conv} = 36 ] || { echo "FAIL: conversation: $conv"; exit 1; }

# Before it is attached, bob may not read alice's file.
code=$(get "$bob" "$fa")
[ "$code" = 404 ] && ok "bob cannot download alice's file before it is attached" ||
	fail "bob before attachment: $code, want 404"

# Bad attachments: 400 naming the id, nothing stored.
before=$(q -c "SELECT count(*) FROM messages.messages WHERE conversation_id = '$conv'")
for bad in "$fb:bob's file" "$fpart:an unfinished upload" "$(cat /proc/sys/kernel/random/uuid):an unknown id"; do
	id=${bad%%:*} what=${bad#*:}
	code=$(send "$alice" "$conv" "[\"$id\"]")
	if [ "$code" = 400 ] && [ "$(jq -r .status "$B")" = 400 ] && grep -q "$id" "$B"; then
		ok "attaching $what is 400 naming it"
	else
		fail "attaching $what: $code $(cat "$B")"
	fi
done
code=$(send "$alice" "$conv" "[\"$fa\",\"$fb\"]")
[ "$code" = 400 ] && grep -q "attachments\[1\]" "$B" && ! grep -q "attachments\[0\]" "$B" &&
	ok "a good and a bad id: 400 names only the bad one" || fail "mixed attachments: $code $(cat "$B")"
code=$(send "$alice" "$conv" "[\"$fa\",\"$fa\"]")
[ "$code" = 400 ] && grep -q "the same file twice" "$B" && ok "the same file twice is 400" || fail "repeated id: $code $(cat "$B")"
eleven=$(for _ in $(seq 11); do printf '"%s",' "$(cat /proc/sys/kernel/random/uuid)"; done)
code=$(send "$alice" "$conv" "[${eleven%,}]")
[ "$code" = 400 ] && grep -q "at most 10" "$B" && ok "eleven attachments are 400" || fail "eleven: $code $(cat "$B")"
code=$(send "$alice" "$conv" '["not-a-uuid"]')
[ "$code" = 400 ] && ok "a malformed id is 400" || fail "malformed id: $code $(cat "$B")"
[ "$(q -c "SELECT count(*) FROM messages.messages WHERE conversation_id = '$conv'")" = "$before" ] &&
	ok "no refused send was stored" || fail "a refused send was stored"

# The good one.
code=$(send "$alice" "$conv" "[\"$fa\"]")
[ "$code" = 202 ] && ok "alice sends her completed upload as an attachment" || fail "send: $code $(cat "$B")"
msg=$(jq -r .id "$B")
# The same send again (same id): the original answer (200), nothing written twice.
code=$(curl -sS -o "$B" -w '%{http_code}' -H "Authorization: Bearer $alice" -H 'Content-Type: application/json' \
	-d "{\"id\":\"$msg\",\"conversation_id\":\"$conv\",\"content\":\"see attached\",\"attachments\":[\"$fa\"]}" \
	"$SB_GW/v1/messages")
[ "$code" = 200 ] && [ "$(jq -r .id "$B")" = "$msg" ] &&
	[ "$(q -c "SELECT count(*) FROM messages.messages WHERE id = '$msg'")" = 1 ] &&
	ok "a repeated send with attachments answers the original" || fail "repeat: $code $(cat "$B")"
hist=$(curl -s -H "Authorization: Bearer $bob" "$SB_GW/v1/conversations/$conv/messages")
[ "$(jq -c '[.items[] | select(.id == "'"$msg"'") | .attachments]' <<<"$hist")" = "[[\"$fa\"]]" ] &&
	ok "history carries the attachment" || fail "history: $hist"
# The MessageCreated payload (protobuf) in the outbox row carries the id.
[ "$(q -c "SELECT position(convert_to('$fa', 'UTF8') in payload) > 0 FROM messages.outbox WHERE subject = '$msg'")" = t ] &&
	ok "the MessageCreated event carries the attachment" || fail "outbox payload lacks the file id"

code=$(get "$bob" "$fa")
if [ "$code" = 200 ] && cmp -s "$B" "$SB_TEST_TMP/a.bin"; then
	ok "bob (a member) downloads the same bytes"
else
	fail "bob's download: $code, $(stat -c %s "$B") bytes"
fi
code=$(get "$alice" "$fa")
[ "$code" = 200 ] && cmp -s "$B" "$SB_TEST_TMP/a.bin" && ok "alice (the owner) downloads it" || fail "alice: $code"
code=$(get "$carol" "$fa")
[ "$code" = 404 ] && [ "$(jq -r .status "$B")" = 404 ] && grep -qi '^content-type: application/problem+json' "$H" &&
	ok "carol (same tenant, not a member) gets 404" || fail "carol: $code $(cat "$B")"
code=$(get "$eve" "$fa")
[ "$code" = 404 ] && ok "eve (another tenant) gets 404" || fail "eve: $code $(cat "$B")"
# The same answer as for an id that does not exist: existence is not revealed.
code=$(get "$carol" "$(cat /proc/sys/kernel/random/uuid)")
[ "$code" = 404 ] || fail "unknown id: $code"
# An attachment does not open the sender's other files.
code=$(get "$bob" "$fpart")
[ "$code" = 404 ] && ok "bob still cannot read alice's unattached upload" || fail "bob on fpart: $code"
# A member removed from the conversation loses access.
curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $alice" "$SB_GW/v1/conversations/$conv/members/$bob_id"
code=$(get "$bob" "$fa")
[ "$code" = 404 ] && ok "bob, removed from the conversation, gets 404" || fail "removed bob: $code"

# Outages: with messages down nobody but the owner can be cleared (503 with Retry-After, not
# 404 and not 200), the owner still downloads; with files down a send with attachments is 503
# and one without still goes through.
sb_svc_stop messages
code=$(get "$carol" "$fa")
[ "$code" = 503 ] && grep -qi '^retry-after:' "$H" && ok "messages down: a non-owner gets 503 with Retry-After" ||
	fail "messages down, carol: $code $(cat "$B")"
code=$(get "$alice" "$fa")
[ "$code" = 200 ] && ok "messages down: the owner still downloads" || fail "messages down, alice: $code"
sb_svc_start messages
sb_svc_wait_ready messages || fail "messages did not come back"
# The gateway dials messages again on its own schedule: wait until a read goes through it, so
# that the 503s below are files' outage and not a connection still being re-made.
for _ in $(seq 1 50); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $alice" \
		"$SB_GW/v1/conversations/$conv/messages")" = 200 ] && break
	sleep 0.2
done
sb_svc_stop files
code=$(send "$alice" "$conv" "[\"$fa\"]")
[ "$code" = 503 ] && ok "files down: a send with attachments is 503" || fail "files down, send: $code $(cat "$B")"
code=$(send "$alice" "$conv" "[]")
[ "$code" = 202 ] && ok "files down: a send without attachments goes through" || fail "files down, plain send: $code $(cat "$B")"

# Stopped cleanly, and (in the sanitizer tree) without a report from any service.
sb_svc_stop_all
bad=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$SB_TEST_TMP"/logs/*.log)
[ -z "$bad" ] && ok "no sanitizer report in the services' logs" || {
	fail "sanitizer reports in: $bad"
	grep -hE -A12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' $bad | head -40
}
echo "fails: $fails"
[ "$fails" = 0 ]
