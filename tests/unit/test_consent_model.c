/* SPDX-License-Identifier: ISC */
/*
 * A property test of the consent state (SPEC §6): random sequences of
 * writes — grants, withdrawals and refusals with random collected_at,
 * imports and api grants, soft opt-in grants with and without a sale,
 * GPC, reused request ids, preference saves with random subsets of
 * fields, unsubscribes, suppressions and lifts on random identifiers of a
 * person, unlinks and links, merges, objections, restrictions and
 * erasures — run through the domain layer on a real SQLCipher store.
 * After every step, `check` on every identifier of the sequence, for
 * every purpose and channel, must equal what a small reference model of
 * SPEC §6, written here without any of consentd's decision code, says.
 * Those checks answer from the decision rows (migration 15) wherever a
 * row is there; on one step in TABLES_EVERY each is asked again with the
 * rows turned off, and the whole answer must be the same.
 *
 * Steps: CONSENTD_MODEL_STEPS (default 100,000); seed: CONSENTD_MODEL_SEED
 * (default: the clock), printed at the start and with any failure so a
 * failing sequence can be replayed. The measurement holdout is an input
 * the model takes from cm_holdout_member (a keyed hash), not a rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/subject.h"
#include "consentd/util.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAXP		48	/* persons per sequence (> SEQ_STEPS) */
#define MAXI		8	/* identifiers per sequence */
#define SEQ_STEPS	40	/* steps per sequence */
#define DAY		INT64_C(86400000000)
/* Steps after which every check is also asked of the tables (decision rows off). */
#define TABLES_EVERY	8

/* ---- the policy the test runs on ---------------------------------------- */

/*
 * The shipped policy's controller and channels with purposes of every
 * lawful basis, few enough that checking all of them after every step
 * stays quick: consent (marketing, one and two channels, one with a
 * holdout, one the GPC signal withdraws), soft opt-in, legitimate
 * interest, and a contract purpose with a topic of its own.
 */
static const char *const test_purposes =
	"[{\"id\":\"news\",\"lawful_basis\":\"consent\",\"marketing\":true,\"channels\":[\"email\"]},"
	"{\"id\":\"offers\",\"lawful_basis\":\"consent\",\"marketing\":true,\"channels\":[\"email\",\"sms\"],\"holdout_percent\":20},"
	"{\"id\":\"adtarget\",\"lawful_basis\":\"consent\",\"marketing\":true,\"channels\":[\"ads\"],\"gpc\":true},"
	"{\"id\":\"basket\",\"lawful_basis\":\"soft_opt_in\",\"marketing\":true,\"channels\":[\"email\",\"push\"],\"legitimate_interest\":\"x\"},"
	"{\"id\":\"reviews\",\"lawful_basis\":\"legitimate_interest\",\"marketing\":false,\"channels\":[\"email\"],\"legitimate_interest\":\"x\"},"
	"{\"id\":\"orders\",\"lawful_basis\":\"contract\",\"marketing\":false,\"channels\":[\"email\",\"sms\"]}]";
static const char *const test_topics =
	"[{\"id\":\"t_news\",\"title\":\"N\",\"description\":\"N\",\"purpose\":\"news\"},"
	"{\"id\":\"t_deals\",\"title\":\"D\",\"description\":\"D\",\"purpose\":\"offers\"},"
	"{\"id\":\"t_orders\",\"title\":\"O\",\"description\":\"O\",\"purpose\":\"orders\"}]";

static struct cm_policy *
test_policy(void)
{
	struct cm_policy *pol = NULL;
	json_t *doc, *purposes, *base, *p, *v;
	const char *k;
	char err[512], *text;
	size_t i;

	doc = json_load_file("policy/policy.json", 0, NULL);
	assert_non_null(doc);
	base = json_deep_copy(json_array_get(json_object_get(doc, "purposes"), 0));
	purposes = json_loads(test_purposes, 0, NULL);
	assert_non_null(purposes);
	json_array_foreach(purposes, i, p) {
		/* Everything but what the test sets comes from the shipped newsletter. */
		json_object_foreach(base, k, v)
			if (json_object_get(p, k) == NULL && strcmp(k, "id") != 0 &&
			    strcmp(k, "lawful_basis") != 0)
				json_object_set(p, k, v);
		json_object_set_new(p, "version", json_integer(1));
		json_object_set_new(p, "min_valid_version", json_integer(1));
	}
	json_object_set_new(doc, "purposes", purposes);
	json_object_set_new(doc, "topics", json_loads(test_topics, 0, NULL));
	text = json_dumps(doc, JSON_INDENT(1));
	if (cm_policy_parse("model-policy.json", text, strlen(text), &pol, err,
	    sizeof(err)) != CM_OK)
		fail_msg("test policy: %s", err);
	free(text);
	json_decref(base);
	json_decref(doc);
	return pol;
}

/* ---- a small PRNG, so a seed replays a run ----------------------------- */

static uint64_t rng;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int
pick(int n)
{
	return (int)(rnd() % (uint64_t)n);
}

static bool
chance(int percent)
{
	return pick(100) < percent;
}

/* ---- the reference model ------------------------------------------------ */

enum { ST_GRANTED, ST_WITHDRAWN, ST_REFUSED };
static const char *const st_name[] = { "granted", "withdrawn", "refused" };

struct mev {
	int	 purpose;
	int	 channel;	/* policy channel index, -1: all channels */
	int	 state;
	int64_t	 collected;
	uint64_t seq;		/* order of recording */
	bool	 sale;
};

struct mperson {
	bool		 exists;
	char		 sid[CM_SUBJECT_ID_LEN + 1];
	bool		 merged, erased, restricted, objected;
	int64_t		 paused;
	struct mev	*ev;
	int		 nev;
	bool		 bound[MAXI];	/* identifiers unlinked while suppressed */
};

