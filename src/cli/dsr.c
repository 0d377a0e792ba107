/* SPDX-License-Identifier: ISC */
/*
 * consentd dsr: data-subject requests from the command line. Each
 * subcommand is one row of dsr_subs (name, function, usage line); a new
 * one is a function and a row.
 *
 *   export ID [-o FILE] [--format json|csv]   the package a processed
 *       request holds, decrypted from the data directory by the same code
 *       as GET /v1/dsr/{id}/package
 *   verify-package FILE [--vkey VKEY]         checks a consentd-export/1
 *       document offline: every section's SHA-256 against the manifest and
 *       the manifest's Ed25519 signature with the audit log's verifier key
 *       (GET /v1/audit/vkey); without --vkey, the key of --data's log
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/dsr.h"
#include "consentd/export.h"
#include "consentd/store.h"
#include "consentd/util.h"

struct dsr_args {
	const char	*data;
	const char	*out;
	const char	*format;
	const char	*vkey;
};

static int
dsr_set(int val, const char *arg, void *ctx)
{
	struct dsr_args *a = ctx;

	switch (val) {
	case 'd': a->data = arg; return 0;
	case 'o': a->out = arg; return 0;
	case 'f': a->format = arg; return 0;
	case 'k': a->vkey = arg; return 0;
	}
	return CM_EXIT_USAGE;
}

static const struct option dsr_opts[] = {
	{ "data", required_argument, NULL, 'd' },
	{ "output", required_argument, NULL, 'o' },
	{ "format", required_argument, NULL, 'f' },
	{ "vkey", required_argument, NULL, 'k' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* Writes all of BUF to FD. 0 or -1. */
static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Streams the package of request ID from DB into FD. */
static int
export_copy(struct cm_db *db, const struct cm_keys *keys, const char *id,
    enum cm_package_format fmt, int fd)
{
	struct cm_package_reader *r;
	struct cm_why w;
	struct cm_ctx cx;
	uint64_t size;
	char *buf;
	long n;
	int ret = CM_EXIT_ERROR;

	memset(&w, 0, sizeof(w));
	cm_ctx_init(&cx, db, keys, NULL, "cli");
	if (cm_dsr_package_open(&cx, id, fmt, &r, &size, &w) != CM_OK) {
		cm_cli_error("%s: %s", w.w_code != NULL ? w.w_code : "store unavailable",
		    w.w_code != NULL ? w.w_msg : "try again");
		return CM_EXIT_ERROR;
	}
	buf = cm_malloc(CM_SEALED_CHUNK);
	while ((n = cm_dsr_package_read(r, buf, CM_SEALED_CHUNK)) > 0)
		if (write_all(fd, buf, (size_t)n) != 0) {
			cm_cli_error("cannot write the package: %s", strerror(errno));
			goto out;
		}
	if (n < 0) {
		cm_cli_error("the held package is damaged (it does not decrypt)");
		goto out;
	}
	ret = CM_EXIT_OK;
out:
	cm_wipe(buf, CM_SEALED_CHUNK);
	free(buf);
	cm_dsr_package_close(r);
	return ret;
}

