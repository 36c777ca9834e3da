// Shared by the Node and browser tests: paths, the native CLI (the reference for every
// number), a static file server for the demo, and the mapping from a report to what its
// tables and figures must show.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const JS_DIR = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const ROOT = resolve(JS_DIR, '..');
export const SAMPLE = join(ROOT, 'tests', 'fixtures', 'sample-audit.log');
export const ARTIFACTS = join(JS_DIR, 'test-artifacts');

/** The native CLI built by `cargo xtask test` (KAUDIT_BIN), else $CARGO_TARGET_DIR/debug/kaudit. */
export function kauditBin() {
  const bin = process.env.KAUDIT_BIN
    || (process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, 'debug', 'kaudit'));
  if (!bin || !existsSync(bin)) {
    throw new Error(`native kaudit CLI not found (${bin || 'set KAUDIT_BIN or CARGO_TARGET_DIR'}): run \`cargo build -p kaudit-cli\` or \`cargo xtask test\``);
  }
  return bin;
}

export function kaudit(args, options = {}) {
  return execFileSync(kauditBin(), args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

/** `kaudit report --json` for `files` and `filter` (the same object the npm package takes). */
export function cliReportJson(files, filter = {}) {
  return kaudit(['report', '--json', '--filter', JSON.stringify(filter), ...files]).trimEnd();
}

/** Equal texts, or a failure showing where they first differ (reports are long one-line JSON). */
export function sameText(got, want, label) {
  if (got === want) return;
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  const at = (s) => JSON.stringify(s.slice(Math.max(0, i - 80), i + 80));
  throw new Error(`${label}: texts differ at offset ${i} (lengths ${got.length} and ${want.length})\n  got:  ${at(got)}\n  want: ${at(want)}`);
}

export function checkPackageBuilt() {
  if (!existsSync(join(JS_DIR, 'pkg', 'kaudit_js_bg.wasm'))) {
    throw new Error('js/pkg is missing: build it with `cargo xtask` (js::build: wasm-pack build js --target web --release --out-dir pkg)');
  }
}

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json', '.log': 'text/plain; charset=utf-8',
  '.png': 'image/png',
};

/** Serves `dir` on a free loopback port; resolves to { url, close }. */
export async function serve(dir) {
  const base = resolve(dir);
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      const file = normalize(join(base, path.endsWith('/') ? `${path}index.html` : path));
      if (file !== base && !file.startsWith(base + sep)) throw Object.assign(new Error('outside'), { code: 'ENOENT' });
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch (e) {
      res.writeHead(e.code === 'ENOENT' || e.code === 'EISDIR' ? 404 : 500, { 'content-type': 'text/plain' });
      res.end(String(e.code || e.message));
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(ok)) };
}

// What a rendered tab must show, derived from the report JSON: metrics (the stat boxes) and,
// per table id, the row keys and their numeric cells. The DOM side (domView) is read into the
// same shape, so the test compares numbers, not formatting.

const dist = (d, extra = []) => {
  const rows = d.entries.map((e) => ({ key: e.key, count: e.count, ...Object.fromEntries(extra.map((k) => [k, e[k]])) }));
  if (d.others > 0) rows.push({ key: '(others)', count: d.others });
  return { rows };
};
const events = (list) => ({ count: list.count, rows: list.events.map((e, i) => ({ key: e.auditID || `#${i}` })) });
const OPS = ['create', 'update', 'delete', 'access'];

