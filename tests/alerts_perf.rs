//! Cost of alert evaluation per event (not a pass/fail test; run it for figures):
//!
//! ```text
//! cargo test --release --test alerts_perf -- --ignored --nocapture
//! ```
//!
//! Feeds 300,000 events through parse + enrichment + the alert engine, as the pipeline does,
//! with alerts off, the default rules, and the defaults plus the Falco pack; for a quiet
//! intranet event (matches no rule) and for a flood of new Internet addresses (every event
//! creates groups, evicts others and raises an alert).

use std::time::{Duration, Instant};

use kaudit::AlertEngine;
use kaudit::Enricher;
use kaudit::Event;
use kaudit::EventDoc;
use kaudit::{NoFiles, Pipeline};

const N: u32 = 300_000;

fn lease_update(i: u32) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-{i}","stage":"ResponseComplete","requestURI":"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1","verb":"update","user":{{"username":"system:node:n1"}},"sourceIPs":["10.0.{}.{}"],"objectRef":{{"resource":"leases","apiVersion":"v1"}},"responseStatus":{{"code":200}},"stageTimestamp":"2024-05-14T10:{:02}:{:02}.{:03}000Z"}}"#,
        (i >> 8) & 255,
        i & 255,
        (i / 60_000) % 60,
        (i / 1000) % 60,
        i % 1000
    )
}

fn internet_probe(i: u32) -> String {
    lease_update(i)
        .replace("10.0.", &format!("11.{}.", (i >> 16) & 255))
        .replace("\"code\":200", "\"code\":403")
        .replace("system:node:n1", "system:anonymous")
}

#[test]
#[ignore]
fn per_event_cost() {
    for (workload, make) in [
        ("intranet, no rule matches", lease_update as fn(u32) -> String),
        ("new Internet address each event", internet_probe),
    ] {
        let lines: Vec<String> = (0..N).map(make).collect();
        for (label, cfg) in [
            ("alerts off", "alerts:\n  enabled: false\n"),
            ("default rules", ""),
            ("defaults + Falco pack", "alerts:\n  packs: [builtin:falco-k8saudit]\n"),
        ] {
            let p = Pipeline::from_config_text(cfg, "perf.yaml", &NoFiles).unwrap().0;
            let mut engine = AlertEngine::new(&p.config().alerts);
            let enricher = Enricher::new(p.config().enrichment.clone(), None);
            let mut out = Vec::new();
            let mut alert_time = Duration::ZERO;
            let start = Instant::now();
            for l in &lines {
                let ev = Event::parse(l).unwrap();
                let mut extra = String::new();
                enricher.enrich_json(&ev, &mut extra);
                let extra: serde_json::Value = serde_json::from_str(&extra).unwrap();
                let doc = EventDoc::new(&ev, "kaudit", Some(&extra));
                let t = Instant::now();
                engine.observe(&ev, &doc, &mut out);
                alert_time += t.elapsed();
                out.clear();
            }
            let total = start.elapsed();
            eprintln!(
                "{workload:32} {label:22} total {:>7.3} us/event, alert engine {:>6.3} us/event ({} rules)",
                total.as_secs_f64() * 1e6 / f64::from(N),
                alert_time.as_secs_f64() * 1e6 / f64::from(N),
                engine.rule_names().count()
            );
        }
    }
}
