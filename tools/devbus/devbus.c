/* devbus.c: start-up, topics, bootstrap file and lifetime of devbus.
 *
 *   devbus --brokers 3 --bootstrap-file PATH --control 127.0.0.1:PORT --parent-pid PID
 *          [--listen 127.0.0.1:9092] [--partitions 6] [--topic NAME:PARTITIONS]... [--ttl S]
 *   devbus ctl 127.0.0.1:PORT COMMAND [ARGS...]
 *
 * devbus hosts librdkafka's in-memory mock cluster so that services and tests can speak the
 * Kafka protocol on a machine without Kafka. Nothing it stores survives the process. */
#include "devbus.h"
#include "sb_log.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEVBUS_MAX_TOPICS 64

/* The platform's topics, each also created with a ".dlq" twin. */
static const char *const devbus_platform_topics[] = {
	"sb.messages.v1",   "sb.conversations.v1",     "sb.files.v1",
	"sb.file-merge.v1", "sb.notifier.webhooks.v1", NULL,
};

struct devbus_opts {
	long brokers;
	long partitions;
	long ttl;
	long parent_pid;
	const char *bootstrap_file;
	const char *control;
	const char *listen;
	const char *topics[DEVBUS_MAX_TOPICS];
	long topic_parts[DEVBUS_MAX_TOPICS];
	int ntopics;
};

static struct devbus devbus_g;

static void
devbus_usage(FILE *f)
{
	fprintf(f,
	        "usage: devbus [--brokers N] [--partitions N] [--topic NAME:PARTITIONS]...\n"
	        "              [--bootstrap-file PATH] [--control HOST:PORT] [--listen HOST:PORT]\n"
	        "              [--parent-pid PID] [--ttl SECONDS]\n"
	        "       devbus ctl HOST:PORT ping|bootstrap|down ID|up ID|create TOPIC N|quit\n");
}

static int
devbus_parse_long(const char *opt, const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "devbus: %s: '%s' is not a number in [%ld, %ld]\n", opt, s, min,
		        max);
		return -1;
	}
	*out = v;
	return 0;
}

static int
devbus_parse_topic(struct devbus_opts *o, const char *s)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s || o->ntopics == DEVBUS_MAX_TOPICS) {
		fprintf(stderr, "devbus: --topic: expected NAME:PARTITIONS, got '%s'\n", s);
		return -1;
	}
	if (devbus_parse_long("--topic", colon + 1, 1, 1000, &o->topic_parts[o->ntopics]) != 0)
		return -1;
	o->topics[o->ntopics++] = strndup(s, (size_t)(colon - s));
	return 0;
}

static int
devbus_parse_args(int argc, char **argv, struct devbus_opts *o)
{
	static const struct option longopts[] = {
		{ "brokers", required_argument, NULL, 'b' },
		{ "partitions", required_argument, NULL, 'p' },
		{ "topic", required_argument, NULL, 't' },
		{ "bootstrap-file", required_argument, NULL, 'f' },
		{ "control", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "parent-pid", required_argument, NULL, 'P' },
		{ "ttl", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct devbus_opts){ .brokers = 3, .partitions = 6 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		int r = 0;
		switch (c) {
		case 'b':
			r = devbus_parse_long("--brokers", optarg, 1, DEVBUS_MAX_BROKERS,
			                      &o->brokers);
			break;
		case 'p':
			r = devbus_parse_long("--partitions", optarg, 1, 1000, &o->partitions);
			break;
		case 't':
			r = devbus_parse_topic(o, optarg);
			break;
		case 'f':
			o->bootstrap_file = optarg;
			break;
		case 'c':
			o->control = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'P':
			r = devbus_parse_long("--parent-pid", optarg, 1, INT_MAX, &o->parent_pid);
			break;
		case 'T':
			r = devbus_parse_long("--ttl", optarg, 1, 86400 * 365, &o->ttl);
			break;
		case 'h':
			devbus_usage(stdout);
			exit(0);
		default:
			devbus_usage(stderr);
			return -1;
		}
		if (r != 0)
			return -1;
	}
	if (optind != argc) {
		fprintf(stderr, "devbus: unexpected argument '%s'\n", argv[optind]);
		devbus_usage(stderr);
		return -1;
	}
	return 0;
}

/* devbus_write_bootstrap writes the list to path atomically (a temporary file, then rename). */
static int
devbus_write_bootstrap(const char *path, const char *list)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	if (fprintf(f, "%s\n", list) < 0 || fclose(f) != 0) {
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int
devbus_create_topic(struct devbus *db, const char *name, int partitions)
{
	rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(db->mc, name, partitions, 1);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		sb_log_kv(SB_LOG_ERROR, "cannot create topic", "topic", name, "error",
		          rd_kafka_err2str(e), NULL);
		return -1;
	}
	return 0;
}

static int
devbus_create_topics(struct devbus *db, const struct devbus_opts *o)
{
	char dlq[256];

	for (const char *const *t = devbus_platform_topics; *t != NULL; t++) {
		snprintf(dlq, sizeof(dlq), "%s.dlq", *t);
		if (devbus_create_topic(db, *t, (int)o->partitions) != 0 ||
		    devbus_create_topic(db, dlq, (int)o->partitions) != 0)
			return -1;
	}
	for (int i = 0; i < o->ntopics; i++) {
		if (devbus_create_topic(db, o->topics[i], (int)o->topic_parts[i]) != 0)
			return -1;
	}
	return 0;
}

/* devbus_map_brokers learns which address each broker id listens on, from the cluster's own
 * metadata, so that the forwarder can skip brokers taken down. */
static int
devbus_map_brokers(struct devbus *db)
{
	char errstr[256];
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	int ret = -1;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", db->bootstraps, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	if (rd_kafka_metadata(rk, 0, NULL, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
		goto done;
	for (int i = 0; i < md->broker_cnt; i++) {
		int id = md->brokers[i].id;
		if (id < 1 || id > db->nbrokers)
			continue;
		snprintf(db->broker_addr[id], sizeof(db->broker_addr[id]), "%s:%d",
		         md->brokers[i].host, md->brokers[i].port);
	}
	ret = 0;
done:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_destroy(rk);
	return ret;
}

static void
devbus_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	/* syslog levels: 0..3 error, 4 warning; the rest is chatter. */
	if (level <= 4)
		sb_log_kv(level <= 3 ? SB_LOG_ERROR : SB_LOG_WARN, buf, "facility", fac, NULL);
}

