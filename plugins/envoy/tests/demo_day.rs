//! `cargo xtask demo`'s Envoy step (ignored by `cargo test`: it needs the demo's files). The demo
//! day (`kaudit demo-log`) is posted, 2,000 events an `EventList` as kube-apiserver's webhook
//! backend batches them, to kaudit-envoy.wasm in a real Envoy on the shipped plugins/envoy/envoy.yaml
//! (ports and the module path replaced). The receiver must get exactly the events the native
//! `kaudit run` kept, byte for byte, and the alert sink exactly its alerts.
//!
//! `KAUDIT_DEMO_DIR` names the demo's folder: day.log (input), kept.log and alerts.jsonl (the
//! native CLI's output); the events Envoy forwarded are written to kept-envoy.log there.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use kaudit_envoy::batch::for_each_item;
use serde_json::{json, Value};
use support::{http, wait_for, Envoy, Recorder, TempDir};

const BATCH: usize = 2_000;

fn loopback(port: u16) -> Value {
    json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } })
}

/// The shipped envoy.yaml, on loopback ports, loading the built module.
fn config(receiver: u16, alerts: u16) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy.yaml");
    let text = std::fs::read_to_string(&path).expect("envoy.yaml");
    let mut config = support::yaml_to_json(&kaudit::yaml::parse(&text, "envoy.yaml").expect("envoy.yaml parses"));
    config["admin"]["address"] = loopback(0);
    let listener = &mut config["static_resources"]["listeners"][0];
    listener["address"] = loopback(0);
    // Plain HTTP on loopback: the demo is about the filter (tests/tls.rs tests the shipped TLS).
    listener["filter_chains"][0].as_object_mut().unwrap().remove("transport_socket");
    for filter in listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"].as_array_mut().unwrap() {
        if filter["name"] == "envoy.filters.http.wasm" {
            filter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = json!(support::artifact());
        }
    }
    for cluster in config["static_resources"]["clusters"].as_array_mut().unwrap() {
        let port = if cluster["name"] == "audit_receiver" { receiver } else { alerts };
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = loopback(port);
        cluster["type"] = json!("STATIC");
        cluster.as_object_mut().unwrap().remove("transport_socket");
    }
    config
}

#[test]
#[ignore = "cargo xtask demo runs it, with KAUDIT_DEMO_DIR"]
fn demo_day_through_envoy() {
    let dir = PathBuf::from(std::env::var_os("KAUDIT_DEMO_DIR").expect("KAUDIT_DEMO_DIR (cargo xtask demo sets it)"));
    let day = std::fs::read_to_string(dir.join("day.log")).expect("day.log");
    let receiver = Recorder::start();
    let sink = Recorder::start();
    let envoy = Envoy::start(&config(receiver.port, sink.port), Arc::new(TempDir::new("demo"))).expect("envoy starts");
    let port = envoy.listener_port("audit_webhook");
    let started = Instant::now();
    let events: Vec<&str> = day.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut posted = 0;
    for batch in events.chunks(BATCH) {
        let body = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
            batch.join(",")
        );
        let r = http(port, "POST", "/", &[("content-type", "application/json")], body.as_bytes()).expect("POST");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        posted += batch.len();
    }
    let took = started.elapsed();
    let mut kept = Vec::new();
    for request in receiver.requests() {
        for_each_item(&request.body, &mut |item| {
            kept.extend_from_slice(item);
            kept.push(b'\n');
        });
    }
    std::fs::write(dir.join("kept-envoy.log"), &kept).expect("kept-envoy.log");
    let native = std::fs::read(dir.join("kept.log")).expect("kept.log");
    println!(
        "envoy: {posted} events in {} batches in {:.1} s ({:.0} events/s); forwarded {} events, {:.1} MB",
        events.len().div_ceil(BATCH),
        took.as_secs_f64(),
        posted as f64 / took.as_secs_f64(),
        kept.iter().filter(|b| **b == b'\n').count(),
        kept.len() as f64 / 1e6
    );
    assert!(kept == native, "Envoy forwarded {} bytes, the native CLI kept {}", kept.len(), native.len());

    let alerts = std::fs::read_to_string(dir.join("alerts.jsonl")).expect("alerts.jsonl");
    let received = || sink.requests().iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect::<String>();
    wait_for(30, || (received().lines().count() >= alerts.lines().count()).then_some(()));
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert_eq!(received(), alerts, "the alert sink must receive exactly the native alerts");
    println!("envoy: the same events, byte for byte, and the same {} alerts as the native CLI", alerts.lines().count());
}
