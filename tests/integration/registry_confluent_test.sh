#!/usr/bin/env bash
# The Confluent-compatible API of the registry with Confluent's own client (PyPI confluent-kafka,
# SchemaRegistryClient, JSONSerializer/JSONDeserializer; tests/registry/confluent_client.py),
# through nginx with the ingress's /registry route (tools/nginx.conf.in), with bearer tokens of
# the real auth service; plus what the client does not show: no token is 401, the error body
# is Confluent's, unknown routes are 404 and other methods 405.
# stack: pg,redis
# labels: registry,e2e
set -u
root=${SB_SOURCE_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
py=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/venv-confluent/bin/python
[ -x "$py" ] || { echo "FAIL: $py is missing: run tools/install-deps.sh"; exit 1; }

. "$root/tests/registry/services.sh"
SB_TOKEN_ADMIN=$TOKEN_ADMIN
SB_TOKEN_READER=$TOKEN_READER
SB_TOKEN_ALICE=$TOKEN_ALICE
SB_ADMIN_BASIC="$(jq -r .admin.client_id "$creds"):$(jq -r .admin.client_secret "$creds")"
export SB_TOKEN_ADMIN SB_TOKEN_READER SB_TOKEN_ALICE SB_ADMIN_BASIC
reg=http://127.0.0.1:${SVC_HTTP[registry]}

fails=0
expect() { if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: want $2, got $3"; fails=$((fails + 1)); fi; }
out=$SB_TEST_TMP/out.json
expect "no token: 401" 401 "$(curl -s -o "$out" -w '%{http_code}' "$reg/subjects")"
expect "  ... with Confluent's error body" 40101 "$(jq -r .error_code "$out")"
expect "a forged token: 401" 401 "$(curl -s -o "$out" -w '%{http_code}' -H 'Authorization: Bearer a.b.c' "$reg/subjects")"
expect "unknown route: 404" 404 "$(curl -s -o "$out" -w '%{http_code}' -H "Authorization: Bearer $SB_TOKEN_READER" "$reg/nothing/here")"
expect "another method: 405" 405 "$(curl -s -o "$out" -w '%{http_code}' -X PATCH -H "Authorization: Bearer $SB_TOKEN_READER" "$reg/subjects")"
expect "a body that is not JSON: 422" 422 "$(curl -s -o "$out" -w '%{http_code}' -H "Authorization: Bearer $SB_TOKEN_ADMIN" -H 'Content-Type: application/json' -d '{"schema":' "$reg/subjects/s/versions")"
expect "Basic credentials of a client: 200" 200 "$(curl -s -o "$out" -w '%{http_code}' -u "$SB_ADMIN_BASIC" "$reg/subjects")"
expect "  ... again (the cached token)" 200 "$(curl -s -o "$out" -w '%{http_code}' -u "$SB_ADMIN_BASIC" "$reg/subjects")"
expect "a wrong secret: 401" "401 40101" "$(curl -s -o "$out" -w '%{http_code}' -u "${SB_ADMIN_BASIC%%:*}:wrong" "$reg/subjects") $(jq -r .error_code "$out")"
expect "Basic that is not base64 id:secret: 401" 401 "$(curl -s -o "$out" -w '%{http_code}' -H 'Authorization: Basic !!!!' "$reg/subjects")"
expect "alice's client (no registry scope) by Basic: 403" 403 "$(curl -s -o "$out" -w '%{http_code}' -u "$(jq -r .alice.client_id "$creds"):$(jq -r .alice.client_secret "$creds")" "$reg/subjects")"
expect "a bad version id: 422" 42202 "$(curl -s -o "$out" -H "Authorization: Bearer $SB_TOKEN_READER" "$reg/subjects/s/versions/zero"; jq -r .error_code "$out")"

# The ingress: nginx from the checked-in template, /registry/ proxied to the registry's port.
ng=$SB_TEST_TMP/nginx
ngport=$(sb_free_port)
mkdir -p "$ng/tmp"
sed -e "s|@PREFIX@|$ng|g" -e "s|@LOGS@|$ng|g" -e "s|@USER@|user root;|g" \
	-e "s|@INGRESS_PORT@|$ngport|g" -e "s|@GATEWAY_PORT@|${SVC_HTTP[gateway]}|g" \
	-e "s|@REALTIME_PORT@|$(sb_free_port)|g" -e "s|@FILES_PORT@|$(sb_free_port)|g" \
	-e "s|@REGISTRY_PORT@|${SVC_HTTP[registry]}|g" "$root/tools/nginx.conf.in" >"$ng/nginx.conf"
sb_nginx_start "$ng" "$ng/nginx.conf" || { echo "FAIL: nginx did not start"; exit 1; }
trap 'sb_nginx_stop "$ng"; sb_svc_stop_all' EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$ngport/" && break; sleep 0.1; done
expect "through the ingress: /registry/subjects" 200 "$(curl -s -o "$out" -w '%{http_code}' -H "Authorization: Bearer $SB_TOKEN_READER" "http://127.0.0.1:$ngport/registry/subjects")"

SB_REGISTRY_URL=http://127.0.0.1:$ngport/registry timeout 120 "$py" "$root/tests/registry/confluent_client.py" ||
	fails=$((fails + 1))
[ $fails = 0 ] || { echo "FAIL: $fails"; tail -5 "$SB_TEST_TMP/logs/registry.log"; exit 1; }
echo "PASS: registry Confluent-compatible API"
