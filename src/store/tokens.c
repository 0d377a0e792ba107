/* SPDX-License-Identifier: ISC */
/*
 * The API token table. Only a token's public selector and the keyed hash
 * of the whole token are stored; the token itself is shown once by
 * 'consentd token create' and never kept. Writes run inside the caller's
 * transaction, which also carries the change's audit entry.
 */
#include <string.h>

#include "consentd/util.h"
#include "store_int.h"

/* Revokes the active token of a name: ?1 the time, ?2 the name. */
static const char token_revoke_sql[] = "UPDATE tokens SET revoked_at = ? "
    "WHERE name = ? AND revoked_at IS NULL";

static void
token_row_read(const struct store_query *s, struct cm_token_row *row)
{
	memset(row, 0, sizeof(*row));
	row->t_id = store_col_int64(s, 0);
	store_column_text(row->t_name, sizeof(row->t_name), s, 1);
	store_column_blob(row->t_hash, sizeof(row->t_hash), s, 2);
	row->t_scopes = (uint32_t)store_col_int64(s, 3);
	row->t_created_us = store_col_int64(s, 4);
	row->t_revoked_us = store_col_int64(s, 5);
}

cm_result
cm_store_token_create(struct cm_db *d, const char *name, const char *selector,
    const uint8_t hash[32], uint32_t scopes, bool replace, int64_t now_us)
{
	static const char sql_insert[] = "INSERT INTO tokens (name, selector, "
	    "hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)";
	cm_result rc;

	if (replace && (rc = store_exec(d, token_revoke_sql, "it", now_us, name)) != CM_OK)
		return rc;
	return store_exec(d, sql_insert, "ttbii", name, selector, hash, (int64_t)scopes,
	    now_us);
}

static cm_result
token_generation(struct cm_db *d, int64_t *gen)
{
	static const char sql[] = "SELECT gen FROM token_generation WHERE id = 1";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "")) == CM_OK)
		*gen = store_col_int64(&q, 0);
	store_done(&q);
	return rc;
}

static cm_result
token_row_find(struct cm_db *d, const char *selector, struct cm_token_row *row)
{
	static const char sql[] = "SELECT id, name, hash, scopes, created_at, "
	    "coalesce(revoked_at, 0) FROM tokens WHERE selector = ?";
	struct store_query q;
	cm_result rc;

	if ((rc = store_row(&q, d, sql, "t", selector)) == CM_OK)
		token_row_read(&q, row);
	store_done(&q);
	return rc;
}

/*
 * Every request names its token: the row is kept per connection and given
 * again while the token table's generation, which every change of that
 * table moves (migration 14), is the one read before the row was. The row
 * was read after that generation, so it is at least as new as it; an
 * unchanged generation means nothing changed since, and the row is the
 * table's. Not inside a write transaction (or one this file cannot tell
 * is not): a rollback would take the generation back to a number a later
 * change can give again.
 */
static cm_result
token_find(struct cm_db *d, const char *selector, struct cm_token_row *row)
{
	struct token_cached *tc;
	int64_t gen;
	size_t i;
	cm_result rc;

	if (d->db_writing || (store_in_tx(d) && !d->db_reading) ||
	    strlen(selector) != CM_TOKEN_SELECTOR_LEN)
		return token_row_find(d, selector, row);
	if ((rc = token_generation(d, &gen)) != CM_OK)
		return rc;
	for (i = 0; i < TOKEN_CACHE_SLOTS; i++) {
		tc = &d->db_tokens[i];
		if (tc->tc_gen == gen && strcmp(tc->tc_selector, selector) == 0) {
			*row = tc->tc_row;
			return CM_OK;
		}
	}
	if ((rc = token_row_find(d, selector, row)) != CM_OK)
		return rc;
	tc = &d->db_tokens[d->db_tokens_next++ % TOKEN_CACHE_SLOTS];
	memcpy(tc->tc_selector, selector, sizeof(tc->tc_selector));
	tc->tc_gen = gen;
	tc->tc_row = *row;
	return CM_OK;
}

cm_result
cm_store_token_find(struct cm_db *d, const char *selector, struct cm_token_row *row)
{
	bool outside = !d->db_writing && !d->db_reading && !store_in_tx(d);
	cm_result rc = token_find(d, selector, row);

	/*
	 * Read outside any transaction (a write's credentials, before its
	 * transaction): a PostgreSQL session found lost only now, after a
	 * failover, gets once more on a new one, as a transaction's BEGIN
	 * does, instead of failing the request.
	 */
	if (rc != CM_OK && rc != CM_NOTFOUND && outside && d->db_pg != NULL &&
	    !store_pg_alive(d) && store_pg_revive(d) == CM_OK)
		rc = token_find(d, selector, row);
	return rc;
}

void
store_tokens_forget(struct cm_db *d)
{
	cm_wipe(d->db_tokens, sizeof(d->db_tokens));
	d->db_tokens_next = 0;
}

cm_result
cm_store_token_revoke(struct cm_db *d, const char *name, int64_t now_us)
{
	int64_t n;
	cm_result rc;

	if ((rc = store_exec_changes(d, &n, token_revoke_sql, "it", now_us, name)) != CM_OK)
		return rc;
	return n == 0 ? CM_NOTFOUND : CM_OK;
}

cm_result
cm_store_token_list(struct cm_db *d, int (*fn)(void *, const struct cm_token_row *),
    void *arg)
{
	static const char sql[] = "SELECT id, name, hash, scopes, created_at, "
	    "coalesce(revoked_at, 0) FROM tokens ORDER BY id DESC";
	struct cm_token_row row;
	struct store_query q;

	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		token_row_read(&q, &row);
		if (fn(arg, &row) != 0)
			break;
	}
	return store_done(&q);
}
