//! `cargo xtask fuzz [seconds]` and the CI smoke run: the cargo-fuzz (libFuzzer) targets in
//! `fuzz/`, seeded from the real data in `tests/`.
//!
//! * [`smoke`]: every target for [`SMOKE_SECONDS`] (CI). Fails on any crash, leak or timeout.
//! * [`run`] / [`run_targets`] / [`main`] (`cargo xtask fuzz [seconds [target...]]`): long runs;
//!   figures go to docs/RELIABILITY.md.
//! * [`replay_wasm`]: the `fluent_bit` corpus through the real .wasm (Fluent Bit test host).
//!
//! cargo-fuzz needs nightly-only rustc flags (`-Zsanitizer=address`); the pinned stable
//! toolchain accepts them with `RUSTC_BOOTSTRAP=1`, so no nightly is installed. The corpora live
//! in `fuzz/corpus/<target>/` (not committed): each run first copies the seeds in (idempotent),
//! then libFuzzer adds what it finds. A crash leaves its input in `fuzz/artifacts/<target>/`;
//! copy it to `fuzz/regressions/<target>/` so `tests/fuzz_regressions.rs` replays it on stable.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{cmd, have, output, root, run as run_cmd, target_dir};

/// Seconds per target in the CI smoke run.
pub const SMOKE_SECONDS: u64 = 20;

/// Every target, with its dictionary (fuzz/dicts) and its largest input: streams and batches
/// are capped at 64 KiB (about a hundred events: enough for every framing, fast enough to run
/// thousands of times), the rest fit the largest seed (the Falco rules file).
pub const TARGETS: &[(&str, &str, usize)] = &[
    ("pipeline_record", "json.dict", 65536),
    ("pipeline_stream", "json.dict", 65536),
    ("pipeline_batch", "json.dict", 65536),
    ("policy_load", "yaml.dict", 131072),
    ("query", "query.dict", 65536),
    ("config_load", "yaml.dict", 131072),
    ("rule_pack", "yaml.dict", 131072),
    ("fluent_bit", "json.dict", 65536),
    ("envoy_batch", "json.dict", 65536),
    ("envoy_settings", "yaml.dict", 131072),
];

/// `cargo xtask fuzz [seconds [target...]]`: every target (or the named ones) for `seconds`
/// each, [`SMOKE_SECONDS`] when not given.
pub fn main(args: &[String]) -> Result<(), String> {
    let seconds = match args.first() {
        Some(s) => s.parse::<u64>().map_err(|e| format!("fuzz: {s:?} is not a number of seconds: {e}"))?,
        None => SMOKE_SECONDS,
    };
    let only: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    run_targets(seconds, &only)
}

/// The `fluent_bit` corpus (seeds and everything the fuzzer found) through the real
/// kaudit-fluent-bit.wasm in the Fluent Bit test host, compared with the native adapter
/// (fuzz/replay/fluent_bit_wasm.rs). Expects `wasm::build_all()` to have run.
pub fn replay_wasm() -> Result<(), String> {
    seed()?;
    let corpus = root().join("fuzz/corpus/fluent_bit");
    // A debug build, never in the shared target dir: the plugins are cdylibs, whose rlibs carry
    // no hash in their names, so this workspace and the root one would overwrite each other's
    // builds of them there.
    let mut c = cmd("cargo");
    c.current_dir(root().join("fuzz")).env("CARGO_TARGET_DIR", fuzz_target_dir());
    c.args(["run", "--features", "wasm", "--bin", "replay_fluent_bit_wasm", "--"]).arg(&corpus);
    run_cmd(&mut c)
}

/// The CI budget: every target for [`SMOKE_SECONDS`].
pub fn smoke() -> Result<(), String> {
    run(SMOKE_SECONDS)
}

/// Runs every target for `seconds` (wall time) and prints one line per target:
/// executions, wall time, corpus size. Fails if a target crashed.
pub fn run(seconds: u64) -> Result<(), String> {
    run_targets(seconds, &[])
}

/// Like [`run`], for the named targets only (all when `only` is empty):
/// `cargo xtask fuzz 600 pipeline_stream query`.
pub fn run_targets(seconds: u64, only: &[&str]) -> Result<(), String> {
    if let Some(bad) = only.iter().find(|t| !TARGETS.iter().any(|(n, _, _)| n == *t)) {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.0).collect();
        return Err(format!("no fuzz target {bad:?} (targets: {})", names.join(", ")));
    }
    install()?;
    seed()?;
    build()?;
    let mut failed = Vec::new();
    let mut lines = Vec::new();
    for (target, dict, max_len) in TARGETS.iter().filter(|t| only.is_empty() || only.contains(&t.0)) {
        match run_target(target, dict, *max_len, seconds) {
            Ok(line) => lines.push(line),
            Err(e) => {
                eprintln!("xtask: fuzz: {e}");
                failed.push(*target);
            }
        }
    }
    eprintln!("\nxtask: fuzz summary ({seconds} s per target):");
    for l in &lines {
        eprintln!("  {l}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {} (inputs in fuzz/artifacts/<target>/)", failed.join(", ")))
    }
}

