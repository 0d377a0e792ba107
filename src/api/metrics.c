/* SPDX-License-Identifier: ISC */
/*
 * GET /metrics: Prometheus text (exposition format 0.0.4) for any valid
 * token. The server's counters and histograms (src/http/metrics.c), the
 * consent checks answered by decision and reason (counted here, on the
 * check's hot path, with relaxed atomic additions and no lock), the
 * outbox's depth and the data-subject requests near or past their
 * deadline (read from the store in the scrape's snapshot), the build and
 * the process. Label values are the program's own words (route patterns,
 * decision reasons, request states): no identifier, token or anything a
 * caller sent can reach this page.
 */
#include <stdatomic.h>
#include <string.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/metrics.h"
#include "consentd/store.h"
#include "consentd/util.h"

/* Every reason src/core/decision.c gives; "other" is for any new one. */
static const char *const check_reasons[] = {
	"consent", "legitimate_interest", "soft_opt_in", "no_consent", "withdrawn",
	"stale_notice", "suppressed", "unknown_subject", "restricted", "objected",
	"paused", "no_relationship", "holdout", "error", "other"
};
#define NREASONS	CM_NELEM(check_reasons)

/* [deny, allow][reason] */
static atomic_uint_fast64_t check_counts[2][NREASONS];

/* Open requests due within this of now count as near their deadline. */
#define DSR_SOON_US	(7 * 86400 * INT64_C(1000000))

void
cm_api_metrics_check(bool allow, const char *reason)
{
	size_t i;

	for (i = 0; i < NREASONS - 1; i++)
		if (reason != NULL && strcmp(reason, check_reasons[i]) == 0)
			break;
	atomic_fetch_add_explicit(&check_counts[allow][i], 1, memory_order_relaxed);
}

static void
metrics_checks(struct cm_buf *b)
{
	uint64_t n;
	size_t d, i;

	cm_buf_appendf(b, "# HELP consentd_checks_total Consent checks answered, by "
	    "decision and reason.\n# TYPE consentd_checks_total counter\n");
	for (d = 0; d < 2; d++)
		for (i = 0; i < NREASONS; i++) {
			n = atomic_load_explicit(&check_counts[d][i], memory_order_relaxed);
			if (n > 0)
				cm_buf_appendf(b, "consentd_checks_total{decision=\"%s\","
				    "reason=\"%s\"} %llu\n", d ? "allow" : "deny",
				    check_reasons[i], (unsigned long long)n);
		}
}

/*
 * The store's gauges, read in the request's snapshot. Left out (and the
 * failure logged) when the store does not answer: a scrape still shows
 * the process, and the missing series say what is wrong.
 */
static void
metrics_store(struct cm_request *rq, struct cm_buf *b)
{
	struct cm_db *db = cm_store_db(cm_req_app(rq)->app_store);
	int64_t pending, dead, open, soon, overdue, now = cm_time_now_us();

	if (db == NULL)
		return;
	if (cm_store_outbox_depth(db, &pending, &dead) == CM_OK)
		cm_buf_appendf(b, "# HELP consentd_outbox_messages Outbox rows waiting "
		    "to go out (pending) or given up (dead).\n"
		    "# TYPE consentd_outbox_messages gauge\n"
		    "consentd_outbox_messages{status=\"pending\"} %lld\n"
		    "consentd_outbox_messages{status=\"dead\"} %lld\n",
		    (long long)pending, (long long)dead);
	if (cm_store_dsr_deadlines(db, now, now + DSR_SOON_US, &open, &soon,
	    &overdue) == CM_OK)
		cm_buf_appendf(b, "# HELP consentd_dsr_requests Open data-subject "
		    "requests: all, due within 7 days, overdue.\n"
		    "# TYPE consentd_dsr_requests gauge\n"
		    "consentd_dsr_requests{deadline=\"any\"} %lld\n"
		    "consentd_dsr_requests{deadline=\"within_7d\"} %lld\n"
		    "consentd_dsr_requests{deadline=\"overdue\"} %lld\n",
		    (long long)open, (long long)soon, (long long)overdue);
}

/*
 * What the store's work has cost: pages and statements, counted by the
 * store as its transactions end. Divided by the requests served, these
 * say what a check or a write costs, free of the machine's noise.
 */
static void
metrics_cost(struct cm_request *rq, struct cm_buf *b)
{
	struct cm_store_cost c;

	cm_store_cost(cm_req_app(rq)->app_store, &c);
	/* SQLCipher's page cache; PostgreSQL's buffers are the server's to report. */
	if (!cm_store_on_pg(cm_req_app(rq)->app_store))
		cm_buf_appendf(b, "# HELP consentd_store_page_reads_total Store pages the "
		    "transactions read: found in a page cache (cache), or read from the "
		    "file and decrypted (file).\n"
		    "# TYPE consentd_store_page_reads_total counter\n"
		    "consentd_store_page_reads_total{source=\"cache\"} %llu\n"
		    "consentd_store_page_reads_total{source=\"file\"} %llu\n"
		    "# HELP consentd_store_pages_written_total Store pages the transactions "
		    "wrote.\n"
		    "# TYPE consentd_store_pages_written_total counter\n"
		    "consentd_store_pages_written_total %llu\n",
		    (unsigned long long)c.sc_pages_hit, (unsigned long long)c.sc_pages_miss,
		    (unsigned long long)c.sc_pages_written);
	cm_buf_appendf(b, "# HELP consentd_store_statements_total SQL statements run on the "
	    "store's tables (transaction control not counted).\n"
	    "# TYPE consentd_store_statements_total counter\n"
	    "consentd_store_statements_total %llu\n"
	    "# HELP consentd_store_transactions_total Store transactions ended, "
	    "read or write.\n"
	    "# TYPE consentd_store_transactions_total counter\n"
	    "consentd_store_transactions_total %llu\n"
	    "# HELP consentd_store_checks_total Checks by where their facts came from: "
	    "the identifier's decision row (one probe), or the tables, when it had none "
	    "(no owner, or facts changed by a writer that has not rebuilt it).\n"
	    "# TYPE consentd_store_checks_total counter\n"
	    "consentd_store_checks_total{source=\"decision_row\"} %llu\n"
	    "consentd_store_checks_total{source=\"tables\"} %llu\n",
	    (unsigned long long)c.sc_statements,
	    (unsigned long long)c.sc_transactions, (unsigned long long)c.sc_checks_row,
	    (unsigned long long)c.sc_checks_tables);
}

void
cm_api_metrics(struct cm_request *rq)
{
	struct cm_buf b = { 0 };

	cm_server_metrics(cm_req_server(rq), &b);
	metrics_checks(&b);
	metrics_store(rq, &b);
	metrics_cost(rq, &b);
	cm_metrics_process_write(&b);
	cm_buf_appendf(&b, "# HELP consentd_up The service is running.\n"
	    "# TYPE consentd_up gauge\nconsentd_up 1\n");
	cm_reply_bytes(rq, 200, "text/plain; version=0.0.4; charset=utf-8", b.b_data, b.b_len);
	cm_buf_free(&b);
}
