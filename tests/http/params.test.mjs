// SPDX-License-Identifier: ISC
// Query parameters are strict on every route: each route of the route table
// (as `consentd routes` prints it) answers a parameter it does not take with
// 400 unknown_parameter naming it, a repeated or badly escaped one with 400
// invalid_parameter, and writes nothing. Checked after authentication (a
// request without a token is still 401) and, for NDJSON streams, before the
// first line is handed on.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cli, startServer } from './harness.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

// Every route: method, path pattern, scope, accepted query parameters.
function routes() {
  const r = cli(['routes']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => {
    const [method, pattern, scope, query] = l.split(/\s+/);
    return { method, pattern, scope, query: query === '-' ? [] : query.split(',') };
  });
}

async function auditSize() {
  const r = await srv.req('GET', '/v1/audit/entries?to=999999999', { token: srv.tokens['audit:read'] });
  return Number(r.json.error.message.match(/holds (\d+)/)[1]);
}

let sid;
async function subject() {
  if (!sid) {
    const r = await srv.req('POST', '/v1/consents', { token: srv.tokens.all, body: {
      identifier: 'email:params@example.com', purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
    assert.equal(r.status, 201, r.text);
    sid = r.json.subject_id;
    await consoleSession();
  }
  return sid;
}

// A DPO console session (its sign-in writes an audit entry, so it is made
// with the subject, before any test counts entries).
let con;
async function consoleSession() {
  if (!con) {
    const r = await srv.req('POST', '/admin/session', { token: srv.tokens.all });
    assert.equal(r.status, 201, r.text);
    con = { cookie: r.headers.get('set-cookie').split(';')[0], 'x-csrf-token': r.json.csrf_token };
  }
  return con;
}

// A preference-centre session for the subject: its cookie and CSRF token,
// the credentials of the session routes.
let sess;
async function session() {
  if (!sess) {
    const id = await subject();
    const l = await srv.req('POST', `/v1/subjects/${id}/preference-link`, { token: srv.tokens.all, body: {} });
    assert.equal(l.status, 201, l.text);
    const res = await fetch(`${srv.url}/p/${l.json.url.split('/p/')[1]}`, { redirect: 'manual' });
    const cookie = res.headers.get('set-cookie').split(';')[0];
    const me = await srv.req('GET', '/v1/me', { headers: { cookie } });
    assert.equal(me.status, 200, me.text);
    sess = { cookie, 'x-csrf-token': me.json.csrf_token };
  }
  return sess;
}

// A request to PATTERN with QUERY that would succeed (or at least reach the
// handler) were it not for the query: real ids, and a valid body for writes.
async function send(rt, query, token = srv.tokens.all, ndjson = false) {
  const id = await subject();
  const path = rt.pattern.replace('{id}', id).replace('{identifier}', encodeURIComponent('email:params@example.com'));
  const bodies = {
    'POST /v1/subjects': { identifiers: ['email:params-new@example.com'] },
    'POST /v1/subjects/merge': { into: id, from: id },
    'POST /v1/subjects/{id}/identifiers': { identifier: 'device:params' },
    'PATCH /v1/subjects/{id}/profile': { attributes: { a: 1 } },
    'POST /v1/consents': { identifier: 'email:params@example.com', purpose: 'newsletter', channel: 'email', state: 'withdrawn', method: 'api' },
    'POST /v1/consent/check': { checks: [] },
    'PUT /v1/subjects/{id}/preferences': { channels: { email: false } },
    'POST /v1/subjects/{id}/unsubscribe': { reason: 'other' },
    'POST /v1/suppressions': { identifier: 'email:params-sup@example.com', reason: 'manual' },
    'POST /v1/subjects/{id}/preference-link': {},
    'PUT /v1/me/preferences': { frequency: 'weekly' },
    'POST /v1/me/unsubscribe': {},
    'POST /v1/me/requests': { type: 'access' },
  };
  const key = `${rt.method} ${rt.pattern}`;
  if (ndjson) {
    const line = JSON.stringify(bodies[key].checks ? { identifier: 'email:params@example.com', purpose: 'newsletter', channel: 'email' }
      : bodies[key]);
    return srv.req(rt.method, path + query, { token, raw: `${line}\n${line}\n`, headers: { 'content-type': 'application/x-ndjson' } });
  }
  if (rt.scope === 'console' && token !== null)
    return srv.req(rt.method, path + query, { headers: { ...(await consoleSession()) }, body: bodies[key] });
  if (rt.scope === 'session' && token !== null)
    return srv.req(rt.method, path + query, { headers: { ...(await session()) }, body: bodies[key] });
  return srv.req(rt.method, path + query, { token, body: bodies[key] });
}

test('every route answers an unknown query parameter with 400 unknown_parameter, and writes nothing', async () => {
  const all = routes();
  assert.ok(all.length >= 31, `${all.length} routes`);
  await subject();
  const size = await auditSize();
  for (const rt of all) {
    const r = await send(rt, '?zz=1');
    assert.equal(r.status, 400, `${rt.method} ${rt.pattern}?zz=1: ${r.text}`);
    assert.deepEqual(r.json, { error: { code: 'unknown_parameter', message: 'unknown query parameter', field: 'zz' } },
      `${rt.method} ${rt.pattern}`);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    // A parameter the route takes does not hide an unknown one after it.
    if (rt.query.length > 0) {
      const both = await send(rt, `?${rt.query[0]}=1&yy=2`);
      assert.equal(both.status, 400, `${rt.method} ${rt.pattern}`);
      assert.equal(both.json.error.field, 'yy');
    }
  }
  assert.equal(await auditSize(), size, 'no route wrote anything');
});

test('NDJSON streams are refused before any line is handed on', async () => {
  const size = await auditSize();
  const streamed = routes().filter((rt) => rt.method === 'POST' && ['/v1/consent/check', '/v1/suppressions'].includes(rt.pattern));
  assert.equal(streamed.length, 2);
  for (const rt of streamed) {
    const r = await send(rt, '?zz=1', srv.tokens.all, true);
    assert.equal(r.status, 400, `${rt.pattern}: ${r.text}`);
    assert.equal(r.json.error.code, 'unknown_parameter');
  }
  assert.equal(await auditSize(), size, 'no suppression was added');
  const check = await srv.req('GET', `/v1/suppressions/check?identifier=${encodeURIComponent('email:params-sup@example.com')}`,
    { token: srv.tokens.all });
  assert.equal(check.json.suppressed, false);
});

test('repeated and badly escaped parameters: 400 invalid_parameter, on every route that takes parameters', async () => {
  const size = await auditSize();
  for (const rt of routes().filter((x) => x.query.length > 0)) {
    const q = rt.query[0];
    for (const bad of [`?${q}=1&${q}=2`, `?${q}=%zz`, `?${q}=%00`]) {
      const r = await send(rt, bad);
      assert.equal(r.status, 400, `${rt.method} ${rt.pattern}${bad}: ${r.text}`);
      assert.equal(r.json.error.code, 'invalid_parameter', `${rt.method} ${rt.pattern}${bad}`);
      assert.equal(r.json.error.field, q);
    }
  }
  assert.equal(await auditSize(), size);
});

test('authentication comes first: no token is 401, a token without the scope 403, whatever the query', async () => {
  for (const rt of routes().filter((x) => x.scope !== 'public')) {
    const r = await send(rt, '?zz=1', null);
    assert.equal(r.status, 401, `${rt.method} ${rt.pattern}`);
  }
  const r = await srv.req('GET', '/v1/tokens?zz=1', { token: srv.tokens['audit:read'] });
  assert.equal(r.status, 403);
});

test('a parameter name is named in the error only when it looks like one, never when it could be personal data', async () => {
  let r = await srv.req('GET', '/healthz?x.y_z-1=1');
  assert.equal(r.json.error.field, 'x.y_z-1');
  r = await srv.req('GET', '/healthz?email%3Aana%40example.com=1');
  assert.equal(r.status, 400);
  assert.deepEqual(r.json.error, { code: 'unknown_parameter', message: 'unknown query parameter', field: null });
  r = await srv.req('GET', '/healthz?ana@example.com');
  assert.equal(r.json.error.field, null);
  assert.ok(!r.text.includes('ana'));
  const logs = srv.logs.join('\n');
  assert.ok(!logs.includes('ana%40') && !logs.includes('ana@'), 'not in the log either');
});
