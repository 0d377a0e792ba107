// SPDX-License-Identifier: ISC
// The access package benchmark (run by bench/run.mjs): one subject with
// 1,000 and one with 100,000 consent events (evidence on each), an access
// request for each processed and its package downloaded, several times.
// Measured on the server: the build time (POST /v1/dsr/{id}/process) and
// the growth of its peak resident memory over build and download (the
// kernel's high-water mark, reset just before through /proc/PID/clear_refs).
// The baseline, from the same run and server, is the same history read
// whole by GET /v1/subjects/{id}/consents?history=true, which builds it in
// memory. Medians are printed; never fails on speed.
import fs from 'node:fs';
import path from 'node:path';

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

function status(pid) {
  const t = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((t.match(new RegExp(`${k}:\\s+(\\d+) kB`)) || [])[1]) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

// Runs FN and returns [ms, MiB the server's peak RSS grew by while it ran].
async function measure(pid, fn) {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const before = status(pid).rss;
  const t0 = process.hrtime.bigint();
  await fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return [ms, Math.max(0, status(pid).hwm - before)];
}

// Reads a response body to the end without keeping it; returns its length.
async function drain(res) {
  let n = 0;
  for await (const chunk of res.body) n += chunk.length;
  return n;
}

export async function packageBench({ ROOT, BIN, GEN, quick, log, run, startServer, stop }) {
  const sizes = quick ? [1000, 10000] : [1000, 100000];
  // The generated store is kept; each run works on a fresh copy of it, so
  // the packages it builds (held for 30 days) do not pile up.
  const seed = path.join(ROOT, 'bench', `data-history-${sizes.join('-')}`);
  const marker = path.join(seed, 'generated');
  if (!fs.existsSync(marker)) {
    fs.rmSync(seed, { recursive: true, force: true });
    run(BIN, ['init', '--data', seed]);
    for (const n of sizes) {
      log(`generating a subject with ${n} consent events …`);
      run(GEN, ['history', seed, String(n), path.join(ROOT, 'policy')]);
    }
    fs.writeFileSync(marker, '1');
  } else {
    // A store kept from before this build's migrations is brought up to
    // date, as store() in run.mjs does for the subjects' store.
    run(BIN, ['migrate', '--data', seed]);
    log(`reusing ${path.relative(ROOT, seed)}`);
  }
  const dir = `${seed}-run`;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(seed, dir, { recursive: true });
  fs.chmodSync(dir, 0o700);
  const tok = (name, scopes) => run(BIN, ['token', 'create', '--data', dir, '--name', name,
    '--replace', '--scopes', scopes]).trim();
  const DPO = tok('bench-dsr', 'dsr:admin');
  const READ = tok('bench-subjects', 'consent:read,subjects:read');
  const srv = await startServer(dir);
  const url = `http://127.0.0.1:${srv.port}`;
  const call = async (method, p, token, body) => {
    const res = await fetch(url + p, { method, headers: { authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return res;
  };
  const out = {};
  try {
    for (const n of sizes) {
      const ident = `email:history${n}@example.com`;
      const reps = n <= 1000 ? 7 : 3;
      const build = [], rss = [], dl = [];
      let bytes = 0, subject;
      for (let i = 0; i < reps; i++) {
        const c = await call('POST', '/v1/dsr', DPO, { type: 'access', identifier: ident, verified: true });
        const req = await c.json();
        if (c.status !== 201) throw new Error(`POST /v1/dsr: ${c.status} ${JSON.stringify(req)}`);
        let buildMs = 0;
        const [, grew] = await measure(srv.proc.pid, async () => {
          const t0 = process.hrtime.bigint();
          const p = await call('POST', `/v1/dsr/${req.id}/process`, DPO);
          const body = await p.json();
          buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
          if (p.status !== 200 || body.status !== 'completed') throw new Error(`process: ${p.status}`);
          const t1 = process.hrtime.bigint();
          const g = await call('GET', `/v1/dsr/${req.id}/package`, DPO);
          if (g.status !== 200) throw new Error(`package: ${g.status}`);
          bytes = await drain(g);
          dl.push(Number(process.hrtime.bigint() - t1) / 1e6);
        });
        build.push(buildMs);
        rss.push(grew);
        subject = req.subject_id;
      }
      out[n] = { build, rss, dl, bytes, subject, reps };
    }
    // The baselines after all the packages: the memory they take would
    // otherwise be there, free, for the next package to reuse.
    for (const n of sizes) {
      const { build, rss, dl, bytes, subject, reps } = out[n];
      const base = [], baseRss = [];
      for (let i = 0; i < reps; i++) {
        const [bms, brss] = await measure(srv.proc.pid, async () => {
          const h = await call('GET', `/v1/subjects/${subject}/consents?history=true`, READ);
          if (h.status !== 200) throw new Error(`history: ${h.status}`);
          await drain(h);
        });
        base.push(bms);
        baseRss.push(brss);
      }
      const r = { build_ms: median(build), download_ms: median(dl), rss_mib: median(rss),
        rss_first_mib: rss[0],
        baseline_ms: median(base), baseline_rss_mib: median(baseRss), bytes, reps };
      log(`package of ${n} events: build ${r.build_ms.toFixed(1)} ms, download ${r.download_ms.toFixed(1)} ms ` +
        `(${(bytes / 2 ** 20).toFixed(1)} MiB), peak RSS +${r.rss_mib.toFixed(1)} MiB ` +
        `(first +${r.rss_first_mib.toFixed(1)}); ` +
        `history read whole: ${r.baseline_ms.toFixed(1)} ms, +${r.baseline_rss_mib.toFixed(1)} MiB (medians of ${reps})`);
      out[n] = r;
    }
  } finally {
    await stop(srv.proc);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { sizes, results: out };
}