static int
devbus_cluster_start(struct devbus *db, int nbrokers)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	rd_kafka_conf_set_log_cb(conf, devbus_on_log);
	db->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (db->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		sb_log_kv(SB_LOG_ERROR, "cannot create client handle", "error", errstr, NULL);
		return -1;
	}
	db->mc = rd_kafka_mock_cluster_new(db->rk, nbrokers);
	if (db->mc == NULL) {
		sb_log_kv(SB_LOG_ERROR, "cannot create mock cluster", NULL);
		return -1;
	}
	db->nbrokers = nbrokers;
	for (int i = 1; i <= nbrokers; i++)
		atomic_store(&db->broker_up[i], true);
	snprintf(db->bootstraps, sizeof(db->bootstraps), "%s",
	         rd_kafka_mock_cluster_bootstraps(db->mc));
	return 0;
}

static long long
devbus_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* devbus_wait blocks until a signal, a quit command, the parent's death or the ttl. */
static void
devbus_wait(struct devbus *db, const struct devbus_opts *o, const sigset_t *sigs)
{
	long long start = devbus_now_s(), last_check = 0;
	const struct timespec tick = { 0, 200 * 1000000L };

	while (!atomic_load(&db->stop)) {
		siginfo_t si;
		int sig = sigtimedwait(sigs, &si, &tick);
		if (sig > 0) {
			sb_log_kv(SB_LOG_INFO, "stopping on signal", "signal", strsignal(sig),
			          NULL);
			break;
		}
		long long now = devbus_now_s();
		if (o->ttl > 0 && now - start >= o->ttl) {
			sb_log_kv(SB_LOG_INFO, "stopping: --ttl reached", NULL);
			break;
		}
		if (o->parent_pid > 0 && now != last_check) {
			last_check = now;
			if (kill((pid_t)o->parent_pid, 0) != 0 && errno == ESRCH) {
				sb_log_kv(SB_LOG_INFO, "stopping: parent process is gone", NULL);
				break;
			}
		}
	}
	atomic_store(&db->stop, true);
}

static int
devbus_serve(int argc, char **argv)
{
	struct devbus *db = &devbus_g;
	struct devbus_opts o;
	pthread_t ctl_thr, fwd_thr;
	bool ctl_on = false, fwd_on = false;
	sigset_t sigs;
	int ret = 1;

	if (devbus_parse_args(argc, argv, &o) != 0) {
		ret = 2;
		goto done;
	}
	/* Signals are taken synchronously by the main thread; every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	sb_log_kv(SB_LOG_WARN,
	          "devbus is an in-memory mock Kafka cluster (librdkafka mock): NOT durable, every "
	          "message is lost when it stops; for development and tests only, never production",
	          NULL);
	if (devbus_cluster_start(db, (int)o.brokers) != 0 || devbus_create_topics(db, &o) != 0)
		goto done;
	if (devbus_map_brokers(db) != 0)
		sb_log_kv(SB_LOG_WARN, "cannot map broker ids to addresses", NULL);
	if (o.control != NULL) {
		if (devbus_ctl_start(db, o.control, &ctl_thr) != 0)
			goto done;
		ctl_on = true;
	}
	if (o.listen != NULL) {
		if (devbus_fwd_start(db, o.listen, &fwd_thr) != 0)
			goto done;
		fwd_on = true;
	}
	if (o.bootstrap_file != NULL && devbus_write_bootstrap(o.bootstrap_file, db->bootstraps)) {
		sb_log_kv(SB_LOG_ERROR, "cannot write bootstrap file", "path", o.bootstrap_file,
		          "error", strerror(errno), NULL);
		goto done;
	}
	char nb[16];
	snprintf(nb, sizeof(nb), "%ld", o.brokers);
	sb_log_kv(SB_LOG_INFO, "devbus ready", "bootstrap", db->bootstraps, "brokers", nb,
	          "control", o.control, "listen", o.listen, NULL);
	devbus_wait(db, &o, &sigs);
	ret = 0;
done:
	atomic_store(&db->stop, true);
	if (ctl_on)
		pthread_join(ctl_thr, NULL);
	if (fwd_on) {
		pthread_join(fwd_thr, NULL);
		devbus_fwd_wait(3000);
	}
	if (db->mc)
		rd_kafka_mock_cluster_destroy(db->mc);
	if (db->rk)
		rd_kafka_destroy(db->rk);
	for (int i = 0; i < o.ntopics; i++)
		free((void *)o.topics[i]);
	if (ret != 2)
		sb_log_kv(SB_LOG_INFO, "devbus stopped", NULL);
	return ret;
}

int
main(int argc, char **argv)
{
	sb_log_init("devbus", SB_LOG_INFO);
	if (argc >= 2 && strcmp(argv[1], "ctl") == 0) {
		if (argc < 4) {
			devbus_usage(stderr);
			return 2;
		}
		return devbus_ctl_client(argv[2], argc - 3, argv + 3);
	}
	return devbus_serve(argc, argv);
}
