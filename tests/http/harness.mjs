// SPDX-License-Identifier: ISC
// Test harness: runs the real consentd binary. Each server gets a fresh
// data directory (consentd init), tokens made with `consentd token create`,
// and listens on an ephemeral loopback port reported in its "listening"
// log line. Nothing here stands in for consentd's own store, crypto or HTTP.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { checkResponse } from './openapi_check.mjs';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.CONSENTD_BIN || path.join(ROOT, 'build/consentd');
export const POLICY = path.join(ROOT, 'policy');

export const SCOPES = ['consent:check', 'consent:read', 'consent:write', 'subjects:read',
  'subjects:write', 'dsr:admin', 'audit:read', 'admin'];

// Runs a consentd subcommand to completion.
export function cli(args, opts = {}) {
  const r = spawnSync(BIN, args, {
    encoding: 'utf8',
    env: { ...process.env, ...(opts.env || {}) },
    input: opts.input,
    timeout: 60000,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

// Every temporary directory a test file makes is removed when its process
// exits (CONSENTD_KEEP_TMP=1 keeps them for a post-mortem), so that a run of
// the suite leaves nothing behind.
const madeDirs = [];
process.on('exit', () => {
  if (process.env.CONSENTD_KEEP_TMP === '1') return;
  for (const d of madeDirs) {
    // A directory that cannot be removed (still busy) is left, not fatal.
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* left behind */ }
  }
});

export function tmpdir(prefix = 'consentd-test-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  madeDirs.push(d);
  return d;
}

// The store the suite runs on: SQLCipher files, or PostgreSQL when
// CONSENTD_TEST_PG names the socket directory of a running cluster (make
// http-pg starts a throwaway one: tests/http/run.mjs --pg). On PostgreSQL each data
// directory gets a database of its own, named by DIR/store.
export const PG = process.env.CONSENTD_TEST_PG || '';
export const BACKEND = PG ? 'postgresql' : 'sqlcipher';
// The skip reason of a test of what only the SQLCipher store does: backup
// of its file and restore FILE. On PostgreSQL consentd refuses these and
// says what to do instead (PostgreSQL's tools, then restore --replay),
// which backup.test.mjs and optout_restore.test.mjs check.
export const SQLCIPHER_ONLY = PG ? 'the SQLCipher file\'s backup and restore FILE: refused on PostgreSQL' : false;

// A new database of the test cluster, empty or a copy of database
// TEMPLATE: its connection URI.
export function newPgStore(template) {
  const name = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const from = template ? ` TEMPLATE ${template}` : '';
  const r = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', PG, '-U', 'postgres',
    '-d', 'postgres', '-c', `CREATE DATABASE ${name}${from}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`CREATE DATABASE failed: ${r.stderr}`);
  return `postgresql:///${name}?host=${encodeURIComponent(PG)}&user=postgres`;
}

// Copies data directory SRC to DEST (made, mode 0700): its files and, for a
// PostgreSQL store, its database (a new one made from it as a template,
// which no session may be using), so that DEST is a store of its own.
export function copyData(src, dest) {
  fs.mkdirSync(dest, { mode: 0o700 });
  for (const f of fs.readdirSync(src)) {
    if (fs.statSync(path.join(src, f)).isFile()) fs.copyFileSync(path.join(src, f), path.join(dest, f));
  }
  const named = path.join(src, 'store');
  if (PG && fs.existsSync(named)) {
    const from = new URL(fs.readFileSync(named, 'utf8').trim()).pathname.slice(1);
    const uri = newPgStore(from);
    fs.writeFileSync(path.join(dest, 'store'), uri, { mode: 0o600 });
  }
  return dest;
}

// The data directory of a second node of DATA's store: on PostgreSQL a
// directory of its own with the keys and the file naming the same
// database, copied, as on a second machine (its ledgers are its own); on
// SQLCipher DATA itself (two servers on one data directory).
export function nodeData(data) {
  if (!PG) return data;
  const dir = path.join(tmpdir('consentd-node-'), 'data');
  fs.mkdirSync(dir, { mode: 0o700 });
  for (const f of ['master.key', 'audit.key', 'store'])
    fs.copyFileSync(path.join(data.dir, f), path.join(dir, f));
  return { dir };
}

// A fresh, initialised data directory (DIR/data inside a new temp dir).
export function initData(extraArgs = []) {
  const base = tmpdir();
  const dir = path.join(base, 'data');
  const store = PG ? ['--store', newPgStore()] : [];
  const r = cli(['init', '--data', dir, ...store, ...extraArgs]);
  if (r.code !== 0) throw new Error(`init failed: ${r.stderr}`);
  return { base, dir };
}

export function createToken(dir, name, scopes) {
  const r = cli(['token', 'create', '--data', dir, '--name', name, '--scopes', scopes.join(',')]);
  if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
  return r.stdout.trim();
}

// SHA-256 of every file in DIR, by name: to show a command changed nothing.
// A PostgreSQL store (named by DIR/store) is in the snapshot as the dump of
// every row of every table (dbtool dump), under '(database)'.
export function snapshot(dir) {
  const out = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile())
      out[f] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  }
  if (out.store !== undefined) {
    const r = spawnSync(process.env.CONSENTD_DBTOOL, ['dump', dir], { maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(`dbtool dump failed: ${r.stderr}`);
    out['(database)'] = createHash('sha256').update(r.stdout).digest('hex');
  }
  return out;
}

// Starts `consentd serve` and resolves once it listens.
export async function startServer(opts = {}) {
  const data = opts.data || initData();
  const tokens = {};
  if (!opts.noTokens) {
    tokens.all = createToken(data.dir, 'all', SCOPES);
    for (const s of SCOPES) tokens[s] = createToken(data.dir, s.replace(':', '-'), [s]);
  }
  const args = ['serve', '--data', data.dir, '--listen', '127.0.0.1:0',
    '--policy', opts.policy || POLICY, ...(opts.args || [])];
  const proc = spawn(opts.bin || BIN, args, {
    env: { ...process.env, ...(opts.env || {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  let stderr = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 30000);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
      let nl;
      while ((nl = stderr.indexOf('\n')) >= 0) {
        const line = stderr.slice(0, nl);
        stderr = stderr.slice(nl + 1);
        logs.push(line);
        try {
          const j = JSON.parse(line);
          if (j.event === 'listening') { clearTimeout(timer); resolve(j.port); }
        } catch { /* non-JSON lines are kept in logs and checked by tests */ }
      }
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${logs.join('\n')}${stderr}`)); });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    data, dir: data.dir, tokens, proc, port, url, logs, exited,
    // Sends REQ and returns {status, headers, text, json}.
    async req(method, p, { token, body, headers = {}, raw } = {}) {
      const h = { ...headers };
      if (token) h.authorization = `Bearer ${token}`;
      let b;
      if (raw !== undefined) b = raw;
      else if (body !== undefined) { b = JSON.stringify(body); h['content-type'] ??= 'application/json'; }
      const res = await fetch(url + p, { method, headers: h, body: b });
      const text = await res.text();
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      // The response must be what docs/openapi.yaml says it is.
      const problems = checkResponse(method, p, res.status, res.headers.get('content-type'), text);
      if (problems.length > 0) throw new Error(`response not as documented: ${problems.join('; ')}\n${text.slice(0, 400)}`);
      return { status: res.status, headers: res.headers, text, json };
    },
    // SIGTERM, then the exit status (0 expected; sanitizer findings make it non-zero).
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const r = await exited;
      await new Promise((res) => setTimeout(res, 20));
      // On PostgreSQL, a statement the engine could not prepare or that
      // PostgreSQL found wrong (SQLSTATE class 42: syntax, types, names) is
      // a defect of the store's SQL, whatever the test saw.
      const wrong = logs.filter((l) => l.includes('"engine":"postgresql"') &&
        (l.includes('"sqlstate":"42') || l.includes('prepare failed')));
      if (wrong.length > 0) throw new Error(`the store's SQL failed on PostgreSQL:\n${wrong.join('\n')}`);
      if (r.code !== 0) {
        // Sanitizer and leak reports are not JSON: show them with the failure.
        const other = logs.filter((l) => !l.startsWith('{')).join('\n') + stderr;
        if (other) console.error(`consentd exited ${r.code}:\n${other.slice(0, 20000)}`);
      }
      return r;
    },
  };
}

// Sends raw bytes over TCP and collects the reply until the peer closes or
// TIMEOUT ms pass.
export function rawRequest(port, bytes, timeout = 5000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    const done = () => { sock.destroy(); resolve(data); };
    sock.setTimeout(timeout, done);
    sock.on('data', (c) => { data += c.toString('latin1'); });
    sock.on('end', done);
    sock.on('error', done);
    sock.on('connect', () => sock.write(bytes));
  });
}

// Like rawRequest, and also says whether the server closed the connection
// (rather than TIMEOUT ms passing) and how long the exchange took.
export function rawExchange(port, bytes, timeout = 5000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const t0 = Date.now();
    let data = '';
    let closed = false;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      sock.destroy();
      resolve({ text: data, closed, ms: Date.now() - t0 });
    };
    sock.setTimeout(timeout, done);
    sock.on('data', (c) => { data += c.toString('latin1'); });
    sock.on('end', () => { closed = true; done(); });
    sock.on('error', () => { closed = true; done(); });
    sock.on('connect', () => sock.write(bytes));
  });
}

