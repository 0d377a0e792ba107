/* SPDX-License-Identifier: ISC */
/*
 * The erasure ledger: DIR/erasures.ledger, beside the database and never
 * inside it, so that a restore of an older copy of the database can learn
 * which people were erased after that copy was made and erase them again.
 * One line per erased subject, holding no personal data:
 *
 *	e1 SUBJECT_ID ERASED_AT_US MAC
 *
 * MAC is the hex HMAC-SHA256, under a key derived from the master key, of
 * the previous line's MAC (32 zero bytes for the first line) followed by
 * "SUBJECT_ID ERASED_AT_US": a line cannot be forged, edited, reordered or
 * removed from the middle without the master key, and reading the ledger
 * finds any such change.
 *
 * When a line is written. A line for an erasure that did not commit would
 * erase, on the next restore, a person who is still a customer; so the
 * line is written only after COMMIT succeeded, and synced, before the
 * writer lets the next transaction of this process begin. Every erasure
 * goes through cm_store_subject_erase(), which notes the subject on its
 * connection; cm_db_commit() writes the notes (a rollback drops them). A
 * crash between the commit and the line leaves an erased subject the
 * ledger lacks: cm_store_erasures_sync() adds every erased subject of the
 * database missing from the ledger, and runs at the server's start, before
 * every backup and before every restore. A torn last line (a crash during
 * the write) is cut off by the next append and recovered by that sync.
 * Lines may repeat a subject: applying an erasure twice changes nothing.
 * The file's reading, tail and appends are chain.c's, shared with the
 * opt-out ledger.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/crypto.h"
#include "consentd/util.h"
#include "store_int.h"

struct store_erased {
	char	 se_id[CM_SUBJECT_ID_LEN + 1];
	int64_t	 se_at;
};

void
store_ledger_key(const struct cm_keys *keys, uint8_t out[32])
{
	static const char *const parts[] = { "consentd erasure ledger v1" };

	cm_keyed_hash(out, 32, keys->k_tag, parts, 1);
}

static const struct store_chain erasure_chain = { CM_ERASURE_LEDGER, "e1" };

/*
 * Parses a line's TEXT, "SUBJECT_ID ERASED_AT_US", into ID and *AT: 0, or
 * -1 when it is not one.
 */
static int
erasure_parse(const char *text, char id[CM_SUBJECT_ID_LEN + 1], int64_t *at)
{
	size_t i;

	if (strlen(text) < CM_SUBJECT_ID_LEN + 2 || memcmp(text, "sub_", 4) != 0 ||
	    text[CM_SUBJECT_ID_LEN] != ' ')
		return -1;
	memcpy(id, text, CM_SUBJECT_ID_LEN);
	id[CM_SUBJECT_ID_LEN] = '\0';
	for (i = 0; i < CM_SUBJECT_ID_LEN; i++)
		if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
			return -1;
	return cm_parse_i64(text + CM_SUBJECT_ID_LEN + 1, 0, INT64_MAX, at);
}

struct erasure_read {
	int	(*fn)(void *, const char *, int64_t);
	void	*arg;
};

static int
erasure_line(void *arg, const char *text)
{
	struct erasure_read *r = arg;
	char id[CM_SUBJECT_ID_LEN + 1];
	int64_t at;

	if (erasure_parse(text, id, &at) != 0)
		return -1;
	return r->fn != NULL && r->fn(r->arg, id, at) != 0 ? 1 : 0;
}

/* cm_store_erasures_read() with the ledger key KEY. */
static cm_result
ledger_read(const char *dir, const uint8_t key[32],
    int (*fn)(void *, const char *, int64_t), void *arg, char *err, size_t errlen)
{
	struct erasure_read r = { fn, arg };

	return store_chain_read(dir, &erasure_chain, key, erasure_line, &r, err, errlen);
}

cm_result
cm_store_erasures_read(const char *dir, const struct cm_keys *keys,
    int (*fn)(void *, const char *, int64_t), void *arg, char *err, size_t errlen)
{
	uint8_t *key = cm_secure_alloc(32);
	cm_result rc;

	store_ledger_key(keys, key);
	rc = ledger_read(dir, key, fn, arg, err, errlen);
	cm_secure_free(key);
	return rc;
}