struct mident {
	char	 text[96];
	char	 type[16];
	int	 owner;		/* person, or -1 */
	bool	 listed;	/* on the suppression list */
	char	 reason[16];
};

struct rid {
	char	 id[32];
	uint8_t	 body[64];	/* what the first request said, as the model sees it */
	size_t	 len;
};

struct model {
	const struct cm_policy	*pol;
	const struct cm_keys	*keys;
	struct mperson		 p[MAXP];
	int			 np;
	struct mident		 id[MAXI];
	int			 nid;
	uint64_t		 seq;
	int64_t			 now;
	struct rid		 rids[64];
	int			 nrids;
};

static const struct cm_purpose *
purpose(const struct model *m, int i)
{
	return &m->pol->pol_purposes[i];
}

static bool
uses(const struct model *m, int pi, int c)
{
	return (purpose(m, pi)->pu_channels & (UINT64_C(1) << c)) != 0;
}

/* Whether a bounce of an identifier of TYPE stops channel C (SPEC §6 rule 1). */
static bool
bounce_hits(const struct model *m, const char *type, int c)
{
	const char *ch = m->pol->pol_channels[c].ch_id;

	if (strcmp(type, "email") == 0)
		return strcmp(ch, "email") == 0;
	if (strcmp(type, "phone") == 0)
		return strcmp(ch, "sms") == 0 || strcmp(ch, "phone") == 0;
	if (strcmp(type, "device") == 0)
		return strcmp(ch, "push") == 0;
	return false;
}

/* Whether the latest of A and B is B: later collected, ties to later recorded. */
static bool
later(const struct mev *a, const struct mev *b)
{
	if (a == NULL)
		return true;
	return b->collected != a->collected ? b->collected > a->collected : b->seq > a->seq;
}

/* The event that decides (PI, C) for person P; NULL when none. */
static const struct mev *
decisive(const struct mperson *p, int pi, int c)
{
	const struct mev *best = NULL;
	int i;

	for (i = 0; i < p->nev; i++) {
		const struct mev *e = &p->ev[i];

		if (e->purpose == pi && (e->channel == c || e->channel == -1) && later(best, e))
			best = e;
	}
	return best;
}

/* The latest event of exactly (PI, C); C -1 for the all-channels scope. */
static const struct mev *
exact(const struct mperson *p, int pi, int c)
{
	const struct mev *best = NULL;
	int i;

	for (i = 0; i < p->nev; i++)
		if (p->ev[i].purpose == pi && p->ev[i].channel == c && later(best, &p->ev[i]))
			best = &p->ev[i];
	return best;
}

/* A decision in the model's words. */
struct mdec {
	bool		 allow;
	const char	*reason;
};

/*
 * SPEC §6 for person P (or nobody, -1) checked through identifier ID (-1:
 * the person as a whole, for the preference view), purpose PI on channel
 * C (-1: none). VIEW leaves out the pause and the holdout.
 */
static struct mdec
decide(const struct model *m, int person, int ident, int pi, int c, bool view)
{
	const struct cm_purpose *pu = purpose(m, pi);
	const struct mperson *p = person >= 0 ? &m->p[person] : NULL;
	const struct mev *e;
	struct mdec d = { false, "no_consent" };
	bool holdout;
	int i;

	/* 1. Entries binding the person (or the identifier, for nobody). */
	for (i = 0; i < m->nid; i++) {
		const struct mident *x = &m->id[i];
		bool applies;

		if (!x->listed)
			continue;
		applies = p != NULL ? (x->owner == person || p->bound[i]) : i == ident;
		if (!applies)
			continue;
		if (strcmp(x->reason, "erased") == 0 ||
		    (strcmp(x->reason, "bounced") == 0 ? c >= 0 && bounce_hits(m, x->type, c) :
		    pu->pu_marketing)) {
			d.reason = "suppressed";
			return d;
		}
	}
	if (p == NULL) {
		d.reason = "unknown_subject";
		return d;
	}
	if (p->erased) {
		d.reason = "suppressed";
		return d;
	}
	if (p->restricted) {
		d.reason = "restricted";
		return d;
	}
	if (pu->pu_marketing && p->objected) {
		d.reason = "objected";
		return d;
	}
	if (pu->pu_marketing && !view && p->paused > m->now) {
		d.reason = "paused";
		return d;
	}
	e = c >= 0 ? decisive(p, pi, c) : exact(p, pi, -1);
	switch (pu->pu_basis) {
	case CM_BASIS_CONSENT:
		if (e == NULL) {
			d.reason = "no_consent";
			return d;
		}
		if (e->state != ST_GRANTED) {
			d.reason = "withdrawn";
			return d;
		}
		d.allow = true;
		d.reason = "consent";
		break;
	case CM_BASIS_LEGITIMATE_INTEREST:
		if (e != NULL && e->state != ST_GRANTED) {
			d.reason = "withdrawn";
			return d;
		}
		d.allow = true;
		d.reason = "legitimate_interest";
		break;
	case CM_BASIS_SOFT_OPT_IN:
		if (e != NULL && e->state != ST_GRANTED) {
			d.reason = "withdrawn";
			return d;
		}
		if (e == NULL || !e->sale) {
			d.reason = "no_relationship";
			return d;
		}
		d.allow = true;
		d.reason = "soft_opt_in";
		break;
	case CM_BASIS_CONTRACT:
	case CM_BASIS_LEGAL_OBLIGATION:
		d.allow = true;
		d.reason = cm_lawful_basis_name(pu->pu_basis);
		return d;
	}
	holdout = !view && pu->pu_holdout_percent > 0 &&
	    cm_holdout_member(m->keys, p->sid, pu);
	if (holdout) {
		d.allow = false;
		d.reason = "holdout";
	}
	return d;
}

