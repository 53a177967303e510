/* it_port.h: a free loopback TCP port for a service an integration test starts.
 *
 * The port is chosen below the kernel's ephemeral range (where outgoing connections take their
 * local ports, so a port found free there can be taken before the service binds it) and is
 * checked by binding it once. Shared by the integration tests; include it once per test. */
#ifndef SB_IT_PORT_H
#define SB_IT_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* it_free_port returns a port in [10000, start of the ephemeral range) that could be bound on
 * 127.0.0.1 just now, or -1 after many attempts. */
static inline int
it_free_port(void)
{
	static unsigned seed;
	int lo = 32768;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f != NULL) {
		if (fscanf(f, "%d", &lo) != 1 || lo <= 12000)
			lo = 32768;
		fclose(f);
	}
	if (seed == 0)
		seed = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
	for (int attempt = 0; attempt < 200; attempt++) {
		int port = 10000 + (int)(rand_r(&seed) % (unsigned)(lo - 10000));
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		struct sockaddr_in a = { .sin_family = AF_INET,
			                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
			                 .sin_port = htons((uint16_t)port) };
		int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return -1;
}

#endif
