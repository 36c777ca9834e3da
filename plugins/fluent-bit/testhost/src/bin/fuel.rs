//! Per-record cost of kaudit-fluent-bit.wasm in WASM instructions (wasmtime fuel): the
//! deterministic figure for an interpreter host like Fluent Bit's WAMR, where CPU time scales
//! with the instructions executed.
//!
//! `cargo run -p kaudit-fluent-bit-testhost --release --bin fuel -- <module.wasm> <audit.log> [config-dir]`
//!
//! Every line of the log is one record, passed the way Fluent Bit passes it. `config-dir` is
//! preopened as `/etc/kaudit` (Accessible_Paths); without it the embedded default serves.

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
    let mut bytes = 0usize;
    let started = Instant::now();
    for line in &lines {
        let reply = fb.call("kube.audit", line)?;
        bytes += line.len();
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
