/* SPDX-License-Identifier: ISC */
/*
 * consentd serve: loads the keys and the policy, opens the store (applying
 * pending migrations), records the policy's new notice versions, makes the
 * spool directory DATA/tmp, starts the HTTP server and waits for SIGTERM or
 * SIGINT, then drains and closes everything (the spool directory, empty by
 * then, included). Everything that can be wrong with the configuration is
 * checked before the store is opened for writing; the policy's versions
 * are checked against the notices already served before any is recorded.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "consentd/api.h"
#include "consentd/app.h"
#include "consentd/audit.h"
#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/metrics.h"
#include "consentd/notice.h"
#include "consentd/outbox.h"
#include "consentd/par.h"
#include "consentd/shopper.h"
#include "consentd/policy.h"
#include "consentd/retention.h"
#include "consentd/store.h"
#include "consentd/upgrade.h"
#include "consentd/util.h"
#include "consentd/worker.h"

struct serve_args {
	const char		*data;
	const char		*policy;
	const char		*migrations;
	const char		*web;
	const char		*public_url;
	const char		*tls_cert, *tls_key;	/* both or neither */
	char			 host[256];
	int			 port;
	struct cm_server_opts	 http;
	int			 cache_mb;
	enum cm_log_level	 level;
	unsigned		 shutdown_delay;	/* seconds, listener open after SIGTERM */
	int			 retention_interval;	/* seconds; 0: no sweeps */
};

enum {
	OPT_DATA = 'd', OPT_LISTEN = 'l', OPT_POLICY = 'p', OPT_HELP = 'h',
	OPT_THREADS = 256, OPT_MAX_BODY, OPT_MAX_HEADER, OPT_MAX_CONNS,
	OPT_MAX_CONNS_IP, OPT_IDLE, OPT_DRAIN, OPT_CACHE, OPT_ACCESS_LOG,
	OPT_LOG_LEVEL, OPT_MIGRATIONS, OPT_MAX_URI, OPT_HEADER_TIMEOUT,
	OPT_REQUEST_TIMEOUT, OPT_MIN_RATE, OPT_WEB, OPT_PUBLIC_URL,
	OPT_SHUTDOWN_DELAY,
	OPT_RETENTION_INTERVAL
};

/* TLS, and the rate limits: OPT_RATE + enum cm_rate_budget. */
enum { OPT_TLS_CERT = 512, OPT_TLS_KEY, OPT_RATE };

/* Parses "HOST:PORT", "[V6]:PORT" or ":PORT". */
static int
parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon, *h = s, *hend;
	int64_t p;

	if ((colon = strrchr(s, ':')) == NULL)
		return -1;
	hend = colon;
	if (*h == '[') {
		if (colon == s || colon[-1] != ']')
			return -1;
		h++;
		hend = colon - 1;
	}
	if ((size_t)(hend - h) >= hostlen)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	if (cm_parse_i64(colon + 1, 0, 65535, &p) != 0)
		return -1;
	*port = (int)p;
	return 0;
}

static int
parse_uint(const char *arg, int64_t min, int64_t max, int64_t *out)
{
	return cm_parse_i64(arg, min, max, out) == 0 ? 0 : -1;
}

#define ARG(m)	offsetof(struct serve_args, m)

/* The numeric options: bounds, and where the value goes (as which type). */
static const struct {
	int	 opt;
	int64_t	 min, max;
	size_t	 off;
	char	 kind;		/* 'u' unsigned, 'z' size_t, 'i' int */
} numeric[] = {
	{ OPT_THREADS, 1, 256, ARG(http.so_threads), 'u' },
	{ OPT_MAX_BODY, 1024, INT32_MAX, ARG(http.so_max_body), 'z' },
	{ OPT_MAX_HEADER, 4096, 1024 * 1024, ARG(http.so_max_header), 'z' },
	{ OPT_MAX_URI, 256, 1024 * 1024, ARG(http.so_max_uri), 'z' },
	{ OPT_MAX_CONNS, 1, 65536, ARG(http.so_max_conns), 'u' },
	{ OPT_MAX_CONNS_IP, 1, 65536, ARG(http.so_max_conns_per_ip), 'u' },
	{ OPT_IDLE, 1, 3600, ARG(http.so_idle_timeout), 'u' },
	{ OPT_HEADER_TIMEOUT, 1, 3600, ARG(http.so_header_timeout), 'u' },
	{ OPT_REQUEST_TIMEOUT, 1, 86400, ARG(http.so_request_timeout), 'u' },
	{ OPT_MIN_RATE, 1, 1024 * 1024 * 1024, ARG(http.so_min_rate), 'u' },
	{ OPT_DRAIN, 0, 3600, ARG(http.so_drain_timeout), 'u' },
	{ OPT_CACHE, 1, 65536, ARG(cache_mb), 'i' },
	{ OPT_SHUTDOWN_DELAY, 0, 3600, ARG(shutdown_delay), 'u' },
	{ OPT_RETENTION_INTERVAL, 0, 7 * 86400, ARG(retention_interval), 'i' },
};

