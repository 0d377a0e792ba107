/* SPDX-License-Identifier: ISC */
/*
 * Retention (policy "retention"; docs/operations.md, "Retention"): a sweep
 * deletes closed requests, expired packages and delivered outbox rows
 * once their periods end, and minimises consent evidence (the IP address
 * truncated, the user agent dropped). Consent events and the audit log are
 * never deleted: they are the proof of consent. A sweep that changed
 * anything ends with one audit entry, retention.swept, holding counts.
 * The server runs it on a thread of its own; `consentd retention run`
 * runs it once.
 */
#ifndef CONSENTD_RETENTION_H
#define CONSENTD_RETENTION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consentd/common.h"

struct cm_db;
struct cm_keys;
struct cm_policy;
struct cm_store;

/* Rows per transaction when the options say 0. */
#define CM_RETENTION_BATCH	200
/* Before the server's first sweep: the interval, when shorter. */
#define CM_RETENTION_FIRST_DELAY_S	60

struct cm_retention_counts {
	int64_t	rc_requests;	/* closed requests deleted, with their timelines */
	int64_t	rc_packages;	/* package files and keys destroyed */
	int64_t	rc_outbox;	/* delivered outbox rows deleted */
	int64_t	rc_evidence;	/* consent events whose evidence was minimised */
};

struct cm_retention_opts {
	bool		 ro_dry_run;	/* count what would be done, change nothing */
	int		 ro_batch;	/* rows per transaction; 0: CM_RETENTION_BATCH */
	unsigned	 ro_pause_us;	/* pause between batches, for other writers */
	const atomic_bool *ro_stop;	/* may be NULL; set: stop after this batch */
	const char	*ro_actor;	/* who the audit entry names */
};

struct cm_retention_result {
	struct cm_retention_counts rr_counts;	/* what this run did (or would do) */
	bool		 rr_audited;		/* a retention.swept entry was written */
	uint64_t	 rr_audit_index;
	bool		 rr_stopped;		/* ro_stop cut the run short */
};

/*
 * Runs one sweep on DB (the calling thread's connection) with POLICY's
 * periods, in batches of bounded size, each its own transaction. The
 * counts of a batch are kept in the store with it, so that the audit
 * entry written at the end (only when something changed) counts every
 * deletion, a batch of a run cut short by a crash included. With
 * ro_dry_run nothing is written. Fills *OUT; CM_OK or the store's failure.
 */
cm_result cm_retention_run(struct cm_db *, const struct cm_keys *, const struct cm_policy *,
	    const struct cm_retention_opts *, struct cm_retention_result *out) CM_WUR;

/*
 * Truncates the IP address IP into OUT (OUTLEN bytes): an IPv4 address to
 * its /24 ("203.0.113.77" → "203.0.113.0"), an IPv6 address to its /48
 * ("2001:db8:a:b::1" → "2001:db8:a::"), an IPv4-mapped IPv6 address as its
 * IPv4 address. Returns 0, or -1 when IP is not an address (the caller
 * drops it: what cannot be read cannot be minimised).
 */
int	cm_retention_ip_truncate(const char *ip, char *out, size_t outlen) CM_WUR;

struct cm_retention_worker;

/*
 * Starts the sweeping thread: a first sweep after min(INTERVAL_S,
 * CM_RETENTION_FIRST_DELAY_S) seconds, then one every INTERVAL_S (>= 1).
 * NULL when the thread cannot be started.
 */
struct cm_retention_worker *cm_retention_start(struct cm_store *, const struct cm_keys *,
	    const struct cm_policy *, unsigned interval_s);
/* Stops the thread after the batch in progress; accepts NULL. */
void	cm_retention_stop(struct cm_retention_worker *);

#endif
