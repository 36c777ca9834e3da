//! One report from the stored rows: resolve the filter (time window, value sets, query), then
//! one pass over the rows for the Overview and Operations Overview tabs and a second pass over
//! the matching rows for the Operation Details of one resource type.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use serde_json::Value as Json;

use super::builder::{
    ReportBuilder, Row, Sym, F_DELETE, F_EXEC, F_INTERNET, F_SECRET, F_SUCCESS, F_SUCCESS_KNOWN, OPS, SCOPES, UNTIMED,
};
use super::filter::{Filter, ReportError};
use super::model::*;
use super::SCHEMA;
use crate::enrich::resource;
use crate::enrich::{TAG_DELETE, TAG_EXEC, TAG_INTERNET, TAG_SECRET};
use crate::event::doc::EventDoc;
use crate::event::time::format_micros;
use crate::event::{Event, STAGES};
use crate::query::Query;

/// Timeline bucket lengths (seconds, label); the smallest giving at most [`MAX_BUCKETS`] wins.
const STEPS: [(i64, &str); 16] = [
    (1, "1s"),
    (5, "5s"),
    (10, "10s"),
    (30, "30s"),
    (60, "1m"),
    (300, "5m"),
    (600, "10m"),
    (1800, "30m"),
    (3600, "1h"),
    (10_800, "3h"),
    (21_600, "6h"),
    (43_200, "12h"),
    (86_400, "1d"),
    (604_800, "7d"),
    (2_592_000, "30d"),
    (31_536_000, "365d"),
];
const MAX_BUCKETS: i64 = 200;

/// The console's resource types per category, in its order.
const CATEGORIES: [(&str, &[&str]); 3] = [
    ("compute", &["deployments", "statefulsets", "cronjobs", "daemonsets", "jobs", "pods"]),
    ("network", &["services", "ingresses"]),
    ("storage", &["configmaps", "secrets", "persistentvolumeclaims"]),
];

/// The resolved time window and timeline layout.
struct Window {
    from: Option<i64>,
    to: Option<i64>,
    include_untimed: bool,
    /// Bucket length and first bucket start (µs), bucket count.
    step: i64,
    step_label: String,
    start: i64,
    buckets: usize,
}

impl Window {
    fn resolve(b: &ReportBuilder, f: &Filter) -> Result<Window, ReportError> {
        let (from_f, to_f, last) = (f.time("from")?, f.time("to")?, f.last_micros()?);
        let to = to_f.or(if last.is_some() || from_f.is_some() { b.newest } else { None });
        let from = from_f.or_else(|| Some(to?.saturating_sub(last?)));
        if let (Some(a), Some(z)) = (from, to) {
            if a > z {
                return Err(ReportError {
                    field: "from",
                    message: format!("{} is after to {}", format_micros(a), format_micros(z)),
                });
            }
        }
        let include_untimed = from.is_none() && to.is_none();
        let mut w =
            Window { from, to, include_untimed, step: 3_600_000_000, step_label: "1h".into(), start: 0, buckets: 0 };
        // The timeline spans the window, or the data where the window is open.
        let lo = from.or(b.oldest);
        let hi = to.or(b.newest);
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo <= hi {
                let span = (hi - lo) / 1_000_000 + 1;
                let (secs, label) = STEPS
                    .iter()
                    .find(|(s, _)| span / s < MAX_BUCKETS)
                    .map(|(s, l)| (*s, l.to_string()))
                    .unwrap_or_else(|| {
                        let s = span / (MAX_BUCKETS - 1) + 1;
                        (s, format!("{s}s"))
                    });
                w.step = secs * 1_000_000;
                w.step_label = label;
                // Weeks start on Monday 00:00 UTC (the epoch was a Thursday); the rest at multiples of the step.
                let offset = if secs == 604_800 { 4 * 86_400 * 1_000_000 } else { 0 };
                w.start = (lo - offset).div_euclid(w.step) * w.step + offset;
                w.buckets = ((hi - w.start) / w.step + 1) as usize;
            }
        }
        Ok(w)
    }

    fn contains(&self, t: i64) -> bool {
        if t == UNTIMED {
            return self.include_untimed;
        }
        self.from.is_none_or(|a| t >= a) && self.to.is_none_or(|z| t <= z)
    }

    fn bucket(&self, t: i64) -> Option<usize> {
        if t == UNTIMED || t < self.start {
            return None;
        }
        let i = ((t - self.start) / self.step) as usize;
        (i < self.buckets).then_some(i)
    }

    fn bucket_start(&self, i: usize) -> String {
        format_micros(self.start + i as i64 * self.step)
    }
}

