/* SPDX-License-Identifier: ISC */
/*
 * The libphonenumber shim (see phone.h): the project's only C++ and the
 * only code that includes libphonenumber's headers. It reads a number that
 * identifier.c has already reduced to '+' and digits (libphonenumber itself
 * would turn letters into digits and accept extensions, so it never sees
 * the raw input) and formats it as E.164.
 *
 * An international number keeps its own digits unless libphonenumber reads
 * it differently (a national prefix written after the country code, as in
 * "+44 020 …", or a national rewriting rule such as Argentina's mobile
 * "15"), and then only when the written digits are not a possible length
 * for that country, the reading is, and the reading reads as itself.
 * libphonenumber alone is not idempotent ("+1 1 1…" loses one '1' per
 * pass); with these conditions the result always is, and numbers written
 * in full keep the form, and so the blind index, they always had.
 *
 * No exception crosses into C: each entry point catches everything and
 * returns a result code. The library's default logger is a null logger,
 * so no number reaches stdout or stderr from here.
 */
#include <cstring>
#include <new>
#include <string>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include "phone.h"

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

/* identifier.c's E.164 rule: '+' and 8-15 digits. */
static const size_t phone_min_digits = 8;

/* REGION upper-cased into OUT (3 bytes), or false when it is not two letters. */
static bool
phone_region_code(const char *region, char out[3])
{
	size_t i;

	if (region == nullptr || std::strlen(region) != 2)
		return false;
	for (i = 0; i < 2; i++) {
		char c = region[i];

		if (c >= 'a' && c <= 'z')
			c = static_cast<char>(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return false;
		out[i] = c;
	}
	out[2] = '\0';
	return true;
}

static bool
phone_region_valid(const PhoneNumberUtil &util, const char *region, char code[3])
{
	return phone_region_code(region, code) && util.GetCountryCodeForRegion(code) != 0;
}

/*
 * Whether "+DIGITS" (E164), read literally as country code CC and the
 * rest, is a possible length for that country.
 */
static bool
phone_literal_possible(const PhoneNumberUtil &util, int cc, const std::string &e164)
{
	std::string nsn = e164.substr(1 + std::to_string(cc).size());
	PhoneNumber pn;
	size_t zeros = 0;

	if (nsn.empty())
		return false;
	while (zeros + 1 < nsn.size() && nsn[zeros] == '0')
		zeros++;
	pn.set_country_code(cc);
	pn.set_national_number(std::stoull(nsn));
	if (zeros > 0) {
		pn.set_italian_leading_zero(true);
		pn.set_number_of_leading_zeros(static_cast<int>(zeros));
	}
	return util.IsPossibleNumber(pn);
}

/*
 * The E.164 form of the international number LIT ('+' and digits) into
 * *OUT, as the file's header describes.
 */
static PhoneNumberUtil::ErrorType
phone_international(const PhoneNumberUtil &util, const std::string &lit, std::string *out)
{
	PhoneNumberUtil::ErrorType err;
	PhoneNumber pn, again;
	std::string reading, reread;

	if ((err = util.Parse(lit, "ZZ", &pn)) != PhoneNumberUtil::NO_PARSING_ERROR)
		return err;
	util.Format(pn, PhoneNumberUtil::E164, &reading);
	*out = lit;
	if (reading == lit || reading.size() < 1 + phone_min_digits ||
	    !util.IsPossibleNumber(pn) || phone_literal_possible(util, pn.country_code(), lit))
		return PhoneNumberUtil::NO_PARSING_ERROR;
	if (util.Parse(reading, "ZZ", &again) != PhoneNumberUtil::NO_PARSING_ERROR)
		return PhoneNumberUtil::NO_PARSING_ERROR;
	util.Format(again, PhoneNumberUtil::E164, &reread);
	if (reread == reading)
		*out = reading;
	return PhoneNumberUtil::NO_PARSING_ERROR;
}

extern "C" int
cm_phone_region_known(const char *region) noexcept
{
	char code[3];

	try {
		return phone_region_valid(*PhoneNumberUtil::GetInstance(), region, code);
	} catch (...) {
		return 0;
	}
}

extern "C" cm_result
cm_phone_e164(const char *number, const char *region, char *out, size_t outlen) noexcept
{
	cm_result rc = CM_IOERR;
	char code[3];

	if (outlen > 0)
		out[0] = '\0';
	try {
		const PhoneNumberUtil &util = *PhoneNumberUtil::GetInstance();
		PhoneNumberUtil::ErrorType err = PhoneNumberUtil::NO_PARSING_ERROR;
		std::string lit = number, e164;
		PhoneNumber pn;

		if (number[0] != '+') {
			/* National: libphonenumber makes it international first. */
			if (!phone_region_valid(util, region, code)) {
				rc = CM_NOTFOUND;
				goto out;
			}
			err = util.Parse(number, code, &pn);
			if (err == PhoneNumberUtil::NO_PARSING_ERROR) {
				lit.clear();
				util.Format(pn, PhoneNumberUtil::E164, &lit);
			}
		}
		if (err == PhoneNumberUtil::NO_PARSING_ERROR)
			err = phone_international(util, lit, &e164);
		switch (err) {
		case PhoneNumberUtil::NO_PARSING_ERROR:
			break;
		case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
			rc = CM_NOTFOUND;
			goto out;
		default:
			rc = CM_INVALID;
			goto out;
		}
		if (e164.size() >= outlen) {
			rc = CM_INVALID;
			goto out;
		}
		std::memcpy(out, e164.c_str(), e164.size() + 1);
		rc = CM_OK;
	} catch (const std::bad_alloc &) {
		rc = CM_NOMEM;
	} catch (...) {
		rc = CM_IOERR;
	}
out:
	if (rc != CM_OK && outlen > 0)
		out[0] = '\0';
	return rc;
}
