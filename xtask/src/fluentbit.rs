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
