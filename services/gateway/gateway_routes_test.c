/* gateway_routes_test.c: the route matcher (routes.c): literal and parameterised patterns,
 * HEAD served by GET rows, 405 rather than 404 for a known path, the Allow list, and paths that
 * must not match (prefixes, trailing slashes, empty, over-long or too many parameters). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway.h"

/* match returns the row for method and path and checks its pattern (NULL: no row). */
static const struct gw_route *
match(const char *method, const char *path, const char *pattern, bool known, struct gw_params *p)
{
	bool path_known = !known;
	const struct gw_route *r = gw_route_match(method, path, p, &path_known);
	if (pattern == NULL) {
		assert_null(r);
	} else {
		assert_non_null(r);
		assert_string_equal(r->pattern, pattern);
	}
	assert_int_equal(path_known, known);
	return r;
}

static void
test_literal(void **state)
{
	(void)state;
	struct gw_params p;
	const struct gw_route *r = match("GET", "/v1/me", "/v1/me", true, &p);
	assert_ptr_equal(r->local, gw_me);
	assert_int_equal(p.n, 0);
	r = match("GET", "/", "/", true, &p);
	assert_ptr_equal(r->local, gw_static);
	r = match("POST", "/auth/token", "/auth/token", true, &p);
	assert_null(r->local);
	assert_string_equal(r->peer, "auth");
	assert_string_equal(r->rpc, "auth.Token");
	assert_true(r->flags & GW_PUBLIC);
	assert_true(r->flags & GW_BASIC);
	r = match("GET", "/v1/health/messages", "/v1/health/messages", true, &p);
	assert_string_equal(r->rpc, "messages.Health");
	/* one pattern, two methods, two rows */
	r = match("GET", "/v1/conversations", "/v1/conversations", true, &p);
	assert_string_equal(r->rpc, "messages.ListConversations");
	r = match("POST", "/v1/conversations", "/v1/conversations", true, &p);
	assert_string_equal(r->rpc, "messages.CreateConversation");
	assert_int_equal(r->ok_status, 201);
	assert_true(r->flags & GW_MUTATING);
}

static void
test_params(void **state)
{
	(void)state;
	struct gw_params p;
	const struct gw_route *r =
	    match("GET", "/v1/conversations/c-1", "/v1/conversations/{id}", true, &p);
	assert_string_equal(r->rpc, "messages.GetConversation");
	assert_int_equal(p.n, 1);
	assert_string_equal(p.name[0], "id");
	assert_string_equal(p.value[0], "c-1");
	r = match("DELETE", "/v1/conversations/c-2/members/u-3",
	          "/v1/conversations/{id}/members/{user_id}", true, &p);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.name[0], "id");
	assert_string_equal(p.value[0], "c-2");
	assert_string_equal(p.name[1], "user_id");
	assert_string_equal(p.value[1], "u-3");
	/* a literal after a parameter must still match exactly */
	r = match("GET", "/v1/conversations/c-4/messages", "/v1/conversations/{id}/messages", true,
	          &p);
	assert_string_equal(p.value[0], "c-4");
	match("GET", "/v1/conversations/c-4/message", NULL, false, &p);
	match("GET", "/v1/conversations/c-4/messagesX", NULL, false, &p);
	/* the value is taken as sent (the target is not percent-decoded) */
	r = match("GET", "/console/app.js", "/console/{file}", true, &p);
	assert_string_equal(p.value[0], "app.js");
	r = match("GET", "/console/a%2Fb", "/console/{file}", true, &p);
	assert_string_equal(p.value[0], "a%2Fb");
	/* the longest value that fits (GW_PARAM_MAX bytes: a 128-byte user id, every byte
	 * escaped; a 128-byte one could once be added as a member but never removed), and one
	 * byte more */
	char path[512], v[GW_PARAM_MAX + 2];
	memset(v, 'x', GW_PARAM_MAX);
	v[GW_PARAM_MAX] = '\0';
	snprintf(path, sizeof(path), "/v1/conversations/c-1/members/%s", v);
	match("DELETE", path, "/v1/conversations/{id}/members/{user_id}", true, &p);
	assert_string_equal(p.value[1], v);
	memset(v, 'x', GW_PARAM_MAX + 1);
	v[GW_PARAM_MAX + 1] = '\0';
	snprintf(path, sizeof(path), "/v1/conversations/c-1/members/%s", v);
	match("DELETE", path, NULL, false, &p);
}

static void
test_no_match(void **state)
{
	(void)state;
	struct gw_params p;
	const char *paths[] = {
		"",                           /* empty */
		"/v1",                        /* a prefix of routes */
		"/v1/",                       /* ditto */
		"/v1/me/",                    /* trailing slash */
		"/v1/mee",                    /* longer literal */
		"/v1/m",                      /* shorter literal */
		"//v1/me",                    /* doubled slash */
		"/V1/ME",                     /* case matters */
		"/v1/conversations/",         /* empty parameter */
		"/v1/conversations//members", /* empty parameter inside */
		"/v1/conversations/a/b",      /* parameter spans one segment only */
		"/v1/health/nosuchservice",   /* no such row */
		"/console/",                  /* empty file */
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		bool known = true;
		assert_null(gw_route_match("GET", paths[i], &p, &known));
		assert_false(known);
		assert_null(gw_route_match("POST", paths[i], &p, &known));
		assert_false(known);
	}
}

