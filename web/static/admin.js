// SPDX-License-Identifier: ISC
// The DPO console (/admin). It signs in once with an API token, which
// POST /admin/session exchanges for an HttpOnly session cookie: the token
// is read from the field, sent, and cleared, and is kept nowhere. Every
// other call goes to the ordinary /v1 routes with that cookie, and every
// write carries the session's CSRF token (held in memory only). Charts are
// SVG drawn here; each has a table of its numbers beside it.
'use strict';

(function () {
  const SVG = 'http://www.w3.org/2000/svg';
  const COLORS = ['#1a5fb4', '#c64600', '#26a269', '#813d9c', '#a51d2d', '#5e5c64', '#986a44', '#0b7285'];
  let csrf = null;
  let cursor = null;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function say(text, kind) {
    const m = $('message');
    m.textContent = text || '';
    m.className = text ? (kind || 'error') : '';
  }

  // An error of the API's envelope in words: its message, code and field.
  function explain(r) {
    const e = r.json && r.json.error;
    if (!e) return `The server answered ${r.status}.`;
    return `${e.message} (${e.code}${e.field ? `, field ${e.field}` : ''}; HTTP ${r.status})`;
  }

  async function api(method, path, body) {
    const headers = {};
    const opts = { method, headers, credentials: 'same-origin' };
    if (method !== 'GET') headers['X-CSRF-Token'] = csrf || '';
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    let json = null;
    const ct = res.headers.get('content-type') || '';
    const text = await res.text();
    if (ct.startsWith('application/json')) {
      try { json = JSON.parse(text); } catch { json = null; }
    }
    if (res.status === 401 && !path.startsWith('/admin/session')) signedOut('Your session has ended: sign in again.');
    return { status: res.status, ok: res.ok, json, text };
  }

  const fmtDate = (s) => (s ? s.slice(0, 10) : '—');
  const words = (s) => (s ? s.replace(/_/g, ' ') : '—');

  function show(view) {
    for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== `view-${view}`;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.getAttribute('href') === `#/${view}` || (view === 'request' && a.getAttribute('href') === '#/requests'))
        a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function signedOut(msg) {
    csrf = null;
    $('nav').hidden = true;
    show('signin');
    say(msg || '', 'info');
    if (location.hash !== '' && location.hash !== '#/signin') history.replaceState(null, '', '#/signin');
  }

  function signedIn(s) {
    csrf = s.csrf_token;
    $('who').textContent = `Signed in with token ${s.token} (${s.scopes.join(', ')}) until ${s.expires_at.slice(11, 16)} UTC`;
    $('nav').hidden = false;
  }

  // ---- requests ------------------------------------------------------------

  function requestQuery() {
    const q = new URLSearchParams();
    const st = $('f-status').value, ty = $('f-type').value;
    if (st) q.set('status', st);
    if (ty) q.set('type', ty);
    if ($('f-overdue').checked) q.set('overdue', 'true');
    q.set('limit', '50');
    return q;
  }

  function requestRow(r) {
    const days = r.days_left === null ? '—' : String(r.days_left);
    const tr = el('tr', { class: r.overdue ? 'overdue' : null },
      el('td', {}, el('a', { href: `#/request/${r.id}`, text: r.id })),
      el('td', { text: words(r.type) }),
      el('td', { text: words(r.status) }),
      el('td', { text: fmtDate(r.due_at) }),
      el('td', {}, r.overdue ? el('strong', { text: `Overdue (${days})` }) : days));
    return tr;
  }

  async function loadRequests(more) {
    const q = requestQuery();
    if (more && cursor) q.set('cursor', cursor);
    const r = await api('GET', `/v1/dsr?${q}`);
    if (!r.ok) { say(explain(r)); return; }
    const body = $('requests').tBodies[0];
    if (!more) body.replaceChildren();
    const list = r.json.requests.slice();
    // Overdue ones first; the API already orders by due date.
    list.sort((a, b) => (b.overdue === true) - (a.overdue === true));
    for (const x of list) body.append(requestRow(x));
    if (!more && list.length === 0)
      body.append(el('tr', {}, el('td', { colspan: '5', text: 'No request matches these filters.' })));
    cursor = r.json.next_cursor || null;
    $('requests-more').hidden = !cursor;
  }

  // ---- one request -----------------------------------------------------------

  let current = null;

  function fact(dl, k, v) { dl.append(el('dt', { text: k }), el('dd', { text: v })); }

  async function loadRequest(id) {
    const r = await api('GET', `/v1/dsr/${encodeURIComponent(id)}`);
    if (!r.ok) { say(explain(r)); return; }
    const d = r.json;
    current = d;
    $('request-h').textContent = `Request ${d.id}`;
    const dl = $('request-facts');
    dl.replaceChildren();
    fact(dl, 'Type', words(d.type));
    fact(dl, 'Status', words(d.status));
    fact(dl, 'Received', fmtDate(d.received_at));
    fact(dl, 'Due', `${fmtDate(d.due_at)}${d.extended ? ' (extended)' : ''}`);
    fact(dl, 'Days left', d.days_left === null ? '—' : d.overdue ? `Overdue (${d.days_left})` : String(d.days_left));
    fact(dl, 'Jurisdiction', d.jurisdiction.toUpperCase().replace('_', ' '));
    fact(dl, 'Subject', d.subject_id || 'not known');
    const pkg = ['access', 'portability'].includes(d.type) && ['completed', 'awaiting_systems', 'in_progress'].includes(d.status);
    $('package').hidden = !pkg;
    $('package-link').href = `/v1/dsr/${d.id}/package`;
    $('package-link').setAttribute('download', `${d.id}.json`);
    $('package-csv').hidden = d.type !== 'portability';
    $('package-csv').href = `/v1/dsr/${d.id}/package?format=csv`;
    $('package-csv').setAttribute('download', `${d.id}.csv`);
    // Only the actions the request's state allows; the API refuses the others anyway.
    const open = ['identity_unverified', 'verified', 'in_progress', 'awaiting_systems'].includes(d.status);
    const allowed = {
      verify: d.status === 'identity_unverified',
      extend: open && !d.extended,
      deny: open,
      process: d.status === 'verified',
      complete: d.status === 'awaiting_systems',
    };
    for (const [step, ok] of Object.entries(allowed)) $(`act-${step}`).hidden = !ok;
    $('no-actions').hidden = Object.values(allowed).some(Boolean);
    const sb = $('systems').tBodies[0];
    sb.replaceChildren();
    for (const s of d.systems || [])
      sb.append(el('tr', {}, el('td', { text: s.name }), el('td', { text: words(s.status) }),
        el('td', { text: s.detail || '—' }), el('td', { text: fmtDate(s.updated_at) })));
    if (!d.systems || d.systems.length === 0)
      sb.append(el('tr', {}, el('td', { colspan: '4', text: 'No downstream system was called for this request.' })));
    const tl = $('timeline');
    tl.replaceChildren();
    for (const t of d.timeline || [])
      tl.append(el('li', {}, el('strong', { text: words(t.step) }), ` — ${words(t.status)}, ${t.at.replace('T', ' ').slice(0, 16)} UTC, by ${t.actor}`,
        t.reason ? el('span', { class: 'reason', text: ` Reason: ${t.reason}` }) : null));
  }

  // The fields a step's form sends, and the ones it must not send empty.
  const STEPS = {
    verify: { field: 'code', label: 'the code' },
    extend: { field: 'reason', label: 'a reason' },
    deny: { field: 'reason', label: 'a reason' },
    process: { field: null },
    complete: { field: 'note', label: 'a note' },
  };

  async function runStep(form) {
    const step = form.dataset.step;
    const spec = STEPS[step];
    let body;
    if (spec.field) {
      const input = form.elements[spec.field];
      const v = input.value.trim();
      if (v === '') {
        say(`Enter ${spec.label} first: the request was not changed.`);
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      input.removeAttribute('aria-invalid');
      body = { [spec.field]: v };
    }
    const r = await api('POST', `/v1/dsr/${encodeURIComponent(current.id)}/${step}`, body);
    if (!r.ok) { say(`${step[0].toUpperCase()}${step.slice(1)} failed: ${explain(r)}`); return; }
    form.reset();
    say(`${step[0].toUpperCase()}${step.slice(1)}: done. The request is now ${words(r.json.status)}.`, 'ok');
    await loadRequest(current.id);
  }

  // ---- outbox ------------------------------------------------------------------

  async function loadOutbox() {
    const st = $('o-status').value;
    const r = await api('GET', `/v1/outbox${st ? `?status=${st}` : ''}`);
    const body = $('outbox').tBodies[0];
    body.replaceChildren();
    if (!r.ok) { say(explain(r)); return; }
    for (const o of r.json.items) {
      const act = o.status === 'dead'
        ? el('button', { type: 'button', class: 'retry', 'data-id': o.id, text: 'Retry', 'aria-label': `Retry ${o.id}` })
        : '—';
      body.append(el('tr', { class: o.status === 'dead' ? 'dead' : null },
        el('td', { text: o.id }), el('td', { text: `${o.kind}: ${words(o.name)}${o.system ? ` → ${o.system}` : ''}` }),
        el('td', { text: o.status }), el('td', { text: String(o.attempts) }),
        el('td', { text: o.last_error || '—' }), el('td', {}, act)));
    }
    if (r.json.items.length === 0) body.append(el('tr', {}, el('td', { colspan: '6', text: 'Nothing here.' })));
  }

  async function retry(id) {
    const r = await api('POST', `/v1/outbox/${encodeURIComponent(id)}/retry`);
    if (!r.ok) { say(`Retry failed: ${explain(r)}`); return; }
    say(`${id} is pending again.`, 'ok');
    await loadOutbox();
  }

  // ---- reports -------------------------------------------------------------------

  function chartFrame(w, h, title) {
    const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': title, class: 'chart' });
    s.append(svg('title', {}, title));
    return s;
  }

  // Stacked bars, one per month, one colour per reason.
  function drawUnsub(rows) {
    const months = [...new Set(rows.map((r) => r.month))].sort();
    const reasons = [...new Set(rows.map((r) => r.reason))].sort();
    const total = (m) => rows.filter((r) => r.month === m).reduce((a, r) => a + r.count, 0);
    const max = Math.max(1, ...months.map(total));
    const W = 480, H = 260, L = 40, B = 40, T = 10;
    const s = chartFrame(W, H + 24 * Math.ceil(reasons.length / 3), 'Unsubscribe reasons per month');
    const bw = Math.min(60, (W - L - 10) / Math.max(1, months.length) - 10);
    s.append(svg('line', { x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#333' }));
    s.append(svg('text', { x: L - 6, y: T + 10, 'text-anchor': 'end', class: 'axis' }, String(max)));
    s.append(svg('text', { x: L - 6, y: H - B, 'text-anchor': 'end', class: 'axis' }, '0'));
    months.forEach((m, i) => {
      const x = L + 10 + i * (bw + 10);
      let y = H - B;
      reasons.forEach((rs, j) => {
        const c = rows.filter((r) => r.month === m && r.reason === rs).reduce((a, r) => a + r.count, 0);
        if (!c) return;
        const h = (c / max) * (H - B - T);
        y -= h;
        const rect = svg('rect', { x, y, width: bw, height: h, fill: COLORS[j % COLORS.length] });
        rect.append(svg('title', {}, `${m}, ${words(rs)}: ${c}`));
        s.append(rect);
      });
      s.append(svg('text', { x: x + bw / 2, y: H - B + 16, 'text-anchor': 'middle', class: 'axis' }, m));
    });
    reasons.forEach((rs, j) => {
      const x = L + (j % 3) * 150, y = H + 4 + Math.floor(j / 3) * 24;
      s.append(svg('rect', { x, y, width: 14, height: 14, fill: COLORS[j % COLORS.length] }));
      s.append(svg('text', { x: x + 20, y: y + 12, class: 'legend' }, words(rs)));
    });
    if (months.length === 0)
      s.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, 'No unsubscribe yet'));
    return s;
  }

  // Two bars per purpose: control and treatment.
  function drawHoldout(list) {
    const max = Math.max(1, ...list.map((p) => Math.max(p.control, p.treatment)));
    const W = 480, row = 54, L = 120, T = 10;
    const H = T + row * Math.max(1, list.length) + 30;
    const s = chartFrame(W, H, 'Holdout group sizes per purpose');
    list.forEach((p, i) => {
      const y = T + i * row;
      s.append(svg('text', { x: L - 8, y: y + 22, 'text-anchor': 'end', class: 'axis' }, words(p.purpose)));
      [['control', COLORS[1]], ['treatment', COLORS[0]]].forEach(([k, c], j) => {
        const w = (p[k] / max) * (W - L - 120);
        const r = svg('rect', { x: L, y: y + j * 20, width: Math.max(w, 1), height: 18, fill: c });
        r.append(svg('title', {}, `${words(p.purpose)} ${k}: ${p[k]}`));
        s.append(r);
        s.append(svg('text', { x: L + Math.max(w, 1) + 6, y: y + j * 20 + 14, class: 'axis' }, `${k} ${p[k]}`));
      });
    });
    if (list.length === 0)
      s.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, 'No purpose has a holdout'));
    return s;
  }

  async function loadReports() {
    const [u, h] = await Promise.all([api('GET', '/v1/reports/unsubscribe-reasons'), api('GET', '/v1/reports/holdout')]);
    const ut = $('unsub-table').tBodies[0], ht = $('holdout-table').tBodies[0];
    ut.replaceChildren();
    ht.replaceChildren();
    $('unsub-chart').replaceChildren();
    $('holdout-chart').replaceChildren();
    if (!u.ok || !h.ok) { say(explain(u.ok ? h : u)); return; }
    $('unsub-chart').append(drawUnsub(u.json.reasons));
    for (const r of u.json.reasons)
      ut.append(el('tr', {}, el('td', { text: r.month }), el('td', { text: words(r.reason) }), el('td', { text: String(r.count) })));
    $('holdout-chart').append(drawHoldout(h.json.purposes));
    for (const p of h.json.purposes)
      ht.append(el('tr', {}, el('td', { text: words(p.purpose) }), el('td', { text: String(p.holdout_percent) }),
        el('td', { text: String(p.control) }), el('td', { text: String(p.treatment) })));
  }

  // ---- audit ---------------------------------------------------------------------

  async function loadAudit() {
    $('verify-result').replaceChildren();
    const r = await api('GET', '/v1/audit/checkpoint');
    if (r.status === 404) { $('checkpoint').textContent = 'No checkpoint has been signed yet.'; return; }
    if (!r.ok) { $('checkpoint').textContent = ''; say(explain(r)); return; }
    $('checkpoint').textContent = r.text;
  }

  async function verifyLog() {
    const out = $('verify-result');
    out.replaceChildren(el('p', { text: 'Verifying…' }));
    const b = $('verify-log');
    b.disabled = true;
    try {
      const r = await api('POST', '/v1/audit/verify');
      if (!r.ok) { out.replaceChildren(el('p', { class: 'bad', text: `Verification could not run: ${explain(r)}` })); return; }
      const v = r.json;
      out.replaceChildren(el('p', { class: v.ok ? 'good' : 'bad', id: 'verify-verdict',
        text: v.ok ? `The log verifies: ${v.entries} entries, ${v.checkpoints} checkpoints, ${v.passed} checks passed, none failed.`
          : `The log does NOT verify: ${v.failed} checks failed${v.first_bad_entry !== null ? `, first bad entry ${v.first_bad_entry}` : ''}.` }));
    } finally {
      b.disabled = false;
      b.focus();
    }
  }

  // ---- routing ---------------------------------------------------------------------

  async function route() {
    if (!csrf) { signedOut(); return; }
    say('');
    const h = location.hash.replace(/^#\/?/, '');
    const [view, arg] = h.split('/');
    if (view === 'request' && arg) { show('request'); await loadRequest(decodeURIComponent(arg)); }
    else if (view === 'outbox') { show('outbox'); await loadOutbox(); }
    else if (view === 'reports') { show('reports'); await loadReports(); }
    else if (view === 'audit') { show('audit'); await loadAudit(); }
    else { show('requests'); await loadRequests(false); }
    const hd = document.querySelector('main > section:not([hidden]) h1');
    if (hd) { hd.setAttribute('tabindex', '-1'); hd.focus(); }
  }

  async function signIn(ev) {
    ev.preventDefault();
    const input = $('token');
    const tok = input.value.trim();
    input.value = '';
    if (!tok) { say('Enter an API token.'); input.focus(); return; }
    const res = await fetch('/admin/session', { method: 'POST', credentials: 'same-origin',
      headers: { Authorization: `Bearer ${tok}` } });
    let json = null;
    try { json = await res.json(); } catch { json = null; }
    if (!res.ok) { say(`Sign-in refused: ${explain({ status: res.status, json })}`); input.focus(); return; }
    signedIn(json);
    if (location.hash === '' || location.hash === '#/signin') location.hash = '#/requests';
    else await route();
  }

  async function signOut() {
    await api('DELETE', '/admin/session');
    signedOut('Signed out.');
  }

  async function start() {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    $('filters').addEventListener('submit', (e) => { e.preventDefault(); loadRequests(false); });
    $('more').addEventListener('click', () => loadRequests(true));
    $('outbox-filter').addEventListener('submit', (e) => { e.preventDefault(); loadOutbox(); });
    $('outbox').addEventListener('click', (e) => {
      const b = e.target.closest('button.retry');
      if (b) retry(b.dataset.id);
    });
    for (const f of document.querySelectorAll('.actions form'))
      f.addEventListener('submit', (e) => { e.preventDefault(); runStep(f); });
    $('verify-log').addEventListener('click', verifyLog);
    window.addEventListener('hashchange', route);
    const r = await api('GET', '/admin/session');
    if (r.ok) { signedIn(r.json); await route(); } else signedOut();
  }

  start();
}());
