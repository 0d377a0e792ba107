/* SPDX-License-Identifier: ISC */
/*
 * consentd import: consents, preferences and suppressions from a
 * provider's CSV or NDJSON export, through the domain code the API uses
 * (src/core/import.c). On a terminal it draws a progress bar (rows, rate,
 * ETA) at most ten times a second; otherwise it logs a JSON progress line
 * every --progress-interval seconds. It ends with a JSON summary on
 * stdout. Refused rows go to --rejects FILE, one JSON object a line with
 * the line number, the reason and the record as read: the operator's own
 * data, kept so it can be fixed and imported again, in a file only its
 * owner can read (0600). Without --rejects only line numbers and reasons
 * are shown, and only the first few.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consentd/cli.h"
#include "consentd/core.h"
#include "consentd/crypto.h"
#include "consentd/import.h"
#include "consentd/policy.h"
#include "consentd/store.h"
#include "consentd/util.h"

#define IMPORT_COLUMNS_MAX	32
#define IMPORT_SHOWN_REJECTS	20
#define IMPORT_READ		(1024 * 1024)

struct import_args {
	const char	*data;
	const char	*policy;
	const char	*file;
	const char	*format;
	const char	*map_file;
	const char	*mapping;
	const char	*kind;
	const char	*purpose;
	const char	*channel;
	const char	*rejects;
	const char	*columns[IMPORT_COLUMNS_MAX + 1];
	size_t		 ncolumns;
	int64_t		 batch;
	int64_t		 batch_ms;
	int64_t		 interval;
	bool		 dry_run;
};

/* The state of a run, for the callbacks. */
struct import_run {
	FILE		*ir_rejects;
	uint64_t	 ir_shown;
	bool		 ir_tty;
	int64_t		 ir_start;	/* monotonic, microseconds */
	int64_t		 ir_last;	/* last bar or log line */
	int64_t		 ir_interval;	/* between log lines */
	uint64_t	 ir_total;	/* file size, 0: unknown */
};

enum { OPT_DATA = 256, OPT_POLICY, OPT_FORMAT, OPT_MAP, OPT_MAPPING, OPT_COLUMN, OPT_KIND,
	OPT_PURPOSE, OPT_CHANNEL, OPT_REJECTS, OPT_DRY_RUN, OPT_BATCH, OPT_INTERVAL, OPT_HELP, OPT_BATCH_MS };

static const struct option import_opts[] = {
	{ "data", required_argument, NULL, OPT_DATA },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "map", required_argument, NULL, OPT_MAP },
	{ "mapping", required_argument, NULL, OPT_MAPPING },
	{ "column", required_argument, NULL, OPT_COLUMN },
	{ "kind", required_argument, NULL, OPT_KIND },
	{ "purpose", required_argument, NULL, OPT_PURPOSE },
	{ "channel", required_argument, NULL, OPT_CHANNEL },
	{ "rejects", required_argument, NULL, OPT_REJECTS },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "batch-ms", required_argument, NULL, OPT_BATCH_MS },
	{ "progress-interval", required_argument, NULL, OPT_INTERVAL },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

/* --data and --policy also come from the environment. */
static int
import_env(int val, const char *arg, void *ctx)
{
	struct import_args *a = ctx;

	if (val == OPT_DATA)
		a->data = arg;
	else if (val == OPT_POLICY)
		a->policy = arg;
	return 0;
}

