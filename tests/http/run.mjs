// SPDX-License-Identifier: ISC
// Runs the HTTP suite: tests/http/*.test.mjs (or the files named on the
// command line), each in its own `node --test` process, JOBS at a time
// (CONSENTD_TEST_JOBS, default 2: the files wait on servers and child
// processes more than they compute), each file's output printed whole when
// it ends. With --pg, every store is on PostgreSQL: one throwaway cluster
// for the run (tests/pg/cluster.mjs), a database for each data directory
// (harness.mjs), the cluster stopped at the end whatever happened. A file
// is stopped after 10 minutes. Exits non-zero when a file fails.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from '../pg/cluster.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const pgRun = args[0] === '--pg';
const named = pgRun ? args.slice(1) : args;
const files = named.length > 0 ? named
  : fs.readdirSync(path.join(root, 'tests/http')).filter((f) => f.endsWith('.test.mjs'))
    .sort().map((f) => path.join('tests/http', f));
const jobs = Math.max(1, Number(process.env.CONSENTD_TEST_JOBS) || 2);
const backend = pgRun ? 'PostgreSQL' : 'SQLCipher';

function runFile(f, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', f], { cwd: root, env });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { out += `\n${f}: stopped after 10 minutes\n`; child.kill('SIGKILL'); },
      10 * 60 * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.stdout.write(`# ${backend}: ${f}\n${out}`);
      resolve(code === 0 && signal === null);
    });
  });
}

const pg = pgRun ? startPostgres() : null;
const env = pg ? { ...process.env, CONSENTD_TEST_PG: pg.dir } : process.env;
const failed = [];
try {
  const queue = [...files];
  await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      if (!(await runFile(f, env))) failed.push(f);
    }
  }));
} finally {
  if (pg) pg.stop();
}
if (failed.length > 0) {
  console.error(`on ${backend}, failed: ${failed.sort().join(' ')}`);
  process.exit(1);
}
console.log(`# ${backend}: ${files.length} files passed`);
