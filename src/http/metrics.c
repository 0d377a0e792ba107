/* SPDX-License-Identifier: ISC */
/*
 * The server's part of /metrics: requests by route and status class, a
 * latency histogram per route, group-commit batch sizes and times, slow
 * clients cut and requests in flight. Routes are named by their pattern
 * ("/v1/subjects/{id}"), never by the path asked for, so no identifier
 * reaches a label; what matched no route is "(unmatched)".
 */
#include <stdio.h>
#include <string.h>

#include "consentd/crypto.h"
#include "http_int.h"

/* Group-commit batch sizes: powers of two up to the writer's limit (512). */
static const int64_t batch_bounds[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512 };

void
server_metrics_init(struct cm_server *sv)
{
	uint8_t r[8];
	size_t i;

	for (i = 0; i <= sv->sv_nroutes; i++)
		cm_hist_init(&sv->sv_stats[i].rs_latency, cm_hist_latency_us,
		    cm_hist_latency_n);
	cm_hist_init(&sv->sv_batch_jobs, batch_bounds, CM_NELEM(batch_bounds));
	cm_hist_init(&sv->sv_batch_us, cm_hist_latency_us, cm_hist_latency_n);
	/* A random prefix: ids stay unique across restarts and servers. */
	cm_random(r, sizeof(r));
	for (i = 0; i < sizeof(r); i++)
		snprintf(sv->sv_reqid_prefix + 2 * i, 3, "%02x", r[i]);
	atomic_init(&sv->sv_reqid_next, 0);
}

/* The labels of route I (the unmatched ones after the last) into BUF. */
static const char *
metrics_route_labels(const struct cm_server *sv, size_t i, char *buf, size_t len)
{
	const struct cm_route *rt = i < sv->sv_nroutes ? &sv->sv_routes[i] : NULL;

	snprintf(buf, len, "method=\"%s\",route=\"%s\"", rt ? rt->r_method : "",
	    rt ? rt->r_pattern : "(unmatched)");
	return buf;
}

static void
metrics_requests(struct cm_server *sv, struct cm_buf *out)
{
	static const char *const classes[] = { "0xx", "1xx", "2xx", "3xx", "4xx", "5xx" };
	char labels[320];
	size_t i, c;
	uint64_t n;

	cm_buf_appendf(out, "# HELP consentd_http_requests_total HTTP requests "
	    "answered, by route and status class.\n"
	    "# TYPE consentd_http_requests_total counter\n");
	for (i = 0; i <= sv->sv_nroutes; i++) {
		metrics_route_labels(sv, i, labels, sizeof(labels));
		for (c = 0; c < CM_NELEM(classes); c++) {
			if ((n = atomic_load(&sv->sv_stats[i].rs_count[c])) == 0)
				continue;
			cm_buf_appendf(out, "consentd_http_requests_total{%s,code=\"%s\"} %llu\n",
			    labels, classes[c], (unsigned long long)n);
		}
	}
	cm_buf_appendf(out, "# HELP consentd_http_request_seconds_total Time spent "
	    "answering requests, by route.\n"
	    "# TYPE consentd_http_request_seconds_total counter\n");
	for (i = 0; i <= sv->sv_nroutes; i++) {
		if ((n = atomic_load(&sv->sv_stats[i].rs_us)) == 0)
			continue;
		cm_buf_appendf(out, "consentd_http_request_seconds_total{%s} %.6f\n",
		    metrics_route_labels(sv, i, labels, sizeof(labels)), (double)n / 1e6);
	}
	cm_buf_appendf(out, "# HELP consentd_http_request_duration_seconds Time from "
	    "a request's first line to its answer, by route.\n"
	    "# TYPE consentd_http_request_duration_seconds histogram\n");
	for (i = 0; i <= sv->sv_nroutes; i++) {
		if (cm_hist_count(&sv->sv_stats[i].rs_latency) == 0)
			continue;
		cm_hist_write(out, "consentd_http_request_duration_seconds",
		    metrics_route_labels(sv, i, labels, sizeof(labels)),
		    &sv->sv_stats[i].rs_latency, 1e6);
	}
}

void
cm_server_metrics(struct cm_server *sv, struct cm_buf *out)
{
	metrics_requests(sv, out);
	cm_buf_appendf(out, "# HELP consentd_group_commit_batch_size Write requests "
	    "committed together in one transaction (one fsync).\n"
	    "# TYPE consentd_group_commit_batch_size histogram\n");
	cm_hist_write(out, "consentd_group_commit_batch_size", "", &sv->sv_batch_jobs, 1);
	cm_buf_appendf(out, "# HELP consentd_group_commit_duration_seconds Time of "
	    "one group commit, its jobs and the durable commit.\n"
	    "# TYPE consentd_group_commit_duration_seconds histogram\n");
	cm_hist_write(out, "consentd_group_commit_duration_seconds", "", &sv->sv_batch_us, 1e6);
	cm_buf_appendf(out, "# HELP consentd_group_commit_reruns_total Group commits "
	    "rolled back and run again, each job in a savepoint, because a job failed "
	    "after writing.\n"
	    "# TYPE consentd_group_commit_reruns_total counter\n"
	    "consentd_group_commit_reruns_total %ju\n",
	    (uintmax_t)atomic_load_explicit(&sv->sv_batch_reruns, memory_order_relaxed));
	cm_buf_appendf(out, "# HELP consentd_group_commit_retries_total Group commits "
	    "run again whole: the store was busy, or lost a commit's answer (only "
	    "writes with a request id run again then).\n"
	    "# TYPE consentd_group_commit_retries_total counter\n"
	    "consentd_group_commit_retries_total{reason=\"busy\"} %ju\n"
	    "consentd_group_commit_retries_total{reason=\"outcome_unknown\"} %ju\n",
	    (uintmax_t)atomic_load_explicit(&sv->sv_batch_retries[0], memory_order_relaxed),
	    (uintmax_t)atomic_load_explicit(&sv->sv_batch_retries[1], memory_order_relaxed));
	cm_buf_appendf(out, "# HELP consentd_http_slow_clients_total Connections cut "
	    "for missing the header or request deadline, or the minimum rate.\n"
	    "# TYPE consentd_http_slow_clients_total counter\n"
	    "consentd_http_slow_clients_total %llu\n",
	    (unsigned long long)atomic_load(&sv->sv_watch.wd_cut));
	cm_buf_appendf(out, "# HELP consentd_http_requests_in_flight Requests being "
	    "answered now.\n# TYPE consentd_http_requests_in_flight gauge\n"
	    "consentd_http_requests_in_flight %d\n", atomic_load(&sv->sv_inflight));
	rate_metrics(sv->sv_rate, out);
}