enum QueryMode {
    All,
    Bit(u32),
    Raw(Query),
}

/// The non-time filters, resolved to interned symbols.
struct Matcher {
    namespaces: Option<HashSet<Sym>>,
    accounts: Option<HashSet<Sym>>,
    codes: Option<Vec<i64>>,
    query: QueryMode,
}

impl Matcher {
    fn new(b: &ReportBuilder, f: &Filter) -> Result<Matcher, ReportError> {
        let set = |values: &[String]| -> Option<HashSet<Sym>> {
            (!values.is_empty()).then(|| values.iter().filter_map(|v| b.strings.lookup(v)).collect())
        };
        let query = match f.query_text() {
            None => QueryMode::All,
            Some(text) => match b.standing.iter().position(|q| q.source().trim() == text) {
                Some(i) => QueryMode::Bit(1 << i),
                None => QueryMode::Raw(Query::parse(text).map_err(|e| ReportError {
                    field: "query",
                    message: format!("column {}: {}", e.column, e.message),
                })?),
            },
        };
        Ok(Matcher {
            namespaces: set(&f.namespace),
            accounts: set(&f.account),
            codes: (!f.code.is_empty()).then(|| f.code.clone()),
            query,
        })
    }

    fn matches(&self, b: &ReportBuilder, i: usize, row: &Row) -> Result<bool, ReportError> {
        if self.namespaces.as_ref().is_some_and(|s| !s.contains(&row.namespace))
            || self.accounts.as_ref().is_some_and(|s| !s.contains(&row.account))
            || self.codes.as_ref().is_some_and(|c| !c.contains(&i64::from(row.code)))
        {
            return Ok(false);
        }
        match &self.query {
            QueryMode::All => Ok(true),
            QueryMode::Bit(bit) => Ok(row.queries & bit != 0),
            QueryMode::Raw(q) => {
                let mut cache = b.query_cache.borrow_mut();
                let (text, state) = &mut *cache;
                if text.as_str() != q.source() {
                    text.clear();
                    text.push_str(q.source());
                    state.clear();
                }
                if state.len() < b.rows.len() {
                    state.resize(b.rows.len(), 0);
                }
                match state[i] {
                    1 => return Ok(false),
                    2 => return Ok(true),
                    _ => {}
                }
                let Some((raw, enrichment)) = b.raw_of(i) else {
                    return Err(ReportError {
                        field: "query",
                        message: format!(
                            "the raw text of events in this range was not kept ({} of {} events kept, budget {} bytes): \
                             register the query before pushing (a standing query) or raise the raw budget",
                            b.raw_kept(),
                            b.rows.len(),
                            b.options.raw_bytes
                        ),
                    });
                };
                let matched = match Event::parse(raw) {
                    Ok(event) => {
                        let extra: Option<Json> = serde_json::from_str(enrichment).ok();
                        q.matches(&EventDoc::new(&event, &b.options.enrichment_key, extra.as_ref()))
                    }
                    Err(_) => false,
                };
                state[i] = if matched { 2 } else { 1 };
                Ok(matched)
            }
        }
    }
}

/// The newest `limit` rows by (time, push order).
struct Newest {
    limit: usize,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
}

