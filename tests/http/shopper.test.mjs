// SPDX-License-Identifier: ISC
// The shopper's way in (SPEC §7 "Shopper", §10): signed preference-centre
// links and the RFC 8058 header values, one-click unsubscribe, the session
// a good link starts and the /v1/me API it opens, CSRF, the Global Privacy
// Control signal, and the pages and assets served from --web. A link that
// does not hold, and a write without the session's CSRF token, write
// nothing: the audit log keeps its size.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, cli, rawRequest, startServer, tmpdir } from './harness.mjs';

const WEB = path.join(ROOT, 'web');
let srv;
let SW;
let CW;
let CR;
let DPO;
before(async () => {
  srv = await startServer({ args: ['--web', WEB] });
  SW = srv.tokens['subjects:write'];
  CW = srv.tokens['consent:write'];
  CR = srv.tokens['consent:read'];
  DPO = srv.tokens['dsr:admin'];
});
// After every flow here (links, one-click, sessions, GPC, revocation,
// erasure), the log verifies and the state is what it says.
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0);
  const v = cli(['audit', 'verify', '--data', srv.dir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /^\d+ passed, 0 failed$/m);
});

let seq = 0;
const email = () => `email:shopper${process.pid}x${++seq}@example.com`;

async function auditSize(s = srv) {
  const r = await s.req('GET', '/v1/audit/entries?to=999999999', { token: s.tokens['audit:read'] });
  return Number(r.json.error.message.match(/holds (\d+)/)[1]);
}
async function grant(identifier, purpose = 'newsletter', channel = 'email', method = 'web_form') {
  const r = await srv.req('POST', '/v1/consents', { token: CW,
    body: { identifier, purpose, channel, state: 'granted', method } });
  assert.equal(r.status, 201, r.text);
  return r.json.subject_id;
}
async function check(identifier, purpose = 'newsletter', channel = 'email', s = srv) {
  const q = new URLSearchParams({ identifier, purpose, channel });
  const r = await s.req('GET', `/v1/consent/check?${q}`, { token: s.tokens['consent:read'] });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
async function link(sid, body = {}, s = srv) {
  const r = await s.req('POST', `/v1/subjects/${sid}/preference-link`, { token: SW, body });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
// A granted subject with a fresh link: [identifier, subject id, link answer].
async function shopper() {
  const e = email();
  const sid = await grant(e);
  return [e, sid, await link(sid)];
}
const tokenOf = (url) => url.slice(url.lastIndexOf('/') + 1);
// GET /p/{token} without following the redirect.
async function open(s, token, headers = {}) {
  const res = await fetch(`${s.url}/p/${token}`, { redirect: 'manual', headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
const cookieOf = (res) => res.headers.get('set-cookie')?.match(/consentd_session=([0-9a-f]{64})/)?.[1];
// A session for SID: its cookie header and CSRF token.
async function session(sid, s = srv) {
  const l = await link(sid, {}, s);
  const res = await open(s, tokenOf(l.url));
  assert.equal(res.status, 303, res.text);
  const cookie = `consentd_session=${cookieOf(res)}`;
  const me = await s.req('GET', '/v1/me', { headers: { cookie } });
  assert.equal(me.status, 200, me.text);
  return { cookie, csrf: me.json.csrf_token, me: me.json };
}
const unsubBody = 'List-Unsubscribe=One-Click';
const form = { 'content-type': 'application/x-www-form-urlencoded' };

test('a preference link: signed URL, expiry, and the RFC 8058 header values; no identifier in it', async () => {
  const [e, sid, l] = await shopper();
  assert.match(l.url, new RegExp(`^${srv.url}/p/p\\.[a-z2-7]{26}\\.\\d+\\.0\\.[0-9a-f]{64}$`));
  assert.ok(!l.url.includes(e.split(':')[1].split('@')[0]), 'the identifier is not in the link');
  const exp = Date.parse(l.expires_at);
  assert.ok(Math.abs(exp - (Date.now() + 30 * 86400e3)) < 60e3, 'default: 30 days');
  const u = tokenOf(l.unsubscribe_url);
  assert.equal(l.list_unsubscribe,
    `<${srv.url}/u/${u}>, <mailto:privacy@northwind-threads.example?subject=unsubscribe>`);
  assert.equal(l.list_unsubscribe_post, 'List-Unsubscribe=One-Click');
  assert.notEqual(u, tokenOf(l.url), 'the unsubscribe link is not the preference link');
  const short = await link(sid, { ttl_seconds: 600 });
  assert.ok(Math.abs(Date.parse(short.expires_at) - (Date.now() + 600e3)) < 60e3);
});

test('ttl_seconds outside 300 to 34560000, an unknown field, scope and subject are refused', async () => {
  const [, sid] = await shopper();
  for (const ttl of [0, 299, 34560001, '600', 1.5, null]) {
    const r = await srv.req('POST', `/v1/subjects/${sid}/preference-link`, { token: SW, body: { ttl_seconds: ttl } });
    assert.equal(r.status, 400, `${ttl}: ${r.text}`);
    assert.equal(r.json.error.field, 'ttl_seconds');
  }
  const unk = await srv.req('POST', `/v1/subjects/${sid}/preference-link`, { token: SW, body: { ttl: 600 } });
  assert.equal(unk.status, 400);
  assert.equal(unk.json.error.code, 'unknown_field');
  const scope = await srv.req('POST', `/v1/subjects/${sid}/preference-link`, { token: CW, body: {} });
  assert.equal(scope.status, 403);
  const none = await srv.req('POST', '/v1/subjects/sub_aaaaaaaaaaaaaaaaaaaaaaaaaa/preference-link', { token: SW, body: {} });
  assert.equal(none.status, 404);
});

test('a good link starts a session: 303 to /preferences, HttpOnly SameSite=Strict cookie, no Secure over http', async () => {
  const [e, sid, l] = await shopper();
  const res = await open(srv, tokenOf(l.url));
  assert.equal(res.status, 303);
  assert.equal(res.headers.get('location'), '/preferences');
  const sc = res.headers.get('set-cookie');
  assert.match(sc, /^consentd_session=[0-9a-f]{64}; /);
  const attrs = sc.split(';').map((x) => x.trim().toLowerCase());
  for (const a of ['httponly', 'samesite=strict', 'path=/']) assert.ok(attrs.includes(a), `${a} in ${sc}`);
  assert.ok(!attrs.includes('secure'), 'not Secure over plain http');
  assert.ok(attrs.some((a) => /^max-age=\d+$/.test(a) && Number(a.slice(8)) <= 3600), 'short-lived');
  const me = await srv.req('GET', '/v1/me', { headers: { cookie: `consentd_session=${cookieOf(res)}` } });
  assert.equal(me.status, 200, me.text);
  assert.match(me.json.csrf_token, /^[0-9a-f]{64}$/);
  assert.equal(me.json.state, 'active');
  assert.equal(me.json.preferences.topics.new_arrivals, true);
  assert.equal(me.json.preferences.subject_id, undefined);
  assert.ok(me.json.consents.some((c) => c.purpose === 'newsletter' && c.state === 'granted'));
  const local = e.split(':')[1].split('@')[0];
  assert.equal(me.json.identifiers.length, 1);
  assert.equal(me.json.identifiers[0].masked, `email:s***@example.com`);
  assert.ok(!me.text.includes(local), 'the identifier is masked');
  assert.equal(me.json.gpc.signal, false);
  assert.deepEqual(me.json.gpc.purposes, ['ad_audiences']);
});

test('tampered, malformed and wrong-kind links: a friendly page, a 4xx, no session, nothing written', async () => {
  const [, , l] = await shopper();
  const t = tokenOf(l.url);
  const flip = (s, i) => s.slice(0, i) + (s[i] === 'a' ? 'b' : 'a') + s.slice(i + 1);
  const parts = t.split('.');
  const bad = [
    flip(t, t.length - 1),                                        // the MAC
    [parts[0], flip(parts[1], 3), ...parts.slice(2)].join('.'),   // the subject
    [parts[0], parts[1], String(Number(parts[2]) + 86400), ...parts.slice(3)].join('.'), // the expiry
    [parts[0], parts[1], parts[2], '1', parts[4]].join('.'),      // the generation
    tokenOf(l.unsubscribe_url),                                   // a one-click link
    'nonsense', `${t}.x`, t.toUpperCase(),
  ];
  const size = await auditSize();
  for (const b of bad) {
    const res = await open(srv, b);
    assert.equal(res.status, 404, b);
    assert.equal(res.headers.get('set-cookie'), null, b);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(res.text, /This link cannot be used/);
    assert.match(res.headers.get('content-security-policy'), /default-src 'self'/);
  }
  assert.equal(await auditSize(), size, 'nothing was written');
});

test('revoked links fail with 410 and no session; sessions they started end; a new link works', async () => {
  const [, sid, l] = await shopper();
  const s = await session(sid);
  const size = await auditSize();
  const r = await srv.req('DELETE', `/v1/subjects/${sid}/preference-links`, { token: SW });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.generation, 1);
  assert.equal(await auditSize(), size + 1, 'the revocation is in the log');
  const size2 = await auditSize();
  const res = await open(srv, tokenOf(l.url));
  assert.equal(res.status, 410);
  assert.equal(res.headers.get('set-cookie'), null);
  assert.match(res.text, /no longer valid/);
  const u = await srv.req('POST', `/u/${tokenOf(l.unsubscribe_url)}`, { raw: unsubBody, headers: form });
  assert.equal(u.status, 410);
  assert.equal(await auditSize(), size2, 'nothing was written');
  assert.equal((await srv.req('GET', '/v1/me', { headers: { cookie: s.cookie } })).status, 401, 'the session ended');
  const fresh = await link(sid);
  assert.match(fresh.url, /\.1\.[0-9a-f]{64}$/);
  assert.equal((await open(srv, tokenOf(fresh.url))).status, 303);
});

test('GET /u/{token} shows a confirmation form and never changes state', async () => {
  const [e, , l] = await shopper();
  const size = await auditSize();
  for (let i = 0; i < 3; i++) {
    const r = await srv.req('GET', `/u/${tokenOf(l.unsubscribe_url)}`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.text, new RegExp(`<form method="post" action="/u/${tokenOf(l.unsubscribe_url).replace(/\./g, '\\.')}">`));
    assert.match(r.text, /name="List-Unsubscribe" value="One-Click"/);
    assert.ok(!/<script/i.test(r.text), 'no script');
  }
  const head = await fetch(`${srv.url}/u/${tokenOf(l.unsubscribe_url)}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await auditSize(), size, 'nothing was written');
  assert.equal((await check(e)).decision, 'allow');
  const bad = await srv.req('GET', `/u/${tokenOf(l.url)}`);
  assert.equal(bad.status, 404, 'a preference link is not a one-click link');
});

test('POST /u/{token} with List-Unsubscribe=One-Click withdraws at once: 200, no redirect, check denies, audited', async () => {
  const [e, sid, l] = await shopper();
  const offers = await grant(e, 'email_offers');
  assert.equal(offers, sid);
  assert.equal((await check(e)).decision, 'allow');
  const size = await auditSize();
  const r = await fetch(`${srv.url}/u/${tokenOf(l.unsubscribe_url)}`, { method: 'POST', redirect: 'manual',
    headers: form, body: unsubBody });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('location'), null);
  assert.equal(r.headers.get('set-cookie'), null);
  assert.equal((await r.text()).trim(), 'unsubscribed');
  for (const p of ['newsletter', 'email_offers']) {
    const c = await check(e, p);
    assert.equal(c.decision, 'deny', p);
    assert.equal(c.reason, 'withdrawn', p);
  }
  assert.equal((await check(e, 'order_updates')).decision, 'allow', 'order updates still reach them');
  assert.ok(await auditSize() > size, 'the withdrawal is in the audit log');
  const hist = await srv.req('GET', `/v1/subjects/${sid}/consents?history=true`, { token: CR });
  assert.ok(hist.json.events.some((ev) => ev.method === 'email_link' && ev.state === 'withdrawn'));
});

test('one-click also takes multipart/form-data, as some mailbox providers send it', async () => {
  const [e, , l] = await shopper();
  const fd = new FormData();
  fd.append('List-Unsubscribe', 'One-Click');
  const r = await fetch(`${srv.url}/u/${tokenOf(l.unsubscribe_url)}`, { method: 'POST', body: fd });
  assert.equal(r.status, 200, await r.text());
  assert.equal((await check(e)).decision, 'deny');
});

test('a one-click POST that does not hold writes nothing: bad link, wrong body, wrong type', async () => {
  const [e, , l] = await shopper();
  const u = tokenOf(l.unsubscribe_url);
  const size = await auditSize();
  const cases = [
    [`${u.slice(0, -1)}${u.endsWith('a') ? 'b' : 'a'}`, unsubBody, form, 404],
    [tokenOf(l.url), unsubBody, form, 404],
    [u, 'List-Unsubscribe=Yes', form, 400],
    [u, '', form, 400],
    [u, unsubBody, { 'content-type': 'text/plain' }, 415],
    [u, JSON.stringify({ 'List-Unsubscribe': 'One-Click' }), { 'content-type': 'application/json' }, 415],
  ];
  for (const [t, body, headers, want] of cases) {
    const r = await srv.req('POST', `/u/${t}`, { raw: body, headers });
    assert.equal(r.status, want, `${t} ${body}: ${r.text}`);
    assert.match(r.headers.get('content-type'), /^text\/plain/);
  }
  assert.equal(await auditSize(), size, 'nothing was written');
  assert.equal((await check(e)).decision, 'allow');
});

test('every session write needs the CSRF token: missing or wrong is 403 and nothing is written', async () => {
  const [e, sid] = await shopper();
  const s = await session(sid);
  const size = await auditSize();
  const writes = [
    ['PUT', '/v1/me/preferences', { topics: { new_arrivals: false } }],
    ['POST', '/v1/me/unsubscribe', { reason: 'privacy' }],
    ['POST', '/v1/me/requests', { type: 'erasure' }],
    ['POST', '/v1/me/logout', undefined],
  ];
  for (const [m, p, body] of writes) {
    for (const csrf of [undefined, '0'.repeat(64), s.csrf.slice(0, 63), `${s.csrf}0`]) {
      const headers = { cookie: s.cookie };
      if (csrf !== undefined) headers['x-csrf-token'] = csrf;
      const r = await srv.req(m, p, { headers, body });
      assert.equal(r.status, 403, `${m} ${p} ${csrf}: ${r.text}`);
      assert.equal(r.json.error.code, 'csrf_token_invalid');
    }
  }
  // Another session's token is no token for this one.
  const other = await session(sid);
  const r = await srv.req('PUT', '/v1/me/preferences', { headers: { cookie: s.cookie, 'x-csrf-token': other.csrf },
    body: { topics: { new_arrivals: false } } });
  assert.equal(r.status, 403);
  assert.equal(await auditSize(), size, 'nothing was written');
  assert.equal((await check(e)).decision, 'allow');
  assert.equal((await srv.req('GET', '/v1/me', { headers: { cookie: s.cookie } })).status, 200, 'still signed in');
});

test('without a session /v1/me is 401', async () => {
  for (const cookie of [undefined, 'consentd_session=', `consentd_session=${'a'.repeat(64)}`, 'consentd_session=../../x']) {
    const r = await srv.req('GET', '/v1/me', { headers: cookie ? { cookie } : {} });
    assert.equal(r.status, 401, `${cookie}`);
    assert.equal(r.json.error.code, 'unauthorized');
  }
  const bearer = await srv.req('GET', '/v1/me', { token: srv.tokens.all });
  assert.equal(bearer.status, 401, 'an API token is not a session');
});

test('the session changes preferences, unsubscribes with a reason, and check follows at once', async () => {
  const [e, sid] = await shopper();
  await grant(e, 'email_offers');
  const s = await session(sid);
  const h = { cookie: s.cookie, 'x-csrf-token': s.csrf };
  const bad = await srv.req('PUT', '/v1/me/preferences', { headers: h, body: { topics: { nope: true } } });
  assert.equal(bad.status, 422);
  const put = await srv.req('PUT', '/v1/me/preferences', { headers: h, body: { topics: { new_arrivals: false }, frequency: 'monthly' } });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.topics.new_arrivals, false);
  assert.equal(put.json.frequency, 'monthly');
  assert.equal((await check(e)).decision, 'deny');
  assert.equal((await check(e, 'email_offers')).decision, 'allow');
  const hist = await srv.req('GET', `/v1/subjects/${sid}/consents?history=true`, { token: CR });
  assert.ok(hist.json.events.some((ev) => ev.method === 'preference_center' && ev.purpose === 'newsletter'));
  const badReason = await srv.req('POST', '/v1/me/unsubscribe', { headers: h, body: { reason: 'bored' } });
  assert.equal(badReason.status, 400);
  assert.equal(badReason.json.error.field, 'reason');
  const un = await srv.req('POST', '/v1/me/unsubscribe', { headers: h, body: { reason: 'too_frequent', comment: 'x' } });
  assert.equal(un.status, 200, un.text);
  assert.ok(un.json.purposes_withdrawn >= 2);
  assert.equal((await check(e, 'email_offers')).decision, 'deny');
});

test('requests through the session start verified, with the shopper in the timeline; access is processed at once', async () => {
  const [, sid] = await shopper();
  const s = await session(sid);
  const h = { cookie: s.cookie, 'x-csrf-token': s.csrf };
  for (const type of ['rectification', 'nonsense']) {
    const r = await srv.req('POST', '/v1/me/requests', { headers: h, body: { type } });
    assert.equal(r.status, 422, type);
  }
  const a = await srv.req('POST', '/v1/me/requests', { headers: h, body: { type: 'access' } });
  assert.equal(a.status, 201, a.text);
  // The session verified the person; an access request then needs no
  // judgement, so it is processed at once and its package is ready.
  assert.equal(a.json.status, 'completed');
  assert.equal(a.json.type, 'access');
  assert.equal(a.json.subject_id, undefined);
  // An erasure cannot be undone: it waits, verified, for the DPO; asking
  // again returns the open one.
  const e = await srv.req('POST', '/v1/me/requests', { headers: h, body: { type: 'erasure' } });
  assert.equal(e.status, 201, e.text);
  assert.equal(e.json.status, 'verified');
  const again = await srv.req('POST', '/v1/me/requests', { headers: h, body: { type: 'erasure' } });
  assert.equal(again.status, 200);
  assert.equal(again.json.id, e.json.id);
  const dpo = await srv.req('GET', `/v1/dsr/${a.json.id}`, { token: DPO });
  assert.equal(dpo.json.subject_id, sid);
  assert.equal(dpo.json.source, 'preference_center');
  // Every step of the request is the shopper's; the outbox may already
  // have sent the package's message (its own step, when it is that quick).
  const tl = JSON.stringify(dpo.json.timeline);
  const own = dpo.json.timeline.filter((t) => t.actor !== 'outbox');
  assert.deepEqual(own.map((t) => t.step), ['received', 'verified', 'in_progress', 'package_ready', 'completed'], tl);
  assert.ok(own.every((t) => t.actor === 'shopper'), tl);
  assert.ok(dpo.json.timeline.filter((t) => t.actor === 'outbox')
    .every((t) => ['message_sent', 'message_failed'].includes(t.step)), tl);
  const list = await srv.req('GET', '/v1/me/requests', { headers: { cookie: s.cookie } });
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.requests.map((r) => r.id).sort(), [a.json.id, e.json.id].sort());
});

test('logout ends the session on the server', async () => {
  const [, sid] = await shopper();
  const s = await session(sid);
  const r = await srv.req('POST', '/v1/me/logout', { headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('set-cookie'), /consentd_session=; .*Max-Age=0/);
  assert.equal((await srv.req('GET', '/v1/me', { headers: { cookie: s.cookie } })).status, 401);
});

test('Sec-GPC: 1 withdraws the gpc purposes once; the person\'s later grant wins', async () => {
  const e = email();
  const sid = await grant(e, 'ad_audiences', 'ads');
  assert.equal((await check(e, 'ad_audiences', 'ads')).decision, 'allow');
  const l = await link(sid);
  const res = await open(srv, tokenOf(l.url), { 'sec-gpc': '1' });
  assert.equal(res.status, 303);
  const c = await check(e, 'ad_audiences', 'ads');
  assert.equal(c.decision, 'deny');
  assert.equal(c.reason, 'withdrawn');
  const cookie = `consentd_session=${cookieOf(res)}`;
  const me = await srv.req('GET', '/v1/me', { headers: { cookie, 'sec-gpc': '1' } });
  assert.equal(me.json.gpc.signal, true);
  assert.equal(me.json.gpc.honoured, true);
  // The person grants again, explicitly: a later GPC request does not undo it.
  await grant(e, 'ad_audiences', 'ads');
  const put = await srv.req('PUT', '/v1/me/preferences', { headers: { cookie, 'x-csrf-token': me.json.csrf_token, 'sec-gpc': '1' },
    body: { frequency: 'weekly' } });
  assert.equal(put.status, 200, put.text);
  assert.equal((await check(e, 'ad_audiences', 'ads')).decision, 'allow');
  const hist = await srv.req('GET', `/v1/subjects/${sid}/consents?history=true`, { token: CR });
  assert.equal(hist.json.events.filter((ev) => ev.method === 'gpc').length, 1);
});

test('an erased subject\'s links fail with 410 and no session', async () => {
  const [e, sid, l] = await shopper();
  const s = await session(sid);
  const d = await srv.req('POST', '/v1/dsr', { token: DPO, body: { type: 'erasure', identifier: e, verified: true } });
  assert.equal(d.status, 201, d.text);
  const p = await srv.req('POST', `/v1/dsr/${d.json.id}/process`, { token: DPO });
  assert.equal(p.status, 200, p.text);
  const size = await auditSize();
  const res = await open(srv, tokenOf(l.url));
  assert.equal(res.status, 410);
  assert.equal(res.headers.get('set-cookie'), null);
  const u = await srv.req('POST', `/u/${tokenOf(l.unsubscribe_url)}`, { raw: unsubBody, headers: form });
  assert.equal(u.status, 410);
  // The refused link and unsubscribe wrote nothing. The erasure's own
  // follow-up (its outbox work) may still append, later on a loaded machine.
  const after = await auditSize();
  if (after > size) {
    const r = await srv.req('GET', `/v1/audit/entries?from=${size}&to=${after}`, { token: srv.tokens['audit:read'] });
    assert.equal(r.status, 200, r.text);
    const types = r.text.trim().split('\n').map((x) => JSON.parse(Buffer.from(JSON.parse(x).entry, 'base64')).type);
    for (const t of types)
      assert.ok(!['consent.recorded', 'preferences.updated', 'subject.unsubscribed', 'console.signin',
        'profile.updated', 'suppression.added'].includes(t), `written after the 410s: ${types}`);
  }
  assert.equal((await srv.req('GET', '/v1/me', { headers: { cookie: s.cookie } })).status, 401);
  const again = await srv.req('POST', `/v1/subjects/${sid}/preference-link`, { token: SW, body: {} });
  assert.equal(again.status, 409);
});

test('/preferences and /static/: strict CSP, nosniff, no-referrer, ETag and 304', async () => {
  const r = await srv.req('GET', '/preferences');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html; charset=utf-8/);
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /(^|; )default-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'));
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
  assert.ok(!/<script>|<script [^>]*>[^<]/i.test(r.text) && !/\son\w+=/i.test(r.text), 'no inline script');
  assert.ok(!/https?:\/\//.test(r.text), 'nothing from another origin');
  const etag = r.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  const again = await srv.req('GET', '/preferences', { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  const css = await srv.req('GET', '/static/prefs.css');
  assert.equal(css.status, 200);
  assert.match(css.headers.get('content-type'), /^text\/css/);
  assert.match(css.headers.get('content-security-policy'), /default-src 'self'/);
  const js = await srv.req('GET', '/static/prefs.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
});

test('no path outside --web DIR/static can be read', async () => {
  const web = tmpdir('consentd-web-');
  fs.mkdirSync(path.join(web, 'static'));
  fs.writeFileSync(path.join(web, 'static', 'ok.css'), 'body{}');
  fs.writeFileSync(path.join(web, 'secret.txt'), 'SECRET-OUTSIDE');
  fs.writeFileSync(path.join(web, 'static', '.hidden.css'), 'SECRET-HIDDEN');
  fs.writeFileSync(path.join(web, 'static', 'notes.conf'), 'SECRET-TYPE');
  fs.symlinkSync(path.join(web, 'secret.txt'), path.join(web, 'static', 'link.txt'));
  fs.symlinkSync('/etc/passwd', path.join(web, 'static', 'passwd.txt'));
  const s = await startServer({ args: ['--web', web] });
  try {
    assert.equal((await s.req('GET', '/static/ok.css')).status, 200);
    const tries = ['/static/..%2Fsecret.txt', '/static/%2e%2e%2fsecret.txt', '/static/..%2f..%2fetc%2fpasswd',
      '/static/.hidden.css', '/static/notes.conf', '/static/link.txt', '/static/passwd.txt',
      '/static/%2Fetc%2Fpasswd', '/static/..', '/static/ok.css%00.txt', '/static/secret.txt'];
    for (const p of tries) {
      const r = await s.req('GET', p);
      assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
      assert.ok(!r.text.includes('SECRET') && !r.text.includes('root:'), p);
    }
    for (const p of ['/static/../secret.txt', '/static/../../../../etc/passwd', '/static//secret.txt']) {
      const raw = await rawRequest(s.port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 40[04] /, p);
      assert.ok(!raw.includes('SECRET') && !raw.includes('root:'), p);
    }
    // No preferences.html in this DIR: a plain 404 page.
    assert.equal((await s.req('GET', '/preferences')).status, 404);
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});

test('behind https (--public-url) links use it and the session cookie is Secure', async () => {
  const s = await startServer({ args: ['--web', WEB, '--public-url', 'https://prefs.example.com/'] });
  try {
    const e = email();
    const g = await s.req('POST', '/v1/consents', { token: s.tokens['consent:write'],
      body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
    const r = await s.req('POST', `/v1/subjects/${g.json.subject_id}/preference-link`, { token: s.tokens['subjects:write'], body: {} });
    assert.match(r.json.url, /^https:\/\/prefs\.example\.com\/p\//);
    assert.match(r.json.list_unsubscribe, /^<https:\/\/prefs\.example\.com\/u\//);
    const res = await open(s, tokenOf(r.json.url));
    assert.equal(res.status, 303);
    assert.ok(res.headers.get('set-cookie').split(';').map((x) => x.trim()).includes('Secure'));
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});

test('--public-url must be an http(s) base without query or header-breaking characters', async () => {
  for (const u of ['ftp://x', 'https://', 'https://x/?a=1', 'https://x/>', 'https://x y', 'javascript:alert(1)']) {
    const r = cli(['serve', '--data', tmpdir(), '--public-url', u]);
    assert.equal(r.code, 64, `${u}: ${r.stderr}`);
    assert.match(r.stderr, /--public-url/);
  }
});

// The test build (build/tests/consentd-faults) on the same store: its clock
// runs CONSENTD_FAULT_CLOCK_SKEW seconds ahead, and DATA/FAULT makes the
// store fail.
async function faultServer(data, tokens, env = {}) {
  const s = await startServer({ bin: process.env.CONSENTD_FAULTS_BIN, data, noTokens: true, args: ['--web', WEB], env });
  s.tokens = tokens;
  return s;
}

test('expired links fail with 410 and no session, and sessions end when their time is up', async () => {
  const base = await startServer({ args: ['--web', WEB] });
  let l;
  let cookie;
  let e;
  try {
    e = `email:expiry${process.pid}@example.com`;
    const g = await base.req('POST', '/v1/consents', { token: base.tokens['consent:write'],
      body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
    const sid = g.json.subject_id;
    l = (await base.req('POST', `/v1/subjects/${sid}/preference-link`, { token: base.tokens['subjects:write'],
      body: { ttl_seconds: 300 } })).json;
    const other = (await base.req('POST', `/v1/subjects/${sid}/preference-link`, { token: base.tokens['subjects:write'],
      body: { ttl_seconds: 3600 } })).json;
    const res = await open(base, tokenOf(other.url));
    assert.equal(res.status, 303);
    cookie = `consentd_session=${cookieOf(res)}`;
  } finally {
    assert.equal((await base.stop()).code, 0);
  }
  // Ten minutes on: the 5-minute link has expired; the session (30 minutes) holds.
  const later = await faultServer(base.data, base.tokens, { CONSENTD_FAULT_CLOCK_SKEW: '600' });
  try {
    const size = await auditSize(later);
    const res = await open(later, tokenOf(l.url));
    assert.equal(res.status, 410);
    assert.equal(res.headers.get('set-cookie'), null);
    assert.match(res.text, /expired/);
    const u = await later.req('POST', `/u/${tokenOf(l.unsubscribe_url)}`, { raw: unsubBody, headers: form });
    assert.equal(u.status, 410);
    assert.equal(await auditSize(later), size, 'nothing was written');
    assert.equal((await later.req('GET', '/v1/me', { headers: { cookie } })).status, 200);
    assert.equal((await check(e, 'newsletter', 'email', later)).decision, 'allow');
  } finally {
    assert.equal((await later.stop()).code, 0);
  }
  const much = await faultServer(base.data, base.tokens, { CONSENTD_FAULT_CLOCK_SKEW: '2400' });
  try {
    assert.equal((await much.req('GET', '/v1/me', { headers: { cookie } })).status, 401, 'the session is over');
  } finally {
    assert.equal((await much.stop()).code, 0);
  }
});

test('a failing store is 503 on the shopper routes, sets no cookie and writes nothing', async () => {
  const base = await startServer({ bin: process.env.CONSENTD_FAULTS_BIN, args: ['--web', WEB] });
  const fault = (what) => {
    if (what) fs.writeFileSync(path.join(base.dir, 'FAULT'), what);
    else fs.rmSync(path.join(base.dir, 'FAULT'), { force: true });
  };
  try {
    const e = `email:faulty${process.pid}@example.com`;
    const g = await base.req('POST', '/v1/consents', { token: base.tokens['consent:write'],
      body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
    const sid = g.json.subject_id;
    const l = (await base.req('POST', `/v1/subjects/${sid}/preference-link`, { token: base.tokens['subjects:write'], body: {} })).json;
    const res = await open(base, tokenOf(l.url));
    const cookie = `consentd_session=${cookieOf(res)}`;
    const csrf = (await base.req('GET', '/v1/me', { headers: { cookie } })).json.csrf_token;
    const h = { cookie, 'x-csrf-token': csrf };
    const size = await auditSize(base);
    for (const f of ['write_busy', 'write_ioerr']) {
      fault(f);
      const p = await open(base, tokenOf(l.url));
      assert.equal(p.status, 503, `${f} /p`);
      assert.equal(p.headers.get('set-cookie'), null);
      const u = await base.req('POST', `/u/${tokenOf(l.unsubscribe_url)}`, { raw: unsubBody, headers: form });
      assert.equal(u.status, 503, `${f} /u`);
      for (const [m, pth, body] of [['PUT', '/v1/me/preferences', { topics: { new_arrivals: false } }],
        ['POST', '/v1/me/unsubscribe', {}], ['POST', '/v1/me/requests', { type: 'access' }],
        ['POST', '/v1/me/logout', undefined]]) {
        const r = await base.req(m, pth, { headers: h, body });
        assert.equal(r.status, 503, `${f} ${m} ${pth}: ${r.text}`);
      }
      const rv = await base.req('DELETE', `/v1/subjects/${sid}/preference-links`, { token: base.tokens['subjects:write'] });
      assert.equal(rv.status, 503, `${f} revoke`);
    }
    for (const f of ['read_busy', 'read_ioerr']) {
      fault(f);
      for (const pth of ['/v1/me', '/v1/me/requests']) {
        const r = await base.req('GET', pth, { headers: { cookie } });
        assert.equal(r.status, 503, `${f} ${pth}`);
      }
      assert.equal((await base.req('GET', `/u/${tokenOf(l.unsubscribe_url)}`)).status, 503, `${f} GET /u`);
      const mk = await base.req('POST', `/v1/subjects/${sid}/preference-link`, { token: base.tokens['subjects:write'], body: {} });
      assert.equal(mk.status, 503, `${f} link`);
    }
    fault(null);
    assert.equal(await auditSize(base), size, 'nothing was written');
    assert.equal((await check(e, 'newsletter', 'email', base)).decision, 'allow');
    assert.equal((await base.req('GET', '/v1/me', { headers: { cookie } })).status, 200, 'recovers');
  } finally {
    fault(null);
    assert.equal((await base.stop()).code, 0);
  }
});

test('consentd link prints working links from the command line, and --revoke revokes them', async () => {
  const e = email();
  const none = cli(['link', '--data', srv.dir, '--identifier', e]);
  assert.equal(none.code, 1, 'nobody holds it yet');
  const size = await auditSize();
  const r = cli(['link', '--data', srv.dir, '--identifier', e, '--create', '--public-url', srv.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await auditSize(), size + 1, 'the subject made for it is in the log');
  const url = r.stdout.match(/^preference centre: (\S+)$/m)[1];
  const sid = r.stdout.match(/^subject: (sub_\w+)$/m)[1];
  assert.match(r.stdout, new RegExp(`^List-Unsubscribe: <${srv.url}/u/u\\.[^>]+>, <mailto:privacy@northwind-threads\\.example\\?subject=unsubscribe>$`, 'm'));
  assert.match(r.stdout, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
  assert.ok(!r.stdout.includes(e.split(':')[1]), 'no identifier in the output');
  assert.equal((await open(srv, tokenOf(url))).status, 303);
  const again = cli(['link', '--data', srv.dir, '--subject', sid, '--public-url', srv.url]);
  assert.equal(again.code, 0, again.stderr);
  const rv = cli(['link', '--data', srv.dir, '--subject', sid, '--revoke']);
  assert.equal(rv.code, 0, rv.stderr);
  assert.equal((await open(srv, tokenOf(url))).status, 410);
  for (const bad of [['--subject', sid, '--identifier', e], [], ['--subject', sid, '--create'],
    ['--subject', sid, '--ttl', '10'], ['--subject', sid, '--public-url', 'ftp://x']]) {
    assert.equal(cli(['link', '--data', srv.dir, ...bad]).code, 64, bad.join(' '));
  }
});
