#!/usr/bin/env bash
# `sb-auth token issue`: access tokens minted by the operator CLI are the token endpoint's
# tokens. sb-auth, sb-messages and sb-gateway run on free ports against real PostgreSQL and Redis; tokens
# issued for one user (--user) and for 1,000 users (--users FILE, names and ids mixed) must be
# accepted by the gateway on GET /v1/me as those users, carry the same claims as a token from
# POST /auth/token (iss, aud, sub, user_id, tenant_id, scope, client_id, jti, iat, exp; header
# typ at+jwt and the kid of a key in the JWKS), come out one per line in the file's order, and
# bad input must be refused without printing any token.
# stack: pg,redis
# labels: auth
set -u
root=${SB_SOURCE_ROOT:?}
export SB_BUILD_ROOT=${SB_BUILD_ROOT:?}
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
tmp=${SB_TEST_TMP:?}
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

sb_svc_ports gateway auth messages # the gateway is ready only with messages
ttl_max=3600
sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000 SB_AUTH_ACCESS_TTL_S=$ttl_max
sb_svc_start messages
sb_svc_start gateway
sb_svc_wait_ready auth messages gateway || exit 1
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$SB_TEST_PG_DSN" "$@"; }
# The CLI runs with the service's configuration (the same issuer and access-token lifetime).
cli() {
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="http://127.0.0.1:${SVC_HTTP[gateway]}" \
		SB_AUTH_ACCESS_TTL_S=$ttl_max SB_AUTH_PBKDF2_ITERATIONS=100000 \
		"$SB_BUILD_ROOT/bin/sb-auth" "$@"
}
b64url() { # decodes base64url from stdin
	local s
	s=$(tr '_-' '/+')
	while [ $((${#s} % 4)) != 0 ]; do s="$s="; done
	printf '%s' "$s" | base64 -d
}
claims() { cut -d. -f2 <<<"$1" | b64url; }
header() { cut -d. -f1 <<<"$1" | b64url; }
me() { curl -s -H "Authorization: Bearer $1" "$SB_GW/v1/me"; }

u1=$(cli user create --tenant acme --name u1 | jq -r .user_id)
tenant=$(q -c "SELECT id FROM auth.tenants WHERE name = 'acme'")
cli user create --tenant other --name stranger >/dev/null
[ ${#u1} = 36 ] && [ ${#tenant} = 36 ] || { echo "FAIL: user create"; exit 1; }

# 1. One user: the gateway takes the token as that user.
tok=$(cli token issue --tenant acme --scopes "messages:read messages:write" --ttl 600 --user u1 2>"$tmp/err1")
[ "$(wc -l <<<"$tok")" = 1 ] && [ "$(tr -cd . <<<"$tok" | wc -c)" = 2 ] || fail "one compact JWT expected, got: $tok"
grep -q '"event":"tokens_issued_cli"' "$tmp/err1" || fail "no audit line on stderr: $(cat "$tmp/err1")"
body=$(me "$tok")
if [ "$(jq -r .user_id <<<"$body")" = "$u1" ] && [ "$(jq -r .tenant_id <<<"$body")" = "$tenant" ] &&
	[ "$(jq -r .client_id <<<"$body")" = sb-auth-cli ] &&
	[ "$(jq -c .scopes <<<"$body")" = '["messages:read","messages:write"]' ]; then
	ok "gateway /v1/me accepts the CLI's token as u1"
else
	fail "/v1/me with the CLI's token: $body"
fi
c=$(claims "$tok") h=$(header "$tok")
exp_iat=$(jq '.exp - .iat' <<<"$c")
now=$(date +%s)
if [ "$(jq -r .iss <<<"$c")" = "http://127.0.0.1:${SVC_HTTP[gateway]}" ] && [ "$(jq -r .aud <<<"$c")" = switchboard ] &&
	[ "$(jq -r .sub <<<"$c")" = "$u1" ] && [ "$(jq -r .user_id <<<"$c")" = "$u1" ] &&
	[ "$(jq -r .jti <<<"$c" | wc -c)" = 37 ] && [ "$exp_iat" = 600 ] &&
	[ $(($(jq .iat <<<"$c") - now)) -le 1 ] && [ "$(jq -r .typ <<<"$h")" = at+jwt ]; then
	ok "claims iss, aud, sub, user_id, jti, iat, exp (ttl 600) and typ at+jwt"
else
	fail "claims $c header $h"
fi
# The same claim names as a token from the token endpoint (a client acting as u1).
creds=$(cli client create --tenant acme --name app --scopes "messages:read messages:write" --user u1)
ep=$(curl -s -u "$(jq -r .client_id <<<"$creds"):$(jq -r .client_secret <<<"$creds")" \
	-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
if [ "$(claims "$ep" | jq -c 'keys')" = "$(jq -c 'keys' <<<"$c")" ] &&
	[ "$(header "$ep" | jq -c '[.alg, .kid, .typ]')" = "$(jq -c '[.alg, .kid, .typ]' <<<"$h")" ]; then
	ok "same claim names, alg, kid and typ as a token of POST /auth/token"
else
	fail "claims differ: endpoint $(claims "$ep") cli $c"
fi
kid=$(jq -r .kid <<<"$h")
curl -s "$SB_GW/.well-known/jwks.json" | jq -e --arg k "$kid" '.keys | map(.kid) | index($k) != null' >/dev/null &&
	ok "its kid is in the JWKS" || fail "kid $kid not in the JWKS"

# 2. 1,000 users from a file, by name and by id, in order.
q -c "INSERT INTO auth.users (id, tenant_id, name) SELECT gen_random_uuid(), '$tenant', 'bulk' || g FROM generate_series(1, 1000) g"
q -c "SELECT CASE WHEN g % 3 = 0 THEN u.id::text ELSE u.name END FROM generate_series(1, 1000) g JOIN auth.users u ON u.name = 'bulk' || g ORDER BY g" >"$tmp/users"
q -c "SELECT u.id FROM generate_series(1, 1000) g JOIN auth.users u ON u.name = 'bulk' || g ORDER BY g" >"$tmp/ids"
t0=$(date +%s.%N)
cli token issue --tenant acme --scopes messages:read --ttl $ttl_max --users "$tmp/users" >"$tmp/tokens" 2>/dev/null ||
	fail "token issue --users exited $?"
t1=$(date +%s.%N)
n=$(wc -l <"$tmp/tokens")
distinct=$(sort -u "$tmp/tokens" | wc -l)
if [ "$n" = 1000 ] && [ "$distinct" = 1000 ]; then
	ok "1,000 distinct tokens in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
else
	fail "1,000 tokens expected, got $n ($distinct distinct)"
fi
bad_order=0
while read -r i; do
	want=$(sed -n "${i}p" "$tmp/ids") got=$(claims "$(sed -n "${i}p" "$tmp/tokens")" | jq -r .sub)
	[ "$want" = "$got" ] || bad_order=$((bad_order + 1))
done < <(printf '%s\n' 1 2 3 500 999 1000)
[ $bad_order = 0 ] && ok "line i is the token of the file's user i" || fail "$bad_order tokens out of order"
got=$(me "$(sed -n 999p "$tmp/tokens")" | jq -r .user_id)
[ "$got" = "$(sed -n 999p "$tmp/ids")" ] && ok "gateway accepts a token of the bulk file" || fail "bulk token on /v1/me: $got"

# 3. Refusals: nothing on stdout, exit 2 for usage errors, 1 for unknown tenant or users.
refused() { # want_status description args...
	local want=$1 what=$2 out st
	shift 2
	out=$(cli token issue "$@" 2>"$tmp/err")
	st=$?
	if [ $st = "$want" ] && [ -z "$out" ] && [ -s "$tmp/err" ]; then
		ok "refused ($st): $what: $(grep -v '^{' "$tmp/err" | head -1)"
	else
		fail "$what: status $st (want $want), stdout '${out:0:40}', stderr $(cat "$tmp/err")"
	fi
}
printf 'bulk1\nnobody\nbulk2\n' >"$tmp/unknown"
printf 'bulk1\n\nbulk2\n' >"$tmp/blank"
refused 1 "an unknown user in the file" --tenant acme --scopes a --ttl 60 --users "$tmp/unknown"
refused 1 "a user of another tenant" --tenant acme --scopes a --ttl 60 --user stranger
refused 1 "an unknown tenant" --tenant nope --scopes a --ttl 60 --user u1
refused 2 "ttl above SB_AUTH_ACCESS_TTL_S" --tenant acme --scopes a --ttl $((ttl_max + 1)) --user u1
refused 2 "ttl 0" --tenant acme --scopes a --ttl 0 --user u1
refused 2 "tokens:issue for a user" --tenant acme --scopes "a tokens:issue" --ttl 60 --user u1
refused 2 "both --user and --users" --tenant acme --scopes a --ttl 60 --user u1 --users "$tmp/users"
refused 2 "an empty line" --tenant acme --scopes a --ttl 60 --users "$tmp/blank"
refused 2 "no --scopes" --tenant acme --ttl 60 --user u1

[ $fails = 0 ] && echo "PASS" || { echo "$fails check(s) failed"; tail -n 5 "$tmp/logs/auth.log"; exit 1; }
