//! The WIT component (`kaudit-component.wasm`, world `kaudit:audit/audit@0.2.0` in wit/)
//! and the wasmtime hosts: what `cargo xtask test` and `cargo xtask bench` need beyond
//! `cargo test --workspace`.
//!
//! - [`prepare`]: before `cargo test --workspace`: builds the native `kaudit` binary the
//!   cross-host conformance tests (plugins/component/tests) compare against (`cargo test` builds
//!   another package's binaries only when that package has integration tests of its own).
//! - [`test`]: the artifacts and [`prepare`], then the component's tests alone (the real wasmtime
//!   CLI on both artifacts, the wasmtime-crate embedding, every conformance vector in every
//!   host), then the size report.
//! - [`bench`]: events/s of each host next to native, in one run (plugins/component/benches/hosts.rs).
//! - [`sizes`]: artifact sizes, and whether Debian's `wasm-opt` can shrink them.

use crate::util::{artifacts_dir, cmd, have, run, target_dir};

/// Builds the native CLI (debug, where the tests look for it).
pub fn prepare() -> Result<(), String> {
    run(cmd("cargo").args(["build", "-p", "kaudit-cli"]))
}

/// The component's tests on their own (`cargo xtask setup` must have installed wasmtime).
pub fn test() -> Result<(), String> {
    crate::wasm::build_all()?;
    prepare()?;
    let cli = target_dir().join("debug").join("kaudit");
    run(cmd("cargo").args(["test", "-p", "kaudit-component"]).env("KAUDIT_CLI", &cli))?;
    sizes()
}

/// Throughput of every host on the generated corpus (`cargo xtask setup` must have installed wasmtime).
pub fn bench() -> Result<(), String> {
    crate::wasm::build_all()?;
    // The npm package's rows (js/bench/engine.mjs in Node and Chromium).
    crate::js::build()?;
    run(cmd("cargo").args(["build", "--release", "-p", "kaudit-cli"]))?;
    let cli = target_dir().join("release").join("kaudit");
    run(cmd("cargo").args(["bench", "-p", "kaudit-component", "--bench", "hosts"]).env("KAUDIT_CLI", &cli))
}

/// Prints the sizes of the component artifacts and tries `wasm-opt -Oz` on them. Debian 12's
/// binaryen (version 108) predates the component model and rejects components; the figure is
/// reported, never a failure.
pub fn sizes() -> Result<(), String> {
    for name in ["kaudit-component.wasm", "kaudit-cli.wasm"] {
        let path = artifacts_dir().join(name);
        let size = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        eprintln!("xtask: {name}: {size} bytes ({:.0} KiB)", size as f64 / 1024.0);
        if !have("wasm-opt") {
            eprintln!("xtask:   wasm-opt not installed (Debian package binaryen); skipped");
            continue;
        }
        let opt = std::env::temp_dir().join(format!("kaudit-wasm-opt-{name}"));
        let out =
            cmd("wasm-opt").arg("-Oz").arg(&path).arg("-o").arg(&opt).output().map_err(|e| format!("wasm-opt: {e}"))?;
        match std::fs::metadata(&opt) {
            Ok(m) if out.status.success() => eprintln!("xtask:   wasm-opt -Oz: {} bytes", m.len()),
            _ => {
                let why = String::from_utf8_lossy(&out.stderr);
                eprintln!(
                    "xtask:   wasm-opt -Oz cannot process it (a component, not a core module): {}",
                    why.lines().next().unwrap_or("").trim()
                );
            }
        }
        let _ = std::fs::remove_file(&opt);
    }
    Ok(())
}
