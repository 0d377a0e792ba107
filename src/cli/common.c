/* SPDX-License-Identifier: ISC */
/*
 * What the subcommands share: the command table and its help texts,
 * environment defaults for long options, and opening a data directory
 * with messages that say what to do.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "consentd/cli.h"
#include "consentd/crypto.h"
#include "consentd/store.h"
#include "consentd/upgrade.h"
#include "consentd/util.h"

const struct cm_command cm_commands[] = {
	{ "init", cm_cmd_init, "create a data directory: keys and an encrypted store",
	  "usage: consentd init [--data DIR] [--store postgresql://...] [--origin NAME]\n"
	  "                     [--migrations DIR]\n"
	  "\n"
	  "Creates DIR (mode 0700) with master.key and audit.key (32 random bytes\n"
	  "each, mode 0600) and consentd.db, the SQLCipher database with every\n"
	  "migration applied. Refuses to touch a directory that already holds keys\n"
	  "or a database. DIR defaults to $CONSENTD_DATA, else ./var. NAME is the\n"
	  "audit log's origin, fixed for its life (default consentd/HOSTNAME).\n"
	  "\n"
	  "With --store (or CONSENTD_STORE), a libpq connection URI, the store is\n"
	  "made in that PostgreSQL database instead (it must hold no store yet),\n"
	  "and DIR/store names it: every later command given DIR uses it. Copy DIR\n"
	  "(keys and store file) to each node that serves the same store.\n" },
	{ "serve", cm_cmd_serve, "run the HTTP service",
	  "usage: consentd serve [--data DIR] [--store postgresql://...]\n"
	  "                      [--listen HOST:PORT] [--policy PATH]\n"
	  "                      [--threads N] [--max-body-bytes N]\n"
	  "                      [--max-header-bytes N] [--max-uri-bytes N]\n"
	  "                      [--max-connections N]\n"
	  "                      [--max-connections-per-ip N] [--idle-timeout SEC]\n"
	  "                      [--header-timeout SEC] [--request-timeout SEC]\n"
	  "                      [--min-rate BYTES] [--drain-timeout SEC]\n"
	  "                      [--cache-mb N] [--access-log on|off]\n"
	  "                      [--log-level LEVEL] [--migrations DIR]\n"
	  "                      [--web DIR] [--public-url URL]\n"
	  "                      [--tls-cert FILE --tls-key FILE]\n"
	  "                      [--rate-BUDGET COUNT/SECONDS]...\n"
	  "                      [--shutdown-delay SEC]\n"
	  "                      [--retention-interval SEC]\n"
	  "\n"
	  "Serves the API on HOST:PORT (default 127.0.0.1:8080; port 0 picks a\n"
	  "free port, reported in the 'listening' log line). PATH is a policy\n"
	  "file or a directory holding policy.json (default ./policy). Every flag\n"
	  "may also come from the environment: --max-body-bytes from\n"
	  "CONSENTD_MAX_BODY_BYTES, and so on; flags win. SIGTERM or SIGINT stops\n"
	  "accepting connections, finishes requests in flight and closes the store.\n"
	  "Logs are JSON lines on stderr.\n"
	  "--store names a PostgreSQL store (a libpq URI; multi-host with\n"
	  "target_session_attrs=read-write) in place of the one DIR names; DIR\n"
	  "still holds the keys. Every command takes --store.\n"
	  "From SIGTERM on, /readyz answers 503; --shutdown-delay SEC (default 0)\n"
	  "keeps the listener open and serving that long first, so that a load\n"
	  "balancer sees the 503 and stops sending before connections are refused.\n"
	  "\n"
	  "The preference centre's pages and assets come from --web DIR (default\n"
	  "./web): DIR/preferences.html at /preferences, DIR/static/NAME at\n"
	  "/static/NAME. --public-url URL (http or https, no query) is the base\n"
	  "of the preference-centre and unsubscribe links the API makes (default\n"
	  "http://127.0.0.1:PORT); when it is https, session cookies are Secure.\n"
	  "\n"
	  "Slow clients are cut (their connection closed) when they miss a deadline:\n"
	  "  --header-timeout SEC   a request's head must arrive within SEC of the\n"
	  "                         connection's start or the end of its previous\n"
	  "                         request (default 10; also closes idle keep-alive\n"
	  "                         connections);\n"
	  "  --request-timeout SEC  a request with a body of bounded size must arrive\n"
	  "                         whole within SEC of that same start (default 60);\n"
	  "  --min-rate BYTES       a streamed NDJSON body, of any length, must bring\n"
	  "                         BYTES a second over each --header-timeout of it\n"
	  "                         (default 1024).\n"
	  "A request received whole is never cut, however long its answer takes.\n"
	  "--idle-timeout (default 30) closes a connection that sends and reads\n"
	  "nothing for SEC. --max-uri-bytes (default 8192) and --max-header-bytes\n"
	  "(default 32768) bound the request-target and the head (414, 431).\n"
	  "\n"
	  "--tls-cert FILE and --tls-key FILE (PEM: the certificate chain, and its\n"
	  "unencrypted key) serve HTTPS instead of HTTP; cookies are then Secure.\n"
	  "SIGHUP reads both files again; a pair that does not do is logged and\n"
	  "the one served before kept.\n"
	  "\n"
	  "Rate limits (429 with Retry-After), each COUNT/SECONDS (COUNT at once,\n"
	  "then COUNT per SECONDS) or 0 for none: --rate-token per bearer token\n"
	  "(default 0); --rate-link and --rate-link-address per link and per\n"
	  "address on /p/ (10/60, 60/60); --rate-unsubscribe and\n"
	  "--rate-unsubscribe-address on /u/ (10/60, 60/60); --rate-verify and\n"
	  "--rate-verify-address on POST /v1/dsr/{id}/verify (10/600, 60/600);\n"
	  "--rate-auth-failures, credentials refused per address, after which the\n"
	  "address gets 429 on every authenticated route (20/300).\n"
	  "\n"
	  "--retention-interval SEC (default 3600; 0: never) is how often the\n"
	  "retention sweep runs (see 'consentd retention --help'); the first runs\n"
	  "a minute after start-up, or after SEC when that is shorter.\n" },
	{ "token", cm_cmd_token, "create, list and revoke API tokens",
	  "usage: consentd token create --name NAME --scopes SCOPE[,SCOPE…] [--replace]\n"
	  "       consentd token list\n"
	  "       consentd token revoke NAME\n"
	  "       (each also takes [--data DIR])\n"
	  "\n"
	  "create prints the new token once on stdout; only a keyed hash is kept.\n"
	  "--replace revokes the active token of that name in the same step.\n"
	  "Scopes: consent:check (the check routes only: what a sender needs),\n"
	  "consent:read (current consents, history without evidence, preferences,\n"
	  "reports; includes consent:check), subjects:read (the customer record:\n"
	  "identifiers, profile, evidence), consent:write, subjects:write,\n"
	  "dsr:admin, audit:read, admin. Otherwise no scope implies another.\n"
	  "Names: 1-64 of A-Z a-z 0-9 . _ -\n" },
	{ "migrate", cm_cmd_migrate, "apply pending schema migrations, or show status",
	  "usage: consentd migrate [--data DIR] [--status] [--migrations DIR]\n"
	  "\n"
	  "Applies every migration the database lacks, each in its own\n"
	  "transaction. --status only reports the database's schema version.\n" },
	{ "audit", cm_cmd_audit, "verify the audit log; print checkpoints, keys, proofs",
	  "usage: consentd audit verify [--vkey VKEY]\n"
	  "       consentd audit verify --checkpoint FILE [--vkey VKEY]\n"
	  "       consentd audit checkpoint\n"
	  "       consentd audit vkey\n"
	  "       consentd audit proof --index N [--size N]\n"
	  "       consentd audit consistency --old N [--new M]\n"
	  "       (each also takes [--data DIR])\n"
	  "\n"
	  "verify recomputes the Merkle tree from the stored entries and checks every\n"
	  "stored hash, every checkpoint's signature (by VKEY when given, else by the\n"
	  "local audit key) and root, and that each checkpoint is consistent with the\n"
	  "next; it names the first bad entry and ends with 'N passed, N failed'\n"
	  "(exit 1 when anything failed). checkpoint signs one if the log grew and\n"
	  "prints the latest signed note; vkey prints the C2SP verifier key; proof\n"
	  "and consistency print RFC 9162 inclusion and consistency proofs as JSON\n"
	  "(as the API does), against the latest signed size by default.\n"
	  "--checkpoint FILE also checks a checkpoint kept apart from the store (a\n"
	  "witness's or the operator's copy of GET /v1/audit/checkpoint): its\n"
	  "signature, and that the log holds at least its size with its root; a\n"
	  "copy of the store missing committed entries fails here.\n" },
	{ "witness", cm_cmd_witness, "cosign checkpoints as an independent witness",
	  "usage: consentd witness keygen --name NAME --key FILE\n"
	  "       consentd witness cosign --key FILE --state FILE --log-vkey VKEY\n"
	  "                               --checkpoint FILE [--consistency FILE]\n"
	  "\n"
	  "A witness, run by the DPO apart from the service, cosigns a checkpoint\n"
	  "(C2SP tlog-cosignature/v1) only when the log's signature is valid and the\n"
	  "tree extends the one it cosigned last: --consistency is the JSON of\n"
	  "GET /v1/audit/consistency?old=LAST&new=SIZE. A smaller tree, another root\n"
	  "for the same size or a bad proof is refused (exit 1). keygen writes the\n"
	  "key file (0600) and prints the witness verifier key. The state file\n"
	  "keeps the last cosigned origin, size and root; the cosigned checkpoint\n"
	  "is printed.\n" },
	{ "dsr", cm_cmd_dsr, "the DPO's data-subject requests: list, show, each step",
	  "usage: consentd dsr list [--status S] [--type T] [--subject ID] [--overdue]\n"
	  "                         [--limit N] [--json]\n"
	  "       consentd dsr show ID\n"
	  "       consentd dsr verify ID [--code CODE]\n"
	  "       consentd dsr resend ID\n"
	  "       consentd dsr extend|deny|cancel|lift ID --reason TEXT\n"
	  "       consentd dsr process ID\n"
	  "       consentd dsr complete ID --note TEXT\n"
	  "       (each of the above also takes [--data DIR] [--policy PATH])\n"
	  "       consentd dsr export ID [-o FILE] [--format json|csv] [--data DIR]\n"
	  "       consentd dsr verify-package FILE [--vkey VKEY | --data DIR]\n"
	  "\n"
	  "The same steps as the /v1/dsr routes, each in a transaction of its own,\n"
	  "recorded in the request's timeline and the audit log by the actor \"cli\".\n"
	  "list prints every request the filters select, sorted by due date (--json:\n"
	  "one JSON object per line); the steps and show print the request after.\n"
	  "verify reads the code from one line of standard input when --code is not\n"
	  "given; a wrong code counts as an attempt. --policy defaults to ./policy\n"
	  "($CONSENTD_POLICY); rectification validates its changes against it.\n"
	  "\n"
	  "export writes the package request ID holds (processed access or\n"
	  "portability request) to FILE (created, mode 0600; never overwritten) or\n"
	  "to standard output, decrypted as GET /v1/dsr/{id}/package serves it;\n"
	  "--format csv for a portability request's CSV. verify-package checks a\n"
	  "consentd-export/1 document offline (docs/export-format.md): each\n"
	  "section's SHA-256 against its manifest and the manifest's Ed25519\n"
	  "signature with VKEY, the audit log's verifier key as GET /v1/audit/vkey\n"
	  "gives it (the key itself, or a file holding it); without --vkey, the key\n"
	  "of DIR's log. Exit 0 when it verifies, 1 naming what does not match.\n" },
	{ "receipt", cm_cmd_receipt, "verify a consent receipt offline",
	  "usage: consentd receipt verify FILE [--vkey VKEY]\n"
	  "\n"
	  "Checks a consent receipt (GET /v1/consents/{event_id}/receipt; FILE may\n"
	  "be - for standard input) without the service: its Ed25519 signature, the\n"
	  "signed checkpoint it carries, the inclusion proof of its audit entry in\n"
	  "that checkpoint's tree, and that the entry records what the receipt\n"
	  "says. VKEY is the log's verifier key as GET /v1/audit/vkey gives it, or\n"
	  "a file holding it; without it the key the receipt names is used, which\n"
	  "shows the receipt is intact but not who signed it. Exit 0 when every\n"
	  "check passes, 1 (naming the first check that failed) otherwise.\n" },
	{ "systems", cm_cmd_systems, "register, list and remove downstream systems",
	  "usage: consentd systems add --name NAME --url URL --events EVENT[,EVENT…]\n"
	  "       consentd systems list\n"
	  "       consentd systems remove NAME\n"
	  "       (each also takes [--data DIR])\n"
	  "\n"
	  "add reads the system's shared secret (16-256 bytes) as one line from\n"
	  "standard input; it signs the webhooks sent to the system and the\n"
	  "callbacks it makes, and is never shown again. URL is http or https (http\n"
	  "is warned about). Events: erasure, rectification, restriction, objection,\n"
	  "consent.changed.\n" },
	{ "outbox", cm_cmd_outbox, "list, retry and deliver queued messages and webhooks",
	  "usage: consentd outbox list [--status pending|sent|dead]\n"
	  "       consentd outbox retry ID\n"
	  "       consentd outbox run [--policy PATH]\n"
	  "       (each also takes [--data DIR])\n"
	  "\n"
	  "list shows the outbox's rows, newest first (never their content); retry\n"
	  "makes a dead row pending again; run makes one delivery pass over the rows\n"
	  "due now, as the delivery thread of 'consentd serve' does, and prints\n"
	  "'N sent, N failed'. Delivery settings come from the environment:\n"
	  "CONSENTD_OUTBOX_SENDER (file or smtp; default file), CONSENTD_OUTBOX_DIR\n"
	  "(the file sender's directory; default DIR/outbox),\n"
	  "CONSENTD_OUTBOX_BASE_MS (first retry after about this; default 30000),\n"
	  "CONSENTD_OUTBOX_MAX_ATTEMPTS (then dead; default 8),\n"
	  "CONSENTD_OUTBOX_TIMEOUT_MS (of one attempt; default 10000) and, for smtp,\n"
	  "CONSENTD_SMTP_URL, CONSENTD_SMTP_USER, CONSENTD_SMTP_PASSWORD.\n" },
	{ "routes", cm_cmd_routes, "list the HTTP routes and the scope each needs",
	  "usage: consentd routes\n" },
	{ "link", cm_cmd_link, "a shopper's preference-centre link, or revoke them all",
	  "usage: consentd link (--subject ID | --identifier TYPE:VALUE [--create])\n"
	  "                     [--ttl SEC] [--public-url URL] [--revoke]\n"
	  "                     [--data DIR] [--policy PATH]\n"
	  "\n"
	  "Prints a signed preference-centre link for the subject, its one-click\n"
	  "unsubscribe link and the List-Unsubscribe and List-Unsubscribe-Post\n"
	  "header values, as POST /v1/subjects/{id}/preference-link makes them.\n"
	  "--identifier finds the subject holding it; with --create a subject is\n"
	  "made for it when nobody does. --ttl is 300 to 34560000 seconds (default\n"
	  "30 days). --public-url is the base the server is reached at (default\n"
	  "http://127.0.0.1:8080; $CONSENTD_PUBLIC_URL). --revoke revokes every\n"
	  "link of the subject made so far and ends its sessions instead.\n" },
	{ "import", cm_cmd_import, "import consents and suppressions from a provider's export",
	  "usage: consentd import [--data DIR] [--policy PATH] [--format csv|ndjson]\n"
	  "                       (--mapping mailchimp|klaviyo|braze | --map FILE |\n"
	  "                        --column FIELD=HEADER ... [--kind KIND])\n"
	  "                       [--purpose P] [--channel C] [--rejects FILE]\n"
	  "                       [--dry-run] [--batch N] [--batch-ms MS]\n"
	  "                       [--progress-interval SEC] FILE\n"
	  "\n"
	  "Imports consents, preferences and suppressions from FILE (- for standard\n"
	  "input), a CSV export with a header line or NDJSON (one JSON object a line;\n"
	  "the default for .ndjson, .jsonl and .json), through the same consent rules\n"
	  "as POST /v1/consents: method import, the provider's own time kept as\n"
	  "collected_at (a suppression's since), evidence.source the mapping's name\n"
	  "and evidence.file FILE's name. A grant for a suppressed person is refused,\n"
	  "and a back-filled grant never outranks a later withdrawal.\n"
	  "\n"
	  "--mapping names a shipped mapping (share/mappings/), --map a mapping file,\n"
	  "--column maps one record field by field: FIELD is identifier (type:value),\n"
	  "email, phone, customer, device or loyalty (a value of that type), purpose,\n"
	  "topic, channel, state, reason, time or ip; --kind consents (default),\n"
	  "preferences (a topic instead of a purpose) or suppressions (a reason).\n"
	  "--purpose and --channel fill in records that name none.\n"
	  "\n"
	  "A refused row never stops the run: with --rejects FILE (created, mode\n"
	  "0600) each goes there as {\"line\",\"reason\",\"record\"} (the record as\n"
	  "read, so it can be fixed and imported again); without it the first few\n"
	  "line numbers and reasons are printed. Running a file again writes nothing\n"
	  "new. --dry-run reads, checks and counts every row and writes nothing.\n"
	  "Rows go in chunks, one transaction each, of at most --batch rows (default\n"
	  "10000) and --batch-ms milliseconds (default 2000); a chunk commits whole\n"
	  "or not at all, and progress counts committed chunks only. A progress bar\n"
	  "is drawn on a terminal; otherwise a JSON progress line is logged every SEC\n"
	  "seconds "
	  "(default 5). The last line on stdout is a JSON summary: rows, imported,\n"
	  "unchanged, rejected, skipped, seconds, rows_per_second.\n" },
	{ "backup", cm_cmd_backup, "an online, checked, encrypted copy of the store",
	  "usage: consentd backup --to FILE [--data DIR] [--json]\n"
	  "\n"
	  "Copies the store of DIR into FILE while the server may run and write,\n"
	  "through SQLite's online backup (one snapshot, write-ahead log\n"
	  "included), still encrypted with DIR's master key. The copy is checked\n"
	  "before FILE is written: it opens with the key, SQLCipher's and SQLite's\n"
	  "integrity checks pass and 'audit verify' passes, state check included.\n"
	  "FILE is then synced and renamed into place (an existing FILE is\n"
	  "replaced whole). Prints the size, the audit log's size and its latest\n"
	  "checkpoint (--json: one JSON object). Keep master.key, audit.key and\n"
	  "DIR/erasures.ledger safe apart from FILE: see docs/operations.md.\n" },
	{ "restore", cm_cmd_restore, "put a backup back, erasures and every no said since applied again",
	  "usage: consentd restore [--data DIR] [--policy DIR] [--json] FILE\n"
	  "       consentd restore --replay [--data DIR] [--ledgers NODE_DIR]... [--policy DIR]\n"
	  "                        [--json]\n"
	  "\n"
	  "With the server stopped (refused while anything has the store open),\n"
	  "checks FILE as backup does, applies pending migrations, then erases again\n"
	  "every subject DIR/erasures.ledger records as erased that FILE still\n"
	  "holds, checks the result, and only then replaces DIR/consentd.db (the old\n"
	  "database is kept aside until the new one is in place). A FILE or ledger\n"
	  "that does not verify changes nothing (exit 1).\n"
	  "After the erasures, every \"no\" DIR/optouts.ledger records that FILE\n"
	  "lacks (withdrawals, refusals, unsubscribes, suppression entries,\n"
	  "objections, restrictions) is recorded again with its original time;\n"
	  "--policy (default ./policy) names the purposes they are recorded for.\n"
	  "\n"
	  "--replay: the store was put back by other means (on PostgreSQL, its own\n"
	  "tools). With every server stopped, erases again in place each subject the\n"
	  "ledgers record as erased, and records again each \"no\" they hold that the\n"
	  "store lacks. The ledgers are DIR's and, with --ledgers (repeatable), those\n"
	  "of the other nodes' data directories; each must verify first.\n" },
	{ "keys", cm_cmd_keys, "rotate the master key or the audit signing key (offline)",
	  "usage: consentd keys rotate-master|rotate-audit [--data DIR] [--migrations DIR]\n"
	  "\n"
	  "Run with the server stopped: refused while anything has the store open.\n"
	  "\n"
	  "rotate-master makes a new master key, copies the database re-keyed under\n"
	  "it into DIR/consentd.db.rotating with every wrapped data key wrapped\n"
	  "again, then puts the new files in place by renames after a commit record.\n"
	  "Killed at any point, DIR opens with the old key or the new one: the next\n"
	  "start, or running the command again, finishes or undoes the rotation.\n"
	  "The other derived keys (tokens, links, blind indexes) stay, sealed under\n"
	  "the new key in DIR/sealed.keys. The old key file is overwritten and\n"
	  "replaced; the audit log records both keys by id.\n"
	  "\n"
	  "rotate-audit makes a new audit signing key. An audit.key_rotated entry,\n"
	  "signed into a checkpoint by the old key, names the new verifier key and\n"
	  "the first checkpoint size it signs; 'consentd audit verify' checks each\n"
	  "checkpoint under the key of its time. Killed before it ends, running it\n"
	  "again finishes it.\n" },
	{ "retention", cm_cmd_retention, "delete and minimise what the policy's retention ends",
	  "usage: consentd retention run [--data DIR] [--policy PATH] [--dry-run]\n"
	  "\n"
	  "Runs one retention sweep with the periods of the policy's \"retention\"\n"
	  "section: closed requests (with their timelines and packages) past\n"
	  "closed_requests_days, expired packages, delivered outbox rows past\n"
	  "outbox_delivered_days, and the IP address (cut to /24 or /48) and user\n"
	  "agent (dropped) of consent evidence past evidence_ip_truncate_days.\n"
	  "Consent events and the audit log are never deleted. Works in short\n"
	  "transactions, so a running server goes on serving. A sweep that changed\n"
	  "anything writes one retention.swept audit entry with counts. Prints the\n"
	  "counts as JSON. --dry-run counts what would be done and changes nothing.\n"
	  "The server runs the same sweep every --retention-interval seconds.\n" },
};

const size_t cm_ncommands = sizeof(cm_commands) / sizeof(cm_commands[0]);

/* Set by cm_cli_json_errors(): stderr is a JSON log. */
static bool cli_json;

