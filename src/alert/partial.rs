//! Two-phase aggregation, agent side: what a rule match leaves for the aggregator (a *step*),
//! how an agent cuts its steps into partial records per rule, group and flush period, and the
//! watermark records that tell the aggregator how far in event time the agent has flushed.
//!
//! A step is the part of an event that a stateful rule reads: its event time, auditID, the
//! `countIf` results and the values at the rule's paths (groupBy, output fields, `distinct`
//! paths, `responseStatus.code`). The aggregator replays steps through the same engine code a
//! single instance runs on events ([`StepDoc`] is the event as the rule sees it), so the
//! alerts are the same bytes. Record formats and guarantees: docs/SCALING.md.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::ops::ControlFlow;

use crate::event::raw::write_json_str;
use crate::event::time::{format_micros, parse_micros};
use crate::query::{Document, FieldPath, Value};

use super::config::AggregationConfig;
use super::output::{value_text, write_num, write_path_value};
use super::rule::{AggFn, Rule};

/// `kind` of a partial record.
pub const PARTIAL_KIND: &str = "KauditPartial";
/// `kind` of a watermark record.
pub const WATERMARK_KIND: &str = "KauditWatermark";
/// Version of the record format.
pub const FORMAT_VERSION: u64 = 1;

/// An agent run's id (`inc`) from what a host knows at start-up: its wall-clock start time
/// (µs since the Unix epoch; 0 for a host without a clock) and a random nonce:
/// `<start hex>-<nonce hex>`. For [`crate::Pipeline::set_agent_incarnation`].
pub fn incarnation_id(start_micros: u64, nonce: u64) -> String {
    format!("{start_micros:x}-{nonce:016x}")
}

/// The paths a stateful rule reads from an event, in a fixed order: groupBy, output fields,
/// `distinct` paths, `responseStatus.code` (duplicates removed).
pub fn step_paths(rule: &Rule, code: Option<&FieldPath>) -> Vec<FieldPath> {
    let mut paths: Vec<FieldPath> = Vec::new();
    let distinct = rule.aggregation.iter().flat_map(|a| a.aggregates.iter()).filter_map(|(_, f)| match f {
        AggFn::Distinct(p) => Some(p),
        _ => None,
    });
    let code = rule.aggregation.as_ref().and(code);
    for p in rule.group_by.iter().chain(rule.fields.iter().map(|(_, p)| p)).chain(distinct).chain(code) {
        if !paths.contains(p) {
            paths.push(p.clone());
        }
    }
    paths
}

/// A scalar as a step keeps it (objects and arrays only as markers, as queries see them).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Object,
    Array,
}

impl Scalar {
    fn as_value(&self) -> Value<'_> {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Num(n) => Value::Num(*n),
            Scalar::Str(s) => Value::Str(s),
            Scalar::Object => Value::Object,
            Scalar::Array => Value::Array,
        }
    }

    fn from_json(v: &serde_json::Value) -> Option<Scalar> {
        Some(match v {
            serde_json::Value::Null => Scalar::Null,
            serde_json::Value::Bool(b) => Scalar::Bool(*b),
            serde_json::Value::Number(n) => Scalar::Num(n.as_f64()?),
            serde_json::Value::String(s) => Scalar::Str(s.clone()),
            serde_json::Value::Object(_) => Scalar::Object,
            serde_json::Value::Array(_) => Scalar::Array,
        })
    }
}

fn write_scalar(out: &mut String, v: Value<'_>) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Value::Num(n) => write_num(out, n),
        Value::Str(s) => write_json_str(out, s),
        Value::Object => out.push_str("{}"),
        Value::Array => out.push_str("[]"),
    }
}

/// The values a step keeps, one list per step path: the event as the rule sees it.
pub struct StepDoc<'a> {
    pub paths: &'a [FieldPath],
    pub values: &'a [Vec<Scalar>],
}

