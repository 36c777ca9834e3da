// kaudit report renderer: draws one tab of a `kaudit.report/v1` report (docs/REPORTS.md) as
// HTML tables and simple SVG charts. No framework, no network, no innerHTML: every value from
// the audit log is set as text, so log content can never become markup.
//
// Styling: CSS classes `kaudit-*` and custom properties (`--kaudit-accent`, `--kaudit-fail`,
// `--kaudit-create|update|delete|access`, ...) defined in render.css. Numbers shown are the
// report's numbers, formatted with en-US digit grouping.
//
// This file is also inlined verbatim into the static page of `kaudit report --html`.

const SVG = 'http://www.w3.org/2000/svg';

export const TABS = [
  ['overview', 'Overview'],
  ['operations', 'Operations Overview'],
  ['details', 'Operation Details'],
];

const OPS = ['create', 'update', 'delete', 'access'];

let uid = 0;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A count as shown: en-US digit grouping. */
export function formatCount(n) {
  return Number(n).toLocaleString('en-US');
}

function pct(rate) {
  return rate === null || rate === undefined ? '–' : `${rate}%`;
}

const EMPTY_LABELS = {
  namespace: '(cluster-scoped)',
  account: '(no user)',
  code: '(no status)',
  region: '(no source IP)',
  scope: '(no source IP)',
  ip: '(none)',
};

function label(kind, key) {
  return key === '' || key === undefined || key === null ? EMPTY_LABELS[kind] || '(none)' : key;
}

function stat(metric, name, value, extra) {
  return h('div', { class: `kaudit-stat${extra ? ` ${extra}` : ''}`, 'data-metric': metric }, h('dt', null, name), h('dd', null, value));
}

function section(title, ...children) {
  const id = `kaudit-h-${++uid}`;
  return h('section', { class: 'kaudit-section', 'aria-labelledby': id }, h('h3', { id }, title), ...children);
}

/** Horizontal share bar for a table cell (decorative: the number is in the next cell). */
function shareBar(count, max, cls = 'kaudit-bar') {
  const w = max > 0 ? Math.max(count > 0 ? 1 : 0, Math.round((count / max) * 100)) : 0;
  return s('svg', { class: 'kaudit-share', viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': 'true', focusable: 'false' },
    s('rect', { class: cls, x: 0, y: 0, width: w, height: 10 }));
}

function table(id, caption, columns, rows, opts = {}) {
  const t = h('table', { class: 'kaudit-table', 'data-table': id });
  t.append(h('caption', null, caption));
  t.append(h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'kaudit-num' : null }, c.title)))));
  const body = h('tbody');
  if (rows.length === 0) {
    body.append(h('tr', { class: 'kaudit-empty' }, h('td', { colspan: columns.length }, opts.empty || 'No events.')));
  }
  for (const r of rows) {
    const tr = h('tr', { 'data-key': r.key });
    columns.forEach((c, i) => {
      const v = c.value(r);
      const attrs = { 'data-col': c.id, class: [c.num ? 'kaudit-num' : '', c.cls || ''].join(' ').trim() || null };
      tr.append(i === 0 && c.header !== false ? h('th', { scope: 'row', ...attrs }, v) : h('td', attrs, v));
    });
    body.append(tr);
  }
  t.append(body);
  if (opts.foot) t.append(h('tfoot', null, opts.foot));
  return t;
}

/** A distribution: key, count, share bar; the rest summed as "others". */
function distribution(id, caption, kind, dist, extraCols = []) {
  const max = dist.entries.reduce((m, e) => Math.max(m, e.count), 0);
  const columns = [
    { id: 'key', title: caption.key, value: (e) => label(kind, e.key) },
    ...extraCols,
    { id: 'count', title: 'Events', num: true, value: (e) => formatCount(e.count) },
    { id: 'share', title: 'Share', header: false, value: (e) => shareBar(e.count, max) },
  ];
  const foot = dist.others > 0
    ? h('tr', { 'data-key': '(others)' }, h('th', { scope: 'row' }, `Others (${formatCount(dist.distinct - dist.entries.length)} more)`),
      extraCols.map(() => h('td')), h('td', { class: 'kaudit-num', 'data-col': 'count' }, formatCount(dist.others)), h('td'))
    : null;
  return table(id, caption.title, columns, dist.entries, { foot });
}

