// SPDX-License-Identifier: ISC
// Health, readiness, GPC and policy routes: the routes that need no token.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { POLICY, rawRequest, startServer } from './harness.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0, 'server exits 0 on SIGTERM'); });

test('GET /healthz answers 200 ok with the API headers', async () => {
  const r = await srv.req('GET', '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ok' });
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('cache-control'), 'no-store');
});

test('GET /readyz answers 200 when the store answers', async () => {
  const r = await srv.req('GET', '/readyz');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ready' });
});

test('GET /.well-known/gpc.json follows the GPC specification', async () => {
  const r = await srv.req('GET', '/.well-known/gpc.json');
  assert.equal(r.status, 200);
  assert.equal(r.json.gpc, true);
  assert.match(r.json.lastUpdate, /^\d{4}-\d{2}-\d{2}$/);
  const policy = JSON.parse(fs.readFileSync(path.join(POLICY, 'policy.json'), 'utf8'));
  assert.equal(r.json.lastUpdate, policy.gpc_last_update);
  assert.deepEqual(Object.keys(r.json).sort(), ['gpc', 'lastUpdate']);
});

test('GET /v1/policy is public and returns the loaded policy with defaults', async () => {
  const r = await srv.req('GET', '/v1/policy');
  assert.equal(r.status, 200);
  const policy = JSON.parse(fs.readFileSync(path.join(POLICY, 'policy.json'), 'utf8'));
  assert.equal(r.json.controller.name, policy.controller.name);
  assert.deepEqual(r.json.purposes.map((p) => p.id), policy.purposes.map((p) => p.id));
  assert.deepEqual(r.json.channels.map((c) => c.id), policy.channels.map((c) => c.id));
  const newsletter = r.json.purposes.find((p) => p.id === 'newsletter');
  assert.equal(newsletter.gpc, false, 'gpc defaults to false');
  assert.equal(newsletter.holdout_percent, 0, 'holdout defaults to 0');
  assert.equal(r.json.purposes.find((p) => p.id === 'recommendations').holdout_percent, 10);
  assert.equal(r.json.purposes.find((p) => p.id === 'ad_audiences').gpc, true);
});

test('HEAD answers like GET without a body', async () => {
  const r = await srv.req('HEAD', '/healthz');
  assert.equal(r.status, 200);
  assert.equal(r.text, '');
});

test('keep-alive: several requests share one connection', async () => {
  const req = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const reply = await rawRequest(srv.port, req + req + req, 1000);
  assert.equal(reply.match(/HTTP\/1\.1 200 OK/g).length, 3);
  assert.doesNotMatch(reply, /Connection: close/i);
});
