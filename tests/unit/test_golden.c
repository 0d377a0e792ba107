/* SPDX-License-Identifier: ISC */
/*
 * Golden files, as libsodium keeps its *.exp files: the exact bytes of the
 * formats others verify, compared with the .exp files so that any
 * drift fails here before it reaches a witness or an auditor. In
 * tests/golden/:
 *
 *   checkpoint.exp      the signed note of a checkpoint: fixed Ed25519 seed,
 *                       origin and size, and the root of a fixed tree
 *   cosigned.exp        that note with a witness's cosignature at a fixed time
 *   vkeys.exp           the log's and the witness's verifier keys
 *   audit-entries.exp   the entries cm_audit_append writes for fixed events,
 *                       one per line
 *   audit-openings.exp  the sealed openings of those with private details
 *   receipt.exp         a consent receipt made from fixed facts, signed with
 *                       the checkpoint's key
 *   export.exp          a consentd-export/1 document written from fixed
 *                       sections (one value, lists of none, one and two
 *                       items, text that needs escaping) and signed with
 *                       the log's fixed key; the test also verifies it and
 *                       checks that each flipped byte fails
 *
 * Signatures are deterministic, so the notes are pinned whole. An audit
 * entry holds three values that are by design not reproducible: "t" (the
 * clock when it was appended), "s" (a random pseudonym for the subject)
 * and "c" (a commitment over a random salt). The test checks the stored
 * bytes are exactly the canonical JSON of the entry, then compares them
 * with those three values written as placeholders ("@T@", "@S1@" for the
 * first subject met, "@C@"), and checks each value on its own: t lies
 * between the clock readings around the append, s has the pseudonym's
 * form and is one per subject, and c is the SHA-256 of the salt and the
 * details that the sealed opening holds (whose salt is "@SALT@" there).
 *
 * To regenerate after a deliberate change of format: make golden, then
 * read `git diff tests/golden` before committing it.
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
#include <jansson.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/export.h"
#include "consentd/merkle.h"
#include "consentd/receipt.h"
#include "consentd/store.h"
#include "consentd/util.h"

#define GOLDEN_DIR	"tests/golden/"
#define LOG_ORIGIN	"shop.example/consentd"
#define WITNESS_NAME	"dpo.shop.example/witness"
#define COSIGNED_AT	UINT64_C(1795000000)
#define TREE_SIZE	8

/* CONSENTD_GOLDEN_WRITE=1: write the .exp files instead of comparing. */
static bool
writing(void)
{
	const char *v = getenv("CONSENTD_GOLDEN_WRITE");

	return v != NULL && strcmp(v, "1") == 0;
}

/* Compares GOT (LEN bytes) with tests/golden/NAME, or writes it there. */
static void
golden(const char *name, const char *got, size_t len)
{
	char path[256];
	char *want;
	size_t wlen, i;
	FILE *f;

	snprintf(path, sizeof(path), GOLDEN_DIR "%s", name);
	if (writing()) {
		assert_non_null(f = fopen(path, "w"));
		assert_int_equal(fwrite(got, 1, len, f), len);
		assert_int_equal(fclose(f), 0);
		print_message("wrote %s\n", path);
		return;
	}
	want = cm_file_read(path, 1 << 20, &wlen);
	if (want == NULL)
		fail_msg("cannot read %s (make golden writes it)", path);
	for (i = 0; i < len && i < wlen && got[i] == want[i]; i++)
		;
	if (i != len || i != wlen) {
		print_error("%s differs at byte %zu\n--- expected\n%s\n--- got\n%.*s\n", path, i,
		    want, (int)len, got);
		free(want);
		fail_msg("%s: the format drifted (if on purpose: make golden, and review the "
		    "diff)", path);
	}
	free(want);
}

/* ---- checkpoint notes ---------------------------------------------------- */

