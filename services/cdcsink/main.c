/* main.c: entry point of sb-cdcsink. */
#include "cdcsink.h"

#include <string.h>

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "dlq") == 0)
		return cdc_dlq_main(argc - 1, argv + 1);
	return sb_service_main(&cdcsink_service, argc, argv);
}
