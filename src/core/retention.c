/* SPDX-License-Identifier: ISC */
/*
 * The retention sweep (policy "retention"; docs/operations.md,
 * "Retention"). Four kinds of record go when their period ends:
 *  - closed requests (completed, denied, canceled) closed_requests_days
 *    after they closed, with their timeline, identity code, systems'
 *    reports, packages and outbox rows; a request with a message still to
 *    deliver waits for it;
 *  - packages at their expiry (they are refused from then on, so nothing
 *    is gained by keeping them longer);
 *  - delivered outbox rows outbox_delivered_days after delivery (their
 *    bodies went at delivery), but the latest consent.changed row of each
 *    subject and system, which the customer record shows as applied;
 *  - the IP address and user agent of consent evidence
 *    evidence_ip_truncate_days after it was recorded (retention_evidence.c).
 * Consent events and the audit log stay for the life of the store.
 *
 * Each batch is one transaction of at most ro_batch rows, so requests are
 * never held up for long; its counts are added to a tally kept in the
 * store (meta "retention_unaudited") in the same transaction. The last
 * transaction turns the tally into one retention.swept entry with counts
 * only, and only when there is something to count: an hourly sweep that
 * finds nothing would otherwise fill the log with empty entries. A run cut
 * short (crash, shutdown) leaves its tally for the next run's entry, so no
 * deletion goes unaccounted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "consentd/dsr.h"
#include "consentd/policy.h"
#include "consentd/retention.h"
#include "consentd/store.h"
#include "consentd/util.h"
#include "consentd/worker.h"
#include "package_int.h"
#include "retention_int.h"

#define META_TALLY	"retention_unaudited"
#define META_EVIDENCE	"retention_evidence_seq"

/* The state of one run. */
struct sweep {
	struct cm_ctx			 cx;
	const struct cm_retention_opts	*opts;
	int				 batch;
	struct cm_retention_counts	 done;	/* the whole run */
	struct cm_retention_counts	 step;	/* the batch in progress */
	int64_t				 now;
};

static bool
stopping(const struct sweep *s)
{
	return s->opts->ro_stop != NULL && atomic_load(s->opts->ro_stop);
}

/* ---- batches and the tally --------------------------------------------- */

static cm_result
batch_begin(struct sweep *s)
{
	memset(&s->step, 0, sizeof(s->step));
	s->cx.cx_now = s->now;
	return s->opts->ro_dry_run ? cm_db_read_begin(s->cx.cx_db) : cm_db_begin(s->cx.cx_db);
}

static bool
counts_zero(const struct cm_retention_counts *c)
{
	return c->rc_requests == 0 && c->rc_packages == 0 && c->rc_outbox == 0 &&
	    c->rc_evidence == 0;
}

static void
counts_add(struct cm_retention_counts *to, const struct cm_retention_counts *c)
{
	to->rc_requests += c->rc_requests;
	to->rc_packages += c->rc_packages;
	to->rc_outbox += c->rc_outbox;
	to->rc_evidence += c->rc_evidence;
}

/* The tally the store holds into *T (zero when none). */
static cm_result
tally_get(struct cm_db *db, struct cm_retention_counts *t)
{
	int64_t *f[4] = { &t->rc_requests, &t->rc_packages, &t->rc_outbox,
	    &t->rc_evidence };
	char v[128], *p, *tok, *save = NULL;
	size_t i = 0;
	cm_result rc;

	memset(t, 0, sizeof(*t));
	if ((rc = cm_store_meta_get(db, META_TALLY, v, sizeof(v))) == CM_NOTFOUND)
		return CM_OK;
	if (rc != CM_OK)
		return rc;
	for (p = v; i < 4 && (tok = strtok_r(p, " ", &save)) != NULL; p = NULL, i++)
		if (cm_parse_i64(tok, 0, INT64_MAX / 2, f[i]) != 0)
			break;
	if (i != 4) {
		/* Unreadable: counted from here on; the entry says less than happened. */
		cm_log(CM_LOG_WARN, "retention_tally_unreadable", NULL);
		memset(t, 0, sizeof(*t));
	}
	return CM_OK;
}

static cm_result
tally_put(struct cm_db *db, const struct cm_retention_counts *t)
{
	char v[128];

	if (counts_zero(t))
		return cm_store_meta_set(db, META_TALLY, NULL);
	snprintf(v, sizeof(v), "%lld %lld %lld %lld", (long long)t->rc_requests,
	    (long long)t->rc_packages, (long long)t->rc_outbox, (long long)t->rc_evidence);
	return cm_store_meta_set(db, META_TALLY, v);
}

