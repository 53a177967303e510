#!/usr/bin/env bash
# cdcsink against real PostgreSQL and the shared Apache Kafka broker, with events in the shape
# of Debezium's Cassandra connector and of its flat relational envelope (tests/cdc/gen.py):
# insert/update/delete reach PostgreSQL field by field; every mapped Cassandra type round-trips;
# an older update arriving late does not win; a delete then a late older insert stays deleted;
# dirty data goes to cassandra.cdc.validation_errors (and the table) while valid events go on; a
# new nullable column is added; a breaking change quarantines its table only; a stale event is
# audited and skipped; an event that always fails reaches cassandra.cdc.dlq after 10 attempts,
# and the DLQ processor exports it, while it re-enqueues a transient record's event.
# stack: pg,kafka
# labels: kafka,cdcsink
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/cdcsink.sh"
export PGTZ=UTC
t0=$(date +%s)

map=$SB_TEST_TMP/mapping.json
cat >"$map" <<'JSON'
{"tables": [
 {"topic": "cassandra.shop.users", "table": "shop.users", "source": "shop.users", "pii": ["email"],
  "columns": [{"name": "id", "type": "uuid", "key": true}, {"name": "name", "type": "text"},
   {"name": "email", "type": "text"}, {"name": "age", "type": "int"},
   {"name": "tags", "type": "set<text>"}, {"name": "updated_at", "type": "timestamp"}]},
 {"topic": "cassandra.shop.types", "table": "shop.types", "source": "shop.types",
  "columns": [{"name": "id", "type": "uuid", "key": true}, {"name": "tu", "type": "timeuuid"},
   {"name": "t", "type": "text"}, {"name": "vc", "type": "varchar"}, {"name": "a", "type": "ascii"},
   {"name": "ti", "type": "tinyint"}, {"name": "si", "type": "smallint"}, {"name": "i", "type": "int"},
   {"name": "bi", "type": "bigint"}, {"name": "vi", "type": "varint"}, {"name": "de", "type": "decimal"},
   {"name": "f", "type": "float"}, {"name": "d", "type": "double"}, {"name": "b", "type": "boolean"},
   {"name": "ts", "type": "timestamp"}, {"name": "dt", "type": "date"}, {"name": "tm", "type": "time"},
   {"name": "du", "type": "duration"}, {"name": "bl", "type": "blob"}, {"name": "ip", "type": "inet"},
   {"name": "li", "type": "list<int>"}, {"name": "st", "type": "set<text>"},
   {"name": "nested", "type": "list<frozen<list<int>>>"}, {"name": "mp", "type": "map<text, int>"},
   {"name": "tp", "type": "tuple<int, text>"}, {"name": "ud", "type": "udt<address>"},
   {"name": "ct", "type": "counter"}]},
 {"topic": "cassandra.shop.orders", "table": "shop.orders", "source": "shop.orders",
  "columns": [{"name": "id", "type": "uuid", "key": true}, {"name": "qty", "type": "int"}]},
 {"topic": "dbz.public.accounts", "table": "ext.accounts", "format": "relational",
  "source": "public.accounts",
  "columns": [{"name": "id", "type": "bigint", "key": true}, {"name": "owner", "type": "text"},
   {"name": "balance", "type": "decimal"}]}
]}
JSON

# A bad mapping is a configuration error naming the variable (exit 2 at start, 1 for --check-config).
echo '{"tables":[{"topic":"t","table":"a.b","columns":[{"name":"id","type":"integer","key":true}]}]}' >"$SB_TEST_TMP/bad.json"
out=$(SB_CDCSINK_MAPPING=$SB_TEST_TMP/bad.json "$SB_BUILD_ROOT/bin/sb-cdcsink" --check-config 2>&1)
cdc_check "bad mapping refused" "$? $(grep -c 'SB_CDCSINK_MAPPING: t: column 0: unknown type' <<<"$out")" "1 2"
cdc_check "mapping accepted" "$(SB_CDCSINK_MAPPING=$map "$SB_BUILD_ROOT/bin/sb-cdcsink" --check-config 2>&1)" "sb-cdcsink: configuration OK"

cdc_start cdcsink "$map" SB_CDCSINK_BATCH_MAX=500
sb_svc_wait_ready cdcsink || exit 1
cdc_wait "SELECT count(*) FROM information_schema.tables WHERE table_schema IN ('shop','ext')" 8 30 ||
	{ tail -20 "$SB_TEST_TMP/logs/cdcsink.log"; exit 1; }

