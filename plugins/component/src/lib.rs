//! kaudit as a WebAssembly component: the thin adapter between the WIT world
//! `kaudit:audit/audit@0.2.0` (`wit/`: types, engine interfaces, worlds) and the core [`kaudit::Pipeline`].
//!
//! Built for `wasm32-wasip2` (`cargo build -p kaudit-component --target wasm32-wasip2 --profile
//! wasm` -> `kaudit_component.wasm`). Everything here converts types; every decision is the
//! core's. Files a config refers to are read through wasi:filesystem (the host's preopens).

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use ::kaudit::DropReason;
use ::kaudit::{explain_json, BatchSummary};
use ::kaudit::{Config, Decision, Event, EventError, FileSource, Level, Outcome, Pipeline};
use ::kaudit::{Diagnostic, DiagnosticKind};

/// The generated bindings (in a module: the WIT namespace `kaudit` would shadow the core crate).
mod bindings {
    wit_bindgen::generate!({
        world: "audit",
        path: "../../wit",
    });
}

use bindings::exports::kaudit::audit::lines;
use bindings::exports::kaudit::audit::pipeline as wit;
use bindings::exports::kaudit::audit::types as t;

/// The name a config is given in messages when the caller does not name it.
const CONFIG_NAME: &str = "config.yaml";

struct Component;

// Exported only from the wasm build: the export names (`kaudit:audit/lines@0.2.0#...`) are not
// valid symbol names for a native linker, and natively this crate is only type-checked.
#[cfg(target_arch = "wasm32")]
bindings::export!(Component with_types_in bindings);

/// Reads the files a config refers to through wasi:filesystem: relative paths are resolved
/// against `base` (empty: the current directory).
struct WasiFiles {
    base: PathBuf,
}

impl FileSource for WasiFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, ::kaudit::FileError> {
        let full = self.base.join(path); // an absolute `path` replaces `base`
        std::fs::read(&full).map_err(|e| ::kaudit::FileError::new(full.display().to_string(), e))
    }
}

fn load(config: &str, name: &str) -> Result<(Pipeline, Vec<Diagnostic>), Vec<t::ConfigError>> {
    Pipeline::from_config_text(config, name, &WasiFiles { base: PathBuf::new() })
        .map_err(|e| e.errors.iter().map(config_error).collect())
}

/// Saturating conversion for indexes and positions (WIT has no usize).
fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn config_error(d: &Diagnostic) -> t::ConfigError {
    t::ConfigError {
        file: d.file.clone(),
        line: u32_of(d.pos.line),
        column: u32_of(d.pos.col),
        field: d.field.clone(),
        message: d.message.clone(),
    }
}

fn error_kind(k: DiagnosticKind) -> t::ErrorKind {
    match k {
        DiagnosticKind::Syntax => t::ErrorKind::Syntax,
        DiagnosticKind::UnknownKey => t::ErrorKind::UnknownKey,
        DiagnosticKind::DuplicateKey => t::ErrorKind::DuplicateKey,
        DiagnosticKind::Type => t::ErrorKind::WrongType,
        DiagnosticKind::File => t::ErrorKind::File,
        // `Value` and any kind the core adds later: a value that is not allowed.
        _ => t::ErrorKind::InvalidValue,
    }
}

/// A config problem as the one-shot functions report it.
fn error_of(d: &Diagnostic) -> t::Error {
    t::Error {
        kind: error_kind(d.kind),
        file: d.file.clone(),
        line: u32_of(d.pos.line),
        column: u32_of(d.pos.col),
        field: d.field.clone(),
        message: d.message.clone(),
    }
}

/// A file the one-shot functions cannot read (the config or the input).
fn file_error(path: &str, e: &std::io::Error) -> Vec<t::Error> {
    vec![t::Error {
        kind: t::ErrorKind::File,
        file: path.to_string(),
        line: 0,
        column: 0,
        field: String::new(),
        message: e.to_string(),
    }]
}

/// A record passed by value that is not an audit event.
fn event_error(e: EventError) -> t::Error {
    t::Error {
        kind: t::ErrorKind::Event,
        file: String::new(),
        line: 0,
        column: 0,
        field: e.field.unwrap_or_default(),
        message: e.message,
    }
}

fn level(l: Level) -> t::Level {
    match l {
        Level::None => t::Level::None,
        Level::Metadata => t::Level::Metadata,
        Level::Request => t::Level::Request,
        Level::RequestResponse => t::Level::RequestResponse,
    }
}

fn drop_reason(r: DropReason) -> t::DropReason {
    match r {
        DropReason::LevelNone => t::DropReason::LevelNone,
        DropReason::OmittedStage => t::DropReason::OmittedStage,
        DropReason::Filtered => t::DropReason::Filtered,
        DropReason::Disabled => t::DropReason::Disabled,
    }
}