static int
import_set(int val, const char *arg, struct import_args *a)
{
	switch (val) {
	case OPT_DATA:
	case OPT_POLICY:
		return import_env(val, arg, a);
	case OPT_FORMAT:
		if (strcmp(arg, "csv") != 0 && strcmp(arg, "ndjson") != 0)
			return cm_cli_error("--format: csv or ndjson"), CM_EXIT_USAGE;
		a->format = arg;
		return 0;
	case OPT_MAP:
		a->map_file = arg;
		return 0;
	case OPT_MAPPING:
		a->mapping = arg;
		return 0;
	case OPT_COLUMN:
		if (a->ncolumns == IMPORT_COLUMNS_MAX)
			return cm_cli_error("--column: at most %d", IMPORT_COLUMNS_MAX),
			    CM_EXIT_USAGE;
		a->columns[a->ncolumns++] = arg;
		return 0;
	case OPT_KIND:
		if (strcmp(arg, "consents") != 0 && strcmp(arg, "suppressions") != 0 &&
		    strcmp(arg, "preferences") != 0)
			return cm_cli_error("--kind: consents, suppressions or preferences"),
			    CM_EXIT_USAGE;
		a->kind = arg;
		return 0;
	case OPT_PURPOSE:
		a->purpose = arg;
		return 0;
	case OPT_CHANNEL:
		a->channel = arg;
		return 0;
	case OPT_REJECTS:
		a->rejects = arg;
		return 0;
	case OPT_DRY_RUN:
		a->dry_run = true;
		return 0;
	case OPT_BATCH:
		if (cm_parse_i64(arg, 1, 100000, &a->batch) != 0)
			return cm_cli_error("--batch: rows from 1 to 100000"), CM_EXIT_USAGE;
		return 0;
	case OPT_BATCH_MS:
		if (cm_parse_i64(arg, 1, 60000, &a->batch_ms) != 0)
			return cm_cli_error("--batch-ms: milliseconds from 1 to 60000"),
			    CM_EXIT_USAGE;
		return 0;
	case OPT_INTERVAL:
		if (cm_parse_i64(arg, 1, 3600, &a->interval) != 0)
			return cm_cli_error("--progress-interval: seconds from 1 to 3600"),
			    CM_EXIT_USAGE;
		return 0;
	}
	return CM_EXIT_USAGE;
}

/* ---- progress ------------------------------------------------------------- */

static void
progress_bar(struct import_run *r, const struct cm_import_stats *st, double secs, bool done)
{
	char bar[31], eta[32] = "";
	double rate = secs > 0 ? (double)st->is_rows / secs : 0, frac = 0;
	size_t i, fill;

	if (r->ir_total > 0)
		frac = (double)st->is_bytes / (double)r->ir_total;
	if (frac > 1 || done)
		frac = 1;
	fill = (size_t)(frac * 30);
	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
	bar[30] = '\0';
	if (r->ir_total > 0 && frac > 0 && !done)
		snprintf(eta, sizeof(eta), "  ETA %.0fs", secs / frac - secs);
	fprintf(stderr, "\r[%s] %llu rows  %.0f rows/s  %llu rejected%s\033[K%s", bar,
	    (unsigned long long)st->is_rows, rate, (unsigned long long)st->is_rejected, eta,
	    done ? "\n" : "");
	fflush(stderr);
}

static void
import_progress(void *arg, const struct cm_import_stats *st)
{
	struct import_run *r = arg;
	int64_t now = cm_time_mono_us();
	double secs = (double)(now - r->ir_start) / 1e6;

	if (r->ir_tty) {
		/* At most ten redraws a second. */
		if (now - r->ir_last < 100000)
			return;
		r->ir_last = now;
		progress_bar(r, st, secs, false);
		return;
	}
	if (now - r->ir_last < r->ir_interval)
		return;
	r->ir_last = now;
	cm_log(CM_LOG_INFO, "import_progress", ",\"rows\":%llu,\"imported\":%llu,"
	    "\"unchanged\":%llu,\"rejected\":%llu,\"bytes\":%llu,\"total_bytes\":%llu,"
	    "\"rows_per_second\":%.0f", (unsigned long long)st->is_rows,
	    (unsigned long long)st->is_imported, (unsigned long long)st->is_unchanged,
	    (unsigned long long)st->is_rejected, (unsigned long long)st->is_bytes,
	    (unsigned long long)r->ir_total, secs > 0 ? (double)st->is_rows / secs : 0.0);
}

static void
import_reject(void *arg, uint64_t line, const char *reason, const char *raw, size_t len)
{
	struct import_run *r = arg;
	json_t *o;

	if (r->ir_rejects != NULL) {
		o = json_pack("{s:I, s:s, s:s%}", "line", (json_int_t)line, "reason", reason,
		    "record", raw ? raw : "", raw ? len : 0);
		if (o == NULL)	/* not UTF-8: the reason alone */
			o = json_pack("{s:I, s:s}", "line", (json_int_t)line, "reason", reason);
		json_dumpf(o, r->ir_rejects, JSON_COMPACT | JSON_ENSURE_ASCII);
		fputc('\n', r->ir_rejects);
		json_decref(o);
		return;
	}
	if (r->ir_shown++ < IMPORT_SHOWN_REJECTS) {
		if (r->ir_tty)
			fputs("\r\033[K", stderr);
		fprintf(stderr, "consentd: line %llu: %s\n", (unsigned long long)line, reason);
	}
}

