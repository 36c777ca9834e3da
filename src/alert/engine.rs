//! Evaluates compiled rules on kept events, in event time, with bounded per-group state.
//!
//! Per event and rule: the query (compiled once) is matched against the lazily decoded event;
//! a non-matching event costs no allocation. A match either raises an alert at once (plain
//! rules), or updates the group's window and evaluates the condition (aggregated rules).
//! Semantics (windows, throttling, late events) are documented in docs/ALERTS.md.

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::event::Event;
use crate::query::{Document, FieldPath, Gate, KnownPath, Value, GATED};

use super::config::{AlertConfig, AlertLimits, Role};
use super::merge::{MergeStats, Merger};
use super::output::{value_text, write_alert, AggregateOutput, AlertTemplate};
use super::partial::{self, Agent, AgentStats, Partial, PartialError, Scalar, StepDoc};
use super::rule::{AggFn, Rule};
use super::state::{AggState, DistinctAdd, GroupState, GroupStore, BUCKETS};
use super::steps::{self, StepReader, StepWriter, StepsError};

/// Running totals of the alert engine (for every host's metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertStats {
    /// Events the rules were evaluated on.
    pub events: u64,
    /// Rule matches (query and checks held).
    pub matches: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Alerts not raised because of `throttle` (or because the condition was already firing).
    pub suppressed: u64,
    /// Groups currently held, over all rules.
    pub groups: u64,
    /// Groups dropped while still live because a rule reached `maxGroups`.
    pub groups_evicted: u64,
    /// Events older than their group's window (ignored by the aggregation).
    pub late_events: u64,
    /// Distinct values not tracked because a set reached `maxDistinct`.
    pub distinct_overflow: u64,
}

