// SPDX-License-Identifier: ISC
// The browser test set-up itself: Debian's chromium starts headless, opens
// a preference-centre link against a real consentd serve, lands on
// /preferences with a session, reaches no other origin, and axe runs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from '../http/harness.mjs';
import { axe, DESKTOP, foreignRequests, launch } from './browser.mjs';

let srv;
let browser;
before(async () => {
  srv = await startServer();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  const r = await srv.stop();
  assert.equal(r.code, 0);
});

test('a preference link opens the page in chromium, with a session and no other origin', async () => {
  const s = await srv.req('POST', '/v1/subjects', { token: srv.tokens['subjects:write'],
    body: { identifiers: [`email:web${process.pid}@example.com`] } });
  assert.equal(s.status, 201, s.text);
  const l = await srv.req('POST', `/v1/subjects/${s.json.subject_id}/preference-link`,
    { token: srv.tokens['subjects:write'], body: { ttl_seconds: 600 } });
  assert.equal(l.status, 201, l.text);
  // axe is injected as a script: the page's own CSP would refuse it.
  const ctx = await browser.newContext({ viewport: DESKTOP, bypassCSP: true });
  const page = await ctx.newPage();
  const foreign = foreignRequests(page, srv.url);
  const res = await page.goto(l.json.url.replace(/^https?:\/\/[^/]+/, srv.url));
  assert.equal(res.status(), 200);
  assert.match(page.url(), /\/preferences$/);
  const cookies = await ctx.cookies();
  assert.ok(cookies.some((c) => c.name === 'consentd_session' && c.httpOnly && c.sameSite === 'Strict'));
  const v = await axe(page);
  assert.ok(Array.isArray(v));
  assert.deepEqual(foreign, []);
  await ctx.close();
});
