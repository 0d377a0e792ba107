/* SPDX-License-Identifier: ISC */
/*
 * The chain of the log's verifier keys. The first key is named by entry 0
 * (store.initialised); each rotation appends an audit.key_rotated entry,
 * signed into a checkpoint by the old key, that names the new key and the
 * first checkpoint size it signs, so the chain of keys is itself in the
 * log. The chain is also kept in the store's settings (audit_vkey.0,
 * audit_vkey.1, …: "FROM ENTRY VKEY") for the verifier and the API; the
 * verifier checks each setting against the entry it names.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/crypto.h"
#include "consentd/store.h"
#include "consentd/util.h"

#define VKEY_META	"audit_vkey.%zu"

cm_result
cm_audit_vkeys_load(struct cm_db *db, struct cm_audit_vkey **out, size_t *n)
{
	struct cm_audit_vkey *v = NULL;
	char key[64], val[512];
	cm_result rc;
	size_t i;

	*out = NULL;
	*n = 0;
	for (i = 0;; i++) {
		struct cm_audit_vkey *a;
		char *sp1, *sp2, *end;

		snprintf(key, sizeof(key), VKEY_META, i);
		if ((rc = cm_store_meta_get(db, key, val, sizeof(val))) == CM_NOTFOUND)
			break;
		if (rc != CM_OK)
			goto fail;
		v = cm_reallocarray(v, i + 1, sizeof(*v));
		a = &v[i];
		if ((sp1 = strchr(val, ' ')) == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
		    strlen(sp2 + 1) >= sizeof(a->av_vkey)) {
			rc = CM_CONFLICT;
			goto fail;
		}
		a->av_from = strtoull(val, &end, 10);
		if (end != sp1) {
			rc = CM_CONFLICT;
			goto fail;
		}
		a->av_entry = strtoull(sp1 + 1, &end, 10);
		if (end != sp2) {
			rc = CM_CONFLICT;
			goto fail;
		}
		snprintf(a->av_vkey, sizeof(a->av_vkey), "%s", sp2 + 1);
	}
	*out = v;
	*n = i;
	return CM_OK;
fail:
	free(v);
	return rc;
}

const char *
cm_audit_vkey_for(const struct cm_audit_vkey *v, size_t n, uint64_t size)
{
	const char *k = NULL;
	size_t i;

	for (i = 0; i < n && v[i].av_from <= size; i++)
		k = v[i].av_vkey;
	return k;
}

struct vk_entry {
	const char	*want_type;
	const char	*field;		/* the detail naming the key */
	const struct cm_audit_vkey *a;
	bool		 ok;
};

static int
vk_entry_check(void *arg, uint64_t idx, const void *entry, size_t len,
    const uint8_t leaf[32])
{
	struct vk_entry *c = arg;
	json_t *j, *d;
	const char *type, *vk;

	(void)idx;
	(void)leaf;
	if ((j = json_loadb(entry, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return 1;
	type = json_string_value(json_object_get(j, "type"));
	d = json_object_get(j, "d");
	vk = json_string_value(json_object_get(d, c->field));
	c->ok = type != NULL && strcmp(type, c->want_type) == 0 && vk != NULL &&
	    strcmp(vk, c->a->av_vkey) == 0 &&
	    (c->a->av_from == 0 || (json_is_integer(json_object_get(d, "from_size")) &&
	    (uint64_t)json_integer_value(json_object_get(d, "from_size")) == c->a->av_from));
	json_decref(j);
	return 1;
}

bool
cm_audit_vkeys_check(struct cm_db *db, const struct cm_audit_vkey *v, size_t n,
    const char *current)
{
	struct vk_entry c;
	size_t i;

	for (i = 0; i < n; i++) {
		c.want_type = i == 0 ? "store.initialised" : "audit.key_rotated";
		c.field = i == 0 ? "audit_vkey" : "new_vkey";
		c.a = &v[i];
		c.ok = false;
		if ((i == 0) != (v[i].av_from == 0) || (i > 0 && v[i].av_from <= v[i - 1].av_from) ||
		    cm_store_audit_scan(db, v[i].av_entry, v[i].av_entry + 1, vk_entry_check,
		    &c) != CM_OK || !c.ok)
			return false;
	}
	return n == 0 || current == NULL || strcmp(v[n - 1].av_vkey, current) == 0;
}

/* Stores setting I of the chain. */
static cm_result
vk_put(struct cm_db *db, size_t i, uint64_t from, uint64_t entry, const char *vkey)
{
	char key[64], val[512];
	int n;

	snprintf(key, sizeof(key), VKEY_META, i);
	n = snprintf(val, sizeof(val), "%" PRIu64 " %" PRIu64 " %s", from, entry, vkey);
	if (n < 0 || (size_t)n >= sizeof(val))
		return CM_INVALID;
	return cm_store_meta_put(db, key, val);
}

cm_result
cm_audit_rotate_key(struct cm_db *db, const struct cm_keys *old, const uint8_t newpk[32],
    const char *origin, uint64_t *from)
{
	struct cm_audit_event ev = { "audit.key_rotated", "system", NULL, NULL, NULL, NULL };
	struct cm_audit_vkey *v = NULL;
	char oldv[256], newv[256];
	uint64_t size, idx;
	size_t n = 0;
	cm_result rc;
	bool signed_;

	cm_note_vkey(oldv, sizeof(oldv), origin, CM_NOTE_ED25519, old->k_audit_pk);
	cm_note_vkey(newv, sizeof(newv), origin, CM_NOTE_ED25519, newpk);
	if ((rc = cm_db_begin(db)) != CM_OK)
		return rc;
	if ((rc = cm_audit_vkeys_load(db, &v, &n)) != CM_OK ||
	    (rc = cm_store_audit_size(db, &size)) != CM_OK)
		goto fail;
	/*
	 * The entry is index SIZE; the checkpoint the old key signs next
	 * covers it (size SIZE + 1), and every later one is the new key's.
	 */
	*from = size + 2;
	ev.ae_details = json_pack("{s:s, s:s, s:I}", "old_vkey", oldv, "new_vkey", newv,
	    "from_size", (json_int_t)*from);
	/* A store that never rotated: its first key is named by entry 0. */
	if (n == 0 && (rc = vk_put(db, 0, 0, 0, oldv)) != CM_OK)
		goto fail;
	if ((rc = cm_audit_append(db, &ev, &idx)) != CM_OK ||
	    (rc = vk_put(db, n == 0 ? 1 : n, *from, idx, newv)) != CM_OK)
		goto fail;
	json_decref(ev.ae_details);
	free(v);
	if ((rc = cm_db_commit(db)) != CM_OK)
		return rc;
	/* The rotation entry, under the old key: the link of the chain. */
	return cm_audit_checkpoint(db, old, origin, &signed_);
fail:
	json_decref(ev.ae_details);
	free(v);
	cm_db_rollback(db);
	return rc;
}
