//! Building the .wasm artifacts once and collecting them under stable names.

use crate::util::{artifacts_dir, cmd, run, target_dir};

/// (package, target, built file name, artifact name)
const ARTIFACTS: &[(&str, &str, &str, &str)] = &[
    ("kaudit-cli", "wasm32-wasip2", "kaudit.wasm", "kaudit-cli.wasm"),
];

pub fn build_all() -> Result<(), String> {
    std::fs::create_dir_all(artifacts_dir()).map_err(|e| e.to_string())?;
    for (package, target, built, name) in ARTIFACTS {
        run(cmd("cargo").args(["build", "--profile", "wasm", "-p", package, "--target", target]))?;
        let from = target_dir().join(target).join("wasm").join(built);
        let to = artifacts_dir().join(name);
        std::fs::copy(&from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
        let size = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
        eprintln!("xtask: {name}: {size} bytes");
    }
    Ok(())
}

/// The main job again, through the wasmtime CLI and the command component.
pub fn demo() -> Result<(), String> {
    let wasm = artifacts_dir().join("kaudit-cli.wasm");
    eprintln!("\nxtask: the same job through the wasmtime CLI ({})", wasm.display());
    run(cmd("wasmtime")
        .args(["run", "--dir", "tests/fixtures::/data"])
        .arg(&wasm)
        .args(["filter", "/data/sample-audit.log"])
        .stdout(std::process::Stdio::null()))
}