static void
keypair(uint8_t first, uint8_t pk[32], uint8_t sk[64])
{
	uint8_t seed[32];
	size_t i;

	for (i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(first + i);
	assert_int_equal(cm_ed25519_from_seed(pk, sk, seed), 0);
}

/* The root of a tree of TREE_SIZE fixed entries. */
static void
fixed_root(uint8_t root[32])
{
	struct cm_merkle_frontier fr;
	uint8_t leaf[32];
	char entry[64];
	int i, n;

	cm_merkle_frontier_init(&fr);
	for (i = 0; i < TREE_SIZE; i++) {
		n = snprintf(entry, sizeof(entry), "{\"i\":%d,\"type\":\"golden\",\"v\":1}", i);
		cm_merkle_leaf_hash(leaf, (const uint8_t *)entry, (size_t)n);
		assert_int_equal(cm_merkle_frontier_push(&fr, leaf), 0);
	}
	cm_merkle_frontier_root(&fr, root);
}

static void
test_checkpoint(void **state)
{
	uint8_t lpk[32], lsk[64], wpk[32], wsk[64], root[32];
	char body[CM_AUDIT_ORIGIN_MAX + 128], opened[CM_NOTE_MAX], vkeys[600], lv[256], wv[256];
	struct cm_buf note = { 0 }, cosigned = { 0 };
	uint64_t t = 0;

	(void)state;
	keypair(0x01, lpk, lsk);
	keypair(0x41, wpk, wsk);
	fixed_root(root);
	assert_int_equal(cm_checkpoint_body(body, sizeof(body), LOG_ORIGIN, TREE_SIZE, root), 0);
	assert_int_equal(cm_note_sign(&note, body, LOG_ORIGIN, lsk, lpk), 0);
	golden("checkpoint.exp", note.b_data, note.b_len);

	cm_buf_append(&cosigned, note.b_data, note.b_len);
	assert_int_equal(cm_note_cosign(&cosigned, body, WITNESS_NAME, wsk, wpk, COSIGNED_AT), 0);
	golden("cosigned.exp", cosigned.b_data, cosigned.b_len);

	cm_note_vkey(lv, sizeof(lv), LOG_ORIGIN, CM_NOTE_ED25519, lpk);
	cm_note_vkey(wv, sizeof(wv), WITNESS_NAME, CM_NOTE_COSIGNATURE, wpk);
	assert_true(snprintf(vkeys, sizeof(vkeys), "%s\n%s\n", lv, wv) < (int)sizeof(vkeys));
	golden("vkeys.exp", vkeys, strlen(vkeys));

	/* What was pinned also reads back. */
	assert_int_equal(cm_note_open(cosigned.b_data, lv, opened, sizeof(opened)), 0);
	assert_string_equal(opened, body);
	assert_int_equal(cm_note_check_cosignature(cosigned.b_data, wv, &t), 0);
	assert_true(t == COSIGNED_AT);
	cm_buf_free(&note);
	cm_buf_free(&cosigned);
}

/* ---- audit entries -------------------------------------------------------- */

struct fx {
	char		 dir[64];
	struct cm_keys	*keys;
	struct cm_store	*store;
	struct cm_db	*db;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct cm_migration_set set;
	char err[512];

	assert_non_null(f);
	/* Under build/, which the tests run beside and git ignores. */
	strcpy(f->dir, "build/golden-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(cm_keys_create(f->dir, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_load(f->dir, &f->keys, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_migrations_load(NULL, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_create(f->dir, f->keys, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_open(f->dir, f->keys, &set, NULL, &f->store, err,
	    sizeof(err)), CM_OK);
	cm_migrations_free(&set);
	f->db = cm_store_db(f->store);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	cm_store_close(f->store);
	cm_keys_free(f->keys);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

#define SUBJECT_ANA	"sub_anaanaanaanaanaanaanaanaan"
#define SUBJECT_BEN	"sub_benbenbenbenbenbenbenbenbe"

static const uint8_t key_ana[32] = { 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
	0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
	0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0 };
static const uint8_t key_ben[32] = { 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
	0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5,
	0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf };

/* One fixed event: JSON texts for its details and private details. */
struct golden_event {
	const char	*type;
	const char	*actor;
	const char	*subject;
	const uint8_t	*key;
	const char	*details;
	const char	*private_;
};

/* Shaped like what the domain appends; the values are fixed. */
static const struct golden_event events[] = {
	{ "token.created", "cli", NULL, NULL,
	    "{\"name\":\"crm-sync\",\"scopes\":[\"consent:check\",\"consent:read\"]}", NULL },
	{ "policy.version", "system", NULL, NULL,
	    "{\"purpose\":\"newsletter\",\"version\":2,\"title\":"
	    "\"Style newsletter \u2014 \u00abZo\u00eb\u00bb \\\"weekly\\\"/\\n\",\"sha256\":"
	    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}", NULL },
	{ "subject.created", "token:crm-sync", SUBJECT_ANA, key_ana,
	    "{\"identifier_types\":[\"email\",\"phone\"],\"profile_attributes\":[\"first_name\"]}",
	    "{\"identifiers\":[\"email:ana@example.com\",\"phone:+447700900123\"],"
	    "\"profile\":{\"first_name\":\"Ana\"}}" },
	{ "consent.recorded", "token:crm-sync", SUBJECT_ANA, key_ana,
	    "{\"event_id\":\"evt_01kb2c3d4e5f6g7h2j3k4m5n6p\",\"purpose\":\"newsletter\","
	    "\"channel\":\"email\",\"state\":\"granted\",\"method\":\"web_form\","
	    "\"notice_version\":2,\"collected_at\":1795000000000000,\"sale_ref\":false,"
	    "\"superseded\":false}",
	    "{\"evidence\":{\"ip\":\"203.0.113.7\",\"url\":"
	    "\"https://www.northwind-threads.example/signup\"}}" },
	{ "consent.recorded", "token:crm-sync", SUBJECT_BEN, key_ben,
	    "{\"event_id\":\"evt_01kb2c3d4e5f6g7h2j3k4m5n6q\",\"purpose\":\"sms_offers\","
	    "\"channel\":\"sms\",\"state\":\"refused\",\"method\":\"api\","
	    "\"notice_version\":1,\"collected_at\":1795000000500000,\"sale_ref\":false,"
	    "\"superseded\":false}", NULL },
	{ "subject.unsubscribed", "subject", SUBJECT_ANA, key_ana,
	    "{\"reason\":\"too_frequent\",\"purposes\":3,\"method\":\"link\"}",
	    "{\"comment\":\"Zo\\u00eb: \\\"too many\\\" \\\\ emails/week\\n\\t\\u2014 sorry\"}" },
	{ "erasure.completed", "token:dpo", NULL, NULL,
	    "{\"counts\":{\"identifiers\":2,\"consents\":1,\"preferences\":0},"
	    "\"subject_tag\":\"3b1f0c\",\"suppressed_tags\":[\"a1\",\"b2\"],"
	    "\"since\":1795000000900000}", NULL },
};

#define NEVENTS	CM_NELEM(events)

struct grab {
	char	*text[NEVENTS];
	size_t	 len[NEVENTS];
};

static int
grab_entry(void *arg, uint64_t idx, const void *e, size_t len, const uint8_t *leaf)
{
	struct grab *g = arg;

	(void)leaf;
	assert_true(idx < NEVENTS);
	g->text[idx] = cm_strndup(e, len);
	g->len[idx] = len;
	return 0;
}

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *j;

	if (text == NULL)
		return NULL;
	j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		fail_msg("%s: %s", text, je.text);
	return j;
}

