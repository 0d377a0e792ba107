// SPDX-License-Identifier: ISC
// Every response the HTTP tests receive through the harness is checked
// against docs/openapi.yaml: the operation must document its status, the
// media type it came with, and a JSON body must validate against the
// schema given there (JSON Schema 2020-12, with ajv). A response to a
// route the file does not have (404, 405) must be the error envelope. So
// the file describes what the server sends, and the two cannot drift.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const doc = YAML.parse(fs.readFileSync(path.join(ROOT, 'docs/openapi.yaml'), 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// The file is one schema resource, so '#/components/…' resolves in it.
ajv.addSchema({ ...doc, $id: 'openapi' });

const routes = Object.keys(doc.paths).map((p) => ({
  template: p,
  re: new RegExp(`^${p.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  literal: !p.includes('{'),
}));

// The documented path of P (literal paths win over templated ones).
function route(p) {
  const hits = routes.filter((r) => r.re.test(p));
  return (hits.find((r) => r.literal) || hits[0])?.template;
}

const validators = new Map();
function validator(pointer) {
  if (!validators.has(pointer)) validators.set(pointer, ajv.compile({ $ref: `openapi#${pointer}` }));
  return validators.get(pointer);
}
const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

// Follows a $ref within the file.
function deref(o) {
  let ptr = null;
  while (o && o.$ref) {
    ptr = o.$ref.slice(1);
    o = ptr.split('/').slice(1).reduce((a, k) => a[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
  }
  return { o, ptr };
}

// Problems with one response (an empty list when it is as documented).
export function checkResponse(method, url, status, contentType, text) {
  const p = new URL(url, 'http://x').pathname;
  // HEAD is GET without the body (RFC 9110 §9.3.2).
  const m = method.toUpperCase() === 'HEAD' ? 'get' : method.toLowerCase();
  const where = `${method} ${p} → ${status}`;
  const tpl = route(p);
  const op = tpl && doc.paths[tpl][m];
  const ct = (contentType || '').split(';')[0].trim().toLowerCase();
  if (!op) {
    if (text === '') return status >= 400 ? [] : [`${where}: no such operation in docs/openapi.yaml`];
    if (ct !== 'application/json') return status >= 400 && text === '' ? [] : [`${where}: no such operation in docs/openapi.yaml`];
    const v = validator('/components/schemas/Error');
    return v(JSON.parse(text)) ? [] : [`${where}: not the error envelope: ${ajv.errorsText(v.errors)}`];
  }
  const codes = op.responses || {};
  const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in codes);
  if (!key) return [`${where}: status not documented for ${method.toUpperCase()} ${tpl}`];
  const { o: resp, ptr } = deref(codes[key]);
  const base = ptr || `/paths/${esc(tpl)}/${m}/responses/${esc(key)}`;
  if (text === '' || method.toUpperCase() === 'HEAD') return [];
  const content = resp.content || {};
  if (!(ct in content)) {
    return [`${where}: ${ct || 'a body without a type'} not documented (documented: ${Object.keys(content).join(', ') || 'none'})`];
  }
  if (ct !== 'application/json' || !content[ct].schema) return [];
  let body;
  try { body = JSON.parse(text); } catch { return [`${where}: not JSON`]; }
  const v = validator(`${base}/content/${esc(ct)}/schema`);
  return v(body) ? [] : [`${where}: ${ajv.errorsText(v.errors, { dataVar: 'body' })}`];
}