// The status codes of every HTTP response in TEXT, in order: each head is
// read up to its blank line and its body skipped by its Content-Length.
export function statusLines(text) {
  const out = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = text.slice(at, end);
    const m = head.match(/^HTTP\/1\.[01] (\d{3}) /);
    if (!m) break;
    out.push(Number(m[1]));
    const cl = head.match(/\r\ncontent-length: *(\d+)/i);
    at = end + 4 + (cl ? Number(cl[1]) : 0);
  }
  return out;
}

// Waits until a log line satisfies PRED (parsed JSON), or TIMEOUT ms pass.
export async function waitForLog(srv, pred, timeout = 3000) {
  const t0 = Date.now();
  for (;;) {
    for (const l of srv.logs) {
      let j;
      try { j = JSON.parse(l); } catch { continue; }
      if (pred(j)) return j;
    }
    if (Date.now() - t0 > timeout) return undefined;
    await new Promise((r) => setTimeout(r, 25));
  }
}

// Waits until SRV's outbox has delivered everything due (rows held for a
// request's completion aside): the delivery thread writes timeline rows
// and audit entries of its own, which a count must not race.
export async function settleOutbox(srv) {
  for (let i = 0; i < 200; i++) {
    const r = await srv.req('GET', '/v1/outbox?status=pending', { token: srv.tokens.admin });
    if (r.status !== 200) throw new Error(`GET /v1/outbox: ${r.status} ${r.text}`);
    if (r.json.items.every((x) => x.held)) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('the outbox did not settle');
}

// The number of entries in SRV's audit log once its outbox has settled.
export async function settledAuditSize(srv) {
  await settleOutbox(srv);
  const r = await srv.req('GET', '/v1/audit/entries?to=999999999', { token: srv.tokens['audit:read'] });
  return Number(r.json.error.message.match(/holds (\d+)/)[1]);
}

// The value of the series NAME{LABELS} in a /metrics scrape TEXT (labels
// written as the server orders them), or 0 when the scrape does not have it.
export function metricValue(text, series) {
  for (const line of text.split('\n'))
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return 0;
}

// The messages of a server's JSON log lines in STDERR, one a line (a line
// that is not JSON is kept as it is, so that a test sees it): for tests of
// what `consentd serve` says when it refuses to start.
export function logText(stderr) {
  return stderr.split('\n').filter((l) => l !== '').map((l) => {
    try { const j = JSON.parse(l); return j.message ?? l; } catch { return l; }
  }).join('\n');
}
