// SPDX-License-Identifier: ISC
// The state against the log: a store built through the API (consents,
// preferences, suppressions, an unlink that keeps a binding, a merge, an
// objection, a restriction, an erasure) verifies; then each state table is
// edited, given a row and robbed of one behind the service's back (with
// the key, as an insider would), and `consentd audit verify` fails naming
// the table and the row's event or subject.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { BIN, PG, cli, copyData, startServer, tmpdir } from './harness.mjs';

const DBTOOL = process.env.CONSENTD_DBTOOL;
// 32 zero bytes, and a delete that foreign keys do not stop, in the SQL of
// the engine the store is on.
const ZERO32 = PG ? "decode(repeat('00', 32), 'hex')" : 'zeroblob(32)';
const unchecked = (q) => (PG ? [`SET session_replication_role = replica; ${q}`] : ['PRAGMA foreign_keys = OFF', q]);
function sql(dir, q) {
  const r = spawnSync(DBTOOL, ['sql', dir, q], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${q}: ${r.stderr}`);
  return r.stdout.trim();
}
function dbtool(...a) {
  const r = spawnSync(DBTOOL, a, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

let base;
const ids = {};
before(async () => {
  const srv = await startServer();
  const CW = srv.tokens['consent:write'];
  const SW = srv.tokens['subjects:write'];
  const rec = async (body) => {
    const r = await srv.req('POST', '/v1/consents', { token: CW, body });
    assert.equal(r.status, 201, r.text);
    return r.json;
  };
  const a = await rec({ identifier: 'email:ana@example.com', purpose: 'newsletter', channel: 'email',
    state: 'granted', method: 'web_form', evidence: { ip: '203.0.113.9' } });
  ids.a = a.subject_id;
  ids.withdrawal = (await rec({ identifier: 'email:ana@example.com', purpose: 'newsletter', channel: 'email',
    state: 'withdrawn', method: 'email_link' })).event_id;
  await rec({ identifier: 'email:ana@example.com', purpose: 'sms_offers', channel: 'sms', state: 'granted', method: 'web_form' });
  let r = await srv.req('PUT', `/v1/subjects/${ids.a}/preferences`, { token: CW,
    body: { topics: { picked_for_you: true }, frequency: 'monthly' } });
  assert.equal(r.status, 200, r.text);
  r = await srv.req('POST', `/v1/subjects/${ids.a}/identifiers`, { token: SW, body: { identifier: 'customer:C-77' } });
  assert.equal(r.status, 201, r.text);
  await srv.req('POST', `/v1/subjects/${ids.a}/identifiers`, { token: SW, body: { identifier: 'email:old-ana@example.com' } });
  await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: 'email:old-ana@example.com', reason: 'complained' } });
  r = await srv.req('DELETE', `/v1/subjects/${ids.a}/identifiers/${encodeURIComponent('email:old-ana@example.com')}`, { token: SW });
  assert.equal(r.status, 200, r.text);
  await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: 'email:nobody@example.com', reason: 'bounced' } });
  await srv.req('POST', '/v1/suppressions', { token: CW, body: { identifier: 'email:lifted@example.com', reason: 'manual' } });
  await srv.req('DELETE', `/v1/suppressions/${encodeURIComponent('email:lifted@example.com')}`, { token: srv.tokens.admin });
  const b = await rec({ identifier: 'email:bea@example.com', purpose: 'email_offers', channel: 'email', state: 'granted', method: 'checkout' });
  ids.b = b.subject_id;
  await srv.req('PUT', `/v1/subjects/${ids.b}/preferences`, { token: CW, body: { paused_until: '2030-01-01T00:00:00Z' } });
  const d = await rec({ identifier: 'email:dora@example.com', purpose: 'email_offers', channel: 'email', state: 'withdrawn', method: 'email_link' });
  r = await srv.req('POST', '/v1/subjects/merge', { token: SW, body: { into: ids.b, from: d.subject_id } });
  assert.equal(r.status, 200, r.text);
  const c = await rec({ identifier: 'email:cai@example.com', purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' });
  ids.c = c.subject_id;
  dbtool('object', srv.dir, ids.c);
  dbtool('restrict', srv.dir, ids.b);
  await rec({ identifier: 'email:fay@example.com', purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' });
  const e = await rec({ identifier: 'email:eve@example.com', purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' });
  ids.e = e.subject_id;
  dbtool('erase', srv.dir, ids.e);
  assert.equal((await srv.stop()).code, 0);
  base = srv.dir;
});

function copy() {
  return copyData(base, path.join(tmpdir('consentd-tamper-'), 'data'));
}
function verify(dir) {
  return cli(['audit', 'verify', '--data', dir]);
}
function tampered(q, table, name) {
  const dir = copy();
  for (const s of [].concat(q)) sql(dir, s);
  const v = verify(dir);
  assert.equal(v.code, 1, `${table} after ${q}:\n${v.stdout}`);
  const line = v.stdout.split('\n').find((l) => l.startsWith(`FAIL state: ${table}:`));
  assert.ok(line, `no failure names ${table}:\n${v.stdout}`);
  assert.ok(line.includes(name), `"${line}" does not name ${name}`);
  // The entries themselves are intact: only the state check fails.
  assert.ok(!/FAIL (entries|leaf|interior|checkpoint)/.test(v.stdout), v.stdout);
  return v.stdout;
}

test('a clean store verifies, state included', () => {
  const v = verify(copy());
  assert.equal(v.code, 0, v.stdout + v.stderr);
  for (const t of ['consent_events', 'consent_current', 'subjects', 'preferences', 'suppressions', 'suppression_subjects'])
    assert.match(v.stdout, new RegExp(`^ok   state: ${t}: \\d+`, 'm'), t);
  assert.match(v.stdout, / 0 failed\n$/);
});

test('an entry forged far past the end of the log is reported, not a crash', () => {
  // The log's length is read from the store and sizes the state check's
  // tables: a tamperer who adds index 2^30 - 1 must get FAIL lines back.
  const dir = copy();
  sql(dir, `INSERT INTO audit_entries (idx, entry, leaf_hash) VALUES (1073741823, '{}', ${ZERO32})`);
  const v = verify(dir);
  assert.equal(v.code, 1, v.stdout + v.stderr);
  assert.match(v.stdout, /^FAIL /m, v.stdout);
  assert.doesNotMatch(v.stderr, /out_of_memory/);
});

test('consent_events: an edited, an added and a deleted row are named', () => {
  // The audit's case: the withdrawal turned into a grant, with its current row.
  tampered([`UPDATE consent_events SET state = 'granted' WHERE event_id = '${ids.withdrawal}'`,
    `UPDATE consent_current SET state = 'granted' WHERE event_id = '${ids.withdrawal}'`],
  'consent_events', ids.withdrawal);
  tampered(`INSERT INTO consent_events (event_id, subject_id, purpose, channel, state, notice_version, method, collected_at, recorded_at, client, audit_index)
    SELECT 'evt_forgedforgedforgedforged', subject_id, purpose, 'push', 'granted', notice_version, method, collected_at + 1, recorded_at + 1, client, audit_index
    FROM consent_events WHERE event_id = '${ids.withdrawal}'`, 'consent_events', 'evt_forgedforgedforgedforged');
  tampered(`DELETE FROM consent_events WHERE event_id = '${ids.withdrawal}'`, 'consent_events', ids.withdrawal);
});

test('consent_current: an edited, an added and a deleted row are named', () => {
  tampered(`UPDATE consent_current SET state = 'granted' WHERE event_id = '${ids.withdrawal}'`, 'consent_current', ids.a);
  tampered(`INSERT INTO consent_current SELECT subject_id, 'ad_audiences', 'ads', seq, 'granted', 1, method, event_id, recorded_at, collected_at, 0
    FROM consent_current WHERE event_id = '${ids.withdrawal}'`, 'consent_current', ids.a);
  tampered(`DELETE FROM consent_current WHERE event_id = '${ids.withdrawal}'`, 'consent_current', ids.a);
});

test('subjects: an edited, an added and a deleted row are named', () => {
  tampered(`UPDATE subjects SET state = 'active' WHERE id = '${ids.b}'`, 'subjects', ids.b);
  tampered(`UPDATE subjects SET state = 'active', wrapped_key = (SELECT wrapped_key FROM subjects WHERE id = '${ids.a}') WHERE id = '${ids.e}'`,
    'subjects', ids.e);
  tampered(`INSERT INTO subjects (id, state, wrapped_key, created_at, updated_at) SELECT 'sub_forgedforgedforgedforgedxx', 'active', wrapped_key, created_at, updated_at FROM subjects WHERE id = '${ids.a}'`,
    'subjects', 'sub_forgedforgedforgedforgedxx');
  tampered(unchecked(`DELETE FROM subjects WHERE id = '${ids.c}'`), 'subjects', ids.c);
});

test('preferences: an edited, an added and a deleted row are named', () => {
  tampered(`UPDATE preferences SET frequency = 'daily' WHERE subject_id = '${ids.a}'`, 'preferences', ids.a);
  tampered(`UPDATE preferences SET objected_at = NULL WHERE subject_id = '${ids.c}'`, 'preferences', ids.c);
  tampered(`UPDATE preferences SET paused_until = NULL WHERE subject_id = '${ids.b}'`, 'preferences', ids.b);
  const dir = copy();
  const fresh = sql(dir, "SELECT id FROM subjects WHERE state = 'active' AND merged_into IS NULL AND id NOT IN (SELECT subject_id FROM preferences) LIMIT 1");
  assert.match(fresh, /^sub_/);
  tampered(`INSERT INTO preferences (subject_id, frequency, updated_at) VALUES ('${fresh}', 'daily', 1)`, 'preferences', fresh);
  tampered(`DELETE FROM preferences WHERE subject_id = '${ids.a}'`, 'preferences', ids.a);
});

test('suppressions and their bindings: edited, added and deleted rows are named', () => {
  const out = tampered("UPDATE suppressions SET reason = 'manual' WHERE reason = 'complained'", 'suppressions', 'says manual');
  assert.match(out, /entry [0-9a-f]{32}/);
  tampered(`INSERT INTO suppressions (type, blind, reason, since) VALUES ('email', ${ZERO32}, 'manual', 1)`, 'suppressions', 'row added');
  tampered("DELETE FROM suppressions WHERE reason = 'bounced'", 'suppressions', 'row deleted');
  tampered(`INSERT INTO suppression_subjects SELECT '${ids.c}', type, blind FROM suppressions WHERE reason = 'bounced'`,
    'suppression_subjects', ids.c);
  tampered('DELETE FROM suppression_subjects', 'suppression_subjects', 'row deleted');
});

// The state check reads the largest tables on a second connection while
// the entries are replayed; both must see one state, or a write landing
// between them would read as a row added or deleted. Verify the live store
// again and again while the server writes.
test('verify with the state check passes while the server writes', async () => {
  const srv = await startServer();
  const CW = srv.tokens['consent:write'];
  let stop = false;
  let n = 0;
  const writer = async (w) => {
    while (!stop) {
      const k = n++;
      const r = await srv.req('POST', '/v1/consents', { token: CW, body: {
        identifier: `email:live${w}-${k % 40}@example.com`, purpose: 'newsletter', channel: 'email',
        state: k % 3 === 0 ? 'withdrawn' : 'granted', method: 'web_form' } });
      assert.equal(r.status, 201, r.text);
    }
  };
  const writers = [0, 1, 2].map(writer);
  try {
    for (let i = 0; i < 6; i++) {
      const out = await new Promise((resolve) => {
        const p = spawn(BIN, ['audit', 'verify', '--data', srv.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
        let text = '';
        p.stdout.on('data', (d) => { text += d; });
        p.stderr.on('data', (d) => { text += d; });
        p.on('close', (code) => resolve({ code, text }));
      });
      assert.equal(out.code, 0, out.text);
      assert.match(out.text, /^ok {3}state: consent_events: \d+ events match the log$/m);
      assert.match(out.text, / 0 failed$/m);
    }
  } finally {
    stop = true;
    await Promise.all(writers);
    await srv.stop();
  }
  assert.ok(n > 0);
});
