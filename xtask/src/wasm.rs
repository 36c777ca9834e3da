//! Building the .wasm artifacts once and collecting them under stable names.

use crate::util::{artifacts_dir, cmd, run, target_dir};

/// (package, target, profile, built file name, artifact name)
const ARTIFACTS: &[(&str, &str, &str, &str, &str)] = &[
    ("kaudit-cli", "wasm32-wasip2", "wasm", "kaudit.wasm", "kaudit-cli.wasm"),
    // wasm-fast: +12% size (1.97 -> 2.20 MB) for 6-21% more events/s in wasmtime (plugins/component/README.md).
    ("kaudit-component", "wasm32-wasip2", "wasm-fast", "kaudit_component.wasm", "kaudit-component.wasm"),
    ("kaudit-envoy", "wasm32-wasip1", "wasm", "kaudit_envoy.wasm", "kaudit-envoy.wasm"),
    ("kaudit-fluent-bit", "wasm32-wasip1", "wasm-fast", "kaudit_fluent_bit.wasm", "kaudit-fluent-bit.wasm"),
];

pub fn build_all() -> Result<(), String> {
    std::fs::create_dir_all(artifacts_dir()).map_err(|e| e.to_string())?;
    // One cargo invocation per (target, profile), so those crates build in parallel.
    let mut groups: Vec<(&str, &str)> = ARTIFACTS.iter().map(|a| (a.1, a.2)).collect();
    groups.dedup();
    for (target, profile) in groups {
        let mut c = cmd("cargo");
        c.args(["build", "--profile", profile, "--target", target]);
        for (package, t, p, _, _) in ARTIFACTS {
            if *t == target && *p == profile {
                c.args(["-p", package]);
            }
        }
        run(&mut c)?;
    }
    for (_, target, profile, built, name) in ARTIFACTS {
        let from = target_dir().join(target).join(profile).join(built);
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
