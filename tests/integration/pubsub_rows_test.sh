#!/usr/bin/env bash
# it_pubsub_test and it_pubsub_group_test with SB_PUBSUB_CURSOR=false: every subscription keeps
# a row per delivery (mode 'rows'), as before migration 007, so that both of the store's paths
# pass the same tests (docs/pubsub.md "Cursor subscriptions"). The default run has cursor
# subscriptions wherever a subscription can be one.
# stack: pg,redis
# labels: pubsub,e2e
set -u
root=${SB_SOURCE_ROOT:?}
export SB_PUBSUB_CURSOR=false
bash "$root/tests/integration/pubsub_test.sh" || exit 1
# the group test on services of its own (the first script's are stopped at its end)
export SB_TEST_TMP=$SB_TEST_TMP/group
mkdir -p "$SB_TEST_TMP/logs"
bash "$root/tests/integration/pubsub_group_test.sh"
