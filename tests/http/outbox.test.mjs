// SPDX-License-Identifier: ISC
// The outbox (SPEC §7, §8): messages to data subjects delivered by the file
// sender, signed webhooks to downstream systems on loopback (real HTTP
// servers here, checking every signature), retries with growing delays,
// dead rows and their retry, the systems' signed callbacks, and what an
// erasure leaves of the person once its messages are out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, POLICY, cli, initData, startServer, tmpdir } from './harness.mjs';

const MAIL = tmpdir('consentd-mail-');
const ENV = { CONSENTD_OUTBOX_DIR: MAIL, CONSENTD_OUTBOX_BASE_MS: '200',
  CONSENTD_OUTBOX_MAX_ATTEMPTS: '4', CONSENTD_OUTBOX_TIMEOUT_MS: '700' };
let srv, DPO, ADMIN;
const receivers = [];
before(async () => {
  srv = await startServer({ env: ENV });
  DPO = srv.tokens['dsr:admin'];
  ADMIN = srv.tokens.admin;
});
after(async () => {
  for (const r of receivers) r.close();
  const r = await srv.stop();
  assert.equal(r.code, 0);
});

let seq = 0;
const email = () => `email:obx${process.pid}x${++seq}@example.com`;
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

async function waitFor(what, fn, timeout = 15000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeout) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
async function outbox(status) {
  const r = await srv.req('GET', `/v1/outbox${status ? `?status=${status}` : ''}`, { token: ADMIN });
  assert.equal(r.status, 200, r.text);
  return r.json.items;
}
async function settle() {
  await waitFor('the outbox to settle', async () => (await outbox('pending')).every((x) => x.held));
}
async function auditSize() {
  await settle();
  const r = await srv.req('GET', '/v1/audit/entries?to=999999999', { token: srv.tokens['audit:read'] });
  return Number(r.json.error.message.match(/holds (\d+)/)[1]);
}
async function auditEntries(from, to) {
  // Entries are served up to the latest signed checkpoint (one a second).
  return waitFor('signed entries', async () => {
    const r = await srv.req('GET', `/v1/audit/entries?from=${from}&to=${to}`, { token: srv.tokens['audit:read'] });
    if (r.status !== 200) return undefined;
    return r.text.trim().split('\n').map((l) => JSON.parse(Buffer.from(JSON.parse(l).entry, 'base64')));
  });
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
async function getReq(id) {
  const r = await srv.req('GET', `/v1/dsr/${id}`, { token: DPO });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
async function grant(identifier) {
  const r = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    body: { identifier, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
const steps = (req) => req.timeline.map((t) => t.step);
const sign = (secret, body, t = Math.floor(Date.now() / 1000)) =>
  `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;

// A webhook receiver on loopback. ANSWER(n) gives the status of the n-th
// call (from 1), or null to never answer. Every call's signature is checked.
function receiver(secret, answer) {
  const calls = [];
  const srvh = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const sig = req.headers['x-consentd-signature'] || '';
      const m = sig.match(/^t=(\d+),v1=([0-9a-f]{64})$/);
      const good = !!m && createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex') === m[2] &&
        Math.abs(Number(m[1]) - Date.now() / 1000) < 300;
      calls.push({ at: Date.now(), good, body, event: req.headers['x-consentd-event'],
        delivery: req.headers['x-consentd-delivery'] });
      const st = answer(calls.length);
      if (st === null) return; // never answers
      res.writeHead(st).end();
    });
  });
  receivers.push(srvh);
  return new Promise((resolve) => srvh.listen(0, '127.0.0.1', () =>
    resolve({ calls, url: `http://127.0.0.1:${srvh.address().port}/hook` })));
}
async function addSystem(name, url, events, secret, want = 201) {
  const r = await srv.req('POST', '/v1/systems', { token: ADMIN, body: { name, url, events, secret } });
  assert.equal(r.status, want, r.text);
  return r.json;
}
async function callback(id, name, body, secret, headers = {}) {
  const raw = JSON.stringify(body);
  return srv.req('POST', `/v1/dsr/${id}/systems/${name}`, { raw,
    headers: { 'content-type': 'application/json', 'x-consentd-signature': sign(secret, raw), ...headers } });
}
const files = () => fs.readdirSync(MAIL).filter((f) => !f.startsWith('.'));

test('a request\'s identity code goes out through the outbox, and verifies it', async () => {
  const e = email();
  await grant(e);
  const r = await create({ type: 'access', identifier: e });
  const rows = (await outbox()).filter((x) => x.request_id === r.id);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].kind, 'message');
  assert.equal(rows[0].name, 'code');
  assert.equal(rows[0].channel, 'email');
  assert.ok(!JSON.stringify(rows).includes(e.slice(6)), 'the outbox list shows no address');
  const file = path.join(MAIL, `${rows[0].id}.eml`);
  const text = await waitFor('the code\'s file', () => fs.existsSync(file) && fs.readFileSync(file, 'utf8'));
  assert.match(text, new RegExp(`^To: <${e.slice(6)}>\r$`, 'm'));
  assert.match(text, /^From: Northwind Threads Ltd <privacy@northwind-threads\.example>\r$/m);
  assert.match(text, /^Subject: Your verification code for request dsr_/m);
  assert.match(text, /^Message-ID: <obx_[a-z2-7]{26}@consentd>\r$/m);
  const code = text.match(/^ {4}(\d{6})\r$/m)[1];
  const sent = await waitFor('the row sent', async () => (await outbox('sent')).find((x) => x.id === rows[0].id));
  assert.equal(sent.attempts, 1);
  assert.equal(sent.body_kept, false, 'a delivered body is deleted');
  const v = await act(r.id, 'verify', { code });
  assert.equal(v.status, 'verified');
  assert.deepEqual(steps(v), ['received', 'message_sent', 'verified']);
  assert.equal(v.timeline[1].actor, 'outbox');
  const idx = v.timeline.map((t) => t.audit_index);
  const types = (await auditEntries(idx[0], idx.at(-1) + 1))
    .filter((en) => JSON.stringify(en).includes(r.id)).map((en) => en.type);
  assert.deepEqual(types, ['dsr.received', 'dsr.message_sent', 'dsr.verified']);
  for (const l of srv.logs) assert.ok(!l.includes(e.slice(6)) && !l.includes(code), `log: ${l}`);
});

test('email first, then phone: a person with only a phone number gets the code as a text file', async () => {
  const phone = `phone:+4477009${String((process.pid + 7) % 100000).padStart(5, '0')}`;
  const e = email();
  const both = await srv.req('POST', '/v1/subjects', { token: srv.tokens['subjects:write'],
    body: { identifiers: [phone, e] } });
  assert.equal(both.status, 201, both.text);
  const r1 = await create({ type: 'objection', identifier: phone });
  const row1 = (await outbox()).find((x) => x.request_id === r1.id);
  assert.equal(row1.channel, 'email', 'email first, whichever identifier was asked about');
  await act(r1.id, 'cancel', { reason: 'test' });
  const unlink = await srv.req('DELETE', `/v1/subjects/${both.json.subject_id}/identifiers/${encodeURIComponent(e)}`,
    { token: srv.tokens['subjects:write'] });
  assert.equal(unlink.status, 200, unlink.text);
  const r2 = await create({ type: 'objection', identifier: phone });
  const row2 = (await outbox()).find((x) => x.request_id === r2.id);
  assert.equal(row2.channel, 'phone');
  const file = path.join(MAIL, `${row2.id}.txt`);
  const text = await waitFor('the text file', () => fs.existsSync(file) && fs.readFileSync(file, 'utf8'));
  assert.match(text, new RegExp(`^To: \\${phone.slice(6)}$`, 'm'));
  assert.match(text, /^ {4}\d{6}$/m);
});

test('systems: registered by an admin, validated, never showing the secret', async () => {
  const secret = 'a-secret-of-32-bytes-for-testing';
  const before = await auditSize();
  const bad = [
    [{ name: 'Bad Name', url: 'https://x.example/h', events: ['erasure'], secret }, 'name'],
    [{ name: 'x', url: 'ftp://x.example/h', events: ['erasure'], secret }, 'url'],
    [{ name: 'x', url: 'https://x.example/h', events: ['forget'], secret }, 'events[0]'],
    [{ name: 'x', url: 'https://x.example/h', events: [], secret }, 'events'],
    [{ name: 'x', url: 'https://x.example/h', events: ['erasure'], secret: 'short' }, 'secret'],
    [{ name: 'x', url: 'https://x.example/h', events: ['erasure'] }, 'secret'],
    [{ name: 'x', url: 'https://x.example/h', events: ['erasure'], secret, colour: 1 }, 'colour'],
  ];
  for (const [body, field] of bad) {
    const r = await srv.req('POST', '/v1/systems', { token: ADMIN, body });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.field, field, r.text);
  }
  for (const s of ['dsr:admin', 'consent:write']) {
    assert.equal((await srv.req('POST', '/v1/systems', { token: srv.tokens[s],
      body: { name: 'x', url: 'https://x.example/h', events: ['erasure'], secret } })).status, 403);
    assert.equal((await srv.req('GET', '/v1/systems', { token: srv.tokens[s] })).status, 403);
    assert.equal((await srv.req('GET', '/v1/outbox', { token: srv.tokens[s] })).status, 403);
  }
  assert.equal(await auditSize(), before, 'nothing was written');
  const made = await addSystem('warehouse', 'http://127.0.0.1:9/h', ['objection'], secret);
  assert.deepEqual(made.events, ['objection']);
  await addSystem('warehouse', 'https://x.example/h', ['objection'], secret, 409);
  const list = await srv.req('GET', '/v1/systems', { token: ADMIN });
  assert.equal(list.status, 200);
  assert.ok(list.json.systems.some((s) => s.name === 'warehouse'));
  assert.ok(!list.text.includes(secret));
  assert.ok(srv.logs.some((l) => l.includes('system_url_insecure') && l.includes('warehouse')));
  assert.ok(!srv.logs.some((l) => l.includes(secret)));
  assert.equal((await srv.req('DELETE', '/v1/systems/warehouse', { token: ADMIN })).status, 200);
  assert.equal((await srv.req('DELETE', '/v1/systems/warehouse', { token: ADMIN })).status, 404);
});

