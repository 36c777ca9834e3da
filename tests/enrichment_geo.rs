//! Enrichment with GeoIP databases: databases of known content written with the test kit's
//! MaxMind DB writer, read by the engine as it reads MaxMind's own.

use kaudit::{EnrichConfig, Enricher, Event, GeoDb, IpScope, IpSet};
use kaudit_testkit::mmdb::{DbValue, MmdbWriter};

const EXEC: &str = r#"{"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""},"auditID":"ca1ed9f4","kind":"Event","level":"Request","objectRef":{"apiVersion":"v1","name":"nginx-1","namespace":"default","resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2018-10-26T13:38:34.867116Z","requestURI":"/api/v1/namespaces/default/pods/nginx-1/exec?command=sh&command=-c&command=cat%20%2Fetc%2Fshadow&container=nginx1&container=nginx2&stdin=true&stdout=true&tty=true","responseStatus":{"code":101,"metadata":{}},"sourceIPs":["203.0.113.7","192.168.99.1"],"stage":"ResponseStarted","stageTimestamp":"2018-10-26T13:38:34.902914Z","user":{"groups":["system:masters","system:authenticated"],"username":"minikube-user"},"verb":"create"}"#;

fn geo_db() -> GeoDb {
    let mut w = MmdbWriter::new("GeoIP2-City");
    let city = DbValue::map(vec![
        (
            "country",
            DbValue::map(vec![
                ("iso_code", DbValue::str("CN")),
                ("names", DbValue::map(vec![("en", DbValue::str("China"))])),
            ]),
        ),
        ("subdivisions", DbValue::Array(vec![DbValue::named("Zhejiang")])),
        ("city", DbValue::named("Hangzhou")),
    ]);
    w.insert_str("203.0.113.0/24", &city).unwrap();
    w.insert_str("2001:db8::/32", &DbValue::map(vec![("country", DbValue::named("Germany"))])).unwrap();
    let mut asn = MmdbWriter::new("GeoLite2-ASN");
    asn.insert_str(
        "203.0.0.0/16",
        &DbValue::map(vec![
            ("autonomous_system_number", DbValue::U32(37963)),
            ("autonomous_system_organization", DbValue::str("Hangzhou Alibaba Advertising Co.,Ltd.")),
        ]),
    )
    .unwrap();
    GeoDb::open(vec![w.finish(), asn.finish()], "en").unwrap()
}

#[test]
fn exec_event_fields() {
    let ev = Event::parse(EXEC).unwrap();
    let config = EnrichConfig {
        high_risk: IpSet::new(vec![IpSet::parse_entry("203.0.113.7").unwrap()]),
        ..EnrichConfig::default()
    };
    let e = Enricher::new(config, Some(geo_db())).enrich(&ev);
    assert_eq!(e.source_ip, Some("203.0.113.7"));
    assert_eq!(e.peer_ip, Some("192.168.99.1"));
    assert_eq!(e.ip_scope, Some(IpScope::Internet));
    let geo = e.geo.clone().unwrap();
    assert_eq!(
        (geo.country.as_deref(), geo.province.as_deref(), geo.city.as_deref()),
        (Some("China"), Some("Zhejiang"), Some("Hangzhou"))
    );
    assert_eq!(geo.asn, Some(37963));
    assert_eq!(e.high_risk, Some(true));
    let x = e.exec.clone().unwrap();
    assert_eq!(x.container.as_deref(), Some("nginx1"));
    assert_eq!(x.command.as_deref(), Some("sh -c cat /etc/shadow"));
    assert_eq!(e.latency_ms, Some(35.798));
    assert_eq!(e.operation, Some("create"));
    assert_eq!(e.tags.iter().copied().collect::<Vec<_>>(), ["internet-access", "command-execution"]);
    let mut out = String::new();
    e.write_json(&mut out);
    assert_eq!(
        out,
        r#"{"sourceIP":"203.0.113.7","peerIP":"192.168.99.1","ipScope":"internet","geo":{"country":"China","countryCode":"CN","province":"Zhejiang","city":"Hangzhou","isp":"Hangzhou Alibaba Advertising Co.,Ltd.","asn":37963},"highRiskIP":true,"account":"minikube-user","userKind":"human","resourceType":"pods","resourceCategory":"compute","exec":{"pod":"nginx-1","container":"nginx1","command":"sh -c cat /etc/shadow","tty":true,"stdin":true},"latencyMs":35.798,"success":true,"operation":"create","tags":["internet-access","command-execution"]}"#
    );
    serde_json::from_str::<serde_json::Value>(&out).unwrap();
}

#[test]
fn geo_misses_and_ipv6() {
    let db = geo_db();
    assert_eq!(db.lookup("8.8.8.8".parse().unwrap()), None);
    assert_eq!(db.lookup("2001:db8::5".parse().unwrap()).unwrap().country.as_deref(), Some("Germany"));
    assert_eq!(db.lookup("203.0.114.1".parse().unwrap()).unwrap().asn, Some(37963));
    assert!(GeoDb::open(vec![b"not a database".to_vec()], "en").is_err());
}
