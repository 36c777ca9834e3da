// The demo page: file picking, filters and tabs. The engine runs in worker.js; this thread only
// turns filter controls into a filter object and draws reports with the package's renderer.
import { renderReport, formatCount } from '../render/render.js';

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });

// Inspected by the browser test: the last report drawn and how long each took.
const state = { tab: 'overview', report: null, seq: 0, timings: [], loaded: null, live: false };
window.kauditDemo = state;

let nextId = 1;
let latest = 0;
const waiting = new Map();

function request(filter) {
  const id = nextId++;
  latest = id;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    worker.postMessage({ type: 'report', id, filter });
  });
}

function setState(s) {
  document.body.dataset.state = s;
}

worker.onmessage = (event) => {
  const m = event.data;
  if (m.type === 'progress') {
    $('progress').max = m.total || 1;
    $('progress').value = m.loaded;
    $('status').textContent = `Reading… ${Math.round((100 * m.loaded) / (m.total || 1))}% · ${formatCount(m.counts.events)} events`;
  } else if (m.type === 'loaded') {
    state.loaded = m;
    $('progress').max = 1;
    $('progress').value = 1;
    const bad = m.counts.bad ? `, ${formatCount(m.counts.bad)} bad records` : '';
    $('status').textContent = `${m.name}: ${formatCount(m.counts.events)} events${bad} read in ${Math.round(m.ms)} ms (${(m.memory / 1048576).toFixed(1)} MiB held).`;
    // A new input starts from the default filters (its namespaces and users differ), and the
    // default range depends on whether the data is live.
    $('filters').reset();
    state.live = isLive(m.counts.newest);
    $('f-last').value = state.live ? '7d' : 'all';
    document.querySelectorAll('.demo-custom').forEach((el) => { el.hidden = true; });
    $('filters').hidden = false;
    refresh();
  } else if (m.type === 'report' || m.type === 'error') {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (!w) {
      $('status').textContent = m.message || 'Error';
      setState('error');
    } else if (m.type === 'report') {
      w.resolve(m);
    } else {
      w.reject(new Error(m.message));
    }
  }
};

function load(message) {
  setState('loading');
  state.report = null;
  $('report').replaceChildren();
  $('status').textContent = `Reading ${message.name}…`;
  worker.postMessage(message);
}

$('file').addEventListener('change', () => {
  const file = $('file').files[0];
  if (file) load({ type: 'load', file, name: file.name });
});
$('sample').addEventListener('click', () => load({ type: 'load', url: new URL('sample-audit.log', location.href).href, name: 'sample-audit.log' }));

const one = (v) => (v === '*' ? undefined : [v]);
// datetime-local values are read as UTC; `to` covers its whole second (bounds are inclusive).
const utc = (v, end) => (v ? `${v.length === 16 ? `${v}:00` : v}${end ? '.999999' : ''}Z` : undefined);

// Live data (its newest event under an hour old, e.g. a log tailed from a running cluster) gets
// the seed console's default, the last week up to now, and its ranges end now. A recorded file
// is shown whole by default, and its ranges end at its newest event.
const LIVE_MS = 3600 * 1000;

function isLive(newest) {
  const t = newest ? Date.parse(newest) : NaN;
  return Number.isFinite(t) && Math.abs(Date.now() - t) < LIVE_MS;
}

const RANGE_NAMES = { '1h': 'the last hour', '24h': 'the last 24 hours', '7d': 'the last 7 days', '30d': 'the last 30 days' };

/** Says which range the report uses and why (shown under the filters). */
function rangeNote(last) {
  const newest = state.loaded?.counts.newest;
  const data = state.live
    ? `Live data (newest event ${newest}): ranges end now`
    : `Recorded data${newest ? ` (newest event ${newest})` : ''}: ranges end at the newest event`;
  const shown = last === 'all' ? 'everything read' : last === 'custom' ? 'the custom range' : `${RANGE_NAMES[last]} ${state.live ? 'up to now' : 'of the data'}`;
  const why = state.live ? 'the default for live data is the last 7 days up to now, as in the console' : 'the default for a file is everything read';
  return `${data}. Showing ${shown}; ${why}.`;
}

