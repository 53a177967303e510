#!/usr/bin/env bash
# The registry's tenancy and its Confluent schema references, against real auth, registry and
# gateway. Two tenants (the dev tenant's admin client, and tenant-b): every route of the seed API
# and of the Confluent API, called by tenant-b on tenant-a's subjects and ids, answers 404 (never
# 403: existence does not leak) or, for lists, leaves them out; each tenant's subjects, versions,
# ids and levels are its own. Authorization per scope: 401 without a token, 403 without the
# route's scope, as problem+json on the seed API and Confluent's body on its API. References:
# register with one, fetch it back, validate through it (seed API and compatibility follow it),
# and the refusals: an unknown or other tenant's reference, a $ref no reference names, deleting a
# referenced version (422/42206). docs/registry.md, "Tenants" and "References".
# stack: pg,redis
# labels: registry,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/registry/services.sh"
trap 'sb_svc_stop_all' EXIT
A=$TOKEN_ADMIN
B=$TOKEN_B
reg=http://127.0.0.1:${SVC_HTTP[registry]}

fails=0
out=$SB_TEST_TMP/out.json
hdr=$SB_TEST_TMP/hdr.txt
# req TOKEN METHOD URL [BODY]: prints the status; the body is in $out, headers in $hdr
req() {
	curl -s -D "$hdr" -o "$out" -w '%{http_code}' -X "$2" ${1:+-H "Authorization: Bearer $1"} \
		${4:+-H 'Content-Type: application/json' --data-binary "$4"} "$3"
}
expect() { # what want got
	if [ "$2" = "$3" ]; then echo "ok: $1"; else
		echo "FAIL: $1: want $2, got $3 ($(head -c 300 "$out"))"; fails=$((fails + 1)); fi
}
j() { jq -r "$1" "$out"; }
# problem STATUS: the body is RFC 9457 problem+json with that status
problem() {
	grep -qi '^content-type: application/problem+json' "$hdr" && [ "$(j .status)" = "$1" ] &&
		[ -n "$(j .title)" ] && echo yes || echo no
}
# conf WHAT STATUS CODE TOKEN METHOD PATH [BODY]: a Confluent call answering STATUS, error CODE
conf() {
	local what=$1 st=$2 code=$3
	shift 3
	expect "$what" "$st $code" "$(req "$1" "$2" "$reg$3" "${4:-}") $(j '.error_code // "-"')"
}
sch() { jq -cn --arg s "$1" '{schema: $s}'; } # the Confluent body of a schema text

v1='{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}'
vb='{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}'
# --- tenant A's subjects: one through each API -----------------------------------------------
expect "A registers 'shared' (seed API)" 201 \
	"$(req "$A" POST "$SB_GW/api/v1/schemas" "{\"subject\":\"shared\",\"schema\":$v1}")"
ida=$(j .id)
expect "A registers 'conf-a' (Confluent API)" 200 "$(req "$A" POST "$reg/subjects/conf-a/versions" "$(sch "$v1")")"
idc=$(j .id)

# --- tenant B: the same subject name is its own ------------------------------------------------
expect "B lists no schema of A" 200 "$(req "$B" GET "$SB_GW/api/v1/schemas")"
expect "  ... an empty list" 0 "$(j '.schemas | length')"
expect "B registers its own 'shared', a schema A's would refuse as incompatible" 201 \
	"$(req "$B" POST "$SB_GW/api/v1/schemas" "{\"subject\":\"shared\",\"schema\":$vb}")"
idb=$(j .id)
expect "  ... version 1 of B's subject, another id" "1 yes" "$(j .version) $([ "$idb" != "$ida" ] && echo yes)"
expect "A's 'shared' still has one version" 1 \
	"$(req "$A" GET "$SB_GW/api/v1/schemas?subject=shared" >/dev/null; j '.schemas | length')"
expect "A lists its 'shared' only" "$ida" "$(j '.schemas[0].id')"

# seed API, B on A's ids: 404 problem, like an id that does not exist
for r in "GET /api/v1/schemas/$ida" "POST /api/v1/schemas/$ida/validate" \
	"POST /api/v1/schemas/$ida/approve" "POST /api/v1/schemas/$ida/deprecate"; do
	set -- $r
	expect "B: $1 $2 is 404" 404 "$(req "$B" "$1" "$SB_GW$2" '{"id":"x"}')"
	expect "  ... problem+json" yes "$(problem 404)"
