//! `cargo xtask bench-fluent-bit`: what the kaudit filter costs in the real Fluent Bit, next to
//! the Lua filter a Fluent Bit user would write for the same policy. A benchmark, not a test: it
//! prints a table and fails only when a pipeline does not run.
//!
//! One pipeline, `tail` (read from head, exit at end of file; the shipped parser) -> one filter ->
//! `file` (or `null`), run once per filter and input size, round-robin, `--runs` times:
//! - no filter at all: the pass-through baseline;
//! - `plugins/fluent-bit/kaudit-policy.lua`: the seed's policy as a Lua filter (LuaJIT);
//! - a 66-byte module whose filter returns the record it is given ([`ECHO_MODULE`]): what
//!   `filter_wasm` itself costs (msgpack to JSON, the copy into the module, the JSON read back),
//!   the floor under any WASM filter;
//! - the module interpreted (WAMR's fast interpreter), embedded default config and policy only
//!   (`enrichment.enabled: false`, `alerts.enabled: false`);
//! - the same two with `kaudit-fluent-bit.aot` (`cargo xtask build-wasm` writes it).
//!
//! The CPU of a run is Fluent Bit's user + system time, all threads (`/proc/<pid>/stat` of the
//! exited process before it is reaped, in clock ticks). Each filter also runs on an empty file,
//! so the figure per record is the marginal one: ((best CPU on the input - best CPU on the empty
//! file) - the same for the baseline) / input records; start-up (loading the module, compiling the
//! config) is printed apart.
//!
//! Options: `--events N` (default 20,000) events of the test kit's corpus (`kaudit_testkit::corpus`,
//! seed 42: 1-20 KB bodies, 5.5 KB per event on average); `--kube-apiserver`: instead, a real
//! kube-apiserver v1.32's audit log (its audit harness, `run-audit.sh` beside Fluent Bit in
//! `../shared/tools/kubernetes/`, everything at RequestResponse; about 1,200 events of 1.3 KB, run
//! once and kept, repeated to `--events`); `--input FILE`: any audit log; `--runs N` (default 3);
//! `--output file|null`; `--compare MODULE`: also runs another build of the module (interpreted,
//! both configs) in the same round-robin, so before and after compare within one run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{artifacts_dir, cmd, root, shared_tool, target_dir, FLUENT_BIT, KUBE_AUDIT};
use crate::wasm;

/// `(module (memory (export "memory") 2) (func (export "kaudit_filter") (param i32 i32 i32 i32
/// i32 i32) (result i32) local.get 4))`: returns the record, which Fluent Bit hands over
/// NUL-terminated (`flb_wasm_call_function_format_json`, src/wasm/flb_wasm.c, fluent/fluent-bit v5.1.1).
const ECHO_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x0b, 0x01, 0x60, 0x06, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, // type: (6 x i32) -> i32
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x05, 0x03, 0x01, 0x00, 0x02, // memory: 2 pages
    0x07, 0x1a, 0x02, // exports:
    0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, // "memory"
    0x0d, b'k', b'a', b'u', b'd', b'i', b't', b'_', b'f', b'i', b'l', b't', b'e', b'r', 0x00,
    0x00, // "kaudit_filter"
    0x0a, 0x06, 0x01, 0x04, 0x00, 0x20, 0x04, 0x0b, // code: local.get 4
];

const POLICY_ONLY: &str = "enrichment:\n  enabled: false\nalerts:\n  enabled: false\n";

struct Options {
    events: usize,
    runs: usize,
    input: Option<PathBuf>,
    kube_apiserver: bool,
    null_output: bool,
    compare: Option<PathBuf>,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o =
        Options { events: 20_000, runs: 3, input: None, kube_apiserver: false, null_output: false, compare: None };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--events" => o.events = value()?.parse().map_err(|e| format!("--events: {e}"))?,
            "--runs" => o.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--input" => o.input = Some(PathBuf::from(value()?)),
            "--kube-apiserver" => o.kube_apiserver = true,
            "--compare" => o.compare = Some(PathBuf::from(value()?)),
            "--output" => {
                o.null_output = match value()?.as_str() {
                    "file" => false,
                    "null" => true,
                    other => return Err(format!("--output: {other:?} is neither file nor null")),
                }
            }
            other => {
                return Err(format!(
                    "bench-fluent-bit: unknown argument {other:?} \
                     (--events N, --kube-apiserver | --input FILE, --runs N, --output file|null, --compare MODULE)"
                ))
            }
        }
    }
    if o.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(o)
}

