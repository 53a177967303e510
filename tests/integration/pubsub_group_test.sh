#!/usr/bin/env bash
# sb-pubsub's group commit of concurrent publish batches (docs/pubsub.md "Group commit of
# batches"), through the gateway against real PostgreSQL: batches held behind a lock on their
# topic's row are stored by groups of several batches (pubsub_publish_group_size), never more
# rows than SB_PUBSUB_PUBLISH_GROUP_ROWS; a batch PostgreSQL refuses in a group fails alone; one
# new idempotency key in two batches of a group stores one message; a topic deleted while
# publishes race it leaves no message or delivery behind (migration 004 dropped the foreign
# keys that cascaded). Runs tests/pubsub/group.test.mjs.
# stack: pg,redis
# labels: pubsub,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
export SB_BUILD_ROOT=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
tmp=${SB_TEST_TMP:?}

sb_svc_ports gateway auth messages pubsub
sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000
sb_svc_start messages
sb_svc_start pubsub SB_PUBSUB_PUBLISH_GROUP_ROWS=32
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=10000000
sb_svc_wait_ready auth messages pubsub gateway || exit 1

cli() {
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" SB_AUTH_PBKDF2_ITERATIONS=100000 \
		"$SB_BUILD_ROOT/bin/sb-auth" "$@"
}
cli seed-dev --out "$tmp/creds.json" >/dev/null || { echo "FAIL: seed-dev"; exit 1; }
tok() { cli token issue --tenant "$1" --scopes "$2" --ttl 900 --user "$3"; }
admin=$(curl -s -u "$(jq -r .admin.client_id "$tmp/creds.json"):$(jq -r .admin.client_secret "$tmp/creds.json")" \
	-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
jq -n --arg admin "$admin" --arg produce "$(tok dev pubsub:produce alice)" \
	--arg consume "$(tok dev pubsub:consume alice)" \
	'{admin:$admin, produce:$produce, consume:$consume}' >"$tmp/tokens.json"
for k in admin produce consume; do
	[ "$(jq -r ".$k | length" "$tmp/tokens.json")" -gt 100 ] || { echo "FAIL: no $k token"; exit 1; }
done

export SB_GW SB_TOKENS=$tmp/tokens.json SB_PUBSUB_OPS=http://127.0.0.1:${SVC_OPS[pubsub]}
export PATH=$SB_TEST_PG_BIN:$PATH SB_TEST_PG_DSN
cd "$root/tests/pubsub" || exit 1
timeout 180 node --test --test-concurrency=1 group.test.mjs || {
	tail -n 30 "$tmp/logs/pubsub.log"
	exit 1
}

kill -TERM "${SVC_PID[pubsub]}"
wait "${SVC_PID[pubsub]}"
rc=$?
unset "SVC_PID[pubsub]"
[ $rc = 0 ] || { echo "FAIL: pubsub exit status $rc on SIGTERM"; tail -n 30 "$tmp/logs/pubsub.log"; exit 1; }
if grep -E 'Sanitizer|runtime error' "$tmp/logs/pubsub.log"; then
	echo "FAIL: pubsub's log has sanitizer reports"
	exit 1
fi
echo "pubsub_group_test: all passed"
