/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the deadlines of data-subject requests (src/core/
 * deadline.c): the month-end table of SPEC §8 in leap and non-leap years,
 * the extension limits, CCPA's days, the time of day kept, overdue and days
 * left at their boundaries; and the names of types, statuses and
 * jurisdictions (src/core/dsr.c).
 */
#define _DEFAULT_SOURCE	/* timegm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "consentd/dsr.h"

/* Microseconds of Y-M-D h:m:s UTC. */
static int64_t
at(int y, int m, int d, int hh, int mm, int ss)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	return (int64_t)timegm(&tm) * 1000000;
}

static void
test_month_end_table(void **state)
{
	static const struct {
		int	 y, m, d;	/* received */
		int	 dy, dm, dd;	/* due */
	} t[] = {
		{ 2025, 1, 31, 2025, 2, 28 },	/* non-leap February */
		{ 2024, 1, 31, 2024, 2, 29 },	/* leap February */
		{ 2100, 1, 31, 2100, 2, 28 },	/* century, not leap */
		{ 2000, 1, 31, 2000, 2, 29 },	/* 400th year, leap */
		{ 2025, 1, 29, 2025, 2, 28 },
		{ 2024, 1, 29, 2024, 2, 29 },
		{ 2025, 1, 28, 2025, 2, 28 },
		{ 2025, 3, 31, 2025, 4, 30 },
		{ 2025, 5, 31, 2025, 6, 30 },
		{ 2025, 8, 31, 2025, 9, 30 },
		{ 2025, 10, 31, 2025, 11, 30 },
		{ 2025, 11, 30, 2025, 12, 30 },
		{ 2025, 12, 31, 2026, 1, 31 },	/* into the next year */
		{ 2024, 2, 29, 2024, 3, 29 },
		{ 2025, 6, 15, 2025, 7, 15 },
		{ 2025, 2, 28, 2025, 3, 28 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int64_t got = cm_dsr_due(CM_JUR_GDPR, at(t[i].y, t[i].m, t[i].d, 13, 45, 7));
		int64_t want = at(t[i].dy, t[i].dm, t[i].dd, 13, 45, 7);

		if (got != want)
			fail_msg("received %04d-%02d-%02d: due %lld, want %04d-%02d-%02d",
			    t[i].y, t[i].m, t[i].d, (long long)got, t[i].dy, t[i].dm, t[i].dd);
		/* UK GDPR counts the same. */
		assert_int_equal(cm_dsr_due(CM_JUR_UK_GDPR, at(t[i].y, t[i].m, t[i].d, 13, 45, 7)),
		    want);
	}
}

static void
test_extension_limit(void **state)
{
	(void)state;
	/* Three calendar months, clamped the same way. */
	assert_int_equal(cm_dsr_extended_due(CM_JUR_GDPR, at(2025, 1, 31, 9, 0, 0)),
	    at(2025, 4, 30, 9, 0, 0));
	assert_int_equal(cm_dsr_extended_due(CM_JUR_GDPR, at(2025, 11, 30, 9, 0, 0)),
	    at(2026, 2, 28, 9, 0, 0));
	assert_int_equal(cm_dsr_extended_due(CM_JUR_GDPR, at(2023, 11, 30, 9, 0, 0)),
	    at(2024, 2, 29, 9, 0, 0));
	assert_int_equal(cm_dsr_extended_due(CM_JUR_GDPR, at(2025, 10, 31, 9, 0, 0)),
	    at(2026, 1, 31, 9, 0, 0));
	assert_int_equal(cm_dsr_extended_due(CM_JUR_UK_GDPR, at(2025, 12, 31, 9, 0, 0)),
	    at(2026, 3, 31, 9, 0, 0));
}

static void
test_ccpa_days(void **state)
{
	int64_t r = at(2025, 12, 20, 23, 59, 59);

	(void)state;
	assert_int_equal(cm_dsr_due(CM_JUR_CCPA, r), r + 45 * CM_DAY_US);
	assert_int_equal(cm_dsr_extended_due(CM_JUR_CCPA, r), r + 90 * CM_DAY_US);
	assert_int_equal(cm_dsr_due(CM_JUR_CCPA, r), at(2026, 2, 3, 23, 59, 59));
}

static void
test_microseconds_kept(void **state)
{
	int64_t r = at(2025, 1, 31, 0, 0, 0) + 123456;

	(void)state;
	assert_int_equal(cm_add_months(r, 1), at(2025, 2, 28, 0, 0, 0) + 123456);
	assert_int_equal(cm_add_months(r, 12), at(2026, 1, 31, 0, 0, 0) + 123456);
	assert_int_equal(cm_add_months(r, -1), at(2024, 12, 31, 0, 0, 0) + 123456);
	assert_int_equal(cm_add_months(r, -13), at(2023, 12, 31, 0, 0, 0) + 123456);
	assert_int_equal(cm_add_months(r, 0), r);
}

static void
test_overdue_and_days_left(void **state)
{
	int64_t due = at(2025, 3, 1, 12, 0, 0);

	(void)state;
	assert_false(cm_dsr_overdue(due, due));
	assert_true(cm_dsr_overdue(due, due + 1));
	assert_int_equal(cm_dsr_days_left(due, due), 0);
	assert_int_equal(cm_dsr_days_left(due, due - 1), 0);
	assert_int_equal(cm_dsr_days_left(due, due - CM_DAY_US), 1);
	assert_int_equal(cm_dsr_days_left(due, due - 30 * CM_DAY_US - 5), 30);
	assert_int_equal(cm_dsr_days_left(due, due + 1), -1);
	assert_int_equal(cm_dsr_days_left(due, due + CM_DAY_US), -1);
	assert_int_equal(cm_dsr_days_left(due, due + CM_DAY_US + 1), -2);
}

static void
test_names(void **state)
{
	enum cm_dsr_type t;
	enum cm_dsr_status s;
	enum cm_jurisdiction j;
	int i;

	(void)state;
	for (i = CM_DSR_ACCESS; i <= CM_DSR_OBJECTION; i++) {
		assert_int_equal(cm_dsr_type_parse(cm_dsr_type_name(i), &t), 0);
		assert_int_equal(t, i);
	}
	for (i = CM_DSR_IDENTITY_UNVERIFIED; i <= CM_DSR_CANCELED; i++) {
		assert_int_equal(cm_dsr_status_parse(cm_dsr_status_name(i), &s), 0);
		assert_int_equal(s, i);
		assert_int_equal(cm_dsr_status_open(i), i < CM_DSR_COMPLETED);
	}
	for (i = CM_JUR_GDPR; i <= CM_JUR_CCPA; i++) {
		assert_int_equal(cm_jurisdiction_parse(cm_jurisdiction_name(i), &j), 0);
		assert_int_equal(j, i);
	}
	assert_int_equal(cm_dsr_type_parse("Access", &t), -1);
	assert_int_equal(cm_dsr_type_parse("", &t), -1);
	assert_int_equal(cm_dsr_status_parse("overdue", &s), -1);
	assert_int_equal(cm_jurisdiction_parse("GDPR", &j), -1);
	assert_string_equal(cm_dsr_type_name((enum cm_dsr_type)99), "invalid");
	assert_string_equal(cm_dsr_status_name((enum cm_dsr_status)99), "invalid");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_month_end_table),
		cmocka_unit_test(test_extension_limit),
		cmocka_unit_test(test_ccpa_days),
		cmocka_unit_test(test_microseconds_kept),
		cmocka_unit_test(test_overdue_and_days_left),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
