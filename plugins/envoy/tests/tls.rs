//! The shipped plugins/envoy/envoy.yaml's TLS in a real Envoy 1.40, with only ports, file paths
//! and the alert webhook's address replaced. Certificates are made with openssl at test time.
//!
//! What must hold (SECURITY.md, claims 6 and 8):
//! * the audit listener takes only clients with a certificate from the configured CA: no
//!   certificate, another CA's certificate, or plain HTTP is refused and nothing reaches the
//!   receiver; a client with the right certificate gets through;
//! * the alert route speaks TLS with the configured SNI and accepts only a server certificate
//!   from the configured CA that names the configured host;
//! * the admin interface is on loopback;
//! * the real kube-apiserver, with a webhook kubeconfig carrying the client certificate, gets
//!   through, and every event the engine keeps arrives.

mod support;

use std::process::Command;
use std::sync::Arc;

use kaudit::{Config, Pipeline};
use kaudit_envoy::batch::{alert_steps, filter_body};
use serde_json::{json, Value};
use support::pki::{tls_webhook_sni, Pki, ALERT_HOST};
use support::{http, loopback, shipped_config, wait_for, wasm_filter, Envoy, Recorder, TempDir};

const EXEC_LOG: &str = "tests/fixtures/alerts/seed-example1-exec.jsonl";

