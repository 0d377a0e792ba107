// SPDX-License-Identifier: ISC
// Browser tests: Debian's chromium driven by playwright-core (no browser is
// ever downloaded), and axe-core injected into the page for the WCAG 2.1 A
// and AA rules. Used by tests/web/*.test.mjs against a real consentd serve
// (tests/http/harness.mjs starts it).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { ROOT } from '../http/harness.mjs';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const CHROMIUM = process.env.CONSENTD_CHROMIUM || '/usr/bin/chromium';
export const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 740 };
export const SHOTS = path.join(ROOT, 'tests/web/screenshots');

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
}

// The WCAG 2.1 A and AA violations axe finds on PAGE, as [{id, impact,
// nodes: [selector…]}]; an empty list is a pass.
export async function axe(page) {
  await page.addScriptTag({ content: AXE });
  const r = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const res = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact,
      nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  return r;
}

// Writes a screenshot of PAGE as tests/web/screenshots/NAME.png (not
// committed) for a reviewer to look at.
export async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// Every request PAGE makes to an origin other than ORIGIN, collected as it
// goes: the pages must never reach another origin.
export function foreignRequests(page, origin) {
  const seen = [];
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('about:')) seen.push(u);
  });
  return seen;
}
