/* main.c: entry point of sb-realtime. */
#include "realtime.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&realtime_service, argc, argv);
}
