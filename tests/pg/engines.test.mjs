// SPDX-License-Identifier: ISC
// Runs the store's executor and SQL checks (test_store_engines.c) on both
// engines: SQLite on a store the program makes, PostgreSQL on a database
// of a throwaway cluster with migrations-pg/ applied.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { ROOT } from '../http/harness.mjs';
import { startPostgres } from './cluster.mjs';

const PROGRAM = process.env.CONSENTD_ENGINES_TEST ||
  path.join(ROOT, 'build/tests/test_store_engines');
const PG_DIR = path.join(ROOT, 'migrations-pg');

let pg;

before(() => {
  pg = startPostgres();
  pg.psql('postgres', ['-c', 'CREATE DATABASE consentd']);
  for (const name of fs.readdirSync(PG_DIR).filter((n) => n.endsWith('.sql')).sort()) {
    pg.psql('consentd', ['-1', '-f', path.join(PG_DIR, name)]);
  }
});

after(() => {
  if (pg) pg.stop();
});

test('the executor and the store SQL behave alike on SQLite and PostgreSQL', () => {
  const r = spawnSync(PROGRAM, [], {
    encoding: 'utf8',
    env: { ...process.env, CONSENTD_PG: `host=${pg.dir} dbname=consentd user=postgres` },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  // Each check ran on each engine.
  assert.match(out, /\[ {2}PASSED {2}\] 10 test\(s\)\./, out);
});

test('without a database to run on, the program fails rather than passing', () => {
  const env = { ...process.env };
  delete env.CONSENTD_PG;
  const r = spawnSync(PROGRAM, [], { encoding: 'utf8', env });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /CONSENTD_PG is not set/);
});
