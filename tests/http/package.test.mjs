// SPDX-License-Identifier: ISC
// Access and portability packages (SPEC §8; docs/export-format.md): a
// processed request holds a signed consentd-export/1 document, streamed
// by GET /v1/dsr/{id}/package and verified offline with the audit log's
// verifier key by `consentd dsr verify-package`; a flipped byte fails it.
// Portability also offers CSV. An erasure destroys the packages, and
// nothing of the person is left in the data directory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, startServer, tmpdir, settledAuditSize, settleOutbox } from './harness.mjs';

let srv;
let DPO;
let CW;
before(async () => {
  // Delivered mail goes to a directory of its own, as it would leave for a
  // mail server: the forensics test searches the data directory whole.
  srv = await startServer({ env: { CONSENTD_OUTBOX_DIR: tmpdir('consentd-mail-'),
    CONSENTD_OUTBOX_BASE_MS: '200' } });
  DPO = srv.tokens['dsr:admin'];
  CW = srv.tokens['consent:write'];
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

let seq = 0;
const email = () => `email:pkg${process.pid}x${++seq}@example.com`;
const run = (args) => spawnSync(BIN, args, { encoding: 'utf8' });

async function subject(profile) {
  const e = email();
  const r = await srv.req('POST', '/v1/subjects', { token: srv.tokens['subjects:write'],
    body: { identifiers: [e], profile } });
  assert.equal(r.status, 201, r.text);
  return { e, id: r.json.subject_id };
}
async function consent(identifier, purpose, state, evidence) {
  const r = await srv.req('POST', '/v1/consents', { token: CW,
    body: { identifier, purpose, channel: 'email', state, method: 'web_form', evidence } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
async function processed(type, identifier) {
  const c = await srv.req('POST', '/v1/dsr', { token: DPO, body: { type, identifier, verified: true } });
  assert.equal(c.status, 201, c.text);
  const p = await srv.req('POST', `/v1/dsr/${c.json.id}/process`, { token: DPO });
  assert.equal(p.status, 200, p.text);
  return p.json;
}
const settle = () => settleOutbox(srv);
const auditSize = () => settledAuditSize(srv);
async function vkeyFile() {
  const r = await srv.req('GET', '/v1/audit/vkey', { token: srv.tokens['audit:read'] });
  assert.equal(r.status, 200, r.text);
  const f = path.join(tmpdir(), 'vkey');
  fs.writeFileSync(f, r.text);
  return { file: f, text: r.text };
}
// The document's members, parsed as JSON (it is one JSON object).
const doc = (text) => JSON.parse(text);

test('an access package holds the record, its history with evidence, and verifies offline', async () => {
  const s = await subject({ first_name: 'Ottoline', city: 'Brackenfold' });
  await consent(s.e, 'newsletter', 'granted', { form_id: 'footer-signup', url: 'https://shop.example/Wexcombe' });
  await consent(s.e, 'newsletter', 'withdrawn', { form_id: 'preference-centre' });
  await consent(s.e, 'email_offers', 'granted', { form_id: 'checkout' });
  const req = await processed('access', s.e);
  assert.equal(req.status, 'completed');
  const steps = req.timeline.map((t) => t.step);
  assert.deepEqual(steps.slice(-3), ['in_progress', 'package_ready', 'completed']);
  const ready = req.timeline.find((t) => t.step === 'package_ready');
  assert.equal(ready.reason ?? null, null);

  const r = await srv.req('GET', `/v1/dsr/${req.id}/package`, { token: DPO });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const d = doc(r.text);
  assert.equal(d.format, 'consentd-export/1');
  assert.equal(d.request.id, req.id);
  assert.equal(d.request.type, 'access');
  assert.equal(d.subject.subject_id, s.id);
  assert.deepEqual(d.identifiers.map((i) => i.identifier), [s.e]);
  assert.deepEqual(d.profile, { first_name: 'Ottoline', city: 'Brackenfold' });
  assert.equal(d.consent_history.length, 3);
  assert.deepEqual(d.consent_history.map((ev) => [ev.purpose, ev.state]),
    [['newsletter', 'granted'], ['newsletter', 'withdrawn'], ['email_offers', 'granted']]);
  assert.deepEqual(d.consent_history[0].evidence, { form_id: 'footer-signup', url: 'https://shop.example/Wexcombe' });
  const cur = Object.fromEntries(d.consents.map((c) => [c.purpose, c.state]));
  assert.deepEqual(cur, { newsletter: 'withdrawn', email_offers: 'granted' });
  assert.ok(d.preferences.channels);
  assert.ok(d.requests.some((q) => q.id === req.id && q.type === 'access'));
  // Art. 15(1): purposes, lawful bases, categories, recipients, retention, source.
  const nl = d.processing.purposes.find((p) => p.id === 'newsletter');
  assert.equal(nl.lawful_basis, 'consent');
  assert.ok(nl.data_categories.length > 0);
  assert.ok(Array.isArray(nl.recipients));
  assert.equal(nl.retention.days, 730);
  assert.equal(typeof nl.source, 'string');
  assert.ok(d.processing.supervisory_authority.name);
  assert.deepEqual(d.systems, []);
  assert.deepEqual(d.manifest.sections.map((x) => x.name), ['format', 'generated_at', 'request',
    'subject', 'identifiers', 'profile', 'consents', 'consent_history', 'preferences', 'requests',
    'processing', 'systems']);
  assert.equal(d.signature.algorithm, 'ed25519');

  // Offline: with the key GET /v1/audit/vkey publishes, as text or as a file.
  const vk = await vkeyFile();
  const f = path.join(tmpdir(), 'package.json');
  fs.writeFileSync(f, r.text);
  let v = run(['dsr', 'verify-package', f, '--vkey', vk.file]);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /verified: 12 sections/);
  v = run(['dsr', 'verify-package', f, '--vkey', vk.text.trim()]);
  assert.equal(v.status, 0, v.stderr);
  // One flipped byte anywhere fails: in the history, in the manifest, in the signature.
  for (const needle of ['Wexcombe', '"sections"', '"value":"']) {
    const b = Buffer.from(r.text);
    const at = b.indexOf(needle) + needle.length;
    b[at] ^= 0x01;
    fs.writeFileSync(f, b);
    v = run(['dsr', 'verify-package', f, '--vkey', vk.file]);
    assert.equal(v.status, 1, `${needle}: ${v.stdout}`);
    assert.match(v.stderr, /NOT VERIFIED/);
  }
  // Another key does not verify it.
  fs.writeFileSync(f, r.text);
  const other = startKeyless();
  v = run(['dsr', 'verify-package', f, '--data', other]);
  assert.equal(v.status, 1, v.stdout);
  assert.match(v.stderr, /NOT VERIFIED/);
  // The CLI exports the same bytes from the store.
  const out = path.join(tmpdir(), 'export.json');
  const ex = run(['dsr', 'export', req.id, '-o', out, '--data', srv.dir]);
  assert.equal(ex.status, 0, ex.stderr);
  assert.equal(fs.readFileSync(out, 'utf8'), r.text);
  assert.equal((fs.statSync(out).mode & 0o777), 0o600);
  // The package is held encrypted: none of the values is in the data directory's files.
  for (const file of fs.readdirSync(path.join(srv.dir, 'packages'))) {
    const raw = fs.readFileSync(path.join(srv.dir, 'packages', file));
    for (const n of ['Ottoline', 'Brackenfold', 'Wexcombe', s.e.slice(6)]) assert.ok(!raw.includes(n));
  }
});

// A second data directory with a log key of its own.
function startKeyless() {
  const dir = path.join(tmpdir(), 'other');
  const r = run(['init', '--data', dir]);
  assert.equal(r.status, 0, r.stderr);
  return dir;
}

test('a portability package also comes as CSV; format is checked', async () => {
  const s = await subject({ first_name: 'Quillon', note: 'likes "quotes", commas' });
  await consent(s.e, 'newsletter', 'granted', { form_id: 'a,b' });
  await consent(s.e, 'recommendations', 'granted');
  const req = await processed('portability', s.e);
  assert.equal(req.status, 'completed');
  const ready = req.timeline.find((t) => t.step === 'package_ready');
  assert.ok(ready);
  const csv = await srv.req('GET', `/v1/dsr/${req.id}/package?format=csv`, { token: DPO });
  assert.equal(csv.status, 200, csv.text);
  assert.match(csv.headers.get('content-type'), /^text\/csv/);
  const lines = csv.text.split('\r\n');
  assert.equal(lines[0], 'record,event_id,purpose,channel,state,method,notice_version,' +
    'collected_at,recorded_at,superseded,name,value');
  assert.equal(lines.at(-1), '');
  assert.ok(lines.includes(`identifier,,,,,,,,,,identifier,${s.e}`), csv.text);
  assert.ok(lines.includes('profile,,,,,,,,,,note,"likes ""quotes"", commas"'), csv.text);
  const ev = lines.filter((l) => l.startsWith('consent,'));
  assert.equal(ev.length, 2);
  assert.match(ev[0], /^consent,evt_[a-z0-9]+,newsletter,email,granted,web_form,\d+,[^,]+,[^,]+,false,evidence,"{""form_id"":""a,b""}"$/);
  const json = await srv.req('GET', `/v1/dsr/${req.id}/package?format=json`, { token: DPO });
  assert.equal(json.status, 200);
  assert.equal(doc(json.text).request.type, 'portability');
  // CSV is for portability; an unknown format is 400.
  const acc = await processed('access', s.e);
  let r = await srv.req('GET', `/v1/dsr/${acc.id}/package?format=csv`, { token: DPO });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.field, 'format');
  r = await srv.req('GET', `/v1/dsr/${acc.id}/package?format=xml`, { token: DPO });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'invalid_parameter');
  r = await srv.req('GET', `/v1/dsr/${acc.id}/package?zip=1`, { token: DPO });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'unknown_parameter');
});

test('no package yet, another type, no such request, no token: clear refusals', async () => {
  const s = await subject({ first_name: 'Perpetua' });
  const c = await srv.req('POST', '/v1/dsr', { token: DPO, body: { type: 'access', identifier: s.e } });
  assert.equal(c.status, 201);
  const o = await srv.req('POST', '/v1/dsr', { token: DPO, body: { type: 'objection', identifier: s.e, verified: true } });
  assert.equal(o.status, 201);
  const size = await auditSize();
  let r = await srv.req('GET', `/v1/dsr/${c.json.id}/package`, { token: DPO });
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json.error.code, 'package_not_ready');
  assert.equal(r.json.error.field, 'status');
  r = await srv.req('GET', `/v1/dsr/${o.json.id}/package`, { token: DPO });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'invalid_request_type');
  r = await srv.req('GET', '/v1/dsr/dsr_aaaaaaaaaaaaaaaaaaaaaaaaaa/package', { token: DPO });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'not_found');
  r = await srv.req('GET', `/v1/dsr/${c.json.id}/package`, { token: srv.tokens['subjects:read'] });
  assert.equal(r.status, 403);
  r = await srv.req('GET', `/v1/dsr/${c.json.id}/package`);
  assert.equal(r.status, 401);
  assert.equal(await auditSize(), size); // reading writes nothing
  const ex = run(['dsr', 'export', c.json.id, '--data', srv.dir]);
  assert.equal(ex.status, 1);
  assert.match(ex.stderr, /package_not_ready/);
});