/* Ends the batch: its counts join the tally and the run's, and it commits. */
static cm_result
batch_end(struct sweep *s, cm_result rc)
{
	struct cm_retention_counts t;

	if (s->opts->ro_dry_run) {
		cm_db_read_end(s->cx.cx_db);
		if (rc == CM_OK)
			counts_add(&s->done, &s->step);
		return rc;
	}
	if (rc == CM_OK && !counts_zero(&s->step) &&
	    (rc = tally_get(s->cx.cx_db, &t)) == CM_OK) {
		counts_add(&t, &s->step);
		rc = tally_put(s->cx.cx_db, &t);
	}
	if (rc != CM_OK) {
		cm_db_rollback(s->cx.cx_db);
		return rc;
	}
	if ((rc = cm_db_commit(s->cx.cx_db)) == CM_OK)
		counts_add(&s->done, &s->step);
	if (s->opts->ro_pause_us > 0)
		usleep(s->opts->ro_pause_us);
	return rc;
}

/* ---- closed requests and packages -------------------------------------- */

/* Ids gathered for one batch: requests or packages. */
struct ids {
	char	(*id)[CM_PACKAGE_ID_LEN + 1];
	size_t	 n;
	size_t	 cap;
};

static int
ids_add(void *arg, const char *id)
{
	struct ids *l = arg;

	if (l->n == l->cap)
		return 1;
	snprintf(l->id[l->n++], CM_PACKAGE_ID_LEN + 1, "%s", id);
	return 0;
}

static int
ids_add_package(void *arg, const struct cm_package_row *p)
{
	return ids_add(arg, p->pk_id);
}

/* Removes the files of the packages in L, once their rows are gone. */
static void
unlink_files(struct cm_db *db, const struct ids *l)
{
	char path[4200];
	size_t i;

	for (i = 0; i < l->n; i++)
		if (package_path(db, l->id[i], false, path, sizeof(path)) == 0 &&
		    unlink(path) != 0 && errno != ENOENT)
			cm_log(CM_LOG_WARN, "package_unlink_failed", ",\"package\":\"%s\"",
			    l->id[i]);
}

static void
ids_init(struct ids *l, size_t cap)
{
	l->id = cm_calloc(cap, sizeof(*l->id));
	l->n = 0;
	l->cap = cap;
}

/* One batch of closed requests; *DONE when no more are due. */
static cm_result
requests_batch(struct sweep *s, char *after, bool *done)
{
	struct cm_db *db = s->cx.cx_db;
	struct ids req, pkg;
	size_t i;
	cm_result rc;

	ids_init(&req, (size_t)s->batch);
	/* A request has at most two packages: JSON and CSV. */
	ids_init(&pkg, 2 * (size_t)s->batch + 2);
	if ((rc = batch_begin(s)) != CM_OK)
		goto out;
	rc = cm_store_retention_requests(db, after,
	    s->now - s->cx.cx_policy->pol_closed_requests_days * CM_DAY_US, s->batch,
	    ids_add, &req);
	for (i = 0; rc == CM_OK && i < req.n; i++) {
		size_t before = pkg.n;

		rc = cm_store_packages_of_request(db, req.id[i], ids_add_package, &pkg);
		s->step.rc_packages += (int64_t)(pkg.n - before);
		if (rc == CM_OK && !s->opts->ro_dry_run)
			rc = cm_store_request_delete(db, req.id[i]);
		s->step.rc_requests++;
	}
	if ((rc = batch_end(s, rc)) == CM_OK && !s->opts->ro_dry_run)
		unlink_files(db, &pkg);
	*done = req.n < (size_t)s->batch;
	if (req.n > 0)
		snprintf(after, CM_PACKAGE_ID_LEN + 1, "%s", req.id[req.n - 1]);
out:
	free(req.id);
	free(pkg.id);
	return rc;
}

