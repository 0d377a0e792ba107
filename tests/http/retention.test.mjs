// SPDX-License-Identifier: ISC
// Retention (policy "retention"; docs/operations.md, "Retention"): the
// sweep deletes closed requests, expired packages and delivered outbox
// rows past their periods and minimises consent evidence, while younger
// records and open requests stay; each sweep that changed anything is one
// retention.swept audit entry with counts; `audit verify` still passes;
// --dry-run changes nothing; the server sweeps on its own; bad periods stop
// start-up naming the field.
//
// Time passes through the test build (build/tests/consentd-faults), whose
// clock runs CONSENTD_FAULT_CLOCK_SKEW seconds ahead: records are made
// "now" (old) and 8 days on (young), and the sweep runs 12 days on with
// periods of 10 days (closed requests 11, packages held 9), then 18 days
// on, when the young request's package has expired but not the request.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, POLICY, cli, createToken, startServer, tmpdir, settleOutbox, waitForLog } from './harness.mjs';

const FAULTS = process.env.CONSENTD_FAULTS_BIN;
const DBTOOL = process.env.CONSENTD_DBTOOL;
const DAY = 86400;

// A policy directory: the shipped policy with RETENTION merged into its
// retention section.
function policyWith(retention) {
  const doc = JSON.parse(fs.readFileSync(path.join(POLICY, 'policy.json'), 'utf8'));
  doc.retention = { ...doc.retention, ...retention };
  const dir = tmpdir('consentd-policy-');
  fs.writeFileSync(path.join(dir, 'policy.json'), `${JSON.stringify(doc, null, 2)}\n`);
  return dir;
}
const SHORT = { closed_requests_days: 11, outbox_delivered_days: 10,
  evidence_ip_truncate_days: 10, packages_days: 9 };

