//! What each core fuzz target does with one input, and the properties it asserts.
//!
//! Shared by the libFuzzer targets (`fuzz_targets/*.rs`) and, through `#[path]`, by
//! `tests/fuzz_regressions.rs`, which replays every saved crash input and the seed corpus on
//! the pinned stable toolchain. Depends on `kaudit` and `serde_json` only, so the root crate's
//! integration tests can include it.
//!
//! Every check builds a fresh pipeline per input (a crash must reproduce from its input alone)
//! and panics when a property does not hold; libFuzzer turns the panic into a saved crash.
//! Properties, beyond "no panic, no hang, no unbounded allocation":
//! * a record is never lost: a bad or oversized record comes back byte for byte;
//! * the counters add up (`read = kept + dropped + bad + oversized`, bytes in/out);
//! * a kept event written from valid JSON is valid JSON with the same `auditID`;
//! * the same input gives the same bytes on a second, fresh pipeline (determinism);
//! * every alert is one JSON object;
//! * a query gives the same answer on the lazily decoded event as on the whole JSON value.

use std::sync::OnceLock;

use kaudit::query::Query;
use kaudit::AlertConfig;
use kaudit::EventDoc;
use kaudit::Lists;
use kaudit::{Config, Event, NoFiles, Policy};
use kaudit::{Outcome, Pipeline};
use serde_json::Value as Json;

/// Real events (conformance vectors) that configs, policies and rule packs loaded from fuzz
/// input are run against: exec, Internet access, secrets, managedFields, bad records.
const EVENTS_CUSTOM: &str = include_str!("../../tests/conformance/vectors/custom-policy/input.jsonl");
const EVENTS_ALERTS: &str = include_str!("../../tests/conformance/vectors/seed-alerts/input.jsonl");

/// The input split at the first NUL: (text, rest). Targets that take two parts use it.
pub fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The embedded default config, built once (rules are shared `Arc`s, so a clone is cheap).
fn default_config() -> Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(Config::embedded_default).clone()
}

fn default_pipeline() -> Pipeline {
    Pipeline::new(default_config())
}

/// A small fixed stream of real events for pipelines built from fuzzed configs.
fn sample_events() -> String {
    let mut s = String::from(EVENTS_CUSTOM);
    for line in EVENTS_ALERTS.lines().take(16) {
        s.push_str(line);
        s.push('\n');
    }
    s
}

fn is_json(bytes: &[u8]) -> Option<Json> {
    serde_json::from_slice::<Json>(bytes).ok()
}

/// Every pending alert must be one JSON object.
fn check_alerts(p: &mut Pipeline) {
    for a in p.take_alerts() {
        match serde_json::from_str::<Json>(&a) {
            Ok(Json::Object(_)) => {}
            other => panic!("alert is not one JSON object: {a:?} ({other:?})"),
        }
    }
}

fn check_counter_sums(p: &Pipeline) {
    let c = p.counters();
    assert_eq!(c.read, c.kept + c.dropped + c.bad + c.oversized, "counters do not add up: {}", c.to_json());
    assert_eq!(
        c.dropped,
        c.dropped_level_none + c.dropped_omitted_stage + c.dropped_filtered + c.dropped_disabled,
        "drop reasons: {}",
        c.to_json()
    );
    assert!(c.stripped <= c.kept, "stripped > kept: {}", c.to_json());
}

/// `Pipeline::process_record` (Fluent Bit's path): one record, every property of one outcome.
pub fn pipeline_record(data: &[u8]) {
    let mut p = default_pipeline();
    let mut out: Vec<u8> = Vec::new();
    let outcome = p.process_record(data, &mut out);
    if kaudit::is_wrapped(data) {
        // A managed-cluster wrapper: its events are counted one by one (tests/managed_clusters.rs).
        if let Outcome::Bad { passed, .. } = &outcome {
            assert!(*passed && out == data, "a bad wrapper must come back byte for byte");
        }
        check_counter_sums(&p);
        let mut again: Vec<u8> = Vec::new();
        assert_eq!(default_pipeline().process_record(data, &mut again), outcome);
        assert_eq!(again, out, "same record, different bytes");
        return;
    }
    match &outcome {
        Outcome::Bad { passed, .. } => {
            assert!(*passed, "the default config passes bad records through");
            assert_eq!(out, data, "a bad record must come back byte for byte");
        }
        Outcome::Oversized => assert_eq!(out, data, "an oversized record must come back byte for byte"),
        Outcome::Dropped { .. } => assert!(out.is_empty(), "a dropped record wrote {} bytes", out.len()),
        Outcome::Kept { .. } => {
            assert!(!out.is_empty(), "a kept record wrote nothing");
            if let Some(Json::Object(input)) = is_json(data) {
                let written = is_json(&out).unwrap_or_else(|| {
                    panic!("kept event from valid JSON is not JSON: {}", String::from_utf8_lossy(&out))
                });
                let Json::Object(written) = written else { panic!("kept event is not an object") };
                assert_eq!(written.get("auditID"), input.get("auditID"), "auditID changed");
            }
        }
    }
    let c = p.counters();
    assert_eq!((c.read, c.bytes_in, c.bytes_out), (1, data.len() as u64, out.len() as u64), "{}", c.to_json());
    check_counter_sums(&p);
    check_alerts(&mut p);
    // Determinism: a fresh pipeline gives the same outcome and bytes.
    let mut again: Vec<u8> = Vec::new();
    assert_eq!(default_pipeline().process_record(data, &mut again), outcome);
    assert_eq!(again, out, "same record, different bytes");
}

