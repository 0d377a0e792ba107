/* SPDX-License-Identifier: ISC */
/*
 * consentd routes: prints the route table (method, path pattern, the scope
 * a token needs, or else what is asked: "token" or "public"; the query
 * parameters taken), for operators and for the
 * tests that keep docs/openapi.yaml in step with the router.
 */
#include <stdio.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/cli.h"
#include "consentd/scope.h"

int
cm_cmd_routes(int argc, char **argv)
{
	const struct cm_route *r;
	const char *scope;
	char query[128];
	size_t i, j, o;
	int n;

	if (argc > 1) {
		if (strcmp(argv[1], "--help") == 0) {
			cm_cli_usage("routes", false);
			return CM_EXIT_OK;
		}
		cm_cli_usage("routes", true);
		return CM_EXIT_USAGE;
	}
	for (i = 0; i < cm_api_nroutes; i++) {
		r = &cm_api_routes[i];
		if (r->r_scope != CM_SCOPE_NONE)
			scope = cm_scope_name(r->r_scope);
		else
			scope = cm_auth_name(r->r_auth);
		query[0] = '\0';
		for (j = 0, o = 0; r->r_query != NULL && r->r_query[j] != NULL; j++) {
			n = snprintf(query + o, sizeof(query) - o, "%s%s", o ? "," : "",
			    r->r_query[j]);
			if (n < 0 || (size_t)n >= sizeof(query) - o)
				break;
			o += (size_t)n;
		}
		printf("%-7s %-43s %-15s %-27s %s\n", r->r_method, r->r_pattern, scope,
		    query[0] ? query : "-", r->r_summary);
	}
	return CM_EXIT_OK;
}
