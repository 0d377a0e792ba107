/* SPDX-License-Identifier: ISC */
/*
 * consentd: subcommand dispatch only. Each subcommand lives in src/cli/.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/cli.h"

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		cm_cli_usage(NULL, true);
		return CM_EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		cm_cli_usage(argc > 2 ? argv[2] : NULL, false);
		return CM_EXIT_OK;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("consentd %s\n", CM_VERSION);
		return CM_EXIT_OK;
	}
	for (i = 0; i < cm_ncommands; i++) {
		if (strcmp(argv[1], cm_commands[i].c_name) != 0)
			continue;
		if (cm_cli_store_arg(&argc, argv) != 0)
			return CM_EXIT_USAGE;
		return cm_commands[i].c_fn(argc - 1, argv + 1);
	}
	cm_cli_error("unknown command '%s' (see 'consentd help')", argv[1]);
	return CM_EXIT_USAGE;
}
