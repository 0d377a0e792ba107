// SPDX-License-Identifier: ISC
// Consent receipts over HTTP (SPEC §7, docs/receipt-format.md): a recorded
// consent has a receipt that `consentd receipt verify` accepts offline
// with the published key, and that Go's tlog code accepts too; one byte
// changed anywhere makes it fail; it names no identifier and no evidence;
// the same event always gives the same bytes; 400, 404, 409 and 503 are
// answered as documented, writing nothing; an erased subject's event
// answers exactly as an unknown one.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cli, initData, startServer, tmpdir } from './harness.mjs';

const TLOGCHECK = process.env.CONSENTD_TLOGCHECK;

let srv;
let CW;
let CR;
let work;
before(async () => {
  srv = await startServer();
  CW = srv.tokens['consent:write'];
  CR = srv.tokens['consent:read'];
  work = tmpdir('consentd-receipt-');
});
after(async () => {
  fs.rmSync(work, { recursive: true, force: true });
  const r = await srv.stop();
  assert.equal(r.code, 0);
});

let seq = 0;
const email = () => `email:receipt${process.pid}x${++seq}@example.com`;
const EVIDENCE = { ip: '203.0.113.77', user_agent: 'Mozilla/5.0 (ReceiptTest)',
  url: 'https://www.northwind-threads.example/signup?src=receipt-test' };

