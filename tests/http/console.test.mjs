// SPDX-License-Identifier: ISC
// The DPO console's sign-in: a dsr:admin token is exchanged for a session
// cookie (HttpOnly, SameSite=Strict, Path=/), which then stands for the
// token on the /v1 routes with the token's scopes; every write needs the
// session's CSRF token; revoking the token or signing out ends it; a refusal
// writes nothing; a shopper's session and a console session never stand in
// for each other. The last test runs the fault-injection build: a store that
// fails is a 503 and no session.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cli, createToken, startServer } from './harness.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { assert.equal((await srv.stop()).code, 0); });

async function auditSize(s = srv) {
  const r = await s.req('GET', '/v1/audit/entries?to=999999999', { token: s.tokens['audit:read'] });
  return Number(r.json.error.message.match(/holds (\d+)/)[1]);
}

// Signs in with TOKEN: the reply, the cookie pair ("name=value") and the CSRF token.
async function signIn(token, s = srv) {
  const r = await s.req('POST', '/admin/session', { token });
  const set = r.headers.get('set-cookie');
  return { r, set, cookie: set ? set.split(';')[0] : null, csrf: r.json?.csrf_token };
}

test('a token without dsr:admin, a bad token or none: no session, nothing written', async () => {
  const size = await auditSize();
  for (const [token, status] of [[undefined, 401], ['cmt_nonsense', 401], [`${srv.tokens.all}x`, 401],
    [srv.tokens['audit:read'], 403], [srv.tokens.admin, 403], [srv.tokens['consent:write'], 403]]) {
    const { r, set } = await signIn(token);
    assert.equal(r.status, status, r.text);
    assert.equal(set, null, 'no cookie on a refusal');
  }
  // A session never starts another.
  const ok = await signIn(srv.tokens['dsr:admin']);
  const again = await srv.req('POST', '/admin/session', { headers: { cookie: ok.cookie, 'x-csrf-token': ok.csrf } });
  assert.equal(again.status, 401);
  assert.equal(again.headers.get('set-cookie'), null);
  assert.equal(await auditSize(), size + 1, 'only the one sign-in was written');
});

test('the cookie is HttpOnly, SameSite=Strict, Path=/, short-lived; the answer holds no token', async () => {
  const { r, set, csrf } = await signIn(srv.tokens['dsr:admin']);
  assert.equal(r.status, 201, r.text);
  assert.match(set, /^consentd_console=[0-9a-f]{64}; /);
  for (const attr of ['HttpOnly', 'SameSite=Strict', 'Path=/'])
    assert.ok(set.split('; ').includes(attr), attr);
  assert.ok(!set.includes('Secure'), 'not Secure over plain http');
  const age = Number(set.match(/Max-Age=(\d+)/)[1]);
  assert.ok(age > 0 && age <= 3600, `Max-Age ${age}`);
  assert.equal(r.json.token, 'dsr-admin');
  assert.deepEqual(r.json.scopes, ['dsr:admin']);
  assert.match(csrf, /^[0-9a-f]{64}$/);
  assert.ok(!r.text.includes(srv.tokens['dsr:admin']), 'the token is not echoed');
  assert.ok(!r.text.includes(set.split(';')[0].split('=')[1]), 'nor the session id');
  // The server keeps only a keyed hash: no log line holds the id or the token.
  const id = set.split(';')[0].split('=')[1];
  assert.ok(!srv.logs.some((l) => l.includes(id) || l.includes(srv.tokens['dsr:admin'])));
});

