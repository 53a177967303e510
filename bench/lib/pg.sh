# bench/lib/pg.sh: helpers of the benchmark scripts that measure the private PostgreSQL of
# tests/lib/with-stack.sh (needs SB_TEST_TMP and SB_TEST_PG_DSN).
#   q ARGS...: psql on the stack's database, quiet, unaligned, stopping at the first error
#   ticks PID...: the CPU ticks of those processes
#   pg_pids: PostgreSQL's processes (the postmaster and its children)
#   pg_ticks: their CPU ticks, plus those of the children the postmaster reaped (pgbench's
#     backends end with each run)
#   arr N VALUE: a text[] literal of N copies of the quoted VALUE
q() { PGOPTIONS="-c client_min_messages=warning ${PGOPTIONS:-}" psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
pg_pids() { local pm; pm=$(head -1 "$SB_TEST_TMP/pg/data/postmaster.pid"); echo "$pm $(ps -o pid= --ppid "$pm")"; }
pg_ticks() {
	local pm
	pm=$(head -1 "$SB_TEST_TMP/pg/data/postmaster.pid")
	echo $(($(awk '{print $16 + $17}' "/proc/$pm/stat") + $(ticks $(pg_pids))))
}
arr() { local n=$1 v=$2 out= i; for ((i = 0; i < n; i++)); do out+=${out:+,}\"$v\"; done; echo "{$out}"; }
