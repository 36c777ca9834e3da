//! The pipeline every host drives: bytes in, an outcome and bytes out.
//!
//! Hosts hand over one record (Fluent Bit), a batch body (Envoy: EventList, JSON array or JSON
//! lines) or a stream (CLI, component). Each event is parsed once, decided by the policy and
//! written by splicing the original bytes. A record that is not an audit event is reported and,
//! by default, passed through untouched: kaudit never loses a record.

use serde::Serialize;

use crate::alert::{AlertEngine, AlertStats, PartialError, Role, StepsError};
use crate::config::{BadRecords, Config};
use crate::enrich::{Enricher, Enrichment};
use crate::event::buffers::Buffers;
use crate::event::doc::EventDoc;
use crate::event::edit;
use crate::event::framing::RecordPos;
use crate::event::framing::{frame, frame_with, Framed, Records};
use crate::event::managed::{self, BadKind, DecodeLimits, Piece};
use crate::event::raw::{self, Edit, OutBuf};
use crate::event::time::{EventTimes, MinuteMemo};
use crate::event::RawObject;
use crate::event::{Event, EventError};
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
        /// Why it is not an audit event: the field at fault (if any) and what is wrong.
        error: EventError,
        /// Whether it was written through unchanged (`badRecords: pass`).
        passed: bool,
    },
    /// Larger than `limits.maxEventBytes`: written through unchanged, not parsed.
    Oversized,
}

/// Running totals. `read = kept + dropped + bad + oversized`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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
    /// Of `dropped`: consumed while collection is off (`enabled: false`).
    pub dropped_disabled: u64,
    /// Records that are not audit events.
    pub bad: u64,
    /// Of `bad`: managed-cluster wrappers that did not decode (bad base64, truncated gzip,
    /// a gzip bomb, a malformed envelope), passed through as they came.
    pub bad_wrapper: u64,
    /// Of `bad`: events EKS cut at the CloudWatch entry size (`[Truncated...]`).
    pub truncated: u64,
    /// Of `bad`: records of a managed source that are not audit events (AKS klog categories,
    /// other Cloud Audit Logs services, other CloudWatch streams), passed through untouched.
    pub not_audit: u64,
    /// Records over `limits.maxEventBytes`, written through unparsed.
    pub oversized: u64,
    /// `process_batch` bodies over `limits.maxBatchBytes`, forwarded untouched (their events are not read).
    pub oversized_batches: u64,
    /// Alerts dropped because the host had not taken `limits.maxPendingAlerts` earlier ones.
    pub alerts_dropped: u64,
    /// CloudWatch Logs `CONTROL_MESSAGE`s consumed (health probes, no record in them).
    pub control_messages: u64,
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
                    DropReason::Disabled => self.dropped_disabled += 1,
                }
            }
            Outcome::Bad { .. } => self.bad += 1,
            Outcome::Oversized => self.oversized += 1,
        }
    }

    /// The counters as a JSON object (stable camelCase keys in field order, for every host's metrics).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A per-record report for a stream (what the CLI prints for bad lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReport {
    /// Where the record is in the input.
    pub pos: RecordPos,
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
    /// The allocations of each record's event, reused (see [`Buffers`]).
    buffers: Buffers,
    /// A pretty-printed event is written here, then compacted into the output.
    scratch: String,
    /// `,"<key>":{`, the start of the enrichment member, escaped once per pipeline.
    member_key: String,
    alerts_out: Vec<String>,
    /// The minute of the last event time read (events of a stream mostly share theirs).
    minute: MinuteMemo,
    /// The provider context of the managed-cluster event being written (JSON), if any.
    source: Option<String>,
}

impl Pipeline {
    /// Builds the engine for `config`. Every setting (bad records, enrichment and alerts on or
    /// off, limits) is decided on the [`Config`] before this; a built pipeline does not change them.
    /// A host that evaluates alerts in one central place (Envoy's single queue consumer) builds
    /// its workers with [`Pipeline::alert_worker`] instead.
    pub fn new(config: Config) -> Pipeline {
        let alerts = AlertEngine::new(&config.alerts);
        Pipeline::with_alerts(config, alerts)
    }

    /// A worker of a central alert consumer (Envoy's workers and their single elected
    /// consumer): it filters and writes like [`Pipeline::new`] but raises no alert; instead,
    /// for every kept event, it writes what the alert rules take from it (the event time and,
    /// per matching rule, the values the rule reads: a few dozen bytes instead of the event),
    /// taken with [`Pipeline::take_alert_steps`]. The consumer, a [`Pipeline::new`] of the
    /// same config, applies them with [`Pipeline::apply_alert_steps`] without parsing the
    /// events again, and raises the alerts (or, with `alerts.role: agent`, the partials) a
    /// pipeline that saw the events would.
    pub fn alert_worker(config: Config) -> Pipeline {
        let alerts = AlertEngine::step_writer(&config.alerts);
        Pipeline::with_alerts(config, alerts)
    }

