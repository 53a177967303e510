/* main.c: entry point of sb-files. */
#include "files.h"

int
main(int argc, char **argv)
{
	return sb_service_main(&files_service, argc, argv);
}
