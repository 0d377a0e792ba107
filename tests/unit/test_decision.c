/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the consent decision (src/core/decision.c, SPEC §6).
 * cm_decide is checked table-driven: every reason is reachable (suppressed,
 * unknown_subject, restricted, objected, paused, consent, stale_notice,
 * withdrawn, no_consent, holdout, legitimate_interest, soft_opt_in,
 * contract, legal_obligation, error), the rules apply in order (facts on
 * which two or more rules would fire decide by the earlier one), marketing
 * and non-marketing purposes are told apart where the SPEC says so, of the
 * channel's and the all-channels event the one collected later stands
 * (ties: recorded later), a bounce stops only the channels of its
 * identifier type, a soft opt-in needs a grant made in the course of a
 * sale, and d_event points at the row decided on (NULL for rules 1-4).
 * Also: cm_decision_latest, cm_consent_state_parse/name, the subject state
 * names (cm_subject_state_parse/name),
 * cm_consent_method_valid (the ten methods and which are first-party) and
 * cm_holdout_member (share of a generated population, stability,
 * dependence on the purpose id) with real keys in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "consentd/crypto.h"
#include "consentd/decision.h"
#include "consentd/policy.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define NOW		INT64_C(1700000000000000)
#define HOUR_US		INT64_C(3600000000)

/* ---- purposes ----------------------------------------------------------- */

/* Marketing by consent, min_valid_version 2, with a 10% holdout. */
static const struct cm_purpose p_mkt = {
	.pu_id = "marketing_email", .pu_title = "Offers", .pu_basis = CM_BASIS_CONSENT,
	.pu_marketing = true, .pu_channels = 1, .pu_version = 3,
	.pu_min_valid_version = 2, .pu_gpc = false, .pu_holdout_percent = 10,
};
/* The same without a holdout. */
static const struct cm_purpose p_mkt_nohold = {
	.pu_id = "marketing_sms", .pu_title = "SMS offers", .pu_basis = CM_BASIS_CONSENT,
	.pu_marketing = true, .pu_channels = 2, .pu_version = 3,
	.pu_min_valid_version = 2, .pu_gpc = false, .pu_holdout_percent = 0,
};
/* Consent but not direct marketing (e.g. personalisation). */
static const struct cm_purpose p_pers = {
	.pu_id = "personalisation", .pu_title = "Personalisation",
	.pu_basis = CM_BASIS_CONSENT, .pu_marketing = false, .pu_channels = 1,
	.pu_version = 2, .pu_min_valid_version = 2, .pu_gpc = true,
	.pu_holdout_percent = 0,
};
static const struct cm_purpose p_li = {
	.pu_id = "recommendations", .pu_title = "Recommendations",
	.pu_basis = CM_BASIS_LEGITIMATE_INTEREST, .pu_marketing = true,
	.pu_channels = 1, .pu_version = 1, .pu_min_valid_version = 1,
	.pu_gpc = false, .pu_holdout_percent = 0,
};
static const struct cm_purpose p_soi = {
	.pu_id = "similar_products", .pu_title = "Similar products",
	.pu_basis = CM_BASIS_SOFT_OPT_IN, .pu_marketing = true, .pu_channels = 1,
	.pu_version = 1, .pu_min_valid_version = 1, .pu_gpc = false,
	.pu_holdout_percent = 0,
};
static const struct cm_purpose p_contract = {
	.pu_id = "order_updates", .pu_title = "Order updates",
	.pu_basis = CM_BASIS_CONTRACT, .pu_marketing = false, .pu_channels = 3,
	.pu_version = 1, .pu_min_valid_version = 1, .pu_gpc = false,
	.pu_holdout_percent = 0,
};
static const struct cm_purpose p_legal = {
	.pu_id = "recall_notices", .pu_title = "Product recalls",
	.pu_basis = CM_BASIS_LEGAL_OBLIGATION, .pu_marketing = false,
	.pu_channels = 3, .pu_version = 1, .pu_min_valid_version = 1,
	.pu_gpc = false, .pu_holdout_percent = 0,
};

/* ---- rows --------------------------------------------------------------- */

#define ROW(st, ver, seq, id) { .cr_present = true, .cr_state = (st),	\
	.cr_notice_version = (ver), .cr_seq = (seq), .cr_event_id = id,	\
	.cr_collected_us = NOW - (100 - (seq)) * HOUR_US,		\
	.cr_recorded_us = NOW - (100 - (seq)) * HOUR_US, .cr_method = "web_form" }
/* A grant made in the course of a sale (what a soft opt-in rests on). */
#define SALE(v, s) { .cr_present = true, .cr_state = CM_CONSENT_GRANTED,	\
	.cr_notice_version = (v), .cr_seq = (s), .cr_event_id = "evt_sale",	\
	.cr_collected_us = NOW - (100 - (s)) * HOUR_US,			\
	.cr_recorded_us = NOW - (100 - (s)) * HOUR_US, .cr_method = "checkout",	\
	.cr_sale_ref = true }
#define NONE		{ .cr_present = false }
#define GRANT(v, s)	ROW(CM_CONSENT_GRANTED, v, s, "evt_grant")
#define WDRAW(v, s)	ROW(CM_CONSENT_WITHDRAWN, v, s, "evt_withdrawn")
#define REFUSE(v, s)	ROW(CM_CONSENT_REFUSED, v, s, "evt_refused")

/* Which row d_event must point at. */
enum ev_want { EV_NULL, EV_CH, EV_ALL, EV_ANY };

struct dcase {
	const char		*name;
	const struct cm_purpose	*purpose;
	const char		*suppressed;
	bool			 off_channel;	/* the bounce is on another channel's type */
	bool			 unknown;	/* df_known false */
	const char		*state;		/* as stored (parsed); NULL: "active" */
	bool			 objected;
	int64_t			 paused_until;
	struct cm_consent_row	 ch, all;
	bool			 in_holdout;
	/* expected */
	bool			 allow;
	const char		*reason;	/* NULL: any deny reason */
	enum ev_want		 ev;
};