impl Document for StepDoc<'_> {
    fn visit(&self, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        let Some(i) = self.paths.iter().position(|p| p == path) else { return };
        for v in self.values.get(i).into_iter().flatten() {
            if visit(v.as_value()).is_break() {
                return;
            }
        }
    }

    fn visit_all(&self, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        for v in self.values.iter().flatten() {
            if visit(v.as_value()).is_break() {
                return;
            }
        }
    }
}

/// Renders the values at `paths` in `doc` as a JSON array of arrays.
fn render_values(paths: &[FieldPath], doc: &dyn Document, out: &mut String) {
    out.push('[');
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        let mut n = 0;
        doc.visit(p, &mut |v| {
            if n > 0 {
                out.push(',');
            }
            write_scalar(out, v);
            n += 1;
            ControlFlow::Continue(())
        });
        out.push(']');
    }
    out.push(']');
}

/// The stages, by their code in a step (an unknown stage is written as its name).
pub const STAGES: [&str; 4] = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"];

/// One step in a partial being built.
#[derive(Debug)]
struct StepRec {
    t: i64,
    audit_id: String,
    stage: String,
    /// Index into the partial's value table.
    values: usize,
    /// `countIf` results, one `0`/`1` per aggregate.
    hits: String,
}

/// The steps of one rule and group in one flush period.
#[derive(Debug)]
struct PartialBuf {
    rule: usize,
    key: String,
    /// Distinct rendered value lists (most steps of a group share theirs).
    values: Vec<String>,
    value_index: HashMap<String, usize>,
    steps: Vec<StepRec>,
}

/// Partials of one flush period, in the order their groups first matched.
#[derive(Debug, Default)]
struct PeriodBuf {
    index: HashMap<(usize, String), usize>,
    partials: Vec<PartialBuf>,
}

/// Records and bytes an agent emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStats {
    /// Partial records emitted.
    pub partials: u64,
    /// Watermark records emitted.
    pub watermarks: u64,
    /// Steps (rule matches) sent in partials.
    pub steps: u64,
    /// Bytes of partial and watermark records.
    pub bytes: u64,
}

/// The agent side: buffers steps per flush period and emits partial and watermark records.
#[derive(Debug)]
pub struct Agent {
    cfg: AggregationConfig,
    open: BTreeMap<i64, PeriodBuf>,
    /// Latest event time seen (every parsed event, kept or dropped).
    clock: i64,
    /// Event time up to which every period has been flushed (the last watermark sent).
    flushed: i64,
    /// This run's id (`inc`): given by the host ([`Agent::set_incarnation`]), else the first
    /// event time it read.
    incarnation: Option<String>,
    /// The next record's number within this incarnation (`seq`).
    seq: u64,
    pub stats: AgentStats,
    scratch: String,
}

impl Agent {
    pub fn new(cfg: AggregationConfig) -> Agent {
        Agent {
            cfg,
            open: BTreeMap::new(),
            clock: i64::MIN,
            flushed: i64::MIN,
            incarnation: None,
            seq: 0,
            stats: AgentStats::default(),
            scratch: String::new(),
        }
    }

    /// Whether rules without state also go to the aggregator.
    pub fn per_event_to_aggregator(&self) -> bool {
        self.cfg.per_event_to_aggregator
    }

    /// Names this run of the agent (`inc` in its records): a host sets it once, before the
    /// first record, from what tells one start of the process from another (its start time and
    /// a random nonce). Ignored once a record has been numbered.
    pub fn set_incarnation(&mut self, id: &str) {
        if self.seq == 0 && !id.is_empty() {
            self.incarnation = Some(id.to_string());
        }
    }

    /// Moves the agent's event-time clock (any parsed event, also those the policy drops).
    pub fn advance(&mut self, t: i64) {
        if self.incarnation.is_none() && t != i64::MIN {
            // No id from the host: the start event time (a restart that reads again from the
            // same place numbers the same records the same way).
            self.incarnation = Some(format!("t{t}"));
        }
        self.clock = self.clock.max(t);
    }

