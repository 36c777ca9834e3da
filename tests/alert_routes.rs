//! `alerts.routes` (payload formats: JSON lines, Alertmanager v2, Slack, DingTalk) and the
//! collection switch (`enabled: false`), on the seed's alert vector. Payloads are checked
//! against the receivers' schemas (kaudit_testkit::alert_schemas).

use kaudit::{AlertFormat, Config, NoFiles, Outcome, Pipeline};
use kaudit_testkit::alert_schemas::{check_alertmanager, check_dingtalk, check_slack};
use serde_json::Value;

mod support;

use support::repo_file as repo;

const ROUTES: &str = r#"alerts:
  routes:
    - name: team-json
      format: jsonLines
    - name: am
      format: alertmanager
      labels: {cluster: prod-1, team: platform}
      generatorURL: "https://console.example/alerts?rule={rule}&id={auditID}"
      endsAfter: 1h
    - name: oncall
      format: slack
      minSeverity: high
    - name: ops-dingtalk
      format: dingtalk
      keyword: kaudit
      atMobiles: ["13800000000"]
      maxAlertsPerMessage: 2
"#;

fn load(text: &str) -> Config {
    Config::load(text, "kaudit.yaml", &NoFiles).unwrap_or_else(|e| panic!("{e}")).0
}

