// SPDX-License-Identifier: ISC
// The two engines' migrations share numbers and leave one logical schema:
// migrations/NNNN_name.sql (SQLite, applied by `consentd init`) and
// migrations-pg/NNNN_name.sql (PostgreSQL, applied here to a throwaway
// cluster) give the same tables with the same columns in the same order
// (types, NOT NULL), the same primary keys, unique constraints and
// indexes, and triggers on the same tables, times and events. Then the
// PostgreSQL triggers are made to do what SQLite's do.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { ROOT, cli, tmpdir } from '../http/harness.mjs';
import { startPostgres } from './cluster.mjs';

const DBTOOL = process.env.CONSENTD_DBTOOL || path.join(ROOT, 'build/tests/dbtool');
const SQLITE_DIR = path.join(ROOT, 'migrations');
const PG_DIR = path.join(ROOT, 'migrations-pg');
// Tables the engine itself keeps, not the migrations.
const ENGINE_TABLES = new Set(['sqlite_sequence', 'schema_migrations']);

let pg;
let store;

before(() => {
  pg = startPostgres();
  pg.psql('postgres', ['-c', 'CREATE DATABASE consentd']);
  store = tmpdir();
  cli(['init', '--data', store]);
});

after(() => {
  if (pg) pg.stop();
  if (store) fs.rmSync(store, { recursive: true, force: true });
});

