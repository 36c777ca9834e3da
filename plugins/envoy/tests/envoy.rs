//! kaudit-envoy.wasm in a real Envoy 1.40 (`--concurrency 2`), started from the shipped
//! plugins/envoy/envoy.yaml with ports and paths replaced, between a recording upstream (the
//! audit receiver) and a recording alert sink.
//!
//! What must hold: every conformance vector posted as an EventList reaches the receiver as
//! exactly the vector's expected items (byte-identical item text); JSON arrays, JSON lines and
//! Vector's `http` sink payloads keep their framing; a bad body is forwarded untouched; a batch
//! above Envoy's default 1 MiB buffer passes with the shipped limits (and gets 413 without
//! them); every kept event reaches the single alert consumer once, whichever worker took the
//! request; the alert sink receives exactly the vectors' `alerts.jsonl`; a bad plugin
//! configuration stops Envoy. The native engine is the oracle for whole bodies.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use kaudit::list_items;
use kaudit::{Config, FileSource, Pipeline};
use kaudit_envoy::batch::{alert_steps, filter_body};
use serde_json::{json, Value};
use support::{event_list, http, loopback, shipped_config, wait_for, wasm_filter, Envoy, Recorder, TempDir};

const SHIPPED: &str = "kaudit"; // the plugin name in the shipped envoy.yaml
/// Vector's `http` sink: `payload_prefix`/`payload_suffix` of plugins/vector/vector.yaml around
/// the JSON codec's `[a,b,...]` batch.
const VECTOR_PREFIX: &str = r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":"#;
const VECTOR_SUFFIX: &str = "}";
/// A listener whose limits are hit by the test's batches (events over 3,000 bytes, batches over
/// 500 kB, one alert group per rule).
const LIMITS_CONFIG: &str =
    "limits:\n  maxEventBytes: 3000\n  maxBatchBytes: 500000\nalerts:\n  limits:\n    maxGroups: 1\n";

struct Vector {
    name: String,
    dir: PathBuf,
    config: Option<String>,
}

impl Vector {
    fn input_items(&self) -> Vec<String> {
        read(&self.dir.join("input.jsonl")).lines().filter(|l| !l.trim().is_empty()).map(String::from).collect()
    }

    fn expected_items(&self) -> Vec<String> {
        read(&self.dir.join("expected.jsonl")).lines().map(String::from).collect()
    }

    fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.config())
    }

    /// The vector's config (its config.yaml, or the embedded default).
    fn config(&self) -> Config {
        struct Dir(PathBuf);
        impl FileSource for Dir {
            fn read(&self, path: &str) -> Result<Vec<u8>, kaudit::FileError> {
                std::fs::read(self.0.join(path)).map_err(|e| kaudit::FileError::new(path, e))
            }
        }
        match &self.config {
            Some(text) => Config::load(text, "config.yaml", &Dir(self.dir.clone())).expect("vector config").0,
            None => Config::embedded_default(),
        }
    }

    fn plugin(&self) -> String {
        format!("v_{}", self.name)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn vectors() -> Vec<Vector> {
    let root = support::workspace_root().join("tests/conformance/vectors");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("vectors dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 3, "conformance vectors missing in {}", root.display());
    dirs.into_iter()
        .map(|dir| Vector {
            name: dir.file_name().expect("name").to_string_lossy().into_owned(),
            config: std::fs::read_to_string(dir.join("config.yaml")).ok(),
            dir,
        })
        .collect()
}

/// The shipped config with ports and paths replaced and one listener per `(name, envelope)`
/// (`None`: the shipped plugin configuration), all on OS-assigned ports.
fn test_config(receiver: u16, alerts: u16, listeners: &[(String, Option<String>)], default_limits: bool) -> Value {
    test_config_with(&support::artifact(), receiver, alerts, listeners, default_limits)
}

fn test_config_with(
    wasm: &Path,
    receiver: u16,
    alerts: u16,
    listeners: &[(String, Option<String>)],
    default_limits: bool,
) -> Value {
    let mut config = shipped_config();
    config["admin"]["address"] = loopback(0);
    let mut base = config["static_resources"]["listeners"][0].clone();
    // These tests are about the filter, so they speak plain HTTP to the listener and the alert
    // sink; the shipped TLS is tested as shipped in tests/tls.rs.
    let tls = base["filter_chains"][0].as_object_mut().expect("filter chain").remove("transport_socket");
    assert!(tls.is_some(), "the shipped listener terminates TLS");
    assert_eq!(base["per_connection_buffer_limit_bytes"], 16_777_216, "the shipped listener raises the buffer limit");
    base["address"] = loopback(0);
    wasm_filter(&mut base)["vm_config"]["code"]["local"]["filename"] = json!(wasm);
    let mut out = Vec::new();
    for (name, envelope) in listeners {
        let mut l = base.clone();
        l["name"] = json!(name);
        l["stat_prefix"] = json!(name); // per-listener stats (all are configured on port 0)
        let plugin = wasm_filter(&mut l);
        plugin["name"] = json!(name);
        if let Some(envelope) = envelope {
            plugin["configuration"]["value"] = json!(envelope);
        }
        out.push(l);
    }
    if default_limits {
        let mut l = base.clone();
        l["name"] = json!("default_limits");
        l.as_object_mut().expect("listener").remove("per_connection_buffer_limit_bytes");
        wasm_filter(&mut l)["name"] = json!("default_limits");
        out.push(l);
    }
    config["static_resources"]["listeners"] = Value::Array(out);
    for cluster in config["static_resources"]["clusters"].as_array_mut().expect("clusters") {
        let port = match cluster["name"].as_str() {
            Some("audit_receiver") => receiver,
            Some("kaudit_alerts") => alerts,
            other => panic!("unexpected cluster {other:?} in the shipped config"),
        };
        assert_eq!(
            cluster["per_connection_buffer_limit_bytes"], 16_777_216,
            "the shipped clusters raise the buffer limit"
        );
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = loopback(port);
        cluster["type"] = json!("STATIC");
        if cluster["name"] == "kaudit_alerts" {
            let tls = cluster.as_object_mut().expect("cluster").remove("transport_socket");
            assert!(tls.is_some(), "the shipped alert route uses TLS");
        }
    }
    config
}

fn envelope(config: Option<&str>, alert_path: &str) -> String {
    let mut v = json!({ "alerts": { "cluster": "kaudit_alerts", "path": alert_path, "authority": "kaudit-alerts", "timeoutMs": 5000 } });
    if let Some(text) = config {
        v["config"] = json!(text);
    }
    v.to_string()
}

/// What the native engine forwards for `body` under `pipeline`, and how many events the
/// filter's worker feeds to the alert consumer (the events in its alert steps).
fn native(pipeline: &mut Pipeline, body: &[u8]) -> (Vec<u8>, u64) {
    let filtered = filter_body(pipeline, body);
    let fed = consume(pipeline.config().clone(), body, &mut Pipeline::new(pipeline.config().clone()));
    let forwarded = match &filtered {
        kaudit_envoy::batch::Filtered::Processed { body: Some(b), .. } => b.as_bytes().to_vec(),
        _ => body.to_vec(),
    };
    (forwarded, fed)
}

/// The filter's alert path natively: a worker of `config` filters `body`, `consumer` applies
/// its alert steps; returns the number of events applied.
fn consume(config: Config, body: &[u8], consumer: &mut Pipeline) -> u64 {
    let mut worker = Pipeline::alert_worker(config);
    let filtered = filter_body(&mut worker, body);
    assert!(worker.take_alerts().is_empty(), "a worker raises no alerts");
    match alert_steps(&mut worker, &filtered) {
        Some(steps) => consumer.apply_alert_steps(&steps).expect("steps of the same config"),
        None => 0,
    }
}

/// POSTs `body` to `path` on `port`, asserts 200, returns what the receiver got for it.
fn post(port: u16, path: &str, body: &[u8], receiver: &Recorder) -> Vec<u8> {
    let before = receiver.requests_to(path).len();
    let r = http(port, "POST", path, &[("content-type", "application/json")], body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    assert_eq!(r.status, 200, "POST {path}: {}", String::from_utf8_lossy(&r.body));
    let got = receiver.requests_to(path);
    assert_eq!(got.len(), before + 1, "the receiver got one request for {path}");
    let req = got.last().expect("request").clone();
    assert_eq!(req.method, "POST");
    req.body
}

fn metric(envoy: &Envoy, plugin: &str, name: &str) -> u64 {
    envoy.counter(&format!("wasmcustom.kaudit.{plugin}.{name}"))
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(String::from).collect()
}

#[test]
fn envoy_filters_webhook_batches_and_feeds_one_alert_consumer() {
    let started = Instant::now();
    let receiver = Recorder::start();
    let sink = Recorder::start();
    let vectors = vectors();
    // "empty": an empty plugin configuration, which means the embedded default.
    let mut listeners: Vec<(String, Option<String>)> =
        vec![(SHIPPED.to_string(), None), ("empty".to_string(), Some(String::new()))];
    for v in &vectors {
        listeners.push((v.plugin(), Some(envelope(v.config.as_deref(), &format!("/alerts/{}", v.plugin())))));
    }
    listeners.push(("limits".to_string(), Some(envelope(Some(LIMITS_CONFIG), "/alerts/limits"))));
    let dir = Arc::new(TempDir::new("main"));
    let envoy =
        Envoy::start(&test_config(receiver.port, sink.port, &listeners, true), dir).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("envoy ready after {:.1} s", started.elapsed().as_secs_f64());
    let shipped_port = envoy.listener_port(SHIPPED);

    // 1. Every conformance vector as an EventList: exactly the expected items, byte for byte.
    let mut fed_per_vector = Vec::new();
    for v in &vectors {
        let port = envoy.listener_port(&v.plugin());
        let body = event_list(&v.input_items());
        let got = post(port, &format!("/audit/{}", v.name), body.as_bytes(), &receiver);
        let items: Vec<String> = list_items(&got)
            .unwrap_or_else(|| panic!("{}: not an EventList: {}", v.name, String::from_utf8_lossy(&got)))
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(items, v.expected_items(), "{}: the receiver's items differ from expected.jsonl", v.name);
        let (want, fed) = native(&mut v.pipeline(), body.as_bytes());
        assert_eq!(got, want, "{}: the whole body differs from the native engine's", v.name);
        assert_eq!(metric(&envoy, &v.plugin(), "events_in"), v.input_items().len() as u64, "{}", v.name);
        assert_eq!(metric(&envoy, &v.plugin(), "batches"), 1, "{}", v.name);
        fed_per_vector.push(fed);
    }

    // 2. The shipped plugin configuration (embedded default policy) on the other framings.
    let seed = vectors.iter().find(|v| v.name == "seed-default").expect("the seed-default vector");
    let (seed_in, seed_expected) = (seed.input_items(), seed.expected_items());
    let mut shipped_native = Pipeline::embedded_default();
    let mut shipped_fed = 0u64;
    let mut shipped_batches = 0u64;
    let mut check_shipped = |path: &str, body: &[u8], shipped_fed: &mut u64| -> Vec<u8> {
        let got = post(shipped_port, path, body, &receiver);
        let (want, fed) = native(&mut shipped_native, body);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{path}: differs from the native engine"
        );
        *shipped_fed += fed;
        got
    };

    let array = format!("[{}]", seed_in.join(","));
    let got = check_shipped("/audit/array", array.as_bytes(), &mut shipped_fed);
    let items: Vec<&str> = list_items(&got).expect("a JSON array");
    assert!(got.starts_with(b"["), "an array stays an array");
    assert_eq!(items, seed_expected, "JSON array: items differ from seed-default/expected.jsonl");
    shipped_batches += 1;

    let jsonl = format!("{}\n", seed_in.join("\n"));
    let got = check_shipped("/audit/lines", jsonl.as_bytes(), &mut shipped_fed);
    assert_eq!(
        lines(&String::from_utf8(got).expect("utf-8")),
        seed_expected,
        "JSON lines: the body must be expected.jsonl"
    );
    shipped_batches += 1;

    // Vector's http sink: the JSON codec's array (Vector re-serialises events with sorted keys)
    // wrapped by payload_prefix/suffix; on the way back `. = .items` emits the items.
    let sorted: Vec<String> =
        seed_in.iter().map(|l| serde_json::from_str::<Value>(l).expect("seed input is JSON").to_string()).collect();
    let vector_body = format!("{VECTOR_PREFIX}[{}]{VECTOR_SUFFIX}", sorted.join(","));
    let got = check_shipped("/audit/vector", vector_body.as_bytes(), &mut shipped_fed);
    let v: Value = serde_json::from_slice(&got).expect("Vector's http_server source decodes the body as JSON");
    let emitted = v["items"].as_array().expect("`. = .items` has an array to emit");
    // Same events as expected.jsonl, whatever the key order Vector gave them.
    let want: Vec<Value> =
        seed_expected.iter().map(|l| serde_json::from_str(l).expect("expected.jsonl is JSON")).collect();
    assert_eq!(emitted, &want, "Vector path: `. = .items` must emit seed-default's expected events");
    shipped_batches += 1;

    let got = post(envoy.listener_port("empty"), "/audit/empty-config", event_list(&seed_in).as_bytes(), &receiver);
    assert_eq!(
        list_items(&got).expect("EventList"),
        seed_expected,
        "an empty configuration filters with the embedded default"
    );

    // 3. A bad body is forwarded untouched and counted, never rejected.
    let bad = b"this is not an audit batch {\"kind\":\"EventList\",\"items\":[";
    let got = post(shipped_port, "/audit/bad", bad, &receiver);
    assert_eq!(got, bad.to_vec(), "a bad body is forwarded byte for byte");
    assert_eq!(metric(&envoy, SHIPPED, "batches_untouched"), 1);
    shipped_batches += 1;

    // 4. A batch above Envoy's default 1 MiB buffer: 200 with the shipped limits, 413 without.
    let reps = 20;
    let big_items: Vec<String> = (0..reps).flat_map(|_| seed_in.iter().cloned()).collect();
    let big = event_list(&big_items);
    assert!(big.len() > 2 << 20, "the big batch is {} bytes", big.len());
    let got = check_shipped("/audit/big", big.as_bytes(), &mut shipped_fed);
    let want: Vec<String> = (0..reps).flat_map(|_| seed_expected.iter().cloned()).collect();
    assert_eq!(list_items(&got).expect("EventList"), want, "big batch: items");
    shipped_batches += 1;
    let r = http(envoy.listener_port("default_limits"), "POST", "/audit/big-default-limits", &[], big.as_bytes())
        .expect("POST");
    assert_eq!(r.status, 413, "without per_connection_buffer_limit_bytes Envoy refuses a buffered body > 1 MiB");

    // 5. Concurrent batches land on both workers; every kept event reaches the one consumer.
    let custom = vectors.iter().find(|v| v.name == "custom-policy").expect("custom-policy vector");
    let small = event_list(&custom.input_items());
    let (_, fed_small) = native(&mut Pipeline::embedded_default(), small.as_bytes());
    let threads = 8;
    let per_thread = 4;
    std::thread::scope(|s| {
        for t in 0..threads {
            let small = &small;
            s.spawn(move || {
                for i in 0..per_thread {
                    let r = http(shipped_port, "POST", &format!("/audit/concurrent/{t}/{i}"), &[], small.as_bytes())
                        .expect("POST");
                    assert_eq!(r.status, 200);
                }
            });
        }
    });
    let n = (threads * per_thread) as u64;
    shipped_fed += n * fed_small;
    shipped_batches += n;
    assert_eq!(receiver.requests_to("/audit/concurrent/").len() as u64, n);
    let per_worker = |w: &str| envoy.counter(&format!("listener.{SHIPPED}.{w}.downstream_cx_total"));
    let (w0, w1) = (per_worker("worker_0"), per_worker("worker_1"));
    assert!(w0 > 0 && w1 > 0, "both workers served the shipped listener: {w0} and {w1} connections");
    eprintln!("shipped listener connections per worker: {w0} and {w1}");

    assert_eq!(metric(&envoy, SHIPPED, "batches"), shipped_batches);
    assert_eq!(metric(&envoy, SHIPPED, "errors"), 0);
    let observed = wait_for(30, || (metric(&envoy, SHIPPED, "alert_events_observed") >= shipped_fed).then_some(()));
    assert!(
        observed.is_some(),
        "the alert consumer observed {} of {shipped_fed} kept events",
        metric(&envoy, SHIPPED, "alert_events_observed")
    );
    assert_eq!(
        metric(&envoy, SHIPPED, "alert_events_observed"),
        shipped_fed,
        "each kept event is observed exactly once"
    );

    // 6. Alerts: the sink receives exactly each vector's alerts.jsonl, once.
    for (v, fed) in vectors.iter().zip(&fed_per_vector) {
        let plugin = v.plugin();
        let got = wait_for(30, || (metric(&envoy, &plugin, "alert_events_observed") >= *fed).then_some(()));
        assert!(
            got.is_some(),
            "{}: the consumer observed {} of {fed} kept events",
            v.name,
            metric(&envoy, &plugin, "alert_events_observed")
        );
        let raised = consumer_path_alerts(v, event_list(&v.input_items()).as_bytes());
        let path = format!("/alerts/{plugin}");
        let received = || {
            sink.requests_to(&path).iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect::<String>()
        };
        // Alerts go out in the same callback that observes; one more tick flushes anything timed.
        wait_for(10, || (received().lines().count() >= raised.lines().count()).then_some(()));
        std::thread::sleep(std::time::Duration::from_millis(1_500));
        // Delivery: exactly what the consumer's pipeline raised, once.
        assert_eq!(received(), raised, "{}: the sink must receive the consumer's alerts exactly once", v.name);
        assert_eq!(metric(&envoy, &plugin, "alerts_sent"), raised.lines().count() as u64, "{}", v.name);
        assert_eq!(metric(&envoy, &plugin, "alerts_failed"), 0, "{}", v.name);
        // Conformance: the same alerts as every other host.
        assert_eq!(
            received(),
            read(&v.dir.join("alerts.jsonl")),
            "{}: the alert sink must receive exactly alerts.jsonl",
            v.name
        );
        for r in sink.requests_to(&path) {
            assert_eq!(r.method, "POST");
            assert_eq!(r.header(":authority").or(r.header("host")), Some("kaudit-alerts"));
        }
    }

    // 7. Limit hits are metrics: the workers' core counters and the consumer's alert statistics,
    // equal to the native engine's on the same path.
    let limited_config = || Config::load(LIMITS_CONFIG, "config.yaml", &kaudit::NoFiles).expect("limits config").0;
    let limited = || Pipeline::new(limited_config());
    let mut worker = Pipeline::alert_worker(limited_config());
    let mut consumer = limited();
    let port = envoy.listener_port("limits");
    let log = read(&support::workspace_root().join("tests/fixtures/alerts/seed-example2-internet.jsonl"));
    // Seed example 2 (many Internet addresses: groups to evict) and seed-default's events (some
    // stripped by the policy, some over 3,000 bytes).
    let items: Vec<String> = log.lines().map(String::from).chain(seed_in.iter().cloned()).collect();
    let body = event_list(&items);
    let got = post(port, "/audit/limits", body.as_bytes(), &receiver);
    let filtered = filter_body(&mut worker, body.as_bytes());
    if let Some(steps) = alert_steps(&mut worker, &filtered) {
        consumer.apply_alert_steps(&steps).expect("steps of the same config");
    }
    let (want, _) = native(&mut limited(), body.as_bytes());
    assert_eq!(got, want, "limits listener: differs from the native engine");
    let got = post(port, "/audit/limits-big", big.as_bytes(), &receiver);
    assert_eq!(got, big.as_bytes(), "a batch over maxBatchBytes is forwarded byte for byte");
    assert_eq!(
        filter_body(&mut worker, big.as_bytes()),
        kaudit_envoy::batch::Filtered::Untouched(kaudit_envoy::batch::Untouched::Oversized)
    );
    let (c, a) = (worker.counters(), consumer.alert_stats());
    assert!(c.oversized > 0 && c.stripped > 0 && a.groups_evicted > 0, "the batch hits the limits: {c:?} {a:?}");
    for (name, want) in [
        ("events_oversized", c.oversized),
        ("events_stripped", c.stripped),
        ("batches_oversized", 1),
        ("batches_untouched", 1),
        ("batches", 2),
    ] {
        assert_eq!(metric(&envoy, "limits", name), want, "limits listener: {name}");
    }
    let evicted = wait_for(30, || (metric(&envoy, "limits", "alert_groups_evicted") >= a.groups_evicted).then_some(()));
    assert!(
        evicted.is_some(),
        "the consumer evicted {} groups, the native one {}",
        metric(&envoy, "limits", "alert_groups_evicted"),
        a.groups_evicted
    );
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    for (name, want) in [
        ("alert_groups_evicted", a.groups_evicted),
        ("alert_distinct_overflow", a.distinct_overflow),
        ("alert_late_events", a.late_events),
        ("alerts_dropped", 0),
    ] {
        assert_eq!(metric(&envoy, "limits", name), want, "limits listener: {name}");
    }
    eprintln!("envoy test done in {:.1} s", started.elapsed().as_secs_f64());
}

/// The filter's alert path run natively: a worker pipeline (alerts off) filters `body`, a
/// consumer pipeline observes what it forwarded; the alerts as JSON lines.
fn consumer_path_alerts(v: &Vector, body: &[u8]) -> String {
    let mut consumer = v.pipeline();
    consume(v.config(), body, &mut consumer);
    consumer.take_alerts().into_iter().map(|a| a + "\n").collect()
}

/// The filter's alert path without Envoy must raise exactly the vector's alerts.jsonl, as the
/// native pipeline does with alerts on (tests/conformance.rs).
#[test]
fn worker_and_consumer_pipelines_raise_the_vectors_alerts() {
    for v in vectors() {
        let got = consumer_path_alerts(&v, event_list(&v.input_items()).as_bytes());
        assert_eq!(got, read(&v.dir.join("alerts.jsonl")), "{}: alerts through the Envoy path", v.name);
    }
}

/// The shipped build unwinds (std with panic=unwind, WebAssembly exception handling in V8): a
/// panic inside the pipeline is caught in the VM, the original batch is forwarded byte for byte
/// and counted, and the filter goes on with a fresh pipeline, on every worker, with no VM
/// reload. `kaudit-envoy-fault.wasm` is that build plus a trigger that panics on a marked body.
#[test]
fn a_panic_in_the_filter_forwards_the_original_batch_and_the_filter_goes_on() {
    let started = Instant::now();
    let receiver = Recorder::start();
    let sink = Recorder::start();
    let wasm = support::artifact_named("kaudit-envoy-fault.wasm");
    let config = test_config_with(&wasm, receiver.port, sink.port, &[(SHIPPED.to_string(), None)], false);
    let envoy = Envoy::start(&config, Arc::new(TempDir::new("fault"))).unwrap_or_else(|e| panic!("{e}"));
    let port = envoy.listener_port(SHIPPED);
    let seed = vectors().into_iter().find(|v| v.name == "seed-default").expect("seed-default vector");
    let items = seed.input_items();
    let trigger = std::str::from_utf8(kaudit_envoy::batch::FAULT_TRIGGER).expect("ASCII");
    let faulty =
        event_list(&items).replacen(r#""metadata":{}"#, &format!(r#""metadata":{{"resourceVersion":"{trigger}"}}"#), 1);
    assert!(faulty.contains(trigger));
    // The shipped plugin configuration is the embedded default.
    let (good_out, _) = native(&mut Pipeline::embedded_default(), event_list(&items).as_bytes());
    assert_ne!(
        good_out,
        event_list(&items).into_bytes(),
        "the policy changes this batch, so a forwarded original is told apart"
    );

    // Alternate faulty and good batches from several threads, so both workers panic and recover.
    let rounds = 6;
    std::thread::scope(|s| {
        for t in 0..2 {
            let (faulty, good, good_out) = (&faulty, event_list(&items), &good_out);
            let receiver = &receiver;
            s.spawn(move || {
                for i in 0..rounds {
                    let path = format!("/audit/fault/{t}/{i}");
                    let r = http(port, "POST", &path, &[("content-type", "application/json")], faulty.as_bytes())
                        .expect("POST");
                    assert_eq!(
                        r.status,
                        200,
                        "{path}: a panic must not fail the request: {}",
                        String::from_utf8_lossy(&r.body)
                    );
                    let got = receiver.requests_to(&path);
                    assert_eq!(got.len(), 1, "{path}");
                    assert_eq!(got[0].body, faulty.as_bytes(), "{path}: the original batch, byte for byte");
                    let path = format!("/audit/good/{t}/{i}");
                    let r = http(port, "POST", &path, &[], good.as_bytes()).expect("POST");
                    assert_eq!(r.status, 200, "{path}");
                    assert_eq!(
                        &receiver.requests_to(&path)[0].body,
                        good_out,
                        "{path}: filtered after a panic like by the native engine"
                    );
                }
            });
        }
    });
    let n = 2 * rounds as u64;
    assert_eq!(metric(&envoy, SHIPPED, "errors"), n, "each panic is counted");
    assert_eq!(metric(&envoy, SHIPPED, "batches_untouched"), n);
    assert_eq!(metric(&envoy, SHIPPED, "batches"), 2 * n);
    let per_worker = |w: &str| envoy.counter(&format!("listener.{SHIPPED}.{w}.downstream_cx_total"));
    let (w0, w1) = (per_worker("worker_0"), per_worker("worker_1"));
    assert!(w0 > 0 && w1 > 0, "both workers served: {w0} and {w1} connections");
    let reloads: u64 = envoy.counters("wasm.").into_iter().filter(|(k, _)| k.contains("reload")).map(|(_, v)| v).sum();
    assert_eq!(reloads, 0, "no VM failed or was reloaded:\n{}", envoy.log_tail(40));
    let log = std::fs::read_to_string(&envoy.log).unwrap_or_default();
    assert!(
        log.contains("internal error, batch forwarded untouched: fault injection"),
        "the panic is logged:\n{}",
        envoy.log_tail(40)
    );
    assert!(!log.contains("Exception"), "no trap:\n{}", envoy.log_tail(40));
    eprintln!(
        "{n} panics caught in Envoy ({w0}+{w1} connections), fault test done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_bad_plugin_configuration_stops_envoy() {
    let started = Instant::now();
    let bad = envelope(Some("policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules: 3\n"), "/alerts");
    let config = test_config(1, 1, &[("broken".to_string(), Some(bad))], false);
    let dir = TempDir::new("bad");
    let (status, log) = Envoy::start_expecting_failure(&config, &dir);
    assert!(!status.success(), "envoy must refuse to start:\n{log}");
    assert!(
        log.contains("invalid kaudit config: kaudit config (plugin configuration `config`):4:"),
        "the error names the line:\n{log}"
    );
    assert!(log.contains("rules"), "the error names the field:\n{log}");
    let line = log.lines().find(|l| l.contains("invalid kaudit config")).unwrap_or_default();
    eprintln!("envoy refused to start ({status}): {}", &line[line.find("wasm log").unwrap_or(0)..]);

    let typo = r#"{"confg": ""}"#.to_string();
    let config = test_config(1, 1, &[("typo".to_string(), Some(typo))], false);
    let dir = TempDir::new("typo");
    let (status, log) = Envoy::start_expecting_failure(&config, &dir);
    assert!(!status.success(), "envoy must refuse to start:\n{log}");
    assert!(log.contains("invalid plugin configuration: envoy plugin configuration:1:2: confg: unknown key"), "{log}");
    eprintln!("bad-config test done in {:.1} s", started.elapsed().as_secs_f64());
}

/// EKS through Amazon Data Firehose's HTTP-endpoint delivery and GKE through a Pub/Sub push
/// subscription: the receiver gets the native Events as one EventList (what the native engine
/// forwards), and Firehose gets the `{"requestId","timestamp"}` answer it requires.
#[test]
fn envoy_reads_firehose_and_pubsub_deliveries() {
    let receiver = Recorder::start();
    let sink = Recorder::start();
    let dir = Arc::new(TempDir::new("managed"));
    let envoy = Envoy::start(&test_config(receiver.port, sink.port, &[(SHIPPED.to_string(), None)], false), dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let port = envoy.listener_port(SHIPPED);
    let fixtures = support::workspace_root().join("tests/fixtures/managed");
    let firehose = std::fs::read(fixtures.join("eks/cloudwatch-synth/firehose-http-endpoint-request.json")).unwrap();
    let request_id = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f";
    let (want, _) = native(&mut Pipeline::embedded_default(), &firehose);
    assert!(want.starts_with(b"{\"kind\":\"EventList\""), "{}", String::from_utf8_lossy(&want));
    let gzipped = kaudit_testkit::gzip(&firehose);
    for (path, body, encoding) in
        [("/firehose/plain", firehose.clone(), None), ("/firehose/gzip", gzipped, Some("gzip"))]
    {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-amz-firehose-request-id", request_id),
            ("x-amz-firehose-protocol-version", "1.0"),
        ];
        if let Some(e) = encoding {
            headers.push(("content-encoding", e));
        }
        let r = http(port, "POST", path, &headers, &body).unwrap_or_else(|e| panic!("POST {path}: {e}"));
        assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.body));
        let answer: Value = serde_json::from_slice(&r.body).expect("Firehose's answer is JSON");
        assert_eq!(answer["requestId"], request_id, "{path}");
        assert!(answer["timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{path}: {answer}");
        assert!(answer.get("errorMessage").is_none());
        let got = receiver.requests_to(path);
        assert_eq!(got.len(), 1, "{path}");
        assert_eq!(String::from_utf8_lossy(&got[0].body), String::from_utf8_lossy(&want), "{path}");
        assert_eq!(got[0].header("content-encoding"), None, "{path}: the forwarded body is plain JSON");
    }
    // GKE: a Pub/Sub push request; Pub/Sub only needs a 2xx, which the receiver's answer is.
    let push = std::fs::read(fixtures.join("gke/pubsub-synth/push-request-body.json")).unwrap();
    let got = post(port, "/pubsub", &push, &receiver);
    let (want, _) = native(&mut Pipeline::embedded_default(), &push);
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
    let items = list_items(&got).expect("an EventList");
    assert_eq!(items.len(), 1);
    assert!(items[0].contains("\"kaudit/rebuilt-from\":\"gke-logentry\""), "{}", items[0]);
}

/// Vector's http sink with `compression: gzip` posts gzip of JSON lines: Envoy forwards the kept
/// events as plain JSON lines, what a JSON-lines receiver reads (they were one EventList before,
/// which Vector's http_server source read as one event per batch).
#[test]
fn envoy_forwards_gzip_json_lines_as_lines() {
    let receiver = Recorder::start();
    let sink = Recorder::start();
    let envoy = Envoy::start(
        &test_config(receiver.port, sink.port, &[(SHIPPED.to_string(), None)], false),
        Arc::new(TempDir::new("gzip-lines")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let port = envoy.listener_port(SHIPPED);
    let lines = std::fs::read(support::workspace_root().join("tests/fixtures/sample-audit.log")).unwrap();
    let (want, _) = native(&mut Pipeline::embedded_default(), &lines);
    let gzipped = kaudit_testkit::gzip(&lines);
    let headers = [("content-type", "application/x-ndjson"), ("content-encoding", "gzip")];
    let r = http(port, "POST", "/vector", &headers, &gzipped).unwrap_or_else(|e| panic!("POST: {e}"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let got = receiver.requests_to("/vector");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("content-encoding"), None, "the forwarded body is plain");
    assert_eq!(String::from_utf8_lossy(&got[0].body), String::from_utf8_lossy(&want));
    let kept = got[0].body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert!(kept > 80 && got[0].body.starts_with(b"{\"kind\":\"Event\""), "{kept} lines");
}

/// `alerts.routes` through the real Envoy: the consumer posts each route's payloads, rendered by
/// the core, to the route's target (a cluster of its own for Alertmanager; the shipped
/// `kaudit_alerts` cluster, another path, for Slack and DingTalk), with the format's
/// content type, and each payload passes its receiver's schema.
#[test]
fn alert_routes_post_each_format_to_its_own_target() {
    use kaudit_testkit::alert_schemas::{check_alertmanager, check_dingtalk, check_slack};
    let (receiver, sink, alertmanager) = (Recorder::start(), Recorder::start(), Recorder::start());
    let kaudit_config = "alerts:\n  routes:\n    - {name: am, format: alertmanager, labels: {cluster: test}}\n    \
                         - {name: chat, format: slack, maxAlertsPerMessage: 2}\n    - {name: ding, format: dingtalk, keyword: kaudit}\n";
    let envelope = json!({
        "config": kaudit_config,
        "alerts": {
            "cluster": "kaudit_alerts", "path": "/alerts", "authority": "kaudit-alerts", "timeoutMs": 5000,
            "routes": {
                "am": { "cluster": "alertmanager", "path": "/api/v2/alerts", "authority": "alertmanager.local" },
                "chat": { "path": "/services/T0/B0/x", "authority": "hooks.slack.com" },
                "ding": { "path": "/robot/send?access_token=t", "authority": "oapi.dingtalk.com", "dingtalkSecret": "SECtest" }
            }
        }
    });
    let mut config =
        test_config(receiver.port, sink.port, &[("routes".to_string(), Some(envelope.to_string()))], false);
    let clusters = config["static_resources"]["clusters"].as_array_mut().expect("clusters");
    let mut am_cluster = clusters.iter().find(|c| c["name"] == "kaudit_alerts").expect("kaudit_alerts").clone();
    am_cluster["name"] = json!("alertmanager");
    am_cluster["load_assignment"]["cluster_name"] = json!("alertmanager");
    am_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] =
        loopback(alertmanager.port);
    clusters.push(am_cluster);
    let envoy = Envoy::start(&config, Arc::new(TempDir::new("envoy-routes"))).unwrap_or_else(|e| panic!("{e}"));
    let port = envoy.listener_port("routes");

    let input = read(&support::workspace_root().join("tests/conformance/vectors/seed-alerts/input.jsonl"));
    let items: Vec<&str> = input.lines().filter(|l| !l.trim().is_empty()).collect();
    post(port, "/audit", event_list(&items).as_bytes(), &receiver);
    // What the consumer's pipeline raises on the forwarded events (the oracle for the payloads).
    let (loaded, _) = Config::load(kaudit_config, "kaudit.yaml", &kaudit::NoFiles).expect("config");
    let mut consumer = Pipeline::new(loaded.clone());
    let body = event_list(&items);
    consume(loaded.clone(), body.as_bytes(), &mut consumer);
    let alerts = consumer.take_alerts();
    assert!(alerts.len() >= 5, "the vector raises alerts: {}", alerts.len());

    let count = |path: &str, r: &Recorder, marker: &str| -> usize {
        r.requests_to(path).iter().map(|q| String::from_utf8_lossy(&q.body).matches(marker).count()).sum()
    };
    let delivered = wait_for(30, || {
        (count("/api/v2/alerts", &alertmanager, "\"alertname\"") >= alerts.len()
            && count("/services/", &sink, "*[") >= alerts.len()
            && count("/robot/send", &sink, "#### [") >= alerts.len())
        .then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert!(delivered.is_some(), "not every route got every alert:\n{}", envoy.log_tail(30));

    // Alertmanager: one array per drain; every alert once, as the core renders it.
    let route = loaded.alerts.route("am").expect("am");
    let want: Vec<Value> = loaded
        .alerts
        .payloads(route, &alerts)
        .iter()
        .flat_map(|p| serde_json::from_str::<Vec<Value>>(&p.body).expect("array"))
        .collect();
    let mut got = Vec::new();
    for r in alertmanager.requests_to("/api/v2/alerts") {
        let body = String::from_utf8(r.body.clone()).expect("utf-8");
        assert!(check_alertmanager(&body).is_ok(), "{:?}: {body}", check_alertmanager(&body));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header(":authority").or(r.header("host")), Some("alertmanager.local"));
        got.extend(serde_json::from_str::<Vec<Value>>(&body).expect("array"));
    }
    let key = |v: &Value| v.to_string();
    let (mut got_keys, mut want_keys): (Vec<String>, Vec<String>) =
        (got.iter().map(key).collect(), want.iter().map(key).collect());
    got_keys.sort();
    want_keys.sort();
    assert_eq!(got_keys, want_keys, "Alertmanager got each alert once");
    // Slack: at most 2 alerts a message; DingTalk: the keyword in every message.
    for r in sink.requests_to("/services/") {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(check_slack(&body), Ok(1), "{body}");
        assert!(body.matches("*[").count() <= 2, "{body}");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
    for r in sink.requests_to("/robot/send") {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(check_dingtalk(&body, Some("kaudit")), Ok(1), "{body}");
        // Signed with the secret over Envoy's clock at send time (DingTalk allows one hour).
        let ts: u64 = r
            .path
            .split("&timestamp=")
            .nth(1)
            .and_then(|t| t.split('&').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no timestamp in {}", r.path));
        assert!(now_ms.abs_diff(ts) < 120_000, "timestamp {ts} is not Envoy's clock ({now_ms})");
        assert_eq!(r.path, kaudit_envoy::dingtalk::signed_path("/robot/send?access_token=t", "SECtest", ts));
    }
    assert_eq!(count("/services/", &sink, "*["), alerts.len());
    assert_eq!(count("/robot/send", &sink, "#### ["), alerts.len());
    assert!(sink.requests_to("/alerts").is_empty(), "with routes, the JSON-lines target gets nothing");
    assert_eq!(metric(&envoy, "routes", "alerts_sent"), 3 * alerts.len() as u64, "each alert once per route");
    assert_eq!(metric(&envoy, "routes", "alerts_failed"), 0);
    eprintln!(
        "alert routes (Envoy): {} alerts; requests: alertmanager {}, slack {}, dingtalk {}",
        alerts.len(),
        alertmanager.requests_to("/api/v2/alerts").len(),
        sink.requests_to("/services/").len(),
        sink.requests_to("/robot/send").len()
    );
}

/// The collection switch (`enabled: false` / `true`, docs/ENABLE.md) reaching a running Envoy
/// without a restart: the listener comes from a file Envoy watches (LDS); writing the plugin
/// configuration with the new kaudit config and moving the file into place updates it.
#[test]
fn collection_switches_off_and_on_through_a_listener_update_without_a_restart() {
    let receiver = Recorder::start();
    let sink = Recorder::start();
    let on = envelope(Some("enabled: true\n"), "/alerts/switch");
    let off = envelope(Some("enabled: false\n"), "/alerts/switch");
    let mut config = test_config(receiver.port, sink.port, &[("switch".to_string(), Some(on.clone()))], false);
    // A fixed port: an updated listener keeps its socket only when the address is the same.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let mut listener = config["static_resources"]["listeners"][0].clone();
    listener["address"] = loopback(port);
    config["static_resources"].as_object_mut().expect("static").remove("listeners");
    let dir = Arc::new(TempDir::new("envoy-switch"));
    let lds = dir.0.join("lds.json");
    let write_lds = |plugin_configuration: &str| {
        let mut l = listener.clone();
        wasm_filter(&mut l)["configuration"]["value"] = json!(plugin_configuration);
        let resources = json!({ "resources": [
            { "@type": "type.googleapis.com/envoy.config.listener.v3.Listener" }
        ]});
        let mut resources = resources;
        for (k, v) in l.as_object().expect("listener") {
            resources["resources"][0][k] = v.clone();
        }
        // Envoy watches the path for moves: write aside, then rename into place.
        let tmp = dir.0.join("lds.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&resources).expect("json")).expect("lds");
        std::fs::rename(&tmp, &lds).expect("rename");
    };
    write_lds(&on);
    config["node"] = json!({ "id": "kaudit-switch-test", "cluster": "kaudit" });
    config["dynamic_resources"] =
        json!({ "lds_config": { "path_config_source": { "path": lds }, "resource_api_version": "V3" } });
    let envoy = Envoy::start(&config, dir.clone()).unwrap_or_else(|e| panic!("{e}"));
    let updates = || envoy.counter("listener_manager.lds.update_success");
    let switch = |plugin_configuration: &str| {
        let before = updates();
        let started = Instant::now();
        write_lds(plugin_configuration);
        let applied = wait_for(60, || {
            (updates() > before && envoy.counter("listener_manager.total_listeners_warming") == 0).then_some(())
        });
        assert!(applied.is_some(), "the listener update was not applied:\n{}", envoy.log_tail(30));
        started.elapsed()
    };

    let vector = support::workspace_root().join("tests/conformance/vectors/seed-default");
    let items: Vec<String> =
        read(&vector.join("input.jsonl")).lines().filter(|l| !l.is_empty()).map(String::from).collect();
    let body = event_list(&items);
    let expected: Vec<String> = read(&vector.join("expected.jsonl")).lines().map(String::from).collect();
    let forwarded_items = |forwarded: &[u8]| -> Vec<String> {
        list_items(forwarded).expect("an EventList").into_iter().map(String::from).collect()
    };

    // On: the batch's kept events go upstream.
    assert_eq!(forwarded_items(&post(port, "/audit", body.as_bytes(), &receiver)), expected, "on");
    let off_took = switch(&off);
    // Off: the batch is received, answered 200 and forwarded without events.
    let forwarded = post(port, "/audit", body.as_bytes(), &receiver);
    assert!(forwarded_items(&forwarded).is_empty(), "off: {}", String::from_utf8_lossy(&forwarded));
    let on_took = switch(&on);
    assert_eq!(forwarded_items(&post(port, "/audit", body.as_bytes(), &receiver)), expected, "on again");
    assert_eq!(envoy.counter("listener_manager.lds.update_rejected"), 0);
    eprintln!(
        "collection switch (Envoy, file-based LDS): off applied in {:.2} s, on in {:.2} s; {} events forwarded on, none off",
        off_took.as_secs_f64(),
        on_took.as_secs_f64(),
        expected.len()
    );
}

/// A Prometheus Alertmanager this test started (killed when dropped).
struct Alertmanager {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Alertmanager {
    fn start(bin: &Path) -> Alertmanager {
        let dir = TempDir::new("alertmanager");
        std::fs::write(dir.0.join("am.yml"), "route:\n  receiver: none\nreceivers:\n  - name: none\n").expect("config");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let log = std::fs::File::create(dir.0.join("am.log")).expect("log");
        let child = std::process::Command::new(bin)
            .arg(format!("--config.file={}", dir.0.join("am.yml").display()))
            .arg(format!("--storage.path={}", dir.0.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=") // no gossip: a single instance
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let am = Alertmanager { child, port, _dir: dir };
        let ready = wait_for(30, || http(port, "GET", "/-/ready", &[], b"").ok().filter(|r| r.status == 200));
        assert!(ready.is_some(), "Alertmanager not ready in 30 s");
        am
    }

    /// The alerts Alertmanager holds (`GET /api/v2/alerts`).
    fn alerts(&self) -> Vec<Value> {
        let r = http(self.port, "GET", "/api/v2/alerts", &[], b"").expect("GET /api/v2/alerts");
        serde_json::from_slice(&r.body).expect("alerts JSON")
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `alertmanager` format against the real receiver: Alertmanager (Debian's 0.25) accepts
/// every POST of Envoy's consumer (it answers 400 to a payload its API v2 refuses, e.g. an
/// invalid label name) and then holds exactly the alerts the core rendered, labels,
/// annotations and start times included.
#[test]
fn a_real_alertmanager_accepts_and_holds_every_alert_of_the_route() {
    let Some(bin) = support::real_hosts::require(&support::real_hosts::ALERTMANAGER, "Alertmanager route") else {
        return;
    };
    let am = Alertmanager::start(&bin);
    let (receiver, sink) = (Recorder::start(), Recorder::start());
    let kaudit_config = "alerts:\n  routes:\n    - {name: am, format: alertmanager, labels: {cluster: test}}\n";
    let envelope = json!({
        "config": kaudit_config,
        "alerts": { "routes": { "am": { "cluster": "alertmanager", "path": "/api/v2/alerts", "authority": "alertmanager.local" } } }
    });
    let mut config = test_config(receiver.port, sink.port, &[("am".to_string(), Some(envelope.to_string()))], false);
    let clusters = config["static_resources"]["clusters"].as_array_mut().expect("clusters");
    let mut am_cluster = clusters.iter().find(|c| c["name"] == "kaudit_alerts").expect("kaudit_alerts").clone();
    am_cluster["name"] = json!("alertmanager");
    am_cluster["load_assignment"]["cluster_name"] = json!("alertmanager");
    am_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = loopback(am.port);
    clusters.push(am_cluster);
    let envoy = Envoy::start(&config, Arc::new(TempDir::new("envoy-am"))).unwrap_or_else(|e| panic!("{e}"));

    let input = read(&support::workspace_root().join("tests/conformance/vectors/seed-alerts/input.jsonl"));
    let items: Vec<&str> = input.lines().filter(|l| !l.trim().is_empty()).collect();
    let body = event_list(&items);
    post(envoy.listener_port("am"), "/audit", body.as_bytes(), &receiver);
    // The oracle: the consumer path natively, and the core's rendering of its alerts.
    let (loaded, _) = Config::load(kaudit_config, "kaudit.yaml", &kaudit::NoFiles).expect("config");
    let mut consumer = Pipeline::new(loaded.clone());
    consume(loaded.clone(), body.as_bytes(), &mut consumer);
    let alerts = consumer.take_alerts();
    let route = loaded.alerts.route("am").expect("route");
    let rendered: Vec<Value> = loaded
        .alerts
        .payloads(route, &alerts)
        .iter()
        .flat_map(|p| serde_json::from_str::<Vec<Value>>(&p.body).expect("array"))
        .collect();
    // Alertmanager keeps one alert per label set (the last one posted).
    let mut want: Vec<(String, Value, i64)> = Vec::new();
    for a in &rendered {
        let starts = kaudit::parse_micros(a["startsAt"].as_str().expect("startsAt")).expect("time");
        let labels = a["labels"].to_string();
        want.retain(|(l, _, _)| *l != labels);
        want.push((labels, a["annotations"].clone(), starts / 1000));
    }
    let held = wait_for(30, || {
        let got = am.alerts();
        (got.len() >= want.len() && metric(&envoy, "am", "alerts_sent") == alerts.len() as u64).then_some(got)
    });
    let got = held.unwrap_or_else(|| {
        panic!(
            "Alertmanager holds {} of {} alerts; sent {}, failed {}:\n{}",
            am.alerts().len(),
            want.len(),
            metric(&envoy, "am", "alerts_sent"),
            metric(&envoy, "am", "alerts_failed"),
            envoy.log_tail(20)
        )
    });
    assert_eq!(metric(&envoy, "am", "alerts_failed"), 0, "Alertmanager refused a POST");
    // Alertmanager keeps times in milliseconds.
    let mut got: Vec<(String, Value, i64)> = got
        .iter()
        .map(|a| {
            let starts = kaudit::parse_micros(a["startsAt"].as_str().expect("startsAt")).expect("time");
            (a["labels"].to_string(), a["annotations"].clone(), starts / 1000)
        })
        .collect();
    // Labels are compared as JSON objects (Alertmanager may order keys differently).
    let norm = |v: &mut Vec<(String, Value, i64)>| {
        for (l, _, _) in v.iter_mut() {
            *l = serde_json::from_str::<Value>(l).expect("labels").to_string();
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
    };
    norm(&mut got);
    norm(&mut want);
    assert_eq!(got, want, "Alertmanager holds what the route rendered");
    assert!(got.iter().all(|(l, _, _)| l.contains("\"alertname\"") && l.contains("\"cluster\":\"test\"")));
    eprintln!(
        "Alertmanager: {} alerts posted by Envoy in {} request(s), accepted; {} held (one per label set)",
        alerts.len(),
        envoy.counters("cluster.alertmanager.upstream_rq_2xx").first().map(|(_, v)| *v).unwrap_or(0),
        got.len()
    );
}