#define FUTURE	(NOW + HOUR_US)
#define PAST	(NOW - HOUR_US)

static const struct dcase cases[] = {
	/* ---- rule 1: suppression list, unknown subject ---- */
	{ .name = "suppressed erased, marketing", .purpose = &p_mkt,
	  .suppressed = "erased", .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed erased, contract", .purpose = &p_contract,
	  .suppressed = "erased", .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed bounced, contract", .purpose = &p_contract,
	  .suppressed = "bounced", .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed bounced, legal obligation", .purpose = &p_legal,
	  .suppressed = "bounced", .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed bounced, non-marketing consent", .purpose = &p_pers,
	  .suppressed = "bounced", .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed unsubscribed, marketing", .purpose = &p_mkt,
	  .suppressed = "unsubscribed", .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed complained, marketing LI", .purpose = &p_li,
	  .suppressed = "complained", .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed manual, marketing soft opt-in", .purpose = &p_soi,
	  .suppressed = "manual", .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed unsubscribed, contract allowed", .purpose = &p_contract,
	  .suppressed = "unsubscribed", .ch = NONE, .all = NONE,
	  .allow = true, .reason = "contract", .ev = EV_ANY },
	{ .name = "suppressed complained, legal obligation allowed", .purpose = &p_legal,
	  .suppressed = "complained", .ch = NONE, .all = NONE,
	  .allow = true, .reason = "legal_obligation", .ev = EV_ANY },
	{ .name = "suppressed manual, non-marketing consent allowed", .purpose = &p_pers,
	  .suppressed = "manual", .ch = GRANT(2, 1), .all = NONE,
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "suppressed unsubscribed, non-marketing no consent", .purpose = &p_pers,
	  .suppressed = "unsubscribed", .ch = NONE, .all = NONE,
	  .allow = false, .reason = "no_consent", .ev = EV_NULL },
	{ .name = "unknown subject, marketing", .purpose = &p_mkt, .unknown = true,
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "unknown_subject", .ev = EV_NULL },
	{ .name = "unknown subject, contract", .purpose = &p_contract, .unknown = true,
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "unknown_subject", .ev = EV_NULL },
	{ .name = "unknown subject, rows present", .purpose = &p_mkt, .unknown = true,
	  .ch = GRANT(2, 1), .all = GRANT(2, 2),
	  .allow = false, .reason = "unknown_subject", .ev = EV_NULL },
	{ .name = "suppressed erased beats unknown subject", .purpose = &p_contract,
	  .suppressed = "erased", .unknown = true, .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed unsubscribed beats unknown subject (marketing)",
	  .purpose = &p_mkt, .suppressed = "unsubscribed", .unknown = true,
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "bounce on another channel's identifier type, contract allowed",
	  .purpose = &p_contract, .suppressed = "bounced", .off_channel = true,
	  .ch = NONE, .all = NONE,
	  .allow = true, .reason = "contract", .ev = EV_ANY },
	{ .name = "bounce on another channel's identifier type, marketing granted",
	  .purpose = &p_mkt_nohold, .suppressed = "bounced", .off_channel = true,
	  .ch = GRANT(2, 1), .all = NONE,
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "erased on another channel's identifier type still denies",
	  .purpose = &p_contract, .suppressed = "erased", .off_channel = true,
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "unsubscribed on another identifier type denies marketing",
	  .purpose = &p_mkt_nohold, .suppressed = "unsubscribed", .off_channel = true,
	  .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "unknown subject when suppression does not apply", .purpose = &p_contract,
	  .suppressed = "unsubscribed", .unknown = true, .ch = NONE, .all = NONE,
	  .allow = false, .reason = "unknown_subject", .ev = EV_NULL },

	/* ---- rule 2: subject state ---- */
	{ .name = "erased subject, contract", .purpose = &p_contract, .state = "erased",
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "erased subject, granted marketing", .purpose = &p_mkt, .state = "erased",
	  .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "restricted, contract", .purpose = &p_contract, .state = "restricted",
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "restricted", .ev = EV_NULL },
	{ .name = "restricted, legal obligation", .purpose = &p_legal, .state = "restricted",
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "restricted", .ev = EV_NULL },
	{ .name = "restricted, granted marketing", .purpose = &p_mkt, .state = "restricted",
	  .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "restricted", .ev = EV_NULL },
	{ .name = "suppressed beats restricted", .purpose = &p_mkt,
	  .suppressed = "unsubscribed", .state = "restricted", .ch = GRANT(2, 1),
	  .all = NONE, .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "suppressed bounced beats restricted (contract)", .purpose = &p_contract,
	  .suppressed = "bounced", .state = "restricted", .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "restricted when suppression does not apply", .purpose = &p_contract,
	  .suppressed = "manual", .state = "restricted", .ch = NONE, .all = NONE,
	  .allow = false, .reason = "restricted", .ev = EV_NULL },
	{ .name = "restricted beats objected", .purpose = &p_mkt, .state = "restricted",
	  .objected = true, .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "restricted", .ev = EV_NULL },
	{ .name = "erased beats objected and paused", .purpose = &p_mkt, .state = "erased",
	  .objected = true, .paused_until = FUTURE, .ch = NONE, .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },
	{ .name = "restricted beats paused", .purpose = &p_li, .state = "restricted",
	  .paused_until = FUTURE, .ch = NONE, .all = NONE,
	  .allow = false, .reason = "restricted", .ev = EV_NULL },
	{ .name = "unknown state string", .purpose = &p_contract, .state = "deleted",
	  .ch = NONE, .all = NONE, .allow = false, .reason = NULL, .ev = EV_NULL },
	{ .name = "empty state string", .purpose = &p_mkt, .state = "",
	  .ch = GRANT(2, 1), .all = NONE, .allow = false, .reason = NULL, .ev = EV_NULL },
	{ .name = "state compared exactly", .purpose = &p_legal, .state = "Active",
	  .ch = NONE, .all = NONE, .allow = false, .reason = NULL, .ev = EV_NULL },

	/* ---- rule 3: objection ---- */
	{ .name = "objected, marketing consent", .purpose = &p_mkt, .objected = true,
	  .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "objected", .ev = EV_NULL },
	{ .name = "objected, marketing LI", .purpose = &p_li, .objected = true,
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "objected", .ev = EV_NULL },
	{ .name = "objected, marketing soft opt-in", .purpose = &p_soi, .objected = true,
	  .ch = SALE(1, 1), .all = NONE,
	  .allow = false, .reason = "objected", .ev = EV_NULL },
	{ .name = "objected, non-marketing consent allowed", .purpose = &p_pers,
	  .objected = true, .ch = GRANT(2, 1), .all = NONE,
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "objected, contract allowed", .purpose = &p_contract, .objected = true,
	  .ch = NONE, .all = NONE,
	  .allow = true, .reason = "contract", .ev = EV_ANY },
	{ .name = "objected beats paused", .purpose = &p_mkt, .objected = true,
	  .paused_until = FUTURE, .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "objected", .ev = EV_NULL },
	{ .name = "objected beats no consent", .purpose = &p_mkt_nohold, .objected = true,
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "objected", .ev = EV_NULL },
	{ .name = "suppressed beats objected", .purpose = &p_mkt, .objected = true,
	  .suppressed = "complained", .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "suppressed", .ev = EV_NULL },

	/* ---- rule 4: pause ---- */
	{ .name = "paused, marketing consent", .purpose = &p_mkt, .paused_until = FUTURE,
	  .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "paused", .ev = EV_NULL },
	{ .name = "paused, marketing LI", .purpose = &p_li, .paused_until = FUTURE,
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "paused", .ev = EV_NULL },
	{ .name = "paused one microsecond ahead", .purpose = &p_mkt_nohold,
	  .paused_until = NOW + 1, .ch = GRANT(2, 1), .all = NONE,
	  .allow = false, .reason = "paused", .ev = EV_NULL },
	{ .name = "past pause ignored", .purpose = &p_mkt, .paused_until = PAST,
	  .ch = GRANT(2, 1), .all = NONE,
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "pause ending now ignored", .purpose = &p_mkt_nohold,
	  .paused_until = NOW, .ch = GRANT(2, 1), .all = NONE,
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "paused, non-marketing consent allowed", .purpose = &p_pers,
	  .paused_until = FUTURE, .ch = NONE, .all = GRANT(2, 1),
	  .allow = true, .reason = "consent", .ev = EV_ALL },
	{ .name = "paused, contract allowed", .purpose = &p_contract,
	  .paused_until = FUTURE, .ch = NONE, .all = NONE,
	  .allow = true, .reason = "contract", .ev = EV_ANY },
	{ .name = "paused beats no consent", .purpose = &p_mkt, .paused_until = FUTURE,
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "paused", .ev = EV_NULL },
	{ .name = "paused beats withdrawn", .purpose = &p_mkt, .paused_until = FUTURE,
	  .ch = WDRAW(2, 1), .all = NONE,
	  .allow = false, .reason = "paused", .ev = EV_NULL },
	{ .name = "paused beats holdout", .purpose = &p_mkt, .paused_until = FUTURE,
	  .ch = GRANT(2, 1), .all = NONE, .in_holdout = true,
	  .allow = false, .reason = "paused", .ev = EV_NULL },

	/* ---- rule 5: consent ---- */
	{ .name = "channel grant", .purpose = &p_mkt, .ch = GRANT(2, 1), .all = NONE,
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "channel grant on a newer notice", .purpose = &p_mkt,
	  .ch = GRANT(3, 1), .all = NONE,
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "all-channels grant", .purpose = &p_mkt, .ch = NONE, .all = GRANT(2, 4),
	  .allow = true, .reason = "consent", .ev = EV_ALL },
	{ .name = "stale notice", .purpose = &p_mkt, .ch = GRANT(1, 1), .all = NONE,
	  .allow = false, .reason = "stale_notice", .ev = EV_CH },
	{ .name = "stale notice, all channels", .purpose = &p_mkt_nohold, .ch = NONE,
	  .all = GRANT(1, 1),
	  .allow = false, .reason = "stale_notice", .ev = EV_ALL },
	{ .name = "withdrawn", .purpose = &p_mkt, .ch = WDRAW(2, 1), .all = NONE,
	  .allow = false, .reason = "withdrawn", .ev = EV_CH },
	{ .name = "refused", .purpose = &p_mkt, .ch = REFUSE(2, 1), .all = NONE,
	  .allow = false, .reason = "withdrawn", .ev = EV_CH },
	{ .name = "refused, all channels", .purpose = &p_pers, .ch = NONE,
	  .all = REFUSE(2, 1),
	  .allow = false, .reason = "withdrawn", .ev = EV_ALL },
	{ .name = "no consent", .purpose = &p_mkt, .ch = NONE, .all = NONE,
	  .allow = false, .reason = "no_consent", .ev = EV_NULL },
	{ .name = "all-channels withdrawal newer than channel grant", .purpose = &p_mkt,
	  .ch = GRANT(2, 3), .all = WDRAW(2, 5),
	  .allow = false, .reason = "withdrawn", .ev = EV_ALL },
	{ .name = "channel grant newer than all-channels withdrawal", .purpose = &p_mkt,
	  .ch = GRANT(2, 6), .all = WDRAW(2, 5),
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "all-channels grant newer than channel withdrawal", .purpose = &p_mkt,
	  .ch = WDRAW(2, 4), .all = GRANT(2, 7),
	  .allow = true, .reason = "consent", .ev = EV_ALL },
	{ .name = "channel withdrawal newer than all-channels grant", .purpose = &p_mkt,
	  .ch = WDRAW(2, 8), .all = GRANT(2, 7),
	  .allow = false, .reason = "withdrawn", .ev = EV_CH },
	{ .name = "all-channels refusal newer than channel grant", .purpose = &p_pers,
	  .ch = GRANT(2, 2), .all = REFUSE(2, 9),
	  .allow = false, .reason = "withdrawn", .ev = EV_ALL },
	{ .name = "newer all-channels grant on a stale notice", .purpose = &p_mkt,
	  .ch = GRANT(3, 2), .all = GRANT(1, 3),
	  .allow = false, .reason = "stale_notice", .ev = EV_ALL },
	{ .name = "newer channel grant on a current notice", .purpose = &p_mkt,
	  .ch = GRANT(2, 4), .all = GRANT(1, 3),
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "holdout", .purpose = &p_mkt, .ch = GRANT(2, 1), .all = NONE,
	  .in_holdout = true,
	  .allow = false, .reason = "holdout", .ev = EV_CH },
	{ .name = "holdout, all-channels grant", .purpose = &p_mkt, .ch = WDRAW(2, 1),
	  .all = GRANT(2, 2), .in_holdout = true,
	  .allow = false, .reason = "holdout", .ev = EV_ALL },
	{ .name = "not in holdout", .purpose = &p_mkt, .ch = GRANT(2, 1), .all = NONE,
	  .in_holdout = false,
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "holdout ignored at 0 percent", .purpose = &p_mkt_nohold,
	  .ch = GRANT(2, 1), .all = NONE, .in_holdout = true,
	  .allow = true, .reason = "consent", .ev = EV_CH },
	{ .name = "stale notice beats holdout", .purpose = &p_mkt, .ch = GRANT(1, 1),
	  .all = NONE, .in_holdout = true,
	  .allow = false, .reason = "stale_notice", .ev = EV_CH },
	{ .name = "withdrawn beats holdout", .purpose = &p_mkt, .ch = WDRAW(2, 1),
	  .all = NONE, .in_holdout = true,
	  .allow = false, .reason = "withdrawn", .ev = EV_CH },
	{ .name = "no consent beats holdout", .purpose = &p_mkt, .ch = NONE, .all = NONE,
	  .in_holdout = true,
	  .allow = false, .reason = "no_consent", .ev = EV_NULL },

	/* ---- rule 5: legitimate interest, soft opt-in ---- */
	{ .name = "LI, no events", .purpose = &p_li, .ch = NONE, .all = NONE,
	  .allow = true, .reason = "legitimate_interest", .ev = EV_ANY },
	{ .name = "LI, granted", .purpose = &p_li, .ch = GRANT(1, 1), .all = NONE,
	  .allow = true, .reason = "legitimate_interest", .ev = EV_ANY },
	{ .name = "LI, withdrawn", .purpose = &p_li, .ch = WDRAW(1, 1), .all = NONE,
	  .allow = false, .reason = "withdrawn", .ev = EV_CH },
	{ .name = "LI, refused all channels", .purpose = &p_li, .ch = NONE,
	  .all = REFUSE(1, 1),
	  .allow = false, .reason = "withdrawn", .ev = EV_ALL },
	{ .name = "LI, all-channels withdrawal newer than grant", .purpose = &p_li,
	  .ch = GRANT(1, 2), .all = WDRAW(1, 3),
	  .allow = false, .reason = "withdrawn", .ev = EV_ALL },
	{ .name = "LI, grant newer than withdrawal", .purpose = &p_li,
	  .ch = GRANT(1, 4), .all = WDRAW(1, 3),
	  .allow = true, .reason = "legitimate_interest", .ev = EV_ANY },
	{ .name = "soft opt-in, no events: no relationship", .purpose = &p_soi,
	  .ch = NONE, .all = NONE,
	  .allow = false, .reason = "no_relationship", .ev = EV_NULL },
	{ .name = "soft opt-in, a grant without a sale", .purpose = &p_soi,
	  .ch = GRANT(1, 1), .all = NONE,
	  .allow = false, .reason = "no_relationship", .ev = EV_CH },
	{ .name = "soft opt-in, a grant in the course of a sale", .purpose = &p_soi,
	  .ch = NONE, .all = SALE(1, 1),
	  .allow = true, .reason = "soft_opt_in", .ev = EV_ALL },
	{ .name = "soft opt-in, a later grant without a sale replaces it", .purpose = &p_soi,
	  .ch = GRANT(1, 3), .all = SALE(1, 2),
	  .allow = false, .reason = "no_relationship", .ev = EV_CH },
	{ .name = "soft opt-in, only a refusal of something else", .purpose = &p_soi,
	  .ch = NONE, .all = NONE, .objected = false,
	  .allow = false, .reason = "no_relationship", .ev = EV_NULL },
	{ .name = "soft opt-in, withdrawn", .purpose = &p_soi, .ch = WDRAW(1, 1),
	  .all = NONE,
	  .allow = false, .reason = "withdrawn", .ev = EV_CH },
	{ .name = "soft opt-in, refused", .purpose = &p_soi, .ch = REFUSE(1, 1),
	  .all = NONE,
	  .allow = false, .reason = "withdrawn", .ev = EV_CH },
	{ .name = "soft opt-in, channel withdrawal newer than all grant", .purpose = &p_soi,
	  .ch = WDRAW(1, 6), .all = SALE(1, 5),
	  .allow = false, .reason = "withdrawn", .ev = EV_CH },

	/* ---- rule 5: contract, legal obligation ---- */
	{ .name = "contract, no events", .purpose = &p_contract, .ch = NONE, .all = NONE,
	  .allow = true, .reason = "contract", .ev = EV_ANY },
	{ .name = "contract, withdrawn", .purpose = &p_contract, .ch = WDRAW(1, 1),
	  .all = NONE,
	  .allow = true, .reason = "contract", .ev = EV_ANY },
	{ .name = "contract, refused all channels", .purpose = &p_contract, .ch = NONE,
	  .all = REFUSE(1, 2),
	  .allow = true, .reason = "contract", .ev = EV_ANY },
	{ .name = "legal obligation, no events", .purpose = &p_legal, .ch = NONE,
	  .all = NONE,
	  .allow = true, .reason = "legal_obligation", .ev = EV_ANY },
	{ .name = "legal obligation, withdrawn", .purpose = &p_legal, .ch = GRANT(1, 1),
	  .all = WDRAW(1, 2),
	  .allow = true, .reason = "legal_obligation", .ev = EV_ANY },
};

