/* SPDX-License-Identifier: ISC */
/*
 * consentd witness: a witness the DPO runs apart from the service, so a
 * log that rewrites its history is caught even when its own key signs the
 * rewrite. It keeps the largest checkpoint it has cosigned (origin, size,
 * root) in a state file, and cosigns a new checkpoint (C2SP
 * tlog-cosignature/v1) only when the log's signature is valid and a
 * consistency proof shows the new tree extends the old one. A smaller tree,
 * another root for the same size, or a missing or bad proof is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/merkle.h"
#include "consentd/util.h"

struct witness_args {
	const char	*name;
	const char	*key;
	const char	*state;
	const char	*log_vkey;
	const char	*checkpoint;
	const char	*consistency;
};

struct wkey {
	char	 name[CM_AUDIT_ORIGIN_MAX + 1];
	uint8_t	*sk;		/* secure memory, 64 bytes */
	uint8_t	 pk[32];
};

static int
witness_set(int val, const char *arg, void *ctx)
{
	struct witness_args *a = ctx;

	switch (val) {
	case 'n': a->name = arg; return 0;
	case 'k': a->key = arg; return 0;
	case 's': a->state = arg; return 0;
	case 'l': a->log_vkey = arg; return 0;
	case 'c': a->checkpoint = arg; return 0;
	case 'p': a->consistency = arg; return 0;
	}
	return CM_EXIT_USAGE;
}

