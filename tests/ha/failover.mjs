// SPDX-License-Identifier: ISC
// make test-ha: failover with nothing lost. On loopback, as the postgres
// user: one etcd, three PostgreSQL 15 nodes under Patroni (synchronous
// mode strict, maximum_lag_on_failover 0), and two consentd nodes whose
// store URI lists all three with target_session_attrs=read-write. A load
// of consent grants and withdrawals, each with a request id, runs through
// both nodes while checks ask after the identifiers whose last
// acknowledged write was a withdrawal; part-way, the primary's Postgres
// and Patroni are killed with SIGKILL. A write that fails (503, or no
// answer) is sent again with the same request id until it is answered,
// so a commit whose outcome was unknown is written once. Afterwards:
// every acknowledged write is in the store (lost: 0), no withdrawal is
// answered allow (during the outage checks answer 503 or deny, never
// allow), the log verifies, and the figures are printed as JSON.
// Everything it starts it stops by PID, within its time bound.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.CONSENTD_BIN || path.join(ROOT, 'build/consentd');
const PGBIN = '/usr/lib/postgresql/15/bin';
const LOAD_SECONDS = Number(process.env.HA_LOAD_SECONDS || 40);
const KILL_AT = Number(process.env.HA_KILL_AT || 10);
const WRITERS = 8;
const DEADLINE = Date.now() + 8 * 60 * 1000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error('[ha]', ...a);
const procs = [];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.error) throw r.error;
  return r;
}

// A free loopback port (the kernel's choice, released for the child).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Starts CMD as the postgres user (as root) in its own session, its output to LOGFILE.
function startAs(cmd, args, logfile) {
  const out = fs.openSync(logfile, 'a');
  const root = process.getuid() === 0;
  const p = spawn(root ? 'runuser' : cmd, root ? ['-u', 'postgres', '--', cmd, ...args] : args,
    { stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  procs.push(p);
  return p;
}

function killTree(p, sig = 'SIGKILL') {
  try { process.kill(-p.pid, sig); } catch { /* gone */ }
}

async function waitFor(what, fn, ms) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch { /* not yet */ }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'consentd-ha-'));
fs.chmodSync(work, 0o755);
if (process.getuid() === 0) {
  const uid = Number(run('id', ['-u', 'postgres']).stdout.trim());
  const gid = Number(run('id', ['-g', 'postgres']).stdout.trim());
  fs.chownSync(work, uid, gid);
}

const nodes = [];
const servers = [];
let etcd;

function patroniConfig(i, etcdPort, pgPort, apiPort) {
  const dir = path.join(work, `pg${i}`);
  return `scope: consentd-ha
namespace: /consentd/
name: pg${i}
restapi:
  listen: 127.0.0.1:${apiPort}
  connect_address: 127.0.0.1:${apiPort}
etcd3:
  hosts: 127.0.0.1:${etcdPort}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 0
    synchronous_mode: true
    synchronous_mode_strict: true
    postgresql:
      use_pg_rewind: false
      parameters:
        synchronous_commit: "on"
        max_connections: 100
  initdb:
    - encoding: UTF8
    - locale: C
    - auth: trust
postgresql:
  listen: 127.0.0.1:${pgPort}
  connect_address: 127.0.0.1:${pgPort}
  data_dir: ${dir}
  bin_dir: ${PGBIN}
  pgpass: ${path.join(work, `pgpass${i}`)}
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
  parameters:
    unix_socket_directories: '${work}'
`;
}

async function cluster(apiPort) {
  const r = await fetch(`http://127.0.0.1:${apiPort}/cluster`, { signal: AbortSignal.timeout(2000) });
  return r.json();
}

// The members by role, asked of any node that answers.
async function roles() {
  for (const n of nodes) {
    try {
      const c = await cluster(n.api);
      const leader = c.members.find((m) => m.role === 'leader' && m.state === 'running');
      const sync = c.members.filter((m) => m.role === 'sync_standby' && ['streaming', 'running'].includes(m.state));
      return { leader: leader && leader.name, sync: sync.map((m) => m.name) };
    } catch { /* that node is down */ }
  }
  return { leader: undefined, sync: [] };
}

