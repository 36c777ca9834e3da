//! Alert steps: what each kept event gives the alert rules, written by a pipeline that parsed
//! the event (a worker) and applied by another that holds the window state (a central alert
//! consumer, such as Envoy's elected one), so the consumer never parses the events again.
//!
//! For every kept event a worker writes its event time and, per rule whose query and checks
//! hold, a *step*: the same inputs the two-phase agent keeps (`partial::step_paths`: groupBy,
//! output fields, `distinct` paths, `responseStatus.code`; the `countIf` results; auditID and
//! stage). The consumer replays each step through the engine's own match code with a
//! [`StepDoc`], as the aggregator does with partials, so it raises the alerts a pipeline that
//! saw the events raises: the same bytes.
//!
//! The buffer is binary and private to kaudit (written and read by the same build):
//! `KAS1`, the rules' fingerprint (u64 LE), then per kept event, in order: flags (u8, bit 0:
//! the event has a time), the time (i64 LE, microseconds) when it has one, the number of
//! matches (u16 LE), and per match: the rule's index (u16), stage, auditID and `countIf` hits
//! (each a u32 LE length and UTF-8), the number of paths (u16) and per path the number of
//! values (u32) and the values (tag u8: 0 null, 1 false, 2 true, 3 number as f64 LE,
//! 4 string, 5 object, 6 array).

use std::ops::ControlFlow;

use crate::event::Event;
use crate::query::{Document, FieldPath, Value};

use super::partial::Scalar;
use super::rule::{AggFn, Rule};

const MAGIC: &[u8; 4] = b"KAS1";
const HEADER: usize = 12;

/// Why a steps buffer was not applied (in full).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepsError {
    /// Not a steps buffer (it does not start with the format's magic).
    NotSteps,
    /// Written for other rules (a worker of another config, e.g. during a config change).
    OtherRules,
    /// Cut short or inconsistent at this byte offset; the events before it were applied.
    Corrupt(usize),
}

impl std::fmt::Display for StepsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepsError::NotSteps => f.write_str("not an alert steps buffer"),
            StepsError::OtherRules => f.write_str("alert steps written for other alert rules"),
            StepsError::Corrupt(at) => write!(f, "alert steps buffer corrupt at byte {at}"),
        }
    }
}

impl std::error::Error for StepsError {}

/// A fingerprint of what a steps buffer depends on: each rule's name, step paths and number of
/// `countIf` aggregates (FNV-1a, stable across processes and builds).
pub fn fingerprint<'a>(rules: impl Iterator<Item = (&'a Rule, &'a [FieldPath])>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (rule, paths) in rules {
        eat(rule.name.as_bytes());
        for p in paths {
            eat(p.to_string().as_bytes());
        }
        eat(&(count_ifs(rule).count() as u64).to_le_bytes());
    }
    h
}

fn count_ifs(rule: &Rule) -> impl Iterator<Item = &crate::query::Query> {
    rule.aggregation.iter().flat_map(|a| a.aggregates.iter()).filter_map(|(_, f)| match f {
        AggFn::CountIf(q) => Some(q),
        _ => None,
    })
}

/// The worker side: appends one record per kept event.
#[derive(Debug, Default)]
pub struct StepWriter {
    buf: Vec<u8>,
    fingerprint: u64,
}

impl StepWriter {
    pub fn new(fingerprint: u64) -> StepWriter {
        StepWriter { buf: Vec::new(), fingerprint }
    }

