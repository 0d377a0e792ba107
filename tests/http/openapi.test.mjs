// SPDX-License-Identifier: ISC
// docs/openapi.yaml must describe exactly the routes the router has: a
// route missing from the file, or a path in the file the router lacks,
// fails this test.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { checkResponse } from './openapi_check.mjs';
import { ROOT, cli } from './harness.mjs';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

test('docs/openapi.yaml and the router list the same routes', () => {
  const doc = YAML.parse(fs.readFileSync(path.join(ROOT, 'docs/openapi.yaml'), 'utf8'));
  assert.match(doc.openapi, /^3\.1\./);
  const documented = new Set();
  for (const [p, item] of Object.entries(doc.paths))
    for (const m of Object.keys(item))
      if (METHODS.includes(m)) documented.add(`${m.toUpperCase()} ${p}`);
  const r = cli(['routes']);
  assert.equal(r.code, 0);
  const routed = new Set(r.stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2).join(' ')));
  assert.ok(routed.size > 0);
  const missing = [...routed].filter((x) => !documented.has(x));
  const extra = [...documented].filter((x) => !routed.has(x));
  assert.deepEqual(missing, [], 'routes the OpenAPI file lacks');
  assert.deepEqual(extra, [], 'OpenAPI paths the router lacks');
});

test('every documented operation names its security and responses', () => {
  const doc = YAML.parse(fs.readFileSync(path.join(ROOT, 'docs/openapi.yaml'), 'utf8'));
  const scopes = Object.fromEntries(cli(['routes']).stdout.trim().split('\n')
    .map((l) => l.split(/\s+/)).map(([m, p, s]) => [`${m} ${p}`, s]));
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(item)) {
      if (!METHODS.includes(m)) continue;
      const key = `${m.toUpperCase()} ${p}`;
      assert.ok(op.responses && Object.keys(op.responses).length > 0, `${key} has responses`);
      assert.ok(op.summary, `${key} has a summary`);
      const scope = scopes[key];
      if (scope === 'public') {
        assert.deepEqual(op.security, [], `${key} is public`);
      } else if (scope === 'session') {
        assert.deepEqual(op.security, [{ session: [] }], `${key} takes a session`);
        assert.ok(op.responses['401'], `${key} documents 401`);
        if (m !== 'get') assert.ok(op.responses['403'], `${key} documents the CSRF 403`);
      } else if (scope === 'console') {
        assert.deepEqual(op.security, [{ console: [] }], `${key} takes a console session`);
        assert.ok(op.responses['401'], `${key} documents 401`);
        if (m !== 'get') assert.ok(op.responses['403'], `${key} documents the CSRF 403`);
      } else {
        const sec = op.security ?? doc.security;
        assert.ok(Array.isArray(sec) && sec.length > 0, `${key} needs a token`);
        if (scope !== 'token') assert.deepEqual(sec[0].bearer, [scope], `${key} needs ${scope}`);
        assert.ok(op.responses['401'], `${key} documents 401`);
      }
    }
  }
});

test('every documented operation lists exactly the query parameters its route takes', () => {
  const doc = YAML.parse(fs.readFileSync(path.join(ROOT, 'docs/openapi.yaml'), 'utf8'));
  const taken = Object.fromEntries(cli(['routes']).stdout.trim().split('\n')
    .map((l) => l.split(/\s+/)).map(([m, p, , q]) => [`${m} ${p}`, q === '-' ? [] : q.split(',').sort()]));
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(item)) {
      if (!METHODS.includes(m)) continue;
      const key = `${m.toUpperCase()} ${p}`;
      const documented = [...(item.parameters || []), ...(op.parameters || [])]
        .filter((x) => x.in === 'query').map((x) => x.name).sort();
      assert.deepEqual(documented, taken[key], `${key}: query parameters`);
    }
  }
});

test('every operation has a unique operationId, and the licence is one validators accept', () => {
  const doc = YAML.parse(fs.readFileSync(path.join(ROOT, 'docs/openapi.yaml'), 'utf8'));
  const seen = new Set();
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(item)) {
      if (!METHODS.includes(m)) continue;
      assert.match(op.operationId || '', /^[a-z][A-Za-z0-9]+$/, `${m.toUpperCase()} ${p}: operationId`);
      assert.ok(!seen.has(op.operationId), `${op.operationId} is used twice`);
      seen.add(op.operationId);
    }
  }
  // OpenAPI 3.1: a name, and an SPDX identifier or a URL (not both).
  assert.deepEqual(doc.info.license, { name: 'ISC', identifier: 'ISC' });
});

test('examples in the file use the purposes and channels of the shipped policy', () => {
  const doc = YAML.parse(fs.readFileSync(path.join(ROOT, 'docs/openapi.yaml'), 'utf8'));
  const policy = JSON.parse(fs.readFileSync(path.join(ROOT, 'policy/policy.json'), 'utf8'));
  const purposes = new Set(policy.purposes.map((x) => x.id));
  const channels = new Set(policy.channels.map((x) => x.id));
  const found = [];
  const walk = (o) => {
    if (Array.isArray(o)) { o.forEach(walk); return; }
    if (o === null || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o)) {
      if ((k === 'example' || k === 'examples' || k === 'value')) found.push(v);
      walk(v);
    }
  };
  walk(doc);
  const check = (v) => {
    if (Array.isArray(v)) { v.forEach(check); return; }
    if (v === null || typeof v !== 'object') return;
    if (typeof v.purpose === 'string') assert.ok(purposes.has(v.purpose), `example purpose ${v.purpose}`);
    if (typeof v.channel === 'string') assert.ok(channels.has(v.channel), `example channel ${v.channel}`);
    Object.values(v).forEach(check);
  };
  found.forEach(check);
  for (const ex of doc.components.schemas.Purpose.examples) assert.ok(purposes.has(ex), `Purpose example ${ex}`);
  for (const ex of doc.components.schemas.Channel.examples) assert.ok(channels.has(ex), `Channel example ${ex}`);
});

// The harness checks every response of the suite against the file
// (openapi_check.mjs); here, that the check finds what it must.
test('the response check refuses what the file does not say', () => {
  const ok = checkResponse('GET', '/healthz', 200, 'application/json', '{"status":"ok"}');
  assert.deepEqual(ok, []);
  assert.equal(checkResponse('GET', '/healthz', 200, 'application/json', '{"status":"bad"}').length, 1);
  assert.equal(checkResponse('GET', '/v1/consent/check?x=1', 200, 'application/json', '{"decision":"maybe"}').length, 1);
  const env = '{"error":{"code":"unknown_parameter","message":"m","field":"x"}}';
  assert.deepEqual(checkResponse('GET', '/v1/consent/check?x=1', 400, 'application/json; charset=utf-8', env), []);
  assert.equal(checkResponse('GET', '/v1/consent/check', 400, 'application/json', '{"error":{"code":"c","message":"m","field":null,"secret":1}}').length, 1);
  assert.equal(checkResponse('GET', '/healthz', 200, 'text/html', '<p>').length, 1);
  assert.deepEqual(checkResponse('GET', '/no/such/route', 404, 'application/json', env), []);
  assert.equal(checkResponse('GET', '/no/such/route', 404, 'application/json', '{}').length, 1);
});
