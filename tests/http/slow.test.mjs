// SPDX-License-Identifier: ISC
// Slow clients: every byte a client sends resets libmicrohttpd's idle timer,
// so without deadlines of its own a client trickling a byte every few
// seconds holds a connection for ever, and a handful of them fill the
// server. Here a request head must arrive within --header-timeout, a whole
// request with a fixed-length body within --request-timeout, and a streamed
// NDJSON body must keep up --min-rate; a write waiting for group commit is
// never cut. Requests of this file use a connection each (Connection:
// close), as the short timeouts would close idle keep-alive ones.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { rawExchange, startServer, statusLines } from './harness.mjs';

const HEADER_TIMEOUT = 2;
const REQUEST_TIMEOUT = 3;
const MIN_RATE = 1024;

let srv;
before(async () => {
  srv = await startServer({ args: ['--max-connections', '16', '--header-timeout', String(HEADER_TIMEOUT),
    '--request-timeout', String(REQUEST_TIMEOUT), '--min-rate', String(MIN_RATE), '--idle-timeout', '30'] });
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One request on a connection of its own: {status, text, json}.
function request(method, path, { token, body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const h = { connection: 'close', ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (body !== undefined) h['content-type'] ??= 'application/json';
    const rq = http.request({ host: '127.0.0.1', port: srv.port, method, path, headers: h, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, text, json });
      });
    });
    rq.on('error', reject);
    rq.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

async function auditSize() {
  const r = await request('GET', '/v1/audit/entries?to=999999999', { token: srv.tokens['audit:read'] });
  return Number(r.json.error.message.match(/holds (\d+)/)[1]);
}

// A client that sends HEAD at once, then one byte of TRICKLE every EVERY ms
// until the server closes the connection. Resolves with what it saw.
function trickler(head, trickle, every) {
  return new Promise((resolve) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    const t0 = Date.now();
    let data = '';
    let timer;
    let i = 0;
    const done = () => { clearInterval(timer); sock.destroy(); resolve({ data, ms: Date.now() - t0 }); };
    sock.on('data', (c) => { data += c.toString('latin1'); });
    sock.on('close', done);
    sock.on('error', () => {});
    sock.on('connect', () => {
      sock.write(head);
      timer = setInterval(() => { if (!sock.destroyed) sock.write(trickle[i++ % trickle.length]); }, every);
    });
    // Far beyond every deadline: a connection still open then was never cut.
    setTimeout(done, 12000);
  });
}

test('16 clients trickling their heads fill a 16-connection server: /healthz answers within seconds, each is closed', async () => {
  const t0 = Date.now();
  const slow = [];
  for (let i = 0; i < 16; i++) slow.push(trickler('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', 'abcdefgh', 300));
  await sleep(500);
  let served = 0;
  while (Date.now() - t0 < 10000) {
    const r = await rawExchange(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1000);
    if (statusLines(r.text)[0] === 200) { served = Date.now() - t0; break; }
    await sleep(200);
  }
  assert.ok(served > 0, '/healthz answered while the slow clients kept trickling');
  assert.ok(served < (HEADER_TIMEOUT + 3) * 1000, `/healthz answered after ${served} ms`);
  for (const s of await Promise.all(slow)) {
    assert.ok(s.ms < (HEADER_TIMEOUT + 2) * 1000, `a slow client was closed after ${s.ms} ms`);
    assert.equal(s.data, '', 'closed without an answer: the request never arrived');
  }
});

test('a fixed-length body trickled past --request-timeout is cut, and nothing is written', async () => {
  const size = await auditSize();
  const body = JSON.stringify({ identifier: 'email:slow-body@example.com', purpose: 'newsletter', channel: 'email',
    state: 'granted', method: 'web_form' });
  const s = await trickler(`POST /v1/consents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.tokens.all}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, body, 300);
  assert.ok(s.ms >= (REQUEST_TIMEOUT - 0.5) * 1000 && s.ms < (REQUEST_TIMEOUT + 2) * 1000, `cut after ${s.ms} ms`);
  assert.equal(s.data, '');
  assert.equal(await auditSize(), size);
});

test('a streamed NDJSON body under --min-rate is cut; a faster one longer than --request-timeout is served', async () => {
  const line = JSON.stringify({ identifier: 'email:slow-stream@example.com', purpose: 'newsletter', channel: 'email' }) + '\n';
  const head = `POST /v1/consent/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.tokens.all}\r\n` +
    'Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n';
  const chunk = `${line.length.toString(16)}\r\n${line}\r\n`;
  // One line (~90 bytes on the wire) every 300 ms: about 300 bytes/s.
  const s = await trickler(head, [chunk], 300);
  assert.ok(s.ms < (HEADER_TIMEOUT + 2) * 1000, `slow stream cut after ${s.ms} ms`);
  assert.equal(s.data, '');

  // 40 lines every 100 ms (about 36 KB/s) for 4.5 s: over --request-timeout, never under the rate.
  const res = await new Promise((resolve, reject) => {
    const rq = http.request({ host: '127.0.0.1', port: srv.port, method: 'POST', path: '/v1/consent/check', agent: false,
      headers: { authorization: `Bearer ${srv.tokens.all}`, 'content-type': 'application/x-ndjson', connection: 'close' } },
    (r) => { let t = ''; r.on('data', (c) => { t += c; }); r.on('end', () => resolve({ status: r.statusCode, text: t })); });
    rq.on('error', reject);
    (async () => {
      for (let i = 0; i < 45; i++) { rq.write(line.repeat(40)); await sleep(100); }
      rq.end();
    })();
  });
  assert.equal(res.status, 200);
  assert.equal(res.text.trim().split('\n').length, 45 * 40);
});

test('a write waiting for group commit is never cut, however long the commit takes', async () => {
  // Another writer holds the store for longer than --request-timeout: the
  // request is complete and suspended meanwhile, and must be answered.
  const lock = spawn(process.env.CONSENTD_DBTOOL, ['lock', srv.dir, String((REQUEST_TIMEOUT + 1) * 1000)]);
  await new Promise((resolve, reject) => {
    lock.stdout.on('data', (c) => { if (String(c).includes('locked')) resolve(); });
    lock.on('exit', (code) => reject(new Error(`dbtool lock exited ${code}`)));
  });
  const t0 = Date.now();
  const r = await request('POST', '/v1/consents', { token: srv.tokens.all, body: {
    identifier: 'email:slow-commit@example.com', purpose: 'newsletter', channel: 'email', state: 'granted', method: 'web_form' } });
  const ms = Date.now() - t0;
  await new Promise((resolve) => { if (lock.exitCode !== null) resolve(); else lock.on('exit', resolve); });
  assert.equal(r.status, 201, r.text);
  assert.ok(ms > REQUEST_TIMEOUT * 1000, `the commit waited for the other writer (${ms} ms)`);
});

test('an idle keep-alive connection is closed once --header-timeout passes without a new request', async () => {
  const sock = net.connect(srv.port, '127.0.0.1');
  let text = '';
  const closed = new Promise((resolve) => sock.on('close', resolve));
  sock.on('data', (c) => { text += c.toString('latin1'); });
  sock.on('error', () => {});
  await new Promise((r) => sock.on('connect', r));
  sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  const t0 = Date.now();
  await Promise.race([closed, sleep(12000)]);
  assert.deepEqual(statusLines(text), [200]);
  const ms = Date.now() - t0;
  assert.ok(ms < (HEADER_TIMEOUT + 2) * 1000, `closed after ${ms} ms, not the idle timeout`);
});
