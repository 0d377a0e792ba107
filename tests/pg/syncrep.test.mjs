// SPDX-License-Identifier: ISC
// A commit whose outcome is unknown is never acknowledged, and is replayed
// by its request id. The cluster names a synchronous standby that never
// comes, so every commit that writes waits for it (wait event SyncRep), as
// on a primary whose standby is gone. The test then does what an operator
// or a failover does to such a wait:
//   - pg_cancel_backend: the COMMIT succeeds with a WARNING, made on the
//     primary alone, which a failover can lose;
//   - pg_terminate_backend: the connection goes with the answer.
// Either way consentd must answer 503 outcome_unknown, never 201; a write
// with its request id is run again by the server itself, and its replay
// (which finds it done) must wait for the standby too, not acknowledge what
// only the primary holds. Once the standby is back, the client's replay with
// the same request id answers 201 with one event in the store.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { startWithServer } from './cluster.mjs';

let pg;
let h;
let srv;
let db;
before(async () => {
  ({ pg, h, srv } = await startWithServer());
  const uri = (await import('node:fs')).readFileSync(`${srv.dir}/store`, 'utf8').trim();
  db = new URL(uri).pathname.slice(1);
  sql('CREATE TABLE syncrep_probe (x int)');
});
after(async () => {
  // Whatever failed, no commit may be left waiting: the server could not stop.
  if (db) await standby('');
  if (srv) assert.equal((await srv.stop()).code, 0);
  if (pg) pg.stop();
});

const sql = (q) => pg.psql(db, ['-A', '-t', '-c', q]).trim();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Whether a commit that writes now waits for the standby: a probe session
// inserts a row, and a wait of it is ended by ending the session. Commits
// begin (or stop) waiting once the checkpointer has taken the setting, a
// little after new sessions see it.
async function commitsWait() {
  const probe = spawn('psql', ['-X', '-q', '-h', pg.dir, '-U', 'postgres', '-d', db, '-c',
    'INSERT INTO syncrep_probe VALUES (1)'], { stdio: 'ignore',
    env: { ...process.env, PGAPPNAME: 'syncrep_probe' } });
  const exited = new Promise((r) => probe.on('exit', r));
  for (let i = 0; i < 200; i++) {
    if (probe.exitCode !== null) return false;
    if (sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'syncrep_probe' " +
      "AND state = 'active' AND wait_event = 'SyncRep'") !== '0') {
      sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity " +
        "WHERE application_name = 'syncrep_probe'");
      await exited;
      return true;
    }
    await sleep(10);
  }
  probe.kill('SIGKILL');
  throw new Error('the probe neither committed nor waited');
}

// Names a synchronous standby that never connects (or none), and waits
// until commits wait for it (or do not).
async function standby(name) {
  sql(`ALTER SYSTEM SET synchronous_standby_names = '${name}'`);
  sql('SELECT pg_reload_conf()');
  for (let i = 0; i < 100 && (await commitsWait()) !== (name !== ''); i++) await sleep(20);
  assert.equal(await commitsWait(), name !== '', `commits wait for a standby: ${name !== ''}`);
}

let n = 0;
const email = () => `email:syncrep${process.pid}-${n++}@example.com`;
const record = (identifier, state, requestId) => srv.req('POST', '/v1/consents', {
  token: srv.tokens['consent:write'],
  body: { identifier, purpose: 'newsletter', channel: 'email', state, method: 'web_form',
    ...(requestId ? { request_id: requestId } : {}) },
});
const check = async (identifier) => (await srv.req('GET',
  `/v1/consent/check?identifier=${encodeURIComponent(identifier)}&purpose=newsletter&channel=email`,
  { token: srv.tokens['consent:check'] })).json;
const events = (requestId) => Number(sql(
  `SELECT count(*) FROM consent_events WHERE request_id = '${requestId}'`));

// Sends the write of PENDING's promise into a commit that waits for the
// standby, and ends each such wait with FN ('pg_cancel_backend' or
// 'pg_terminate_backend') until the write is answered: the answer, and how
// many waits were ended.
async function endWaits(pending, fn) {
  let done = false;
  let ended = 0;
  const answered = pending.then((r) => { done = true; return r; });
  while (!done) {
    const pids = sql(`SELECT pid FROM pg_stat_activity WHERE datname = '${db}' ` +
      "AND state = 'active' AND wait_event = 'SyncRep' " +
      "AND application_name IS DISTINCT FROM 'syncrep_probe'").split('\n').filter(Boolean);
    for (const pid of pids) {
      if (sql(`SELECT ${fn}(${pid})`) === 't') ended++;
    }
    await sleep(20);
  }
  return { r: await answered, ended };
}

const retries = async () => h.metricValue((await srv.req('GET', '/metrics',
  { token: srv.tokens.all })).text, 'consentd_group_commit_retries_total{reason="outcome_unknown"}');

for (const fn of ['pg_cancel_backend', 'pg_terminate_backend']) {
  test(`${fn} on a commit waiting for the standby: 503 outcome_unknown, replayed by the request id`, async () => {
    const e = email();
    const rid = `syncrep-${fn}-${process.pid}`;
    assert.equal((await record(e, 'granted')).status, 201);
    const before = await retries();
    try {
      await standby('consentd_absent');
      // The server runs it again itself (4 tries in all): each try's
      // commit waits for the standby, even the ones that find it done.
      const { r, ended } = await endWaits(record(e, 'withdrawn', rid), fn);
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.error.code, 'outcome_unknown');
      // (The server's own background writes wait too, and are ended alike.)
      assert.ok(ended >= 4, `the first try and three replays each waited for the standby: ${ended}`);
      assert.equal(await retries(), before + 3);
      assert.equal(events(rid), 1, 'made once, on the primary');
      // Seen on the primary: the "no" already holds there.
      assert.equal((await check(e)).decision, 'deny');

      // A write without a request id is not run again: it may have been made.
      const plain = await endWaits(record(email(), 'granted'), fn);
      assert.equal(plain.r.status, 503, plain.r.text);
      assert.equal(plain.r.json.error.code, 'outcome_unknown');
      assert.ok(plain.ended >= 1);
      assert.equal(await retries(), before + 3, 'not run again');
    } finally {
      await standby('');
    }
    // With the standby back, the client's replay answers the first result.
    const again = await record(e, 'withdrawn', rid);
    assert.equal(again.status, 201, again.text);
    assert.equal(again.json.state, 'withdrawn');
    assert.equal(events(rid), 1, 'still one event');
    const c = await check(e);
    assert.equal(`${c.decision} ${c.reason}`, 'deny withdrawn');
  });
}
