//! One real Fluent Bit on the shipped plugins/fluent-bit/fluent-bit.yaml, and `check_stream`,
//! which streams a log through it and compares the result with `kaudit run`: shared by
//! real_fluent_bit.rs and deploy.rs (which see it as `mod fluent_bit_run;`, beside `mod support;`).
//! How the config is rendered and why: real_fluent_bit.rs's module doc.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::pki::{tls_webhook, Pki};
use crate::support::real_hosts::{self, kaudit_run as native, multiset, repo_root};
use crate::support::{wait_for, Envoy, Recorder, TempDir};

pub const ALERT_URI: &str = "/kaudit/alerts";
/// The webhook's name: resolves to loopback and is in the test certificate (`envoy.crt`).
pub const ALERT_HOST: &str = "localhost";
/// How long a stream may take to come out (interpreted WASM: ~0.2-1 ms per record here).
pub const STREAM_TIMEOUT_SECS: u64 = 180;

pub fn fluent_bit(test: &str) -> Option<PathBuf> {
    real_hosts::require(&real_hosts::FLUENT_BIT, test)
}

pub fn artifact() -> PathBuf {
    let dir = std::env::var_os("KAUDIT_ARTIFACTS")
        .expect("KAUDIT_ARTIFACTS is not set: run through `cargo xtask test` (it builds kaudit-fluent-bit.wasm)");
    let wasm = PathBuf::from(dir).join("kaudit-fluent-bit.wasm");
    assert!(wasm.is_file(), "{} is missing: run `cargo xtask build-wasm`", wasm.display());
    wasm
}

