// SPDX-License-Identifier: ISC
// The server's stderr is a log of JSON lines from its first line on: each
// way `consentd serve` can fail to start (a bad flag or value, a bad
// environment variable, a missing data directory, a bad policy, a wrong
// key, a port in use) writes JSON lines only, one of them an error that
// says what is wrong, and exits with its documented status.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { POLICY, cli, initData, tmpdir } from './harness.mjs';

const data = initData();

function serve(args, env = {}) {
  return cli(['serve', '--data', data.dir, '--policy', POLICY, '--listen', '127.0.0.1:0', ...args],
    { env });
}

// Every line of STDERR is a JSON object with ts, level and event; returns them.
function jsonLines(stderr) {
  const lines = stderr.split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0, 'something was said');
  return lines.map((l) => {
    let j;
    assert.doesNotThrow(() => { j = JSON.parse(l); }, `not JSON: ${l}`);
    assert.equal(typeof j, 'object');
    for (const k of ['ts', 'level', 'event']) assert.ok(k in j, `${k} missing in ${l}`);
    return j;
  });
}

function fails(r, code, pattern) {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stdout, '');
  const lines = jsonLines(r.stderr);
  const errors = lines.filter((j) => j.level === 'error');
  assert.ok(errors.length >= 1, 'an error line');
  assert.ok(errors.some((j) => pattern.test(j.message ?? '')),
    `no error line matches ${pattern}: ${r.stderr}`);
}

test('a bad command line: unknown flag, missing or bad value, stray argument, bad environment', () => {
  fails(serve(['--no-such-flag']), 64, /no-such-flag/);
  fails(cli(['serve', '--data']), 64, /--data/);
  fails(serve(['--threads', '0']), 64, /invalid value '0'/);
  fails(serve(['--listen', 'nowhere']), 64, /--listen/);
  fails(serve(['stray']), 64, /unexpected argument 'stray'/);
  fails(serve([], { CONSENTD_MAX_BODY_BYTES: 'lots' }), 64, /CONSENTD_MAX_BODY_BYTES/);
  fails(serve(['--request-timeout', '5', '--header-timeout', '10']), 64, /--request-timeout/);
});

test('a missing data directory, a bad policy, a wrong key', () => {
  const base = tmpdir();
  fails(cli(['serve', '--data', path.join(base, 'absent'), '--policy', POLICY,
    '--listen', '127.0.0.1:0']), 1, /absent/);

  const bad = path.join(base, 'policy.json');
  fs.writeFileSync(bad, '{"version": 1, "purposes": [');
  fails(serve(['--policy', bad]), 1, /invalid policy/);
  fails(serve(['--policy', path.join(base, 'no-policy-here')]), 1, /polic/);

  const other = initData();
  fs.copyFileSync(path.join(data.dir, 'master.key'), path.join(other.dir, 'master.key'));
  fails(cli(['serve', '--data', other.dir, '--policy', POLICY, '--listen', '127.0.0.1:0']), 2,
    /wrong key/);
});

test('a port in use', async () => {
  const holder = net.createServer();
  await new Promise((r) => holder.listen(0, '127.0.0.1', r));
  try {
    const { port } = holder.address();
    const r = cli(['serve', '--data', data.dir, '--policy', POLICY, '--listen', `127.0.0.1:${port}`]);
    fails(r, 1, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
  } finally {
    holder.close();
  }
});

test('the other commands still talk to a person in text', () => {
  const r = cli(['token', 'revoke', '--data', data.dir, 'no-such-token']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /^consentd: /);
});
