// SPDX-License-Identifier: ISC
// The preference centre's small script: reads /v1/me, draws the switches,
// and sends every change with the session's CSRF token. The full page,
// usable without JavaScript, replaces this.
'use strict';

let csrf = null;

function say(text) {
  document.getElementById('status').textContent = text;
}

async function call(method, path, body) {
  const headers = { 'X-CSRF-Token': csrf };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) throw new Error(`${r.status}`);
  return r.json();
}

function switches(id, map) {
  const box = document.getElementById(id);
  for (const [name, on] of Object.entries(map)) {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.name = name;
    input.checked = on;
    label.append(input, ` ${name}`);
    box.append(label);
  }
}

function read(id) {
  const out = {};
  for (const i of document.querySelectorAll(`#${id} input`)) out[i.name] = i.checked;
  return out;
}

async function load() {
  const r = await fetch('/v1/me', { credentials: 'same-origin' });
  if (!r.ok) {
    say('Your session has ended. Please open the link in your email again.');
    return;
  }
  const me = await r.json();
  csrf = me.csrf_token;
  switches('channels', me.preferences.channels);
  switches('topics', me.preferences.topics);
  document.getElementById('gpc').hidden = !me.gpc.signal;
  document.getElementById('prefs').hidden = false;
  say('');
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('prefs-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await call('PUT', '/v1/me/preferences', { channels: read('channels'), topics: read('topics') });
      say('Saved.');
    } catch { say('Your change was not saved. Please try again.'); }
  });
  document.getElementById('unsubscribe-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const reason = document.getElementById('reason').value;
    try {
      await call('POST', '/v1/me/unsubscribe', reason ? { reason } : {});
      say('You are unsubscribed from all marketing.');
    } catch { say('That did not work. Please try again.'); }
  });
  document.getElementById('logout-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try { await call('POST', '/v1/me/logout'); } catch { /* ended anyway */ }
    say('Signed out.');
    document.getElementById('prefs').hidden = true;
  });
  load();
});
