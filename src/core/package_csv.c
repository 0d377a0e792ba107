/* SPDX-License-Identifier: ISC */
/*
 * The CSV a portability request also offers (Art. 20: "a structured,
 * commonly used and machine-readable format"): RFC 4180, UTF-8, CRLF line
 * ends, one header line, then one row per identifier, per profile
 * attribute and per consent event, written as the rows are read. Columns
 * (docs/export-format.md):
 *
 *   record, event_id, purpose, channel, state, method, notice_version,
 *   collected_at, recorded_at, superseded, name, value
 *
 * record is "identifier" (name "identifier", value TYPE:VALUE),
 * "profile" (name the attribute, value its value) or "consent" (the
 * event's columns; name "evidence", value its compact JSON or empty).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/crypto.h"
#include "consentd/subject.h"
#include "consentd/util.h"
#include "ledger.h"
#include "package_int.h"

#define CSV_COLUMNS	12

static const char csv_header[] = "record,event_id,purpose,channel,state,method,"
    "notice_version,collected_at,recorded_at,superseded,name,value\r\n";

struct csv {
	cm_export_sink	 sink;
	void		*arg;
	struct cm_buf	 line;
	bool		 failed;
};

/* Appends field S, quoted when it holds a comma, a quote, CR or LF. */
static void
csv_field(struct cm_buf *b, const char *s, bool first)
{
	const char *p;

	if (!first)
		cm_buf_append(b, ",", 1);
	if (s == NULL)
		return;
	if (strpbrk(s, ",\"\r\n") == NULL) {
		cm_buf_append(b, s, strlen(s));
		return;
	}
	cm_buf_append(b, "\"", 1);
	for (p = s; *p != '\0'; p++) {
		if (*p == '"')
			cm_buf_append(b, "\"", 1);
		cm_buf_append(b, p, 1);
	}
	cm_buf_append(b, "\"", 1);
}

/* Writes one row of CSV_COLUMNS fields (NULL: empty). */
static void
csv_row(struct csv *c, const char *const f[CSV_COLUMNS])
{
	size_t i;

	cm_buf_reset(&c->line);
	for (i = 0; i < CSV_COLUMNS; i++)
		csv_field(&c->line, f[i], i == 0);
	cm_buf_append(&c->line, "\r\n", 2);
	if (!c->failed && c->sink(c->arg, c->line.b_data, c->line.b_len) != 0)
		c->failed = true;
	cm_wipe(c->line.b_data, c->line.b_len);
}

struct csv_events {
	struct csv	*c;
	const uint8_t	*key;
	struct cm_db	*db;
	size_t		 n;
};

static int
csv_event(void *arg, const struct cm_event_row *e)
{
	struct csv_events *ce = arg;
	char rec[32], col[32], ver[24], *ev = NULL;
	const char *f[CSV_COLUMNS] = { "consent" };

	if (e->e_evidence != NULL && (ev = ledger_evidence_open(ce->key, e->e_subject,
	    e->e_event_id, e->e_evidence, e->e_evidence_len)) == NULL) {
		ce->c->failed = true;
		return 1;
	}
	cm_time_format(col, e->e_collected_us);
	cm_time_format(rec, e->e_recorded_us);
	snprintf(ver, sizeof(ver), "%lld", (long long)e->e_notice_version);
	f[1] = e->e_event_id;
	f[2] = e->e_purpose;
	f[3] = strcmp(e->e_channel, CM_ALL_CHANNELS) ? e->e_channel : "";
	f[4] = e->e_state;
	f[5] = e->e_method;
	f[6] = ver;
	f[7] = col;
	f[8] = rec;
	f[9] = e->e_superseded ? "true" : "false";
	f[10] = "evidence";
	f[11] = ev;
	csv_row(ce->c, f);
	if (ev != NULL) {
		cm_wipe(ev, strlen(ev));
		free(ev);
	}
	if (++ce->n % 1024 == 0)
		cm_db_release_memory(ce->db);
	return ce->c->failed ? 1 : 0;
}

/* The identifier and profile rows, from the subject's record. */
static cm_result
csv_record(const struct cm_ctx *cx, const char *subject, struct csv *c)
{
	const char *f[CSV_COLUMNS] = { NULL }, *k;
	json_t *view, *v;
	char *enc;
	size_t i;
	cm_result rc;

	if ((rc = cm_subject_view(cx, subject, &view, NULL)) != CM_OK)
		return rc;
	f[0] = "identifier";
	f[10] = "identifier";
	json_array_foreach(json_object_get(view, "identifiers"), i, v) {
		f[11] = json_string_value(json_object_get(v, "identifier"));
		csv_row(c, f);
	}
	f[0] = "profile";
	json_object_foreach(json_object_get(view, "profile"), k, v) {
		enc = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		f[10] = k;
		f[11] = enc != NULL ? enc : json_string_value(v);
		csv_row(c, f);
		free(enc);
	}
	json_decref(view);
	return CM_OK;
}

cm_result
package_csv(const struct cm_ctx *cx, const char *subject, const uint8_t *key,
    cm_export_sink sink, void *arg)
{
	struct csv c = { sink, arg, { 0 }, false };
	struct csv_events ce = { &c, key, cx->cx_db, 0 };
	cm_result rc;

	if (sink(arg, csv_header, strlen(csv_header)) != 0)
		return CM_IOERR;
	if ((rc = csv_record(cx, subject, &c)) == CM_OK)
		rc = cm_store_events_list(cx->cx_db, subject, csv_event, &ce);
	if (rc == CM_OK && c.failed)
		rc = CM_IOERR;
	cm_buf_free(&c.line);
	return rc;
}
