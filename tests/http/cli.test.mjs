// SPDX-License-Identifier: ISC
// The command line: init, wrong key, invalid policy, changed and newer
// migrations, tokens, help. Every failure must exit non-zero with a message
// that says what to do, and leave every file as it was.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PG, POLICY, ROOT, cli, initData, logText, snapshot, startServer, tmpdir } from './harness.mjs';

test('init creates DIR 0700 with 32-byte keys 0600 and the database', () => {
  const base = tmpdir();
  const dir = path.join(base, 'd');
  const r = cli(['init', '--data', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  for (const f of ['master.key', 'audit.key']) {
    const st = fs.statSync(path.join(dir, f));
    assert.equal(st.mode & 0o777, 0o600, f);
    assert.equal(st.size, 32, f);
  }
  assert.equal(fs.statSync(path.join(dir, 'consentd.db')).mode & 0o777, 0o600);
  assert.notDeepEqual(fs.readFileSync(path.join(dir, 'master.key')),
    fs.readFileSync(path.join(dir, 'audit.key')));
  // The database is encrypted: no SQLite header, no schema text.
  const db = fs.readFileSync(path.join(dir, 'consentd.db'));
  assert.ok(!db.subarray(0, 16).toString('latin1').startsWith('SQLite format 3'));
  assert.ok(!db.includes(Buffer.from('CREATE TABLE')));
});

test('init refuses a directory that already holds a store, changing nothing', () => {
  const { dir } = initData();
  const before = snapshot(dir);
  const r = cli(['init', '--data', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already holds a consentd store.*refusing to overwrite/s);
  assert.deepEqual(snapshot(dir), before);
});

test('init takes CONSENTD_DATA from the environment', () => {
  const dir = path.join(tmpdir(), 'envdata');
  const r = cli(['init'], { env: { CONSENTD_DATA: dir } });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'consentd.db')));
});

test('a wrong master key exits 2 with a clear message and leaves the files byte-identical', () => {
  const { dir } = initData();
  fs.writeFileSync(path.join(dir, 'master.key'), crypto.randomBytes(32), { mode: 0o600 });
  const before = snapshot(dir);
  for (const args of [['serve', '--data', dir, '--listen', '127.0.0.1:0', '--policy', POLICY],
    ['token', 'list', '--data', dir], ['migrate', '--data', dir]]) {
    const r = cli(args);
    assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /wrong key, or not a consentd database/);
    assert.match(r.stderr, /master\.key/);
    assert.deepEqual(snapshot(dir), before, `${args[0]} changed a file`);
  }
});