static void
add_event(struct model *m, int person, int pi, int c, int state, int64_t collected, bool sale)
{
	struct mperson *p = &m->p[person];
	struct mev *e;

	p->ev = realloc(p->ev, (size_t)(p->nev + 1) * sizeof(*p->ev));
	assert_non_null(p->ev);
	e = &p->ev[p->nev++];
	e->purpose = pi;
	e->channel = c;
	e->state = state;
	e->collected = collected > 0 && collected < m->now ? collected : m->now;
	e->seq = ++m->seq;
	e->sale = sale;
}

/* Whether an entry binding PERSON (or identifier IDENT) would deny PI on C (-1: any of its). */
static bool
suppressed_for(const struct model *m, int person, int ident, int pi, int c)
{
	struct model view = *m;
	int k;

	/* Rule 1 alone: the person as if active, not objected, not paused. */
	if (person >= 0) {
		view.p[person].restricted = false;
		view.p[person].objected = false;
		view.p[person].erased = false;
	}
	if (c >= 0)
		return strcmp(decide(&view, person, ident, pi, c, true).reason, "suppressed") == 0;
	for (k = 0; k < (int)m->pol->pol_nchannels; k++)
		if (uses(m, pi, k) &&
		    strcmp(decide(&view, person, ident, pi, k, true).reason, "suppressed") == 0)
			return true;
	return false;
}

/* ---- the model's writes -------------------------------------------------- */

/* What the model says a consent write does. */
enum mres { M_OK, M_REFUSED, M_REPLAY };

struct mrecord {
	int	 ident;
	int	 purpose;	/* -1: gpc */
	int	 channel;	/* -1: all */
	int	 state;
	const char *method;
	int64_t	 collected;	/* 0: now */
	bool	 sale;
	int	 rid;		/* index into the request ids, -1: none */
};

static bool
first_party(const char *method)
{
	return strcmp(method, "web_form") == 0 || strcmp(method, "checkout") == 0 ||
	    strcmp(method, "preference_center") == 0 || strcmp(method, "double_opt_in") == 0 ||
	    strcmp(method, "in_store") == 0;
}

static size_t
record_body(const struct mrecord *r, uint8_t *out)
{
	return (size_t)snprintf((char *)out, 64, "%d/%d/%d/%d/%s/%lld/%d", r->ident,
	    r->purpose, r->channel, r->state, r->method, (long long)r->collected, r->sale);
}

static void
unbind_all(struct model *m, int ident)
{
	int i;

	for (i = 0; i < m->np; i++)
		m->p[i].bound[ident] = false;
}

static enum mres
model_record(struct model *m, const struct mrecord *r, int *created)
{
	struct mident *x = &m->id[r->ident];
	uint8_t body[64];
	size_t len;
	int owner = x->owner, k;

	*created = -1;
	if (r->purpose >= 0 && purpose(m, r->purpose)->pu_basis == CM_BASIS_SOFT_OPT_IN &&
	    r->state == ST_GRANTED && !r->sale)
		return M_REFUSED;
	if (r->rid >= 0) {
		len = record_body(r, body);
		if (m->rids[r->rid].len > 0)
			return m->rids[r->rid].len == len &&
			    memcmp(m->rids[r->rid].body, body, len) == 0 ? M_REPLAY : M_REFUSED;
	}
	if (x->listed && first_party(r->method) && r->state == ST_GRANTED) {
		x->listed = false;
		unbind_all(m, r->ident);
	}
	if (r->state == ST_GRANTED && r->purpose >= 0 &&
	    (strcmp(r->method, "api") == 0 || strcmp(r->method, "import") == 0) &&
	    suppressed_for(m, owner, r->ident, r->purpose, r->channel))
		return M_REFUSED;
	if (owner < 0) {
		assert_true(m->np < MAXP);
		owner = m->np++;
		memset(&m->p[owner], 0, sizeof(m->p[owner]));
		m->p[owner].exists = true;
		x->owner = owner;
		*created = owner;
	}
	if (r->purpose < 0) {
		for (k = 0; k < (int)m->pol->pol_npurposes; k++)
			if (purpose(m, k)->pu_gpc)
				add_event(m, owner, k, -1, ST_WITHDRAWN, r->collected, false);
	} else {
		add_event(m, owner, r->purpose, r->channel, r->state, r->collected,
		    r->state == ST_GRANTED && r->sale);
	}
	if (r->rid >= 0) {
		m->rids[r->rid].len = record_body(r, m->rids[r->rid].body);
	}
	return M_OK;
}

/* The preference view of person P: on[pi][c], channels[c], topics[t]. */
struct mview {
	bool	on[8][8];
	bool	channels[8];
	bool	topics[8];
};

static bool
switchable(const struct cm_purpose *p)
{
	return p->pu_basis == CM_BASIS_CONSENT || p->pu_basis == CM_BASIS_SOFT_OPT_IN ||
	    p->pu_basis == CM_BASIS_LEGITIMATE_INTEREST;
}

static void
model_view(const struct model *m, int person, struct mview *v)
{
	const struct cm_policy *pol = m->pol;
	int pi, c, t;

	memset(v, 0, sizeof(*v));
	for (pi = 0; pi < (int)pol->pol_npurposes; pi++)
		for (c = 0; c < (int)pol->pol_nchannels; c++) {
			if (!uses(m, pi, c))
				continue;
			v->on[pi][c] = decide(m, person, -1, pi, c, true).allow;
			if (v->on[pi][c] && purpose(m, pi)->pu_marketing &&
			    switchable(purpose(m, pi)))
				v->channels[c] = true;
		}
	for (t = 0; t < (int)pol->pol_ntopics; t++)
		for (c = 0; c < (int)pol->pol_nchannels; c++)
			if (v->on[pol->pol_topics[t].tp_purpose][c])
				v->topics[t] = true;
}

