/* service.c: start and stop hooks, per-worker connections. */
#include "messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"

int
msg_open_pg(const struct messages_cfg *cfg, struct sb_pg **out)
{
	/* The tables live in schema messages. statement_timeout bounds every statement, so that a
	 * stuck database answers UNAVAILABLE instead of holding a send (and the batch it is in)
	 * forever. */
	const char *dsn = cfg->common.database_url;
	bool uri = strncmp(dsn, "postgres://", 11) == 0 || strncmp(dsn, "postgresql://", 13) == 0;
	struct sb_buf b = SB_BUF_INIT;
	int rv;
	if (uri)
		rv = sb_buf_printf(
		    &b,
		    "%s%coptions=-c%%20statement_timeout%%3D%lld%%20-c%%20search_path%%3Dmessages",
		    dsn, strchr(dsn, '?') ? '&' : '?', cfg->pg_timeout_ms);
	else
		rv = sb_buf_printf(&b,
		                   "%s options='-c statement_timeout=%lld -c search_path=messages'",
		                   dsn, cfg->pg_timeout_ms);
	if (rv != 0)
		return rv;
	struct sb_pg_opts o = { .connect_timeout_s = 2,
		                .backoff_base_ms = 100,
		                .backoff_max_ms = 2000 };
	rv = sb_pg_open_opts(b.data, msg_stmts, &o, out);
	explicit_bzero(b.data, b.len);
	sb_buf_free(&b);
	return rv;
}

int
msg_service_start(struct sb_service *svc)
{
	struct msg_state *st = calloc(1, sizeof(*st));
	struct sb_pg *pg = NULL;
	int rv = SB_ENOMEM;
	if (st == NULL)
		return rv;
	st->cfg = sb_service_config(svc);
	if ((rv = msg_open_pg(st->cfg, &pg)) != 0)
		goto fail;
	if ((rv = msg_batcher_start(pg, (int)st->cfg->batch_max, &st->batcher)) != 0)
		goto fail;
	sb_service_set_state(svc, st);
	return 0;
fail:
	sb_pg_close(pg);
	free(st);
	return rv;
}

void
msg_service_stop(struct sb_service *svc)
{
	struct msg_state *st = sb_service_state(svc);
	if (st == NULL)
		return;
	msg_batcher_stop(st->batcher);
	free(st);
	sb_service_set_state(svc, NULL);
}

int
msg_worker_init(struct sb_service *svc, void **state)
{
	struct sb_pg *pg = NULL;
	int rv = msg_open_pg(sb_service_config(svc), &pg);
	if (rv != 0)
		return rv;
	*state = pg;
	return 0;
}

void
msg_worker_fini(struct sb_service *svc, void *state)
{
	(void)svc;
	sb_pg_close(state);
}
