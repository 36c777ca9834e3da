//! The document alert rules read (`EventDoc::enriched`: decoded fields, raw slices and the
//! enrichment's fields, no JSON in between) gives, on every path, the values a JSON traversal
//! of the event as written gives (policy edits and the enrichment member included). Checked on
//! every leaf and object path of the written events of the conformance vectors, the sample log
//! and a generated corpus, plus paths no event has.

use std::ops::ControlFlow;

use kaudit::query::{Document, FieldPath, KnownPath, Lookup, Value};
use kaudit::{
    default_policy, for_each_event, verdict, write_event, EnrichConfig, Enricher, Evaluator, EventDoc, GeoDb, IpSet,
    Verdict,
};
use kaudit_testkit::mmdb::{DbValue, MmdbWriter};
use serde_json::Value as Json;

mod support;

/// Every IPv4 address has a city and an ASN, so the `geo` paths are exercised.
fn geo_db() -> GeoDb {
    let mut city = MmdbWriter::new("GeoIP2-City");
    let record = DbValue::map(vec![
        (
            "country",
            DbValue::map(vec![
                ("iso_code", DbValue::str("NL")),
                ("names", DbValue::map(vec![("en", DbValue::str("Netherlands"))])),
            ]),
        ),
        ("subdivisions", DbValue::Array(vec![DbValue::named("North \"Holland\"")])),
        ("city", DbValue::named("Amsterdam")),
    ]);
    for net in ["0.0.0.0/1", "128.0.0.0/1"] {
        city.insert_str(net, &record).unwrap();
    }
    let mut asn = MmdbWriter::new("GeoLite2-ASN");
    let owner = DbValue::map(vec![
        ("autonomous_system_number", DbValue::U32(64500)),
        ("autonomous_system_organization", DbValue::str("Example Net")),
    ]);
    for net in ["0.0.0.0/1", "128.0.0.0/1"] {
        asn.insert_str(net, &owner).unwrap();
    }
    GeoDb::open(vec![city.finish(), asn.finish()], "en").unwrap()
}

fn values(doc: &dyn Document, path: &FieldPath) -> Vec<String> {
    let mut out = Vec::new();
    doc.visit(path, &mut |v| {
        // No query, group key or alert field tells a null from an absent value (doc.rs).
        if v != Value::Null {
            out.push(format!("{v:?}"));
        }
        ControlFlow::Continue(())
    });
    out
}

/// Every path to an object member below `v` (arrays crossed, as queries cross them).
fn paths_of(v: &Json, prefix: &mut Vec<String>, out: &mut Vec<FieldPath>) {
    match v {
        Json::Object(map) => {
            for (k, child) in map {
                if k.is_empty() {
                    continue;
                }
                prefix.push(k.clone());
                out.extend(FieldPath::from_segments(prefix.iter()));
                paths_of(child, prefix, out);
                prefix.pop();
            }
        }
        Json::Array(items) => items.iter().for_each(|i| paths_of(i, prefix, out)),
        _ => {}
    }
}

const ODD_PATHS: &[&str] = &[
    "kaudit",
    "kaudit.geo",
    "kaudit.geo.country.x",
    "kaudit.geo.nothere",
    "kaudit.exec",
    "kaudit.exec.pod",
    "kaudit.exec.ports",
    "kaudit.attach.tty",
    "kaudit.portForward.ports",
    "kaudit.portForward.tty",
    "kaudit.tags",
    "kaudit.tags.x",
    "kaudit.sourceIP.x",
    "kaudit.nothere",
    "kaudit.latencyMs",
    "annotations.authorization.k8s.io/decision",
    "annotations.authorization.k8s.io/reason",
    "annotations.authorization",
    "annotations.\"authorization.k8s.io/decision\".x",
    "objectRef.uid",
    "objectRef.resource.x",
    "objectRef.nothere",
    "responseStatus.code",
    "responseStatus.code.x",
    "responseStatus.details.kind",
    "user.groups",
    "user.extra",
    "impersonatedUser.username",
    "level",
    "sourceIPs",
    "requestObject",
    "requestObject.metadata.managedFields",
    "responseObject.metadata.name",
    "nothere",
    "verb.x",
];

#[test]
fn enriched_documents_read_what_the_written_event_holds() {
    let evaluator = Evaluator::new(default_policy());
    let config = EnrichConfig {
        high_risk: IpSet::new(vec![IpSet::parse_entry("203.0.113.0/24").unwrap()]),
        ..EnrichConfig::default()
    };
    let enricher = Enricher::new(config, Some(geo_db()));
    let mut inputs: Vec<Vec<u8>> = ["custom-policy", "managed-fields", "seed-alerts", "seed-default"]
        .iter()
        .map(|v| support::repo_file(&format!("tests/conformance/vectors/{v}/input.jsonl")))
        .collect();
    inputs.push(support::repo_file("tests/fixtures/sample-audit.log"));
    inputs.push(kaudit_testkit::corpus::generate(2000, 11));
    inputs.push(
        br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":null,"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/d/pods/p/portforward?ports=5432,%208080","verb":"create","user":{"username":"al\u0069ce","groups":null},"sourceIPs":["203.0.113.9"],"objectRef":{"resource":"pods","subresource":"portforward","name":"p","namespace":null,"uid":"u-1"},"responseStatus":{"code":101,"status":null},"annotations":{"a.b":"1","a":"2","a.b":"3"},"userAgent":"k\"c","requestReceivedTimestamp":"2024-01-01T00:00:00.000001Z","stageTimestamp":"2024-01-01T00:00:01.234567Z","kaudit":{"old":true}}
{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/d/pods/p/attach?container=c&stdin=1","verb":"create","user":{"username":"bob"},"objectRef":{"resource":"pods","subresource":"attach","name":"p"},"sourceIPs":["8.8.8.8","10.0.0.1"],"annotations":null}
"#
        .to_vec(),
    );
    let (mut events, mut checked, mut compiled) = (0, 0, 0);
    for input in &inputs {
        for_each_event(input, &mut |_, parsed| {
            let Ok(event) = parsed else { return };
            let Verdict::Keep(changes) = verdict(&evaluator.evaluate_event(&event), &event) else { return };
            let enrichment = enricher.enrich(&event);
            let mut json = String::new();
            enrichment.write_json(&mut json);
            let mut written = String::new();
            write_event(&event, &changes, &[("kaudit", &json)], &mut written);
            let reference: Json = serde_json::from_str(&written).unwrap();
            let doc = EventDoc::enriched(&event, "kaudit", &enrichment, None).with_changes(&changes);
            let mut paths = Vec::new();
            paths_of(&reference, &mut Vec::new(), &mut paths);
            paths.extend(ODD_PATHS.iter().map(|p| FieldPath::parse(p).unwrap()));
            for path in &paths {
                let got = values(&doc, path);
                assert_eq!(got, values(&reference, path), "{path} in {written}");
                // The field accessors compiled into the path (`FieldPath::known`) give what
                // the lookup by name gives, by visit and by `lookup`.
                assert_eq!(got, values(&doc, &path.by_name()), "{path} by name in {written}");
                match doc.lookup(path) {
                    Lookup::Visit => {}
                    Lookup::Absent => assert!(got.is_empty(), "{path} absent in {written}"),
                    Lookup::One(v) => assert_eq!(got, [format!("{v:?}")], "{path} one value in {written}"),
                }
                compiled += usize::from(path.known() != KnownPath::Other);
                checked += 1;
            }
            events += 1;
        });
    }
    assert!(
        events > 1500 && checked > 100_000 && compiled > 20_000,
        "{events} events, {checked} paths, {compiled} known"
    );
}
