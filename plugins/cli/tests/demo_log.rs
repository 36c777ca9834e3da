//! `kaudit demo-log`: the demo's day of audit log is deterministic, reads as audit events, and
//! holds what the demo promises: control-plane chatter the seed's policy drops or trims, and the
//! handful of events its alert rules are for.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kaudit(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kaudit")).args(args).output().unwrap();
    assert!(out.status.success(), "kaudit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn a_deterministic_day_that_shows_what_the_policy_and_the_alerts_are_for() {
    let dir = std::env::temp_dir().join(format!("kaudit-demo-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("day.log");
    let path = log.to_str().unwrap();
    kaudit(&["demo-log", "-o", path]);
    // Deterministic: stdout gives the same bytes as the file.
    let again = kaudit(&["demo-log"]).stdout;
    let bytes = std::fs::read(&log).unwrap();
    assert!(again == bytes, "two runs differ ({} and {} bytes)", again.len(), bytes.len());
    let lines = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    assert!(lines > 300_000, "{lines} events: a day at the components' default rates");

    // The seed's policy: the kubelets' node reads and the load balancer's /healthz are dropped,
    // RequestReceived is omitted, leases keep metadata only; most of the bytes go.
    let policy = root().join("rules/ack-default-audit-policy.yaml");
    let impact = kaudit(&["policy", "impact", "--json", "--policy", policy.to_str().unwrap(), path]).stdout;
    let impact: Value = serde_json::from_slice(&impact).unwrap();
    let rule = |line: u64| impact["rules"].as_array().unwrap().iter().find(|r| r["line"] == line).unwrap().clone();
    let nodes = rule(28); // level None: userGroups system:nodes, get nodes
    assert!(nodes["events"].as_u64().unwrap() > 60_000 && nodes["kept"] == 0, "{nodes}");
    let healthz = rule(51); // level None: /healthz*
    assert!(healthz["events"].as_u64().unwrap() > 17_000 && healthz["kept"] == 0, "{healthz}");
    let catch_all = rule(105); // Metadata: everything else (leases, metrics.k8s.io)
    assert!(catch_all["bytesAfter"].as_u64().unwrap() * 2 < catch_all["bytesBefore"].as_u64().unwrap());
    // Where the savings come from, largest first: the node reads, then the leases' bodies, then
    // the RequestReceived stage.
    let savings: Vec<(String, Value)> = impact["savings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["cause"].as_str().unwrap().to_string(), s["line"].clone()))
        .collect();
    assert_eq!(
        savings[..3],
        [
            ("level None".to_string(), Value::from(28)),
            ("bodies cut by the level".to_string(), Value::from(105)),
            ("omitStages RequestReceived".to_string(), Value::Null)
        ]
    );
    let total = &impact["total"];
    let (before, after) = (total["bytesBefore"].as_u64().unwrap(), total["bytesAfter"].as_u64().unwrap());
    assert!(after * 100 < before * 35, "{after} of {before} bytes kept");
    // Every line is an audit event.
    assert_eq!((total["events"].as_u64(), impact["bad"].as_u64()), (Some(lines), Some(0)));

    // The seed's alert rules (kaudit run, embedded default): exactly these.
    let alerts_file = dir.join("alerts.jsonl");
    kaudit(&["run", "--no-events", "--alerts", alerts_file.to_str().unwrap(), path]);
    let alerts: Vec<Value> =
        std::fs::read_to_string(&alerts_file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seen: BTreeSet<String> = alerts
        .iter()
        .map(|a| {
            let f = &a["fields"];
            let what = f["name"].as_str().or(f["secret"].as_str()).or(f["pod"].as_str()).or(f["sourceIP"].as_str());
            format!("{} {} {}", a["rule"].as_str().unwrap(), f["account"].as_str().unwrap_or("-"), what.unwrap_or("-"))
        })
        .collect();
    let want: BTreeSet<String> = [
        "internet-access system:anonymous 203.0.113.45",
        "internet-access-failures - 203.0.113.45",
        "exec-into-container bob payments-api-6f7d9c8b5-h2xkv",
        // ACK's shared kubernetes-admin certificate, attributed to the RAM user its binding names.
        "secret-access 27689245 postgres-credentials",
        "resource-deletion alice cart-7b9c6d5f48-qz2lk",
        "resource-deletion bob preview-pr-1432",
    ]
    .into_iter()
    .map(String::from)
    .chain(
        (29_140..29_146).map(|n| format!("resource-deletion system:serviceaccount:ci:deployer integration-tests-{n}")),
    )
    .chain(
        ["shop-frontend-config-39", "cart-config-40", "shop-frontend-config-41", "payments-api-config-42"]
            .into_iter()
            .chain(["shop-frontend-config-43", "cart-config-44", "payments-api-config-45"])
            .map(|c| format!("resource-deletion system:serviceaccount:ci:deployer {c}")),
    )
    .collect();
    assert_eq!(seen, want);
    assert_eq!(alerts.len(), want.len(), "one alert each");
    let exec = alerts.iter().find(|a| a["rule"] == "exec-into-container").unwrap();
    assert_eq!(exec["fields"]["command"], "/bin/sh -c cat /etc/resolv.conf; env");
    std::fs::remove_dir_all(&dir).unwrap();
}