function timeRange(t) {
  return t ? t.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
}

/** Vertical bars per bucket; `series` are stacked from the bottom. */
function timeline(id, title, buckets, series, stepLabel) {
  const W = 6, GAP = 1, H = 120;
  const totals = buckets.map((b) => series.reduce((n, sr) => n + sr.value(b), 0));
  const max = Math.max(1, ...totals);
  const capId = `kaudit-cap-${++uid}`;
  const svg = s('svg', {
    class: 'kaudit-timeline', viewBox: `0 0 ${Math.max(1, buckets.length * (W + GAP))} ${H}`, preserveAspectRatio: 'none',
    role: 'img', 'aria-labelledby': capId, 'data-chart': id,
  });
  buckets.forEach((b, i) => {
    let y = H;
    const parts = series.map((sr) => ({ sr, n: sr.value(b) })).filter((p) => p.n > 0);
    const g = s('g', { 'data-start': b.start });
    g.append(s('title', null, `${timeRange(b.start)}: ${parts.map((p) => `${formatCount(p.n)} ${p.sr.name}`).join(', ') || 'no events'}`));
    for (const p of parts) {
      const hgt = Math.max(1, (p.n / max) * (H - 4));
      y -= hgt;
      g.append(s('rect', { class: p.sr.cls, x: i * (W + GAP), y, width: W, height: hgt }));
    }
    svg.append(g);
  });
  const first = buckets[0]?.start, last = buckets[buckets.length - 1]?.start;
  const legend = h('ul', { class: 'kaudit-legend' }, series.map((sr) => h('li', null, h('span', { class: `kaudit-swatch ${sr.cls}`, 'aria-hidden': 'true' }), sr.name)));
  const rows = buckets.map((b, i) => ({ ...b, key: b.start, total: totals[i] })).filter((r) => r.total > 0);
  const data = table(`${id}.table`, `${title}: non-empty ${stepLabel} buckets`,
    [{ id: 'start', title: 'Bucket start (UTC)', value: (r) => timeRange(r.start) },
      ...series.map((sr) => ({ id: sr.key, title: sr.name, num: true, value: (r) => formatCount(sr.value(r)) }))], rows);
  return h('figure', { class: 'kaudit-figure' },
    h('figcaption', { id: capId }, `${title} (${stepLabel} buckets, ${timeRange(first)} to ${timeRange(last)})`),
    svg,
    h('div', { class: 'kaudit-axis', 'aria-hidden': 'true' }, h('span', null, timeRange(first)), h('span', null, timeRange(last))),
    legend,
    h('details', { class: 'kaudit-data' }, h('summary', null, 'Data table'), data));
}

const EVENT_COLUMNS = {
  time: { id: 'time', title: 'Time (UTC)', cls: 'kaudit-time', value: (e) => timeRange(e.time) || '–' },
  account: { id: 'account', title: 'Account', value: (e) => e.account || '–' },
  verb: { id: 'verb', title: 'Verb', value: (e) => e.verb },
  resource: { id: 'resource', title: 'Resource', value: (e) => [e.resourceType, e.subresource].filter(Boolean).join('/') || '–' },
  namespace: { id: 'namespace', title: 'Namespace', value: (e) => e.namespace || '–' },
  name: { id: 'name', title: 'Name', value: (e) => e.name || '–' },
  code: { id: 'code', title: 'Status', num: true, value: (e) => (e.code ?? '–') },
  ip: { id: 'sourceIP', title: 'Source IP', value: (e) => e.sourceIP || '–' },
  region: { id: 'region', title: 'Region', value: (e) => label('region', e.region) },
  container: { id: 'container', title: 'Container', value: (e) => e.container || '–' },
  command: { id: 'command', title: 'Command', value: (e) => h('code', null, e.command || '–') },
  uri: { id: 'requestURI', title: 'Request URI', value: (e) => h('code', { class: 'kaudit-uri' }, e.requestURI || '–') },
  agent: { id: 'userAgent', title: 'User agent', value: (e) => e.userAgent || '–' },
};

