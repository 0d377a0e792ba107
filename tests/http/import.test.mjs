// SPDX-License-Identifier: ISC
// Bulk import (consentd import, POST /v1/imports) against a real server
// and its store: a 100,000-row provider-style CSV with bad lines in it,
// the rejects (line numbers and reasons), the providers' own times, a
// later withdrawal that an older imported grant does not overturn, a
// second run and a dry run that write nothing, the shipped mappings on
// sample files, and an import through the API.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, PG, POLICY, settledAuditSize, startServer, tmpdir } from './harness.mjs';

// Under the sanitizers (several times slower) a tenth of the rows covers
// the same code, and on PostgreSQL (a round trip for each statement: about
// 300 new people a second) a twentieth; the plain build on SQLCipher loads
// the full 100,000.
const SAN = /\/san(-debug)?\//.test(BIN);
const ROWS = PG ? 5000 : SAN ? 10000 : 100000;

let srv;
let CW;
let CR;
let tmp;
before(async () => {
  srv = await startServer();
  CW = srv.tokens['consent:write'];
  CR = srv.tokens['consent:read'];
  tmp = tmpdir('consentd-import-');
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const tag = `i${process.pid}`;

// consentd import against the running server's store; the JSON summary.
// Asynchronous, so the HTTP client's idle connections expire meanwhile.
async function runImport(args) {
  const p = spawn(BIN, ['import', '--data', srv.dir, '--policy', POLICY, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  p.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
  const code = await new Promise((res) => p.on('close', res));
  assert.equal(code, 0, err);
  const lines = out.trim().split('\n');
  return { summary: JSON.parse(lines[lines.length - 1]), stderr: err };
}

const imp = async (args) => (await runImport(args)).summary;

async function resolve(identifier) {
  const r = await srv.req('GET', `/v1/subjects/resolve?identifier=${encodeURIComponent(identifier)}`,
    { token: CR });
  return r;
}

async function history(identifier) {
  const r = await resolve(identifier);
  assert.equal(r.status, 200, r.text);
  const h = await srv.req('GET', `/v1/subjects/${r.json.subject_id}/consents?history=true`,
    { token: CR });
  assert.equal(h.status, 200, h.text);
  return h.json.events;
}

async function check(identifier, purpose, channel) {
  const q = new URLSearchParams({ identifier, purpose, channel });
  const r = await srv.req('GET', `/v1/consent/check?${q}`, { token: CR });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function write(name, text) {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, text);
  return p;
}

// An export in the shape of an email provider's audience file, with the
// purpose in a column of its own, read by a mapping file.
const MAP = {
  name: 'esp',
  records: [
    { kind: 'consent', require: { UNSUB_TIME: '*' }, identifier: { type: 'email', column: 'Email Address' },
      purpose: { column: 'LIST' }, channel: 'email', state: 'withdrawn', time: ['UNSUB_TIME'] },
    { kind: 'consent', absent: ['UNSUB_TIME'], identifier: { type: 'email', column: 'Email Address' },
      purpose: { column: 'LIST' }, channel: 'email', state: 'granted', time: ['OPTIN_TIME'], ip: ['OPTIN_IP'] },
  ],
};
const HEADER = 'Email Address,First Name,LIST,OPTIN_TIME,OPTIN_IP,UNSUB_TIME\n';
const optin = (i) => `2023-0${1 + (i % 9)}-1${i % 10} 0${i % 10}:${String(i % 60).padStart(2, '0')}:${String((i * 7) % 60).padStart(2, '0')}`;
const rfc = (t) => `${t.replace(' ', 'T')}Z`;
const mail = (i) => `${tag}.u${i}@example.com`;

test('a 100,000-row export: rejects, original times, a later "no" kept, a second run writes nothing', async () => {
  const mapFile = write('esp.json', JSON.stringify(MAP));
  // Set up before the import: a suppressed address, and a withdrawal
  // recorded after the time the export says the person signed up.
  const suppressedAt = 500;
  let r = await srv.req('POST', '/v1/suppressions', { token: CW,
    body: { identifier: `email:${mail(suppressedAt)}`, reason: 'unsubscribed' } });
  assert.equal(r.status, 201, r.text);
  const laterNo = 777;
  r = await srv.req('POST', '/v1/consents', { token: CW, body: { identifier: `email:${mail(laterNo)}`,
    purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'preference_center',
    collected_at: '2024-06-01T12:00:00Z' } });
  assert.equal(r.status, 201, r.text);

  // The file: ROWS good rows, with bad ones put in at known lines.
  const bad = new Map([
    [1001, { row: `not-an-address,Bad,newsletter,${optin(1)},,\n`, reason: /^invalid identifier/ }],
    [2002, { row: `${tag}.x1@example.com,Bad,no_such_purpose,${optin(2)},,\n`, reason: /^unknown purpose$/ }],
    [3003, { row: `${tag}.x2@example.com,Bad,newsletter,2023-13-45 99:00:00,,\n`, reason: /^bad time/ }],
    [4004, { row: `${tag}.x3@example.com,Bad,newsletter\n`, reason: /^wrong column count: 3, the header has 6$/ }],
  ]);
  const parts = [HEADER];
  let line = 1;
  let suppressedLine = 0;
  for (let i = 0; i < ROWS; i++) {
    line++;
    if (bad.has(line)) { parts.push(bad.get(line).row); line++; }
    if (i === suppressedAt) suppressedLine = line;
    const list = i % 3 === 0 ? 'email_offers' : 'newsletter';
    const unsub = i % 50 === 49 ? `2024-0${1 + (i % 9)}-01 00:00:00` : '';
    parts.push(`${mail(i)},First${i},${i === laterNo ? 'newsletter' : list},${optin(i)},10.0.${i % 256}.1,${unsub}\n`);
  }
  const file = write('audience.csv', parts.join(''));
  const rejects = path.join(tmp, 'rejects.ndjson');

  const summary = await imp(['--map', mapFile, '--rejects', rejects, file]);
  assert.equal(summary.rows, ROWS + bad.size);
  assert.equal(summary.rejected, bad.size + 1);
  assert.equal(summary.imported, ROWS - 1);
  assert.equal(summary.unchanged, 0);
  assert.equal(summary.dry_run, false);
  for (const k of ['seconds', 'rows_per_second']) assert.equal(typeof summary[k], 'number');

  // The rejects: each bad line by its number and reason, the suppressed
  // address refused as the API refuses it; no reason repeats a value.
  const rej = fs.readFileSync(rejects, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal((fs.statSync(rejects).mode & 0o777), 0o600);
  const byLine = new Map(rej.map((x) => [x.line, x]));
  assert.equal(rej.length, bad.size + 1);
  for (const [ln, b] of bad) {
    assert.ok(byLine.has(ln), `line ${ln} is in the rejects`);
    assert.match(byLine.get(ln).reason, b.reason);
    assert.equal(byLine.get(ln).record, b.row.trimEnd());
  }
  assert.match(byLine.get(suppressedLine).reason, /^suppressed/);
  for (const x of rej) assert.ok(!x.reason.includes('example.com') && !x.reason.includes(tag), x.reason);

  // The providers' times are kept, with method import and the source.
  for (const i of [0, 1, 12345 % ROWS, ROWS - 2]) {
    const ev = await history(`email:${mail(i)}`);
    const want = i % 50 === 49 ? `2024-0${1 + (i % 9)}-01T00:00:00Z` : rfc(optin(i));
    assert.equal(ev.length, 1);
    assert.equal(ev[0].collected_at, want);
    assert.equal(ev[0].method, 'import');
    assert.equal(ev[0].purpose, i % 3 === 0 ? 'email_offers' : 'newsletter');
  }
  // A withdrawal in the file is a withdrawal.
  assert.equal((await check(`email:${mail(99)}`, 'email_offers', 'email')).reason, 'withdrawn');
  assert.equal((await check(`email:${mail(1)}`, 'newsletter', 'email')).decision, 'allow');
  // The older imported grant joined the history and changed nothing.
  const hist = await history(`email:${mail(laterNo)}`);
  assert.equal(hist.length, 2);
  const imported = hist.find((e) => e.method === 'import');
  assert.equal(imported.superseded, true);
  const c = await check(`email:${mail(laterNo)}`, 'newsletter', 'email');
  assert.deepEqual([c.decision, c.reason], ['deny', 'withdrawn']);
  // The suppressed address got no grant.
  assert.equal((await resolve(`email:${mail(suppressedAt)}`)).status, 404);

  // A second run of the same file writes nothing.
  const size = await settledAuditSize(srv);
  const again = await imp(['--map', mapFile, file]);
  assert.equal(again.imported, 0);
  assert.equal(again.unchanged, ROWS - 1);
  assert.equal(again.rejected, bad.size + 1);
  assert.equal(await settledAuditSize(srv), size);
});

test('a dry run checks and counts and writes nothing', async () => {
  const mapFile = write('esp2.json', JSON.stringify(MAP));
  const rows = [HEADER];
  for (let i = 0; i < 50; i++) rows.push(`${tag}.dry${i}@example.com,D,newsletter,${optin(i)},,\n`);
  rows.push(`${tag}.dryx@example.com,D,newsletter,yesterday,,\n`);
  const file = write('dry.csv', rows.join(''));
  const size = await settledAuditSize(srv);
  const summary = await imp(['--map', mapFile, '--dry-run', file]);
  assert.deepEqual([summary.rows, summary.imported, summary.rejected, summary.dry_run], [51, 50, 1, true]);
  assert.equal(await settledAuditSize(srv), size);
  assert.equal((await resolve(`email:${tag}.dry0@example.com`)).status, 404);
});

test('the shipped mappings each load a sample of their export', async () => {
  // Mailchimp: the subscribed, unsubscribed and cleaned members files.
  const mc = ['Email Address', 'First Name', 'Last Name', 'MEMBER_RATING', 'OPTIN_TIME', 'OPTIN_IP',
    'CONFIRM_TIME', 'CONFIRM_IP', 'LATITUDE', 'LONGITUDE', 'GMTOFF', 'DSTOFF', 'TIMEZONE', 'CC',
    'REGION', 'LAST_CHANGED', 'LEID', 'EUID', 'NOTES'];
  const csv = (cols, vals) => `${cols.join(',')}\n${cols.map((c) => vals[c] ?? '').join(',')}\n`;
  const m1 = { 'Email Address': `${tag}.mc1@example.com`, 'First Name': 'A', MEMBER_RATING: '2',
    OPTIN_TIME: '2022-03-01 09:00:00', OPTIN_IP: '192.0.2.1', CONFIRM_TIME: '2022-03-01 09:10:00',
    CONFIRM_IP: '192.0.2.1', LAST_CHANGED: '2022-03-01 09:10:00', LEID: '1', EUID: 'x' };
  let s = await imp(['--mapping', 'mailchimp', write('subscribed_members.csv', csv(mc, m1))]);
  assert.deepEqual([s.rows, s.imported], [1, 1]);
  let ev = await history(`email:${tag}.mc1@example.com`);
  assert.equal(ev[0].collected_at, '2022-03-01T09:10:00Z');
  assert.equal((await check(`email:${tag}.mc1@example.com`, 'newsletter', 'email')).decision, 'allow');
  s = await imp(['--mapping', 'mailchimp', write('unsubscribed_members.csv', csv([...mc, 'UNSUB_TIME',
    'UNSUB_CAMPAIGN_TITLE', 'UNSUB_CAMPAIGN_ID', 'UNSUB_REASON', 'UNSUB_REASON_OTHER'], { ...m1,
    UNSUB_TIME: '2022-05-01 08:00:00', UNSUB_CAMPAIGN_TITLE: 'Spring', UNSUB_REASON: 'NORMAL' }))]);
  assert.deepEqual([s.rows, s.imported], [1, 1]);
  assert.equal((await check(`email:${tag}.mc1@example.com`, 'newsletter', 'email')).reason, 'withdrawn');
  s = await imp(['--mapping', 'mailchimp', write('cleaned_members.csv', csv([...mc, 'CLEAN_TIME',
    'CLEAN_CAMPAIGN_TITLE', 'CLEAN_CAMPAIGN_ID'], { 'Email Address': `${tag}.mc2@example.com`,
    OPTIN_TIME: '2021-01-01 00:00:00', CLEAN_TIME: '2021-06-01 10:00:00', CLEAN_CAMPAIGN_TITLE: 'Summer' }))]);
  assert.deepEqual([s.rows, s.imported], [1, 1]);
  let r = await srv.req('GET', `/v1/suppressions/check?identifier=${encodeURIComponent(`email:${tag}.mc2@example.com`)}`,
    { token: CR });
  assert.deepEqual([r.json.suppressed, r.json.reason, r.json.since], [true, 'bounced', '2021-06-01T10:00:00Z']);

  // Klaviyo: a profile export with email and SMS consent and suppressions.
  const kl = 'Email,Klaviyo ID,First Name,Last Name,Phone Number,IP Address,Email Marketing Consent,Email Marketing Consent Timestamp,SMS Marketing Consent,SMS Marketing Consent Timestamp,Email Suppressions,Profile Created On';
  s = await imp(['--mapping', 'klaviyo', write('klaviyo.csv', `\ufeff${kl}\n` +
    `${tag}.kl1@example.com,01A,E,F,+44 7700 900123,198.51.100.7,SUBSCRIBED,2023-04-05T06:07:08+00:00,SUBSCRIBED,2023-04-05T06:08:00+00:00,,2023-04-05\n` +
    `${tag}.kl2@example.com,01B,G,H,,,NEVER_SUBSCRIBED,,,,HARD_BOUNCE,2023-04-05\n` +
    `${tag}.kl3@example.com,01C,I,J,,,UNSUBSCRIBED,2023-07-01T00:00:00Z,,,,2023-04-05\n`)]);
  assert.deepEqual([s.rows, s.imported, s.rejected], [3, 3, 0]);
  assert.equal((await check(`email:${tag}.kl1@example.com`, 'newsletter', 'email')).decision, 'allow');
  assert.equal((await check('phone:+447700900123', 'sms_offers', 'sms')).decision, 'allow');
  ev = await history('phone:+447700900123');
  assert.equal(ev.find((e) => e.purpose === 'sms_offers').collected_at, '2023-04-05T06:08:00Z');
  assert.equal((await check(`email:${tag}.kl2@example.com`, 'newsletter', 'email')).reason, 'suppressed');
  assert.equal((await check(`email:${tag}.kl3@example.com`, 'newsletter', 'email')).reason, 'withdrawn');

  // Braze: the API's segment export, one JSON object a line ...
  s = await imp(['--mapping', 'braze', write('braze-users.ndjson',
    `${JSON.stringify({ external_id: `${tag}-b1`, email: `${tag}.b1@example.com`, phone: '+14155550100', email_subscribe: 'opted_in', email_opted_in_at: '2022-02-02T02:02:02.000Z', push_subscribe: 'unsubscribed', push_unsubscribed_at: '2022-03-03T03:03:03.000Z' })}\n` +
    `${JSON.stringify({ external_id: `${tag}-b2`, email: `${tag}.b2@example.com`, email_subscribe: 'subscribed', push_subscribe: 'subscribed' })}\n`)]);
  assert.deepEqual([s.rows, s.imported, s.skipped], [2, 1, 1]);
  assert.equal((await check(`email:${tag}.b1@example.com`, 'newsletter', 'email')).decision, 'allow');
  assert.equal((await check(`customer:${tag}-b1`, 'recommendations', 'push')).reason, 'withdrawn');
  // ... and the dashboard's CSV export.
  s = await imp(['--mapping', 'braze', write('braze-segment.csv',
    'user_id,first_name,last_name,email,unsubscribed_from_emails_at,opted_in_to_emails_at\n' +
    `${tag}-b3,K,L,${tag}.b3@example.com,,2021-09-09 09:09:09\n` +
    `${tag}-b4,M,N,${tag}.b4@example.com,2022-10-10 10:10:10,2021-09-09 09:09:09\n`)]);
  assert.deepEqual([s.rows, s.imported], [2, 2]);
  assert.equal((await check(`email:${tag}.b3@example.com`, 'newsletter', 'email')).decision, 'allow');
  ev = await history(`email:${tag}.b4@example.com`);
  assert.deepEqual([ev[0].state, ev[0].collected_at], ['withdrawn', '2022-10-10T10:10:10Z']);
});

test('POST /v1/imports runs in the background; GET /v1/imports/{id} reaches completed', async () => {
  const lines = ['Email Address,OPTIN_TIME,CONFIRM_TIME'];
  for (let i = 0; i < 2000; i++) lines.push(`${tag}.api${i}@example.com,${optin(i)},`);
  lines.splice(10, 0, 'nobody,2022-01-01 00:00:00,');
  lines.splice(20, 0, `${tag}.apix@example.com,,`);
  const body = `${lines.join('\n')}\n`;

  let r = await srv.req('POST', '/v1/imports?mapping=mailchimp&file=api.csv', { token: CW, raw: body,
    headers: { 'content-type': 'text/csv' } });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.status, 'running');
  assert.match(r.json.id, /^imp_[a-z2-7]{26}$/);
  const id = r.json.id;
  let st;
  for (let i = 0; i < 6000; i++) {
    st = await srv.req('GET', `/v1/imports/${id}`, { token: CW });
    assert.equal(st.status, 200, st.text);
    if (st.json.status !== 'running') break;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(st.json.status, 'completed', st.text);
  assert.deepEqual([st.json.rows, st.json.imported, st.json.rejected, st.json.unchanged],
    [2002, 2000, 2, 0]);
  assert.deepEqual(st.json.rejects.map((x) => x.line), [11, 21]);
  assert.match(st.json.rejects[0].reason, /^invalid identifier/);
  assert.match(st.json.rejects[1].reason, /^no time/);
  assert.ok(!st.text.includes('example.com'), 'no address in the progress');
  const ev = await history(`email:${tag}.api5@example.com`);
  assert.equal(ev[0].collected_at, rfc(optin(5)));

  // NDJSON over the API, with the Braze mapping.
  r = await srv.req('POST', '/v1/imports?mapping=braze&file=users.ndjson', { token: CW,
    raw: `${JSON.stringify({ email: `${tag}.apib@example.com`, email_subscribe: 'opted_in', email_opted_in_at: '2020-05-05T05:05:05Z' })}\n`,
    headers: { 'content-type': 'application/x-ndjson' } });
  assert.equal(r.status, 202, r.text);
  for (let i = 0; i < 6000; i++) {
    st = await srv.req('GET', `/v1/imports/${r.json.id}`, { token: CW });
    if (st.json.status !== 'running') break;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.deepEqual([st.json.status, st.json.imported], ['completed', 1]);
  assert.equal((await history(`email:${tag}.apib@example.com`))[0].collected_at, '2020-05-05T05:05:05Z');

  // Refusals, each before anything runs.
  r = await srv.req('POST', '/v1/imports?mapping=mailchimp', { token: CW, raw: body,
    headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 415, r.text);
  r = await srv.req('POST', '/v1/imports', { token: CW, raw: body, headers: { 'content-type': 'text/csv' } });
  assert.deepEqual([r.status, r.json.error.code, r.json.error.field], [400, 'missing_parameter', 'mapping']);
  r = await srv.req('POST', '/v1/imports?mapping=hubspot', { token: CW, raw: body,
    headers: { 'content-type': 'text/csv' } });
  assert.deepEqual([r.status, r.json.error.code], [422, 'unknown_mapping']);
  r = await srv.req('POST', '/v1/imports?columns=email%3DE,state%3DS,time%3DT&purpose=nope', { token: CW,
    raw: body, headers: { 'content-type': 'text/csv' } });
  assert.deepEqual([r.status, r.json.error.code], [422, 'invalid_mapping']);
  r = await srv.req('POST', '/v1/imports?mapping=mailchimp', { token: CR, raw: body,
    headers: { 'content-type': 'text/csv' } });
  assert.equal(r.status, 403);
  r = await srv.req('GET', '/v1/imports/imp_nope', { token: CW });
  assert.equal(r.status, 404);
});

// One chunk (fewer rows than --batch, and the API's 500) holding good rows
// with bad ones between them: rows the mapping refuses, grants the domain
// refuses for suppressed people, and an older grant for a person whose
// withdrawal is already in the store. Every good row is written, exactly
// the bad ones are rejected, and the "no" stays a "no" (CLI, then API).
test('bad rows among good ones in one chunk: the good ones written, exactly the bad ones rejected, a "no" kept', async () => {
  const columns = ['email=Email Address', 'purpose=LIST', 'state=STATUS', 'time=OPTIN_TIME', 'ip=OPTIN_IP'];
  for (const via of ['cli', 'api']) {
    const who = (i) => `${tag}.${via}c${i}@example.com`;
    const suppressed = [7, 23];
    for (const i of suppressed) {
      const r = await srv.req('POST', '/v1/suppressions', { token: CW,
        body: { identifier: `email:${who(i)}`, reason: 'unsubscribed' } });
      assert.equal(r.status, 201, r.text);
    }
    const saidNo = 15;
    let r = await srv.req('POST', '/v1/consents', { token: CW, body: { identifier: `email:${who(saidNo)}`,
      purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'preference_center',
      collected_at: '2024-06-01T12:00:00Z' } });
    assert.equal(r.status, 201, r.text);

    const rows = ['Email Address,First Name,LIST,OPTIN_TIME,OPTIN_IP,STATUS'];
    const badLines = new Map();
    for (let i = 0; i < 30; i++) {
      if (i % 6 === 2) {
        rows.push(`${via}-not-an-address-${i},Bad,newsletter,${optin(i)},,subscribed`);
        badLines.set(rows.length, /^invalid identifier/);
      }
      if (i % 6 === 4) {
        rows.push(`${who(100 + i)},Bad,no_such_purpose,${optin(i)},,subscribed`);
        badLines.set(rows.length, /^unknown purpose$/);
      }
      if (i === 11) {
        rows.push(`${who(111)},Bad,newsletter`);
        badLines.set(rows.length, /^wrong column count/);
      }
      rows.push(`${who(i)},First${i},newsletter,${optin(i)},10.0.0.${i},subscribed`);
      if (suppressed.includes(i)) badLines.set(rows.length, /^suppressed/);
    }
    const text = `${rows.join('\n')}\n`;
    const good = 30 - suppressed.length;

    let got;
    if (via === 'cli') {
      const rejects = path.join(tmp, 'rejects-chunk.ndjson');
      const s = await imp([...columns.flatMap((c) => ['--column', c]), '--channel', 'email',
        '--rejects', rejects, write('chunk.csv', text)]);
      got = { imported: s.imported, rejected: s.rejected,
        rejects: fs.readFileSync(rejects, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) };
    } else {
      const q = `/v1/imports?columns=${encodeURIComponent(columns.join(','))}` +
        '&channel=email&file=chunk.csv';
      r = await srv.req('POST', q, { token: CW, raw: text, headers: { 'content-type': 'text/csv' } });
      assert.equal(r.status, 202, r.text);
      let st;
      for (let i = 0; i < 6000; i++) {
        st = await srv.req('GET', `/v1/imports/${r.json.id}`, { token: CW });
        if (st.json.status !== 'running') break;
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal(st.json.status, 'completed', st.text);
      got = st.json;
    }
    assert.equal(got.imported, good, via);
    assert.equal(got.rejected, badLines.size, via);
    assert.deepEqual(got.rejects.map((x) => x.line).sort((a, b) => a - b),
      [...badLines.keys()].sort((a, b) => a - b), via);
    for (const x of got.rejects) assert.match(x.reason, badLines.get(x.line), `${via} line ${x.line}`);

    // Every good row is there, with the provider's time; the refused are not.
    for (let i = 0; i < 30; i++) {
      const c = await check(`email:${who(i)}`, 'newsletter', 'email');
      if (suppressed.includes(i)) {
        assert.equal(c.decision, 'deny', `${via} ${i}`);
        assert.equal((await resolve(`email:${who(i)}`)).status, 404);
      } else if (i === saidNo) {
        assert.deepEqual([c.decision, c.reason], ['deny', 'withdrawn'], via);
      } else {
        assert.deepEqual([c.decision, c.reason], ['allow', 'consent'], `${via} ${i}`);
        const ev = await history(`email:${who(i)}`);
        assert.deepEqual([ev.length, ev[0].collected_at, ev[0].method], [1, rfc(optin(i)), 'import']);
      }
    }
    // The older imported grant joined the history, superseded.
    const hist = await history(`email:${who(saidNo)}`);
    assert.equal(hist.length, 2);
    assert.equal(hist.find((e) => e.method === 'import').superseded, true);
    for (const i of [104, 110, 111]) assert.equal((await resolve(`email:${who(i)}`)).status, 404);
  }
});
