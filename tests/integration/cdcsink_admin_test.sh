#!/usr/bin/env bash
# cdcsink's admin API through the gateway (scope cdc:admin), with make run's built-in mapping
# (cassandra.shop.users -> shop.users): 401 without a token and 403 without the scope; status
# per table and partition; pause holds a table's events back and resume applies them; a stale
# event is audited and skipped, then applied once backfill mode is on; a breaking change
# quarantines the table until resume; an event that failed validation is resubmitted corrected
# (a still-invalid correction is refused with a problem document, an unknown id is 404).
# stack: pg,redis,kafka
# labels: kafka,cdcsink,e2e
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/lib/cdcsink.sh"
export PGTZ=UTC
t0=$(date +%s)

sb_svc_ports gateway auth messages cdcsink
sb_svc_start auth
sb_svc_start messages
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=100000
cdc_start cdcsink ""
sb_svc_wait_ready auth messages gateway cdcsink || exit 1
cli() { env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" "$SB_BUILD_ROOT/bin/sb-auth" "$@"; }
cli user create --tenant dev --name cdc-admin >/dev/null || { echo "FAIL: user create"; exit 1; }
tok=$(cli token issue --tenant dev --scopes "cdc:admin" --ttl 600 --user cdc-admin)
tok_no=$(cli token issue --tenant dev --scopes "messages:read" --ttl 600 --user cdc-admin)
[ -n "$tok" ] && [ -n "$tok_no" ] || { echo "FAIL: token issue"; exit 1; }

# api METHOD PATH [BODY] [TOKEN]: prints "STATUS BODY".
api() {
	local out
	out=$(curl -s -o "$SB_TEST_TMP/body" -w '%{http_code} %{content_type}' -X "$1" \
		-H "Authorization: Bearer ${4-$tok}" ${3:+-H 'Content-Type: application/json' --data "$3"} \
		"$SB_GW$2")
	echo "$out $(cat "$SB_TEST_TMP/body")"
}
status_of() { cut -d' ' -f1 <<<"$1"; }
body_of() { cut -d' ' -f3- <<<"$1"; }

cdc_wait "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'shop'" 2 ||
	{ tail -20 "$SB_TEST_TMP/logs/cdcsink.log"; exit 1; }
now=$(($(date +%s%N) / 1000))
row() { printf '{"id":"%s","name":"%s","email":"e@x.org","age":%s,"tags":["a"],"updated_at":1700000000000}' "$@"; }

# Auth and scope.
r=$(curl -s -o /dev/null -w '%{http_code}' "$SB_GW/api/v1/cdc/status")
cdc_check "no token" "$r" 401
r=$(api GET /api/v1/cdc/status "" "$tok_no")
cdc_check "token without cdc:admin" "$(status_of "$r")" 403

# Status, after one event.
A=a0000000-0000-4000-8000-000000000001
gen cass c $((now - 60000000)) shop users id "$(row $A ann 30)" | cdc_produce cassandra.shop.users
cdc_wait "SELECT name FROM shop.users WHERE id = '$A'" ann
r=$(api GET /api/v1/cdc/status)
cdc_check "status 200" "$(status_of "$r")" 200
cdc_check "status table" "$(body_of "$r" | jq -r '.tables[0].table + " " + .tables[0].applied')" "shop.users 1"
cdc_check "status partitions" "$(body_of "$r" | jq -r '[.tables[0].partitions[].next_offset | tonumber] | add')" 1

# Pause holds events back; resume applies them.
r=$(api POST /api/v1/cdc/tables/shop.users/pause '{}')
cdc_check "pause" "$(status_of "$r") $(body_of "$r" | jq -r .paused)" "200 true"
sleep 1.5
gen cass u $((now - 50000000)) shop users id "$(row $A paused 31)" | cdc_produce cassandra.shop.users
sleep 4
cdc_check "paused table not applied" "$(cdc_sql "SELECT name FROM shop.users WHERE id = '$A'")" ann
r=$(api POST /api/v1/cdc/tables/shop.users/resume '{}')
cdc_check "resume" "$(status_of "$r") $(body_of "$r" | jq -r '.paused // false')" "200 false"
cdc_wait "SELECT name FROM shop.users WHERE id = '$A'" paused && echo "ok: resumed table applied"
r=$(api POST /api/v1/cdc/tables/shop.nope/pause '{}')
cdc_check "unknown table" "$(cut -d' ' -f1-2 <<<"$r")" "404 application/problem+json"

# Staleness, then backfill mode.
S=a0000000-0000-4000-8000-000000000002
stale=$(gen cass c $((now - 8 * 86400 * 1000000)) shop users id "$(row $S old 1)")
echo "$stale" | cdc_produce cassandra.shop.users
for _ in $(seq 1 50); do [ "$(cdc_read cassandra.cdc.staleness_audit | grep -c "$S")" -ge 1 ] && break; sleep 0.2; done
cdc_check "stale event audited" "$(cdc_read cassandra.cdc.staleness_audit | grep -c "$S")" 1
cdc_check "stale event skipped" "$(cdc_sql "SELECT count(*) FROM shop.users WHERE id = '$S'")" 0
r=$(api PUT /api/v1/cdc/tables/shop.users/backfill '{"enabled":true}')
cdc_check "backfill on" "$(status_of "$r") $(body_of "$r" | jq -r .backfill)" "200 true"
echo "$stale" | cdc_produce cassandra.shop.users
cdc_wait "SELECT name FROM shop.users WHERE id = '$S'" old && echo "ok: stale event applied in backfill mode"
r=$(api PUT /api/v1/cdc/tables/shop.users/backfill '{"enabled":false}')
cdc_check "backfill off" "$(status_of "$r") $(body_of "$r" | jq -r '.backfill // false')" "200 false"

# Resubmission of an event that failed validation.
B=a0000000-0000-4000-8000-000000000003
gen cass c $((now - 40000000)) shop users id "$(row $B bob 300000000000)" | cdc_produce cassandra.shop.users
cdc_wait "SELECT count(*) FROM cdcsink.validation_errors WHERE reason LIKE 'column age%'" 1
id=$(cdc_sql "SELECT id FROM cdcsink.validation_errors WHERE reason LIKE 'column age%'")
good=$(gen cass c $((now - 40000000)) shop users id "$(row $B bob 30)" | cut -d'|' -f2-)
badfix=$(gen cass c $((now - 40000000)) shop users id "$(row $B bob 3000000000)" | cut -d'|' -f2-)
r=$(api POST "/api/v1/cdc/validation-errors/$id/resubmit" "$(jq -nc --arg e "$badfix" '{event: $e}')")
cdc_check "invalid correction refused" "$(cut -d' ' -f1-2 <<<"$r")" "400 application/problem+json"
r=$(api POST "/api/v1/cdc/validation-errors/nope:0:1/resubmit" "$(jq -nc --arg e "$good" '{event: $e}')")
cdc_check "unknown validation error" "$(status_of "$r")" 404
r=$(api POST "/api/v1/cdc/validation-errors/$id/resubmit" "$(jq -nc --arg e "$good" '{event: $e}')")
cdc_check "resubmit" "$(status_of "$r") $(body_of "$r" | jq -r .id)" "200 $id"
cdc_wait "SELECT age FROM shop.users WHERE id = '$B'" 30 && echo "ok: resubmitted event applied"
cdc_check "marked resubmitted" "$(cdc_sql "SELECT resubmits FROM cdcsink.validation_errors WHERE id = '$id'")" 1

# A breaking change quarantines the table until resume.
gen cass u $((now - 30000000)) shop users id '{"id":"'$A'","age":"thirty"}' | cdc_produce cassandra.shop.users
gen cass u $((now - 20000000)) shop users id "$(row $A held 40)" | cdc_produce cassandra.shop.users
cdc_wait "SELECT count(*) FROM cdcsink.validation_errors WHERE reason LIKE 'table quarantined%'" 2
r=$(api GET /api/v1/cdc/status)
cdc_check "status shows the quarantine" "$(body_of "$r" | jq -r '.tables[0].quarantined')" true
cdc_check "quarantined row unchanged" "$(cdc_sql "SELECT name FROM shop.users WHERE id = '$A'")" paused
r=$(api POST /api/v1/cdc/tables/shop.users/resume '{}')
cdc_check "resume after the quarantine" "$(status_of "$r")" 200
sleep 1.5
gen cass u $((now - 10000000)) shop users id "$(row $A fixed 41)" | cdc_produce cassandra.shop.users
cdc_wait "SELECT name FROM shop.users WHERE id = '$A'" fixed && echo "ok: applied again after resume"

cdc_stop_check cdcsink
echo "duration: $(($(date +%s) - t0)) s"
if [ $cdc_fails -gt 0 ]; then
	grep -v '"msg":"request"' "$SB_TEST_TMP/logs/cdcsink.log" | tail -20
	echo "FAIL: $cdc_fails checks"
	exit 1
fi
echo "PASS: cdcsink admin API"