/* ---- helpers ------------------------------------------------------------ */

static struct cm_supp_fact case_supp;

static void
facts_from_case(const struct dcase *c, struct cm_decision_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->df_purpose = c->purpose;
	if (c->suppressed != NULL) {
		case_supp.sf_reason = c->suppressed;
		case_supp.sf_channel_hit = !c->off_channel;
		f->df_supp = &case_supp;
		f->df_nsupp = 1;
	}
	f->df_known = !c->unknown;
	(void)cm_subject_state_parse(c->state != NULL ? c->state : "active", &f->df_state);
	f->df_objected = c->objected;
	f->df_paused_until = c->paused_until;
	f->df_now = NOW;
	f->df_channel = c->ch;
	f->df_all = c->all;
	f->df_in_holdout = c->in_holdout;
}

static const char *
ev_name(const struct cm_decision_facts *f, const struct cm_consent_row *ev)
{
	if (ev == NULL)
		return "NULL";
	if (ev == &f->df_channel)
		return "channel";
	if (ev == &f->df_all)
		return "all";
	return "elsewhere";
}

/* Runs cm_decide on F over a decision filled with garbage. */
static void
decide(const struct cm_decision_facts *f, struct cm_decision *d)
{
	memset(d, 0x5a, sizeof(*d));
	cm_decide(f, d);
}

