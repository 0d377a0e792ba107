// SPDX-License-Identifier: ISC
// The unified customer record over HTTP: create, resolve, read, link,
// unlink, profile, merge; every error of those routes; the scope matrix;
// and that no plaintext identifier or profile value reaches the database
// file, the decrypted tables, the audit entries or the logs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startServer } from './harness.mjs';

let srv;
let W;
let R;
let SR;
before(async () => {
  srv = await startServer();
  W = srv.tokens['subjects:write'];
  R = srv.tokens['consent:read'];
  SR = srv.tokens['subjects:read'];
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

let seq = 0;
const uniq = (p = 'u') => `${p}${process.pid}x${++seq}`;

async function create(body) {
  const r = await srv.req('POST', '/v1/subjects', { token: W, body });
  assert.equal(r.status, 201, r.text);
  return r.json.subject_id;
}

async function get(id) {
  return srv.req('GET', `/v1/subjects/${id}`, { token: SR });
}

async function resolve(ident) {
  return srv.req('GET', `/v1/subjects/resolve?identifier=${encodeURIComponent(ident)}`, { token: R });
}

async function auditSize() {
  const r = await srv.req('GET', '/v1/audit/entries?from=0&to=0', { token: srv.tokens['audit:read'] });
  assert.equal(r.status, 200);
  const big = await srv.req('GET', '/v1/audit/entries?to=99999999', { token: srv.tokens['audit:read'] });
  return big.json?.error ? Number(big.json.error.message.match(/holds (\d+)/)[1]) : 0;
}

test('create: identifiers are normalised, duplicates dropped, profile stored', async () => {
  const u = uniq();
  const r = await srv.req('POST', '/v1/subjects', { token: W, body: {
    identifiers: [` ${u.toUpperCase()}@Example.COM `, `email:${u}@example.com`.replace('email:', 'email:'),
      { identifier: 'phone:+44 (0)20 7946 0958', verified: true, source: 'checkout' }].map((x, i) => (i === 0 ? `email:${x}` : x)),
    profile: { first_name: 'Ana', sizes: { top: 'M' }, vip: true },
  } });
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.subject_id, /^sub_[a-z2-7]{26}$/);
  assert.deepEqual(r.json.identifiers, [`email:${u}@example.com`, 'phone:+442079460958']);
  const g = await get(r.json.subject_id);
  assert.equal(g.status, 200);
  assert.equal(g.json.state, 'active');
  assert.deepEqual(g.json.profile, { first_name: 'Ana', sizes: { top: 'M' }, vip: true });
  const phone = g.json.identifiers.find((i) => i.type === 'phone');
  assert.equal(phone.verified, true);
  assert.equal(phone.source, 'checkout');
  assert.equal(g.json.identifiers.find((i) => i.type === 'email').source, 'api');
  // Lookup is by normalised value, whatever the caller's spelling.
  assert.equal((await resolve(`email:${u.toUpperCase()}@EXAMPLE.com`)).json.subject_id, r.json.subject_id);
  assert.equal((await resolve('phone:+44 20 7946 0958')).json.subject_id, r.json.subject_id);
});

test('create with no identifiers: reachable by id only', async () => {
  const id = await create({ identifiers: [], profile: {} });
  assert.equal((await get(id)).json.identifiers.length, 0);
  const bare = await srv.req('POST', '/v1/subjects', { token: W, body: {} });
  assert.equal(bare.status, 201);
});

test('create: an identifier owned by another subject is 409 with the owner, and nothing is written', async () => {
  const u = uniq();
  const owner = await create({ identifiers: [`email:${u}@example.com`] });
  const before = await auditSize();
  const r = await srv.req('POST', '/v1/subjects', { token: W, body: {
    identifiers: [`loyalty:${u}`, `email:${u.toUpperCase()}@example.com`],
  } });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'identifier_taken');
  assert.equal(r.json.error.field, 'identifiers[1]');
  assert.equal(r.json.error.subject_id, owner);
  assert.ok(!r.text.includes(u), 'the error does not echo the identifier');
  assert.equal((await resolve(`loyalty:${u}`)).status, 404, 'the other identifier was not kept');
  assert.equal(await auditSize(), before, 'no audit entry for a failed request');
});