/// The seed-alerts vector through `config`: the alerts, in order.
fn seed_alerts(config: Config) -> Vec<String> {
    let input = repo("tests/conformance/vectors/seed-alerts/input.jsonl");
    let mut p = Pipeline::new(config);
    let mut out = Vec::new();
    p.process_stream(&input, &mut out, &mut |_| {});
    p.take_alerts()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn json_lines_are_the_alert_objects_byte_for_byte() {
    let config = load(ROUTES);
    let alerts = seed_alerts(config.clone());
    let expected = String::from_utf8(repo("tests/conformance/vectors/seed-alerts/alerts.jsonl")).unwrap();
    assert_eq!(alerts.iter().map(|a| format!("{a}\n")).collect::<String>(), expected, "routes change no alert");
    let route = config.alerts.route("team-json").unwrap();
    let payloads = config.alerts.payloads(route, &alerts);
    assert_eq!(payloads.len(), 1);
    assert_eq!(payloads[0].body, expected);
    assert_eq!((payloads[0].content_type, payloads[0].alerts), ("application/x-ndjson", alerts.len()));
}

#[test]
fn alertmanager_payloads_follow_the_v2_schema_and_carry_the_alert() {
    let config = load(ROUTES);
    let alerts = seed_alerts(config.clone());
    assert!(alerts.len() >= 5, "{}", alerts.len());
    let route = config.alerts.route("am").unwrap();
    assert_eq!(route.format, AlertFormat::Alertmanager);
    let payloads = config.alerts.payloads(route, &alerts);
    assert_eq!(payloads.len(), 1, "one array for up to 1000 alerts");
    let body = &payloads[0].body;
    assert_eq!(check_alertmanager(body), Ok(alerts.len()), "{body}");
    assert_eq!(payloads[0].content_type, "application/json");
    let posted = json(body);
    for (alert, am) in alerts.iter().zip(posted.as_array().unwrap()) {
        let alert = json(alert);
        let labels = &am["labels"];
        assert_eq!(labels["alertname"], alert["rule"]);
        assert_eq!(labels["severity"], alert["severity"]);
        assert_eq!(labels["source"], alert["source"]);
        assert_eq!((labels["cluster"].as_str(), labels["team"].as_str()), (Some("prod-1"), Some("platform")));
        // Every group-key value with a value is a label (its path with '.' made '_').
        for (path, v) in alert["groupKey"].as_object().unwrap() {
            let name = path.replace('.', "_");
            match v {
                Value::Null => assert!(labels.get(&name).is_none(), "{name}"),
                Value::String(s) => assert_eq!(labels[&name].as_str(), Some(s.as_str()), "{name}"),
                other => assert_eq!(labels[&name].as_str(), Some(other.to_string().as_str()), "{name}"),
            }
        }
        // An ungrouped rule alerts per event: its auditID keeps the alerts apart in Alertmanager.
        let id = alert["auditIDs"].as_array().unwrap().last().unwrap();
        if alert["groupKey"].as_object().unwrap().is_empty() {
            assert_eq!(&labels["auditID"], id);
        } else {
            assert!(labels.get("auditID").is_none());
        }
        // Output fields are annotations, as text; nulls are left out.
        let annotations = &am["annotations"];
        for (name, v) in alert["fields"].as_object().unwrap() {
            match v {
                Value::Null => assert!(annotations.get(name).is_none(), "{name}"),
                Value::String(s) => assert_eq!(annotations[name].as_str(), Some(s.as_str()), "{name}"),
                other => assert_eq!(annotations[name].as_str(), Some(other.to_string().as_str()), "{name}"),
            }
        }
        assert!(annotations["summary"].as_str().unwrap().starts_with(alert["rule"].as_str().unwrap()));
        let description = config.alerts.rule(alert["rule"].as_str().unwrap()).unwrap().description.clone();
        assert_eq!(annotations["description"].as_str(), Some(description.as_str()));
        // startsAt is the event time; endsAt one hour later (endsAfter).
        assert_eq!(am["startsAt"], alert["time"]);
        let start = kaudit::parse_micros(alert["time"].as_str().unwrap()).unwrap();
        assert_eq!(kaudit::parse_micros(am["endsAt"].as_str().unwrap()), Some(start + 3_600_000_000));
        let id = alert["auditIDs"].as_array().unwrap().last().unwrap().as_str().unwrap();
        assert_eq!(
            am["generatorURL"].as_str().unwrap(),
            format!("https://console.example/alerts?rule={}&id={id}", alert["rule"].as_str().unwrap())
        );
    }
    // An aggregated alert: its aggregates and window are annotations too.
    let internet = posted.as_array().unwrap().iter().find(|a| a["labels"]["alertname"] == "internet-access-failures");
    let internet = internet.expect("the seed's Example 2 alert");
    assert_eq!(internet["labels"]["kaudit_sourceIP"], "45.134.26.20");
    assert!(internet["annotations"]["failureRate"].is_string() && internet["annotations"]["windowStart"].is_string());
}

#[test]
fn slack_messages_are_escaped_mrkdwn_with_one_section_per_alert() {
    let config = load(ROUTES);
    let alerts = seed_alerts(config.clone());
    let route = config.alerts.route("oncall").unwrap();
    let payloads = config.alerts.payloads(route, &alerts);
    let high: Vec<Value> = alerts.iter().map(|a| json(a)).filter(|a| a["severity"] == "high").collect();
    assert!(!high.is_empty() && high.len() < alerts.len(), "minSeverity: high filters");
    assert_eq!(payloads.iter().map(|p| p.alerts).sum::<usize>(), high.len());
    for p in &payloads {
        assert_eq!(check_slack(&p.body), Ok(1), "{}", p.body);
        let text = json(&p.body)["text"].as_str().unwrap().to_string();
        assert_eq!(text.matches("*[HIGH] ").count(), p.alerts, "{text}");
    }
    let text = json(&payloads[0].body)["text"].as_str().unwrap().to_string();
    let first = &high[0];
    assert!(text.starts_with(&format!("*[HIGH] {}* (kaudit)", first["rule"].as_str().unwrap())), "{text}");
    assert!(text.contains(&format!("• *container*: `{}`", first["fields"]["container"].as_str().unwrap())), "{text}");
    // Slack's control characters in values are escaped.
    let odd = alerts[0].replacen("\"nginx\"", "\"<b>&x</b>\"", 1);
    let p = &config.alerts.payloads(route, &[odd])[0];
    assert_eq!(check_slack(&p.body), Ok(1));
    assert!(p.body.contains("&lt;b&gt;&amp;x&lt;/b&gt;"), "{}", p.body);
}

#[test]
fn dingtalk_markdown_has_the_keyword_mentions_and_splits_batches() {
    let config = load(ROUTES);
    let alerts = seed_alerts(config.clone());
    let route = config.alerts.route("ops-dingtalk").unwrap();
    let payloads = config.alerts.payloads(route, &alerts);
    assert_eq!(payloads.len(), alerts.len().div_ceil(2), "maxAlertsPerMessage: 2");
    for p in &payloads {
        assert_eq!(check_dingtalk(&p.body, Some("kaudit")), Ok(1), "{}", p.body);
        let m = json(&p.body);
        assert_eq!(m["at"]["atMobiles"], serde_json::json!(["13800000000"]));
        assert_eq!(m["at"]["isAtAll"], false);
        assert!(m["markdown"]["text"].as_str().unwrap().ends_with("@13800000000"), "mentioned in the text");
    }
    let one = config.alerts.payload(route, &alerts[..1]).unwrap();
    let m = json(&one.body);
    let a = json(&alerts[0]);
    assert_eq!(
        m["markdown"]["title"],
        format!("kaudit {}: {}", a["severity"].as_str().unwrap(), a["rule"].as_str().unwrap())
    );
    assert!(m["markdown"]["text"].as_str().unwrap().contains("- **command**: sh -c cat /etc/passwd"));
    // Fluent Bit sends one request per record: all of a record's alerts in one payload.
    assert_eq!(config.alerts.payload(route, &alerts).unwrap().alerts, alerts.len());
    // A keyword not in the text is added where the robot looks for it.
    let other = load("alerts:\n  routes:\n    - {name: d, format: dingtalk, keyword: 审计告警}\n");
    let p = other.alerts.payload(other.alerts.route("d").unwrap(), &alerts[..1]).unwrap();
    assert_eq!(check_dingtalk(&p.body, Some("审计告警")), Ok(1));
    assert!(json(&p.body)["markdown"]["title"].as_str().unwrap().starts_with("审计告警 "));
}

#[test]
fn without_routes_nothing_changes() {
    let config = load("badRecords: pass\n");
    assert!(config.alerts.routes.is_empty());
    assert!(Config::embedded_default().alerts.routes.is_empty());
}

/// `file:line:col: field: message` of the one error `text` gives.
fn error(text: &str) -> String {
    let e = Config::load(text, "kaudit.yaml", &NoFiles).expect_err("must fail");
    assert_eq!(e.errors.len(), 1, "{e}");
    e.errors[0].to_string()
}

#[test]
fn route_errors_name_file_line_and_field() {
    let r = "alerts:\n  routes:\n    - name: am\n";
    for (tail, want) in [
        ("      format: prometheus\n", "kaudit.yaml:4:15: alerts.routes[0].format: expected one of jsonLines, alertmanager, slack, dingtalk, found \"prometheus\""),
        ("      format: slack\n      keyword: x\n", "kaudit.yaml:5:7: alerts.routes[0].keyword: only for format dingtalk; this route's format is slack"),
        ("      format: slack\n      labels: {a: b}\n", "kaudit.yaml:5:7: alerts.routes[0].labels: only for format alertmanager; this route's format is slack"),
        ("      format: jsonLines\n      maxAlertsPerMessage: 5\n", "kaudit.yaml:5:7: alerts.routes[0].maxAlertsPerMessage: not for format jsonLines (a payload holds every alert given)"),
        ("      format: alertmanager\n      labels: {alertname: x}\n", "kaudit.yaml:5:16: alerts.routes[0].labels.alertname: set by kaudit from the alert (alertname, severity, source, auditID)"),
        ("      format: alertmanager\n      labels: {kube.ns: x}\n", "kaudit.yaml:5:16: alerts.routes[0].labels.kube.ns: a label name is a letter or '_' then letters, digits or '_'"),
        ("      format: alertmanager\n      generatorURL: console/x\n", "kaudit.yaml:5:21: alerts.routes[0].generatorURL: \"console/x\": expected an http:// or https:// URL"),
        ("      format: alertmanager\n      endsAfter: 5\n", "kaudit.yaml:5:18: alerts.routes[0].endsAfter: expected a duration such as 30m or 1h, found an integer"),
        ("      format: slack\n      minSeverity: urgent\n", "kaudit.yaml:5:20: alerts.routes[0].minSeverity: expected one of info, low, medium, high, critical, found \"urgent\""),
        ("      format: slack\n      maxAlertsPerMessage: 0\n", "kaudit.yaml:5:28: alerts.routes[0].maxAlertsPerMessage: expected a number from 1 to 1000"),
        ("      format: slack\n      channel: x\n", "kaudit.yaml:5:7: alerts.routes[0].channel: unknown key (expected one of: name, format, minSeverity, maxAlertsPerMessage, labels, generatorURL, endsAfter, keyword, atMobiles, atAll)"),
        ("      format: slack\n      format: dingtalk\n", "kaudit.yaml:5:7: alerts.routes[0].format: duplicate key (first given at line 4)"),
        ("      format: slack\n    - name: am\n      format: dingtalk\n", "kaudit.yaml:5:7: alerts.routes[1].name: route \"am\" is already defined by routes[0]"),
        ("", "kaudit.yaml:3:7: alerts.routes[0]: a route needs a format"),
    ] {
        assert_eq!(error(&format!("{r}{tail}")), want, "{tail:?}");
    }
    assert_eq!(
        error("alerts:\n  routes:\n    - {name: 'a b', format: slack}\n"),
        "kaudit.yaml:3:14: alerts.routes[0].name: \"a b\": a route name is 1 to 64 letters, digits, '_' or '-' (hosts use it in keys and tags)"
    );
}

const EXEC: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"ID","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/default/pods/p/exec?command=sh&container=c","verb":"create","user":{"username":"alice"},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"pods","namespace":"default","name":"p","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"code":101},"requestReceivedTimestamp":"2024-05-01T10:00:00.000000Z","stageTimestamp":"2024-05-01T10:00:00.100000Z"}"#;

#[test]
fn enabled_false_consumes_every_record_and_alerts_nothing() {
    let off = load("enabled: false\n");
    assert!(!off.enabled);
    let mut p = Pipeline::new(off);
    let event = EXEC.replace("ID", "1");
    let mut out = Vec::new();
    for record in [event.as_bytes(), b"not json", b"{\"kind\":0}"] {
        let outcome = p.process_record(record, &mut out);
        assert_eq!(outcome, Outcome::Dropped { reason: kaudit::DropReason::Disabled, rule: None });
    }
    let mut reports = 0;
    p.process_stream(format!("{event}\n{event}\n").as_bytes(), &mut out, &mut |_| reports += 1);
    assert_eq!(reports, 2);
    let list = format!("{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{event},{event}]}}");
    let summary = p.process_batch(list.as_bytes(), &mut out);
    assert_eq!((summary.events, summary.dropped), (2, 2));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[]}"
    );
    p.observe_for_alerts(event.as_bytes());
    assert!(p.take_alerts().is_empty(), "no alert while collection is off");
    let c = p.counters();
    assert_eq!((c.read, c.dropped, c.dropped_disabled, c.kept, c.bad), (7, 7, 7, 0, 0));
    // Turned back on (a new pipeline from the edited config, as hosts reload it): the same
    // event is kept and alerted again.
    let mut on = Pipeline::new(load("enabled: true\n"));
    let mut out = Vec::new();
    assert!(matches!(on.process_record(event.as_bytes(), &mut out), Outcome::Kept { .. }));
    assert_eq!(on.take_alerts().len(), 1);
    assert!(error("enabled: no\n").ends_with("enabled: expected true or false, found a string"));
}
