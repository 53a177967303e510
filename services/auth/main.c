/* main.c: entry point of sb-auth. */
#include "auth.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&auth_service, argc, argv);
}
