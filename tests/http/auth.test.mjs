// SPDX-License-Identifier: ISC
// Bearer-token authentication: the token matrix of every route that needs a
// token, against tokens of every scope, unknown, malformed and revoked ones;
// and that no token ever reaches the log.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SCOPES, cli, startServer } from './harness.mjs';

let srv;
// Hundreds of refused credentials from one address on purpose: the budget
// of failed authentications (ratelimit.test.mjs) is off here.
before(async () => { srv = await startServer({ args: ['--rate-auth-failures', '0'] }); });
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

// Each route that needs a token, and the scope it needs ('token' = any valid token).
const ROUTES = [
  ['GET', '/v1/tokens', 'admin'],
  ['GET', '/v1/token', 'token'],
  ['GET', '/metrics', 'token'],
];

test('no Authorization header: 401 with the error envelope and WWW-Authenticate', async () => {
  for (const [m, p] of ROUTES) {
    const r = await srv.req(m, p);
    assert.equal(r.status, 401, `${m} ${p}`);
    assert.equal(r.json.error.code, 'unauthorized');
    assert.equal(r.json.error.field, null);
    assert.match(r.headers.get('www-authenticate'), /^Bearer realm="consentd"/);
  }
});

test('malformed, unknown and wrong-scheme tokens: 401', async () => {
  const good = srv.tokens.all;
  const forged = good.slice(0, -4) + (good.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  const unknownSelector = 'cmt_0000000000000000_' + good.split('_').pop();
  const bad = [
    { authorization: 'Bearer' },
    { authorization: 'Bearer ' },
    { authorization: 'Bearer nonsense' },
    { authorization: `Basic ${good}` },
    { authorization: `Bearer ${good}x` },
    { authorization: `Bearer ${forged}` },
    { authorization: `Bearer ${unknownSelector}` },
  ];
  for (const headers of bad) {
    for (const [m, p] of ROUTES) {
      const r = await srv.req(m, p, { headers });
      assert.equal(r.status, 401, `${m} ${p} with ${headers.authorization.slice(0, 12)}…`);
    }
  }
});

test('the scheme name is case-insensitive', async () => {
  const r = await srv.req('GET', '/v1/token', { headers: { authorization: `bearer ${srv.tokens.all}` } });
  assert.equal(r.status, 200);
});

test('scope matrix: every scope against every route', async () => {
  for (const [m, p, need] of ROUTES) {
    for (const s of SCOPES) {
      const r = await srv.req(m, p, { token: srv.tokens[s] });
      const allowed = need === 'token' || need === s;
      assert.equal(r.status, allowed ? 200 : 403, `${m} ${p} with ${s}`);
      if (!allowed) {
        assert.equal(r.json.error.code, 'forbidden');
        assert.match(r.json.error.message, new RegExp(need));
      }
    }
    const r = await srv.req(m, p, { token: srv.tokens.all });
    assert.equal(r.status, 200, `${m} ${p} with every scope`);
  }
});

// Whether a token of scope HAVE may call a route that needs NEED: scopes
// imply nothing, except that consent:read includes consent:check.
const grants = (have, need) => need === 'public' || need === 'token' || have === need ||
  (have === 'consent:read' && need === 'consent:check');

test('scope matrix over every route of the route table: 403 exactly when the scope does not grant it', async () => {
  const routes = cli(['routes']).stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 3));
  assert.ok(routes.length >= 31);
  const fill = (p) => p.replace('{id}', 'sub_aaaaaaaaaaaaaaaaaaaaaaaaaa')
    .replace('{identifier}', encodeURIComponent('email:nobody-scope@example.com'));
  for (const [m, pattern, need] of routes) {
    for (const s of SCOPES) {
      const r = await srv.req(m, fill(pattern), { token: srv.tokens[s] });
      if (need === 'session' || need === 'console') {
        // A preference-centre or console-session route: no bearer token stands for a session.
        assert.equal(r.status, 401, `${m} ${pattern} with ${s}: ${r.text}`);
        continue;
      }
      if (grants(s, need)) {
        assert.notEqual(r.status, 403, `${m} ${pattern} with ${s}`);
        assert.notEqual(r.status, 401, `${m} ${pattern} with ${s}`);
      } else {
        assert.equal(r.status, 403, `${m} ${pattern} with ${s}: ${r.text}`);
        assert.equal(r.json.error.code, 'forbidden');
      }
    }
  }
});