/// `Pipeline::process_stream` (CLI, component): JSON lines, pretty-printed events, lists.
pub fn pipeline_stream(data: &[u8]) {
    let mut p = default_pipeline();
    let mut out: Vec<u8> = Vec::new();
    let mut reports = 0u64;
    let mut last_line = 0usize;
    p.process_stream(data, &mut out, &mut |r| {
        reports += 1;
        assert!(r.pos.line >= last_line.max(1), "report lines go backwards: {} after {}", r.pos.line, last_line);
        last_line = r.pos.line;
        if let Outcome::Bad { passed, .. } = &r.outcome {
            assert!(*passed, "the default config passes bad records through");
        }
    });
    let c = p.counters().clone();
    assert_eq!(c.read, reports, "one report per record: {}", c.to_json());
    // bytes_out counts record bytes; the stream adds one newline after each written record.
    let written = c.kept + c.bad + c.oversized;
    assert_eq!(c.bytes_out + written, out.len() as u64, "{}", c.to_json());
    check_counter_sums(&p);
    check_alerts(&mut p);
    let mut again: Vec<u8> = Vec::new();
    default_pipeline().process_stream(data, &mut again, &mut |_| {});
    assert_eq!(again, out, "same stream, different bytes");
}

/// `Pipeline::process_batch` (Envoy's path): the framing is kept, nothing is lost.
pub fn pipeline_batch(data: &[u8]) {
    let mut p = default_pipeline();
    let mut out: Vec<u8> = Vec::new();
    let s = p.process_batch(data, &mut out);
    assert_eq!(s.events, s.kept + s.dropped + s.bad, "{s:?}");
    let c = p.counters();
    assert_eq!(c.read, s.events, "batch summary and counters disagree: {s:?} vs {}", c.to_json());
    check_counter_sums(&p);
    if let Some(input) = is_json(data) {
        if matches!(input, Json::Array(_) | Json::Object(_)) && s.events > 0 {
            let written = is_json(&out)
                .unwrap_or_else(|| panic!("batch from valid JSON is not JSON: {}", String::from_utf8_lossy(&out)));
            assert_eq!(std::mem::discriminant(&written), std::mem::discriminant(&input), "the batch changed framing");
        }
    }
    check_alerts(&mut p);
    let mut again: Vec<u8> = Vec::new();
    assert_eq!(default_pipeline().process_batch(data, &mut again), s);
    assert_eq!(again, out, "same batch, different bytes");
}

/// `Policy::load` (YAML or JSON) then the loaded policy on real events and on the input's second part.
pub fn policy_load(data: &[u8]) {
    let (policy, events) = split_nul(data);
    let Ok(text) = std::str::from_utf8(policy) else { return };
    let Ok(loaded) = Policy::load(text, "fuzz-policy.yaml") else { return };
    let mut config = default_config();
    config.policy = loaded.policy;
    config.alerts = AlertConfig::default();
    let mut p = Pipeline::new(config);
    let mut out: Vec<u8> = Vec::new();
    let sample = sample_events();
    let input: &[u8] = if events.is_empty() { sample.as_bytes() } else { events };
    p.process_stream(input, &mut out, &mut |_| {});
    check_counter_sums(&p);
    // explain on every valid event of the input must not panic either.
    for line in std::str::from_utf8(input).unwrap_or("").lines() {
        if let Ok(ev) = Event::parse(line) {
            let d = p.explain(&ev);
            let _ = kaudit::explain_json(&ev, &d);
        }
    }
}

/// The search language: `Query::parse`, then `matches` on the JSON value and on the lazily
/// decoded event, which must agree.
pub fn query(data: &[u8]) {
    let (q, doc) = split_nul(data);
    let Ok(text) = std::str::from_utf8(q) else { return };
    let Ok(query) = Query::parse(text) else { return };
    let _ = query.field_paths();
    let sample;
    let doc: &[u8] = if doc.is_empty() {
        sample = EVENTS_ALERTS.lines().next().unwrap_or("{}");
        sample.as_bytes()
    } else {
        doc
    };
    let Some(json) = is_json(doc) else { return };
    let on_json = query.matches(&json);
    let Ok(doc_text) = std::str::from_utf8(doc) else { return };
    let Ok(event) = Event::parse(doc_text) else { return };
    // With duplicate top-level keys the JSON value keeps the last, the raw event the first.
    let keys: Vec<&str> = event.obj.members.iter().map(|m| event.obj.key(m)).collect();
    if (1..keys.len()).any(|i| keys[..i].contains(&keys[i])) {
        return;
    }
    let lazy = EventDoc::new(&event, "kaudit", None);
    assert_eq!(query.matches(&lazy), on_json, "query {text:?}: lazy event and JSON value disagree");
}

/// `Config::load` (policy, limits, enrichment, alert rules) then the pipeline on real events.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok((config, _warnings)) = Config::load(text, "fuzz.yaml", &NoFiles) else { return };
    run_sample(Pipeline::new(config));
}

/// A rule pack (kaudit pack or Sigma rule) then the rules on real events.
pub fn rule_pack(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rules) = kaudit::load_pack_text(text, "fuzz-pack.yml", &Lists::new(), Default::default()) else {
        return;
    };
    let mut config = default_config();
    config.alerts =
        AlertConfig { rules: rules.into_iter().map(std::sync::Arc::new).collect(), ..AlertConfig::default() };
    run_sample(Pipeline::new(config));
}

fn run_sample(mut p: Pipeline) {
    let mut out: Vec<u8> = Vec::new();
    let sample = sample_events();
    p.process_stream(sample.as_bytes(), &mut out, &mut |_| {});
    check_counter_sums(&p);
    check_alerts(&mut p);
}
