//! Alert steps (`Pipeline::alert_worker` -> `take_alert_steps` -> `apply_alert_steps`, the path
//! of Envoy's workers and their single alert consumer): a worker writes the same bytes as a
//! plain pipeline, and a consumer applying its steps raises exactly the alerts (or, as an
//! agent, the partial records) a pipeline that saw the events raises, batch after batch; a
//! buffer of other rules, a foreign one and every truncation are refused without a panic.

use std::path::Path;

use kaudit::{Config, Pipeline, StepsError};

mod support;

use support::{seed_geo_files, Dir};

fn config_of(text: &str, files: &dyn kaudit::FileSource) -> Config {
    Config::load(text, "kaudit.yaml", files).unwrap().0
}

/// Seed config with GeoIP and a high-risk list (so the seed's rules fire), plus `extra`
/// under `alerts:`.
fn seed_config(extra: &str) -> Config {
    let text = format!(
        "enrichment:\n  geoip: [city.mmdb, asn.mmdb]\n  highRiskIPs: [203.0.113.48/29]\nalerts:\n  enabled: true\n{extra}"
    );
    config_of(&text, &seed_geo_files())
}

/// A rule with every aggregate kind, `repeat` and small limits (shared with tests/alerts_two_phase.rs).
const BUSY: &str = include_str!("fixtures/alerts/busy-account-rules.yaml");

/// The stream cut into batches of `batch` lines; returns (written bytes, alerts, partials)
/// of one plain pipeline.
fn direct(config: &Config, lines: &[&str], batch: usize) -> (String, Vec<String>, Vec<String>) {
    let mut p = Pipeline::new(config.clone());
    let (mut out, mut alerts, mut partials) = (String::new(), Vec::new(), Vec::new());
    for chunk in lines.chunks(batch) {
        let body = chunk.join("\n") + "\n";
        p.process_batch(body.as_bytes(), &mut out);
        alerts.extend(p.take_alerts());
        partials.extend(p.take_partials());
    }
    p.finish_alerts();
    alerts.extend(p.take_alerts());
    partials.extend(p.take_partials());
    (out, alerts, partials)
}

/// The same through a worker and a consumer, one steps buffer per batch.
fn through_steps(config: &Config, lines: &[&str], batch: usize) -> (String, Vec<String>, Vec<String>, u64) {
    let mut worker = Pipeline::alert_worker(config.clone());
    let mut consumer = Pipeline::new(config.clone());
    let (mut out, mut alerts, mut partials, mut applied) = (String::new(), Vec::new(), Vec::new(), 0);
    for chunk in lines.chunks(batch) {
        let body = chunk.join("\n") + "\n";
        worker.process_batch(body.as_bytes(), &mut out);
        assert!(worker.take_alerts().is_empty() && worker.take_partials().is_empty(), "a worker raises nothing");
        let steps = worker.take_alert_steps();
        if !steps.is_empty() {
            applied += consumer.apply_alert_steps(&steps).unwrap();
        }
        alerts.extend(consumer.take_alerts());
        partials.extend(consumer.take_partials());
    }
    consumer.finish_alerts();
    alerts.extend(consumer.take_alerts());
    partials.extend(consumer.take_partials());
    assert_eq!(consumer.alert_stats().events, applied, "every applied event counts as observed");
    (out, alerts, partials, applied)
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

#[test]
fn every_vector_raises_its_alerts_through_steps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/vectors");
    let mut dirs: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    assert!(dirs.len() >= 3);
    let mut alerts_seen = 0;
    for dir in dirs {
        let config = match std::fs::read_to_string(dir.join("config.yaml")) {
            Ok(text) => config_of(&text, &Dir(dir.clone())),
            Err(_) => Config::embedded_default(),
        };
        let input = std::fs::read_to_string(dir.join("input.jsonl")).unwrap();
        let expected_alerts = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap();
        for batch in [1, 7, 400] {
            let mut worker = Pipeline::alert_worker(config.clone());
            let mut consumer = Pipeline::new(config.clone());
            let mut out = String::new();
            let mut alerts = String::new();
            // The stream as the CLI reads it (pretty-printed events and lists included).
            for (i, l) in lines(&input).chunks(batch).enumerate() {
                let body = l.join("\n") + "\n";
                worker.process_stream(body.as_bytes(), &mut out, &mut |_| {});
                let steps = worker.take_alert_steps();
                if !steps.is_empty() {
                    consumer.apply_alert_steps(&steps).unwrap_or_else(|e| panic!("{}: batch {i}: {e}", dir.display()));
                }
                alerts.extend(consumer.take_alerts().into_iter().map(|a| a + "\n"));
            }
            consumer.finish_alerts();
            alerts.extend(consumer.take_alerts().into_iter().map(|a| a + "\n"));
            let mut plain = String::new();
            Pipeline::new(config.clone()).process_stream(input.as_bytes(), &mut plain, &mut |_| {});
            assert_eq!(out, plain, "{}: a worker writes what a plain pipeline writes", dir.display());
            assert_eq!(alerts, expected_alerts, "{}: alerts through steps, batches of {batch}", dir.display());
            alerts_seen += alerts.lines().count();
        }
    }
    assert!(alerts_seen > 0, "the vectors raise alerts");
}

