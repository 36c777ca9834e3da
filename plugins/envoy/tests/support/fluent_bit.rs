//! A real Fluent Bit process for the two-phase aggregation tests (docs/SCALING.md): one
//! instance in its own temp folder, started on a shipped config with paths and ports
//! substituted, killed with SIGKILL and restarted like an agent or the aggregator.
//! Used by plugins/fluent-bit/testhost/tests/real_fluent_bit_aggregate.rs (Fluent Bit agents)
//! and plugins/envoy/tests/aggregate.rs (Envoy replicas), which share one aggregator config.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::collections::BTreeMap;

use serde_json::Value;

use super::real_hosts::{multiset, repo_root};
use super::{wait_for, Recorder, TempDir};

/// The Fluent Bit module (`kaudit-fluent-bit.wasm`, collected by `cargo xtask build-wasm`).
pub fn module() -> PathBuf {
    let dir = std::env::var_os("KAUDIT_ARTIFACTS")
        .expect("KAUDIT_ARTIFACTS is not set: run through `cargo xtask test` (it builds kaudit-fluent-bit.wasm)");
    let wasm = PathBuf::from(dir).join("kaudit-fluent-bit.wasm");
    assert!(wasm.is_file(), "{} is missing: run `cargo xtask build-wasm`", wasm.display());
    wasm
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A shipped file with `subs` applied (each must still be in it).
pub fn render(shipped: &str, subs: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(repo_root().join("plugins/fluent-bit").join(shipped)).expect("shipped");
    for (from, to) in subs {
        assert!(text.contains(from), "the shipped {shipped} no longer contains {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// One Fluent Bit in its own folder (config `fluent-bit.yaml` and `kaudit.yaml` there).
pub struct Fb {
    bin: PathBuf,
    pub dir: TempDir,
    env: Vec<(&'static str, String)>,
    pub child: Option<Child>,
    /// How many times it was started.
    pub starts: usize,
}

impl Fb {
    pub fn new(bin: &Path, tag: &str, config: String, kaudit: String, env: Vec<(&'static str, String)>) -> Fb {
        let dir = TempDir::new(&format!("fb-agg-{tag}"));
        std::fs::create_dir_all(dir.0.join("out")).expect("out");
        std::fs::write(dir.0.join("in.log"), b"").expect("in.log");
        let config = config.replace("@DIR@", &dir.0.display().to_string());
        std::fs::write(dir.0.join("fluent-bit.yaml"), config).expect("config");
        std::fs::write(dir.0.join("kaudit.yaml"), kaudit).expect("kaudit.yaml");
        Fb { bin: bin.to_path_buf(), dir, env, child: None, starts: 0 }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    pub fn log(&self) -> String {
        (0..self.starts)
            .map(|n| std::fs::read_to_string(self.path(&format!("fluent-bit.{n}.log"))).unwrap_or_default())
            .collect()
    }

    /// Starts it and waits for `ready` in its log.
    pub fn start(&mut self, ready: &str) {
        let log = std::fs::File::create(self.path(&format!("fluent-bit.{}.log", self.starts))).expect("log");
        let n = self.starts;
        self.starts += 1;
        let mut c = Command::new(&self.bin);
        c.arg("-c").arg(self.path("fluent-bit.yaml")).current_dir(&self.dir.0);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let mut child = c
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.bin.display()));
        let up = wait_for(60, || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("fluent-bit exited with {status} during start-up:\n{}", self.log());
            }
            let log = std::fs::read_to_string(self.path(&format!("fluent-bit.{n}.log"))).unwrap_or_default();
            log.contains(ready).then_some(())
        });
        if up.is_none() {
            let _ = child.kill();
            panic!("fluent-bit did not log {ready:?} within 60 s:\n{}", self.log());
        }
        self.child = Some(child);
    }

    pub fn append(&self, lines: &[&[u8]]) {
        let mut buf = Vec::new();
        for l in lines {
            buf.extend_from_slice(l);
            buf.push(b'\n');
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(self.path("in.log")).expect("in.log");
        f.write_all(&buf).expect("append");
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
}

impl Drop for Fb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
            eprintln!("--- fluent-bit log ({}) ---\n{}", self.dir.0.display(), tail.join("\n"));
        }
    }
}

/// The `stageTimestamp` of an event line, in microseconds.
pub fn stage_time(line: &[u8]) -> i64 {
    let v: Value = serde_json::from_slice(line).expect("event");
    kaudit::parse_micros(v["stageTimestamp"].as_str().expect("stageTimestamp")).expect("time")
}

/// Alerts counted per rule (each alert by its JSON text).
pub fn by_rule(alerts: &[Value]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for a in alerts {
        m.entry(a["rule"].as_str().unwrap_or("?").to_string()).or_default().push(a.clone());
    }
    m.into_iter().map(|(k, v)| (k, multiset(&v))).collect()
}

/// Every alert the aggregator's `http` output (fluent-bit-aggregator.yaml, `format: json`)
/// posted to the webhook under `uri`, in order of arrival.
pub fn alerts_received(receiver: &Recorder, uri: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for r in receiver.requests_to(uri) {
        let body: Value = serde_json::from_slice(&r.body).expect("a JSON body");
        for record in body.as_array().expect("format json: an array of records") {
            let obj = record.as_object().expect("a record is an object");
            assert_eq!(obj.keys().collect::<Vec<_>>(), ["kaudit_alerts"], "the alert route sends kaudit_alerts only");
            all.extend(obj["kaudit_alerts"].as_array().expect("kaudit_alerts").iter().cloned());
        }
    }
    all
}

/// Waits (up to 120 s, then two more flush intervals) for the aggregator's alerts at `uri` and
/// checks they are `want` (what `kaudit run` raises on the whole stream), rule by rule and count
/// by count; panics with what is missing or extra and the aggregator's log. Returns them.
pub fn wait_for_the_same_alerts(receiver: &Recorder, uri: &str, want: &[Value], aggregator: &Fb) -> Vec<Value> {
    let done = wait_for(120, || (alerts_received(receiver, uri).len() >= want.len()).then_some(()));
    // Nothing more arrives late (two more flush intervals).
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let got = alerts_received(receiver, uri);
    assert!(done.is_some(), "after 120 s: {} of {} alerts\n{}", got.len(), want.len(), aggregator.log());
    if by_rule(&got) != by_rule(want) {
        let (have, wanted) = (multiset(&got), multiset(want));
        let missing: Vec<&String> = wanted.keys().filter(|k| have.get(*k) < wanted.get(*k)).collect();
        let extra: Vec<&String> = have.keys().filter(|k| have.get(*k) > wanted.get(*k)).collect();
        panic!(
            "the aggregator's alerts differ from kaudit run's:\nmissing or fewer: {missing:#?}\nextra or more: {extra:#?}\n{}",
            aggregator.log()
        );
    }
    got
}
