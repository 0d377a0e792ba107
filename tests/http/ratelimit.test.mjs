// SPDX-License-Identifier: ISC
// Rate limits: each budget, once spent, answers 429 in the error envelope
// with Retry-After and writes nothing (the audit log's size is unchanged,
// the consent stays as it was); another token, link, request or client
// address is unaffected; budgets refill. Other client addresses are other
// loopback addresses (127.0.0.2, …) connecting to the server's 127.0.0.1.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { cli, initData, startServer, tmpdir, settledAuditSize } from './harness.mjs';

// The link, unsubscribe and verification budgets, refilled slowly (one every
// 75 s to 200 s) so that nothing refills while a test runs.
let srv;
// Per-token and failed-authentication budgets, and a quick refill.
let srv2;
before(async () => {
  [srv, srv2] = await Promise.all([
    startServer({ env: { CONSENTD_OUTBOX_DIR: tmpdir('consentd-mail-'), CONSENTD_OUTBOX_BASE_MS: '200' },
      args: ['--rate-link', '3/600', '--rate-link-address', '8/600',
        '--rate-unsubscribe', '3/600', '--rate-unsubscribe-address', '8/600',
        '--rate-verify', '3/600', '--rate-verify-address', '8/600'] }),
    startServer({ args: ['--rate-token', '10/1200', '--rate-auth-failures', '3/600',
      '--rate-link', '2/2'] }),
  ]);
});
after(async () => {
  const [a, b] = await Promise.all([srv.stop(), srv2.stop()]);
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
});

// A request to S from the local address FROM (default 127.0.0.1).
function req(s, method, p, { from = '127.0.0.1', token, body, raw, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let b = raw;
  if (body !== undefined) { b = JSON.stringify(body); h['content-type'] = 'application/json'; }
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port: s.port, method, path: p, headers: h,
      localAddress: from, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    r.on('error', reject);
    if (b !== undefined) r.write(b);
    r.end();
  });
}

// A 429 of budget BUDGET: the envelope, Retry-After in whole seconds, closed.
function limited(r, budget) {
  assert.equal(r.status, 429, r.text);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  assert.deepEqual(Object.keys(r.json), ['error']);
  assert.equal(r.json.error.code, 'rate_limited');
  assert.equal(r.json.error.field, null);
  assert.equal(r.json.error.budget, budget);
  assert.match(r.json.error.message, /try again in \d+ seconds?/);
  assert.match(r.headers['retry-after'], /^[1-9]\d*$/);
  assert.equal(r.headers.connection, 'close');
}

