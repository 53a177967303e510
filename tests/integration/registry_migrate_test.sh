#!/usr/bin/env bash
# The registry's tenancy migration on a store written before tenancy: a database at migration
# 001 holding a subject, a version and an audit row (written as that release wrote them) is
# brought to 002 by the registry at start; the old rows are in the tenant "default", the
# tenant of every caller when token checks are off (SB_REGISTRY_AUTH_ENABLED=false), so the
# subject, its version and its id are still served, and new registrations go there too.
# stack: pg
# labels: registry
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
mig=$root/services/registry/migrations/001_init.sql
psql_() { psql -X -q -v ON_ERROR_STOP=1 -At "$SB_TEST_PG_DSN" "$@"; }
sum=$(sha256sum "$mig" | cut -d' ' -f1)
psql_ <<SQL || { echo "FAIL: setting up the 001 store"; exit 1; }
CREATE SCHEMA registry;
CREATE TABLE registry.schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
    checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
SET search_path TO registry, public;
\i $mig
INSERT INTO registry.schema_migrations (version, name, checksum) VALUES (1, '001_init.sql', '$sum');
INSERT INTO registry.subjects (name) VALUES ('legacy');
INSERT INTO registry.versions (subject, version, draft, schema, fingerprint, state, created_by)
    VALUES ('legacy', 1, 7, '{"type":"string"}', 'f', 'active', 'old:client');
INSERT INTO registry.audit (actor, action, subject, version_id) VALUES ('old:client', 'register', 'legacy', 1);
SQL
sb_svc_ports registry
sb_svc_start registry SB_REGISTRY_AUTH_ENABLED=false
trap 'sb_svc_stop_all' EXIT
sb_svc_wait_ready registry || exit 1
reg=http://127.0.0.1:${SVC_HTTP[registry]}

fails=0
out=$SB_TEST_TMP/out.json
expect() { if [ "$2" = "$3" ]; then echo "ok: $1"; else
	echo "FAIL: $1: want $2, got $3 ($(head -c 300 "$out"))"; fails=$((fails + 1)); fi; }
expect "migration 002 applied" "1 2" "$(psql_ -c 'SELECT string_agg(version::text, $$ $$ ORDER BY version) FROM registry.schema_migrations')"
expect "the old rows are in the tenant 'default'" "default default default" \
	"$(psql_ -F ' ' -c 'SELECT (SELECT tenant FROM registry.subjects), (SELECT tenant FROM registry.versions), (SELECT tenant FROM registry.audit)')"
expect "the old subject is listed" '["legacy"]' "$(curl -s -o "$out" "$reg/subjects"; jq -c . "$out")"
expect "its version is served" '1 "string"' \
	"$(curl -s -o "$out" "$reg/subjects/legacy/versions/1"; jq -r '"\(.id) \(.schema | fromjson | .type | tojson)"' "$out")"
expect "and its id" 200 "$(curl -s -o "$out" -w '%{http_code}' "$reg/schemas/ids/1")"
expect "a new version of it registers in the same tenant" '2' \
	"$(curl -s -o "$out" -H 'Content-Type: application/json' -d '{"schema":"{\"type\":[\"string\",\"null\"]}"}' "$reg/subjects/legacy/versions" >/dev/null
	curl -s -o "$out" "$reg/subjects/legacy/versions/latest"; jq -r .version "$out")"
expect "  ... stored with the tenant" "default" "$(psql_ -c "SELECT tenant FROM registry.versions WHERE version = 2")"
[ $fails = 0 ] || { echo "FAIL: $fails"; tail -5 "$SB_TEST_TMP/logs/registry.log"; exit 1; }
echo "PASS: registry tenancy migration"
