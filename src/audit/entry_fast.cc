/* SPDX-License-Identifier: ISC */
/*
 * The fast path of `audit verify` (see entry_fields.h): simdjson validates
 * an entry (JSON and UTF-8) many times faster than building a jansson
 * tree, and the canonical-form scan of canon.c settles what simdjson does
 * not check: a canonical entry's keys are strictly increasing, so none is
 * repeated. Whatever either cannot settle goes back to jansson, so the
 * verdict on every entry is what jansson's would be.
 */
#include <cstring>

#include <simdjson.h>

#include "entry_fields.h"

static_assert(simdjson::SIMDJSON_PADDING <= CM_ENTRY_PADDING, "simdjson reads further ahead");

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

/* One parser per thread: it keeps its buffers between entries. */
thread_local simdjson::dom::parser parser;

/*
 * Whether every number in E is one jansson keeps as an integer: reals are
 * left to jansson (the canonical scan does too), and so are integers
 * beyond int64_t, which jansson refuses.
 */
bool
numbers_fit(element e, unsigned depth)
{
	simdjson::dom::array a;
	simdjson::dom::object o;

	if (depth > 64)
		return false;
	switch (e.type()) {
	case element_type::ARRAY:
		if (e.get_array().get(a) != simdjson::SUCCESS)
			return false;
		for (element v : a)
			if (!numbers_fit(v, depth + 1))
				return false;
		return true;
	case element_type::OBJECT:
		if (e.get_object().get(o) != simdjson::SUCCESS)
			return false;
		for (auto m : o)
			if (!numbers_fit(m.value, depth + 1))
				return false;
		return true;
	case element_type::UINT64:
	case element_type::DOUBLE:
		return false;
	default:
		return true;
	}
}

void
value_of(element e, cm_ef_value *v)
{
	switch (e.type()) {
	case element_type::STRING:
		v->kind = EF_STRING;
		if (e.get_c_str().get(v->str) != simdjson::SUCCESS)
			v->kind = EF_OTHER;
		break;
	case element_type::INT64:
		v->kind = EF_INT;
		if (e.get_int64().get(v->num) != simdjson::SUCCESS)
			v->kind = EF_OTHER;
		break;
	case element_type::BOOL:
		{
			bool b = false;

			v->kind = e.get_bool().get(b) == simdjson::SUCCESS ?
			    (b ? EF_TRUE : EF_FALSE) : EF_OTHER;
		}
		break;
	case element_type::NULL_VALUE:
		v->kind = EF_NULL;
		break;
	default:
		v->kind = EF_OTHER;
		break;
	}
}

int
member_index(std::string_view key)
{
	int lo = 0, hi = EFD_COUNT;

	/* cm_ef_names is sorted. */
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		int c = key.compare(cm_ef_names[mid]);

		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

}	// namespace

bool
cm_entry_fast(const uint8_t *p, size_t len, cm_entry_fields *f) noexcept
{
	element root;
	simdjson::dom::object obj, d;
	int k;

	if (!cm_audit_canon_scan_settles(p, len))
		return false;
	if (parser.parse(p, len, false).get(root) != simdjson::SUCCESS ||
	    root.get_object().get(obj) != simdjson::SUCCESS || !numbers_fit(root, 0))
		return false;
	std::memset(f, 0, sizeof(*f));
	for (auto m : obj) {
		if (m.key == "i")
			value_of(m.value, &f->i);
		else if (m.key == "type")
			value_of(m.value, &f->type);
		else if (m.key == "s")
			value_of(m.value, &f->s);
		else if (m.key == "d" && m.value.get_object().get(d) == simdjson::SUCCESS)
			for (auto dm : d)
				if ((k = member_index(dm.key)) >= 0)
					value_of(dm.value, &f->d[k]);
	}
	return true;
}
