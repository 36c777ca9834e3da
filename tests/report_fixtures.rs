//! Reports over every real fixture: totals equal the events serde_json finds, the seed's own
//! queries give the same numbers whether evaluated at push time (standing) or later on the
//! kept raw text, and every field of the report JSON is documented in docs/REPORTS.md.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kaudit::query::Query;
use kaudit::report::{BuilderOptions, Filter, ReportBuilder};
use kaudit::Enricher;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture inputs: the sample log, audit2rbac's log and every Falco trace, concatenated.
fn inputs() -> Vec<(String, Vec<u8>)> {
    let fx = root().join("tests/fixtures");
    let mut out = vec![
        ("sample-audit.log".to_string(), std::fs::read(fx.join("sample-audit.log")).unwrap()),
        ("audit2rbac/demo.log".to_string(), std::fs::read(fx.join("audit2rbac/demo.log")).unwrap()),
    ];
    let mut falco: Vec<PathBuf> = std::fs::read_dir(fx.join("falco"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    falco.sort();
    let mut all = Vec::new();
    for p in &falco {
        all.extend(std::fs::read(p).unwrap());
        all.push(b'\n');
    }
    out.push(("falco/*.json".to_string(), all));
    out
}

/// Events as serde_json sees them: objects with kind Event, one per record or list item.
fn count_events(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let mut n = 0;
    for v in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        let Ok(v) = v else { break };
        let items: Vec<&Value> = match &v {
            Value::Object(o) if o.get("kind") == Some(&Value::from("EventList")) => {
                o["items"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
            }
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        n += items.iter().filter(|i| i.get("kind") == Some(&Value::from("Event"))).count() as u64;
    }
    n
}

const SEED_QUERIES: [&str; 3] = [
    "verb : create and objectRef.subresource:exec and stage:  ResponseStarted",
    "NOT user.username: node NOT user.username: serviceaccount NOT user.username: apiserver NOT user.username: kube-scheduler NOT user.username: kube-controller-manager",
    "responseStatus.code >= 400 or kaudit.tags: secret-access",
];

#[test]
fn totals_and_both_query_paths_agree_on_every_fixture() {
    let enricher = Enricher::default();
    let all = Filter { last: Some("all".into()), ..Filter::default() };
    for (name, input) in inputs() {
        let mut raw = ReportBuilder::new(BuilderOptions { raw_bytes: 64 << 20, ..BuilderOptions::default() });
        raw.push_input(&input, &enricher);
        let mut standing = ReportBuilder::default();
        for q in SEED_QUERIES {
            standing.add_standing_query(Query::parse(q).unwrap()).unwrap();
        }
        standing.push_input(&input, &enricher);
        let r = raw.report(&all).unwrap();
        assert_eq!(r.overview.total, count_events(&input), "{name}");
        assert!(r.overview.total > 0, "{name}");
        assert_eq!(
            r.overview.total,
            r.overview.by_namespace.entries.iter().map(|e| e.count).sum::<u64>() + r.overview.by_namespace.others,
            "{name}"
        );
        for q in SEED_QUERIES {
            let f = Filter { query: Some(q.into()), ..all.clone() };
            let (a, b) = (standing.report(&f).unwrap(), raw.report(&f).unwrap());
            assert_eq!(a.to_json(), b.to_json(), "{name}: {q}");
        }
    }
}

fn keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn every_report_field_is_documented() {
    let doc = std::fs::read_to_string(root().join("docs/REPORTS.md")).expect("docs/REPORTS.md");
    let mut b = ReportBuilder::default();
    for (_, input) in inputs() {
        b.push_input(&input, &Enricher::default());
    }
    let mut seen = BTreeSet::new();
    for f in [r#"{"last":"all"}"#, r#"{"last":"all","resourceType":"pods"}"#, "{}"] {
        let json: Value = serde_json::from_str(&b.report(&Filter::from_json(f).unwrap()).unwrap().to_json()).unwrap();
        keys(&json, &mut seen);
    }
    assert!(seen.contains("command") && seen.contains("container"), "the fixtures have an exec event");
    let missing: Vec<&String> = seen.iter().filter(|k| !doc.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "fields missing from docs/REPORTS.md: {missing:?}");
}