static int
check_case(const struct dcase *c)
{
	struct cm_decision_facts f;
	struct cm_decision d;
	const struct cm_consent_row *want_ev = NULL;
	int bad = 0;

	facts_from_case(c, &f);
	decide(&f, &d);
	if (d.d_reason == NULL) {
		print_error("case \"%s\": reason is NULL\n", c->name);
		return 1;
	}
	if (d.d_allow != c->allow) {
		print_error("case \"%s\": got %s, want %s\n", c->name,
		    d.d_allow ? "allow" : "deny", c->allow ? "allow" : "deny");
		bad = 1;
	}
	if (c->reason != NULL && strcmp(d.d_reason, c->reason) != 0) {
		print_error("case \"%s\": reason \"%s\", want \"%s\"\n", c->name,
		    d.d_reason, c->reason);
		bad = 1;
	}
	if (c->reason == NULL && !c->allow && (strcmp(d.d_reason, "consent") == 0 ||
	    strcmp(d.d_reason, "contract") == 0 ||
	    strcmp(d.d_reason, "legal_obligation") == 0)) {
		print_error("case \"%s\": deny with an allow reason \"%s\"\n", c->name,
		    d.d_reason);
		bad = 1;
	}
	switch (c->ev) {
	case EV_ANY:
		if (d.d_event != NULL && d.d_event != &f.df_channel &&
		    d.d_event != &f.df_all) {
			print_error("case \"%s\": d_event points elsewhere\n", c->name);
			bad = 1;
		}
		return bad;
	case EV_NULL:
		want_ev = NULL;
		break;
	case EV_CH:
		want_ev = &f.df_channel;
		break;
	case EV_ALL:
		want_ev = &f.df_all;
		break;
	}
	if (d.d_event != want_ev) {
		print_error("case \"%s\": d_event is %s, want %s\n", c->name,
		    ev_name(&f, d.d_event), ev_name(&f, want_ev));
		bad = 1;
	}
	return bad;
}