function eventTable(id, title, list, cols) {
  const rows = list.events.map((e, i) => ({ ...e, key: e.auditID || `#${i}` }));
  const shown = list.events.length < list.count ? ` — newest ${formatCount(list.events.length)} of ${formatCount(list.count)}` : '';
  const t = table(id, `${title} (${formatCount(list.count)})${shown}`, cols.map((c) => EVENT_COLUMNS[c]), rows);
  t.setAttribute('data-count', list.count);
  return h('div', { class: 'kaudit-scroll' }, t);
}

function filterSummary(r) {
  const f = r.filter;
  const parts = [];
  if (f.namespace.length) parts.push(`namespace ${f.namespace.map((n) => label('namespace', n)).join(', ')}`);
  if (f.account.length) parts.push(`account ${f.account.join(', ')}`);
  if (f.code.length) parts.push(`status ${f.code.join(', ')}`);
  if (f.query) parts.push(`query “${f.query}”`);
  return parts.length ? parts.join(' · ') : 'no filters';
}

function header(r) {
  const { from, to } = r.range;
  const span = r.input.oldest && r.input.newest ? ` (${timeRange(r.input.oldest)} to ${timeRange(r.input.newest)})` : '';
  const range = from && to ? `${timeRange(from)} to ${timeRange(to)}` : from ? `since ${timeRange(from)}` : to ? `until ${timeRange(to)}` : `Everything read${span}`;
  // How much of the input the range covers, so a narrow range is never mistaken for the whole file.
  const inRange = h('span', { 'data-metric': 'range.events' }, formatCount(r.range.events));
  return h('p', { class: 'kaudit-range', 'data-metric': 'range' },
    `${range} · `, inRange, ` of ${formatCount(r.input.events)} events read in this range · ${filterSummary(r)}`,
    r.input.bad ? ` (${formatCount(r.input.bad)} bad records)` : '',
    r.input.detailsDropped ? ` · details of the ${formatCount(r.input.detailsDropped)} oldest events evicted` : '');
}

function overview(r) {
  const o = r.overview, imp = o.important;
  const stats = h('dl', { class: 'kaudit-stats' },
    stat('overview.total', 'Events', formatCount(o.total)),
    stat('overview.success', 'Succeeded', formatCount(o.success)),
    stat('overview.failure', 'Failed', formatCount(o.failure), o.failure ? 'kaudit-bad' : ''),
    stat('overview.successRate', 'Success rate', pct(o.successRate)),
    stat('overview.important.internetAccess.count', 'Connections from the Internet', formatCount(imp.internetAccess.count), imp.internetAccess.count ? 'kaudit-warn' : ''),
    stat('overview.important.commandExecution.count', 'Command execution', formatCount(imp.commandExecution.count), imp.commandExecution.count ? 'kaudit-warn' : ''),
    stat('overview.important.resourceDeletion.count', 'Resource deletion', formatCount(imp.resourceDeletion.count)),
    stat('overview.important.secretAccess.count', 'Secret access', formatCount(imp.secretAccess.count)));
  const chart = timeline('overview.timeline', 'Events over time', o.timeline, [
    { key: 'ok', name: 'events', cls: 'kaudit-bar', value: (b) => b.count - b.failed },
    { key: 'failed', name: 'failed', cls: 'kaudit-bar-fail', value: (b) => b.failed },
  ], r.range.step);
  const ipCols = [
    { id: 'scope', title: 'Scope', value: (e) => label('scope', e.scope) },
    { id: 'region', title: 'Region', value: (e) => label('region', e.region) },
    { id: 'failed', title: 'Failed', num: true, value: (e) => formatCount(e.failed) },
  ];
  return [
    stats,
    chart,
    section('Important events',
      eventTable('overview.important.internetAccess', 'Connections from the Internet', imp.internetAccess, ['time', 'account', 'ip', 'region', 'verb', 'resource', 'namespace', 'name', 'code']),
      eventTable('overview.important.commandExecution', 'Command execution', imp.commandExecution, ['time', 'account', 'namespace', 'name', 'container', 'command', 'ip', 'code']),
      eventTable('overview.important.resourceDeletion', 'Resource deletion', imp.resourceDeletion, ['time', 'account', 'resource', 'namespace', 'name', 'ip', 'code']),
      eventTable('overview.important.secretAccess', 'Secret access', imp.secretAccess, ['time', 'account', 'verb', 'namespace', 'name', 'ip', 'code'])),
    section('Distribution',
      h('div', { class: 'kaudit-grid' },
        distribution('overview.byNamespace', { title: 'Events by namespace', key: 'Namespace' }, 'namespace', o.byNamespace),
        distribution('overview.byAccount', { title: 'Events by account', key: 'Account' }, 'account', o.byAccount),
        distribution('overview.byStatusCode', { title: 'Events by status code', key: 'Status code' }, 'code', o.byStatusCode),
        distribution('overview.byRegion', { title: 'Events by source region', key: 'Region' }, 'region', o.byRegion),
        distribution('overview.byIpScope', { title: 'Events by source network', key: 'Network' }, 'scope', o.byIpScope)),
      distribution('overview.bySourceIp', { title: 'Events by source IP', key: 'Source IP' }, 'ip', o.bySourceIp, ipCols)),
  ];
}

