//! The pipeline every host drives: bytes in, an outcome and bytes out.
//!
//! Hosts hand over one record (Fluent Bit), a batch body (Envoy: EventList, JSON array or JSON
//! lines) or a stream (CLI, component). Each event is parsed once, decided by the policy and
//! written by splicing the original bytes. A record that is not an audit event is reported and,
//! by default, passed through untouched: kaudit never loses a record.

use crate::alert::AlertEngine;
use crate::config::{BadRecords, Config};
use crate::enrich::Enricher;
use crate::event::doc::EventDoc;
use crate::event::framing::{frame, Framed, Records};
use crate::event::raw::{self, Edit, OutBuf};
use crate::event::Event;
use crate::event::RawObject;
use crate::policy::apply::{self, Changes, DropReason, Verdict};
use crate::policy::Evaluator;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written to the output; `changed` when the policy edited it (level, bodies, managedFields).
    Kept {
        /// Whether the policy edited it.
        changed: bool,
    },
    /// Not written: the policy drops it.
    Dropped {
        /// Why.
        reason: DropReason,
        /// The 0-based index of the policy rule that decided it; `None` when no rule matched.
        rule: Option<usize>,
    },
    /// Not a valid audit event. `passed` when it was written through unchanged.
    Bad {
        /// Why it is not an audit event.
        error: String,
        /// Whether it was written through unchanged (`badRecords: pass`).
        passed: bool,
    },
    /// Larger than `limits.maxEventBytes`: written through unchanged, not parsed.
    Oversized,
}

/// Running totals. `read = kept + dropped + bad + oversized`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records read (events, bad records, oversized records).
    pub read: u64,
    /// Events written.
    pub kept: u64,
    /// Kept events the policy edited.
    pub stripped: u64,
    /// Events dropped by the policy.
    pub dropped: u64,
    /// Of `dropped`: level `None`.
    pub dropped_level_none: u64,
    /// Of `dropped`: the stage is omitted.
    pub dropped_omitted_stage: u64,
    /// Of `dropped`: by a filter.
    pub dropped_filtered: u64,
    /// Records that are not audit events.
    pub bad: u64,
    /// Records over `limits.maxEventBytes`, written through unparsed.
    pub oversized: u64,
    /// `process_batch` bodies over `limits.maxBatchBytes`, forwarded untouched (their events are not read).
    pub oversized_batches: u64,
    /// Alerts dropped because the host had not taken `limits.maxPendingAlerts` earlier ones.
    pub alerts_dropped: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
}

impl Counters {
    fn count(&mut self, outcome: &Outcome) {
        self.read += 1;
        match outcome {
            Outcome::Kept { changed } => {
                self.kept += 1;
                self.stripped += u64::from(*changed);
            }
            Outcome::Dropped { reason, .. } => {
                self.dropped += 1;
                match reason {
                    DropReason::LevelNone => self.dropped_level_none += 1,
                    DropReason::OmittedStage => self.dropped_omitted_stage += 1,
                    DropReason::Filtered => self.dropped_filtered += 1,
                }
            }
            Outcome::Bad { .. } => self.bad += 1,
            Outcome::Oversized => self.oversized += 1,
        }
    }

    /// The counters as a JSON object (stable keys, for every host's metrics).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"read\":{},\"kept\":{},\"stripped\":{},\"dropped\":{},\"droppedLevelNone\":{},\"droppedOmittedStage\":{},\"droppedFiltered\":{},\"bad\":{},\"oversized\":{},\"oversizedBatches\":{},\"alertsDropped\":{},\"bytesIn\":{},\"bytesOut\":{}}}",
            self.read,
            self.kept,
            self.stripped,
            self.dropped,
            self.dropped_level_none,
            self.dropped_omitted_stage,
            self.dropped_filtered,
            self.bad,
            self.oversized,
            self.oversized_batches,
            self.alerts_dropped,
            self.bytes_in,
            self.bytes_out
        )
    }
}

/// A per-record report for a stream (what the CLI prints for bad lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReport {
    /// 1-based line where the record starts in the input.
    pub line: usize,
    /// Index of the event inside an EventList/array on that line, if any.
    pub item: Option<usize>,
    /// What happened to it.
    pub outcome: Outcome,
}

