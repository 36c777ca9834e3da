//! Where Envoy's CPU per audit event goes with kaudit-envoy.wasm, in a real Envoy 1.40 running
//! the shipped plugins/envoy/envoy.yaml (plain HTTP instead of TLS, as plugins/envoy/tests/envoy.rs
//! does; ports and the module path substituted), next to native kaudit on the same batches.
//!
//! The corpus (`kaudit_testkit::corpus`, seed 42) is posted as EventLists of 400 events (kube-apiserver's
//! default `--audit-webhook-batch-max-size`), one request after another. Envoy's CPU is read from
//! `/proc/<pid>/stat` (user + system, all threads) around the posts, until the alert consumer
//! has observed every kept event. Rows:
//! - Envoy without the wasm filter: the pass-through baseline (HTTP, buffering, forwarding);
//! - Envoy with kaudit, policy only (`enrichment.enabled: false`, `alerts.enabled: false`);
//! - Envoy with kaudit, embedded default (policy, enrichment, the seed's alert rules): the worker
//!   filters, the kept events go through the shared queue to the alert consumer;
//! - native, in this process (its CPU time, before any helper thread starts): the worker's
//!   `filter_body` + `alert_steps` and the consumer's `apply_alert_steps` on the same batches
//!   (what the module does, without V8 and Envoy), and `kaudit run`'s own path
//!   (`process_batch` with alerts on), per event.
//!
//! Run: `cargo xtask build-wasm`, then
//! `KAUDIT_ARTIFACTS=$CARGO_TARGET_DIR/kaudit-artifacts cargo bench -p kaudit-envoy --bench envoy_cpu`;
//! `KAUDIT_BENCH_EVENTS` (default 20,000), `KAUDIT_BENCH_ROUNDS` (default 3, best kept),
//! `KAUDIT_ENVOY_WASM` (another module, e.g. a build with other flags).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kaudit::Config;
use kaudit::Pipeline;
use kaudit_envoy::batch::{alert_steps, filter_body};
use serde_json::{json, Value};
use support::{event_list, http, plain_loopback_config, wait_for, wasm_filter, Envoy, Recorder, TempDir};

const BATCH: usize = 400;
const PLUGIN: &str = "kaudit";
const POLICY_ONLY: &str = "enrichment:\n  enabled: false\nalerts:\n  enabled: false\n";

/// The shipped config, plain HTTP, the receiver and alert sink on the recorders' ports; without
/// the wasm filter when `module` is `None`.
fn config(module: Option<&PathBuf>, kaudit_config: Option<&str>, receiver: u16, alerts: u16) -> Value {
    let mut config = plain_loopback_config(receiver, alerts);
    let listener = &mut config["static_resources"]["listeners"][0];
    match module {
        Some(wasm) => {
            let plugin = wasm_filter(listener);
            plugin["vm_config"]["code"]["local"]["filename"] = json!(wasm);
            let mut envelope = json!({ "alerts": { "cluster": "kaudit_alerts", "path": "/alerts", "authority": "kaudit-alerts", "timeoutMs": 5000 } });
            if let Some(text) = kaudit_config {
                envelope["config"] = json!(text);
            }
            plugin["configuration"]["value"] = json!(envelope.to_string());
        }
        None => {
            let filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
                .as_array_mut()
                .expect("http_filters");
            filters.retain(|f| f["name"] != "envoy.filters.http.wasm");
        }
    }
    config
}

/// Envoy's CPU seconds so far (user + system, all threads).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