struct mput {
	int	 chan[8];	/* -1 absent, 0 off, 1 on */
	int	 topic[8];
	int	 freq;		/* -1 absent */
	int	 paused;	/* -1 absent, 0 null, 1 a time */
	int64_t	 paused_at;
};

struct mwrite {
	int	pi, c, st;
};

static int
topic_of(const struct model *m, int pi)
{
	int t;

	for (t = 0; t < (int)m->pol->pol_ntopics; t++)
		if ((int)m->pol->pol_topics[t].tp_purpose == pi)
			return t;
	return -1;
}

static void
plan(struct mwrite *w, int *n, int pi, int c, int st)
{
	int i;

	for (i = 0; i < *n; i++)
		if (w[i].pi == pi && w[i].c == c)
			return;
	w[*n].pi = pi;
	w[*n].c = c;
	w[*n].st = st;
	(*n)++;
}

/* A preference save by the API (method api). */
static enum mres
model_put(struct model *m, int person, const struct mput *in)
{
	const struct cm_policy *pol = m->pol;
	struct mview v;
	struct mwrite w[64];
	bool chan_after[8], topic_after[8], any;
	int n = 0, t, c, pi, i;

	model_view(m, person, &v);
	for (c = 0; c < (int)pol->pol_nchannels; c++)
		chan_after[c] = in->chan[c] < 0 ? v.channels[c] : in->chan[c] == 1;
	for (t = 0; t < (int)pol->pol_ntopics; t++) {
		topic_after[t] = in->topic[t] < 0 ? v.topics[t] : in->topic[t] == 1;
		if (in->topic[t] >= 0 && topic_after[t] != v.topics[t] &&
		    !switchable(purpose(m, (int)pol->pol_topics[t].tp_purpose)))
			return M_REFUSED;
	}
	for (t = 0; t < (int)pol->pol_ntopics; t++) {
		pi = (int)pol->pol_topics[t].tp_purpose;
		if (in->topic[t] < 0 || topic_after[t] == v.topics[t] || !switchable(purpose(m, pi)))
			continue;
		if (!topic_after[t]) {
			plan(w, &n, pi, -1, ST_WITHDRAWN);
			continue;
		}
		if (purpose(m, pi)->pu_basis == CM_BASIS_SOFT_OPT_IN)
			continue;
		any = false;
		for (c = 0; c < (int)pol->pol_nchannels; c++)
			if (uses(m, pi, c) && chan_after[c])
				any = true;
		for (c = 0; c < (int)pol->pol_nchannels; c++)
			if (uses(m, pi, c) && (any ? chan_after[c] : in->chan[c] != 0))
				plan(w, &n, pi, c, ST_GRANTED);
	}
	for (c = 0; c < (int)pol->pol_nchannels; c++) {
		if (in->chan[c] < 0 || chan_after[c] == v.channels[c])
			continue;
		for (pi = 0; pi < (int)pol->pol_npurposes; pi++) {
			const struct cm_purpose *pu = purpose(m, pi);

			if (!pu->pu_marketing || !switchable(pu) || !uses(m, pi, c))
				continue;
			if (!chan_after[c]) {
				if (v.on[pi][c])
					plan(w, &n, pi, c, ST_WITHDRAWN);
				continue;
			}
			if (v.on[pi][c] || pu->pu_basis == CM_BASIS_SOFT_OPT_IN)
				continue;
			t = topic_of(m, pi);
			if (t >= 0 ? topic_after[t] : pu->pu_basis == CM_BASIS_LEGITIMATE_INTEREST)
				plan(w, &n, pi, c, ST_GRANTED);
		}
	}
	for (i = 0; i < n; i++)
		if (w[i].st == ST_GRANTED && suppressed_for(m, person, -1, w[i].pi, w[i].c))
			return M_REFUSED;
	for (i = 0; i < n; i++)
		add_event(m, person, w[i].pi, w[i].c, w[i].st, 0, false);
	if (in->paused >= 0)
		m->p[person].paused = in->paused ? in->paused_at : 0;
	return M_OK;
}

static void
model_unsubscribe(struct model *m, int person)
{
	int pi;

	for (pi = 0; pi < (int)m->pol->pol_npurposes; pi++)
		if (purpose(m, pi)->pu_marketing)
			add_event(m, person, pi, -1, ST_WITHDRAWN, 0, false);
}

/* The scopes of a merge and each side's decision there before it. */
static void
model_merge(struct model *m, int into, int from)
{
	struct mperson *a = &m->p[into], *b = &m->p[from];
	struct { int pi, c; int ina, inb; } sc[64];
	const struct mev *e;
	int nsc = 0, i, j, k, pi, c;

	/* Scopes: per purpose either has events for, all channels and theirs. */
	for (k = 0; k < 2; k++) {
		const struct mperson *p = k ? b : a;

		for (i = 0; i < p->nev; i++) {
			int cand[2] = { -1, p->ev[i].channel };

			for (j = 0; j < 2; j++) {
				int l;

				for (l = 0; l < nsc; l++)
					if (sc[l].pi == p->ev[i].purpose && sc[l].c == cand[j])
						break;
				if (l == nsc && nsc < (int)NELEM(sc)) {
					sc[nsc].pi = p->ev[i].purpose;
					sc[nsc].c = cand[j];
					nsc++;
				}
			}
		}
	}
	for (i = 0; i < nsc; i++) {
		pi = sc[i].pi;
		c = sc[i].c;
		e = c >= 0 ? decisive(a, pi, c) : exact(a, pi, -1);
		sc[i].ina = e ? e->state : -1;
		e = c >= 0 ? decisive(b, pi, c) : exact(b, pi, -1);
		sc[i].inb = e ? e->state : -1;
	}
	/* FROM's events move. */
	for (i = 0; i < b->nev; i++) {
		a->ev = realloc(a->ev, (size_t)(a->nev + 1) * sizeof(*a->ev));
		assert_non_null(a->ev);
		a->ev[a->nev++] = b->ev[i];
	}
	b->nev = 0;
	for (i = 0; i < nsc; i++) {
		int no;

		if (sc[i].ina < 0 || sc[i].inb < 0 ||
		    (sc[i].ina == ST_GRANTED) == (sc[i].inb == ST_GRANTED))
			continue;
		no = sc[i].ina == ST_GRANTED ? sc[i].inb : sc[i].ina;
		e = sc[i].c >= 0 ? decisive(a, sc[i].pi, sc[i].c) : exact(a, sc[i].pi, -1);
		if (e != NULL && e->state != ST_GRANTED)
			continue;
		/* Just after the grant it outranks. */
		add_event(m, into, sc[i].pi, sc[i].c, no, e != NULL ? e->collected + 1 : 0, false);
	}
	if (!a->objected)
		a->objected = b->objected;
	if (b->paused > a->paused)
		a->paused = b->paused;
	if (b->restricted)
		a->restricted = true;
	for (i = 0; i < m->nid; i++) {
		if (m->id[i].owner == from)
			m->id[i].owner = into;
		if (b->bound[i])
			a->bound[i] = true;
		b->bound[i] = false;
	}
	b->merged = true;
}

