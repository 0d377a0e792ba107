/* SPDX-License-Identifier: ISC */
/*
 * gen: makes a store of N subjects through consentd's own code
 * (cm_subject_create, 10,000 per transaction, each with its audit entry, in
 * the store's bulk-load mode: no WAL, no fsync, a 256 MiB cache), and
 * times identifier resolution in-process. Identifiers are deterministic
 * from a seed so a load generator can ask for ones that exist:
 * subject k has email:user<k>@example.com, and by a hash of (seed, k) also
 * phone:+4477<k, 8 digits> and/or loyalty:L<k>.
 *
 *   gen subjects DIR N [SEED [POLICY]]   with POLICY: 2-6 consent events each
 *                                        (some withdrawn), 1 in 20 suppressed
 *   gen resolve DIR N COUNT [SEED]     COUNT random lookups among N
 *   gen history DIR N POLICY           one subject, email:history<N>@example.com,
 *                                      with a profile and N consent events
 *                                      with evidence (the access package
 *                                      benchmark)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/consent.h"
#include "consentd/crypto.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/subject.h"
#include "consentd/util.h"

#define BATCH	10000	/* subjects per transaction */

static void
die(const char *m)
{
	fprintf(stderr, "gen: %s\n", m);
	exit(1);
}

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

static uint64_t
num(const char *s)
{
	int64_t v;

	if (cm_parse_i64(s, 0, INT64_MAX, &v) != 0)
		die("bad number");
	return (uint64_t)v;
}

static void
ident(struct cm_identifier *id, const char *text)
{
	char why[160];

	if (cm_identifier_parse(text, strlen(text), NULL, id, why, sizeof(why)) != CM_OK)
		die(why);
}

/* One subject with N consent events, each with evidence, BATCH per transaction. */
static void
gen_history(struct cm_ctx *cx, const struct cm_policy *pol, uint64_t n)
{
	static const char *const purposes[] = { "newsletter", "email_offers",
	    "recommendations", "ad_audiences" };
	struct cm_new_ident ni;
	struct cm_why w;
	char text[128], id[CM_SUBJECT_ID_LEN + 1];
	json_t *profile;
	uint64_t e;

	memset(&ni, 0, sizeof(ni));
	memset(&w, 0, sizeof(w));
	snprintf(text, sizeof(text), "email:history%" PRIu64 "@example.com", n);
	ident(&ni.ni_id, text);
	ni.ni_source = "import";
	profile = json_pack("{s:s, s:s, s:s}", "first_name", "Bench", "last_name", "Marker",
	    "city", "Loadham");
	if (cm_db_begin(cx->cx_db) != CM_OK)
		die("begin");
	cx->cx_now = cm_time_now_us();
	if (cm_subject_create(cx, &ni, 1, profile, id, &w) != CM_OK)
		die(w.w_code ? w.w_code : "create");
	json_decref(profile);
	for (e = 0; e < n; e++) {
		struct cm_consent_input in;
		struct cm_consent_result res;
		const char *pu = purposes[e % CM_NELEM(purposes)];

		if (e > 0 && e % BATCH == 0 && (cm_db_commit(cx->cx_db) != CM_OK ||
		    cm_db_begin(cx->cx_db) != CM_OK))
			die("commit");
		memset(&in, 0, sizeof(in));
		in.ci_subject = id;
		in.ci_purpose = &pol->pol_purposes[cm_policy_purpose_index(pol, pu)];
		in.ci_channel = -1;
		in.ci_state = (e / CM_NELEM(purposes)) % 2 ? CM_CONSENT_WITHDRAWN :
		    CM_CONSENT_GRANTED;
		in.ci_method = "web_form";
		in.ci_client = "gen";
		in.ci_evidence = json_pack("{s:s, s:s}", "form_id", "footer-signup", "url",
		    "https://shop.example/newsletter?src=bench");
		cx->cx_now = cm_time_now_us();
		if (cm_consent_record(cx, &in, &res, &w) != CM_OK)
			die(w.w_code ? w.w_code : "consent");
		json_decref(in.ci_evidence);
		json_decref(res.cr_event_ids);
	}
	if (cm_db_commit(cx->cx_db) != CM_OK)
		die("commit");
	printf("%s\n", text);
}