test('an erasure calls its systems with signed webhooks, retried with growing delays, until they report', async () => {
  const secret = 'crm-secret-0123456789abcdef';
  const rx = await receiver(secret, (n) => (n <= 3 ? 500 : 200));
  await addSystem('crm', rx.url, ['erasure'], secret);
  const e = email();
  await grant(e);
  const r = await create({ type: 'erasure', identifier: e, verified: true });
  const p = await act(r.id, 'process');
  assert.equal(p.status, 'awaiting_systems');
  assert.deepEqual(p.systems.map((s) => [s.name, s.status]), [['crm', 'pending']]);
  await waitFor('four calls', () => rx.calls.length >= 4);
  await sleep(300);
  assert.equal(rx.calls.length, 4, 'delivered once it was answered 2xx');
  assert.ok(rx.calls.every((c) => c.good), 'every call is signed with the system\'s secret');
  assert.ok(rx.calls.every((c) => c.event === 'erasure' && c.delivery === rx.calls[0].delivery));
  const body = JSON.parse(rx.calls[0].body);
  assert.equal(body.request_id, r.id);
  assert.equal(body.event, 'erasure');
  assert.deepEqual(body.identifiers, [e]);
  const gaps = rx.calls.slice(1).map((c, i) => c.at - rx.calls[i].at);
  assert.ok(gaps[0] >= 80, `first retry waited ${gaps[0]} ms`);
  assert.ok(gaps[2] > gaps[0], `backoff grows: ${gaps}`);
  const row = await waitFor('the row sent', async () =>
    (await outbox('sent')).find((x) => x.request_id === r.id && x.kind === 'webhook'));
  assert.equal(row.attempts, 4);
  assert.equal(row.system, 'crm');
  // The completion notice waits for the systems.
  const held = (await outbox('pending')).find((x) => x.request_id === r.id);
  assert.equal(held.name, 'completion');
  assert.equal(held.held, true);
  let got = await getReq(r.id);
  assert.ok(steps(got).includes('system_notified'));
  // The system reports, signed; the request completes and the notice goes out.
  const cb = await callback(r.id, 'crm', { status: 'completed', detail: 'deleted from the CRM' }, secret);
  assert.equal(cb.status, 200, cb.text);
  assert.equal(cb.json.request_status, 'completed');
  got = await getReq(r.id);
  assert.equal(got.status, 'completed');
  assert.deepEqual(got.systems.map((s) => [s.name, s.status, s.detail]), [['crm', 'completed', 'deleted from the CRM']]);
  const rep = got.timeline.find((t) => t.step === 'system_reported');
  assert.equal(rep.actor, 'system:crm');
  await settle();
  const notice = (await outbox('sent')).find((x) => x.request_id === r.id && x.name === 'completion');
  const text = fs.readFileSync(path.join(MAIL, `${notice.id}.eml`), 'utf8');
  assert.match(text, /supervisory authority/);
  assert.match(text, /Information Commissioner's Office/);
  got = await getReq(r.id);
  assert.ok(steps(got).includes('message_sent'));
  // Nothing of the person is left in the outbox (or anywhere in the store).
  const f = spawnSync(process.env.CONSENTD_DBTOOL, ['forensics', srv.dir, e.slice(6)], { encoding: 'utf8' });
  assert.equal(f.status, 0, f.stderr);
  assert.match(f.stdout, /^0 hits/m, f.stdout);
  assert.equal((await srv.req('DELETE', '/v1/systems/crm', { token: ADMIN })).status, 200);
});

test('callbacks: an unknown system, a bad or stale signature, a request it was not called for: 4xx, nothing written', async () => {
  const secret = 'cb-secret-0123456789abcdef';
  const rx = await receiver(secret, () => 200);
  await addSystem('ledger', rx.url, ['objection'], secret);
  const e = email();
  await grant(e);
  const r = await create({ type: 'objection', identifier: e, verified: true });
  assert.equal((await act(r.id, 'process')).status, 'awaiting_systems');
  const other = await create({ type: 'access', identifier: email(), verified: true });
  const size = await auditSize();
  const raw = JSON.stringify({ status: 'completed' });
  const cases = [
    [await callback(r.id, 'nobody', { status: 'completed' }, secret), 401, 'unknown_system'],
    [await callback(r.id, 'ledger', { status: 'completed' }, 'not-the-secret-at-all'), 401, 'bad_signature'],
    [await srv.req('POST', `/v1/dsr/${r.id}/systems/ledger`, { raw, headers: { 'content-type': 'application/json' } }), 401, 'missing_signature'],
    [await srv.req('POST', `/v1/dsr/${r.id}/systems/ledger`, { raw, headers: { 'content-type': 'application/json',
      'x-consentd-signature': sign(secret, raw, Math.floor(Date.now() / 1000) - 900) } }), 401, 'bad_signature'],
    [await srv.req('POST', `/v1/dsr/${r.id}/systems/ledger`, { raw: '{"status":"failed"}', headers: {
      'content-type': 'application/json', 'x-consentd-signature': sign(secret, raw) } }), 401, 'bad_signature'],
    [await callback('dsr_aaaaaaaaaaaaaaaaaaaaaaaaaa', 'ledger', { status: 'completed' }, secret), 404, 'not_found'],
    [await callback(other.id, 'ledger', { status: 'completed' }, secret), 404, 'not_found'],
    [await callback(r.id, 'ledger', { status: 'done' }, secret), 400, 'invalid_field'],
  ];
  for (const [res, status, code] of cases) {
    assert.equal(res.status, status, res.text);
    assert.equal(res.json.error.code, code, res.text);
  }
  assert.equal(await auditSize(), size, 'nothing was written');
  assert.equal((await getReq(r.id)).status, 'awaiting_systems');
  // A failure leaves the request waiting; a later completion completes it.
  assert.equal((await callback(r.id, 'ledger', { status: 'failed', detail: 'locked' }, secret)).json.request_status, 'awaiting_systems');
  assert.equal((await callback(r.id, 'ledger', { status: 'no_data' }, secret)).json.request_status, 'completed');
  assert.equal((await srv.req('DELETE', '/v1/systems/ledger', { token: ADMIN })).status, 200);
});

test('a system that never answers: its webhook ends dead, listed, and can be retried', async () => {
  const secret = 'slow-secret-0123456789abcdef';
  const rx = await receiver(secret, () => null);
  await addSystem('slow', rx.url, ['restriction'], secret);
  const e = email();
  await grant(e);
  const r = await create({ type: 'restriction', identifier: e, verified: true });
  assert.equal((await act(r.id, 'process')).status, 'awaiting_systems');
  const dead = await waitFor('the webhook dead', async () =>
    (await outbox('dead')).find((x) => x.request_id === r.id), 30000);
  assert.equal(dead.kind, 'webhook');
  assert.equal(dead.attempts, 4);
  assert.match(dead.last_error, /timeout|timed out/i);
  assert.ok(!dead.last_error.includes('127.0.0.1'));
  assert.equal(rx.calls.length, 4);
  const got = await getReq(r.id);
  assert.ok(steps(got).includes('system_unreachable'));
  const before = await auditSize();
  const again = await srv.req('POST', `/v1/outbox/${dead.id}/retry`, { token: ADMIN });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.status, 'pending');
  assert.equal(again.json.attempts, 0);
  assert.equal((await srv.req('POST', `/v1/outbox/${dead.id}/retry`, { token: ADMIN })).status, 409);
  assert.equal((await srv.req('POST', '/v1/outbox/obx_aaaaaaaaaaaaaaaaaaaaaaaaaa/retry', { token: ADMIN })).status, 404);
  assert.equal((await srv.req('DELETE', '/v1/systems/slow', { token: ADMIN })).status, 200);
  // Its system gone, the retried row dies at its next attempt.
  await waitFor('dead again', async () => (await outbox('dead')).some((x) => x.id === dead.id));
  assert.ok(await auditSize() > before);
  assert.equal((await srv.req('GET', '/v1/outbox?status=lost', { token: ADMIN })).status, 400);
});

