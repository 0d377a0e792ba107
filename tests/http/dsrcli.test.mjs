// SPDX-License-Identifier: ISC
// consentd dsr: the DPO's steps from the command line, against a running
// server's store: each step is the same as over HTTP (timeline, audit
// entry, actor "cli"), an illegal or incomplete one fails clearly and
// writes nothing, and a wrong code is an attempt that is kept.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cli, POLICY, startServer, tmpdir, settledAuditSize } from './harness.mjs';

let srv;
let DPO;
before(async () => {
  srv = await startServer({ env: { CONSENTD_OUTBOX_DIR: tmpdir('consentd-mail-'),
    CONSENTD_OUTBOX_BASE_MS: '200' } });
  DPO = srv.tokens['dsr:admin'];
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

let seq = 0;
const email = () => `email:cli${process.pid}x${++seq}@example.com`;
const dsr = (...args) => cli(['dsr', ...args, '--data', srv.dir, '--policy', POLICY]);

const auditSize = () => settledAuditSize(srv);
async function request(type, verified, identifier = email()) {
  const r = await srv.req('POST', '/v1/dsr', { token: DPO,
    body: { type, identifier, jurisdiction: 'gdpr', source: 'email', verified } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

test('list shows requests sorted by due date, filtered, and as JSON lines', async () => {
  const a = await request('access', false);
  const b = await request('objection', true);
  const all = dsr('list');
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /^ID +STATUS +TYPE +DUE +DAYS\n/);
  assert.ok(all.stdout.includes(a.id) && all.stdout.includes(b.id));
  const only = dsr('list', '--status', 'verified', '--json');
  assert.equal(only.code, 0, only.stderr);
  const rows = only.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(rows.every((r) => r.status === 'verified'));
  assert.ok(rows.some((r) => r.id === b.id) && !rows.some((r) => r.id === a.id));
  const dues = rows.map((r) => r.due_at);
  assert.deepEqual(dues, [...dues].sort());
  const bad = dsr('list', '--status', 'nonsense');
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /--status/);
});

test('extend, then extend again: the second is refused and writes nothing', async () => {
  const r = await request('access', false);
  const before = await auditSize();
  const ok = dsr('extend', r.id, '--reason', 'the archive is offsite');
  assert.equal(ok.code, 0, ok.stderr);
  const shown = JSON.parse(ok.stdout);
  assert.equal(shown.extended, true);
  const step = shown.timeline.find((t) => t.step === 'extended');
  assert.equal(step.actor, 'cli');
  // The step's entry, and the delivery of the notice it queued.
  const mid = await auditSize();
  assert.ok(mid > before);
  const again = dsr('extend', r.id, '--reason', 'again');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /invalid_transition/);
  assert.equal(await auditSize(), mid);
});

test('deny and cancel need a reason; without one nothing is written', async () => {
  const r = await request('erasure', false);
  const before = await auditSize();
  for (const sub of ['deny', 'cancel']) {
    const none = dsr(sub, r.id);
    assert.equal(none.code, 1, sub);
    assert.match(none.stderr, /missing_field \(reason\)/);
    const blank = dsr(sub, r.id, '--reason', '   ');
    assert.equal(blank.code, 1, sub);
  }
  const wrong = dsr('deny', r.id, '--note', 'a note is not a reason');
  assert.equal(wrong.code, 64);
  assert.equal(await auditSize(), before);
  const got = await srv.req('GET', `/v1/dsr/${r.id}`, { token: DPO });
  assert.equal(got.json.status, 'identity_unverified');
});

test('process an unverified request is refused; a verified one runs', async () => {
  const u = await request('objection', false);
  const refused = dsr('process', u.id);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /invalid_transition/);
  const who = email();
  const g = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    body: { identifier: who, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(g.status, 201, g.text);
  const v = await request('objection', true, who);
  const ok = dsr('process', v.id);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).status, 'completed');
  const show = dsr('show', v.id);
  assert.equal(show.code, 0, show.stderr);
  assert.ok(JSON.parse(show.stdout).timeline.some((t) => t.step === 'objected' && t.actor === 'cli'));
});

test('a wrong code from stdin is an attempt that is kept', async () => {
  const r = await request('access', false);
  const before = await auditSize();
  const bad = cli(['dsr', 'verify', r.id, '--data', srv.dir, '--policy', POLICY], { input: '000000\n' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid_code/);
  assert.ok(!bad.stderr.includes('000000'));
  const got = await srv.req('GET', `/v1/dsr/${r.id}`, { token: DPO });
  assert.equal(got.json.status, 'identity_unverified');
  assert.ok(await auditSize() > before, 'the attempt is recorded');
});

test('an unknown request and a bad command line fail clearly', async () => {
  const none = dsr('show', 'dsr_aaaaaaaaaaaaaaaaaaaaaaaaaa');
  assert.equal(none.code, 1);
  assert.match(none.stderr, /not_found/);
  assert.equal(cli(['dsr', 'frobnicate']).code, 64);
  assert.equal(cli(['dsr', 'show']).code, 64);
  assert.equal(dsr('list', '--limit', '0').code, 64);
});