int
main(int argc, char **argv)
{
	struct cm_migration_set set;
	struct cm_store_opts so;
	struct cm_keys *keys;
	struct cm_store *st;
	struct cm_ctx cx;
	struct cm_policy *pol = NULL;
	char err[512], text[128], id[CM_SUBJECT_ID_LEN + 1];
	uint64_t n, seed, i, count;
	int64_t t0, us;

	if (argc < 4 || cm_crypto_init() != 0)
		die("usage: gen subjects DIR N [SEED] | gen resolve DIR N COUNT [SEED]");
	cm_store_opts_default(&so);
	so.so_cache_mb = 256;
	if (cm_keys_load(argv[2], &keys, err, sizeof(err)) != CM_OK ||
	    cm_migrations_load(NULL, &set, err, sizeof(err)) != CM_OK ||
	    cm_store_open(argv[2], keys, &set, &so, &st, err, sizeof(err)) != CM_OK)
		die(err);
	cm_migrations_free(&set);
	memset(&cx, 0, sizeof(cx));
	cx.cx_db = cm_store_db(st);
	cx.cx_keys = keys;
	snprintf(cx.cx_actor, sizeof(cx.cx_actor), "system");
	n = num(argv[3]);
	if (strcmp(argv[1], "subjects") == 0) {
		seed = argc > 4 ? num(argv[4]) : 1;
		if (argc > 5 && cm_policy_load(argv[5], &pol, err, sizeof(err)) != CM_OK)
			die(err);
		cx.cx_policy = pol;
		if (cm_db_bulk_load(cx.cx_db) != CM_OK)
			die("bulk load mode");
		t0 = cm_time_mono_us();
		for (i = 0; i < n; i++) {
			struct cm_new_ident ids[3];
			struct cm_why w;
			size_t k = 0;
			uint64_t h = mix(seed ^ mix(i));

			memset(&w, 0, sizeof(w));
			memset(ids, 0, sizeof(ids));
			snprintf(text, sizeof(text), "email:user%" PRIu64 "@example.com", i);
			ident(&ids[k].ni_id, text);
			ids[k++].ni_source = "import";
			if (h & 1) {
				snprintf(text, sizeof(text), "phone:+4477%08" PRIu64, i);
				ident(&ids[k].ni_id, text);
				ids[k++].ni_source = "import";
			}
			if (h & 2) {
				snprintf(text, sizeof(text), "loyalty:L%" PRIu64, i);
				ident(&ids[k].ni_id, text);
				ids[k++].ni_source = "import";
			}
			if (i % BATCH == 0 && cm_db_begin(cx.cx_db) != CM_OK)
				die("begin");
			cx.cx_now = cm_time_now_us();
			if (cm_subject_create(&cx, ids, k, NULL, id, &w) != CM_OK)
				die(w.w_code ? w.w_code : "create");
			if (pol != NULL) {
				static const char *const purposes[] = { "newsletter",
				    "email_offers", "recommendations", "sms_offers",
				    "ad_audiences", "newsletter" };
				uint64_t events = 2 + (h >> 8) % 5, e;

				for (e = 0; e < events; e++) {
					struct cm_consent_input in;
					struct cm_consent_result res;
					const char *pu = purposes[e % CM_NELEM(purposes)];

					memset(&in, 0, sizeof(in));
					in.ci_subject = id;
					in.ci_purpose = &pol->pol_purposes[cm_policy_purpose_index(pol, pu)];
					in.ci_channel = -1;
					in.ci_state = ((h >> (16 + e)) & 7) == 0 ?
					    CM_CONSENT_WITHDRAWN : CM_CONSENT_GRANTED;
					in.ci_method = "import";
					in.ci_client = "gen";
					if (cm_consent_record(&cx, &in, &res, &w) != CM_OK)
						die("consent");
					json_decref(res.cr_event_ids);
				}
				if ((h >> 40) % 20 == 0) {
					bool existed;
					char r[16];
					int64_t since;

					if (cm_suppression_add(&cx, &ids[0].ni_id, "unsubscribed",
					    &existed, r, &since) != CM_OK)
						die("suppress");
				}
			}
			if ((i % BATCH == BATCH - 1 || i == n - 1) && cm_db_commit(cx.cx_db) != CM_OK)
				die("commit");
		}
		us = cm_time_mono_us() - t0;
		printf("created %" PRIu64 " subjects in %.2f s (%.0f per second)\n", n,
		    (double)us / 1e6, (double)n * 1e6 / (double)(us ? us : 1));
	} else if (strcmp(argv[1], "history") == 0 && argc >= 5) {
		if (cm_policy_load(argv[4], &pol, err, sizeof(err)) != CM_OK)
			die(err);
		cx.cx_policy = pol;
		if (cm_db_bulk_load(cx.cx_db) != CM_OK)
			die("bulk load mode");
		gen_history(&cx, pol, n);
	} else if (strcmp(argv[1], "resolve") == 0 && argc >= 5) {
		struct cm_identifier q;
		uint64_t found = 0;

		count = num(argv[4]);
		seed = argc > 5 ? num(argv[5]) : 7;
		t0 = cm_time_mono_us();
		for (i = 0; i < count; i++) {
			snprintf(text, sizeof(text), "email:user%" PRIu64 "@example.com",
			    mix(seed + i) % n);
			ident(&q, text);
			if (cm_subject_resolve(&cx, &q, id) == CM_OK)
				found++;
		}
		us = cm_time_mono_us() - t0;
		printf("resolved %" PRIu64 " of %" PRIu64 " random identifiers among %" PRIu64
		    " subjects: %.2f us each on average\n", found, count, n,
		    (double)us / (double)(count ? count : 1));
		if (found != count)
			die("some identifiers were not found");
	} else {
		die("usage");
	}
	cm_store_close(st);
	cm_keys_free(keys);
	cm_policy_free(pol);
	return 0;
}