now=$(($(date +%s%N) / 1000))
U1=11111111-1111-4111-8111-111111111111
U2=22222222-2222-4222-8222-222222222222
U3=33333333-3333-4333-8333-333333333333
row() { # row ID NAME EMAIL AGE TAGS_JSON UPDATED_MS
	printf '{"id":"%s","name":"%s","email":"%s","age":%s,"tags":%s,"updated_at":%s}' "$@"
}
users_q() { echo "SELECT concat_ws('|', name, email, age, tags::text, updated_at::text) FROM shop.users WHERE id = '$1'"; }

# 1. insert, update, delete, field by field.
gen cass c $((now - 900000)) shop users id "$(row $U1 ann ann@x.org 30 '["a","b"]' 1700000000000)" | cdc_produce cassandra.shop.users
cdc_wait "$(users_q $U1)" "ann|ann@x.org|30|{a,b}|2023-11-14 22:13:20+00" && echo "ok: insert applied"
gen cass u $((now - 800000)) shop users id '{"id":"'$U1'","name":"anne","age":31}' email,tags,updated_at | cdc_produce cassandra.shop.users
cdc_wait "$(users_q $U1)" "anne|ann@x.org|31|{a,b}|2023-11-14 22:13:20+00" && echo "ok: partial update applied, unset cells kept"
gen cass u $((now - 700000)) shop users id "$(row $U1 anna anna@x.org 32 '[]' 1700000001000)" | cdc_produce cassandra.shop.users
cdc_wait "$(users_q $U1)" "anna|anna@x.org|32|{}|2023-11-14 22:13:21+00" && echo "ok: full update applied"
gen cass d $((now - 600000)) shop users id '{"id":"'$U1'"}' | cdc_produce cassandra.shop.users
cdc_wait "SELECT count(*) FROM shop.users WHERE id = '$U1'" 0 && echo "ok: delete applied"
cdc_check "tombstone of the delete" "$(cdc_sql "SELECT _cdc_version FROM shop._cdc_tomb_users WHERE id = '$U1'")" $((now - 600000))

# 2. an older update arriving after a newer one does not win.
gen cass c $((now - 500000)) shop users id "$(row $U2 bob b@x.org 40 '["x"]' 1700000000000)" | cdc_produce cassandra.shop.users
gen cass u $((now - 300000)) shop users id "$(row $U2 bobby b@x.org 41 '["x"]' 1700000000000)" | cdc_produce cassandra.shop.users
cdc_wait "SELECT name FROM shop.users WHERE id = '$U2'" bobby
gen cass u $((now - 400000)) shop users id "$(row $U2 robert b@x.org 99 '["x"]' 1700000000000)" | cdc_produce cassandra.shop.users
# A marker event after it proves the late one was consumed before we look.
gen cass c $((now - 100000)) shop users id "$(row $U3 mark m@x.org 1 '[]' 1700000000000)" | cdc_produce cassandra.shop.users
cdc_wait "SELECT count(*) FROM shop.users WHERE id = '$U3'" 1
cdc_check "older update did not win" "$(cdc_sql "SELECT name || ' ' || age FROM shop.users WHERE id = '$U2'")" "bobby 41"

# 3. delete, then a late insert of an older version: stays deleted; a newer insert comes back.
gen cass d $((now - 200000)) shop users id '{"id":"'$U2'"}' | cdc_produce cassandra.shop.users
cdc_wait "SELECT count(*) FROM shop.users WHERE id = '$U2'" 0
gen cass c $((now - 250000)) shop users id "$(row $U2 zombie z@x.org 5 '[]' 1700000000000)" | cdc_produce cassandra.shop.users
gen cass u $((now - 90000)) shop users id '{"id":"'$U3'","age":2}' name,email,tags,updated_at | cdc_produce cassandra.shop.users
cdc_wait "SELECT age FROM shop.users WHERE id = '$U3'" 2
cdc_check "late older insert did not resurrect" "$(cdc_sql "SELECT count(*) FROM shop.users WHERE id = '$U2'")" 0
gen cass c $((now - 50000)) shop users id "$(row $U2 back b@x.org 7 '[]' 1700000000000)" | cdc_produce cassandra.shop.users
cdc_wait "SELECT name FROM shop.users WHERE id = '$U2'" back && echo "ok: newer insert after the delete applied"

