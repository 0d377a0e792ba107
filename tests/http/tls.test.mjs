// SPDX-License-Identifier: ISC
// TLS in the server: --tls-cert and --tls-key serve HTTPS (plain HTTP to
// the port fails), cookies become Secure and HSTS is sent, SIGHUP reloads
// the pair for new connections while open ones keep theirs, a bad pair at
// reload keeps the old one, and bad files at start-up stop it with a clear
// message and a non-zero exit. Throwaway certificates come from openssl.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cli, initData, startServer, tmpdir } from './harness.mjs';

// A self-signed certificate for 127.0.0.1 with its key, written to DIR/NAME.{crt,key}.
function makeCert(dir, name, cn) {
  const crt = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const pem = fs.readFileSync(crt, 'utf8');
  return { crt, key, pem, fpr: new X509Certificate(pem).fingerprint256 };
}

const dir = tmpdir('consentd-tls-');
const one = makeCert(dir, 'one', 'first');
const two = makeCert(dir, 'two', 'second');
const three = makeCert(dir, 'three', 'third');
// The files the server reads; replaced in place for a reload.
const CRT = path.join(dir, 'server.crt');
const KEY = path.join(dir, 'server.key');
fs.copyFileSync(one.crt, CRT);
fs.copyFileSync(one.key, KEY);

let srv;
before(async () => {
  srv = await startServer({ args: ['--tls-cert', CRT, '--tls-key', KEY] });
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

// An HTTPS request trusting only the certificate PEM (CA); resolves with
// status, headers, body, the peer's fingerprint and whether the socket was reused.
function hreq(method, p, { ca = one.pem, token, body, headers = {}, agent = false } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let b;
  if (body !== undefined) { b = JSON.stringify(body); h['content-type'] = 'application/json'; }
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: srv.port, method, path: p, ca, headers: h, agent },
      (res) => {
        const fpr = res.socket.getPeerCertificate().fingerprint256;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { text += c; });
        res.on('end', () => {
          let json;
          try { json = JSON.parse(text); } catch { json = undefined; }
          resolve({ status: res.statusCode, headers: res.headers, text, json, fpr, reused: req.reusedSocket });
        });
      });
    req.on('error', reject);
    if (b !== undefined) req.write(b);
    req.end();
  });
}

// Waits until the log has N lines of EVENT.
async function logged(event, n) {
  for (let i = 0; i < 200; i++) {
    const c = srv.logs.filter((l) => { try { return JSON.parse(l).event === event; } catch { return false; } }).length;
    if (c >= n) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`no ${n} ${event} lines:\n${srv.logs.join('\n')}`);
}

test('HTTPS answers with the certificate given, HSTS on every reply; the start is logged with tls', async () => {
  const r = await hreq('GET', '/healthz');
  assert.equal(r.status, 200);
  assert.equal(r.fpr, one.fpr);
  assert.equal(r.headers['strict-transport-security'], 'max-age=31536000');
  const e = await hreq('GET', '/nope');
  assert.equal(e.status, 404);
  assert.equal(e.headers['strict-transport-security'], 'max-age=31536000');
  assert.equal(JSON.parse(srv.logs.find((l) => l.includes('"listening"'))).tls, true);
});

test('plain HTTP to the TLS port fails; a client not trusting the certificate is refused', async () => {
  await assert.rejects(fetch(`http://127.0.0.1:${srv.port}/healthz`));
  await assert.rejects(hreq('GET', '/healthz', { ca: two.pem }), /self.signed|certificate/i);
});

test('links are https and the preference-centre cookie is Secure', async () => {
  const c = await hreq('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    body: { identifier: 'email:tls-shopper@example.com', purpose: 'newsletter', channel: 'email',
      state: 'granted', method: 'web_form' } });
  assert.equal(c.status, 201, c.text);
  const l = await hreq('POST', `/v1/subjects/${c.json.subject_id}/preference-link`,
    { token: srv.tokens['subjects:write'], body: {} });
  assert.equal(l.status, 201, l.text);
  assert.ok(l.json.url.startsWith(`https://127.0.0.1:${srv.port}/p/`), l.json.url);
  assert.ok(l.json.unsubscribe_url.startsWith('https://'), l.json.unsubscribe_url);
  const p = await hreq('GET', new URL(l.json.url).pathname);
  assert.equal(p.status, 303, p.text);
  const sc = p.headers['set-cookie'].join('\n');
  assert.match(sc, /consentd_session=[0-9a-f]{64}/);
  assert.match(sc, /; Secure/);
  assert.match(sc, /HttpOnly/);
});