/// The engine for one configuration. One instance per host instance; it keeps counters (and,
/// with alerts, window state), so processing takes `&mut self`.
pub struct Pipeline {
    config: Config,
    evaluator: Evaluator,
    enricher: Enricher,
    alerts: AlertEngine,
    counters: Counters,
    scratch: String,
    alerts_out: Vec<String>,
}

impl Pipeline {
    /// Builds the engine for `config`. Every setting (bad records, enrichment and alerts on or
    /// off, limits) is decided on the [`Config`] before this; a built pipeline does not change them.
    /// A host that evaluates alerts in one central place (Envoy's single queue consumer) builds
    /// its workers with `config.alerts.enabled = false` and feeds the central pipeline with
    /// [`Pipeline::observe_for_alerts`].
    pub fn new(config: Config) -> Pipeline {
        let evaluator = Evaluator::new(config.policy.clone());
        let enricher = Enricher::new(config.enrichment.clone(), config.open_geoip());
        let alerts = AlertEngine::new(&config.alerts);
        Pipeline {
            config,
            evaluator,
            enricher,
            alerts,
            counters: Counters::default(),
            scratch: String::new(),
            alerts_out: Vec::new(),
        }
    }

    /// The pipeline of the embedded default config.
    pub fn embedded_default() -> Pipeline {
        Pipeline::new(Config::embedded_default())
    }

    /// The config it was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The policy evaluator.
    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// The running totals.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Processes one record that should be a single audit event (a Fluent Bit record, a line).
    /// Whatever is kept or passed through is appended to `out`; nothing is appended on a drop.
    pub fn process_record<O: OutBuf + ?Sized>(&mut self, bytes: &[u8], out: &mut O) -> Outcome {
        let before = out.out_len();
        let outcome = self.record_outcome(bytes, out);
        self.account(bytes.len(), before, out, &outcome);
        outcome
    }

    fn account<O: OutBuf + ?Sized>(&mut self, bytes_in: usize, before: usize, out: &O, outcome: &Outcome) {
        self.counters.count(outcome);
        self.counters.bytes_in += bytes_in as u64;
        self.counters.bytes_out += (out.out_len() - before) as u64;
    }

    fn record_outcome<O: OutBuf + ?Sized>(&mut self, bytes: &[u8], out: &mut O) -> Outcome {
        if bytes.len() > self.config.limits.max_event_bytes {
            return self.pass_through(bytes, out, None);
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => return self.bad(bytes, out, format!("not UTF-8: invalid byte at offset {}", e.valid_up_to())),
        };
        match raw::parse_object(text) {
            Ok(obj) => self.object_outcome(obj, out),
            Err(e) => self.bad(bytes, out, crate::event::EventError::from(e).to_string()),
        }
    }

    fn object_outcome<O: OutBuf + ?Sized>(&mut self, obj: RawObject<'_>, out: &mut O) -> Outcome {
        let text = obj.text;
        match Event::from_object(obj) {
            Ok(event) => self.decide_and_write(&event, out),
            Err(e) => self.bad(text.as_bytes(), out, e.to_string()),
        }
    }

    fn decide_and_write<O: OutBuf + ?Sized>(&mut self, event: &Event, out: &mut O) -> Outcome {
        let decision = self.evaluator.evaluate_event(event);
        match apply::verdict(&decision, event) {
            Verdict::Drop(reason) => Outcome::Dropped { reason, rule: decision.rule },
            Verdict::Keep(changes) => {
                self.write_kept(event, &changes, out);
                Outcome::Kept { changed: !changes.is_empty() }
            }
        }
    }

    fn write_kept<O: OutBuf + ?Sized>(&mut self, event: &Event, changes: &Changes, out: &mut O) {
        let mut enrichment = String::new();
        let alerting = !self.alerts.is_empty();
        // Alert rules read `kaudit.*` even when the enrichment is not written out.
        if self.enricher.enabled() || alerting {
            self.enricher.enrich_json(event, &mut enrichment);
        }
        let write = self.enricher.enabled() && !enrichment.is_empty();
        let append: &[(&str, &str)] =
            if write { &[(self.enricher.config.key.as_str(), enrichment.as_str())] } else { &[] };
        if alerting {
            let extra: Option<serde_json::Value> = serde_json::from_str(&enrichment).ok();
            let doc = EventDoc::new(event, &self.enricher.config.key, extra.as_ref()).with_changes(changes);
            self.alerts.observe(event, &doc, &mut self.alerts_out);
            cap_pending_alerts(&mut self.alerts_out, self.config.limits.max_pending_alerts, &mut self.counters);
        }
        if raw::has_line_break(event.obj.text) {
            // Pretty-printed input: emit one line per event.
            self.scratch.clear();
            apply::write_event(event, changes, append, &mut self.scratch);
            raw::compact_into(&self.scratch, out);
        } else {
            apply::write_event(event, changes, append, out);
        }
    }

