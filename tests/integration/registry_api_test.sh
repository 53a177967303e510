#!/usr/bin/env bash
# The schema registry's seed API through the gateway, against real auth, registry and gateway:
# register (201), the same schema again (200), a compatible change (201), an incompatible one
# refused (409 with each change and its JSON pointer), validation with JSON pointers, the
# approval workflow on a protected subject (pending 202, approve by admin, deprecate, the audit
# trail), authorization per scope (alice holds no registry scope: 403; a read-only token
# cannot write), and bad input (400 problem+json, 404).
# stack: pg,redis
# labels: registry,e2e,sanitize
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"

. "$root/tests/registry/services.sh"
admin=$TOKEN_ADMIN
alice=$TOKEN_ALICE
reader=$TOKEN_READER

fails=0
out=$SB_TEST_TMP/out.json
# req TOKEN METHOD PATH [BODY]: prints the status; the body is in $out
req() {
	curl -s -o "$out" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" \
		${4:+-H 'Content-Type: application/json' --data-binary "$4"} "$SB_GW$3"
}
expect() { # what want got
	if [ "$2" = "$3" ]; then echo "ok: $1"; else
		echo "FAIL: $1: want $2, got $3 ($(head -c 400 "$out"))"; fails=$((fails + 1)); fi
}
j() { jq -r "$1" "$out"; }

v1='{"type":"object","properties":{"id":{"type":"string"},"qty":{"type":"integer","minimum":1}},"required":["id"]}'
expect "register v1" 201 "$(req "$admin" POST /api/v1/schemas "{\"subject\":\"orders\",\"schema\":$v1}")"
id1=$(j .id)
expect "v1 is version 1, active" "1 active true" "$(j '"\(.version) \(.state) \(.created)"')"
expect "the same schema again answers its version" 200 \
	"$(req "$admin" POST /api/v1/schemas "{\"subject\":\"orders\",\"schema\":$v1}")"
expect "  ... the same id, nothing created" "$id1 false" "$(j '"\(.id) \(.created)"')"
# BACKWARD (the default): an optional property with an empty schema, a widened type: compatible
v2='{"type":"object","properties":{"id":{"type":"string"},"qty":{"type":"number","minimum":1},"note":{}},"required":["id"]}'
expect "register a compatible v2" 201 "$(req "$admin" POST /api/v1/schemas "{\"subject\":\"orders\",\"schema\":$v2}")"
id2=$(j .id)
expect "v2 is version 2" 2 "$(j .version)"
# a new required property and a narrowed type: refused, each change named with its pointer
v3='{"type":"object","properties":{"id":{"type":"integer"},"qty":{"type":"number"},"note":{},"sku":{"type":"string"}},"required":["id","sku"]}'
expect "an incompatible change is refused" 409 "$(req "$admin" POST /api/v1/schemas "{\"subject\":\"orders\",\"schema\":$v3}")"
expect "  ... as problem+json" 409 "$(j .status)"
expect "  ... naming the changed type" true "$(j '[.errors[] | select(.field == "#/properties/id/type" and .reason == "TYPE_CHANGED")] | length == 1')"
expect "  ... and the added required property" true "$(j '[.errors[] | select(.reason == "REQUIRED_ATTRIBUTE_ADDED")] | length == 1')"
expect "  ... and nothing was stored" 2 "$(req "$admin" GET '/api/v1/schemas?subject=orders' >/dev/null; j '.schemas | length')"

# validation: errors carry JSON pointers
expect "validate a good document" 200 "$(req "$reader" POST "/api/v1/schemas/$id2/validate" '{"id":"a","qty":2.5}')"
expect "  ... valid" "true 0" "$(j '"\(.valid) \(.errors | length)"')"
expect "validate a bad document" 200 "$(req "$reader" POST "/api/v1/schemas/$id2/validate" '{"qty":0}')"
expect "  ... invalid" false "$(j .valid)"
expect "  ... the minimum violated at /qty" true "$(j '[.errors[] | select(.pointer == "/qty")] | length >= 1')"
expect "  ... the missing required property at the root" true "$(j '[.errors[] | select(.pointer == "" and (.message | test("id")))] | length >= 1')"
expect "validate a document that is not an object" 200 "$(req "$reader" POST "/api/v1/schemas/$id2/validate" '[1,2]')"
expect "  ... invalid (type)" false "$(j .valid)"
expect "validate something that is not JSON" 400 "$(req "$reader" POST "/api/v1/schemas/$id2/validate" '{"a":')"
expect "validate against no schema" 404 "$(req "$reader" POST /api/v1/schemas/999999/validate '{}')"

# approval workflow on a protected subject
expect "protect the subject (admin)" 200 "$(req "$admin" PUT /api/v1/subjects/orders/config '{"protected":true,"compatibility":"BACKWARD"}')"
expect "  ... protected" "true BACKWARD" "$(j '"\(.protected) \(.compatibility)"')"
expect "alice cannot configure subjects" 403 "$(req "$alice" PUT /api/v1/subjects/orders/config '{"protected":false}')"
expect "a breaking change to a protected subject becomes pending" 202 \
	"$(req "$admin" POST /api/v1/schemas "{\"subject\":\"orders\",\"schema\":$v3}")"
