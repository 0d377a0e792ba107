// SPDX-License-Identifier: ISC
// The audit log through the API and the command line: checkpoints, keys,
// entries and proofs; verification by Go's x/mod (code we did not write)
// over more than 1,000 entries written by consentd's own code; tamper
// detection by `consentd audit verify`; and the witness refusing a
// rewritten history.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { POLICY, SCOPES, cli, initData, snapshot, startServer, tmpdir } from './harness.mjs';

const DBTOOL = process.env.CONSENTD_DBTOOL;
const TLOGCHECK = process.env.CONSENTD_TLOGCHECK;
// Entries of a fresh server: init's, and one per token the harness makes
// ('all' and one for each scope).
const BASE = 2 + SCOPES.length;

// The first start records one policy.version per purpose of the policy.
const PURPOSES = JSON.parse(fs.readFileSync(path.join(POLICY, 'policy.json'), 'utf8')).purposes.length;
const START = BASE + PURPOSES;

// Length of the RFC 9162 inclusion proof of leaf M in a tree of N.
function proofLength(m, n) {
  if (n <= 1) return 0;
  let k = 1;
  while (k * 2 < n) k *= 2;
  return 1 + (m < k ? proofLength(m, k) : proofLength(m - k, n - k));
}

function tool(...args) {
  const r = spawnSync(DBTOOL, args, { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `dbtool ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits (bounded) for the server's checkpointer to sign size N.
async function waitSigned(srv, n) {
  for (let i = 0; i < 100; i++) {
    const r = await srv.req('GET', '/v1/audit/checkpoint', { token: srv.tokens['audit:read'] });
    if (r.status === 200 && Number(r.text.split('\n')[1]) >= n) return r.text;
    await sleep(100);
  }
  throw new Error(`no checkpoint of size ${n} within 10 s`);
}

function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  if (typeof v === 'number') assert.ok(Number.isInteger(v), 'integers only');
  return JSON.stringify(v);
}

function parseCheckpoint(note) {
  const [origin, size, root] = note.split('\n');
  return { origin, size: Number(size), root };
}

test('audit routes need audit:read', async () => {
  const srv = await startServer();
  for (const p of ['/v1/audit/checkpoint', '/v1/audit/vkey', '/v1/audit/entries',
    '/v1/audit/proof?index=0', '/v1/audit/consistency?old=0']) {
    assert.equal((await srv.req('GET', p)).status, 401, p);
    assert.equal((await srv.req('GET', p, { token: srv.tokens['consent:read'] })).status, 403, p);
    assert.equal((await srv.req('GET', p, { token: srv.tokens.admin })).status, 403, p);
    assert.equal((await srv.req('GET', p, { token: srv.tokens['audit:read'] })).status, 200, p);
  }
  assert.equal((await srv.stop()).code, 0);
});

test('checkpoint, vkey, entries and proofs agree with each other', async () => {
  const srv = await startServer();
  const tok = srv.tokens['audit:read'];
  const note = await waitSigned(srv, START);
  const cp = parseCheckpoint(note);
  assert.equal(cp.size, START);
  assert.match(note, new RegExp(`^[^\\n]+\\n${START}\\n[A-Za-z0-9+/]{43}=\\n\\n\u2014 \\S+ [A-Za-z0-9+/=]+\\n$`));
  const ck = await srv.req('GET', '/v1/audit/checkpoint', { token: tok });
  assert.equal(ck.headers.get('content-type'), 'text/plain; charset=utf-8');
  const vkey = (await srv.req('GET', '/v1/audit/vkey', { token: tok })).text;
  assert.match(vkey, new RegExp(`^${cp.origin.replace(/[/.]/g, '\\$&')}\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]{44}$`));
  assert.equal(cli(['audit', 'vkey', '--data', srv.dir]).stdout.trim(), vkey);

  const ent = await srv.req('GET', `/v1/audit/entries?from=0&to=${BASE}`, { token: tok });
  assert.equal(ent.status, 200);
  assert.equal(ent.headers.get('content-type'), 'application/x-ndjson');
  const lines = ent.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, BASE);
  const entries = lines.map((l) => JSON.parse(Buffer.from(l.entry, 'base64').toString('utf8')));
  assert.deepEqual(entries.map((e) => e.i), [...Array(BASE).keys()]);
  assert.equal(entries[0].type, 'store.initialised');
  assert.equal(entries[1].type, 'token.created');
  assert.equal(entries[1].d.name, 'all');
  const started = await srv.req('GET', `/v1/audit/entries?from=${BASE}&to=${START}`, { token: tok });
  assert.deepEqual(started.text.trim().split('\n')
    .map((l) => JSON.parse(Buffer.from(JSON.parse(l).entry, 'base64')).type),
  Array(PURPOSES).fill('policy.version'));
  for (const l of lines) {
    const raw = Buffer.from(l.entry, 'base64').toString('utf8');
    const e = JSON.parse(raw);
    // Canonical: sorted keys, no whitespace, integers only; no token in it.
    assert.equal(canonical(e), raw);
    for (const t of Object.values(srv.tokens)) assert.ok(!raw.includes(t));
    assert.equal(typeof e.t, 'number');
    assert.ok(Number.isInteger(e.t));
  }
  const from = await srv.req('GET', '/v1/audit/entries?from=3&to=5', { token: tok });
  assert.deepEqual(from.text.trim().split('\n').map((l) => JSON.parse(l).index), [3, 4]);

  const pr = await srv.req('GET', `/v1/audit/proof?index=3&size=${START}`, { token: tok });
  assert.equal(pr.status, 200);
  assert.equal(pr.json.root, cp.root);
  assert.equal(pr.json.leaf_hash, lines[3].leaf_hash);
  assert.equal(pr.json.proof.length, proofLength(3, START));
  const dflt = await srv.req('GET', '/v1/audit/proof?index=3', { token: tok });
  assert.deepEqual(dflt.json, pr.json, 'size defaults to the latest signed size');
  const cliProof = JSON.parse(cli(['audit', 'proof', '--data', srv.dir, '--index', '3', '--size', String(START)]).stdout);
  assert.deepEqual(cliProof, pr.json);

  const cs = await srv.req('GET', `/v1/audit/consistency?old=3&new=${START}`, { token: tok });
  assert.equal(cs.status, 200);
  assert.equal(cs.json.new_root, cp.root);
  assert.ok(cs.json.proof.length > 0);
  assert.deepEqual((await srv.req('GET', `/v1/audit/consistency?old=0&new=${START}`, { token: tok })).json.proof, []);

  // Errors.
  const e422 = await srv.req('GET', `/v1/audit/proof?index=0&size=${START + 1}`, { token: tok });
  assert.equal(e422.status, 422);
  assert.equal(e422.json.error.field, 'size');
  assert.equal((await srv.req('GET', `/v1/audit/consistency?old=1&new=${START + 1}`, { token: tok })).status, 422);
  assert.equal((await srv.req('GET', '/v1/audit/consistency?old=5&new=3', { token: tok })).status, 422);
  assert.equal((await srv.req('GET', `/v1/audit/proof?index=${START}&size=${START}`, { token: tok })).status, 422);
  assert.equal((await srv.req('GET', '/v1/audit/proof', { token: tok })).json.error.code, 'missing_parameter');
  assert.equal((await srv.req('GET', '/v1/audit/proof?index=-1', { token: tok })).json.error.code, 'invalid_parameter');
  assert.equal((await srv.req('GET', '/v1/audit/proof?index=x', { token: tok })).status, 400);
  assert.equal((await srv.req('GET', '/v1/audit/entries?from=0&to=99', { token: tok })).status, 422);
  assert.equal((await srv.req('GET', '/v1/audit/entries?from=5&to=3', { token: tok })).status, 400);
  assert.equal((await srv.req('GET', '/v1/audit/entries?frm=1', { token: tok })).json.error.field, 'frm');
  assert.equal((await srv.stop()).code, 0);
});

test('the server signs a checkpoint for writes made while it runs, and one on shutdown', async () => {
  const srv = await startServer();
  await waitSigned(srv, START);
  cli(['token', 'create', '--data', srv.dir, '--name', 'later', '--scopes', 'admin']);
  const note = await waitSigned(srv, START + 1);
  assert.equal(parseCheckpoint(note).size, START + 1);
  cli(['token', 'revoke', '--data', srv.dir, 'later']);
  assert.equal((await srv.stop()).code, 0);
  const last = cli(['audit', 'verify', '--data', srv.dir]);
  assert.equal(last.code, 0, last.stdout);
  assert.match(last.stdout, new RegExp(`^${START + 2} entries, \\d+ checkpoints$`, 'm'));
  assert.match(last.stdout, /^\d+ passed, 0 failed$/m);
});

test('Go x/mod verifies our checkpoints, cosignatures and proofs over 1,200 entries', async () => {
  const srv = await startServer();
  const tok = srv.tokens['audit:read'];
  const work = tmpdir('consentd-conf-');
  const cpdir = path.join(work, 'checkpoints');
  fs.mkdirSync(cpdir);
  const vkey = (await srv.req('GET', '/v1/audit/vkey', { token: tok })).text;
  fs.writeFileSync(path.join(work, 'vkey'), vkey);
  const wkeyFile = path.join(work, 'witness.key');
  const wstate = path.join(work, 'witness.state');
  const wv = cli(['witness', 'keygen', '--name', 'dpo.example/witness', '--key', wkeyFile]);
  assert.equal(wv.code, 0, wv.stderr);
  assert.equal(fs.statSync(wkeyFile).mode & 0o777, 0o600);
  fs.writeFileSync(path.join(work, 'wvkey'), wv.stdout.trim());

  let witnessed = 0;
  const sizes = [];
  let n = START;
  for (const batch of [1, 299, 300, 600]) {
    tool('append', srv.dir, String(batch));
    n += batch;
    const note = await waitSigned(srv, n);
    const size = parseCheckpoint(note).size;
    const cpFile = path.join(work, `cp-${size}.txt`);
    fs.writeFileSync(cpFile, note);
    const args = ['witness', 'cosign', '--key', wkeyFile, '--state', wstate,
      '--log-vkey', vkey, '--checkpoint', cpFile];
    if (witnessed > 0) {
      const c = await srv.req('GET', `/v1/audit/consistency?old=${witnessed}&new=${size}`, { token: tok });
      fs.writeFileSync(path.join(work, 'cons.json'), c.text);
      args.push('--consistency', path.join(work, 'cons.json'));
    }
    const co = cli(args);
    assert.equal(co.code, 0, co.stderr);
    assert.ok(co.stdout.startsWith(note), 'cosigned note keeps the log signature');
    fs.writeFileSync(path.join(cpdir, `${String(sizes.length).padStart(3, '0')}.txt`), co.stdout);
    witnessed = size;
    sizes.push(size);
  }
  const total = sizes[sizes.length - 1];
  assert.ok(total >= 1000);
  let ndjson = '';
  for (let from = 0; from < total; from += 500) {
    const r = await srv.req('GET', `/v1/audit/entries?from=${from}&to=${Math.min(total, from + 500)}`, { token: tok });
    assert.equal(r.status, 200);
    ndjson += r.text;
  }
  fs.writeFileSync(path.join(work, 'entries.ndjson'), ndjson);
  const inclusion = [];
  for (let i = 0; i < total; i += 7) {
    inclusion.push((await srv.req('GET', `/v1/audit/proof?index=${i}&size=${total}`, { token: tok })).json);
  }
  inclusion.push((await srv.req('GET', `/v1/audit/proof?index=${total - 1}&size=${total}`, { token: tok })).json);
  for (const s of sizes.slice(0, -1)) {
    inclusion.push((await srv.req('GET', `/v1/audit/proof?index=${s - 1}&size=${s}`, { token: tok })).json);
  }
  const consistency = [];
  for (const a of sizes) for (const b of sizes) {
    if (a <= b) consistency.push((await srv.req('GET', `/v1/audit/consistency?old=${a}&new=${b}`, { token: tok })).json);
  }
  fs.writeFileSync(path.join(work, 'proofs.json'), JSON.stringify({ inclusion, consistency }));
  const r = spawnSync(TLOGCHECK, [path.join(work, 'vkey'), path.join(work, 'wvkey'), cpdir,
    path.join(work, 'entries.ndjson'), path.join(work, 'proofs.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^0 failed$|^\d+ passed, 0 failed$/m);
  assert.match(r.stdout, new RegExp(`${sizes.length} checkpoints, ${total} entries`));

  // A corrupted proof is caught by the independent checker too.
  inclusion[5].proof[0] = inclusion[5].proof[1];
  fs.writeFileSync(path.join(work, 'proofs.json'), JSON.stringify({ inclusion, consistency }));
  const bad = spawnSync(TLOGCHECK, [path.join(work, 'vkey'), '-', cpdir,
    path.join(work, 'entries.ndjson'), path.join(work, 'proofs.json')], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /tlog\.CheckRecord/);
  assert.equal((await srv.stop()).code, 0);
});

function fresh(entries = 100) {
  const { dir } = initData();
  tool('append', dir, String(entries));
  assert.equal(cli(['audit', 'checkpoint', '--data', dir]).code, 0);
  return dir;
}

test('audit verify passes on an intact log and ends with "N passed, N failed"', () => {
  const dir = fresh();
  const r = cli(['audit', 'verify', '--data', dir]);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /^101 entries, 2 checkpoints$/m);
  assert.match(r.stdout.trim().split('\n').pop(), /^\d+ passed, 0 failed$/);
  const vkey = cli(['audit', 'vkey', '--data', dir]).stdout.trim();
  assert.equal(cli(['audit', 'verify', '--data', dir, '--vkey', vkey]).code, 0);
  const other = initData();
  const otherKey = cli(['audit', 'vkey', '--data', other.dir]).stdout.trim();
  const wrong = cli(['audit', 'verify', '--data', dir, '--vkey', otherKey]);
  assert.equal(wrong.code, 1, 'checkpoints signed by another key fail');
  assert.match(wrong.stdout, /FAIL checkpoint \d+: signature/);
});

for (const [what, args, msg] of [
  ['one byte of one entry changed', ['flip', '40'], /entry 40 does not match its stored leaf hash/],
  ['one entry deleted', ['delete', '40'], /entry 40 is missing/],
  ['two entries swapped', ['swap', '40', '41'], /the entry stored at 40 does not carry index 40/],
]) {
  test(`audit verify fails and names the first bad index: ${what}`, () => {
    const dir = fresh();
    tool(args[0], dir, ...args.slice(1));
    const r = cli(['audit', 'verify', '--data', dir]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, msg);
    assert.match(r.stdout, /first bad entry: 40$/m);
    assert.match(r.stdout.trim().split('\n').pop(), /^\d+ passed, [1-9]\d* failed$/);
  });
}

test('a truncated log re-signed with the right key fails verify while an earlier checkpoint survives', () => {
  const dir = fresh();
  tool('append', dir, '50');
  assert.equal(cli(['audit', 'checkpoint', '--data', dir]).code, 0);
  tool('rewrite', dir, '60', '120', 'keep-checkpoints');
  const r = cli(['audit', 'verify', '--data', dir]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /FAIL checkpoint (101|151): signed root matches/);
});

test('a rewrite that also deletes the later checkpoints is refused by the witness', () => {
  const dir = fresh();
  const work = tmpdir('consentd-wit-');
  const key = path.join(work, 'w.key');
  const state = path.join(work, 'w.state');
  assert.equal(cli(['witness', 'keygen', '--name', 'dpo/w', '--key', key]).code, 0);
  const vkey = cli(['audit', 'vkey', '--data', dir]).stdout.trim();
  const cp1 = path.join(work, 'cp1');
  fs.writeFileSync(cp1, cli(['audit', 'checkpoint', '--data', dir]).stdout);
  let r = cli(['witness', 'cosign', '--key', key, '--state', state, '--log-vkey', vkey, '--checkpoint', cp1]);
  assert.equal(r.code, 0, r.stderr);
  const witnessedState = fs.readFileSync(state, 'utf8');
  assert.equal(JSON.parse(witnessedState).size, 101);

  // Shorter rewrite: the log on its own still verifies (no old checkpoint is left) …
  tool('rewrite', dir, '60', '20');
  r = cli(['audit', 'verify', '--data', dir]);
  assert.equal(r.code, 0, `a consistent rewrite is invisible to the log alone:\n${r.stdout}`);
  const cp2 = path.join(work, 'cp2');
  fs.writeFileSync(cp2, cli(['audit', 'checkpoint', '--data', dir]).stdout);
  r = cli(['witness', 'cosign', '--key', key, '--state', state, '--log-vkey', vkey, '--checkpoint', cp2]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /smaller than the 101 already cosigned/);

  // … longer rewrite: whatever proof the log offers, it is not consistent.
  tool('rewrite', dir, '60', '100');
  const cp3 = path.join(work, 'cp3');
  fs.writeFileSync(cp3, cli(['audit', 'checkpoint', '--data', dir]).stdout);
  r = cli(['witness', 'cosign', '--key', key, '--state', state, '--log-vkey', vkey, '--checkpoint', cp3]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /consistency proof from size 101 to 160 is required/);
  const proof = cli(['audit', 'consistency', '--data', dir, '--old', '101', '--new', '160']);
  assert.equal(proof.code, 0, proof.stderr);
  fs.writeFileSync(path.join(work, 'c.json'), proof.stdout);
  r = cli(['witness', 'cosign', '--key', key, '--state', state, '--log-vkey', vkey,
    '--checkpoint', cp3, '--consistency', path.join(work, 'c.json')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not consistent .* history was rewritten/);

  // Same size, other root: a fork.
  tool('rewrite', dir, '60', '41');
  const cp4 = path.join(work, 'cp4');
  fs.writeFileSync(cp4, cli(['audit', 'checkpoint', '--data', dir]).stdout);
  r = cli(['witness', 'cosign', '--key', key, '--state', state, '--log-vkey', vkey, '--checkpoint', cp4]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /different root for size 101.*forked/);
  assert.equal(fs.readFileSync(state, 'utf8'), witnessedState, 'a refusal changes no state');

  // A checkpoint not signed by the log key is refused too.
  const forged = fs.readFileSync(cp1, 'utf8').replace(/\n101\n/, '\n102\n');
  fs.writeFileSync(path.join(work, 'forged'), forged);
  r = cli(['witness', 'cosign', '--key', key, '--state', state, '--log-vkey', vkey,
    '--checkpoint', path.join(work, 'forged')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not a checkpoint signed by/);
});

test('serve refuses to start when the stored tree no longer matches the latest checkpoint', () => {
  const dir = fresh();
  tool('rewrite', dir, '50', '10', 'keep-checkpoints');
  const before = snapshot(dir);
  const r = cli(['serve', '--data', dir, '--listen', '127.0.0.1:0', '--policy', POLICY]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /does not match its latest signed checkpoint.*consentd audit verify/s);
  assert.deepEqual(snapshot(dir), before);
});
