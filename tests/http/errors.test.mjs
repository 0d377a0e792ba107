// SPDX-License-Identifier: ISC
// Errors and limits: the error envelope for 400/404/405/413/431, the
// request-body, header, connection and idle limits, and metrics.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { rawRequest, startServer } from './harness.mjs';

let srv;
before(async () => {
  srv = await startServer({ args: ['--max-body-bytes', '2048', '--max-header-bytes', '8192',
    '--max-connections-per-ip', '4', '--idle-timeout', '2'] });
});
after(async () => { const r = await srv.stop(); assert.equal(r.code, 0); });

function envelope(r, status, code) {
  assert.equal(r.status, status);
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.deepEqual(Object.keys(r.json), ['error']);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'field', 'message']);
  assert.equal(r.json.error.code, code);
  assert.equal(typeof r.json.error.message, 'string');
}

test('unknown path: 404 not_found', async () => {
  envelope(await srv.req('GET', '/nope'), 404, 'not_found');
  envelope(await srv.req('GET', '/v1/policy/'), 404, 'not_found');
  envelope(await srv.req('GET', '/v1//policy'), 404, 'not_found');
});

test('known path, wrong method: 405 with Allow', async () => {
  const r = await srv.req('DELETE', '/v1/policy');
  envelope(r, 405, 'method_not_allowed');
  assert.equal(r.headers.get('allow'), 'GET');
});

test('a body on a route that takes none: 400 unexpected_body (POST to a GET route: 405)', async () => {
  envelope(await srv.req('POST', '/healthz', { raw: 'x' }), 405, 'method_not_allowed');
  const reply = await rawRequest(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', 1000);
  assert.match(reply, /^HTTP\/1\.1 400/);
  assert.match(reply, /"code":"unexpected_body"/);
});

test('a body over --max-body-bytes: 413 before it is read', async () => {
  const big = 'x'.repeat(4096);
  const reply = await rawRequest(srv.port,
    `GET /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n${big}`, 2000);
  assert.match(reply, /^HTTP\/1\.1 413/);
  assert.match(reply, /"code":"body_too_large"/);
  const chunked = await rawRequest(srv.port,
    `GET /v1/tokens HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n` +
    `1000\r\n${'y'.repeat(4096)}\r\n0\r\n\r\n`, 2000);
  assert.match(chunked, /^HTTP\/1\.1 (401|413)/, 'chunked: refused (auth is checked before the size of a streamed body)');
  const authed = await rawRequest(srv.port,
    `GET /v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.tokens.admin}\r\n` +
    `Transfer-Encoding: chunked\r\n\r\n1000\r\n${'y'.repeat(4096)}\r\n0\r\n\r\n`, 2000);
  assert.match(authed, /^HTTP\/1\.1 413/);
});

test('headers over --max-header-bytes: 431 in the envelope', async () => {
  const reply = await rawRequest(srv.port,
    `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(10000)}\r\n\r\n`, 2000);
  assert.match(reply, /^HTTP\/1\.1 431/);
  assert.match(reply, /\r\nContent-Type: application\/json; charset=utf-8\r\n/);
  assert.match(reply, /"code":"headers_too_large"/);
});

test('malformed %-escape in a query parameter: 400 invalid_parameter; unknown one: 400', async () => {
  let r = await srv.req('GET', '/v1/tokens?x=1', { token: srv.tokens.admin });
  envelope(r, 400, 'unknown_parameter');
  assert.equal(r.json.error.field, 'x');
  r = await srv.req('GET', '/v1/tokens?x=%zz', { token: srv.tokens.admin });
  assert.equal(r.status, 400);
});

test('per-IP connection limit: connections past the limit are refused', async () => {
  const socks = [];
  for (let i = 0; i < 4; i++) {
    socks.push(await new Promise((res) => { const s = net.connect(srv.port, '127.0.0.1', () => res(s)); }));
  }
  await new Promise((r) => setTimeout(r, 200));
  const reply = await rawRequest(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 1500);
  assert.doesNotMatch(reply, /200 OK/, 'fifth connection from one IP is not served');
  for (const s of socks) s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const again = await rawRequest(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 2000);
  assert.match(again, /200 OK/, 'served again once the others closed');
});

test('idle connections are closed after --idle-timeout', async () => {
  const closed = await new Promise((resolve) => {
    const s = net.connect(srv.port, '127.0.0.1');
    const t = setTimeout(() => { s.destroy(); resolve(false); }, 8000);
    s.on('close', () => { clearTimeout(t); resolve(true); });
    s.on('error', () => {});
  });
  assert.ok(closed, 'server closed the idle connection');
});

test('GET /metrics counts requests by route and status class', async () => {
  await srv.req('GET', '/healthz');
  const r = await srv.req('GET', '/metrics', { token: srv.tokens['consent:read'] });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  assert.match(r.text, /consentd_http_requests_total\{method="GET",route="\/healthz",code="2xx"\} \d+/);
  assert.match(r.text, /consentd_http_requests_total\{method="",route="\(unmatched\)",code="4xx"\} \d+/);
  assert.match(r.text, /^consentd_up 1$/m);
});
