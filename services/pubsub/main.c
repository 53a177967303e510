/* main.c: entry point of sb-pubsub. */
#include "pubsub.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&pubsub_service, argc, argv);
}
