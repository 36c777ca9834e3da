//! Per-record cost of kaudit-fluent-bit.wasm in WASM instructions (wasmtime fuel): the
//! deterministic figure for an interpreter host like Fluent Bit's WAMR, where CPU time scales
//! with the instructions executed.
//!
//! `cargo run -p kaudit-fluent-bit-testhost --release --bin fuel -- <module.wasm> <audit.log> [config-dir]`
//!
//! Every line of the log is one record, passed the way Fluent Bit passes it. `config-dir` is
//! preopened as `/etc/kaudit` (Accessible_Paths); without it the embedded default serves.
//!
//! A module built with `--features phase-marks` also gets the per-phase breakdown (framing and
//! parse, policy, enrichment, alerts, output); the marks cost a few instructions each, so the
//! totals are quoted from the shipped build.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use kaudit_fluent_bit_testhost::{FluentBit, Options, Reply};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(wasm), Some(log)) = (args.first(), args.get(1)) else {
        eprintln!("usage: fuel <module.wasm> <audit.log> [config-dir]");
        return ExitCode::from(2);
    };
    match run(wasm, log, args.get(2)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fuel: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(wasm: &str, log: &str, config_dir: Option<&String>) -> Result<(), String> {
    let input = std::fs::read(log).map_err(|e| format!("{log}: {e}"))?;
    let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut options = Options { fuel: true, ..Options::default() };
    if let Some(dir) = config_dir {
        options.accessible_paths.push((PathBuf::from(dir), "/etc/kaudit".into()));
    }
    let mut fb = FluentBit::load(wasm.as_ref(), options)?;

    // The fixed cost of a call: a NULL record is answered without touching the pipeline.
    // The config loads in `_initialize` (WAMR calls it at instantiation); the first call may
    // still set up lazily initialised state: both measured apart.
    fb.call_null_record("kube.audit", 1)?;
    let first_call = fb.last_fuel();
    fb.call_null_record("kube.audit", 1)?;
    let null_call = fb.last_fuel();

    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    let mut phases = Phases::default();
    let mut raw: std::collections::BTreeMap<usize, (u64, Vec<u64>)> = Default::default();
    let mut bytes = 0usize;
    let started = Instant::now();
    for line in &lines {
        let reply = fb.call("kube.audit", line)?;
        bytes += line.len();
        phases.add(fb.last_marks(), fb.last_fuel());
        if std::env::var_os("KAUDIT_FUEL_RAW").is_some() {
            let m = fb.last_marks();
            let e = raw.entry(m.len()).or_insert_with(|| (0u64, vec![0u64; m.len() + 1]));
            e.0 += 1;
            let mut at = 0;
            for (i, &x) in m.iter().chain(std::iter::once(&fb.last_fuel())).enumerate() {
                e.1[i] += x - at;
                at = x;
            }
        }
        match reply {
            Reply::Drop => dropped.push(fb.last_fuel()),
            Reply::Record(_) => kept.push(fb.last_fuel()),
        }
    }
    let elapsed = started.elapsed();
    let mut all: Vec<u64> = kept.iter().chain(&dropped).copied().collect();
    let total: u64 = all.iter().sum();
    all.sort_unstable();
    let n = all.len().max(1) as u64;

    println!("module: {wasm} ({} bytes)", std::fs::metadata(wasm).map(|m| m.len()).unwrap_or(0));
    println!("log: {log}: {} records, {} bytes (mean {} bytes/record)", lines.len(), bytes, bytes / lines.len().max(1));
    println!("start-up (_initialize, loads the config): {} instructions", fb.init_fuel());
    println!("first call: {first_call} instructions");
    println!("fixed cost of a call (NULL record path): {null_call} instructions");
    println!("| records | count | mean instr/record | median | p90 | max |");
    println!("|---|---|---|---|---|---|");
    row("all", &all);
    row("kept (returned)", &kept);
    row("dropped (\"\")", &dropped);
    phases.print(lines.len());
    for (marks, (n, sums)) in &raw {
        let means: Vec<u64> = sums.iter().map(|s| s / n).collect();
        println!("records with {marks} marks: {n}; mean instructions between marks: {means:?}");
    }
    println!("instructions per input byte: {:.1}", total as f64 / bytes.max(1) as f64);
    println!("total instructions: {total} (mean {} per record)", total / n);
    println!(
        "wasmtime (Cranelift JIT, fuel on, for reference only; not WAMR): {:.1} µs/record",
        elapsed.as_secs_f64() * 1e6 / lines.len().max(1) as f64
    );
    println!("linear memory at the end: {} bytes", fb.memory_bytes());
    println!("counters: {}", fb.counters()?);
    Ok(())
}

/// Instructions per phase, summed over the records: a kept event passes four marks (parsed,
/// decided, enriched, alerts evaluated), a dropped one two; what follows the last mark is output
/// (the reply built and returned, `""` for a drop).
#[derive(Default)]
struct Phases {
    sums: [u64; 5],
    other: u64,
    marked: bool,
}

const PHASES: [&str; 5] = ["framing and parse", "policy", "enrichment", "alerts", "output"];

impl Phases {
    fn add(&mut self, marks: &[u64], total: u64) {
        let phases: &[usize] = match marks.len() {
            4 => &[0, 1, 2, 3],
            2 => &[0, 1],
            0 => {
                self.other += total;
                return;
            }
            _ => {
                self.marked = true;
                self.other += total;
                return;
            }
        };
        self.marked = true;
        let mut at = 0;
        for (&phase, &mark) in phases.iter().zip(marks) {
            self.sums[phase] += mark - at;
            at = mark;
        }
        self.sums[4] += total - at;
    }

    fn print(&self, records: usize) {
        if !self.marked {
            println!("(no phase marks: build the module with --features phase-marks for the per-phase breakdown)");
            return;
        }
        let n = records.max(1) as u64;
        let total: u64 = self.sums.iter().sum::<u64>() + self.other;
        println!("| phase | mean instr/record | share |");
        println!("|---|---|---|");
        for (name, sum) in PHASES.iter().zip(self.sums) {
            println!("| {name} | {} | {:.1}% |", sum / n, sum as f64 * 100.0 / total.max(1) as f64);
        }
        if self.other > 0 {
            println!(
                "| records without the usual marks (bad, wrapped) | {} | {:.1}% |",
                self.other / n,
                self.other as f64 * 100.0 / total.max(1) as f64
            );
        }
    }
}

fn row(name: &str, values: &[u64]) {
    if values.is_empty() {
        println!("| {name} | 0 | - | - | - | - |");
        return;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let mean = v.iter().sum::<u64>() / v.len() as u64;
    let pct = |p: usize| v[(v.len() - 1) * p / 100];
    println!("| {name} | {} | {mean} | {} | {} | {} |", v.len(), pct(50), pct(90), v[v.len() - 1]);
}
