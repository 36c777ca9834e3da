//! Three Envoy replicas behind the audit webhook, each running the kaudit filter in
//! `alerts.role: agent` (docs/SCALING.md): the apiservers' events go to the replicas round robin
//! (with two, one half of the seed's attack is enough to fire on its own), each replica's alert consumer sends its partial records to the alert
//! cluster with its alerts, and an aggregator merging what that cluster received raises exactly
//! the alerts one kaudit instance raises on the whole stream, rule by rule and count by count,
//! while no third alone raises the seed's Example 2. The shipped envoy.yaml is used with
//! plain HTTP (TLS is tests/tls.rs's subject), the ports, and a node id per replica (what names
//! each agent).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kaudit::Pipeline;
use serde_json::{json, Value};
use support::{event_list, http, plain_loopback_config, wait_for, wasm_filter, Envoy, Recorder, TempDir};

const ALERT_PATH: &str = "/kaudit/alerts";
const REPLICAS: usize = 3;
const WINDOWED: &str = "internet-access-failures";
const AGENT_CONFIG: &str = "alerts:\n  role: agent\n  aggregation:\n    perEventRules: aggregator\n    flushEvery: 0\n";

/// The shipped config for one replica: plain HTTP, the receiver and alert sink on loopback.
fn replica_config(node: &str, receiver: u16, alerts: u16) -> Value {
    let mut config = plain_loopback_config(receiver, alerts);
    config["node"] = json!({ "id": node, "cluster": "kaudit" });
    let listener = &mut config["static_resources"]["listeners"][0];
    let filter = wasm_filter(listener);
    filter["vm_config"]["code"]["local"]["filename"] = json!(support::artifact());
    filter["configuration"]["value"] = json!(json!({
        "config": AGENT_CONFIG,
        "alerts": { "cluster": "kaudit_alerts", "path": ALERT_PATH, "authority": "kaudit-aggregator", "timeoutMs": 5000 }
    })
    .to_string());
    config
}

/// The seed's Example 2 log, then Example 1 moved to follow it, then one late event per replica
/// that no rule matches (it moves each replica's watermark past the last period).
fn stream() -> Vec<String> {
    let dir = support::workspace_root().join("tests/fixtures/alerts");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).expect("fixture");
    let mut lines: Vec<String> = read("seed-example2-internet.jsonl").lines().map(String::from).collect();
    lines.extend(read("seed-example1-exec.jsonl").lines().map(|l| l.replace("2024-05-14T10:0", "2024-05-14T10:4")));
    for i in 0..REPLICAS {
        lines.push(format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"clock-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps/app","verb":"get","user":{{"username":"alice","groups":["system:authenticated"]}},"sourceIPs":["10.0.8.21"],"objectRef":{{"resource":"configmaps","namespace":"default","name":"app","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2024-05-14T11:05:0{i}.000000Z","stageTimestamp":"2024-05-14T11:05:0{i}.100000Z"}}"#
        ));
    }
    lines.retain(|l| !l.trim().is_empty());
    lines
}

fn run(pipeline: &mut Pipeline, lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        pipeline.process_document(l.as_bytes(), i + 1, &mut out, &mut |_| {});
        out.clear();
    }
    pipeline.finish_alerts();
    pipeline.take_alerts()
}

fn by_rule(alerts: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in alerts {
        let v: Value = serde_json::from_str(a).expect("alert JSON");
        m.entry(v["rule"].as_str().unwrap_or("?").to_string()).or_default().push(a.clone());
    }
    m.values_mut().for_each(|v| v.sort());
    m
}