/// A TLS client: curl, with or without a client certificate (`cert`: its file stem).
fn https_post(pki: &Pki, port: u16, path: &str, cert: Option<&str>, body: &[u8]) -> Result<u16, String> {
    let body_file = pki.path("body.json");
    std::fs::write(&body_file, body).unwrap();
    let mut c = Command::new("curl");
    c.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", "--cacert"])
        .arg(pki.path("server-ca.crt"))
        .args(["-H", "content-type: application/json", "--data-binary"])
        .arg(format!("@{}", body_file.display()));
    if let Some(name) = cert {
        c.arg("--cert").arg(pki.path(&format!("{name}.crt"))).arg("--key").arg(pki.path(&format!("{name}.key")));
    }
    let out = c.arg(format!("https://127.0.0.1:{port}{path}")).output().expect("curl runs");
    let code = String::from_utf8_lossy(&out.stdout).trim().parse::<u16>().unwrap_or(0);
    if out.status.success() {
        Ok(code)
    } else {
        Err(format!("curl exit {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn tls_socket(config: &Value) -> &Value {
    &config["transport_socket"]["typed_config"]
}

/// The shipped TLS settings, read before the test edits the config.
#[test]
fn the_shipped_config_requires_client_certificates_and_keeps_admin_on_loopback() {
    let config = shipped_config();
    assert_eq!(config["admin"]["address"]["socket_address"]["address"], "127.0.0.1", "admin stays on loopback");
    let listener = &config["static_resources"]["listeners"][0];
    assert_eq!(
        listener["address"]["socket_address"]["address"], "0.0.0.0",
        "the address README.md and envoy.yaml explain"
    );
    let chain = &listener["filter_chains"][0];
    let down = tls_socket(chain);
    assert_eq!(down["@type"], "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext");
    assert_eq!(down["require_client_certificate"], true);
    assert!(down["common_tls_context"]["validation_context"]["trusted_ca"]["filename"].is_string());
    let alerts = config["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "kaudit_alerts")
        .expect("alert cluster");
    let up = tls_socket(alerts);
    assert_eq!(up["@type"], "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
    assert_eq!(up["sni"], ALERT_HOST);
    let validation = &up["common_tls_context"]["validation_context"];
    assert!(validation["trusted_ca"]["filename"].is_string());
    assert_eq!(validation["match_typed_subject_alt_names"][0]["matcher"]["exact"], ALERT_HOST);
    let plugin: Value = {
        let mut l = listener.clone();
        let text = wasm_filter(&mut l)["configuration"]["value"].as_str().unwrap().to_string();
        support::yaml_to_json(&kaudit::yaml::parse(&text, "plugin").unwrap())
    };
    assert_eq!(plugin["alerts"]["cluster"], "kaudit_alerts");
    assert_eq!(plugin["alerts"]["authority"], ALERT_HOST, "the Host header names the same webhook");
}

/// The alert webhook over TLS: a second Envoy terminates TLS with `alerts.crt` (listener
/// `alerts`) or `alerts-other-name.crt` (listener `alerts_other_name`) and forwards to `sink`.
/// The alert webhooks: `alerts` (a certificate naming ALERT_HOST, and only for that SNI) and
/// `alerts_other_name` (a certificate naming another host).
fn alert_webhook(pki: &Pki, sink: u16) -> Envoy {
    tls_webhook_sni(
        pki,
        &[("alerts", "alerts", Some(ALERT_HOST)), ("alerts_other_name", "alerts-other-name", None)],
        sink,
    )
}

/// The shipped config with the test's files and ports. Listener `kaudit` is the shipped one;
/// `wrong_ca` and `wrong_name` differ only in where their alerts go: clusters like the shipped
/// `kaudit_alerts` that trust another CA, or reach a webhook whose certificate names another host.
fn shipped_with(pki: &Pki, receiver: u16, webhook: &Envoy) -> Value {
    let mut config = shipped_config();
    config["admin"]["address"] = loopback(0);
    let mut base = config["static_resources"]["listeners"][0].clone();
    base["address"] = loopback(0);
    base["stat_prefix"] = json!("kaudit");
    wasm_filter(&mut base)["vm_config"]["code"]["local"]["filename"] = json!(support::artifact());
    let ctx = &mut base["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"];
    ctx["tls_certificates"][0] =
        json!({ "certificate_chain": pki.file("envoy.crt"), "private_key": pki.file("envoy.key") });
    ctx["validation_context"]["trusted_ca"] = pki.file("client-ca.crt");
    let shipped_plugin: Value = {
        let text = wasm_filter(&mut base)["configuration"]["value"].as_str().unwrap().to_string();
        support::yaml_to_json(&kaudit::yaml::parse(&text, "plugin").unwrap())
    };
    let mut listeners = vec![base.clone()];
    for (name, cluster) in [("wrong_ca", "alerts_wrong_ca"), ("wrong_name", "alerts_wrong_name")] {
        let mut l = base.clone();
        l["name"] = json!(name);
        l["stat_prefix"] = json!(name);
        let plugin = wasm_filter(&mut l);
        plugin["name"] = json!(name);
        let mut envelope = shipped_plugin.clone();
        envelope["alerts"]["cluster"] = json!(cluster);
        envelope["alerts"]["path"] = json!(format!("/alerts/{name}"));
        plugin["configuration"]["value"] = json!(envelope.to_string());
        listeners.push(l);
    }
    config["static_resources"]["listeners"] = Value::Array(listeners);
    let clusters = config["static_resources"]["clusters"].as_array_mut().unwrap();
    let mut extra = Vec::new();
    for cluster in clusters.iter_mut() {
        let name = cluster["name"].as_str().map(str::to_string);
        let endpoint = &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"];
        match name.as_deref() {
            Some("audit_receiver") => *endpoint = loopback(receiver),
            Some("kaudit_alerts") => {
                *endpoint = loopback(webhook.listener_port("alerts"));
                cluster["type"] = json!("STATIC");
                let ctx = &mut cluster["transport_socket"]["typed_config"]["common_tls_context"];
                ctx["validation_context"]["trusted_ca"] = pki.file("server-ca.crt");
                let mut wrong_ca = cluster.clone();
                wrong_ca["name"] = json!("alerts_wrong_ca");
                wrong_ca["load_assignment"]["cluster_name"] = json!("alerts_wrong_ca");
                wrong_ca["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]
                    ["trusted_ca"] = pki.file("other-ca.crt");
                let mut wrong_name = cluster.clone();
                wrong_name["name"] = json!("alerts_wrong_name");
                wrong_name["load_assignment"]["cluster_name"] = json!("alerts_wrong_name");
                wrong_name["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] =
                    loopback(webhook.listener_port("alerts_other_name"));
                extra.extend([wrong_ca, wrong_name]);
            }
            other => panic!("unexpected cluster {other:?} in the shipped config"),
        }
    }
    clusters.extend(extra);
    config
}

/// The alerts the shipped plugin configuration raises for `body` (the embedded default config).
fn native_alerts(body: &[u8]) -> Vec<String> {
    let mut worker = Pipeline::alert_worker(Config::embedded_default());
    let mut consumer = Pipeline::embedded_default();
    let filtered = filter_body(&mut worker, body);
    if let Some(steps) = alert_steps(&mut worker, &filtered) {
        consumer.apply_alert_steps(&steps).expect("steps of the same config");
    }
    consumer.take_alerts()
}

/// A JSON-lines log as one EventList.
fn event_list(log: &str) -> String {
    support::event_list(&log.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>())
}

#[test]
fn only_clients_with_the_configured_cas_certificate_reach_the_receiver_and_alerts_go_over_verified_tls() {
    let pki = Pki::new();
    let receiver = Recorder::start();
    let sink = Recorder::start();
    let webhook = alert_webhook(&pki, sink.port);
    let envoy = Envoy::start(&shipped_with(&pki, receiver.port, &webhook), Arc::new(TempDir::new("tls")))
        .unwrap_or_else(|e| panic!("{e}"));
    let port = envoy.listener_port("audit_webhook");
    let body = event_list(&std::fs::read_to_string(support::workspace_root().join(EXEC_LOG)).unwrap());

    // Refused: no client certificate, another CA's certificate, plain HTTP.
    let refused = [
        ("no client certificate", https_post(&pki, port, "/audit", None, body.as_bytes())),
        ("another CA's certificate", https_post(&pki, port, "/audit", Some("intruder"), body.as_bytes())),
    ];
    for (what, result) in refused {
        assert!(result.is_err(), "{what}: the TLS handshake must fail, got HTTP {result:?}");
    }
    let plain = http(port, "POST", "/audit", &[("content-type", "application/json")], body.as_bytes());
    assert!(plain.is_err(), "plain HTTP must not get an answer: {plain:?}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(receiver.requests().is_empty(), "nothing may reach the receiver: {:?}", receiver.requests().len());
    assert!(envoy.counter("listener.kaudit.ssl.fail_verify_no_cert") >= 1, "{}", envoy.log_tail(20));
    assert!(envoy.counter("listener.kaudit.ssl.fail_verify_error") >= 1, "the other CA's certificate is rejected");

    // The right certificate gets through; its exec alerts go to the webhook over TLS.
    assert_eq!(https_post(&pki, port, "/audit", Some("apiserver"), body.as_bytes()), Ok(200));
    let got = receiver.requests_to("/audit");
    assert_eq!(got.len(), 1, "the receiver got the batch");
    let forwarded: Value = serde_json::from_slice(&got[0].body).expect("an EventList");
    assert!(!forwarded["items"].as_array().expect("items").is_empty());
    let want = native_alerts(body.as_bytes());
    assert!(!want.is_empty(), "the exec log raises alerts");
    let shipped_route = || sink.requests().into_iter().filter(|r| r.path == "/alerts").collect::<Vec<_>>();
    let received = || shipped_route().iter().map(|r| String::from_utf8_lossy(&r.body).lines().count()).sum::<usize>();
    let arrived = wait_for(20, || (received() >= want.len()).then_some(()));
    assert!(arrived.is_some(), "{} of {} alerts arrived over TLS\n{}", received(), want.len(), envoy.log_tail(30));
    let requests = shipped_route();
    let bodies: String = requests.iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect();
    assert_eq!(bodies.lines().collect::<Vec<_>>(), want.iter().map(String::as_str).collect::<Vec<_>>());
    for r in &requests {
        assert_eq!(r.header(":authority").or(r.header("host")), Some(ALERT_HOST));
    }
    // Over TLS, with the shipped SNI: the webhook's listener serves no other server name.
    assert!(webhook.counter("listener.alerts.ssl.handshake") >= 1);

    // A webhook certificate from another CA, or one naming another host: no alert is sent.
    for (listener, cluster, counter) in
        [("wrong_ca", "alerts_wrong_ca", "fail_verify_error"), ("wrong_name", "alerts_wrong_name", "fail_verify_san")]
    {
        let port = envoy.listener_port(listener);
        assert_eq!(https_post(&pki, port, "/audit", Some("apiserver"), body.as_bytes()), Ok(200));
        let refused = wait_for(20, || (envoy.counter(&format!("cluster.{cluster}.ssl.{counter}")) >= 1).then_some(()));
        assert!(refused.is_some(), "{cluster}: no {counter}\n{}", envoy.log_tail(30));
        let failed = format!("wasmcustom.kaudit.{listener}.alerts_failed");
        assert!(wait_for(20, || (envoy.counter(&failed) >= 1).then_some(())).is_some(), "{failed}");
        assert!(sink.requests_to(&format!("/alerts/{listener}")).is_empty(), "{listener}: an alert reached the sink");
    }
}

/// `(auditID, stage)` of every item of an EventList body.
fn item_keys(body: &[u8]) -> Vec<(String, String)> {
    let list: Value = serde_json::from_slice(body).expect("an EventList");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| (e["auditID"].as_str().unwrap().to_string(), e["stage"].as_str().unwrap().to_string()))
        .collect()
}

/// The real kube-apiserver posts its audit batches through the shipped listener with the client
/// certificate of its webhook kubeconfig; every event kaudit keeps reaches the receiver (except
/// those the apiserver itself reports as not sent at shutdown).
#[test]
fn kube_apiserver_with_the_client_certificate_gets_through() {
    let Some(script) = support::real_hosts::require(&support::real_hosts::KUBE_AUDIT, "kube-apiserver through TLS")
    else {
        return;
    };
    let pki = Pki::new();
    let receiver = Recorder::start();
    let sink = Recorder::start();
    let webhook = alert_webhook(&pki, sink.port);
    let envoy = Envoy::start(&shipped_with(&pki, receiver.port, &webhook), Arc::new(TempDir::new("kube")))
        .unwrap_or_else(|e| panic!("{e}"));
    let port = envoy.listener_port("audit_webhook");
    let work = TempDir::new("kube-run");
    let kubeconfig = work.0.join("webhook.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kaudit\n  cluster:\n    server: https://127.0.0.1:{port}/audit\n    \
             certificate-authority: {}\nusers:\n- name: apiserver\n  user:\n    client-certificate: {}\n    client-key: {}\n\
             contexts:\n- name: webhook\n  context: {{cluster: kaudit, user: apiserver}}\ncurrent-context: webhook\n",
            pki.path("server-ca.crt").display(),
            pki.path("apiserver.crt").display(),
            pki.path("apiserver.key").display()
        ),
    )
    .unwrap();
    let policy = work.0.join("policy.yaml");
    std::fs::write(&policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n").unwrap();
    let out_dir = work.0.join("out");
    let run = Command::new("bash")
        .arg(&script)
        .arg(&policy)
        .arg(&out_dir)
        .env(
            "EXTRA_APISERVER_FLAGS",
            format!("--audit-webhook-config-file={} --audit-webhook-batch-max-wait=1s", kubeconfig.display()),
        )
        .output()
        .expect("run-audit.sh runs");
    assert!(run.status.success(), "run-audit.sh: {}\n{}", run.status, String::from_utf8_lossy(&run.stderr));

    let forwarded: Vec<(String, String)> =
        receiver.requests_to("/audit").iter().flat_map(|r| item_keys(&r.body)).collect();
    assert!(!forwarded.is_empty(), "no batch arrived\n{}", envoy.log_tail(30));
    assert!(envoy.counter("listener.kaudit.ssl.handshake") >= 1);
    // The oracle: what the native engine keeps of the log backend's copy of the same events.
    let log = std::fs::read_to_string(out_dir.join("audit.log")).expect("audit.log");
    let mut pipeline = Pipeline::embedded_default();
    let body = event_list(&log);
    let kept = match filter_body(&mut pipeline, body.as_bytes()) {
        kaudit_envoy::batch::Filtered::Processed { body: Some(b), .. } => item_keys(b.as_bytes()),
        _ => item_keys(body.as_bytes()),
    };
    let kept: std::collections::BTreeSet<_> = kept.into_iter().collect();
    let got: std::collections::BTreeSet<_> = forwarded.iter().cloned().collect();
    assert!(got.is_subset(&kept), "forwarded events the engine would not keep: {:?}", got.difference(&kept).take(5));
    let apiserver_log = std::fs::read_to_string(out_dir.join("apiserver.log")).unwrap_or_default();
    let missing: Vec<_> = kept
        .difference(&got)
        .filter(|(id, stage)| !apiserver_log.contains(&format!("id=\"{id}\" stage=\"{stage}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} kept events never arrived, e.g. {:?}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    println!(
        "kube-apiserver -> Envoy (mTLS) -> receiver: {} events forwarded of {} in audit.log",
        got.len(),
        log.lines().count()
    );
}
