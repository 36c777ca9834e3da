//! `kaudit apiserver`: the kube-apiserver side of a deployment, generated from the same kaudit
//! config the agents load, so the policy the apiserver applies and the one kaudit applies are
//! one file: the `audit.k8s.io/v1` policy, the audit flags (log backend for the Fluent Bit
//! agent, webhook backend for Envoy), the webhook kubeconfig, a kubeadm `ClusterConfiguration`
//! patch, the static-pod manifest patched (or its diff), and `check`, which reports drift between
//! a running apiserver's static-pod manifest (and the policy file it names) and the config.
//!
//! The sizes come from the shipped host configs (plugins/fluent-bit/fluent-bit.yaml,
//! plugins/envoy/envoy.yaml; the tests check they still agree): see [`TAIL_BUFFER_MAX`] and
//! [`ENVOY_BUFFER_LIMIT`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use kaudit::yaml::{Kind, Node};

use crate::exit::Status;

/// `buffer_max_size` of the shipped Fluent Bit `tail` input: a longer line is skipped whole.
pub const TAIL_BUFFER_MAX: u64 = 4 * 1024 * 1024;
/// `per_connection_buffer_limit_bytes` of the shipped Envoy listener and receiver cluster: the
/// kaudit filter buffers a whole batch, and a larger body gets 413 (retried, then dropped).
pub const ENVOY_BUFFER_LIMIT: u64 = 16 * 1024 * 1024;
/// The largest event either backend writes (`--audit-*-truncate-max-event-size`): below the
/// agent's line limit with room for the newline, so the log backend truncates an event's bodies
/// (annotation `audit.k8s.io/truncated`) instead of the agent skipping the whole line, and the
/// webhook passes the same events whole.
pub const MAX_EVENT_BYTES: u64 = TAIL_BUFFER_MAX - 64 * 1024;
/// `--audit-webhook-truncate-max-batch-size`: half of Envoy's buffer. The apiserver may exceed
/// it by "several hundred bytes" (its flag's help), and the body the filter writes back, which
/// Envoy forwards under the same limit, grows by the enrichment of each event.
pub const MAX_BATCH_BYTES: u64 = ENVOY_BUFFER_LIMIT / 2;

