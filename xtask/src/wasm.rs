//! Building the .wasm artifacts once and collecting them under stable names.

use std::process::Command;

use crate::util::{artifacts_dir, cmd, run, shared_tool, target_dir, FLB_WAMRC};

/// What a panic does in an artifact.
#[derive(Clone, Copy, PartialEq)]
enum Panics {
    /// The toolchain's prebuilt std, which is `panic=abort` on wasm32: a panic traps.
    Abort,
    /// std rebuilt with `panic=unwind` and WebAssembly exception handling in its legacy form
    /// (LLVM's default), so `catch_unwind` works in the host: Envoy's V8 runs it.
    Unwind,
    /// The same in the standard (`exnref`) form, which wasmtime runs by default since 47.0, and
    /// the legacy form not at all: the WASI command.
    UnwindExnref,
}

struct Artifact {
    package: &'static str,
    target: &'static str,
    profile: &'static str,
    panics: Panics,
    /// `-Ctarget-feature=+simd128`: for hosts that run 128-bit SIMD (wasmtime, V8 in Envoy, Node
    /// and browsers). Fluent Bit's WAMR has no SIMD: a module using it does not load there.
    simd: bool,
    /// `--features <package>/fault-injection`: the fault tests' builds (a marked input panics).
    /// They have their own profile, so they and the shipped builds do not rebuild each other.
    fault: bool,
    built: &'static str,
    name: &'static str,
}

const ARTIFACTS: &[Artifact] = &[
    // The WASI command, for the wasmtime CLI: opt-level 3 and SIMD (docs/PERFORMANCE.md, "WASM hosts").
    Artifact {
        package: "kaudit-cli",
        target: "wasm32-wasip2",
        profile: "wasm",
        panics: Panics::UnwindExnref,
        simd: true,
        fault: false,
        built: "kaudit.wasm",
        name: "kaudit-cli.wasm",
    },
    Artifact {
        package: "kaudit-cli",
        target: "wasm32-wasip2",
        profile: "wasm-fault",
        panics: Panics::UnwindExnref,
        simd: true,
        fault: true,
        built: "kaudit.wasm",
        name: "kaudit-cli-fault.wasm",
    },
    // Aborting, so it loads in every component host (plugins/component/README.md, "Panics").
    Artifact {
        package: "kaudit-component",
        target: "wasm32-wasip2",
        profile: "wasm-fast",
        panics: Panics::Abort,
        simd: true,
        fault: false,
        built: "kaudit_component.wasm",
        name: "kaudit-component.wasm",
    },
    // Envoy's V8.
    Artifact {
        package: "kaudit-envoy",
        target: "wasm32-wasip1",
        profile: "wasm",
        panics: Panics::Unwind,
        simd: true,
        fault: false,
        built: "kaudit_envoy.wasm",
        name: "kaudit-envoy.wasm",
    },
    Artifact {
        package: "kaudit-envoy",
        target: "wasm32-wasip1",
        profile: "wasm-fault",
        panics: Panics::Unwind,
        simd: true,
        fault: true,
        built: "kaudit_envoy.wasm",
        name: "kaudit-envoy-fault.wasm",
    },
    // Fluent Bit's WAMR: no exception handling (a module that uses it does not load), no SIMD.
    Artifact {
        package: "kaudit-fluent-bit",
        target: "wasm32-wasip1",
        profile: "wasm-fast",
        panics: Panics::Abort,
        simd: false,
        fault: false,
        built: "kaudit_fluent_bit.wasm",
        name: "kaudit-fluent-bit.wasm",
    },
];

/// The RUSTFLAGS of a build (set only when there are any: they replace the user's own).
/// `-Zbuild-std` is unstable; the pinned stable toolchain accepts it with RUSTC_BOOTSTRAP=1
/// (as cargo-fuzz's flags, see fuzz/README.md) and needs the rust-src component.
fn set_flags(c: &mut Command, panics: Panics, simd: bool) {
    let mut flags = match panics {
        Panics::Abort => String::new(),
        Panics::Unwind => "-Cpanic=unwind -Ctarget-feature=+exception-handling".to_string(),
        Panics::UnwindExnref => {
            "-Cpanic=unwind -Ctarget-feature=+exception-handling -Cllvm-args=-wasm-use-legacy-eh=false".to_string()
        }
    };
    if panics != Panics::Abort {
        c.env("RUSTC_BOOTSTRAP", "1").args(["-Zbuild-std=std,panic_unwind"]);
    }
    if simd {
        flags.push_str(" -Ctarget-feature=+simd128");
    }
    if !flags.is_empty() {
        c.env("RUSTFLAGS", flags.trim());
    }
}

pub fn build_all() -> Result<(), String> {
    build(&ARTIFACTS.iter().map(|a| a.name).collect::<Vec<_>>())?;
    aot().map(|_| ())
}

