//! The npm package's engine: wasm-bindgen bindings over the kaudit core, a thin adapter.
//!
//! `Engine` owns one [`Pipeline`] (policy, enrichment, alerts: what `kaudit run` does) and one
//! [`ReportBuilder`] (what `kaudit report` aggregates). Input arrives as text or bytes, whole
//! (`push`) or in chunks (`pushChunk` + `finish`, cut into whole records by
//! [`kaudit::Feed`]); every record goes to both. Reports cover every audit event
//! as recorded (like `kaudit report`); alerts and the kept/dropped counts follow the config's
//! policy (like `kaudit run`). Reports are returned as plain JS objects with exactly the
//! fields of `kaudit report --json` (`reportJson` returns that very text).
//!
//! No panic is reachable from input (fuzzed, docs/RELIABILITY.md). If one happens anyway (a bug),
//! the package is built with `panic=unwind` (xtask/src/js.rs), so the record being processed is
//! skipped, the rest of the input is processed, and the call then throws an `Error` naming the
//! record: the engine stays usable for the next push instead of aborting the instance.

use std::panic::{catch_unwind, AssertUnwindSafe};

use js_sys::{Array, ArrayBuffer, Uint8Array, JSON};
use kaudit::report::{BuilderOptions, Filter, Report, ReportBuilder};
use kaudit::Feed;
use kaudit::{NoFiles, Pipeline};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

/// Default raw-text budget in the browser: enough for ad-hoc queries over files of a few
/// hundred MB of events without a standing query.
const DEFAULT_RAW_BYTES: usize = 256 << 20;

/// With the `fault-injection` feature (the fault test's build, `pkg-fault/`), a record containing
/// this panics inside the engine.
const FAULT_TRIGGER: &[u8] = b"kaudit-fault-injection:panic";

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct EngineOptions {
    /// Bytes of raw event text kept so any query can be applied later (0: none).
    raw_bytes: Option<usize>,
    /// Bytes of capped per-event detail strings kept (oldest evicted first).
    detail_bytes: Option<usize>,
    /// Queries evaluated at push time (free to use as `filter.query` later).
    standing_queries: Vec<String>,
}

/// Running totals returned by `push`, `pushChunk`, `finish` and `counts`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    /// Audit events in the report.
    events: u64,
    /// Records that are not audit events.
    bad: u64,
    /// Events the config's policy keeps / drops (as `kaudit run`).
    kept: u64,
    dropped: u64,
    /// Alerts raised and not yet taken with `alerts()`.
    alerts: usize,
    /// Bytes read so far.
    bytes: u64,
    /// Bytes waiting for the rest of their record (chunked input).
    pending_bytes: usize,
    /// Records skipped because processing them panicked (a bug; each call that met one threw).
    internal_errors: u64,
    /// Oldest and newest event time read (RFC 3339, `null` before the first timed event): a
    /// dashboard tells live data (newest event just now) from a recorded file with it.
    oldest: Option<String>,
    newest: Option<String>,
}