/* One batch of expired packages; *DONE when no more are due. */
static cm_result
packages_batch(struct sweep *s, char *after, bool *done)
{
	struct cm_db *db = s->cx.cx_db;
	struct ids pkg;
	size_t i;
	cm_result rc;

	ids_init(&pkg, (size_t)s->batch);
	if ((rc = batch_begin(s)) != CM_OK)
		goto out;
	rc = cm_store_packages_expired(db, after, s->now,
	    s->now - s->cx.cx_policy->pol_closed_requests_days * CM_DAY_US, s->batch,
	    ids_add_package, &pkg);
	for (i = 0; rc == CM_OK && i < pkg.n; i++)
		if (!s->opts->ro_dry_run)
			rc = cm_store_package_delete(db, pkg.id[i]);
	s->step.rc_packages = (int64_t)pkg.n;
	if ((rc = batch_end(s, rc)) == CM_OK && !s->opts->ro_dry_run)
		unlink_files(db, &pkg);
	*done = pkg.n < (size_t)s->batch;
	if (pkg.n > 0)
		snprintf(after, CM_PACKAGE_ID_LEN + 1, "%s", pkg.id[pkg.n - 1]);
out:
	free(pkg.id);
	return rc;
}

/* ---- delivered outbox rows, evidence ----------------------------------- */

static cm_result
outbox_batch(struct sweep *s, bool *done)
{
	const struct cm_policy *p = s->cx.cx_policy;
	int64_t before = s->now - p->pol_outbox_delivered_days * CM_DAY_US, n;
	int64_t closed = s->now - p->pol_closed_requests_days * CM_DAY_US;
	cm_result rc;

	if ((rc = batch_begin(s)) != CM_OK)
		return rc;
	if (s->opts->ro_dry_run)
		rc = cm_store_outbox_delivered_count(s->cx.cx_db, before, closed, &n);
	else
		rc = cm_store_outbox_delivered_delete(s->cx.cx_db, before, closed, s->batch,
		    &n);
	s->step.rc_outbox = n;
	*done = s->opts->ro_dry_run || n < s->batch;
	return batch_end(s, rc);
}

static cm_result
evidence_batch(struct sweep *s, int64_t *after, bool *done)
{
	int64_t cutoff = s->now - s->cx.cx_policy->pol_evidence_ip_days * CM_DAY_US, from;
	char v[32];
	cm_result rc;

	if ((rc = batch_begin(s)) != CM_OK)
		return rc;
	/* The watermark: a run (or the server) since the last batch may have moved it. */
	if (*after < 0) {
		*after = 0;
		if ((rc = cm_store_meta_get(s->cx.cx_db, META_EVIDENCE, v, sizeof(v))) == CM_OK &&
		    cm_parse_i64(v, 0, INT64_MAX, after) != 0)
			*after = 0;
		if (rc == CM_NOTFOUND)
			rc = CM_OK;
	}
	from = *after;
	if (rc == CM_OK)
		rc = retention_evidence_batch(&s->cx, cutoff, s->opts->ro_dry_run, s->batch,
		    after, &s->step.rc_evidence, done);
	/* Nothing looked at (all inside the period): nothing to write. */
	if (rc == CM_OK && !s->opts->ro_dry_run && *after != from) {
		snprintf(v, sizeof(v), "%lld", (long long)*after);
		rc = cm_store_meta_set(s->cx.cx_db, META_EVIDENCE, v);
	}
	return batch_end(s, rc);
}

/* ---- the run ------------------------------------------------------------- */

/* The closing transaction: the tally becomes one audit entry. */
static cm_result
sweep_audit(struct sweep *s, struct cm_retention_result *out)
{
	const struct cm_policy *p = s->cx.cx_policy;
	struct cm_retention_counts t;
	json_t *d;
	cm_result rc;

	if ((rc = cm_db_begin(s->cx.cx_db)) != CM_OK)
		return rc;
	s->cx.cx_now = s->now;
	if ((rc = tally_get(s->cx.cx_db, &t)) != CM_OK || counts_zero(&t))
		goto out;
	d = json_pack("{s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}}",
	    "requests", (json_int_t)t.rc_requests, "packages", (json_int_t)t.rc_packages,
	    "outbox", (json_int_t)t.rc_outbox, "evidence", (json_int_t)t.rc_evidence,
	    "periods_days", "closed_requests", (json_int_t)p->pol_closed_requests_days,
	    "outbox_delivered", (json_int_t)p->pol_outbox_delivered_days,
	    "evidence_ip_truncate", (json_int_t)p->pol_evidence_ip_days);
	if ((rc = cm_ctx_audit(&s->cx, "retention.swept", NULL, NULL, d, NULL,
	    &out->rr_audit_index)) != CM_OK ||
	    (rc = cm_store_meta_set(s->cx.cx_db, META_TALLY, NULL)) != CM_OK)
		goto out;
	out->rr_audited = true;
out:
	if (rc != CM_OK) {
		cm_db_rollback(s->cx.cx_db);
		return rc;
	}
	return cm_db_commit(s->cx.cx_db);
}