impl AlertStats {
    /// Stable camelCase JSON keys, in field order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One rule and its runtime state.
#[derive(Debug)]
struct RuleRt {
    rule: Arc<Rule>,
    groups: GroupStore,
    /// The paths a step of this rule keeps (two-phase roles and alert steps).
    paths: Vec<FieldPath>,
    /// The text every alert of the rule shares.
    template: AlertTemplate,
    /// Reused buffers: the group key, a value's text, aggregate values.
    key: String,
    text: String,
    values: Vec<f64>,
    /// An earlier rule (among the first 64) with the same query, whose answer this one takes.
    same_query_as: Option<usize>,
}

/// Evaluates the rules on kept events, in event time.
#[derive(Debug, Default)]
pub struct AlertEngine {
    rules: Vec<RuleRt>,
    limits: AlertLimits,
    /// Latest event time seen (microseconds); the time of events that carry none.
    watermark: i64,
    stats: AlertStats,
    /// `responseStatus.code`, read by the failure count.
    code_path: Option<FieldPath>,
    /// Agent role: steps of stateful rules go into partial records.
    agent: Option<Agent>,
    /// Aggregator role: partials from agents.
    merger: Option<Merger>,
    /// Partial and watermark records not yet taken by the host.
    partials_out: Vec<String>,
    /// A worker of a central consumer: kept events become steps instead of alerts.
    steps: Option<StepWriter>,
    /// What a steps buffer must have been written for (`steps::fingerprint`).
    fingerprint: u64,
    /// The rules' queries' first look (a rule it rules out does not match).
    gate: Gate,
}

impl AlertEngine {
    /// An engine for the config's rules (none when `enabled` is false).
    pub fn new(config: &AlertConfig) -> Self {
        let code_path = FieldPath::from_segments(["responseStatus", "code"]);
        let rules: Vec<RuleRt> = if config.enabled {
            config
                .rules
                .iter()
                .map(|r| RuleRt {
                    rule: r.clone(),
                    groups: GroupStore::new(config.limits.max_groups),
                    paths: partial::step_paths(r, code_path.as_ref()),
                    template: AlertTemplate::new(r),
                    key: String::new(),
                    text: String::new(),
                    values: Vec::new(),
                    same_query_as: None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut rules = rules;
        for i in 1..rules.len() {
            let (earlier, rest) = rules.split_at_mut(i);
            rest[0].same_query_as = earlier.iter().take(64).position(|e| e.rule.query.same_tree(&rest[0].rule.query));
        }
        let queries: Vec<&crate::query::Query> = rules.iter().map(|r| &r.rule.query).collect();
        let gate = Gate::new(&queries, &usual_values);
        let retention = rules.iter().map(|r| r.rule.retention()).max().unwrap_or(0);
        let cfg = &config.aggregation;
        let fingerprint = steps::fingerprint(rules.iter().map(|r| (&*r.rule, r.paths.as_slice())));
        AlertEngine {
            agent: (config.role == Role::Agent).then(|| Agent::new(cfg.clone())),
            merger: (config.role == Role::Aggregator).then(|| Merger::new(cfg.clone(), retention)),
            rules,
            limits: config.limits.clone(),
            watermark: i64::MIN,
            stats: AlertStats::default(),
            code_path,
            partials_out: Vec::new(),
            steps: None,
            fingerprint,
            gate,
        }
    }

    /// An engine that raises nothing itself: each kept event's rule inputs are written as
    /// steps ([`AlertEngine::take_steps`]) for a central consumer built from the same rules,
    /// which applies them with [`AlertEngine::apply_steps`]. Any `role` is the consumer's.
    pub fn step_writer(config: &AlertConfig) -> Self {
        let single = AlertConfig { role: Role::Single, ..config.clone() };
        let mut engine = AlertEngine::new(&single);
        engine.steps = Some(StepWriter::new(engine.fingerprint));
        engine
    }

    /// The steps written since the last call (empty when no event was kept).
    pub fn take_steps(&mut self) -> Vec<u8> {
        self.steps.as_mut().map(StepWriter::take).unwrap_or_default()
    }

    /// Whether there is no rule to evaluate.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Running totals.
    pub fn stats(&self) -> AlertStats {
        let mut s = self.stats.clone();
        s.groups = self.rules.iter().map(|r| r.groups.len() as u64).sum();
        s.groups_evicted = self.rules.iter().map(|r| r.groups.stats.evicted).sum();
        s
    }

    /// Groups held by the rule named `name` (for tests and diagnostics).
    pub fn groups_of(&self, name: &str) -> Option<usize> {
        self.rules.iter().find(|r| r.rule.name == name).map(|r| r.groups.len())
    }

    /// For each rule, the earlier rule whose query answer it takes (for tests).
    #[cfg(test)]
    pub(crate) fn shared_queries(&self) -> Vec<Option<usize>> {
        self.rules.iter().map(|r| r.same_query_as).collect()
    }

    /// The names of the active rules, in evaluation order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.rule.name.as_str())
    }

    /// Evaluates every rule on one kept event; appends raised alerts (JSON objects) to `out`.
    /// An agent keeps the matches of stateful rules for its partials instead; an aggregator
    /// evaluates nothing on events (its alerts come from partials).
    pub fn observe(&mut self, event: &Event, doc: &dyn Document, out: &mut Vec<String>) {
        self.observe_at(event, event.stage_time_micros(), doc, out);
    }

    /// [`AlertEngine::observe`] with the event's time already read
    /// ([`Event::stage_time_micros`]; the pipeline reads it once per record).
    pub fn observe_at(&mut self, event: &Event, time: Option<i64>, doc: &dyn Document, out: &mut Vec<String>) {
        if self.rules.is_empty() || self.merger.is_some() {
            return;
        }
        if let Some(w) = &mut self.steps {
            w.capture(self.rules.iter().map(|r| (&*r.rule, r.paths.as_slice())), event, time, doc);
            return;
        }
        self.stats.events += 1;
        let t = match time {
            Some(t) => t,
            None if self.watermark == i64::MIN => 0,
            None => self.watermark,
        };
        self.watermark = self.watermark.max(t);
        let now = self.watermark;
        // The rules the gate leaves (of the first 64) and their query answers, for later rules
        // with the same query.
        let candidates = self.gate.candidates(doc);
        let mut answers: u64 = 0;
        for (i, rt) in self.rules.iter_mut().enumerate() {
            let matched = match rt.same_query_as {
                Some(j) => answers >> j & 1 != 0,
                None if i < GATED && candidates >> i & 1 == 0 => false,
                None => rt.rule.query.matches(doc),
            };
            if i < 64 {
                answers |= u64::from(matched) << i;
            }
            if !matched || !rt.rule.extra_checks_pass(event, doc) {
                continue;
            }
            self.stats.matches += 1;
            if let Some(agent) = &mut self.agent {
                if rt.rule.stateful() || agent.per_event_to_aggregator() {
                    build_key(&rt.rule.group_by, doc, &mut rt.key, &mut rt.text);
                    agent.capture(i, &rt.rule, &rt.paths, &rt.key, t, &event.audit_id, &event.stage, doc, None);
                    continue;
                }
            }
            let mut shared =
                Shared { limits: &self.limits, code_path: self.code_path.as_ref(), stats: &mut self.stats };
            rt.on_match(&event.audit_id, doc, None, t, now, &mut shared, out);
        }
        if self.agent.is_some() {
            self.advance_clock(t);
        }
    }

    /// Applies a steps buffer of a [`AlertEngine::step_writer`] built from the same rules:
    /// every event in it as [`AlertEngine::observe`] would have seen it (alerts to `out`).
    /// Returns the number of events applied. A corrupt buffer stops at the fault (the events
    /// before it stay applied).
    pub fn apply_steps(&mut self, buf: &[u8], out: &mut Vec<String>) -> Result<u64, StepsError> {
        let mut reader = StepReader::new(buf, self.fingerprint)?;
        if self.rules.is_empty() || self.merger.is_some() {
            return Ok(0);
        }
        let mut values: Vec<Vec<Scalar>> = Vec::new();
        let mut events = 0;
        while let Some((time, matches)) = reader.next_event()? {
            events += 1;
            self.stats.events += 1;
            let t = match time {
                Some(t) => t,
                None if self.watermark == i64::MIN => 0,
                None => self.watermark,
            };
            self.watermark = self.watermark.max(t);
            let now = self.watermark;
            for _ in 0..matches {
                let rules = &self.rules;
                let m = reader.next_match(|i| rules.get(i).map(|r| r.paths.len()), &mut values)?;
                self.stats.matches += 1;
                let rt = &mut self.rules[m.rule];
                // The paths move out for the calls (on_match borrows the rule mutably).
                let paths = std::mem::take(&mut rt.paths);
                let doc = StepDoc { paths: &paths, values: &values };
                match &mut self.agent {
                    Some(agent) if rt.rule.stateful() || agent.per_event_to_aggregator() => {
                        build_key(&rt.rule.group_by, &doc, &mut rt.key, &mut rt.text);
                        agent.capture(m.rule, &rt.rule, &paths, &rt.key, t, m.audit_id, m.stage, &doc, Some(m.hits));
                    }
                    _ => {
                        let mut shared =
                            Shared { limits: &self.limits, code_path: self.code_path.as_ref(), stats: &mut self.stats };
                        rt.on_match(m.audit_id, &doc, Some(m.hits), t, now, &mut shared, out);
                    }
                }
                rt.paths = paths;
            }
            if self.agent.is_some() {
                self.advance_clock(t);
            }
        }
        Ok(events)
    }

    /// `alerts.role`.
    pub fn role(&self) -> Role {
        match (&self.agent, &self.merger) {
            (Some(_), _) => Role::Agent,
            (_, Some(_)) => Role::Aggregator,
            _ => Role::Single,
        }
    }

    /// Agent role: moves the event-time clock (for events the rules do not see, e.g. those
    /// the policy drops) and emits the partials of the periods that closed.
    pub fn advance_clock(&mut self, t: i64) {
        let Some(agent) = &mut self.agent else { return };
        agent.advance(t);
        if !agent.due() {
            return;
        }
        let rules: Vec<(&Rule, &[FieldPath])> = self.rules.iter().map(|r| (&*r.rule, r.paths.as_slice())).collect();
        agent.flush(&rules, self.limits.max_audit_ids, false, &mut self.partials_out);
    }

    /// The stream ended. An agent emits every open period; an aggregator replays every
    /// partial it holds (alerts to `out`).
    pub fn finish(&mut self, out: &mut Vec<String>) {
        if let Some(agent) = &mut self.agent {
            let rules: Vec<(&Rule, &[FieldPath])> = self.rules.iter().map(|r| (&*r.rule, r.paths.as_slice())).collect();
            agent.flush(&rules, self.limits.max_audit_ids, true, &mut self.partials_out);
        }
        if let Some(m) = &mut self.merger {
            let released = m.finish();
            self.replay(released, out);
        }
    }

    /// Agent role: names this run of the agent (`inc` in its records; see
    /// [`Agent::set_incarnation`]). No effect in other roles or once a record was sent.
    pub fn set_agent_incarnation(&mut self, id: &str) {
        if let Some(agent) = &mut self.agent {
            agent.set_incarnation(id);
        }
    }

    /// Partial and watermark records emitted since the last call (agent role).
    pub fn take_partials(&mut self) -> Vec<String> {
        std::mem::take(&mut self.partials_out)
    }

    /// Aggregator role: takes one partial or watermark record (`agent` overrides the agent name
    /// in it); alerts raised by the steps it releases go to `out`.
    pub fn merge(
        &mut self,
        record: &serde_json::Value,
        agent: Option<&str>,
        out: &mut Vec<String>,
    ) -> Result<(), PartialError> {
        let Some(m) = &mut self.merger else { return Err(PartialError::NotAggregator) };
        let decoded = match partial::decode_record(record, agent) {
            Ok(r) => r,
            Err(e) => {
                m.stats.invalid += 1;
                return Err(e);
            }
        };
        let rules = &self.rules;
        let released = m.add(decoded, |p| {
            rules.iter().find(|r| r.rule.name == p.rule).is_some_and(|r| {
                r.paths.len() == p.paths.len() && r.paths.iter().zip(&p.paths).all(|(a, b)| a.to_string() == *b)
            })
        });
        self.replay(released, out);
        Ok(())
    }

    /// Replays released partials: their steps in event-time order (arrival order for equal
    /// times), each through the rule as if it were the event.
    fn replay(&mut self, partials: Vec<Partial>, out: &mut Vec<String>) {
        let mut steps: Vec<(i64, usize, usize, usize)> = Vec::new();
        for (pi, p) in partials.iter().enumerate() {
            let Some(ri) = self.rules.iter().position(|r| r.rule.name == p.rule) else { continue };
            steps.extend(p.steps.iter().enumerate().map(|(si, s)| (s.t, pi, si, ri)));
        }
        steps.sort_by_key(|&(t, pi, si, _)| (t, pi, si));
        for (t, pi, si, ri) in steps {
            let p = &partials[pi];
            let step = &p.steps[si];
            let Some(values) = p.values.get(step.values) else { continue };
            self.watermark = self.watermark.max(t);
            let now = self.watermark;
            self.stats.matches += 1;
            let rt = &mut self.rules[ri];
            // The paths move out for the call (on_match borrows the rule mutably).
            let paths = std::mem::take(&mut rt.paths);
            let doc = StepDoc { paths: &paths, values };
            let mut shared =
                Shared { limits: &self.limits, code_path: self.code_path.as_ref(), stats: &mut self.stats };
            rt.on_match(&step.audit_id, &doc, Some(&step.hits), t, now, &mut shared, out);
            rt.paths = paths;
        }
    }

    /// The two-phase statistics as a JSON object (`null` in single role).
    pub fn aggregation_json(&self) -> Option<String> {
        #[derive(serde::Serialize)]
        struct Agg<'a> {
            role: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            agent: Option<&'a AgentStats>,
            #[serde(skip_serializing_if = "Option::is_none")]
            aggregator: Option<&'a MergeStats>,
        }
        if self.role() == Role::Single {
            return None;
        }
        serde_json::to_string(&Agg {
            role: self.role().as_str(),
            agent: self.agent.as_ref().map(|a| &a.stats),
            aggregator: self.merger.as_ref().map(|m| &m.stats),
        })
        .ok()
    }

    /// Agent role: what the agent has emitted.
    pub fn agent_stats(&self) -> Option<&AgentStats> {
        self.agent.as_ref().map(|a| &a.stats)
    }

    /// Aggregator role: what the aggregator has merged.
    pub fn merge_stats(&self) -> Option<&MergeStats> {
        self.merger.as_ref().map(|m| &m.stats)
    }
}

/// What every rule's evaluation shares.
struct Shared<'a> {
    limits: &'a AlertLimits,
    code_path: Option<&'a FieldPath>,
    stats: &'a mut AlertStats,
}

impl RuleRt {
    /// One match. `hits` carries the `countIf` results of a replayed step (`None`: evaluate
    /// the queries on `doc`).
    #[allow(clippy::too_many_arguments)]
    fn on_match(
        &mut self,
        audit_id: &str,
        doc: &dyn Document,
        hits: Option<&str>,
        t: i64,
        now: i64,
        shared: &mut Shared<'_>,
        out: &mut Vec<String>,
    ) {
        let (limits, stats) = (shared.limits, &mut *shared.stats);
        let rule: &Rule = &self.rule;
        if !rule.stateful() {
            stats.alerts += 1;
            out.push(write_alert(rule, &self.template, t, doc, None, std::iter::once(audit_id)));
            return;
        }
        build_key(&rule.group_by, doc, &mut self.key, &mut self.text);
        let agg_shape = rule.aggregation.as_ref().map(|a| (a.count_ifs(), a.distincts()));
        let group = self.groups.entry(&self.key, now, rule.retention(), || {
            GroupState::new(t, agg_shape.map(|(c, d)| Box::new(AggState::new(c, d))))
        });
        group.last_seen = group.last_seen.max(t);
        let Some(aggregation) = &rule.aggregation else {
            // Plain rule with grouping/throttle: dedup only.
            if group.last_alert.is_some_and(|last| (t - last).abs() < rule.throttle) {
                stats.suppressed += 1;
                return;
            }
            group.last_alert = Some(t);
            stats.alerts += 1;
            out.push(write_alert(rule, &self.template, t, doc, None, std::iter::once(audit_id)));
            return;
        };
        let Some(state) = group.agg.as_deref_mut() else { return };
        let width = (aggregation.window / BUCKETS as i64).max(1);
        let bucket = t.div_euclid(width);
        if state.is_late(bucket) {
            stats.late_events += 1;
            return;
        }
        let failed = shared.code_path.is_some_and(|p| failed(doc, p));
        let count_ifs = aggregation
            .aggregates
            .iter()
            .filter_map(|(_, f)| match f {
                AggFn::CountIf(q) => Some(q),
                _ => None,
            })
            .enumerate()
            .map(|(i, q)| match hits {
                Some(h) => h.as_bytes().get(i) == Some(&b'1'),
                None => q.matches(doc),
            });
        state.add(bucket, failed, count_ifs);
        state.remember(bucket, audit_id, limits.max_audit_ids);
        let oldest = state.oldest_live();
        let mut d = 0;
        for (_, f) in &aggregation.aggregates {
            if let AggFn::Distinct(path) = f {
                if let Some(set) = state.distinct.get_mut(d) {
                    let text = &mut self.text;
                    doc.visit(path, &mut |v| {
                        text.clear();
                        if value_text(v, text)
                            && set.add(text, bucket, limits.max_distinct, oldest) == DistinctAdd::Overflow
                        {
                            stats.distinct_overflow += 1;
                        }
                        ControlFlow::Continue(())
                    });
                }
                d += 1;
            }
        }
        // Aggregate values over the window, in declaration order.
        self.values.clear();
        let (count, failures) = (state.sum(0) as f64, state.sum(1) as f64);
        let (mut ci, mut di) = (0, 0);
        for (_, f) in &aggregation.aggregates {
            let v = match f {
                AggFn::Count => count,
                AggFn::Failures => failures,
                AggFn::FailureRate if count > 0.0 => (failures * 10_000.0 / count).round() / 100.0,
                AggFn::FailureRate => 0.0,
                AggFn::CountIf(_) => {
                    ci += 1;
                    state.sum(1 + ci) as f64
                }
                AggFn::Distinct(_) => {
                    di += 1;
                    state.distinct.get(di - 1).map_or(0, |s| s.count(oldest)) as f64
                }
            };
            self.values.push(v);
        }
        let holds = aggregation.condition.matches(&AggDoc { names: &aggregation.aggregates, values: &self.values });
        if !holds {
            group.firing = false;
            return;
        }
        let throttled = group.last_alert.is_some_and(|last| (t - last).abs() < rule.throttle);
        let due = match (group.firing, group.last_alert, rule.repeat) {
            // Rising edge: a new burst.
            (false, _, _) => !throttled,
            // Still firing: only a reminder every `repeat` (throttle is for new bursts).
            (true, Some(last), Some(every)) => t - last >= every,
            (true, _, _) => false,
        };
        group.firing = true;
        if !due {
            stats.suppressed += 1;
            return;
        }
        group.last_alert = Some(t);
        stats.alerts += 1;
        let window_start = oldest.saturating_mul(width);
        let agg = AggregateOutput { values: &self.values, window_start, window_end: t.max(window_start) };
        out.push(write_alert(rule, &self.template, t, doc, Some(agg), state.live_audit_ids()));
    }
}

/// `responseStatus.code >= 400` (the seed's failure: `CASE WHEN code < 400 THEN 0 ELSE 1`).
fn failed(doc: &dyn Document, code: &FieldPath) -> bool {
    let mut failed = false;
    doc.visit(code, &mut |v| {
        if let Value::Num(n) = v {
            failed = n >= 400.0;
        }
        ControlFlow::Break(())
    });
    failed
}

/// The group key: each groupBy path's values as text, separated by U+001F (values joined
/// with U+001E when a path has several).
fn build_key(paths: &[FieldPath], doc: &dyn Document, key: &mut String, text: &mut String) {
    key.clear();
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            key.push('\u{1f}');
        }
        let mut first = true;
        doc.visit(p, &mut |v| {
            text.clear();
            if value_text(v, text) {
                if !first {
                    key.push('\u{1e}');
                }
                key.push_str(text);
                first = false;
            }
            ControlFlow::Continue(())
        });
    }
}

