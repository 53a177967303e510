/* service.c: the start and stop hooks of sb-gc. */
#include "gc.h"

#include <stdlib.h>

#include "sb_err.h"
#include "sb_log.h"

int
gc_service_start(struct sb_service *svc)
{
	const struct gc_cfg *cfg = sb_service_config(svc);
	struct gc *g;
	int ret;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return SB_ENOMEM;
	g->cfg = cfg;
	g->files = sb_service_upstream(svc, "files");
	/* Its own connection: the lease is a lock of this session. */
	const struct sb_pg_opts o = { .options = "-c application_name=" GC_APP_NAME };
	if ((ret = sb_pg_open_opts(cfg->common.database_url, gc_stmts, &o, &g->pg)) != 0)
		goto fail;
	if ((ret = gc_loop_start(g)) != 0)
		goto fail;
	sb_service_set_state(svc, g);
	return 0;
fail:
	sb_log_kv(SB_LOG_ERROR, "gc start failed", "error", sb_strerror(ret), NULL);
	sb_pg_close(g->pg);
	free(g);
	return ret;
}

void
gc_service_stop(struct sb_service *svc)
{
	struct gc *g = sb_service_state(svc);

	if (g == NULL)
		return;
	gc_loop_stop(g);
	/* Closing the session releases the lease at once: another replica takes over. */
	sb_pg_close(g->pg);
	free(g);
	sb_service_set_state(svc, NULL);
}
