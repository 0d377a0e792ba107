/* SPDX-License-Identifier: ISC */
/*
 * The fast path of `audit verify` (simdjson and the canonical scan, in
 * src/audit/entry_fast.cc) must give, for every entry it settles, exactly
 * what the jansson path gives: the entry parses, is canonical, and has the
 * same index, type, pseudonym and state fields. Checked on entries of
 * every kind the state check reads and on many thousands of mutations of
 * them (flipped, inserted and deleted bytes, swapped keys, large and real
 * numbers, escapes, invalid UTF-8), and the fast path must settle the
 * plain entries, so the test fails if it never runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "consentd/audit.h"
#include "../../src/audit/entry_fields.h"
#include "../../src/audit/state.h"

static const char *const entries[] = {
	"{\"actor\":\"system\",\"c\":\"49d3b0dca9d7a904a07d203b20eb16cd5b1d9f38f109aebffe88e47d2f06eb35\","
	    "\"d\":{\"identifier_types\":[\"email\",\"phone\",\"loyalty\"],\"profile_attributes\":[]},"
	    "\"i\":1000,\"s\":\"psn_2diglrh4eantitfz5u4ot6mbyu\",\"t\":1796598910481933,"
	    "\"type\":\"subject.created\",\"v\":1}",
	"{\"actor\":\"system\",\"d\":{\"channel\":null,\"collected_at\":1796598910481888,"
	    "\"event_id\":\"evt_23odaubnkllhg5wiezj22fyi4y\",\"method\":\"import\",\"notice_version\":2,"
	    "\"purpose\":\"newsletter\",\"sale_ref\":false,\"state\":\"granted\",\"superseded\":false},"
	    "\"i\":1001,\"s\":\"psn_2diglrh4eantitfz5u4ot6mbyu\",\"t\":1796598910481968,"
	    "\"type\":\"consent.recorded\",\"v\":1}",
	"{\"actor\":\"tok_1\",\"d\":{\"channel\":\"sms\",\"collected_at\":-5,"
	    "\"event_id\":\"evt_x\",\"method\":\"web_form\",\"notice_version\":1,"
	    "\"purpose\":\"offers\",\"sale_ref\":true,\"state\":\"withdrawn\",\"superseded\":true},"
	    "\"i\":7,\"s\":\"psn_a\",\"t\":1,\"type\":\"consent.recorded\",\"v\":1}",
	"{\"d\":{\"event_id\":\"evt_old\",\"method\":\"api\",\"notice_version\":1,"
	    "\"purpose\":\"offers\",\"state\":\"granted\"},\"i\":3,\"s\":\"psn_b\",\"type\":\"consent.recorded\"}",
	"{\"d\":{\"merged\":\"psn_c\"},\"i\":4,\"s\":\"psn_b\",\"type\":\"subject.merged\"}",
	"{\"d\":{\"objected_at\":1796598910481888},\"i\":5,\"s\":\"psn_b\",\"type\":\"subject.objected\"}",
	"{\"d\":{},\"i\":5,\"s\":\"psn_b\",\"type\":\"subject.objected\"}",
	"{\"d\":{\"frequency\":\"weekly\",\"paused_until\":0},\"i\":6,\"s\":\"psn_b\","
	    "\"type\":\"preferences.updated\"}",
	"{\"d\":{\"channels\":{\"email\":true}},\"i\":6,\"s\":\"psn_b\",\"type\":\"preferences.updated\"}",
	"{\"d\":{\"reason\":\"complained\",\"since\":17,\"tag\":\"0123456789abcdef0123456789abcdef\"},"
	    "\"i\":8,\"type\":\"suppression.added\"}",
	"{\"d\":{\"reason\":\"manual\",\"tag\":\"t\"},\"i\":9,\"type\":\"suppression.lifted\"}",
	"{\"d\":{\"kept_suppression\":\"t2\"},\"i\":10,\"s\":\"psn_b\",\"type\":\"identifier.unlinked\"}",
	"{\"d\":{\"subject_tag\":\"x\",\"suppressed_tags\":[\"t3\"]},\"i\":11,\"type\":\"erasure.completed\"}",
	"{\"d\":{\"rekeyed\":[[\"a\",\"b\"]]},\"i\":12,\"type\":\"store.upgraded\"}",
	"{\"d\":{\"note\":\"caf\xc3\xa9 \\\"q\\\" \\\\ \\n\\u001F\"},\"i\":13,\"type\":\"policy.loaded\"}",
	"{\"d\":\"not an object\",\"i\":14,\"s\":\"psn_b\",\"type\":\"consent.recorded\"}",
	"{\"i\":15,\"s\":7,\"type\":\"subject.restricted\"}",
};

static void
assert_value_eq(const struct cm_ef_value *a, const struct cm_ef_value *b)
{
	assert_int_equal(a->kind, b->kind);
	if (a->kind == EF_STRING)
		assert_string_equal(a->str, b->str);
	if (a->kind == EF_INT)
		assert_int_equal(a->num, b->num);
}

/* Checks LEN bytes at P on both paths; true when the fast path settled them. */
static bool
compare_paths(const uint8_t *p, size_t len)
{
	uint8_t *buf = calloc(1, len + CM_ENTRY_PADDING);
	struct cm_entry_fields fast, slow;
	struct cm_state_fact ff, sf;
	json_t *j;
	bool settled;
	size_t k;

	memcpy(buf, p, len);
	settled = cm_entry_fast(buf, len, &fast);
	j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
	if (settled) {
		/* What jansson says of it must be what the fast path said. */
		assert_non_null(j);
		assert_true(cm_audit_entry_canonical(buf, len, j));
		cm_entry_fields_json(j, &slow);
		assert_value_eq(&fast.i, &slow.i);
		assert_value_eq(&fast.type, &slow.type);
		assert_value_eq(&fast.s, &slow.s);
		for (k = 0; k < EFD_COUNT; k++)
			assert_value_eq(&fast.d[k], &slow.d[k]);
		if (cm_state_extract_fields(&fast, &ff)) {
			cm_state_extract(j, &sf);
			assert_int_equal(ff.sf_kind, sf.sf_kind);
			assert_string_equal(ff.sf_psn, sf.sf_psn);
			assert_string_equal(ff.sf_other, sf.sf_other);
			assert_string_equal(ff.sf_reason, sf.sf_reason);
			assert_int_equal(ff.sf_num, sf.sf_num);
			assert_int_equal(ff.sf_mask, sf.sf_mask);
			assert_int_equal(ff.sf_legacy, sf.sf_legacy);
			assert_int_equal(ff.sf_collected, sf.sf_collected);
			assert_int_equal(ff.sf_sale_ref, sf.sf_sale_ref);
			assert_int_equal(ff.sf_superseded, sf.sf_superseded);
			assert_memory_equal(ff.sf_digest, sf.sf_digest, sizeof(ff.sf_digest));
			cm_state_fact_clear(&sf);
		}
	}
	json_decref(j);
	free(buf);
	return settled;
}