/* ---- the run ------------------------------------------------------------ */

struct run {
	struct model		 m;
	struct cm_ctx		 cx;
	struct cm_keys		*keys;
	struct cm_store		*store;
	struct cm_policy	*pol;
	uint64_t		 seed;
	long			 seqno, step, checks;
	char			 dir[64];
	char			 last[160];	/* the step just taken, for a failure */
};

static struct cm_identifier
parse_ident(const struct run *r, int i)
{
	struct cm_identifier id;
	char why[160];

	if (cm_identifier_parse(r->m.id[i].text, strlen(r->m.id[i].text), r->pol, &id, why,
	    sizeof(why)) != CM_OK)
		fail_msg("identifier %s: %s", r->m.id[i].text, why);
	return id;
}

static void
sequence_init(struct run *r)
{
	static const char *const types[] = { "email", "email", "phone", "customer", "device",
	    "email" };
	struct model *m = &r->m;
	int i, n = 4 + pick(3);

	for (i = 0; i < m->np; i++)
		free(m->p[i].ev);
	memset(m->p, 0, sizeof(m->p));
	m->np = 0;
	m->nrids = 0;
	memset(m->rids, 0, sizeof(m->rids));
	m->nid = n;
	for (i = 0; i < n; i++) {
		struct mident *x = &m->id[i];

		memset(x, 0, sizeof(*x));
		snprintf(x->type, sizeof(x->type), "%s", types[i]);
		x->owner = -1;
		if (strcmp(types[i], "email") == 0)
			snprintf(x->text, sizeof(x->text), "email:m%ld-%d@example.com", r->seqno, i);
		else if (strcmp(types[i], "phone") == 0)
			snprintf(x->text, sizeof(x->text), "phone:+447700%06ld", r->seqno % 1000000);
		else
			snprintf(x->text, sizeof(x->text), "%s:m%ld-%d", types[i], r->seqno, i);
	}
}

/* A person able to act: exists, not merged away, not erased. */
static int
live_person(const struct model *m)
{
	int live[MAXP], n = 0, i;

	for (i = 0; i < m->np; i++)
		if (m->p[i].exists && !m->p[i].merged && !m->p[i].erased)
			live[n++] = i;
	return n ? live[pick(n)] : -1;
}

static const char *const methods[] = { "web_form", "checkout", "email_link", "api", "import",
	"double_opt_in", "in_store", "phone" };
static const char *const reasons[] = { "unsubscribed", "bounced", "complained", "manual" };
static const char *const freqs[] = { "daily", "weekly", "monthly" };

static void
expect(struct run *r, bool model_ok, cm_result rc, const char *what)
{
	if (model_ok != (rc == CM_OK))
		fail_msg("seed %llu, sequence %ld, step %ld (%s): %s: the model says %s, "
		    "consentd answered %s", (unsigned long long)r->seed, r->seqno, r->step,
		    r->last, what, model_ok ? "done" : "refused", cm_result_str(rc));
}

/* Runs FN on the store in a transaction; rolls back what is not CM_OK. */
#define TX(call) do {							\
	if (cm_db_begin(r->cx.cx_db) != CM_OK)				\
		fail_msg("begin");					\
	rc = (call);							\
	if (rc == CM_OK) {						\
		if (cm_db_commit(r->cx.cx_db) != CM_OK)			\
			fail_msg("commit");				\
	} else {							\
		cm_db_rollback(r->cx.cx_db);				\
	}								\
} while (0)

