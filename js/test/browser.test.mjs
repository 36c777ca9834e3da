// The demo in a real browser (Debian Chromium, headless, via playwright-core): every number
// shown on each tab equals the native `kaudit report --json` for the same input and filter,
// while switching tabs and filters; the static page of `kaudit report --html` likewise; and a
// 100k-event file measured end to end (figures printed, not asserted). Screenshots go to
// js/test-artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, JS_DIR, SAMPLE, checkPackageBuilt, cliReportJson, launchChromium, domView, expectedView, kaudit, readDom, serve } from './helpers.mjs';
import { generateEvents } from './generate.mjs';

const TABS = ['overview', 'operations', 'details'];
let server;
let context;
let profile;

before(async () => {
  checkPackageBuilt();
  if (!existsSync(join(JS_DIR, 'demo', 'sample-audit.log'))) throw new Error('js/demo/sample-audit.log is missing: run js::build (cargo xtask)');
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await serve(JS_DIR);
  ({ context, profile } = await launchChromium());
});

after(async () => {
  await context?.close();
  await server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function openPage() {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return { page, errors };
}

const seq = (page) => page.evaluate(() => Number(document.body.dataset.reportSeq || 0));

/** Performs `action` and waits until the demo has drawn the next report. */
async function nextReport(page, action, timeout = 30_000) {
  const before = await seq(page);
  await action();
  await page.waitForFunction((n) => Number(document.body.dataset.reportSeq || 0) > n && document.body.dataset.state === 'ready', before, { timeout });
}

async function showTab(page, tab) {
  await page.click(`[role=tab][data-tab="${tab}"]`);
  await page.waitForSelector(`.kaudit-report[data-tab="${tab}"]`);
}

/** Compares every tab on the page with `report`; optional screenshots named `${shots}-${tab}.png`. */
async function checkTabs(page, report, label, shots) {
  for (const tab of TABS) {
    await showTab(page, tab);
    const want = expectedView(report, tab);
    const got = domView(await page.evaluate(readDom), want);
    assert.deepEqual(got, want, `${label}: tab ${tab}`);
    if (shots) await page.screenshot({ path: join(ARTIFACTS, `${shots}-${tab}.png`), fullPage: true });
  }
}

test('demo: each tab shows the core report for the sample, across filter changes', async () => {
  const { page, errors } = await openPage();
  await page.goto(`${server.url}/demo/index.html`);
  await nextReport(page, () => page.click('#sample'));

  // A recorded file (the sample spans 2017-2020): by default everything read, and the page says so.
  const all = JSON.parse(cliReportJson([SAMPLE], {}));
  assert.equal(all.overview.total, 88);
  assert.equal(all.range.events, 88);
  assert.equal(await page.inputValue('#f-last'), 'all');
  assert.match(await page.textContent('#range-note'), /^Recorded data \(newest event 2020-04-21T17:58:49\.696309Z\).*Showing everything read/);
  assert.match(await page.textContent('[data-metric=range]'), /^Everything read \(.*\) · 88 of 88 events read in this range/);
  await checkTabs(page, all, 'default (everything read)', 'sample-all');

  // The last week of the data: the header says how many of the events read it covers.
  await nextReport(page, () => page.selectOption('#f-last', '7d'));
  const week = JSON.parse(cliReportJson([SAMPLE], { last: '7d' }));
  assert.ok(week.range.events > 0 && week.range.events < week.input.events);
  assert.match(await page.textContent('[data-metric=range]'), new RegExp(` · ${week.range.events} of 88 events read in this range`));
  assert.match(await page.textContent('#range-note'), /Showing the last 7 days of the data/);
  await checkTabs(page, week, 'last 7 days of the data', 'sample-week');
  await nextReport(page, () => page.selectOption('#f-last', 'all'));

  await nextReport(page, () => page.selectOption('#f-namespace', 'default'));
  await nextReport(page, () => page.selectOption('#f-code', '403'));
  const ns = JSON.parse(cliReportJson([SAMPLE], { last: 'all', namespace: ['default'], code: [403] }));
  assert.ok(ns.overview.total > 0);
  await checkTabs(page, ns, 'namespace default, status 403');

  await nextReport(page, () => page.selectOption('#f-code', '*'));
  await page.fill('#f-query', 'verb: create or verb: delete');
  await page.fill('#f-resource', 'ConfigMaps');
  await nextReport(page, () => page.press('#f-query', 'Enter'));
  const q = JSON.parse(cliReportJson([SAMPLE], { last: 'all', namespace: ['default'], query: 'verb: create or verb: delete', resourceType: 'ConfigMaps' }));
  assert.equal(q.details.resourceType, 'configmaps');
  assert.ok(q.details.ops.create > 0 && q.details.ops.delete > 0);
  await checkTabs(page, q, 'query and resource type', 'sample-query');

  await page.fill('#f-query', 'verb: (');
  await nextReport(page, () => page.press('#f-query', 'Enter'));
  assert.match(await page.textContent('#filter-error'), /query: column \d+/);
  assert.equal(await page.isVisible('#filter-error'), true);
  assert.deepEqual(errors, []);
  await page.close();
});

test('demo: live data gets the last 7 days up to now, and says so', async () => {
  // Three events: a minute, three days and ten days before now.
  const at = (msAgo) => new Date(Date.now() - msAgo).toISOString();
  const event = (id, time) => JSON.stringify({
    kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', auditID: id, stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/pods', verb: 'list', user: { username: 'alice' }, sourceIPs: ['10.0.0.1'],
    objectRef: { resource: 'pods', namespace: 'default', apiVersion: 'v1' }, responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: time, stageTimestamp: time,
  });
  const day = 86_400_000;
  const text = [event('now', at(60_000)), event('three-days', at(3 * day)), event('ten-days', at(10 * day))].join('\n');
  const { page, errors } = await openPage();
  await page.goto(`${server.url}/demo/index.html`);
  await nextReport(page, () => page.setInputFiles('#file', { name: 'live.log', mimeType: 'text/plain', buffer: Buffer.from(text) }));
  assert.equal(await page.inputValue('#f-last'), '7d');
  assert.match(await page.textContent('#range-note'), /^Live data \(newest event .*\): ranges end now\. Showing the last 7 days up to now/);
  const shown = await page.evaluate(() => window.kauditDemo.report);
  // The range ends at the wall clock (after the newest event), and covers 2 of the 3 events.
  assert.ok(Date.parse(shown.range.to) > Date.parse(shown.input.newest), `${shown.range.to} after ${shown.input.newest}`);
  assert.equal(Date.parse(shown.range.to) - Date.parse(shown.range.from), 7 * day);
  assert.equal(shown.range.events, 2);
  assert.match(await page.textContent('[data-metric=range]'), / · 2 of 3 events read in this range/);
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-live-'));
  try {
    writeFileSync(join(dir, 'live.log'), text);
    const want = JSON.parse(cliReportJson([join(dir, 'live.log')], { last: '7d', to: shown.range.to }));
    await checkTabs(page, want, 'live data, last 7 days up to now', 'live-week');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('npm package, fault-injection build: a panic becomes an exception naming the record, and the engine stays usable', async () => {
  if (!existsSync(join(JS_DIR, 'pkg-fault', 'kaudit_js_bg.wasm'))) throw new Error('js/pkg-fault is missing: run js::build (cargo xtask)');
  // Ten sample events, the second marked: the fault build panics on it inside the engine.
  const lines = readFileSync(SAMPLE, 'utf8').split('\n').filter((l) => l.trim()).slice(0, 10);
  const id = JSON.parse(lines[1]).auditID;
  lines[1] = lines[1].replace('"auditID":', '"note":"kaudit-fault-injection:panic","auditID":');
  const marked = lines.join('\n');
  const { page, errors } = await openPage();
  await page.goto(`${server.url}/demo/index.html`);
  const got = await page.evaluate(async ({ marked, sample }) => {
    const m = await import('/pkg-fault/kaudit_js.js');
    await m.default({ module_or_path: '/pkg-fault/kaudit_js_bg.wasm' });
    const engine = new m.Engine();
    let error = null;
    try {
      engine.push(marked);
    } catch (e) {
      error = { name: e.name, message: e.message, isError: e instanceof Error };
    }
    const afterPanic = engine.counts();
    // The next push works, and so do reports.
    const next = engine.push(sample);
    return { error, afterPanic, next, report: engine.reportJson({}) };
  }, { marked, sample: readFileSync(SAMPLE, 'utf8') });
  assert.ok(got.error, 'the push with the marked record threw');
  assert.equal(got.error.isError, true);
  assert.match(got.error.message, new RegExp(`^kaudit internal error on record 2 \\(line 2, auditID ${id}\\): fault injection`));
  assert.match(got.error.message, /the engine stays usable/);
  // The marked record was skipped, the other nine processed.
  assert.equal(got.afterPanic.events, 9);
  assert.equal(got.afterPanic.internalErrors, 1);
  assert.equal(got.next.events, 9 + 88);
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-fault-'));
  try {
    const kept = lines.filter((_, i) => i !== 1).join('\n');
    writeFileSync(join(dir, 'kept.log'), `${kept}\n`);
    assert.equal(got.report, cliReportJson([join(dir, 'kept.log'), SAMPLE], {}));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('kaudit report --html: the static page shows the same numbers', async () => {
  const file = join(ARTIFACTS, 'report.html');
  // No range flag: a report from files covers everything read.
  kaudit(['report', '--html', file, SAMPLE]);
  const report = JSON.parse(cliReportJson([SAMPLE], { last: 'all' }));
  const { page, errors } = await openPage();
  await page.goto(`${server.url}/test-artifacts/report.html`);
  await page.waitForSelector('.kaudit-report');
  await checkTabs(page, report, 'static page', 'static');
  assert.deepEqual(errors, []);
  await page.close();
});

test('cargo xtask demo: the report page of the demo day (screenshots)', { timeout: 900_000 }, async () => {
  // What the demo does (xtask/src/demo.rs): a day of a small cluster's audit log, the seed's
  // policy, enrichment and alerts (kaudit run), the report page of the kept events.
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-demo-day-'));
  try {
    const day = join(dir, 'day.log');
    const kept = join(dir, 'kept.log');
    kaudit(['demo-log', '-o', day]);
    kaudit(['run', '--alerts', join(dir, 'alerts.jsonl'), '--metrics', join(dir, 'metrics.json'), day], { stdio: ['ignore', openSync(kept, 'w'), 'pipe'] });
    const page = join(ARTIFACTS, 'demo-report.html');
    const report = JSON.parse(kaudit(['report', '--json', '--html', page, kept]));
    // The page shows the kept events of the whole day, and what happened in it.
    assert.equal(report.range.events, report.input.events);
    assert.ok(report.input.events > 150_000, `${report.input.events} kept events`);
    assert.equal(report.overview.important.commandExecution.count, 2); // ResponseStarted and ResponseComplete
    assert.equal(report.overview.important.internetAccess.count, 42); // the prober's 48 requests but /version (dropped)
    assert.ok(report.overview.important.resourceDeletion.events.some((e) => e.account === 'bob' && e.name === 'preview-pr-1432'));
    // The admin's secret read is among ~400 (the controller manager watches secrets all day):
    // the alert picks it out, attributed to the RAM user behind ACK's shared kubernetes-admin.
    assert.ok(report.overview.important.secretAccess.count > 300);
    assert.ok(report.overview.byAccount.entries.some((e) => e.key === '27689245'));
    const alerts = readFileSync(join(dir, 'alerts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual([...new Set(alerts.map((a) => a.rule))].sort(),
      ['exec-into-container', 'internet-access', 'internet-access-failures', 'resource-deletion', 'secret-access']);
    assert.deepEqual(alerts.filter((a) => a.rule === 'secret-access').map((a) => [a.fields.account, a.fields.secret]),
      [['27689245', 'postgres-credentials']]);

    const { page: tab, errors } = await openPage();
    await tab.setViewportSize({ width: 1280, height: 1000 });
    await tab.goto(`${server.url}/test-artifacts/demo-report.html`);
    await tab.waitForSelector('.kaudit-report');
    assert.match(await tab.textContent('[data-metric=range]'),
      new RegExp(`^Everything read \\(2026-05-04 .* · ${report.input.events.toLocaleString('en-US')} of ${report.input.events.toLocaleString('en-US')} events read in this range`));
    await checkTabs(tab, report, 'demo day report page', 'demo-day');
    assert.deepEqual(errors, []);
    await tab.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('100k events: file read in the worker, report drawn (timings printed)', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-100k-'));
  const file = join(dir, 'audit-100k.log');
  const started = Date.now();
  writeFileSync(file, generateEvents(100_000));
  const genMs = Date.now() - started;
  try {
    const { page, errors } = await openPage();
    await page.goto(`${server.url}/demo/index.html`);
    await nextReport(page, () => page.setInputFiles('#file', file), 300_000);
    const first = await page.evaluate(() => ({ loaded: window.kauditDemo.loaded, timing: window.kauditDemo.timings.at(-1) }));
    await page.screenshot({ path: join(ARTIFACTS, 'load-100k-overview.png'), fullPage: false });
    const want = JSON.parse(cliReportJson([file], {}));
    assert.equal(want.input.events, 100_000);
    assert.equal(first.loaded.counts.events, 100_000);
    const view = expectedView(want, 'overview');
    assert.deepEqual(domView(await page.evaluate(readDom), view), view, '100k overview');

    await nextReport(page, () => page.selectOption('#f-last', '7d'));
    const week = await page.evaluate(() => window.kauditDemo.timings.at(-1));
    await nextReport(page, () => page.selectOption('#f-last', 'all'));
    await page.fill('#f-resource', 'aliyunlogconfigs');
    await page.fill('#f-query', 'kaudit.ipScope: internet');
    await nextReport(page, () => page.press('#f-query', 'Enter'));
    const query = await page.evaluate(() => window.kauditDemo.timings.at(-1));
    // Same query, another namespace: the query's per-event results are cached in the engine.
    await nextReport(page, () => page.selectOption('#f-namespace', 'prod'));
    const cached = await page.evaluate(() => window.kauditDemo.timings.at(-1));
    await nextReport(page, () => page.selectOption('#f-namespace', '*'));
    const t0 = Date.now();
    await showTab(page, 'details');
    const tabMs = Date.now() - t0;
    const crd = JSON.parse(cliReportJson([file], { last: 'all', query: 'kaudit.ipScope: internet', resourceType: 'aliyunlogconfigs' }));
    const dview = expectedView(crd, 'details');
    assert.ok(crd.details.ops.total > 0);
    assert.deepEqual(domView(await page.evaluate(readDom), dview), dview, '100k details of a CRD');
    await page.screenshot({ path: join(ARTIFACTS, 'load-100k-details.png'), fullPage: false });
    assert.deepEqual(errors, []);
    const f = (ms) => `${Math.round(ms)} ms`;
    const mb = (first.loaded.total / 1048576).toFixed(1);
    console.log(`# 100k events (${mb} MiB, generated in ${f(genMs)}): read and aggregated in the worker in ${f(first.loaded.ms)}, `
      + `store ${(first.loaded.memory / 1048576).toFixed(1)} MiB`);
    for (const [name, t] of [['default (everything read)', first.timing], ['last 7 days of the data', week], ['ad-hoc query over raw text + CRD', query],
      ['same query, namespace changed (cached query results)', cached]]) {
      console.log(`# 100k report, ${name}: computed ${f(t.reportMs)} + drawn ${f(t.drawMs)} = ${f(t.totalMs)} from filter change to painted page`);
    }
    console.log(`# 100k tab switch to Operation Details: ${f(tabMs)} (click to drawn, measured from Node)`);
    await page.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
