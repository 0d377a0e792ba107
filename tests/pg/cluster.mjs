// SPDX-License-Identifier: ISC
// A throwaway PostgreSQL 15 cluster for tests: initdb and pg_ctl run as the
// postgres user (as root; as the user running the tests otherwise) in a
// temporary directory, the server listens on a unix
// socket in that directory only (no TCP), and stop() ends it by the PID in
// its postmaster.pid and removes the directory.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PGBIN = process.env.CONSENTD_PGBIN || '/usr/lib/postgresql/15/bin';

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  }
  return r.stdout;
}

const root = process.getuid() === 0;

// The server refuses to run as root.
function asPostgres(cmd, args) {
  if (!root) return run(path.join(PGBIN, cmd), args);
  return run('runuser', ['-u', 'postgres', '--', path.join(PGBIN, cmd), ...args]);
}

// Starts a cluster and returns { dir, pid, psql(database, args, input), stop() }.
// It allows prepared transactions (a master-key rotation's).
// Tests run it with fsync off; { durable: true } keeps PostgreSQL's default
// (the benchmark's durable writes).
export function startPostgres({ durable = false } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'consentd-pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  if (root) {
    fs.chownSync(dir, Number(run('id', ['-u', 'postgres']).trim()),
      Number(run('id', ['-g', 'postgres']).trim()));
  }
  let pid;
  try {
    asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8',
      '--locale=C', '--no-sync', '--no-instructions']);
    asPostgres('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o',
      `-c listen_addresses='' -c unix_socket_directories='${dir}' -c max_prepared_transactions=8${durable ? '' : ' -c fsync=off'}`, 'start']);
    pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!(pid > 1)) throw new Error('no postmaster PID');
  } catch (e) {
    // Whatever started goes, and so does the directory.
    try {
      asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    } catch {
      // it never started
    }
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const pg = {
    dir,
    pid,
    // Runs psql on DATABASE with ARGS; a failing statement fails the call.
    psql(database, args, input) {
      return run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-U', 'postgres',
        '-d', database, ...args], input === undefined ? {} : { input });
    },
    // Stops the server (fast: sessions are ended) and starts it again, as
    // a restart or a failover does to its clients' sessions.
    restart() {
      asPostgres('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-m', 'fast',
        'restart']);
      pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      pg.pid = pid;
    },
    stop() {
      try {
        process.kill(pid, 'SIGINT'); // fast shutdown
      } catch (e) {
        if (e.code !== 'ESRCH') throw e;
      }
      const until = Date.now() + 30000;
      for (;;) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        if (Date.now() > until) {
          process.kill(pid, 'SIGKILL');
          break;
        }
        spawnSync('sleep', ['0.05']);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return pg;
}

// A cluster of its own with one consentd on it: the HTTP suite's harness
// (tests/http/harness.mjs) is loaded with the cluster as its PostgreSQL,
// and its server started with SERVEROPTS. { pg, h (the harness), srv }.
// Loads the harness: call it once per process, before anything else does.
export async function startWithServer(serverOpts = {}) {
  const pg = startPostgres();
  try {
    process.env.CONSENTD_TEST_PG = pg.dir;
    const h = await import('../http/harness.mjs');
    const srv = await h.startServer(serverOpts);
    return { pg, h, srv };
  } catch (e) {
    pg.stop();
    throw e;
  }
}
