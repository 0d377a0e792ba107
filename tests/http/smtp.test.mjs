// SPDX-License-Identifier: ISC
// The outbox's SMTP sender against a real SMTP server on loopback
// (tests/http/smtp_server.py, aiosmtpd): STARTTLS required, a certificate
// for 127.0.0.1 signed by a throwaway CA trusted through CONSENTD_SMTP_CA,
// AUTH with a user and password. A message goes out whole to the right
// recipient and its code verifies the request; a server without STARTTLS,
// a wrong password and a CA that does not match each fail without sending.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, startServer, tmpdir } from './harness.mjs';

const PY = process.env.CONSENTD_PYTHON || '/usr/bin/python3';
const SCRIPT = path.join(ROOT, 'tests/http/smtp_server.py');
const USER = 'outbox-user';
const PASS = 'smtp-pass-5e3a9c';
const pythons = [];
const servers = [];
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
let pki;

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `openssl ${args[0]}: ${r.stderr}`);
}
// A CA in DIR (ca.pem, ca.key) and, with SAN, a server certificate for
// those names signed by it (server.pem, server.key).
function makeCA(dir, san) {
  fs.mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=consentd test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], dir);
  if (!san) return;
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  fs.writeFileSync(path.join(dir, 'ext.cnf'),
    `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf'], dir);
}

// Starts the SMTP server (with the certificate in PKI); resolves with its
// port and what it received.
async function smtpServer({ tls = true, pki: dir = pki } = {}) {
  const out = tmpdir('consentd-smtp-out-');
  const args = [SCRIPT, '--out', out, '--user', USER, '--password', PASS];
  if (tls) args.push('--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server.key'));
  else args.push('--no-tls');
  const proc = spawn(PY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  pythons.push(proc);
  let err = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (c) => { err += c; });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`smtp server did not start: ${err}`)), 15000);
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (c) => {
      buf += c;
      const m = buf.match(/^PORT (\d+)$/m);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`smtp server exited ${code}: ${err}`)); });
  });
  const messages = () => fs.readdirSync(out).filter((f) => /^\d+\.json$/.test(f)).sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(out, f), 'utf8')));
  const auths = () => {
    const f = path.join(out, 'auth.log');
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n') : [];
  };
  return { port, out, messages, auths, stderr: () => err };
}

async function waitFor(what, fn, timeout = 20000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeout) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// A consentd server sending through SMTP with ENV on top of the defaults.
async function consentd(port, env = {}) {
  const s = await startServer({ env: {
    CONSENTD_OUTBOX_SENDER: 'smtp', CONSENTD_SMTP_URL: `smtp://127.0.0.1:${port}`,
    CONSENTD_SMTP_CA: path.join(pki, 'ca.pem'), CONSENTD_SMTP_USER: USER,
    CONSENTD_SMTP_PASSWORD: PASS, CONSENTD_OUTBOX_BASE_MS: '100',
    CONSENTD_OUTBOX_MAX_ATTEMPTS: '3', CONSENTD_OUTBOX_TIMEOUT_MS: '5000', ...env } });
  servers.push(s);
  return s;
}
let seq = 0;
const address = () => `smtp${process.pid}x${++seq}@example.com`;

// A request for a known subject with an email; resolves with its id and outbox row.
async function request(s, addr) {
  const g = await s.req('POST', '/v1/consents', { token: s.tokens['consent:write'],
    body: { identifier: `email:${addr}`, purpose: 'newsletter', channel: 'email',
      state: 'granted', method: 'web_form' } });
  assert.equal(g.status, 201, g.text);
  const r = await s.req('POST', '/v1/dsr', { token: s.tokens['dsr:admin'],
    body: { type: 'access', identifier: `email:${addr}` } });
  assert.equal(r.status, 201, r.text);
  const l = await s.req('GET', '/v1/outbox', { token: s.tokens.admin });
  assert.equal(l.status, 200, l.text);
  const rows = l.json.items.filter((x) => x.request_id === r.json.id);
  assert.equal(rows.length, 1);
  return { id: r.json.id, row: rows[0] };
}
async function rowIn(s, status, id) {
  const r = await s.req('GET', `/v1/outbox?status=${status}`, { token: s.tokens.admin });
  assert.equal(r.status, 200, r.text);
  return r.json.items.find((x) => x.id === id);
}
function noSecretsLogged(s, addr) {
  const all = s.logs.join('\n');
  assert.ok(!all.includes(PASS), 'the password is never logged');
  assert.ok(!all.includes(addr), 'the address is never logged');
  assert.ok(!all.includes(pki), 'the CA file is never logged');
}

before(() => {
  pki = tmpdir('consentd-smtp-pki-');
  makeCA(pki, 'IP:127.0.0.1,DNS:localhost');
});
after(async () => {
  for (const s of servers) assert.equal((await s.stop()).code, 0, 'consentd exits cleanly');
  for (const p of pythons) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      await new Promise((res) => p.on('exit', res));
    }
  }
});

