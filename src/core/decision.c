/* SPDX-License-Identifier: ISC */
/*
 * The decision procedure of SPEC §6, rule by rule:
 *   1. a suppression entry binding the person (on the identifier checked
 *      or any other the subject holds or held): erased denies every
 *      purpose, bounced every purpose on the channels its identifier type
 *      reaches, the others marketing purposes; no subject: deny
 *      unknown_subject;
 *   2. subject erased: deny suppressed; restricted (Art. 18): deny;
 *   3. marketing and an Art. 21 objection: deny objected;
 *   4. marketing and paused until later: deny paused;
 *   5. by lawful basis: consent needs a current grant on a notice at least
 *      min_valid_version (then the holdout may turn it into a deny);
 *      legitimate interest allows unless withdrawn; soft opt-in only on a
 *      grant made in the course of a sale, else no_relationship;
 *      contract and legal obligation allow (restriction was rule 2).
 */
#include <string.h>

#include "consentd/crypto.h"
#include "consentd/decision.h"
#include "consentd/util.h"

static const char *const state_names[] = { "granted", "withdrawn", "refused", NULL };

static const struct {
	const char	*name;
	bool		 first_party;
} methods[] = {
	{ "web_form", true }, { "checkout", true }, { "preference_center", true },
	{ "email_link", false }, { "double_opt_in", true }, { "in_store", true },
	{ "phone", false }, { "api", false }, { "import", false }, { "gpc", false },
};

const char *
cm_consent_state_name(enum cm_consent_state s)
{
	return (size_t)s < CM_NELEM(state_names) - 1 ? state_names[s] : "unknown";
}

int
cm_consent_state_parse(const char *s, enum cm_consent_state *out)
{
	int i;

	if ((i = cm_strv_index(state_names, s)) < 0)
		return -1;
	*out = (enum cm_consent_state)i;
	return 0;
}

bool
cm_consent_method_valid(const char *m, bool *first_party)
{
	size_t i;

	for (i = 0; i < CM_NELEM(methods); i++)
		if (strcmp(m, methods[i].name) == 0) {
			if (first_party != NULL)
				*first_party = methods[i].first_party;
			return true;
		}
	return false;
}

bool
cm_consent_after(int64_t ca, int64_t sa, int64_t cb, int64_t sb)
{
	return ca != cb ? ca > cb : sa > sb;
}

bool
cm_suppression_reason_known(const char *r)
{
	static const char *const reasons[] = { "unsubscribed", "bounced", "complained",
	    "manual", "erased" };
	size_t i;

	for (i = 0; i < CM_NELEM(reasons); i++)
		if (strcmp(r, reasons[i]) == 0)
			return true;
	return false;
}

/* Whether suppression entry S denies purpose P on the channel checked. */
static bool
supp_denies(const struct cm_supp_fact *s, const struct cm_purpose *p)
{
	if (strcmp(s->sf_reason, "erased") == 0)
		return true;
	if (strcmp(s->sf_reason, "bounced") == 0)
		return s->sf_channel_hit;
	/* unsubscribed, complained, manual; an unknown reason denies. */
	return p->pu_marketing || !cm_suppression_reason_known(s->sf_reason);
}

const struct cm_consent_row *
cm_decision_latest(const struct cm_consent_row *ch, const struct cm_consent_row *all)
{
	if (ch->cr_present && all->cr_present)
		return cm_consent_after(all->cr_collected_us, all->cr_seq, ch->cr_collected_us,
		    ch->cr_seq) ? all : ch;
	if (ch->cr_present)
		return ch;
	if (all->cr_present)
		return all;
	return NULL;
}

static void
decided(struct cm_decision *d, bool allow, const char *reason,
    const struct cm_consent_row *ev)
{
	d->d_allow = allow;
	d->d_reason = reason;
	d->d_event = ev;
}

