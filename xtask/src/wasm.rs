//! Building the .wasm artifacts once and collecting them under stable names.

use std::process::Command;

use crate::util::{artifacts_dir, cmd, run, target_dir};

/// How an artifact is built.
#[derive(Clone, Copy, PartialEq)]
enum Build {
    /// The toolchain's prebuilt std, which is `panic=abort` on wasm32: a panic traps.
    Stock,
    /// std rebuilt with `panic=unwind` and WebAssembly exception handling, so `catch_unwind`
    /// works in the host. Only Envoy's V8 runs such modules (Fluent Bit's WAMR and the wasmtime
    /// CLI's defaults do not), so only the Envoy module is built this way.
    Unwind,
    /// [`Build::Unwind`] plus `--features fault-injection`: the Envoy fault test's module.
    UnwindFault,
}

/// (package, target, profile, how, built file name, artifact name)
const ARTIFACTS: &[(&str, &str, &str, Build, &str, &str)] = &[
    ("kaudit-cli", "wasm32-wasip2", "wasm", Build::Stock, "kaudit.wasm", "kaudit-cli.wasm"),
    // wasm-fast: +12% size (1.97 -> 2.20 MB) for 6-21% more events/s in wasmtime (plugins/component/README.md).
    ("kaudit-component", "wasm32-wasip2", "wasm-fast", Build::Stock, "kaudit_component.wasm", "kaudit-component.wasm"),
    ("kaudit-envoy", "wasm32-wasip1", "wasm", Build::Unwind, "kaudit_envoy.wasm", "kaudit-envoy.wasm"),
    // Its own profile, so the shipped module and this one do not rebuild each other.
    ("kaudit-envoy", "wasm32-wasip1", "wasm-fault", Build::UnwindFault, "kaudit_envoy.wasm", "kaudit-envoy-fault.wasm"),
    ("kaudit-fluent-bit", "wasm32-wasip1", "wasm-fast", Build::Stock, "kaudit_fluent_bit.wasm", "kaudit-fluent-bit.wasm"),
];

/// `-Zbuild-std` is unstable; the pinned stable toolchain accepts it with RUSTC_BOOTSTRAP=1
/// (as cargo-fuzz's flags, see fuzz/README.md) and needs the rust-src component.
fn unwinding(c: &mut Command) {
    c.env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", "-Cpanic=unwind -Ctarget-feature=+exception-handling")
        .args(["-Zbuild-std=std,panic_unwind"]);
}

pub fn build_all() -> Result<(), String> {
    std::fs::create_dir_all(artifacts_dir()).map_err(|e| e.to_string())?;
    // One cargo invocation per (target, profile), so those crates build in parallel.
    let mut groups: Vec<(&str, &str, Build)> = ARTIFACTS.iter().map(|a| (a.1, a.2, a.3)).collect();
    groups.dedup();
    for (target, profile, how) in groups {
        let mut c = cmd("cargo");
        c.args(["build", "--profile", profile, "--target", target]);
        for (package, t, p, h, _, _) in ARTIFACTS {
            if (*t, *p, *h) == (target, profile, how) {
                c.args(["-p", package]);
            }
        }
        match how {
            Build::Stock => {}
            Build::Unwind => unwinding(&mut c),
            Build::UnwindFault => {
                unwinding(&mut c);
                c.args(["--features", "kaudit-envoy/fault-injection"]);
            }
        }
        run(&mut c)?;
    }
    for (_, target, profile, _, built, name) in ARTIFACTS {
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