/// The kaudit engine: one config, one report, one alert stream.
#[wasm_bindgen]
pub struct Engine {
    pipeline: Pipeline,
    /// Asserted unwind-safe: in the `panic=unwind` build wasm-bindgen catches a panic at every
    /// export, which needs `Engine: RefUnwindSafe`, and the builder's query cache is a `RefCell`.
    /// A panic inside a record is caught by [`Engine::guarded`] first; one anywhere else leaves at
    /// worst that cache (its borrow is released by the unwind) or a half-pushed row behind.
    builder: AssertUnwindSafe<ReportBuilder>,
    feed: Feed,
    warnings: Vec<String>,
    alerts: Vec<String>,
    bytes: u64,
    scratch: String,
    /// A gzip input (an EKS Firehose→S3 object, a CloudWatch export, a `.gz` log) being
    /// collected: it is decoded whole, one gzip member at a time, when the input ends.
    gzip: Option<Vec<u8>>,
    /// Records read so far (numbering for error messages).
    records: u64,
    internal_errors: u64,
    /// The panics met during the current call, reported when it returns.
    panics: Vec<String>,
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Text or bytes from JS: a string, a Uint8Array (or other typed view) or an ArrayBuffer.
fn input_bytes(input: &JsValue) -> Result<Vec<u8>, JsError> {
    if let Some(s) = input.as_string() {
        return Ok(s.into_bytes());
    }
    if let Some(a) = input.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(b) = input.dyn_ref::<ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    if ArrayBuffer::is_view(input) {
        let view: &js_sys::Object = input.unchecked_ref();
        let buffer =
            js_sys::Reflect::get(view, &"buffer".into()).map_err(|_| JsError::new("expected a string or bytes"))?;
        let offset =
            js_sys::Reflect::get(view, &"byteOffset".into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) as u32;
        let length =
            js_sys::Reflect::get(view, &"byteLength".into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) as u32;
        return Ok(Uint8Array::new_with_byte_offset_and_length(&buffer, offset, length).to_vec());
    }
    Err(JsError::new("expected a string, Uint8Array or ArrayBuffer"))
}

/// A JS value (object, string, undefined) as JSON text for the core's parsers.
fn json_text(value: &JsValue) -> Result<String, JsError> {
    if value.is_undefined() || value.is_null() {
        return Ok(String::new());
    }
    if let Some(s) = value.as_string() {
        return Ok(s);
    }
    let text = JSON::stringify(value).map_err(|_| JsError::new("cannot convert the argument to JSON"))?;
    Ok(text.as_string().unwrap_or_default())
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(js_err)
}

#[wasm_bindgen]
impl Engine {
    /// `new Engine(configYaml?, options?)`: the embedded default config when `configYaml` is
    /// absent. Files a config refers to (policyFile, GeoIP) must be inlined: the browser has no
    /// filesystem. Throws with `file:line:col: field: message` on a bad config.
    #[wasm_bindgen(constructor)]
    pub fn new(config_yaml: Option<String>, options: JsValue) -> Result<Engine, JsError> {
        let (pipeline, warnings) = match config_yaml.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(text) => {
                let (p, w) = Pipeline::from_config_text(text, "config.yaml", &NoFiles).map_err(js_err)?;
                (p, w.iter().map(|d| d.to_string()).collect())
            }
            None => (Pipeline::embedded_default(), Vec::new()),
        };
        let opts_text = json_text(&options)?;
        let opts: EngineOptions = if opts_text.trim().is_empty() {
            EngineOptions::default()
        } else {
            serde_json::from_str(&opts_text).map_err(|e| js_err(format!("options: {e}")))?
        };
        let mut builder = AssertUnwindSafe(ReportBuilder::new(BuilderOptions {
            raw_bytes: opts.raw_bytes.unwrap_or(DEFAULT_RAW_BYTES),
            detail_bytes: opts.detail_bytes.unwrap_or(BuilderOptions::default().detail_bytes),
            enrichment_key: pipeline.enricher().config.key.clone(),
        }));
        for q in &opts.standing_queries {
            let query = kaudit::query::Query::parse(q).map_err(|e| js_err(format!("standingQueries: {q:?}: {e}")))?;
            builder.add_standing_query(query).map_err(js_err)?;
        }
        let feed = Feed::with_max_event_bytes(pipeline.config().limits.max_event_bytes);
        Ok(Engine {
            pipeline,
            builder,
            feed,
            warnings,
            alerts: Vec::new(),
            bytes: 0,
            scratch: String::new(),
            gzip: None,
            records: 0,
            internal_errors: 0,
            panics: Vec::new(),
        })
    }

    /// The config's warnings (unknown policy fields), as `file:line:col: message` strings.
    #[wasm_bindgen(getter)]
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// Adds complete input (JSON lines, EventList, JSON array, pretty-printed events; EKS, GKE
    /// and AKS exports as delivered, gzip included, docs/MANAGED.md) and returns the running counts.
    pub fn push(&mut self, input: JsValue) -> Result<JsValue, JsError> {
        let bytes = input_bytes(&input)?;
        self.feed_bytes(&bytes);
        self.finish_feed();
        self.take_panics()?;
        self.counts()
    }

    /// Adds one chunk of a larger input; a record cut by the chunk boundary waits for the next
    /// chunk. Call `finish()` after the last chunk.
    #[wasm_bindgen(js_name = pushChunk)]
    pub fn push_chunk(&mut self, input: JsValue) -> Result<JsValue, JsError> {
        let bytes = input_bytes(&input)?;
        self.feed_bytes(&bytes);
        self.take_panics()?;
        self.counts()
    }

    /// Processes whatever a chunked input left pending.
    pub fn finish(&mut self) -> Result<JsValue, JsError> {
        self.finish_feed();
        self.take_panics()?;
        self.counts()
    }

    /// Running counts (events, bad, kept, dropped, alerts waiting, bytes, pendingBytes).
    pub fn counts(&self) -> Result<JsValue, JsError> {
        let c = self.pipeline.counters();
        let (oldest, newest) = self.builder.time_span();
        to_js(&Counts {
            events: self.builder.len() as u64,
            bad: self.builder.bad(),
            kept: c.kept,
            dropped: c.dropped,
            alerts: self.alerts.len(),
            bytes: self.bytes,
            pending_bytes: self.feed.pending(),
            internal_errors: self.internal_errors,
            oldest,
            newest,
        })
    }

    /// Every counter of the pipeline (limit hits included) and the alert engine's statistics:
    /// the object every kaudit host reports (`kaudit run --metrics`, docs/RELIABILITY.md).
    pub fn metrics(&self) -> Result<JsValue, JsError> {
        JSON::parse(&self.pipeline.metrics_json()).map_err(|_| JsError::new("metrics are not JSON"))
    }

    /// The report for `filter` (docs/REPORTS.md), as a plain object. Throws on a bad filter.
    pub fn report(&self, filter: JsValue) -> Result<JsValue, JsError> {
        to_js(&self.build_report(&filter)?)
    }