/// The AOT form of the Fluent Bit module, beside it in the artifacts folder.
pub const FLUENT_BIT_AOT: &str = "kaudit-fluent-bit.aot";
/// Portable x86-64 (any x86-64 CPU, no newer instruction sets): the `.aot` we ship and test.
/// Without `--cpu` flb-wamrc compiles for the build machine's CPU only.
const AOT_FLAGS: &[&str] = &["--target=x86_64", "--cpu=x86-64"];

/// Compiles `kaudit-fluent-bit.wasm` with Fluent Bit's `flb-wamrc` (WAMR's AOT compiler, LLVM;
/// about a minute of CPU) into `kaudit-fluent-bit.aot`, when flb-wamrc is found
/// (`$FLB_WAMRC`, PATH, `../shared/tools/fluent-bit/`). Only when the module, the compiler or
/// the flags changed since the last compile (a stamp beside the `.aot`), so a build or a CI run
/// compiles it at most once. Returns the `.aot`'s path, or `None` without flb-wamrc (under
/// `CI=true` that is an error: the real Fluent Bit tests run the `.aot`).
pub fn aot() -> Result<Option<std::path::PathBuf>, String> {
    let Some(wamrc) = shared_tool(&FLB_WAMRC) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err("flb-wamrc not found ($FLB_WAMRC, PATH, ../shared/tools/fluent-bit/); CI needs the .aot".into());
        }
        eprintln!("xtask: {FLUENT_BIT_AOT}: skipped, no flb-wamrc ($FLB_WAMRC, PATH, ../shared/tools/fluent-bit/)");
        return Ok(None);
    };
    let wasm = artifacts_dir().join("kaudit-fluent-bit.wasm");
    let aot = artifacts_dir().join(FLUENT_BIT_AOT);
    let stamp_path = artifacts_dir().join(format!("{FLUENT_BIT_AOT}.stamp"));
    let stamp = {
        use std::hash::{Hash, Hasher};
        let module = std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
        let compiler = std::fs::read(&wamrc).map_err(|e| format!("{}: {e}", wamrc.display()))?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (module, compiler, AOT_FLAGS).hash(&mut h);
        format!("{:016x} {}\n", h.finish(), AOT_FLAGS.join(" "))
    };
    if aot.is_file() && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        eprintln!("xtask: {FLUENT_BIT_AOT}: up to date");
        return Ok(Some(aot));
    }
    let _ = std::fs::remove_file(&stamp_path);
    let started = std::time::Instant::now();
    run(Command::new(&wamrc).args(AOT_FLAGS).arg("-o").arg(&aot).arg(&wasm))?;
    std::fs::write(&stamp_path, stamp).map_err(|e| format!("{}: {e}", stamp_path.display()))?;
    let size = std::fs::metadata(&aot).map(|m| m.len()).unwrap_or(0);
    eprintln!("xtask: {FLUENT_BIT_AOT}: {size} bytes ({:.0} s)", started.elapsed().as_secs_f64());
    Ok(Some(aot))
}

/// Builds the named artifacts (`kaudit-cli.wasm`, ...) and collects them under those names.
pub fn build(names: &[&str]) -> Result<(), String> {
    let wanted: Vec<&Artifact> = ARTIFACTS.iter().filter(|a| names.contains(&a.name)).collect();
    if let Some(unknown) = names.iter().find(|n| !ARTIFACTS.iter().any(|a| a.name == **n)) {
        return Err(format!("no artifact named {unknown}"));
    }
    std::fs::create_dir_all(artifacts_dir()).map_err(|e| e.to_string())?;
    // One cargo invocation per (target, profile), so those crates build in parallel.
    let mut groups: Vec<(&str, &str, Panics, bool, bool)> =
        wanted.iter().map(|a| (a.target, a.profile, a.panics, a.simd, a.fault)).collect();
    groups.dedup();
    for group in groups {
        let (target, profile, panics, simd, fault) = group;
        let mut c = cmd("cargo");
        c.args(["build", "--profile", profile, "--target", target]);
        for a in wanted.iter().filter(|a| (a.target, a.profile, a.panics, a.simd, a.fault) == group) {
            c.args(["-p", a.package]);
            if fault {
                c.args(["--features", &format!("{}/fault-injection", a.package)]);
            }
        }
        set_flags(&mut c, panics, simd);
        run(&mut c)?;
    }
    for Artifact { target, profile, built, name, .. } in wanted {
        let from = target_dir().join(target).join(profile).join(built);
        let to = artifacts_dir().join(name);
        std::fs::copy(&from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
        let size = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
        eprintln!("xtask: {name}: {size} bytes");
    }
    Ok(())
}
