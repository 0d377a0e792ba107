// SPDX-License-Identifier: ISC
// The data-subject-request figures of make bench (issue: erasure latency
// flat in store size). Imported by bench/run.mjs.
//
// erasureLatency() erases N generated subjects of a running server, one
// at a time, each through the API as a DPO would: POST /v1/dsr (erasure,
// verified), then POST /v1/dsr/{id}/process, which runs SPEC §8's whole
// erasure in one transaction (identifiers, profile, preferences and
// evidence deleted, the key destroyed, the blind indexes suppressed, the
// audit entry). Only the process call is timed. The subjects are picked
// at random among those still held (an erased one answers "no data held",
// which is quicker and would flatter the figure), so the kept store loses
// N subjects per run: a rounding error next to its size.

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

export async function erasureLatency({ port, tokens, subjects, n, seed }) {
  const url = `http://127.0.0.1:${port}`;
  const call = async (method, p, token, body) => {
    const r = await fetch(url + p, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : null };
  };
  let x = seed >>> 0;
  const next = () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x % subjects; };
  const ms = [];
  for (let tries = 0; ms.length < n && tries < n * 20; tries++) {
    const identifier = `email:user${next()}@example.com`;
    const held = await call('GET', `/v1/subjects/resolve?identifier=${encodeURIComponent(identifier)}`,
      tokens.read);
    if (held.status !== 200) continue;
    const c = await call('POST', '/v1/dsr', tokens.dsr,
      { type: 'erasure', identifier, jurisdiction: 'gdpr', source: 'api', verified: true });
    if (c.status !== 201 && c.status !== 200) throw new Error(`dsr create: ${c.status}`);
    const t0 = process.hrtime.bigint();
    const p = await call('POST', `/v1/dsr/${c.json.id}/process`, tokens.dsr);
    const t1 = process.hrtime.bigint();
    if (p.status !== 200 || !['completed', 'awaiting_systems'].includes(p.json.status)) {
      throw new Error(`dsr process: ${p.status} ${JSON.stringify(p.json)}`);
    }
    // The point of it all: the erased identifier is denied from now on.
    const chk = await call('GET', `/v1/consent/check?identifier=${encodeURIComponent(identifier)}` +
      '&purpose=newsletter&channel=email', tokens.read);
    if (chk.status !== 200 || chk.json.decision !== 'deny') {
      throw new Error(`check after erasure answered ${JSON.stringify(chk.json)}`);
    }
    ms.push(Number(t1 - t0) / 1e6);
  }
  if (ms.length < n) throw new Error(`erasure: only ${ms.length} of ${n} subjects found`);
  return { n, p50: pct(ms, 50), p95: pct(ms, 95), max: Math.max(...ms) };
}