# 4. every type round-trips.
T1=44444444-4444-4444-8444-444444444444
types_row='{"id":"'$T1'","tu":"e2fc7660-9f66-11ee-8c90-0242ac120002","t":"h\u00e9llo \u2713 \"q\"","vc":"v","a":"plain",
"ti":-128,"si":32767,"i":-2147483648,"bi":9223372036854775807,"vi":"123456789012345678901234567890",
"de":"-12345.678900","f":1.5,"d":2.718281828459045,"b":true,"ts":1700000000123,"dt":19675,
"tm":3723000004000,"du":"P1DT2H","bl":"AQID/w==","ip":"2001:db8::1","li":[1,2,3],"st":["a","b c"],
"nested":[[1,2],[3]],"mp":{"x":1,"y":2},"tp":{"field1":1,"field2":"z"},"ud":{"street":"Main","no":5},"ct":42}'
gen cass c $((now - 80000)) shop types id "$(tr -d '\n' <<<"$types_row")" | cdc_produce cassandra.shop.types
want='e2fc7660-9f66-11ee-8c90-0242ac120002|héllo ✓ "q"|v|plain|-128|32767|-2147483648|9223372036854775807|123456789012345678901234567890|-12345.678900|1.5|2.718281828459045|t|2023-11-14 22:13:20.123+00|2023-11-14|01:02:03.000004|1 day 02:00:00|\x010203ff|2001:db8::1|{1,2,3}|{a,"b c"}|[[1, 2], [3]]|{"x": 1, "y": 2}|[1, "z"]|{"no": 5, "street": "Main"}|42'
cdc_wait "SELECT concat_ws('|', tu, t, vc, a, ti, si, i, bi, vi, de, f, d, b, ts, dt, tm, du, bl, ip, li, st, nested, mp, tp, ud, ct) FROM shop.types WHERE id = '$T1'" "$want" &&
	echo "ok: every type round-trips"
