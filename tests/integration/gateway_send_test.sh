#!/usr/bin/env bash
# POST /v1/messages through the gateway and the real messages service, with the gateway's
# sends batched one batch at a time (SB_RPC_BATCH_IN_FLIGHT=1, so that a burst certainly
# shares batches): every concurrent send gets its own answer (tests/edge/send.test.mjs).
# stack: pg,redis
# labels: messages,e2e
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"

sb_svc_ports gateway auth messages
sb_svc_start auth
sb_svc_start messages
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=100000 SB_RPC_BATCH_IN_FLIGHT=1
sb_svc_wait_ready auth messages gateway || exit 1

creds=$SB_TEST_TMP/dev-credentials.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	{ echo "FAIL: seed-dev"; exit 1; }

cd "$root/tests/edge" || exit 1
SB_GW=$SB_GW SB_CREDENTIALS=$creds SB_GW_OPS=http://127.0.0.1:${SVC_OPS[gateway]} \
	SB_MSG_OPS=http://127.0.0.1:${SVC_OPS[messages]} timeout 120 node --test send.test.mjs
