/* devbus.h: private header of devbus, the process hosting librdkafka's mock cluster. */
#ifndef DEVBUS_H
#define DEVBUS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define DEVBUS_MAX_BROKERS 16

/* The one process-wide state of devbus. */
struct devbus {
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	int nbrokers;
	char bootstraps[1024];
	/* broker id (1..nbrokers) -> "host:port" and up/down as set through the control port */
	char broker_addr[DEVBUS_MAX_BROKERS + 1][128];
	atomic_bool broker_up[DEVBUS_MAX_BROKERS + 1];
	atomic_bool stop;
};

/* devbus_ctl.c */

/* devbus_ctl_start listens on addr ("host:port") and serves the control protocol on a thread
 * until db->stop is set. Returns 0 or -1 after logging. */
int devbus_ctl_start(struct devbus *db, const char *addr, pthread_t *thr);
/* devbus_ctl_client sends argv (joined by spaces) to the control port at addr, prints the
 * answer and returns the process exit status (0 on "ok", 1 otherwise). */
int devbus_ctl_client(const char *addr, int argc, char **argv);
/* devbus_listen_tcp binds and listens on "host:port"; returns the fd or -1 after logging. */
int devbus_listen_tcp(const char *addr);

/* devbus_fwd.c */

/* devbus_fwd_start listens on addr and relays each accepted connection to a broker that is up,
 * on threads, until db->stop is set. Returns 0 or -1 after logging. */
int devbus_fwd_start(struct devbus *db, const char *addr, pthread_t *thr);
/* devbus_fwd_wait waits up to timeout_ms for relay threads to end after db->stop is set. */
void devbus_fwd_wait(int timeout_ms);

#endif
