/* SPDX-License-Identifier: ISC */
/*
 * Fuzzes what the witness (src/cli/witness.c) reads from outside: the
 * checkpoint note, its state file and the consistency proof, through the
 * real command, cm_cmd_witness("cosign"), on files in a directory of its
 * own (under build/ by default; CONSENTD_FUZZ_TMP names another). The
 * input is up to three parts separated by lines "%%":
 *   the checkpoint: used as the note file as it is, or, when its first
 *     line is "sign", the rest signed with the log's key (the witness
 *     trusts no log: a log may sign whatever it likes);
 *   the state file (no second part: the witness has cosigned nothing yet);
 *   the consistency proof (no third part: no --consistency).
 * The witness's own key is fixed. Checks the witness's promise: whenever
 * it cosigns, the state it keeps moves forward, for the same origin, and
 * a tree of the same size has the same root.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/util.h"
#include "fuzz.h"

#define LOG_NAME	"shop.example/consentd"

static uint8_t log_sk[64], log_pk[32];
static char log_vkey[256], dir[256], key_path[300], state_path[300], note_path[300],
	    proof_path[300];

static void
cleanup(void)
{
	unlink(key_path);
	unlink(state_path);
	unlink(note_path);
	unlink(proof_path);
	rmdir(dir);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL || fwrite(data, 1, len, f) != len ||
	    fclose(f) != 0) {
		fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char key[] = "{\"name\":\"dpo.shop.example/witness\","
	    "\"seed\":\"IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=\"}\n";
	const char *tmp;
	uint8_t seed[32];

	(void)argc;
	(void)argv;
	if (cm_crypto_init() != 0)
		abort();
	memset(seed, 0x11, sizeof(seed));
	if (cm_ed25519_from_seed(log_pk, log_sk, seed) != 0)
		abort();
	cm_note_vkey(log_vkey, sizeof(log_vkey), LOG_NAME, CM_NOTE_ED25519, log_pk);
	if ((tmp = getenv("CONSENTD_FUZZ_TMP")) == NULL)
		tmp = "build";
	mkdir(tmp, 0700);
	snprintf(dir, sizeof(dir), "%s/witness-XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "fuzz: cannot make a directory in %s: %s\n", tmp, strerror(errno));
		abort();
	}
	snprintf(key_path, sizeof(key_path), "%s/witness.key", dir);
	snprintf(state_path, sizeof(state_path), "%s/state.json", dir);
	snprintf(note_path, sizeof(note_path), "%s/checkpoint", dir);
	snprintf(proof_path, sizeof(proof_path), "%s/proof.json", dir);
	write_file(key_path, key, sizeof(key) - 1);
	atexit(cleanup);
	return 0;
}

struct wstate {
	bool		 ok;
	char		 origin[CM_AUDIT_ORIGIN_MAX + 1];
	json_int_t	 size;
	char		 root[64];
};

/* Reads a state file as the harness understands it. */
static void
read_state(const char *text, size_t len, struct wstate *st)
{
	const char *origin, *root;
	json_t *o;

	memset(st, 0, sizeof(*st));
	o = json_loadb(text, len, 0, NULL);
	if (o != NULL && json_unpack(o, "{s:s, s:I, s:s}", "origin", &origin, "size",
	    &st->size, "root", &root) == 0 && strlen(origin) < sizeof(st->origin) &&
	    strlen(root) < sizeof(st->root)) {
		strcpy(st->origin, origin);
		strcpy(st->root, root);
		st->ok = true;
	}
	json_decref(o);
}

/* The next part of [*P, END): up to and including the newline before a "%%" line. */
static bool
next_part(const char **p, const char *end, const char **part, size_t *len)
{
	const char *q;

	if (*p == NULL)
		return false;
	*part = *p;
	for (q = *p; q + 4 <= end; q++)
		if (memcmp(q, "\n%%\n", 4) == 0)
			break;
	if (q + 4 <= end) {
		*len = (size_t)(q - *p) + 1;
		*p = q + 4;
	} else {
		*len = (size_t)(end - *p);
		*p = NULL;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *part;
	struct cm_buf note = { 0 };
	struct wstate before, after;
	char cmd[] = "witness", sub[] = "cosign", o_key[] = "--key", o_state[] = "--state";
	char o_vkey[] = "--log-vkey", o_note[] = "--checkpoint", o_proof[] = "--consistency";
	char *argv[12], *body, *text;
	size_t len;
	int argc = 0, rc;
	bool have_proof = false;

	if (!next_part(&p, end, &part, &len))
		return 0;
	if (len >= 5 && memcmp(part, "sign\n", 5) == 0) {
		body = cm_strndup(part + 5, len - 5);
		if (cm_note_sign(&note, body, LOG_NAME, log_sk, log_pk) == 0)
			write_file(note_path, note.b_data, note.b_len);
		else
			write_file(note_path, part, len);
		free(body);
		cm_buf_free(&note);
	} else {
		write_file(note_path, part, len);
	}
	memset(&before, 0, sizeof(before));
	if (next_part(&p, end, &part, &len)) {
		write_file(state_path, part, len);
		read_state(part, len, &before);
	} else {
		unlink(state_path);
	}
	if (next_part(&p, end, &part, &len)) {
		write_file(proof_path, part, len);
		have_proof = true;
	}

	argv[argc++] = cmd;
	argv[argc++] = sub;
	argv[argc++] = o_key;
	argv[argc++] = key_path;
	argv[argc++] = o_state;
	argv[argc++] = state_path;
	argv[argc++] = o_vkey;
	argv[argc++] = log_vkey;
	argv[argc++] = o_note;
	argv[argc++] = note_path;
	if (have_proof) {
		argv[argc++] = o_proof;
		argv[argc++] = proof_path;
	}
	rc = cm_cmd_witness(argc, argv);
	fflush(stdout);
	FUZZ_CHECK(rc == CM_EXIT_OK || rc == CM_EXIT_ERROR);
	if (rc != CM_EXIT_OK)
		return 0;
	/* Cosigned: the state moved forward, never back or sideways. */
	FUZZ_CHECK((text = cm_file_read(state_path, 65536, &len)) != NULL);
	read_state(text, len, &after);
	free(text);
	FUZZ_CHECK(after.ok && strcmp(after.origin, LOG_NAME) == 0);
	if (before.ok) {
		FUZZ_CHECK(strcmp(before.origin, after.origin) == 0);
		FUZZ_CHECK(after.size >= before.size);
		if (after.size == before.size)
			FUZZ_CHECK(strcmp(before.root, after.root) == 0);
	}
	return 0;
}
