#!/usr/bin/env bash
# The TLCP simulator of sb-ingest's tests (tests/ingest/sim.mjs) checked with the official
# Lightstreamer client (npm lightstreamer-client-node, TLCP 2.5.0): normal updates, LOOP and
# rebind, CONERR then success, SYNC, and a dropped WebSocket that the client recovers over HTTP
# polling (bind_session.txt with LS_recovery_from); every item's updates arrive once, in order,
# with the values the simulator meant (tests/ingest/sim_check.mjs).
# labels: ingest
set -u
root=${SB_SOURCE_ROOT:?}
if [ ! -d "$root/tests/ingest/node_modules/lightstreamer-client-node" ]; then
	echo "FAIL: tests/ingest/node_modules is missing: run tools/install-deps.sh"
	exit 1
fi
cd "$root/tests/ingest" && exec timeout 120 node sim_check.mjs