    /// The `"agent":…,"inc":…,"seq":N` members of the next record (its number taken).
    fn write_origin(&mut self, out: &mut String) {
        out.push_str(",\"agent\":");
        write_json_str(out, &self.cfg.agent_id);
        out.push_str(",\"inc\":");
        write_json_str(out, self.incarnation.as_deref().unwrap_or("t0"));
        let _ = write!(out, ",\"seq\":{}", self.seq);
        self.seq += 1;
    }

    /// Keeps one match of rule `rule` (index), group `key`, at event time `t`; `hits` are the
    /// `countIf` results when already evaluated (a step), else they are evaluated on `doc`.
    #[allow(clippy::too_many_arguments)]
    pub fn capture(
        &mut self,
        rule_index: usize,
        rule: &Rule,
        paths: &[FieldPath],
        key: &str,
        t: i64,
        audit_id: &str,
        stage: &str,
        doc: &dyn Document,
        hits: Option<&str>,
    ) {
        let period = t.div_euclid(self.width());
        let buf = self.open.entry(period).or_default();
        let i = match buf.index.get(&(rule_index, key.to_string())) {
            Some(&i) => i,
            None => {
                buf.partials.push(PartialBuf {
                    rule: rule_index,
                    key: key.to_string(),
                    values: Vec::new(),
                    value_index: HashMap::new(),
                    steps: Vec::new(),
                });
                buf.index.insert((rule_index, key.to_string()), buf.partials.len() - 1);
                buf.partials.len() - 1
            }
        };
        let p = &mut buf.partials[i];
        self.scratch.clear();
        render_values(paths, doc, &mut self.scratch);
        let values = match p.value_index.get(&self.scratch) {
            Some(&v) => v,
            None => {
                p.values.push(self.scratch.clone());
                p.value_index.insert(self.scratch.clone(), p.values.len() - 1);
                p.values.len() - 1
            }
        };
        let hits = match hits {
            Some(h) => h.to_string(),
            None => rule
                .aggregation
                .iter()
                .flat_map(|a| a.aggregates.iter())
                .filter_map(|(_, f)| match f {
                    AggFn::CountIf(q) => Some(if q.matches(doc) { '1' } else { '0' }),
                    _ => None,
                })
                .collect(),
        };
        p.steps.push(StepRec { t, audit_id: audit_id.to_string(), stage: stage.to_string(), values, hits });
    }

    /// Whether [`Agent::flush`] has something to do (a period to close or a late step to send).
    pub fn due(&self) -> bool {
        if self.clock == i64::MIN {
            return false;
        }
        let every = self.width();
        let boundary = self.clock.saturating_sub(self.cfg.lateness).div_euclid(every).saturating_mul(every);
        boundary > self.flushed
            || (self.immediate() && !self.open.is_empty())
            || self.open.keys().next().is_some_and(|p| (p + 1).saturating_mul(every) <= self.flushed)
    }

    /// `flushEvery: 0`: every step leaves with the record that matched (nothing is held, so
    /// nothing is lost when the host is killed); periods and watermarks are then 1 s.
    fn immediate(&self) -> bool {
        self.cfg.flush_every == 0
    }

    /// The length of a period.
    fn width(&self) -> i64 {
        if self.immediate() {
            1_000_000
        } else {
            self.cfg.flush_every
        }
    }

