/* edge.c: start and stop of the upload edge: storage, token verification, workers, the HTTP
 * server; stopped in the mirrored order. */
#include "files.h"
#include "s3.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_kafka_topics.h"
#include "sb_log.h"
#include "sb_names.h"

/* files_edge_request runs on the HTTP loop thread: queue for a worker, never block. */
static void
files_edge_request(struct sb_http_req *r, void *arg)
{
	struct files *f = arg;
	if (!files_work_push(f, r)) {
		const struct sb_http_header h[] = { { "Retry-After", "1" } };
		sb_log_kv(SB_LOG_WARN, "request queue full", "path", r->path, NULL);
		sb_http_respond_problem_extra(r, 503, NULL, "the upload service is busy; retry", h,
		                              1);
	}
}

/* files_edge_stream decides on the loop thread which bodies are streamed (files_route_streamed). */
static bool
files_edge_stream(const struct sb_http_req *head, void *arg)
{
	(void)arg;
	return files_route_streamed(head);
}

int
files_start(struct sb_service *svc)
{
	const struct files_cfg *cfg = sb_service_config(svc);
	struct files *f = calloc(1, sizeof(*f));
	int rv;
	if (f == NULL)
		return SB_ENOMEM;
	f->cfg = cfg;
	f->svc = svc;
	files_metrics_init(f);
	if (strcmp(cfg->store, "s3") == 0) {
		const struct s3_opts so = { .endpoint = cfg->s3_endpoint,
			                    .bucket = cfg->s3_bucket,
			                    .region = cfg->s3_region,
			                    .access_key = cfg->s3_access_key,
			                    .secret_key = cfg->s3_secret_key,
			                    .timeout_ms = (int)cfg->s3_timeout_ms,
			                    .ca_file = cfg->s3_ca_file,
			                    .compose_max = cfg->s3_compose_max,
			                    .create_bucket = true };
		rv = s3_store_open(&so, &f->store);
	} else {
		rv = files_store_fs_open(cfg->dir, &f->store);
	}
	if (rv != 0)
		goto fail;
	const struct sb_authn_opts ao = { .issuer = cfg->issuer,
		                          .audience = cfg->audience,
		                          .leeway_s = cfg->leeway_s,
		                          .refresh_ms = cfg->jwks_refresh_ms };
	if ((rv = sb_authn_start(&f->authn, &ao, sb_service_upstream(svc, "auth"))) != 0)
		goto fail;
	if ((rv = sb_service_add_check(svc, "jwks", sb_authn_ready, &f->authn)) != 0 ||
	    (rv = files_work_start(f)) != 0)
		goto fail;
	/* The merge requests' topic and the files' events (relayed from files.outbox by
	 * sb-outbox). Not fatal: the worker's consumer waits for the topic. */
	static const char *const topics[] = { SB_TOPIC_FILE_MERGE,
		                              SB_TOPIC_FILE_MERGE SB_TOPIC_DLQ_SUFFIX,
		                              SB_TOPIC_FILES, SB_TOPIC_FILES SB_TOPIC_DLQ_SUFFIX,
		                              NULL };
	char terr[256] = "";
	if (cfg->merge &&
	    sb_kafka_platform_topics(&cfg->common, topics, 10000, terr, sizeof(terr)) != 0)
		sb_log_kv(SB_LOG_WARN, "cannot make sure the Kafka topics exist", "error", terr,
		          NULL);
	if (cfg->merge && (rv = files_merge_start(f)) != 0)
		goto fail;
	const struct sb_http_config hc = {
		.addr = cfg->http_addr,
		.port = (int)cfg->http_port,
		.max_body_bytes = (size_t)cfg->max_request_bytes,
		.body_timeout_ms = 300000,
		.server_name = "switchboard-files",
		.stream_body = files_edge_stream,
		.stream_min_rate = (int)cfg->body_min_rate,
	};
	if ((rv = sb_http_server_start(&hc, files_edge_request, f, &f->http)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot start the upload edge", "error", sb_strerror(rv),
		          NULL);
		goto fail;
	}
	sb_service_set_state(svc, f);
	sb_log_kv(SB_LOG_INFO, "upload edge listening", "addr", cfg->http_addr, "storage",
	          f->store->ops->name, "dir", strcmp(cfg->store, "s3") == 0 ? "" : cfg->dir,
	          "bucket", strcmp(cfg->store, "s3") == 0 ? cfg->s3_bucket : "", NULL);
	return 0;
fail:
	files_merge_stop(f->merge);
	files_work_stop(f);
	sb_authn_stop(&f->authn);
	files_store_close(f->store);
	free(f);
	return rv;
}

void
files_stop(struct sb_service *svc)
{
	struct files *f = sb_service_state(svc);
	if (f == NULL)
		return;
	sb_http_server_stop(f->http, 5000);
	files_merge_stop(f->merge);
	files_work_stop(f);
	sb_authn_stop(&f->authn);
	files_store_close(f->store);
	free(f);
	sb_service_set_state(svc, NULL);
}