id3=$(j .id)
expect "  ... pending, approval required, version 3" "pending true 3" "$(j '"\(.state) \(.approval_required) \(.version)"')"
expect "  ... listing its incompatibilities" true "$(j '[.incompatibilities[] | select(.type == "TYPE_CHANGED")] | length == 1')"
expect "pending versions are listed by state" "$id3" "$(req "$reader" GET '/api/v1/schemas?state=pending' >/dev/null; j '.schemas[0].id')"
expect "a reader cannot approve" 403 "$(req "$reader" POST "/api/v1/schemas/$id3/approve")"
expect "alice cannot approve" 403 "$(req "$alice" POST "/api/v1/schemas/$id3/approve")"
expect "admin approves" 200 "$(req "$admin" POST "/api/v1/schemas/$id3/approve")"
expect "  ... now active" active "$(j .state)"
expect "approving twice is refused" 412 "$(req "$admin" POST "/api/v1/schemas/$id3/approve")"
expect "admin deprecates v1" 200 "$(req "$admin" POST "/api/v1/schemas/$id1/deprecate")"
expect "  ... deprecated" deprecated "$(j .state)"
expect "deprecating twice is refused" 412 "$(req "$admin" POST "/api/v1/schemas/$id1/deprecate")"
expect "the audit trail of v3" 200 "$(req "$reader" GET "/api/v1/schemas/$id3")"
expect "  ... pending then approved, by whom" "pending approve" "$(j '[.audit[].action] | join(" ")')"
expect "  ... the approver is named" true "$(j '.audit[1].actor | length > 0')"
expect "the audit trail of v1" "register deprecate" "$(req "$reader" GET "/api/v1/schemas/$id1" >/dev/null; j '[.audit[].action] | join(" ")')"

# authorization and bad input
expect "alice cannot read schemas" 403 "$(req "$alice" GET /api/v1/schemas)"
expect "a reader cannot register" 403 "$(req "$reader" POST /api/v1/schemas "{\"subject\":\"x\",\"schema\":$v1}")"
expect "no token" 401 "$(curl -s -o "$out" -w '%{http_code}' "$SB_GW/api/v1/schemas")"
expect "a schema that is not a schema" 400 "$(req "$admin" POST /api/v1/schemas '{"subject":"bad","schema":{"type":12}}')"
expect "  ... problem+json naming the field" schema "$(j '.errors[0].field')"
expect "no subject" 400 "$(req "$admin" POST /api/v1/schemas "{\"schema\":$v1}")"
expect "a subject with a control character" 400 "$(req "$admin" POST /api/v1/schemas "{\"subject\":\"a\\u0001b\",\"schema\":$v1}")"
expect "an unsupported draft" 400 "$(req "$admin" POST /api/v1/schemas "{\"subject\":\"d\",\"draft\":2020,\"schema\":$v1}")"
expect "a body that is not JSON" 400 "$(req "$admin" POST /api/v1/schemas '{"subject":')"
expect "an unknown schema" 404 "$(req "$reader" GET /api/v1/schemas/424242)"
expect "a bad compatibility level" 400 "$(req "$admin" PUT /api/v1/subjects/orders/config '{"compatibility":"SIDEWAYS"}')"
expect "a draft 4 schema" 201 "$(req "$admin" POST /api/v1/schemas '{"subject":"d4","draft":4,"schema":{"type":"integer","maximum":3,"exclusiveMaximum":true}}')"
d4=$(j .id)
expect "  ... validates draft 4 semantics (3 is excluded)" false "$(req "$reader" POST "/api/v1/schemas/$d4/validate" '3' >/dev/null; j .valid)"
# the outcomes are counted on /metrics
m=$(curl -s "http://127.0.0.1:${SVC_OPS[registry]}/metrics")
for want in 'registry_registrations_total{result="created"} 3' 'registry_registrations_total{result="existing"} 1' \
	'registry_registrations_total{result="incompatible"} 1' 'registry_registrations_total{result="pending"} 1' \
	'registry_registrations_total{result="invalid"} 1' 'registry_validations_total{result="invalid"} 3' \
	'registry_validations_total{result="valid"} 1'; do
	grep -qF "$want" <<<"$m" && echo "ok: metric $want" ||
		{ echo "FAIL: metric $want: $(grep -F "${want%\}*}" <<<"$m")"; fails=$((fails + 1)); }
done
promtool check metrics <<<"$m" >/dev/null 2>"$SB_TEST_TMP/promtool.txt" && echo "ok: /metrics passes promtool" ||
	{ echo "FAIL: promtool: $(head -5 "$SB_TEST_TMP/promtool.txt")"; fails=$((fails + 1)); }
# the registry logged the refusals
grep -q '"msg":"schema refused: incompatible"' "$SB_TEST_TMP/logs/registry.log" ||
	{ echo "FAIL: no log line for the refused schema"; fails=$((fails + 1)); }

[ $fails = 0 ] || { echo "FAIL: $fails check(s)"; tail -5 "$SB_TEST_TMP/logs/registry.log"; exit 1; }
echo "PASS: registry seed API"