    /// Emits the partials of every period that ended `lateness` ago (all of them with `all`:
    /// the stream ended) and a watermark when it moved.
    pub fn flush(&mut self, rules: &[(&Rule, &[FieldPath])], max_audit_ids: usize, all: bool, out: &mut Vec<String>) {
        if self.clock == i64::MIN && self.open.is_empty() {
            return;
        }
        let every = self.width();
        let mut boundary = if all {
            self.open.keys().next_back().map_or(i64::MIN, |p| (p + 1).saturating_mul(every))
        } else {
            self.clock.saturating_sub(self.cfg.lateness).div_euclid(every).saturating_mul(every)
        };
        boundary = boundary.max(self.flushed);
        let send_until = if self.immediate() { i64::MAX } else { boundary };
        while let Some(entry) = self.open.first_entry() {
            let period = *entry.key();
            if (period + 1).saturating_mul(every) > send_until {
                break;
            }
            let buf = entry.remove();
            for p in buf.partials {
                let (rule, paths) = rules[p.rule];
                let mut record = String::with_capacity(256 + p.steps.len() * 64);
                let _ = write!(record, "{{\"kind\":\"{PARTIAL_KIND}\",\"v\":{FORMAT_VERSION}");
                self.write_origin(&mut record);
                write_partial(&mut record, rule, paths, &p, period, every, max_audit_ids);
                self.stats.partials += 1;
                self.stats.steps += p.steps.len() as u64;
                self.stats.bytes += record.len() as u64;
                out.push(record);
            }
        }
        if boundary > self.flushed {
            self.flushed = boundary;
            let mut w = String::with_capacity(128);
            let _ = write!(w, "{{\"kind\":\"{WATERMARK_KIND}\",\"v\":{FORMAT_VERSION}");
            self.write_origin(&mut w);
            w.push_str(",\"time\":");
            write_json_str(&mut w, &format_micros(boundary));
            w.push('}');
            self.stats.watermarks += 1;
            self.stats.bytes += w.len() as u64;
            out.push(w);
        }
    }
}

/// The rest of a partial record after its origin (schema in docs/SCALING.md).
fn write_partial(
    out: &mut String,
    rule: &Rule,
    paths: &[FieldPath],
    p: &PartialBuf,
    period: i64,
    every: i64,
    max_audit_ids: usize,
) {
    out.push_str(",\"rule\":");
    write_json_str(out, &rule.name);
    out.push_str(",\"key\":");
    write_json_str(out, &p.key);
    out.push_str(",\"start\":");
    write_json_str(out, &format_micros(period.saturating_mul(every)));
    out.push_str(",\"end\":");
    write_json_str(out, &format_micros((period + 1).saturating_mul(every)));
    // The summary (for people and dashboards; the aggregator replays the steps).
    let tables: Vec<Vec<Vec<Scalar>>> = p.values.iter().map(|v| parse_values(v).unwrap_or_default()).collect();
    let doc_of = |s: &StepRec| StepDoc { paths, values: tables.get(s.values).map_or(&[][..], |v| v.as_slice()) };
    out.push_str(",\"group\":{");
    if let Some(first) = p.steps.first() {
        let doc = doc_of(first);
        for (i, g) in rule.group_by.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(out, &g.to_string());
            out.push(':');
            write_path_value(out, &doc, g);
        }
    }
    out.push('}');
    let _ = write!(out, ",\"count\":{}", p.steps.len());
    if let Some(agg) = &rule.aggregation {
        let code = FieldPath::from_segments(["responseStatus", "code"]);
        let failures = p
            .steps
            .iter()
            .filter(|s| {
                let mut failed = false;
                if let Some(code) = &code {
                    doc_of(s).visit(code, &mut |v| {
                        failed = matches!(v, Value::Num(n) if n >= 400.0);
                        ControlFlow::Break(())
                    });
                }
                failed
            })
            .count();
        let _ = write!(out, ",\"failures\":{failures},\"countIf\":{{");
        let mut ci = 0;
        let mut first = true;
        for (name, f) in &agg.aggregates {
            if let AggFn::CountIf(_) = f {
                let n = p.steps.iter().filter(|s| s.hits.as_bytes().get(ci) == Some(&b'1')).count();
                if !first {
                    out.push(',');
                }
                first = false;
                write_json_str(out, name);
                let _ = write!(out, ":{n}");
                ci += 1;
            }
        }
        out.push_str("},\"distinct\":{");
        let mut first = true;
        for (name, f) in &agg.aggregates {
            if let AggFn::Distinct(path) = f {
                let mut seen: Vec<String> = Vec::new();
                let mut text = String::new();
                for s in &p.steps {
                    doc_of(s).visit(path, &mut |v| {
                        text.clear();
                        if value_text(v, &mut text) && !seen.contains(&text) {
                            seen.push(text.clone());
                        }
                        ControlFlow::Continue(())
                    });
                }
                if !first {
                    out.push(',');
                }
                first = false;
                write_json_str(out, name);
                out.push_str(":[");
                for (i, v) in seen.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_str(out, v);
                }
                out.push(']');
            }
        }
        out.push('}');
    }
    let first = p.steps.iter().map(|s| s.t).min().unwrap_or(0);
    let last = p.steps.iter().map(|s| s.t).max().unwrap_or(0);
    out.push_str(",\"first\":");
    write_json_str(out, &format_micros(first));
    out.push_str(",\"last\":");
    write_json_str(out, &format_micros(last));
    out.push_str(",\"auditIDs\":[");
    let skip = p.steps.len().saturating_sub(max_audit_ids);
    for (i, s) in p.steps.iter().skip(skip).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, &s.audit_id);
    }
    out.push_str("],\"paths\":[");
    for (i, path) in paths.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, &path.to_string());
    }
    out.push_str("],\"values\":[");
    out.push_str(&p.values.join(","));
    out.push_str("],\"steps\":[");
    for (i, s) in p.steps.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{},", s.t);
        write_json_str(out, &s.audit_id);
        let _ = write!(out, ",{},\"{}\",", s.values, s.hits);
        match STAGES.iter().position(|x| *x == s.stage) {
            Some(code) => {
                let _ = write!(out, "{code}]");
            }
            None => {
                write_json_str(out, &s.stage);
                out.push(']');
            }
        }
    }
    out.push_str("]}");
}

