/* SPDX-License-Identifier: ISC */
/*
 * Histograms with fixed buckets for Prometheus, filled without a lock on
 * the paths they measure (one relaxed atomic addition to a bucket and one
 * to the sum: the figures need no order with anything else), and the
 * process's own figures read from /proc/self when scraped, as the
 * Prometheus client libraries report them (process_* names).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "consentd/metrics.h"

const int64_t cm_hist_latency_us[] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};
const size_t cm_hist_latency_n = CM_NELEM(cm_hist_latency_us);

static const char	*metrics_version = "unknown";
static int64_t		 metrics_start_us;

void
cm_hist_init(struct cm_hist *h, const int64_t *bounds, size_t n)
{
	size_t i;

	h->h_bounds = bounds;
	h->h_nbounds = n < CM_HIST_MAX_BUCKETS ? n : CM_HIST_MAX_BUCKETS;
	for (i = 0; i <= CM_HIST_MAX_BUCKETS; i++)
		atomic_init(&h->h_counts[i], 0);
	atomic_init(&h->h_sum, 0);
}

void
cm_hist_observe(struct cm_hist *h, int64_t v)
{
	size_t i;

	if (v < 0)
		v = 0;
	for (i = 0; i < h->h_nbounds && v > h->h_bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&h->h_counts[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->h_sum, (uint64_t)v, memory_order_relaxed);
}

uint64_t
cm_hist_count(const struct cm_hist *h)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i <= h->h_nbounds; i++)
		n += atomic_load_explicit(&h->h_counts[i], memory_order_relaxed);
	return n;
}

void
cm_hist_write(struct cm_buf *out, const char *name, const char *labels,
    const struct cm_hist *h, double scale)
{
	const char *sep = labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;
	size_t i;

	/*
	 * Cumulative counts from one pass over the buckets, and _count their
	 * total: a scrape racing an observation may miss it, but the series
	 * it writes always agree with one another (+Inf equals _count).
	 */
	for (i = 0; i <= h->h_nbounds; i++) {
		cum += atomic_load_explicit(&h->h_counts[i], memory_order_relaxed);
		if (i < h->h_nbounds)
			cm_buf_appendf(out, "%s_bucket{%s%sle=\"%.10g\"} %llu\n", name, labels,
			    sep, (double)h->h_bounds[i] / scale, (unsigned long long)cum);
		else
			cm_buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
			    sep, (unsigned long long)cum);
	}
	cm_buf_appendf(out, "%s_sum%s%s%s %.10g\n", name, labels[0] ? "{" : "", labels,
	    labels[0] ? "}" : "",
	    (double)atomic_load_explicit(&h->h_sum, memory_order_relaxed) / scale);
	cm_buf_appendf(out, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
	    labels[0] ? "}" : "", (unsigned long long)cum);
}

void
cm_metrics_process_init(const char *version)
{
	metrics_version = version;
	metrics_start_us = cm_time_now_us();
}

/* Fields of /proc/self/stat: CPU ticks, start ticks since boot, sizes. */
struct proc_stat {
	unsigned long long	ps_utime, ps_stime, ps_start;
	unsigned long long	ps_vsize, ps_rss;
};

static int
proc_stat_read(struct proc_stat *ps)
{
	char buf[1024], *p;
	FILE *f;
	size_t n;

	if ((f = fopen("/proc/self/stat", "re")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name, in parentheses, may hold spaces: start after it. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* Fields 3 (state) to 24 (rss); 14, 15, 22, 23 and 24 are kept. */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
	    "%*d %*d %*d %*d %*d %*d %llu %llu %llu", &ps->ps_utime, &ps->ps_stime,
	    &ps->ps_start, &ps->ps_vsize, &ps->ps_rss) != 5)
		return -1;
	return 0;
}

/* The boot time, seconds since the epoch, from /proc/stat; 0 if unknown. */
static long long
proc_boot_time(void)
{
	char line[256];
	long long bt = 0;
	FILE *f;

	if ((f = fopen("/proc/stat", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "btime %lld", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

static long
proc_open_fds(void)
{
	struct dirent *e;
	long n = 0;
	DIR *d;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	/* Less the descriptor of the directory being read. */
	return n - 1;
}

void
cm_metrics_process_write(struct cm_buf *out)
{
	struct proc_stat ps;
	struct rlimit rl;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds;
	long long boot;
	double start;

	cm_buf_appendf(out, "# HELP consentd_build_info The running build (always 1).\n"
	    "# TYPE consentd_build_info gauge\nconsentd_build_info{version=\"%s\"} 1\n",
	    metrics_version);
	start = (double)metrics_start_us / 1e6;
	if (tck > 0 && page > 0 && proc_stat_read(&ps) == 0) {
		cm_buf_appendf(out, "# HELP process_cpu_seconds_total Total user and "
		    "system CPU time spent in seconds.\n"
		    "# TYPE process_cpu_seconds_total counter\n"
		    "process_cpu_seconds_total %.2f\n",
		    (double)(ps.ps_utime + ps.ps_stime) / (double)tck);
		cm_buf_appendf(out, "# HELP process_resident_memory_bytes Resident memory "
		    "size in bytes.\n# TYPE process_resident_memory_bytes gauge\n"
		    "process_resident_memory_bytes %llu\n",
		    ps.ps_rss * (unsigned long long)page);
		cm_buf_appendf(out, "# HELP process_virtual_memory_bytes Virtual memory "
		    "size in bytes.\n# TYPE process_virtual_memory_bytes gauge\n"
		    "process_virtual_memory_bytes %llu\n", ps.ps_vsize);
		if ((boot = proc_boot_time()) > 0)
			start = (double)boot + (double)ps.ps_start / (double)tck;
	}
	if ((fds = proc_open_fds()) >= 0)
		cm_buf_appendf(out, "# HELP process_open_fds Number of open file "
		    "descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds %ld\n", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		cm_buf_appendf(out, "# HELP process_max_fds Maximum number of open file "
		    "descriptors.\n# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
		    (unsigned long long)rl.rlim_cur);
	if (start > 0)
		cm_buf_appendf(out, "# HELP process_start_time_seconds Start time of the "
		    "process since unix epoch in seconds.\n"
		    "# TYPE process_start_time_seconds gauge\n"
		    "process_start_time_seconds %.2f\n", start);
}