test('create: malformed input is a 4xx naming the field', async () => {
  const cases = [
    [{ identifiers: ['email:nobody'] }, 400, 'invalid_identifier', 'identifiers[0]'],
    [{ identifiers: ['email:a@b.example', 'fax:123'] }, 400, 'invalid_identifier', 'identifiers[1]'],
    [{ identifiers: ['phone:12345'] }, 400, 'invalid_identifier', 'identifiers[0]'],
    [{ identifiers: [{ identifier: 'device:abc', verified: 'yes' }] }, 400, 'invalid_field', 'verified'],
    [{ identifiers: [{ identifier: 'device:abc', source: 'Bad Source' }] }, 400, 'invalid_field', 'identifiers[0].source'],
    [{ identifiers: [{ verified: true }] }, 400, 'missing_field', 'identifiers[0].identifier'],
    [{ identifiers: [{ identifier: 'device:abc', colour: 1 }] }, 400, 'unknown_field', 'colour'],
    [{ identifiers: [42] }, 400, 'invalid_identifier', 'identifiers[0]'],
    [{ identifiers: 'email:a@b.example' }, 400, 'invalid_field', 'identifiers'],
    [{ identifiers: Array.from({ length: 33 }, (_, i) => `device:d${i}`) }, 400, 'invalid_field', 'identifiers'],
    [{ profile: { 'First Name': 'x' } }, 400, 'invalid_attribute', 'attributes.First Name'],
    // The whole name, not its first 30 bytes.
    [{ profile: { ['long_' + 'a'.repeat(40) + ' x']: 'x' } }, 400, 'invalid_attribute', 'attributes.long_' + 'a'.repeat(40) + ' x'],
    [{ profile: { note: 'x'.repeat(5000) } }, 400, 'invalid_attribute', 'attributes.note'],
    [{ profile: { gone: null } }, 400, 'invalid_attribute', 'attributes.gone'],
    [{ profile: [] }, 400, 'invalid_field', 'profile'],
    [{ identifer: [] }, 400, 'unknown_field', 'identifer'],
  ];
  for (const [body, status, code, field] of cases) {
    const r = await srv.req('POST', '/v1/subjects', { token: W, body });
    assert.equal(r.status, status, JSON.stringify(body).slice(0, 80));
    assert.equal(r.json.error.code, code, JSON.stringify(body).slice(0, 80));
    assert.equal(r.json.error.field, field, JSON.stringify(body).slice(0, 80));
  }
  let r = await srv.req('POST', '/v1/subjects', { token: W, raw: '{"identifiers":[', headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'invalid_json');
  r = await srv.req('POST', '/v1/subjects', { token: W, raw: '[]', headers: { 'content-type': 'application/json' } });
  assert.equal(r.json.error.code, 'invalid_json');
  r = await srv.req('POST', '/v1/subjects', { token: W, raw: '{"a":1,"a":2}', headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 400, 'duplicate keys are refused');
  r = await srv.req('POST', '/v1/subjects', { token: W, raw: '{}', headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 415);
  assert.equal(r.json.error.code, 'unsupported_media_type');
  r = await srv.req('POST', '/v1/subjects', { token: W, raw: '{}', headers: { 'content-type': 'application/json; charset=utf-8' } });
  assert.equal(r.status, 201);
  r = await srv.req('POST', '/v1/subjects', { token: W, raw: '{}' });
  assert.equal(r.status, 415, 'no content type');
});

test('resolve: 200, 404 and 400', async () => {
  const u = uniq();
  const id = await create({ identifiers: [`customer:C-${u}`] });
  assert.deepEqual((await resolve(`customer:C-${u}`)).json, { subject_id: id });
  const miss = await resolve(`customer:c-${u}`);
  assert.equal(miss.status, 404, 'customer ids are kept exactly (case matters)');
  assert.equal(miss.json.error.code, 'not_found');
  const bad = await resolve('email:not-an-email');
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'invalid_identifier');
  assert.equal(bad.json.error.field, 'identifier');
  assert.ok(!bad.text.includes('not-an-email'));
  assert.equal((await srv.req('GET', '/v1/subjects/resolve', { token: R })).json.error.code, 'missing_parameter');
  assert.equal((await srv.req('GET', '/v1/subjects/resolve?identifier=email%3Aa%40b.example&x=1', { token: R })).status, 400);
  // Query values are form-encoded: a '+' must be sent as %2B (a bare '+' is a space).
  const t = await create({ identifiers: [`email:${u}+tag@example.com`] });
  const q = await srv.req('GET', `/v1/subjects/resolve?identifier=email:${u}%2Btag@example.com`, { token: R });
  assert.equal(q.json.subject_id, t);
  const bare = await srv.req('GET', `/v1/subjects/resolve?identifier=email:${u}+tag@example.com`, { token: R });
  assert.equal(bare.status, 400);
});

test('read: unknown and malformed ids are 404', async () => {
  for (const id of ['sub_aaaaaaaaaaaaaaaaaaaaaaaaaa', 'nope', 'sub_' + 'A'.repeat(26)]) {
    const r = await get(id);
    assert.equal(r.status, 404, id);
    assert.equal(r.json.error.code, 'not_found');
  }
});

test('link and unlink identifiers', async () => {
  const u = uniq();
  const a = await create({ identifiers: [`email:${u}@example.com`] });
  const b = await create({ identifiers: [`device:${u}`] });
  let r = await srv.req('POST', `/v1/subjects/${a}/identifiers`, { token: W,
    body: { identifier: `loyalty:${u}`, verified: true, source: 'in_store' } });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(r.json, { subject_id: a, identifier: `loyalty:${u}`, linked: true });
  r = await srv.req('POST', `/v1/subjects/${a}/identifiers`, { token: W, body: { identifier: `loyalty:${u}` } });
  assert.equal(r.status, 200, 'linking again changes nothing');
  assert.equal(r.json.linked, false);
  // Another subject's identifier: 409, and nothing changes on either side.
  const beforeB = (await get(b)).json;
  r = await srv.req('POST', `/v1/subjects/${a}/identifiers`, { token: W, body: { identifier: `device:${u}` } });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'identifier_taken');
  assert.equal(r.json.error.subject_id, b);
  assert.equal(r.json.error.field, 'identifier');
  assert.deepEqual((await get(b)).json, beforeB);
  assert.equal((await get(a)).json.identifiers.length, 2);
  r = await srv.req('POST', '/v1/subjects/sub_aaaaaaaaaaaaaaaaaaaaaaaaaa/identifiers', { token: W, body: { identifier: `device:x${u}` } });
  assert.equal(r.status, 404);
  r = await srv.req('POST', `/v1/subjects/${a}/identifiers`, { token: W, body: { identifier: 'email:bad' } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.field, 'identifier');

  // Unlink: URL-encoded type:value; then the last one too.
  r = await srv.req('DELETE', `/v1/subjects/${a}/identifiers/${encodeURIComponent(`loyalty:${u}`)}`, { token: W });
  assert.equal(r.status, 200, r.text);
  assert.equal((await resolve(`loyalty:${u}`)).status, 404);
  r = await srv.req('DELETE', `/v1/subjects/${a}/identifiers/${encodeURIComponent(`loyalty:${u}`)}`, { token: W });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'identifier_not_linked');
  r = await srv.req('DELETE', `/v1/subjects/${a}/identifiers/${encodeURIComponent(`device:${u}`)}`, { token: W });
  assert.equal(r.status, 404, "cannot unlink another subject's identifier");
  r = await srv.req('DELETE', `/v1/subjects/${a}/identifiers/${encodeURIComponent(`email:${u.toUpperCase()}@Example.com`)}`, { token: W });
  assert.equal(r.status, 200, 'unlinking the last identifier is allowed');
  const g = await get(a);
  assert.equal(g.status, 200, 'still reachable by id');
  assert.deepEqual(g.json.identifiers, []);
  r = await srv.req('DELETE', `/v1/subjects/${a}/identifiers/email%3Anope`, { token: W });
  assert.equal(r.status, 400);
});

test('profile: set, replace and remove attributes', async () => {
  const id = await create({ profile: { first_name: 'Bo', city: 'Leeds' } });
  let r = await srv.req('PATCH', `/v1/subjects/${id}/profile`, { token: W,
    body: { attributes: { city: null, size: 'L', first_name: 'Bob' } } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { subject_id: id, profile: { first_name: 'Bob', size: 'L' } });
  assert.deepEqual((await get(id)).json.profile, { first_name: 'Bob', size: 'L' });
  for (const [body, code, field] of [
    [{}, 'missing_field', 'attributes'],
    [{ attributes: 'x' }, 'invalid_field', 'attributes'],
    [{ attributes: { '9lives': 1 } }, 'invalid_attribute', 'attributes.9lives'],
    [{ attributes: {}, extra: 1 }, 'unknown_field', 'extra'],
  ]) {
    r = await srv.req('PATCH', `/v1/subjects/${id}/profile`, { token: W, body });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, code);
    assert.equal(r.json.error.field, field);
  }
  const many = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`a${i}`, i]));
  r = await srv.req('PATCH', `/v1/subjects/${id}/profile`, { token: W, body: { attributes: many } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'too_many_attributes');
  assert.deepEqual((await get(id)).json.profile, { first_name: 'Bob', size: 'L' }, 'nothing was written');
});