test('a key file readable by others, or of the wrong size, is refused', () => {
  const { dir } = initData();
  fs.chmodSync(path.join(dir, 'master.key'), 0o644);
  let r = cli(['token', 'list', '--data', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /chmod 600/);
  fs.chmodSync(path.join(dir, 'master.key'), 0o600);
  fs.writeFileSync(path.join(dir, 'master.key'), crypto.randomBytes(31));
  r = cli(['token', 'list', '--data', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /exactly 32 bytes/);
});

test('a missing data directory says to run init', () => {
  const r = cli(['token', 'list', '--data', path.join(tmpdir(), 'none')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /consentd init/);
});

function writePolicy(mutate) {
  const dir = tmpdir('consentd-policy-');
  const text = mutate(fs.readFileSync(path.join(POLICY, 'policy.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'policy.json'), text);
  return { dir, text };
}

test('an invalid policy stops serve before the store is touched, naming file, line and field', () => {
  const { dir } = initData();
  const before = snapshot(dir);
  const cases = [
    [(t) => t.replace('"lawful_basis": "soft_opt_in"', '"lawful_basis": "soft_optin"'),
      /purposes\[5\]\.lawful_basis: unknown lawful basis "soft_optin"/, 'soft_optin'],
    [(t) => t.replace('"purpose": "sms_offers"', '"purpose": "sms_promos"'),
      /topics\[2\]\.purpose: no purpose has the id "sms_promos"/, 'sms_promos'],
    [(t) => t.replace('"version": 2,', '"version": 2, "colour": "red",'),
      /purposes\[0\]\.colour: unknown field/, 'colour'],
    [(t) => t.replace('"min_valid_version": 1\n    },\n    {\n      "id": "email_offers"',
      '"min_valid_version": 3\n    },\n    {\n      "id": "email_offers"'),
      /purposes\[0\]\.min_valid_version: 3 is greater than version 2/, '"min_valid_version": 3'],
    [(t) => t.replace('"id": "email_offers"', '"id": "newsletter"'),
      /purposes\[1\]\.id: duplicate id "newsletter"/, '"id": "newsletter",\n      "title": "Offers'],
    [(t) => t.replace('"frequencies": ["daily", "weekly", "monthly"],', '"frequencies": ["daily", "weekly", "monthly"]'),
      /\(document\): /, '"default_frequency"'],
  ];
  for (const [mutate, re, marker] of cases) {
    const p = writePolicy(mutate);
    const r = cli(['serve', '--data', dir, '--listen', '127.0.0.1:0', '--policy', p.dir]);
    assert.equal(r.code, 1, r.stderr);
    // The server's stderr is JSON lines: the message is read out of them.
    r.stderr = logText(r.stderr);
    assert.match(r.stderr, re);
    const line = p.text.slice(0, p.text.indexOf(marker)).split('\n').length;
    assert.ok(r.stderr.includes(`${path.join(p.dir, 'policy.json')}:${line}:`),
      `expected line ${line} in: ${r.stderr}`);
    assert.match(r.stderr, /fix the policy and start again \(nothing was changed\)/);
    assert.deepEqual(snapshot(dir), before);
  }
});

// A copy of migrations/ and, beside it, of migrations-pg/ (consentd reads
// DIR-pg for PostgreSQL's). Returns DIR; ENGINE_MIG(DIR) is the directory
// of the engine the suite runs on, whose files the tests change.
function migrationsCopy() {
  const base = tmpdir('consentd-mig-');
  for (const sub of ['migrations', 'migrations-pg']) {
    fs.mkdirSync(path.join(base, sub));
    for (const f of fs.readdirSync(path.join(ROOT, sub)))
      fs.copyFileSync(path.join(ROOT, sub, f), path.join(base, sub, f));
  }
  return path.join(base, 'migrations');
}
const engineMig = (mig) => (PG ? `${mig}-pg` : mig);

test('a migration changed after it was applied is refused, changing nothing', () => {
  const mig = migrationsCopy();
  const { dir } = initData(['--migrations', mig]);
  const first = fs.readdirSync(engineMig(mig)).sort()[0];
  fs.appendFileSync(path.join(engineMig(mig), first), '\n-- an edit after the fact\n');
  const before = snapshot(dir);
  const r = cli(['serve', '--data', dir, '--listen', '127.0.0.1:0', '--policy', POLICY, '--migrations', mig]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`migration ${first} has changed since it was applied`));
  assert.match(r.stderr, /restore the original file/);
  assert.deepEqual(snapshot(dir), before);
});

test('a database newer than the binary is refused, changing nothing', () => {
  const mig = migrationsCopy();
  const n = fs.readdirSync(engineMig(mig)).length + 1;
  fs.writeFileSync(path.join(engineMig(mig), `${String(n).padStart(4, '0')}_future.sql`),
    'CREATE TABLE future_things (id INTEGER PRIMARY KEY);\n');
  const { dir } = initData(['--migrations', mig]);
  const before = snapshot(dir);
  const r = cli(['serve', '--data', dir, '--listen', '127.0.0.1:0', '--policy', POLICY]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /newer than this binary/);
  assert.deepEqual(snapshot(dir), before);
});

test('a pending migration is applied by serve and by migrate, once', async () => {
  const mig = migrationsCopy();
  const { dir } = initData(['--migrations', mig]);
  const n = fs.readdirSync(engineMig(mig)).length + 1;
  fs.writeFileSync(path.join(engineMig(mig), `${String(n).padStart(4, '0')}_more.sql`),
    'CREATE TABLE more_things (id INTEGER PRIMARY KEY);\n');
  let r = cli(['migrate', '--data', dir, '--status', '--migrations', mig]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /run 'consentd migrate'/);
  r = cli(['migrate', '--data', dir, '--migrations', mig]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`schema version ${n}; this binary has ${n} migrations`));
  r = cli(['migrate', '--data', dir, '--migrations', mig]);
  assert.equal(r.code, 0, 're-run is a no-op');
  const srv = await startServer({ data: { dir }, noTokens: true, args: ['--migrations', mig] });
  assert.equal((await srv.req('GET', '/readyz')).status, 200);
  assert.equal((await srv.stop()).code, 0);
});

test('token create validates name and scopes; list and revoke', () => {
  const { dir } = initData();
  let r = cli(['token', 'create', '--data', dir, '--name', 'ok', '--scopes', 'consent:read,nope']);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /unknown scope 'nope'/);
  r = cli(['token', 'create', '--data', dir, '--name', 'bad name', '--scopes', 'admin']);
  assert.equal(r.code, 64);
  r = cli(['token', 'create', '--data', dir, '--name', 'svc', '--scopes', 'consent:read,consent:write']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^cmt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
  assert.match(r.stderr, /shown only this once/);
  r = cli(['token', 'create', '--data', dir, '--name', 'svc', '--scopes', 'admin']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already called 'svc'/);
  r = cli(['token', 'list', '--data', dir]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /svc\s+active\s+\S+\s+consent:read,consent:write/);
  assert.doesNotMatch(r.stdout, /cmt_/);
  r = cli(['token', 'revoke', '--data', dir, 'svc']);
  assert.equal(r.code, 0);
  r = cli(['token', 'revoke', '--data', dir, 'svc']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no active token is called 'svc'/);
  r = cli(['token', 'list', '--data', dir]);
  assert.match(r.stdout, /svc\s+revoked/);
});

test('help describes every command; bad usage exits 64', () => {
  let r = cli(['help']);
  assert.equal(r.code, 0);
  for (const c of ['init', 'serve', 'token', 'migrate', 'routes'])
    assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
  for (const c of ['init', 'serve', 'token', 'migrate', 'routes']) {
    r = cli([c, '--help']);
    assert.equal(r.code, 0, c);
    assert.match(r.stdout, new RegExp(`usage: consentd ${c}`));
    assert.deepEqual(cli(['help', c]).stdout, r.stdout);
  }
  assert.equal(cli([]).code, 64);
  assert.equal(cli(['frobnicate']).code, 64);
  assert.equal(cli(['serve', '--bogus']).code, 64);
  assert.equal(cli(['serve', '--listen', 'nonsense']).code, 64);
  assert.equal(cli(['serve', '--threads', '0']).code, 64);
  assert.match(cli(['version']).stdout, /^consentd \d+\.\d+\.\d+\n$/);
});

test('serve flags also come from CONSENTD_* variables; a bad one is refused', async () => {
  const srv = await startServer({ env: { CONSENTD_MAX_BODY_BYTES: '1024' } });
  const big = 'x'.repeat(2000);
  const r = await srv.req('GET', '/healthz', { raw: big, headers: { 'content-type': 'text/plain' } }).catch(() => ({ status: 413 }));
  assert.equal(r.status, 413);
  assert.equal((await srv.stop()).code, 0);
  const bad = cli(['serve', '--data', tmpdir(), '--policy', POLICY], { env: { CONSENTD_THREADS: 'many' } });
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /CONSENTD_THREADS/);
});

test('SIGTERM always reaches the thread waiting for it: 20 starts and stops all exit 0', async () => {
  // A thread started before the signals were blocked could take SIGTERM
  // itself and the process died of it (about one stop in six).
  for (let i = 0; i < 20; i++) {
    const srv = await startServer();
    assert.equal((await srv.req('GET', '/healthz')).status, 200);
    assert.deepEqual(await srv.stop(), { code: 0, signal: null }, `stop ${i + 1}`);
  }
});

test('SIGTERM: the server stops accepting, finishes, logs and exits 0', async () => {
  const srv = await startServer();
  assert.equal((await srv.req('GET', '/healthz')).status, 200);
  const r = await srv.stop();
  assert.equal(r.code, 0);
  const events = srv.logs.map((l) => JSON.parse(l).event);
  assert.ok(events.includes('shutting_down'));
  assert.equal(events[events.length - 1], 'stopped');
  await assert.rejects(fetch(`${srv.url}/healthz`));
});