/* ---- the run -------------------------------------------------------------- */

/* The mapping the arguments name, checked against POL; NULL after a message. */
static struct cm_import_map *
import_mapping(const struct import_args *a, const struct cm_policy *pol)
{
	struct cm_import_map *m = NULL;
	json_error_t je;
	json_t *doc = NULL;
	char why[256];
	const char *kind = NULL;

	if (a->mapping != NULL) {
		if ((doc = cm_import_map_builtin(a->mapping)) == NULL)
			return cm_cli_error("--mapping: no such mapping (mailchimp, klaviyo, "
			    "braze)"), NULL;
	} else if (a->map_file != NULL) {
		if ((doc = json_load_file(a->map_file, JSON_REJECT_DUPLICATES, &je)) == NULL)
			return cm_cli_error("%s:%d: %s", a->map_file, je.line, je.text), NULL;
	} else {
		if (a->kind != NULL)
			kind = strcmp(a->kind, "consents") == 0 ? "consent" :
			    strcmp(a->kind, "suppressions") == 0 ? "suppression" : "preference";
		if ((doc = cm_import_map_adhoc(kind, a->columns, why, sizeof(why))) == NULL)
			return cm_cli_error("%s", why), NULL;
	}
	cm_import_map_defaults(doc, a->purpose, a->channel);
	if ((m = cm_import_map_new(doc, pol, why, sizeof(why))) == NULL)
		cm_cli_error("mapping %s: %s", a->mapping ? a->mapping : a->map_file ?
		    a->map_file : "--column", why);
	json_decref(doc);
	return m;
}

static void
import_summary(const struct cm_import_stats *st, double secs, bool dry_run)
{
	printf("{\"rows\":%llu,\"imported\":%llu,\"unchanged\":%llu,\"rejected\":%llu,"
	    "\"skipped\":%llu,\"seconds\":%.3f,\"rows_per_second\":%.0f,\"dry_run\":%s}\n",
	    (unsigned long long)st->is_rows, (unsigned long long)st->is_imported,
	    (unsigned long long)st->is_unchanged, (unsigned long long)st->is_rejected,
	    (unsigned long long)st->is_skipped, secs, secs > 0 ? (double)st->is_rows / secs :
	    0.0, dry_run ? "true" : "false");
}

/* Feeds IN to a new import on CX; prints the summary. */
static int
import_feed(const struct cm_ctx *cx, const struct import_args *a,
    struct cm_import_map *map, FILE *in, struct import_run *r)
{
	struct cm_import_opts o;
	struct cm_import_stats st;
	struct cm_import *im;
	struct cm_why w;
	const char *base;
	char *buf;
	size_t n;
	cm_result rc = CM_OK;

	memset(&o, 0, sizeof(o));
	memset(&w, 0, sizeof(w));
	base = strrchr(a->file, '/') ? strrchr(a->file, '/') + 1 : a->file;
	o.io_format = a->format && strcmp(a->format, "ndjson") == 0 ? CM_IMPORT_NDJSON :
	    CM_IMPORT_CSV;
	o.io_map = map;
	o.io_file = strcmp(a->file, "-") == 0 ? NULL : base;
	o.io_dry_run = a->dry_run;
	o.io_batch = (unsigned)a->batch;
	o.io_batch_ms = (unsigned)a->batch_ms;
	o.io_reject = import_reject;
	o.io_progress = import_progress;
	o.io_arg = r;
	im = cm_import_new(cx, &o);
	buf = cm_malloc(IMPORT_READ);
	while (rc == CM_OK && (n = fread(buf, 1, IMPORT_READ, in)) > 0)
		rc = cm_import_feed(im, buf, n, &w);
	if (rc == CM_OK && ferror(in)) {
		cm_cli_error("%s: read error", a->file);
		rc = CM_IOERR;
	}
	if (rc == CM_OK)
		rc = cm_import_finish(im, &st, &w);
	cm_import_free(im);
	cm_wipe(buf, IMPORT_READ);
	free(buf);
	if (rc != CM_OK) {
		if (r->ir_tty)
			fputs("\n", stderr);
		cm_cli_error("%s: %s", a->file, w.w_code ? w.w_msg : cm_result_str(rc));
		return CM_EXIT_ERROR;
	}
	if (r->ir_tty)
		progress_bar(r, &st, (double)(cm_time_mono_us() - r->ir_start) / 1e6, true);
	import_summary(&st, (double)(cm_time_mono_us() - r->ir_start) / 1e6, a->dry_run);
	return CM_EXIT_OK;
}