/* Appends the N erasures of E to DIR's ledger, synced. */
static cm_result
ledger_append(const char *dir, const uint8_t key[32], const struct store_erased *e,
    size_t n)
{
	char **texts;
	size_t i;
	cm_result rc;

	if (n == 0)
		return CM_OK;
	texts = cm_reallocarray(NULL, n, sizeof(*texts));
	for (i = 0; i < n; i++) {
		texts[i] = cm_malloc(CM_SUBJECT_ID_LEN + 24);
		snprintf(texts[i], CM_SUBJECT_ID_LEN + 24, "%s %" PRId64, e[i].se_id, e[i].se_at);
	}
	rc = store_chain_append(dir, &erasure_chain, key, texts, n);
	for (i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
	return rc;
}

void
store_erasures_note(struct cm_db *d, const char *subject, int64_t at)
{
	struct store_erased *e;

	if (d->db_nerased == d->db_caperased) {
		d->db_caperased = d->db_caperased ? d->db_caperased * 2 : 4;
		d->db_erased = cm_reallocarray(d->db_erased, d->db_caperased,
		    sizeof(*d->db_erased));
	}
	e = &d->db_erased[d->db_nerased++];
	snprintf(e->se_id, sizeof(e->se_id), "%s", subject);
	e->se_at = at;
	/* Outside a transaction the statement has already committed. */
	if (!store_in_tx(d))
		store_erasures_committed(d);
}

void
store_erasures_committed(struct cm_db *d)
{
	char dir[4096];
	cm_result rc = CM_IOERR;

	if (d->db_nerased == 0)
		return;
	if (cm_store_dir(d, dir, sizeof(dir)) == 0)
		rc = ledger_append(dir, store_ledger_key_of(d->db_store), d->db_erased,
		    d->db_nerased);
	if (rc != CM_OK)
		cm_log(CM_LOG_ERROR, "erasure_ledger_error", ",\"func\":\"%s\",\"count\":%zu,"
		    "\"msg\":\"the erasure committed; the ledger line is added at the "
		    "next start or backup\"", __func__, d->db_nerased);
	d->db_nerased = 0;
}

void
store_erasures_discard(struct cm_db *d, size_t keep)
{
	if (keep < d->db_nerased)
		d->db_nerased = keep;
}

void
store_erasures_free(struct cm_db *d)
{
	free(d->db_erased);
	d->db_erased = NULL;
	d->db_nerased = d->db_caperased = 0;
}

struct id_set {
	char	(*ids)[CM_SUBJECT_ID_LEN + 1];
	size_t	 n, cap;
};

static int
id_set_add(void *arg, const char *id, int64_t at)
{
	struct id_set *s = arg;

	(void)at;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->ids = cm_reallocarray(s->ids, s->cap, sizeof(*s->ids));
	}
	memcpy(s->ids[s->n++], id, CM_SUBJECT_ID_LEN + 1);
	return 0;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

cm_result
cm_store_erasures_sync(struct cm_db *d, size_t *added, char *err, size_t errlen)
{
	static const char sql[] = "SELECT id, updated_at FROM subjects "
	    "WHERE state = 'erased' ORDER BY updated_at, id";
	struct id_set have = { NULL, 0, 0 };
	struct store_erased *miss = NULL;
	struct store_query q;
	size_t nmiss = 0, cap = 0;
	char dir[4096], id[CM_SUBJECT_ID_LEN + 1];
	cm_result rc;

	*added = 0;
	if (cm_store_dir(d, dir, sizeof(dir)) != 0) {
		snprintf(err, errlen, "the data directory's path is too long");
		return CM_INVALID;
	}
	if ((rc = ledger_read(dir, store_ledger_key_of(d->db_store), id_set_add, &have, err,
	    errlen)) != CM_OK)
		goto out;
	if (have.n > 0)
		qsort(have.ids, have.n, sizeof(*have.ids), id_cmp);
	store_query(&q, d, sql, "");
	while (store_next(&q)) {
		store_column_text(id, sizeof(id), &q, 0);
		if (have.n > 0 && bsearch(id, have.ids, have.n, sizeof(*have.ids), id_cmp) != NULL)
			continue;
		if (nmiss == cap) {
			cap = cap ? cap * 2 : 16;
			miss = cm_reallocarray(miss, cap, sizeof(*miss));
		}
		memcpy(miss[nmiss].se_id, id, sizeof(id));
		miss[nmiss++].se_at = store_col_int64(&q, 1);
	}
	if ((rc = store_done(&q)) != CM_OK) {
		snprintf(err, errlen, "cannot read the erased subjects: %s", cm_result_str(rc));
		goto out;
	}
	if ((rc = ledger_append(dir, store_ledger_key_of(d->db_store), miss, nmiss)) != CM_OK) {
		snprintf(err, errlen, "cannot append to %s/%s", dir, CM_ERASURE_LEDGER);
		goto out;
	}
	*added = nmiss;
out:
	free(have.ids);
	free(miss);
	return rc;
}
