/* main.c: entry point of sb-notifier. */
#include "notifier.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&notifier_service, argc, argv);
}