#[test]
fn envoy_replicas_as_agents_merge_to_the_alerts_of_one_instance() {
    let lines = stream();
    let want = by_rule(&run(&mut Pipeline::embedded_default(), &lines));
    assert_eq!(want.get(WINDOWED).map(Vec::len), Some(2), "{want:#?}");
    let shares: Vec<Vec<String>> =
        (0..REPLICAS).map(|h| lines.iter().skip(h).step_by(REPLICAS).cloned().collect::<Vec<_>>()).collect();
    for (i, share) in shares.iter().enumerate() {
        assert!(!by_rule(&run(&mut Pipeline::embedded_default(), share)).contains_key(WINDOWED), "share {i} alone");
    }

    let (receiver, sink) = (Recorder::start(), Recorder::start());
    let replicas: Vec<Envoy> = (0..REPLICAS)
        .map(|i| {
            let config = replica_config(&format!("replica-{i}"), receiver.port, sink.port);
            Envoy::start(&config, Arc::new(TempDir::new(&format!("envoy-agent-{i}")))).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let ports: Vec<u16> = replicas.iter().map(|e| e.listener_port("audit_webhook")).collect();
    // The apiservers' webhook batches, a few events each, to the replicas in turn (side by
    // side in event time, as live apiservers post them).
    let batches: Vec<Vec<&[String]>> = shares.iter().map(|s| s.chunks(4).collect()).collect();
    for j in 0..batches.iter().map(Vec::len).max().unwrap_or(0) {
        for (i, replica) in batches.iter().enumerate() {
            let Some(batch) = replica.get(j) else { continue };
            let body = event_list(batch);
            let r = http(ports[i], "POST", "/audit", &[("content-type", "application/json")], body.as_bytes())
                .expect("POST /audit");
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
    }
    // What the alert cluster received: JSON lines, partial and watermark records only (every
    // rule goes to the aggregator); wait until every replica' last watermarks are in.
    let records = || -> Vec<String> {
        sink.requests_to(ALERT_PATH)
            .iter()
            .flat_map(|r| String::from_utf8_lossy(&r.body).lines().map(String::from).collect::<Vec<_>>())
            .collect()
    };
    let done = wait_for(60, || {
        let got = records();
        (0..REPLICAS)
            .all(|i| {
                got.iter().any(|r| {
                    r.contains("KauditWatermark") && r.contains(&format!("replica-{i}")) && r.contains("T11:04:")
                })
            })
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(1_000));
    let got = records();
    let last_marks: BTreeMap<String, String> = got
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(r).ok())
        .filter(|v| v["kind"] == "KauditWatermark")
        .map(|v| (v["agent"].as_str().unwrap_or("").to_string(), v["time"].as_str().unwrap_or("").to_string()))
        .collect();
    assert!(done.is_some(), "not all watermarks arrived: {} records, last {last_marks:?}", got.len());
    assert!(got.iter().all(|r| r.contains("\"kind\":\"Kaudit")), "agents send partials only");
    let agents: std::collections::BTreeSet<String> = got
        .iter()
        .map(|r| serde_json::from_str::<Value>(r).expect("record")["agent"].as_str().unwrap_or("").to_string())
        .collect();
    let names: std::collections::BTreeSet<String> = (0..REPLICAS).map(|i| format!("replica-{i}")).collect();
    assert_eq!(agents, names, "each replica names itself by its node id");

    // The aggregator: `kaudit aggregate` (the binary `cargo xtask test` builds) on the lines the
    // alert cluster received. The consumers' POSTs may overtake each other, so it merges the
    // records in the order of the event time they were sent at (docs/SCALING.md).
    let cli = std::env::var_os("KAUDIT_CLI")
        .expect("KAUDIT_CLI is not set: run through `cargo xtask test` (it builds `kaudit` and names it)");
    let dir = TempDir::new("envoy-aggregate");
    let received = dir.0.join("received.jsonl");
    std::fs::write(&received, got.iter().map(|r| format!("{r}\n")).collect::<String>()).expect("write");
    std::fs::write(dir.0.join("kaudit.yaml"), "alerts:\n  role: aggregator\n  aggregation:\n    agents: 3\n")
        .expect("write");
    let out = std::process::Command::new(cli)
        .current_dir(&dir.0)
        .args(["aggregate", "--config", "kaudit.yaml", "received.jsonl"])
        .output()
        .expect("kaudit aggregate");
    assert!(out.status.success(), "kaudit aggregate: {}", String::from_utf8_lossy(&out.stderr));
    let alerts: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    let got_by_rule = by_rule(&alerts);
    if got_by_rule != want {
        let all_want: Vec<&String> = want.values().flatten().collect();
        let all_got: Vec<&String> = got_by_rule.values().flatten().collect();
        let missing: Vec<&&String> = all_want.iter().filter(|a| !all_got.contains(a)).collect();
        let extra: Vec<&&String> = all_got.iter().filter(|a| !all_want.contains(a)).collect();
        panic!("the aggregator's alerts differ from one instance's:\nmissing: {missing:#?}\nextra: {extra:#?}");
    }
    eprintln!(
        "{REPLICAS} Envoy replicas: {} events in, {} partial/watermark records to the alert cluster, {} alerts, equal",
        lines.len(),
        got.len(),
        alerts.len()
    );
}
