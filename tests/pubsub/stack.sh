# tests/pubsub/stack.sh: what the pubsub integration scripts share, sourced after tools/stack.sh
# and tests/lib/services.sh inside with-stack ($tmp is SB_TEST_TMP).
#   ps_stack_start ENV...: auth, messages, pubsub (with ENV...) and the gateway on free ports,
#     the dev clients seeded, $tmp/tokens.json holding the tokens admin (client credentials),
#     produce and consume (tenant dev, user alice); exports SB_GW, SB_TOKENS, SB_PUBSUB_OPS.
#     Exits the script on failure.
#   ps_stop_pubsub: SIGTERM to pubsub; fails the script unless it exits 0 with no sanitizer
#     report and no error in its log.

ps_stack_start() {
	sb_svc_ports gateway auth messages pubsub
	sb_svc_start auth SB_AUTH_PBKDF2_ITERATIONS=100000
	sb_svc_start messages
	sb_svc_start pubsub "$@"
	sb_svc_start gateway SB_RATE_LIMIT_PER_MIN=10000000
	sb_svc_wait_ready auth messages pubsub gateway || exit 1
	local creds=$tmp/creds.json
	env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" SB_AUTH_PBKDF2_ITERATIONS=100000 \
		"$SB_BUILD_ROOT/bin/sb-auth" seed-dev --out "$creds" >/dev/null || { echo "FAIL: seed-dev"; exit 1; }
	ps_tok() {
		env DATABASE_URL="$SB_TEST_PG_DSN" SB_AUTH_ISSUER="$SB_GW" SB_AUTH_PBKDF2_ITERATIONS=100000 \
			"$SB_BUILD_ROOT/bin/sb-auth" token issue --tenant dev --scopes "$1" --ttl 900 --user alice
	}
	local admin
	admin=$(curl -s -u "$(jq -r .admin.client_id "$creds"):$(jq -r .admin.client_secret "$creds")" \
		-d grant_type=client_credentials "$SB_GW/auth/token" | jq -r .access_token)
	jq -n --arg admin "$admin" --arg produce "$(ps_tok pubsub:produce)" \
		--arg consume "$(ps_tok pubsub:consume)" \
		'{admin:$admin, produce:$produce, consume:$consume}' >"$tmp/tokens.json"
	local k
	for k in admin produce consume; do
		[ "$(jq -r ".$k | length" "$tmp/tokens.json")" -gt 100 ] || { echo "FAIL: no $k token"; exit 1; }
	done
	export SB_GW SB_TOKENS=$tmp/tokens.json SB_PUBSUB_OPS=http://127.0.0.1:${SVC_OPS[pubsub]}
}

ps_stop_pubsub() {
	kill -TERM "${SVC_PID[pubsub]}"
	wait "${SVC_PID[pubsub]}"
	local rc=$?
	unset "SVC_PID[pubsub]"
	[ $rc = 0 ] || { echo "FAIL: pubsub exit status $rc on SIGTERM"; tail -n 30 "$tmp/logs/pubsub.log"; exit 1; }
	if grep -E 'Sanitizer|runtime error|"level":"error"' "$tmp/logs/pubsub.log"; then
		echo "FAIL: pubsub's log has errors or sanitizer reports"
		exit 1
	fi
}