impl Newest {
    fn new(limit: usize) -> Self {
        Newest { limit, heap: BinaryHeap::new() }
    }
    fn push(&mut self, time: i64, i: usize) {
        if self.limit == 0 {
            return;
        }
        self.heap.push(Reverse((time, i)));
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }
    /// Row indices, newest first.
    fn into_desc(self) -> Vec<usize> {
        let mut v: Vec<(i64, usize)> = self.heap.into_iter().map(|Reverse(x)| x).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.into_iter().map(|(_, i)| i).collect()
    }
}

#[derive(Default)]
struct IpStat {
    count: u64,
    failed: u64,
    scope: u8,
    region: Sym,
}

fn failed(row: &Row) -> bool {
    row.flags & F_SUCCESS_KNOWN != 0 && row.flags & F_SUCCESS == 0
}

/// Success in percent, one decimal, rounded half up, except that a rate is never shown as 100%
/// while anything failed nor as 0% while anything succeeded (99.98% reads 99.9, not 100).
fn rate(success: u64, failure: u64) -> Option<f64> {
    let n = success + failure;
    let permille = (success * 1000 + n / 2).checked_div(n)?;
    let permille = match permille {
        1000 if failure > 0 => 999,
        0 if success > 0 => 1,
        p => p,
    };
    Some(permille as f64 / 10.0)
}

fn op_counts(c: &[u64; 5]) -> OpCounts {
    OpCounts { total: c.iter().sum(), create: c[1], update: c[2], delete: c[3], access: c[4] }
}

fn add(into: &mut OpCounts, c: &OpCounts) {
    into.total += c.total;
    into.create += c.create;
    into.update += c.update;
    into.delete += c.delete;
    into.access += c.access;
}

impl ReportBuilder {
    /// The report for `filter` over every event pushed so far.
    pub fn report(&self, filter: &Filter) -> Result<Report, ReportError> {
        let w = Window::resolve(self, filter)?;
        let m = Matcher::new(self, filter)?;
        let (limit, top) = (filter.limit(), filter.top());

        let mut matched: Vec<u32> = Vec::new();
        let (mut success, mut failure) = (0u64, 0u64);
        let mut timeline = vec![(0u64, 0u64); w.buckets];
        let mut important = [Newest::new(limit), Newest::new(limit), Newest::new(limit), Newest::new(limit)];
        let mut important_counts = [0u64; 4];
        let (mut by_ns, mut by_account, mut by_region) = (HashMap::new(), HashMap::new(), HashMap::new());
        let mut by_code: HashMap<u16, u64> = HashMap::new();
        let mut by_ip: HashMap<Sym, IpStat> = HashMap::new();
        let mut by_scope = [0u64; 4];
        let mut ops: HashMap<Sym, [u64; 5]> = HashMap::new();

        let mut in_range = 0u64;
        for (i, row) in self.rows.iter().enumerate() {
            if !w.contains(row.time) {
                continue;
            }
            in_range += 1;
            if !m.matches(self, i, row)? {
                continue;
            }
            matched.push(i as u32);
            let bad = failed(row);
            if row.flags & F_SUCCESS_KNOWN != 0 {
                if bad {
                    failure += 1;
                } else {
                    success += 1;
                }
            }
            if let Some(bk) = w.bucket(row.time) {
                timeline[bk].0 += 1;
                timeline[bk].1 += u64::from(bad);
            }
            for (k, flag) in [F_INTERNET, F_EXEC, F_DELETE, F_SECRET].into_iter().enumerate() {
                if row.flags & flag != 0 {
                    important_counts[k] += 1;
                    important[k].push(row.time, i);
                }
            }
            *by_ns.entry(row.namespace).or_insert(0u64) += 1;
            *by_account.entry(row.account).or_insert(0u64) += 1;
            *by_region.entry(row.region).or_insert(0u64) += 1;
            *by_code.entry(row.code).or_insert(0) += 1;
            by_scope[row.scope as usize & 3] += 1;
            if row.source_ip != 0 {
                let s = by_ip.entry(row.source_ip).or_default();
                s.count += 1;
                s.failed += u64::from(bad);
                s.scope = row.scope;
                s.region = row.region;
            }
            if row.resource != 0 {
                ops.entry(row.resource).or_insert([0; 5])[row.op as usize % 5] += 1;
            }
        }

        let [internet, exec, delete, secret] = important;
        let list = |k: usize, n: Newest| EventList { count: important_counts[k], events: self.event_list(n) };
        let overview = Overview {
            total: matched.len() as u64,
            success,
            failure,
            success_rate: rate(success, failure),
            timeline: timeline
                .iter()
                .enumerate()
                .map(|(i, (count, failed))| Bucket { start: w.bucket_start(i), count: *count, failed: *failed })
                .collect(),
            important: Important {
                internet_access: list(0, internet),
                command_execution: list(1, exec),
                resource_deletion: list(2, delete),
                secret_access: list(3, secret),
            },
            by_namespace: self.distribution(&by_ns, top),
            by_account: self.distribution(&by_account, top),
            by_status_code: code_distribution(&by_code, top),
            by_source_ip: self.ip_distribution(&by_ip, top),
            by_region: self.distribution(&by_region, top),
            by_ip_scope: scope_distribution(&by_scope),
        };
        let operations = self.operations(&ops, top);
        let details = self.details(filter, &w, &matched, &ops, limit, top);
        Ok(Report {
            schema: SCHEMA,
            input: InputSummary {
                events: self.rows.len() as u64,
                bad: self.bad,
                untimed: self.untimed,
                oldest: self.oldest.map(format_micros),
                newest: self.newest.map(format_micros),
                details_dropped: self.details_dropped(),
            },
            range: TimeRange {
                from: w.from.map(format_micros),
                to: w.to.map(format_micros),
                events: in_range,
                step: w.step_label.clone(),
                step_seconds: w.step / 1_000_000,
            },
            filter: AppliedFilter {
                namespace: filter.namespace.clone(),
                account: filter.account.clone(),
                code: filter.code.clone(),
                query: filter.query_text().map(str::to_string),
                limit,
                top,
            },
            facets: self.facets(),
            overview,
            operations,
            details,
        })
    }