function opsChart(id, title, resources) {
  const max = Math.max(1, ...resources.map((r) => r.ops.total));
  const rowH = 16;
  const capId = `kaudit-cap-${++uid}`;
  const svg = s('svg', { class: 'kaudit-ops-chart', viewBox: `0 0 300 ${resources.length * rowH}`, role: 'img', 'aria-labelledby': capId, 'data-chart': id });
  resources.forEach((r, i) => {
    let x = 135;
    const g = s('g', null, s('title', null, `${r.resourceType}: ${OPS.map((op) => `${formatCount(r.ops[op])} ${op}`).join(', ')}`));
    g.append(s('text', { class: 'kaudit-chart-label', x: 130, y: i * rowH + 11, 'text-anchor': 'end' }, r.resourceType));
    for (const op of OPS) {
      const w = (r.ops[op] / max) * 160;
      if (w > 0) g.append(s('rect', { class: `kaudit-op-${op}`, x, y: i * rowH + 2, width: Math.max(0.5, w), height: rowH - 4 }));
      x += w;
    }
    svg.append(g);
  });
  return h('figure', { class: 'kaudit-figure' }, h('figcaption', { id: capId }, title), svg);
}

const OP_COLUMNS = [
  ...OPS.map((op) => ({ id: op, title: op[0].toUpperCase() + op.slice(1), num: true, value: (r) => formatCount(r.ops[op]) })),
  { id: 'total', title: 'Total', num: true, value: (r) => formatCount(r.ops.total) },
];

function legendOps() {
  return h('ul', { class: 'kaudit-legend' }, OPS.map((op) => h('li', null, h('span', { class: `kaudit-swatch kaudit-op-${op}`, 'aria-hidden': 'true' }), op)));
}

function operations(r) {
  const t = r.operations.totals;
  const names = { compute: 'Compute resources', network: 'Network resources', storage: 'Storage resources', other: 'Other resources (RBAC, CRDs, ...)' };
  return [
    h('dl', { class: 'kaudit-stats' },
      stat('operations.totals.total', 'Operations on resources', formatCount(t.total)),
      ...OPS.map((op) => stat(`operations.totals.${op}`, op[0].toUpperCase() + op.slice(1), formatCount(t[op])))),
    legendOps(),
    r.operations.categories.map((c) => {
      const rows = c.resources.map((x) => ({ ...x, key: x.resourceType }));
      const foot = c.others.total > 0
        ? h('tr', { 'data-key': '(others)' }, h('th', { scope: 'row' }, 'Others'), OP_COLUMNS.map((col) => h('td', { class: 'kaudit-num', 'data-col': col.id }, col.value({ ops: c.others }))))
        : null;
      return section(names[c.category] || c.category,
        h('div', { class: 'kaudit-split' },
          table(`operations.${c.category}`, `Operations per resource type (${formatCount(c.totals.total)} in all)`,
            [{ id: 'resourceType', title: 'Resource type', value: (x) => x.resourceType }, ...OP_COLUMNS], rows,
            { foot, empty: 'No operations on these resource types.' }),
          rows.length ? opsChart(`operations.${c.category}.chart`, `Operations on ${c.category} resources`, c.resources) : null));
    }),
  ];
}

