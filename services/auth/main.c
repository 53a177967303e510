/* main.c: entry point of sb-auth: the service, or one of its CLI subcommands (cli.c). */
#include "auth.h"

int
main(int argc, char **argv)
{
	if (auth_cli_is_command(argc, argv))
		return auth_cli_main(argc, argv);
	return sb_service_main(&auth_service, argc, argv);
}