    /// The enricher (for read-only commands that show enrichment, like `query` and reports).
    pub fn enricher(&self) -> &Enricher {
        &self.enricher
    }

    fn bad<O: OutBuf + ?Sized>(&mut self, bytes: &[u8], out: &mut O, error: String) -> Outcome {
        let passed = self.config.bad_records == BadRecords::Pass;
        if passed {
            out.put_raw(bytes);
        }
        Outcome::Bad { error, passed }
    }

    fn pass_through<O: OutBuf + ?Sized>(&mut self, bytes: &[u8], out: &mut O, _why: Option<&str>) -> Outcome {
        out.put_raw(bytes);
        Outcome::Oversized
    }

    /// Processes a stream: JSON lines, pretty-printed events, EventLists and arrays of events.
    /// Every kept or passed-through event is written to `out` as one line. `report` sees every
    /// event's outcome with its position.
    pub fn process_stream<O: OutBuf + ?Sized>(
        &mut self,
        input: &[u8],
        out: &mut O,
        report: &mut dyn FnMut(&RecordReport),
    ) {
        for record in Records::new(input) {
            self.process_document(record.bytes, record.line, out, report);
        }
    }

    /// One framed document: an event, an EventList or an array of events.
    pub fn process_document<O: OutBuf + ?Sized>(
        &mut self,
        bytes: &[u8],
        line: usize,
        out: &mut O,
        report: &mut dyn FnMut(&RecordReport),
    ) {
        // One parse of the top level tells an event from a list (and serves the event itself).
        let framed = match std::str::from_utf8(bytes) {
            Ok(text) if bytes.len() <= self.config.limits.max_event_bytes => frame(text),
            _ => {
                let outcome = self.process_record(bytes, out);
                return self.end_line(line, None, outcome, out, report);
            }
        };
        let before = out.out_len();
        match framed {
            Framed::List(items, _) => {
                for (i, item) in items.iter().enumerate() {
                    let outcome = self.process_record(item.as_bytes(), out);
                    self.end_line(line, Some(i), outcome, out, report);
                }
            }
            Framed::Object(obj) => {
                let outcome = self.object_outcome(obj, out);
                self.account(bytes.len(), before, out, &outcome);
                self.end_line(line, None, outcome, out, report);
            }
            Framed::Invalid(e) => {
                let outcome = self.bad(bytes, out, crate::event::EventError::from(e).to_string());
                self.account(bytes.len(), before, out, &outcome);
                self.end_line(line, None, outcome, out, report);
            }
        }
    }

    /// Terminates a written record with a newline and reports its outcome.
    fn end_line<O: OutBuf + ?Sized>(
        &mut self,
        line: usize,
        item: Option<usize>,
        outcome: Outcome,
        out: &mut O,
        report: &mut dyn FnMut(&RecordReport),
    ) {
        let wrote = !matches!(outcome, Outcome::Dropped { .. } | Outcome::Bad { passed: false, .. });
        if wrote {
            out.put("\n");
        }
        report(&RecordReport { line, item, outcome });
    }

