/* SPDX-License-Identifier: ISC */
/*
 * Delivery of the outbox: each pending row due now is claimed in a write
 * transaction (so that of several processes or nodes on one store one
 * makes the attempt), read and opened in a short read, handed to its
 * sender outside any transaction, and the outcome recorded in a write
 * transaction of its own (with, for a request's row, its timeline step).
 * A crash between sending and recording sends it again once the claim
 * lapses: delivery is at least once, and webhooks carry their row id
 * (X-Consentd-Delivery) for receivers to drop repeats.
 * Failed attempts are retried with exponential backoff and jitter, and a
 * row is dead after the last attempt.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/outbox.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "consentd/worker.h"
#include "senders.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static int
env_int(const char *name, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		return 0;
	if (cm_parse_i64(v, min, max, out) != 0) {
		snprintf(err, errlen, "%s: expected a number from %lld to %lld", name,
		    (long long)min, (long long)max);
		return -1;
	}
	return 0;
}

int
cm_outbox_opts_env(struct cm_outbox_opts *o, const char *data, char *err, size_t errlen)
{
	const char *v;
	int64_t base = 30000, max = 8, timeout = 10000;

	memset(o, 0, sizeof(*o));
	v = getenv("CONSENTD_OUTBOX_SENDER");
	snprintf(o->oo_sender, sizeof(o->oo_sender), "%s", v && *v ? v : "file");
	if (strcmp(o->oo_sender, "file") != 0 && strcmp(o->oo_sender, "smtp") != 0) {
		snprintf(err, errlen, "CONSENTD_OUTBOX_SENDER: expected file or smtp");
		return -1;
	}
	v = getenv("CONSENTD_OUTBOX_DIR");
	if ((size_t)snprintf(o->oo_dir, sizeof(o->oo_dir), v && *v ? "%s" : "%s/outbox",
	    v && *v ? v : data) >= sizeof(o->oo_dir)) {
		snprintf(err, errlen, "CONSENTD_OUTBOX_DIR: too long");
		return -1;
	}
	if (env_int("CONSENTD_OUTBOX_BASE_MS", 10, 86400000, &base, err, errlen) != 0 ||
	    env_int("CONSENTD_OUTBOX_MAX_ATTEMPTS", 1, 100, &max, err, errlen) != 0 ||
	    env_int("CONSENTD_OUTBOX_TIMEOUT_MS", 100, 600000, &timeout, err, errlen) != 0)
		return -1;
	o->oo_base_ms = base;
	o->oo_max_attempts = (int)max;
	o->oo_timeout_ms = (long)timeout;
	return 0;
}

/* What one attempt needs, read in one snapshot. */
struct attempt {
	struct cm_outbox_row	 row;
	json_t			*body;
	struct cm_system_row	 sys;
	uint8_t			*secret;
	size_t			 secret_len;
	bool			 gone;		/* nothing to send: dead at once */
};

static cm_result
attempt_load(struct cm_ctx *cx, const char *id, struct attempt *a)
{
	cm_result rc;

	if ((rc = cm_db_read_begin(cx->cx_db)) != CM_OK)
		return rc;
	if ((rc = cm_store_outbox_get(cx->cx_db, id, &a->row)) != CM_OK)
		goto out;
	if (strcmp(a->row.o_status, "pending") != 0) {
		rc = CM_NOTFOUND;
		goto out;
	}
	if ((rc = cm_outbox_open(cx, &a->row, &a->body)) == CM_NOTFOUND ||
	    rc == CM_INVALID) {
		a->gone = true;
		rc = CM_OK;
		goto out;
	}
	if (rc == CM_OK && strcmp(a->row.o_kind, "webhook") == 0) {
		rc = cm_system_secret(cx, a->row.o_system, &a->sys, a->secret, &a->secret_len);
		if (rc == CM_NOTFOUND) {
			a->gone = true;
			rc = CM_OK;
		}
	}
out:
	cm_db_read_end(cx->cx_db);
	return rc;
}

static int
send_message(const struct cm_policy *pol, const struct cm_outbox_opts *o,
    struct attempt *a, int64_t now, char *err, size_t errlen)
{
	struct sender_msg m;
	json_t *ctl = pol ? json_object_get(pol->pol_doc, "controller") : NULL;
	const char *from = json_string_value(json_object_get(ctl, "email"));
	const char *name = json_string_value(json_object_get(ctl, "name"));

