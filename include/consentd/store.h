/* SPDX-License-Identifier: ISC */
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

struct cm_buf;
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

/*
 * The migrations compiled into this binary: from migrations/ for the
 * SQLCipher store, and from migrations-pg/ (the same numbers and names)
 * for the PostgreSQL store.
 */
extern const struct cm_migration	cm_migrations_builtin[];
extern const size_t			cm_migrations_builtin_count;
extern const struct cm_migration	cm_migrations_builtin_pg[];
extern const size_t			cm_migrations_builtin_pg_count;

/*
 * A set of migrations, for each engine; free with cm_migrations_free().
 * ms_list is SQLCipher's; ms_pg PostgreSQL's (NULL: none were found).
 */
struct cm_migration_set {
	const struct cm_migration *ms_list;
	size_t			 ms_count;
	struct cm_migration	*ms_owned;	/* ms_list when read from a directory */
	char			**ms_strings;	/* names and texts to free */
	size_t			 ms_nstrings;
	struct cm_migration_set	*ms_pg;		/* PostgreSQL's, owned */
};

/*
 * Fills SET with the built-in migrations, or with those read from DIR when
 * DIR is not NULL (and PostgreSQL's from DIR-pg beside it, when there is
 * one). Checks names (NNNN_name.sql) and that versions run 1, 2, 3…
 * without gaps. Writes a reason into ERR on failure.
 */
cm_result cm_migrations_load(const char *dir, struct cm_migration_set *set,
	    char *err, size_t errlen) CM_WUR;
void	cm_migrations_free(struct cm_migration_set *);

/*
 * SQLCipher's page size for the store: part of the file format, set with
 * PRAGMA cipher_page_size after keying every connection.
 */
#define CM_STORE_PAGE_SIZE	"4096"

struct cm_store_opts {
	int		 so_cache_mb;	/* page cache per connection, MiB */
	int		 so_busy_ms;	/* busy timeout */
	bool		 so_apply;	/* apply pending migrations on open */
	const char	*so_file;	/* file in DIR, or NULL for consentd.db */
	/*
	 * A libpq connection string: the store is on PostgreSQL. NULL: the
	 * one DIR/store names (written by cm_store_create() for such a
	 * store), else SQLCipher's file in DIR.
	 */
	const char	*so_conninfo;
};

/* The file in a data directory naming its PostgreSQL store. */
#define CM_STORE_PG_FILE	"store"

/* Whether S names a PostgreSQL store (a postgresql:// or postgres:// URI). */
bool	cm_store_is_pg(const char *s);

/* The defaults for struct cm_store_opts. */
void	cm_store_opts_default(struct cm_store_opts *);

/*
 * Creates DIR/consentd.db, keyed with KEYS, in WAL mode, with every
 * migration of SET applied. Fails if the file exists.
 */
cm_result cm_store_create(const char *dir, const struct cm_keys *,
	    const struct cm_migration_set *, char *err, size_t errlen) CM_WUR;

/*
 * Makes the PostgreSQL database CONNINFO names the store of data
 * directory DIR (which holds KEYS): applies every PostgreSQL migration of
 * SET, records a check of the keys (a keyed hash: a node with other keys
 * is refused as a wrong key), and writes DIR/store naming the database.
 * Fails (CM_CONFLICT) if the database already holds a store, or DIR
 * already has one.
 */
