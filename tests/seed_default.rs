//! The seed's default policy (ACK, audit.k8s.io/v1beta1) applied to real events: the Falco
//! traces (minikube) and audit2rbac's live log, with the decisions and edits worked out by hand
//! from the policy's rules.

use std::path::Path;

use kaudit::Event;
use kaudit::{default_policy, Evaluator};
use kaudit::{explain_json, Outcome};
use kaudit::{Level, Pipeline};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

fn policy_only() -> Pipeline {
    let mut config = kaudit::Config::embedded_default();
    config.enrichment.enabled = false;
    Pipeline::new(config)
}

/// (trace, matching rule, decided level). Rule indexes of the seed policy: 8 = secrets/configmaps
/// at Metadata, 9 = get/list/watch on known groups at Request, 10 = known groups at
/// RequestResponse, 11 = everything else at Metadata.
const DECISIONS: &[(&str, usize, Level)] = &[
    ("create_configmap.json", 8, Level::Metadata),
    ("create_secret.json", 8, Level::Metadata),
    ("delete_secret.json", 8, Level::Metadata),
    ("exec_pod.json", 10, Level::RequestResponse),
    ("attach_pod.json", 10, Level::RequestResponse),
    ("create_clusterrolebinding.json", 10, Level::RequestResponse),
    ("delete_namespace_foo.json", 10, Level::RequestResponse),
    // A node's GET of a pod: rule 3 (system:nodes get nodes) is for nodes only, so rule 9.
    ("create_nginx_pod_unsensitive_mount.json", 9, Level::Request),
    ("anonymous_creates_namespace_foo.json", 10, Level::RequestResponse),
];

#[test]
fn decisions_on_falco_traces() {
    let e = Evaluator::new(default_policy());
    for (file, rule, level) in DECISIONS {
        let text = fixture(&format!("falco/{file}"));
        let ev = Event::parse(text.trim()).unwrap();
        let d = e.evaluate_event(&ev);
        assert_eq!((d.rule, d.level), (Some(*rule), *level), "{file}: {}", explain_json(&ev, &d));
        assert_eq!(*d.omit_stages, ["RequestReceived"]);
    }
}

#[test]
fn configmap_create_is_cut_to_metadata() {
    let text = fixture("falco/create_configmap.json");
    let mut out = Vec::new();
    assert_eq!(policy_only().process_record(text.trim().as_bytes(), &mut out), Outcome::Kept { changed: true });
    let before: serde_json::Value = serde_json::from_str(&text).unwrap();
    let after: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(before["level"], "RequestResponse");
    assert!(before.get("requestObject").is_some() && before.get("responseObject").is_some());
    assert_eq!(after["level"], "Metadata");
    assert!(after.get("requestObject").is_none() && after.get("responseObject").is_none());
    // Everything else is untouched.
    let mut b = before.as_object().unwrap().clone();
    b.remove("requestObject");
    b.remove("responseObject");
    b.insert("level".into(), "Metadata".into());
    assert_eq!(serde_json::Value::Object(b), after);
}

#[test]
fn levels_are_never_raised_and_unchanged_events_are_byte_identical() {
    // exec_pod was recorded at Request; the policy says RequestResponse: it stays as recorded.
    let text = fixture("falco/exec_pod.json");
    let mut out = Vec::new();
    assert_eq!(policy_only().process_record(text.trim().as_bytes(), &mut out), Outcome::Kept { changed: false });
    assert_eq!(out, text.trim().as_bytes());
}

#[test]
fn request_received_and_noise_are_dropped() {
    let exec = fixture("falco/exec_pod.json");
    let rr = exec.replace("\"stage\":\"ResponseStarted\"", "\"stage\":\"RequestReceived\"");
    let mut out = Vec::new();
    let mut p = policy_only();
    assert!(matches!(p.process_record(rr.trim().as_bytes(), &mut out), Outcome::Dropped { rule: Some(10), .. }));
    let proxy_watch = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"w","stage":"ResponseStarted","requestURI":"/api/v1/services?watch=true","verb":"watch","user":{"username":"system:kube-proxy"},"objectRef":{"resource":"services","apiVersion":"v1"}}"#;
    assert!(matches!(p.process_record(proxy_watch.as_bytes(), &mut out), Outcome::Dropped { rule: Some(0), .. }));
    let healthz = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"h","stage":"ResponseComplete","requestURI":"/healthz/ready","verb":"get","user":{"username":"system:anonymous"}}"#;
    assert!(matches!(p.process_record(healthz.as_bytes(), &mut out), Outcome::Dropped { rule: Some(6), .. }));
    let events = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"e","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/d/events","verb":"create","user":{"username":"system:node:n1"},"objectRef":{"resource":"events","namespace":"d"}}"#;
    assert!(matches!(p.process_record(events.as_bytes(), &mut out), Outcome::Dropped { rule: Some(7), .. }));
    assert!(out.is_empty());
}

#[test]
fn audit2rbac_live_log() {
    let log = fixture("audit2rbac/demo.log");
    let mut p = policy_only();
    let mut out = Vec::new();
    p.process_stream(log.as_bytes(), &mut out, &mut |_| {});
    let c = p.counters();
    assert_eq!((c.read, c.kept, c.dropped, c.bad), (37, 37, 0, 0));
    // The impersonated lists (recorded at Metadata, decided Request) are unchanged; the
    // non-resource discovery GETs fall to the catch-all Metadata rule.
    assert_eq!(c.stripped, 0);
    let e = Evaluator::new(default_policy());
    let mut rules = std::collections::BTreeMap::new();
    for line in log.lines() {
        let d = e.evaluate_event(&Event::parse(line).unwrap());
        *rules.entry(d.rule).or_insert(0) += 1;
    }
    assert_eq!(rules.into_iter().collect::<Vec<_>>(), [(Some(8), 2), (Some(9), 12), (Some(11), 23)]);
}

#[test]
fn the_whole_sample_round_trips() {
    // Every event kept by the policy is valid JSON and, field for field, the input minus what the
    // policy removed.
    let log = fixture("sample-audit.log");
    let mut p = policy_only();
    let mut out = Vec::new();
    p.process_stream(log.as_bytes(), &mut out, &mut |_| {});
    let out = String::from_utf8(out).unwrap();
    let inputs: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let outputs: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(inputs.len(), outputs.len());
    for (i, o) in inputs.iter().zip(&outputs) {
        let (i, o) = (i.as_object().unwrap(), o.as_object().unwrap());
        for (k, v) in o {
            if k != "level" {
                assert_eq!(i.get(k), Some(v), "{k}");
            }
        }
        for k in i.keys() {
            assert!(o.contains_key(k) || k == "requestObject" || k == "responseObject", "{k} lost");
        }
    }
}
