/* routes_notifier.c: the gateway routes served by the notifier service (one row per endpoint). */
#include "gateway.h"

const struct gw_route gw_routes_notifier[] = {
	{ NULL },
};
