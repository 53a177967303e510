#!/usr/bin/env bash
# sb-pubsub's group commit of concurrent publish batches (docs/pubsub.md "Group commit of
# publishes"), through the gateway against real PostgreSQL: batches held behind a lock on their
# topic's row are stored by groups of several batches (pubsub_publish_group_size), never more
# rows than SB_PUBSUB_PUBLISH_GROUP_ROWS; a batch PostgreSQL refuses in a group fails alone; one
# new idempotency key in four batches of a group stores one message; a topic deleted while
# publishes race it leaves no message or delivery behind (migration 004 dropped the foreign
# keys that cascaded), and retention deletes the deliveries of the messages it deletes. Runs
# tests/pubsub/group.test.mjs.
# stack: pg,redis
# labels: pubsub,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
export SB_BUILD_ROOT=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
tmp=${SB_TEST_TMP:?}

. "$root/tests/pubsub/stack.sh"
ps_stack_start SB_PUBSUB_PUBLISH_GROUP_ROWS=32 SB_PUBSUB_RETENTION_PASS_MS=200
export PATH=$SB_TEST_PG_BIN:$PATH SB_TEST_PG_DSN
cd "$root/tests/pubsub" || exit 1
timeout 180 node --test --test-concurrency=1 group.test.mjs || {
	tail -n 30 "$tmp/logs/pubsub.log"
	exit 1
}
ps_stop_pubsub
echo "pubsub_group_test: all passed"
