// SPDX-License-Identifier: ISC
// Data-subject requests over HTTP (SPEC §7, §8): receiving, the status
// machine with each illegal step refused and nothing written, deadlines,
// identity codes, and the effect of each right on the record and on
// the check.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PG, startServer, tmpdir, settledAuditSize, settleOutbox } from './harness.mjs';

let srv;
let DPO;
let CW;
let CR;
before(async () => {
  // Messages are delivered at once (file sender, outside the data directory,
  // which the forensics test searches whole).
  srv = await startServer({ env: { CONSENTD_OUTBOX_DIR: tmpdir('consentd-mail-'),
    CONSENTD_OUTBOX_BASE_MS: '200' } });
  DPO = srv.tokens['dsr:admin'];
  CW = srv.tokens['consent:write'];
  CR = srv.tokens['consent:read'];
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

let seq = 0;
const email = () => `email:dsr${process.pid}x${++seq}@example.com`;

function dbtool(...args) {
  const r = spawnSync(process.env.CONSENTD_DBTOOL, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}
const settle = () => settleOutbox(srv);
const auditSize = () => settledAuditSize(srv);
async function grant(identifier, purpose = 'newsletter', channel = 'email', method = 'web_form') {
  const r = await srv.req('POST', '/v1/consents', { token: CW,
    body: { identifier, purpose, channel, state: 'granted', method } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
async function check(identifier, purpose = 'newsletter', channel = 'email') {
  const q = new URLSearchParams({ identifier, purpose, channel });
  const r = await srv.req('GET', `/v1/consent/check?${q}`, { token: CR });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
async function create(body, want = 201) {
  const r = await srv.req('POST', '/v1/dsr', { token: DPO, body });
  assert.equal(r.status, want, r.text);
  return r.json;
}
async function act(id, step, body, want = 200) {
  const r = await srv.req('POST', `/v1/dsr/${id}/${step}`, { token: DPO, body });
  assert.equal(r.status, want, `${step}: ${r.text}`);
  return r.json;
}
const steps = (req) => req.timeline.map((t) => t.step);

test('receiving: unverified with a one-month deadline; the same open request is answered again', async () => {
  const e = email();
  await grant(e);
  const r = await create({ type: 'access', identifier: e });
  assert.match(r.id, /^dsr_[a-z2-7]{26}$/);
  assert.equal(r.status, 'identity_unverified');
  assert.equal(r.identifier, e);
  assert.match(r.subject_id, /^sub_/);
  const got = new Date(r.received_at), due = new Date(r.due_at);
  const want = new Date(got);
  want.setUTCMonth(want.getUTCMonth() + 1);
  if (want.getUTCDate() !== got.getUTCDate()) want.setUTCDate(0); // month-end clamp
  assert.equal(due.toISOString(), want.toISOString());
  assert.equal(r.overdue, false);
  assert.ok(r.days_left >= 27 && r.days_left <= 31);
  assert.deepEqual(steps(r), ['received']);
  assert.equal(r.timeline[0].actor, 'token:dsr-admin');
  const again = await create({ type: 'access', identifier: e }, 200);
  assert.equal(again.id, r.id);
  const other = await create({ type: 'objection', identifier: e });
  assert.notEqual(other.id, r.id);
  const ccpa = await create({ type: 'erasure', identifier: e, jurisdiction: 'ccpa' });
  assert.equal(new Date(ccpa.due_at) - new Date(ccpa.received_at), 45 * 86400e3);
});

test('receiving: bad input is a 4xx naming the field, and nothing is written', async () => {
  const e = email();
  const size = await auditSize();
  const cases = [
    [{ identifier: e }, 400, 'missing_field', 'type'],
    [{ type: 'forget_me', identifier: e }, 422, 'unknown_type', 'type'],
    [{ type: 'access' }, 400, 'missing_field', 'identifier'],
    [{ type: 'access', identifier: 'email:not an address' }, 400, 'invalid_identifier', 'identifier'],
    [{ type: 'access', identifier: e, jurisdiction: 'mars' }, 400, 'invalid_field', 'jurisdiction'],
    [{ type: 'access', identifier: e, source: 'Web Form' }, 400, 'invalid_field', 'source'],
    [{ type: 'access', identifier: e, details: [] }, 400, 'invalid_field', 'details'],
    [{ type: 'access', identifier: e, verified: 'yes' }, 400, 'invalid_field', 'verified'],
    [{ type: 'access', identifier: e, colour: 1 }, 400, 'unknown_field', 'colour'],
    [{ type: 'rectification', identifier: e }, 400, 'invalid_field', 'details.changes'],
    [{ type: 'rectification', identifier: e, details: { changes: { nickname: 'x' } } }, 400, 'invalid_field', 'details.changes.nickname'],
    [{ type: 'rectification', identifier: e, details: { changes: { profile: { 'Bad Name': 1 } } } }, 400, 'invalid_field', 'details.changes.profile.Bad Name'],
    [{ type: 'rectification', identifier: e, details: { changes: { add: ['phone:12'] } } }, 400, 'invalid_field', 'details.changes.add[0]'],
  ];
  for (const [body, status, code, field] of cases) {
    const r = await srv.req('POST', '/v1/dsr', { token: DPO, body });
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.error.code, code, r.text);
    assert.equal(r.json.error.field, field, r.text);
  }
  assert.equal(await auditSize(), size, 'nothing was written');
});

test('only dsr:admin reaches the requests', async () => {
  for (const s of ['consent:read', 'consent:write', 'subjects:read', 'subjects:write', 'admin']) {
    const r = await srv.req('GET', '/v1/dsr', { token: srv.tokens[s] });
    assert.equal(r.status, 403, s);
    assert.equal((await srv.req('POST', '/v1/dsr', { token: srv.tokens[s], body: { type: 'access', identifier: email() } })).status, 403);
  }
  assert.equal((await srv.req('GET', '/v1/dsr')).status, 401);
});

test('illegal steps are 409 invalid_transition naming the status, and write nothing', async () => {
  const e = email();
  await grant(e);
  const r = await create({ type: 'erasure', identifier: e });
  const size = await auditSize();
  const bad = [
    ['process', undefined, 409, 'invalid_transition', 'status'],
    ['complete', { note: 'done' }, 409, 'invalid_transition', 'status'],
    ['deny', {}, 400, 'missing_field', 'reason'],
    ['deny', { reason: '   ' }, 400, 'missing_field', 'reason'],
    ['cancel', {}, 400, 'missing_field', 'reason'],
    ['extend', {}, 400, 'missing_field', 'reason'],
    ['verify', { code: '12345' }, 400, 'invalid_field', 'code'],
    ['verify', { code: 'abcdef' }, 400, 'invalid_field', 'code'],
    ['lift', { reason: 'x' }, 409, 'invalid_transition', 'status'],
  ];
  for (const [step, body, status, code, field] of bad) {
    const x = await srv.req('POST', `/v1/dsr/${r.id}/${step}`, { token: DPO, body });
    assert.equal(x.status, status, `${step}: ${x.text}`);
    assert.equal(x.json.error.code, code, `${step}: ${x.text}`);
    assert.equal(x.json.error.field, field, `${step}: ${x.text}`);
    if (code === 'invalid_transition') assert.equal(x.json.error.status, 'identity_unverified');
  }
  assert.equal(await auditSize(), size, 'nothing was written');
  // Extend once; a second time is refused.
  const ext = await act(r.id, 'extend', { reason: 'the request is complex' });
  assert.equal(ext.extended, true);
  const rec = new Date(ext.received_at);
  rec.setUTCMonth(rec.getUTCMonth() + 3);
  assert.ok(Math.abs(new Date(ext.due_at) - rec) < 4 * 86400e3, 'at most three months');
  const size2 = await auditSize();
  const twice = await srv.req('POST', `/v1/dsr/${r.id}/extend`, { token: DPO, body: { reason: 'again' } });
  assert.equal(twice.status, 409, twice.text);
  assert.equal(twice.json.error.code, 'invalid_transition');
  assert.equal(twice.json.error.field, 'extended');
  // Cancelled, nothing further moves it.
  const c = await act(r.id, 'cancel', { reason: 'the requester withdrew it' });
  assert.equal(c.status, 'canceled');
  assert.ok(c.closed_at);
  for (const [step, body] of [['deny', { reason: 'x' }], ['cancel', { reason: 'x' }], ['process', undefined], ['extend', { reason: 'x' }]]) {
    const x = await srv.req('POST', `/v1/dsr/${r.id}/${step}`, { token: DPO, body });
    assert.equal(x.status, 409, `${step}: ${x.text}`);
    assert.equal(x.json.error.status, 'canceled');
  }
  assert.equal(await auditSize(), size2 + 1, 'only the cancellation was written');
  assert.equal((await srv.req('GET', '/v1/dsr/dsr_aaaaaaaaaaaaaaaaaaaaaaaaaa', { token: DPO })).status, 404);
  assert.equal((await srv.req('GET', '/v1/dsr/nonsense', { token: DPO })).status, 404);
});

test('an extension must come before the due date', async () => {
  const e = email();
  const r = await create({ type: 'access', identifier: e });
  await settle(); // the code's delivery writes too: dbtool does not wait for locks
  dbtool('sql', srv.dir, `UPDATE dsr_requests SET due_at = 1000000 WHERE id = '${r.id}'`);
  const got = await srv.req('GET', `/v1/dsr/${r.id}`, { token: DPO });
  assert.equal(got.json.overdue, true);
  assert.ok(got.json.days_left < 0);
  const size = await auditSize();
  const x = await srv.req('POST', `/v1/dsr/${r.id}/extend`, { token: DPO, body: { reason: 'late' } });
  assert.equal(x.status, 409, x.text);
  assert.equal(x.json.error.field, 'due_at');
  assert.equal(await auditSize(), size);
  const over = await srv.req('GET', '/v1/dsr?overdue=true', { token: DPO });
  assert.ok(over.json.requests.some((q) => q.id === r.id));
  assert.ok(over.json.requests.every((q) => q.overdue));
});

test('identity: wrong codes count; the sixth is refused and writes nothing; resend issues a new one', async () => {
  const e = email();
  await grant(e);
  const r = await create({ type: 'access', identifier: e });
  for (let i = 1; i <= 5; i++) {
    const x = await srv.req('POST', `/v1/dsr/${r.id}/verify`, { token: DPO, body: { code: '000000' } });
    // One in a million: the code really is 000000.
    if (x.status === 200) return;
    assert.equal(x.status, 400, x.text);
    assert.equal(x.json.error.code, 'invalid_code');
    assert.match(x.json.error.message, new RegExp(`${5 - i} attempt`));
  }
  const size = await auditSize();
  const sixth = await srv.req('POST', `/v1/dsr/${r.id}/verify`, { token: DPO, body: { code: '000000' } });
  assert.equal(sixth.status, 409, sixth.text);
  assert.equal(sixth.json.error.code, 'code_expired');
  assert.equal(sixth.json.error.field, 'code');
  assert.equal(await auditSize(), size, 'the sixth attempt wrote nothing');
  const got = await srv.req('GET', `/v1/dsr/${r.id}`, { token: DPO });
  assert.equal(got.json.timeline.filter((t) => t.step === 'verify_failed').length, 5);
  const re = await act(r.id, 'resend');
  assert.equal(re.status, 'identity_unverified');
  assert.equal(steps(re).at(-1), 'code_sent');
  // A new code: wrong attempts count again from five.
  const x = await srv.req('POST', `/v1/dsr/${r.id}/verify`, { token: DPO, body: { code: '000000' } });
  if (x.status !== 200) assert.match(x.json.error.message, /4 attempts/);
});

test('an attested access request for nobody is answered "no data held"', async () => {
  const e = email();
  const r = await create({ type: 'access', identifier: e, verified: true });
  assert.equal(r.status, 'verified');
  assert.equal(r.subject_id, null);
  assert.equal(r.timeline[1].step, 'verified');
  assert.equal(r.timeline[1].actor, 'token:dsr-admin');
  assert.match(r.timeline[1].reason, /attested/);
  const p = await act(r.id, 'process');
  assert.equal(p.status, 'completed');
  assert.deepEqual(steps(p), ['received', 'verified', 'in_progress', 'no_data_held']);
});

test('erasure: the record goes, "do not contact" stays; only a fresh first-party grant lifts it', async () => {
  const e = email();
  const sub = (await grant(e)).subject_id;
  await grant(e, 'sms_offers', 'sms');
  const r = await create({ type: 'erasure', identifier: e, verified: true });
  const p = await act(r.id, 'process');
  assert.equal(p.status, 'completed');
  assert.deepEqual(steps(p), ['received', 'verified', 'in_progress', 'erased', 'completed']);
  assert.equal(p.identifier, null, 'what was asked is unreadable now');
  const c = await check(e);
  assert.equal(c.decision, 'deny');
  assert.equal(c.reason, 'suppressed');
  for (const method of ['api', 'import']) {
    const x = await srv.req('POST', '/v1/consents', { token: CW,
      body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method } });
    assert.equal(x.status, 409, x.text);
    assert.equal(x.json.error.code, 'suppressed');
  }
  const s = await srv.req('GET', `/v1/subjects/${sub}`, { token: srv.tokens['subjects:read'] });
  assert.equal(s.json.state, 'erased');
  await grant(e, 'newsletter', 'email', 'web_form');
  assert.equal((await check(e)).decision, 'allow');
});

test('restriction: process restricts; lifting tells the subject first, then lifts', async () => {
  const e = email();
  await grant(e);
  const r = await create({ type: 'restriction', identifier: e, verified: true });
  const p = await act(r.id, 'process');
  assert.equal(p.status, 'completed');
  assert.ok(steps(p).includes('restricted'));
  assert.equal((await check(e)).reason, 'restricted');
  assert.equal((await check(e, 'order_updates')).decision, 'deny');
  const n = await act(r.id, 'lift', { reason: 'accuracy confirmed' });
  assert.equal(steps(n).at(-1), 'lift_notice');
  assert.equal((await check(e)).reason, 'restricted', 'not lifted before the notice');
  await settle();
  const l = await act(r.id, 'lift', { reason: 'accuracy confirmed' });
  assert.equal(steps(l).at(-1), 'lifted');
  assert.equal((await check(e)).decision, 'allow');
  const again = await srv.req('POST', `/v1/dsr/${r.id}/lift`, { token: DPO, body: { reason: 'x' } });
  assert.equal(again.status, 409);
});

test('objection: marketing denied, service messages still allowed', async () => {
  const e = email();
  await grant(e);
  const r = await create({ type: 'objection', identifier: e, verified: true });
  assert.equal((await act(r.id, 'process')).status, 'completed');
  assert.equal((await check(e)).reason, 'objected');
  assert.equal((await check(e, 'order_updates')).decision, 'allow');
});

test('rectification: profile and identifiers change as asked', async () => {
  const e = email(), e2 = email();
  const sub = (await grant(e)).subject_id;
  const r = await create({ type: 'rectification', identifier: e, verified: true,
    details: { changes: { profile: { first_name: 'Ana' }, add: [e2] } } });
  assert.deepEqual(r.details.changes.add, [e2]);
  const p = await act(r.id, 'process');
  assert.equal(p.status, 'completed');
  const s = await srv.req('GET', `/v1/subjects/${sub}`, { token: srv.tokens['subjects:read'] });
  assert.equal(s.json.profile.first_name, 'Ana');
  assert.ok(s.json.identifiers.some((i) => i.identifier === e2));
  const r2 = await create({ type: 'rectification', identifier: e, verified: true,
    details: { changes: { remove: [e2], profile: { first_name: null } } } });
  await act(r2.id, 'process');
  const s2 = await srv.req('GET', `/v1/subjects/${sub}`, { token: srv.tokens['subjects:read'] });
  assert.equal(s2.json.profile.first_name, undefined);
  assert.ok(!s2.json.identifiers.some((i) => i.identifier === e2));
});

test('denial: a reason, a final status, and the story in the timeline and the audit log', async () => {
  const e = email();
  await grant(e);
  const r = await create({ type: 'portability', identifier: e, verified: true });
  const d = await act(r.id, 'deny', { reason: 'manifestly unfounded: a duplicate of a completed request' });
  assert.equal(d.status, 'denied');
  assert.equal(d.timeline.at(-1).reason, 'manifestly unfounded: a duplicate of a completed request');
  const idx = d.timeline.map((t) => t.audit_index);
  const ents = await srv.req('GET', `/v1/audit/entries?from=${idx[0]}&to=${idx.at(-1) + 1}`,
    { token: srv.tokens['audit:read'] });
  const types = ents.text.trim().split('\n').map((l) => JSON.parse(Buffer.from(JSON.parse(l).entry, 'base64')))
    .filter((en) => JSON.stringify(en).includes(r.id)).map((en) => en.type);
  assert.deepEqual(types, ['dsr.received', 'dsr.verified', 'dsr.denied']);
  assert.ok(!ents.text.includes(Buffer.from('manifestly').toString('base64')));
});

test('the list: filters, sorted by due date, paged by cursor', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await create({ type: 'objection', identifier: email() })).id);
  const seen = [];
  let cursor;
  for (;;) {
    const q = new URLSearchParams({ type: 'objection', status: 'identity_unverified', limit: '2' });
    if (cursor) q.set('cursor', cursor);
    const r = await srv.req('GET', `/v1/dsr?${q}`, { token: DPO });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.requests.length <= 2);
    for (const x of r.json.requests) {
      assert.equal(x.type, 'objection');
      assert.equal(x.status, 'identity_unverified');
      seen.push(x);
    }
    if (!r.json.next_cursor) break;
    cursor = r.json.next_cursor;
  }
  for (const id of ids) assert.ok(seen.some((x) => x.id === id));
  const dues = seen.map((x) => x.due_at);
  assert.deepEqual([...dues].sort(), dues);
  for (const [q, field] of [['status=sleeping', 'status'], ['type=forget', 'type'], ['limit=0', 'limit'],
    ['cursor=xyz', 'cursor'], ['overdue=maybe', 'overdue'], ['subject=bob', 'subject'], ['colour=red', 'colour']]) {
    const r = await srv.req('GET', `/v1/dsr?${q}`, { token: DPO });
    assert.ok(r.status === 400 || r.status === 422, `${q}: ${r.text}`);
    assert.equal(r.json.error.field, field, r.text);
  }
});

test('after an erasure, nothing of the person can be found, even with the master key', async () => {
  const e = email();
  const phone = `phone:+4477009${String(process.pid % 100000).padStart(5, '0')}`;
  const r0 = await srv.req('POST', '/v1/subjects', { token: srv.tokens['subjects:write'],
    body: { identifiers: [e, phone], profile: { first_name: 'Zebulon', city: 'Quixotown' } } });
  assert.equal(r0.status, 201, r0.text);
  await grant(e);
  const needles = [e.slice('email:'.length), phone.slice('phone:'.length), 'Zebulon', 'Quixotown'];
  const forensics = () => {
    const r = spawnSync(process.env.CONSENTD_DBTOOL, ['forensics', srv.dir, ...needles], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  if (PG) {
    // PostgreSQL never holds a value in the clear: pg_dump of the whole
    // database, searched for each as text and as the hex pg_dump writes
    // bytea in.
    const uri = new URL(fs.readFileSync(path.join(srv.dir, 'store'), 'utf8').trim());
    const d = spawnSync('pg_dump', ['-h', PG, '-U', 'postgres', '-d', uri.pathname.slice(1)],
      { encoding: 'utf8', maxBuffer: 1 << 28 });
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout, /COPY public\.identifiers /);
    for (const n of needles) {
      assert.ok(!d.stdout.includes(n), `pg_dump holds ${n}`);
      assert.ok(!d.stdout.includes(Buffer.from(n).toString('hex')), `pg_dump holds ${n} as bytes`);
    }
  }
  // The tool finds what is there: every value, by decryption under the subject's key.
  const before = forensics();
  for (let i = 0; i < needles.length; i++) assert.match(before, new RegExp(`needle ${i}\\b`), before);
  const r = await create({ type: 'erasure', identifier: e, verified: true });
  assert.equal((await act(r.id, 'process')).status, 'completed');
  await settle();
  const afterwards = forensics();
  assert.match(afterwards, /^0 hits/m, afterwards);
  for (const n of needles) assert.ok(!srv.logs.some((l) => l.includes(n)), `log holds ${n}`);
  const ents = await srv.req('GET', '/v1/audit/entries?from=0&to=' + await auditSize(),
    { token: srv.tokens['audit:read'] });
  for (const line of ents.text.trim().split('\n')) {
    const en = Buffer.from(JSON.parse(line).entry, 'base64').toString();
    for (const n of needles) assert.ok(!en.includes(n), `audit entry holds ${n}`);
  }
});

test('a merge carries the merged-away subject\'s requests over, still readable', async () => {
  const a = email(), b = email();
  const sa = (await grant(a)).subject_id, sb = (await grant(b)).subject_id;
  const r = await create({ type: 'access', identifier: b });
  const m = await srv.req('POST', '/v1/subjects/merge', { token: srv.tokens['subjects:write'],
    body: { into: sa, from: sb } });
  assert.equal(m.status, 200, m.text);
  const got = await srv.req('GET', `/v1/dsr/${r.id}`, { token: DPO });
  assert.equal(got.status, 200, got.text);
  assert.equal(got.json.subject_id, sa);
  assert.equal(got.json.identifier, b);
  const v = await act(r.id, 'cancel', { reason: 'asked twice' });
  assert.equal(v.status, 'canceled');
});