test('a code goes out over STARTTLS with AUTH, whole, and verifies the request', async () => {
  const smtp = await smtpServer();
  const s = await consentd(smtp.port);
  const addr = address();
  const { id, row } = await request(s, addr);
  const sent = await waitFor('the row sent', () => rowIn(s, 'sent', row.id));
  assert.equal(sent.attempts, 1);
  const got = smtp.messages();
  assert.equal(got.length, 1, 'exactly one message');
  const m = got[0];
  assert.equal(m.tls, true, 'the message came over TLS');
  assert.equal(m.authenticated, true);
  assert.deepEqual(m.rcpt_tos, [addr]);
  assert.equal(m.mail_from, 'privacy@northwind-threads.example');
  assert.deepEqual(smtp.auths().map((l) => l.replace(/^\S+ /, '')), ['ok tls=True']);
  const head = m.data.split('\r\n\r\n')[0];
  assert.match(head, /^From: Northwind Threads Ltd <privacy@northwind-threads\.example>$/m);
  assert.match(head, new RegExp(`^To: <${addr.replace(/\./g, '\\.')}>$`, 'm'));
  assert.match(head, new RegExp(`^Subject: Your verification code for request ${id}$`, 'm'));
  assert.match(head, /^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d \+0000$/m);
  const date = Date.parse(head.match(/^Date: (.*)$/m)[1]);
  assert.ok(Math.abs(date - Date.now()) < 120000, 'the Date is now');
  assert.match(head, new RegExp(`^Message-ID: <${row.id}@consentd>$`, 'm'));
  const code = m.data.match(/^ {4}(\d{6})$/m)[1];
  const v = await s.req('POST', `/v1/dsr/${id}/verify`, { token: s.tokens['dsr:admin'], body: { code } });
  assert.equal(v.status, 200, v.text);
  assert.equal(v.json.status, 'verified');
  noSecretsLogged(s, addr);
});

test('a server that offers no STARTTLS gets nothing in clear: the row dies', async () => {
  const smtp = await smtpServer({ tls: false });
  const s = await consentd(smtp.port);
  const addr = address();
  const { row } = await request(s, addr);
  const dead = await waitFor('the row dead', () => rowIn(s, 'dead', row.id));
  assert.equal(dead.attempts, 3);
  assert.match(dead.last_error, /^smtp sender: /);
  assert.ok(!dead.last_error.includes(addr) && !dead.last_error.includes('127.0.0.1'),
    'the error names no address');
  assert.deepEqual(smtp.messages(), [], 'no message was received');
  assert.deepEqual(smtp.auths(), [], 'the password was never sent in clear');
  noSecretsLogged(s, addr);
});

test('a wrong password fails and sends nothing', async () => {
  const smtp = await smtpServer();
  const s = await consentd(smtp.port, { CONSENTD_SMTP_PASSWORD: 'not-the-password' });
  const addr = address();
  const { row } = await request(s, addr);
  const dead = await waitFor('the row dead', () => rowIn(s, 'dead', row.id));
  assert.equal(dead.attempts, 3);
  assert.match(dead.last_error, /^smtp sender: .*(login|auth)/i);
  assert.ok(!dead.last_error.includes(addr));
  assert.deepEqual(smtp.messages(), []);
  assert.ok(smtp.auths().length >= 1 && smtp.auths().every((l) => / bad tls=True$/.test(l)),
    'the server saw the wrong password, over TLS only');
  noSecretsLogged(s, addr);
});

test('a CA that did not sign the server\'s certificate fails before anything is sent', async () => {
  const other = path.join(tmpdir('consentd-smtp-pki2-'), 'ca');
  makeCA(other);
  const smtp = await smtpServer();
  const s = await consentd(smtp.port, { CONSENTD_SMTP_CA: path.join(other, 'ca.pem') });
  const addr = address();
  const { row } = await request(s, addr);
  const dead = await waitFor('the row dead', () => rowIn(s, 'dead', row.id));
  assert.equal(dead.attempts, 3);
  assert.match(dead.last_error, /^smtp sender: .*(certificate|SSL|peer)/i);
  assert.deepEqual(smtp.messages(), []);
  assert.deepEqual(smtp.auths(), [], 'no credentials went to an unverified server');
  noSecretsLogged(s, addr);
});

test('a certificate from the trusted CA for another host name fails before anything is sent', async () => {
  const other = path.join(tmpdir('consentd-smtp-pki3-'), 'ca');
  makeCA(other, 'DNS:mail.example.net');
  const smtp = await smtpServer({ pki: other });
  const s = await consentd(smtp.port, { CONSENTD_SMTP_CA: path.join(other, 'ca.pem') });
  const addr = address();
  const { row } = await request(s, addr);
  const dead = await waitFor('the row dead', () => rowIn(s, 'dead', row.id));
  assert.equal(dead.attempts, 3);
  assert.match(dead.last_error, /^smtp sender: .*(certificate|SSL|peer)/i);
  assert.deepEqual(smtp.messages(), []);
  assert.deepEqual(smtp.auths(), [], 'no credentials went to a server of another name');
  noSecretsLogged(s, addr);
});