function readFilter() {
  const f = $('filters').elements;
  const last = f.last.value;
  $('range-note').textContent = rangeNote(last);
  const preset = last !== 'custom' && last !== 'all';
  return {
    last: last === 'custom' ? 'all' : last,
    from: last === 'custom' ? utc(f.from.value) : undefined,
    to: last === 'custom' ? utc(f.to.value, true) : preset && state.live ? new Date().toISOString() : undefined,
    namespace: one(f.namespace.value),
    account: one(f.account.value),
    code: one(f.code.value),
    query: f.query.value.trim() || undefined,
    resourceType: f.resourceType.value.trim() || undefined,
  };
}

function fillSelect(select, values, labelOf) {
  const keep = select.value;
  const key = JSON.stringify(values);
  if (select.dataset.values === key) return;
  select.dataset.values = key;
  const options = [new Option('All', '*')];
  for (const v of values) options.push(new Option(labelOf(v), String(v)));
  select.replaceChildren(...options);
  select.value = values.map(String).includes(keep) ? keep : '*';
}

function updateFacets(report) {
  const f = report.facets;
  fillSelect($('f-namespace'), f.namespaces, (v) => v || '(cluster-scoped)');
  fillSelect($('f-account'), f.accounts, (v) => v || '(no user)');
  fillSelect($('f-code'), f.codes, (v) => (v === 0 ? '(no status)' : String(v)));
  const list = $('resource-types');
  if (list.dataset.values !== JSON.stringify(f.resourceTypes)) {
    list.dataset.values = JSON.stringify(f.resourceTypes);
    list.replaceChildren(...f.resourceTypes.map((t) => new Option(t, t)));
  }
}

function draw() {
  renderReport($('report'), state.report, { tab: state.tab, onTab: (tab) => { state.tab = tab; draw(); } });
}

const nextPaint = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

async function refresh() {
  const started = performance.now();
  let answer;
  try {
    answer = await request(readFilter());
  } catch (e) {
    $('filter-error').textContent = e.message;
    $('filter-error').hidden = false;
    setState('ready');
    document.body.dataset.reportSeq = String(++state.seq);
    return;
  }
  if (answer.id !== latest) return; // a newer request is on its way
  $('filter-error').hidden = true;
  state.report = answer.report;
  updateFacets(answer.report);
  const drawStart = performance.now();
  draw();
  const drawMs = performance.now() - drawStart;
  await nextPaint();
  const timing = { events: answer.report.input.events, reportMs: answer.ms, drawMs, totalMs: performance.now() - started };
  state.timings.push(timing);
  $('timing').textContent = `Report over ${formatCount(timing.events)} events: computed in ${timing.reportMs.toFixed(1)} ms, drawn in ${timing.drawMs.toFixed(1)} ms, ${timing.totalMs.toFixed(1)} ms in all.`;
  setState('ready');
  document.body.dataset.reportSeq = String(++state.seq);
}

$('filters').addEventListener('submit', (e) => {
  e.preventDefault();
  refresh();
});
$('filters').addEventListener('change', (e) => {
  if (e.target.name === 'last') {
    const custom = e.target.value === 'custom';
    document.querySelectorAll('.demo-custom').forEach((el) => { el.hidden = !custom; });
    if (custom && state.report) {
      const bound = (t) => (t || '').replace(/\.\d+Z$|Z$/, '').slice(0, 19);
      $('f-from').value = bound(state.report.range.from || state.report.input.oldest);
      $('f-to').value = bound(state.report.range.to || state.report.input.newest);
    }
  }
  // Text fields apply on Enter (submit); everything else at once.
  if (e.target.tagName === 'SELECT' || e.target.type === 'datetime-local') refresh();
});