export function expectedView(r, tab) {
  // Every tab's header: how many of the events read fall in the range.
  const metrics = { 'range.events': r.range.events };
  const tables = {};
  if (tab === 'overview') {
    const o = r.overview;
    Object.assign(metrics, {
      'overview.total': o.total, 'overview.success': o.success, 'overview.failure': o.failure,
      'overview.successRate': o.successRate === null ? '–' : `${o.successRate}%`,
    });
    for (const [k, list] of Object.entries(o.important)) {
      metrics[`overview.important.${k}.count`] = list.count;
      tables[`overview.important.${k}`] = events(list);
    }
    tables['overview.byNamespace'] = dist(o.byNamespace);
    tables['overview.byAccount'] = dist(o.byAccount);
    tables['overview.byStatusCode'] = dist(o.byStatusCode);
    tables['overview.byRegion'] = dist(o.byRegion);
    tables['overview.byIpScope'] = dist(o.byIpScope);
    tables['overview.bySourceIp'] = dist(o.bySourceIp, ['failed']);
    tables['overview.timeline.table'] = {
      rows: o.timeline.filter((b) => b.count > 0).map((b) => ({ key: b.start, ok: b.count - b.failed, failed: b.failed })),
    };
  } else if (tab === 'operations') {
    const t = r.operations.totals;
    metrics['operations.totals.total'] = t.total;
    for (const op of OPS) metrics[`operations.totals.${op}`] = t[op];
    for (const c of r.operations.categories) {
      const rows = c.resources.map((x) => ({ key: x.resourceType, ...pick(x.ops) }));
      if (c.others.total > 0) rows.push({ key: '(others)', ...pick(c.others) });
      tables[`operations.${c.category}`] = { rows };
    }
  } else if (tab === 'details') {
    const d = r.details;
    if (d.resourceType) {
      metrics['details.resourceType'] = d.resourceType;
      metrics['details.ops.total'] = d.ops.total;
      for (const op of OPS) metrics[`details.ops.${op}`] = d.ops[op];
      metrics['details.successRate'] = d.successRate === null ? '–' : `${d.successRate}%`;
      metrics['details.failure'] = d.failure;
      tables['details.byNamespace'] = dist(d.byNamespace);
      tables['details.byAccount'] = dist(d.byAccount);
      tables['details.events'] = events(d.events);
      tables['details.timeline.table'] = {
        rows: d.timeline.filter((b) => OPS.some((op) => b[op] > 0)).map((b) => ({ key: b.start, ...Object.fromEntries(OPS.map((op) => [op, b[op]])) })),
      };
    }
  }
  return { tab, metrics, tables };
}

function pick(ops) {
  return { create: ops.create, update: ops.update, delete: ops.delete, access: ops.access, total: ops.total };
}

/** Runs in the page: reads the rendered tab into raw strings. */
export function readDom() {
  const root = document.querySelector('.kaudit-report');
  const metrics = {};
  for (const el of root.querySelectorAll('[data-metric]')) {
    if (el.dataset.metric === 'range') continue;
    metrics[el.dataset.metric] = (el.querySelector('dd') || el).textContent;
  }
  const tables = {};
  for (const t of root.querySelectorAll('table[data-table]')) {
    const rows = [...t.querySelectorAll('tbody tr[data-key], tfoot tr[data-key]')].map((tr) => {
      const cells = {};
      for (const c of tr.querySelectorAll('[data-col]')) cells[c.dataset.col] = c.textContent;
      return { key: tr.dataset.key, cells };
    });
    tables[t.dataset.table] = { count: t.dataset.count, rows };
  }
  return { tab: root.dataset.tab, metrics, tables };
}

const num = (s) => {
  const n = Number(String(s).replace(/,/g, ''));
  if (!Number.isFinite(n)) throw new Error(`not a number on the page: ${JSON.stringify(s)}`);
  return n;
};

/** The DOM strings in the shape of expectedView (numbers parsed, only the compared columns). */
export function domView(raw, expected) {
  const metrics = {};
  for (const [k, v] of Object.entries(expected.metrics)) {
    if (!(k in raw.metrics)) throw new Error(`metric ${k} is not on the page`);
    metrics[k] = typeof v === 'number' ? num(raw.metrics[k]) : raw.metrics[k];
  }
  const tables = {};
  for (const [id, want] of Object.entries(expected.tables)) {
    const got = raw.tables[id];
    if (!got) throw new Error(`table ${id} is not on the page`);
    const rows = got.rows.map((r, i) => {
      const out = { key: r.key };
      const like = want.rows[i] || want.rows[0] || {};
      for (const c of Object.keys(like)) if (c !== 'key') out[c] = num(r.cells[c]);
      return out;
    });
    tables[id] = want.count === undefined ? { rows } : { count: num(got.count), rows };
  }
  return { tab: raw.tab, metrics, tables };
}

/** Headless Debian Chromium (playwright-core) with a fresh profile; resolves to { context, profile }. */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const executablePath = process.env.KAUDIT_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`${executablePath} not found: install Debian chromium (cargo xtask setup)`);
  const profile = mkdtempSync(join(tmpdir(), 'kaudit-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  return { context, profile };
}