/* ---- cm_decide ---------------------------------------------------------- */

static void
test_decide_table(void **state)
{
	size_t i;
	int bad = 0;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		bad += check_case(&cases[i]);
	if (bad != 0)
		fail_msg("%d of %zu decision cases failed", bad, NELEM(cases));
}

/* Every reason of SPEC §6 is produced by at least one case of the table. */
static void
test_decide_every_reason_reachable(void **state)
{
	static const char *const reasons[] = {
		"suppressed", "unknown_subject", "restricted", "objected", "paused",
		"consent", "stale_notice", "withdrawn", "no_consent", "holdout",
		"legitimate_interest", "soft_opt_in", "no_relationship", "contract",
		"legal_obligation",
	};
	struct cm_decision_facts f;
	struct cm_decision d;
	size_t i, j;
	bool seen;

	(void)state;
	for (i = 0; i < NELEM(reasons); i++) {
		seen = false;
		for (j = 0; j < NELEM(cases) && !seen; j++) {
			facts_from_case(&cases[j], &f);
			decide(&f, &d);
			seen = d.d_reason != NULL && strcmp(d.d_reason, reasons[i]) == 0;
		}
		if (!seen)
			fail_msg("reason \"%s\" never produced", reasons[i]);
	}
}

static void
test_decide_null_purpose(void **state)
{
	struct cm_decision_facts f;
	struct cm_decision d;
	const struct cm_consent_row g = GRANT(2, 1);

	(void)state;
	memset(&f, 0, sizeof(f));
	f.df_purpose = NULL;
	f.df_known = true;
	f.df_state = CM_SUBJECT_ACTIVE;
	f.df_now = NOW;
	f.df_channel = g;
	decide(&f, &d);
	assert_false(d.d_allow);
	assert_non_null(d.d_reason);
	assert_string_equal(d.d_reason, "error");
	assert_null(d.d_event);

	/* Even with a suppression that would otherwise decide. */
	{
		static const struct cm_supp_fact erased = { "erased", true };

		f.df_supp = &erased;
		f.df_nsupp = 1;
	}
	decide(&f, &d);
	assert_false(d.d_allow);
	assert_string_equal(d.d_reason, "error");
}

