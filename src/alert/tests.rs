//! Unit tests of rule decoding and the engine on small events (integration tests on real and
//! made-up logs are in tests/alerts_*.rs, tests/falco_*.rs, tests/sigma_*.rs).

use super::lists::Lists;
use super::pack::DEFAULT_RULES;
use super::*;
use crate::event::doc::EventDoc;
use crate::event::Event;
use crate::yaml::{self, Ctx};

fn engine(yaml_text: &str) -> AlertEngine {
    let node = yaml::parse(yaml_text, "t.yaml").unwrap();
    let mut w = Vec::new();
    let mut c = Ctx::new("t.yaml", &mut w);
    let cfg = decode_config(&mut c, &node, &crate::NoFiles).unwrap();
    AlertEngine::new(&cfg)
}

fn feed(e: &mut AlertEngine, lines: &[String]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for l in lines {
        let ev = Event::parse(l).unwrap();
        let doc = EventDoc::new(&ev, "kaudit", None);
        e.observe(&ev, &doc, &mut out);
    }
    out.iter().map(|s| serde_json::from_str(s).unwrap()).collect()
}

#[test]
fn embedded_defaults_load() {
    let cfg = AlertConfig::embedded_default();
    let names: Vec<&str> = cfg.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["exec-into-container", "internet-access-failures", "secret-access", "resource-deletion", "internet-access"]
    );
    assert_eq!(load_pack_text(DEFAULT_RULES, "d", &Lists::new(), Default::default()).unwrap().len(), 5);
}

#[test]
fn falco_pack_loads() {
    let rules = load_pack_text(FALCO_PACK, "f", &Lists::new(), Default::default()).unwrap();
    assert_eq!(rules.len(), 43);
}

fn ev(id: &str, secs: u32, code: u32) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"{id}","stage":"ResponseComplete","verb":"get","requestURI":"/api","user":{{"username":"u"}},"responseStatus":{{"code":{code}}},"stageTimestamp":"2024-01-01T00:{:02}:{:02}.000000Z"}}"#,
        secs / 60,
        secs % 60
    )
}

#[test]
fn aggregation_fires_once_per_burst() {
    let mut e = engine("defaultRules: false\nrules:\n  - name: burst\n    query: '*'\n    window: 1m\n    condition: count > 3 and failureRate >= 50\n    throttle: 0\n");
    let lines: Vec<String> = (0..6).map(|i| ev(&format!("a{i}"), i, 403)).collect();
    let alerts = feed(&mut e, &lines);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["aggregates"]["count"], 4);
    assert_eq!(alerts[0]["auditIDs"], serde_json::json!(["a0", "a1", "a2", "a3"]));
}

fn ev_at(id: &str, time: &str, ip: &str, code: u32) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"{id}","stage":"ResponseComplete","verb":"get","requestURI":"/api","user":{{"username":"u-{id}"}},"sourceIPs":["{ip}"],"responseStatus":{{"code":{code}}},"stageTimestamp":"{time}"}}"#
    )
}

fn at(secs: i64) -> String {
    crate::event::time::format_micros(1_715_680_800_000_000 + secs * 1_000_000)
}

const BURST_RULE: &str = "defaultRules: false\nrules:\n  - name: burst\n    query: '*'\n    groupBy: sourceIPs\n    window: 1m\n    aggregates: {forbidden: countIf(responseStatus.code = 403), users: distinct(user.username)}\n    condition: count >= 3\n";

