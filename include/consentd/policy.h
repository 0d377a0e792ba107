/* SPDX-License-Identifier: ISC */
/*
 * The retailer's declarative privacy policy (policy/policy.json): who the
 * controller is, the channels, purposes, topics and frequencies, and the
 * retention rules. Loaded once at start-up and validated completely; any
 * error names the file, the line and the field. Read-only afterwards, so
 * every thread may use it without locking.
 */
#ifndef CONSENTD_POLICY_H
#define CONSENTD_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "consentd/common.h"

#define CM_POLICY_FILE		"policy.json"
#define CM_POLICY_MAX_BYTES	(1024 * 1024)
#define CM_POLICY_MAX_CHANNELS	64	/* channel sets are 64-bit masks */
#define CM_POLICY_MAX_ITEMS	256	/* purposes, topics, types, frequencies */
/* Defaults of the policy's retention periods (docs/operations.md, "Retention"). */
#define CM_RETENTION_OUTBOX_DAYS	90
#define CM_RETENTION_EVIDENCE_DAYS	180

enum cm_lawful_basis {
	CM_BASIS_CONSENT,
	CM_BASIS_LEGITIMATE_INTEREST,
	CM_BASIS_SOFT_OPT_IN,
	CM_BASIS_CONTRACT,
	CM_BASIS_LEGAL_OBLIGATION
};

enum cm_jurisdiction { CM_JUR_GDPR, CM_JUR_UK_GDPR, CM_JUR_CCPA };

struct cm_channel {
	const char	*ch_id;
	const char	*ch_title;
	const char	**ch_id_types;	/* identifier types that reach a person on
					   it (a bounce of one stops the channel) */
	size_t		 ch_nid_types;
};

struct cm_purpose {
	const char		*pu_id;
	const char		*pu_title;
	enum cm_lawful_basis	 pu_basis;
	bool			 pu_marketing;	/* direct marketing: Art. 21 applies */
	uint64_t		 pu_channels;	/* bit i = policy channel i */
	int64_t			 pu_version;
	int64_t			 pu_min_valid_version;
	bool			 pu_gpc;	/* withdrawn by a GPC signal */
	int			 pu_holdout_percent;
};

struct cm_topic {
	const char	*tp_id;
	const char	*tp_title;
	size_t		 tp_purpose;	/* index into pol_purposes */
};

struct cm_policy {
	char			*pol_file;		/* path it was loaded from */
	char			*pol_text;		/* its text, to locate fields */
	size_t			 pol_text_len;
	void			*pol_doc;		/* json_t *, owns the strings */
	char			*pol_public;		/* GET /v1/policy body */
	size_t			 pol_public_len;
	enum cm_jurisdiction	 pol_jurisdiction;
	const char		*pol_gpc_last_update;	/* YYYY-MM-DD */
	struct cm_channel	*pol_channels;
	size_t			 pol_nchannels;
	struct cm_purpose	*pol_purposes;
	size_t			 pol_npurposes;
	struct cm_topic		*pol_topics;
	size_t			 pol_ntopics;
	const char		**pol_frequencies;
	size_t			 pol_nfrequencies;
	const char		**pol_id_types;		/* types the policy adds */
	size_t			 pol_nid_types;
	const char		*pol_phone_region;	/* ISO 3166-1 alpha-2 for national
							   phone numbers, or NULL */
	int64_t			 pol_closed_requests_days;
	int64_t			 pol_service_records_days;
	int64_t			 pol_packages_days;	/* access packages kept (default 30) */
	int64_t			 pol_outbox_delivered_days;	/* delivered outbox rows kept */
	int64_t			 pol_evidence_ip_days;	/* full IP and user agent kept */
};

/*
 * Loads and validates PATH, a policy file or a directory holding
 * policy.json. On success *OUT is a policy the caller frees with
 * cm_policy_free(). On failure ERR holds "FILE:LINE: FIELD: problem".
 */
cm_result cm_policy_load(const char *path, struct cm_policy **out, char *err,
	    size_t errlen) CM_WUR;

/* Validates the policy document TEXT (LEN bytes) read from FILE. */
cm_result cm_policy_parse(const char *file, const char *text, size_t len,
	    struct cm_policy **out, char *err, size_t errlen) CM_WUR;

/*
 * The line of FIELD, a path as errors name it ("purposes[0].lawful_basis"),
 * in the text P was parsed from: the line of the field's value, or of the
 * deepest enclosing value that exists (a missing field is reported at the
 * object that lacks it); 1 for a path that cannot be read.
 */
int	cm_policy_line(const struct cm_policy *, const char *field);

/* Frees a policy; accepts NULL. */
void	cm_policy_free(struct cm_policy *);

/* Index of the purpose / channel called ID, or -1. */
int	cm_policy_purpose_index(const struct cm_policy *, const char *id);
int	cm_policy_channel_index(const struct cm_policy *, const char *id);
int	cm_policy_topic_index(const struct cm_policy *, const char *id);
int	cm_policy_frequency_index(const struct cm_policy *, const char *id);

/*
 * Whether channel index CHANNEL reaches people through identifiers of TYPE
 * (an email bounce stops the email channel; a phone bounce sms and phone):
 * the channel's "identifier_types" in the policy, or when it has none
 * email→email; sms, phone→phone; push→device; no type for the others.
 */
bool	cm_policy_channel_uses_type(const struct cm_policy *, size_t channel,
	    const char *type);

/* The policy's name for a lawful basis ("consent", …). */
const char *cm_lawful_basis_name(enum cm_lawful_basis);

#endif
