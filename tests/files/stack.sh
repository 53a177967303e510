# stack.sh: what the files tests share. Source after tools/stack.sh and tests/lib/services.sh.
#   files_stack_up [VAR=value ...]   auth, messages, gateway and files (extra env for files),
#                                    the dev clients seeded; sets F (files' edge URL), store
#                                    (its storage directory), creds, alice and bob (tokens)
#   files_token CLIENT [SCOPE]       a token of a seeded client

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