cdc_check "column types" "$(cdc_sql "SELECT string_agg(data_type, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'shop' AND table_name = 'types'")" \
	"uuid,uuid,text,text,text,smallint,smallint,integer,bigint,numeric,numeric,real,double precision,boolean,timestamp with time zone,date,time without time zone,interval,bytea,inet,ARRAY,ARRAY,jsonb,jsonb,jsonb,jsonb,bigint,bigint,timestamp with time zone"

# 5. the relational envelope (Debezium's PostgreSQL connector shape).
gen rel c $((now - 70000)) public accounts id null '{"id":7,"owner":"ann","balance":"10.50"}' | cdc_produce dbz.public.accounts
gen rel u $((now - 60000)) public accounts id '{"id":7,"owner":"ann","balance":"10.50"}' '{"id":7,"owner":"ann","balance":"99.99"}' | cdc_produce dbz.public.accounts
gen rel c $((now - 60000)) public accounts id null '{"id":8,"owner":"ben","balance":"1"}' | cdc_produce dbz.public.accounts
gen rel d $((now - 50000)) public accounts id '{"id":8,"owner":"ben","balance":"1"}' null | cdc_produce dbz.public.accounts
cdc_wait "SELECT string_agg(id || ' ' || owner || ' ' || balance, ',' ORDER BY id) FROM ext.accounts" "7 ann 99.99" &&
	echo "ok: relational envelope applied"

# 6. dirty data: isolated, recorded, and the valid event after it applied.
D1=55555555-5555-4555-8555-555555555555
{
	echo '{"id":"x"}|this is not json'
	gen cass c $((now - 40000)) shop users id '{"id":"not-a-uuid","name":"bad"}'
	echo '{"id":"'$D1'"}|{"source":{"keyspace":"shop","table":"users","ts_us":1},"after":{}}'
	gen cass c $((now - 40000)) shop users id '{"id":"'$D1'","age":3000000000}'
	gen cass c $((now - 40000)) shop users id "$(row $D1 clean c@x.org 20 '[]' 1700000000000)"
} | cdc_produce cassandra.shop.users
cdc_wait "SELECT name FROM shop.users WHERE id = '$D1'" clean && echo "ok: valid event after dirty ones applied"
cdc_wait "SELECT count(*) FROM cdcsink.validation_errors WHERE target_table = 'shop.users'" 4 &&
	echo "ok: dirty events recorded"
cdc_wait "SELECT string_agg(split_part(reason, ':', 1), ';' ORDER BY split_part(reason, ':', 1)) FROM cdcsink.validation_errors WHERE target_table = 'shop.users'" \
	'"op" must be one of c, u, r, d;column age (int);column id (uuid);not JSON'
n=$(cdc_read cassandra.cdc.validation_errors | grep -c '"kind":"validation"')
cdc_check "validation topic records" "$n" 4
# A Kafka tombstone (null value, as Debezium writes after a delete) is not dirty data.
echo '{"id":"'$D1'"}|' | kcat -P -b "$SB_TEST_KAFKA_BROKERS" -t "${CDC_PREFIX}cassandra.shop.users" -K '|' -Z
gen cass u $((now - 35000)) shop users id '{"id":"'$D1'","age":19}' name,email,tags,updated_at | cdc_produce cassandra.shop.users
cdc_wait "SELECT age FROM shop.users WHERE id = '$D1'" 19
cdc_check "a Kafka tombstone is no validation error" "$(cdc_sql "SELECT count(*) FROM cdcsink.validation_errors WHERE target_table = 'shop.users'")" 4
grep -q 'anna@x.org' "$SB_TEST_TMP/logs/cdcsink.log" && { echo "FAIL: a PII value reached the log"; cdc_fails=$((cdc_fails + 1)); }

# 7. a new nullable column is added and filled.
gen cass u $((now - 30000)) shop users id '{"id":"'$D1'","nickname":"cc","score":1.5}' name,email,age,tags,updated_at | cdc_produce cassandra.shop.users
cdc_wait "SELECT nickname || ' ' || score FROM shop.users WHERE id = '$D1'" "cc 1.5" && echo "ok: additive columns applied"
cdc_check "schema changes counted" "$(cdc_metric schema_changes_detected_total shop.users cdcsink)" 2

# 8. breaking change: a key column missing / a type change quarantines shop.orders only.
O1=66666666-6666-4666-8666-666666666666
gen cass c $((now - 30000)) shop orders id '{"id":"'$O1'","qty":1}' | cdc_produce cassandra.shop.orders
cdc_wait "SELECT qty FROM shop.orders WHERE id = '$O1'" 1
gen cass u $((now - 20000)) shop orders id '{"id":"'$O1'","qty":"many"}' | cdc_produce cassandra.shop.orders
gen cass u $((now - 10000)) shop orders id '{"id":"'$O1'","qty":5}' | cdc_produce cassandra.shop.orders
gen cass u $((now - 10000)) shop users id '{"id":"'$D1'","age":21}' name,email,tags,updated_at,nickname,score | cdc_produce cassandra.shop.users
cdc_wait "SELECT age FROM shop.users WHERE id = '$D1'" 21 && echo "ok: other tables go on during a quarantine"
cdc_wait "SELECT count(*) FROM cdcsink.validation_errors WHERE target_table = 'shop.orders' AND reason LIKE 'table quarantined:%'" 2 &&
	echo "ok: breaking change quarantined the table"
cdc_check "quarantined table unchanged" "$(cdc_sql "SELECT qty FROM shop.orders WHERE id = '$O1'")" 1
grep -q '"level":"error".*breaking schema change' "$SB_TEST_TMP/logs/cdcsink.log" && echo "ok: ERROR log of the quarantine" ||
	{ echo "FAIL: no ERROR log of the quarantine"; cdc_fails=$((cdc_fails + 1)); }

# 9. staleness: an event 8 days old is audited and skipped.
S1=77777777-7777-4777-8777-777777777777
gen cass c $((now - 8 * 86400 * 1000000)) shop users id "$(row $S1 old o@x.org 1 '[]' 1700000000000)" | cdc_produce cassandra.shop.users
gen cass u $((now - 5000)) shop users id '{"id":"'$D1'","age":22}' name,email,tags,updated_at,nickname,score | cdc_produce cassandra.shop.users
cdc_wait "SELECT age FROM shop.users WHERE id = '$D1'" 22
cdc_check "stale event skipped" "$(cdc_sql "SELECT count(*) FROM shop.users WHERE id = '$S1'")" 0
cdc_check "stale event audited" "$(cdc_read cassandra.cdc.staleness_audit | grep -c "$S1")" 1

# 10. an event that always fails (a CHECK the source does not know) reaches the DLQ after 10
# attempts; the events around it are applied.
cdc_sql "ALTER TABLE shop.users ADD CONSTRAINT age_sane CHECK (age < 150)" >/dev/null
P1=88888888-8888-4888-8888-888888888888
P2=99999999-9999-4999-8999-999999999999
{
	gen cass c $((now - 4000)) shop users id "$(row $P1 poison p@x.org 200 '[]' 1700000000000)"
	gen cass c $((now - 3000)) shop users id "$(row $P2 fine f@x.org 20 '[]' 1700000000000)"
} | cdc_produce cassandra.shop.users
cdc_wait "SELECT name FROM shop.users WHERE id = '$P2'" fine
n=0
for _ in $(seq 1 100); do
	n=$(cdc_read cassandra.cdc.dlq | grep -c "$P1")
	[ "$n" -ge 1 ] && break
	sleep 0.3
done
cdc_check "poison event in the DLQ" "$n" 1
rec=$(cdc_read cassandra.cdc.dlq | grep "$P1" | head -1)
cdc_check "DLQ record attempts" "$(jq -r .attempts <<<"$rec")" 10
cdc_check "DLQ record error" "$(jq -r '.reason | test("age_sane")' <<<"$rec")" true
cdc_check "DLQ record keeps the event" "$(jq -r '.event | fromjson | .op' <<<"$rec")" c
cdc_check "poison row absent" "$(cdc_sql "SELECT count(*) FROM shop.users WHERE id = '$P1'")" 0
cdc_check "dlq metric" "$(cdc_metric cdc_dlq_events_total '' cdcsink)" 1
cdc_check "DLQ record category" "$(jq -r '.sqlstate + " " + .category' <<<"$rec")" "23514 permanent"

# 11. The DLQ processor: the permanent record is exported; a transient one (a deadlock, written
# here as the sink would) has its event re-enqueued and applied.
dlq() {
	env KAFKA_BROKERS="$SB_TEST_KAFKA_BROKERS" SB_KAFKA_TOPIC_PREFIX="$CDC_PREFIX" \
		"$SB_BUILD_ROOT/bin/sb-cdcsink" dlq --export "$SB_TEST_TMP/export.jsonl" --idle-ms 3000 2>&1 | tee -a "$SB_TEST_TMP/logs/dlq.log" | grep "^dlq:"
}
cdc_check "DLQ processor, first run" "$(dlq)" "dlq: 1 records: 0 re-enqueued to their topics, 1 exported to $SB_TEST_TMP/export.jsonl"
cdc_check "exported record" "$(jq -r '.event | fromjson | .after.id.value' "$SB_TEST_TMP/export.jsonl")" "$P1"
P3=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
ev=$(gen cass c $((now - 2000)) shop users id "$(row $P3 retried r@x.org 30 '[]' 1700000000000)" | cut -d'|' -f2-)
jq -nc --arg e "$ev" --arg t "${CDC_PREFIX}cassandra.shop.users" \
	'{id: "synthetic", kind: "dlq", topic: $t, sqlstate: "40P01", category: "transient", attempts: 10, reason: "deadlock detected", event: $e}' |
	sed "s/^/{\"id\":\"$P3\"}|/" | cdc_produce cassandra.cdc.dlq
cdc_check "DLQ processor, second run" "$(dlq)" "dlq: 1 records: 1 re-enqueued to their topics, 0 exported to $SB_TEST_TMP/export.jsonl"
cdc_wait "SELECT name FROM shop.users WHERE id = '$P3'" retried && echo "ok: re-enqueued event applied"

# Checkpoints cover every partition written, and nothing is pending.
cdc_check "metrics pass promtool" "$(curl -s "http://127.0.0.1:${SVC_OPS[cdcsink]}/metrics" | promtool check metrics >/dev/null 2>&1 && echo ok)" ok
cdc_stop_check cdcsink
echo "duration: $(($(date +%s) - t0)) s"
if [ $cdc_fails -gt 0 ]; then
	grep -v "invalid change event" "$SB_TEST_TMP/logs/cdcsink.log" | tail -30
	echo "FAIL: $cdc_fails checks"
	exit 1
fi
echo "PASS: cdcsink apply"