/// The shipped config with paths replaced (each must still be in the shipped file) and any
/// `extra` `(from, to)` replacements a test names and justifies.
/// `etc`: keep `accessible_paths: /etc/kaudit` (the run sees its own /etc/kaudit, see
/// [`Run::with_etc_kaudit`]); otherwise `accessible_paths: .` and the run's folder.
pub fn render_config(dir: &Path, pki: &Pki, extra: &[(&str, &str)], etc: bool) -> String {
    let shipped = std::fs::read_to_string(repo_root().join("plugins/fluent-bit/fluent-bit.yaml")).expect("shipped");
    let d = dir.display();
    let wasm = artifact();
    let subs: Vec<(&str, String)> = vec![
        ("/var/log/kubernetes/kubernetes.audit", format!("{d}/in.log")),
        ("/var/lib/fluent-bit/storage", format!("{d}/storage")),
        ("/var/lib/fluent-bit/kaudit-tail.db", format!("{d}/tail.db")),
        ("/usr/lib/kaudit/kaudit-fluent-bit.wasm", wasm.display().to_string()),
        ("path: /var/log/kaudit", format!("path: {d}/out")),
        ("/etc/kaudit/tls/alerts-ca.crt", pki.path("server-ca.crt").display().to_string()),
    ];
    let subs: Vec<(&str, String)> = if etc {
        subs
    } else {
        subs.into_iter().chain([("accessible_paths: /etc/kaudit", "accessible_paths: .".to_string())]).collect()
    };
    let mut text = shipped;
    for (from, to) in subs.iter().map(|(f, t)| (*f, t.as_str())).chain(extra.iter().copied()) {
        assert!(text.contains(from), "the shipped fluent-bit.yaml no longer contains {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// One Fluent Bit on the shipped config in its own folder, with a recording alert webhook.
pub struct Run {
    pub bin: PathBuf,
    pub dir: TempDir,
    pub receiver: Recorder,
    /// The alert webhook over TLS (a certificate for `localhost` from `pki`'s server CA) in
    /// front of `receiver`: the shipped alert route verifies the certificate and the name.
    pub webhook: Envoy,
    pub _pki: Pki,
    /// Fluent Bit runs in a private mount namespace whose /etc is the host's with this run's
    /// `etc/kaudit` laid over it (overlayfs): the shipped `/etc/kaudit` path, unchanged.
    pub etc_overlay: bool,
    pub child: Option<Child>,
    pub starts: usize,
}

impl Run {
    /// A run whose folder holds `kaudit.yaml` (when given) and the files it names.
    pub fn new(bin: PathBuf, tag: &str, config: Option<&str>, extra: &[(&str, &str)]) -> Run {
        Run::build(bin, tag, config, extra, false)
    }

    /// A run with `config` as /etc/kaudit/kaudit.yaml, as shipped (`accessible_paths:
    /// /etc/kaudit`), seen only by this Fluent Bit: a private mount namespace lays the run's
    /// `etc/kaudit` over the host's /etc. `None` (after saying so) where the machine does not
    /// allow that (it needs root: `unshare -m` and an overlay mount).
    pub fn with_etc_kaudit(bin: PathBuf, tag: &str, config: &str) -> Option<Run> {
        let run = Run::build(bin, tag, None, &[], true);
        let upper = run.path("etc/upper/kaudit");
        std::fs::create_dir_all(&upper).expect("upper dir");
        std::fs::create_dir_all(run.path("etc/work")).expect("work dir");
        std::fs::write(upper.join("kaudit.yaml"), config).expect("kaudit.yaml");
        let probe = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!("{} && test -f /etc/kaudit/kaudit.yaml", run.overlay_mount()))
            .output();
        if probe.as_ref().is_ok_and(|o| o.status.success()) {
            return Some(run);
        }
        eprintln!(
            "SKIPPED {tag}: no private /etc/kaudit on this machine (unshare -m + overlay mount: {})",
            probe.map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string()).unwrap_or_else(|e| e.to_string())
        );
        None
    }

    pub fn overlay_mount(&self) -> String {
        format!(
            "mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc",
            self.path("etc/upper").display(),
            self.path("etc/work").display()
        )
    }

    pub fn build(bin: PathBuf, tag: &str, config: Option<&str>, extra: &[(&str, &str)], etc: bool) -> Run {
        let dir = TempDir::new(&format!("fb-{tag}"));
        std::fs::create_dir_all(dir.0.join("out")).expect("out dir");
        std::fs::write(dir.0.join("in.log"), b"").expect("in.log");
        if let Some(text) = config {
            std::fs::write(dir.0.join("kaudit.yaml"), text).expect("kaudit.yaml");
        }
        let pki = Pki::new();
        std::fs::write(dir.0.join("fluent-bit.yaml"), render_config(&dir.0, &pki, extra, etc)).expect("config");
        let receiver = Recorder::start();
        let webhook = tls_webhook(&pki, &[("alerts", "envoy")], receiver.port);
        Run { bin, dir, receiver, webhook, _pki: pki, etc_overlay: etc, child: None, starts: 0 }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    pub fn log(&self) -> String {
        let mut all = String::new();
        for n in 0..self.starts {
            all.push_str(&std::fs::read_to_string(self.path(&format!("fluent-bit.{n}.log"))).unwrap_or_default());
        }
        all
    }

    pub fn spawn(&mut self) -> Child {
        let log = std::fs::File::create(self.path(&format!("fluent-bit.{}.log", self.starts))).expect("log");
        self.starts += 1;
        let mut c = if self.etc_overlay {
            // unshare and sh exec in turn: the child's pid is Fluent Bit's.
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(format!("{} && exec \"$0\" \"$@\"", self.overlay_mount()))
                .arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        c.arg("-c")
            .arg(self.path("fluent-bit.yaml"))
            .current_dir(&self.dir.0)
            .env("KAUDIT_ALERT_HOST", ALERT_HOST)
            .env("KAUDIT_ALERT_PORT", self.webhook.listener_port("alerts").to_string())
            .env("KAUDIT_ALERT_URI", ALERT_URI)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.bin.display()))
    }

    /// Starts Fluent Bit and waits until `tail` watches the input file.
    pub fn start(&mut self) {
        let mut child = self.spawn();
        let n = self.starts - 1;
        let watching = format!("name={}", self.path("in.log").display());
        let ready = wait_for(60, || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("fluent-bit exited with {status} during start-up:\n{}", self.log());
            }
            let log = std::fs::read_to_string(self.path(&format!("fluent-bit.{n}.log"))).unwrap_or_default();
            log.contains(&watching).then_some(())
        });
        if ready.is_none() {
            let _ = child.kill();
            panic!("fluent-bit did not start watching in.log within 60 s:\n{}", self.log());
        }
        self.child = Some(child);
    }

    /// Starts Fluent Bit expecting it to refuse to start; its exit status.
    pub fn start_expecting_failure(&mut self) -> ExitStatus {
        let mut child = self.spawn();
        let status = wait_for(60, || child.try_wait().ok().flatten());
        match status {
            Some(s) => s,
            None => {
                let _ = child.kill();
                panic!("fluent-bit kept running (60 s):\n{}", self.log());
            }
        }
    }

    pub fn append(&self, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new().append(true).open(self.path("in.log")).expect("in.log");
        f.write_all(bytes).expect("append");
    }

    /// Appends `lines` in `batch`-line writes, `pause` apart (a log growing as an apiserver writes it).
    pub fn stream(&self, lines: &[&[u8]], batch: usize, pause: Duration) {
        for chunk in lines.chunks(batch.max(1)) {
            let mut buf = Vec::new();
            for l in chunk {
                buf.extend_from_slice(l);
                buf.push(b'\n');
            }
            self.append(&buf);
            std::thread::sleep(pause);
        }
    }

    pub fn output(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("out/audit-filtered.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Every alert the webhook received, in order of arrival.
    pub fn alerts(&self) -> Vec<Value> {
        let mut all = Vec::new();
        for r in self.receiver.requests_to(ALERT_URI) {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
                panic!("the alert webhook got a body that is not JSON ({e}): {}", String::from_utf8_lossy(&r.body))
            });
            for record in body.as_array().expect("format json: the body is an array of records") {
                let obj = record.as_object().expect("a record is an object");
                assert_eq!(
                    obj.keys().collect::<Vec<_>>(),
                    ["kaudit_alerts"],
                    "the alert route sends kaudit_alerts only"
                );
                all.extend(obj["kaudit_alerts"].as_array().expect("kaudit_alerts is an array").iter().cloned());
            }
        }
        all
    }

    /// Waits until the audit log has `records` lines and the webhook `alerts` alerts.
    pub fn wait_for_output(&self, records: usize, alerts: usize) {
        let done = wait_for(STREAM_TIMEOUT_SECS, || {
            (self.output().len() >= records && self.alerts().len() >= alerts).then_some(())
        });
        assert!(
            done.is_some(),
            "after {STREAM_TIMEOUT_SECS} s: {} of {records} records, {} of {alerts} alerts\n{}",
            self.output().len(),
            self.alerts().len(),
            tail(&self.log(), 40)
        );
    }

    /// Fluent Bit's resident memory in KiB (`VmRSS` in /proc), whole process.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([sig, &pid]).status().expect("kill");
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// SIGTERM and wait (Fluent Bit's grace period is 5 s); the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("-TERM");
        let mut child = self.child.take().expect("running");
        let status = wait_for(30, || child.try_wait().ok().flatten());
        status.unwrap_or_else(|| {
            let _ = child.kill();
            panic!("fluent-bit did not stop within 30 s of SIGTERM:\n{}", tail(&self.log(), 40))
        })
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- fluent-bit log ({}) ---\n{}", self.dir.0.display(), tail(&self.log(), 60));
        }
    }
}

