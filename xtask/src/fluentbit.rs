//! The Fluent Bit host's test step. Two kinds of integration tests load the
//! `kaudit-fluent-bit.wasm` artifact that `wasm::build_all` collects, both inside
//! `cargo test --workspace`:
//! - plugins/fluent-bit/testhost/tests/real_fluent_bit.rs runs the shipped fluent-bit.yaml in the
//!   real Fluent Bit 5.1.1 (found on PATH, as `$FLUENT_BIT`, or in `../shared/tools/`; under
//!   `CI=true` a missing one fails) and compares it with native `kaudit run` (`$KAUDIT_CLI`);
//! - plugins/fluent-bit/testhost/tests/fluent_bit.rs calls the module from an in-project
//!   wasmtime host exactly as filter_wasm does, for what Fluent Bit cannot show (fuel, NULL and
//!   out-of-bounds pointers, memory growth, traps).
//!
//! `test` runs only those crates, then `fuel` prints the per-record cost in WASM instructions on
//! the bundled sample log (the figures in plugins/fluent-bit/README.md). `real_hosts` runs the
//! real Fluent Bit and the real Vector (plugins/envoy/tests/vector.rs) tests alone.

use crate::util::{artifacts_dir, cmd, run};

const SAMPLE_LOG: &str = "tests/fixtures/sample-audit.log";

/// Fails early, with a clear message, when the artifact was not built.
pub fn preflight() -> Result<(), String> {
    let wasm = artifacts_dir().join("kaudit-fluent-bit.wasm");
    if !wasm.is_file() {
        return Err(format!("{} is missing (run `cargo xtask build-wasm`)", wasm.display()));
    }
    Ok(())
}

/// Runs the Fluent Bit crates' tests (unit tests of the filter, the test-host integration tests).
pub fn test() -> Result<(), String> {
    preflight()?;
    run(cmd("cargo").args(["build", "-p", "kaudit-cli"]))?;
    run(cmd("cargo").args(["test", "-p", "kaudit-fluent-bit", "-p", "kaudit-fluent-bit-testhost"]))?;
    fuel()
}

/// The shipped Fluent Bit and Vector configs in the real hosts, and nothing else.
pub fn real_hosts() -> Result<(), String> {
    preflight()?;
    // Vector's test runs the shipped Envoy filter (the Fluent Bit tests' TLS webhook is Envoy too).
    let envoy_wasm = artifacts_dir().join("kaudit-envoy.wasm");
    if !envoy_wasm.is_file() {
        return Err(format!("{} is missing (run `cargo xtask build-wasm`)", envoy_wasm.display()));
    }
    run(cmd("cargo").args(["build", "-p", "kaudit-cli"]))?;
    run(cmd("cargo").args([
        "test",
        "-p",
        "kaudit-fluent-bit-testhost",
        "--test",
        "real_fluent_bit",
        "--test",
        "real_fluent_bit_aggregate",
    ]))?;
    run(cmd("cargo").args(["test", "-p", "kaudit-envoy", "--test", "vector"]))
}

/// WASM instructions per record (wasmtime fuel) over the sample log. Fuel does not depend on
/// the host's build profile, so the dev build the tests already made serves.
pub fn fuel() -> Result<(), String> {
    preflight()?;
    let wasm = artifacts_dir().join("kaudit-fluent-bit.wasm");
    run(cmd("cargo")
        .args(["run", "--quiet", "-p", "kaudit-fluent-bit-testhost", "--bin", "fuel", "--"])
        .arg(&wasm)
        .arg(SAMPLE_LOG))
}

/// `cargo xtask fuzz-wasm-memory [events]`: the linear memory of the Fluent Bit module over
/// `events` (default 1,000,000) events from distinct addresses and users (the test
/// `linear_memory_stays_bounded_with_distinct_addresses_and_users`, which CI runs with 150,000).
pub fn cardinality(args: &[String]) -> Result<(), String> {
    preflight()?;
    let events = match args.first() {
        Some(n) => n.parse::<u32>().map_err(|e| format!("fuzz-wasm-memory: {n:?} is not a number of events: {e}"))?,
        None => 1_000_000,
    };
    run(cmd("cargo")
        .args([
            "test",
            "-p",
            "kaudit-fluent-bit-testhost",
            "--test",
            "fluent_bit",
            "linear_memory_stays_bounded",
            "--",
            "--nocapture",
        ])
        .env("KAUDIT_CARDINALITY_EVENTS", events.to_string()))
}