test('a console session stands for its token on /v1 routes, with its scopes only', async () => {
  const { cookie, csrf } = await signIn(srv.tokens['dsr:admin']);
  const list = await srv.req('GET', '/v1/dsr', { headers: { cookie } });
  assert.equal(list.status, 200, list.text);
  const me = await srv.req('GET', '/admin/session', { headers: { cookie } });
  assert.equal(me.status, 200);
  assert.equal(me.json.csrf_token, csrf);
  // dsr:admin does not reach an admin route.
  const ob = await srv.req('GET', '/v1/outbox', { headers: { cookie } });
  assert.equal(ob.status, 403);
  assert.equal(ob.json.error.code, 'forbidden');
  // A token with dsr:admin and admin: the session reaches the outbox too.
  const both = createToken(srv.dir, 'dpo-both', ['dsr:admin', 'admin', 'audit:read', 'consent:read']);
  const s2 = await signIn(both);
  assert.equal((await srv.req('GET', '/v1/outbox', { headers: { cookie: s2.cookie } })).status, 200);
  // The audit log names the console session's actor.
  const e = await srv.req('POST', '/v1/dsr', { headers: { cookie: s2.cookie, 'x-csrf-token': s2.csrf },
    body: { type: 'access', identifier: 'email:console-actor@example.com' } });
  assert.equal(e.status, 201, e.text);
});

test('a write without the CSRF token, or with a wrong one, is 403 and writes nothing', async () => {
  const { cookie, csrf } = await signIn(srv.tokens['dsr:admin']);
  const size = await auditSize();
  const body = { type: 'access', identifier: 'email:console-csrf@example.com' };
  for (const h of [{}, { 'x-csrf-token': '' }, { 'x-csrf-token': csrf.replace(/.$/, (c) => (c === '0' ? '1' : '0')) },
    { 'x-csrf-token': `${csrf}0` }]) {
    const r = await srv.req('POST', '/v1/dsr', { headers: { cookie, ...h }, body });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json.error.code, 'csrf_token_invalid');
    assert.equal(r.json.error.field, 'X-CSRF-Token');
  }
  const d = await srv.req('DELETE', '/admin/session', { headers: { cookie } });
  assert.equal(d.status, 403);
  assert.equal(await auditSize(), size);
  const ok = await srv.req('POST', '/v1/dsr', { headers: { cookie, 'x-csrf-token': csrf }, body });
  assert.equal(ok.status, 201, ok.text);
});

test('sign-out ends the session; revoking the token ends its sessions', async () => {
  const a = await signIn(srv.tokens['dsr:admin']);
  const out = await srv.req('DELETE', '/admin/session', { headers: { cookie: a.cookie, 'x-csrf-token': a.csrf } });
  assert.equal(out.status, 200, out.text);
  assert.match(out.headers.get('set-cookie'), /^consentd_console=; .*Max-Age=0/);
  assert.equal((await srv.req('GET', '/v1/dsr', { headers: { cookie: a.cookie } })).status, 401);
  assert.equal((await srv.req('GET', '/admin/session', { headers: { cookie: a.cookie } })).status, 401);

  const tok = createToken(srv.dir, 'dpo-revoked', ['dsr:admin']);
  const b = await signIn(tok);
  assert.equal((await srv.req('GET', '/v1/dsr', { headers: { cookie: b.cookie } })).status, 200);
  assert.equal(cli(['token', 'revoke', '--data', srv.dir, 'dpo-revoked']).code, 0);
  assert.equal((await srv.req('GET', '/v1/dsr', { headers: { cookie: b.cookie } })).status, 401);
  // A forged id of the right shape is no session either.
  assert.equal((await srv.req('GET', '/v1/dsr', { headers: { cookie: `consentd_console=${'ab'.repeat(32)}` } })).status, 401);
});

test('an expired session is refused', async () => {
  const { cookie } = await signIn(srv.tokens['dsr:admin']);
  // Age the row past its end through the store's own tool.
  const dbtool = process.env.CONSENTD_DBTOOL;
  assert.ok(dbtool, 'CONSENTD_DBTOOL names build/tests/dbtool');
  const { spawnSync } = await import('node:child_process');
  const x = spawnSync(dbtool, ['sql', srv.dir, 'UPDATE console_sessions SET expires_at = 1'], { encoding: 'utf8' });
  assert.equal(x.status, 0, x.stderr);
  assert.equal((await srv.req('GET', '/v1/dsr', { headers: { cookie } })).status, 401);
  assert.equal((await srv.req('GET', '/admin/session', { headers: { cookie } })).status, 401);
});

