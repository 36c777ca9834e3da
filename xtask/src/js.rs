//! The npm package `kaudit` (`js/`): build it with wasm-pack, install its test tools with npm,
//! and run its tests: the Node API tests and the real-browser tests (headless Debian Chromium
//! driven by playwright-core; the expected numbers come from the native `kaudit report --json`).

use std::path::PathBuf;

use crate::util::{artifacts_dir, cmd, root, run, target_dir};

fn js_dir() -> PathBuf {
    root().join("js")
}

/// `js/pkg/` (the ES module, `.wasm` and TypeScript declarations), the demo's sample log, and
/// `js/node_modules` (playwright-core, from package-lock.json).
pub fn build() -> Result<(), String> {
    // `--mode no-install`: use the wasm-bindgen-cli that `setup` installed, never download one;
    // wasm-opt is off in js/Cargo.toml (it would download binaryen). The package.json is ours.
    run(cmd("wasm-pack").args([
        "build",
        "js",
        "--target",
        "web",
        "--release",
        "--mode",
        "no-install",
        "--out-dir",
        "pkg",
        "--no-pack",
        "--no-gitignore",
    ]))?;
    // wasm-pack builds this one (not the ARTIFACTS table); a copy sits with the other artifacts.
    let wasm = js_dir().join("pkg").join("kaudit_js_bg.wasm");
    std::fs::create_dir_all(artifacts_dir()).map_err(|e| e.to_string())?;
    std::fs::copy(&wasm, artifacts_dir().join("kaudit-npm.wasm")).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let size = std::fs::metadata(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?.len();
    eprintln!("xtask: kaudit-npm.wasm (js/pkg/kaudit_js_bg.wasm): {size} bytes");
    let sample = root().join("tests/fixtures/sample-audit.log");
    let demo_copy = js_dir().join("demo/sample-audit.log");
    std::fs::copy(&sample, &demo_copy).map_err(|e| format!("{}: {e}", sample.display()))?;
    run(cmd("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(js_dir()))
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
