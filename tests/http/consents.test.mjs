// SPDX-License-Identifier: ISC
// The consent ledger over HTTP: recording (every rule of POST /v1/consents),
// the whole SPEC §6 decision table through GET /v1/consent/check, batch and
// streamed checks, history, preferences, unsubscribe, GPC, suppression,
// stale notices, the holdout and merge conflicts; and that a withdrawal is
// denied by the very next check on another connection.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, PG, POLICY, createToken, initData, metricValue, startServer, tmpdir } from './harness.mjs';

let srv;
let CW;
let CR;
before(async () => {
  srv = await startServer();
  CW = srv.tokens['consent:write'];
  CR = srv.tokens['consent:read'];
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

let seq = 0;
const email = () => `shopper${process.pid}x${++seq}@example.com`;

async function record(body, token = CW) {
  return srv.req('POST', '/v1/consents', { token, body });
}
async function grant(identifier, purpose, channel, extra = {}) {
  const r = await record({ identifier, purpose, channel, state: 'granted', method: 'web_form', ...extra });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
async function check(identifier, purpose, channel, s = srv) {
  const q = new URLSearchParams({ identifier, purpose });
  if (channel) q.set('channel', channel);
  const r = await s.req('GET', `/v1/consent/check?${q.toString().replace(/\+/g, '%20')}`, { token: s.tokens['consent:read'] });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
function dbtool(...args) {
  const r = spawnSync(process.env.CONSENTD_DBTOOL, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}
async function auditSize(s = srv) {
  const r = await s.req('GET', '/v1/audit/entries?to=999999999', { token: s.tokens['audit:read'] });
  return Number(r.json.error.message.match(/holds (\d+)/)[1]);
}

test('recording: a new identifier creates its subject; the result names the event and its audit entry', async () => {
  const e = email();
  const r = await record({ identifier: `email:${e.toUpperCase()}`, purpose: 'newsletter', channel: 'email',
    state: 'granted', method: 'web_form', evidence: { url: 'https://shop.example/signup', ip: '203.0.113.7',
      user_agent: 'Mozilla/5.0', notice_sha256: 'a'.repeat(64) } });
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.event_id, /^evt_[a-z2-7]{26}$/);
  assert.equal(r.json.subject_created, true);
  assert.equal(r.json.notice_version, 2, 'defaults to the purpose version');
  assert.equal(r.json.channel, 'email');
  assert.equal(typeof r.json.audit_index, 'number');
  const again = await record({ identifier: `email:${e}`, purpose: 'email_offers', channel: 'email', state: 'granted', method: 'checkout' });
  assert.equal(again.json.subject_created, false);
  assert.equal(again.json.subject_id, r.json.subject_id);
  const hist = await srv.req('GET', `/v1/subjects/${r.json.subject_id}/consents?history=true`, { token: srv.tokens.all });
  assert.equal(hist.json.events.length, 2);
  assert.deepEqual(hist.json.events[0].evidence, { url: 'https://shop.example/signup', ip: '203.0.113.7',
    user_agent: 'Mozilla/5.0', notice_sha256: 'a'.repeat(64) });
  // Evidence is personal data: a consent:read token sees the history without it.
  const bare = await srv.req('GET', `/v1/subjects/${r.json.subject_id}/consents?history=true`, { token: CR });
  assert.equal(bare.json.events.length, 2);
  assert.ok(bare.json.events.every((x) => !('evidence' in x)), 'no evidence without subjects:read');
  assert.ok(!bare.text.includes('203.0.113.7'));
  const cur = await srv.req('GET', `/v1/subjects/${r.json.subject_id}/consents`, { token: CR });
  assert.deepEqual(cur.json.consents.map((c) => [c.purpose, c.channel, c.state]).sort(),
    [['email_offers', 'email', 'granted'], ['newsletter', 'email', 'granted']]);
  const subj = await srv.req('GET', `/v1/subjects/${r.json.subject_id}`, { token: srv.tokens['subjects:read'] });
  assert.equal(subj.json.consents.length, 2);
  assert.equal(subj.json.preferences.frequency, 'weekly');
});

test('recording: a repeated request_id returns the first result and writes nothing', async () => {
  const e = email();
  const body = { identifier: `email:${e}`, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'api', request_id: `req-${seq}` };
  const first = await record(body);
  assert.equal(first.status, 201);
  const size = await auditSize();
  const second = await record(body);
  assert.equal(second.status, 201);
  assert.deepEqual(second.json, first.json);
  assert.equal(await auditSize(), size, 'nothing was written');
  // The same request id with another body is refused, not replayed.
  const reused = await record({ ...body, state: 'withdrawn' });
  assert.equal(reused.status, 409);
  assert.equal(reused.json.error.code, 'request_id_reused');
  assert.equal(await auditSize(), size, 'nothing was written');
  assert.equal((await check(`email:${e}`, 'newsletter', 'email')).decision, 'allow');
  // Another token's request id of the same name is its own.
  const other = await record(body, srv.tokens.all);
  assert.notEqual(other.json.event_id, first.json.event_id);
});

test('recording: malformed input is a 4xx naming the field, and writes nothing', async () => {
  const e = `email:${email()}`;
  const size = await auditSize();
  const future = new Date(Date.now() + 10 * 60 * 1000).toISOString();
  const cases = [
    [{ purpose: 'newsletter', state: 'granted', method: 'api' }, 400, 'missing_field', 'identifier'],
    [{ identifier: e, subject_id: 'sub_x', purpose: 'newsletter', state: 'granted', method: 'api' }, 400, 'invalid_field', 'subject_id'],
    [{ identifier: 'email:nope', purpose: 'newsletter', state: 'granted', method: 'api' }, 400, 'invalid_identifier', 'identifier'],
    [{ identifier: e, purpose: 'nonsense', state: 'granted', method: 'api' }, 422, 'unknown_purpose', 'purpose'],
    [{ identifier: e, purpose: 'newsletter', channel: 'fax', state: 'granted', method: 'api' }, 422, 'unknown_channel', 'channel'],
    [{ identifier: e, purpose: 'newsletter', channel: 'sms', state: 'granted', method: 'api' }, 422, 'channel_not_used', 'channel'],
    [{ identifier: e, purpose: 'newsletter', state: 'maybe', method: 'api' }, 400, 'invalid_field', 'state'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'carrier_pigeon' }, 400, 'invalid_field', 'method'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted' }, 400, 'missing_field', 'method'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'api', notice_version: 3 }, 400, 'invalid_field', 'notice_version'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'api', collected_at: future }, 400, 'invalid_field', 'collected_at'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'api', collected_at: 'yesterday' }, 400, 'invalid_field', 'collected_at'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'api', evidence: { ip: 1 } }, 400, 'invalid_field', 'evidence.ip'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'api', evidence: { cookie: 'x' } }, 400, 'unknown_field', 'evidence.cookie'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'api', request_id: 'has space' }, 400, 'invalid_field', 'request_id'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'api', colour: 'red' }, 400, 'unknown_field', 'colour'],
    // The name comes back as sent (escaped once, by JSON), cut at a character.
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'api', 'col"our\\': 1 }, 400, 'unknown_field', 'col"our\\'],
    [{ identifier: e, purpose: 'newsletter', state: 'granted', method: 'api', ['é'.repeat(40)]: 1 }, 400, 'unknown_field', 'é'.repeat(32)],
    [{ identifier: e, purpose: 'newsletter', method: 'gpc' }, 422, 'not_gpc_purpose', 'purpose'],
    [{ identifier: e, method: 'gpc', state: 'granted' }, 400, 'invalid_field', 'state'],
    [{ subject_id: 'sub_aaaaaaaaaaaaaaaaaaaaaaaaaa', purpose: 'newsletter', state: 'granted', method: 'api' }, 404, 'not_found', 'subject_id'],
  ];
  for (const [body, status, code, field] of cases) {
    const r = await record(body);
    assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.text}`);
    assert.equal(r.json.error.code, code, JSON.stringify(body));
    assert.equal(r.json.error.field, field, JSON.stringify(body));
  }
  const past = new Date(Date.now() - 86400000).toISOString();
  const ok = await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'api', collected_at: past });
  assert.equal(ok.status, 201, 'a past collected_at is fine');
  const soon = new Date(Date.now() + 60 * 1000).toISOString();
  assert.equal((await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'api', collected_at: soon })).status, 201,
    'clock skew under 5 minutes is allowed');
  assert.equal(await auditSize(), size + 3, 'only the two good requests wrote (one of them created the subject)');
});

test('decision table: consent, withdrawn, refused, no_consent, all-channels, and the newer event wins', async () => {
  const e = `email:${email()}`;
  assert.equal((await check(e, 'newsletter', 'email')).reason, 'unknown_subject');
  await grant(e, 'order_updates', null, { state: 'granted' });
  let c = await check(e, 'newsletter', 'email');
  assert.deepEqual([c.decision, c.reason], ['deny', 'no_consent']);
  await grant(e, 'email_offers', null);
  c = await check(e, 'email_offers', 'email');
  assert.deepEqual([c.decision, c.reason, c.lawful_basis], ['allow', 'consent', 'consent']);
  assert.match(c.event_id, /^evt_/);
  await record({ identifier: e, purpose: 'email_offers', channel: 'email', state: 'withdrawn', method: 'email_link' });
  assert.equal((await check(e, 'email_offers', 'email')).reason, 'withdrawn');
  // An all-channels grant newer than the channel's withdrawal wins, and the other way round.
  await grant(e, 'email_offers', null);
  assert.equal((await check(e, 'email_offers', 'email')).decision, 'allow');
  await grant(e, 'sms_offers', 'sms');
  await record({ identifier: e, purpose: 'sms_offers', state: 'withdrawn', method: 'phone' });
  assert.equal((await check(e, 'sms_offers', 'sms')).reason, 'withdrawn');
  await record({ identifier: e, purpose: 'recommendations', channel: 'push', state: 'refused', method: 'in_store' });
  assert.equal((await check(e, 'recommendations', 'push')).reason, 'withdrawn', 'refused denies as withdrawn');
});

test('decision table: lawful bases other than consent', async () => {
  const e = `email:${email()}`;
  await grant(e, 'newsletter', 'email');
  let c = await check(e, 'review_requests', 'email');
  assert.deepEqual([c.decision, c.reason, c.lawful_basis], ['allow', 'legitimate_interest', 'legitimate_interest']);
  c = await check(e, 'basket_reminders', 'push');
  assert.deepEqual([c.decision, c.reason], ['deny', 'no_relationship'], 'no sale, no soft opt-in');
  await grant(e, 'basket_reminders', null, { method: 'checkout', evidence: { sale_reference: 'order-77' } });
  c = await check(e, 'basket_reminders', 'push');
  assert.deepEqual([c.decision, c.reason], ['allow', 'soft_opt_in']);
  assert.deepEqual([(await check(e, 'order_updates', 'sms')).reason, (await check(e, 'fraud_prevention')).reason],
    ['contract', 'legitimate_interest']);
  await record({ identifier: e, purpose: 'basket_reminders', channel: 'push', state: 'withdrawn', method: 'email_link' });
  assert.equal((await check(e, 'basket_reminders', 'push')).reason, 'withdrawn');
  await record({ identifier: e, purpose: 'review_requests', state: 'withdrawn', method: 'api' });
  assert.equal((await check(e, 'review_requests', 'sms')).reason, 'withdrawn');
  await record({ identifier: e, purpose: 'order_updates', state: 'withdrawn', method: 'api' });
  assert.equal((await check(e, 'order_updates', 'email')).decision, 'allow', 'a contract purpose is not withdrawn by consent');
  // Check input errors.
  let r = await srv.req('GET', '/v1/consent/check?identifier=email%3Ax%40y.example&purpose=nope&channel=email', { token: CR });
  assert.equal(r.status, 422);
  r = await srv.req('GET', '/v1/consent/check?identifier=email%3Ax%40y.example&purpose=newsletter&channel=sms', { token: CR });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'channel_not_used');
  r = await srv.req('GET', '/v1/consent/check?identifier=email%3Ax%40y.example&purpose=newsletter', { token: CR });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.field, 'channel');
  r = await srv.req('GET', '/v1/consent/check?identifier=bad&purpose=newsletter&channel=email', { token: CR });
  assert.equal(r.json.error.code, 'invalid_identifier');
  r = await srv.req('GET', '/v1/consent/check?purpose=newsletter&channel=email', { token: CR });
  assert.equal(r.json.error.field, 'identifier');
});

test('decision table: suppression, restriction, objection, pause (rules 1-4, in order)', async () => {
  const a = `email:${email()}`;
  const sa = (await grant(a, 'newsletter', 'email')).subject_id;
  // 1. Suppression: unsubscribed stops marketing only; bounced stops everything.
  let r = await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: a, reason: 'unsubscribed' } });
  assert.equal(r.status, 201);
  assert.equal((await check(a, 'newsletter', 'email')).reason, 'suppressed');
  assert.equal((await check(a, 'order_updates', 'email')).decision, 'allow');
  const b = `email:${email()}`;
  await grant(b, 'newsletter', 'email');
  await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: b, reason: 'bounced' } });
  assert.equal((await check(b, 'order_updates', 'email')).reason, 'suppressed');
  const nobody = `email:${email()}`;
  await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: nobody, reason: 'complained' } });
  assert.equal((await check(nobody, 'newsletter', 'email')).reason, 'suppressed', 'suppression comes before unknown_subject');
  assert.equal((await check(nobody, 'order_updates', 'email')).reason, 'unknown_subject');
  // 2-4 on a fresh subject, so suppression does not decide first.
  const c = `email:${email()}`;
  const sc = (await grant(c, 'newsletter', 'email')).subject_id;
  let put = await srv.req('PUT', `/v1/subjects/${sc}/preferences`, { token: CW,
    body: { paused_until: new Date(Date.now() + 86400000).toISOString() } });
  assert.equal(put.status, 200, put.text);
  assert.equal((await check(c, 'newsletter', 'email')).reason, 'paused');
  assert.equal((await check(c, 'order_updates', 'email')).decision, 'allow', 'a pause is for marketing only');
  dbtool('object', srv.dir, sc);
  assert.equal((await check(c, 'newsletter', 'email')).reason, 'objected', 'objection comes before the pause');
  assert.equal((await check(c, 'review_requests', 'email')).decision, 'allow');
  dbtool('restrict', srv.dir, sc);
  assert.equal((await check(c, 'newsletter', 'email')).reason, 'restricted');
  assert.equal((await check(c, 'order_updates', 'email')).reason, 'restricted', 'restriction stops every purpose');
  put = await srv.req('PUT', `/v1/subjects/${sa}/preferences`, { token: CW, body: { paused_until: null } });
  assert.equal(put.status, 200);
  // A past pause does not deny.
  const d = `email:${email()}`;
  const sd = (await grant(d, 'newsletter', 'email')).subject_id;
  await srv.req('PUT', `/v1/subjects/${sd}/preferences`, { token: CW, body: { paused_until: '2020-01-01T00:00:00Z' } });
  assert.equal((await check(d, 'newsletter', 'email')).decision, 'allow');
});

test('erasure keeps "do not contact": every purpose denied, only a fresh first-party grant starts again', async () => {
  const e = `email:${email()}`;
  const phone = `phone:+4479${String(process.pid).padStart(5, '0').slice(-5)}${String(seq).padStart(3, '0')}`;
  const sid = (await grant(e, 'newsletter', 'email')).subject_id;
  await srv.req('POST', `/v1/subjects/${sid}/identifiers`, { token: srv.tokens['subjects:write'], body: { identifier: phone } });
  await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: e, reason: 'unsubscribed' } });
  dbtool('erase', srv.dir, sid);
  for (const [id, p, c] of [[e, 'newsletter', 'email'], [e, 'order_updates', 'email'], [phone, 'order_updates', 'sms'], [e, 'fraud_prevention']]) {
    const r = await check(id, p, c);
    assert.deepEqual([r.decision, r.reason, r.subject_id], ['deny', 'suppressed', null], `${p} ${c}`);
  }
  let r = await srv.req('GET', `/v1/suppressions/check?identifier=${encodeURIComponent(e)}`, { token: CR });
  assert.equal(r.json.reason, 'erased', 'an earlier reason became erased');
  r = await srv.req('DELETE', `/v1/suppressions/${encodeURIComponent(phone)}`, { token: srv.tokens.admin });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'erased');
  r = await srv.req('GET', `/v1/subjects/${sid}`, { token: srv.tokens['subjects:read'] });
  assert.deepEqual([r.json.state, r.json.identifiers, r.json.profile], ['erased', [], {}]);
  r = await record({ subject_id: sid, purpose: 'newsletter', state: 'granted', method: 'api' });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'subject_erased');
  r = await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'import' });
  assert.equal(r.status, 409, 'an import cannot bring an erased person back');
  r = await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'checkout' });
  assert.equal(r.status, 201);
  assert.equal(r.json.subject_created, true, 'a new person record, nothing of the old one');
  assert.notEqual(r.json.subject_id, sid);
  assert.equal((await check(e, 'newsletter', 'email')).decision, 'allow');
  assert.equal((await check(phone, 'order_updates', 'sms')).reason, 'suppressed', 'the other identifier stays suppressed');
});

test('suppression list: add, check, lift, refuse import/api grants, lift on a fresh first-party grant', async () => {
  const e = `email:${email()}`;
  let r = await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: e.toUpperCase().replace('EMAIL:', 'email:'), reason: 'manual' } });
  assert.equal(r.status, 201);
  assert.equal(r.json.identifier, e);
  r = await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: e, reason: 'bounced' } });
  assert.equal(r.status, 200, 'already on the list');
  assert.equal(r.json.reason, 'manual');
  r = await srv.req('GET', `/v1/suppressions/check?identifier=${encodeURIComponent(e)}`, { token: CR });
  assert.equal(r.json.suppressed, true);
  assert.equal(r.json.reason, 'manual');
  assert.match(r.json.since, /Z$/);
  for (const method of ['import', 'api']) {
    r = await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method });
    assert.equal(r.status, 409, method);
    assert.equal(r.json.error.code, 'suppressed');
  }
  r = await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'api' });
  assert.equal(r.status, 201, 'a withdrawal is always accepted');
  r = await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'email_link' });
  assert.equal(r.status, 201);
  assert.equal((await srv.req('GET', `/v1/suppressions/check?identifier=${encodeURIComponent(e)}`, { token: CR })).json.suppressed, true,
    'a grant by email link does not lift it');
  const size = await auditSize();
  r = await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'double_opt_in' });
  assert.equal(r.status, 201);
  assert.equal((await srv.req('GET', `/v1/suppressions/check?identifier=${encodeURIComponent(e)}`, { token: CR })).json.suppressed, false);
  const ent = await srv.req('GET', `/v1/audit/entries?from=${size}`, { token: srv.tokens['audit:read'] });
  const types = ent.text.trim().split('\n').map((l) => JSON.parse(Buffer.from(JSON.parse(l).entry, 'base64')).type);
  assert.deepEqual(types, ['suppression.lifted', 'consent.recorded']);
  assert.equal((await check(e, 'newsletter', 'email')).decision, 'allow');
  // Lift by an admin; 404 when absent; scopes.
  const f = `email:${email()}`;
  await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: f, reason: 'complained' } });
  r = await srv.req('DELETE', `/v1/suppressions/${encodeURIComponent(f)}`, { token: CW });
  assert.equal(r.status, 403);
  r = await srv.req('DELETE', `/v1/suppressions/${encodeURIComponent(f)}`, { token: srv.tokens.admin });
  assert.equal(r.status, 200);
  r = await srv.req('DELETE', `/v1/suppressions/${encodeURIComponent(f)}`, { token: srv.tokens.admin });
  assert.equal(r.status, 404);
  for (const [body, field] of [[{ identifier: f }, 'reason'], [{ identifier: f, reason: 'erased' }, 'reason'],
    [{ identifier: 'x', reason: 'manual' }, 'identifier'], [{ reason: 'manual' }, 'identifier']]) {
    r = await srv.req('POST', '/v1/suppressions', { token: CW, body });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.error.field, field);
  }
});

test('suppression list as NDJSON: long lists, bad lines reported by line', async () => {
  const lines = [];
  for (let i = 0; i < 3000; i++) lines.push(JSON.stringify({ identifier: `email:bulk${process.pid}-${i}@example.com`, reason: 'unsubscribed' }));
  lines.splice(10, 0, 'not json', JSON.stringify({ identifier: 'phone:123', reason: 'bounced' }), '');
  lines.push(lines[0]);
  const r = await srv.req('POST', '/v1/suppressions', { token: CW, raw: lines.join('\n') + '\n', headers: { 'content-type': 'application/x-ndjson' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.added, 3000);
  assert.equal(r.json.existing, 1);
  assert.equal(r.json.rejected, 2);
  assert.deepEqual(r.json.errors.map((x) => [x.line, x.error.code]), [[11, 'invalid_json'], [12, 'invalid_identifier']]);
  assert.equal((await check(`email:bulk${process.pid}-2999@example.com`, 'newsletter', 'email')).reason, 'suppressed');
});

test('batch check: JSON keeps order and answers a bad item in place', async () => {
  const e = `email:${email()}`;
  await grant(e, 'newsletter', 'email');
  const checks = [{ identifier: e, purpose: 'newsletter', channel: 'email' }, { identifier: 'nope', purpose: 'newsletter', channel: 'email' },
    { identifier: e, purpose: 'nope', channel: 'email' }, { identifier: e, purpose: 'order_updates', channel: 'sms' }, 7,
    { identifier: e, purpose: 'newsletter', channel: 'email', extra: 1 }];
  let r = await srv.req('POST', '/v1/consent/check', { token: CR, body: { checks } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.results.length, 6);
  assert.equal(r.json.results[0].decision, 'allow');
  assert.equal(r.json.results[1].error.code, 'invalid_identifier');
  assert.equal(r.json.results[2].error.code, 'unknown_purpose');
  assert.equal(r.json.results[3].reason, 'contract');
  assert.equal(r.json.results[4].error.code, 'invalid_json');
  assert.equal(r.json.results[5].error.field, 'extra');
  r = await srv.req('POST', '/v1/consent/check', { token: CR, body: { checks: Array(10001).fill(checks[0]) } });
  assert.equal(r.status, 400);
  r = await srv.req('POST', '/v1/consent/check', { token: CR, body: { check: [] } });
  assert.equal(r.json.error.field, 'check');
  r = await srv.req('POST', '/v1/consent/check', { token: CW, body: { checks: [] } });
  assert.equal(r.status, 403);
});

test('streamed check: NDJSON of any length, one result per line in order, bad lines answered in place', async () => {
  const known = `email:${email()}`;
  await grant(known, 'newsletter', 'email');
  const n = 20000;
  const lines = [];
  for (let i = 0; i < n; i++) {
    lines.push(JSON.stringify(i % 1000 === 7 ? { identifier: known, purpose: 'newsletter', channel: 'email' }
      : { identifier: `email:nobody${i}@example.com`, purpose: 'order_updates', channel: 'email' }));
  }
  lines[500] = '{"identifier": oops';
  lines[501] = 'x'.repeat(5000);
  const body = lines.join('\n');
  const r = await srv.req('POST', '/v1/consent/check', { token: CR, raw: body, headers: { 'content-type': 'application/x-ndjson' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/x-ndjson');
  const out = r.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(out.length, n);
  assert.equal(out[7].decision, 'allow');
  assert.equal(out[1007].decision, 'allow');
  assert.equal(out[8].reason, 'unknown_subject');
  assert.deepEqual([out[500].line, out[500].error.code], [501, 'invalid_json']);
  assert.deepEqual([out[501].line, out[501].error.code], [502, 'line_too_long']);
  assert.equal(out[n - 1].purpose, 'order_updates', 'the last line without a newline is answered');
  const unauth = await srv.req('POST', '/v1/consent/check', { raw: body, headers: { 'content-type': 'application/x-ndjson' } });
  assert.equal(unauth.status, 401);
});

test('streamed check: lines cut across pieces of the body, CRLF, blank and over-long lines keep their numbers', async () => {
  const known = `email:${email()}`;
  await grant(known, 'newsletter', 'email');
  // Line kinds, in a fixed pattern: a known subject, an unknown one, a
  // blank line (not counted), CRLF endings, a line of exactly 4096 bytes
  // (bad JSON, but answered as such), one of 6000 (too long), bad JSON.
  const parts = [];
  const expect = [];
  for (let i = 0; i < 2400; i++) {
    const k = i % 12;
    if (k === 3) { parts.push(''); continue; }
    if (k === 5) { parts.push(JSON.stringify({ identifier: known, purpose: 'newsletter', channel: 'email' }) + '\r'); expect.push('allow'); continue; }
    if (k === 7 && i % 120 === 7) { parts.push('y'.repeat(6000)); expect.push('line_too_long'); continue; }
    if (k === 8 && i % 240 === 8) { parts.push(' '.repeat(4096 - 2) + '{x'); expect.push('invalid_json'); continue; }
    if (k === 9) { parts.push('{"identifier":'); expect.push('invalid_json'); continue; }
    parts.push(JSON.stringify({ identifier: `email:nobody${i}@example.com`, purpose: 'newsletter', channel: 'email' }));
    expect.push('unknown_subject');
  }
  const body = Buffer.from(parts.join('\n') + '\n');
  // Sent in pieces of 997 bytes with pauses, so the server gets the body
  // in many pieces and lines are cut at every position.
  const res = await new Promise((resolve, reject) => {
    const rq = http.request({ host: '127.0.0.1', port: srv.port, method: 'POST', path: '/v1/consent/check',
      headers: { authorization: `Bearer ${CR}`, 'content-type': 'application/x-ndjson' } },
    (r) => { let t = ''; r.on('data', (c) => { t += c; }); r.on('end', () => resolve({ status: r.statusCode, text: t })); });
    rq.on('error', reject);
    (async () => {
      for (let off = 0, n = 0; off < body.length; off += 997, n++) {
        rq.write(body.subarray(off, off + 997));
        if (n % 16 === 15) await new Promise((r) => setTimeout(r, 2));
      }
      rq.end();
    })();
  });
  assert.equal(res.status, 200, res.text.slice(0, 300));
  const out = res.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(out.length, expect.length);
  out.forEach((o, i) => {
    const got = o.error ? o.error.code : o.decision === 'allow' ? 'allow' : o.reason;
    assert.equal(got, expect[i], `answer ${i + 1}`);
    if (o.error) assert.equal(o.line, i + 1, `answer ${i + 1} names its line`);
  });
});

test('preferences: switches become consent events; GET reflects them', async () => {
  const e = `email:${email()}`;
  const s = (await grant(e, 'newsletter', 'email')).subject_id;
  await grant(e, 'basket_reminders', null, { method: 'checkout', evidence: { sale_reference: 'order-78' } });
  let p = await srv.req('GET', `/v1/subjects/${s}/preferences`, { token: CR });
  assert.equal(p.json.topics.new_arrivals, true);
  assert.equal(p.json.topics.sale_offers, false);
  assert.equal(p.json.channels.email, true);
  assert.equal(p.json.channels.sms, false, 'nothing is on by SMS');
  p = await srv.req('PUT', `/v1/subjects/${s}/preferences`, { token: CW, body: { topics: { sale_offers: true, picked_for_you: true }, frequency: 'monthly' } });
  assert.equal(p.status, 200, p.text);
  assert.equal((await check(e, 'email_offers', 'email')).decision, 'allow');
  assert.equal((await check(e, 'recommendations', 'push')).reason.match(/consent|holdout/) !== null, true);
  assert.equal((await check(e, 'ad_audiences', 'ads')).reason, 'no_consent', 'a channel switch gives no consent for a purpose without a topic');
  p = await srv.req('PUT', `/v1/subjects/${s}/preferences`, { token: CW, body: { channels: { email: false } } });
  assert.deepEqual([(await check(e, 'newsletter', 'email')).reason, (await check(e, 'basket_reminders', 'email')).reason],
    ['withdrawn', 'withdrawn']);
  assert.equal((await check(e, 'basket_reminders', 'push')).decision, 'allow');
  assert.notEqual((await check(e, 'recommendations', 'push')).reason, 'withdrawn', 'push is still on');
  p = await srv.req('GET', `/v1/subjects/${s}/preferences`, { token: CR });
  assert.deepEqual([p.json.channels.email, p.json.channels.push, p.json.topics.new_arrivals, p.json.topics.picked_for_you],
    [false, true, false, true], 'the switches read the consent state');
  // Switching the channel back on grants there the topics that are still
  // on (picked for you, by push), never the ones the person switched off.
  p = await srv.req('PUT', `/v1/subjects/${s}/preferences`, { token: CW, body: { channels: { email: true } } });
  assert.equal(p.status, 200, p.text);
  assert.equal((await check(e, 'recommendations', 'email')).reason.match(/consent|holdout/) !== null, true);
  assert.equal((await check(e, 'newsletter', 'email')).reason, 'withdrawn', 'a channel switch does not turn a topic back on');
  assert.equal((await check(e, 'basket_reminders', 'email')).reason, 'withdrawn', 'no switch grants a soft opt-in');
  p = await srv.req('PUT', `/v1/subjects/${s}/preferences`, { token: CW, body: { topics: { new_arrivals: true } } });
  assert.equal((await check(e, 'newsletter', 'email')).decision, 'allow', 'the person switching it on does');
  p = await srv.req('GET', `/v1/subjects/${s}/preferences`, { token: CR });
  assert.equal(p.json.frequency, 'monthly');
  assert.equal(p.json.topics.rewards, true, 'a contract topic reads as the check allows it');
  let r = await srv.req('PUT', `/v1/subjects/${s}/preferences`, { token: CW, body: { topics: { rewards: false } } });
  assert.equal(r.status, 422, r.text);
  assert.deepEqual([r.json.error.code, r.json.error.field], ['topic_not_optional', 'topics.rewards']);
  r = await srv.req('PUT', `/v1/subjects/${s}/preferences`, { token: CW, body: { topics: { rewards: true } } });
  assert.equal(r.status, 200, 'sending what it reads is fine');
  for (const [body, status, field] of [[{ channels: { fax: true } }, 422, 'channels.fax'], [{ topics: { x: true } }, 422, 'topics.x'],
    [{ frequency: 'hourly' }, 422, 'frequency'], [{ channels: { email: 'yes' } }, 400, 'channels.email'],
    [{ paused_until: 'soon' }, 400, 'paused_until'], [{ other: 1 }, 400, 'other']]) {
    const r = await srv.req('PUT', `/v1/subjects/${s}/preferences`, { token: CW, body });
    assert.equal(r.status, status, JSON.stringify(body));
    assert.equal(r.json.error.field, field);
  }
});

test('unsubscribe withdraws every marketing purpose everywhere; the report counts reasons, not people', async () => {
  const e = `email:${email()}`;
  const s = (await grant(e, 'newsletter', 'email')).subject_id;
  await grant(e, 'sms_offers', 'sms');
  await grant(e, 'ad_audiences', 'ads');
  const before = (await srv.req('GET', '/v1/reports/unsubscribe-reasons', { token: CR })).json.reasons;
  const r = await srv.req('POST', `/v1/subjects/${s}/unsubscribe`, { token: CW, body: { reason: 'too_frequent', comment: 'Zanzibar' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.purposes_withdrawn, 6);
  for (const [p, c] of [['newsletter', 'email'], ['sms_offers', 'sms'], ['ad_audiences', 'ads'], ['basket_reminders', 'push']])
    assert.equal((await check(e, p, c)).reason, 'withdrawn', p);
  assert.equal((await check(e, 'order_updates', 'email')).decision, 'allow');
  const after = (await srv.req('GET', '/v1/reports/unsubscribe-reasons', { token: CR })).json.reasons;
  const count = (rs) => rs.filter((x) => x.reason === 'too_frequent').reduce((a, x) => a + x.count, 0);
  assert.equal(count(after), count(before) + 1);
  assert.match(after[0].month, /^\d{4}-\d{2}$/);
  assert.ok(!JSON.stringify(after).includes(s));
  const bad = await srv.req('POST', `/v1/subjects/${s}/unsubscribe`, { token: CW, body: { reason: 'bored' } });
  assert.equal(bad.status, 400);
  const none = await srv.req('POST', `/v1/subjects/${s}/unsubscribe`, { token: CW, body: {} });
  assert.equal(none.json.reason, 'not_given');
});

test('GPC withdraws every gpc purpose; a later explicit grant wins', async () => {
  const e = `email:${email()}`;
  await grant(e, 'ad_audiences', 'ads');
  await grant(e, 'newsletter', 'email');
  const r = await record({ identifier: e, method: 'gpc' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.purpose, 'ad_audiences');
  assert.equal(r.json.events.length, 1);
  assert.equal((await check(e, 'ad_audiences', 'ads')).reason, 'withdrawn');
  assert.equal((await check(e, 'newsletter', 'email')).decision, 'allow', 'GPC touches only gpc purposes');
  await grant(e, 'ad_audiences', 'ads');
  assert.equal((await check(e, 'ad_audiences', 'ads')).decision, 'allow');
});

test('merge: disagreeing consents keep the more restrictive one and show as conflicts until the person decides', async () => {
  const a = `email:${email()}`;
  const b = `email:${email()}`;
  const sa = (await grant(a, 'newsletter', 'email')).subject_id;
  const sb = (await record({ identifier: b, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'email_link' })).json.subject_id;
  await grant(b, 'sms_offers', 'sms');
  const m = await srv.req('POST', '/v1/subjects/merge', { token: srv.tokens['subjects:write'], body: { into: sa, from: sb } });
  assert.equal(m.status, 200, m.text);
  assert.deepEqual(m.json.conflicts, [{ purpose: 'newsletter', channel: 'email', kept: 'withdrawn', other: 'granted' }]);
  let c = await check(a, 'newsletter', 'email');
  assert.equal(c.reason, 'withdrawn');
  assert.equal(c.conflicts.length, 1);
  assert.equal((await check(a, 'sms_offers', 'sms')).decision, 'allow', "the other subject's consent moved");
  assert.equal((await check(b, 'newsletter', 'email')).subject_id, sa);
  await grant(a, 'newsletter', 'email');
  c = await check(a, 'newsletter', 'email');
  assert.equal(c.decision, 'allow');
  assert.deepEqual(c.conflicts, [], 'the person decided again');
  const hist = await srv.req('GET', `/v1/subjects/${sa}/consents?history=true`, { token: CR });
  // The 3 events of both people moved (the rebuilt state already decides
  // on the newer withdrawal and carries the SMS grant, so the merge wrote
  // nothing), plus the person's new grant.
  assert.equal(hist.json.events.length, 4, 'events moved');
});

test('merge: a withdrawal is never outranked by a newer all-channels grant of the survivor', async () => {
  const a = `email:${email()}`;
  const b = `email:${email()}`;
  // FROM withdraws email first (older); INTO grants email, then all channels (newer).
  const sb = (await record({ identifier: b, purpose: 'email_offers', channel: 'email', state: 'withdrawn', method: 'email_link' })).json.subject_id;
  const sa = (await grant(a, 'email_offers', 'email')).subject_id;
  await grant(a, 'email_offers', null);
  assert.equal((await check(a, 'email_offers', 'email')).decision, 'allow');
  const m = await srv.req('POST', '/v1/subjects/merge', { token: srv.tokens['subjects:write'], body: { into: sa, from: sb } });
  assert.equal(m.status, 200, m.text);
  assert.deepEqual(m.json.conflicts, [{ purpose: 'email_offers', channel: 'email', kept: 'withdrawn', other: 'granted' }]);
  const c = await check(a, 'email_offers', 'email');
  assert.deepEqual([c.decision, c.reason], ['deny', 'withdrawn'], 'the kept withdrawal decides');
  assert.equal(c.conflicts.length, 1);
  // FROM's all-channels withdrawal against INTO's per-channel grant.
  const x = `email:${email()}`;
  const y = `email:${email()}`;
  const sy = (await record({ identifier: y, purpose: 'sms_offers', state: 'withdrawn', method: 'phone' })).json.subject_id;
  const sx = (await grant(x, 'sms_offers', 'sms')).subject_id;
  await srv.req('POST', '/v1/subjects/merge', { token: srv.tokens['subjects:write'], body: { into: sx, from: sy } });
  assert.equal((await check(x, 'sms_offers', 'sms')).reason, 'withdrawn');
});

test('merge: a restriction on the merged-away subject stands on the survivor', async () => {
  const a = `email:${email()}`;
  const b = `email:${email()}`;
  const sa = (await grant(a, 'newsletter', 'email')).subject_id;
  const sb = (await grant(b, 'newsletter', 'email')).subject_id;
  dbtool('restrict', srv.dir, sb);
  assert.equal((await check(b, 'order_updates', 'email')).reason, 'restricted');
  const m = await srv.req('POST', '/v1/subjects/merge', { token: srv.tokens['subjects:write'], body: { into: sa, from: sb } });
  assert.equal(m.status, 200, m.text);
  assert.equal((await check(b, 'order_updates', 'email')).reason, 'restricted');
  assert.equal((await check(a, 'newsletter', 'email')).reason, 'restricted');
});

test('recording by subject_id: an api grant is refused while one of its identifiers is suppressed', async () => {
  const e = `email:${email()}`;
  const s = (await grant(e, 'newsletter', 'email')).subject_id;
  await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: e, reason: 'complained' } });
  let r = await record({ subject_id: s, purpose: 'email_offers', channel: 'email', state: 'granted', method: 'api' });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'suppressed');
  r = await record({ subject_id: s, purpose: 'email_offers', channel: 'email', state: 'withdrawn', method: 'api' });
  assert.equal(r.status, 201);
});

test('erasing a survivor also unlinks the pseudonyms of the subjects merged into it', async () => {
  const a = `email:${email()}`;
  const b = `email:${email()}`;
  const sa = (await grant(a, 'newsletter', 'email')).subject_id;
  const sb = (await grant(b, 'newsletter', 'email')).subject_id;
  await srv.req('POST', '/v1/subjects/merge', { token: srv.tokens['subjects:write'], body: { into: sa, from: sb } });
  dbtool('erase', srv.dir, sa);
  const dump = spawnSync(process.env.CONSENTD_DBTOOL, ['dump', srv.dir], { encoding: 'latin1', maxBuffer: 1 << 28 });
  const section = dump.stdout.split('== table audit_pseudonyms')[1].split('== table')[0];
  assert.ok(!section.includes(sa), 'survivor mapping dropped');
  assert.ok(!section.includes(sb), 'merged-away mapping dropped');
  const openings = dump.stdout.split('== table audit_openings')[1].split('== table')[0];
  assert.ok(!openings.includes(sa) && !openings.includes(sb), 'openings dropped');
});

test('holdout: a stable control group per purpose, counted in the report', async () => {
  let inHoldout = null;
  let treated = null;
  for (let i = 0; i < 200 && (!inHoldout || !treated); i++) {
    const e = `email:${email()}`;
    await grant(e, 'recommendations', 'email');
    const c = await check(e, 'recommendations', 'email');
    if (c.reason === 'holdout') inHoldout = e;
    else if (c.reason === 'consent') treated = e;
  }
  assert.ok(inHoldout && treated, 'both groups are reached');
  for (let i = 0; i < 3; i++) assert.equal((await check(inHoldout, 'recommendations', 'email')).reason, 'holdout', 'stable');
  assert.equal((await check(inHoldout, 'newsletter', 'email')).reason, 'no_consent', 'other purposes are not held out');
  const rep = await srv.req('GET', '/v1/reports/holdout', { token: CR });
  const rec = rep.json.purposes.find((p) => p.purpose === 'recommendations');
  assert.equal(rec.holdout_percent, 10);
  assert.equal(rec.control + rec.treatment, rep.json.active_subjects);
  assert.ok(rec.control >= 1);
});

test('a withdrawal through any path is denied by the very next check, on another connection', async () => {
  const agents = [1, 2, 3].map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const call = (agent, method, p, token, body) => new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : undefined;
    const rq = http.request({ host: '127.0.0.1', port: srv.port, method, path: p, agent,
      headers: { authorization: `Bearer ${token}`, ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) } },
    (res) => { let t = ''; res.on('data', (c) => { t += c; }); res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(t) })); });
    rq.on('error', reject);
    rq.end(data);
  });
  const [writer, reader, other] = agents;
  const e = `email:${email()}`;
  const sid = (await grant(e, 'newsletter', 'email')).subject_id;
  const q = `/v1/consent/check?identifier=${encodeURIComponent(e)}&purpose=newsletter&channel=email`;
  const paths = [
    () => call(writer, 'POST', '/v1/consents', CW, { identifier: e, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'email_link' }),
    () => call(other, 'POST', '/v1/consents', CW, { identifier: e, purpose: 'newsletter', state: 'withdrawn', method: 'api' }),
    () => call(writer, 'PUT', `/v1/subjects/${sid}/preferences`, CW, { topics: { new_arrivals: false } }),
    () => call(other, 'PUT', `/v1/subjects/${sid}/preferences`, CW, { channels: { email: false } }),
    () => call(writer, 'POST', `/v1/subjects/${sid}/unsubscribe`, CW, { reason: 'privacy' }),
    () => call(other, 'POST', '/v1/suppressions', CW, { identifier: e, reason: 'unsubscribed' }),
  ];
  for (let round = 0; round < 3; round++) {
    for (const [i, withdraw] of paths.entries()) {
      // Back to allowed, through yet another connection.
      await call(other, 'DELETE', `/v1/suppressions/${encodeURIComponent(e)}`, srv.tokens.admin);
      await call(writer, 'PUT', `/v1/subjects/${sid}/preferences`, CW, { channels: { email: true }, topics: { new_arrivals: true } });
      const g = await call(other, 'POST', '/v1/consents', CW, { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' });
      assert.equal(g.status, 201);
      assert.equal((await call(reader, 'GET', q, CR)).json.decision, 'allow', `round ${round} path ${i}: allowed first`);
      const w = await withdraw();
      assert.ok(w.status < 300, `path ${i}: ${JSON.stringify(w.json)}`);
      const c = await call(reader, 'GET', q, CR);
      assert.equal(c.json.decision, 'deny', `round ${round} path ${i}: denied by the very next check`);
    }
  }
  for (const a of agents) a.destroy();
});

test('a no written by a second server on the same store is denied by the first server\'s very next check', async () => {
  // Two servers on one data directory, each with its own connections and
  // the caches they keep (verified tokens among them): a withdrawal, a
  // suppression or an unsubscribe made through either is what the other
  // answers on its next check, and a token revoked through one is refused
  // by the other.
  const second = await startServer({ data: srv.data, noTokens: true });
  second.tokens = srv.tokens;
  try {
    const e = `email:${email()}`;
    const sid = (await grant(e, 'newsletter', 'email')).subject_id;
    const ways = [
      (s) => s.req('POST', '/v1/consents', { token: CW, body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'email_link' } }),
      (s) => s.req('POST', '/v1/suppressions', { token: CW, body: { identifier: e, reason: 'unsubscribed' } }),
      (s) => s.req('POST', `/v1/subjects/${sid}/unsubscribe`, { token: CW, body: { reason: 'privacy' } }),
      (s) => s.req('PUT', `/v1/subjects/${sid}/preferences`, { token: CW, body: { channels: { email: false } } }),
    ];
    for (const [writer, reader] of [[second, srv], [srv, second]]) {
      for (const [i, withdraw] of ways.entries()) {
        await writer.req('DELETE', `/v1/suppressions/${encodeURIComponent(e)}`, { token: srv.tokens.admin });
        await reader.req('PUT', `/v1/subjects/${sid}/preferences`, { token: CW, body: { channels: { email: true }, topics: { new_arrivals: true } } });
        assert.equal((await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' })).status, 201);
        // Both servers have answered allow (and so hold whatever they keep).
        for (let k = 0; k < 3; k++) {
          assert.equal((await check(e, 'newsletter', 'email', reader)).decision, 'allow', `way ${i}: allowed first`);
          assert.equal((await check(e, 'newsletter', 'email', writer)).decision, 'allow', `way ${i}: allowed first`);
        }
        const w = await withdraw(writer);
        assert.ok(w.status < 300, `way ${i}: ${w.text}`);
        assert.equal((await check(e, 'newsletter', 'email', reader)).decision, 'deny',
          `way ${i} through the port ${writer.port} server: denied by the other's very next check`);
      }
    }
    // A token revoked through the command line while both serve.
    const t = createToken(srv.dir, `two-servers-${process.pid}`, ['consent:read']);
    const q = `/v1/consent/check?identifier=${encodeURIComponent(e)}&purpose=newsletter&channel=email`;
    for (let k = 0; k < 3; k++) {
      assert.equal((await srv.req('GET', q, { token: t })).status, 200);
      assert.equal((await second.req('GET', q, { token: t })).status, 200);
    }
    const r = spawnSync(BIN, ['token', 'revoke', '--data', srv.dir, `two-servers-${process.pid}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await srv.req('GET', q, { token: t })).status, 401, 'revoked: refused by the first server');
    assert.equal((await second.req('GET', q, { token: t })).status, 401, 'revoked: refused by the second server');
  } finally {
    assert.equal((await second.stop()).code, 0);
  }
});

test('decision rows: a change made behind the server\'s back, in plain SQL or by another process, is what the very next check answers', async () => {
  // A check answers from the identifier's decision row. The schema's
  // triggers drop the row in the same transaction as any change to a fact
  // it was built from, by whatever writer, so the check reads the tables
  // until a commit of consentd's own builds it again.
  const checks = async () => {
    const t = (await srv.req('GET', '/metrics', { token: srv.tokens.all })).text;
    const v = (src) => metricValue(t, `consentd_store_checks_total{source="${src}"}`);
    return { row: v('decision_row'), tables: v('tables') };
  };
  const e = `email:${email()}`;
  const sid = (await grant(e, 'newsletter', 'email')).subject_id;
  const sql = (q) => {
    const r = spawnSync(process.env.CONSENTD_DBTOOL, ['sql', srv.dir, q], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  // SOURCE 'row': answered from the decision row; 'tables': from the
  // tables. 'any': from the tables
  // or, when a commit of the server's own (the outbox delivers in the
  // background) has rebuilt the row since the plain-SQL change, from the
  // row; the answer must be the new one either way.
  const answered = async (want, source) => {
    const before = await checks();
    const c = await check(e, 'newsletter', 'email');
    const after = await checks();
    assert.equal(`${c.decision} ${c.reason}`, want);
    const n = source === 'row' ? after.row - before.row : source === 'tables' ?
      after.tables - before.tables : after.row + after.tables - before.row - before.tables;
    assert.equal(n, 1, `answered from ${source}`);
  };
  await answered('allow consent', 'row');
  // Plain SQL, as an operator's tool would: a suppression entry, then the
  // consent row itself, then the subject's state.
  sql(`INSERT INTO suppressions (type, blind, reason, since) SELECT type, blind, 'manual', 1 FROM identifiers WHERE subject_id = '${sid}'`);
  await answered('deny suppressed', 'any');
  sql(`DELETE FROM suppressions WHERE (type, blind) IN (SELECT type, blind FROM identifiers WHERE subject_id = '${sid}')`);
  await answered('allow consent', 'any');
  // A write of the server's own builds the rows its commit finds noted.
  await grant(`email:${email()}`, 'newsletter', 'email');
  await answered('allow consent', 'row');
  sql(`UPDATE consent_current SET state = 'withdrawn' WHERE subject_id = '${sid}'`);
  await answered('deny withdrawn', 'any');
  sql(`UPDATE consent_current SET state = 'granted' WHERE subject_id = '${sid}'`);
  sql(`UPDATE subjects SET state = 'restricted' WHERE id = '${sid}'`);
  await answered('deny restricted', 'any');
  sql(`UPDATE subjects SET state = 'active' WHERE id = '${sid}'`);
  // Another process writing through consentd's own code: its commit builds
  // the row, and the server answers from it.
  dbtool('object', srv.dir, sid);
  await answered('deny objected', 'row');
  // A row that is still there when its subject is rebuilt is written over:
  // here one made unreadable (a check then reads the tables) whose subject
  // is then noted by hand, as a trigger would.
  sql(`UPDATE decisions SET body = ${PG ? "decode('00', 'hex')" : "x'00'"} WHERE subject_id = '${sid}'`);
  await answered('deny objected', 'tables');
  sql(`INSERT INTO decisions_stale (subject_id) VALUES ('${sid}')`);
  await grant(`email:${email()}`, 'newsletter', 'email');
  await answered('deny objected', 'row');
});

test('group commit: a write refused after it began writing is undone alone; the others of its batch are kept', async () => {
  // With no purpose tied to GPC, a GPC signal for a new identifier creates
  // the person, then finds nothing to withdraw and is refused: the job has
  // written and failed. The writer runs its batch without savepoints, sees
  // that, rolls the batch back and runs it again with one savepoint a job.
  const dir = tmpdir('consentd-policy-');
  const pol = JSON.parse(fs.readFileSync(path.join(POLICY, 'policy.json'), 'utf8'));
  for (const p of pol.purposes) p.gpc = false;
  fs.writeFileSync(path.join(dir, 'policy.json'), JSON.stringify(pol, null, 2));
  const s = await startServer({ policy: dir });
  try {
    const reruns = async () => {
      const m = await s.req('GET', '/metrics', { token: s.tokens.all });
      const line = m.text.split('\n').find((l) => l.startsWith('consentd_group_commit_reruns_total '));
      assert.ok(line, 'the reruns counter is exported');
      return Number(line.split(' ')[1]);
    };
    const before = await reruns();
    for (let round = 0; round < 3; round++) {
      const kept = Array.from({ length: 12 }, () => `email:${email()}`);
      const refused = `email:${email()}`;
      const writes = kept.map((e) => s.req('POST', '/v1/consents', { token: s.tokens['consent:write'],
        body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } }));
      writes.splice(6, 0, s.req('POST', '/v1/consents', { token: s.tokens['consent:write'],
        body: { identifier: refused, state: 'withdrawn', method: 'gpc' } }));
      const res = await Promise.all(writes);
      const bad = res.splice(6, 1)[0];
      assert.deepEqual([bad.status, bad.json.error.code, bad.json.error.field], [422, 'not_gpc_purpose', 'method'],
        `the refused write says why: ${bad.text}`);
      for (const r of res) assert.equal(r.status, 201, r.text);
      const who = await s.req('GET', `/v1/subjects/resolve?identifier=${encodeURIComponent(refused)}`, { token: s.tokens.all });
      assert.equal(who.status, 404, 'nothing of the refused write was kept: no person was created');
      for (const e of kept) assert.equal((await check(e, 'newsletter', 'email', s)).decision, 'allow', 'the batch\'s other writes were kept');
    }
    assert.ok(await reruns() >= before + 3, 'each refused write made its batch run again with savepoints');
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
  const v = spawnSync(BIN, ['audit', 'verify', '--data', s.dir], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stdout + v.stderr);
});

test('raising min_valid_version makes older grants answer stale_notice', async () => {
  const data = initData();
  const first = await startServer({ data });
  const e = `email:${email()}`;
  await grant(e, 'newsletter', 'email', { notice_version: 1 }).catch(() => null);
  const r = await first.req('POST', '/v1/consents', { token: first.tokens['consent:write'],
    body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form', notice_version: 1 } });
  assert.equal(r.status, 201);
  assert.equal((await check(e, 'newsletter', 'email', first)).decision, 'allow');
  assert.equal((await first.stop()).code, 0);
  const dir = tmpdir('consentd-policy-');
  const pol = JSON.parse(fs.readFileSync(path.join(POLICY, 'policy.json'), 'utf8'));
  pol.purposes.find((p) => p.id === 'newsletter').min_valid_version = 2;
  pol.purposes.push({ id: 'tax_records', title: 'Tax records', description: 'Invoices kept as the law requires.',
    lawful_basis: 'legal_obligation', marketing: false, channels: ['post'], data_categories: ['invoices'],
    recipients: [], retention: { days: 2190, description: '6 years' }, source: 'Your orders.', version: 1, min_valid_version: 1 });
  fs.writeFileSync(path.join(dir, 'policy.json'), JSON.stringify(pol, null, 2));
  const second = await startServer({ data, policy: dir, noTokens: true });
  second.tokens = first.tokens;
  const c = await check(e, 'newsletter', 'email', second);
  assert.deepEqual([c.decision, c.reason, c.notice_version], ['deny', 'stale_notice', 1]);
  const lo = await check(e, 'tax_records', 'post', second);
  assert.deepEqual([lo.decision, lo.reason, lo.lawful_basis], ['allow', 'legal_obligation', 'legal_obligation']);
  await second.req('POST', '/v1/consents', { token: first.tokens['consent:write'],
    body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal((await check(e, 'newsletter', 'email', second)).decision, 'allow', 'a grant on the current notice counts');
  assert.equal((await second.stop()).code, 0);
});

test('scopes, and no identifier or evidence in the logs', async () => {
  const checkers = ['consent:check', 'consent:read', 'all'];
  for (const s of Object.keys(srv.tokens)) {
    const w = await srv.req('POST', '/v1/consents', { token: srv.tokens[s], body: {} });
    assert.equal(w.status === 403, !(s === 'consent:write' || s === 'all'), `${s} POST /v1/consents`);
    const r = await srv.req('GET', '/v1/consent/check?identifier=x&purpose=y', { token: srv.tokens[s] });
    assert.equal(r.status === 403, !checkers.includes(s), `${s} GET check`);
    const b = await srv.req('POST', '/v1/consent/check', { token: srv.tokens[s], body: { checks: [] } });
    assert.equal(b.status === 403, !checkers.includes(s), `${s} POST check`);
    const sc = await srv.req('GET', '/v1/suppressions/check?identifier=email%3Ax%40example.com', { token: srv.tokens[s] });
    assert.equal(sc.status === 403, !checkers.includes(s), `${s} GET suppressions/check`);
    const l = await srv.req('GET', '/v1/subjects/sub_aaaaaaaaaaaaaaaaaaaaaaaaaa/consents', { token: srv.tokens[s] });
    assert.equal(l.status === 403, !(s === 'consent:read' || s === 'all'), `${s} GET consents`);
  }
  const logs = srv.logs.join('\n');
  for (const s of ['@example.com', '203.0.113.7', 'Mozilla', 'Zanzibar', 'shopper']) assert.ok(!logs.includes(s), `${s} in logs`);
});
