// The npm package's API in Node, checked against the native CLI on the same input: reports
// byte-identical to `kaudit report --json`, alerts identical to `kaudit run`, decisions
// identical to `kaudit explain`, and chunked input identical to whole input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SAMPLE, checkPackageBuilt, cliReportJson, kaudit, sameText } from './helpers.mjs';

checkPackageBuilt();
const { Engine, renderReport, TABS } = await import('../node.js');

const sampleText = readFileSync(SAMPLE, 'utf8');
const FILTERS = [
  {},
  { last: 'all' },
  { last: 'all', namespace: 'default', code: [403] },
  { last: 'all', user: 'minikube-user', resourceType: 'ConfigMaps', limit: 3, top: 2 },
  { from: '2018-10-26T13:00:00Z', to: '2018-10-26T14:00:00.5Z' },
  { last: '24h', to: '2018-10-26T23:59:59Z', namespace: [''] },
  { last: 'all', query: 'verb: create and not objectRef.namespace: default' },
  { last: 'all', query: 'kaudit.operation: delete or kaudit.tags: command-execution' },
];

test('exports', () => {
  assert.equal(typeof Engine, 'function');
  assert.equal(typeof renderReport, 'function');
  assert.deepEqual(TABS.map((t) => t[0]), ['overview', 'operations', 'details']);
  assert.match(Engine.version(), /^\d+\.\d+\.\d+/);
});

test('reports are byte-identical to kaudit report --json', () => {
  const engine = new Engine();
  const counts = engine.push(sampleText);
  assert.equal(counts.events, 88);
  assert.equal(counts.bad, 0);
  assert.equal(counts.pendingBytes, 0);
  for (const filter of FILTERS) {
    const want = cliReportJson([SAMPLE], filter);
    sameText(engine.reportJson(filter), want, JSON.stringify(filter));
    assert.deepEqual(engine.report(filter), JSON.parse(want), JSON.stringify(filter));
  }
  // Some filters must actually select something, or the comparison proves little.
  assert.ok(engine.report(FILTERS[2]).overview.total > 0);
  assert.ok(engine.report(FILTERS[6]).overview.total > 0);
  assert.equal(engine.report(FILTERS[3]).details.resourceType, 'configmaps');
});

test('bytes, chunks and pretty-printed EventLists give the same report', () => {
  const events = sampleText.trim().split('\n').map((l) => JSON.parse(l));
  // Half as a pretty-printed EventList, the rest as pretty-printed single events, plus junk.
  const pretty = `${JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: events.slice(0, 40) }, null, 2)}\n`
    + events.slice(40).map((e) => JSON.stringify(e, null, 2)).join('\n') + '\nnot an event\n{"kind":"Event"}\n';
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-js-'));
  const file = join(dir, 'pretty.log');
  writeFileSync(file, pretty);
  const want = cliReportJson([file], { last: 'all' });
  const bytes = new TextEncoder().encode(pretty);
  for (const size of [1, 7, 100, 4096, bytes.length]) {
    const engine = new Engine();
    for (let i = 0; i < bytes.length; i += size) engine.pushChunk(bytes.subarray(i, i + size));
    const counts = engine.finish();
    assert.equal(counts.events, 88, `chunk size ${size}`);
    assert.equal(counts.bad, 2, `chunk size ${size}`);
    sameText(engine.reportJson({ last: 'all' }), want, `chunk size ${size}`);
  }
  const whole = new Engine();
  whole.push(bytes.buffer);
  sameText(whole.reportJson({ last: 'all' }), want, 'whole ArrayBuffer');
});

test('alerts and explain equal the CLI', () => {
  const engine = new Engine();
  const counts = engine.push(new TextEncoder().encode(sampleText));
  const cliAlerts = kaudit(['run', '--no-events', '--alerts', 'stdout', SAMPLE]).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(counts.alerts, cliAlerts.length);
  assert.ok(cliAlerts.length > 0);
  assert.deepEqual(engine.alerts(), cliAlerts);
  assert.deepEqual(engine.alerts(), []);
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-metrics-'));
  kaudit(['run', '--no-events', '--alerts', '/dev/null', '--metrics', join(dir, 'm.json'), SAMPLE]);
  const cliMetrics = JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8'));
  assert.ok(cliMetrics.read > 0 && cliMetrics.alerts.alerts === cliAlerts.length);
  assert.deepEqual(engine.metrics(), cliMetrics);
  const cliExplain = kaudit(['explain', SAMPLE]).trim().split('\n').map((l) => JSON.parse(l));
  const lines = sampleText.trim().split('\n');
  lines.forEach((line, i) => assert.deepEqual(engine.explain(line), cliExplain[i]));
  assert.throws(() => engine.explain('{"kind": 0}'), /kind/);
});

test('config, options and errors', () => {
  assert.throws(() => new Engine('enrichment:\n  bogus: 1\n'), /config\.yaml:2:\d+/);
  const engine = new Engine('enrichment:\n  key: extra\n', { rawBytes: 1 << 20 });
  engine.push(sampleText);
  const r = engine.report({ last: 'all', query: 'extra.operation: delete' });
  assert.equal(r.overview.total, r.overview.important.resourceDeletion.count);
  assert.ok(r.overview.total > 0);
  assert.throws(() => engine.report({ query: 'verb: (' }), /query: column/);
  assert.throws(() => engine.report({ from: 'yesterday' }), /from: not an RFC 3339 time/);
  assert.throws(() => engine.report({ nonsense: 1 }), /unknown field/);
  assert.throws(() => engine.push(42), /expected a string/);
  // Without raw text an ad-hoc query is refused; a standing query works and equals the CLI.
  const lean = new Engine(null, { rawBytes: 0, standingQueries: ['verb: create'] });
  lean.push(sampleText);
  assert.throws(() => lean.report({ query: 'verb: get' }), /raw text/);
  sameText(lean.reportJson({ last: 'all', query: 'verb: create' }), cliReportJson([SAMPLE], { last: 'all', query: 'verb: create' }), 'standing query');
  assert.ok(lean.memoryBytes() > 0);
});

test('EKS, GKE and AKS exports as delivered give the report kaudit report gives', () => {
  const managed = (p) => join(SAMPLE, '..', 'managed', p);
  const files = [
    managed('eks/cloudwatch-synth/firehose-s3-object.no-decompression.gz'),
    managed('aks/eventhub-synth/eventhub-message-1.json'),
    managed('gke/pubsub-synth/push-request-body.json'),
  ];
  for (const file of files) {
    const want = cliReportJson([file], { last: 'all' });
    const bytes = readFileSync(file);
    for (const size of [1, 100, bytes.length]) {
      const engine = new Engine();
      for (let i = 0; i < bytes.length; i += size) engine.pushChunk(bytes.subarray(i, i + size));
      const counts = engine.finish();
      assert.ok(counts.events > 0, `${file}: events`);
      assert.equal(counts.bad, 0, `${file}: bad`);
      sameText(engine.reportJson({ last: 'all' }), want, `${file}, chunk size ${size}`);
    }
  }
  // The gzip object holds the 12 events of a Firehose delivery.
  const engine = new Engine();
  assert.equal(engine.push(readFileSync(files[0])).events, 12);
});