/* The pseudonym's form: "psn_" and 26 lower-case base32 characters. */
static bool
pseudonym_form(const char *s)
{
	return strlen(s) == 30 && strncmp(s, "psn_", 4) == 0 &&
	    strspn(s + 4, "abcdefghijklmnopqrstuvwxyz234567") == 26;
}

/*
 * Opens entry IDX's sealed opening, checks that COMMIT is SHA-256(salt ||
 * details), and appends the opening, salt replaced, to OUT.
 */
static void
check_opening(struct fx *f, uint64_t idx, const struct golden_event *ev, const char *commit,
    struct cm_buf *out)
{
	struct cm_buf sealed = { 0 }, msg = { 0 };
	char subject[64], ad[96], hex[65], *text;
	uint8_t *plain, salt[32], h[32];
	json_t *o, *want;
	const char *details, *salt64;
	size_t plen;
	int n;

	assert_int_equal(cm_store_audit_opening_get(f->db, idx, &sealed, subject,
	    sizeof(subject)), CM_OK);
	assert_string_equal(subject, ev->subject);
	assert_true(sealed.b_len > CM_AEAD_OVERHEAD);
	plen = sealed.b_len - CM_AEAD_OVERHEAD;
	plain = cm_malloc(plen + 1);
	n = snprintf(ad, sizeof(ad), "%s:%llu", ev->subject, (unsigned long long)idx);
	assert_int_equal(cm_aead_open(plain, ev->key, ad, (size_t)n,
	    (const uint8_t *)sealed.b_data, sealed.b_len), 0);
	plain[plen] = '\0';
	assert_non_null(o = parse((const char *)plain));
	assert_int_equal(json_unpack(o, "{s:s, s:s}", "details", &details, "salt", &salt64), 0);
	/* The details are the canonical form of what was given. */
	want = parse(ev->private_);
	text = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	assert_string_equal(details, text);
	free(text);
	json_decref(want);
	assert_int_equal(cm_base64_decode(salt, sizeof(salt), salt64, strlen(salt64)), 32);
	cm_buf_append(&msg, salt, sizeof(salt));
	cm_buf_append(&msg, details, strlen(details));
	cm_sha256(h, msg.b_data, msg.b_len);
	cm_hex_encode(hex, h, sizeof(h));
	assert_string_equal(commit, hex);
	json_object_set_new(o, "salt", json_string("@SALT@"));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	cm_buf_appendf(out, "%s\n", text);
	free(text);
	json_decref(o);
	free(plain);
	cm_buf_free(&msg);
	cm_buf_free(&sealed);
}

