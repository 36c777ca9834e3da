//! The seed's alert examples, run by the embedded default rules on logs made for them
//! (tests/fixtures/alerts, written by generate.py there): Example 1 (exec into a container) and
//! Example 2 (failed Internet access: a burst of 401/403 from a public address amid intranet
//! traffic, a CI system, near misses and a slow trickle that must not fire). The pipeline runs
//! with the seed's own audit policy (the embedded default), GeoIP and a high-risk list.

use std::path::Path;

use kaudit::query::Query;
use kaudit::Event;
use kaudit::EventDoc;
use kaudit::Pipeline;
use serde_json::{json, Value};

mod support;

use support::seed_geo_files as geo_files;

/// The embedded default policy and alert rules, plus GeoIP and a high-risk list.
const CONFIG: &str = "enrichment:\n  geoip: [city.mmdb, asn.mmdb]\n  highRiskIPs: [203.0.113.48/29]\n";

fn pipeline() -> Pipeline {
    Pipeline::from_config_text(CONFIG, "seed-alerts.yaml", &geo_files()).unwrap().0
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alerts").join(name)).unwrap()
}

fn run(p: &mut Pipeline, input: &[u8]) -> Vec<Value> {
    let mut out = String::new();
    p.process_stream(input, &mut out, &mut |_| {});
    p.take_alerts().iter().map(|a| serde_json::from_str(a).unwrap()).collect()
}

fn of_rule<'a>(alerts: &'a [Value], rule: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["rule"] == rule).collect()
}

#[test]
fn seed_queries_run_verbatim_on_the_logs() {
    let exec = String::from_utf8(fixture("seed-example1-exec.jsonl")).unwrap();
    let q = Query::parse("verb : create and objectRef.subresource:exec and stage:  ResponseStarted").unwrap();
    let hits: Vec<String> = exec
        .lines()
        .filter_map(|l| {
            let ev = Event::parse(l).unwrap();
            let doc = EventDoc::new(&ev, "kaudit", None);
            q.matches(&doc).then(|| ev.user.name().to_string())
        })
        .collect();
    // Three exec sessions by create (the WebSocket one is a GET), each matched at ResponseStarted.
    assert_eq!(hits, ["kubernetes-admin", "alice", "bob"]);

    let internet = String::from_utf8(fixture("seed-example2-internet.jsonl")).unwrap();
    let q = Query::parse("NOT user.username: node NOT user.username: serviceaccount NOT user.username: apiserver NOT user.username: kube-scheduler NOT user.username: kube-controller-manager").unwrap();
    let mut users: Vec<String> = internet
        .lines()
        .filter_map(|l| {
            let ev = Event::parse(l).unwrap();
            q.matches(&EventDoc::new(&ev, "kaudit", None)).then(|| ev.user.name().to_string())
        })
        .collect();
    users.sort();
    users.dedup();
    // Kubelets (system:node:...) and the deployer service account are filtered out.
    assert_eq!(users, ["", "ci-bot", "dave", "system:anonymous"]);
}

#[test]
fn example1_exec_alerts() {
    let mut p = pipeline();
    let alerts = run(&mut p, &fixture("seed-example1-exec.jsonl"));
    let exec = of_rule(&alerts, "exec-into-container");
    assert_eq!(exec.len(), 4, "one alert per exec session (its ResponseStarted stage)");
    let fields: Vec<&Value> = exec.iter().map(|a| &a["fields"]).collect();
    assert_eq!(
        *fields[0],
        json!({
            "eventID": exec[0]["auditIDs"][0],
            "time": "2024-05-14T10:01:05.000000Z",
            "namespace": "default",
            "pod": "web-7c5ddbdf54-x8k2p",
            "container": "nginx",
            "command": "sh -c cat /etc/nginx/nginx.conf",
            "statusCode": 101,
            // The seed's CASE: kubernetes-admin is attributed to the user its RoleBinding names.
            "account": "27689245",
            "sourceIP": "47.96.1.20"
        })
    );
    assert_eq!(
        (fields[1]["account"].as_str(), fields[1]["command"].as_str(), fields[1]["namespace"].as_str()),
        (Some("alice"), Some("/bin/bash"), Some("shop"))
    );
    // A forbidden attempt is still an attempt to log on to a container.
    assert_eq!((fields[2]["account"].as_str(), fields[2]["statusCode"].as_i64()), (Some("bob"), Some(403)));
    for a in &exec {
        assert_eq!(a["severity"], "high");
        assert_eq!(a["time"], a["fields"]["time"]);
        assert_eq!(a["auditIDs"].as_array().unwrap().len(), 1);
        assert_eq!(a["groupKey"], json!({}));
        assert!(a.get("aggregates").is_none());
    }
    // The administrator connected from the Internet: one internet-access alert, nothing else.
    let mut rules: Vec<&str> = alerts.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    rules.sort();
    // carol's exec over WebSocket (verb get), which the seed's query alone would miss.
    assert_eq!(
        (fields[3]["account"].as_str(), fields[3]["command"].as_str(), fields[3]["container"].as_str()),
        (Some("carol"), Some("ls"), Some("nginx"))
    );
    assert_eq!(
        rules,
        ["exec-into-container", "exec-into-container", "exec-into-container", "exec-into-container", "internet-access"]
    );
}

