// SPDX-License-Identifier: ISC
// A store that fails must never turn into an allow. These tests run a build
// of consentd with store fault injection (build/tests/consentd-faults; the
// shipped binary has none): while DATA/FAULT names a fault, the store's read
// or write transactions fail as a busy or broken disk makes them fail. The
// check, the batch checks and the writes must answer 503, write nothing, and
// recover when the fault clears.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startServer } from './harness.mjs';

let srv;
before(async () => {
  srv = await startServer({ bin: process.env.CONSENTD_FAULTS_BIN });
});
after(async () => {
  fs.rmSync(path.join(srv.dir, 'FAULT'), { force: true });
  const r = await srv.stop();
  assert.equal(r.code, 0);
});

const fault = (what) => {
  if (what) fs.writeFileSync(path.join(srv.dir, 'FAULT'), what);
  else fs.rmSync(path.join(srv.dir, 'FAULT'), { force: true });
};
const E = 'email:faults@example.com';
const Q = `/v1/consent/check?identifier=${encodeURIComponent(E)}&purpose=newsletter&channel=email`;

test('a check the store cannot answer is 503, never allow', async () => {
  const w = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    body: { identifier: E, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(w.status, 201, w.text);
  assert.equal((await srv.req('GET', Q, { token: srv.tokens['consent:read'] })).json.decision, 'allow');
  for (const f of ['read_busy', 'read_ioerr']) {
    fault(f);
    const r = await srv.req('GET', Q, { token: srv.tokens['consent:read'] });
    assert.equal(r.status, 503, f);
    assert.equal(r.json.error.code, 'unavailable');
    assert.ok(!r.text.includes('allow'), f);
    const b = await srv.req('POST', '/v1/consent/check', { token: srv.tokens['consent:read'],
      body: { checks: [{ identifier: E, purpose: 'newsletter', channel: 'email' }] } });
    assert.equal(b.status, 503, `${f} batch`);
    assert.ok(!b.text.includes('allow'));
    const n = await srv.req('POST', '/v1/consent/check', { token: srv.tokens['consent:read'],
      raw: `${JSON.stringify({ identifier: E, purpose: 'newsletter', channel: 'email' })}\n`,
      headers: { 'content-type': 'application/x-ndjson' } });
    assert.equal(n.status, 503, `${f} ndjson`);
    assert.ok(!n.text.includes('allow'));
  }
  fault(null);
  assert.equal((await srv.req('GET', Q, { token: srv.tokens['consent:read'] })).json.decision, 'allow', 'recovers');
});

test('with the store failing, a GET still checks the token first: 401 without one, 503 with one', async () => {
  fault('read_busy');
  const noTok = await srv.req('GET', Q);
  assert.equal(noTok.status, 401);
  const badTok = await srv.req('GET', Q, { token: 'cmt_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
  assert.equal(badTok.status, 401);
  const ok = await srv.req('GET', Q, { token: srv.tokens['consent:read'] });
  assert.equal(ok.status, 503);
  fault(null);
});

test('a write the store cannot make is 503 and leaves no trace', async () => {
  const sid = (await srv.req('GET', `/v1/subjects/resolve?identifier=${encodeURIComponent(E)}`,
    { token: srv.tokens['consent:read'] })).json.subject_id;
  const before = (await srv.req('GET', `/v1/subjects/${sid}/consents?history=true`, { token: srv.tokens['consent:read'] })).json;
  for (const f of ['write_busy', 'write_ioerr']) {
    fault(f);
    const calls = [
      ['POST', '/v1/consents', 'consent:write', { identifier: E, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'api' }],
      ['PUT', `/v1/subjects/${sid}/preferences`, 'consent:write', { channels: { email: false } }],
      ['POST', `/v1/subjects/${sid}/unsubscribe`, 'consent:write', { reason: 'other' }],
      ['POST', '/v1/subjects', 'subjects:write', { identifiers: ['email:new-in-fault@example.com'] }],
      ['POST', '/v1/suppressions', 'consent:write', { identifier: E, reason: 'manual' }],
    ];
    for (const [m, p, scope, body] of calls) {
      const r = await srv.req(m, p, { token: srv.tokens[scope], body });
      assert.equal(r.status, 503, `${f} ${m} ${p}: ${r.text}`);
    }
  }
  fault(null);
  const afterH = (await srv.req('GET', `/v1/subjects/${sid}/consents?history=true`, { token: srv.tokens['consent:read'] })).json;
  assert.deepEqual(afterH, before, 'nothing was written');
  assert.equal((await srv.req('GET', Q, { token: srv.tokens['consent:read'] })).json.decision, 'allow');
  assert.equal((await srv.req('GET', '/v1/subjects/resolve?identifier=email%3Anew-in-fault%40example.com',
    { token: srv.tokens['consent:read'] })).status, 404);
  assert.equal((await srv.req('GET', `/v1/suppressions/check?identifier=${encodeURIComponent(E)}`,
    { token: srv.tokens['consent:read'] })).json.suppressed, false);
});

test('requests: every route answers 503 while the store fails, and nothing is written', async () => {
  const DPO = srv.tokens['dsr:admin'];
  const made = await srv.req('POST', '/v1/dsr', { token: DPO, body: { type: 'erasure', identifier: E, verified: true } });
  assert.equal(made.status, 201, made.text);
  const id = made.json.id;
  const steps = made.json.timeline.length;
  for (const f of ['write_busy', 'write_ioerr']) {
    fault(f);
    const calls = [
      ['POST', '/v1/dsr', { type: 'access', identifier: 'email:dsr-in-fault@example.com' }],
      ['POST', `/v1/dsr/${id}/process`],
      ['POST', `/v1/dsr/${id}/extend`, { reason: 'complex' }],
      ['POST', `/v1/dsr/${id}/deny`, { reason: 'no' }],
      ['POST', `/v1/dsr/${id}/cancel`, { reason: 'no' }],
      ['POST', `/v1/dsr/${id}/verify`, { code: '123456' }],
      ['POST', `/v1/dsr/${id}/resend`],
      ['POST', `/v1/dsr/${id}/complete`, { note: 'x' }],
      ['POST', `/v1/dsr/${id}/lift`, { reason: 'x' }],
    ];
    for (const [m, p, body] of calls) {
      const r = await srv.req(m, p, { token: DPO, body });
      assert.equal(r.status, 503, `${f} ${m} ${p}: ${r.text}`);
    }
  }
  for (const f of ['read_busy', 'read_ioerr']) {
    fault(f);
    for (const p of ['/v1/dsr', `/v1/dsr/${id}`]) {
      const r = await srv.req('GET', p, { token: DPO });
      assert.equal(r.status, 503, `${f} ${p}: ${r.text}`);
    }
  }
  fault(null);
  const got = await srv.req('GET', `/v1/dsr/${id}`, { token: DPO });
  assert.equal(got.json.status, 'verified');
  assert.equal(got.json.timeline.length, steps, 'nothing was written');
  assert.equal(got.json.extended, false);
  const list = await srv.req('GET', '/v1/dsr?type=access', { token: DPO });
  assert.equal(list.json.requests.length, 0);
  assert.equal((await srv.req('GET', Q, { token: srv.tokens['consent:read'] })).json.decision, 'allow', 'not erased');
});

test('packages: the download answers 503 while the store fails; a failed build leaves no file', async () => {
  const DPO = srv.tokens['dsr:admin'];
  const who = 'email:package-in-fault@example.com';
  const g = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    body: { identifier: who, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(g.status, 201, g.text);
  const made = await srv.req('POST', '/v1/dsr', { token: DPO, body: { type: 'access', identifier: who, verified: true } });
  assert.equal(made.status, 201, made.text);
  const pdir = path.join(srv.dir, 'packages');
  const files = () => (fs.existsSync(pdir) ? fs.readdirSync(pdir).sort() : []);
  const none = files();
  for (const f of ['write_busy', 'write_ioerr']) {
    fault(f);
    const r = await srv.req('POST', `/v1/dsr/${made.json.id}/process`, { token: DPO });
    assert.equal(r.status, 503, `${f}: ${r.text}`);
    assert.deepEqual(files(), none, 'no package file is left');
  }
  fault(null);
  const p = await srv.req('POST', `/v1/dsr/${made.json.id}/process`, { token: DPO });
  assert.equal(p.status, 200, p.text);
  assert.equal(files().length, none.length + 1);
  for (const f of ['read_busy', 'read_ioerr']) {
    fault(f);
    const r = await srv.req('GET', `/v1/dsr/${made.json.id}/package`, { token: DPO });
    assert.equal(r.status, 503, `${f}: ${r.text}`);
  }
  fault(null);
  const ok = await srv.req('GET', `/v1/dsr/${made.json.id}/package`, { token: DPO });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(JSON.parse(ok.text).format, 'consentd-export/1');
});
