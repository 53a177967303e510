#!/usr/bin/env bash
# Point-in-time recovery with the real PostgreSQL and the real services: a primary archives its
# WAL (archive_command into a directory), a base backup is taken with pg_basebackup (without
# WAL: the restore must fetch every segment from the archive), messages are sent through the
# gateway and sb-messages before and after a chosen moment T, the backup is restored into a new
# data directory with recovery_target_time = T, and a fresh sb-messages pointed at the restored
# cluster lists exactly the messages sent before T (checked through the gateway and in SQL).
# The steps are the runbook's (docs/runbook.md, "Restore to a point in time").
# stack: redis
# labels: pgops,e2e
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/pg-ops.sh"

fail() { echo "FAIL: $*"; exit 1; }
t=$SB_TEST_TMP
arch=$t/archive
mkdir -p "$arch"
chown postgres:postgres "$arch"

# The primary: WAL archiving on, every segment copied once into $arch.
pport=$(sb_free_port)
pgo_init "$t/primary" || fail "initdb"
pgo_conf "$t/primary" "wal_level = replica" "archive_mode = on" \
	"archive_command = 'test ! -f $arch/%f && cp %p $arch/%f'" "archive_timeout = 60"
trap 'sb_svc_stop_all; pgo_stop "$t/primary"; pgo_stop "$t/restored"' EXIT
pgo_start "$t/primary" "$pport" || fail "primary does not start"
export SB_TEST_PG_DSN="postgresql://postgres@127.0.0.1:$pport/postgres"

sb_svc_ports gateway auth messages
sb_svc_start auth
sb_svc_start messages
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=100000
sb_svc_wait_ready auth messages gateway || exit 1

creds=$t/dev-credentials.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	fail "seed-dev"
tok=$(curl -s -u "$(jq -r .alice.client_id "$creds"):$(jq -r .alice.client_secret "$creds")" \
	-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
[ -n "$tok" ] && [ "$tok" != null ] || fail "no token"
conv=$(curl -s -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	-d '{"kind":"group","title":"pitr"}' "$SB_GW/v1/conversations" | jq -r .id)
[ -n "$conv" ] && [ "$conv" != null ] || fail "no conversation"

send() { # send CONTENT: one message through the gateway; must be acknowledged (202)
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		-d "{\"id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"conversation_id\":\"$conv\",\"content\":\"$1\"}" \
		"$SB_GW/v1/messages")
	[ "$code" = 202 ] || fail "send $1 answered $code"
}
list() { # list GATEWAY: the conversation's message contents in seq order, one a line
	curl -s -H "Authorization: Bearer $tok" "$1/v1/conversations/$conv/messages?limit=200" |
		jq -r '.items[].content'
}

for i in 1 2 3 4 5; do send "before-$i"; done
# The base backup, without WAL (-X none): the restore gets all of it from the archive.
pgo_basebackup "$pport" "$t/backup" -X none >"$t/basebackup.log" 2>&1 ||
	{ cat "$t/basebackup.log"; fail "pg_basebackup"; }
for i in 6 7 8 9 10; do send "before-$i"; done
sleep 1
target=$(pgo_psql "$pport" "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
echo "recovery target: $target"
sleep 1
for i in $(seq 1 10); do send "after-$i"; done
pgo_wait_archived "$pport" || fail "archiving"
[ "$(list "$SB_GW" | wc -l)" = 20 ] || fail "the primary does not list 20 messages"
echo "archived segments: $(ls "$arch" | wc -l)"

# The restore: a copy of the backup in a new directory, recovery.signal, the archive as
# restore_command, the target time, promotion at the target. No archiving from the copy.
mkdir -p "$t/restored"
cp -a "$t/backup/data" "$t/restored/data"
chown postgres:postgres "$t/restored"
chmod 700 "$t/restored"
pgo_conf "$t/restored" "archive_mode = off" "restore_command = 'cp $arch/%f %p'" \
	"recovery_target_time = '$target'" "recovery_target_action = 'promote'"
pgo_as touch "$t/restored/data/recovery.signal"
rport=$(sb_free_port)
pgo_start "$t/restored" "$rport" || fail "the restored cluster does not start"
n=300
until [ "$(pgo_psql "$rport" "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ]; do
	n=$((n - 1))
	[ $n -gt 0 ] || { tail -20 "$t/restored/server.log"; fail "recovery did not finish in 30 s"; }
	sleep 0.1
done
grep -E "recovery stopping before commit|restored log file" "$t/restored/server.log" | head -3

# Through the service: a new sb-messages on the restored cluster, the same gateway.
sb_svc_stop messages
sb_svc_start messages DATABASE_URL="postgresql://postgres@127.0.0.1:$rport/postgres"
sb_svc_wait_ready messages gateway || exit 1 # and the gateway reaches the new one
want=$(printf 'before-%s\n' $(seq 1 10))
got=$(list "$SB_GW")
if [ "$got" != "$want" ]; then
	echo "expected:"; echo "$want"; echo "restored:"; echo "$got"
	fail "the restored cluster does not hold exactly the messages before $target"
fi
# And in SQL, including the conversation's counter.
[ "$(pgo_psql "$rport" "SELECT count(*) || ' ' || max(seq) FROM messages.messages WHERE conversation_id = '$conv'")" = "10 10" ] ||
	fail "messages table after restore"
[ "$(pgo_psql "$rport" "SELECT last_seq FROM messages.conversations WHERE id = '$conv'")" = 10 ] ||
	fail "last_seq after restore"
# The restored cluster takes writes (promoted on a new timeline).
send "after-restore"
[ "$(list "$SB_GW" | tail -n 1)" = after-restore ] || fail "no write after the restore"
echo "PITR: restored to $target, 10 of 20 messages, exactly those before the target"