static void
test_plain_entries_take_the_fast_path(void **state)
{
	size_t i, fast = 0;

	(void)state;
	for (i = 0; i < CM_NELEM(entries); i++)
		fast += compare_paths((const uint8_t *)entries[i], strlen(entries[i]));
	/* Every entry above is canonical JSON with int64 numbers. */
	assert_int_equal(fast, CM_NELEM(entries));
}

static const char *const inserts[] = {
	" ", "\"", "\\", "\\u0000", "\\u00e9", "\\/", "1e5", "0.5", "-0", "99999999999999999999",
	"9223372036854775808", "-9223372036854775809", "\xff", "\xc3", "\xed\xa0\x80", "\x01",
	",", ":", "{", "}", "[", "]", "null", "true", "\"i\":1,", "\"a\":1,", "\"zz\":2,",
};

/* A mutation of S into OUT (at least 2 * strlen(S) + 64 bytes); its length. */
static size_t
mutate(const char *s, char *out)
{
	size_t len = strlen(s), at = (size_t)rand() % (len + 1), n, ins_len;
	const char *ins;

	switch (rand() % 4) {
	case 0:	/* flip a byte */
		memcpy(out, s, len);
		if (len > 0)
			out[at % len] = (char)(out[at % len] ^ (1 << (rand() % 8)));
		return len;
	case 1:	/* delete a run */
		n = (size_t)rand() % 4 + 1;
		if (at + n > len)
			n = len - at;
		memcpy(out, s, at);
		memcpy(out + at, s + at + n, len - at - n);
		return len - n;
	case 2:	/* duplicate a run */
		n = (size_t)rand() % 12 + 1;
		if (at + n > len)
			n = len - at;
		memcpy(out, s, at + n);
		memcpy(out + at + n, s + at, len - at);
		return len + n;
	default: /* insert a token */
		ins = inserts[(size_t)rand() % CM_NELEM(inserts)];
		ins_len = strlen(ins);
		memcpy(out, s, at);
		memcpy(out + at, ins, ins_len);
		memcpy(out + at + ins_len, s + at, len - at);
		return len + ins_len;
	}
}

static void
test_mutations_agree_with_jansson(void **state)
{
	char out[2048];
	size_t n, settled = 0, tried = 0;
	unsigned seed = 20261207;

	(void)state;
	srand(seed);
	for (n = 0; n < 40000; n++) {
		const char *s = entries[n % CM_NELEM(entries)];
		size_t len = mutate(s, out);

		/* A second mutation now and then reaches further. */
		if (rand() % 3 == 0) {
			char again[2048];

			out[len] = '\0';
			if (strlen(out) == len) {
				len = mutate(out, again);
				memcpy(out, again, len);
			}
		}
		tried++;
		settled += compare_paths((const uint8_t *)out, len);
	}
	/* Both paths ran: some mutations stay valid and canonical, most do not. */
	assert_true(settled > 0);
	assert_true(settled < tried);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_entries_take_the_fast_path),
		cmocka_unit_test(test_mutations_agree_with_jansson),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
