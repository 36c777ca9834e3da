//! The config reference's complete example (docs/CONFIG.md) loads, and means what it says.

use std::collections::HashMap;

use kaudit::Pipeline;
use kaudit_testkit::mmdb::{DbValue, MmdbWriter};

mod support;

use support::Mem;

use support::repo_file as repo;

/// The first ```yaml block of docs/CONFIG.md.
fn complete_example() -> String {
    let doc = String::from_utf8(repo("docs/CONFIG.md")).unwrap();
    let start = doc.find("```yaml\n").unwrap() + "```yaml\n".len();
    doc[start..start + doc[start..].find("```").unwrap()].to_string()
}

fn files() -> Mem {
    let mut city = MmdbWriter::new("GeoLite2-City");
    city.insert_str("203.0.113.0/24", &DbValue::map(vec![("country", DbValue::named("China"))])).unwrap();
    let mut asn = MmdbWriter::new("GeoLite2-ASN");
    asn.insert_str("203.0.113.0/24", &DbValue::map(vec![("autonomous_system_number", DbValue::U32(64500))])).unwrap();
    Mem(HashMap::from([
        ("audit-policy.yaml".to_string(), repo("tests/fixtures/policies/ack-default-audit-policy.yaml")),
        ("GeoLite2-City.mmdb".to_string(), city.finish()),
        ("GeoLite2-ASN.mmdb".to_string(), asn.finish()),
        (
            "sigma/kubernetes_audit_exec_into_container.yml".to_string(),
            repo("tests/fixtures/sigma/kubernetes_audit_exec_into_container.yml"),
        ),
        (
            "sigma/kubernetes_audit_rbac_permisions_listing.yml".to_string(),
            repo("tests/fixtures/sigma/kubernetes_audit_rbac_permisions_listing.yml"),
        ),
    ]))
}

#[test]
fn the_complete_example_loads() {
    let (p, warnings) = Pipeline::from_config_text(&complete_example(), "kaudit.yaml", &files()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let c = p.config();
    assert_eq!(c.limits.max_event_bytes, 16_777_216);
    assert_eq!(c.geoip.len(), 2);
    let a = &c.alerts;
    assert_eq!((a.limits.max_groups, a.limits.max_distinct, a.limits.max_audit_ids), (20_000, 500, 5));
    // 5 defaults - 1 disabled + 43 Falco - 1 disabled + 2 Sigma + 2 own.
    assert_eq!(a.rules.len(), 4 + 42 + 2 + 2);
    assert!(a.rule("internet-access").is_none() && a.rule("K8s Secret Get Successfully").is_none());
    assert_eq!(a.rule("RBAC Permission Enumeration Attempt").unwrap().source, "sigma");
    let r = a.rule("anonymous-enumeration").unwrap();
    assert_eq!(r.aggregation.as_ref().unwrap().window, 600_000_000);
    // The config's list overrode the pack's: kubernetes-admin and ci-bot are the allowed users.
    let disallowed = a.rule("Disallowed K8s User").unwrap();
    let doc = |user: &str| serde_json::json!({"stage": "ResponseComplete", "user": {"username": user}});
    assert!(!disallowed.query.matches(&doc("ci-bot")));
    assert!(disallowed.query.matches(&doc("minikube-user")));
}

#[test]
fn the_example_rules_raise() {
    let (mut p, _) = Pipeline::from_config_text(&complete_example(), "kaudit.yaml", &files()).unwrap();
    let mut input = String::new();
    let resources = ["secrets", "pods", "nodes", "configmaps", "services", "deployments"];
    for i in 0..12 {
        input.push_str(&format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"e{i}","stage":"ResponseComplete","requestURI":"/api/v1/{r}","verb":"list","user":{{"username":"system:anonymous"}},"sourceIPs":["203.0.113.9"],"objectRef":{{"resource":"{r}","apiVersion":"v1"}},"responseStatus":{{"code":403}},"stageTimestamp":"2024-05-14T10:00:{i:02}.000000Z"}}"#,
            r = resources[i % resources.len()]
        ));
        input.push('\n');
    }
    let mut out = String::new();
    p.process_stream(input.as_bytes(), &mut out, &mut |_| {});
    let alerts: Vec<serde_json::Value> = p.take_alerts().iter().map(|a| serde_json::from_str(a).unwrap()).collect();
    let enumeration: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["rule"] == "anonymous-enumeration").collect();
    assert_eq!(enumeration.len(), 1);
    assert_eq!(enumeration[0]["aggregates"]["resources"], 6);
    assert_eq!(enumeration[0]["aggregates"]["denied"], 11);
    assert_eq!(enumeration[0]["fields"]["country"], "China");
    assert_eq!(enumeration[0]["auditIDs"].as_array().unwrap().len(), 5);
}

#[test]
fn an_inline_sigma_rule_needs_no_files() {
    let config = "alerts:\n  defaultRules: false\n  rules:\n    - title: Secrets listed\n      logsource: {product: kubernetes, service: audit}\n      detection:\n        sel: {verb: list, objectRef.resource: secrets}\n        condition: sel\n      level: high\n";
    let (p, _) = Pipeline::from_config_text(config, "k.yaml", &kaudit::NoFiles).unwrap();
    let r = p.config().alerts.rule("Secrets listed").unwrap();
    assert_eq!(r.severity, kaudit::AlertSeverity::High);
    assert!(r.query.matches(&serde_json::json!({"verb": "list", "objectRef": {"resource": "secrets"}})));
    let e = Pipeline::from_config_text(&config.replace("condition: sel", "condition: sol"), "k.yaml", &kaudit::NoFiles)
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("k.yaml:8:20: alerts.rules[0].detection.condition: unknown selection"), "{e}");
}