fn parse_values(text: &str) -> Option<Vec<Vec<Scalar>>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    decode_table(&v)
}

fn decode_table(v: &serde_json::Value) -> Option<Vec<Vec<Scalar>>> {
    v.as_array()?.iter().map(|list| list.as_array()?.iter().map(Scalar::from_json).collect()).collect()
}

/// A step as the aggregator replays it.
#[derive(Debug, Clone)]
pub struct Step {
    pub t: i64,
    pub audit_id: String,
    /// Index into the partial's value tables.
    pub values: usize,
    pub hits: String,
    /// The event's stage (with the auditID and time, what identifies a step).
    pub stage: String,
}

/// Where a record stands in its agent's sequence: the agent's run (`inc`) and the record's
/// number in it (`seq`, from 0). Records of agents before sequence numbers have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seq {
    pub inc: String,
    pub n: u64,
}

/// A decoded partial record.
#[derive(Debug, Clone)]
pub struct Partial {
    pub agent: String,
    pub seq: Option<Seq>,
    pub rule: String,
    pub start: i64,
    pub end: i64,
    pub paths: Vec<String>,
    pub values: Vec<Vec<Vec<Scalar>>>,
    pub steps: Vec<Step>,
}

/// Why a record does not merge into an aggregator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartialError {
    /// This pipeline's `alerts.role` is not `aggregator`.
    NotAggregator,
    /// The record is not JSON (serde_json's message).
    NotJson(String),
    /// JSON, but not a partial or watermark record of this format version: what is wrong.
    Invalid(String),
}