void
cm_decide(const struct cm_decision_facts *f, struct cm_decision *d)
{
	const struct cm_purpose *p = f->df_purpose;
	const struct cm_consent_row *ev;
	size_t i;

	decided(d, false, "no_consent", NULL);
	if (p == NULL) {
		decided(d, false, "error", NULL);
		return;
	}
	/* 1. The suppression list, then whether anyone has the identifier. */
	for (i = 0; i < f->df_nsupp; i++)
		if (supp_denies(&f->df_supp[i], p)) {
			decided(d, false, "suppressed", NULL);
			return;
		}
	if (!f->df_known) {
		decided(d, false, "unknown_subject", NULL);
		return;
	}
	/* 2. The subject's state. */
	switch (f->df_state) {
	case CM_SUBJECT_ACTIVE:
		break;
	case CM_SUBJECT_ERASED:
		decided(d, false, "suppressed", NULL);
		return;
	case CM_SUBJECT_RESTRICTED:
		decided(d, false, "restricted", NULL);
		return;
	case CM_SUBJECT_INVALID:
	default:
		decided(d, false, "error", NULL);
		return;
	}
	/* 3 and 4. Objection to direct marketing; a pause. */
	if (p->pu_marketing && f->df_objected) {
		decided(d, false, "objected", NULL);
		return;
	}
	if (p->pu_marketing && f->df_paused_until > f->df_now) {
		decided(d, false, "paused", NULL);
		return;
	}
	/* 5. The lawful basis. */
	ev = cm_decision_latest(&f->df_channel, &f->df_all);
	switch (p->pu_basis) {
	case CM_BASIS_CONSENT:
		if (ev == NULL) {
			decided(d, false, "no_consent", NULL);
			return;
		}
		if (ev->cr_state != CM_CONSENT_GRANTED) {
			decided(d, false, "withdrawn", ev);
			return;
		}
		if (ev->cr_notice_version < p->pu_min_valid_version) {
			decided(d, false, "stale_notice", ev);
			return;
		}
		decided(d, true, "consent", ev);
		break;
	case CM_BASIS_LEGITIMATE_INTEREST:
		if (ev != NULL && ev->cr_state != CM_CONSENT_GRANTED) {
			decided(d, false, "withdrawn", ev);
			return;
		}
		decided(d, true, "legitimate_interest", ev);
		break;
	case CM_BASIS_SOFT_OPT_IN:
		/*
		 * PECR reg. 22, ePrivacy Art. 13(2): only details collected in
		 * the course of a sale, with a chance to refuse, and nothing
		 * later withdrew them.
		 */
		if (ev != NULL && ev->cr_state != CM_CONSENT_GRANTED) {
			decided(d, false, "withdrawn", ev);
			return;
		}
		if (ev == NULL || !ev->cr_sale_ref) {
			decided(d, false, "no_relationship", ev);
			return;
		}
		decided(d, true, "soft_opt_in", ev);
		break;
	case CM_BASIS_CONTRACT:
	case CM_BASIS_LEGAL_OBLIGATION:
		decided(d, true, cm_lawful_basis_name(p->pu_basis), ev);
		return;
	}
	if (d->d_allow && p->pu_holdout_percent > 0 && f->df_in_holdout)
		decided(d, false, "holdout", d->d_event);
}

bool
cm_holdout_member(const struct cm_keys *k, const char *subject_id,
    const struct cm_purpose *p)
{
	const char *parts[2] = { subject_id, p->pu_id };
	uint8_t h[8];
	uint64_t v = 0;
	size_t i;

	if (p->pu_holdout_percent <= 0)
		return false;
	cm_keyed_hash(h, sizeof(h), k->k_holdout, parts, 2);
	for (i = 0; i < sizeof(h); i++)
		v = v << 8 | h[i];
	/* Basis points, so the share is exact to 0.01%. */
	return v % 10000 < (uint64_t)p->pu_holdout_percent * 100;
}