/* d_event points at the row decided on, with that row's contents. */
static void
test_decide_event_contents(void **state)
{
	struct cm_decision_facts f;
	struct cm_decision d;
	const struct cm_consent_row ch = ROW(CM_CONSENT_GRANTED, 2, 10, "evt_channel");
	const struct cm_consent_row all = ROW(CM_CONSENT_WITHDRAWN, 2, 11, "evt_all");

	(void)state;
	memset(&f, 0, sizeof(f));
	f.df_purpose = &p_mkt;
	f.df_known = true;
	f.df_state = CM_SUBJECT_ACTIVE;
	f.df_now = NOW;
	f.df_channel = ch;
	f.df_all = all;
	decide(&f, &d);
	assert_false(d.d_allow);
	assert_string_equal(d.d_reason, "withdrawn");
	assert_ptr_equal(d.d_event, &f.df_all);
	assert_string_equal(d.d_event->cr_event_id, "evt_all");
	assert_int_equal(d.d_event->cr_seq, 11);

	/* Collected at the same moment: the later recorded decides. */
	f.df_channel.cr_collected_us = f.df_all.cr_collected_us;
	f.df_channel.cr_seq = 12;
	decide(&f, &d);
	assert_true(d.d_allow);
	assert_string_equal(d.d_reason, "consent");
	assert_ptr_equal(d.d_event, &f.df_channel);
	assert_string_equal(d.d_event->cr_event_id, "evt_channel");

	/* An absent row is never decided on, whatever its other fields say. */
	f.df_all.cr_present = false;
	f.df_all.cr_seq = 99;
	f.df_all.cr_state = CM_CONSENT_WITHDRAWN;
	decide(&f, &d);
	assert_true(d.d_allow);
	assert_ptr_equal(d.d_event, &f.df_channel);
	f.df_channel.cr_present = false;
	decide(&f, &d);
	assert_false(d.d_allow);
	assert_string_equal(d.d_reason, "no_consent");
	assert_null(d.d_event);
}

/* cm_decide reads its facts only: the same facts give the same answer. */
static void
test_decide_pure(void **state)
{
	struct cm_decision_facts f, copy;
	struct cm_decision d1, d2;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		facts_from_case(&cases[i], &f);
		memcpy(&copy, &f, sizeof(f));
		decide(&f, &d1);
		assert_memory_equal(&copy, &f, sizeof(f));
		decide(&f, &d2);
		assert_int_equal(d1.d_allow, d2.d_allow);
		assert_ptr_equal(d1.d_reason, d2.d_reason);
		assert_ptr_equal(d1.d_event, d2.d_event);
	}
}

/* ---- cm_decision_latest ------------------------------------------------- */

static void
test_latest(void **state)
{
	struct cm_consent_row ch = GRANT(2, 5), all = WDRAW(2, 3);
	const struct cm_consent_row none = NONE;

	(void)state;
	assert_ptr_equal(cm_decision_latest(&ch, &all), &ch);
	all.cr_seq = 7;
	all.cr_collected_us = NOW - 10 * HOUR_US;
	assert_ptr_equal(cm_decision_latest(&ch, &all), &all);

	/*
	 * collected_at decides, not the order of recording: an all-channels
	 * grant recorded later but collected earlier (a back-filled import)
	 * does not outrank the channel's withdrawal.
	 */
	ch.cr_state = CM_CONSENT_WITHDRAWN;
	ch.cr_collected_us = NOW - HOUR_US;
	all.cr_state = CM_CONSENT_GRANTED;
	all.cr_seq = 1000;
	all.cr_collected_us = NOW - 48 * HOUR_US;
	assert_ptr_equal(cm_decision_latest(&ch, &all), &ch);
	/* Recorded time plays no part. */
	ch.cr_recorded_us = NOW - 90 * HOUR_US;
	all.cr_recorded_us = NOW;
	assert_ptr_equal(cm_decision_latest(&ch, &all), &ch);
	/* A tie on collected_at goes to the later recorded. */
	all.cr_collected_us = ch.cr_collected_us;
	assert_ptr_equal(cm_decision_latest(&ch, &all), &all);
	ch.cr_seq = 1001;
	assert_ptr_equal(cm_decision_latest(&ch, &all), &ch);
	assert_true(cm_consent_after(2, 1, 1, 9));
	assert_false(cm_consent_after(1, 9, 2, 1));
	assert_true(cm_consent_after(5, 3, 5, 2));
	assert_false(cm_consent_after(5, 2, 5, 3));

	/* One missing. */
	assert_ptr_equal(cm_decision_latest(&ch, &none), &ch);
	assert_ptr_equal(cm_decision_latest(&none, &all), &all);
	/* A missing row that would come later still does not count. */
	ch.cr_seq = 1;
	{
		struct cm_consent_row ghost = WDRAW(2, 500);

		ghost.cr_present = false;
		ghost.cr_collected_us = NOW;
		assert_ptr_equal(cm_decision_latest(&ch, &ghost), &ch);
		assert_ptr_equal(cm_decision_latest(&ghost, &all), &all);
		assert_null(cm_decision_latest(&ghost, &ghost));
	}
	/* Both missing. */
	assert_null(cm_decision_latest(&none, &none));
}

