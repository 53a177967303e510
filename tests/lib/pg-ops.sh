# pg-ops.sh: shell helpers for the PostgreSQL operations tests (tests/integration/pg_pitr_test.sh,
# pg_failover_test.sh) and the runbook's commands: clusters with WAL archiving, base backups,
# point-in-time restores and streaming replicas, each in its own throwaway directory, run as the
# postgres user and listening on 127.0.0.1 only. Source it after tools/stack.sh (PG_BIN).
#
#   pgo_init DIR                    initdb into DIR/data (DIR is created, owned by postgres)
#   pgo_conf DIR 'key = value' ...  appends settings to DIR/data/postgresql.conf
#   pgo_start DIR PORT [OPTS]       starts the cluster of DIR (log DIR/server.log), waits for it
#   pgo_stop DIR [MODE]             pg_ctl stop (fast unless MODE), no error when not running
#   pgo_kill9 DIR                   SIGKILL to the postmaster and every child of it (a crash)
#   pgo_psql PORT SQL               one SQL command as postgres, unaligned tuples-only output
#   pgo_basebackup PORT DEST [ARGS] pg_basebackup of the cluster on PORT into DEST/data
#   pgo_wait_archived PORT          switches WAL and waits until that segment is archived

pgo_as() { runuser -u postgres -- "$@"; }

pgo_init() {
	local dir=$1
	mkdir -p "$dir"
	chown postgres:postgres "$dir"
	chmod 700 "$dir"
	pgo_as "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
}

pgo_conf() {
	local dir=$1 line
	shift
	for line in "$@"; do echo "$line" >>"$dir/data/postgresql.conf"; done
}

pgo_start() {
	local dir=$1 port=$2 extra=${3:-}
	pgo_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=200 $extra" \
		start >/dev/null || { tail -20 "$dir/server.log" >&2; return 1; }
}

pgo_stop() {
	local dir=$1 mode=${2:-fast}
	[ -f "$dir/data/postmaster.pid" ] || return 0
	pgo_as "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 30 stop >/dev/null 2>&1 ||
		pgo_as "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
}

pgo_kill9() {
	local dir=$1 pm kids
	pm=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null) || return 1
	kids=$(ps -o pid= --ppid "$pm" 2>/dev/null | tr -s ' \n' ' ')
	kill -KILL "$pm"
	# The backends would notice their postmaster's death by themselves, but a crashed machine
	# takes them down at the same instant: so do we.
	[ -n "${kids// /}" ] && kill -KILL $kids 2>/dev/null
	return 0
}

pgo_psql() {
	local port=$1
	shift
	psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$1"
}

pgo_basebackup() {
	local port=$1 dest=$2
	shift 2
	mkdir -p "$dest"
	chown postgres:postgres "$dest"
	chmod 700 "$dest"
	pgo_as "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$dest/data" \
		--checkpoint=fast "$@"
}

pgo_wait_archived() {
	local port=$1 seg n=100
	seg=$(pgo_psql "$port" "SELECT pg_walfile_name(pg_switch_wal())") || return 1
	while [ $n -gt 0 ]; do
		[ "$(pgo_psql "$port" "SELECT coalesce(last_archived_wal >= '$seg', false) FROM pg_stat_archiver")" = t ] &&
			return 0
		sleep 0.1
		n=$((n - 1))
	done
	echo "pg-ops: WAL segment $seg was not archived within 10 s" >&2
	return 1
}