test('consent.changed: each change goes to the systems registered for it, and the record shows who applied it', async () => {
  const e = email();
  const g = await grant(e);
  let sub = await srv.req('GET', `/v1/subjects/${g.subject_id}`, { token: srv.tokens['subjects:read'] });
  assert.equal(sub.status, 200, sub.text);
  assert.deepEqual(sub.json.systems, [], 'no system registered: nothing queued, nothing shown');
  assert.ok(!(await outbox()).some((x) => x.name === 'consent.changed'));
  const secret = 'esp-secret-0123456789abcdef';
  const rx = await receiver(secret, () => 204);
  await addSystem('esp', rx.url, ['consent.changed'], secret);
  const w = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'preference_center' } });
  assert.equal(w.status, 201, w.text);
  await waitFor('the webhook', () => rx.calls.length >= 1);
  assert.ok(rx.calls[0].good);
  assert.equal(rx.calls[0].event, 'consent.changed');
  const body = JSON.parse(rx.calls[0].body);
  assert.deepEqual([body.subject_id, body.purpose, body.channel, body.state, body.event_id],
    [g.subject_id, 'newsletter', 'email', 'withdrawn', w.json.event_id]);
  assert.ok(!rx.calls[0].body.includes(e.slice(6)), 'no identifier in it');
  sub = await waitFor('applied', async () => {
    const r = await srv.req('GET', `/v1/subjects/${g.subject_id}`, { token: srv.tokens['subjects:read'] });
    return r.json.systems[0]?.status === 'applied' && r;
  });
  assert.equal(sub.json.systems[0].name, 'esp');
  assert.equal((await srv.req('DELETE', '/v1/systems/esp', { token: ADMIN })).status, 200);
});