test('SIGHUP: new connections get the new certificate, an open one keeps its own; a bad pair keeps the old', async () => {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: one.pem });
  const before1 = await hreq('GET', '/healthz', { agent });
  assert.equal(before1.fpr, one.fpr);

  fs.copyFileSync(two.crt, CRT);
  fs.copyFileSync(two.key, KEY);
  srv.proc.kill('SIGHUP');
  await logged('tls_reloaded', 1);
  const fresh = await hreq('GET', '/healthz', { ca: two.pem });
  assert.equal(fresh.status, 200);
  assert.equal(fresh.fpr, two.fpr, 'a new connection sees the new certificate');
  const kept = await hreq('GET', '/healthz', { agent });
  assert.equal(kept.status, 200);
  assert.equal(kept.reused, true, 'the open connection was not dropped');
  assert.equal(kept.fpr, one.fpr, 'and keeps the certificate it was opened with');
  agent.destroy();

  // A key that is not the certificate's, then a key file that is not a key.
  fs.copyFileSync(three.key, KEY);
  srv.proc.kill('SIGHUP');
  await logged('tls_reload_failed', 1);
  fs.writeFileSync(KEY, 'not a key\n');
  srv.proc.kill('SIGHUP');
  await logged('tls_reload_failed', 2);
  const fails = srv.logs.map((l) => JSON.parse(l)).filter((j) => j.event === 'tls_reload_failed');
  assert.match(fails[0].msg, /--tls-key .*not the key of the certificate/);
  assert.match(fails[1].msg, /--tls-key .*not an unencrypted PEM private key/);
  assert.equal(fails[0].level, 'error');
  const still = await hreq('GET', '/healthz', { ca: two.pem });
  assert.equal(still.status, 200);
  assert.equal(still.fpr, two.fpr, 'the pair served before is kept');
  // The listener never closed: the server is the same process, still serving.
  assert.equal(srv.proc.exitCode, null);
});

test('start-up: one of the pair alone, a missing file, a bad certificate or a mismatched key stop it', () => {
  const data = initData();
  const serve = (args, env) => cli(['serve', '--data', data.dir, '--listen', '127.0.0.1:0', ...args], { env });
  let r = serve(['--tls-cert', one.crt]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /--tls-key: needed with --tls-cert/);
  r = serve(['--tls-key', one.key]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /--tls-cert: needed with --tls-key/);
  r = serve([], { CONSENTD_TLS_CERT: one.crt });
  assert.equal(r.code, 64, 'the environment is held to the same rule');
  assert.match(r.stderr, /--tls-key/);
  r = serve(['--tls-cert', path.join(dir, 'missing.crt'), '--tls-key', one.key]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--tls-cert .*missing\.crt: cannot open/);
  const junk = path.join(dir, 'junk.crt');
  fs.writeFileSync(junk, 'hello\n');
  r = serve(['--tls-cert', junk, '--tls-key', one.key]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--tls-cert .*not a PEM certificate/);
  r = serve(['--tls-cert', one.crt, '--tls-key', two.key]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not the key of the certificate/);
  assert.ok(!r.stderr.includes('PRIVATE KEY'), 'no key material in the message');
});

test('the environment names the pair like the flags do', async () => {
  const s = await startServer({ noTokens: true,
    env: { CONSENTD_TLS_CERT: three.crt, CONSENTD_TLS_KEY: three.key } });
  try {
    await assert.rejects(fetch(`${s.url}/healthz`));
    const r = await new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: s.port, path: '/healthz', ca: three.pem, agent: false }, (res) => {
        const fpr = res.socket.getPeerCertificate().fingerprint256;
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, fpr }));
      }).on('error', reject);
    });
    assert.equal(r.status, 200);
    assert.equal(r.fpr, three.fpr);
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});
