// Hostile strings (hostile.mjs) in every field the reports show, rendered in headless Debian
// Chromium: the static page of `kaudit report --html` and the demo (the npm package's engine
// and renderer, the log read through the file input). On every tab: every event is counted
// and every table drawn (the numbers and row keys equal `kaudit report --json`), the payloads
// show as text, no element the renderer does not make is in the report, no element anywhere
// has an event-handler attribute, no script element was added and no payload ran.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, JS_DIR, checkPackageBuilt, cliReportJson, launchChromium, domView, expectedView, kaudit, readDom, serve } from './helpers.mjs';
import { HOSTILE, hostileLog } from './hostile.mjs';

const TABS = ['overview', 'operations', 'details'];
// The resource type of the Operation Details tab: a custom resource named by a payload.
const RESOURCE = `widgets1${HOSTILE[1]}`;
let server;
let context;
let profile;
let dir;
let log;

before(async () => {
  checkPackageBuilt();
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'kaudit-hostile-'));
  log = join(dir, 'hostile-audit.log');
  writeFileSync(log, hostileLog());
  server = await serve(JS_DIR);
  ({ context, profile } = await launchChromium());
  // Nothing may leave the machine (a <base> or <img> payload would try).
  await context.route((url) => !url.href.startsWith(server.url), (route) => route.abort());
});

after(async () => {
  await context?.close();
  await server?.close();
  for (const d of [profile, dir]) if (d) rmSync(d, { recursive: true, force: true });
});

async function openPage() {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); d.dismiss(); });
  page.on('request', (r) => { if (!r.url().startsWith(server.url) && !r.url().startsWith('data:')) errors.push(`request: ${r.url()}`); });
  return { page, errors };
}

/** Runs in the page: what the data may have added. */
function inspect() {
  // Every element renderReport creates (render.js: h() and s()).
  const made = new Set(['div', 'p', 'dl', 'dt', 'dd', 'section', 'h3', 'table', 'caption', 'thead', 'tbody', 'tfoot', 'tr',
    'th', 'td', 'code', 'figure', 'figcaption', 'ul', 'li', 'span', 'details', 'summary', 'button',
    'svg', 'rect', 'g', 'title', 'text']);
  const root = document.querySelector('.kaudit-report');
  const foreign = root ? [...root.querySelectorAll('*')].map((e) => e.localName).filter((n) => !made.has(n)) : ['(no report)'];
  const handlers = [...document.querySelectorAll('*')].flatMap((e) =>
    [...e.attributes].filter((a) => a.name.toLowerCase().startsWith('on')).map((a) => `${e.localName}[${a.name}]`));
  const text = (sel) => [...document.querySelectorAll(sel)].map((el) => el.textContent);
  return {
    foreign: [...new Set(foreign)],
    handlers,
    scripts: document.scripts.length,
    pwned: window.__kauditPwned ?? null,
    hidden: root ? getComputedStyle(root).display === 'none' : true,
    accounts: text('[data-table="overview.byAccount"] tbody th'),
    commands: text('[data-table="overview.important.commandExecution"] td[data-col="command"]'),
  };
}

async function showTab(page, tab) {
  await page.click(`[role=tab][data-tab="${tab}"]`);
  await page.waitForSelector(`.kaudit-report[data-tab="${tab}"]`);
}

/** Every tab: the same numbers and rows as `report`, and nothing the data added. */
async function checkTabs(page, report, label, scripts, shots) {
  for (const tab of TABS) {
    await showTab(page, tab);
    const want = expectedView(report, tab);
    assert.deepEqual(domView(await page.evaluate(readDom), want), want, `${label}: tab ${tab}`);
    const seen = await page.evaluate(inspect);
    assert.deepEqual(seen.foreign, [], `${label}: tab ${tab}: elements the renderer does not make`);
    assert.deepEqual(seen.handlers, [], `${label}: tab ${tab}: event-handler attributes`);
    assert.equal(seen.scripts, scripts, `${label}: tab ${tab}: script elements`);
    assert.equal(seen.pwned, null, `${label}: tab ${tab}: a payload ran`);
    assert.equal(seen.hidden, false, `${label}: tab ${tab}: report hidden`);
    if (tab === 'overview') {
      // Payloads are shown as text, exactly (the distribution labels and the command cells).
      const shown = new Set([...seen.accounts, ...seen.commands]);
      const listed = report.overview.byAccount.entries.map((e) => e.key);
      for (const key of listed) assert.ok(shown.has(key), `${label}: account ${JSON.stringify(key.slice(0, 60))} not shown as text`);
    }
    if (shots) await page.screenshot({ path: join(ARTIFACTS, `${shots}-${tab}.png`), fullPage: false });
  }
}