function sql(statement) {
  const r = spawnSync(DBTOOL, ['sql', store, statement], { encoding: 'utf8' });
  assert.equal(r.status, 0, `dbtool sql ${statement}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

function pgRows(statement) {
  return pg.psql('consentd', ['-tA', '-F', '\t', '-c', statement])
    .split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

const TYPES = { INTEGER: 'integer', TEXT: 'text', BLOB: 'bytes', bigint: 'integer',
  text: 'text', bytea: 'bytes' };

function migrationNames(dir) {
  return fs.readdirSync(dir).filter((n) => /^\d{4}_[a-z0-9_]+\.sql$/.test(n)).sort();
}

function sqliteSchema() {
  const tables = {};
  const names = sql("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .map(([n]) => n).filter((n) => !ENGINE_TABLES.has(n));
  for (const t of names) {
    const cols = sql(`PRAGMA table_info(${t})`);
    const pk = cols.filter((c) => c[5] !== '0').sort((a, b) => a[5] - b[5]).map((c) => c[1]);
    const indexes = {};
    const uniques = [];
    for (const [, name, unique, origin, partial] of sql(`PRAGMA index_list(${t})`)) {
      if (origin === 'pk') continue;
      const on = sql(`PRAGMA index_info(${name})`).map((r) => r[2]).join(', ');
      if (origin === 'u') uniques.push(on);
      else indexes[name] = `${unique === '1' ? 'unique ' : ''}(${on})${partial === '1' ? ' partial' : ''}`;
    }
    tables[t] = {
      // A primary key's columns are NOT NULL in PostgreSQL whatever they say.
      columns: cols.map((c) => `${c[1]} ${TYPES[c[2]] || c[2]}` +
        `${c[3] === '1' || c[5] !== '0' ? ' not null' : ''}`),
      pk: pk.join(', '),
      uniques: uniques.sort(),
      indexes,
    };
  }
  const triggers = [];
  for (const [name, table, text] of sql("SELECT name, tbl_name, " +
      "replace(replace(sql, char(10), ' '), char(9), ' ') FROM sqlite_master WHERE type = 'trigger'")) {
    const m = /CREATE TRIGGER\s+\w+\s+(BEFORE|AFTER)\s+(INSERT|UPDATE|DELETE)(?:\s+OF\s+(\w+))?\s+ON\s+(\w+)/i
      .exec(text);
    assert.ok(m, `trigger ${name} not understood`);
    assert.equal(m[4], table);
    triggers.push(`${table}.${name} ${m[1].toLowerCase()} ${m[2].toLowerCase()}` +
      `${m[3] ? ` of ${m[3]}` : ''}`);
  }
  return { tables, triggers: triggers.sort() };
}

function pgSchema() {
  const tables = {};
  for (const [t, c, type, nullable] of pgRows("SELECT table_name, column_name, data_type, " +
      "is_nullable FROM information_schema.columns WHERE table_schema = 'public' " +
      'ORDER BY table_name, ordinal_position')) {
    tables[t] ||= { columns: [], pk: '', uniques: [], indexes: {} };
    tables[t].columns.push(`${c} ${TYPES[type] || type}${nullable === 'NO' ? ' not null' : ''}`);
  }
  for (const [t, name, primary, unique, constraint, partial, on] of pgRows(
    'SELECT c.relname, i.relname, x.indisprimary, x.indisunique, ' +
    "EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.contype = 'u'), " +
    'x.indpred IS NOT NULL, ' +
    "array_to_string(ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(n, o) " +
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n ORDER BY k.o), ', ') " +
    'FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid ' +
    'JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace s ON s.oid = c.relnamespace ' +
    "WHERE s.nspname = 'public'")) {
    if (primary === 't') tables[t].pk = on;
    else if (constraint === 't') tables[t].uniques.push(on);
    else tables[t].indexes[name] = `${unique === 't' ? 'unique ' : ''}(${on})${partial === 't' ? ' partial' : ''}`;
  }
  for (const t of Object.values(tables)) t.uniques.sort();
  const columnsOf = {};
  for (const [name, column] of pgRows('SELECT trigger_name, event_object_column ' +
      "FROM information_schema.triggered_update_columns WHERE trigger_schema = 'public'")) {
    columnsOf[name] = column;
  }
  const triggers = pgRows('SELECT event_object_table, trigger_name, action_timing, ' +
    "event_manipulation FROM information_schema.triggers WHERE trigger_schema = 'public'")
    .map(([t, name, timing, event]) => `${t}.${name} ${timing.toLowerCase()} ` +
      `${event.toLowerCase()}${columnsOf[name] ? ` of ${columnsOf[name]}` : ''}`);
  return { tables, triggers: triggers.sort() };
}

test('the two engines have the same migrations, by number and name', () => {
  const sqlite = migrationNames(SQLITE_DIR);
  assert.ok(sqlite.length >= 16);
  assert.deepEqual(migrationNames(PG_DIR), sqlite);
  assert.deepEqual(fs.readdirSync(PG_DIR).filter((n) => !n.endsWith('.sql')), []);
});

test('PostgreSQL takes every migration, each in one transaction', () => {
  for (const name of migrationNames(PG_DIR)) {
    pg.psql('consentd', ['-1', '-f', path.join(PG_DIR, name)]);
  }
});

test('both engines expose the same logical schema', () => {
  const a = sqliteSchema();
  const b = pgSchema();
  assert.deepEqual(Object.keys(b.tables).sort(), Object.keys(a.tables).sort());
  for (const t of Object.keys(a.tables)) {
    assert.deepEqual(b.tables[t], a.tables[t], `table ${t}`);
  }
  assert.deepEqual(b.triggers, a.triggers);
  assert.ok(a.triggers.length >= 21, 'the triggers were read');
});

test("PostgreSQL's triggers keep decision rows, token generations and notices as SQLite's do", () => {
  const blind = (n) => `'\\x${n.repeat(64)}'::bytea`;
  const q = (s) => pgRows(s).map((r) => r.join('|'));
  pg.psql('consentd', ['-c', `
    INSERT INTO subjects (id, state, created_at, updated_at) VALUES
      ('sub_aaaaaaaaaaaaaaaaaaaaaaaaaa', 'active', 1, 1),
      ('sub_bbbbbbbbbbbbbbbbbbbbbbbbbb', 'active', 1, 1);
    INSERT INTO identifiers (type, blind, subject_id, sealed, source, verified, created_at) VALUES
      ('email', ${blind('a')}, 'sub_aaaaaaaaaaaaaaaaaaaaaaaaaa', '\\x00', 'api', 0, 1),
      ('phone', ${blind('b')}, 'sub_aaaaaaaaaaaaaaaaaaaaaaaaaa', '\\x00', 'api', 0, 1),
      ('email', ${blind('c')}, 'sub_bbbbbbbbbbbbbbbbbbbbbbbbbb', '\\x00', 'api', 0, 1);
    INSERT INTO decisions (type, blind, subject_id, body)
      SELECT type, blind, subject_id, '\\x01' FROM identifiers;`]);
  // A preference saved for A drops both of A's rows, not B's, and notes A.
  pg.psql('consentd', ['-c', "INSERT INTO preferences (subject_id, updated_at) VALUES " +
    "('sub_aaaaaaaaaaaaaaaaaaaaaaaaaa', 2)"]);
  assert.deepEqual(q('SELECT subject_id FROM decisions ORDER BY blind'),
    ['sub_bbbbbbbbbbbbbbbbbbbbbbbbbb']);
  assert.deepEqual(q('SELECT subject_id FROM decisions_stale ORDER BY seq'),
    ['sub_aaaaaaaaaaaaaaaaaaaaaaaaaa']);
  // A suppression of B's identifier drops B's row; a binding moved to A notes both.
  pg.psql('consentd', ['-c', `DELETE FROM decisions_stale;
    INSERT INTO suppressions (type, blind, reason, since) VALUES ('email', ${blind('c')}, 'manual', 3);`]);
  assert.deepEqual(q('SELECT count(*) FROM decisions'), ['0']);
  assert.deepEqual(q('SELECT subject_id FROM decisions_stale ORDER BY seq'),
    ['sub_bbbbbbbbbbbbbbbbbbbbbbbbbb']);
  // Its change and its deletion note the same subject; another entry nobody.
  pg.psql('consentd', ['-c', `DELETE FROM decisions_stale;
    UPDATE suppressions SET reason = 'bounced';
    DELETE FROM suppressions;
    INSERT INTO suppressions (type, blind, reason, since) VALUES ('email', ${blind('f')}, 'manual', 4);`]);
  assert.deepEqual(q('SELECT subject_id FROM decisions_stale ORDER BY seq'),
    ['sub_bbbbbbbbbbbbbbbbbbbbbbbbbb', 'sub_bbbbbbbbbbbbbbbbbbbbbbbbbb']);
  pg.psql('consentd', ['-c', `DELETE FROM decisions_stale;
    INSERT INTO suppression_subjects (subject_id, type, blind)
      VALUES ('sub_bbbbbbbbbbbbbbbbbbbbbbbbbb', 'email', ${blind('c')});
    DELETE FROM decisions_stale;
    UPDATE suppression_subjects SET subject_id = 'sub_aaaaaaaaaaaaaaaaaaaaaaaaaa';`]);
  assert.deepEqual(q('SELECT subject_id FROM decisions_stale ORDER BY seq'),
    ['sub_bbbbbbbbbbbbbbbbbbbbbbbbbb', 'sub_aaaaaaaaaaaaaaaaaaaaaaaaaa']);
  // A subject's state: only when the state column is written.
  pg.psql('consentd', ['-c', `DELETE FROM decisions_stale;
    UPDATE subjects SET updated_at = 5 WHERE id = 'sub_bbbbbbbbbbbbbbbbbbbbbbbbbb';`]);
  assert.deepEqual(q('SELECT count(*) FROM decisions_stale'), ['0']);
  pg.psql('consentd', ['-c', "UPDATE subjects SET state = 'restricted' " +
    "WHERE id = 'sub_bbbbbbbbbbbbbbbbbbbbbbbbbb'"]);
  assert.deepEqual(q('SELECT subject_id FROM decisions_stale ORDER BY seq'),
    ['sub_bbbbbbbbbbbbbbbbbbbbbbbbbb']);

  // Any change to tokens moves the generation.
  pg.psql('consentd', ['-c', "INSERT INTO tokens (name, selector, hash, scopes, created_at) " +
    `VALUES ('t', 'abcdefghijklmnop', ${blind('d')}, 1, 1); UPDATE tokens SET revoked_at = 2;`]);
  assert.deepEqual(q('SELECT gen FROM token_generation'), ['2']);

  // A served notice is never changed nor deleted: an integrity error.
  pg.psql('consentd', ['-c', "INSERT INTO policy_notices VALUES ('news', 1, " +
    `${blind('e')}, 'consent', 'text', 1, 1)`]);
  for (const stmt of ["UPDATE policy_notices SET notice = 'other'", 'DELETE FROM policy_notices']) {
    assert.throws(() => pg.psql('consentd', ['-c', stmt]), /served notice is never .*\n?/);
    assert.throws(() => pg.psql('consentd', ['-v', 'VERBOSITY=verbose', '-c', stmt]), /23000/);
  }
  assert.deepEqual(q('SELECT notice FROM policy_notices'), ['text']);
});
