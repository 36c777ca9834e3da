//! The Fluent Bit host's test step. Its integration tests
//! (plugins/fluent-bit/testhost/tests/fluent_bit.rs) load the `kaudit-fluent-bit.wasm` artifact
//! that `wasm::build_all` collects into an in-project host that calls it exactly the way
//! Fluent Bit's filter_wasm does (Fluent Bit itself is not installable from the registries this
//! project reaches); they run inside `cargo test --workspace`. `test` runs only those crates,
//! then `fuel` prints the per-record cost in WASM instructions on the bundled sample log (the
//! figures in plugins/fluent-bit/README.md).

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
    run(cmd("cargo").args(["test", "-p", "kaudit-fluent-bit", "-p", "kaudit-fluent-bit-testhost"]))?;
    fuel()
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