static void
test_methods(void **state)
{
	(void)state;
	struct gw_params p;
	/* HEAD is served by the GET row */
	match("HEAD", "/v1/me", "/v1/me", true, &p);
	const struct gw_route *r =
	    match("HEAD", "/v1/conversations/c", "/v1/conversations/{id}", true, &p);
	assert_string_equal(r->method, "GET");
	/* a known path with another method: no row, but known (405) */
	match("PUT", "/v1/me", NULL, true, &p);
	match("DELETE", "/v1/conversations", NULL, true, &p);
	match("GET", "/auth/token", NULL, true, &p);
	match("HEAD", "/auth/token", NULL, true, &p); /* HEAD only falls back to GET */
	match("get", "/v1/me", NULL, true, &p);       /* methods are case-sensitive */
	char allow[64];
	gw_route_allow("/v1/conversations", allow, sizeof(allow));
	assert_string_equal(allow, "POST, GET");
	gw_route_allow("/v1/me", allow, sizeof(allow));
	assert_string_equal(allow, "GET");
	gw_route_allow("/v1/webhooks/w-1", allow, sizeof(allow));
	assert_string_equal(allow, "DELETE");
	gw_route_allow("/nothing", allow, sizeof(allow));
	assert_string_equal(allow, "");
	/* a list that does not fit stops before the method that does not fit */
	char small[8];
	gw_route_allow("/v1/conversations", small, sizeof(small));
	assert_string_equal(small, "POST");
}

static void
test_most_literal_wins(void **state)
{
	(void)state;
	/* /api/v1/messages/publish is the literal route's path (POST), not an {id} of GET
	 * /api/v1/messages/{id}: GET there is 405 with Allow: POST. */
	struct gw_params p;
	bool known = false;
	char allow[64];
	const struct gw_route *r = gw_route_match("POST", "/api/v1/messages/publish", &p, &known);
	assert_non_null(r);
	assert_string_equal(r->pattern, "/api/v1/messages/publish");
	assert_null(gw_route_match("GET", "/api/v1/messages/publish", &p, &known));
	assert_true(known);
	gw_route_allow("/api/v1/messages/publish", allow, sizeof(allow));
	assert_string_equal(allow, "POST");
	r = gw_route_match("GET", "/api/v1/messages/0b6f1a2e-2f43-4c36-9a55-3f1c0de1a7b2", &p,
	                   &known);
	assert_non_null(r);
	assert_string_equal(r->pattern, "/api/v1/messages/{id}");
	gw_route_allow("/api/v1/messages/x", allow, sizeof(allow));
	assert_string_equal(allow, "GET");
}

static void
test_tables(void **state)
{
	(void)state;
	/* Every row is matched by its own pattern (with parameters filled in) and no earlier row
	 * of the same method shadows it. */
	const struct gw_route *const tables[] = { gw_routes_core,     gw_routes_auth,
		                                  gw_routes_messages, gw_routes_notifier,
		                                  gw_routes_cdc,      gw_routes_pubsub,
		                                  gw_routes_ingest,   gw_routes_registry };
	size_t rows = 0;
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (const struct gw_route *r = tables[t]; r->method != NULL; r++, rows++) {
			char path[256];
			size_t o = 0;
			for (const char *s = r->pattern; *s != '\0' && o + 2 < sizeof(path);) {
				if (*s == '{') {
					path[o++] = 'v';
					s = strchr(s, '}') + 1;
				} else {
					path[o++] = *s++;
				}
			}
			path[o] = '\0';
			struct gw_params p;
			bool known = false;
			assert_ptr_equal(gw_route_match(r->method, path, &p, &known), r);
			assert_true(known);
			assert_true(r->local != NULL || (r->peer && r->rpc && r->req && r->resp));
		}
	}
	assert_true(rows > 20);
}

static void
test_list(void **state)
{
	(void)state;
	/* `sb-gateway --routes` lists exactly the rows, "METHOD PATTERN" a line, each row once:
	 * every line is a row of its method and pattern, and there are as many lines as rows. */
	struct sb_buf b = SB_BUF_INIT;
	assert_int_equal(gw_routes_list(&b), 0);
	assert_non_null(b.data);
	assert_int_equal(b.data[b.len - 1], '\n');
	const struct gw_route *const tables[] = { gw_routes_core,     gw_routes_auth,
		                                  gw_routes_messages, gw_routes_notifier,
		                                  gw_routes_cdc,      gw_routes_pubsub,
		                                  gw_routes_ingest,   gw_routes_registry };
	size_t rows = 0, lines = 0;
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (const struct gw_route *r = tables[t]; r->method != NULL; r++, rows++) {
			char line[300];
			snprintf(line, sizeof(line), "%s%s %s\n", rows ? "\n" : "", r->method,
			         r->pattern);
			/* a whole line: preceded by a newline (or first) and ended by one */
			const char *at = rows ? strstr(b.data, line) : b.data;
			assert_non_null(at);
			assert_memory_equal(at, line, strlen(line));
		}
	}
	for (size_t i = 0; i < b.len; i++)
		lines += b.data[i] == '\n';
	assert_int_equal(lines, rows);
	sb_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_no_match),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_most_literal_wins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