cm_result
cm_retention_run(struct cm_db *db, const struct cm_keys *keys, const struct cm_policy *pol,
    const struct cm_retention_opts *opts, struct cm_retention_result *out)
{
	struct sweep s;
	char after[CM_PACKAGE_ID_LEN + 1];
	int64_t seq = -1;
	bool done;
	cm_result rc = CM_OK;

	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	cm_ctx_init(&s.cx, db, keys, pol, opts->ro_actor ? opts->ro_actor : "retention");
	s.opts = opts;
	s.batch = opts->ro_batch > 0 ? opts->ro_batch : CM_RETENTION_BATCH;
	s.now = s.cx.cx_now;
	after[0] = '\0';
	for (done = false; rc == CM_OK && !done && !stopping(&s);)
		rc = requests_batch(&s, after, &done);
	after[0] = '\0';
	for (done = false; rc == CM_OK && !done && !stopping(&s);)
		rc = packages_batch(&s, after, &done);
	for (done = false; rc == CM_OK && !done && !stopping(&s);)
		rc = outbox_batch(&s, &done);
	for (done = false; rc == CM_OK && !done && !stopping(&s);)
		rc = evidence_batch(&s, &seq, &done);
	out->rr_counts = s.done;
	out->rr_stopped = stopping(&s);
	/* Even a failed run accounts for the batches it committed. */
	if (!opts->ro_dry_run) {
		cm_result arc = sweep_audit(&s, out);

		if (rc == CM_OK)
			rc = arc;
	}
	return rc;
}

/* ---- the server's thread --------------------------------------------------- */

struct cm_retention_worker {
	struct cm_worker	*rw_worker;
	struct cm_store		*rw_store;
	const struct cm_keys	*rw_keys;
	const struct cm_policy	*rw_policy;
	int64_t			 rw_interval_us;
	int64_t			 rw_next_us;	/* monotonic time of the next sweep */
	atomic_bool		 rw_stop;
};

static void
worker_tick(void *arg, bool last)
{
	struct cm_retention_worker *w = arg;
	struct cm_retention_opts o;
	struct cm_retention_result r;
	struct cm_db *db;
	cm_result rc;

	if (last || cm_time_mono_us() < w->rw_next_us)
		return;
	memset(&o, 0, sizeof(o));
	/* A breath between batches lets the request writer take the lock. */
	o.ro_pause_us = 2000;
	o.ro_stop = &w->rw_stop;
	o.ro_actor = "retention";
	if ((db = cm_store_db(w->rw_store)) == NULL)
		rc = CM_IOERR;
	else
		rc = cm_retention_run(db, w->rw_keys, w->rw_policy, &o, &r);
	w->rw_next_us = cm_time_mono_us() + w->rw_interval_us;
	if (rc != CM_OK) {
		cm_log(CM_LOG_ERROR, "retention_failed", ",\"result\":\"%s\"",
		    cm_result_str(rc));
		return;
	}
	cm_log(CM_LOG_INFO, "retention_swept", ",\"requests\":%lld,\"packages\":%lld,"
	    "\"outbox\":%lld,\"evidence\":%lld,\"audited\":%s",
	    (long long)r.rr_counts.rc_requests, (long long)r.rr_counts.rc_packages,
	    (long long)r.rr_counts.rc_outbox, (long long)r.rr_counts.rc_evidence,
	    r.rr_audited ? "true" : "false");
}

struct cm_retention_worker *
cm_retention_start(struct cm_store *store, const struct cm_keys *keys,
    const struct cm_policy *pol, unsigned interval_s)
{
	struct cm_retention_worker *w = cm_calloc(1, sizeof(*w));
	unsigned first = interval_s < CM_RETENTION_FIRST_DELAY_S ? interval_s :
	    CM_RETENTION_FIRST_DELAY_S;

	w->rw_store = store;
	w->rw_keys = keys;
	w->rw_policy = pol;
	w->rw_interval_us = (int64_t)(interval_s ? interval_s : 1) * 1000000;
	w->rw_next_us = cm_time_mono_us() + (int64_t)first * 1000000;
	atomic_init(&w->rw_stop, false);
	/* Woken each second to see whether a sweep is due. */
	if ((w->rw_worker = cm_worker_start(worker_tick, w, 1000)) == NULL) {
		free(w);
		return NULL;
	}
	return w;
}

void
cm_retention_stop(struct cm_retention_worker *w)
{
	if (w == NULL)
		return;
	atomic_store(&w->rw_stop, true);
	cm_worker_stop(w->rw_worker);
	free(w);
}