done
expect "an id that exists nowhere answers the same" 404 "$(req "$B" GET "$SB_GW/api/v1/schemas/987654")"
expect "A's version is untouched (active)" active \
	"$(req "$A" GET "$SB_GW/api/v1/schemas/$ida" >/dev/null; j .state)"
# B's subject config changes B's subject only: A's 'shared' stays unprotected (an incompatible
# change is refused there, not made pending)
expect "B protects its 'shared'" 200 "$(req "$B" PUT "$SB_GW/api/v1/subjects/shared/config" '{"protected":true}')"
expect "A's 'shared' is not protected: an incompatible change is 409" 409 \
	"$(req "$A" POST "$SB_GW/api/v1/schemas" '{"subject":"shared","schema":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}}')"
expect "B's 'shared' is: the same change is pending" 202 \
	"$(req "$B" POST "$SB_GW/api/v1/schemas" '{"subject":"shared","schema":{"type":"object","properties":{"n":{"type":"string"}},"required":["n"]}}')"
pend=$(j .id)
expect "A cannot approve B's pending version" 404 "$(req "$A" POST "$SB_GW/api/v1/schemas/$pend/approve")"
expect "B can" 200 "$(req "$B" POST "$SB_GW/api/v1/schemas/$pend/approve")"
expect "validation uses the caller's tenant: B validates against its own version" 200 \
	"$(req "$B" POST "$SB_GW/api/v1/schemas/$idb/validate" '{"n":1}')"
expect "  ... valid" true "$(j .valid)"

# Confluent API, B on A's subject and ids
expect "B's /subjects: its own only" '["shared"]' "$(req "$B" GET "$reg/subjects" >/dev/null; jq -c . "$out")"
expect "A's /subjects: its own" '["conf-a","shared"]' "$(req "$A" GET "$reg/subjects" >/dev/null; jq -c . "$out")"
conf "B: GET /subjects/conf-a/versions" 404 40401 "$B" GET /subjects/conf-a/versions
conf "B: GET /subjects/conf-a/versions/1" 404 40401 "$B" GET /subjects/conf-a/versions/1
conf "B: GET /subjects/conf-a/versions/latest/schema" 404 40401 "$B" GET /subjects/conf-a/versions/latest/schema
conf "B: GET /subjects/conf-a/versions/1/referencedby" 404 40401 "$B" GET /subjects/conf-a/versions/1/referencedby
conf "B: POST /subjects/conf-a (lookup)" 404 40401 "$B" POST /subjects/conf-a "$(sch "$v1")"
conf "B: GET /schemas/ids/$idc" 404 40403 "$B" GET "/schemas/ids/$idc"
conf "B: GET /schemas/ids/$idc/schema" 404 40403 "$B" GET "/schemas/ids/$idc/schema"
conf "B: GET /schemas/ids/$idc/versions" 404 40403 "$B" GET "/schemas/ids/$idc/versions"
conf "B: GET /schemas/ids/$idc/subjects" 404 40403 "$B" GET "/schemas/ids/$idc/subjects"
conf "B: compatibility against A's version 1" 404 40402 "$B" POST /compatibility/subjects/conf-a/versions/1 "$(sch "$v1")"
conf "B: DELETE /subjects/conf-a/versions/1" 404 40402 "$B" DELETE /subjects/conf-a/versions/1
conf "B: DELETE /subjects/conf-a" 404 40401 "$B" DELETE /subjects/conf-a
conf "B: GET /config/conf-a (A set none; B's answer is the same)" 404 40408 "$B" GET /config/conf-a
expect "A sets conf-a's level" 200 "$(req "$A" PUT "$reg/config/conf-a" '{"compatibility":"FULL"}')"
conf "B: GET /config/conf-a still not configured for B" 404 40408 "$B" GET /config/conf-a
conf "B: DELETE /config/conf-a" 404 40401 "$B" DELETE /config/conf-a
expect "A's level stays" FULL "$(req "$A" GET "$reg/config/conf-a" >/dev/null; j .compatibilityLevel)"
expect "B sets its global level" 200 "$(req "$B" PUT "$reg/config" '{"compatibility":"NONE"}')"
expect "  ... B's global level" NONE "$(req "$B" GET "$reg/config" >/dev/null; j .compatibilityLevel)"
expect "  ... A's global level is unchanged" BACKWARD "$(req "$A" GET "$reg/config" >/dev/null; j .compatibilityLevel)"
expect "A still holds conf-a" '[1]' "$(req "$A" GET "$reg/subjects/conf-a/versions" >/dev/null; jq -c . "$out")"
expect "A fetches its id" 200 "$(req "$A" GET "$reg/schemas/ids/$idc")"
expect "A's client by Basic credentials: the same tenant" '["conf-a","shared"]' \
	"$(curl -s -o "$out" -u "$(jq -r .admin.client_id "$creds"):$(jq -r .admin.client_secret "$creds")" "$reg/subjects"; jq -c . "$out")"