test('a shopper session never reaches a DPO route, nor a console session a shopper route', async () => {
  const c = await srv.req('POST', '/v1/consents', { token: srv.tokens.all, body: {
    identifier: 'email:console-shopper@example.com', purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  const l = await srv.req('POST', `/v1/subjects/${c.json.subject_id}/preference-link`, { token: srv.tokens.all, body: {} });
  const res = await fetch(`${srv.url}/p/${l.json.url.split('/p/')[1]}`, { redirect: 'manual' });
  const shop = res.headers.get('set-cookie').split(';')[0];
  const sid = shop.split('=')[1];
  assert.equal((await srv.req('GET', '/v1/me', { headers: { cookie: shop } })).status, 200);
  for (const cookie of [shop, `consentd_console=${sid}`]) {
    assert.equal((await srv.req('GET', '/v1/dsr', { headers: { cookie } })).status, 401, cookie.slice(0, 18));
    assert.equal((await srv.req('GET', '/admin/session', { headers: { cookie } })).status, 401);
  }
  const con = await signIn(srv.tokens['dsr:admin']);
  const cid = con.cookie.split('=')[1];
  for (const cookie of [con.cookie, `consentd_session=${cid}`])
    assert.equal((await srv.req('GET', '/v1/me', { headers: { cookie } })).status, 401);
});

test('POST /v1/audit/verify runs the verifier and answers counts only', async () => {
  const r = await srv.req('POST', '/v1/audit/verify', { token: srv.tokens['audit:read'] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.ok, true);
  assert.equal(r.json.failed, 0);
  assert.ok(r.json.entries > 0 && r.json.passed > 0);
  assert.equal(r.json.first_bad_entry, null);
  assert.ok(!r.text.includes('@'), 'no identifier');
  assert.equal((await srv.req('POST', '/v1/audit/verify', { token: srv.tokens['dsr:admin'] })).status, 403);
});

test('with a failing store, sign-in is 503 and starts no session', async () => {
  const f = await startServer({ bin: process.env.CONSENTD_FAULTS_BIN });
  try {
    fs.writeFileSync(path.join(f.dir, 'FAULT'), 'write_ioerr');
    const { r, set } = await signIn(f.tokens['dsr:admin'], f);
    assert.equal(r.status, 503, r.text);
    assert.equal(set, null);
    fs.writeFileSync(path.join(f.dir, 'FAULT'), 'write_busy');
    assert.equal((await signIn(f.tokens['dsr:admin'], f)).r.status, 503);
    fs.rmSync(path.join(f.dir, 'FAULT'));
    const ok = await signIn(f.tokens['dsr:admin'], f);
    assert.equal(ok.r.status, 201);
    fs.writeFileSync(path.join(f.dir, 'FAULT'), 'read_ioerr');
    assert.equal((await f.req('GET', '/v1/dsr', { headers: { cookie: ok.cookie } })).status, 503);
    fs.writeFileSync(path.join(f.dir, 'FAULT'), 'write_ioerr');
    const out = await f.req('DELETE', '/admin/session', { headers: { cookie: ok.cookie, 'x-csrf-token': ok.csrf } });
    assert.equal(out.status, 503);
    assert.equal(out.headers.get('set-cookie'), null, 'the cookie stays while the session does');
    fs.rmSync(path.join(f.dir, 'FAULT'));
  } finally {
    fs.rmSync(path.join(f.dir, 'FAULT'), { force: true });
    await f.stop();
  }
});

test('under an https public URL the console cookie is also Secure', async () => {
  const s = await startServer({ args: ['--public-url', 'https://consent.example'] });
  try {
    const { r, set } = await signIn(s.tokens['dsr:admin'], s);
    assert.equal(r.status, 201, r.text);
    assert.ok(set.split('; ').includes('Secure'), set);
    assert.ok(set.split('; ').includes('HttpOnly'));
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});
