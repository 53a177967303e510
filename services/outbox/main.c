/* main.c: entry point of sb-outbox. */
#include "outbox.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&outbox_service, argc, argv);
}