test('the command line: systems, and a dead message retried and delivered by one run', async () => {
  const add = spawnSync(BIN, ['systems', 'add', '--data', srv.dir, '--name', 'cli-sys',
    '--url', 'https://cli.example/hook', '--events', 'erasure,objection'],
  { input: 'cli-secret-0123456789abcdef\n', encoding: 'utf8' });
  assert.equal(add.status, 0, add.stderr);
  assert.ok(!add.stdout.includes('cli-secret'));
  const list = cli(['systems', 'list', '--data', srv.dir]);
  assert.equal(list.code, 0, list.stderr);
  const sys = JSON.parse(list.stdout).systems.find((x) => x.name === 'cli-sys');
  assert.deepEqual(sys.events, ['erasure', 'objection']);
  assert.ok(!list.stdout.includes('cli-secret'));
  assert.equal(cli(['systems', 'remove', '--data', srv.dir, 'cli-sys']).code, 0);
  assert.notEqual(cli(['systems', 'remove', '--data', srv.dir, 'cli-sys']).code, 0);

  // A server whose sender cannot send: the code's message dies at once.
  const data = initData();
  const s2 = await startServer({ data, env: { ...ENV, CONSENTD_OUTBOX_SENDER: 'smtp',
    CONSENTD_OUTBOX_MAX_ATTEMPTS: '1', CONSENTD_SMTP_URL: '' } });
  let id;
  try {
    // A known subject: the message is sealed under their key, kept while it is dead.
    const e = email();
    const g = await s2.req('POST', '/v1/consents', { token: s2.tokens['consent:write'],
      body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
    assert.equal(g.status, 201, g.text);
    const r = await s2.req('POST', '/v1/dsr', { token: s2.tokens['dsr:admin'], body: { type: 'access', identifier: e } });
    assert.equal(r.status, 201, r.text);
    const row = await waitFor('the message dead', async () =>
      (await s2.req('GET', '/v1/outbox?status=dead', { token: s2.tokens.admin })).json.items[0]);
    assert.match(row.last_error, /CONSENTD_SMTP_URL/);
    id = row.id;
  } finally {
    assert.equal((await s2.stop()).code, 0);
  }
  const dead = JSON.parse(cli(['outbox', 'list', '--data', data.dir, '--status', 'dead']).stdout).items;
  assert.deepEqual(dead.map((x) => x.id), [id]);
  const retry = cli(['outbox', 'retry', '--data', data.dir, id]);
  assert.equal(retry.code, 0, retry.stderr);
  assert.equal(JSON.parse(retry.stdout).status, 'pending');
  const mail = tmpdir('consentd-mail-cli-');
  const run = cli(['outbox', 'run', '--data', data.dir, '--policy', POLICY], { env: { CONSENTD_OUTBOX_DIR: mail } });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^1 sent, 0 failed$/m);
  assert.ok(fs.existsSync(path.join(mail, `${id}.eml`)));
  const again = cli(['outbox', 'run', '--data', data.dir, '--policy', POLICY], { env: { CONSENTD_OUTBOX_DIR: mail } });
  assert.match(again.stdout, /^0 sent, 0 failed$/m);
});

test('a failing store: every outbox, systems and callback route answers 503, and nothing is written', async () => {
  const s3 = await startServer({ bin: process.env.CONSENTD_FAULTS_BIN, env: ENV });
  const fault = (what) => {
    if (what) fs.writeFileSync(path.join(s3.dir, 'FAULT'), what);
    else fs.rmSync(path.join(s3.dir, 'FAULT'), { force: true });
  };
  try {
    const secret = 'fault-secret-0123456789abcdef';
    const A = s3.tokens.admin;
    const made = await s3.req('POST', '/v1/systems', { token: A,
      body: { name: 'erp', url: 'https://erp.example/h', events: ['erasure'], secret } });
    assert.equal(made.status, 201, made.text);
    const raw = JSON.stringify({ status: 'completed' });
    const cb = () => s3.req('POST', '/v1/dsr/dsr_aaaaaaaaaaaaaaaaaaaaaaaaaa/systems/erp', { raw,
      headers: { 'content-type': 'application/json', 'x-consentd-signature': sign(secret, raw) } });
    for (const f of ['read_busy', 'read_ioerr']) {
      fault(f);
      for (const p of ['/v1/outbox', '/v1/outbox?status=dead', '/v1/systems']) {
        const r = await s3.req('GET', p, { token: A });
        assert.equal(r.status, 503, `${f} ${p}: ${r.text}`);
      }
      assert.equal((await cb()).status, 503, `${f} callback`);
    }
    for (const f of ['write_busy', 'write_ioerr']) {
      fault(f);
      const calls = [
        ['POST', '/v1/systems', { name: 'erp2', url: 'https://erp.example/h', events: ['erasure'], secret }],
        ['DELETE', '/v1/systems/erp'],
        ['POST', '/v1/outbox/obx_aaaaaaaaaaaaaaaaaaaaaaaaaa/retry'],
      ];
      for (const [m, p, body] of calls) {
        const r = await s3.req(m, p, { token: A, body });
        assert.equal(r.status, 503, `${f} ${m} ${p}: ${r.text}`);
      }
      assert.equal((await cb()).status, 503, `${f} callback`);
    }
    fault(null);
    const list = await s3.req('GET', '/v1/systems', { token: A });
    assert.deepEqual(list.json.systems.map((x) => x.name), ['erp'], 'nothing was written');
  } finally {
    fault(null);
    assert.equal((await s3.stop()).code, 0);
  }
});

test('a merge carries the merged-away subject\'s waiting messages over, still deliverable', async () => {
  const data = initData();
  const s4 = await startServer({ data, env: { ...ENV, CONSENTD_OUTBOX_SENDER: 'smtp',
    CONSENTD_OUTBOX_MAX_ATTEMPTS: '1', CONSENTD_SMTP_URL: '' } });
  const a = email(), b = email();
  let id;
  try {
    const mk = async (identifier) => {
      const r = await s4.req('POST', '/v1/subjects', { token: s4.tokens['subjects:write'], body: { identifiers: [identifier] } });
      assert.equal(r.status, 201, r.text);
      return r.json.subject_id;
    };
    const sa = await mk(a), sb = await mk(b);
    const r = await s4.req('POST', '/v1/dsr', { token: s4.tokens['dsr:admin'], body: { type: 'access', identifier: b } });
    assert.equal(r.status, 201, r.text);
    const row = await waitFor('the message dead', async () =>
      (await s4.req('GET', '/v1/outbox?status=dead', { token: s4.tokens.admin })).json.items[0]);
    id = row.id;
    const m = await s4.req('POST', '/v1/subjects/merge', { token: s4.tokens['subjects:write'], body: { into: sa, from: sb } });
    assert.equal(m.status, 200, m.text);
  } finally {
    assert.equal((await s4.stop()).code, 0);
  }
  // Retried once the server is gone, so its own delivery thread (whose
  // sender cannot send) does not take the row first.
  const retry = cli(['outbox', 'retry', id, '--data', data.dir]);
  assert.equal(retry.code, 0, retry.stderr);
  const mail = tmpdir('consentd-mail-merge-');
  const run = cli(['outbox', 'run', '--data', data.dir, '--policy', POLICY], { env: { CONSENTD_OUTBOX_DIR: mail } });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^1 sent, 0 failed$/m, 'opened under the surviving subject\'s key');
  assert.match(fs.readFileSync(path.join(mail, `${id}.eml`), 'utf8'), new RegExp(`^To: <${b.slice(6)}>\r$`, 'm'));
});