/// One filter under test.
struct Variant {
    name: String,
    /// The `filters:` entry (YAML, indented for the pipeline), or empty for none.
    filter: String,
    /// `kaudit.yaml` in the run's folder (the module's relative config lookup).
    config: Option<&'static str>,
}

fn wasm_filter(module: &Path) -> String {
    format!(
        "  filters:\n    - name: wasm\n      match: kube.audit\n      wasm_path: {}\n      function_name: kaudit_filter\n      \
         event_format: json\n      accessible_paths: .\n      wasm_heap_size: 8M\n      wasm_stack_size: 256K\n",
        module.display()
    )
}

fn variants(echo: &Path, aot: Option<&Path>, compare: Option<&Path>) -> Vec<Variant> {
    let wasm = artifacts_dir().join("kaudit-fluent-bit.wasm");
    let lua = root().join("plugins/fluent-bit/kaudit-policy.lua");
    let mut v = vec![
        Variant { name: "pass-through (no filter)".into(), filter: String::new(), config: None },
        Variant {
            name: "Lua: the seed's policy (kaudit-policy.lua)".into(),
            filter: format!(
                "  filters:\n    - name: lua\n      match: kube.audit\n      script: {}\n      call: kaudit_policy\n",
                lua.display()
            ),
            config: None,
        },
        Variant { name: "WASM echo module (filter_wasm's own cost)".into(), filter: wasm_filter(echo), config: None },
        Variant { name: "kaudit interpreted, default config".into(), filter: wasm_filter(&wasm), config: None },
        Variant {
            name: "kaudit interpreted, policy only".into(),
            filter: wasm_filter(&wasm),
            config: Some(POLICY_ONLY),
        },
    ];
    if let Some(other) = compare {
        let file = other.file_name().map_or_else(|| other.display().to_string(), |f| f.to_string_lossy().into_owned());
        for (config, label) in [(None, "default config"), (Some(POLICY_ONLY), "policy only")] {
            v.push(Variant { name: format!("{file} interpreted, {label}"), filter: wasm_filter(other), config });
        }
    }
    if let Some(aot) = aot {
        v.push(Variant { name: "kaudit AOT, default config".into(), filter: wasm_filter(aot), config: None });
        v.push(Variant { name: "kaudit AOT, policy only".into(), filter: wasm_filter(aot), config: Some(POLICY_ONLY) });
    }
    v
}

fn pipeline(input: &Path, filter: &str, out: &Path, null_output: bool) -> String {
    let output = if null_output {
        "    - name: 'null'\n      match: '*'\n".to_string()
    } else {
        format!(
            "    - name: file\n      match: '*'\n      path: {}\n      file: out.log\n      format: plain\n",
            out.display()
        )
    };
    // The shipped tail and parser settings (plugins/fluent-bit/fluent-bit.yaml), reading the
    // whole file once; grace 1 s so a run does not idle 5 s at exit (idle costs no CPU anyway).
    format!(
        r#"service:
  flush: 1
  grace: 1
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
      path: {input}
      parser: kaudit-audit-json
      read_from_head: true
      exit_on_eof: true
      buffer_chunk_size: 256K
      buffer_max_size: 4M
      skip_long_lines: on
{filter}  outputs:
{output}"#,
        input = input.display()
    )
}

