// SPDX-License-Identifier: ISC
// The change feed (GET /v1/changes) for senders that sync instead of
// asking: every consent, preference and suppression change once, in commit
// order, across pages while writes go on; what each scope may see; a
// withdrawal visible as soon as it is acknowledged; an erased person gone
// from the feed but for the erasure; bad cursors and limits refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createToken, startServer, settledAuditSize, tmpdir } from './harness.mjs';

let srv;
let CW;
let CR;
let SR;
before(async () => {
  srv = await startServer({ env: { CONSENTD_OUTBOX_DIR: tmpdir('consentd-mail-') } });
  CW = srv.tokens['consent:write'];
  CR = srv.tokens['consent:read'];
  // The feed needs consent:read; subjects:read adds the identifiers.
  SR = createToken(srv.dir, 'feed-identified', ['consent:read', 'subjects:read']);
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

let seq = 0;
const email = () => `email:feed${process.pid}x${++seq}@example.com`;

async function feed(query = '', token = CR) {
  const r = await srv.req('GET', `/v1/changes${query ? `?${query}` : ''}`, { token });
  assert.equal(r.status, 200, r.text);
  return r;
}

// Walks the feed from CURSOR (or the start) to its end; every change and the last cursor.
async function walk(cursor, { token = CR, limit = 100 } = {}) {
  const all = [];
  for (;;) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set('after', cursor);
    const r = await feed(q.toString(), token);
    assert.equal(typeof r.json.next_cursor, 'string');
    assert.equal(typeof r.json.has_more, 'boolean');
    assert.ok(r.json.changes.length <= limit);
    all.push(...r.json.changes);
    if (r.json.changes.length)
      assert.equal(r.json.next_cursor, r.json.changes.at(-1).cursor);
    cursor = r.json.next_cursor;
    if (!r.json.has_more) return { changes: all, cursor };
  }
}
const end = async () => (await walk()).cursor;

async function consent(identifier, state = 'granted', extra = {}) {
  const r = await srv.req('POST', '/v1/consents', { token: CW,
    body: { identifier, purpose: 'newsletter', channel: 'email', state, method: 'web_form',
      ...extra } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

test('every change once, in commit order, across pages while writes go on', async () => {
  let cursor = await end();
  const written = [];
  const seen = [];
  for (let round = 0; round < 6; round++) {
    // Writes between polls: some one after another, some at once.
    for (let i = 0; i < 3; i++)
      written.push((await consent(email())).event_id);
    const many = await Promise.all([1, 2, 3, 4].map(() => consent(email())));
    written.push(...many.map((m) => m.event_id));
    const r = await feed(`after=${cursor}&limit=4`);
    seen.push(...r.json.changes);
    cursor = r.json.next_cursor;
  }
  const rest = await walk(cursor, { limit: 5 });
  seen.push(...rest.changes);
  const ids = seen.filter((c) => c.kind === 'consent').map((c) => c.event_id);
  assert.equal(new Set(ids).size, ids.length, 'no change twice');
  assert.deepEqual([...ids].sort(), [...written].sort(), 'every change once');
  // Commit order: cursors strictly increase, and sequential writes keep their order.
  const cursors = seen.map((c) => c.cursor);
  assert.deepEqual([...cursors].sort(), cursors);
  assert.equal(new Set(cursors).size, cursors.length);
  const pos = (id) => ids.indexOf(id);
  assert.ok(pos(written[0]) < pos(written[1]) && pos(written[1]) < pos(written[2]));
  for (const c of seen.filter((x) => x.kind === 'consent')) {
    assert.equal(c.purpose, 'newsletter');
    assert.equal(c.channel, 'email');
    assert.equal(c.state, 'granted');
    assert.match(c.subject_id, /^sub_/);
    assert.ok(!Number.isNaN(Date.parse(c.time)));
  }
  // At the end: nothing more, and the cursor stays put.
  const last = await feed(`after=${rest.cursor}`);
  assert.deepEqual(last.json.changes, []);
  assert.equal(last.json.has_more, false);
  assert.equal(last.json.next_cursor, rest.cursor);
});

test('a withdrawal is in the feed as soon as it is acknowledged', async () => {
  const e = email();
  const g = await consent(e);
  const cursor = await end();
  const w = await consent(e, 'withdrawn');
  const r = await feed(`after=${cursor}`);
  const c = r.json.changes.find((x) => x.event_id === w.event_id);
  assert.ok(c, 'the withdrawal is there on the first poll');
  assert.equal(c.state, 'withdrawn');
  assert.equal(c.subject_id, g.subject_id);
  // An unsubscribe withdraws every marketing purpose, at once too.
  const cur2 = r.json.next_cursor;
  const u = await srv.req('POST', `/v1/subjects/${g.subject_id}/unsubscribe`, { token: CW,
    body: { reason: 'too_frequent' } });
  assert.equal(u.status, 200, u.text);
  const r2 = await feed(`after=${cur2}`);
  const mine = r2.json.changes.filter((x) => x.subject_id === g.subject_id);
  assert.ok(mine.length >= 1);
  for (const x of mine) {
    assert.equal(x.kind, 'consent');
    assert.equal(x.state, 'withdrawn');
  }
});

test('scopes: consent:check is refused; consent:read sees no identifier or evidence; subjects:read sees identifiers', async () => {
  const r403 = await srv.req('GET', '/v1/changes', { token: srv.tokens['consent:check'] });
  assert.equal(r403.status, 403, r403.text);
  const r401 = await srv.req('GET', '/v1/changes');
  assert.equal(r401.status, 401);
  const rsub = await srv.req('GET', '/v1/changes', { token: srv.tokens['subjects:read'] });
  assert.equal(rsub.status, 403, 'subjects:read alone does not read consents');

  const cursor = await end();
  const e = email();
  const value = e.slice('email:'.length);
  const g = await consent(e, 'granted', { evidence: { ip: '203.0.113.77', user_agent: 'FeedAgent/1.0' } });
  const p = await srv.req('PUT', `/v1/subjects/${g.subject_id}/preferences`, { token: CW,
    body: { frequency: 'weekly' } });
  assert.equal(p.status, 200, p.text);
  const s = await srv.req('POST', '/v1/suppressions', { token: CW,
    body: { identifier: e, reason: 'complained' } });
  assert.ok(s.status === 201 || s.status === 200, s.text);
  const stranger = email();
  const s2 = await srv.req('POST', '/v1/suppressions', { token: CW,
    body: { identifier: stranger, reason: 'bounced' } });
  assert.ok(s2.status === 201 || s2.status === 200, s2.text);

  const plain = await walk(cursor);
  const text = JSON.stringify(plain.changes);
  assert.ok(!text.includes(value), 'no identifier for consent:read');
  assert.ok(!text.includes(stranger.slice(6)), 'no identifier for consent:read');
  assert.ok(!text.includes('203.0.113.77') && !text.includes('FeedAgent'), 'no evidence');
  for (const c of plain.changes) {
    assert.equal(c.identifiers, undefined);
    assert.equal(c.identifier, undefined);
    assert.equal(c.evidence, undefined);
  }
  const kinds = plain.changes.filter((c) => c.subject_id === g.subject_id).map((c) => c.kind);
  assert.deepEqual(kinds, ['consent', 'preferences', 'suppression']);
  const pref = plain.changes.find((c) => c.kind === 'preferences' && c.subject_id === g.subject_id);
  assert.equal(pref.frequency, 'weekly');
  const supp = plain.changes.filter((c) => c.kind === 'suppression');
  assert.equal(supp.length, 2);
  assert.deepEqual(supp.map((c) => [c.action, c.reason, c.identifier_type]),
    [['added', 'complained', 'email'], ['added', 'bounced', 'email']]);
  assert.equal(supp[1].subject_id, undefined, 'nobody holds the stranger');

  const full = await walk(cursor, { token: SR });
  const mine = full.changes.filter((c) => c.subject_id === g.subject_id);
  assert.deepEqual(mine[0].identifiers, [e]);
  assert.deepEqual(mine[1].identifiers, [e]);
  assert.equal(mine[2].identifier, e, 'a suppression of a known subject names its identifier');
  const other = full.changes.find((c) => c.kind === 'suppression' && c.reason === 'bounced');
  assert.equal(other.identifier, undefined, 'an identifier nobody holds is never shown');
  assert.ok(!JSON.stringify(full.changes).includes(stranger.slice(6)));
  assert.ok(!JSON.stringify(full.changes).includes('203.0.113.77'), 'never evidence');
});

test('an erased person leaves nothing in the feed but the erasure', async () => {
  const DPO = srv.tokens['dsr:admin'];
  const e = email();
  const value = e.slice('email:'.length);
  const g = await consent(e, 'granted', { evidence: { ip: '198.51.100.23' } });
  const w = await consent(e, 'withdrawn');
  const p = await srv.req('PUT', `/v1/subjects/${g.subject_id}/preferences`, { token: CW,
    body: { frequency: 'monthly' } });
  assert.equal(p.status, 200, p.text);
  const s = await srv.req('POST', '/v1/suppressions', { token: CW,
    body: { identifier: e, reason: 'unsubscribed' } });
  assert.ok(s.status === 201 || s.status === 200, s.text);
  const before = (await walk(undefined, { token: SR })).changes;
  assert.ok(before.filter((c) => c.subject_id === g.subject_id).length >= 4);

  const d = await srv.req('POST', '/v1/dsr', { token: DPO,
    body: { type: 'erasure', identifier: e, verified: true } });
  assert.equal(d.status, 201, d.text);
  const pr = await srv.req('POST', `/v1/dsr/${d.json.id}/process`, { token: DPO });
  assert.equal(pr.status, 200, pr.text);

  for (const token of [CR, SR, srv.tokens.all]) {
    const after = (await walk(undefined, { token })).changes;
    const text = JSON.stringify(after);
    assert.ok(!text.includes(value), 'the identifier is nowhere');
    assert.ok(!text.includes('198.51.100.23'));
    assert.ok(!text.includes(g.event_id) && !text.includes(w.event_id), 'the old events are gone');
    const mine = after.filter((c) => c.subject_id === g.subject_id);
    assert.equal(mine.length, 1, 'only the erasure names the subject');
    assert.equal(mine[0].kind, 'erasure');
    assert.deepEqual(Object.keys(mine[0]).sort(),
      ['audit_index', 'cursor', 'kind', 'subject_id', 'time']);
    // The identifier's "erased" entry is in the feed by type only.
    const erased = after.filter((c) => c.kind === 'suppression' && c.reason === 'erased');
    assert.ok(erased.length >= 1);
    for (const c of erased) {
      assert.equal(c.identifier, undefined);
      assert.equal(c.subject_id, undefined);
    }
    // A sender that had synced before sees the erasure after its cursor.
    assert.ok(mine[0].cursor > before.at(-1).cursor);
  }
});

test('a merged-away subject: its changes name the survivor, and erasing the survivor removes both', async () => {
  const DPO = srv.tokens['dsr:admin'];
  const ea = email();
  const eb = email();
  const a = await consent(ea);
  const b = await consent(eb);
  const m = await srv.req('POST', '/v1/subjects/merge', { token: srv.tokens['subjects:write'],
    body: { into: b.subject_id, from: a.subject_id, reason: 'same person' } });
  assert.equal(m.status, 200, m.text);
  const before = (await walk(undefined, { token: SR })).changes;
  const fromA = before.find((c) => c.event_id === a.event_id);
  assert.equal(fromA.subject_id, a.subject_id);
  assert.equal(fromA.merged_into, b.subject_id);
  assert.deepEqual([...fromA.identifiers].sort(), [ea, eb].sort(), 'the survivor\'s identifiers');

  const d = await srv.req('POST', '/v1/dsr', { token: DPO, body: { type: 'erasure', identifier: eb, verified: true } });
  assert.equal(d.status, 201, d.text);
  assert.equal((await srv.req('POST', `/v1/dsr/${d.json.id}/process`, { token: DPO })).status, 200);
  const after = (await walk(undefined, { token: SR })).changes;
  const text = JSON.stringify(after);
  assert.ok(!text.includes(a.subject_id), 'nothing of the merged-away subject');
  assert.ok(!text.includes(ea.slice(6)) && !text.includes(eb.slice(6)));
  assert.deepEqual(after.filter((c) => c.subject_id === b.subject_id).map((c) => c.kind), ['erasure']);
});

test('a restriction and an objection are changes too: both change what the check answers', async () => {
  const DPO = srv.tokens['dsr:admin'];
  const e = email();
  const g = await consent(e);
  const cursor = await end();
  for (const type of ['restriction', 'objection']) {
    const d = await srv.req('POST', '/v1/dsr', { token: DPO, body: { type, identifier: e, verified: true } });
    assert.equal(d.status, 201, d.text);
    const p = await srv.req('POST', `/v1/dsr/${d.json.id}/process`, { token: DPO });
    assert.equal(p.status, 200, p.text);
  }
  const mine = (await walk(cursor)).changes.filter((c) => c.subject_id === g.subject_id);
  const r = mine.find((c) => c.kind === 'restriction');
  assert.ok(r, JSON.stringify(mine));
  assert.equal(r.restricted, true);
  const o = mine.find((c) => c.kind === 'objection');
  assert.ok(o, JSON.stringify(mine));
  assert.equal(o.scope, 'direct_marketing');
  assert.ok(!Number.isNaN(Date.parse(o.objected_at)));
});

test('bad cursors and limits are a 400 naming the field, and nothing is written', async () => {
  const size = await settledAuditSize(srv);
  const far = (await end()).replace(/[0-9a-f]{16}$/, 'ffffffffffffff00');
  for (const [q, field] of [
    ['after=xyz', 'after'], ['after=', 'after'], ['after=chg_zzzzzzzzzzzzzzzz', 'after'],
    ['after=chg_00000000000000001', 'after'], [`after=${far}`, 'after'],
    ['after=chg_8000000000000000', 'after'], ['after=chg_00000000ffffffff', 'after'],
    ['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=ten', 'limit'], ['limit=-1', 'limit'],
  ]) {
    const r = await srv.req('GET', `/v1/changes?${q}`, { token: CR });
    assert.equal(r.status, 400, `${q}: ${r.text}`);
    assert.equal(r.json.error.code, 'invalid_parameter', q);
    assert.equal(r.json.error.field, field, q);
  }
  const u = await srv.req('GET', '/v1/changes?since=1', { token: CR });
  assert.equal(u.status, 400);
  assert.equal(u.json.error.code, 'unknown_parameter');
  assert.equal(await settledAuditSize(srv), size);
  // The largest limit is allowed; the default is 100.
  assert.equal((await srv.req('GET', '/v1/changes?limit=1000', { token: CR })).status, 200);
  const d = await feed();
  assert.ok(d.json.changes.length <= 100);
});

// Walks a list route page by page (LIMIT a page), calling BETWEEN after
// each page; every item and the number of pages.
async function walkList(route, field, { token, limit = 2, between = async () => {} } = {}) {
  const items = [];
  let cursor;
  let pages = 0;
  for (;;) {
    const sep = route.includes('?') ? '&' : '?';
    const r = await srv.req('GET', `${route}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      { token });
    assert.equal(r.status, 200, `${route}: ${r.text}`);
    assert.ok(r.json[field].length <= limit);
    assert.ok('next_cursor' in r.json, `${route} says where the next page starts`);
    items.push(...r.json[field]);
    pages++;
    await between(pages);
    if (r.json.next_cursor === null) return { items, pages };
    assert.equal(typeof r.json.next_cursor, 'string');
    cursor = r.json.next_cursor;
  }
}

test('list routes page with cursor and limit, each item once, writes between pages', async () => {
  const ADMIN = srv.tokens.admin;
  // Tokens: newest first; tokens made during the walk are newer than its cursor.
  for (let i = 0; i < 3; i++) createToken(srv.dir, `paging-${i}`, ['consent:check']);
  const allTokens = (await srv.req('GET', '/v1/tokens', { token: ADMIN })).json;
  assert.equal(allTokens.next_cursor, null, 'no limit: every token at once, as before');
  let made = 0;
  const t = await walkList('/v1/tokens', 'tokens', { token: ADMIN, limit: 3,
    between: async () => { createToken(srv.dir, `paging-late-${made++}`, ['consent:check']); } });
  const key = (x) => `${x.name}|${x.created_at}`;
  assert.equal(new Set(t.items.map(key)).size, t.items.length, 'no token twice');
  assert.deepEqual(t.items.map(key), allTokens.tokens.map(key), 'every token that was there, in order');
  assert.ok(t.pages > 3);

  // History: events in recording order; events recorded during the walk come at its end.
  const e = email();
  const first = await consent(e);
  for (let i = 0; i < 6; i++) await consent(e, i % 2 ? 'granted' : 'withdrawn');
  const path = `/v1/subjects/${first.subject_id}/consents?history=true`;
  const full = (await srv.req('GET', path, { token: CR })).json;
  assert.equal(full.events.length, 7);
  assert.equal(full.next_cursor, null, 'no limit: every event at once');
  const added = [];
  const h = await walkList(path, 'events', { token: CR, limit: 3,
    between: async (n) => { if (n <= 2) added.push((await consent(e)).event_id); } });
  const ids = h.items.map((x) => x.event_id);
  assert.deepEqual(ids, [...full.events.map((x) => x.event_id), ...added]);
  for (const [q, field] of [['history=false&limit=2', 'limit'], ['cursor=h1', 'cursor'],
    ['history=true&cursor=x9', 'cursor'], ['history=true&limit=0', 'limit']]) {
    const r = await srv.req('GET', `/v1/subjects/${first.subject_id}/consents?${q}`, { token: CR });
    assert.equal(r.status, 400, q);
    assert.equal(r.json.error.field, field, q);
  }

  // Systems: by name.
  for (const n of ['alpha', 'bravo', 'charlie', 'delta', 'echo'])
    assert.equal((await srv.req('POST', '/v1/systems', { token: ADMIN, body: { name: `pg-${n}`,
      url: 'http://127.0.0.1:9/hook', events: ['erasure'], secret: 'a-long-enough-secret-0123456789' } })).status, 201);
  const allSys = (await srv.req('GET', '/v1/systems', { token: ADMIN })).json;
  const s = await walkList('/v1/systems', 'systems', { token: ADMIN, limit: 2 });
  assert.deepEqual(s.items.map((x) => x.name), allSys.systems.map((x) => x.name));
  assert.equal(s.pages, 3);

  // The unsubscribe report: by month, then reason.
  for (const reason of ['too_frequent', 'not_relevant', 'never_signed_up', 'privacy', 'other']) {
    const g = await consent(email());
    assert.equal((await srv.req('POST', `/v1/subjects/${g.subject_id}/unsubscribe`, { token: CW,
      body: { reason } })).status, 200);
  }
  const allRep = (await srv.req('GET', '/v1/reports/unsubscribe-reasons', { token: CR })).json;
  assert.ok(allRep.reasons.length >= 5);
  const rep = await walkList('/v1/reports/unsubscribe-reasons', 'reasons', { token: CR, limit: 2 });
  assert.deepEqual(rep.items, allRep.reasons);

  // The outbox: newest first; rows queued during the walk are newer than its cursor.
  const DPO = srv.tokens['dsr:admin'];
  for (let i = 0; i < 5; i++)
    assert.equal((await srv.req('POST', '/v1/dsr', { token: DPO,
      body: { type: 'access', identifier: email() } })).status, 201);
  const allOut = (await srv.req('GET', '/v1/outbox?limit=1000', { token: ADMIN })).json;
  assert.ok(allOut.items.length >= 5);
  assert.equal(allOut.next_cursor, null);
  const o = await walkList('/v1/outbox', 'items', { token: ADMIN, limit: 2,
    between: async (n) => { if (n === 1) await srv.req('POST', '/v1/dsr', { token: DPO,
      body: { type: 'access', identifier: email() } }); } });
  const oid = o.items.map((x) => x.id);
  assert.equal(new Set(oid).size, oid.length, 'no row twice');
  assert.deepEqual(oid, allOut.items.map((x) => x.id));

  // Bad cursors and limits name the field on every list route.
  for (const route of ['/v1/tokens', '/v1/systems', '/v1/outbox', '/v1/reports/unsubscribe-reasons',
    `/v1/subjects/${first.subject_id}/consents?history=true`]) {
    const tok = route.includes('report') || route.includes('consents') ? CR : ADMIN;
    const sep = route.includes('?') ? '&' : '?';
    for (const [q, field] of [['cursor=bogus', 'cursor'], ['cursor=', 'cursor'], ['limit=0', 'limit'],
      ['limit=1001', 'limit'], ['limit=x', 'limit']]) {
      const r = await srv.req('GET', `${route}${sep}${q}`, { token: tok });
      assert.equal(r.status, 400, `${route} ${q}: ${r.text}`);
      assert.equal(r.json.error.code, 'invalid_parameter', `${route} ${q}`);
      assert.equal(r.json.error.field, field, `${route} ${q}`);
    }
  }
});
