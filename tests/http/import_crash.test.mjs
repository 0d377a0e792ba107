// SPDX-License-Identifier: ISC
// An import killed with SIGKILL part-way: every chunk it reported is in
// the store, whole (the chunks are 500 rows: the store holds a multiple of
// 500 people, each with an identifier, an event, a current state and a
// change), the open chunk left nothing, the audit log verifies, and
// running the file again completes it, each row written exactly once.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, PG, POLICY, cli, initData } from './harness.mjs';

// Fewer rows under the sanitizers and on PostgreSQL (slower per row), still
// many chunks.
const SAN = /\/san(-debug)?\//.test(BIN);
const ROWS = PG ? 4000 : SAN ? 8000 : 30000;
const CHUNK = 500;
const DBTOOL = process.env.CONSENTD_DBTOOL;

function sqlCount(dir, table) {
  const r = spawnSyncText(DBTOOL, ['sql', dir, `SELECT count(*) FROM ${table}`]);
  return Number(r.trim());
}

function spawnSyncText(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function importArgs(dir, file) {
  return ['import', '--data', dir, '--policy', POLICY, '--mapping', 'mailchimp', '--batch',
    String(CHUNK), '--batch-ms', '60000', '--progress-interval', '1', file];
}

test('an import killed part-way keeps whole chunks only, and running it again completes it', async (t) => {
  const { base, dir } = initData();
  try {
    const lines = ['Email Address,OPTIN_TIME,CONFIRM_TIME'];
    for (let i = 0; i < ROWS; i++) {
      lines.push(`crash${i}@example.com,2023-0${1 + (i % 9)}-1${i % 10} 10:${String(i % 60).padStart(2, '0')}:00,`);
    }
    const file = path.join(base, 'members.csv');
    fs.writeFileSync(file, `${lines.join('\n')}\n`);

    // Killed at its first progress line: at least one chunk committed.
    const p = spawn(BIN, importArgs(dir, file), { stdio: ['ignore', 'pipe', 'pipe'] });
    let reported = 0;
    let buf = '';
    p.stderr.setEncoding('utf8').on('data', (d) => {
      buf += d;
      for (let nl; (nl = buf.indexOf('\n')) >= 0;) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let o;
        try { o = JSON.parse(line); } catch { continue; }
        if (o.event === 'import_progress' && reported === 0) {
          reported = o.imported;
          p.kill('SIGKILL');
        }
      }
    });
    const [code, signal] = await new Promise((res) => p.on('close', (c, s) => res([c, s])));
    if (signal !== 'SIGKILL') {
      // It finished before its first progress line: nothing to recover.
      assert.equal(code, 0);
      t.diagnostic('the import ended before it could be killed');
    } else {
      assert.ok(reported > 0 && reported % CHUNK === 0, `reported ${reported}`);
      t.diagnostic(`killed after ${reported} rows were reported`);
    }

    // Whole chunks only, each row complete, at least what was reported.
    const people = sqlCount(dir, 'subjects');
    t.diagnostic(`${people} people in the store after the kill`);
    assert.ok(people >= reported, `${people} people, ${reported} reported`);
    assert.equal(people % CHUNK, 0, `${people} people: whole chunks only`);
    for (const table of ['identifiers', 'consent_events', 'consent_current', 'changes'])
      assert.equal(sqlCount(dir, table), people, table);
    let v = cli(['audit', 'verify', '--data', dir]);
    assert.equal(v.code, 0, v.stdout + v.stderr);

    // Again: the rest is written, what was there is replayed.
    const again = spawnSyncText(BIN, importArgs(dir, file)).trim().split('\n').pop();
    const s = JSON.parse(again);
    assert.deepEqual([s.rows, s.imported, s.unchanged, s.rejected], [ROWS, ROWS - people, people, 0]);
    for (const table of ['subjects', 'identifiers', 'consent_events', 'consent_current', 'changes'])
      assert.equal(sqlCount(dir, table), ROWS, table);
    v = cli(['audit', 'verify', '--data', dir]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
