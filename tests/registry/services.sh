# tests/registry/services.sh: sourced by the registry's integration tests after tools/stack.sh
# and tests/lib/services.sh: starts auth, messages (the gateway is ready only with it), the
# registry and the gateway on free ports, seeds the dev clients, and sets the bearer tokens
# TOKEN_ADMIN (every registry scope), TOKEN_READER (the admin client asking for registry:read
# only) and TOKEN_ALICE (no registry scope). Exits the test when any of it fails.
sb_svc_ports gateway auth messages registry
sb_svc_start auth
sb_svc_start messages
sb_svc_start registry
sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=100000
sb_svc_wait_ready auth messages registry gateway || exit 1
creds=$SB_TEST_TMP/dev-credentials.json
DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
	{ echo "FAIL: seed-dev"; exit 1; }
reg_token() { # role [scope]
	curl -s -u "$(jq -r ".$1.client_id" "$creds"):$(jq -r ".$1.client_secret" "$creds")" \
		-d grant_type=client_credentials ${2:+-d "scope=$2"} "$SB_GW/auth/token" | jq -r .access_token
}
TOKEN_ADMIN=$(reg_token admin)
TOKEN_READER=$(reg_token admin "registry:read")
TOKEN_ALICE=$(reg_token alice)
for t in "$TOKEN_ADMIN" "$TOKEN_READER" "$TOKEN_ALICE"; do
	[ -n "$t" ] && [ "$t" != null ] || { echo "FAIL: no access token"; exit 1; }
done
# A second tenant ("tenant-b", user erin), for the tenancy tests: TOKEN_B (every registry
# scope), TOKEN_B_WRITE (read and write, not admin). Tokens issued by auth's CLI, as auth
# issues them (the same keys, issuer and claims, the tenant's id in tenant_id).
reg_cli() {
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" "$SB_BUILD_ROOT/bin/sb-auth" "$@"
}
reg_cli user create --tenant tenant-b --name erin >/dev/null || { echo "FAIL: user create"; exit 1; }
TOKEN_B=$(reg_cli token issue --tenant tenant-b --user erin --ttl 900 \
	--scopes 'registry:read registry:write registry:admin')
TOKEN_B_WRITE=$(reg_cli token issue --tenant tenant-b --user erin --ttl 900 \
	--scopes 'registry:read registry:write')
for t in "$TOKEN_B" "$TOKEN_B_WRITE"; do
	[ "${#t}" -gt 100 ] || { echo "FAIL: no access token for tenant-b"; exit 1; }
done