/// Check exit statuses: 0 in sync, 1 drift, 2 an error (grep's convention, like `query`).
#[derive(Subcommand)]
pub enum ApiserverCommand {
    /// The audit policy for --audit-policy-file, as audit.k8s.io/v1.
    Policy(Common),
    /// The kube-apiserver audit flags, one per line.
    Flags(Common),
    /// The kubeconfig for --audit-webhook-config-file (needs --webhook-server).
    WebhookKubeconfig(Common),
    /// A kubeadm ClusterConfiguration patch: apiServer.extraArgs and extraVolumes.
    Kubeadm {
        #[command(flatten)]
        common: Common,
        /// kubeadm config API: v1beta4 (kubeadm 1.31 and later: extraArgs is a list) or v1beta3.
        #[arg(long, value_enum, default_value_t = KubeadmApi::V1beta4)]
        kubeadm_api: KubeadmApi,
    },
    /// The kube-apiserver static-pod manifest with the audit flags and volumes set.
    Manifest {
        #[command(flatten)]
        common: Common,
        /// The static-pod manifest to patch (kubeadm: /etc/kubernetes/manifests/kube-apiserver.yaml).
        manifest: PathBuf,
        /// Print a unified diff instead of the patched manifest.
        #[arg(long)]
        diff: bool,
    },
    /// Report drift between a static-pod manifest (and the policy file it names) and the config:
    /// exit 0 in sync, 1 drift, 2 error.
    Check {
        #[command(flatten)]
        common: Common,
        /// The running apiserver's static-pod manifest.
        manifest: PathBuf,
        /// Read the files the manifest names (policy, webhook kubeconfig) under this directory
        /// (a copy of a node's filesystem); default: as named.
        #[arg(long, value_name = "DIR")]
        host_root: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KubeadmApi {
    V1beta4,
    V1beta3,
}

/// What every subcommand is generated from.
#[derive(Args)]
pub struct Common {
    #[command(flatten)]
    source: crate::args::Source,
    /// Directory on the control-plane nodes for the policy, the webhook kubeconfig and its
    /// certificates (mounted read-only into the apiserver).
    #[arg(long, value_name = "DIR", default_value = "/etc/kubernetes/kaudit")]
    dir: String,
    /// The log backend's file: what the Fluent Bit agent tails. `none`: no log backend.
    #[arg(long, value_name = "PATH", default_value = "/var/log/kubernetes/kubernetes.audit")]
    log_path: String,
    /// Days a rotated log file is kept.
    #[arg(long, default_value_t = 7)]
    log_maxage: u32,
    /// Rotated log files kept.
    #[arg(long, default_value_t = 5)]
    log_maxbackup: u32,
    /// Size in MB at which the log file is rotated.
    #[arg(long, default_value_t = 100)]
    log_maxsize: u32,
    /// The webhook backend's URL: Envoy's listener, e.g. https://10.96.0.90:9880/audit (its
    /// server certificate must name this host). Absent: no webhook backend.
    #[arg(long, value_name = "URL")]
    webhook_server: Option<String>,
    /// Seconds the apiserver waits before sending a batch that is not full.
    #[arg(long, default_value_t = 5)]
    webhook_batch_max_wait: u32,
}

impl Common {
    fn file(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.trim_end_matches('/'))
    }

    fn log(&self) -> Option<&str> {
        (self.log_path != "none").then_some(self.log_path.as_str())
    }

    /// The audit flags, in the order they are printed.
    fn flags(&self) -> Vec<(String, String)> {
        let mut f = vec![("audit-policy-file".to_string(), self.file("audit-policy.yaml"))];
        let mut add = |name: &str, value: String| f.push((name.to_string(), value));
        if let Some(path) = self.log() {
            add("audit-log-path", path.to_string());
            add("audit-log-format", "json".into());
            add("audit-log-mode", "blocking".into());
            add("audit-log-maxage", self.log_maxage.to_string());
            add("audit-log-maxbackup", self.log_maxbackup.to_string());
            add("audit-log-maxsize", self.log_maxsize.to_string());
            add("audit-log-truncate-enabled", "true".into());
            add("audit-log-truncate-max-event-size", MAX_EVENT_BYTES.to_string());
        }
        if self.webhook_server.is_some() {
            add("audit-webhook-config-file", self.file("webhook.kubeconfig"));
            add("audit-webhook-mode", "batch".into());
            add("audit-webhook-batch-max-wait", format!("{}s", self.webhook_batch_max_wait));
            add("audit-webhook-truncate-enabled", "true".into());
            add("audit-webhook-truncate-max-batch-size", MAX_BATCH_BYTES.to_string());
            add("audit-webhook-truncate-max-event-size", MAX_EVENT_BYTES.to_string());
        }
        f
    }

    /// hostPath volumes: (name, host path, read-only).
    fn volumes(&self) -> Vec<(&'static str, String, bool)> {
        let dir = self.dir.trim_end_matches('/').to_string();
        let mut v = vec![("kaudit", dir.clone(), true)];
        if let Some(parent) = self.log().and_then(|p| Path::new(p).parent()).map(|p| p.display().to_string()) {
            if parent != dir {
                v.push(("kaudit-audit-log", parent, false));
            }
        }
        v
    }
}

/// Whether errors exit 2 rather than 1: `check`, whose 1 means drift.
pub fn is_check(cmd: &ApiserverCommand) -> bool {
    matches!(cmd, ApiserverCommand::Check { .. })
}

pub fn apiserver(cmd: ApiserverCommand) -> Result<Status, String> {
    match cmd {
        ApiserverCommand::Policy(c) => print(&policy_text(&c)?),
        ApiserverCommand::Flags(c) => {
            let text: String = c.flags().iter().map(|(k, v)| format!("--{k}={v}\n")).collect();
            print(&text)
        }
        ApiserverCommand::WebhookKubeconfig(c) => print(&webhook_kubeconfig(&c)?),
        ApiserverCommand::Kubeadm { common, kubeadm_api } => print(&kubeadm(&common, kubeadm_api)),
        ApiserverCommand::Manifest { common, manifest, diff } => {
            let original = read(&manifest)?;
            let patched = patch_manifest(&common, &original, &manifest.display().to_string())?;
            if diff {
                let name = manifest.display().to_string();
                print(&unified_diff(&name, &name, &original, &patched))
            } else {
                print(&patched)
            }
        }
        ApiserverCommand::Check { common, manifest, host_root } => {
            let drift = check(&common, &manifest, host_root.as_deref())?;
            for d in &drift {
                println!("drift: {}", crate::term::field(d));
            }
            if drift.is_empty() {
                println!("{}: in sync with the kaudit config", crate::term::field(&manifest.display().to_string()));
                Ok(Status::Success)
            } else {
                eprintln!("kaudit: {} differences: regenerate with `kaudit apiserver manifest`", drift.len());
                Ok(Status::Negative)
            }
        }
    }
}

fn print(text: &str) -> Result<Status, String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(Status::Success),
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn policy_text(c: &Common) -> Result<String, String> {
    let config = crate::input::load_config(&c.source)?;
    let header = format!(
        "Generated by `kaudit apiserver policy` from {}: the policy kaudit applies.\n\
         Regenerate it instead of editing it; `kaudit apiserver check` reports drift.",
        config.policy_source
    );
    Ok(kaudit::to_v1_yaml(&config.policy, &header))
}

fn webhook_kubeconfig(c: &Common) -> Result<String, String> {
    let server = c.webhook_server.as_deref().ok_or("--webhook-server URL is required for the webhook kubeconfig")?;
    Ok(format!(
        "# Generated by `kaudit apiserver webhook-kubeconfig`: kube-apiserver's audit webhook\n\
         # (--audit-webhook-config-file) posting to the kaudit Envoy with a client certificate.\n\
         apiVersion: v1\nkind: Config\nclusters:\n  - name: kaudit\n    cluster:\n      server: {}\n      \
         certificate-authority: {}\nusers:\n  - name: apiserver\n    user:\n      client-certificate: {}\n      \
         client-key: {}\ncontexts:\n  - name: webhook\n    context: {{cluster: kaudit, user: apiserver}}\n\
         current-context: webhook\n",
        q(server),
        q(&c.file("server-ca.crt")),
        q(&c.file("apiserver-audit.crt")),
        q(&c.file("apiserver-audit.key"))
    ))
}

/// A YAML double-quoted scalar (JSON escapes are valid YAML).
fn q(s: &str) -> String {
    let mut out = String::new();
    kaudit::write_json_str(&mut out, s);
    out
}

fn kubeadm(c: &Common, api: KubeadmApi) -> String {
    let mut out = String::from(
        "# Generated by `kaudit apiserver kubeadm`: merge into your kubeadm ClusterConfiguration\n\
         # (`kubeadm init --config`, or `kubeadm upgrade` after editing the kubeadm-config ConfigMap).\n",
    );
    let version = match api {
        KubeadmApi::V1beta4 => "v1beta4",
        KubeadmApi::V1beta3 => "v1beta3",
    };
    let _ = writeln!(out, "apiVersion: kubeadm.k8s.io/{version}\nkind: ClusterConfiguration\napiServer:\n  extraArgs:");
    for (k, v) in c.flags() {
        match api {
            KubeadmApi::V1beta4 => {
                let _ = writeln!(out, "    - name: {k}\n      value: {}", q(&v));
            }
            KubeadmApi::V1beta3 => {
                let _ = writeln!(out, "    {k}: {}", q(&v));
            }
        }
    }
    out.push_str("  extraVolumes:\n");
    for (name, path, read_only) in c.volumes() {
        let _ = writeln!(
            out,
            "    - name: {name}\n      hostPath: {p}\n      mountPath: {p}\n      readOnly: {read_only}\n      pathType: DirectoryOrCreate",
            p = q(&path)
        );
    }
    out
}

/// The kube-apiserver container of a static-pod manifest, its flags (`command` and `args`) and
/// where its lists end, from kaudit's YAML reader (which keeps line numbers).
struct Manifest<'a> {
    lines: Vec<&'a str>,
    /// `command` (or `args`) items: (line index, text).
    flags: Vec<(usize, String)>,
    /// The last line of the flag list, and the `- ` indentation of its items.
    flags_end: (usize, usize),
    mounts: Vec<(String, String)>,
    mounts_end: Option<(usize, usize)>,
    /// hostPath volumes: (name, path).
    volumes: Vec<(String, String)>,
    volumes_end: Option<(usize, usize)>,
}

