// SPDX-License-Identifier: ISC
// "A person's no sticks": one test per consent-state defect found by the
// privacy audit, each reproduced over HTTP against a real server. Every
// test here failed on the code before the fix.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from './harness.mjs';

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
const email = () => `email:nostick${process.pid}x${++seq}@example.com`;

async function record(body, token = CW) {
  return srv.req('POST', '/v1/consents', { token, body });
}
async function ok(body) {
  const r = await record(body);
  assert.equal(r.status, 201, r.text);
  return r.json;
}
async function check(identifier, purpose, channel) {
  const q = new URLSearchParams({ identifier, purpose });
  if (channel) q.set('channel', channel);
  const r = await srv.req('GET', `/v1/consent/check?${q}`, { token: CR });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
async function prefs(sid, body) {
  const r = await srv.req('PUT', `/v1/subjects/${sid}/preferences`, { token: CW, body });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
async function history(sid) {
  const r = await srv.req('GET', `/v1/subjects/${sid}/consents?history=true`, { token: srv.tokens.all });
  assert.equal(r.status, 200, r.text);
  return r.json.events;
}
async function auditSize() {
  const r = await srv.req('GET', '/v1/audit/entries?to=999999999', { token: srv.tokens['audit:read'] });
  return Number(r.json.error.message.match(/holds (\d+)/)[1]);
}
const SALE = { sale_reference: 'order-1001' };

test('1. a withdrawal is not undone by an unrelated preference save', async () => {
  const e = email();
  const sid = (await ok({ identifier: e, purpose: 'order_updates', state: 'granted', method: 'checkout' })).subject_id;
  await prefs(sid, { topics: { new_arrivals: true } });
  assert.equal((await check(e, 'newsletter', 'email')).decision, 'allow');
  await ok({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'email_link' });
  const before = (await history(sid)).length;
  const p = await prefs(sid, { frequency: 'daily' });
  assert.equal(p.topics.new_arrivals, false, 'the switch reads the consent state: off');
  assert.equal(p.frequency, 'daily');
  const c = await check(e, 'newsletter', 'email');
  assert.deepEqual([c.decision, c.reason], ['deny', 'withdrawn']);
  assert.equal((await history(sid)).length, before, 'a frequency-only save writes no consent event');
  // Saving the whole form as it reads now changes nothing either.
  const view = (await srv.req('GET', `/v1/subjects/${sid}/preferences`, { token: CR })).json;
  await prefs(sid, { channels: view.channels, topics: view.topics, frequency: 'weekly' });
  assert.equal((await check(e, 'newsletter', 'email')).reason, 'withdrawn');
  assert.equal((await history(sid)).length, before);
  // Only the person switching it on again turns it on.
  await prefs(sid, { topics: { new_arrivals: true } });
  assert.equal((await check(e, 'newsletter', 'email')).decision, 'allow');
});

test('2. unsubscribe-all is not undone by a frequency-only save', async () => {
  const e = email();
  const sid = (await ok({ identifier: e, purpose: 'basket_reminders', state: 'granted', method: 'checkout',
    evidence: SALE })).subject_id;
  await ok({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' });
  assert.equal((await check(e, 'basket_reminders', 'email')).decision, 'allow');
  const u = await srv.req('POST', `/v1/subjects/${sid}/unsubscribe`, { token: CW, body: { reason: 'too_frequent' } });
  assert.equal(u.status, 200, u.text);
  await prefs(sid, { frequency: 'monthly' });
  for (const [p, c] of [['basket_reminders', 'email'], ['basket_reminders', 'push'], ['newsletter', 'email']])
    assert.equal((await check(e, p, c)).reason, 'withdrawn', `${p} ${c}`);
  const p = (await srv.req('GET', `/v1/subjects/${sid}/preferences`, { token: CR })).json;
  assert.equal(p.channels.email, false);
  assert.equal(p.topics.new_arrivals, false);
});

test('3. the latest collected_at decides: an old back-filled grant does not beat a newer withdrawal', async () => {
  const e = email();
  const sid = (await ok({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form',
    collected_at: '2025-01-10T09:00:00Z' })).subject_id;
  await ok({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'email_link' });
  const old = await ok({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'import',
    collected_at: '2025-06-01T12:00:00Z' });
  assert.equal(old.superseded, true);
  let c = await check(e, 'newsletter', 'email');
  assert.deepEqual([c.decision, c.reason], ['deny', 'withdrawn']);
  const h = await history(sid);
  assert.equal(h.find((x) => x.event_id === old.event_id).superseded, true, 'it joins the history as superseded');
  // An all-channels grant collected before the channel's withdrawal does not win either.
  const all = await ok({ identifier: e, purpose: 'newsletter', state: 'granted', method: 'import', collected_at: '2025-07-01T00:00:00Z' });
  assert.equal(all.superseded, true);
  assert.equal((await check(e, 'newsletter', 'email')).reason, 'withdrawn');
  // The same for a GPC opt-out.
  const g = email();
  await ok({ identifier: g, purpose: 'ad_audiences', channel: 'ads', state: 'granted', method: 'web_form', collected_at: '2025-03-01T00:00:00Z' });
  await ok({ identifier: g, method: 'gpc' });
  await ok({ identifier: g, purpose: 'ad_audiences', channel: 'ads', state: 'granted', method: 'import', collected_at: '2025-09-09T00:00:00Z' });
  c = await check(g, 'ad_audiences', 'ads');
  assert.deepEqual([c.decision, c.reason], ['deny', 'withdrawn']);
  // A newer decision still wins, and a collected_at a little in the future is
  // taken as now, so it cannot outrank a withdrawal made right after it.
  const soon = new Date(Date.now() + 3 * 60 * 1000).toISOString();
  const f = email();
  await ok({ identifier: f, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form', collected_at: soon });
  await ok({ identifier: f, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'email_link' });
  assert.equal((await check(f, 'newsletter', 'email')).reason, 'withdrawn');
});

test('4. soft opt-in needs a sale: no relationship, no allow', async () => {
  const refused = email();
  await ok({ identifier: refused, purpose: 'newsletter', channel: 'email', state: 'refused', method: 'web_form' });
  let c = await check(refused, 'basket_reminders', 'email');
  assert.deepEqual([c.decision, c.reason], ['deny', 'no_relationship']);
  const gpcOnly = email();
  await ok({ identifier: gpcOnly, method: 'gpc' });
  c = await check(gpcOnly, 'basket_reminders', 'push');
  assert.deepEqual([c.decision, c.reason], ['deny', 'no_relationship']);
  // A soft opt-in grant must name the sale.
  const r = await record({ identifier: refused, purpose: 'basket_reminders', state: 'granted', method: 'checkout' });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.field, 'evidence.sale_reference');
  const buyer = email();
  await ok({ identifier: buyer, purpose: 'basket_reminders', state: 'granted', method: 'checkout', evidence: SALE });
  c = await check(buyer, 'basket_reminders', 'email');
  assert.deepEqual([c.decision, c.reason], ['allow', 'soft_opt_in']);
  await ok({ identifier: buyer, purpose: 'basket_reminders', channel: 'email', state: 'withdrawn', method: 'email_link' });
  assert.equal((await check(buyer, 'basket_reminders', 'email')).reason, 'withdrawn');
  assert.equal((await check(buyer, 'basket_reminders', 'push')).decision, 'allow');
});

test('5. a suppression binds the person, whichever identifier is checked', async () => {
  const e = email();
  const cust = `customer:C-${process.pid}-${++seq}`;
  const phone = `phone:+4477009${String(process.pid).padStart(5, '0').slice(-5)}${seq % 10}`;
  const sid = (await ok({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' })).subject_id;
  for (const id of [cust, phone]) {
    const r = await srv.req('POST', `/v1/subjects/${sid}/identifiers`, { token: srv.tokens['subjects:write'], body: { identifier: id } });
    assert.equal(r.status, 201, r.text);
  }
  await ok({ identifier: cust, purpose: 'sms_offers', channel: 'sms', state: 'granted', method: 'web_form' });
  assert.equal((await check(cust, 'newsletter', 'email')).decision, 'allow');
  let r = await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: e, reason: 'unsubscribed' } });
  assert.equal(r.status, 201, r.text);
  for (const [id, p, ch] of [[cust, 'newsletter', 'email'], [phone, 'sms_offers', 'sms'], [cust, 'sms_offers', 'sms']])
    assert.deepEqual([(await check(id, p, ch)).reason], ['suppressed'], `${id} ${p}`);
  assert.equal((await check(cust, 'order_updates', 'email')).decision, 'allow', 'an order update still reaches them');
  // Unlinking the listed address does not free the person.
  r = await srv.req('DELETE', `/v1/subjects/${sid}/identifiers/${encodeURIComponent(e)}`, { token: srv.tokens['subjects:write'] });
  assert.equal(r.status, 200, r.text);
  assert.equal((await check(cust, 'newsletter', 'email')).reason, 'suppressed');
  // An api grant through another identifier of the person is refused.
  r = await record({ identifier: phone, purpose: 'sms_offers', channel: 'sms', state: 'granted', method: 'api' });
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json.error.code, 'suppressed');
  // A bounce stops the channels of its identifier type only.
  const b = email();
  const cb = `customer:B-${process.pid}-${++seq}`;
  const sb = (await ok({ identifier: b, purpose: 'order_updates', state: 'granted', method: 'checkout' })).subject_id;
  await srv.req('POST', `/v1/subjects/${sb}/identifiers`, { token: srv.tokens['subjects:write'], body: { identifier: cb } });
  await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: b, reason: 'bounced' } });
  assert.equal((await check(cb, 'order_updates', 'email')).reason, 'suppressed');
  assert.equal((await check(cb, 'order_updates', 'sms')).decision, 'allow');
});

test('11. a reused request_id with another body is refused; a repeat of the same body replays', async () => {
  const e = email();
  const grant = { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'api', request_id: `rq-${process.pid}-${++seq}` };
  const first = await ok(grant);
  const size = await auditSize();
  const again = await record(grant);
  assert.equal(again.status, 201);
  assert.deepEqual(again.json, first);
  const r = await record({ ...grant, state: 'withdrawn' });
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json.error.code, 'request_id_reused');
  assert.equal(r.json.error.field, 'request_id');
  assert.equal(await auditSize(), size, 'nothing was written');
  // The withdrawal with its own request id goes through.
  await ok({ ...grant, state: 'withdrawn', request_id: `${grant.request_id}-w` });
  assert.equal((await check(e, 'newsletter', 'email')).reason, 'withdrawn');
  for (const t of ['0000-01-01T00:00:00Z', '1969-12-31T23:59:59Z']) {
    const old = await record({ identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'api', collected_at: t });
    assert.equal(old.status, 400, t);
    assert.equal(old.json.error.field, 'collected_at');
  }
  assert.equal(await auditSize(), size + 1);
});

