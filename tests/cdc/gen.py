#!/usr/bin/env python3
"""gen.py: change events in the shapes Debezium writes them, for cdcsink's tests and benchmark.

Cassandra connector (JSON value, schemas disabled): {"op", "ts_ms", "source": {"connector",
"name", "cluster", "keyspace", "table", "file", "pos", "snapshot", "ts_us"}, "after": {column:
{"value", "deletion_ts", "set"}}}; a delete carries the key cells in "after". Values as the
connector encodes them: uuid/text/inet as strings, timestamp as epoch milliseconds, date as epoch
days, time as nanoseconds of the day, blob as base64, collections as arrays/objects, tuples and
UDTs as structs. The relational (flat) envelope: {"before", "after", "source": {"schema",
"table", "ts_ms", "ts_us"}, "op", "ts_ms"}.

Every line printed is "KEY|VALUE" for `kcat -P -K '|'`.

  gen.py cass OP TS_US KEYSPACE TABLE KEYCOLS ROW_JSON [UNSET_COLS]
  gen.py rel OP TS_US SCHEMA TABLE KEYCOLS BEFORE_JSON AFTER_JSON
  gen.py users COUNT KEYS TS0_US      # COUNT upserts of shop.users over KEYS ids, ts rising
  gen.py sql COUNT KEYS BATCH OUT_PREFIX  # the same rows as plain SQL (benchmark peers):
      OUT_PREFIX.upsert.sql (multi-row INSERT ... ON CONFLICT, BATCH rows a statement) and
      OUT_PREFIX.csv (for COPY)
"""
import json
import sys
import uuid


def cell(v, is_set=True):
    return {"value": v, "deletion_ts": None, "set": is_set}


def cass(op, ts_us, ks, table, keycols, row, unset=()):
    after = {k: cell(v) for k, v in row.items()}
    for k in unset:
        after[k] = cell(None, False)
    ev = {
        "op": op,
        "ts_ms": ts_us // 1000,
        "source": {"connector": "cassandra", "name": "test_connector", "cluster": "Test Cluster",
                   "keyspace": ks, "table": table, "file": "CommitLog-7-1.log", "pos": 0,
                   "snapshot": False, "ts_us": ts_us},
        "after": after,
    }
    key = json.dumps({k: row.get(k) for k in keycols}, separators=(",", ":"))
    return key + "|" + json.dumps(ev, separators=(",", ":"))


def rel(op, ts_us, schema, table, keycols, before, after):
    ev = {"before": before, "after": after,
          "source": {"version": "3.6.1.Final", "connector": "postgresql", "name": "test",
                     "ts_ms": ts_us // 1000, "ts_us": ts_us, "db": "src", "schema": schema,
                     "table": table},
          "op": op, "ts_ms": ts_us // 1000}
    row = after if after is not None else before
    key = json.dumps({k: row.get(k) for k in keycols}, separators=(",", ":"))
    return key + "|" + json.dumps(ev, separators=(",", ":"))


def users(count, keys, ts0):
    ids = [str(uuid.UUID(int=i + 1)) for i in range(keys)]
    out = []
    for i in range(count):
        k = ids[i % keys]
        v = i // keys
        row = {"id": k, "name": "n%d-%d" % (i % keys, v), "email": "u%d@example.org" % (i % keys),
               "age": v % 100, "tags": ["t%d" % (v % 3)], "updated_at": 1700000000000 + i}
        out.append(cass("c" if v == 0 else "u", ts0 + i, "shop", "users", ["id"], row))
    sys.stdout.write("\n".join(out) + "\n")


def user_row(i, keys):
    k, v = i % keys, i // keys
    return (str(uuid.UUID(int=k + 1)), "n%d-%d" % (k, v), "u%d@example.org" % k, v % 100,
            "{t%d}" % (v % 3), 1700000000000 + i)


def sql(count, keys, batch, prefix):
    with open(prefix + ".upsert.sql", "w") as f:
        for s in range(0, count, batch):
            rows = []
            for i in range(s, min(count, s + batch)):
                r = user_row(i, keys)
                rows.append("('%s'::uuid,'%s','%s',%d,'%s'::text[],to_timestamp(%d/1000.0),%d)"
                            % (r + (i,)))
            # The sink's work: the tombstone check, the version guard, the update time.
            f.write("INSERT INTO peer_upsert AS t (id, name, email, age, tags, updated_at, v, "
                    "u_at) SELECT v.*, now() FROM (VALUES " + ",".join(rows) + ") AS v(id, "
                    "name, email, age, tags, updated_at, v) WHERE NOT EXISTS (SELECT 1 FROM "
                    "peer_tomb d WHERE d.id = v.id AND d.v >= v.v) ON CONFLICT (id) DO UPDATE "
                    "SET name = EXCLUDED.name, email = EXCLUDED.email, age = EXCLUDED.age, "
                    "tags = EXCLUDED.tags, updated_at = EXCLUDED.updated_at, v = EXCLUDED.v, "
                    "u_at = now() WHERE t.v < EXCLUDED.v;\n")
    with open(prefix + ".csv", "w") as f:
        for i in range(count):
            r = user_row(i, keys)
            f.write("%s,%s,%s,%d,\"%s\",%d,%d\n" % (r[0], r[1], r[2], r[3], r[4], r[5], i))


def main(a):
    if a[0] == "cass":
        unset = a[7].split(",") if len(a) > 7 and a[7] else ()
        print(cass(a[1], int(a[2]), a[3], a[4], a[5].split(","), json.loads(a[6]), unset))
    elif a[0] == "rel":
        print(rel(a[1], int(a[2]), a[3], a[4], a[5].split(","), json.loads(a[6]),
                  json.loads(a[7])))
    elif a[0] == "users":
        users(int(a[1]), int(a[2]), int(a[3]))
    elif a[0] == "sql":
        sql(int(a[1]), int(a[2]), int(a[3]), a[4])
    else:
        sys.exit("unknown command " + a[0])


if __name__ == "__main__":
    main(sys.argv[1:])
