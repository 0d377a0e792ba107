/* SPDX-License-Identifier: ISC */
/*
 * consentd receipt verify: checks a consent receipt offline, needing no
 * data directory and no network: its signature, the checkpoint it
 * carries, the inclusion proof of its audit entry, and that the entry
 * records what the receipt says (consentd/receipt.h). The verifier key is
 * the one GET /v1/audit/vkey publishes, given as --vkey (the key itself,
 * or a file holding it); without it the receipt's own key is used, which
 * shows the receipt is intact but not who signed it, and says so.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/receipt.h"
#include "consentd/util.h"

#define VKEY_FILE_MAX	4096

/*
 * The verifier key ARG: itself when it parses as one, else the first line
 * of the file it names. A new string the caller frees, or NULL.
 */
static char *
load_vkey(const char *arg)
{
	char name[CM_AUDIT_ORIGIN_MAX + 1], *t;
	uint8_t pk[32];
	size_t len;

	if (cm_note_vkey_parse(arg, CM_NOTE_ED25519, name, sizeof(name), pk) == 0)
		return strdup(arg);
	if ((t = cm_file_read(arg, VKEY_FILE_MAX, &len)) == NULL)
		return NULL;
	t[strcspn(t, "\r\n")] = '\0';
	return t;
}

/* Reads and parses the receipt in PATH ("-": standard input). */
static json_t *
load_receipt(const char *path)
{
	json_error_t je;
	json_t *r;
	char *t;
	size_t len;

	if (strcmp(path, "-") == 0) {
		r = json_loadf(stdin, JSON_REJECT_DUPLICATES, &je);
		if (r == NULL)
			cm_cli_error("-: not a JSON receipt: %s (line %d)", je.text, je.line);
		return r;
	}
	if ((t = cm_file_read(path, CM_RECEIPT_MAX_BYTES, &len)) == NULL) {
		cm_cli_error("%s: %s", path, strerror(errno));
		return NULL;
	}
	r = json_loadb(t, len, JSON_REJECT_DUPLICATES, &je);
	free(t);
	if (r == NULL)
		cm_cli_error("%s: not a JSON receipt: %s (line %d)", path, je.text, je.line);
	return r;
}

static int
receipt_verify(const char *path, const char *vkey_arg)
{
	struct cm_receipt_report rr;
	char *vkey = NULL;
	json_t *r;
	int rc = CM_EXIT_ERROR;

	if (vkey_arg != NULL && (vkey = load_vkey(vkey_arg)) == NULL) {
		cm_cli_error("--vkey: neither a verifier key (name+keyid+base64) nor a "
		    "readable file holding one");
		return CM_EXIT_USAGE;
	}
	if ((r = load_receipt(path)) == NULL)
		goto out;
	if (cm_receipt_verify(r, vkey, &rr) != 0) {
		cm_cli_error("%s: receipt does NOT verify: %s", path, rr.rr_why);
		goto out;
	}
	printf("%s: ok: consent event %s, audit entry %" PRIu64 " in the signed tree of "
	    "%" PRIu64 " entries; signature, checkpoint and inclusion proof verify\n",
	    path, rr.rr_event_id, rr.rr_index, rr.rr_size);
	if (rr.rr_key_from_receipt)
		fprintf(stderr, "consentd: warning: checked with the key the receipt names; "
		    "pass --vkey with the key from GET /v1/audit/vkey to know who signed it\n");
	rc = CM_EXIT_OK;
out:
	json_decref(r);
	free(vkey);
	return rc;
}

int
cm_cmd_receipt(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vkey", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *vkey = NULL;
	int c;

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		cm_cli_usage("receipt", argc < 2);
		return argc < 2 ? CM_EXIT_USAGE : CM_EXIT_OK;
	}
	if (strcmp(argv[1], "verify") != 0)
		goto usage;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("receipt", false);
			return CM_EXIT_OK;
		}
		if (c != 'k')
			goto usage;
		vkey = optarg;
	}
	if (optind != argc - 2)
		goto usage;
	return receipt_verify(argv[optind + 1], vkey);
usage:
	cm_cli_usage("receipt", true);
	return CM_EXIT_USAGE;
}