test('10. one person, many spellings: one subject, one suppression for all of them', async () => {
  const tag = `${process.pid}x${++seq}`;
  const spellings = [`email:JOSÉ${tag}@BÜCHER.EXAMPLE`, `email:josé${tag}@bücher.example`,
    `email:josé${tag}@xn--bcher-kva.example`, `email:jose\u0301${tag}@BU\u0308CHER.example`];
  const first = await ok({ identifier: spellings[0], purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' });
  for (const s of spellings.slice(1)) {
    const r = await srv.req('GET', `/v1/subjects/resolve?identifier=${encodeURIComponent(s)}`, { token: CR });
    assert.equal(r.status, 200, `${s}: ${r.text}`);
    assert.equal(r.json.subject_id, first.subject_id, s);
  }
  let r = await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: spellings[2], reason: 'complained' } });
  assert.equal(r.status, 201, r.text);
  for (const s of spellings)
    assert.equal((await check(s, 'newsletter', 'email')).reason, 'suppressed', s);
  // Phones: a calling code that does not exist is refused; a national number
  // is read in the policy's default region (GB) and is the same person.
  r = await record({ identifier: 'phone:+999 1234 5678', purpose: 'sms_offers', channel: 'sms', state: 'granted', method: 'web_form' });
  assert.equal(r.status, 400);
  assert.deepEqual([r.json.error.code, r.json.error.field], ['invalid_identifier', 'identifier']);
  assert.ok(!r.text.includes('1234'), 'the error does not repeat the value');
  const digits = String(100000 + (Number(tag.replace(/\D/g, '')) % 900000)).slice(0, 6);
  const intl = await ok({ identifier: `phone:+44 7700 ${digits}`, purpose: 'sms_offers', channel: 'sms', state: 'granted', method: 'web_form' });
  const national = await ok({ identifier: `phone:07700 ${digits}`, purpose: 'sms_offers', channel: 'sms', state: 'withdrawn', method: 'email_link' });
  assert.equal(national.subject_id, intl.subject_id);
  assert.equal((await check(`phone:+447700${digits}`, 'sms_offers', 'sms')).reason, 'withdrawn');
});