/// The audit log of one run of the kube-apiserver audit harness (everything logged at
/// RequestResponse: kaudit's policy decides), made once and kept in `dir`.
fn kube_apiserver_log(dir: &Path) -> Result<Vec<u8>, String> {
    let kept = dir.join("kube-apiserver.log");
    if let Ok(log) = std::fs::read(&kept) {
        return Ok(log);
    }
    let harness = shared_tool(&KUBE_AUDIT).ok_or("no kube-apiserver audit harness ($KAUDIT_KUBE_RUN_AUDIT, PATH kube-run-audit, ../shared/tools/kubernetes/run-audit.sh)")?;
    let run = dir.join("kube-run");
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
    let policy = run.join("policy.yaml");
    std::fs::write(&policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: RequestResponse\n")
        .map_err(|e| e.to_string())?;
    crate::util::run(Command::new("bash").arg(&harness).arg(&policy).arg(run.join("out")))?;
    let log = std::fs::read(run.join("out/audit.log")).map_err(|e| format!("the harness's audit.log: {e}"))?;
    std::fs::write(&kept, &log).map_err(|e| e.to_string())?;
    Ok(log)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    crate::util::output("getconf", &["CLK_TCK"]).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0)
}

/// Waits for the child and returns its CPU seconds (user + system, all threads), read from
/// `/proc/<pid>/stat` while it is a zombie (std's `wait` reaps it and keeps no rusage).
fn wait_cpu(child: &mut Child, ticks: f64) -> Result<f64, String> {
    let stat_path = format!("/proc/{}/stat", child.id());
    let mut cpu = None;
    while let Ok(stat) = std::fs::read_to_string(&stat_path) {
        // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        if fields.first() == Some(&"Z") {
            let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
            cpu = Some((tick(11) + tick(12)) / ticks);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("fluent-bit exited with {status}"));
    }
    cpu.filter(|c| c.is_finite()).ok_or_else(|| "could not read the CPU time of fluent-bit".to_string())
}

struct Measured {
    cpu: f64,
    records_out: usize,
}