    fn facets(&self) -> Facets {
        let names = |set: &std::collections::BTreeSet<Sym>| {
            let mut v: Vec<String> = set.iter().map(|s| self.strings.get(*s).to_string()).collect();
            v.sort();
            v
        };
        Facets {
            namespaces: names(&self.facet_namespaces),
            accounts: names(&self.facet_accounts),
            codes: self.facet_codes.iter().map(|c| i64::from(*c)).collect(),
            resource_types: names(&self.facet_resources),
        }
    }

    fn distribution(&self, counts: &HashMap<Sym, u64>, top: usize) -> Distribution {
        let mut v: Vec<(&str, u64)> = counts.iter().map(|(s, c)| (self.strings.get(*s), *c)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let others = v.iter().skip(top).map(|e| e.1).sum();
        Distribution {
            entries: v.into_iter().take(top).map(|(k, c)| Entry { key: k.to_string(), count: c }).collect(),
            others,
            distinct: counts.len() as u64,
        }
    }

    fn ip_distribution(&self, counts: &HashMap<Sym, IpStat>, top: usize) -> IpDistribution {
        let mut v: Vec<(&str, &IpStat)> = counts.iter().map(|(s, st)| (self.strings.get(*s), st)).collect();
        v.sort_unstable_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        let others = v.iter().skip(top).map(|e| e.1.count).sum();
        IpDistribution {
            entries: v
                .into_iter()
                .take(top)
                .map(|(k, st)| IpEntry {
                    key: k.to_string(),
                    count: st.count,
                    failed: st.failed,
                    scope: SCOPES[st.scope as usize & 3].to_string(),
                    region: self.strings.get(st.region).to_string(),
                })
                .collect(),
            others,
            distinct: counts.len() as u64,
        }
    }

    fn operations(&self, ops: &HashMap<Sym, [u64; 5]>, top: usize) -> Operations {
        let counts_of =
            |name: &str| self.strings.lookup(name).and_then(|s| ops.get(&s)).map(op_counts).unwrap_or_default();
        let mut totals = OpCounts::default();
        for c in ops.values() {
            add(&mut totals, &op_counts(c));
        }
        let mut categories = Vec::new();
        for (category, types) in CATEGORIES {
            let resources: Vec<ResourceOps> =
                types.iter().map(|t| ResourceOps { resource_type: t.to_string(), ops: counts_of(t) }).collect();
            let mut sum = OpCounts::default();
            for r in &resources {
                add(&mut sum, &r.ops);
            }
            categories.push(Category {
                category: category.into(),
                totals: sum,
                resources,
                others: OpCounts::default(),
            });
        }
        let mut other: Vec<ResourceOps> = ops
            .iter()
            .map(|(s, c)| (self.strings.get(*s), c))
            .filter(|(name, _)| resource::category(name) == "other")
            .map(|(name, c)| ResourceOps { resource_type: name.to_string(), ops: op_counts(c) })
            .collect();
        other
            .sort_unstable_by(|a, b| b.ops.total.cmp(&a.ops.total).then_with(|| a.resource_type.cmp(&b.resource_type)));
        let (mut sum, mut others) = (OpCounts::default(), OpCounts::default());
        for (i, r) in other.iter().enumerate() {
            add(&mut sum, &r.ops);
            if i >= top {
                add(&mut others, &r.ops);
            }
        }
        other.truncate(top);
        categories.push(Category { category: "other".into(), totals: sum, resources: other, others });
        Operations { totals, categories }
    }

    fn details(
        &self,
        f: &Filter,
        w: &Window,
        matched: &[u32],
        ops: &HashMap<Sym, [u64; 5]>,
        limit: usize,
        top: usize,
    ) -> Details {
        let requested = f.resource_type.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let (name, targets): (Option<String>, HashSet<Sym>) = match requested {
            Some(want) => {
                let mut hits: Vec<Sym> =
                    ops.keys().copied().filter(|s| self.strings.get(*s).eq_ignore_ascii_case(want)).collect();
                hits.sort_unstable_by_key(|s| self.strings.get(*s));
                let name = hits.first().map_or(want, |s| self.strings.get(*s)).to_string();
                (Some(name), hits.into_iter().collect())
            }
            None => {
                let best = ops
                    .iter()
                    .map(|(s, c)| (c.iter().sum::<u64>(), self.strings.get(*s), *s))
                    .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
                match best {
                    Some((_, name, sym)) => (Some(name.to_string()), HashSet::from([sym])),
                    None => (None, HashSet::new()),
                }
            }
        };
        let mut counts = [0u64; 5];
        let (mut success, mut failure) = (0, 0);
        let (mut by_ns, mut by_account) = (HashMap::new(), HashMap::new());
        let mut timeline = vec![[0u64; 5]; w.buckets];
        let mut newest = Newest::new(limit);
        for &i in matched {
            let i = i as usize;
            let Some(row) = self.rows.get(i) else { continue };
            if !targets.contains(&row.resource) {
                continue;
            }
            let op = row.op as usize % 5;
            counts[op] += 1;
            if row.flags & F_SUCCESS_KNOWN != 0 {
                if failed(row) {
                    failure += 1;
                } else {
                    success += 1;
                }
            }
            *by_ns.entry(row.namespace).or_insert(0u64) += 1;
            *by_account.entry(row.account).or_insert(0u64) += 1;
            if let Some(bk) = w.bucket(row.time) {
                timeline[bk][op] += 1;
            }
            newest.push(row.time, i);
        }
        let ops = op_counts(&counts);
        Details {
            resource_type: name,
            events: EventList { count: ops.total, events: self.event_list(newest) },
            ops,
            success,
            failure,
            success_rate: rate(success, failure),
            by_namespace: self.distribution(&by_ns, top),
            by_account: self.distribution(&by_account, top),
            timeline: timeline
                .iter()
                .enumerate()
                .map(|(i, c)| OpBucket {
                    start: w.bucket_start(i),
                    create: c[1],
                    update: c[2],
                    delete: c[3],
                    access: c[4],
                })
                .collect(),
        }
    }

    fn event_list(&self, newest: Newest) -> Vec<EventDetail> {
        newest.into_desc().into_iter().map(|i| self.event_detail(i)).collect()
    }

    fn event_detail(&self, i: usize) -> EventDetail {
        let Some(r) = self.rows.get(i) else { return EventDetail::default() };
        let s = |sym: Sym| self.strings.get(sym).to_string();
        let mut tags = Vec::new();
        for (flag, tag) in
            [(F_INTERNET, TAG_INTERNET), (F_EXEC, TAG_EXEC), (F_DELETE, TAG_DELETE), (F_SECRET, TAG_SECRET)]
        {
            if r.flags & flag != 0 {
                tags.push(tag);
            }
        }
        let mut d = EventDetail {
            time: (r.time != UNTIMED).then(|| format_micros(r.time)),
            stage: r.stage.checked_sub(1).and_then(|s| STAGES.get(s as usize)).map_or(String::new(), |s| s.to_string()),
            verb: s(r.verb),
            operation: OPS[r.op as usize % 5].to_string(),
            user: s(r.user),
            account: s(r.account),
            namespace: s(r.namespace),
            resource_type: s(r.resource),
            subresource: s(r.subresource),
            code: (r.code != 0).then_some(i64::from(r.code)),
            success: (r.flags & F_SUCCESS_KNOWN != 0).then_some(r.flags & F_SUCCESS != 0),
            source_ip: s(r.source_ip),
            ip_scope: SCOPES[r.scope as usize & 3].to_string(),
            region: s(r.region),
            user_agent: s(r.user_agent),
            tags,
            ..EventDetail::default()
        };
        match self.details_of(i) {
            Some([audit_id, name, uri, command, container]) => {
                d.audit_id = audit_id.to_string();
                d.name = name.to_string();
                d.request_uri = uri.to_string();
                d.command = command.to_string();
                d.container = container.to_string();
            }
            None => d.details_dropped = true,
        }
        d
    }
}

fn code_distribution(counts: &HashMap<u16, u64>, top: usize) -> Distribution {
    let mut v: Vec<(u16, u64)> = counts.iter().map(|(k, c)| (*k, *c)).collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let others = v.iter().skip(top).map(|e| e.1).sum();
    Distribution {
        entries: v
            .into_iter()
            .take(top)
            .map(|(k, c)| Entry { key: if k == 0 { String::new() } else { k.to_string() }, count: c })
            .collect(),
        others,
        distinct: counts.len() as u64,
    }
}

fn scope_distribution(counts: &[u64; 4]) -> Distribution {
    let mut v: Vec<(&str, u64)> = SCOPES.iter().zip(counts).filter(|(_, c)| **c > 0).map(|(s, c)| (*s, *c)).collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    Distribution {
        distinct: v.len() as u64,
        entries: v.into_iter().map(|(k, c)| Entry { key: k.to_string(), count: c }).collect(),
        others: 0,
    }
}

#[cfg(test)]
mod rate_tests {
    use super::rate;

    #[test]
    fn rates_round_to_one_decimal_but_never_hide_a_failure_or_a_success() {
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(5, 0), Some(100.0));
        assert_eq!(rate(0, 5), Some(0.0));
        assert_eq!(rate(2, 1), Some(66.7));
        assert_eq!(rate(1, 2), Some(33.3));
        assert_eq!(rate(4999, 1), Some(99.9), "99.98% is not 100%");
        assert_eq!(rate(1, 4999), Some(0.1), "0.02% is not 0%");
    }
}
