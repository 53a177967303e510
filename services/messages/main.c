/* main.c: entry point of sb-messages. */
#include "messages.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&messages_service, argc, argv);
}