function details(r) {
  const d = r.details;
  if (!d.resourceType) {
    return [h('p', { class: 'kaudit-empty' }, 'No operations on resources in this range.')];
  }
  return [
    h('h3', { class: 'kaudit-resource', 'data-metric': 'details.resourceType' }, d.resourceType),
    h('dl', { class: 'kaudit-stats' },
      stat('details.ops.total', 'Operations', formatCount(d.ops.total)),
      ...OPS.map((op) => stat(`details.ops.${op}`, op[0].toUpperCase() + op.slice(1), formatCount(d.ops[op]))),
      stat('details.successRate', 'Success rate', pct(d.successRate)),
      stat('details.failure', 'Failed', formatCount(d.failure), d.failure ? 'kaudit-bad' : '')),
    timeline('details.timeline', `Operations on ${d.resourceType} over time`, d.timeline,
      OPS.map((op) => ({ key: op, name: op, cls: `kaudit-op-${op}`, value: (b) => b[op] })), r.range.step),
    h('div', { class: 'kaudit-grid' },
      distribution('details.byNamespace', { title: `${d.resourceType} operations by namespace`, key: 'Namespace' }, 'namespace', d.byNamespace),
      distribution('details.byAccount', { title: `${d.resourceType} operations by account`, key: 'Account' }, 'account', d.byAccount)),
    section('Operations, newest first',
      eventTable('details.events', `Operations on ${d.resourceType}`, d.events, ['time', 'verb', 'account', 'namespace', 'name', 'resource', 'code', 'ip', 'uri'])),
  ];
}

const PANELS = { overview, operations, details };

/**
 * Renders one tab of `report` into `element` (replacing its content).
 * Options: `tab` ('overview' | 'operations' | 'details'), `tabs` (false: no tab strip),
 * `onTab(tab)` (called when the user picks a tab; default: re-render here).
 */
export function renderReport(element, report, options = {}) {
  // Own keys only: a tab name from the URL (`#__proto__`) must not pick an inherited property.
  const tab = Object.hasOwn(PANELS, options.tab ?? '') ? options.tab : 'overview';
  const onTab = options.onTab || ((t) => renderReport(element, report, { ...options, tab: t }));
  const root = h('div', { class: 'kaudit-report', 'data-tab': tab });
  root.append(header(report));
  const panelId = `kaudit-panel-${++uid}`;
  if (options.tabs !== false) {
    const strip = h('div', { class: 'kaudit-tabs', role: 'tablist', 'aria-label': 'Audit report' });
    TABS.forEach(([id, name], i) => {
      const selected = id === tab;
      strip.append(h('button', {
        type: 'button', role: 'tab', id: `${panelId}-${id}`, 'data-tab': id, 'aria-selected': selected ? 'true' : 'false',
        'aria-controls': panelId, tabindex: selected ? '0' : '-1', class: 'kaudit-tab',
        onclick: () => onTab(id),
        onkeydown: (ev) => {
          const step = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
          if (!step) return;
          ev.preventDefault();
          const next = TABS[(i + step + TABS.length) % TABS.length][0];
          onTab(next);
          element.querySelector(`[role=tab][data-tab="${next}"]`)?.focus();
        },
      }, name));
    });
    root.append(strip);
  }
  const panel = h('section', { class: 'kaudit-panel', role: options.tabs !== false ? 'tabpanel' : null, id: panelId,
    'aria-labelledby': options.tabs !== false ? `${panelId}-${tab}` : null, 'aria-label': options.tabs !== false ? null : TABS.find((t) => t[0] === tab)[1] });
  append(panel, [PANELS[tab](report)]);
  root.append(panel);
  element.replaceChildren(root);
  return root;
}
