# bench/pubsub/stack.sh: what bench/pubsub_bench.sh and bench/pubsub_profile.sh share, sourced
# after tools/stack.sh and tests/lib/services.sh inside with-stack (SB_TEST_TMP set).
#   pubsub_stack_start: auth, messages, pubsub and the gateway on free ports, the dev clients
#     seeded, $token an admin token and the topic "bench" (a direct queue) created; exits on
#     failure (the caller's name in the message is $bench_name).
#   and bench/lib/pg.sh's helpers (q, ticks, pg_pids, pg_ticks).
. "$SB_SOURCE_ROOT/bench/lib/pg.sh"

pubsub_stack_start() {
	sb_svc_ports gateway auth messages pubsub
	sb_svc_start auth SB_LOG_LEVEL=warn
	sb_svc_start messages SB_LOG_LEVEL=warn
	sb_svc_start pubsub SB_LOG_LEVEL=warn
	sb_svc_start gateway SB_LOG_LEVEL=warn SB_RATE_LIMIT_PER_MIN=100000000 SB_RPC_TIMEOUT_MS=10000
	sb_svc_wait_ready auth messages pubsub gateway || exit 1
	local creds=$SB_TEST_TMP/creds.json
	DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null || exit 1
	token=$(curl -s -u "$(jq -r .admin.client_id "$creds"):$(jq -r .admin.client_secret "$creds")" \
		-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
	[ ${#token} -gt 100 ] || { echo "$bench_name: no token"; exit 1; }
	curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		-d '{"name":"bench","type":"queue","default_strategy":"direct"}' "$SB_GW/api/v1/topics" ||
		{ echo "$bench_name: cannot create the topic"; exit 1; }
}
