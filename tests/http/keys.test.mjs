// SPDX-License-Identifier: ISC
// Key rotation (`consentd keys rotate-master` and `rotate-audit`) on real
// stores: after a master-key rotation every decision, token and the audit
// log are what they were and the old key no longer opens the database;
// after an audit-key rotation each checkpoint verifies under the key of
// its time (consentd's verifier and Go's x/mod), the chain of keys is
// published, and a checkpoint the old key signs after the rotation is
// refused. The kill -9 trials are in keys_crash.test.mjs.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { BIN, PG, POLICY, cli, initData, startServer as start, tmpdir } from './harness.mjs';

const DBTOOL = process.env.CONSENTD_DBTOOL;
const TLOGCHECK = process.env.CONSENTD_TLOGCHECK;
const GEN = process.env.CONSENTD_GEN || path.join(path.dirname(BIN), 'bench/gen');
// Fewer on PostgreSQL, where each statement is a round trip.
const SUBJECTS = PG ? 300 : 2000;

function tool(...args) {
  const r = spawnSync(DBTOOL, args, { encoding: 'utf8', timeout: 120000, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `dbtool ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function counts(dir) {
  const [subjects, events, audit, current] = tool('sql', dir, 'SELECT (SELECT count(*) FROM subjects), ' +
    '(SELECT count(*) FROM consent_events), (SELECT count(*) FROM audit_entries), ' +
    '(SELECT count(*) FROM consent_current)').trim().split('\t').map(Number);
  return { subjects, events, audit, current };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A failed assertion must not leave a server running.
const servers = [];
async function startServer(opts) {
  const srv = await start(opts);
  servers.push(srv);
  return srv;
}
after(() => {
  for (const s of servers) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
});

// Checks of the generated subjects (email:user<k>@example.com), every
// purpose the generator records, and one nobody holds.
function checkBody() {
  const purposes = ['newsletter', 'email_offers', 'sms_offers', 'recommendations'];
  const checks = [];
  for (let k = 0; k < SUBJECTS; k += 7) {
    for (const purpose of purposes) checks.push({ identifier: `email:user${k}@example.com`, purpose, channel: 'email' });
  }
  checks.push({ identifier: 'email:nobody@example.com', purpose: 'newsletter', channel: 'email' });
  return { checks };
}

async function decisions(srv, token) {
  const r = await srv.req('POST', '/v1/consent/check', { token, body: checkBody() });
  assert.equal(r.status, 200, r.text);
  return r.json.results.map((x) => ({ decision: x.decision, reason: x.reason }));
}

test('rotate-master: refused while the server runs; after it every decision, token and the audit log are unchanged, and the old key no longer opens the store', async (t) => {
  const data = initData();
  const { dir } = data;
  const g = spawnSync(GEN, ['subjects', dir, String(SUBJECTS), '1', POLICY], { encoding: 'utf8' });
  assert.equal(g.status, 0, g.stderr);

  let srv = await startServer({ data });
  const tokens = srv.tokens;
  const before = await decisions(srv, tokens['consent:check']);
  assert.ok(before.some((d) => d.decision === 'allow') && before.some((d) => d.decision === 'deny'));
  const vkey = (await srv.req('GET', '/v1/audit/vkey', { token: tokens['audit:read'] })).text;

  // A running server holds the store: the rotation is refused, nothing changes.
  const oldKey = fs.readFileSync(path.join(dir, 'master.key'));
  const busy = cli(['keys', 'rotate-master', '--data', dir]);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /in use by another process.*stop it first \(nothing was changed\)/);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'master.key')), oldKey);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => /rotat|\.new|sealed/.test(f)), []);
  assert.equal((await srv.stop()).code, 0);

  const c0 = counts(dir);
  const r = cli(['keys', 'rotate-master', '--data', dir]);
  assert.equal(r.code, 0, r.stderr);
  const m = r.stdout.match(/master key rotated: key ([0-9a-f]{16}) replaced by key ([0-9a-f]{16})/);
  assert.ok(m, r.stdout);
  assert.match(r.stdout, new RegExp(`^${SUBJECTS} data keys wrapped again$`, 'm'));
  const newKey = fs.readFileSync(path.join(dir, 'master.key'));
  assert.equal(newKey.length, 32);
  assert.notDeepEqual(newKey, oldKey);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => /rotat|\.new/.test(f)), []);
  assert.equal(fs.statSync(path.join(dir, 'sealed.keys')).mode & 0o777, 0o600);
  const c1 = counts(dir);
  assert.deepEqual({ ...c1, audit: c1.audit - 1 }, c0, 'one audit entry more, nothing else changed');

  // The log holds the rotation by key ids only, never key material.
  const last = JSON.parse(tool('sql', dir, `SELECT entry FROM audit_entries WHERE idx = ${c1.audit - 1}`));
  assert.equal(last.type, 'keys.master_rotated');
  assert.deepEqual(last.d, { old_key_id: m[1], new_key_id: m[2], rewrapped: SUBJECTS });
  const all = tool('sql', dir, 'SELECT entry FROM audit_entries');
  for (const k of [oldKey, newKey]) assert.ok(!all.includes(k.toString('hex')) && !all.includes(k.toString('base64')));

  // The whole log and the state against it (every commitment opened with
  // the re-wrapped subject keys).
  const v = cli(['audit', 'verify', '--data', dir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /^\d+ passed, 0 failed$/m);

  // The same tokens still authenticate; every decision is the same.
  srv = await startServer({ data, noTokens: true });
  assert.deepEqual(await decisions(srv, tokens['consent:check']), before);
  assert.equal((await srv.req('GET', '/v1/audit/vkey', { token: tokens['audit:read'] })).text, vkey);
  assert.equal((await srv.stop()).code, 0);

  // The old key opens nothing: not with the new key file set, not alone.
  const copy = path.join(tmpdir(), 'data');
  fs.mkdirSync(copy, { mode: 0o700 });
  // (On PostgreSQL the copy names the same database: its keys check names the new key.)
  for (const f of ['audit.key', PG ? 'store' : 'consentd.db', 'sealed.keys']) fs.copyFileSync(path.join(dir, f), path.join(copy, f));
  fs.writeFileSync(path.join(copy, 'master.key'), oldKey, { mode: 0o600 });
  const withSealed = cli(['audit', 'verify', '--data', copy]);
  assert.notEqual(withSealed.code, 0);
  assert.match(withSealed.stderr, /sealed\.keys does not open with .*master\.key/);
  fs.rmSync(path.join(copy, 'sealed.keys'));
  const bare = cli(['audit', 'verify', '--data', copy]);
  assert.equal(bare.code, 2, bare.stderr);
  assert.match(bare.stderr, /wrong key, or not a consentd database/);
  t.diagnostic(`rotated ${SUBJECTS} subjects, ${c1.events} consent events`);
});

function tlogcheck(work, vkey, notes, entries, proofs) {
  const cpdir = fs.mkdtempSync(path.join(work, 'cp-'));
  notes.forEach((n, i) => fs.writeFileSync(path.join(cpdir, `${String(i).padStart(3, '0')}.txt`), n));
  fs.writeFileSync(path.join(work, 'vkey'), vkey);
  fs.writeFileSync(path.join(work, 'entries.ndjson'), entries);
  fs.writeFileSync(path.join(work, 'proofs.json'), JSON.stringify(proofs));
  return spawnSync(TLOGCHECK, [path.join(work, 'vkey'), '-', cpdir, path.join(work, 'entries.ndjson'),
    path.join(work, 'proofs.json')], { encoding: 'utf8' });
}

async function grant(srv, token, k) {
  const r = await srv.req('POST', '/v1/consents', { token, body: { identifier: `email:rot${k}@example.com`,
    purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(r.status, 201, r.text);
  return r.json.event_id;
}

// A consent receipt of EVENT, checked offline under the key it names.
async function receiptVerifies(srv, token, event, work, vkey) {
  let r;
  for (let i = 0; i < 50; i++) {
    r = await srv.req('GET', `/v1/consents/${event}/receipt`, { token });
    if (r.status !== 409) break;
    await sleep(100);
  }
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.signature.vkey, vkey);
  const file = path.join(work, `receipt-${event}.json`);
  fs.writeFileSync(file, r.text);
  const v = cli(['receipt', 'verify', file]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
}

async function signedSize(srv, token, n) {
  for (let i = 0; i < 100; i++) {
    const r = await srv.req('GET', '/v1/audit/checkpoint', { token });
    if (r.status === 200 && Number(r.text.split('\n')[1]) >= n) return r.text;
    await sleep(100);
  }
  throw new Error(`no checkpoint of size ${n}`);
}

test('rotate-audit: later checkpoints carry the new key, earlier ones verify under the old, the chain is published, and the old key signing after the rotation is refused', async (t) => {
  if (!TLOGCHECK) return t.skip('CONSENTD_TLOGCHECK not set');
  const data = initData();
  const { dir } = data;
  const work = tmpdir();
  let srv = await startServer({ data });
  const tokens = srv.tokens;
  const AR = tokens['audit:read'];
  let first;
  for (let k = 0; k < 5; k++) first ??= await grant(srv, tokens['consent:write'], k);
  const oldVkey = (await srv.req('GET', '/v1/audit/vkey', { token: AR })).text;
  await receiptVerifies(srv, tokens['consent:read'], first, work, oldVkey);
  const one = (await srv.req('GET', '/v1/audit/vkeys', { token: AR })).json;
  assert.deepEqual(one, { current: oldVkey, keys: [{ vkey: oldVkey, from_size: 0, to_size: null }] });

  const busy = cli(['keys', 'rotate-audit', '--data', dir]);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /in use by another process/);
  assert.equal((await srv.stop()).code, 0);
  const oldSeed = fs.readFileSync(path.join(dir, 'audit.key'));

  // A new key left by a run killed before it wrote to the log: every
  // command refuses to start until the rotation is finished or undone.
  fs.writeFileSync(path.join(dir, 'audit.key.new'), Buffer.alloc(32, 7), { mode: 0o600 });
  const stuck = cli(['audit', 'verify', '--data', dir]);
  assert.equal(stuck.code, 1);
  assert.match(stuck.stderr, /audit key rotation was interrupted: run 'consentd keys rotate-audit/);

  const r = cli(['keys', 'rotate-audit', '--data', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /undid an interrupted audit key rotation/);
  const m = r.stdout.match(/checkpoints of size (\d+) on are signed by (\S+)/);
  assert.ok(m, r.stdout);
  const from = Number(m[1]);
  const newVkey = m[2];
  assert.notEqual(newVkey, oldVkey);
  assert.ok(!fs.existsSync(path.join(dir, 'audit.key.new')));
  assert.notDeepEqual(fs.readFileSync(path.join(dir, 'audit.key')), oldSeed);

  srv = await startServer({ data, noTokens: true });
  assert.equal((await srv.req('GET', '/v1/audit/vkey', { token: AR })).text, newVkey);
  const chain = (await srv.req('GET', '/v1/audit/vkeys', { token: AR })).json;
  assert.deepEqual(chain, { current: newVkey, keys: [
    { vkey: oldVkey, from_size: 0, to_size: from - 1 },
    { vkey: newVkey, from_size: from, to_size: null, entry: from - 2 }] });
  // The rotation entry names both keys; the old key's checkpoint covers it.
  const e = (await srv.req('GET', `/v1/audit/entries?from=${from - 2}&to=${from - 1}`, { token: AR })).text;
  const entry = JSON.parse(Buffer.from(JSON.parse(e).entry, 'base64').toString());
  assert.equal(entry.type, 'audit.key_rotated');
  assert.deepEqual(entry.d, { old_vkey: oldVkey, new_vkey: newVkey, from_size: from });
  const oldNote = tool('sql', dir, `SELECT note FROM audit_checkpoints WHERE size = ${from - 1}`).replace(/\n$/, '');
  assert.match(oldNote, new RegExp(`\\n${from - 1}\\n`));

  for (let k = 5; k < 10; k++) await grant(srv, tokens['consent:write'], k);
  const total = (await signedSize(srv, AR, from + 5)).split('\n')[1];
  // A receipt of an event from before the rotation, asked for after it:
  // signed by the new key, over a checkpoint the new key signed.
  await receiptVerifies(srv, tokens['consent:read'], first, work, newVkey);
  const newNote = await signedSize(srv, AR, Number(total));
  const size = Number(newNote.split('\n')[1]);
  const entries = (await srv.req('GET', `/v1/audit/entries?from=0&to=${size}`, { token: AR })).text;
  const proofs = { inclusion: [], consistency: [] };
  for (let i = 0; i < size; i += 3)
    proofs.inclusion.push((await srv.req('GET', `/v1/audit/proof?index=${i}&size=${size}`, { token: AR })).json);
  assert.equal((await srv.stop()).code, 0);

  // Go's x/mod: the checkpoint after the rotation under the new key, the
  // one before it under the old key; neither under the other's.
  const ok = tlogcheck(work, newVkey, [newNote], entries, proofs);
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  const before = entries.split('\n').slice(0, from - 1).join('\n') + '\n';
  const okOld = tlogcheck(work, oldVkey, [oldNote], before, { inclusion: [], consistency: [] });
  assert.equal(okOld.status, 0, okOld.stdout + okOld.stderr);
  assert.notEqual(tlogcheck(work, oldVkey, [newNote], entries, proofs).status, 0);

  const v = cli(['audit', 'verify', '--data', dir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /^ok +verifier keys: 2, each named by the log/m);
  assert.match(v.stdout, /^\d+ passed, 0 failed$/m);

  // Someone holding the old key signs a checkpoint after the rotation point:
  // refused, it is not the key of that time.
  tool('append', dir, '3');
  fs.writeFileSync(path.join(dir, 'audit.key.keep'), fs.readFileSync(path.join(dir, 'audit.key')), { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'audit.key'), oldSeed, { mode: 0o600 });
  assert.equal(cli(['audit', 'checkpoint', '--data', dir]).code, 0);
  fs.renameSync(path.join(dir, 'audit.key.keep'), path.join(dir, 'audit.key'));
  const forged = cli(['audit', 'verify', '--data', dir]);
  assert.equal(forged.code, 1, forged.stdout);
  assert.match(forged.stdout, new RegExp(`^FAIL +checkpoint ${size + 3}: signature`, 'm'));
  assert.match(forged.stdout, /^ok +checkpoint \d+: signature/m);
});

test('rotate-audit killed at random points: every command then refuses or opens, running it again finishes it, and the log verifies', async (t) => {
  const { dir } = initData();
  tool('append', dir, '200');
  assert.equal(cli(['audit', 'checkpoint', '--data', dir]).code, 0);
  const t0 = process.hrtime.bigint();
  assert.equal(cli(['keys', 'rotate-audit', '--data', dir]).code, 0);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // A new key file cut short while written (killed between its creation
  // and its sync): the log cannot name it, so it is removed.
  fs.writeFileSync(path.join(dir, 'audit.key.new'), Buffer.alloc(5), { mode: 0o600 });
  const cut = cli(['keys', 'rotate-audit', '--data', dir]);
  assert.equal(cut.code, 0, cut.stderr);
  assert.match(cut.stdout, /undid an interrupted audit key rotation; starting again\naudit key rotated/);
  const seen = { refused: 0, clean: 0 };
  for (let i = 0; i < 8; i++) {
    const p = spawn(BIN, ['keys', 'rotate-audit', '--data', dir], { stdio: 'ignore' });
    const exited = new Promise((res) => p.on('exit', (code, signal) => res({ code, signal })));
    await sleep(ms * (0.3 + Math.random() * 0.8));
    p.kill('SIGKILL');
    await exited;
    let v = cli(['audit', 'verify', '--data', dir]);
    if (v.code !== 0) {
      // Killed with a new key waiting: refused with what to do, then done.
      assert.match(v.stderr, /audit key rotation was interrupted: run 'consentd keys rotate-audit/, v.stdout);
      const r = cli(['keys', 'rotate-audit', '--data', dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /finished the interrupted audit key rotation|undid an interrupted audit key rotation/);
      seen.refused++;
      v = cli(['audit', 'verify', '--data', dir]);
    } else {
      seen.clean++;
    }
    assert.equal(v.code, 0, `trial ${i}: ${v.stdout}`);
    assert.match(v.stdout, /^ok +verifier keys: \d+, each named by the log/m);
    assert.ok(!fs.existsSync(path.join(dir, 'audit.key.new')));
  }
  t.diagnostic(`one rotation took ${ms.toFixed(0)} ms; ${seen.refused} trials left a rotation to finish, ${seen.clean} none`);
});