/* ---- states and methods ------------------------------------------------- */

static void
test_state_names(void **state)
{
	static const struct {
		enum cm_consent_state	 st;
		const char		*name;
	} t[] = {
		{ CM_CONSENT_GRANTED, "granted" },
		{ CM_CONSENT_WITHDRAWN, "withdrawn" },
		{ CM_CONSENT_REFUSED, "refused" },
	};
	static const char *const bad[] = {
		"", "Granted", "GRANTED", "grant", "granted ", " granted", "withdraw",
		"refuse", "revoked", "unknown", "granted\n",
	};
	enum cm_consent_state out;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(t); i++) {
		assert_string_equal(cm_consent_state_name(t[i].st), t[i].name);
		out = (enum cm_consent_state)-1;
		assert_int_equal(cm_consent_state_parse(t[i].name, &out), 0);
		assert_int_equal(out, t[i].st);
		/* Round trip. */
		assert_int_equal(cm_consent_state_parse(cm_consent_state_name(t[i].st),
		    &out), 0);
		assert_int_equal(out, t[i].st);
	}
	for (i = 0; i < NELEM(bad); i++) {
		out = CM_CONSENT_REFUSED;
		if (cm_consent_state_parse(bad[i], &out) != -1)
			fail_msg("state \"%s\" accepted", bad[i]);
		assert_int_equal(out, CM_CONSENT_REFUSED);
	}
	/* Out of range: a name, not a crash, and not a valid state's name. */
	{
		const char *n = cm_consent_state_name((enum cm_consent_state)3);

		assert_non_null(n);
		assert_int_equal(cm_consent_state_parse(n, &out), -1);
		n = cm_consent_state_name((enum cm_consent_state)1000);
		assert_non_null(n);
		assert_int_equal(cm_consent_state_parse(n, &out), -1);
	}
}

static void
test_subject_state_names(void **state)
{
	static const struct {
		enum cm_subject_state	 st;
		const char		*name;
	} t[] = {
		{ CM_SUBJECT_ACTIVE, "active" },
		{ CM_SUBJECT_RESTRICTED, "restricted" },
		{ CM_SUBJECT_ERASED, "erased" },
	};
	static const char *const bad[] = {
		"", "Active", "ACTIVE", "restrict", "erased ", " active", "deleted",
		"invalid", "merged", "active\n",
	};
	enum cm_subject_state out;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(t); i++) {
		assert_string_equal(cm_subject_state_name(t[i].st), t[i].name);
		out = CM_SUBJECT_INVALID;
		assert_int_equal(cm_subject_state_parse(t[i].name, &out), 0);
		assert_int_equal(out, t[i].st);
	}
	/* Anything else parses as INVALID, which a decision denies on. */
	for (i = 0; i < NELEM(bad); i++) {
		out = CM_SUBJECT_ACTIVE;
		if (cm_subject_state_parse(bad[i], &out) != -1)
			fail_msg("subject state \"%s\" accepted", bad[i]);
		assert_int_equal(out, CM_SUBJECT_INVALID);
	}
	out = CM_SUBJECT_ACTIVE;
	assert_int_equal(cm_subject_state_parse(NULL, &out), -1);
	assert_int_equal(out, CM_SUBJECT_INVALID);
	assert_string_equal(cm_subject_state_name(CM_SUBJECT_INVALID), "invalid");
	assert_string_equal(cm_subject_state_name((enum cm_subject_state)1000), "invalid");
}

static void
test_methods(void **state)
{
	static const struct {
		const char	*m;
		bool		 first_party;
	} t[] = {
		{ "web_form", true }, { "checkout", true },
		{ "preference_center", true }, { "email_link", false },
		{ "double_opt_in", true }, { "in_store", true }, { "phone", false },
		{ "api", false }, { "import", false }, { "gpc", false },
	};
	static const char *const bad[] = {
		"", "Web_Form", "WEB_FORM", "web-form", "webform", "web_form ", "email",
		"sms", "post", "preference_centre", "double_optin", "store", "GPC",
		"manual", "unknown", "api\n",
	};
	bool fp;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(t); i++) {
		fp = !t[i].first_party;
		if (!cm_consent_method_valid(t[i].m, &fp))
			fail_msg("method \"%s\" rejected", t[i].m);
		if (fp != t[i].first_party)
			fail_msg("method \"%s\": first_party %d, want %d", t[i].m, fp,
			    t[i].first_party);
		/* FIRST_PARTY may be NULL. */
		assert_true(cm_consent_method_valid(t[i].m, NULL));
	}
	for (i = 0; i < NELEM(bad); i++) {
		fp = false;
		if (cm_consent_method_valid(bad[i], &fp))
			fail_msg("method \"%s\" accepted", bad[i]);
		assert_false(cm_consent_method_valid(bad[i], NULL));
	}
}

/* ---- cm_holdout_member -------------------------------------------------- */

#define NSUBJECTS	20000

struct keyed {
	char		 dir[64];
	struct cm_keys	*keys;
};

static int
keys_setup(void **state)
{
	struct keyed *kd;
	char err[512];

	kd = calloc(1, sizeof(*kd));
	if (kd == NULL)
		return -1;
	snprintf(kd->dir, sizeof(kd->dir), "%s", "/tmp/consentd-test-decision-XXXXXX");
	if (mkdtemp(kd->dir) == NULL) {
		free(kd);
		return -1;
	}
	if (cm_keys_create(kd->dir, err, sizeof(err)) != CM_OK ||
	    cm_keys_load(kd->dir, &kd->keys, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "keys: %s\n", err);
		rmdir(kd->dir);
		free(kd);
		return -1;
	}
	*state = kd;
	return 0;
}