test('merge: identifiers move, the survivor keeps its profile values, the other answers merged', async () => {
  const u = uniq();
  const a = await create({ identifiers: [`email:${u}@example.com`], profile: { first_name: 'Ana', city: 'York' } });
  const b = await create({ identifiers: [`phone:+447700900${String(seq).padStart(3, '0')}`, `loyalty:${u}`],
    profile: { first_name: 'A.', birthday: '05-04' } });
  const r = await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: a, from: b, reason: 'same loyalty card' } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { subject_id: a, merged: b, conflicts: [] });
  const g = (await get(a)).json;
  assert.equal(g.identifiers.length, 3);
  assert.deepEqual(g.profile, { first_name: 'Ana', city: 'York', birthday: '05-04' });
  assert.equal((await resolve(`loyalty:${u}`)).json.subject_id, a);
  const gone = await get(b);
  assert.equal(gone.status, 404);
  assert.equal(gone.json.error.code, 'merged');
  assert.equal(gone.json.error.merged_into, a);
  // Writes to the merged-away id are refused the same way.
  const link = await srv.req('POST', `/v1/subjects/${b}/identifiers`, { token: W, body: { identifier: `device:${u}` } });
  assert.equal(link.status, 404);
  assert.equal(link.json.error.merged_into, a);
  // A chain of merges points at today's survivor.
  const c = await create({ identifiers: [`device:${u}-c`] });
  assert.equal((await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: c, from: a } })).status, 200);
  assert.equal((await get(b)).json.error.merged_into, c);
  assert.equal((await get(a)).json.error.merged_into, c);
  assert.equal((await get(c)).json.identifiers.length, 4);
  // Merging a merged-away subject again.
  const again = await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: c, from: b } });
  assert.equal(again.status, 404);
  assert.equal(again.json.error.code, 'merged');
  assert.equal(again.json.error.field, 'from');
});

