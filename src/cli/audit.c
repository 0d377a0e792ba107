/* SPDX-License-Identifier: ISC */
/*
 * consentd audit: verify the whole log (ending with "N passed, N failed"),
 * print the latest checkpoint (signing one first if the log grew), the
 * verifier key, or an inclusion proof.
 */
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/merkle.h"
#include "consentd/store.h"
#include "consentd/util.h"

struct audit_args {
	const char	*data;
	const char	*vkey;
	const char	*index;
	const char	*size;
	const char	*old;
	const char	*new_;
	const char	*checkpoint;	/* a signed note an operator or witness kept */
	char		*cp_note;	/* its text, read before the store is opened */
};

static int
audit_set(int val, const char *arg, void *ctx)
{
	struct audit_args *a = ctx;

	switch (val) {
	case 'd': a->data = arg; return 0;
	case 'k': a->vkey = arg; return 0;
	case 'i': a->index = arg; return 0;
	case 's': a->size = arg; return 0;
	case 'o': a->old = arg; return 0;
	case 'n': a->new_ = arg; return 0;
	case 'c': a->checkpoint = arg; return 0;
	}
	return CM_EXIT_USAGE;
}

/* The text of the note file PATH (at most CM_NOTE_MAX bytes), or NULL. */
static char *
read_note(const char *path)
{
	char *buf = cm_malloc(CM_NOTE_MAX + 1);
	size_t n;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, CM_NOTE_MAX + 1, f);
	if (ferror(f) || n > CM_NOTE_MAX || n == 0 || memchr(buf, '\0', n) != NULL) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void CM_PRINTF(3, 4)