test('kaudit report --html: hostile strings in every field, every tab drawn and inert', { timeout: 300_000 }, async () => {
  const filter = { last: 'all', top: 100, limit: 100, resourceType: RESOURCE };
  const report = JSON.parse(cliReportJson([log], filter));
  assert.equal(report.input.events, HOSTILE.length * 4);
  assert.equal(report.overview.total, HOSTILE.length * 4);
  assert.equal(report.overview.byAccount.entries.length, HOSTILE.length, 'every payload is an account row');
  assert.equal(report.details.resourceType, RESOURCE);
  const file = join(ARTIFACTS, 'hostile-report.html');
  kaudit(['report', '--filter', JSON.stringify(filter), '--html', file, log]);
  const { page, errors } = await openPage();
  await page.goto(`${server.url}/test-artifacts/hostile-report.html`);
  await page.waitForSelector('.kaudit-report');
  // The page's own two scripts (the data, the renderer), and the data is the report.
  const embedded = await page.evaluate(() => JSON.parse(document.getElementById('kaudit-report').textContent));
  assert.deepEqual(embedded, report, 'the embedded data is the report');
  await checkTabs(page, report, 'static page', 2, 'hostile-static');
  // A tab name from the URL picks only the renderer's own tabs.
  for (const hash of ['__proto__', 'constructor', 'toString']) {
    const fresh = await openPage();
    await fresh.page.goto(`${server.url}/test-artifacts/hostile-report.html#${hash}`);
    await fresh.page.waitForSelector('.kaudit-report[data-tab="overview"]');
    assert.deepEqual(fresh.errors, [], `#${hash}`);
    await fresh.page.close();
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('demo: hostile strings read through the file input, every tab drawn and inert', { timeout: 300_000 }, async () => {
  const { page, errors } = await openPage();
  await page.goto(`${server.url}/demo/index.html`);
  const scripts = await page.evaluate(() => document.scripts.length);
  const drawn = () => page.evaluate(() => Number(document.body.dataset.reportSeq || 0));
  const next = async (action) => {
    const n = await drawn();
    await action();
    await page.waitForFunction((k) => Number(document.body.dataset.reportSeq || 0) > k && document.body.dataset.state === 'ready', n, { timeout: 120_000 });
  };
  await next(() => page.setInputFiles('#file', log));
  await next(() => page.selectOption('#f-last', 'all'));
  await page.fill('#f-resource', RESOURCE);
  await next(() => page.press('#f-resource', 'Enter'));
  const report = JSON.parse(cliReportJson([log], { last: 'all', resourceType: RESOURCE }));
  assert.equal(report.overview.total, HOSTILE.length * 4);
  await checkTabs(page, report, 'demo', scripts, 'hostile-demo');
  // The filter controls list the payloads as options, as text (the engine keeps the first 256
  // characters of a name, so the 1 MB one is listed cut).
  const options = await page.evaluate(() => [...document.querySelectorAll('#f-account option')].map((o) => o.value));
  assert.deepEqual(options, ['*', ...report.facets.accounts]);
  for (const h of HOSTILE) assert.ok(options.includes(h.slice(0, 256)), `account option ${JSON.stringify(h.slice(0, 60))}`);
  // A payload as the namespace filter: shown in the header as text, still inert.
  await next(() => page.selectOption('#f-namespace', HOSTILE[3]));
  const one = JSON.parse(cliReportJson([log], { last: 'all', resourceType: RESOURCE, namespace: [HOSTILE[3]] }));
  assert.equal(one.overview.total, 4);
  await checkTabs(page, one, 'demo, namespace filter', scripts);
  assert.ok((await page.textContent('[data-metric=range]')).includes(HOSTILE[3]));
  assert.deepEqual(errors, []);
  await page.close();
});