/// `written` is what the core appended to the output for this record.
fn outcome(o: Outcome, written: Vec<u8>) -> t::Outcome {
    match o {
        Outcome::Kept { changed } => t::Outcome::Kept(t::KeptEvent { event: written, changed }),
        Outcome::Dropped { reason, rule } => {
            t::Outcome::Dropped(t::DroppedEvent { reason: drop_reason(reason), rule: rule.map(u32_of) })
        }
        Outcome::Bad { error, passed } => {
            t::Outcome::Bad(t::BadRecord { error: error.to_string(), passed: passed.then_some(written) })
        }
        Outcome::Oversized => t::Outcome::Oversized(written),
    }
}

fn summary(s: BatchSummary) -> t::BatchSummary {
    t::BatchSummary { events: s.events, kept: s.kept, dropped: s.dropped, bad: s.bad }
}

fn decision(event: &Event, d: &Decision) -> t::Decision {
    t::Decision {
        audit_id: event.audit_id.to_string(),
        stage: event.stage.to_string(),
        level: level(d.level),
        omit_stages: d.omit_stages.to_vec(),
        omit_managed_fields: d.omit_managed_fields,
        rule: d.rule.map(u32_of),
        json: explain_json(event, d),
    }
}

fn counters(c: &::kaudit::Counters) -> t::Counters {
    t::Counters {
        read: c.read,
        kept: c.kept,
        stripped: c.stripped,
        dropped: c.dropped,
        dropped_level_none: c.dropped_level_none,
        dropped_omitted_stage: c.dropped_omitted_stage,
        dropped_filtered: c.dropped_filtered,
        dropped_disabled: c.dropped_disabled,
        bad: c.bad,
        oversized: c.oversized,
        oversized_batches: c.oversized_batches,
        alerts_dropped: c.alerts_dropped,
        bytes_in: c.bytes_in,
        bytes_out: c.bytes_out,
    }
}

/// The `engine` resource. Methods take `&self` (the component model's borrow), so the pipeline
/// sits in a `RefCell`; a component instance is single-threaded and calls do not re-enter.
struct Engine {
    pipeline: RefCell<Pipeline>,
    warnings: Vec<t::ConfigError>,
}

impl Engine {
    fn build(config: &str, name: &str) -> Result<wit::Engine, Vec<t::ConfigError>> {
        let (pipeline, warnings) = load(config, name)?;
        Ok(wit::Engine::new(Engine {
            pipeline: RefCell::new(pipeline),
            warnings: warnings.iter().map(config_error).collect(),
        }))
    }
}

impl wit::Guest for Component {
    type Engine = Engine;
}

impl wit::GuestEngine for Engine {
    fn create(config: String) -> Result<wit::Engine, Vec<t::ConfigError>> {
        Engine::build(&config, CONFIG_NAME)
    }

    fn create_named(config: String, file_name: String) -> Result<wit::Engine, Vec<t::ConfigError>> {
        Engine::build(&config, &file_name)
    }

    fn warnings(&self) -> Vec<t::ConfigError> {
        self.warnings.clone()
    }

    fn process(&self, event: Vec<u8>) -> t::Outcome {
        // Bytes, not a String: a record passed through is returned exactly, even if not UTF-8.
        // Sized for the event plus its enrichment, so the output is rarely reallocated.
        let mut out = Vec::with_capacity(event.len() + 1024);
        let o = self.pipeline.borrow_mut().process_record(&event, &mut out);
        outcome(o, out)
    }

    fn process_batch(&self, body: Vec<u8>) -> t::BatchResult {
        let mut out = Vec::with_capacity(body.len());
        let s = self.pipeline.borrow_mut().process_batch(&body, &mut out);
        t::BatchResult { output: out, summary: summary(s) }
    }

    fn explain(&self, event: Vec<u8>) -> Result<t::Decision, t::Error> {
        let text = std::str::from_utf8(&event).map_err(|e| {
            event_error(EventError::from(format!("not UTF-8: invalid byte at offset {}", e.valid_up_to())))
        })?;
        let event = Event::parse(text).map_err(event_error)?;
        Ok(decision(&event, &self.pipeline.borrow().explain(&event)))
    }

    fn explain_batch(&self, input: Vec<u8>) -> Vec<t::Explanation> {
        let pipeline = self.pipeline.borrow();
        let mut all = Vec::new();
        pipeline.explain_stream(&input, &mut |e| {
            all.push(match e.result {
                Ok((event, d)) => t::Explanation::Decision(decision(event, d)),
                Err(error) => t::Explanation::Bad(t::BadInput {
                    line: u32_of(e.pos.line),
                    item: e.pos.item.map(u32_of),
                    error: error.to_string(),
                }),
            });
        });
        all
    }