    /// Processes a webhook batch body and writes it back in the same framing: an EventList
    /// keeps its envelope with the kept items, an array stays an array, JSON lines stay lines.
    /// A body that cannot be framed at all is written through untouched.
    pub fn process_batch<O: OutBuf + ?Sized>(&mut self, body: &[u8], out: &mut O) -> BatchSummary {
        let mut summary = BatchSummary::default();
        if body.len() > self.config.limits.max_batch_bytes {
            // Splitting and rebuilding would hold about three copies: forward it as it came.
            out.put_raw(body);
            self.counters.oversized_batches += 1;
            self.counters.bytes_in += body.len() as u64;
            self.counters.bytes_out += body.len() as u64;
            summary.oversized = true;
            return summary;
        }
        // One parse of the top level; an EventList keeps its envelope around the kept items.
        let framed = std::str::from_utf8(body).ok().map(frame);
        match framed {
            Some(Framed::List(items, envelope)) => {
                let mut kept = String::with_capacity(body.len());
                kept.push('[');
                for item in items {
                    let before = kept.len();
                    if before > 1 {
                        kept.push(',');
                    }
                    let outcome = self.process_record(item.as_bytes(), &mut kept);
                    summary.count(&outcome);
                    if kept.len() == before + usize::from(before > 1) {
                        kept.truncate(before); // nothing written: no separator either
                    }
                }
                kept.push(']');
                match envelope {
                    None => out.put(&kept),
                    Some(obj) => {
                        let at = obj.index_of("items");
                        obj.rebuild(
                            out,
                            |i, _| if Some(i) == at { Edit::Replace(std::mem::take(&mut kept)) } else { Edit::Keep },
                            &[],
                        );
                    }
                }
            }
            _ => self.process_stream(body, out, &mut |r| summary.count(&r.outcome)),
        }
        summary
    }

    /// Loads a config text (see `docs/CONFIG.md`); `file` names it in errors, `files` reads what it refers to.
    /// Returns the pipeline and the config's warnings.
    pub fn from_config_text(
        text: &str,
        file: &str,
        files: &dyn crate::files::FileSource,
    ) -> Result<(Pipeline, Vec<crate::yaml::Diagnostic>), crate::config::ConfigError> {
        let (config, warnings) = Config::load(text, file, files)?;
        Ok((Pipeline::new(config), warnings))
    }

    /// Alerts raised since the last call, each a JSON object (no trailing newline).
    pub fn take_alerts(&mut self) -> Vec<String> {
        std::mem::take(&mut self.alerts_out)
    }

    /// The alert engine's running totals.
    pub fn alert_stats(&self) -> crate::alert::AlertStats {
        self.alerts.stats()
    }

    /// Counters and alert statistics as one JSON object: the counters' keys plus `"alerts"`.
    pub fn metrics_json(&self) -> String {
        let mut c = self.counters.to_json();
        c.pop(); // the closing '}'
        format!("{c},\"alerts\":{}}}", self.alerts.stats().to_json())
    }

    /// Whether the config has any alert rule (hosts that forward events to a central alert
    /// consumer skip the forwarding when it has none).
    pub fn alerts_configured(&self) -> bool {
        !self.alerts.is_empty()
    }

    /// Feeds one already processed (kept) event to the alert rules only; nothing is written.
    pub fn observe_for_alerts(&mut self, event: &[u8]) {
        let Ok(text) = std::str::from_utf8(event) else { return };
        let Ok(ev) = Event::parse(text) else { return };
        let doc = EventDoc::new(&ev, &self.enricher.config.key, None);
        self.alerts.observe(&ev, &doc, &mut self.alerts_out);
        cap_pending_alerts(&mut self.alerts_out, self.config.limits.max_pending_alerts, &mut self.counters);
    }
}

/// Alerts the host has not taken stay bounded: beyond `limits.maxPendingAlerts` the newest are
/// dropped and counted (a host that never calls `take_alerts` must not grow without end).
fn cap_pending_alerts(pending: &mut Vec<String>, max: usize, counters: &mut Counters) {
    if pending.len() > max {
        counters.alerts_dropped += (pending.len() - max) as u64;
        pending.truncate(max);
    }
}

/// Per-batch counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Events in the batch.
    pub events: u64,
    /// Events written (kept, or oversized and passed through).
    pub kept: u64,
    /// Events the policy dropped.
    pub dropped: u64,
    /// Records that are not audit events.
    pub bad: u64,
    /// Over `limits.maxBatchBytes`: written through untouched, no event read.
    pub oversized: bool,
}

impl BatchSummary {
    fn count(&mut self, outcome: &Outcome) {
        self.events += 1;
        match outcome {
            Outcome::Kept { .. } | Outcome::Oversized => self.kept += 1,
            Outcome::Dropped { .. } => self.dropped += 1,
            Outcome::Bad { .. } => self.bad += 1,
        }
    }
}
