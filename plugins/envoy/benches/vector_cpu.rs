//! The Vector side of the Vector -> Envoy + kaudit -> Vector path: Vector's and Envoy's CPU per
//! event for http sink settings, with a real Vector 0.57 and a real Envoy 1.40 (the shipped
//! plugins/envoy/envoy.yaml, plain HTTP, kaudit-envoy.wasm, embedded default config).
//!
//! One Vector runs both halves, as plugins/vector/vector.yaml does: a file source -> the http
//! sink -> Envoy -> Vector's http_server source -> a `file` sink (one line per kept event, so the
//! run knows when everything came back). Variants of the sink (and the matching return decoding):
//! - `shipped`: plugins/vector/vector.yaml's way: each line parsed (`parse_json` in remap), the
//!   json codec's array wrapped into an EventList, `. = .items` on the way back;
//! - `lines`: no parse on the way in: the `text` codec with newline framing posts the lines as
//!   they are (kaudit takes JSON lines and keeps the framing), the way back decoded as JSON lines;
//! - `lines+gzip`: the same with `compression: gzip` (kaudit decodes gzip bodies).
//!
//! CPU is read from `/proc/<pid>/stat` (user + system, all threads): from Vector's start until
//! every kept event is in the output file, minus an idle Vector over the same wall time is not
//! subtracted (Vector idles at well under 1% of a core).
//! Run: `cargo xtask build-wasm`, then
//! `KAUDIT_ARTIFACTS=$CARGO_TARGET_DIR/kaudit-artifacts cargo bench -p kaudit-envoy --bench vector_cpu`
//! (`KAUDIT_BENCH_EVENTS`, default 20,000; `KAUDIT_BENCH_BATCH_EVENTS`, default 1000;
//! `KAUDIT_BENCH_VARIANTS`, default `shipped,lines,lines+gzip`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use support::real_hosts::{self, kaudit_run};
use support::{plain_loopback_config, wait_for, wasm_filter, Envoy, Recorder, TempDir};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
    (fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime")) / 100.0
}

fn envoy_config(receiver: u16, alerts: u16) -> Value {
    let mut config = plain_loopback_config(receiver, alerts);
    let listener = &mut config["static_resources"]["listeners"][0];
    wasm_filter(listener)["vm_config"]["code"]["local"]["filename"] = json!(support::artifact());
    config
}

/// A Vector config for `variant`, posting to Envoy on `envoy`, receiving on `source`.
fn vector_config(dir: &Path, variant: &str, envoy: u16, source: u16, batch_events: usize) -> String {
    let d = dir.display();
    let (transform, sink_encoding, back) = match variant {
        "shipped" => (
            "  audit_events:\n    type: remap\n    inputs: [audit_log]\n    source: |\n      . = object(parse_json(.message) ?? null) ?? {\"message\": .message}\n  kaudit_events:\n    type: remap\n    inputs: [kaudit_filtered]\n    source: |\n      . = .items\n",
            "    inputs: [audit_events]\n    encoding: { codec: json }\n    payload_prefix: '{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":'\n    payload_suffix: '}'\n",
            "    decoding: { codec: json }\n",
        ),
        _ => (
            "  kaudit_events:\n    type: remap\n    inputs: [kaudit_filtered]\n    source: '.'\n",
            "    inputs: [audit_log]\n    encoding: { codec: text }\n    framing: { method: newline_delimited }\n",
            "    decoding: { codec: json }\n    framing: { method: newline_delimited }\n",
        ),
    };
    let compression = if variant.ends_with("gzip") { "gzip" } else { "none" };
    format!(
        "data_dir: {d}/data\nsources:\n  audit_log:\n    type: file\n    include: [{d}/audit.log]\n    read_from: beginning\n    max_line_bytes: 4194304\n  kaudit_filtered:\n    type: http_server\n    address: 127.0.0.1:{source}\n    path: /audit\n    method: POST\n{back}transforms:\n{transform}sinks:\n  to_kaudit:\n    type: http\n{sink_encoding}    uri: http://127.0.0.1:{envoy}/audit\n    method: post\n    compression: {compression}\n    retry_strategy: {{ type: all }}\n    batch: {{ max_bytes: 8000000, max_events: {batch_events}, timeout_secs: 1 }}\n    buffer: {{ type: memory, max_events: 500, when_full: block }}\n    acknowledgements: {{ enabled: true }}\n  filtered_out:\n    type: file\n    inputs: [kaudit_events]\n    path: {d}/out.jsonl\n    encoding: {{ codec: json }}\n    acknowledgements: {{ enabled: true }}\n"
    )
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One run: returns (Vector CPU s, Envoy CPU s, events out, wall s).
fn run(bin: &Path, variant: &str, input: &[u8], kept: usize, batch_events: usize) -> (f64, f64, usize, f64) {
    let alerts = Recorder::start();
    let source = free_port();
    let envoy =
        Envoy::start(&envoy_config(source, alerts.port), Arc::new(TempDir::new("vbench-envoy"))).expect("envoy");
    let envoy_port = envoy.listener_port("audit_webhook");
    let dir = TempDir::new(&format!("vbench-{variant}"));
    std::fs::create_dir_all(dir.0.join("data")).expect("data dir");
    std::fs::write(dir.0.join("vector.yaml"), vector_config(&dir.0, variant, envoy_port, source, batch_events))
        .expect("config");
    let log = std::fs::File::create(dir.0.join("vector.log")).expect("log");
    let envoy_start = cpu_seconds(envoy.pid());
    let started = Instant::now();
    let child = Command::new(bin)
        .arg("--config")
        .arg(dir.0.join("vector.yaml"))
        .env("VECTOR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("vector");
    let vector = Killed(child);
    std::fs::write(dir.0.join("audit.log"), input).expect("input");
    let out = dir.0.join("out.jsonl");
    let count = || std::fs::read(&out).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0);
    let done = wait_for(600, || (count() >= kept).then_some(()));
    let wall = started.elapsed().as_secs_f64();
    let vector_cpu = cpu_seconds(vector.0.id());
    let envoy_cpu = cpu_seconds(envoy.pid()) - envoy_start;
    let n = count();
    assert!(
        done.is_some(),
        "{variant}: {n} of {kept} events came back:\n{}",
        std::fs::read_to_string(dir.0.join("vector.log")).unwrap_or_default()
    );
    (vector_cpu, envoy_cpu, n, wall)
}

fn main() {
    let Some(bin) = real_hosts::require(&real_hosts::VECTOR, "vector_cpu bench") else { return };
    let events: usize = std::env::var("KAUDIT_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let batch_events: usize =
        std::env::var("KAUDIT_BENCH_BATCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let input = kaudit_testkit::corpus::generate(events, 42);
    let n = input.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    let kept = kaudit_run(&input, None).events.len();
    println!("{n} events ({:.1} MB, kaudit_testkit::corpus seed 42), {kept} kept; batches of up to {batch_events} events or 8 MB", input.len() as f64 / 1e6);
    println!("\n| Vector http sink | Vector CPU µs/event | Envoy CPU µs/event | wall s |");
    println!("|---|---|---|---|");
    let variants = std::env::var("KAUDIT_BENCH_VARIANTS").unwrap_or_else(|_| "shipped,lines,lines+gzip".into());
    for variant in variants.split(',') {
        let (v, e, _, wall) = run(&bin, variant, &input, kept, batch_events);
        println!("| {variant} | {:.1} | {:.1} | {wall:.1} |", v / n as f64 * 1e6, e / n as f64 * 1e6);
    }
}