static void
step_record(struct run *r)
{
	struct model *m = &r->m;
	struct mrecord rec;
	struct cm_consent_input in;
	struct cm_consent_result res;
	struct cm_identifier id;
	struct cm_why w;
	json_t *evidence = NULL;
	char rid[32];
	enum mres mr;
	int created, pi;
	cm_result rc;

	memset(&rec, 0, sizeof(rec));
	rec.ident = pick(m->nid);
	rec.rid = -1;
	if (chance(6)) {
		rec.purpose = -1;
		rec.channel = -1;
		rec.state = ST_WITHDRAWN;
		rec.method = "gpc";
	} else {
		rec.purpose = pick((int)m->pol->pol_npurposes);
		rec.channel = -1;
		if (!chance(30)) {
			int cs[8], n = 0, c;

			for (c = 0; c < (int)m->pol->pol_nchannels; c++)
				if (uses(m, rec.purpose, c))
					cs[n++] = c;
			rec.channel = cs[pick(n)];
		}
		rec.state = chance(55) ? ST_GRANTED : chance(65) ? ST_WITHDRAWN : ST_REFUSED;
		rec.method = methods[pick((int)NELEM(methods))];
		rec.sale = purpose(m, rec.purpose)->pu_basis == CM_BASIS_SOFT_OPT_IN ?
		    chance(75) : chance(10);
	}
	if (chance(50))
		rec.collected = m->now - (int64_t)(rnd() % (uint64_t)(400 * DAY));
	else if (chance(15))
		rec.collected = m->now + (int64_t)(rnd() % (uint64_t)(4 * 60 * 1000000));
	if (chance(15)) {
		if (m->nrids > 0 && chance(50)) {
			rec.rid = pick(m->nrids);
		} else if (m->nrids < (int)NELEM(m->rids)) {
			rec.rid = m->nrids++;
			snprintf(m->rids[rec.rid].id, sizeof(m->rids[rec.rid].id), "rq-%ld-%d",
			    r->seqno, rec.rid);
		}
	}
	snprintf(r->last, sizeof(r->last), "record %s %s %s %s by %s, collected %lld%s%s",
	    m->id[rec.ident].text, rec.purpose < 0 ? "(gpc)" : purpose(m, rec.purpose)->pu_id,
	    rec.channel < 0 ? "*" : m->pol->pol_channels[rec.channel].ch_id,
	    st_name[rec.state], rec.method, (long long)rec.collected, rec.sale ? " sale" : "",
	    rec.rid >= 0 ? " rid" : "");
	memset(&in, 0, sizeof(in));
	id = parse_ident(r, rec.ident);
	in.ci_ident = &id;
	in.ci_purpose = rec.purpose >= 0 ? purpose(m, rec.purpose) : NULL;
	in.ci_channel = rec.channel;
	in.ci_state = (enum cm_consent_state)rec.state;
	in.ci_method = rec.method;
	in.ci_collected_us = rec.collected;
	if (rec.sale) {
		evidence = json_pack("{s:s}", "sale_reference", "order-1");
		in.ci_evidence = evidence;
	}
	if (rec.rid >= 0) {
		snprintf(rid, sizeof(rid), "%s", m->rids[rec.rid].id);
		in.ci_request_id = rid;
	}
	in.ci_client = "model";
	memset(&w, 0, sizeof(w));
	mr = model_record(m, &rec, &created);
	TX(cm_consent_record(&r->cx, &in, &res, &w));
	expect(r, mr != M_REFUSED, rc, "record");
	if (rc == CM_OK && mr == M_REPLAY && !res.cr_replayed)
		fail_msg("seed %llu step %ld (%s): a repeat was not replayed",
		    (unsigned long long)r->seed, r->step, r->last);
	if (created >= 0) {
		if (!res.cr_subject_created)
			fail_msg("seed %llu step %ld (%s): no subject was created",
			    (unsigned long long)r->seed, r->step, r->last);
		snprintf(m->p[created].sid, sizeof(m->p[created].sid), "%s", res.cr_event.e_subject);
	}
	json_decref(res.cr_event_ids);
	json_decref(evidence);
	(void)pi;
}

static void
step_prefs(struct run *r)
{
	struct model *m = &r->m;
	const struct cm_policy *pol = m->pol;
	struct mput in;
	struct cm_why w;
	json_t *body, *chans, *topics;
	int person = live_person(m), c, t;
	enum mres mr;
	cm_result rc;

	if (person < 0)
		return;
	memset(&in, 0, sizeof(in));
	body = json_object();
	chans = json_object();
	topics = json_object();
	for (c = 0; c < (int)pol->pol_nchannels; c++) {
		in.chan[c] = chance(25) ? pick(2) : -1;
		if (in.chan[c] >= 0)
			json_object_set_new(chans, pol->pol_channels[c].ch_id, json_boolean(in.chan[c]));
	}
	for (t = 0; t < (int)pol->pol_ntopics; t++) {
		in.topic[t] = chance(35) ? pick(2) : -1;
		if (in.topic[t] >= 0)
			json_object_set_new(topics, pol->pol_topics[t].tp_id, json_boolean(in.topic[t]));
	}
	if (json_object_size(chans) > 0 || chance(50))
		json_object_set(body, "channels", chans);
	if (json_object_size(topics) > 0)
		json_object_set(body, "topics", topics);
	in.freq = chance(30) ? pick(3) : -1;
	if (in.freq >= 0)
		json_object_set_new(body, "frequency", json_string(freqs[in.freq]));
	in.paused = chance(20) ? pick(2) : -1;
	if (in.paused == 1)
		in.paused_at = m->now + (chance(70) ? 1 : -1) * (int64_t)(rnd() % (uint64_t)(10 * DAY));
	if (in.paused >= 0)
		json_object_set_new(body, "paused_until", json_integer(in.paused ? in.paused_at : 0));
	{
		char *t_ = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);

		snprintf(r->last, sizeof(r->last), "preferences of person %d: %.120s", person,
		    t_ ? t_ : "");
		free(t_);
	}
	memset(&w, 0, sizeof(w));
	mr = model_put(m, person, &in);
	TX(cm_prefs_put(&r->cx, m->p[person].sid, body, "api", &w));
	expect(r, mr == M_OK, rc, "preferences");
	json_decref(chans);
	json_decref(topics);
	json_decref(body);
}

