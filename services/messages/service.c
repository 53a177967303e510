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
	 * forever. plan_cache_mode=force_custom_plan: a generic plan is cached after a statement's
	 * fifth run and kept until the table is next analyzed, so on a fresh database the lookups
	 * kept sequential scans chosen while the tables were empty (measured: the duplicate
	 * lookup at 3.8 ms per batch after 20,000 messages). Planning each run costs far less. */
	char options[160];
	snprintf(options, sizeof(options),
	         "-c statement_timeout=%lld -c search_path=messages "
	         "-c plan_cache_mode=force_custom_plan",
	         cfg->pg_timeout_ms);
	struct sb_pg_opts o = { .connect_timeout_s = 2,
		                .backoff_base_ms = 100,
		                .backoff_max_ms = 2000,
		                .options = options };
	return sb_pg_open_opts(cfg->common.database_url, msg_stmts, &o, out);
}

int
msg_service_start(struct sb_service *svc)
{
	struct msg_state *st = calloc(1, sizeof(*st));
	struct sb_pg **pgs = NULL;
	size_t n = 0;
	int rv = SB_ENOMEM;
	if (st == NULL)
		return rv;
	st->cfg = sb_service_config(svc);
	size_t want = (size_t)st->cfg->committers;
	if ((pgs = calloc(want, sizeof(*pgs))) == NULL)
		goto fail;
	for (rv = 0; n < want && rv == 0; n++)
		if ((rv = msg_open_pg(st->cfg, &pgs[n])) != 0)
			break;
	if (rv != 0)
		goto fail;
	rv = msg_batcher_start(pgs, n, (int)st->cfg->batch_max, st->cfg->commit_delay_us,
	                       &st->batcher);
	n = 0; /* the lanes own the connections now */
	if (rv != 0)
		goto fail;
	free(pgs);
	sb_service_set_state(svc, st);
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		sb_pg_close(pgs[i]);
	free(pgs);
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