void
cm_cli_json_errors(void)
{
	cli_json = true;
}

void
cm_cli_usage(const char *name, bool to_stderr)
{
	FILE *f = to_stderr ? stderr : stdout;
	size_t i;

	if (to_stderr && cli_json) {
		cm_log(CM_LOG_ERROR, "usage_error", ",\"message\":\"bad command line: "
		    "see 'consentd %s --help'\"", name != NULL ? name : "help");
		return;
	}
	if (name != NULL) {
		for (i = 0; i < cm_ncommands; i++)
			if (strcmp(cm_commands[i].c_name, name) == 0) {
				fputs(cm_commands[i].c_usage, f);
				return;
			}
	}
	fprintf(f, "consentd %s: GDPR consent and data-subject-rights manager\n\n"
	    "usage: consentd COMMAND [OPTIONS]\n\ncommands:\n", CM_VERSION);
	for (i = 0; i < cm_ncommands; i++)
		fprintf(f, "  %-9s %s\n", cm_commands[i].c_name, cm_commands[i].c_summary);
	fprintf(f, "  %-9s %s\n  %-9s %s\n\n'consentd help COMMAND' or "
	    "'consentd COMMAND --help' describes one command.\n",
	    "help", "show this text", "version", "print the version");
}

void
cm_cli_error(const char *fmt, ...)
{
	char line[1024], msg[1100], esc[1300];
	const char *p;
	size_t n;
	va_list ap;

	if (cli_json) {
		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		/* A message's second line (what to do) joins the first after "; ". */
		for (p = line, n = 0; *p != '\0' && n + 3 < sizeof(msg); p++) {
			if (*p == '\n') {
				msg[n++] = ';';
				msg[n++] = ' ';
			} else
				msg[n++] = *p;
		}
		msg[n] = '\0';
		cm_log(CM_LOG_ERROR, "startup_failed", ",\"message\":\"%s\"",
		    cm_json_escape(esc, sizeof(esc), msg));
		return;
	}
	fputs("consentd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cm_cli_env_defaults(const struct option *opts,
    int (*set)(int, const char *, void *), void *ctx)
{
	char name[96];
	const char *v;
	size_t i, n;
	int rc;

	for (; opts->name != NULL; opts++) {
		n = (size_t)snprintf(name, sizeof(name), "CONSENTD_");
		for (i = 0; opts->name[i] != '\0' && n + 1 < sizeof(name); i++)
			name[n++] = opts->name[i] == '-' ? '_' :
			    (char)toupper((unsigned char)opts->name[i]);
		name[n] = '\0';
		if ((v = getenv(name)) == NULL || *v == '\0')
			continue;
		if (opts->has_arg == no_argument)
			continue;
		if ((rc = set(opts->val, v, ctx)) != 0) {
			cm_cli_error("bad value in %s", name);
			return rc;
		}
	}
	return 0;
}

/* The PostgreSQL store named by --store or CONSENTD_STORE, or NULL. */
static const char *cli_store;
/* A --store=DIR rewritten as --data=DIR (kept: ARGV points to it). */
static char *cli_data_arg;
static char cli_data_flag[] = "--data";

int
cm_cli_store_arg(int *argcp, char **argv)
{
	const char *v = NULL;
	int i, j, argc = *argcp;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
			v = argv[i + 1];
		} else if (strncmp(argv[i], "--store=", 8) == 0) {
			v = argv[i] + 8;
		} else {
			continue;
		}
		if (!cm_store_is_pg(v)) {
			/* A directory: the store in it, as --data DIR says. */
			if (argv[i][7] == '=') {
				free(cli_data_arg);
				cli_data_arg = cm_malloc(strlen(v) + sizeof("--data="));
				sprintf(cli_data_arg, "--data=%s", v);
				argv[i] = cli_data_arg;
			} else {
				argv[i++] = cli_data_flag;
			}
			continue;
		}
		cli_store = v;
		j = argv[i][7] == '=' ? 1 : 2;
		memmove(&argv[i], &argv[i + j], (size_t)(argc - i - j + 1) * sizeof(*argv));
		argc -= j;
		i--;
	}
	if (cli_store == NULL && (v = getenv("CONSENTD_STORE")) != NULL && v[0] != '\0') {
		if (!cm_store_is_pg(v)) {
			cm_cli_error("CONSENTD_STORE: not a postgresql:// connection string");
			return CM_EXIT_USAGE;
		}
		cli_store = v;
	}
	*argcp = argc;
	return 0;
}