    /// Evaluates every rule's query and checks on one kept event (at `time`, its
    /// [`Event::stage_time_micros`]) and writes its record.
    pub fn capture<'r>(
        &mut self,
        rules: impl Iterator<Item = (&'r Rule, &'r [FieldPath])>,
        event: &Event,
        time: Option<i64>,
        doc: &dyn Document,
    ) {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(MAGIC);
            self.buf.extend_from_slice(&self.fingerprint.to_le_bytes());
        }
        match time {
            Some(t) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&t.to_le_bytes());
            }
            None => self.buf.push(0),
        }
        let count_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        let mut matches: u16 = 0;
        for (i, (rule, paths)) in rules.enumerate() {
            if !rule.query.matches(doc) || !rule.extra_checks_pass(event, doc) {
                continue;
            }
            matches = matches.saturating_add(1);
            self.buf.extend_from_slice(&(i as u16).to_le_bytes());
            put_str(&mut self.buf, &event.stage);
            put_str(&mut self.buf, &event.audit_id);
            let hits: String = count_ifs(rule).map(|q| if q.matches(doc) { '1' } else { '0' }).collect();
            put_str(&mut self.buf, &hits);
            self.buf.extend_from_slice(&(paths.len() as u16).to_le_bytes());
            for p in paths {
                let at = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                let mut n: u32 = 0;
                let buf = &mut self.buf;
                doc.visit(p, &mut |v| {
                    put_value(buf, v);
                    n += 1;
                    ControlFlow::Continue(())
                });
                self.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
            }
        }
        self.buf[count_at..count_at + 2].copy_from_slice(&matches.to_le_bytes());
    }

    /// The records written since the last call (empty when no event was kept).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_value(buf: &mut Vec<u8>, v: Value<'_>) {
    match v {
        Value::Null => buf.push(0),
        Value::Bool(false) => buf.push(1),
        Value::Bool(true) => buf.push(2),
        Value::Num(n) => {
            buf.push(3);
            buf.extend_from_slice(&n.to_le_bytes());
        }
        Value::Str(s) => {
            buf.push(4);
            put_str(buf, s);
        }
        Value::Object => buf.push(5),
        Value::Array => buf.push(6),
    }
}

/// One match read back.
pub struct StepMatch<'a> {
    pub rule: usize,
    pub stage: &'a str,
    pub audit_id: &'a str,
    pub hits: &'a str,
}

/// The consumer side: reads a buffer record by record.
pub struct StepReader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> StepReader<'a> {
    /// Checks the header against the consumer's rules.
    pub fn new(buf: &'a [u8], fingerprint: u64) -> Result<StepReader<'a>, StepsError> {
        if buf.len() < HEADER || &buf[..4] != MAGIC {
            return Err(StepsError::NotSteps);
        }
        if buf[4..HEADER] != fingerprint.to_le_bytes() {
            return Err(StepsError::OtherRules);
        }
        Ok(StepReader { buf, at: HEADER })
    }

    /// The next event: its time and number of matches; `None` at the end.
    pub fn next_event(&mut self) -> Result<Option<(Option<i64>, usize)>, StepsError> {
        if self.at == self.buf.len() {
            return Ok(None);
        }
        let t = match self.take(1)?[0] {
            0 => None,
            1 => Some(i64::from_le_bytes(self.array()?)),
            _ => return Err(self.corrupt()),
        };
        let matches = u16::from_le_bytes(self.array()?) as usize;
        Ok(Some((t, matches)))
    }

    /// The next match of the current event; its values (one list per path) go to `values`,
    /// which must have as many paths as the rule (`paths_of` tells them).
    pub fn next_match(
        &mut self,
        paths_of: impl FnOnce(usize) -> Option<usize>,
        values: &mut Vec<Vec<Scalar>>,
    ) -> Result<StepMatch<'a>, StepsError> {
        let rule = u16::from_le_bytes(self.array()?) as usize;
        let stage = self.str()?;
        let audit_id = self.str()?;
        let hits = self.str()?;
        let paths = u16::from_le_bytes(self.array()?) as usize;
        if paths_of(rule) != Some(paths) {
            return Err(self.corrupt());
        }
        values.resize_with(paths, Vec::new);
        for list in values.iter_mut() {
            list.clear();
            let n = u32::from_le_bytes(self.array()?) as usize;
            for _ in 0..n {
                let v = match self.take(1)?[0] {
                    0 => Scalar::Null,
                    1 => Scalar::Bool(false),
                    2 => Scalar::Bool(true),
                    3 => Scalar::Num(f64::from_le_bytes(self.array()?)),
                    4 => Scalar::Str(self.str()?.to_string()),
                    5 => Scalar::Object,
                    6 => Scalar::Array,
                    _ => return Err(self.corrupt()),
                };
                list.push(v);
            }
        }
        Ok(StepMatch { rule, stage, audit_id, hits })
    }

    fn corrupt(&self) -> StepsError {
        StepsError::Corrupt(self.at)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StepsError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(StepsError::Corrupt(self.at))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StepsError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn str(&mut self) -> Result<&'a str, StepsError> {
        let at = self.at;
        let n = u32::from_le_bytes(self.array()?) as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| StepsError::Corrupt(at))
    }
}
