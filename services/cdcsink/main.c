/* main.c: entry point of sb-cdcsink. */
#include "cdcsink.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&cdcsink_service, argc, argv);
}
