//! Helpers shared by the xtask commands: paths, running commands, tool checks.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}

/// Per-machine cache outside the clone: cargo target dir, venv, tool installs.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KAUDIT_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("kaudit")
}

/// The cargo target dir every build shares (outside the clone, so CI reuses a warm one).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| cache_dir().join("target"))
}

/// Where the built .wasm artifacts are collected under stable names.
pub fn artifacts_dir() -> PathBuf {
    target_dir().join("kaudit-artifacts")
}

/// A command with the shared environment set.
pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.current_dir(root());
    c.env("CARGO_TARGET_DIR", target_dir());
    c.env("KAUDIT_ARTIFACTS", artifacts_dir());
    c.env("KAUDIT_CACHE", cache_dir());
    // The native CLI the real-host tests compare Fluent Bit and Vector with (`kaudit run`).
    c.env("KAUDIT_CLI", kaudit_cli());
    c
}

/// The debug build of the native CLI (`cargo build -p kaudit-cli`; `cargo test` builds the same).
pub fn kaudit_cli() -> PathBuf {
    target_dir().join("debug").join("kaudit")
}

/// Runs a command, failing with its description if it does not succeed.
pub fn run(c: &mut Command) -> Result<(), String> {
    let desc = format!("{c:?}");
    eprintln!("xtask: $ {}", describe(c));
    let status = c.status().map_err(|e| format!("{desc}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed with {status}", describe(c)))
    }
}

fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The output of a command, or `None` if it cannot run or fails.
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `program` is on PATH (or at the given path).
pub fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// A real host or tool the project does not build: `env` names an override, `program` is looked
/// up on PATH, `shared` is the path below `../shared/tools/` beside the clone.
pub struct Tool {
    pub env: &'static str,
    pub program: &'static str,
    pub shared: &'static str,
}

pub const FLUENT_BIT: Tool = Tool { env: "FLUENT_BIT", program: "fluent-bit", shared: "fluent-bit/fluent-bit" };
/// WAMR's AOT compiler as Fluent Bit builds it (`-DFLB_WAMRC=On`).
pub const FLB_WAMRC: Tool = Tool { env: "FLB_WAMRC", program: "flb-wamrc", shared: "fluent-bit/flb-wamrc" };

/// The kube-apiserver audit harness (etcd, kube-apiserver, kubectl and a fixed workload).
pub const KUBE_AUDIT: Tool =
    Tool { env: "KAUDIT_KUBE_RUN_AUDIT", program: "kube-run-audit", shared: "kubernetes/run-audit.sh" };

/// Finds a tool as the real-host tests do (plugins/envoy/tests/support/real_hosts.rs): `$ENV`,
/// PATH, else `../shared/tools/<shared>` beside the clone (or, for a git worktree, beside the
/// main checkout).
pub fn shared_tool(tool: &Tool) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(tool.env).map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(p) = std::env::split_paths(&path).map(|d| d.join(tool.program)).find(|p| p.is_file()) {
            return Some(p);
        }
    }
    let root = root();
    let mut roots = vec![root.clone()];
    // A worktree's `.git` is a file: "gitdir: <main>/.git/worktrees/<name>".
    if let Ok(text) = std::fs::read_to_string(root.join(".git")) {
        if let Some(gitdir) = text.trim().strip_prefix("gitdir:") {
            let gitdir = PathBuf::from(gitdir.trim());
            if let Some(git) = gitdir.ancestors().find(|a| a.file_name().is_some_and(|n| n == ".git")) {
                roots.extend(git.parent().map(Path::to_path_buf));
            }
        }
    }
    roots.into_iter().map(|r| r.join("../shared/tools").join(tool.shared)).find(|p| p.is_file())
}