#[test]
fn edge_triggered_then_rearmed_when_the_condition_drops() {
    let mut e = engine(BURST_RULE);
    // 3 events at 0,1,2 s: fires at the third; 4th still firing: no alert.
    let mut lines: Vec<String> = (0..4).map(|i| ev_at(&format!("a{i}"), &at(i), "1.1.1.1", 403)).collect();
    // Two minutes later the window holds one event: the condition drops (re-armed) ...
    lines.push(ev_at("b0", &at(130), "1.1.1.1", 200));
    // ... and a new burst fires again.
    lines.push(ev_at("b1", &at(131), "1.1.1.1", 200));
    lines.push(ev_at("b2", &at(132), "1.1.1.1", 200));
    let alerts = feed(&mut e, &lines);
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    assert_eq!(
        alerts[0]["aggregates"],
        serde_json::json!({"count": 3, "failures": 3, "failureRate": 100, "forbidden": 3, "users": 3})
    );
    assert_eq!(
        alerts[1]["aggregates"],
        serde_json::json!({"count": 3, "failures": 0, "failureRate": 0, "forbidden": 0, "users": 3})
    );
    assert_eq!(alerts[1]["auditIDs"], serde_json::json!(["b0", "b1", "b2"]));
    assert_eq!(alerts[0]["groupKey"], serde_json::json!({"sourceIPs": "1.1.1.1"}));
    assert_eq!(alerts[0]["window"]["end"], at(2));
    assert_eq!(e.stats().suppressed, 1);
}

#[test]
fn throttle_holds_back_a_new_burst_and_repeat_reminds() {
    let rule =
        BURST_RULE.replace("condition: count >= 3\n", "condition: count >= 3\n    throttle: 10m\n    repeat: 2m\n");
    let mut e = engine(&rule);
    let mut lines = Vec::new();
    // A burst at 0..3 s (alert), one at 130..132 s (held back by the 10 minute throttle),
    // then a long burst from 700 s: alert at 702, a reminder two minutes on while it lasts.
    for (start, n) in [(0, 3), (130, 3), (700, 200)] {
        for i in 0..n {
            lines.push(ev_at(&format!("x{start}-{i}"), &at(start + i), "1.1.1.1", 403));
        }
    }
    let times: Vec<String> = feed(&mut e, &lines).iter().map(|a| a["time"].as_str().unwrap().to_string()).collect();
    assert_eq!(times, [at(2), at(702), at(822)]);
}

#[test]
fn late_events_are_ignored_and_counted() {
    let mut e = engine(BURST_RULE);
    let lines = vec![
        ev_at("n0", &at(600), "1.1.1.1", 403),
        // 5 minutes older than the group's latest event: outside the 1 minute window.
        ev_at("old1", &at(300), "1.1.1.1", 403),
        ev_at("old2", &at(301), "1.1.1.1", 403),
        // Slightly out of order but inside the window: counted.
        ev_at("n1", &at(590), "1.1.1.1", 403),
        ev_at("n2", &at(601), "1.1.1.1", 403),
    ];
    let alerts = feed(&mut e, &lines);
    assert_eq!(e.stats().late_events, 2);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["auditIDs"], serde_json::json!(["n1", "n0", "n2"]));
}

#[test]
fn groups_are_separate_and_plain_rules_dedup_by_group() {
    let mut e = engine("defaultRules: false\nrules:\n  - name: per-user\n    query: 'responseStatus.code >= 400'\n    groupBy: [user.username, verb]\n    throttle: 1m\n    fields: {who: user.username, code: responseStatus.code}\n");
    let mut lines = Vec::new();
    for i in 0..3 {
        lines.push(ev_at("same", &at(i), "1.1.1.1", 403));
    }
    lines.push(ev_at("other", &at(3), "1.1.1.1", 404));
    lines.push(ev_at("fine", &at(4), "1.1.1.1", 200));
    lines.push(ev_at("same", &at(65), "1.1.1.1", 500));
    let alerts = feed(&mut e, &lines);
    let who: Vec<(&str, i64)> =
        alerts.iter().map(|a| (a["fields"]["who"].as_str().unwrap(), a["fields"]["code"].as_i64().unwrap())).collect();
    assert_eq!(who, [("u-same", 403), ("u-other", 404), ("u-same", 500)]);
    assert_eq!(alerts[0]["groupKey"], serde_json::json!({"user.username": "u-same", "verb": "get"}));
    assert_eq!(e.stats().suppressed, 2);
}