test('merge errors: into itself, unknown, malformed', async () => {
  const a = await create({});
  let r = await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: a, from: a } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'same_subject');
  r = await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: a, from: 'sub_aaaaaaaaaaaaaaaaaaaaaaaaaa' } });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.field, 'from');
  r = await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: 'sub_aaaaaaaaaaaaaaaaaaaaaaaaaa', from: a } });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.field, 'into');
  r = await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: a, from: 'x' } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.field, 'from');
  r = await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: a } });
  assert.equal(r.json.error.code, 'missing_field');
  assert.equal((await get(a)).status, 200, 'a failed merge changes nothing');
});

test('an erased subject cannot be merged, linked or patched (409), and reads as erased', async () => {
  const u = uniq();
  const a = await create({ identifiers: [`email:${u}@example.com`], profile: { first_name: 'Gone' } });
  const b = await create({});
  const r0 = spawnSync(process.env.CONSENTD_DBTOOL, ['erase', srv.dir, a], { encoding: 'utf8' });
  assert.equal(r0.status, 0, r0.stderr);
  let r = await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: b, from: a } });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'subject_erased');
  assert.equal(r.json.error.field, 'from');
  r = await srv.req('POST', '/v1/subjects/merge', { token: W, body: { into: a, from: b } });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.field, 'into');
  r = await srv.req('POST', `/v1/subjects/${a}/identifiers`, { token: W, body: { identifier: `device:${u}` } });
  assert.equal(r.status, 409);
  r = await srv.req('PATCH', `/v1/subjects/${a}/profile`, { token: W, body: { attributes: { x: 1 } } });
  assert.equal(r.status, 409);
  const g = await get(a);
  assert.equal(g.status, 200);
  assert.deepEqual([g.json.state, g.json.identifiers, g.json.profile], ['erased', [], {}]);
  assert.equal((await resolve(`email:${u}@example.com`)).status, 404);
});

