//! The npm package `kaudit` (`js/`): build it with wasm-pack, install its test tools with npm,
//! and run its tests: the Node API tests and the real-browser tests (headless Debian Chromium
//! driven by playwright-core; the expected numbers come from the native `kaudit report --json`).

use std::path::PathBuf;

use crate::util::{artifacts_dir, cmd, root, run, target_dir};

fn js_dir() -> PathBuf {
    root().join("js")
}

/// `js/pkg/` (the ES module, `.wasm` and TypeScript declarations), `js/pkg-fault/` (the same with
/// the fault-injection feature, for the panic test), the demo's sample log, and `js/node_modules`
/// (playwright-core, from package-lock.json).
pub fn build() -> Result<(), String> {
    wasm_pack("pkg", &[])?;
    // The fault test's build: a marked record panics inside the engine (never shipped: the
    // package's `files` list names pkg/ only, and tests/limits_capabilities.rs checks pkg/'s .wasm).
    wasm_pack("pkg-fault", &["--features", "fault-injection"])?;
    let fault = js_dir().join("pkg-fault").join("kaudit_js_bg.wasm");
    std::fs::create_dir_all(artifacts_dir()).map_err(|e| e.to_string())?;
    std::fs::copy(&fault, artifacts_dir().join("kaudit-npm-fault.wasm"))
        .map_err(|e| format!("{}: {e}", fault.display()))?;
    // wasm-pack builds this one (not the ARTIFACTS table); a copy sits with the other artifacts.
    let wasm = js_dir().join("pkg").join("kaudit_js_bg.wasm");
    std::fs::copy(&wasm, artifacts_dir().join("kaudit-npm.wasm")).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let size = std::fs::metadata(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?.len();
    eprintln!("xtask: kaudit-npm.wasm (js/pkg/kaudit_js_bg.wasm): {size} bytes");
    let sample = root().join("tests/fixtures/sample-audit.log");
    let demo_copy = js_dir().join("demo/sample-audit.log");
    std::fs::copy(&sample, &demo_copy).map_err(|e| format!("{}: {e}", sample.display()))?;
    run(cmd("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(js_dir()))
}

/// `wasm-pack build js` into `js/<out_dir>`. `--mode no-install`: use the wasm-bindgen-cli that
/// `setup` installed, never download one; wasm-opt is off in js/Cargo.toml (it would download
/// binaryen). The package.json is ours.
///
/// std is rebuilt with `panic=unwind` and WebAssembly exception handling (legacy form, which V8 in
/// Chromium and Node runs), so a panic inside the engine unwinds to the per-record guard in
/// js/src/lib.rs and becomes a JS exception instead of aborting the instance (wasm-bindgen's
/// guide, "Catching Panics"). `-Zbuild-std` needs RUSTC_BOOTSTRAP=1 on the pinned stable
/// toolchain, as for the Envoy module (wasm.rs).
fn wasm_pack(out_dir: &str, cargo_args: &[&str]) -> Result<(), String> {
    run(cmd("wasm-pack")
        .args(["build", "js", "--target", "web", "--release", "--mode", "no-install", "--out-dir", out_dir])
        .args(["--no-pack", "--no-gitignore", "--", "-Zbuild-std=std,panic_unwind"])
        .args(cargo_args)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", "-Cpanic=unwind -Ctarget-feature=+exception-handling"))
}

/// Node API tests and browser tests (`js/test/*.test.mjs`), after `build()`. Builds the debug
/// CLI the tests take their expected reports from.
pub fn test() -> Result<(), String> {
    run(cmd("cargo").args(["build", "-p", "kaudit-cli"]))?;
    let kaudit = target_dir().join("debug").join("kaudit");
    let mut tests: Vec<String> = std::fs::read_dir(js_dir().join("test"))
        .map_err(|e| format!("js/test: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.mjs"))
        .map(|n| format!("test/{n}"))
        .collect();
    tests.sort();
    if tests.is_empty() {
        return Err("js/test: no *.test.mjs files".into());
    }
    run(cmd("node")
        .arg("--test")
        .arg("--test-concurrency=1")
        .args(&tests)
        .current_dir(js_dir())
        .env("KAUDIT_BIN", &kaudit))
}