	memset(&m, 0, sizeof(m));
	m.sm_id = a->row.o_id;
	m.sm_from = from ? from : "consentd@localhost";
	m.sm_from_name = name ? name : "consentd";
	m.sm_to = json_string_value(json_object_get(a->body, "to"));
	m.sm_subject = json_string_value(json_object_get(a->body, "subject"));
	m.sm_text = json_string_value(json_object_get(a->body, "text"));
	m.sm_phone = strcmp(a->row.o_channel, "phone") == 0;
	if (m.sm_to == NULL || m.sm_subject == NULL || m.sm_text == NULL) {
		snprintf(err, errlen, "message body incomplete");
		return -1;
	}
	if (strcmp(o->oo_sender, "smtp") == 0)
		return sender_smtp(&m, o->oo_timeout_ms, now, err, errlen);
	return sender_file(o->oo_dir, &m, now, err, errlen);
}

static int
send_webhook(const struct cm_outbox_opts *o, struct attempt *a, int64_t now, char *err,
    size_t errlen)
{
	char sig[CM_SIGNATURE_MAX], *enc;
	size_t len;
	int rc;

	if ((enc = json_dumps(a->body, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "cannot encode the body");
		return -1;
	}
	len = strlen(enc);
	cm_signature_make(sig, a->secret, a->secret_len, now / 1000000, enc, len);
	rc = sender_webhook(a->sys.s_url, a->row.o_name, a->row.o_id, sig, enc, len,
	    o->oo_timeout_ms, err, errlen);
	cm_wipe(enc, len);
	free(enc);
	return rc;
}

/* Records the outcome of A in its own transaction. */
static cm_result
attempt_record(struct cm_ctx *cx, const struct cm_outbox_opts *o, struct attempt *a,
    bool ok, const char *err)
{
	bool dead = false;
	cm_result rc;

	if ((rc = cm_db_begin(cx->cx_db)) != CM_OK)
		return rc;
	cx->cx_now = cm_time_now_us();
	rc = cm_outbox_result(cx, &a->row, ok, err, o->oo_base_ms,
	    a->gone ? 1 : o->oo_max_attempts, &dead);
	if (rc == CM_OK && a->row.o_request[0] != '\0' && (ok || dead))
		rc = cm_dsr_delivered(cx, a->row.o_request, a->row.o_name,
		    a->row.o_system[0] ? a->row.o_system : NULL, ok, a->row.o_attempts + 1);
	if (rc != CM_OK) {
		cm_db_rollback(cx->cx_db);
		return rc;
	}
	return cm_db_commit(cx->cx_db);
}

/*
 * Claims row ID for this attempt, in a write transaction of its own: every
 * process and node delivering from one store takes its writer lock, so an
 * attempt is made by one of them. The claim lasts twice the attempt's
 * timeout and a minute more; a sender that dies holding it leaves the row
 * to be attempted again after it.
 */
static cm_result
attempt_claim(struct cm_ctx *cx, const struct cm_outbox_opts *o, const char *id)
{
	int64_t now = cm_time_now_us();
	cm_result rc;

	if ((rc = cm_db_begin(cx->cx_db)) != CM_OK)
		return rc;
	if ((rc = cm_store_outbox_claim(cx->cx_db, id, now, now +
	    ((int64_t)o->oo_timeout_ms * 2 + 60000) * 1000)) != CM_OK) {
		cm_db_rollback(cx->cx_db);
		return rc;
	}
	return cm_db_commit(cx->cx_db);
}

/* One attempt at row ID. */
static cm_result
attempt_one(struct cm_ctx *cx, const struct cm_policy *pol, const struct cm_outbox_opts *o,
    const char *id, bool *ok)
{
	struct attempt a;
	char err[CM_OUTBOX_ERROR_MAX + 1] = "", esc[2 * sizeof(err)];
	cm_result rc;

	*ok = false;
	memset(&a, 0, sizeof(a));
	a.secret = cm_secure_alloc(CM_SYSTEM_SECRET_MAX);
	if ((rc = attempt_claim(cx, o, id)) != CM_OK ||
	    (rc = attempt_load(cx, id, &a)) != CM_OK)
		goto out;
	if (a.gone)
		snprintf(err, sizeof(err), "%s", strcmp(a.row.o_kind, "webhook") == 0 &&
		    a.body != NULL ? "the system was removed" : "its content is gone");
	else if (strcmp(a.row.o_kind, "webhook") == 0)
		*ok = send_webhook(o, &a, cm_time_now_us(), err, sizeof(err)) == 0;
	else
		*ok = send_message(pol, o, &a, cm_time_now_us(), err, sizeof(err)) == 0;
	cm_outbox_body_free(a.body);
	a.body = NULL;
	rc = attempt_record(cx, o, &a, *ok, *ok ? NULL : err);
	cm_log(*ok ? CM_LOG_INFO : CM_LOG_WARN, *ok ? "outbox_delivered" : "outbox_failed",
	    ",\"id\":\"%s\",\"kind\":\"%s\",\"name\":\"%s\",\"attempt\":%lld%s%s%s",
	    a.row.o_id, a.row.o_kind, a.row.o_name, (long long)a.row.o_attempts + 1,
	    *ok ? "" : ",\"error\":\"", *ok ? "" : cm_json_escape(esc, sizeof(esc), err),
	    *ok ? "" : "\"");
out:
	cm_outbox_body_free(a.body);
	cm_outbox_row_clear(&a.row);
	cm_wipe(&a.sys, sizeof(a.sys));
	cm_secure_free(a.secret);
	return rc;
}

struct due_walk {
	char	(*ids)[CM_OUTBOX_ID_LEN + 1];
	size_t	 n;
};

static int
due_row(void *arg, const char *id)
{
	struct due_walk *dw = arg;

	snprintf(dw->ids[dw->n++], CM_OUTBOX_ID_LEN + 1, "%s", id);
	return 0;
}

#define PASS_MAX	64

cm_result
cm_outbox_run(struct cm_store *store, const struct cm_keys *keys, const struct cm_policy *pol,
    const struct cm_outbox_opts *o, size_t *sent, size_t *failed)
{
	char ids[PASS_MAX][CM_OUTBOX_ID_LEN + 1];
	struct due_walk dw = { ids, 0 };
	struct cm_ctx cx;
	struct cm_db *db;
	size_t i, nsent = 0, nfailed = 0;
	bool ok;
	cm_result rc;

	pthread_once(&init_once, sender_init);
	if ((db = cm_store_db(store)) == NULL)
		return CM_IOERR;
	cm_ctx_init(&cx, db, keys, pol, "outbox");
	if ((rc = cm_store_outbox_due(db, cx.cx_now, PASS_MAX, due_row, &dw)) != CM_OK)
		return rc;
	for (i = 0; i < dw.n; i++) {
		rc = attempt_one(&cx, pol, o, ids[i], &ok);
		if (rc == CM_NOTFOUND)
			continue;	/* delivered or erased meanwhile */
		if (rc != CM_OK)
			break;
		if (ok)
			nsent++;
		else
			nfailed++;
	}
	if (rc == CM_NOTFOUND)
		rc = CM_OK;
	if (sent != NULL)
		*sent = nsent;
	if (failed != NULL)
		*failed = nfailed;
	return rc;
}

/* ---- the delivery thread -------------------------------------------------- */

struct cm_outbox_worker {
	struct cm_worker	*ow_worker;
	struct cm_store		*ow_store;
	const struct cm_keys	*ow_keys;
	const struct cm_policy	*ow_policy;
	struct cm_outbox_opts	 ow_opts;
};

static void
worker_pass(void *arg, bool last)
{
	struct cm_outbox_worker *w = arg;
	cm_result rc;

	if (last)
		return;
	if ((rc = cm_outbox_run(w->ow_store, w->ow_keys, w->ow_policy, &w->ow_opts, NULL,
	    NULL)) != CM_OK)
		cm_log(CM_LOG_ERROR, "outbox_pass_failed", ",\"result\":\"%s\"",
		    cm_result_str(rc));
}

struct cm_outbox_worker *
cm_outbox_start(struct cm_store *store, const struct cm_keys *keys,
    const struct cm_policy *pol, const struct cm_outbox_opts *o)
{
	struct cm_outbox_worker *w = cm_malloc(sizeof(*w));
	int64_t poll;

	pthread_once(&init_once, sender_init);
	memset(w, 0, sizeof(*w));
	w->ow_store = store;
	w->ow_keys = keys;
	w->ow_policy = pol;
	w->ow_opts = *o;
	/* Often enough that the first retry is not late by much. */
	poll = o->oo_base_ms / 4;
	if (poll < 50)
		poll = 50;
	if (poll > 1000)
		poll = 1000;
	if ((w->ow_worker = cm_worker_start(worker_pass, w, (unsigned)poll)) == NULL) {
		free(w);
		return NULL;
	}
	return w;
}

void
cm_outbox_stop(struct cm_outbox_worker *w)
{
	if (w == NULL)
		return;
	cm_worker_stop(w->ow_worker);
	free(w);
}