/// Files below `dir` (Fluent Bit's filesystem storage: one file per chunk).
pub fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { files_under(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A native output line as the record Fluent Bit holds for it: a JSON object as itself, any
/// other line as `tail` keeps a line its JSON parser refuses, `{"log": line}`.
pub fn as_record(line: &str) -> Value {
    match serde_json::from_str::<Value>(line) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "log": line }),
    }
}

pub fn parse_output(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("the audit log has a line that is not JSON ({e}): {l}"))
        })
        .collect()
}

/// The audit log holds no alert keys and no `kaudit_dropped` carrier.
pub fn assert_clean(records: &[Value], what: &str) {
    for r in records {
        for key in ["kaudit_alerts", "kaudit_alert_count", "kaudit_dropped"] {
            assert!(r.get(key).is_none(), "{what}: {key} reached the audit log: {r}");
        }
        let route_key = r.as_object().and_then(|o| o.keys().find(|k| k.starts_with("kaudit_route_")));
        assert!(route_key.is_none(), "{what}: {route_key:?} reached the audit log");
    }
}

/// Record for record, in order, as JSON values.
pub fn assert_same_records(got: &[Value], native: &[String], what: &str) {
    let want: Vec<Value> = native.iter().map(|l| as_record(l)).collect();
    assert_eq!(got.len(), want.len(), "{what}: {} records from Fluent Bit, {} from kaudit run", got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{what}: record {i} differs from kaudit run");
    }
}