static void
test_audit_entries(void **state)
{
	struct fx *f = *state;
	struct cm_buf lines = { 0 }, openings = { 0 };
	int64_t before[NEVENTS], after[NEVENTS];
	char pseudo[2][40] = { "", "" }, ph[8], *text;
	struct grab g;
	json_t *j, *t, *s, *c;
	uint64_t idx;
	size_t i, k;

	assert_int_equal(cm_db_begin(f->db), CM_OK);
	assert_int_equal(cm_store_meta_put(f->db, "audit_origin", LOG_ORIGIN), CM_OK);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	for (i = 0; i < NEVENTS; i++) {
		struct cm_audit_event ev = { events[i].type, events[i].actor,
		    parse(events[i].details), events[i].subject, events[i].key,
		    parse(events[i].private_) };

		before[i] = cm_time_now_us();
		assert_int_equal(cm_db_begin(f->db), CM_OK);
		assert_int_equal(cm_audit_append(f->db, &ev, &idx), CM_OK);
		assert_int_equal(cm_db_commit(f->db), CM_OK);
		after[i] = cm_time_now_us();
		assert_true(idx == i);
		json_decref(ev.ae_details);
		json_decref(ev.ae_private);
	}
	memset(&g, 0, sizeof(g));
	assert_int_equal(cm_store_audit_scan(f->db, 0, NEVENTS, grab_entry, &g), CM_OK);
	for (i = 0; i < NEVENTS; i++) {
		assert_non_null(g.text[i]);
		j = parse(g.text[i]);
		/* The stored bytes are the canonical form, so the placeholders
		 * below stand in for values only, never for layout. */
		text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		assert_string_equal(text, g.text[i]);
		assert_true(cm_audit_entry_canonical(g.text[i], g.len[i], j));
		free(text);

		t = json_object_get(j, "t");
		assert_true(json_is_integer(t));
		assert_true(json_integer_value(t) >= before[i] &&
		    json_integer_value(t) <= after[i]);
		json_object_set_new(j, "t", json_string("@T@"));

		s = json_object_get(j, "s");
		assert_true((s != NULL) == (events[i].subject != NULL));
		if (s != NULL) {
			assert_true(pseudonym_form(json_string_value(s)));
			k = strcmp(events[i].subject, SUBJECT_ANA) == 0 ? 0 : 1;
			if (pseudo[k][0] == '\0')
				snprintf(pseudo[k], sizeof(pseudo[k]), "%s", json_string_value(s));
			assert_string_equal(json_string_value(s), pseudo[k]);
			assert_string_not_equal(pseudo[k], pseudo[1 - k]);
			/* Ana appears first: @S1@; Ben: @S2@. */
			snprintf(ph, sizeof(ph), "@S%zu@", k + 1);
			json_object_set_new(j, "s", json_string(ph));
		}

		c = json_object_get(j, "c");
		assert_true((c != NULL) == (events[i].private_ != NULL));
		if (c != NULL) {
			assert_int_equal(strlen(json_string_value(c)), 64);
			assert_int_equal(strspn(json_string_value(c), "0123456789abcdef"), 64);
			check_opening(f, i, &events[i], json_string_value(c), &openings);
			json_object_set_new(j, "c", json_string("@C@"));
		}
		text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		cm_buf_appendf(&lines, "%s\n", text);
		free(text);
		json_decref(j);
		free(g.text[i]);
	}
	golden("audit-entries.exp", lines.b_data, lines.b_len);
	golden("audit-openings.exp", openings.b_data, openings.b_len);
	cm_buf_free(&lines);
	cm_buf_free(&openings);
}

