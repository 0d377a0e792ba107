/* SPDX-License-Identifier: ISC */
/*
 * Reading the change feed (recorded by changes.c). Its position (seq)
 * grows in commit order because the store has one writer at a time: a
 * sender that polls with the last next_cursor sees every later change
 * once, in order. Reading adds, for a caller with subjects:read, the
 * identifiers a subject holds today; a suppression's identifier is shown
 * only when a subject holds it (its value is kept sealed under that
 * subject's key and nowhere else). An erased subject's rows are gone; what
 * stays is the erasure, naming the subject id so a sender can delete its
 * own copy, and the identifiers' "erased" suppressions, by type only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/changes.h"
#include "consentd/crypto.h"
#include "consentd/subject.h"
#include "consentd/util.h"

/* A cursor is "chg_" and the seq of the last change seen, in 16 hex digits. */
#define CURSOR_PREFIX	"chg_"
#define CURSOR_LEN	(sizeof(CURSOR_PREFIX) - 1 + 16)
/* The subjects of one page whose identifiers were read, so each is read once. */
#define SUBJECT_CACHE	64

static void
cursor_format(char out[CURSOR_LEN + 1], int64_t seq)
{
	snprintf(out, CURSOR_LEN + 1, CURSOR_PREFIX "%016" PRIx64, (uint64_t)seq);
}

