# lib.sh: shell helpers shared by sb-ingest's shell tests and its bench (sourced).

# ingest_sim_mapping ITEMS: prints a mapping file (JSON) for the simulator's fields
# (tests/ingest/sim.mjs: Seq, Value, Status, TimeStamp as the server time) and the items of
# ITEMS (comma-separated).
ingest_sim_mapping() {
	python3 - "$1" <<'PY'
import json, sys
print(json.dumps({"source": "sim", "adapter_set": "SIM",
    "server_ts": {"field": "TimeStamp", "unit": "ms"},
    "fields": [{"name": "Seq", "type": "int64"}, {"name": "Value", "type": "double"},
               {"name": "Status", "type": "string"}, {"name": "TimeStamp", "type": "int64"}],
    "items": sys.argv[1].split(",")}))
PY
}

# ingest_topic_ids BROKERS TOPIC: prints the ce_id header of every record of TOPIC, one a line,
# reading the whole topic read_uncommitted (up to the high watermark; nothing transactional is
# involved).
ingest_topic_ids() {
	kcat -b "$1" -X isolation.level=read_uncommitted -C -t "$2" -o beginning -e -q -f '%h\n' \
		2>/dev/null | tr ',' '\n' | sed -n 's/^ce_id=//p'
}

# ingest_topic_report BROKERS TOPIC FILE: where records are, for a test that found some missing:
# prints (as "# " lines) the records per key and, per partition, the first and last offsets
# read and their count (a hole in the offsets means the reader missed records, a short tail
# a loss or an early end); FILE keeps the records read (key, partition, offset, timestamp).
ingest_topic_report() {
	kcat -b "$1" -X isolation.level=read_uncommitted -C -t "$2" -o beginning -e -q \
		-f '%k %p %o %T\n' 2>/dev/null >"$3"
	echo "# records per key: $(awk '{ n[$1]++ } END { for (k in n) printf "%s=%d ", k, n[k] }' "$3")"
	echo "# partitions (first..last offset, count): $(awk '{ p=$2; if (!(p in lo) || $3 < lo[p]) lo[p]=$3; if ($3 > hi[p]) hi[p]=$3; c[p]++ } END { for (p in c) printf "%s:%d..%d,%d ", p, lo[p], hi[p], c[p] }' "$3")"
}