const char *
cm_cli_store(void)
{
	return cli_store;
}

bool
cm_cli_store_pg(const char *dir, const char *what, const char *instead)
{
	char path[4096];
	struct stat sb;
	int n;

	n = snprintf(path, sizeof(path), "%s/" CM_STORE_PG_FILE, dir);
	if (cli_store == NULL && (n < 0 || (size_t)n >= sizeof(path) || stat(path, &sb) != 0))
		return false;
	cm_cli_error("%s is for the SQLCipher store; this store is on PostgreSQL: %s "
	    "(docs/operations.md, \"PostgreSQL\"; nothing was changed)", what, instead);
	return true;
}

const char *
cm_cli_data_dir(const char *flag)
{
	return flag != NULL ? flag : "./var";
}

/* Runs the data upgrades pending after the migrations just applied. */
static cm_result
cli_upgrade(struct cm_store *store, const struct cm_keys *keys)
{
	struct cm_upgrade_report rep;
	struct cm_db *db;
	cm_result rc;

	if ((db = cm_store_db(store)) == NULL)
		return CM_IOERR;
	if ((rc = cm_upgrade_run(db, keys, &rep)) != CM_OK)
		cm_cli_error("cannot upgrade the stored data: %s (nothing was changed)",
		    cm_result_str(rc));
	return rc;
}