test('scopes: the record needs subjects:read, resolving consent:read, writes subjects:write', async () => {
  const id = await create({});
  const reads = [['GET', `/v1/subjects/${id}`, 'subjects:read'], ['GET', '/v1/subjects/resolve?identifier=device%3Ax', 'consent:read']];
  const writes = [['POST', '/v1/subjects', {}], ['POST', `/v1/subjects/${id}/identifiers`, { identifier: 'device:z' }],
    ['DELETE', `/v1/subjects/${id}/identifiers/device%3Az`], ['PATCH', `/v1/subjects/${id}/profile`, { attributes: {} }],
    ['POST', '/v1/subjects/merge', { into: id, from: id }]];
  for (const s of Object.keys(srv.tokens)) {
    for (const [m, p, need] of reads) {
      const r = await srv.req(m, p, { token: srv.tokens[s] });
      assert.equal(r.status === 403, !(s === need || s === 'all'), `${s} ${m} ${p}`);
    }
    for (const [m, p, body] of writes) {
      const r = await srv.req(m, p, { token: srv.tokens[s], body });
      assert.equal(r.status === 403, !(s === 'subjects:write' || s === 'all'), `${s} ${m} ${p}`);
    }
  }
  for (const [m, p, body] of writes) assert.equal((await srv.req(m, p, { body })).status, 401);
  for (const [m, p] of reads) assert.equal((await srv.req(m, p)).status, 401);
});

test('no plaintext identifier or profile value in the database, its tables, the audit log or the logs', async () => {
  const u = uniq('pii');
  const secrets = [`${u}@example.com`, '+447700900777', `loyalty-${u}`, `Zebedee${u}`, `7 Acacia Road ${u}`];
  const id = await create({ identifiers: [`email:${secrets[0]}`, `phone:${secrets[1]}`, `loyalty:${secrets[2]}`],
    profile: { first_name: secrets[3], address: secrets[4] } });
  await srv.req('PATCH', `/v1/subjects/${id}/profile`, { token: W, body: { attributes: { address: `${secrets[4]} flat 2` } } });
  await resolve(`email:${secrets[0]}`);
  await srv.req('GET', `/v1/subjects/resolve?identifier=email:missing-${u}@example.com`, { token: R });
  // The raw files (database and WAL): encrypted, so no plaintext at all.
  for (const f of fs.readdirSync(srv.dir).filter((f) => f.startsWith('consentd.db'))) {
    const bytes = fs.readFileSync(path.join(srv.dir, f));
    for (const s of secrets) assert.ok(!bytes.includes(Buffer.from(s)), `${s} in ${f}`);
  }
  // Decrypted with the key, every table: values are sealed, lookups are blind.
  const dump = spawnSync(process.env.CONSENTD_DBTOOL, ['dump', srv.dir], { encoding: 'latin1', maxBuffer: 1 << 28 });
  assert.equal(dump.status, 0, dump.stderr);
  assert.match(dump.stdout, /== table identifiers/);
  assert.match(dump.stdout, /== table profile_attributes/);
  assert.match(dump.stdout, /== table audit_entries/);
  assert.ok(dump.stdout.includes(id), 'the dump does show plaintext that is not personal (ids)');
  for (const s of secrets) assert.ok(!dump.stdout.includes(s), `${s} in a decrypted table`);
  for (const s of [u, '7700900777', 'Zebedee', 'Acacia']) assert.ok(!dump.stdout.includes(s), `${s} in a decrypted table`);
  // The logs.
  const logs = srv.logs.join('\n');
  for (const s of [...secrets, u, 'missing-']) assert.ok(!logs.includes(s), `${s} in the logs`);
});