test('an erasure destroys the packages; nothing of the person is left in the data directory', async () => {
  const s = await subject({ first_name: 'Zenobius', city: 'Harrowmere' });
  await consent(s.e, 'newsletter', 'granted', { form_id: 'Glimmerby' });
  const acc = await processed('access', s.e);
  const por = await processed('portability', s.e);
  const before = fs.readdirSync(path.join(srv.dir, 'packages')).length;
  let r = await srv.req('GET', `/v1/dsr/${acc.id}/package`, { token: DPO });
  assert.equal(r.status, 200);
  const er = await processed('erasure', s.e);
  assert.equal(er.status, 'completed');
  assert.equal(fs.readdirSync(path.join(srv.dir, 'packages')).length, before - 3);
  for (const [id, q] of [[acc.id, ''], [por.id, ''], [por.id, '?format=csv']]) {
    r = await srv.req('GET', `/v1/dsr/${id}/package${q}`, { token: DPO });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.error.code, 'subject_erased');
  }
  // The completion notice outlives the subject's key until it is sent:
  // wait for the outbox to deliver it, then nothing may be left.
  await settle();
  const needles = [s.e.slice('email:'.length), 'Zenobius', 'Harrowmere', 'Glimmerby'];
  const f = spawnSync(process.env.CONSENTD_DBTOOL, ['forensics', srv.dir, ...needles], { encoding: 'utf8' });
  assert.equal(f.status, 0, f.stderr);
  assert.match(f.stdout, /^0 hits/m, f.stdout);
});

