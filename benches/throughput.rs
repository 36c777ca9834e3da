//! Throughput of the pipeline next to a plain serde_json skim (`IgnoredAny`) of the same bytes,
//! in one run, on a deterministic corpus (`kaudit_testkit::corpus`). Run: `cargo bench --bench throughput`
//! (or `cargo xtask bench`). Prints events/s, MB/s and the ratio to the skim.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kaudit::Pipeline;

const EVENTS: usize = 20_000;
const ROUNDS: usize = 7;

fn skim(input: &[u8]) -> usize {
    let mut n = 0;
    for line in input.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let v: serde::de::IgnoredAny = serde_json::from_slice(line).expect("corpus is valid JSON");
        black_box(v);
        n += 1;
    }
    n
}

fn pipeline_run(input: &[u8], enrich_and_alerts: bool) -> usize {
    let mut config = kaudit::Config::embedded_default();
    config.enrichment.enabled = enrich_and_alerts;
    config.alerts.enabled = enrich_and_alerts;
    let mut p = Pipeline::new(config);
    // Like the CLI: one reused output buffer, flushed (here: cleared) every megabyte.
    let mut out = Vec::with_capacity(2 << 20);
    for record in kaudit::Records::new(input) {
        p.process_document(record.bytes, record.line, &mut out, &mut |_| {});
        if out.len() >= 1 << 20 {
            black_box(&out);
            out.clear();
        }
    }
    black_box(&out);
    black_box(p.take_alerts());
    p.counters().read as usize
}

fn measure(name: &str, input: &[u8], f: &dyn Fn(&[u8]) -> usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(ROUNDS);
    let mut events = 0;
    f(input); // warm-up
    for _ in 0..ROUNDS {
        let start = Instant::now();
        events = f(input);
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[ROUNDS / 2];
    let secs = median.as_secs_f64();
    println!(
        "{name:<28} {:>10.0} events/s {:>8.1} MB/s  (median of {ROUNDS}, {:.1} ms)",
        events as f64 / secs,
        input.len() as f64 / secs / 1e6,
        secs * 1e3
    );
    (median, events)
}

fn main() {
    // `cargo test --benches` runs bench binaries with --bench absent; keep that fast.
    let quick = std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let n = if quick { 500 } else { EVENTS };
    let input = kaudit_testkit::corpus::generate(n, 42);
    let lines = input.iter().filter(|b| **b == b'\n').count();
    println!("corpus: {lines} events, {:.1} MB (kaudit_testkit::corpus::generate({n}, 42))", input.len() as f64 / 1e6);
    // KAUDIT_BENCH_ONLY=run|filter|skim runs one variant (for profiling).
    if let Ok(only) = std::env::var("KAUDIT_BENCH_ONLY") {
        let f: &dyn Fn(&[u8]) -> usize = match only.as_str() {
            "skim" => &skim,
            "filter" => &|i| pipeline_run(i, false),
            _ => &|i| pipeline_run(i, true),
        };
        measure(&only, &input, f);
        return;
    }
    let (skim_t, _) = measure("serde_json skim (IgnoredAny)", &input, &skim);
    let (filter_t, _) = measure("kaudit filter (seed policy)", &input, &|i| pipeline_run(i, false));
    let (run_t, _) = measure("kaudit run (default config)", &input, &|i| pipeline_run(i, true));
    println!("filter / skim throughput: {:.0}%", 100.0 * skim_t.as_secs_f64() / filter_t.as_secs_f64());
    println!("run    / skim throughput: {:.0}%", 100.0 * skim_t.as_secs_f64() / run_t.as_secs_f64());
}