test('least privilege: consent:check reaches the checks and nothing else; the customer record needs subjects:read', async () => {
  const routes = Object.fromEntries(cli(['routes']).stdout.trim().split('\n')
    .map((l) => l.split(/\s+/)).map(([m, p, s]) => [`${m} ${p}`, s]));
  assert.deepEqual(Object.keys(routes).filter((k) => routes[k] === 'consent:check').sort(),
    ['GET /v1/consent/check', 'GET /v1/suppressions/check', 'POST /v1/consent/check']);
  assert.equal(routes['GET /v1/subjects/{id}'], 'subjects:read');
  assert.equal(routes['GET /v1/subjects/resolve'], 'consent:read');
  for (const k of ['GET /v1/subjects/{id}/consents', 'GET /v1/subjects/{id}/preferences',
    'GET /v1/reports/unsubscribe-reasons', 'GET /v1/reports/holdout'])
    assert.equal(routes[k], 'consent:read', k);
  // A real subject: what a check token and a read token may see of it.
  const w = await srv.req('POST', '/v1/consents', { token: srv.tokens.all, body: { identifier: 'email:scoped@example.com',
    purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(w.status, 201, w.text);
  const sid = w.json.subject_id;
  const q = `identifier=${encodeURIComponent('email:scoped@example.com')}`;
  for (const tok of [srv.tokens['consent:check'], srv.tokens['consent:read']]) {
    assert.equal((await srv.req('GET', `/v1/consent/check?${q}&purpose=newsletter&channel=email`, { token: tok })).json.decision, 'allow');
    assert.equal((await srv.req('GET', `/v1/suppressions/check?${q}`, { token: tok })).status, 200);
    assert.equal((await srv.req('POST', '/v1/consent/check', { token: tok,
      body: { checks: [{ identifier: 'email:scoped@example.com', purpose: 'newsletter', channel: 'email' }] } })).status, 200);
    assert.equal((await srv.req('GET', `/v1/subjects/${sid}`, { token: tok })).status, 403, 'the customer record');
  }
  for (const p of [`/v1/subjects/resolve?${q}`, `/v1/subjects/${sid}/consents`, `/v1/subjects/${sid}/preferences`])
    assert.equal((await srv.req('GET', p, { token: srv.tokens['consent:check'] })).status, 403, p);
  const rec = await srv.req('GET', `/v1/subjects/${sid}`, { token: srv.tokens['subjects:read'] });
  assert.equal(rec.status, 200);
  assert.deepEqual(rec.json.identifiers.map((i) => i.identifier ?? i), ['email:scoped@example.com']);
});

test('GET /v1/token reports the caller; GET /v1/tokens never shows a token', async () => {
  const me = await srv.req('GET', '/v1/token', { token: srv.tokens['audit:read'] });
  assert.deepEqual(me.json, { name: 'audit-read', scopes: ['audit:read'] });
  const list = await srv.req('GET', '/v1/tokens', { token: srv.tokens.admin });
  assert.equal(list.status, 200);
  const names = list.json.tokens.map((t) => t.name).sort();
  assert.deepEqual(names, ['admin', 'all', 'audit-read', 'consent-check', 'consent-read', 'consent-write',
    'dsr-admin', 'subjects-read', 'subjects-write']);
  for (const tok of Object.values(srv.tokens)) assert.ok(!list.text.includes(tok));
  for (const t of list.json.tokens) {
    assert.deepEqual(Object.keys(t).sort(), ['created_at', 'name', 'revoked_at', 'scopes']);
    assert.match(t.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  }
});

test('a token revoked on the command line is refused on the next request', async () => {
  const tok = cli(['token', 'create', '--data', srv.dir, '--name', 'short-lived', '--scopes', 'admin']).stdout.trim();
  assert.equal((await srv.req('GET', '/v1/tokens', { token: tok })).status, 200);
  const r = cli(['token', 'revoke', '--data', srv.dir, 'short-lived']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await srv.req('GET', '/v1/tokens', { token: tok })).status, 401);
  const list = await srv.req('GET', '/v1/tokens', { token: srv.tokens.admin });
  const entry = list.json.tokens.find((t) => t.name === 'short-lived');
  assert.match(entry.revoked_at, /Z$/);
});

test('--replace issues a new token and revokes the old one at once', async () => {
  const a = cli(['token', 'create', '--data', srv.dir, '--name', 'rot', '--scopes', 'admin']).stdout.trim();
  const b = cli(['token', 'create', '--data', srv.dir, '--name', 'rot', '--scopes', 'admin', '--replace']).stdout.trim();
  assert.notEqual(a, b);
  assert.equal((await srv.req('GET', '/v1/token', { token: a })).status, 401);
  assert.equal((await srv.req('GET', '/v1/token', { token: b })).status, 200);
});

test('public routes ignore a bad token', async () => {
  for (const p of ['/healthz', '/readyz', '/v1/policy', '/.well-known/gpc.json']) {
    const r = await srv.req('GET', p, { headers: { authorization: 'Bearer nonsense' } });
    assert.equal(r.status, 200, p);
  }
});

test('the access log holds route patterns and token names, never a token', async () => {
  await srv.req('GET', '/v1/token', { token: srv.tokens.all });
  const log = srv.logs.join('\n');
  for (const tok of Object.values(srv.tokens)) assert.ok(!log.includes(tok), 'token in log');
  assert.ok(!log.includes('cmt_'), 'token prefix in log');
  const lines = srv.logs.map((l) => JSON.parse(l));
  const hit = lines.find((l) => l.event === 'http' && l.route === '/v1/token' && l.status === 200);
  assert.ok(hit, 'access line for /v1/token');
  assert.equal(hit.client, 'all');
  assert.equal(hit.method, 'GET');
  assert.equal(typeof hit.us, 'number');
});

test('token create takes the new scopes, token list shows them, an unknown scope lists them all', () => {
  const t = cli(['token', 'create', '--data', srv.dir, '--name', 'checker', '--scopes', 'consent:check,subjects:read']);
  assert.equal(t.code, 0, t.stderr);
  const list = cli(['token', 'list', '--data', srv.dir]);
  assert.match(list.stdout, /checker\s.*consent:check,subjects:read/);
  assert.match(list.stdout, /consent-read\s.*consent:read(\s|$)/m);
  const bad = cli(['token', 'create', '--data', srv.dir, '--name', 'x', '--scopes', 'consent:nope']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /consent:check.*subjects:read/);
});
