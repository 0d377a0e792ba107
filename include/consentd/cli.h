/* SPDX-License-Identifier: ISC */
/*
 * The command-line tool: one function per subcommand (src/cli/), and the
 * helpers they share for options, environment defaults and opening the
 * data directory.
 */
#ifndef CONSENTD_CLI_H
#define CONSENTD_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "consentd/common.h"

/* Exit statuses. */
#define CM_EXIT_OK	0
#define CM_EXIT_ERROR	1	/* the command failed; the message says why */
#define CM_EXIT_KEY	2	/* wrong key, or not a consentd database */
#define CM_EXIT_USAGE	64	/* bad command line */

#define CM_VERSION	"0.1.0"

struct cm_keys;
struct cm_store;
struct cm_migration_set;
struct cm_db;
struct cm_policy;

struct cm_command {
	const char	*c_name;
	int		(*c_fn)(int, char **);
	const char	*c_summary;
	const char	*c_usage;	/* full --help text */
};

extern const struct cm_command	cm_commands[];
extern const size_t		cm_ncommands;

int	cm_cmd_init(int, char **);
int	cm_cmd_serve(int, char **);
int	cm_cmd_token(int, char **);
int	cm_cmd_migrate(int, char **);
int	cm_cmd_routes(int, char **);
int	cm_cmd_audit(int, char **);
int	cm_cmd_witness(int, char **);
int	cm_cmd_dsr(int, char **);
int	cm_cmd_receipt(int, char **);
/* consentd dsr export|verify-package (src/cli/dsr.c), reached through cm_cmd_dsr. */
int	cm_cmd_dsr_package(int, char **);
int	cm_cmd_systems(int, char **);
int	cm_cmd_outbox(int, char **);
int	cm_cmd_link(int, char **);
int	cm_cmd_import(int, char **);
/* consentd backup and restore (src/cli/backup.c). */
int	cm_cmd_backup(int, char **);
int	cm_cmd_restore(int, char **);
int	cm_cmd_keys(int, char **);
int	cm_cmd_retention(int, char **);

/* Prints the usage of the command called NAME to stdout or stderr. */
void	cm_cli_usage(const char *name, bool to_stderr);

/* Writes "consentd: " + message to stderr. */
void	cm_cli_error(const char *fmt, ...) CM_PRINTF(1, 2);
/*
 * From now on cm_cli_error() and cm_cli_usage() to stderr write one JSON
 * log line each ({"level":"error","event":"startup_failed","message":…}
 * and "usage_error") instead of text: for 'consentd serve', whose stderr
 * is a log that only ever holds JSON lines. The other commands talk to a
 * person and keep text.
 */
void	cm_cli_json_errors(void);

/*
 * Applies CONSENTD_<OPTION> environment variables (e.g. CONSENTD_DATA for
 * --data) for every long option in OPTS by calling SET(val, arg, ctx) as
 * if the option had been given; command-line flags parsed afterwards win.
 * Returns 0, or the first non-zero SET result.
 */
int	cm_cli_env_defaults(const struct option *opts,
	    int (*set)(int val, const char *arg, void *ctx), void *ctx);

/* The data directory: the flag if given, else ./var. */
const char *cm_cli_data_dir(const char *flag);

/*
 * Takes every command's --store out of ARGV (before the command parses
 * it): a postgresql:// connection string is kept for cm_cli_store(); a
 * directory becomes --data DIR. Without the flag, CONSENTD_STORE. 0, or
 * the exit code of a usage error (reported).
 */
int	cm_cli_store_arg(int *argc, char **argv);
/* The PostgreSQL store the command line names, or NULL: DIR's own. */
const char *cm_cli_store(void);
/*
 * Whether the store of DIR (or the one --store names) is on PostgreSQL,
 * where the SQLCipher store's command WHAT does not apply: if so, says so
 * and what to do INSTEAD.
 */
bool	cm_cli_store_pg(const char *dir, const char *what, const char *instead);

/* What to do instead of backup and restore on PostgreSQL. */
#define CM_CLI_PG_BACKUP	"back it up and restore it with PostgreSQL's own tools " \
	"(pgBackRest, pg_basebackup, pg_dump), then run 'consentd restore --replay'"

/*
 * Loads the keys of DIR and opens its store (applying pending migrations
 * only with APPLY). On failure prints the reason and returns the exit
 * status to use; on success returns CM_EXIT_OK.
 */
int	cm_cli_open(const char *dir, const char *migrations_dir, bool apply,
	    struct cm_keys **keys, struct cm_store **store);

/* DIR's opt-out ledger, checked and counted, for restore (src/cli/optouts.c). */
struct cm_cli_optouts {
	const char	*dir;		/* borrowed */
	size_t		 n;		/* lines */
	size_t		 nconsent;	/* consent lines: they need the policy */
};

/* Checks and counts DIR's opt-out ledger into L: 0, or -1 after saying why. */
int	cm_cli_optouts_load(const char *dir, const struct cm_keys *, struct cm_cli_optouts *l);
/*
 * Records again in DB every "no" of L's ledger (read again, line by line)
 * it lacks, under policy POL; *DONE how many. 0, or -1 after saying why.
 */
int	cm_cli_optouts_replay(struct cm_db *db, const struct cm_keys *,
	    const struct cm_policy *pol, const struct cm_cli_optouts *l, size_t *done);

/*
 * Adds to STORE's opt-out ledger, on a thread of its own, each "no" a crash
 * kept out of it, once; stop with cm_worker_stop(). NULL when the thread
 * cannot start.
 */
struct cm_worker;
struct cm_store;
struct cm_worker *cm_cli_optouts_sync_start(struct cm_store *store);

#endif
