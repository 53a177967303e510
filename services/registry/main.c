/* main.c: entry point of sb-registry. */
#include "registry.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&registry_service, argc, argv);
}
