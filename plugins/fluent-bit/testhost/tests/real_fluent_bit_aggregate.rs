//! Two-phase aggregation in the real Fluent Bit 5.1.1 (docs/SCALING.md): three agents running
//! the shipped plugins/fluent-bit/fluent-bit-agent.yaml (kaudit-agent.yaml as their kaudit
//! config), each tailing its own third of a stream (round robin), forward their partial records
//! to one aggregator running the shipped fluent-bit-aggregator.yaml (kaudit-aggregator.yaml),
//! which posts the alerts to a webhook. Only paths, ports and the test PKI are substituted; the
//! forward hop is TLS (the aggregator presents a certificate for localhost from the test CA).
//!
//! The oracle is the native CLI, `kaudit run`, in single role on the whole stream: the
//! aggregator's alerts must equal its alerts as JSON values, rule by rule and count by count,
//! although no third alone raises the seed's Example 2. Agent 1 is killed with SIGKILL half way
//! and restarted while the others go on: no alert is lost and none arrives twice.
//!
//! The stream is appended to the three logs in lockstep, a few seconds of event time at a time,
//! as three apiservers write theirs: the agents stay within `idleAfter` of each other, so the
//! aggregator waits for each (docs/SCALING.md, "The guarantee, and its conditions").

#[path = "../../../envoy/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::fluent_bit::{
    alerts_received as received, by_rule, free_port, module, render, stage_time, wait_for_the_same_alerts, Fb,
};
use support::pki::{tls_webhook, Pki};
use support::real_hosts::{self, kaudit_run as native, repo_root};
use support::Recorder;

const ALERT_URI: &str = "/kaudit/alerts";
const AGENT_ALERT_URI: &str = "/kaudit/agent-alerts";
const WINDOWED: &str = "internet-access-failures";

/// The seed's Example 2 log (two bursts from one Internet address, near misses) followed by
/// Example 1 (exec sessions) moved to start when Example 2 ends, plus one event per agent 15
/// minutes after the end that no rule matches: an apiserver keeps logging, and those events
/// move every agent's watermark past the last period (a streaming agent never sees an end).
fn stream() -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let fixtures = repo_root().join("tests/fixtures/alerts");
    let read = |name: &str| std::fs::read_to_string(fixtures.join(name)).expect("fixture");
    lines.extend(read("seed-example2-internet.jsonl").lines().map(|l| l.as_bytes().to_vec()));
    lines.extend(
        read("seed-example1-exec.jsonl").lines().map(|l| l.replace("2024-05-14T10:0", "2024-05-14T10:4").into_bytes()),
    );
    for i in 0..3 {
        lines.push(format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"clock-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps/app","verb":"get","user":{{"username":"alice","groups":["system:authenticated"]}},"sourceIPs":["10.0.8.21"],"userAgent":"kubectl/v1.30.1","objectRef":{{"resource":"configmaps","namespace":"default","name":"app","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2024-05-14T11:05:0{i}.000000Z","stageTimestamp":"2024-05-14T11:05:0{i}.100000Z"}}"#
        ).into_bytes());
    }
    lines.retain(|l| !l.is_empty());
    lines
}