/* Opens the input and the rejects file, then runs the import. */
static int
import_run(const struct cm_ctx *cx, const struct import_args *a,
    struct cm_import_map *map)
{
	struct import_run r;
	struct stat sb;
	FILE *in;
	int fd, ret;

	memset(&r, 0, sizeof(r));
	in = strcmp(a->file, "-") == 0 ? stdin : fopen(a->file, "r");
	if (in == NULL)
		return cm_cli_error("%s: %s", a->file, strerror(errno)), CM_EXIT_ERROR;
	if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode))
		r.ir_total = (uint64_t)sb.st_size;
	if (a->rejects != NULL) {
		if ((fd = open(a->rejects, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1 ||
		    (r.ir_rejects = fdopen(fd, "w")) == NULL) {
			cm_cli_error("%s: %s", a->rejects, strerror(errno));
			if (in != stdin)
				fclose(in);
			return CM_EXIT_ERROR;
		}
	}
	r.ir_tty = isatty(STDERR_FILENO) == 1;
	r.ir_start = r.ir_last = cm_time_mono_us();
	r.ir_interval = a->interval * 1000000;
	ret = import_feed(cx, a, map, in, &r);
	if (r.ir_rejects != NULL && fclose(r.ir_rejects) != 0 && ret == CM_EXIT_OK) {
		cm_cli_error("%s: %s", a->rejects, strerror(errno));
		ret = CM_EXIT_ERROR;
	}
	if (in != stdin)
		fclose(in);
	return ret;
}

/* The format from --format, else from the file's name (.ndjson, .jsonl). */
static void
import_guess_format(struct import_args *a)
{
	const char *dot = strrchr(a->file, '.');

	if (a->format == NULL)
		a->format = dot && (strcmp(dot, ".ndjson") == 0 || strcmp(dot, ".jsonl") == 0 ||
		    strcmp(dot, ".json") == 0) ? "ndjson" : "csv";
}

int
cm_cmd_import(int argc, char **argv)
{
	struct import_args a;
	struct cm_import_map *map = NULL;
	struct cm_keys *keys = NULL;
	struct cm_store *store = NULL;
	struct cm_policy *policy = NULL;
	struct cm_ctx cx;
	char err[256];
	int c, ret;

	memset(&a, 0, sizeof(a));
	a.policy = "./policy";
	a.interval = 5;
	if (cm_cli_env_defaults(import_opts, import_env, &a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", import_opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			cm_cli_usage("import", false);
			return CM_EXIT_OK;
		}
		if (c == '?' || import_set(c, optarg, &a) != 0)
			goto usage;
	}
	if (optind + 1 != argc || (a.map_file != NULL) + (a.mapping != NULL) +
	    (a.ncolumns > 0) != 1)
		goto usage;
	a.file = argv[optind];
	import_guess_format(&a);
	if (cm_policy_load(a.policy, &policy, err, sizeof(err)) != CM_OK) {
		cm_cli_error("invalid policy: %s", err);
		return CM_EXIT_ERROR;
	}
	if ((map = import_mapping(&a, policy)) == NULL) {
		cm_policy_free(policy);
		return CM_EXIT_USAGE;
	}
	if ((ret = cm_cli_open(cm_cli_data_dir(a.data), NULL, false, &keys, &store)) == 0) {
		cm_ctx_init(&cx, cm_store_db(store), keys, policy, "cli");
		if (cx.cx_db == NULL) {
			cm_cli_error("cannot open the store");
			ret = CM_EXIT_ERROR;
		} else {
			ret = import_run(&cx, &a, map);
		}
	}
	cm_store_close(store);
	cm_keys_free(keys);
	cm_import_map_free(map);
	cm_policy_free(policy);
	return ret;
usage:
	cm_cli_usage("import", true);
	return CM_EXIT_USAGE;
}
