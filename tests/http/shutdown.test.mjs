// SPDX-License-Identifier: ISC
// Shutdown: from SIGTERM on /readyz answers 503 (so a load balancer takes
// the server out) until the listener closes; requests in flight are
// finished, not dropped. With --shutdown-delay the listener stays open,
// serving every route, for that long first.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startServer, waitForLog } from './harness.mjs';

// A kept-alive connection that sends requests and reads whole answers.
function connection(port) {
  const sock = net.connect(port, '127.0.0.1');
  let buf = '';
  let waiting = null;
  const tryAnswer = () => {
    if (!waiting) return;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buf.slice(0, end);
    const m = head.match(/\r\ncontent-length: *(\d+)/i);
    const len = m ? Number(m[1]) : 0;
    if (buf.length < end + 4 + len) return;
    const body = buf.slice(end + 4, end + 4 + len);
    buf = buf.slice(end + 4 + len);
    const w = waiting;
    waiting = null;
    w({ status: Number(head.match(/^HTTP\/1\.1 (\d{3})/)[1]), head, body });
  };
  sock.on('data', (c) => { buf += c.toString('latin1'); tryAnswer(); });
  sock.on('error', () => {});
  const ready = new Promise((r) => sock.on('connect', r));
  return {
    ready,
    send(bytes) { sock.write(bytes); },
    answer(timeout = 10000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no answer')), timeout);
        waiting = (a) => { clearTimeout(t); resolve(a); };
        tryAnswer();
      });
    },
    close() { sock.destroy(); },
  };
}

const READYZ = 'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n';

// Whether a new connection to PORT is refused.
function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
  });
}

async function until(what, fn, ms = 10000) {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('during the drain /readyz answers 503 and a slow request in flight is still answered', async () => {
  const srv = await startServer({ args: ['--drain-timeout', '20'] });
  const a = connection(srv.port);
  const b = connection(srv.port);
  await Promise.all([a.ready, b.ready]);
  a.send(READYZ);
  assert.equal((await a.answer()).status, 200);

  // A write whose body has not all arrived: in flight until it does.
  const body = JSON.stringify({ identifier: 'email:drain@example.com', purpose: 'newsletter',
    channel: 'email', state: 'granted', method: 'web_form' });
  b.send(`POST /v1/consents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.tokens['consent:write']}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
  await until('the slow request in flight', async () => {
    const m = await srv.req('GET', '/metrics', { token: srv.tokens.all });
    return /^consentd_http_requests_in_flight 2$/m.test(m.text);
  });

  srv.proc.kill('SIGTERM');
  assert.ok(await waitForLog(srv, (j) => j.event === 'shutting_down', 5000));
  // Not ready, on the connection kept from before.
  a.send(READYZ);
  const r = await a.answer();
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.body).error.code, 'draining');
  // The listener is closed: new connections are refused ...
  await until('the listener closed', () => refused(srv.port));
  // ... while the request in flight is finished and answered.
  assert.equal(srv.proc.exitCode, null, 'still draining');
  b.send(body.slice(10));
  const w = await b.answer();
  assert.equal(w.status, 201, w.body);
  a.close();
  b.close();
  assert.equal((await srv.stop()).code, 0);
  assert.ok(!srv.logs.some((l) => l.includes('"drain_timeout"')));
  assert.ok(srv.logs.some((l) => l.includes('"event":"stopped"')));
});

test('--shutdown-delay keeps the listener open and serving, /readyz at 503, then closes it', async () => {
  const srv = await startServer({ args: ['--shutdown-delay', '3'] });
  assert.equal((await srv.req('GET', '/readyz')).status, 200);
  srv.proc.kill('SIGTERM');
  const line = await waitForLog(srv, (j) => j.event === 'shutting_down', 5000);
  assert.equal(line.delay_s, 3);
  // New connections are still taken: /readyz says 503, the rest is served.
  const r = await srv.req('GET', '/readyz');
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'draining');
  assert.equal((await srv.req('GET', '/healthz')).status, 200);
  const c = await srv.req('GET', '/v1/consent/check?identifier=email%3Adelay%40example.com&purpose=newsletter&channel=email',
    { token: srv.tokens['consent:check'] });
  assert.equal(c.status, 200, c.text);
  assert.equal(srv.proc.exitCode, null, 'still serving');
  // Then the listener closes and the process ends cleanly.
  await until('the listener closed', () => refused(srv.port));
  assert.equal((await srv.stop()).code, 0);
});

test('SIGHUP does not stop the server', async () => {
  const srv = await startServer();
  srv.proc.kill('SIGHUP');
  assert.ok(await waitForLog(srv, (j) => j.event === 'sighup', 5000));
  assert.equal((await srv.req('GET', '/readyz')).status, 200);
  assert.equal((await srv.stop()).code, 0);
});
