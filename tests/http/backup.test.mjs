// SPDX-License-Identifier: ISC
// Backup and restore that cannot lose data (docs/operations.md, "Backup
// and restore"): a backup taken while the server writes restores to a
// store that verifies and holds every write acknowledged before the backup
// began; an erasure made after the backup is made again by the restore,
// from the erasure ledger kept outside the database; a plain copy of
// consentd.db without its write-ahead log fails `audit verify
// --checkpoint`; a damaged or foreign backup, a tampered ledger and a
// running server each make restore refuse and change nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, PG, SCOPES, SQLCIPHER_ONLY, cli, createToken, initData, snapshot, startServer as start, tmpdir,
  settledAuditSize } from './harness.mjs';

// Runs a consentd subcommand without blocking the event loop, so requests
// keep flowing while it runs.
function cliAsync(args) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (c) => { stdout += c; });
    p.stderr.on('data', (c) => { stderr += c; });
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

// A server with one token of every scope standing for each scope's token:
// one token made instead of nine, to keep the file quick.
async function startServer(opts = {}) {
  if (opts.noTokens) return start(opts);
  const data = initData();
  const all = createToken(data.dir, 'all', SCOPES);
  const srv = await start({ ...opts, data, noTokens: true });
  srv.tokens = Object.fromEntries([['all', all], ...SCOPES.map((x) => [x, all])]);
  return srv;
}

let seq = 0;
const email = () => `email:backup${process.pid}x${++seq}@example.com`;