    fn with_alerts(config: Config, alerts: AlertEngine) -> Pipeline {
        let mut member_key = String::new();
        edit::write_member_key(&mut member_key, &config.enrichment.key, false);
        member_key.push('{');
        let evaluator = Evaluator::new(config.policy.clone());
        let enricher = Enricher::new(config.enrichment.clone(), config.open_geoip());
        Pipeline {
            config,
            evaluator,
            enricher,
            alerts,
            counters: Counters::default(),
            buffers: Buffers::default(),
            scratch: String::new(),
            member_key,
            alerts_out: Vec::new(),
            minute: MinuteMemo::default(),
            source: None,
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
    ///
    /// A managed-cluster record (an AKS record, a CloudWatch log event, a GKE LogEntry…) is
    /// unwrapped first; a wrapper holding several events writes them as one `EventList`, and
    /// one holding none (a CloudWatch `CONTROL_MESSAGE`) writes nothing. Each event inside is
    /// counted on its own; the outcome returned is that of the single event, or for several
    /// `Kept` when any was written.
    pub fn process_record<O: OutBuf + ?Sized>(&mut self, bytes: &[u8], out: &mut O) -> Outcome {
        let before = out.out_len();
        match self.record_outcome(bytes, None, out, true) {
            Counted::Already(outcome) => outcome,
            Counted::Not(outcome) => {
                self.account(bytes.len(), before, out, &outcome);
                outcome
            }
        }
    }

    /// [`Pipeline::process_record`] of a record the host already holds as text (the same
    /// outcome and bytes): an interpreting host that checked it cheaply (Fluent Bit's records are
    /// ASCII JSON almost always) spares the general UTF-8 validation of every byte.
    pub fn process_text<O: OutBuf + ?Sized>(&mut self, text: &str, out: &mut O) -> Outcome {
        let before = out.out_len();
        match self.record_outcome(text.as_bytes(), Some(text), out, true) {
            Counted::Already(outcome) => outcome,
            Counted::Not(outcome) => {
                self.account(text.len(), before, out, &outcome);
                outcome
            }
        }
    }

    fn account<O: OutBuf + ?Sized>(&mut self, bytes_in: usize, before: usize, out: &O, outcome: &Outcome) {
        self.counters.count(outcome);
        self.counters.bytes_in += bytes_in as u64;
        self.counters.bytes_out += (out.out_len() - before) as u64;
    }

    /// One record's outcome; with `unwrap`, managed-cluster wrappers are decoded (their events
    /// are counted one by one, so the result says whether counting is done). `text` is `bytes`
    /// when the caller already knows they are UTF-8.
    fn record_outcome<O: OutBuf + ?Sized>(
        &mut self,
        bytes: &[u8],
        text: Option<&str>,
        out: &mut O,
        unwrap: bool,
    ) -> Counted {
        if !self.config.enabled {
            return Counted::Not(DISABLED);
        }
        if bytes.len() > self.config.limits.max_event_bytes {
            return Counted::Not(self.oversized(bytes, out));
        }
        let text = match text.map_or_else(|| std::str::from_utf8(bytes), Ok) {
            Ok(t) => t,
            Err(e) => {
                if unwrap {
                    if let Some(o) = self.record_pieces(bytes, out, |l, f| managed::decode_loose(bytes, l, f)) {
                        return Counted::Already(o);
                    }
                }
                return Counted::Not(self.bad(
                    bytes,
                    out,
                    format!("not UTF-8: invalid byte at offset {}", e.valid_up_to()),
                ));
            }
        };
        match self.buffers.parse_object(text) {
            Ok(obj) => {
                if let Some(w) = managed::wrapper_of(&obj).filter(|_| unwrap) {
                    let o = self.record_pieces(bytes, out, |l, f| {
                        managed::decode_wrapper(w, &obj, l, f);
                        true
                    });
                    return Counted::Already(o.unwrap_or(Outcome::Kept { changed: true }));
                }
                Counted::Not(self.object_outcome(obj, out))
            }
            Err(e) => {
                if unwrap {
                    if let Some(o) = self.record_pieces(bytes, out, |l, f| managed::decode_loose(bytes, l, f)) {
                        return Counted::Already(o);
                    }
                }
                Counted::Not(self.bad(bytes, out, EventError::from(e)))
            }
        }
    }

    fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits { max_decoded_bytes: self.config.limits.max_batch_bytes }
    }

    /// Runs `decode` and processes every piece it finds: events through the policy (with their
    /// provider context), bad and non-audit pieces as bad records (passed through by default).
    /// `each` gets every piece's outcome and the bytes written for it. Returns `decode`'s answer
    /// (`false`: the input was not a managed-cluster format and nothing was processed).
    fn for_each_piece(
        &mut self,
        decode: impl FnOnce(DecodeLimits, &mut dyn FnMut(Piece<'_>)) -> bool,
        each: &mut dyn FnMut(&mut Pipeline, Outcome, &[u8]),
    ) -> bool {
        let limits = self.decode_limits();
        let mut buf: Vec<u8> = Vec::new();
        decode(limits, &mut |piece| {
            buf.clear();
            let outcome = match piece {
                Piece::Event { text, source } => {
                    self.source = (!source.is_empty()).then(|| source.to_json());
                    let outcome = match self.record_outcome(text, None, &mut buf, false) {
                        Counted::Already(o) | Counted::Not(o) => o,
                    };
                    self.source = None;
                    self.account(text.len(), 0, &buf, &outcome);
                    outcome
                }
                Piece::Bad { bytes, reason, kind } => {
                    match kind {
                        BadKind::Wrapper => self.counters.bad_wrapper += 1,
                        BadKind::Truncated => self.counters.truncated += 1,
                    }
                    let outcome = self.bad(bytes, &mut buf, reason);
                    self.account(bytes.len(), 0, &buf, &outcome);
                    outcome
                }
                Piece::NotAudit { bytes, what } => {
                    self.counters.not_audit += 1;
                    let outcome = self.bad(bytes, &mut buf, what);
                    self.account(bytes.len(), 0, &buf, &outcome);
                    outcome
                }
                Piece::Control => {
                    self.counters.control_messages += 1;
                    return;
                }
            };
            each(self, outcome, &buf);
        })
    }

    /// [`Pipeline::for_each_piece`] for one record: one piece is written as it is (a bad one as
    /// the whole record, byte for byte), several as an `EventList`. `None` when `decode` did not
    /// recognise the input.
    fn record_pieces<O: OutBuf + ?Sized>(
        &mut self,
        record: &[u8],
        out: &mut O,
        decode: impl FnOnce(DecodeLimits, &mut dyn FnMut(Piece<'_>)) -> bool,
    ) -> Option<Outcome> {
        let mut pieces: Vec<(Outcome, Vec<u8>)> = Vec::new();
        if !self.for_each_piece(decode, &mut |_, outcome, written| pieces.push((outcome, written.to_vec()))) {
            return None;
        }
        Some(match pieces.len() {
            0 => Outcome::Dropped { reason: DropReason::Filtered, rule: None },
            1 => {
                let (outcome, written) = pieces.pop().unwrap_or((Outcome::Kept { changed: true }, Vec::new()));
                match outcome {
                    Outcome::Bad { passed: true, .. } => out.put_raw(record),
                    _ => out.put_raw(&written),
                }
                outcome
            }
            _ => {
                if pieces.iter().all(|(o, _)| matches!(o, Outcome::Bad { .. })) {
                    // Nothing inside is an event: the record is one bad record, as it came.
                    let (outcome, _) = pieces.swap_remove(0);
                    if matches!(outcome, Outcome::Bad { passed: true, .. }) {
                        out.put_raw(record);
                    }
                    return Some(outcome);
                }
                let written: Vec<&[u8]> = pieces.iter().map(|(_, w)| w.as_slice()).filter(|w| !w.is_empty()).collect();
                if written.is_empty() {
                    return pieces.pop().map(|(o, _)| o);
                }
                write_event_list(&written, out);
                Outcome::Kept { changed: true }
            }
        })
    }

    fn object_outcome<O: OutBuf + ?Sized>(&mut self, obj: RawObject<'_>, out: &mut O) -> Outcome {
        let text = obj.text;
        // The event stays where `from_object` wrote it (`ref mut`): moving it costs a copy of
        // its ~400 bytes (in the fuel report, one instruction per byte).
        match Event::from_object(obj) {
            Ok(ref mut event) => {
                phase_mark(); // parsed
                let outcome = self.decide_and_write(event, out);
                self.buffers.recycle(event);
                outcome
            }
            Err(e) => self.bad(text.as_bytes(), out, e),
        }
    }

    fn decide_and_write<O: OutBuf + ?Sized>(&mut self, event: &Event, out: &mut O) -> Outcome {
        let decision = self.evaluator.evaluate_event(event);
        let verdict = apply::verdict(&decision, event);
        phase_mark(); // decided
        match verdict {
            Verdict::Drop(reason) => {
                // An agent's event-time clock counts every event (its watermark must move even
                // when the policy keeps nothing).
                if self.alerts.role() == Role::Agent {
                    if let Some(t) = event.stage_time_micros() {
                        self.alerts.advance_clock(t);
                    }
                }
                Outcome::Dropped { reason, rule: decision.rule }
            }
            Verdict::Keep(changes) => {
                self.write_kept(event, &changes, out);
                Outcome::Kept { changed: !changes.is_empty() }
            }
        }
    }

    fn write_kept<O: OutBuf + ?Sized>(&mut self, event: &Event, changes: &Changes, out: &mut O) {
        let alerting = !self.alerts.is_empty();
        let writing = self.enricher.enabled();
        // Alert rules read `kaudit.*` even when the enrichment is not written out; they read
        // the fields themselves, the JSON text is only for the output.
        // The event's times are read once, for the enrichment and the alert rules.
        let timing = self.enricher.config.timing;
        if !(writing || alerting) {
            phase_mark(); // enriched
            phase_mark(); // alerts evaluated
            return self.write_event(event, changes, out);
        }
        let times = if alerting || timing {
            EventTimes::read_with(event, timing, &mut self.minute)
        } else {
            EventTimes::default()
        };
        // Not in an `Option`: wrapping it costs a copy of its ~200 bytes.
        let mut enrichment = Enrichment::default();
        self.enricher.enrich_into(event, times, &mut enrichment);
        let e = &enrichment;
        phase_mark(); // enriched
        if alerting {
            let doc =
                EventDoc::enriched(event, &self.enricher.config.key, e, self.source.as_deref()).with_changes(changes);
            self.alerts.observe_at(event, times.stage, &doc, &mut self.alerts_out);
            cap_pending_alerts(&mut self.alerts_out, self.config.limits.max_pending_alerts, &mut self.counters);
        }
        phase_mark(); // alerts evaluated
        if !writing {
            return self.write_event(event, changes, out);
        }
        let (key, source) = (self.enricher.config.key.as_str(), self.source.as_deref());
        if event.obj.has_line_break() {
            // Pretty-printed input: emit one line per event. Through `dyn` (rare input): a
            // second `String` instance of the writer stops Fluent Bit's from being inlined
            // (~30 instructions a record).
            self.scratch.clear();
            write_enriched::<dyn OutBuf>(event, changes, key, &self.member_key, e, source, &mut self.scratch);
            return raw::compact_into(&self.scratch, out);
        }
        write_enriched(event, changes, key, &self.member_key, e, source, out);
    }

    /// Writes the kept `event` with `changes` and no enrichment.
    fn write_event<O: OutBuf + ?Sized>(&mut self, event: &Event, changes: &Changes, out: &mut O) {
        if event.obj.has_line_break() {
            // Pretty-printed input: emit one line per event.
            self.scratch.clear();
            apply::write_event(event, changes, &[], &mut self.scratch);
            raw::compact_into(&self.scratch, out);
        } else {
            apply::write_event(event, changes, &[], out);
        }
    }

    /// The enricher (for read-only commands that show enrichment, like `query` and reports).
    pub fn enricher(&self) -> &Enricher {
        &self.enricher
    }

    fn bad<O: OutBuf + ?Sized>(&mut self, bytes: &[u8], out: &mut O, error: impl Into<EventError>) -> Outcome {
        let passed = self.config.bad_records == BadRecords::Pass;
        if passed {
            out.put_raw(bytes);
        }
        Outcome::Bad { error: error.into(), passed }
    }

    /// A record over `limits.maxEventBytes`: written through unchanged, not parsed.
    fn oversized<O: OutBuf + ?Sized>(&mut self, bytes: &[u8], out: &mut O) -> Outcome {
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
        if managed::compress::is_gzip(input) {
            // A gzip input (a `.gz` file, a Kinesis record, a Firehose→S3 object): its members' records.
            self.process_pieces(1, out, report, |l, f| {
                managed::decode_gzip_input(input, l, f);
                true
            });
            return;
        }
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
        if !self.config.enabled {
            let outcome = self.process_record(bytes, out);
            return self.end_line(line, None, outcome, out, report);
        }
        if managed::compress::is_gzip(bytes) && bytes.len() <= self.config.limits.max_batch_bytes {
            // A gzip record (a `.gz` file, Kinesis record data): its members' records, one by one.
            self.process_pieces(line, out, report, |l, f| {
                managed::decode_gzip_input(bytes, l, f);
                true
            });
            return;
        }
        // One parse of the top level tells an event from a list (and serves the event itself).
        let framed = match std::str::from_utf8(bytes) {
            Ok(text) if bytes.len() <= self.config.limits.max_event_bytes => {
                frame_with(text, |text| self.buffers.parse_object(text))
            }
            Err(_) if bytes.len() <= self.config.limits.max_event_bytes => {
                if self.process_pieces(line, out, report, |l, f| managed::decode_loose(bytes, l, f)) {
                    return;
                }
                let outcome = self.process_record(bytes, out);
                return self.end_line(line, None, outcome, out, report);
            }
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
                if let Some(w) = managed::wrapper_of(&obj) {
                    self.process_pieces(line, out, report, |l, f| {
                        managed::decode_wrapper(w, &obj, l, f);
                        true
                    });
                    return;
                }
                let outcome = self.object_outcome(obj, out);
                self.account(bytes.len(), before, out, &outcome);
                self.end_line(line, None, outcome, out, report);
            }
            Framed::NotContainer(why) => {
                let outcome = self.bad(bytes, out, why);
                self.account(bytes.len(), before, out, &outcome);
                self.end_line(line, None, outcome, out, report);
            }
            Framed::Invalid(e) => {
                if self.process_pieces(line, out, report, |l, f| managed::decode_loose(bytes, l, f)) {
                    return;
                }
                let outcome = self.bad(bytes, out, EventError::from(e));
                self.account(bytes.len(), before, out, &outcome);
                self.end_line(line, None, outcome, out, report);
            }
        }
    }

    /// The pieces of a managed-cluster record in a stream, each written as one line and
    /// reported as an item of the record's line.
    fn process_pieces<O: OutBuf + ?Sized>(
        &mut self,
        line: usize,
        out: &mut O,
        report: &mut dyn FnMut(&RecordReport),
        decode: impl FnOnce(DecodeLimits, &mut dyn FnMut(Piece<'_>)) -> bool,
    ) -> bool {
        let mut item = 0;
        self.for_each_piece(decode, &mut |p, outcome, written| {
            out.put_raw(written);
            p.end_line(line, Some(item), outcome, out, report);
            item += 1;
        })
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
        report(&RecordReport { pos: RecordPos { line, item }, outcome });
    }

    /// Processes a webhook batch body and writes it back in the same framing: an EventList
    /// keeps its envelope with the kept items, an array stays an array, JSON lines stay lines.
    /// A body that cannot be framed at all is written through untouched.
    pub fn process_batch<O: OutBuf + ?Sized>(&mut self, body: &[u8], out: &mut O) -> BatchSummary {
        let mut summary = BatchSummary::default();
        if !self.config.enabled && body.len() > self.config.limits.max_batch_bytes {
            // Collection is off: not even an oversized body is forwarded.
            let outcome = self.process_record(body, out);
            summary.count(&outcome);
            return summary;
        }
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
        if framed.is_none() && managed::compress::is_gzip(body) {
            let limit = self.config.limits.max_batch_bytes;
            if let Some(decoded) =
                managed::compress::single_member(body, limit).filter(|d| !managed::compress::is_gzip(d))
            {
                // A compressed batch (an HTTP client's `Content-Encoding: gzip`, e.g. Vector's http
                // sink): its events keep their framing, JSON lines stay lines. One level only.
                return self.process_batch(&decoded, out);
            }
            self.batch_pieces(body, out, &mut summary, |l, f| {
                managed::decode_gzip_input(body, l, f);
                true
            });
            return summary;
        }
        match framed {
            Some(Framed::Object(obj)) if managed::wrapper_of(&obj).is_some() => {
                let w = managed::wrapper_of(&obj);
                self.batch_pieces(body, out, &mut summary, |l, f| {
                    if let Some(w) = w {
                        managed::decode_wrapper(w, &obj, l, f);
                    }
                    true
                });
            }
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
                            |i, _, _| if Some(i) == at { Edit::Replace(std::mem::take(&mut kept)) } else { Edit::Keep },
                            &[],
                        );
                    }
                }
            }
            _ => self.process_stream(body, out, &mut |r| summary.count(&r.outcome)),
        }
        summary
    }

    /// A managed-cluster body in a batch: its events forwarded as one `EventList`. A body that
    /// is one bad piece (a gzip body that does not decode) is forwarded as it came.
    fn batch_pieces<O: OutBuf + ?Sized>(
        &mut self,
        body: &[u8],
        out: &mut O,
        summary: &mut BatchSummary,
        decode: impl FnOnce(DecodeLimits, &mut dyn FnMut(Piece<'_>)) -> bool,
    ) {
        let mut items: Vec<Vec<u8>> = Vec::new();
        let mut whole_body_bad = false;
        self.for_each_piece(decode, &mut |_, outcome, written| {
            summary.count(&outcome);
            whole_body_bad = matches!(outcome, Outcome::Bad { passed: true, .. }) && written == body;
            if !written.is_empty() {
                items.push(written.to_vec());
            }
        });
        if whole_body_bad && items.len() == 1 {
            return out.put_raw(body);
        }
        let items: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        write_event_list(&items, out);
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
        #[derive(Serialize)]
        struct Metrics<'a> {
            #[serde(flatten)]
            counters: &'a Counters,
            alerts: AlertStats,
            #[serde(skip_serializing_if = "Option::is_none")]
            aggregation: Option<serde_json::Value>,
        }
        // Single role (the default) keeps its metrics as they were; the other roles add theirs.
        let aggregation = self.alerts.aggregation_json().and_then(|j| serde_json::from_str(&j).ok());
        serde_json::to_string(&Metrics { counters: &self.counters, alerts: self.alerts.stats(), aggregation })
            .unwrap_or_default()
    }

    /// `alerts.role` of the config.
    pub fn alert_role(&self) -> Role {
        self.alerts.role()
    }

    /// Agent role: the partial and watermark records emitted since the last call, each a JSON
    /// object (no trailing newline), for the host to send to the aggregator (docs/SCALING.md).
    pub fn take_partials(&mut self) -> Vec<String> {
        self.alerts.take_partials()
    }

    /// Agent role: names this run of the agent, sent as `inc` with every record's sequence
    /// number `seq` (docs/SCALING.md, "Order per agent"). A host calls it once, before the
    /// first event, with something that differs at every start of the process: its start time
    /// and a random nonce (the core has neither clock nor entropy). Without it the run is
    /// named by the first event time the agent reads.
    pub fn set_agent_incarnation(&mut self, id: &str) {
        self.alerts.set_agent_incarnation(id);
    }

    /// Aggregator role: merges one record: a partial or watermark record, or a host's carrier
    /// of several (`{"kaudit_partials":[…],"kaudit_agent":"…"}`, the agent name overriding the
    /// records' own). Alerts it completes are queued for [`Pipeline::take_alerts`]. Returns
    /// the number of records merged, or why the record is not one.
    pub fn merge_partials(&mut self, record: &[u8]) -> Result<usize, PartialError> {
        let value: serde_json::Value =
            serde_json::from_slice(record).map_err(|e| PartialError::NotJson(e.to_string()))?;
        let agent = value.get(PARTIALS_AGENT_KEY).and_then(|a| a.as_str()).filter(|a| !a.is_empty());
        let result = match value.get(PARTIALS_KEY) {
            Some(serde_json::Value::Array(items)) => {
                let mut first_error = None;
                let mut merged = 0;
                for item in items {
                    match self.alerts.merge(item, agent, &mut self.alerts_out) {
                        Ok(()) => merged += 1,
                        Err(e) => first_error = first_error.or(Some(e)),
                    }
                }
                first_error.map_or(Ok(merged), Err)
            }
            Some(_) => Err(PartialError::Invalid(format!("{PARTIALS_KEY} is not a list"))),
            None => self.alerts.merge(&value, agent, &mut self.alerts_out).map(|()| 1),
        };
        cap_pending_alerts(&mut self.alerts_out, self.config.limits.max_pending_alerts, &mut self.counters);
        result
    }

    /// The input ended: an agent emits the partials of its open periods; an aggregator raises
    /// the alerts of every partial it still holds. A host that knows its input is finite (the
    /// CLI) calls this once at the end; a streaming host never needs to.
    pub fn finish_alerts(&mut self) {
        self.alerts.finish(&mut self.alerts_out);
        cap_pending_alerts(&mut self.alerts_out, self.config.limits.max_pending_alerts, &mut self.counters);
    }

    /// Whether the config has any alert rule (hosts that forward events to a central alert
    /// consumer skip the forwarding when it has none).
    pub fn alerts_configured(&self) -> bool {
        !self.alerts.is_empty()
    }

    /// An [`Pipeline::alert_worker`]'s alert steps since the last call, for the central
    /// consumer (empty when nothing was kept, or the config raises no alerts).
    pub fn take_alert_steps(&mut self) -> Vec<u8> {
        self.alerts.take_steps()
    }

    /// The central consumer: applies the alert steps of an [`Pipeline::alert_worker`] of the
    /// same config, in the order the worker kept the events. Returns the number of events
    /// applied; a buffer of other alert rules (a worker of an older config) or not a steps
    /// buffer is refused whole.
    pub fn apply_alert_steps(&mut self, steps: &[u8]) -> Result<u64, StepsError> {
        if !self.config.enabled {
            return Ok(0);
        }
        let applied = self.alerts.apply_steps(steps, &mut self.alerts_out);
        cap_pending_alerts(&mut self.alerts_out, self.config.limits.max_pending_alerts, &mut self.counters);
        applied
    }

    /// Feeds one already processed (kept) event to the alert rules only; nothing is written.
    pub fn observe_for_alerts(&mut self, event: &[u8]) {
        if !self.config.enabled {
            return;
        }
        let Ok(text) = std::str::from_utf8(event) else { return };
        let Ok(ev) = Event::parse(text) else { return };
        let doc = EventDoc::new(&ev, &self.enricher.config.key, None);
        self.alerts.observe(&ev, &doc, &mut self.alerts_out);
        cap_pending_alerts(&mut self.alerts_out, self.config.limits.max_pending_alerts, &mut self.counters);
    }
}

/// A phase boundary of one record, for the per-phase instruction breakdown: with the
/// `phase-marks` feature (measurement builds), a call of the host's hook (the Fluent Bit module
/// makes it a WASI `sched_yield`, which the fuel report timestamps); otherwise nothing. A kept
/// event passes four (parsed, decided, enriched, alerts evaluated), a dropped one two.
#[inline(always)]
fn phase_mark() {
    #[cfg(feature = "phase-marks")]
    if let Some(hook) = PHASE_HOOK.get() {
        hook();
    }
}

#[cfg(feature = "phase-marks")]
static PHASE_HOOK: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets the function called at each phase boundary of a record (feature `phase-marks`,
/// measurement builds only; the first call wins).
#[cfg(feature = "phase-marks")]
#[doc(hidden)]
pub fn set_phase_hook(hook: fn()) {
    let _ = PHASE_HOOK.set(hook);
}

/// The member of a host's carrier record that holds partial and watermark records.
pub const PARTIALS_KEY: &str = "kaudit_partials";
/// The member of a carrier that names the agent (overrides `alerts.aggregation.agentId`).
pub const PARTIALS_AGENT_KEY: &str = "kaudit_agent";

/// The outcome of every record while collection is off (`enabled: false`).
const DISABLED: Outcome = Outcome::Dropped { reason: DropReason::Disabled, rule: None };

/// How a record's outcome was counted.
enum Counted {
    /// Not yet: the caller accounts for it.
    Not(Outcome),
    /// A managed-cluster wrapper: each event inside was counted.
    Already(Outcome),
}

/// Writes `event` with `changes` and the enrichment `e` as its last member under `key`
/// (`member_key` is `,"<key>":{`, escaped once per pipeline), with `source` inside it: what
/// [`apply::write_event`] writes with the enrichment's JSON appended. The members go straight
/// into `out`, whatever it is (Fluent Bit's and the CLI's `String`, the component's and
/// Envoy's `Vec<u8>`): no text of its own is built and copied in (an interpreter pays per byte).
fn write_enriched<O: OutBuf + ?Sized>(
    event: &Event,
    changes: &Changes,
    key: &str,
    member_key: &str,
    e: &Enrichment<'_>,
    source: Option<&str>,
    out: &mut O,
) {
    edit::write_event_then(event, changes, std::iter::once(key), out, |out, first| {
        out.put(if first { member_key.get(1..).unwrap_or_default() } else { member_key });
        match source {
            None => e.write_members(out, "}}"),
            Some(source) => e.write_members_with_source(out, source, "}}"),
        }
    });
}

/// Writes `items` (each a written event or a passed-through record) as an `audit.k8s.io/v1`
/// EventList. A passed-through record that is not JSON becomes a JSON string item, so the list
/// stays valid JSON.
fn write_event_list<O: OutBuf + ?Sized>(items: &[&[u8]], out: &mut O) {
    out.put("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.put(",");
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(item).is_ok() {
            out.put_raw(item);
        } else {
            let mut s = String::new();
            raw::write_json_str(&mut s, &String::from_utf8_lossy(item));
            out.put(&s);
        }
    }
    out.put("]}");
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Hosts catch panics around a pipeline (wasm-bindgen's exports of the npm package require
    /// `RefUnwindSafe`), and move it to the thread that runs it.
    #[test]
    fn a_pipeline_is_unwind_safe_and_send() {
        fn check<T: std::panic::RefUnwindSafe + std::panic::UnwindSafe + Send>() {}
        check::<Pipeline>();
    }

    #[test]
    fn metrics_json_keys_are_stable() {
        let c = Counters { read: 9, bytes_out: 7, ..Counters::default() };
        assert_eq!(
            c.to_json(),
            "{\"read\":9,\"kept\":0,\"stripped\":0,\"dropped\":0,\"droppedLevelNone\":0,\"droppedOmittedStage\":0,\"droppedFiltered\":0,\"droppedDisabled\":0,\"bad\":0,\"badWrapper\":0,\"truncated\":0,\"notAudit\":0,\"oversized\":0,\"oversizedBatches\":0,\"alertsDropped\":0,\"controlMessages\":0,\"bytesIn\":0,\"bytesOut\":7}"
        );
        let p = Pipeline::embedded_default();
        let alerts = "\"alerts\":{\"events\":0,\"matches\":0,\"alerts\":0,\"suppressed\":0,\"groups\":0,\"groupsEvicted\":0,\"lateEvents\":0,\"distinctOverflow\":0}";
        let mut want = p.counters().to_json();
        want.pop();
        assert_eq!(p.metrics_json(), format!("{want},{alerts}}}"));
    }

    #[test]
    fn a_string_output_gets_the_bytes_any_other_output_gets() {
        // Both take the one writer, generic over the output: the same bytes, compact or
        // pretty-printed, a member named like the key, managed-cluster records (their events
        // carry `kaudit.source`), with alerts or not.
        let log = include_str!("../tests/fixtures/sample-audit.log");
        let managed = include_str!("../tests/conformance/vectors/managed-clusters/input.jsonl");
        let mut records: Vec<String> = log.lines().map(str::to_string).collect();
        records.extend(log.lines().take(3).map(|l| l.replacen(",\"", ",\n \"", 2)));
        records.extend(log.lines().take(3).map(|l| l.replacen("\"auditID\"", "\"kaudit\"", 1)));
        records.extend(managed.lines().map(str::to_string));
        let no_alerts = {
            let mut c = Config::embedded_default();
            c.alerts = crate::alert::AlertConfig::default();
            c
        };
        let mut sourced = 0;
        for config in [Config::embedded_default(), no_alerts] {
            let (mut a, mut b) = (Pipeline::new(config.clone()), Pipeline::new(config));
            for r in &records {
                let (mut text, mut bytes) = (String::new(), Vec::new());
                assert_eq!(a.process_record(r.as_bytes(), &mut text), b.process_record(r.as_bytes(), &mut bytes));
                assert_eq!(text.as_bytes(), bytes.as_slice(), "{r}");
                assert_eq!(a.take_alerts(), b.take_alerts());
                sourced += usize::from(text.contains(",\"source\":{"));
            }
            assert_eq!(a.counters(), b.counters());
        }
        assert!(sourced >= 10, "{sourced} records with kaudit.source");
    }

    /// `text` pretty-printed: a line break and an indent after its opening brace and after
    /// every comma outside strings (compacting it gives `text` back).
    fn pretty(text: &str) -> String {
        let mut out = String::new();
        let mut from = 0;
        for (i, b) in raw::outside_strings(text) {
            if b == b',' || (i == 0 && b == b'{') {
                out.push_str(&text[from..=i]);
                out.push_str("\n  ");
                from = i + 1;
            }
        }
        out.push_str(&text[from..]);
        out
    }

    #[test]
    fn a_pretty_printed_event_is_written_as_its_compact_text_is() {
        // Pretty-printed input is written into the scratch buffer, then compacted into the
        // output: the line its compact text gives, enrichment and alerts included.
        let log = include_str!("../tests/fixtures/sample-audit.log");
        let no_alerts = {
            let mut c = Config::embedded_default();
            c.alerts = crate::alert::AlertConfig::default();
            c
        };
        let policy_only = {
            let mut c = no_alerts.clone();
            c.enrichment.enabled = false;
            c
        };
        for config in [Config::embedded_default(), no_alerts, policy_only] {
            let (mut a, mut b) = (Pipeline::new(config.clone()), Pipeline::new(config));
            for line in log.lines() {
                let p = pretty(line);
                assert!(p.contains('\n'));
                assert!(!raw::has_line_break(line), "{line}");
                let (mut compact, mut pretty_text, mut pretty_bytes) = (String::new(), String::new(), Vec::new());
                let outcome = a.process_record(line.as_bytes(), &mut compact);
                assert_eq!(b.process_record(p.as_bytes(), &mut pretty_text), outcome);
                assert_eq!(pretty_text, compact, "{p}");
                assert_eq!(a.take_alerts(), b.take_alerts());
                let mut c = Pipeline::new(b.config().clone());
                assert_eq!(c.process_record(p.as_bytes(), &mut pretty_bytes), outcome);
                assert_eq!(pretty_bytes, compact.as_bytes(), "{p}");
            }
        }
    }

    #[test]
    fn the_enrichment_is_written_in_place_as_an_appended_member() {
        // Compact events, whitespace and line breaks between members, a member named like the
        // key, an empty object; every kind of change; keys that need escaping; enrichments
        // empty, ending in a string value or another value, with a provider context or not;
        // `String` and `Vec<u8>` outputs: what `write_event` writes with the enrichment's JSON
        // (and the context added to it as its last member) appended.
        let log = include_str!("../tests/fixtures/sample-audit.log");
        let mut lines: Vec<String> = log.lines().map(str::to_string).collect();
        lines.extend(log.lines().take(5).map(|l| l.replacen(",\"", ", \"", 3)));
        lines.extend(log.lines().take(3).map(pretty));
        lines.extend(log.lines().take(5).map(|l| l.replacen("\"auditID\"", "\"kaudit\"", 1)));
        lines.push(r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","stage":"ResponseComplete","verb":"get","requestObject":{"metadata":{"managedFields":[1]}}}"#.into());
        let levels = [None, Some(crate::event::Level::Metadata)];
        let enricher = Enricher::default();
        let account_only = Enrichment { account: Some("a\"b"), ..Enrichment::default() };
        let tags_only = Enrichment {
            tags: enricher.enrich(&Event::parse(r#"{"stage":"ResponseComplete","verb":"delete"}"#).unwrap()).tags,
            ..Enrichment::default()
        };
        assert!(!tags_only.tags.is_empty());
        for line in &lines {
            let event = Event::parse(line).unwrap();
            let enrichments = [Enrichment::default(), account_only.clone(), tags_only.clone(), enricher.enrich(&event)];
            for (key, e, source) in ["kaudit", "k\"ey", "level"].into_iter().flat_map(|k| {
                enrichments
                    .iter()
                    .flat_map(move |e| [None, Some(r#"{"provider":"eks","cluster":"c"}"#)].map(|s| (k, e, s)))
            }) {
                let mut member_key = String::new();
                edit::write_member_key(&mut member_key, key, false);
                member_key.push('{');
                let mut json = String::new();
                e.write_json(&mut json);
                if let Some(source) = source {
                    crate::enrich::add_member(&mut json, "source", source);
                }
                for (new_level, bits) in levels.iter().flat_map(|l| (0..8u8).map(move |b| (*l, b))) {
                    let changes = Changes {
                        new_level,
                        remove_request_object: bits & 1 != 0,
                        remove_response_object: bits & 2 != 0,
                        strip_managed_fields: bits & 4 != 0,
                    };
                    let mut theirs = String::new();
                    apply::write_event(&event, &changes, &[(key, &json)], &mut theirs);
                    let (mut text, mut bytes) = (String::new(), Vec::new());
                    write_enriched(&event, &changes, key, &member_key, e, source, &mut text);
                    write_enriched(&event, &changes, key, &member_key, e, source, &mut bytes);
                    assert_eq!(text, theirs, "{line} {key} {changes:?} {source:?}");
                    assert_eq!(bytes, theirs.as_bytes(), "{line} {key} {changes:?} {source:?}");
                }
            }
        }
    }
}