fn parse_manifest<'a>(text: &'a str, file: &str) -> Result<Manifest<'a>, String> {
    let root = kaudit::yaml::parse(text, file).map_err(|e| e.to_string())?;
    let bad = |what: &str| format!("{file}: not a kube-apiserver static-pod manifest: {what}");
    let spec = root.get("spec").ok_or_else(|| bad("no spec"))?;
    let containers = seq(spec.get("containers")).ok_or_else(|| bad("no spec.containers"))?;
    let is_apiserver = |c: &&Node| {
        c.get("name").and_then(Node::as_str) == Some("kube-apiserver")
            || seq(c.get("command"))
                .and_then(|s| s.first())
                .and_then(|n| n.as_str())
                .is_some_and(|s| s.ends_with("kube-apiserver"))
    };
    let container = containers.iter().find(is_apiserver).ok_or_else(|| bad("no kube-apiserver container"))?;
    let mut flags = Vec::new();
    let mut flags_end = None;
    for key in ["command", "args"] {
        if let Some(items) = seq(container.get(key)) {
            for item in items {
                flags.push((item.pos.line - 1, item.as_str().unwrap_or_default().to_string()));
            }
            if let Some(last) = items.last() {
                flags_end = Some((last_line(last), item_indent(last)));
            }
        }
    }
    let flags_end = flags_end.ok_or_else(|| bad("the container has no command or args"))?;
    let end = |items: &[Node]| items.last().map(|l| (last_line(l), item_indent(l)));
    let mounts_node = seq(container.get("volumeMounts")).unwrap_or(&[]);
    let mounts = mounts_node.iter().map(|m| (string(m, "name"), string(m, "mountPath"))).collect();
    let volumes_node = seq(spec.get("volumes")).unwrap_or(&[]);
    let volumes = volumes_node
        .iter()
        .map(|v| (string(v, "name"), v.get("hostPath").map(|h| string(h, "path")).unwrap_or_default()))
        .collect();
    Ok(Manifest {
        lines: text.lines().collect(),
        flags,
        flags_end,
        mounts,
        mounts_end: end(mounts_node),
        volumes,
        volumes_end: end(volumes_node),
    })
}

