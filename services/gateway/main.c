/* main.c: entry point of sb-gateway. */
#include "gateway.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&gateway_service, argc, argv);
}
