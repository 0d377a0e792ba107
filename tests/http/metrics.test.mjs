// SPDX-License-Identifier: ISC
// Observability: the X-Request-Id of every answer (the client's when it is
// acceptable, else one the server makes) and of its access-log line, and
// GET /metrics: checks counted by decision and reason, latency histograms
// by route pattern, group-commit batches, the outbox's depth, requests near
// their deadline, the build and the process; a real scrape passes
// `promtool check metrics`, and no identifier or token ever appears in it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { PG, metricValue as value, startServer, waitForLog } from './harness.mjs';

let srv;
before(async () => {
  // Messages fail once and wait ten minutes for their next attempt: the
  // outbox holds them pending while the test reads its depth.
  srv = await startServer({ env: { CONSENTD_OUTBOX_SENDER: 'smtp', CONSENTD_SMTP_URL: '',
    CONSENTD_OUTBOX_MAX_ATTEMPTS: '2', CONSENTD_OUTBOX_BASE_MS: '600000' } });
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

const ANA = 'email:metrics-ana.kowalski@example.com';
const NOBODY = 'email:metrics-nobody.hidden@example.com';
const HEX32 = /^[0-9a-f]{32}$/;

async function scrape() {
  const r = await srv.req('GET', '/metrics', { token: srv.tokens['consent:check'] });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return r.text;
}

async function waitFor(what, fn, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function accessLine(id) {
  return waitForLog(srv, (j) => j.event === 'http' && j.request_id === id);
}

async function check(identifier) {
  const q = new URLSearchParams({ identifier, purpose: 'newsletter', channel: 'email' });
  const r = await srv.req('GET', `/v1/consent/check?${q}`, { token: srv.tokens['consent:check'] });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function consent(identifier, state) {
  const r = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    body: { identifier, purpose: 'newsletter', channel: 'email', state, method: 'web_form' } });
  assert.equal(r.status, 201, r.text);
  return r;
}

test('an acceptable X-Request-Id is echoed on the answer and written to its access line', async () => {
  for (const id of ['order-42.retry:1', 'Root=1-67891233-abcdef012345678912345678/x+y', 'a'.repeat(128)]) {
    const r = await srv.req('GET', '/healthz', { headers: { 'x-request-id': id } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-request-id'), id);
    const line = await accessLine(id);
    assert.ok(line, `access line with ${id}`);
    assert.equal(line.route, '/healthz');
  }
  // Errors, and a write answered after its group commit, carry it too.
  const nf = await srv.req('GET', '/no/such/path', { headers: { 'x-request-id': 'nf-1' } });
  assert.equal(nf.status, 404);
  assert.equal(nf.headers.get('x-request-id'), 'nf-1');
  const unauth = await srv.req('GET', '/metrics', { headers: { 'x-request-id': 'auth-1' } });
  assert.equal(unauth.status, 401);
  assert.equal(unauth.headers.get('x-request-id'), 'auth-1');
  const w = await srv.req('POST', '/v1/consents', { token: srv.tokens['consent:write'],
    headers: { 'x-request-id': 'write-1' },
    body: { identifier: 'email:metrics-reqid@example.com', purpose: 'newsletter', channel: 'email',
      state: 'granted', method: 'web_form' } });
  assert.equal(w.status, 201, w.text);
  assert.equal(w.headers.get('x-request-id'), 'write-1');
  assert.equal((await accessLine('write-1')).status, 201);
});

test('without an X-Request-Id, or with one not acceptable, the server makes one', async () => {
  const made = [];
  const bad = ['', 'ana.kowalski@example.com', 'two words', 'x'.repeat(129), 'quote"d', 'semi;colon'];
  for (const sent of [undefined, ...bad]) {
    const headers = sent === undefined ? {} : { 'x-request-id': sent };
    const r = await srv.req('GET', '/healthz', { headers });
    assert.equal(r.status, 200);
    const id = r.headers.get('x-request-id');
    assert.match(id, HEX32, `made for ${JSON.stringify(sent)}`);
    assert.ok(await accessLine(id), `access line with the made id ${id}`);
    made.push(id);
  }
  assert.equal(new Set(made).size, made.length, 'every id made is new');
  const log = srv.logs.join('\n');
  for (const s of ['ana.kowalski', 'two words', 'x'.repeat(129), 'semi;colon'])
    assert.ok(!log.includes(s), `${s} reached the log`);
});

test('checks are counted by decision and reason, latencies by route pattern, writes by batch', async () => {
  const before = await scrape();
  await consent(ANA, 'granted');
  assert.equal((await check(ANA)).reason, 'consent');
  assert.equal((await check(NOBODY)).reason, 'unknown_subject');
  await consent(ANA, 'withdrawn');
  assert.equal((await check(ANA)).reason, 'withdrawn');
  // The list form counts each check it answers.
  const b = await srv.req('POST', '/v1/consent/check', { token: srv.tokens['consent:check'],
    body: { checks: [{ identifier: NOBODY, purpose: 'newsletter', channel: 'email' },
      { identifier: ANA, purpose: 'newsletter', channel: 'email' }] } });
  assert.equal(b.status, 200, b.text);
  // A refused check (unknown purpose) is no decision: not counted.
  const q = new URLSearchParams({ identifier: ANA, purpose: 'no_such_purpose', channel: 'email' });
  assert.equal((await srv.req('GET', `/v1/consent/check?${q}`, { token: srv.tokens['consent:check'] })).status, 422);

  const lat = 'consentd_http_request_duration_seconds_count{method="GET",route="/v1/consent/check"}';
  // A request is counted once its answer has gone out: wait for the last.
  const after = await waitFor('the last check\'s latency', async () => {
    const t = await scrape();
    return value(t, lat) - value(before, lat) >= 4 ? t : null;
  });
  const delta = (s) => value(after, s) - value(before, s);
  assert.equal(delta('consentd_checks_total{decision="allow",reason="consent"}'), 1);
  assert.equal(delta('consentd_checks_total{decision="deny",reason="unknown_subject"}'), 2);
  assert.equal(delta('consentd_checks_total{decision="deny",reason="withdrawn"}'), 2);
  assert.equal(delta(lat), 4, 'three checks answered and one refused, all on one pattern');
  assert.equal(delta('consentd_http_request_duration_seconds_bucket{method="GET",route="/v1/consent/check",le="+Inf"}'), 4);
  assert.ok(value(after, 'consentd_http_request_duration_seconds_sum{method="GET",route="/v1/consent/check"}') > 0);
  assert.ok(delta('consentd_group_commit_batch_size_count') >= 1, 'the two writes were committed');
  assert.ok(delta('consentd_group_commit_batch_size_sum') >= 2, 'holding both writes');
  assert.ok(delta('consentd_group_commit_duration_seconds_count') >= 1);
  // Every series of the process and the build.
  assert.equal(value(after, 'consentd_build_info{version="0.1.0"}'), 1);
  for (const s of ['process_cpu_seconds_total', 'process_resident_memory_bytes',
    'process_open_fds', 'process_start_time_seconds'])
    assert.ok(value(after, s) > 0, s);
  const start = value(after, 'process_start_time_seconds');
  assert.ok(Math.abs(start - Date.now() / 1000) < 3600, `start time ${start}`);
  // A path is never a label: a subject's route is its pattern.
  await srv.req('GET', `/v1/subjects/${b.json.results[1].subject_id}`, { token: srv.tokens['subjects:read'] });
  const t = await waitFor('the subject route', async () => {
    const x = await scrape();
    return x.includes('route="/v1/subjects/{id}"') ? x : null;
  });
  assert.ok(!t.includes(b.json.results[1].subject_id), 'a subject id in /metrics');
});

test('the outbox\'s depth and the requests near or past their deadline', async () => {
  const before = await scrape();
  const ids = [];
  for (const who of ['a', 'b', 'c']) {
    const r = await srv.req('POST', '/v1/dsr', { token: srv.tokens['dsr:admin'],
      body: { type: 'access', identifier: `email:metrics-dsr-${who}@example.com` } });
    assert.equal(r.status, 201, r.text);
    ids.push(r.json.id);
  }
  // Each request's verification message fails once and waits: pending.
  let t = await waitFor('three more messages pending', async () => {
    const x = await scrape();
    return value(x, 'consentd_outbox_messages{status="pending"}') -
      value(before, 'consentd_outbox_messages{status="pending"}') === 3 ? x : null;
  });
  assert.equal(value(t, 'consentd_outbox_messages{status="dead"}'), 0);
  assert.equal(value(t, 'consentd_dsr_requests{deadline="any"}'), 3);
  assert.equal(value(t, 'consentd_dsr_requests{deadline="within_7d"}'), 0, 'a month to go');
  assert.equal(value(t, 'consentd_dsr_requests{deadline="overdue"}'), 0);
  // One due tomorrow, one due yesterday (the clock of the deadlines moved
  // behind the service's back, as only a test does); a closed one never counts.
  const now = Date.now() * 1000;
  const sql = (q) => {
    const r = spawnSync(process.env.CONSENTD_DBTOOL, ['sql', srv.dir, q], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  sql(`UPDATE dsr_requests SET due_at = ${now + 86400e6} WHERE id = '${ids[0]}'`);
  sql(`UPDATE dsr_requests SET due_at = ${now - 86400e6} WHERE id = '${ids[1]}'`);
  const c = await srv.req('POST', `/v1/dsr/${ids[2]}/cancel`, { token: srv.tokens['dsr:admin'],
    body: { reason: 'asked by mistake' } });
  assert.equal(c.status, 200, c.text);
  t = await scrape();
  assert.equal(value(t, 'consentd_dsr_requests{deadline="any"}'), 2);
  assert.equal(value(t, 'consentd_dsr_requests{deadline="within_7d"}'), 1);
  assert.equal(value(t, 'consentd_dsr_requests{deadline="overdue"}'), 1);
});

test('a real scrape passes promtool check metrics, and holds no identifier or token', async () => {
  await check(ANA);
  const text = await scrape();
  const r = spawnSync(process.env.PROMTOOL || 'promtool', ['check', 'metrics'],
    { input: text, encoding: 'utf8' });
  assert.ok(!r.error, `promtool could not run (tools/deps.sh test installs the Debian package prometheus): ${r.error}`);
  assert.equal(r.status, 0, `promtool check metrics:\n${r.stdout}${r.stderr}`);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'promtool has nothing to say');
  for (const tok of Object.values(srv.tokens)) assert.ok(!text.includes(tok), 'a token in /metrics');
  for (const s of ['metrics-ana', 'kowalski', 'metrics-nobody', 'example.com', 'metrics-dsr', '@'])
    assert.ok(!text.includes(s), `${s} in /metrics`);
  // Still a token's page: without one it is 401, with any valid one 200.
  assert.equal((await srv.req('GET', '/metrics')).status, 401);
  assert.equal((await srv.req('GET', '/metrics', { token: 'cm_nope' })).status, 401);
});

test('the store counts the pages and statements its work costs', async () => {
  const series = (t) => ({
    hit: value(t, 'consentd_store_page_reads_total{source="cache"}'),
    miss: value(t, 'consentd_store_page_reads_total{source="file"}'),
    written: value(t, 'consentd_store_pages_written_total'),
    statements: value(t, 'consentd_store_statements_total'),
    transactions: value(t, 'consentd_store_transactions_total'),
  });
  const a = series(await scrape());
  for (let i = 0; i < 20; i++) await check(`email:metrics-cost-${i}@example.com`);
  const b = series(await scrape());
  // Each check runs at least one statement in its own read transaction.
  assert.ok(b.statements - a.statements >= 20, JSON.stringify([a, b]));
  assert.ok(b.transactions - a.transactions >= 20, JSON.stringify([a, b]));
  await consent('email:metrics-cost-writer@example.com', 'granted');
  const c = series(await scrape());
  if (PG) {
    // Pages are SQLCipher's; PostgreSQL's buffers are its own to report.
    const t = await scrape();
    assert.doesNotMatch(t, /consentd_store_page(s_written|_reads)_total/);
    return;
  }
  // And reads at least one page.
  assert.ok((b.hit + b.miss) - (a.hit + a.miss) >= 20, JSON.stringify([a, b]));
  assert.ok(c.written > b.written, `a committed write writes pages: ${JSON.stringify([b, c])}`);
});