static int
keys_teardown(void **state)
{
	struct keyed *kd = *state;
	char p[128];
	int rc = 0;

	if (kd == NULL)
		return 0;
	cm_keys_free(kd->keys);
	snprintf(p, sizeof(p), "%s/%s", kd->dir, CM_MASTER_KEY_FILE);
	unlink(p);
	snprintf(p, sizeof(p), "%s/%s", kd->dir, CM_AUDIT_KEY_FILE);
	unlink(p);
	if (rmdir(kd->dir) != 0)
		rc = -1;
	free(kd);
	return rc;
}

/* "sub_" + 26 lower-case base32 characters (a-z2-7) built from N. */
static void
subject_id(char out[31], unsigned n)
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	int i;

	memcpy(out, "sub_", 4);
	for (i = 25; i >= 0; i--) {
		out[4 + i] = b32[n % 32];
		n /= 32;
	}
	out[30] = '\0';
}

static struct cm_purpose
purpose_with(const char *id, int percent)
{
	struct cm_purpose p;

	memset(&p, 0, sizeof(p));
	p.pu_id = id;
	p.pu_title = id;
	p.pu_basis = CM_BASIS_CONSENT;
	p.pu_marketing = true;
	p.pu_channels = 1;
	p.pu_version = 1;
	p.pu_min_valid_version = 1;
	p.pu_holdout_percent = percent;
	return p;
}

static unsigned
count_members(const struct cm_keys *k, const struct cm_purpose *p)
{
	char id[31];
	unsigned i, n = 0;

	for (i = 0; i < NSUBJECTS; i++) {
		subject_id(id, i);
		if (cm_holdout_member(k, id, p))
			n++;
	}
	return n;
}

static void
test_subject_id_shape(void **state)
{
	char id[31];

	(void)state;
	subject_id(id, 0);
	assert_string_equal(id, "sub_aaaaaaaaaaaaaaaaaaaaaaaaaa");
	subject_id(id, 33);
	assert_string_equal(id, "sub_aaaaaaaaaaaaaaaaaaaaaaaabb");
	subject_id(id, 31);
	assert_string_equal(id, "sub_aaaaaaaaaaaaaaaaaaaaaaaaa7");
	assert_int_equal(strlen(id), 30);
}

static void
test_holdout_share_10(void **state)
{
	const struct keyed *kd = *state;
	struct cm_purpose p = purpose_with("marketing_email", 10);
	unsigned n = count_members(kd->keys, &p);

	if (n < NSUBJECTS * 8 / 100 || n > NSUBJECTS * 12 / 100)
		fail_msg("10%% holdout holds %u of %u", n, NSUBJECTS);
}

static void
test_holdout_share_50(void **state)
{
	const struct keyed *kd = *state;
	struct cm_purpose p = purpose_with("marketing_email", 50);
	unsigned n = count_members(kd->keys, &p);

	if (n < NSUBJECTS * 47 / 100 || n > NSUBJECTS * 53 / 100)
		fail_msg("50%% holdout holds %u of %u", n, NSUBJECTS);
}

static void
test_holdout_zero(void **state)
{
	const struct keyed *kd = *state;
	struct cm_purpose p = purpose_with("marketing_email", 0);

	assert_int_equal(count_members(kd->keys, &p), 0);
}

static void
test_holdout_stable(void **state)
{
	const struct keyed *kd = *state;
	struct cm_purpose p = purpose_with("marketing_email", 10);
	struct cm_purpose same = purpose_with("marketing_email", 10);
	char id[31];
	unsigned i;
	bool a;

	/* Another struct with the same id and share, other fields changed. */
	same.pu_title = "Other title";
	same.pu_version = 7;
	same.pu_min_valid_version = 5;
	for (i = 0; i < NSUBJECTS; i++) {
		subject_id(id, i);
		a = cm_holdout_member(kd->keys, id, &p);
		if (cm_holdout_member(kd->keys, id, &p) != a ||
		    cm_holdout_member(kd->keys, id, &same) != a)
			fail_msg("membership of %s changed between calls", id);
	}
}

static void
test_holdout_depends_on_purpose(void **state)
{
	const struct keyed *kd = *state;
	struct cm_purpose p = purpose_with("marketing_email", 10);
	struct cm_purpose q = purpose_with("marketing_sms", 10);
	char id[31];
	unsigned i, differ = 0, in_p = 0, in_q = 0;
	bool a, b;

	for (i = 0; i < NSUBJECTS; i++) {
		subject_id(id, i);
		a = cm_holdout_member(kd->keys, id, &p);
		b = cm_holdout_member(kd->keys, id, &q);
		in_p += a;
		in_q += b;
		differ += a != b;
	}
	assert_true(in_p > 0);
	assert_true(in_q > 0);
	/* Independent 10% groups differ for about 18%; insist on some. */
	if (differ < NSUBJECTS / 20)
		fail_msg("only %u of %u subjects differ between purposes", differ,
		    NSUBJECTS);
}

int
main(void)
{
	const struct CMUnitTest decide_tests[] = {
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_decide_every_reason_reachable),
		cmocka_unit_test(test_decide_null_purpose),
		cmocka_unit_test(test_decide_event_contents),
		cmocka_unit_test(test_decide_pure),
		cmocka_unit_test(test_latest),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_subject_state_names),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_subject_id_shape),
	};
	const struct CMUnitTest holdout_tests[] = {
		cmocka_unit_test(test_holdout_share_10),
		cmocka_unit_test(test_holdout_share_50),
		cmocka_unit_test(test_holdout_zero),
		cmocka_unit_test(test_holdout_stable),
		cmocka_unit_test(test_holdout_depends_on_purpose),
	};
	int failed;

	if (cm_crypto_init() != 0) {
		fprintf(stderr, "cm_crypto_init failed\n");
		return 1;
	}
	failed = cmocka_run_group_tests_name("decision", decide_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("holdout", holdout_tests, keys_setup,
	    keys_teardown);
	return failed == 0 ? 0 : 1;
}
