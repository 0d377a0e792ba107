// SPDX-License-Identifier: ISC
// PostgreSQL restarts under a running consentd (as a failover ends every
// session): every thread's session is lost, and each finds out only when
// it next uses it. No request may fail for that once the database is back:
// a write's token, read before its transaction, a check's snapshot and the
// group commit each take a new session and go on.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { startWithServer } from './cluster.mjs';

const THREADS = 4;
let pg;
let srv;
before(async () => {
  ({ pg, srv } = await startWithServer({ args: ['--threads', String(THREADS)] }));
});
after(async () => {
  if (srv) assert.equal((await srv.stop()).code, 0);
  if (pg) pg.stop();
});

let n = 0;
const email = () => `email:restart${process.pid}-${n++}@example.com`;
const record = (identifier, state) => srv.req('POST', '/v1/consents', {
  token: srv.tokens['consent:write'],
  body: { identifier, purpose: 'newsletter', channel: 'email', state, method: 'web_form' },
});
const check = (identifier) => srv.req('GET',
  `/v1/consent/check?identifier=${encodeURIComponent(identifier)}&purpose=newsletter&channel=email`,
  { token: srv.tokens['consent:check'] });

test('after the database restarts, no request fails for a lost session', async () => {
  const people = [];
  // Every server thread has served writes and checks: each holds a session.
  for (let i = 0; i < 4 * THREADS; i++) {
    const e = email();
    people.push(e);
    assert.equal((await record(e, 'granted')).status, 201);
    assert.equal((await check(e)).json.decision, 'allow');
  }
  pg.restart();
  // Writes first: the token of each is read outside any transaction.
  for (const e of people) {
    const w = await record(e, 'withdrawn');
    assert.equal(w.status, 201, w.text);
  }
  for (const e of people) {
    const c = await check(e);
    assert.equal(c.status, 200, c.text);
    assert.equal(`${c.json.decision} ${c.json.reason}`, 'deny withdrawn');
  }
  const reconnected = srv.logs.filter((l) => l.includes('"store_reconnected"')).length;
  assert.ok(reconnected >= 2, `sessions were found lost and replaced: ${reconnected}`);
  assert.ok(fs.existsSync(`${srv.dir}/store`));
});
