/* main.c: entry point of sb-ingest. */
#include "ingest.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&ingest_service, argc, argv);
}