#[test]
fn events_without_time_use_the_latest_seen() {
    let mut e = engine(BURST_RULE);
    let untimed =
        r#"{"kind":"Event","auditID":"u","stage":"ResponseComplete","verb":"get","sourceIPs":["1.1.1.1"]}"#.to_string();
    let alerts = feed(&mut e, &[ev_at("t0", &at(10), "1.1.1.1", 200), untimed.clone(), untimed]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["time"], at(10));
}

fn config_error(text: &str) -> String {
    crate::Config::load(text, "kaudit.yaml", &crate::NoFiles).unwrap_err().to_string()
}

#[test]
fn config_errors_name_file_line_and_key() {
    let e = config_error("alerts:\n  rules:\n    - name: x\n      query: 'verb: '\n");
    assert!(e.starts_with("kaudit.yaml:4:14: alerts.rules[0].query: invalid query:"), "{e}");
    assert!(e.contains("expected a value after ':'"), "{e}");
    let e = config_error("alerts:\n  rulez: []\n");
    assert!(e.starts_with("kaudit.yaml:2:3: alerts.rulez: unknown key"), "{e}");
    let e = config_error(
        "alerts:\n  rules:\n    - name: x\n      query: '*'\n      window: 5 minutes\n      condition: count > 1\n",
    );
    assert!(e.starts_with("kaudit.yaml:5:15: alerts.rules[0].window: invalid duration"), "{e}");
    let e = config_error(
        "alerts:\n  rules:\n    - name: x\n      query: '*'\n      window: 5m\n      condition: total > 1\n",
    );
    assert!(e.contains("alerts.rules[0].condition: unknown aggregate total"), "{e}");
    let e = config_error("alerts:\n  rules:\n    - name: x\n      query: '*'\n      condition: count > 1\n");
    assert!(e.contains("alerts.rules[0].condition: needs a window"), "{e}");
    let e = config_error("alerts:\n  rules:\n    - name: exec-into-container\n      query: '*'\n");
    assert!(e.contains("kaudit.yaml:3:7: alerts.rules[0]: rule \"exec-into-container\" from the config is already defined by the embedded default rules"), "{e}");
    let e = config_error("alerts:\n  disable: [nope]\n");
    assert!(e.contains("kaudit.yaml:2:13: alerts.disable: no rule named \"nope\""), "{e}");
    let e = config_error("alerts:\n  packs: [missing.yaml]\n");
    assert!(e.contains("kaudit.yaml:2:11: alerts.packs[0]: cannot read rule pack"), "{e}");
    let e = config_error("alerts:\n  packs: [builtin:nope]\n");
    assert!(e.contains("unknown built-in pack") && e.contains("builtin:falco-k8saudit"), "{e}");
    let e = config_error("alerts:\n  rules:\n    - name: x\n      query: 'user.username in (${nope})'\n");
    assert!(e.contains("alerts.rules[0].query: unknown list ${nope}"), "{e}");
    let e = config_error("alerts:\n  rules:\n    - name: x\n      severity: urgent\n      query: '*'\n");
    assert!(e.contains("alerts.rules[0].severity: unknown severity \"urgent\""), "{e}");
    let e = config_error("alerts:\n  limits: {maxGroups: 0}\n");
    assert!(e.contains("alerts.limits.maxGroups: expected a number from 1"), "{e}");
    let e = config_error("alerts:\n  rules:\n    - name: x\n      query: '*'\n      window: 1m\n      aggregates: {count: failures}\n      condition: count > 1\n");
    assert!(e.contains("alerts.rules[0].aggregates.count: count is a built-in aggregate"), "{e}");
}

#[test]
fn pack_errors_name_the_pack_file() {
    let e = load_pack_text(
        "name: p\nrules:\n  - name: a\n    query: '*'\n    fieldz: {}\n",
        "my-pack.yaml",
        &Lists::new(),
        Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("my-pack.yaml:5:5: rules[0].fieldz: unknown key"), "{e}");
    let e = load_pack_text(
        "name: p\nrules:\n  - name: a\n    query: '*'\n  - name: a\n    query: '*'\n",
        "p.yaml",
        &Lists::new(),
        Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("p.yaml:5:5: rules[1]: duplicate rule name \"a\""), "{e}");
}