let seq = 0;
const email = () => `email:rate${process.pid}x${++seq}@example.com`;
async function grant(s, identifier, token = s.tokens['consent:write']) {
  const r = await req(s, 'POST', '/v1/consents', { token,
    body: { identifier, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(r.status, 201, r.text);
  return r.json.subject_id;
}
async function links(s, sid) {
  const r = await req(s, 'POST', `/v1/subjects/${sid}/preference-link`, { token: s.tokens['subjects:write'], body: {} });
  assert.equal(r.status, 201, r.text);
  return { p: new URL(r.json.url).pathname, u: new URL(r.json.unsubscribe_url).pathname };
}
async function allowed(s, identifier) {
  const q = new URLSearchParams({ identifier, purpose: 'newsletter', channel: 'email' });
  const r = await req(s, 'GET', `/v1/consent/check?${q}`, { token: s.tokens['consent:read'] });
  assert.equal(r.status, 200, r.text);
  return r.json.decision === 'allow';
}

test('a preference link: three opens, then 429 for that link alone; then the address budget', async () => {
  const [a, b] = [await links(srv, await grant(srv, email())), await links(srv, await grant(srv, email()))];
  for (let i = 0; i < 3; i++)
    assert.equal((await req(srv, 'GET', a.p)).status, 303, `open ${i + 1}`);
  const size = await settledAuditSize(srv);
  const r = await req(srv, 'GET', a.p);
  limited(r, 'link');
  assert.equal(r.headers['set-cookie'], undefined, 'no session started');
  assert.equal(await settledAuditSize(srv), size, 'nothing written');
  assert.equal((await req(srv, 'GET', b.p)).status, 303, 'another link is unaffected');
  // 127.0.0.2 sends eight links (made up: they are refused), then is over its budget.
  for (let i = 0; i < 8; i++)
    assert.notEqual((await req(srv, 'GET', `/p/p.made-up-${i}`, { from: '127.0.0.2' })).status, 429);
  limited(await req(srv, 'GET', b.p, { from: '127.0.0.2' }), 'link-address');
  assert.equal((await req(srv, 'GET', `/p/p.made-up-x`, { from: '127.0.0.3' })).status === 429, false,
    'another address is unaffected');
});

test('one-click unsubscribe: the spent link gets 429 and its POST unsubscribes no one', async () => {
  const e = email();
  const mine = await links(srv, await grant(srv, e));
  const other = email();
  const theirs = await links(srv, await grant(srv, other));
  for (let i = 0; i < 3; i++)
    assert.equal((await req(srv, 'GET', mine.u, { from: '127.0.0.4' })).status, 200, `page ${i + 1}`);
  const size = await settledAuditSize(srv);
  const r = await req(srv, 'POST', mine.u, { from: '127.0.0.4', raw: 'List-Unsubscribe=One-Click',
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  limited(r, 'unsubscribe');
  assert.equal(await settledAuditSize(srv), size, 'nothing written');
  assert.equal(await allowed(srv, e), true, 'the 429 changed nothing');
  const ok = await req(srv, 'POST', theirs.u, { from: '127.0.0.4', raw: 'List-Unsubscribe=One-Click',
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(await allowed(srv, other), false, 'another link is unaffected, and its "no" is kept');
  for (let i = 0; i < 3; i++)
    assert.notEqual((await req(srv, 'GET', `/u/u.made-up-${i}`, { from: '127.0.0.4' })).status, 429);
  limited(await req(srv, 'GET', '/u/u.made-up-y', { from: '127.0.0.4' }), 'unsubscribe-address');
});

test('verification codes: three tries per request, then 429 without counting an attempt', async () => {
  const DPO = srv.tokens['dsr:admin'];
  const open = async () => {
    const e = email();
    await grant(srv, e);
    const r = await req(srv, 'POST', '/v1/dsr', { token: DPO, body: { type: 'access', identifier: e } });
    assert.equal(r.status, 201, r.text);
    return r.json.id;
  };
  const [one, two] = [await open(), await open()];
  const tries = [];
  for (let i = 0; i < 3; i++)
    tries.push(await req(srv, 'POST', `/v1/dsr/${one}/verify`, { from: '127.0.0.5', token: DPO, body: { code: '000000' } }));
  // One in a million: the code really is 000000.
  if (tries.some((t) => t.status === 200)) return;
  for (const t of tries) assert.equal(t.json.error.code, 'invalid_code', t.text);
  const size = await settledAuditSize(srv);
  limited(await req(srv, 'POST', `/v1/dsr/${one}/verify`, { from: '127.0.0.5', token: DPO, body: { code: '000000' } }),
    'verify');
  assert.equal(await settledAuditSize(srv), size, 'nothing written');
  const got = await req(srv, 'GET', `/v1/dsr/${one}`, { token: DPO });
  assert.equal(got.json.timeline.filter((t) => t.step === 'verify_failed').length, 3, 'the 429 was no attempt');
  const x = await req(srv, 'POST', `/v1/dsr/${two}/verify`, { from: '127.0.0.5', token: DPO, body: { code: '000000' } });
  assert.notEqual(x.status, 429, 'another request is unaffected');
  // The address: eight in all (five so far: the 429 spent one), then 429 whatever the request.
  for (let i = 0; i < 3; i++)
    assert.notEqual((await req(srv, 'POST', `/v1/dsr/${two}x${i}/verify`, { from: '127.0.0.5', token: DPO,
      body: { code: '000000' } })).status, 429);
  limited(await req(srv, 'POST', `/v1/dsr/${two}/verify`, { from: '127.0.0.5', token: DPO, body: { code: '000000' } }),
    'verify-address');
  assert.notEqual((await req(srv, 'POST', `/v1/dsr/${two}/verify`, { from: '127.0.0.6', token: DPO,
    body: { code: '000000' } })).status, 429, 'another address is unaffected');
});

test('a bearer token over its budget: 429 before the write; another token is unaffected', async () => {
  const CW = srv2.tokens['consent:write'];
  for (let i = 0; i < 10; i++) await grant(srv2, email(), CW);
  const size = await settledAuditSize(srv2);
  const e = email();
  limited(await req(srv2, 'POST', '/v1/consents', { token: CW,
    body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } }), 'token');
  assert.equal(await settledAuditSize(srv2), size, 'nothing written');
  assert.equal(await allowed(srv2, e), false, 'the consent was not recorded');
  const m = await req(srv2, 'GET', '/metrics', { token: srv2.tokens.all });
  assert.equal(m.status, 200);
  assert.match(m.text, /^consentd_http_rate_limited_total\{budget="token"\} [1-9]/m);
});

test('budgets refill: a link spent at 2 per 2 s opens again', async () => {
  const l = await links(srv2, await grant(srv2, email(), srv2.tokens.all));
  let r;
  for (let i = 0; i < 20 && (r = await req(srv2, 'GET', l.p, { from: '127.0.0.7' })).status !== 429; i++)
    assert.equal(r.status, 303);
  limited(r, 'link');
  for (let i = 0; i < 100 && (r = await req(srv2, 'GET', l.p, { from: '127.0.0.7' })).status === 429; i++)
    await new Promise((res) => setTimeout(res, 100));
  assert.equal(r.status, 303, 'the budget refilled');
});

test('failed authentications: after three, the address gets 429 even with a good token; none sent is no attempt', async () => {
  const good = srv2.tokens.all;
  const from = '127.0.0.8';
  for (let i = 0; i < 5; i++)
    assert.equal((await req(srv2, 'GET', '/v1/token', { from })).status, 401, 'no credentials: not an attempt');
  for (let i = 0; i < 3; i++)
    assert.equal((await req(srv2, 'GET', '/v1/token', { from, token: `cmt_${'0'.repeat(16)}_${'A'.repeat(43)}` })).status, 401);
  limited(await req(srv2, 'GET', '/v1/token', { from, token: 'cmt_bad' }), 'auth-failures');
  limited(await req(srv2, 'GET', '/v1/token', { from, token: good }), 'auth-failures');
  const size = await settledAuditSize(srv2);
  limited(await req(srv2, 'POST', '/v1/consents', { from, token: srv2.tokens['consent:write'],
    body: { identifier: email(), purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } }),
    'auth-failures');
  limited(await req(srv2, 'GET', '/v1/me', { from, headers: { cookie: `consentd_session=${'a'.repeat(64)}` } }),
    'auth-failures');
  assert.equal(await settledAuditSize(srv2), size, 'nothing written');
  assert.equal((await req(srv2, 'GET', '/healthz', { from })).status, 200, 'public routes still answer');
  assert.equal((await req(srv2, 'GET', '/v1/token', { from: '127.0.0.9', token: good })).status, 200,
    'another address is unaffected');
  assert.equal((await req(srv2, 'GET', '/v1/token', { from: '127.0.0.9', token: 'cmt_bad' })).status, 401);
});

test('a malformed budget stops the start with the flag named; the environment is held to the same', () => {
  const data = initData();
  for (const v of ['10', '10/0', '-1/60', 'x/60', '10/60s', '10/86401']) {
    const r = cli(['serve', '--data', data.dir, '--listen', '127.0.0.1:0', '--rate-link', v]);
    assert.equal(r.code, 64, v);
    assert.match(r.stderr, /--rate-link: expected COUNT\/SECONDS/, v);
  }
  const r = cli(['serve', '--data', data.dir, '--listen', '127.0.0.1:0'], { env: { CONSENTD_RATE_AUTH_FAILURES: 'lots' } });
  assert.equal(r.code, 64);
  assert.match(r.stderr, /--rate-auth-failures: expected COUNT\/SECONDS/);
  assert.match(r.stderr, /CONSENTD_RATE_AUTH_FAILURES/);
});
