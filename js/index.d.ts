// Types of the kaudit npm package. The report layout is documented in docs/REPORTS.md
// (schema "kaudit.report/v1"); these interfaces mirror it.

export { renderReport, formatCount, TABS, Tab, RenderOptions } from './render/render.js';

export interface EngineOptions {
  /** Bytes of raw event text kept so any `filter.query` can run later (default 256 MiB; 0: none). */
  rawBytes?: number;
  /** Bytes of per-event detail strings kept; the oldest are evicted first (default 64 MiB). */
  detailBytes?: number;
  /** Queries evaluated while pushing; usable as `filter.query` at no cost and without raw text. */
  standingQueries?: string[];
}

export interface Counts {
  /** Audit events in the report. */
  events: number;
  /** Records that are not audit events. */
  bad: number;
  /** Events the config's policy keeps / drops (what `kaudit run` would write). */
  kept: number;
  dropped: number;
  /** Alerts waiting to be taken with `alerts()`. */
  alerts: number;
  bytes: number;
  /** Bytes of an unfinished record waiting for the next chunk. */
  pendingBytes: number;
  /** Records skipped because processing them hit an internal error (the call that met them threw). */
  internalErrors: number;
  /** Oldest and newest event time read (RFC 3339), null before the first timed event. */
  oldest: string | null;
  newest: string | null;
}

export interface Filter {
  /** RFC 3339, inclusive. */
  from?: string;
  /** RFC 3339, inclusive; with `last` or `from`, default: the newest event time in the data. */
  to?: string;
  /** Range length when `from` is absent: '15m', '24h', '7d', '2w', or 'all' (default: everything read).
   * Live data, the console's "last week up to now": `{ last: '7d', to: new Date().toISOString() }`. */
  last?: string;
  /** Namespaces ('' = cluster-scoped). */
  namespace?: string | string[];
  /** Acting accounts (alias: user). */
  account?: string | string[];
  user?: string | string[];
  /** Status codes (0 = none). */
  code?: number | string | Array<number | string>;
  /** Search-language query (docs/QUERY.md). */
  query?: string;
  /** Resource type for Operation Details (plural, any case, CRDs too). */
  resourceType?: string;
  /** Events per list (default 100). */
  limit?: number;
  /** Entries per distribution (default 20). */
  top?: number;
}

export interface Entry { key: string; count: number }
export interface Distribution { entries: Entry[]; others: number; distinct: number }
export interface IpEntry extends Entry { failed: number; scope: string; region: string }
export interface IpDistribution { entries: IpEntry[]; others: number; distinct: number }
export interface OpCounts { total: number; create: number; update: number; delete: number; access: number }

export interface EventDetail {
  time?: string;
  auditID?: string;
  stage?: string;
  verb?: string;
  operation?: string;
  user?: string;
  account?: string;
  namespace?: string;
  resourceType?: string;
  subresource?: string;
  name?: string;
  code?: number;
  success?: boolean;
  sourceIP?: string;
  ipScope?: string;
  region?: string;
  userAgent?: string;
  requestURI?: string;
  command?: string;
  container?: string;
  tags?: string[];
  detailsDropped?: boolean;
}

export interface EventList { count: number; events: EventDetail[] }

export interface Report {
  schema: 'kaudit.report/v1';
  input: {
    events: number; bad: number; untimed: number; oldest: string | null; newest: string | null;
    detailsDropped: number;
  };
  range: { from: string | null; to: string | null; events: number; step: string; stepSeconds: number };
  filter: { namespace: string[]; account: string[]; code: number[]; query: string | null; limit: number; top: number };
  facets: { namespaces: string[]; accounts: string[]; codes: number[]; resourceTypes: string[] };
  overview: {
    total: number; success: number; failure: number; successRate: number | null;
    timeline: Array<{ start: string; count: number; failed: number }>;
    important: { internetAccess: EventList; commandExecution: EventList; resourceDeletion: EventList; secretAccess: EventList };
    byNamespace: Distribution; byAccount: Distribution; byStatusCode: Distribution;
    bySourceIp: IpDistribution; byRegion: Distribution; byIpScope: Distribution;
  };
  operations: {
    totals: OpCounts;
    categories: Array<{ category: string; totals: OpCounts; resources: Array<{ resourceType: string; ops: OpCounts }>; others: OpCounts }>;
  };
  details: {
    resourceType: string | null; ops: OpCounts; success: number; failure: number; successRate: number | null;
    byNamespace: Distribution; byAccount: Distribution;
    timeline: Array<{ start: string; create: number; update: number; delete: number; access: number }>;
    events: EventList;
  };
}

export interface Explanation {
  auditID: string; stage: string; level: string; omitStages: string[]; omitManagedFields: boolean; rule: number | null;
}

/** The kaudit engine: one config, one report store, one alert stream. */
export class Engine {
  /** The embedded default config when `configYaml` is absent. Throws on a bad config. */
  constructor(configYaml?: string | null, options?: EngineOptions);
  /** Config warnings. */
  readonly warnings: string[];
  /** Adds complete input: JSON lines, an EventList, a JSON array or pretty-printed events. */
  push(input: string | Uint8Array | ArrayBuffer): Counts;
  /** Adds one chunk of a larger input; call finish() after the last one. */
  pushChunk(input: string | Uint8Array | ArrayBuffer): Counts;
  finish(): Counts;
  counts(): Counts;
  /** Every pipeline counter and the alert engine's statistics, as `kaudit run --metrics` writes them. */
  metrics(): Record<string, number | Record<string, number>>;
  /** The report for `filter`. Throws on a bad filter or query. */
  report(filter?: Filter): Report;
  /** The report as JSON text, byte-identical to `kaudit report --json`. */
  reportJson(filter?: Filter): string;
  /** Alerts raised since the last call. */
  alerts(): Array<Record<string, unknown>>;
  /** The policy decision for one event. */
  explain(event: string | Uint8Array): Explanation;
  /** Approximate bytes held by the report store. */
  memoryBytes(): number;
  static version(): string;
  /** Frees the WebAssembly memory of this engine. */
  free(): void;
}