async function grant(srv, identifier = email()) {
  const r = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    body: { identifier, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(r.status, 201, r.text);
  return { identifier, event_id: r.json.event_id, subject_id: r.json.subject_id };
}

async function check(srv, identifier) {
  const q = new URLSearchParams({ identifier, purpose: 'newsletter', channel: 'email' });
  const r = await srv.req('GET', `/v1/consent/check?${q}`, { token: srv.tokens['consent:read'] });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function requestErasure(srv, identifier) {
  const c = await srv.req('POST', '/v1/dsr', { token: srv.tokens['dsr:admin'],
    body: { type: 'erasure', identifier, verified: true } });
  assert.equal(c.status, 201, c.text);
  return c.json.id;
}

async function processRequest(srv, id) {
  const p = await srv.req('POST', `/v1/dsr/${id}/process`, { token: srv.tokens['dsr:admin'] });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.status, 'completed');
}

async function erase(srv, identifier) {
  await processRequest(srv, await requestErasure(srv, identifier));
}

// The latest checkpoint once it covers at least SIZE entries (the server
// signs one a second while the log grows).
async function checkpointCovering(srv, size) {
  for (let i = 0; i < 300; i++) {
    const r = await srv.req('GET', '/v1/audit/checkpoint', { token: srv.tokens['audit:read'] });
    if (r.status === 200 && Number(r.text.split('\n')[1]) >= size) return r.text;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no checkpoint of ${size} entries was signed`);
}

function verify(dir, extra = []) {
  return cli(['audit', 'verify', '--data', dir, ...extra]);
}

test('a backup under write load restores to a store that verifies, with every acknowledged write; a later erasure is made again', { skip: SQLCIPHER_ONLY }, async (t) => {
  const srv = await startServer();
  const before = [];
  for (let i = 0; i < 20; i++) before.push(await grant(srv));
  // An erasure request received before the backup, carried out after it.
  const gone = before[3];
  const reqId = await requestErasure(srv, gone.identifier);
  // A loop of writes runs through the whole backup.
  let stop = false;
  const during = [];
  const load = (async () => { while (!stop) during.push(await grant(srv)); })();
  while (during.length < 10) await new Promise((res) => setTimeout(res, 5));
  // Everything acknowledged before the backup begins must be in it.
  const acked = [...before, ...during];
  const file = path.join(tmpdir('consentd-backup-'), 'store.backup');
  const b = await cliAsync(['backup', '--data', srv.dir, '--to', file, '--json']);
  const writtenDuring = during.length - (acked.length - before.length);
  stop = true;
  await load;
  assert.equal(b.code, 0, b.stderr);
  const sum = JSON.parse(b.stdout);
  assert.equal(sum.backup, file);
  assert.equal(sum.bytes, fs.statSync(file).size);
  assert.ok(sum.audit_size >= acked.length, `audit size ${sum.audit_size}`);
  t.diagnostic(`${writtenDuring} writes were acknowledged while the backup ran`);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['store.backup'], 'no staging file is left');
  // The file is still encrypted: no SQLite header, no identifier in clear.
  const bytes = fs.readFileSync(file);
  assert.notEqual(bytes.subarray(0, 15).toString(), 'SQLite format 3');
  assert.equal(bytes.indexOf(Buffer.from(acked[0].identifier.slice(6))), -1);

  // After the backup: the person's erasure is carried out, and one more
  // write made (which the restore loses, as any restore loses what came
  // after its backup began).
  await processRequest(srv, reqId);
  const late = await grant(srv);
  const ledger = fs.readFileSync(path.join(srv.dir, 'erasures.ledger'), 'utf8');
  assert.match(ledger, new RegExp(`^e1 ${gone.subject_id} \\d+ [0-9a-f]{64}$`, 'm'));
  assert.doesNotMatch(ledger, /@/, 'the ledger holds no identifier');
  assert.equal((await check(srv, gone.identifier)).reason, 'suppressed');
  assert.equal((await srv.stop()).code, 0);

  const r = cli(['restore', '--data', srv.dir, '--json', file]);
  assert.equal(r.code, 0, r.stderr);
  const rs = JSON.parse(r.stdout);
  assert.equal(rs.erasures_replayed, 1);
  assert.ok(rs.ledger_lines >= 1);
  assert.deepEqual(fs.readdirSync(srv.dir).filter((f) => f.startsWith('.') || f.includes('before-restore')), [],
    'no staging directory or old database is left');

  const v = verify(srv.dir);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /\n\d+ passed, 0 failed\n$/);

  const again = await startServer({ data: srv.data, noTokens: true });
  again.tokens = srv.tokens;
  try {
    // (The erased person's receipts are gone with them: SPEC §8.)
    for (const w of acked.filter((x) => x !== gone)) {
      const x = await again.req('GET', `/v1/consents/${w.event_id}/receipt`, { token: again.tokens['consent:read'] });
      assert.equal(x.status, 200, `event ${w.event_id} acknowledged before the backup: ${x.text}`);
    }
    const lost = await again.req('GET', `/v1/consents/${late.event_id}/receipt`, { token: again.tokens['consent:read'] });
    assert.equal(lost.status, 404);
    // The erasure made after the backup holds after the restore.
    const s = await again.req('GET', `/v1/subjects/${gone.subject_id}`, { token: again.tokens['subjects:read'] });
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.state, 'erased');
    assert.deepEqual(s.json.identifiers ?? [], []);
    const c = await check(again, gone.identifier);
    assert.equal(c.decision, 'deny');
    assert.equal(c.reason, 'suppressed');
    const q = new URLSearchParams({ identifier: gone.identifier });
    const sc = await again.req('GET', `/v1/suppressions/check?${q}`, { token: again.tokens['consent:read'] });
    assert.equal(sc.status, 200, sc.text);
    assert.match(sc.text, /erased/);
    // The request it answered, open in the backup, is completed.
    const rq = await again.req('GET', `/v1/dsr/${reqId}`, { token: again.tokens['dsr:admin'] });
    assert.equal(rq.status, 200, rq.text);
    assert.equal(rq.json.status, 'completed');
    assert.equal(rq.json.timeline.at(-1).step, 'completed');
    // Everyone else is still there and still allowed.
    assert.equal((await check(again, acked[4].identifier)).decision, 'allow');
    // The restored log verifies over the API too.
    const av = await again.req('POST', '/v1/audit/verify', { token: again.tokens['audit:read'] });
    if (av.status === 200) assert.equal(av.json.failed, 0, av.text);
  } finally {
    assert.equal((await again.stop()).code, 0);
  }
  // Restoring the same backup again erases the person again: the ledger is kept.
  const r2 = cli(['restore', '--data', srv.dir, '--json', file]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout).erasures_replayed, 1);
  assert.equal(verify(srv.dir).code, 0);
});

test('a copy of consentd.db without its write-ahead log fails audit verify --checkpoint; a backup passes', { skip: SQLCIPHER_ONLY }, async () => {
  const srv = await startServer();
  try {
    for (let i = 0; i < 15; i++) await grant(srv);
    const size = await settledAuditSize(srv);
    const note = await checkpointCovering(srv, size);
    const noteFile = path.join(tmpdir('consentd-note-'), 'checkpoint');
    fs.writeFileSync(noteFile, note);

    // What an operator might do: cp the database while the server runs.
    const copy = path.join(tmpdir('consentd-cp-'), 'data');
    fs.mkdirSync(copy, { mode: 0o700 });
    for (const f of ['master.key', 'audit.key', 'consentd.db'])
      fs.copyFileSync(path.join(srv.dir, f), path.join(copy, f));
    const bad = verify(copy, ['--checkpoint', noteFile]);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /FAIL checkpoint .*committed entries are missing/);
    assert.doesNotMatch(bad.stdout, /\n0 failed\n/);

    // The live store and a real backup hold what the checkpoint signed.
    const live = verify(srv.dir, ['--checkpoint', noteFile]);
    assert.equal(live.code, 0, live.stdout + live.stderr);
    assert.match(live.stdout, /ok   checkpoint .*: the log's first \d+ entries have its root/);
    const file = path.join(tmpdir('consentd-backup-'), 'b');
    const b = cli(['backup', '--data', srv.dir, '--to', file]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /audit entries/);
    assert.match(b.stdout, /latest checkpoint: size \d+/);
    const restoredDir = path.join(tmpdir('consentd-rs-'), 'data');
    fs.mkdirSync(restoredDir, { mode: 0o700 });
    for (const f of ['master.key', 'audit.key']) fs.copyFileSync(path.join(srv.dir, f), path.join(restoredDir, f));
    fs.copyFileSync(file, path.join(restoredDir, 'consentd.db'));
    const ok = verify(restoredDir, ['--checkpoint', noteFile]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);

    // A checkpoint whose note was edited (another size) is no checkpoint of this log.
    const lines = note.split('\n');
    lines[1] = String(Number(lines[1]) - 1);
    fs.writeFileSync(noteFile, lines.join('\n'));
    const forged = verify(srv.dir, ['--checkpoint', noteFile]);
    assert.equal(forged.code, 1);
    assert.match(forged.stdout, /FAIL checkpoint .*not a checkpoint signed by the log's key/);
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('restore refuses a damaged or foreign backup, a tampered ledger and a running server, changing nothing', { skip: SQLCIPHER_ONLY }, async () => {
  const srv = await startServer();
  let stopped = false;
  try {
    const w = await grant(srv);
    const file = path.join(tmpdir('consentd-backup-'), 'b');
    assert.equal(cli(['backup', '--data', srv.dir, '--to', file]).code, 0);

    // While the server runs.
    let before = snapshot(srv.dir);
    const busy = cli(['restore', '--data', srv.dir, file]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /in use.*stop it first/);
    assert.match(busy.stderr, /nothing was changed/);
    assert.equal((await check(srv, w.identifier)).decision, 'allow');
    await erase(srv, (await grant(srv)).identifier);
    assert.equal((await srv.stop()).code, 0);
    stopped = true;
    before = snapshot(srv.dir);

    const bytes = fs.readFileSync(file);
    const cases = {
      // One byte changed inside a page: SQLCipher's page MAC no longer matches.
      flipped: (() => { const b = Buffer.from(bytes); b[Math.floor(b.length / 2) + 100] ^= 0x55; return b; })(),
      truncated: bytes.subarray(0, Math.floor(bytes.length / 2)),
      garbage: Buffer.alloc(8192, 0x41),
      empty: Buffer.alloc(0),
    };
    for (const [name, b] of Object.entries(cases)) {
      const f = path.join(path.dirname(file), name);
      fs.writeFileSync(f, b);
      const r = cli(['restore', '--data', srv.dir, f]);
      assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /nothing was changed/, name);
      assert.deepEqual(snapshot(srv.dir), before, `${name}: the data directory is unchanged`);
      assert.deepEqual(fs.readdirSync(srv.dir).filter((x) => x.startsWith('.')), [], name);
    }
    // A backup of another store (another master key).
    const other = initData();
    const of = path.join(path.dirname(file), 'other');
    assert.equal(cli(['backup', '--data', other.dir, '--to', of]).code, 0);
    const foreign = cli(['restore', '--data', srv.dir, of]);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /does not open with this data directory's key/);
    assert.deepEqual(snapshot(srv.dir), before);

    // A ledger line edited: restore cannot know whom to erase, so it refuses.
    const lp = path.join(srv.dir, 'erasures.ledger');
    const led = fs.readFileSync(lp, 'utf8');
    fs.writeFileSync(lp, led.replace(/ (\d)(\d+) /, (m, a, b) => ` ${(Number(a) + 1) % 10}${b} `));
    const edited = snapshot(srv.dir);
    const t = cli(['restore', '--data', srv.dir, file]);
    assert.equal(t.code, 1);
    assert.match(t.stderr, /erasures\.ledger:1: the line's MAC does not verify/);
    assert.deepEqual(snapshot(srv.dir), edited);
    // Removing the line is found the same way once another follows it; the
    // last line removed is put back from the live store.
    fs.writeFileSync(lp, '');
    const r = cli(['restore', '--data', srv.dir, '--json', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).erasures_replayed, 0, 'the erased subject is not in the backup');
    assert.match(fs.readFileSync(lp, 'utf8'), /^e1 sub_/);
  } finally {
    if (!stopped) await srv.stop();
  }
});

test('backup and restore explain bad arguments', { skip: SQLCIPHER_ONLY }, () => {
  const { dir } = initData();
  let r = cli(['backup', '--data', dir]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /--to: the backup file to write is required/);
  r = cli(['backup', '--data', dir, '--to', '/nonexistent-dir/x/b']);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /cannot make a staging directory in \/nonexistent-dir\/x/);
  r = cli(['backup', '--data', path.join(dir, 'missing'), '--to', path.join(tmpdir(), 'b')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /master\.key|no database/);
  r = cli(['backup', '--data', dir, '--to', path.join(tmpdir(), 'b'), 'extra']);
  assert.equal(r.code, 64);
  r = cli(['restore', '--data', dir]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /one backup FILE is required/);
  r = cli(['restore', '--data', dir, path.join(dir, 'no-such-file')]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /is not a readable backup file/);
  r = cli(['restore', '--data', path.join(dir, 'nope'), path.join(dir, 'consentd.db')]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /--data: .* is not a data directory/);
  r = cli(['audit', 'verify', '--data', dir, '--checkpoint', path.join(dir, 'no-such-note')]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /--checkpoint: cannot read/);
  r = cli(['audit', 'checkpoint', '--data', dir, '--checkpoint', path.join(dir, 'master.key')]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /--checkpoint: only with verify/);
  r = cli(['help', 'backup']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /usage: consentd backup --to FILE/);
});

test('on PostgreSQL, backup and restore FILE refuse, name the tools to use and change nothing', { skip: !PG && 'a PostgreSQL store\'s' }, async () => {
  const srv = await startServer();
  await grant(srv);
  assert.equal((await srv.stop()).code, 0);
  const before = snapshot(srv.dir);
  const file = path.join(tmpdir(), 'b');
  for (const args of [['backup', '--data', srv.dir, '--to', file], ['restore', '--data', srv.dir, srv.data.dir + '/master.key']]) {
    const r = cli(args);
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /this store is on PostgreSQL/);
    assert.match(r.stderr, /pgBackRest, pg_basebackup, pg_dump\), then run 'consentd restore --replay'/);
    assert.match(r.stderr, /nothing was changed/);
  }
  assert.ok(!fs.existsSync(file));
  assert.deepEqual(snapshot(srv.dir), before);
});

test('an erasure the ledger lacks (a crash between its commit and its line) is added at the next start', async () => {
  const srv = await startServer();
  const w = await grant(srv);
  await erase(srv, w.identifier);
  assert.equal((await srv.stop()).code, 0);
  const lp = path.join(srv.dir, 'erasures.ledger');
  const line = fs.readFileSync(lp, 'utf8');
  assert.match(line, new RegExp(`^e1 ${w.subject_id} \\d+ [0-9a-f]{64}\\n$`));
  // The line was torn by the crash: only its start reached the disk.
  fs.writeFileSync(lp, line.slice(0, 25));
  const again = await startServer({ data: srv.data, noTokens: true });
  try {
    assert.ok(again.logs.some((l) => l.includes('"event":"erasure_ledger_recovered"') && l.includes('"count":1')),
      again.logs.join('\n'));
    // The same line as the erasure wrote: its time is the one the store kept.
    assert.equal(fs.readFileSync(lp, 'utf8'), line);
  } finally {
    assert.equal((await again.stop()).code, 0);
  }
});
