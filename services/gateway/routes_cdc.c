/* routes_cdc.c: the gateway routes served by the cdcsink service (one row per endpoint), its
 * admin API: every route needs scope cdc:admin. */
#include "gateway.h"

#include "cdcsink.pb-c.h"

#define GW_CDC_ROW(METHOD, PATTERN, RPC, REQ, RESP, FLAGS)                                         \
	{                                                                                          \
		METHOD, PATTERN, NULL, "cdcsink", "cdcsink." RPC,                                  \
		    &sb__cdcsink__##REQ##__descriptor, &sb__cdcsink__##RESP##__descriptor, 200,    \
		    FLAGS, "cdc:admin"                                                             \
	}

const struct gw_route gw_routes_cdc[] = {
	GW_CDC_ROW("GET", "/api/v1/cdc/status", "Status", status_request, status_response, 0),
	GW_CDC_ROW("POST", "/api/v1/cdc/tables/{table}/pause", "Pause", table_request, table_status,
	           GW_MUTATING),
	GW_CDC_ROW("POST", "/api/v1/cdc/tables/{table}/resume", "Resume", table_request,
	           table_status, GW_MUTATING),
	GW_CDC_ROW("PUT", "/api/v1/cdc/tables/{table}/backfill", "SetBackfill", backfill_request,
	           table_status, GW_MUTATING),
	GW_CDC_ROW("POST", "/api/v1/cdc/validation-errors/{id}/resubmit", "Resubmit",
	           resubmit_request, resubmit_response, GW_MUTATING),
	{ NULL },
};