/// cargo-fuzz, from crates.io once per machine.
pub fn install() -> Result<(), String> {
    if Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return cxx();
    }
    run_cmd(cmd("cargo").env_remove("CARGO_TARGET_DIR").args(["install", "cargo-fuzz", "--locked"]))?;
    cxx()
}

/// libfuzzer-sys compiles libFuzzer (C++) with the system compiler: Debian's g++.
fn cxx() -> Result<(), String> {
    if have("c++") {
        return Ok(());
    }
    run_cmd(cmd("apt-get").arg("update"))?;
    run_cmd(cmd("apt-get").args(["install", "-y", "--no-install-recommends", "g++"]))
}

/// The fuzz workspace's own cargo target dir, inside the shared one: sanitizer flags never share
/// artifacts with ordinary builds anyway, a separate lock keeps a fuzz build from waiting on (or
/// blocking) every other build, and the plugins' cdylib rlibs (no hash in their file names) of
/// the two workspaces must not overwrite each other.
fn fuzz_target_dir() -> std::path::PathBuf {
    target_dir().join("fuzz")
}

/// `cargo fuzz` with the environment the pinned stable toolchain needs.
fn cargo_fuzz() -> Command {
    let mut c = cmd("cargo");
    c.current_dir(root().join("fuzz"));
    c.env("CARGO_TARGET_DIR", fuzz_target_dir());
    c.env("RUSTC_BOOTSTRAP", "1");
    c.arg("fuzz");
    c
}

/// Builds every target (release, debug assertions, AddressSanitizer).
pub fn build() -> Result<(), String> {
    run_cmd(cargo_fuzz().args(["build", "-O"]))
}

fn run_target(target: &str, dict: &str, max_len: usize, seconds: u64) -> Result<String, String> {
    let fuzz = root().join("fuzz");
    let corpus = fuzz.join("corpus").join(target);
    // The built binary itself (not `cargo fuzz run`), so the wall time is fuzzing time only.
    let binary = fuzz_target_dir().join(host_triple()?).join("release").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    let started = Instant::now();
    let output = Command::new(&binary)
        .current_dir(&fuzz)
        .env("ASAN_OPTIONS", "detect_odr_violation=0")
        .arg(&corpus)
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-dict={}", fuzz.join("dicts").join(dict).display()))
        // A slow input (10 s) is a hang worth seeing; 2 GiB is ASan's shadow plus a real leak.
        .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
        .arg(format!("-max_len={max_len}"))
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let wall = started.elapsed().as_secs();
    let log = String::from_utf8_lossy(&output.stderr);
    // On failure: the panic message, the project's frames of the stack, and libFuzzer's summary
    // (which names the saved input). Otherwise the final stats only.
    let lines: Vec<&str> = log.lines().collect();
    let mut shown: Vec<&str> = Vec::new();
    if !output.status.success() {
        for (i, l) in lines.iter().enumerate() {
            if l.contains("panicked at") || l.contains("ERROR: AddressSanitizer") || l.contains("ERROR: libFuzzer") {
                shown.extend(lines[i..(i + 3).min(lines.len())].iter().copied());
            }
        }
        // Stack frames in this repository's code.
        let here = root().display().to_string();
        shown.extend(lines.iter().filter(|l| l.contains(" in ") && l.contains(&here)).take(12).copied());
    }
    shown.extend(lines.iter().rev().take(if output.status.success() { 5 } else { 12 }).rev().copied());
    for l in shown {
        eprintln!("[{target}] {l}");
    }
    let execs = stat(&log, "stat::number_of_executed_units:").unwrap_or(0);
    let files = fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
    if !output.status.success() {
        return Err(format!("{target}: crashed or failed ({}) after {wall} s", output.status));
    }
    Ok(format!("{target}: {execs} executions in {wall} s wall ({} exec/s), corpus {files} files", execs / wall.max(1)))
}

/// The host target triple: cargo-fuzz builds with `--target <host>`.
fn host_triple() -> Result<String, String> {
    let v = output("rustc", &["-vV"]).ok_or("rustc -vV failed")?;
    v.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_string).ok_or_else(|| "rustc -vV: no host line".into())
}

/// A `-print_final_stats` value.
fn stat(log: &str, key: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse().ok())
}

