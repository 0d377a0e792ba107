/*
 * The encrypted store: opening and keying the SQLCipher database, the
 * migration runner, per-thread connections with cached prepared statements,
 * and one function family per table. src/store/ is the only code that
 * includes <sqlite3.h>; everything above it sees cm_result codes.
 */
#ifndef CONSENTD_STORE_H
#define CONSENTD_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "consentd/common.h"

struct cm_keys;
struct cm_store;
struct cm_db;

/* One schema migration: migrations/NNNN_name.sql. */
struct cm_migration {
	int		 m_version;	/* NNNN, contiguous from 1 */
	const char	*m_name;	/* file name, e.g. "0001_init.sql" */
	const char	*m_sql;		/* the file's bytes, NUL-terminated */
	size_t		 m_len;		/* their length */
};

/* The migrations compiled into this binary from migrations/. */
extern const struct cm_migration	cm_migrations_builtin[];
extern const size_t			cm_migrations_builtin_count;

/* A set of migrations read from a directory; free with cm_migrations_free(). */
struct cm_migration_set {
	const struct cm_migration *ms_list;
	size_t			 ms_count;
	struct cm_migration	*ms_owned;	/* ms_list when read from a directory */
	char			**ms_strings;	/* names and texts to free */
	size_t			 ms_nstrings;
};

/*
 * Fills SET with the built-in migrations, or with those read from DIR when
 * DIR is not NULL. Checks names (NNNN_name.sql) and that versions run
 * 1, 2, 3… without gaps. Writes a reason into ERR on failure.
 */
cm_result cm_migrations_load(const char *dir, struct cm_migration_set *set,
	    char *err, size_t errlen) CM_WUR;
void	cm_migrations_free(struct cm_migration_set *);

struct cm_store_opts {
	int		 so_cache_mb;	/* page cache per connection, MiB */
	int		 so_busy_ms;	/* busy timeout */
	bool		 so_apply;	/* apply pending migrations on open */
};

/* The defaults for struct cm_store_opts. */
void	cm_store_opts_default(struct cm_store_opts *);

/*
 * Creates DIR/consentd.db, keyed with KEYS, in WAL mode, with every
 * migration of SET applied. Fails if the file exists.
 */
cm_result cm_store_create(const char *dir, const struct cm_keys *,
	    const struct cm_migration_set *, char *err, size_t errlen) CM_WUR;

/*
 * Opens DIR/consentd.db. Checks the key first (CM_AUTH: "wrong key, or not
 * a consentd database"), then the recorded migrations against SET: a
 * changed checksum or a schema newer than SET is refused (CM_CONFLICT)
 * before anything is written. With so_apply, pending migrations are then
 * applied, each in its own transaction. The caller closes *OUT with
 * cm_store_close(). KEYS is borrowed for the life of the store.
 */
cm_result cm_store_open(const char *dir, const struct cm_keys *,
	    const struct cm_migration_set *, const struct cm_store_opts *,
	    struct cm_store **out, char *err, size_t errlen) CM_WUR;

/* Closes every connection and frees the store; accepts NULL. */
void	cm_store_close(struct cm_store *);

/*
 * The calling thread's connection to STORE, opened on first use and closed
 * when the thread exits or the store closes. Borrowed; NULL on failure.
 */
struct cm_db	*cm_store_db(struct cm_store *);

/* Checks that the store answers a read. */
cm_result cm_store_ping(struct cm_db *) CM_WUR;

/* Number of migrations recorded as applied, for status output. */
cm_result cm_store_schema_version(struct cm_db *, int *version) CM_WUR;

/* ---- transactions ------------------------------------------------------ */

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on DB. */
cm_result cm_db_begin(struct cm_db *) CM_WUR;
cm_result cm_db_commit(struct cm_db *) CM_WUR;
void	  cm_db_rollback(struct cm_db *);

/* ---- tokens (src/store/tokens.c) ---------------------------------------- */

#define CM_TOKEN_NAME_MAX	64

struct cm_token_row {
	int64_t	 t_id;
	char	 t_name[CM_TOKEN_NAME_MAX + 1];
	uint8_t	 t_hash[32];		/* keyed hash of the token */
	uint32_t t_scopes;		/* CM_SCOPE_* bits */
	int64_t	 t_created_us;
	int64_t	 t_revoked_us;		/* 0 while active */
};

/*
 * Stores a new token (only its selector and keyed hash). With REPLACE an
 * active token of the same name is revoked in the same transaction;
 * otherwise an active one gives CM_CONFLICT.
 */
cm_result cm_store_token_create(struct cm_db *, const char *name,
	    const char *selector, const uint8_t hash[32], uint32_t scopes,
	    bool replace, int64_t now_us) CM_WUR;

/* Finds the token with SELECTOR (active or revoked) into *ROW. */
cm_result cm_store_token_find(struct cm_db *, const char *selector,
	    struct cm_token_row *row) CM_WUR;

/* Revokes the active token called NAME; CM_NOTFOUND when there is none. */
cm_result cm_store_token_revoke(struct cm_db *, const char *name,
	    int64_t now_us) CM_WUR;

/* Calls FN for every token, newest first; stops early when FN returns non-zero. */
cm_result cm_store_token_list(struct cm_db *,
	    int (*fn)(void *, const struct cm_token_row *), void *arg) CM_WUR;

#endif