    /// The report as JSON text, byte for byte what `kaudit report --json` prints.
    #[wasm_bindgen(js_name = reportJson)]
    pub fn report_json(&self, filter: JsValue) -> Result<String, JsError> {
        Ok(self.build_report(&filter)?.to_json())
    }

    /// Alerts raised since the last call, each a plain object.
    pub fn alerts(&mut self) -> Result<Array, JsError> {
        let out = Array::new();
        for a in std::mem::take(&mut self.alerts) {
            out.push(&JSON::parse(&a).map_err(|_| JsError::new("alert is not JSON"))?);
        }
        Ok(out)
    }

    /// The policy decision for one event (text or bytes of one JSON object):
    /// `{auditID, stage, level, omitStages, omitManagedFields, rule}`.
    pub fn explain(&self, event: JsValue) -> Result<JsValue, JsError> {
        let bytes = input_bytes(&event)?;
        let mut result: Option<Result<String, String>> = None;
        self.pipeline.explain_stream(&bytes, &mut |e| {
            if result.is_none() {
                result = Some(e.to_json().ok_or_else(|| e.result.err().map(ToString::to_string).unwrap_or_default()));
            }
        });
        let text = result.ok_or_else(|| JsError::new("no event in the input"))?.map_err(js_err)?;
        JSON::parse(&text).map_err(|_| JsError::new("explanation is not JSON"))
    }

    /// Approximate bytes held by the report store (rows, details, raw text, strings).
    #[wasm_bindgen(js_name = memoryBytes)]
    pub fn memory_bytes(&self) -> f64 {
        self.builder.memory_bytes() as f64
    }

    /// The package version.
    pub fn version() -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
}

impl Engine {
    fn feed_bytes(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        // Text input never holds the gzip magic bytes: at the start of an input they mean gzip.
        if let Some(gzip) = &mut self.gzip {
            return gzip.extend_from_slice(bytes);
        }
        // (Its first byte alone decides, so a 1-byte first chunk is collected too.)
        if self.feed.pending() == 0 && bytes.first() == Some(&kaudit::GZIP_MAGIC[0]) {
            self.gzip = Some(bytes.to_vec());
            return;
        }
        let mut feed = std::mem::take(&mut self.feed);
        feed.push(bytes, &mut |record| self.guarded(record.bytes, record.line));
        self.feed = feed;
    }

    fn finish_feed(&mut self) {
        if let Some(gzip) = self.gzip.take() {
            self.guarded(&gzip, 1);
        }
        let mut feed = std::mem::take(&mut self.feed);
        feed.finish(&mut |record| self.guarded(record.bytes, record.line));
        self.feed = feed;
    }

    /// [`Engine::record`], with a panic caught: the record is skipped and remembered for the
    /// call's error, and the next record is processed as usual.
    fn guarded(&mut self, bytes: &[u8], line: usize) {
        self.records += 1;
        let caught = catch_unwind(AssertUnwindSafe(|| {
            if cfg!(feature = "fault-injection") && bytes.windows(FAULT_TRIGGER.len()).any(|w| w == FAULT_TRIGGER) {
                panic!("fault injection: the record contains {}", String::from_utf8_lossy(FAULT_TRIGGER));
            }
            self.record(bytes)
        }));
        if let Err(panic) = caught {
            self.internal_errors += 1;
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            self.panics.push(format!("record {} (line {line}{}): {message}", self.records, audit_id(bytes)));
        }
    }

    /// The error for the panics met during this call, if any.
    fn take_panics(&mut self) -> Result<(), JsError> {
        if self.panics.is_empty() {
            return Ok(());
        }
        let panics = std::mem::take(&mut self.panics);
        let more = if panics.len() > 1 { format!(" (and {} more records)", panics.len() - 1) } else { String::new() };
        Err(JsError::new(&format!(
            "kaudit internal error on {}{more}: the record was skipped and the rest of the input processed; \
             the engine stays usable (please report this bug)",
            panics[0]
        )))
    }

    /// One framed record: into the report, and through the pipeline for alerts and counts.
    fn record(&mut self, bytes: &[u8]) {
        self.builder.push_input(bytes, self.pipeline.enricher());
        self.scratch.clear();
        self.pipeline.process_document(bytes, 0, &mut self.scratch, &mut |_| {});
        self.alerts.extend(self.pipeline.take_alerts());
    }

    fn build_report(&self, filter: &JsValue) -> Result<Report, JsError> {
        let filter = Filter::from_json(&json_text(filter)?).map_err(js_err)?;
        self.builder.report(&filter).map_err(js_err)
    }
}

/// `, auditID …` when the record names one (found by text: the record may not even parse).
fn audit_id(bytes: &[u8]) -> String {
    const KEY: &[u8] = b"\"auditID\":\"";
    let Some(at) = bytes.windows(KEY.len()).position(|w| w == KEY) else { return String::new() };
    let rest = &bytes[at + KEY.len()..];
    let id: Vec<u8> = rest.iter().take_while(|b| **b != b'"').take(64).copied().collect();
    format!(", auditID {}", String::from_utf8_lossy(&id))
}