/* ---- consent receipts ---------------------------------------------------- */

#define RCPT_INDEX	5
#define RCPT_ENTRY	"{\"actor\":\"token:checkout\",\"c\":\"" \
	"5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592\",\"d\":{" \
	"\"channel\":\"email\",\"collected_at\":1795000000000000,\"event_id\":" \
	"\"evt_23abcdefghijklmnopqrstuvwx\",\"method\":\"web_form\",\"notice_version\":2," \
	"\"purpose\":\"newsletter\",\"sale_ref\":false,\"state\":\"granted\"," \
	"\"superseded\":false},\"i\":5,\"s\":\"psn_abcdefghijklmnopqrstuvwxyz\"," \
	"\"t\":1795000000250000,\"type\":\"consent.recorded\",\"v\":1}"

/* The leaf hashes of the receipt's tree: entry RCPT_INDEX is RCPT_ENTRY. */
static uint8_t rcpt_leaves[TREE_SIZE][32];

static void
rcpt_tree(void)
{
	char entry[64];
	int i, n;

	for (i = 0; i < TREE_SIZE; i++) {
		if (i == RCPT_INDEX) {
			cm_merkle_leaf_hash(rcpt_leaves[i], (const uint8_t *)RCPT_ENTRY,
			    strlen(RCPT_ENTRY));
			continue;
		}
		n = snprintf(entry, sizeof(entry), "{\"i\":%d,\"type\":\"golden\",\"v\":1}", i);
		cm_merkle_leaf_hash(rcpt_leaves[i], (const uint8_t *)entry, (size_t)n);
	}
}

/* The hash of the perfect subtree (LEVEL, INDEX) of rcpt_leaves. */
static int
rcpt_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
	uint8_t l[32], r[32];

	(void)ctx;
	if (level == 0) {
		if (index >= TREE_SIZE)
			return -1;
		memcpy(out, rcpt_leaves[index], 32);
		return 0;
	}
	if (rcpt_get(NULL, level - 1, 2 * index, l) != 0 ||
	    rcpt_get(NULL, level - 1, 2 * index + 1, r) != 0)
		return -1;
	cm_merkle_node_hash(out, l, r);
	return 0;
}

/* The facts of the fixed receipt, and what they point into. */
struct rcpt {
	struct cm_event_row	 ev;
	uint8_t			 pk[32], sk[64], root[32], sha[32];
	uint8_t			 proof[CM_MERKLE_MAX_PROOF][32];
	struct cm_buf		 note;
	json_t			*policy;
	struct cm_receipt_facts	 f;
	char			 vkey[256];
};

static void
rcpt_facts(struct rcpt *x)
{
	char body[CM_AUDIT_ORIGIN_MAX + 128];
	size_t i, n;

	memset(x, 0, sizeof(*x));
	keypair(0x01, x->pk, x->sk);
	rcpt_tree();
	assert_int_equal(cm_merkle_root(TREE_SIZE, rcpt_get, NULL, x->root), 0);
	assert_int_equal(cm_merkle_inclusion_proof(RCPT_INDEX, TREE_SIZE, rcpt_get, NULL,
	    x->proof, CM_MERKLE_MAX_PROOF, &n), 0);
	assert_int_equal(cm_checkpoint_body(body, sizeof(body), LOG_ORIGIN, TREE_SIZE,
	    x->root), 0);
	assert_int_equal(cm_note_sign(&x->note, body, LOG_ORIGIN, x->sk, x->pk), 0);
	cm_note_vkey(x->vkey, sizeof(x->vkey), LOG_ORIGIN, CM_NOTE_ED25519, x->pk);
	for (i = 0; i < 32; i++)
		x->sha[i] = (uint8_t)(0xa0 + i);
	strcpy(x->ev.e_event_id, "evt_23abcdefghijklmnopqrstuvwx");
	strcpy(x->ev.e_subject, "sub_23abcdefghijklmnopqrstuvwx");
	strcpy(x->ev.e_purpose, "newsletter");
	strcpy(x->ev.e_channel, "email");
	strcpy(x->ev.e_state, "granted");
	strcpy(x->ev.e_method, "web_form");
	x->ev.e_notice_version = 2;
	x->ev.e_collected_us = INT64_C(1795000000000000);
	x->ev.e_recorded_us = INT64_C(1795000000250000);
	x->ev.e_audit_index = RCPT_INDEX;
	x->policy = json_pack("{s:s, s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}, s:s, s:{s:s}}}",
	    "language", "en-GB", "jurisdiction", "gdpr", "privacy_notice_url",
	    "https://shop.example/privacy", "controller", "name", "Shop Example GmbH",
	    "address", "street_address", "Hauptstraße 1", "locality", "Berlin",
	    "country", "DE", "email", "privacy@shop.example", "dpo", "email",
	    "dpo@shop.example");
	assert_non_null(x->policy);
	x->f.rf_event = &x->ev;
	x->f.rf_pseudonym = "psn_abcdefghijklmnopqrstuvwxyz";
	x->f.rf_lawful_basis = "consent";
	x->f.rf_purpose_title = "Newsletter";
	x->f.rf_notice_sha256 = x->sha;
	x->f.rf_policy = x->policy;
	x->f.rf_entry = RCPT_ENTRY;
	x->f.rf_entry_len = strlen(RCPT_ENTRY);
	x->f.rf_size = TREE_SIZE;
	x->f.rf_root = x->root;
	x->f.rf_proof = (const uint8_t (*)[32])x->proof;
	x->f.rf_nproof = n;
	x->f.rf_checkpoint = x->note.b_data;
	x->f.rf_origin = LOG_ORIGIN;
}

