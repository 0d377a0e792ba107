// SPDX-License-Identifier: ISC
// The access log of a consent check: its line carries the purpose, the
// channel, the decision and the reason, so a sender's contacts can be
// explained from the log alone, and never the identifier that was checked,
// nor anything of a check that was refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, waitForLog } from './harness.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

const ANA = 'email:log-ana.zimmermann@example.com';

function check(identifier, purpose, channel) {
  const q = new URLSearchParams({ identifier, purpose });
  if (channel) q.set('channel', channel);
  return srv.req('GET', `/v1/consent/check?${q.toString().replace(/\+/g, '%20')}`, { token: srv.tokens['consent:check'] });
}

// The access lines of GET /v1/consent/check, in the order they were answered.
async function checkLines(n) {
  await waitForLog(srv, () => srv.logs.filter((l) => l.includes('"route":"/v1/consent/check"')).length >= n);
  return srv.logs.map((l) => { try { return JSON.parse(l); } catch { return {}; } })
    .filter((j) => j.event === 'http' && j.route === '/v1/consent/check' && j.method === 'GET');
}

test('a check\'s access line names purpose, channel, decision and reason, never the identifier', async () => {
  const w = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    body: { identifier: ANA, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(w.status, 201, w.text);
  const asked = [
    [ANA, 'newsletter', 'email'],
    [ANA, 'email_offers', 'email'],
    ['email:log-nobody@example.com', 'newsletter', 'email'],
  ];
  const answers = [];
  for (const [i, p, c] of asked) {
    const r = await check(i, p, c);
    assert.equal(r.status, 200, r.text);
    answers.push(r.json);
  }
  const lines = (await checkLines(asked.length)).slice(-asked.length);
  assert.equal(lines.length, asked.length);
  // A line is written when its answer has gone out, on the thread that
  // served it: two lines of requests sent one after the other may be
  // written in either order. Each answer must have its line.
  const key = (x) => [x.purpose, x.channel, x.decision, x.reason].join('|');
  for (const l of lines) {
    assert.equal(l.status, 200);
    assert.equal(l.client, 'consent-check');
  }
  assert.deepEqual(lines.map(key).sort(), answers.map(key).sort());
  assert.deepEqual(answers.map((a) => a.decision), ['allow', 'deny', 'deny']);
  assert.deepEqual(answers.map((a) => a.reason), ['consent', answers[1].reason, 'unknown_subject']);
  const log = srv.logs.join('\n');
  for (const s of ['log-ana', 'zimmermann', 'log-nobody', encodeURIComponent(ANA)])
    assert.ok(!log.includes(s), `${s} in the log`);
});

test('a refused check logs none of what was asked', async () => {
  const before = (await checkLines(0)).length;
  // A purpose the policy lacks may itself be personal data: it is not logged.
  const r = await check(ANA, 'ana.zimmermann', 'email');
  assert.equal(r.status, 422);
  const bad = await check('email:not an address', 'newsletter', 'email');
  assert.equal(bad.status, 400);
  const lines = (await checkLines(before + 2)).slice(before);
  assert.deepEqual(lines.map((l) => l.status), [422, 400]);
  for (const l of lines) {
    for (const k of ['purpose', 'channel', 'decision', 'reason']) assert.ok(!(k in l), `${k} logged for a refused check`);
  }
  const log = srv.logs.join('\n');
  assert.ok(!log.includes('zimmermann') && !log.includes('not an address'));
});