/// Copies the seed inputs into `fuzz/corpus/<target>/` (file names are content hashes, so
/// seeding twice adds nothing).
pub fn seed() -> Result<(), String> {
    let r = root();
    let fixtures = r.join("tests/fixtures");
    let vectors = r.join("tests/conformance/vectors");
    let seeds = r.join("fuzz/seeds");

    // Streams: whole files of real events (JSON lines, one-event files).
    let mut streams: Vec<Vec<u8>> = Vec::new();
    for f in files_in(&fixtures, &["log", "jsonl"])
        .into_iter()
        .chain(files_in(&fixtures.join("alerts"), &["jsonl"]))
        .chain(files_in(&fixtures.join("audit2rbac"), &["log"]))
        .chain(files_in(&fixtures.join("falco"), &["json"]))
        .chain(dirs_in(&vectors).into_iter().map(|d| d.join("input.jsonl")).filter(|p| p.exists()))
    {
        streams.push(read(&f)?);
    }
    // Records: every line of every stream.
    let mut records: BTreeSet<Vec<u8>> = BTreeSet::new();
    for s in &streams {
        for line in s.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            records.insert(line.to_vec());
        }
    }
    let events: Vec<&Vec<u8>> = records.iter().filter(|r| r.starts_with(b"{")).collect();
    // Batches: the streams, plus JSON arrays and EventLists of a few events each.
    let mut batches = streams.clone();
    for chunk in events.chunks(5).take(40) {
        let items: Vec<&[u8]> = chunk.iter().map(|e| e.as_slice()).collect();
        let joined = items.join(&b","[..]);
        batches.push([b"[".as_slice(), &joined, b"]"].concat());
        batches.push(
            [
                br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":["#.as_slice(),
                &joined,
                b"]}",
            ]
            .concat(),
        );
    }
    // A pretty-printed (multi-line) event, as `kubectl get --raw` or a file dump gives.
    if let Some(e) = events.first() {
        let pretty = String::from_utf8_lossy(e).replace(",\"", ",\n  \"");
        streams.push(pretty.into_bytes());
    }
    let sample: Vec<u8> = events.iter().take(20).flat_map(|e| e.iter().copied().chain([b'\n'])).collect();

    let mut policies = files_in(&fixtures.join("policies"), &["yaml"]);
    policies.push(fixtures.join("audit2rbac/demo-policy.yaml"));
    policies.push(seeds.join("policy.json"));
    let mut policy_inputs = Vec::new();
    for p in &policies {
        let text = read(p)?;
        policy_inputs.push(text.clone());
        policy_inputs.push([text.as_slice(), b"\0", &sample].concat());
    }

    let mut queries: Vec<Vec<u8>> = Vec::new();
    let query_text =
        fs::read_to_string(seeds.join("queries.txt")).map_err(|e| format!("fuzz/seeds/queries.txt: {e}"))?;
    for (i, q) in query_text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .chain(rule_queries(&r).iter().map(String::as_str))
        .enumerate()
    {
        let event = events.get(i * 7 % events.len().max(1)).map(|e| e.as_slice()).unwrap_or(b"{}");
        queries.push(q.as_bytes().to_vec());
        queries.push([q.as_bytes(), b"\0", event].concat());
    }

    let mut configs: Vec<Vec<u8>> = Vec::new();
    for d in dirs_in(&vectors) {
        if d.join("config.yaml").exists() {
            configs.push(read(&d.join("config.yaml"))?);
        }
    }
    configs.push(read(&seeds.join("config-alerts.yaml"))?);
    // The YAML examples of the config and alert references.
    for doc in ["docs/CONFIG.md", "docs/ALERTS.md"] {
        configs.extend(
            yaml_blocks(&fs::read_to_string(r.join(doc)).unwrap_or_default()).into_iter().map(String::into_bytes),
        );
    }

    let mut packs: Vec<Vec<u8>> = Vec::new();
    for f in files_in(&fixtures.join("sigma"), &["yml"]).into_iter().chain(files_in(&r.join("rules"), &["yaml"])) {
        packs.push(read(&f)?);
    }
    packs.push(read(&fixtures.join("falco/falco-k8s-audit-rules.yaml"))?);

    let mut fluent: Vec<Vec<u8>> = records.iter().cloned().collect();
    for c in &configs {
        if let Some(e) = events.first() {
            fluent.push([c.as_slice(), b"\0", e].concat());
        }
    }
    let settings = vec![read(&seeds.join("envoy-settings.yaml"))?, read(&seeds.join("envoy-settings.json"))?];

    let record_list: Vec<Vec<u8>> = records.iter().cloned().collect();
    let sets: [(&str, &[Vec<u8>]); 10] = [
        ("pipeline_record", &record_list),
        ("pipeline_stream", &streams),
        ("pipeline_batch", &batches),
        ("policy_load", &policy_inputs),
        ("query", &queries),
        ("config_load", &configs),
        ("rule_pack", &packs),
        ("fluent_bit", &fluent),
        ("envoy_batch", &batches),
        ("envoy_settings", &settings),
    ];
    for (target, inputs) in sets {
        let dir = r.join("fuzz/corpus").join(target);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for input in inputs {
            let path = dir.join(format!("seed-{:016x}", fnv1a(input)));
            if !path.exists() {
                fs::write(&path, input).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    eprintln!("xtask: fuzz corpora seeded from tests/ under fuzz/corpus/");
    Ok(())
}

/// The ```yaml blocks of a Markdown file.
fn yaml_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in md.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```yaml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => out.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// The single-line `query:` values of the bundled rule packs.
fn rule_queries(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in files_in(&root.join("rules"), &["yaml"]) {
        let text = fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines() {
            if let Some(q) = line.trim().strip_prefix("query: ") {
                let q = q.trim();
                if q != ">-" && q != "|" {
                    out.push(q.trim_matches('"').to_string());
                }
            }
        }
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn files_in(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    v.retain(|p| p.is_file() && p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.contains(&e)));
    v.sort();
    v
}

fn dirs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    v.sort();
    v
}