#[test]
fn three_agents_and_an_aggregator_raise_what_one_instance_raises_across_a_kill_9() {
    let Some(bin) = real_hosts::require(&real_hosts::FLUENT_BIT, "real_fluent_bit_aggregate") else { return };
    let started = Instant::now();
    let lines = stream();
    let whole: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
    let want = native(&whole, None).alerts;
    let want_by_rule = by_rule(&want);
    assert_eq!(want_by_rule.get(WINDOWED).map(|m| m.values().sum::<usize>()), Some(2), "{want_by_rule:#?}");

    let mut thirds: Vec<Vec<&[u8]>> = vec![Vec::new(); 3];
    for (i, l) in lines.iter().enumerate() {
        thirds[i % 3].push(l);
    }
    // No third alone raises the windowed alert.
    for (i, third) in thirds.iter().enumerate() {
        let text: Vec<u8> = third.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
        let alone = by_rule(&native(&text, None).alerts);
        assert!(!alone.contains_key(WINDOWED), "the third of agent {i} alone raised {WINDOWED}");
    }

    let pki = Pki::new();
    let receiver = Recorder::start();
    let webhook = tls_webhook(&pki, &[("alerts", "envoy")], receiver.port);
    let wasm = module().display().to_string();
    let ca = pki.path("server-ca.crt").display().to_string();
    let forward_port = free_port();
    let alert_env = |uri: &str| {
        vec![
            ("KAUDIT_ALERT_HOST", "localhost".to_string()),
            ("KAUDIT_ALERT_PORT", webhook.listener_port("alerts").to_string()),
            ("KAUDIT_ALERT_URI", uri.to_string()),
        ]
    };
    let common = |d: &str| {
        vec![
            ("/var/lib/fluent-bit/storage", format!("{d}/storage")),
            ("/usr/lib/kaudit/kaudit-fluent-bit.wasm", wasm.clone()),
            ("accessible_paths: /etc/kaudit", "accessible_paths: .".to_string()),
            ("/etc/kaudit/tls/alerts-ca.crt", ca.clone()),
        ]
    };
    let mut subs = common("@DIR@");
    subs.extend([
        ("port: 24224", format!("port: {forward_port}")),
        // The Envoy replicas' http input (plugins/envoy/tests/aggregate.rs posts to it).
        ("port: 8443", format!("port: {}", free_port())),
        ("/etc/kaudit/tls/agents-ca.crt", pki.path("client-ca.crt").display().to_string()),
        ("/etc/kaudit/tls/aggregator.crt", pki.path("envoy.crt").display().to_string()),
        ("/etc/kaudit/tls/aggregator.key", pki.path("envoy.key").display().to_string()),
    ]);
    let mut aggregator = Fb::new(
        &bin,
        "aggregator",
        render("fluent-bit-aggregator.yaml", &subs),
        // The one value changed: the test replays 70 minutes of event time in about 15 s, so a
        // delay of one second in a Fluent Bit is five minutes of event time (live, 1 s is 1 s).
        render("kaudit-aggregator.yaml", &[("allowedLateness: 30s", "allowedLateness: 10m".to_string())]),
        alert_env(ALERT_URI),
    );
    aggregator.start(&format!("listening on 0.0.0.0:{forward_port}"));

    let mut agents: Vec<Fb> = (0..3)
        .map(|i| {
            let mut subs = common("@DIR@");
            subs.extend([
                ("/var/log/kubernetes/kubernetes.audit", "@DIR@/in.log".to_string()),
                ("/var/lib/fluent-bit/kaudit-tail.db", "@DIR@/tail.db".to_string()),
                ("path: /var/log/kaudit", "path: @DIR@/out".to_string()),
                ("/etc/kaudit/tls/aggregator-ca.crt", ca.clone()),
            ]);
            let mut env = alert_env(AGENT_ALERT_URI);
            env.extend([
                ("HOSTNAME", format!("node-{i}")),
                ("KAUDIT_AGGREGATOR_HOST", "localhost".to_string()),
                ("KAUDIT_AGGREGATOR_PORT", forward_port.to_string()),
            ]);
            Fb::new(
                &bin,
                &format!("agent{i}"),
                render("fluent-bit-agent.yaml", &subs),
                render("kaudit-agent.yaml", &[]),
                env,
            )
        })
        .collect();
    for a in &mut agents {
        let watching = format!("name={}", a.path("in.log").display());
        a.start(&watching);
    }

    // Lockstep: 20 s of event time every 150 ms of real time (the agents stay well within
    // idleAfter, 15 min, of each other). Agent 1 is killed when its log reaches 10:20 and
    // restarted a minute of event time later; meanwhile the others (and its own log) go on.
    // The test's allowedLateness (10 min) is then 4.5 s of real time; at 60 ms a step (1.8 s) a
    // busy 2-core CI machine once delivered an agent's partials after their period had closed.
    let step = 20_000_000;
    let first = stage_time(&lines[0]);
    let kill_at = first + 20 * 60_000_000;
    let restart_at = kill_at + 60_000_000;
    let mut cursor = [0usize; 3];
    let mut until = first + step;
    let mut killed = false;
    while cursor.iter().zip(&thirds).any(|(c, t)| *c < t.len()) {
        for (i, third) in thirds.iter().enumerate() {
            let end = cursor[i] + third[cursor[i]..].iter().take_while(|l| stage_time(l) < until).count();
            agents[i].append(&third[cursor[i]..end]);
            cursor[i] = end;
        }
        std::thread::sleep(Duration::from_millis(150));
        if !killed && until >= kill_at {
            // Let the agent pass on what it read, as a running one does, then kill it.
            std::thread::sleep(Duration::from_millis(1_500));
            agents[1].kill9();
            killed = true;
        }
        if killed && agents[1].child.is_none() && until >= restart_at {
            let watching = format!("name={}", agents[1].path("in.log").display());
            agents[1].start(&watching);
        }
        until += step;
    }

    let got = wait_for_the_same_alerts(&receiver, ALERT_URI, &want, &aggregator);
    assert_eq!(received(&receiver, AGENT_ALERT_URI), Vec::<Value>::new(), "agents raise nothing themselves");
    for fb in agents.iter().chain([&aggregator]) {
        let log = fb.log();
        assert!(!log.contains("Got exception running wasm code"), "the module trapped:\n{log}");
        assert!(!log.contains("\"kaudit_error\""), "a record did not merge:\n{log}");
    }
    assert!(agents[1].starts == 2, "agent 1 was restarted");
    eprintln!(
        "3 agents + aggregator: {} lines in, {} alerts out ({} {WINDOWED}), equal to kaudit run, agent 1 killed \
         and restarted ({:.1} s)",
        lines.len(),
        got.len(),
        want_by_rule[WINDOWED].values().sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
}
