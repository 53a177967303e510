#!/usr/bin/env bash
# cdcsink fed by a producer that is not ours: Debezium's PostgreSQL connector (debezium-embedded
# 3.6.1.Final, tests/cdc/DbzSource.java, jars from Maven Central via tools/deps.d/cdcsink.sh)
# streams changes of a source table public.accounts (PostgreSQL with wal_level=logical) to Kafka
# in its flat JSON envelope; the sink replicates them into ext.accounts. The snapshot, then an
# insert, an update and a delete on the source reach the target field by field within 30 s.
# stack: pg,kafka
# labels: kafka,cdcsink
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/cdcsink.sh"
t0=$(date +%s)
dbz=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/debezium-3.6.1
[ -f "$dbz/classes/DbzSource.class" ] || { echo "FAIL: $dbz is missing: run tools/install-deps.sh"; exit 1; }
pgdir=$(dirname "$(dirname "$SB_TEST_PG_DIR")")

# Logical decoding for Debezium.
sb_pg_stop "$pgdir"
sb_pg_start "$pgdir" "$SB_TEST_PG_PORT" "-c wal_level=logical -c max_replication_slots=4 -c max_wal_senders=4 -c fsync=off" ||
	{ echo "FAIL: PostgreSQL with wal_level=logical"; exit 1; }
cdc_sql "CREATE TABLE public.accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), note text);
ALTER TABLE public.accounts REPLICA IDENTITY FULL;
INSERT INTO public.accounts VALUES (1, 'ann', 10.50, 'first'), (2, 'ben', 0, NULL);" >/dev/null

map=$SB_TEST_TMP/mapping.json
cat >"$map" <<'JSON'
{"tables": [{"topic": "dbz.public.accounts", "table": "ext.accounts", "format": "relational",
  "source": "public.accounts",
  "columns": [{"name": "id", "type": "bigint", "key": true}, {"name": "owner", "type": "text"},
   {"name": "balance", "type": "decimal"}, {"name": "note", "type": "text"}]}]}
JSON
cdc_start cdcsink "$map"
sb_svc_wait_ready cdcsink || exit 1

mkdir -p "$SB_TEST_TMP/dbz"
SB_DBZ_PG_PORT=$SB_TEST_PG_PORT SB_DBZ_PG_DB=postgres SB_DBZ_TABLES=public.accounts \
	SB_DBZ_BROKERS=$SB_TEST_KAFKA_BROKERS SB_DBZ_TOPIC_PREFIX=$CDC_PREFIX SB_DBZ_DIR=$SB_TEST_TMP/dbz \
	java -Xms32m -Xmx256m -XX:+UseSerialGC -cp "$dbz/classes:$dbz/libs/*" DbzSource \
	>"$SB_TEST_TMP/logs/dbz.log" 2>&1 &
dbz_pid=$!
trap 'kill $dbz_pid 2>/dev/null; wait $dbz_pid 2>/dev/null; sb_svc_stop_all' EXIT
q="SELECT string_agg(concat_ws('|', id, owner, balance, note), ';' ORDER BY id) FROM ext.accounts"
cdc_wait "$q" "1|ann|10.50|first;2|ben|0.00" 60 && echo "ok: the snapshot replicated"
rss=$(ps -o rss= -p $dbz_pid 2>/dev/null | tr -d ' ')
echo "Debezium source: RSS ${rss:-?} kB after the snapshot, $(($(date +%s) - t0)) s since the test began"

cdc_sql "INSERT INTO public.accounts VALUES (3, 'cy', 99.99, 'new')" >/dev/null
cdc_wait "$q" "1|ann|10.50|first;2|ben|0.00;3|cy|99.99|new" && echo "ok: insert replicated"
cdc_sql "UPDATE public.accounts SET balance = 11.25, note = NULL WHERE id = 1" >/dev/null
cdc_wait "$q" "1|ann|11.25;2|ben|0.00;3|cy|99.99|new" && echo "ok: update replicated"
cdc_sql "DELETE FROM public.accounts WHERE id = 2" >/dev/null
cdc_wait "$q" "1|ann|11.25;3|cy|99.99|new" && echo "ok: delete replicated"
cdc_check "tombstone of the delete" "$(cdc_sql "SELECT count(*) FROM ext._cdc_tomb_accounts WHERE id = 2")" 1
cdc_check "no validation errors" "$(cdc_sql "SELECT count(*) FROM cdcsink.validation_errors")" 0

cdc_stop_check cdcsink
echo "duration: $(($(date +%s) - t0)) s"
if [ $cdc_fails -gt 0 ]; then
	tail -20 "$SB_TEST_TMP/logs/dbz.log"
	grep -v '"msg":"request"' "$SB_TEST_TMP/logs/cdcsink.log" | tail -10
	echo "FAIL: $cdc_fails checks"
	exit 1
fi
echo "PASS: cdcsink fed by Debezium's PostgreSQL connector"
