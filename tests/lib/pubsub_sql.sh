# tests/lib/pubsub_sql.sh: sb-pubsub's SQL as the binary sends it, read from the source
# (services/pubsub/store.c), for the scripts that explain it (bench/pubsub_profile.sh,
# tests/integration/pubsub_plans_test.sh). Needs $root (the source tree) and cpp.
#   ps_stmt_sql NAME: the text of store.c's prepared statement NAME, its macros expanded.
#   ps_stmt_names: the names of all of store.c's prepared statements, one a line.
#   ps_conn_options: the options pubsub's connections start with (ps_pg_opts), e.g.
#     "-c statement_timeout=10000 -c search_path=pubsub ...", for PGOPTIONS.

ps_stmt_sql() {
	local f=$root/services/pubsub/store.c
	{ sed -n '/^#define PS_TS/,/^const struct sb_pg_stmt ps_stmts/p' "$f" | sed '$d'; awk -v s="{ \"$1\"," 'index($0, s) { p = 1 } p { print } p && /[0-9] },/ { exit }' "$f"; } |
		cpp -P 2>/dev/null | grep -o '"\([^"\\]\|\\.\)*"' | sed '1d;s/^"//;s/"$//' | tr -d '\n' | sed 's/\\"/"/g'
}

ps_stmt_names() {
	sed -n '/^const struct sb_pg_stmt ps_stmts/,/^};/p' "$root/services/pubsub/store.c" |
		grep -o '^	{ "[a-z_]*",' | sed 's/^	{ "//;s/",$//'
}

ps_conn_options() { # the C literals joined as the compiler joins them
	sed -n '/^const struct sb_pg_opts ps_pg_opts/,/};/p' "$root/services/pubsub/store.c" |
		grep -o '"[^"]*"' | tr -d '"\n' | sed 's/ *$//'
}
