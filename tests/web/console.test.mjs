// SPDX-License-Identifier: ISC
// The DPO console in Debian's chromium against a real consentd serve: the
// DPO signs in with a token (which the page does not keep), sees the
// requests with the overdue one first, verifies one with the code the
// requester received, extends one, denies another (an empty reason is
// refused by the page and no request reaches the API), processes and
// completes requests, downloads a package, retries a dead outbox row, reads
// the charts and their tables, and runs the audit verification. Every step
// is checked through the HTTP API. Every control is reached by the keyboard
// alone; axe finds no WCAG 2.1 A/AA violation at desktop and phone width on
// any view; no request leaves the origin; screenshots of every view at both
// widths go to tests/web/screenshots/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { createToken, ROOT, startServer, tmpdir } from '../http/harness.mjs';
import { axe, DESKTOP, foreignRequests, launch, PHONE, shot } from './browser.mjs';

const MAIL = tmpdir('consentd-console-mail-');
let srv, browser, DPO, ctx, page, foreign;
const ids = {};
const cspErrors = [];

async function closedPort() {
  const s = net.createServer();
  await new Promise((res) => s.listen(0, '127.0.0.1', res));
  const { port } = s.address();
  await new Promise((res) => s.close(res));
  return port;
}

async function waitFor(what, fn, timeout = 20000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeout) assert.fail(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

const A = () => ({ token: srv.tokens.all });
async function dsr(body) {
  const r = await srv.req('POST', '/v1/dsr', { ...A(), body });
  assert.equal(r.status, 201, r.text);
  return r.json.id;
}
async function getReq(id) {
  const r = await srv.req('GET', `/v1/dsr/${id}`, A());
  assert.equal(r.status, 200, r.text);
  return r.json;
}
async function grant(e) {
  const r = await srv.req('POST', '/v1/consents', { ...A(), body: { identifier: e, purpose: 'newsletter',
    channel: 'email', state: 'granted', method: 'web_form' } });
  assert.equal(r.status, 201, r.text);
  return r.json.subject_id;
}

before(async () => {
  srv = await startServer({ args: ['--web', path.join(ROOT, 'web')],
    env: { CONSENTD_OUTBOX_DIR: MAIL, CONSENTD_OUTBOX_BASE_MS: '100', CONSENTD_OUTBOX_MAX_ATTEMPTS: '1',
      CONSENTD_OUTBOX_TIMEOUT_MS: '500' } });
  DPO = createToken(srv.dir, 'dpo', ['dsr:admin', 'admin', 'audit:read', 'consent:read']);
  // Requests in every state the console acts on.
  const e1 = 'email:console-verify@example.com';
  await grant(e1);
  ids.verify = await dsr({ type: 'access', identifier: e1 });
  ids.extend = await dsr({ type: 'erasure', identifier: 'email:console-extend@example.com' });
  ids.deny = await dsr({ type: 'objection', identifier: 'email:console-deny@example.com' });
  ids.overdue = await dsr({ type: 'access', identifier: 'email:console-overdue@example.com' });
  const x = spawnSync(process.env.CONSENTD_DBTOOL, ['sql', srv.dir,
    `UPDATE dsr_requests SET due_at = ${(Date.now() - 3 * 86400e3) * 1000} WHERE id = '${ids.overdue}'`], { encoding: 'utf8' });
  assert.equal(x.status, 0, x.stderr);
  // A system that cannot be reached: the restriction's webhook dies.
  const port = await closedPort();
  const sys = await srv.req('POST', '/v1/systems', { ...A(), body: { name: 'crm', url: `http://127.0.0.1:${port}/hook`,
    events: ['restriction'], secret: 'crm-secret-0123456789abcdef' } });
  assert.equal(sys.status, 201, sys.text);
  const e2 = 'email:console-restrict@example.com';
  await grant(e2);
  ids.restrict = await dsr({ type: 'restriction', identifier: e2, verified: true });
  // Reports: reasons to count, and the policy's holdout.
  for (const [i, reason] of ['too_frequent', 'too_frequent', 'not_relevant'].entries()) {
    const sid = await grant(`email:console-unsub${i}@example.com`);
    const u = await srv.req('POST', `/v1/subjects/${sid}/unsubscribe`, { ...A(), body: { reason } });
    assert.equal(u.status, 200, u.text);
  }
  browser = await launch();
  ctx = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  page = await ctx.newPage();
  foreign = foreignRequests(page, srv.url);
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
});
after(async () => {
  await browser?.close();
  const r = await srv.stop();
  assert.equal(r.code, 0);
});

// Every visible, enabled control of the page, and the ones Tab reaches
// from the top of the page: the first must all be among the second.
async function keyboardReachesAll(p, label) {
  // The view must have settled: its data loaded and its heading focused.
  await p.waitForLoadState('networkidle');
  await p.waitForTimeout(300);
  const want = await p.evaluate(() => {
    window.__kbd = 0;
    const sel = 'a[href], button, input, select, textarea, [tabindex="0"]';
    return [...document.querySelectorAll(sel)].filter((e) => !e.disabled && e.getClientRects().length > 0)
      .map((e, i) => { e.dataset.kbd = String(i); return String(i); });
  });
  await p.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  await p.focus('body').catch(() => {});
  const seen = new Set();
  for (let i = 0; i < want.length * 2 + 10; i++) {
    await p.keyboard.press('Tab');
    const k = await p.evaluate(() => document.activeElement?.dataset?.kbd ?? null);
    if (k !== null) seen.add(k);
    if (seen.size === want.length) break;
  }
  const missed = want.filter((k) => !seen.has(k));
  const names = await p.evaluate((m) => m.map((k) => document.querySelector(`[data-kbd="${k}"]`).outerHTML.slice(0, 80)), missed);
  assert.deepEqual(names, [], `${label}: controls Tab never reaches`);
}

// axe at both widths (in a context that lets axe's script in) and a screenshot of each.
async function audit(name, hash) {
  const c = await browser.newContext({ viewport: DESKTOP, bypassCSP: true });
  const p = await c.newPage();
  await c.addCookies((await ctx.cookies()).filter((k) => k.name === 'consentd_console'));
  await p.goto(`${srv.url}/admin${hash}`);
  await p.waitForLoadState('networkidle');
  for (const [w, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await p.setViewportSize(vp);
    const v = await axe(p);
    assert.deepEqual(v, [], `axe ${name} ${w}: ${JSON.stringify(v)}`);
    await shot(p, `console-${name}-${w}`);
  }
  await c.close();
}

test('the sign-in page: a bad token is refused and shown; a good one signs in and is kept nowhere', async () => {
  const res = await page.goto(`${srv.url}/admin`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-security-policy'], /default-src 'self'/);
  await page.waitForSelector('#view-signin:not([hidden])');
  await keyboardReachesAll(page, 'sign-in');
  {
    const c = await browser.newContext({ viewport: DESKTOP, bypassCSP: true });
    const p = await c.newPage();
    await p.goto(`${srv.url}/admin`);
    await p.waitForSelector('#view-signin:not([hidden])');
    for (const [w, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      await p.setViewportSize(vp);
      assert.deepEqual(await axe(p), [], `axe sign-in ${w}`);
      await shot(p, `console-signin-${w}`);
    }
    await c.close();
  }
  await page.fill('#token', srv.tokens['audit:read']);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#message:has-text("dsr:admin")');
  assert.match(await page.textContent('#message'), /Sign-in refused: this token lacks the scope dsr:admin \(forbidden; HTTP 403\)/);
  assert.equal(await page.inputValue('#token'), '', 'the field is cleared');
  await page.fill('#token', DPO);
  await page.click('#signin-form button');
  await page.waitForSelector('#view-requests:not([hidden])');
  const cookies = await ctx.cookies();
  const c = cookies.find((k) => k.name === 'consentd_console');
  assert.ok(c && c.httpOnly && c.sameSite === 'Strict' && c.path === '/');
  const stored = await page.evaluate(() => JSON.stringify({ l: { ...localStorage }, s: { ...sessionStorage }, c: document.cookie,
    html: document.documentElement.outerHTML }));
  assert.ok(!stored.includes(DPO), 'the token is nowhere in the page or its storage');
  assert.ok(!stored.includes(c.value), 'nor the session id');
});

test('the request list: overdue first, due date and days left, filters', async () => {
  await page.waitForSelector('#requests tbody tr a');
  const rows = await page.$$eval('#requests tbody tr', (trs) => trs.map((t) => [...t.cells].map((c) => c.textContent)));
  assert.equal(rows[0][0], ids.overdue, 'the overdue request comes first');
  assert.match(rows[0][4], /^Overdue \(-\d+\)$/);
  assert.match(rows[0][3], /^\d{4}-\d{2}-\d{2}$/);
  assert.ok(rows.length >= 5);
  for (const r of rows.slice(1)) assert.match(r[4], /^\d+$/);
  await keyboardReachesAll(page, 'requests');
  await page.selectOption('#f-type', 'erasure');
  await page.click('#filters button');
  await page.waitForFunction(() => document.querySelectorAll('#requests tbody tr').length === 1);
  assert.equal(await page.textContent('#requests tbody tr td'), ids.extend);
  await page.selectOption('#f-type', '');
  await page.check('#f-overdue');
  await page.click('#filters button');
  await page.waitForFunction((id) => document.querySelectorAll('#requests tbody tr').length === 1 &&
    document.querySelector('#requests tbody td').textContent === id, ids.overdue);
  await page.uncheck('#f-overdue');
  await page.selectOption('#f-status', 'completed');
  await page.click('#filters button');
  await page.waitForSelector('#requests tbody td:has-text("No request matches")');
  await page.selectOption('#f-status', '');
  await page.click('#filters button');
  await audit('requests', '#/requests');
});

async function openRequest(id) {
  await page.goto(`${srv.url}/admin#/request/${id}`);
  await page.waitForSelector(`#request-h:has-text("${id}")`);
}

test('verify with the code the requester received, then process; the package downloads', async () => {
  await openRequest(ids.verify);
  // A wrong code: the API's error, shown as it is.
  await page.fill('#verify-code', '000000');
  await page.click('#act-verify button');
  await page.waitForSelector('#message:has-text("Verify failed")');
  assert.match(await page.textContent('#message'), /invalid_code, field code; HTTP 400/);
  const row = await waitFor('the code', async () => (await srv.req('GET', '/v1/outbox', A())).json.items
    .find((o) => o.request_id === ids.verify && o.name === 'code' && o.status === 'sent'));
  const text = fs.readFileSync(path.join(MAIL, `${row.id}.eml`), 'utf8');
  const code = text.match(/^ {4}(\d{6})\r$/m)[1];
  await page.fill('#verify-code', code);
  await page.click('#act-verify button');
  await page.waitForSelector('#message:has-text("Verify: done")');
  assert.equal((await getReq(ids.verify)).status, 'verified');
  await page.click('#act-process button');
  await page.waitForSelector('#message:has-text("Process: done")');
  assert.equal((await getReq(ids.verify)).status, 'completed');
  await page.waitForSelector('#package:not([hidden])');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#package-link')]);
  const pkg = JSON.parse(fs.readFileSync(await dl.path(), 'utf8'));
  assert.ok(JSON.stringify(pkg).includes('console-verify@example.com'), 'the package is the subject\'s');
  const tl = await page.$$eval('#timeline li', (l) => l.map((x) => x.textContent));
  assert.ok(tl.some((t) => t.startsWith('verified')) && tl.some((t) => /by console:dpo/.test(t)), tl.join('\n'));
  await keyboardReachesAll(page, 'request (completed)');
  // A request with every action open: each is reached by the keyboard, and passes axe.
  await openRequest(ids.extend);
  await page.waitForSelector('#act-verify:not([hidden])');
  await keyboardReachesAll(page, 'request (open)');
  await audit('request', `#/request/${ids.extend}`);
});

test('extend with a reason; deny refuses an empty reason without calling the API, then denies', async () => {
  await openRequest(ids.extend);
  const due0 = (await getReq(ids.extend)).due_at;
  await page.fill('#extend-reason', 'The request covers many systems.');
  await page.click('#act-extend button');
  await page.waitForSelector('#message:has-text("Extend: done")');
  const ext = await getReq(ids.extend);
  assert.equal(ext.extended, true);
  assert.ok(new Date(ext.due_at) > new Date(due0));
  assert.ok(ext.timeline.some((t) => t.step === 'extended' && t.reason === 'The request covers many systems.'),
    JSON.stringify(ext.timeline));

  await openRequest(ids.deny);
  const calls = [];
  const onReq = (r) => { if (r.url().includes('/deny')) calls.push(r.url()); };
  page.on('request', onReq);
  await page.fill('#deny-reason', '   ');
  await page.click('#act-deny button');
  await page.waitForSelector('#message:has-text("Enter a reason first")');
  assert.equal(await page.getAttribute('#deny-reason', 'aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'deny-reason', 'focus goes to the field');
  await new Promise((res) => setTimeout(res, 200));
  assert.deepEqual(calls, [], 'the API was not called');
  assert.equal((await getReq(ids.deny)).status, 'identity_unverified');
  await page.fill('#deny-reason', 'Manifestly unfounded: a duplicate of an answered request.');
  await page.click('#act-deny button');
  await page.waitForSelector('#message:has-text("Deny: done")');
  page.off('request', onReq);
  assert.equal(calls.length, 1);
  const d = await getReq(ids.deny);
  assert.equal(d.status, 'denied');
  assert.equal(d.timeline.find((t) => t.step === 'denied').actor, 'console:dpo');
  // A closed request offers no action; the API would refuse one anyway.
  await page.waitForSelector('#no-actions:not([hidden])');
  assert.equal(await page.isVisible('#act-deny'), false);
  const again = await page.evaluate(async ({ id, csrf }) => (await fetch(`/v1/dsr/${id}/deny`, { method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: '{"reason":"again"}' })).status,
  { id: ids.deny, csrf: 'x'.repeat(64) });
  assert.equal(again, 403, 'a write without the session\'s CSRF token is refused');
});

test('process a restriction, retry its dead webhook in the outbox, complete it with a note', async () => {
  await openRequest(ids.restrict);
  await page.click('#act-process button');
  await page.waitForSelector('#message:has-text("Process: done")');
  assert.equal((await getReq(ids.restrict)).status, 'awaiting_systems');
  const dead = await waitFor('the dead webhook', async () => (await srv.req('GET', '/v1/outbox?status=dead', A()))
    .json.items.find((o) => o.request_id === ids.restrict));
  await page.goto(`${srv.url}/admin#/outbox`);
  await page.selectOption('#o-status', 'dead');
  await page.click('#outbox-filter button');
  await page.waitForSelector(`#outbox button[data-id="${dead.id}"]`);
  await keyboardReachesAll(page, 'outbox');
  await audit('outbox', '#/outbox');
  await page.click(`#outbox button[data-id="${dead.id}"]`);
  await page.waitForSelector(`#message:has-text("${dead.id} is pending again")`);
  const after1 = await srv.req('GET', '/v1/outbox', A());
  const again = after1.json.items.find((o) => o.id === dead.id);
  assert.ok(again.status === 'pending' || again.attempts >= 1, JSON.stringify(again));
  await openRequest(ids.restrict);
  await page.click('#act-complete button');
  await page.waitForSelector('#message:has-text("Enter a note first")');
  await page.fill('#complete-note', 'The CRM was restricted by hand.');
  await page.click('#act-complete button');
  await page.waitForSelector('#message:has-text("Complete: done")');
  assert.equal((await getReq(ids.restrict)).status, 'completed');
  const sys = await page.$$eval('#systems tbody tr', (trs) => trs.map((t) => t.cells[0].textContent));
  assert.deepEqual(sys, ['crm']);
});

test('the reports: SVG charts drawn by the page, with their numbers in tables', async () => {
  await page.goto(`${srv.url}/admin#/reports`);
  await page.waitForSelector('#unsub-chart svg rect');
  const rows = await page.$$eval('#unsub-table tbody tr', (trs) => trs.map((t) => [...t.cells].map((c) => c.textContent)));
  const api = (await srv.req('GET', '/v1/reports/unsubscribe-reasons', A())).json.reasons;
  assert.deepEqual(rows, api.map((r) => [r.month, r.reason.replace(/_/g, ' '), String(r.count)]));
  assert.ok(rows.some((r) => r[1] === 'too frequent' && r[2] === '2'));
  const bars = await page.$$eval('#unsub-chart svg rect title', (t) => t.map((x) => x.textContent));
  assert.ok(bars.some((b) => /too frequent: 2$/.test(b)), bars.join());
  assert.equal(await page.getAttribute('#unsub-chart svg', 'role'), 'img');
  await page.waitForSelector('#holdout-chart svg');
  const h = (await srv.req('GET', '/v1/reports/holdout', A())).json.purposes;
  const hrows = await page.$$eval('#holdout-table tbody tr', (trs) => trs.map((t) => [...t.cells].map((c) => c.textContent)));
  assert.deepEqual(hrows, h.map((p) => [p.purpose.replace(/_/g, ' '), String(p.holdout_percent), String(p.control), String(p.treatment)]));
  assert.ok(h.length > 0, 'the example policy has a holdout');
  assert.equal(await page.$$eval('#holdout-chart svg rect', (r) => r.length), 2 * h.length);
  await keyboardReachesAll(page, 'reports');
  await audit('reports', '#/reports');
});

test('the audit panel: the latest signed checkpoint, and a verification that passes', async () => {
  await page.goto(`${srv.url}/admin#/audit`);
  const cp = await waitFor('a checkpoint', async () => {
    await page.reload();
    await page.waitForSelector('#view-audit:not([hidden])');
    const t = await page.textContent('#checkpoint');
    return t && t.includes('\u2014') ? t : null;
  });
  const api = (await srv.req('GET', '/v1/audit/checkpoint', A())).text;
  assert.equal(cp.split('\n')[0], api.split('\n')[0], 'the same log origin');
  await page.click('#verify-log');
  await page.waitForSelector('#verify-verdict');
  assert.match(await page.textContent('#verify-verdict'), /^The log verifies: \d+ entries, \d+ checkpoints, \d+ checks passed, none failed\.$/);
  await keyboardReachesAll(page, 'audit');
  await audit('audit', '#/audit');
});

test('sign out ends the session; nothing reached another origin and the CSP refused nothing', async () => {
  await page.click('#signout');
  await page.waitForSelector('#view-signin:not([hidden])');
  const old = (await ctx.cookies()).find((k) => k.name === 'consentd_console');
  assert.equal(old, undefined, 'the cookie is cleared');
  assert.deepEqual(foreign, []);
  assert.deepEqual(cspErrors, []);
});
