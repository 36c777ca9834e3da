//! The host adapters' input paths, driven natively (their pure, host-independent logic is an
//! rlib; the .wasm builds add only the ABI glue around it).
//!
//! * Fluent Bit: [`kaudit_fluent_bit::filter::Filter::handle`], the function `kaudit_filter`
//!   calls for every record, including the config lookup (`config::load_from`) that runs at the
//!   first call. Its contract with `filter_wasm`: the reply is a drop or exactly one JSON object,
//!   NUL-terminated, with no interior NUL; a record is never silently changed into something else.
//! * Envoy: [`kaudit_envoy::batch::filter_body`] (what the filter runs on each request body),
//!   the alert consumer's split of the forwarded body, and the plugin configuration envelope
//!   ([`kaudit_envoy::settings::Settings::parse`]).

use std::sync::OnceLock;

use kaudit::parse_object;
use kaudit::Pipeline;
use kaudit_envoy::batch::{alert_steps, filter_body, for_each_item, Filtered, Untouched};
use kaudit_envoy::settings::Settings;
use kaudit_fluent_bit::config::{load_from, Loaded};
use kaudit_fluent_bit::filter::{Filter, Input, Mode, Reply, Stats};
use serde_json::Value as Json;

use crate::checks::split_nul;

fn default_config() -> kaudit::Config {
    static CONFIG: OnceLock<kaudit::Config> = OnceLock::new();
    CONFIG.get_or_init(kaudit::Config::embedded_default).clone()
}

fn default_pipeline() -> Pipeline {
    Pipeline::new(default_config())
}

/// Fluent Bit: input = record, or `config \0 record` where the config is served as
/// `/etc/kaudit/kaudit.yaml` (a bad config must give a visible per-record error, not a trap).
pub fn fluent_bit(data: &[u8]) {
    let (first, rest) = split_nul(data);
    let (config, record) = if data.contains(&0) { (Some(first), rest) } else { (None, data) };
    let mode = match config {
        None => Mode::Ready { pipeline: Box::new(default_pipeline()), source: "<embedded default>".into() },
        Some(text) => {
            let read = |path: &str| -> std::io::Result<Vec<u8>> {
                if path == "/etc/kaudit/kaudit.yaml" {
                    Ok(text.to_vec())
                } else {
                    Err(std::io::ErrorKind::NotFound.into())
                }
            };
            match load_from(&["/etc/kaudit/kaudit.yaml"], &read) {
                Loaded::Ready { pipeline, source, .. } => Mode::Ready { pipeline, source },
                Loaded::Error(message) => {
                    assert!(!message.is_empty(), "a config error without a message");
                    Mode::ConfigError(message)
                }
            }
        }
    };
    let mut filter = Filter::new(mode);
    let mut stats = Stats::ZERO;
    // Twice: the reply buffer is reused across calls.
    for _ in 0..2 {
        let reply = filter.handle(Input::Record(record), &mut stats);
        check_fluent_bit_reply(&filter, reply, record);
    }
    let counters = filter.counters_json(&stats);
    let (json, nul) = counters.split_at(counters.len() - 1);
    assert_eq!(nul, b"\0");
    assert!(is_json(json).is_some(), "counters are not JSON: {}", String::from_utf8_lossy(json));
}

fn check_fluent_bit_reply(filter: &Filter, reply: Reply, record: &[u8]) {
    if reply == Reply::Drop {
        return;
    }
    let bytes = filter.reply();
    let Some((&0, body)) = bytes.split_last() else { panic!("reply is not NUL-terminated") };
    assert!(!body.contains(&0), "reply has an interior NUL: {:?}", String::from_utf8_lossy(body));
    let text = std::str::from_utf8(body).unwrap_or_else(|_| panic!("reply is not UTF-8"));
    assert!(parse_object(text).is_ok(), "reply is not one JSON object: {text}");
    if matches!(is_json(record), Some(Json::Object(_))) {
        assert!(matches!(is_json(body), Some(Json::Object(_))), "record was valid JSON, reply is not: {text}");
    }
}

/// Envoy: input = request body; the forwarded body, then the consumer: the worker's alert
/// steps, and the split of a forwarded body (what VMs of earlier kaudit versions queue).
pub fn envoy_batch(data: &[u8]) {
    let mut worker = Pipeline::alert_worker(default_config());
    let filtered = filter_body(&mut worker, data);
    match &filtered {
        Filtered::Untouched(Untouched::InternalError(e)) => panic!("internal error (caught panic): {e}"),
        Filtered::Untouched(_) => {}
        Filtered::Processed { summary, body } => {
            assert_eq!(summary.events, summary.kept + summary.dropped + summary.bad);
            if let (Some(body), Some(input)) = (body, is_json(data)) {
                if matches!(input, Json::Array(_) | Json::Object(_)) {
                    assert!(is_json(body.as_bytes()).is_some(), "forwarded body from valid JSON is not JSON: {body}");
                }
            }
        }
    }
    let mut consumer = default_pipeline();
    if let Some(steps) = alert_steps(&mut worker, &filtered) {
        let applied = consumer.apply_alert_steps(&steps).expect("a worker's steps apply");
        let kept = match &filtered {
            Filtered::Processed { summary, .. } => summary.kept,
            Filtered::Untouched(_) => 0,
        };
        assert!(applied <= kept, "{applied} events applied, {kept} kept");
    }
    if let Filtered::Processed { body, .. } = &filtered {
        for_each_item(body.as_deref().map_or(data, str::as_bytes), &mut |item| consumer.observe_for_alerts(item));
    }
    for a in consumer.take_alerts() {
        assert!(matches!(is_json(a.as_bytes()), Some(Json::Object(_))), "alert is not one JSON object: {a}");
    }
}

/// Envoy's plugin configuration envelope, then the pipeline it describes.
pub fn envoy_settings(data: &[u8]) {
    let Ok(settings) = Settings::parse(data) else { return };
    assert!(settings.alerts.path.starts_with('/'));
    if let Ok((mut p, _)) = settings.pipeline() {
        let mut out = String::new();
        p.process_batch(b"[]", &mut out);
    }
}

fn is_json(bytes: &[u8]) -> Option<Json> {
    serde_json::from_slice(bytes).ok()
}