#[test]
fn a_generated_corpus_raises_the_same_alerts_through_steps() {
    let corpus = String::from_utf8(kaudit_testkit::corpus::generate(1_500, 42)).unwrap();
    let lines = lines(&corpus);
    for (name, config) in [
        ("embedded default", Config::embedded_default()),
        ("seed rules with GeoIP", seed_config("")),
        ("every aggregate kind", seed_config(BUSY)),
    ] {
        let (out, alerts, _) = direct(&config, &lines, 400);
        let (out2, alerts2, _, applied) = through_steps(&config, &lines, 400);
        assert_eq!(out, out2, "{name}: written bytes");
        assert!(applied > 500, "{name}: {applied} kept events applied");
        assert!(!alerts.is_empty(), "{name}: the corpus raises alerts");
        assert_eq!(alerts, alerts2, "{name}: alerts");
    }
}

#[test]
fn an_agent_consumer_emits_the_same_partials_through_steps() {
    // Only kept events reach a consumer; with every event kept the agent's clock sees the same.
    let keep_all = "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n    - level: RequestResponse\n";
    let corpus = String::from_utf8(kaudit_testkit::corpus::generate(2_000, 7)).unwrap();
    let lines = lines(&corpus);
    let text = format!(
        "{keep_all}enrichment:\n  geoip: [city.mmdb, asn.mmdb]\nalerts:\n  role: agent\n  aggregation:\n    agentId: a1\n{BUSY}"
    );
    let config = config_of(&text, &seed_geo_files());
    let (_, alerts, partials) = direct(&config, &lines, 100);
    let (_, alerts2, partials2, _) = through_steps(&config, &lines, 100);
    assert!(partials.iter().any(|p| p.contains("KauditPartial")), "the agent emits partials");
    assert_eq!(partials, partials2);
    assert_eq!(alerts, alerts2);
}

#[test]
fn buffers_of_other_rules_foreign_bytes_and_truncations_are_refused() {
    let corpus = String::from_utf8(kaudit_testkit::corpus::generate(200, 3)).unwrap();
    let mut worker = Pipeline::alert_worker(Config::embedded_default());
    worker.process_batch(corpus.as_bytes(), &mut String::new());
    let steps = worker.take_alert_steps();
    assert!(steps.len() > 12);
    assert!(worker.take_alert_steps().is_empty(), "taken once");

    let mut other = Pipeline::new(seed_config(BUSY));
    assert_eq!(other.apply_alert_steps(&steps), Err(StepsError::OtherRules));
    let mut consumer = Pipeline::embedded_default();
    for foreign in [&b""[..], b"{\"kind\":\"EventList\"}", b"KAS"] {
        assert_eq!(consumer.apply_alert_steps(foreign), Err(StepsError::NotSteps));
    }
    for cut in 12..steps.len() {
        match consumer.apply_alert_steps(&steps[..cut]) {
            Ok(_) | Err(StepsError::Corrupt(_)) => {}
            Err(e) => panic!("cut at {cut}: {e}"),
        }
    }
    // Collection off: nothing is kept, nothing is written.
    let mut off = Config::embedded_default();
    off.enabled = false;
    let mut w = Pipeline::alert_worker(off);
    w.process_batch(corpus.as_bytes(), &mut String::new());
    assert!(w.take_alert_steps().is_empty());
}