int
cm_cli_open(const char *dir, const char *migrations_dir, bool apply,
    struct cm_keys **keys, struct cm_store **store)
{
	struct cm_migration_set set;
	struct cm_store_opts opts;
	char err[1024];
	cm_result rc;

	*keys = NULL;
	*store = NULL;
	if (cm_crypto_init() != 0) {
		cm_cli_error("cannot initialise libsodium");
		return CM_EXIT_ERROR;
	}
	if (cm_keys_load(dir, keys, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		return CM_EXIT_ERROR;
	}
	if (cm_migrations_load(migrations_dir, &set, err, sizeof(err)) != CM_OK) {
		cm_cli_error("%s", err);
		goto fail;
	}
	cm_store_opts_default(&opts);
	opts.so_apply = apply;
	opts.so_conninfo = cm_cli_store();
	rc = cm_store_open(dir, *keys, &set, &opts, store, err, sizeof(err));
	cm_migrations_free(&set);
	if (rc != CM_OK) {
		if (rc == CM_AUTH) {
			cm_cli_error("%s: wrong key, or not a consentd database; check that "
			    "%s/master.key is the key this database was created with "
			    "(nothing was changed)", dir, dir);
			cm_keys_free(*keys);
			*keys = NULL;
			return CM_EXIT_KEY;
		}
		cm_cli_error(rc == CM_CONFLICT ? "%s (nothing was changed)" : "%s", err);
		goto fail;
	}
	if (apply && (rc = cli_upgrade(*store, *keys)) != CM_OK) {
		cm_store_close(*store);
		*store = NULL;
		goto fail;
	}
	return CM_EXIT_OK;
fail:
	cm_keys_free(*keys);
	*keys = NULL;
	return CM_EXIT_ERROR;
}