/// The aggregates as a document, for the condition query.
struct AggDoc<'a> {
    names: &'a [(String, AggFn)],
    values: &'a [f64],
}

impl Document for AggDoc<'_> {
    fn visit(&self, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        if path.len() != 1 {
            return;
        }
        if let Some(i) = self.names.iter().position(|(n, _)| Some(n.as_str()) == path.segment(0)) {
            if let Some(v) = self.values.get(i) {
                let _ = visit(Value::Num(*v));
            }
        }
    }

    fn visit_all(&self, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        for v in self.values {
            if visit(Value::Num(*v)).is_break() {
                return;
            }
        }
    }
}

/// Strings worth answering ahead in the rules' gate: the values the usual fields take.
pub(crate) fn usual_values(path: &FieldPath) -> Vec<&'static str> {
    use crate::enrich::{account, resource};
    use crate::query::EnrichmentField;
    match path.known() {
        // kube-apiserver's request verbs (resource requests, and the lower-cased HTTP methods
        // of non-resource ones).
        KnownPath::Verb => vec![
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
            "proxy",
            "post",
            "put",
            "head",
            "options",
        ],
        KnownPath::Stage => vec!["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"],
        KnownPath::Enrichment(EnrichmentField::IpScope) => vec!["intranet", "internet", "invalid"],
        KnownPath::Enrichment(EnrichmentField::UserKind) => account::USER_KINDS.iter().map(|k| k.0).collect(),
        KnownPath::Enrichment(EnrichmentField::ResourceCategory) => resource::CATEGORIES.iter().map(|k| k.0).collect(),
        KnownPath::Enrichment(EnrichmentField::Operation) => resource::OPERATIONS.iter().map(|k| k.0).collect(),
        _ => Vec::new(),
    }
}
