// SPDX-License-Identifier: ISC
// Runs the store's executor and SQL checks (test_store_engines.c) on both
// engines: SQLite on a store the program makes, PostgreSQL on a database
// of a throwaway cluster, which the program's migration runner brings to
// migrations-pg/. The statements of the
// store's SQL files (those of src/store/ that are not an engine's) are
// taken from the preprocessor's output, so macros and adjacent literals
// are joined as the compiler joins them, and handed to the program.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ROOT } from '../http/harness.mjs';
import { startPostgres } from './cluster.mjs';

const PROGRAM = process.env.CONSENTD_ENGINES_TEST ||
  path.join(ROOT, 'build/tests/test_store_engines');
const PG_DIR = path.join(ROOT, 'migrations-pg');

let pg;
let work;

// Every `static const char NAME[] = "…" "…";` of the store's SQL files.
function statements() {
  const dir = path.join(ROOT, 'src/store');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.c') && f !== 'exec_pg.c')
    .filter((f) => !fs.readFileSync(path.join(dir, f), 'utf8').includes('"store_sqlite.h"'));
  assert.ok(files.length >= 15, `the store's SQL files: ${files}`);
  const pc = spawnSync('pkg-config', ['--cflags', 'libsodium', 'sqlcipher', 'jansson', 'libpq'],
    { encoding: 'utf8' });
  assert.equal(pc.status, 0, pc.stderr);
  const out = [];
  for (const f of files) {
    const r = spawnSync('cc', ['-E', '-P', '-I', path.join(ROOT, 'include'),
      ...pc.stdout.trim().split(/\s+/).filter(Boolean), path.join(dir, f)],
    { encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr);
    const re = /static const char (\w+)\[\] =\s*((?:"(?:[^"\\]|\\.)*"\s*)+);/g;
    for (const m of r.stdout.matchAll(re)) {
      const sql = [...m[2].matchAll(/"((?:[^"\\]|\\.)*)"/g)]
        .map((p) => JSON.parse(`"${p[1].replace(/\\'/g, "'")}"`)).join('');
      if (/^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b/.test(sql)) out.push({ file: f, name: m[1], sql });
    }
  }
  return out;
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'consentd-engines-'));
  fs.writeFileSync(path.join(work, 'statements.json'), JSON.stringify(statements()));
  pg = startPostgres();
  pg.psql('postgres', ['-c', 'CREATE DATABASE consentd']);
  pg.psql('postgres', ['-c', 'CREATE DATABASE empty']);
});

after(() => {
  if (pg) pg.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the executor and the store SQL behave alike on SQLite and PostgreSQL', (t) => {
  const r = spawnSync(PROGRAM, [], {
    encoding: 'utf8',
    env: { ...process.env, CONSENTD_PG: `host=${pg.dir} dbname=consentd user=postgres`,
      CONSENTD_PG_STATEMENTS: path.join(work, 'statements.json'),
      CONSENTD_PG_EMPTY: `host=${pg.dir} dbname=empty user=postgres`,
      CONSENTD_PG_MIGRATIONS: PG_DIR },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  // Each check ran on each engine, and the statements were prepared.
  assert.match(out, /\[ {2}PASSED {2}\] 18 test\(s\)\./, out);
  const prepared = /\d{3} statements prepared on PostgreSQL, 5 SQLite's own/.exec(out);
  assert.ok(prepared, out);
  t.diagnostic(prepared[0]);
});

test('without a database to run on, the program fails rather than passing', () => {
  const env = { ...process.env };
  delete env.CONSENTD_PG;
  const r = spawnSync(PROGRAM, [], { encoding: 'utf8', env });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /CONSENTD_PG and CONSENTD_PG_MIGRATIONS are not set/);
});
