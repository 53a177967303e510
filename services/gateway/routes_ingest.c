/* routes_ingest.c: the gateway routes served by the ingest service (one row per endpoint).
 * POST /api/v1/ingest/test injects telemetry samples through sb-ingest's pipeline; it needs a
 * token with scope ingest:write. It is not counted by the per-user rate limit: the ingest
 * queue's own backpressure answers 429 with Retry-After (docs/ingest.md). */
#include "gateway.h"

#include "ingest.pb-c.h"

#define GW_ING_ROW(METHOD, PATTERN, RPC, REQ, RESP, STATUS, FLAGS, SCOPE)                          \
	{                                                                                          \
		METHOD, PATTERN, NULL, "ingest", "ingest." RPC, &sb__ingest__##REQ##__descriptor,  \
		    &sb__ingest__##RESP##__descriptor, STATUS, FLAGS, SCOPE                        \
	}

const struct gw_route gw_routes_ingest[] = {
	GW_ING_ROW("POST", "/api/v1/ingest/test", "Test", test_request, test_response, 202, 0,
	           "ingest:write"),
	{ NULL },
};