cm_result cm_store_create_pg(const char *dir, const char *conninfo, const struct cm_keys *,
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

/* Whether STORE is on PostgreSQL (else SQLCipher's file). */
bool	cm_store_on_pg(const struct cm_store *);

/* Closes every connection and frees the store; accepts NULL. */
void	cm_store_close(struct cm_store *);

/*
 * The calling thread's connection to STORE, opened on first use and closed
 * when the thread exits or the store closes. Borrowed; NULL on failure.
 */
struct cm_db	*cm_store_db(struct cm_store *);

/*
 * What the store's work has cost since it was opened, summed over every
 * connection: SQLite's page-cache counters, harvested as each transaction
 * ends, and the statements run. Machine noise does not move these, so
 * they are the figures `make bench` reports per check and per write, and
 * /metrics exposes them as counters.
 */
struct cm_store_cost {
	uint64_t	sc_pages_hit;		/* pages found in a connection's cache */
	uint64_t	sc_pages_miss;		/* pages read from the file and decrypted */
	uint64_t	sc_pages_written;	/* pages written (to the WAL) */
	uint64_t	sc_statements;		/* on tables: each a seek or more */
	uint64_t	sc_transactions;	/* transactions ended, read or write */
	uint64_t	sc_checks_row;		/* checks answered from a decision row */
	uint64_t	sc_checks_tables;	/* checks that read the tables instead */
};

void	cm_store_cost(struct cm_store *, struct cm_store_cost *out);

/* Checks that the store answers a read. */
cm_result cm_store_ping(struct cm_db *) CM_WUR;

/* Number of migrations recorded as applied, for status output. */
cm_result cm_store_schema_version(struct cm_db *, int *version) CM_WUR;

/* ---- backups and integrity (src/store/backup.c) ------------------------ */

struct cm_backup_stats {
	int64_t		 bs_pages;	/* pages copied */
	int64_t		 bs_steps;	/* steps they took */
};

/*
 * Copies the store SRC reads into DEST, a file that must not exist yet
 * (a new SQLite file keyed like the store), with SQLite's online backup
 * API, in small steps from one read snapshot: safe while other processes
 * write, and holding every transaction committed before it began. DEST
 * is not synced; the caller syncs and renames it.
 */
cm_result cm_store_backup(struct cm_db *src, const char *dest, struct cm_backup_stats *,
	    char *err, size_t errlen) CM_WUR;

/*
 * SQLCipher's cipher_integrity_check (every page's MAC; *CIPHER_CHECKED
 * false when this SQLCipher predates it, and page MACs are checked only
 * as integrity_check reads the pages) and SQLite's integrity_check of
 * DB's store: CM_OK, or CM_CONFLICT with the complaints in WHY (pages and
 * tables, never stored values).
 */
cm_result cm_store_integrity(struct cm_db *, bool *cipher_checked, char *why,
	    size_t whylen) CM_WUR;

/*
 * Whether nobody has DIR's store open: CM_OK (nothing is held after),
 * CM_BUSY when another connection has it open (ERR says to stop the
 * server), CM_NOTFOUND when there is no database.
 */
cm_result cm_store_probe_unused(const char *dir, const struct cm_keys *,
	    char *err, size_t errlen) CM_WUR;

/* ---- the erasure ledger (src/store/erasures.c) ------------------------- */

/* DIR/erasures.ledger: who was erased when, outside the database. */
#define CM_ERASURE_LEDGER	"erasures.ledger"

/*
 * Reads DIR's erasure ledger, checking every line's MAC (KEYS: the data
 * directory's), and calls FN(arg, subject_id, erased_at_us) for each line
 * in order; stops when FN returns non-zero. No ledger is an empty one.
 * CM_AUTH (ERR names the line) when a line was forged, edited or removed.
 */
cm_result cm_store_erasures_read(const char *dir, const struct cm_keys *,
	    int (*fn)(void *, const char *, int64_t), void *arg,
	    char *err, size_t errlen) CM_WUR;

/*
 * Appends to the ledger of DB's store every erased subject the database
 * holds and the ledger lacks (a crash came between an erasure's commit
 * and its line). *ADDED: how many. CM_AUTH when the ledger does not verify
 * (nothing is appended to it then).
 */
cm_result cm_store_erasures_sync(struct cm_db *, size_t *added, char *err,
	    size_t errlen) CM_WUR;

/* ---- master-key rotation (src/store/rotate.c) --------------------------- */

/*
 * Makes sure no other process has the store open, and that everything is
 * in the database file itself (the WAL checkpointed into it): CM_BUSY when
 * it is in use (a running server), with a reason in ERR. Holds the store
 * locked against other processes until it is closed.
 */
cm_result cm_store_lock_offline(struct cm_db *, char *err, size_t errlen) CM_WUR;

/*
 * Copies the whole store into the new file PATH keyed with NEWK (SQLCipher's
 * sqlcipher_export, 4 KiB pages, as every store). PATH must not exist.
 */
cm_result cm_store_export_rekeyed(struct cm_db *, const char *path,
	    const struct cm_keys *newk, char *err, size_t errlen) CM_WUR;

/*
 * Inside the caller's transaction on DB (a store keyed with NEWK): wraps
 * every wrapped key again (subjects, requests, packages, outbox rows),
 * unwrapped with OLD's key-encryption key and wrapped with NEWK's, same
 * associated data. *N counts them. CM_CONFLICT (the table and row in ERR)
 * when one does not unwrap: nothing may be lost, so the rotation stops.
 */
cm_result cm_store_rewrap_all(struct cm_db *, const struct cm_keys *old,
	    const struct cm_keys *newk, uint64_t *n, char *err, size_t errlen) CM_WUR;

/*
 * A master-key rotation on PostgreSQL commits the database with the key
 * files: its transaction is prepared (PREPARE TRANSACTION, durable, named
 * by NEWK's key id), the key files are committed (the commit point), then
 * the prepared transaction is committed. A process that dies between
 * leaves it for the next open of the store, whose keys decide it (see
 * cm_store_open()).
 *
 * cm_store_rekey_possible(): CM_INVALID, with the reason, when the server
 * allows no prepared transaction; CM_OK on SQLCipher.
 * cm_store_rekey_prepare(): ends DB's write transaction prepared (the
 * offline lock of cm_store_lock_offline() passes to it); on failure rolls
 * it back.
 * cm_store_rekey_commit(): commits it.
 */
cm_result cm_store_rekey_possible(struct cm_db *, char *err, size_t errlen) CM_WUR;
cm_result cm_store_rekey_prepare(struct cm_db *, const struct cm_keys *newk) CM_WUR;
cm_result cm_store_rekey_commit(struct cm_db *, const struct cm_keys *newk) CM_WUR;

/* ---- transactions ------------------------------------------------------ */

/*
 * A read transaction: one snapshot and one set of file locks for a group
 * of reads (the check does seven), instead of one per statement. Nests
 * inside a write transaction as a no-op. Always pair with cm_db_read_end().
 */
cm_result cm_db_read_begin(struct cm_db *) CM_WUR;
void	  cm_db_read_end(struct cm_db *);
/*
 * A second connection to the store of a connection not in a transaction,
 * with read transactions begun on both that see one and the same state;
 * CM_BUSY when the first is in a transaction. Close the second with
 * cm_db_twin_close() (from any one thread), end the first's read with
 * cm_db_read_end().
 */
cm_result cm_db_read_begin_twin(struct cm_db *, struct cm_db **twin) CM_WUR;
void	  cm_db_twin_close(struct cm_db *twin);

/*
 * A savepoint inside a write transaction, so one request of a group
 * commit can be undone without the others.
 */
cm_result cm_db_savepoint(struct cm_db *) CM_WUR;
cm_result cm_db_savepoint_release(struct cm_db *) CM_WUR;
cm_result cm_db_savepoint_rollback(struct cm_db *) CM_WUR;

/* Whether DB is inside a write transaction begun with cm_db_begin(). */
bool	cm_db_in_write(struct cm_db *);

/*
 * Rows inserted, updated or deleted on DB's connection since it opened,
 * plus the erasure and opt-out ledger lines its open transaction holds: a
 * caller that needs to know whether a call inside one transaction wrote
 * anything compares two.
 */
int64_t	cm_db_changes(struct cm_db *);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on DB. */
cm_result cm_db_begin(struct cm_db *) CM_WUR;

/*
 * Bulk loading into a store nobody else has open (the benchmark data
 * generator): pages go straight to the database file at commit, with a
 * rollback journal in memory and no fsync, instead of through the WAL and a
 * checkpoint. A crash meanwhile can leave the file unusable. The next open
 * puts the store back into WAL mode with full synchronous commits.
 */
cm_result cm_db_bulk_load(struct cm_db *) CM_WUR;
/*
 * CM_OK: made, and durable as the store promises (on PostgreSQL, on the
 * synchronous standby too). CM_BUSY: not made (locked, a serialisation
 * failure); the whole transaction may run again. CM_UNKNOWN: the answer
 * was lost, or the commit was made on the primary alone; only a write
 * that finds itself by its request id may run again. Anything else: not
 * made. The transaction is over whatever the result.
 */
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
 * Stores a new token (only its selector and keyed hash), inside the
 * caller's transaction. With REPLACE an active token of the same name is
 * revoked first; otherwise an active one gives CM_CONFLICT.
 */
cm_result cm_store_token_create(struct cm_db *, const char *name,
	    const char *selector, const uint8_t hash[32], uint32_t scopes,
	    bool replace, int64_t now_us) CM_WUR;

/* Finds the token with SELECTOR (active or revoked) into *ROW. */
cm_result cm_store_token_find(struct cm_db *, const char *selector,
	    struct cm_token_row *row) CM_WUR;

/* Revokes the active token called NAME (inside the caller's transaction);
 * CM_NOTFOUND when there is none. */
cm_result cm_store_token_revoke(struct cm_db *, const char *name,
	    int64_t now_us) CM_WUR;

/* Calls FN for every token, newest first; stops early when FN returns non-zero. */
cm_result cm_store_token_list(struct cm_db *,
	    int (*fn)(void *, const struct cm_token_row *), void *arg) CM_WUR;

/* ---- subjects (src/store/subjects.c) ------------------------------------ */

#define CM_SUBJECT_ID_LEN	30		/* "sub_" + 26 base32 */
#define CM_WRAPPED_LEN		72

/*
 * A subject's state (SPEC 4.2), stored as its name. INVALID stands for a
 * stored text that is none of the names, which the schema's CHECK rules
 * out; a decision that meets it denies.
 */
enum cm_subject_state {
	CM_SUBJECT_ACTIVE, CM_SUBJECT_RESTRICTED, CM_SUBJECT_ERASED, CM_SUBJECT_INVALID
};

/* "active", "restricted", "erased" ("invalid" for CM_SUBJECT_INVALID). */
const char *cm_subject_state_name(enum cm_subject_state);
/* 0 and *OUT, or -1 (and *OUT = CM_SUBJECT_INVALID) for any other text. */
int	cm_subject_state_parse(const char *, enum cm_subject_state *out);

struct cm_subject_row {
	char	 s_id[CM_SUBJECT_ID_LEN + 1];
	enum cm_subject_state s_state;
	uint8_t	 s_wrapped[CM_WRAPPED_LEN];
	bool	 s_has_key;			/* false once destroyed */
	char	 s_merged_into[CM_SUBJECT_ID_LEN + 1];	/* "" unless merged away */
	int64_t	 s_created_us;
	int64_t	 s_updated_us;
};

cm_result cm_store_subject_insert(struct cm_db *, const char *id,
	    const uint8_t wrapped[CM_WRAPPED_LEN], int64_t now_us) CM_WUR;
cm_result cm_store_subject_get(struct cm_db *, const char *id,
	    struct cm_subject_row *) CM_WUR;
/* Marks ID merged into INTO and destroys its key. */
cm_result cm_store_subject_merge_away(struct cm_db *, const char *id,
	    const char *into, int64_t now_us) CM_WUR;
cm_result cm_store_subject_touch(struct cm_db *, const char *id, int64_t now_us) CM_WUR;

struct cm_ident_row {
	char		 i_type[65];
	uint8_t		 i_blind[32];
	const uint8_t	*i_sealed;		/* borrowed for the callback */
	size_t		 i_sealed_len;
	char		 i_source[65];
	bool		 i_verified;
	int64_t		 i_created_us;
};

/* The subject holding identifier (TYPE, BLIND) into SUBJECT; CM_NOTFOUND. */
cm_result cm_store_identifier_owner(struct cm_db *, const char *type,
	    const uint8_t blind[32], char subject[CM_SUBJECT_ID_LEN + 1]) CM_WUR;
/* CM_CONFLICT when (TYPE, BLIND) already belongs to a subject. */
cm_result cm_store_identifier_insert(struct cm_db *, const char *subject,
	    const struct cm_ident_row *, int64_t now_us) CM_WUR;
cm_result cm_store_identifier_delete(struct cm_db *, const char *subject,
	    const char *type, const uint8_t blind[32]) CM_WUR;
/* Re-homes an identifier to SUBJECT with a new sealed value. */
cm_result cm_store_identifier_move(struct cm_db *, const char *type,
	    const uint8_t blind[32], const char *subject, const uint8_t *sealed,
	    size_t len) CM_WUR;
/* Calls FN for each identifier of SUBJECT, oldest first. */
cm_result cm_store_identifier_list(struct cm_db *, const char *subject,
	    int (*fn)(void *, const struct cm_ident_row *), void *arg) CM_WUR;

/* Calls FN(arg, name, sealed, len) for each profile attribute of SUBJECT. */
cm_result cm_store_profile_list(struct cm_db *, const char *subject,
	    int (*fn)(void *, const char *, const uint8_t *, size_t), void *arg) CM_WUR;
/* Sets (inserts or replaces) one attribute. */
cm_result cm_store_profile_put(struct cm_db *, const char *subject, const char *name,
	    const uint8_t *sealed, size_t len, int64_t now_us) CM_WUR;
cm_result cm_store_profile_delete(struct cm_db *, const char *subject,
	    const char *name) CM_WUR;
cm_result cm_store_profile_count(struct cm_db *, const char *subject, int64_t *n) CM_WUR;

/* Re-seals every audit opening of FROM under TO (merge): FN re-encrypts. */
cm_result cm_store_audit_openings_rehome(struct cm_db *, const char *from,
	    const char *to, int (*fn)(void *, uint64_t idx, const uint8_t *, size_t,
	    struct cm_buf *out), void *arg) CM_WUR;

/* ---- consents (src/store/consents.c) ------------------------------------ */

#define CM_EVENT_ID_LEN		30	/* "evt_" + 26 base32 */
#define CM_REQUEST_ID_MAX	128
#define CM_ALL_CHANNELS		"*"

struct cm_event_row {
	int64_t		 e_seq;
	char		 e_event_id[CM_EVENT_ID_LEN + 1];
	char		 e_subject[CM_SUBJECT_ID_LEN + 1];
	char		 e_purpose[65];
	char		 e_channel[65];		/* "*": all channels */
	char		 e_state[12];
	int64_t		 e_notice_version;
	char		 e_method[24];
	int64_t		 e_collected_us;
	int64_t		 e_recorded_us;
	const uint8_t	*e_evidence;		/* sealed; borrowed; may be NULL */
	size_t		 e_evidence_len;
	char		 e_client[80];
	char		 e_request_id[CM_REQUEST_ID_MAX + 1];	/* "" when none */
	int64_t		 e_audit_index;
	bool		 e_sale_ref;		/* evidence names the sale (soft opt-in) */
	bool		 e_superseded;		/* collected before the state it joined */
	bool		 e_has_request_hash;
	uint8_t		 e_request_hash[32];	/* keyed hash of the first request */
};

/* Appends an event; sets e_seq. CM_CONFLICT on a repeated (client, request_id). */
cm_result cm_store_event_insert(struct cm_db *, struct cm_event_row *) CM_WUR;
/* The event an earlier request made; CM_NOTFOUND. Evidence is not read. */
cm_result cm_store_event_by_request(struct cm_db *, const char *client,
	    const char *request_id, struct cm_event_row *) CM_WUR;
/* The event EVENT_ID into *E (evidence not read); CM_NOTFOUND. */
cm_result cm_store_event_get(struct cm_db *, const char *event_id,
	    struct cm_event_row *) CM_WUR;
/* The event of sequence number SEQ into *E (evidence not read); CM_NOTFOUND. */
cm_result cm_store_event_by_seq(struct cm_db *, int64_t seq, struct cm_event_row *) CM_WUR;
/* Calls FN for every event of SUBJECT in recording order (row borrowed). */
cm_result cm_store_events_list(struct cm_db *, const char *subject,
	    int (*fn)(void *, const struct cm_event_row *), void *arg) CM_WUR;
/* Re-homes one event to SUBJECT with new sealed evidence (merge). */
cm_result cm_store_event_move(struct cm_db *, int64_t seq, const char *subject,
	    const uint8_t *evidence, size_t len) CM_WUR;

/*
 * Sets the current row of (SUBJECT, PURPOSE, CHANNEL) from EV. The caller
 * has checked that EV comes after the row it replaces (cm_consent_after).
 */
cm_result cm_store_current_put(struct cm_db *, const struct cm_event_row *ev) CM_WUR;
/*
 * Rebuilds every current row of SUBJECT from its events: for each
 * (purpose, channel) the event collected last, ties to the later recorded.
 */
cm_result cm_store_current_rebuild(struct cm_db *, const char *subject) CM_WUR;
/*
 * Reads the current rows (SUBJECT, PURPOSE, CHANNEL) into CH and
 * (SUBJECT, PURPOSE, "*") into ALL; a missing one has e_seq 0. Rows carry
 * e_collected_us and e_sale_ref, not evidence.
 */
cm_result cm_store_current_pair(struct cm_db *, const char *subject,
	    const char *purpose, const char *channel, struct cm_event_row *ch,
	    struct cm_event_row *all) CM_WUR;
cm_result cm_store_current_list(struct cm_db *, const char *subject,
	    int (*fn)(void *, const struct cm_event_row *), void *arg) CM_WUR;
/* A suppression entry as the check reads it: the identifier's type and the reason. */
struct cm_supp_row {
	char	 sr_type[65];
	char	 sr_reason[16];
	uint8_t	 sr_blind[32];
	int64_t	 sr_since;
};

/* The suppression entries a decision keeps for one person; more read as erased. */
#define CM_SUPP_FACTS_MAX	16

/* What the check needs about the owner of one identifier, in one query. */
struct cm_check_row {
	char			 k_subject[CM_SUBJECT_ID_LEN + 1];	/* "": nobody */
	enum cm_subject_state	 k_state;
	int64_t			 k_objected_at;
	int64_t			 k_paused_until;
	struct cm_event_row	 k_channel;	/* e_seq 0 when absent */
	struct cm_event_row	 k_all;
	bool			 k_conflicts;	/* open merge conflicts for PURPOSE */
	/*
	 * Read from the identifier's decision row: then k_supp holds every
	 * entry binding the owner (deduplicated, k_supp_overflow past
	 * CM_SUPP_FACTS_MAX); otherwise the caller reads them itself.
	 */
	bool			 k_from_row;
	struct cm_supp_row	 k_supp[CM_SUPP_FACTS_MAX];
	size_t			 k_nsupp;
	bool			 k_supp_overflow;
};

/*
 * Reads, for identifier (TYPE, BLIND), its owner, the owner's state,
 * objection and pause, and the current (PURPOSE, CHANNEL) and
 * (PURPOSE, "*") rows: from the identifier's decision row (one probe, and
 * the suppression entries with it) when there is one, else from the
 * tables themselves. CM_NOTFOUND when nobody has the identifier.
 */
cm_result cm_store_check_facts(struct cm_db *, const char *type, const uint8_t blind[32],
	    const char *purpose, const char *channel, struct cm_check_row *) CM_WUR;

/*
 * Decision rows (src/store/decisions.c; migrations 15 and 16). Takes the
 * first MAX notes of subjects whose facts changed (a subject may be noted
 * more than once) and rebuilds those subjects' rows, once each, inside the
 * open write transaction; *LEFT says whether notes remain. The store's
 * commit runs it for the subjects of its own transaction; the upgrade
 * step drains what a migration or another tool left.
 */
cm_result cm_store_decisions_rebuild(struct cm_db *, int max, bool *left) CM_WUR;
/* How many subjects are noted for a rebuild of their decision rows. */
cm_result cm_store_decisions_pending(struct cm_db *, int64_t *n) CM_WUR;
/*
 * Whether checks on DB may answer from decision rows (the default); off,
 * every check reads the tables themselves. For tests and diagnosis.
 */
void	cm_db_decision_rows(struct cm_db *, bool use);

/* Deletes every current row of SUBJECT (merge, after moving them). */
cm_result cm_store_current_clear(struct cm_db *, const char *subject) CM_WUR;

/* Suppression of (TYPE, BLIND): REASON (16 bytes) and SINCE; CM_NOTFOUND. */
cm_result cm_store_suppression_get(struct cm_db *, const char *type,
	    const uint8_t blind[32], char reason[16], int64_t *since) CM_WUR;
/*
 * Calls FN for every suppression entry that binds SUBJECT: entries on the
 * identifiers it holds, and on those it held when they were unlinked
 * (suppression_subjects). An entry may come twice.
 */
cm_result cm_store_subject_suppressions(struct cm_db *, const char *subject,
	    int (*fn)(void *, const struct cm_supp_row *), void *arg) CM_WUR;
/* Keeps (TYPE, BLIND) bound to SUBJECT after an unlink; idempotent. */
cm_result cm_store_suppression_bind(struct cm_db *, const char *subject, const char *type,
	    const uint8_t blind[32]) CM_WUR;
/* Drops every subject's binding to (TYPE, BLIND) (the entry was lifted). */
cm_result cm_store_suppression_unbind(struct cm_db *, const char *type,
	    const uint8_t blind[32]) CM_WUR;
/* Moves FROM's bindings to TO (merge). */
cm_result cm_store_suppression_bindings_move(struct cm_db *, const char *from,
	    const char *to) CM_WUR;
/* Calls FN for every binding of SUBJECT, or of everyone when SUBJECT is NULL. */
cm_result cm_store_suppression_bindings(struct cm_db *, const char *subject,
	    int (*fn)(void *, const char *subject, const char *type, const uint8_t blind[32]),
	    void *arg) CM_WUR;
/* Calls FN for every suppression entry (audit verification). */
cm_result cm_store_suppressions_scan(struct cm_db *,
	    int (*fn)(void *, const struct cm_supp_row *), void *arg) CM_WUR;
/* Adds one; CM_CONFLICT when present. */
cm_result cm_store_suppression_put(struct cm_db *, const char *type,
	    const uint8_t blind[32], const char *reason, int64_t since) CM_WUR;
cm_result cm_store_suppression_delete(struct cm_db *, const char *type,
	    const uint8_t blind[32]) CM_WUR;

struct cm_prefs_row {
	bool	 p_present;
	char	*p_channels;		/* JSON object text or NULL; free() */
	char	*p_topics;		/* JSON object text or NULL; free() */
	char	 p_frequency[33];
	int64_t	 p_paused_until;	/* 0: none */
	int64_t	 p_objected_at;		/* 0: none */
};

cm_result cm_store_prefs_get(struct cm_db *, const char *subject,
	    struct cm_prefs_row *) CM_WUR;
cm_result cm_store_prefs_put(struct cm_db *, const char *subject,
	    const struct cm_prefs_row *, int64_t now_us) CM_WUR;
void	cm_prefs_row_clear(struct cm_prefs_row *);

cm_result cm_store_conflict_add(struct cm_db *, const char *subject, const char *from,
	    const char *purpose, const char *channel, const char *kept,
	    const char *other, int64_t now_us) CM_WUR;
/* Calls FN(arg, purpose, channel, kept, other) for each open conflict of
 * SUBJECT (only PURPOSE's when not NULL). */
cm_result cm_store_conflicts_open(struct cm_db *, const char *subject,
	    const char *purpose, int (*fn)(void *, const char *, const char *,
	    const char *, const char *), void *arg) CM_WUR;
/* Closes the open conflicts of (SUBJECT, PURPOSE, CHANNEL) ("*": all). */
cm_result cm_store_conflicts_resolve(struct cm_db *, const char *subject,
	    const char *purpose, const char *channel, int64_t now_us) CM_WUR;
cm_result cm_store_conflicts_move(struct cm_db *, const char *from, const char *to) CM_WUR;

cm_result cm_store_unsubscribe_count(struct cm_db *, const char *month,
	    const char *reason) CM_WUR;
cm_result cm_store_unsubscribe_report(struct cm_db *,
	    int (*fn)(void *, const char *month, const char *reason, int64_t n),
	    void *arg) CM_WUR;

/* Calls FN(arg, id, state) for every subject not merged away. */
cm_result cm_store_subjects_scan(struct cm_db *,
	    int (*fn)(void *, const char *, enum cm_subject_state), void *arg) CM_WUR;
/* Calls FN(arg, id) for every subject merged directly into ID. */
cm_result cm_store_subjects_merged_into(struct cm_db *, const char *id,
	    int (*fn)(void *, const char *), void *arg) CM_WUR;
cm_result cm_store_subject_set_state(struct cm_db *, const char *id,
	    enum cm_subject_state, int64_t now_us) CM_WUR;

/* ---- erasure (src/store/consents.c) ------------------------------------- */

/*
 * Erases SUBJECT's personal data inside the caller's transaction: its
 * identifiers, profile, preferences and consent evidence are deleted, its
 * key destroyed and its state set to erased. Counts go to *N (identifiers,
 * attributes, evidence).
 */
cm_result cm_store_subject_erase(struct cm_db *, const char *subject, int64_t *nids,
	    int64_t *nattrs, int64_t *nevidence, int64_t now_us) CM_WUR;

/* ---- reading everything, for `audit verify` (src/store/consents.c) ------ */

/* Calls FN for every consent event by sequence, without evidence. */
cm_result cm_store_events_scan(struct cm_db *,
	    int (*fn)(void *, const struct cm_event_row *), void *arg) CM_WUR;
/* Calls FN for every current row (e_collected_us and e_sale_ref set). */
cm_result cm_store_current_scan(struct cm_db *,
	    int (*fn)(void *, const struct cm_event_row *), void *arg) CM_WUR;
/* Calls FN for every subject row (merged away and erased ones too). */
cm_result cm_store_subjects_all(struct cm_db *,
	    int (*fn)(void *, const struct cm_subject_row *), void *arg) CM_WUR;
/* Calls FN(arg, subject, row) for every preferences row. */
cm_result cm_store_prefs_all(struct cm_db *,
	    int (*fn)(void *, const char *, const struct cm_prefs_row *), void *arg) CM_WUR;
/* Calls FN(arg, subject, pseudonym) for every mapping still held. */
cm_result cm_store_audit_pseudonyms_all(struct cm_db *,
	    int (*fn)(void *, const char *, const char *), void *arg) CM_WUR;

/* ---- the opt-out ledger (src/store/optouts.c) -------------------------- */

/* DIR/optouts.ledger: every "no" said, outside the database, no personal data. */
#define CM_OPTOUT_LEDGER	"optouts.ledger"

enum cm_optout_kind {
	CM_OPTOUT_CONSENT,	/* a withdrawn or refused consent event */
	CM_OPTOUT_SUPPRESSION,	/* an entry added to the suppression list */
	CM_OPTOUT_OBJECTION,	/* an Art. 21 objection to direct marketing */
	CM_OPTOUT_RESTRICTION	/* an Art. 18 restriction */
};

/* One line of the opt-out ledger. */
struct cm_optout {
	enum cm_optout_kind	 o_kind;
	char	 o_subject[CM_SUBJECT_ID_LEN + 1];	/* all but suppression */
	char	 o_purpose[65];			/* consent */
	char	 o_channel[65];			/* consent; "*": all channels */
	char	 o_state[12];			/* consent */
	char	 o_method[24];			/* consent */
	int64_t	 o_notice;			/* consent: notice version */
	char	 o_type[65];			/* suppression: identifier type */
	uint8_t	 o_blind[32];			/* suppression: blind index */
	char	 o_reason[16];			/* suppression */
	int64_t	 o_at;		/* collected_at, since, objected or restricted at */
	int64_t	 o_recorded;	/* consent: when it was recorded */
};

/*
 * Reads DIR's opt-out ledger, checking every line's MAC (KEYS: the data
 * directory's), and calls FN(arg, line) for each line in order; stops when
 * FN returns non-zero. No ledger is an empty one. CM_AUTH (ERR names the
 * line) when a line was forged, edited or removed, or cannot be read.
 */
cm_result cm_store_optouts_read(const char *dir, const struct cm_keys *,
	    int (*fn)(void *, const struct cm_optout *), void *arg,
	    char *err, size_t errlen) CM_WUR;

/*
 * Appends to the opt-out ledger of DB's store the "no"s the database holds
 * and the ledger lacks (a crash came between a commit and its line): every
 * suppression entry, objection and restriction, and the withdrawn or
 * refused events recorded from an hour before the ledger's newest consent
 * line on. *ADDED: how many. CM_AUTH when the ledger does not verify.
 */
cm_result cm_store_optouts_sync(struct cm_db *, size_t *added, char *err,
	    size_t errlen) CM_WUR;

/*
 * *FOUND: whether SUBJECT has an event (PURPOSE, CHANNEL, STATE) collected
 * at COLLECTED_US (a ledger line the database already holds).
 */
cm_result cm_store_event_exists(struct cm_db *, const char *subject, const char *purpose,
	    const char *channel, const char *state, int64_t collected_us,
	    bool *found) CM_WUR;

/* ---- data upgrades (src/store/consents.c) ------------------------------- */

/* Whether the projection of migration 4 is still waiting to be compared. */
cm_result cm_store_upgrade_v1_pending(struct cm_db *, bool *pending) CM_WUR;
/* Calls FN(arg, subject, purpose) for each pair with a current row, old or new. */
cm_result cm_store_upgrade_v1_pairs(struct cm_db *,
	    int (*fn)(void *, const char *, const char *), void *arg) CM_WUR;
/* Calls FN for each old current row of (SUBJECT, PURPOSE) (no collected_at). */
cm_result cm_store_upgrade_v1_rows(struct cm_db *, const char *subject,
	    const char *purpose, int (*fn)(void *, const struct cm_event_row *),
	    void *arg) CM_WUR;
/* Calls FN for each current row of (SUBJECT, PURPOSE). */
cm_result cm_store_current_purpose(struct cm_db *, const char *subject,
	    const char *purpose, int (*fn)(void *, const struct cm_event_row *),
	    void *arg) CM_WUR;
/* Calls FN(arg, subject) for every subject holding an identifier. */
cm_result cm_store_subjects_with_identifiers(struct cm_db *,
	    int (*fn)(void *, const char *), void *arg) CM_WUR;
/*
 * Moves the suppression entry of (TYPE, OLD) and every binding to it to
 * (TYPE, NEW); where NEW is listed already, the stronger reason stays
 * (erased beats every other). CM_NOTFOUND when OLD is not listed.
 */
cm_result cm_store_suppression_rekey(struct cm_db *, const char *type,
	    const uint8_t old[32], const uint8_t new_[32]) CM_WUR;

/* Drops the old projection once compared. */
cm_result cm_store_upgrade_v1_done(struct cm_db *) CM_WUR;

/* ---- data-subject requests (src/store/requests.c) ----------------------- */

#define CM_DSR_SEALED_MAX	(64 * 1024)

/* A request as stored; r_sealed is borrowed in callbacks, owned after _get. */
struct cm_dsr_row {
	char		 r_id[31];
	char		 r_type[16];
	char		 r_subject[CM_SUBJECT_ID_LEN + 1];	/* "": nobody holds it */
	char		 r_ident_type[65];
	uint8_t		 r_ident_blind[32];
	uint8_t		 r_wrapped[CM_WRAPPED_LEN];	/* own key, when no subject */
	bool		 r_has_wrapped;
	const uint8_t	*r_sealed;
	size_t		 r_sealed_len;
	char		 r_jurisdiction[10];
	char		 r_source[33];
	char		 r_status[24];
	int64_t		 r_received_us;
	int64_t		 r_due_us;
	bool		 r_extended;
	int64_t		 r_closed_us;			/* 0: open */
	int64_t		 r_updated_us;
};

/* One step of a request's timeline. */
struct cm_dsr_step_row {
	int64_t		 st_seq;
	const char	*st_step;
	const char	*st_status;
	const char	*st_actor;
	int64_t		 st_at_us;
	const char	*st_reason;			/* NULL: none */
	int64_t		 st_audit_index;
};

cm_result cm_store_dsr_insert(struct cm_db *, const struct cm_dsr_row *) CM_WUR;
/* Loads request ID into ROW (r_sealed allocated: cm_dsr_row_clear). */
cm_result cm_store_dsr_get(struct cm_db *, const char *id, struct cm_dsr_row *) CM_WUR;
void	cm_dsr_row_clear(struct cm_dsr_row *);
/*
 * The open request of TYPE for SUBJECT, or, with SUBJECT NULL, for the
 * identifier (TYPE_, BLIND) that nobody holds; its id into ID.
 */
cm_result cm_store_dsr_find_open(struct cm_db *, const char *subject, const char *ident_type,
	    const uint8_t blind[32], const char *type, char id[31]) CM_WUR;
/* Sets the moving parts of request ID. */
cm_result cm_store_dsr_update(struct cm_db *, const char *id, const char *status,
	    int64_t due_us, bool extended, int64_t closed_us, int64_t now_us) CM_WUR;
/* Moves request ID to SUBJECT with its details sealed anew (a merge). */
cm_result cm_store_dsr_rehome(struct cm_db *, const char *id, const char *subject,
	    const uint8_t *sealed, size_t len) CM_WUR;
/* Calls FN for every request of SUBJECT (row borrowed), until FN returns non-zero. */
cm_result cm_store_dsr_of_subject(struct cm_db *, const char *subject,
	    int (*fn)(void *, const struct cm_dsr_row *), void *arg) CM_WUR;

/* What cm_store_dsr_list selects; NULL or 0 members select everything. */
struct cm_dsr_query {
	const char	*dq_status;
	const char	*dq_type;
	const char	*dq_subject;
	int64_t		 dq_overdue_at;		/* open and due before this, or 0 */
	int64_t		 dq_after_due;		/* the cursor: after (due, id) */
	const char	*dq_after_id;		/* NULL: from the start */
	int		 dq_limit;
};
/* Calls FN for each request Q selects, by due date then id (row borrowed). */
cm_result cm_store_dsr_list(struct cm_db *, const struct cm_dsr_query *q,
	    int (*fn)(void *, const struct cm_dsr_row *), void *arg) CM_WUR;
/*
 * For /metrics: the open requests (*OPEN), those of them overdue at NOW_US
 * (*OVERDUE) and those due from NOW_US up to SOON_US (*DUE_SOON).
 */
cm_result cm_store_dsr_deadlines(struct cm_db *, int64_t now_us, int64_t soon_us,
	    int64_t *open, int64_t *due_soon, int64_t *overdue) CM_WUR;

/* Appends a step to request ID's timeline (its sequence number follows the last). */
cm_result cm_store_dsr_step(struct cm_db *, const char *id, const char *step,
	    const char *status, const char *actor, int64_t at_us, const char *reason,
	    int64_t audit_index) CM_WUR;
cm_result cm_store_dsr_steps(struct cm_db *, const char *id,
	    int (*fn)(void *, const struct cm_dsr_step_row *), void *arg) CM_WUR;

/* The identity code of a request: a keyed hash, its expiry, attempts made. */
cm_result cm_store_dsr_code_put(struct cm_db *, const char *id, const uint8_t hash[32],
	    int64_t expires_us) CM_WUR;
cm_result cm_store_dsr_code_get(struct cm_db *, const char *id, uint8_t hash[32],
	    int64_t *expires_us, int64_t *attempts) CM_WUR;
cm_result cm_store_dsr_code_attempt(struct cm_db *, const char *id) CM_WUR;
cm_result cm_store_dsr_code_delete(struct cm_db *, const char *id) CM_WUR;

/* ---- policy notices (src/store/notices.c; see consentd/notice.h) ------- */

#define CM_NOTICE_PURPOSE_MAX	64

/* One served version of a purpose's notice, as stored. */
struct cm_notice_row {
	char		 nr_purpose[CM_NOTICE_PURPOSE_MAX + 1];
	int64_t		 nr_version;
	uint8_t		 nr_sha256[32];		/* of the nr_text bytes */
	char		 nr_basis[24];		/* lawful basis, as in the text */
	const char	*nr_text;		/* canonical JSON; borrowed */
	size_t		 nr_text_len;
	int64_t		 nr_first_served_us;	/* when start-up recorded it */
	int64_t		 nr_audit_index;	/* its "policy.version" entry */
};

/*
 * Stores ROW inside the caller's transaction, which also carries its audit
 * entry. CM_CONFLICT when that (purpose, version) is already stored.
 */
cm_result cm_store_notice_insert(struct cm_db *, const struct cm_notice_row *) CM_WUR;

/*
 * Calls FN for every stored version of PURPOSE (of every purpose when
 * PURPOSE is NULL), ordered by purpose then version; the row and its text
 * are borrowed for the call. Stops when FN returns non-zero.
 */
cm_result cm_store_notice_list(struct cm_db *, const char *purpose,
	    int (*fn)(void *, const struct cm_notice_row *), void *arg) CM_WUR;

/*
 * Calls FN once with version VERSION of PURPOSE (borrowed for the call);
 * CM_NOTFOUND when it was never served.
 */
cm_result cm_store_notice_get(struct cm_db *, const char *purpose, int64_t version,
	    int (*fn)(void *, const struct cm_notice_row *), void *arg) CM_WUR;

/* ---- meta (src/store/audit.c) ------------------------------------------ */

/* Reads the setting KEY into OUT; CM_NOTFOUND when unset. */
cm_result cm_store_meta_get(struct cm_db *, const char *key, char *out,
	    size_t outlen) CM_WUR;
/* Sets KEY; CM_CONFLICT when it is already set (settings are fixed). */
cm_result cm_store_meta_put(struct cm_db *, const char *key, const char *value) CM_WUR;

/* ---- audit log (src/store/audit.c) -------------------------------------- */

/* Number of entries in the log. */
cm_result cm_store_audit_size(struct cm_db *, uint64_t *size) CM_WUR;
cm_result cm_store_audit_put_entry(struct cm_db *, uint64_t idx, const void *entry,
	    size_t len, const uint8_t leaf[32]) CM_WUR;
/* Stores a perfect-subtree hash of LEVEL >= 1. */
cm_result cm_store_audit_put_hash(struct cm_db *, unsigned level, uint64_t idx,
	    const uint8_t hash[32]) CM_WUR;
/* Reads a perfect-subtree hash; level 0 is the leaf hash of entry IDX. */
cm_result cm_store_audit_get_hash(struct cm_db *, unsigned level, uint64_t idx,
	    uint8_t out[32]) CM_WUR;

/*
 * Calls FN for each entry with FROM <= idx < TO in index order, with the
 * stored bytes and leaf hash (both borrowed for the call). Stops when FN
 * returns non-zero.
 */
cm_result cm_store_audit_scan(struct cm_db *, uint64_t from, uint64_t to,
	    int (*fn)(void *, uint64_t idx, const void *entry, size_t len,
	    const uint8_t leaf[32]), void *arg) CM_WUR;

/* A cursor over the stored hashes of one level, in index order. */
struct cm_hash_cursor;
struct cm_hash_cursor *cm_store_audit_hash_cursor(struct cm_db *, unsigned level);
/* Next (idx, hash): CM_OK, CM_NOTFOUND at the end, or an error. */
cm_result cm_store_audit_hash_next(struct cm_hash_cursor *, uint64_t *idx,
	    uint8_t hash[32]) CM_WUR;
void	cm_store_audit_hash_cursor_free(struct cm_hash_cursor *);

struct cm_checkpoint_row {
	uint64_t	 cp_size;
	uint8_t		 cp_root[32];
	char		*cp_note;	/* the signed note; free() it */
	int64_t		 cp_signed_us;
};

/* The checkpoint of the largest size; CM_NOTFOUND when none. */
cm_result cm_store_audit_checkpoint_latest(struct cm_db *, struct cm_checkpoint_row *) CM_WUR;
/* The checkpoint of SIZE; CM_NOTFOUND when none. */
cm_result cm_store_audit_checkpoint_get(struct cm_db *, uint64_t size,
	    struct cm_checkpoint_row *) CM_WUR;
/* The checkpoint of the smallest size above INDEX (it covers that entry); CM_NOTFOUND. */
cm_result cm_store_audit_checkpoint_covering(struct cm_db *, uint64_t index,
	    struct cm_checkpoint_row *) CM_WUR;
/* Stores a checkpoint; CM_CONFLICT when one of that size exists. */
cm_result cm_store_audit_checkpoint_put(struct cm_db *, uint64_t size,
	    const uint8_t root[32], const char *note, int64_t signed_us) CM_WUR;
/* Calls FN for every checkpoint by increasing size (the row is borrowed). */
cm_result cm_store_audit_checkpoints(struct cm_db *,
	    int (*fn)(void *, const struct cm_checkpoint_row *), void *arg) CM_WUR;

/*
 * The pseudonym standing for SUBJECT_ID in audit entries, into OUT (at
 * least 40 bytes). With CREATE, one is made from CANDIDATE when none
 * exists; otherwise CM_NOTFOUND.
 */
cm_result cm_store_audit_pseudonym(struct cm_db *, const char *subject_id,
	    bool create, const char *candidate, char *out, size_t outlen) CM_WUR;
cm_result cm_store_audit_opening_put(struct cm_db *, uint64_t idx,
	    const char *subject_id, const void *sealed, size_t len) CM_WUR;
/* Reads the sealed opening of entry IDX into OUT (appended). */
cm_result cm_store_audit_opening_get(struct cm_db *, uint64_t idx,
	    struct cm_buf *out, char *subject_id, size_t subject_len) CM_WUR;
/* Erasure: drops the subject's pseudonym mapping and every opening. */
cm_result cm_store_audit_forget_subject(struct cm_db *, const char *subject_id) CM_WUR;

/* ---- access and portability packages (src/store/packages.c) ------------ */

#define CM_PACKAGE_ID_LEN	30	/* "pkg_" + 26 base32 */

struct cm_package_row {
	char		 pk_id[CM_PACKAGE_ID_LEN + 1];
	char		 pk_request[31];
	char		 pk_subject[CM_SUBJECT_ID_LEN + 1];
	char		 pk_format[8];			/* "json" or "csv" */
	uint8_t		 pk_wrapped[CM_WRAPPED_LEN];	/* its key, under the KEK */
	int64_t		 pk_size;			/* plaintext bytes */
	int64_t		 pk_created_us;
	int64_t		 pk_expires_us;
};

cm_result cm_store_package_insert(struct cm_db *, const struct cm_package_row *) CM_WUR;
/* The package of REQUEST in FORMAT into ROW; CM_NOTFOUND. */
cm_result cm_store_package_get(struct cm_db *, const char *request, const char *format,
	    struct cm_package_row *) CM_WUR;
/* Package ID into ROW; CM_NOTFOUND. */
cm_result cm_store_package_by_id(struct cm_db *, const char *id,
	    struct cm_package_row *) CM_WUR;
/*
 * Calls FN for every package of SUBJECT or of a request SUBJECT now holds
 * (SUBJECT NULL: every package that
 * expired before EXPIRED_BEFORE), row borrowed; stops when FN returns
 * non-zero.
 */
cm_result cm_store_packages_list(struct cm_db *, const char *subject, int64_t expired_before,
	    int (*fn)(void *, const struct cm_package_row *), void *arg) CM_WUR;
/* Deletes the packages cm_store_packages_list would list (their keys with them). */
cm_result cm_store_packages_delete(struct cm_db *, const char *subject,
	    int64_t expired_before) CM_WUR;

/* The data directory of DB's store into OUT; -1 when it does not fit. */
int	cm_store_dir(struct cm_db *, char *out, size_t outlen) CM_WUR;
/*
 * Gives back the page cache DB holds beyond what its open statements use,
 * so a long scan (a package of a long history) does not keep its pages.
 */
void	cm_db_release_memory(struct cm_db *);
/* A small page cache for whole-table scans (SCAN), or the store's own again. */
void	cm_db_scan_cache(struct cm_db *, bool scan);
/* ---- the outbox and downstream systems (src/store/outbox.c) ------------- */

#define CM_OUTBOX_ID_LEN	30	/* "obx_" + 26 base32 */
#define CM_SYSTEM_NAME_MAX	64
#define CM_SYSTEM_URL_MAX	512
#define CM_SYSTEM_SECRET_MAX	256
#define CM_OUTBOX_ERROR_MAX	160

/* One queued message or webhook; o_body is borrowed in callbacks, owned after _get. */
struct cm_outbox_row {
	char		 o_id[CM_OUTBOX_ID_LEN + 1];
	char		 o_kind[8];			/* "message", "webhook" */
	char		 o_request[31];			/* "": none */
	char		 o_subject[CM_SUBJECT_ID_LEN + 1];	/* "": own key */
	char		 o_name[33];			/* template or event */
	char		 o_channel[16];			/* "email", "phone", "webhook" */
	char		 o_system[CM_SYSTEM_NAME_MAX + 1];	/* webhooks */
	char		 o_status[8];			/* "pending", "sent", "dead" */
	int64_t		 o_attempts;
	int64_t		 o_next_us;
	char		 o_error[CM_OUTBOX_ERROR_MAX + 1];	/* never personal data */
	int64_t		 o_created_us;
	int64_t		 o_sent_us;			/* 0: not sent */
	uint8_t		 o_wrapped[CM_WRAPPED_LEN];	/* own key, wrapped (AD = id) */
	bool		 o_has_wrapped;
	const uint8_t	*o_body;			/* sealed; NULL once gone */
	size_t		 o_body_len;
};

cm_result cm_store_outbox_insert(struct cm_db *, const struct cm_outbox_row *) CM_WUR;
/* Loads row ID (o_body allocated: cm_outbox_row_clear). */
cm_result cm_store_outbox_get(struct cm_db *, const char *id, struct cm_outbox_row *) CM_WUR;
void	cm_outbox_row_clear(struct cm_outbox_row *);
/*
 * Calls FN for the rows in STATUS (NULL: any) of REQUEST (NULL: any),
 * newest first, at most LIMIT; the row is borrowed.
 */
cm_result cm_store_outbox_list(struct cm_db *, const char *status, const char *request,
	    int limit, int (*fn)(void *, const struct cm_outbox_row *), void *arg) CM_WUR;
/*
 * Like cm_store_outbox_list for any request, from after the row
 * (BEFORE_US, BEFORE_ID) in that order (BEFORE_ID NULL: from the newest).
 */
cm_result cm_store_outbox_page(struct cm_db *, const char *status, int64_t before_us,
	    const char *before_id, int limit,
	    int (*fn)(void *, const struct cm_outbox_row *), void *arg) CM_WUR;
/* Calls FN(arg, id) for up to LIMIT pending rows due at NOW, oldest due first. */
cm_result cm_store_outbox_due(struct cm_db *, int64_t now_us, int limit,
	    int (*fn)(void *, const char *), void *arg) CM_WUR;
/*
 * Claims pending row ID, due at NOW, for one attempt: it is not due again
 * until UNTIL (a delivery thread that died meanwhile leaves it to be tried
 * again then). CM_NOTFOUND when it is no longer pending and due: another
 * process or node claimed it first. In a write transaction.
 */
cm_result cm_store_outbox_claim(struct cm_db *, const char *id, int64_t now_us,
	    int64_t until_us) CM_WUR;
/* Row ID was delivered: sent, its body and own key deleted. */
cm_result cm_store_outbox_sent(struct cm_db *, const char *id, int64_t now_us) CM_WUR;
/*
 * An attempt at row ID failed with ERROR (no personal data): ATTEMPTS made,
 * the next at NEXT_US, or dead when DEAD; WIPE deletes its body and own key.
 */
cm_result cm_store_outbox_failed(struct cm_db *, const char *id, int64_t attempts,
	    int64_t next_us, const char *error, bool dead, bool wipe) CM_WUR;
/* Dead row ID is pending again, due at NOW with no attempts; CM_NOTFOUND if not dead. */
cm_result cm_store_outbox_retry(struct cm_db *, const char *id, int64_t now_us) CM_WUR;
/* Deletes every row of SUBJECT not yet delivered (erasure); *N how many. */
cm_result cm_store_outbox_forget(struct cm_db *, const char *subject, int64_t *n) CM_WUR;
/* Sets when REQUEST's pending rows called NAME are due (to hold or release them). */
cm_result cm_store_outbox_schedule(struct cm_db *, const char *request, const char *name,
	    int64_t due_us) CM_WUR;
/*
 * The status of the newest row NAME of REQUEST into STATUS (8 bytes);
 * CM_NOTFOUND when none was queued.
 */
cm_result cm_store_outbox_status_of(struct cm_db *, const char *request, const char *name,
	    char status[8]) CM_WUR;
/* For /metrics: the outbox's rows waiting to go out (*PENDING) and given up (*DEAD). */
cm_result cm_store_outbox_depth(struct cm_db *, int64_t *pending, int64_t *dead) CM_WUR;

/*
 * The status (8 bytes) and time (sent, else queued) of SUBJECT's newest row
 * NAME to SYSTEM; CM_NOTFOUND when none.
 */
cm_result cm_store_outbox_last(struct cm_db *, const char *subject, const char *name,
	    const char *system, char status[8], int64_t *at_us) CM_WUR;

/* Calls FN for every row of SUBJECT (the row is borrowed). */
cm_result cm_store_outbox_of_subject(struct cm_db *, const char *subject,
	    int (*fn)(void *, const struct cm_outbox_row *), void *arg) CM_WUR;
/* Row ID is SUBJECT's, with BODY sealed anew (a merge; NULL: its own kept). */
cm_result cm_store_outbox_rehome(struct cm_db *, const char *id, const char *subject,
	    const uint8_t *body, size_t len) CM_WUR;

/* A downstream system; s_secret is sealed under the secret key. */
struct cm_system_row {
	char		 s_name[CM_SYSTEM_NAME_MAX + 1];
	char		 s_url[CM_SYSTEM_URL_MAX + 1];
	char		 s_events[160];			/* JSON array of event names */
	uint8_t		 s_secret[CM_SYSTEM_SECRET_MAX + 64];
	size_t		 s_secret_len;
	int64_t		 s_created_us;
};

/* Adds one; CM_CONFLICT when one of that name exists. */
cm_result cm_store_system_insert(struct cm_db *, const struct cm_system_row *) CM_WUR;
cm_result cm_store_system_get(struct cm_db *, const char *name, struct cm_system_row *) CM_WUR;
/* Whether any system's events hold QUOTED_EVENT ("\"consent.changed\""). */
cm_result cm_store_systems_any(struct cm_db *, const char *quoted_event, bool *any) CM_WUR;
/* CM_NOTFOUND when there is none of that name. */
cm_result cm_store_system_delete(struct cm_db *, const char *name) CM_WUR;
/* Calls FN for every system by name (the row is borrowed). */
cm_result cm_store_systems_list(struct cm_db *,
	    int (*fn)(void *, const struct cm_system_row *), void *arg) CM_WUR;

/* What system SYSTEM reported for REQUEST (inserted or replaced). */
cm_result cm_store_dsr_system_put(struct cm_db *, const char *request, const char *system,
	    const char *status, const char *detail, int64_t now_us) CM_WUR;
/* The status SYSTEM has for REQUEST into STATUS (16 bytes); CM_NOTFOUND. */
cm_result cm_store_dsr_system_get(struct cm_db *, const char *request, const char *system,
	    char status[16]) CM_WUR;
/* Calls FN(arg, system, status, detail or NULL, updated) for each system of REQUEST. */
cm_result cm_store_dsr_systems(struct cm_db *, const char *request,
	    int (*fn)(void *, const char *, const char *, const char *, int64_t),
	    void *arg) CM_WUR;

/* ---- preference-centre links and sessions (src/store/shopper.c) -------- */

/* SUBJECT's link generation into *GEN: 0 until its links are first revoked. */
cm_result cm_store_link_generation(struct cm_db *, const char *subject, int64_t *gen) CM_WUR;
/* Raises SUBJECT's link generation by one; *GEN is the new one. */
cm_result cm_store_link_revoke(struct cm_db *, const char *subject, int64_t now_us,
	    int64_t *gen) CM_WUR;

struct cm_session_row {
	char		 ss_kind[16];
	char		 ss_subject[CM_SUBJECT_ID_LEN + 1];
	int64_t		 ss_created_us;
	int64_t		 ss_expires_us;
};

cm_result cm_store_session_insert(struct cm_db *, const uint8_t hash[32], const char *kind,
	    const char *subject, int64_t now_us, int64_t expires_us) CM_WUR;
/* The session whose id hashes to HASH; CM_NOTFOUND. */
cm_result cm_store_session_find(struct cm_db *, const uint8_t hash[32],
	    struct cm_session_row *) CM_WUR;
/* Ends one session; CM_NOTFOUND when there was none. */
cm_result cm_store_session_delete(struct cm_db *, const uint8_t hash[32]) CM_WUR;
/* Ends every session of SUBJECT; *N (may be NULL) is how many. */
cm_result cm_store_sessions_end_subject(struct cm_db *, const char *subject,
	    int64_t *n) CM_WUR;
/* Deletes the sessions that ended before NOW_US. */
cm_result cm_store_sessions_purge(struct cm_db *, int64_t now_us) CM_WUR;

/* ---- DPO console sessions (src/store/console.c) ------------------------ */

struct cm_console_row {
	char		 cs_token[CM_TOKEN_NAME_MAX + 1];	/* the token's name */
	uint32_t	 cs_scopes;		/* the token's CM_SCOPE_* bits */
	int64_t		 cs_created_us;
	int64_t		 cs_expires_us;
};

cm_result cm_store_console_insert(struct cm_db *, const uint8_t hash[32], int64_t token_id,
	    int64_t now_us, int64_t expires_us) CM_WUR;
/* The session whose id hashes to HASH, while its token is active; CM_NOTFOUND. */
cm_result cm_store_console_find(struct cm_db *, const uint8_t hash[32],
	    struct cm_console_row *) CM_WUR;
/* Ends one session; CM_NOTFOUND when there was none. */
cm_result cm_store_console_delete(struct cm_db *, const uint8_t hash[32]) CM_WUR;
/* Deletes the console sessions that ended before NOW_US. */
cm_result cm_store_console_purge(struct cm_db *, int64_t now_us) CM_WUR;

/* ---- the change feed (src/store/changes.c) ----------------------------- */

/* One row of the feed; ch_body is borrowed for the callback. */
struct cm_change_row {
	int64_t		 ch_seq;			/* position, in commit order */
	char		 ch_kind[16];			/* "consent", "preferences", … */
	int64_t		 ch_at_us;
	char		 ch_subject[CM_SUBJECT_ID_LEN + 1];	/* "": none */
	char		 ch_type[65];			/* identifier type, or "" */
	uint8_t		 ch_blind[32];
	bool		 ch_has_blind;
	const char	*ch_body;			/* non-personal JSON text */
};

/*
 * Appends a change inside the caller's transaction. SUBJECT, TYPE and
 * BLIND (32 bytes) may be NULL; BODY is JSON text without personal data.
 */
cm_result cm_store_change_insert(struct cm_db *, const char *kind, int64_t at_us,
	    const char *subject, const char *type, const uint8_t *blind,
	    const char *body) CM_WUR;
/* Calls FN for up to LIMIT changes with seq > AFTER, in seq order. */
cm_result cm_store_changes_after(struct cm_db *, int64_t after, int limit,
	    int (*fn)(void *, const struct cm_change_row *), void *arg) CM_WUR;
/* The largest seq ever given (0: none yet), deleted rows included. */
cm_result cm_store_changes_last(struct cm_db *, int64_t *seq) CM_WUR;
/* Deletes every change naming SUBJECT (erasure). */
cm_result cm_store_changes_forget(struct cm_db *, const char *subject) CM_WUR;

/* ---- retention (src/store/retention.c) --------------------------------- */

/*
 * Calls FN(ARG, ID) for up to LIMIT closed requests (completed, denied,
 * canceled) closed before BEFORE_US, none of whose outbox rows is still
 * pending, with an id after AFTER ("" from the first), in id order.
 */
cm_result cm_store_retention_requests(struct cm_db *, const char *after, int64_t before_us,
	    int limit, int (*fn)(void *, const char *), void *arg) CM_WUR;
/* Calls FN(ARG, ROW) for each package of request ID (row borrowed). */
cm_result cm_store_packages_of_request(struct cm_db *, const char *id,
	    int (*fn)(void *, const struct cm_package_row *), void *arg) CM_WUR;
/*
 * Deletes request ID and what hangs on it: its timeline, identity code,
 * systems' reports, package rows (the caller removes their files) and
 * outbox rows (none pending: see cm_store_retention_requests).
 */
cm_result cm_store_request_delete(struct cm_db *, const char *id) CM_WUR;
/*
 * Calls FN(ARG, ROW) for up to LIMIT packages that expired before
 * BEFORE_US, with an id after AFTER, in id order (row borrowed); not those
 * of the requests cm_store_retention_requests finds for CLOSED_BEFORE_US,
 * which go with their request.
 */
cm_result cm_store_packages_expired(struct cm_db *, const char *after, int64_t before_us,
	    int64_t closed_before_us, int limit,
	    int (*fn)(void *, const struct cm_package_row *), void *arg) CM_WUR;
/* Deletes package ID's row (and so its key). */
cm_result cm_store_package_delete(struct cm_db *, const char *id) CM_WUR;
/*
 * The delivered outbox rows sent before BEFORE_US, except the latest
 * consent.changed row of each subject and system (what the customer record
 * shows as applied) and the rows of requests closed before
 * CLOSED_BEFORE_US (they go with the request): *N counts them; _delete
 * deletes up to LIMIT of them and sets *N to how many it deleted.
 */
cm_result cm_store_outbox_delivered_count(struct cm_db *, int64_t before_us,
	    int64_t closed_before_us, int64_t *n) CM_WUR;
cm_result cm_store_outbox_delivered_delete(struct cm_db *, int64_t before_us,
	    int64_t closed_before_us, int limit, int64_t *n) CM_WUR;

/* A consent event's sealed evidence, as the evidence minimisation reads it. */
struct cm_evidence_row {
	int64_t		 ev_seq;
	char		 ev_event_id[CM_EVENT_ID_LEN + 1];
	char		 ev_subject[CM_SUBJECT_ID_LEN + 1];
	int64_t		 ev_recorded_us;
	int64_t		 ev_audit_index;
	const uint8_t	*ev_evidence;		/* sealed; borrowed; NULL when none */
	size_t		 ev_evidence_len;
};

/*
 * Calls FN(ARG, ROW) for up to LIMIT consent events after sequence AFTER,
 * in recording order (row borrowed for the call); FN returns non-zero to stop.
 */
cm_result cm_store_evidence_scan(struct cm_db *, int64_t after, int limit,
	    int (*fn)(void *, const struct cm_evidence_row *), void *arg) CM_WUR;
/* Replaces the sealed evidence of event SEQ. */
cm_result cm_store_evidence_put(struct cm_db *, int64_t seq, const void *sealed,
	    size_t len) CM_WUR;
/* Replaces the sealed opening of entry IDX; CM_NOTFOUND when it has none. */
cm_result cm_store_audit_opening_replace(struct cm_db *, uint64_t idx, const void *sealed,
	    size_t len) CM_WUR;
/* Sets (or, with VALUE NULL, deletes) the meta setting KEY. */
cm_result cm_store_meta_set(struct cm_db *, const char *key, const char *value) CM_WUR;

#endif