/* Writes TEXT to PATH atomically (temp file, fsync, rename), mode 0600. */
static int
write_atomic(const char *path, const char *text, bool exclusive)
{
	char tmp[4096];
	size_t len = strlen(text), off = 0;
	ssize_t w;
	int fd, n;

	if (exclusive && access(path, F_OK) == 0) {
		errno = EEXIST;
		return -1;
	}
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
		return -1;
	while (off < len) {
		if ((w = write(fd, text + off, len - off)) <= 0) {
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int
witness_keygen(const struct witness_args *a)
{
	uint8_t *seed, *sk, pk[32];
	char b64[64], vkey[256], *text;
	json_t *o;
	int rc = CM_EXIT_ERROR;

	if (a->name == NULL || !cm_audit_origin_valid(a->name) || a->key == NULL) {
		cm_cli_error("keygen needs --name NAME (no spaces or '+') and --key FILE");
		return CM_EXIT_USAGE;
	}
	seed = cm_secure_alloc(32);
	sk = cm_secure_alloc(64);
	cm_random(seed, 32);
	if (cm_ed25519_from_seed(pk, sk, seed) != 0)
		goto out;
	cm_base64(b64, sizeof(b64), seed, 32);
	o = json_pack("{s:s, s:s}", "name", a->name, "seed", b64);
	cm_wipe(b64, sizeof(b64));
	text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	if (text == NULL || write_atomic(a->key, text, true) != 0) {
		cm_cli_error("cannot write %s: %s", a->key, strerror(errno));
		if (text != NULL)
			cm_wipe(text, strlen(text));
		free(text);
		goto out;
	}
	cm_wipe(text, strlen(text));
	free(text);
	cm_note_vkey(vkey, sizeof(vkey), a->name, CM_NOTE_COSIGNATURE, pk);
	printf("%s\n", vkey);
	fprintf(stderr, "consentd: witness key written to %s; its verifier key is above\n",
	    a->key);
	rc = CM_EXIT_OK;
out:
	cm_secure_free(seed);
	cm_secure_free(sk);
	return rc;
}

static int
witness_load_key(const char *path, struct wkey *k)
{
	uint8_t *seed;
	json_error_t je;
	json_t *o;
	const char *name, *s;
	char *text;
	size_t len;
	int rc = -1;

	if ((text = cm_file_read(path, 4096, &len)) == NULL) {
		cm_cli_error("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	o = json_loadb(text, len, 0, &je);
	cm_wipe(text, len);
	free(text);
	seed = cm_secure_alloc(32);
	k->sk = cm_secure_alloc(64);
	if (o == NULL || json_unpack(o, "{s:s, s:s}", "name", &name, "seed", &s) != 0 ||
	    strlen(name) >= sizeof(k->name) ||
	    cm_base64_decode(seed, 32, s, strlen(s)) != 32 ||
	    cm_ed25519_from_seed(k->pk, k->sk, seed) != 0) {
		cm_cli_error("%s is not a witness key file", path);
		goto out;
	}
	memcpy(k->name, name, strlen(name) + 1);
	rc = 0;
out:
	json_decref(o);
	cm_secure_free(seed);
	return rc;
}

struct wstate {
	bool		 present;
	char		 origin[CM_AUDIT_ORIGIN_MAX + 1];
	uint64_t	 size;
	uint8_t		 root[32];
};

static int
witness_load_state(const char *path, struct wstate *st)
{
	json_error_t je;
	json_t *o;
	const char *origin, *root;
	json_int_t size;
	char *text;
	size_t len;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if ((text = cm_file_read(path, 65536, &len)) == NULL) {
		if (errno == ENOENT)
			return 0;
		cm_cli_error("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	o = json_loadb(text, len, 0, &je);
	free(text);
	if (o == NULL || json_unpack(o, "{s:s, s:I, s:s}", "origin", &origin, "size", &size,
	    "root", &root) != 0 || size < 0 || strlen(origin) >= sizeof(st->origin) ||
	    cm_base64_decode(st->root, 32, root, strlen(root)) != 32) {
		cm_cli_error("%s is not a witness state file", path);
		goto out;
	}
	memcpy(st->origin, origin, strlen(origin) + 1);
	st->size = (uint64_t)size;
	st->present = true;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/*
 * Checks the consistency proof file (the JSON of GET /v1/audit/consistency)
 * from the state's tree to the new one.
 */
static int
witness_check_proof(const char *path, const struct wstate *st, uint64_t size,
    const uint8_t root[32])
{
	uint8_t proof[CM_MERKLE_MAX_PROOF][32], r1[32], r2[32];
	json_error_t je;
	json_t *o = NULL, *arr, *v;
	const char *s1, *s2;
	json_int_t old, new_;
	size_t i, n;
	char *text;
	int rc = -1;

	if (path == NULL) {
		cm_cli_error("refused: a consistency proof from size %" PRIu64 " to %"
		    PRIu64 " is required (--consistency FILE, from GET "
		    "/v1/audit/consistency?old=%" PRIu64 "&new=%" PRIu64 ")",
		    st->size, size, st->size, size);
		return -1;
	}
	if ((text = cm_file_read(path, 1 << 20, &n)) == NULL) {
		cm_cli_error("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	o = json_loadb(text, n, 0, &je);
	free(text);
	if (o == NULL || json_unpack(o, "{s:I, s:I, s:s, s:s, s:o}", "old", &old,
	    "new", &new_, "old_root", &s1, "new_root", &s2, "proof", &arr) != 0 ||
	    !json_is_array(arr) || json_array_size(arr) > CM_MERKLE_MAX_PROOF ||
	    cm_base64_decode(r1, 32, s1, strlen(s1)) != 32 ||
	    cm_base64_decode(r2, 32, s2, strlen(s2)) != 32) {
		cm_cli_error("refused: %s is not a consistency proof", path);
		goto out;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || cm_base64_decode(proof[i], 32, json_string_value(v),
		    json_string_length(v)) != 32) {
			cm_cli_error("refused: %s holds a malformed proof hash", path);
			goto out;
		}
	}
	if ((uint64_t)old != st->size || (uint64_t)new_ != size) {
		cm_cli_error("refused: the proof is for sizes %lld -> %lld, not %" PRIu64
		    " -> %" PRIu64, (long long)old, (long long)new_, st->size, size);
		goto out;
	}
	/* Only the roots the witness knows count: the one it cosigned and the new one. */
	if (cm_merkle_verify_consistency(st->size, size, st->root, root,
	    (const uint8_t (*)[32])proof, json_array_size(arr)) != 0) {
		cm_cli_error("refused: the checkpoint of size %" PRIu64 " is not consistent "
		    "with the one of size %" PRIu64 " cosigned before: the log's history "
		    "was rewritten", size, st->size);
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static int
witness_cosign(const struct witness_args *a)
{
	struct wkey k;
	struct wstate st;
	struct cm_buf out = { 0 };
	char *note = NULL, body[CM_NOTE_MAX], origin[CM_AUDIT_ORIGIN_MAX + 1];
	char name[CM_AUDIT_ORIGIN_MAX + 1], root64[64], *state = NULL;
	uint8_t root[32], lpk[32];
	uint64_t size, now;
	size_t len;
	json_t *o;
	int rc = CM_EXIT_ERROR;

	memset(&k, 0, sizeof(k));
	if (a->key == NULL || a->state == NULL || a->log_vkey == NULL || a->checkpoint == NULL) {
		cm_cli_error("cosign needs --key, --state, --log-vkey and --checkpoint");
		return CM_EXIT_USAGE;
	}
	if (cm_note_vkey_parse(a->log_vkey, CM_NOTE_ED25519, name, sizeof(name), lpk) != 0) {
		cm_cli_error("--log-vkey: not an Ed25519 verifier key");
		return CM_EXIT_USAGE;
	}
	if (witness_load_key(a->key, &k) != 0 || witness_load_state(a->state, &st) != 0)
		goto out;
	if ((note = cm_file_read(a->checkpoint, CM_NOTE_MAX, &len)) == NULL) {
		cm_cli_error("cannot read %s: %s", a->checkpoint, strerror(errno));
		goto out;
	}
	if (cm_note_open(note, a->log_vkey, body, sizeof(body)) != 0 ||
	    cm_checkpoint_parse(body, strlen(body), origin, sizeof(origin), &size, root) != 0) {
		cm_cli_error("refused: %s is not a checkpoint signed by %s", a->checkpoint, name);
		goto out;
	}
	if (strcmp(origin, name) != 0 || (st.present && strcmp(origin, st.origin) != 0)) {
		cm_cli_error("refused: checkpoint of origin %s, expected %s", origin,
		    st.present ? st.origin : name);
		goto out;
	}
	if (st.present) {
		if (size < st.size) {
			cm_cli_error("refused: size %" PRIu64 " is smaller than the %" PRIu64
			    " already cosigned: the log was truncated", size, st.size);
			goto out;
		}
		if (size == st.size && cm_memeq(root, st.root, 32) != 0) {
			cm_cli_error("refused: a different root for size %" PRIu64 " than the "
			    "one already cosigned: the log forked", size);
			goto out;
		}
		if (size > st.size && witness_check_proof(a->consistency, &st, size, root) != 0)
			goto out;
	}
	now = (uint64_t)(cm_time_now_us() / 1000000);
	cm_buf_append(&out, note, strlen(note));
	if (cm_note_cosign(&out, body, k.name, k.sk, k.pk, now) != 0) {
		cm_cli_error("cannot cosign");
		goto out;
	}
	cm_base64(root64, sizeof(root64), root, 32);
	o = json_pack("{s:s, s:I, s:s, s:I}", "origin", origin, "size", (json_int_t)size,
	    "root", root64, "cosigned_at", (json_int_t)now);
	state = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	if (state == NULL || write_atomic(a->state, state, false) != 0) {
		cm_cli_error("cannot write %s: %s (nothing was cosigned)", a->state,
		    strerror(errno));
		goto out;
	}
	fputs(out.b_data, stdout);
	rc = CM_EXIT_OK;
out:
	free(state);
	free(note);
	cm_buf_free(&out);
	cm_secure_free(k.sk);
	return rc;
}

int
cm_cmd_witness(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "key", required_argument, NULL, 'k' },
		{ "state", required_argument, NULL, 's' },
		{ "log-vkey", required_argument, NULL, 'l' },
		{ "checkpoint", required_argument, NULL, 'c' },
		{ "consistency", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct witness_args a;
	const char *sub;
	int c;

	memset(&a, 0, sizeof(a));
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		cm_cli_usage("witness", argc < 2);
		return argc < 2 ? CM_EXIT_USAGE : CM_EXIT_OK;
	}
	sub = argv[1];
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("witness", false);
			return CM_EXIT_OK;
		}
		if (c == '?' || witness_set(c, optarg, &a) != 0)
			goto usage;
	}
	if (optind != argc - 1)
		goto usage;
	if (cm_crypto_init() != 0) {
		cm_cli_error("cannot initialise libsodium");
		return CM_EXIT_ERROR;
	}
	umask(077);
	if (strcmp(sub, "keygen") == 0)
		return witness_keygen(&a);
	if (strcmp(sub, "cosign") == 0)
		return witness_cosign(&a);
usage:
	cm_cli_usage("witness", true);
	return CM_EXIT_USAGE;
}