static void
step_other(struct run *r)
{
	struct model *m = &r->m;
	struct cm_identifier id;
	struct cm_why w;
	json_t *out = NULL;
	int person = live_person(m), other, i = 0, k, n, choice = pick(100);
	cm_result rc;

	memset(&w, 0, sizeof(w));
	if (choice < 12 && person >= 0) {
		snprintf(r->last, sizeof(r->last), "unsubscribe person %d", person);
		model_unsubscribe(m, person);
		TX(cm_unsubscribe(&r->cx, m->p[person].sid, "other", NULL, "api", &n, &w));
		expect(r, true, rc, "unsubscribe");
	} else if (choice < 40) {
		bool existed;
		char reason[16];
		int64_t since;
		const char *rs = reasons[pick((int)NELEM(reasons))];

		i = pick(m->nid);
		snprintf(r->last, sizeof(r->last), "suppress %s %s", m->id[i].text, rs);
		id = parse_ident(r, i);
		if (!m->id[i].listed) {
			m->id[i].listed = true;
			snprintf(m->id[i].reason, sizeof(m->id[i].reason), "%s", rs);
		}
		TX(cm_suppression_add(&r->cx, &id, rs, &existed, reason, &since));
		expect(r, true, rc, "suppress");
	} else if (choice < 50) {
		bool ok;

		i = pick(m->nid);
		snprintf(r->last, sizeof(r->last), "lift %s", m->id[i].text);
		id = parse_ident(r, i);
		ok = m->id[i].listed && strcmp(m->id[i].reason, "erased") != 0;
		if (ok) {
			m->id[i].listed = false;
			unbind_all(m, i);
		}
		TX(cm_suppression_lift(&r->cx, &id));
		expect(r, ok, rc, "lift");
	} else if (choice < 62 && person >= 0) {
		int mine[MAXI];

		for (i = n = 0; i < m->nid; i++)
			if (m->id[i].owner == person)
				mine[n++] = i;
		if (n < 2)
			return;
		i = mine[pick(n)];
		snprintf(r->last, sizeof(r->last), "unlink %s from person %d", m->id[i].text, person);
		id = parse_ident(r, i);
		m->id[i].owner = -1;
		if (m->id[i].listed)
			m->p[person].bound[i] = true;
		TX(cm_subject_unlink(&r->cx, m->p[person].sid, &id, &w));
		expect(r, true, rc, "unlink");
	} else if (choice < 72 && person >= 0) {
		struct cm_new_ident ni;
		bool existed;

		for (k = 0; k < m->nid; k++) {
			i = (pick(m->nid) + k) % m->nid;
			if (m->id[i].owner < 0)
				break;
		}
		if (k == m->nid)
			return;
		snprintf(r->last, sizeof(r->last), "link %s to person %d", m->id[i].text, person);
		memset(&ni, 0, sizeof(ni));
		ni.ni_id = parse_ident(r, i);
		ni.ni_source = "api";
		m->id[i].owner = person;
		TX(cm_subject_link(&r->cx, m->p[person].sid, &ni, &existed, &w));
		expect(r, true, rc, "link");
	} else if (choice < 84 && person >= 0) {
		for (k = 0; k < 8; k++)
			if ((other = live_person(m)) != person)
				break;
		if (other < 0 || other == person)
			return;
		snprintf(r->last, sizeof(r->last), "merge person %d into %d", other, person);
		model_merge(m, person, other);
		TX(cm_subject_merge(&r->cx, m->p[person].sid, m->p[other].sid, "model", &out, &w));
		json_decref(out);
		expect(r, true, rc, "merge");
	} else if (choice < 90 && person >= 0) {
		snprintf(r->last, sizeof(r->last), "object person %d", person);
		m->p[person].objected = true;
		TX(cm_subject_object(&r->cx, m->p[person].sid, &w));
		expect(r, true, rc, "object");
	} else if (choice < 97 && person >= 0) {
		bool on = !m->p[person].restricted;

		snprintf(r->last, sizeof(r->last), "%srestrict person %d", on ? "" : "un", person);
		m->p[person].restricted = on;
		TX(cm_subject_restrict(&r->cx, m->p[person].sid, on, &w));
		expect(r, true, rc, "restrict");
	} else if (person >= 0) {
		snprintf(r->last, sizeof(r->last), "erase person %d", person);
		for (i = 0; i < m->nid; i++)
			if (m->id[i].owner == person) {
				m->id[i].owner = -1;
				m->id[i].listed = true;
				snprintf(m->id[i].reason, sizeof(m->id[i].reason), "erased");
			}
		m->p[person].erased = true;
		TX(cm_subject_erase(&r->cx, m->p[person].sid, &out, &w));
		json_decref(out);
		expect(r, true, rc, "erase");
	}
}

static bool
same_row(const struct cm_consent_row *a, const struct cm_consent_row *b)
{
	return a->cr_present == b->cr_present && a->cr_state == b->cr_state &&
	    a->cr_notice_version == b->cr_notice_version && a->cr_seq == b->cr_seq &&
	    strcmp(a->cr_event_id, b->cr_event_id) == 0 &&
	    strcmp(a->cr_method, b->cr_method) == 0 &&
	    a->cr_collected_us == b->cr_collected_us && a->cr_recorded_us == b->cr_recorded_us &&
	    a->cr_sale_ref == b->cr_sale_ref;
}

/*
 * The same check with the decision rows turned off, read from the tables
 * themselves: the whole answer must be the same (decision, reason, the
 * event it rests on, the open conflicts).
 */
static void
same_as_tables(struct run *r, const struct cm_identifier *id, int pi, int c,
    const struct cm_check_result *row)
{
	struct model *m = &r->m;
	struct cm_check_result tab;

	cm_db_decision_rows(r->cx.cx_db, false);
	if (cm_consent_check(&r->cx, id, purpose(m, pi), m->pol->pol_channels[c].ch_id,
	    &tab) != CM_OK)
		fail_msg("check from the tables failed");
	cm_db_decision_rows(r->cx.cx_db, true);
	if (row->ck_decision.d_allow != tab.ck_decision.d_allow ||
	    strcmp(row->ck_decision.d_reason, tab.ck_decision.d_reason) != 0 ||
	    row->ck_has_event != tab.ck_has_event ||
	    (row->ck_has_event && !same_row(&row->ck_event, &tab.ck_event)) ||
	    strcmp(row->ck_subject, tab.ck_subject) != 0 ||
	    !json_equal(row->ck_conflicts, tab.ck_conflicts))
		fail_msg("seed %llu, sequence %ld, step %ld, after %s: check %s %s %s: the "
		    "decision row says %s %s, the tables %s %s", (unsigned long long)r->seed,
		    r->seqno, r->step, r->last, m->id[0].text, purpose(m, pi)->pu_id,
		    m->pol->pol_channels[c].ch_id, row->ck_decision.d_allow ? "allow" : "deny",
		    row->ck_decision.d_reason, tab.ck_decision.d_allow ? "allow" : "deny",
		    tab.ck_decision.d_reason);
	json_decref(tab.ck_conflicts);
}