fn seq(node: Option<&Node>) -> Option<&[Node]> {
    match &node?.kind {
        Kind::Seq(items) => Some(items),
        _ => None,
    }
}

fn string(node: &Node, key: &str) -> String {
    node.get(key).and_then(Node::as_str).unwrap_or_default().to_string()
}

/// The last line (0-based) of a node and everything in it.
fn last_line(node: &Node) -> usize {
    let own = node.pos.line - 1;
    match &node.kind {
        Kind::Seq(items) => items.iter().map(last_line).max().unwrap_or(own).max(own),
        Kind::Map(entries) => entries.iter().map(|(_, v)| last_line(v)).max().unwrap_or(own).max(own),
        _ => own,
    }
}

/// The column of a block sequence item's `- ` (the item's content starts two columns later).
fn item_indent(node: &Node) -> usize {
    (node.pos.col - 1).saturating_sub(2)
}

fn flag_name(arg: &str) -> Option<&str> {
    let rest = arg.strip_prefix("--")?;
    Some(rest.split_once('=').map_or(rest, |(k, _)| k))
}

fn patch_manifest(c: &Common, text: &str, file: &str) -> Result<String, String> {
    let m = parse_manifest(text, file)?;
    let want = c.flags();
    // Line index -> replacement (None: delete); insertions after a line index.
    let mut replace: std::collections::BTreeMap<usize, Option<String>> = Default::default();
    let mut insert: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    let flag_line = |indent: usize, k: &str, v: &str| format!("{}- --{k}={v}", " ".repeat(indent));
    let (flags_last, flags_indent) = m.flags_end;
    for (k, v) in &want {
        match m.flags.iter().find(|(_, a)| flag_name(a) == Some(k)) {
            Some((line, arg)) if *arg != format!("--{k}={v}") => {
                let indent = m.lines[*line].len() - m.lines[*line].trim_start().len();
                replace.insert(*line, Some(flag_line(indent, k, v)));
            }
            Some(_) => {}
            None => insert.entry(flags_last).or_default().push(flag_line(flags_indent, k, v)),
        }
    }
    for (line, arg) in &m.flags {
        if flag_name(arg).is_some_and(|n| n.starts_with("audit-") && !want.iter().any(|(k, _)| k == n)) {
            replace.insert(*line, None);
        }
    }
    for (name, path, read_only) in c.volumes() {
        if !m.mounts.iter().any(|(n, _)| n == name) {
            let (last, d) =
                m.mounts_end.ok_or_else(|| format!("{file}: the kube-apiserver container has no volumeMounts"))?;
            let pad = " ".repeat(d);
            let ro = if read_only { format!("\n{pad}  readOnly: true") } else { String::new() };
            insert.entry(last).or_default().push(format!("{pad}- mountPath: {path}\n{pad}  name: {name}{ro}"));
        }
        if !m.volumes.iter().any(|(n, _)| n == name) {
            let (last, d) = m.volumes_end.ok_or_else(|| format!("{file}: the pod has no volumes"))?;
            let pad = " ".repeat(d);
            insert.entry(last).or_default().push(format!(
                "{pad}- hostPath:\n{pad}    path: {path}\n{pad}    type: DirectoryOrCreate\n{pad}  name: {name}"
            ));
        }
    }
    let mut out = String::new();
    for (i, line) in m.lines.iter().enumerate() {
        match replace.get(&i) {
            Some(Some(new)) => out.push_str(new),
            Some(None) => continue,
            None => out.push_str(line),
        }
        out.push('\n');
        for added in insert.get(&i).into_iter().flatten() {
            out.push_str(added);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Differences between the running apiserver (its manifest and the files it names) and what
/// the config and options generate.
fn check(c: &Common, manifest: &Path, host_root: Option<&Path>) -> Result<Vec<String>, String> {
    let text = read(manifest)?;
    let m = parse_manifest(&text, &manifest.display().to_string())?;
    let mut drift = Vec::new();
    let value_of = |name: &str| {
        m.flags.iter().find(|(_, a)| flag_name(a) == Some(name)).map(|(_, a)| a.split_once('=').map_or("", |(_, v)| v))
    };
    let want = c.flags();
    for (k, v) in &want {
        match value_of(k) {
            None => drift.push(format!("--{k} is not set (want {v})")),
            Some(found) if found != v => drift.push(format!("--{k}={found} (want {v})")),
            Some(_) => {}
        }
    }
    for (_, arg) in &m.flags {
        if let Some(n) = flag_name(arg).filter(|n| n.starts_with("audit-") && !want.iter().any(|(k, _)| k == n)) {
            drift.push(format!("--{n} is set ({arg}) but not generated"));
        }
    }
    let on_host = |path: &str| match host_root {
        Some(root) => root.join(path.trim_start_matches('/')),
        None => PathBuf::from(path),
    };
    // Every file the flags name must be on a hostPath volume mounted at the same path.
    for (k, v) in &want {
        if k.ends_with("-file") || k == "audit-log-path" {
            let mounted = m.mounts.iter().any(|(name, mount_path)| {
                Path::new(v).starts_with(mount_path)
                    && m.volumes.iter().any(|(n, host)| n == name && host == mount_path)
            });
            if !mounted {
                drift.push(format!("{v} (--{k}) is not on a hostPath volume mounted at the same path"));
            }
        }
    }
    let config = crate::input::load_config(&c.source)?;
    if let Some(path) = value_of("audit-policy-file") {
        let file = on_host(path);
        match std::fs::read_to_string(&file) {
            Err(e) => drift.push(format!("the policy file {}: {e}", file.display())),
            Ok(text) => match kaudit::Policy::load(&text, &file.display().to_string()) {
                Err(e) => drift.push(format!("the policy file does not load: {e}")),
                Ok(loaded) => {
                    if loaded.policy.api_version != "audit.k8s.io/v1" {
                        drift.push(format!(
                            "the policy file is {} (kube-apiserver 1.24 and later load only audit.k8s.io/v1)",
                            loaded.policy.api_version
                        ));
                    }
                    for d in kaudit::policy_differences(&config.policy, &loaded.policy) {
                        drift.push(format!("the policy file {}: {d}", file.display()));
                    }
                }
            },
        }
    }
    if let (Some(server), Some(path)) = (&c.webhook_server, value_of("audit-webhook-config-file")) {
        let file = on_host(path);
        match std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| kaudit::yaml::parse(&t, &file.display().to_string()).map_err(|e| e.to_string()))
        {
            Err(e) => drift.push(format!("the webhook kubeconfig {}: {e}", file.display())),
            Ok(kc) => {
                let found = seq(kc.get("clusters"))
                    .and_then(|cs| cs.first())
                    .and_then(|c| c.get("cluster"))
                    .map(|c| string(c, "server"))
                    .unwrap_or_default();
                if &found != server {
                    drift.push(format!("the webhook kubeconfig posts to {found:?} (want {server})"));
                }
            }
        }
    }
    Ok(drift)
}

/// A unified diff (3 lines of context) of two texts, from their longest common subsequence of
/// lines (manifests are small: a few hundred lines).
fn unified_diff(a_name: &str, b_name: &str, a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    // The edit script: (' ' | '-' | '+', a index, b index).
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i, j));
            i += 1;
        } else {
            ops.push(('+', i, j));
            j += 1;
        }
    }
    let mut out = String::new();
    if ops.iter().all(|o| o.0 == ' ') {
        return out;
    }
    let _ = writeln!(out, "--- {a_name}\n+++ {b_name}");
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= end + 2 * CONTEXT + 1 {
            k += 1;
            end = changed[k];
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        let a_len = hunk.iter().filter(|o| o.0 != '+').count();
        let b_len = hunk.iter().filter(|o| o.0 != '-').count();
        let (a0, b0) = (hunk[0].1, hunk[0].2);
        let _ =
            writeln!(out, "@@ -{},{a_len} +{},{b_len} @@", a0 + usize::from(a_len > 0), b0 + usize::from(b_len > 0));
        for &(op, ai, bj) in hunk {
            let line = if op == '+' { b[bj] } else { a[ai] };
            let _ = writeln!(out, "{op}{line}");
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_of_an_insertion_and_a_replacement() {
        let a = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
        let b = "a\nb\nc\nd\nX\ne\nf\ng\nh\ni\nJ\n";
        assert_eq!(
            unified_diff("x", "x", a, b),
            "--- x\n+++ x\n@@ -2,9 +2,10 @@\n b\n c\n d\n+X\n e\n f\n g\n h\n i\n-j\n+J\n"
        );
        assert_eq!(unified_diff("x", "x", a, a), "");
        assert_eq!(unified_diff("x", "x", "", "a\n"), "--- x\n+++ x\n@@ -0,0 +1,1 @@\n+a\n");
    }
}
