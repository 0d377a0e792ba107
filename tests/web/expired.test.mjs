// SPDX-License-Identifier: ISC
// An expired preference-centre link in Chromium: the shopper gets the
// friendly page (410), no session cookie, and the page passes axe at
// desktop and phone width. The link is made by a normal server; the test
// build of consentd then serves the same store with its clock ten minutes
// ahead (CONSENTD_FAULT_CLOCK_SKEW), past the link's five minutes.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, startServer } from '../http/harness.mjs';
import { axe, DESKTOP, foreignRequests, launch, PHONE, shot } from './browser.mjs';

const WEB = path.join(ROOT, 'web');

test('an expired link shows the friendly page, starts no session, and passes axe', async () => {
  const base = await startServer({ args: ['--web', WEB] });
  let url;
  try {
    const e = `email:webexpiry${process.pid}@example.com`;
    const g = await base.req('POST', '/v1/consents', { token: base.tokens['consent:write'],
      body: { identifier: e, purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
    assert.equal(g.status, 201, g.text);
    const l = await base.req('POST', `/v1/subjects/${g.json.subject_id}/preference-link`,
      { token: base.tokens['subjects:write'], body: { ttl_seconds: 300 } });
    assert.equal(l.status, 201, l.text);
    url = new URL(l.json.url);
  } finally {
    assert.equal((await base.stop()).code, 0);
  }
  const later = await startServer({ bin: process.env.CONSENTD_FAULTS_BIN, data: base.data,
    noTokens: true, args: ['--web', WEB], env: { CONSENTD_FAULT_CLOCK_SKEW: '600' } });
  const browser = await launch();
  try {
    for (const [size, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      const ctx = await browser.newContext({ viewport: vp, bypassCSP: true });
      const page = await ctx.newPage();
      const foreign = foreignRequests(page, later.url);
      const res = await page.goto(later.url + url.pathname);
      assert.equal(res.status(), 410);
      assert.match(await page.textContent('body'), /expired/i);
      assert.deepEqual((await ctx.cookies()).filter((c) => c.name === 'consentd_session'), []);
      assert.deepEqual(await axe(page), [], `${size}: WCAG 2.1 A/AA violations`);
      assert.deepEqual(foreign, []);
      await shot(page, `link-expired-${size}`);
      await ctx.close();
    }
  } finally {
    await browser.close();
    assert.equal((await later.stop()).code, 0);
  }
});
