//! The shipped plugins/vector/vector.yaml in a real Vector 0.57, through a real Envoy 1.40
//! running the shipped plugins/envoy/envoy.yaml with kaudit-envoy.wasm: both files with only
//! paths and ports substituted.
//!
//!   audit.log -> Vector file source -> parse -> http sink (TLS, client certificate) -> Envoy + kaudit
//!     -> Vector http_server source -> `. = .items` -> console sink (stdout, one JSON per line)
//!
//! What must hold: what Vector prints equals native `kaudit run` on the same lines, as JSON
//! values (Vector re-serialises events with sorted keys), nothing dropped and nothing twice;
//! with Envoy down, Vector retries and delivers everything once Envoy is up. Certificates are
//! made with openssl at test time (support/pki.rs); Envoy's alerts go to a TLS webhook.
//!
//! The hosts are found as support/real_hosts.rs says; `kaudit run` is `$KAUDIT_CLI`.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::pki::{tls_webhook, Pki};
use support::real_hosts::{self, kaudit_run, missing_and_duplicated, multiset, parse_tolerating_torn, repo_root};
use support::{loopback, shipped_config, wait_for, wasm_filter, Envoy, Recorder, TempDir};

const TIMEOUT_SECS: u64 = 120;

/// A port nothing listens on right now (bound, then released), for a process started later.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The shipped envoy.yaml with its listener on `listen` (TLS with `pki`'s server certificate,
/// clients from its client CA), the audit receiver at `receiver` (Vector's http_server source),
/// the alert route to `webhook` (TLS, `pki`'s server CA), and the module from the build.
fn envoy_config(pki: &Pki, listen: u16, receiver: u16, webhook: u16) -> Value {
    let mut config = shipped_config();
    config["admin"]["address"] = loopback(0);
    let listeners = config["static_resources"]["listeners"].as_array_mut().expect("listeners");
    assert_eq!(listeners.len(), 1, "one listener in the shipped envoy.yaml");
    let listener = &mut listeners[0];
    listener["address"] = loopback(listen);
    wasm_filter(listener)["vm_config"]["code"]["local"]["filename"] = json!(support::artifact());
    let ctx = &mut listener["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"];
    ctx["tls_certificates"][0] =
        json!({ "certificate_chain": pki.file("envoy.crt"), "private_key": pki.file("envoy.key") });
    ctx["validation_context"]["trusted_ca"] = pki.file("client-ca.crt");
    for cluster in config["static_resources"]["clusters"].as_array_mut().expect("clusters") {
        let port = match cluster["name"].as_str() {
            Some("audit_receiver") => receiver,
            Some("kaudit_alerts") => {
                cluster["type"] = json!("STATIC");
                cluster["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]["trusted_ca"] =
                    pki.file("server-ca.crt");
                webhook
            }
            other => panic!("unexpected cluster {other:?} in the shipped envoy.yaml"),
        };
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = loopback(port);
    }
    config
}

/// The shipped vector.yaml with paths and ports replaced (each must still be in the shipped file).
fn vector_config(dir: &Path, pki: &Pki, envoy: u16, source: u16) -> String {
    let mut text = std::fs::read_to_string(repo_root().join("plugins/vector/vector.yaml")).expect("vector.yaml");
    let d = dir.display();
    for (from, to) in [
        ("/var/log/kubernetes/audit/audit.log", format!("{d}/audit.log")),
        ("data_dir: /var/lib/vector", format!("data_dir: {d}/data")),
        ("https://127.0.0.1:9880/audit", format!("https://127.0.0.1:{envoy}/audit")),
        ("address: 127.0.0.1:9881", format!("address: 127.0.0.1:{source}")),
        ("/etc/vector/tls/envoy-server-ca.crt", pki.path("server-ca.crt").display().to_string()),
        ("/etc/vector/tls/vector-audit-client.crt", pki.path("vector.crt").display().to_string()),
        ("/etc/vector/tls/vector-audit-client.key", pki.path("vector.key").display().to_string()),
    ] {
        assert!(text.contains(from), "the shipped vector.yaml no longer contains {from:?}");
        text = text.replace(from, &to);
    }
    text
}

/// A running Vector on the shipped config; killed when dropped.
struct Vector {
    child: Child,
    dir: Arc<TempDir>,
}

impl Vector {
    fn start(bin: &Path, dir: Arc<TempDir>, pki: &Pki, envoy: u16, source: u16) -> Vector {
        std::fs::create_dir_all(dir.0.join("data")).expect("data dir");
        let config = dir.0.join("vector.yaml");
        std::fs::write(&config, vector_config(&dir.0, pki, envoy, source)).expect("config");
        // Appended to: a restarted Vector (same data_dir) adds to what the first one wrote.
        let append =
            |name: &str| std::fs::OpenOptions::new().create(true).append(true).open(dir.0.join(name)).expect(name);
        let (out, err) = (append("vector.out"), append("vector.log"));
        let starts_before =
            std::fs::read_to_string(dir.0.join("vector.log")).unwrap_or_default().matches("Vector has started").count();
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .env("VECTOR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let mut v = Vector { child, dir };
        let started = wait_for(60, || {
            if let Ok(Some(status)) = v.child.try_wait() {
                panic!("vector exited with {status}:\n{}", v.log());
            }
            (v.log().matches("Vector has started").count() > starts_before).then_some(())
        });
        assert!(started.is_some(), "vector did not start within 60 s:\n{}", v.log());
        v
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("vector.log")).unwrap_or_default()
    }

    /// What the console sink printed, line by line: complete lines only (a poll can catch Vector
    /// in the middle of writing a long one).
    fn lines(&self) -> Vec<String> {
        let out = std::fs::read_to_string(self.dir.0.join("vector.out")).unwrap_or_default();
        let complete = out.rfind('\n').map_or("", |end| &out[..end]);
        complete.lines().map(String::from).collect()
    }

    /// What the console sink printed, one event per line.
    fn events(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("vector printed a line that is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// The file source's checkpoint: the largest `position` in `<data_dir>/**/checkpoints.json`
    /// (`None` before the first one is written).
    fn checkpoint(&self) -> Option<u64> {
        fn positions(v: &Value, out: &mut Vec<u64>) {
            match v {
                Value::Object(m) => {
                    out.extend(m.get("position").and_then(Value::as_u64));
                    m.values().for_each(|x| positions(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| positions(x, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        let mut dirs = vec![self.dir.0.join("data")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.file_name().is_some_and(|n| n == "checkpoints.json") {
                    if let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(&p).unwrap_or_default()) {
                        positions(&v, &mut found);
                    }
                }
            }
        }
        found.into_iter().max()
    }

    fn wait_for_events(&self, n: usize) {
        let done = wait_for(TIMEOUT_SECS, || (self.events().len() >= n).then_some(()));
        assert!(
            done.is_some(),
            "after {TIMEOUT_SECS} s Vector printed {} of {n} events:\n{}",
            self.events().len(),
            self.log()
        );
    }
}

impl Drop for Vector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- vector log ---\n{}", self.log());
        }
    }
}

/// A native output line as the event Vector carries for it: a JSON object as itself, any other
/// line as the shipped parse step keeps it, `{"message": line}`.
fn as_event(line: &str) -> Value {
    match serde_json::from_str::<Value>(line) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "message": line }),
    }
}

/// The events Vector printed are exactly kaudit run's (each as often), and the alerts Envoy
/// posted exactly its alerts.
fn assert_equal_to_native(vector: &Vector, sink: &Recorder, want: &real_hosts::Native, what: &str) {
    // Nothing arrives late: one more batch timeout.
    std::thread::sleep(Duration::from_millis(2_500));
    let got = vector.events();
    let wanted: Vec<Value> = want.events.iter().map(|l| as_event(l)).collect();
    assert_eq!(
        got.len(),
        wanted.len(),
        "{what}: Vector printed {} events, kaudit run wrote {}",
        got.len(),
        wanted.len()
    );
    assert_eq!(multiset(&got), multiset(&wanted), "{what}: the events differ from kaudit run's");
    let in_order = got == wanted;
    let alerts: Vec<Value> = sink
        .requests_to("/alerts")
        .iter()
        .flat_map(|r| String::from_utf8_lossy(&r.body).lines().map(String::from).collect::<Vec<_>>())
        .map(|l| serde_json::from_str(&l).expect("an alert line is JSON"))
        .collect();
    let log = vector.log();
    for bad in ["dropping the request", "Events dropped", "Not retriable"] {
        assert!(!log.contains(bad), "{what}: Vector logged {bad:?}:\n{log}");
    }
    eprintln!(
        "{what}: {} events equal to kaudit run (in the same order: {in_order}); {} alerts posted by Envoy, kaudit run raised {}",
        got.len(),
        alerts.len(),
        want.alerts.len()
    );
    assert_eq!(multiset(&alerts), multiset(&want.alerts), "{what}: Envoy's alerts differ from kaudit run's");
}

struct Setup {
    vector_bin: PathBuf,
    dir: Arc<TempDir>,
    pki: Pki,
    sink: Recorder,
    /// The alert webhook over TLS (its certificate names the shipped alert host) -> `sink`.
    webhook: Envoy,
    envoy_port: u16,
    source_port: u16,
}

fn setup(test: &str) -> Option<Setup> {
    let vector_bin = real_hosts::require(&real_hosts::VECTOR, test)?;
    let pki = Pki::new();
    let sink = Recorder::start();
    let webhook = tls_webhook(&pki, &[("alerts", "alerts")], sink.port);
    Some(Setup {
        vector_bin,
        dir: Arc::new(TempDir::new(&format!("vector-{test}"))),
        pki,
        sink,
        webhook,
        envoy_port: free_port(),
        source_port: free_port(),
    })
}

impl Setup {
    fn envoy(&self) -> Envoy {
        let config = envoy_config(&self.pki, self.envoy_port, self.source_port, self.webhook.listener_port("alerts"));
        Envoy::start(&config, Arc::new(TempDir::new("vector-envoy"))).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn lines(input: &[u8]) -> usize {
    input.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count()
}

#[test]
fn the_shipped_vector_config_through_envoy_equals_kaudit_run() {
    let Some(s) = setup("through-envoy") else { return };
    let started = Instant::now();
    let _envoy = s.envoy();
    // The conformance vector of the embedded default (it has a record that is not an audit
    // event), then a realistic stream from kaudit's corpus generator.
    let mut input =
        std::fs::read(repo_root().join("tests/conformance/vectors/seed-default/input.jsonl")).expect("input");
    input.extend_from_slice(&kaudit_testkit::corpus::generate(2_000, 57));
    let want = kaudit_run(&input, None);
    std::fs::write(s.dir.0.join("audit.log"), &input).expect("audit.log");
    let vector = Vector::start(&s.vector_bin, s.dir.clone(), &s.pki, s.envoy_port, s.source_port);
    vector.wait_for_events(want.events.len());
    assert_equal_to_native(&vector, &s.sink, &want, "vector through envoy");
    eprintln!("{} lines in, {:.1} s", lines(&input), started.elapsed().as_secs_f64());
}

#[test]
fn with_envoy_down_vector_retries_and_delivers_everything_once_it_is_up() {
    let Some(s) = setup("envoy-down") else { return };
    let input = kaudit_testkit::corpus::generate(1_500, 58);
    let want = kaudit_run(&input, None);
    std::fs::write(s.dir.0.join("audit.log"), &input).expect("audit.log");
    let vector = Vector::start(&s.vector_bin, s.dir.clone(), &s.pki, s.envoy_port, s.source_port);
    // Envoy is down: the sink's requests fail to connect and are retried.
    let retried = wait_for(60, || {
        let log = vector.log();
        (log.matches("Retrying after error").count() >= 2).then_some(())
    });
    assert!(retried.is_some(), "Vector did not retry:\n{}", vector.log());
    assert!(vector.events().is_empty(), "nothing can come out while Envoy is down");
    let retries = vector.log().matches("Retrying after error").count();
    // With acknowledgements the file source checkpoints only delivered lines: none yet.
    std::thread::sleep(Duration::from_secs(2));
    let before = vector.checkpoint();
    assert!(before.unwrap_or(0) == 0, "the file source checkpointed {before:?} bytes while nothing was delivered");
    let _envoy = s.envoy();
    vector.wait_for_events(want.events.len());
    let size = input.len() as u64;
    let after = wait_for(30, || vector.checkpoint().filter(|&p| p == size));
    assert!(after.is_some(), "after delivery the checkpoint is {:?}, the file has {size} bytes", vector.checkpoint());
    assert_equal_to_native(&vector, &s.sink, &want, "vector after envoy came up");
    eprintln!(
        "envoy down: {retries} retries logged and file checkpoint {before:?} before Envoy started; then all {} \
         events delivered and the checkpoint at the end of the file ({size} bytes)",
        want.events.len()
    );
}

#[test]
fn vector_validate_accepts_the_shipped_config() {
    let Some(bin) = real_hosts::require(&real_hosts::VECTOR, "vector validate") else { return };
    let out = Command::new(bin)
        .args(["validate", "--no-environment"])
        .arg(repo_root().join("plugins/vector/vector.yaml"))
        .output()
        .expect("vector validate");
    assert!(
        out.status.success(),
        "vector validate refused the shipped vector.yaml:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn vector_killed_mid_stream_and_restarted_loses_no_event() {
    let Some(s) = setup("kill9") else { return };
    let _envoy = s.envoy();
    let input = kaudit_testkit::corpus::generate(3_000, 59);
    let want = kaudit_run(&input, None);
    std::fs::write(s.dir.0.join("audit.log"), &input).expect("audit.log");
    let mut vector = Vector::start(&s.vector_bin, s.dir.clone(), &s.pki, s.envoy_port, s.source_port);
    let part = wait_for(TIMEOUT_SECS, || (vector.lines().len() >= want.events.len() / 5).then_some(()));
    assert!(part.is_some(), "nothing came out:\n{}", vector.log());
    vector.child.kill().expect("SIGKILL");
    let _ = vector.child.wait();
    let at_kill = vector.lines().len();
    drop(vector);
    let vector = Vector::start(&s.vector_bin, s.dir.clone(), &s.pki, s.envoy_port, s.source_port);
    let all = wait_for(TIMEOUT_SECS, || {
        let (got, _) = parse_tolerating_torn(&vector.lines());
        let wanted: Vec<Value> = want.events.iter().map(|l| as_event(l)).collect();
        (missing_and_duplicated(&got, &wanted).0 == 0).then_some(())
    });
    std::thread::sleep(Duration::from_millis(2_500));
    let (got, torn) = parse_tolerating_torn(&vector.lines());
    let wanted: Vec<Value> = want.events.iter().map(|l| as_event(l)).collect();
    let (missing, duplicated) = missing_and_duplicated(&got, &wanted);
    assert!(
        all.is_some() && missing == 0,
        "{missing} of {} events lost after the restart:\n{}",
        wanted.len(),
        vector.log()
    );
    assert!(torn.len() <= 1, "more than one torn line: {torn:?}");
    eprintln!(
        "vector kill -9: {} events expected, {at_kill} printed at the kill, {} after the restart: none lost, {duplicated} \
         printed twice, {} torn line(s)",
        wanted.len(),
        got.len(),
        torn.len()
    );
}