ext_report(struct cm_verify_report *rep, bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		rep->vr_passed++;
	else
		rep->vr_failed++;
	fputs(ok ? "ok   " : "FAIL ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

/*
 * The checkpoint an operator or a witness kept (--checkpoint: a signed
 * note as GET /v1/audit/checkpoint serves it), checked after the log's
 * own: its signature by the log's key (VKEY, or the local one), its
 * origin, that the log holds at least its size, and that the tree of
 * that size has its root. A copy of the store that lost committed
 * entries (consentd.db copied without its write-ahead log) is consistent
 * in itself and passes every other check; this is the one it fails. The
 * root comes from the stored hashes, which the run has just compared
 * with the tree recomputed from the entries.
 */
static void
audit_external(struct cm_db *db, const struct cm_keys *keys, const struct audit_args *a,
    struct cm_verify_report *rep)
{
	char origin[CM_AUDIT_ORIGIN_MAX + 1], cp_origin[CM_AUDIT_ORIGIN_MAX + 1];
	char vkey[256], body[CM_NOTE_MAX];
	uint8_t cp_root[32], root[32];
	uint64_t cp_size, total;
	bool ok;

	if (cm_audit_origin(db, origin, sizeof(origin)) != CM_OK ||
	    cm_store_audit_size(db, &total) != CM_OK) {
		ext_report(rep, false, "checkpoint %s: cannot read the log", a->checkpoint);
		return;
	}
	if (a->vkey != NULL)
		snprintf(vkey, sizeof(vkey), "%s", a->vkey);
	else
		cm_note_vkey(vkey, sizeof(vkey), origin, CM_NOTE_ED25519, keys->k_audit_pk);
	if (cm_note_open(a->cp_note, vkey, body, sizeof(body)) != 0 ||
	    cm_checkpoint_parse(body, strlen(body), cp_origin, sizeof(cp_origin), &cp_size,
	    cp_root) != 0) {
		ext_report(rep, false, "checkpoint %s: not a checkpoint signed by the log's "
		    "key", a->checkpoint);
		return;
	}
	ext_report(rep, true, "checkpoint %s: signed by the log's key", a->checkpoint);
	ext_report(rep, strcmp(cp_origin, origin) == 0, "checkpoint %s: of this log (%s)",
	    a->checkpoint, origin);
	if (cp_size > total) {
		ext_report(rep, false, "checkpoint %s: signed for %" PRIu64 " entries, but the "
		    "log holds %" PRIu64 ": committed entries are missing (a copy without "
		    "its write-ahead log, or an older one)", a->checkpoint, cp_size, total);
		return;
	}
	ok = cp_size == 0 ? (cm_merkle_empty_root(root), cm_memeq(root, cp_root, 32) == 0) :
	    cm_audit_root(db, cp_size, root) == CM_OK && cm_memeq(root, cp_root, 32) == 0;
	ext_report(rep, ok, "checkpoint %s: the log's first %" PRIu64 " entries have its "
	    "root", a->checkpoint, cp_size);
}

static int
audit_verify(struct cm_db *db, const struct cm_keys *keys, struct audit_args *a)
{
	struct cm_verify_report rep;
	cm_result rc;

	rc = cm_audit_verify(db, keys, a->vkey, stdout, &rep);
	if (rc == CM_INVALID) {
		cm_cli_error("--vkey: not an Ed25519 verifier key (name+keyid+base64)");
		return CM_EXIT_USAGE;
	}
	if (rc != CM_OK) {
		cm_cli_error("cannot read the log: %s", cm_result_str(rc));
		return CM_EXIT_ERROR;
	}
	if (a->cp_note != NULL)
		audit_external(db, keys, a, &rep);
	printf("%" PRIu64 " entries, %" PRIu64 " checkpoints", rep.vr_entries,
	    rep.vr_checkpoints);
	if (rep.vr_first_bad >= 0)
		printf("; first bad entry: %" PRId64, rep.vr_first_bad);
	printf("\n%u passed, %u failed\n", rep.vr_passed, rep.vr_failed);
	return rep.vr_failed == 0 ? CM_EXIT_OK : CM_EXIT_ERROR;
}

static int
audit_checkpoint(struct cm_db *db, const struct cm_keys *keys)
{
	struct cm_checkpoint_row row;
	char origin[CM_AUDIT_ORIGIN_MAX + 1];
	bool signed_;
	cm_result rc;

	if ((rc = cm_audit_origin(db, origin, sizeof(origin))) != CM_OK ||
	    (rc = cm_audit_checkpoint(db, keys, origin, &signed_)) != CM_OK ||
	    (rc = cm_store_audit_checkpoint_latest(db, &row)) != CM_OK) {
		cm_cli_error("cannot sign or read a checkpoint: %s", cm_result_str(rc));
		return CM_EXIT_ERROR;
	}
	fputs(row.cp_note, stdout);
	free(row.cp_note);
	return CM_EXIT_OK;
}

static int
audit_vkey(struct cm_db *db, const struct cm_keys *keys)
{
	char origin[CM_AUDIT_ORIGIN_MAX + 1], vkey[256];

	if (cm_audit_origin(db, origin, sizeof(origin)) != CM_OK) {
		cm_cli_error("the store has no audit origin");
		return CM_EXIT_ERROR;
	}
	cm_note_vkey(vkey, sizeof(vkey), origin, CM_NOTE_ED25519, keys->k_audit_pk);
	printf("%s\n", vkey);
	return CM_EXIT_OK;
}

/* Prints OUT (stolen) on one line, as the API sends it. */
static int
print_json(json_t *out)
{
	char *t = json_dumps(out, JSON_COMPACT);

	json_decref(out);
	if (t == NULL) {
		cm_cli_error("cannot encode the proof");
		return CM_EXIT_ERROR;
	}
	printf("%s\n", t);
	free(t);
	return CM_EXIT_OK;
}

static int
audit_proof(struct cm_db *db, const struct audit_args *a)
{
	struct cm_checkpoint_row row;
	int64_t index, size;
	json_t *out;

	if (a->index == NULL || cm_parse_i64(a->index, 0, INT64_MAX, &index) != 0) {
		cm_cli_error("--index: a non-negative integer is required");
		return CM_EXIT_USAGE;
	}
	if (cm_store_audit_checkpoint_latest(db, &row) != CM_OK) {
		cm_cli_error("no signed checkpoint yet");
		return CM_EXIT_ERROR;
	}
	free(row.cp_note);
	size = (int64_t)row.cp_size;
	if (a->size != NULL && cm_parse_i64(a->size, 1, size, &size) != 0) {
		cm_cli_error("--size: at most %" PRIu64 ", the latest signed size", row.cp_size);
		return CM_EXIT_USAGE;
	}
	if (index >= size) {
		cm_cli_error("--index: must be less than the size %" PRId64, size);
		return CM_EXIT_USAGE;
	}
	if (cm_audit_proof_json(db, (uint64_t)index, (uint64_t)size, &out) != CM_OK) {
		cm_cli_error("cannot build the proof");
		return CM_EXIT_ERROR;
	}
	return print_json(out);
}

/* The JSON of GET /v1/audit/consistency, for a witness run beside the store. */
static int
audit_consistency(struct cm_db *db, const struct audit_args *a)
{
	struct cm_checkpoint_row row;
	int64_t old, new_;
	json_t *out;

	if (cm_store_audit_checkpoint_latest(db, &row) != CM_OK) {
		cm_cli_error("no signed checkpoint yet");
		return CM_EXIT_ERROR;
	}
	free(row.cp_note);
	new_ = (int64_t)row.cp_size;
	if (a->old == NULL || cm_parse_i64(a->old, 0, INT64_MAX, &old) != 0 ||
	    (a->new_ != NULL && cm_parse_i64(a->new_, 0, (int64_t)row.cp_size, &new_) != 0) ||
	    old > new_) {
		cm_cli_error("--old N [--new M]: 0 <= N <= M <= %" PRIu64 ", the latest "
		    "signed size", row.cp_size);
		return CM_EXIT_USAGE;
	}
	if (cm_audit_consistency_json(db, (uint64_t)old, (uint64_t)new_, &out) != CM_OK) {
		cm_cli_error("cannot build the proof");
		return CM_EXIT_ERROR;
	}
	return print_json(out);
}

int
cm_cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "vkey", required_argument, NULL, 'k' },
		{ "index", required_argument, NULL, 'i' },
		{ "size", required_argument, NULL, 's' },
		{ "old", required_argument, NULL, 'o' },
		{ "new", required_argument, NULL, 'n' },
		{ "checkpoint", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct audit_args a = { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_db *db;
	const char *sub;
	int c, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		cm_cli_usage("audit", argc < 2);
		return argc < 2 ? CM_EXIT_USAGE : CM_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "verify") != 0 && strcmp(sub, "checkpoint") != 0 &&
	    strcmp(sub, "vkey") != 0 && strcmp(sub, "proof") != 0 &&
	    strcmp(sub, "consistency") != 0)
		goto usage;
	if (cm_cli_env_defaults(opts, audit_set, &a) != 0)
		return CM_EXIT_USAGE;
	a.vkey = NULL;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("audit", false);
			return CM_EXIT_OK;
		}
		if (c == '?' || audit_set(c, optarg, &a) != 0)
			goto usage;
	}
	if (optind != argc - 1)
		goto usage;
	if (a.checkpoint != NULL && strcmp(sub, "verify") != 0) {
		cm_cli_error("--checkpoint: only with verify");
		return CM_EXIT_USAGE;
	}
	if (a.checkpoint != NULL && (a.cp_note = read_note(a.checkpoint)) == NULL) {
		cm_cli_error("--checkpoint: cannot read %s (a signed checkpoint note of at "
		    "most %d bytes)", a.checkpoint, CM_NOTE_MAX);
		return CM_EXIT_USAGE;
	}
	if ((rc = cm_cli_open(cm_cli_data_dir(a.data), NULL, false, &keys, &store)) != 0) {
		free(a.cp_note);
		return rc;
	}
	if ((db = cm_store_db(store)) == NULL) {
		rc = CM_EXIT_ERROR;
	} else if (strcmp(sub, "verify") == 0) {
		rc = audit_verify(db, keys, &a);
	} else if (strcmp(sub, "checkpoint") == 0) {
		rc = audit_checkpoint(db, keys);
	} else if (strcmp(sub, "vkey") == 0) {
		rc = audit_vkey(db, keys);
	} else if (strcmp(sub, "proof") == 0) {
		rc = audit_proof(db, &a);
	} else {
		rc = audit_consistency(db, &a);
	}
	cm_store_close(store);
	cm_keys_free(keys);
	free(a.cp_note);
	return rc;
usage:
	cm_cli_usage("audit", true);
	return CM_EXIT_USAGE;
}