fn run_once(
    fluent_bit: &Path,
    dir: &Path,
    variant: &Variant,
    input: &Path,
    opts: &Options,
    ticks: f64,
) -> Result<Measured, String> {
    let _ = std::fs::remove_dir_all(dir);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::write(dir.join("fluent-bit.yaml"), pipeline(input, &variant.filter, &out, opts.null_output))
        .map_err(|e| e.to_string())?;
    if let Some(config) = variant.config {
        std::fs::write(dir.join("kaudit.yaml"), config).map_err(|e| e.to_string())?;
    }
    let log_path = dir.join("fluent-bit.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(fluent_bit)
        .current_dir(dir)
        .args(["-c", "fluent-bit.yaml"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", fluent_bit.display()))?;
    let cpu = wait_cpu(&mut child, ticks);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let cpu = cpu.map_err(|e| format!("{}: {e}; log {}:\n{log}", variant.name, log_path.display()))?;
    if let Some(bad) = log.lines().find(|l| l.contains("[error]") || l.contains("Got exception")) {
        return Err(format!("{}: Fluent Bit logged an error: {bad} (log {})", variant.name, log_path.display()));
    }
    let records_out = std::fs::read_to_string(out.join("out.log")).map(|t| t.lines().count()).unwrap_or(0);
    Ok(Measured { cpu, records_out })
}

pub fn main(args: &[String]) -> Result<(), String> {
    let opts = options(args)?;
    let fluent_bit = shared_tool(&FLUENT_BIT).ok_or(
        "bench-fluent-bit: no Fluent Bit ($FLUENT_BIT, PATH, ../shared/tools/fluent-bit/fluent-bit; \
         plugins/fluent-bit/README.md says which)",
    )?;
    wasm::build(&["kaudit-fluent-bit.wasm"])?;
    let aot = wasm::aot()?;
    if aot.is_none() {
        eprintln!("xtask: no flb-wamrc: the AOT rows are left out");
    }
    let dir = target_dir().join("tmp").join("bench-fluent-bit");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (input, described) = match &opts.input {
        Some(file) => {
            let file = file.canonicalize().map_err(|e| format!("{}: {e}", file.display()))?;
            let described = format!("{}", file.display());
            (file, described)
        }
        None if opts.kube_apiserver => {
            let log = kube_apiserver_log(&dir)?;
            let lines: Vec<&[u8]> = log.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
            let mut repeated = Vec::new();
            for line in lines.iter().cycle().take(opts.events.max(lines.len())) {
                repeated.extend_from_slice(line);
                repeated.push(b'\n');
            }
            let file = dir.join("kube-apiserver-repeated.log");
            std::fs::write(&file, repeated).map_err(|e| format!("{}: {e}", file.display()))?;
            (file, format!("a kube-apiserver v1.32 audit log ({} events, repeated)", lines.len()))
        }
        None => {
            let file = dir.join("corpus.log");
            let out = cmd("cargo")
                .args(["run", "--quiet", "-p", "kaudit-testkit", "--bin", "kaudit-corpus", "--"])
                .arg(opts.events.to_string())
                .arg("42")
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cargo run kaudit-corpus: {e}"))?;
            if !out.status.success() {
                return Err("cargo run -p kaudit-testkit --bin kaudit-corpus failed".into());
            }
            std::fs::write(&file, &out.stdout).map_err(|e| format!("{}: {e}", file.display()))?;
            (file, "the test kit's corpus (kaudit_testkit::corpus::generate, seed 42)".to_string())
        }
    };
    let bytes = std::fs::read(&input).map_err(|e| format!("{}: {e}", input.display()))?;
    let records = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    if records == 0 {
        return Err(format!("{}: no records", input.display()));
    }
    let empty = dir.join("empty.log");
    std::fs::write(&empty, b"").map_err(|e| e.to_string())?;
    let ticks = clock_ticks();
    let version = Command::new(&fluent_bit)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default();
    eprintln!(
        "xtask: {version} ({}): tail -> filter -> {}, {records} records of {described} ({:.1} MB, mean {} bytes), best of {}",
        fluent_bit.display(),
        if opts.null_output { "null" } else { "file" },
        bytes.len() as f64 / 1e6,
        bytes.len() / records,
        opts.runs
    );
    let echo = dir.join("echo.wasm");
    std::fs::write(&echo, ECHO_MODULE).map_err(|e| format!("{}: {e}", echo.display()))?;
    let variants = variants(&echo, aot.as_deref(), opts.compare.as_deref());
    // best[v] = (CPU on the input, CPU on the empty file, records out)
    let mut best = vec![(f64::INFINITY, f64::INFINITY, 0usize); variants.len()];
    for run in 0..opts.runs {
        for (i, v) in variants.iter().enumerate() {
            let run_dir = dir.join(format!("run-{i}"));
            let full = run_once(&fluent_bit, &run_dir, v, &input, &opts, ticks)?;
            let idle = run_once(&fluent_bit, &run_dir, v, &empty, &opts, ticks)?;
            eprintln!(
                "xtask: run {}/{}: {:<45} {:>7.2} s CPU ({:.2} s on an empty file), {} records out",
                run + 1,
                opts.runs,
                v.name,
                full.cpu,
                idle.cpu,
                full.records_out
            );
            let b = &mut best[i];
            b.0 = b.0.min(full.cpu);
            b.1 = b.1.min(idle.cpu);
            b.2 = full.records_out;
        }
    }
    if !opts.null_output && best[0].2 != records {
        return Err(format!("the pass-through pipeline wrote {} records of {records}", best[0].2));
    }
    let base = best[0].0 - best[0].1;
    println!();
    println!("| filter | records out | CPU s, best of {} | start-up CPU ms | µs/record over pass-through |", opts.runs);
    println!("|---|---|---|---|---|");
    for (v, (full, idle, out)) in variants.iter().zip(&best) {
        let marginal = ((full - idle) - base) / records as f64 * 1e6;
        let out = if opts.null_output { "-".to_string() } else { out.to_string() };
        println!("| {} | {out} | {full:.2} | {:.0} | {marginal:.1} |", v.name, idle * 1e3);
    }
    println!();
    println!("CPU: user + system of the whole Fluent Bit process, {ticks} ticks/s; start-up: the same pipeline on an empty file.");
    Ok(())
}
