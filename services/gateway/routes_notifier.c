/* routes_notifier.c: the gateway routes served by the notifier service (one row per endpoint).
 * Every route needs an access token; the principal's tenant scopes the webhooks. */
#include "gateway.h"

#include "notifier.pb-c.h"

#define GW_NTF_ROW(METHOD, PATTERN, RPC, REQ, RESP, STATUS, FLAGS)                                 \
	{                                                                                          \
		METHOD, PATTERN, NULL, "notifier", "notifier." RPC,                                \
		    &sb__notifier__##REQ##__descriptor, &sb__notifier__##RESP##__descriptor,       \
		    STATUS, FLAGS, NULL                                                            \
	}

const struct gw_route gw_routes_notifier[] = {
	GW_NTF_ROW("POST", "/v1/webhooks", "CreateWebhook", create_webhook_request, webhook, 201,
	           GW_MUTATING),
	GW_NTF_ROW("GET", "/v1/webhooks", "ListWebhooks", list_webhooks_request,
	           list_webhooks_response, 200, 0),
	GW_NTF_ROW("DELETE", "/v1/webhooks/{id}", "DeleteWebhook", delete_webhook_request,
	           delete_webhook_response, 200, GW_MUTATING),
	{ NULL },
};
