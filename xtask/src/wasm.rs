//! Building the .wasm artifacts once and collecting them under stable names.

use std::process::Command;

use crate::util::{artifacts_dir, cmd, run, target_dir};

/// How an artifact is built.
#[derive(Clone, Copy, PartialEq)]
enum Build {
    /// The toolchain's prebuilt std, which is `panic=abort` on wasm32: a panic traps.
    Stock,
    /// std rebuilt with `panic=unwind` and WebAssembly exception handling in its legacy form
    /// (LLVM's default), so `catch_unwind` works in the host: Envoy's V8 runs it.
    Unwind,
    /// The same with the standard (`exnref`) form, which wasmtime runs by default since 47.0
    /// and the legacy form not at all: the WASI command.
    UnwindExnref,
    /// The fault tests' builds of those: `--features fault-injection` (a marked input panics).
    UnwindFault,
    UnwindExnrefFault,
}

/// (package, target, profile, how, built file name, artifact name)
const ARTIFACTS: &[(&str, &str, &str, Build, &str, &str)] = &[
    ("kaudit-cli", "wasm32-wasip2", "wasm", Build::UnwindExnref, "kaudit.wasm", "kaudit-cli.wasm"),
    ("kaudit-cli", "wasm32-wasip2", "wasm-fault", Build::UnwindExnrefFault, "kaudit.wasm", "kaudit-cli-fault.wasm"),
    // wasm-fast: +12% size (1.97 -> 2.20 MB) for 6-21% more events/s in wasmtime (plugins/component/README.md).
    ("kaudit-component", "wasm32-wasip2", "wasm-fast", Build::Stock, "kaudit_component.wasm", "kaudit-component.wasm"),
    ("kaudit-envoy", "wasm32-wasip1", "wasm", Build::Unwind, "kaudit_envoy.wasm", "kaudit-envoy.wasm"),
    // Its own profile, so the shipped module and this one do not rebuild each other.
    ("kaudit-envoy", "wasm32-wasip1", "wasm-fault", Build::UnwindFault, "kaudit_envoy.wasm", "kaudit-envoy-fault.wasm"),
    ("kaudit-fluent-bit", "wasm32-wasip1", "wasm-fast", Build::Stock, "kaudit_fluent_bit.wasm", "kaudit-fluent-bit.wasm"),
];

/// `-Zbuild-std` is unstable; the pinned stable toolchain accepts it with RUSTC_BOOTSTRAP=1
/// (as cargo-fuzz's flags, see fuzz/README.md) and needs the rust-src component.
fn unwinding(c: &mut Command, exnref: bool) {
    let mut flags = String::from("-Cpanic=unwind -Ctarget-feature=+exception-handling");
    if exnref {
        flags.push_str(" -Cllvm-args=-wasm-use-legacy-eh=false");
    }
    c.env("RUSTC_BOOTSTRAP", "1").env("RUSTFLAGS", flags).args(["-Zbuild-std=std,panic_unwind"]);
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
            Build::Unwind | Build::UnwindFault => unwinding(&mut c, false),
            Build::UnwindExnref | Build::UnwindExnrefFault => unwinding(&mut c, true),
        }
        if matches!(how, Build::UnwindFault | Build::UnwindExnrefFault) {
            for (package, ..) in ARTIFACTS.iter().filter(|a| (a.1, a.2, a.3) == (target, profile, how)) {
                c.args(["--features", &format!("{package}/fault-injection")]);
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