static int
serve_set(int val, const char *arg, void *ctx)
{
	struct serve_args *a = ctx;
	char *p;
	int64_t n;
	size_t i;

	switch (val) {
	case OPT_DATA:
		a->data = arg;
		return 0;
	case OPT_POLICY:
		a->policy = arg;
		return 0;
	case OPT_MIGRATIONS:
		a->migrations = arg;
		return 0;
	case OPT_WEB:
		a->web = arg;
		return 0;
	case OPT_PUBLIC_URL:
		if (cm_public_url_valid(arg) != 0) {
			cm_cli_error("--public-url: expected http://HOST[:PORT][/PATH] or "
			    "https://…, without query or fragment, got '%s'", arg);
			return CM_EXIT_USAGE;
		}
		a->public_url = arg;
		return 0;
	case OPT_TLS_CERT:
		a->tls_cert = arg;
		return 0;
	case OPT_TLS_KEY:
		a->tls_key = arg;
		return 0;
	case OPT_LISTEN:
		if (parse_listen(arg, a->host, sizeof(a->host), &a->port) != 0) {
			cm_cli_error("--listen: expected HOST:PORT, got '%s'", arg);
			return CM_EXIT_USAGE;
		}
		return 0;
	case OPT_ACCESS_LOG:
		if (strcmp(arg, "on") == 0)
			a->http.so_access_log = true;
		else if (strcmp(arg, "off") == 0)
			a->http.so_access_log = false;
		else
			goto bad;
		return 0;
	case OPT_LOG_LEVEL:
		if (strcmp(arg, "debug") == 0)
			a->level = CM_LOG_DEBUG;
		else if (strcmp(arg, "info") == 0)
			a->level = CM_LOG_INFO;
		else if (strcmp(arg, "warn") == 0)
			a->level = CM_LOG_WARN;
		else if (strcmp(arg, "error") == 0)
			a->level = CM_LOG_ERROR;
		else
			goto bad;
		return 0;
	}
	if (val >= OPT_RATE && val < OPT_RATE + CM_RATE_NBUDGETS) {
		if (cm_rate_parse(arg, &a->http.so_rate[val - OPT_RATE]) != 0) {
			cm_cli_error("--rate-%s: expected COUNT/SECONDS (e.g. 10/60) or 0 "
			    "for no limit, got '%s'", cm_rate_name(val - OPT_RATE), arg);
			return CM_EXIT_USAGE;
		}
		return 0;
	}
	for (i = 0; i < CM_NELEM(numeric); i++) {
		if (numeric[i].opt != val)
			continue;
		if (parse_uint(arg, numeric[i].min, numeric[i].max, &n) != 0)
			goto bad;
		p = (char *)a + numeric[i].off;
		if (numeric[i].kind == 'z')
			*(size_t *)(void *)p = (size_t)n;
		else if (numeric[i].kind == 'i')
			*(int *)(void *)p = (int)n;
		else
			*(unsigned *)(void *)p = (unsigned)n;
		return 0;
	}
	return CM_EXIT_USAGE;
bad:
	cm_cli_error("invalid value '%s' (see 'consentd serve --help')", arg);
	return CM_EXIT_USAGE;
}

/*
 * Parses the command line (after the environment's defaults) into A.
 * Returns -1 to go on, or the exit code (help, or a usage error).
 */
