// SPDX-License-Identifier: ISC
// Two consentd nodes on one store. On PostgreSQL (make http-pg) each node
// has a data directory of its own holding the same keys and naming the
// same database, as two machines would; on SQLCipher they are two servers
// on one data directory. Writes through both interleave; a "no" written
// through either is what the other answers on its very next check; and
// the audit log both wrote is one Merkle tree, one order, that `consentd
// audit verify` and the Go x/mod checker (tests/conformance) both accept;
// and the outbox, delivered by both, makes each attempt once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cli, nodeData, startServer, tmpdir } from './harness.mjs';

const TLOGCHECK = process.env.CONSENTD_TLOGCHECK;

// Both nodes deliver the outbox, often.
const ENV = { CONSENTD_OUTBOX_BASE_MS: '200', CONSENTD_OUTBOX_TIMEOUT_MS: '2000' };
let a;
let b;
let hook;
before(async () => {
  a = await startServer({ env: ENV });
  b = await startServer({ data: nodeData(a.data), noTokens: true, env: ENV });
  b.tokens = a.tokens;
});
after(async () => {
  for (const s of [a, b]) if (s) assert.equal((await s.stop()).code, 0);
  if (hook) hook.close();
});

let n = 0;
const email = () => `email:node${process.pid}-${n++}@example.com`;
const record = (srv, identifier, state) => srv.req('POST', '/v1/consents', {
  token: a.tokens['consent:write'],
  body: { identifier, purpose: 'newsletter', channel: 'email', state, method: 'web_form' },
});
const check = async (srv, identifier) => (await srv.req('GET',
  `/v1/consent/check?identifier=${encodeURIComponent(identifier)}&purpose=newsletter&channel=email`,
  { token: a.tokens['consent:check'] })).json;

test('writes through two nodes at once each get their own place in one log', async () => {
  const writes = [];
  for (let i = 0; i < 60; i++) writes.push(record(i % 2 ? a : b, email(), i % 5 === 4 ? 'refused' : 'granted'));
  const done = await Promise.all(writes);
  for (const r of done) assert.equal(r.status, 201, r.text);
  const idx = done.map((r) => r.json.audit_index);
  assert.equal(new Set(idx).size, idx.length, 'no audit index given twice');
});

test('a no written through either node is denied by the other\'s very next check', async () => {
  for (const [writer, reader] of [[a, b], [b, a]]) {
    const e = email();
    assert.equal((await record(writer, e, 'granted')).status, 201);
    for (let k = 0; k < 3; k++) {
      assert.equal((await check(reader, e)).decision, 'allow');
      assert.equal((await check(writer, e)).decision, 'allow');
    }
    assert.equal((await record(writer, e, 'withdrawn')).status, 201);
    const c = await check(reader, e);
    assert.equal(`${c.decision} ${c.reason}`, 'deny withdrawn', `written through port ${writer.port}`);
    const s = await reader.req('POST', '/v1/suppressions', { token: a.tokens['consent:write'],
      body: { identifier: e, reason: 'unsubscribed' } });
    assert.ok(s.status < 300, s.text);
    assert.equal((await record(writer, e, 'granted')).status, 201, 'a fresh web-form grant lifts it');
    assert.equal((await check(reader, e)).decision, 'allow');
    assert.equal((await check(writer, e)).decision, 'allow');
  }
});

test('the log both nodes wrote verifies with consentd audit verify and with Go x/mod', async () => {
  const tok = a.tokens['audit:read'];
  const work = tmpdir('consentd-nodes-');
  const cpdir = path.join(work, 'checkpoints');
  fs.mkdirSync(cpdir);
  fs.writeFileSync(path.join(work, 'vkey'), (await a.req('GET', '/v1/audit/vkey', { token: tok })).text);
  // One checkpoint signed by each node, of the log as it stands.
  const sizes = [];
  for (const [i, srv] of [a, b].entries()) {
    assert.equal((await record(srv, email(), 'granted')).status, 201);
    const r = cli(['audit', 'checkpoint', '--data', srv.dir]);
    assert.equal(r.code, 0, r.stderr);
    const note = (await srv.req('GET', '/v1/audit/checkpoint', { token: tok })).text;
    fs.writeFileSync(path.join(cpdir, `00${i}.txt`), note);
    sizes.push(Number(note.split('\n')[1]));
  }
  const total = sizes[1];
  assert.ok(sizes[0] < total, `${sizes}`);
  // The entries read through one node, the proofs through the other.
  let ndjson = '';
  for (let from = 0; from < total; from += 500) {
    const r = await b.req('GET', `/v1/audit/entries?from=${from}&to=${Math.min(total, from + 500)}`, { token: tok });
    assert.equal(r.status, 200, r.text);
    ndjson += r.text;
  }
  fs.writeFileSync(path.join(work, 'entries.ndjson'), ndjson);
  const inclusion = [];
  for (let i = 0; i < total; i += 5)
    inclusion.push((await a.req('GET', `/v1/audit/proof?index=${i}&size=${total}`, { token: tok })).json);
  const consistency = [(await a.req('GET', `/v1/audit/consistency?old=${sizes[0]}&new=${total}`, { token: tok })).json];
  fs.writeFileSync(path.join(work, 'proofs.json'), JSON.stringify({ inclusion, consistency }));
  const r = spawnSync(TLOGCHECK, [path.join(work, 'vkey'), '-', cpdir, path.join(work, 'entries.ndjson'),
    path.join(work, 'proofs.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`2 checkpoints, ${total} entries`));
  for (const srv of [a, b]) {
    const v = cli(['audit', 'verify', '--data', srv.dir]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /^\d+ passed, 0 failed$/m);
  }
});

test('the outbox, delivered by both nodes, makes each attempt once', async () => {
  // A system that takes consent changes and answers every call 204: each
  // message is then delivered at its first attempt, so each delivery id
  // must arrive exactly once, whichever node sent it.
  const calls = [];
  hook = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { calls.push(req.headers['x-consentd-delivery']); res.writeHead(204).end(); });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  const r = await a.req('POST', '/v1/systems', { token: a.tokens.admin, body: { name: 'esp',
    url: `http://127.0.0.1:${hook.address().port}/hook`, events: ['consent.changed'],
    secret: 'esp-secret-0123456789abcdef' } });
  assert.equal(r.status, 201, r.text);
  const writes = [];
  for (let i = 0; i < 40; i++) writes.push(record(i % 2 ? a : b, email(), 'granted'));
  for (const w of await Promise.all(writes)) assert.equal(w.status, 201, w.text);
  const sent = async () => (await a.req('GET', '/v1/outbox?status=sent&limit=200', { token: a.tokens.admin }))
    .json.items.filter((m) => m.name === 'consent.changed');
  for (let i = 0; i < 150 && (await sent()).length < 40; i++) await new Promise((res) => setTimeout(res, 100));
  const rows = await sent();
  assert.equal(rows.length, 40, 'every change delivered');
  assert.ok(rows.every((m) => m.attempts === 1), JSON.stringify(rows.map((m) => m.attempts)));
  const seen = new Map();
  for (const id of calls) seen.set(id, (seen.get(id) || 0) + 1);
  assert.equal(calls.length, 40, `${calls.length} calls for 40 messages`);
  assert.ok([...seen.values()].every((n) => n === 1), 'no message sent twice');
  assert.deepEqual([...seen.keys()].sort(), rows.map((m) => m.id).sort());
});
