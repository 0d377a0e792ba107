/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the audit module against a real SQLCipher store: entries
 * are canonical and hold no personal data, private details become a
 * commitment whose opening is sealed under the subject key, malformed
 * events are refused without writing, an append rolls back with its
 * transaction, notes and vkeys round-trip, and forgetting a subject
 * (erasure) leaves the log verifying and every proof valid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define SQLITE_HAS_CODEC 1
#include <sqlite3.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/merkle.h"
#include "consentd/store.h"
#include "consentd/util.h"

struct fx {
	char			 dir[64];
	struct cm_keys		*keys;
	struct cm_store		*store;
	struct cm_db		*db;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct cm_migration_set set;
	char err[512];

	assert_non_null(f);
	strcpy(f->dir, "/tmp/consentd-audit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(cm_keys_create(f->dir, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_keys_load(f->dir, &f->keys, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_migrations_load(NULL, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_create(f->dir, f->keys, &set, err, sizeof(err)), CM_OK);
	assert_int_equal(cm_store_open(f->dir, f->keys, &set, NULL, &f->store, err,
	    sizeof(err)), CM_OK);
	cm_migrations_free(&set);
	f->db = cm_store_db(f->store);
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	assert_int_equal(cm_store_meta_put(f->db, "audit_origin", "test.example/log"), CM_OK);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
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

static uint64_t
append(struct fx *f, const struct cm_audit_event *ev)
{
	uint64_t idx = UINT64_MAX;

	assert_int_equal(cm_db_begin(f->db), CM_OK);
	assert_int_equal(cm_audit_append(f->db, ev, &idx), CM_OK);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	return idx;
}

struct grab {
	char	*text;
};

static int
grab_entry(void *arg, uint64_t idx, const void *e, size_t len, const uint8_t *leaf)
{
	struct grab *g = arg;

	(void)idx;
	(void)leaf;
	g->text = cm_strndup(e, len);
	return 1;
}

static char *
read_entry(struct fx *f, uint64_t idx)
{
	struct grab g = { NULL };

	assert_int_equal(cm_store_audit_scan(f->db, idx, idx + 1, grab_entry, &g), CM_OK);
	assert_non_null(g.text);
	return g.text;
}

static void
test_entry_is_canonical(void **state)
{
	struct fx *f = *state;
	json_t *d = json_pack("{s:s, s:i, s:[s,s]}", "zeta", "last", "alpha", 7,
	    "list", "a", "b");
	struct cm_audit_event ev = { "token.created", "system", d, NULL, NULL, NULL };
	char *text, *re;
	json_t *j;

	assert_int_equal(append(f, &ev), 0);
	assert_int_equal(append(f, &ev), 1);
	text = read_entry(f, 1);
	j = json_loads(text, 0, NULL);
	assert_non_null(j);
	re = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, re);
	assert_int_equal(json_integer_value(json_object_get(j, "i")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "v")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "token.created");
	assert_string_equal(json_string_value(json_object_get(j, "actor")), "system");
	assert_true(json_is_integer(json_object_get(j, "t")));
	assert_null(strchr(text, ' '));
	assert_ptr_equal(strstr(text, "{\"actor\""), text);
	free(re);
	free(text);
	json_decref(j);
	json_decref(d);
}

/* The old check: jansson's compact, sorted dump of the parse is the input. */
static bool
canonical_by_dump(const char *s, size_t len, const json_t *j)
{
	char *d;
	bool ok;

	if (j == NULL)
		return false;
	d = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	ok = d != NULL && strlen(d) == len && memcmp(d, s, len) == 0;
	free(d);
	return ok;
}

/* Checks S both ways; they must agree, and CANON say which. */
static void
check_canonical(const char *s, size_t len, int canon)
{
	json_error_t je;
	json_t *j;
	bool got;

	j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
	got = cm_audit_entry_canonical(s, len, j);
	if (got != canonical_by_dump(s, len, j))
		fail_msg("the canonical check and the dump disagree on %.*s", (int)len, s);
	if (canon >= 0 && got != (canon != 0))
		fail_msg("%.*s: expected %s", (int)len, s, canon ? "canonical" : "not canonical");
	json_decref(j);
}

static void
test_canonical_check(void **state)
{
	static const struct {
		const char	*s;
		int		 canon;
	} cases[] = {
		{ "{\"actor\":\"system\",\"d\":{\"n\":0,\"note\":\"x\"},\"i\":0,"
		  "\"t\":1795361941606516,\"type\":\"test.synthetic\",\"v\":1}", 1 },
		{ "{}", 1 },
		{ "[]", 1 },
		{ "{\"a\":[],\"b\":{},\"c\":[true,false,null,-1,0,12]}", 1 },
		/* Keys sorted as unsigned bytes, a prefix first. */
		{ "{\"b\":1,\"a\":2}", 0 },
		{ "{\"a\":1,\"ab\":2}", 1 },
		{ "{\"ab\":1,\"a\":2}", 0 },
		{ "{\"\":1,\"a\":2}", 1 },
		{ "{\"z\":1,\"\xc3\xa9\":2}", 1 },
		{ "{\"\xc3\xa9\":1,\"z\":2}", 0 },
		{ "{\"a\":{\"y\":1,\"x\":2},\"b\":1}", 0 },
		{ "{\"a\":[{\"x\":1,\"y\":2},{\"y\":1}],\"b\":1}", 1 },
		/* Keys with an escape sort by their decoded bytes. */
		{ "{\"\\\"\":1,\"#\":2}", 1 },
		{ "{\"#\":1,\"\\\"\":2}", 0 },
		{ "{\"a\":1,\"a\\n\":2}", 1 },
		{ "{\"a\\u0041\":1}", 0 },
		/* Duplicates and malformed JSON never pass. */
		{ "{\"a\":1,\"a\":1}", 0 },
		{ "{\"a\":1,\"b\":2,\"a\":3}", 0 },
		{ "{\"a\":", 0 },
		{ "{\"a\":1}x", 0 },
		{ "\"a\"", 0 },
		{ "", 0 },
		/* White space anywhere outside strings. */
		{ "{\"a\": 1}", 0 },
		{ " {\"a\":1}", 0 },
		{ "{\"a\":1}\n", 0 },
		{ "{\"a\":[1, 2]}", 0 },
		{ "{\"a\":\"x y\"}", 1 },
		/* Integers as printf prints them; reals as jansson prints them. */
		{ "{\"a\":-0}", 0 },
		{ "{\"a\":-1}", 1 },
		{ "{\"a\":-9223372036854775808}", 1 },
		{ "{\"a\":9223372036854775808}", 0 },
		{ "{\"a\":1.0}", 1 },
		{ "{\"a\":1.5}", 1 },
		{ "{\"a\":-0.0}", 1 },
		{ "{\"a\":0.1}", 0 },
		{ "{\"a\":1e2}", 0 },
		{ "{\"a\":1E2}", 0 },
		/* Escapes: the short ones, \u00XX (upper case) for the rest. */
		{ "{\"a\":\"\\n\\t\\r\\b\\f\\\"\\\\\"}", 1 },
		{ "{\"a\":\"\\u001F\\u0001\\u000B\"}", 1 },
		{ "{\"a\":\"\\u001f\"}", 0 },
		{ "{\"a\":\"\\u000A\"}", 0 },
		{ "{\"a\":\"\\u0009\"}", 0 },
		{ "{\"a\":\"\\u0041\"}", 0 },
		{ "{\"a\":\"\\u007F\"}", 0 },
		{ "{\"a\":\"\\u00e9\"}", 0 },
		{ "{\"a\":\"\\ud83d\\ude00\"}", 0 },
		{ "{\"a\":\"\\/\"}", 0 },
		{ "{\"a\":\"/\"}", 1 },
		{ "{\"a\":\"\x7f\xc3\xa9\xf0\x9f\x98\x80\"}", 1 },
		{ "{\"a\":\"\xc0\x80\"}", 0 },
		{ "{\"a\":\"\\u0000\"}", 0 },
	};
	static const char alphabet[] = "{}[]\":,\\ -.eEu/0123456789aAfFntx\x7f\xc3\xa9";
	static const char *seeds[] = {
		"{\"actor\":\"token:ops\",\"d\":{\"list\":[\"a\",\"b\"],\"n\":-12,"
		"\"s\":\"q\\\"\\\\\\n\\u001F\"},\"i\":42,\"t\":7,\"type\":\"x.y\",\"v\":1}",
		"{\"a\":[[1,[2,{\"b\":null,\"c\":true}]],false],\"ab\":0.5,\"b\":\"\\u0001\"}",
	};
	char deep[2 * 40 + 2], buf[256];
	uint32_t rnd = 1;
	size_t i, k, len, pos;

	(void)state;
	for (i = 0; i < CM_NELEM(cases); i++)
		check_canonical(cases[i].s, strlen(cases[i].s), cases[i].canon);
	/* Nesting deeper than the scan follows is settled by the dump. */
	memset(deep, '[', 40);
	memset(deep + 40, ']', 40);
	check_canonical(deep, 80, 1);
	deep[80] = ' ';
	check_canonical(deep, 81, 0);

	/*
	 * Random edits of canonical entries: wherever the result still
	 * parses, the check must say what comparing with the dump says.
	 */
	for (k = 0; k < 40000; k++) {
		len = strlen(seeds[k % CM_NELEM(seeds)]);
		memcpy(buf, seeds[k % CM_NELEM(seeds)], len);
		for (i = 0; i < 1 + k % 3; i++) {
			rnd = rnd * 1103515245 + 12345;
			pos = (rnd >> 8) % len;
			rnd = rnd * 1103515245 + 12345;
			switch ((rnd >> 8) % 3) {
			case 0:
				buf[pos] = alphabet[(rnd >> 12) % (sizeof(alphabet) - 1)];
				break;
			case 1:
				if (len + 1 < sizeof(buf)) {
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = alphabet[(rnd >> 12) % (sizeof(alphabet) - 1)];
					len++;
				}
				break;
			default:
				if (len > 1) {
					memmove(buf + pos, buf + pos + 1, len - pos - 1);
					len--;
				}
				break;
			}
		}
		check_canonical(buf, len, -1);
	}
}

static void
test_bad_events_write_nothing(void **state)
{
	struct fx *f = *state;
	json_t *real = json_pack("{s:f}", "x", 1.5);
	json_t *big = json_object();
	char *huge = malloc(70000);
	uint8_t key[32] = { 1 };
	json_t *priv = json_pack("{s:s}", "email", "a@example.com");
	struct cm_audit_event ev1 = { "x", "system", real, NULL, NULL, NULL };
	struct cm_audit_event ev2 = { "x", "system", big, NULL, NULL, NULL };
	struct cm_audit_event ev3 = { "x", "system", NULL, NULL, NULL, priv };
	struct cm_audit_event ev4 = { "x", "system", NULL, "sub_x", NULL, priv };
	struct cm_audit_event ev5 = { NULL, "system", NULL, NULL, NULL, NULL };
	uint64_t size, idx;

	(void)key;
	memset(huge, 'a', 69999);
	huge[69999] = '\0';
	json_object_set_new(big, "blob", json_string(huge));
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	assert_int_equal(cm_audit_append(f->db, &ev1, &idx), CM_INVALID);
	assert_int_equal(cm_audit_append(f->db, &ev2, &idx), CM_INVALID);
	assert_int_equal(cm_audit_append(f->db, &ev3, &idx), CM_INVALID);
	assert_int_equal(cm_audit_append(f->db, &ev4, &idx), CM_INVALID);
	assert_int_equal(cm_audit_append(f->db, &ev5, &idx), CM_INVALID);
	assert_int_equal(cm_store_audit_size(f->db, &size), CM_OK);
	assert_int_equal(size, 0);
	cm_db_rollback(f->db);
	free(huge);
	json_decref(real);
	json_decref(big);
	json_decref(priv);
}

static void
test_rolled_back_append_leaves_no_trace(void **state)
{
	struct fx *f = *state;
	struct cm_audit_event ev = { "x.y", "system", NULL, NULL, NULL, NULL };
	uint64_t size, idx;

	append(f, &ev);
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	assert_int_equal(cm_audit_append(f->db, &ev, &idx), CM_OK);
	assert_int_equal(cm_audit_append(f->db, &ev, &idx), CM_OK);
	cm_db_rollback(f->db);
	assert_int_equal(cm_store_audit_size(f->db, &size), CM_OK);
	assert_int_equal(size, 1);
	assert_int_equal(append(f, &ev), 1);
}

static void
test_private_details_are_committed_and_sealed(void **state)
{
	struct fx *f = *state;
	uint8_t key[32], other[32], h[32], salt[32], out[4096];
	json_t *priv = json_pack("{s:s, s:s}", "email", "shopper@example.com",
	    "ip", "203.0.113.7");
	struct cm_audit_event ev = { "consent.recorded", "subject", NULL, "sub_test1",
	    key, priv };
	struct cm_buf sealed = { 0 }, msg = { 0 };
	char subject[64], ad[64], hex[65], *text;
	json_t *entry, *opening;
	uint64_t idx;
	int n;

	cm_random(key, sizeof(key));
	cm_random(other, sizeof(other));
	idx = append(f, &ev);
	text = read_entry(f, idx);
	assert_null(strstr(text, "shopper@example.com"));
	assert_null(strstr(text, "203.0.113.7"));
	assert_null(strstr(text, "sub_test1"));
	entry = json_loads(text, 0, NULL);
	assert_int_equal(strncmp(json_string_value(json_object_get(entry, "s")), "psn_", 4), 0);
	assert_int_equal(strlen(json_string_value(json_object_get(entry, "c"))), 64);

	assert_int_equal(cm_store_audit_opening_get(f->db, idx, &sealed, subject,
	    sizeof(subject)), CM_OK);
	assert_string_equal(subject, "sub_test1");
	n = snprintf(ad, sizeof(ad), "sub_test1:%llu", (unsigned long long)idx);
	assert_int_not_equal(cm_aead_open(out, other, ad, (size_t)n,
	    (const uint8_t *)sealed.b_data, sealed.b_len), 0);
	assert_int_not_equal(cm_aead_open(out, key, "sub_test1:999", 13,
	    (const uint8_t *)sealed.b_data, sealed.b_len), 0);
	assert_int_equal(cm_aead_open(out, key, ad, (size_t)n,
	    (const uint8_t *)sealed.b_data, sealed.b_len), 0);
	out[sealed.b_len - CM_AEAD_OVERHEAD] = '\0';
	opening = json_loads((const char *)out, 0, NULL);
	assert_non_null(opening);
	/* The opening reproduces the commitment: SHA-256(salt || details). */
	assert_int_equal(cm_base64_decode(salt, 32, json_string_value(json_object_get(opening,
	    "salt")), strlen(json_string_value(json_object_get(opening, "salt")))), 32);
	cm_buf_append(&msg, salt, 32);
	cm_buf_append(&msg, json_string_value(json_object_get(opening, "details")),
	    strlen(json_string_value(json_object_get(opening, "details"))));
	cm_sha256(h, msg.b_data, msg.b_len);
	cm_hex_encode(hex, h, 32);
	assert_string_equal(hex, json_string_value(json_object_get(entry, "c")));

	/* The same subject keeps its pseudonym. */
	{
		uint64_t idx2 = append(f, &ev);
		char *t2 = read_entry(f, idx2);
		json_t *e2 = json_loads(t2, 0, NULL);

		assert_string_equal(json_string_value(json_object_get(e2, "s")),
		    json_string_value(json_object_get(entry, "s")));
		json_decref(e2);
		free(t2);
	}
	json_decref(opening);
	json_decref(entry);
	json_decref(priv);
	free(text);
	cm_buf_free(&sealed);
	cm_buf_free(&msg);
}

static void
test_erasure_keeps_proofs_valid(void **state)
{
	struct fx *f = *state;
	uint8_t key[32], root[32], leaf[32], proof[CM_MERKLE_MAX_PROOF][32];
	json_t *priv = json_pack("{s:s}", "email", "gone@example.com");
	/* Not a state entry (no row stands for it): verify checks the log only. */
	struct cm_audit_event subj = { "test.subject", "subject", NULL, "sub_gone",
	    key, priv };
	struct cm_audit_event plain = { "x.y", "system", NULL, NULL, NULL, NULL };
	struct cm_verify_report rep;
	struct cm_buf sealed = { 0 };
	char pseudo[40], subject[64];
	bool signed_;
	uint64_t i, size;
	size_t n;
	FILE *devnull = fopen("/dev/null", "w");

	cm_random(key, sizeof(key));
	for (i = 0; i < 37; i++)
		append(f, i % 3 == 0 ? &subj : &plain);
	assert_int_equal(cm_audit_checkpoint(f->db, f->keys, "test.example/log", &signed_), CM_OK);
	assert_true(signed_);
	assert_int_equal(cm_audit_checkpoint(f->db, f->keys, "test.example/log", &signed_), CM_OK);
	assert_false(signed_);
	assert_int_equal(cm_store_audit_size(f->db, &size), CM_OK);
	assert_int_equal(cm_audit_root(f->db, size, root), CM_OK);

	/* Erase: the mapping and the openings go, the key is destroyed. */
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	assert_int_equal(cm_store_audit_forget_subject(f->db, "sub_gone"), CM_OK);
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	cm_wipe(key, sizeof(key));
	assert_int_equal(cm_store_audit_pseudonym(f->db, "sub_gone", false, "", pseudo,
	    sizeof(pseudo)), CM_NOTFOUND);
	assert_int_equal(cm_store_audit_opening_get(f->db, 0, &sealed, subject,
	    sizeof(subject)), CM_NOTFOUND);

	for (i = 0; i < size; i++) {
		assert_int_equal(cm_store_audit_get_hash(f->db, 0, i, leaf), CM_OK);
		assert_int_equal(cm_audit_inclusion_proof(f->db, i, size, proof,
		    CM_MERKLE_MAX_PROOF, &n), CM_OK);
		assert_int_equal(cm_merkle_verify_inclusion(i, size, leaf,
		    (const uint8_t (*)[32])proof, n, root), 0);
	}
	assert_int_equal(cm_audit_verify(f->db, f->keys, NULL, devnull, &rep), CM_OK);
	assert_int_equal(rep.vr_failed, 0);
	assert_true(rep.vr_passed > 0);
	assert_int_equal(rep.vr_entries, 37);
	assert_int_equal(cm_audit_check_latest(f->db), CM_OK);
	fclose(devnull);
	json_decref(priv);
	cm_buf_free(&sealed);
}

/* Runs SQL on the store through a connection of its own, as an attacker would. */
static void
tamper(struct fx *f, const char *sql)
{
	char path[128], *lit, *err = NULL;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/consentd.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	lit = cm_secure_alloc(CM_SQLCIPHER_KEY_LEN);
	cm_keys_sqlcipher_literal(f->keys, lit);
	assert_int_equal(sqlite3_key(db, lit, (int)strlen(lit)), SQLITE_OK);
	cm_secure_free(lit);
	assert_int_equal(sqlite3_exec(db, "PRAGMA cipher_page_size = " CM_STORE_PAGE_SIZE,
	    NULL, NULL, NULL), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
}

/* Verifies into a string; returns the report's text. */
static char *
verify_text(struct fx *f, struct cm_verify_report *rep)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	assert_non_null(out = open_memstream(&text, &len));
	assert_int_equal(cm_audit_verify(f->db, f->keys, NULL, out, rep), CM_OK);
	assert_int_equal(fclose(out), 0);
	return text;
}

static void
test_verify_across_batches(void **state)
{
	struct fx *f = *state;
	struct cm_audit_event ev = { "x.y", "system", NULL, NULL, NULL, NULL };
	struct cm_verify_report rep;
	char *a, *b;
	uint64_t i, idx;
	bool signed_;

	/* Enough entries for several of the batches verify works on. */
	assert_int_equal(cm_db_begin(f->db), CM_OK);
	for (i = 0; i < 10000; i++) {
		assert_int_equal(cm_audit_append(f->db, &ev, &idx), CM_OK);
		if (i == 6000) {
			assert_int_equal(cm_db_commit(f->db), CM_OK);
			assert_int_equal(cm_audit_checkpoint(f->db, f->keys,
			    "test.example/log", &signed_), CM_OK);
			assert_int_equal(cm_db_begin(f->db), CM_OK);
		}
	}
	assert_int_equal(cm_db_commit(f->db), CM_OK);
	assert_int_equal(cm_audit_checkpoint(f->db, f->keys, "test.example/log",
	    &signed_), CM_OK);
	a = verify_text(f, &rep);
	assert_int_equal(rep.vr_failed, 0);
	assert_int_equal(rep.vr_entries, 10000);
	assert_int_equal(rep.vr_checkpoints, 2);
	assert_int_equal(rep.vr_first_bad, -1);
	free(a);

	/*
	 * Damage in three places, the earliest not in the first batch: the
	 * report names each and the earliest first bad entry, and comes out
	 * the same byte for byte every time.
	 */
	tamper(f, "UPDATE audit_entries SET leaf_hash = zeroblob(32) WHERE idx = 9000;"
	    "DELETE FROM audit_entries WHERE idx = 8200;"
	    "UPDATE audit_entries SET entry = CAST(replace(CAST(entry AS TEXT), "
	    "',\"type\"', ', \"type\"') AS BLOB) WHERE idx = 4500;");
	a = verify_text(f, &rep);
	assert_int_equal(rep.vr_first_bad, 4500);
	assert_int_equal(rep.vr_entries, 9999);
	assert_non_null(strstr(a, "FAIL entries: entry 8200 is missing (the next stored "
	    "entry is 8201)\n"));
	assert_non_null(strstr(a, "FAIL entries: entry 4500 is not canonical JSON\n"));
	assert_non_null(strstr(a, "FAIL leaf hashes: entry 4500 does not match"));
	assert_non_null(strstr(a, "FAIL interior hashes: the stored tree differs from "
	    "the recomputed one from entry 4500 on\n"));
	for (i = 0; i < 3; i++) {
		b = verify_text(f, &rep);
		assert_string_equal(a, b);
		free(b);
	}
	free(a);
}

static void
test_notes_round_trip(void **state)
{
	struct fx *f = *state;
	struct cm_checkpoint_row row;
	char vkey[256], body[512], origin[130], wvkey[256], name[130];
	uint8_t root[32], pk[32], wseed[32], wpk[32], *wsk;
	struct cm_buf out = { 0 };
	struct cm_audit_event ev = { "x.y", "system", NULL, NULL, NULL, NULL };
	uint64_t size, t;
	bool signed_;

	append(f, &ev);
	append(f, &ev);
	assert_int_equal(cm_audit_checkpoint(f->db, f->keys, "test.example/log", &signed_), CM_OK);
	assert_int_equal(cm_store_audit_checkpoint_latest(f->db, &row), CM_OK);
	cm_note_vkey(vkey, sizeof(vkey), "test.example/log", CM_NOTE_ED25519, f->keys->k_audit_pk);
	assert_int_equal(cm_note_vkey_parse(vkey, CM_NOTE_ED25519, name, sizeof(name), pk), 0);
	assert_string_equal(name, "test.example/log");
	assert_memory_equal(pk, f->keys->k_audit_pk, 32);
	assert_int_not_equal(cm_note_vkey_parse(vkey, CM_NOTE_COSIGNATURE, name, sizeof(name), pk), 0);
	assert_int_equal(cm_note_open(row.cp_note, vkey, body, sizeof(body)), 0);
	assert_int_equal(cm_checkpoint_parse(body, strlen(body), origin, sizeof(origin),
	    &size, root), 0);
	assert_string_equal(origin, "test.example/log");
	assert_int_equal(size, 2);
	assert_memory_equal(root, row.cp_root, 32);

	/* One changed byte of the body breaks the signature. */
	row.cp_note[strlen("test.example/log\n")] = '3';
	assert_int_not_equal(cm_note_open(row.cp_note, vkey, body, sizeof(body)), 0);
	row.cp_note[strlen("test.example/log\n")] = '2';

	/* A witness cosignature verifies and binds its time. */
	wsk = cm_secure_alloc(64);
	cm_random(wseed, sizeof(wseed));
	assert_int_equal(cm_ed25519_from_seed(wpk, wsk, wseed), 0);
	cm_note_vkey(wvkey, sizeof(wvkey), "w.example", CM_NOTE_COSIGNATURE, wpk);
	cm_buf_append(&out, row.cp_note, strlen(row.cp_note));
	assert_int_equal(cm_note_cosign(&out, body, "w.example", wsk, wpk, 1700000000), 0);
	assert_int_equal(cm_note_check_cosignature(out.b_data, wvkey, &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(cm_note_open(out.b_data, vkey, body, sizeof(body)), 0);
	assert_int_not_equal(cm_note_check_cosignature(row.cp_note, wvkey, &t), 0);
	cm_secure_free(wsk);
	cm_buf_free(&out);
	free(row.cp_note);
}

static void
test_published_vkey_example(void **state)
{
	/* The C2SP signed-note example key and message. */
	static const char vkey[] = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
	char name[64];
	uint8_t pk[32];

	(void)state;
	assert_int_equal(cm_note_vkey_parse(vkey, CM_NOTE_ED25519, name, sizeof(name), pk), 0);
	assert_string_equal(name, "example.com/foo");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_entry_is_canonical, setup, teardown),
		cmocka_unit_test(test_canonical_check),
		cmocka_unit_test_setup_teardown(test_bad_events_write_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rolled_back_append_leaves_no_trace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_details_are_committed_and_sealed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_erasure_keeps_proofs_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_across_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notes_round_trip, setup, teardown),
		cmocka_unit_test(test_published_vkey_example),
	};

	if (cm_crypto_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
