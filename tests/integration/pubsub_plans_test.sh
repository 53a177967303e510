#!/usr/bin/env bash
# The plans of sb-pubsub's statements never read deliveries, messages or acked_deliveries whole
# (but the topic metrics') (docs/pubsub.md "No index on seq"). Each is prepared on a connection
# with pubsub's own options (ps_pg_opts, read from store.c) and plan_cache_mode
# force_generic_plan, against the schema sb-pubsub migrated and with those tables empty: the
# moment a connection's generic plan is most likely to pick a sequential scan, which it then
# keeps for the connection's life. A plan with "Seq Scan on" one of them fails the test. The
# same statements without enable_seqscan=off must show such a scan at least once, so the test
# shows that the setting is what prevents it (if PostgreSQL stops choosing those scans, that
# check fails and this test needs a look). The topic metrics, which should scan, must.
# stack: pg,redis
# labels: pubsub,e2e
set -u
root=${SB_SOURCE_ROOT:?}
export SB_BUILD_ROOT=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/pubsub_sql.sh"
tmp=${SB_TEST_TMP:?}

. "$root/tests/pubsub/stack.sh"
ps_stack_start

# Every statement of store.c but the topic metrics, which should scan (checked below).
hot=$(ps_stmt_names | grep -vx 'topic_sub_metrics\|topic_msg_metrics' | tr '\n' ' ')
[ "$(wc -w <<<"$hot")" -ge 25 ] || { echo "FAIL: statement names not read from store.c: '$hot'"; exit 1; }
opts=$(ps_conn_options)
case " $opts " in *" -c search_path=pubsub "*) ;; *) echo "FAIL: ps_pg_opts not read from store.c: '$opts'"; exit 1 ;; esac

# literal TYPE: a value of TYPE for EXECUTE (a generic plan does not depend on it).
literal() {
	case $1 in
	*'[]') echo "'{}'" ;;
	uuid) echo "'00000000-0000-7000-8000-000000000000'" ;;
	bigint | integer | smallint | 'double precision' | numeric) echo "'1'" ;;
	boolean) echo "'false'" ;;
	json | jsonb) echo "'{}'" ;;
	*) echo "'x'" ;;
	esac
}

# plans OPTIONS: every hot statement's generic plan under PGOPTIONS=OPTIONS, separated by
# "== NAME" lines.
plans() {
	local name sql types args t tl
	for name in $hot; do
		sql=$(ps_stmt_sql "$name")
		[ -n "$sql" ] || { echo "FAIL: no SQL for $name in store.c"; return 1; }
		types=$(PGOPTIONS="$1" psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" \
			-c "PREPARE p AS $sql" \
			-c "SELECT array_to_string(ARRAY(SELECT format_type(x, NULL) FROM unnest(parameter_types) x), ',') FROM pg_prepared_statements WHERE name = 'p'") ||
			{ echo "FAIL: $name does not prepare"; return 1; }
		args=
		IFS=, read -r -a tl <<<"$types"
		for t in "${tl[@]}"; do args+="${args:+, }$(literal "$t")"; done
		echo "== $name"
		PGOPTIONS="$1 -c plan_cache_mode=force_generic_plan" psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" \
			-c "PREPARE p AS $sql" -c "EXPLAIN (COSTS OFF) EXECUTE p${args:+($args)}" ||
			{ echo "FAIL: EXPLAIN of $name"; return 1; }
	done
}

big='Seq Scan on (deliveries|messages|acked_deliveries)( |$)'
fail=0
plans "$opts" >"$tmp/plans.txt" || { cat "$tmp/plans.txt"; exit 1; }
n=$(grep -c '^== ' "$tmp/plans.txt")
[ "$n" -eq "$(wc -w <<<"$hot")" ] || { echo "FAIL: $n plans for $(wc -w <<<"$hot") statements"; fail=1; }
if grep -Eq "$big" "$tmp/plans.txt"; then
	echo "FAIL: a generic plan with pubsub's options reads a table whole:"
	awk '/^== /{n=$2} /Seq Scan on (deliveries|messages|acked_deliveries)/{print "  " n ": " $0}' "$tmp/plans.txt"
	fail=1
else
	echo "ok - $n generic plans with pubsub's options ($opts): no sequential scan of deliveries, messages or acked_deliveries"
fi

plans "${opts/ -c enable_seqscan=off/}" >"$tmp/plans-seq.txt" || { cat "$tmp/plans-seq.txt"; exit 1; }
seq=$(awk '/^== /{n=$2} /Seq Scan on (deliveries|messages|acked_deliveries)( |$)/{print n}' "$tmp/plans-seq.txt" | sort -u | tr '\n' ' ')
if [ -n "$seq" ]; then
	echo "ok - without enable_seqscan=off these generic plans scan a table whole: $seq"
else
	echo "FAIL: without enable_seqscan=off no generic plan scans a table whole: the check above cannot fail as built"
	fail=1
fi
# A statement with no path but a sequential scan (retention's sweep of expired idempotency keys)
# carries enable_seqscan=off's cost penalty, which is above jit_above_cost: pubsub's connections
# turn JIT off, so it is not compiled for every retention pass. Without jit=off it would be.
jit_plan() { PGOPTIONS="$1" psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" -c "EXPLAIN DELETE FROM idempotency WHERE expires_at < now()"; }
if [ "$(jit_plan "$opts" | grep -c '^JIT:')" -ne 0 ]; then
	echo "FAIL: the idempotency sweep is JIT-compiled with pubsub's options"
	fail=1
elif [ "$(jit_plan "${opts/ -c jit=off/}" | grep -c '^JIT:')" -eq 0 ]; then
	echo "FAIL: without jit=off the idempotency sweep is not JIT-compiled: the check above cannot fail as built"
	fail=1
else
	echo "ok - the idempotency sweep is not JIT-compiled with pubsub's options (it is without jit=off)"
fi

# The topic metrics read all of a topic's unfinished deliveries, and are the statements that
# should scan them: the service runs them with enable_seqscan allowed again (topics.c). Seven
# calls (past the five custom plans after which a generic one may be cached) must each scan
# deliveries sequentially (pg_stat_user_tables.seq_scan); with the setting in force they read it
# through the whole (message_id, sub_id) index instead, 2.3 times as long for 200,000
# deliveries (docs/pubsub.md "No index on seq").
admin=$(jq -r .admin "$tmp/tokens.json")
curl -sf -o /dev/null -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
	-d '{"name":"plans","type":"queue"}' "$SB_GW/api/v1/topics" || { echo "FAIL: topic create"; exit 1; }
seqscans() { psql -X -q -At "$SB_TEST_PG_DSN" -c "SELECT seq_scan FROM pg_stat_user_tables WHERE schemaname = 'pubsub' AND relname = 'deliveries'"; }
d0=$(seqscans)
for i in 1 2 3 4 5 6 7; do
	curl -sf -o /dev/null -H "Authorization: Bearer $admin" "$SB_GW/api/v1/topics/plans/metrics" ||
		{ echo "FAIL: metrics call $i"; exit 1; }
done
for _ in $(seq 1 150); do # an idle backend reports its statistics within ~10 s
	d1=$(seqscans)
	[ $((d1 - d0)) -ge 7 ] && break
	sleep 0.1
done
if [ $((d1 - d0)) -ge 7 ]; then
	echo "ok - 7 metrics calls scanned deliveries sequentially $((d1 - d0)) times"
else
	echo "FAIL: 7 metrics calls scanned deliveries sequentially $((d1 - d0)) times (want >= 7)"
	fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "pubsub_plans_test: all passed"
