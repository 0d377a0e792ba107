/* SPDX-License-Identifier: ISC */
/*
 * Prometheus metrics of the running process, with no third-party
 * dependency: histograms with fixed buckets that a hot path fills with a
 * few relaxed atomic additions and no lock, the text exposition format
 * (version 0.0.4) they are written in, and the process's own figures
 * (CPU time, resident memory, open files, start time) with the build's
 * version. Every label value written comes from the program itself (a
 * route pattern, a decision reason), never from a request.
 */
#ifndef CONSENTD_METRICS_H
#define CONSENTD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "consentd/util.h"

#define CM_HIST_MAX_BUCKETS	16

/*
 * A histogram of integer observations (microseconds, or counts) over
 * fixed upper bounds. Zero-initialised, it is empty; h_bounds and
 * h_nbounds are set once, before the first observation, and never change.
 */
struct cm_hist {
	const int64_t		*h_bounds;	/* ascending upper bounds */
	size_t			 h_nbounds;	/* at most CM_HIST_MAX_BUCKETS */
	/* Observations in each bucket (not cumulative); the last is +Inf. */
	atomic_uint_fast64_t	 h_counts[CM_HIST_MAX_BUCKETS + 1];
	atomic_uint_fast64_t	 h_sum;		/* of every observation */
};

/* Bounds for request latencies, in microseconds (0.5 ms to 10 s). */
extern const int64_t	cm_hist_latency_us[];
extern const size_t	cm_hist_latency_n;

/* Sets H's bounds (BOUNDS, N of them; borrowed for H's life), emptying it. */
void	cm_hist_init(struct cm_hist *h, const int64_t *bounds, size_t n);
/* Counts one observation V (negative counts as 0). Lock-free, relaxed. */
void	cm_hist_observe(struct cm_hist *h, int64_t v);
/* The number of observations H holds. */
uint64_t cm_hist_count(const struct cm_hist *h);
/*
 * Appends H's series to OUT: NAME_bucket{LABELS,le="…"} for each bound
 * and +Inf, NAME_sum and NAME_count. LABELS is "" or label pairs already
 * written (`route="/healthz"`); SCALE divides bounds and the sum (1e6 for
 * microseconds written as seconds, 1 for counts). The # HELP and # TYPE
 * lines are the caller's, once per metric.
 */
void	cm_hist_write(struct cm_buf *out, const char *name, const char *labels,
	    const struct cm_hist *h, double scale);

/* ---- the process --------------------------------------------------------- */

/*
 * Notes the start time and the version consentd_build_info reports
 * (VERSION is borrowed for the life of the process). Called once, by
 * 'consentd serve', before the server starts.
 */
void	cm_metrics_process_init(const char *version);
/*
 * Appends consentd_build_info and process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds and process_start_time_seconds (read
 * from /proc/self), each with its HELP and TYPE, to OUT. A figure that
 * cannot be read is left out rather than reported wrong.
 */
void	cm_metrics_process_write(struct cm_buf *out);

#endif