test('the package names the downstream systems that receive the data, never their URLs or secrets', async () => {
  const own = await startServer();
  try {
    const secret = 'pkg-test-secret-0123456789';
    let r = await own.req('POST', '/v1/systems', { token: own.tokens.admin,
      body: { name: 'crm', url: 'http://127.0.0.1:9/hooks/consentd', events: ['consent.changed', 'erasure'], secret } });
    assert.equal(r.status, 201, r.text);
    const e = email();
    r = await own.req('POST', '/v1/consents', { token: own.tokens['consent:write'],
      body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
    assert.equal(r.status, 201, r.text);
    const c = await own.req('POST', '/v1/dsr', { token: own.tokens['dsr:admin'],
      body: { type: 'access', identifier: e, verified: true } });
    assert.equal(c.status, 201, c.text);
    const p = await own.req('POST', `/v1/dsr/${c.json.id}/process`, { token: own.tokens['dsr:admin'] });
    assert.equal(p.status, 200, p.text);
    r = await own.req('GET', `/v1/dsr/${c.json.id}/package`, { token: own.tokens['dsr:admin'] });
    assert.equal(r.status, 200, r.text);
    const d = doc(r.text);
    assert.equal(d.systems.length, 1);
    assert.equal(d.systems[0].name, 'crm');
    assert.deepEqual([...d.systems[0].events].sort(), ['consent.changed', 'erasure']);
    // The webhook to a closed port has not been applied.
    assert.ok(['pending', 'failed'].includes(d.systems[0].last_consent_change.status),
      JSON.stringify(d.systems[0]));
    assert.ok(!r.text.includes('hooks/consentd') && !r.text.includes(secret));
    const f = path.join(tmpdir(), 'pkg.json');
    fs.writeFileSync(f, r.text);
    const v = run(['dsr', 'verify-package', f, '--data', own.dir]);
    assert.equal(v.status, 0, v.stderr + v.stdout);
  } finally {
    const s = await own.stop();
    assert.equal(s.code, 0);
  }
});