/// Posts every batch and returns Envoy's CPU seconds for them (until the consumer saw `kept` events).
fn envoy_run(module: Option<&PathBuf>, kaudit_config: Option<&str>, batches: &[String], kept: u64) -> f64 {
    let receiver = Recorder::start();
    let alerts = Recorder::start();
    let dir = Arc::new(TempDir::new("bench"));
    let envoy = Envoy::start(&config(module, kaudit_config, receiver.port, alerts.port), dir).expect("envoy");
    let port = envoy.listener_port("audit_webhook");
    // One batch first: V8 compiles and tiers up, the consumer is elected.
    let warm = http(port, "POST", "/audit", &[("content-type", "application/json")], batches[0].as_bytes())
        .expect("warm-up POST");
    assert_eq!(warm.status, 200);
    std::thread::sleep(Duration::from_millis(2_500));
    let observed_before =
        if module.is_some() { envoy.counter(&format!("wasmcustom.kaudit.{PLUGIN}.alert_events_observed")) } else { 0 };
    let start = cpu_seconds(envoy.pid());
    for b in batches {
        let r = http(port, "POST", "/audit", &[("content-type", "application/json")], b.as_bytes()).expect("POST");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    // With alerts off nothing is queued for the consumer (filter.rs, `Shared::alerts`).
    if module.is_some() && kaudit_config.is_none() {
        let name = format!("wasmcustom.kaudit.{PLUGIN}.alert_events_observed");
        let done = wait_for(120, || (envoy.counter(&name) - observed_before >= kept).then_some(()));
        assert!(done.is_some(), "the alert consumer did not observe {kept} events");
    }
    let cpu = cpu_seconds(envoy.pid()) - start;
    drop(envoy);
    cpu
}

fn main() {
    let events: usize = std::env::var("KAUDIT_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let rounds: usize = std::env::var("KAUDIT_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let module = std::env::var_os("KAUDIT_ENVOY_WASM").map(PathBuf::from).unwrap_or_else(support::artifact);
    let corpus = String::from_utf8(kaudit_testkit::corpus::generate(events, 42)).expect("utf-8");
    let lines: Vec<&str> = corpus.lines().filter(|l| !l.is_empty()).collect();
    let batches: Vec<String> = lines.chunks(BATCH).map(event_list).collect();
    let n = lines.len() as f64;

    // Native, the module's work: worker filter + its alert steps applied by the consumer.
    let mut kept = 0u64;
    let native_module = || {
        let mut worker = Pipeline::alert_worker(Config::embedded_default());
        let mut consumer = Pipeline::embedded_default();
        let mut fed = 0u64;
        let start = cpu_seconds(std::process::id());
        for b in &batches {
            let filtered = filter_body(&mut worker, b.as_bytes());
            if let Some(steps) = alert_steps(&mut worker, &filtered) {
                fed += consumer.apply_alert_steps(&steps).expect("steps");
            }
            std::hint::black_box(consumer.take_alerts());
        }
        (cpu_seconds(std::process::id()) - start, fed)
    };
    let native_run = || {
        let mut p = Pipeline::embedded_default();
        let start = cpu_seconds(std::process::id());
        for b in &batches {
            let mut out = String::with_capacity(b.len());
            std::hint::black_box(p.process_batch(b.as_bytes(), &mut out));
            std::hint::black_box(p.take_alerts());
        }
        cpu_seconds(std::process::id()) - start
    };
    let (mut best_module, mut best_run) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds.max(1) {
        let (t, fed) = native_module();
        kept = fed;
        best_module = best_module.min(t);
        best_run = best_run.min(native_run());
    }

    let mut best = [f64::INFINITY; 3];
    for round in 0..rounds.max(1) {
        let runs = [
            envoy_run(None, None, &batches, kept),
            envoy_run(Some(&module), Some(POLICY_ONLY), &batches, kept),
            envoy_run(Some(&module), None, &batches, kept),
        ];
        eprintln!(
            "round {}: Envoy CPU s: pass-through {:.2}, policy only {:.2}, default {:.2}",
            round + 1,
            runs[0],
            runs[1],
            runs[2]
        );
        for (b, r) in best.iter_mut().zip(runs) {
            *b = b.min(r);
        }
    }
    let us = |s: f64| s / n * 1e6;
    println!(
        "\n{} events ({:.1} MB, kaudit_testkit::corpus seed 42) in EventLists of {BATCH}; {} kept and fed to the alert consumer; module {}",
        lines.len(),
        corpus.len() as f64 / 1e6,
        kept,
        module.display()
    );
    println!("best of {rounds}; Envoy: user + system CPU of the whole process (--concurrency 2), 10 ms ticks\n");
    println!("| what | CPU µs/event | over pass-through |");
    println!("|---|---|---|");
    println!("| Envoy, no filter (pass-through) | {:.1} | - |", us(best[0]));
    println!("| Envoy + kaudit, policy only | {:.1} | {:.1} |", us(best[1]), us(best[1] - best[0]));
    println!(
        "| Envoy + kaudit, embedded default (worker + alert consumer) | {:.1} | {:.1} |",
        us(best[2]),
        us(best[2] - best[0])
    );
    println!(
        "| native: the module's work (worker filter_body + alert steps, consumer apply_alert_steps) | {:.1} | - |",
        us(best_module)
    );
    println!("| native: `kaudit run`'s path (process_batch, alerts on) | {:.1} | - |", us(best_run));
}