/// The same alerts, each once (compared as a multiset: the webhook's batches may interleave).
pub fn assert_same_alerts(got: &[Value], native: &[Value], what: &str) {
    assert_eq!(got.len(), native.len(), "{what}: {} alerts delivered, kaudit run raised {}", got.len(), native.len());
    assert_eq!(multiset(got), multiset(native), "{what}: the delivered alerts differ from kaudit run's");
}

/// Runs `input` through the shipped config (and `config` as kaudit.yaml) and checks it against
/// `kaudit run`; returns how many records and alerts came out.
pub fn check_stream(bin: &Path, tag: &str, input: &[u8], config: Option<&str>, batch: usize) -> (usize, usize) {
    check_stream_with(bin, tag, input, config, batch, &[])
}

/// [`check_stream`] with `extra` replacements in the shipped config (see [`render_config`]).
pub fn check_stream_with(
    bin: &Path,
    tag: &str,
    input: &[u8],
    config: Option<&str>,
    batch: usize,
    extra: &[(&str, &str)],
) -> (usize, usize) {
    let started = Instant::now();
    let want = native(input, config);
    // The carriers of dropped events with alerts must exist for the check below to mean anything
    // on streams that have them; their count is the alerts of events the policy dropped.
    let mut run = Run::new(bin.to_path_buf(), tag, config, extra);
    run.start();
    let rss_start = run.rss_kib();
    let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    run.stream(&lines, batch, Duration::from_millis(20));
    run.wait_for_output(want.events.len(), want.alerts.len());
    let rss_end = run.rss_kib();
    // Nothing more arrives late (one more flush interval).
    std::thread::sleep(Duration::from_millis(1_500));
    let status = run.stop();
    assert!(status.success(), "{tag}: fluent-bit exited with {status}");
    let got = parse_output(&run.output());
    assert_clean(&got, tag);
    assert_same_records(&got, &want.events, tag);
    assert_same_alerts(&run.alerts(), &want.alerts, tag);
    let log = run.log();
    assert!(!log.contains("Got exception running wasm code"), "{tag}: the module trapped:\n{}", tail(&log, 40));
    assert!(!log.contains("[error]"), "{tag}: Fluent Bit logged errors:\n{}", tail(&log, 40));
    eprintln!(
        "{tag}: {} lines in, {} records and {} alerts out, equal to kaudit run ({:.1} s); Fluent Bit RSS {} KiB \
         after start-up, {} KiB after the stream",
        lines.len(),
        got.len(),
        want.alerts.len(),
        started.elapsed().as_secs_f64(),
        rss_start.unwrap_or(0),
        rss_end.unwrap_or(0)
    );
    (got.len(), want.alerts.len())
}