function psql(port, db, sql) {
  const r = run('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port),
    '-U', 'postgres', '-d', db, '-c', sql]);
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout;
}

function cli(args) {
  const r = run(BIN, args, { timeout: 120000 });
  if (r.status !== 0) throw new Error(`consentd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function serve(dir) {
  const p = spawn(BIN, ['serve', '--data', dir, '--listen', '127.0.0.1:0', '--policy',
    path.join(ROOT, 'policy'), '--access-log', 'off'], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(p);
  let err = '';
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`consentd did not start: ${err}`)), 30000);
    p.stderr.on('data', (d) => {
      err += d;
      const m = /"event":"listening"[^\n]*"port":(\d+)/.exec(err);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    p.on('exit', (c) => reject(new Error(`consentd exited ${c}: ${err}`)));
  });
  p.stderr.removeAllListeners('data');
  p.stderr.resume();
  return { p, port, url: `http://127.0.0.1:${port}` };
}

async function main() {
  const etcdPort = await freePort();
  const etcdPeer = await freePort();
  etcd = startAs('etcd', ['--name', 'e1', '--data-dir', path.join(work, 'etcd'),
    '--listen-client-urls', `http://127.0.0.1:${etcdPort}`, '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
    '--initial-cluster', `e1=http://127.0.0.1:${etcdPeer}`], path.join(work, 'etcd.log'));
  await waitFor('etcd', async () => (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok, 30000);
  for (let i = 1; i <= 3; i++) {
    const n = { name: `pg${i}`, pg: await freePort(), api: await freePort() };
    n.yml = path.join(work, `pg${i}.yml`);
    fs.writeFileSync(n.yml, patroniConfig(i, etcdPort, n.pg, n.api));
    n.proc = startAs('patroni', [n.yml], path.join(work, `patroni${i}.log`));
    nodes.push(n);
    if (i === 1) await waitFor('the first leader', async () => (await roles()).leader === 'pg1', 90000);
  }
  await waitFor('a leader and a synchronous standby', async () => {
    const r = await roles();
    return r.leader && r.sync.length >= 1;
  }, 120000);
  const before = await roles();
  log('cluster up:', JSON.stringify(before));
  const leader = nodes.find((n) => n.name === before.leader);
  psql(leader.pg, 'postgres', 'CREATE DATABASE consentd');

  // Two consentd nodes: the same keys, the same store URI.
  const hosts = nodes.map((n) => `127.0.0.1:${n.pg}`).join(',');
  const uri = `postgresql://postgres@${hosts}/consentd?target_session_attrs=read-write&connect_timeout=2`;
  const dirA = path.join(work, 'nodeA');
  cli(['init', '--data', dirA, '--store', uri]);
  const token = cli(['token', 'create', '--data', dirA, '--name', 'load', '--scopes',
    'consent:write,consent:check,audit:read']).trim();
  const dirB = path.join(work, 'nodeB');
  fs.mkdirSync(dirB, { mode: 0o700 });
  for (const f of ['master.key', 'audit.key', 'store']) fs.copyFileSync(path.join(dirA, f), path.join(dirB, f));
  servers.push(await serve(dirA), await serve(dirB));
  log('consentd nodes on ports', servers.map((s) => s.port).join(', '));

  const auth = { authorization: `Bearer ${token}` };
  const figures = {
    attempted: 0, acknowledged: 0, retried: 0, lost: 0, written_twice: 0,
    write_503: { unavailable: 0, outcome_unknown: 0, other: 0 }, server_replays: 0,
    withdrawals_allowed_after: 0, checks: { allow_withdrawn: 0, deny: 0, allow_after_a_later_grant: 0, unavailable: 0 },
    outage_seconds: 0, checks_during_outage: { allow_withdrawn: 0, deny: 0, unavailable: 0 },
  };
  const acked = new Map();	// event_id → { identifier, state }
  const last = new Map();	// identifier → last acknowledged state
  const started = new Map();	// identifier → writes sent for it so far
  const inflight = new Set();	// identifiers with a write sent and not yet answered
  let stop = false;
  let killedAt = 0;
  let lastAck = 0;
  let maxGap = 0;

  // Sends one write until it is answered 201 (same request id each time).
  async function write(srv, identifier, state, rid) {
    const body = JSON.stringify({ identifier, purpose: 'newsletter', channel: 'email', state,
      method: 'web_form', request_id: rid });
    let tries = 0;
    for (;;) {
      if (Date.now() > DEADLINE) throw new Error('deadline');
      tries++;
      try {
        const r = await fetch(`${srv.url}/v1/consents`, { method: 'POST', headers: { ...auth,
          'content-type': 'application/json' }, body, signal: AbortSignal.timeout(15000) });
        const j = await r.json().catch(() => ({}));
        if (r.status === 201 || r.status === 200) {
          if (tries > 1) figures.retried++;
          return j;
        }
        if (r.status !== 503) throw new Error(`write answered ${r.status}: ${JSON.stringify(j)}`);
        const code = j.error && j.error.code;
        figures.write_503[code in figures.write_503 ? code : 'other']++;
      } catch (e) {
        if (/answered/.test(e.message)) throw e;
      }
      await sleep(100);
    }
  }

  async function writer(w) {
    const mine = Array.from({ length: 25 }, (_, k) => `email:ha-${w}-${k}@example.com`);
    let seq = 0;
    while (!stop) {
      const identifier = mine[seq % mine.length];
      const state = last.get(identifier) === 'granted' ? 'withdrawn' : 'granted';
      const rid = `ha-${process.pid}-${w}-${seq++}`;
      figures.attempted++;
      const srv = servers[seq % 2];
      started.set(identifier, (started.get(identifier) || 0) + 1);
      inflight.add(identifier);
      const j = await write(srv, identifier, state, rid);
      acked.set(j.event_id, { identifier, state });
      last.set(identifier, state);
      inflight.delete(identifier);
      figures.acknowledged++;
      const now = Date.now();
      if (lastAck && now - lastAck > maxGap) maxGap = now - lastAck;
      lastAck = now;
    }
  }

  // Checks of identifiers whose last acknowledged write is a withdrawal.
  // A check counts as one of a withdrawal only when no write for its
  // identifier was in flight from before it was sent to after its answer
  // (a grant committed but not yet answered may be seen, rightly).
  async function checker(c) {
    while (!stop) {
      const withdrawn = [...last.entries()].filter(([, s]) => s === 'withdrawn').map(([i]) => i);
      if (withdrawn.length === 0) { await sleep(20); continue; }
      const identifier = withdrawn[Math.floor(Math.random() * withdrawn.length)];
      if (inflight.has(identifier)) { await sleep(1); continue; }
      const version = started.get(identifier);
      const srv = servers[c % 2];
      const outage = killedAt > 0 && !figures.outage_over;
      try {
        const r = await fetch(`${srv.url}/v1/consent/check?identifier=${encodeURIComponent(identifier)}` +
          '&purpose=newsletter&channel=email', { headers: auth, signal: AbortSignal.timeout(15000) });
        const j = await r.json().catch(() => ({}));
        // A grant may have been acknowledged since: only a check whose
        // identifier is still withdrawn afterwards counts as one of a withdrawal.
        const still = started.get(identifier) === version && !inflight.has(identifier);
        if (r.status === 503) {
          figures.checks.unavailable++;
          if (outage) figures.checks_during_outage.unavailable++;
        } else if (j.decision === 'deny') {
          figures.checks.deny++;
          if (outage) figures.checks_during_outage.deny++;
        } else if (j.decision === 'allow' && still) {
          figures.checks.allow_withdrawn++;
          if (outage) figures.checks_during_outage.allow_withdrawn++;
        } else {
          figures.checks.allow_after_a_later_grant++;
        }
      } catch {
        figures.checks.unavailable++;
        if (outage) figures.checks_during_outage.unavailable++;
      }
    }
  }

  const load = [...Array.from({ length: WRITERS }, (_, w) => writer(w)),
    ...Array.from({ length: 2 }, (_, c) => checker(c))];
  await sleep(KILL_AT * 1000);
  const current = (await roles()).leader;
  const victim = nodes.find((n) => n.name === current);
  const pm = Number(fs.readFileSync(path.join(work, victim.name, 'postmaster.pid'), 'utf8').split('\n')[0]);
  log(`kill -9 of ${victim.name}: its Patroni and its postmaster (${pm})`);
  killedAt = Date.now();
  const ackedAtKill = figures.acknowledged;
  killTree(victim.proc);
  try { process.kill(pm, 'SIGKILL'); } catch { /* gone with Patroni's group */ }
  await waitFor('writes after the failover', async () => figures.acknowledged > ackedAtKill + 20, 120000);
  figures.outage_over = true;
  await sleep(Math.max(0, LOAD_SECONDS * 1000 - (Date.now() - killedAt) - KILL_AT * 1000));
  stop = true;
  await Promise.all(load);
  figures.outage_seconds = maxGap / 1000;
  delete figures.outage_over;
  const after = await roles();
  figures.primary_before = before.leader;
  figures.primary_after = after.leader;

  // Every acknowledged write is there, on the new primary.
  const primary = nodes.find((n) => n.name === after.leader);
  const stored = new Set(psql(primary.pg, 'consentd', 'SELECT event_id FROM consent_events').trim().split('\n'));
  for (const id of acked.keys()) if (!stored.has(id)) figures.lost++;
  // Only the load wrote events: one each, however often it was sent.
  figures.written_twice = stored.size - (acked.size - figures.lost);
  // Every withdrawal is answered deny by both nodes now.
  for (const [identifier, state] of last) {
    if (state !== 'withdrawn') continue;
    for (const srv of servers) {
      const r = await fetch(`${srv.url}/v1/consent/check?identifier=${encodeURIComponent(identifier)}` +
        '&purpose=newsletter&channel=email', { headers: auth });
      const j = await r.json();
      if (r.status !== 200 || j.decision !== 'deny') figures.withdrawals_allowed_after++;
    }
  }
  // Commits whose answer was lost, replayed by the servers themselves.
  for (const srv of servers) {
    const m = await (await fetch(`${srv.url}/metrics`, { headers: auth })).text();
    const line = m.split('\n').find((l) => l.startsWith('consentd_group_commit_retries_total{reason="outcome_unknown"} '));
    figures.server_replays += line ? Number(line.split(' ')[1]) : 0;
  }
  for (const s of servers) { s.p.kill('SIGTERM'); }
  await Promise.all(servers.map((s) => new Promise((r) => (s.p.exitCode !== null ? r() : s.p.on('exit', r)))));
  const v = run(BIN, ['audit', 'verify', '--data', dirA], { timeout: 120000 });
  figures.audit_verify = v.status === 0 ? 'ok' : `failed: ${v.stdout.split('\n').filter((l) => l.startsWith('FAIL')).join('; ')}`;
  console.log(JSON.stringify(figures, null, 2));
  const ok = figures.lost === 0 && figures.written_twice === 0 && figures.withdrawals_allowed_after === 0 &&
    figures.checks.allow_withdrawn === 0 && figures.primary_after !== figures.primary_before &&
    figures.audit_verify === 'ok' && figures.acknowledged > 0;
  if (!ok) throw new Error('failover test failed: see the figures');
  console.log('test-ha: passed');
}

function cleanup() {
  for (const p of procs) { if (p.exitCode === null) killTree(p); try { p.kill('SIGKILL'); } catch { /* gone */ } }
  for (const n of nodes) {
    try {
      const pm = Number(fs.readFileSync(path.join(work, n.name, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pm > 1) process.kill(pm, 'SIGKILL');
    } catch { /* not running */ }
  }
  if (process.env.CONSENTD_KEEP_TMP !== '1') fs.rmSync(work, { recursive: true, force: true });
}

const timer = setTimeout(() => { log('time limit reached'); cleanup(); process.exit(1); }, DEADLINE - Date.now());
try {
  await main();
  clearTimeout(timer);
  cleanup();
} catch (e) {
  clearTimeout(timer);
  console.error(e.stack || String(e));
  for (const f of fs.existsSync(work) ? fs.readdirSync(work).filter((x) => x.endsWith('.log')) : []) {
    console.error(`--- ${f} (last lines)\n${fs.readFileSync(path.join(work, f), 'utf8').split('\n').slice(-15).join('\n')}`);
  }
  cleanup();
  process.exit(1);
}
