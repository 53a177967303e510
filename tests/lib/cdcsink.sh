# cdcsink.sh: helpers of the cdcsink tests and benchmark (source after tools/stack.sh and
# tests/lib/services.sh, inside tests/lib/with-stack.sh --stack pg,kafka).
#
#   cdc_start NAME MAPPING [VAR=value ...]  # start sb-cdcsink as service NAME (fast retries;
#                                           # MAPPING "" is the built-in example)
#   cdc_produce TOPIC < lines               # "KEY|VALUE" lines to TOPIC (prefix added)
#   cdc_sql "SQL"                           # psql -Atc against the test database
#   cdc_wait "SQL" EXPECTED [SECONDS]       # until the query prints EXPECTED (30 s default)
#   cdc_count TOPIC                         # records in TOPIC (prefix added)
#   cdc_metric NAME MATCH SVC               # sum of a metric's series whose line has MATCH
#   gen ARGS...                             # tests/cdc/gen.py

CDC_GEN="$SB_SOURCE_ROOT/tests/cdc/gen.py"
CDC_PREFIX=${SB_TEST_KAFKA_PREFIX:-}
cdc_fails=0

gen() { python3 "$CDC_GEN" "$@"; }

cdc_start() {
	local name=$1 mapping=$2 root=$SB_BUILD_ROOT
	shift 2
	[ -n "${SVC_RPC[$name]:-}" ] || sb_svc_ports "$name"
	# sb_svc_start runs <root>/bin/sb-<name>: a second replica runs through a link of its name.
	if [ "$name" != cdcsink ]; then
		root=$SB_TEST_TMP/replica
		mkdir -p "$root/bin"
		ln -sf "$SB_BUILD_ROOT/bin/sb-cdcsink" "$root/bin/sb-$name"
	fi
	SB_BUILD_ROOT=$root sb_svc_start "$name" SB_CDCSINK_MAPPING="$mapping" \
		SB_KAFKA_TOPIC_PREFIX="$CDC_PREFIX" SB_CDCSINK_SESSION_TIMEOUT_MS=4000 \
		SB_CDCSINK_HEARTBEAT_MS=1000 SB_CDCSINK_RETRY_BASE_MS=20 SB_CDCSINK_RETRY_MAX_MS=200 \
		SB_KAFKA_PARTITIONS=4 "$@"
}

cdc_produce() {
	kcat -P -b "$SB_TEST_KAFKA_BROKERS" -t "$CDC_PREFIX$1" -K '|' -X enable.idempotence=true
}

cdc_sql() { psql "$SB_TEST_PG_DSN" -X -q -At -c "$1" 2>&1; }

cdc_wait() {
	local sql=$1 want=$2 secs=${3:-30} got n
	n=$((secs * 5))
	while :; do
		got=$(cdc_sql "$sql")
		[ "$got" = "$want" ] && return 0
		n=$((n - 1))
		if [ $n -le 0 ]; then
			echo "FAIL: after ${secs} s: $sql"
			echo "  want: $want"
			echo "  got:  $got"
			cdc_fails=$((cdc_fails + 1))
			return 1
		fi
		sleep 0.2
	done
}

cdc_check() { # cdc_check WHAT GOT WANT
	if [ "$2" = "$3" ]; then
		echo "ok: $1"
	else
		echo "FAIL: $1: got '$2', want '$3'"
		cdc_fails=$((cdc_fails + 1))
	fi
}

cdc_count() {
	kcat -C -b "$SB_TEST_KAFKA_BROKERS" -t "$CDC_PREFIX$1" -e -q -f '%o\n' 2>/dev/null | wc -l
}

cdc_read() { # cdc_read TOPIC: the values of every record
	kcat -C -b "$SB_TEST_KAFKA_BROKERS" -t "$CDC_PREFIX$1" -e -q -f '%s\n' 2>/dev/null
}

cdc_metric() {
	curl -s "http://127.0.0.1:${SVC_OPS[$3]}/metrics" |
		awk -v n="$1" -v m="$2" 'index($0, n) == 1 && index($0, m) { s += $NF } END { print s + 0 }'
}

# cdc_stop_check NAME...: stops the services (SIGTERM) and fails when a log shows a sanitizer
# report (ASan, LeakSanitizer, UBSan: the tests also run against build-asan's binaries).
cdc_stop_check() {
	local s
	for s in "$@"; do
		sb_svc_stop "$s"
		if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$SB_TEST_TMP/logs/$s.log"; then
			echo "FAIL: sanitizer report in $s's log:"
			grep -E -A12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$SB_TEST_TMP/logs/$s.log" | head -40
			cdc_fails=$((cdc_fails + 1))
		fi
	done
}