function dbtool(...args) {
  const r = spawnSync(DBTOOL, args, { encoding: 'latin1', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}
const sql = (dir, q) => dbtool('sql', dir, q).trim();

// `consentd retention run` on the test build, SKEW seconds ahead.
function sweep(dir, policy, skew, extra = []) {
  const r = spawnSync(FAULTS, ['retention', 'run', '--data', dir, '--policy', policy, ...extra],
    { encoding: 'utf8', env: { ...process.env, CONSENTD_FAULT_CLOCK_SKEW: String(skew) } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function verify(dir, bin = BIN, skew = 0) {
  const r = spawnSync(bin, ['audit', 'verify', '--data', dir], { encoding: 'utf8',
    env: { ...process.env, CONSENTD_FAULT_CLOCK_SKEW: String(skew) } });
  assert.equal(r.status, 0, `audit verify: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, / 0 failed/);
}

// A server on DATA (tokens TOKENS) whose clock is SKEW seconds ahead.
async function serverAt(data, tokens, policy, skew, mail) {
  const s = await startServer({ bin: skew ? FAULTS : BIN, data, noTokens: Boolean(tokens), policy,
    args: ['--retention-interval', '0'],
    env: { CONSENTD_OUTBOX_DIR: mail, CONSENTD_OUTBOX_BASE_MS: '200',
      CONSENTD_FAULT_CLOCK_SKEW: String(skew) } });
  if (tokens) s.tokens = tokens;
  return s;
}

let seq = 0;
const email = (tag) => `email:ret${process.pid}${tag}x${++seq}@example.com`;

// The steps a server makes records with.
function on(srv) {
  const DPO = srv.tokens['dsr:admin'];
  const call = async (method, p, body, want) => {
    const r = await srv.req(method, p, { token: DPO, body });
    assert.equal(r.status, want, `${method} ${p}: ${r.text}`);
    return r.json;
  };
  return {
    async consent(identifier, purpose, evidence) {
      const r = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
        body: { identifier, purpose, channel: 'email', state: 'granted', method: 'web_form', evidence } });
      assert.equal(r.status, 201, r.text);
      return r.json;
    },
    request: (type, identifier, verified) => call('POST', '/v1/dsr', { type, identifier, verified }, 201),
    step: (id, s, body) => call('POST', `/v1/dsr/${id}/${s}`, body, 200),
    get: (id) => srv.req('GET', `/v1/dsr/${id}`, { token: DPO }),
    async closedAccess(tag) {
      const e = email(tag);
      await this.consent(e, 'newsletter');
      const r = await this.request('access', e, true);
      const p = await this.step(r.id, 'process');
      assert.equal(p.status, 'completed');
      return r.id;
    },
    async denied(tag) {
      const e = email(tag);
      await this.consent(e, 'newsletter');
      const r = await this.request('objection', e, true);
      await this.step(r.id, 'deny', { reason: 'the retention test denies it' });
      return r.id;
    },
    // An unverified request: its identity code goes out through the outbox.
    async unverified(tag, type) {
      const e = email(tag);
      await this.consent(e, 'newsletter');
      return (await this.request(type, e)).id;
    },
  };
}

const OLD_EVIDENCE = { url: 'https://shop.example/signup', ip: '203.0.113.77',
  user_agent: 'RetentionAgent/1.0 (old)', form_id: 'signup' };
const OLD_V6 = { url: 'https://shop.example/offers', ip: '2001:db8:1234:5678::9',
  user_agent: 'RetentionAgent/1.0 (old)' };
const YOUNG_EVIDENCE = { url: 'https://shop.example/signup', ip: '198.51.100.23',
  user_agent: 'RetentionAgent/1.0 (young)' };

async function history(srv, reader, subject) {
  const r = await srv.req('GET', `/v1/subjects/${subject}/consents?history=true`, { token: reader });
  assert.equal(r.status, 200, r.text);
  return r.json.events;
}
async function decision(srv, identifier, purpose) {
  const q = new URLSearchParams({ identifier, purpose, channel: 'email' });
  const r = await srv.req('GET', `/v1/consent/check?${q}`, { token: srv.tokens['consent:read'] });
  assert.equal(r.status, 200, r.text);
  return `${r.json.decision}/${r.json.reason}`;
}

test('the sweep deletes what is past its period, keeps the rest, minimises evidence and is one audit entry', async () => {
  const policy = policyWith(SHORT);
  const mail = tmpdir('consentd-mail-');
  const ids = {};
  let oldSubject, oldIdent, youngSubject, reader;

  // Day 0: the old records.
  const a = await serverAt(undefined, null, policy, 0, mail);
  const data = a.data;
  const tokens = a.tokens;
  try {
    reader = createToken(a.dir, 'reader', ['consent:read', 'subjects:read']);
    const A = on(a);
    oldIdent = email('ev');
    oldSubject = (await A.consent(oldIdent, 'newsletter', OLD_EVIDENCE)).subject_id;
    await A.consent(oldIdent, 'email_offers', OLD_V6);
    ids.r1 = await A.closedAccess('r1');
    ids.r2 = await A.denied('r2');
    ids.r3 = await A.unverified('r3', 'restriction');
    ids.r4 = await A.unverified('r4', 'erasure');
    await settleOutbox(a);
    await A.step(ids.r3, 'cancel', { reason: 'the retention test cancels it' });
    await settleOutbox(a);
  } finally {
    assert.equal((await a.stop()).code, 0);
  }

  // Day 8: young records (the old package, held until day 9, is still there).
  const b = await serverAt(data, tokens, policy, 8 * DAY, mail);
  try {
    const B = on(b);
    const ye = email('young');
    youngSubject = (await B.consent(ye, 'newsletter', YOUNG_EVIDENCE)).subject_id;
    ids.r5 = await B.unverified('r5', 'erasure');
    ids.r6 = await B.denied('r6');
    ids.r8 = await B.closedAccess('r8');
    await settleOutbox(b);
  } finally {
    assert.equal((await b.stop()).code, 0);
  }

  const dir = data.dir;
  const pkgOf = (r) => sql(dir, `SELECT id FROM dsr_packages WHERE request_id = '${r}'`);
  const pkg = { r1: pkgOf(ids.r1), r8: pkgOf(ids.r8) };
  for (const k of Object.keys(pkg)) {
    assert.match(pkg[k], /^pkg_/, `${k} has a package`);
    assert.ok(fs.existsSync(path.join(dir, 'packages', pkg[k])));
  }
  const sentOf = (r) => Number(sql(dir, `SELECT count(*) FROM outbox WHERE request_id = '${r}' AND status = 'sent'`));
  assert.ok(sentOf(ids.r4) >= 1 && sentOf(ids.r5) >= 1 && sentOf(ids.r3) >= 1, 'codes were delivered');
  const auditSize = () => Number(sql(dir, 'SELECT count(*) FROM audit_entries'));
  const size0 = auditSize();

  // Day 12, dry run: the counts, and not a byte of the store changed.
  const dump0 = dbtool('dump', dir);
  const dry = sweep(dir, policy, 12 * DAY, ['--dry-run']);
  assert.equal(dry.dry_run, true);
  assert.equal(dry.audit_index, null);
  assert.deepEqual([dry.requests, dry.packages, dry.evidence], [3, 1, 2]);
  assert.ok(dry.outbox >= 1);
  assert.equal(dbtool('dump', dir), dump0, '--dry-run changed nothing');
  assert.equal(auditSize(), size0);

  // The sweep itself.
  const done = sweep(dir, policy, 12 * DAY);
  assert.equal(done.dry_run, false);
  for (const k of ['requests', 'packages', 'outbox', 'evidence'])
    assert.equal(done[k], dry[k], `${k}: the dry run counted what the sweep did`);
  assert.equal(auditSize(), size0 + 1, 'one audit entry');
  assert.equal(done.audit_index, size0);
  const entry = JSON.parse(sql(dir, `SELECT entry FROM audit_entries WHERE idx = ${done.audit_index}`));
  assert.equal(entry.type, 'retention.swept');
  const details = entry.d;
  assert.deepEqual({ requests: details.requests, packages: details.packages, outbox: details.outbox,
    evidence: details.evidence }, { requests: 3, packages: 1, outbox: done.outbox, evidence: 2 });
  assert.doesNotMatch(JSON.stringify(entry), /dsr_|pkg_|obx_|sub_|evt_|@|203\.0\.113/, 'counts, no ids');

  // Closed requests past the period are gone with all that hung on them.
  for (const r of [ids.r1, ids.r2, ids.r3]) {
    for (const t of ['dsr_requests WHERE id', 'dsr_timeline WHERE request_id',
      'dsr_packages WHERE request_id', 'outbox WHERE request_id', 'dsr_codes WHERE request_id'])
      assert.equal(sql(dir, `SELECT count(*) FROM ${t} = '${r}'`), '0', `${t} ${r}`);
  }
  // Open and younger requests stay.
  for (const r of [ids.r4, ids.r5, ids.r6, ids.r8])
    assert.equal(sql(dir, `SELECT count(*) FROM dsr_requests WHERE id = '${r}'`), '1', r);
  // Packages: the old request's goes with it, file and key; the young one stays.
  assert.equal(sql(dir, 'SELECT id FROM dsr_packages ORDER BY id'), pkg.r8);
  assert.ok(!fs.existsSync(path.join(dir, 'packages', pkg.r1)));
  assert.ok(fs.existsSync(path.join(dir, 'packages', pkg.r8)));
  // Delivered outbox rows: the open request's old code is gone, the young one's stays.
  assert.equal(sentOf(ids.r4), 0);
  assert.ok(sentOf(ids.r5) >= 1);

  // Nothing of the old IP addresses or user agent is left anywhere, decrypted or not.
  const f = spawnSync(DBTOOL, ['forensics', dir, '203.0.113.77', '2001:db8:1234:5678',
    'RetentionAgent/1.0 (old)'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(f.status, 0, f.stderr);
  assert.match(f.stdout, /^0 hits/m, f.stdout);
  const g = spawnSync(DBTOOL, ['forensics', dir, '198.51.100.23'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.doesNotMatch(g.stdout, /^0 hits/m, 'the young address is still there (the search finds it)');

  verify(dir);

  // Read back: minimised evidence, young evidence whole, decisions unchanged.
  const d = await serverAt(data, tokens, policy, 12 * DAY, mail);
  try {
    const ev = (await history(d, reader, oldSubject)).map((e) => [e.purpose, e.evidence]);
    assert.deepEqual(Object.fromEntries(ev), {
      newsletter: { url: 'https://shop.example/signup', ip: '203.0.113.0', form_id: 'signup' },
      email_offers: { url: 'https://shop.example/offers', ip: '2001:db8:1234::' },
    });
    assert.deepEqual((await history(d, reader, youngSubject))[0].evidence, YOUNG_EVIDENCE);
    assert.equal(await decision(d, oldIdent, 'newsletter'), 'allow/consent');
    assert.equal(await decision(d, oldIdent, 'email_offers'), 'allow/consent');
    assert.equal((await on(d).get(ids.r1)).status, 404);
    const r4 = await on(d).get(ids.r4);
    assert.equal(r4.status, 200);
    assert.equal(r4.json.status, 'identity_unverified');
  } finally {
    assert.equal((await d.stop()).code, 0);
  }

  // A second sweep finds nothing and writes nothing.
  const size1 = auditSize();
  const again = sweep(dir, policy, 12 * DAY);
  assert.deepEqual([again.requests, again.packages, again.outbox, again.evidence, again.audit_index],
    [0, 0, 0, 0, null]);
  assert.equal(auditSize(), size1);

  // Day 18: the young request's package has expired (day 17) and goes;
  // the request (closed on day 8, kept 11 days) stays.
  const later = sweep(dir, policy, 18 * DAY);
  assert.equal(later.packages, 1);
  assert.equal(later.requests, 0);
  assert.equal(sql(dir, 'SELECT count(*) FROM dsr_packages'), '0');
  assert.ok(!fs.existsSync(path.join(dir, 'packages', pkg.r8)));
  assert.equal(sql(dir, `SELECT status FROM dsr_requests WHERE id = '${ids.r8}'`), 'completed');
  verify(dir);
});

test('the server sweeps on its own, soon after start-up', async () => {
  const policy = policyWith(SHORT);
  const mail = tmpdir('consentd-mail-');
  const a = await serverAt(undefined, null, policy, 0, mail);
  let sid;
  try {
    sid = (await on(a).consent(email('srv'), 'newsletter', OLD_EVIDENCE)).subject_id;
  } finally {
    assert.equal((await a.stop()).code, 0);
  }
  const s = await startServer({ bin: FAULTS, data: a.data, noTokens: true, policy,
    args: ['--retention-interval', '1'],
    env: { CONSENTD_OUTBOX_DIR: mail, CONSENTD_FAULT_CLOCK_SKEW: String(12 * DAY) } });
  s.tokens = a.tokens;
  try {
    const log = await waitForLog(s, (j) => j.event === 'retention_swept' && j.evidence === 1, 20000);
    assert.ok(log, `a sweep ran: ${s.logs.join('\n')}`);
    assert.equal(log.audited, true);
    const reader = a.tokens.all;
    assert.deepEqual((await history(s, reader, sid))[0].evidence,
      { url: 'https://shop.example/signup', ip: '203.0.113.0', form_id: 'signup' });
    // Later sweeps find nothing and write no entry.
    const quiet = await waitForLog(s, (j) => j.event === 'retention_swept' && j.evidence === 0, 20000);
    assert.equal(quiet.audited, false);
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
  verify(a.dir);
});

test('bad retention periods stop start-up and the sweep, naming the file, line and field', async () => {
  const data = tmpdir();
  assert.equal(cli(['init', '--data', path.join(data, 'd')]).code, 0);
  const help = cli(['retention', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usage: consentd retention run/);
  assert.match(cli(['help']).stdout, /^ {2}retention /m);
  for (const bad of [['retention'], ['retention', 'frob'], ['retention', 'run', '--bogus'],
    ['retention', 'run', 'extra'], ['serve', '--retention-interval', '-1'],
    ['serve', '--retention-interval', 'hourly']])
    assert.equal(cli(bad).code, 64, bad.join(' '));
  const cases = [
    [{ evidence_ip_truncate_days: -1 }, 'retention.evidence_ip_truncate_days', /between 1 and 3650/],
    [{ outbox_delivered_days: 0 }, 'retention.outbox_delivered_days', /between 1 and 3650/],
    [{ outbox_delivered_days: 100000 }, 'retention.outbox_delivered_days', /between 1 and 3650/],
    [{ evidence_ip_truncate_days: '30' }, 'retention.evidence_ip_truncate_days', /an integer/],
    [{ keep_forever: true }, 'retention.keep_forever', /unknown field/],
  ];
  for (const [ret, field, msg] of cases) {
    const policy = policyWith(ret);
    for (const args of [['serve', '--listen', '127.0.0.1:0'], ['retention', 'run']]) {
      const r = cli([...args, '--data', path.join(data, 'd'), '--policy', policy]);
      assert.equal(r.code, 1, `${args[0]} ${field}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`policy\\.json:\\d+: ${field.replace('.', '\\.')}: `), r.stderr);
      assert.match(r.stderr, msg);
    }
  }
});
