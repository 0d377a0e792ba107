// SPDX-License-Identifier: ISC
// A person's "no" outlives a restore (docs/operations.md, "Backup and
// restore"): every withdrawal, unsubscribe, preference switched off, GPC
// signal, suppression entry, objection and restriction said after a backup
// is recorded again when that backup is restored, from the opt-out ledger
// kept outside the database (DIR/optouts.ledger: ids, blind indexes and
// times, never an identifier), with its original time, so `check` denies
// as it did before the restore. The restored log verifies, a second
// restore gives the same answers, a backup already holding the "no"s
// writes nothing new, a tampered ledger makes restore refuse, and a line a
// crash kept out is put back at the next start.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { PG, SCOPES, cli, createToken, initData, nodeData, snapshot, startServer as start, tmpdir, waitForLog, SQLCIPHER_ONLY } from './harness.mjs';

async function startServer(opts = {}) {
  if (opts.data && opts.tokens) {
    const srv = await start({ ...opts, noTokens: true });
    srv.tokens = opts.tokens;
    return srv;
  }
  const data = initData();
  const all = createToken(data.dir, 'all', SCOPES);
  const srv = await start({ ...opts, data, noTokens: true });
  srv.tokens = Object.fromEntries([['all', all], ...SCOPES.map((x) => [x, all])]);
  return srv;
}

let seq = 0;
const email = () => `email:optout${process.pid}x${++seq}@example.com`;
const phone = () => `phone:+4479${String(process.pid).padStart(5, '0').slice(-5)}${String(++seq).padStart(3, '0')}`;