async function record(body) {
  const r = await srv.req('POST', '/v1/consents', { token: CW,
    body: { purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form', ...body } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

// The receipt of EVENT, once a signed checkpoint covers it (within a second or so).
async function receipt(event) {
  for (let i = 0; i < 50; i++) {
    const r = await srv.req('GET', `/v1/consents/${event}/receipt`, { token: CR });
    if (r.status === 200) return r;
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.error.code, 'checkpoint_pending');
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('no checkpoint covered the event in 5 seconds');
}

async function vkey() {
  const r = await srv.req('GET', '/v1/audit/vkey', { token: srv.tokens['audit:read'] });
  assert.equal(r.status, 200);
  return r.text.trim();
}

async function auditSize() {
  const r = await srv.req('GET', '/v1/audit/entries?to=999999999', { token: srv.tokens['audit:read'] });
  return Number(r.json.error.message.match(/holds (\d+)/)[1]);
}

function verify(file, key) {
  return cli(['receipt', 'verify', file, ...(key ? ['--vkey', key] : [])]);
}

// The same without blocking the event loop, for long runs of it: a loop
// of synchronous runs keeps the HTTP client from seeing the server close
// its idle connection, and the next request would meet a closed socket.
function verifyAsync(file, key) {
  return new Promise((resolve) => {
    execFile(BIN, ['receipt', 'verify', file, '--vkey', key], (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('a recorded consent has a receipt that verifies offline with the published key', async () => {
  const e = email();
  const w = await record({ identifier: e, evidence: EVIDENCE });
  const r = await receipt(w.event_id);
  const file = path.join(work, 'ok.json');
  fs.writeFileSync(file, r.text);
  const key = await vkey();

  const v = verify(file, key);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`ok: consent event ${w.event_id}, audit entry ${w.audit_index} `));
  assert.equal(v.stderr, '');
  // The key from a file works as well.
  fs.writeFileSync(path.join(work, 'vkey'), `${key}\n`);
  assert.equal(verify(file, path.join(work, 'vkey')).code, 0);
  // Without a key: intact, but the tool says it cannot tell who signed.
  const nokey = verify(file);
  assert.equal(nokey.code, 0);
  assert.match(nokey.stderr, /warning: checked with the key the receipt names/);
  // Another log's key: no.
  const other = initData();
  const ok2 = cli(['audit', 'vkey', '--data', other.dir]);
  assert.equal(ok2.code, 0, ok2.stderr);
  const bad = verify(file, ok2.stdout.trim());
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /does NOT verify: signature/);
  fs.rmSync(other.base, { recursive: true, force: true });

  // What it says is what was recorded, on the notice as served.
  const j = r.json;
  assert.equal(j.format, 'consentd-receipt/1');
  assert.match(j.receipt_id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(j.controller.name, 'Northwind Threads Ltd');
  assert.equal(j.language, 'en-GB');
  assert.equal(j.jurisdiction, 'uk_gdpr');
  assert.deepEqual([j.consent.event_id, j.consent.purpose, j.consent.channel, j.consent.action,
    j.consent.method, j.consent.lawful_basis, j.consent.superseded],
  [w.event_id, 'newsletter', 'email', 'granted', 'web_form', 'consent', false]);
  assert.equal(j.consent.collected_at, w.collected_at);
  assert.equal(j.consent.recorded_at, w.recorded_at);
  assert.equal(j.consent.notice.version, w.notice_version);
  const n = await srv.req('GET', j.consent.notice.url);
  assert.equal(n.status, 200);
  assert.equal(j.consent.notice.sha256, n.json.sha256);
  assert.equal(j.audit.index, w.audit_index);
  assert.match(j.subject.pseudonym, /^psn_[a-z2-7]{26}$/);
  assert.equal(j.signature.vkey, key);

  // Nothing that names the person: no identifier, no subject id, no evidence.
  for (const s of [e, e.slice(6), w.subject_id, EVIDENCE.ip, EVIDENCE.user_agent, 'receipt-test'])
    assert.ok(!r.text.includes(s), `the receipt holds ${s}`);
  const entry = Buffer.from(j.audit.entry, 'base64').toString('utf8');
  for (const s of [e.slice(6), w.subject_id, EVIDENCE.ip, EVIDENCE.user_agent])
    assert.ok(!entry.includes(s), `the entry holds ${s}`);
});

test("the receipt's checkpoint and proof verify with Go's tlog code too", async (t) => {
  if (!TLOGCHECK) return t.skip('CONSENTD_TLOGCHECK not set');
  const w = await record({ identifier: email() });
  const j = (await receipt(w.event_id)).json;
  const dir = path.join(work, 'tlog');
  fs.mkdirSync(path.join(dir, 'cp'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'vkey'), await vkey());
  fs.writeFileSync(path.join(dir, 'cp', '000.txt'), j.audit.checkpoint);
  const ents = await srv.req('GET', `/v1/audit/entries?from=0&to=${j.audit.tree_size}`,
    { token: srv.tokens['audit:read'] });
  assert.equal(ents.status, 200);
  fs.writeFileSync(path.join(dir, 'entries.ndjson'), ents.text);
  const line = JSON.parse(ents.text.trim().split('\n')[j.audit.index]);
  assert.equal(line.entry, j.audit.entry, 'the receipt carries the entry as stored');
  fs.writeFileSync(path.join(dir, 'proofs.json'), JSON.stringify({ inclusion: [{ index: j.audit.index,
    size: j.audit.tree_size, leaf_hash: j.audit.leaf_hash, root: j.audit.root, proof: j.audit.proof }],
  consistency: [] }));
  const r = spawnSync(TLOGCHECK, [path.join(dir, 'vkey'), '-', path.join(dir, 'cp'),
    path.join(dir, 'entries.ndjson'), path.join(dir, 'proofs.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^\d+ passed, 0 failed$/m);
});

test('one byte changed anywhere in the file makes verify fail', async () => {
  const w = await record({ identifier: email() });
  const r = await receipt(w.event_id);
  const key = await vkey();
  const text = r.text;
  const j = r.json;
  // Named places: the signature, fields, the proof, the entry, the checkpoint, the id.
  const at = (s, off = 3) => { const i = text.indexOf(s); assert.ok(i >= 0, s); return i + off; };
  const named = {
    signature: at(j.signature.value, 10),
    purpose: at('"newsletter"', 4),
    action: at('"granted"', 2),
    collected_at: at(j.consent.collected_at, 3),
    pseudonym: at(j.subject.pseudonym, 8),
    proof: at(j.audit.proof[0], 7),
    entry: at(j.audit.entry, 40),
    leaf_hash: at(j.audit.leaf_hash, 5),
    checkpoint_root: at(j.audit.root, 4),
    checkpoint_sig: at(JSON.stringify(j.audit.checkpoint).slice(-30, -10), 2),
    receipt_id: at(j.receipt_id, 1),
    index: at(`"index":${j.audit.index}`, 8),
    controller: at('Northwind', 2),
  };
  // And every 23rd byte of the whole file besides.
  const positions = Object.entries(named);
  for (let i = 0; i < text.length; i += 23) positions.push([`byte ${i}`, i]);
  const buf = Buffer.from(text, 'utf8');
  const file = path.join(work, 'flipped.json');
  for (const [what, i] of positions) {
    const b = Buffer.from(buf);
    b[i] ^= 0x01;
    fs.writeFileSync(file, b);
    const v = await verifyAsync(file, key);
    assert.equal(v.code, 1, `${what} (byte ${i}: ${JSON.stringify(String.fromCharCode(buf[i]))}) still verifies`);
    assert.match(v.stderr, /does NOT verify|not a JSON receipt/, what);
  }
  // The unchanged bytes still verify: it was the change that failed them.
  fs.writeFileSync(file, buf);
  assert.equal(verify(file, key).code, 0);
});

test('the same event always gives the same receipt, however far the log grows', async () => {
  const w = await record({ identifier: email() });
  const first = (await receipt(w.event_id)).text;
  const sizeBefore = await auditSize();
  await record({ identifier: email() });
  await receipt((await record({ identifier: email() })).event_id);
  assert.ok(await auditSize() > sizeBefore);
  const again = (await receipt(w.event_id)).text;
  assert.equal(again, first);
});

test('a superseded event has a receipt that says so', async () => {
  const e = email();
  await record({ identifier: e });
  const old = new Date(Date.now() - 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
  const w = await record({ identifier: e, state: 'withdrawn', method: 'import', collected_at: old });
  assert.equal(w.superseded, true);
  const r = await receipt(w.event_id);
  assert.equal(r.json.consent.superseded, true);
  assert.equal(r.json.consent.action, 'withdrawn');
  assert.equal(r.json.consent.collected_at, old);
  const file = path.join(work, 'superseded.json');
  fs.writeFileSync(file, r.text);
  assert.equal(verify(file, await vkey()).code, 0);
});

test('malformed id 400 naming event_id, unknown 404, scopes enforced; nothing written', async () => {
  const w = await record({ identifier: email() });
  await receipt(w.event_id);
  const size = await auditSize();
  for (const bad of ['nope', 'evt_short', 'evt_ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'sub_23abcdefghijklmnopqrstuvwx',
    'evt_23abcdefghijklmnopqrstuvw1']) {
    const r = await srv.req('GET', `/v1/consents/${bad}/receipt`, { token: CR });
    assert.equal(r.status, 400, bad);
    assert.equal(r.json.error.code, 'invalid_field');
    assert.equal(r.json.error.field, 'event_id');
  }
  const u = await srv.req('GET', '/v1/consents/evt_23abcdefghijklmnopqrstuvwx/receipt', { token: CR });
  assert.equal(u.status, 404);
  assert.equal(u.json.error.code, 'not_found');
  const p = `/v1/consents/${w.event_id}/receipt`;
  assert.equal((await srv.req('GET', p)).status, 401);
  assert.equal((await srv.req('GET', p, { token: srv.tokens['consent:check'] })).status, 403);
  assert.equal((await srv.req('GET', p, { token: srv.tokens['audit:read'] })).status, 403);
  const q = await srv.req('GET', `${p}?x=1`, { token: CR });
  assert.equal(q.status, 400);
  assert.equal(q.json.error.code, 'unknown_parameter');
  assert.equal((await srv.req('GET', p, { token: CR })).status, 200);
  assert.equal(await auditSize(), size);
});

test('right after a write, before a checkpoint covers it: 409 checkpoint_pending, nothing written', async () => {
  let seen;
  // The checkpointer signs once a second; a request made right after the
  // write almost always comes before it. Five tries make a miss negligible.
  for (let i = 0; i < 5 && !seen; i++) {
    const w = await record({ identifier: email() });
    const r = await srv.req('GET', `/v1/consents/${w.event_id}/receipt`, { token: CR });
    if (r.status === 409) seen = { r, size: await auditSize(), w };
    else assert.equal(r.status, 200, r.text);
  }
  assert.ok(seen, 'no request came before the checkpoint in five tries');
  assert.equal(seen.r.json.error.code, 'checkpoint_pending');
  assert.equal(seen.r.json.error.field, 'event_id');
  assert.match(seen.r.json.error.message, /within a second/);
  await receipt(seen.w.event_id);
  assert.equal(await auditSize(), seen.size, 'the GET wrote nothing (the checkpointer signs, not the request)');
});

test("an erased subject's event answers as an unknown one does, and tells nothing", async () => {
  const e = email();
  const w = await record({ identifier: e, evidence: EVIDENCE });
  await receipt(w.event_id);
  const d = await srv.req('POST', '/v1/dsr', { token: srv.tokens['dsr:admin'],
    body: { type: 'erasure', identifier: e, verified: true } });
  assert.equal(d.status, 201, d.text);
  const p = await srv.req('POST', `/v1/dsr/${d.json.id}/process`, { token: srv.tokens['dsr:admin'] });
  assert.equal(p.json.status, 'completed', p.text);
  const gone = await srv.req('GET', `/v1/consents/${w.event_id}/receipt`, { token: CR });
  const unknown = await srv.req('GET', '/v1/consents/evt_23abcdefghijklmnopqrstuvwx/receipt', { token: CR });
  assert.equal(gone.status, 404);
  assert.deepEqual(gone.json, unknown.json);
  assert.ok(!gone.text.includes(w.event_id));
});

test('a merged-away subject\'s event keeps its receipt, under the pseudonym it was given with', async () => {
  const a = await record({ identifier: email() });
  const b = await record({ identifier: email(), purpose: 'email_offers' });
  const before = (await receipt(b.event_id)).json;
  const m = await srv.req('POST', '/v1/subjects/merge', { token: srv.tokens['subjects:write'],
    body: { into: a.subject_id, from: b.subject_id, reason: 'same person' } });
  assert.equal(m.status, 200, m.text);
  const r = await receipt(b.event_id);
  assert.equal(r.json.subject.pseudonym, before.subject.pseudonym);
  const file = path.join(work, 'merged.json');
  fs.writeFileSync(file, r.text);
  assert.equal(verify(file, await vkey()).code, 0);
});

test('the verify command: usage errors and unreadable files', () => {
  assert.equal(cli(['receipt']).code, 64);
  assert.equal(cli(['receipt', 'check', 'x']).code, 64);
  assert.equal(cli(['receipt', 'verify']).code, 64);
  assert.equal(cli(['receipt', 'verify', 'a', 'b']).code, 64);
  assert.equal(cli(['receipt', 'verify', 'x', '--vkey', '/nonexistent/vkey']).code, 64);
  const missing = cli(['receipt', 'verify', path.join(work, 'missing.json')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such file/);
  fs.writeFileSync(path.join(work, 'notjson'), 'hello');
  const nj = cli(['receipt', 'verify', path.join(work, 'notjson')]);
  assert.equal(nj.code, 1);
  assert.match(nj.stderr, /not a JSON receipt/);
  fs.writeFileSync(path.join(work, 'other.json'), '{"format":"other"}');
  assert.match(cli(['receipt', 'verify', path.join(work, 'other.json')]).stderr, /format: not a consentd-receipt\/1/);
  assert.equal(cli(['receipt', '--help']).code, 0);
});

test('a store that fails answers 503, never a receipt', async (t) => {
  if (!process.env.CONSENTD_FAULTS_BIN) return t.skip('CONSENTD_FAULTS_BIN not set');
  const f = await startServer({ bin: process.env.CONSENTD_FAULTS_BIN });
  try {
    const w = await f.req('POST', '/v1/consents', { token: f.tokens['consent:write'],
      body: { identifier: 'email:faulty@example.com', purpose: 'newsletter', channel: 'email',
        state: 'granted', method: 'web_form' } });
    assert.equal(w.status, 201, w.text);
    const p = `/v1/consents/${w.json.event_id}/receipt`;
    let ok;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = (await f.req('GET', p, { token: f.tokens['consent:read'] })).status === 200;
      if (!ok) await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(ok);
    for (const fault of ['read_busy', 'read_ioerr']) {
      fs.writeFileSync(path.join(f.dir, 'FAULT'), fault);
      const r = await f.req('GET', p, { token: f.tokens['consent:read'] });
      assert.equal(r.status, 503, fault);
      assert.equal(r.json.error.code, 'unavailable');
      assert.ok(!r.text.includes('signature'));
    }
    fs.rmSync(path.join(f.dir, 'FAULT'), { force: true });
    assert.equal((await f.req('GET', p, { token: f.tokens['consent:read'] })).status, 200, 'recovers');
  } finally {
    fs.rmSync(path.join(f.dir, 'FAULT'), { force: true });
    assert.equal((await f.stop()).code, 0);
  }
});