static bool
cursor_parse(const char *s, int64_t *seq)
{
	const char *hex = s + sizeof(CURSOR_PREFIX) - 1;
	uint64_t v = 0;
	size_t i;

	if (strlen(s) != CURSOR_LEN || strncmp(s, CURSOR_PREFIX, sizeof(CURSOR_PREFIX) - 1))
		return false;
	for (i = 0; i < 16; i++) {
		char c = hex[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	if (v > INT64_MAX)
		return false;
	*seq = (int64_t)v;
	return true;
}

/* One row read, copied out of the query so that reading it further may query. */
struct feed_row {
	struct cm_change_row	 fr_row;
	char			*fr_body;
};

struct feed_read {
	struct feed_row		*rows;
	size_t			 n;
};

static int
feed_collect(void *arg, const struct cm_change_row *r)
{
	struct feed_read *fr = arg;
	struct feed_row *f = &fr->rows[fr->n++];

	f->fr_row = *r;
	f->fr_body = cm_strdup(r->ch_body);
	f->fr_row.ch_body = f->fr_body;
	return 0;
}

/* What the page knows of one subject: where it lives now, and its identifiers. */
struct subject_seen {
	char	 ss_id[CM_SUBJECT_ID_LEN + 1];
	char	 ss_survivor[CM_SUBJECT_ID_LEN + 1];	/* "" unless merged away */
	json_t	*ss_idents;				/* ["type:value", …] or NULL */
};

struct feed {
	const struct cm_ctx	*cx;
	bool			 identifiers;
	struct subject_seen	 seen[SUBJECT_CACHE];
	size_t			 nseen;
};

/* The identifiers ID holds today as strings, or NULL (erased, merged, none). */
static cm_result
subject_idents(const struct cm_ctx *cx, const char *id, json_t **out)
{
	struct cm_why w;
	json_t *full = NULL;
	size_t i;
	cm_result rc;

	*out = NULL;
	memset(&w, 0, sizeof(w));
	rc = cm_subject_identifiers(cx, id, &full, &w);
	if (rc == CM_NOTFOUND || rc == CM_CONFLICT)
		return CM_OK;
	if (rc != CM_OK)
		return rc;
	*out = json_array();
	for (i = 0; i < json_array_size(full); i++)
		json_array_append(*out, json_object_get(json_array_get(full, i), "identifier"));
	json_decref(full);
	return CM_OK;
}

/* What the page knows of subject ID, read on first sight; NULL on a failure. */
static struct subject_seen *
feed_subject(struct feed *f, const char *id, cm_result *rc)
{
	struct subject_seen *s;
	struct cm_subject_row row;
	struct cm_why w;
	size_t i;

	for (i = 0; i < f->nseen; i++)
		if (strcmp(f->seen[i].ss_id, id) == 0)
			return &f->seen[i];
	if (f->nseen == SUBJECT_CACHE) {
		/* A full page of different subjects: start the cache again. */
		for (i = 0; i < f->nseen; i++)
			json_decref(f->seen[i].ss_idents);
		f->nseen = 0;
	}
	s = &f->seen[f->nseen];
	memset(s, 0, sizeof(*s));
	snprintf(s->ss_id, sizeof(s->ss_id), "%s", id);
	memset(&w, 0, sizeof(w));
	*rc = cm_subject_load(f->cx, id, &row, &w);
	if (*rc == CM_NOTFOUND && w.w_code != NULL && strcmp(w.w_code, "merged") == 0)
		snprintf(s->ss_survivor, sizeof(s->ss_survivor), "%s", w.w_subject);
	else if (*rc != CM_OK && *rc != CM_NOTFOUND)
		return NULL;
	*rc = CM_OK;
	if (f->identifiers && (*rc = subject_idents(f->cx, s->ss_survivor[0] ?
	    s->ss_survivor : id, &s->ss_idents)) != CM_OK)
		return NULL;
	f->nseen++;
	return s;
}

/*
 * The identifier of a suppression (TYPE, BLIND), when a subject holds it
 * today, into O as "identifier" (and "subject_id" when the row had none).
 */
static cm_result
feed_supp_identifier(struct feed *f, const struct cm_change_row *r, json_t *o)
{
	char owner[CM_SUBJECT_ID_LEN + 1];
	struct subject_seen *s;
	uint8_t blind[32];
	size_t i, tlen = strlen(r->ch_type);
	cm_result rc;

	rc = cm_store_identifier_owner(f->cx->cx_db, r->ch_type, r->ch_blind, owner);
	if (rc == CM_NOTFOUND)
		return CM_OK;
	if (rc != CM_OK || (s = feed_subject(f, owner, &rc)) == NULL)
		return rc;
	for (i = 0; i < json_array_size(s->ss_idents); i++) {
		const char *t = json_string_value(json_array_get(s->ss_idents, i));

		if (t == NULL || strncmp(t, r->ch_type, tlen) != 0 || t[tlen] != ':')
			continue;
		cm_blind_index(f->cx->cx_keys, r->ch_type, t + tlen + 1, blind);
		if (memcmp(blind, r->ch_blind, sizeof(blind)) != 0)
			continue;
		json_object_set_new(o, "identifier", json_string(t));
		if (json_object_get(o, "subject_id") == NULL)
			json_object_set_new(o, "subject_id", json_string(owner));
		break;
	}
	return CM_OK;
}

/* One change as the caller may see it into *OUT. */
static cm_result
feed_change(struct feed *f, const struct cm_change_row *r, json_t **out)
{
	char cur[CURSOR_LEN + 1], ts[32];
	struct subject_seen *s;
	json_t *o;
	cm_result rc = CM_OK;

	*out = NULL;
	if ((o = json_loads(r->ch_body, 0, NULL)) == NULL || !json_is_object(o)) {
		json_decref(o);
		cm_log(CM_LOG_ERROR, "change_unreadable", NULL);
		return CM_IOERR;
	}
	cursor_format(cur, r->ch_seq);
	cm_time_format(ts, r->ch_at_us);
	json_object_set_new(o, "cursor", json_string(cur));
	json_object_set_new(o, "kind", json_string(r->ch_kind));
	json_object_set_new(o, "time", json_string(ts));
	if (r->ch_subject[0] != '\0') {
		json_object_set_new(o, "subject_id", json_string(r->ch_subject));
		if ((s = feed_subject(f, r->ch_subject, &rc)) == NULL)
			goto fail;
		if (s->ss_survivor[0] != '\0')
			json_object_set_new(o, "merged_into", json_string(s->ss_survivor));
		if (f->identifiers && s->ss_idents != NULL &&
		    strcmp(r->ch_kind, "suppression") != 0)
			json_object_set(o, "identifiers", s->ss_idents);
	}
	if (f->identifiers && r->ch_has_blind &&
	    (rc = feed_supp_identifier(f, r, o)) != CM_OK)
		goto fail;
	*out = o;
	return CM_OK;
fail:
	json_decref(o);
	return rc;
}

/* Reads up to LIMIT + 1 rows after SEQ into FR (rows allocated; free them). */
static cm_result
feed_read(const struct cm_ctx *cx, int64_t seq, int limit, struct feed_read *fr)
{
	fr->rows = cm_calloc((size_t)limit + 1, sizeof(*fr->rows));
	fr->n = 0;
	return cm_store_changes_after(cx->cx_db, seq, limit + 1, feed_collect, fr);
}

cm_result
cm_changes_list(const struct cm_ctx *cx, const char *after, int limit, bool identifiers,
    json_t **out, struct cm_why *w)
{
	struct feed_read fr = { NULL, 0 };
	struct feed *f;
	char cur[CURSOR_LEN + 1];
	int64_t seq = 0, last;
	json_t *list = json_array(), *o;
	bool more;
	size_t i;
	cm_result rc;

	*out = NULL;
	f = cm_calloc(1, sizeof(*f));
	f->cx = cx;
	f->identifiers = identifiers;
	if ((rc = cm_db_read_begin(cx->cx_db)) != CM_OK)
		goto out;
	if ((rc = cm_store_changes_last(cx->cx_db, &last)) == CM_OK && after != NULL &&
	    (!cursor_parse(after, &seq) || seq > last)) {
		cm_why_set(w, "invalid_parameter", "not a cursor this service gave");
		if (w != NULL)
			snprintf(w->w_field, sizeof(w->w_field), "after");
		rc = CM_INVALID;
	}
	if (rc == CM_OK)
		rc = feed_read(cx, seq, limit, &fr);
	more = fr.n > (size_t)limit;
	for (i = 0; rc == CM_OK && i < fr.n && i < (size_t)limit; i++) {
		if ((rc = feed_change(f, &fr.rows[i].fr_row, &o)) == CM_OK) {
			json_array_append_new(list, o);
			seq = fr.rows[i].fr_row.ch_seq;
		}
	}
	cm_db_read_end(cx->cx_db);
	if (rc != CM_OK)
		goto out;
	cursor_format(cur, seq);
	*out = json_pack("{s:O, s:s, s:b}", "changes", list, "next_cursor", cur,
	    "has_more", more);
	rc = *out != NULL ? CM_OK : CM_IOERR;
out:
	for (i = 0; i < fr.n; i++)
		free(fr.rows[i].fr_body);
	free(fr.rows);
	for (i = 0; i < f->nseen; i++)
		json_decref(f->seen[i].ss_idents);
	free(f);
	json_decref(list);
	return rc;
}