/* After every step: every identifier, purpose and channel, against the model. */
static void
check_all(struct run *r)
{
	struct model *m = &r->m;
	struct cm_check_result res;
	struct cm_identifier id;
	struct mdec d;
	int i, pi, c;

	if (cm_db_read_begin(r->cx.cx_db) != CM_OK)
		fail_msg("read");
	for (i = 0; i < m->nid; i++) {
		id = parse_ident(r, i);
		for (pi = 0; pi < (int)m->pol->pol_npurposes; pi++)
			for (c = 0; c < (int)m->pol->pol_nchannels; c++) {
				if (!uses(m, pi, c))
					continue;
				d = decide(m, m->id[i].owner, i, pi, c, false);
				if (cm_consent_check(&r->cx, &id, purpose(m, pi),
				    m->pol->pol_channels[c].ch_id, &res) != CM_OK)
					fail_msg("check failed");
				r->checks++;
				if (r->step % TABLES_EVERY == 0)
					same_as_tables(r, &id, pi, c, &res);
				json_decref(res.ck_conflicts);
				if (d.allow != res.ck_decision.d_allow ||
				    strcmp(d.reason, res.ck_decision.d_reason) != 0)
					fail_msg("seed %llu, sequence %ld, step %ld, after %s: check "
					    "%s %s %s: the model says %s %s, consentd %s %s",
					    (unsigned long long)r->seed, r->seqno, r->step, r->last,
					    m->id[i].text, purpose(m, pi)->pu_id,
					    m->pol->pol_channels[c].ch_id, d.allow ? "allow" : "deny",
					    d.reason, res.ck_decision.d_allow ? "allow" : "deny",
					    res.ck_decision.d_reason);
			}
	}
	cm_db_read_end(r->cx.cx_db);
}

static void
test_model(void **state)
{
	struct run *r = *state;
	long steps = 100000, done = 0;
	struct cm_store_cost before, after;
	uint64_t fromrow;
	const char *env;
	int64_t t0;

	if ((env = getenv("CONSENTD_MODEL_STEPS")) != NULL)
		steps = strtol(env, NULL, 10);
	t0 = cm_time_mono_us();
	cm_store_cost(r->store, &before);
	while (done < steps) {
		r->seqno++;
		sequence_init(r);
		for (r->step = 0; r->step < SEQ_STEPS && done < steps; r->step++, done++) {
			r->m.now += 1000000;
			r->cx.cx_now = r->m.now;
			if (r->m.np == 0 || chance(45))
				step_record(r);
			else if (chance(35))
				step_prefs(r);
			else
				step_other(r);
			check_all(r);
		}
	}
	cm_store_cost(r->store, &after);
	/* The rows were there to compare: most checks are on identifiers someone holds. */
	fromrow = after.sc_checks_row - before.sc_checks_row;
	printf("model: seed %llu, %ld steps in %ld sequences, %ld checks (%llu from decision "
	    "rows; on one step in %d each also compared with the tables), %.1f s\n",
	    (unsigned long long)r->seed,
	    done, r->seqno, r->checks, (unsigned long long)fromrow, TABLES_EVERY,
	    (double)(cm_time_mono_us() - t0) / 1e6);
	assert_true(steps < 100 || fromrow * 2 > (uint64_t)r->checks);
}

static int
setup(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	struct cm_migration_set set;
	struct cm_db *db;
	char err[512];
	const char *env;

	assert_non_null(r);
	assert_int_equal(cm_crypto_init(), 0);
	r->seed = (env = getenv("CONSENTD_MODEL_SEED")) != NULL ?
	    strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
	if (r->seed == 0)
		r->seed = 1;
	rng = r->seed;
	printf("model: seed %llu (set CONSENTD_MODEL_SEED to replay)\n",
	    (unsigned long long)r->seed);
	strcpy(r->dir, "build/model-test-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	assert_int_equal(cm_keys_create(r->dir, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_load(r->dir, &r->keys, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_migrations_load(NULL, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_create(r->dir, r->keys, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_open(r->dir, r->keys, &set, NULL, &r->store, err,
	    sizeof(err)), CM_OK);
	cm_migrations_free(&set);
	db = cm_store_db(r->store);
	/* A test store: no fsync per step (the durability is not under test here). */
	assert_int_equal(cm_db_bulk_load(db), CM_OK);
	r->pol = test_policy();
	r->m.pol = r->pol;
	r->m.keys = r->keys;
	r->m.now = cm_time_now_us();
	r->cx.cx_db = db;
	r->cx.cx_keys = r->keys;
	r->cx.cx_policy = r->pol;
	snprintf(r->cx.cx_actor, sizeof(r->cx.cx_actor), "test:model");
	*state = r;
	return 0;
}

static int
teardown(void **state)
{
	struct run *r = *state;
	char cmd[128];
	int i;

	for (i = 0; i < r->m.np; i++)
		free(r->m.p[i].ev);
	cm_store_close(r->store);
	cm_keys_free(r->keys);
	cm_policy_free(r->pol);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", r->dir);
	free(r);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_model, setup, teardown),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
