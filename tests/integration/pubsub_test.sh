#!/usr/bin/env bash
# sb-pubsub through the gateway, against real PostgreSQL: topics API, publish/consume/ack/nack,
# deadline expiry and backoff, DLQ and replay, every routing strategy with several consumers,
# content filters, exactly-once under concurrent consumers and duplicate publishes, ordering
# keys, authorization per scope and tenant (tests/pubsub/api.test.mjs); then a restart of
# pubsub (SIGKILL) and of PostgreSQL (immediate stop, i.e. a crash) between publish and consume
# loses no acknowledged publish (tests/pubsub/restart.mjs). Batch publish: tests/pubsub/batch.test.mjs.
# Acks and consume in one request (POST /api/v1/messages/consume/{topic}, min): tests/pubsub/stream.test.mjs.
# The shared connection pool (long polls wait without a connection): tests/pubsub/pool.mjs.
# stack: pg,redis
# labels: pubsub,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
export SB_BUILD_ROOT=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
tmp=${SB_TEST_TMP:?}

# Short backoff, lease and retention timers so that they are seen within seconds (docs/pubsub.md).
ps_env=(SB_PUBSUB_BACKOFF_BASE_MS=200 SB_PUBSUB_BACKOFF_MAX_MS=3200 SB_PUBSUB_REAPER_MS=50
	SB_PUBSUB_CONSUMER_TTL_MS=5000 SB_PUBSUB_RETENTION_PASS_MS=200)
# The registry validates publishes to topics with a schema subject.
sb_svc_ports gateway auth messages pubsub registry
sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000
sb_svc_start messages
sb_svc_start registry
sb_svc_start pubsub "${ps_env[@]}"
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=10000000
sb_svc_wait_ready auth messages registry pubsub gateway || exit 1

cli() {
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" SB_AUTH_PBKDF2_ITERATIONS=100000 \
		"$SB_BUILD_ROOT/bin/sb-auth" "$@"
}
cli seed-dev --out "$tmp/creds.json" >/dev/null || { echo "FAIL: seed-dev"; exit 1; }
cli user create --tenant other --name carol >/dev/null || { echo "FAIL: user create"; exit 1; }
tok() { cli token issue --tenant "$1" --scopes "$2" --ttl 900 --user "$3"; }
admin=$(curl -s -u "$(jq -r .admin.client_id "$tmp/creds.json"):$(jq -r .admin.client_secret "$tmp/creds.json")" \
	-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
jq -n --arg admin "$admin" \
	--arg produce "$(tok dev pubsub:produce alice)" \
	--arg consume "$(tok dev pubsub:consume alice)" \
	--arg messages "$(tok dev 'messages:read messages:write' bob)" \
	--arg other "$(tok other 'pubsub:admin pubsub:produce pubsub:consume' carol)" \
	'{admin:$admin, produce:$produce, consume:$consume, messages:$messages, other:$other}' \
	>"$tmp/tokens.json"
for k in admin produce consume other; do
	[ "$(jq -r ".$k | length" "$tmp/tokens.json")" -gt 100 ] || { echo "FAIL: no $k token"; exit 1; }
done

export SB_GW SB_TOKENS=$tmp/tokens.json SB_PUBSUB_OPS=http://127.0.0.1:${SVC_OPS[pubsub]}
cd "$root/tests/pubsub" || exit 1
# With cursor subscriptions on, the generic tests' topics get the strategy direct (cursor ones);
# pubsub_rows_test.sh runs them with the queue default (round_robin) and every mode 'rows'.
[ "${SB_PUBSUB_CURSOR:-true}" = false ] || export SB_PS_TEST_STRATEGY=direct
timeout 300 node --test --test-concurrency=1 api.test.mjs batch.test.mjs stream.test.mjs cursor.test.mjs || {
	tail -n 30 "$tmp/logs/pubsub.log"
	exit 1
}

# Both of the store's paths ran (migration 007): with SB_PUBSUB_CURSOR on (the default), the
# tests made cursor subscriptions (direct, fan_out) and per-delivery ones (the others); with it
# off (pubsub_rows_test.sh), only per-delivery ones.
modes=$("$SB_TEST_PG_BIN/psql" -X -At -F ' ' "$SB_TEST_PG_DSN" -c \
	"SELECT count(*) FILTER (WHERE mode = 'cursor'), count(*) FILTER (WHERE mode = 'rows') FROM pubsub.subscriptions")
read -r n_cursor n_rows <<<"$modes"
echo "subscriptions made by the tests: $n_cursor cursor, $n_rows rows (SB_PUBSUB_CURSOR=${SB_PUBSUB_CURSOR:-true})"
if [ "${SB_PUBSUB_CURSOR:-true}" = false ]; then
	[ "$n_cursor" = 0 ] && [ "$n_rows" -gt 20 ] || { echo "FAIL: subscription modes with SB_PUBSUB_CURSOR=false"; exit 1; }
else
	[ "$n_cursor" -ge 10 ] && [ "$n_rows" -ge 10 ] || { echo "FAIL: the tests did not exercise both modes"; exit 1; }
fi

# A restart of the service and of its store between publish and consume loses nothing.
timeout 60 node restart.mjs publish "$tmp/restart.json" || exit 1
kill -KILL "${SVC_PID[pubsub]}"
wait "${SVC_PID[pubsub]}" 2>/dev/null
unset "SVC_PID[pubsub]"
runuser -u postgres -- "$SB_TEST_PG_BIN/pg_ctl" -D "$SB_TEST_PG_DIR" -m immediate -w stop >/dev/null ||
	{ echo "FAIL: cannot stop PostgreSQL"; exit 1; }
pgdir=$(dirname "$SB_TEST_PG_DIR")
runuser -u postgres -- "$SB_TEST_PG_BIN/pg_ctl" -D "$SB_TEST_PG_DIR" -w -t 30 -l "$pgdir/server.log" \
	-o "-p $SB_TEST_PG_PORT -c listen_addresses=127.0.0.1 -k $pgdir -c max_connections=300 -c fsync=off" \
	start >/dev/null || { echo "FAIL: cannot start PostgreSQL"; exit 1; }
echo "pubsub killed and PostgreSQL crashed and restarted"
# Restarted with one database connection: the verify and pool.mjs run with the handlers sharing it.
sb_svc_start pubsub "${ps_env[@]}" SB_PUBSUB_DB_CONNECTIONS=1
sb_svc_wait_ready pubsub gateway || exit 1 # and the gateway reaches the new one
timeout 60 node restart.mjs verify "$tmp/restart.json" || exit 1
timeout 30 node pool.mjs || exit 1

# SIGTERM: pubsub exits 0 (under ASan/UBSan also: no leak, no report) and logged no error.
. "$root/tests/pubsub/stack.sh"
ps_stop_pubsub
echo "pubsub_test: all passed"