static int
dsr_export(struct dsr_args *a, int argc, char **argv)
{
	enum cm_package_format fmt = CM_PACKAGE_JSON;
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_db *db;
	int fd = STDOUT_FILENO, ret;

	if (argc != 1)
		return CM_EXIT_USAGE;
	if (a->format != NULL && strcmp(a->format, "csv") == 0)
		fmt = CM_PACKAGE_CSV;
	else if (a->format != NULL && strcmp(a->format, "json") != 0)
		return CM_EXIT_USAGE;
	if ((ret = cm_cli_open(cm_cli_data_dir(a->data), NULL, false, &keys, &store)) != 0)
		return ret;
	ret = CM_EXIT_ERROR;
	if ((db = cm_store_db(store)) == NULL) {
		cm_cli_error("cannot open a connection to the store");
		goto out;
	}
	/* Personal data: a new file only its owner reads, never one overwritten. */
	if (a->out != NULL && (fd = open(a->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0) {
		cm_cli_error("cannot create %s: %s", a->out, strerror(errno));
		goto out;
	}
	ret = export_copy(db, keys, argv[0], fmt, fd);
	if (a->out != NULL) {
		if ((fsync(fd) != 0 || close(fd) != 0) && ret == CM_EXIT_OK) {
			cm_cli_error("cannot write %s: %s", a->out, strerror(errno));
			ret = CM_EXIT_ERROR;
		}
		if (ret != CM_EXIT_OK)
			unlink(a->out);
	}
out:
	cm_store_close(store);
	cm_keys_free(keys);
	return ret;
}

/* The verifier key of --data's audit log into OUT. */
static int
data_vkey(const char *data, char *out, size_t outlen)
{
	char origin[CM_AUDIT_ORIGIN_MAX + 1];
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_db *db;
	int ret;

	if ((ret = cm_cli_open(cm_cli_data_dir(data), NULL, false, &keys, &store)) != 0)
		return ret;
	ret = CM_EXIT_ERROR;
	if ((db = cm_store_db(store)) == NULL ||
	    cm_audit_origin(db, origin, sizeof(origin)) != CM_OK) {
		cm_cli_error("cannot read the audit log's origin");
		goto out;
	}
	cm_note_vkey(out, outlen, origin, CM_NOTE_ED25519, keys->k_audit_pk);
	ret = CM_EXIT_OK;
out:
	cm_store_close(store);
	cm_keys_free(keys);
	return ret;
}

static int
dsr_verify_package(struct dsr_args *a, int argc, char **argv)
{
	struct cm_export_check ec;
	char vkey[512], *text = NULL;
	size_t len;
	FILE *f;
	int ret;

	if (argc != 1)
		return CM_EXIT_USAGE;
	if (a->vkey == NULL) {
		if ((ret = data_vkey(a->data, vkey, sizeof(vkey))) != 0)
			return ret;
	} else if (strchr(a->vkey, '+') != NULL) {
		snprintf(vkey, sizeof(vkey), "%s", a->vkey);
	} else if ((text = cm_file_read(a->vkey, sizeof(vkey) - 1, &len)) != NULL) {
		/* A file holding the key, as GET /v1/audit/vkey gives it. */
		text[strcspn(text, "\r\n")] = '\0';
		snprintf(vkey, sizeof(vkey), "%s", text);
		free(text);
	} else {
		cm_cli_error("--vkey: neither a verifier key nor a file holding one: %s",
		    strerror(errno));
		return CM_EXIT_USAGE;
	}
	if ((f = fopen(argv[0], "r")) == NULL) {
		cm_cli_error("cannot open %s: %s", argv[0], strerror(errno));
		return CM_EXIT_ERROR;
	}
	ret = cm_export_verify(f, vkey, &ec);
	fclose(f);
	if (ret != 0) {
		cm_cli_error("%s: NOT VERIFIED: %s", argv[0], ec.ec_error);
		return CM_EXIT_ERROR;
	}
	printf("%s: verified: %zu sections match the manifest, signed by %s\n", argv[0],
	    ec.ec_sections, ec.ec_key_name);
	return CM_EXIT_OK;
}

static const struct dsr_sub {
	const char	*ds_name;
	int		(*ds_fn)(struct dsr_args *, int, char **);
} dsr_subs[] = {
	{ "export", dsr_export },
	{ "verify-package", dsr_verify_package },
};

int
cm_cmd_dsr_package(int argc, char **argv)
{
	struct dsr_args a;
	size_t i;
	int c, ret;

	memset(&a, 0, sizeof(a));
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cm_cli_usage("dsr", argc < 2);
		return argc < 2 ? CM_EXIT_USAGE : CM_EXIT_OK;
	}
	for (i = 0; i < CM_NELEM(dsr_subs); i++)
		if (strcmp(argv[1], dsr_subs[i].ds_name) == 0)
			break;
	if (i == CM_NELEM(dsr_subs)) {
		cm_cli_error("dsr: unknown subcommand '%s'", argv[1]);
		goto usage;
	}
	if (cm_cli_env_defaults(dsr_opts, dsr_set, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "o:", dsr_opts, NULL)) != -1) {
		if (c == 'h') {
			cm_cli_usage("dsr", false);
			return CM_EXIT_OK;
		}
		if (c == '?' || dsr_set(c, optarg, &a) != 0)
			goto usage;
	}
	ret = dsr_subs[i].ds_fn(&a, argc - 1 - optind, argv + 1 + optind);
	if (ret != CM_EXIT_USAGE)
		return ret;
usage:
	cm_cli_usage("dsr", true);
	return CM_EXIT_USAGE;
}
