//! Alert state stays bounded whatever the input: a flood of distinct source addresses keeps at
//! most `maxGroups` groups per rule (the rest evicted and counted), and a flood of distinct
//! values keeps at most `maxDistinct` per aggregate. The full million runs in release builds
//! (`cargo test --release --test alerts_bounded`); debug builds run a smaller count with the
//! same assertions.

use std::time::Instant;

use kaudit::AlertEngine;
use kaudit::Enricher;
use kaudit::Event;
use kaudit::EventDoc;
use kaudit::{NoFiles, Pipeline};

const DISTINCT_IPS: u32 = if cfg!(debug_assertions) { 60_000 } else { 1_000_000 };
const MAX_GROUPS: u64 = 10_000;

/// An engine and an enricher built from a config, as the pipeline builds them.
fn engine(config: &str) -> (AlertEngine, Enricher) {
    let p = Pipeline::from_config_text(config, "bounded.yaml", &NoFiles).unwrap().0;
    let c = p.config();
    (AlertEngine::new(&c.alerts), Enricher::new(c.enrichment.clone(), None))
}

/// Feeds one event through enrichment and the alert rules, as the pipeline does.
fn observe(engine: &mut AlertEngine, enricher: &Enricher, line: &str, alerts: &mut Vec<String>) {
    let ev = Event::parse(line).unwrap();
    let mut extra = String::new();
    enricher.enrich_json(&ev, &mut extra);
    let extra: serde_json::Value = serde_json::from_str(&extra).unwrap();
    let doc = EventDoc::new(&ev, "kaudit", Some(&extra));
    engine.observe(&ev, &doc, alerts);
}

fn event(i: u32, ip: &str, user: &str) -> String {
    // One event per millisecond: a million events span 1000 s of event time.
    let (s, ms) = (i / 1000, i % 1000);
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-{i}","stage":"ResponseComplete","requestURI":"/api/v1/secrets","verb":"list","user":{{"username":"{user}"}},"sourceIPs":["{ip}"],"objectRef":{{"resource":"secrets","apiVersion":"v1"}},"responseStatus":{{"code":403}},"stageTimestamp":"2024-05-14T{:02}:{:02}:{:02}.{:03}000Z"}}"#,
        10 + s / 3600,
        (s / 60) % 60,
        s % 60,
        ms
    )
}

#[test]
fn a_million_source_addresses_keep_groups_bounded() {
    // The seed's Example 2 and the internet-access rule: both group by source address.
    let config = format!("alerts:\n  limits: {{maxGroups: {MAX_GROUPS}}}\n  disable: [exec-into-container, secret-access, resource-deletion]\n");
    let (mut e, enricher) = engine(&config);
    let mut alerts = Vec::new();
    let mut raised = 0usize;
    let start = Instant::now();
    for i in 0..DISTINCT_IPS {
        // Distinct public addresses in 11.0.0.0/8 (and up).
        let ip = format!("{}.{}.{}.{}", 11 + (i >> 24), (i >> 16) & 255, (i >> 8) & 255, i & 255);
        observe(&mut e, &enricher, &event(i, &ip, "system:anonymous"), &mut alerts);
        raised += alerts.len();
        alerts.clear();
        if i % 50_000 == 0 {
            assert!(e.stats().groups <= 2 * MAX_GROUPS);
        }
    }
    let stats = e.stats();
    eprintln!("{DISTINCT_IPS} distinct addresses in {:?}: {}", start.elapsed(), stats.to_json());
    assert_eq!(e.groups_of("internet-access-failures"), Some(MAX_GROUPS as usize));
    assert_eq!(e.groups_of("internet-access"), Some(MAX_GROUPS as usize));
    assert_eq!(stats.groups, 2 * MAX_GROUPS);
    // No group reaches its retention (5 min, 1 h) before 10,000 newer ones push it out, so
    // every group beyond the bound was evicted, and counted.
    assert_eq!(stats.groups_evicted, 2 * (u64::from(DISTINCT_IPS) - MAX_GROUPS));
    // One request per address never meets "more than 10"; each address is new to internet-access.
    assert_eq!(raised as u32, DISTINCT_IPS);
    assert_eq!(stats.alerts, u64::from(DISTINCT_IPS));
}

#[test]
fn distinct_values_are_bounded_per_group() {
    let config = "alerts:\n  defaultRules: false\n  limits: {maxDistinct: 100}\n  rules:\n    - name: many-users\n      query: '*'\n      groupBy: [kaudit.sourceIP]\n      window: 1h\n      aggregates: {users: distinct(user.username)}\n      condition: users >= 50\n";
    let (mut e, enricher) = engine(config);
    let mut alerts = Vec::new();
    let n = DISTINCT_IPS / 10;
    for i in 0..n {
        observe(&mut e, &enricher, &event(i, "203.0.113.9", &format!("user-{i}")), &mut alerts);
    }
    let stats = e.stats();
    assert_eq!(stats.groups, 1);
    // 100 tracked, every later value overflowed (all within the hour).
    assert_eq!(stats.distinct_overflow, u64::from(n) - 100);
    assert_eq!(alerts.len(), 1);
    let a: serde_json::Value = serde_json::from_str(&alerts[0]).unwrap();
    assert_eq!(a["aggregates"]["users"], 50);
}