    fn take_alerts(&self) -> Vec<String> {
        self.pipeline.borrow_mut().take_alerts()
    }

    fn counters(&self) -> t::Counters {
        counters(self.pipeline.borrow().counters())
    }

    fn alert_stats(&self) -> t::AlertStats {
        let a = self.pipeline.borrow().alert_stats();
        t::AlertStats {
            events: a.events,
            matches: a.matches,
            alerts: a.alerts,
            suppressed: a.suppressed,
            groups: a.groups,
            groups_evicted: a.groups_evicted,
            late_events: a.late_events,
            distinct_overflow: a.distinct_overflow,
        }
    }

    fn metrics_json(&self) -> String {
        self.pipeline.borrow().metrics_json()
    }
}

/// A config's errors, in file order.
fn config_errors(e: ::kaudit::ConfigError) -> Vec<t::Error> {
    e.errors.iter().map(error_of).collect()
}

/// A config text for the one-shot functions.
fn config_from_text(config: &str) -> Result<Config, Vec<t::Error>> {
    Config::load(config, CONFIG_NAME, &WasiFiles { base: PathBuf::new() }).map(|(c, _)| c).map_err(config_errors)
}

/// A config file (empty path: the embedded default), its references resolved next to it.
fn config_from_file(path: &str) -> Result<Config, Vec<t::Error>> {
    if path.is_empty() {
        return Ok(Config::embedded_default());
    }
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, &e))?;
    let base = Path::new(path).parent().map(Path::to_path_buf).unwrap_or_default();
    Config::load(&text, path, &WasiFiles { base }).map(|(c, _)| c).map_err(config_errors)
}

fn read_input(path: &str) -> Result<Vec<u8>, Vec<t::Error>> {
    std::fs::read(path).map_err(|e| file_error(path, &e))
}

/// What `kaudit run` writes as events for `input` (the config's whole pipeline).
fn run_output(config: Config, input: &[u8]) -> String {
    let mut pipeline = Pipeline::new(config);
    let mut out = String::with_capacity(input.len());
    pipeline.process_stream(input, &mut out, &mut |_| {});
    out
}

/// What `kaudit filter` writes for `input`: the policy alone, as the CLI's `filter` sets it up.
fn filter_output(mut config: Config, input: &[u8]) -> String {
    config.enrichment.enabled = false;
    config.alerts.enabled = false;
    run_output(config, input)
}

/// What `kaudit explain` writes for `input`.
fn explain_output(config: Config, input: &[u8]) -> String {
    let pipeline = Pipeline::new(config);
    let mut out = String::new();
    pipeline.explain_stream(input, &mut |e| {
        if let Some(json) = e.to_json() {
            out.push_str(&json);
            out.push('\n');
        }
    });
    out
}

/// The alerts `kaudit run` raises for `input`, one per line.
fn alert_output(config: Config, input: &[u8]) -> String {
    let mut pipeline = Pipeline::new(config);
    pipeline.process_stream(input, &mut Vec::new(), &mut |_| {});
    pipeline.take_alerts().into_iter().map(|a| a + "\n").collect()
}

impl lines::Guest for Component {
    fn run_lines(config: String, input: String) -> Result<String, Vec<t::Error>> {
        Ok(run_output(config_from_text(&config)?, input.as_bytes()))
    }

    fn filter_lines(config: String, input: String) -> Result<String, Vec<t::Error>> {
        Ok(filter_output(config_from_text(&config)?, input.as_bytes()))
    }

    fn explain_lines(config: String, input: String) -> Result<String, Vec<t::Error>> {
        Ok(explain_output(config_from_text(&config)?, input.as_bytes()))
    }

    fn alert_lines(config: String, input: String) -> Result<String, Vec<t::Error>> {
        Ok(alert_output(config_from_text(&config)?, input.as_bytes()))
    }

    fn run_file(config_path: String, input_path: String) -> Result<String, Vec<t::Error>> {
        Ok(run_output(config_from_file(&config_path)?, &read_input(&input_path)?))
    }

    fn filter_file(config_path: String, input_path: String) -> Result<String, Vec<t::Error>> {
        Ok(filter_output(config_from_file(&config_path)?, &read_input(&input_path)?))
    }

    fn explain_file(config_path: String, input_path: String) -> Result<String, Vec<t::Error>> {
        Ok(explain_output(config_from_file(&config_path)?, &read_input(&input_path)?))
    }

    fn alert_file(config_path: String, input_path: String) -> Result<String, Vec<t::Error>> {
        Ok(alert_output(config_from_file(&config_path)?, &read_input(&input_path)?))
    }
}
