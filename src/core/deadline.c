/* SPDX-License-Identifier: ISC */
/*
 * Deadlines of data-subject requests (SPEC §8), as pure functions of UTC
 * times in microseconds. GDPR Art. 12(3): one month from receipt, counted
 * as a calendar month (a day the month lacks clamps to its last: the
 * Regulation (EEC, Euratom) No 1182/71 reading the EDPB follows), with one
 * extension to at most three months. CCPA: 45 days, and 45 more.
 * Whether a request is overdue and its days left are computed when read,
 * never stored, so they are never stale.
 */
#define _DEFAULT_SOURCE	/* timegm */
#include <time.h>

#include "consentd/dsr.h"

static bool
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int year, int mon)	/* MON 0..11 */
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return mon == 1 && leap(year) ? 29 : days[mon];
}

int64_t
cm_add_months(int64_t t, int months)
{
	int64_t sec = t / 1000000, us = t % 1000000;
	time_t tt;
	struct tm tm;
	int m;

	if (us < 0) {
		us += 1000000;
		sec--;
	}
	tt = (time_t)sec;
	if (gmtime_r(&tt, &tm) == NULL)
		return t;
	m = tm.tm_mon + months;
	tm.tm_year += m >= 0 ? m / 12 : -((11 - m) / 12);
	tm.tm_mon = ((m % 12) + 12) % 12;
	if (tm.tm_mday > month_days(tm.tm_year + 1900, tm.tm_mon))
		tm.tm_mday = month_days(tm.tm_year + 1900, tm.tm_mon);
	return (int64_t)timegm(&tm) * 1000000 + us;
}

int64_t
cm_dsr_due(enum cm_jurisdiction j, int64_t received)
{
	if (j == CM_JUR_CCPA)
		return received + 45 * CM_DAY_US;
	return cm_add_months(received, 1);
}

int64_t
cm_dsr_extended_due(enum cm_jurisdiction j, int64_t received)
{
	if (j == CM_JUR_CCPA)
		return received + 90 * CM_DAY_US;
	return cm_add_months(received, 3);
}

bool
cm_dsr_overdue(int64_t due, int64_t now)
{
	return now > due;
}

int64_t
cm_dsr_days_left(int64_t due, int64_t now)
{
	int64_t d = due - now;

	/* Whole days, rounded down: one microsecond late is day -1. */
	return d >= 0 ? d / CM_DAY_US : -((-d + CM_DAY_US - 1) / CM_DAY_US);
}
