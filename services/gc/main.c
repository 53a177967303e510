/* main.c: entry point of sb-gc. */
#include "gc.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&gc_service, argc, argv);
}