expect "  ... a wrong secret: 401" 401 "$(curl -s -o "$out" -w '%{http_code}' -u "$(jq -r .admin.client_id "$creds"):nope" "$reg/subjects")"
expect "the Confluent API sees the seed API's subject of the same tenant" "$ida" \
	"$(req "$A" GET "$reg/subjects/shared/versions/1" >/dev/null; j .id)"

# --- authorization per scope -------------------------------------------------------------------
expect "seed API without a token: 401" 401 "$(req "" GET "$SB_GW/api/v1/schemas")"
expect "  ... problem+json" yes "$(problem 401)"
expect "seed API, alice (no registry scope): 403" 403 "$(req "$TOKEN_ALICE" GET "$SB_GW/api/v1/schemas")"
expect "  ... problem+json" yes "$(problem 403)"
expect "seed API, read-only token cannot register: 403" 403 \
	"$(req "$TOKEN_READER" POST "$SB_GW/api/v1/schemas" "{\"subject\":\"r\",\"schema\":$v1}")"
expect "  ... problem+json" yes "$(problem 403)"
expect "seed API, write token cannot approve (admin): 403" 403 "$(req "$TOKEN_B_WRITE" POST "$SB_GW/api/v1/schemas/$idb/approve")"
expect "  ... problem+json" yes "$(problem 403)"
expect "seed API, write token cannot configure a subject: 403" 403 \
	"$(req "$TOKEN_B_WRITE" PUT "$SB_GW/api/v1/subjects/shared/config" '{"protected":false}')"
expect "seed API, write token registers" 201 \
	"$(req "$TOKEN_B_WRITE" POST "$SB_GW/api/v1/schemas" "{\"subject\":\"w\",\"schema\":$v1}")"
conf "Confluent API without a token" 401 40101 "" GET /subjects
conf "Confluent API, alice" 403 40301 "$TOKEN_ALICE" GET /subjects
conf "Confluent API, read-only token cannot register" 403 40301 "$TOKEN_READER" POST /subjects/r/versions "$(sch "$v1")"
conf "Confluent API, write token cannot delete (admin)" 403 40301 "$TOKEN_B_WRITE" DELETE /subjects/w
conf "Confluent API, write token cannot set levels (admin)" 403 40301 "$TOKEN_B_WRITE" PUT /config '{"compatibility":"FULL"}'
expect "Confluent API, read-only token reads" 200 "$(req "$TOKEN_READER" GET "$reg/subjects")"

# --- references --------------------------------------------------------------------------------
addr='{"type":"object","properties":{"street":{"type":"string"},"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["street"]}'
expect "A registers the referenced 'address'" 200 "$(req "$A" POST "$reg/subjects/address/versions" "$(sch "$addr")")"
idaddr=$(j .id)
cust='{"type":"object","properties":{"name":{"type":"string"},"home":{"$ref":"address.json"}},"required":["name","home"]}'
body=$(jq -cn --arg s "$cust" '{schema: $s, references: [{name: "address.json", subject: "address", version: 1}]}')
expect "A registers 'customer' referring to it" 200 "$(req "$A" POST "$reg/subjects/customer/versions" "$body")"
idcust=$(j .id)
expect "GET /schemas/ids answers the references" 'address.json address 1' \
	"$(req "$A" GET "$reg/schemas/ids/$idcust" >/dev/null; j '.references[0] | "\(.name) \(.subject) \(.version)"')"
expect "  ... and the schema as registered (the \$ref by name)" address.json \
	"$(j '.schema | fromjson | .properties.home["$ref"]')"
expect "GET /subjects/customer/versions/1 answers them" address \
	"$(req "$A" GET "$reg/subjects/customer/versions/1" >/dev/null; j '.references[0].subject')"
expect "referencedby lists customer" "[$idcust]" \
	"$(req "$A" GET "$reg/subjects/address/versions/1/referencedby" >/dev/null; jq -c . "$out")"
expect "lookup with the references finds it" "$idcust" \
	"$(req "$A" POST "$reg/subjects/customer" "$body" >/dev/null; j .id)"
