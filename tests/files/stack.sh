# stack.sh: what the files tests share. Source after tools/stack.sh and tests/lib/services.sh.
#   files_stack_up [VAR=value ...]   auth, messages, gateway and files (extra env for files),
#                                    the dev clients seeded; sets F (files' edge URL), store
#                                    (its storage directory), creds, alice and bob (tokens)
#   files_token CLIENT [SCOPE]       a token of a seeded client
#   req, hdr, expect, problem_ok     curl helpers (below; expect calls the test's fail)

files_token() {
	curl -s -u "$(jq -r ".$1.client_id" "$creds"):$(jq -r ".$1.client_secret" "$creds")" \
		-d grant_type=client_credentials ${2:+-d "scope=$2"} "$SB_GW/auth/token" | jq -r .access_token
}

files_stack_up() {
	sb_svc_ports gateway auth messages files
	store=$SB_TEST_TMP/files
	sb_svc_start auth
	sb_svc_start messages
	sb_svc_start gateway
	sb_svc_start files SB_FILES_DIR="$store" "$@"
	sb_svc_wait_ready auth messages gateway files || return 1
	F=http://127.0.0.1:${SVC_HTTP[files]}
	creds=$SB_TEST_TMP/dev-credentials.json
	DATABASE_URL=$SB_TEST_PG_DSN "$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null ||
		{ echo "FAIL: seed-dev"; return 1; }
	alice=$(files_token alice)
	bob=$(files_token bob)
	[ -n "$alice" ] && [ "$alice" != null ] && [ -n "$bob" ] && [ "$bob" != null ] ||
		{ echo "FAIL: no tokens"; return 1; }
}

# Requests with curl for the files tests: req prints the status and keeps the head in $H and
# the body in $B; hdr NAME reads a header of the last answer; expect STATUS WHAT -- ARGS counts
# a wrong status through the test's own fail(); problem_ok STATUS checks an RFC 9457 body.
H=$SB_TEST_TMP/h.txt
B=$SB_TEST_TMP/b.txt
req() { curl -sS -D - -o "$B" "$@" | tr -d '\r' >"$H"; head -n1 "$H" | cut -d' ' -f2; }
hdr() { grep -i "^$1:" "$H" | head -n1 | cut -d' ' -f2-; }
expect() { # expect STATUS WHAT -- curl args
	local want=$1 what=$2
	shift 3
	local got
	got=$(req "$@")
	if [ "$got" != "$want" ]; then
		fail "$what: status $got, want $want"
		sed 's/^/    /' "$H" "$B" | head -n 20
		return 1
	fi
	echo "ok: $what ($got)"
}
problem_ok() { # the body is an RFC 9457 problem with the status
	grep -qi '^content-type: application/problem+json' "$H" &&
		[ "$(jq -r .status "$B")" = "$1" ] || fail "problem body for $1: $(cat "$B")"
}
