// SPDX-License-Identifier: ISC
// The preference centre's enhancement. The page works without this file:
// every control is a plain form the server renders and answers with a
// redirect. With it, a switch saves the moment it moves (PUT
// /v1/me/preferences with the session's CSRF token, which the form
// already carries), and the switches then show what the server says is
// now true, since one switch can change others (a topic switched on
// turns on the channels it is sent by).
'use strict';
(function () {
  const form = document.getElementById('prefs-form');
  if (!form || !window.fetch) return;
  const csrf = form.querySelector('input[name="csrf_token"]').value;
  const status = document.getElementById('save-status');
  const say = (k) => { status.textContent = status.dataset[k] || ''; };

  function show(prefs) {
    for (const kind of ['topic', 'channel']) {
      const map = prefs[kind === 'topic' ? 'topics' : 'channels'] || {};
      for (const el of form.querySelectorAll(`input[data-kind="${kind}"]`)) {
        if (el.dataset.id in map) el.checked = map[el.dataset.id] === true;
      }
    }
  }

  async function save(body, el) {
    say('saving');
    try {
      const res = await fetch('/v1/me/preferences', {
        method: 'PUT',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(String(res.status));
      show(await res.json());
      say('saved');
    } catch (e) {
      if (el) el.checked = !el.checked;
      say('failed');
    }
  }

  form.addEventListener('change', (ev) => {
    const el = ev.target;
    if (!el.dataset || !el.dataset.kind) return;
    const key = el.dataset.kind === 'topic' ? 'topics' : 'channels';
    save({ [key]: { [el.dataset.id]: el.checked } }, el);
  });
}());