impl std::fmt::Display for PartialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartialError::NotAggregator => f.write_str("alerts.role is not aggregator"),
            PartialError::NotJson(e) => write!(f, "not a JSON partial record: {e}"),
            PartialError::Invalid(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for PartialError {}

/// A record the aggregator reads.
#[derive(Debug, Clone)]
pub enum Record {
    Partial(Partial),
    /// The agent flushed every period that ends at or before `time`, in records numbered
    /// before this one.
    Watermark {
        agent: String,
        seq: Option<Seq>,
        time: i64,
    },
}

/// Decodes a partial or watermark record; `agent` (a host's per-record agent name) overrides
/// the record's own.
pub fn decode_record(v: &serde_json::Value, agent: Option<&str>) -> Result<Record, PartialError> {
    decode_fields(v, agent).map_err(PartialError::Invalid)
}

fn decode_fields(v: &serde_json::Value, agent: Option<&str>) -> Result<Record, String> {
    let obj = v.as_object().ok_or("not a JSON object")?;
    let str_of = |k: &str| obj.get(k).and_then(|x| x.as_str()).ok_or_else(|| format!("missing string {k:?}"));
    let time_of = |k: &str| -> Result<i64, String> {
        let s = str_of(k)?;
        parse_micros(s).ok_or_else(|| format!("{k}: not an RFC 3339 time: {s:?}"))
    };
    let version = obj.get("v").and_then(|x| x.as_u64()).unwrap_or(0);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported record version {version} (this kaudit reads {FORMAT_VERSION})"));
    }
    let agent = match agent {
        Some(a) => a.to_string(),
        None => str_of("agent")?.to_string(),
    };
    let seq = match (obj.get("inc"), obj.get("seq")) {
        (None, None) => None,
        (Some(serde_json::Value::String(inc)), Some(n)) => {
            Some(Seq { inc: inc.clone(), n: n.as_u64().ok_or("\"seq\": expected a number from 0")? })
        }
        _ => return Err("\"inc\" (a string) and \"seq\" (a number) go together".to_string()),
    };
    match str_of("kind")? {
        WATERMARK_KIND => Ok(Record::Watermark { agent, seq, time: time_of("time")? }),
        PARTIAL_KIND => {
            let values = obj
                .get("values")
                .and_then(|t| t.as_array())
                .ok_or("missing \"values\"")?
                .iter()
                .map(|t| decode_table(t).ok_or("\"values\": expected lists of scalars"))
                .collect::<Result<Vec<_>, _>>()?;
            let paths = obj
                .get("paths")
                .and_then(|p| p.as_array())
                .ok_or("missing \"paths\"")?
                .iter()
                .map(|p| p.as_str().map(str::to_string).ok_or("\"paths\": expected strings"))
                .collect::<Result<Vec<_>, _>>()?;
            let steps = obj
                .get("steps")
                .and_then(|s| s.as_array())
                .ok_or("missing \"steps\"")?
                .iter()
                .map(|s| -> Result<Step, String> {
                    let bad = || format!("bad step {s}");
                    let a = s.as_array().filter(|a| a.len() == 5).ok_or_else(bad)?;
                    let values = a[2].as_u64().ok_or_else(bad)? as usize;
                    if values >= obj.get("values").and_then(|t| t.as_array()).map_or(0, |t| t.len()) {
                        return Err(bad());
                    }
                    Ok(Step {
                        t: a[0].as_i64().ok_or_else(bad)?,
                        audit_id: a[1].as_str().ok_or_else(bad)?.to_string(),
                        values,
                        hits: a[3].as_str().ok_or_else(bad)?.to_string(),
                        stage: match &a[4] {
                            serde_json::Value::String(s) => s.clone(),
                            code => STAGES.get(code.as_u64().ok_or_else(bad)? as usize).ok_or_else(bad)?.to_string(),
                        },
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Record::Partial(Partial {
                agent,
                seq,
                rule: str_of("rule")?.to_string(),
                start: time_of("start")?,
                end: time_of("end")?,
                paths,
                values,
                steps,
            }))
        }
        other => Err(format!("not a kaudit partial or watermark (kind {other:?})")),
    }
}
