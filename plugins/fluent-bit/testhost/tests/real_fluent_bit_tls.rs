//! The shipped alert route of plugins/fluent-bit/fluent-bit.yaml (its `http` output, verbatim,
//! fed by a `dummy` input carrying one alert record) in the real Fluent Bit, against webhooks
//! over TLS made at test time: it delivers to a webhook whose certificate chains to `tls.ca_file`
//! and names `KAUDIT_ALERT_HOST`, and to no other (another CA; a certificate for another name).
//! SECURITY.md, claim 8. The host is found as plugins/envoy/tests/support/real_hosts.rs says.

#[path = "../../../envoy/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::pki::{tls_webhook, Pki};
use support::real_hosts::{self, repo_root};
use support::{wait_for, Recorder, TempDir};

const URI: &str = "/kaudit/alerts";

/// The shipped `http` output section, from `- name: http` to the end of the file.
fn shipped_alert_output() -> String {
    let shipped = std::fs::read_to_string(repo_root().join("plugins/fluent-bit/fluent-bit.yaml")).expect("shipped");
    let at = shipped.find("    - name: http\n").expect("the shipped config has the alert http output");
    let section = shipped[at..].to_string();
    for key in ["tls: on", "tls.verify: on", "tls.verify_hostname: on", "tls.ca_file: /etc/kaudit/tls/alerts-ca.crt"] {
        assert!(section.contains(key), "the shipped alert output has {key}");
    }
    section
}

/// Runs Fluent Bit for a few seconds with the shipped alert output trusting `ca` and posting
/// to `host`:`port`; returns its log.
fn run(bin: &Path, dir: &Path, ca: &Path, host: &str, port: u16) -> String {
    let output = shipped_alert_output().replace("/etc/kaudit/tls/alerts-ca.crt", &ca.display().to_string());
    let config = format!(
        "service:\n  flush: 1\n  log_level: info\npipeline:\n  inputs:\n    - name: dummy\n      tag: kaudit.alerts\n      \
         dummy: '{{\"kaudit_alerts\":[{{\"rule\":\"exec-into-container\"}}]}}'\n      samples: 1\n  outputs:\n{output}"
    );
    let path = dir.join(format!("fluent-bit-{port}-{host}.yaml"));
    std::fs::write(&path, config).expect("config");
    let log = dir.join(format!("fluent-bit-{port}-{host}.log"));
    let file = std::fs::File::create(&log).expect("log");
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(&path)
        .env("KAUDIT_ALERT_HOST", host)
        .env("KAUDIT_ALERT_PORT", port.to_string())
        .env("KAUDIT_ALERT_URI", URI)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .expect("fluent-bit starts");
    // One flush (1 s) and its first attempt; a refused certificate shows in the log at once.
    std::thread::sleep(Duration::from_secs(4));
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn the_shipped_alert_route_posts_only_to_a_verified_webhook() {
    let Some(bin) = real_hosts::require(&real_hosts::FLUENT_BIT, "Fluent Bit alert route over TLS") else { return };
    let pki = Pki::new();
    let dir = TempDir::new("fb-tls");
    let receiver = Recorder::start();
    // `envoy.crt` names localhost (and 127.0.0.1); `alerts-other-name.crt` names other.example.com.
    let webhook = tls_webhook(&pki, &[("right", "envoy"), ("other_name", "alerts-other-name")], receiver.port);
    let (right, other_name) = (webhook.listener_port("right"), webhook.listener_port("other_name"));

    let log = run(&bin, &dir.0, &pki.path("server-ca.crt"), "localhost", right);
    let delivered = wait_for(10, || (!receiver.requests_to(URI).is_empty()).then_some(()));
    assert!(delivered.is_some(), "the verified webhook got no alert:\n{log}");
    let body = String::from_utf8_lossy(&receiver.requests_to(URI)[0].body).into_owned();
    assert!(body.contains("exec-into-container"), "{body}");
    let before = receiver.requests().len();

    for (what, ca, port) in [
        ("a certificate from another CA", pki.path("other-ca.crt"), right),
        ("a certificate for another name", pki.path("server-ca.crt"), other_name),
    ] {
        let log = run(&bin, &dir.0, &ca, "localhost", port);
        assert!(log.contains("certificate verify failed"), "{what}: Fluent Bit must refuse it:\n{log}");
        assert_eq!(receiver.requests().len(), before, "{what}: an alert reached the webhook");
    }
}
