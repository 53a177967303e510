#!/usr/bin/env bash
# cdcsink with PostgreSQL stopped and started again under load: 20,000 change events of 2,000
# rows of shop.users (make run's mapping) stream in while the sink applies them; PostgreSQL is
# stopped (fast shutdown) for 5 s in the middle. Then nothing is lost (every row holds its last
# version, field by field), nothing is applied twice (every event is counted exactly once,
# applied or recognised as already applied; the checkpoints cover exactly the 20,000 offsets),
# and the sink saw the outage (it retried behind its breaker).
# stack: pg,kafka
# labels: kafka,cdcsink,faults
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/cdcsink.sh"
t0=$(date +%s)
N=${SB_CDC_EVENTS:-20000}
K=2000
pgdir=$(dirname "$(dirname "$SB_TEST_PG_DIR")")

cdc_start cdcsink "" SB_CDCSINK_BATCH_MAX=500 SB_CDCSINK_BREAKER_OPEN_MS=500
sb_svc_wait_ready cdcsink || exit 1
cdc_wait "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'shop'" 2 || exit 1

now=$(($(date +%s%N) / 1000))
gen users "$N" "$K" $((now - 3600000000)) >"$SB_TEST_TMP/events"
# Slow the stream down a little so that the outage falls in the middle of it.
split -l 2000 "$SB_TEST_TMP/events" "$SB_TEST_TMP/part."
(for f in "$SB_TEST_TMP"/part.*; do cdc_produce cassandra.shop.users <"$f"; sleep 0.5; done) &
producer=$!

applied() { cdc_metric cdc_events_total 'outcome="applied"' cdcsink; }
for _ in $(seq 1 150); do [ "$(applied)" -ge 2000 ] && break; sleep 0.1; done
before=$(applied)
echo "stopping PostgreSQL after $before applied events"
sb_pg_stop "$pgdir"
sleep 5
during=$(applied)
sb_pg_start "$pgdir" "$SB_TEST_PG_PORT" "-c fsync=off -c synchronous_commit=off" || { echo "FAIL: PostgreSQL did not start again"; exit 1; }
echo "PostgreSQL started again ($during applied events when it came back)"
wait $producer

# Nothing lost: each row holds the name of its last event (version N/K - 1).
last=$((N / K - 1))
cdc_wait "SELECT count(*) FROM shop.users WHERE name = 'n' || (('x' || substr(replace(id::text, '-', ''), 25, 8))::bit(32)::int - 1) || '-$last'" $K 90 &&
	echo "ok: every row holds its last version"
cdc_check "rows" "$(cdc_sql "SELECT count(*) FROM shop.users")" $K
cdc_check "a row field by field" "$(PGTZ=UTC cdc_sql "SELECT concat_ws('|', name, email, age, tags::text, updated_at::text) FROM shop.users WHERE id = '00000000-0000-0000-0000-000000000007'")" \
	"n6-$last|u6@example.org|$last|{t$((last % 3))}|$(PGTZ=UTC cdc_sql "SELECT (timestamptz 'epoch' + interval '1 millisecond' * $((1700000000000 + N - K + 6)))::text")"
# Nothing applied twice: every event counted once; the checkpoints cover every offset once.
total=$(cdc_metric cdc_events_total 'table="shop.users"' cdcsink)
cdc_check "events counted once each" "$total" "$N"
cdc_check "checkpoints cover every offset" "$(cdc_sql "SELECT sum(next_offset) FROM cdcsink._cdc_checkpoints")" "$N"
errs=$(cdc_metric cdc_errors_total '' cdcsink)
[ "$errs" -gt 0 ] && echo "ok: the sink saw the outage ($errs failed attempts)" ||
	{ echo "FAIL: the sink never saw PostgreSQL down"; cdc_fails=$((cdc_fails + 1)); }
[ "$during" -le $((before + 500)) ] && echo "ok: nothing was applied while PostgreSQL was down" ||
	{ echo "FAIL: $((during - before)) events applied while PostgreSQL was down?"; cdc_fails=$((cdc_fails + 1)); }
echo "applied $(applied), skipped $(cdc_metric cdc_events_total 'outcome="skipped"' cdcsink) (already applied when retried)"
cdc_stop_check cdcsink
echo "duration: $(($(date +%s) - t0)) s"
if [ $cdc_fails -gt 0 ]; then
	grep -v '"msg":"request"' "$SB_TEST_TMP/logs/cdcsink.log" | tail -20
	echo "FAIL: $cdc_fails checks"
	exit 1
fi
echo "PASS: cdcsink PostgreSQL restart"