#[test]
fn config_lists_override_pack_lists() {
    let cfg = crate::Config::load("alerts:\n  defaultRules: false\n  packs: [builtin:falco-k8saudit]\n  lists:\n    allowed_k8s_users: [some-user]\n", "k.yaml", &crate::NoFiles).unwrap().0;
    let rule = cfg.alerts.rule("Disallowed K8s User").unwrap();
    let doc = |user: &str| serde_json::json!({"stage": "ResponseComplete", "user": {"username": user}});
    assert!(!rule.query.matches(&doc("some-user")));
    assert!(rule.query.matches(&doc("minikube-user")));
    assert!(!rule.query.matches(&doc("eks:nodewatcher")));
}

#[test]
fn an_empty_alerts_section_keeps_the_defaults() {
    let cfg = crate::Config::load("alerts:\n", "k.yaml", &crate::NoFiles).unwrap().0;
    assert_eq!(cfg.alerts.rules.len(), 5);
    let cfg = crate::Config::load("badRecords: drop\n", "k.yaml", &crate::NoFiles).unwrap().0;
    assert_eq!(cfg.alerts.rules.len(), 5);
}

#[test]
fn rules_sharing_a_query_answer_alike() {
    // The second rule takes the first's answer (the same query written otherwise); the third's
    // differs. The first rule has an extra check: what is shared is the query's answer alone.
    let rules = [
        "  - name: a\n    query: 'verb = get and responseStatus.code >= 400'\n    unlessAll:\n      - path: user.username\n        in: [u]\n    throttle: 0\n",
        "  - name: b\n    query: \"verb = get   and  responseStatus.code >= 400\"\n    throttle: 0\n",
        "  - name: c\n    query: 'verb = get and responseStatus.code >= 500'\n    throttle: 0\n",
    ];
    let all = format!("defaultRules: false\nrules:\n{}", rules.concat());
    let mut e = engine(&all);
    assert_eq!(e.shared_queries(), [None, Some(0), None]);
    let mut alone: Vec<AlertEngine> =
        rules.iter().map(|r| engine(&format!("defaultRules: false\nrules:\n{r}"))).collect();
    let mut fired = 0;
    for (i, code) in [200, 403, 500, 404].into_iter().enumerate() {
        let line = [ev(&format!("x{i}"), i as u32, code)];
        let together = feed(&mut e, &line);
        let separately: Vec<serde_json::Value> = alone.iter_mut().flat_map(|r| feed(r, &line)).collect();
        assert_eq!(together, separately, "code {code}");
        fired += together.len();
    }
    assert_eq!(fired, 4);
}

#[test]
fn the_gate_rules_out_the_default_rules_on_most_of_the_sample_log() {
    use crate::enrich::Enricher;
    use crate::query::{Gate, Query};
    let rules = AlertConfig::embedded_default().rules;
    let queries: Vec<&Query> = rules.iter().map(|r| &r.query).collect();
    let gate = Gate::new(&queries, &super::engine::usual_values);
    let log = include_str!("../../tests/fixtures/sample-audit.log");
    let enricher = Enricher::default();
    let (mut evaluated, mut events) = (0, 0);
    for line in log.lines() {
        let ev = Event::parse(line).unwrap();
        let fields = enricher.enrich(&ev);
        let doc = EventDoc::enriched(&ev, "kaudit", &fields, None);
        let candidates = gate.candidates(&doc);
        events += 1;
        for (i, q) in queries.iter().enumerate() {
            if candidates >> i & 1 != 0 {
                evaluated += 1;
            } else {
                assert!(!q.matches(&doc));
            }
        }
    }
    assert!(evaluated * 10 < events * queries.len(), "{evaluated} of {} evaluated", events * queries.len());
}