#[test]
fn example2_failed_internet_access() {
    let mut p = pipeline();
    let alerts = run(&mut p, &fixture("seed-example2-internet.jsonl"));
    let failures = of_rule(&alerts, "internet-access-failures");
    // Two bursts from 203.0.113.50, twenty minutes apart: one alert each. Nothing for the CI
    // system (no failures), 203.0.113.51 (41.7% failed), 203.0.113.52 (exactly 10 requests),
    // the slow trickle from 192.0.2.77 (at most 7 in any 5 minutes) or intranet failures.
    assert_eq!(failures.len(), 2, "{failures:#?}");
    // The seed's policy drops /version (level None), so those allowed calls are not in the log:
    // the 11th logged request of each burst is its 13th request, 30 s in, and every logged one failed.
    for (a, time) in failures.iter().zip(["2024-05-14T10:05:30.000000Z", "2024-05-14T10:25:30.000000Z"]) {
        assert_eq!(a["time"], time);
        assert_eq!(a["groupKey"], json!({"kaudit.sourceIP": "203.0.113.50"}));
        assert_eq!(a["aggregates"], json!({"count": 11, "failures": 11, "failureRate": 100, "forbidden": 9}));
        assert_eq!(
            a["fields"],
            json!({"sourceIP": "203.0.113.50", "highRiskIP": true, "country": "China", "province": "Zhejiang", "city": "Hangzhou", "isp": "Example Hosting Ltd."})
        );
        assert_eq!(a["auditIDs"].as_array().unwrap().len(), 10, "bounded to limits.maxAuditIDs");
        assert_eq!(a["window"]["end"], time);
        assert_eq!(a["severity"], "high");
    }
    // internet-access: the first request from each Internet address (throttled per hour).
    let mut ips: Vec<&str> =
        of_rule(&alerts, "internet-access").iter().map(|a| a["fields"]["sourceIP"].as_str().unwrap()).collect();
    ips.sort();
    assert_eq!(ips, ["192.0.2.77", "198.51.100.10", "203.0.113.50", "203.0.113.51", "203.0.113.52"]);
    // Denied secret listings are failures, not secret access.
    assert!(of_rule(&alerts, "secret-access").is_empty());
    assert_eq!(alerts.len(), 7);
}

#[test]
fn a_replay_raises_the_same_alerts() {
    let input = fixture("seed-example2-internet.jsonl");
    let first: Vec<String> = {
        let mut p = pipeline();
        let mut out = String::new();
        p.process_stream(&input, &mut out, &mut |_| {});
        p.take_alerts()
    };
    // Record by record (as Fluent Bit feeds it), draining alerts as it goes.
    let mut p = pipeline();
    let mut again = Vec::new();
    for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut out = String::new();
        p.process_record(line, &mut out);
        again.extend(p.take_alerts());
    }
    assert_eq!(first, again);
    assert_eq!(first.len(), 7);
}

#[test]
fn out_of_order_events_within_the_window_raise_the_same_bursts() {
    let text = String::from_utf8(fixture("seed-example2-internet.jsonl")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // Swap neighbours throughout (a few seconds of disorder, as from several apiservers).
    for i in (0..lines.len() - 1).step_by(2) {
        lines.swap(i, i + 1);
    }
    let mut p = pipeline();
    let alerts = run(&mut p, lines.join("\n").as_bytes());
    let failures = of_rule(&alerts, "internet-access-failures");
    assert_eq!(failures.len(), 2);
    for a in failures {
        assert_eq!(a["groupKey"]["kaudit.sourceIP"], "203.0.113.50");
        assert!(a["aggregates"]["count"].as_u64().unwrap() >= 11);
    }
}

#[test]
fn alerts_off_and_rules_disabled() {
    let config = format!("{CONFIG}alerts:\n  disable: [internet-access, exec-into-container]\n");
    let mut p = Pipeline::from_config_text(&config, "c.yaml", &geo_files()).unwrap().0;
    let alerts = run(&mut p, &fixture("seed-example2-internet.jsonl"));
    assert_eq!(alerts.len(), 2);
    let mut p =
        Pipeline::from_config_text(&format!("{CONFIG}alerts:\n  enabled: false\n"), "c.yaml", &geo_files()).unwrap().0;
    assert!(run(&mut p, &fixture("seed-example2-internet.jsonl")).is_empty());
}