conf "lookup without them: the \$ref resolves to nothing, an invalid schema" 422 42201 "$A" POST /subjects/customer "$(sch "$cust")"
expect "seed API: a good document validates through the reference" true \
	"$(req "$A" POST "$SB_GW/api/v1/schemas/$idcust/validate" '{"name":"n","home":{"street":"s","zip":"12345"}}' >/dev/null; j .valid)"
expect "seed API: a bad zip inside the referenced schema is a violation at its pointer" "false true" \
	"$(req "$A" POST "$SB_GW/api/v1/schemas/$idcust/validate" '{"name":"n","home":{"zip":"1"}}' >/dev/null
	j '"\(.valid) \([.errors[] | select(.pointer == "/home/zip")] | length >= 1)"')"
expect "seed API answers the references too" address.json \
	"$(req "$A" GET "$SB_GW/api/v1/schemas/$idcust" >/dev/null; j '.references[0].name')"
# compatibility follows the reference: address v2 makes zip required (a BACKWARD break inside it)
addr2='{"type":"object","properties":{"street":{"type":"string"},"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["street","zip"]}'
expect "address v2 (zip required) under NONE" 200 \
	"$(req "$A" PUT "$reg/config/address" '{"compatibility":"NONE"}' >/dev/null; req "$A" POST "$reg/subjects/address/versions" "$(sch "$addr2")")"
body2=$(jq -cn --arg s "$cust" '{schema: $s, references: [{name: "address.json", subject: "address", version: 2}]}')
conf "lookup with another version of the reference does not find customer" 404 40403 "$A" POST /subjects/customer "$body2"
expect "customer pointing at address v2 is found incompatible (BACKWARD)" false \
	"$(req "$A" POST "$reg/compatibility/subjects/customer/versions/latest?verbose=true" "$body2" >/dev/null; j .is_compatible)"
expect "  ... the change named inside the referenced schema" true \
	"$(j '[.messages[] | select(test("REQUIRED_ATTRIBUTE_ADDED"))] | length >= 1')"
conf "  ... and registering it is 409" 409 409 "$A" POST /subjects/customer/versions "$body2"
# refusals
conf "deleting the referenced version: 42206" 422 42206 "$A" DELETE /subjects/address/versions/1
conf "deleting the referenced subject: 42206" 422 42206 "$A" DELETE /subjects/address
expect "  ... nothing was deleted" '[1,2]' "$(req "$A" GET "$reg/subjects/address/versions" >/dev/null; jq -c . "$out")"
conf "a reference to a version that does not exist: 42201" 422 42201 "$A" POST /subjects/c2/versions \
	"$(jq -cn --arg s "$cust" '{schema: $s, references: [{name: "address.json", subject: "address", version: 9}]}')"
conf "B cannot refer to A's subject: 42201" 422 42201 "$B" POST /subjects/c2/versions "$body"
conf "a \$ref that no reference names: 42201" 422 42201 "$A" POST /subjects/c2/versions \
	"$(jq -cn --arg s "$cust" '{schema: $s, references: [{name: "other.json", subject: "address", version: 1}]}')"
conf "a reference without a version: 42201" 422 42201 "$A" POST /subjects/c2/versions \
	"$(jq -cn --arg s "$cust" '{schema: $s, references: [{name: "address.json", subject: "address"}]}')"
conf "the same name twice: 42201" 422 42201 "$A" POST /subjects/c2/versions \
	"$(jq -cn --arg s "$cust" '{schema: $s, references: [{name: "address.json", subject: "address", version: 1}, {name: "address.json", subject: "address", version: 2}]}')"
expect "seed API: a bad reference is 400 problem+json naming references" "400 yes references" \
	"$(req "$A" POST "$SB_GW/api/v1/schemas" "{\"subject\":\"c3\",\"schema\":$cust,\"references\":[{\"name\":\"address.json\",\"subject\":\"nope\",\"version\":1}]}") $(problem 400) $(j '.errors[0].field')"
expect "once customer is deleted, address v1 can be" 200 \
	"$(req "$A" DELETE "$reg/subjects/customer" >/dev/null; req "$A" DELETE "$reg/subjects/address/versions/1")"

# stopped (SIGTERM): no sanitizer report in the registry's log (this test also runs against
# build-asan's binaries)
sb_svc_stop registry
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$SB_TEST_TMP/logs/registry.log"; then
	echo "FAIL: sanitizer report in the registry's log:"
	grep -E -A12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$SB_TEST_TMP/logs/registry.log" | head -40
	fails=$((fails + 1))
fi
[ $fails = 0 ] || { echo "FAIL: $fails"; tail -5 "$SB_TEST_TMP/logs/registry.log"; exit 1; }
echo "PASS: registry tenancy and references"