static void
rcpt_free(struct rcpt *x)
{
	cm_buf_free(&x->note);
	json_decref(x->policy);
}

/* Whether R, with the member A.B set to V (stolen), still verifies. */
static int
rcpt_tampered(json_t *r, const char *vkey, const char *a, const char *b, json_t *v,
    const char *why)
{
	struct cm_receipt_report rr;
	json_t *c = json_deep_copy(r);
	int rc;

	json_object_set_new(b ? json_object_get(c, a) : c, b ? b : a, v);
	rc = cm_receipt_verify(c, vkey, &rr);
	if (rc != 0 && why != NULL && strncmp(rr.rr_why, why, strlen(why)) != 0)
		fail_msg("%s.%s: failed for another reason: %s", a, b ? b : "", rr.rr_why);
	json_decref(c);
	return rc;
}

static void
test_receipt(void **state)
{
	struct cm_receipt_report rr;
	struct rcpt x;
	uint8_t opk[32], osk[64];
	char ov[256], *t, *t2;
	json_t *r, *r2, *proof;

	(void)state;
	rcpt_facts(&x);
	assert_int_equal(cm_receipt_build(&x.f, x.sk, x.pk, &r), CM_OK);
	t = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(t);
	golden("receipt.exp", t, strlen(t));

	/* The same facts give the same bytes. */
	assert_int_equal(cm_receipt_build(&x.f, x.sk, x.pk, &r2), CM_OK);
	t2 = json_dumps(r2, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(t, t2);
	free(t2);
	json_decref(r2);

	assert_int_equal(cm_receipt_verify(r, x.vkey, &rr), 0);
	assert_false(rr.rr_key_from_receipt);
	assert_string_equal(rr.rr_event_id, "evt_23abcdefghijklmnopqrstuvwx");
	assert_true(rr.rr_index == RCPT_INDEX && rr.rr_size == TREE_SIZE);
	assert_int_equal(cm_receipt_verify(r, NULL, &rr), 0);
	assert_true(rr.rr_key_from_receipt);

	/* Another key: neither the receipt nor its checkpoint verify by it. */
	keypair(0x41, opk, osk);
	cm_note_vkey(ov, sizeof(ov), LOG_ORIGIN, CM_NOTE_ED25519, opk);
	assert_int_not_equal(cm_receipt_verify(r, ov, &rr), 0);
	assert_non_null(strstr(rr.rr_why, "signature"));

	/* Any change to what was signed: the id, then the signature, fail. */
	assert_int_not_equal(rcpt_tampered(r, x.vkey, "consent", "purpose",
	    json_string("email_offers"), "receipt_id"), 0);
	assert_int_not_equal(rcpt_tampered(r, x.vkey, "receipt_id",
	    NULL, json_string("00000000-0000-8000-8000-000000000000"), "receipt_id"), 0);
	assert_int_not_equal(rcpt_tampered(r, x.vkey, "signature", "value",
	    json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="),
	    "signature"), 0);
	assert_int_not_equal(rcpt_tampered(r, x.vkey, "signature", "domain",
	    json_string("consentd-receipt/0"), "signature"), 0);
	/* The signature's own members are signed too, all but its value. */
	assert_int_not_equal(rcpt_tampered(r, x.vkey, "signature", "vkey",
	    json_string(ov), "signature"), 0);
	assert_int_not_equal(rcpt_tampered(r, x.vkey, "signature", "extra",
	    json_true(), "signature"), 0);
	proof = json_deep_copy(json_object_get(json_object_get(r, "audit"), "proof"));
	json_array_set_new(proof, 0, json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
	assert_int_not_equal(rcpt_tampered(r, x.vkey, "audit", "proof", proof, "receipt_id"), 0);
	assert_int_equal(rcpt_tampered(r, x.vkey, "format", NULL, json_string("consentd-receipt/1"),
	    NULL), 0);

	/*
	 * Signed by the right key, yet saying what the log does not: the
	 * entry's check catches it, whatever the signature says.
	 */
	json_decref(r);
	strcpy(x.ev.e_state, "withdrawn");
	assert_int_equal(cm_receipt_build(&x.f, x.sk, x.pk, &r), CM_OK);
	assert_int_not_equal(cm_receipt_verify(r, x.vkey, &rr), 0);
	assert_non_null(strstr(rr.rr_why, "differ from what the entry records"));
	json_decref(r);
	strcpy(x.ev.e_state, "granted");
	x.f.rf_pseudonym = "psn_zzzzzzzzzzzzzzzzzzzzzzzzzz";
	assert_int_equal(cm_receipt_build(&x.f, x.sk, x.pk, &r), CM_OK);
	assert_int_not_equal(cm_receipt_verify(r, x.vkey, &rr), 0);
	assert_non_null(strstr(rr.rr_why, "subject.pseudonym"));
	json_decref(r);
	x.f.rf_pseudonym = "psn_abcdefghijklmnopqrstuvwxyz";
	x.ev.e_audit_index = 4;
	assert_int_equal(cm_receipt_build(&x.f, x.sk, x.pk, &r), CM_OK);
	assert_int_not_equal(cm_receipt_verify(r, x.vkey, &rr), 0);
	assert_non_null(strstr(rr.rr_why, "audit.proof"));
	json_decref(r);
	free(t);
	rcpt_free(&x);
}

/* A receipt's signature is no checkpoint's: the domain keeps them apart. */
static void
test_receipt_domain(void **state)
{
	uint8_t pk[32], sk[64], sig[64];
	const char msg[] = "shop.example/consentd\n8\nAAAA\n";

	(void)state;
	keypair(0x01, pk, sk);
	assert_int_equal(cm_audit_sign_detached(sig, CM_RECEIPT_DOMAIN, msg, strlen(msg), sk), 0);
	assert_int_equal(cm_audit_verify_detached(sig, CM_RECEIPT_DOMAIN, msg, strlen(msg), pk), 0);
	assert_int_not_equal(cm_audit_verify_detached(sig, "consentd-export/1", msg, strlen(msg),
	    pk), 0);
	assert_int_not_equal(cm_audit_verify_detached(sig, "x", msg, strlen(msg), pk), 0);
	assert_false(cm_event_id_valid("evt_23abcdefghijklmnopqrstuv"));
	assert_false(cm_event_id_valid("evt_23abcdefghijklmnopqrstuv18"));
	assert_false(cm_event_id_valid("sub_23abcdefghijklmnopqrstuvwx"));
	assert_true(cm_event_id_valid("evt_23abcdefghijklmnopqrstuvwx"));
}

/* ---- the export document (docs/export-format.md) ------------------------- */

static int
buf_sink(void *arg, const void *p, size_t len)
{
	cm_buf_append(arg, p, len);
	return 0;
}

/* A document of the package's sections with fixed content, into OUT. */
static void
fixed_export(struct cm_buf *out, const uint8_t pk[32], const uint8_t sk[64])
{
	struct cm_export x;

	cm_export_begin(&x, buf_sink, out);
	cm_export_value(&x, "generated_at", json_string("2026-12-01T09:30:00.000000Z"));
	cm_export_value(&x, "request", json_pack("{s:s, s:s, s:s, s:s, s:s}", "id",
	    "dsr_aaaaaaaaaaaaaaaaaaaaaaaaaa", "type", "access", "jurisdiction", "uk_gdpr",
	    "received_at", "2026-11-30T12:00:00.000000Z", "due_at",
	    "2026-12-30T12:00:00.000000Z"));
	cm_export_value(&x, "subject", json_pack("{s:s, s:s, s:s}", "subject_id",
	    "sub_bbbbbbbbbbbbbbbbbbbbbbbbbb", "state", "active", "created_at",
	    "2026-01-02T03:04:05.000000Z"));
	cm_export_list_begin(&x, "identifiers");
	cm_export_list_item(&x, json_pack("{s:s, s:b, s:s}", "identifier",
	    "email:ada@example.com", "verified", 1, "source", "api"));
	cm_export_list_end(&x);
	cm_export_value(&x, "profile", json_pack("{s:s, s:s}", "first_name", "Ada",
	    "note", "line\nbreak, \"quoted\" and \u00e9"));
	cm_export_list_begin(&x, "consents");
	cm_export_list_end(&x);
	cm_export_list_begin(&x, "consent_history");
	cm_export_list_item(&x, json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "event_id",
	    "evt_cccccccccccccccccccccccccc", "purpose", "newsletter", "channel", "email",
	    "state", "granted", "evidence", "form_id", "signup"));
	cm_export_list_item(&x, json_pack("{s:s, s:s, s:s, s:s, s:n}", "event_id",
	    "evt_dddddddddddddddddddddddddd", "purpose", "newsletter", "channel", "email",
	    "state", "withdrawn", "evidence"));
	cm_export_list_end(&x);
	cm_export_value(&x, "processing", json_pack("{s:[{s:s, s:s}]}", "purposes", "id",
	    "newsletter", "lawful_basis", "consent"));
	cm_export_list_begin(&x, "systems");
	cm_export_list_end(&x);
	assert_int_equal(cm_export_finish(&x, LOG_ORIGIN, sk, pk), 0);
}

static int
verify_bytes(const char *doc, size_t len, const char *vkey, struct cm_export_check *ec)
{
	FILE *f = fmemopen((void *)(uintptr_t)doc, len, "r");
	int rc;

	assert_non_null(f);
	rc = cm_export_verify(f, vkey, ec);
	fclose(f);
	return rc;
}

static void
test_export(void **state)
{
	struct cm_export_check ec;
	struct cm_buf doc = { 0 };
	uint8_t pk[32], sk[64], opk[32], osk[64];
	char vkey[256], other[256];
	size_t i;

	(void)state;
	keypair(1, pk, sk);
	keypair(0x41, opk, osk);
	cm_note_vkey(vkey, sizeof(vkey), LOG_ORIGIN, CM_NOTE_ED25519, pk);
	cm_note_vkey(other, sizeof(other), LOG_ORIGIN, CM_NOTE_ED25519, opk);
	fixed_export(&doc, pk, sk);
	golden("export.exp", doc.b_data, doc.b_len);
	/* It is one JSON document, and it verifies with the log's key only. */
	json_t *j = json_loadb(doc.b_data, doc.b_len, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "manifest"),
	    "sections")), 10);
	json_decref(j);
	assert_int_equal(verify_bytes(doc.b_data, doc.b_len, vkey, &ec), 0);
	assert_int_equal(ec.ec_sections, 10);
	assert_string_equal(ec.ec_key_name, LOG_ORIGIN);
	assert_int_equal(verify_bytes(doc.b_data, doc.b_len, other, &ec), -1);
	/* Every byte counts: flipping any one of them fails the verification. */
	for (i = 0; i < doc.b_len; i++) {
		doc.b_data[i] ^= 0x20;
		if (verify_bytes(doc.b_data, doc.b_len, vkey, &ec) == 0)
			fail_msg("flipping byte %zu still verifies", i);
		doc.b_data[i] ^= 0x20;
	}
	/* So does cutting it short. */
	assert_int_equal(verify_bytes(doc.b_data, doc.b_len - 1, vkey, &ec), -1);
	cm_buf_free(&doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_export),
		cmocka_unit_test_setup_teardown(test_audit_entries, setup, teardown),
		cmocka_unit_test(test_receipt),
		cmocka_unit_test(test_receipt_domain),
	};

	if (cm_crypto_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