static int
serve_args(int argc, char **argv, struct serve_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, OPT_DATA },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "max-body-bytes", required_argument, NULL, OPT_MAX_BODY },
		{ "max-header-bytes", required_argument, NULL, OPT_MAX_HEADER },
		{ "max-uri-bytes", required_argument, NULL, OPT_MAX_URI },
		{ "max-connections", required_argument, NULL, OPT_MAX_CONNS },
		{ "max-connections-per-ip", required_argument, NULL, OPT_MAX_CONNS_IP },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE },
		{ "header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT },
		{ "request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT },
		{ "min-rate", required_argument, NULL, OPT_MIN_RATE },
		{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
		{ "cache-mb", required_argument, NULL, OPT_CACHE },
		{ "access-log", required_argument, NULL, OPT_ACCESS_LOG },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "migrations", required_argument, NULL, OPT_MIGRATIONS },
		{ "web", required_argument, NULL, OPT_WEB },
		{ "public-url", required_argument, NULL, OPT_PUBLIC_URL },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "rate-token", required_argument, NULL, OPT_RATE + CM_RATE_TOKEN },
		{ "rate-link", required_argument, NULL, OPT_RATE + CM_RATE_LINK },
		{ "rate-link-address", required_argument, NULL, OPT_RATE + CM_RATE_LINK_ADDR },
		{ "rate-unsubscribe", required_argument, NULL, OPT_RATE + CM_RATE_UNSUB },
		{ "rate-unsubscribe-address", required_argument, NULL,
		    OPT_RATE + CM_RATE_UNSUB_ADDR },
		{ "rate-verify", required_argument, NULL, OPT_RATE + CM_RATE_VERIFY },
		{ "rate-verify-address", required_argument, NULL,
		    OPT_RATE + CM_RATE_VERIFY_ADDR },
		{ "rate-auth-failures", required_argument, NULL, OPT_RATE + CM_RATE_AUTH_FAIL },
		{ "shutdown-delay", required_argument, NULL, OPT_SHUTDOWN_DELAY },
		{ "retention-interval", required_argument, NULL, OPT_RETENTION_INTERVAL },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(a, 0, sizeof(*a));
	cm_server_opts_default(&a->http);
	strcpy(a->host, "127.0.0.1");
	a->port = 8080;
	a->cache_mb = 64;
	a->retention_interval = 3600;
	a->level = CM_LOG_INFO;
	a->policy = "./policy";
	a->web = "./web";
	if (cm_cli_env_defaults(opts, serve_set, a) != 0)
		return CM_EXIT_USAGE;
	optind = 1;
	/* getopt's own messages are text: ours are the log's JSON lines. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			cm_cli_usage("serve", false);
			return CM_EXIT_OK;
		}
		if (c == '?') {
			cm_cli_error("unknown option, or one without its value: '%s'",
			    argv[optind - 1]);
			cm_cli_usage("serve", true);
			return CM_EXIT_USAGE;
		}
		if (serve_set(c, optarg, a) != 0) {
			cm_cli_usage("serve", true);
			return CM_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cm_cli_error("unexpected argument '%s'", argv[optind]);
		cm_cli_usage("serve", true);
		return CM_EXIT_USAGE;
	}
	if (a->http.so_request_timeout < a->http.so_header_timeout) {
		cm_cli_error("--request-timeout (%u) must be at least --header-timeout (%u): "
		    "a request's head is part of it", a->http.so_request_timeout,
		    a->http.so_header_timeout);
		return CM_EXIT_USAGE;
	}
	if ((a->tls_cert == NULL) != (a->tls_key == NULL)) {
		cm_cli_error("%s: needed with %s (TLS takes both, a certificate and its "
		    "key)", a->tls_cert ? "--tls-key" : "--tls-cert",
		    a->tls_cert ? "--tls-cert" : "--tls-key");
		return CM_EXIT_USAGE;
	}
	a->data = cm_cli_data_dir(a->data);
	a->http.so_host = a->host[0] ? a->host : NULL;
	a->http.so_port = a->port;
	return -1;
}

/*
 * Opens what the server serves into APP: the store with A's keys (wrong
 * key: CM_EXIT_KEY), its audit log checked against its latest checkpoint,
 * the policy against the notices already served, the data upgraded, the
 * spool directory made. 0, or the exit code, with the reason reported.
 */
static int
serve_open(const struct serve_args *a, struct cm_app *app, struct cm_keys *keys,
    const struct cm_migration_set *set)
{
	struct cm_upgrade_report upgraded;
	struct cm_store_opts sopts;
	struct cm_db *db;
	char err[1024];
	size_t recorded;
	cm_result r;

	cm_store_opts_default(&sopts);
	sopts.so_cache_mb = a->cache_mb;
	sopts.so_conninfo = cm_cli_store();
	r = cm_store_open(a->data, keys, set, &sopts, &app->app_store, err, sizeof(err));
	if (r == CM_AUTH) {
		cm_cli_error("%s: wrong key, or not a consentd database; check that "
		    "%s/master.key is the key this database was created with (nothing "
		    "was changed)", a->data, a->data);
		return CM_EXIT_KEY;
	}
	if (r != CM_OK) {
		cm_cli_error(r == CM_CONFLICT ? "%s (nothing was changed)" : "%s", err);
		return CM_EXIT_ERROR;
	}
	db = cm_store_db(app->app_store);
	if (db == NULL || cm_audit_origin(db, app->app_origin, sizeof(app->app_origin)) != CM_OK) {
		cm_cli_error("%s: the audit log has no origin: was this store made by "
		    "'consentd init'?", a->data);
		return CM_EXIT_ERROR;
	}
	if ((r = cm_audit_check_latest(db)) != CM_OK) {
		cm_cli_error(r == CM_CONFLICT ? "the audit log's stored tree does not "
		    "match its latest signed checkpoint: it was altered. Run 'consentd "
		    "audit verify --data %s' and restore from a backup" :
		    "cannot read the audit log (%s)", r == CM_CONFLICT ? a->data :
		    cm_result_str(r));
		return CM_EXIT_ERROR;
	}
	/*
	 * The policy against the notices already served, before anything is
	 * served: a lowered version, or a notice changed under its version, is
	 * refused and nothing is written; new versions are recorded.
	 */
	if ((r = cm_notice_sync(db, app->app_policy, &recorded, err, sizeof(err))) != CM_OK) {
		if (r == CM_CONFLICT)
			cm_cli_error("invalid policy: %s\nfix the policy and start again "
			    "(nothing was changed)", err);
		else
			cm_cli_error("cannot record the policy's notice versions: %s "
			    "(nothing was changed)", err);
		return CM_EXIT_ERROR;
	}
	if (recorded > 0)
		cm_log(CM_LOG_INFO, "policy_versions_recorded", ",\"count\":%zu", recorded);
	if ((r = cm_upgrade_run(db, keys, &upgraded)) != CM_OK) {
		cm_cli_error("cannot upgrade the stored data: %s (nothing was changed)",
		    cm_result_str(r));
		return CM_EXIT_ERROR;
	}
	/*
	 * An erasure a crash kept out of the erasure ledger goes in now, so a
	 * later restore erases its subject again. A ledger that does not
	 * verify is reported, not fatal: serving is not what it endangers.
	 */
	if ((r = cm_store_erasures_sync(db, &recorded, err, sizeof(err))) != CM_OK) {
		char msg[1200];

		cm_log(CM_LOG_ERROR, "erasure_ledger_error", ",\"msg\":\"%s\"",
		    cm_json_escape(msg, sizeof(msg), err));
	} else if (recorded > 0) {
		cm_log(CM_LOG_WARN, "erasure_ledger_recovered", ",\"count\":%zu", recorded);
	}
	/* A "no" a crash kept out of the opt-out ledger: see serve_run(). */
	/* Long NDJSON answers wait in files under DATA/tmp until they are sent. */
	if (cm_app_spool_init(app, a->data, err, sizeof(err)) != 0) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	return 0;
}

/*
 * SIGHUP: reads the TLS certificate and key again. New connections get
 * the new pair; open ones, and the listener, are untouched. A pair that
 * does not do is logged and the old one kept.
 */
static void
serve_reload(struct cm_tls *tls)
{
	char err[1024], esc[1200], fpr[65];

	if (tls == NULL) {
		cm_log(CM_LOG_INFO, "sighup", ",\"reloaded\":[]");
		return;
	}
	if (cm_tls_reload(tls, err, sizeof(err)) != 0) {
		cm_log(CM_LOG_ERROR, "tls_reload_failed", ",\"msg\":\"%s; the certificate "
		    "served before is kept\"", cm_json_escape(esc, sizeof(esc), err));
		return;
	}
	cm_tls_fingerprint(tls, fpr);
	cm_log(CM_LOG_INFO, "tls_reloaded", ",\"sha256\":\"%s\"", fpr);
}

/* Waits for SIGTERM or SIGINT (the one returned), reloading on SIGHUP. */
static int
serve_wait(const sigset_t *sigs, struct cm_tls *tls)
{
	int sig;

	for (;;) {
		if (sigwait(sigs, &sig) != 0)
			return SIGTERM;
		if (sig == SIGHUP)
			serve_reload(tls);
		else if (sig == SIGTERM || sig == SIGINT)
			return sig;
	}
}

/*
 * The --shutdown-delay: SEC seconds with the listener open and every route
 * served, /readyz answering 503, so a load balancer takes us out before
 * connections are refused. A second SIGTERM or SIGINT ends it at once.
 */
static void
serve_delay(const sigset_t *sigs, unsigned sec)
{
	struct timespec ts;
	int64_t end = cm_time_mono_us() + (int64_t)sec * 1000000, left;
	int sig;

	while ((left = end - cm_time_mono_us()) > 0) {
		ts.tv_sec = (time_t)(left / 1000000);
		ts.tv_nsec = (long)(left % 1000000) * 1000;
		if ((sig = sigtimedwait(sigs, NULL, &ts)) == SIGHUP)
			continue;
		if (sig != -1 || (errno != EAGAIN && errno != EINTR))
			break;
	}
}

/*
 * Starts the helper threads, the checkpointer and the server, and waits
 * for SIGTERM or SIGINT; then drains and stops them. The exit code.
 */
static int
serve_run(struct serve_args *a, struct cm_app *app)
{
	struct cm_checkpointer *cp = NULL;
	struct cm_outbox_worker *ob = NULL;
	struct cm_retention_worker *rw = NULL;
	struct cm_worker *os = NULL;
	struct cm_outbox_opts oopts;
	struct cm_server *srv;
	sigset_t sigs;
	char err[1024], esc[1100];
	int sig, port, rc = CM_EXIT_ERROR;

	/* Signals are taken by sigwait() here, never by the worker threads. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	/* The unit's ExecReload sends SIGHUP: taken here, it never ends the server. */
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Every thread from here on inherits the blocked signals. As many
	 * batch helpers as worker threads beyond the first.
	 */
	if ((app->app_par = cm_par_start((a->http.so_threads ? a->http.so_threads :
	    cm_cpu_count()) - 1)) == NULL) {
		cm_cli_error("cannot start the helper threads");
		goto out;
	}
	if ((cp = cm_checkpointer_start(app->app_store, app->app_keys, app->app_origin,
	    1000)) == NULL) {
		cm_cli_error("cannot start the checkpoint thread");
		goto out;
	}
	/* The outbox's delivery thread (settings: CONSENTD_OUTBOX_*). */
	if (cm_outbox_opts_env(&oopts, a->data, err, sizeof(err)) != 0) {
		cm_cli_error("%s", err);
		goto out;
	}
	if ((ob = cm_outbox_start(app->app_store, app->app_keys, app->app_policy,
	    &oopts)) == NULL) {
		cm_cli_error("cannot start the outbox delivery thread");
		goto out;
	}
	/* The retention sweep: soon after start-up, then every interval. */
	if (a->retention_interval > 0 && (rw = cm_retention_start(app->app_store,
	    app->app_keys, app->app_policy, (unsigned)a->retention_interval)) == NULL) {
		cm_cli_error("cannot start the retention thread");
		goto out;
	}
	/* The opt-out ledger's sync, while the server already answers. */
	if ((os = cm_cli_optouts_sync_start(app->app_store)) == NULL) {
		cm_cli_error("cannot start the opt-out ledger thread");
		goto out;
	}
	srv = cm_server_start(&a->http, app, cm_api_routes, cm_api_nroutes, &port,
	    err, sizeof(err));
	if (srv == NULL) {
		cm_cli_error("%s", err);
		goto out;
	}
	atomic_store(&app->app_port, port);
	cm_log(CM_LOG_INFO, "listening", ",\"host\":\"%s\",\"port\":%d,\"policy\":\"%s\""
	    ",\"tls\":%s", cm_json_escape(esc, sizeof(esc), a->host), port,
	    cm_json_escape(err, sizeof(err), app->app_policy->pol_file),
	    a->http.so_tls != NULL ? "true" : "false");
	sig = serve_wait(&sigs, a->http.so_tls);
	/* Not ready from now on: /readyz answers 503 until the listener closes. */
	atomic_store(&app->app_draining, true);
	cm_log(CM_LOG_INFO, "shutting_down", ",\"signal\":\"%s\",\"delay_s\":%u",
	    sig == SIGTERM ? "SIGTERM" : "SIGINT", a->shutdown_delay);
	serve_delay(&sigs, a->shutdown_delay);
	cm_server_stop(srv);
	/* A running import stops between two pieces of its file. */
	cm_api_imports_stop();
	rc = CM_EXIT_OK;
out:
	cm_worker_stop(os);
	cm_retention_stop(rw);
	cm_outbox_stop(ob);
	cm_checkpointer_stop(cp);
	cm_par_stop(app->app_par);
	app->app_par = NULL;
	if (rc == CM_EXIT_OK)
		cm_log(CM_LOG_INFO, "stopped", NULL);
	return rc;
}

int
cm_cmd_serve(int argc, char **argv)
{
	struct serve_args a;
	struct cm_policy *policy = NULL;
	struct cm_keys *keys = NULL;
	struct cm_migration_set set;
	struct cm_app app;
	char err[1024];
	int rc;

	memset(&app, 0, sizeof(app));
	memset(&set, 0, sizeof(set));
	/* The server's stderr is its log: every line JSON, failures included. */
	cm_cli_json_errors();
	cm_metrics_process_init(CM_VERSION);
	if ((rc = serve_args(argc, argv, &a)) >= 0)
		return rc;
	cm_log_set_level(a.level);
	umask(077);
	if (cm_crypto_init() != 0) {
		cm_cli_error("cannot initialise libsodium");
		return CM_EXIT_ERROR;
	}
	/* The policy first: a bad one must stop us before the store is touched. */
	if (cm_policy_load(a.policy, &policy, err, sizeof(err)) != CM_OK) {
		cm_cli_error("invalid policy: %s\nfix the policy and start again "
		    "(nothing was changed)", err);
		return CM_EXIT_ERROR;
	}
	rc = CM_EXIT_ERROR;
	if (cm_keys_load(a.data, &keys, err, sizeof(err)) != CM_OK ||
	    cm_migrations_load(a.migrations, &set, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		goto out;
	}
	/* The certificate and key: read and checked before the store is opened. */
	if (a.tls_cert != NULL && !cm_tls_supported()) {
		cm_cli_error("--tls-cert: this libmicrohttpd was built without TLS");
		goto out;
	}
	if (a.tls_cert != NULL &&
	    (a.http.so_tls = cm_tls_load(a.tls_cert, a.tls_key, err, sizeof(err))) == NULL) {
		cm_cli_error("%s (nothing was changed)", err);
		goto out;
	}
	app.app_policy = policy;
	app.app_keys = keys;
	app.app_web = a.web;
	if (a.public_url != NULL) {
		snprintf(app.app_public_url, sizeof(app.app_public_url), "%s", a.public_url);
		while (app.app_public_url[0] != '\0' &&
		    app.app_public_url[strlen(app.app_public_url) - 1] == '/')
			app.app_public_url[strlen(app.app_public_url) - 1] = '\0';
		app.app_https = strncmp(app.app_public_url, "https://", 8) == 0;
	}
	/* Served over TLS: the cookies go over TLS only, whatever the links say. */
	if (a.http.so_tls != NULL)
		app.app_https = true;
	if ((rc = serve_open(&a, &app, keys, &set)) == 0)
		rc = serve_run(&a, &app);
out:
	cm_app_spool_fini(&app);
	cm_store_close(app.app_store);
	cm_migrations_free(&set);
	cm_keys_free(keys);
	cm_policy_free(policy);
	cm_tls_free(a.http.so_tls);
	return rc;
}
