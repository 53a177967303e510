# bench/lib/pg.sh: helpers of the benchmark scripts that measure a private PostgreSQL of
# tests/lib/with-stack.sh (needs $tmp, the stack's SB_TEST_TMP, and SB_TEST_PG_DSN).
#   q ARGS...: psql on the stack's database, quiet, unaligned, stopping at the first error
#   pg_pids: PostgreSQL's processes (the postmaster and its children)
#   pg_ticks: their CPU ticks, plus those of the children the postmaster reaped (pgbench's
#     backends end with each run)
#   arr N VALUE: a text[] literal of N copies of the quoted VALUE
q() { PGOPTIONS="-c client_min_messages=warning ${PGOPTIONS:-}" psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
pg_pids() { local pm; pm=$(head -1 "$tmp/pg/data/postmaster.pid"); echo "$pm $(ps -o pid= --ppid "$pm")"; }
pg_ticks() {
	local pm t p
	pm=$(head -1 "$tmp/pg/data/postmaster.pid")
	t=$(awk '{print $16 + $17}' "/proc/$pm/stat")
	for p in $(pg_pids); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
	echo "$t"
}
arr() { local n=$1 v=$2 out= i; for ((i = 0; i < n; i++)); do out+=${out:+,}\"$v\"; done; echo "{$out}"; }