async function record(srv, body) {
  const r = await srv.req('POST', '/v1/consents', { token: srv.tokens.all, body });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

function grant(srv, identifier, purpose = 'newsletter', channel = 'email', extra = {}) {
  return record(srv, { identifier, purpose, channel, state: 'granted', method: 'web_form', ...extra });
}

async function check(srv, identifier, purpose = 'newsletter', channel = 'email') {
  const q = new URLSearchParams({ identifier, purpose, channel });
  const r = await srv.req('GET', `/v1/consent/check?${q}`, { token: srv.tokens.all });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function dsr(srv, type, identifier) {
  const d = await srv.req('POST', '/v1/dsr', { token: srv.tokens.all, body: { type, identifier, verified: true } });
  assert.equal(d.status, 201, d.text);
  const p = await srv.req('POST', `/v1/dsr/${d.json.id}/process`, { token: srv.tokens.all });
  assert.equal(p.status, 200, p.text);
}

// Whole seconds: the API keeps collected_at to the second.
const iso = (msAgo) => new Date(Math.floor((Date.now() - msAgo) / 1000) * 1000).toISOString();

// Everyone granted before the backup; each says "no" in one way after it.
async function people(srv) {
  const p = {
    withdrawn: email(), oneClick: email(), prefsOff: email(), suppressed: phone(), gpc: email(),
    objected: email(), restricted: email(), older: email(), untouched: email(), stranger: email(),
  };
  for (const k of ['withdrawn', 'oneClick', 'objected', 'restricted', 'untouched'])
    p[`${k}Sid`] = (await grant(srv, p[k])).subject_id;
  p.prefsOffSid = (await grant(srv, p.prefsOff, 'email_offers')).subject_id;
  await grant(srv, p.suppressed, 'sms_offers', 'sms');
  await grant(srv, p.gpc, 'ad_audiences', 'ads');
  // A grant collected two hours ago: the later withdrawal is collected one hour ago.
  p.olderSid = (await grant(srv, p.older, 'newsletter', 'email', { collected_at: iso(2 * 3600e3) })).subject_id;
  const l = await srv.req('POST', `/v1/subjects/${p.oneClickSid}/preference-link`, { token: srv.tokens.all, body: {} });
  assert.equal(l.status, 201, l.text);
  p.unsubscribeUrl = l.json.unsubscribe_url;
  return p;
}

async function sayNo(srv, p) {
  await record(srv, { identifier: p.withdrawn, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'web_form' });
  const token = p.unsubscribeUrl.slice(p.unsubscribeUrl.lastIndexOf('/') + 1);
  const u = await srv.req('POST', `/u/${token}`, { raw: 'List-Unsubscribe=One-Click',
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.ok(u.status === 200 || u.status === 204, u.text);
  const pr = await srv.req('PUT', `/v1/subjects/${p.prefsOffSid}/preferences`, { token: srv.tokens.all,
    body: { topics: { sale_offers: false } } });
  assert.equal(pr.status, 200, pr.text);
  for (const identifier of [p.suppressed, p.stranger]) {
    const s = await srv.req('POST', '/v1/suppressions', { token: srv.tokens.all, body: { identifier, reason: 'complained' } });
    assert.ok(s.status === 201 || s.status === 200, s.text);
  }
  await record(srv, { identifier: p.gpc, method: 'gpc' });
  await dsr(srv, 'objection', p.objected);
  await dsr(srv, 'restriction', p.restricted);
  p.olderAt = iso(3600e3);
  await record(srv, { identifier: p.older, purpose: 'newsletter', channel: 'email', state: 'withdrawn',
    method: 'web_form', collected_at: p.olderAt });
}

// What check answers for everyone: [decision, reason] by person.
async function answers(srv, p) {
  const a = async (...args) => { const r = await check(srv, ...args); return [r.decision, r.reason]; };
  return {
    withdrawn: await a(p.withdrawn),
    oneClick: await a(p.oneClick),
    prefsOff: await a(p.prefsOff, 'email_offers'),
    suppressed: await a(p.suppressed, 'sms_offers', 'sms'),
    gpc: await a(p.gpc, 'ad_audiences', 'ads'),
    objected: await a(p.objected),
    restricted: await a(p.restricted),
    older: await a(p.older),
    untouched: await a(p.untouched),
  };
}

const SAID_NO = {
  withdrawn: ['deny', 'withdrawn'], oneClick: ['deny', 'withdrawn'], prefsOff: ['deny', 'withdrawn'],
  suppressed: ['deny', 'suppressed'], gpc: ['deny', 'withdrawn'], objected: ['deny', 'objected'],
  restricted: ['deny', 'restricted'], older: ['deny', 'withdrawn'], untouched: ['allow', 'consent'],
};

function restore(dir, file) {
  const r = cli(['restore', '--data', dir, '--json', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return JSON.parse(r.stdout);
}

function verify(dir) {
  const v = cli(['audit', 'verify', '--data', dir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /\n\d+ passed, 0 failed\n$/);
}

test('every "no" said after a backup holds after its restore, with its own time; twice gives the same answers', { skip: SQLCIPHER_ONLY }, async () => {
  const srv = await startServer();
  const p = await people(srv);
  for (const [k, v] of Object.entries(await answers(srv, p))) assert.equal(v[0], 'allow', `${k} before the backup`);
  const file = path.join(tmpdir('consentd-optout-'), 'store.backup');
  const b = cli(['backup', '--data', srv.dir, '--to', file, '--json']);
  assert.equal(b.code, 0, b.stderr);
  const backupSize = JSON.parse(b.stdout).audit_size;

  await sayNo(srv, p);
  const before = await answers(srv, p);
  assert.deepEqual(before, SAID_NO, 'what the "no"s answer before the restore');
  assert.equal((await srv.stop()).code, 0);

  // The ledger: one signed line per "no", and nothing that names a person.
  const lp = path.join(srv.dir, 'optouts.ledger');
  const ledger = fs.readFileSync(lp, 'utf8');
  const lines = ledger.trimEnd().split('\n');
  // n1 KIND FIELDS… MAC: c consent, s suppression, o objection, r restriction.
  for (const l of lines) assert.match(l, /^n1 [csor]( [!-~]+)+ [0-9a-f]{64}$/);
  const fields = lines.map((l) => l.split(' ').slice(1, -1));
  const kinds = fields.map((f) => f[0]);
  for (const k of 'csor') assert.ok(kinds.includes(k), `${k}: ${kinds}`);
  assert.ok(fields.some((f) => f[0] === 's' && /^[0-9a-f]{64}$/.test(f[2]) && f[1] === 'phone'),
    'a suppression is its type and blind index');
  for (const id of [p.withdrawn, p.oneClick, p.prefsOff, p.suppressed, p.gpc, p.objected, p.restricted, p.older, p.stranger]) {
    const value = id.slice(id.indexOf(':') + 1);
    assert.ok(!ledger.includes(value), `the ledger holds no identifier (${id.split(':')[0]})`);
    assert.ok(!ledger.includes(value.split('@')[0]), 'not even part of one');
  }
  assert.ok(!ledger.includes(p.suppressed.slice(-9)), 'no phone digits');
  // c SUBJECT PURPOSE CHANNEL STATE METHOD NOTICE COLLECTED RECORDED
  const older = fields.find((f) => f[0] === 'c' && f[1] === p.olderSid);
  assert.deepEqual(older.slice(2, 6), ['newsletter', 'email', 'withdrawn', 'web_form']);
  assert.equal(Number(older[7]), Date.parse(p.olderAt) * 1000);

  const rs = restore(srv.dir, file);
  assert.equal(rs.optout_lines, lines.length);
  assert.equal(rs.optouts_replayed, lines.length, 'every line was said after the backup');
  verify(srv.dir);

  const tokens = srv.tokens;
  let again = await startServer({ data: srv.data, tokens });
  try {
    assert.deepEqual(await answers(again, p), SAID_NO, 'the same answers after the restore');
    // The suppression of an identifier nobody holds is back too.
    const q = new URLSearchParams({ identifier: p.stranger });
    const sc = await again.req('GET', `/v1/suppressions/check?${q}`, { token: again.tokens.all });
    assert.equal(sc.status, 200, sc.text);
    assert.match(sc.text, /complained/);
    // The withdrawal kept its own collected_at: it joins the history after the older grant.
    const h = await again.req('GET', `/v1/subjects/${p.olderSid}/consents?history=true`, { token: again.tokens.all });
    assert.equal(h.status, 200, h.text);
    const w = h.json.events.find((e) => e.state === 'withdrawn');
    assert.ok(w, h.text);
    assert.equal(Date.parse(w.collected_at), Date.parse(p.olderAt));
    assert.equal(w.superseded, false);
    // The log verifies over the API, and says what was recorded again.
    const av = await again.req('POST', '/v1/audit/verify', { token: again.tokens.all });
    if (av.status === 200) assert.equal(av.json.failed, 0, av.text);
    const ae = await again.req('GET', `/v1/audit/entries?from=${backupSize}&to=${rs.audit_size}`, { token: again.tokens.all });
    assert.equal(ae.status, 200, ae.text);
    const entries = ae.text.trim().split('\n').map((l) => JSON.parse(Buffer.from(JSON.parse(l).entry, 'base64').toString()));
    const byRestore = entries.filter((x) => x.actor === 'system:restore');
    assert.equal(byRestore.filter((x) => x.type === 'consent.recorded').length,
      kinds.filter((k) => k === 'c').length, 'one consent.recorded entry per consent line');
    for (const t of ['suppression.added', 'subject.objected', 'subject.restricted'])
      assert.ok(byRestore.some((x) => x.type === t), `${t} recorded by the restore`);
  } finally {
    assert.equal((await again.stop()).code, 0);
  }
  assert.equal(fs.readFileSync(lp, 'utf8'), ledger, 'the restore itself adds no line to the live ledger');

  // The same backup restored again: the same lines recorded again, the same answers.
  const rs2 = restore(srv.dir, file);
  assert.equal(rs2.optouts_replayed, lines.length);
  assert.equal(rs2.audit_size, rs.audit_size);
  verify(srv.dir);
  again = await startServer({ data: srv.data, tokens });
  let file2;
  try {
    assert.deepEqual(await answers(again, p), SAID_NO, 'a second restore answers the same');
    file2 = path.join(tmpdir('consentd-optout-'), 'after.backup');
    assert.equal(cli(['backup', '--data', srv.dir, '--to', file2]).code, 0);
  } finally {
    assert.equal((await again.stop()).code, 0);
  }
  // A backup that holds every "no" already: nothing is written.
  const rs3 = restore(srv.dir, file2);
  assert.equal(rs3.optouts_replayed, 0);
  assert.equal(rs3.erasures_replayed, 0);
  verify(srv.dir);
});

test('a tampered opt-out ledger makes restore refuse, changing nothing; a line a crash kept out comes back at the next start', { skip: SQLCIPHER_ONLY }, async () => {
  const srv = await startServer();
  const e = email();
  await grant(srv, e);
  const file = path.join(tmpdir('consentd-optout-'), 'b');
  assert.equal(cli(['backup', '--data', srv.dir, '--to', file]).code, 0);
  await record(srv, { identifier: e, purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'web_form' });
  const s = await srv.req('POST', '/v1/suppressions', { token: srv.tokens.all, body: { identifier: email(), reason: 'bounced' } });
  assert.ok(s.status === 201 || s.status === 200, s.text);
  assert.equal((await srv.stop()).code, 0);

  const lp = path.join(srv.dir, 'optouts.ledger');
  const good = fs.readFileSync(lp, 'utf8');
  assert.equal(good.trimEnd().split('\n').length, 2);
  // An edited time: the withdrawal made to look older than the grant.
  fs.writeFileSync(lp, good.replace(/^(n1 c \S+ newsletter email withdrawn web_form \d+ )(\d)/,
    (m, a, d) => `${a}${(Number(d) + 8) % 10}`));
  assert.notEqual(fs.readFileSync(lp, 'utf8'), good);
  let before = snapshot(srv.dir);
  let r = cli(['restore', '--data', srv.dir, file]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /optouts\.ledger:1: the line's MAC does not verify/);
  assert.match(r.stderr, /nothing was changed/);
  assert.deepEqual(snapshot(srv.dir), before);
  // The first line removed: the second no longer follows from anything.
  fs.writeFileSync(lp, good.split('\n').slice(1).join('\n'));
  before = snapshot(srv.dir);
  r = cli(['restore', '--data', srv.dir, file]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /optouts\.ledger:1: the line's MAC does not verify/);
  assert.deepEqual(snapshot(srv.dir), before);

  // A crash between the commit and its line: the last line torn. The next
  // start puts back the same line from the database (on a thread of its
  // own, while the server already answers).
  const lines = good.split('\n');
  fs.writeFileSync(lp, `${lines[0]}\n${lines[1].slice(0, 30)}`);
  const again = await startServer({ data: srv.data, tokens: srv.tokens });
  try {
    const rec = await waitForLog(again, (j) => j.event === 'optout_ledger_recovered', 20000);
    assert.ok(rec && rec.count === 1, again.logs.join('\n'));
    assert.equal(fs.readFileSync(lp, 'utf8'), good);
  } finally {
    assert.equal((await again.stop()).code, 0);
  }
  // With the ledger whole again, the restore records both "no"s.
  const rs = restore(srv.dir, file);
  assert.equal(rs.optouts_replayed, 2);
  verify(srv.dir);
});

// The store put aside by other means than `consentd backup`, as an
// operator does on PostgreSQL (pgBackRest, pg_dump): with no server
// running, the database file copied (SQLCipher) or dumped (PostgreSQL).
function coldCopy(dir) {
  const to = tmpdir('consentd-cold-');
  if (!PG) {
    for (const f of ['consentd.db', 'consentd.db-wal'])
      if (fs.existsSync(path.join(dir, f))) fs.copyFileSync(path.join(dir, f), path.join(to, f));
    return to;
  }
  const d = spawnSync('pg_dump', ['-h', PG, '-U', 'postgres', '-Fc', '-d', pgName(dir), '-f',
    path.join(to, 'dump')], { encoding: 'utf8' });
  assert.equal(d.status, 0, d.stderr);
  return to;
}

// Puts the copy of coldCopy() back in DIR's place.
function putBack(dir, copy) {
  if (!PG) {
    for (const f of ['consentd.db', 'consentd.db-wal', 'consentd.db-shm']) fs.rmSync(path.join(dir, f), { force: true });
    for (const f of fs.readdirSync(copy)) fs.copyFileSync(path.join(copy, f), path.join(dir, f));
    return;
  }
  const name = pgName(dir);
  for (const [cmd, args] of [['dropdb', [name]], ['createdb', [name]],
    ['pg_restore', ['-d', name, path.join(copy, 'dump')]]]) {
    const r = spawnSync(cmd, ['-h', PG, '-U', 'postgres', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
  }
}

const pgName = (dir) => new URL(fs.readFileSync(path.join(dir, 'store'), 'utf8').trim()).pathname.slice(1);

function replay(dir, others, expectCode = 0) {
  const r = cli(['restore', '--replay', '--data', dir, ...others.flatMap((o) => ['--ledgers', o]), '--json']);
  assert.equal(r.code, expectCode, r.stdout + r.stderr);
  return expectCode === 0 ? JSON.parse(r.stdout) : r;
}

test('a store put back by other means gets every erasure and "no" said since from restore --replay, from every node\'s ledgers', async () => {
  const srv = await startServer();
  const p = await people(srv);
  const erased = email();
  const erasedSid = (await grant(srv, erased)).subject_id;
  assert.equal((await srv.stop()).code, 0);
  const copy = coldCopy(srv.dir);

  // After the copy, through two nodes: the "no"s through B (on PostgreSQL
  // its own data directory, so its own ledgers), the erasure through A.
  const nodeB = nodeData(srv.data);
  const others = nodeB.dir === srv.dir ? [] : [nodeB.dir];
  const a = await startServer({ data: srv.data, tokens: srv.tokens });
  const b = await startServer({ data: nodeB, tokens: srv.tokens });
  try {
    await sayNo(b, p);
    await dsr(a, 'erasure', erased);
    assert.deepEqual(await answers(a, p), SAID_NO);
  } finally {
    assert.equal((await b.stop()).code, 0);
    assert.equal((await a.stop()).code, 0);
  }
  const lines = [srv.dir, ...others].map((d) => fs.readFileSync(path.join(d, 'optouts.ledger'), 'utf8')
    .trimEnd().split('\n').length).reduce((x, y) => x + y, 0);

  // Put back, the store has forgotten them: the hazard --replay is for.
  putBack(srv.dir, copy);
  let c = await startServer({ data: srv.data, tokens: srv.tokens });
  try {
    assert.equal((await check(c, p.withdrawn)).decision, 'allow', 'the copy predates the withdrawal');
    assert.equal((await check(c, erased)).decision, 'allow', 'and the erasure');
  } finally {
    assert.equal((await c.stop()).code, 0);
  }

  // A ledger that does not verify: refused, nothing changed.
  const victim = path.join(others[0] || srv.dir, 'optouts.ledger');
  const good = fs.readFileSync(victim);
  const bad = Buffer.from(good);
  bad[bad.length - 3] ^= 1;
  fs.writeFileSync(victim, bad);
  const snap = snapshot(srv.dir);
  const refused = replay(srv.dir, others, 1);
  assert.match(refused.stderr, /nothing was changed/);
  assert.deepEqual(snapshot(srv.dir), snap);
  fs.writeFileSync(victim, good);

  const r = replay(srv.dir, others);
  assert.equal(r.ledgers, 1 + others.length);
  assert.equal(r.erasures_replayed, 1);
  assert.equal(r.optout_lines, lines);
  // Every "no" was said after the copy; the erasure's own suppression
  // entry (its one line) came back with the erasure, replayed first.
  assert.equal(r.optouts_replayed, lines - 1);
  verify(srv.dir);
  c = await startServer({ data: srv.data, tokens: srv.tokens });
  try {
    assert.deepEqual(await answers(c, p), SAID_NO, 'the same answers as before the copy was put back');
    const s = await c.req('GET', `/v1/subjects/${erasedSid}`, { token: c.tokens.all });
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.state, 'erased');
    assert.equal((await check(c, erased)).decision, 'deny');
  } finally {
    assert.equal((await c.stop()).code, 0);
  }
  // Twice: nothing more to do.
  const r2 = replay(srv.dir, others);
  assert.equal(r2.erasures_replayed, 0);
  assert.equal(r2.optouts_replayed, 0);
  verify(srv.dir);
});
