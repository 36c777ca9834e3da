//! Finding the real hosts the integration tests start (Fluent Bit, Vector, kube-apiserver's
//! audit harness), the way the project's README says: the user's own first (`$FLUENT_BIT`,
//! `$VECTOR`, ..., then PATH), else `../shared/tools/<host>/` beside the repository root (for a
//! git worktree, also beside the main checkout). Under `CI=true` a missing host fails the test;
//! elsewhere the test says it skipped and returns.

use std::path::{Path, PathBuf};

/// A real host: `env` names an override, `program` is looked up on PATH, `shared` is the
/// path below `../shared/tools/` (e.g. `fluent-bit/fluent-bit`).
pub struct Host {
    pub env: &'static str,
    pub program: &'static str,
    pub shared: &'static str,
}

pub const FLUENT_BIT: Host = Host { env: "FLUENT_BIT", program: "fluent-bit", shared: "fluent-bit/fluent-bit" };
/// WAMR's AOT compiler as Fluent Bit builds it (`-DFLB_WAMRC=On`), beside the Fluent Bit binary.
pub const FLB_WAMRC: Host = Host { env: "FLB_WAMRC", program: "flb-wamrc", shared: "fluent-bit/flb-wamrc" };
pub const VECTOR: Host = Host { env: "VECTOR", program: "vector", shared: "vector/vector" };
/// The kube-apiserver audit harness (etcd, kube-apiserver, kubectl and a fixed workload).
pub const KUBE_AUDIT: Host =
    Host { env: "KAUDIT_KUBE_RUN_AUDIT", program: "kube-run-audit", shared: "kubernetes/run-audit.sh" };
/// Prometheus Alertmanager (`cargo xtask setup` installs Debian's `prometheus-alertmanager`).
pub const ALERTMANAGER: Host =
    Host { env: "ALERTMANAGER", program: "prometheus-alertmanager", shared: "alertmanager/alertmanager" };
/// kubectl (its built-in kustomize renders deploy/'s topologies).
pub const KUBECTL: Host = Host { env: "KUBECTL", program: "kubectl", shared: "kubernetes/bin/kubectl" };

/// The host's executable, or `None` (after saying so) when it is missing outside CI.
pub fn require(host: &Host, test: &str) -> Option<PathBuf> {
    if let Some(found) = find(host) {
        return Some(found);
    }
    let msg = format!(
        "{test}: no {} (set ${}, put `{}` on PATH, or provide ../shared/tools/{})",
        host.program, host.env, host.program, host.shared
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; under CI=true a missing host fails the run");
    }
    eprintln!("SKIPPED {msg}");
    None
}

pub fn find(host: &Host) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(host.env) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "${} = {} is not a file", host.env, p.display());
        return Some(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(p) = std::env::split_paths(&path).map(|d| d.join(host.program)).find(|p| p.is_file()) {
            return Some(p);
        }
    }
    checkout_roots().into_iter().map(|root| root.join("../shared/tools").join(host.shared)).find(|p| p.is_file())
}

/// The repository root: the nearest folder above the test's crate that holds Cargo.lock.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.ancestors().find(|d| d.join("Cargo.lock").is_file()).unwrap_or(manifest);
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}

/// The repository root, and for a git worktree also the main checkout's root.
fn checkout_roots() -> Vec<PathBuf> {
    let root = repo_root();
    let mut roots = vec![root.clone()];
    // A worktree's `.git` is a file: "gitdir: <main>/.git/worktrees/<name>".
    if let Ok(text) = std::fs::read_to_string(root.join(".git")) {
        if let Some(gitdir) = text.trim().strip_prefix("gitdir:") {
            let gitdir = PathBuf::from(gitdir.trim());
            if let Some(main) = gitdir.ancestors().find(|a| a.file_name().is_some_and(|n| n == ".git")) {
                roots.extend(main.parent().map(Path::to_path_buf));
            }
        }
    }
    roots
}

/// What native `kaudit run` writes for an input: the oracle of the real-host tests.
pub struct Native {
    /// Output lines (kept and passed-through records), in order.
    pub events: Vec<String>,
    /// Alerts, in order.
    pub alerts: Vec<serde_json::Value>,
}

/// Runs the `kaudit` binary `cargo xtask test` builds (`$KAUDIT_CLI`): `kaudit run` on `input`,
/// with `config` as the config file when given.
pub fn kaudit_run(input: &[u8], config: Option<&str>) -> Native {
    let cli = std::env::var_os("KAUDIT_CLI")
        .expect("KAUDIT_CLI is not set: run through `cargo xtask test` (it builds `kaudit` and names it)");
    let dir = super::TempDir::new("native");
    std::fs::write(dir.0.join("in.log"), input).expect("input");
    let mut c = std::process::Command::new(cli);
    c.current_dir(&dir.0).args(["run", "--quiet", "--alerts", "alerts.jsonl"]);
    if let Some(text) = config {
        std::fs::write(dir.0.join("kaudit.yaml"), text).expect("config");
        c.args(["--config", "kaudit.yaml"]);
    }
    let out = c.arg("in.log").output().expect("kaudit run");
    assert!(out.status.success(), "kaudit run failed: {}", String::from_utf8_lossy(&out.stderr));
    let events = String::from_utf8(out.stdout).expect("utf-8").lines().map(String::from).collect();
    let alerts = std::fs::read_to_string(dir.0.join("alerts.jsonl"))
        .expect("alerts file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an alert is JSON"))
        .collect();
    Native { events, alerts }
}

/// Values counted by their JSON text: comparing outputs whose order a host may change.
pub fn multiset<'a>(
    values: impl IntoIterator<Item = &'a serde_json::Value>,
) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for v in values {
        *m.entry(v.to_string()).or_default() += 1;
    }
    m
}

/// Output lines as JSON values, where a process killed with SIGKILL in the middle of a write may
/// have left a torn line: a record's first bytes, then the next record written on the same line.
/// Returns the values (a torn line counts as the record after the torn bytes) and the torn bytes.
pub fn parse_tolerating_torn(lines: &[String]) -> (Vec<serde_json::Value>, Vec<String>) {
    let mut torn = Vec::new();
    let values = lines
        .iter()
        .map(|l| match serde_json::from_str(l) {
            Ok(v) => v,
            Err(_) => {
                let at = (1..l.len())
                    .filter(|&i| l.as_bytes()[i] == b'{')
                    .find(|&i| serde_json::from_str::<serde_json::Value>(&l[i..]).is_ok())
                    .unwrap_or_else(|| panic!("a line that is neither JSON nor a torn prefix + JSON: {l}"));
                torn.push(l[..at].to_string());
                serde_json::from_str(&l[at..]).expect("checked")
            }
        })
        .collect();
    (values, torn)
}

/// How many of `want` are missing from `got` (as JSON values, each counted), and how many
/// values `got` has beyond `want`; panics on a value `want` does not have at all.
pub fn missing_and_duplicated(got: &[serde_json::Value], want: &[serde_json::Value]) -> (usize, usize) {
    let have = multiset(got);
    let wanted = multiset(want);
    let (mut missing, mut duplicated) = (0, 0);
    for (value, n) in &wanted {
        let h = have.get(value).copied().unwrap_or(0);
        missing += n.saturating_sub(h);
        duplicated += h.saturating_sub(*n);
    }
    for value in have.keys() {
        assert!(wanted.contains_key(value), "a value the oracle never wrote: {}", &value[..value.len().min(300)]);
    }
    (missing, duplicated)
}
