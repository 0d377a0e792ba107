/*
 * The decision procedure of SPEC §6, rule by rule:
 *   1. identifier suppressed: deny for every purpose when the reason is
 *      erased or bounced, for marketing purposes otherwise; no subject:
 *      deny unknown_subject;
 *   2. subject erased: deny suppressed; restricted (Art. 18): deny;
 *   3. marketing and an Art. 21 objection: deny objected;
 *   4. marketing and paused until later: deny paused;
 *   5. by lawful basis: consent needs a current grant on a notice at least
 *      min_valid_version (then the holdout may turn it into a deny);
 *      legitimate interest and soft opt-in allow unless withdrawn;
 *      contract and legal obligation allow (restriction was rule 2).
 */
#include <string.h>

#include "consentd/decision.h"

static const char *const state_names[] = { "granted", "withdrawn", "refused" };

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
	return (size_t)s < CM_NELEM(state_names) ? state_names[s] : "unknown";
}

int
cm_consent_state_parse(const char *s, enum cm_consent_state *out)
{
	size_t i;

	for (i = 0; i < CM_NELEM(state_names); i++)
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum cm_consent_state)i;
			return 0;
		}
	return -1;
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

const struct cm_consent_row *
cm_decision_latest(const struct cm_consent_row *ch, const struct cm_consent_row *all)
{
	if (ch->cr_present && all->cr_present)
		return ch->cr_seq >= all->cr_seq ? ch : all;
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

	decided(d, false, "no_consent", NULL);
	if (p == NULL) {
		decided(d, false, "error", NULL);
		return;
	}
	/* 1. The suppression list, then whether anyone has the identifier. */
	if (f->df_suppressed != NULL && (strcmp(f->df_suppressed, "erased") == 0 ||
	    strcmp(f->df_suppressed, "bounced") == 0 || p->pu_marketing)) {
		decided(d, false, "suppressed", NULL);
		return;
	}
	if (!f->df_known || f->df_state == NULL) {
		decided(d, false, "unknown_subject", NULL);
		return;
	}
	/* 2. The subject's state. */
	if (strcmp(f->df_state, "erased") == 0) {
		decided(d, false, "suppressed", NULL);
		return;
	}
	if (strcmp(f->df_state, "restricted") == 0) {
		decided(d, false, "restricted", NULL);
		return;
	}
	if (strcmp(f->df_state, "active") != 0) {
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
	case CM_BASIS_SOFT_OPT_IN:
		if (ev != NULL && ev->cr_state != CM_CONSENT_GRANTED) {
			decided(d, false, "withdrawn", ev);
			return;
		}
		decided(d, true, p->pu_basis == CM_BASIS_SOFT_OPT_IN ? "soft_opt_in" :
		    "legitimate_interest", ev);
		break;
	case CM_BASIS_CONTRACT:
	case CM_BASIS_LEGAL_OBLIGATION:
		decided(d, true, cm_lawful_basis_name(p->pu_basis), ev);
		return;
	}
	if (d->d_allow && p->pu_holdout_percent > 0 && f->df_in_holdout)
		decided(d, false, "holdout", d->d_event);
}
