// SPDX-License-Identifier: ISC
// A master-key rotation killed with SIGKILL at random points (10 trials
// on a store of thousands of subjects): each time the data directory
// opens, with the old key or the new one, and has lost nothing (subjects,
// consent events, current state; the audit log has the rotation's one
// entry or not); running the command again finishes the rotation; at the
// end the whole log and the state against it verify.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, PG, POLICY, cli, initData } from './harness.mjs';

const FAULTS = process.env.CONSENTD_FAULTS_BIN;

const DBTOOL = process.env.CONSENTD_DBTOOL;
const GEN = process.env.CONSENTD_GEN || path.join(path.dirname(BIN), 'bench/gen');
// Fewer on PostgreSQL, where each statement is a round trip.
const SUBJECTS = PG ? 300 : 2000;
const TRIALS = 10;

function tool(...args) {
  const r = spawnSync(DBTOOL, args, { encoding: 'utf8', timeout: 120000, maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `dbtool ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// Opening the store with a consentd command (its key loading finishes or
// undoes an interrupted rotation's key files; on PostgreSQL its store
// opening then settles a prepared transaction the same way), then counting
// what must survive.
function counts(dir) {
  const open = cli(['token', 'list', '--data', dir]);
  assert.equal(open.code, 0, open.stderr);
  const [subjects, wrapped, events, current, audit] = tool('sql', dir, 'SELECT ' +
    '(SELECT count(*) FROM subjects), (SELECT count(*) FROM subjects WHERE wrapped_key IS NOT NULL), ' +
    '(SELECT count(*) FROM consent_events), (SELECT count(*) FROM consent_current), ' +
    '(SELECT count(*) FROM audit_entries)').trim().split('\t').map(Number);
  return { subjects, wrapped, events, current, audit };
}

function lastEntry(dir, n) {
  return JSON.parse(tool('sql', dir, `SELECT entry FROM audit_entries WHERE idx = ${n - 1}`));
}

const leftovers = (dir) => fs.readdirSync(dir).filter((f) => /rotat|\.new|\.tmp/.test(f));

function rotate(dir) {
  const t0 = process.hrtime.bigint();
  const r = cli(['keys', 'rotate-master', '--data', dir]);
  assert.equal(r.code, 0, r.stderr);
  return { out: r.stdout, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

test(`rotate-master killed at random points (${TRIALS} trials) always leaves a store that opens with the old or the new key and loses nothing`, async (t) => {
  const { dir } = initData();
  const g = spawnSync(GEN, ['subjects', dir, String(SUBJECTS), '7', POLICY], { encoding: 'utf8' });
  assert.equal(g.status, 0, g.stderr);
  const full = rotate(dir);
  assert.match(full.out, /master key rotated/);
  let killed = 0;
  let forward = 0;

  for (let i = 0; i < TRIALS; i++) {
    const before = counts(dir);
    const oldKey = fs.readFileSync(path.join(dir, 'master.key'));
    const delay = Math.random() * full.ms * 1.1;
    const p = spawn(BIN, ['keys', 'rotate-master', '--data', dir], { stdio: 'ignore' });
    const exited = new Promise((res) => p.on('exit', (code, signal) => res({ code, signal })));
    await new Promise((res) => setTimeout(res, delay));
    p.kill('SIGKILL');
    const ex = await exited;
    if (ex.signal === 'SIGKILL') killed++;
    else assert.equal(ex.code, 0);

    // Even trials: the next start (any command) recovers. Odd trials:
    // running the command again does, and then rotates if it had undone.
    let rerun = null;
    if (i % 2 === 1) rerun = rotate(dir).out;
    const after = counts(dir);
    assert.deepEqual(leftovers(dir), [], `trial ${i}: nothing of the rotation left behind`);
    const key = fs.readFileSync(path.join(dir, 'master.key'));
    assert.equal(key.length, 32);
    const { audit: a0, ...kept0 } = before;
    const { audit: a1, ...kept1 } = after;
    assert.deepEqual(kept1, kept0, `trial ${i} (killed after ${delay.toFixed(0)} ms): nothing lost`);
    if (rerun === null) {
      if (key.equals(oldKey)) {
        // Undone: the old key opens the store as it was.
        assert.equal(a1, a0, `trial ${i}: rolled back, the log unchanged`);
      } else {
        // Committed: the new key opens it, with the rotation's entry.
        assert.equal(a1, a0 + 1, `trial ${i}: rolled forward`);
        assert.equal(lastEntry(dir, a1).type, 'keys.master_rotated');
        forward++;
      }
    } else {
      assert.notDeepEqual(key, oldKey, `trial ${i}: the command ran again and finished`);
      assert.equal(lastEntry(dir, a1).type, 'keys.master_rotated');
      if (/finished the interrupted|undid an interrupted/.test(rerun)) {
        // Rolled forward, or undone and done again: one rotation in all.
        assert.equal(a1, a0 + 1, `trial ${i}: exactly one rotation entry`);
      } else {
        // Killed before it began, or after it had ended: the rerun is a
        // rotation of its own.
        assert.match(rerun, /master key rotated/);
        assert.ok(a1 === a0 + 1 || a1 === a0 + 2, `trial ${i}: one entry per rotation`);
      }
    }
  }
  t.diagnostic(`full rotation of ${SUBJECTS} subjects: ${full.ms.toFixed(0)} ms; ${killed} of ${TRIALS} runs killed mid-way, ${forward} recovered forward on open`);

  // Every subject key still unwraps and opens its commitments: the state
  // against the log.
  const v = cli(['audit', 'verify', '--data', dir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /^\d+ passed, 0 failed$/m);
});

// PostgreSQL's rotation prepares its transaction, commits the key files,
// then the transaction. Killed at each of the two points between, the next
// command that opens the store settles it as the key files went: undone
// with the old key, committed with the new one.
test('on PostgreSQL, a rotation killed with its transaction prepared is undone or committed by the next open, as its key files went', { skip: !PG && 'a PostgreSQL store\'s prepared rotation' }, () => {
  const { dir } = initData();
  const g = spawnSync(GEN, ['subjects', dir, '100', '3', POLICY], { encoding: 'utf8' });
  assert.equal(g.status, 0, g.stderr);
  const name = new URL(fs.readFileSync(path.join(dir, 'store'), 'utf8').trim()).pathname.slice(1);
  const prepared = () => spawnSync('psql', ['-X', '-A', '-t', '-h', PG, '-U', 'postgres', '-d', name, '-c',
    "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'consentd-rekey-%'"], { encoding: 'utf8' }).stdout.trim();
  for (const [fault, forward] of [['rekeyprepared_exit', false], ['rekeycommit_exit', true]]) {
    const before = counts(dir);
    const oldKey = fs.readFileSync(path.join(dir, 'master.key'));
    fs.writeFileSync(path.join(dir, 'FAULT'), fault);
    const r = spawnSync(FAULTS, ['keys', 'rotate-master', '--data', dir], { encoding: 'utf8' });
    fs.rmSync(path.join(dir, 'FAULT'));
    assert.equal(r.status, 70, `${fault}: ${r.stdout}${r.stderr}`);
    assert.equal(prepared(), '1', `${fault}: the transaction is left prepared`);
    // dbtool reads the database as it stands: the prepared transaction's
    // writes are not in it, whichever way the key files went.
    assert.equal(tool('sql', dir, 'SELECT count(*) FROM audit_entries').trim(), String(before.audit));

    const after = counts(dir);
    assert.equal(prepared(), '0', `${fault}: settled by the next open`);
    assert.deepEqual(leftovers(dir), []);
    const key = fs.readFileSync(path.join(dir, 'master.key'));
    const { audit: a0, ...kept0 } = before;
    const { audit: a1, ...kept1 } = after;
    assert.deepEqual(kept1, kept0, `${fault}: nothing lost`);
    if (forward) {
      assert.ok(!key.equals(oldKey), `${fault}: the key files were committed`);
      assert.equal(a1, a0 + 1);
      assert.equal(lastEntry(dir, a1).type, 'keys.master_rotated');
    } else {
      assert.ok(key.equals(oldKey), `${fault}: the key files were rolled back`);
      assert.equal(a1, a0, `${fault}: the log unchanged`);
    }
  }
  const v = cli(['audit', 'verify', '--data', dir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /^\d+ passed, 0 failed$/m);
});
